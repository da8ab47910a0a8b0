"""Sweeps over grids of configurations, saved chunk by chunk and resumable.

``sweep({"p": [...], "n": [...]}, seeds=range(10))`` trains one network per (grid point, seed) and
returns a tidy ``pandas.DataFrame`` with one row per network: its configuration, final training
loss and error, test error on fresh samples, signal-carrying and usable neurons per class,
summaries of gamma and rho, and a ``converged`` flag. Networks are trained and evaluated by
:func:`prunebook.experiment.run`, exactly as a chapter's own runs are.

- Networks that share their shapes (d, n, m) and dynamics (GD's q, lr, steps; or the flow's t_end,
  rtol, stop_loss) train together in batched chunks under a memory cap; networks with different n are
  never padded into one loss.
- With ``cache_dir``, every finished chunk is written at once (``.npz``, no pickle) under a name
  derived from a hash of its configurations, the evaluation settings, the package version and a
  fingerprint of the package's source code (so a code change never reuses old results). A
  killed sweep resumes where it stopped; a truncated, corrupt or stale file is detected and the
  chunk recomputed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pathlib
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from prunebook._checks import check_device, check_fraction, check_one_of, check_positive, check_positive_int
from prunebook._version import __version__
from prunebook.conventions import DEFAULT_TEST_SIZE, LOSS_TARGET, MIN_TEST_SIZE
from prunebook.experiment import BATCH_FIELDS, SETTING_FIELDS, Setting, run
from prunebook.provenance import package_fingerprint
from prunebook.theory import snr_p
from prunebook.engines import GD_ENGINES
from prunebook.train import bytes_per_network

__all__ = ["RESULT_COLUMNS", "configurations", "sweep"]

RESULT_COLUMNS = (
    "final_loss", "train_error", "test_error", "test_error_pos", "test_error_neg", "test_margin_mean",
    "test_margin_std", "test_loss", "signal_neurons_pos", "signal_neurons_neg", "usable_pos",
    "usable_neg", "gamma_max_pos", "gamma_max_neg", "rho_max", "rho_min", "rho_abs_sum", "t_final", "evaluations",
    "stopped", "converged", "diverged",
)


def configurations(axes: Mapping[str, Sequence], seeds: Sequence[int], base: Setting = Setting()) -> list[dict]:
    """The Cartesian product of ``axes`` (keys: "p" and any Setting field) times ``seeds``, validated."""
    if not isinstance(axes, Mapping) or "p" not in axes:
        raise ValueError("axes: a mapping with at least the key 'p' (pruning fractions)")
    if not isinstance(base, Setting):
        raise TypeError(f"base: a prunebook.experiment.Setting, got {type(base).__name__}")
    unknown = set(axes) - set(SETTING_FIELDS) - {"p"}
    if unknown:
        raise ValueError(f"axes: unknown keys {sorted(unknown)}; use 'p' and Setting fields {SETTING_FIELDS}")
    listed = {}
    for k, v in axes.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
            raise ValueError(f"axes: the values for {k!r} must be a non-empty list")
        listed[k] = list(v)
        if not listed[k]:
            raise ValueError(f"axes: the values for {k!r} must be a non-empty list")
    axes = listed
    for p in axes["p"]:
        try:
            check_fraction("p", p)
        except ValueError as exc:
            raise ValueError(f"axes: every p must lie in [0, 1), got {p!r}") from exc
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds: a non-empty list of integers >= 0, got {seeds!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds: a non-empty list of integers >= 0, got {seeds!r}")
    keys = list(axes)
    out = []
    for values in itertools.product(*(axes[k] for k in keys)):
        point = dict(zip(keys, values))
        setting = base.with_(**{k: v for k, v in point.items() if k != "p"})  # validates
        for s in seeds:
            out.append({**setting.as_dict(), "p": float(point["p"]), "seed": int(s)})
    return out


def code_version() -> str:
    """What a cached result depends on besides its configuration: the package's version and source
    fingerprint, and the versions of torch, numba and numpy that computed it (their kernels and
    random streams)."""
    import numba

    blob = json.dumps({"version": __version__, "code": package_fingerprint(), "torch": torch.__version__,
                       "numba": numba.__version__, "numpy": np.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _chunk_key(chunk: list[dict], eval_settings: dict, code: str) -> str:
    blob = json.dumps({"configs": chunk, "eval": eval_settings, "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def check_cache_dir(cache_dir) -> pathlib.Path:
    """The cache directory, created if missing and proven writable, before any work."""
    try:
        cache = pathlib.Path(cache_dir)
    except TypeError as exc:
        raise TypeError(f"cache_dir: a path, got {type(cache_dir).__name__}") from exc
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"cache_dir: {cache} exists and is not a directory")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"cache_dir: {cache} cannot be written ({exc.strerror or exc})") from exc
    return cache


#: a leftover temporary file older than this (a writer killed mid-write) is removed
STALE_TMP_SECONDS = 3600


def prune_cache(cache: pathlib.Path, code: str) -> int:
    """Remove chunks computed by other code (older sources or other library versions: they can never
    be reused, as the key holds the code) and leftover temporary files; returns how many went."""
    removed = 0
    for path in cache.glob("chunk-*.npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                stale = "__code__" not in z.files or str(z["__code__"]) != code
        except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError):
            stale = True
        if stale:
            path.unlink(missing_ok=True)
            removed += 1
    now = time.time()
    for tmp in cache.glob("chunk-*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:  # another writer renamed it meanwhile
            pass
    return removed


def _load(path: pathlib.Path, key: str) -> pd.DataFrame | None:
    """The saved chunk, or None if it is missing, truncated, corrupt or stale."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["__key__"]) != key:
                return None
            cols = {c: z[c] for c in z.files if not c.startswith("__")}
            configs = json.loads(str(z["__configs__"]))
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, json.JSONDecodeError):
        return None
    frame = pd.DataFrame(configs)
    for c in RESULT_COLUMNS:
        if c not in cols or len(cols[c]) != len(frame):
            return None
        frame[c] = cols[c]
    return frame


