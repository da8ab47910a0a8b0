"""Full-batch gradient descent on the masked network, batched over many networks.

``train(W0, M, X, y, q=..., lr=..., steps=...)`` runs GD on L(W) = (1/n) sum_i log(1 + exp(-y_i f(W, x_i)))
for every network in the broadcast batch of (W0, M, X, y) at once. Each network has its own
weights, mask and data; networks never interact, so a network's trajectory does not depend on
which other networks share its batch.

Two engines give the same trajectory (to float precision):

- ``engine="weights"``: GD on the weights, O(m n d) a step;
- ``engine="coefficients"``: GD on the signal-noise coefficients of :mod:`prunebook.dynamics`,
  O(m n^2) a step after an O(m n^2 d) set-up (needs data of the two-patch model).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from prunebook._checks import check_nonneg_int, check_positive, check_positive_int
from prunebook.network import _validate, loss_and_gradient

__all__ = ["TrainResult", "TrainingDiverged", "train", "RECORDABLE", "ENGINES"]

ENGINES = ("weights", "coefficients")
RECORDABLE = ("loss", "train_error", "gamma", "rho")


class TrainingDiverged(RuntimeError):
    """Raised by ``train(..., on_divergence="raise")`` when a network's loss or weights stop being finite."""


@dataclass
class TrainResult:
    """What ``train`` returns. History tensors have the record axis first: ``[T, batch...]``."""

    W: torch.Tensor  #: final weights [batch..., 2, m, d]; pruned entries keep their initial value
    steps: torch.Tensor  #: the steps at which histories were recorded, [T] (0 and the last step included)
    loss: torch.Tensor  #: training loss history [T, batch...]
    train_error: torch.Tensor | None = None  #: training error history [T, batch...]
    gamma: torch.Tensor | None = None  #: signal coefficients [T, batch..., 2, m]
    rho: torch.Tensor | None = None  #: noise coefficients [T, batch..., 2, m, n]
    diverged: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.bool))
    #: per network: True if its loss or weights became non-finite (its W is the last finite iterate)
    engine: str = "weights"

    @property
    def final_loss(self) -> torch.Tensor:
        return self.loss[-1]

    @property
    def rho_pos(self) -> torch.Tensor | None:
        """Positive part of rho (noise memorization that helps fit y_i)."""
        return None if self.rho is None else self.rho.clamp_min(0)

    @property
    def rho_neg(self) -> torch.Tensor | None:
        """Negative part of rho (as a non-positive tensor)."""
        return None if self.rho is None else self.rho.clamp_max(0)


def _record_set(record: Iterable[str] | str | None) -> frozenset[str]:
    if record is None:
        return frozenset()
    if isinstance(record, str):
        record = (record,)
    try:
        names = frozenset(record)
    except TypeError as exc:
        raise TypeError(f"record: expected names from {RECORDABLE}, got {record!r}") from exc
    unknown = names - set(RECORDABLE)
    if unknown:
        raise ValueError(f"record: unknown quantities {sorted(unknown)}; choose from {RECORDABLE}")
    return names


def record_steps(steps: int, every: int) -> list[int]:
    """Steps at which histories are recorded: 0, every, 2 every, ..., and always the last step."""
    ts = list(range(0, steps + 1, every))
    if ts[-1] != steps:
        ts.append(steps)
    return ts


