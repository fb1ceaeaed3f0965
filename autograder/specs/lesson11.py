"""Lesson 11 - GPU with CuPy: exercise specs.

Three kinds of exercise (see ``autograder.device``):

* ``devices=("cpu",)``: ``fit_transfer_model`` is plain NumPy.
* ``devices=("cpu", "cuda")``: ``to_device``, ``masked_softmax``, ``scatter_add_rows`` and
  ``device_mlm_step`` take their array module from their inputs (or as an argument).
  Everywhere they are graded with NumPy standing in for CuPy, and on the CPU every case runs
  a second time on ``autograder.fake_gpu``'s device arrays, which refuse host arrays as
  CuPy does (``grader.with_stand_in_gpu_cases``): hard-coded NumPy fails there. With
  ``--device cuda`` the drivers move the case's arrays to the GPU (``device.to_device``) and
  bring the results back (``device.to_numpy``), and the results are compared with the NumPy
  reference's.
* ``devices=("cuda",)``: ``time_gpu`` (CUDA events), ``gelu_kernel`` (an
  ``ElementwiseKernel``) and ``softmax_rows_kernel`` (a ``RawKernel``) need CuPy and a GPU.
  Without one they are reported "skipped (no CUDA GPU)" and never run. Their drivers import
  CuPy themselves (they also run in the grader's own process, to match a known mistake),
  and their expected values are computed with NumPy (``expected=``), not by running the
  reference.
"""

import numpy as np

from solutions import bert, gpu, optimizers

from .. import device
from ..compare import Tolerance
from ..spec import Case, Exercise, Lesson, Mistake

PRELUDE = ("import math\n\nimport numpy as np\n\n"
           "from solutions.bert import mlm_loss_and_grads\n"
           "from solutions.gpu import get_array_module\n")

FLOAT32 = Tolerance(rtol=2e-5, atol=1e-7)       # one float32 kernel against float64 NumPy
# float32 cases, and another library (CuPy) or another order of summation (GPU atomics)
AGNOSTIC = Tolerance(rtol=1e-5, atol=1e-6)


def _on_device(case):
    """The case's arguments, in order, moved to the device being graded."""
    return device.to_device(list(case.args.values()))


def _same_module(result, inputs):
    xp = device.array_module()
    return isinstance(result, xp.ndarray) and all(isinstance(a, xp.ndarray) for a in inputs
                                                  if isinstance(a, (np.ndarray, xp.ndarray)))


# --------------------------------------------------------------------------- to_device


def _arrays(tree):
    if isinstance(tree, dict):
        return [a for value in tree.values() for a in _arrays(value)]
    if isinstance(tree, (list, tuple)):
        return [a for value in tree for a in _arrays(value)]
    return [tree] if hasattr(tree, "shape") and hasattr(tree, "dtype") else []


def _host_copy(tree):
    """The same structure with every array copied (on the CPU, to_numpy returns the arrays)."""
    if isinstance(tree, dict):
        return {key: _host_copy(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_host_copy(value) for value in tree)
    return np.array(tree, copy=True) if isinstance(tree, np.ndarray) else tree


def _skeleton(tree):
    """The containers of ``tree`` and its values other than arrays, as text: what the
    comparison of the arrays does not see (a tuple turned into a list, 3 into array(3))."""
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{key!r}: {_skeleton(value)}" for key, value in tree.items()) + "}"
    if isinstance(tree, (list, tuple)):
        inside = ", ".join(_skeleton(value) for value in tree)
        if isinstance(tree, list):
            return f"[{inside}]"
        return f"({inside},)" if len(tree) == 1 else f"({inside})"
    return "array" if _arrays(tree) else repr(tree)


def _run_to_device(to_device, case):
    xp = device.array_module()
    tree = case.args["tree"]
    own = [id(a) for a in _arrays(tree)]
    before = [a.copy() for a in _arrays(tree)]
    dtype = case.data.get("dtype")
    moved = to_device(tree, xp, None if dtype is None else np.dtype(dtype))
    result = _host_copy(device.to_numpy(moved))       # kept before the writes below
    kept = [id(a) for a in _arrays(tree)] == own
    for array in _arrays(moved):           # write into every array of the result ...
        array[...] = 0
    after = _arrays(tree)                  # ... the input must not change
    return {"result": result,
            "containers, and values that are not arrays": _skeleton(moved),
            "every array is of module xp": all(isinstance(a, xp.ndarray) for a in _arrays(moved)),
            "the input's dicts and lists still hold the input's arrays": kept,
            "writing into the result leaves the input unchanged":
                all(np.array_equal(a, b) for a, b in zip(before, after))}


