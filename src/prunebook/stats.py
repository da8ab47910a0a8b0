"""Statistics, one convention for the whole book (scipy for every quantile).

- Outcomes here are often bimodal (a network learns the signal, test error near 0, or memorizes,
  near 1/2): report *success fractions* with Wilson intervals (:func:`wilson_interval`), never a
  mean with a t-interval that could leave [0, 1].
- :func:`mean_ci` (Student t) is for unbounded, roughly normal quantities (log margins, differences).
- Bootstraps resample *seeds*, the unit that shares data and initialization
  (:func:`bootstrap_seeds`), and report how many resamples were degenerate.
- Paired comparisons on the same seeds: :func:`mcnemar` (binary outcomes) and :func:`sign_test`;
  a chapter that runs a family of such tests states its multiplicity policy and adjusts with :func:`holm`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy import stats as _st

from prunebook.seeds import numpy_rng

__all__ = [
    "LEVEL", "BOOK_N_BOOT", "mean_ci", "wilson_interval", "BootstrapResult", "bootstrap_seeds", "logistic_fit",
    "PairedTest", "mcnemar", "sign_test", "holm",
]

#: The confidence level used throughout the book.
LEVEL = 0.95

#: Bootstrap resamples for a quantity that more than one chapter prints (the race constant C), so
#: that every chapter prints the same interval.
BOOK_N_BOOT = 1000


def _level(level: float) -> float:
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level!r}")
    return level


def mean_ci(samples, axis: int = 0, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and a Student-t confidence interval of the mean along ``axis``: (mean, lo, hi).

    For unbounded quantities only; for error rates and other bounded, bimodal outcomes use
    :func:`wilson_interval` on success counts.
    """
    level = _level(level)
    a = np.asarray(samples, dtype=float)
    k = a.shape[axis]
    if k < 2:
        raise ValueError("samples: need at least two samples along axis for an interval")
    mean = a.mean(axis=axis)
    t = _st.t.ppf(0.5 + level / 2, df=k - 1)
    half = t * a.std(axis=axis, ddof=1) / np.sqrt(k)
    return mean, mean - half, mean + half


def wilson_interval(successes, trials, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion: (lo, hi), always inside [0, 1]."""
    level = _level(level)
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if not np.all(np.isfinite(n)) or np.any(n < 1) or np.any(n != np.round(n)):
        raise ValueError(f"trials: whole numbers >= 1, got {trials!r}")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(s > n) or np.any(s != np.round(s)):
        raise ValueError(f"successes: whole numbers from 0 to trials, got {successes!r}")
    z = _st.norm.ppf(0.5 + level / 2)
    phat = s / n
    denom = 1 + z**2 / n
    centre = (phat + z**2 / (2 * n)) / denom
    half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    # exact at the ends (0 successes: lo = 0; all successes: hi = 1), where rounding could step outside
    return np.where(s == 0, 0.0, centre - half), np.where(s == n, 1.0, centre + half)


class BootstrapResult(NamedTuple):
    estimate: float  #: the statistic on all seeds
    lo: float
    hi: float
    n_boot: int  #: resamples drawn
    degenerate: int  #: resamples on which the statistic was undefined (NaN), left out of the interval


def bootstrap_seeds(
    seeds, statistic: Callable[[np.ndarray], float], *, n_boot: int = 2000, level: float = LEVEL, seed: int = 0
) -> BootstrapResult:
    """Percentile bootstrap over seeds: ``statistic(chosen_seeds)`` on resampled seed sets.

    ``statistic`` receives an array of seeds (with repeats) and must use every network of each
    chosen seed (all its pruning fractions, sample sizes, ...): the seed is the unit that shares
    data and initialization, so resampling networks would understate the uncertainty.
    """
    level = _level(level)
    seeds = np.asarray(list(seeds))
    if seeds.ndim != 1 or len(seeds) < 2:
        raise ValueError("seeds: need a 1-d list of at least two seeds")
    if len(np.unique(seeds)) != len(seeds):
        raise ValueError("seeds: must be distinct")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot: must be an integer >= 1, got {n_boot!r}")
    estimate = float(statistic(seeds))
    rng = numpy_rng(seed)
    values = np.array([statistic(seeds[rng.integers(0, len(seeds), len(seeds))]) for _ in range(n_boot)], float)
    ok = np.isfinite(values)
    if ok.sum() == 0:
        return BootstrapResult(estimate, float("nan"), float("nan"), n_boot, n_boot)
    lo, hi = np.quantile(values[ok], [0.5 - level / 2, 0.5 + level / 2])
    return BootstrapResult(estimate, float(lo), float(hi), n_boot, int((~ok).sum()))


def logistic_fit(x, y, *, iters: int = 100) -> tuple[float, float]:
    """Maximum-likelihood (a, b) of P(y = 1) = sigmoid(a + b x), by Newton's method with a tiny ridge."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("x: need two 1-d arrays of equal length >= 2")
    X = np.stack([np.ones_like(x), x], axis=1)
    w = np.zeros(2)
    for _ in range(iters):
        pr = _st.logistic.cdf(X @ w)
        grad = X.T @ (y - pr) - 1e-6 * w
        H = (X * (pr * (1 - pr))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, grad)
        w = w + step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


class PairedTest(NamedTuple):
    statistic: str  #: what was compared, in words
    n_pairs: int
    a_better: int  #: pairs where a wins (a succeeds and b fails, or a's difference is positive)
    b_better: int
    p_value: float  #: two-sided, exact


def mcnemar(a_success, b_success) -> PairedTest:
    """Exact McNemar test of two criteria evaluated on the same seeds (binary outcomes)."""
    a = np.asarray(a_success, dtype=bool)
    b = np.asarray(b_success, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("b_success: need two 1-d boolean arrays of equal, non-zero length")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if a_only + b_only == 0 else float(_st.binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return PairedTest("success (McNemar, exact)", len(a), a_only, b_only, p)


def sign_test(differences) -> PairedTest:
    """Exact sign test of paired differences (a - b) being symmetric about 0; ties are dropped."""
    diff = np.asarray(differences, dtype=float)
    if diff.ndim != 1 or len(diff) == 0 or not np.all(np.isfinite(diff)):
        raise ValueError("differences: need a non-empty 1-d array of finite numbers")
    pos, neg = int((diff > 0).sum()), int((diff < 0).sum())
    p = 1.0 if pos + neg == 0 else float(_st.binomtest(pos, pos + neg, 0.5).pvalue)
    return PairedTest("sign of the difference (sign test, exact)", len(diff), pos, neg, p)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values of a family of tests, in the order given.

    Sort the m p-values increasingly, p_(1) <= ... <= p_(m); the adjusted value of p_(i) is
    max_{k <= i} min(1, (m - k + 1) p_(k)). Rejecting where the adjusted value is below alpha
    controls the family-wise error rate at alpha under any dependence between the tests.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or len(p) == 0 or not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("pvalues: need a non-empty 1-d array of numbers in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out
