"""Lesson 17 - Parameter-efficient fine-tuning (LoRA): exercise specs.

The gradients are graded against central differences of the definitions
(``lora_forward``, and ``W + scale * A @ B``); ``lora_loss_and_grads`` runs on
a small two-layer network whose loss function travels in the case as arrays.
"""

import ast

import numpy as np

from solutions import bert, lora

from ..compare import GRADIENT
from ..gradcheck import numerical_gradient
from ..spec import (Case, Exercise, Lesson, Mistake, SourceRule, copy_arrays, functions_in,
                    named_results, unchanged)
from .lesson03 import backward_exercise, run_forward

PRELUDE = "import math\n\nimport numpy as np\n\nfrom solutions.lora import LORA_TARGETS\n"

# --------------------------------------------------------------------------- lora_forward


def _layer_cases(rng):
    def case(name, lead, d_in, d_out, r, scale, dtype=np.float64, zero_B=False):
        arrays = {"x": rng.normal(size=lead + (d_in,)), "W": rng.normal(size=(d_in, d_out)),
                  "b": rng.normal(size=d_out), "A": rng.normal(size=(d_in, r)),
                  "B": rng.normal(size=(r, d_out))}
        if zero_B:
            arrays["B"][:] = 0.0
        arrays = {k: v.astype(dtype) for k, v in arrays.items()}
        c = Case(name, {**arrays, "scale": scale},
                 data={"dout": rng.normal(size=lead + (d_out,)).astype(dtype)})
        if dtype == np.float32:
            c.data["float32"] = True
        return c
    return [
        case("N=4, D_in=6, D_out=5, r=2, scale 2", (4,), 6, 5, 2, 2.0),
        case("sequences (B, T) = (2, 3), D=8, r=1", (2, 3), 8, 8, 1, 0.5),
        case("r = D_in: a full-rank adapter", (3,), 3, 4, 3, 1.0),
        case("a single vector x of shape (D_in,)", (), 5, 3, 2, 4.0),
        case("scale 0: the frozen layer alone", (2,), 4, 4, 2, 0.0),
        case("B = 0, as at the start of training", (3,), 4, 5, 2, 2.0, zero_B=True),
        case("float32 in, float32 out (MiniLM's weights)", (2, 3), 6, 4, 2, 2.0,
             dtype=np.float32),
    ]


_FORWARD = """def lora_forward(x, W, b, A, B, scale):
    h = x @ A
    out = {out}
    return out, {cache}
"""


def _forward_mistake(out="x @ W + b + scale * (h @ B)", cache="(x, W, A, B, scale, h)"):
    return _FORWARD.format(out=out, cache=cache)


def _products_of_a_and_b(code):
    """``[(line, "forms A @ B")]`` where a function multiplies the names A and B themselves:
    ``A @ B``, ``np.matmul(A, B)``, ``np.dot(A, B)`` or ``A.dot(B)``."""
    found = set()
    for function in functions_in(code):
        for node in ast.walk(function):
            pair = ()
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                pair = (node.left, node.right)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("matmul", "dot") and len(node.args) == 2:
                    pair = tuple(node.args)
                elif node.func.attr == "dot" and len(node.args) == 1:
                    pair = (node.func.value, node.args[0])
            if [getattr(p, "id", None) for p in pair] == ["A", "B"]:
                found.add((node.lineno, "forms A @ B"))
    return sorted(found)


NEVER_AB = SourceRule(
    "A @ B never formed", _products_of_a_and_b,
    "the docstring asks for (x @ A) @ B, which never builds the (D_in, D_out) matrix A @ B",
    "compute h = x @ A first, then h @ B: r (D_in + D_out) operations per row of x instead of "
    "D_in D_out, and no matrix the size of W (the lesson timed both)")


