"""Full-batch gradient descent on the masked network, batched over many networks.

``train(W0, M, X, y, q=..., lr=..., steps=...)`` runs GD on L(W) = (1/n) sum_i log(1 + exp(-y_i f(W, x_i)))
for every network in the broadcast batch of (W0, M, X, y) at once. Each network has its own
weights, mask and data; networks never interact, so a network's trajectory does not depend on
which other networks share its batch.

Two engines give the same trajectory (to float precision):

- ``engine="weights"`` (:mod:`prunebook.engine_weights`): GD on the weights, O(m n d) a step;
- ``engine="coefficients"`` (:mod:`prunebook.engine_coefficients`): GD on the signal-noise
  coefficients, O(m n^2) a step after an O(m n^2 d) set-up (needs data of the two-patch model).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from prunebook import engine_coefficients, engine_weights
from prunebook._checks import check_nonneg_int, check_one_of, check_positive, check_positive_int
from prunebook.decomposition import split_patches
from prunebook.network import validate_inputs
from prunebook.result import RECORDABLE, TrainingDiverged, TrainResult, record_set, report_divergence

__all__ = ["ENGINES", "RECORDABLE", "TrainResult", "TrainingDiverged", "train", "bytes_per_network"]

ENGINES = {"weights": engine_weights, "coefficients": engine_coefficients}


def bytes_per_network(engine: str, *, d: int, n: int, m: int, element_size: int) -> int:
    """Peak memory of one network trained by ``engine`` (each engine owns its estimate)."""
    check_one_of("engine", engine, ENGINES)
    return ENGINES[engine].bytes_per_network(d, n, m, element_size)


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
    bs, q = validate_inputs(W0, M, X, y, q)
    lr = check_positive("lr", lr)
    steps = check_nonneg_int("steps", steps)
    every = check_positive_int("record_every", record_every)
    names = record_set(record)
    check_one_of("engine", engine, ENGINES)
    check_one_of("on_divergence", on_divergence, ("warn", "raise"))
    needs_split = engine == "coefficients" or names & {"gamma", "rho"}
    split = split_patches(X, y) if needs_split else None  # validates the two-patch structure before any work

    W = W0.expand(*bs, *W0.shape[-3:]).clone()
    M_float = M.to(W.dtype)
    if engine == "coefficients":
        result = engine_coefficients.run(W, M_float, split, y, q=q, lr=lr, steps=steps, names=names, every=every)
    else:
        result = engine_weights.run(W, M_float, X, y, q=q, lr=lr, steps=steps, names=names, every=every, split=split)
    report_divergence(result.diverged, on_divergence)
    return result
