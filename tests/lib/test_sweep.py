"""Sweeps: tidy table, different n, determinism, kill-and-resume, corrupt and stale chunks."""

import importlib

import numpy as np
import pandas as pd
import pytest

from prunebook import theory
from prunebook.experiment import Setting, run

sw = importlib.import_module("prunebook.sweep")

BASE = Setting(d=60, n=10, m=4, steps=40, mu_norm=5.0)
AXES = {"p": [0.0, 0.5, 0.9], "n": [8, 12]}
SEEDS = [0, 1]


def count_chunks(monkeypatch) -> dict:
    """Count the chunks a sweep computes (rather than loads from its cache)."""
    real = sw._run_chunk
    counted = {"n": 0}

    def counting(*a, **k):
        counted["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(sw, "_run_chunk", counting)
    return counted


def small(tmp=None, **kw):
    return sw.sweep(AXES, SEEDS, base=BASE, cache_dir=tmp, chunk_size=2, progress=False, **kw)


def test_table_has_one_row_per_network():
    df = small()
    assert len(df) == 3 * 2 * 2
    for col in ("p", "seed", "n", "mu_norm", "final_loss", "train_error", "test_error", "signal_neurons_pos",
                "signal_neurons_neg", "gamma_max_pos", "rho_max", "rho_min", "converged", "snr_p", "n_snr_q"):
        assert col in df.columns
    assert df[["p", "n", "seed"]].drop_duplicates().shape[0] == len(df)
    assert df["test_error"].between(0, 1).all()
    assert (df.loc[df.p == 0.0, "signal_neurons_pos"] == BASE.m).all()
    np.testing.assert_allclose(df["n_snr_q"], df["n"] * df["snr_p"] ** df["q"])
    assert (df["converged"] == ((df["final_loss"] < 1e-2) & (df["train_error"] == 0) & ~df["diverged"])).all()


def test_different_n_matches_networks_trained_alone():
    """Networks with different n go in separate batches; each row equals the network trained alone."""
    df = small()
    for row in df.sample(4, random_state=0).itertuples():
        alone = run(BASE.with_(n=int(row.n)), [row.p], [row.seed], record_every=BASE.steps)
        # the same network and the same test samples; only float32 rounding of the batched products differs
        assert row.final_loss == pytest.approx(alone.final_loss[0], rel=1e-5)
        assert row.test_error == alone.test_error[0]


def test_chunking_does_not_change_results():
    a = small()
    b = sw.sweep(AXES, SEEDS, base=BASE, chunk_size=5, progress=False)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-7)