lora_forward = Exercise(
    id="17.lora_forward", symbol="lora_forward", points=2,
    title="a frozen linear layer plus a low-rank adapter",
    reference=lora.lora_forward, cases=_layer_cases, run=run_forward,
    source_rules=(NEVER_AB,),
    mistakes=[
        Mistake("the scale left out",
                "the adapter's output is multiplied by scale (alpha / r): out = x @ W + b + "
                "scale * (x @ A) @ B",
                _forward_mistake(out="x @ W + b + h @ B")),
        Mistake("the scale on the whole output",
                "only the adapter is scaled; the frozen layer x @ W + b stays as it was",
                _forward_mistake(out="scale * (x @ W + b + h @ B)")),
        Mistake("the bias left out", "the frozen layer keeps its bias: x @ W + b",
                _forward_mistake(out="x @ W + scale * (h @ B)")),
        Mistake("the cache without h",
                "the cache is (x, W, A, B, scale, h) with h = x @ A, in that order: the "
                "backward pass needs h for dB",
                _forward_mistake(cache="(x, W, A, B, scale)")),
    ],
)

# --------------------------------------------------------------------------- lora_backward

_backward_run, _backward_expected = backward_exercise(lora.lora_forward, ("x", "A", "B"),
                                                      ("dx", "dA", "dB"), lora.lora_backward)

_BACKWARD = """def lora_backward(dout, cache):
    x, W, A, B, scale, h = cache
    x2, h2 = x.reshape(-1, A.shape[0]), h.reshape(-1, A.shape[1])
    d2 = dout.reshape(-1, B.shape[1])
    dh2 = {dh}
    dB = {dB}
    dA = x2.T @ dh2
    dx = ({dx}).reshape(x.shape)
    return dx, dA, dB
"""


def _backward_mistake(**parts):
    defaults = {"dh": "scale * (d2 @ B.T)", "dB": "scale * (h2.T @ d2)",
                "dx": "d2 @ W.T + dh2 @ A.T"}
    return _BACKWARD.format(**dict(defaults, **parts))


lora_backward = Exercise(
    id="17.lora_backward", symbol="lora_backward", points=3,
    title="the input's and the adapter's gradients; W and b frozen",
    reference=lora.lora_backward, cases=_layer_cases,
    run=_backward_run, expected=_backward_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("dx through the frozen path only",
                "x reaches the output twice, through W and through A then B: dx = dout @ W.T "
                "+ scale * (dout @ B.T) @ A.T",
                _backward_mistake(dx="d2 @ W.T")),
        Mistake("the scale left out",
                "the adapter's output is scaled, so everything that flows through it is too: "
                "dh = scale * dout @ B.T (which feeds dA = x.T @ dh and dx) and dB = scale * "
                "h.T @ dout",
                _backward_mistake(dh="d2 @ B.T", dB="h2.T @ d2")),
        Mistake("the scale left out of dA and dx",
                "dA = x.T @ (scale * dout @ B.T): the scale reaches A, and x's second path, "
                "through h, as it reaches B",
                _backward_mistake(dh="d2 @ B.T")),
        Mistake("dB from x instead of h",
                "B multiplies h = x @ A (..., r), so dB = scale * h.T @ dout has B's shape "
                "(r, D_out)",
                _backward_mistake(dB="scale * (x2.T @ d2)")),
    ],
)

# --------------------------------------------------------------------------- lora_grads_from_weight_grad


def _weight_grad_cases(rng):
    def case(name, d_in, d_out, r, scale):
        return Case(name, {"dW": rng.normal(size=(d_in, d_out)), "A": rng.normal(size=(d_in, r)),
                           "B": rng.normal(size=(r, d_out)), "scale": scale})
    return [
        case("D_in=5, D_out=4, r=2, scale 2", 5, 4, 2, 2.0),
        case("square, r=1, scale 16", 6, 6, 1, 16.0),
        case("r = 3, D_out = 1", 4, 1, 3, 0.5),
        case("scale 1", 3, 7, 2, 1.0),
        Case("float32 in, float32 out", {k: v.astype(np.float32) for k, v in {
            "dW": rng.normal(size=(4, 3)), "A": rng.normal(size=(4, 2)),
            "B": rng.normal(size=(2, 3))}.items()} | {"scale": 2.0}),
    ]


def _weight_grad_expected(case):
    """Central differences of sum(dW * (W + scale * A @ B)) with respect to A and B; for
    float32 inputs, the reference's float32 result."""
    dW, A, B, scale = case.args["dW"], case.args["A"], case.args["B"], case.args["scale"]
    if A.dtype == np.float32:
        return run_weight_grad(lora.lora_grads_from_weight_grad, case)
    W = np.zeros_like(dW)                  # W is a constant: it does not change the gradients
    dA = numerical_gradient(lambda a: np.sum(dW * lora.merge_lora(W, a, B, scale)), A)
    dB = numerical_gradient(lambda b: np.sum(dW * lora.merge_lora(W, A, b, scale)), B)
    return {"dA": dA, "dB": dB}


