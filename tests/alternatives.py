"""Correct solutions written differently from the reference: each must keep full marks.

They guard against a grader that only accepts the reference's exact arithmetic.
"""

ALTERNATIVES = {
    "00.standardize_columns": [
        "def standardize_columns(x, eps=1e-8):\n"
        "    centred = x - np.mean(x, axis=0)\n"
        "    return centred / np.sqrt(np.mean(centred ** 2, axis=0) + eps)\n",
    ],
    "00.pairwise_sq_distances": [
        "def pairwise_sq_distances(a, b):\n"
        "    sq_a = np.sum(a * a, axis=1)[:, None]\n"
        "    sq_b = np.sum(b * b, axis=1)[None, :]\n"
        "    return np.maximum(sq_a + sq_b - 2 * a @ b.T, 0.0)\n",
        "def pairwise_sq_distances(a, b):\n"
        "    return np.einsum('ijk,ijk->ij', a[:, None] - b[None], a[:, None] - b[None])\n",
    ],
    "00.one_hot": [
        "def one_hot(labels, num_classes):\n"
        "    return np.eye(num_classes)[labels]\n",
        "def one_hot(labels, num_classes):\n"
        "    return (labels[:, None] == np.arange(num_classes)[None, :]).astype(np.float64)\n",
    ],
    "00.numerical_gradient": [
        "def numerical_gradient(f, x, eps=1e-5):\n"
        "    flat = x.reshape(-1)            # a view: writing to it writes to x\n"
        "    grad = np.zeros(flat.size)\n"
        "    for k in range(flat.size):\n"
        "        keep = flat[k]\n"
        "        flat[k] = keep + eps\n"
        "        up = f(x)\n"
        "        flat[k] = keep - eps\n"
        "        down = f(x)\n"
        "        flat[k] = keep\n"
        "        grad[k] = (up - down) / (2 * eps)\n"
        "    return grad.reshape(x.shape)\n",
        "def numerical_gradient(f, x, eps=1e-5):\n"
        "    grad = np.zeros(x.shape)\n"
        "    it = np.nditer(x, flags=['multi_index'])\n"
        "    for _ in it:\n"
        "        i = it.multi_index\n"
        "        old = x[i]\n"
        "        x[i] = old + eps; fp = f(x)\n"
        "        x[i] = old - eps; fm = f(x)\n"
        "        x[i] = old\n"
        "        grad[i] = (fp - fm) / (2 * eps)\n"
        "    return grad\n",
    ],
    "00.relative_error": [
        "def relative_error(a, b):\n"
        "    return float((np.abs(a - b) / np.clip(np.abs(a) + np.abs(b), 1e-8, None)).max())\n",
    ],
    "01.softmax": [
        "def softmax(x, axis=-1):\n"
        "    m = np.max(x, axis=axis, keepdims=True)\n"
        "    lse = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))\n"
        "    return np.exp(x - lse)\n",
        "def softmax(x, axis=-1):\n"
        "    moved = np.moveaxis(x, axis, -1)\n"
        "    e = np.exp(moved - moved.max(-1)[..., None])\n"
        "    return np.moveaxis(e / e.sum(-1)[..., None], -1, axis)\n",
    ],
    "01.log_softmax": [
        "def log_softmax(x, axis=-1):\n"
        "    return x - np.logaddexp.reduce(x, axis=axis, keepdims=True)\n",
    ],
    "01.cross_entropy": [
        "def cross_entropy(logits, targets, ignore_index=-100):\n"
        "    keep = targets != ignore_index\n"
        "    n = int(keep.sum())\n"
        "    if n == 0:\n"
        "        return 0.0\n"
        "    onehot = np.zeros_like(logits)\n"
        "    onehot[np.flatnonzero(keep), targets[keep]] = 1.0\n"
        "    return float(-(onehot * log_softmax(logits)).sum() / n)\n",
    ],
    "01.cross_entropy_grad": [
        "def cross_entropy_grad(logits, targets, ignore_index=-100):\n"
        "    keep = (targets != ignore_index)[:, None]\n"
        "    onehot = np.zeros_like(logits)\n"
        "    rows = np.flatnonzero(keep[:, 0])\n"
        "    onehot[rows, targets[rows]] = 1.0\n"
        "    return np.where(keep, softmax(logits) - onehot, 0.0) / max(int(keep.sum()), 1)\n",
    ],
    "01.masked_lm_loss": [
        "def masked_lm_loss(logits, labels):\n"
        "    mask = labels != -100\n"
        "    if not mask.any():\n"
        "        return 0.0\n"
        "    picked = log_softmax(logits[mask])        # (n_masked, V)\n"
        "    return float(-picked[np.arange(len(picked)), labels[mask]].mean())\n",
    ],
    "01.bce_with_logits": [
        "def bce_with_logits(logits, targets):\n"
        "    return float(np.mean(np.logaddexp(0.0, logits) - logits * targets))\n",
    ],
    "01.mse": [
        "def mse(predictions, targets):\n"
        "    d = (predictions - targets).ravel()\n"
        "    return float(d @ d / d.size)\n",
    ],
    "01.perception_loss": [
        "def perception_loss(f, g, w):\n"
        "    return float(np.einsum('ij,ij->', w, (f[:, None] - g) ** 2) / f.shape[0])\n",
    ],
    "01.perception_loss_grad": [
        "def perception_loss_grad(f, g, w):\n"
        "    return 2.0 * (f * w.sum(axis=1) - (w * g).sum(axis=1)) / f.shape[0]\n",
    ],
    "01.kl_divergence": [
        "def kl_divergence(p, q):\n"
        "    safe_p = np.where(p > 0, p, 1.0)\n"
        "    terms = np.where(p > 0, p * (np.log(safe_p) - np.log(q)), 0.0)\n"
        "    return float(np.mean(np.sum(terms, axis=1)))\n",
    ],
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
