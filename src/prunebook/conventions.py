"""The book's conventions, each defined once: class signs, errors from margins, named thresholds."""

from __future__ import annotations

import torch

__all__ = [
    "CLASS_SIGNS", "class_signs", "error_from_margins",
    "SUCCESS_ERROR", "LOSS_TARGET", "MIN_TEST_SIZE", "DEFAULT_TEST_SIZE",
]

#: The sign j of each class bank in f = F_{+1} - F_{-1}; index 0 of the class axis is class +1.
CLASS_SIGNS = (1.0, -1.0)

#: A network "learned the signal" when its test error is below this (outcomes are bimodal: near 0
#: or near 1/2, so any value well inside (0, 1/2) gives the same classification).
SUCCESS_ERROR = 0.25

#: A run "converged" when its training error is 0 and its final training loss is below this.
LOSS_TARGET = 1e-2

#: The smallest test set used to estimate a test error (standard error at most 0.5 / sqrt(2000) = 0.011).
MIN_TEST_SIZE = 2000

#: The default test-set size.
DEFAULT_TEST_SIZE = 10_000


def class_signs(like: torch.Tensor) -> torch.Tensor:
    """The class signs (+1, -1) as a tensor with ``like``'s dtype and device."""
    return torch.tensor(CLASS_SIGNS, dtype=like.dtype, device=like.device)


def error_from_margins(margins: torch.Tensor) -> torch.Tensor:
    """Fraction of samples with margin y f(x) <= 0 (a tie counts as an error), over the last axis."""
    return (margins <= 0).to(margins.dtype if margins.is_floating_point() else torch.float32).mean(dim=-1)
