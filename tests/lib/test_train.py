"""Batched GD against a plain autograd loop; determinism, batch independence, divergence."""

import pytest
import torch

import prunebook as pb
from prunebook.activation import activation

from conftest import small_problem


def autograd_gd(W0, M, X, y, q, lr, steps):
    """The simplest possible GD: one network, torch.autograd, no tricks."""
    W = W0.clone().requires_grad_(True)
    losses = []
    for _ in range(steps + 1):
        Z = torch.einsum("jrd,npd->npjr", W * M, X)
        F = activation(Z, q).sum(dim=(1, 3)) / W.shape[1]
        f = F[:, 0] - F[:, 1]
        L = torch.logaddexp(torch.zeros_like(f), -y * f).mean()
        losses.append(L.detach())
        if len(losses) == steps + 1:
            break
        (g,) = torch.autograd.grad(L, W)
        with torch.no_grad():
            W -= lr * g
    return W.detach(), torch.stack(losses)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_train_matches_autograd_loop(q):
    W0, M, ds = small_problem(n=8, d=15, m=4, p=0.4, sigma_0=0.5)
    res = pb.train(W0, M, ds.X, ds.y, q=q, lr=0.5, steps=60, record=("loss", "train_error"))
    W_ref, L_ref = autograd_gd(W0, M, ds.X, ds.y, q, 0.5, 60)
    torch.testing.assert_close(res.W, W_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(res.loss, L_ref, rtol=1e-10, atol=1e-14)
    assert res.loss.shape == (61,) and res.steps.tolist() == list(range(61))
    assert res.train_error.shape == (61,)
    assert torch.equal(res.W[M == 0], W0[M == 0]), "pruned weights never move"


def test_record_every_and_final_step():
    W0, M, ds = small_problem()
    res = pb.train(W0, M, ds.X, ds.y, q=3, lr=0.1, steps=25, record_every=10)
    assert res.steps.tolist() == [0, 10, 20, 25]
    full = pb.train(W0, M, ds.X, ds.y, q=3, lr=0.1, steps=25)
    torch.testing.assert_close(res.loss, full.loss[[0, 10, 20, 25]])


def test_same_seeds_same_run():
    a = small_problem(seed=3)
    b = small_problem(seed=3)
    ra = pb.train(a[0], a[1], a[2].X, a[2].y, q=3, lr=0.3, steps=20)
    rb = pb.train(b[0], b[1], b[2].X, b[2].y, q=3, lr=0.3, steps=20)
    assert torch.equal(ra.W, rb.W) and torch.equal(ra.loss, rb.loss)


@pytest.mark.parametrize("engine", ["coefficients", "weights"])
def test_batch_independence(engine):
    """A network's trajectory does not depend on which other networks share its batch.

    The coefficient engine steps each network on its own (the compiled kernel, or chunks of the torch
    path): identical bits. The weights engine's batched matmul may sum in another order than a single
    one (BLAS picks its kernel by shape): equal to within a few units in the last place (measured: 1 ulp).
    """
    probs = [small_problem(seed=s, p=p) for s, p in [(0, 0.0), (1, 0.5), (2, 0.9)]]
    W0 = torch.stack([w for w, _, _ in probs])
    M = torch.stack([mm for _, mm, _ in probs])
    X = torch.stack([ds.X for _, _, ds in probs])
    y = torch.stack([ds.y for _, _, ds in probs])
    kw = dict(q=3, lr=0.5, steps=40, engine=engine, record=("loss", "train_error"))
    batched = pb.train(W0, M, X, y, **kw)
    assert batched.loss.shape == (41, 3) and batched.W.shape == W0.shape

    def same(a, b):
        if engine == "coefficients":
            return torch.equal(a, b)
        return bool(((a - b).abs() <= 4 * torch.finfo(a.dtype).eps * b.abs().clamp_min(1)).all())

    for b in range(3):
        alone = pb.train(W0[b], M[b], X[b], y[b], **kw)
        assert same(batched.W[b], alone.W) and same(batched.loss[:, b], alone.loss)
    # a different companion network changes nothing either
    pair = pb.train(W0[[0, 2]], M[[0, 2]], X[[0, 2]], y[[0, 2]], **kw)
    assert same(pair.W[0], batched.W[0])


def test_one_data_set_many_masks_broadcast():
    W0, _, ds = small_problem()
    Ms = torch.stack([pb.random_mask(W0.shape, p, seed=1) for p in (0.0, 0.5)]).double()
    res = pb.train(W0, Ms, ds.X, ds.y, q=3, lr=0.2, steps=10)
    assert res.W.shape == (2, *W0.shape)
    alone = pb.train(W0, Ms[1], ds.X, ds.y, q=3, lr=0.2, steps=10)
    torch.testing.assert_close(res.W[1], alone.W)


def test_training_fits_the_data():
    W0, M, ds = small_problem(n=10, d=40, m=5, p=0.0, sigma_0=0.1)
    res = pb.train(W0, M, ds.X, ds.y, q=3, lr=2.0, steps=300, record="train_error")
    assert float(res.final_loss) < 0.5 * float(res.loss[0])
    assert float(res.train_error[-1]) == 0.0


def test_divergence_is_reported_and_frozen():
    probs = [small_problem(seed=s, sigma_0=1.0) for s in (0, 1)]
    W0 = torch.stack([probs[0][0], probs[1][0] * 1e3])  # the second network explodes
    M = torch.stack([torch.zeros_like(probs[0][1]), probs[1][1]])  # the first cannot move at all
    X = torch.stack([probs[0][2].X, probs[1][2].X])
    y = torch.stack([probs[0][2].y, probs[1][2].y])
    with pytest.warns(RuntimeWarning, match="1 of 2 networks diverged"):
        res = pb.train(W0, M, X, y, q=4, lr=1e6, steps=30)
    assert res.diverged.tolist() == [False, True]
    assert torch.isfinite(res.W).all(), "a diverged network keeps its last finite iterate"
    with pytest.raises(pb.TrainingDiverged):
        pb.train(W0, M, X, y, q=4, lr=1e6, steps=30, on_divergence="raise")


def test_weights_engine_freezes_at_its_last_finite_iterate(monkeypatch):
    """Like the coefficient engine: checked every few steps with an exact replay, the diverging
    network keeps the iterate of a run that stops just before the first non-finite step."""
    from prunebook.engines import guard

    W0, M, ds = small_problem(n=8, d=15, m=4, p=0.4, sigma_0=0.5, seed=5)
    W0b = torch.stack([W0, W0 * 40])
    kw = dict(q=3, lr=3.0, record=("loss",), record_every=2, on_divergence="warn", engine="weights")
    with pytest.warns(RuntimeWarning, match="1 of 2 networks diverged"):
        full = pb.train(W0b, M, ds.X, ds.y, steps=30, **kw)
    assert full.diverged.tolist() == [False, True] and torch.isfinite(full.W).all()
    flagged = []
    import warnings

    for k in range(1, 31):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            flagged.append(bool(pb.train(W0b[1], M, ds.X, ds.y, steps=k, **kw).diverged))
    first = flagged.index(True) + 1
    assert 1 < first < 30, "the divergence must happen mid-run"
    last_finite = pb.train(W0b[1], M, ds.X, ds.y, steps=first - 1, **kw)
    for every in (1, 3, 50):
        monkeypatch.setattr(guard, "CHECK_EVERY", every)
        with pytest.warns(RuntimeWarning):
            res = pb.train(W0b, M, ds.X, ds.y, steps=30, **kw)
        assert torch.equal(res.W[1], last_finite.W), every
        assert torch.equal(res.W, full.W), every
        torch.testing.assert_close(res.loss, full.loss, rtol=0, atol=0, equal_nan=True)
