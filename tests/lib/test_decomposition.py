"""The signal-noise decomposition and the Gram matrices, in float64."""


import pytest
import torch

import prunebook as pb
from prunebook.decomposition import SignalNoiseBasis

from conftest import small_problem

D, N, M_NEURONS = 200, 20, 8
STEPS = 300


def problem(p, seed, signal="sparse", q=3):
    W0, M, ds = small_problem(n=N, d=D, m=M_NEURONS, p=p, seed=seed, signal=signal, mu_norm=6.0, sigma_0=0.05)
    return W0, M, ds


def rel_margin_gap(Wa, Wb, M, mu, q, seed):
    fresh = pb.sample_data(500, mu, seed=seed)
    fa = fresh.y * pb.forward(Wa, M, fresh.X, q)
    fb = fresh.y * pb.forward(Wb, M, fresh.X, q)
    return float((fa - fb).abs().max() / fa.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("signal", ["sparse", "dense"])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.8, 0.95, 0.99])
def test_decomposition_rebuilds_the_weights(p, signal):
    W0, M, ds = problem(p, seed=3, signal=signal)
    res = pb.train(W0, M, ds.X, ds.y, q=3, lr=2.0, steps=200)
    gamma, rho = pb.decompose(res.W, W0, M, ds.mu, ds.xi)
    assert gamma.shape == (2, M_NEURONS) and rho.shape == (2, M_NEURONS, N)
    rebuilt = pb.reconstruct(W0, M, ds.mu, ds.xi, gamma, rho)
    err = float((rebuilt - res.W * M).abs().max())
    assert err <= 1e-10 * float((res.W * M).abs().max()), err
    # the identity exactly as written, by hand, for one neuron with the signal and one without
    carries = pb.signal_carrying(M, ds.mu)
    for j, r in [(0, 0), (1, M_NEURONS - 1)]:
        v0 = ds.mu * M[j, r]
        vs = ds.xi * M[j, r]
        sq = vs.pow(2).sum(-1, keepdim=True)
        assert bool((rho[j, r][sq[:, 0] == 0] == 0).all()), "a zero vector xi_i * m gets rho = 0"
        terms = torch.where(sq > 0, rho[j, r, :, None] * vs / sq.clamp_min(1e-300), torch.zeros_like(vs))
        rhs = W0[j, r] * M[j, r] + terms.sum(0)
        if carries[j, r]:
            rhs = rhs + gamma[j, r] * v0 / v0.pow(2).sum()
        torch.testing.assert_close(rhs, res.W[j, r] * M[j, r], rtol=0, atol=1e-10 * float(res.W.abs().max()))
    assert bool((gamma[~carries] == 0).all()), "a neuron that drops all of mu has gamma = 0"


def test_decompose_known_coefficients_no_sign_folded():
    W0, M, ds = problem(0.5, seed=4)
    basis = SignalNoiseBasis(M, ds.mu, ds.xi)
    g_true = torch.randn(2, M_NEURONS, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r_true = torch.randn(2, M_NEURONS, N, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g_true = torch.where(pb.signal_carrying(M, ds.mu), g_true, torch.zeros_like(g_true))
    W = W0 + pb.reconstruct(W0, M, ds.mu, ds.xi, g_true, r_true) - W0 * M
    gamma, rho = pb.decompose(W, W0, M, ds.mu, ds.xi)
    torch.testing.assert_close(gamma, g_true, rtol=1e-9, atol=1e-10)  # class -1 gammas keep their sign
    torch.testing.assert_close(rho, r_true, rtol=1e-9, atol=1e-10)
    assert basis.K.shape == (2, M_NEURONS, N + 1, N + 1)


@pytest.mark.parametrize("p", [0.0, 0.5, 0.8])
def test_decompose_of_coefficient_run_equals_its_records(p):
    """Where the basis is linearly independent ((1 - p) d > n + 1) the coefficients are unique."""
    W0, M, ds = problem(p, seed=6)
    rc = pb.train(W0, M, ds.X, ds.y, q=3, lr=2.0, steps=250, engine="coefficients", record=("gamma", "rho"), record_every=250)
    gamma, rho = pb.decompose(rc.W, W0, M, ds.mu, ds.xi)
    scale = float(rc.rho[-1].abs().max())
    assert float((gamma - rc.gamma[-1]).abs().max()) <= 1e-8 * scale
    assert float((rho - rc.rho[-1]).abs().max()) <= 1e-8 * scale
    rw = pb.train(W0, M, ds.X, ds.y, q=3, lr=2.0, steps=250, engine="weights", record=("gamma", "rho"), record_every=50)
    assert rw.gamma.shape == (6, 2, M_NEURONS) and rw.rho.shape == (6, 2, M_NEURONS, N)
    torch.testing.assert_close(rw.gamma[-1], rc.gamma[-1], rtol=1e-8, atol=1e-8 * scale)
    torch.testing.assert_close(rw.rho_pos[-1] + rw.rho_neg[-1], rw.rho[-1])
    assert bool((rw.rho_pos >= 0).all()) and bool((rw.rho_neg <= 0).all())


def test_signal_learning_sign_convention():
    """Class +1 neurons learn +mu (gamma > 0); class -1 neurons learn -mu (gamma < 0): j * gamma > 0."""
    W0, M, ds = small_problem(n=20, d=100, m=6, p=0.0, seed=2, mu_norm=12.0, sigma_0=0.05)
    rc = pb.train(W0, M, ds.X, ds.y, q=3, lr=2.0, steps=300, engine="coefficients", record="gamma", record_every=300)
    assert float(rc.gamma[-1, 0].max()) > 1 and float(rc.gamma[-1, 1].min()) < -1


def test_decompose_validates():
    W0, M, ds = problem(0.5, seed=1)
    with pytest.raises(ValueError, match="^M:"):
        pb.decompose(W0, W0, M * 0.5, ds.mu, ds.xi)
    with pytest.raises(ValueError, match="^W0:"):
        pb.decompose(W0, W0[:, :-1], M, ds.mu, ds.xi)
    with pytest.raises(ValueError, match="^xi:"):
        pb.decompose(W0, W0, M, ds.mu, ds.xi[:, :-1])
    with pytest.raises(ValueError, match="^W:"):
        pb.decompose(W0.clone().fill_(float("nan")), W0, M, ds.mu, ds.xi)


@pytest.mark.parametrize("method", ["gather", "matmul"])
def test_gram_methods_match_the_definition(method):
    """Both Gram paths against the einsum definition in float64, for masks from dense to empty."""
    from prunebook.decomposition import gram_matrices as _gram

    g = torch.Generator().manual_seed(3)
    B, two, m, n1, d = 7, 2, 5, 9, 60
    V = torch.randn(B, n1, d, dtype=torch.float64, generator=g)
    keep = torch.tensor([1.0, 0.0, 0.9, 0.6, 0.5, 0.3, 0.02], dtype=torch.float64)  # incl. full and empty
    M = (torch.rand(B, two, m, d, dtype=torch.float64, generator=g) < keep[:, None, None, None]).double()
    M[3, 1, 2] = 1.0  # one full neuron among partial ones
    M[5, 0, 1] = 0.0  # one empty neuron
    want = torch.einsum("bjrk,bak,bck->bjrac", M, V, V)
    got = _gram(V, M, method=method)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # broadcast batch dimensions and a shared V
    torch.testing.assert_close(_gram(V[0].expand(B, n1, d), M, method=method),
                               torch.einsum("bjrk,ak,ck->bjrac", M, V[0], V[0]), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="^method:"):
        _gram(V, M, method="fast")
