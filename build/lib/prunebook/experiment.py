"""One standard experiment, shared by the chapters: build networks from seeds, train, evaluate.

Every network is fixed by a :class:`Setting`, a pruning fraction ``p`` and an integer ``seed``.
The seed drives three independent streams (data, initial weights, mask uniforms), so

- the same (setting, p, seed) gives the same network whatever else is in the batch;
- networks with the same seed but different p share their data and initialization, and their masks
  are nested (a weight kept at p is kept at every smaller p): comparisons across p are paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from prunebook._checks import check_fraction, check_nonneg_int, check_positive, check_positive_int, check_q
from prunebook.data import SIGNAL_KINDS, Dataset, sample_data, signal_vector, stack_datasets
from prunebook.evaluate import test_error
from prunebook.network import init_weights
from prunebook.pruning import random_mask, signal_neuron_counts
from prunebook.train import TrainResult, train

__all__ = ["Setting", "stream_seed", "build", "build_batch", "Run", "run"]

_STREAMS = {"data": 0, "init": 1, "mask": 2, "signal": 3, "test": 4}


@dataclass(frozen=True)
class Setting:
    """Sizes and hyper-parameters of one experiment (defaults: DESIGN section 2's configuration)."""

    d: int = 1000
    n: int = 50
    m: int = 20
    q: float = 3.0
    sigma_0: float = 0.01
    sigma_p: float = 1.0
    mu_norm: float = 8.0
    lr: float = 1.0
    steps: int = 1000
    signal: str = "sparse"

    def __post_init__(self):
        for name in ("d", "n", "m"):
            check_positive_int(name, getattr(self, name))
        check_q(self.q)
        for name in ("sigma_0", "sigma_p", "mu_norm", "lr"):
            check_positive(name, getattr(self, name))
        check_nonneg_int("steps", self.steps)
        if self.signal not in SIGNAL_KINDS:
            raise ValueError(f"signal: must be one of {SIGNAL_KINDS}, got {self.signal!r}")

    def with_(self, **changes) -> Setting:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


def stream_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one of the streams of ``seed`` (NumPy's SeedSequence)."""
    check_nonneg_int("seed", seed)
    return int(np.random.SeedSequence([seed, _STREAMS[stream]]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def build(setting: Setting, p: float, seed: int, *, dtype=torch.float32, device="cpu"):
    """(W0 [2, m, d], M [2, m, d], Dataset) for one network."""
    p = check_fraction("p", p)
    s = setting
    mu = signal_vector(
        s.d, s.mu_norm, kind=s.signal, seed=stream_seed(seed, "signal") if s.signal == "dense" else None, dtype=dtype, device=device
    )
    ds = sample_data(s.n, mu, sigma_p=s.sigma_p, seed=stream_seed(seed, "data"))
    W0 = init_weights(s.m, s.d, s.sigma_0, seed=stream_seed(seed, "init"), dtype=dtype, device=device)
    M = random_mask(W0.shape, p, seed=stream_seed(seed, "mask"), dtype=dtype, device=device)
    return W0, M, ds


def build_batch(setting: Setting, ps: Sequence[float], seeds: Sequence[int], *, dtype=torch.float32, device="cpu"):
    """Stack ``build`` over the pairs (ps[k], seeds[k]): W0, M [B, 2, m, d] and a batched Dataset."""
    if len(ps) != len(seeds) or len(ps) == 0:
        raise ValueError("seeds: need as many seeds as pruning fractions, at least one")
    parts = [build(setting, p, s, dtype=dtype, device=device) for p, s in zip(ps, seeds)]
    W0 = torch.stack([w for w, _, _ in parts])
    M = torch.stack([mm for _, mm, _ in parts])
    return W0, M, stack_datasets([ds for _, _, ds in parts])


@dataclass
class Run:
    """Networks trained by :func:`run` (batch axis first) and their evaluation."""

    setting: Setting
    ps: np.ndarray  #: [B]
    seeds: np.ndarray  #: [B]
    W0: torch.Tensor
    M: torch.Tensor
    data: Dataset
    result: TrainResult
    test_error: np.ndarray  #: [B]
    signal_neurons: np.ndarray  #: [B, 2] signal-carrying neurons per class

    @property
    def final_loss(self) -> np.ndarray:
        return self.result.loss[-1].double().cpu().numpy()


def run(
    setting: Setting,
    ps: Sequence[float],
    seeds: Sequence[int],
    *,
    engine: str = "coefficients",
    record=("loss", "train_error"),
    record_every: int = 10,
    n_test: int = 4000,
    dtype=torch.float32,
    device="cpu",
    masks: torch.Tensor | None = None,
) -> Run:
    """Train one network per (ps[k], seeds[k]) pair in a single batched call and measure test error.

    ``masks`` [B, 2, m, d] replaces the random masks (e.g. masks from :mod:`prunebook.criteria`,
    computed on the same seeds' initial weights and data).
    """
    W0, M, ds = build_batch(setting, ps, seeds, dtype=dtype, device=device)
    if masks is not None:
        if not isinstance(masks, torch.Tensor) or masks.shape != M.shape:
            raise ValueError(f"masks: expected a tensor of shape {tuple(M.shape)}")
        M = masks.to(dtype=dtype, device=device)
    res = train(
        W0, M, ds.X, ds.y, q=setting.q, lr=setting.lr, steps=setting.steps, engine=engine,
        record=record, record_every=record_every,
    )
    test_seeds = [stream_seed(s, "test") for s in seeds]
    te = test_error(res.W, M, ds.mu, q=setting.q, sigma_p=setting.sigma_p, n_test=n_test, seed=test_seeds)
    counts = signal_neuron_counts(M, ds.mu)
    return Run(setting, np.asarray(ps, float), np.asarray(seeds), W0, M, ds, res, te.double().cpu().numpy(), counts.cpu().numpy())
