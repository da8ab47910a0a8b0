"""The coefficient engine (GD on the signal-noise coefficients): against the weights engine, its compiled kernel against its torch path, divergence, float32."""

import warnings

import pytest
import torch

import prunebook as pb
from prunebook.decomposition import split_patches

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
@pytest.mark.parametrize("q", [1, 2, 3, 4])
def test_engines_agree_batched_and_alone(q, signal):
    ps = [0.0, 0.5, 0.9, 0.99]
    probs = [problem(p, seed=7 * k + q, signal=signal) for k, p in enumerate(ps)]
    W0 = torch.stack([w for w, _, _ in probs])
    M = torch.stack([mm for _, mm, _ in probs])
    X = torch.stack([ds.X for _, _, ds in probs])
    y = torch.stack([ds.y for _, _, ds in probs])
    lr = {1: 0.5, 2: 2.0, 3: 2.0, 4: 0.5}[q]
    kw = dict(q=q, lr=lr, steps=STEPS, record=("loss", "train_error"), record_every=50)
    rw = pb.train(W0, M, X, y, engine="weights", **kw)
    rc = pb.train(W0, M, X, y, engine="coefficients", **kw)
    assert float(rw.loss[-1].max()) < float(rw.loss[0].min()), "the runs must actually train"
    worst = 0.0
    for b, (_, _, ds) in enumerate(probs):
        worst = max(worst, rel_margin_gap(rw.W[b], rc.W[b], M[b], ds.mu, q, seed=100 + b))
    assert worst <= 1e-8, worst
    torch.testing.assert_close(rc.loss, rw.loss, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(rc.train_error, rw.train_error)
    # not batched: one network alone gives the batched trajectory
    alone = pb.train(W0[2], M[2], X[2], y[2], engine="coefficients", **kw)
    assert rel_margin_gap(alone.W, rc.W[2], M[2], probs[2][2].mu, q, seed=5) <= 1e-10


def test_coefficient_engine_needs_two_patch_data():
    W0, M, ds = problem(0.5, seed=1)
    X_bad = ds.X.clone()
    X_bad[3, 0, 5] += 1.0  # patch 0 is no longer y_i * (one shared mu)
    with pytest.raises(ValueError, match="^X:"):
        pb.train(W0, M, X_bad, ds.y, q=3, lr=1.0, steps=3, engine="coefficients")
    X3 = torch.cat([ds.X, ds.X[:, 1:]], dim=1)
    with pytest.raises(ValueError, match="^X:"):
        pb.train(W0, M, X3, ds.y, q=3, lr=1.0, steps=3, engine="coefficients")
    with pytest.raises(ValueError, match="^X:"):
        pb.train(W0, M, X3, ds.y, q=3, lr=1.0, steps=3, record="gamma")
    # the weights engine accepts any number of patches
    assert pb.train(W0, M, X3, ds.y, q=3, lr=1.0, steps=3).W.shape == W0.shape
    mu, xi = split_patches(ds.X, ds.y)
    assert torch.equal(mu, ds.mu) and torch.equal(xi, ds.xi)


@pytest.fixture(params=["kernel", "torch"])
def coefficient_path(request, monkeypatch):
    """Run a test on the compiled CPU kernel and on the torch path of the coefficient engine."""
    from prunebook.engines import coefficient_kernel, coefficients as engine_coefficients

    if request.param == "kernel":
        assert coefficient_kernel.AVAILABLE, "numba is a dependency: the kernel must be available"
    monkeypatch.setattr(engine_coefficients, "USE_KERNEL", request.param == "kernel")
    return request.param


@pytest.mark.parametrize("q", [1, 2, 2.5, 3, 4])
def test_kernel_equals_the_torch_path(q, monkeypatch):
    from prunebook.engines import coefficients as engine_coefficients

    probs = [problem(p, seed=3 * k + 1, signal=sig) for k, (p, sig) in enumerate([(0.0, "sparse"), (0.7, "dense"), (0.97, "sparse")])]
    W0 = torch.stack([w for w, _, _ in probs])
    M = torch.stack([mm for _, mm, _ in probs])
    X = torch.stack([ds.X for _, _, ds in probs])
    y = torch.stack([ds.y for _, _, ds in probs])
    kw = dict(q=q, lr={1: 0.5, 2: 2.0, 2.5: 2.0, 3: 2.0, 4: 0.2}[q], steps=150, engine="coefficients", record=("loss", "train_error", "gamma", "rho"),
              record_every=7)
    kernel = pb.train(W0, M, X, y, **kw)
    monkeypatch.setattr(engine_coefficients, "USE_KERNEL", False)
    torch_path = pb.train(W0, M, X, y, **kw)
    assert float(torch_path.loss[-1].max()) < float(torch_path.loss[0].min())
    for name in ("loss", "gamma", "rho"):
        a, b = getattr(kernel, name), getattr(torch_path, name)
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12 * float(b.abs().max()), msg=name)
    torch.testing.assert_close(kernel.train_error, torch_path.train_error)
    torch.testing.assert_close(kernel.W, torch_path.W, rtol=1e-10, atol=1e-12)
    assert torch.equal(kernel.steps, torch_path.steps)


