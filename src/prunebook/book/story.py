"""The introduction's two figures (``intro.md``): the three regimes, and a schematic of the model.

The introduction is not executed; ``tools/build_book.py`` draws these figures at every build from
the package's shipped tables (:func:`write_figures`), so they always show the current data.

- :func:`regimes_figure`: test error against the pruning fraction, every network of the finding-3
  table (:data:`STORY_TABLE`) as a dot, coloured by whether it has a usable neuron, the median per p
  as a line; the race side (left of the best p), the mild-pruning window and the over-pruning side
  (right of the p where a network has no usable neuron with probability 1/2, ((1+p)/2)^(2m) = 1/2)
  marked from the data and the book's law, not by hand;
- :func:`schematic_figure`: the network (two patches, m neurons per class, fixed output signs) and,
  for three neurons of class +1, what the mask keeps: a usable neuron (signal coordinate kept,
  right initial sign), a wrong-sign neuron and one whose signal coordinate was pruned.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from prunebook.conventions import SUCCESS_ERROR
from prunebook.seeds import numpy_rng

__all__ = ["STORY_TABLE", "FIGURES", "regimes", "regimes_figure", "schematic_figure", "write_figures"]

#: the table the regimes figure reads (one point per network: p, seed, test_error, usable_pos/neg)
STORY_TABLE = "finding3_flow"
#: file names the introduction refers to (under ``_static/generated/``)
FIGURES = {"regimes": "story-regimes.png", "schematic": "story-schematic.png"}
USABLE_COLOR, NONE_COLOR, LINE_COLOR = "#0072B2", "#D55E00", "black"
WIDTH = 6.6  # inches: at 100 dpi, 660 px, the width of a figure in the text column at a 1280-px window


def _u(p):
    return -np.log10(1 - np.asarray(p, dtype=float))


def regimes(table: pd.DataFrame) -> dict:
    """What the regimes figure marks, from the table: the best p (the largest fraction of networks
    that learned; the median is a poor guide where outcomes are bimodal), the
    over-pruning fraction p_half (no usable neuron with probability 1/2 at the table's m), and per
    p the median test error, the fraction of networks that learned (test error below
    :data:`SUCCESS_ERROR`) and the fraction with a usable neuron."""
    from prunebook.theory import overpruning_fraction

    for col in ("p", "seed", "test_error", "usable_pos", "usable_neg", "m"):
        if col not in table.columns:
            raise ValueError(f"table: missing column {col!r}")
    if table["m"].nunique() != 1:
        raise ValueError("table: column 'm' must be constant")
    usable = (table["usable_pos"] + table["usable_neg"]) > 0
    per_p = pd.DataFrame({
        "median": table.groupby("p")["test_error"].median(),
        "learned": (table["test_error"] < SUCCESS_ERROR).groupby(table["p"]).mean(),
        "usable": usable.groupby(table["p"]).mean(),
        "networks": table.groupby("p").size(),
    })
    best = float(per_p["learned"].idxmax())  # the first p with the largest fraction
    return {"best_p": best, "p_half": overpruning_fraction(int(table["m"].iloc[0]), 0.5),
            "per_p": per_p.reset_index(), "m": int(table["m"].iloc[0])}


def regimes_figure(table: pd.DataFrame):
    """The three regimes in one figure (see the module docstring). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    from prunebook.book.phase_figures import pruning_axis

    r = regimes(table)
    per_p = r["per_p"]
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2), dpi=100, layout="constrained")
    ps = np.sort(table["p"].unique())
    u = _u(ps)
    step = float(np.min(np.diff(u))) if len(u) > 1 else 0.1
    usable = ((table["usable_pos"] + table["usable_neg"]) > 0).to_numpy()
    jitter = numpy_rng(0).uniform(-0.3, 0.3, size=len(table)) * step
    x = 1 - 10 ** (-(_u(table["p"]) + jitter))
    ax.scatter(x[usable], table["test_error"][usable], s=9, color=USABLE_COLOR, alpha=0.45, lw=0,
               label="network with a usable neuron")
    ax.scatter(x[~usable], table["test_error"][~usable], s=9, color=NONE_COLOR, alpha=0.6, lw=0,
               label="network with none")
    ax.plot(per_p["p"], per_p["median"], color=LINE_COLOR, lw=2, marker="o", ms=4, label="median over seeds")
    lo, hi = ps[0], ps[-1]
    pruning_axis(ax, "x", ticks=[t for t in (0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.99) if lo <= t <= hi])
    ax.set_ylim(-0.02, 0.78)
    ax.set_yticks([0, 0.1, 0.2, 0.3, 0.4, 0.5])
    ax.set_xlabel("pruning fraction p (log(1 - p) scale)")
    ax.set_ylabel("test error")
    ax.axhline(0.5, color="grey", lw=1, ls=":")
    best, p_half = r["best_p"], r["p_half"]
    xmin, xmax = ax.get_xlim()
    ax.axvspan(xmin, best, color="#E69F00", alpha=0.10, lw=0)
    ax.axvspan(best, xmax, color=NONE_COLOR, alpha=0.10, lw=0)
    ax.axvline(best, color="dimgrey", lw=1.2, ls="--")
    ax.axvline(p_half, color=NONE_COLOR, lw=1.2, ls=":")
    top = 0.765
    ax.text(1 - 10 ** (-(_u(xmin) + _u(best)) / 2), top, "race side: pruning more\nlets the signal win the race",
            ha="center", va="top", fontsize=10)
    ax.text(1 - 10 ** (-(_u(best) + _u(xmax)) / 2), top, "over-pruning side:\nfewer usable neurons",
            ha="center", va="top", fontsize=10, color=NONE_COLOR)
    ax.text(best, 0.585, f" best p = {best:g}", ha="left", va="center", fontsize=10, color="dimgrey")
    ax.text(p_half, 0.62, " P(no usable\n neuron) = 1/2", ha="left", va="center", fontsize=10, color=NONE_COLOR)
    ax.text(xmin, 0.51, " chance", ha="left", va="bottom", fontsize=10, color="dimgrey")
    ax.set_xlim(xmin, xmax)
    ax.grid(False)
    fig.legend(loc="outside lower center", ncol=3, fontsize=10, frameon=False, markerscale=2)
    return fig