def test_kill_and_resume_gives_the_uninterrupted_table(tmp_path, monkeypatch):
    reference = small()
    real = sw._run_chunk
    calls = {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the sweep is killed while computing its 4th chunk
        return real(*a, **k)

    monkeypatch.setattr(sw, "_run_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path)
    assert len(list(tmp_path.glob("chunk-*.npz"))) == 3
    assert not list(tmp_path.glob("*.tmp"))

    monkeypatch.setattr(sw, "_run_chunk", real)  # the next run is not killed
    counted = count_chunks(monkeypatch)
    resumed = small(tmp_path)
    assert counted["n"] == 6 - 3, "only the chunks not yet saved are computed"
    pd.testing.assert_frame_equal(resumed, reference, check_exact=True)  # the same chunks, recomputed or loaded: identical
    counted["n"] = 0
    again = small(tmp_path)
    assert counted["n"] == 0
    pd.testing.assert_frame_equal(again, resumed, check_exact=True)


def test_truncated_and_stale_chunks_are_recomputed(tmp_path, monkeypatch):
    first = small(tmp_path)
    files = sorted(tmp_path.glob("chunk-*.npz"))
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # truncated
    files[1].write_bytes(files[2].read_bytes())  # stale: another chunk's content under this name
    counted = count_chunks(monkeypatch)
    second = small(tmp_path)
    assert counted["n"] == 2
    pd.testing.assert_frame_equal(second, first)


def test_package_version_is_part_of_the_key(tmp_path, monkeypatch):
    small(tmp_path)
    monkeypatch.setattr(sw, "__version__", "999.0")
    counted = count_chunks(monkeypatch)
    small(tmp_path)
    assert counted["n"] == 6


def test_same_seeds_same_table():
    pd.testing.assert_frame_equal(small(), small())


@pytest.mark.parametrize(
    "kw, arg",
    [
        (dict(axes={"n": [10]}), "axes"),
        (dict(axes={"p": [1.0]}), "axes"),
        (dict(axes={"p": [0.5], "width": [3]}), "axes"),
        (dict(axes={"p": []}), "axes"),
        (dict(axes={"p": [0.5], "n": [0]}), "n"),
        (dict(seeds=[]), "seeds"),
        (dict(seeds=[-1]), "seeds"),
        (dict(n_test=100), "n_test"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(engine="sgd"), "engine"),
    ],
)
def test_bad_sweep_arguments(kw, arg):
    args = dict(axes={"p": [0.5]}, seeds=[0])
    args.update(kw)
    axes, seeds = args.pop("axes"), args.pop("seeds")
    with pytest.raises(ValueError, match=f"^{arg}:"):
        sw.sweep(axes, seeds, base=BASE, progress=False, **args)


def test_boundary_helpers_invert_the_statistic():
    ps = np.array([0.0, 0.5, 0.9])
    n_b = theory.race_boundary_n(ps, 4.0, 8.0, 1.0, 1000, 3)
    np.testing.assert_allclose(theory.n_snr_q(n_b, 8.0, 1.0, 1000, ps, 3), 4.0)
    mu_b = theory.race_boundary_mu(ps, 4.0, 50, 1.0, 1000, 3)
    np.testing.assert_allclose([theory.n_snr_q(50, mu, 1.0, 1000, p, 3) for mu, p in zip(mu_b, ps)], 4.0)
    p_half = theory.overpruning_fraction(20, 0.5)
    assert theory.prob_no_usable_neuron(p_half, 20) == pytest.approx(0.5)
    assert p_half == pytest.approx(1 - np.log(2) / 20, abs=0.002)


def test_fit_race_constant_recovers_a_known_threshold():
    """Networks of one seed share a statistic offset (their data); the bootstrap resamples seeds."""
    rng = np.random.default_rng(0)
    seeds = np.repeat(np.arange(40), 10)
    stat = np.exp(rng.uniform(np.log(0.1), np.log(100), 400))
    true_C = 4.0
    success = rng.uniform(size=400) < 1 / (1 + (true_C / stat) ** 3)
    fit = theory.fit_race_constant(stat, success, seeds, n_boot=200)
    assert fit.lo < true_C < fit.hi and fit.lo < fit.estimate < fit.hi
    assert fit.hi / fit.lo < 2 and fit.n_boot == 200
    with pytest.raises(ValueError, match="success"):
        theory.fit_race_constant(stat, np.ones(400, bool), seeds)
    with pytest.raises(ValueError, match="statistic"):
        theory.fit_race_constant(stat, success, seeds[:-1])


def _curve(errors_by_p, seeds=5, noise=0.0, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    rows = [{"p": p, "seed": s, "test_error": e + noise * rng.standard_normal(), "converged": True}
            for p, e in errors_by_p.items() for s in range(seeds)]
    return pd.DataFrame(rows)


def test_curve_summary_finds_best_p_and_threshold():
    from prunebook.book.phase import curve_summary

    df = _curve({0.0: 0.3, 0.5: 0.1, 0.7: 0.02, 0.9: 0.05, 0.95: 0.4, 0.99: 0.5}, noise=0.005)
    out = curve_summary(df, n_boot=200)
    assert out["best_p"] == 0.7 and out["threshold_p"] == 0.95
    assert out["best_p_ci"] == (0.7, 0.7) and out["threshold_ci"] == (0.95, 0.95)
    assert out["dense_error"] == pytest.approx(0.3, abs=0.01)
    with pytest.raises(ValueError, match="df"):
        curve_summary(df.drop(columns="seed"))


def test_cell_means_and_phase_axes():
    from prunebook.book.phase import cell_means
    from prunebook.book.plots import PhaseAxes

    df = pd.DataFrame({"p": [0, 0, 0.5, 0.5], "n": [10, 20, 10, 20], "test_error": [0.5, 0.4, 0.1, 0.0],
                       "converged": [True, False, True, True]})
    xs, ys, mean, bad, count = cell_means(df, "p", "n")
    assert list(xs) == [0, 0.5] and list(ys) == [10, 20]
    np.testing.assert_allclose(mean, [[0.5, 0.1], [0.4, 0.0]])
    np.testing.assert_allclose(bad, [[0, 0], [1, 0]])
    axes = PhaseAxes(np.array([0.0, 0.5, 0.7]), np.array([10.0, 40.0, 160.0]), log_y=True)
    np.testing.assert_allclose(axes.x([0.0, 0.25, 0.6, 0.7]), [0, 0.5, 1.5, 2])  # grid values -> cell centres
    np.testing.assert_allclose(axes.y([10.0, 20.0, 160.0]), [0, 0.5, 2])  # log interpolation between rows
    assert np.isnan(axes.x([0.9]))[0]  # outside the grid: not drawn


def test_code_change_invalidates_the_cache(tmp_path, monkeypatch):
    small(tmp_path)
    monkeypatch.setattr(sw, "package_fingerprint", lambda: "different code")
    counted = count_chunks(monkeypatch)
    small(tmp_path)
    assert counted["n"] == 6


def test_sweep_with_mixed_noise_levels_engines_and_signals():
    """Rows equal the same networks run alone, whatever else the sweep holds: several sigma_p in one
    chunk (each evaluated at its own noise level), the weights engine, and a dense signal."""
    axes = {"p": [0.0, 0.8], "sigma_p": [0.5, 1.5], "signal": ["sparse", "dense"]}
    df = sw.sweep(axes, [3], base=BASE, progress=False)
    assert len(df) == 8 and set(df.sigma_p) == {0.5, 1.5} and set(df.signal) == {"sparse", "dense"}
    weights = sw.sweep(axes, [3], base=BASE, progress=False, engine="weights")
    # the same networks, either engine: float32 rounding may flip a test sample whose margin is near 0
    assert (weights.test_error - df.test_error).abs().max() <= 2 / 10_000
    np.testing.assert_allclose(weights.final_loss, df.final_loss, rtol=1e-4, atol=1e-12)
    for row in df.itertuples():
        alone = run(BASE.with_(sigma_p=row.sigma_p, signal=row.signal), [row.p], [row.seed], record_every=BASE.steps)
        assert row.test_error == alone.test_error[0]
        assert row.final_loss == pytest.approx(alone.final_loss[0], rel=1e-5)
    noisy = df[df.sigma_p == 1.5].test_error.mean()
    assert noisy >= df[df.sigma_p == 0.5].test_error.mean(), "more noise does not make the networks better"


FLOW_BASE = BASE.with_(dynamics="flow", t_end=40.0)


def test_flow_sweeps_resume_exactly_and_never_share_a_key_with_gd(tmp_path, monkeypatch):
    """A sweep on the flow: every row as the network flowed alone, the chunk cache exact on resume,
    and GD chunks of the same grid never reused for it (the dynamics are part of the key)."""
    flow_df = sw.sweep(AXES, SEEDS, base=FLOW_BASE, cache_dir=tmp_path, chunk_size=3, progress=False)
    assert (flow_df["dynamics"] == "flow").all() and flow_df["lr"].isna().all() and flow_df["steps"].isna().all()
    assert (flow_df["t_final"] <= 40.0).all() and (flow_df["evaluations"] > 0).all() and not flow_df["stopped"].any()
    row = flow_df.iloc[5]
    alone = run(FLOW_BASE.with_(n=int(row.n)), [row.p], [row.seed]).table()
    assert row.final_loss == pytest.approx(alone.final_loss[0], rel=1e-5) and row.test_error == alone.test_error[0]
    assert int(row.evaluations) == int(alone.evaluations[0])  # on its own clock, whatever its chunk
    counted = count_chunks(monkeypatch)
    again = sw.sweep(AXES, SEEDS, base=FLOW_BASE, cache_dir=tmp_path, chunk_size=3, progress=False)
    assert counted["n"] == 0
    pd.testing.assert_frame_equal(again, flow_df)
    gd_df = sw.sweep(AXES, SEEDS, base=BASE, cache_dir=tmp_path, chunk_size=3, progress=False)
    assert counted["n"] == 4 and (gd_df["dynamics"] == "gd").all()
    assert (gd_df["evaluations"] == BASE.steps).all() and (gd_df["t_final"] == BASE.lr * BASE.steps).all()


def test_flow_sweep_memory_estimate_is_the_flows(monkeypatch):
    sizes = []
    real = sw.bytes_per_network

    def spy(engine, **kw):
        sizes.append(engine)
        return real(engine, **kw)

    monkeypatch.setattr(sw, "bytes_per_network", spy)
    sw.sweep({"p": [0.0]}, [0], base=FLOW_BASE, progress=False)
    sw.sweep({"p": [0.0]}, [0], base=BASE, progress=False)
    assert sizes == ["flow", "coefficients"]


# ---- the cache directory: checked first, shared safely, cleaned -----------------------------------

def test_a_cache_dir_that_is_a_file_is_named_before_any_work(tmp_path, monkeypatch):
    calls = count_chunks(monkeypatch)
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    with pytest.raises(ValueError, match="^cache_dir: .* is not a directory"):
        small(f)
    assert calls["n"] == 0


READ_ONLY_RUN = """
import sys
import prunebook.sweep as sw
from prunebook.experiment import Setting
sw._run_chunk = lambda *a, **k: sys.exit("work started before the cache directory was checked")
try:
    sw.sweep({"p": [0.0]}, [0], base=Setting(d=40, n=4, m=2, steps=2), cache_dir=sys.argv[1], progress=False)
except ValueError as exc:
    print(exc)
"""


def test_a_read_only_cache_dir_is_named_before_any_work(tmp_path):
    """On a read-only mount (as root, permission bits alone would not stop a write)."""
    import shutil
    import subprocess
    import sys

    assert shutil.which("unshare"), "util-linux's unshare makes the read-only mount"
    cache = tmp_path / "cache"
    cache.mkdir()
    script = tmp_path / "run.py"
    script.write_text(READ_ONLY_RUN)
    cmd = (f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache} && "
           f"{sys.executable} {script} {cache}")
    res = subprocess.run(["unshare", "--mount", "sh", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("cache_dir: ") and "cannot be written" in res.stdout, res.stdout
    assert not list(cache.iterdir())


SHARED_RUN = """
import sys
import prunebook.sweep as sw
from prunebook.experiment import Setting
df = sw.sweep({"p": [0.0, 0.5, 0.9]}, [0, 1], base=Setting(d=60, n=10, m=4, steps=40, mu_norm=5.0),
              cache_dir=sys.argv[1], chunk_size=1, progress=False)
df.to_csv(sys.argv[2], index=False)
"""


def test_two_processes_share_one_cache_dir(tmp_path):
    """Two sweeps of the same grid at once on one cache: both finish, with the same table, and leave
    one chunk per network and no temporary file."""
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(SHARED_RUN)
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, str(script), str(cache), str(tmp_path / f"out{k}.csv")],
                              stderr=subprocess.PIPE, text=True) for k in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    a, b = (pd.read_csv(tmp_path / f"out{k}.csv") for k in range(2))
    pd.testing.assert_frame_equal(a, b)
    assert len(list(cache.glob("chunk-*.npz"))) == 6 and not list(cache.glob("*.tmp"))


def test_chunks_of_older_code_are_pruned_and_versions_are_in_the_key(tmp_path, monkeypatch):
    import numba
    import torch

    small(tmp_path)
    old = set(tmp_path.glob("chunk-*.npz"))
    assert old
    code = sw.code_version()
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    assert sw.code_version() != code
    monkeypatch.setattr(torch, "__version__", torch.__version__)
    monkeypatch.setattr(numba, "__version__", "0.0.1")
    assert sw.code_version() != code  # a new torch or numba: a new key, never an old result
    monkeypatch.setattr(sw, "code_version", lambda: "another version of the code")
    (tmp_path / "chunk-leftover.tmp").write_text("a writer died here")
    import os
    import time
    os.utime(tmp_path / "chunk-leftover.tmp", (time.time() - 2 * sw.STALE_TMP_SECONDS,) * 2)
    small(tmp_path)
    new = set(tmp_path.glob("chunk-*.npz"))
    assert new and not (new & old), "the old code's chunks are gone, the new ones written"
    assert not list(tmp_path.glob("*.tmp"))
    kept = small(tmp_path, prune=False)
    assert len(kept) == 12 and set(tmp_path.glob("chunk-*.npz")) == new
