"""Lesson 02 - Optimizers: exercise specs."""

import numpy as np

from solutions import losses, optimizers

from ..compare import GRADIENT
from ..gradcheck import numerical_gradient
from ..spec import Case, Exercise, Lesson, Mistake

# --------------------------------------------------------------------------- optimizers
# An optimizer case holds the initial parameters (args), the constructor's
# settings (kwargs) and a fixed sequence of gradients, one list per step (data).
# The driver records every parameter after every step.


def run_optimizer(cls, case):
    params = [p.copy() for p in case.args["params"]]
    opt = cls(params, **case.kwargs)
    history = [[] for _ in params]
    lrs = case.data.get("lrs")                # a schedule's rates, set through opt.lr
    given_each_step = []
    for step, grads in enumerate(case.data["grads"]):
        if lrs is not None:
            opt.lr = lrs[step]
        given = [g.copy() for g in grads]
        opt.step(given)
        given_each_step.append(given)
        for k, p in enumerate(params):
            history[k].append(p.copy())
    # the caller's gradients (a model's grads, which it goes on adding into) stay as given,
    # also after later steps: a velocity that *is* the first step's gradient array changes it
    left_alone = all(np.array_equal(a, b)
                     for given, grads in zip(given_each_step, case.data["grads"])
                     for a, b in zip(given, grads))
    return {**{f"params[{k}] after each step (step, ...)": np.stack(h)
               for k, h in enumerate(history)},
            "the gradients given to step() left as they were, after every later step": left_alone}


def run_adam(cls, case):
    """``run_optimizer``; in the case that asks, the parameters kept as ``self.params``, the
    name the docstring gives and AdamW builds on (the grader's AdamW inherits the reference
    Adam, whose parameters are there)."""
    result = run_optimizer(cls, case)
    if case.data.get("self.params"):
        params = [p.copy() for p in case.args["params"]]
        kept = getattr(cls(params, **case.kwargs), "params", None)
        result["self.params holds the parameter arrays given"] = \
            isinstance(kept, (list, tuple)) and len(kept) == len(params) and \
            all(a is b for a, b in zip(kept, params))
    return result


def _with_params_case(cases):
    """The cases, the first one again as the case that checks ``self.params``."""
    first = cases[0].copy()
    first.name = "the parameters kept as self.params"
    first.data["self.params"] = True
    return cases + [first]


def _grad_steps(rng, shapes, steps, scale=1.0):
    return [[rng.normal(scale=scale, size=s) for s in shapes] for _ in range(steps)]


def _optimizer_cases(rng, settings):
    shapes = [(3, 4), (4,)]
    zero_then_some = [[np.zeros(s) for s in shapes] for _ in range(3)] + _grad_steps(rng, shapes, 3)
    some_then_zero = _grad_steps(rng, shapes, 3) + [[np.zeros(s) for s in shapes] for _ in range(3)]
    cases = []
    for label, kwargs in settings:
        cases.append(Case(f"{label}, 2 params, 6 steps",
                          {"params": [rng.normal(size=s) for s in shapes]}, kwargs,
                          {"grads": _grad_steps(rng, shapes, 6)}))
    label, kwargs = settings[-1]
    cases += [
        Case(f"{label}, zero gradients first", {"params": [rng.normal(size=s) for s in shapes]},
             kwargs, {"grads": zero_then_some}),
        Case(f"{label}, zero gradients last", {"params": [rng.normal(size=s) for s in shapes]},
             kwargs, {"grads": some_then_zero}),
        Case(f"{label}, one param, 25 steps", {"params": [rng.normal(size=(2,))]}, kwargs,
             {"grads": _grad_steps(rng, [(2,)], 25, scale=0.1)}),
        Case(f"{label}, two params of the same shape (each its own state)",
             {"params": [rng.normal(size=(2, 3)), rng.normal(size=(2, 3))]}, kwargs,
             {"grads": _grad_steps(rng, [(2, 3), (2, 3)], 4)}),
        Case(f"{label}, lr changed through opt.lr every step",
             {"params": [rng.normal(size=s) for s in shapes]}, kwargs,
             {"grads": _grad_steps(rng, shapes, 5), "lrs": [0.0, 0.02, 0.05, 0.01, 0.1]}),
    ]
    return cases


