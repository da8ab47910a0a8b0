r"""Test error on fresh samples of the data model, P[y f(W, x) <= 0] (a tie counts as an error).

Two estimators, equal in distribution:

- ``method="projected"`` (the default). A fresh sample is x = (y mu, xi) with
  xi ~ N(0, sigma_p^2 (I - u u^T)), u = mu / ||mu||. The network sees xi only through the 2m
  pre-activations z = A xi, where the rows of A are the masked weights w_{j,r} ⊙ m_{j,r}; they are
  jointly Gaussian, z ~ N(0, Sigma) with Sigma = sigma_p^2 (A A^T - (A u)(A u)^T). So a test sample
  is drawn as (y, z) in 2m dimensions instead of d, exactly in distribution: the cost per sample is
  O(m^2) instead of O(m d).
- ``method="samples"``: draw the d-dimensional samples with :func:`prunebook.sample_data` and
  evaluate the network on them (the definition; kept as the slow reference the tests compare with).

Each network draws its test samples from its own seed, so its estimate does not depend on the
other networks of the batch. The standard error of an estimate is at most 0.5 / sqrt(n_test).

:func:`test_statistics` returns, from the same draws, the error per class and the distribution of
the test margin y f(x): where the test error is 0 on every sample, the margin in units of its
spread, mean / sd, still says how far the network is from its first mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from numbers import Integral, Real

from prunebook._checks import check_finite, check_floating, check_one_of, check_positive, check_positive_int, check_q, check_tensor
from prunebook.activation import activation
from prunebook.conventions import DEFAULT_TEST_SIZE, MIN_TEST_SIZE, class_signs
from prunebook.data import sample_data
from prunebook.network import batch_shape, forward
from prunebook.seeds import generator

__all__ = ["METHODS", "TestStatistics", "test_statistics", "test_error"]

METHODS = ("projected", "samples")

#: samples per evaluation block (bounds the memory of a d-dimensional test set)
SAMPLE_BLOCK = 2000


class TestStatistics(NamedTuple):
    """Test-set statistics of a batch of networks, each a tensor of the batch shape."""

    __test__ = False  # not a pytest test class

    error: torch.Tensor  #: P[y f(x) <= 0]
    error_pos: torch.Tensor  #: P[y f(x) <= 0 | y = +1]
    error_neg: torch.Tensor  #: P[y f(x) <= 0 | y = -1]
    margin_mean: torch.Tensor  #: E[y f(x)]
    margin_std: torch.Tensor  #: sd[y f(x)]
    loss: torch.Tensor  #: E[log(1 + exp(-y f(x)))]

    @property
    def margin_z(self) -> torch.Tensor:
        """The test margin in units of its spread, E[y f] / sd[y f] (inf when the margin is constant)."""
        return self.margin_mean / self.margin_std


def _summaries(y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[..., 6] statistics (error, error | y = +1, error | y = -1, mean, sd, loss) of margins y f [..., n]."""
    margins = (y * f).double()
    wrong = (margins <= 0).double()
    pos = (y > 0).double()
    neg = 1 - pos
    return torch.stack([
        wrong.mean(-1),
        (wrong * pos).sum(-1) / pos.sum(-1).clamp_min(1),
        (wrong * neg).sum(-1) / neg.sum(-1).clamp_min(1),
        margins.mean(-1),
        margins.std(-1),
        torch.logaddexp(torch.zeros((), dtype=margins.dtype), -margins).mean(-1),
    ], -1)


#: networks evaluated together by the projected estimator (bounds its memory)
NETWORK_BLOCK = 64


def _projected(W, M, mu, q, sigma_p, n_test, seeds) -> torch.Tensor:
    """Networks W, M [B, 2, m, d], signals mu [B, d], noise levels sigma_p [B], one seed each.

    The covariance and its square root are computed in float64 for all networks at once; the
    draws (y, g) are float32 from each network's own generator, so a network's estimate depends
    only on its own seed.
    """
    B, two, m, d = W.shape
    A = (W * M).reshape(B, two * m, d).double()
    mu = mu.double()
    u = mu / mu.norm(dim=-1, keepdim=True)
    Au = (A @ u[..., None])[..., 0]
    cov = sigma_p.double()[:, None, None] ** 2 * (A @ A.mT - Au[:, :, None] * Au[:, None, :])
    evals, evecs = torch.linalg.eigh(cov)
    root = (evecs * evals.clamp_min(0).sqrt()[:, None, :]).float()  # root @ root.T = cov
    overlap = (A @ mu[..., None])[..., 0]  # <w ⊙ m, mu>, [B, 2m]
    signs = class_signs(overlap).repeat_interleave(m)  # j of each of the 2m neurons
    # the signal patch y mu gives the output (1/m) sum_{j,r} j sigma(y <w ⊙ m, mu>): one number per label
    on_signal = torch.stack([activation(overlap, q) @ signs, activation(-overlap, q) @ signs], -1).float() / m  # [B, 2]
    signs = signs.float()
    out = torch.empty(B, 6, dtype=torch.float64)
    for start in range(0, B, NETWORK_BLOCK):
        block = range(start, min(B, start + NETWORK_BLOCK))
        ys, gs = [], []
        for b in block:
            g = generator(int(seeds[b]))
            ys.append(torch.randint(0, 2, (n_test,), generator=g).float() * 2 - 1)
            gs.append(torch.randn(n_test, two * m, generator=g))
        y = torch.stack(ys)  # [k, n_test]
        z = torch.stack(gs) @ root[start : start + len(block)].mT  # noise pre-activations, [k, n_test, 2m]
        signal_part = on_signal[start : start + len(block)]
        f = torch.where(y > 0, signal_part[:, :1], signal_part[:, 1:]) + (activation(z, q) @ signs) / m
        out[start : start + len(block)] = _summaries(y, f)
    return out


