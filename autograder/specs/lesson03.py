"""Lesson 03 - Layers and backprop: exercise specs.

Forward exercises are graded on ``{"out": ..., "cache": ...}``: the cache is part
of the documented contract, because every backward exercise is graded on the
*reference* forward's cache. Backward exercises are graded against central
differences of the reference forward (``gradients_through``), their gradients
named ("dx", "dW", ...) so that feedback says which one is wrong.
"""

import numpy as np

from solutions import layers

from ..compare import GRADIENT, _describe_type
from ..gradcheck import gradients_through, numerical_gradient
from ..spec import Case, Exercise, Lesson, Mistake, backward_driver, call, dtypes_of, watch

PRELUDE = ("import math\n\nimport numpy as np\nfrom scipy.special import erf\n\n"
           "from solutions.layers import array_module\n")

# --------------------------------------------------------------------------- drivers


def run_forward(forward, case):
    """Call a ``*_forward`` function; return its pair as ``{"out", "cache"}``."""
    result = call(forward, case)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError("a forward function returns the pair (out, cache); got "
                        + _describe_type(result))
    out, cache = result
    return {"out": out, "cache": cache}


def _named(value, names):
    if len(names) == 1:
        return {names[0]: value}
    if not (isinstance(value, (tuple, list)) and len(value) == len(names)):
        raise TypeError(f"return the tuple ({', '.join(names)}); got {_describe_type(value)}")
    return dict(zip(names, value))


def backward_exercise(forward, wrt, names, backward=None):
    """``run`` and ``expected`` for ``backward(dout, cache)``: gradients named ``names``.

    The cache comes from the reference ``forward`` on the case's arguments; the
    expected gradients are central differences of ``sum(forward(...)[0] * dout)``
    with respect to the arguments ``wrt``. A case marked ``float32`` checks the
    gradients' dtypes against those of the reference ``backward`` instead.
    """
    base_run = backward_driver(forward)
    base_expected = gradients_through(forward, wrt)

    def run(fn, case):
        gradients = _named(base_run(fn, case), names)
        return dtypes_of(gradients) if case.data.get("float32") else gradients

    def expected(case):
        if case.data.get("float32"):
            return run(backward, case)
        return _named(base_expected(case), names)

    return run, expected


def _away_from_zero(x, gap=1e-3):
    """Move entries closer to 0 than ``gap`` away from it (central differences
    straddling a kink would be wrong there)."""
    x = x.copy()
    x[np.abs(x) < gap] += 2 * gap
    return x

# --------------------------------------------------------------------------- linear


def _linear_cases(rng):
    def case(name, lead, d_in, d_out):
        return Case(name, {"x": rng.normal(size=lead + (d_in,)),
                           "W": rng.normal(size=(d_in, d_out)), "b": rng.normal(size=d_out)},
                    data={"dout": rng.normal(size=lead + (d_out,))})
    return [
        case("square W: N=3, D_in=D_out=4", (3,), 4, 4),
        case("N=5, D_in=3, D_out=6", (5,), 3, 6),
        case("sequences (B, T, D_in) = (2, 3, 4), D_out=5", (2, 3), 4, 5),
        case("batch of one", (1,), 6, 2),
        case("a single vector x of shape (D_in,)", (), 3, 4),
    ]


linear_forward = Exercise(
    id="03.linear_forward", symbol="linear_forward", points=1,
    title="affine layer forward, any number of leading axes",
    reference=layers.linear_forward, cases=_linear_cases, run=run_forward,
    mistakes=[
        Mistake("W transposed",
                "W has shape (D_in, D_out), so out = x @ W (PyTorch's nn.Linear stores the "
                "transpose and computes x @ W.T; here we do not)",
                "def linear_forward(x, W, b):\n"
                "    return x @ W.T + b, (x, W)\n"),
        Mistake("bias missing", "add the bias b to every output row: out = x @ W + b",
                "def linear_forward(x, W, b):\n"
                "    return x @ W, (x, W)\n"),
        Mistake("leading axes flattened",
                "keep x's leading axes: x @ W works for any number of them, so out has shape "
                "(..., D_out); do not reshape x to 2-D (or reshape the result back)",
                "def linear_forward(x, W, b):\n"
                "    return x.reshape(-1, W.shape[0]) @ W + b, (x, W)\n"),
    ],
)

_linear_run, _linear_expected = backward_exercise(layers.linear_forward, ("x", "W", "b"),
                                                  ("dx", "dW", "db"))

linear_backward = Exercise(
    id="03.linear_backward", symbol="linear_backward", points=2,
    title="affine layer backward: dx, dW, db",
    reference=layers.linear_backward, cases=_linear_cases,
    run=_linear_run, expected=_linear_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("dx with W instead of W.T",
                "dx = dout @ W.T: each input feature receives the gradients of the outputs it "
                "feeds, weighted by its row of W",
                "def linear_backward(dout, cache):\n"
                "    x, W = cache\n"
                "    x2, d2 = x.reshape(-1, W.shape[0]), dout.reshape(-1, W.shape[1])\n"
                "    return dout @ W, x2.T @ d2, d2.sum(axis=0)\n"),
        Mistake("dW transposed", "dW must have W's shape (D_in, D_out): dW = x.T @ dout",
                "def linear_backward(dout, cache):\n"
                "    x, W = cache\n"
                "    x2, d2 = x.reshape(-1, W.shape[0]), dout.reshape(-1, W.shape[1])\n"
                "    return dout @ W.T, d2.T @ x2, d2.sum(axis=0)\n"),
        Mistake("db summed over the first axis only",
                "db sums over *every* leading axis (every sample and every position): reshape "
                "dout to (-1, D_out) first, or sum over all axes but the last",
                "def linear_backward(dout, cache):\n"
                "    x, W = cache\n"
                "    x2, d2 = x.reshape(-1, W.shape[0]), dout.reshape(-1, W.shape[1])\n"
                "    return dout @ W.T, x2.T @ d2, dout.sum(axis=0)\n"),
        Mistake("dW averaged",
                "dout already carries the loss's 1/N (from the mean in the loss): dW and db are "
                "plain sums over the rows, not means",
                "def linear_backward(dout, cache):\n"
                "    x, W = cache\n"
                "    x2, d2 = x.reshape(-1, W.shape[0]), dout.reshape(-1, W.shape[1])\n"
                "    return dout @ W.T, x2.T @ d2 / len(x2), d2.mean(axis=0)\n"),
    ],
)

# --------------------------------------------------------------------------- ReLU


def _relu_cases(rng):
    with_zeros = rng.normal(size=(3, 4))
    with_zeros[0, :2] = 0.0
    with_zeros[2, 3] = -0.0

    def case(name, x):
        return Case(name, {"x": x}, data={"dout": rng.normal(size=x.shape)})
    return [
        case("3 x 5", _away_from_zero(rng.normal(size=(3, 5)))),
        case("(B, T, D) = (2, 3, 4)", _away_from_zero(rng.normal(size=(2, 3, 4)))),
        case("some entries exactly 0", with_zeros),
        case("all negative", -rng.uniform(0.1, 2, size=(2, 3))),
        case("huge values (1e300)", np.array([[1e300, -1e300, 2.5, -0.5]])),
        case("float32 in, float32 out", rng.normal(size=(2, 3)).astype(np.float32)),
    ]


