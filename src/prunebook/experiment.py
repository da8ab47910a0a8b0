"""One standard experiment, shared by the chapters and the sweeps: build networks from seeds, train, evaluate.

Every network is fixed by a :class:`Setting`, a pruning fraction ``p`` and an integer ``seed``.
The seed drives independent streams (data, initial weights, mask uniforms, test samples; see
:mod:`prunebook.seeds`), so

- the same (setting, p, seed) gives the same network whatever else is in the batch;
- networks with the same seed but different p share their data and initialization, and their masks
  are nested (a weight kept at p is kept at every smaller p): comparisons across p are paired.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from numbers import Real
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd
import torch

from prunebook._checks import (check_binary, check_device, check_fraction, check_nonneg_int, check_one_of, check_positive,
                               check_positive_int, check_q)
from prunebook.conventions import DEFAULT_TEST_SIZE, LOSS_TARGET, MIN_TEST_SIZE
from prunebook.data import SIGNAL_KINDS, Dataset, sample_data, signal_vector, stack_datasets
from prunebook.evaluate import TestStatistics, test_statistics
from prunebook.network import init_weights
from prunebook.pruning import mask_uniforms, signal_neuron_counts, usable_neurons
from prunebook.seeds import stream_seed
from prunebook.engines import GD_ENGINES
from prunebook.train import TrainResult, flow, train

__all__ = ["DYNAMICS", "Setting", "SETTING_FIELDS", "BATCH_FIELDS", "grid", "build", "build_batch", "Run", "run"]


#: the two dynamics a run can use: GD with a step size and a number of steps, or the gradient flow
DYNAMICS = ("gd", "flow")
_GD_FIELDS = ("lr", "steps")
_FLOW_FIELDS = ("t_end", "rtol", "stop_loss")


@dataclass(frozen=True)
class Setting:
    """Sizes, hyper-parameters and dynamics of one experiment (defaults: the book's reference
    configuration, d = 1000, n = 50, m = 20, trained by GD at lr = 1 for 1000 steps).

    ``dynamics="gd"`` trains with step ``lr`` (default 1.0) for ``steps`` steps (default 1000);
    ``dynamics="flow"`` integrates the gradient flow to time ``t_end`` (required: GD reaches
    t = lr x steps) at relative tolerance ``rtol`` (default 1e-4), stopping a network early when its
    training loss falls to ``stop_loss`` (default None: never). The fields of the other dynamics
    stay None, and giving one is an error naming it.
    """

    d: int = 1000
    n: int = 50
    m: int = 20
    q: float = 3.0
    sigma_0: float = 0.01
    sigma_p: float = 1.0
    mu_norm: float = 8.0
    lr: float | None = None
    steps: int | None = None
    signal: str = "sparse"
    dynamics: str = "gd"
    t_end: float | None = None
    rtol: float | None = None
    stop_loss: float | None = None

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name in ("d", "n", "m"):
            put(name, check_positive_int(name, getattr(self, name)))
        put("q", check_q(self.q))
        for name in ("sigma_0", "sigma_p", "mu_norm"):
            put(name, check_positive(name, getattr(self, name)))
        check_one_of("signal", self.signal, SIGNAL_KINDS)
        check_one_of("dynamics", self.dynamics, DYNAMICS)
        if self.dynamics == "gd":
            for name in _FLOW_FIELDS:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only the flow (dynamics='flow') takes {name}; GD runs lr x steps")
            put("lr", check_positive("lr", 1.0 if self.lr is None else self.lr))
            put("steps", check_nonneg_int("steps", 1000 if self.steps is None else self.steps))
        else:
            for name in _GD_FIELDS:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: the flow has no {name}; give t_end (GD at lr x steps reaches t = lr x steps)")
            if self.t_end is None:
                raise ValueError("t_end: the flow (dynamics='flow') needs its time horizon t_end")
            put("t_end", check_positive("t_end", self.t_end))
            rtol = 1e-4 if self.rtol is None else self.rtol
            if isinstance(rtol, bool) or not isinstance(rtol, Real) or not 0 < float(rtol) < 1:
                raise ValueError(f"rtol: must be a number in (0, 1), got {rtol!r}")
            put("rtol", float(rtol))
            if self.stop_loss is not None:
                put("stop_loss", check_positive("stop_loss", self.stop_loss))

    @property
    def horizon(self) -> float:
        """The time the dynamics reach: lr x steps for GD, t_end for the flow."""
        return self.lr * self.steps if self.dynamics == "gd" else self.t_end

    def with_(self, **changes) -> Setting:
        """A copy with ``changes``; switching ``dynamics`` clears the other dynamics' fields unless given."""
        dynamics = changes.get("dynamics", self.dynamics)
        if dynamics != self.dynamics:
            for name in (_GD_FIELDS if dynamics == "flow" else _FLOW_FIELDS):
                changes.setdefault(name, None)
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record) -> Setting:
        """The setting of a table row or any mapping holding the setting's fields (pandas' NaN and
        NumPy scalars read as None and Python numbers; a field the record lacks takes its default)."""
        values = {}
        for f in fields(cls):
            v = record[f.name] if f.name in record else f.default
            if v is None or (isinstance(v, float) and math.isnan(v)):
                v = None
            elif isinstance(v, np.generic):
                v = v.item()
            if v is not None and f.name in ("d", "n", "m", "steps"):
                v = int(v)
            values[f.name] = v
        return cls(**values)


