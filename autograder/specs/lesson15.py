"""Lesson 15 - Responsible training: exercise specs.

The exercises that take a function (``federated_averaging``'s loss, the gradient
of ``integrated_gradients``) get it from their driver: a softmax regression, and
a small fixed network whose gradient is known in closed form.
"""

import numpy as np

from solutions import responsible

from ..compare import FLOAT32
from ..spec import Case, Exercise, Lesson, Mistake, copy_arrays, not_modified, returns, unchanged

# --------------------------------------------------------------------------- per_example_linear_grads


def _linear_cases(rng):
    return [
        Case("N=4 examples, D_in=3, D_out=2", {"x": rng.normal(size=(4, 3)),
                                              "dout": rng.normal(size=(4, 2))}),
        Case("sequences: N=3, T=5 tokens", {"x": rng.normal(size=(3, 5, 4)),
                                            "dout": rng.normal(size=(3, 5, 6))}),
        Case("one example", {"x": rng.normal(size=(1, 7)), "dout": rng.normal(size=(1, 3))}),
        Case("float32, N=8", {"x": rng.normal(size=(8, 16)).astype(np.float32),
                              "dout": rng.normal(size=(8, 10)).astype(np.float32)}),
        Case("N=2, T=1", {"x": rng.normal(size=(2, 1, 3)), "dout": rng.normal(size=(2, 1, 3))}),
    ]


_LINEAR = """def per_example_linear_grads(x, dout):
    if x.ndim == 2:
        x, dout = x[:, None, :], dout[:, None, :]
    return {dW}, {db}
"""


def _linear_mistake(**parts):
    defaults = {"dW": "np.einsum('nti,nto->nio', x, dout)", "db": "dout.sum(axis=1)"}
    return _LINEAR.format(**dict(defaults, **parts))


per_example_linear_grads = Exercise(
    id="15.per_example_linear_grads", symbol="per_example_linear_grads", points=2,
    title="a linear layer's gradient, one per example",
    reference=responsible.per_example_linear_grads, cases=_linear_cases,
    run=returns("dW", "db"), tolerance=FLOAT32,
    mistakes=[
        Mistake("transposed",
                "dW[n] has the weight's shape (D_in, D_out): x[n]^T dout[n], "
                "einsum('nti,nto->nio', x, dout)",
                _linear_mistake(dW="np.einsum('nti,nto->noi', x, dout)")),
        Mistake("the first token only",
                "an example's gradient sums the contributions of all its tokens",
                _linear_mistake(dW="np.einsum('ni,no->nio', x[:, 0], dout[:, 0])",
                                db="dout[:, 0]")),
        Mistake("the batch's gradient repeated",
                "x^T dout sums the examples: the point is to keep them apart, one dW per example",
                _linear_mistake(dW="np.repeat(np.einsum('nti,nto->io', x, dout)[None], len(x), 0)")),
        Mistake("the mean over the tokens",
                "the loss sums over tokens, so does each example's gradient: sum, don't average",
                _linear_mistake(dW="np.einsum('nti,nto->nio', x, dout) / x.shape[1]",
                                db="dout.mean(axis=1)")),
    ],
)

# --------------------------------------------------------------------------- clip_per_example


def _per_example(rng, N, shapes, scale=1.0):
    return {name: rng.normal(scale=scale, size=(N,) + shape) for name, shape in shapes.items()}


def _clip_cases(rng):
    shapes = {"W": (3, 2), "b": (2,)}
    mixed = _per_example(rng, 4, shapes)
    mixed["W"][1] *= 0.01                              # example 1: well inside the ball
    mixed["b"][1] *= 0.01
    return [
        Case("N=5 examples, two parameters, C=1", {"per_example_grads": _per_example(rng, 5, shapes),
                                                   "max_norm": 1.0}),
        Case("one example small enough: left alone", {"per_example_grads": mixed,
                                                       "max_norm": 0.5}),
        Case("C large: nothing clipped", {"per_example_grads": _per_example(rng, 3, shapes),
                                          "max_norm": 100.0}),
        Case("one parameter of three axes", {"per_example_grads": _per_example(rng, 4, {"K": (2, 2, 3)}),
                                             "max_norm": 0.3}),
        Case("three parameters, large gradients", {"per_example_grads": _per_example(
            rng, 6, {"W1": (4, 3), "b1": (3,), "W2": (3, 1)}, scale=10.0), "max_norm": 2.0}),
    ]


