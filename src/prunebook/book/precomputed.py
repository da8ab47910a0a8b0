"""The precomputed tables of the book: their declarations, and the ``make tables`` command.

    python -m prunebook.book.precomputed list
    python -m prunebook.book.precomputed build [name ...]

Chapters load a table with ``from prunebook.book.precomputed import load`` (see :mod:`prunebook.book.tables`).
"""

from __future__ import annotations

import argparse
import sys

from prunebook.book.tables import TABLES, TableSpec, build, load, path, register

__all__ = ["TABLES", "load", "build"]


# ---- chapter 2 and 3 tables (declare with register(TableSpec(...))) ----

#: Chapter 3, large steps exactly: networks without a usable neuron at lr = 1 (GD) and on the flow,
#: in the configuration where finding 3 is seen with (1 - p) d >> n (d = 5000, m = 10, n = 50,
#: ||mu|| = 18), at p = 0.93 (about half the networks have no usable neuron). One p and 100 seeds
#: per table, so the networks are independent initializations. q = 3 at sigma_0 = 0.0045 and q = 4
#: at sigma_0 = 0.01: the first-step criterion a^(q-2) > 4 m / (lr q ||mu||^2) then splits the
#: wrong-sign neurons in both. The chapter recomputes each network's first step from its seed.
from prunebook.experiment import Setting  # noqa: E402
from prunebook.seeds import network_seeds  # noqa: E402
from prunebook.conventions import LOSS_TARGET  # noqa: E402

OVERSHOOT_P = (0.93,)
OVERSHOOT_CONFIGS = {  # name: (q, sigma_0, seed block)
    "overshoot_q3": (3.0, 0.0045, 47_000),
    "overshoot_q4": (4.0, 0.01, 47_200),
}
for _name, (_q, _s0, _start) in OVERSHOOT_CONFIGS.items():
    _base = Setting(d=5000, m=10, n=50, q=_q, mu_norm=18.0, sigma_0=_s0)
    register(TableSpec(
        name=f"{_name}_lr1", version=1,
        description=f"chapter 3, first-step overshoot: GD at lr = 1 for 300 steps; d = 5000, m = 10, n = 50, q = {_q:g}, "
                    f"||mu|| = 18, sigma_0 = {_s0:g}; p = 0.93, 100 seeds",
        axes={"p": OVERSHOOT_P}, seeds=tuple(network_seeds(0, 100, start=_start)),
        base=_base.with_(lr=1.0, steps=300),
    ))
    register(TableSpec(
        name=f"{_name}_flow", version=1,
        description=f"chapter 3, first-step overshoot, the small-step contrast: the gradient flow to t = 300 (stopped at "
                    f"the loss target); d = 5000, m = 10, n = 50, q = {_q:g}, ||mu|| = 18, sigma_0 = {_s0:g}; p = 0.93, "
                    "the same 100 seeds",
        axes={"p": OVERSHOOT_P}, seeds=tuple(network_seeds(0, 100, start=_start)),
        base=_base.with_(dynamics="flow", t_end=300.0, stop_loss=LOSS_TARGET),
    ))


# ---- chapter 4 tables ----

from prunebook.experiment import Setting  # noqa: E402
from prunebook.seeds import network_seeds  # noqa: E402

#: The fine (p, n) grid: 1 - p = 10^(-k/10), k = 0..20 (p = 0 to 0.99, a log(1 - p) grid of
#: 0.1-decade steps); n = 10 sqrt(2)^k, k = 0..8 (10 to 160).
PHASE_PN_P = tuple(round(1 - 10 ** (-k / 10), 4) for k in range(21))
PHASE_PN_N = (10, 14, 20, 28, 40, 57, 80, 113, 160)
#: 20 seeds a cell, from their own block; chapters split them (first half to fit, second to evaluate).
PHASE_PN_SEEDS = tuple(network_seeds(0, 20, start=40_000))

