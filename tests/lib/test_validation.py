"""Bad input: a clear error naming the argument, raised before any work."""

import math

import pytest
import torch

import prunebook as pb

from conftest import small_problem


@pytest.fixture
def prob():
    W0, M, ds = small_problem()
    return W0, M, ds.X, ds.y


def _train(W0, M, X, y, **kw):
    args = dict(q=3, lr=0.1, steps=5)
    args.update(kw)
    return pb.train(W0, M, X, y, **args)


@pytest.mark.parametrize(
    "mutate, arg",
    [
        (lambda W0, M, X, y: (W0[0], M, X, y), "W"),  # class axis missing
        (lambda W0, M, X, y: (W0, M[..., :-1], X, y), "M"),  # mismatched d
        (lambda W0, M, X, y: (W0, M, X[..., :-1], y), "X"),
        (lambda W0, M, X, y: (W0, M, X, y[:-1]), "y"),
        (lambda W0, M, X, y: (W0, M * 0.5, X, y), "M"),  # non-binary mask
        (lambda W0, M, X, y: (W0, M, X, y * 2), "y"),  # labels not in {-1, +1}
        (lambda W0, M, X, y: (W0, M, X, torch.zeros_like(y)), "y"),
        (lambda W0, M, X, y: (W0.clone().fill_(math.nan), M, X, y), "W"),
        (lambda W0, M, X, y: (W0, M, X.clone().fill_(math.inf), y), "X"),
        (lambda W0, M, X, y: (W0, M, X.float(), y), "X"),  # dtype mismatch
        (lambda W0, M, X, y: (W0.numpy(), M, X, y), "W"),
        (lambda W0, M, X, y: (torch.stack([W0, W0, W0]), M, torch.stack([X, X]), y), "X"),  # batch mismatch
    ],
)
def test_bad_tensors_name_the_argument(prob, mutate, arg):
    args = mutate(*prob)
    for fn in (pb.forward, pb.loss, pb.gradient, _train):
        call_args = args if fn in (pb.loss, pb.gradient, _train) else args[:3]
        if fn is pb.forward and arg == "y":
            continue
        with pytest.raises((ValueError, TypeError), match=rf"^{arg}:"):
            fn(*call_args) if fn is _train else fn(*call_args, 3)


@pytest.mark.parametrize(
    "kw, arg",
    [
        (dict(q=0.5), "q"),
        (dict(q=math.nan), "q"),
        (dict(lr=0.0), "lr"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=math.inf), "lr"),
        (dict(steps=-1), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(engine="adam"), "engine"),
        (dict(record=("loss", "accuracy")), "record"),
        (dict(record_every=0), "record_every"),
        (dict(on_divergence="ignore"), "on_divergence"),
    ],
)
def test_bad_training_settings(prob, kw, arg):
    with pytest.raises((ValueError, TypeError), match=rf"^{arg}:"):
        _train(*prob, **kw)


def test_validation_happens_before_work(prob, monkeypatch):
    import importlib

    tr = importlib.import_module("prunebook.engines.weights")

    def boom(*a, **k):
        raise AssertionError("training started before validation")

    monkeypatch.setattr(tr, "run", boom)
    with pytest.raises(ValueError, match="^lr:"):
        _train(*prob, lr=-1)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, math.nan, "0.5", True])
def test_random_mask_rejects_bad_p(p):
    with pytest.raises(ValueError, match="^p:"):
        pb.random_mask((2, 3, 4), p, seed=0)


def test_random_mask_needs_seed_and_good_shape():
    with pytest.raises(ValueError, match="^seed:"):
        pb.random_mask((2, 3, 4), 0.5)
    with pytest.raises(ValueError, match="^seed:"):
        pb.random_mask((2, 3, 4), 0.5, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="^shape:"):
        pb.random_mask((2, -3, 4), 0.5, seed=0)
    with pytest.raises(TypeError, match="^generator:"):
        pb.random_mask((2, 3), 0.5, generator=42)


@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda: pb.signal_vector(0, 1.0), "d"),
        (lambda: pb.signal_vector(10, -1.0), "mu_norm"),
        (lambda: pb.signal_vector(10, 1.0, kind="gaussian"), "kind"),
        (lambda: pb.sample_data(0, pb.signal_vector(10, 1.0), seed=0), "n"),
        (lambda: pb.sample_data(5, pb.signal_vector(10, 1.0), sigma_p=0, seed=0), "sigma_p"),
        (lambda: pb.sample_data(5, torch.zeros(10), seed=0), "mu"),
        (lambda: pb.sample_data(5, torch.full((10,), math.nan), seed=0), "mu"),
        (lambda: pb.sample_data(5, pb.signal_vector(10, 1.0)), "seed"),
        (lambda: pb.init_weights(3, 10, 0.0, seed=0), "sigma_0"),
        (lambda: pb.init_weights(0, 10, 0.1, seed=0), "m"),
    ],
)
def test_bad_data_and_init_arguments(call, arg):
    with pytest.raises((ValueError, TypeError), match=rf"^{arg}:"):
        call()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_finiteness_check_finds_one_bad_entry_anywhere(bad, dtype):
    """One pass of min and max finds a single bad entry at any position of a large tensor."""
    from prunebook._checks import check_finite

    x = torch.randn(3, 1000, 37, dtype=dtype, generator=torch.Generator().manual_seed(0))
    check_finite("x", x)
    for pos in (0, 1, 17, 1000, x.numel() // 2 + 3, x.numel() - 2, x.numel() - 1):
        y = x.clone()
        y.view(-1)[pos] = bad
        with pytest.raises(ValueError, match="^x:"):
            check_finite("x", y)


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0, 1e-30, math.nan, math.inf, -math.inf])
def test_binary_check_finds_one_bad_entry_anywhere(bad):
    from prunebook._checks import check_binary

    m = (torch.rand(5, 2000, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    check_binary("m", m)
    check_binary("m", m.long())
    for pos in (0, 4999, m.numel() - 1):
        b = m.clone()
        b.view(-1)[pos] = bad
        with pytest.raises(ValueError, match="^m:"):
            check_binary("m", b)
    b = m.long()
    b[0, 7] = 2
    with pytest.raises(ValueError, match="^m:"):
        check_binary("m", b)
