"""Correct solutions for lesson 11, written differently from the reference.

The GPU-only ones (time_gpu, gelu_kernel, softmax_rows_kernel) are graded only where
there is a CUDA GPU; elsewhere they are skipped.
"""

ALTERNATIVES = {
    "11.to_device": [
        # one helper for the leaves, a dispatch on the container's type
        "def to_device(tree, xp, dtype=None):\n"
        "    if isinstance(tree, np.ndarray):\n"
        "        cast = dtype if dtype is not None and np.issubdtype(tree.dtype, np.floating) "
        "else tree.dtype\n"
        "        return xp.asarray(tree.astype(cast, copy=True))\n"
        "    if isinstance(tree, dict):\n"
        "        return dict((k, to_device(v, xp, dtype)) for k, v in tree.items())\n"
        "    if isinstance(tree, list):\n"
        "        return [to_device(v, xp, dtype) for v in tree]\n"
        "    if isinstance(tree, tuple):\n"
        "        return tuple(to_device(v, xp, dtype) for v in tree)\n"
        "    return tree\n",
    ],
    "11.masked_softmax": [
        # log-sum-exp over the allowed entries, then exp; 0 where nothing is allowed
        "def masked_softmax(scores, mask):\n"
        "    xp = get_array_module(scores)\n"
        "    mask = xp.broadcast_to(mask, scores.shape)\n"
        "    any_allowed = mask.any(axis=-1, keepdims=True)\n"
        "    safe = xp.where(mask, scores, scores.min(axis=-1, keepdims=True))\n"
        "    top = safe.max(axis=-1, keepdims=True)\n"
        "    e = xp.where(mask, xp.exp(safe - top), 0)\n"
        "    lse = xp.log(xp.where(any_allowed, e.sum(axis=-1, keepdims=True), 1)) + top\n"
        "    return xp.where(mask, xp.exp(safe - lse), 0).astype(scores.dtype)\n",
    ],
    "11.scatter_add_rows": [
        # a one-hot matrix product: (num_rows, M) @ (M, D)
        "def scatter_add_rows(ids, values, num_rows):\n"
        "    xp = get_array_module(values)\n"
        "    flat_ids = ids.reshape(-1)\n"
        "    one_hot = (xp.arange(num_rows)[:, None] == flat_ids[None, :]).astype(values.dtype)\n"
        "    return one_hot @ values.reshape(-1, values.shape[-1])\n",
        # a loop over the rows that occur (fine for small vocabularies)
        "def scatter_add_rows(ids, values, num_rows):\n"
        "    xp = get_array_module(values)\n"
        "    flat_ids, rows = ids.reshape(-1), values.reshape(-1, values.shape[-1])\n"
        "    table = xp.zeros_like(rows, shape=(num_rows, rows.shape[1]))\n"
        "    for v in range(num_rows):\n"
        "        table[v] = rows[flat_ids == v].sum(axis=0)\n"
        "    return table\n",
    ],
    "11.fit_transfer_model": [
        # the least-squares line by lstsq on [1, bytes]
        "def fit_transfer_model(num_bytes, seconds):\n"
        "    design = np.stack([np.ones_like(num_bytes), num_bytes], axis=1)\n"
        "    (latency, per_byte), *_ = np.linalg.lstsq(design, seconds, rcond=None)\n"
        "    return float(latency), float(1e-9 / per_byte)\n",
        # the closed form: slope = cov(x, y) / var(x)
        "def fit_transfer_model(num_bytes, seconds):\n"
        "    x = np.asarray(num_bytes, dtype=float)\n"
        "    y = np.asarray(seconds, dtype=float)\n"
        "    slope = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)\n"
        "    return float(y.mean() - slope * x.mean()), float(1.0 / slope / 1e9)\n",
    ],
    "11.device_mlm_step": [
        # the batch moved by hand, the gradients zipped with the parameter names
        "def device_mlm_step(params, optimizer, batch, config):\n"
        "    xp = get_array_module(*params.values())\n"
        "    on_device = {key: xp.asarray(value) for key, value in batch.items()}\n"
        "    loss, grads, stats = mlm_loss_and_grads(params, config, on_device, training=False)\n"
        "    names = list(params)\n"
        "    optimizer.step([grads[n] for n in names])\n"
        "    return float(stats['loss'])\n",
    ],
    "11.time_gpu": [
        # a host clock, correct because the device is synchronized on both sides
        "def time_gpu(fn, repeats=10):\n"
        "    import time\n"
        "    import cupy\n"
        "    fn()\n"
        "    cupy.cuda.Device().synchronize()\n"
        "    start = time.perf_counter()\n"
        "    for _ in range(repeats):\n"
        "        fn()\n"
        "    cupy.cuda.Device().synchronize()\n"
        "    return (time.perf_counter() - start) * 1000.0 / repeats\n",
    ],
    "11.gelu_kernel": [
        # x * Phi(x) with CUDA's normal CDF, in double and cast back
        "def gelu_kernel(x):\n"
        "    import cupy\n"
        "    kernel = cupy.ElementwiseKernel('T x', 'T y',\n"
        "                                    'y = (T)((double)x * normcdf((double)x))', 'gelu_cdf')\n"
        "    return kernel(x)\n",
    ],
    "11.softmax_rows_kernel": [
        # 256 threads per block, and the sum of exp computed in one pass with a running max
        "def softmax_rows_kernel(x, out):\n"
        "    import cupy\n"
        "    code = r'''\n"
        "    extern \"C\" __global__ void softmax_online(const float* x, float* y, int rows,\n"
        "                                               int cols) {\n"
        "        int r = blockDim.x * blockIdx.x + threadIdx.x;\n"
        "        if (r < rows) {\n"
        "            float m = -3.0e38f, s = 0.0f;\n"
        "            for (int j = 0; j < cols; ++j) {\n"
        "                float v = x[(size_t)r * cols + j];\n"
        "                float m2 = fmaxf(m, v);\n"
        "                s = s * expf(m - m2) + expf(v - m2);\n"
        "                m = m2;\n"
        "            }\n"
        "            for (int j = 0; j < cols; ++j)\n"
        "                y[(size_t)r * cols + j] = expf(x[(size_t)r * cols + j] - m) / s;\n"
        "        }\n"
        "    }\n"
        "    '''\n"
        "    rows, cols = x.shape\n"
        "    kernel = cupy.RawKernel(code, 'softmax_online')\n"
        "    kernel((-(-rows // 256),), (256,), (x, out, np.int32(rows), np.int32(cols)))\n"
        "    return out\n",
    ],
}
