"""Figures of phase diagrams on a log(1 - p) axis (chapter 4): the pruning-fraction axis, success maps, and
the chapter's figure builders (test error against p, phase diagrams with boundaries overlaid, the
boundary's scaling, failure rates against the usable-neuron law)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prunebook.book.plots import TEXT_WIDTH

__all__ = ["P_TICKS", "pruning_axis", "cell_edges", "success_map", "success_line", "COLUMN_WIDTH", "curves_figure",
           "phase_figure", "scaling_figure", "failure_figure", "dynamics_figure"]

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
            ax.text(xs[i], ys[j], f"×{k}", ha="center", va="center", fontsize=9, color="white", fontweight="bold")
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


# ---- chapter 4's figures (each returns its matplotlib Figure; sized for the book's text column) ----

#: width of a full-column figure in inches: at the book style's 110 dpi it is displayed at its own size
COLUMN_WIDTH = TEXT_WIDTH


def _legend_below(ax, ncol: int = 2, **kw):
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, frameon=False, **kw)


def curves_figure(df: pd.DataFrame, *, m: int, p_half: float, loss_target: float, success_error: float):
    """Test error and final training loss of every network against p (log(1 - p) axis), one dot per
    network; networks that did not converge are crosses; the line is the mean over seeds. Dashed in
    (a): the mean test error if only over-pruning failed, half the law ((1 + p)/2)^(2m) (a network
    without a usable neuron errs on about half the test samples). ``df``: one row per network
    (p, seed, test_error, final_loss, converged)."""
    import matplotlib.pyplot as plt

    from prunebook.theory import prob_no_usable_neuron

    for col in ("p", "seed", "test_error", "final_loss", "converged"):
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.4), layout="constrained")
    ok, bad = df[df.converged], df[~df.converged]
    for ax, col in ((a1, "test_error"), (a2, "final_loss")):
        ax.scatter(ok.p, ok[col], s=12, alpha=0.5, color="C0", lw=0, label="one network (seed)")
        if len(bad):
            ax.scatter(bad.p, bad[col], s=30, marker="x", color="C3", label="did not converge")
        mean = df.groupby("p")[col].mean()
        ax.plot(mean.index, mean.to_numpy(), color="C0", lw=1.8, label="mean over seeds")
        pruning_axis(ax, ticks=(0, 0.5, 0.8, 0.9, 0.95, 0.98))
        ax.axvline(p_half, color="k", ls=":", lw=1)
        ax.set_xlabel("pruning fraction $p$")
    pg = np.linspace(0, float(df["p"].max()), 300)
    a1.plot(pg, prob_no_usable_neuron(pg, m) / 2, "k--", lw=1, label=r"$\frac{1}{2}((1+p)/2)^{2m}$")
    a1.set(ylabel="test error", ylim=(-0.02, 0.58), title="(a) test error")
    a2.axhline(loss_target, color="0.5", lw=0.8, ls="--")
    a2.set(yscale="log", ylabel="training loss at the end", title="(b) training loss")
    handles, labels = a1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
    return fig


def phase_figure(cells: pd.DataFrame, *, y: str = "n", ylabel: str = "training samples $n$",
                 curves: Sequence[tuple] = (), p_half: float | None = None, title: str | None = None):
    """A success map (:func:`success_map`, cells of :func:`prunebook.book.boundary.success_cells`) with
    boundaries overlaid: ``curves`` are (x, y, style dict, label) in data units (e.g. a heuristic
    boundary or the points where a rule's predicted success crosses 1/2), and ``p_half`` a vertical
    line (the usable-neuron law's p where half the networks have no usable neuron)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 4.4), layout="constrained")
    mesh = success_map(ax, cells, y=y, y_kind="log" if y == "n" else "linear")
    for xs, ys, style, label in curves:
        ax.plot(xs, ys, label=label, **style)
    if p_half is not None:
        ax.axvline(p_half, color="white", lw=2, ls="-", label="half the networks have no usable neuron")
    ax.set(xlabel="pruning fraction $p$ (log(1 - p) scale)", ylabel=ylabel)
    if title:
        ax.set_title(title)
    fig.colorbar(mesh, ax=ax, label="success fraction", shrink=0.85, pad=0.02)
    leg = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=True)
    leg.get_frame().set_facecolor("0.7")  # the white line shows on grey
    return fig


def scaling_figure(points: dict, *, q_of: dict):
    """Boundary points n*(p) against 1 - p on log-log axes: per configuration ``label``,
    ``points[label] = (measured, predicted)``, frames of :func:`prunebook.book.boundary.boundary_per_row`
    (columns p, n, lo, hi) from the runs and from a rule's prediction; ``q_of[label]`` gives the
    heuristic slope q/2 drawn dashed through the first measured point."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 4.2), layout="constrained")
    handles = []
    for k, (label, (measured, predicted)) in enumerate(points.items()):
        color = f"C{k}"
        ok = measured.dropna(subset=["n"])
        # a percentile interval need not contain the full-data estimate; a missing end draws no bar
        yerr = [np.nan_to_num((ok.n - ok.lo).clip(lower=0)), np.nan_to_num((ok.hi - ok.n).clip(lower=0))]
        handles.append(ax.errorbar(1 - ok.p, ok.n, yerr=yerr, fmt="o", color=color, capsize=2, ms=5,
                                   label=f"{label}: trained (flow)"))
        pr = predicted.dropna(subset=["n"])
        handles += ax.plot(1 - pr.p, pr.n, "s", mfc="none", color=color, ms=8, mew=1.4,
                           label=f"{label}: where half have R > 1")
        if len(ok):
            x_ref = np.array([1.0, 0.1])
            handles += ax.plot(x_ref, ok.n.iloc[0] * (x_ref / (1 - ok.p.iloc[0])) ** (q_of[label] / 2), color=color,
                               lw=0.9, ls="--", label=f"{label}: slope q/2 = {q_of[label] / 2:g}")
    ax.set(xscale="log", yscale="log", xlabel="$1 - p$ (fraction of weights kept)",
           ylabel="$n^\\star$, samples on the boundary")
    ticks = [1.0, 0.5, 0.3, 0.2, 0.1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlim(1.15, 0.09)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    return fig


def failure_figure(rates: pd.DataFrame, *, m: int, p_half: float):
    """Observed failure rates per p with 95% Wilson intervals (:func:`prunebook.book.boundary.failure_rates`),
    the fraction of networks without a usable neuron, and the law ((1 + p)/2)^(2m)."""
    import matplotlib.pyplot as plt

    from prunebook.theory import prob_no_usable_neuron

    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 3.6), layout="constrained")
    ax.errorbar(rates.p, rates.observed, yerr=[rates.observed - rates.lo, rates.hi - rates.observed], fmt="o",
                capsize=3, color="C0", label="failure rate, all networks (95% Wilson)")
    ax.plot(rates.p, rates.no_usable_fraction, "s", mfc="none", ms=8, color="C3",
            label="no usable neuron at initialization")
    pf = np.linspace(0, float(rates.p.max()) + 0.005, 300)
    ax.plot(pf, prob_no_usable_neuron(pf, m), "k-", lw=1.2, label=r"$((1+p)/2)^{2m}$")
    ax.axvline(p_half, color="k", ls=":", lw=1)
    pruning_axis(ax, ticks=(0, 0.5, 0.8, 0.9, 0.95, 0.97))
    ax.set(xlabel="pruning fraction $p$ (log(1 - p) scale)", ylabel="fraction of networks", ylim=(-0.02, 1.02))
    ax.legend(loc="upper center", frameon=True, fontsize=10)
    return fig


def dynamics_figure(tables: dict):
    """The same networks trained with several dynamics (``tables``: label -> sweep table, e.g. GD at
    learning rates 1, 0.1, 0.01 and the flow): (a) the mean test error against p, (b) the success
    fraction with 95% Wilson bands."""
    import matplotlib.pyplot as plt

    from prunebook.book.boundary import success_cells

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.4), layout="constrained")
    markers = "osD^v<>"
    for k, (label, df) in enumerate(tables.items()):
        style = {"color": f"C{k}", "marker": markers[k % len(markers)], "ms": 5, "mfc": "none", "label": label}
        mean = df.groupby("p").test_error.mean()
        a1.plot(mean.index, mean.to_numpy(), lw=1.4, **style)
        cells = success_cells(df.assign(_one=0), "p", "_one")
        success_line(a2, cells, color=style["color"], marker=style["marker"], mfc="none", lw=1.4)
    for ax in (a1, a2):
        pruning_axis(ax, ticks=(0, 0.5, 0.8, 0.9, 0.97))
        ax.set_xlabel("pruning fraction $p$")
    a1.set(ylabel="mean test error", title="(a) test error")
    a2.set(ylabel="success fraction", ylim=(-0.02, 1.02), title="(b) success, 95% Wilson")
    handles, labels = a1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(tables), frameon=False)
    return fig
