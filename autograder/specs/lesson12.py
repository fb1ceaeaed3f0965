"""Lesson 12 - PyTorch: exercise specs.

The references live in ``solutions/torch_bert.py``, which imports torch. So that the
rest of the course grades (and ``python -m autograder list`` starts) without torch and
without paying its import, the references are looked up only when a lesson 12
exercise is graded (``_TorchExercise``).

Every exercise that takes tensors runs on the CPU everywhere and also on a GPU with
``python -m autograder grade 12 --device cuda``: the drivers build their tensors and
models on ``device.torch_device()`` and bring every result back as NumPy. The expected
values always come from the reference on the CPU, in the grader's process; on a GPU
float32 results may differ in the last bits (another summation order), hence the
FLOAT32 tolerance wherever float32 is computed.

Threads: PyTorch's CPU thread pool (OpenMP) does not survive ``fork``: a forked child
that runs a parallel operation after its parent did can hang. Every driver therefore
runs with one thread (``_one_thread``), in the child and in the grader alike, and
gives the previous setting back when it is done.
"""

import contextlib
import math
import tempfile

import numpy as np

from solutions import bert
from solutions.objectives import MLMCollator

from .. import device
from ..compare import FLOAT32
from ..spec import Case, Exercise, Lesson, Mistake, copy_arrays, unchanged
from .lesson07 import perturbed_params

PRELUDE = ("import math\n\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
           "from torch import nn\n\nfrom solutions.torch_bert import torch_names\n")


class _TorchExercise(Exercise):
    """An Exercise whose reference is the function of that name in solutions.torch_bert,
    imported when first needed."""

    @property
    def reference(self):
        from solutions import torch_bert
        return getattr(torch_bert, self._reference_name)

    @reference.setter
    def reference(self, name):
        self._reference_name = name

    def make_cases(self):
        # The grader calls this before it forks the child that runs the learner's code:
        # importing torch here, once, spares every forked child its two-second import.
        import torch  # noqa: F401
        return super().make_cases()


def _plain(value):
    """0-d arrays (also inside lists, tuples and dicts) as Python numbers.

    A case that crosses to a fresh interpreter (``--device cuda`` grades in one) comes
    back with its Python numbers turned into 0-d arrays; sizes, seeds and settings must
    be plain numbers again before torch sees them.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _one_thread():
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield torch
    finally:
        torch.set_num_threads(previous)


def _tiny_config(**changes):
    fields = dict(vocab_size=23, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=16,
                  max_position_embeddings=12, num_labels=3, dropout=0.1)
    fields.update(changes)
    return fields


def _bert_batch(rng, V, B, T, lengths=None, segments=True, mask_rate=0.3):
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    attention_mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    input_ids = np.where(attention_mask == 1, rng.integers(1, V, size=(B, T)), 0)
    token_type_ids = ((np.arange(T)[None, :] >= T // 2) & (attention_mask == 1)).astype(np.int64) \
        if segments else np.zeros((B, T), dtype=np.int64)
    labels = np.where((rng.random((B, T)) < mask_rate) & (attention_mask == 1), input_ids, -100)
    labels[0, 1] = input_ids[0, 1]                      # at least one position to predict
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": attention_mask, "labels": labels}


def _model(torch, config, seed=0):
    """A TorchBert with seeded random weights, on the grading device."""
    from solutions.torch_bert import TorchBert
    torch.manual_seed(seed)
    return TorchBert(bert.BertConfig(**_plain(config))).to(device.torch_device())


# --------------------------------------------------------------------------- batch_to_tensors


def run_batch_to_tensors(fn, case):
    with _one_thread() as torch:
        where = device.torch_device()
        result = fn(case.args["batch"], where)
        tensors = list(result.values()) if isinstance(result, dict) else []
        return {"values": device.to_numpy(result),
                "dtypes": {name: str(getattr(t, "dtype", type(t).__name__))
                           for name, t in (result.items() if isinstance(result, dict) else ())},
                "every value is a torch.Tensor": all(isinstance(t, torch.Tensor) for t in tensors),
                "every value on the requested device": all(
                    getattr(getattr(t, "device", None), "type", None) == where for t in tensors)}


def _tensor_cases(rng):
    mlm = _bert_batch(rng, 30, 3, 6, lengths=[6, 4, 5])
    return [
        Case("an MLM batch (int64 ids, mask, labels)", {"batch": mlm}),
        Case("float64 features and int32 ids", {"batch": {
            "features": rng.normal(size=(4, 3)), "ids": rng.integers(0, 9, size=(4,)).astype(np.int32)}}),
        Case("float32 values and a bool mask", {"batch": {
            "values": rng.normal(size=(2, 5)).astype(np.float32), "mask": rng.random((2, 5)) < 0.5}}),
        Case("a 0-d float64 scale and uint8 labels", {"batch": {
            "scale": np.array(2.5), "labels": rng.integers(0, 5, size=(3, 2)).astype(np.uint8)}}),
        Case("a non-contiguous slice", {"batch": {"every_other": rng.normal(size=(4, 6))[:, ::2]}}),
    ]


batch_to_tensors = _TorchExercise(
    id="12.batch_to_tensors", symbol="batch_to_tensors", points=1,
    title="NumPy batches as tensors on a device: float32 values, int64 ids, bool masks",
    reference="batch_to_tensors", cases=_tensor_cases, run=run_batch_to_tensors,
    devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("float64 kept",
                "torch.tensor keeps NumPy's dtype, and NumPy's floats are float64: convert floating "
                "arrays to float32 (.float()), the dtype of the model's parameters, and integer "
                "arrays to int64 (.long())",
                "def batch_to_tensors(batch, device='cpu'):\n"
                "    return {name: torch.tensor(array, device=device) for name, array in batch.items()}\n"),
        Mistake("torch.Tensor makes floats",
                "torch.Tensor(array) always makes float32, even from token ids: ids and labels must "
                "stay integers (int64), masks bool",
                "def batch_to_tensors(batch, device='cpu'):\n"
                "    return {name: torch.Tensor(np.asarray(array)).to(device)\n"
                "            for name, array in batch.items()}\n"),
        Mistake("bool masks made int64",
                "keep bool arrays bool (is_floating_point() is False for them, but they are not ids)",
                "def batch_to_tensors(batch, device='cpu'):\n"
                "    out = {}\n"
                "    for name, array in batch.items():\n"
                "        t = torch.from_numpy(np.ascontiguousarray(array))\n"
                "        out[name] = (t.float() if t.is_floating_point() else t.long()).to(device)\n"
                "    return out\n"),
        Mistake("integers not widened",
                "convert every integer array to int64 (torch.long): int32 or uint8 ids break "
                "F.cross_entropy's targets and index differently",
                "def batch_to_tensors(batch, device='cpu'):\n"
                "    out = {}\n"
                "    for name, array in batch.items():\n"
                "        t = torch.from_numpy(np.ascontiguousarray(array))\n"
                "        out[name] = (t.float() if t.is_floating_point() else t).to(device)\n"
                "    return out\n"),
    ],
)

# --------------------------------------------------------------------------- torch_grad_of


def _function(torch, case):
    import torch.nn.functional as F
    name = case.data["function"]
    if name == "linear":
        return lambda x, W, b: x @ W + b
    if name == "gelu":
        return F.gelu
    if name == "layernorm":
        return lambda x, gamma, beta: F.layer_norm(x, x.shape[-1:], gamma, beta, eps=1e-5)
    if name == "attention":
        return lambda q, k, v: torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]),
                                             dim=-1) @ v
    if name == "cross_entropy":
        labels = case.data["labels"]
        return lambda logits: F.cross_entropy(logits, torch.as_tensor(labels, device=logits.device))
    if name == "tanh_product":
        return lambda x, y: torch.tanh(x) * y
    raise ValueError(name)


def run_grad_of(fn, case):
    with _one_thread() as torch:
        result = fn(_function(torch, case), case.args["inputs"], case.args["dout"],
                    device.torch_device())
        if isinstance(result, (list, tuple)) and any(isinstance(g, torch.Tensor) for g in result):
            raise TypeError("return NumPy arrays on the host (t.grad.cpu().numpy()), not "
                            "tensors: the gradients are compared with NumPy code")
        return device.to_numpy(result)


def _grad_cases(rng):
    def case(name, function, shapes, out_shape, dtype=np.float64, **data):
        inputs = [rng.normal(size=s).astype(dtype) for s in shapes]
        return Case(name, {"inputs": inputs, "dout": rng.normal(size=out_shape)},
                    data={"function": function, **data})
    return [
        case("linear x @ W + b: (4, 3) @ (3, 5)", "linear", [(4, 3), (3, 5), (5,)], (4, 5)),
        case("GELU on (2, 6)", "gelu", [(2, 6)], (2, 6)),
        case("LayerNorm over D=5 with gamma and beta", "layernorm", [(3, 5), (5,), (5,)], (3, 5)),
        case("attention softmax(q k^T / sqrt(d)) v", "attention", [(2, 4, 3), (2, 5, 3), (2, 5, 2)],
             (2, 4, 2)),
        case("cross-entropy (a scalar output)", "cross_entropy", [(6, 4)], (),
             labels=rng.integers(0, 4, size=6)),
        case("tanh(x) * y", "tanh_product", [(3, 3), (3, 3)], (3, 3)),
        case("float32 inputs: the leaves are float64 all the same", "linear",
             [(3, 2), (2, 4), (4,)], (3, 4), dtype=np.float32),
    ]


_GRAD_TEMPLATE = """def torch_grad_of(fn, inputs, dout, device="cpu"):
    tensors = [torch.tensor(x, dtype={dtype}, device=device, requires_grad=True) for x in inputs]
    {body}
    return [t.grad.cpu().numpy() for t in tensors]
