"""Figures of phase diagrams on a log(1 - p) axis (chapter 4): the pruning-fraction axis and success maps."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["P_TICKS", "pruning_axis", "cell_edges", "success_map", "success_line"]

#: tick labels of a pruning-fraction axis on the log(1 - p) scale
P_TICKS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)


def _forward(p):
    return -np.log10(1 - np.clip(np.asarray(p, float), None, 1 - 1e-12))


def _inverse(x):
    return 1 - 10 ** (-np.asarray(x, float))


def pruning_axis(ax, which: str = "x", ticks=P_TICKS, *, margin: float = 0.03) -> None:
    """Put the pruning fraction on ``ax``'s ``which`` axis on a log(1 - p) scale (p = 0.9, 0.99 equally
    spaced), labelled at ``ticks`` and spanning them with ``margin`` (a fraction of the span) on each side."""
    if which not in ("x", "y"):
        raise ValueError(f"which: 'x' or 'y', got {which!r}")
    ticks = sorted(float(t) for t in ticks)
    if len(ticks) < 2 or ticks[0] < 0 or ticks[-1] >= 1:
        raise ValueError(f"ticks: at least two pruning fractions in [0, 1), got {ticks!r}")
    set_scale = ax.set_xscale if which == "x" else ax.set_yscale
    set_scale("function", functions=(_forward, _inverse))
    (ax.set_xticks if which == "x" else ax.set_yticks)(ticks, [f"{t:g}" for t in ticks])
    lo, hi = _forward(ticks[0]), _forward(ticks[-1])
    pad = margin * (hi - lo)
    (ax.set_xlim if which == "x" else ax.set_ylim)(float(_inverse(lo - pad)), float(_inverse(hi + pad)))


def success_line(ax, cells: pd.DataFrame, x: str = "p", **kwargs):
    """:func:`prunebook.book.plots.success_curve` of a :func:`prunebook.book.boundary.success_cells` frame (one
    row per x), leaving out the cells where no network converged (they have no success fraction)."""
    from prunebook.book.plots import success_curve

    for col in (x, "successes", "converged"):
        if col not in cells.columns:
            raise ValueError(f"cells: missing column {col!r}")
    ok = cells[cells["converged"] > 0].sort_values(x)
    return success_curve(ax, ok[x].to_numpy(float), ok["successes"].to_numpy(), ok["converged"].to_numpy(), **kwargs)


def cell_edges(values, *, kind: str) -> np.ndarray:
    """Edges of cells centred on sorted grid ``values``, halfway in the axis's scale: ``kind`` is
    "p" (log(1 - p) scale), "log" (log scale) or "linear"."""
    v = np.asarray(sorted(values), float)
    if len(v) < 2:
        raise ValueError("values: need at least two grid values")
    fwd, inv = {"p": (_forward, _inverse), "log": (np.log, np.exp), "linear": (lambda a: a, lambda a: a)}[kind]
    t = fwd(v)
    mid = (t[1:] + t[:-1]) / 2
    return inv(np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]]))


def success_map(ax, cells: pd.DataFrame, x: str = "p", y: str = "n", *, y_kind: str = "log", cmap: str = "viridis"):
    """Draw the success fraction per cell (a :func:`prunebook.book.boundary.success_cells` frame) with p on a
    log(1 - p) x axis. Cells where some network did not converge are hatched and labelled with the
    number that did not (their fraction counts the converged networks only); cells where none
    converged are left blank. Returns the mesh (for a colour bar)."""
    for col in (x, y, "fraction", "networks", "converged"):
        if col not in cells.columns:
            raise ValueError(f"cells: missing column {col!r}")
    xs, ys = np.sort(cells[x].unique()), np.sort(cells[y].unique())
    grid = cells.pivot(index=y, columns=x, values="fraction").reindex(index=ys, columns=xs)
    left = (cells["networks"] - cells["converged"]).to_numpy()
    xe, ye = cell_edges(xs, kind="p"), cell_edges(ys, kind=y_kind)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(grid.to_numpy()), cmap=cmap, vmin=0, vmax=1, shading="flat")
    ix = {v: i for i, v in enumerate(xs)}
    iy = {v: i for i, v in enumerate(ys)}
    for row, k in zip(cells.itertuples(), left):
        if k > 0:
            i, j = ix[getattr(row, x)], iy[getattr(row, y)]
            ax.add_patch(_hatch((xe[i], ye[j]), xe[i + 1] - xe[i], ye[j + 1] - ye[j]))
            ax.text(xs[i], ys[j], f"×{k}", ha="center", va="center", fontsize=7, color="white", fontweight="bold")
    pruning_axis(ax, "x", ticks=[t for t in P_TICKS if xe[0] <= t <= xe[-1]] or xs)
    if y_kind == "log":
        ax.set_yscale("log")
        ax.set_yticks(list(ys), [f"{v:g}" for v in ys])
        ax.minorticks_off()
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.grid(False)
    return mesh


def _hatch(corner, width, height):
    from matplotlib.patches import Rectangle

    return Rectangle(corner, width, height, fill=False, hatch="///", edgecolor="white", lw=0)
