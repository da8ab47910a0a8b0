"""The book's figure style and the plot helpers that several chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from prunebook.phase import cell_means
from prunebook.stats import mean_ci

__all__ = ["use_book_style", "band", "PhaseAxes", "plot_phase"]


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


def band(ax, x, samples, *, label=None, color=None, axis: int = 0, marker="o", log=False, clip=None, **kw):
    """Plot the mean of ``samples`` over ``axis`` against x with a shaded 95% confidence band.

    ``log=True`` averages log10 of the samples (a geometric mean and its interval, for quantities
    plotted on a log axis); ``clip=(lo, hi)`` clips the band to a known range, e.g. (0, 1) for an
    error rate.
    """
    a = np.asarray(samples, dtype=float)
    if log:
        if np.any(a <= 0):
            raise ValueError("samples: log=True needs positive samples")
        mean, lo, hi = (10**v for v in mean_ci(np.log10(a), axis=axis))
    else:
        mean, lo, hi = mean_ci(a, axis=axis)
    if clip is not None:
        lo, hi = np.clip(lo, *clip), np.clip(hi, *clip)
    (line,) = ax.plot(x, mean, marker=marker, ms=4, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    return line


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