def _to_device_cases(rng):
    ids = rng.integers(0, 50, size=(2, 5))
    return [
        Case("one float64 array, dtype float32", {"tree": rng.normal(size=(3, 4))},
             data={"dtype": "float32"}),
        Case("a batch: int ids and mask, float weights, dtype float32",
             {"tree": {"input_ids": ids, "attention_mask": np.ones_like(ids),
                       "weights": rng.random((2, 5))}}, data={"dtype": "float32"}),
        Case("parameters, no dtype: float64 stays float64",
             {"tree": {"W": rng.normal(size=(4, 3)), "b": np.zeros(3)}}),
        Case("nested: lists and a tuple inside a dict, a string and None, dtype float32",
             {"tree": {"layers": [rng.normal(size=(2, 2)), rng.normal(size=(3,))],
                       "pair": (rng.normal(size=(2,)), np.arange(4)),
                       "mask": rng.random((2, 3)) < 0.5, "name": "encoder", "extra": None}},
             data={"dtype": "float32"}),
        Case("a list of int arrays, no dtype", {"tree": [np.arange(5), ids]}),
        Case("float16 and float32 arrays and numbers, dtype float64",
             {"tree": {"half": rng.normal(size=(2, 3)).astype(np.float16),
                       "single": rng.normal(size=(4,)).astype(np.float32), "lr": 0.1, "step": 3}},
             data={"dtype": "float64"}),
        Case("a tuple at the top: it stays a tuple, dtype float32",
             {"tree": (rng.normal(size=(3,)), np.arange(3))}, data={"dtype": "float32"}),
    ]


_TO_DEVICE_HEAD = "def to_device(tree, xp, dtype=None):\n"
_TO_DEVICE_RECURSE = (
    "    if isinstance(tree, dict):\n"
    "        return {key: to_device(value, xp, dtype) for key, value in tree.items()}\n"
    "    if isinstance(tree, (list, tuple)):\n"
    "        return type(tree)(to_device(value, xp, dtype) for value in tree)\n")

to_device = Exercise(
    id="11.to_device", symbol="to_device", points=2, reference=gpu.to_device,
    title="copy a batch or a model to the GPU: floats cast, ids kept, always a copy",
    cases=_to_device_cases, run=_run_to_device, devices=("cpu", "cuda"), stand_in_gpu=True,
    warn_on_mutation=False,
    mistakes=[
        Mistake("every array cast",
                "only floating-point arrays take `dtype`: token ids and masks must stay "
                "integers (check `tree.dtype.kind == 'f'`)",
                _TO_DEVICE_HEAD + _TO_DEVICE_RECURSE +
                "    if isinstance(tree, np.ndarray):\n"
                "        if dtype is not None:\n"
                "            tree = tree.astype(dtype)\n"
                "        return xp.array(tree)\n"
                "    return tree\n"),
        Mistake("dtype ignored",
                "cast the floating-point arrays to `dtype` when it is given (on the host, "
                "before the copy: fewer bytes cross the bus)",
                _TO_DEVICE_HEAD + _TO_DEVICE_RECURSE +
                "    if isinstance(tree, np.ndarray):\n"
                "        return xp.array(tree)\n"
                "    return tree\n"),
        Mistake("the input's containers filled in",
                "build new dicts and lists for the result: assigning into the input's puts the "
                "copies into the caller's batch, which then no longer holds its own arrays",
                _TO_DEVICE_HEAD +
                "    if isinstance(tree, dict):\n"
                "        for key in tree:\n"
                "            tree[key] = to_device(tree[key], xp, dtype)\n"
                "        return tree\n"
                "    if isinstance(tree, list):\n"
                "        for i, value in enumerate(tree):\n"
                "            tree[i] = to_device(value, xp, dtype)\n"
                "        return tree\n"
                "    if isinstance(tree, tuple):\n"
                "        return tuple(to_device(value, xp, dtype) for value in tree)\n"
                "    if isinstance(tree, np.ndarray):\n"
                "        if dtype is not None and tree.dtype.kind == 'f':\n"
                "            tree = tree.astype(dtype)\n"
                "        return xp.array(tree)\n"
                "    return tree\n"),
        Mistake("only float64 cast",
                "every floating-point array takes `dtype` (float16 and float32 too): test "
                "`tree.dtype.kind == 'f'`, not `tree.dtype == np.float64`",
                _TO_DEVICE_HEAD + _TO_DEVICE_RECURSE +
                "    if isinstance(tree, np.ndarray):\n"
                "        if dtype is not None and tree.dtype == np.float64:\n"
                "            tree = tree.astype(dtype)\n"
                "        return xp.array(tree)\n"
                "    return tree\n"),
        Mistake("xp.asarray: no copy on the CPU",
                "`xp.asarray(a)` returns `a` itself when xp is numpy and nothing is cast, so "
                "the result shares memory with the input; `xp.array(a)` always copies",
                _TO_DEVICE_HEAD + _TO_DEVICE_RECURSE +
                "    if isinstance(tree, np.ndarray):\n"
                "        if dtype is not None and tree.dtype.kind == 'f':\n"
                "            tree = tree.astype(dtype)\n"
                "        return xp.asarray(tree)\n"
                "    return tree\n"),
        Mistake("np.array, not xp.array",
                "copy with xp.array(...): np.array makes a host (NumPy) array, which is not "
                "where the model's arrays live when xp is cupy (on the CPU the two are the same, "
                "so only the stand-in GPU cases show it)",
                _TO_DEVICE_HEAD + _TO_DEVICE_RECURSE +
                "    if isinstance(tree, np.ndarray):\n"
                "        if dtype is not None and tree.dtype.kind == 'f':\n"
                "            tree = tree.astype(dtype)\n"
                "        return np.array(tree)\n"
                "    return tree\n"),
        Mistake("lists and tuples not visited",
                "arrays inside lists and tuples must be copied too: rebuild lists and tuples "
                "with `type(tree)(to_device(v, xp, dtype) for v in tree)`",
                _TO_DEVICE_HEAD +
                "    if isinstance(tree, dict):\n"
                "        return {key: to_device(value, xp, dtype) for key, value in tree.items()}\n"
                "    if isinstance(tree, np.ndarray):\n"
                "        if dtype is not None and tree.dtype.kind == 'f':\n"
                "            tree = tree.astype(dtype)\n"
                "        return xp.array(tree)\n"
                "    return tree\n"),
    ],
)

