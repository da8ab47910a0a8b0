r"""Chapter 4, finding 2 over every network: test error, test loss and memorization against p, paired by seed.

The tables behind it (:mod:`prunebook.book.precomputed`: ``finding2_flow``, ``finding2_m12_flow``)
hold one network per (p, seed); networks of one seed share their data and initialization and have
nested masks, so every comparison with the dense network is *paired by seed*, and every interval is
a bootstrap over seeds. Each network stops on the flow when its training loss reaches the book's
target, so the networks are compared at *matched training loss*: the test loss minus the training
loss is then the generalization gap at that loss.

- :func:`generalization_gap`: test loss minus final training loss, per row;
- :func:`usable_both`: whether a network has a usable neuron in each class;
- :func:`paired_table`: a (p x seed) table of one quantity, with the dense network as the first row;
- :func:`against_dense`: per p, every network counted: the mean of a quantity with a bootstrap over
  seeds, its ratio to the dense mean (ratio of means, paired resampling of seeds) and a sign test
  of the paired differences;
- :func:`conditional_view`: per p, the same mean over all networks, over those with a usable neuron
  in each class, and over the others (the selection an earlier version of the book made silently).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prunebook.book.plots import TEXT_WIDTH
from prunebook.stats import LEVEL, bootstrap_seeds, sign_test

__all__ = ["generalization_gap", "usable_both", "paired_table", "against_dense", "conditional_view",
           "finding2_figure"]


def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError("df: expected a pandas DataFrame (a sweep table)")
    for col in columns:
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")


def generalization_gap(df: pd.DataFrame) -> np.ndarray:
    """Test loss minus final training loss, one value per row (the gap at the loss each network stopped at)."""
    _require(df, "test_loss", "final_loss")
    return (df["test_loss"] - df["final_loss"]).to_numpy(float)


def usable_both(df: pd.DataFrame) -> np.ndarray:
    """Boolean per row: the network has a usable neuron in each class."""
    _require(df, "usable_pos", "usable_neg")
    return ((df["usable_pos"] > 0) & (df["usable_neg"] > 0)).to_numpy()


def paired_table(df: pd.DataFrame, value: str | Sequence[float]) -> pd.DataFrame:
    """The quantity ``value`` (a column name, or one number per row) as a table p x seed, p sorted
    (the dense network, p = 0, first). Every (p, seed) must occur at most once."""
    _require(df, "p", "seed")
    v = df[value].to_numpy(float) if isinstance(value, str) else np.asarray(value, float)
    if v.shape != (len(df),):
        raise ValueError("value: a column of df or one number per row")
    frame = pd.DataFrame({"p": df["p"].to_numpy(float), "seed": df["seed"].to_numpy(), "v": v})
    if frame.duplicated(["p", "seed"]).any():
        raise ValueError("df: a (p, seed) occurs more than once; pass one network per (p, seed)")
    return frame.pivot(index="p", columns="seed", values="v").sort_index()


def against_dense(df: pd.DataFrame, value: str | Sequence[float], *, n_boot: int = 1000, seed: int = 0,
                  conf: float = LEVEL) -> pd.DataFrame:
    """Per p, every network counted, against each seed's dense network (p = 0).

    Columns: ``seeds``; ``mean`` of the quantity over seeds with a percentile bootstrap over seeds
    (``lo``, ``hi``); ``ratio``, the mean at p over the mean of the same seeds' dense networks, with
    its bootstrap (``ratio_lo``, ``ratio_hi``; a resample draws seeds, so each keeps its pair);
    ``lower`` and ``higher``, the seeds whose network at p is below / above its dense network, and
    the exact two-sided sign test ``sign_p`` (ties dropped). Seeds missing at p or at p = 0 are left
    out of that p's row.
    """
    table = paired_table(df, value)
    if not np.isclose(table.index[0], 0.0):
        raise ValueError("df: needs the dense networks (p = 0) to pair with")
    dense = table.iloc[0]
    rows = []
    for p, row in table.iterrows():
        ok = row.notna() & dense.notna()
        a, b = row[ok].to_numpy(), dense[ok].to_numpy()
        if len(a) < 2:
            raise ValueError(f"df: need at least two seeds paired with the dense network at p = {p}")
        seeds = np.arange(len(a))
        mean = bootstrap_seeds(seeds, lambda k, a=a: a[k].mean(), n_boot=n_boot, seed=seed, level=conf)
        ratio = bootstrap_seeds(seeds, lambda k, a=a, b=b: a[k].mean() / b[k].mean() if b[k].mean() != 0 else np.nan,
                                n_boot=n_boot, seed=seed, level=conf)
        t = sign_test(b - a) if p != 0 else None  # a_better: lower than dense
        rows.append({"p": float(p), "seeds": len(a), "mean": mean.estimate, "lo": mean.lo, "hi": mean.hi,
                     "ratio": ratio.estimate, "ratio_lo": ratio.lo, "ratio_hi": ratio.hi,
                     "lower": t.a_better if t else 0, "higher": t.b_better if t else 0,
                     "sign_p": t.p_value if t else np.nan})
    return pd.DataFrame(rows)


def conditional_view(df: pd.DataFrame, value: str | Sequence[float]) -> pd.DataFrame:
    """Per p: networks, those with a usable neuron in each class, and the mean of ``value`` over all
    networks, over those with both, and over the others (NaN where there are none)."""
    _require(df, "p", "usable_pos", "usable_neg")
    v = df[value].to_numpy(float) if isinstance(value, str) else np.asarray(value, float)
    if v.shape != (len(df),):
        raise ValueError("value: a column of df or one number per row")
    frame = pd.DataFrame({"p": df["p"].to_numpy(float), "v": v, "both": usable_both(df)})
    rows = []
    for p, g in frame.groupby("p", sort=True):
        both, other = g[g.both], g[~g.both]
        rows.append({"p": float(p), "networks": len(g), "both_classes": len(both), "all": g.v.mean(),
                     "with_both": both.v.mean() if len(both) else np.nan,
                     "without": other.v.mean() if len(other) else np.nan})
    return pd.DataFrame(rows)


def finding2_figure(df: pd.DataFrame, contrast: pd.DataFrame | None = None, *, width: float | None = None):
    """Finding 2 over every network, paired by seed: (a) test error, (b) test loss minus training loss
    (log scale), (c) memorization sum |rho| (log scale), each seed a thin line and the mean over seeds
    a thick one with its 95% bootstrap band over seeds (panel (b) is logarithmic above 10^-3 and
    linear below, where a gap can be slightly negative); (d), if ``contrast`` (a table with fewer
    neurons) is given, the mean test-minus-training loss over all its networks, over those with a
    usable neuron in each class, and over all networks of ``df``."""
    import matplotlib.pyplot as plt

    _require(df, "p", "seed", "test_error", "test_loss", "final_loss", "rho_abs_sum")
    m = int(df["m"].iloc[0]) if "m" in df.columns else None
    fig, axes = plt.subplots(2, 2, figsize=(width or TEXT_WIDTH, 5.6), sharex=True, layout="constrained")
    panels = (("test_error", "(a) test error", "linear"), (generalization_gap(df), "(b) test loss $-$ training loss", "symlog"),
              ("rho_abs_sum", r"(c) memorization $\sum|\rho|$", "log"))
    for ax, (value, title, scale) in zip(axes.flat, panels):
        table = paired_table(df, value)
        ax.plot(table.index, table.to_numpy(), color="C0", lw=0.6, alpha=0.35)
        summary = against_dense(df, value, n_boot=200)
        ax.plot(summary.p, summary["mean"], color="k", lw=2, label="mean over seeds")
        ax.fill_between(summary.p, summary.lo, summary.hi, color="k", alpha=0.2, lw=0)
        ax.set(title=title)
        if scale == "symlog":  # a gap can be slightly negative (test loss estimated on fresh samples)
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.set_ylim(-1e-3, None)
        else:
            ax.set_yscale(scale)
    axes[0, 0].plot([], [], color="C0", lw=0.8, label="one seed")
    axes[0, 0].legend(loc="upper right", frameon=False, fontsize=10)
    ax = axes[1, 1]
    if contrast is not None:
        _require(contrast, "p", "usable_pos", "usable_neg")
        mc = int(contrast["m"].iloc[0]) if "m" in contrast.columns else None
        view = conditional_view(contrast, generalization_gap(contrast))
        ax.plot(view.p, view["all"], "o-", color="C3", label=f"m = {mc}, all")
        ax.plot(view.p, view["with_both"], "s--", color="C3", mfc="none", label=f"m = {mc}, usable in both")
        main = conditional_view(df, generalization_gap(df))
        ax.plot(main.p, main["all"], "o-", color="k", label=f"m = {m}, all")
        ax.set(yscale="log", title="(d) mean test $-$ training loss")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 30)  # room for the legend above the curves
        ax.legend(frameon=False, fontsize=10, loc="upper right")
    else:
        ax.set_visible(False)
    for ax in axes[1]:
        ax.set_xlabel("pruning fraction $p$")
    return fig