def schematic_figure():
    """The model and the mask, drawn: the network (left) and three neurons' masks (right)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch, Rectangle

    fig, (net, masks) = plt.subplots(1, 2, figsize=(WIDTH, 3.3), dpi=100, layout="constrained",
                                     gridspec_kw={"width_ratios": [1.0, 1.25]})
    for ax in (net, masks):
        ax.set_axis_off()
    # the network: two patches -> m neurons per class -> f = F_{+1} - F_{-1}
    net.set_xlim(-0.6, 10)
    net.set_ylim(-1.6, 11.4)
    inputs = {"signal patch\n$y\\,\\mu$": 7.0, "noise patch\n$\\xi$": 3.0}
    hidden = {"+1": [8.8, 7.4, 6.0], "-1": [4.0, 2.6, 1.2]}
    for label, yy in inputs.items():
        net.add_patch(FancyBboxPatch((-0.4, yy - 0.8), 3.2, 1.6, boxstyle="round,pad=0.1", fc="#F0F0F0", ec="grey"))
        net.text(1.2, yy, label, ha="center", va="center", fontsize=10)
    for j, ys in hidden.items():
        for k, yy in enumerate(ys):
            for src in inputs.values():
                pruned = (k + int(src)) % 3 == 0
                net.plot([2.9, 5.6], [src, yy], color="lightgrey" if pruned else "grey", lw=0.8,
                         ls=":" if pruned else "-", zorder=0)
            net.add_patch(plt.Circle((5.9, yy), 0.42, fc=USABLE_COLOR if j == "+1" else "#009E73", ec="black"))
            net.plot([6.3, 8.2], [yy, 5.0], color="grey", lw=0.8, zorder=0)
        net.text(5.9, 10.1 if j == "+1" else -0.1, f"class {j}: $m$ neurons", ha="center",
                 va="center", fontsize=10)
    net.add_patch(plt.Circle((8.7, 5.0), 0.55, fc="white", ec="black"))
    net.text(8.7, 5.0, "$f$", ha="center", va="center", fontsize=12)
    net.text(8.7, 3.9, "$F_{+1} - F_{-1}$", ha="center", va="top", fontsize=10)
    net.text(5.0, -1.5, "dotted: weights pruned before training", ha="center", va="bottom", fontsize=10,
             color="dimgrey")
    # three neurons of class +1: their weights over d coordinates, the first being mu's
    masks.set_xlim(-0.2, 12.4)
    masks.set_ylim(-0.6, 8.6)
    rows = [("usable: keeps $\\mu$'s coordinate,\nright initial sign: learns the signal", "+", True),
            ("wrong sign: keeps it, but its\ninitial overlap has the wrong sign: stalls", "\u2212", True),
            ("pruned: $\\mu$'s coordinate is masked:\nsees only noise", "", False)]
    rng = numpy_rng(3)
    for i, (text, sign, kept) in enumerate(rows):
        y0 = 6.4 - 3.0 * i
        keep = rng.random(11) > 0.5
        for c in range(12):
            if c == 0:
                fc = (USABLE_COLOR if sign == "+" else NONE_COLOR) if kept else "#BBBBBB"
            else:
                fc = "white" if keep[c - 1] else "#BBBBBB"
            masks.add_patch(Rectangle((c * 0.85, y0), 0.8, 0.8, fc=fc, ec="black", lw=0.6))
        masks.text(0.4, y0 + 0.4, sign if kept else "×", ha="center", va="center", fontsize=12,
                   color="white" if kept else "black", fontweight="bold")
        masks.text(0.0, y0 - 0.15, text, ha="left", va="top", fontsize=10)
    masks.text(0.0, 8.55, "three neurons of class +1 (grey: pruned)", ha="left", va="top", fontsize=10)
    masks.annotate("$\\mu$'s coordinate", xy=(0.4, 7.2), xytext=(2.6, 7.65), fontsize=10, va="center",
                   arrowprops={"arrowstyle": "->", "color": "dimgrey"})
    return fig


def write_figures(folder: pathlib.Path, table: pd.DataFrame | None = None) -> list[pathlib.Path]:
    """Draw both figures into ``folder`` (PNG, 100 dpi, each carrying its smallest font size and dpi
    like the chapters' figures) and return their paths. ``table`` defaults to :data:`STORY_TABLE`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from prunebook.book.plots import DPI_KEY, FONT_KEY, smallest_font

    if table is None:
        from prunebook.book.precomputed import load

        table = load(STORY_TABLE)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context({"font.size": 10, "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10,
                         "font.family": "sans-serif"}):
        for name, fig in (("regimes", regimes_figure(table)), ("schematic", schematic_figure())):
            path = folder / FIGURES[name]
            meta = {FONT_KEY: f"{smallest_font(fig):g}", DPI_KEY: f"{fig.dpi:g}"}
            fig.savefig(path, dpi=fig.dpi, metadata=meta)
            plt.close(fig)
            written.append(path)
    return written