# --------------------------------------------------------------------------- masked_softmax


def _run_masked_softmax(masked_softmax, case):
    scores, mask = _on_device(case)
    weights = masked_softmax(scores, mask)
    return {"weights": device.to_numpy(weights),
            "the result is of the module of the input": _same_module(weights, [scores])}


def _masked_softmax_cases(rng):
    mask = rng.random((4, 5)) < 0.7
    mask[1] = False
    causal = np.tril(np.ones((5, 5), dtype=bool))
    padding = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)[:, None, None, :]
    return [
        Case("(4, 5) float64, a fully masked row", {"scores": rng.normal(size=(4, 5)),
                                                   "mask": mask}),
        Case("(2, 2, 4, 4) float32 with a padding mask (2, 1, 1, 4)",
             {"scores": rng.normal(size=(2, 2, 4, 4)).astype(np.float32), "mask": padding}),
        Case("huge scores (1e4)", {"scores": rng.normal(size=(3, 6)) * 1e4,
                                   "mask": rng.random((3, 6)) < 0.8}),
        Case("batch of one, nothing masked", {"scores": rng.normal(size=(1, 6)),
                                              "mask": np.ones((1, 6), dtype=bool)}),
        Case("causal mask, float32 scores up to 100",
             {"scores": (rng.normal(size=(5, 5)) * 50).astype(np.float32), "mask": causal}),
        Case("every row fully masked", {"scores": rng.normal(size=(2, 3)),
                                        "mask": np.zeros((2, 3), dtype=bool)}),
    ]


_SOFTMAX_HEAD = "def masked_softmax(scores, mask):\n    xp = get_array_module(scores)\n"

masked_softmax = Exercise(
    id="11.masked_softmax", symbol="masked_softmax", points=2, reference=gpu.masked_softmax,
    title="a masked softmax that runs on NumPy and CuPy alike",
    cases=_masked_softmax_cases, run=_run_masked_softmax, devices=("cpu", "cuda"),
    stand_in_gpu=True,
    tolerance=AGNOSTIC,
    mistakes=[
        Mistake("no max shift",
                "subtract each row's maximum (over the allowed entries) before exp: exp(1e4) "
                "overflows to inf, and inf / inf is NaN",
                _SOFTMAX_HEAD +
                "    e = xp.where(mask, xp.exp(scores), 0)\n"
                "    total = e.sum(axis=-1, keepdims=True)\n"
                "    return e / xp.where(total > 0, total, 1)\n"),
        Mistake("NaN on a fully masked row",
                "a row with no allowed entry has max -inf, and -inf - (-inf) is NaN: use 0 as "
                "its max, and divide by 1 where the total is 0, so the row comes out all 0",
                _SOFTMAX_HEAD +
                "    masked = xp.where(mask, scores, -xp.inf)\n"
                "    e = xp.exp(masked - masked.max(axis=-1, keepdims=True))\n"
                "    return e / e.sum(axis=-1, keepdims=True)\n"),
        Mistake("a big negative number instead of -inf",
                "filling masked entries with -1e9 gives a fully masked row equal weights "
                "(1/T each) instead of 0: use -inf and guard that row",
                _SOFTMAX_HEAD +
                "    masked = xp.where(mask, scores, -1e9)\n"
                "    e = xp.exp(masked - masked.max(axis=-1, keepdims=True))\n"
                "    return e / e.sum(axis=-1, keepdims=True)\n"),
        Mistake("mask applied after the softmax",
                "masking after the softmax leaves rows that no longer sum to 1: mask the "
                "scores first (-inf), then normalise",
                _SOFTMAX_HEAD +
                "    e = xp.exp(scores - scores.max(axis=-1, keepdims=True))\n"
                "    return e / e.sum(axis=-1, keepdims=True) * mask\n"),
        Mistake("the max over the masked entries too",
                "take each row's maximum over the allowed entries only (mask with -inf first): "
                "a masked score far above the others makes exp underflow to 0 for every "
                "allowed one",
                _SOFTMAX_HEAD +
                "    e = xp.where(mask, xp.exp(scores - scores.max(axis=-1, keepdims=True)), 0)\n"
                "    total = e.sum(axis=-1, keepdims=True)\n"
                "    return e / xp.where(total > 0, total, 1)\n"),
    ],
)

