"""Sweeps over grids of configurations, saved chunk by chunk and resumable.

``sweep({"p": [...], "n": [...]}, seeds=range(10))`` trains one network per (grid point, seed) and
returns a tidy ``pandas.DataFrame`` with one row per network: its configuration, final training
loss and error, test error on fresh samples, signal-carrying neurons per class, summaries of gamma
and rho, and a ``converged`` flag.

- Networks that share their shapes (d, n, m) and training settings (q, lr, steps) train together in
  batched chunks under a memory cap; networks with different n are never padded into one loss.
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
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import fields

import numpy as np
import pandas as pd
import torch

from prunebook._checks import check_positive_int
from prunebook._version import __version__
from prunebook.data import stack_datasets
from prunebook.dynamics import basis_width
from prunebook.evaluate import test_error
from prunebook.experiment import Setting, build, stream_seed
from prunebook.pruning import signal_neuron_counts
from prunebook.theory import snr_p
from prunebook.train import train

__all__ = ["SETTING_FIELDS", "RESULT_COLUMNS", "configurations", "sweep"]

SETTING_FIELDS = tuple(f.name for f in fields(Setting))
#: fields that must be equal for networks to share a training batch
_BATCH_FIELDS = ("d", "n", "m", "q", "lr", "steps", "signal")
RESULT_COLUMNS = (
    "final_loss", "train_error", "test_error", "signal_neurons_pos", "signal_neurons_neg",
    "gamma_max_pos", "gamma_max_neg", "rho_max", "rho_min", "converged", "diverged",
)


def configurations(axes: Mapping[str, Sequence], seeds: Sequence[int], base: Setting = Setting()) -> list[dict]:
    """The Cartesian product of ``axes`` (keys: "p" and any Setting field) times ``seeds``, validated."""
    if not isinstance(axes, Mapping) or "p" not in axes:
        raise ValueError("axes: a mapping with at least the key 'p' (pruning fractions)")
    unknown = set(axes) - set(SETTING_FIELDS) - {"p"}
    if unknown:
        raise ValueError(f"axes: unknown keys {sorted(unknown)}; use 'p' and Setting fields {SETTING_FIELDS}")
    for k, v in axes.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) == 0:
            raise ValueError(f"axes: the values for {k!r} must be a non-empty list")
    for p in axes["p"]:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"axes: every p must lie in [0, 1), got {p!r}")
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


def _bytes_per_network(cfg: dict, engine: str, element_size: int) -> int:
    d, n, m = cfg["d"], cfg["n"], cfg["m"]
    width = basis_width(n)  # the coefficient engine's vectors (mu, xi_1..xi_n, -mu, padding)
    tensors = 2 * n * d + 4 * 2 * m * d + width * d  # X, W0/M/W/gradient, basis vectors
    if engine == "coefficients":
        tensors += 2 * 2 * m * width**2 + 8 * 2 * m * width + 2 * 2 * m * n  # Gram, per-step temporaries, records
    else:
        tensors += 4 * n * 2 * 2 * m  # pre-activations and their derivatives
    return tensors * element_size


def code_fingerprint() -> str:
    """sha256 of the package's source files: any change to the code invalidates cached chunks."""
    h = hashlib.sha256()
    for f in sorted(pathlib.Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _chunk_key(chunk: list[dict], eval_settings: dict) -> str:
    blob = json.dumps(
        {"configs": chunk, "eval": eval_settings, "version": __version__, "code": code_fingerprint()}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


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


def _save(path: pathlib.Path, key: str, frame: pd.DataFrame, configs: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    arrays = {c: frame[c].to_numpy() for c in RESULT_COLUMNS}
    with open(tmp, "wb") as fh:
        np.savez(fh, __key__=np.array(key), __configs__=np.array(json.dumps(configs)), **arrays)
    os.replace(tmp, path)  # atomic: a killed write never leaves a half file under the real name


def _run_chunk(chunk: list[dict], *, engine: str, n_test: int, target_loss: float, dtype, device) -> pd.DataFrame:
    """Train and evaluate one chunk of networks sharing their shapes and training settings."""
    settings = [Setting(**{k: c[k] for k in SETTING_FIELDS}) for c in chunk]
    parts = [build(s, c["p"], c["seed"], dtype=dtype, device=device) for s, c in zip(settings, chunk)]
    W0 = torch.stack([w for w, _, _ in parts])
    M = torch.stack([mm for _, mm, _ in parts])
    data = stack_datasets([ds for _, _, ds in parts])
    s0 = settings[0]
    res = train(
        W0, M, data.X, data.y, q=s0.q, lr=s0.lr, steps=s0.steps, engine=engine,
        record=("loss", "train_error", "gamma", "rho"), record_every=max(1, s0.steps), on_divergence="warn",
    )
    sigma_ps = {s.sigma_p for s in settings}
    errors = []
    for sp in sorted(sigma_ps):  # test error per noise level (usually one)
        rows = [i for i, s in enumerate(settings) if s.sigma_p == sp]
        te = test_error(res.W[rows], M[rows], data.mu[rows], q=s0.q, sigma_p=sp, n_test=n_test,
                        seed=[stream_seed(chunk[i]["seed"], "test") for i in rows])
        errors.append((rows, te.double().cpu().numpy()))
    te_all = np.empty(len(chunk))
    for rows, te in errors:
        te_all[rows] = te
    counts = signal_neuron_counts(M, data.mu).cpu().numpy()
    gamma = res.gamma[-1].double().cpu()  # [B, 2, m]
    rho = res.rho[-1].double().cpu()  # [B, 2, m, n]
    final_loss = res.loss[-1].double().cpu().numpy()
    frame = pd.DataFrame(chunk)
    frame["final_loss"] = final_loss
    frame["train_error"] = res.train_error[-1].double().cpu().numpy()
    frame["test_error"] = te_all
    frame["signal_neurons_pos"] = counts[:, 0]
    frame["signal_neurons_neg"] = counts[:, 1]
    frame["gamma_max_pos"] = gamma[:, 0].amax(-1).numpy()
    frame["gamma_max_neg"] = (-gamma[:, 1]).amax(-1).numpy()  # class -1 learns -mu: report j * gamma
    frame["rho_max"] = rho.flatten(1).amax(-1).numpy()
    frame["rho_min"] = rho.flatten(1).amin(-1).numpy()
    frame["diverged"] = res.diverged.cpu().numpy()
    frame["converged"] = (final_loss < target_loss) & ~frame["diverged"].to_numpy()
    return frame


def sweep(
    axes: Mapping[str, Sequence],
    seeds: Sequence[int],
    *,
    base: Setting = Setting(),
    cache_dir: str | os.PathLike | None = None,
    memory_cap_bytes: int = 2**30,
    chunk_size: int | None = None,
    engine: str = "coefficients",
    n_test: int = 2000,
    target_loss: float = 1e-2,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Train one network per configuration of ``axes`` x ``seeds``; one row per network.

    ``converged`` is ``final_loss < target_loss`` (and not diverged). The returned frame also has
    the book's heuristics ``snr_p`` and ``n_snr_q`` for each row.
    """
    configs = configurations(axes, seeds, base)
    memory_cap_bytes = check_positive_int("memory_cap_bytes", memory_cap_bytes)
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    if engine not in ("weights", "coefficients"):
        raise ValueError(f"engine: must be 'weights' or 'coefficients', got {engine!r}")
    n_test = check_positive_int("n_test", n_test)
    if n_test < 2000:
        raise ValueError(f"n_test: use at least 2000 fresh samples, got {n_test}")
    if not (isinstance(target_loss, (int, float)) and target_loss > 0):
        raise ValueError(f"target_loss: must be a number > 0, got {target_loss!r}")
    cache = None
    if cache_dir is not None:
        cache = pathlib.Path(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)

    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple(c[k] for k in _BATCH_FIELDS), []).append(i)
    element = torch.empty(0, dtype=dtype).element_size()
    eval_settings = {"engine": engine, "n_test": n_test, "target_loss": target_loss, "dtype": str(dtype)}
    plan = []
    for idx in groups.values():
        size = chunk_size or max(1, memory_cap_bytes // _bytes_per_network(configs[idx[0]], engine, element))
        plan += [idx[s : s + size] for s in range(0, len(idx), size)]

    from tqdm.auto import tqdm

    frames: list[tuple[list[int], pd.DataFrame]] = []
    with tqdm(total=len(configs), desc="networks", unit="net", disable=not progress) as bar:
        for idx in plan:
            chunk = [configs[i] for i in idx]
            key = _chunk_key(chunk, eval_settings)
            path = cache / f"chunk-{key[:24]}.npz" if cache is not None else None
            frame = _load(path, key) if path is not None else None
            if frame is None:
                frame = _run_chunk(chunk, engine=engine, n_test=n_test, target_loss=target_loss, dtype=dtype, device=device)
                if path is not None:
                    _save(path, key, frame, chunk)
            frames.append((idx, frame))
            bar.update(len(idx))

    order = np.concatenate([np.asarray(idx) for idx, _ in frames])
    table = pd.concat([f for _, f in frames], ignore_index=True)
    table.index = order
    table = table.sort_index()[[*SETTING_FIELDS, "p", "seed", *RESULT_COLUMNS]]
    table.index = pd.RangeIndex(len(table))
    table["snr_p"] = [snr_p(r.mu_norm, r.sigma_p, r.d, r.p) for r in table.itertuples()]
    table["n_snr_q"] = table["n"] * table["snr_p"] ** table["q"]
    for c in ("signal_neurons_pos", "signal_neurons_neg"):
        table[c] = table[c].astype(int)
    for c in ("converged", "diverged"):
        table[c] = table[c].astype(bool)
    return table
