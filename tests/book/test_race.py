"""prunebook.book.race: chapter 4's race ratio on sweep tables, stuck samples, the first-step overshoot, rule scores."""

import numpy as np
import pandas as pd
import pytest
import torch

from prunebook.book import race
from prunebook.book.stages import stage1_race
from prunebook.experiment import Setting, build_batch
from prunebook.sweep import configurations
from prunebook.train import train

SMALL = Setting(d=60, n=12, m=4, mu_norm=6.0)


def rows(setting: Setting, ps, seeds) -> pd.DataFrame:
    """A sweep table's configuration columns (no training needed: R and stuck samples use the initialization)."""
    return pd.DataFrame(configurations({"p": list(ps)}, list(seeds), setting))


def test_race_ratio_equals_chapter_3s_stage1_race():
    ps, seeds = [0.0, 0.3, 0.6, 0.8], [3, 4, 5]
    df = rows(SMALL, ps, seeds)
    got = race.race_ratios(df)
    W0, M, ds = build_batch(SMALL, df.p.tolist(), df.seed.tolist(), dtype=torch.float64)
    want = stage1_race(W0, M, ds.mu, ds.xi, ds.y, q=SMALL.q).ratio.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.isfinite(got).all() and (got >= 0).all()
    # rows in any order, several settings in one table
    mixed = pd.concat([df, rows(SMALL.with_(n=20, q=4.0), ps, seeds)]).sample(frac=1, random_state=0)
    again = race.race_ratios(mixed)
    first = mixed.n.to_numpy() == SMALL.n
    order = np.lexsort((mixed.seed[first], mixed.p[first]))
    np.testing.assert_allclose(np.sort(again[first]), np.sort(got), rtol=1e-10)
    assert len(order) == len(got)


def test_race_ratio_is_zero_without_a_usable_neuron_and_needs_q_above_two():
    W0, M, ds = build_batch(SMALL, [0.5], [7], dtype=torch.float64)
    M = M.clone()
    M[..., 0] = 0  # no neuron keeps the signal coordinate (mu is ||mu|| e_1): no usable neuron
    R = race.race_ratio(W0[0], M, ds.mu[0], ds.xi[0], ds.y[0], q=3.0)
    assert R.item() == 0.0
    with pytest.raises(ValueError, match="q"):
        race.race_ratio(W0[0], M, ds.mu[0], ds.xi[0], ds.y[0], q=2.0)