sgd = Exercise(
    id="02.sgd", symbol="SGD", points=2,
    title="SGD with momentum",
    reference=optimizers.SGD, run=run_optimizer,
    cases=lambda rng: _optimizer_cases(rng, [("lr=0.1", {"lr": 0.1}),
                                             ("lr=0.05, momentum=0.9", {"lr": 0.05, "momentum": 0.9})]),
    mistakes=[
        Mistake("not in place",
                "p = p - lr * v makes a new array and leaves the caller's parameter unchanged; "
                "update in place with p -= lr * v",
                "class SGD:\n"
                "    def __init__(self, params, lr, momentum=0.0):\n"
                "        self.params, self.lr, self.momentum = params, lr, momentum\n"
                "        self.v = [np.zeros_like(p) for p in params]\n"
                "    def step(self, grads):\n"
                "        for i, (p, g) in enumerate(zip(self.params, grads)):\n"
                "            self.v[i] = self.momentum * self.v[i] + g\n"
                "            p = p - self.lr * self.v[i]\n"),
        Mistake("dampened momentum",
                "here velocity = momentum * velocity + g, without the (1 - momentum) factor on g",
                "class SGD:\n"
                "    def __init__(self, params, lr, momentum=0.0):\n"
                "        self.params, self.lr, self.momentum = params, lr, momentum\n"
                "        self.v = [np.zeros_like(p) for p in params]\n"
                "    def step(self, grads):\n"
                "        for p, g, v in zip(self.params, grads, self.v):\n"
                "            v[...] = self.momentum * v + (1 - self.momentum) * g\n"
                "            p -= self.lr * v\n"),
        Mistake("velocity forgotten",
                "keep the velocity between steps (in self); a fresh one every step is plain SGD",
                "class SGD:\n"
                "    def __init__(self, params, lr, momentum=0.0):\n"
                "        self.params, self.lr, self.momentum = params, lr, momentum\n"
                "    def step(self, grads):\n"
                "        for p, g in zip(self.params, grads):\n"
                "            v = self.momentum * np.zeros_like(p) + g\n"
                "            p -= self.lr * v\n"),
        Mistake("gradient ascent", "step against the gradient: p -= lr * v",
                "class SGD:\n"
                "    def __init__(self, params, lr, momentum=0.0):\n"
                "        self.params, self.lr, self.momentum = params, lr, momentum\n"
                "        self.v = [np.zeros_like(p) for p in params]\n"
                "    def step(self, grads):\n"
                "        for p, g, v in zip(self.params, grads, self.v):\n"
                "            v *= self.momentum\n"
                "            v += g\n"
                "            p += self.lr * v\n"),
    ],
)

_ADAM_SETTINGS = [("lr=0.01", {"lr": 0.01}),
                  ("lr=0.05, betas=(0.8, 0.99), eps=1e-6",
                   {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6})]

_ADAM_TEMPLATE = """class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.eps = params, lr, eps
        self.b1, self.b2 = betas
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
    def step(self, grads):
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m[...] = self.b1 * m + (1 - self.b1) * g
            v[...] = self.b2 * v + (1 - self.b2) * {second}
            m_hat = m / {correction1}
            v_hat = v / {correction2}
            p -= self.lr * m_hat / ({denominator})
"""


def _adam_mistake(**parts):
    """Adam with some of its pieces replaced by wrong ones."""
    defaults = {"second": "g * g", "correction1": "(1 - self.b1 ** self.t)",
                "correction2": "(1 - self.b2 ** self.t)", "denominator": "np.sqrt(v_hat) + self.eps"}
    defaults.update(parts)
    return _ADAM_TEMPLATE.format(**defaults)


adam = Exercise(
    id="02.adam", symbol="Adam", points=3,
    title="Adam with bias correction",
    reference=optimizers.Adam, run=run_adam,
    cases=lambda rng: _with_params_case(_optimizer_cases(rng, _ADAM_SETTINGS)),
    mistakes=[
        Mistake("no bias correction",
                "m and v start at 0, so early on they are too small; divide them by "
                "(1 - beta1**t) and (1 - beta2**t)",
                _adam_mistake(correction1="1", correction2="1")),
        Mistake("step counted from 0",
                "t is 1 at the first step (t += 1 before the correction); with t = 0 the "
                "correction divides by 1 - beta**0 = 0",
                _adam_mistake(correction1="(1 - self.b1 ** (self.t - 1))",
                              correction2="(1 - self.b2 ** (self.t - 1))")),
        Mistake("eps inside the square root", "eps is added after the square root: sqrt(v_hat) + eps",
                _adam_mistake(denominator="np.sqrt(v_hat + self.eps)")),
        Mistake("second moment of |g|", "v averages the *squared* gradient g * g",
                _adam_mistake(second="np.abs(g)")),
        Mistake("step counted from 2",
                "t is 1 at the first step: start at t = 0 and add 1 once per step, before the "
                "correction",
                _adam_mistake(correction1="(1 - self.b1 ** (self.t + 1))",
                              correction2="(1 - self.b2 ** (self.t + 1))")),
        Mistake("m and v are one list",
                "`self.m = self.v = [...]` makes m and v one list of arrays, so each update "
                "overwrites the other: give each moment its own zeros",
                _adam_mistake().replace(
                    "        self.m = [np.zeros_like(p) for p in params]\n"
                    "        self.v = [np.zeros_like(p) for p in params]\n",
                    "        self.m = self.v = [np.zeros_like(p) for p in params]\n")),
    ],
)

