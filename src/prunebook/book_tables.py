"""The precomputed tables of the book: their declarations, and the ``make tables`` command.

    python -m prunebook.book_tables list
    python -m prunebook.book_tables build [name ...]

Chapters load a table with ``from prunebook.book_tables import load`` (see :mod:`prunebook.tables`).
"""

from __future__ import annotations

import argparse
import sys

from prunebook.tables import TABLES, TableSpec, build, load, path, register

__all__ = ["TABLES", "load", "build"]


# ---- chapter 2 and 3 tables (declare with register(TableSpec(...))) ----


# ---- chapter 4 tables ----


# ---- chapter 5 and 6 tables ----


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m prunebook.book_tables", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build tables (all of them by default)")
    b.add_argument("names", nargs="*")
    sub.add_parser("list", help="list the tables")
    args = ap.parse_args(argv)
    if args.command == "list":
        for spec in TABLES.values():
            print(f"{spec.name} (version {spec.version}): {spec.description}")
        return 0
    for name in args.names or list(TABLES):
        print(f"building {name} ...", flush=True)
        df = build(name)
        print(f"{name}: {len(df)} rows -> {path(name)[0]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
