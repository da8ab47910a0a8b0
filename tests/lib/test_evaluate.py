"""The two test-error estimators: projected (2m-dimensional draws) against d-dimensional samples."""

import numpy as np
import pytest
import torch

import prunebook as pb
from prunebook import evaluate
from prunebook.experiment import Setting, grid, run


@pytest.fixture(scope="module")
def trained():
    """Networks from every regime: memorizing, learning, over-pruned, sparse and dense signal."""
    runs = []
    for signal in ("sparse", "dense"):
        s = Setting(d=300, n=20, m=6, steps=150, mu_norm=5.0, signal=signal)
        ps, seeds = grid([0.0, 0.6, 0.9, 0.97], range(5))
        runs.append(run(s, ps, seeds))
    return runs


def test_projected_agrees_with_samples_within_sampling_error(trained):
    z = []
    for r in trained:
        seeds = list(range(100, 100 + len(r.ps)))
        kw = dict(q=3, n_test=6000, seed=seeds)
        a = pb.test_error(r.result.W, r.M, r.data.mu, **kw).double().numpy()
        b = pb.test_error(r.result.W, r.M, r.data.mu, method="samples", **kw).double().numpy()
        se = np.sqrt((a * (1 - a) + b * (1 - b)) / 6000)
        z += list(((a - b) / np.where(se > 0, se, 1))[se > 0])
        assert np.all(a[se == 0] == b[se == 0])  # both exactly 0 (or 1) where neither sees an error
    z = np.array(z)
    assert len(z) >= 20, "the fixture must produce networks with non-trivial errors"
    assert np.abs(z).max() < 4.0 and abs(z.mean()) < 3.0 / np.sqrt(len(z)) * 1.5, z
    assert 0.4 < z.std() < 1.6, z.std()


def test_estimates_depend_only_on_the_network_and_its_seed(trained):
    r = trained[0]
    seeds = list(range(len(r.ps)))
    full = pb.test_error(r.result.W, r.M, r.data.mu, q=3, seed=seeds)
    part = pb.test_error(r.result.W[3:7], r.M[3:7], r.data.mu[3:7], q=3, seed=seeds[3:7])
    assert torch.equal(full[3:7], part)
    other = pb.test_error(r.result.W, r.M, r.data.mu, q=3, seed=[s + 1000 for s in seeds])
    assert not torch.equal(full, other)
    assert bool(((full >= 0) & (full <= 1)).all())


def test_noise_levels_per_network(trained):
    r = trained[0]
    seeds = list(range(len(r.ps)))
    sig = [0.5 if k % 2 else 2.0 for k in range(len(seeds))]
    mixed = pb.test_error(r.result.W, r.M, r.data.mu, q=3, seed=seeds, sigma_p=sig)
    for level in (0.5, 2.0):
        rows = [k for k in range(len(seeds)) if sig[k] == level]
        alone = pb.test_error(r.result.W[rows], r.M[rows], r.data.mu[rows], q=3, seed=[seeds[k] for k in rows], sigma_p=level)
        assert torch.equal(mixed[rows], alone)


def test_samples_method_with_a_test_size_not_a_multiple_of_its_block(trained, monkeypatch):
    """2001 samples in blocks of 700: every sample counted once, with its weight, as by hand."""
    from prunebook.seeds import generator

    r = trained[0]
    W, M, mu = r.result.W[:2], r.M[:2], r.data.mu[0]
    monkeypatch.setattr(evaluate, "SAMPLE_BLOCK", 700)
    got = pb.test_error(W, M, mu, q=3, n_test=2001, seed=5, method="samples")
    g = generator(5)
    blocks = [pb.sample_data(k, mu, generator=g) for k in (700, 700, 601)]
    X = torch.cat([b.X for b in blocks])
    y = torch.cat([b.y for b in blocks])
    torch.testing.assert_close(got, pb.classification_error(W, M, X, y, 3), rtol=0, atol=1e-6)
    assert got.shape == (2,)


@pytest.mark.parametrize("kw, arg", [(dict(n_test=1999), "n_test"), (dict(method="exact"), "method"),
                                     (dict(seed=[1, 2]), "seed"), (dict(sigma_p=-1.0), "sigma_p")])
def test_bad_arguments(trained, kw, arg):
    r = trained[0]
    args = dict(q=3, seed=3)
    args.update(kw)
    with pytest.raises(ValueError, match=f"^{arg}:"):
        pb.test_error(r.result.W[0], r.M[0], r.data.mu[0], **args)