_ADAMW_SETTINGS = [("lr=0.05, weight_decay=0.1", {"lr": 0.05, "weight_decay": 0.1}),
                   ("lr=0.1, betas=(0.8, 0.99), weight_decay=0.5",
                    {"lr": 0.1, "betas": (0.8, 0.99), "weight_decay": 0.5})]

_ADAMW_L2 = """class AdamW(Adam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        self.weight_decay = weight_decay
    def step(self, grads):
        super().step([g + self.weight_decay * p for p, g in zip(self.params, grads)])
"""

adamw = Exercise(
    id="02.adamw", symbol="AdamW", points=2,
    title="AdamW: decoupled weight decay",
    reference=optimizers.AdamW, run=run_adam, requires=("02.adam",),
    cases=lambda rng: _with_params_case(_optimizer_cases(rng, _ADAMW_SETTINGS)),
    mistakes=[
        Mistake("L2 in the gradient",
                "adding weight_decay * p to the gradient is L2 regularisation, which Adam then "
                "rescales; AdamW shrinks the weights directly: p *= 1 - lr * weight_decay",
                _ADAMW_L2),
        Mistake("decay without the learning rate",
                "the decay is scaled by the learning rate: p *= 1 - lr * weight_decay",
                "class AdamW(Adam):\n"
                "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):\n"
                "        super().__init__(params, lr=lr, betas=betas, eps=eps)\n"
                "        self.weight_decay = weight_decay\n"
                "    def step(self, grads):\n"
                "        for p in self.params:\n"
                "            p *= 1 - self.weight_decay\n"
                "        super().step(grads)\n"),
        Mistake("no decay", "weight_decay must shrink the parameters every step",
                "class AdamW(Adam):\n"
                "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):\n"
                "        super().__init__(params, lr=lr, betas=betas, eps=eps)\n"
                "        self.weight_decay = weight_decay\n"),
        Mistake("decay added", "shrink the weights (multiply by 1 - lr * wd), do not grow them",
                "class AdamW(Adam):\n"
                "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):\n"
                "        super().__init__(params, lr=lr, betas=betas, eps=eps)\n"
                "        self.weight_decay = weight_decay\n"
                "    def step(self, grads):\n"
                "        for p in self.params:\n"
                "            p *= 1 + self.lr * self.weight_decay\n"
                "        super().step(grads)\n"),
    ],
)

# --------------------------------------------------------------------------- schedule


def run_schedule(fn, case):
    """The learning rate at every step from 0 to a few steps past total_steps."""
    total = case.args["total_steps"]
    return np.array([float(fn(step, *case.args.values())) for step in range(total + 4)])


def _schedule_cases(rng):
    return [
        Case("linear, warmup 10 of 50", {"base_lr": 1e-3, "warmup_steps": 10, "total_steps": 50,
                                         "schedule": "linear"}),
        Case("cosine, warmup 10 of 50", {"base_lr": 1e-3, "warmup_steps": 10, "total_steps": 50,
                                         "schedule": "cosine"}),
        Case("linear, no warmup", {"base_lr": 0.5, "warmup_steps": 0, "total_steps": 20,
                                   "schedule": "linear"}),
        Case("cosine, no warmup", {"base_lr": 0.5, "warmup_steps": 0, "total_steps": 20,
                                   "schedule": "cosine"}),
        Case("warmup 1 of 5", {"base_lr": 2.0, "warmup_steps": 1, "total_steps": 5,
                               "schedule": "cosine"}),
    ]


_SCHEDULE_TEMPLATE = '''import math
def scheduled_lr(step, base_lr, warmup_steps, total_steps, schedule="linear"):
    if step < warmup_steps:
        return {warmup}
    progress = {progress}
    if schedule == "linear":
        return {linear}
    return {cosine}
'''


def _schedule_mistake(**parts):
    defaults = {"warmup": "base_lr * step / warmup_steps",
                "progress": "min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))",
                "linear": "base_lr * (1 - progress)",
                "cosine": "base_lr * 0.5 * (1 + math.cos(math.pi * progress))"}
    defaults.update(parts)
    return _SCHEDULE_TEMPLATE.format(**defaults)


