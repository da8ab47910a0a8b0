"""Input validation shared by the public functions.

Every public function checks its arguments *before* doing any work and raises a
``ValueError`` or ``TypeError`` whose message starts with the argument's name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
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
    "check_fractions",
    "check_one_of",
    "check_probability",
    "check_device",
    "check_floating",
    "check_parameter",
    "PARAMETER_KINDS",
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


def check_fractions(name: str, p: object) -> np.ndarray:
    """Pruning fractions (a number or an array of them), each in [0, 1), as a float array."""
    try:
        arr = np.asarray(p, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers in [0, 1), got {p!r}") from exc
    if not np.all((arr >= 0) & (arr < 1)):
        raise ValueError(f"{name}: every pruning fraction must lie in [0, 1), got {p!r}")
    return arr


def check_probability(name: str, x: object) -> float:
    """A number strictly between 0 and 1 (a level, a confidence)."""
    if isinstance(x, bool) or not isinstance(x, Real) or not 0 < float(x) < 1:
        raise ValueError(f"{name}: must be a number in (0, 1), got {x!r}")
    return float(x)


def check_floating(name: str, x: torch.Tensor) -> None:
    """A floating-point tensor (a signal vector, weights, inputs)."""
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")


def check_device(name: str, device: object) -> torch.device:
    """A device this machine has: 'cpu', or an accelerator that is available."""
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{name}: not a device name, got {device!r}") from exc
    else:
        raise ValueError(f"{name}: expected a device name such as 'cpu' or 'cuda', got {device!r}")
    if dev.type == "cpu":
        return dev
    available = {"cuda": torch.cuda.is_available,
                 "mps": lambda: getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if dev.type not in available or not available[dev.type]():
        raise ValueError(f"{name}: {dev} is not available on this machine (torch {torch.__version__} sees "
                         f"{'CUDA' if torch.cuda.is_available() else 'no CUDA device'}); use 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"{name}: {dev} does not exist; this machine has {torch.cuda.device_count()} CUDA devices")
    return dev


def check_one_of(name: str, value: object, choices: Iterable) -> object:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}: must be one of {choices}, got {value!r}")
    return value


def _is_int(x) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _non_empty_list_of(test):
    return lambda x: isinstance(x, (list, tuple)) and len(x) > 0 and all(test(v) for v in x)


#: The kinds of a chapter's papermill parameters: (predicate, what a valid value is).
PARAMETER_KINDS = {
    "bool": (lambda x: isinstance(x, bool), "True or False"),
    "seed": (lambda x: _is_int(x) and x >= 0, "an integer >= 0"),
    "count": (lambda x: _is_int(x) and x >= 1, "an integer >= 1"),
    "positive": (lambda x: _is_real(x) and x > 0, "a finite number > 0"),
    "power": (lambda x: _is_real(x) and x >= 1, "a number >= 1"),
    "fraction": (lambda x: _is_real(x) and 0 <= x < 1, "a number in [0, 1)"),
    "fractions": (_non_empty_list_of(lambda v: _is_real(v) and 0 <= v < 1), "a non-empty list of numbers in [0, 1)"),
    "counts": (_non_empty_list_of(lambda v: _is_int(v) and v >= 1), "a non-empty list of integers >= 1"),
    "positives": (_non_empty_list_of(lambda v: _is_real(v) and v > 0), "a non-empty list of numbers > 0"),
}


def check_parameter(name: str, value: object, kind: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is of ``kind`` (a key of PARAMETER_KINDS)."""
    if kind not in PARAMETER_KINDS:
        raise ValueError(f"{name}: unknown parameter kind {kind!r}; choose from {sorted(PARAMETER_KINDS)}")
    ok, what = PARAMETER_KINDS[kind]
    if not ok(value):
        raise ValueError(f"{name}: must be {what}, got {value!r}")