"""
_GRAD_BODY = ("out = fn(*tensors)\n"
              "    out.backward(torch.as_tensor(dout, dtype=out.dtype, device=device))")


def _grad_mistake(dtype="torch.float64", body=_GRAD_BODY):
    return _GRAD_TEMPLATE.format(dtype=dtype, body=body)


torch_grad_of = _TorchExercise(
    id="12.torch_grad_of", symbol="torch_grad_of", points=2,
    title="gradients from autograd, given the upstream gradient dout",
    reference="torch_grad_of", cases=_grad_cases, run=run_grad_of,
    devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("dout ignored",
                "out.sum().backward() is the gradient for dout = 1 everywhere: pass dout, "
                "out.backward(dout), as a hand-written backward(dout, cache) receives it",
                _grad_mistake(body="out = fn(*tensors)\n    out.sum().backward()")),
        Mistake("float32",
                "compute in float64 (dtype=torch.float64): gradient checks compare to 1e-7, far "
                "below float32's rounding",
                _grad_mistake(dtype="torch.float32")),
        Mistake("gradients accumulated over several backward passes",
                "call backward once: .grad adds up over backward calls, so a backward pass per "
                "input gives the second input twice its gradient, the third three times...",
                _grad_mistake(body="for t in tensors:\n"
                                   "        out = fn(*tensors)\n"
                                   "        out.backward(torch.as_tensor(dout, dtype=out.dtype, "
                                   "device=device))")),
        Mistake("tensors returned",
                "return NumPy arrays on the host (t.grad.cpu().numpy()), not tensors",
                _grad_mistake().replace("[t.grad.cpu().numpy() for t in tensors]",
                                        "[t.grad for t in tensors]")),
        Mistake("mean instead of sum",
                "out.backward(dout) is the gradient of sum(out * dout); a .mean() divides every "
                "gradient by the number of entries",
                _grad_mistake(body="out = fn(*tensors)\n"
                                   "    (out * torch.as_tensor(dout, device=device)).mean().backward()")),
    ],
)

# --------------------------------------------------------------------------- load_numpy_weights


def run_load_weights(fn, case):
    with _one_thread() as torch:
        from solutions.torch_bert import batch_to_tensors as to_tensors
        model = _model(torch, case.data["config"], seed=1)
        params = case.args["params"]
        before = copy_arrays(params)
        fn(model, params)
        model.eval()
        batch = to_tensors(case.data["batch"], device.torch_device())
        with torch.no_grad():
            hidden = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
            out = {"MLM logits": model.mlm_logits(hidden),
                   "classifier logits": model.classifier_logits(hidden)}
        out["parameter dtypes"] = sorted({str(p.dtype) for p in model.parameters()})
        out["MLM decoder tied to the word embeddings"] = \
            model.mlm.decoder.weight is model.embeddings.word.weight
        with torch.no_grad():                       # training goes on after the load
            for p in model.parameters():
                p.add_(1.0)
        out["the NumPy arrays left as they were once the model trains"] = unchanged(params, before)
        return device.to_numpy(out)


def _load_cases(rng):
    def case(name, dtype=np.float32, **config):
        config = _tiny_config(**config)
        return Case(name, {"params": perturbed_params(rng, config, dtype)},
                    data={"config": config,
                          "batch": _bert_batch(rng, config["vocab_size"], 3, 7, [7, 4, 6])})
    return [
        case("post-LN, 2 layers, float32 weights"),
        case("float64 weights (the model stays float32)", dtype=np.float64),
        case("pre-LN, with a final LayerNorm", pre_ln=True, num_layers=1),
        case("4 heads, D=12, F=20, 5 classes", hidden_size=12, num_heads=4, intermediate_size=20,
             num_labels=5, vocab_size=17),
    ]


load_numpy_weights = _TorchExercise(
    id="12.load_numpy_weights", symbol="load_numpy_weights", points=3,
    title="our NumPy weights into the nn.Module: transposed, copied in place, decoder still tied",
    reference="load_numpy_weights", cases=_load_cases, run=run_load_weights,
    tolerance=FLOAT32, devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("reshaped instead of transposed",
                "nn.Linear's weight is our (in, out) matrix transposed (.T): reshape keeps the "
                "order of the numbers in memory and scrambles the matrix",
                "def load_numpy_weights(model, params):\n"
                "    with torch.no_grad():\n"
                "        for ours, (theirs, transposed) in torch_names(model.config).items():\n"
                "            param = model.get_parameter(theirs)\n"
                "            value = torch.as_tensor(params[ours])\n"
                "            param.copy_(value.reshape(param.shape) if transposed else value)\n"
                "    return model\n"),
        Mistake("new Parameters: the decoder is no longer tied",
                "copy into the existing parameters (param.copy_(value) under torch.no_grad()): a "
                "new nn.Parameter for embeddings.word.weight leaves the MLM decoder, which shares "
                "the old one, with its old weights",
                "def load_numpy_weights(model, params):\n"
                "    for ours, (theirs, transposed) in torch_names(model.config).items():\n"
                "        module_name, _, attr = theirs.rpartition('.')\n"
                "        value = torch.tensor(params[ours], dtype=torch.float32)\n"
                "        value = value.T.contiguous() if transposed else value\n"
                "        setattr(model.get_submodule(module_name), attr, nn.Parameter(value))\n"
                "    return model\n"),
        Mistake(".data replaced: float64 parameters",
                "param.data = torch.from_numpy(array) takes the array's dtype (float64 here) and "
                "shares its memory; param.copy_(...) converts to the parameter's dtype and device",
                "def load_numpy_weights(model, params):\n"
                "    for ours, (theirs, transposed) in torch_names(model.config).items():\n"
                "        value = params[ours].T if transposed else params[ours]\n"
                "        model.get_parameter(theirs).data = torch.from_numpy(np.ascontiguousarray(value))\n"
                "    return model\n"),
    ],
)

# --------------------------------------------------------------------------- sdpa_attention


def run_sdpa(fn, case):
    with _one_thread() as torch:
        where = device.torch_device()
        linears = []
        for W, b in case.data["weights"]:
            linear = torch.nn.Linear(*W.shape).to(where)
            with torch.no_grad():
                linear.weight.copy_(torch.as_tensor(W.T))
                linear.bias.copy_(torch.as_tensor(b))
            linears.append(linear)
        x = torch.as_tensor(case.args["x"], device=where)
        mask = case.args["attention_mask"]
        mask = None if mask is None else torch.as_tensor(mask, device=where)
        with torch.no_grad():
            out = fn(x, mask, *linears, _plain(case.args["num_heads"]))
        return device.to_numpy(out)


def _sdpa_cases(rng):
    def case(name, B, T, D, H, lengths=None, scale=1.0, as_bool=False):
        weights = [(rng.normal(size=(D, D)).astype(np.float32) / np.float32(math.sqrt(D)),
                    rng.normal(scale=0.2, size=D).astype(np.float32)) for _ in range(4)]
        mask = None
        if lengths is not None:
            mask = (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
            mask = mask.astype(bool) if as_bool else mask
        x = (scale * rng.normal(size=(B, T, D))).astype(np.float32)
        return Case(name, {"x": x, "attention_mask": mask, "num_heads": H},
                    data={"weights": weights})
    return [
        case("B=3, T=5, D=8, 2 heads, padding", 3, 5, 8, 2, lengths=[5, 3, 4]),
        case("no mask (None)", 2, 4, 8, 4),
        case("a mask with no padding", 2, 4, 8, 2, lengths=[4, 4]),
        case("batch of one, one head", 1, 6, 4, 1, lengths=[4]),
        case("a bool mask, one real token in a sequence", 3, 5, 12, 3, lengths=[5, 1, 2],
             as_bool=True),
        case("large inputs (x 10)", 2, 6, 8, 2, lengths=[6, 2], scale=10.0),
    ]


_SDPA_TEMPLATE = """def sdpa_attention(x, attention_mask, query, key, value, output, num_heads):
    B, T, D = x.shape
    d = D // num_heads

    def split_heads(t):
        return {split}

    q, k, v = split_heads(query(x)), split_heads(key(x)), split_heads(value(x))
    {scale}
    allowed = {mask}
    context = {call}
    return output({merge})
