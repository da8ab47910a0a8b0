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
    "race_boundary_n",
    "race_boundary_mu",
    "overpruning_fraction",
    "fit_race_constant",
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
    if not np.all(n_arr > 0):
        raise ValueError(f"n: must be > 0, got {n!r}")
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


def race_boundary_n(p, C: float, mu_norm: float, sigma_p: float, d: int, q: float):
    """The sample size n at which n SNR_p^q = C (the book's heuristic boundary in the (p, n) plane)."""
    check_positive("C", C)
    return C / np.asarray(snr_p(mu_norm, sigma_p, d, p)) ** check_q(q)


def race_boundary_mu(p, C: float, n: int, sigma_p: float, d: int, q: float):
    """The signal norm at which n SNR_p^q = C (the heuristic boundary in the (p, ||mu||) plane)."""
    check_positive("C", C)
    n = check_positive_int("n", n)
    q = check_q(q)
    return (C / n) ** (1 / q) * check_positive("sigma_p", sigma_p) * np.sqrt((1 - _fractions(p)) * check_positive_int("d", d))


def overpruning_fraction(m: int, level: float = 0.5) -> float:
    """The p at which some class has no signal-carrying neuron with probability ``level``: (1 - sqrt(1 - level))^(1/m)."""
    m = check_positive_int("m", m)
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level!r}")
    return float((1 - math.sqrt(1 - level)) ** (1 / m))


def _logistic_fit(x: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """Maximum-likelihood (a, b) of P(y = 1) = sigmoid(a + b x), by Newton's method with a tiny ridge."""
    X = np.stack([np.ones_like(x), x], axis=1)
    w = np.zeros(2)
    for _ in range(iters):
        z = np.clip(X @ w, -30, 30)
        pr = 1 / (1 + np.exp(-z))
        grad = X.T @ (y - pr) - 1e-6 * w
        H = (X * (pr * (1 - pr))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, grad)
        w = w + step
        if np.abs(step).max() < 1e-10:
            break
    a, b = w
    return float(a), float(b)


def fit_race_constant(statistic, success, *, n_boot: int = 500, seed: int = 0) -> tuple[float, float, float]:
    """Fit C such that P(success) = 1/2 at n SNR_p^q = C, by logistic regression on log(statistic).

    Returns (C, lo, hi) with a 95% bootstrap interval over the networks. ``success`` is boolean
    (e.g. test error below 1/4); use only networks in which every class has a signal-carrying neuron.
    """
    s = np.asarray(statistic, dtype=float)
    y = np.asarray(success, dtype=float)
    if s.shape != y.shape or s.ndim != 1 or len(s) < 4:
        raise ValueError("statistic: need two 1-d arrays of equal length >= 4")
    if np.any(s <= 0):
        raise ValueError("statistic: values must be > 0")
    if y.min() == y.max():
        raise ValueError("success: need both successes and failures to locate a threshold")
    x = np.log(s)

    def centre(xx, yy):
        a, b = _logistic_fit(xx, yy)
        return np.exp(-a / b) if b > 0 else np.nan

    C = centre(x, y)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(x), len(x))
        if y[i].min() != y[i].max():
            boots.append(centre(x[i], y[i]))
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return float(C), float(lo), float(hi)
