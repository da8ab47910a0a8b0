"""Chapter 5 (informed criteria, dense signal): the chapter's analyses and figures.

- what each criterion keeps, without training: :func:`signal_kept` (per network: neurons that keep
  the signal coordinate, usable neurons) and :func:`kept_summary` (per criterion and p, with the
  heuristic probability of no usable neuron and its Wilson check);
- GraSP checked against its definition before its failure is read: :func:`initial_gradient` (the
  pruned network's training loss and squared gradient norm at initialization) and
  :func:`initial_table` (every criterion, every p, every seed);
- paired comparisons on the same seeds: :func:`paired_comparison` (McNemar on success, sign test on
  the test error) and :func:`with_holm` (Holm's adjustment over a whole table, one family);
- the dense-signal ablation: :func:`against_unpruned` (each p against p = 0 on the same seeds);
- figures: :func:`plot_kept`, :func:`plot_trained`, :func:`plot_initial_gradient`,
  :func:`plot_ablation` (each at most 7.2 inches wide, for the book's column).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from prunebook import criteria as cr
from prunebook._checks import check_tensor
from prunebook.book.plots import TEXT_WIDTH, seed_dots, success_curve
from prunebook.conventions import SUCCESS_ERROR
from prunebook.network import loss_and_gradient, validate_inputs
from prunebook.pruning import usable
from prunebook.stats import holm, mcnemar, sign_test, wilson_interval
from prunebook.theory import prob_no_usable_neuron

__all__ = [
    "COLORS", "signal_kept", "kept_summary", "initial_gradient", "initial_table", "errors_by", "paired_comparison",
    "with_holm", "against_unpruned", "plot_kept", "plot_trained", "plot_initial_gradient", "plot_ablation",
]

#: one colour per criterion, in every figure of the chapter
COLORS = {"random": "C0", "magnitude": "C1", "snip": "C2", "grasp": "C4", "dense": "0.3"}


# ---- what each criterion keeps ----------------------------------------------------------------


def signal_kept(scores: Mapping[str, torch.Tensor], W0: torch.Tensor, mu: torch.Tensor, ps: Sequence[float],
                seeds: Sequence[int]) -> pd.DataFrame:
    """One row per (criterion, p, seed): neurons whose mask keeps the signal coordinate, and usable neurons.

    ``scores`` maps a criterion to its scores [S, 2, m, d] (the highest kept, per-neuron budget), on
    the networks W0 [S, 2, m, d] of ``seeds`` with sparse signal ``mu`` [S, d] (coordinate 0). A
    neuron is usable when it keeps the coordinate and j <w0, mu> > 0 (chapter 2).
    """
    check_tensor("W0", W0, ndim=4)
    if len(seeds) != W0.shape[0]:
        raise ValueError(f"seeds: need one seed per network, {W0.shape[0]}, got {len(seeds)}")
    right_sign = usable(W0, torch.ones_like(W0), mu)  # [S, 2, m]
    rows = []
    for name, sc in scores.items():
        keeps = cr.coordinate_kept(sc, ps)  # [len(ps), S, 2, m]
        for k, p in enumerate(ps):
            kept = keeps[k].sum((-2, -1)).numpy()
            good = (keeps[k] & right_sign).sum((-2, -1)).numpy()
            rows += [{"criterion": name, "p": float(p), "seed": int(s), "keep_signal": int(a), "usable": int(b)}
                     for s, a, b in zip(seeds, kept, good)]
    return pd.DataFrame(rows)


def kept_summary(kept: pd.DataFrame, m: int) -> pd.DataFrame:
    """Per (criterion, p): networks, the fractions of neurons that keep the coordinate and that are
    usable, the usable share of those that keep it, networks with no usable neuron (count and
    fraction), the heuristic ((1 + p)/2)^(2m) and whether it lies in the 95% Wilson interval."""
    g = kept.groupby(["criterion", "p"])
    out = g.agg(networks=("usable", "size"), keep=("keep_signal", "sum"), usable=("usable", "sum"),
                no_usable=("usable", lambda u: int((u == 0).sum())))
    neurons = 2 * m * out.networks
    out["keep_rate"] = out.keep / neurons
    out["usable_rate"] = out.usable / neurons
    out["usable_share"] = out.usable / out.keep.clip(lower=1)
    out["no_usable_rate"] = out.no_usable / out.networks
    out["heuristic"] = prob_no_usable_neuron(out.index.get_level_values("p").to_numpy(), m)
    lo, hi = wilson_interval(out.no_usable, out.networks)
    out["heuristic_covered"] = (lo <= out.heuristic) & (out.heuristic <= hi)
    return out


# ---- GraSP against its definition: the network at initialization ------------------------------


def initial_gradient(W0: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                     q: float = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(training loss, squared norm of the training gradient) at initialization, per network [...].

    The gradient is that of the pruned network, M ⊙ dL/dW at W0 ⊙ M: what training starts with,
    the "gradient flow" that GraSP is defined to preserve (its mask removes the weights whose
    removal reduces it least).
    """
    validate_inputs(W0, M, X, y, q)
    loss, G, _ = loss_and_gradient(W0, M.to(W0.dtype), X, y, float(q))
    return loss, G.pow(2).sum((-3, -2, -1))


