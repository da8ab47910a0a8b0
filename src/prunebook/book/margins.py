r"""The test margin split into its signal and noise parts, per class: finding 2 inside the good regime.

On a fresh sample x = (y mu, xi) the output is f(x) = s_y + N(xi): the signal patch gives one
number per label, s_y = (1/m) sum_{j, r} j sigma(y <w_{j,r} ⊙ m_{j,r}, mu>), and the noise patch
gives N = (1/m) sum_{j, r} j sigma(<w_{j,r} ⊙ m_{j,r}, xi>), whose law does not depend on y (the
noise is orthogonal to mu). So the margin of class +1 is s_+ + N and that of class -1 is -s_- - N,
and a network makes no test mistake in a class as long as its noise part stays on the right side:

    z_+ = (s_+ + E N) / sd N,    z_- = (-s_- - E N) / sd N

are the class margins in units of the spread of the noise part; their minimum says how far the
network is from its first test mistake even where the test error is exactly 0 on every sample.
(The pooled mean / sd of y f over both classes mixes the two class means into the spread and says
little.) N is drawn as in :mod:`prunebook.evaluate`: its 2m pre-activations are jointly Gaussian, so
test noise is drawn in 2m dimensions, exactly in distribution.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from prunebook._checks import check_binary, check_finite, check_positive, check_positive_int, check_q, check_tensor
from prunebook.activation import activation
from prunebook.conventions import MIN_TEST_SIZE, class_signs
from prunebook.seeds import generator

__all__ = ["OutputParts", "output_parts", "init_scale_ratio", "learned_output_parts",
           "wrong_side"]


class OutputParts(NamedTuple):
    """Signal and noise parts of the output of a batch of networks, tensors of the batch shape [B]."""

    signal_pos: torch.Tensor  #: s_+, the output on the signal patch of a class +1 sample
    signal_neg: torch.Tensor  #: s_-, the output on the signal patch of a class -1 sample
    noise_mean: torch.Tensor  #: E N, the mean output on a fresh noise patch
    noise_std: torch.Tensor  #: sd N

    @property
    def z_pos(self) -> torch.Tensor:
        """Class +1 margin in units of the noise part's spread, (s_+ + E N) / sd N."""
        return (self.signal_pos + self.noise_mean) / self.noise_std

    @property
    def z_neg(self) -> torch.Tensor:
        """Class -1 margin in units of the noise part's spread, (-s_- - E N) / sd N."""
        return (-self.signal_neg - self.noise_mean) / self.noise_std

    @property
    def z(self) -> torch.Tensor:
        """The worse class's margin in units of the noise part's spread: min(z_+, z_-)."""
        return torch.minimum(self.z_pos, self.z_neg)


def output_parts(W: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, *, q: float, sigma_p: float = 1.0,
                 n_test: int = 20_000, seed: int = 0) -> OutputParts:
    """Signal outputs s_+, s_- (exact) and the mean and spread of the noise part N (from ``n_test``
    fresh noise patches drawn from ``seed``) of networks W, M [B, 2, m, d] with signals mu [B, d]."""
    W, _, M, mu, q, sigma_p, n_test = _checked(W, None, M, mu, q, sigma_p, n_test)
    A, signs, s_pos, s_neg = _signal_parts(W, M, mu, q)
    B, m = A.shape[0], W.shape[2]
    means, stds = torch.empty(B, dtype=torch.float64), torch.empty(B, dtype=torch.float64)
    for b, (pre,) in enumerate(_noise_draws([A], mu, sigma_p, n_test, seed)):
        noise = activation(pre, q) @ signs / m
        means[b], stds[b] = noise.mean(), noise.std()
    return OutputParts(s_pos, s_neg, means, stds)


def init_scale_ratio(p_from, p_to, q: float):
    """The ratio z(p_to) / z(p_from) that the initialization's scale alone predicts.

    If the spread of the noise part is the kept initial weights' response, (sigma_0 sigma_p
    sqrt((1-p) d))^q up to a constant, and the signal part does not depend on p, then
    z is proportional to (1-p)^(-q/2): this ratio is ((1 - p_from) / (1 - p_to))^(q/2). A measured
    ratio equal to it says nothing about learning.
    """
    import numpy as np

    q = check_q(q)
    a, b = np.asarray(p_from, float), np.asarray(p_to, float)
    if np.any((a < 0) | (a >= 1)) or np.any((b < 0) | (b >= 1)):
        raise ValueError("p_from: pruning fractions must lie in [0, 1)")
    return ((1 - a) / (1 - b)) ** (q / 2)