#: phase_pn is GD at learning rate 1 (chapter 2 reads it; chapter 4 runs on the flow, phase_pn_flow).
register(TableSpec(
    name="phase_pn", version=1,
    description="fine (p, n) phase diagram: p on a log(1 - p) grid (21 values, 0 to 0.99), n from 10 to 160 "
                "(9 values, geometric), 20 seeds a cell; d = 1000, m = 20, q = 3, ||mu|| = 8, lr = 1, 3000 steps",
    axes={"p": PHASE_PN_P, "n": PHASE_PN_N}, seeds=PHASE_PN_SEEDS,
    base=Setting(d=1000, m=20, q=3.0, mu_norm=8.0, lr=1.0, steps=3000),
))

#: p = 0 to 0.9 on the log(1 - p) grid of phase_pn: the scaling test's range (below over-pruning)
SCALING_P = PHASE_PN_P[:11]
#: Finding 3's pruning fractions (finding3_flow below)
FINDING3_P = (0.0, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97)

#: The lr ablation: lr = 1, 0.1, 0.01 at matched lr x steps (= 1000), the same 16 seeds (paired):
#: chapter 4's large-step contrast, with lr_ablation_flow below.
LR_ABLATION = {"lr_ablation_lr1": (1.0, 1000), "lr_ablation_lr0p1": (0.1, 10_000), "lr_ablation_lr0p01": (0.01, 100_000)}
LR_ABLATION_P = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97)
for _name, (_lr, _steps) in LR_ABLATION.items():
    register(TableSpec(
        name=_name, version=1,
        description=f"lr ablation: lr = {_lr:g}, {_steps} steps (lr x steps = 1000); d = 1000, n = 50, m = 20, ||mu|| = 8; "
                    "p from 0 to 0.97 (7 values), 16 seeds a p, the same seeds at every lr",
        axes={"p": LR_ABLATION_P}, seeds=tuple(network_seeds(0, 16, start=45_000)),
        base=Setting(d=1000, n=50, m=20, mu_norm=8.0, lr=_lr, steps=_steps),
    ))


#: ---- chapter 4 on the gradient flow (the theory's regime; the tables above are lr = 1 GD, kept for
#: chapter 2 and for the large-step contrast). Seed blocks 50_000 to 55_000 are fresh: the
#: configurations were chosen on exploratory seeds outside them.

#: The (p, n) phase diagram on the flow: the grid of phase_pn, 20 seeds a cell, t = 3000 (the horizon
#: of phase_pn, lr x steps = 3000), no early stop.
register(TableSpec(
    name="phase_pn_flow", version=1,
    description="fine (p, n) phase diagram on the gradient flow: p on a log(1 - p) grid (21 values, 0 to 0.99), "
                "n from 10 to 160 (9 values, geometric), 20 seeds a cell; d = 1000, m = 20, q = 3, ||mu|| = 8, t = 3000",
    axes={"p": PHASE_PN_P, "n": PHASE_PN_N}, seeds=tuple(network_seeds(0, 20, start=50_000)),
    base=Setting(d=1000, m=20, q=3.0, mu_norm=8.0, dynamics="flow", t_end=3000.0),
))

#: The race boundary's scaling at q = 4 on the flow (q = 3 is phase_pn_flow at p <= 0.9).
SCALING_FLOW_N = (*PHASE_PN_N, 226)
register(TableSpec(
    name="scaling_q4_flow", version=1,
    description="race boundary scaling on the gradient flow: (p, n) grid, p = 0 to 0.9 on a log(1 - p) grid "
                "(11 values), n = 10 to 226 (10 values), 12 seeds a cell; q = 4, d = 1000, m = 20, ||mu|| = 9.5, t = 3000",
    axes={"p": SCALING_P, "n": SCALING_FLOW_N}, seeds=tuple(network_seeds(0, 12, start=51_000)),
    base=Setting(d=1000, m=20, q=4.0, mu_norm=9.5, dynamics="flow", t_end=3000.0),
))

#: The (p, ||mu||) phase diagram on the flow at n = 50.
PHASE_PMU_P = PHASE_PN_P[::2]  # 1 - p = 10^(-k/5), k = 0..10: p = 0 to 0.99
PHASE_PMU_MU = (4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0, 17.0, 20.0)
register(TableSpec(
    name="phase_pmu_flow", version=1,
    description="(p, ||mu||) phase diagram on the gradient flow: p on a log(1 - p) grid (11 values, 0 to 0.99), "
                "||mu|| from 4 to 20 (10 values), 8 seeds a cell; d = 1000, m = 20, n = 50, q = 3, t = 3000",
    axes={"p": PHASE_PMU_P, "mu_norm": PHASE_PMU_MU}, seeds=tuple(network_seeds(0, 8, start=52_000)),
    base=Setting(d=1000, m=20, n=50, q=3.0, dynamics="flow", t_end=3000.0),
))

