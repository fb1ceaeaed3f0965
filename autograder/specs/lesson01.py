"""Lesson 01 - Loss functions: exercise specs."""

import numpy as np

from solutions import losses

from ..compare import GRADIENT
from ..gradcheck import gradient_of
from ..spec import Case, Exercise, Lesson, Mistake, array_not_list, call

# --------------------------------------------------------------------------- softmax family


def _softmax_cases(rng):
    return [
        Case("4 x 10 logits", {"x": rng.normal(size=(4, 10))}),
        Case("square 5 x 5", {"x": rng.normal(scale=3, size=(5, 5))}),
        Case("huge logits (1e3)", {"x": rng.normal(size=(3, 6)) * 1000}),
        Case("batch of one", {"x": rng.normal(size=(1, 7))}),
        Case("axis=0", {"x": rng.normal(size=(6, 3))}, {"axis": 0}),
        Case("3-D, axis=1", {"x": rng.normal(size=(2, 3, 4))}, {"axis": 1}),
        Case("all equal", {"x": np.full((2, 4), 7.0)}),
        Case("float32 in, float32 out", {"x": rng.normal(size=(3, 5)).astype(np.float32)}),
    ]


softmax = Exercise(
    id="01.softmax", symbol="softmax", points=2,
    title="stable softmax along an axis",
    reference=losses.softmax, cases=_softmax_cases,
    mistakes=[
        Mistake("no max shift",
                "exp overflows for huge logits: subtract x.max(axis, keepdims=True) first",
                "def softmax(x, axis=-1):\n"
                "    e = np.exp(x)\n"
                "    return e / e.sum(axis=axis, keepdims=True)\n"),
        Mistake("axis ignored", "use the `axis` argument for the max and the sum",
                "def softmax(x, axis=-1):\n"
                "    e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
                "    return e / e.sum(axis=-1, keepdims=True)\n"),
        Mistake("divided by the total sum",
                "normalise along the axis (e.sum(axis, keepdims=True)), not by the sum of "
                "every entry",
                "def softmax(x, axis=-1):\n"
                "    e = np.exp(x - x.max())\n"
                "    return e / e.sum()\n"),
        Mistake("max without keepdims",
                "x.max(axis) drops the axis, so x - x.max(axis) broadcasts along the wrong "
                "axis; use keepdims=True",
                "def softmax(x, axis=-1):\n"
                "    e = np.exp(x - x.max(axis=axis))\n"
                "    return e / e.sum(axis=axis, keepdims=True)\n"),
        Mistake("over axis 0",
                "normalise along `axis` (by default the last one, so that each row sums to 1); "
                "axis=0 makes each column sum to 1",
                "def softmax(x, axis=-1):\n"
                "    e = np.exp(x - x.max(axis=0, keepdims=True))\n"
                "    return e / e.sum(axis=0, keepdims=True)\n"),
    ],
)


def _log_softmax_cases(rng):
    gap = rng.normal(size=(2, 5))
    gap[:, 0] += 1000.0                      # one logit far above the others
    return [
        Case("4 x 10 logits", {"x": rng.normal(size=(4, 10))}),
        Case("a logit 1000 above the rest", {"x": gap}),
        Case("huge logits (1e3)", {"x": rng.normal(size=(3, 6)) * 1000}),
        Case("batch of one", {"x": rng.normal(size=(1, 7))}),
        Case("axis=0", {"x": rng.normal(size=(6, 3))}, {"axis": 0}),
        Case("3-D, axis=1", {"x": rng.normal(size=(2, 3, 4))}, {"axis": 1}),
        Case("float32 in, float32 out", {"x": rng.normal(size=(3, 5)).astype(np.float32)}),
    ]


