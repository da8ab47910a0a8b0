import numpy as np
import pytest
import torch

import prunebook as pb
from prunebook import theory


def test_snr_p_formula_and_monotonicity():
    assert theory.snr_p(8.0, 1.0, 1000, 0.0) == pytest.approx(8 / np.sqrt(1000))
    assert theory.snr_p(8.0, 1.0, 1000, 0.75) == pytest.approx(8 / np.sqrt(250))
    ps = np.linspace(0, 0.99, 20)
    assert np.all(np.diff(theory.snr_p(8.0, 1.0, 1000, ps)) > 0)
    assert theory.n_snr_q(50, 8.0, 1.0, 1000, 0.5, 3) == pytest.approx(50 * (8 / np.sqrt(500)) ** 3)


def test_noise_norm_seen_by_a_pruned_neuron():
    d, p, sigma_p = 800, 0.6, 1.5
    mu = pb.signal_vector(d, 3.0)
    ds = pb.sample_data(500, mu, sigma_p=sigma_p, seed=2)
    M = pb.random_mask((2, 50, d), p, seed=3)
    seen = ((ds.xi[:, None, None, :] * M) ** 2).sum(-1).mean(0)  # [2, 50]: E||xi ⊙ m||^2 per neuron
    kept = M[..., 1:].sum(-1)  # the signal coordinate carries no noise
    torch.testing.assert_close(seen, kept * sigma_p**2, rtol=0.12, atol=0)  # 500 samples per neuron
    # averaged over 100 neurons, the heuristic (1 - p) d sigma_p^2 (sd of the mean about 0.5%)
    assert seen.mean().item() == pytest.approx((1 - p) * d * sigma_p**2, rel=0.03)


def test_pmf_sums_to_one():
    assert theory.signal_neuron_pmf(20, 0.9).sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="p"):
        theory.signal_neuron_pmf(20, 1.0)
