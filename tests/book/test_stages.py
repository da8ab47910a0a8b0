"""Chapter 3's stage-1 analyses (prunebook.book.stages): the growth rates and the race prediction."""

import math

import pytest
import torch

import prunebook as pb
from prunebook.book.stages import blowup_time, learned_noise_spread, stage1_race, stage1_rates
from prunebook.engines.reference import inner_products, reference_step

from conftest import small_problem


def test_stage1_rates_against_loops():
    W0, M, ds = small_problem(n=7, d=30, m=3, p=0.4, seed=5, mu_norm=3.0)
    q, lr = 3.0, 0.2
    st = stage1_rates(W0, M, ds.mu, ds.xi, ds.y, q=q, lr=lr)
    n, m = 7, 3
    for c, j in enumerate((1, -1)):
        n_j = sum(1 for v in ds.y.tolist() if v == j)
        for r in range(m):
            w = [float(a * b) for a, b in zip(W0[c, r], M[c, r])]
            mu = ds.mu.tolist()
            x = j * sum(a * b for a, b in zip(w, mu))
            assert st.signal_overlap[c, r].item() == pytest.approx(x, abs=1e-12)
            kept_mu = sum(float(M[c, r, k]) * mu[k] ** 2 for k in range(30))
            assert st.signal_rate[c, r].item() == pytest.approx(lr * q * kept_mu * n_j / (2 * n * m))
            assert bool(st.usable[c, r]) == (kept_mu > 0 and x > 0)
            for i in range(n):
                xi = ds.xi[i].tolist()
                xo = sum(a * b for a, b in zip(w, xi))
                sq = sum(float(M[c, r, k]) * xi[k] ** 2 for k in range(30))
                assert st.noise_overlap[c, r, i].item() == pytest.approx(xo, abs=1e-12)
                assert st.noise_rate[c, r, i].item() == pytest.approx(lr * q * sq / (2 * n * m))
                assert bool(st.memorizes[c, r, i]) == (j * ds.y[i].item() > 0 and xo > 0)


def test_stage1_rates_predict_the_first_gd_step():
    """At a small initialization l' = -1/2, so one GD step moves every usable neuron's signal overlap
    by A_signal x^(q-1) and every memorizing overlap by A_noise x^(q-1) (plus small cross terms)."""
    W0, M, ds = small_problem(n=40, d=400, m=6, p=0.3, seed=2, mu_norm=5.0, sigma_0=1e-3)
    q, lr = 3.0, 0.05
    st = stage1_rates(W0, M, ds.mu, ds.xi, ds.y, q=q, lr=lr)
    assert st.usable.any() and st.memorizes.any()
    inner = inner_products(W0, M, ds.mu, ds.xi)
    gamma, rho = reference_step(W0.new_zeros(2, 6), W0.new_zeros(2, 6, 40), inner, ds.y, q=q, lr=lr)
    j = torch.tensor([1.0, -1.0], dtype=W0.dtype)[:, None]
    step_signal = (j * gamma)[st.usable]  # the kept signal coordinate: <delta w ⊙ m, mu> = gamma
    torch.testing.assert_close(step_signal, (st.signal_rate * st.signal_overlap ** (q - 1))[st.usable], rtol=1e-4, atol=0)
    # the step of <w ⊙ m, xi_i> is rho_i plus cross terms sum_k rho_k <xi_k ⊙ m, xi_i ⊙ m> / ||xi_k ⊙ m||^2
    step_noise = rho[st.memorizes]
    want = (st.noise_rate * st.noise_overlap ** (q - 1))[st.memorizes]
    torch.testing.assert_close(step_noise, want, rtol=1e-4, atol=0)
    # a wrong-sign neuron is inactive on its own class's signal and moves towards zero, never past it
    wrong = pb.signal_carrying(M, ds.mu) & (st.signal_overlap < 0)
    assert wrong.any()
    moved = (j * gamma)[wrong]
    assert bool((moved > 0).all()) and bool((moved < -st.signal_overlap[wrong]).all())


def test_blowup_time_matches_the_recursion():
    for q, rate, x0 in [(3.0, 0.01, 0.05), (4.0, 0.02, 0.2), (3.0, 0.002, 0.3)]:
        x, t = x0, 0
        while x < 1e6:
            x, t = x + rate * x ** (q - 1), t + 1
        predicted = float(blowup_time(torch.tensor(rate, dtype=torch.float64), x0, q))
        assert abs(t - predicted) / predicted < 0.06, (q, rate, x0, t, predicted)
    times = blowup_time(torch.tensor([0.1, 0.1, 0.0]), torch.tensor([0.5, -0.5, 0.5]), 3)
    assert math.isfinite(times[0]) and math.isinf(times[1]) and math.isinf(times[2])
    with pytest.raises(ValueError, match="q"):
        blowup_time(torch.tensor(0.1), 0.5, 2)


