"""Heuristic scales the book derives (the book's own heuristics, not constants from the paper).

- a neuron keeps the signal coordinate with probability 1 - p, so the number of signal-carrying
  neurons per class is Binomial(m, 1 - p);
- it sees noise of squared norm about (1 - p) d sigma_p^2, so SNR_p = ||mu|| / (sigma_p sqrt((1 - p) d));
- for q > 2 the race between signal learning and noise memorization is decided by n SNR_p^q
  against a constant; over-pruning sets in when p^m, the chance that a class has no
  signal-carrying neuron, is no longer small.
"""

from __future__ import annotations

import math

import numpy as np

from prunebook._checks import check_fraction, check_positive, check_positive_int, check_q

__all__ = [
    "snr",
    "snr_p",
    "n_snr_q",
    "prob_class_without_signal",
    "prob_some_class_without_signal",
    "signal_neuron_pmf",
]


def _fractions(p) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if not np.all((arr >= 0) & (arr < 1)):
        raise ValueError(f"p: every pruning fraction must lie in [0, 1), got {p!r}")
    return arr


def snr(mu_norm: float, sigma_p: float, d: int) -> float:
    """Dense-network signal-to-noise ratio ||mu|| / (sigma_p sqrt(d))."""
    return check_positive("mu_norm", mu_norm) / (check_positive("sigma_p", sigma_p) * math.sqrt(check_positive_int("d", d)))


def snr_p(mu_norm, sigma_p: float, d: int, p):
    """SNR_p = ||mu|| / (sigma_p sqrt((1 - p) d)); ``p`` and ``mu_norm`` may be arrays."""
    check_positive("sigma_p", sigma_p)
    check_positive_int("d", d)
    p_arr = _fractions(p)
    mu = np.asarray(mu_norm, dtype=float)
    if not np.all(mu > 0):
        raise ValueError(f"mu_norm: must be > 0, got {mu_norm!r}")
    out = mu / (sigma_p * np.sqrt((1 - p_arr) * d))
    return float(out) if out.ndim == 0 else out


def n_snr_q(n, mu_norm, sigma_p: float, d: int, p, q: float):
    """The book's race statistic n SNR_p^q (signal wins, heuristically, when it exceeds a constant)."""
    q = check_q(q)
    n_arr = np.asarray(n, dtype=float)
    if not np.all(n_arr >= 1):
        raise ValueError(f"n: must be >= 1, got {n!r}")
    out = n_arr * np.asarray(snr_p(mu_norm, sigma_p, d, p)) ** q
    return float(out) if np.ndim(out) == 0 else out


def prob_class_without_signal(p, m: int):
    """P(a given class has no signal-carrying neuron) = p^m under random pruning."""
    m = check_positive_int("m", m)
    out = _fractions(p) ** m
    return float(out) if np.ndim(out) == 0 else out


def prob_some_class_without_signal(p, m: int):
    """P(at least one of the two classes has no signal-carrying neuron) = 1 - (1 - p^m)^2."""
    pc = np.asarray(prob_class_without_signal(p, m))
    out = 1 - (1 - pc) ** 2
    return float(out) if np.ndim(out) == 0 else out


def signal_neuron_pmf(m: int, p: float) -> np.ndarray:
    """Binomial(m, 1 - p) probabilities of k = 0..m signal-carrying neurons in a class."""
    m = check_positive_int("m", m)
    p = check_fraction("p", p)
    k = np.arange(m + 1)
    comb = np.array([math.comb(m, int(i)) for i in k], dtype=float)
    return comb * (1 - p) ** k * p ** (m - k)
