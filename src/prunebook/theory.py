"""Heuristic scales the book derives (the book's own heuristics, not constants from the paper).

- a neuron keeps the signal coordinate with probability 1 - p, and it sees noise of squared norm
  about (1 - p) d sigma_p^2, so its effective signal-to-noise ratio is
  SNR_p = ||mu|| / (sigma_p sqrt((1 - p) d));
- for q > 2 the race between signal learning and noise memorization is decided by n SNR_p^q
  against a constant (logarithmic factors and extreme-value effects aside);
- a neuron of class j is *usable* (can learn the signal under small-step GD) when its mask keeps
  the signal coordinate and its initial overlap has the right sign, j <w0 ⊙ m, mu> > 0: that has
  probability (1 - p)/2, so usable neurons per class are Binomial(m, (1 - p)/2), and a network has
  none at all with probability ((1 + p)/2)^(2m), which crosses 1/2 near p* = 1 - ln 2 / m.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _st

from prunebook._checks import check_fraction, check_fractions, check_positive, check_positive_int, check_probability, check_q
from prunebook.stats import LEVEL, bootstrap_seeds, logistic_fit

__all__ = [
    "snr",
    "snr_p",
    "n_snr_q",
    "signal_neuron_pmf",
    "usable_neuron_pmf",
    "prob_no_usable_neuron",
    "overpruning_fraction",
    "race_boundary_n",
    "race_boundary_mu",
    "fit_race_constant",
]


def _scalar_or_array(out):
    return float(out) if np.ndim(out) == 0 else out


def snr(mu_norm: float, sigma_p: float, d: int) -> float:
    """Dense-network signal-to-noise ratio ||mu|| / (sigma_p sqrt(d))."""
    return check_positive("mu_norm", mu_norm) / (check_positive("sigma_p", sigma_p) * math.sqrt(check_positive_int("d", d)))


def snr_p(mu_norm, sigma_p: float, d: int, p):
    """SNR_p = ||mu|| / (sigma_p sqrt((1 - p) d)); ``p`` and ``mu_norm`` may be arrays."""
    check_positive("sigma_p", sigma_p)
    check_positive_int("d", d)
    p_arr = check_fractions("p", p)
    mu = np.asarray(mu_norm, dtype=float)
    if not np.all(mu > 0):
        raise ValueError(f"mu_norm: must be > 0, got {mu_norm!r}")
    return _scalar_or_array(mu / (sigma_p * np.sqrt((1 - p_arr) * d)))


def n_snr_q(n, mu_norm, sigma_p: float, d: int, p, q: float):
    """The book's race statistic n SNR_p^q (signal wins, heuristically, when it exceeds a constant)."""
    q = check_q(q)
    n_arr = np.asarray(n, dtype=float)
    if not np.all(n_arr > 0):
        raise ValueError(f"n: must be > 0, got {n!r}")
    return _scalar_or_array(n_arr * np.asarray(snr_p(mu_norm, sigma_p, d, p)) ** q)


def signal_neuron_pmf(m: int, p: float) -> np.ndarray:
    """Binomial(m, 1 - p) probabilities of k = 0..m neurons of a class that keep the signal coordinate."""
    m = check_positive_int("m", m)
    p = check_fraction("p", p)
    return _st.binom.pmf(np.arange(m + 1), m, 1 - p)


def usable_neuron_pmf(m: int, p: float) -> np.ndarray:
    """Binomial(m, (1 - p)/2) probabilities of k = 0..m usable neurons in a class."""
    m = check_positive_int("m", m)
    p = check_fraction("p", p)
    return _st.binom.pmf(np.arange(m + 1), m, (1 - p) / 2)


def prob_no_usable_neuron(p, m: int):
    """((1 + p)/2)^(2m): the probability that a randomly pruned network has no usable neuron at all."""
    m = check_positive_int("m", m)
    return _scalar_or_array(((1 + check_fractions("p", p)) / 2) ** (2 * m))


def overpruning_fraction(m: int, level: float = 0.5) -> float:
    """The p at which the network has no usable neuron with probability ``level``: 2 level^(1/(2m)) - 1.

    For level 1/2 this is 2^(1 - 1/(2m)) - 1 = 1 - ln 2 / m + O(1/m^2).
    """
    m = check_positive_int("m", m)
    level = check_probability("level", level)
    return float(2 * level ** (1 / (2 * m)) - 1)


def race_boundary_n(p, C: float, mu_norm: float, sigma_p: float, d: int, q: float):
    """The sample size n at which n SNR_p^q = C (the book's heuristic boundary in the (p, n) plane)."""
    check_positive("C", C)
    return C / np.asarray(snr_p(mu_norm, sigma_p, d, p)) ** check_q(q)


def race_boundary_mu(p, C: float, n: int, sigma_p: float, d: int, q: float):
    """The signal norm at which n SNR_p^q = C (the heuristic boundary in the (p, ||mu||) plane)."""
    check_positive("C", C)
    n = check_positive_int("n", n)
    q = check_q(q)
    return (C / n) ** (1 / q) * check_positive("sigma_p", sigma_p) * np.sqrt((1 - check_fractions("p", p)) * check_positive_int("d", d))


def fit_race_constant(statistic, success, seeds, *, n_boot: int = 1000, level: float = LEVEL, seed: int = 0):
    """Fit C such that P(success) = 1/2 at n SNR_p^q = C, by logistic regression on log(statistic).

    ``statistic``, ``success`` (boolean) and ``seeds`` have one entry per network. The interval is
    a bootstrap over seeds (all networks of a seed together). Use only networks that could learn
    the signal (with a usable neuron). Returns a :class:`prunebook.stats.BootstrapResult`.
    """
    s = np.asarray(statistic, dtype=float)
    y = np.asarray(success, dtype=float)
    g = np.asarray(seeds)
    if s.shape != y.shape or s.shape != g.shape or s.ndim != 1 or len(s) < 4:
        raise ValueError("statistic: need statistic, success and seeds as 1-d arrays of equal length >= 4")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("statistic: values must be finite and > 0")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("success: one boolean (0 or 1) per network")
    if y.min() == y.max():
        raise ValueError("success: need both successes and failures to locate a threshold")
    x = np.log(s)
    rows = {k: np.nonzero(g == k)[0] for k in np.unique(g)}

    def centre(chosen):
        idx = np.concatenate([rows[k] for k in chosen])
        if y[idx].min() == y[idx].max():
            return np.nan
        a, b = logistic_fit(x[idx], y[idx])
        return np.exp(-a / b) if b > 0 else np.nan

    return bootstrap_seeds(list(rows), centre, n_boot=n_boot, level=level, seed=seed)