_CLIP = """def clip_per_example(per_example_grads, max_norm):
    squares = {squares}
    norms = np.sqrt(squares)
    factor = {factor}
    return {{name: g * factor.reshape((-1,) + (1,) * (g.ndim - 1))
            for name, g in per_example_grads.items()}}
"""
_SQUARES = "sum(np.sum(g.reshape(len(g), -1) ** 2, axis=1) for g in per_example_grads.values())"


def _clip_mistake(**parts):
    defaults = {"squares": _SQUARES, "factor": "np.minimum(1.0, max_norm / (norms + 1e-6))"}
    return _CLIP.format(**dict(defaults, **parts))


clip_per_example = Exercise(
    id="15.clip_per_example", symbol="clip_per_example", points=2,
    title="each example's gradient clipped to norm C",
    reference=responsible.clip_per_example, cases=_clip_cases, tolerance=FLOAT32,
    run=not_modified("per_example_grads", result_name="the clipped gradients"),
    mistakes=[
        Mistake("every gradient scaled to norm C",
                "only gradients longer than C are shrunk: min(1, C / norm); a small one is "
                "left as it is",
                _clip_mistake(factor="max_norm / (norms + 1e-6)")),
        Mistake("each parameter clipped on its own",
                "an example's norm covers all its parameters together: sum the squares over "
                "every parameter before the square root",
                "def clip_per_example(per_example_grads, max_norm):\n"
                "    out = {}\n"
                "    for name, g in per_example_grads.items():\n"
                "        norms = np.sqrt(np.sum(g.reshape(len(g), -1) ** 2, axis=1))\n"
                "        factor = np.minimum(1.0, max_norm / (norms + 1e-6))\n"
                "        out[name] = g * factor.reshape((-1,) + (1,) * (g.ndim - 1))\n"
                "    return out\n"),
        Mistake("the whole batch clipped together",
                "DP-SGD bounds each example's influence: one norm per example, not one for "
                "the batch",
                _clip_mistake(squares="np.full(len(next(iter(per_example_grads.values()))), "
                                      "sum(np.sum(g ** 2) for g in per_example_grads.values()))")),
        Mistake("squared norm",
                "the norm is the square root of the sum of squares",
                _clip_mistake(factor="np.minimum(1.0, max_norm / (squares + 1e-6))")),
    ],
)

# --------------------------------------------------------------------------- dp_noisy_mean


def _noisy_cases(rng):
    def case(name, N, shapes, C, sigma):
        grads = _per_example(rng, N, shapes)
        return Case(name, {"clipped_grads": grads, "max_norm": C, "noise_multiplier": sigma,
                           "noise": {k: rng.normal(size=s) for k, s in shapes.items()}})
    return [
        case("N=8, C=1, sigma=1", 8, {"W": (3, 2), "b": (2,)}, 1.0, 1.0),
        case("C=0.5, sigma=2", 5, {"W": (2, 2)}, 0.5, 2.0),
        case("no noise: the plain mean", 4, {"w": (6,)}, 1.0, 0.0),
        case("one example", 1, {"W": (2, 3), "b": (3,)}, 3.0, 0.7),
        case("N=64, three parameters", 64, {"a": (4,), "b": (2, 2), "c": (1,)}, 0.1, 1.1),
    ]


_NOISY = """def dp_noisy_mean(clipped_grads, max_norm, noise_multiplier, noise):
    return {{name: {formula} for name, g in clipped_grads.items()}}
"""


def _noisy_mistake(formula):
    return _NOISY.format(formula=formula)


dp_noisy_mean = Exercise(
    id="15.dp_noisy_mean", symbol="dp_noisy_mean", points=2,
    title="the noisy mean of DP-SGD",
    reference=responsible.dp_noisy_mean, cases=_noisy_cases, tolerance=FLOAT32,
    run=not_modified("clipped_grads", "noise", result_name="the noisy mean"),
    mistakes=[
        Mistake("noise not scaled by C",
                "the noise must cover one example's largest effect on the sum, C: its standard "
                "deviation is noise_multiplier * max_norm",
                _noisy_mistake("(g.sum(axis=0) + noise_multiplier * noise[name]) / len(g)")),
        Mistake("noise added after the mean",
                "the noise is added to the sum, then everything is divided by N (Abadi et al.): "
                "added to the mean it is N times too strong",
                _noisy_mistake("g.mean(axis=0) + noise_multiplier * max_norm * noise[name]")),
        Mistake("the sum, not the mean",
                "divide the noisy sum by the number of examples N",
                _noisy_mistake("g.sum(axis=0) + noise_multiplier * max_norm * noise[name]")),
        Mistake("noise variance for standard deviation",
                "noise_multiplier * max_norm is the standard deviation: multiply z by it, "
                "not by its square",
                _noisy_mistake("(g.sum(axis=0) + (noise_multiplier * max_norm) ** 2 * noise[name])"
                               " / len(g)")),
    ],
)