def _save(path: pathlib.Path, key: str, code: str, frame: pd.DataFrame, configs: list[dict]) -> None:
    """Write the chunk under a temporary name of this writer's own, then rename it into place: a killed
    write never leaves a half file under the real name, and two processes writing the same chunk (the
    same result) both succeed, the last rename winning."""
    arrays = {c: frame[c].to_numpy() for c in RESULT_COLUMNS}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, __key__=np.array(key), __code__=np.array(code), __configs__=np.array(json.dumps(configs)),
                     **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _run_chunk(chunk: list[dict], *, engine: str, n_test: int, target_loss: float, dtype, device) -> pd.DataFrame:
    """Train and evaluate one chunk of networks sharing their shapes and dynamics."""
    settings = [Setting(**{k: c[k] for k in SETTING_FIELDS}) for c in chunk]
    s0 = settings[0]
    gd = s0.dynamics == "gd"
    result = run(settings, [c["p"] for c in chunk], [c["seed"] for c in chunk], engine=engine if gd else None,
                 record=("loss", "train_error", "gamma", "rho"), record_every=max(1, s0.steps or 1),
                 n_test=n_test, dtype=dtype, device=device)
    return result.table(target_loss)[[*SETTING_FIELDS, "p", "seed", *RESULT_COLUMNS]]


def _progress(total: int, enabled: bool):
    """A plain-text progress bar (never a notebook widget: the book renders offline)."""
    from tqdm import tqdm

    return tqdm(total=total, desc="networks", unit="net", disable=not enabled, file=sys.stdout, ascii=True,
                mininterval=2.0)


