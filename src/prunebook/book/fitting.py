"""Chapters 1 and 2: which training samples a network can fit, and the convergence picture.

sigma(z) = max(z, 0)^q has sigma'(z) = 0 for z <= 0. A training sample i of class j = y_i on
which *every* neuron of bank j has a non-positive pre-activation on every patch sends no gradient
into bank j: nothing pushes F_j(x_i) up. We call such a sample **silent** for the network, and a
sample silent at initialization **stuck**. A stuck sample is fitted only if the updates driven by
the *other* samples happen to switch a neuron of its class on for it; otherwise GD and the flow
leave F_j(x_i) = 0 and only push F_{-j}(x_i) down to 0, so f(x_i) tends to 0: the sample stays on
the decision boundary (a training error, or a hair's breadth from one) and adds ln 2 / n to the
training loss. A sample can also fall silent during training, when the neurons that saw it turn
away. This is why finding 1 ("the training loss goes to zero") can only hold with high
probability over the initialization.

- :func:`silent_samples`: the silent samples of networks at given weights (stuck ones at W0);
- :func:`prob_stuck`: the book's heuristic probability that a network has a stuck sample;
- :func:`outcome_summary`: per group (a signal norm, a pruning fraction), what the networks did;
- :func:`fit_table`: a :class:`prunebook.experiment.Run`'s table with, per network, its stuck
  samples, how many of them were fitted after all, the samples left at f = 0 (stalled) and the
  final loss in units of ln 2 / n.

At the end of a run the sign of a pre-activation that the dynamics drive to 0 from above is a
matter of rounding, so the end state is read from the margins, not from activity: a sample is
*stalled* when its margin y f is below :data:`STALLED_MARGIN` (its loss is then within 0.7% of
ln 2, or above it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy import stats as _st

from prunebook._checks import check_fraction, check_positive_int
from prunebook.conventions import LOSS_TARGET, SUCCESS_ERROR
from prunebook.network import forward, preactivations, validate_inputs

__all__ = ["STALLED_MARGIN", "fit_table", "outcome_summary", "prob_stuck", "silent_samples"]

#: a training sample with margin y f below this is stalled (not fitted); fitted samples end far above it
STALLED_MARGIN = 0.01


def silent_samples(W: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bool [..., n]: samples on which no neuron of their own class is active at weights W.

    Active means a positive pre-activation <w_{j,r} ⊙ m_{j,r}, x_i^(patch)> on some patch. At the
    initial weights these are the *stuck* samples. Shapes as for :func:`prunebook.forward`.
    """
    validate_inputs(W, M, X, y, 3)
    Z = preactivations(W * M.to(W.dtype), X)  # [..., n, P, 2, m]
    active = (Z > 0).any(dim=-1).any(dim=-2)  # [..., n, 2]: some neuron of bank j active on x_i
    own = torch.where(y.to(W.dtype) > 0, active[..., 0], active[..., 1])
    return ~own


def prob_stuck(m: int, n: int, p: float = 0.0) -> float:
    """The book's heuristic probability that a network has at least one stuck sample at initialization.

    Sparse signal, Gaussian initialization, random pruning at ``p``. A bank j is active on every
    signal patch of its class when some neuron keeps the signal coordinate with the right sign (a
    usable neuron), so a stuck sample needs a bank without one, probability a = ((1 + p)/2)^m.
    Given that, each sample of the class is stuck when all m neurons are inactive on its noise
    patch: the m pre-activations are nearly independent symmetric Gaussians (the neurons' weight
    vectors are nearly orthogonal), probability b = 2^-m, independently over samples. With
    N_+ ~ Binomial(n, 1/2) samples of class +1,

        P = 1 - E[(1 - a (1 - (1 - b)^N_+)) (1 - a (1 - (1 - b)^(n - N_+)))],

    about n 4^-m for the dense network when that is small. (A neuron that keeps no noise
    coordinate is always inactive on the noise; ignored here, it matters only when (1 - p) d is
    close to 0.)
    """
    m = check_positive_int("m", m)
    n = check_positive_int("n", n)
    p = check_fraction("p", p)
    a, b = ((1 + p) / 2) ** m, 2.0 ** -m
    k = np.arange(n + 1)
    weights = _st.binom.pmf(k, n, 0.5)
    clean = (1 - a * (1 - (1 - b) ** k)) * (1 - a * (1 - (1 - b) ** (n - k)))
    return float(1 - (weights * clean).sum())


def fit_table(run, target_loss: float = LOSS_TARGET) -> pd.DataFrame:
    """``run.table()`` with the fitting picture of every network.

    Added columns: ``stuck`` (samples silent at initialization), ``stuck_fitted`` (those that end
    fitted, margin at least :data:`STALLED_MARGIN`), ``unfitted`` (training errors: margin <= 0),
    ``stalled`` (margin below :data:`STALLED_MARGIN`) and ``loss_units`` (the final training loss
    divided by ln 2 / n: a network whose only misfits are samples at f = 0 stalls at their number).
    """
    frame = run.table(target_loss)
    X, y = run.data.X, run.data.y
    stuck = silent_samples(run.W0, run.M, X, y)
    margins = forward(run.result.W, run.M, X, run.setting.q) * y.to(run.result.W.dtype)
    fitted = margins >= STALLED_MARGIN
    frame["stuck"] = stuck.sum(-1).cpu().numpy()
    frame["stuck_fitted"] = (stuck & fitted).sum(-1).cpu().numpy()
    frame["unfitted"] = (margins <= 0).sum(-1).cpu().numpy()
    frame["stalled"] = (~fitted).sum(-1).cpu().numpy()
    n = np.array([s.n for s in run.settings], dtype=float)
    frame["loss_units"] = frame["final_loss"].to_numpy() / (math.log(2) / n)
    return frame


def outcome_summary(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per value of ``by``: networks, converged, learned (test error below the book's success
    level), the median test error, and the networks with a stuck sample (if ``frame`` has them)."""
    for col in (by, "test_error", "converged"):
        if col not in frame:
            raise ValueError(f"frame: missing column {col!r}")
    df = frame.assign(_learned=frame["test_error"] < SUCCESS_ERROR)
    g = df.groupby(by, sort=True)
    out = pd.DataFrame({"networks": g.size(), "converged": g["converged"].sum(), "learned": g["_learned"].sum(),
                        "median_error": g["test_error"].median()})
    if "stuck" in df:
        out["with_stuck"] = g["stuck"].apply(lambda s: int((s > 0).sum()))
    return out.reset_index()