relu_forward = Exercise(
    id="03.relu_forward", symbol="relu_forward", points=1,
    title="ReLU forward",
    reference=layers.relu_forward, cases=_relu_cases, run=run_forward,
    mistakes=[
        Mistake("np.max instead of np.maximum",
                "np.max(x, 0) is a reduction (the largest entry along axis 0); the entry-by-entry "
                "maximum with 0 is np.maximum(x, 0)",
                "def relu_forward(x):\n"
                "    return np.max(x, 0), x\n"),
        Mistake("leaky", "ReLU sets negative entries to 0 (a leaky ReLU keeps 0.01 x)",
                "def relu_forward(x):\n"
                "    return np.where(x > 0, x, 0.01 * x), x\n"),
        Mistake("mask as the cache",
                "the cache is x itself (relu_backward receives it and compares it with 0)",
                "def relu_forward(x):\n"
                "    return x * (x > 0), x > 0\n"),
    ],
)


def _relu_expected(case):
    dx = gradients_through(layers.relu_forward, "x")(case)
    dx[case.args["x"] == 0] = 0.0          # the convention at the kink: derivative 0, as PyTorch
    return {"dx": dx}


relu_backward = Exercise(
    id="03.relu_backward", symbol="relu_backward", points=1,
    title="ReLU backward",
    reference=layers.relu_backward, cases=lambda rng: _relu_cases(rng)[:4],
    run=backward_exercise(layers.relu_forward, "x", ("dx",))[0], expected=_relu_expected,
    tolerance=GRADIENT,
    mistakes=[
        Mistake("ReLU of the gradient",
                "the mask comes from the *input*: dx = dout where x > 0, else 0; applying ReLU "
                "to dout keeps the wrong entries",
                "def relu_backward(dout, cache):\n"
                "    return np.maximum(dout, 0)\n"),
        Mistake("dout forgotten",
                "that is the local derivative (1 where x > 0); multiply it by dout (chain rule)",
                "def relu_backward(dout, cache):\n"
                "    return (cache > 0).astype(float)\n"),
        Mistake("gradient 1 at x = 0",
                "use x > 0, not x >= 0: at exactly 0 the derivative is taken as 0 (as PyTorch)",
                "def relu_backward(dout, cache):\n"
                "    return dout * (cache >= 0)\n"),
    ],
)

# --------------------------------------------------------------------------- GELU


def _gelu_cases(rng):
    def case(name, x):
        return Case(name, {"x": x}, data={"dout": rng.normal(size=x.shape)})
    return [
        case("3 x 5", rng.normal(scale=2, size=(3, 5))),
        case("(B, T, D) = (2, 3, 4)", rng.normal(size=(2, 3, 4))),
        case("exact zeros and small values", np.array([[0.0, -0.0, 1e-8, -1e-8, 0.3, -0.3]])),
        case("large |x| (up to 30)", np.array([-30.0, -12.0, -5.0, 5.0, 12.0, 30.0])),
        case("batch of one", rng.normal(size=(1, 7))),
    ]


def _gelu_forward_cases(rng):
    return _gelu_cases(rng) + [
        Case("huge |x| (1e3)", {"x": np.array([-1000.0, -300.0, 300.0, 1000.0])}),
        Case("float32 in, float32 out", {"x": rng.normal(size=(3, 4)).astype(np.float32)}),
    ]


gelu_forward = Exercise(
    id="03.gelu_forward", symbol="gelu_forward", points=1,
    title="GELU forward, exact (erf)",
    reference=layers.gelu_forward, cases=_gelu_forward_cases, run=run_forward,
    mistakes=[
        Mistake("tanh form where erf is asked",
                "that is the tanh approximation (off by up to about 1e-3); this exercise wants "
                "the exact GELU, 0.5 * x * (1 + erf(x / sqrt(2)))",
                "def gelu_forward(x):\n"
                "    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)\n"
                "    cdf = 0.5 * (1 + np.tanh(u))\n"
                "    return x * cdf, (x, cdf)\n"),
        Mistake("erf(x) without the 1/sqrt(2)",
                "the normal CDF is 0.5 * (1 + erf(x / sqrt(2))): divide x by sqrt(2) inside erf",
                "def gelu_forward(x):\n"
                "    cdf = 0.5 * (1 + erf(x))\n"
                "    return x * cdf, (x, cdf)\n"),
        Mistake("sigmoid approximation",
                "x * sigmoid(1.702 x) is another approximation; use the exact "
                "0.5 * x * (1 + erf(x / sqrt(2)))",
                "def gelu_forward(x):\n"
                "    cdf = 1 / (1 + np.exp(-1.702 * x))\n"
                "    return x * cdf, (x, cdf)\n"),
        Mistake("factor 0.5 missing", "GELU is x * Phi(x) with Phi(x) = 0.5 * (1 + erf(x / sqrt(2)))",
                "def gelu_forward(x):\n"
                "    cdf = 1 + erf(x / math.sqrt(2))\n"
                "    return x * cdf, (x, cdf)\n"),
        Mistake("erf(x / sqrt(2)) cached instead of Phi(x)",
                "the cache holds the normal CDF itself, Phi(x) = 0.5 * (1 + erf(x / sqrt(2))), "
                "not the bare erf value: gelu_backward uses it as Phi(x)",
                "def gelu_forward(x):\n"
                "    e = erf(x / math.sqrt(2))\n"
                "    return 0.5 * x * (1 + e), (x, e)\n"),
        Mistake("x alone as the cache",
                "the cache is the pair (x, Phi(x)): keep Phi(x) = 0.5 * (1 + erf(x / sqrt(2))) "
                "for gelu_backward, so that it need not call erf again",
                "def gelu_forward(x):\n"
                "    return 0.5 * x * (1 + erf(x / math.sqrt(2))), x\n"),
    ],
)

_gelu_run, _gelu_expected = backward_exercise(layers.gelu_forward, "x", ("dx",))

