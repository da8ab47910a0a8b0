import numpy as np
import torch

import prunebook as pb
from prunebook import theory


def test_random_mask_frequency_and_determinism():
    M = pb.random_mask((2, 50, 1000), 0.7, seed=0)
    assert set(M.unique().tolist()) <= {0.0, 1.0}
    kept = float(M.mean())
    assert abs(kept - 0.3) < 4 * np.sqrt(0.3 * 0.7 / M.numel())
    torch.testing.assert_close(M, pb.random_mask((2, 50, 1000), 0.7, seed=0))
    assert not torch.equal(M, pb.random_mask((2, 50, 1000), 0.7, seed=1))
    assert float(pb.random_mask((3, 4), 0.0, seed=0).min()) == 1.0


def test_signal_neuron_counts_are_binomial():
    m, p, trials = 10, 0.6, 4000
    mu = pb.signal_vector(30, 1.0)
    M = pb.random_mask((trials, 2, m, 30), p, seed=4)
    counts = pb.signal_neuron_counts(M, mu)  # [trials, 2]
    assert counts.shape == (trials, 2)
    freq = np.bincount(counts.flatten().numpy(), minlength=m + 1) / counts.numel()
    pmf = theory.signal_neuron_pmf(m, p)
    assert np.abs(freq - pmf).max() < 0.02
    assert abs(counts.float().mean().item() - m * (1 - p)) < 0.05


def test_kept_dimensions_and_neuron_snr():
    d, p = 2000, 0.75
    mu = pb.signal_vector(d, 6.0)
    M = pb.random_mask((2, 40, d), p, seed=5)
    kept = pb.kept_dimensions(M)
    assert abs(kept.float().mean().item() - (1 - p) * d) < 5
    snr = pb.neuron_snr(M, mu, sigma_p=1.0)
    carries = pb.signal_carrying(M, mu)
    torch.testing.assert_close(carries, M[..., 0] == 1)
    assert bool((snr[~carries] == 0).all())
    expected = 6.0 / np.sqrt(kept[carries].numpy())
    np.testing.assert_allclose(snr[carries].numpy(), expected, rtol=1e-6)
    # the heuristic SNR_p is the typical per-neuron SNR of a signal-carrying neuron
    assert abs(snr[carries].mean().item() - theory.snr_p(6.0, 1.0, d, p)) / theory.snr_p(6.0, 1.0, d, p) < 0.03