# --------------------------------------------------------------------------- federated_averaging


def run_federated(fn, case):
    global_params = case.args["global_params"]
    before = copy_arrays(global_params)
    result = fn(global_params, case.args["client_data"], case.args["local_steps"],
                case.args["lr"], responsible.softmax_regression_loss_and_grads)
    return {"the new global parameters": result,
            "global_params left as they were": unchanged(global_params, before)}


def _federated_cases(rng):
    def client(n, D=4, C=3, classes=None):
        classes = range(C) if classes is None else classes
        return (rng.normal(size=(n, D)), rng.choice(list(classes), size=n))

    def params(D=4, C=3):
        return {"W": rng.normal(scale=0.1, size=(D, C)), "b": np.zeros(C)}
    return [
        Case("3 clients of 10, 20 and 5 examples, 3 local steps",
             {"global_params": params(), "client_data": [client(10), client(20), client(5)],
              "local_steps": 3, "lr": 0.5}),
        Case("one local step", {"global_params": params(), "client_data": [client(8), client(30)],
                                "local_steps": 1, "lr": 1.0}),
        Case("non-IID: each client sees one class",
             {"global_params": params(), "client_data": [client(12, classes=[c]) for c in range(3)],
              "local_steps": 5, "lr": 0.3}),
        Case("one client", {"global_params": params(), "client_data": [client(15)],
                            "local_steps": 4, "lr": 0.5}),
        Case("5 clients, 10 local steps, D=6, C=4",
             {"global_params": params(6, 4),
              "client_data": [client(int(n), 6, 4) for n in rng.integers(3, 25, size=5)],
              "local_steps": 10, "lr": 0.2}),
    ]


_FEDERATED = """def federated_averaging(global_params, client_data, local_steps, lr, loss_and_grads):
    sizes = [len(y) for _, y in client_data]
    results = []
    params = {{name: value.copy() for name, value in global_params.items()}}
    for X, y in client_data:
        {start}
        for _ in range({steps}):
            _, grads = loss_and_grads(params, X, y)
            params = {{name: params[name] - lr * grads[name] for name in params}}
        results.append(params)
    return {{name: {average} for name in global_params}}
"""


def _federated_mistake(**parts):
    defaults = {"start": "params = {name: value.copy() for name, value in global_params.items()}",
                "steps": "local_steps",
                "average": "sum(n * p[name] for n, p in zip(sizes, results)) / sum(sizes)"}
    return _FEDERATED.format(**dict(defaults, **parts))


federated_averaging = Exercise(
    id="15.federated_averaging", symbol="federated_averaging", points=3,
    title="one round of FedAvg",
    reference=responsible.federated_averaging, cases=_federated_cases, run=run_federated,
    tolerance=FLOAT32,
    mistakes=[
        Mistake("every client weighted alike",
                "a client with more examples counts more: weight each client's parameters by "
                "its number of examples, divide by the total",
                _federated_mistake(average="sum(p[name] for p in results) / len(results)")),
        Mistake("clients one after another",
                "every client starts from the *global* parameters of this round, not from the "
                "previous client's result",
                _federated_mistake(start="pass")),
        Mistake("one local step whatever local_steps",
                "each client takes local_steps steps of gradient descent before sending its "
                "parameters back",
                _federated_mistake(steps="1")),
        Mistake("the global parameters updated in place",
                "start each client from its own copy of the arrays ({name: value.copy() ...}): "
                "dict(global_params) copies the dict but shares the arrays, so `-=` changes the "
                "caller's global parameters",
                "def federated_averaging(global_params, client_data, local_steps, lr, "
                "loss_and_grads):\n"
                "    sizes = [len(y) for _, y in client_data]\n"
                "    start = {name: value.copy() for name, value in global_params.items()}\n"
                "    results = []\n"
                "    for X, y in client_data:\n"
                "        params = global_params\n"
                "        for name in params:\n"
                "            params[name][...] = start[name]\n"
                "        for _ in range(local_steps):\n"
                "            _, grads = loss_and_grads(params, X, y)\n"
                "            for name in params:\n"
                "                params[name] -= lr * grads[name]\n"
                "        results.append({name: value.copy() for name, value in params.items()})\n"
                "    return {name: sum(n * p[name] for n, p in zip(sizes, results)) / sum(sizes)\n"
                "            for name in global_params}\n"),
        Mistake("the clients averaged after every step (FedSGD)",
                "each client takes all its local_steps alone, from the global parameters, and "
                "only then are the clients' parameters averaged, once per round",
                "def federated_averaging(global_params, client_data, local_steps, lr, "
                "loss_and_grads):\n"
                "    sizes = [len(y) for _, y in client_data]\n"
                "    params = {name: value.copy() for name, value in global_params.items()}\n"
                "    for _ in range(local_steps):\n"
                "        results = []\n"
                "        for X, y in client_data:\n"
                "            _, grads = loss_and_grads(params, X, y)\n"
                "            results.append({name: params[name] - lr * grads[name] "
                "for name in params})\n"
                "        params = {name: sum(n * p[name] for n, p in zip(sizes, results)) "
                "/ sum(sizes) for name in params}\n"
                "    return params\n"),
    ],
)

