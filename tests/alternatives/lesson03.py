"""Correct solutions for lesson 03, written differently from the reference."""

ALTERNATIVES = {
    "03.linear_forward": [
        "def linear_forward(x, W, b):\n"
        "    out = np.einsum('...i,ij->...j', x, W) + b\n"
        "    return out, (x, W)\n",
    ],
    "03.linear_backward": [
        "def linear_backward(dout, cache):\n"
        "    x, W = cache\n"
        "    dx = np.einsum('...j,ij->...i', dout, W)\n"
        "    lead = list(range(x.ndim - 1))\n"
        "    dW = np.tensordot(x, dout, axes=(lead, lead))\n"
        "    db = dout.sum(axis=tuple(range(dout.ndim - 1)))\n"
        "    return dx, dW, db\n",
        # a loop over the rows, as the definition reads
        "def linear_backward(dout, cache):\n"
        "    x, W = cache\n"
        "    rows_x = np.atleast_2d(x).reshape(-1, W.shape[0])\n"
        "    rows_d = np.atleast_2d(dout).reshape(-1, W.shape[1])\n"
        "    dW = np.zeros_like(W)\n"
        "    for xi, di in zip(rows_x, rows_d):\n"
        "        dW += np.outer(xi, di)\n"
        "    return np.matmul(dout, W.T), dW, rows_d.sum(axis=0)\n",
    ],
    "03.relu_forward": [
        "def relu_forward(x):\n"
        "    return np.where(x > 0, x, 0.0), x\n",
    ],
    "03.relu_backward": [
        "def relu_backward(dout, cache):\n"
        "    dx = dout.copy()\n"
        "    dx[cache <= 0] = 0.0\n"
        "    return dx\n",
    ],
    "03.gelu_forward": [
        # x * Phi(x), with Phi written through erfc (accurate in the far left tail too)
        "from scipy.special import erfc\n"
        "def gelu_forward(x):\n"
        "    cdf = 0.5 * erfc(-x / math.sqrt(2.0))\n"
        "    return x * cdf, (x, cdf)\n",
    ],
    "03.gelu_backward": [
        # Phi from the cache, phi from scipy.stats
        "from scipy.stats import norm\n"
        "def gelu_backward(dout, cache):\n"
        "    x, cdf = cache\n"
        "    return dout * (cdf + x * norm.pdf(x))\n",
        # the cached Phi ignored and recomputed: slower, still correct
        "from scipy.special import ndtr\n"
        "def gelu_backward(dout, cache):\n"
        "    x = cache[0]\n"
        "    return dout * (ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi))\n",
    ],
    "03.gelu_tanh_forward": [
        # 0.5 * (1 + tanh(u)) is sigmoid(2u)
        "def gelu_tanh_forward(x):\n"
        "    u = math.sqrt(2 / math.pi) * x * (1 + 0.044715 * x * x)\n"
        "    return x / (1 + np.exp(-2 * u)), x\n",
    ],
    "03.gelu_tanh_backward": [
        "def gelu_tanh_backward(dout, cache):\n"
        "    x = cache\n"
        "    c = math.sqrt(2 / math.pi)\n"
        "    u = c * (x + 0.044715 * x ** 3)\n"
        "    sech2 = 1 / np.cosh(u) ** 2\n"
        "    return dout * (0.5 * (1 + np.tanh(u)) + 0.5 * x * sech2 * c * (1 + 0.134145 * x ** 2))\n",
    ],
    "03.dropout_forward": [
        "def dropout_forward(x, p, training, rng):\n"
        "    if training and p > 0:\n"
        "        keep = rng.random(x.shape) >= p\n"
        "        scale = 1.0 / (1.0 - p)\n"
        "        mask = np.where(keep, scale, 0.0).astype(x.dtype)\n"
        "        return np.where(keep, x * scale, 0.0), mask\n"
        "    return x.copy(), None\n",
    ],
    "03.dropout_backward": [
        "def dropout_backward(dout, cache):\n"
        "    return dout.copy() if cache is None else np.multiply(dout, cache)\n",
    ],
    "03.layernorm_forward": [
        "def layernorm_forward(x, gamma, beta, eps=1e-12):\n"
        "    centred = x - np.mean(x, axis=-1, keepdims=True)\n"
        "    inv_std = 1 / np.sqrt(np.var(x, axis=-1, keepdims=True) + eps)\n"
        "    x_hat = centred * inv_std\n"
        "    return x_hat * gamma + beta, (x_hat, inv_std, gamma)\n",
    ],
    "03.layernorm_backward": [
        # the textbook form: through dvar and dmean step by step
        "def layernorm_backward(dout, cache):\n"
        "    x_hat, inv_std, gamma = cache\n"
        "    D = x_hat.shape[-1]\n"
        "    dxhat = dout * gamma\n"
        "    xmu = x_hat / inv_std\n"
        "    dvar = np.sum(dxhat * xmu, axis=-1, keepdims=True) * -0.5 * inv_std ** 3\n"
        "    dmean = -np.sum(dxhat * inv_std, axis=-1, keepdims=True) "
        "- 2 * dvar * np.mean(xmu, axis=-1, keepdims=True)\n"
        "    dx = dxhat * inv_std + dvar * 2 * xmu / D + dmean / D\n"
        "    axes = tuple(range(dout.ndim - 1))\n"
        "    return dx, np.sum(dout * x_hat, axis=axes), np.sum(dout, axis=axes)\n",
    ],
    "03.embedding_forward": [
        "def embedding_forward(ids, table):\n"
        "    out = np.take(table, ids, axis=0)\n"
        "    return out, (ids, table.shape)\n",
    ],
    "03.embedding_backward": [
        # one-hot matrix product
        "def embedding_backward(dout, cache):\n"
        "    ids, (V, D) = cache\n"
        "    one_hot = np.eye(V, dtype=dout.dtype)[ids.reshape(-1)]\n"
        "    return one_hot.T @ dout.reshape(-1, D)\n",
        # bincount per column
        "def embedding_backward(dout, cache):\n"
        "    ids, shape = cache\n"
        "    flat_ids, flat = ids.ravel(), dout.reshape(-1, shape[1])\n"
        "    return np.stack([np.bincount(flat_ids, weights=flat[:, j], minlength=shape[0])\n"
        "                     for j in range(shape[1])], axis=1).astype(dout.dtype)\n",
    ],
    "03.softmax_cross_entropy": [
        # written out in full, without lesson 01's functions
        "def softmax_cross_entropy(logits, targets, ignore_index=-100):\n"
        "    C = logits.shape[-1]\n"
        "    z = logits.reshape(-1, C)\n"
        "    t = targets.reshape(-1)\n"
        "    keep = t != ignore_index\n"
        "    n = keep.sum()\n"
        "    shifted = z - z.max(axis=1, keepdims=True)\n"
        "    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))\n"
        "    grad = np.exp(logp)\n"
        "    rows = np.flatnonzero(keep)\n"
        "    grad[rows, t[rows]] -= 1\n"
        "    grad[~keep] = 0\n"
        "    if n == 0:\n"
        "        return 0.0, np.zeros_like(logits)\n"
        "    loss = -logp[rows, t[rows]].sum() / n\n"
        "    return float(loss), (grad / n).reshape(logits.shape)\n",
    ],
    "03.module": [
        # children found once per call with a generator; grads zeroed with [...] = 0
        "class Module:\n"
        "    def __init__(self):\n"
        "        self.params, self.grads, self.training = {}, {}, True\n"
        "    def add_parameter(self, name, value):\n"
        "        self.params[name] = value\n"
        "        self.grads[name] = np.zeros(value.shape, dtype=value.dtype)\n"
        "    def named_children(self):\n"
        "        out = []\n"
        "        for key, value in self.__dict__.items():\n"
        "            items = [(key, value)] if not isinstance(value, list) else \\\n"
        "                [(f'{key}.{i}', v) for i, v in enumerate(value)]\n"
        "            out.extend((k, v) for k, v in items if isinstance(v, Module))\n"
        "        return out\n"
        "    def _walk(self, prefix=''):\n"
        "        yield prefix, self\n"
        "        for name, child in self.named_children():\n"
        "            yield from child._walk(prefix + name + '.')\n"
        "    def named_parameters(self):\n"
        "        return [(p + n, v) for p, m in self._walk() for n, v in m.params.items()]\n"
        "    def parameters(self):\n"
        "        return [v for _, v in self.named_parameters()]\n"
        "    def gradients(self):\n"
        "        return [m.grads[n] for _, m in self._walk() for n in m.params]\n"
        "    def zero_grad(self):\n"
        "        for g in self.gradients():\n"
        "            g[...] = 0\n"
        "    def _set_mode(self, mode):\n"
        "        for _, m in self._walk():\n"
        "            m.training = mode\n"
        "        return self\n"
        "    def train(self):\n"
        "        return self._set_mode(True)\n"
        "    def eval(self):\n"
        "        return self._set_mode(False)\n"
        "    def num_parameters(self):\n"
        "        return int(np.sum([p.size for p in self.parameters()]))\n",
    ],
    "03.linear": [
        # standard_normal scaled by hand; the gradients accumulated with np.add(..., out=)
        "class Linear(Module):\n"
        "    def __init__(self, in_features, out_features, rng, init_std=0.02):\n"
        "        super().__init__()\n"
        "        self.add_parameter('W', init_std * rng.standard_normal((in_features, out_features)))\n"
        "        self.add_parameter('b', np.zeros((out_features,)))\n"
        "    def forward(self, x):\n"
        "        self.x = x\n"
        "        return x @ self.params['W'] + self.params['b']\n"
        "    def backward(self, dout):\n"
        "        W = self.params['W']\n"
        "        x2 = self.x.reshape(-1, W.shape[0])\n"
        "        d2 = dout.reshape(-1, W.shape[1])\n"
        "        np.add(self.grads['W'], x2.T @ d2, out=self.grads['W'])\n"
        "        np.add(self.grads['b'], d2.sum(axis=0), out=self.grads['b'])\n"
        "        return dout @ W.T\n",
    ],
}
