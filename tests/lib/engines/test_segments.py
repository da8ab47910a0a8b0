"""GD in segments recorded at different spacings: one trajectory."""


import pytest
import torch

import prunebook as pb
from prunebook.engines.segments import train_segments

from conftest import small_problem


def test_train_segments_is_one_trajectory():
    W0, M, ds = small_problem(n=10, d=60, m=4, p=0.5, seed=3, mu_norm=4.0, sigma_0=0.1)
    lr = 0.3
    whole = pb.train(W0, M, ds.X, ds.y, q=3, lr=lr, steps=50, engine="coefficients",
                     record=("loss", "train_error", "gamma", "rho"), record_every=1)
    seg = train_segments(W0, M, ds.X, ds.y, q=3, lr=lr, segments=[(20, 1), (30, 5)])
    assert seg.steps.tolist() == list(range(21)) + list(range(25, 51, 5))
    idx = seg.steps.long()
    torch.testing.assert_close(seg.W, whole.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(seg.gamma, whole.gamma[idx], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(seg.rho, whole.rho[idx], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(seg.loss, whole.loss[idx], rtol=1e-9, atol=1e-14)
    assert torch.equal(seg.train_error, whole.train_error[idx])
    assert float(whole.gamma[-1].abs().max()) > 0.1, "the run must move"
    with pytest.raises(ValueError, match="segments"):
        train_segments(W0, M, ds.X, ds.y, q=3, lr=lr, segments=[])
    with pytest.raises(ValueError, match="segments"):
        train_segments(W0, M, ds.X, ds.y, q=3, lr=lr, segments=[(10, 0)])
