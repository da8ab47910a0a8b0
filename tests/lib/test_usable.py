"""Usable neurons (kept signal coordinate and the right initial sign) and the over-pruning law."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

import prunebook as pb
from prunebook import theory
from prunebook.stats import wilson_interval


def _usable_by_loops(W0, M, mu):
    """Counts [B, 2] computed element by element, without the package's tensor code."""
    B, _, m, d = W0.shape
    out = np.zeros((B, 2), dtype=int)
    for b in range(B):
        for c, j in enumerate((1.0, -1.0)):
            for r in range(m):
                keeps = any(float(M[b, c, r, k]) * float(mu[k]) != 0 for k in range(d))
                overlap = sum(float(W0[b, c, r, k]) * float(M[b, c, r, k]) * float(mu[k]) for k in range(d))
                out[b, c] += keeps and j * overlap > 0
    return out


@pytest.mark.parametrize("signal", ["sparse", "dense"])
def test_usable_neurons_against_loops(signal):
    B, m, d = 6, 5, 7
    mu = pb.signal_vector(d, 3.0, kind=signal, seed=4 if signal == "dense" else None, dtype=torch.float64)
    W0 = torch.stack([pb.init_weights(m, d, 0.5, seed=10 + b, dtype=torch.float64) for b in range(B)])
    M = pb.random_mask((B, 2, m, d), 0.5, seed=3, dtype=torch.float64)
    counts = pb.usable_neurons(W0, M, mu)
    assert counts.shape == (B, 2) and not counts.is_floating_point()
    np.testing.assert_array_equal(counts.numpy(), _usable_by_loops(W0, M, mu))
    # flipping every initial weight swaps usable and wrong-sign among the neurons that keep the signal
    kept = pb.signal_neuron_counts(M, mu)
    np.testing.assert_array_equal((pb.usable_neurons(-W0, M, mu) + counts).numpy(), kept.numpy())


def test_prob_no_usable_neuron_against_enumeration():
    # every neuron independently: pruned coordinate (p), kept with the wrong sign or usable ((1 - p)/2 each)
    for m, p in [(1, 0.0), (1, 0.6), (2, 0.3), (2, 0.9), (3, 0.75)]:
        states = {"pruned": p, "wrong": (1 - p) / 2, "usable": (1 - p) / 2}
        total = sum(math.prod(states[s] for s in combo) for combo in itertools.product(states, repeat=2 * m)
                    if "usable" not in combo)
        assert theory.prob_no_usable_neuron(p, m) == pytest.approx(total, rel=1e-12)
    ps = np.array([0.0, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(theory.prob_no_usable_neuron(ps, 20), sps.binom.pmf(0, 40, (1 - ps) / 2), rtol=1e-12)
    pmf = theory.usable_neuron_pmf(20, 0.9)
    assert theory.prob_no_usable_neuron(0.9, 20) == pytest.approx(pmf[0] ** 2)  # the two classes are independent
    with pytest.raises(ValueError, match="p"):
        theory.prob_no_usable_neuron(1.0, 20)
    with pytest.raises(ValueError, match="m"):
        theory.prob_no_usable_neuron(0.5, 0)


def test_overpruning_fraction_solves_the_law_and_is_near_one_minus_ln2_over_m():
    for m in (1, 2, 5, 20, 100, 1000):
        p_half = theory.overpruning_fraction(m)
        assert theory.prob_no_usable_neuron(p_half, m) == pytest.approx(0.5, rel=1e-12)
        gap = p_half - (1 - math.log(2) / m)  # = (ln 2)^2 / (4 m^2) + O(1/m^3)
        assert 0 < gap < 0.13 / m**2
    assert theory.prob_no_usable_neuron(theory.overpruning_fraction(20, 0.1), 20) == pytest.approx(0.1)


@pytest.mark.parametrize("m, p", [(20, 0.9), (20, 0.95), (20, 0.97), (10, 0.9), (5, 0.6)])
def test_networks_without_a_usable_neuron_at_initialization_match_the_law(m, p):
    """The fraction of random networks (initial weights and masks) with no usable neuron lies in the
    99% Wilson interval around ((1 + p)/2)^(2m). Only coordinate 1 matters for the sparse signal."""
    N = 40_000
    W0 = pb.init_weights(m, N, 0.01, seed=1000 + m, dtype=torch.float64).permute(2, 0, 1)[..., None]  # [N, 2, m, 1]
    M = pb.random_mask((N, 2, m, 1), p, seed=2000 + m, dtype=torch.float64)
    mu = pb.signal_vector(1, 8.0, dtype=torch.float64)
    counts = pb.usable_neurons(W0, M, mu)  # [N, 2]
    none = int((counts.sum(-1) == 0).sum())
    lo, hi = wilson_interval(none, N, level=0.99)
    assert lo <= theory.prob_no_usable_neuron(p, m) <= hi, (none / N, theory.prob_no_usable_neuron(p, m))
    # and per class the counts are Binomial(m, (1 - p)/2)
    freq = np.bincount(counts.flatten().numpy(), minlength=m + 1) / counts.numel()
    assert np.abs(freq - theory.usable_neuron_pmf(m, p)).max() < 0.01


def test_the_law_holds_for_full_networks_built_by_the_experiment():
    """Networks as the chapters build them (d = 200, nested masks over p from one seed)."""
    from prunebook.experiment import Setting, build_batch

    setting = Setting(d=200, n=4, m=5)
    seeds = list(range(3000))
    W0, M, ds = build_batch(setting, [0.8] * len(seeds), seeds, dtype=torch.float64)
    none = int((pb.usable_neurons(W0, M, ds.mu).sum(-1) == 0).sum())
    lo, hi = wilson_interval(none, len(seeds), level=0.99)
    assert lo <= theory.prob_no_usable_neuron(0.8, 5) <= hi
