"""claims.glue hands MyST-NB plain Python numbers, whose text form formats as a number."""

import numpy as np
import pytest


def test_numpy_scalars_are_glued_as_python_numbers(monkeypatch):
    myst_nb = pytest.importorskip("myst_nb")
    from prunebook.book import claims

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.__setitem__(name, value))
    claims.glue("a", np.float64(4.25))
    claims.glue("b", np.int64(7))
    claims.glue("c", np.bool_(True))
    claims.glue("d", 0.5)
    assert type(seen["a"]) is float and repr(seen["a"]) == "4.25"
    assert type(seen["b"]) is int and seen["b"] == 7
    assert type(seen["c"]) is bool
    assert seen["d"] == 0.5
    arr = np.array([1.0, 2.0])
    claims.glue("e", arr)
    assert seen["e"] is arr  # arrays are left alone
