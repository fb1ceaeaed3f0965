"""Lesson 00 - Welcome, NumPy and gradient checking: exercise specs."""

import numpy as np

from solutions import welcome

from ..compare import Tolerance
from ..spec import Case, Exercise, Lesson, Mistake, array_not_list, call

# --------------------------------------------------------------------------- results are arrays
# The comparison accepts a list where an array is expected; this lesson is about NumPy arrays,
# so its drivers do not.


def call_for_an_array(fn, case):
    return array_not_list(call(fn, case))


# --------------------------------------------------------------------------- standardize_columns


def _standardize_cases(rng):
    constant = rng.normal(size=(5, 3))
    constant[:, 1] = 4.0
    return [
        Case("10 x 4", {"x": rng.normal(3.0, 2.0, size=(10, 4))}),
        Case("square 5 x 5", {"x": rng.uniform(-5, 5, size=(5, 5))}),
        Case("a constant column", {"x": constant}),
        Case("one row", {"x": rng.normal(size=(1, 6))}),
        Case("eps given", {"x": rng.normal(size=(6, 2))}, {"eps": 0.5}),
        Case("far from 0: mean 1e6, spread 1", {"x": rng.normal(1e6, 1.0, size=(8, 3))}),
    ]


standardize_columns = Exercise(
    id="00.standardize_columns", symbol="standardize_columns", points=2,
    title="mean 0 and variance 1 per column (axis and keepdims)",
    reference=welcome.standardize_columns, cases=_standardize_cases, run=call_for_an_array,
    mistakes=[
        Mistake("rows instead of columns",
                "you normalised each row (axis=1); the columns are axis 0",
                "def standardize_columns(x, eps=1e-8):\n"
                "    mean = x.mean(axis=1, keepdims=True)\n"
                "    var = x.var(axis=1, keepdims=True)\n"
                "    return (x - mean) / np.sqrt(var + eps)\n"),
        Mistake("unbiased variance",
                "the variance here divides by N (np.var's default, ddof=0), not N - 1",
                "def standardize_columns(x, eps=1e-8):\n"
                "    mean = x.mean(axis=0)\n"
                "    var = x.var(axis=0, ddof=1) if x.shape[0] > 1 else x.var(axis=0)\n"
                "    return (x - mean) / np.sqrt(var + eps)\n"),
        Mistake("eps outside the square root",
                "eps goes inside the square root: sqrt(var + eps)",
                "def standardize_columns(x, eps=1e-8):\n"
                "    return (x - x.mean(axis=0)) / (x.std(axis=0) + eps)\n"),
        Mistake("eps left out",
                "a constant column has variance 0, and 0 / sqrt(0) is NaN: add eps inside the "
                "square root, sqrt(var + eps), as the docstring says",
                "def standardize_columns(x, eps=1e-8):\n"
                "    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0))\n"),
        Mistake("one-pass variance",
                "mean(x**2) - mean(x)**2 subtracts two nearly equal large numbers when the mean "
                "is large next to the spread, and loses most digits; take mean((x - mean)**2), "
                "or np.var",
                "def standardize_columns(x, eps=1e-8):\n"
                "    mean = x.mean(axis=0)\n"
                "    var = (x ** 2).mean(axis=0) - mean ** 2\n"
                "    return (x - mean) / np.sqrt(var + eps)\n"),
        Mistake("only centred",
                "you subtracted the mean but did not divide by sqrt(var + eps)",
                "def standardize_columns(x, eps=1e-8):\n"
                "    return x - x.mean(axis=0)\n"),
    ],
)

# --------------------------------------------------------------------------- pairwise_sq_distances