# --------------------------------------------------------------------------- scatter_add_rows


def _run_scatter_add_rows(scatter_add_rows, case):
    ids, values, num_rows = _on_device(case)
    table = scatter_add_rows(ids, values, int(num_rows))
    return {"table": device.to_numpy(table),
            "the result is of the module of the input": _same_module(table, [values])}


def _scatter_cases(rng):
    return [
        Case("ids (2, 4) with repeats, float64, D=3",
             {"ids": np.array([[1, 1, 3, 0], [3, 1, 0, 0]]), "values": rng.normal(size=(2, 4, 3)),
              "num_rows": 5}),
        Case("float32 values, the last rows never named",
             {"ids": rng.integers(0, 4, size=(3, 5)),
              "values": rng.normal(size=(3, 5, 2)).astype(np.float32), "num_rows": 9}),
        Case("ids (6,), every one the same", {"ids": np.full(6, 2), "values": rng.normal(size=(6, 4)),
                                              "num_rows": 3}),
        Case("a table of one row", {"ids": np.zeros((2, 2), dtype=np.int64),
                                    "values": rng.normal(size=(2, 2, 3)), "num_rows": 1}),
        Case("distinct ids", {"ids": np.array([4, 0, 2]), "values": rng.normal(size=(3, 2)),
                              "num_rows": 6}),
    ]


_SCATTER_HEAD = ("def scatter_add_rows(ids, values, num_rows):\n"
                 "    xp = get_array_module(values)\n    dim = values.shape[-1]\n")

scatter_add_rows = Exercise(
    id="11.scatter_add_rows", symbol="scatter_add_rows", points=2,
    reference=gpu.scatter_add_rows,
    title="the embedding gradient: a scatter-add that runs on NumPy and CuPy",
    cases=_scatter_cases, run=_run_scatter_add_rows, devices=("cpu", "cuda"),
    stand_in_gpu=True,
    tolerance=AGNOSTIC,
    mistakes=[
        Mistake("table[ids] += values",
                "with repeated ids, `table[ids] += values` adds only one of them (each row is "
                "read once and written once): use xp.add.at (or cupyx.scatter_add)",
                _SCATTER_HEAD +
                "    table = xp.zeros((num_rows, dim), dtype=values.dtype)\n"
                "    table[ids.reshape(-1)] += values.reshape(-1, dim)\n"
                "    return table\n"),
        Mistake("float64 table",
                "xp.zeros makes float64 by default: give it dtype=values.dtype (float32 in, "
                "float32 out)",
                _SCATTER_HEAD +
                "    table = xp.zeros((num_rows, dim))\n"
                "    xp.add.at(table, ids.reshape(-1), values.reshape(-1, dim))\n"
                "    return table\n"),
        Mistake("NumPy's np.add.at on a GPU array",
                "np.add.at does not hand a CuPy array over to CuPy: take xp from the values "
                "(get_array_module) and call xp.add.at on a table made with xp.zeros",
                "def scatter_add_rows(ids, values, num_rows):\n"
                "    dim = values.shape[-1]\n"
                "    table = np.zeros((num_rows, dim), dtype=values.dtype)\n"
                "    np.add.at(table, ids.reshape(-1), values.reshape(-1, dim))\n"
                "    return table\n"),
        Mistake("rows counted from the ids",
                "the table has num_rows rows, whatever the largest id in this batch is",
                _SCATTER_HEAD +
                "    table = xp.zeros((int(ids.max()) + 1, dim), dtype=values.dtype)\n"
                "    xp.add.at(table, ids.reshape(-1), values.reshape(-1, dim))\n"
                "    return table\n"),
    ],
)

# --------------------------------------------------------------------------- fit_transfer_model


