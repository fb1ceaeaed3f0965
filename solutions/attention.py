"""Lesson 05 - Attention (reference solutions).

Every function here is an exercise in ``lessons/05_attention.ipynb``, with the
same signature and docstring. Lesson 06's Transformer block and lesson 07's BERT
build on them. There is no Python loop over heads or tokens anywhere: every
head of every sequence is handled by the same batched matrix products.

Masks are boolean and True means "may attend". A query row whose keys are all
masked has nothing to average: its output is defined as 0, and so are its
gradients. (A plain softmax gives NaN there, and one NaN poisons a whole batch;
recent versions of PyTorch's ``scaled_dot_product_attention`` return 0 too.)
"""

import math

import numpy as np


def attention_forward(q, k, v, mask=None):
    """Scaled dot-product attention, ``softmax(q k^T / sqrt(d)) v``, with an optional mask.

    ``scores = q @ k^T / sqrt(d)``; where ``mask`` is False the score is set
    to -inf before the softmax over the keys (the last axis), so those keys get
    weight exactly 0. A query row with no allowed key gets all-zero weights,
    hence an output of 0 (no NaN).

    Args:
        q: float array of shape (..., Tq, d): the queries. The leading axes
            (for example (B, H): batch and heads) are the same for q, k and v.
        k: float array of shape (..., Tk, d): the keys.
        v: float array of shape (..., Tk, dv): the values.
        mask: None (every key allowed) or a bool array broadcastable to
            (..., Tq, Tk), True where a query may attend to a key: a
            ``padding_mask`` (B, 1, 1, Tk), a ``causal_mask`` (T, T), or both
            combined with ``&``.

    Returns:
        (out, cache):
        out: array of shape (..., Tq, dv), the same dtype as q.
        cache: the tuple ``(q, k, v, weights)`` for ``attention_backward``,
        where ``weights`` (..., Tq, Tk) are the attention probabilities: each
        row sums to 1 over the allowed keys, or is all 0 when none is allowed.
    """
    d = q.shape[-1]
    # The (..., Tq, Tk) arrays are the big ones: each step below updates one in place
    # (``x -= y`` writes into x) rather than allocating a new array.
    scores = q @ np.swapaxes(k, -1, -2)                        # (..., Tq, Tk)
    scores /= math.sqrt(d)
    if mask is not None:
        np.copyto(scores, -np.inf, where=np.logical_not(mask))   # broadcasts like np.where
    row_max = scores.max(axis=-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)     # a fully masked row is all -inf
    scores -= row_max
    weights = np.exp(scores, out=scores)                       # exp(-inf) = 0 for masked keys
    total = weights.sum(axis=-1, keepdims=True)                # >= 1, or 0 for a fully masked row
    weights /= np.where(total > 0, total, 1.0)
    out = weights @ v                                          # (..., Tq, dv)
    return out, (q, k, v, weights)


def attention_backward(dout, cache):
    """Gradients of ``attention_forward`` with respect to q, k and v.

    With ``P`` the attention weights and ``S`` the scaled scores:
    ``dv = P^T dout``, ``dP = dout v^T``, the softmax backward
    ``dS = P * (dP - sum_j dP * P)`` (row-wise sum over the keys), and
    ``dq = dS k / sqrt(d)``, ``dk = dS^T q / sqrt(d)``. Masked keys and fully
    masked rows have ``P = 0``, so their gradients come out 0 by themselves.

    Args:
        dout: float array of shape (..., Tq, dv), the gradient of the loss with
            respect to ``out``.
        cache: the ``(q, k, v, weights)`` returned by ``attention_forward``.

    Returns:
        (dq, dk, dv): float arrays shaped like q (..., Tq, d), k (..., Tk, d)
        and v (..., Tk, dv), in the dtype of ``dout``.
    """
    q, k, v, weights = cache
    d = q.shape[-1]
    dv = np.swapaxes(weights, -1, -2) @ dout                          # (..., Tk, dv)
    dweights = dout @ np.swapaxes(v, -1, -2)                          # (..., Tq, Tk)
    row_sum = np.sum(dweights * weights, axis=-1, keepdims=True)      # (..., Tq, 1)
    dscores = dweights                  # dweights becomes dscores in place (no new array):
    dscores -= row_sum
    dscores *= weights
    dscores /= math.sqrt(d)                                           # through the 1/sqrt(d)
    dq = dscores @ k                                                  # (..., Tq, d)
    dk = np.swapaxes(dscores, -1, -2) @ q                             # (..., Tk, d)
    return dq, dk, dv


def padding_mask(attention_mask):
    """Turn a tokenizer's attention mask into a mask over the keys for every head and query.

    Args:
        attention_mask: int array of shape (B, T): 1 for a real token, 0 for
            padding (what a BERT tokenizer returns).

    Returns:
        bool array of shape (B, 1, 1, T): True where the key is a real token.
        The two inserted axes broadcast over the heads and the queries, so
        every query of every head ignores the padded keys.
    """
    return (attention_mask != 0)[:, None, None, :]


