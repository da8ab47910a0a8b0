"""The book's figure style and the plot helpers that several chapters share."""

from __future__ import annotations

import pathlib
import re

import matplotlib.pyplot as plt
import numpy as np

from prunebook.book.phase import cell_means
from prunebook.seeds import numpy_rng
from prunebook.stats import wilson_interval

__all__ = ["use_book_style", "seed_dots", "success_curve", "PhaseAxes", "plot_phase", "save_figure_data"]


def use_book_style() -> None:
    """Seaborn's paper style, a colour-blind palette, crisp inline figures."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.figsize": (6.4, 3.8),
            "axes.titlesize": "medium",
            "figure.constrained_layout.use": True,
        }
    )


class PhaseAxes:
    """Maps grid values to the uniform cell coordinates of a :func:`plot_phase` heat map."""

    def __init__(self, xs, ys, log_y: bool):
        self.xs, self.ys, self.log_y = np.asarray(xs, float), np.asarray(ys, float), log_y

    def x(self, values):
        """Cell coordinates of x values (linear interpolation between grid values)."""
        return np.interp(values, self.xs, np.arange(len(self.xs)), left=np.nan, right=np.nan)

    def y(self, values):
        """Cell coordinates of y values (interpolation in log y when the grid is logarithmic)."""
        f = np.log if self.log_y else (lambda v: np.asarray(v, float))
        return np.interp(f(values), f(self.ys), np.arange(len(self.ys)), left=np.nan, right=np.nan)


def plot_phase(ax, df, x: str, y: str, value: str = "test_error", *, log_y: bool = False,
               vmin: float = 0.0, vmax: float = 0.5, cmap: str = "magma_r", fmt: str = "{:g}"):
    """Heat map of the mean of ``value`` per (x, y) grid cell, one equal-sized cell per grid value.

    Cells with a network that did not converge are marked with × and the fraction that did not.
    Returns (mesh, PhaseAxes); use the latter to overlay curves given in data units.
    """
    xs, ys, mean, bad, _ = cell_means(df, x, y, value)
    mesh = ax.pcolormesh(np.arange(len(xs) + 1) - 0.5, np.arange(len(ys) + 1) - 0.5, mean,
                         cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if bad[i, j] > 0:
                dark = mean[i, j] > vmin + 0.6 * (vmax - vmin)
                ax.text(j, i, f"×{bad[i, j]:.0%}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black", fontweight="bold")
    ax.set_xticks(np.arange(len(xs)), [fmt.format(v) for v in xs])
    ax.set_yticks(np.arange(len(ys)), [fmt.format(v) for v in ys])
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    ax.grid(False)
    return mesh, PhaseAxes(xs, ys, log_y)


def seed_dots(ax, x, values, *, width: float = 0.0, seed: int = 0, color=None, label=None, size: float = 10, **kw):
    """Every seed as a dot: ``values`` [len(x), seeds] (NaN skipped), jittered by up to ``width`` in x.

    The book's outcomes are often bimodal (near 0 or near 1/2); showing each seed keeps that visible.
    The jitter is drawn from ``seed`` (same figure on every run).
    """
    x = np.asarray(x, dtype=float)
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[0] != len(x):
        raise ValueError(f"values: expected shape [len(x), seeds] = [{len(x)}, k], got {v.shape}")
    xs = np.repeat(x[:, None], v.shape[1], axis=1)
    if width:
        xs = xs + numpy_rng(seed).uniform(-width, width, size=xs.shape)
    ok = np.isfinite(v)
    return ax.scatter(xs[ok], v[ok], s=size, color=color, label=label, alpha=kw.pop("alpha", 0.6), lw=0, **kw)


def success_curve(ax, x, successes, trials, *, label=None, color=None, marker="o", **kw):
    """The success fraction successes/trials against x with its 95% Wilson band (always inside [0, 1])."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    lo, hi = wilson_interval(s, n)
    (line,) = ax.plot(x, s / n, marker=marker, ms=4, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    return line


#: where a chapter writes the data behind its figures (relative to the chapter's directory)
FIGURE_DATA = pathlib.Path("figure-data")


def save_figure_data(frame, name: str, *, folder: str | pathlib.Path = FIGURE_DATA) -> pathlib.Path:
    """Write the table behind a figure as ``<folder>/<name>.csv`` and return its path.

    Chapters link the file from the page with MyST's download role, e.g.
    ``{download}`data <figure-data/phase-pn.csv>```, so a reader can redo the figure.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"name: use letters, digits, '-', '_' and '.', got {name!r}")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.csv"
    frame.to_csv(out, index=False, float_format="%.6g")
    return out