SETTING_FIELDS = tuple(f.name for f in fields(Setting))
#: fields that must be equal for networks to share a training batch
BATCH_FIELDS = ("d", "n", "m", "q", "signal", "dynamics", "lr", "steps", "t_end", "rtol", "stop_loss")


def grid(*axes: Iterable) -> tuple[list, ...]:
    """The Cartesian product of ``axes`` as one list per axis (first axis slowest).

    ``ps, seeds = grid(p_values, seed_list)`` gives every (p, seed) pair, p-major. An axis may be
    any finite iterable (a list, a range, a generator).
    """
    if not axes:
        raise ValueError("axes: need at least one non-empty axis")
    listed = []
    for a in axes:
        if isinstance(a, (str, bytes)) or not isinstance(a, Iterable):
            raise ValueError(f"axes: each axis must be a list of values, got {a!r}")
        listed.append(list(a))
    if any(len(a) == 0 for a in listed):
        raise ValueError("axes: need at least one non-empty axis, and no empty one")
    axes = listed
    rows = list(itertools.product(*axes))
    return tuple(list(col) for col in zip(*rows))


def _draw(setting: Setting, seed: int, *, dtype, device):
    """What a (setting, seed) fixes, whatever p: (W0, Dataset, mask uniforms u); the mask is u >= p."""
    s = setting
    signal_seed = stream_seed(seed, "signal") if s.signal == "dense" else None
    mu = signal_vector(s.d, s.mu_norm, kind=s.signal, seed=signal_seed, dtype=dtype, device=device)
    ds = sample_data(s.n, mu, sigma_p=s.sigma_p, seed=stream_seed(seed, "data"))
    W0 = init_weights(s.m, s.d, s.sigma_0, seed=stream_seed(seed, "init"), dtype=dtype, device=device)
    u = mask_uniforms(W0.shape, seed=stream_seed(seed, "mask"))
    return W0, ds, u


def build(setting: Setting, p: float, seed: int, *, dtype=torch.float32, device="cpu"):
    """(W0 [2, m, d], M [2, m, d], Dataset) for one network."""
    p = check_fraction("p", p)
    W0, ds, u = _draw(setting, seed, dtype=dtype, device=device)
    return W0, (u >= p).to(dtype=dtype, device=device), ds


def _pairs(ps, seeds) -> tuple[list[float], list[int]]:
    """Validated (p, seed) pairs: as many seeds as pruning fractions, at least one."""
    if isinstance(ps, (str, bytes)) or not isinstance(ps, Iterable):
        raise ValueError(f"ps: a list of pruning fractions, got {ps!r}")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds: a list of integer seeds, got {seeds!r}")
    ps, seeds = list(ps), list(seeds)
    if not ps:
        raise ValueError("ps: need at least one pruning fraction")
    if len(ps) != len(seeds):
        raise ValueError(f"seeds: need as many seeds as pruning fractions ({len(seeds)} vs {len(ps)})")
    return [check_fraction("p", p) for p in ps], [check_nonneg_int("seeds", s) for s in seeds]