"""


def _sdpa_mistake(**parts):
    defaults = {"split": "t.view(B, T, num_heads, d).transpose(1, 2)", "scale": "pass",
                "mask": "None if attention_mask is None else "
                        "attention_mask.bool()[:, None, None, :]",
                "merge": "context.transpose(1, 2).reshape(B, T, D)",
                "call": "F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)"}
    defaults.update(parts)
    return _SDPA_TEMPLATE.format(**defaults)


sdpa_attention = _TorchExercise(
    id="12.sdpa_attention", symbol="sdpa_attention", points=3,
    title="multi-head attention with F.scaled_dot_product_attention and a padding mask",
    reference="sdpa_attention", cases=_sdpa_cases, run=run_sdpa,
    tolerance=FLOAT32, devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("mask inverted",
                "a bool attn_mask is True where attention is ALLOWED (the opposite of "
                "masked_fill's mask): pass attention_mask.bool(), not its negation",
                _sdpa_mistake(mask="None if attention_mask is None else "
                                   "~attention_mask.bool()[:, None, None, :]")),
        Mistake("0/1 mask added to the scores",
                "a float attn_mask is ADDED to the scores: a 0/1 mask adds 1 to the real "
                "tokens and leaves padding allowed; pass a bool mask (True = may attend)",
                _sdpa_mistake(mask="None if attention_mask is None else "
                                   "attention_mask[:, None, None, :].to(q.dtype)")),
        Mistake("scaled twice",
                "scaled_dot_product_attention divides by sqrt(d) itself: do not scale q first",
                _sdpa_mistake(scale="q = q / math.sqrt(d)")),
        Mistake("heads split without the transpose",
                "split as (B, T, H, d) and then transpose(1, 2) to (B, H, T, d); a view "
                "straight to (B, H, T, d) mixes tokens and heads (and merge back the same way)",
                _sdpa_mistake(split="t.view(B, num_heads, T, d)", merge="context.reshape(B, T, D)")),
        Mistake("merged without the transpose",
                "merge back with context.transpose(1, 2), to (B, T, H, d), before "
                "reshape(B, T, D): reshaping (B, H, T, d) directly mixes heads and tokens",
                _sdpa_mistake(merge="context.reshape(B, T, D)")),
        Mistake("is_causal=True",
                "BERT attends in both directions: no is_causal (it hides every later token); "
                "the only mask is the padding mask, as attn_mask",
                _sdpa_mistake(call="F.scaled_dot_product_attention(q, k, v, is_causal=True)")),
    ],
)

# --------------------------------------------------------------------------- torch_training_step

TOY_V, TOY_D, TOY_C = 7, 4, 5


def run_training_step(fn, case):
    with _one_thread() as torch:
        import torch.nn.functional as F
        from torch import nn
        where = device.torch_device()
        settings = _plain({k: case.data[k] for k in ("seed", "lr", "warmup", "max_grad_norm")})
        generator = torch.Generator().manual_seed(settings["seed"])
        model = nn.Sequential(nn.Embedding(TOY_V, TOY_D), nn.LayerNorm(TOY_D),
                              nn.Linear(TOY_D, TOY_C))
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5 + (p.ndim == 1) * 0.1)
        model.to(where)
        # Gradients left in .grad by earlier work (an evaluation, a gradient check): the step
        # must forget them before its backward pass, as its docstring says, not after.
        for p in model.parameters():
            p.grad = (torch.randn(p.shape, generator=generator) * 3.0).to(where)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=0.1)
        scheduler = None
        if settings["warmup"]:
            warmup = settings["warmup"]
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: min(1.0, (step + 1) / warmup))

        def loss_fn(model, batch):
            logits = model(batch["ids"])
            return batch["scale"] * F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())

        returned, history = [], {name: [] for name, _ in model.named_parameters()}
        for raw in case.data["batches"]:
            batch = {"ids": torch.as_tensor(raw["ids"], device=where),
                     "labels": torch.as_tensor(raw["labels"], device=where),
                     "scale": float(raw["scale"])}
            result = fn(model, batch, loss_fn, optimizer, scheduler, settings["max_grad_norm"])
            if isinstance(result, dict) and any(isinstance(v, torch.Tensor)
                                                for v in result.values()):
                raise TypeError("return Python floats (loss.item(), grad_norm.item()), not "
                                "tensors: a tensor keeps its graph, and its device, alive")
            returned.append(result)
            for name, p in model.named_parameters():
                history[name].append(device.to_numpy(p).copy())
        return {"returned": device.to_numpy(returned),
                **{f"parameter {name!r} after each step": np.stack(h) for name, h in history.items()}}


def _step_cases(rng):
    def case(name, steps, warmup=0, max_grad_norm=1.0, scale=1.0, n=6, lr=0.05):
        batches = []
        for _ in range(steps):
            labels = rng.integers(0, TOY_C, size=(2, n // 2 or 1))
            labels[rng.random(labels.shape) < 0.3] = -100
            labels[0, 0] = max(labels[0, 0], 0)
            batches.append({"ids": rng.integers(0, TOY_V, size=labels.shape), "labels": labels,
                            "scale": scale})
        return Case(name, data={"seed": int(rng.integers(1000)), "batches": batches, "lr": lr,
                                "warmup": warmup, "max_grad_norm": max_grad_norm})
    return [
        case("4 steps, warmup over 3 steps (LambdaLR), clip at 1.0", 4, warmup=3),
        case("large gradients (loss x 50), clipped to 0.5", 4, max_grad_norm=0.5, scale=50.0),
        case("no clipping (max_grad_norm=None), no scheduler", 3, max_grad_norm=None),
        case("max_grad_norm=0 means no clipping; warmup 2", 3, warmup=2, max_grad_norm=0.0),
        case("one token per sequence, 5 steps", 5, n=1, lr=0.1),
    ]


_STEP_TEMPLATE = """def torch_training_step(model, batch, loss_fn, optimizer, scheduler=None, max_grad_norm=1.0):
    learning_rate = optimizer.param_groups[0]["lr"]
{body}
    return {{"loss": loss.item(), "grad_norm": grad_norm.item(), "learning_rate": learning_rate}}
