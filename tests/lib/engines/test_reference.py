"""The plain reference step (chapter 3) against the fast engine, in float64."""


import pytest
import torch

import prunebook as pb

from conftest import small_problem

D, N, M_NEURONS = 200, 20, 8
STEPS = 300


def problem(p, seed, signal="sparse", q=3):
    W0, M, ds = small_problem(n=N, d=D, m=M_NEURONS, p=p, seed=seed, signal=signal, mu_norm=6.0, sigma_0=0.05)
    return W0, M, ds


def rel_margin_gap(Wa, Wb, M, mu, q, seed):
    fresh = pb.sample_data(500, mu, seed=seed)
    fa = fresh.y * pb.forward(Wa, M, fresh.X, q)
    fb = fresh.y * pb.forward(Wb, M, fresh.X, q)
    return float((fa - fb).abs().max() / fa.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("signal", ["sparse", "dense"])
@pytest.mark.parametrize("p", [0.0, 0.6, 0.97])
@pytest.mark.parametrize("q", [1, 3])
def test_reference_step_equals_the_fast_engine(p, q, signal):
    """Chapter 3's plain step, network by network, against the engine's recorded (gamma, rho)."""
    from prunebook.engines.reference import reference_run

    W0, M, ds = problem(p, seed=21, signal=signal)
    lr, steps = (0.5 if q == 1 else 2.0), 120
    fast = pb.train(W0, M, ds.X, ds.y, q=q, lr=lr, steps=steps, engine="coefficients", record=("gamma", "rho"),
                    record_every=steps)
    gamma, rho = reference_run(W0, M, ds.mu, ds.xi, ds.y, q=q, lr=lr, steps=steps)
    scale = float(fast.rho[-1].abs().max()) + float(fast.gamma[-1].abs().max())
    assert scale > 0.1, "the run must move"
    torch.testing.assert_close(gamma, fast.gamma[-1], rtol=0, atol=1e-10 * scale)
    torch.testing.assert_close(rho, fast.rho[-1], rtol=0, atol=1e-10 * scale)
