"""A real data set, offline: scikit-learn's handwritten digits (shipped inside scikit-learn).

- :func:`digits_binary`, :func:`digits_split`, :func:`digits_parts`: even against odd digits, seeded
  splits (train, test; or train, validation, test, and a held-out "rotation" split), one patch of
  64 pixels;
- :func:`add_noise_patch`, :func:`digits_networks`: the bridge towards the model we study, each image
  in the place of the signal patch and Gaussian noise in added dimensions as the noise patch;
  :func:`class_mean_rotation` gives a sparse view of the images (the class-mean difference on one
  pixel), estimated on images the networks never see (the rotation split);
Train these networks with ``prunebook.train(..., engine="gram")`` or ``prunebook.flow`` (the patch
basis: per-neuron Gram matrices of the training patches, the fast way when n P is much smaller than d).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch

from prunebook._checks import check_fraction, check_nonneg_int, check_positive, check_positive_int, check_tensor
from prunebook.data import Dataset, stack_datasets
from prunebook.network import init_weights
from prunebook.pruning import random_mask
from prunebook.seeds import generator, numpy_rng, stream_seed

__all__ = ["digits_binary", "digits_batch", "digits_split", "DigitsSplit", "digits_parts", "add_noise_patch",
           "class_mean_rotation", "rotate_pixels", "DigitsNetworks", "digits_networks"]


def digits_binary(n_train: int, *, seed: int, positive=(0, 2, 4, 6, 8), dtype=torch.float32) -> tuple[Dataset, Dataset]:
    """(train, test) for "digit in ``positive``" (y = +1) against the rest, from sklearn's 8x8 digits.

    Pixels are scaled to [0, 1] and centred with the training mean; each image is one patch of
    d = 64 coordinates, so X has shape [n, 1, 64]. The split is a seeded random permutation of the
    1797 images (the ``split`` stream of ``seed``); ``mu`` and ``xi`` of the returned Datasets are empty (there is no planted signal).
    """
    n_train = check_positive_int("n_train", n_train)
    seed = check_nonneg_int("seed", seed)
    if isinstance(positive, (str, bytes)) or not isinstance(positive, Iterable):
        raise ValueError(f"positive: the digits of class +1, a list drawn from 0..9, got {positive!r}")
    positive = list(positive)
    if not positive or any(isinstance(k, bool) or not isinstance(k, Integral) or not 0 <= k <= 9 for k in positive) \
            or len(set(positive)) == 10:
        raise ValueError(f"positive: some but not all of the digits 0..9 (both classes must occur), got {positive!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("scikit-learn is needed for the digits data: pip install scikit-learn") from exc
    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = np.where(np.isin(digits.target, positive), 1.0, -1.0)
    if n_train >= len(X):
        raise ValueError(f"n_train: must be below the {len(X)} images, got {n_train}")
    order = numpy_rng(stream_seed(seed, "split")).permutation(len(X))
    tr, te = order[:n_train], order[n_train:]
    mean = X[tr].mean(axis=0)

    def make(idx):
        Xi = torch.tensor(X[idx] - mean, dtype=dtype)[:, None, :]
        empty = torch.zeros(0, dtype=dtype)
        return Dataset(Xi, torch.tensor(y[idx], dtype=dtype), empty, empty)

    return make(tr), make(te)


def digits_batch(n_train: int, ps: Sequence[float], seeds: Sequence[int], *, m: int, sigma_0: float,
                 dtype=torch.float32):
    """Networks for the digits task, one per (ps[k], seeds[k]): (W0, M [B, 2, m, 64], train, test).

    Each seed draws its own split (:func:`digits_binary`), initial weights and mask from its
    streams, so networks with the same seed share split and initialization, and their masks are
    nested across p. ``train`` and ``test`` are batched Datasets ([B, n, 1, 64]).
    """
    if len(ps) != len(seeds) or len(ps) == 0:
        raise ValueError("seeds: need as many seeds as pruning fractions, at least one")
    m = check_positive_int("m", m)
    sigma_0 = check_positive("sigma_0", sigma_0)
    splits = {s: digits_binary(n_train, seed=s, dtype=dtype) for s in dict.fromkeys(seeds)}
    W0 = torch.stack([init_weights(m, 64, sigma_0, seed=stream_seed(s, "init"), dtype=dtype) for s in seeds])
    M = torch.stack([random_mask((2, m, 64), p, seed=stream_seed(s, "mask"), dtype=dtype) for p, s in zip(ps, seeds)])
    train = stack_datasets([splits[s][0] for s in seeds])
    test = stack_datasets([splits[s][1] for s in seeds])
    return W0, M, train, test


# ---- a validation split, the noisy-digits bridge, and a fast trainer for few samples in many dimensions ----


class DigitsSplit(NamedTuple):
    """The four parts of one seed's split of the digits (single-patch Datasets [n, 1, 64])."""

    train: Dataset
    val: Dataset
    test: Dataset
    rotation: Dataset | None  #: held out from the three others (None when no image is set aside)


