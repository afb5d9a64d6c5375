"""scikit-learn's 8×8 handwritten digits as float images with a fixed train/test split.

The 1,797 images (values 0..16) ship with scikit-learn, so no download is needed.  They
are returned as ``(N, 1, 8, 8)`` arrays scaled to [0, 1] (divided by 16).

The split is fixed, stratified and uses no random generator: within each digit class, in
scikit-learn's order, the 1st, 6th, 11th, ... sample (every fifth, starting with the first)
goes to the test set and the rest to the training set.  That gives 1,433 training and 364
test images, 20% of every digit in the test set; both parts keep scikit-learn's order.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import DeltalabError

TEST_EVERY = 5
"""Every fifth sample of each class (its 0th, 5th, 10th, ...) is a test sample."""


class DatasetError(DeltalabError, ValueError):
    """A dataset that cannot be loaded (missing optional dependency, malformed file)."""


@dataclass
class Split:
    """Images ``x`` (N, 1, 8, 8) in [0, 1] and integer labels ``y`` (N,)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self):
        return len(self.y)


@dataclass
class Digits:
    train: Split
    test: Split
    classes: int = 10


@lru_cache(maxsize=1)  # scikit-learn parses its CSV on every call
def _load_sklearn_digits():
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise DatasetError(
            "the digits dataset needs scikit-learn: pip install 'deltalab[data]' (or scikit-learn)"
        ) from None
    bunch = sklearn_load_digits()
    images, target = bunch.images, bunch.target
    images.setflags(write=False)
    target.setflags(write=False)
    return images, target


def test_mask(labels) -> np.ndarray:
    """True for the samples the fixed split puts in the test set (see the module docstring)."""
    labels = np.asarray(labels)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        mask[members[::TEST_EVERY]] = True
    return mask


def load_digits(dtype=np.float32) -> Digits:
    """The 8×8 digits: ``Digits(train=Split(x, y), test=Split(x, y))``, split as the module says."""
    images, labels = _load_sklearn_digits()
    x = (np.asarray(images, dtype=np.float64) / 16.0).astype(dtype)[:, None, :, :]
    y = np.asarray(labels, dtype=np.int64)
    is_test = test_mask(y)
    return Digits(train=Split(x[~is_test], y[~is_test]), test=Split(x[is_test], y[is_test]))
