r"""Chapter 3's stage-1 analyses: the race between signal learning and noise memorization.

Stage 1 of the race (chapter 3), the book's heuristic. At a small initialization f is about 0, so
l'_i is about -1/2. A usable neuron of class j (it keeps the signal, and its initial overlap
x = j <w0 ⊙ m, mu> is > 0) is active on the signal patches of the n_j samples labelled j only, and
its overlap follows x <- x + A_signal x^(q-1) with A_signal = lr q ||mu ⊙ m||^2 n_j / (2 n m)
(= lr q ||mu||^2 / (4 m) for balanced labels). The overlap x_i = <w ⊙ m, xi_i> of a neuron of class
j = y_i with the noise of sample i follows x_i <- x_i + A_noise x_i^(q-1) with
A_noise = lr q ||xi_i ⊙ m||^2 / (2 n m) (cross terms between samples left out). For q > 2 such a
recursion stays near x0 and then blows up after about 1 / ((q - 2) A x0^(q-2)) steps
(:func:`blowup_time`); :func:`stage1_race` compares the first signal blow-up with the noise
blow-ups of the samples and predicts, network by network, which one wins.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from prunebook._checks import check_finite, check_labels, check_positive, check_q, check_tensor
from prunebook.conventions import class_signs
from prunebook.pruning import usable

__all__ = ["Stage1", "stage1_rates", "blowup_time", "Race", "stage1_race", "learned_noise_spread",
           "signal_overlaps", "first_time", "race_bins", "HeldOutThreshold", "held_out_threshold"]


class Stage1(NamedTuple):
    """Initial overlaps and stage-1 growth rates (the book's heuristic; see the module docstring)."""

    signal_overlap: torch.Tensor  #: j <w0 ⊙ m, mu>, [..., 2, m]
    noise_overlap: torch.Tensor  #: <w0 ⊙ m, xi_i>, [..., 2, m, n]
    signal_rate: torch.Tensor  #: A_signal = lr q ||mu ⊙ m||^2 n_j / (2 n m), [..., 2, m]
    noise_rate: torch.Tensor  #: A_noise = lr q ||xi_i ⊙ m||^2 / (2 n m), [..., 2, m, n]
    usable: torch.Tensor  #: bool [..., 2, m]: keeps the signal and signal_overlap > 0
    memorizes: torch.Tensor  #: bool [..., 2, m, n]: j y_i > 0 and noise_overlap > 0 (can grow on sample i)


def stage1_rates(W0, M, mu, xi, y, *, q: float, lr: float = 1.0) -> Stage1:
    """Overlaps and growth rates of stage 1 for a batch of networks.

    W0, M [..., 2, m, d]; mu [..., d]; xi [..., n, d]; y [..., n] in {-1, +1} (leading dimensions
    broadcast). Sparse or dense signal alike (the noise is orthogonal to mu).
    """
    q = check_q(q)
    lr = check_positive("lr", lr)
    for name, t, k in (("W0", W0, 3), ("M", M, 3), ("mu", mu, 1), ("xi", xi, 2), ("y", y, 1)):
        check_tensor(name, t, ndim_min=k)
    check_finite("W0", W0)
    check_labels("y", y)
    d, n = W0.shape[-1], y.shape[-1]
    if M.shape[-3:] != W0.shape[-3:] or mu.shape[-1] != d or xi.shape[-1] != d or xi.shape[-2] != n:
        raise ValueError(f"xi: shapes do not match: W0 {tuple(W0.shape)}, M {tuple(M.shape)}, mu {tuple(mu.shape)}, "
                         f"xi {tuple(xi.shape)}, y {tuple(y.shape)}")
    m = W0.shape[-2]
    dt = W0.dtype
    Mf, mu, xi, y = M.to(dt), mu.to(dt), xi.to(dt), y.to(dt)
    j = class_signs(W0)
    Wm = W0 * Mf
    signal_overlap = j[:, None] * (Wm * mu[..., None, None, :]).sum(-1)
    noise_overlap = torch.einsum("...jrk,...ik->...jri", Wm, xi)
    n_j = torch.stack([(y > 0).sum(-1), (y < 0).sum(-1)], dim=-1).to(dt)  # [..., 2]
    signal_rate = lr * q * (Mf * mu[..., None, None, :] ** 2).sum(-1) * n_j[..., None] / (2 * n * m)
    noise_rate = lr * q * torch.einsum("...jrk,...ik->...jri", Mf, xi**2) / (2 * n * m)
    own = (j[:, None, None] * y[..., None, None, :]) > 0  # [..., 2, 1, n]
    return Stage1(signal_overlap, noise_overlap, signal_rate, noise_rate, usable(W0, M, mu),
                  own & (noise_overlap > 0))


def blowup_time(rate, x0, q: float):
    """Steps until x <- x + rate x^(q-1) blows up from x0, in the continuous approximation:
    1 / ((q - 2) rate x0^(q-2)) for q > 2; infinite where rate or x0 is not positive."""
    q = check_q(q)
    if q <= 2:
        raise ValueError(f"q: the blow-up time is finite only for q > 2, got {q!r}")
    rate = torch.as_tensor(rate)
    x0 = torch.as_tensor(x0, dtype=rate.dtype)
    ok = (rate > 0) & (x0 > 0)
    safe = torch.where(ok, rate * x0.clamp_min(torch.finfo(rate.dtype).tiny) ** (q - 2), torch.ones_like(rate))
    return torch.where(ok, 1 / ((q - 2) * safe), torch.full_like(rate, math.inf))


class Race(NamedTuple):
    """Stage-1 blow-up times of one or many networks and the predicted winner (the book's heuristic)."""

    signal_time: torch.Tensor  #: first signal blow-up over the usable neurons, [...] (inf if none)
    noise_time: torch.Tensor  #: per sample, the first noise blow-up over the neurons of its class, [..., n]
    ratio: torch.Tensor  #: median over samples of noise_time / signal_time, [...]: the signal wins when > 1


def stage1_race(W0, M, mu, xi, y, *, q: float, lr: float = 1.0) -> Race:
    """Predict the race network by network: the first usable neuron's signal blow-up against the
    median sample's first noise blow-up. ``ratio`` does not depend on ``lr`` (both times scale as 1/lr)."""
    st = stage1_rates(W0, M, mu, xi, y, q=q, lr=lr)
    t_sig = torch.where(st.usable, blowup_time(st.signal_rate, st.signal_overlap, q), math.inf)
    t_noise = torch.where(st.memorizes, blowup_time(st.noise_rate, st.noise_overlap, q), math.inf)
    signal_time = t_sig.flatten(-2).amin(-1)
    noise_time = t_noise.flatten(-3, -2).amin(-2)  # [..., n]
    ratio = noise_time.median(dim=-1).values / signal_time
    return Race(signal_time, noise_time, ratio)


def learned_noise_spread(rho, M, xi, *, sigma_p: float = 1.0):
    """Standard deviation, over a fresh noise patch xi ~ N(0, sigma_p^2 (I - mu mu^T/||mu||^2)), of
    the learned noise part of each neuron's pre-activation, sum_i rho_i <xi_i ⊙ m, xi ⊙ m> / ||xi_i ⊙ m||^2.

    rho [..., 2, m, n], M [..., 2, m, d], xi [..., n, d] (the training noise, orthogonal to mu);
    returns [..., 2, m]. One memorized coefficient rho_i alone contributes sigma_p |rho_i| / ||xi_i ⊙ m||,
    about |rho_i| / sqrt((1 - p) d): per coefficient, pruning makes the fluctuation larger.
    """
    check_positive("sigma_p", sigma_p)
    check_tensor("rho", rho, ndim_min=3)
    check_tensor("xi", xi, ndim_min=2)
    if rho.shape[-1] != xi.shape[-2] or M.shape[-1] != xi.shape[-1] or rho.shape[-3:-1] != M.shape[-3:-1]:
        raise ValueError(f"rho: shapes do not match: rho {tuple(rho.shape)}, M {tuple(M.shape)}, xi {tuple(xi.shape)}")
    Mf, xi = M.to(rho.dtype), xi.to(rho.dtype)
    sq = torch.einsum("...jrk,...ik->...jri", Mf, xi**2)  # ||xi_i ⊙ m||^2
    c = torch.where(sq > 0, rho / sq.where(sq > 0, torch.ones_like(sq)), torch.zeros_like(rho))
    v = torch.einsum("...jri,...ik->...jrk", c, xi) * Mf  # sum_i c_i xi_i ⊙ m
    # the fresh noise is isotropic on mu's complement and v is orthogonal to mu: Var = sigma_p^2 ||v||^2
    return sigma_p * v.norm(dim=-1)


def signal_overlaps(gamma, W0, M, mu):
    """The signal overlaps x_t = j <w_t ⊙ m, mu> = j <w0 ⊙ m, mu> + j gamma_t of recorded signal
    coefficients gamma [T, ..., 2, m] (W0, M [..., 2, m, d], mu [..., d]); exact for the sparse
    signal, whose coordinate no noise vector touches. Returns [T, ..., 2, m]."""
    check_tensor("gamma", gamma, ndim_min=3)
    j = class_signs(gamma)[:, None]
    x0 = j * ((W0 * M.to(W0.dtype)) * mu.to(W0.dtype)[..., None, None, :]).sum(-1)
    return x0.to(gamma.dtype) + j * gamma


def first_time(times, values, level: float):
    """The first of ``times`` [T] at which ``values`` [T, ...] reach ``level`` (inf where never), [...]."""
    times = torch.as_tensor(times, dtype=torch.float64)
    values = torch.as_tensor(values)
    if values.shape[0] != times.shape[0]:
        raise ValueError(f"values: the first axis ({values.shape[0]}) must match times ({times.shape[0]})")
    hit = values >= level
    idx = hit.to(torch.int64).argmax(0)
    return torch.where(hit.any(0), times[idx], torch.full(idx.shape, math.inf, dtype=torch.float64))


def race_bins(ratio, success, edges) -> pd.DataFrame:
    """Success counts of independent networks in bins of the race ratio R, with 95% Wilson intervals.

    ``ratio`` and ``success`` have one entry per network; ``edges`` are increasing bin edges (the
    last may be inf). Returns one row per non-empty bin: lo, hi, centre (geometric, or 1.5 lo for an
    open last bin), k, n, wilson_lo, wilson_hi.
    """
    from prunebook.stats import wilson_interval

    r = np.asarray(ratio, dtype=float)
    ok = np.asarray(success, dtype=bool)
    edges = np.asarray(edges, dtype=float)
    if r.shape != ok.shape or r.ndim != 1:
        raise ValueError("ratio: ratio and success must be 1-d arrays of equal length")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges: need at least two increasing bin edges")
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (r >= lo) & (r < hi)
        if not inside.any():
            continue
        k, n = int(ok[inside].sum()), int(inside.sum())
        wlo, whi = wilson_interval(k, n)
        centre = math.sqrt(lo * hi) if lo > 0 and math.isfinite(hi) else (1.5 * lo if lo > 0 else hi / 1.5)
        rows.append(dict(lo=lo, hi=hi, centre=centre, k=k, n=n, wilson_lo=float(wlo), wilson_hi=float(whi)))
    return pd.DataFrame(rows)


class HeldOutThreshold(NamedTuple):
    """A threshold on R fitted on some networks and judged on others."""

    fitted: float  #: R at which a logistic fit (on log R) of the fitting networks puts P(success) = 1/2
    fit_networks: int
    eval_networks: int
    agree_fitted: int  #: evaluation networks whose outcome the fitted threshold predicts
    agree_one: int  #: evaluation networks whose outcome the unfitted threshold R = 1 predicts


def held_out_threshold(ratio, success, fit) -> HeldOutThreshold:
    """Fit the half-way point of R on the networks marked ``fit`` and count, on the others, how
    many outcomes it predicts, against the threshold 1 that the heuristic gives with nothing fitted.
    One entry per independent network (a network with R = 0, i.e. no usable neuron, is predicted to fail).
    Where the fitting networks (with R > 0) show only one outcome there is no threshold to locate:
    ``fitted`` is then nan and ``agree_fitted`` 0."""
    from prunebook.stats import logistic_fit

    r = np.asarray(ratio, dtype=float)
    ok = np.asarray(success, dtype=bool)
    fit = np.asarray(fit, dtype=bool)
    if not (r.shape == ok.shape == fit.shape) or r.ndim != 1:
        raise ValueError("fit: ratio, success and fit must be 1-d arrays of equal length")
    use = fit & (r > 0)
    ev = ~fit
    agree_one = int(((r[ev] > 1) == ok[ev]).sum())
    if ok[use].all() or not ok[use].any():
        return HeldOutThreshold(math.nan, int(fit.sum()), int(ev.sum()), 0, agree_one)
    a, b = logistic_fit(np.log(r[use]), ok[use].astype(float))
    if not b > 0:
        raise ValueError("success: the fitted success probability does not grow with R")
    fitted = float(np.exp(-a / b))
    return HeldOutThreshold(fitted, int(fit.sum()), int(ev.sum()), int(((r[ev] > fitted) == ok[ev]).sum()),
                            agree_one)
