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
    from prunebook.book.race import stuck_samples
    from prunebook.experiment import Setting, run

    setting = Setting(d=40, n=30, m=2, dynamics="flow", t_end=200.0)
    ps, seeds = [0.0, 0.5, 0.9] * 6, [s for s in range(6) for _ in range(3)]
    df = run(setting, ps, seeds).table()
    stuck = stuck_samples(df)
    assert (stuck > 0).any(), "with m = 2 some networks start with a stuck sample"
    assert not df.converged[stuck > 0].any(), "a stuck sample is never fitted"
    rep = f3.convergence_report(df)
    assert len(rep) == int((~df.converged).sum())
    np.testing.assert_array_equal(rep.stuck, stuck[~df.converged.to_numpy()])
    # a sample stalled at output 0 costs ln 2 / n and counts as a training error; a network with
    # k of them and every other sample fitted sits at k ln 2 / n. The initialization flags samples
    # with no active neuron of their class, but in d = 40 other samples' updates turn some on.
    at = rep[rep.stalled > 0]
    assert len(at) and (at.stalled == np.rint(at.train_error * 30)).all()
    assert at.final_loss.to_numpy() == pytest.approx((at.stalled * np.log(2) / 30).to_numpy(), rel=0.01)
    summary = f3.convergence_summary({"t": df, "none late": df[df.converged]})
    row = summary.loc["t"]
    assert (row.networks, row.converged, row["not converged"]) == (18, int(df.converged.sum()), len(rep))
    assert row["stuck at initialization"] == int((rep.stuck > 0).sum())
    assert row["stalled samples"] == int((rep.stalled > 0).sum())
    assert summary.loc["none late", "not converged"] == 0
