"""Chapter 3's large-step analysis (prunebook.book.overshoot): the exact first step and the criterion."""

import pandas as pd
import pytest
import torch

import prunebook as pb
from prunebook.book.overshoot import (first_step_overlap, overshoot_ratio, overshoot_table, overshoot_threshold,
                                      overshoots, rescued)
from prunebook.engines.reference import inner_products, reference_step
from prunebook.experiment import Setting, build, build_batch, run

from conftest import small_problem


def test_first_step_is_the_reference_step():
    """The overlap after one step equals x0 + j gamma_1 of the plain coefficient step (sparse signal)."""
    W0, M, ds = small_problem(n=30, d=200, m=8, p=0.3, seed=3, mu_norm=12.0, sigma_0=0.02)
    for lr in (0.1, 1.0, 5.0):
        fs = first_step_overlap(W0, M, ds.X, ds.y, ds.mu, q=3, lr=lr)
        g1, _ = reference_step(W0.new_zeros(2, 8), W0.new_zeros(2, 8, 30), inner_products(W0, M, ds.mu, ds.xi),
                               ds.y, q=3, lr=lr)
        j = torch.tensor([1.0, -1.0], dtype=W0.dtype)[:, None]
        torch.testing.assert_close(fs.after, fs.before + j * g1, rtol=1e-10, atol=1e-12)
    assert fs.wrong_sign.any()
    assert torch.equal(fs.wrong_sign, pb.signal_carrying(M, ds.mu) & (fs.before < 0))


def test_criterion_matches_the_exact_step_at_small_initialization():
    """With f about 0 and balanced labels the criterion a^(q-2) > 4m/(lr q ||mu||^2) is the exact
    first step's verdict, for q = 3 and 4, neuron by neuron (away from the threshold)."""
    for q, s0 in ((3.0, 0.004), (4.0, 0.01)):
        W0, M, ds = build(Setting(d=300, n=400, m=12, mu_norm=18.0, sigma_0=s0, q=q), 0.2, 5, dtype=torch.float64)
        ratio = overshoot_ratio(W0, M, ds.mu, q=q, lr=1.0)
        fs = first_step_overlap(W0, M, ds.X, ds.y, ds.mu, q=q, lr=1.0)
        clear = fs.wrong_sign & ((ratio < 0.8) | (ratio > 1.25))  # n = 400: labels within a few % of balanced
        assert clear.sum() >= 4 and (fs.crossed & clear).any() and (~fs.crossed & clear).any(), q
        assert torch.equal((ratio > 1)[clear], fs.crossed[clear]), q
    assert torch.equal(overshoots(W0, M, ds.mu, q=q, lr=1.0), ratio > 1)