log_softmax = Exercise(
    id="01.log_softmax", symbol="log_softmax", points=2,
    title="log-softmax without log(0)",
    reference=losses.log_softmax, cases=_log_softmax_cases, requires=("01.softmax",),
    mistakes=[
        Mistake("log of softmax",
                "log(softmax(x)) gives log(0) = -inf when a probability underflows; compute "
                "x - max - log(sum(exp(x - max))) instead",
                "def log_softmax(x, axis=-1):\n"
                "    return np.log(softmax(x, axis=axis))\n"),
        Mistake("no max shift",
                "sum(exp(x)) overflows for huge logits: subtract the max before exp",
                "def log_softmax(x, axis=-1):\n"
                "    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))\n"),
        Mistake("logsumexp missing",
                "subtracting the max is only the first half: also subtract "
                "log(sum(exp(x - max)))",
                "def log_softmax(x, axis=-1):\n"
                "    return x - x.max(axis=axis, keepdims=True)\n"),
        Mistake("axis ignored", "use the `axis` argument for the max and the sum",
                "def log_softmax(x, axis=-1):\n"
                "    s = x - x.max(axis=-1, keepdims=True)\n"
                "    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))\n"),
    ],
)

# --------------------------------------------------------------------------- cross-entropy


def _ce_cases(rng):
    some_ignored = rng.integers(0, 6, size=8)
    some_ignored[[1, 4, 5]] = -100
    return [
        Case("8 x 5, no ignored target", {"logits": rng.normal(size=(8, 5)),
                                          "targets": rng.integers(0, 5, size=8)}),
        Case("some targets ignored (-100)", {"logits": rng.normal(size=(8, 6)),
                                             "targets": some_ignored}),
        Case("huge logits (1e3)", {"logits": rng.normal(size=(4, 3)) * 1000,
                                   "targets": rng.integers(0, 3, size=4)}),
        Case("batch of one", {"logits": rng.normal(size=(1, 4)), "targets": np.array([2])}),
        Case("all targets ignored", {"logits": rng.normal(size=(3, 4)),
                                     "targets": np.full(3, -100)}),
        Case("ignore_index=0", {"logits": rng.normal(size=(6, 4)),
                                "targets": np.array([0, 1, 0, 3, 2, 0])}, {"ignore_index": 0}),
    ]


cross_entropy = Exercise(
    id="01.cross_entropy", symbol="cross_entropy", points=3,
    title="mean cross-entropy with ignore_index",
    reference=losses.cross_entropy, cases=_ce_cases, requires=("01.softmax", "01.log_softmax"),
    mistakes=[
        Mistake("sum instead of mean", "average over the rows that count, do not sum",
                "def cross_entropy(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    lp = log_softmax(logits[keep])\n"
                "    return float(-lp[np.arange(lp.shape[0]), targets[keep]].sum())\n"),
        Mistake("ignored rows counted",
                "divide by the number of rows that count, not by N: ignored rows must not "
                "lower the mean",
                "def cross_entropy(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    lp = log_softmax(logits[keep])\n"
                "    return float(-lp[np.arange(lp.shape[0]), targets[keep]].sum() / len(targets))\n"),
        Mistake("ignore_index not used",
                "rows whose target is ignore_index must be left out",
                "def cross_entropy(logits, targets, ignore_index=-100):\n"
                "    lp = log_softmax(logits)\n"
                "    t = np.where(targets == -100, 0, targets)\n"
                "    return float(-lp[np.arange(len(t)), t].mean())\n"),
        Mistake("nan when all are ignored",
                "when no row counts the mean is 0/0: return 0.0 in that case",
                "def cross_entropy(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    lp = log_softmax(logits[keep])\n"
                "    return float(-np.mean(lp[np.arange(lp.shape[0]), targets[keep]]))\n"),
        Mistake("log of softmax",
                "log(softmax) underflows to log(0) = -inf for huge logits; use log_softmax",
                "def cross_entropy(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    if not keep.any():\n"
                "        return 0.0\n"
                "    e = np.exp(logits[keep] - logits[keep].max(axis=1, keepdims=True))\n"
                "    p = e / e.sum(axis=1, keepdims=True)\n"
                "    return float(-np.log(p[np.arange(p.shape[0]), targets[keep]]).mean())\n"),
    ],
)


def _ce_grad_cases(rng):
    return [case for case in _ce_cases(rng) if case.name != "huge logits (1e3)"] + [
        Case("large logits (30)", {"logits": rng.normal(size=(4, 3)) * 30,
                                   "targets": rng.integers(0, 3, size=4)}),
        Case("float32 in, float32 out", {"logits": rng.normal(size=(5, 4)).astype(np.float32),
                                         "targets": np.array([0, 3, -100, 1, 2])}),
    ]


