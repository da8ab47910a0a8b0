"""The gradient flow against GD, on the same networks (a benchmark that prints its figures, not a test).

    .venv/bin/python benchmarks/flow_speed.py [--repeat 2] [--skip-small-lr] [--skip-sweep]

1. **Engines**: 64 networks (p in {0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97} x 8 seeds; d = 1000,
   n = 50, m = 20, ||mu|| = 8, float32), horizon t = 1000 (= lr x steps): the flow (early stop off)
   against GD at lr = 1 (1000 steps) and at lr = 0.02 (50000 steps), whole calls timed, best of
   ``--repeat``; gradient evaluations per network (median, max).
2. **The pair**: both embedded pairs at rtol 1e-3 to 1e-6 on 16 of these networks in float64, each
   with its evaluations, time and largest relative distance of the final weights from the flow at
   rtol 1e-10 (the accuracy the method buys per evaluation).
3. **Cold compile**: the flow kernel compiled from an empty numba cache in a fresh process (what
   Colab and CI pay once per dtype), against the same call with the cache warm.
4. **Phase diagram**: the 1500-network (p, n) diagram of ``benchmarks/sweep_speed.py`` (25 p in
   [0, 0.98] x 12 n from 10 to 160 x 5 seeds, d = 1000, m = 20, ||mu|| = 8) through ``sweep`` on
   the flow (t_end = 1000, early stop off), test error included, at 2000 and 10000 test samples.
   Goal: <= 30 s on two cores at 2000.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

COLD = """
import os, time, torch
t = time.perf_counter()
import prunebook as pb
from prunebook.experiment import Setting, build
W0, M, ds = build(Setting(d=200, n=10, m=4), 0.5, 1, dtype=torch.{dtype})
t0 = time.perf_counter()
pb.flow(W0, M, ds.X, ds.y, t_end=10.0)
t1 = time.perf_counter()
pb.flow(W0, M, ds.X, ds.y, t_end=10.0)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-small-lr", action="store_true", help="leave out GD at lr = 0.02 (about a minute)")
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()
    import numpy as np
    import torch

    import prunebook as pb
    from prunebook.experiment import Setting, build_batch, grid
    from prunebook.sweep import sweep

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    ps, seeds = grid([0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97], list(range(8)))
    W0, M, ds = build_batch(Setting(), ps, seeds)
    pb.flow(W0[:2], M[:2], ds.X[:2], ds.y[:2], t_end=1.0)  # load the kernels
    pb.train(W0[:2], M[:2], ds.X[:2], ds.y[:2], lr=1.0, steps=2, engine="coefficients")

    print("\n1. 64 networks, t = 1000, float32")
    rows = []
    for method in ("BS32", "DP54"):
        t, res = best(lambda: pb.flow(W0, M, ds.X, ds.y, t_end=1000.0, stop_loss=None, method=method), args.repeat)
        ev = res.evaluations.double()
        rows.append((f"flow {method}, rtol 1e-4", t, f"{ev.median():.0f} / {ev.max():.0f}"))
    t1, _ = best(lambda: pb.train(W0, M, ds.X, ds.y, lr=1.0, steps=1000, engine="coefficients"), args.repeat)
    rows.append(("GD lr = 1, 1000 steps", t1, "1000 / 1000"))
    if not args.skip_small_lr:
        t2, _ = best(lambda: pb.train(W0, M, ds.X, ds.y, lr=0.02, steps=50_000, engine="coefficients"), 1)
        rows.append(("GD lr = 0.02, 50000 steps", t2, "50000 / 50000"))
    print(f"{'run':32s} {'time (s)':>9s} {'vs GD lr=1':>11s} {'evaluations (median / max)':>28s}")
    for name, t, ev in rows:
        print(f"{name:32s} {t:9.2f} {t1 / t:10.1f}x {ev:>28s}")

    print("\n2. the pair: 16 networks (p in {0, 0.5, 0.9, 0.97} x 4 seeds), float64, t = 1000")
    sub = [k for k, p in enumerate(ps) if p in (0.0, 0.5, 0.9, 0.97) and seeds[k] < 4]
    W, Mk, X, y = W0[sub].double(), M[sub].double(), ds.X[sub].double(), ds.y[sub].double()
    ref = pb.flow(W, Mk, X, y, t_end=1000.0, rtol=1e-10, stop_loss=None)
    move = (ref.W - W).flatten(1).norm(dim=-1)
    print(f"{'method':6s} {'rtol':>6s} {'evals median':>13s} {'max':>6s} {'time (s)':>9s} {'max rel. error':>15s} {'median':>9s}")
    for method in ("BS32", "DP54"):
        for rtol in (1e-3, 1e-4, 1e-5, 1e-6):
            t, res = best(lambda: pb.flow(W, Mk, X, y, t_end=1000.0, rtol=rtol, stop_loss=None, method=method),
                          args.repeat)
            err = (res.W - ref.W).flatten(1).norm(dim=-1) / move
            ev = res.evaluations.double()
            print(f"{method:6s} {rtol:6.0e} {ev.median():13.0f} {ev.max():6.0f} {t:9.3f} {err.max():15.2e} {err.median():9.2e}")

    print("\n3. cold compile of the flow kernel (fresh process, empty numba cache)")
    for dtype in ("float32", "float64"):
        env = {**os.environ, "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-cold-")}
        out = subprocess.run([sys.executable, "-c", COLD.format(dtype=dtype)], env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        print(f"{dtype}: first call {float(out[0]):.1f} s, the same call warm {float(out[1]) * 1e3:.0f} ms")

    if args.skip_sweep:
        return
    print("\n4. the 1500-network (p, n) phase diagram through sweep on the flow (t_end = 1000, early stop off)")
    axes = {"p": [float(p) for p in np.linspace(0, 0.98, 25)], "n": [int(v) for v in np.round(np.geomspace(10, 160, 12))]}
    base = Setting(d=1000, m=20, mu_norm=8.0, dynamics="flow", t_end=1000.0)
    for n_test in (2000, 10_000):
        t, df = best(lambda: sweep(axes, range(5), base=base, progress=False, n_test=n_test), args.repeat)
        print(f"n_test {n_test}: best {t:.1f} s ({len(df) / t:.0f} networks/s); evaluations median "
              f"{df.evaluations.median():.0f}, max {df.evaluations.max()}; converged {df.converged.mean():.0%}")


if __name__ == "__main__":
    main()
