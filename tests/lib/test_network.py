"""The network's forward pass and closed-form gradient against autograd."""

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

import prunebook as pb
from prunebook.activation import activation

from conftest import small_problem


def reference_f(W, M, X, q):
    """A literal, loop-based transcription of f(W, x) as chapter 2 defines it (for one network)."""
    n, P, d = X.shape
    m = W.shape[1]
    out = torch.zeros(n, dtype=W.dtype)
    for i in range(n):
        total = 0.0
        for j, sign in ((0, 1.0), (1, -1.0)):
            for r in range(m):
                for p in range(P):
                    z = torch.dot(W[j, r] * M[j, r], X[i, p])
                    total = total + sign * torch.clamp(z, min=0) ** q / m
        out[i] = total
    return out


@pytest.mark.parametrize("q", [1, 2, 3, 4.5])
def test_forward_matches_literal_formula(q):
    W0, M, ds = small_problem(n=4, d=7, m=3, sigma_0=1.0)
    torch.testing.assert_close(pb.forward(W0, M, ds.X, q), reference_f(W0, M, ds.X, q), rtol=1e-12, atol=1e-12)


def autograd_gradient(W, M, X, y, q):
    W = W.detach().clone().requires_grad_(True)
    f = activation(
        torch.einsum("...jrd,...npd->...npjr", W * M, X), q
    ).sum(dim=(-3, -1)) / W.shape[-2]
    f = f[..., 0] - f[..., 1]
    L = torch.logaddexp(torch.zeros_like(f), -y * f).mean(-1).sum()
    (g,) = torch.autograd.grad(L, W)
    return g


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 7),
    d=st.integers(1, 9),
    m=st.integers(1, 4),
    P=st.integers(1, 3),
    batch=st.sampled_from([(), (2,), (2, 3)]),
    q=st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0]),
    p=st.sampled_from([0.0, 0.3, 0.8]),
    seed=st.integers(0, 10_000),
)
def test_gradient_equals_autograd_float64(n, d, m, P, batch, q, p, seed):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(*batch, 2, m, d, generator=g, dtype=torch.float64)
    M = pb.random_mask(W.shape, p, generator=g, dtype=torch.float64)
    X = torch.randn(*batch, n, P, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (*batch, n), generator=g).to(torch.float64) * 2 - 1
    ours = pb.gradient(W, M, X, y, q)
    ref = autograd_gradient(W, M, X, y, q)
    assert ours.shape == W.shape
    scale = ref.abs().max().clamp_min(1e-300)
    assert float((ours - ref).abs().max() / scale) <= 1e-10
    assert bool((ours[M.expand_as(ours) == 0] == 0).all()), "pruned weights must get exactly zero gradient"


def test_batch_dimensions_broadcast():
    W0, M, ds = small_problem()
    Ws = torch.stack([W0, 2 * W0, -W0])
    f = pb.forward(Ws, M, ds.X, 3)  # 3 networks on one data set
    assert f.shape == (3, ds.n)
    for b in range(3):
        torch.testing.assert_close(f[b], pb.forward(Ws[b], M, ds.X, 3))
    g = pb.gradient(W0, M, torch.stack([ds.X, ds.X]), ds.y, 3)
    assert g.shape == (2, *W0.shape)


def test_loss_is_stable_for_large_margins():
    W0, M, ds = small_problem(sigma_0=30.0, d=12)
    L = pb.loss(W0, M, ds.X, ds.y, 3)
    G = pb.gradient(W0, M, ds.X, ds.y, 3)
    f = pb.forward(W0, M, ds.X, 3)
    assert f.abs().max() > 1e4  # margins far beyond exp's range
    assert torch.isfinite(L) and torch.isfinite(G).all()
    expected = torch.logaddexp(torch.zeros_like(f), -ds.y * f).mean()
    torch.testing.assert_close(L, expected)


def test_classification_error_counts_ties_as_errors():
    W0, M, ds = small_problem()
    zero_mask = torch.zeros_like(M)  # f == 0 everywhere
    assert float(pb.classification_error(W0, zero_mask, ds.X, ds.y, 3)) == 1.0


def test_test_error_uses_fresh_samples_and_is_seeded():
    W0, M, ds = small_problem(d=20, mu_norm=5.0)
    W = W0.clone()
    W[0, :, 0] = 3.0  # class +1 neurons read the signal coordinate: f = y * positive
    W[1, :, 0] = -3.0
    M1 = torch.ones_like(M)
    e = pb.test_error(W, M1, ds.mu, q=3, seed=3, n_test=4000)
    assert float(e) < 0.05
    assert float(e) == float(pb.test_error(W, M1, ds.mu, q=3, seed=3, n_test=4000))
    with pytest.raises(ValueError, match="n_test"):
        pb.test_error(W, M1, ds.mu, q=3, seed=3, n_test=100)