#: Finding 2 over every network, in the over-parameterized regime: m = 100, so that a network lacks
#: a usable neuron in some class with probability about 2 ((1 + p)/2)^m <= 6e-5 for p <= 0.8; each
#: network stops when its training loss reaches the book's target 1e-2 (matched training loss).
#: The same seeds at m = 12 (the same training data) show what selection on usable neurons hides.
FINDING2_P = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
FINDING2_SEEDS = tuple(network_seeds(0, 32, start=53_000))
for _name, _m in (("finding2_flow", 100), ("finding2_m12_flow", 12)):
    register(TableSpec(
        name=_name, version=1,
        description=f"finding 2 on the gradient flow at matched training loss: d = 2000, m = {_m}, n = 50, "
                    "||mu|| = 15, stop at training loss 1e-2 (t <= 1000); p from 0 to 0.8 (9 values), 32 seeds a p",
        axes={"p": FINDING2_P}, seeds=FINDING2_SEEDS,
        base=Setting(d=2000, m=_m, n=50, mu_norm=15.0, dynamics="flow", t_end=1000.0, stop_loss=LOSS_TARGET),
    ))

#: Finding 3 on the flow, in finding3's configuration (d = 5000, m = 10, n = 50, ||mu|| = 18):
#: t = 2000 (the horizon of lr = 0.1 x 20000 steps), 100 fresh seeds a p.
register(TableSpec(
    name="finding3_flow", version=1,
    description="finding 3 on the gradient flow with (1 - p) d >> n: d = 5000, m = 10, n = 50, ||mu|| = 18, "
                "sigma_0 = 0.0045, t = 2000; p from 0 to 0.97 (10 values), 100 seeds a p",
    axes={"p": FINDING3_P}, seeds=tuple(network_seeds(0, 100, start=55_000)),
    base=Setting(d=5000, m=10, n=50, mu_norm=18.0, sigma_0=0.0045, dynamics="flow", t_end=2000.0),
))

#: The lr ablation's limit: the flow on the lr ablation's 16 seeds and grid (t = 1000 = lr x steps).
register(TableSpec(
    name="lr_ablation_flow", version=1,
    description="lr ablation, the flow (lr -> 0): t = 1000; d = 1000, n = 50, m = 20, ||mu|| = 8; "
                "p from 0 to 0.97 (7 values), 16 seeds a p, the seeds of the lr tables",
    axes={"p": LR_ABLATION_P}, seeds=tuple(network_seeds(0, 16, start=45_000)),
    base=Setting(d=1000, n=50, m=20, mu_norm=8.0, dynamics="flow", t_end=1000.0),
))


# ---- chapter 5 and 6 tables ----

#: Chapter 5's dense-signal ablation: random pruning with a sparse and a dense signal at two signal
#: norms, on the gradient flow to t = 1000 (chapter 4's configuration otherwise); 40 seeds, the
#: block after the 100 seeds chapter 5 prunes with every criterion (paired across p, signal, norm).
CRITERIA_DENSE_P = (0.0, 0.5, 0.8, 0.9, 0.95, 0.97)
register(TableSpec(
    name="criteria_dense_ablation", version=1,
    description="dense-signal ablation: sparse and dense signal, ||mu|| = 8 and 12, p from 0 to 0.97 (6 values), "
                "40 seeds; d = 1000, n = 50, m = 20, q = 3, gradient flow to t = 1000 (rtol 1e-4)",
    axes={"p": CRITERIA_DENSE_P, "signal": ("sparse", "dense"), "mu_norm": (8.0, 12.0)},
    seeds=tuple(network_seeds(0, 40, start=100)),
    base=Setting(d=1000, n=50, m=20, q=3.0, mu_norm=8.0, dynamics="flow", t_end=1000.0),
))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m prunebook.book.precomputed", description=__doc__,
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