gelu_backward = Exercise(
    id="03.gelu_backward", symbol="gelu_backward", points=2,
    title="GELU backward, exact (erf)",
    reference=layers.gelu_backward, cases=_gelu_cases,
    run=_gelu_run, expected=_gelu_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("x * phi(x) term missing",
                "GELU is a product, x * Phi(x): its derivative is Phi(x) + x * phi(x), with "
                "phi(x) = exp(-x**2 / 2) / sqrt(2 pi)",
                "def gelu_backward(dout, cache):\n"
                "    x, cdf = cache\n"
                "    return dout * cdf\n"),
        Mistake("tanh form where erf is asked",
                "that is the derivative of the tanh approximation; differentiate the exact "
                "x * Phi(x): Phi(x) + x * phi(x)",
                "def gelu_backward(dout, cache):\n"
                "    x, _ = cache\n"
                "    t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))\n"
                "    du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x ** 2)\n"
                "    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * du)\n"),
        Mistake("density not normalised",
                "the normal density is phi(x) = exp(-x**2 / 2) / sqrt(2 pi): the 1/sqrt(2 pi) "
                "is missing",
                "def gelu_backward(dout, cache):\n"
                "    x, cdf = cache\n"
                "    return dout * (cdf + x * np.exp(-x ** 2 / 2))\n"),
        Mistake("dout forgotten", "that is the local derivative; multiply it by dout (chain rule)",
                "def gelu_backward(dout, cache):\n"
                "    x, cdf = cache\n"
                "    pdf = np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)\n"
                "    return cdf + x * pdf\n"),
        Mistake("Phi recomputed with erf(x), without the 1/sqrt(2)",
                "Phi(x) is 0.5 * (1 + erf(x / sqrt(2))), and it is already in the cache, "
                "(x, Phi(x)): take it from there rather than calling erf again",
                "def gelu_backward(dout, cache):\n"
                "    x, _ = cache\n"
                "    cdf = 0.5 * (1 + erf(x))\n"
                "    pdf = np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)\n"
                "    return dout * (cdf + x * pdf)\n"),
        Mistake("cache unpacked in the wrong order",
                "gelu_forward's cache is (x, Phi(x)), in that order: x, cdf = cache",
                "def gelu_backward(dout, cache):\n"
                "    cdf, x = cache\n"
                "    pdf = np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)\n"
                "    return dout * (cdf + x * pdf)\n"),
    ],
)

gelu_tanh_forward = Exercise(
    id="03.gelu_tanh_forward", symbol="gelu_tanh_forward", points=1,
    title="GELU forward, tanh approximation",
    reference=layers.gelu_tanh_forward, cases=_gelu_forward_cases, run=run_forward,
    mistakes=[
        Mistake("erf form where tanh is asked",
                "that is the exact GELU; this exercise wants the tanh approximation "
                "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))",
                "def gelu_tanh_forward(x):\n"
                "    return 0.5 * x * (1 + erf(x / math.sqrt(2))), x\n"),
        Mistake("cubic term missing",
                "the argument of tanh is sqrt(2 / pi) * (x + 0.044715 * x**3)",
                "def gelu_tanh_forward(x):\n"
                "    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * x)), x\n"),
        Mistake("sqrt(2 pi) instead of sqrt(2 / pi)",
                "the constant is sqrt(2 / pi), about 0.798, not sqrt(2 * pi)",
                "def gelu_tanh_forward(x):\n"
                "    u = math.sqrt(2 * math.pi) * (x + 0.044715 * x ** 3)\n"
                "    return 0.5 * x * (1 + np.tanh(u)), x\n"),
    ],
)

_gelu_tanh_run, _gelu_tanh_expected = backward_exercise(layers.gelu_tanh_forward, "x", ("dx",))
_GELU_TANH_BACKWARD = """def gelu_tanh_backward(dout, cache):
    x = cache
    t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
    du = {du}
    return {result}
"""


def _gelu_tanh_mistake(du="math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x ** 2)",
                       result="dout * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * du)"):
    return _GELU_TANH_BACKWARD.format(du=du, result=result)


gelu_tanh_backward = Exercise(
    id="03.gelu_tanh_backward", symbol="gelu_tanh_backward", points=2,
    title="GELU backward, tanh approximation",
    reference=layers.gelu_tanh_backward, cases=_gelu_cases,
    run=_gelu_tanh_run, expected=_gelu_tanh_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("tanh' = 1 - tanh",
                "the derivative of tanh(u) is 1 - tanh(u)**2",
                _gelu_tanh_mistake(result="dout * (0.5 * (1 + t) + 0.5 * x * (1 - t) * du)")),
        Mistake("chain rule through u missing",
                "tanh's argument is u(x) = sqrt(2 / pi) * (x + 0.044715 x**3): multiply by "
                "du/dx = sqrt(2 / pi) * (1 + 3 * 0.044715 x**2)",
                _gelu_tanh_mistake(du="1.0")),
        Mistake("product rule half done",
                "0.5 x (1 + tanh u) is a product: its derivative has the term 0.5 (1 + tanh u) "
                "as well as 0.5 x (1 - tanh(u)**2) du/dx",
                _gelu_tanh_mistake(result="dout * 0.5 * x * (1 - t ** 2) * du")),
        Mistake("erf form where tanh is asked",
                "that is the derivative of the exact GELU; differentiate the tanh approximation",
                "def gelu_tanh_backward(dout, cache):\n"
                "    x = cache\n"
                "    pdf = np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)\n"
                "    return dout * (0.5 * (1 + erf(x / math.sqrt(2))) + x * pdf)\n"),
    ],
)

# --------------------------------------------------------------------------- dropout
# The generator is built by the driver from case.data["seed"]: the same seed, the same mask.


def run_dropout(forward, case):
    rng = np.random.default_rng(int(case.data["seed"]))
    x, p, training = case.args.values()
    state = rng.bit_generator.state
    result = forward(x, p, training, rng)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError("dropout_forward returns the pair (out, cache); got "
                        + _describe_type(result))
    out, cache = result
    if not bool(training) or float(p) == 0:
        # Nothing is dropped: the cache must be None. Described in words on both sides
        # (an array compared with None would say little). Nor may the generator move: the
        # masks drawn after this layer would all change.
        cache = "None" if cache is None else "not None but " + _describe_type(cache)
        drew = "yes" if rng.bit_generator.state != state else "no"
        return {"out": out, "cache": cache, "random numbers drawn from rng": drew}
    if not case.data.get("statistics"):
        return {"out": out, "cache": cache}
    out = np.asarray(out, dtype=np.float64)
    # Two numbers that any correct inverted dropout gets right, whatever its mask.
    return {"fraction of entries kept, rounded (about 1 - p)": round(float(np.mean(out != 0)), 2),
            "mean of the output / mean of the input, rounded (about 1)":
                round(float(out.mean() / x.mean()), 2)}


def _dropout_cases(rng):
    def case(name, shape, p, training, **data):
        return Case(name, {"x": rng.normal(size=shape), "p": p, "training": training},
                    data={"seed": int(rng.integers(2 ** 31)), "dout": rng.normal(size=shape), **data})
    return [
        case("training, p=0.5, 4 x 6", (4, 6), 0.5, True),
        case("training, p=0.1, (B, T, D) = (2, 3, 5)", (2, 3, 5), 0.1, True),
        case("training, p=0.9", (3, 8), 0.9, True),
        case("evaluation (training=False), p=0.5", (3, 4), 0.5, False),
        case("training with p=0", (2, 5), 0.0, True),
    ]


