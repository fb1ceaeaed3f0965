"""Correct solutions for lesson 06, written differently from the reference."""

ALTERNATIVES = {
    "06.feed_forward_forward": [
        # einsum, and GELU as x * Phi(x) with scipy's normal CDF
        "from scipy.special import ndtr\n"
        "def feed_forward_forward(x, params):\n"
        "    hidden = np.einsum('...d,df->...f', x, params['W1']) + params['b1']\n"
        "    cdf = ndtr(hidden)\n"
        "    activation = hidden * cdf\n"
        "    out = np.einsum('...f,fd->...d', activation, params['W2']) + params['b2']\n"
        "    return out, ((x, params['W1']), (hidden, cdf), (activation, params['W2']))\n",
    ],
    "06.feed_forward_backward": [
        "def feed_forward_backward(dout, cache):\n"
        "    (x, W1), (hidden, cdf), (activation, W2) = cache\n"
        "    lead = tuple(range(dout.ndim - 1))\n"
        "    pdf = np.exp(-hidden ** 2 / 2) / math.sqrt(2 * math.pi)\n"
        "    dhidden = np.einsum('...d,fd->...f', dout, W2) * (cdf + hidden * pdf)\n"
        "    grads = {'W2': np.tensordot(activation, dout, axes=(lead, lead)),\n"
        "             'b2': dout.sum(axis=lead),\n"
        "             'W1': np.tensordot(x, dhidden, axes=(lead, lead)),\n"
        "             'b1': dhidden.sum(axis=lead)}\n"
        "    return np.einsum('...f,df->...d', dhidden, W1), grads\n",
    ],
    "06.add_layernorm_forward": [
        # the LayerNorm written out, with np.var
        "def add_layernorm_forward(x, sublayer_out, gamma, beta, eps=1e-12):\n"
        "    s = x + sublayer_out\n"
        "    inv_std = 1 / np.sqrt(s.var(axis=-1, keepdims=True) + eps)\n"
        "    x_hat = (s - s.mean(axis=-1, keepdims=True)) * inv_std\n"
        "    return x_hat * gamma + beta, (x_hat, inv_std, gamma)\n",
    ],
    "06.add_layernorm_backward": [
        # the LayerNorm's backward written out with sums instead of means
        "def add_layernorm_backward(dout, cache):\n"
        "    x_hat, inv_std, gamma = cache\n"
        "    D = x_hat.shape[-1]\n"
        "    g = dout * gamma\n"
        "    ds = (D * g - g.sum(-1, keepdims=True)\n"
        "          - x_hat * (g * x_hat).sum(-1, keepdims=True)) * inv_std / D\n"
        "    lead = tuple(range(dout.ndim - 1))\n"
        "    return ds, ds.copy(), (dout * x_hat).sum(axis=lead), dout.sum(axis=lead)\n",
    ],
    "06.encoder_block_forward": [
        # small closures that fill the cache; post-LN with layernorm_forward of the sum
        "def encoder_block_forward(x, params, num_heads, mask=None, pre_ln=False, dropout_p=0.0,\n"
        "                          training=False, rng=None, eps=1e-12):\n"
        "    cache = {'pre_ln': pre_ln}\n"
        "    def norm(i, y):\n"
        "        out, cache[f'ln{i}'] = layernorm_forward(y, params[f'ln{i}_gamma'],\n"
        "                                                 params[f'ln{i}_beta'], eps)\n"
        "        return out\n"
        "    def attend(y):\n"
        "        out, cache['attention'] = multi_head_attention_forward(y, params, num_heads, mask)\n"
        "        out, cache['dropout1'] = dropout_forward(out, dropout_p, training, rng)\n"
        "        return out\n"
        "    def feed(y):\n"
        "        out, cache['ffn'] = feed_forward_forward(y, params)\n"
        "        out, cache['dropout2'] = dropout_forward(out, dropout_p, training, rng)\n"
        "        return out\n"
        "    if pre_ln:\n"
        "        h = x + attend(norm(1, x))\n"
        "        return h + feed(norm(2, h)), cache\n"
        "    h = norm(1, x + attend(x))\n"
        "    return norm(2, h + feed(h)), cache\n",
    ],
    "06.encoder_block_backward": [
        "def encoder_block_backward(dout, cache):\n"
        "    grads = {}\n"
        "    def norm_back(i, d):\n"
        "        dy, grads[f'ln{i}_gamma'], grads[f'ln{i}_beta'] = layernorm_backward(\n"
        "            d, cache[f'ln{i}'])\n"
        "        return dy\n"
        "    def attend_back(d):\n"
        "        d = dropout_backward(d, cache['dropout1'])\n"
        "        d, g = multi_head_attention_backward(d, cache['attention'])\n"
        "        grads.update(g)\n"
        "        return d\n"
        "    def feed_back(d):\n"
        "        d = dropout_backward(d, cache['dropout2'])\n"
        "        d, g = feed_forward_backward(d, cache['ffn'])\n"
        "        grads.update(g)\n"
        "        return d\n"
        "    if cache['pre_ln']:\n"
        "        dh = dout + norm_back(2, feed_back(dout))\n"
        "        dx = dh + norm_back(1, attend_back(dh))\n"
        "    else:\n"
        "        ds = norm_back(2, dout)\n"
        "        dh = norm_back(1, ds + feed_back(ds))\n"
        "        dx = dh + attend_back(dh)\n"
        "    return dx, grads\n",
    ],
    "06.init_encoder_block": [
        "def init_encoder_block(dim, num_heads, ff_dim, rng, init_std=0.02):\n"
        "    if (dim // num_heads) * num_heads != dim:\n"
        "        raise ValueError('num_heads must divide dim')\n"
        "    shapes = {'Wq': (dim, dim), 'Wk': (dim, dim), 'Wv': (dim, dim), 'Wo': (dim, dim),\n"
        "              'W1': (dim, ff_dim), 'W2': (ff_dim, dim)}\n"
        "    drawn = {}\n"
        "    for name, shape in shapes.items():\n"
        "        drawn[name] = init_std * rng.standard_normal(shape)\n"
        "    order = ['Wq', 'bq', 'Wk', 'bk', 'Wv', 'bv', 'Wo', 'bo', 'ln1_gamma', 'ln1_beta',\n"
        "             'W1', 'b1', 'W2', 'b2', 'ln2_gamma', 'ln2_beta']\n"
        "    params = {}\n"
        "    for name in order:\n"
        "        if name in drawn:\n"
        "            params[name] = drawn[name]\n"
        "        else:\n"
        "            size = ff_dim if name == 'b1' else dim\n"
        "            params[name] = np.full(size, 1.0 if name.endswith('gamma') else 0.0)\n"
        "    return params\n",
    ],
    "06.encoder_block": [
        "class EncoderBlock(Module):\n"
        "    def __init__(self, dim, num_heads, ff_dim, rng, dropout_p=0.1, pre_ln=False, eps=1e-12,\n"
        "                 init_std=0.02):\n"
        "        super().__init__()\n"
        "        params = init_encoder_block(dim, num_heads, ff_dim, rng, init_std=init_std)\n"
        "        for name in params:\n"
        "            self.add_parameter(name, params[name])\n"
        "        self.settings = dict(pre_ln=pre_ln, dropout_p=dropout_p, eps=eps)\n"
        "        self.num_heads = num_heads\n"
        "        self.rng = rng\n"
        "    def forward(self, x, mask=None):\n"
        "        out, self.cache = encoder_block_forward(x, self.params, self.num_heads, mask=mask,\n"
        "                                                training=self.training, rng=self.rng,\n"
        "                                                **self.settings)\n"
        "        return out\n"
        "    def backward(self, dout):\n"
        "        dx, grads = encoder_block_backward(dout, self.cache)\n"
        "        for name in self.grads:\n"
        "            np.add(self.grads[name], grads[name], out=self.grads[name])\n"
        "        return dx\n",
    ],
}
