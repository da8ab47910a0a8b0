r"""GD in coefficient space, written plainly for one network: the reference that chapter 3 shows.

By the decomposition (:mod:`prunebook.decomposition`), neuron r of class j has weights

.. math::

    w^{(t)}_{j,r} \odot m_{j,r} = w^{(0)}_{j,r} \odot m_{j,r}
      + \gamma^{(t)}_{j,r} \frac{\mu \odot m_{j,r}}{\|\mu \odot m_{j,r}\|^2}
      + \sum_i \rho^{(t)}_{j,r,i} \frac{\xi_i \odot m_{j,r}}{\|\xi_i \odot m_{j,r}\|^2},

so every inner product the network needs comes from the Gram matrix K of the masked vectors
(mu ⊙ m, xi_1 ⊙ m, ..., xi_n ⊙ m), and one GD step on the weights is exactly

.. math::

    \gamma_{j,r} \leftarrow \gamma_{j,r} - \frac{\eta j}{nm} \sum_i \ell'_i\,
        \sigma'(\langle w_{j,r} \odot m_{j,r}, y_i\mu\rangle)\, \|\mu \odot m_{j,r}\|^2, \qquad
    \rho_{j,r,i} \leftarrow \rho_{j,r,i} - \frac{\eta j y_i}{nm}\, \ell'_i\,
        \sigma'(\langle w_{j,r} \odot m_{j,r}, \xi_i\rangle)\, \|\xi_i \odot m_{j,r}\|^2 .

:func:`reference_step` is that step, line by line; :mod:`prunebook.engine_coefficients` is the
same computation arranged for speed (tested equal).

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
from collections.abc import Sequence
from typing import NamedTuple

import torch

from prunebook._checks import check_finite, check_labels, check_positive, check_positive_int, check_q, check_tensor
from prunebook.activation import activation, activation_derivative
from prunebook.conventions import class_signs
from prunebook.pruning import usable
from prunebook.result import TrainResult
from prunebook.train import train

__all__ = [
    "Inner", "inner_products", "reference_step", "reference_run", "train_segments",
    "Stage1", "stage1_rates", "blowup_time", "Race", "stage1_race", "learned_noise_spread",
]


class Inner(NamedTuple):
    """What one network needs, for the basis v = (mu ⊙ m, xi_1 ⊙ m, ..., xi_n ⊙ m) of each neuron."""

    h0: torch.Tensor  #: <w0 ⊙ m, v_a>, [2, m, n + 1]
    K: torch.Tensor  #: Gram matrices <v_a, v_b>, [2, m, n + 1, n + 1]


def inner_products(W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor) -> Inner:
    """h0 and K for one network: W0, M [2, m, d], mu [d], xi [n, d]."""
    V = torch.cat([mu[None], xi])  # [n + 1, d]
    M = M.to(W0.dtype)
    return Inner(h0=torch.einsum("jrk,ak->jra", W0 * M, V), K=torch.einsum("jrk,ak,bk->jrab", M, V, V))


def reference_step(gamma, rho, inner: Inner, y, *, q: float, lr: float):
    """One GD step of one network in (gamma [2, m], rho [2, m, n]) coordinates; returns the new pair."""
    n, m = y.shape[0], gamma.shape[1]
    j = class_signs(gamma)[:, None]  # [2, 1]
    sqnorm = torch.diagonal(inner.K, dim1=-2, dim2=-1)  # ||v_a||^2, [2, m, n + 1]
    coef = torch.cat([gamma[..., None], rho], dim=-1)
    c = torch.where(sqnorm > 0, coef / sqnorm.where(sqnorm > 0, 1), 0)  # weight of v_a itself
    h = inner.h0 + (c[..., None, :] @ inner.K)[..., 0, :]  # <w_t ⊙ m, v_a>, [2, m, n + 1]
    on_signal = y[:, None, None] * h[..., 0]  # <w ⊙ m, y_i mu>, [n, 2, m]
    on_noise = h[..., 1:].permute(2, 0, 1)  # <w ⊙ m, xi_i>, [n, 2, m]
    F = (activation(on_signal, q) + activation(on_noise, q)).sum(-1) / m  # F_j(x_i), [n, 2]
    f = F[:, 0] - F[:, 1]
    dloss = -torch.sigmoid(-y * f)  # l'_i, [n]
    rate = lr * j / (n * m)
    gamma_new = gamma - rate * (dloss[:, None, None] * activation_derivative(on_signal, q)).sum(0) * sqnorm[..., 0]
    rho_new = rho - rate[..., None] * (y * dloss) * activation_derivative(on_noise, q).permute(1, 2, 0) * sqnorm[..., 1:]
    return gamma_new, rho_new


def reference_run(W0, M, mu, xi, y, *, q: float, lr: float, steps: int):
    """``steps`` reference steps from gamma = rho = 0; returns the final (gamma, rho)."""
    inner = inner_products(W0, M, mu, xi)
    gamma = W0.new_zeros(W0.shape[:2])
    rho = W0.new_zeros(*W0.shape[:2], y.shape[0])
    for _ in range(steps):
        gamma, rho = reference_step(gamma, rho, inner, y.to(W0.dtype), q=q, lr=lr)
    return gamma, rho


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
