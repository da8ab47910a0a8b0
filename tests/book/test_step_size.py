"""Chapter 3's step-size limit: GD approaches the flow in proportion to lr."""

import pytest
import torch

from prunebook.book.step_size import step_size_limit
from prunebook.experiment import Setting, build


def test_gd_approaches_the_flow_with_slope_one():
    """A book-sized network (measured on 9 networks, p = 0, 0.5, 0.9 x 3 seeds: slopes 0.93 to 1.01)."""
    W0, M, ds = build(Setting(), 0.5, 1, dtype=torch.float64)
    out = step_size_limit(W0, M, ds.X, ds.y, lrs=(1.0, 0.1, 0.05, 0.025), t_end=1000.0, record_times=[100.0, 200.0])
    assert list(out.lrs) == [1.0, 0.1, 0.05, 0.025]
    assert 0.85 < out.slope < 1.15, out
    assert out.distance[0] > 3 * out.distance[1]  # lr = 1 is far off the line through the small steps
    assert out.reference.times.tolist() == [0.0, 100.0, 200.0, 1000.0]
    for res in out.gd:  # GD records at least at the flow's record times
        assert {0.0, 100.0, 200.0, 1000.0} <= {round(t, 9) for t in res.times.tolist()}
    with pytest.raises(ValueError, match="^lrs:"):
        step_size_limit(W0, M, ds.X, ds.y, lrs=(1.0, 0.3), t_end=1000.0)
    with pytest.raises(ValueError, match="^lrs:"):
        step_size_limit(W0, M, ds.X, ds.y, lrs=(0.1, 0.03), t_end=1000.0)  # 1000 / 0.03 is no whole number


def test_each_gd_run_records_the_times_that_are_multiples_of_its_step():
    W0, M, ds = build(Setting(d=200, n=20, m=5), 0.5, 2, dtype=torch.float64)
    out = step_size_limit(W0, M, ds.X, ds.y, lrs=(1.0, 0.1, 0.05), t_end=20.0,
                          record_times=[0.3, 0.5, 2.0, 7.0], record=("loss", "gamma"))
    assert out.reference.times.tolist() == [0.0, 0.3, 0.5, 2.0, 7.0, 20.0]
    big = {round(t, 9) for t in out.gd[0].times.tolist()}
    assert {0.0, 2.0, 7.0, 20.0} <= big and 0.3 not in big  # lr = 1 skips 0.3 and 0.5
    for res in out.gd[1:]:
        assert {0.0, 0.3, 0.5, 2.0, 7.0, 20.0} <= {round(t, 9) for t in res.times.tolist()}
    assert out.gd[0].rho is None and out.gd[0].gamma is not None