def initial_table(scores: Mapping[str, torch.Tensor], W0: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                  ps: Sequence[float], seeds: Sequence[int], q: float = 3) -> pd.DataFrame:
    """One row per (criterion, p, seed): the pruned network's loss and squared gradient norm at
    initialization (:func:`initial_gradient`), and rows ``criterion = "dense"``, p = 0 for the
    unpruned networks. ``scores`` as in :func:`signal_kept`; X [S, n, P, d], y [S, n]."""
    frames = []
    loss, grad = initial_gradient(W0, torch.ones_like(W0), X, y, q)
    frames.append(pd.DataFrame({"criterion": "dense", "p": 0.0, "seed": list(seeds),
                                "loss": loss.double().numpy(), "grad_sq": grad.double().numpy()}))
    for name, sc in scores.items():
        for p in ps:
            loss, grad = initial_gradient(W0, cr.mask_from_scores(sc, p), X, y, q)
            frames.append(pd.DataFrame({"criterion": name, "p": float(p), "seed": list(seeds),
                                        "loss": loss.double().numpy(), "grad_sq": grad.double().numpy()}))
    return pd.concat(frames, ignore_index=True)


# ---- paired comparisons -----------------------------------------------------------------------


def errors_by(table: pd.DataFrame, names: Sequence[str], ps: Sequence[float], seeds: Sequence[int], *,
              key: str = "criterion", value: str = "test_error") -> dict[str, np.ndarray]:
    """``{name: array [len(ps), len(seeds)]}`` of ``value`` from a table with one row per
    (``key``, p, seed), rows in the order of ``ps`` and columns in the order of ``seeds``: the
    input of :func:`paired_comparison` and :func:`plot_trained`."""
    out = {}
    for name in names:
        part = table[table[key] == name]
        if part.empty:
            raise ValueError(f"names: no rows with {key} = {name!r}")
        out[name] = part.pivot(index="p", columns="seed", values=value).loc[list(ps), list(seeds)].to_numpy()
    return out



def paired_comparison(errors: Mapping[str, np.ndarray], ps: Sequence[float], *, baseline: str = "random",
                      success_error: float = SUCCESS_ERROR) -> pd.DataFrame:
    """Each criterion against ``baseline`` on the same seeds, one row per (p, criterion).

    ``errors`` maps a criterion's name to its test errors [len(ps), seeds] (row k at ps[k]; the same
    seeds, in the same order, for every criterion). Columns: the success counts (test error below
    ``success_error``) of both, the exact McNemar test on success (``better``: seeds where only the
    criterion succeeds, ``worse``: only the baseline, ``mcnemar_p``), and the exact sign test on the
    paired error differences (``lower_error``, ``higher_error``, ties dropped, ``sign_p``).
    """
    if baseline not in errors:
        raise ValueError(f"baseline: {baseline!r} is not among the criteria {sorted(errors)}")
    base = np.asarray(errors[baseline], dtype=float)
    if base.ndim != 2 or base.shape[0] != len(ps):
        raise ValueError(f"errors: expected arrays [len(ps), seeds] = [{len(ps)}, k], got {base.shape} "
                         f"for {baseline!r}")
    rows = []
    for name, err in errors.items():
        err = np.asarray(err, dtype=float)
        if err.shape != base.shape:
            raise ValueError(f"errors: {name!r} has shape {err.shape}, the baseline {base.shape}")
        if name == baseline:
            continue
        for k, p in enumerate(ps):
            mc = mcnemar(err[k] < success_error, base[k] < success_error)
            st = sign_test(base[k] - err[k])  # positive: the criterion has the lower error
            rows.append({"p": float(p), "criterion": name, "baseline": baseline, "seeds": base.shape[1],
                         "success": int((err[k] < success_error).sum()),
                         "baseline_success": int((base[k] < success_error).sum()),
                         "better": mc.a_better, "worse": mc.b_better, "mcnemar_p": mc.p_value,
                         "lower_error": st.a_better, "higher_error": st.b_better, "sign_p": st.p_value})
    return pd.DataFrame(rows)


