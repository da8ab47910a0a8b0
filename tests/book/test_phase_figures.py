"""prunebook.book.phase_figures: the log(1 - p) axis and success maps."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from prunebook.book.phase_figures import cell_edges, pruning_axis, success_line, success_map  # noqa: E402


def test_pruning_axis_spaces_decades_of_one_minus_p_equally():
    fig, ax = plt.subplots()
    pruning_axis(ax, margin=0.0)
    assert ax.get_xlim() == pytest.approx((0.0, 0.99))
    to_pixels = lambda p: ax.transData.transform((p, 0))[0]  # noqa: E731
    gaps = np.diff([to_pixels(p) for p in (0.0, 0.9, 0.99)])
    assert gaps[0] == pytest.approx(gaps[1], rel=1e-6)
    with pytest.raises(ValueError, match="which"):
        pruning_axis(ax, "z")
    with pytest.raises(ValueError, match="ticks"):
        pruning_axis(ax, ticks=[0.5, 1.0])
    plt.close(fig)


def test_cell_edges_lie_halfway_on_the_axis_scale():
    np.testing.assert_allclose(cell_edges([10, 20, 40], kind="log"), [10 / 2**0.5, 10 * 2**0.5, 20 * 2**0.5, 40 * 2**0.5])
    np.testing.assert_allclose(cell_edges([0.0, 0.9], kind="p"), [1 - 10**0.5, 1 - 10**-0.5, 1 - 10**-1.5])
    np.testing.assert_allclose(cell_edges([1, 2, 4], kind="linear"), [0.5, 1.5, 3, 5])
    with pytest.raises(ValueError, match="values"):
        cell_edges([1.0], kind="log")


def test_success_map_marks_cells_with_unconverged_networks():
    cells = pd.DataFrame({"p": [0.0, 0.0, 0.9, 0.9], "n": [10, 20, 10, 20], "fraction": [0.0, 0.5, 1.0, np.nan],
                          "networks": [4, 4, 4, 4], "converged": [4, 3, 4, 0]})
    fig, ax = plt.subplots()
    mesh = success_map(ax, cells)
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == ["×1", "×4"]
    values = mesh.get_array()
    assert np.ma.count_masked(values) == 1  # the cell where no network converged stays blank
    assert ax.get_xscale() == "function" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="cells"):
        success_map(ax, cells.drop(columns="converged"))
    plt.close(fig)


def test_success_line_leaves_out_cells_without_converged_networks():
    cells = pd.DataFrame({"p": [0.9, 0.0, 0.5], "successes": [0, 3, 2], "converged": [0, 4, 4]})
    fig, ax = plt.subplots()
    line = success_line(ax, cells)
    np.testing.assert_allclose(line.get_xdata(), [0.0, 0.5])
    np.testing.assert_allclose(line.get_ydata(), [0.75, 0.5])
    with pytest.raises(ValueError, match="cells"):
        success_line(ax, cells.drop(columns="successes"))
    plt.close(fig)


def test_chapter_4_figure_builders():
    from prunebook.book.boundary import failure_rates, success_cells
    from prunebook.book.phase_figures import COLUMN_WIDTH, curves_figure, failure_figure, phase_figure, scaling_figure

    rng = np.random.default_rng(0)
    ps, ns = [0.0, 0.5, 0.9, 0.97], [10, 20, 40]
    df = pd.DataFrame([{"p": p, "n": n, "seed": s, "test_error": float(rng.uniform(0, 0.5)),
                        "final_loss": float(rng.uniform(1e-5, 1e-1)), "converged": bool(rng.uniform() > 0.1),
                        "usable_pos": int(rng.integers(0, 3)), "usable_neg": int(rng.integers(0, 3))}
                       for p in ps for n in ns for s in range(4)])
    fig = curves_figure(df[df.n == 20], m=20, p_half=0.966, loss_target=1e-2, success_error=0.25)
    assert len(fig.axes) == 2 and fig.get_size_inches()[0] <= COLUMN_WIDTH
    assert fig.axes[1].get_yscale() == "log"
    plt.close(fig)
    cells = success_cells(df, "p", "n")
    fig = phase_figure(cells, curves=[(np.array(ps), np.array([40, 30, 20, 10]), {"color": "r"}, "a boundary")],
                       p_half=0.966)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "a boundary" in labels and any("usable" in t for t in labels)
    plt.close(fig)
    pts = pd.DataFrame({"p": [0.0, 0.5, 0.7, 0.9], "n": [100.0, 50.0, 40.0, np.nan], "lo": [80, 40, 42, np.nan],
                        "hi": [120, 60, np.nan, np.nan]})  # an interval missing the estimate, one missing an end
    fig = scaling_figure({"q = 3": (pts, pts.assign(n=pts.n * 1.1))}, q_of={"q = 3": 3.0})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis_inverted()
    plt.close(fig)
    fig = failure_figure(failure_rates(df, 20), m=20, p_half=0.966)
    assert len(fig.axes[0].get_legend().get_texts()) == 3
    plt.close(fig)


def test_dynamics_figure_draws_one_line_per_dynamics():
    from prunebook.book.phase_figures import dynamics_figure

    rng = np.random.default_rng(1)
    tables = {label: pd.DataFrame([{"p": p, "seed": s, "test_error": float(rng.uniform(0, 0.5)), "converged": True}
                                   for p in (0.0, 0.5, 0.9) for s in range(5)]) for label in ("lr = 1", "flow")}
    fig = dynamics_figure(tables)
    a1, a2 = fig.axes
    assert len(a1.lines) == 2 and len(a2.lines) == 2
    np.testing.assert_allclose(a1.lines[1].get_ydata(), tables["flow"].groupby("p").test_error.mean().to_numpy())
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lr = 1", "flow"]
    plt.close(fig)