def _pairwise_cases(rng):
    a = rng.normal(size=(4, 3))
    return [
        Case("4 x 3 against 6 x 3", {"a": a, "b": rng.normal(size=(6, 3))}),
        Case("square: 5 x 2 against 5 x 2", {"a": rng.normal(size=(5, 2)), "b": rng.normal(size=(5, 2))}),
        Case("a against itself (zero diagonal)", {"a": a, "b": a.copy()}),
        Case("one point against many", {"a": rng.normal(size=(1, 8)), "b": rng.normal(size=(7, 8))}),
        Case("far-apart points", {"a": rng.normal(100, 1, size=(3, 4)), "b": rng.normal(-100, 1, size=(2, 4))}),
    ]


_PAIRWISE_NO_LOOPS = ("a[:, None, :] - b[None, :, :] broadcasts to every difference at once, "
                      "shape (N, M, D); square it and sum over the last axis")

pairwise_sq_distances = Exercise(
    id="00.pairwise_sq_distances", symbol="pairwise_sq_distances", points=2,
    title="all squared distances with broadcasting, no loops",
    reference=welcome.pairwise_sq_distances, cases=_pairwise_cases, run=call_for_an_array,
    tolerance=Tolerance(rtol=1e-7, atol=1e-8),
    no_loops=_PAIRWISE_NO_LOOPS,
    mistakes=[
        Mistake("not squared",
                "these are distances; the exercise wants the *squared* distances (no sqrt)",
                "def pairwise_sq_distances(a, b):\n"
                "    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))\n"),
        Mistake("transposed",
                "the result should have one row per row of `a`: shape (N, M), not (M, N)",
                "def pairwise_sq_distances(a, b):\n"
                "    return ((b[:, None, :] - a[None, :, :]) ** 2).sum(-1)\n"),
        Mistake("cross term without the 2",
                "|a - b|^2 = |a|^2 + |b|^2 - 2 a.b: the cross term has a factor 2",
                "def pairwise_sq_distances(a, b):\n"
                "    return (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - a @ b.T\n"),
        Mistake("Python loops", _PAIRWISE_NO_LOOPS,
                "def pairwise_sq_distances(a, b):\n"
                "    d = np.zeros((a.shape[0], b.shape[0]))\n"
                "    for i in range(a.shape[0]):\n"
                "        for j in range(b.shape[0]):\n"
                "            d[i, j] = np.sum((a[i] - b[j]) ** 2)\n"
                "    return d\n"),
        Mistake("summed over the wrong axis",
                "sum the squared differences over the feature axis (the last one)",
                "def pairwise_sq_distances(a, b):\n"
                "    d = (a[:, None, :] - b[None, :, :]) ** 2\n"
                "    return d.sum(axis=1)[:, :1] * np.ones((1, b.shape[0]))\n"),
    ],
)

# --------------------------------------------------------------------------- one_hot


def _one_hot_cases(rng):
    return [
        Case("6 labels, 4 classes", {"labels": rng.integers(0, 4, size=6), "num_classes": 4}),
        Case("every class once", {"labels": np.arange(5)[::-1].copy(), "num_classes": 5}),
        Case("one label", {"labels": np.array([2]), "num_classes": 3}),
        Case("square: 3 labels, 3 classes", {"labels": np.array([0, 0, 2]), "num_classes": 3}),
        Case("unused classes", {"labels": np.array([1, 1]), "num_classes": 7}),
    ]


_ONE_HOT_NO_LOOPS = "fancy indexing sets every 1 at once: out[np.arange(N), labels] = 1.0"

