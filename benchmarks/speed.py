"""The engine against a plain per-network autograd loop, one run, one machine (a benchmark, not a test).

    .venv/bin/python benchmarks/speed.py [--device cpu|cuda] [--skip-phase] [--repeat 3]

1. Same 48-network grid (d = 1000, n = 50, m = 20, q = 3, 200 GD steps, p from 0 to 0.95, float32)
   trained three ways: a plain autograd loop over networks, the batched weights engine and the
   batched coefficient engine. Goal: the engine at least 20 times faster than the loop.
   The three run ``--repeat`` times, interleaved, and the best time of each is compared (every
   time is printed too): on a shared machine, noise slows whichever method it happens to hit.
2. Achieved GFLOP/s of each engine (counting the matrix products) against a large matmul measured
   in the same run.
3. The wall time of chapter 4's headline (p, n) phase diagram at book settings.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import prunebook as pb
from prunebook.engine_coefficients import basis_width
from prunebook.experiment import Setting, build_batch
from prunebook.activation import activation


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return out, best


def autograd_loop(W0, M, X, y, q, lr, steps):
    """The reference a reader would write: one network at a time, torch.autograd, no batching."""
    finals = []
    for b in range(W0.shape[0]):
        W = W0[b].clone().requires_grad_(True)
        for _ in range(steps):
            Z = torch.einsum("jrd,npd->npjr", W * M[b], X[b])
            F = activation(Z, q).sum(dim=(1, 3)) / W.shape[1]
            f = F[:, 0] - F[:, 1]
            L = torch.nn.functional.softplus(-y[b] * f).mean()
            (g,) = torch.autograd.grad(L, W)
            with torch.no_grad():
                W -= lr * g
        finals.append(W.detach())
    return torch.stack(finals)


def matmul_gflops(device, size=2048, repeat=5):
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    _, t = timed(lambda: a @ b, device, repeat)
    return 2 * size**3 / t / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-phase", action="store_true", help="skip the phase-diagram timing")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats of each method (best is kept)")
    args = ap.parse_args()
    device = torch.device(args.device)
    B, steps = 48, 200
    s = Setting(d=1000, n=50, m=20, q=3, steps=steps)
    W0, M, ds = build_batch(s, list(np.linspace(0, 0.95, B)), list(range(B)), device=device)
    X, y = ds.X.to(device), ds.y.to(device)
    d, n, m = s.d, s.n, s.m

    kw = dict(q=s.q, lr=s.lr, steps=steps, record="loss", record_every=steps)
    methods = {
        "loop": lambda: autograd_loop(W0, M, X, y, s.q, s.lr, steps),
        "weights": lambda: pb.train(W0, M, X, y, engine="weights", **kw).W,
        "coefficients": lambda: pb.train(W0, M, X, y, engine="coefficients", **kw).W,
    }
    # interleaved repeats, best of each: a shared VM's noise hits every method alike
    times: dict[str, list[float]] = {k: [] for k in methods}
    out = {}
    for _ in range(args.repeat):
        for name, fn in methods.items():
            out[name], t = timed(fn, device)
            times[name].append(t)
    t_loop, t_w, t_c = (min(times[k]) for k in methods)
    fresh = pb.sample_data(2000, ds.mu[0].cpu(), seed=1).X.to(device)
    f_ref = pb.forward(out["loop"], M, fresh, s.q)
    gap = max(float(((pb.forward(out[k], M, fresh, s.q) - f_ref).abs().amax(-1) / f_ref.abs().amax(-1)).max())
              for k in ("weights", "coefficients"))

    flop_w = B * steps * 2 * (2 * 2 * n * d * 2 * m)  # forward and backward matmuls
    # the coefficient engine's products as it performs them: Gram matrices over the smaller side of
    # each mask, h0 and the final weights, one [1 x w] @ [w x w] product per neuron and step
    w = basis_width(n)
    kept = M.reshape(B, 2 * m, d).sum(-1)
    side = torch.minimum(kept, d - kept).amax(-1).sum().item()
    flop_c = 2 * m * w * w * 2 * side + B * (2 * 2 * m * w * d * 2 + (steps + 1) * 2 * m * w * w * 2)
    peak = matmul_gflops(device)
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; grid: {B} networks, "
          f"d={d} n={n} m={m} q=3, {steps} steps, p in [0, 0.95], float32")
    print(f"best of {args.repeat} interleaved runs each; all runs (s): "
          + "; ".join(f"{k} " + " ".join(f"{t:.2f}" for t in v) for k, v in times.items()))
    print(f"{'method':<34}{'seconds':>9}{'speed-up':>10}{'GFLOP/s':>10}")
    print(f"{'autograd loop, one network at a time':<34}{t_loop:>9.2f}{1.0:>10.1f}{flop_w / t_loop / 1e9:>10.1f}")
    print(f"{'weights engine, batched':<34}{t_w:>9.2f}{t_loop / t_w:>10.1f}{flop_w / t_w / 1e9:>10.1f}")
    print(f"{'coefficient engine, batched':<34}{t_c:>9.2f}{t_loop / t_c:>10.1f}{flop_c / t_c / 1e9:>10.1f}")
    print(f"{'large matmul (2048^3), same run':<34}{'':>9}{'':>10}{peak:>10.1f}")
    print(f"largest relative margin gap to the autograd loop (float32): {gap:.1e}")
    print(f"(the coefficient engine does {flop_w / flop_c:.0f}x fewer FLOPs than the loop; its GFLOP/s counts only those)")
    if not args.skip_phase:
        from prunebook.sweep import sweep

        axes = {"p": [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99], "n": [10, 20, 40, 80, 160]}
        _, t_phase = timed(lambda: sweep(axes, [100, 101, 102], base=Setting(steps=1000), progress=False, device=device), device)
        print(f"chapter 4 headline phase diagram ((p, n): 9 x 5 cells x 3 seeds = 135 networks, 1000 steps, "
              f"test error on 2000 fresh samples each): {t_phase:.1f} s")


if __name__ == "__main__":
    main()
