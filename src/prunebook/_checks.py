"""Input validation shared by the public functions.

Every public function checks its arguments *before* doing any work and raises a
``ValueError`` or ``TypeError`` whose message starts with the argument's name.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = [
    "check_tensor",
    "check_finite",
    "check_binary",
    "check_labels",
    "check_q",
    "check_fraction",
    "check_positive",
    "check_nonneg_int",
    "check_positive_int",
    "resolve_generator",
]


def check_tensor(name: str, x: object, *, ndim_min: int | None = None, ndim: int | None = None) -> torch.Tensor:
    """Require a floating or integer torch tensor with enough dimensions."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(x.shape)}")
    if ndim_min is not None and x.dim() < ndim_min:
        raise ValueError(f"{name}: expected at least {ndim_min} dimensions, got shape {tuple(x.shape)}")
    return x


def check_finite(name: str, x: torch.Tensor) -> None:
    # min and max are finite iff every entry is (both propagate NaN); one pass, no temporary
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(torch.stack(torch.aminmax(x))).all()):
        raise ValueError(f"{name}: contains NaN or infinite entries")


def check_binary(name: str, x: torch.Tensor) -> None:
    if x.dtype == torch.bool:
        return
    # x (1 - x) vanishes exactly at 0 and 1 (NaN and inf give NaN or -inf)
    bad = (x * (1 - x)).count_nonzero() if x.is_floating_point() else (~((x == 0) | (x == 1))).count_nonzero()
    if int(bad):
        raise ValueError(f"{name}: a mask must be binary (entries 0 or 1)")


def check_labels(name: str, y: torch.Tensor) -> None:
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(f"{name}: labels must be -1 or +1")


def check_q(q: object) -> float:
    if isinstance(q, bool) or not isinstance(q, Real) or not math.isfinite(float(q)) or float(q) < 1:
        raise ValueError(f"q: the activation power must be a finite number >= 1, got {q!r}")
    return float(q)


def check_fraction(name: str, p: object) -> float:
    """A pruning fraction: a number in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, Real) or not (0.0 <= float(p) < 1.0):
        raise ValueError(f"{name}: must be a number in [0, 1), got {p!r}")
    return float(p)


def check_positive(name: str, x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, Real) or not math.isfinite(float(x)) or float(x) <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {x!r}")
    return float(x)


def check_nonneg_int(name: str, x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, Integral) or int(x) < 0:
        raise ValueError(f"{name}: must be an integer >= 0, got {x!r}")
    return int(x)


def check_positive_int(name: str, x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, Integral) or int(x) < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {x!r}")
    return int(x)


def resolve_generator(
    generator: torch.Generator | None, seed: int | None, *, device: torch.device | str | None = None
) -> torch.Generator:
    """Return a generator from exactly one of ``generator`` or ``seed``."""
    if generator is not None and seed is not None:
        raise ValueError("seed: give either seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
        return generator
    if seed is None:
        raise ValueError("seed: every random draw needs a seed or a torch.Generator")
    seed = check_nonneg_int("seed", seed)
    g = torch.Generator(device=device or "cpu")
    g.manual_seed(seed)
    return g
