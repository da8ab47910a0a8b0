"""The compiled kernels' threads: as many as torch uses, and torch's own setting left as it was.

numba's OpenMP threading layer sets the process's OpenMP thread count when a parallel kernel first
runs, which is also torch's intra-op thread count: a caller who set ``torch.set_num_threads(1)``
would find it reset. :func:`kernel_threads` runs a kernel on ``torch.get_num_threads()`` threads
and puts torch's count back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency
    numba = None

__all__ = ["kernel_threads"]


@contextmanager
def kernel_threads() -> Iterator[int]:
    """Yield the number of threads a kernel may use (torch's); restore torch's count on exit."""
    threads = torch.get_num_threads()
    previous = numba.get_num_threads() if numba is not None else None
    try:
        if numba is not None:
            numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        yield threads
    finally:
        if numba is not None and previous is not None:
            numba.set_num_threads(previous)
        torch.set_num_threads(threads)