def run_weight_grad(fn, case):
    return named_results(fn(*case.args.values()), ("dA", "dB"))


_WEIGHT_GRAD = """def lora_grads_from_weight_grad(dW, A, B, scale):
    return {dA}, {dB}
"""

lora_grads_from_weight_grad = Exercise(
    id="17.lora_grads_from_weight_grad", symbol="lora_grads_from_weight_grad", points=2,
    title="the chain rule through W + scale * A @ B",
    reference=lora.lora_grads_from_weight_grad, cases=_weight_grad_cases, run=run_weight_grad,
    expected=_weight_grad_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("the scale left out",
                "W_eff = W + scale * A @ B, so dA = scale * dW @ B.T and dB = scale * A.T @ dW",
                _WEIGHT_GRAD.format(dA="dW @ B.T", dB="A.T @ dW")),
        Mistake("dB transposed", "dB has B's shape (r, D_out): A.T @ dW, not dW.T @ A",
                _WEIGHT_GRAD.format(dA="scale * (dW @ B.T)", dB="scale * (dW.T @ A)")),
        Mistake("the gradients swapped",
                "A's gradient multiplies dW by B.T on the right (A is on the left of B); B's "
                "multiplies it by A.T on the left",
                _WEIGHT_GRAD.format(dA="scale * (A @ B @ B.T)", dB="scale * (A.T @ A @ B)")),
    ],
)

# --------------------------------------------------------------------------- merge_lora


def _merge_cases(rng):
    def case(name, d_in, d_out, r, scale):
        return Case(name, {"W": rng.normal(size=(d_in, d_out)), "A": rng.normal(size=(d_in, r)),
                           "B": rng.normal(size=(r, d_out)), "scale": scale})
    return [
        case("D_in=4, D_out=6, r=2, scale 4", 4, 6, 2, 4.0),
        case("r=1, scale 16", 5, 5, 1, 16.0),
        case("scale 0.25, r=3", 3, 2, 3, 0.25),
        Case("B = 0, as at the start of training: still a new array",
             {"W": rng.normal(size=(3, 4)), "A": rng.normal(size=(3, 2)), "B": np.zeros((2, 4)),
              "scale": 2.0}),
        Case("float32 in, float32 out", {k: v.astype(np.float32) for k, v in {
            "W": rng.normal(size=(4, 3)), "A": rng.normal(size=(4, 2)),
            "B": rng.normal(size=(2, 3))}.items()} | {"scale": 0.5}),
    ]


def run_merge(fn, case):
    W = case.args["W"]
    before = copy_arrays(W)
    merged = fn(*case.args.values())
    return {"merged": merged, "W left as it was": unchanged(W, before),
            "a new array, not W itself": merged is not W}


merge_lora = Exercise(
    id="17.merge_lora", symbol="merge_lora", points=1,
    title="the adapter folded into the weight",
    reference=lora.merge_lora, cases=_merge_cases, run=run_merge,
    mistakes=[
        Mistake("W changed in place",
                "return a new array, W + scale * A @ B: W is the frozen pretrained weight, and "
                "adding to it in place (+=) changes the model it came from",
                "def merge_lora(W, A, B, scale):\n"
                "    W += scale * (A @ B)\n"
                "    return W\n"),
        Mistake("the scale left out", "the merged weight is W + scale * A @ B",
                "def merge_lora(W, A, B, scale):\n"
                "    return W + A @ B\n"),
        Mistake("divided by the rank again",
                "scale is already alpha / r: multiply by it and nothing else",
                "def merge_lora(W, A, B, scale):\n"
                "    return W + scale * (A @ B) / A.shape[1]\n"),
        Mistake("the update transposed",
                "W is (D_in, D_out) as in lesson 03, and A @ B already has that shape: add it as "
                "it is (PyTorch stores nn.Linear's weight the other way round)",
                "def merge_lora(W, A, B, scale):\n"
                "    return W + scale * (A @ B).T\n"),
    ],
)

# --------------------------------------------------------------------------- lora_parameter_count


def run_count(fn, case):
    config = bert.BertConfig(**case.data["config"])
    return fn(config, *case.args.values(), **case.kwargs)


