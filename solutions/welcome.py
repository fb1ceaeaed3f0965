"""Lesson 00 - Welcome, NumPy and gradient checking (reference solutions).

Every function here is also an exercise in ``lessons/00_welcome.ipynb``: the
notebook stub has the same signature and docstring, and the autograder compares
the learner's version with this one.
"""

import numpy as np


def standardize_columns(x, eps=1e-8):
    """Give every column of ``x`` mean 0 and variance 1.

    Args:
        x: float array of shape (N, D): N samples, D features.
        eps: small float added to the variance so a constant column does not
            divide by zero.

    Returns:
        float array of shape (N, D): ``(x - mean) / sqrt(var + eps)``, where
        ``mean`` and ``var`` are the per-column (axis 0) mean and the
        population variance (divide by N, not N - 1). ``x`` itself is left
        unchanged.
    """
    mean = x.mean(axis=0, keepdims=True)          # (1, D)
    var = x.var(axis=0, keepdims=True)            # (1, D), divides by N
    return (x - mean) / np.sqrt(var + eps)


def pairwise_sq_distances(a, b):
    """Squared Euclidean distance between every row of ``a`` and every row of ``b``.

    Args:
        a: float array of shape (N, D).
        b: float array of shape (M, D).

    Returns:
        float array ``d`` of shape (N, M) with
        ``d[i, j] = sum_k (a[i, k] - b[j, k]) ** 2``. No Python loops.
    """
    diff = a[:, None, :] - b[None, :, :]          # (N, 1, D) - (1, M, D) -> (N, M, D)
    return (diff ** 2).sum(axis=-1)


def one_hot(labels, num_classes):
    """One-hot encode integer class labels.

    Args:
        labels: int array of shape (N,), each value in [0, num_classes).
        num_classes: int, the number of classes C.

    Returns:
        float64 array of shape (N, C) with a 1.0 in column ``labels[i]`` of row
        ``i`` and 0.0 everywhere else. No Python loops: one fancy-indexing
        assignment sets every 1.
    """
    out = np.zeros((labels.shape[0], num_classes))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def numerical_gradient(f, x, eps=1e-5):
    """Estimate the gradient of a scalar function by central differences.

    For every entry ``x[i]`` (``i`` a multi-index when x has several axes):
    ``grad[i] = (f(x + eps * e_i) - f(x - eps * e_i)) / (2 * eps)``.

    Args:
        f: function taking an array shaped like ``x`` and returning a float.
        x: float64 array of any shape. It may be changed while the function
            runs, but must hold its original values again when it returns.
        eps: the step size.

    Returns:
        float64 array of the same shape as ``x``: the estimated gradient.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        original = x[i]
        x[i] = original + eps
        f_plus = f(x)
        x[i] = original - eps
        f_minus = f(x)
        x[i] = original                            # put it back
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a, b):
    """The largest entrywise relative error between two arrays.

    ``max_i |a_i - b_i| / max(|a_i| + |b_i|, 1e-8)``: about 1e-7 or less when
    two gradients agree, about 1 when they have nothing in common. The 1e-8
    floor keeps entries where both are zero from dividing 0 by 0.

    Args:
        a: float array of any shape.
        b: float array of the same shape as ``a``.

    Returns:
        float: the largest relative error (0.0 when a and b are equal).
    """
    numerator = np.abs(a - b)
    denominator = np.maximum(np.abs(a) + np.abs(b), 1e-8)
    return float(np.max(numerator / denominator))
