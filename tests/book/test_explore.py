"""book.explore: the interactive phase diagram's data, heuristics and Vega-Lite specification."""

import json

import numpy as np
import pandas as pd
import pytest

from prunebook import theory
from prunebook.book import explore


def table(mus=(8.0,), seeds=(7, 3, 5), ps=(0.0, 0.5, 0.9), ns=(10, 20, 40)):
    """A synthetic phase table: success when n SNR_p^3 exceeds 2 and the network has a usable neuron."""
    rows = []
    for mu in mus:
        for p in ps:
            for n in ns:
                for k, s in enumerate(seeds):
                    stat = theory.n_snr_q(n, mu, 1.0, 1000, p, 3.0)
                    usable = int(p < 0.9 or k == 0)
                    rows.append({"p": p, "n": n, "seed": s, "mu_norm": mu, "d": 1000, "m": 20, "q": 3.0,
                                 "sigma_p": 1.0, "converged": not (p == 0.5 and n == 10 and k == 1),
                                 "usable_pos": usable, "usable_neg": 0,
                                 "test_error": 0.02 if (stat * (1 + 0.3 * (k - 1)) > 2 and usable) else 0.48})
    return pd.DataFrame(rows)


def test_explorer_data_one_row_per_network_with_cell_edges_and_seed_ranks():
    t = table()
    d = explorer_data = explore.explorer_data(t)
    assert len(d) == len(t)
    assert sorted(d.k.unique()) == [1, 2, 3]
    assert (d.k[t.seed == 3] == 1).all() and (d.k[t.seed == 7] == 3).all(), "ranked by seed value"
    # cells tile the axes: edges halfway in -log10(1 - p) and in log n
    u = -np.log10(1 - np.array([0.0, 0.5, 0.9]))
    row = d[(d.p == 0.5) & (d.n == 20)].iloc[0]
    assert row.u_lo == pytest.approx((u[0] + u[1]) / 2) and row.u_hi == pytest.approx((u[1] + u[2]) / 2)
    assert row.n_lo == pytest.approx(np.sqrt(10 * 20)) and row.n_hi == pytest.approx(np.sqrt(20 * 40))
    assert explorer_data.success.sum() == ((t.test_error < 0.25) & t.converged).sum()
    assert d.success[~t.converged.to_numpy()].sum() == 0, "a network that did not converge is no success"
    assert d.converged.sum() == len(t) - 1


def test_race_constant_recovers_the_threshold_of_the_statistic():
    t = table(ps=(0.0, 0.2, 0.4, 0.6, 0.8), ns=(5, 10, 20, 40, 80, 160), seeds=tuple(range(12)))
    t["test_error"] = np.where(theory.n_snr_q(t.n, t.mu_norm, 1.0, 1000, t.p, 3.0) > 2.0, 0.01, 0.49)
    stat = np.unique(theory.n_snr_q(t.n, t.mu_norm, 1.0, 1000, t.p, 3.0))
    C = explore.race_constant(t)
    below, above = stat[stat < 2.0].max(), stat[stat > 2.0].min()
    assert below <= C <= above, "the fitted C separates the failures from the successes"
    t["test_error"] = 0.01
    assert explore.race_constant(t) == pytest.approx(np.median(theory.n_snr_q(t.n, t.mu_norm, 1.0, 1000, t.p, 3.0)))


def test_boundary_curve_is_the_books_race_boundary_at_C_1():
    t = table(mus=(8.0, 12.0))
    c = explore.boundary_curve(t, points=50)
    assert sorted(c.mu_norm.unique()) == [8.0, 12.0] and len(c) == 100
    for mu, part in c.groupby("mu_norm"):
        p = 1 - 10 ** (-part.u.to_numpy())
        np.testing.assert_allclose(part.base, theory.race_boundary_n(p, 1.0, mu, 1.0, 1000, 3.0), rtol=1e-12)


def test_spec_sliders_cover_what_the_table_covers():
    t = table()
    spec = explore.phase_explorer_spec(t)
    params = {p["name"]: p for p in spec["params"]}
    assert set(params) == {"seeds", "logC", "level"}, "no signal-norm slider for a single-norm table"
    assert params["seeds"]["bind"]["max"] == 3 and params["seeds"]["value"] == 3
    assert params["logC"]["value"] == pytest.approx(np.log10(explore.race_constant(t)), abs=0.01)
    assert params["logC"]["bind"]["min"] < params["logC"]["value"] < params["logC"]["bind"]["max"]
    heat, race, usable = spec["layer"]
    assert heat["transform"][0] == {"filter": "datum.k <= seeds"}
    assert "pow(10, logC)" in json.dumps(race["transform"]) and "pow(level, 1 / 40)" in json.dumps(usable)
    assert spec["$schema"].endswith("/v6.json") and explore.VEGA_LITE_MIME.endswith("v6+json")
    rows = heat["data"]["values"].strip().split("\n")
    assert len(rows) == len(t) + 1, "every network inlined (header + rows)"
    two = explore.phase_explorer_spec(table(mus=(8.0, 12.0)))
    mu = next(p for p in two["params"] if p["name"] == "mu")
    assert mu["bind"]["options"] == [8.0, 12.0] and {"filter": "datum.mu_norm == mu"} in two["layer"][0]["transform"]


def test_output_is_vega_lite_with_an_html_that_prefers_the_books_copies():
    bundle = explore.phase_explorer(table())._repr_mimebundle_()
    assert bundle[explore.VEGA_LITE_MIME]["layer"]
    html = bundle["text/html"]
    assert html.index("../vega/vega.min.js") < html.index("cdn.jsdelivr.net"), "local copies first"
    assert "if (window.vegaEmbed) { show(); return; }" in html
    for script in explore.LOCAL_SCRIPTS:  # _vendor/ is copied to the site's root (html_extra_path)
        site_path = script.removeprefix("../")
        assert (explore_root() / "_vendor" / site_path).is_file(), f"{script} is served with the book"


def explore_root():
    import pathlib

    return pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns="converged"), "missing columns ['converged']"),
    (lambda t: t.assign(m=np.arange(len(t))), "column 'm' must be constant"),
    (lambda t: t[t.p == 0.0], "at least two grid values"),
    (lambda t: t.iloc[:0], "no rows"),
    (lambda t: [1, 2], "expected a pandas DataFrame"),
])
def test_bad_tables_are_rejected_naming_the_problem(change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        explore.phase_explorer_spec(change(table()))


def test_the_shipped_table_makes_a_figure():
    from prunebook.book.precomputed import load

    t = load(explore.PHASE_TABLE)
    spec = explore.phase_explorer_spec(t)
    assert next(p for p in spec["params"] if p["name"] == "seeds")["value"] == t.seed.nunique()
