"""Small helpers the chapters share: statistics, parameter checks, plots, the digits loader, masks in runs."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prunebook import criteria as cr  # noqa: E402
from prunebook.experiment import Setting, build_batch, run  # noqa: E402
from prunebook.params import check_parameters  # noqa: E402
from prunebook.realdata import digits_binary  # noqa: E402
from prunebook.seeds import stream_seed  # noqa: E402
from prunebook.stats import mean_ci, wilson_interval  # noqa: E402


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(11, 10)


@pytest.mark.parametrize(
    "values, kinds, arg",
    [
        (dict(seed=-1), dict(seed="seed"), "seed"),
        (dict(smoke="yes"), dict(smoke="bool"), "smoke"),
        (dict(n=0), dict(n="count"), "n"),
        (dict(n=2.0), dict(n="count"), "n"),
        (dict(p=[0.5, 1.0]), dict(p="fractions"), "p"),
        (dict(p=[]), dict(p="fractions"), "p"),
        (dict(q=0.5), dict(q="power"), "q"),
        (dict(mu=math.inf), dict(mu="positive"), "mu"),
        (dict(), dict(mu="positive"), "mu"),
        (dict(x=1), dict(x="colour"), "x"),
    ],
)
def test_check_parameters_names_the_bad_one(values, kinds, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        check_parameters(values, **kinds)


def test_check_parameters_accepts_good_values():
    check_parameters(dict(smoke=True, seed=0, n=3, p=[0.0, 0.99], q=3, mu=2.5, ns=[1, 2]),
                     smoke="bool", seed="seed", n="count", p="fractions", q="power", mu="positive", ns="counts")


def test_digits_binary_split_is_seeded_and_centred():
    tr, te = digits_binary(300, seed=4)
    assert tr.X.shape == (300, 1, 64) and te.X.shape == (1797 - 300, 1, 64)
    assert set(tr.y.unique().tolist()) == {-1.0, 1.0}
    assert float(tr.X.mean(0).abs().max()) < 1e-6  # centred with the training mean
    tr2, _ = digits_binary(300, seed=4)
    tr3, _ = digits_binary(300, seed=5)
    assert torch.equal(tr.X, tr2.X) and not torch.equal(tr.X, tr3.X)
    with pytest.raises(ValueError, match="^n_train:"):
        digits_binary(1797, seed=0)


def test_run_with_given_masks_equals_run_with_its_own():
    s = Setting(d=60, n=10, m=4, steps=30, mu_norm=5.0)
    ps, seeds = [0.0, 0.6], [1, 2]
    default = run(s, ps, seeds, record_every=30, n_test=2000)
    _, M, _ = build_batch(s, ps, seeds)
    same = run(s, ps, seeds, masks=M, record_every=30, n_test=2000)
    np.testing.assert_array_equal(default.test_error, same.test_error)
    with pytest.raises(ValueError, match="^masks:"):
        run(s, ps, seeds, masks=M[:1])


def test_batch_masks_one_per_network():
    s = Setting(d=40, n=8, m=3, steps=5)
    ps, seeds = [0.5, 0.9], [0, 1]
    W0, _, data = build_batch(s, ps, seeds, dtype=torch.float64)
    M = cr.batch_masks("snip", W0, data.X, data.y, ps, seeds, q=3)
    assert M.shape == W0.shape
    assert M[0].sum(-1).eq(20).all() and M[1].sum(-1).eq(4).all()
    torch.testing.assert_close(M[1], cr.criterion_mask("snip", W0[1], 0.9, X=data.X[1], y=data.y[1], q=3))
    R = cr.batch_masks("random", W0, data.X, data.y, ps, seeds)
    torch.testing.assert_close(R[0], cr.criterion_mask("random", W0[0], 0.5, seed=stream_seed(0, "mask")))
    with pytest.raises(ValueError, match="^ps:"):
        cr.batch_masks("snip", W0, data.X, data.y, ps[:1], seeds[:1])


def test_mean_ci_covers_the_mean_at_its_level():
    """Coverage, not a table lookup: 2000 normal samples of size 4 (t with 3 df), 95% nominal."""
    from prunebook.seeds import numpy_rng

    rng = numpy_rng(1)
    samples = rng.normal(3.0, 2.0, size=(4, 2000))
    _, lo, hi = mean_ci(samples, axis=0)
    covered = ((lo < 3.0) & (3.0 < hi)).mean()
    assert abs(covered - 0.95) < 4 * math.sqrt(0.95 * 0.05 / 2000), covered
    z_lo, z_hi = mean_ci(samples, axis=0, level=0.5)[1:]
    assert np.all(z_hi - z_lo < hi - lo)
    with pytest.raises(ValueError, match="^samples:"):
        mean_ci(np.array([1.0]))


def test_wilson_interval_stays_in_range_and_covers():
    from prunebook.seeds import numpy_rng

    k = np.arange(0, 11)
    lo, hi = wilson_interval(k, 10)
    assert np.all((0 <= lo) & (lo <= k / 10) & (k / 10 <= hi) & (hi <= 1))
    draws = numpy_rng(2).binomial(30, 0.2, size=4000)
    lo, hi = wilson_interval(draws, 30)
    assert 0.93 < ((lo < 0.2) & (0.2 < hi)).mean() < 0.975


def test_bootstrap_over_seeds_and_paired_tests():
    from prunebook import stats

    values = {s: float(s) for s in range(20)}
    res = stats.bootstrap_seeds(list(values), lambda chosen: np.mean([values[s] for s in chosen]), n_boot=500)
    assert res.estimate == pytest.approx(9.5) and res.lo < 9.5 < res.hi and res.degenerate == 0
    nan_half = stats.bootstrap_seeds([0, 1], lambda chosen: np.nan if len(set(chosen)) == 1 else 1.0, n_boot=400)
    assert 100 < nan_half.degenerate < 300 and nan_half.lo == nan_half.hi == 1.0
    with pytest.raises(ValueError, match="^seeds:"):
        stats.bootstrap_seeds([1, 1], np.mean)
    t = stats.mcnemar([True] * 10 + [False] * 5, [False] * 10 + [False] * 5)
    assert (t.a_better, t.b_better) == (10, 0) and t.p_value == pytest.approx(2 * 0.5**10)
    assert stats.mcnemar([True, False], [True, False]).p_value == 1.0
    s = stats.sign_test([1.0, 2.0, -0.5, 0.0, 3.0])
    assert (s.a_better, s.b_better, s.n_pairs) == (3, 1, 5) and s.p_value == pytest.approx(0.625)


def test_claims_fail_loudly_and_glue_names_are_checked(capsys):
    from prunebook.book.claims import ClaimFailed, claim, glue

    assert claim(True, "dense error above 0.2") is None  # a cell ending in a claim shows only the verdict
    assert capsys.readouterr().out == "claim holds: dense error above 0.2\n"
    with pytest.raises(ClaimFailed, match="dense error above 0.2"):
        claim(False, "dense error above 0.2")
    claim(False, "too small to tell", enforce=False)
    assert capsys.readouterr().out == "claim NOT checked at smoke sizes: too small to tell\n"
    with pytest.raises(ValueError, match="^name:"):
        glue("bad name!", 1.0)


def test_save_figure_data_writes_the_csv(tmp_path):
    import pandas as pd

    from prunebook.book.plots import save_figure_data

    out = save_figure_data(pd.DataFrame({"p": [0.0, 0.5], "test_error": [0.3, 0.01]}), "fig-1", folder=tmp_path)
    assert out == tmp_path / "fig-1.csv" and pd.read_csv(out).shape == (2, 2)
    with pytest.raises(ValueError, match="^name:"):
        save_figure_data(pd.DataFrame(), "../escape", folder=tmp_path)


def test_seed_dots_and_success_curve():
    from prunebook.book.plots import seed_dots, success_curve

    fig, ax = plt.subplots()
    pts = seed_dots(ax, [0.0, 0.5], np.array([[0.1, np.nan, 0.5], [0.0, 0.0, 0.02]]), width=0.01)
    assert pts.get_offsets().shape == (5, 2)
    line = success_curve(ax, [0.0, 0.5], [0, 3], [3, 3])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 1.0])
    poly = ax.collections[-1].get_paths()[0].vertices
    assert poly[:, 1].min() >= 0 and poly[:, 1].max() <= 1
    with pytest.raises(ValueError, match="^values:"):
        seed_dots(ax, [0.0], np.zeros((2, 3)))
    plt.close(fig)
