"""Chapter 5's analyses (prunebook.book.criteria_study)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prunebook.book import plots  # noqa: E402
from prunebook import criteria as cr  # noqa: E402
from prunebook.book import criteria_study as cs  # noqa: E402
from prunebook.experiment import Setting, build_batch  # noqa: E402
from prunebook.network import loss  # noqa: E402
from prunebook.stats import holm, mcnemar, sign_test  # noqa: E402
from prunebook.theory import prob_no_usable_neuron  # noqa: E402

SEEDS = list(range(8))


@pytest.fixture(scope="module")
def nets():
    setting = Setting(d=200, n=20, m=6, mu_norm=5.0, sigma_0=0.02)
    W0, _, data = build_batch(setting, [0.0] * len(SEEDS), SEEDS, dtype=torch.float64)
    return W0, data


def test_grasp_raises_the_gradient_norm_as_its_definition_requires(nets):
    """GraSP removes the weights whose removal reduces the gradient norm least (Wang et al., 2020):
    its masks must start training with a larger gradient than random masks at the same p, and the
    opposite rule (keep the highest S = -(Hg) w) with a smaller one. A sign error fails this."""
    W0, data = nets
    S = cr.grasp_scores(W0, data.X, data.y, 3)
    rand = cr.criterion_scores("random", W0, seeds=SEEDS)
    grasp = cr.criterion_scores("grasp", W0, X=data.X, y=data.y, seeds=SEEDS)
    for p in (0.2, 0.5, 0.8):
        g = cs.initial_gradient(W0, cr.mask_from_scores(grasp, p), data.X, data.y)[1]
        r = cs.initial_gradient(W0, cr.mask_from_scores(rand, p), data.X, data.y)[1]
        opposite = cs.initial_gradient(W0, cr.mask_from_scores(S, p), data.X, data.y)[1]
        assert bool((g > r).all()) and bool((opposite < r).all()), p
    M = cr.mask_from_scores(grasp, 0.95)
    assert bool((cs.initial_gradient(W0, M, data.X, data.y)[1]
                 > cs.initial_gradient(W0, cr.mask_from_scores(rand, 0.95), data.X, data.y)[1]).all())


def test_initial_gradient_is_the_masked_autograd_gradient(nets):
    W0, data = nets
    M = cr.mask_from_scores(cr.criterion_scores("random", W0, seeds=SEEDS), 0.5)
    L, G2 = cs.initial_gradient(W0, M, data.X, data.y)
    W = W0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(W, M, data.X, data.y, 3).sum(), W)
    torch.testing.assert_close(G2, (g * M).pow(2).sum((-3, -2, -1)), rtol=1e-10, atol=0)
    torch.testing.assert_close(L, loss(W0, M, data.X, data.y, 3), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="^M:"):
        cs.initial_gradient(W0, M[..., :5], data.X, data.y)


def test_initial_table_rows_and_dense_reference(nets):
    W0, data = nets
    scores = {"random": cr.criterion_scores("random", W0, seeds=SEEDS), "magnitude": W0.abs()}
    tab = cs.initial_table(scores, W0, data.X, data.y, [0.3, 0.9], SEEDS)
    assert len(tab) == len(SEEDS) * (1 + 2 * 2)
    dense = tab[tab.criterion == "dense"]
    assert (dense.p == 0).all() and np.allclose(dense.loss, np.log(2), atol=1e-2)  # outputs near 0 at init
    row = tab[(tab.criterion == "magnitude") & (tab.p == 0.9)].iloc[3]
    _, g2 = cs.initial_gradient(W0[3], cr.mask_from_scores(W0.abs()[3], 0.9), data.X[3], data.y[3])
    assert row.seed == SEEDS[3] and abs(row.grad_sq - float(g2)) < 1e-12 * float(g2)


def test_signal_kept_and_summary_match_masks(nets):
    W0, data = nets
    scores = {"random": cr.criterion_scores("random", W0, seeds=SEEDS), "snip": cr.snip_scores(W0, data.X, data.y)}
    ps = [0.5, 0.9]
    kept = cs.signal_kept(scores, W0, data.mu, ps, SEEDS)
    assert len(kept) == 2 * 2 * len(SEEDS)
    for name in scores:
        for p in ps:
            M = cr.mask_from_scores(scores[name], p)
            keeps = M[..., 0] > 0
            right = (torch.tensor([1.0, -1.0], dtype=W0.dtype)[:, None] * W0[..., 0]) > 0
            got = kept[(kept.criterion == name) & (kept.p == p)].sort_values("seed")
            assert got.keep_signal.tolist() == keeps.sum((-2, -1)).tolist()
            assert got.usable.tolist() == (keeps & right).sum((-2, -1)).tolist()
    summary = cs.kept_summary(kept, m=6)
    row = summary.loc[("snip", 0.9)]
    part = kept[(kept.criterion == "snip") & (kept.p == 0.9)]
    assert row.networks == len(SEEDS) and row.no_usable == int((part.usable == 0).sum())
    assert row.keep_rate == pytest.approx(part.keep_signal.sum() / (12 * len(SEEDS)))
    assert row.heuristic == pytest.approx(prob_no_usable_neuron(0.9, 6))
    with pytest.raises(ValueError, match="^seeds:"):
        cs.signal_kept(scores, W0, data.mu, ps, SEEDS[:3])


def test_paired_comparison_counts_and_exact_p_values():
    base = np.array([[0.0, 0.5, 0.5, 0.5, 0.0], [0.1, 0.2, 0.3, 0.3, 0.5]])  # [p, seed]
    snip = np.array([[0.0, 0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.1, 0.2, 0.4]])
    table = cs.paired_comparison({"random": base, "snip": snip}, [0.9, 0.5])
    r = table.set_index("p").loc[0.9]
    assert (r.success, r.baseline_success, r.better, r.worse) == (3, 2, 2, 1)
    assert r.mcnemar_p == pytest.approx(mcnemar(snip[0] < 0.25, base[0] < 0.25).p_value)
    r = table.set_index("p").loc[0.5]
    assert (r.lower_error, r.higher_error) == (4, 0)  # one tie dropped
    assert r.sign_p == pytest.approx(sign_test(base[1] - snip[1]).p_value) and r.sign_p == pytest.approx(0.125)
    with pytest.raises(ValueError, match="^baseline:"):
        cs.paired_comparison({"snip": snip}, [0.9, 0.5])
    with pytest.raises(ValueError, match="^errors:"):
        cs.paired_comparison({"random": base, "snip": snip[:, :3]}, [0.9, 0.5])
    with pytest.raises(ValueError, match="^errors:"):
        cs.paired_comparison({"random": base, "snip": snip}, [0.9])


def test_with_holm_adjusts_one_family():
    table = pd.DataFrame({"mcnemar_p": [0.01, 0.2], "sign_p": [0.04, 0.001]})
    out, extra = cs.with_holm(table, extra=[0.03])
    family = holm([0.01, 0.2, 0.04, 0.001, 0.03])
    assert np.allclose(out.mcnemar_holm, family[:2]) and np.allclose(out.sign_holm, family[2:4])
    assert np.allclose(extra, family[4:])
    assert "mcnemar_holm" not in table  # the input is not modified
    with pytest.raises(ValueError, match="^columns:"):
        cs.with_holm(table, ["nope"])


def test_against_unpruned_pairs_converged_seeds_only():
    rows = []
    errors = {0.0: [0.4, 0.45, 0.1, 0.5], 0.5: [0.05, 0.0, 0.1, 0.48]}
    for p, errs in errors.items():
        for s, e in enumerate(errs):
            rows.append({"signal": "dense", "mu_norm": 8.0, "p": p, "seed": s, "test_error": e,
                         "converged": not (p == 0.5 and s == 3)})
    out = cs.against_unpruned(pd.DataFrame(rows)).iloc[0]
    assert (out.seeds, out.not_converged) == (3, 1)
    assert (out.success_p0, out.success_p, out.gained, out.lost) == (1, 3, 2, 0)
    assert (out.higher, out.lower) == (0, 2)  # seed 2 is a tie
    assert out.median_p0 == pytest.approx(0.4) and out.median_p == pytest.approx(0.05)
    assert out.mcnemar_p == pytest.approx(mcnemar([True] * 3, [False, False, True]).p_value)
    with pytest.raises(ValueError, match="^runs:"):
        cs.against_unpruned(pd.DataFrame(rows).drop(columns="converged"))
    with pytest.raises(ValueError, match="^runs:"):
        cs.against_unpruned(pd.DataFrame(rows).query("p > 0"))


def test_figures_fit_the_column(nets):
    W0, data = nets
    scores = {"random": cr.criterion_scores("random", W0, seeds=SEEDS), "grasp": -cr.grasp_scores(W0, data.X, data.y)}
    summary = cs.kept_summary(cs.signal_kept(scores, W0, data.mu, [0.5, 0.9], SEEDS), m=6)
    errors = {"random": np.full((2, 8), 0.1), "grasp": np.full((2, 8), 0.4)}
    runs = pd.DataFrame([{"mu_norm": mn, "signal": sig, "p": p, "seed": s, "test_error": 0.1, "converged": s != 1}
                         for mn in (8.0, 12.0) for sig in ("sparse", "dense") for p in (0.0, 0.5) for s in range(3)])
    figs = [cs.plot_kept(summary, 6), cs.plot_trained(errors, [0.5, 0.9]),
            cs.plot_initial_gradient(cs.initial_table(scores, W0, data.X, data.y, [0.5, 0.9], SEEDS)),
            cs.plot_ablation(runs, [0.0, 0.5], [8.0, 12.0], 6)]
    for fig in figs:
        assert fig.get_size_inches()[0] <= plots.TEXT_WIDTH
        plt.close(fig)


def test_errors_by_orders_rows_and_columns():
    table = pd.DataFrame([{"criterion": c, "p": p, "seed": s, "test_error": 10 * p + s + (c == "snip")}
                          for c in ("random", "snip") for p in (0.9, 0.5) for s in (7, 3)])
    got = cs.errors_by(table, ["snip"], [0.5, 0.9], [3, 7])
    assert got["snip"].tolist() == [[9.0, 13.0], [13.0, 17.0]]
    with pytest.raises(ValueError, match="^names:"):
        cs.errors_by(table, ["grasp"], [0.5], [3])


def test_dense_ablation_table_is_complete_and_recomputes():
    from prunebook.book.precomputed import TABLES, load
    from prunebook.experiment import run
    from prunebook.seeds import numpy_rng

    spec = TABLES["criteria_dense_ablation"]
    df = load("criteria_dense_ablation")
    assert len(df) == int(np.prod([len(v) for v in spec.axes.values()])) * len(spec.seeds)
    for axis, values in spec.axes.items():
        assert sorted(df[axis].unique()) == sorted(values), axis
    assert (df.dynamics == "flow").all() and (df.t_end == 1000.0).all()
    for k in numpy_rng(5).choice(len(df), size=2, replace=False).tolist():
        row = df.iloc[k]
        again = run(Setting.from_record(row), [float(row.p)], [int(row.seed)]).table()
        assert again.final_loss[0] == pytest.approx(row.final_loss, rel=1e-3, abs=1e-9), k
        assert abs(again.test_error[0] - row.test_error) <= 0.01, k
        assert bool(again.converged[0]) == bool(row.converged), k
