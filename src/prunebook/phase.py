"""Phase diagrams and curve summaries over sweep tables (chapter 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cell_means", "PhaseAxes", "plot_phase", "curve_summary"]


def cell_means(df: pd.DataFrame, x: str, y: str, value: str = "test_error"):
    """(xs, ys, mean [len(ys), len(xs)], not-converged fraction [len(ys), len(xs)], networks per cell)."""
    for col in (x, y, value, "converged"):
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")
    g = df.groupby([y, x])
    mean = g[value].mean().unstack(x)
    bad = (1 - g["converged"].mean()).unstack(x)
    count = g[value].size().unstack(x)
    return mean.columns.to_numpy(), mean.index.to_numpy(), mean.to_numpy(), bad.to_numpy(), count.to_numpy()


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


def plot_phase(ax, df: pd.DataFrame, x: str, y: str, value: str = "test_error", *, log_y: bool = False,
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


def curve_summary(df: pd.DataFrame, *, level: float = 0.25, n_boot: int = 1000, seed: int = 0) -> dict:
    """Best pruning fraction and over-pruning threshold of a test-error-against-p curve, with 95%
    bootstrap intervals over seeds.

    ``df`` holds one curve: columns p, seed, test_error. The best p minimizes the mean test error;
    the threshold is the smallest p above the best one whose mean test error exceeds ``level``
    (NaN if none does).
    """
    for col in ("p", "seed", "test_error"):
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")
    table = df.pivot_table(index="seed", columns="p", values="test_error")  # [seeds, ps]
    if table.isna().any().any():
        raise ValueError("df: every seed needs a run at every p")
    ps = table.columns.to_numpy(dtype=float)
    E = table.to_numpy()

    def stats(rows):
        m = E[rows].mean(0)
        b = int(np.argmin(m))
        above = np.nonzero((ps > ps[b]) & (m > level))[0]
        return ps[b], m[b], (ps[above[0]] if len(above) else np.nan)

    best, best_err, thr = stats(np.arange(len(E)))
    rng = np.random.default_rng(seed)
    boots = np.array([stats(rng.integers(0, len(E), len(E))) for _ in range(n_boot)])
    with np.errstate(all="ignore"):
        best_ci = tuple(np.percentile(boots[:, 0], [2.5, 97.5]))
        thr_ci = tuple(np.nanpercentile(boots[:, 2], [2.5, 97.5])) if np.isfinite(boots[:, 2]).any() else (np.nan, np.nan)
    return {
        "best_p": float(best), "best_p_ci": best_ci, "best_error": float(best_err),
        "dense_error": float(E[:, 0].mean()) if ps[0] == 0 else float("nan"),
        "threshold_p": float(thr), "threshold_ci": thr_ci, "n_seeds": len(E),
    }
