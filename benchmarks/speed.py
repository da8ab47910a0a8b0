"""The engine against a plain per-network autograd loop, one run, one machine (a benchmark, not a test).

    .venv/bin/python benchmarks/speed.py [--device cpu|cuda] [--repeat 3]

1. Same 48-network grid (d = 1000, n = 50, m = 20, q = 3, 200 GD steps, p from 0 to 0.95, float32)
   trained three ways: a plain autograd loop over networks, the batched weights engine and the
   batched coefficient engine. Goal: the coefficient engine at least 40 times faster than the loop.
   The three run ``--repeat`` times, interleaved, and the best time of each is compared (every
   time is printed too): on a shared machine, noise slows whichever method it happens to hit.
2. Achieved GFLOP/s of each engine against a large matmul measured in the same run (goal: half of
   it). The coefficient engine's steps are counted at the unpadded width n + 2 (2 m (n+2)^2 multiply-
   adds a network and step), over its time minus its set-up; the set-up (Gram matrices, initial
   pre-activations) is timed and reported on its own line.
(Sweep throughput, the phase diagram and the finding-3 workload: benchmarks/sweep_speed.py.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import prunebook as pb
from prunebook.engines.coefficients import basis_width
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


def coefficient_setup(W0, M, ds, n):
    """What the coefficient engine computes before its first step: the basis, Gram matrices, h0."""
    from prunebook.decomposition import gram_matrices

    B, two, m, d = W0.shape
    width = basis_width(n)
    mu = ds.mu[:, None, :]
    V = torch.cat([mu, ds.xi, -mu, mu.new_zeros(B, width - n - 2, d)], dim=1)
    K = gram_matrices(V, M)
    h0 = ((W0 * M).reshape(B, two * m, d) @ V.mT).reshape(B, two, m, width)
    return K, h0


def matmul_gflops(device, size=2048, repeat=5):
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    _, t = timed(lambda: a @ b, device, repeat)
    return 2 * size**3 / t / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
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
    flop_c = B * steps * 2 * m * 2 * (n + 2) ** 2  # one [1 x (n+2)] @ [(n+2) x (n+2)] product per neuron and step
    setup_times = []
    for _ in range(args.repeat):
        _, t_set = timed(lambda: coefficient_setup(W0, M, ds, n), device)
        setup_times.append(t_set)
    t_setup = min(setup_times)
    peak = matmul_gflops(device)
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; grid: {B} networks, "
          f"d={d} n={n} m={m} q=3, {steps} steps, p in [0, 0.95], float32")
    print(f"best of {args.repeat} interleaved runs each; all runs (s): "
          + "; ".join(f"{k} " + " ".join(f"{t:.2f}" for t in v) for k, v in times.items()))
    print(f"{'method':<34}{'seconds':>9}{'speed-up':>10}{'GFLOP/s':>10}")
    print(f"{'autograd loop, one network at a time':<34}{t_loop:>9.2f}{1.0:>10.1f}{flop_w / t_loop / 1e9:>10.1f}")
    print(f"{'weights engine, batched':<34}{t_w:>9.2f}{t_loop / t_w:>10.1f}{flop_w / t_w / 1e9:>10.1f}")
    print(f"{'coefficient engine, batched':<34}{t_c:>9.2f}{t_loop / t_c:>10.1f}{flop_c / max(t_c - t_setup, 1e-9) / 1e9:>10.1f}")
    print(f"{'  of which set-up (Gram, h0)':<34}{t_setup:>9.2f}")
    print(f"{'large matmul (2048^3), same run':<34}{'':>9}{'':>10}{peak:>10.1f}")
    print(f"largest relative margin gap to the autograd loop (float32): {gap:.1e}")
    print(f"(the coefficient engine's steps do {flop_w / flop_c:.0f}x fewer FLOPs than the loop; its GFLOP/s counts only "
          f"those, over its time minus the set-up)")


if __name__ == "__main__":
    main()