def _dropout_forward_cases(rng):
    stats = Case("statistics over 200,000 ones, p=0.3",
                 {"x": np.ones((400, 500)), "p": 0.3, "training": True},
                 data={"seed": int(rng.integers(2 ** 31)), "statistics": True})
    # seed 1 keeps all three entries: training still returns the scaled mask, not None
    nothing_dropped = Case("training, p=0.1, nothing happens to be dropped",
                           {"x": rng.normal(size=3), "p": 0.1, "training": True},
                           data={"seed": 1})
    float32 = Case("float32 in, float32 out and cache", {"x": rng.normal(size=(3, 4))
                                                         .astype(np.float32), "p": 0.25,
                                                         "training": True},
                   data={"seed": int(rng.integers(2 ** 31))})
    return _dropout_cases(rng) + [stats, nothing_dropped, float32]


dropout_forward = Exercise(
    id="03.dropout_forward", symbol="dropout_forward", points=2,
    title="inverted dropout forward (train and eval)",
    reference=layers.dropout_forward, cases=_dropout_forward_cases, run=run_dropout,
    mistakes=[
        Mistake("a mask drawn in evaluation",
                "when nothing is dropped (evaluation, or p = 0) draw nothing: every mask drawn "
                "after this layer from the same generator would change",
                "def dropout_forward(x, p, training, rng):\n"
                "    keep = rng.random(x.shape) >= p\n"
                "    if not training or p == 0:\n"
                "        return x, None\n"
                "    return x * keep / (1 - p), keep / (1 - p)\n"),
        Mistake("not scaled by 1/(1-p)",
                "inverted dropout divides the kept entries by 1 - p, so the expected output "
                "equals the input and nothing changes at test time",
                "def dropout_forward(x, p, training, rng):\n"
                "    if not training or p == 0:\n"
                "        return x, None\n"
                "    mask = (rng.random(x.shape) >= p).astype(float)\n"
                "    return x * mask, mask\n"),
        Mistake("p kept instead of dropped",
                "p is the probability of *dropping* an entry: keep = rng.random(x.shape) >= p",
                "def dropout_forward(x, p, training, rng):\n"
                "    if not training or p == 0:\n"
                "        return x, None\n"
                "    mask = (rng.random(x.shape) < p) / (1 - p)\n"
                "    return x * mask, mask\n"),
        Mistake("active in evaluation",
                "dropout acts only while training: with training=False return x unchanged "
                "(and the cache None)",
                "def dropout_forward(x, p, training, rng):\n"
                "    if p == 0:\n"
                "        return x, None\n"
                "    mask = (rng.random(x.shape) >= p) / (1 - p)\n"
                "    return x * mask, mask\n"),
        Mistake("another random draw",
                "draw the mask exactly as keep = rng.random(x.shape) >= p (one call): with "
                "another draw the statistics are right but the mask is not the one graded",
                "def dropout_forward(x, p, training, rng):\n"
                "    if not training or p == 0:\n"
                "        return x, None\n"
                "    mask = rng.binomial(1, 1 - p, size=x.shape) / (1 - p)\n"
                "    return x * mask, mask\n"),
        Mistake("0/1 mask as the cache",
                "the cache is the *scaled* mask keep / (1 - p): it is what dropout_backward "
                "multiplies dout by",
                "def dropout_forward(x, p, training, rng):\n"
                "    if not training or p == 0:\n"
                "        return x, None\n"
                "    keep = rng.random(x.shape) >= p\n"
                "    return x * keep / (1 - p), keep.astype(float)\n"),
    ],
)


def run_dropout_backward(backward, case):
    rng = np.random.default_rng(int(case.data["seed"]))
    _, cache = layers.dropout_forward(*case.args.values(), rng)
    return {"dx": backward(case.data["dout"], watch("cache", cache))}


def _dropout_expected(case):
    x, p, training = case.args.values()

    def f(value):
        rng = np.random.default_rng(int(case.data["seed"]))      # the same mask every time
        out, _ = layers.dropout_forward(value, p, training, rng)
        return float(np.sum(out * case.data["dout"]))
    return {"dx": numerical_gradient(f, x)}


dropout_backward = Exercise(
    id="03.dropout_backward", symbol="dropout_backward", points=1,
    title="inverted dropout backward",
    reference=layers.dropout_backward, cases=_dropout_cases,
    run=run_dropout_backward, expected=_dropout_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("gradient passed through unchanged",
                "a dropped entry did not reach the output, so its gradient is 0, and a kept "
                "one was scaled by 1/(1-p): dx = dout * mask",
                "def dropout_backward(dout, cache):\n"
                "    return dout\n"),
        Mistake("scale forgotten",
                "the forward pass multiplied the kept entries by 1/(1-p); the cache already holds "
                "that scaled mask, so dx = dout * cache",
                "def dropout_backward(dout, cache):\n"
                "    if cache is None:\n"
                "        return dout\n"
                "    return dout * (cache > 0)\n"),
        Mistake("cache None not handled",
                "in evaluation (or with p=0) the cache is None and dropout did nothing: return "
                "dout",
                "def dropout_backward(dout, cache):\n"
                "    return dout * cache\n"),
    ],
)

# --------------------------------------------------------------------------- LayerNorm


def _layernorm_cases(rng):
    def case(name, x, kwargs=None):
        d = x.shape[-1]
        return Case(name, {"x": x, "gamma": rng.normal(1.0, 0.5, size=d),
                           "beta": rng.normal(0.0, 0.5, size=d)}, kwargs or {},
                    data={"dout": rng.normal(size=x.shape)})
    constant = rng.normal(size=(3, 6))
    constant[1] = 7.0
    return [
        case("4 x 8", rng.normal(1.0, 3.0, size=(4, 8))),
        case("(B, T, D) = (2, 3, 5)", rng.normal(size=(2, 3, 5))),
        case("batch of one", rng.normal(size=(1, 16))),
        case("eps=1e-5 (PyTorch's default)", rng.normal(size=(3, 4)) * 0.01, {"eps": 1e-5}),
        case("a constant row (variance 0), eps=1e-5", constant, {"eps": 1e-5}),
    ]


def _layernorm_forward_cases(rng):
    constant = rng.normal(size=(2, 5))
    constant[0] = -3.0
    d = 8
    far = Case("rows far from 0 (mean 1e5)", {"x": 1e5 + rng.normal(size=(3, d)),
                                              "gamma": rng.normal(1.0, 0.5, size=d),
                                              "beta": rng.normal(size=d)})
    return _layernorm_cases(rng) + [
        Case("a constant row, BERT's eps=1e-12", {"x": constant, "gamma": np.ones(5),
                                                  "beta": np.zeros(5)}),
        far,
        Case("float32 in, float32 out", {"x": rng.normal(size=(2, 6)).astype(np.float32),
                                         "gamma": rng.normal(1.0, 0.5, size=6).astype(np.float32),
                                         "beta": rng.normal(size=6).astype(np.float32)}),
    ]


_LAYERNORM_FORWARD = """def layernorm_forward(x, gamma, beta, eps=1e-12):
    mean = x.mean(axis={axis}, keepdims=True)
    var = {var}
    inv_std = {inv_std}
    x_hat = (x - mean) * inv_std
    return gamma * x_hat + beta, (x_hat, inv_std, gamma)
"""