def sweep(
    axes: Mapping[str, Sequence],
    seeds: Sequence[int],
    *,
    base: Setting = Setting(),
    cache_dir: str | os.PathLike | None = None,
    memory_cap_bytes: int = 2**30,
    chunk_size: int | None = None,
    engine: str = "coefficients",
    n_test: int = DEFAULT_TEST_SIZE,
    target_loss: float = LOSS_TARGET,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    progress: bool = True,
    prune: bool = True,
) -> pd.DataFrame:
    """Train one network per configuration of ``axes`` x ``seeds``; one row per network.

    ``converged`` is: training error 0, final training loss below ``target_loss``, not diverged.
    The returned frame also has the book's heuristics ``snr_p`` and ``n_snr_q`` for each row.
    With ``cache_dir``, every finished chunk is saved at once and reused on a rerun; ``prune`` removes
    the chunks there that older code computed (never reusable) and writers' leftover temporary files.
    Everything is checked before the first network trains: the grid, the sizes against
    ``memory_cap_bytes`` (a network that alone exceeds it is refused), the device and the cache directory.
    """
    configs = configurations(axes, seeds, base)
    device = check_device("device", device)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: the book's networks are float32 or float64, got {dtype}")
    memory_cap_bytes = check_positive_int("memory_cap_bytes", memory_cap_bytes)
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    check_one_of("engine", engine, GD_ENGINES)
    n_test = check_positive_int("n_test", n_test)
    if n_test < MIN_TEST_SIZE:
        raise ValueError(f"n_test: use at least {MIN_TEST_SIZE} fresh samples, got {n_test}")
    target_loss = check_positive("target_loss", target_loss)
    cache = None if cache_dir is None else check_cache_dir(cache_dir)

    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple(c[k] for k in BATCH_FIELDS), []).append(i)
    element = torch.empty(0, dtype=dtype).element_size()
    eval_settings = {"engine": engine, "n_test": n_test, "target_loss": target_loss, "dtype": str(dtype)}
    plan = []
    for idx in groups.values():
        c0 = configs[idx[0]]
        used = engine if c0["dynamics"] == "gd" else "flow"
        one = bytes_per_network(used, d=c0["d"], n=c0["n"], m=c0["m"], element_size=element)
        if one > memory_cap_bytes:
            raise ValueError(f"memory_cap_bytes: one network (d = {c0['d']}, n = {c0['n']}, m = {c0['m']}, {used}) "
                             f"needs about {one:,} bytes, above the cap of {memory_cap_bytes:,}")
        size = chunk_size or max(1, memory_cap_bytes // one)
        plan += [idx[s : s + size] for s in range(0, len(idx), size)]

    code = code_version() if cache is not None else ""  # once per sweep
    if cache is not None and prune:
        prune_cache(cache, code)
    frames: list[tuple[list[int], pd.DataFrame]] = []
    with _progress(len(configs), progress) as bar:
        for idx in plan:
            chunk = [configs[i] for i in idx]
            key = _chunk_key(chunk, eval_settings, code)
            path = cache / f"chunk-{key[:24]}.npz" if cache is not None else None
            frame = _load(path, key) if path is not None else None
            if frame is None:
                frame = _run_chunk(chunk, engine=engine, n_test=n_test, target_loss=target_loss, dtype=dtype, device=device)
                if path is not None:
                    _save(path, key, code, frame, chunk)
            frames.append((idx, frame))
            bar.update(len(idx))

    order = np.concatenate([np.asarray(idx) for idx, _ in frames])
    table = pd.concat([f for _, f in frames], ignore_index=True)
    table.index = order
    table = table.sort_index()[[*SETTING_FIELDS, "p", "seed", *RESULT_COLUMNS]]
    table.index = pd.RangeIndex(len(table))
    table["snr_p"] = [snr_p(r.mu_norm, r.sigma_p, r.d, r.p) for r in table.itertuples()]
    table["n_snr_q"] = table["n"] * table["snr_p"] ** table["q"]
    for c in ("signal_neurons_pos", "signal_neurons_neg", "usable_pos", "usable_neg"):
        table[c] = table[c].astype(int)
    table["evaluations"] = table["evaluations"].astype(int)
    for c in ("converged", "diverged", "stopped"):
        table[c] = table[c].astype(bool)
    return table
