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


# --- glue_record: a record's fields in one call


@pytest.fixture
def glued(monkeypatch):
    myst_nb = pytest.importorskip("myst_nb")
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.__setitem__(name, value))
    return seen


def test_glue_record_with_a_prefix_glues_every_field(glued):
    from prunebook.book.claims import glue_record

    glue_record("f3", {"best_p": np.float64(0.5), "n_seeds": np.int64(20), "best_p_ci": (0.3, 0.7), "name": "x"})
    assert glued == {"f3_best_p": 0.5, "f3_n_seeds": 20, "f3_best_p_ci_lo": 0.3, "f3_best_p_ci_hi": 0.7, "f3_name": "x"}
    assert type(glued["f3_best_p"]) is float and type(glued["f3_n_seeds"]) is int


def test_glue_record_takes_namedtuples_dataclasses_and_table_rows(glued):
    import dataclasses
    import typing

    import pandas as pd

    from prunebook.book.claims import glue_record

    class Fit(typing.NamedTuple):
        C: float
        lo: float

    @dataclasses.dataclass
    class Summary:
        slope: float
        seeds: int

    glue_record("fit", Fit(2.0, 1.5))
    glue_record("s", Summary(1.25, 10))
    glue_record("row", pd.DataFrame({"p": [0.9], "n": [40]}).iloc[0])
    assert glued == {"fit_C": 2.0, "fit_lo": 1.5, "s_slope": 1.25, "s_seeds": 10, "row_p": 0.9, "row_n": 40}


def test_glue_record_names_and_formats(glued):
    from prunebook.book.claims import glue_record

    record = {"a": 0.123456, "b": 2.0, "curve": np.arange(3)}
    glue_record({"a": "alpha"}, record, fmt=".2f")
    glue_record(["b"], record)
    glue_record(["a", "b"], record, fmt={"a": ".1%"})
    assert repr(glued["alpha"]) == "0.12" and glued["alpha"].value == 0.123456
    assert glued["b"] == 2.0 and type(glued["b"]) is float  # the last call glued b unformatted
    assert repr(glued["a"]) == "12.3%"


@pytest.mark.parametrize("names, record, kw, message", [
    ("p", {"curve": np.arange(3)}, {}, "field 'curve' holds a ndarray"),
    (["nope"], {"a": 1}, {}, "no field 'nope'"),
    ("p", [1, 2], {}, "record: a mapping, NamedTuple"),
    ({"a": "bad name"}, {"a": 1}, {}, "name: letters, digits"),
    (["a"], {"a": 1}, {"fmt": {"b": ".2f"}}, "fmt: formats for fields that are not glued"),
    ("", {"a": 1}, {}, "empty prefix"),
])
def test_glue_record_rejects_bad_input_before_gluing_anything(glued, names, record, kw, message):
    from prunebook.book.claims import glue_record

    with pytest.raises((ValueError, TypeError), match=message):
        glue_record(names, {**record, "ok": 1} if isinstance(record, dict) else record, **kw)
    assert glued == {}


def test_glue_record_output_formats_as_myst_nb_shows_it():
    """The formatted value's text form is what {glue:text}`name` prints, and still takes a format spec."""
    pytest.importorskip("myst_nb")
    from IPython.core.formatters import PlainTextFormatter
    from myst_nb.core.variables import format_plain_text

    from prunebook.book.claims import Shown

    text = PlainTextFormatter()(Shown(0.123456, "0.123"))
    assert text == "0.123" and format_plain_text(text, ".1f") == "0.1"