def _checked(W, W0, M, mu, q, sigma_p, n_test):
    W = check_tensor("W", W, ndim=4)
    B, two, m, d = W.shape
    if two != 2:
        raise ValueError(f"W: expected shape [B, 2, m, d], got {tuple(W.shape)}")
    if W0 is not None:
        W0 = check_tensor("W0", W0)
        if W0.shape != W.shape:
            raise ValueError(f"W0: expected the shape of W, {tuple(W.shape)}, got {tuple(W0.shape)}")
        check_finite("W0", W0)
    M = check_tensor("M", M)
    if M.shape != W.shape:
        raise ValueError(f"M: expected the shape of W, {tuple(W.shape)}, got {tuple(M.shape)}")
    check_binary("M", M)
    mu = check_tensor("mu", mu)
    if mu.shape != (B, d):
        raise ValueError(f"mu: expected shape {(B, d)}, got {tuple(mu.shape)}")
    check_finite("W", W)
    q = check_q(q)
    sigma_p = check_positive("sigma_p", sigma_p)
    n_test = check_positive_int("n_test", n_test)
    if n_test < MIN_TEST_SIZE:
        raise ValueError(f"n_test: use at least {MIN_TEST_SIZE} fresh samples, got {n_test}")
    return W, W0, M, mu.double(), q, sigma_p, n_test


def _signal_parts(W, M, mu, q):
    """Masked weights A [B, 2m, d] (float64), the class sign of each neuron [B, 2m] and the exact signal
    outputs s_+ = f(mu-patch) and s_- (the output on the signal patch -mu), each [B]."""
    B, _, m, d = W.shape
    A = (W * M).reshape(B, 2 * m, d).double()
    overlap = (A @ mu[..., None])[..., 0]
    signs = class_signs(overlap).repeat_interleave(m)
    return A, signs, activation(overlap, q) @ signs / m, activation(-overlap, q) @ signs / m


def _noise_draws(As: list[torch.Tensor], mu: torch.Tensor, sigma_p: float, n_test: int, seed: int):
    """Jointly Gaussian pre-activations of several weight sets A [B, k, d] on the same fresh noise
    patches (orthogonal to mu): yields, network by network, a list of [n_test, k] tensors."""
    A = torch.cat(As, dim=1)
    u = mu / mu.norm(dim=-1, keepdim=True)
    Au = (A @ u[..., None])[..., 0]
    cov = sigma_p**2 * (A @ A.mT - Au[:, :, None] * Au[:, None, :])
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs * evals.clamp_min(0).sqrt()[:, None, :]
    g = torch.randn(n_test, A.shape[1], generator=generator(seed), dtype=torch.float64)
    sizes = [a.shape[1] for a in As]
    for b in range(A.shape[0]):
        yield list((g @ root[b].T).split(sizes, dim=1))


def learned_output_parts(W: torch.Tensor, W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, *, q: float,
                         sigma_p: float = 1.0, n_test: int = 20_000, seed: int = 0) -> OutputParts:
    """The signal parts s_+, s_- of the trained network W and the mean and spread of the *learned*
    part of its noise response, N_W(xi) - N_W0(xi): what training changed in the output on fresh
    noise patches (both drawn on the same patches). ``z`` of the result is the class margin in units
    of the learned part's spread, a quantity the initial weights' own response does not enter."""
    W, W0, M, mu, q, sigma_p, n_test = _checked(W, W0, M, mu, q, sigma_p, n_test)
    A, signs, s_pos, s_neg = _signal_parts(W, M, mu, q)
    B, m = A.shape[0], W.shape[2]
    A0 = (W0 * M).reshape(A.shape).double()
    means, stds = torch.empty(B, dtype=torch.float64), torch.empty(B, dtype=torch.float64)
    for b, (pre, pre0) in enumerate(_noise_draws([A, A0], mu, sigma_p, n_test, seed)):
        change = (activation(pre, q) - activation(pre0, q)) @ signs / m
        means[b], stds[b] = change.mean(), change.std()
    return OutputParts(s_pos, s_neg, means, stds)


def wrong_side(W: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, *, q: float, sigma_p: float = 1.0,
               n_test: int = 20_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, the fraction of fresh noise patches on which the noise part N puts the output on
    the wrong side: (P(s_+ + N <= 0), P(-s_- - N <= 0)), each [B]. These are the per-class test
    errors; unlike mean / sd of N they do not assume N is Gaussian (with q = 3 it is far from it)."""
    W, _, M, mu, q, sigma_p, n_test = _checked(W, None, M, mu, q, sigma_p, n_test)
    A, signs, s_pos, s_neg = _signal_parts(W, M, mu, q)
    B, m = A.shape[0], W.shape[2]
    err_pos, err_neg = torch.empty(B, dtype=torch.float64), torch.empty(B, dtype=torch.float64)
    for b, (pre,) in enumerate(_noise_draws([A], mu, sigma_p, n_test, seed)):
        noise = activation(pre, q) @ signs / m
        err_pos[b] = (s_pos[b] + noise <= 0).double().mean()
        err_neg[b] = (-s_neg[b] - noise <= 0).double().mean()
    return err_pos, err_neg
