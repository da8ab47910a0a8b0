"""Bad input across the library, by kind: a clear error naming the argument, before any work; and
the good inputs a careless caller passes (NumPy scalars) accepted wherever Python numbers are."""

import math
import warnings

import numpy as np
import pytest
import torch

import prunebook as pb
from prunebook import evaluate, pruning, stats, sweep, theory
from prunebook.data import sample_data, signal_vector
from prunebook.engines import coefficients as coef_engine, flow as flow_engine
from prunebook.experiment import Setting, build_batch, grid, run
from prunebook.seeds import generator, network_seeds, stream_seed

from conftest import small_problem


def no_work(monkeypatch):
    """Make every engine fail if it starts: a check that fires inside the work is too late."""
    fail = lambda *a, **k: pytest.fail("work started before the check")  # noqa: E731
    monkeypatch.setattr(coef_engine, "run", fail)
    monkeypatch.setattr(flow_engine, "run", fail)
    monkeypatch.setattr(pb.train.__globals__["weights"], "run", fail)


@pytest.fixture
def prob():
    W0, M, ds = small_problem()
    return W0, M, ds


# ---- NumPy scalars are numbers ------------------------------------------------------------------

NP = dict(i=np.int64(3), f=np.float32(1.5), f64=np.float64(0.25))


@pytest.mark.parametrize("call", [
    lambda: signal_vector(np.int64(20), np.float32(3.0)),
    lambda: sample_data(np.int32(5), signal_vector(20, 3.0), sigma_p=np.float32(1.5), seed=np.int64(2)),
    lambda: pb.init_weights(np.int64(3), np.int64(20), np.float64(0.1), seed=np.uint32(1)),
    lambda: pb.random_mask((np.int64(2), np.int64(3), np.int64(20)), np.float32(0.5), seed=np.int64(4)),
    lambda: pruning.mask_uniforms(torch.Size([2, 3, 4]), seed=np.int16(1)),
    lambda: stream_seed(np.int64(7), "data", np.int32(2)),
    lambda: network_seeds(np.int64(1), np.int64(3), start=np.int64(5)),
    lambda: generator(np.uint64(9)),
    lambda: theory.snr_p(np.float32(8.0), np.float64(1.0), np.int64(1000), np.float32(0.5)),
    lambda: theory.prob_no_usable_neuron(np.float64(0.9), np.int64(20)),
    lambda: theory.overpruning_fraction(np.int64(20), np.float32(0.5)),
    lambda: Setting(d=np.int64(100), n=np.int32(8), m=np.int64(3), sigma_0=np.float32(0.1), steps=np.int64(5)),
    lambda: stats.wilson_interval(np.int64(3), np.int64(10)),
])
def test_numpy_scalars_are_accepted(call):
    call()


def test_numpy_scalars_in_training_and_evaluation(prob):
    W0, M, ds = prob
    pb.train(W0, M, ds.X, ds.y, q=np.float64(3), lr=np.float32(0.5), steps=np.int64(3), record_every=np.int64(1))
    pb.flow(W0, M, ds.X, ds.y, q=np.int64(3), t_end=np.float32(2.0), rtol=np.float64(1e-3), max_steps=np.int64(50))
    evaluate.test_statistics(W0, M, ds.mu, q=3, sigma_p=np.float32(1.0), seed=np.int64(3), n_test=2000)
    evaluate.test_statistics(W0[None], M[None], ds.mu[None], q=3, sigma_p=[np.float32(1.0)], seed=[np.int64(3)],
                             n_test=2000)
    pb.neuron_snr(M, ds.mu, np.float32(1.0))


# ---- silent wrong results that must be errors ---------------------------------------------------

@pytest.mark.parametrize("sigma_p", [0.0, -1.0, math.nan, math.inf, "1"])
def test_neuron_snr_needs_a_positive_noise_level(prob, sigma_p):
    _, M, ds = prob
    with pytest.raises(ValueError, match="^sigma_p:"):
        pb.neuron_snr(M, ds.mu, sigma_p)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 0.0])
def test_fit_race_constant_rejects_non_finite_or_non_positive_statistics(bad):
    s = np.array([1.0, 2.0, 3.0, 4.0, bad])
    with pytest.raises(ValueError, match="^statistic:"):
        theory.fit_race_constant(s, [0, 0, 1, 1, 1], [0, 1, 2, 3, 4], n_boot=10)
    with pytest.raises(ValueError, match="^success:"):
        theory.fit_race_constant([1, 2, 3, 4], [0, 0.5, 1, 1], [0, 1, 2, 3], n_boot=10)


@pytest.mark.parametrize("level", ["0.5", None, math.nan, 0.0, 1.0, True])
def test_overpruning_fraction_level_must_be_a_probability(level):
    with pytest.raises(ValueError, match="^level:"):
        theory.overpruning_fraction(20, level)