def _transfer_cases(rng):
    sizes = np.geomspace(1e3, 1e8, 11)

    def times(latency, gb_s, noise):
        clean = latency + sizes / (gb_s * 1e9)
        return clean * (1 + noise * rng.normal(size=sizes.shape))

    return [
        Case("PCIe-like: 10 us, 25 GB/s, 3 % noise",
             {"num_bytes": sizes, "seconds": times(1e-5, 25.0, 0.03)}),
        Case("NVLink-like: 5 us, 400 GB/s, 5 % noise",
             {"num_bytes": sizes, "seconds": times(5e-6, 400.0, 0.05)}),
        Case("host memcpy: 1 us, 10 GB/s, no noise",
             {"num_bytes": sizes, "seconds": times(1e-6, 10.0, 0.0)}),
        Case("two measurements only", {"num_bytes": np.array([1e6, 5e7]),
                                       "seconds": np.array([9e-5, 2.1e-3])}),
        Case("unsorted sizes, 2 % noise",
             {"num_bytes": sizes[::-1].copy(), "seconds": times(2e-5, 12.0, 0.02)[::-1].copy()}),
    ]


fit_transfer_model = Exercise(
    id="11.fit_transfer_model", symbol="fit_transfer_model", points=2,
    reference=gpu.fit_transfer_model,
    title="latency and bandwidth of a copy, from measured times",
    cases=_transfer_cases, tolerance=Tolerance(rtol=1e-6, atol=1e-12),
    mistakes=[
        Mistake("GiB instead of GB",
                "1 GB is 1e9 bytes here (as bandwidths are quoted), not 2**30",
                "def fit_transfer_model(num_bytes, seconds):\n"
                "    slope, intercept = np.polyfit(num_bytes, seconds, 1)\n"
                "    return float(intercept), float(1.0 / slope / 2**30)\n"),
        Mistake("no latency",
                "total bytes / total seconds mixes the fixed cost of every copy into the "
                "bandwidth: fit a straight line with an intercept (the latency)",
                "def fit_transfer_model(num_bytes, seconds):\n"
                "    return 0.0, float(np.sum(num_bytes) / np.sum(seconds) / 1e9)\n"),
        Mistake("bytes per second",
                "the bandwidth is asked in GB/s: divide bytes per second by 1e9",
                "def fit_transfer_model(num_bytes, seconds):\n"
                "    slope, intercept = np.polyfit(num_bytes, seconds, 1)\n"
                "    return float(intercept), float(1.0 / slope)\n"),
        Mistake("bytes fitted against seconds",
                "fit seconds as a function of bytes (the time is what was measured, with its "
                "noise); the line of bytes against seconds is a different fit",
                "def fit_transfer_model(num_bytes, seconds):\n"
                "    bytes_per_second, offset = np.polyfit(seconds, num_bytes, 1)\n"
                "    return float(-offset / bytes_per_second), float(bytes_per_second / 1e9)\n"),
    ],
)

# --------------------------------------------------------------------------- device_mlm_step

TINY = bert.BertConfig(vocab_size=23, hidden_size=8, num_layers=2, num_heads=2,
                       intermediate_size=16, max_position_embeddings=8, dropout=0.1)
LR = 1e-3


def _run_device_mlm_step(device_mlm_step, case):
    xp = device.array_module()
    params = gpu.to_device(bert.init_bert(TINY, np.random.default_rng(case.data["seed"])), xp)
    optimizer = optimizers.AdamW(list(params.values()), lr=LR)
    losses = [device_mlm_step(params, optimizer, case.args["batch"], TINY) for _ in range(2)]
    # The key bias gets no gradient (it adds the same score to every key of a query), only
    # rounding noise, whose sign CPU and GPU need not share: it is left out.
    after = {name: device.to_numpy(value) for name, value in params.items()
             if not name.endswith(".bk")}
    return {"loss of each step": [np.float64(loss) for loss in losses],
            "parameters after two steps": after}


