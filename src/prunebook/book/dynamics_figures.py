"""Chapter 3's figures: each function draws one figure from arrays the chapter computed and returns it.

Every figure is at most :data:`prunebook.book.plots.TEXT_WIDTH` inches wide (the text column at a
1280-px window, so it is shown at its natural size) with fonts of at
least 9 pt as displayed. Colours: seaborn's "colorblind" palette (C0 blue, C1 orange, C2 green), black,
grey and viridis for p; the captions in the chapter name them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from prunebook.book.plots import TEXT_WIDTH
from prunebook.seeds import numpy_rng

__all__ = ["step_size_figure", "two_stages_figure", "closed_form_figure", "neurons_figure",
           "overshoot_figure", "race_figure", "memorized_figure", "loss_gap_figure"]

SMALL = 9  # the smallest font size used (legends, annotations)


def _check_width(figsize):
    if figsize[0] > TEXT_WIDTH:
        raise ValueError(f"figsize: at most {TEXT_WIDTH:g} inches wide (the text column), got {figsize[0]}")


def step_size_figure(out, shown=(1.0, 0.1, 0.01), figsize=(TEXT_WIDTH, 3.3)):
    """(a) The largest signal coefficient max_r j gamma over time at the step sizes ``shown`` and on
    the flow; (b) the distance of GD's end state from the flow's against lr, with the fitted slope.
    ``out`` is a :class:`prunebook.book.step_size.StepSizeLimit`."""
    _check_width(figsize)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=figsize)
    j = np.array([1.0, -1.0])[:, None]
    colours = {lr: f"C{k}" for k, lr in enumerate(sorted(shown, reverse=True))}
    for lr, res in zip(out.lrs, out.gd):
        if lr not in colours:
            continue
        t = res.times.numpy()
        g = (j * res.gamma.numpy()).max(axis=(-2, -1))
        big = lr >= 0.5
        ax.loglog(t[1:], g[1:], color=colours[lr], marker="o" if big else None, ms=3, lw=1.2 if big else 2,
                  label=f"GD, lr = {lr:g}")
    ref = out.reference
    ax.loglog(ref.times.numpy()[1:], (j * ref.gamma.numpy()).max(axis=(-2, -1))[1:], color="k", ls="--",
              lw=1.2, label="flow")
    ax.set(xlabel="time t = lr x steps", ylabel=r"largest $j\gamma$", title="(a) one network")
    ax.legend(fontsize=SMALL, loc="lower right")
    small = out.lrs <= out.fit_below
    bx.loglog(out.lrs[small], out.distance[small], "o", color="k", label=rf"lr $\leq$ {out.fit_below:g}")
    bx.loglog(out.lrs[~small], out.distance[~small], "s", color="C0", ms=7, label="larger lr")
    lr_line = np.geomspace(out.lrs[small].min(), out.lrs.max(), 20)
    k = np.argmax(small)
    bx.loglog(lr_line, out.distance[k] * (lr_line / out.lrs[k]) ** out.slope, color="k", ls="--", lw=1,
              label=f"fit, slope {out.slope:.2f}")
    bx.set(xlabel="step size lr", ylabel="distance from the flow", title="(b) at t_end")
    bx.legend(fontsize=SMALL, loc="lower right")
    return fig


def two_stages_figure(times, signal, noise, loss, titles, figsize=(TEXT_WIDTH, 4.9)):
    """The two stages on the flow, one column per network: the largest signal coefficient of each
    class (solid) and the largest noise coefficient of each class (dashed) over time, and the loss.

    times [T]; signal, noise [T, k, 2] (class +1, -1); loss [T, k]; titles: k strings.
    """
    _check_width(figsize)
    k = len(titles)
    fig, axes = plt.subplots(2, k, figsize=figsize, sharex=True, sharey="row", height_ratios=[2, 1])
    t = np.asarray(times)[1:]
    for c in range(k):
        ax = axes[0, c]
        for cls, name in ((0, "+1"), (1, "-1")):
            s = np.asarray(signal)[1:, c, cls]
            ax.loglog(t, np.where(s > 0, s, np.nan), color=f"C{cls}", label=f"signal, class {name}")
            ax.loglog(t, np.asarray(noise)[1:, c, cls], color=f"C{cls}", ls="--", label=f"noise, class {name}")
        ax.set_title(titles[c], fontsize=10)
        axes[1, c].loglog(t, np.asarray(loss)[1:, c], color="k")
        axes[1, c].set_xlabel("time t")
    axes[0, 0].set_ylabel("coefficient")
    axes[1, 0].set_ylabel("training loss")
    axes[0, 0].set_ylim(1e-3, None)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=SMALL)
    return fig


def closed_form_figure(times, runs, closed, labels, figsize=(TEXT_WIDTH, 3.4)):
    """Stage 1 neuron by neuron: measured overlaps (solid) against the closed form (dashed).

    times [T]; runs, closed: lists of [T] arrays (one per neuron); labels: one string per neuron."""
    _check_width(figsize)
    fig, ax = plt.subplots(figsize=figsize)
    t = np.asarray(times)
    for k, (run, cf, label) in enumerate(zip(runs, closed, labels)):
        ax.semilogy(t, run, color=f"C{k}", lw=2, label=f"{label}: flow")
        ax.semilogy(t, np.where(np.isfinite(cf), cf, np.nan), color=f"C{k}", ls="--", label=f"{label}: closed form")
    ax.set(xlabel="time t", ylabel=r"overlap $x(t) = j\langle w_t \odot m, \mu\rangle$", ylim=(None, 30))
    ax.legend(fontsize=SMALL, loc="upper left")
    return fig


def neurons_figure(x0, x_end, category, network, names, times, traces, trace_labels, figsize=(TEXT_WIDTH, 3.4)):
    """(a) Every neuron's final signal overlap against its head start, coloured by category
    (0 usable, 1 kept the coordinate with the wrong sign, 2 coordinate pruned), marker by network;
    (b) the overlaps of a few neurons over time (traces [T, k], colours by trace_labels' category).

    x0, x_end, category, network: one entry per neuron; names: one per network.
    """
    _check_width(figsize)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=figsize, width_ratios=[1, 1.15])
    colours = ("C0", "C1", "0.6")
    markers = ("o", "s", "^", "D")
    x0, x_end, category, network = map(np.asarray, (x0, x_end, category, network))
    for c, cname in enumerate(("usable", "kept, wrong sign", "coordinate pruned")):
        ax.scatter([], [], color=colours[c], s=18, label=cname)
    for k, name in enumerate(names):
        ax.scatter([], [], color="k", marker=markers[k], s=18, facecolors="none", label=name)
        for c in range(3):
            sel = (network == k) & (category == c)
            ax.scatter(x0[sel], x_end[sel], color=colours[c], marker=markers[k], s=18, alpha=0.8)
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(0, color="k", lw=0.6)
    _symlog_overlap_axis(ax, x_end)
    ax.set(xlabel=r"head start $x(0)$", ylabel=r"final overlap $x(t_{end})$", title="(a) every neuron")
    ax.legend(fontsize=SMALL, loc="upper left", handletextpad=0.2, borderpad=0.3, labelspacing=0.3)
    t = np.asarray(times)
    for k, (label, cat) in enumerate(trace_labels):
        bx.plot(t[1:], np.asarray(traces)[1:, k], color=colours[cat], ls=("-", "--", ":", "-.")[k % 4], label=label)
    bx.axhline(0, color="k", lw=0.6)
    bx.set_xscale("log")
    _symlog_overlap_axis(bx, np.asarray(traces)[1:])
    bx.set(xlabel="time t", ylabel=r"overlap $x(t)$", title="(b) single neurons")
    bx.legend(fontsize=SMALL, loc="center right")
    return fig


def _symlog_overlap_axis(ax, values):
    """A symmetric-log overlap axis, linear within 0.05 of zero, with sparse ticks, spanning ``values``."""
    ax.set_yscale("symlog", linthresh=0.05)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = min(v.min(), 0.0), max(v.max(), 0.0)
    lo, hi = (lo * 2 if lo < -0.05 else lo - 0.02), (hi * 2 if hi > 0.05 else hi + 0.02)
    ax.set_ylim(lo, hi)
    ticks = [t for t in (-1.0, -0.1, 0.0, 0.1, 1.0, 10.0) if lo <= t <= hi]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_locator(plt.NullLocator())


def overshoot_figure(panels, figsize=(TEXT_WIDTH, 3.4)):
    """Networks without a usable neuron: test error at lr = 1 (dots) and on the flow (crosses) against
    the largest a^(q-2) / threshold over their wrong-sign neurons. ``panels`` is a list of
    (title, ratio, err_lr1, err_flow); ratio 0 (no wrong-sign neuron) is drawn at the left edge."""
    _check_width(figsize)
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (title, ratio, e1, ef) in zip(axes, panels):
        ratio, e1, ef = map(np.asarray, (ratio, e1, ef))
        left = 0.02
        x = np.where(ratio > 0, ratio, left)
        jit = numpy_rng(0).uniform(0.9, 1.1, len(x))
        ax.scatter(x * jit, e1, s=16, color="C0", label="GD, lr = 1", zorder=3)
        ax.scatter(x * jit, ef, s=22, marker="x", color="C1", label="flow", zorder=2)
        ax.axvline(1, color="k", ls=":", lw=1)
        ax.axvspan(left / 1.6, left * 1.6, color="0.9", zorder=0)
        ax.set_xscale("log")
        ax.set_xlim(left / 1.8, max(10, x.max() * 1.5))
        ax.set(title=title, xlabel=r"largest $a^{q-2}$ / threshold")
        ticks = [t for t in (0.1, 1, 10) if t < ax.get_xlim()[1]]
        ax.set_xticks([left, *ticks], ["none", *[f"{t:g}" for t in ticks]])
    axes[0].set_ylabel("test error")
    axes[0].legend(fontsize=SMALL, loc="upper right", bbox_to_anchor=(0.98, 0.85))
    return fig


def race_figure(ratio, test_error, p, bins, figsize=(TEXT_WIDTH, 3.4)):
    """(a) Test error against the race ratio R (networks with a usable neuron, colour: p); (b) the
    fraction that learned the signal in bins of R with 95% Wilson bands (``bins`` from
    :func:`prunebook.book.stages.race_bins`)."""
    _check_width(figsize)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=figsize)
    sc = ax.scatter(ratio, test_error, c=p, cmap="viridis", vmin=0, vmax=1, s=14)
    ax.axvline(1, color="k", ls=":", lw=1)
    ax.set(xscale="log", xlabel="race ratio R", ylabel="test error", ylim=(-0.03, 0.6), title="(a) every network")
    fig.colorbar(sc, ax=ax, label="pruning fraction p", pad=0.01)
    frac = bins.k / bins.n
    bx.plot(bins.centre, frac, "o-", color="C0", ms=4)
    bx.fill_between(bins.centre, bins.wilson_lo, bins.wilson_hi, color="C0", alpha=0.2, lw=0)
    for i, (c, k, n) in enumerate(zip(bins.centre, bins.k, bins.n)):  # staggered: neighbours' counts apart
        bx.annotate(f"{k}/{n}", (c, k / n), textcoords="offset points", xytext=(0, 5 + 11 * (i % 2)), ha="center",
                    fontsize=SMALL)
    bx.axvline(1, color="k", ls=":", lw=1)
    bx.set(xscale="log", xlabel="race ratio R (binned)", ylabel="fraction that learned", ylim=(-0.03, 1.22),
           title="(b) with 95% Wilson bands")
    ticks = [0.25, 0.5, 1, 2, 4]
    bx.set_xticks(ticks, [f"{t:g}" for t in ticks])
    bx.xaxis.set_minor_locator(plt.NullLocator())
    return fig


def memorized_figure(predicted, measured, p, p_values, cap=100.0, figsize=(TEXT_WIDTH, 4.2)):
    """Every training sample: the memorized margin measured at the end against the closed form at its
    class's signal time, from the initialization (colour: p). Samples predicted above ``cap`` or
    whose noise blows up before the signal (predicted = inf) are drawn in a strip at the right."""
    _check_width(figsize)
    predicted, measured, p = map(np.asarray, (predicted, measured, p))
    fig, ax = plt.subplots(figsize=figsize)
    fin = np.isfinite(predicted) & (predicted <= cap)
    lo = max(np.nanmin(np.where(fin & (predicted > 0), predicted, np.nan)), 1e-6)
    hi_fin = cap
    edge = hi_fin * 8
    cmap = plt.get_cmap("viridis")
    for k, pv in enumerate(p_values):
        sel = p == pv
        colour = cmap(k / max(len(p_values) - 1, 1))
        ax.scatter(np.where(fin[sel], predicted[sel], edge), np.clip(measured[sel], lo / 10, None), s=6,
                   color=colour, alpha=0.5, lw=0, label=f"p = {pv:g}")
    line = np.geomspace(lo, hi_fin, 10)
    ax.plot(line, line, "k--", lw=1, label="measured = predicted")
    ax.axvspan(edge / 2, edge * 2, color="0.92", zorder=0)
    ax.text(edge, lo, f"above {cap:g} or noise first", rotation=90, ha="center", va="bottom", fontsize=SMALL)
    ax.set(xscale="log", yscale="log", xlim=(lo / 2, edge * 2.5),
           xlabel="predicted at the signal's time (from the initialization)", ylabel="measured at the end")
    ticks = [10.0**k for k in range(int(np.floor(np.log10(lo))), int(np.log10(cap)) + 1) if 10.0**k >= lo / 2]
    ax.set_xticks(ticks, [f"$10^{{{int(np.log10(t))}}}$" for t in ticks])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.legend(fontsize=SMALL, loc="upper left", markerscale=2)
    return fig


def loss_gap_figure(p, seeds, rho_sum, factor, fresh, lost, typical=None, figsize=(TEXT_WIDTH, 3.4)):
    """(a) Total memorization sum rho^+ against p, one line per seed (the seed's networks are nested);
    (b) test loss / training loss against p: the memorization factor (dots) and the fresh factor
    (crosses), networks where a class lost the race drawn as open squares. ``typical`` is an optional
    (p grid, values) heuristic curve for panel (a)."""
    _check_width(figsize)
    p, seeds, rho_sum, factor, fresh, lost = map(np.asarray, (p, seeds, rho_sum, factor, fresh, lost))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=figsize)
    for s in np.unique(seeds):
        sel = seeds == s
        order = np.argsort(p[sel])
        ax.plot(p[sel][order], rho_sum[sel][order], color="C0", alpha=0.4, lw=1, marker="o", ms=3)
    if typical is not None:
        ax.plot(*typical, color="k", ls="--", lw=1.5, label="heuristic, typical head starts")
        ax.legend(fontsize=SMALL, loc="lower left")
    ax.set(yscale="log", xlabel="pruning fraction p", ylabel=r"memorization $\sum\rho^+$", title="(a) one line per seed")
    jit = numpy_rng(1).uniform(-0.015, 0.015, len(p))
    ok = ~lost
    bx.scatter(p[ok] + jit[ok], factor[ok], s=16, color="C0", label="memorization factor")
    bx.scatter(p[ok] + jit[ok], fresh[ok], s=20, marker="x", color="C1", label="fresh factor")
    if lost.any():
        bx.scatter(p[lost] + jit[lost], factor[lost], s=22, marker="s", facecolors="none", edgecolors="k",
                   label="a class lost the race")
    bx.axhline(1, color="k", lw=0.6)
    bx.set(yscale="log", xlabel="pruning fraction p", ylabel="factor", title="(b) test loss / training loss")
    bx.legend(fontsize=SMALL, loc="upper right")
    return fig
