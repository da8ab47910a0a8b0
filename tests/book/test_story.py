"""book.story: the introduction's figures, drawn by the build from the shipped finding-3 table."""

import numpy as np
import pandas as pd
import pytest

from prunebook import theory
from prunebook.book import plots, story


def table():
    rows = []
    for p, errors in {0.0: [0.3, 0.4, 0.01], 0.5: [0.01, 0.02, 0.3], 0.9: [0.5, 0.49, 0.01]}.items():
        for seed, e in enumerate(errors):
            rows.append({"p": p, "seed": seed, "test_error": e, "usable_pos": int(e < 0.45), "usable_neg": 0, "m": 10})
    return pd.DataFrame(rows)


def test_regimes_are_read_from_the_table_and_the_usable_neuron_law():
    r = story.regimes(table())
    assert r["best_p"] == 0.5, "the largest fraction that learned"
    assert r["p_half"] == pytest.approx(theory.overpruning_fraction(10, 0.5))
    per = r["per_p"].set_index("p")
    assert per.loc[0.9, "usable"] == pytest.approx(1 / 3) and per.loc[0.5, "learned"] == pytest.approx(2 / 3)
    assert per["networks"].tolist() == [3, 3, 3]


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns="usable_neg"), "missing column 'usable_neg'"),
    (lambda t: t.assign(m=np.arange(len(t))), "'m' must be constant"),
])
def test_bad_tables_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        story.regimes(change(table()))


def test_write_figures_draws_both_legibly_at_the_columns_width(tmp_path):
    from PIL import Image

    paths = story.write_figures(tmp_path, table())
    assert [p.name for p in paths] == [story.FIGURES["regimes"], story.FIGURES["schematic"]]
    for path in paths:
        data = path.read_bytes()
        meta = plots.png_font_metadata(data)
        assert meta["dpi"] == 100 and meta["min_font_pt"] >= 10, path.name
        width = Image.open(path).size[0]
        assert width <= 660, f"{path.name}: {width} px, shown unshrunk in the 660-px figure column"


def test_the_shipped_table_has_all_three_regimes():
    """The story the introduction tells is the shipped table's: error falls with mild pruning, and
    past the over-pruning fraction most networks have no usable neuron and fail."""
    from prunebook.book.precomputed import load

    r = story.regimes(load(story.STORY_TABLE))
    per = r["per_p"].set_index("p")
    dense, best = per.loc[0.0], per.loc[r["best_p"]]
    assert 0 < r["best_p"] < r["p_half"]
    assert best["median"] < dense["median"], "mild pruning lowers the test error"
    assert best["learned"] > dense["learned"], "and more networks learn"
    heavy = per[per.index > r["p_half"]]
    assert len(heavy) and (heavy["usable"] < 0.5).all() and (heavy["median"] > 0.4).all()
