"""The gram engine (GD on the patch basis, any data) against the weights engine."""

import pytest
import torch

import prunebook as pb
from prunebook.seeds import generator


def _problem(patches: str, q: float):
    g = generator(17)
    B, m, d, n = 3, 4, 30, 7
    W0 = 0.3 * torch.randn(B, 2, m, d, generator=g, dtype=torch.float64)
    M = (torch.rand(B, 2, m, d, generator=g) > 0.4).double()
    y = torch.where(torch.rand(B, n, generator=g) > 0.5, 1.0, -1.0).double()
    if patches == "one":
        X = torch.randn(B, n, 1, d, generator=g, dtype=torch.float64)
    elif patches == "overlapping":
        X = 0.5 * torch.randn(B, n, 2, d, generator=g, dtype=torch.float64)
    else:  # disjoint: an "image" on 10 coordinates, noise on the others (the block-diagonal path)
        X = torch.zeros(B, n, 2, d, dtype=torch.float64)
        X[:, :, 0, :10] = torch.randn(B, n, 10, generator=g, dtype=torch.float64)
        X[:, :, 1, 10:] = 0.3 * torch.randn(B, n, d - 10, generator=g, dtype=torch.float64)
    return W0, M, X, y


@pytest.mark.parametrize("q", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("patches", ["one", "overlapping", "disjoint"])
def test_gram_trainer_follows_the_weights_engine(patches, q):
    W0, M, X, y = _problem(patches, q)
    ref = pb.train(W0, M, X, y, q=q, lr=0.5, steps=40, record=("loss", "train_error"), record_every=7)
    out = pb.train(W0, M, X, y, q=q, lr=0.5, steps=40, engine="gram", record=("loss", "train_error"), record_every=7)
    torch.testing.assert_close(out.W, ref.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out.loss, ref.loss, rtol=1e-10, atol=1e-12)
    assert torch.equal(out.train_error, ref.train_error) and torch.equal(out.steps, ref.steps)
    assert torch.equal(out.W * (1 - M), W0 * (1 - M))  # pruned weights keep their initial value
    assert not bool(out.diverged.any())


def test_gram_trainer_rejects_bad_input():
    W0, M, X, y = _problem("one", 3.0)
    with pytest.raises(ValueError, match="^M:"):
        pb.train(W0, M[:, :, :2], X, y, lr=1.0, steps=1, engine="gram")
    with pytest.raises(ValueError, match="^X:"):
        pb.train(W0, M, X[:, :, :, :5], y, lr=1.0, steps=1, engine="gram")
    with pytest.raises(ValueError, match="^lr:"):
        pb.train(W0, M, X, y, lr=0.0, steps=1)