# --------------------------------------------------------------------------- weat_effect_size


def _weat_cases(rng):
    D = 6
    direction = rng.normal(size=D)

    def near(n, sign, spread=1.0):
        return sign * direction + spread * rng.normal(size=(n, D))
    return [
        Case("8 targets per set, 8 attributes per set, an association",
             {"X": near(8, 1), "Y": near(8, -1), "A": near(8, 1), "B": near(8, -1)}),
        Case("no association: all random", {"X": rng.normal(size=(6, D)), "Y": rng.normal(size=(6, D)),
                                            "A": rng.normal(size=(6, D)), "B": rng.normal(size=(6, D))}),
        Case("sets of different sizes", {"X": near(5, 1), "Y": near(9, -1), "A": near(4, 1),
                                         "B": near(7, -1, 2.0)}),
        Case("the association the other way: a negative effect size",
             {"X": near(7, -1), "Y": near(7, 1), "A": near(6, 1), "B": near(6, -1)}),
        Case("vectors of very different lengths (cosine, not dot product)",
             {"X": near(6, 1) * rng.uniform(0.1, 10, size=(6, 1)),
              "Y": near(6, -1) * rng.uniform(0.1, 10, size=(6, 1)),
              "A": near(5, 1) * 50.0, "B": near(5, -1) * 0.02}),
        Case("the reverse association: negative", {"X": near(7, -1), "Y": near(7, 1),
                                                   "A": near(7, 1), "B": near(7, -1)}),
    ]


_WEAT = """def weat_effect_size(X, Y, A, B):
    def unit(v):
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    {normalize}

    def scores(W):
        {normalize_w}
        return {score}

    s_x, s_y = scores(X), scores(Y)
    return float({numerator} / {spread})
"""


def _weat_mistake(**parts):
    defaults = {"normalize": "A, B = unit(A), unit(B)", "normalize_w": "W = unit(W)",
                "score": "(W @ A.T).mean(axis=1) - (W @ B.T).mean(axis=1)",
                "numerator": "(s_x.mean() - s_y.mean())", "ddof": "1"}
    defaults.update(parts)
    defaults.setdefault("spread", "np.std(np.concatenate([s_x, s_y]), ddof={})".format(
        defaults["ddof"]))
    return _WEAT.format(**defaults)


weat_effect_size = Exercise(
    id="15.weat_effect_size", symbol="weat_effect_size", points=2,
    title="the WEAT effect size",
    reference=responsible.weat_effect_size, cases=_weat_cases,
    mistakes=[
        Mistake("the population standard deviation",
                "the effect size divides by the sample standard deviation of the scores, "
                "np.std(..., ddof=1)",
                _weat_mistake(ddof="0")),
        Mistake("dot products, not cosines",
                "compare directions: normalise every vector (cosine similarity), or long "
                "vectors dominate",
                _weat_mistake(normalize="pass", normalize_w="pass")),
        Mistake("sums, not means",
                "s(w) is a difference of *mean* similarities: with sets of different sizes, "
                "sums favour the larger set",
                _weat_mistake(score="(W @ A.T).sum(axis=1) - (W @ B.T).sum(axis=1)",
                              numerator="(s_x.sum() - s_y.sum())")),
        Mistake("the spread of X only",
                "the standard deviation is over all the targets, X and Y together",
                _weat_mistake(spread="np.std(s_x, ddof=1)")),
        Mistake("the two groups' pooled standard deviation",
                "divide by the standard deviation of all the scores of X and Y taken as one "
                "sample, np.std(np.concatenate([s_x, s_y]), ddof=1), not by a pooled or "
                "averaged spread of the two groups",
                _weat_mistake(spread="np.sqrt((np.var(s_x, ddof=1) + np.var(s_y, ddof=1)) / 2)")),
        Mistake("the cosine with the mean attribute vector",
                "s(w) is the mean of the cosines of w with each attribute word, not the cosine "
                "with their mean vector",
                _weat_mistake(score="unit(W) @ unit(A.mean(axis=0, keepdims=True)).T[:, 0] - "
                                    "unit(W) @ unit(B.mean(axis=0, keepdims=True)).T[:, 0]")),
    ],
)