def digits_parts(n_train: int, n_val: int, *, seed: int, n_rotation: int = 0, positive=(0, 2, 4, 6, 8),
                 dtype=torch.float32) -> DigitsSplit:
    """(train, validation, test, rotation) for the task of :func:`digits_binary`, from one seeded permutation.

    The ``split`` stream's permutation of the 1797 images gives, in this order, ``n_train`` training
    images (exactly the training set of ``digits_binary(n_train, seed=seed)``), ``n_val`` validation
    images (for choosing, e.g., a pruning fraction), ``n_rotation`` images set aside for estimating a
    change of basis (:func:`class_mean_rotation`) that no network trains, validates or is tested on,
    and the rest for testing. All parts are centred with the training mean.
    """
    n_train = check_positive_int("n_train", n_train)
    n_val = check_positive_int("n_val", n_val)
    n_rotation = check_nonneg_int("n_rotation", n_rotation)
    seed = check_nonneg_int("seed", seed)
    X, y = _load_digits(positive)
    if n_train + n_val + n_rotation >= len(X):
        name = "n_rotation" if n_rotation else "n_val"
        raise ValueError(f"{name}: n_train + n_val + n_rotation must be below the {len(X)} images, "
                         f"got {n_train} + {n_val} + {n_rotation}")
    order = numpy_rng(stream_seed(seed, "split")).permutation(len(X))
    cut = np.cumsum([n_train, n_val, n_rotation])
    train, val, rotation, test = np.split(order, cut)
    mean = X[train].mean(axis=0)
    parts = (_make(X, y, idx, mean, dtype) for idx in (train, val, test))
    return DigitsSplit(*parts, _make(X, y, rotation, mean, dtype) if n_rotation else None)


def digits_split(n_train: int, n_val: int, *, seed: int, positive=(0, 2, 4, 6, 8),
                 dtype=torch.float32) -> tuple[Dataset, Dataset, Dataset]:
    """(train, validation, test) for the task of :func:`digits_binary`: :func:`digits_parts` with no rotation split."""
    return tuple(digits_parts(n_train, n_val, seed=seed, positive=positive, dtype=dtype)[:3])


def _load_digits(positive):
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("scikit-learn is needed for the digits data: pip install scikit-learn") from exc
    digits = load_digits()
    return digits.data.astype(np.float64) / 16.0, np.where(np.isin(digits.target, positive), 1.0, -1.0)


def _make(X, y, idx, mean, dtype) -> Dataset:
    empty = torch.zeros(0, dtype=dtype)
    return Dataset(torch.tensor(X[idx] - mean, dtype=dtype)[:, None, :], torch.tensor(y[idx], dtype=dtype), empty, empty)


def add_noise_patch(ds: Dataset, extra_dims: int, sigma: float, *, seed: int) -> Dataset:
    """The digits in the two-patch form of the model we study, with ``extra_dims`` added noise dimensions.

    Input i becomes two patches in d = 64 + ``extra_dims`` coordinates: patch 0 is the image on the
    first 64 coordinates (zero elsewhere), in the place of the model's signal patch y_i mu; patch 1
    is Gaussian noise N(0, sigma^2) on the added coordinates (zero on the pixels), orthogonal to every
    image as the model's noise is to mu. The noise is drawn from ``seed``; ``xi`` of the result holds it.
    """
    X = check_tensor("ds.X", ds.X, ndim=3)
    if X.shape[1] != 1:
        raise ValueError(f"ds: expected single-patch images [n, 1, pixels], got X of shape {tuple(X.shape)}")
    extra_dims = check_positive_int("extra_dims", extra_dims)
    sigma = check_positive("sigma", sigma)
    n, _, pixels = X.shape
    noise = torch.randn(n, extra_dims, generator=generator(check_nonneg_int("seed", seed)), dtype=torch.float64)
    out = torch.zeros(n, 2, pixels + extra_dims, dtype=X.dtype)
    out[:, 0, :pixels] = X[:, 0]
    out[:, 1, pixels:] = (sigma * noise).to(X.dtype)
    return Dataset(out, ds.y, torch.zeros(0, dtype=X.dtype), out[:, 1].clone())


def class_mean_rotation(train: Dataset) -> torch.Tensor:
    """The orthogonal (Householder) matrix H [P, P] that maps the class-mean difference of ``train`` onto e_1.

    ``X @ H.T`` rotates single-patch images ([n, 1, pixels]) so that the direction separating the
    class means of the labelled images ``train`` becomes the first coordinate: a sparse view of the
    data (a dense network cannot tell the two views apart, random pruning can). The direction uses
    labels: estimate it on images the networks never see (the rotation split of
    :func:`digits_parts`, as :func:`digits_networks` does), or the rotated training set carries its
    own class-mean classifier.
    """
    X = check_tensor("train.X", train.X, ndim=3)
    if X.shape[1] != 1:
        raise ValueError(f"train: expected single-patch images [n, 1, pixels], got X of shape {tuple(X.shape)}")
    y = train.y
    if not (bool((y > 0).any()) and bool((y < 0).any())):
        raise ValueError("train: need images of both classes to estimate the class-mean difference")
    X64 = X[:, 0].double()
    u = X64[y > 0].mean(0) - X64[y < 0].mean(0)
    u = u / u.norm()
    e = torch.zeros_like(u)
    e[0] = 1.0
    v = u - e
    if float(v.norm()) < 1e-12:
        return torch.eye(len(u), dtype=X.dtype)
    v = v / v.norm()
    return (torch.eye(len(u), dtype=torch.float64) - 2 * torch.outer(v, v)).to(X.dtype)


