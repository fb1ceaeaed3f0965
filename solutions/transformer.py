"""Lesson 06 - The Transformer encoder block (reference solutions).

A block is two sub-layers, multi-head self-attention (lesson 05) and a position-wise
feed-forward network, each wrapped in a residual connection and a LayerNorm
(lesson 03). BERT puts the LayerNorm after the residual sum ("post-LN"); most
models since GPT-2 put it in front of the sub-layer ("pre-LN"). Both are here,
forward and backward, plus BERT's initialisation and an ``EncoderBlock`` Module
that lesson 07 stacks into a mini-BERT.

Every function works on whole batches with batched matrix products (no Python
loop over tokens or heads) and keeps the dtype of its input, float32 or float64.
"""

import numpy as np

from solutions.attention import multi_head_attention_backward, multi_head_attention_forward
from solutions.layers import (Module, dropout_backward, dropout_forward, gelu_backward,
                              gelu_forward, layernorm_backward, layernorm_forward,
                              linear_backward, linear_forward)

# The parameters of one block, in the order EncoderBlock registers them.
PARAM_NAMES = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo", "ln1_gamma", "ln1_beta",
               "W1", "b1", "W2", "b2", "ln2_gamma", "ln2_beta")


def feed_forward_forward(x, params):
    """The position-wise feed-forward network: ``GELU(x @ W1 + b1) @ W2 + b2``.

    The same two projections apply to every token on its own; the GELU is the
    exact one (erf), as in BERT. The hidden width F is usually 4 D.

    Args:
        x: float array of shape (B, T, D) (any number of leading axes works).
        params: dict of float arrays with at least ``W1`` (D, F), ``b1`` (F,),
            ``W2`` (F, D) and ``b2`` (D,); other keys are ignored, so a whole
            block's parameters can be passed.

    Returns:
        (out, cache): ``out`` of shape (B, T, D), the dtype of ``x``; ``cache``
        the tuple ``(linear1_cache, gelu_cache, linear2_cache)`` of the three
        lesson-03 layers: ``(x, W1)``, ``gelu_forward``'s cache of the
        pre-activation ``x @ W1 + b1`` (B, T, F), and ``(activation, W2)`` with
        the GELU's output (B, T, F).
    """
    hidden, linear1_cache = linear_forward(x, params["W1"], params["b1"])
    activation, gelu_cache = gelu_forward(hidden)
    out, linear2_cache = linear_forward(activation, params["W2"], params["b2"])
    return out, (linear1_cache, gelu_cache, linear2_cache)


def feed_forward_backward(dout, cache):
    """Backward pass of ``feed_forward_forward``: the three layers in reverse order.

    Args:
        dout: float array of shape (B, T, D), the gradient of the loss with
            respect to ``out``.
        cache: ``(linear1_cache, gelu_cache, linear2_cache)`` from
            ``feed_forward_forward``.

    Returns:
        (dx, grads): ``dx`` of shape (B, T, D), and a dict with the keys
        ``W1``, ``b1``, ``W2``, ``b2``, each gradient shaped like its parameter;
        all in the dtype of ``dout``.
    """
    linear1_cache, gelu_cache, linear2_cache = cache
    dactivation, dW2, db2 = linear_backward(dout, linear2_cache)
    dhidden = gelu_backward(dactivation, gelu_cache)
    dx, dW1, db1 = linear_backward(dhidden, linear1_cache)
    return dx, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def add_layernorm_forward(x, sublayer_out, gamma, beta, eps=1e-12):
    """Post-LN's "add & norm": ``LayerNorm(x + sublayer_out)``.

    The residual connection adds the sub-layer's output to its input, and the
    sum is normalised over the last axis (lesson 03's ``layernorm_forward``).

    Args:
        x: float array of shape (B, T, D), the sub-layer's input (the residual).
        sublayer_out: float array of shape (B, T, D), the sub-layer's output.
        gamma: float array of shape (D,), the LayerNorm's scale.
        beta: float array of shape (D,), the LayerNorm's shift.
        eps: float added to the variance (BERT: 1e-12).

    Returns:
        (out, cache): ``out`` of shape (B, T, D); ``cache`` the cache of
        ``layernorm_forward`` on the sum: ``(x_hat, inv_std, gamma)``.
    """
    return layernorm_forward(x + sublayer_out, gamma, beta, eps)