scheduled_lr = Exercise(
    id="02.scheduled_lr", symbol="scheduled_lr", points=2,
    title="linear warmup, then linear or cosine decay",
    reference=optimizers.scheduled_lr, cases=_schedule_cases, run=run_schedule,
    mistakes=[
        Mistake("warmup off by one",
                "step counts the steps already taken, so the first step (step 0) has lr 0 during "
                "warmup: base_lr * step / warmup_steps, not (step + 1)",
                _schedule_mistake(warmup="base_lr * (step + 1) / warmup_steps")),
        Mistake("decay from step 0",
                "the decay starts when warmup ends: progress = (step - warmup_steps) / "
                "(total_steps - warmup_steps)",
                _schedule_mistake(progress="min(1.0, step / total_steps)")),
        Mistake("not clamped after the end",
                "after total_steps the rate must stay 0: clamp progress at 1",
                _schedule_mistake(progress="(step - warmup_steps) / (total_steps - warmup_steps)")),
        Mistake("cosine without the half",
                "the cosine schedule is base_lr * 0.5 * (1 + cos(pi * progress)): it starts at "
                "base_lr, not 2 * base_lr",
                _schedule_mistake(cosine="base_lr * (1 + math.cos(math.pi * progress))")),
        Mistake("divides by zero without warmup",
                "with warmup_steps = 0 there is no warmup: test step < warmup_steps before "
                "dividing by warmup_steps",
                "import math\n"
                "def scheduled_lr(step, base_lr, warmup_steps, total_steps, schedule=\"linear\"):\n"
                "    warm = min(1.0, step / warmup_steps)\n"
                "    progress = min(1.0, max(0.0, (step - warmup_steps) / (total_steps - warmup_steps)))\n"
                "    decay = 1 - progress if schedule == 'linear' else 0.5 * (1 + math.cos(math.pi * progress))\n"
                "    return base_lr * warm * decay\n"),
    ],
)

# --------------------------------------------------------------------------- clipping


def run_clip(fn, case):
    grads = [g.copy() for g in case.args["grads"]]
    arrays = list(grads)                      # the caller's arrays: scaled in place, not replaced
    norm = fn(grads, case.args["max_norm"])
    return {"returned norm": norm, "the caller's gradient arrays after the call": arrays}


def _clip_cases(rng):
    return [
        Case("norm above max_norm", {"grads": [rng.normal(size=(3, 4)), rng.normal(size=5)],
                                     "max_norm": 1.0}),
        Case("norm below max_norm", {"grads": [rng.normal(size=(2, 2)) * 0.1, rng.normal(size=3) * 0.1],
                                     "max_norm": 5.0}),
        Case("one large, one small tensor", {"grads": [rng.normal(size=4) * 10, rng.normal(size=4) * 0.01],
                                             "max_norm": 1.0}),
        Case("all zero", {"grads": [np.zeros((2, 3)), np.zeros(2)], "max_norm": 1.0}),
        Case("a single tensor", {"grads": [rng.normal(size=(5, 5))], "max_norm": 0.5}),
    ]


clip_grad_norm = Exercise(
    id="02.clip_grad_norm", symbol="clip_grad_norm", points=2,
    title="global-norm gradient clipping",
    reference=optimizers.clip_grad_norm, cases=_clip_cases, run=run_clip,
    mistakes=[
        Mistake("per tensor",
                "clip by the *global* norm of all gradients together, so their directions "
                "relative to each other are kept",
                "def clip_grad_norm(grads, max_norm):\n"
                "    total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))\n"
                "    for g in grads:\n"
                "        n = np.sqrt(np.sum(g * g))\n"
                "        if n > max_norm:\n"
                "            g *= max_norm / (n + 1e-6)\n"
                "    return total\n"),
        Mistake("always rescaled",
                "only scale when the norm is above max_norm; small gradients stay as they are",
                "def clip_grad_norm(grads, max_norm):\n"
                "    total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))\n"
                "    for g in grads:\n"
                "        g *= max_norm / (total + 1e-6)\n"
                "    return total\n"),
        Mistake("norm after clipping", "return the norm measured *before* clipping",
                "def clip_grad_norm(grads, max_norm):\n"
                "    total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))\n"
                "    if total > max_norm:\n"
                "        for g in grads:\n"
                "            g *= max_norm / (total + 1e-6)\n"
                "    return float(np.sqrt(sum(np.sum(g * g) for g in grads)))\n"),
        Mistake("no 1e-6 in the scale",
                "scale by max_norm / (norm + 1e-6), as the docstring (and PyTorch) does: without "
                "the 1e-6 the clipped values differ in their 7th digit",
                "def clip_grad_norm(grads, max_norm):\n"
                "    total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))\n"
                "    if total > max_norm:\n"
                "        for g in grads:\n"
                "            g *= max_norm / total\n"
                "    return total\n"),
        Mistake("sum of norms",
                "the global norm is sqrt(sum of all squared entries), not the sum of the "
                "tensors' norms",
                "def clip_grad_norm(grads, max_norm):\n"
                "    total = float(sum(np.sqrt(np.sum(g * g)) for g in grads))\n"
                "    if total > max_norm:\n"
                "        for g in grads:\n"
                "            g *= max_norm / (total + 1e-6)\n"
                "    return total\n"),
        Mistake("not in place",
                "change the arrays in the list in place (g *= scale); building new arrays leaves "
                "the caller's gradients unclipped",
                "def clip_grad_norm(grads, max_norm):\n"
                "    total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))\n"
                "    if total > max_norm:\n"
                "        grads = [g * max_norm / (total + 1e-6) for g in grads]\n"
                "    return total\n"),
    ],
)

