"""Correct solutions for lesson 02, written differently from the reference."""

ALTERNATIVES = {
    "02.sgd": [
        "class SGD:\n"
        "    def __init__(self, params, lr, momentum=0.0):\n"
        "        self.params = params\n"
        "        self.lr = lr\n"
        "        self.momentum = momentum\n"
        "        self.state = {}\n"
        "    def step(self, grads):\n"
        "        for k, (p, g) in enumerate(zip(self.params, grads)):\n"
        "            v = self.state.get(k)\n"
        "            v = g.copy() if v is None else self.momentum * v + g\n"
        "            self.state[k] = v\n"
        "            np.subtract(p, self.lr * v, out=p)\n",
    ],
    "02.adam": [
        "class Adam:\n"
        "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):\n"
        "        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps\n"
        "        self.state = [dict(m=np.zeros_like(p), v=np.zeros_like(p)) for p in params]\n"
        "        self.step_count = 0\n"
        "    def step(self, grads):\n"
        "        self.step_count += 1\n"
        "        b1, b2 = self.betas\n"
        "        for p, g, s in zip(self.params, grads, self.state):\n"
        "            s['m'] += (1 - b1) * (g - s['m'])\n"
        "            s['v'] += (1 - b2) * (np.square(g) - s['v'])\n"
        "            m_hat = s['m'] / (1 - np.power(b1, self.step_count))\n"
        "            v_hat = s['v'] / (1 - np.power(b2, self.step_count))\n"
        "            p[...] = p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)\n",
    ],
    "02.adamw": [
        "class AdamW:\n"
        "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):\n"
        "        self.params, self.lr, self.eps, self.weight_decay = params, lr, eps, weight_decay\n"
        "        self.b1, self.b2 = betas\n"
        "        self.m = [np.zeros_like(p) for p in params]\n"
        "        self.v = [np.zeros_like(p) for p in params]\n"
        "        self.t = 0\n"
        "    def step(self, grads):\n"
        "        self.t += 1\n"
        "        for p, g, m, v in zip(self.params, grads, self.m, self.v):\n"
        "            m *= self.b1; m += (1 - self.b1) * g\n"
        "            v *= self.b2; v += (1 - self.b2) * g * g\n"
        "            update = (m / (1 - self.b1 ** self.t)) / (np.sqrt(v / (1 - self.b2 ** self.t)) + self.eps)\n"
        "            p -= self.lr * (update + self.weight_decay * p)\n",
    ],
    "02.scheduled_lr": [
        "def scheduled_lr(step, base_lr, warmup_steps, total_steps, schedule='linear'):\n"
        "    if warmup_steps > 0 and step < warmup_steps:\n"
        "        return base_lr * step / warmup_steps\n"
        "    progress = np.clip((step - warmup_steps) / (total_steps - warmup_steps), 0.0, 1.0)\n"
        "    factor = {'linear': 1 - progress, 'cosine': (1 + np.cos(np.pi * progress)) / 2}[schedule]\n"
        "    return float(base_lr * factor)\n",
    ],
    "02.clip_grad_norm": [
        "def clip_grad_norm(grads, max_norm):\n"
        "    total = float(np.linalg.norm(np.concatenate([g.ravel() for g in grads])))\n"
        "    coef = min(1.0, max_norm / (total + 1e-6))\n"
        "    for g in grads:\n"
        "        g *= coef\n"
        "    return total\n",
    ],
    "02.logreg_loss_and_grad": [
        "def logreg_loss_and_grad(W, b, X, y):\n"
        "    logits = X @ W + b\n"
        "    p = softmax(logits)\n"
        "    n = len(y)\n"
        "    loss = -np.mean(np.log(p[np.arange(n), y]))\n"
        "    p[np.arange(n), y] -= 1.0\n"
        "    p /= n\n"
        "    return float(loss), np.einsum('nd,nc->dc', X, p), p.sum(axis=0)\n",
    ],
}
