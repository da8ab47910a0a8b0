"""Checks for a chapter's papermill parameters, so a bad value fails at once with its name.

Each chapter calls, right after its ``parameters`` cell::

    check_parameters(globals(), smoke="bool", seeds="count", p_values="fractions")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real

__all__ = ["KINDS", "check_parameters"]


def _is_int(x) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))


KINDS = {
    "bool": (lambda x: isinstance(x, bool), "True or False"),
    "seed": (lambda x: _is_int(x) and x >= 0, "an integer >= 0"),
    "count": (lambda x: _is_int(x) and x >= 1, "an integer >= 1"),
    "positive": (lambda x: _is_real(x) and x > 0, "a finite number > 0"),
    "power": (lambda x: _is_real(x) and x >= 1, "a number >= 1"),
    "fraction": (lambda x: _is_real(x) and 0 <= x < 1, "a number in [0, 1)"),
    "fractions": (
        lambda x: isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_real(v) and 0 <= v < 1 for v in x),
        "a non-empty list of numbers in [0, 1)",
    ),
    "counts": (
        lambda x: isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_int(v) and v >= 1 for v in x),
        "a non-empty list of integers >= 1",
    ),
    "positives": (
        lambda x: isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_real(v) and v > 0 for v in x),
        "a non-empty list of numbers > 0",
    ),
}


def check_parameters(namespace: Mapping[str, object], **kinds: str) -> None:
    """Check ``namespace[name]`` against ``KINDS[kind]`` for each ``name=kind``; raise ValueError naming it."""
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise ValueError(f"{name}: unknown parameter kind {kind!r}; choose from {sorted(KINDS)}")
        if name not in namespace:
            raise ValueError(f"{name}: parameter is missing")
        ok, what = KINDS[kind]
        value = namespace[name]
        if not ok(value):
            raise ValueError(f"{name}: must be {what}, got {value!r}")
