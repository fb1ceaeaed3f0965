"""Correct solutions for lesson 05, written differently from the reference."""

ALTERNATIVES = {
    "05.attention_forward": [
        # einsum, the dtype's lowest value as the fill and lesson 01's softmax, then the masked
        # weights zeroed
        "def attention_forward(q, k, v, mask=None):\n"
        "    scores = np.einsum('...qd,...kd->...qk', q, k) / math.sqrt(q.shape[-1])\n"
        "    allowed = np.ones(scores.shape, dtype=bool) if mask is None else \\\n"
        "        np.broadcast_to(mask, scores.shape)\n"
        "    lowest = np.finfo(scores.dtype).min\n"
        "    weights = softmax(np.where(allowed, scores, lowest), axis=-1) * allowed\n"
        "    return np.einsum('...qk,...kd->...qd', weights, v), (q, k, v, weights)\n",
        # log-sum-exp over the allowed keys, NaN-free thanks to np.errstate + nan_to_num
        "def attention_forward(q, k, v, mask=None):\n"
        "    s = np.matmul(q, np.swapaxes(k, -2, -1)) * (1.0 / math.sqrt(q.shape[-1]))\n"
        "    if mask is not None:\n"
        "        s = np.where(mask, s, -np.inf)\n"
        "    with np.errstate(invalid='ignore'):\n"
        "        lse = np.logaddexp.reduce(s, axis=-1, keepdims=True)\n"
        "        w = np.exp(s - lse)\n"
        "    w = np.nan_to_num(w, nan=0.0)\n"
        "    return np.matmul(w, v), (q, k, v, w)\n",
    ],
    "05.attention_backward": [
        "def attention_backward(dout, cache):\n"
        "    q, k, v, p = cache\n"
        "    dv = np.einsum('...qk,...qe->...ke', p, dout)\n"
        "    dp = np.einsum('...qe,...ke->...qk', dout, v)\n"
        "    ds = p * dp - p * np.einsum('...qk,...qk->...q', p, dp)[..., None]\n"
        "    ds *= q.shape[-1] ** -0.5\n"
        "    return np.einsum('...qk,...kd->...qd', ds, k), np.einsum('...qk,...qd->...kd', ds, q), dv\n",
    ],
    "05.padding_mask": [
        "def padding_mask(attention_mask):\n"
        "    B, T = attention_mask.shape\n"
        "    return attention_mask.astype(bool).reshape(B, 1, 1, T)\n",
    ],
    "05.causal_mask": [
        "def causal_mask(T):\n"
        "    return np.arange(T)[:, None] >= np.arange(T)[None, :]\n",
    ],
    "05.split_heads": [
        "def split_heads(x, num_heads):\n"
        "    return np.stack(np.split(x, num_heads, axis=-1), axis=1)\n",
        "def split_heads(x, num_heads):\n"
        "    B, T, D = x.shape\n"
        "    return x.reshape(B, T, num_heads, -1).swapaxes(1, 2)\n",
    ],
    "05.merge_heads": [
        "def merge_heads(x):\n"
        "    return np.concatenate(np.moveaxis(x, 1, 0), axis=-1)\n",
        "def merge_heads(x):\n"
        "    B, H, T, dh = x.shape\n"
        "    return np.swapaxes(x, 1, 2).reshape(B, T, -1)\n",
    ],
    "05.multi_head_attention_forward": [
        # the heads as column blocks of the weights, with einsum
        "def multi_head_attention_forward(x, params, num_heads, mask=None):\n"
        "    B, T, D = x.shape\n"
        "    H, dh = num_heads, D // num_heads\n"
        "    def project(W, b):\n"
        "        return np.einsum('btd,dhe->bhte', x, W.reshape(D, H, dh)) + b.reshape(H, 1, dh)\n"
        "    q = project(params['Wq'], params['bq'])\n"
        "    k = project(params['Wk'], params['bk'])\n"
        "    v = project(params['Wv'], params['bv'])\n"
        "    heads, attention_cache = attention_forward(q, k, v, mask=mask)\n"
        "    out = np.einsum('bhte,hef->btf', heads, params['Wo'].reshape(H, dh, D)) + params['bo']\n"
        "    return out, (x, params, attention_cache, merge_heads(heads))\n",
    ],
    "05.multi_head_attention_backward": [
        "def multi_head_attention_backward(dout, cache):\n"
        "    x, params, attention_cache, context = cache\n"
        "    H = attention_cache[0].shape[1]\n"
        "    grads = {'Wo': np.tensordot(context, dout, axes=([0, 1], [0, 1])),\n"
        "             'bo': np.einsum('btd->d', dout)}\n"
        "    d_heads = attention_backward(split_heads(dout @ params['Wo'].T, H), attention_cache)\n"
        "    dx = np.zeros_like(x)\n"
        "    for name, dh in zip('qkv', d_heads):\n"
        "        dy = merge_heads(dh)\n"
        "        grads['W' + name] = np.tensordot(x, dy, axes=([0, 1], [0, 1]))\n"
        "        grads['b' + name] = np.einsum('btd->d', dy)\n"
        "        dx += dy @ params['W' + name].T\n"
        "    return dx, grads\n",
    ],
}