def _settings(setting, count: int) -> list[Setting]:
    settings = [setting] * count if isinstance(setting, Setting) else list(setting)
    if len(settings) != count or not all(isinstance(s, Setting) for s in settings):
        raise ValueError("setting: a Setting, or one Setting per network")
    first = settings[0]
    for s in settings:
        for f in BATCH_FIELDS:
            if getattr(s, f) != getattr(first, f):
                raise ValueError(f"setting: networks trained together must share {f} ({getattr(s, f)} vs {getattr(first, f)})")
    return settings


def build_batch(setting, ps: Sequence[float], seeds: Sequence[int], *, dtype=torch.float32, device="cpu"):
    """Stack ``build`` over the pairs (ps[k], seeds[k]): W0, M [B, 2, m, d] and a batched Dataset.

    ``setting`` is one :class:`Setting` or one per network (sharing :data:`BATCH_FIELDS`).
    """
    ps, seeds = _pairs(ps, seeds)
    settings = _settings(setting, len(ps))
    device = check_device("device", device)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: the book's networks are float32 or float64, got {dtype}")
    # networks that differ only in p share their data, initialization and mask uniforms: draw those once
    drawn = {key: _draw(*key, dtype=dtype, device=device) for key in dict.fromkeys(zip(settings, seeds))}
    parts = [drawn[key] for key in zip(settings, seeds)]
    W0 = torch.stack([w for w, _, _ in parts])
    M = torch.stack([(u >= p).to(dtype=dtype, device=device) for (_, _, u), p in zip(parts, ps)])
    return W0, M, stack_datasets([ds for _, ds, _ in parts])


@dataclass
class Run:
    """Networks trained by :func:`run` (batch axis first) and their evaluation."""

    settings: list[Setting]  #: one per network
    ps: np.ndarray  #: [B]
    seeds: np.ndarray  #: [B]
    W0: torch.Tensor
    M: torch.Tensor
    data: Dataset
    result: TrainResult
    test: TestStatistics  #: test error, per-class errors and test margins, NumPy arrays [B]
    signal_neurons: np.ndarray  #: [B, 2] neurons per class that keep the signal coordinate
    usable_neurons: np.ndarray  #: [B, 2] usable neurons per class (kept coordinate, right initial sign)

    @property
    def setting(self) -> Setting:
        return self.settings[0]

    @property
    def test_error(self) -> np.ndarray:
        return self.test.error

    @property
    def final_loss(self) -> np.ndarray:
        return self.result.loss[-1].double().cpu().numpy()

    @property
    def final_train_error(self) -> np.ndarray:
        if self.result.train_error is None:
            raise ValueError("record: this run did not record 'train_error'")
        return self.result.train_error[-1].double().cpu().numpy()

    @property
    def diverged(self) -> np.ndarray:
        return self.result.diverged.cpu().numpy().reshape(len(self.ps))

    def converged(self, target_loss: float = LOSS_TARGET) -> np.ndarray:
        """Training error 0, final training loss below ``target_loss``, and no divergence."""
        return (self.final_train_error == 0) & (self.final_loss < target_loss) & ~self.diverged

    def table(self, target_loss: float = LOSS_TARGET) -> pd.DataFrame:
        """One row per network: its setting, p, seed and results (gamma and rho summaries if recorded)."""
        frame = pd.DataFrame([{**s.as_dict(), "p": float(p), "seed": int(sd)}
                              for s, p, sd in zip(self.settings, self.ps, self.seeds)])
        frame["final_loss"] = self.final_loss
        frame["train_error"] = self.final_train_error
        frame["test_error"] = self.test.error
        frame["test_error_pos"], frame["test_error_neg"] = self.test.error_pos, self.test.error_neg
        frame["test_margin_mean"], frame["test_margin_std"] = self.test.margin_mean, self.test.margin_std
        frame["test_loss"] = self.test.loss
        frame["signal_neurons_pos"], frame["signal_neurons_neg"] = self.signal_neurons.T
        frame["usable_pos"], frame["usable_neg"] = self.usable_neurons.T
        if self.result.gamma is not None:
            gamma = self.result.gamma[-1].double().cpu()  # [B, 2, m]
            frame["gamma_max_pos"] = gamma[:, 0].amax(-1).numpy()
            frame["gamma_max_neg"] = (-gamma[:, 1]).amax(-1).numpy()  # class -1 learns -mu: report j * gamma
        if self.result.rho is not None:
            rho = self.result.rho[-1].double().cpu().flatten(1)  # [B, 2 m n]
            frame["rho_max"] = rho.amax(-1).numpy()
            frame["rho_min"] = rho.amin(-1).numpy()
            frame["rho_abs_sum"] = rho.abs().sum(-1).numpy()
        res = self.result
        frame["t_final"] = (res.t_final.double().cpu().numpy().reshape(-1) if res.t_final is not None
                            else np.full(len(frame), float(res.times[-1])))
        frame["evaluations"] = (res.evaluations.cpu().numpy().reshape(-1) if res.evaluations is not None
                                else np.full(len(frame), int(res.steps[-1])))
        frame["stopped"] = (res.stopped.cpu().numpy().reshape(-1) if res.stopped is not None
                            else np.zeros(len(frame), dtype=bool))
        frame["diverged"] = self.diverged
        frame["converged"] = self.converged(target_loss)
        return frame