def _layernorm_mistake(axis="-1", var="((x - mean) ** 2).mean(axis=-1, keepdims=True)",
                       inv_std="1 / np.sqrt(var + eps)"):
    return _LAYERNORM_FORWARD.format(axis=axis, var=var, inv_std=inv_std)


layernorm_forward = Exercise(
    id="03.layernorm_forward", symbol="layernorm_forward", points=2,
    title="LayerNorm forward over the last axis",
    reference=layers.layernorm_forward, cases=_layernorm_forward_cases, run=run_forward,
    mistakes=[
        Mistake("unbiased variance",
                "LayerNorm uses the population variance, dividing by D (np.var's default, "
                "ddof=0), not D - 1",
                _layernorm_mistake(var="x.var(axis=-1, ddof=1, keepdims=True)")),
        Mistake("eps outside the square root",
                "eps goes inside the square root: 1 / sqrt(var + eps)",
                _layernorm_mistake(inv_std="1 / (np.sqrt(var) + eps)")),
        Mistake("normalised over the batch axis",
                "LayerNorm normalises each vector over its *features*, the last axis (BatchNorm "
                "is the one that uses the batch axis)",
                _layernorm_mistake(axis="0", var="((x - mean) ** 2).mean(axis=0, keepdims=True)")),
        Mistake("one-pass variance",
                "E[x^2] - E[x]^2 loses all precision when the mean is large compared with the "
                "spread (catastrophic cancellation); compute mean((x - mean)**2)",
                _layernorm_mistake(var="(x * x).mean(axis=-1, keepdims=True) - mean ** 2")),
    ],
)

_layernorm_run, _layernorm_expected = backward_exercise(
    layers.layernorm_forward, ("x", "gamma", "beta"), ("dx", "dgamma", "dbeta"))
_LAYERNORM_BACKWARD = """def layernorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    D = x_hat.shape[-1]
    g = {g}
    dx = {dx}
    return dx, {dgamma}, {dbeta}
"""


def _layernorm_backward_mistake(g="dout * gamma",
                                dx="inv_std * (g - g.mean(axis=-1, keepdims=True) "
                                   "- x_hat * (g * x_hat).mean(axis=-1, keepdims=True))",
                                dgamma="(dout * x_hat).reshape(-1, D).sum(axis=0)",
                                dbeta="dout.reshape(-1, D).sum(axis=0)"):
    return _LAYERNORM_BACKWARD.format(g=g, dx=dx, dgamma=dgamma, dbeta=dbeta)


layernorm_backward = Exercise(
    id="03.layernorm_backward", symbol="layernorm_backward", points=3,
    title="LayerNorm backward: dx, dgamma, dbeta",
    reference=layers.layernorm_backward, cases=_layernorm_cases,
    run=_layernorm_run, expected=_layernorm_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("mean terms missing",
                "the mean and the variance depend on every entry of the row, so dx has two more "
                "terms: inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), g = dout * gamma",
                _layernorm_backward_mistake(dx="inv_std * g")),
        Mistake("variance term missing",
                "the variance depends on x too: subtract x_hat * mean(g * x_hat) as well as "
                "mean(g)",
                _layernorm_backward_mistake(
                    dx="inv_std * (g - g.mean(axis=-1, keepdims=True))")),
        Mistake("gamma forgotten in dx",
                "out = gamma * x_hat + beta, so the gradient reaching x_hat is dout * gamma",
                _layernorm_backward_mistake(g="dout")),
        Mistake("dgamma and dbeta summed over the first axis only",
                "dgamma and dbeta sum over *every* leading axis: reshape to (-1, D) first",
                _layernorm_backward_mistake(dgamma="(dout * x_hat).sum(axis=0)",
                                            dbeta="dout.sum(axis=0)")),
    ],
)

# --------------------------------------------------------------------------- embedding


def _embedding_cases(rng):
    def case(name, ids, vocab, dim):
        ids = np.asarray(ids, dtype=np.int64)
        return Case(name, {"ids": ids, "table": rng.normal(size=(vocab, dim))},
                    data={"dout": rng.normal(size=ids.shape + (dim,))})
    return [
        case("8 ids with repeats, V=7, D=7", [3, 1, 3, 0, 6, 1, 3, 2], 7, 7),
        case("(B, T) = (2, 5) ids, repeats within and across rows, V=6, D=4",
             [[5, 1, 1, 0, 2], [1, 5, 4, 4, 1]], 6, 4),
        case("every id the same", [2, 2, 2, 2], 5, 3),
        case("no repeats", [4, 0, 2], 6, 3),
        case("one id", [1], 3, 2),
    ]


embedding_forward = Exercise(
    id="03.embedding_forward", symbol="embedding_forward", points=1,
    title="embedding lookup",
    reference=layers.embedding_forward, cases=_embedding_cases, run=run_forward,
    mistakes=[
        Mistake("columns instead of rows",
                "one *row* of the (V, D) table per id: table[ids]",
                "def embedding_forward(ids, table):\n"
                "    return table[:, ids], (ids, table.shape)\n"),
        Mistake("ids flattened",
                "keep the shape of ids: out = table[ids] has shape ids.shape + (D,)",
                "def embedding_forward(ids, table):\n"
                "    return table[ids.reshape(-1)], (ids, table.shape)\n"),
        Mistake("the table in the cache",
                "the cache is (ids, table.shape): the backward only needs the ids and the shape, "
                "and keeping a copy of a 30,000-row table per call wastes memory",
                "def embedding_forward(ids, table):\n"
                "    return table[ids], (ids, table.copy())\n"),
    ],
)

_embedding_run, _embedding_expected = backward_exercise(layers.embedding_forward, "table",
                                                        ("dtable",), layers.embedding_backward)

def _embedding_backward_cases(rng):
    float32 = Case("float32 in, float32 out", {"ids": np.array([[1, 0, 1]]),
                                               "table": rng.normal(size=(3, 4)).astype(np.float32)},
                   data={"dout": rng.normal(size=(1, 3, 4)).astype(np.float32), "float32": True})
    return _embedding_cases(rng) + [float32]


embedding_backward = Exercise(
    id="03.embedding_backward", symbol="embedding_backward", points=2,
    title="embedding backward: repeated ids add up",
    reference=layers.embedding_backward, cases=_embedding_backward_cases,
    run=_embedding_run, expected=_embedding_expected, tolerance=GRADIENT,
    mistakes=[
        Mistake("grad[idx] += g",
                "dtable[ids] += dout writes each repeated id once (the last write wins) instead "
                "of adding all its gradients; use np.add.at(dtable, ids, dout)",
                "def embedding_backward(dout, cache):\n"
                "    ids, shape = cache\n"
                "    dtable = np.zeros(shape)\n"
                "    dtable[ids] += dout\n"
                "    return dtable\n"),
        Mistake("mean over repeats",
                "an id used k times collects the *sum* of its k gradients, not their mean",
                "def embedding_backward(dout, cache):\n"
                "    ids, shape = cache\n"
                "    dtable = np.zeros(shape)\n"
                "    np.add.at(dtable, ids, dout)\n"
                "    counts = np.bincount(ids.reshape(-1), minlength=shape[0])\n"
                "    return dtable / np.maximum(counts, 1)[:, None]\n"),
        Mistake("gradient of the looked-up rows only",
                "that is dout, the gradient of the output; the gradient of the table has the "
                "table's shape (V, D), with zeros for ids never looked up",
                "def embedding_backward(dout, cache):\n"
                "    return dout.copy()\n"),
    ],
)