def test_threshold_and_ratio_by_hand():
    assert float(overshoot_threshold(10, 18.0, q=3, lr=1.0)) == pytest.approx(40 / (3 * 324))
    assert float(overshoot_threshold(10, 18.0, q=4, lr=0.5)) == pytest.approx(40 / (0.5 * 4 * 324))
    W0 = torch.zeros(2, 2, 3, dtype=torch.float64)
    W0[0, 0, 0], W0[0, 1, 0], W0[1, 0, 0], W0[1, 1, 0] = -0.1, 0.3, 0.05, 0.2
    M = torch.ones(2, 2, 3, dtype=torch.float64)
    M[1, 1, 0] = 0.0  # drops the signal coordinate
    mu = torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64)
    ratio = overshoot_ratio(W0, M, mu, q=3, lr=1.0)
    thr = 4 * 2 / (3 * 4.0)
    # class +1 neuron 0: a = 0.2; class -1 neuron 0: x = -<w, mu> = -0.1, a = 0.1; the others are not wrong-sign
    torch.testing.assert_close(ratio, torch.tensor([[0.2 / thr, 0.0], [0.1 / thr, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="q"):
        overshoot_threshold(10, 18.0, q=2, lr=1.0)
    with pytest.raises(ValueError, match="lr"):
        overshoot_threshold(10, 18.0, q=3, lr=0.0)


def test_rescued_needs_no_usable_neuron_and_a_crossing():
    W0 = torch.zeros(2, 2, 3, dtype=torch.float64)
    W0[0, 0, 0], W0[1, 0, 0] = -0.5, 0.5  # both kept with the wrong sign, a = 0.5 x 4 = 2
    M = torch.ones(2, 2, 3, dtype=torch.float64)
    M[:, 1, 0] = 0.0
    mu = torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)
    thr = float(overshoot_threshold(2, 4.0, q=3, lr=1.0))  # 8 / 48 = 1/6: a = 2 crosses at lr = 1
    assert bool(rescued(W0, M, mu, q=3, lr=1.0)) and 2.0 > thr
    assert bool(rescued(W0, M, mu, q=3, lr=0.1))  # threshold 5/3 < 2
    assert not bool(rescued(W0, M, mu, q=3, lr=0.05))  # threshold 10/3 > 2
    W0u = W0.clone()
    W0u[0, 0, 0] = 0.5  # now usable: not a rescue, the network can learn anyway
    assert not bool(rescued(W0u, M, mu, q=3, lr=1.0))


def test_overshoot_table_on_a_small_sweep():
    """Networks without a usable neuron at lr = 1 against the flow: the table's columns, and the
    prediction agrees with the first step."""
    base = Setting(d=400, m=4, n=30, mu_norm=18.0, sigma_0=0.012)
    ps, seeds = [0.9] * 24, list(range(300, 324))
    W0, M, ds = build_batch(base, ps, seeds)
    none = (pb.usable_neurons(W0, M, ds.mu).sum(-1) == 0).numpy()
    keep = [s for s, k in zip(seeds, none) if k][:6]
    assert len(keep) >= 3
    large = run(base.with_(lr=1.0, steps=60), [0.9] * len(keep), keep, n_test=2000).table()
    small = run(base.with_(dynamics="flow", t_end=60.0), [0.9] * len(keep), keep, n_test=2000).table()
    out = overshoot_table(large, small)
    assert list(out.seed) == keep and len(out) == len(keep)
    assert {"ratio", "predicted", "crossed", "race_after", "error_large", "error_small",
            "neurons_agree"} <= set(out.columns)
    assert (out.predicted == (out.ratio > 1)).all()
    assert (out.neurons_agree <= out.wrong_sign).all()
    assert (out.ratio[out.wrong_sign == 0] == 0).all()
    assert len(overshoot_table(large, small, limit=2)) == 2
    with pytest.raises(ValueError, match="small"):
        overshoot_table(large, small.iloc[:1])
    with pytest.raises(ValueError, match="large"):
        overshoot_table(large.drop(columns="usable_pos"), small)
    with pytest.raises(ValueError, match="large"):
        overshoot_table(large[large.usable_pos > 99], small)
    assert isinstance(out, pd.DataFrame)


def test_overshoot_tables_load_and_recompute():
    """The chapter's precomputed tables: their declared grid, and one recomputed row each."""
    from prunebook.book.precomputed import OVERSHOOT_CONFIGS, load
    from prunebook.seeds import numpy_rng

    for name, (q, sigma_0, _start) in OVERSHOOT_CONFIGS.items():
        for kind in ("lr1", "flow"):
            df = load(f"{name}_{kind}")
            assert len(df) == 100 and df.seed.nunique() == 100 and set(df.p) == {0.93}
            assert (df.q == q).all() and (df.sigma_0 == sigma_0).all() and (df.d == 5000).all()
            assert df.dynamics.iloc[0] == ("gd" if kind == "lr1" else "flow")
            row = df.iloc[int(numpy_rng(len(name) + len(kind)).integers(len(df)))]
            setting = Setting.from_record(row)
            again = run(setting, [float(row.p)], [int(row.seed)], record_every=max(1, setting.steps or 1)).table()
            assert again.final_loss[0] == pytest.approx(row.final_loss, rel=1e-3, abs=1e-9)
            assert abs(again.test_error[0] - row.test_error) <= 0.01
            assert bool(again.converged[0]) == bool(row.converged)