one_hot = Exercise(
    id="00.one_hot", symbol="one_hot", points=1,
    title="one-hot encoding with fancy indexing",
    reference=welcome.one_hot, cases=_one_hot_cases, run=call_for_an_array,
    no_loops=_ONE_HOT_NO_LOOPS,
    mistakes=[
        Mistake("transposed", "one row per label: shape (N, C)",
                "def one_hot(labels, num_classes):\n"
                "    out = np.zeros((num_classes, labels.shape[0]))\n"
                "    out[labels, np.arange(labels.shape[0])] = 1.0\n"
                "    return out\n"),
        Mistake("integer dtype", "the result must be float (np.zeros gives float64)",
                "def one_hot(labels, num_classes):\n"
                "    out = np.zeros((labels.shape[0], num_classes), dtype=int)\n"
                "    out[np.arange(labels.shape[0]), labels] = 1\n"
                "    return out\n"),
        Mistake("off by one", "class k goes to column k (classes start at 0)",
                "def one_hot(labels, num_classes):\n"
                "    out = np.zeros((labels.shape[0], num_classes))\n"
                "    out[np.arange(labels.shape[0]), (labels + 1) % num_classes] = 1.0\n"
                "    return out\n"),
        Mistake("a loop over the labels", _ONE_HOT_NO_LOOPS,
                "def one_hot(labels, num_classes):\n"
                "    out = np.zeros((labels.shape[0], num_classes))\n"
                "    for i, label in enumerate(labels):\n"
                "        out[i, label] = 1.0\n"
                "    return out\n"),
        Mistake("whole columns set",
                "out[:, labels] = 1 sets the whole column for every row; index the rows too: "
                "out[np.arange(N), labels] = 1",
                "def one_hot(labels, num_classes):\n"
                "    out = np.zeros((labels.shape[0], num_classes))\n"
                "    out[:, labels] = 1.0\n"
                "    return out\n"),
    ],
)

# --------------------------------------------------------------------------- numerical_gradient
# A case names the function to differentiate (args["f"]) so that it stays plain data.


def _f_cubic(x):
    return float(np.sum(x ** 3) + 2.0 * np.sum(x))


def _f_sin_product(x):
    return float(np.sum(np.sin(x) * x ** 2))


def _f_quadratic_form(x):
    A = np.arange(1.0, 1.0 + x.size).reshape(x.size, 1) * np.ones((1, x.size)) / x.size
    v = x.reshape(-1)
    return float(v @ (A + A.T + np.eye(x.size)) @ v)


def _f_log_sum_exp(x):
    m = x.max()
    return float(m + np.log(np.exp(x - m).sum()))


_W = np.linspace(-1.0, 1.0, 6).reshape(3, 2)


def _f_matrix_product(x):
    return float(np.sum((x @ _W) ** 2))             # needs x with 3 columns, as given


FUNCTIONS = {
    "sum(x**3) + 2 sum(x)": (_f_cubic, lambda x: 3 * x ** 2 + 2.0),
    "sum(sin(x) * x**2)": (_f_sin_product, lambda x: np.cos(x) * x ** 2 + 2 * x * np.sin(x)),
    "a quadratic form v^T M v": (_f_quadratic_form, lambda x: _quadratic_grad(x)),
    "logsumexp(x)": (_f_log_sum_exp, lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum()),
    "sum((x @ W)**2), W of shape (3, 2)": (_f_matrix_product, lambda x: 2 * (x @ _W) @ _W.T),
}


def _quadratic_grad(x):
    n = x.size
    A = np.arange(1.0, 1.0 + n).reshape(n, 1) * np.ones((1, n)) / n
    M = A + A.T + np.eye(n)
    return ((M + M.T) @ x.reshape(-1)).reshape(x.shape)


def _run_numerical_gradient(fn, case):
    f, _ = FUNCTIONS[case.args["f"]]
    x = case.args["x"]
    grad = fn(f, x, **case.kwargs)
    return {"gradient": array_not_list(grad, "the gradient"), "x after the call": x}


def _expected_numerical_gradient(case):
    f, exact = FUNCTIONS[case.args["f"]]
    x = case.args["x"]
    if "eps" in case.kwargs:       # a large step: the estimate differs from the exact gradient
        return {"gradient": welcome.numerical_gradient(f, x.copy(), **case.kwargs),
                "x after the call": x}
    return {"gradient": exact(x), "x after the call": x}


