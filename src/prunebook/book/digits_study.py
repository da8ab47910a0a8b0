"""Chapter 6 (a real data set): the chapter's analyses and figures.

- :func:`run_table`: one row per trained digits network (training error and loss, validation and
  test error, converged or not);
- :func:`choose_p`: one pruning fraction for all seeds, chosen on validation data among the
  fractions where every run converged (ties to the smallest p);
- :func:`nearest_class_mean_error`: the nearest-class-mean classifier of a network's training
  images, the baseline the bridge's networks are compared with; :func:`held_out_ncm_error` the
  same classifier built from the held-out images the rotated view is estimated on;
- :func:`usable_first_pixel`: chapter 2's usable neurons in the rotated view (pixel 1 as the signal);
- :func:`neuron_snr`: each mask's best and root-mean-square neuron signal-to-noise ratio on the
  bridge, relative to the dense network's;
- :func:`paired_sign`: a sign test between two pruning fractions (or two views) on the same seeds;
- figures: :func:`plot_samples`, :func:`plot_sweep`, :func:`plot_bridge`, :func:`plot_snr` (each
  at most 7.2 inches wide, for the book's column).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from prunebook.book.plots import TEXT_WIDTH, seed_dots
from prunebook.conventions import LOSS_TARGET
from prunebook.data import Dataset
from prunebook.network import classification_error
from prunebook.pruning import usable_neurons
from prunebook.realdata import DigitsNetworks, digits_parts
from prunebook.result import TrainResult
from prunebook.stats import PairedTest, sign_test

__all__ = ["TIE_TOL", "run_table", "choose_p", "validation_medians", "nearest_class_mean_error",
           "held_out_ncm_error", "usable_first_pixel", "neuron_snr",
           "paired_sign", "plot_samples", "plot_sweep", "plot_bridge", "plot_snr"]

#: validation scores are float32 means over images: medians that differ by less are ties
TIE_TOL = 1e-6
PIXELS = 64
VIEW_NAMES = {"pixels": "pixel", "rotated": "rotated"}


def run_table(result: TrainResult, nets: DigitsNetworks, ps: Sequence[float], seeds: Sequence[int], *,
              q: float = 3, target_loss: float = LOSS_TARGET) -> pd.DataFrame:
    """One row per network (``ps[k]``, ``seeds[k]``): final training error and loss, validation and
    test error, and ``converged`` (training error 0, loss below ``target_loss``, not diverged)."""
    if not len(ps) == len(seeds) == nets.W0.shape[0]:
        raise ValueError(f"seeds: need one (p, seed) per network, {nets.W0.shape[0]}")
    if result.train_error is None:
        raise ValueError("result: record 'train_error' when training")
    table = pd.DataFrame({
        "p": np.asarray(ps, float), "seed": np.asarray(seeds, int),
        "train_error": result.train_error[-1].double().numpy(), "final_loss": result.loss[-1].double().numpy(),
        "val_error": classification_error(result.W, nets.M, nets.val.X, nets.val.y, q).double().numpy(),
        "test_error": classification_error(result.W, nets.M, nets.test.X, nets.test.y, q).double().numpy(),
    })
    table["converged"] = ((table.train_error == 0) & (table.final_loss < target_loss)
                          & ~result.diverged.numpy().reshape(-1))
    return table


def validation_medians(table: pd.DataFrame, metric: str = "val_error") -> pd.Series:
    """The median over seeds of ``metric`` at each p where every run converged (all p if none)."""
    ok = table.groupby("p").converged.all()
    if not ok.any():  # only at smoke sizes, where nothing is trained long enough
        ok[:] = True
    return table[table.p.isin(ok[ok].index)].groupby("p")[metric].median()


def choose_p(table: pd.DataFrame, metric: str = "val_error") -> tuple[float, list[float]]:
    """(chosen p, the tied p's): ONE p for all seeds, the lowest median validation error over seeds
    among the p's where every run converged; medians within :data:`TIE_TOL` of the best tie, and
    the smallest tied p is chosen (the least pruning that does as well)."""
    medians = validation_medians(table, metric)
    ties = sorted(float(p) for p in medians.index[medians <= medians.min() + TIE_TOL])
    return ties[0], ties


def nearest_class_mean_error(train: Dataset, test: Dataset, pixels: int = PIXELS) -> torch.Tensor:
    """Test error [B] of the nearest-class-mean classifier of the training images (first ``pixels``
    coordinates of patch 0), batched like the networks: X [B, n, P, d], y [B, n]."""
    imgs, y = train.X[..., 0, :pixels].double(), train.y
    means = {c: (imgs * (y[..., None] == c)).sum(-2) / (y == c).sum(-1, keepdim=True) for c in (1, -1)}
    if any(bool((y == c).sum(-1).eq(0).any()) for c in (1, -1)):
        raise ValueError("train: every network's training set needs images of both classes")
    centre, direction = (means[1] + means[-1]) / 2, means[1] - means[-1]
    score = ((test.X[..., 0, :pixels].double() - centre[..., None, :]) * direction[..., None, :]).sum(-1)
    return (torch.where(score > 0, 1.0, -1.0) != test.y.double()).double().mean(-1)


def held_out_ncm_error(seeds: Sequence[int], n_train: int, n_val: int, n_rotation: int,
                       n_test: int | None = None) -> pd.Series:
    """Per seed: the test error of the nearest-class-mean classifier of the held-out rotation
    split (the labelled images the rotated view is estimated on), on that seed's test images
    (the first ``n_test``, as :func:`prunebook.realdata.digits_networks` keeps them)."""
    out = {}
    for s in dict.fromkeys(int(v) for v in seeds):
        parts = digits_parts(n_train, n_val, seed=s, n_rotation=n_rotation, dtype=torch.float64)
        if parts.rotation is None:
            raise ValueError("n_rotation: need held-out images (n_rotation > 0)")
        test = parts.test if n_test is None else Dataset(parts.test.X[:n_test], parts.test.y[:n_test],
                                                         parts.test.mu, parts.test.xi)
        out[s] = float(nearest_class_mean_error(parts.rotation, test))
    return pd.Series(out, name="held_out_ncm_error").rename_axis("seed")


def usable_first_pixel(nets: DigitsNetworks) -> np.ndarray:
    """Per network [B]: chapter 2's usable neurons with e_1 as the signal, the class-mean direction
    of the rotated view: neurons whose mask keeps pixel 1 and whose initial weight on it has the
    sign j of the neuron's class (the positive class's mean lies along +e_1)."""
    e1 = torch.zeros(nets.W0.shape[-1], dtype=nets.W0.dtype)
    e1[0] = 1.0
    return usable_neurons(nets.W0, nets.M, e1).sum(-1).numpy()


def neuron_snr(nets: DigitsNetworks, noise_sigma: float, pixels: int = PIXELS) -> pd.DataFrame:
    """Per network: the best neuron's and the root mean square of the neurons' signal-to-noise
    ratio ||u ⊙ m_pixels|| / (sigma sqrt(kept noise coordinates)), relative to the dense network's
    ||u|| / (sigma sqrt(D)), with u half the class-mean difference of the training images
    (balanced classes assumed in the formula: u = mean of y_i x_i)."""
    images = nets.train.X[..., 0, :pixels].double()
    u = (images * nets.train.y[..., None].double()).mean(-2)  # [B, pixels]
    M = nets.M.double()
    extra = M.shape[-1] - pixels
    kept_noise = M[..., pixels:].sum(-1).clamp_min(1)  # [B, 2, m]
    snr = (u[:, None, None, :] * M[..., :pixels]).norm(dim=-1) / (noise_sigma * kept_noise.sqrt())
    dense = u.norm(dim=-1) / (noise_sigma * np.sqrt(extra))
    return pd.DataFrame({"best_snr": (snr.flatten(1).amax(-1) / dense).numpy(),
                         "rms_snr": (snr.flatten(1).pow(2).mean(-1).sqrt() / dense).numpy()})


def paired_sign(a: pd.Series, b: pd.Series) -> PairedTest:
    """Sign test of a - b over the seeds (indices) the two series share; ``a_better`` counts the
    seeds where a is larger."""
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError("b: no seed in common with a")
    return sign_test((a.loc[common] - b.loc[common]).to_numpy(float))


# ---- figures ----------------------------------------------------------------------------------


def plot_samples(train: Dataset, count: int = 12):
    """The first ``count`` training images (8 x 8) with their labels."""
    fig, axes = plt.subplots(2, count // 2, figsize=(TEXT_WIDTH, 2.8))
    for ax, x, y in zip(axes.flat, train.X[:count, 0], train.y[:count]):
        ax.imshow(x[:PIXELS].reshape(8, 8).numpy(), cmap="gray_r")
        ax.set_title(f"y = {int(y):+d}")
        ax.set_axis_off()
    return fig


def _dots_with_misfits(ax, table: pd.DataFrame, ps: Sequence[float], value: str, color, label=None):
    wide = table.pivot(index="p", columns="seed", values=value).loc[list(ps)]
    ok = table.pivot(index="p", columns="seed", values="converged").loc[list(ps)].to_numpy().astype(bool)
    x = np.arange(len(ps))
    for s in range(wide.shape[1]):  # each seed's networks share data and initialization: join them
        ax.plot(x, wide.to_numpy()[:, s], color=color, alpha=0.2, lw=0.8)
    seed_dots(ax, x, np.where(ok, wide.to_numpy(), np.nan), color=color, size=16, label=label)
    rr, cc = np.nonzero(~ok)
    ax.plot(x[rr], wide.to_numpy()[rr, cc], "x", color="C3", ms=7, mew=1.5,
            label="did not fit its training set" if len(rr) else None)
    ax.set_xticks(x, [f"{p:g}" for p in ps])
    return x


def plot_sweep(table: pd.DataFrame, ps: Sequence[float]):
    """Every seed's test error against p on the digits (lines join a seed's networks; × marks runs
    that did not fit their training set)."""
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.6))
    _dots_with_misfits(ax, table, ps, "test_error", "C0", label="fitted its training set")
    ax.set(xlabel="pruning fraction $p$", ylabel="test error (every seed)")
    ax.legend(fontsize="small")
    return fig


def plot_bridge(table: pd.DataFrame, ps: Sequence[float], ncm: float):
    """The bridge: every seed's test error against p, pixel view (top) and rotated view (bottom),
    with the median nearest-class-mean baseline (dashed) and chance (dotted)."""
    fig, axes = plt.subplots(2, 1, figsize=(TEXT_WIDTH, 6.0), sharex=True, sharey=True)
    for ax, (view, color) in zip(axes, (("pixels", "C0"), ("rotated", "C2"))):
        _dots_with_misfits(ax, table[table.view == view], ps, "test_error", color)
        ax.axhline(0.5, color="k", ls=":", lw=1)
        ax.axhline(ncm, color="0.3", ls="--", lw=1.2, label="nearest class mean (median)")
        ax.set(title=f"{VIEW_NAMES[view]} view", ylabel="test error", ylim=(0, 0.6))
    axes[-1].set_xlabel("pruning fraction $p$")
    axes[0].legend(fontsize="small", loc="lower left")
    return fig


def plot_snr(table: pd.DataFrame, ps: Sequence[float]):
    """Median over seeds of the best neuron's (solid) and the root mean square (dashed) neuron
    SNR relative to the dense network's, per view, with the model's 1/sqrt(1 - p)."""
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.8))
    x = np.arange(len(ps))
    for view, color in (("pixels", "C0"), ("rotated", "C2")):
        med = table[table.view == view].groupby("p")[["best_snr", "rms_snr"]].median().loc[list(ps)]
        name = VIEW_NAMES[view]
        ax.plot(x, med.best_snr, "o-", color=color, label=f"{name}: best neuron")
        ax.plot(x, med.rms_snr, "s--", color=color, alpha=0.8, label=f"{name}: root mean square")
    ax.plot(x, 1 / np.sqrt(1 - np.asarray(ps, float)), "k:", label=r"$1/\sqrt{1-p}$")
    ax.set_xticks(x, [f"{p:g}" for p in ps])
    ax.set(xlabel="pruning fraction $p$", ylabel="neuron SNR / dense SNR")
    ax.legend(fontsize="small", ncol=2)
    return fig