# --------------------------------------------------------------------------- logistic regression


def _expected_logreg(case):
    W, b, X, y = case.args.values()
    loss = losses.cross_entropy(X @ W + b, y)
    dW = numerical_gradient(lambda w: losses.cross_entropy(X @ w + b, y), W)
    db = numerical_gradient(lambda c: losses.cross_entropy(X @ W + c, y), b)
    return (loss, dW, db)


def _logreg_cases(rng):
    def case(name, n, d, c, w_scale=0.1):
        return Case(name, {"W": rng.normal(scale=w_scale, size=(d, c)), "b": rng.normal(size=c) * 0.1,
                           "X": rng.normal(size=(n, d)), "y": rng.integers(0, c, size=n)})
    return [
        case("N=8, D=5, C=3", 8, 5, 3),
        case("N=1 (one sample)", 1, 4, 3),
        case("square X and W: N=D=C=4", 4, 4, 4),
        case("large weights", 6, 3, 5, w_scale=5.0),
        case("N=20, D=2, C=2", 20, 2, 2),
    ]


logreg_loss_and_grad = Exercise(
    id="02.logreg_loss_and_grad", symbol="logreg_loss_and_grad", points=3,
    title="softmax regression: loss and gradients",
    reference=optimizers.logreg_loss_and_grad, cases=_logreg_cases,
    expected=_expected_logreg, tolerance=GRADIENT,
    requires=("01.softmax", "01.log_softmax", "01.cross_entropy", "01.cross_entropy_grad"),
    mistakes=[
        Mistake("dW transposed",
                "dW must have W's shape (D, C): dW = X.T @ dlogits",
                "def logreg_loss_and_grad(W, b, X, y):\n"
                "    logits = X @ W + b\n"
                "    d = cross_entropy_grad(logits, y)\n"
                "    return cross_entropy(logits, y), (d.T @ X), d.sum(axis=0)\n"),
        Mistake("mean taken twice",
                "cross_entropy_grad already divides by N; the sums over samples in dW and db "
                "must not divide again",
                "def logreg_loss_and_grad(W, b, X, y):\n"
                "    logits = X @ W + b\n"
                "    d = cross_entropy_grad(logits, y)\n"
                "    return cross_entropy(logits, y), X.T @ d / len(y), d.mean(axis=0)\n"),
        Mistake("bias left out",
                "the logits are X @ W + b: the bias changes the loss and the gradients",
                "def logreg_loss_and_grad(W, b, X, y):\n"
                "    logits = X @ W\n"
                "    d = cross_entropy_grad(logits, y)\n"
                "    return cross_entropy(logits, y), X.T @ d, d.sum(axis=0)\n"),
        Mistake("no 1/N",
                "softmax - one_hot is the gradient of the *summed* loss; the loss is a mean, so "
                "divide by N (or use cross_entropy_grad)",
                "def logreg_loss_and_grad(W, b, X, y):\n"
                "    logits = X @ W + b\n"
                "    d = softmax(logits)\n"
                "    d[np.arange(len(y)), y] -= 1\n"
                "    return cross_entropy(logits, y), X.T @ d, d.sum(axis=0)\n"),
    ],
)


LESSON = Lesson(
    id="02", slug="02_optimizers", title="Optimizers",
    exercises=[sgd, adam, adamw, scheduled_lr, clip_grad_norm, logreg_loss_and_grad],
)