def add_layernorm_backward(dout, cache):
    """Backward pass of ``add_layernorm_forward``.

    A sum passes its gradient unchanged to both terms, so ``x`` and
    ``sublayer_out`` receive the same gradient: the LayerNorm's ``dx``.

    Args:
        dout: float array of shape (B, T, D).
        cache: ``(x_hat, inv_std, gamma)`` from ``add_layernorm_forward``.

    Returns:
        (dx, dsublayer_out, dgamma, dbeta): float arrays of shapes (B, T, D),
        (B, T, D), (D,) and (D,), in the dtype of ``dout``.
    """
    dsum, dgamma, dbeta = layernorm_backward(dout, cache)
    return dsum, dsum, dgamma, dbeta


def encoder_block_forward(x, params, num_heads, mask=None, pre_ln=False, dropout_p=0.0,
                          training=False, rng=None, eps=1e-12):
    """One Transformer encoder block, post-LN (BERT) or pre-LN.

    Post-LN: ``h = LN1(x + Dropout(MHA(x)))``, ``out = LN2(h + Dropout(FFN(h)))``.
    Pre-LN:  ``h = x + Dropout(MHA(LN1(x)))``, ``out = h + Dropout(FFN(LN2(h)))``.

    Dropout is lesson 03's ``dropout_forward``; it acts only when ``training``
    and ``dropout_p > 0``, and then draws from ``rng`` exactly twice, in this
    order: the attention's output mask, then the feed-forward's output mask.

    Args:
        x: float array of shape (B, T, D).
        params: dict of float arrays: the attention's ``Wq``, ``Wk``, ``Wv``,
            ``Wo`` (D, D) and ``bq``, ``bk``, ``bv``, ``bo`` (D,);
            ``ln1_gamma``, ``ln1_beta``, ``ln2_gamma``, ``ln2_beta`` (D,);
            the feed-forward's ``W1`` (D, F), ``b1`` (F,), ``W2`` (F, D),
            ``b2`` (D,).
        num_heads: int H, dividing D.
        mask: None, or a bool array broadcastable to (B, H, T, T), True where
            a query may attend to a key (for example ``padding_mask``).
        pre_ln: bool, False for post-LN (BERT), True for pre-LN.
        dropout_p: float in [0, 1), the dropout probability.
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.
        eps: float added to the variance in both LayerNorms.

    Returns:
        (out, cache): ``out`` of shape (B, T, D), the dtype of ``x``; ``cache``
        a dict with the keys
        ``"pre_ln"``: the flag;
        ``"attention"``: the cache of ``multi_head_attention_forward``;
        ``"dropout1"``, ``"dropout2"``: the caches of the two ``dropout_forward``
        calls (the scaled masks, or None);
        ``"ffn"``: the cache of ``feed_forward_forward``;
        ``"ln1"``, ``"ln2"``: the LayerNorm caches ``(x_hat, inv_std, gamma)``,
        from ``add_layernorm_forward`` in post-LN, from ``layernorm_forward``
        in pre-LN.
    """
    cache = {"pre_ln": pre_ln}
    if pre_ln:
        normed, cache["ln1"] = layernorm_forward(x, params["ln1_gamma"], params["ln1_beta"], eps)
        attn_out, cache["attention"] = multi_head_attention_forward(normed, params, num_heads, mask)
        attn_out, cache["dropout1"] = dropout_forward(attn_out, dropout_p, training, rng)
        h = x + attn_out
        normed, cache["ln2"] = layernorm_forward(h, params["ln2_gamma"], params["ln2_beta"], eps)
        ffn_out, cache["ffn"] = feed_forward_forward(normed, params)
        ffn_out, cache["dropout2"] = dropout_forward(ffn_out, dropout_p, training, rng)
        out = h + ffn_out
    else:
        attn_out, cache["attention"] = multi_head_attention_forward(x, params, num_heads, mask)
        attn_out, cache["dropout1"] = dropout_forward(attn_out, dropout_p, training, rng)
        h, cache["ln1"] = add_layernorm_forward(x, attn_out, params["ln1_gamma"],
                                                params["ln1_beta"], eps)
        ffn_out, cache["ffn"] = feed_forward_forward(h, params)
        ffn_out, cache["dropout2"] = dropout_forward(ffn_out, dropout_p, training, rng)
        out, cache["ln2"] = add_layernorm_forward(h, ffn_out, params["ln2_gamma"],
                                                  params["ln2_beta"], eps)
    return out, cache


