"""A real data set, offline: scikit-learn's handwritten digits (shipped inside scikit-learn)."""

from __future__ import annotations

import numpy as np
import torch

from prunebook._checks import check_nonneg_int, check_positive_int
from prunebook.data import Dataset

__all__ = ["digits_binary"]


def digits_binary(n_train: int, *, seed: int, positive=(0, 2, 4, 6, 8), dtype=torch.float32) -> tuple[Dataset, Dataset]:
    """(train, test) for "digit in ``positive``" (y = +1) against the rest, from sklearn's 8x8 digits.

    Pixels are scaled to [0, 1] and centred with the training mean; each image is one patch of
    d = 64 coordinates, so X has shape [n, 1, 64]. The split is a seeded random permutation of the
    1797 images; ``mu`` and ``xi`` of the returned Datasets are empty (there is no planted signal).
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
    order = np.random.default_rng(seed).permutation(len(X))
    tr, te = order[:n_train], order[n_train:]
    mean = X[tr].mean(axis=0)

    def make(idx):
        Xi = torch.tensor(X[idx] - mean, dtype=dtype)[:, None, :]
        empty = torch.zeros(0, dtype=dtype)
        return Dataset(Xi, torch.tensor(y[idx], dtype=dtype), empty, empty)

    return make(tr), make(te)
