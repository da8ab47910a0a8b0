"""GD in consecutive segments, each recorded at its own spacing (stage 1 step by step, stage 2 sparsely)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prunebook._checks import check_positive_int
from prunebook.result import TrainResult
from prunebook.train import train

__all__ = ["train_segments"]


def train_segments(W0, M, X, y, *, q: float, lr: float, segments: Sequence[tuple[int, int]], engine: str = "coefficients",
                   record=("loss", "train_error", "gamma", "rho")) -> TrainResult:
    """GD in consecutive segments ``[(steps, record_every), ...]``, each recorded at its own spacing.

    One trajectory, exactly that of ``train(W0, ..., steps=sum of the steps)``: every segment
    starts from the weights where the previous one stopped, and its (gamma, rho), which the engine
    counts from the segment's start, are added to the previous totals (the decomposition is
    additive). Use it to record stage 1 step by step and the long stage 2 sparsely.
    """
    if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence) or len(segments) == 0:
        raise ValueError("segments: a non-empty list of (steps, record_every) pairs")
    for seg in segments:
        if not (isinstance(seg, (tuple, list)) and len(seg) == 2):
            raise ValueError(f"segments: each entry must be a (steps, record_every) pair, got {seg!r}")
        check_positive_int("segments", seg[0])
        check_positive_int("segments", seg[1])
    parts, W, offset = [], W0, 0
    for steps, every in segments:
        part = train(W, M, X, y, q=q, lr=lr, steps=steps, engine=engine, record=record, record_every=every)
        parts.append((offset, part))
        W, offset = part.W, offset + steps
    first = parts[0][1]
    hist = {name: [] for name in ("steps", "loss", "train_error", "gamma", "rho")}
    g_total = r_total = None
    for k, (off, part) in enumerate(parts):
        keep = slice(None) if k == 0 else slice(1, None)  # a segment's step 0 is the previous segment's last record
        hist["steps"].append(part.steps[keep] + off)
        hist["loss"].append(part.loss[keep])
        if part.train_error is not None:
            hist["train_error"].append(part.train_error[keep])
        if part.gamma is not None:
            g = part.gamma if g_total is None else part.gamma + g_total
            hist["gamma"].append(g[keep])
            g_total = g[-1]
        if part.rho is not None:
            r = part.rho if r_total is None else part.rho + r_total
            hist["rho"].append(r[keep])
            r_total = r[-1]
    cat = {k: (torch.cat(v) if v else None) for k, v in hist.items()}
    diverged = torch.stack([part.diverged for _, part in parts]).any(dim=0)
    return TrainResult(W=W, steps=cat["steps"], loss=cat["loss"], train_error=cat["train_error"], gamma=cat["gamma"],
                       rho=cat["rho"], diverged=diverged, engine=first.engine)
