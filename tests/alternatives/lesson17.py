"""Correct solutions for lesson 17, written differently from the reference."""

ALTERNATIVES = {
    "17.lora_forward": [
        # the merged weight formed first (slower for large layers, the same numbers)
        "def lora_forward(x, W, b, A, B, scale):\n"
        "    h = x @ A\n"
        "    return x @ (W + scale * A @ B) + b, (x, W, A, B, scale, h)\n",
        # einsum, with the scale applied to h
        "def lora_forward(x, W, b, A, B, scale):\n"
        "    h = np.einsum('...i,ir->...r', x, A)\n"
        "    out = np.einsum('...i,io->...o', x, W) + b + np.einsum('...r,ro->...o', scale * h, B)\n"
        "    return out, (x, W, A, B, scale, h)\n",
    ],
    "17.lora_backward": [
        # tensordot over every leading axis, no reshape
        "def lora_backward(dout, cache):\n"
        "    x, W, A, B, scale, h = cache\n"
        "    lead = list(range(x.ndim - 1))\n"
        "    dh = scale * np.einsum('...o,ro->...r', dout, B)\n"
        "    dB = scale * np.tensordot(h, dout, axes=(lead, lead))\n"
        "    dA = np.tensordot(x, dh, axes=(lead, lead))\n"
        "    dx = dout @ W.T + dh @ A.T\n"
        "    return dx, dA, dB\n",
        # dx through the merged weight; h recomputed from x
        "def lora_backward(dout, cache):\n"
        "    x, W, A, B, scale, _ = cache\n"
        "    rows = x.reshape(-1, x.shape[-1])\n"
        "    g = dout.reshape(-1, dout.shape[-1])\n"
        "    dx = (g @ (W + scale * A @ B).T).reshape(x.shape)\n"
        "    dB = scale * (rows @ A).T @ g\n"
        "    dA = scale * rows.T @ (g @ B.T)\n"
        "    return dx, dA, dB\n",
    ],
    "17.lora_grads_from_weight_grad": [
        "def lora_grads_from_weight_grad(dW, A, B, scale):\n"
        "    dA = np.einsum('io,ro->ir', dW, B) * scale\n"
        "    dB = np.einsum('ir,io->ro', A, dW) * scale\n"
        "    return dA, dB\n",
    ],
    "17.merge_lora": [
        "def merge_lora(W, A, B, scale):\n"
        "    merged = W.copy()\n"
        "    merged += np.einsum('ir,ro->io', A, B) * scale\n"
        "    return merged\n",
    ],
    "17.lora_parameter_count": [
        # the sizes of A and B summed target by target
        "def lora_parameter_count(config, rank, targets=LORA_TARGETS):\n"
        "    H, I = config.hidden_size, config.intermediate_size\n"
        "    total = 0\n"
        "    for t in targets:\n"
        "        d_in = I if t == 'W2' else H\n"
        "        d_out = I if t == 'W1' else H\n"
        "        total += d_in * rank + rank * d_out\n"
        "    return total * config.num_layers\n",
    ],
    "17.lora_loss_and_grads": [
        # merged weights written out; the frozen weights popped afterwards
        "def lora_loss_and_grads(params, adapters, scale, loss_fn, batch):\n"
        "    names = sorted({key.rsplit('.', 1)[0] for key in adapters})\n"
        "    merged = {**params, **{n: params[n] + scale * adapters[n + '.A'] @ adapters[n + '.B']\n"
        "                           for n in names}}\n"
        "    loss, grads = loss_fn(merged, batch)\n"
        "    grads = dict(grads)\n"
        "    for n in names:\n"
        "        dW = grads.pop(n)\n"
        "        grads[n + '.A'] = scale * dW @ adapters[n + '.B'].T\n"
        "        grads[n + '.B'] = scale * adapters[n + '.A'].T @ dW\n"
        "    return loss, grads\n",
    ],
}