# ---- dtypes and devices -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("engine", ["weights", "coefficients", "gram", "flow"])
def test_half_precision_is_refused_by_every_engine(prob, dtype, engine, monkeypatch):
    W0, M, ds = prob
    no_work(monkeypatch)
    W, X = W0.to(dtype), ds.X.to(dtype)
    with pytest.raises(TypeError, match="^W0:"):
        if engine == "flow":
            pb.flow(W, M, X, ds.y, t_end=1.0)
        else:
            pb.train(W, M, X, ds.y, lr=0.1, steps=1, engine=engine)


def test_integer_signal_vectors_are_named(prob):
    W0, M, ds = prob
    mu_int = ds.mu.to(torch.int64)
    for call in (lambda: sample_data(4, mu_int, seed=0),
                 lambda: evaluate.test_statistics(W0, M, mu_int, q=3, seed=0, n_test=2000),
                 lambda: pb.usable_neurons(W0, M, mu_int),
                 lambda: pb.decompose(W0, W0, M, mu_int, ds.xi)):
        with pytest.raises(TypeError, match="^mu:"):
            call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("call", [
    lambda: signal_vector(20, 3.0, device="cuda"),
    lambda: pb.init_weights(3, 20, 0.1, seed=0, device="cuda"),
    lambda: pb.random_mask((2, 3, 20), 0.5, seed=0, device="cuda"),
    lambda: build_batch(Setting(d=40, n=4, m=2), [0.0], [1], device="cuda"),
    lambda: run(Setting(d=40, n=4, m=2, steps=2), [0.0], [1], device="cuda"),
    lambda: sweep.sweep({"p": [0.0]}, [0], base=Setting(d=40, n=4, m=2, steps=2), device="cuda", progress=False),
    lambda: generator(0, device="cuda"),
])
def test_a_device_that_does_not_exist_is_named(call):
    with pytest.raises(ValueError, match="^device:"):
        call()


@pytest.mark.parametrize("device", ["gpu", "cuda:x", 3.5])
def test_a_malformed_device_is_named(device):
    with pytest.raises(ValueError, match="^device:"):
        pb.init_weights(3, 20, 0.1, seed=0, device=device)


# ---- empty batches and grids, iterators ---------------------------------------------------------

def test_empty_batches_are_refused(prob, monkeypatch):
    W0, M, ds = prob
    no_work(monkeypatch)
    empty = (W0[None][:0], M[None][:0], ds.X[None][:0], ds.y[None][:0])
    with pytest.raises(ValueError, match="^W0:"):
        pb.train(*empty, lr=0.1, steps=1, engine="coefficients")
    with pytest.raises(ValueError, match="^W0:"):
        pb.flow(*empty, t_end=1.0)
    with pytest.raises(ValueError, match="^ps:"):
        build_batch(Setting(d=40, n=4, m=2), [], [])
    with pytest.raises(ValueError, match="^ps:"):
        run(Setting(d=40, n=4, m=2), [], [])
    with pytest.raises(ValueError, match="^axes:"):
        grid()
    with pytest.raises(ValueError, match="^axes:"):
        grid([0.1], [])
    with pytest.raises(ValueError, match="^axes:"):
        sweep.sweep({"p": []}, [0], progress=False)
    with pytest.raises(ValueError, match="^seeds:"):
        sweep.sweep({"p": [0.0]}, [], progress=False)


def test_iterators_are_accepted_or_named():
    ps, seeds = grid(iter([0.0, 0.5]), (s for s in [1, 2]))
    assert ps == [0.0, 0.0, 0.5, 0.5] and seeds == [1, 2, 1, 2]
    df = sweep.sweep({"p": iter([0.0, 0.5])}, range(1), base=Setting(d=40, n=4, m=2, steps=2), progress=False)
    assert list(df.p) == [0.0, 0.5]
    with pytest.raises(ValueError, match="^axes:"):
        grid(5)
    with pytest.raises(ValueError, match="^axes:"):
        sweep.sweep([("p", [0.0])], [0], progress=False)
    with pytest.raises(ValueError, match="^seeds:"):
        sweep.sweep({"p": [0.0]}, 3, progress=False)


def test_sweep_base_must_be_a_setting():
    with pytest.raises(TypeError, match="^base:"):
        sweep.sweep({"p": [0.0]}, [0], base={"d": 40}, progress=False)


# ---- sizes: refused on an estimate, never by trying to allocate --------------------------------

def test_a_batch_too_large_for_memory_is_refused_with_its_size(monkeypatch):
    no_work(monkeypatch)
    W0 = torch.zeros(1, 2, 3, 10).expand(10**9, 2, 3, 10)  # a view: no memory yet
    M = torch.ones(1, 2, 3, 10)
    X = torch.zeros(1, 4, 2, 10)
    X[..., 0, 0] = 1.0
    y = torch.ones(1, 4)
    for call in (lambda: pb.train(W0, M, X, y, lr=0.1, steps=1, engine="coefficients"),
                 lambda: pb.flow(W0, M, X, y, t_end=1.0)):
        with pytest.raises(MemoryError, match=r"^W0: 1,000,000,000 networks .* need about 6.[14] TB .* each"):
            call()