def _samples(W, M, mu, q, sigma_p, n_test, seed) -> torch.Tensor:
    g = generator(int(seed))
    ys, fs = [], []
    left = n_test
    while left > 0:
        k = min(SAMPLE_BLOCK, left)
        ds = sample_data(k, mu, sigma_p=sigma_p, generator=g)
        ys.append(ds.y)
        fs.append(forward(W, M, ds.X, q))
        left -= k
    return _summaries(torch.cat(ys, -1), torch.cat(fs, -1))


def test_statistics(
    W: torch.Tensor,
    M: torch.Tensor,
    mu: torch.Tensor,
    *,
    q: float,
    sigma_p: float | Sequence[float] = 1.0,
    n_test: int = DEFAULT_TEST_SIZE,
    seed: int | Sequence[int] = 0,
    method: str = "projected",
) -> TestStatistics:
    """Test error, per-class errors and test-margin statistics on ``n_test`` fresh samples (at least
    MIN_TEST_SIZE); each of shape [batch...].

    ``mu`` is the training signal: shape [d] with one integer ``seed`` (every network of the batch
    uses the same random numbers), or [B, d] with one seed per row (each network its own test set;
    B the first batch dimension). ``sigma_p`` is one noise level or one per row.
    """
    n_test = check_positive_int("n_test", n_test)
    if n_test < MIN_TEST_SIZE:
        raise ValueError(f"n_test: use at least {MIN_TEST_SIZE} fresh samples, got {n_test}")
    q = check_q(q)
    check_one_of("method", method, METHODS)
    check_tensor("mu", mu, ndim_min=1)
    check_floating("mu", mu)
    check_finite("mu", mu)
    d = W.shape[-1]
    bs = batch_shape(W, M, torch.zeros(1, 2, d, dtype=W.dtype, device=W.device))
    check_finite("W", W)
    if mu.shape[-1] != d:
        raise ValueError(f"mu: last dimension {mu.shape[-1]} must equal d = {d}")
    if mu.dim() == 1:
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise ValueError("seed: with a single mu, give one integer seed")
        seed = int(seed)
        rows = int(torch.Size(bs).numel())
        seeds = [seed] * rows
        mus = mu.expand(rows, d)
    else:
        if mu.dim() != 2 or len(bs) == 0 or bs[0] != mu.shape[0]:
            raise ValueError(f"mu: with a batch of signals, mu must be [B, d] with B the first batch dimension; got {tuple(mu.shape)}")
        if isinstance(seed, Integral) or not hasattr(seed, "__len__") or len(seed) != mu.shape[0]:
            raise ValueError(f"seed: give one seed per row of mu ({mu.shape[0]})")
        if len(bs) > 1:
            raise ValueError(f"W: with one seed per row of mu, W must be [B, 2, m, d]; got {tuple(W.shape)}")
        seeds, mus, rows = list(seed), mu, mu.shape[0]
    if not float(mus.norm(dim=-1).min()) > 0:
        raise ValueError("mu: the signal vector must be non-zero")
    sigmas = [sigma_p] * rows if isinstance(sigma_p, Real) else list(sigma_p)
    if len(sigmas) != rows:
        raise ValueError(f"sigma_p: give one noise level or one per network ({rows})")
    sigmas = [check_positive("sigma_p", s) for s in sigmas]
    Wb = W.expand(*bs, *W.shape[-3:]).reshape(rows, *W.shape[-3:])
    Mb = M.expand(*bs, *M.shape[-3:]).reshape(rows, *M.shape[-3:]).to(W.dtype)
    if method == "projected":
        sig = torch.tensor(sigmas, dtype=torch.float64)
        out = _projected(Wb.detach().cpu(), Mb.detach().cpu(), mus.detach().cpu(), q, sig, n_test, seeds)
    else:
        out = torch.stack([_samples(Wb[b], Mb[b], mus[b], q, sigmas[b], n_test, seeds[b]) for b in range(rows)])
    out = out.to(dtype=W.dtype, device=W.device)
    return TestStatistics(*(out[:, k].reshape(bs) for k in range(6)))


def test_error(W: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, **kwargs) -> torch.Tensor:
    """P[y f(W, x) <= 0] on fresh samples, shape [batch...]; the arguments of :func:`test_statistics`."""
    return test_statistics(W, M, mu, **kwargs).error


test_error.__test__ = False  # not a pytest test when a test module imports it
test_statistics.__test__ = False
