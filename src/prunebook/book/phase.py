"""Phase diagrams and curve summaries over sweep tables: the analysis (figures are in :mod:`prunebook.book.plots`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebook.conventions import SUCCESS_ERROR
from prunebook.stats import bootstrap_seeds

__all__ = ["cell_means", "curve_summary"]


def _require(df: pd.DataFrame, *columns: str) -> None:
    for col in columns:
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")


def cell_means(df: pd.DataFrame, x: str, y: str, value: str = "test_error"):
    """(xs, ys, mean [len(ys), len(xs)], not-converged fraction [len(ys), len(xs)], networks per cell)."""
    _require(df, x, y, value, "converged")
    g = df.groupby([y, x])
    mean = g[value].mean().unstack(x)
    bad = (1 - g["converged"].mean()).unstack(x)
    count = g[value].size().unstack(x)
    return mean.columns.to_numpy(), mean.index.to_numpy(), mean.to_numpy(), bad.to_numpy(), count.to_numpy()


def curve_summary(df: pd.DataFrame, *, level: float = SUCCESS_ERROR, n_boot: int = 1000, seed: int = 0) -> dict:
    """Best pruning fraction and over-pruning threshold of a test-error-against-p curve, with 95%
    bootstrap intervals over seeds.

    ``df`` holds one curve: columns p, seed, test_error. The best p minimizes the mean test error;
    the threshold is the smallest p above the best one whose mean test error exceeds ``level``
    (NaN if none does).
    """
    _require(df, "p", "seed", "test_error")
    table = df.pivot_table(index="seed", columns="p", values="test_error")  # [seeds, ps]
    if table.isna().any().any():
        raise ValueError("df: every seed needs a run at every p")
    ps = table.columns.to_numpy(dtype=float)
    E = table.to_numpy()
    row_of = {s: i for i, s in enumerate(table.index)}

    def stats(seeds):
        m = E[[row_of[s] for s in seeds]].mean(0)
        b = int(np.argmin(m))
        above = np.nonzero((ps > ps[b]) & (m > level))[0]
        return ps[b], m[b], (ps[above[0]] if len(above) else np.nan)

    best, best_err, thr = stats(list(table.index))
    best_boot = bootstrap_seeds(table.index, lambda s: stats(s)[0], n_boot=n_boot, seed=seed)
    thr_boot = bootstrap_seeds(table.index, lambda s: stats(s)[2], n_boot=n_boot, seed=seed)
    return {
        "best_p": float(best), "best_p_ci": (best_boot.lo, best_boot.hi), "best_error": float(best_err),
        "dense_error": float(E[:, 0].mean()) if ps[0] == 0 else float("nan"),
        "threshold_p": float(thr), "threshold_ci": (thr_boot.lo, thr_boot.hi), "n_seeds": len(E),
    }
