r"""Chapter 4: finding 3 network by network, and every run counted (finding 1's stuck samples).

- :func:`usable_kind`: per network, whether it has usable neurons in both classes, in one class
  only, or none at all (the usable-neuron law of chapter 2 predicts failure only for "none");
- :func:`per_kind_errors`: per kind, how many networks failed and the per-class test errors (for
  "one class only": the class with usable neurons against the class without);
- :func:`convergence_report`: every network that did not converge, with the training samples its
  initialization leaves unfittable (:func:`prunebook.book.race.stuck_samples`) and whether its final
  loss sits at k ln 2 / n (k samples with output exactly 0);
- :func:`convergence_summary`: per table, all runs counted: converged, not converged, and how many
  of the latter the initialization explains by stuck samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from prunebook.conventions import SUCCESS_ERROR

__all__ = ["KINDS", "usable_kind", "per_kind_errors", "convergence_report", "convergence_summary"]

#: the three kinds of network, by where its usable neurons are
KINDS = ("both classes", "one class only", "none")


def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError("df: expected a pandas DataFrame (a sweep table)")
    for col in columns:
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")


def usable_kind(df: pd.DataFrame) -> np.ndarray:
    """Per row: "both classes", "one class only" or "none" (where the network's usable neurons are)."""
    _require(df, "usable_pos", "usable_neg")
    up, un = df["usable_pos"].to_numpy() > 0, df["usable_neg"].to_numpy() > 0
    return np.select([up & un, up ^ un], list(KINDS[:2]), KINDS[2])


def per_kind_errors(df: pd.DataFrame, *, level: float = SUCCESS_ERROR) -> pd.DataFrame:
    """One row per kind (:data:`KINDS`): networks, failed (test error >= ``level``), and the median and
    largest test error of class A and class B, where A = +1 and B = -1, except for "one class only":
    A is the class with usable neurons and B the class without."""
    _require(df, "usable_pos", "usable_neg", "test_error", "test_error_pos", "test_error_neg")
    kind = usable_kind(df)
    has_pos = df["usable_pos"].to_numpy() > 0
    err_pos, err_neg = df["test_error_pos"].to_numpy(float), df["test_error_neg"].to_numpy(float)
    one = kind == KINDS[1]
    a = np.where(one & ~has_pos, err_neg, err_pos)
    b = np.where(one & ~has_pos, err_pos, err_neg)
    total = df["test_error"].to_numpy(float)
    rows = []
    for k in KINDS:
        sel = kind == k
        if not sel.any():
            rows.append({"kind": k, "networks": 0, "failed": 0, "median A": np.nan, "median B": np.nan,
                         "max A": np.nan, "max B": np.nan})
            continue
        rows.append({"kind": k, "networks": int(sel.sum()), "failed": int((total[sel] >= level).sum()),
                     "median A": float(np.median(a[sel])), "median B": float(np.median(b[sel])),
                     "max A": float(a[sel].max()), "max B": float(b[sel].max())})
    return pd.DataFrame(rows).set_index("kind")


def convergence_report(df: pd.DataFrame, stuck: Sequence[int]) -> pd.DataFrame:
    """The networks that did not converge, with ``stuck`` (one count per row of ``df``: training
    samples no neuron of their class is active on at initialization), their final training loss
    and training error, and ``at_ln2`` = the final loss equals stuck x ln 2 / n to 1% (each such
    sample stalls at output 0, the others fitted)."""
    _require(df, "converged", "final_loss", "train_error", "n", "p", "seed")
    stuck = np.asarray(stuck)
    if stuck.shape != (len(df),):
        raise ValueError("stuck: need one count per row of df")
    frame = df.assign(stuck=stuck)
    bad = frame[~frame["converged"].astype(bool)]
    expected = bad["stuck"] * np.log(2) / bad["n"]
    at_ln2 = (bad["stuck"] > 0) & np.isclose(bad["final_loss"], expected, rtol=0.01)
    cols = [c for c in ("p", "n", "seed", "final_loss", "train_error", "test_error", "stuck") if c in bad.columns]
    return bad[cols].assign(at_ln2=at_ln2.to_numpy()).reset_index(drop=True)


def convergence_summary(tables: Mapping[str, pd.DataFrame], stuck: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """All runs counted, one row per table: networks, converged, not converged, not converged with a
    stuck sample at initialization, and networks with a stuck sample that nevertheless converged."""
    rows = []
    for name, df in tables.items():
        _require(df, "converged")
        s = np.asarray(stuck[name]) > 0
        ok = df["converged"].to_numpy(bool)
        rows.append({"table": name, "networks": len(df), "converged": int(ok.sum()), "not converged": int((~ok).sum()),
                     "not converged, stuck sample": int((~ok & s).sum()), "stuck but converged": int((ok & s).sum())})
    return pd.DataFrame(rows).set_index("table")