# --------------------------------------------------------------------------- classification head


def _sce_expected(case):
    loss, _ = layers.softmax_cross_entropy(*case.args.values(), **case.kwargs)
    targets = case.args["targets"]
    dlogits = numerical_gradient(
        lambda z: layers.softmax_cross_entropy(z, targets, **case.kwargs)[0], case.args["logits"])
    return {"loss": loss, "dlogits": dlogits}


def _sce_cases(rng):
    labels = rng.integers(0, 7, size=(2, 4))
    labels[0, 1] = labels[1, 3] = -100
    return [
        Case("N=6 rows, C=4 classes", {"logits": rng.normal(size=(6, 4)),
                                       "targets": rng.integers(0, 4, size=6)}),
        Case("(B, T, C) = (2, 4, 7), some targets -100", {"logits": rng.normal(size=(2, 4, 7)),
                                                          "targets": labels}),
        Case("batch of one", {"logits": rng.normal(size=(1, 5)), "targets": np.array([3])}),
        Case("large logits (30)", {"logits": rng.normal(size=(4, 3)) * 30,
                                   "targets": rng.integers(0, 3, size=4)}),
        Case("huge logits (1000): exp overflows unless the max is subtracted",
             {"logits": rng.normal(size=(3, 4)) * 1000, "targets": np.array([0, 3, 1])}),
        Case("every target ignored", {"logits": rng.normal(size=(2, 3, 4)),
                                      "targets": np.full((2, 3), -100)}),
        Case("ignore_index=0", {"logits": rng.normal(size=(5, 3)),
                                "targets": np.array([0, 2, 1, 0, 2])}, {"ignore_index": 0}),
    ]


softmax_cross_entropy = Exercise(
    id="03.softmax_cross_entropy", symbol="softmax_cross_entropy", points=2,
    title="the classification head: loss and dlogits, any leading axes",
    reference=layers.softmax_cross_entropy, cases=_sce_cases,
    run=lambda fn, case: _named(call(fn, case), ("loss", "dlogits")),
    expected=_sce_expected, tolerance=GRADIENT,
    requires=("01.softmax", "01.log_softmax", "01.cross_entropy", "01.cross_entropy_grad"),
    mistakes=[
        Mistake("gradient of the summed loss",
                "the loss is a mean over the n positions that count, so dlogits is "
                "(softmax - one_hot) / n; cross_entropy_grad does it for you",
                "def softmax_cross_entropy(logits, targets, ignore_index=-100):\n"
                "    C = logits.shape[-1]\n"
                "    z, t = logits.reshape(-1, C), targets.reshape(-1)\n"
                "    keep = t != ignore_index\n"
                "    d = softmax(z)\n"
                "    d[np.flatnonzero(keep), t[keep]] -= 1\n"
                "    d[~keep] = 0\n"
                "    return cross_entropy(z, t, ignore_index), d.reshape(logits.shape)\n"),
        Mistake("dlogits not reshaped back",
                "return dlogits in the shape of logits, (..., C): reshape the flat gradient back",
                "def softmax_cross_entropy(logits, targets, ignore_index=-100):\n"
                "    C = logits.shape[-1]\n"
                "    z, t = logits.reshape(-1, C), targets.reshape(-1)\n"
                "    return cross_entropy(z, t, ignore_index), cross_entropy_grad(z, t, ignore_index)\n"),
        Mistake("ignore_index not passed on",
                "pass ignore_index on to cross_entropy and cross_entropy_grad; their default is "
                "-100",
                "def softmax_cross_entropy(logits, targets, ignore_index=-100):\n"
                "    C = logits.shape[-1]\n"
                "    z, t = logits.reshape(-1, C), targets.reshape(-1)\n"
                "    return cross_entropy(z, t), cross_entropy_grad(z, t).reshape(logits.shape)\n"),
        Mistake("mean over every position",
                "average over the positions whose target is not ignore_index only; ignored "
                "positions must not count in n",
                "def softmax_cross_entropy(logits, targets, ignore_index=-100):\n"
                "    C = logits.shape[-1]\n"
                "    z, t = logits.reshape(-1, C), targets.reshape(-1)\n"
                "    n_keep = max(int((t != ignore_index).sum()), 1)\n"
                "    scale = n_keep / len(t)\n"
                "    loss = cross_entropy(z, t, ignore_index) * scale\n"
                "    return loss, (cross_entropy_grad(z, t, ignore_index) * scale).reshape(logits.shape)\n"),
    ],
)

# --------------------------------------------------------------------------- Module
# A case describes a tree of modules as plain data: {"params": [[name, shape], ...],
# "children": [[attribute, node or list of nodes], ...], "extra": {attribute: value}}.
# The driver builds it on the learner's Module class and records every array it
# registers, so it can tell whether parameters() returns those arrays or copies.


def _leaf(*params):
    return {"params": [[name, list(shape)] for name, shape in params], "children": []}


def _node(children, params=(), extra=None):
    return {"params": [[name, list(shape)] for name, shape in params],
            "children": [list(c) for c in children], "extra": extra or {}}


def _build(Module, spec, rng, path, record):
    class Node(Module):
        pass

    node = Node()
    record["nodes"][path or "(model)"] = node
    for name, shape in spec["params"]:
        value = rng.normal(size=tuple(int(n) for n in shape))
        node.add_parameter(name, value)
        record["params"][id(value)] = path + name
    for attribute, child in spec["children"]:
        if isinstance(child, list):
            built = [_build(Module, c, rng, f"{path}{attribute}.{i}.", record)
                     for i, c in enumerate(child)]
        else:
            built = _build(Module, child, rng, f"{path}{attribute}.", record)
        setattr(node, attribute, built)
    for attribute, value in spec.get("extra", {}).items():
        setattr(node, attribute, value)
    return node


def _modes(record):
    return {path.rstrip("."): ("train" if getattr(node, "training", None) is True else
                               "eval" if getattr(node, "training", None) is False else
                               f"training = {getattr(node, 'training', 'missing')!r}")
            for path, node in record["nodes"].items()}


