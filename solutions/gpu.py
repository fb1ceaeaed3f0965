"""Lesson 11 - GPU with CuPy (reference solutions).

CuPy is NumPy on an NVIDIA GPU: ``cupy.ndarray`` has the same methods, ``cupy.exp``,
``cupy.matmul`` ... the same signatures. So the course's NumPy code runs on a GPU if it
never assumes NumPy: it takes its array module ``xp`` from its inputs
(``xp = get_array_module(x)``) or as an argument, creates arrays with ``*_like`` functions
or ``xp.zeros``, and never calls ``np.asarray`` on a device array (CuPy refuses to copy to
the host behind your back). Every function below works with ``xp = numpy`` as well; the
ones that need CUDA itself (events, hand-written kernels) import CuPy when they run.

Three things are new on a GPU, and this lesson is about them:

- **Transfers.** Host and device memory are separate; ``to_device`` copies over the bus
  (PCIe or NVLink), which costs a fixed latency plus bytes / bandwidth (``fit_transfer_model``).
- **Asynchrony.** A CuPy call queues work on the GPU and returns at once. Time GPU work with
  CUDA events, or synchronize before reading a host clock (``time_gpu``, ``seconds_per_call``).
- **Kernels.** Each NumPy-style operation is one pass over memory; a hand-written kernel
  fuses several (``gelu_kernel``: an ``ElementwiseKernel``; ``softmax_rows_kernel``: a
  ``RawKernel``).

``make_train_step`` gives one training step of the mini-BERT (lesson 07's
``mlm_loss_and_grads`` and lesson 02's ``AdamW``) on either module, for timing.
"""

import time

import numpy as np

from solutions.bert import BertConfig, init_bert, mlm_loss_and_grads
from solutions.layers import array_module
from solutions.optimizers import AdamW

try:
    import cupy
except ImportError:                  # CuPy is optional: everything falls back to NumPy
    cupy = None


# --------------------------------------------------------------------------- helpers


def get_array_module(*arrays):
    """The array module of the arguments: ``cupy`` if any of them is a CuPy array, else ``numpy``.

    Like ``cupy.get_array_module``, but it also works where CuPy is not installed.

    Args:
        *arrays: arrays (or anything else, which does not count).

    Returns:
        the module ``numpy`` or ``cupy``.
    """
    for array in arrays:
        xp = array_module(array)              # lesson 03's helper: cupy for a CuPy array
        if xp is not np:
            return xp
    return np


def cuda_available():
    """True when CuPy is installed and can reach a CUDA GPU."""
    try:
        return cupy is not None and bool(cupy.is_available())
    except Exception:                # a CuPy without a driver raises instead of answering
        return False


def default_xp():
    """``cupy`` when a CUDA GPU is there, else ``numpy``: what a notebook should use."""
    return cupy if cuda_available() else np


