"""The weights engine: full-batch GD on the weights themselves, O(m n d) a step, any number of patches."""

from __future__ import annotations

import torch

from prunebook.conventions import error_from_margins
from prunebook.decomposition import PatchSplit, SignalNoiseBasis
from prunebook.engines.guard import Recorder, guarded_steps
from prunebook.network import loss_and_unmasked_gradient
from prunebook.result import TrainResult, record_steps

__all__ = ["bytes_per_network", "run"]


def bytes_per_network(d: int, n: int, m: int, element_size: int, patches: int = 2) -> int:
    """Peak memory of one network in :func:`run` (inputs, weights, gradient, pre-activations)."""
    elements = patches * n * d + 4 * 2 * m * d + 4 * n * patches * 2 * m
    return elements * element_size


def run(W, M, X, y, *, q, lr, steps, names, every, split: PatchSplit | None, check_every=None) -> TrainResult:
    """GD on the weights; called by :func:`prunebook.train` with validated, expanded inputs (M in W's dtype).

    The state is the masked weights W ⊙ M (pruned weights never move), updated in one pass,
    W ⊙ M - lr (dL/dW ⊙ M); the final W puts the pruned initial weights back.
    """
    batch_ndim = W.dim() - 3
    recorder = Recorder(names, record_steps(steps, every))
    W0_masked = W * M
    if names & {"gamma", "rho"}:
        basis = SignalNoiseBasis(M, split.mu, split.xi, dtype=W.dtype)

    def evaluate(Weff):
        loss_t, G, margins = loss_and_unmasked_gradient(Weff, X, y, q)
        return (loss_t, G, margins), loss_t

    def update(Weff, aux):
        return torch.addcmul(Weff, aux[1], M, value=-lr)

    def record(t, Weff, aux):
        loss_t, _, margins = aux
        values = {"loss": loss_t}
        if "train_error" in names:
            values["train_error"] = error_from_margins(margins)
        if names & {"gamma", "rho"}:
            gamma, rho = basis.gamma_rho(basis.coefficients(Weff - W0_masked))
            if "gamma" in names:
                values["gamma"] = gamma
            if "rho" in names:
                values["rho"] = rho
        recorder.add(**values)

    Weff, diverged = guarded_steps(W0_masked.clone(), evaluate, update, record, recorder, steps=steps,
                                   batch_ndim=batch_ndim, check_every=check_every)
    hist = recorder.stacked()
    return TrainResult(
        W=W - W0_masked + Weff,
        steps=torch.tensor(sorted(recorder.at)),
        times=lr * torch.tensor(sorted(recorder.at), dtype=torch.float64),
        loss=hist["loss"],
        train_error=hist.get("train_error"),
        gamma=hist.get("gamma"),
        rho=hist.get("rho"),
        diverged=diverged,
        engine="weights",
    )