def _mlm_batch(rng, lengths, T=6, labelled=0.4):
    ids = rng.integers(5, TINY.vocab_size, size=(len(lengths), T))
    mask = (np.arange(T)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    chosen = (rng.random(ids.shape) < labelled) & (mask == 1)
    chosen[0, 0] = labelled > 0
    return {"input_ids": ids * mask, "attention_mask": mask,
            "labels": np.where(chosen, ids, -100)}


def _step_cases(rng):
    return [
        Case("2 sequences of 6 tokens", {"batch": _mlm_batch(rng, [6, 6])}, data={"seed": 1}),
        Case("padding in the second sequence", {"batch": _mlm_batch(rng, [6, 3])},
             data={"seed": 2}),
        Case("batch of one", {"batch": _mlm_batch(rng, [5])}, data={"seed": 3}),
        Case("no labelled position (loss 0, only weight decay moves)",
             {"batch": _mlm_batch(rng, [6, 4], labelled=0.0)}, data={"seed": 4}),
    ]


_STEP_HEAD = ("def device_mlm_step(params, optimizer, batch, config):\n"
              "    xp = get_array_module(*params.values())\n"
              "    batch = to_device(batch, xp)\n")

device_mlm_step = Exercise(
    id="11.device_mlm_step", symbol="device_mlm_step", points=2,
    reference=gpu.device_mlm_step, requires=("11.to_device",),
    title="one masked-LM training step where the parameters live",
    cases=_step_cases, run=_run_device_mlm_step, devices=("cpu", "cuda"), stand_in_gpu=True,
    tolerance=Tolerance(rtol=1e-4, atol=2e-4), warn_on_mutation=False,
    mistakes=[
        Mistake("no optimizer step",
                "after the gradients, call optimizer.step with them: the parameters must move",
                _STEP_HEAD +
                "    loss, grads, _ = mlm_loss_and_grads(params, config, batch)\n"
                "    return loss\n"),
        Mistake("dropout on",
                "the step asks for no dropout (the default training=False): dropout draws "
                "random masks, which CPU and GPU cannot share",
                _STEP_HEAD +
                "    loss, grads, _ = mlm_loss_and_grads(params, config, batch, training=True,\n"
                "                                        rng=np.random.default_rng(0))\n"
                "    optimizer.step([grads[name] for name in params])\n"
                "    return loss\n"),
        Mistake("loss after the step",
                "return the loss the gradients came from (before the step), not a second "
                "forward pass after it",
                _STEP_HEAD +
                "    loss, grads, _ = mlm_loss_and_grads(params, config, batch)\n"
                "    optimizer.step([grads[name] for name in params])\n"
                "    return mlm_loss_and_grads(params, config, batch, compute_grads=False)[0]\n"),
        Mistake("the batch left on the host",
                "move the batch where the parameters are first: batch = to_device(batch, xp), "
                "with xp the parameters' module (on a GPU the model cannot read host arrays)",
                "def device_mlm_step(params, optimizer, batch, config):\n"
                "    loss, grads, _ = mlm_loss_and_grads(params, config, batch)\n"
                "    optimizer.step([grads[name] for name in params])\n"
                "    return loss\n"),
        Mistake("gradients in sorted order",
                "the optimizer holds the parameters in the order of params (it was built on "
                "list(params.values())): pass [grads[name] for name in params]",
                _STEP_HEAD +
                "    loss, grads, _ = mlm_loss_and_grads(params, config, batch)\n"
                "    optimizer.step([grads[name] for name in sorted(grads)])\n"
                "    return loss\n"),
    ],
)

# --------------------------------------------------------------------------- time_gpu (GPU only)


def _run_time_gpu(time_gpu, case):
    import cupy

    n, repeats = case.data["n"], case.data["repeats"]
    a = cupy.ones((n, n), dtype=cupy.float32)
    calls = [0]

    def work():                         # the first call is 20 times slower (like a compile)
        calls[0] += 1
        for _ in range(20 if calls[0] == 1 else 1):
            a @ a

    got = float(time_gpu(work, repeats))
    # The truth, measured the right way, after the learner's calls.
    a @ a
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(10):
        a @ a
    end.record()
    end.synchronize()
    true_ms = cupy.cuda.get_elapsed_time(start, end) / 10
    ratio = got / true_ms
    timing = "about right" if 0.5 < ratio < 2 else ("too short" if ratio <= 0.5 else "too long")
    return {"calls of fn": calls[0], "milliseconds per call": timing}


def _expected_time_gpu(case):
    return {"calls of fn": case.data["repeats"] + 1, "milliseconds per call": "about right"}


time_gpu = Exercise(
    id="11.time_gpu", symbol="time_gpu", points=2, reference=gpu.time_gpu,
    title="time GPU work with CUDA events, warm-up excluded",
    cases=lambda rng: [Case("(4096, 4096) @ (4096, 4096), 5 repeats", data={"n": 4096, "repeats": 5}),
                       Case("(2048, 2048) @ (2048, 2048), 10 repeats",
                            data={"n": 2048, "repeats": 10})],
    run=_run_time_gpu, expected=_expected_time_gpu, devices=("cuda",), timeout=60,
    mistakes=[
        Mistake("host clock without synchronize",
                "a CuPy call only queues the work: time.perf_counter() around the calls "
                "measures the queueing. Record CUDA events and synchronize on the end event",
                "def time_gpu(fn, repeats=10):\n"
                "    import time\n"
                "    fn()\n"
                "    start = time.perf_counter()\n"
                "    for _ in range(repeats):\n"
                "        fn()\n"
                "    return (time.perf_counter() - start) * 1000 / repeats\n"),
        Mistake("warm-up timed",
                "the first call is slow (kernels compile, memory is allocated): call fn once "
                "before recording the start event, and leave that call out",
                "def time_gpu(fn, repeats=10):\n"
                "    import cupy\n"
                "    start, end = cupy.cuda.Event(), cupy.cuda.Event()\n"
                "    start.record()\n"
                "    for _ in range(repeats):\n"
                "        fn()\n"
                "    end.record()\n"
                "    end.synchronize()\n"
                "    return cupy.cuda.get_elapsed_time(start, end) / repeats\n"),
        Mistake("total, not per call",
                "get_elapsed_time gives the time of all the repeats together: divide by "
                "repeats",
                "def time_gpu(fn, repeats=10):\n"
                "    import cupy\n"
                "    fn()\n"
                "    start, end = cupy.cuda.Event(), cupy.cuda.Event()\n"
                "    start.record()\n"
                "    for _ in range(repeats):\n"
                "        fn()\n"
                "    end.record()\n"
                "    end.synchronize()\n"
                "    return cupy.cuda.get_elapsed_time(start, end)\n"),
    ],
)

# --------------------------------------------------------------------------- gelu_kernel (GPU only)


def _gelu_exact(x):
    from scipy.special import erf
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + erf(x64 / np.sqrt(2.0)))).astype(x.dtype)