def with_holm(table: pd.DataFrame, columns: Sequence[str] = ("mcnemar_p", "sign_p"),
              extra: Sequence[float] = ()) -> tuple[pd.DataFrame, np.ndarray]:
    """``table`` with a ``<column>_holm`` column per p-value column: Holm's adjustment over ONE
    family made of every listed column's p-values and the ``extra`` p-values (returned adjusted)."""
    columns = list(columns)
    if not columns or any(c not in table for c in columns):
        raise ValueError(f"columns: need p-value columns of the table, got {columns}")
    k = len(table)
    adjusted = holm(np.concatenate([table[c].to_numpy(float) for c in columns] + [np.asarray(extra, float)]))
    out = table.copy()
    for i, c in enumerate(columns):
        out[f"{c.removesuffix('_p')}_holm"] = adjusted[i * k:(i + 1) * k]
    return out, adjusted[len(columns) * k:]


def against_unpruned(runs: pd.DataFrame, by: Sequence[str] = ("mu_norm", "signal"), *,
                     success_error: float = SUCCESS_ERROR) -> pd.DataFrame:
    """Each pruned p against p = 0 on the same seeds, per group of ``by``: one row per (group, p > 0).

    ``runs`` has one row per network (``p``, ``seed``, ``test_error``, ``converged`` and the ``by``
    columns). Only seeds whose two runs both converged are paired (the others are counted in
    ``not_converged``). Columns: the success counts, ``gained`` (succeeds only pruned) and ``lost``
    (only unpruned) with McNemar's p, the median test errors, ``higher`` / ``lower`` (seeds where
    the pruned network errs more / less) with the sign test's p.
    """
    need = {"p", "seed", "test_error", "converged", *by}
    if missing := need - set(runs):
        raise ValueError(f"runs: missing columns {sorted(missing)}")
    rows = []
    for key, part in runs.groupby(list(by)):
        key = key if isinstance(key, tuple) else (key,)
        wide = part.pivot(index="seed", columns="p", values="test_error")
        ok = part.pivot(index="seed", columns="p", values="converged").astype(bool)
        if 0.0 not in wide:
            raise ValueError(f"runs: group {dict(zip(by, key))} has no unpruned (p = 0) networks")
        for p in sorted(c for c in wide if c > 0):
            both = ok[0.0] & ok[p]
            e0, ep = wide.loc[both, 0.0].to_numpy(), wide.loc[both, p].to_numpy()
            mc = mcnemar(ep < success_error, e0 < success_error)
            st = sign_test(ep - e0)
            rows.append({**dict(zip(by, key)), "p": float(p), "seeds": int(both.sum()),
                         "not_converged": int((~both).sum()), "success_p0": int((e0 < success_error).sum()),
                         "success_p": int((ep < success_error).sum()), "gained": mc.a_better, "lost": mc.b_better,
                         "mcnemar_p": mc.p_value, "median_p0": float(np.median(e0)), "median_p": float(np.median(ep)),
                         "higher": st.a_better, "lower": st.b_better, "sign_p": st.p_value})
    return pd.DataFrame(rows)


# ---- figures ----------------------------------------------------------------------------------


