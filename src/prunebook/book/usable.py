"""Chapter 2: what a random mask keeps, the usable-neuron law, and what the flow does with it.

Each law is checked at the unit it is about:

- a neuron keeps the signal coordinate with probability 1 - p (unit: a neuron; the entries of a
  random mask are independent);
- the usable neurons of a class bank are Binomial(m, (1 - p)/2) (unit: a class bank; the two banks
  of a network are independent draws);
- a network has no usable neuron with probability ((1 + p)/2)^(2m) (unit: a network).

:func:`draw_init` draws initial weights and mask uniforms once; thresholding the same uniforms at
several p gives nested masks, so the rows of :func:`mask_survey` are not independent of each other
(a multiple-testing correction that holds under any dependence, Bonferroni, is used across them).
:func:`failure_law` summarizes trained networks, one seed each, against ((1 + p)/2)^(2m).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy import stats as _st

from prunebook import theory
from prunebook._checks import check_fraction, check_positive, check_positive_int
from prunebook.conventions import SUCCESS_ERROR
from prunebook.data import signal_vector
from prunebook.network import init_weights
from prunebook.pruning import (
    kept_dimensions,
    mask_uniforms,
    neuron_snr,
    signal_carrying,
    usable_neurons,
)
from prunebook.seeds import stream_seed
from prunebook.stats import wilson_interval

__all__ = [
    "InitDraws",
    "binomial_gof",
    "draw_init",
    "failure_law",
    "law_checks",
    "mask_survey",
    "usable_counts",
    "usable_kind",
]


class InitDraws(NamedTuple):
    """Initial weights and mask uniforms, drawn once; a mask at pruning fraction p is ``u >= p``."""

    w1: torch.Tensor  #: [N, 2, m, 1]: coordinate 1 (the signal coordinate) of N networks' initial weights
    u1: torch.Tensor  #: [N, 2, m, 1]: their mask uniforms at coordinate 1
    u_full: torch.Tensor  #: [K, 2, m, d]: mask uniforms of K full masks
    mu: torch.Tensor  #: [d]: the sparse signal ||mu|| e_1
    sigma_p: float


def draw_init(*, m: int, d: int, mu_norm: float, sigma_p: float, sigma_0: float, networks: int,
              full_masks: int, seed: int) -> InitDraws:
    """Draw what the usable-neuron counts and the mask survey need, from ``seed``.

    Usable neurons depend only on coordinate 1 (the sparse signal's), so ``networks`` networks are
    drawn there alone: ``init_weights(m, networks, ...)`` gives one coordinate per network.
    """
    for name, v in (("m", m), ("d", d), ("networks", networks), ("full_masks", full_masks)):
        check_positive_int(name, v)
    w1 = init_weights(m, networks, sigma_0, seed=stream_seed(seed, "init")).permute(2, 0, 1)[..., None]
    u1 = mask_uniforms((networks, 2, m, 1), seed=stream_seed(seed, "mask", 1))
    u_full = mask_uniforms((full_masks, 2, m, d), seed=stream_seed(seed, "mask", 0))
    mu = signal_vector(d, mu_norm, dtype=torch.float64)
    return InitDraws(w1.double(), u1, u_full, mu, check_positive("sigma_p", sigma_p))


def usable_counts(draws: InitDraws, p: float) -> np.ndarray:
    """Usable neurons per class of every drawn network at pruning fraction p, int array [N, 2]."""
    p = check_fraction("p", p)
    return usable_neurons(draws.w1, (draws.u1 >= p).double(), draws.mu[:1]).numpy()


def mask_survey(draws: InitDraws, p_values: Sequence[float]) -> pd.DataFrame:
    """One row per p: what the masks keep and the usable neurons, measured and predicted.

    Counts (``keeps_signal`` of ``neurons``, ``usable`` of ``neurons``, ``no_usable`` of
    ``networks``) come from the N coordinate-1 draws; ``noise_dims`` (mean kept coordinates other
    than the signal's) and ``snr`` (mean :func:`prunebook.neuron_snr` of the signal-carrying
    neurons, NaN if there is none) from the K full masks.
    """
    N, _, m, _ = draws.u1.shape
    d = draws.u_full.shape[-1]
    rows = []
    for p in p_values:
        p = check_fraction("p", p)
        M1 = (draws.u1 >= p).double()
        counts = usable_counts(draws, p)
        M = (draws.u_full >= p).double()
        carries = signal_carrying(M, draws.mu)
        snr = neuron_snr(M, draws.mu, draws.sigma_p)[carries]
        rows.append({
            "p": p, "neurons": 2 * m * N, "networks": N,
            "keeps_signal": int(M1.sum()), "usable": int(counts.sum()),
            "no_usable": int((counts.sum(-1) == 0).sum()),
            "noise_dims": kept_dimensions(M[..., 1:]).double().mean().item(),
            "snr": snr.mean().item() if len(snr) else np.nan,
        })
    out = pd.DataFrame(rows)
    ps = out["p"].to_numpy()
    mu_norm = float(draws.mu.norm())
    out["predicted_keeps"] = 1 - ps
    out["predicted_usable"] = (1 - ps) / 2
    out["predicted_noise_dims"] = (1 - ps) * (d - 1)
    out["snr_p"] = theory.snr_p(mu_norm, draws.sigma_p, d, ps)
    out["predicted_no_usable"] = theory.prob_no_usable_neuron(ps, m)
    return out


def binomial_gof(counts, m: int, prob: float) -> float:
    """Chi-square goodness-of-fit p-value of integer ``counts`` (one per class bank) against
    Binomial(m, prob); the upper tail is merged so that every expected count is at least 5."""
    counts = np.asarray(counts, dtype=int).ravel()
    if counts.size == 0 or counts.min() < 0 or counts.max() > m:
        raise ValueError(f"counts: need integers in [0, m = {m}]")
    observed = np.bincount(counts, minlength=m + 1).astype(float)
    expected = _st.binom.pmf(np.arange(m + 1), m, prob) * counts.size
    big = np.nonzero(expected >= 5)[0]
    cut = int(big.max()) + 1 if len(big) else 1
    obs = np.append(observed[:cut], observed[cut:].sum())
    exp = np.append(expected[:cut], expected[cut:].sum())
    keep = exp > 0
    if keep.sum() < 2:
        return 1.0
    return float(_st.chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue)


def _binom_pvalue(k: int, trials: int, prob: float) -> float:
    if prob <= 0 or prob >= 1:
        return float(k == round(prob * trials))
    return float(_st.binomtest(int(k), int(trials), float(prob)).pvalue)


def law_checks(survey: pd.DataFrame, draws: InitDraws, level: float = 0.01) -> dict:
    """Each law at its unit, every row of ``survey``; the smallest p-value per law and the
    Bonferroni threshold ``level / rows`` (valid although nested masks make the rows dependent).

    Returns keys ``keeps`` (exact binomial tests, neurons), ``usable_per_class`` (chi-square
    goodness of fit of the per-bank counts to Binomial(m, (1 - p)/2), class banks),
    ``no_usable`` (exact binomial tests, networks), ``threshold`` and ``units`` (the number of
    neurons, class banks and networks per row).
    """
    m = draws.u1.shape[2]
    keeps = [_binom_pvalue(r.keeps_signal, r.neurons, r.predicted_keeps) for r in survey.itertuples()]
    banks = [binomial_gof(usable_counts(draws, r.p), m, (1 - r.p) / 2) for r in survey.itertuples()]
    none = [_binom_pvalue(r.no_usable, r.networks, r.predicted_no_usable) for r in survey.itertuples()]
    N = draws.u1.shape[0]
    return {"keeps": min(keeps), "usable_per_class": min(banks), "no_usable": min(none),
            "threshold": level / len(survey), "units": {"neurons": 2 * m * N, "banks": 2 * N, "networks": N}}


def usable_kind(frame: pd.DataFrame) -> pd.Series:
    """Per network: "none" (no usable neuron), "one class" (usable neurons in one bank only) or "both"."""
    classes = (frame["usable_pos"].to_numpy() > 0).astype(int) + (frame["usable_neg"].to_numpy() > 0)
    return pd.Series(np.array(["none", "one class", "both"])[classes], index=frame.index, name="usable_kind")


def failure_law(frame: pd.DataFrame, m: int, *, level: float = SUCCESS_ERROR) -> pd.DataFrame:
    """Per p, trained networks (one seed each) against the law ((1 + p)/2)^(2m).

    A network *fails* when its test error is at least ``level``. Columns: networks, failures,
    observed (fraction) with its 95% Wilson interval lo and hi, predicted, no_usable (networks
    without a usable neuron at initialization), caught (failures among them), false_alarms (those
    that learned anyway), missed (failures with a usable neuron), one_class and one_class_failures,
    converged, and pvalue (exact binomial test of the failure count against the law). Wilson intervals need independent networks: every network must have its own seed
    (networks sharing a seed share data and initialization), else this raises.
    """
    for col in ("p", "seed", "test_error", "usable_pos", "usable_neg", "converged"):
        if col not in frame:
            raise ValueError(f"frame: missing column {col!r}")
    if not frame["seed"].is_unique:
        raise ValueError("frame: networks share seeds; they are not independent (count seeds instead)")
    m = check_positive_int("m", m)
    df = frame.assign(_fail=frame["test_error"].to_numpy() >= level, _kind=usable_kind(frame))
    rows = []
    for p, sub in df.groupby("p", sort=True):
        k, fails = len(sub), int(sub["_fail"].sum())
        none, one = sub["_kind"] == "none", sub["_kind"] == "one class"
        lo, hi = wilson_interval(fails, k)
        rows.append({
            "p": float(p), "networks": k, "failures": fails, "observed": fails / k,
            "lo": float(lo), "hi": float(hi), "predicted": float(theory.prob_no_usable_neuron(float(p), m)),
            "no_usable": int(none.sum()), "caught": int((sub["_fail"] & none).sum()),
            "false_alarms": int((~sub["_fail"] & none).sum()), "missed": int((sub["_fail"] & ~none).sum()),
            "one_class": int(one.sum()), "one_class_failures": int((sub["_fail"] & one).sum()),
            "converged": int(sub["converged"].sum()),
            "pvalue": _binom_pvalue(fails, k, float(theory.prob_no_usable_neuron(float(p), m))),
        })
    return pd.DataFrame(rows)