def train(
    W0: torch.Tensor,
    M: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    q: float = 3,
    lr: float,
    steps: int,
    engine: str = "weights",
    record: Iterable[str] | str | None = ("loss",),
    record_every: int = 1,
    on_divergence: str = "warn",
) -> TrainResult:
    """Full-batch gradient descent from ``W0`` under the fixed mask ``M``.

    Parameters
    ----------
    W0, M : [batch..., 2, m, d]
        Initial weights and the binary pruning mask (pruned weights get zero gradient).
    X, y : [batch..., n, P, d] and [batch..., n]
        Training inputs and labels in {-1, +1}. Leading dimensions of W0, M, X, y broadcast.
    q, lr, steps :
        Activation power (>= 1), step size (> 0) and number of GD steps (>= 0).
    engine : "weights" or "coefficients"
    record :
        Any of "loss", "train_error", "gamma", "rho"; the loss is always recorded.
        "gamma" and "rho" need the two-patch data model (X[..., i, 0] = y_i mu).
    record_every :
        Record every k steps (and at the last step).
    on_divergence : "warn" or "raise"
        A network whose loss or weights become non-finite is frozen at its last finite iterate and
        flagged in ``result.diverged``; then a ``RuntimeWarning`` is issued, or
        :class:`TrainingDiverged` raised.
    """
    bs, q = _validate(W0, M, X, y, q)
    lr = check_positive("lr", lr)
    steps = check_nonneg_int("steps", steps)
    every = check_positive_int("record_every", record_every)
    names = _record_set(record) | {"loss"}
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {ENGINES}, got {engine!r}")
    if on_divergence not in ("warn", "raise"):
        raise ValueError(f"on_divergence: must be 'warn' or 'raise', got {on_divergence!r}")
    if engine == "coefficients" or names & {"gamma", "rho"}:
        from prunebook import dynamics

        split = dynamics.split_patches(X, y)  # validates the two-patch structure before any work
    else:
        split = None

    W = W0.expand(*bs, *W0.shape[-3:]).clone()
    Mf = M.to(W.dtype)
    if engine == "coefficients":
        from prunebook.dynamics import train_coefficients

        result = train_coefficients(W, Mf, split, y, q=q, lr=lr, steps=steps, names=names, every=every)
    else:
        result = _train_weights(W, Mf, X, y, q=q, lr=lr, steps=steps, names=names, every=every, split=split)
    _report_divergence(result.diverged, on_divergence)
    return result


def _report_divergence(diverged: torch.Tensor, mode: str) -> None:
    count = int(diverged.sum())
    if count == 0:
        return
    msg = (
        f"{count} of {diverged.numel()} networks diverged (non-finite loss or weights); "
        "they were frozen at their last finite iterate: lower lr"
    )
    if mode == "raise":
        raise TrainingDiverged(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _train_weights(W, M, X, y, *, q, lr, steps, names, every, split) -> TrainResult:
    times = record_steps(steps, every)
    at = set(times)
    hist: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    diverged = torch.zeros(W.shape[:-3], dtype=torch.bool, device=W.device)
    if split is not None:
        from prunebook.dynamics import SignalNoiseBasis

        basis = SignalNoiseBasis(M, split.mu, split.xi, dtype=W.dtype)
        W0_eff = W * M

    def snapshot(loss_t, margins):
        hist["loss"].append(loss_t)
        if "train_error" in names:
            hist["train_error"].append((margins <= 0).to(W.dtype).mean(-1))
        if names & {"gamma", "rho"}:
            gamma, rho = basis.gamma_rho(basis.coefficients(W * M - W0_eff))
            if "gamma" in names:
                hist["gamma"].append(gamma)
            if "rho" in names:
                hist["rho"].append(rho)

    for t in range(steps + 1):
        loss_t, G, margins = loss_and_gradient(W, M, X, y, q)
        if t in at:
            snapshot(loss_t, margins)
        if t == steps:
            break
        W_new = W - lr * G
        ok = torch.isfinite(loss_t) & torch.isfinite(W_new.sum(dim=(-3, -2, -1)))  # non-finite iff some entry is
        diverged |= ~ok
        W = torch.where(diverged[..., None, None, None], W, W_new)

    out = {k: torch.stack(v) for k, v in hist.items()}
    return TrainResult(
        W=W,
        steps=torch.tensor(times),
        loss=out["loss"],
        train_error=out.get("train_error"),
        gamma=out.get("gamma"),
        rho=out.get("rho"),
        diverged=diverged,
        engine="weights",
    )