def test_recording_every_step_of_a_huge_run_is_refused(prob, monkeypatch):
    W0, M, ds = prob
    no_work(monkeypatch)
    with pytest.raises(MemoryError, match="^record_every:"):
        pb.train(W0, M, ds.X, ds.y, lr=0.1, steps=10**10)
    with pytest.raises(MemoryError, match="^record_at:"):
        pb.flow(W0, M, ds.X, ds.y, t_end=1.0, record_at=np.linspace(0, 1, 10**4), record=("rho",),
                max_bytes=10**6)


def test_a_sweep_network_over_the_memory_cap_is_refused_before_any_work(monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "_run_chunk", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="^memory_cap_bytes:.*one network"):
        sweep.sweep({"p": [0.0]}, [0], base=Setting(d=1000, n=50, m=20), memory_cap_bytes=10**5, progress=False)
    assert not calls


def test_record_schedule_is_not_materialized():
    from prunebook.result import record_steps

    steps = record_steps(10**12, 10**11)
    assert len(steps) == 11 and steps[-1] == 10**12


# ---- state the caller keeps ---------------------------------------------------------------------

def test_train_keeps_no_autograd_graph(prob):
    W0, M, ds = prob
    W = W0.clone().requires_grad_(True)
    for engine in ("weights", "coefficients", "gram"):
        res = pb.train(W, M, ds.X, ds.y, lr=0.1, steps=3, engine=engine)
        assert not res.W.requires_grad and res.loss.grad_fn is None, engine


def test_the_kernels_leave_torchs_thread_count_alone(prob):
    W0, M, ds = prob
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        pb.train(W0, M, ds.X, ds.y, lr=0.1, steps=3, engine="coefficients")
        pb.flow(W0, M, ds.X, ds.y, t_end=1.0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ---- one more pass over the core API ------------------------------------------------------------

@pytest.mark.parametrize("call, arg", [
    (lambda: pb.random_mask((2, 3, -1), 0.5, seed=0), "shape"),
    (lambda: pb.random_mask((2, 3.0, 4), 0.5, seed=0), "shape"),
    (lambda: pb.random_mask((2, 3, 4), 0.5), "seed"),
    (lambda: pb.random_mask((2, 3, 4), 0.5, seed=-1), "seed"),
    (lambda: sample_data(0, signal_vector(20, 3.0), seed=0), "n"),
    (lambda: sample_data(3, torch.zeros(20), seed=0), "mu"),
    (lambda: sample_data(3, signal_vector(20, 3.0), sigma_p=0.0, seed=0), "sigma_p"),
    (lambda: signal_vector(20, 3.0, kind="dense"), "seed"),
    (lambda: signal_vector(20, 3.0, kind="Sparse"), "kind"),
    (lambda: stream_seed(1, "weights"), "stream"),
    (lambda: stream_seed(1.5, "data"), "seed"),
    (lambda: network_seeds(0, 10, start=99_995), "count"),
    (lambda: theory.usable_neuron_pmf(0, 0.5), "m"),
    (lambda: theory.prob_no_usable_neuron(1.0, 10), "p"),
    (lambda: theory.snr_p(-8.0, 1.0, 1000, 0.5), "mu_norm"),
    (lambda: stats.wilson_interval(11, 10), "successes"),
    (lambda: stats.wilson_interval(1, 0), "trials"),
    (lambda: stats.sign_test([]), "differences"),
    (lambda: stats.holm([0.5, 1.5]), "pvalues"),
    (lambda: stats.mcnemar([True, False], [True]), "b_success"),
    (lambda: Setting(signal="dense ").d, "signal"),
    (lambda: Setting(d=0), "d"),
    (lambda: Setting(q=0.5), "q"),
])
def test_core_calls_name_their_bad_argument(call, arg):
    with pytest.raises((ValueError, TypeError), match=f"^{arg}:"):
        call()


def test_experiment_run_checks_masks_and_settings_before_training(monkeypatch):
    no_work(monkeypatch)
    s = Setting(d=40, n=4, m=2, steps=2)
    with pytest.raises(ValueError, match="^masks:"):
        run(s, [0.0], [1], masks=torch.ones(1, 2, 2, 40) * 0.5)
    with pytest.raises(ValueError, match="^masks:"):
        run(s, [0.0], [1], masks=torch.ones(2, 2, 2, 40))
    with pytest.raises(ValueError, match="^setting:"):
        run([s, s.with_(n=5)], [0.0, 0.0], [1, 2])
    with pytest.raises(ValueError, match="^seeds:"):
        run(s, [0.0, 0.5], [1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="^p:"):
            run(s, [1.0], [1])


@pytest.mark.parametrize("positive", [range(10), [], [10], ["0"], "02468", [True]])
def test_digits_need_both_classes(positive):
    from prunebook.realdata import digits_binary

    with pytest.raises(ValueError, match="^positive:"):
        digits_binary(100, seed=0, positive=positive)
