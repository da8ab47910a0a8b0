"""prunebook.book.finding3: kinds of networks by their usable neurons, per-class errors, every run counted."""

import numpy as np
import pandas as pd
import pytest

from prunebook.book import finding3 as f3


def frame():
    return pd.DataFrame({
        "p": [0.9] * 5, "n": [50] * 5, "seed": range(5),
        "usable_pos": [1, 0, 0, 2, 0], "usable_neg": [1, 1, 0, 0, 0],
        "test_error": [0.01, 0.05, 0.5, 0.3, 0.49],
        "test_error_pos": [0.0, 0.1, 0.45, 0.28, 0.5], "test_error_neg": [0.02, 0.0, 0.55, 0.32, 0.48],
        "converged": [True, True, False, True, False],
        "final_loss": [1e-4, 1e-4, np.log(2) / 50, 1e-4, 0.3], "train_error": [0, 0, 0.02, 0, 0.1],
    })


def test_usable_kind():
    assert list(f3.usable_kind(frame())) == ["both classes", "one class only", "none", "one class only", "none"]


def test_per_kind_errors_orders_one_class_networks_by_the_class_with_usable_neurons():
    out = f3.per_kind_errors(frame())
    one = out.loc["one class only"]
    assert one.networks == 2 and one.failed == 1
    # seed 1 has usable neurons in class -1 only: A = class -1 (0.0), B = class +1 (0.1); seed 3: A = +1 (0.28)
    assert one["median A"] == pytest.approx((0.0 + 0.28) / 2) and one["median B"] == pytest.approx((0.1 + 0.32) / 2)
    assert out.loc["none", "failed"] == 2 and out.loc["both classes", "failed"] == 0
    empty = f3.per_kind_errors(frame().iloc[:1])
    assert empty.loc["none", "networks"] == 0 and np.isnan(empty.loc["none", "median A"])


def test_convergence_report_and_summary():
    df = frame()
    stuck = np.array([0, 0, 1, 0, 0])
    rep = f3.convergence_report(df, stuck)
    assert list(rep.seed) == [2, 4]
    assert list(rep.at_ln2) == [True, False]  # seed 2 sits at ln 2 / n with one stuck sample; seed 4 is slow
    summary = f3.convergence_summary({"t": df}, {"t": stuck})
    row = summary.loc["t"]
    assert (row.networks, row.converged, row["not converged"], row["not converged, stuck sample"]) == (5, 3, 2, 1)
    assert row["stuck but converged"] == 0
    with pytest.raises(ValueError, match="stuck"):
        f3.convergence_report(df, [1, 2])
