"""Seeds: the one place where random generators are made.

Every random draw in the package and the chapters takes a seed or a ``torch.Generator``. A
network of the book is fixed by one integer seed, which drives independent *streams* (its data,
its initial weights, its mask, ...). :func:`stream_seed` derives a stream's seed with NumPy's
``SeedSequence``, so streams are statistically independent and a draw never depends on what else
is drawn in the same batch or cell.

    >>> from prunebook.seeds import stream_seed, generator
    >>> stream_seed(0, "data") != stream_seed(0, "init")
    True
    >>> g = generator(stream_seed(0, "mask", 3))  # the mask stream of seed 0, sub-stream 3
"""

from __future__ import annotations

import numpy as np
import torch

from prunebook._checks import check_device, check_nonneg_int

__all__ = ["STREAMS", "SEED_BLOCK", "stream_seed", "network_seeds", "generator", "resolve_generator", "numpy_rng"]

#: The named streams of a seed. The first five are the streams of a network of the book
#: (:mod:`prunebook.experiment`); the others serve a chapter's own draws (``"sample"`` for data
#: drawn to look at, ``"noise"`` for stand-alone noise vectors, ``"split"`` for data-set splits,
#: ``"bootstrap"`` for resampling, ``"jitter"`` for plot jitter, ``"check"`` for exercise checks).
STREAMS = {
    "data": 0, "init": 1, "mask": 2, "signal": 3, "test": 4,
    "sample": 5, "noise": 6, "split": 7, "bootstrap": 8, "jitter": 9, "check": 10,
}


def stream_seed(seed: int, stream: str, *index: int) -> int:
    """An independent 63-bit seed for ``stream`` (a key of :data:`STREAMS`) of ``seed``.

    Extra integers ``index`` give numbered sub-streams (for example one per pruning fraction).
    """
    seed = check_nonneg_int("seed", seed)
    if stream not in STREAMS:
        raise ValueError(f"stream: must be one of {sorted(STREAMS)}, got {stream!r}")
    index = tuple(check_nonneg_int("index", k) for k in index)
    state = np.random.SeedSequence([seed, STREAMS[stream], *index]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))


#: Network seeds of a chapter seed s are s * SEED_BLOCK + k, so that chapters run with different seeds
#: never share a network, and blocks of one chapter (start=0, start=100, ...) never overlap.
SEED_BLOCK = 100_000


def network_seeds(seed: int, count: int, *, start: int = 0) -> list[int]:
    """``count`` network seeds of the chapter seed ``seed``: s * SEED_BLOCK + start + k, k < count.

    Each network seed then drives its own independent streams (:func:`stream_seed`). Use a new
    ``start`` for a second, disjoint set of seeds (for example held-out seeds).
    """
    seed = check_nonneg_int("seed", seed)
    count = check_nonneg_int("count", count)
    start = check_nonneg_int("start", start)
    if start + count > SEED_BLOCK:
        raise ValueError(f"count: start + count must not exceed SEED_BLOCK = {SEED_BLOCK}")
    return [seed * SEED_BLOCK + start + k for k in range(count)]


def generator(seed: int, *, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` (an integer >= 0)."""
    seed = check_nonneg_int("seed", seed)
    g = torch.Generator(device=check_device("device", device))
    g.manual_seed(seed)
    return g


def numpy_rng(seed: int) -> np.random.Generator:
    """A NumPy generator seeded with ``seed`` (for NumPy-side draws: bootstraps, plot jitter)."""
    return np.random.default_rng(check_nonneg_int("seed", seed))


def resolve_generator(
    generator_: torch.Generator | None, seed: int | None, *, device: torch.device | str | None = None
) -> torch.Generator:
    """The generator of a function that accepts ``generator=`` or ``seed=`` (exactly one of them)."""
    if generator_ is not None and seed is not None:
        raise ValueError("seed: give either seed or generator, not both")
    if generator_ is not None:
        if not isinstance(generator_, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator, got {type(generator_).__name__}")
        return generator_
    if seed is None:
        raise ValueError("seed: every random draw needs a seed or a torch.Generator")
    return generator(seed, device=device or "cpu")