_ce_numerical_gradient = gradient_of(losses.cross_entropy, "logits")


def _ce_grad_expected(case):
    """Central differences, taken in float64; for float32 logits, given back in float32 (the
    docstring promises the logits' dtype)."""
    logits = case.args["logits"]
    if logits.dtype == np.float32:
        case = case.copy()
        case.args["logits"] = logits.astype(np.float64)
        return _ce_numerical_gradient(case).astype(np.float32)
    return _ce_numerical_gradient(case)


cross_entropy_grad = Exercise(
    id="01.cross_entropy_grad", symbol="cross_entropy_grad", points=3,
    title="its gradient, checked against central differences",
    reference=losses.cross_entropy_grad, cases=_ce_grad_cases,
    expected=_ce_grad_expected, tolerance=GRADIENT,
    requires=("01.softmax", "01.log_softmax", "01.cross_entropy"),
    mistakes=[
        Mistake("no 1/n", "the loss is a mean, so each row's gradient is divided by n",
                "def cross_entropy_grad(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    g = softmax(logits)\n"
                "    g[np.flatnonzero(keep), targets[keep]] -= 1\n"
                "    g[~keep] = 0\n"
                "    return g\n"),
        Mistake("divided by N",
                "divide by the number of rows that count (not ignored), not by N",
                "def cross_entropy_grad(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    g = softmax(logits)\n"
                "    g[np.flatnonzero(keep), targets[keep]] -= 1\n"
                "    g[~keep] = 0\n"
                "    return g / len(targets)\n"),
        Mistake("ignored rows not zeroed", "ignored rows do not touch the loss: their gradient is 0",
                "def cross_entropy_grad(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    g = softmax(logits)\n"
                "    g[np.flatnonzero(keep), targets[keep]] -= 1\n"
                "    return g / max(int(keep.sum()), 1)\n"),
        Mistake("sign flipped", "the gradient is softmax minus one-hot, not one-hot minus softmax",
                "def cross_entropy_grad(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    g = -softmax(logits)\n"
                "    g[np.flatnonzero(keep), targets[keep]] += 1\n"
                "    g[~keep] = 0\n"
                "    return g / max(int(keep.sum()), 1)\n"),
        Mistake("nan when all are ignored",
                "with no row counting, divide by max(n, 1) or return zeros: 0/0 is nan",
                "def cross_entropy_grad(logits, targets, ignore_index=-100):\n"
                "    keep = targets != ignore_index\n"
                "    g = softmax(logits)\n"
                "    g[np.flatnonzero(keep), targets[keep]] -= 1\n"
                "    g[~keep] = 0\n"
                "    return g / int(keep.sum())\n"),
    ],
)

# --------------------------------------------------------------------------- masked-LM loss


def _mlm_labels(rng, shape, vocab, rate):
    labels = rng.integers(0, vocab, size=shape)
    labels[rng.random(shape) >= rate] = -100
    labels.flat[0] = rng.integers(0, vocab)        # at least one masked position
    return labels


def _mlm_cases(rng):
    uneven = np.full((3, 6), -100)
    uneven[0, 1] = 4
    uneven[2, [0, 2, 3, 5]] = [1, 7, 2, 0]          # 1 and 4 masked positions, one row none
    return [
        Case("2 x 5 x 7, about 30 % masked", {"logits": rng.normal(size=(2, 5, 7)),
                                               "labels": _mlm_labels(rng, (2, 5), 7, 0.3)}),
        Case("rows with different numbers of masks", {"logits": rng.normal(size=(3, 6, 8)),
                                                      "labels": uneven}),
        Case("batch of one", {"logits": rng.normal(size=(1, 4, 5)),
                              "labels": _mlm_labels(rng, (1, 4), 5, 0.5)}),
        Case("huge logits (1e3)", {"logits": rng.normal(size=(2, 3, 4)) * 1000,
                                   "labels": _mlm_labels(rng, (2, 3), 4, 0.5)}),
        Case("nothing masked", {"logits": rng.normal(size=(2, 3, 4)),
                                "labels": np.full((2, 3), -100)}),
    ]