"""
_ZERO = "    optimizer.zero_grad()\n"
_FORWARD = "    loss = loss_fn(model, batch)\n"
_BACKWARD = "    loss.backward()\n"
_CLIP = ("    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), "
         "max_grad_norm or math.inf)\n")
_STEP = "    optimizer.step()\n"
_SCHEDULE = "    if scheduler is not None:\n        scheduler.step()\n"


_SCHEDULER_FIRST = ("call scheduler.step() after optimizer.step(): stepping it first skips the "
                    "first learning rate of the schedule (PyTorch warns about it)")


def _step_mistake(*parts):
    return _STEP_TEMPLATE.format(body="".join(parts).rstrip("\n"))


torch_training_step = _TorchExercise(
    id="12.torch_training_step", symbol="torch_training_step", points=2,
    title="one PyTorch training step: zero_grad, backward, clip, step, schedule",
    reference="torch_training_step", cases=_step_cases, run=run_training_step,
    tolerance=FLOAT32, devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("zero_grad forgotten",
                "call optimizer.zero_grad() first: backward() ADDS to .grad, so without it every "
                "step uses the sum of all the gradients so far",
                _step_mistake(_FORWARD, _BACKWARD, _CLIP, _STEP, _SCHEDULE)),
        Mistake("zero_grad at the end of the step",
                "call optimizer.zero_grad() before the backward pass: the model may arrive with "
                "gradients already in .grad (an evaluation, a gradient check), and zeroing them "
                "only afterwards adds them into this step's gradients",
                _step_mistake(_FORWARD, _BACKWARD, _CLIP, _STEP, _SCHEDULE, _ZERO)),
        Mistake("optimizer.step() before loss.backward()",
                "backward() first, then optimizer.step(): the step uses the gradients in .grad, "
                "which backward() has not filled yet (after zero_grad they are None and nothing "
                "moves)",
                _step_mistake(_ZERO, _FORWARD, _STEP, _BACKWARD, _CLIP, _SCHEDULE)),
        Mistake("clipped after the step",
                "clip all the gradients together, by their global norm "
                "(torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)), between "
                "backward() and optimizer.step(): clipping afterwards changes gradients nobody "
                "uses, and clipping per parameter or by value is not what was asked",
                _step_mistake(_ZERO, _FORWARD, _BACKWARD, _STEP, _CLIP, _SCHEDULE)),
        Mistake("the learning rate read after the schedule moved",
                "return the learning rate this step used: read optimizer.param_groups[0]['lr'] "
                "before scheduler.step() changes it",
                _STEP_TEMPLATE.replace('    learning_rate = optimizer.param_groups[0]["lr"]\n', "")
                .replace('    return {{"loss"', '    learning_rate = optimizer.param_groups[0]["lr"]\n'
                                             '    return {{"loss"')
                .format(body=(_ZERO + _FORWARD + _BACKWARD + _CLIP + _STEP + _SCHEDULE)
                        .rstrip("\n"))),
        Mistake("scheduler stepped before the optimizer",
                _SCHEDULER_FIRST,
                _step_mistake(_ZERO, _FORWARD, _BACKWARD, _CLIP, _SCHEDULE, _STEP)),
        Mistake("scheduler stepped before the optimizer, the learning rate read between",
                _SCHEDULER_FIRST,
                _STEP_TEMPLATE.replace('    learning_rate = optimizer.param_groups[0]["lr"]\n', "")
                .format(body=(_ZERO + _FORWARD + _BACKWARD + _CLIP + _SCHEDULE
                              + '    learning_rate = optimizer.param_groups[0]["lr"]\n'
                              + _STEP).rstrip("\n"))),
        Mistake("no clipping asked, every gradient zeroed",
                "clip_grad_norm_(..., 0) scales every gradient by 0, and nothing moves: when "
                "max_grad_norm is None or 0, pass math.inf, which measures the norm and clips "
                "nothing",
                _step_mistake(_ZERO, _FORWARD, _BACKWARD,
                              _CLIP.replace("max_grad_norm or math.inf", "max_grad_norm or 0.0"),
                              _STEP, _SCHEDULE)),
    ],
)

# --------------------------------------------------------------------------- torch_adamw_trajectory


def _gradient_function(case):
    kind = case.data["gradient"]
    if kind == "quadratic":
        A, b = case.data["A"], case.data["b"]
        return lambda x: (A.T @ (A @ x.reshape(-1) - b)).reshape(x.shape)
    if kind == "rosenbrock":
        def grad(p):
            x, y = p
            return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        return grad
    if kind == "noisy":
        noise = np.random.default_rng(_plain(case.data["noise_seed"]))
        return lambda x: 0.5 * x + noise.normal(size=x.shape)
    raise ValueError(kind)


def run_adamw_trajectory(fn, case):
    initial = case.args["initial"]
    before = copy_arrays(initial)
    with _one_thread():
        trajectory = fn(initial, _gradient_function(case), _plain(case.args["steps"]),
                        **_plain(case.kwargs), device=device.torch_device())
    return {"trajectory": trajectory, "initial left as it was": unchanged(initial, before)}


def _adamw_cases(rng):
    A = rng.normal(size=(6, 6)) / math.sqrt(6)
    return [
        Case("quadratic, 6 parameters, torch's defaults, 40 steps",
             {"initial": rng.normal(size=6), "steps": 40},
             data={"gradient": "quadratic", "A": A, "b": rng.normal(size=6)}),
        Case("Rosenbrock from (-1, 1), lr=0.02, no weight decay, 100 steps",
             {"initial": np.array([-1.0, 1.0]), "steps": 100},
             {"lr": 0.02, "weight_decay": 0.0}, data={"gradient": "rosenbrock"}),
        Case("noisy gradients, (3, 4) parameters, betas (0.8, 0.99), eps 1e-6, decay 0.1",
             {"initial": rng.normal(size=(3, 4)), "steps": 30},
             {"lr": 0.05, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1},
             data={"gradient": "noisy", "noise_seed": 3}),
        Case("one step, lr=0.1, decay 0.5", {"initial": rng.normal(size=3), "steps": 1},
             {"lr": 0.1, "weight_decay": 0.5}, data={"gradient": "noisy", "noise_seed": 5}),
    ]


_ADAMW_TEMPLATE = """def torch_adamw_trajectory(initial, gradient_fn, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.01, device="cpu"):
    param = torch.tensor(initial, dtype=torch.float64, device=device, requires_grad=True)
    optimizer = {optimizer}
    trajectory = []
    for _ in range(steps):
        {record_before}
        grad = gradient_fn({at})
        param.grad = torch.as_tensor(grad, dtype=param.dtype, device=param.device)
        optimizer.step()
        {record_after}
    return np.stack(trajectory)
