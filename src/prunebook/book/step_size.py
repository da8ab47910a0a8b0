"""Chapter 3: GD at a step size lr against the gradient flow it approximates (lr -> 0).

GD with step lr is the explicit Euler method for dW/dt = -grad L(W): after ``t_end / lr`` steps it
sits at distance O(lr) from the flow at time t_end, as long as lr is small enough to resolve the
blow-up of stage 1. :func:`step_size_limit` runs one network both ways, in float64, and fits the
slope of log distance against log lr over the small steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from prunebook._checks import check_positive
from prunebook.train import flow, train

__all__ = ["StepSizeLimit", "step_size_limit"]


class StepSizeLimit(NamedTuple):
    lrs: np.ndarray  #: the step sizes, decreasing
    distance: np.ndarray  #: ||W_GD - W_flow|| / ||W_flow - W0|| at t_end, per lr
    slope: float  #: least-squares slope of log distance on log lr over lr <= fit_below
    fit_below: float
    flow_evaluations: int  #: the flow's right-hand side evaluations (rtol 1e-10)
    gd: list  #: the GD results (records at ``record_every`` steps' times)
    reference: object  #: the flow's result


def step_size_limit(W0: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, q: float = 3,
                    lrs: Sequence[float] = (1.0, 0.1, 0.03, 0.01), t_end: float = 1000.0, fit_below: float = 0.1,
                    record_times: Sequence[float] | None = None, record=("loss", "gamma", "rho")) -> StepSizeLimit:
    """GD at each lr in ``lrs`` for t_end / lr steps and the flow (rtol 1e-10) on one network, in float64.

    W0, M [2, m, d], X [n, 2, d], y [n]. The flow records at every time in ``record_times`` (and 0,
    t_end); each GD run records at those of them that are whole multiples of its lr (every record
    time is, for a small enough lr), every gcd of their step counts. Every t_end / lr must be a
    whole number of steps.
    """
    t_end = check_positive("t_end", t_end)
    fit_below = check_positive("fit_below", fit_below)
    lrs = sorted((check_positive("lrs", lr) for lr in lrs), reverse=True)
    if len(lrs) < 2 or sum(lr <= fit_below for lr in lrs) < 2:
        raise ValueError(f"lrs: need at least two step sizes at or below fit_below = {fit_below:g} for the slope")
    steps = [t_end / lr for lr in lrs]
    if any(abs(s - round(s)) > 1e-9 * s for s in steps):
        raise ValueError(f"lrs: t_end / lr must be a whole number of steps, got {steps}")
    W0, M, X, y = W0.double(), M.double(), X.double(), y.double()
    times = [0.0, t_end] if record_times is None else sorted({0.0, t_end, *map(float, record_times)})
    reference = flow(W0, M, X, y, q=q, t_end=t_end, rtol=1e-10, stop_loss=None, record=record, record_at=times)
    move = float((reference.W - W0).norm())
    gd, distance = [], []
    for lr, s in zip(lrs, steps):
        every = [round(t / lr) for t in times[1:] if abs(t / lr - round(t / lr)) <= 1e-9 * max(t / lr, 1)]
        stride = int(np.gcd.reduce(every)) if every else round(s)
        res = train(W0, M, X, y, q=q, lr=lr, steps=round(s), engine="coefficients", record=record, record_every=stride)
        gd.append(res)
        distance.append(float((res.W - reference.W).norm()) / move)
    lrs_a, dist = np.asarray(lrs), np.asarray(distance)
    small = lrs_a <= fit_below
    slope = float(np.polyfit(np.log(lrs_a[small]), np.log(dist[small]), 1)[0])
    return StepSizeLimit(lrs_a, dist, slope, fit_below, int(reference.evaluations), gd, reference)
