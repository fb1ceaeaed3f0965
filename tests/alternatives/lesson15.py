"""Correct solutions for lesson 15, written differently from the reference."""

ALTERNATIVES = {
    "15.per_example_linear_grads": [
        # a loop over the examples, outer products summed over the tokens
        "def per_example_linear_grads(x, dout):\n"
        "    x3 = x if x.ndim == 3 else x[:, None]\n"
        "    d3 = dout if dout.ndim == 3 else dout[:, None]\n"
        "    dW = np.stack([xi.T @ di for xi, di in zip(x3, d3)])\n"
        "    return dW, d3.sum(axis=1)\n",
    ],
    "15.clip_per_example": [
        # the per-example vectors flattened and concatenated
        "def clip_per_example(per_example_grads, max_norm):\n"
        "    names = list(per_example_grads)\n"
        "    n = len(per_example_grads[names[0]])\n"
        "    flat = np.concatenate([per_example_grads[k].reshape(n, -1) for k in names], axis=1)\n"
        "    norms = np.linalg.norm(flat, axis=1)\n"
        "    factor = np.clip(max_norm / (norms + 1e-6), None, 1.0)\n"
        "    return {k: np.einsum('n,n...->n...', factor, per_example_grads[k]) for k in names}\n",
    ],
    "15.dp_noisy_mean": [
        "def dp_noisy_mean(clipped_grads, max_norm, noise_multiplier, noise):\n"
        "    out = {}\n"
        "    for name, g in clipped_grads.items():\n"
        "        n = g.shape[0]\n"
        "        out[name] = g.mean(axis=0) + noise_multiplier * max_norm * noise[name] / n\n"
        "    return out\n",
    ],
    "15.federated_averaging": [
        # the weighted average accumulated as the clients finish
        "def federated_averaging(global_params, client_data, local_steps, lr, loss_and_grads):\n"
        "    total = sum(len(y) for _, y in client_data)\n"
        "    new = {k: np.zeros_like(v) for k, v in global_params.items()}\n"
        "    for X, y in client_data:\n"
        "        local = {k: v.copy() for k, v in global_params.items()}\n"
        "        for _ in range(local_steps):\n"
        "            grads = loss_and_grads(local, X, y)[1]\n"
        "            for k in local:\n"
        "                local[k] -= lr * grads[k]\n"
        "        for k in new:\n"
        "            new[k] += local[k] * (len(y) / total)\n"
        "    return new\n",
    ],
    "15.weat_effect_size": [
        # cosines one pair at a time
        "def weat_effect_size(X, Y, A, B):\n"
        "    def cos(u, v):\n"
        "        return u @ v / (np.linalg.norm(u) * np.linalg.norm(v))\n"
        "    def s(w):\n"
        "        return np.mean([cos(w, a) for a in A]) - np.mean([cos(w, b) for b in B])\n"
        "    sx = [s(x) for x in X]\n"
        "    sy = [s(y) for y in Y]\n"
        "    return (np.mean(sx) - np.mean(sy)) / np.std(sx + sy, ddof=1)\n",
    ],
    "15.integrated_gradients": [
        # all the path points at once
        "def integrated_gradients(grad_fn, x, baseline, steps=50):\n"
        "    alphas = (np.arange(steps) + 0.5) / steps\n"
        "    grads = [grad_fn(baseline + a * (x - baseline)) for a in alphas]\n"
        "    return (x - baseline) * np.mean(grads, axis=0)\n",
    ],
}
