"""Precomputed sweep tables, shipped with the package, for figures that need more compute than a chapter may spend.

A table is declared by a :class:`TableSpec` (the sweep's axes, seeds, base setting and a declared
``version``; the book's tables are in :mod:`prunebook.book.precomputed`), built by ``make tables``
(``python -m prunebook.book.precomputed build [name ...]``)
into ``prunebook/book/tables/<name>.csv`` with a manifest ``<name>.json`` (configuration, seeds,
package version, the command that made it, a checksum), and loaded by chapters with
:func:`load`, so Colab readers get it with the package. A table is keyed by its configuration and
declared version, not by the package's source fingerprint (which any later change would
invalidate): change the experiment, bump the version, rebuild. The test suite recomputes a few
random rows of every table and compares them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from prunebook._version import __version__
from prunebook.experiment import SETTING_FIELDS, Setting
from prunebook.sweep import RESULT_COLUMNS, sweep

__all__ = ["TableSpec", "TABLES", "register", "path", "load", "build", "StaleTable"]

HERE = pathlib.Path(__file__).parent / "tables"


class StaleTable(RuntimeError):
    """The shipped table is missing, corrupt, or was made for another configuration or version."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    version: int  #: bump whenever the experiment behind the table changes
    description: str
    axes: Mapping[str, Sequence]
    seeds: Sequence[int]
    base: Setting = field(default_factory=Setting)
    engine: str = "coefficients"

    def configuration(self) -> dict:
        """The JSON-able configuration a table is keyed by (with its version)."""
        return {
            "name": self.name, "version": self.version, "axes": {k: list(v) for k, v in self.axes.items()},
            "seeds": [int(s) for s in self.seeds], "base": dataclasses.asdict(self.base), "engine": self.engine,
        }


TABLES: dict[str, TableSpec] = {}


def register(spec: TableSpec) -> TableSpec:
    if spec.name in TABLES and TABLES[spec.name] != spec:
        raise ValueError(f"name: a different table {spec.name!r} is already registered")
    TABLES[spec.name] = spec
    return spec


def _spec(name: str) -> TableSpec:
    if name not in TABLES:
        raise ValueError(f"name: unknown table {name!r}; known: {sorted(TABLES)}")
    return TABLES[name]


def path(name: str, root: pathlib.Path | None = None) -> tuple[pathlib.Path, pathlib.Path]:
    """(CSV, manifest) paths of table ``name``."""
    root = HERE if root is None else pathlib.Path(root)
    return root / f"{name}.csv", root / f"{name}.json"


def _rebuild_hint(name: str) -> str:
    return f"rebuild it with `make tables` (python -m prunebook.book.precomputed build {name})"


def load(name: str, root: pathlib.Path | None = None) -> pd.DataFrame:
    """The shipped table ``name``, checked against its declaration (configuration, version, checksum)."""
    spec = _spec(name)
    csv, manifest_path = path(name, root)
    if not csv.exists() or not manifest_path.exists():
        raise StaleTable(f"{name}: the precomputed table is missing; {_rebuild_hint(name)}")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("configuration") != spec.configuration():
        raise StaleTable(f"{name}: the table was made for another configuration or version; {_rebuild_hint(name)}")
    data = csv.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise StaleTable(f"{name}: the table's checksum does not match its manifest; {_rebuild_hint(name)}")
    return pd.read_csv(io.BytesIO(data))


def build(name: str, *, root: pathlib.Path | None = None, cache_dir: pathlib.Path | None = None,
          progress: bool = True) -> pd.DataFrame:
    """Run the sweep of table ``name`` (resumable through ``cache_dir``) and write its CSV and manifest."""
    spec = _spec(name)
    csv, manifest_path = path(name, root)
    csv.parent.mkdir(parents=True, exist_ok=True)
    cache = pathlib.Path(cache_dir) if cache_dir is not None else csv.parent / ".cache" / name
    table = sweep(spec.axes, spec.seeds, base=spec.base, engine=spec.engine, cache_dir=cache, progress=progress)
    text = table.to_csv(index=False, float_format="%.9g")
    csv.write_text(text)
    manifest = {
        "configuration": spec.configuration(), "description": spec.description, "rows": len(table),
        "columns": list(table.columns), "package_version": __version__,
        "command": f"python -m prunebook.book.precomputed build {name}", "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return load(name, root)
