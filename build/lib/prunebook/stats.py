"""Small statistics helpers for summarizing runs over seeds."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mean_ci", "binomial_ci"]

# two-sided 97.5% Student t quantiles for 1..30 degrees of freedom (then the normal 1.96)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def mean_ci(samples, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and a 95% Student-t confidence interval of the mean along ``axis``: (mean, lo, hi)."""
    a = np.asarray(samples, dtype=float)
    k = a.shape[axis]
    if k < 1:
        raise ValueError("samples: need at least one sample along axis")
    mean = a.mean(axis=axis)
    if k == 1:
        return mean, mean.copy(), mean.copy()
    t = _T975[k - 2] if k - 1 <= len(_T975) else 1.96
    half = t * a.std(axis=axis, ddof=1) / math.sqrt(k)
    return mean, mean - half, mean + half


def binomial_ci(successes, trials) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval for a binomial proportion: (lo, hi)."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if np.any(n < 1) or np.any(s < 0) or np.any(s > n):
        raise ValueError("trials: need 0 <= successes <= trials and trials >= 1")
    z = 1.959963984540054
    phat = s / n
    denom = 1 + z**2 / n
    centre = (phat + z**2 / (2 * n)) / denom
    half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half
