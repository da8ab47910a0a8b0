"""Sweep throughput: the book's largest phase diagram and the finding-3 workload (a benchmark, not a test).

    .venv/bin/python benchmarks/sweep_speed.py [--cold] [--repeat 2] [--device cpu|cuda]

1. A (p, n) phase diagram through the public ``sweep`` API, no cache directory, test error
   included (the book's 10000 fresh samples a network, or
   ``--n-test``): p 25 values evenly spaced in [0, 0.98],
   n = round(geomspace(10, 160, 12)), seeds 0-4, ``Setting(d=1000, m=20, mu_norm=8, steps=1000)``:
   1500 networks. The whole call is timed (compilation included: ``--cold`` points numba at an
   empty cache directory first, so the kernel is compiled inside the timed call). Goal: <= 30 s on
   2 cores.
2. The finding-3 configuration of chapter 4: 64 networks (8 pruning fractions x 8 seeds),
   d = 5000, m = 10, n = 50, ||mu|| = 18, sigma_0 = 0.0045, lr = 0.1, 20000 steps.
3. A large matmul's GFLOP/s, measured in the same run, for scale.
Each workload runs ``--repeat`` times, interleaved; every time is printed and the best is compared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold", action="store_true", help="compile the kernel inside the first timed call")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-finding3", action="store_true")
    ap.add_argument("--n-test", type=int, default=None,
                    help="fresh test samples a network (default: the book's DEFAULT_TEST_SIZE; at least MIN_TEST_SIZE)")
    args = ap.parse_args()
    if args.cold:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")  # before numba is imported
    import numpy as np
    import torch

    from prunebook.conventions import DEFAULT_TEST_SIZE
    from prunebook.experiment import Setting
    from prunebook.sweep import sweep

    from speed import matmul_gflops

    device = torch.device(args.device)
    n_test = DEFAULT_TEST_SIZE if args.n_test is None else args.n_test
    phase_axes = {"p": [float(p) for p in np.linspace(0, 0.98, 25)],
                  "n": [int(v) for v in np.round(np.geomspace(10, 160, 12))]}
    phase_base = Setting(d=1000, m=20, mu_norm=8.0, steps=1000)
    f3_axes = {"p": [0.0, 0.5, 0.7, 0.8, 0.9, 0.93, 0.95, 0.97]}
    f3_base = Setting(d=5000, m=10, n=50, mu_norm=18.0, sigma_0=0.0045, lr=0.1, steps=20000)
    workloads = {"phase diagram (1500 networks)": (phase_axes, range(5), phase_base)}
    if not args.skip_finding3:
        workloads["finding 3 (64 networks, 20000 steps)"] = (f3_axes, range(8), f3_base)
    times = {k: [] for k in workloads}
    tables = {}
    for _ in range(args.repeat):
        for name, (axes, seeds, base) in workloads.items():
            t = time.perf_counter()
            tables[name] = sweep(axes, seeds, base=base, progress=False, device=device, n_test=n_test)
            times[name].append(time.perf_counter() - t)
    peak = matmul_gflops(device)
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
          f"kernel cache: {'cold (compiled in the first call)' if args.cold else 'as found'}, "
          f"{n_test} fresh test samples a network")
    for name, ts in times.items():
        best = min(ts)
        df = tables[name]
        print(f"{name}: best {best:.1f} s, {len(df) / best:.0f} networks/s; all runs " + " ".join(f"{t:.1f}" for t in ts)
              + f"; converged {df.converged.mean():.0%}")
    print(f"large matmul (2048^3), same run: {peak:.0f} GFLOP/s")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
