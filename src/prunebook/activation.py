"""The activation sigma(z) = max(z, 0)^q and its derivative: the one implementation."""

from __future__ import annotations

import torch

__all__ = ["activation", "activation_derivative", "relu_power"]


def relu_power(z: torch.Tensor, q: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(max(z, 0), max(z, 0)^(q-1)), from which sigma(z) is their product and sigma'(z) = q times the second.

    For q = 1 the second factor is the indicator of z > 0, so sigma'(0) = 0 for the ReLU too.
    """
    r = torch.relu(z)
    if q == 1:
        return r, (z > 0).to(z.dtype)
    if q == 2:
        return r, r
    return r, (r * r if q == 3 else r.pow(q - 1))


def activation(z: torch.Tensor, q: float) -> torch.Tensor:
    """sigma(z) = max(z, 0)^q."""
    r, rq1 = relu_power(z, q)
    return r if q == 1 else r * rq1


def activation_derivative(z: torch.Tensor, q: float) -> torch.Tensor:
    """sigma'(z) = q max(z, 0)^(q-1), with sigma'(0) = 0 also for q = 1 (ReLU)."""
    _, rq1 = relu_power(z, q)
    return rq1 if q == 1 else q * rq1
