r"""Chapter 4: finding 3 network by network, and every run counted (finding 1's stuck samples).

- :func:`usable_kind`: per network, whether it has usable neurons in both classes, in one class
  only, or none at all (the usable-neuron law of chapter 2 predicts failure only for "none");
- :func:`per_kind_errors`: per kind, how many networks failed and the per-class test errors (for
  "one class only": the class with usable neurons against the class without);
- :func:`convergence_report`: every network that did not converge: whether it has training
  samples stalled at output 0 (final loss k ln 2 / n), and whether its initialization predicted
  them (:func:`prunebook.book.race.stuck_samples`);
- :func:`convergence_summary`: per table, all runs counted: converged, not converged, stalled.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def convergence_report(df: pd.DataFrame) -> pd.DataFrame:
    """Every network of ``df`` that did not converge, with its final training loss and error,

    - ``stalled``: k >= 1 when the final loss is k ln 2 / n (to 1%) and the training error k / n:
      k samples stalled at output exactly 0 (every neuron silent on them, sigma'(0) = 0), every
      other sample fitted; else 0 (a network still fitting);
    - ``stuck``: the training samples no neuron of their class is active on at initialization
      (:func:`prunebook.book.race.stuck_samples`, computed for these networks only), the stalls
      the initialization alone predicts (others happen during training, when the updates of other
      samples switch off the neurons of a sample's class before they fit it).
    """
    from prunebook.book.race import stuck_samples

    _require(df, "converged", "final_loss", "train_error", "n", "p", "seed")
    bad = df[~df["converged"].astype(bool)]
    stuck = stuck_samples(bad) if len(bad) else np.zeros(0, dtype=int)
    k = np.rint(bad["final_loss"] * bad["n"] / np.log(2)).to_numpy()
    errors = np.rint(bad["train_error"] * bad["n"]).to_numpy()
    exact = np.isclose(bad["final_loss"], k * np.log(2) / bad["n"], rtol=0.01) & (k >= 1) & (errors == k)
    cols = [c for c in ("p", "n", "seed", "final_loss", "train_error", "test_error") if c in bad.columns]
    return bad[cols].assign(stalled=np.where(exact, k, 0).astype(int), stuck=stuck.astype(int)
                            ).reset_index(drop=True)


def convergence_summary(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """All runs counted, one row per table: networks, converged, not converged, and of these the
    networks with samples stalled at output 0 and those whose initialization predicted a stall
    (:func:`convergence_report`)."""
    rows = []
    for name, df in tables.items():
        _require(df, "converged")
        late = convergence_report(df)
        rows.append({"table": name, "networks": len(df), "converged": int(df["converged"].sum()),
                     "not converged": len(late), "stalled samples": int((late["stalled"] > 0).sum()),
                     "stuck at initialization": int((late["stuck"] > 0).sum())})
    return pd.DataFrame(rows).set_index("table")