masked_lm_loss = Exercise(
    id="01.masked_lm_loss", symbol="masked_lm_loss", points=2,
    title="cross-entropy over the masked positions only",
    reference=losses.masked_lm_loss, cases=_mlm_cases,
    requires=("01.log_softmax", "01.cross_entropy"),
    mistakes=[
        Mistake("mean over all positions",
                "average over the masked positions only; positions labelled -100 do not count",
                "def masked_lm_loss(logits, labels):\n"
                "    V = logits.shape[-1]\n"
                "    lp = log_softmax(logits.reshape(-1, V))\n"
                "    flat = labels.reshape(-1)\n"
                "    keep = flat != -100\n"
                "    picked = lp[np.arange(len(flat)), np.where(keep, flat, 0)] * keep\n"
                "    return float(-picked.sum() / len(flat))\n"),
        Mistake("mean of per-sequence means",
                "average over all masked positions of the batch at once: a mean of "
                "per-sequence means weights short and long sequences differently",
                "def masked_lm_loss(logits, labels):\n"
                "    losses = [cross_entropy(l, t) for l, t in zip(logits, labels)\n"
                "              if (t != -100).any()]\n"
                "    return float(np.mean(losses)) if losses else 0.0\n"),
        Mistake("softmax over the sequence axis",
                "the distribution is over the vocabulary, the last axis (V), not over positions",
                "def masked_lm_loss(logits, labels):\n"
                "    lp = log_softmax(logits, axis=1)\n"
                "    keep = labels != -100\n"
                "    if not keep.any():\n"
                "        return 0.0\n"
                "    return float(-lp[keep][np.arange(keep.sum()), labels[keep]].mean())\n"),
    ],
)

# --------------------------------------------------------------------------- BCE, MSE


def _bce_cases(rng):
    return [
        Case("4 x 3 logits, 0/1 targets", {"logits": rng.normal(size=(4, 3)),
                                           "targets": rng.integers(0, 2, size=(4, 3)).astype(float)}),
        Case("huge logits, right and wrong", {"logits": np.array([1000.0, -1000.0, 800.0, -800.0]),
                                              "targets": np.array([1.0, 0.0, 0.0, 1.0])}),
        Case("soft targets", {"logits": rng.normal(scale=3, size=6), "targets": rng.random(6)}),
        Case("one entry", {"logits": np.array([0.3]), "targets": np.array([1.0])}),
        Case("large negative logits", {"logits": -rng.uniform(50, 100, size=5),
                                       "targets": rng.integers(0, 2, size=5).astype(float)}),
    ]


bce_with_logits = Exercise(
    id="01.bce_with_logits", symbol="bce_with_logits", points=2,
    title="binary cross-entropy from logits, stable for any logit",
    reference=losses.bce_with_logits, cases=_bce_cases,
    mistakes=[
        Mistake("through the sigmoid",
                "sigmoid(x) rounds to exactly 0 or 1 for large |x| and the log gives inf; use "
                "max(x, 0) - x*y + log1p(exp(-|x|))",
                "def bce_with_logits(logits, targets):\n"
                "    p = 1 / (1 + np.exp(-logits))\n"
                "    return float(np.mean(-(targets * np.log(p) + (1 - targets) * np.log(1 - p))))\n"),
        Mistake("stable for positive logits only",
                "log1p(exp(-x)) overflows for very negative x (and log1p(exp(x)) for very "
                "positive x); use |x| inside the exp: max(x, 0) - x*y + log1p(exp(-|x|))",
                "def bce_with_logits(logits, targets):\n"
                "    return float(np.mean((1 - targets) * logits + np.log1p(np.exp(-logits))))\n"),
        Mistake("clipped probabilities",
                "clipping sigmoid(x) into [1e-7, 1 - 1e-7] avoids inf but caps the loss near 16; "
                "the exact loss of a confident wrong answer is about |x|",
                "def bce_with_logits(logits, targets):\n"
                "    p = np.clip(1 / (1 + np.exp(-logits)), 1e-7, 1 - 1e-7)\n"
                "    return float(np.mean(-(targets * np.log(p) + (1 - targets) * np.log(1 - p))))\n"),
        Mistake("sum instead of mean", "average over all entries, do not sum",
                "def bce_with_logits(logits, targets):\n"
                "    x, y = logits, targets\n"
                "    return float(np.sum(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))\n"),
        Mistake("x*y added",
                "the middle term is minus x*y: max(x, 0) - x*y + log1p(exp(-|x|)) (with + the "
                "loss grows when the logit agrees with the target)",
                "def bce_with_logits(logits, targets):\n"
                "    x, y = logits, targets\n"
                "    return float(np.mean(np.maximum(x, 0) + x * y + np.log1p(np.exp(-np.abs(x)))))\n"),
        Mistake("exp(+|x|)",
                "log1p(exp(-|x|)), with a minus: exp(|x|) overflows, and is not the same term",
                "def bce_with_logits(logits, targets):\n"
                "    x, y = logits, targets\n"
                "    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(np.abs(x)))))\n"),
    ],
)