def _numgrad_cases(rng):
    return [
        Case("cubic, vector of 5", {"f": "sum(x**3) + 2 sum(x)", "x": rng.normal(size=5)}),
        Case("sin product, 3 x 4 matrix", {"f": "sum(sin(x) * x**2)", "x": rng.normal(size=(3, 4))}),
        Case("quadratic form, 2 x 3", {"f": "a quadratic form v^T M v", "x": rng.normal(size=(2, 3))}),
        Case("logsumexp, one entry", {"f": "logsumexp(x)", "x": rng.normal(size=1)}),
        Case("logsumexp, 2 x 2 x 2", {"f": "logsumexp(x)", "x": rng.normal(size=(2, 2, 2))}),
        Case("f needs x's shape: 4 x 3", {"f": "sum((x @ W)**2), W of shape (3, 2)",
                                          "x": rng.normal(size=(4, 3))}),
        Case("eps given: 0.01 (the estimate is off by about eps**2)",
             {"f": "sum(x**3) + 2 sum(x)", "x": rng.normal(size=4)}, {"eps": 1e-2}),
    ]


numerical_gradient = Exercise(
    id="00.numerical_gradient", symbol="numerical_gradient", points=3,
    title="the gradient by central differences",
    reference=welcome.numerical_gradient, cases=_numgrad_cases,
    run=_run_numerical_gradient, expected=_expected_numerical_gradient,
    # Central differences with eps=1e-5 are accurate to about 1e-9 here; a forward
    # difference is off by about 1e-5, which this tolerance catches.
    tolerance=Tolerance(rtol=1e-7, atol=1e-7), warn_on_mutation=False,
    mistakes=[
        Mistake("forward difference",
                "(f(x + eps) - f(x)) / eps is a forward difference, accurate to O(eps); the "
                "central difference (f(x + eps) - f(x - eps)) / (2 eps) is accurate to O(eps^2)",
                "def numerical_gradient(f, x, eps=1e-5):\n"
                "    grad = np.zeros_like(x, dtype=np.float64)\n"
                "    fx = f(x)\n"
                "    for i in np.ndindex(x.shape):\n"
                "        old = x[i]\n"
                "        x[i] = old + eps\n"
                "        grad[i] = (f(x) - fx) / eps\n"
                "        x[i] = old\n"
                "    return grad\n"),
        Mistake("divided by eps", "the two points are 2 * eps apart: divide by 2 * eps",
                "def numerical_gradient(f, x, eps=1e-5):\n"
                "    grad = np.zeros_like(x, dtype=np.float64)\n"
                "    for i in np.ndindex(x.shape):\n"
                "        old = x[i]\n"
                "        x[i] = old + eps\n"
                "        fp = f(x)\n"
                "        x[i] = old - eps\n"
                "        fm = f(x)\n"
                "        x[i] = old\n"
                "        grad[i] = (fp - fm) / eps\n"
                "    return grad\n"),
        Mistake("x not restored",
                "put x[i] back to its original value after evaluating f(x + eps) and f(x - eps)",
                "def numerical_gradient(f, x, eps=1e-5):\n"
                "    grad = np.zeros_like(x, dtype=np.float64)\n"
                "    for i in np.ndindex(x.shape):\n"
                "        old = x[i]\n"
                "        x[i] = old + eps\n"
                "        fp = f(x)\n"
                "        x[i] = old - eps\n"
                "        fm = f(x)\n"
                "        grad[i] = (fp - fm) / (2 * eps)\n"
                "    return grad\n"),
        Mistake("all entries at once",
                "nudge one entry at a time: x + eps moves every entry and gives a single "
                "directional derivative",
                "def numerical_gradient(f, x, eps=1e-5):\n"
                "    d = (f(x + eps) - f(x - eps)) / (2 * eps)\n"
                "    return np.full(x.shape, d)\n"),
        Mistake("eps ignored",
                "use the eps you are given: a step fixed at 1e-5 ignores the argument",
                "def numerical_gradient(f, x, eps=1e-5):\n"
                "    grad = np.zeros_like(x, dtype=np.float64)\n"
                "    for i in np.ndindex(x.shape):\n"
                "        old = x[i]\n"
                "        x[i] = old + 1e-5\n"
                "        fp = f(x)\n"
                "        x[i] = old - 1e-5\n"
                "        fm = f(x)\n"
                "        x[i] = old\n"
                "        grad[i] = (fp - fm) / (2 * 1e-5)\n"
                "    return grad\n"),
        Mistake("first axis only",
                "for i in range(len(x)) nudges whole rows of a matrix; use np.ndindex(x.shape) "
                "to visit every entry",
                "def numerical_gradient(f, x, eps=1e-5):\n"
                "    grad = np.zeros_like(x, dtype=np.float64)\n"
                "    for i in range(x.shape[0]):\n"
                "        old = x[i].copy()\n"
                "        x[i] = old + eps\n"
                "        fp = f(x)\n"
                "        x[i] = old - eps\n"
                "        fm = f(x)\n"
                "        x[i] = old\n"
                "        grad[i] = (fp - fm) / (2 * eps)\n"
                "    return grad\n"),
    ],
)

