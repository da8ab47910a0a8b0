"""Chapter 3's figure builders (prunebook.book.dynamics_figures): each draws from small arrays."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prunebook.book import plots  # noqa: E402
from prunebook.book import dynamics_figures as figs  # noqa: E402
from prunebook.book.stages import race_bins  # noqa: E402
from prunebook.book.step_size import step_size_limit  # noqa: E402
from prunebook.experiment import Setting, build  # noqa: E402


def _fonts_ok(fig):
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.texts + ax.get_xticklabels() + ax.get_yticklabels()]
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg:
            sizes += [t.get_fontsize() for t in leg.get_texts()]
    for leg in fig.legends:
        sizes += [t.get_fontsize() for t in leg.get_texts()]
    return min(sizes) >= 9


def test_every_figure_draws_at_most_column_wide():
    rng = np.random.default_rng(0)
    W0, M, ds = build(Setting(d=100, n=10, m=3), 0.5, 1, dtype=torch.float64)
    out = step_size_limit(W0, M, ds.X, ds.y, lrs=(1.0, 0.1, 0.05), t_end=10.0, record_times=[1.0, 2.0],
                          record=("loss", "gamma"))
    made = [figs.step_size_figure(out, shown=(1.0, 0.1, 0.05))]
    T = 20
    times = np.linspace(0, 10, T)
    made.append(figs.two_stages_figure(times, rng.uniform(0.01, 5, (T, 3, 2)), rng.uniform(0.01, 5, (T, 3, 2)),
                                       rng.uniform(0.01, 1, (T, 3)), ["a", "b", "c"]))
    made.append(figs.closed_form_figure(times, [np.exp(times / 5)], [np.exp(times / 4)], ["class +1"]))
    made.append(figs.neurons_figure(rng.normal(size=12), rng.normal(size=12), rng.integers(0, 3, 12),
                                    rng.integers(0, 3, 12), ["p = 0", "p = 0.7", "p = 0.97"], times,
                                    rng.normal(size=(T, 2)), [("x", 0), ("y", 1)]))
    made.append(figs.overshoot_figure([("q = 3", np.array([0, 0.5, 2.0]), np.array([0.5, 0.5, 0.01]),
                                        np.array([0.5, 0.5, 0.5]))]))
    R = np.exp(rng.normal(size=40))
    bins = race_bins(R, R > 1, [0, 0.5, 1, 2, np.inf])
    made.append(figs.race_figure(R, np.where(R > 1, 0.0, 0.5), rng.uniform(0, 1, 40), bins))
    pred = np.exp(rng.normal(size=30))
    pred[:3] = np.inf
    made.append(figs.memorized_figure(pred, pred * 1.1, np.repeat([0.0, 0.4, 0.8], 10), [0.0, 0.4, 0.8]))
    p = np.repeat([0.0, 0.4, 0.8], 4)
    made.append(figs.loss_gap_figure(p, np.tile(np.arange(4), 3), 100 * (1 - p) ** 2, 1 + (1 - p),
                                     np.ones(12), p == 0.0, typical=(p, 100 * (1 - p) ** 2)))
    for fig in made:
        assert fig.get_size_inches()[0] <= plots.TEXT_WIDTH
        assert _fonts_ok(fig)
        fig.set_dpi(plots.FIGURE_DPI)  # as shown inline: the tight box must fit the column too
        shown = PIL.Image.open(io.BytesIO(plots.figure_png(fig))).width
        assert shown <= plots.COLUMN_PX, f"{fig.axes[0].get_title()!r}: {shown} px wide as displayed"
        plt.close(fig)
    with pytest.raises(ValueError, match="figsize"):
        figs.closed_form_figure(times, [times], [times], ["x"], figsize=(9, 3))
    assert isinstance(bins, pd.DataFrame)