def run(
    setting,
    ps: Sequence[float],
    seeds: Sequence[int],
    *,
    engine: str | None = None,
    record=("loss", "train_error"),
    record_every: int = 10,
    record_at: Sequence[float] | None = None,
    n_test: int = DEFAULT_TEST_SIZE,
    dtype=torch.float32,
    device="cpu",
    masks: torch.Tensor | None = None,
) -> Run:
    """Train one network per (ps[k], seeds[k]) pair in a single batched call and measure test error.

    ``setting`` is one :class:`Setting` or one per network (sharing :data:`BATCH_FIELDS`); its
    ``dynamics`` says whether the networks are trained by GD (``engine``: "coefficients", the
    default, "weights" or "gram"; recorded every ``record_every`` steps) or by the gradient flow
    (recorded at the times ``record_at``, default 0 and t_end). ``masks`` [B, 2, m, d] replaces the
    random masks (e.g. masks from :mod:`prunebook.criteria`, computed on the same seeds' initial
    weights and data). The training error is always recorded.
    """
    ps, seeds = _pairs(ps, seeds)
    settings = _settings(setting, len(ps))
    s0 = settings[0]
    if s0.dynamics == "gd":
        engine = check_one_of("engine", "coefficients" if engine is None else engine, GD_ENGINES)
    elif engine not in (None, "flow"):
        raise ValueError(f"engine: the flow picks its own basis; leave engine unset (got {engine!r})")
    n_test = check_positive_int("n_test", n_test)
    if n_test < MIN_TEST_SIZE:
        raise ValueError(f"n_test: use at least {MIN_TEST_SIZE} fresh samples, got {n_test}")
    if masks is not None:
        s = settings[0]
        want = (len(ps), 2, s.m, s.d)
        if not isinstance(masks, torch.Tensor) or tuple(masks.shape) != want:
            raise ValueError(f"masks: expected a tensor of shape {want}, got "
                             f"{tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__}")
        check_binary("masks", masks)
    W0, M, ds = build_batch(settings, ps, seeds, dtype=dtype, device=device)
    if masks is not None:
        M = masks.to(dtype=dtype, device=device)
    record = (record,) if isinstance(record, str) else tuple(record or ())
    if s0.dynamics == "gd":
        res = train(W0, M, ds.X, ds.y, q=s0.q, lr=s0.lr, steps=s0.steps, engine=engine,
                    record=(*record, "train_error"), record_every=record_every)
    else:
        res = flow(W0, M, ds.X, ds.y, q=s0.q, t_end=s0.t_end, rtol=s0.rtol, stop_loss=s0.stop_loss,
                   record=(*record, "train_error"), record_at=record_at)
    stats = test_statistics(res.W, M, ds.mu, q=s0.q, sigma_p=[s.sigma_p for s in settings], n_test=n_test,
                            seed=[stream_seed(int(sd), "test") for sd in seeds])
    te = TestStatistics(*(t.double().cpu().numpy() for t in stats))
    return Run(
        settings, np.asarray(ps, float), np.asarray(seeds), W0, M, ds, res, te,
        signal_neuron_counts(M, ds.mu).cpu().numpy(), usable_neurons(W0, M, ds.mu).cpu().numpy(),
    )
