"""Race boundaries and the over-pruning law, measured on sweep tables (one row per network).

The analyses behind chapter 4, each following the book's statistics convention (:mod:`prunebook.stats`):

- :func:`split_seeds`: a table's seeds in two disjoint halves, one to *choose* on (a fitted
  constant, a best p, a threshold), one to *report* on;
- :func:`success_cells`: the success fraction per grid cell among converged networks, with Wilson
  intervals, and the non-converged count kept apart;
- :func:`boundary_per_row`: the sample size (or any other size) on the race boundary at each p, from
  a logistic fit of success against its logarithm, with a bootstrap over seeds;
- :func:`scaling_slope`: the slope of the boundary in the (log(1 - p), log n) plane from one
  logistic fit of success on both logarithms (the book's heuristic predicts q/2), bootstrapped over
  seeds;
- :func:`failure_rates`: observed failure rates per p against the book's no-usable-neuron law
  ((1 + p)/2)^(2m), with Wilson intervals, and how well "no usable neuron" predicts a failure;
- :func:`choose_and_report`: the best p and the over-pruning threshold chosen on some seeds and
  reported on others.

"Success" is test error below :data:`prunebook.conventions.SUCCESS_ERROR` (outcomes are bimodal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from prunebook.conventions import SUCCESS_ERROR
from prunebook.stats import LEVEL, BootstrapResult, bootstrap_seeds, logistic_fit, wilson_interval
from prunebook.theory import prob_no_usable_neuron

__all__ = [
    "split_seeds", "first_seeds", "success", "has_usable", "success_cells", "logistic_fit_multi", "boundary_per_row",
    "scaling_fit", "scaling_slope", "failure_rates", "choose_and_report", "slope_difference",
    "seed_bootstrap_fraction",
]


def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError("df: expected a pandas DataFrame (a sweep table)")
    for col in columns:
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")


def _level(level: float) -> float:
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level!r}")
    return level


def split_seeds(seeds: Sequence[int]) -> tuple[list[int], list[int]]:
    """The distinct seeds, sorted, in two disjoint halves: (to choose on, to report on).

    With an odd count the first half is the smaller one.
    """
    s = sorted({int(v) for v in seeds})
    if len(s) < 2:
        raise ValueError(f"seeds: need at least two distinct seeds, got {len(s)}")
    half = len(s) // 2
    return s[:half], s[half:]


def first_seeds(df: pd.DataFrame, k: int | None) -> pd.DataFrame:
    """The rows of the ``k`` smallest seeds of a sweep table (every row if ``k`` is None): a quick
    run (a chapter's smoke mode) on whole seeds, so that every network of a seed stays with it."""
    _require(df, "seed")
    if k is None:
        return df
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: an integer >= 1 or None, got {k!r}")
    return df[df["seed"].isin(sorted(df["seed"].unique())[:k])]


def success(df: pd.DataFrame, level: float = SUCCESS_ERROR) -> np.ndarray:
    """Boolean per row: the network learned the signal (test error below ``level``)."""
    _require(df, "test_error")
    return (df["test_error"] < _level(level)).to_numpy()


def has_usable(df: pd.DataFrame) -> np.ndarray:
    """Boolean per row: the network has at least one usable neuron (in either class)."""
    _require(df, "usable_pos", "usable_neg")
    return ((df["usable_pos"] + df["usable_neg"]) > 0).to_numpy()


def _outcome(df: pd.DataFrame, outcome, level: float) -> np.ndarray:
    """The binary outcome per row: ``outcome`` (one bool per row) if given, else :func:`success`."""
    if outcome is None:
        return success(df, level)
    out = np.asarray(outcome)
    if out.shape != (len(df),) or not (out.dtype == bool or np.isin(out, (0, 1)).all()):
        raise ValueError("outcome: need one boolean per row of df")
    return out.astype(bool)


def success_cells(df: pd.DataFrame, x: str, y: str, *, level: float = SUCCESS_ERROR) -> pd.DataFrame:
    """One row per (x, y) cell: networks, converged, successes among the converged, their fraction
    with a 95% Wilson interval (NaN where no network converged), and the mean test error of the
    converged networks (a description, no interval)."""
    _require(df, x, y, "test_error", "converged")
    frame = df.assign(_ok=df["converged"].astype(bool), _win=success(df, level) & df["converged"].astype(bool))
    g = frame.groupby([x, y], sort=True)
    out = pd.DataFrame({
        "networks": g.size(), "converged": g["_ok"].sum().astype(int), "successes": g["_win"].sum().astype(int),
        "mean_error": frame[frame["_ok"]].groupby([x, y])["test_error"].mean(),
    }).reset_index()
    ok = out["converged"] > 0
    lo, hi = wilson_interval(out.loc[ok, "successes"], out.loc[ok, "converged"])
    out["fraction"] = np.where(ok, out["successes"] / out["converged"].clip(lower=1), np.nan)
    out["lo"], out["hi"] = np.nan, np.nan
    out.loc[ok, "lo"], out.loc[ok, "hi"] = lo, hi
    return out


def logistic_fit_multi(X, y, *, ridge: float = 1e-6, iters: int = 200) -> np.ndarray:
    """Maximum-likelihood coefficients w of P(y = 1) = sigmoid(w[0] + X @ w[1:]) (Newton, tiny ridge).

    ``X`` [N, k] features, ``y`` [N] in {0, 1}. With perfectly separated data the coefficients grow
    until the ridge stops them; their ratios (a boundary's direction) stay meaningful.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or len(y) < X.shape[1] + 1:
        raise ValueError("X: need X [N, k] and y [N] with N > k")
    if not np.all(np.isfinite(X)):
        raise ValueError("X: features must be finite")
    A = np.concatenate([np.ones((len(X), 1)), X], axis=1)
    w = np.zeros(A.shape[1])
    for _ in range(iters):
        pr = _st.logistic.cdf(A @ w)
        grad = A.T @ (y - pr) - ridge * w
        H = (A * (pr * (1 - pr))[:, None]).T @ A + ridge * np.eye(A.shape[1])
        step = np.linalg.solve(H, grad)
        w = w + step
        if np.abs(step).max() < 1e-10:
            break
    return w


def _seed_rows(seeds: np.ndarray) -> dict:
    return {k: np.nonzero(seeds == k)[0] for k in np.unique(seeds)}


def boundary_per_row(df: pd.DataFrame, *, by: str = "p", along: str = "n", level: float = SUCCESS_ERROR,
                     n_boot: int = 500, seed: int = 0, outcome=None) -> pd.DataFrame:
    """The value of ``along`` on the race boundary (success probability 1/2) at each value of ``by``.

    For each ``by`` value, a logistic fit of success against log(``along``) over the networks given
    (pass converged networks with a usable neuron); the boundary is where it crosses 1/2. Reported
    only where the cells' success fractions straddle 1/2 inside the grid (else NaN: the boundary
    lies outside it). The interval is a 95% bootstrap over seeds, with its degenerate resamples
    (all successes or all failures, or a boundary outside the grid) counted. ``outcome`` (one bool
    per row) replaces success, e.g. a rule's prediction, to draw the boundary the rule implies.
    """
    _require(df, by, along, "seed", *(("test_error",) if outcome is None else ()))
    frame = df.assign(_won=_outcome(df, outcome, level))
    rows = []
    for value, sub in frame.groupby(by, sort=True):
        x = np.log(sub[along].to_numpy(dtype=float))
        win = sub["_won"].to_numpy(float)
        seeds = sub["seed"].to_numpy()
        fr = pd.Series(win).groupby(x).mean()
        lo_x, hi_x = x.min(), x.max()
        inside = len(fr) >= 2 and fr.min() < 0.5 < fr.max()
        at = _seed_rows(seeds)

        def centre(chosen, x=x, win=win, at=at, lo_x=lo_x, hi_x=hi_x):
            idx = np.concatenate([at[k] for k in chosen])
            if win[idx].min() == win[idx].max():
                return np.nan
            a, b = logistic_fit(x[idx], win[idx])
            c = -a / b if b > 0 else np.nan
            return float(np.exp(c)) if lo_x <= c <= hi_x else np.nan

        if inside and len(at) >= 2:
            r = bootstrap_seeds(list(at), centre, n_boot=n_boot, seed=seed)
            est = r.estimate
        else:
            r, est = BootstrapResult(np.nan, np.nan, np.nan, 0, 0), np.nan
        rows.append({by: value, along: est, "lo": r.lo, "hi": r.hi, "degenerate": r.degenerate,
                     "n_boot": r.n_boot, "networks": len(sub), "successes": int(win.sum())})
    return pd.DataFrame(rows)


def _features(df: pd.DataFrame, along: str, adjust: Sequence[str]) -> np.ndarray:
    cols = [np.log(df[along].to_numpy(float)), np.log1p(-df["p"].to_numpy(float))]
    for col in adjust:
        v = df[col].to_numpy(float)
        if np.any(v <= 0):
            raise ValueError(f"adjust: column {col!r} must be > 0 (it enters through its logarithm)")
        cols.append(np.log(v))
    return np.stack(cols, axis=1)


def scaling_fit(df: pd.DataFrame, *, along: str = "n", adjust: Sequence[str] = (), level: float = SUCCESS_ERROR) -> dict:
    """One logistic fit of success on (log ``along``, log(1 - p)): the boundary line
    log ``along`` = slope * log(1 - p) + intercept, with slope = -b_p / b_n.

    The book's heuristic n SNR_p^q = C gives slope q/2 for ``along`` = "n". ``adjust`` names columns
    (> 0) whose logarithms enter as further covariates: the slope is then the boundary's dependence
    on 1 - p at fixed values of those columns (e.g. the number of usable neurons).
    """
    _require(df, along, "p", "test_error", *adjust)
    X = _features(df, along, adjust)
    win = success(df, level)
    if win.min() == win.max():
        raise ValueError("df: need both successes and failures to locate a boundary")
    w = logistic_fit_multi(X, win)
    if w[1] <= 0:
        return {"slope": np.nan, "intercept": np.nan, "coefficients": w}
    return {"slope": float(-w[2] / w[1]), "intercept": float(-w[0] / w[1]), "coefficients": w}


def scaling_slope(df: pd.DataFrame, *, along: str = "n", adjust: Sequence[str] = (), level: float = SUCCESS_ERROR,
                  n_boot: int = 500, seed: int = 0, conf: float = LEVEL, outcome=None) -> BootstrapResult:
    """The slope of :func:`scaling_fit` with a bootstrap over seeds (every network of a chosen seed).

    ``outcome`` (one bool per row) replaces success: with a rule's prediction (for example chapter 3's
    race ratio R > 1, computed from the initialization alone) it gives the slope the rule implies.
    """
    _require(df, along, "p", "seed", *adjust, *(("test_error",) if outcome is None else ()))
    seeds = df["seed"].to_numpy()
    at = _seed_rows(seeds)
    X = _features(df, along, adjust)
    win = _outcome(df, outcome, level)

    def slope(chosen):
        idx = np.concatenate([at[k] for k in chosen])
        if win[idx].min() == win[idx].max():
            return np.nan
        w = logistic_fit_multi(X[idx], win[idx])
        return float(-w[2] / w[1]) if w[1] > 0 else np.nan

    return bootstrap_seeds(list(at), slope, n_boot=n_boot, seed=seed, level=conf)


def failure_rates(df: pd.DataFrame, m: int, *, level: float = SUCCESS_ERROR) -> pd.DataFrame:
    """Per p: observed failure rate (test error >= ``level``) with its 95% Wilson interval, against the
    book's law ((1 + p)/2)^(2m); the fraction of networks with no usable neuron at initialization
    (Wilson interval); and how well "no usable neuron" predicts failure (caught failures, false alarms).
    """
    _require(df, "p", "test_error", "usable_pos", "usable_neg")
    frame = df.assign(_fail=~success(df, level), _none=~has_usable(df))
    rows = []
    for p, sub in frame.groupby("p", sort=True):
        k, fails, none = len(sub), int(sub["_fail"].sum()), int(sub["_none"].sum())
        lo, hi = wilson_interval(fails, k)
        nlo, nhi = wilson_interval(none, k)
        rows.append({
            "p": float(p), "networks": k, "failures": fails, "observed": fails / k, "lo": float(lo), "hi": float(hi),
            "predicted": float(prob_no_usable_neuron(float(p), m)), "no_usable": none, "no_usable_fraction": none / k,
            "no_usable_lo": float(nlo), "no_usable_hi": float(nhi),
            "caught": int((sub["_fail"] & sub["_none"]).sum()), "false_alarms": int((~sub["_fail"] & sub["_none"]).sum()),
        })
    return pd.DataFrame(rows)


def choose_and_report(df: pd.DataFrame, choose_seeds: Sequence[int], report_seeds: Sequence[int], *,
                      level: float = SUCCESS_ERROR) -> dict:
    """The best p and the over-pruning threshold chosen on ``choose_seeds``, reported on ``report_seeds``.

    ``df`` holds one curve (columns p, seed, test_error; converged networks only, or all of them).
    On the choosing seeds, the best p has the largest success fraction (ties: the smaller mean test
    error, then the smaller p); the threshold is the smallest p above the best one whose success
    fraction falls below 1/2 (NaN if none does). On the reporting seeds: the success fraction at
    both with a 95% Wilson interval, the mean test error, and the dense network's, for comparison.
    """
    _require(df, "p", "seed", "test_error")
    a, b = {int(s) for s in choose_seeds}, {int(s) for s in report_seeds}
    if not a or not b or a & b:
        raise ValueError("report_seeds: need two non-empty, disjoint sets of seeds")
    pick = df[df["seed"].isin(a)]
    held = df[df["seed"].isin(b)]
    if pick.empty or held.empty:
        raise ValueError("choose_seeds: both seed sets must have networks in df")
    g = pick.assign(_win=success(pick, level)).groupby("p")
    summary = pd.DataFrame({"frac": g["_win"].mean(), "err": g["test_error"].mean()}).reset_index()
    best = summary.sort_values(["frac", "err", "p"], ascending=[False, True, True]).iloc[0]
    past = summary[(summary.p > best.p) & (summary.frac < 0.5)]
    thr = float(past.p.min()) if len(past) else np.nan

    def report(p):
        if not np.isfinite(p):
            return {"networks": 0, "successes": 0, "fraction": np.nan, "lo": np.nan, "hi": np.nan, "mean_error": np.nan}
        sub = held[np.isclose(held["p"], p)]
        if sub.empty:
            raise ValueError(f"report_seeds: no network at p = {p} on the reporting seeds")
        wins = int(success(sub, level).sum())
        lo, hi = wilson_interval(wins, len(sub))
        return {"networks": len(sub), "successes": wins, "fraction": wins / len(sub), "lo": float(lo),
                "hi": float(hi), "mean_error": float(sub["test_error"].mean())}

    return {
        "best_p": float(best.p), "threshold_p": thr, "chosen_on": sorted(a), "reported_on": sorted(b),
        "best": report(float(best.p)), "threshold": report(thr),
        "dense": report(0.0) if np.isclose(held["p"], 0).any() else None,
        "choose_fraction_best": float(best.frac),
    }


def slope_difference(df_a: pd.DataFrame, df_b: pd.DataFrame, *, along: str = "n", level: float = SUCCESS_ERROR,
                     n_boot: int = 500, seed: int = 0, conf: float = LEVEL) -> BootstrapResult:
    """The scaling slope of ``df_b`` minus that of ``df_a`` (:func:`scaling_fit`), with a percentile
    bootstrap that resamples the seeds of each table separately (two tables, two sets of seeds).
    The book's heuristic says q/2, so a table at q = 4 minus one at q = 3 should give 0.5."""
    from prunebook.seeds import numpy_rng

    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot: must be an integer >= 1, got {n_boot!r}")
    conf = float(conf)
    if not 0 < conf < 1:
        raise ValueError(f"conf: must lie in (0, 1), got {conf!r}")
    parts = []
    for name, df in (("df_a", df_a), ("df_b", df_b)):
        _require(df, along, "p", "seed", "test_error")
        at = _seed_rows(df["seed"].to_numpy())
        if len(at) < 2:
            raise ValueError(f"{name}: need at least two seeds")
        parts.append((at, _features(df, along, ()), success(df, level)))

    def slope(k, chosen):
        at, X, win = parts[k]
        idx = np.concatenate([at[s] for s in chosen])
        if win[idx].min() == win[idx].max():
            return np.nan
        w = logistic_fit_multi(X[idx], win[idx])
        return float(-w[2] / w[1]) if w[1] > 0 else np.nan

    keys = [np.array(list(at)) for at, _, _ in parts]
    estimate = slope(1, keys[1]) - slope(0, keys[0])
    rng = numpy_rng(seed)
    values = np.array([slope(1, rng.choice(keys[1], len(keys[1]))) - slope(0, rng.choice(keys[0], len(keys[0])))
                       for _ in range(n_boot)])
    ok = np.isfinite(values)
    if not ok.any():
        return BootstrapResult(float(estimate), np.nan, np.nan, n_boot, n_boot)
    lo, hi = np.quantile(values[ok], [0.5 - conf / 2, 0.5 + conf / 2])
    return BootstrapResult(float(estimate), float(lo), float(hi), n_boot, int((~ok).sum()))


def seed_bootstrap_fraction(seeds, hits, *, n_boot: int = 1000, seed: int = 0, conf: float = LEVEL) -> BootstrapResult:
    """The fraction of ``hits`` (one bool per network) with a bootstrap over ``seeds`` (one per network):
    networks that share a seed (data, initialization, nested masks) are resampled together, so the
    interval is not narrowed by counting one seed's networks as independent."""
    seeds = np.asarray(seeds)
    hits = np.asarray(hits, bool)
    if seeds.shape != hits.shape or seeds.ndim != 1:
        raise ValueError("hits: need one value per network, like seeds")
    at = _seed_rows(seeds)
    k = {s: (hits[i].sum(), len(i)) for s, i in at.items()}

    def frac(chosen):
        num = sum(k[s][0] for s in chosen)
        den = sum(k[s][1] for s in chosen)
        return num / den if den else np.nan

    return bootstrap_seeds(list(at), frac, n_boot=n_boot, seed=seed, level=conf)