def _run_gelu_kernel(gelu_kernel, case):
    import cupy

    y = gelu_kernel(cupy.asarray(case.args["x"]))
    on_gpu = isinstance(y, cupy.ndarray)
    return {"y": cupy.asnumpy(y) if on_gpu else np.asarray(y), "a CuPy array": on_gpu}


def _gelu_cases(rng):
    return [
        Case("float32 (1000,)", {"x": (rng.normal(size=1000) * 3).astype(np.float32)}),
        Case("float64 (7, 13)", {"x": rng.normal(size=(7, 13)) * 3}),
        Case("float32 (2, 3, 5), large values", {"x": (rng.normal(size=(2, 3, 5)) * 20)
                                                 .astype(np.float32)}),
        Case("float64 zeros and +-1", {"x": np.array([0.0, 1.0, -1.0, 0.0])}),
    ]


_GELU_HEAD = "def gelu_kernel(x):\n    import cupy\n"

gelu_kernel = Exercise(
    id="11.gelu_kernel", symbol="gelu_kernel", points=2, reference=gpu.gelu_kernel,
    title="GELU as one fused CUDA kernel (cupy.ElementwiseKernel)",
    cases=_gelu_cases, run=_run_gelu_kernel,
    expected=lambda case: {"y": _gelu_exact(case.args["x"]), "a CuPy array": True},
    tolerance=FLOAT32, devices=("cuda",), timeout=60,
    mistakes=[
        Mistake("tanh approximation",
                "that is GELU's tanh approximation (off by up to 1e-3); BERT's GELU is the "
                "exact one, with erf",
                _GELU_HEAD +
                "    gelu = cupy.ElementwiseKernel('T x', 'T y', 'y = (T)0.5 * x * ((T)1 + "
                "tanh((T)0.7978845608028654 * (x + (T)0.044715 * x * x * x)))', 'gelu_tanh')\n"
                "    return gelu(x)\n"),
        Mistake("missing 0.5",
                "GELU is 0.5 * x * (1 + erf(x / sqrt(2))): the factor 0.5 is missing",
                _GELU_HEAD +
                "    gelu = cupy.ElementwiseKernel('T x', 'T y', "
                "'y = x * ((T)1 + erf(x * (T)0.70710678118654752))', 'gelu_no_half')\n"
                "    return gelu(x)\n"),
        Mistake("float32 only",
                "declare the kernel generic ('T x', 'T y'): with 'float32' types a float64 "
                "input comes back as float32",
                _GELU_HEAD +
                "    gelu = cupy.ElementwiseKernel('float32 x', 'float32 y', "
                "'y = 0.5f * x * (1.0f + erff(x * 0.70710678f))', 'gelu_float32')\n"
                "    return gelu(x)\n"),
    ],
)

# --------------------------------------------------------------------------- softmax_rows_kernel

SENTINEL = 7.0          # what the memory after the rows holds; no softmax value is 7
GUARD_ROWS = 1024       # more rows than any block: a kernel without bounds check writes here


def _run_softmax_rows_kernel(softmax_rows_kernel, case):
    import cupy

    x = np.ascontiguousarray(case.args["x"], dtype=np.float32)
    n, cols = x.shape
    # x and out are the first n rows of bigger buffers, so that a thread past the last
    # row reads zeros and writes where we can see it.
    big_x = cupy.zeros((n + GUARD_ROWS, cols), dtype=cupy.float32)
    big_x[:n] = cupy.asarray(x)
    big_out = cupy.full((n + GUARD_ROWS, cols), SENTINEL, dtype=cupy.float32)
    out = big_out[:n]
    returned = softmax_rows_kernel(big_x[:n], out)
    host = cupy.asnumpy(big_out)             # waits for the kernel
    return {"softmax": host[:n], "entries written past the last row":
            int(np.count_nonzero(host[n:] != SENTINEL)), "returns out": returned is out}


