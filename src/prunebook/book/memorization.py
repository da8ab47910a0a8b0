r"""Chapter 3: why mild pruning helps. How much the network memorizes by the time the signal wins,
and how that memorization enters the test loss (the book's own heuristic and its checks).

**Memorization at the time the signal wins.** On the gradient flow at a small initialization
(f about 0, so l'_i is about -1/2), the overlap x = <w_{j,r} ⊙ m, xi_i> of a neuron of class
j = y_i with the noise of sample i follows dx/dt = A x^(q-1), A = q ||xi_i ⊙ m||^2 / (2 n m)
(cross terms between samples left out), so for x0 > 0

    x(t) = x0 (1 - t / T)^(-1/(q-2)),    T = 1 / ((q - 2) A x0^(q-2))        (q > 2),

and a neuron of the other class, active on xi_i, is pushed down: x(t) = x0 (1 + t / T)^(-1/(q-2)).
The signal of class j blows up at T_signal (the first usable neuron, :mod:`prunebook.book.stages`).
Once it has, the training margins grow through the signal and the noise overlaps stop growing (their
rate relative to the signal's is about (x_noise / x_signal)^(2(q-1)), tiny), so what the network
keeps memorized is, to a first approximation, what it had memorized at T_signal:
:func:`predicted_memorized_margin` evaluates the closed form there, from the initialization alone.
In the linear regime (T_signal well below T) each coefficient has grown by
rho / x0 = T_signal / T, the sample's own race ratio (:func:`sample_race`); summed over neurons and
samples, for typical head starts,

    sum rho^+ (T_signal) = (q/2) E[Z_+^(q-1)] sigma_0^(q-1) sigma_p^(q+1) ((1-p) d)^((q+1)/2) T_signal

(:func:`typical_memorization`): pruning shrinks it like (1 - p)^((q+1)/2).

**How memorization enters the test loss.** The margin of a sample (y mu, xi) splits into a signal
part S_y (:func:`signal_parts`, the same for every sample of class y) and a noise part y N(xi). On a
training sample the noise part has grown by the memorized margin m_i
(:func:`memorized_margins`); on a fresh sample it is a fluctuation around zero. So, per class,

    test loss = class-balanced training loss x (memorization factor) x (fresh factor),

with memorization factor = mean_y l(S_y) / mean_y (training loss of class y) (how far the training
samples' noise parts pushed their loss below the loss of the signal part alone) and fresh factor =
test loss / mean_y l(S_y) (what the noise part of a fresh sample adds). :func:`loss_gap` computes the
three factors; the identity is exact.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from prunebook._checks import check_finite, check_positive, check_positive_int, check_q, check_tensor
from prunebook.activation import activation
from prunebook.book.stages import blowup_time, stage1_rates
from prunebook.conventions import MIN_TEST_SIZE, class_signs
from prunebook.seeds import generator

__all__ = ["SampleRace", "sample_race", "stage1_overlap", "predicted_memorized_margin", "memorized_margins",
           "signal_parts", "LossGap", "loss_gap", "positive_moment", "typical_memorization"]


class SampleRace(NamedTuple):
    """Each class's signal blow-up time and each sample's noise blow-up time (flow time units)."""

    signal_time: torch.Tensor  #: [..., 2]: first blow-up over the class's usable neurons (inf: none)
    noise_time: torch.Tensor  #: [..., n]: first blow-up over the neurons of class y_i with <w0 ⊙ m, xi_i> > 0
    ratio: torch.Tensor  #: [..., n]: tau_i = signal_time[class of y_i] / noise_time_i (> 1: memorized first)


def _class_index(y: torch.Tensor) -> torch.Tensor:
    return (y < 0).long()  # class +1 is index 0 of the class axis


def sample_race(W0, M, mu, xi, y, *, q: float) -> SampleRace:
    """The race of every training sample against its own class's signal, from the initialization.

    W0, M [..., 2, m, d]; mu [..., d]; xi [..., n, d]; y [..., n]. Times are the flow's (lr = 1 in
    :func:`prunebook.book.stages.stage1_rates`), in the continuous approximation of stage 1.
    """
    st = stage1_rates(W0, M, mu, xi, y, q=q, lr=1.0)
    inf = torch.tensor(math.inf, dtype=st.signal_rate.dtype)
    t_sig = torch.where(st.usable, blowup_time(st.signal_rate, st.signal_overlap, q), inf).amin(-1)
    t_noise = torch.where(st.memorizes, blowup_time(st.noise_rate, st.noise_overlap, q), inf)
    noise_time = t_noise.flatten(-3, -2).amin(-2)  # [..., n]
    idx = _class_index(y).expand(noise_time.shape)
    mine = torch.gather(t_sig.expand(*noise_time.shape[:-1], 2), -1, idx)
    ratio = torch.where(torch.isinf(noise_time), torch.zeros_like(mine), mine / noise_time)
    return SampleRace(t_sig, noise_time, ratio)


def stage1_overlap(x0, rate, t, *, q: float, grow: bool = True):
    """The stage-1 overlap at time t: the solution of dx/dt = +-rate x^(q-1) from x0 (q > 2).

    ``grow=True``: x0 (1 - t/T)^(-1/(q-2)) with T = 1/((q-2) rate x0^(q-2)), infinite from T on;
    ``grow=False``: x0 (1 + t/T)^(-1/(q-2)) (a neuron pushed towards zero). Where x0 <= 0 or
    rate <= 0 the overlap does not move (sigma' = 0).
    """
    q = check_q(q)
    if q <= 2:
        raise ValueError(f"q: the closed form needs q > 2, got {q!r}")
    # the widest floating dtype among the tensor arguments (Python numbers do not narrow it)
    floats = [v.dtype for v in (x0, rate, t) if isinstance(v, torch.Tensor) and v.is_floating_point()]
    dtype = max(floats, key=lambda f: torch.finfo(f).bits) if floats else torch.float64
    rate = torch.as_tensor(rate, dtype=dtype)
    x0 = torch.as_tensor(x0, dtype=dtype)
    t = torch.as_tensor(t, dtype=dtype)
    if bool((t < 0).any()):
        raise ValueError("t: times must be >= 0")
    active = (x0 > 0) & (rate > 0)
    s = (q - 2) * rate * x0.clamp_min(0) ** (q - 2) * t  # t / T
    base = 1 - s if grow else 1 + s
    moved = x0 * base.clamp_min(torch.finfo(rate.dtype).tiny) ** (-1 / (q - 2))
    if grow:
        moved = torch.where(base > 0, moved, torch.full_like(moved, math.inf))
    return torch.where(active, moved, x0)


def predicted_memorized_margin(W0, M, mu, xi, y, *, q: float, t=None):
    """The memorized margin of every training sample at time t, from the initialization alone.

    (1/m) sum over the neurons of class y_i of sigma(x(t)) - sigma(x0) (growing overlaps), minus the
    same for the neurons of the other class (pushed towards zero), with the closed form of
    :func:`stage1_overlap`. ``t`` defaults to each sample's own class's signal blow-up time
    (:func:`sample_race`), the time the signal wins; [..., n], infinite where the sample's noise blows
    up first.
    """
    q = check_q(q)
    st = stage1_rates(W0, M, mu, xi, y, q=q, lr=1.0)
    if t is None:
        race = sample_race(W0, M, mu, xi, y, q=q)
        t = race.signal_time.gather(-1, _class_index(y).expand(race.noise_time.shape))
    t = torch.as_tensor(t, dtype=st.noise_rate.dtype)
    if t.dim() > 0:
        t = t[..., None, None, :]  # [..., 1, 1, n]
    j = class_signs(st.noise_overlap)[:, None, None]
    own = (j * y[..., None, None, :].to(j.dtype)) > 0  # [..., 2, 1, n]
    x0 = st.noise_overlap
    t_fin = torch.where(torch.isfinite(t), t, torch.zeros_like(t))
    grown = stage1_overlap(x0, st.noise_rate, t_fin, q=q, grow=True)
    grown = torch.where(torch.isfinite(t) | (x0 <= 0), grown, torch.full_like(grown, math.inf))
    shrunk = stage1_overlap(x0, st.noise_rate, t_fin, q=q, grow=False)
    shrunk = torch.where(torch.isfinite(t), shrunk, torch.zeros_like(shrunk))
    change = torch.where(own, activation(grown, q) - activation(x0, q),
                         -(activation(shrunk, q) - activation(x0, q)))
    m = W0.shape[-2]
    return change.sum(dim=(-3, -2)) / m


def _noise_output(W, M, xi, q):
    """N(xi_i) = (1/m) sum_{j,r} j sigma(<w_{j,r} ⊙ m, xi_i>), [..., n]."""
    pre = torch.einsum("...jrk,...ik->...jri", W * M.to(W.dtype), xi.to(W.dtype))
    j = class_signs(W)[:, None, None]
    return (j * activation(pre, q)).sum(dim=(-3, -2)) / W.shape[-2]


def memorized_margins(W, W0, M, xi, y, *, q: float):
    """The memorized margin of every training sample, y_i (N_W(xi_i) - N_W0(xi_i)), [..., n]: how much
    training changed the noise part of its margin. W, W0, M [..., 2, m, d]; xi [..., n, d]; y [..., n]."""
    q = check_q(q)
    for name, t in (("W", W), ("W0", W0), ("M", M)):
        check_tensor(name, t, ndim_min=3)
    check_tensor("xi", xi, ndim_min=2)
    if W0.shape != W.shape or xi.shape[-1] != W.shape[-1] or xi.shape[-2] != y.shape[-1]:
        raise ValueError(f"W0: shapes do not match: W {tuple(W.shape)}, W0 {tuple(W0.shape)}, "
                         f"xi {tuple(xi.shape)}, y {tuple(y.shape)}")
    check_finite("W", W)
    return y.to(W.dtype) * (_noise_output(W, M, xi, q) - _noise_output(W0, M, xi, q))


def signal_parts(W, M, mu, *, q: float):
    """(S_+, S_-), each [...]: the margin that the signal patch alone gives a sample of class +1
    (patch mu) and of class -1 (patch -mu); the same for every sample of the class."""
    q = check_q(q)
    check_tensor("mu", mu, ndim_min=1)
    ov = ((W * M.to(W.dtype)) * mu.to(W.dtype)[..., None, None, :]).sum(-1)  # <w ⊙ m, mu>, [..., 2, m]
    j = class_signs(W)[:, None]
    m = W.shape[-2]
    return (j * activation(ov, q)).sum((-2, -1)) / m, -(j * activation(-ov, q)).sum((-2, -1)) / m


class LossGap(NamedTuple):
    """Test loss = balanced training loss x memorization factor x fresh factor (each [...])."""

    train_loss: torch.Tensor  #: the class-balanced training loss, mean over classes of the class's mean loss
    signal_loss: torch.Tensor  #: mean over classes of l(S_y): the loss of the signal part alone
    test_loss: torch.Tensor  #: on fresh samples (balanced classes)
    signal_pos: torch.Tensor  #: S_+
    signal_neg: torch.Tensor  #: S_-

    @property
    def memorization_factor(self) -> torch.Tensor:
        return self.signal_loss / self.train_loss

    @property
    def fresh_factor(self) -> torch.Tensor:
        return self.test_loss / self.signal_loss


def _softplus_neg(z):
    return torch.nn.functional.softplus(-z)  # l(z) = log(1 + exp(-z)), stable


def loss_gap(W, M, X, y, mu, *, q: float, sigma_p: float = 1.0, n_test: int = 20_000, seed: int = 0) -> LossGap:
    """The test loss split into the training loss, the memorization factor and the fresh factor.

    W, M [B, 2, m, d]; X [B, n, 2, d]; y [B, n]; mu [B, d] (sparse or dense signal). The fresh noise
    patches (``n_test`` of them, shared by the batch, drawn from ``seed``) are N(0, sigma_p^2) on the
    complement of each network's mu, as in the data model; the test loss is exact over the two
    (balanced) classes given those patches.
    """
    q = check_q(q)
    sigma_p = check_positive("sigma_p", sigma_p)
    n_test = check_positive_int("n_test", n_test)
    if n_test < MIN_TEST_SIZE:
        raise ValueError(f"n_test: use at least {MIN_TEST_SIZE} fresh samples, got {n_test}")
    W = check_tensor("W", W, ndim=4).double()
    B, _, m, d = W.shape
    M = check_tensor("M", M, ndim=4).double()
    X = check_tensor("X", X, ndim=4).double()
    mu = check_tensor("mu", mu, ndim=2).double()
    y = check_tensor("y", y, ndim=2).double()
    if M.shape != W.shape or X.shape[0] != B or X.shape[-1] != d or mu.shape != (B, d) or y.shape != X.shape[:2]:
        raise ValueError(f"X: shapes do not match: W {tuple(W.shape)}, M {tuple(M.shape)}, X {tuple(X.shape)}, "
                         f"y {tuple(y.shape)}, mu {tuple(mu.shape)}")
    check_finite("W", W)
    s_pos, s_neg = signal_parts(W, M, mu, q=q)
    xi = X[:, :, 1]
    margins = torch.where(y > 0, s_pos[:, None], s_neg[:, None]) + y * _noise_output(W, M, xi, q)
    losses = _softplus_neg(margins)
    pos = (y > 0).double()
    per_class = torch.stack([(losses * pos).sum(-1) / pos.sum(-1).clamp_min(1),
                             (losses * (1 - pos)).sum(-1) / (1 - pos).sum(-1).clamp_min(1)], -1)
    has = torch.stack([pos.sum(-1) > 0, (1 - pos).sum(-1) > 0], -1)
    train = (per_class * has).sum(-1) / has.sum(-1)
    g = torch.randn(n_test, d, generator=generator(seed), dtype=torch.float64) * sigma_p
    u = mu / mu.norm(dim=-1, keepdim=True)
    test = torch.empty(B, dtype=torch.float64)
    for b in range(B):
        fresh = g - (g @ u[b])[:, None] * u[b]  # orthogonal to mu
        N = _noise_output(W[b], M[b], fresh, q)  # [n_test]
        test[b] = 0.5 * (_softplus_neg(s_pos[b] + N).mean() + _softplus_neg(s_neg[b] - N).mean())
    signal = 0.5 * (_softplus_neg(s_pos) + _softplus_neg(s_neg))
    return LossGap(train, signal, test, s_pos, s_neg)


def positive_moment(k: float) -> float:
    """E[max(Z, 0)^k] for a standard normal Z: 2^(k/2) Gamma((k+1)/2) / (2 sqrt(pi))."""
    k = check_positive("k", k)
    return 2 ** (k / 2) * math.gamma((k + 1) / 2) / (2 * math.sqrt(math.pi))


def typical_memorization(p, *, d: int, q: float, sigma_0: float, sigma_p: float = 1.0, t: float):
    """The book's typical-head-start estimate of sum_{r,i} rho^+_{r,i}(t) in the linear regime:
    (q/2) E[Z_+^(q-1)] sigma_0^(q-1) sigma_p^(q+1) ((1-p) d)^((q+1)/2) t (array-like p)."""
    import numpy as np

    q = check_q(q)
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p >= 1)):
        raise ValueError("p: pruning fractions must lie in [0, 1)")
    kept = (1 - p) * check_positive_int("d", d)
    return (q / 2) * positive_moment(q - 1) * sigma_0 ** (q - 1) * sigma_p ** (q + 1) * kept ** ((q + 1) / 2) * t
