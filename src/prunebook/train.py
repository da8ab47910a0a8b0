"""Running the dynamics: ``train`` (full-batch gradient descent) and ``flow`` (the gradient flow).

``train(W0, M, X, y, q=..., lr=..., steps=...)`` runs GD on L(W) = (1/n) sum_i log(1 + exp(-y_i f(W, x_i)))
for every network in the broadcast batch of (W0, M, X, y) at once; ``flow(W0, M, X, y, t_end=...)``
integrates dW/dt = -grad L(W), the limit of GD as lr -> 0 at time t = lr x steps. Each network has
its own weights, mask and data; networks never interact, so a network's trajectory does not depend
on which other networks share its batch.

The engines (:mod:`prunebook.engines`) give the same trajectory to float precision:

- ``engine="weights"``: GD on the weights, O(m n d) a step, any data;
- ``engine="coefficients"``: GD on the signal-noise coefficients, O(m n^2) a step after an
  O(m n^2 d) set-up (data of the two-patch model);
- ``engine="gram"``: GD on the patch basis, O(m (n P)^2) a step, any data;
- ``flow``: an embedded Runge-Kutta pair with a step size per network, on the signal-noise basis
  for two-patch data and on the patch basis otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from prunebook._checks import check_nonneg_int, check_one_of, check_positive, check_positive_int, check_q
from prunebook.conventions import LOSS_TARGET
from prunebook.decomposition import split_patches
from prunebook.engines import GD_ENGINES, coefficients, flow as flow_engine, weights
from prunebook.network import batch_shape, validate_inputs
from prunebook.result import RECORDABLE, TrainingDiverged, TrainResult, record_set, report_divergence

__all__ = ["ENGINES", "RECORDABLE", "TrainResult", "TrainingDiverged", "train", "flow", "bytes_per_network",
           "FLOW_METHODS"]

#: the engines ``train`` runs (GD) and the one ``flow`` runs
ENGINES = (*GD_ENGINES, "flow")
FLOW_METHODS = tuple(flow_engine.METHODS)
#: dtypes the engines compute in
DTYPES = (torch.float32, torch.float64)


def bytes_per_network(engine: str, *, d: int, n: int, m: int, element_size: int, patches: int = 2,
                      basis: str = "signal-noise", records: int = 2) -> int:
    """Peak memory of one network run by ``engine`` (each engine owns its estimate).

    ``patches`` matters for the weights and gram engines and for the flow on the patch basis
    (``basis="patches"``); ``records`` (the number of recorded states) for the flow.
    """
    check_one_of("engine", engine, ENGINES)
    if engine == "weights":
        return weights.bytes_per_network(d, n, m, element_size, patches)
    if engine == "coefficients":
        return coefficients.bytes_per_network(d, n, m, element_size)
    if engine == "gram":
        return coefficients.bytes_per_network(d, n, m, element_size, patches)
    return flow_engine.bytes_per_network(d, n, m, element_size, None if basis == "signal-noise" else patches,
                                         records=records)


def _check_dtype(W0: torch.Tensor) -> None:
    if W0.dtype not in DTYPES:
        raise TypeError(f"W0: the engines compute in float32 or float64, got {W0.dtype}; cast W0 and X")


def memory_limit(device: torch.device) -> int | None:
    """Bytes of memory on ``device``: the machine's physical memory for the CPU, the accelerator's own
    otherwise (None where it cannot be told)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def _check_memory(bs, W0, engine: str, n: int, patches: int, names, records: int, when: str, max_bytes,
                  basis: str = "signal-noise") -> None:
    """Refuse, before allocating, a batch or a record schedule larger than the memory at hand."""
    limit = memory_limit(W0.device) if max_bytes is None else check_positive_int("max_bytes", max_bytes)
    if limit is None:
        return
    B = int(torch.Size(bs).numel())
    two, m, d = W0.shape[-3:]
    element = W0.element_size()
    per = bytes_per_network(engine, d=d, n=n, m=m, element_size=element, patches=patches, basis=basis, records=0)
    if B * per > limit:
        raise MemoryError(f"W0: {B:,} networks (m = {m}, d = {d}, n = {n}) need about {_size(B * per)} with the "
                          f"{engine} engine ({_size(per)} each), more than the {_size(limit)} available; "
                          "run them in smaller batches (sweep chunks them by itself)")
    per_record = 2 + (2 * m if "gamma" in names else 0) + (2 * m * n if "rho" in names else 0)
    need = records * B * per_record * element
    if B * per + need > limit:
        raise MemoryError(f"{when}: {records:,} records of {B:,} networks need about {_size(need)}, more than the "
                          f"{_size(limit)} available; record fewer times")