def _expected_softmax_rows(case):
    x = case.args["x"].astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return {"softmax": (e / e.sum(axis=1, keepdims=True)).astype(np.float32),
            "entries written past the last row": 0, "returns out": True}


def _softmax_rows_cases(rng):
    return [
        Case("(300, 10): the last of 3 blocks is part-full", {"x": rng.normal(size=(300, 10))}),
        Case("(129, 7): one row past a full block", {"x": rng.normal(size=(129, 7))}),
        Case("(200, 50), scores up to 300", {"x": rng.normal(size=(200, 50)) * 100}),
        Case("(128, 33): exactly one block", {"x": rng.normal(size=(128, 33))}),
        Case("batch of one row", {"x": rng.normal(size=(1, 5))}),
        Case("(5, 1): one column", {"x": rng.normal(size=(5, 1))}),
    ]


def _softmax_kernel_source(body_row, guard, shift):
    """A mistake's full source: the kernel with one thing changed."""
    guard_line = "        if (row >= n_rows) return;\\n" if guard else ""
    max_lines = ("        float m = in[0];\\n"
                 "        for (int j = 1; j < n_cols; ++j) m = fmaxf(m, in[j]);\\n"
                 if shift else "        float m = 0.0f;\\n")
    return ("def softmax_rows_kernel(x, out):\n"
            "    import cupy\n"
            "    source = ('extern \"C\" __global__\\n'\n"
            "              'void softmax_rows(const float* x, float* y, int n_rows, int n_cols) {\\n'\n"
            f"              '        int row = {body_row};\\n'\n"
            f"              '{guard_line}'\n"
            "              '        const float* in = x + (long long)row * n_cols;\\n'\n"
            "              '        float* res = y + (long long)row * n_cols;\\n'\n"
            f"              '{max_lines}'\n"
            "              '        float total = 0.0f;\\n'\n"
            "              '        for (int j = 0; j < n_cols; ++j) total += expf(in[j] - m);\\n'\n"
            "              '        for (int j = 0; j < n_cols; ++j) res[j] = expf(in[j] - m) / total;\\n'\n"
            "              '}\\n')\n"
            "    kernel = cupy.RawKernel(source, 'softmax_rows')\n"
            "    n_rows, n_cols = x.shape\n")


_LAUNCH_CEIL = ("    kernel(((n_rows + 127) // 128,), (128,), (x, out, np.int32(n_rows), "
                "np.int32(n_cols)))\n    return out\n")
_LAUNCH_FLOOR = ("    kernel((max(1, n_rows // 128),), (128,), (x, out, np.int32(n_rows), "
                 "np.int32(n_cols)))\n    return out\n")
_ROW = "blockIdx.x * blockDim.x + threadIdx.x"

softmax_rows_kernel = Exercise(
    id="11.softmax_rows_kernel", symbol="softmax_rows_kernel", points=3,
    reference=gpu.softmax_rows_kernel,
    title="a row softmax as a hand-written CUDA kernel (cupy.RawKernel)",
    cases=_softmax_rows_cases, run=_run_softmax_rows_kernel, expected=_expected_softmax_rows,
    tolerance=FLOAT32, devices=("cuda",), timeout=60,
    mistakes=[
        Mistake("no bounds check",
                "the last block has threads past the last row; without `if (row >= n_rows) "
                "return;` they read and write outside the arrays",
                _softmax_kernel_source(_ROW, guard=False, shift=True) + _LAUNCH_CEIL),
        Mistake("grid rounded down",
                "n_rows // 128 blocks leave the last n_rows % 128 rows without a thread: "
                "launch ceil(n_rows / 128) blocks, (n_rows + 127) // 128",
                _softmax_kernel_source(_ROW, guard=True, shift=True) + _LAUNCH_FLOOR),
        Mistake("no max subtraction",
                "subtract the row's maximum before expf: expf(100) is already inf in float32, "
                "and inf / inf is NaN",
                _softmax_kernel_source(_ROW, guard=True, shift=False) + _LAUNCH_CEIL),
        Mistake("row from threadIdx.x only",
                "threadIdx.x counts within a block; the row is blockIdx.x * blockDim.x + "
                "threadIdx.x, or every block redoes the first 128 rows",
                _softmax_kernel_source("threadIdx.x", guard=True, shift=True) + _LAUNCH_CEIL),
    ],
)

LESSON = Lesson(
    id="11", slug="11_gpu_cupy", title="GPU with CuPy", prelude=PRELUDE,
    exercises=[to_device, masked_softmax, scatter_add_rows, fit_transfer_model, device_mlm_step,
               time_gpu, gelu_kernel, softmax_rows_kernel],
)