def _count_cases(rng):
    minilm = dict(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
                  intermediate_size=1536, max_position_embeddings=512)
    base = dict(minilm, hidden_size=768, num_layers=12, intermediate_size=3072)
    small = dict(vocab_size=100, hidden_size=16, num_layers=2, num_heads=2,
                 intermediate_size=40, max_position_embeddings=8)
    return [
        Case("all-MiniLM-L6-v2, r=8, query and value", {"rank": 8}, data={"config": minilm}),
        Case("BERT-base, r=4, every attention weight", {"rank": 4},
             {"targets": ("Wq", "Wk", "Wv", "Wo")}, data={"config": base}),
        Case("a small BERT, r=2, the feed-forward weights", {"rank": 2},
             {"targets": ("W1", "W2")}, data={"config": small}),
        Case("a small BERT, r=1, W1 only (H by I)", {"rank": 1}, {"targets": ("W1",)},
             data={"config": small}),
        Case("a small BERT, r=3, every weight", {"rank": 3},
             {"targets": ("Wq", "Wk", "Wv", "Wo", "W1", "W2")}, data={"config": small}),
    ]


_COUNT = """def lora_parameter_count(config, rank, targets=LORA_TARGETS):
    H, I = config.hidden_size, config.intermediate_size
    shapes = {{"Wq": (H, H), "Wk": (H, H), "Wv": (H, H), "Wo": (H, H), "W1": {W1}, "W2": {W2}}}
    per_layer = sum({per_target} for d_in, d_out in (shapes[t] for t in targets))
    return {layers} * per_layer
"""


def _count_mistake(**parts):
    defaults = {"W1": "(H, I)", "W2": "(I, H)", "per_target": "rank * (d_in + d_out)",
                "layers": "config.num_layers"}
    return _COUNT.format(**dict(defaults, **parts))


lora_parameter_count = Exercise(
    id="17.lora_parameter_count", symbol="lora_parameter_count", points=1,
    title="the number of adapter parameters in a BERT",
    reference=lora.lora_parameter_count, cases=_count_cases, run=run_count,
    mistakes=[
        Mistake("r times the weight's size",
                "A is (D_in, r) and B is (r, D_out): r * (D_in + D_out) numbers, far fewer than "
                "r * D_in * D_out",
                _count_mistake(per_target="rank * d_in * d_out")),
        Mistake("one layer only", "every one of the num_layers layers has its own adapters",
                _count_mistake(layers="1")),
        Mistake("A only", "each adapter has two matrices, A (D_in, r) and B (r, D_out)",
                _count_mistake(per_target="rank * d_in")),
        Mistake("the feed-forward weights taken as square",
                "W1 maps H to the intermediate size I, and W2 maps I back to H",
                _count_mistake(W1="(H, H)", W2="(H, H)")),
    ],
)

# --------------------------------------------------------------------------- lora_loss_and_grads


def two_layer_loss(params, batch):
    """A two-layer tanh network's mean cross-entropy and its gradients (the cases' ``loss_fn``)."""
    X, y = batch["X"], batch["y"]
    hidden = np.tanh(X @ params["layer1.W"] + params["layer1.b"])
    logits = hidden @ params["layer2.W"] + params["layer2.b"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(y)), y].mean())
    dlogits = np.exp(log_probs)
    dlogits[np.arange(len(y)), y] -= 1
    dlogits /= len(y)
    dhidden = (dlogits @ params["layer2.W"].T) * (1 - hidden ** 2)
    return loss, {"layer1.W": X.T @ dhidden, "layer1.b": dhidden.sum(axis=0),
                  "layer2.W": hidden.T @ dlogits, "layer2.b": dlogits.sum(axis=0)}


def run_loss_and_grads(fn, case):
    params = case.data["params"]
    before = copy_arrays(params)
    result = fn(params, case.data["adapters"], case.args["scale"], two_layer_loss,
                case.data["batch"])
    return {**named_results(result, ("loss", "grads")),
            "params left as they were": unchanged(params, before)}


