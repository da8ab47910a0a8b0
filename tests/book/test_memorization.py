"""Chapter 3's finding-2 mechanism (prunebook.book.memorization): memorization at the signal's time
and the split of the test loss."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import prunebook as pb
from prunebook.book.memorization import (loss_gap, memorized_margins, positive_moment, predicted_memorized_margin,
                                         sample_race, signal_parts, stage1_overlap, typical_memorization)
from prunebook.book.stages import blowup_time, stage1_race, stage1_rates
from prunebook.experiment import Setting, run

from conftest import small_problem


def test_stage1_overlap_solves_the_ode():
    for q, A, x0 in ((3.0, 0.7, 0.4), (4.0, 2.0, 0.3), (3.5, 1.3, 0.25)):
        T = float(blowup_time(torch.tensor(A, dtype=torch.float64), x0, q))
        for frac in (0.2, 0.6, 0.9):
            sol = integrate.solve_ivp(lambda t, x: A * x ** (q - 1), (0, frac * T), [x0], rtol=1e-11, atol=1e-13)
            got = float(stage1_overlap(torch.tensor(x0, dtype=torch.float64), A, frac * T, q=q))
            assert got == pytest.approx(sol.y[0, -1], rel=1e-7)
            down = integrate.solve_ivp(lambda t, x: -A * x ** (q - 1), (0, frac * T), [x0], rtol=1e-11, atol=1e-13)
            got = float(stage1_overlap(torch.tensor(x0, dtype=torch.float64), A, frac * T, q=q, grow=False))
            assert got == pytest.approx(down.y[0, -1], rel=1e-7)
        assert math.isinf(float(stage1_overlap(torch.tensor(x0, dtype=torch.float64), A, 1.01 * T, q=q)))
    # inactive overlaps do not move
    x = stage1_overlap(torch.tensor([-0.2, 0.0], dtype=torch.float64), 1.0, 5.0, q=3)
    torch.testing.assert_close(x, torch.tensor([-0.2, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="q"):
        stage1_overlap(torch.tensor(0.1), 1.0, 1.0, q=2)
    with pytest.raises(ValueError, match="t"):
        stage1_overlap(torch.tensor(0.1), 1.0, -1.0, q=3)


def test_sample_race_against_loops():
    W0, M, ds = small_problem(n=9, d=60, m=4, p=0.3, seed=6, mu_norm=5.0, sigma_0=0.1)
    race = sample_race(W0, M, ds.mu, ds.xi, ds.y, q=3)
    st = stage1_rates(W0, M, ds.mu, ds.xi, ds.y, q=3, lr=1.0)
    for c in range(2):
        times = [float(blowup_time(st.signal_rate[c, r], st.signal_overlap[c, r], 3))
                 for r in range(4) if st.usable[c, r]]
        assert float(race.signal_time[c]) == pytest.approx(min(times, default=math.inf))
    for i in range(9):
        c = 0 if ds.y[i] > 0 else 1
        times = [float(blowup_time(st.noise_rate[c, r, i], st.noise_overlap[c, r, i], 3))
                 for r in range(4) if st.noise_overlap[c, r, i] > 0]
        t_n = min(times, default=math.inf)
        assert float(race.noise_time[i]) == pytest.approx(t_n)
        want = 0.0 if math.isinf(t_n) else float(race.signal_time[c]) / t_n
        assert float(race.ratio[i]) == pytest.approx(want)
    # the network's median-sample race ratio R is the median of 1 / ratio, up to the class of the samples
    net = stage1_race(W0, M, ds.mu, ds.xi, ds.y, q=3)
    assert float(net.signal_time) == pytest.approx(float(race.signal_time.min()))


def test_predicted_memorized_margin_against_the_flow_early():
    """Before any blow-up the prediction at time t is the flow's memorized margin at t (small init,
    n << d so the cross terms are small)."""
    s = Setting(d=2000, n=20, m=6, mu_norm=3.0, sigma_0=0.003)
    W0, M, ds = pb.experiment.build(s, 0.3, 4, dtype=torch.float64)
    race = sample_race(W0, M, ds.mu, ds.xi, ds.y, q=3)
    t = 0.3 * float(race.noise_time.min())
    res = pb.flow(W0, M, ds.X, ds.y, q=3, t_end=t, rtol=1e-9, stop_loss=None)
    measured = memorized_margins(res.W, W0, M, ds.xi, ds.y, q=3)
    predicted = predicted_memorized_margin(W0, M, ds.mu, ds.xi, ds.y, q=3, t=t)
    assert bool(torch.isfinite(predicted).all())
    assert float(predicted.abs().max()) > 0 and float(measured.abs().max()) > 0
    torch.testing.assert_close(predicted, measured, rtol=0.15, atol=1e-3 * float(measured.abs().max()))
    # by default t is each sample's own class's signal time: infinite where the noise blows up first
    default = predicted_memorized_margin(W0, M, ds.mu, ds.xi, ds.y, q=3)
    assert bool(torch.isinf(default[race.ratio >= 1]).all()) and bool(torch.isfinite(default[race.ratio < 1]).all())


def test_memorized_margins_by_hand():
    W0, M, ds = small_problem(n=5, d=20, m=2, p=0.2, seed=1, mu_norm=2.0, sigma_0=0.2)
    W = W0 + 0.3 * torch.randn(W0.shape, generator=torch.Generator().manual_seed(0), dtype=W0.dtype)
    got = memorized_margins(W, W0, M, ds.xi, ds.y, q=3)

    def noise_out(w, xi):
        return sum(j * max(float(((w[c, r] * M[c, r]) * xi).sum()), 0.0) ** 3 for c, j in ((0, 1), (1, -1))
                   for r in range(2)) / 2

    for i in range(5):
        want = float(ds.y[i]) * (noise_out(W, ds.xi[i]) - noise_out(W0, ds.xi[i]))
        assert float(got[i]) == pytest.approx(want, rel=1e-10, abs=1e-14)
    assert float(memorized_margins(W0, W0, M, ds.xi, ds.y, q=3).abs().max()) == 0
    with pytest.raises(ValueError, match="W0"):
        memorized_margins(W, W0[..., :-1], M, ds.xi, ds.y, q=3)


def test_loss_gap_identity_and_parts():
    s = Setting(d=300, n=24, m=6, mu_norm=8.0, dynamics="flow", t_end=50.0)
    r = run(s, [0.0, 0.6], [11, 11], dtype=torch.float64)
    gap = loss_gap(r.result.W, r.M, r.data.X, r.data.y, r.data.mu, q=3, n_test=4000, seed=2)
    torch.testing.assert_close(gap.train_loss * gap.memorization_factor * gap.fresh_factor, gap.test_loss)
    # the signal parts by hand: f on the patch (+mu, 0) and (-mu, 0)
    for b in range(2):
        for sign, part in ((1.0, gap.signal_pos[b]), (-1.0, gap.signal_neg[b])):
            X = torch.zeros(1, 2, 300, dtype=torch.float64)
            X[0, 0] = sign * r.data.mu[b]
            f = pb.forward(r.result.W[b], r.M[b], X, 3)
            assert float(part) == pytest.approx(sign * float(f[0]), rel=1e-10, abs=1e-12)
    s_pos, s_neg = signal_parts(r.result.W, r.M, r.data.mu, q=3)
    torch.testing.assert_close(s_pos, gap.signal_pos)
    # the class-balanced training loss from the forward pass
    margins = r.data.y * pb.forward(r.result.W, r.M, r.data.X, 3)
    losses = torch.nn.functional.softplus(-margins)
    pos = r.data.y > 0
    want = 0.5 * (losses.where(pos, 0).sum(-1) / pos.sum(-1) + losses.where(~pos, 0).sum(-1) / (~pos).sum(-1))
    torch.testing.assert_close(gap.train_loss, want)
    # the test loss agrees with fresh samples from the data model (a different draw)
    W, M, mu = r.result.W[1], r.M[1], r.data.mu[1]
    fresh = pb.sample_data(20_000, mu, seed=77)
    direct = torch.nn.functional.softplus(-fresh.y * pb.forward(W, M, fresh.X, 3)).mean()
    assert float(gap.test_loss[1]) == pytest.approx(float(direct), rel=0.1)
    with pytest.raises(ValueError, match="n_test"):
        loss_gap(r.result.W, r.M, r.data.X, r.data.y, r.data.mu, q=3, n_test=10)
    with pytest.raises(ValueError, match="X"):
        loss_gap(r.result.W, r.M, r.data.X[:1], r.data.y, r.data.mu, q=3)


def test_typical_memorization_and_moments():
    for k in (1.0, 2.0, 3.0, 2.5):
        want = stats.norm.expect(lambda z: max(z, 0.0) ** k)
        assert positive_moment(k) == pytest.approx(want, rel=1e-6)
    assert positive_moment(2.0) == pytest.approx(0.5)
    v = typical_memorization(np.array([0.0, 0.75]), d=1000, q=3, sigma_0=0.01, t=2.0)
    assert v[0] == pytest.approx(1.5 * 0.5 * 1e-4 * 1000**2 * 2.0)
    assert v[0] / v[1] == pytest.approx(4.0**2)  # (1 - p)^((q+1)/2)
    with pytest.raises(ValueError, match="p"):
        typical_memorization(1.0, d=1000, q=3, sigma_0=0.01, t=1.0)


def test_typical_memorization_against_the_closed_form_in_the_linear_regime():
    """Summing the closed form over many random head starts (linear regime) gives the formula."""
    s = Setting(d=4000, n=40, m=30, mu_norm=3.0, sigma_0=0.003)
    W0, M, ds = pb.experiment.build(s, 0.5, 9, dtype=torch.float64)
    st = stage1_rates(W0, M, ds.mu, ds.xi, ds.y, q=3, lr=1.0)
    t = 0.05 * float(blowup_time(st.noise_rate, st.noise_overlap, 3).min())
    grown = stage1_overlap(st.noise_overlap, st.noise_rate, t, q=3) - st.noise_overlap
    total = float(grown.where(st.memorizes, torch.zeros_like(grown)).sum())
    assert total == pytest.approx(typical_memorization(0.5, d=4000, q=3, sigma_0=0.003, t=t), rel=0.15)
