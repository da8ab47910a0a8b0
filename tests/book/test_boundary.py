"""prunebook.book.boundary: boundary estimates and failure laws on synthetic tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from prunebook.book import boundary
from prunebook.seeds import numpy_rng
from prunebook.theory import prob_no_usable_neuron

P_GRID = [round(1 - 10 ** (-k / 10), 4) for k in range(11)]  # 0 to 0.9
N_GRID = [10, 14, 20, 28, 40, 57, 80, 113, 160, 226, 320]


def synthetic(slope: float, *, seeds=40, C=60.0, sharpness=4.0, seed=0) -> pd.DataFrame:
    """Networks whose success probability is sigmoid(sharpness * log(n / (C (1 - p)^slope)))."""
    rng = numpy_rng(seed)
    rows = []
    for s in range(seeds):
        for p in P_GRID:
            for n in N_GRID:
                z = sharpness * (np.log(n) - np.log(C) - slope * np.log(1 - p))
                win = rng.uniform() < 1 / (1 + np.exp(-z))
                rows.append({"p": p, "n": n, "seed": s, "test_error": 0.01 if win else 0.5, "converged": True,
                             "usable_pos": 1, "usable_neg": 1})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("slope", [1.5, 2.0])
def test_scaling_fit_recovers_the_slope_of_a_known_boundary(slope):
    fit = boundary.scaling_fit(synthetic(slope, seeds=120))  # slope's sampling spread about 0.03
    assert fit["slope"] == pytest.approx(slope, abs=0.12)
    assert np.exp(fit["intercept"]) == pytest.approx(60.0, rel=0.15)
    r = boundary.scaling_slope(synthetic(slope, seeds=30), n_boot=60, seed=1)
    assert r.lo <= r.estimate <= r.hi and 0 < r.hi - r.lo < 0.6 and r.degenerate == 0
    assert abs(r.estimate - slope) < 0.25


def test_scaling_slope_tells_apart_slopes_one_half_apart():
    lo = boundary.scaling_slope(synthetic(1.5, seed=2), n_boot=60)
    hi = boundary.scaling_slope(synthetic(2.0, seed=3), n_boot=60)
    assert lo.hi < hi.lo


def test_boundary_per_row_follows_the_boundary_and_leaves_out_rows_without_one():
    df = synthetic(1.5, C=60.0)
    est = boundary.boundary_per_row(df, n_boot=40)
    assert list(est.p) == P_GRID
    inside = est.dropna(subset=["n"])
    assert len(inside) >= 5
    truth = 60.0 * (1 - inside.p.to_numpy()) ** 1.5
    np.testing.assert_allclose(inside.n.to_numpy(), truth, rtol=0.35)
    assert np.all(inside.lo <= inside.n) and np.all(inside.n <= inside.hi)
    # all successes at p where the boundary lies below the grid: no estimate
    all_win = df.assign(test_error=0.0)
    assert boundary.boundary_per_row(all_win, n_boot=10).n.isna().all()


def test_success_cells_count_converged_networks_apart():
    df = pd.DataFrame({"p": [0.0] * 4 + [0.5] * 4, "n": [10] * 8, "seed": list(range(4)) * 2,
                       "test_error": [0.0, 0.0, 0.5, 0.0, 0.5, 0.5, 0.0, 0.5],
                       "converged": [True, True, True, False, False, False, False, False]})
    cells = boundary.success_cells(df, "p", "n")
    first = cells[cells.p == 0.0].iloc[0]
    assert (first.networks, first.converged, first.successes) == (4, 3, 2)
    assert first.fraction == pytest.approx(2 / 3) and 0 < first.lo < 2 / 3 < first.hi < 1
    second = cells[cells.p == 0.5].iloc[0]
    assert second.converged == 0 and np.isnan(second.fraction) and np.isnan(second.lo)


def test_failure_rates_compare_counts_with_the_usable_neuron_law():
    df = pd.DataFrame({"p": [0.9] * 5, "seed": range(5), "test_error": [0.5, 0.49, 0.01, 0.0, 0.3],
                       "usable_pos": [0, 0, 1, 0, 2], "usable_neg": [0, 0, 0, 0, 0]})
    r = boundary.failure_rates(df, m=10).iloc[0]
    assert (r.networks, r.failures, r.no_usable) == (5, 3, 3)
    assert (r.caught, r.false_alarms) == (2, 1)
    assert r.predicted == pytest.approx(0.95**20) == pytest.approx(prob_no_usable_neuron(0.9, 10))
    assert r.observed == pytest.approx(0.6) and r.lo < 0.6 < r.hi


def test_choose_and_report_uses_disjoint_seeds():
    rows = []
    for s in range(8):
        for p, e in [(0.0, 0.3), (0.5, 0.01), (0.8, 0.0 if s < 4 else 0.5), (0.95, 0.5)]:
            rows.append({"p": p, "seed": s, "test_error": e})
    df = pd.DataFrame(rows)
    out = boundary.choose_and_report(df, [0, 1, 2, 3], [4, 5, 6, 7])
    # on seeds 0-3, p = 0.8 has error 0 (best); on the held-out seeds it fails: reported honestly
    assert out["best_p"] == 0.8 and out["best"]["fraction"] == 0.0 and out["best"]["hi"] < 0.7
    assert out["threshold_p"] == 0.95 and out["threshold"]["fraction"] == 0.0
    assert out["dense"]["mean_error"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="report_seeds"):
        boundary.choose_and_report(df, [0, 1], [1, 2])


def test_split_seeds_and_bad_input():
    assert boundary.split_seeds([5, 3, 4, 3, 6]) == ([3, 4], [5, 6])
    with pytest.raises(ValueError, match="seeds"):
        boundary.split_seeds([1])
    with pytest.raises(ValueError, match="df"):
        boundary.failure_rates(pd.DataFrame({"p": [0.1]}), m=3)
    with pytest.raises(ValueError, match="level"):
        boundary.success(pd.DataFrame({"test_error": [0.1]}), level=2)
    with pytest.raises(ValueError, match="X"):
        boundary.logistic_fit_multi(np.zeros((3, 1)) + np.nan, np.array([0, 1, 0]))


def test_adjusting_for_a_covariate_recovers_the_slope_at_fixed_covariate():
    # success depends on n, 1 - p and a count U that falls with p: sigmoid(4 (log n - 1.5 log(1-p) + log U - c))
    rng = numpy_rng(5)
    rows = []
    for s in range(60):
        for p in P_GRID:
            U = max(1, int(rng.binomial(20, (1 - p) / 2)))
            for n in N_GRID:
                z = 4 * (np.log(n) - 1.5 * np.log(1 - p) + np.log(U) - np.log(300))
                rows.append({"p": p, "n": n, "seed": s, "U": U, "test_error": 0.0 if rng.uniform() < 1 / (1 + np.exp(-z)) else 0.5})
    df = pd.DataFrame(rows)
    plain = boundary.scaling_fit(df)["slope"]
    adjusted = boundary.scaling_fit(df, adjust=["U"])
    assert adjusted["slope"] == pytest.approx(1.5, abs=0.15)
    assert plain < 1.0  # U ~ 1 - p: leaving it out flattens the apparent slope (about 1.5 - 1 = 0.5)
    w = adjusted["coefficients"]
    assert w[3] / w[1] == pytest.approx(1.0, abs=0.15)
    r = boundary.scaling_slope(df, adjust=["U"], n_boot=30)
    assert r.lo <= r.estimate <= r.hi
    with pytest.raises(ValueError, match="adjust"):
        boundary.scaling_fit(df.assign(U=0), adjust=["U"])


def test_slope_difference_sees_one_half_and_zero():
    diff = boundary.slope_difference(synthetic(1.5, seed=4), synthetic(2.0, seed=5), n_boot=60, seed=1)
    assert diff.lo <= 0.5 <= diff.hi and diff.lo > 0 and diff.degenerate == 0
    same = boundary.slope_difference(synthetic(1.5, seed=6), synthetic(1.5, seed=7), n_boot=60, seed=1)
    assert same.lo <= 0 <= same.hi and same.hi < 0.5
    with pytest.raises(ValueError, match="n_boot"):
        boundary.slope_difference(synthetic(1.5), synthetic(2.0), n_boot=0)


def test_seed_bootstrap_fraction_resamples_seeds_not_networks():
    seeds = np.repeat(np.arange(10), 9)
    hits = np.repeat(np.arange(10) < 5, 9)  # each seed all-or-nothing: 90 networks, but only 10 units
    r = boundary.seed_bootstrap_fraction(seeds, hits, n_boot=400, seed=2)
    assert r.estimate == pytest.approx(0.5)
    assert r.hi - r.lo > 0.4  # about a 10-seed interval, far wider than a 90-network one (~0.2)
    with pytest.raises(ValueError, match="hits"):
        boundary.seed_bootstrap_fraction(seeds, hits[:-1])


def test_an_outcome_replaces_success_in_the_boundary_and_the_slope():
    df = synthetic(1.5, seeds=20, seed=3)
    rule = (df.n.to_numpy() > 40 * (1 - df.p.to_numpy()) ** 1.0)  # a rule whose boundary has slope 1
    flipped = df.assign(test_error=np.where(rule, 0.0, 0.5))
    a = boundary.boundary_per_row(df, outcome=rule, n_boot=30)
    b = boundary.boundary_per_row(flipped, n_boot=30)
    pd.testing.assert_frame_equal(a.drop(columns="successes"), b.drop(columns="successes"))
    r = boundary.scaling_slope(df, outcome=rule, n_boot=30)
    assert r.estimate == pytest.approx(boundary.scaling_slope(flipped, n_boot=30).estimate)
    assert r.estimate == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError, match="outcome"):
        boundary.scaling_slope(df, outcome=rule[:5])


def test_first_seeds_keeps_whole_seeds():
    df = pd.DataFrame({"seed": [5, 3, 9, 3, 5, 1], "p": [0, 0, 0, 0.5, 0.5, 0.5]})
    assert sorted(boundary.first_seeds(df, 2).seed) == [1, 3, 3]
    assert boundary.first_seeds(df, None) is df
    assert len(boundary.first_seeds(df, 10)) == 6
    with pytest.raises(ValueError, match="k"):
        boundary.first_seeds(df, 0)