# --------------------------------------------------------------------------- relative_error


def _relerr_cases(rng):
    a = rng.normal(size=(4, 5))
    b = a + rng.normal(scale=1e-6, size=(4, 5))
    mixed_sign = rng.normal(size=6)
    return [
        Case("nearly equal", {"a": a, "b": b}),
        Case("unrelated", {"a": rng.normal(size=7), "b": rng.normal(size=7)}),
        Case("both zero", {"a": np.zeros(3), "b": np.zeros(3)}),
        Case("one side zero", {"a": np.array([0.0, 1.0, 2.0]), "b": np.array([1e-3, 1.0, 2.0])}),
        Case("opposite signs", {"a": mixed_sign, "b": -mixed_sign}),
        Case("b larger than a", {"a": np.array([1.0, 2.0]), "b": np.array([1.5, 2.0])}),
        Case("tiny entries, where the 1e-8 floor decides",
             {"a": np.array([1e-12, 3e-9, 1.0]), "b": np.array([0.0, 1e-9, 1.0])}),
    ]


relative_error = Exercise(
    id="00.relative_error", symbol="relative_error", points=2,
    title="how far apart two gradients are",
    reference=welcome.relative_error, cases=_relerr_cases,
    mistakes=[
        Mistake("no absolute value",
                "take |a - b|: without abs, negative differences hide the largest error",
                "def relative_error(a, b):\n"
                "    return float(np.max((a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))\n"),
        Mistake("mean instead of max",
                "report the largest (max) entrywise error, not the mean: one wrong entry matters",
                "def relative_error(a, b):\n"
                "    return float(np.mean(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))\n"),
        Mistake("floor only where both are zero",
                "the floor is max(|a| + |b|, 1e-8) for every entry, not only where |a| + |b| is 0: "
                "tiny entries (1e-12 against 0) must not count as completely different",
                "def relative_error(a, b):\n"
                "    den = np.abs(a) + np.abs(b)\n"
                "    safe = np.where(den > 0, den, 1.0)\n"
                "    return float(np.max(np.where(den > 0, np.abs(a - b) / safe, 0.0)))\n"),
        Mistake("no floor",
                "when a and b are both 0 the denominator is 0: use max(|a| + |b|, 1e-8)",
                "def relative_error(a, b):\n"
                "    return float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b))))\n"),
        Mistake("not reduced",
                "return one number, the largest entrywise error: float(np.max(...))",
                "def relative_error(a, b):\n"
                "    return np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)\n"),
        Mistake("relative to a only",
                "divide by |a| + |b| (symmetric, and finite when one of them is 0), not by |a|",
                "def relative_error(a, b):\n"
                "    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-8)))\n"),
    ],
)


LESSON = Lesson(
    id="00", slug="00_welcome", title="Welcome, NumPy and gradient checking",
    exercises=[standardize_columns, pairwise_sq_distances, one_hot, numerical_gradient,
               relative_error],
)
