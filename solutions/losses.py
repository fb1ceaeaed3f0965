"""Lesson 01 - Loss functions (reference solutions).

Every function here is an exercise in ``lessons/01_losses.ipynb``, with the same
signature and docstring. Later lessons import them from here.
"""

import numpy as np


def softmax(x, axis=-1):
    """Softmax along one axis, safe for huge inputs.

    ``softmax(x)_i = exp(x_i) / sum_j exp(x_j)``, computed after subtracting
    the maximum along ``axis`` (which does not change the result but keeps
    ``exp`` from overflowing).

    Args:
        x: float array of any shape.
        axis: the axis to normalise over (default: the last one).

    Returns:
        array of the same shape and dtype as ``x``; the entries along ``axis``
        are positive and sum to 1.
    """
    shifted = x - x.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """Logarithm of the softmax along one axis, without computing the softmax.

    ``log_softmax(x)_i = x_i - logsumexp(x)``, with the maximum subtracted
    first so that nothing overflows and no ``log(0)`` happens.

    Args:
        x: float array of any shape.
        axis: the axis to normalise over (default: the last one).

    Returns:
        array of the same shape and dtype as ``x``; every entry is <= 0 and
        finite whenever ``x`` is finite.
    """
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(logits, targets, ignore_index=-100):
    """Mean cross-entropy between logits and integer targets.

    ``loss = -(1/n) * sum_i log_softmax(logits_i)[targets_i]`` where the sum
    runs over the rows whose target is not ``ignore_index`` and ``n`` is the
    number of those rows. When every row is ignored the loss is 0.0 (PyTorch
    returns nan there; a training loop is better served by 0).

    Args:
        logits: float array of shape (N, C): unnormalised scores.
        targets: int array of shape (N,), each in [0, C) or equal to
            ``ignore_index``.
        ignore_index: the target value that marks a row to skip.

    Returns:
        float: the mean loss over the rows that count.
    """
    keep = targets != ignore_index                         # (N,) bool
    if not keep.any():
        return 0.0
    log_probs = log_softmax(logits[keep], axis=-1)        # (n, C)
    picked = log_probs[np.arange(log_probs.shape[0]), targets[keep]]
    return float(-picked.mean())


def cross_entropy_grad(logits, targets, ignore_index=-100):
    """Gradient of ``cross_entropy(logits, targets, ignore_index)`` w.r.t. the logits.

    For a row that counts: ``(softmax(logits_i) - one_hot(targets_i)) / n``,
    with ``n`` the number of rows that count. Ignored rows get zeros.

    Args:
        logits: float array of shape (N, C).
        targets: int array of shape (N,), each in [0, C) or ``ignore_index``.
        ignore_index: the target value that marks a row to skip.

    Returns:
        float array of shape (N, C), the same dtype as ``logits``.
    """
    keep = targets != ignore_index
    grad = np.zeros_like(logits)
    n = int(keep.sum())        # a Python int: dividing by it keeps float32 as float32
    if n == 0:
        return grad
    rows = np.flatnonzero(keep)
    grad[rows] = softmax(logits[rows], axis=-1)
    grad[rows, targets[rows]] -= 1.0
    return grad / n


def masked_lm_loss(logits, labels):
    """The masked-language-model loss: cross-entropy over the masked positions only.

    Positions whose label is -100 (the tokens that were not masked, and
    padding) do not count; the loss is the mean over the positions that do,
    across the whole batch. It is 0.0 when no position counts.

    Args:
        logits: float array of shape (B, T, V): a score for every word of the
            vocabulary at every position of every sequence.
        labels: int array of shape (B, T): the original token at masked
            positions, -100 elsewhere.

    Returns:
        float: the mean loss over the masked positions.
    """
    vocab_size = logits.shape[-1]
    return cross_entropy(logits.reshape(-1, vocab_size), labels.reshape(-1), ignore_index=-100)


def bce_with_logits(logits, targets):
    """Mean binary cross-entropy computed from logits, stable for any size of logit.

    For one logit x and target y in [0, 1]:
    ``-(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))``
    ``= max(x, 0) - x * y + log(1 + exp(-|x|))``; the second form never
    overflows.

    Args:
        logits: float array of any shape.
        targets: float array of the same shape, values in [0, 1].

    Returns:
        float: the mean over all entries.
    """
    per_entry = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return float(per_entry.mean())


def mse(predictions, targets):
    """Mean squared error over every entry.

    Args:
        predictions: float array of any shape.
        targets: float array of the same shape.

    Returns:
        float: ``mean((predictions - targets) ** 2)`` over all entries.
    """
    return float(np.mean((predictions - targets) ** 2))


def perception_loss(f, g, w):
    """The weighted squared error between one prediction and several targets.

    ``L = (1/N) * sum_i sum_j w[i, j] * (f[i] - g[i, j]) ** 2``

    Args:
        f: float array of shape (N,): the model's prediction for each sample.
        g: float array of shape (N, M): M target values for each sample.
        w: float array of shape (N, M): the weight of each target.

    Returns:
        float: the loss (mean over samples, weighted sum over targets).
    """
    n = f.shape[0]
    return float(np.sum(w * (f[:, None] - g) ** 2) / n)


def perception_loss_grad(f, g, w):
    """Gradient of ``perception_loss(f, g, w)`` with respect to ``f``.

    ``dL/df[i] = (2/N) * sum_j w[i, j] * (f[i] - g[i, j])``

    Args:
        f: float array of shape (N,).
        g: float array of shape (N, M).
        w: float array of shape (N, M).

    Returns:
        float array of shape (N,).
    """
    n = f.shape[0]
    return 2.0 / n * np.sum(w * (f[:, None] - g), axis=1)


def kl_divergence(p, q):
    """KL(p || q) for each row of two batches of distributions, averaged over rows.

    ``KL(p || q) = sum_c p_c * log(p_c / q_c)``, with ``0 * log(0 / q) = 0``,
    so a zero in ``p`` contributes nothing.

    Args:
        p: float array of shape (N, C); each row is a distribution (>= 0,
            sums to 1).
        q: float array of shape (N, C); each row is a distribution, > 0
            wherever ``p`` is > 0.

    Returns:
        float: the mean over the N rows of the per-row divergence.
    """
    terms = np.zeros_like(p)
    nonzero = p > 0
    terms[nonzero] = p[nonzero] * np.log(p[nonzero] / q[nonzero])
    return float(terms.sum(axis=1).mean())
