"""Fingerprints of source files: results computed by older code are never served as current."""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Iterable

__all__ = ["fingerprint", "package_fingerprint"]


def fingerprint(files: Iterable[pathlib.Path], *, relative_to: pathlib.Path | None = None) -> str:
    """sha256 over the names (relative to ``relative_to``, else the file name) and bytes of ``files``, sorted."""
    h = hashlib.sha256()
    for f in sorted(pathlib.Path(p) for p in files):
        name = f.relative_to(relative_to) if relative_to is not None and f.is_relative_to(relative_to) else f.name
        h.update(str(name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def package_fingerprint() -> str:
    """The fingerprint of this package's Python source files."""
    here = pathlib.Path(__file__).parent
    return fingerprint(here.glob("*.py"), relative_to=here)