def encoder_block_backward(dout, cache):
    """Backward pass of ``encoder_block_forward``, for the input and every parameter.

    Go through the forward pass in reverse. Wherever the forward pass added a
    residual (``h = x + ...``), the gradient of the sum reaches both terms: the
    sub-layer's path and the direct path add up.

    Args:
        dout: float array of shape (B, T, D), the gradient of the loss with
            respect to ``out``.
        cache: the dict returned by ``encoder_block_forward``.

    Returns:
        (dx, grads): ``dx`` of shape (B, T, D), and a dict with the 16 keys of
        ``params`` (Wq, bq, Wk, bk, Wv, bv, Wo, bo, ln1_gamma, ln1_beta, W1, b1,
        W2, b2, ln2_gamma, ln2_beta), each gradient shaped like its parameter;
        all in the dtype of ``dout``.
    """
    if cache["pre_ln"]:
        # out = h + Dropout(FFN(LN2(h))): h gets dout directly and through the FFN
        dffn_out = dropout_backward(dout, cache["dropout2"])
        dnormed, ffn_grads = feed_forward_backward(dffn_out, cache["ffn"])
        dh_ffn, dgamma2, dbeta2 = layernorm_backward(dnormed, cache["ln2"])
        dh = dout + dh_ffn
        # h = x + Dropout(MHA(LN1(x))): the same for x
        dattn_out = dropout_backward(dh, cache["dropout1"])
        dnormed, attention_grads = multi_head_attention_backward(dattn_out, cache["attention"])
        dx_attention, dgamma1, dbeta1 = layernorm_backward(dnormed, cache["ln1"])
        dx = dh + dx_attention
    else:
        # out = LN2(h + Dropout(FFN(h))): h gets LN2's gradient directly and through the FFN
        dh, dffn_out, dgamma2, dbeta2 = add_layernorm_backward(dout, cache["ln2"])
        dffn_out = dropout_backward(dffn_out, cache["dropout2"])
        dh_ffn, ffn_grads = feed_forward_backward(dffn_out, cache["ffn"])
        dh = dh + dh_ffn
        # h = LN1(x + Dropout(MHA(x))): the same for x
        dx, dattn_out, dgamma1, dbeta1 = add_layernorm_backward(dh, cache["ln1"])
        dattn_out = dropout_backward(dattn_out, cache["dropout1"])
        dx_attention, attention_grads = multi_head_attention_backward(dattn_out,
                                                                      cache["attention"])
        dx = dx + dx_attention
    grads = {**attention_grads, "ln1_gamma": dgamma1, "ln1_beta": dbeta1,
             **ffn_grads, "ln2_gamma": dgamma2, "ln2_beta": dbeta2}
    return dx, grads


