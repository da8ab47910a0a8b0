"""What training returns: the result type, the record schedule and divergence reporting (a leaf module)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

__all__ = ["RECORDABLE", "TrainResult", "TrainingDiverged", "record_steps", "record_set", "report_divergence"]

#: Quantities ``train(..., record=...)`` can record (the loss always is).
RECORDABLE = ("loss", "train_error", "gamma", "rho")


class TrainingDiverged(RuntimeError):
    """Raised by ``train(..., on_divergence="raise")`` when a network's loss or weights stop being finite."""


@dataclass
class TrainResult:
    """What ``train`` and ``flow`` return. History tensors have the record axis first: ``[T, batch...]``.

    ``times`` are the times of the records on the flow's clock: lr x step for GD, the integration
    time for the flow. GD records at ``steps``; the flow has no steps (``steps`` is None) and reports
    the gradient evaluations each network used, the time it ended and whether it stopped early.
    """

    W: torch.Tensor  #: final weights [batch..., 2, m, d]; pruned entries keep their initial value
    steps: torch.Tensor | None  #: GD: the steps of the records, [T] (0 and the last step included); flow: None
    loss: torch.Tensor  #: training loss history [T, batch...]
    train_error: torch.Tensor | None = None  #: training error history [T, batch...]
    gamma: torch.Tensor | None = None  #: signal coefficients [T, batch..., 2, m]
    rho: torch.Tensor | None = None  #: noise coefficients [T, batch..., 2, m, n]
    diverged: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.bool))
    #: per network: True if its loss or weights became non-finite (its W is the last finite iterate)
    engine: str = "weights"
    times: torch.Tensor | None = None  #: float64 [T]: the time of each record (lr x step for GD)
    evaluations: torch.Tensor | None = None  #: flow: gradient evaluations per network, int64 [batch...]
    t_final: torch.Tensor | None = None  #: flow: the time each network ended, float64 [batch...]
    stopped: torch.Tensor | None = None  #: flow: True where the loss reached ``stop_loss`` before t_end

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


def record_set(record: Iterable[str] | str | None) -> frozenset[str]:
    """The validated set of names in ``record`` (the loss is always added)."""
    if record is None:
        record = ()
    if isinstance(record, str):
        record = (record,)
    try:
        names = frozenset(record)
    except TypeError as exc:
        raise TypeError(f"record: expected names from {RECORDABLE}, got {record!r}") from exc
    unknown = names - set(RECORDABLE)
    if unknown:
        raise ValueError(f"record: unknown quantities {sorted(unknown)}; choose from {RECORDABLE}")
    return names | {"loss"}


def record_steps(steps: int, every: int) -> list[int]:
    """Steps at which histories are recorded: 0, every, 2 every, ..., and always the last step."""
    ts = list(range(0, steps + 1, every))
    if ts[-1] != steps:
        ts.append(steps)
    return ts


def report_divergence(diverged: torch.Tensor, mode: str) -> None:
    """Warn (``mode="warn"``) or raise :class:`TrainingDiverged` (``"raise"``) if any network diverged."""
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
