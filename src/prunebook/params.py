"""Checks for a chapter's papermill parameters, so a bad value fails at once with its name.

Each chapter calls, right after its ``parameters`` cell::

    check_parameters(globals(), smoke="bool", seeds="count", p_values="fractions")

The kinds are those of :data:`prunebook._checks.PARAMETER_KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping

from prunebook._checks import PARAMETER_KINDS, check_parameter

__all__ = ["KINDS", "check_parameters"]

KINDS = PARAMETER_KINDS


def check_parameters(namespace: Mapping[str, object], **kinds: str) -> None:
    """Check ``namespace[name]`` against the kind ``kinds[name]``; raise ValueError naming the parameter."""
    for name, kind in kinds.items():
        if name not in namespace:
            raise ValueError(f"{name}: parameter is missing")
        check_parameter(name, namespace[name], kind)