def run_module(Module, case):
    """Build the case's tree on ``Module`` and report what every method gives."""
    rng = np.random.default_rng(int(case.data["seed"]))
    record = {"nodes": {}, "params": {}}
    model = _build(Module, case.data["tree"], rng, "", record)
    result = {"mode after construction": _modes(record)}
    names = [name for name, _ in model.named_parameters()]
    result["names from named_parameters()"] = names
    parameters = model.parameters()
    # a list, as the docstring says: an optimizer goes over it more than once (AdamW builds its
    # moments from it, then keeps it), and a generator is empty the second time
    result["parameters() returns"] = "a list" if isinstance(parameters, list) else \
        _describe_type(parameters)
    result["parameters(): which registered array each entry is"] = [
        record["params"].get(id(p), "not a registered array (a copy?)") for p in parameters]
    grads_at_start = []
    grad_ids = {}
    for path, node in record["nodes"].items():
        prefix = "" if path == "(model)" else path
        for name in node.params:
            grad = node.grads.get(name)
            grads_at_start.append(np.array(grad, copy=True) if grad is not None else None)
            grad_ids[id(grad)] = prefix + name
    result["every grads[name] after construction"] = grads_at_start
    recorded = []
    for k, (path, node) in enumerate(record["nodes"].items()):
        for name in node.params:
            node.grads[name][...] = k + 1.0
            recorded.append(node.grads[name])
    result["gradients(): which grads array each entry is"] = [
        grad_ids.get(id(g), "not one of the grads arrays (a copy?)") for g in model.gradients()]
    model.zero_grad()
    result["sum of each grads array after zero_grad() (the same arrays, zeroed in place)"] = [
        float(np.abs(g).sum()) for g in recorded]
    result["num_parameters()"] = int(model.num_parameters())
    returned = model.eval()
    result["mode after model.eval()"] = _modes(record)
    result["model.eval() returns"] = "the model" if returned is model else _describe_type(returned)
    returned = model.train()
    result["mode after model.train()"] = _modes(record)
    result["model.train() returns"] = "the model" if returned is model else _describe_type(returned)
    branch = case.data["branch"]
    record["nodes"][branch].eval()
    result[f"mode after model.{branch.rstrip('.')}.eval()"] = _modes(record)
    return result


def _module_cases(rng):
    def case(name, tree, branch):
        return Case(name, data={"seed": int(rng.integers(2 ** 31)), "tree": tree,
                                "branch": branch})
    block = _node([("attention", _leaf(("W", (4, 4)), ("b", (4,)))),
                   ("ffn", _leaf(("W", (4, 8)), ("b", (8,))))])
    return [
        case("an MLP: proj, act (no parameters), head",
             _node([("proj", _leaf(("W", (4, 3)), ("b", (3,)))), ("act", _leaf()),
                    ("head", _leaf(("W", (3, 2)), ("b", (2,))))]), "proj."),
        case("BERT-like: own parameter, embeddings with a child, a list of blocks",
             _node([("embeddings", _node([("norm", _leaf(("gamma", (4,)), ("beta", (4,))))],
                                         params=[("table", (6, 4))])),
                    ("layers", [block, block]),
                    ("pooler", _leaf(("W", (4, 4)), ("b", (4,))))],
                   params=[("cls_bias", (2,))]), "layers.1."),
        case("attributes that are not modules are ignored",
             _node([("inner", _leaf(("w", (3,))))], params=[("scale", (1,))],
                   extra={"eps": 1e-12, "name": "block", "sizes": [4, 8], "buffer": [0.5, 1.5],
                          "options": {"a": 1}}), "inner."),
        case("no parameters at all", _node([("act", _leaf()), ("drop", _leaf())]), "act."),
        case("nested three deep",
             _node([("outer", _node([("middle", _node([("inner", _leaf(("W", (2, 2))))],
                                                      params=[("m", (3,))]))]))]),
             "outer.middle."),
    ]


_MODULE_METHODS = {
    "init": """    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
""",
    "add_parameter": """    def add_parameter(self, name, value):
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
""",
    "named_children": """    def named_children(self):
        children = []
        for name, value in vars(self).items():
            if isinstance(value, Module):
                children.append((name, value))
            elif isinstance(value, list):
                children += [(f"{name}.{i}", m) for i, m in enumerate(value) if isinstance(m, Module)]
        return children
""",
    "named_parameters": """    def named_parameters(self):
        named = list(self.params.items())
        for child_name, child in self.named_children():
            named += [(f"{child_name}.{n}", p) for n, p in child.named_parameters()]
        return named
""",
    "parameters": """    def parameters(self):
        return [p for _, p in self.named_parameters()]
""",
    "gradients": """    def gradients(self):
        grads = [self.grads[n] for n in self.params]
        for _, child in self.named_children():
            grads += child.gradients()
        return grads
""",
    "zero_grad": """    def zero_grad(self):
        for g in self.gradients():
            g.fill(0.0)
""",
    "train": """    def train(self):
        self.training = True
        for _, child in self.named_children():
            child.train()
        return self
""",
    "eval": """    def eval(self):
        self.training = False
        for _, child in self.named_children():
            child.eval()
        return self
""",
    "num_parameters": """    def num_parameters(self):
        return sum(p.size for p in self.parameters())
""",
}


def _module_mistake(**changes):
    methods = dict(_MODULE_METHODS, **changes)
    return "class Module:\n" + "\n".join(methods.values())


module = Exercise(
    id="03.module", symbol="Module", points=3,
    title="the Module base class: parameters, gradients, train/eval",
    reference=layers.Module, cases=_module_cases, run=run_module,
    mistakes=[
        Mistake("parameters() a generator",
                "return a list: an optimizer goes over parameters() more than once (AdamW builds "
                "its moments from it, then steps through it), and a generator is empty the "
                "second time",
                _module_mistake(parameters="""    def parameters(self):
        return (p for _, p in self.named_parameters())
""")),
        Mistake("children in alphabetical order",
                "dir(self) lists attributes alphabetically; the children come in the order the "
                "attributes were set, which vars(self) (a dict) keeps",
                _module_mistake(named_children="""    def named_children(self):
        children = []
        for name in dir(self):
            value = getattr(self, name)
            if isinstance(value, Module):
                children.append((name, value))
            elif isinstance(value, list):
                children += [(f"{name}.{i}", m) for i, m in enumerate(value) if isinstance(m, Module)]
        return children
""")),
        Mistake("names without the child's prefix",
                "prefix each child's parameter names with the child's name and a dot "
                "(\"proj.W\"), or two layers' \"W\" cannot be told apart",
                _module_mistake(named_parameters="""    def named_parameters(self):
        named = list(self.params.items())
        for _, child in self.named_children():
            named += child.named_parameters()
        return named
""")),
        Mistake("lists of modules ignored",
                "a list attribute (self.layers = [block, block]) holds children too: name them "
                "\"layers.0\", \"layers.1\", ...",
                _module_mistake(named_children="""    def named_children(self):
        return [(name, value) for name, value in vars(self).items() if isinstance(value, Module)]
""")),
        Mistake("zero_grad makes new arrays",
                "zero_grad fills the existing arrays with 0 (g.fill(0) or g[...] = 0); binding "
                "new arrays leaves anyone holding the old ones (an optimizer, gradients()) with "
                "stale values",
                _module_mistake(zero_grad="""    def zero_grad(self):
        for name in self.grads:
            self.grads[name] = np.zeros_like(self.params[name])
        for _, child in self.named_children():
            child.zero_grad()
""")),
        Mistake("eval() not recursive",
                "eval() (and train()) must reach every module below, or a Dropout deep inside "
                "keeps dropping at test time",
                _module_mistake(eval="""    def eval(self):
        self.training = False
        return self
""")),
    ],
)