def _loss_cases(rng):
    def case(name, adapted, r, scale, n=6, d=5, h=4, c=3, zero_B=False):
        params = {"layer1.W": rng.normal(size=(d, h)), "layer1.b": rng.normal(size=h),
                  "layer2.W": rng.normal(size=(h, c)), "layer2.b": rng.normal(size=c)}
        adapters = {}
        for name_ in adapted:
            d_in, d_out = params[name_].shape
            adapters[name_ + ".A"] = rng.normal(size=(d_in, r))
            adapters[name_ + ".B"] = np.zeros((r, d_out)) if zero_B else rng.normal(size=(r, d_out))
        batch = {"X": rng.normal(size=(n, d)), "y": rng.integers(0, c, size=n)}
        return Case(name, {"scale": scale},
                    data={"params": params, "adapters": adapters, "batch": batch})
    return [
        case("both weights adapted, r=2, scale 0.5", ("layer1.W", "layer2.W"), 2, 0.5),
        case("layer1.W adapted, r=1, scale 2", ("layer1.W",), 1, 2.0),
        case("layer2.W adapted, r=3", ("layer2.W",), 3, 1.0),
        case("B = 0 (the start of training), both adapted", ("layer1.W", "layer2.W"), 2, 4.0,
             zero_B=True),
        case("nothing adapted: the model's own loss and gradients", (), 2, 1.0),
    ]


_LOSS = """def lora_loss_and_grads(params, adapters, scale, loss_fn, batch):
    adapted = [{name} for key in adapters if key.endswith(".A")]
    merged = {copy}
    for name in adapted:
        merged[name] = {merge}
    loss, model_grads = loss_fn({model}, batch)
    grads = {{key: g for key, g in model_grads.items() if {keep}}}
    for name in adapted:
        A, B, dW = adapters[name + ".A"], adapters[name + ".B"], model_grads[name]
        grads[name + ".A"], grads[name + ".B"] = {grads}
    return loss, grads
"""


def _loss_mistake(**parts):
    defaults = {"name": "key[:-2]", "copy": "dict(params)",
                "merge": "params[name] + scale * adapters[name + '.A'] @ adapters[name + '.B']",
                "model": "merged", "keep": "key not in adapted",
                "grads": "scale * dW @ B.T, scale * A.T @ dW"}
    return _LOSS.format(**dict(defaults, **parts))


lora_loss_and_grads = Exercise(
    id="17.lora_loss_and_grads", symbol="lora_loss_and_grads", points=2,
    title="a model's adapter gradients from its ordinary backward pass",
    reference=lora.lora_loss_and_grads, cases=_loss_cases, run=run_loss_and_grads,
    requires=("17.merge_lora", "17.lora_grads_from_weight_grad"),
    mistakes=[
        Mistake("the model run without its adapters",
                "run loss_fn on the merged weights (merge_lora for every adapted name): the "
                "adapters change the loss, and the gradients must be taken where they are",
                _loss_mistake(model="params")),
        Mistake("the frozen weights' gradients kept",
                "the adapted weights are frozen: leave their gradients out of the result, so "
                "that no optimizer trains them (return the adapters' instead)",
                _loss_mistake(keep="True")),
        Mistake("the scale left out of the merge",
                "the merged weight is W + scale * A @ B, as in merge_lora",
                _loss_mistake(merge="params[name] + adapters[name + '.A'] @ adapters[name + '.B']")),
        Mistake("the scale left out of the adapter gradients",
                "dA = scale * dW @ B.T and dB = scale * A.T @ dW (lora_grads_from_weight_grad)",
                _loss_mistake(grads="dW @ B.T, A.T @ dW")),
        Mistake("the merged weights written into params",
                "put the merged weights in a new dict (dict(params), then replace the adapted "
                "entries): params holds the frozen weights, and writing into it would add "
                "scale * A @ B once more at every training step",
                _loss_mistake(copy="params")),
        Mistake("the weight's name cut at its first dot",
                "names contain dots (\"layers.0.Wq\", here \"layer1.W\"): the adapter keys are "
                "name + \".A\" and name + \".B\", so the name is the key without its last two "
                "characters",
                _loss_mistake(name="key.split('.')[0]")),
    ],
)


LESSON = Lesson(
    id="17", slug="17_lora", title="Parameter-efficient fine-tuning (LoRA)", prelude=PRELUDE,
    exercises=[lora_forward, lora_backward, lora_grads_from_weight_grad, merge_lora,
               lora_parameter_count, lora_loss_and_grads],
)
