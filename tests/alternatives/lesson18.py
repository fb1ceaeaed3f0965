"""Correct solutions for lesson 18, written differently from the reference."""

ALTERNATIVES = {
    "18.causal_attention_mask": [
        # the two conditions written out with broadcasting, no helper
        "def causal_attention_mask(attention_mask):\n"
        "    T = attention_mask.shape[1]\n"
        "    i = np.arange(T)[:, None]\n"
        "    j = np.arange(T)[None, :]\n"
        "    real = attention_mask.astype(bool)[:, None, None, :]\n"
        "    return (j <= i)[None, None] & real\n",
    ],
    "18.gpt_forward": [
        # the blocks' parameters picked with layer_params-style slicing, the mask always 4-D
        "def gpt_forward(params, config, input_ids, attention_mask=None, training=False, rng=None):\n"
        "    if attention_mask is None:\n"
        "        attention_mask = np.ones_like(input_ids)\n"
        "    mask = causal_attention_mask(attention_mask)\n"
        "    x, emb = embeddings_forward(input_ids, 0 * input_ids, params, config, training, rng)\n"
        "    layers = []\n"
        "    for i in range(config.num_layers):\n"
        "        block = {}\n"
        "        for name, value in params.items():\n"
        "            if name.startswith('layers.%d.' % i):\n"
        "                block[name.split('.', 2)[2]] = value\n"
        "        x, c = encoder_block_forward(x, block, config.num_heads, mask, config.pre_ln,\n"
        "                                     config.dropout, training, rng, config.layer_norm_eps)\n"
        "        layers.append(c)\n"
        "    final = None\n"
        "    if config.pre_ln:\n"
        "        x, final = layernorm_forward(x, params['final.ln_gamma'], params['final.ln_beta'],\n"
        "                                     config.layer_norm_eps)\n"
        "    return x, {'embeddings': emb, 'layers': layers, 'final_ln': final}\n",
    ],
    "18.gpt_loss_and_grads": [
        # the head on every position; cross_entropy and its gradient skip the -100 labels
        "def gpt_loss_and_grads(params, config, batch, training=False, rng=None, compute_grads=True):\n"
        "    hidden, cache = gpt_forward(params, config, batch['input_ids'],\n"
        "                                batch.get('attention_mask'), training, rng)\n"
        "    B, T, D = hidden.shape\n"
        "    labels = batch['labels'].reshape(-1)\n"
        "    logits, head_cache = mlm_head_forward(hidden.reshape(-1, D), params, config)\n"
        "    loss = cross_entropy(logits, labels)\n"
        "    real = labels != -100\n"
        "    n = int(real.sum())\n"
        "    right = (logits.argmax(-1) == labels) & real\n"
        "    stats = {'loss': loss, 'accuracy': float(right.sum() / n) if n else 0.0,\n"
        "             'num_predicted': n}\n"
        "    if not compute_grads:\n"
        "        return loss, None, stats\n"
        "    dhidden, head_grads = mlm_head_backward(cross_entropy_grad(logits, labels), head_cache)\n"
        "    grads = bert_backward(dhidden.reshape(B, T, D), cache)\n"
        "    grads['embeddings.word'] = grads['embeddings.word'] + head_grads.pop('embeddings.word')\n"
        "    grads.update(head_grads)\n"
        "    for name in params:\n"
        "        grads.setdefault(name, np.zeros_like(params[name]))\n"
        "    return loss, grads, stats\n",
    ],
    "18.sample_next_token": [
        # searchsorted row by row on the normalised cumulative sum
        "def sample_next_token(logits, u, temperature=1.0):\n"
        "    if temperature == 0:\n"
        "        return np.argmax(logits, axis=-1)\n"
        "    z = logits / temperature\n"
        "    z = z - z.max(axis=-1, keepdims=True)\n"
        "    p = np.exp(z)\n"
        "    cdf = np.cumsum(p, axis=-1)\n"
        "    cdf = cdf / cdf[:, -1:]\n"
        "    return np.array([np.searchsorted(c, x, side='right') for c, x in zip(cdf, u)])\n",
        # argmax of the first True
        "def sample_next_token(logits, u, temperature=1.0):\n"
        "    if temperature == 0:\n"
        "        return logits.argmax(-1)\n"
        "    cdf = softmax(logits / temperature).cumsum(-1)\n"
        "    return np.argmax(cdf > u[:, None] * cdf[:, -1:], axis=-1)\n",
    ],
    "18.top_k_filter": [
        # np.partition finds the k-th highest without a full sort
        "def top_k_filter(logits, k):\n"
        "    V = logits.shape[-1]\n"
        "    if k >= V:\n"
        "        return logits.copy()\n"
        "    kth = np.partition(logits, V - k, axis=-1)[..., V - k:V - k + 1]\n"
        "    out = logits.copy()\n"
        "    out[logits < kth] = -np.inf\n"
        "    return out\n",
    ],
    "18.top_p_filter": [
        # the mask built in ranked order, then scattered back with put_along_axis
        "def top_p_filter(logits, p):\n"
        "    probs = softmax(logits)\n"
        "    order = np.argsort(-probs, axis=-1, kind='stable')\n"
        "    ranked = np.take_along_axis(probs, order, axis=-1)\n"
        "    keep_ranked = np.cumsum(ranked, axis=-1) - ranked < p\n"
        "    keep = np.zeros_like(keep_ranked)\n"
        "    np.put_along_axis(keep, order, keep_ranked, axis=-1)\n"
        "    return np.where(keep, logits, -np.inf)\n",
    ],
    "18.attend_with_cache": [
        # the attention written out, the mask built with np.tri
        "def attend_with_cache(q, k, v, k_cache, v_cache):\n"
        "    K = np.concatenate((k_cache, k), axis=-2)\n"
        "    Vv = np.concatenate((v_cache, v), axis=-2)\n"
        "    Tc, Tn = k_cache.shape[-2], q.shape[-2]\n"
        "    allowed = np.tri(Tn, Tc + Tn, k=Tc, dtype=bool)\n"
        "    scores = q @ np.swapaxes(K, -1, -2) / math.sqrt(q.shape[-1])\n"
        "    scores = np.where(allowed, scores, -np.inf)\n"
        "    w = np.exp(scores - scores.max(-1, keepdims=True))\n"
        "    w = w / w.sum(-1, keepdims=True)\n"
        "    return w @ Vv, K, Vv\n",
    ],
}