"""


def _adamw_mistake(**parts):
    defaults = {"optimizer": "torch.optim.AdamW([param], lr=lr, betas=betas, eps=eps, "
                             "weight_decay=weight_decay)",
                "record_before": "pass", "at": "param.detach().cpu().numpy()",
                "record_after": "trajectory.append(param.detach().cpu().numpy().copy())"}
    defaults.update(parts)
    return _ADAMW_TEMPLATE.format(**defaults)


torch_adamw_trajectory = _TorchExercise(
    id="12.torch_adamw_trajectory", symbol="torch_adamw_trajectory", points=2,
    title="torch.optim.AdamW's path, step by step, to compare with yours",
    reference="torch_adamw_trajectory", cases=_adamw_cases, run=run_adamw_trajectory,
    devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("Adam with weight_decay (L2, not decoupled)",
                "torch.optim.Adam's weight_decay adds weight_decay * p to the gradient (L2), "
                "which Adam then rescales; AdamW shrinks the parameter apart from the gradient: "
                "use torch.optim.AdamW",
                _adamw_mistake(optimizer="torch.optim.Adam([param], lr=lr, betas=betas, eps=eps, "
                                         "weight_decay=weight_decay)")),
        Mistake("settings not passed",
                "pass every setting to torch.optim.AdamW: its defaults (weight_decay=0.01, "
                "betas (0.9, 0.999), eps 1e-8) are not this call's",
                _adamw_mistake(optimizer="torch.optim.AdamW([param], lr=lr)")),
        Mistake("every row is the last one",
                "param.detach().cpu().numpy() shares the parameter's memory on the CPU: record a "
                ".copy(), or every row shows the final value",
                _adamw_mistake(record_after="trajectory.append(param.detach().cpu().numpy())")),
        Mistake("gradient always at the start",
                "evaluate gradient_fn at the current parameter every step, not at initial",
                _adamw_mistake(at="initial")),
        Mistake("the parameter made with torch.from_numpy",
                "torch.from_numpy shares the array's memory, so the optimizer moves the "
                "caller's `initial` too: start from a copy, torch.tensor(initial, ...)",
                _ADAMW_TEMPLATE.replace(
                    "param = torch.tensor(initial, dtype=torch.float64, device=device, "
                    "requires_grad=True)",
                    "param = torch.from_numpy(initial).requires_grad_()").format(
                    optimizer="torch.optim.AdamW([param], lr=lr, betas=betas, eps=eps, "
                              "weight_decay=weight_decay)",
                    record_before="pass", at="param.detach().cpu().numpy()",
                    record_after="trajectory.append(param.detach().cpu().numpy().copy())")),
        Mistake("recorded before the step",
                "row t is the parameter AFTER step t + 1: record after optimizer.step()",
                _adamw_mistake(record_before="trajectory.append(param.detach().cpu().numpy().copy())",
                               record_after="pass")),
    ],
)

# --------------------------------------------------------------------------- bf16_mlm_loss


def _autocast_on(torch, device_type):
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:                      # PyTorch before 2.4: one function per device type
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else \
            torch.is_autocast_enabled()


def run_bf16_loss(fn, case):
    with _one_thread() as torch:
        from solutions.torch_bert import batch_to_tensors as to_tensors
        from solutions.torch_bert import load_numpy_weights as load
        config = case.data["config"]
        model = load(_model(torch, config), case.data["params"]).eval()
        batch = to_tensors(case.data["batch"], device.torch_device())
        with torch.no_grad():
            float32_loss = model.mlm_loss(batch).item()
        seen, cross_entropy_inputs = [], []
        hook = model.layers[0].ff1.register_forward_hook(
            lambda module, inputs, output: seen.append(str(output.dtype)))
        import torch.nn.functional as F
        original = F.cross_entropy

        def watched(logits, *args, **kwargs):      # nn.CrossEntropyLoss calls it too
            # under autocast, cross_entropy runs in float32 whatever the logits' dtype
            if not _autocast_on(torch, logits.device.type):
                cross_entropy_inputs.append(str(logits.dtype))
            return original(logits, *args, **kwargs)
        F.cross_entropy = watched
        try:
            loss = fn(model, batch)
        finally:
            F.cross_entropy = original
        hook.remove()
        loss.backward()
        grads = {str(p.grad.dtype) for p in model.parameters() if p.grad is not None}
        value = float(loss.detach().float().item())
        # Padding must not matter: other tokens at the padded positions, the same loss. (The
        # 2 % below is bfloat16's rounding; ignoring the mask moves the loss by about 1 %.)
        other = dict(batch)
        padded = batch["attention_mask"] == 0
        other["input_ids"] = torch.where(padded, (batch["input_ids"] + 7) % config["vocab_size"],
                                         batch["input_ids"])
        with torch.no_grad():
            other_value = float(fn(model, other).detach().float().item())
        return {"loss dtype": str(loss.dtype),
                "the cross-entropy's logits outside autocast (F.cross_entropy)": "bfloat16"
                if "torch.bfloat16" in cross_entropy_inputs else "float32, or not F.cross_entropy",
                "the loss is the same whatever tokens the padded positions hold":
                    abs(other_value - value) <= 1e-4 * abs(value),
                "the feed-forward's matrix products computed in": seen[:1],
                "parameter dtypes after the call": sorted({str(p.dtype) for p in model.parameters()}),
                "gradient dtypes": sorted(grads),
                "loss within 2 % of the float32 loss":
                    bool(abs(value - float32_loss) <= 0.02 * abs(float32_loss))}


def _bf16_cases(rng):
    def case(name, B, T, lengths=None, **config):
        config = _tiny_config(dropout=0.0, **config)
        return Case(name, data={"config": config, "params": perturbed_params(rng, config, np.float32),
                                "batch": _bert_batch(rng, config["vocab_size"], B, T, lengths)})
    return [
        case("B=3, T=7, padding and segments", 3, 7, [7, 4, 6]),
        case("batch of one", 1, 9),
        case("pre-LN, 4 heads, V=40", 2, 8, [8, 5], pre_ln=True, num_heads=4, vocab_size=40),
    ]


_BF16_TEMPLATE = """def bf16_mlm_loss(model, batch):
    labels = batch["labels"].reshape(-1)
    positions = (labels != -100).nonzero().squeeze(1)
    device_type = batch["input_ids"].device.type
    {before}
    with {context}:
        hidden = model(batch["input_ids"], batch.get("token_type_ids"), batch.get("attention_mask"))
        logits = model.mlm_logits(hidden.flatten(0, 1)[positions])
    return F.cross_entropy({logits}, labels[positions])
