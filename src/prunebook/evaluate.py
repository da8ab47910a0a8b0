"""Test error on fresh samples of the data model."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prunebook._checks import check_positive, check_positive_int, check_q, check_tensor
from prunebook.conventions import DEFAULT_TEST_SIZE, MIN_TEST_SIZE
from prunebook.data import sample_data
from prunebook.network import batch_shape, classification_error
from prunebook.seeds import generator

__all__ = ["test_error"]

_CHUNK = 2000


def _one_mu(W, M, mu, q, sigma_p, n_test, seed) -> torch.Tensor:
    g = generator(int(seed))
    errors = []
    left = n_test
    while left > 0:
        k = min(_CHUNK, left)
        ds = sample_data(k, mu, sigma_p=sigma_p, generator=g)
        errors.append(classification_error(W, M, ds.X, ds.y, q) * k)
        left -= k
    return torch.stack(errors).sum(0) / n_test


def test_error(
    W: torch.Tensor,
    M: torch.Tensor,
    mu: torch.Tensor,
    *,
    q: float,
    sigma_p: float = 1.0,
    n_test: int = DEFAULT_TEST_SIZE,
    seed: int | Sequence[int] = 0,
) -> torch.Tensor:
    """P[y f(W, x) <= 0] estimated on ``n_test`` fresh samples (>= 2000), shape [batch...].

    ``mu`` is the training signal: shape [d] (one test set shared by every network in the batch)
    or [B, d] with one seed per row (each network its own test set). The standard error of the
    estimate is at most 0.5 / sqrt(n_test).
    """
    n_test = check_positive_int("n_test", n_test)
    if n_test < MIN_TEST_SIZE:
        raise ValueError(f"n_test: use at least {MIN_TEST_SIZE} fresh samples, got {n_test}")
    q = check_q(q)
    check_positive("sigma_p", sigma_p)
    check_tensor("mu", mu, ndim_min=1)
    d = W.shape[-1]
    dummy = torch.zeros(1, 2, d, dtype=W.dtype, device=W.device)
    bs = batch_shape(W, M, dummy)
    if mu.dim() == 1:
        if not isinstance(seed, int):
            raise ValueError("seed: with a single mu, give one integer seed")
        return _one_mu(W, M, mu, q, sigma_p, n_test, seed)
    if mu.dim() != 2 or len(bs) == 0 or bs[0] != mu.shape[0]:
        raise ValueError(f"mu: with a batch of signals, mu must be [B, d] with B the first batch dimension; got {tuple(mu.shape)}")
    if isinstance(seed, int) or len(seed) != mu.shape[0]:
        raise ValueError(f"seed: give one seed per row of mu ({mu.shape[0]})")
    Wb, Mb = W.expand(*bs, *W.shape[-3:]), M.expand(*bs, *M.shape[-3:])
    return torch.stack([_one_mu(Wb[b], Mb[b], mu[b], q, sigma_p, n_test, s) for b, s in enumerate(seed)])


test_error.__test__ = False  # not a pytest test when a test module imports it