def _mse_cases(rng):
    return [
        Case("8 x 3", {"predictions": rng.normal(size=(8, 3)), "targets": rng.normal(size=(8, 3))}),
        Case("vector of 5", {"predictions": rng.normal(size=5), "targets": rng.normal(size=5)}),
        Case("equal inputs", {"predictions": np.ones((2, 2)), "targets": np.ones((2, 2))}),
        Case("one entry", {"predictions": np.array([3.0]), "targets": np.array([1.0])}),
        Case("3-D", {"predictions": rng.normal(size=(2, 3, 4)), "targets": rng.normal(size=(2, 3, 4))}),
    ]


mse = Exercise(
    id="01.mse", symbol="mse", points=1,
    title="mean squared error",
    reference=losses.mse, cases=_mse_cases,
    mistakes=[
        Mistake("sum instead of mean", "average over all entries, do not sum",
                "def mse(predictions, targets):\n"
                "    return float(np.sum((predictions - targets) ** 2))\n"),
        Mistake("summed over features",
                "average over every entry; summing the last axis then averaging the rows is "
                "D times larger",
                "def mse(predictions, targets):\n"
                "    d = (predictions - targets) ** 2\n"
                "    return float(d.reshape(d.shape[0], -1).sum(axis=1).mean())\n"),
        Mistake("root mean square", "no square root: that is the RMSE",
                "def mse(predictions, targets):\n"
                "    return float(np.sqrt(np.mean((predictions - targets) ** 2)))\n"),
        Mistake("absolute error", "square the differences: |p - t| is the mean absolute error",
                "def mse(predictions, targets):\n"
                "    return float(np.mean(np.abs(predictions - targets)))\n"),
    ],
)

# --------------------------------------------------------------------------- perception loss


def _perception_cases(rng):
    return [
        Case("N=6 samples, M=3 targets", {"f": rng.normal(size=6), "g": rng.normal(size=(6, 3)),
                                          "w": rng.random((6, 3))}),
        Case("square: N=M=4", {"f": rng.normal(size=4), "g": rng.normal(size=(4, 4)),
                               "w": rng.random((4, 4))}),
        Case("one sample", {"f": np.array([0.5]), "g": rng.normal(size=(1, 5)),
                            "w": rng.random((1, 5))}),
        Case("zero weights", {"f": rng.normal(size=3), "g": rng.normal(size=(3, 2)),
                              "w": np.zeros((3, 2))}),
        Case("prediction equals every target", {"f": np.arange(3.0), "g": np.repeat(np.arange(3.0)[:, None], 2, 1),
                                               "w": rng.random((3, 2))}),
    ]


perception_loss = Exercise(
    id="01.perception_loss", symbol="perception_loss", points=2,
    title="the seed's weighted squared error",
    reference=losses.perception_loss, cases=_perception_cases,
    mistakes=[
        Mistake("mean over all entries", "divide by N only: the sum over the M targets is a sum",
                "def perception_loss(f, g, w):\n"
                "    return float(np.mean(w * (f[:, None] - g) ** 2))\n"),
        Mistake("f broadcast along the wrong axis",
                "f has one value per sample, i.e. per row of g: use f[:, None], not f[None, :]",
                "def perception_loss(f, g, w):\n"
                "    return float(np.sum(w * (f[None, :] - g) ** 2) / len(f))\n"),
        Mistake("weights ignored", "multiply each squared error by its weight w[i, j]",
                "def perception_loss(f, g, w):\n"
                "    return float(np.sum((f[:, None] - g) ** 2) / len(f))\n"),
        Mistake("weights squared", "the weight multiplies the squared error; do not square it",
                "def perception_loss(f, g, w):\n"
                "    return float(np.sum((w * (f[:, None] - g)) ** 2) / len(f))\n"),
    ],
)