"""


def _bf16_mistake(**parts):
    defaults = {"before": "pass",
                "context": "torch.autocast(device_type=device_type, dtype=torch.bfloat16)",
                "logits": "logits.float()"}
    defaults.update(parts)
    return _BF16_TEMPLATE.format(**defaults)


bf16_mlm_loss = _TorchExercise(
    id="12.bf16_mlm_loss", symbol="bf16_mlm_loss", points=2,
    title="mixed precision: bfloat16 autocast for the forward, float32 for the loss",
    reference="bf16_mlm_loss", cases=_bf16_cases, run=run_bf16_loss,
    devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("the whole model in bfloat16",
                "model.bfloat16() turns the parameters themselves to bfloat16: the optimizer then "
                "updates 8-bit-mantissa weights and the loss is summed in bfloat16; keep the "
                "parameters float32 and run the forward under torch.autocast",
                _bf16_mistake(before="model.bfloat16()", context="contextlib.nullcontext()",
                              logits="logits").replace("def bf16", "import contextlib\n\n\ndef bf16")),
        Mistake("loss on bfloat16 logits",
                "outside autocast, F.cross_entropy on bfloat16 logits computes the softmax and the "
                "mean in bfloat16: turn the logits to float32 first (logits.float())",
                _bf16_mistake(logits="logits")),
        Mistake("the loss on bfloat16 logits, cast afterwards",
                "turn the logits to float32 before the loss (F.cross_entropy(logits.float(), "
                "...)): a bfloat16 softmax has 8 bits of precision, and .float() on the loss "
                "afterwards does not bring them back",
                _bf16_mistake(logits="logits").replace("labels[positions])\n",
                                                       "labels[positions]).float()\n")),
        Mistake("no autocast",
                "run the forward inside torch.autocast(device_type, dtype=torch.bfloat16): "
                "without it every matrix product is float32",
                _bf16_mistake(context="torch.autocast(device_type=device_type, enabled=False)")),
        Mistake("the attention mask left out",
                "pass batch['attention_mask'] to the model: without it every token attends to "
                "the padding too, and the loss changes with whatever the padded positions hold",
                _bf16_mistake().replace('batch.get("attention_mask")', "None")),
        Mistake("the token types left out",
                "pass batch.get('token_type_ids') to the model: without them every token gets "
                "segment 0's embedding, and a pair's second sentence is read as the first",
                _bf16_mistake().replace('batch.get("token_type_ids")', "None")),
        Mistake("float16 instead of bfloat16",
                "use dtype=torch.bfloat16: float16 has 3 more mantissa bits but overflows above "
                "65504 and needs a GradScaler; bfloat16 has float32's range",
                _bf16_mistake(context="torch.autocast(device_type=device_type, dtype=torch.float16)")),
    ],
)

# --------------------------------------------------------------------------- mlm_dataloader

PAD, MASK, CLS, SEP, FIRST_WORD = 0, 4, 2, 3, 5


def _examples(n, rng):
    """n distinct sentences: [CLS], a word that names the example, 1-5 more words, [SEP]."""
    return [[CLS, FIRST_WORD + i] + rng.integers(FIRST_WORD, 60, size=rng.integers(1, 6)).tolist()
            + [SEP] for i in range(n)]


def _collator(seed):
    return MLMCollator(PAD, MASK, 60 + 40, [PAD, 1, CLS, SEP, MASK], mlm_probability=0.3,
                       seed=seed)


def _epochs(loader, count):
    return [list(loader) for _ in range(count)]


def _originals(batch, to_numpy):
    """Each sequence of a batch as it was before masking (the key of its example)."""
    ids, labels, mask = (to_numpy(batch[k]) for k in ("input_ids", "labels", "attention_mask"))
    original = np.where(labels != -100, labels, ids)
    return [tuple(row[m == 1].tolist()) for row, m in zip(original, mask)]


def run_dataloader(fn, case):
    with _one_thread() as torch:
        examples = [list(e) for e in _plain(case.args["examples"])]
        index = {tuple(e): i for i, e in enumerate(examples)}
        size, seed = _plain(case.args["batch_size"]), _plain(case.args["seed"])
        epochs = _epochs(fn(examples, _collator(7), size, seed), 2)
        batches = [b for epoch in epochs for b in epoch]
        if not all(isinstance(b, dict) and {"input_ids", "labels", "attention_mask"} <= set(b)
                   for b in batches):
            return {"batches are dicts with input_ids, attention_mask and labels": False}
        orders = [[index.get(o, -1) for b in epoch for o in _originals(b, device.to_numpy)]
                  for epoch in epochs]
        again = _epochs(fn(examples, _collator(7), size, seed), 1)[0]
        ends = []
        for start in (1, 2):                         # the global generator in two states: the
            torch.manual_seed(start)                 # same epoch from both may not end alike
            _epochs(fn(examples, _collator(7), size, seed), 1)
            ends.append(torch.get_rng_state())
        own_generator = not torch.equal(*ends)
        other = _epochs(fn(examples, _collator(7), size, seed + 1), 1)[0]

        def same(first, second):
            return len(first) == len(second) and all(
                np.array_equal(device.to_numpy(a[k]), device.to_numpy(b[k]))
                for a, b in zip(first, second) for k in ("input_ids", "labels"))
        return {
            "batches are dicts with input_ids, attention_mask and labels": True,
            "every value an int64 tensor": all(isinstance(v, torch.Tensor) and v.dtype == torch.int64
                                               for b in batches for v in b.values()),
            "batch sizes, epoch by epoch": [[len(device.to_numpy(b["input_ids"])) for b in epoch]
                                            for epoch in epochs],
            "every example once per epoch": [sorted(o) == list(range(len(examples)))
                                             for o in orders],
            "epoch 0 shuffled": orders[0] != sorted(orders[0]),
            "a new order in epoch 1": orders[0] != orders[1],
            "the same seed gives the same batches": same(epochs[0], again),
            "another seed gives other batches": not same(epochs[0], other),
            "the global random state left alone (a generator of its own)": own_generator,
        }


def _loader_cases(rng):
    def case(name, n, batch_size, seed):
        return Case(name, {"examples": _examples(n, rng), "batch_size": batch_size, "seed": seed})
    return [
        case("10 examples, batches of 4", 10, 4, 0),
        case("12 examples, batches of 5, seed 3", 12, 5, 3),
        case("7 examples, one batch of 7", 7, 7, 1),
        case("9 examples, batch larger than the dataset", 9, 16, 2),
        case("30 examples, batches of 8", 30, 8, 11),
    ]


_LOADER_TEMPLATE = """def mlm_dataloader(examples, collator, batch_size, seed):
    def collate(batch_examples):
        return {collate}

    return torch.utils.data.DataLoader(examples, batch_size=batch_size, collate_fn=collate, {options})
