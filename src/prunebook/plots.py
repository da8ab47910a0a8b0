"""The book's figure style and the plot helpers that several chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from prunebook.stats import mean_ci

__all__ = ["use_book_style", "band"]


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
