"""Pruning at initialization: random masks and what a pruned neuron keeps.

A mask ``M`` has the shape of the weights, ``[..., 2, m, d]``, with entries in {0, 1}; it is fixed
for all of training (pruned weights get zero gradient).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from numbers import Integral

from prunebook._checks import check_binary, check_device, check_finite, check_floating, check_fraction, check_positive, check_tensor
from prunebook.conventions import class_signs
from prunebook.seeds import resolve_generator

__all__ = ["mask_uniforms", "random_mask", "signal_carrying", "signal_neuron_counts", "usable", "usable_neurons", "kept_dimensions", "neuron_snr"]


def mask_uniforms(
    shape: Sequence[int], *, generator: torch.Generator | None = None, seed: int | None = None
) -> torch.Tensor:
    """The float64 uniforms behind a random mask: the mask at pruning fraction p is ``u >= p``.

    Thresholding the same uniforms at several p gives nested masks (a weight kept at p is kept at
    every smaller p); :func:`random_mask` is this at one p.
    """
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, (tuple, list)) or not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ValueError(f"shape: expected a sequence of non-negative ints, got {shape!r}")
    g = resolve_generator(generator, seed)
    return torch.rand(tuple(int(s) for s in shape), generator=g, dtype=torch.float64)


def random_mask(
    shape: Sequence[int],
    p: float,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A random pruning mask: i.i.d. entries, 1 (kept) with probability 1 - p, 0 (pruned) with p.

    ``p`` is the pruning fraction, 0 <= p < 1. Uniforms are drawn in float64 on the CPU, so the
    same seed gives the same mask for every dtype and device.
    """
    p = check_fraction("p", p)
    device = check_device("device", device)
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    u = mask_uniforms(shape, generator=generator, seed=seed)
    return (u >= p).to(dtype=dtype, device=device)


def _check_mask_and_signal(M: torch.Tensor, mu: torch.Tensor) -> None:
    check_tensor("M", M, ndim_min=3)
    check_binary("M", M)
    check_tensor("mu", mu, ndim_min=1)
    check_floating("mu", mu)
    if mu.shape[-1] != M.shape[-1]:
        raise ValueError(f"mu: last dimension {mu.shape[-1]} must equal the mask's d = {M.shape[-1]}")


def signal_carrying(M: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Which neurons keep some of the signal: ||mu ⊙ m_{j,r}|| > 0, as a bool tensor [..., 2, m].

    For the sparse signal mu = ||mu|| e_1 this is "the mask keeps coordinate 1", which happens
    with probability 1 - p under random pruning.
    """
    _check_mask_and_signal(M, mu)
    mu_b = mu[..., None, None, :]
    return ((M.to(mu.dtype) * mu_b) != 0).any(dim=-1)


def signal_neuron_counts(M: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Number of signal-carrying neurons per class, [..., 2]; Binomial(m, 1 - p) under random pruning."""
    return signal_carrying(M, mu).sum(dim=-1)


def usable(W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Which neurons can learn the signal, as a bool tensor [..., 2, m] (the book's usable neurons).

    Neuron r of class j is *usable* when its mask keeps some of mu and its initial overlap with the
    signal has the class's sign, j <w0_{j,r} ⊙ m_{j,r}, mu> > 0. With the wrong sign, small-step GD
    only cancels the initial overlap: the pre-activation on the class's own signal patch is
    negative, sigma' = 0 there, and the neuron stalls. Under random pruning (sparse signal, Gaussian
    initialization) a neuron is usable with probability (1 - p)/2.
    """
    _check_mask_and_signal(M, mu)
    check_tensor("W0", W0, ndim_min=3)
    if W0.shape[-3:] != M.shape[-3:]:
        raise ValueError(f"W0: last three dimensions {tuple(W0.shape[-3:])} must equal the mask's {tuple(M.shape[-3:])}")
    check_finite("W0", W0)
    overlap = ((W0 * M.to(W0.dtype)) * mu.to(W0.dtype)[..., None, None, :]).sum(-1)  # <w0 ⊙ m, mu>, [..., 2, m]
    return signal_carrying(M, mu) & (class_signs(overlap)[:, None] * overlap > 0)


def usable_neurons(W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Number of usable neurons per class, integer tensor [..., 2]; Binomial(m, (1 - p)/2) under random pruning."""
    return usable(W0, M, mu).sum(dim=-1)


def kept_dimensions(M: torch.Tensor) -> torch.Tensor:
    """Number of input coordinates each neuron keeps, [..., 2, m]; about (1 - p) d."""
    check_tensor("M", M, ndim_min=3)
    check_binary("M", M)
    return M.to(torch.int64).sum(dim=-1)


def neuron_snr(M: torch.Tensor, mu: torch.Tensor, sigma_p: float) -> torch.Tensor:
    """Per-neuron signal-to-noise ratio ||mu ⊙ m|| / (sigma_p sqrt(#kept coordinates)), [..., 2, m].

    The noise a neuron sees, xi ⊙ m, has squared norm about sigma_p^2 times the number of kept
    coordinates (exactly so in expectation for the sparse signal); the book's heuristic SNR_p is
    this ratio for a neuron that keeps the signal, with (1 - p) d kept coordinates.
    A neuron that keeps nothing gets SNR 0.
    """
    _check_mask_and_signal(M, mu)
    sigma_p = check_positive("sigma_p", sigma_p)
    Mf = M.to(mu.dtype)
    sig = (Mf * mu[..., None, None, :]).norm(dim=-1)
    kept = Mf.sum(dim=-1)
    return torch.where(kept > 0, sig / (sigma_p * kept.clamp_min(1).sqrt()), torch.zeros_like(sig))
