"""Build the book strictly, never from an execution cache made with older package code.

    python tools/build_book.py [--root DIR] [--src DIR]
    python tools/build_book.py --figures-only     # only draw the introduction's figures

MyST-NB's execution cache (jupyter-cache) keys each notebook on its own code cells only, and
Sphinx skips pages whose sources did not change, so a change to the package would let the book
serve outputs computed by the old code. This script keeps a fingerprint of the package source
(``--src``, every file under it, and ``pyproject.toml``) in ``_build``; when it changes, the
execution cache is deleted and every page rebuilt (``--all``), so every chapter re-executes.
It then draws the figures of the pages that are not executed (the introduction's story figures,
:mod:`prunebook.book.story`, from the shipped tables into ``_static/generated/``, when the
introduction refers to them), runs ``jupyter-book build -n -W --keep-going`` (warnings and broken
references are errors) and, on failure, prints the execution reports.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def fingerprint(src: pathlib.Path, extra: list[pathlib.Path]) -> str:
    """The fingerprint of every file under ``src`` and of ``extra`` (see :mod:`prunebook.provenance`)."""
    from prunebook.provenance import fingerprint as files_fingerprint

    files = [p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return files_fingerprint(files + [e for e in extra if e.exists()], relative_to=src.parent)


def cache_dir(root: pathlib.Path) -> pathlib.Path:
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    return root / cfg.get("execute", {}).get("cache", "_build/.jupyter_cache")


GENERATED = "_static/generated"


def generate_figures(root: pathlib.Path) -> list[pathlib.Path]:
    """Draw the introduction's figures into ``<root>/_static/generated`` when ``intro.md`` uses them."""
    intro = root / "intro.md"
    if not intro.exists() or GENERATED not in intro.read_text():
        return []
    from prunebook.book.story import write_figures

    paths = write_figures(root / GENERATED)
    print("drew " + ", ".join(str(p.relative_to(root)) for p in paths), flush=True)
    return paths


def build(root: pathlib.Path, src: pathlib.Path) -> int:
    generate_figures(root)
    stamp = root / "_build" / ".src-fingerprint"
    current = fingerprint(src, [root / "pyproject.toml"])
    cache = cache_dir(root)
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root), "-n", "-W", "--keep-going"]
    if not stamp.exists() or stamp.read_text() != current:
        # Both caches must go: jupyter-cache's outputs, and Sphinx's environment, which would
        # otherwise consider unchanged notebooks up to date and not read (or execute) them at all.
        print(f"package source changed (or first build): clearing {cache} and rebuilding every page", flush=True)
        if cache.exists():
            shutil.rmtree(cache)
        stamp.unlink(missing_ok=True)
        cmd.append("--all")
    rc = subprocess.run(cmd, cwd=root).returncode
    if rc != 0:
        reports = sorted((root / "_build" / "html" / "reports").rglob("*.log"))
        for r in reports:
            print(f"\n===== execution report: {r.relative_to(root)} =====\n{r.read_text()}", flush=True)
        if not reports:
            print("jupyter-book failed without execution reports; see the warnings above", flush=True)
        return rc
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current)
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=pathlib.Path, default=ROOT)
    ap.add_argument("--src", type=pathlib.Path, default=ROOT / "src")
    ap.add_argument("--figures-only", action="store_true", help="only draw the introduction's figures")
    args = ap.parse_args(argv)
    if args.figures_only:
        generate_figures(args.root.resolve())
        return 0
    return build(args.root.resolve(), args.src.resolve())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
