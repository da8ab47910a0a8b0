r"""The two-patch signal-noise data model the book studies (Cao, Chen, Belkin and Gu, NeurIPS 2022).

- label y uniform on {-1, +1};
- signal vector mu in R^d: ``"sparse"`` (default) is ||mu|| e_1, ``"dense"`` is uniform on the
  sphere of radius ||mu||;
- noise xi ~ N(0, sigma_p^2 (I - mu mu^T / ||mu||^2)), orthogonal to the signal;
- input x = (y mu, xi), stored as X[i] of shape [2, d] (patch 0 signal, patch 1 noise).

Draws are made in float64 on the CPU from a ``torch.Generator`` and then cast, so the same seed
gives the same data in float32 and float64, on any device.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from prunebook._checks import check_device, check_finite, check_floating, check_positive, check_positive_int, check_tensor
from prunebook.seeds import resolve_generator

__all__ = ["SIGNAL_KINDS", "Dataset", "signal_vector", "sample_data", "stack_datasets"]

SIGNAL_KINDS = ("sparse", "dense")


class Dataset(NamedTuple):
    """A sample of the data model. Leading batch dimensions are allowed on every field."""

    X: torch.Tensor  #: inputs, [..., n, 2, d]; X[..., i, 0] = y_i mu and X[..., i, 1] = xi_i
    y: torch.Tensor  #: labels in {-1, +1}, [..., n], same dtype as X
    mu: torch.Tensor  #: the signal vector, [..., d]
    xi: torch.Tensor  #: the noise vectors, [..., n, d]

    @property
    def n(self) -> int:
        return self.X.shape[-3]

    @property
    def d(self) -> int:
        return self.X.shape[-1]


def signal_vector(
    d: int,
    mu_norm: float,
    *,
    kind: str = "sparse",
    generator: torch.Generator | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The signal vector mu of shape [d].

    ``kind="sparse"`` gives ||mu|| e_1 (no randomness needed); ``kind="dense"`` draws mu uniformly
    on the sphere of radius ``mu_norm`` and needs a ``seed`` or ``generator``.
    """
    d = check_positive_int("d", d)
    mu_norm = check_positive("mu_norm", mu_norm)
    device = check_device("device", device)
    if kind not in SIGNAL_KINDS:
        raise ValueError(f"kind: must be one of {SIGNAL_KINDS}, got {kind!r}")
    if kind == "sparse":
        if generator is not None or seed is not None:
            raise ValueError("seed: a sparse signal vector is deterministic; pass no seed or generator")
        mu = torch.zeros(d, dtype=torch.float64)
        mu[0] = mu_norm
    else:
        if d < 2:
            raise ValueError("d: a dense signal needs d >= 2")
        g = resolve_generator(generator, seed)
        v = torch.randn(d, generator=g, dtype=torch.float64)
        mu = v * (mu_norm / v.norm())
    return mu.to(dtype=dtype, device=device)


def sample_data(
    n: int,
    mu: torch.Tensor,
    *,
    sigma_p: float = 1.0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> Dataset:
    """Draw n samples (X, y) around the signal ``mu`` (shape [d]); also returns mu and xi.

    The result has mu's dtype and device. Labels are drawn first, then the noise, from one
    generator, so a seed fixes the whole sample.
    """
    n = check_positive_int("n", n)
    check_tensor("mu", mu, ndim=1)
    check_floating("mu", mu)
    check_finite("mu", mu)
    mu64 = mu.detach().to(device="cpu", dtype=torch.float64)
    norm = mu64.norm()
    if not norm > 0:
        raise ValueError("mu: the signal vector must be non-zero")
    sigma_p = check_positive("sigma_p", sigma_p)
    g = resolve_generator(generator, seed)
    d = mu.shape[0]
    y = torch.randint(0, 2, (n,), generator=g).to(torch.float64) * 2 - 1
    noise = torch.randn(n, d, generator=g, dtype=torch.float64) * sigma_p
    u = mu64 / norm
    xi = noise.sub_((noise @ u)[:, None] * u).to(dtype=mu.dtype, device=mu.device)  # signal direction projected out
    X = xi.new_empty(n, 2, d)  # built in the output dtype: the same values as casting afterwards
    X[:, 0] = (y[:, None] * mu64).to(xi.dtype)
    X[:, 1] = xi
    return Dataset(X, y.to(dtype=mu.dtype, device=mu.device), mu.detach().clone(), xi)


def stack_datasets(datasets: list[Dataset]) -> Dataset:
    """Stack same-shaped datasets along a new leading batch dimension."""
    if not datasets:
        raise ValueError("datasets: need at least one dataset to stack")
    shapes = {tuple(ds.X.shape) for ds in datasets}
    if len(shapes) != 1:
        raise ValueError(f"datasets: all must have the same shape (same n and d) to stack, got {sorted(shapes)}")
    return Dataset(*(torch.stack(parts) for parts in zip(*datasets)))