def to_host(tree):
    """Arrays (also inside dicts, lists and tuples) as NumPy arrays on the host.

    ``cupy.asnumpy`` copies a device array to the host (and waits for it); a NumPy
    array is returned as it is. Everything else passes through unchanged.

    Args:
        tree: an array, or a dict / list / tuple of them (nested), or any other value.

    Returns:
        the same structure with NumPy arrays.
    """
    if isinstance(tree, dict):
        return {key: to_host(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_host(value) for value in tree)
    xp = array_module(tree)                   # cupy for a device array
    return tree if xp is np else xp.asnumpy(tree)


def synchronize(xp):
    """Wait until the GPU has finished the work queued so far (nothing to wait for on NumPy)."""
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()


def seconds_per_call(fn, xp, repeats=10, warmup=1):
    """Wall-clock seconds per call of ``fn``, correct on NumPy and on CuPy.

    ``warmup`` untimed calls first (kernels compile, the memory pool fills), then a
    synchronize, the clock, ``repeats`` calls, a synchronize (so that the queued GPU work
    is counted), the clock again.

    Args:
        fn: callable without arguments.
        xp: the array module ``fn`` works with.
        repeats: int >= 1, the timed calls.
        warmup: int >= 0, the untimed calls before.

    Returns:
        float, seconds per call.
    """
    for _ in range(warmup):
        fn()
    synchronize(xp)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(xp)
    return (time.perf_counter() - start) / repeats


def transfer_seconds(num_bytes, xp, repeats=5):
    """Seconds to copy ``num_bytes`` from the host to ``xp``'s memory (a fresh array each time).

    On NumPy this is a host-to-host copy (``np.array``), the baseline a GPU copy competes with.

    Args:
        num_bytes: int, the size of the float32 array to copy.
        xp: ``numpy`` or ``cupy``.
        repeats: int, the copies timed (after one untimed copy).

    Returns:
        float, seconds per copy.
    """
    host = np.ones(max(1, num_bytes // 4), dtype=np.float32)
    return seconds_per_call(lambda: xp.array(host), xp, repeats=repeats)


def memory_pool_bytes(xp):
    """(bytes in use, bytes held) by CuPy's default memory pool; (0, 0) on NumPy.

    CuPy keeps freed device memory in a pool and hands it out again, because
    ``cudaMalloc`` and ``cudaFree`` are slow and ``cudaFree`` synchronizes the device.
    ``cupy.get_default_memory_pool().free_all_blocks()`` gives the cached blocks back.
    """
    if xp is np:
        return 0, 0
    pool = xp.get_default_memory_pool()
    return pool.used_bytes(), pool.total_bytes()


# --------------------------------------------------------------------------- exercises


def to_device(tree, xp, dtype=None):
    """Copy NumPy arrays to the array module ``xp`` (``cupy``: onto the GPU; ``numpy``: a copy).

    The arrays may sit inside dicts, lists and tuples (a batch, a model's parameters): the
    result has the same structure, in new containers. Floating-point arrays are cast to
    ``dtype`` when it is given, on the host, before the copy (float64 to float32 halves the
    bytes that cross the bus); integer and boolean arrays (token ids, masks) keep their
    dtype. Anything else (numbers, strings, None) passes through unchanged. Every array of
    the result is a new array, also when ``xp`` is numpy: writing into it never changes the
    input (``xp.asarray`` would return the input itself there).

    Args:
        tree: a NumPy array, or a dict / list / tuple of them (nested), or any other value.
        xp: the array module, ``numpy`` or ``cupy``.
        dtype: None, or the float dtype for the floating-point arrays (e.g. ``np.float32``).

    Returns:
        the same structure, each NumPy array replaced by a new array of module ``xp``.
    """
    if isinstance(tree, dict):
        return {key: to_device(value, xp, dtype) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_device(value, xp, dtype) for value in tree)
    if isinstance(tree, np.ndarray):
        if dtype is not None and tree.dtype.kind == "f":
            tree = tree.astype(dtype)           # on the host, before the copy
        return xp.array(tree)                   # always a copy, on xp's device
    return tree


def masked_softmax(scores, mask):
    """Softmax over the last axis where ``mask`` allows, 0 where it does not; NumPy or CuPy.

    Masked entries get -inf before a max-shifted softmax, so their weight is exactly 0. A
    row with no allowed entry gets all-zero weights (not NaN). The array module comes from
    ``scores`` (``xp = get_array_module(scores)``), so the same code runs on the GPU.

    Args:
        scores: float array of shape (..., T), NumPy or CuPy.
        mask: bool array of the same module, broadcastable to ``scores``; True = allowed.

    Returns:
        array of the shape, dtype and module of ``scores``: each row sums to 1 over its
        allowed entries, or is all 0.
    """
    xp = get_array_module(scores)
    masked = xp.where(mask, scores, -xp.inf)
    row_max = masked.max(axis=-1, keepdims=True)
    row_max = xp.where(xp.isfinite(row_max), row_max, 0)     # a fully masked row is all -inf
    weights = xp.exp(masked - row_max)
    total = weights.sum(axis=-1, keepdims=True)
    return weights / xp.where(total > 0, total, 1)


def scatter_add_rows(ids, values, num_rows):
    """Add each vector of ``values`` into row ``ids[...]`` of a zero table; NumPy or CuPy.

    This is the backward pass of an embedding lookup: row ``v`` of the result is the sum
    of ``values`` over every position whose id is ``v`` (repeated ids add up; rows never
    named stay 0). ``xp.add.at`` does it on both modules (CuPy also has
    ``cupyx.scatter_add``); ``table[ids] += values`` does not: a repeated id counts once.

    Args:
        ids: int array of shape (...), each in [0, num_rows), NumPy or CuPy.
        values: float array of shape (..., D), of the same module as ``ids``.
        num_rows: int, the number of rows of the table.

    Returns:
        array of shape (num_rows, D), in the dtype and module of ``values``.
    """
    xp = get_array_module(values)
    dim = values.shape[-1]
    table = xp.zeros((num_rows, dim), dtype=values.dtype)
    xp.add.at(table, ids.reshape(-1), values.reshape(-1, dim))
    return table


def fit_transfer_model(num_bytes, seconds):
    """Fit ``seconds = latency + num_bytes / bandwidth`` to measured copy times.

    A least-squares straight line through the points (num_bytes, seconds): its intercept
    is the fixed cost of one copy (the latency), its slope the seconds per byte, whose
    inverse is the bandwidth. Bandwidth is given in GB/s with 1 GB = 1e9 bytes.

    Args:
        num_bytes: float array of shape (n,), n >= 2, the sizes copied (not all equal).
        seconds: float array of shape (n,), the measured time of each copy.

    Returns:
        (latency_s, bandwidth_gb_s): two floats.
    """
    seconds_per_byte, latency = np.polyfit(num_bytes, seconds, deg=1)
    return float(latency), float(1.0 / seconds_per_byte / 1e9)


def device_mlm_step(params, optimizer, batch, config):
    """One masked-LM training step on the device that holds ``params`` (NumPy or CuPy).

    The batch comes from lesson 08's collator as NumPy arrays. Copy it to the
    parameters' array module with ``to_device`` (ids and masks keep their integer dtype),
    compute ``loss, grads, stats = mlm_loss_and_grads(params, config, batch)`` (lesson 07;
    no dropout), then call ``optimizer.step`` with the gradients in the order of
    ``params``: the optimizer (lesson 02's ``AdamW``) was built on ``list(params.values())``.

    Args:
        params: dict name -> float array (NumPy or CuPy), updated in place by the optimizer.
        optimizer: an ``AdamW`` built on ``list(params.values())``.
        batch: dict of NumPy int arrays "input_ids", "attention_mask", "labels" (B, T).
        config: the model's ``BertConfig``.

    Returns:
        float, the loss before the step.
    """
    xp = get_array_module(*params.values())
    loss, grads, _ = mlm_loss_and_grads(params, config, to_device(batch, xp))
    optimizer.step([grads[name] for name in params])
    return loss


def time_gpu(fn, repeats=10):
    """Milliseconds per call of ``fn``'s GPU work, measured with CUDA events.

    A CuPy call returns as soon as its work is queued, so a host clock read right after
    it measures almost nothing. Call ``fn`` once first and leave that call out (the
    warm-up: kernels compile, the memory pool fills). Then record a start event
    (``cupy.cuda.Event()``, ``.record()``), call ``fn`` ``repeats`` times, record an end
    event, wait for it (``end.synchronize()``), and divide
    ``cupy.cuda.get_elapsed_time(start, end)`` (milliseconds) by ``repeats``.

    Args:
        fn: callable without arguments that queues GPU work.
        repeats: int >= 1, the number of timed calls.

    Returns:
        float, milliseconds per call (``fn`` is called ``repeats + 1`` times in all).
    """
    import cupy

    fn()                                        # warm-up, not timed
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    end.synchronize()                           # wait until the GPU has reached `end`
    return cupy.cuda.get_elapsed_time(start, end) / repeats


def gelu_kernel(x):
    """The exact GELU, ``0.5 * x * (1 + erf(x / sqrt(2)))``, as one fused CUDA kernel.

    Written with NumPy-style calls, GELU is five passes over memory (a divide, erf, an add,
    two multiplies), each reading and writing a whole array. A ``cupy.ElementwiseKernel``
    does it in one: each GPU thread reads one ``x`` and writes one ``y``. Declare the
    kernel generic in its float type (``"T x"``, ``"T y"``) so that float32 stays float32
    and float64 stays float64; CUDA's ``erf`` has both precisions.

    Args:
        x: float32 or float64 CuPy array, any shape.

    Returns:
        CuPy array of the shape and dtype of ``x``.
    """
    import cupy

    gelu = cupy.ElementwiseKernel(
        "T x", "T y",
        "y = (T)0.5 * x * ((T)1 + erf(x * (T)0.70710678118654752))",   # 1 / sqrt(2)
        "gelu_exact")
    return gelu(x)


def softmax_rows_kernel(x, out):
    """Softmax of every row of a float32 matrix with a hand-written CUDA kernel (``cupy.RawKernel``).

    One thread per row, in blocks of 128 threads: thread ``row = blockIdx.x * blockDim.x
    + threadIdx.x`` finds its row's maximum, sums ``exp(x - max)``, and writes
    ``exp(x - max) / sum``. The grid has ``ceil(n_rows / 128)`` blocks, so when n_rows is
    not a multiple of 128 the last block has threads past the last row: they must return
    at once (``if (row >= n_rows) return;``), or they read and write outside the arrays.

    Args:
        x: float32 CuPy array of shape (n_rows, n_cols), C-contiguous, n_cols >= 1.
        out: float32 CuPy array of the same shape, C-contiguous: the result is written here.

    Returns:
        ``out``.
    """
    import cupy

    source = r"""
    extern "C" __global__
    void softmax_rows(const float* x, float* y, int n_rows, int n_cols) {
        int row = blockIdx.x * blockDim.x + threadIdx.x;
        if (row >= n_rows) return;              // the last block may run past the end
        const float* in = x + (long long)row * n_cols;
        float* res = y + (long long)row * n_cols;
        float row_max = in[0];
        for (int j = 1; j < n_cols; ++j) row_max = fmaxf(row_max, in[j]);
        float total = 0.0f;
        for (int j = 0; j < n_cols; ++j) total += expf(in[j] - row_max);
        for (int j = 0; j < n_cols; ++j) res[j] = expf(in[j] - row_max) / total;
    }
    """
    kernel = cupy.RawKernel(source, "softmax_rows")
    n_rows, n_cols = x.shape
    threads = 128
    blocks = (n_rows + threads - 1) // threads          # ceil: every row gets a thread
    kernel((blocks,), (threads,), (x, out, np.int32(n_rows), np.int32(n_cols)))
    return out


# --------------------------------------------------------------------------- benchmarks

# The mini-BERT of lesson 07 and a BERT-base-sized model (Devlin et al., 2019).
MINI_BERT = BertConfig(vocab_size=1000, hidden_size=128, num_layers=4, num_heads=4,
                       intermediate_size=512, max_position_embeddings=128)
BERT_BASE = BertConfig(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
                       intermediate_size=3072, max_position_embeddings=512)


def random_mlm_batch(config, batch_size, seq_len, rng, mlm_probability=0.15):
    """A random masked-LM batch of NumPy arrays (no padding), for timing.

    Args:
        config: a ``BertConfig`` (``vocab_size``).
        batch_size, seq_len: ints B and T.
        rng: a ``np.random.Generator``.
        mlm_probability: the share of positions that get a label (at least one does).

    Returns:
        dict of int64 arrays (B, T): "input_ids", "attention_mask" (all 1), "labels"
        (-100 except at the labelled positions).
    """
    input_ids = rng.integers(0, config.vocab_size, size=(batch_size, seq_len))
    labelled = rng.random((batch_size, seq_len)) < mlm_probability
    labelled[0, 0] = True
    return {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids),
            "labels": np.where(labelled, input_ids, -100)}


def make_train_step(config, batch_size, seq_len, xp=np, seed=0, lr=1e-4):
    """One training step of the mini-BERT on ``xp`` (NumPy or CuPy), ready to be timed.

    Builds float32 parameters with ``init_bert(config, np.random.default_rng(seed))``,
    copies them to ``xp``, makes lesson 02's ``AdamW`` on them, and a fixed random MLM
    batch of ``batch_size`` x ``seq_len`` tokens (``random_mlm_batch``) on ``xp``. Every
    call of the returned ``step()`` runs ``mlm_loss_and_grads`` (lesson 07; forward and
    backward, with dropout, drawn from ``xp.random.default_rng(seed)``) and one AdamW
    step, and returns the loss as a float. On CuPy part of the work may still be queued
    when ``step()`` returns: synchronize before reading a clock (``seconds_per_call``
    does). Tokens per second = ``batch_size * seq_len / seconds_per_call(step, xp)``.

    Args:
        config: a ``BertConfig`` (e.g. ``MINI_BERT`` or ``BERT_BASE``).
        batch_size, seq_len: ints B and T (T <= config.max_position_embeddings).
        xp: the array module, ``numpy`` or ``cupy``.
        seed: int, for the weights, the batch and dropout.
        lr: float, AdamW's learning rate.

    Returns:
        step: a callable without arguments -> float loss.
    """
    rng = np.random.default_rng(seed)
    params = to_device(init_bert(config, rng), xp, dtype=np.float32)
    batch = to_device(random_mlm_batch(config, batch_size, seq_len, rng), xp)
    optimizer = AdamW(list(params.values()), lr=lr)
    dropout_rng = xp.random.default_rng(seed)

    def step():
        loss, grads, _ = mlm_loss_and_grads(params, config, batch, training=True,
                                            rng=dropout_rng)
        optimizer.step([grads[name] for name in params])
        return loss

    step.params, step.optimizer, step.batch = params, optimizer, batch   # for inspection
    return step


def tokens_per_second(config, batch_size, seq_len, xp=np, repeats=3, seed=0):
    """Training throughput: tokens per second of ``make_train_step``'s step on ``xp``.

    Returns:
        float, ``batch_size * seq_len / seconds_per_call(step, xp, repeats)``.
    """
    step = make_train_step(config, batch_size, seq_len, xp, seed)
    return batch_size * seq_len / seconds_per_call(step, xp, repeats=repeats)


def matmul_seconds(n, xp, dtype=np.float32, repeats=5):
    """Seconds for one (n, n) @ (n, n) product on ``xp`` (2 n^3 floating-point operations)."""
    a = xp.ones((n, n), dtype=dtype)
    b = xp.ones((n, n), dtype=dtype)
    return seconds_per_call(lambda: a @ b, xp, repeats=repeats)


def matmul_gflops(n, seconds):
    """Billions of floating-point operations per second of an (n, n) @ (n, n) product."""
    return 2.0 * n ** 3 / seconds / 1e9


def speedup_table(rows):
    """A Markdown table from ``[(what, numpy_value, cupy_value or None), ...]`` (tokens/s)."""
    lines = ["| what | NumPy (CPU) | CuPy (GPU) | speed-up |", "|---|---:|---:|---:|"]
    for what, cpu, gpu in rows:
        if gpu is None:
            lines.append(f"| {what} | {cpu:,.0f} | needs a CUDA GPU | - |")
        else:
            lines.append(f"| {what} | {cpu:,.0f} | {gpu:,.0f} | {gpu / cpu:,.1f}x |")
    return "\n".join(lines)

