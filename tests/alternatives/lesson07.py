"""Correct solutions for lesson 07, written differently from the reference."""

ALTERNATIVES = {
    "07.embeddings_forward": [
        # np.take, another order of the sum, positions by arange, dropout written out
        "def embeddings_forward(input_ids, token_type_ids, params, config, training=False, rng=None):\n"
        "    B, T = input_ids.shape\n"
        "    e = np.take(params['embeddings.token_type'], token_type_ids, axis=0)\n"
        "    e = e + params['embeddings.position'][np.arange(T)][None, :, :]\n"
        "    e = e + np.take(params['embeddings.word'], input_ids, axis=0)\n"
        "    out, ln = layernorm_forward(e, params['embeddings.ln_gamma'],\n"
        "                                params['embeddings.ln_beta'], eps=config.layer_norm_eps)\n"
        "    mask = None\n"
        "    if training and config.dropout > 0:\n"
        "        mask = (rng.random(out.shape) >= config.dropout) / (1.0 - config.dropout)\n"
        "        out = out * mask\n"
        "    shapes = {k: params[k].shape for k in ('embeddings.word', 'embeddings.position',\n"
        "                                           'embeddings.token_type')}\n"
        "    return out, dict(input_ids=input_ids, token_type_ids=token_type_ids, shapes=shapes,\n"
        "                     ln=ln, dropout=mask)\n",
    ],
    "07.embeddings_backward": [
        # one-hot matrix products instead of scatter-adds, einsum for the positions
        "def embeddings_backward(dout, cache):\n"
        "    d = dout if cache['dropout'] is None else dout * cache['dropout']\n"
        "    dsum, dgamma, dbeta = layernorm_backward(d, cache['ln'])\n"
        "    B, T, D = dsum.shape\n"
        "    rows = dsum.reshape(-1, D)\n"
        "    def table_grad(ids, shape):\n"
        "        one_hot = (ids.reshape(-1)[:, None] == np.arange(shape[0])[None, :])\n"
        "        return (one_hot.T.astype(dsum.dtype) @ rows).astype(dout.dtype)\n"
        "    shapes = cache['shapes']\n"
        "    P = shapes['embeddings.position'][0]\n"
        "    dposition = np.concatenate([np.einsum('btd->td', dsum),\n"
        "                                np.zeros((P - T, D), dtype=dsum.dtype)]).astype(dout.dtype)\n"
        "    return {'embeddings.word': table_grad(cache['input_ids'], shapes['embeddings.word']),\n"
        "            'embeddings.token_type': table_grad(cache['token_type_ids'],\n"
        "                                                shapes['embeddings.token_type']),\n"
        "            'embeddings.position': dposition,\n"
        "            'embeddings.ln_gamma': dgamma.astype(dout.dtype),\n"
        "            'embeddings.ln_beta': dbeta.astype(dout.dtype)}\n",
    ],
    "07.mlm_head_forward": [
        # einsum for the decoder, the LayerNorm written out with np.var
        "def mlm_head_forward(hidden, params, config):\n"
        "    dense, dense_cache = linear_forward(hidden, params['mlm.W'], params['mlm.b'])\n"
        "    act, gelu_cache = gelu_forward(dense)\n"
        "    mu = act.mean(axis=-1, keepdims=True)\n"
        "    inv = 1.0 / np.sqrt(act.var(axis=-1, keepdims=True) + config.layer_norm_eps)\n"
        "    x_hat = (act - mu) * inv\n"
        "    normed = params['mlm.ln_gamma'] * x_hat + params['mlm.ln_beta']\n"
        "    word = params['embeddings.word']\n"
        "    logits = np.einsum('...d,vd->...v', normed, word) + params['mlm.bias']\n"
        "    return logits, (dense_cache, gelu_cache, (x_hat, inv, params['mlm.ln_gamma']),\n"
        "                    normed, word)\n",
    ],
    "07.mlm_head_backward": [
        "def mlm_head_backward(dlogits, cache):\n"
        "    dense_cache, gelu_cache, ln_cache, normed, word = cache\n"
        "    lead = tuple(range(dlogits.ndim - 1))\n"
        "    dword = np.tensordot(dlogits, normed, axes=(lead, lead))\n"
        "    dbias = dlogits.sum(axis=lead)\n"
        "    dnormed = np.einsum('...v,vd->...d', dlogits, word)\n"
        "    dact, dgamma, dbeta = layernorm_backward(dnormed, ln_cache)\n"
        "    dhidden, dW, db = linear_backward(gelu_backward(dact, gelu_cache), dense_cache)\n"
        "    grads = dict(zip(['mlm.W', 'mlm.b', 'mlm.ln_gamma', 'mlm.ln_beta', 'mlm.bias'],\n"
        "                     [dW, db, dgamma, dbeta, dbias]))\n"
        "    grads['embeddings.word'] = dword\n"
        "    return dhidden, grads\n",
    ],
    "07.pooler_forward": [
        "def pooler_forward(hidden, params):\n"
        "    cls = np.take(hidden, 0, axis=1)\n"
        "    out, lin = linear_forward(cls, params['pooler.W'], params['pooler.b'])\n"
        "    pooled = 2.0 / (1.0 + np.exp(-2.0 * out)) - 1.0\n"
        "    return pooled, (lin, pooled, hidden.shape)\n",
    ],
    "07.pooler_backward": [
        "def pooler_backward(dpooled, cache):\n"
        "    (first, W), pooled, (B, T, D) = cache\n"
        "    da = dpooled - dpooled * pooled * pooled\n"
        "    dfirst = np.einsum('bo,io->bi', da, W)\n"
        "    rest = np.zeros((B, T - 1, D), dtype=dfirst.dtype)\n"
        "    dhidden = np.concatenate([dfirst[:, None, :], rest], axis=1)\n"
        "    return dhidden, {'pooler.W': np.einsum('bi,bo->io', first, da),\n"
        "                     'pooler.b': da.sum(0)}\n",
    ],
    "07.count_parameters": [
        # every array's shape written out, then their sizes added up
        "def count_parameters(config):\n"
        "    V, D, F = config.vocab_size, config.hidden_size, config.intermediate_size\n"
        "    shapes = [(V, D), (config.max_position_embeddings, D), (config.type_vocab_size, D),\n"
        "              (D,), (D,)]\n"
        "    block = [(D, D), (D,)] * 4 + [(D,), (D,), (D, F), (F,), (F, D), (D,), (D,), (D,)]\n"
        "    shapes += block * config.num_layers\n"
        "    if config.pre_ln:\n"
        "        shapes += [(D,), (D,)]\n"
        "    shapes += [(D, D), (D,), (D,), (D,), (V,)]\n"
        "    shapes += [(D, D), (D,), (D, config.num_labels), (config.num_labels,)]\n"
        "    return sum(math.prod(s) for s in shapes)\n",
    ],
    "07.init_bert": [
        # the heads first, the blocks written out without init_encoder_block, another order
        "def init_bert(config, rng, dtype=np.float32):\n"
        "    D, F, V = config.hidden_size, config.intermediate_size, config.vocab_size\n"
        "    s = config.init_std\n"
        "    p = {}\n"
        "    p['classifier.W'] = rng.normal(0, s, (D, config.num_labels))\n"
        "    p['classifier.b'] = np.zeros(config.num_labels)\n"
        "    p['pooler.W'], p['pooler.b'] = rng.normal(0, s, (D, D)), np.zeros(D)\n"
        "    p['mlm.W'], p['mlm.b'] = rng.normal(0, s, (D, D)), np.zeros(D)\n"
        "    p['mlm.ln_gamma'], p['mlm.ln_beta'], p['mlm.bias'] = np.ones(D), np.zeros(D), np.zeros(V)\n"
        "    for i in range(config.num_layers):\n"
        "        for n, shape in [('q', (D, D)), ('k', (D, D)), ('v', (D, D)), ('o', (D, D)),\n"
        "                         ('1', (D, F)), ('2', (F, D))]:\n"
        "            p[f'layers.{i}.W{n}'] = rng.normal(0, s, shape)\n"
        "            p[f'layers.{i}.b{n}'] = np.zeros(shape[1])\n"
        "        for n in ('ln1', 'ln2'):\n"
        "            p[f'layers.{i}.{n}_gamma'], p[f'layers.{i}.{n}_beta'] = np.ones(D), np.zeros(D)\n"
        "    if config.pre_ln:\n"
        "        p['final.ln_gamma'], p['final.ln_beta'] = np.ones(D), np.zeros(D)\n"
        "    for name, rows in [('word', V), ('position', config.max_position_embeddings),\n"
        "                       ('token_type', config.type_vocab_size)]:\n"
        "        p['embeddings.' + name] = rng.normal(0, s, (rows, D))\n"
        "    p['embeddings.ln_gamma'], p['embeddings.ln_beta'] = np.ones(D), np.zeros(D)\n"
        "    return {k: np.asarray(v, dtype=dtype) for k, v in p.items()}\n",
    ],
    "07.bert_forward": [
        "def bert_forward(params, config, input_ids, token_type_ids=None, attention_mask=None,\n"
        "                 training=False, rng=None):\n"
        "    names = ['Wq', 'bq', 'Wk', 'bk', 'Wv', 'bv', 'Wo', 'bo', 'ln1_gamma', 'ln1_beta',\n"
        "             'W1', 'b1', 'W2', 'b2', 'ln2_gamma', 'ln2_beta']\n"
        "    types = np.zeros(input_ids.shape, dtype=np.int64) if token_type_ids is None \\\n"
        "        else token_type_ids\n"
        "    mask = None\n"
        "    if attention_mask is not None:\n"
        "        mask = attention_mask.astype(bool)[:, None, None, :]\n"
        "    h, emb = embeddings_forward(input_ids, types, params, config, training=training, rng=rng)\n"
        "    layers = []\n"
        "    for i in range(config.num_layers):\n"
        "        block = {n: params[f'layers.{i}.{n}'] for n in names}\n"
        "        h, c = encoder_block_forward(h, block, config.num_heads, mask=mask,\n"
        "                                     pre_ln=config.pre_ln, dropout_p=config.dropout,\n"
        "                                     training=training, rng=rng,\n"
        "                                     eps=config.layer_norm_eps)\n"
        "        layers.append(c)\n"
        "    final_ln = None\n"
        "    if config.pre_ln:\n"
        "        h, final_ln = layernorm_forward(h, params['final.ln_gamma'],\n"
        "                                        params['final.ln_beta'], eps=config.layer_norm_eps)\n"
        "    return h, dict(embeddings=emb, layers=layers, final_ln=final_ln)\n",
    ],
    "07.bert_backward": [
        "def bert_backward(dhidden, cache):\n"
        "    d = dhidden\n"
        "    out = {}\n"
        "    if cache['final_ln'] is not None:\n"
        "        d, g, b = layernorm_backward(d, cache['final_ln'])\n"
        "        out.update({'final.ln_gamma': g, 'final.ln_beta': b})\n"
        "    L = len(cache['layers'])\n"
        "    for i in range(L - 1, -1, -1):\n"
        "        d, block = encoder_block_backward(d, cache['layers'][i])\n"
        "        for name in block:\n"
        "            out['layers.%d.%s' % (i, name)] = block[name]\n"
        "    return {**embeddings_backward(d, cache['embeddings']), **out}\n",
    ],
}