def test_coefficient_engine_freezes_a_diverging_network_at_its_last_finite_iterate(monkeypatch, coefficient_path):
    """A network that blows up mid-run keeps the iterate before its first non-finite step.

    The engine checks finiteness only every few steps and replays from a saved state when a check
    fails; the frozen weights must be those of a run that stops just before the divergence, for
    any check interval, and the healthy network beside it must not notice.
    """
    from prunebook.engines import guard

    W0, M, ds = problem(0.3, seed=11)
    W0b = torch.stack([W0, W0 * 5])
    kw = dict(q=3, lr=2.0, record=("loss", "gamma"), record_every=3, on_divergence="warn")
    with pytest.warns(RuntimeWarning, match="1 of 2 networks diverged"):
        full = pb.train(W0b, M, ds.X, ds.y, steps=40, engine="coefficients", **kw)
    assert full.diverged.tolist() == [False, True]
    assert torch.isfinite(full.W).all()
    # the first step count at which the second network is flagged
    flagged = []
    for k in range(1, 41):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            flagged.append(bool(pb.train(W0b[1], M, ds.X, ds.y, steps=k, engine="coefficients", **kw).diverged))
    first = flagged.index(True) + 1
    assert 3 < first < 40, "the divergence must happen mid-run"
    last_finite = pb.train(W0b[1], M, ds.X, ds.y, steps=first - 1, engine="coefficients", **kw)
    assert not bool(last_finite.diverged)
    alone = pb.train(W0b[0], M, ds.X, ds.y, steps=40, engine="coefficients", **kw)
    for every in (1, 4, 7, 1000) if coefficient_path == "torch" else (None,):  # the kernel checks every step
        monkeypatch.setattr(guard, "CHECK_EVERY", every or guard.CHECK_EVERY)
        with pytest.warns(RuntimeWarning):
            res = pb.train(W0b, M, ds.X, ds.y, steps=40, engine="coefficients", **kw)
        assert torch.equal(res.W[1], last_finite.W), every
        # the healthy network: identical to the same batch checked every 50 steps (below), and equal to
        # the network trained alone up to the rounding of a batched product with a batch of one
        torch.testing.assert_close(res.W[0], alone.W, rtol=1e-13, atol=0)
        torch.testing.assert_close(res.loss[:, 0], alone.loss, rtol=1e-13, atol=0)
        assert torch.equal(res.W, full.W), every
        torch.testing.assert_close(res.loss, full.loss, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(res.gamma, full.gamma, rtol=0, atol=0, equal_nan=True)
        assert bool(torch.isfinite(res.gamma[:, 1]).all()), "the frozen network records its last finite state"
        assert res.loss.shape == (15, 2)  # steps 0, 3, ..., 39 and 40


def test_bases_hold_every_patch_aligned():
    """The signal-noise basis: mu, every xi_i, -mu (n + 2 columns); the patch basis: every patch of
    every sample (n P columns); both padded with zero rows to a multiple of 4, the table cols naming
    each patch's column."""
    from prunebook.decomposition import split_patches
    from prunebook.engines.coefficients import basis_width, patch_basis, signal_noise_basis

    for columns in range(1, 200):
        w = basis_width(columns)
        assert w % 4 == 0 and columns <= w < columns + 4, (columns, w)
    assert basis_width(50 + 2) == 52
    W0, M, ds = problem(0.5, seed=4)
    bs = torch.Size([])
    for basis in (signal_noise_basis(split_patches(ds.X, ds.y), ds.y, bs, torch.float64), patch_basis(ds.X, bs, torch.float64)):
        assert basis.V.shape[1] % 4 == 0
        patches = basis.V[0][basis.cols[0]]  # [n, P, d]: the basis vector named for each patch
        torch.testing.assert_close(patches, ds.X, rtol=0, atol=0)
        used = set(basis.cols.flatten().tolist())
        assert not bool(basis.V[0][[a for a in range(basis.V.shape[1]) if a not in used]].any())  # the rest is padding
    assert signal_noise_basis(split_patches(ds.X, ds.y), ds.y, bs, torch.float64).V.shape[1] == basis_width(N + 2)


def test_engines_agree_in_float32_on_a_book_sized_run():
    """The book trains in float32. Measured on this grid (d = 1000, n = 50, m = 20, 1000 steps, lr = 1):
    largest relative margin gap to a float64 run 2.2e-5 for the coefficient engine (its Gram matrices
    subtract the dropped coordinates from the full Gram, which cancels digits) and 2.5e-6 for the weights
    engine, with no test sample classified differently. The bounds below leave a factor of about 4."""
    from prunebook.experiment import Setting, build_batch, grid

    s = Setting(d=1000, n=50, m=20, steps=1000)
    ps, seeds = grid([0.0, 0.5, 0.9, 0.97], [0, 1])
    W0, M, ds = build_batch(s, ps, seeds)
    W0d, Md, dsd = build_batch(s, ps, seeds, dtype=torch.float64)
    kw = dict(q=3, lr=1.0, steps=s.steps, record=("loss",), record_every=s.steps)
    runs = {e: pb.train(W0, M, ds.X, ds.y, engine=e, **kw) for e in ("weights", "coefficients")}
    exact = pb.train(W0d, Md, dsd.X, dsd.y, engine="coefficients", **kw)
    fresh = pb.sample_data(4000, dsd.mu[0], seed=123)
    ref = fresh.y * pb.forward(exact.W, Md, fresh.X, 3)
    bounds = {"weights": 1e-5, "coefficients": 1e-4}
    for engine, r in runs.items():
        margins = fresh.y * pb.forward(r.W.double(), Md, fresh.X, 3)
        gap = float(((margins - ref).abs().amax(-1) / ref.abs().amax(-1)).max())
        assert gap < bounds[engine], (engine, gap)
        flipped = int(((margins <= 0) != (ref <= 0)).sum())
        assert flipped <= 1, (engine, flipped)  # test error equal to within one sample in 4000


def test_kernel_stops_a_network_at_a_fixed_point_of_float_gd():
    """In float32 a network whose loss is tiny stops moving at all; the kernel stops stepping it, and
    running it longer changes nothing, bit for bit."""
    from prunebook.decomposition import split_patches
    from prunebook.engines import coefficient_kernel as ck
    from prunebook.engines.coefficients import operators, signal_noise_basis

    W0, M, ds = small_problem(n=10, d=60, m=3, p=0.3, seed=8, mu_norm=12.0, sigma_0=0.1, dtype=torch.float32)
    basis = signal_noise_basis(split_patches(ds.X, ds.y), ds.y, torch.Size([]), torch.float32)
    K, h0 = operators(W0[None], M[None], basis.V)
    K, h0, col = K.numpy(), h0.numpy(), basis.cols.numpy()
    kw = dict(lr=4.0, q=3.0, want_error=False, want_coefficients=False)
    short = ck.run_networks(K, h0, col, ds.y[None].numpy(), steps=3000, record_at=[0, 3000], **kw)
    assert short[5][0], "this network reaches a fixed point within 3000 steps"
    longer = ck.run_networks(K, h0, col, ds.y[None].numpy(), steps=9000, record_at=[0, 3000, 9000], **kw)
    assert (longer[3] == short[3]).all() and longer[0][1, 0] == longer[0][2, 0] == short[0][1, 0]
