"""Claims that cannot drift from the runs: numbers glued into the prose, findings asserted.

Every number a chapter states in its prose comes from its own run through :func:`glue` (MyST-NB's
glue, shown in the rendered book with ``{glue:text}`name:.3f```), or :func:`glue_record` for every
field of a record at once (a dict, a NamedTuple, a dataclass, a pandas row), and every sentence that states a
finding has a :func:`claim` behind it, so that a rebuilt book fails instead of showing a claim its
own runs contradict. In smoke mode (tiny sizes) claims are reported, not enforced.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence

__all__ = ["ClaimFailed", "glue", "glue_record", "claim"]


class ClaimFailed(AssertionError):
    """A finding stated in a chapter's prose does not hold in the chapter's own run."""


def glue(name: str, value, *, display: bool = False) -> None:
    """Make ``value`` available to the chapter's prose as ``{glue:text}`name```.

    Uses MyST-NB when it is installed (the book build); elsewhere (Colab, a plain Jupyter) it does
    nothing, and the Colab edition shows the values of the book's own run. A NumPy scalar is glued
    as the Python number it holds (its repr, ``np.float64(...)``, would not format as a number).
    """
    _check_name(name)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - depends on the environment
        return  # returns nothing either way: a cell ending in a glue shows no stray value
    _glue(name, value, display=display)


class Shown:
    """A glued value shown as given text: ``{glue:text}`name``` prints ``text`` (what :func:`glue_record`'s
    ``fmt`` produces). The number itself is kept in ``value``."""

    def __init__(self, value, text: str):
        self.value, self.text = value, text

    def __repr__(self) -> str:
        return self.text


def _fields(record) -> dict:
    """The fields of a record, in order: a mapping, a NamedTuple, a dataclass or a pandas Series."""
    if isinstance(record, Mapping):
        return dict(record)
    if hasattr(record, "_asdict"):  # NamedTuple
        return dict(record._asdict())
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if type(record).__name__ == "Series" and hasattr(record, "to_dict"):  # a table row
        return dict(record.to_dict())
    raise TypeError(f"record: a mapping, NamedTuple, dataclass or pandas Series, got {type(record).__name__}")


def _scalar(value) -> bool:
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return True
    return isinstance(value, (numbers.Number, str)) and not isinstance(value, complex)


def glue_record(prefix_or_names, record, *, fmt=None) -> None:
    """Glue the fields of ``record`` in one call, so no cell holds a ladder of :func:`glue` calls.

    ``prefix_or_names`` says what is glued, and under which names:

    - a string ``prefix``: every field, as ``<prefix>_<field>``;
    - a sequence of field names: those fields, under their own names;
    - a mapping ``{field: glue name}``: those fields, under the names given.

    A field holding a pair (an interval ``(lo, hi)``) is glued as ``<name>_lo`` and ``<name>_hi``;
    any other non-scalar field is an error naming it (leave it out with a sequence or mapping).
    ``fmt`` (a format spec such as ``".3f"``, or a mapping field -> spec for some fields) glues the
    formatted text instead of the number, so the prose writes ``{glue:text}`name``` without one.
    Returns nothing (a cell ending in it shows no stray value).
    """
    fields = _fields(record)
    if isinstance(prefix_or_names, str):
        if not prefix_or_names:
            raise ValueError("prefix_or_names: an empty prefix; pass the field names instead")
        names = {f: f"{prefix_or_names}_{f}" for f in fields}
    elif isinstance(prefix_or_names, Mapping):
        names = dict(prefix_or_names)
    elif isinstance(prefix_or_names, Sequence):
        names = {f: f for f in prefix_or_names}
    else:
        raise TypeError("prefix_or_names: a prefix (str), a sequence of field names or a mapping field -> name")
    missing = [f for f in names if f not in fields]
    if missing:
        raise ValueError(f"prefix_or_names: no field {missing[0]!r} in the record (fields: {list(fields)})")
    if fmt is not None and not isinstance(fmt, (str, Mapping)):
        raise TypeError("fmt: a format spec (str) or a mapping field -> format spec")
    if isinstance(fmt, Mapping) and set(fmt) - set(names):
        raise ValueError(f"fmt: formats for fields that are not glued: {sorted(set(fmt) - set(names))}")
    todo = []
    for field, name in names.items():
        value = fields[field]
        spec = fmt.get(field) if isinstance(fmt, Mapping) else fmt
        if isinstance(value, (tuple, list)) and len(value) == 2 and all(_scalar(v) for v in value):
            todo += [(f"{name}_lo", value[0], spec), (f"{name}_hi", value[1], spec)]
        elif _scalar(value):
            todo.append((name, value, spec))
        else:
            raise ValueError(f"record: field {field!r} holds a {type(value).__name__}, not a number, string or "
                             "(lo, hi) pair; leave it out by naming the fields to glue")
    for name, value, spec in todo:  # check every name before gluing any
        _check_name(name)
    for name, value, spec in todo:
        if type(value).__module__ == "numpy":
            value = value.item()
        glue(name, value if spec is None else Shown(value, format(value, spec)))


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name: letters, digits, '_' and '-' only, got {name!r}")


def claim(condition: bool, statement: str, *, enforce: bool = True) -> None:
    """Check a finding the prose states; raise :class:`ClaimFailed` naming it if the run contradicts it.

    ``enforce=False`` (pass ``not smoke``) only prints the verdict, for runs too small to decide.
    Returns nothing, so that a cell ending in a claim shows the printed verdict and no stray value.
    """
    holds = bool(condition)
    if not holds and enforce:
        raise ClaimFailed(f"the chapter states: {statement!r}, but its run contradicts it")
    print(f"claim {'holds' if holds else 'NOT checked at smoke sizes' if not enforce else 'fails'}: {statement}")
