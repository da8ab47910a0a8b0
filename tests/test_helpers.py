"""Small helpers the chapters share: statistics, parameter checks, plots, the digits loader, masks in runs."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prunebook import criteria as cr  # noqa: E402
from prunebook.experiment import Setting, build_batch, run, stream_seed  # noqa: E402
from prunebook.params import check_parameters  # noqa: E402
from prunebook.plots import band  # noqa: E402
from prunebook.realdata import digits_binary  # noqa: E402
from prunebook.stats import binomial_ci, mean_ci  # noqa: E402


def test_mean_ci_uses_student_t():
    mean, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0
    assert hi - mean == pytest.approx(4.303 / math.sqrt(3), rel=1e-4)  # t_{0.975, 2} = 4.303
    m2, lo2, hi2 = mean_ci(np.array([[1.0, 5.0], [3.0, 5.0]]), axis=0)
    np.testing.assert_allclose(m2, [2.0, 5.0])
    assert lo2[1] == hi2[1] == 5.0  # no spread, no width


def test_binomial_ci_is_wilson():
    lo, hi = binomial_ci(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = binomial_ci(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    with pytest.raises(ValueError, match="trials"):
        binomial_ci(11, 10)


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


def test_band_clips_and_logs():
    fig, ax = plt.subplots()
    line = band(ax, [0, 1], np.array([[0.0, 0.5], [0.2, 0.5]]), clip=(0, 1))
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.5])
    poly = ax.collections[0].get_paths()[0].vertices
    assert poly[:, 1].min() >= 0
    with pytest.raises(ValueError, match="samples"):
        band(ax, [0, 1], np.array([[0.0, 1.0], [1.0, 1.0]]), log=True)
    plt.close(fig)


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
