"""A real data set, offline: scikit-learn's handwritten digits (shipped inside scikit-learn)."""

from __future__ import annotations

import numpy as np
import torch

from collections.abc import Sequence

from prunebook._checks import check_nonneg_int, check_positive, check_positive_int
from prunebook.data import Dataset, stack_datasets
from prunebook.network import init_weights
from prunebook.pruning import random_mask
from prunebook.seeds import numpy_rng, stream_seed

__all__ = ["digits_binary", "digits_batch"]


def digits_binary(n_train: int, *, seed: int, positive=(0, 2, 4, 6, 8), dtype=torch.float32) -> tuple[Dataset, Dataset]:
    """(train, test) for "digit in ``positive``" (y = +1) against the rest, from sklearn's 8x8 digits.

    Pixels are scaled to [0, 1] and centred with the training mean; each image is one patch of
    d = 64 coordinates, so X has shape [n, 1, 64]. The split is a seeded random permutation of the
    1797 images (the ``split`` stream of ``seed``); ``mu`` and ``xi`` of the returned Datasets are empty (there is no planted signal).
    """
    n_train = check_positive_int("n_train", n_train)
    seed = check_nonneg_int("seed", seed)
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