"""


def _loader_mistake(**parts):
    defaults = {"collate": "{name: torch.from_numpy(a) for name, a in collator(batch_examples).items()}",
                "options": "shuffle=True, generator=torch.Generator().manual_seed(seed)"}
    defaults.update(parts)
    return _LOADER_TEMPLATE.format(**defaults)


mlm_dataloader = _TorchExercise(
    id="12.mlm_dataloader", symbol="mlm_dataloader", points=2,
    title="a DataLoader of masked-LM batches: seeded shuffle, last batch kept, tensors",
    reference="mlm_dataloader", cases=_loader_cases, run=run_dataloader, timeout=60,
    mistakes=[
        Mistake("not shuffled",
                "pass shuffle=True: without it every epoch shows the examples in the same, "
                "original order",
                _loader_mistake(options="generator=torch.Generator().manual_seed(seed)")),
        Mistake("last batch dropped",
                "keep the smaller last batch (drop_last=False, the default): every example is "
                "seen once per epoch",
                _loader_mistake(options="shuffle=True, drop_last=True, "
                                        "generator=torch.Generator().manual_seed(seed)")),
        Mistake("shuffle not seeded",
                "give the loader its own seeded generator, "
                "generator=torch.Generator().manual_seed(seed): the global generator makes other "
                "batches every run",
                _loader_mistake(options="shuffle=True")),
        Mistake("the global generator seeded",
                "give the loader a generator of its own (generator=torch.Generator()"
                ".manual_seed(seed)): torch.manual_seed(seed) reseeds every other random draw "
                "of the program, dropout's included",
                "def mlm_dataloader(examples, collator, batch_size, seed):\n"
                "    torch.manual_seed(seed)\n"
                "    generator = torch.Generator().manual_seed(torch.randint(2 ** 31, ()).item())\n"
                "    def collate(batch_examples):\n"
                "        return {name: torch.from_numpy(a) for name, a in "
                "collator(batch_examples).items()}\n\n"
                "    return torch.utils.data.DataLoader(examples, batch_size=batch_size, "
                "collate_fn=collate, shuffle=True, generator=generator)\n"),
        Mistake("NumPy arrays, not tensors",
                "turn each array of the collator's batch into a tensor (torch.from_numpy) in "
                "collate_fn: the model takes tensors",
                _loader_mistake(collate="collator(batch_examples)")),
    ],
)

# --------------------------------------------------------------------------- numpy_weights


def run_numpy_weights(fn, case):
    with _one_thread() as torch:
        from solutions.pretraining import load_pretrained, save_pretrained
        config = _plain(case.data["config"])
        model = _model(torch, config, seed=_plain(case.data["seed"]))
        with torch.no_grad():                       # weights far from the initial ones
            for p in model.parameters():
                p.mul_(10.0).add_(0.1)
        model.to(getattr(torch, case.data.get("dtype", "float32")))   # "any float dtype"
        result = fn(model)
        if isinstance(result, dict) and any(isinstance(v, torch.Tensor) for v in result.values()):
            raise TypeError("return NumPy arrays (.detach().float().cpu().numpy(), copied), not "
                            "tensors: lesson 09's checkpoint files are written from NumPy")
        contiguous = isinstance(result, dict) and all(
            isinstance(v, np.ndarray) and v.flags.c_contiguous for v in result.values())
        with torch.no_grad():                       # training goes on after the save
            for p in model.parameters():
                p.add_(1.0)
        weights = device.to_numpy(result)
        logits = None
        try:
            with tempfile.TemporaryDirectory() as folder:
                save_pretrained(folder, weights, bert.BertConfig(**config), ["tok"] * config["vocab_size"])
                params, loaded_config, _ = load_pretrained(folder)
                batch = case.data["batch"]
                logits = bert.mlm_logits(params, loaded_config, batch["input_ids"],
                                         batch["token_type_ids"], batch["attention_mask"])
        except Exception:
            pass                                    # the weights' own difference says why
        return {"weights": weights, "every array C-contiguous": contiguous,
                "MLM logits of the NumPy model read back from the files": logits}


def _weights_cases(rng):
    def case(name, seed, dtype="float32", **config):
        config = _tiny_config(**config)
        return Case(name, data={"config": config, "seed": seed, "dtype": dtype,
                                "batch": _bert_batch(rng, config["vocab_size"], 2, 6, [6, 3])})
    return [
        case("post-LN, 2 layers; the model trains on after the call", 0),
        case("a float64 model (model.double())", 3, dtype="float64"),
        case("a bfloat16 model, which NumPy cannot hold", 4, dtype="bfloat16"),
        case("pre-LN, 1 layer", 1, pre_ln=True, num_layers=1),
        case("D=12, 4 heads, F=20, 5 classes", 2, hidden_size=12, num_heads=4,
             intermediate_size=20, num_labels=5),
    ]


_SHARED_MEMORY = ("tensor.numpy() shares memory with the tensor (and so does "
                  "np.ascontiguousarray of an array already contiguous): copy (np.array(...) or "
                  ".copy()), or the saved arrays change as training goes on")

_WEIGHTS_TEMPLATE = """def numpy_weights(model):
    params = {{}}
    for ours, (theirs, transposed) in torch_names(model.config).items():
        value = model.get_parameter(theirs).detach().cpu()
        params[ours] = {convert}
    return params