def _check_not_empty(bs) -> None:
    if int(torch.Size(bs).numel()) == 0:
        raise ValueError(f"W0: the batch is empty (batch shape {tuple(bs)}); give at least one network")


def _basis(kind: str, X, y, bs, dtype) -> coefficients.Basis:
    if kind == "signal-noise":
        return coefficients.signal_noise_basis(split_patches(X, y), y, bs, dtype)
    return coefficients.patch_basis(X, bs, dtype)


def train(
    W0: torch.Tensor,
    M: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    q: float = 3,
    lr: float,
    steps: int,
    engine: str = "weights",
    record: Iterable[str] | str | None = ("loss",),
    record_every: int = 1,
    on_divergence: str = "warn",
    max_bytes: int | None = None,
) -> TrainResult:
    """Full-batch gradient descent from ``W0`` under the fixed mask ``M``.

    Parameters
    ----------
    W0, M : [batch..., 2, m, d]
        Initial weights and the binary pruning mask (pruned weights get zero gradient).
    X, y : [batch..., n, P, d] and [batch..., n]
        Training inputs and labels in {-1, +1}. Leading dimensions of W0, M, X, y broadcast.
    q, lr, steps :
        Activation power (>= 1), step size (> 0) and number of GD steps (>= 0).
    engine : "weights", "coefficients" or "gram"
    record :
        Any of "loss", "train_error", "gamma", "rho"; the loss is always recorded.
        "gamma" and "rho" need the two-patch data model (X[..., i, 0] = y_i mu).
    record_every :
        Record every k steps (and at the last step).
    on_divergence : "warn" or "raise"
        A network whose loss or weights become non-finite is frozen at its last finite iterate and
        flagged in ``result.diverged``; then a ``RuntimeWarning`` is issued, or
        :class:`TrainingDiverged` raised.
    max_bytes :
        Memory the run may use (default: the device's memory). A batch or a record schedule whose
        estimate exceeds it is refused before anything is allocated, with the sizes named.

    ``W0`` may carry an autograd graph: training starts from its detached value and keeps none.
    """
    bs = batch_shape(W0, M, X, y)
    _check_dtype(W0)
    _check_not_empty(bs)
    q = check_q(q)
    lr = check_positive("lr", lr)
    steps = check_nonneg_int("steps", steps)
    every = check_positive_int("record_every", record_every)
    names = record_set(record)
    check_one_of("engine", engine, GD_ENGINES)
    check_one_of("on_divergence", on_divergence, ("warn", "raise"))
    records = steps // every + 1 + (steps % every != 0)
    _check_memory(bs, W0, engine, X.shape[-3], X.shape[-2], names, records, "record_every", max_bytes)
    validate_inputs(W0, M, X, y, q)  # the values (binary mask, finite inputs, labels): after the sizes
    if engine == "gram" and names & {"gamma", "rho"}:
        raise ValueError("record: gamma and rho need the signal-noise basis (engine='coefficients' or 'weights')")
    needs_split = engine == "coefficients" or names & {"gamma", "rho"}
    split = split_patches(X, y) if needs_split else None  # validates the two-patch structure before any work

    W = W0.detach().expand(*bs, *W0.shape[-3:]).clone()
    M_float = M.to(W.dtype)
    if engine == "weights":
        result = weights.run(W, M_float, X.detach(), y, q=q, lr=lr, steps=steps, names=names, every=every, split=split)
    else:
        kind = "signal-noise" if engine == "coefficients" else "patches"
        basis = _basis(kind, X.detach(), y, bs, W.dtype)
        result = coefficients.run(W, M_float, basis, y, q=q, lr=lr, steps=steps, names=names, every=every, engine=engine)
    report_divergence(result.diverged, on_divergence)
    return result


def _record_times(record_at, t_end: float) -> list[float]:
    if record_at is None:
        return [0.0, t_end]
    if isinstance(record_at, (str, bytes)) or not isinstance(record_at, (Sequence, np.ndarray, torch.Tensor)):
        raise TypeError(f"record_at: a list of times in [0, t_end], got {type(record_at).__name__}")
    try:
        times = np.asarray([float(v) for v in record_at], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"record_at: a list of times in [0, t_end], got {record_at!r}") from exc
    if not np.all(np.isfinite(times)) or np.any(times < 0) or np.any(times > t_end):
        raise ValueError(f"record_at: every time must lie in [0, t_end = {t_end:g}]")
    return sorted({0.0, t_end, *times.tolist()})


