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