"""

numpy_weights = _TorchExercise(
    id="12.numpy_weights", symbol="numpy_weights", points=2,
    title="the nn.Module's weights back to our NumPy dict, for lesson 09's checkpoints",
    reference="numpy_weights", cases=_weights_cases, run=run_numpy_weights,
    tolerance=FLOAT32, devices=("cpu", "cuda"), timeout=60,
    mistakes=[
        Mistake("not transposed back",
                "nn.Linear stores (out, in); our NumPy model computes x @ W with W (in, out): "
                "transpose the weights marked transposed back (.T)",
                _WEIGHTS_TEMPLATE.format(convert="value.numpy().copy()")),
        Mistake("arrays share the parameters' memory",
                _SHARED_MEMORY,
                _WEIGHTS_TEMPLATE.format(convert="value.T.numpy() if transposed else value.numpy()")),
        Mistake("the untransposed arrays share the parameters' memory",
                _SHARED_MEMORY,
                _WEIGHTS_TEMPLATE.format(convert="np.ascontiguousarray(value.T.numpy()) "
                                                 "if transposed else value.numpy()")),
        Mistake("PyTorch's names",
                "return our NumPy names (the keys of torch_names(model.config)), in our layout; "
                "state_dict() has PyTorch's names and the tied decoder a second time",
                "def numpy_weights(model):\n"
                "    return {name: t.detach().cpu().numpy().copy() for name, t in model.state_dict().items()}\n"),
        Mistake("the model's dtype kept",
                "bring every parameter to float32 first (.float()): a float64 model gives float64 "
                "arrays, and a bfloat16 one none at all (NumPy has no bfloat16)",
                _WEIGHTS_TEMPLATE.format(convert="np.array((value.T if transposed else value)"
                                                 ".numpy(), order='C')")),
        Mistake("float64",
                "keep float32, the model's dtype: lesson 09's checkpoints store float32",
                _WEIGHTS_TEMPLATE.format(convert="np.array(value.T if transposed else value, "
                                                 "dtype=np.float64)")),
    ],
)


LESSON = Lesson(
    id="12", slug="12_pytorch", title="PyTorch", prelude=PRELUDE,
    exercises=[batch_to_tensors, torch_grad_of, load_numpy_weights, sdpa_attention,
               torch_training_step, torch_adamw_trajectory, bf16_mlm_loss, mlm_dataloader,
               numpy_weights],
)