def test_stuck_samples_by_hand_and_on_tables():
    d, m, n = 6, 2, 3
    X = torch.zeros(n, 2, d, dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    for i in range(n):
        X[i, 0, 0] = 2.0 * y[i]  # signal patch y mu, mu = 2 e_1
        X[i, 1, i + 1] = 1.0  # noise patch on its own coordinate
    W0 = torch.zeros(2, m, d, dtype=torch.float64)
    M = torch.ones_like(W0)
    W0[0, 0, 1] = 1.0  # a class +1 neuron active on sample 0's noise only
    W0[1, 0, 0] = -1.0  # a class -1 neuron active on the signal patch of class -1 samples (-mu)
    assert race.stuck_samples(W0, M, X, y).item() == 1  # sample 1: no class +1 neuron is active on it
    W0[0, 1, 2] = 0.5
    assert race.stuck_samples(W0, M, X, y).item() == 0
    M2 = M.clone()
    M2[0, 1, 2] = 0  # pruning the weight that made it active makes it stuck again
    assert race.stuck_samples(W0, M2, X, y).item() == 1
    # the table path rebuilds every network: equal to the direct call on build_batch's networks
    df = rows(Setting(d=40, n=30, m=2), [0.0, 0.5, 0.9], range(12))
    got = race.stuck_samples(df)
    W0b, Mb, ds = build_batch(Setting(d=40, n=30, m=2), df.p.tolist(), df.seed.tolist(), dtype=torch.float64)
    np.testing.assert_array_equal(got, race.stuck_samples(W0b, Mb, ds.X, ds.y))
    assert got.sum() > 0, "with m = 2 some samples are stuck"
    with pytest.raises(ValueError, match="M"):
        race.stuck_samples(W0)


def test_first_step_overshoot_predicts_the_sign_change_of_one_gd_step():
    setting = Setting(d=40, n=40, m=3, mu_norm=10.0, sigma_0=0.02)
    df = rows(setting, [0.0, 0.3, 0.6], range(40))
    W0, M, ds = build_batch(setting, df.p.tolist(), df.seed.tolist(), dtype=torch.float64)
    mu = ds.mu[:, None, None, :]
    before = torch.tensor([1.0, -1.0], dtype=torch.float64)[:, None] * ((W0 * M) * mu).sum(-1)  # j <w0 ⊙ m, mu>
    wrong = (before < 0) & ((M * mu**2).sum(-1) > 0)
    for lr in (3.0, 10.0, 30.0):
        res = train(W0, M, ds.X, ds.y, q=3.0, lr=lr, steps=1, engine="weights", record=("loss",))
        after = torch.tensor([1.0, -1.0], dtype=torch.float64)[:, None] * ((res.W * M) * mu).sum(-1)
        flipped = (wrong & (after > 0)).flatten(1).any(1).numpy()
        predicted = race.first_step_overshoot(df, lr)
        assert predicted.dtype == bool and len(predicted) == len(df)
        assert (predicted == flipped).mean() >= 0.97, lr  # l' = -1/2 is exact only at f = 0
        assert predicted.any() or lr == 3.0
    assert not race.first_step_overshoot(df, 1e-6).any(), "a tiny step never overshoots"
    with pytest.raises(ValueError, match="lr"):
        race.first_step_overshoot(df, 0.0)


def test_rule_scores_count_agreements_and_resample_seeds():
    df = pd.DataFrame({"seed": [1, 1, 2, 2, 3, 3], "test_error": [0.0, 0.5, 0.0, 0.5, 0.5, 0.5]})
    won = np.array([True, False, True, False, False, False])
    scores = race.rule_scores(df, {"exact": won, "always": np.ones(6, bool), "flipped": ~won}, n_boot=200)
    assert scores.loc["exact", "fraction"] == 1.0 and scores.loc["exact", "agree"] == 6
    assert scores.loc["always", "fraction"] == pytest.approx(2 / 6)
    assert scores.loc["flipped", "fraction"] == 0.0
    assert scores.loc["always", "seeds"] == 3
    assert scores.loc["always", "lo"] <= 2 / 6 <= scores.loc["always", "hi"]
    with pytest.raises(ValueError, match="rules"):
        race.rule_scores(df, {"short": [True]})


def test_rule_difference_is_paired_and_resamples_seeds():
    df = pd.DataFrame({"seed": [1, 1, 2, 2, 3, 3, 4, 4],
                       "test_error": [0.0, 0.5, 0.0, 0.5, 0.5, 0.5, 0.0, 0.0]})
    won = df.test_error.to_numpy() < 0.25
    exact = race.rule_difference(df, won, won, n_boot=200)
    assert exact.estimate == 0.0 and exact.lo == 0.0 and exact.hi == 0.0, "a rule against itself"
    worse = won.copy()
    worse[[0, 2]] = ~worse[[0, 2]]  # two networks of two seeds wrong
    r = race.rule_difference(df, won, worse, n_boot=400)
    assert r.estimate == pytest.approx(2 / 8)
    assert 0 <= r.lo <= 2 / 8 <= r.hi <= 2 / 4, "each resample: the misses of the chosen seeds over their networks"
    flipped = race.rule_difference(df, worse, won, n_boot=400)
    assert flipped.estimate == pytest.approx(-r.estimate)
    assert flipped.hi == pytest.approx(-r.lo) and flipped.lo == pytest.approx(-r.hi), "antisymmetric, same resamples"
    with pytest.raises(ValueError, match="rule_b"):
        race.rule_difference(df, won, [True])


def test_fit_constant_rule_recovers_a_threshold():
    rng = np.random.default_rng(0)
    s = np.exp(rng.uniform(np.log(0.5), np.log(50), 4000))
    won = rng.uniform(size=s.size) < 1 / (1 + (5.0 / s) ** 4)  # P(win) = 1/2 at s = 5
    df = pd.DataFrame({"n_snr_q": s, "test_error": np.where(won, 0.0, 0.5)})
    assert race.fit_constant_rule(df) == pytest.approx(5.0, rel=0.1)
    with pytest.raises(ValueError, match="df"):
        race.fit_constant_rule(df.assign(test_error=0.0))