def causal_mask(T):
    """The mask of a left-to-right (causal) model: each position sees itself and the past.

    Args:
        T: int, the sequence length.

    Returns:
        bool array of shape (T, T): True on and below the diagonal, i.e.
        query i may attend to key j exactly when j <= i.
    """
    return np.tril(np.ones((T, T), dtype=bool))


def split_heads(x, num_heads):
    """Cut the feature axis into heads and move the head axis forward.

    Head h gets the contiguous block of features ``h*dh : (h+1)*dh`` with
    ``dh = D / num_heads``. A reshape alone is not enough: the reshape gives
    (B, T, H, dh), and the transpose brings H before T. Its backward is
    ``merge_heads`` (and the backward of ``merge_heads`` is ``split_heads``).
    No Python loops.

    Args:
        x: array of shape (B, T, D), D divisible by ``num_heads``.
        num_heads: int, the number of heads H.

    Returns:
        array of shape (B, H, T, D // H).
    """
    B, T, D = x.shape
    return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """The inverse of ``split_heads``: put the heads side by side again.

    Its backward is ``split_heads`` (with H = ``x.shape[1]``). No Python loops.

    Args:
        x: array of shape (B, H, T, dh).

    Returns:
        array of shape (B, T, H * dh), the dtype of ``x``: the features of head h
        in columns ``h*dh : (h+1)*dh``.
    """
    B, H, T, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * dh)


def multi_head_attention_forward(x, params, num_heads, mask=None):
    """Multi-head self-attention: project, split into heads, attend, merge, project.

    ``q = x @ Wq + bq`` (likewise k and v), each split into ``num_heads``
    heads of size ``dh = D / num_heads``; every head attends on its own
    (scaled by ``1/sqrt(dh)``); the heads' outputs are merged back to
    (B, T, D) and projected: ``out = context @ Wo + bo``.

    Args:
        x: float array of shape (B, T, D): queries, keys and values all come
            from it (self-attention).
        params: dict of float arrays: ``Wq``, ``Wk``, ``Wv``, ``Wo`` of shape
            (D, D) and ``bq``, ``bk``, ``bv``, ``bo`` of shape (D,).
        num_heads: int H, dividing D.
        mask: None, or a bool array broadcastable to (B, H, T, T), True where
            a query may attend to a key (see ``attention_forward``).

    Returns:
        (out, cache):
        out: float array of shape (B, T, D).
        cache: the tuple ``(x, params, attention_cache, context)`` for
        ``multi_head_attention_backward``: the input, the parameters, the cache
        of ``attention_forward`` on the split heads (its q, k, v are
        (B, H, T, dh), its weights (B, H, T, T)), and the merged heads' output
        (B, T, D) before the output projection.
    """
    q = split_heads(x @ params["Wq"] + params["bq"], num_heads)     # (B, H, T, dh)
    k = split_heads(x @ params["Wk"] + params["bk"], num_heads)
    v = split_heads(x @ params["Wv"] + params["bv"], num_heads)
    heads, attention_cache = attention_forward(q, k, v, mask)       # (B, H, T, dh)
    context = merge_heads(heads)                                    # (B, T, D)
    out = context @ params["Wo"] + params["bo"]
    return out, (x, params, attention_cache, context)


def multi_head_attention_backward(dout, cache):
    """Gradients of ``multi_head_attention_forward`` for its input and every parameter.

    Each projection ``y = x @ W + b`` sends back ``dW = x^T dy`` and
    ``db = sum of dy`` (both summed over the batch and the tokens) and
    ``dx = dy @ W^T``. As q, k and v all come from x, the three ``dx`` add up.

    Args:
        dout: float array of shape (B, T, D), the gradient of the loss with
            respect to ``out``.
        cache: the ``(x, params, attention_cache, context)`` returned by
            ``multi_head_attention_forward``.

    Returns:
        (dx, grads): dx of shape (B, T, D), and a dict with the keys of
        ``params`` (Wq, bq, Wk, bk, Wv, bv, Wo, bo), each gradient shaped like
        its parameter.
    """
    x, params, attention_cache, context = cache
    D = x.shape[-1]
    num_heads = attention_cache[0].shape[1]
    rows = x.reshape(-1, D)                                 # (B*T, D): every token a row
    dout_rows = dout.reshape(-1, D)
    dcontext = dout @ params["Wo"].T                        # (B, T, D)
    dq_heads, dk_heads, dv_heads = attention_backward(split_heads(dcontext, num_heads),
                                                      attention_cache)
    dq = merge_heads(dq_heads)                              # (B, T, D), like x @ Wq + bq
    dk = merge_heads(dk_heads)
    dv = merge_heads(dv_heads)
    grads = {
        "Wq": rows.T @ dq.reshape(-1, D), "bq": dq.sum(axis=(0, 1)),
        "Wk": rows.T @ dk.reshape(-1, D), "bk": dk.sum(axis=(0, 1)),
        "Wv": rows.T @ dv.reshape(-1, D), "bv": dv.sum(axis=(0, 1)),
        "Wo": context.reshape(-1, D).T @ dout_rows, "bo": dout_rows.sum(axis=0),
    }
    dx = dq @ params["Wq"].T + dk @ params["Wk"].T + dv @ params["Wv"].T
    return dx, grads