def init_encoder_block(dim, num_heads, ff_dim, rng, init_std=0.02):
    """BERT's initialisation of one block's parameters.

    Every weight matrix is drawn with one call
    ``rng.normal(0.0, init_std, size=shape)``, in the order Wq, Wk, Wv, Wo,
    W1, W2; every bias is 0; the LayerNorms start as the identity (gamma 1,
    beta 0).

    Args:
        dim: int D, the model width.
        num_heads: int H, dividing D (checked here: a ValueError otherwise; the
            weights do not depend on it).
        ff_dim: int F, the feed-forward's hidden width (BERT: 4 D).
        rng: a ``np.random.Generator``.
        init_std: float, the standard deviation of the weights (BERT: 0.02).

    Returns:
        dict name -> float64 array, with the keys in the order Wq, bq, Wk, bk,
        Wv, bv, Wo, bo, ln1_gamma, ln1_beta, W1, b1, W2, b2, ln2_gamma,
        ln2_beta; shapes as in ``encoder_block_forward``.
    """
    if dim % num_heads:
        raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")

    def weight(shape):
        return rng.normal(0.0, init_std, size=shape)

    Wq, Wk, Wv, Wo = weight((dim, dim)), weight((dim, dim)), weight((dim, dim)), weight((dim, dim))
    W1, W2 = weight((dim, ff_dim)), weight((ff_dim, dim))
    return {"Wq": Wq, "bq": np.zeros(dim), "Wk": Wk, "bk": np.zeros(dim),
            "Wv": Wv, "bv": np.zeros(dim), "Wo": Wo, "bo": np.zeros(dim),
            "ln1_gamma": np.ones(dim), "ln1_beta": np.zeros(dim),
            "W1": W1, "b1": np.zeros(ff_dim), "W2": W2, "b2": np.zeros(dim),
            "ln2_gamma": np.ones(dim), "ln2_beta": np.zeros(dim)}


class EncoderBlock(Module):
    """A Transformer encoder block as a Module (lesson 03), for lesson 07's BERT.

    The 16 parameters come from ``init_encoder_block(dim, num_heads, ff_dim,
    rng, init_std)`` and are registered with ``add_parameter`` in that order
    (Wq, bq, ..., ln2_beta). The same ``rng`` then draws the dropout masks of
    every training ``forward``. ``forward`` and ``backward`` call
    ``encoder_block_forward`` (dropout only while ``self.training``) and
    ``encoder_block_backward``; ``backward`` adds into ``self.grads``.

    Args:
        dim: int D.
        num_heads: int H, dividing D.
        ff_dim: int F.
        rng: a ``np.random.Generator``, for the weights and then for dropout.
        dropout_p: float, the dropout probability (BERT: 0.1).
        pre_ln: bool, False for post-LN (BERT), True for pre-LN.
        eps: float, the LayerNorms' epsilon (BERT: 1e-12).
        init_std: float, the standard deviation of the weights (BERT: 0.02).
    """

    def __init__(self, dim, num_heads, ff_dim, rng, dropout_p=0.1, pre_ln=False, eps=1e-12,
                 init_std=0.02):
        super().__init__()
        for name, value in init_encoder_block(dim, num_heads, ff_dim, rng, init_std).items():
            self.add_parameter(name, value)
        self.num_heads = num_heads
        self.dropout_p = dropout_p
        self.pre_ln = pre_ln
        self.eps = eps
        self.rng = rng
        self.cache = None

    def forward(self, x, mask=None):
        """Compute the block's output and keep the cache for ``backward``.

        Args:
            x: float array of shape (B, T, D).
            mask: None, or a bool array broadcastable to (B, H, T, T) (True = may attend).

        Returns:
            float array of shape (B, T, D).
        """
        out, self.cache = encoder_block_forward(
            x, self.params, self.num_heads, mask, pre_ln=self.pre_ln, dropout_p=self.dropout_p,
            training=self.training, rng=self.rng, eps=self.eps)
        return out

    def backward(self, dout):
        """Add every parameter's gradient to ``self.grads`` (in place) and return dx.

        Args:
            dout: float array of shape (B, T, D), for the last ``forward``.

        Returns:
            dx: float array of shape (B, T, D).
        """
        dx, grads = encoder_block_backward(dout, self.cache)
        for name, grad in grads.items():
            self.grads[name] += grad
        return dx