# --------------------------------------------------------------------------- integrated_gradients


def _network(case):
    """The score f(x) = sum(tanh(x W1) * w2) + x . v, and its gradient, from the case's data."""
    W1, w2, v = (np.asarray(case.data[k]) for k in ("W1", "w2", "v"))

    def grad_fn(x):
        hidden = np.tanh(x @ W1)
        return ((1 - hidden ** 2) * w2) @ W1.T + v
    return grad_fn


def run_ig(fn, case):
    return fn(_network(case), case.args["x"], case.args["baseline"], **case.kwargs)


def _ig_cases(rng):
    def case(name, D, H=5, baseline=None, **kwargs):
        x = rng.normal(size=D)
        return Case(name, {"x": x, "baseline": np.zeros(D) if baseline is None else baseline(x)},
                    kwargs, {"W1": rng.normal(size=(D, H)), "w2": rng.normal(size=H),
                             "v": rng.normal(size=D)})
    return [
        case("D=6 features, 50 steps (the default)", 6),
        case("steps=4: the midpoints", 5, steps=4),
        case("steps=1", 3, steps=1),
        case("a baseline that is not zero", 4, baseline=lambda x: np.full(len(x), 0.5), steps=20),
        case("baseline = x: all zero", 3, baseline=lambda x: x.copy(), steps=10),
        case("D=20, 200 steps", 20, H=8, steps=200),
        case("a random baseline, steps=8", 5, baseline=lambda x: rng.normal(size=len(x)), steps=8),
        case("a negative baseline, the default steps", 4, baseline=lambda x: np.full(len(x), -1.0)),
    ]


_IG = """def integrated_gradients(grad_fn, x, baseline, steps=50):
    total = np.zeros_like(x, dtype=float)
    for k in range(steps):
        total += grad_fn(baseline + {alpha} * (x - baseline))
    return {result}
"""


def _ig_mistake(**parts):
    defaults = {"alpha": "(k + 0.5) / steps", "result": "(x - baseline) * total / steps"}
    return _IG.format(**dict(defaults, **parts))


integrated_gradients = Exercise(
    id="15.integrated_gradients", symbol="integrated_gradients", points=2,
    title="integrated gradients along the straight path",
    reference=responsible.integrated_gradients, cases=_ig_cases, run=run_ig,
    mistakes=[
        Mistake("left end points",
                "evaluate the gradient at the midpoints of the pieces, alpha = (k + 1/2) / steps",
                _ig_mistake(alpha="k / steps")),
        Mistake("right end points",
                "evaluate the gradient at the midpoints of the pieces, alpha = (k + 1/2) / steps",
                _ig_mistake(alpha="(k + 1) / steps")),
        Mistake("not multiplied by x - baseline",
                "the average gradient is a slope; multiplied by the distance travelled, x - "
                "baseline, it becomes the part of f(x) - f(baseline) each feature accounts for",
                _ig_mistake(result="total / steps")),
        Mistake("steps points from the baseline to x, both ends included",
                "np.linspace(0, 1, steps) puts points on both ends: take the midpoints of "
                "steps equal pieces, alpha = (k + 1/2) / steps",
                _ig_mistake(alpha="np.linspace(0, 1, steps)[k]")),
        Mistake("trapezoid rule",
                "the trapezoid rule (steps + 1 points, the two ends weighted 1/2) is another "
                "approximation of the same integral; this exercise asks for the midpoint rule: "
                "the gradients at alpha = (k + 1/2) / steps, k = 0 .. steps - 1, averaged",
                "def integrated_gradients(grad_fn, x, baseline, steps=50):\n"
                "    total = 0.5 * (grad_fn(baseline) + grad_fn(x))\n"
                "    for k in range(1, steps):\n"
                "        total = total + grad_fn(baseline + k / steps * (x - baseline))\n"
                "    return (x - baseline) * total / steps\n"),
        Mistake("gradient times input",
                "gradient x input uses the gradient at x alone; integrated gradients average it "
                "along the path from the baseline",
                "def integrated_gradients(grad_fn, x, baseline, steps=50):\n"
                "    return (x - baseline) * grad_fn(x)\n"),
    ],
)


LESSON = Lesson(
    id="15", slug="15_responsible", title="Responsible training",
    exercises=[per_example_linear_grads, clip_per_example, dp_noisy_mean, federated_averaging,
               weat_effect_size, integrated_gradients],
)