def rotate_pixels(ds: Dataset, H: torch.Tensor) -> Dataset:
    """The single-patch images of ``ds`` in the rotated basis, ``X @ H.T``."""
    X = check_tensor("ds.X", ds.X, ndim=3)
    if H.shape != (X.shape[-1], X.shape[-1]):
        raise ValueError(f"H: expected a [{X.shape[-1]}, {X.shape[-1]}] matrix, got {tuple(H.shape)}")
    return Dataset(X @ H.T.to(X.dtype), ds.y, ds.mu, ds.xi)


class DigitsNetworks(NamedTuple):
    """Networks for the digits task, batch axis first: initial weights, masks and their data."""

    W0: torch.Tensor  #: [B, 2, m, d]
    M: torch.Tensor  #: [B, 2, m, d]
    train: Dataset  #: [B, n_train, P, d]
    val: Dataset  #: [B, n_val, P, d]
    test: Dataset  #: [B, n_test, P, d]
    rotation: torch.Tensor | None = None  #: [B, 64, 64]: the pixel rotation of each network (``concentrate``)


def digits_networks(n_train: int, n_val: int, ps: Sequence[float], seeds: Sequence[int], *, m: int, sigma_0: float,
                    extra_dims: int = 0, noise_sigma: float = 1.0, n_test: int | None = None,
                    n_rotation: int = 0, concentrate: bool = False, dtype=torch.float32) -> DigitsNetworks:
    """One network per (ps[k], seeds[k]) on the (train, validation, test) split of :func:`digits_parts`.

    With ``extra_dims > 0`` every image gets a noise patch (:func:`add_noise_patch`; the noise of the
    three parts from the ``noise`` stream of the seed, sub-streams 0, 1, 2). ``n_rotation`` images
    are set aside (the rotation split of :func:`digits_parts`); ``concentrate=True`` rotates each
    seed's images by :func:`class_mean_rotation` estimated on that rotation split, which no network
    sees, so it needs ``n_rotation > 0``. The split, and so the train, validation and test images, is
    the same with and without ``concentrate``: the two views are paired. ``n_test`` keeps the first
    ``n_test`` test images (all of them if None). Networks with the same seed share split, noise and
    initialization, and their random masks are nested across p.
    """
    if len(ps) != len(seeds) or len(ps) == 0:
        raise ValueError("seeds: need as many seeds as pruning fractions, at least one")
    m = check_positive_int("m", m)
    sigma_0 = check_positive("sigma_0", sigma_0)
    extra_dims = check_nonneg_int("extra_dims", extra_dims)
    n_rotation = check_nonneg_int("n_rotation", n_rotation)
    if concentrate and n_rotation == 0:
        raise ValueError("n_rotation: concentrate=True estimates the rotation on held-out images; give n_rotation > 0")
    if n_test is not None:
        n_test = check_positive_int("n_test", n_test)
    ps = [check_fraction("p", p) for p in ps]
    data, rotations = {}, {}
    for s in dict.fromkeys(seeds):
        split = digits_parts(n_train, n_val, seed=s, n_rotation=n_rotation, dtype=dtype)
        parts = split[:3]
        if n_test is not None:
            parts = (*parts[:2], Dataset(parts[2].X[:n_test], parts[2].y[:n_test], parts[2].mu, parts[2].xi))
        if concentrate:
            rotations[s] = class_mean_rotation(split.rotation)
            parts = tuple(rotate_pixels(part, rotations[s]) for part in parts)
        if extra_dims:
            parts = tuple(add_noise_patch(part, extra_dims, noise_sigma, seed=stream_seed(s, "noise", k))
                          for k, part in enumerate(parts))
        data[s] = parts
    d = 64 + extra_dims
    W0 = torch.stack([init_weights(m, d, sigma_0, seed=stream_seed(s, "init"), dtype=dtype) for s in seeds])
    M = torch.stack([random_mask((2, m, d), p, seed=stream_seed(s, "mask"), dtype=dtype) for p, s in zip(ps, seeds)])
    train, val, test = (stack_datasets([data[s][k] for s in seeds]) for k in range(3))
    H = torch.stack([rotations[s] for s in seeds]) if concentrate else None
    return DigitsNetworks(W0, M, train, val, test, H)