# --------------------------------------------------------------------------- Linear (class)


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def run_linear_layer(Linear, case):
    in_features, out_features, x = case.args.values()
    rng = np.random.default_rng(int(case.data["seed"]))
    layer = Linear(int(in_features), int(out_features), rng, **case.kwargs)
    result = {"names from named_parameters()": [name for name, _ in layer.named_parameters()],
              # one draw from rng for W, as the docstring says: the next draw shows how many
              "the generator's next number after construction": float(rng.random()),
              "params['W'] after construction": _copy(layer.params.get("W")),
              "params['b'] after construction": _copy(layer.params.get("b")),
              "forward(x)": layer.forward(x),
              "backward(dout)": layer.backward(case.data["dout"]),
              "grads['W'] after one backward": _copy(layer.grads.get("W")),
              "grads['b'] after one backward": _copy(layer.grads.get("b"))}
    arrays = [id(g) for g in layer.gradients()]
    layer.forward(case.data["x2"])
    layer.backward(case.data["dout2"])
    result["gradients() the same arrays as before, added to in place"] = \
        [id(g) for g in layer.gradients()] == arrays
    result["grads['W'] after a second forward and backward (they add up)"] = _copy(
        layer.grads.get("W"))
    result["grads['b'] after a second forward and backward (they add up)"] = _copy(
        layer.grads.get("b"))
    return result


def _linear_layer_cases(rng):
    def case(name, d_in, d_out, lead, kwargs=None):
        return Case(name, {"in_features": d_in, "out_features": d_out,
                           "x": rng.normal(size=lead + (d_in,))}, kwargs or {},
                    data={"seed": int(rng.integers(2 ** 31)), "dout": rng.normal(size=lead + (d_out,)),
                          "x2": rng.normal(size=lead + (d_in,)),
                          "dout2": rng.normal(size=lead + (d_out,))})
    return [
        case("4 -> 3, a batch of 5", 4, 3, (5,)),
        case("sequences (B, T) = (2, 3), 4 -> 6", 4, 6, (2, 3)),
        case("init_std=0.5", 3, 3, (4,), {"init_std": 0.5}),
        case("8 -> 2, batch of one", 8, 2, (1,)),
    ]


_LINEAR_TEMPLATE = """class Linear(Module):
    def __init__(self, in_features, out_features, rng, init_std=0.02):
        super().__init__()
{init}
        self.cache = None
    def forward(self, x):
{forward}
    def backward(self, dout):
{backward}
"""
_LINEAR_PARTS = {
    "init": """        self.add_parameter("W", rng.normal(0.0, init_std, size=(in_features, out_features)))
        self.add_parameter("b", np.zeros(out_features))""",
    "forward": """        out, self.cache = linear_forward(x, self.params["W"], self.params["b"])
        return out""",
    "backward": """        dx, dW, db = linear_backward(dout, self.cache)
        self.grads["W"] += dW
        self.grads["b"] += db
        return dx""",
}


def _linear_mistake(**parts):
    return _LINEAR_TEMPLATE.format(**dict(_LINEAR_PARTS, **parts))


linear = Exercise(
    id="03.linear", symbol="Linear", points=2,
    title="the Linear layer as a Module",
    reference=layers.Linear, cases=_linear_layer_cases, run=run_linear_layer,
    requires=("03.module", "03.linear_forward", "03.linear_backward"),
    mistakes=[
        Mistake("gradients overwritten",
                "backward *adds* dW and db into self.grads (+=): a layer used twice in one step "
                "collects both gradients, and zero_grad() is what clears them",
                _linear_mistake(backward="""        dx, dW, db = linear_backward(dout, self.cache)
        self.grads["W"] = dW
        self.grads["b"] = db
        return dx""")),
        Mistake("a new gradient array at each backward",
                "add into the arrays already in self.grads (self.grads[\"W\"] += dW), as the "
                "docstring says: self.grads[\"W\"] = self.grads[\"W\"] + dW puts a new array "
                "there, and whatever holds the old one (a list from gradients()) misses the sum",
                _linear_mistake(backward="""        dx, dW, db = linear_backward(dout, self.cache)
        self.grads["W"] = self.grads["W"] + dW
        self.grads["b"] = self.grads["b"] + db
        return dx""")),
        Mistake("a second draw for the bias",
                "draw from rng once, for W (the bias is np.zeros): every extra draw shifts all "
                "the numbers the generator gives afterwards, to the next layer and to dropout",
                _linear_mistake(init="""        self.add_parameter("W", rng.normal(0.0, init_std, size=(in_features, out_features)))
        self.add_parameter("b", rng.normal(0.0, init_std, size=out_features) * 0.0)""")),
        Mistake("W stored as (out_features, in_features)",
                "here W has shape (in_features, out_features) and out = x @ W + b (PyTorch stores "
                "the transpose)",
                _linear_mistake(
                    init="""        self.add_parameter("W", rng.normal(0.0, init_std, size=(out_features, in_features)))
        self.add_parameter("b", np.zeros(out_features))""",
                    forward="""        out, self.cache = linear_forward(x, self.params["W"].T, self.params["b"])
        return out""",
                    backward="""        dx, dW, db = linear_backward(dout, self.cache)
        self.grads["W"] += dW.T
        self.grads["b"] += db
        return dx""")),
        Mistake("random bias",
                "the bias starts at 0 (np.zeros(out_features)); only W is drawn from rng",
                _linear_mistake(init="""        self.add_parameter("W", rng.normal(0.0, init_std, size=(in_features, out_features)))
        self.add_parameter("b", rng.normal(0.0, init_std, size=out_features))""")),
        Mistake("weights not registered",
                "register the weights with self.add_parameter(\"W\", ...) and "
                "self.add_parameter(\"b\", ...): plain attributes are invisible to "
                "parameters(), so no optimizer would ever update them",
                _linear_mistake(init="""        self.W = rng.normal(0.0, init_std, size=(in_features, out_features))
        self.b = np.zeros(out_features)""",
                                forward="""        out, self.cache = linear_forward(x, self.W, self.b)
        return out""",
                                backward="""        dx, self.dW, self.db = linear_backward(dout, self.cache)
        return dx""")),
    ],
)


LESSON = Lesson(
    id="03", slug="03_layers", title="Layers and backprop",
    exercises=[linear_forward, linear_backward, relu_forward, relu_backward,
               gelu_forward, gelu_backward, gelu_tanh_forward, gelu_tanh_backward,
               dropout_forward, dropout_backward, layernorm_forward, layernorm_backward,
               embedding_forward, embedding_backward, softmax_cross_entropy, module, linear],
    prelude=PRELUDE,
)
