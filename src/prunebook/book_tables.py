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

from prunebook.experiment import Setting  # noqa: E402
from prunebook.seeds import network_seeds  # noqa: E402

#: The fine (p, n) grid: 1 - p = 10^(-k/10), k = 0..20 (p = 0 to 0.99, a log(1 - p) grid of
#: 0.1-decade steps); n = 10 sqrt(2)^k, k = 0..8 (10 to 160).
PHASE_PN_P = tuple(round(1 - 10 ** (-k / 10), 4) for k in range(21))
PHASE_PN_N = (10, 14, 20, 28, 40, 57, 80, 113, 160)
#: 20 seeds a cell, from their own block; chapters split them (first half to fit, second to evaluate).
PHASE_PN_SEEDS = tuple(network_seeds(0, 20, start=40_000))

register(TableSpec(
    name="phase_pn", version=1,
    description="fine (p, n) phase diagram: p on a log(1 - p) grid (21 values, 0 to 0.99), n from 10 to 160 "
                "(9 values, geometric), 20 seeds a cell; d = 1000, m = 20, q = 3, ||mu|| = 8, lr = 1, 3000 steps",
    axes={"p": PHASE_PN_P, "n": PHASE_PN_N}, seeds=PHASE_PN_SEEDS,
    base=Setting(d=1000, m=20, q=3.0, mu_norm=8.0, lr=1.0, steps=3000),
))


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