def plot_kept(summary: pd.DataFrame, m: int):
    """Two stacked panels against p: the fraction of neurons that keep the signal coordinate (solid)
    and of usable neurons (dashed), and the fraction of networks with no usable neuron (Wilson
    bands) with the heuristic ((1 + p)/2)^(2m)."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(TEXT_WIDTH, 6.0), sharex=True)
    for name in summary.index.get_level_values("criterion").unique():
        tab = summary.loc[name]
        a1.plot(tab.index, tab.keep_rate, "o-", ms=4, color=COLORS[name], label=name)
        a1.plot(tab.index, tab.usable_rate, "s--", ms=3, color=COLORS[name], alpha=0.8)
        success_curve(a2, tab.index.to_numpy(), tab.no_usable, tab.networks, color=COLORS[name], label=name)
    pg = np.linspace(summary.index.get_level_values("p").min(), summary.index.get_level_values("p").max(), 200)
    a1.plot(pg, 1 - pg, "k-", lw=0.8, label="$1-p$ (random)")
    a1.plot(pg, (1 - pg) / 2, "k:", lw=1.2, label="$(1-p)/2$")
    a2.plot(pg, prob_no_usable_neuron(pg, m), "k--", lw=1.2, label=r"$((1+p)/2)^{2m}$")
    a1.set(ylabel="fraction of neurons", ylim=(0, 1), title="keeps the signal coordinate (solid), usable (dashed)")
    a2.set(xlabel="pruning fraction $p$", ylabel="networks, no usable neuron", ylim=(-0.02, 1.02))
    a1.legend(fontsize="small", ncol=2)
    a2.legend(fontsize="small", loc="upper left")
    return fig


def plot_trained(errors: Mapping[str, np.ndarray], ps: Sequence[float], *,
                 success_error: float = SUCCESS_ERROR):
    """Success fraction (95% Wilson intervals) and every seed's test error, per criterion at each
    trained p (``errors`` as in :func:`paired_comparison`); criteria side by side at each p."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(TEXT_WIDTH, 6.2), sharex=True)
    x = np.arange(len(ps))
    width = 0.8 / len(errors)
    for k, (name, err) in enumerate(errors.items()):
        err = np.asarray(err, float)
        xs = x + (k - (len(errors) - 1) / 2) * width
        wins, trials = (err < success_error).sum(axis=1), np.full(len(ps), err.shape[1])
        lo, hi = wilson_interval(wins, trials)
        rate = wins / trials
        a1.errorbar(xs, rate, yerr=[rate - lo, hi - rate], fmt="o", ms=6, capsize=3,
                    color=COLORS[name], label=name)
        seed_dots(a2, xs, err, width=0.3 * width, seed=k, color=COLORS[name], size=8)
    a2.axhline(success_error, color="k", ls=":", lw=1)
    a2.set_xticks(x, [f"{p:g}" for p in ps])
    a1.set(ylabel="success fraction", ylim=(-0.02, 1.05))
    a2.set(xlabel="pruning fraction $p$", ylabel="test error (every seed)", ylim=(-0.02, 0.6))
    a1.legend(fontsize="small", ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def plot_initial_gradient(table: pd.DataFrame):
    """The median over seeds of the squared gradient norm at initialization against p (log scale),
    per criterion, with the unpruned networks' median as a horizontal line."""
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.8))
    dense = table[table.criterion == "dense"].grad_sq.median()
    for name, part in table[table.criterion != "dense"].groupby("criterion", sort=False):
        med = part.groupby("p").grad_sq.median()
        ax.plot(med.index, med.to_numpy(), "o-", ms=4, color=COLORS.get(name, "k"), label=name)
    ax.axhline(dense, color=COLORS["dense"], ls="--", lw=1.2, label="unpruned")
    ax.set_yscale("log")
    ax.set(xlabel="pruning fraction $p$", ylabel=r"$\|\nabla L\|^2$ at initialization")
    ax.legend(fontsize="small", ncol=3)
    return fig


def plot_ablation(runs: pd.DataFrame, ps: Sequence[float], norms: Sequence[float], m: int, *,
                  success_error: float = SUCCESS_ERROR):
    """The dense-signal ablation: per signal norm (columns), the success fraction (top, Wilson
    bands, with the sparse signal's heuristic 1 - ((1+p)/2)^(2m)) and every seed's test error
    (bottom, × for runs that did not fit their training set)."""
    fig, axes = plt.subplots(2, len(norms), figsize=(TEXT_WIDTH, 5.8), sharex=True, sharey="row", squeeze=False)
    x = np.arange(len(ps))
    for col, mn in enumerate(norms):
        top, bottom = axes[0, col], axes[1, col]
        for k, (sig, color) in enumerate((("sparse", "C0"), ("dense", "C3"))):
            part = runs[(runs.mu_norm == mn) & (runs.signal == sig)]
            err = part.pivot(index="p", columns="seed", values="test_error").loc[list(ps)].to_numpy()
            ok = part.pivot(index="p", columns="seed", values="converged").loc[list(ps)].to_numpy().astype(bool)
            success_curve(top, x, ((err < success_error) & ok).sum(1), ok.sum(1).clip(min=1), color=color,
                          label=f"{sig} signal")
            xs = x + (k - 0.5) * 0.3
            seed_dots(bottom, xs, np.where(ok, err, np.nan), width=0.08, seed=k, color=color, size=8)
            rr, cc = np.nonzero(~ok)
            bottom.plot(xs[rr], err[rr, cc], "x", color=color, ms=6)
        top.plot(x, 1 - prob_no_usable_neuron(np.asarray(ps, float), m), "k--", lw=1)
        top.set(title=rf"$\|\mu\| = {mn:g}$", ylim=(-0.02, 1.02))
        bottom.axhline(success_error, color="k", ls=":", lw=1)
        bottom.set(xlabel="pruning fraction $p$", ylim=(-0.02, 0.6))
        bottom.set_xticks(x, [f"{p:g}" for p in ps])
        bottom.tick_params(axis="x", labelrotation=45)
    axes[0, 0].set_ylabel("success fraction")
    axes[1, 0].set_ylabel("test error (every seed)")
    axes[0, -1].legend(fontsize="small", loc="lower left")  # the emptier panel
    return fig
