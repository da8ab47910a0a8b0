import pytest
import torch

import prunebook as pb


def test_sparse_sample_structure():
    mu = pb.signal_vector(50, 3.0, dtype=torch.float64)
    assert mu[0] == 3.0 and mu[1:].abs().sum() == 0
    ds = pb.sample_data(400, mu, sigma_p=2.0, seed=1)
    assert ds.X.shape == (400, 2, 50) and ds.y.shape == (400,) and ds.xi.shape == (400, 50)
    assert set(ds.y.tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(ds.X[:, 0], ds.y[:, None] * mu)
    torch.testing.assert_close(ds.X[:, 1], ds.xi)
    assert float((ds.xi @ mu).abs().max()) < 1e-12  # noise orthogonal to the signal
    # covariance sigma_p^2 (I - u u^T): per-coordinate variance 4 off the signal coordinate
    var = ds.xi[:, 1:].var(dim=0).mean()
    assert abs(float(var) - 4.0) < 0.2
    # labels are balanced-ish
    assert abs(float(ds.y.mean())) < 0.15


def test_dense_signal_is_on_the_sphere_and_noise_orthogonal():
    mu = pb.signal_vector(64, 5.0, kind="dense", seed=3, dtype=torch.float64)
    assert abs(float(mu.norm()) - 5.0) < 1e-12
    assert (mu != 0).sum() > 50
    ds = pb.sample_data(30, mu, seed=0)
    assert float((ds.xi @ mu).abs().max()) < 1e-10
    with pytest.raises(ValueError, match="seed"):
        pb.signal_vector(64, 5.0, kind="dense")


def test_same_seed_same_data_across_dtypes():
    mu32 = pb.signal_vector(20, 2.0)
    mu64 = pb.signal_vector(20, 2.0, dtype=torch.float64)
    a = pb.sample_data(10, mu32, seed=7)
    b = pb.sample_data(10, mu64, seed=7)
    c = pb.sample_data(10, mu64, seed=8)
    assert a.X.dtype == torch.float32 and b.X.dtype == torch.float64
    torch.testing.assert_close(a.X, b.X.float())
    assert not torch.equal(b.X, c.X)


def test_stack_datasets():
    mu = pb.signal_vector(8, 1.0)
    ds = pb.stack_datasets([pb.sample_data(5, mu, seed=s) for s in range(3)])
    assert ds.X.shape == (3, 5, 2, 8)
    with pytest.raises(ValueError, match="datasets"):
        pb.stack_datasets([pb.sample_data(5, mu, seed=0), pb.sample_data(6, mu, seed=0)])
