"""Settings and their dynamics (GD or the flow), and one experiment run either way."""

import math

import numpy as np
import pytest

from prunebook.experiment import Setting, run


def test_gd_defaults_and_flow_fields():
    s = Setting()
    assert (s.dynamics, s.lr, s.steps, s.t_end, s.rtol, s.stop_loss) == ("gd", 1.0, 1000, None, None, None)
    assert s.horizon == 1000.0
    f = Setting(dynamics="flow", t_end=500)
    assert (f.lr, f.steps, f.t_end, f.rtol, f.stop_loss) == (None, None, 500.0, 1e-4, None) and f.horizon == 500.0
    assert isinstance(f.t_end, float)


@pytest.mark.parametrize("kw, arg", [
    (dict(t_end=10.0), "t_end"), (dict(rtol=1e-3), "rtol"), (dict(stop_loss=0.01), "stop_loss"),
    (dict(dynamics="flow", t_end=10.0, lr=0.1), "lr"), (dict(dynamics="flow", t_end=10.0, steps=10), "steps"),
    (dict(dynamics="flow"), "t_end"), (dict(dynamics="flow", t_end=-1.0), "t_end"),
    (dict(dynamics="flow", t_end=1.0, rtol=1.5), "rtol"), (dict(dynamics="flow", t_end=1.0, stop_loss=0.0), "stop_loss"),
    (dict(dynamics="euler"), "dynamics"), (dict(lr=0.0), "lr"), (dict(steps=-1), "steps"),
])
def test_a_setting_names_its_bad_field(kw, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        Setting(**kw)


def test_switching_dynamics_clears_the_other_fields():
    gd = Setting(lr=0.1, steps=100)
    flow = gd.with_(dynamics="flow", t_end=10.0)
    assert flow.lr is None and flow.steps is None and flow.t_end == 10.0
    back = flow.with_(dynamics="gd")
    assert back.lr == 1.0 and back.steps == 1000 and back.t_end is None and back.rtol is None


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    s = Setting(d=np.int64(200), n=np.int32(10), m=np.int64(4), sigma_p=np.float32(1.5), lr=np.float64(0.5))
    assert type(s.d) is int and type(s.sigma_p) is float and s.as_dict()["n"] == 10


def test_from_record_reads_table_rows_with_missing_values():
    f = Setting(dynamics="flow", t_end=20.0, stop_loss=0.01)
    row = {k: (math.nan if v is None else v) for k, v in f.as_dict().items()}
    assert Setting.from_record(row) == f
    old = {k: v for k, v in Setting(lr=0.5).as_dict().items() if k not in ("dynamics", "t_end", "rtol", "stop_loss")}
    assert Setting.from_record(old) == Setting(lr=0.5)  # rows written before the flow existed


def test_run_on_the_flow_reports_its_clock():
    s = Setting(d=200, n=10, m=4, mu_norm=6.0, dynamics="flow", t_end=200.0, stop_loss=0.05)
    res = run(s, [0.0, 0.5], [3, 3], record=("loss", "gamma"), record_at=[10.0, 50.0])
    table = res.table()
    assert res.result.engine == "flow" and res.result.times.tolist() == [0.0, 10.0, 50.0, 200.0]
    assert (table.evaluations > 0).all() and (table.t_final <= 200.0).all()
    assert ((table.final_loss <= 0.05) == table.stopped).all()
    assert "rho_abs_sum" not in table.columns  # rho not recorded
    with pytest.raises(ValueError, match="^engine:"):
        run(s, [0.0], [3], engine="weights")
    with pytest.raises(ValueError, match="^n_test:"):
        run(s, [0.0], [3], n_test=10)  # checked before any network is trained
