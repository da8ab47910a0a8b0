"""prunebook.book.finding2: finding 2 paired by seed, every network counted, and the conditional view."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from prunebook.book import finding2 as f2  # noqa: E402


def table(seeds=8, ps=(0.0, 0.3, 0.6)) -> pd.DataFrame:
    """Dense test loss 0.2 + 0.01 s; pruned (1 - p) times that, except seed 0 at p = 0.6 (higher)."""
    rows = []
    for s in range(seeds):
        for p in ps:
            loss = (0.2 + 0.01 * s) * (1 - p)
            if s == 0 and p == 0.6:
                loss = 1.0
            rows.append({"p": p, "seed": s, "m": 12, "test_loss": loss, "final_loss": 0.01, "test_error": loss / 4,
                         "rho_abs_sum": 100 * (1 - p) + s, "usable_pos": 1 if p < 0.6 or s % 2 else 0, "usable_neg": 2})
    return pd.DataFrame(rows)


def test_generalization_gap_and_usable_both():
    df = table()
    np.testing.assert_allclose(f2.generalization_gap(df), df.test_loss - 0.01)
    assert (f2.usable_both(df) == ((df.usable_pos > 0) & (df.usable_neg > 0))).all()
    with pytest.raises(ValueError, match="final_loss"):
        f2.generalization_gap(df.drop(columns="final_loss"))


def test_paired_table_puts_dense_first_and_refuses_duplicates():
    df = table()
    t = f2.paired_table(df.sample(frac=1, random_state=1), "test_loss")
    assert list(t.index) == [0.0, 0.3, 0.6] and list(t.columns) == list(range(8))
    assert t.loc[0.3, 2] == pytest.approx(0.22 * 0.7)
    with pytest.raises(ValueError, match="more than once"):
        f2.paired_table(pd.concat([df, df.iloc[:1]]), "test_loss")
    with pytest.raises(ValueError, match="value"):
        f2.paired_table(df, [1.0, 2.0])


def test_against_dense_pairs_by_seed():
    df = table()
    out = f2.against_dense(df, "test_loss", n_boot=300).set_index("p")
    assert out.loc[0.0, "ratio"] == 1.0 and out.loc[0.0, "lower"] == 0
    r = out.loc[0.3]
    assert r.ratio == pytest.approx(0.7) and r.lower == 8 and r.higher == 0
    assert r.sign_p == pytest.approx(2 / 2**8)
    assert r.lo <= r["mean"] <= r.hi and r.ratio_lo == pytest.approx(0.7) and r.ratio_hi == pytest.approx(0.7)
    r = out.loc[0.6]  # seed 0 went up: 7 lower, 1 higher
    assert (r.lower, r.higher) == (7, 1) and r.ratio > 0.4
    with pytest.raises(ValueError, match="dense"):
        f2.against_dense(df[df.p > 0], "test_loss")


def test_conditional_view_splits_by_usable_neurons_in_both_classes():
    df = table()
    view = f2.conditional_view(df, "test_loss").set_index("p")
    assert view.loc[0.3, "both_classes"] == 8 and np.isnan(view.loc[0.3, "without"])
    at = df[df.p == 0.6]
    both = at[(at.usable_pos > 0) & (at.usable_neg > 0)]
    assert view.loc[0.6, "both_classes"] == len(both) == 4
    assert view.loc[0.6, "with_both"] == pytest.approx(both.test_loss.mean())
    assert view.loc[0.6, "all"] == pytest.approx(at.test_loss.mean())
    assert view.loc[0.6, "without"] == pytest.approx(at[~at.index.isin(both.index)].test_loss.mean())


def test_finding2_figure_draws_every_seed_and_the_contrast():
    df = table()
    fig = f2.finding2_figure(df.assign(m=100), df)
    axes = fig.axes
    assert len(axes) == 4 and all(ax.get_visible() for ax in axes)
    assert len(axes[0].lines) >= 8 + 1  # one line per seed and the mean
    assert axes[1].get_yscale() == "symlog" and axes[2].get_yscale() == "log"
    labels = [t.get_text() for t in axes[3].get_legend().get_texts()]
    assert any("m = 12" in t for t in labels) and any("m = 100" in t for t in labels)
    plt.close(fig)
    fig = f2.finding2_figure(df)
    assert not fig.axes[3].get_visible()
    plt.close(fig)