def test_stage1_race_ratio_does_not_depend_on_lr_and_needs_a_usable_neuron():
    W0, M, ds = small_problem(n=20, d=200, m=5, p=0.5, seed=8, mu_norm=6.0, sigma_0=0.01)
    a = stage1_race(W0, M, ds.mu, ds.xi, ds.y, q=3, lr=1.0)
    b = stage1_race(W0, M, ds.mu, ds.xi, ds.y, q=3, lr=0.01)
    torch.testing.assert_close(a.ratio, b.ratio)
    torch.testing.assert_close(b.signal_time, 100 * a.signal_time)
    assert a.noise_time.shape == (20,) and a.ratio.shape == ()
    # batched: stacking two networks gives each its own ratio
    M0 = M.clone()
    M0[..., 0] = 0  # drop the signal coordinate everywhere: no usable neuron, the noise wins
    batch = stage1_race(torch.stack([W0, W0]), torch.stack([M, M0]), torch.stack([ds.mu, ds.mu]),
                        torch.stack([ds.xi, ds.xi]), torch.stack([ds.y, ds.y]), q=3)
    torch.testing.assert_close(batch.ratio[0], a.ratio)
    assert math.isinf(batch.signal_time[1]) and batch.ratio[1].item() == 0
    with pytest.raises(ValueError, match="xi"):
        stage1_race(W0, M, ds.mu, ds.xi[:, :-1], ds.y, q=3)


def test_learned_noise_spread_against_fresh_samples():
    W0, M, ds = small_problem(n=12, d=150, m=3, p=0.6, seed=4, mu_norm=4.0, sigma_0=0.05)
    res = pb.train(W0, M, ds.X, ds.y, q=3, lr=0.5, steps=80, engine="coefficients", record=("gamma", "rho"),
                   record_every=80)
    rho = res.rho[-1]
    spread = learned_noise_spread(rho, M, ds.xi, sigma_p=1.5)
    assert spread.shape == (2, 3) and float(spread.max()) > 0
    fresh = pb.sample_data(20000, ds.mu, sigma_p=1.5, seed=99).xi  # [N, d]
    learned = (res.W - W0) * M  # its noise part: sum_i rho_i xi_i ⊙ m / ||xi_i ⊙ m||^2, plus gamma on mu (orthogonal to xi)
    empirical = torch.einsum("jrk,nk->njr", learned, fresh).std(dim=0)
    torch.testing.assert_close(spread, empirical, rtol=0.03, atol=0)
    # one coefficient alone: sigma_p |rho_i| / ||xi_i ⊙ m||
    one = torch.zeros_like(rho)
    one[0, 1, 4] = 2.0
    want = 1.5 * 2.0 / (ds.xi[4] * M[0, 1]).norm()
    torch.testing.assert_close(learned_noise_spread(one, M, ds.xi, sigma_p=1.5)[0, 1], want)
    with pytest.raises(ValueError, match="rho"):
        learned_noise_spread(rho[..., :-1], M, ds.xi)


def test_signal_overlaps_and_first_time():
    from prunebook.book.stages import first_time, signal_overlaps

    W0, M, ds = small_problem(n=10, d=40, m=3, p=0.2, seed=2, mu_norm=4.0, sigma_0=0.05)
    res = pb.train(W0, M, ds.X, ds.y, q=3, lr=0.2, steps=30, engine="coefficients", record=("gamma",),
                   record_every=10)
    x = signal_overlaps(res.gamma, W0, M, ds.mu)
    j = torch.tensor([1.0, -1.0], dtype=W0.dtype)[:, None]
    for t in range(res.gamma.shape[0]):
        W_t = res.W if t == res.gamma.shape[0] - 1 else None
        if W_t is not None:  # the last record: the overlap straight from the weights
            torch.testing.assert_close(x[t], j * ((W_t * M) * ds.mu).sum(-1))
    torch.testing.assert_close(x[0], j * ((W0 * M) * ds.mu).sum(-1))
    times = torch.tensor([0.0, 1.0, 2.0, 3.0])
    values = torch.tensor([[0.1, 5.0], [0.5, 5.0], [2.0, 5.0], [3.0, 5.0]])
    got = first_time(times, values, 1.0)
    assert got.tolist() == [2.0, 0.0]
    assert math.isinf(float(first_time(times, values[:, :1], 10.0)[0]))
    with pytest.raises(ValueError, match="values"):
        first_time(times[:3], values, 1.0)


def test_race_bins_and_held_out_threshold():
    import numpy as np

    from prunebook.book.stages import held_out_threshold, race_bins

    r = np.array([0.3, 0.6, 0.9, 1.2, 1.8, 2.5, 0.4, 3.0])
    ok = np.array([0, 0, 1, 1, 1, 1, 0, 1], bool)
    bins = race_bins(r, ok, [0, 0.5, 1, 2, np.inf])
    assert bins.n.tolist() == [2, 2, 2, 2] and bins.k.tolist() == [0, 1, 2, 2]
    assert (bins.wilson_lo <= bins.k / bins.n).all() and (bins.wilson_hi >= bins.k / bins.n).all()
    assert bins.centre.iloc[-1] == pytest.approx(3.0) and bins.centre.iloc[1] == pytest.approx(math.sqrt(0.5))
    with pytest.raises(ValueError, match="edges"):
        race_bins(r, ok, [1, 0])
    # a clean step at R = 1 on the fitting half; the evaluation half has one exception
    rng = np.random.default_rng(0)
    R = np.exp(rng.uniform(-1.5, 1.5, 200))
    success = R > 1
    success[150] = not success[150]
    fit = np.arange(200) < 100
    held = held_out_threshold(R, success, fit)
    assert held.fit_networks == 100 and held.eval_networks == 100
    assert 0.8 < held.fitted < 1.25 and held.agree_one == 99
    assert held.agree_fitted >= 97
    degenerate = held_out_threshold(R, np.ones(200, bool), fit)
    assert math.isnan(degenerate.fitted) and degenerate.agree_fitted == 0
    with pytest.raises(ValueError, match="fit"):
        held_out_threshold(R, success, fit[:-1])
