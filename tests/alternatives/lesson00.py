"""Correct solutions for lesson 00, written differently from the reference."""

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
}