def flow(
    W0: torch.Tensor,
    M: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    q: float = 3,
    t_end: float,
    rtol: float = 1e-4,
    method: str = flow_engine.DEFAULT_METHOD,
    record: Iterable[str] | str | None = ("loss",),
    record_at: Sequence[float] | None = None,
    stop_loss: float | None = LOSS_TARGET,
    basis: str = "auto",
    max_steps: int = flow_engine.MAX_STEPS,
    on_divergence: str = "warn",
    max_bytes: int | None = None,
) -> TrainResult:
    """The gradient flow dW/dt = -grad L(W) from ``W0`` under the fixed mask ``M``, up to time ``t_end``.

    GD with step lr for ``steps`` steps approximates the flow at t = lr x steps, with an error about
    proportional to lr. Each network is integrated on its own clock by an embedded Runge-Kutta pair
    with step-size control (:mod:`prunebook.engines.flow` states the method, its error norm and the
    absolute floor), so its trajectory does not depend on its batch.

    Parameters
    ----------
    W0, M, X, y, q :
        As for :func:`train` (leading dimensions broadcast).
    t_end :
        The time horizon (> 0), the flow's counterpart of lr x steps.
    rtol :
        Relative tolerance of the local error, in (0, 1); tighter converges to the exact flow.
    method : "DP54" (default) or "BS32"
        Dormand-Prince 5(4) or Bogacki-Shampine 3(2).
    record, record_at :
        What to record (as for :func:`train`) and when: times in [0, t_end] (0 and t_end are always
        included; default just those two). A network that stopped early records its final state at
        later times.
    stop_loss :
        Stop a network when its training loss falls to this value (the crossing located within the
        step); default the book's loss target; None integrates every network to ``t_end``.
    basis : "auto", "signal-noise" or "patches"
        The coefficient basis: the signal-noise basis needs two-patch data (and gives gamma and
        rho); the patch basis takes any data. "auto" picks the first that applies.
    max_steps :
        Steps (accepted and rejected) after which a network is given up and reported as diverged.
    on_divergence : "warn" or "raise"
        As for :func:`train`: a network whose step size underflows is frozen at its last accepted
        state and flagged in ``result.diverged``.
    max_bytes :
        As for :func:`train`.

    Returns a :class:`TrainResult` with ``times`` (the record times), ``steps`` None,
    ``evaluations`` (right-hand side evaluations per network), ``t_final`` and ``stopped``.
    """
    bs = batch_shape(W0, M, X, y)
    _check_dtype(W0)
    _check_not_empty(bs)
    q = check_q(q)
    t_end = check_positive("t_end", t_end)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)) or not 0 < float(rtol) < 1:
        raise ValueError(f"rtol: must be a number in (0, 1), got {rtol!r}")
    rtol = float(rtol)
    floor = 10 * torch.finfo(W0.dtype).eps
    if rtol < floor:
        raise ValueError(f"rtol: {rtol:g} is below 10 x the machine epsilon of {W0.dtype} ({floor:.2g}), where the "
                         "error estimate is round-off; use a larger rtol or float64")
    check_one_of("method", method, flow_engine.METHODS)
    names = record_set(record)
    times = _record_times(record_at, t_end)
    if stop_loss is not None:
        stop_loss = check_positive("stop_loss", stop_loss)
    check_one_of("basis", basis, ("auto", "signal-noise", "patches"))
    max_steps = check_positive_int("max_steps", max_steps)
    check_one_of("on_divergence", on_divergence, ("warn", "raise"))
    if basis == "auto":
        try:
            split_patches(X, y)
            basis = "signal-noise"
        except ValueError:
            basis = "patches"
    if basis == "patches" and names & {"gamma", "rho"}:
        raise ValueError("record: gamma and rho need the signal-noise basis (two-patch data of the model)")
    _check_memory(bs, W0, "flow", X.shape[-3], X.shape[-2], names, len(times), "record_at", max_bytes, basis=basis)
    validate_inputs(W0, M, X, y, q)
    W = W0.detach().expand(*bs, *W0.shape[-3:]).clone()
    system_basis = _basis(basis, X.detach(), y, bs, W.dtype)  # validates the two-patch form first
    result = flow_engine.run(W, M.to(W.dtype), system_basis, y, q=q, t_end=t_end, rtol=rtol, method=method,
                             record_at=times, names=names, stop_loss=stop_loss, max_steps=max_steps)
    report_divergence(result.diverged, on_divergence)
    return result
