"""Correct solutions for lesson 14, written differently from the reference."""

ALTERNATIVES = {
    "14.training_memory": [
        # bytes per parameter written out, then the sharded parts divided
        "def training_memory(num_params, precision=\"fp32\", world_size=1, zero_stage=0):\n"
        "    w, g, o = (4, 4, 8) if precision == \"fp32\" else (2, 2, 4 + 4 + 4)\n"
        "    memory = {\"weights\": w * num_params, \"gradients\": g * num_params,\n"
        "              \"optimizer\": o * num_params}\n"
        "    for stage, part in [(1, \"optimizer\"), (2, \"gradients\"), (3, \"weights\")]:\n"
        "        if zero_stage >= stage:\n"
        "            memory[part] = memory[part] / world_size\n"
        "    memory = {k: float(v) for k, v in memory.items()}\n"
        "    memory[\"total\"] = sum(memory.values())\n"
        "    return memory\n",
    ],
    "14.train_step_flops": [
        # per token: 2 FLOPs per weight forward, 4 backward; attention and head apart
        "def train_step_flops(config, batch_size, seq_len, num_masked):\n"
        "    D, F, V, L = config.hidden_size, config.intermediate_size, config.vocab_size, config.num_layers\n"
        "    weights_per_layer = 4 * D * D + 2 * D * F\n"
        "    per_token = (2 + 4) * (L * weights_per_layer) + (2 + 4) * L * 2 * seq_len * D\n"
        "    head = (2 + 4) * (D * D + D * V)\n"
        "    return batch_size * seq_len * per_token + num_masked * head\n",
    ],
    "14.accumulate_gradients": [
        # running weighted sums, one name at a time
        "def accumulate_gradients(micro_grads, micro_counts):\n"
        "    total = float(np.sum(micro_counts))\n"
        "    out = {}\n"
        "    for name in micro_grads[0]:\n"
        "        acc = np.zeros_like(micro_grads[0][name])\n"
        "        for grads, count in zip(micro_grads, micro_counts):\n"
        "            acc = acc + grads[name] * (count / total)\n"
        "        out[name] = acc\n"
        "    return out\n",
    ],
    "14.distributed_shard": [
        # as torch.utils.data.DistributedSampler writes it, with Python lists
        "def distributed_shard(indices, world_size, rank, drop_last=False):\n"
        "    indices = list(indices)\n"
        "    if drop_last:\n"
        "        total = len(indices) // world_size * world_size\n"
        "        indices = indices[:total]\n"
        "    else:\n"
        "        total = math.ceil(len(indices) / world_size) * world_size\n"
        "        padding = total - len(indices)\n"
        "        indices += (indices * math.ceil(padding / len(indices)))[:padding]\n"
        "    return np.array(indices[rank:total:world_size], dtype=np.int64)\n",
    ],
    "14.ring_all_reduce": [
        # each worker's chunks as one 2-D list of arrays, messages built per step
        "def ring_all_reduce(buffers):\n"
        "    W = len(buffers)\n"
        "    flat = [np.asarray(b, dtype=float).reshape(-1) for b in buffers]\n"
        "    bounds = np.linspace(0, flat[0].size, W + 1).astype(int)\n"
        "    bounds = np.concatenate([[0], np.cumsum([len(c) for c in np.array_split(flat[0], W)])])\n"
        "    parts = [[f[bounds[c]:bounds[c + 1]].copy() for c in range(W)] for f in flat]\n"
        "    sent = np.zeros(W, dtype=np.int64)\n"
        "    for phase in ('add', 'copy'):\n"
        "        for step in range(W - 1):\n"
        "            offset = 0 if phase == 'add' else 1\n"
        "            inbox = {}\n"
        "            for w in range(W):\n"
        "                c = (w + offset - step) % W\n"
        "                inbox[(w + 1) % W] = (c, parts[w][c].copy())\n"
        "                sent[w] += parts[w][c].size\n"
        "            for dest, (c, data) in inbox.items():\n"
        "                parts[dest][c] = parts[dest][c] + data if phase == 'add' else data\n"
        "    shape = np.shape(buffers[0])\n"
        "    dtype = np.result_type(buffers[0], np.float32)\n"
        "    return [(np.concatenate(p) / W).reshape(shape).astype(dtype) for p in parts], sent\n",
    ],
}
