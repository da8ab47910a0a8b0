"""Chapter 6's analyses (prunebook.book.digits_study)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import prunebook as pb  # noqa: E402
from prunebook.book import plots  # noqa: E402
from prunebook.book import digits_study as ds  # noqa: E402
from prunebook.data import Dataset  # noqa: E402
from prunebook.realdata import digits_networks  # noqa: E402


@pytest.fixture(scope="module")
def bridge():
    nets = digits_networks(30, 20, [0.0, 0.8, 0.0, 0.8], [1, 1, 2, 2], m=3, sigma_0=0.2, extra_dims=100,
                           noise_sigma=0.1, n_test=40, n_rotation=100, concentrate=True, dtype=torch.float64)
    res = pb.flow(nets.W0, nets.M, nets.train.X, nets.train.y, t_end=50.0, record=("loss", "train_error"),
                  stop_loss=None)
    return nets, res


def test_run_table_matches_the_network(bridge):
    nets, res = bridge
    table = ds.run_table(res, nets, [0.0, 0.8, 0.0, 0.8], [1, 1, 2, 2])
    assert list(table.columns) == ["p", "seed", "train_error", "final_loss", "val_error", "test_error", "converged"]
    k = 3
    err = pb.classification_error(res.W[k], nets.M[k], nets.test.X[k], nets.test.y[k])
    assert table.test_error[k] == pytest.approx(float(err))
    assert table.final_loss[k] == pytest.approx(float(res.loss[-1, k]))
    expect = (table.train_error == 0) & (table.final_loss < 1e-2)
    assert table.converged.tolist() == expect.tolist()
    with pytest.raises(ValueError, match="^seeds:"):
        ds.run_table(res, nets, [0.0], [1])


def test_choose_p_uses_converged_fractions_and_breaks_ties_low():
    rows = []
    for p, errs, conv in ((0.0, [0.3, 0.3, 0.3], True), (0.5, [0.2, 0.2, 0.3], True),
                          (0.8, [0.2, 0.2, 0.1], True), (0.9, [0.0, 0.0, 0.0], False)):
        rows += [{"p": p, "seed": s, "val_error": e, "converged": conv or s == 0} for s, e in enumerate(errs)]
    table = pd.DataFrame(rows)
    chosen, ties = ds.choose_p(table)
    assert (chosen, ties) == (0.5, [0.5, 0.8])  # 0.9 did not fit on every seed: excluded
    table.loc[table.p == 0.9, "converged"] = True
    assert ds.choose_p(table)[0] == 0.9
    med = ds.validation_medians(table)
    assert med[0.5] == pytest.approx(0.2) and list(med.index) == [0.0, 0.5, 0.8, 0.9]


def test_nearest_class_mean_error_by_hand():
    X = torch.zeros(1, 4, 2, 70, dtype=torch.float64)
    X[0, :2, 0, 0], X[0, 2:, 0, 0] = 1.0, -1.0  # class +1 at x_0 = 1, class -1 at x_0 = -1
    X[0, :, 0, 65] = 100.0  # beyond the 64 pixels: ignored
    y = torch.tensor([[1.0, 1.0, -1.0, -1.0]], dtype=torch.float64)
    Xt = torch.zeros(1, 3, 2, 70, dtype=torch.float64)
    Xt[0, :, 0, 0] = torch.tensor([0.5, -0.2, 2.0])
    yt = torch.tensor([[1.0, 1.0, -1.0]], dtype=torch.float64)  # one error: -0.2, one: 2.0
    empty = torch.zeros(0)
    err = ds.nearest_class_mean_error(Dataset(X, y, empty, empty), Dataset(Xt, yt, empty, empty))
    assert err.shape == (1,) and float(err) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="^train:"):
        ds.nearest_class_mean_error(Dataset(X, torch.ones_like(y), empty, empty), Dataset(Xt, yt, empty, empty))


def test_nearest_class_mean_is_rotation_invariant():
    kw = dict(m=2, sigma_0=0.1, extra_dims=20, noise_sigma=0.1, n_test=200, n_rotation=300, dtype=torch.float64)
    pix = digits_networks(60, 30, [0.0], [4], **kw)
    rot = digits_networks(60, 30, [0.0], [4], concentrate=True, **kw)
    a, b = (ds.nearest_class_mean_error(n.train, n.test) for n in (pix, rot))
    torch.testing.assert_close(a, b)
    assert 0.0 < float(a) < 0.4


def test_neuron_snr_dense_is_one_and_rotation_concentrates(bridge):
    nets, _ = bridge
    snr = ds.neuron_snr(nets, 0.1)
    dense = snr.iloc[[0, 2]]
    assert np.allclose(dense.best_snr, 1.0) and np.allclose(dense.rms_snr, 1.0)  # every neuron keeps all
    # a neuron keeping pixel 0 only (of the rotated images' pixels) and all the noise
    M = torch.zeros_like(nets.M[:1])
    M[..., 0] = 1.0
    M[..., 64:] = 1.0
    one = ds.neuron_snr(nets._replace(M=M, train=Dataset(*(t[:1] for t in nets.train))), 0.1)
    u = (nets.train.X[0, :, 0, :64] * nets.train.y[0, :, None]).mean(0)
    assert one.best_snr[0] == pytest.approx(float(u[0].abs() / u.norm()))


def test_paired_sign_uses_common_seeds():
    a = pd.Series([0.1, 0.3, 0.2, 0.5], index=[1, 2, 3, 4])
    b = pd.Series([0.2, 0.1, 0.2, 0.0], index=[4, 2, 3, 9])
    t = ds.paired_sign(a, b)
    assert (t.n_pairs, t.a_better, t.b_better) == (3, 2, 0)
    with pytest.raises(ValueError, match="^b:"):
        ds.paired_sign(a, pd.Series([1.0], index=[7]))


def test_figures_fit_the_column(bridge):
    nets, res = bridge
    table = ds.run_table(res, nets, [0.0, 0.8, 0.0, 0.8], [1, 1, 2, 2])
    both = pd.concat([table.assign(view="pixels"), table.assign(view="rotated")])
    both = pd.concat([both.reset_index(drop=True), pd.concat([ds.neuron_snr(nets, 0.1)] * 2, ignore_index=True)],
                     axis=1)
    figs = [ds.plot_samples(Dataset(nets.train.X[0], nets.train.y[0], None, None)),
            ds.plot_sweep(table, [0.0, 0.8]), ds.plot_bridge(both, [0.0, 0.8], 0.2), ds.plot_snr(both, [0.0, 0.8])]
    for fig in figs:
        assert fig.get_size_inches()[0] <= plots.TEXT_WIDTH
        plt.close(fig)


def test_held_out_ncm_uses_the_rotation_split():
    from prunebook.realdata import digits_parts

    got = ds.held_out_ncm_error([5, 6, 5], 40, 30, 200, n_test=100)
    assert list(got.index) == [5, 6]
    parts = digits_parts(40, 30, seed=6, n_rotation=200, dtype=torch.float64)
    X, y = parts.rotation.X[None], parts.rotation.y[None]  # a batch of one: [1, n, 1, 64]
    empty = torch.zeros(0)
    want = ds.nearest_class_mean_error(Dataset(X, y, empty, empty),
                                       Dataset(parts.test.X[None, :100], parts.test.y[None, :100], empty, empty))
    assert got[6] == pytest.approx(float(want))
    with pytest.raises(ValueError, match="^n_rotation:"):
        ds.held_out_ncm_error([5], 40, 30, 0)


def test_usable_first_pixel_counts_kept_right_sign_neurons(bridge):
    nets, _ = bridge
    got = ds.usable_first_pixel(nets)
    signs = torch.tensor([1.0, -1.0], dtype=nets.W0.dtype)[:, None]
    want = ((nets.M[..., 0] > 0) & (signs * nets.W0[..., 0] > 0)).sum((-2, -1)).numpy()
    assert got.tolist() == want.tolist()
    assert got[0] > 0 and got[1] <= got[0]  # masks nested across p (seed 1: p = 0, then 0.8)