perception_loss_grad = Exercise(
    id="01.perception_loss_grad", symbol="perception_loss_grad", points=2,
    title="its gradient with respect to f",
    reference=losses.perception_loss_grad, cases=_perception_cases,
    run=lambda fn, case: array_not_list(call(fn, case), "perception_loss_grad's result"),
    expected=gradient_of(losses.perception_loss, "f"), tolerance=GRADIENT,
    mistakes=[
        Mistake("factor 2 missing", "d/df of (f - g)^2 is 2 (f - g)",
                "def perception_loss_grad(f, g, w):\n"
                "    return np.sum(w * (f[:, None] - g), axis=1) / len(f)\n"),
        Mistake("divided by N*M", "the loss divides by N only, so does its gradient",
                "def perception_loss_grad(f, g, w):\n"
                "    return 2 * np.sum(w * (f[:, None] - g), axis=1) / w.size\n"),
        Mistake("sign flipped", "the derivative of (f - g)^2 with respect to f is +2 (f - g)",
                "def perception_loss_grad(f, g, w):\n"
                "    return 2 * np.sum(w * (g - f[:, None]), axis=1) / len(f)\n"),
        Mistake("summed over samples",
                "sum over the targets j (axis 1) for each sample i, not over the samples",
                "def perception_loss_grad(f, g, w):\n"
                "    return 2 * np.sum(w * (f[:, None] - g), axis=0)[: len(f)] / len(f)\n"),
    ],
)

# --------------------------------------------------------------------------- KL divergence


def _distributions(rng, shape, scale=1.0):
    return losses.softmax(rng.normal(scale=scale, size=shape))


def _kl_cases(rng):
    one_hot_p = np.eye(4)[[0, 3, 1]]
    p = _distributions(rng, (5, 4))
    return [
        Case("5 x 4", {"p": p, "q": _distributions(rng, (5, 4))}),
        Case("p with zeros (one-hot rows)", {"p": one_hot_p, "q": _distributions(rng, (3, 4))}),
        Case("identical", {"p": p, "q": p.copy()}),
        Case("batch of one", {"p": _distributions(rng, (1, 6), 2), "q": _distributions(rng, (1, 6))}),
        Case("peaked q", {"p": _distributions(rng, (2, 5)), "q": _distributions(rng, (2, 5), 5)}),
    ]


kl_divergence = Exercise(
    id="01.kl_divergence", symbol="kl_divergence", points=2,
    title="KL(p || q), batch mean",
    reference=losses.kl_divergence, cases=_kl_cases,
    mistakes=[
        Mistake("reversed", "KL is not symmetric: KL(p || q) = sum p log(p / q), with p outside "
                            "the log",
                "def kl_divergence(p, q):\n"
                "    return float(np.sum(q * np.log(q / p), axis=1).mean())\n"),
        Mistake("0 log 0 gives nan", "0 * log(0) is nan in floating point; skip the entries where "
                                     "p is 0 (their contribution is 0)",
                "def kl_divergence(p, q):\n"
                "    return float(np.sum(p * np.log(p / q), axis=1).mean())\n"),
        Mistake("mean over every entry",
                "sum over the classes, then average over the rows (not a mean of all N*C terms)",
                "def kl_divergence(p, q):\n"
                "    t = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / q), 0.0)\n"
                "    return float(t.mean())\n"),
        Mistake("sum over the batch", "average over the rows, do not add them up",
                "def kl_divergence(p, q):\n"
                "    t = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / q), 0.0)\n"
                "    return float(t.sum())\n"),
    ],
)


LESSON = Lesson(
    id="01", slug="01_losses", title="Loss functions",
    exercises=[softmax, log_softmax, cross_entropy, cross_entropy_grad, masked_lm_loss,
               bce_with_logits, mse, perception_loss, perception_loss_grad, kl_divergence],
)
