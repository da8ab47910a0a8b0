"""Per-step time of the two training engines (a benchmark, not a test).

    .venv/bin/python benchmarks/engines.py [--batch 64] [--steps 200] [--device cpu]

Setting: d = 1000, n = 50, m = 20, q = 3, float32, a batch of networks with p spread over [0, 0.95].
Prints the per-step time of each engine, the one-off set-up of the coefficient engine, and the
largest relative disagreement of the two engines' margins on fresh inputs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import prunebook as pb
from prunebook.experiment import Setting, build_batch


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    s = Setting(d=1000, n=50, m=20, q=3, steps=args.steps)
    ps = list(np.linspace(0, 0.95, args.batch))
    W0, M, ds = build_batch(s, ps, list(range(args.batch)), device=device)
    X, y = ds.X.to(device), ds.y.to(device)
    kw = dict(q=s.q, lr=s.lr, steps=args.steps, record="loss", record_every=args.steps)
    pb.train(W0[:2], M[:2], X[:2], y[:2], q=s.q, lr=s.lr, steps=2)  # warm-up
    rw, tw = timed(lambda: pb.train(W0, M, X, y, engine="weights", **kw), device)
    _, t_setup = timed(lambda: pb.train(W0, M, X, y, engine="coefficients", **{**kw, "steps": 0}), device)
    rc, tc = timed(lambda: pb.train(W0, M, X, y, engine="coefficients", **kw), device)
    fresh = pb.sample_data(2000, ds.mu[0].cpu(), seed=123)
    fx = fresh.X.to(device)
    fw = pb.forward(rw.W, M, fx, s.q)
    fc = pb.forward(rc.W, M, fx, s.q)
    gap = float(((fw - fc).abs().amax(-1) / fw.abs().amax(-1)).max())
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, d={s.d} n={s.n} m={s.m}, float32, {args.steps} steps")
    print(f"{'engine':<14}{'total s':>10}{'ms/step':>10}{'network-steps/s':>18}")
    for name, t, setup in (("weights", tw, 0.0), ("coefficients", tc, t_setup)):
        per = (t - setup) / args.steps
        print(f"{name:<14}{t:>10.3f}{1e3 * per:>10.3f}{args.batch / per:>18.0f}")
    print(f"coefficient set-up (Gram matrices): {t_setup:.3f} s; speed-up per step: {(tw / args.steps) / ((tc - t_setup) / args.steps):.1f}x")
    print(f"largest relative margin gap between engines (float32): {gap:.2e}")


if __name__ == "__main__":
    main()
