"""The finiteness guard shared by both training engines: run k steps, check, replay on failure.

A network whose loss or state stops being finite is frozen at its last finite iterate and flagged.
Checking that at every step costs several tensor operations, so :func:`guarded_steps` runs
``check_every`` steps at a time with a running checksum (non-finite from the first non-finite
value on, since inf and nan persist through sums) and, only when a check fails, replays those
steps from a saved copy with a check at every step. The result is identical to checking every step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["CHECK_EVERY", "Recorder", "guarded_steps"]

#: steps between finiteness checks (a replay re-runs at most this many steps)
CHECK_EVERY = 50


class Recorder:
    """Histories of named quantities, appended at the steps of a schedule; can roll back (for replays)."""

    def __init__(self, names: Iterable[str], at: Iterable[int]):
        self.history: dict[str, list[torch.Tensor]] = {k: [] for k in names}
        self.at = frozenset(at)

    def wants(self, t: int) -> bool:
        return t in self.at

    def add(self, **values: torch.Tensor) -> None:
        for k, v in values.items():
            self.history[k].append(v)

    def mark(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.history.items()}

    def rollback(self, mark: dict[str, int]) -> None:
        for k, v in self.history.items():
            del v[mark[k] :]

    def stacked(self) -> dict[str, torch.Tensor]:
        """Each history as one tensor, record axis first."""
        return {k: torch.stack(v) for k, v in self.history.items() if v}


def _per_network(x: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    return x.reshape(*x.shape[:batch_ndim], -1).sum(-1)


def guarded_steps(
    state: torch.Tensor,
    evaluate: Callable[[torch.Tensor], tuple[object, torch.Tensor]],
    update: Callable[[torch.Tensor, object], torch.Tensor],
    record: Callable[[int, torch.Tensor, object], None],
    recorder: Recorder,
    *,
    steps: int,
    batch_ndim: int,
    check_every: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``steps`` steps ``state <- update(state, evaluate(state))`` on a batch of independent networks.

    ``state`` has the batch dimensions first (``batch_ndim`` of them). ``evaluate(state)`` returns
    ``(aux, check)``: whatever ``update`` and ``record`` need, and a per-network tensor that is
    non-finite iff this evaluation is (a sum of the margins, or the loss). ``record(t, state, aux)``
    is called at every step of ``recorder``'s schedule, including ``t = steps``.

    Returns the final state and the per-network ``diverged`` flags; a diverged network's state is
    its last finite iterate.
    """
    every = CHECK_EVERY if check_every is None else check_every
    bs = state.shape[:batch_ndim]
    diverged = torch.zeros(bs, dtype=torch.bool, device=state.device)
    frozen_shape = (*bs, *([1] * (state.dim() - batch_ndim)))
    checked = False  # a check at every step: while replaying a failed check, and once a network diverged
    t = 0
    while t < steps:
        end = min(t + every, steps)
        saved, t0, mark = state.clone(), t, recorder.mark()
        checksum = torch.zeros(bs, dtype=state.dtype, device=state.device)
        for t in range(t0, end):
            aux, check = evaluate(state)
            if recorder.wants(t):
                record(t, state, aux)
            new = update(state, aux)
            if checked:
                diverged |= ~torch.isfinite(_per_network(new, batch_ndim) + check)
                state = torch.where(diverged.reshape(frozen_shape), state, new)
            else:
                checksum += check
                state = new
        t = end
        if not checked and not bool(torch.isfinite(checksum + _per_network(state, batch_ndim)).all()):
            state, t, checked = saved, t0, True  # replay these steps, checking each
            recorder.rollback(mark)
        else:
            checked = bool(diverged.any())
    if recorder.wants(steps):
        aux, _ = evaluate(state)
        record(steps, state, aux)
    return state, diverged
