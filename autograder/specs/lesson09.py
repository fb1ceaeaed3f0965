"""Lesson 09 - Pretraining: exercise specs.

Every exercise is graded on small fake data, so grading takes milliseconds:

* ``training_step`` trains a toy model (an embedding table, a LayerNorm-like gain, a
  linear layer with a bias: the four kinds of parameter of a BERT) whose loss and
  gradients the driver computes; the driver builds the two AdamW groups (lesson 02's
  reference) and records the parameters after every step, so the order of clipping,
  scheduling and stepping shows in the numbers;
* ``evaluate_mlm`` gets a fake model whose logits are a lookup table, and batches of
  different sizes with different numbers of masked positions;
* ``optimizer_state`` and ``load_optimizer_state`` are graded by a round trip: the
  driver trains a few steps, saves (or restores) with the learner's function and the
  reference's counterpart, and carries on training, so a missing step count or an
  aliased moment shows in the parameters.
"""

import dataclasses
import math

import numpy as np

from solutions import bert, losses, optimizers, pretraining

from ..spec import Case, Exercise, Lesson, Mistake, copy_arrays, unchanged

# --------------------------------------------------------------------------- num_training_steps


def _steps_cases(rng):
    return [
        Case("10 examples, batch 5, 3 epochs", {"num_examples": 10, "batch_size": 5,
                                                 "num_train_epochs": 3}),
        Case("10 examples, batch 3, 2 epochs (a smaller last batch)",
             {"num_examples": 10, "batch_size": 3, "num_train_epochs": 2}),
        Case("100 examples, batch 25, 2.5 epochs", {"num_examples": 100, "batch_size": 25,
                                                     "num_train_epochs": 2.5}),
        Case("100 examples, batch 32, 2.5 epochs", {"num_examples": 100, "batch_size": 32,
                                                     "num_train_epochs": 2.5}),
        Case("20000 examples, batch 64, half an epoch",
             {"num_examples": 20000, "batch_size": 64, "num_train_epochs": 0.5}),
        Case("batch larger than the dataset", {"num_examples": 5, "batch_size": 8,
                                               "num_train_epochs": 3}),
        Case("batch of one", {"num_examples": 7, "batch_size": 1, "num_train_epochs": 2}),
        Case("max_steps=7 overrides 3 epochs", {"num_examples": 100, "batch_size": 32,
                                                "num_train_epochs": 3, "max_steps": 7}),
        Case("max_steps=-1: the epochs decide", {"num_examples": 100, "batch_size": 10,
                                                 "num_train_epochs": 1, "max_steps": -1}),
        Case("max_steps=0 is not > 0: the epochs decide",
             {"num_examples": 50, "batch_size": 16, "num_train_epochs": 2, "max_steps": 0}),
        Case("max_steps=50, more than 3 epochs' 12 steps: max_steps still decides",
             {"num_examples": 100, "batch_size": 32, "num_train_epochs": 3, "max_steps": 50}),
    ]


num_training_steps = Exercise(
    id="09.num_training_steps", symbol="num_training_steps", points=1,
    title="the number of optimizer steps from epochs and batch size",
    reference=pretraining.num_training_steps, cases=_steps_cases,
    mistakes=[
        Mistake("the total rounded down",
                "round the total up: 2.5 epochs of 4 steps is 10 steps, but 2.5 epochs of 3 "
                "steps is 7.5, and the half step is a step: math.ceil(num_train_epochs * "
                "steps_per_epoch)",
                "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
                "    if max_steps > 0:\n"
                "        return max_steps\n"
                "    return int(num_train_epochs * math.ceil(num_examples / batch_size))\n"),
        Mistake("last batch dropped",
                "the last, smaller batch of an epoch is a step too: an epoch has "
                "ceil(num_examples / batch_size) steps",
                "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
                "    if max_steps > 0:\n"
                "        return max_steps\n"
                "    return math.ceil(num_train_epochs * (num_examples // batch_size))\n"),
        Mistake("rounded once at the end",
                "every epoch ends with its own smaller batch: round the steps per epoch up "
                "first, then multiply by the epochs (and round up again)",
                "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
                "    if max_steps > 0:\n"
                "        return max_steps\n"
                "    return math.ceil(num_train_epochs * num_examples / batch_size)\n"),
        Mistake("fractional epochs truncated",
                "num_train_epochs may be fractional (2.5 epochs is two passes and half of a "
                "third): ceil(num_train_epochs * steps_per_epoch)",
                "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
                "    if max_steps > 0:\n"
                "        return max_steps\n"
                "    return int(num_train_epochs) * math.ceil(num_examples / batch_size)\n"),
        Mistake("max_steps as an upper bound",
                "max_steps > 0 *is* the number of steps, also when the epochs would give fewer "
                "(Hugging Face trains on, starting new epochs), not only a cap",
                "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
                "    steps = math.ceil(num_train_epochs * math.ceil(num_examples / batch_size))\n"
                "    return min(steps, max_steps) if max_steps > 0 else steps\n"),
        Mistake("max_steps ignored",
                "max_steps > 0 sets the number of steps, whatever num_train_epochs says",
                "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
                "    return math.ceil(num_train_epochs * math.ceil(num_examples / batch_size))\n"),
    ],
)

# --------------------------------------------------------------------------- epoch_batches


def run_epoch_batches(fn, case):
    """The batches of every epoch in ``case.data["epochs"]``: lists of int arrays."""
    epochs = [fn(*case.args.values(), epoch, case.data["seed"]) for epoch in case.data["epochs"]]
    for batches in epochs:
        kinds = {type(b).__name__ if not isinstance(b, np.ndarray) else f"{b.dtype} array"
                 for b in batches} if isinstance(batches, list) else {type(batches).__name__}
        if not isinstance(batches, list) or not all(
                isinstance(b, np.ndarray) and b.dtype.kind in "iu" for b in batches):
            raise TypeError("epoch_batches returns a list of int arrays (the indices of each "
                            f"batch), as its docstring says; got {', '.join(sorted(kinds))}")
    return epochs


def _batches_cases(rng):
    def case(name, n, size, epochs, seed):
        return Case(name, {"num_examples": n, "batch_size": size},
                    data={"epochs": epochs, "seed": seed})
    return [
        case("10 examples, batch 4, epochs 0, 1, 2, seed 0", 10, 4, [0, 1, 2], 0),
        case("12 examples, batch 4 (no smaller batch), epochs 0, 1, seed 7", 12, 4, [0, 1], 7),
        case("batch larger than the dataset, epochs 0 and 3", 5, 8, [0, 3], 1),
        case("one example", 1, 1, [0, 1], 0),
        case("100 examples, batch 32, epoch 5, seed 42", 100, 32, [5], 42),
    ]


epoch_batches = Exercise(
    id="09.epoch_batches", symbol="epoch_batches", points=2,
    title="the batches of one epoch: a new seeded shuffle every epoch",
    reference=pretraining.epoch_batches, cases=_batches_cases, run=run_epoch_batches,
    mistakes=[
        Mistake("same order every epoch",
                "seed the generator with [seed, epoch]: each epoch gets its own order, and the "
                "same one again when a resumed run comes back to it",
                "def epoch_batches(num_examples, batch_size, epoch, seed):\n"
                "    order = np.random.default_rng(seed).permutation(num_examples)\n"
                "    return [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]\n"),
        Mistake("seeded with seed + epoch",
                "seed the generator with the pair [seed, epoch]: seed + epoch gives run 0's "
                "epoch 1 the order of run 1's epoch 0, so two seeds share their shuffles",
                "def epoch_batches(num_examples, batch_size, epoch, seed):\n"
                "    order = np.random.default_rng(seed + epoch).permutation(num_examples)\n"
                "    return [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]\n"),
        Mistake("smaller last batch dropped",
                "keep the last batch even when it is smaller: every example is seen once per epoch",
                "def epoch_batches(num_examples, batch_size, epoch, seed):\n"
                "    order = np.random.default_rng([seed, epoch]).permutation(num_examples)\n"
                "    return [order[i:i + batch_size]\n"
                "            for i in range(0, num_examples - batch_size + 1, batch_size)]\n"),
        Mistake("not shuffled",
                "shuffle every epoch with np.random.default_rng([seed, epoch]).permutation: "
                "batches in the same fixed order teach the model the order",
                "def epoch_batches(num_examples, batch_size, epoch, seed):\n"
                "    order = np.arange(num_examples)\n"
                "    return [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]\n"),
        Mistake("drawn with replacement",
                "an epoch shows every example exactly once: a permutation, not random draws "
                "with replacement",
                "def epoch_batches(num_examples, batch_size, epoch, seed):\n"
                "    order = np.random.default_rng([seed, epoch]).integers(0, num_examples, num_examples)\n"
                "    return [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]\n"),
    ],
)

# --------------------------------------------------------------------------- decay_parameter_names


def _shapes_of(config):
    params = bert.init_bert(bert.BertConfig(**config), np.random.default_rng(0), np.float64)
    return {name: np.zeros(value.shape) for name, value in params.items()}


def _decay_cases(rng):
    tiny = dict(vocab_size=12, hidden_size=4, num_layers=2, num_heads=2, intermediate_size=8,
                max_position_embeddings=8)
    return [
        Case("a tiny BERT (2 post-LN layers)", {"params": _shapes_of(tiny)}),
        Case("a tiny pre-LN BERT (with a final LayerNorm)",
             {"params": _shapes_of({**tiny, "num_layers": 1, "pre_ln": True})}),
        Case("Hugging Face-style names", {"params": {
            "encoder.weight": np.zeros((4, 4)), "encoder.bias": np.zeros(4),
            "norm.weight": np.zeros(4), "norm.bias": np.zeros(4),
            "head.weight": np.zeros((2, 4)), "head.bias": np.zeros(2)}}),
        Case("a 3-D array, a scalar and a table", {"params": {
            "scale": np.zeros(()), "conv": np.zeros((2, 3, 3)), "offset": np.zeros(3),
            "table": np.zeros((5, 2))}}),
    ]


decay_parameter_names = Exercise(
    id="09.decay_parameter_names", symbol="decay_parameter_names", points=1,
    title="which parameters get weight decay (not biases, not LayerNorms)",
    reference=pretraining.decay_parameter_names, cases=_decay_cases,
    mistakes=[
        Mistake("everything decayed",
                "biases and LayerNorm gains and shifts (the 1-D arrays) get no weight decay",
                "def decay_parameter_names(params):\n"
                "    return list(params)\n"),
        Mistake("Hugging Face's names",
                "the rule \"not 'bias', not 'LayerNorm' in the name\" fits Hugging Face's names, "
                "not ours ('bq', 'b1', 'ln1_gamma', ...) nor every model's: decide by the shape, "
                "the 1-D arrays get no decay",
                "def decay_parameter_names(params):\n"
                "    return [n for n in params if not n.endswith('bias') and 'LayerNorm' not in n]\n"),
        Mistake("only the W matrices",
                "BERT decays its embedding tables too: every array with 2 or more dimensions",
                "def decay_parameter_names(params):\n"
                "    return [n for n in params if n.rsplit('.', 1)[-1].startswith('W')]\n"),
        Mistake("the other list",
                "these are the names *without* weight decay: return the arrays with ndim >= 2",
                "def decay_parameter_names(params):\n"
                "    return [n for n, p in params.items() if p.ndim < 2]\n"),
    ],
)

# --------------------------------------------------------------------------- training_step
# The toy model: h = E[ids] * gamma; logits = h @ W + b; loss = scale * cross-entropy over the
# labelled positions. E is an embedding table and W a weight matrix (with weight decay), b a
# bias and gamma a LayerNorm-like gain (without).

TOY_NAMES = ("E", "W", "b", "gamma")
TOY_GROUPS = (["W", "E"], ["gamma", "b"])      # not the dict's order: names must be followed


def toy_loss_and_grads(params, batch):
    """(loss, grads, stats) of the toy model, float64, for the drivers."""
    E, W, b, gamma = (params[n] for n in TOY_NAMES)
    ids, labels, scale = batch["ids"], batch["labels"], float(batch["scale"])
    rows = E[ids]                                                # (N, D)
    hidden = rows * gamma
    logits = hidden @ W + b                                      # (N, C)
    loss = scale * losses.cross_entropy(logits, labels)
    dlogits = scale * losses.cross_entropy_grad(logits, labels)
    dhidden = dlogits @ W.T
    dE = np.zeros_like(E)
    np.add.at(dE, ids, dhidden * gamma)
    grads = {"E": dE, "W": hidden.T @ dlogits, "b": dlogits.sum(axis=0),
             "gamma": (dhidden * rows).sum(axis=0)}
    labelled = labels != -100
    accuracy = float(np.mean(logits[labelled].argmax(-1) == labels[labelled])) if labelled.any() else 0.0
    return loss, grads, {"masked_accuracy": accuracy, "num_masked": int(labelled.sum())}


def toy_groups(params, learning_rate, weight_decay):
    """The two AdamW groups of the toy model (lesson 02's reference AdamW)."""
    return [(list(names), optimizers.AdamW([params[n] for n in names], lr=learning_rate,
                                           weight_decay=wd))
            for names, wd in zip(TOY_GROUPS, (weight_decay, 0.0))]


def run_training_step(fn, case):
    params = {name: case.args["params"][name].copy() for name in TOY_NAMES}
    settings = dict(case.data["args"])
    args = pretraining.TrainingArguments(output_dir="unused", **settings)
    groups = toy_groups(params, args.learning_rate, case.data["weight_decay"])
    before = dataclasses.asdict(args)
    calls, stats_given = [], []

    def loss_fn(params, batch):                 # the toy model, watched: one call a step
        calls.append(1)
        loss, grads, stats = toy_loss_and_grads(params, batch)
        stats_given.append(stats)
        return loss, grads, stats

    returned, history, new_dicts, once = [], {name: [] for name in TOY_NAMES}, [], []
    for step, batch in zip(case.data["steps"], case.data["batches"]):
        calls.clear(), stats_given.clear()
        result = fn(params, batch, loss_fn, groups, step, case.data["total_steps"], args)
        returned.append(result)
        once.append(len(calls) == 1)
        new_dicts.append(all(result is not given for given in stats_given))
        for name in TOY_NAMES:
            history[name].append(params[name].copy())
    return {"returned": returned,
            **{f"params[{name!r}] after each step": np.stack(h) for name, h in history.items()},
            "loss_fn called once a step": all(once),
            "a new dict returned, not loss_fn's stats": all(new_dicts),
            "args left as they were": dataclasses.asdict(args) == before}


def _toy_params(rng, V=6, D=3, C=4):
    return {"E": rng.normal(size=(V, D)), "W": rng.normal(size=(D, C)) / math.sqrt(D),
            "b": rng.normal(scale=0.3, size=C), "gamma": rng.normal(1.0, 0.2, size=D)}


def _toy_batch(rng, n, V=6, C=4, scale=1.0, labelled=0.6):
    labels = rng.integers(0, C, size=n)
    labels[rng.random(n) >= labelled] = -100
    return {"ids": rng.integers(0, V, size=n), "labels": labels, "scale": np.float64(scale)}


def _step_cases(rng):
    def case(name, steps, total, settings, n=8, scale=1.0, weight_decay=0.1, labelled=0.6):
        batches = [_toy_batch(rng, n, scale=scale, labelled=labelled) for _ in steps]
        if "no labelled" in name:
            for batch in batches:
                batch["labels"][:] = -100
        settings = {"learning_rate": 0.05, "warmup_steps": 4, "lr_scheduler_type": "linear",
                    "max_grad_norm": 0.5, **settings}
        return Case(name, {"params": _toy_params(rng)},
                    data={"steps": list(steps), "total_steps": total, "args": settings,
                          "batches": batches, "weight_decay": weight_decay})
    return [
        case("warmup: steps 0-4 of 20, warmup 4", range(5), 20, {}),
        case("after warmup, cosine: steps 10-13 of 20", range(10, 14), 20,
             {"lr_scheduler_type": "cosine"}),
        case("large gradients (loss x 50), clipped to 1.0", range(2, 7), 12,
             {"max_grad_norm": 1.0}, scale=50.0),
        case("no clipping (max_grad_norm=None), no warmup", range(4), 10,
             {"max_grad_norm": None, "warmup_steps": 0}),
        case("clipping at 100, far above the norm: nothing is scaled", range(3), 10,
             {"max_grad_norm": 100.0}),
        case("max_grad_norm=0 means no clipping", range(3, 6), 10,
             {"max_grad_norm": 0.0, "learning_rate": 0.1}),
        case("one example per batch", range(2, 6), 8, {}, n=1, labelled=1.0),
        case("no labelled position (only weight decay moves)", range(5, 8), 10, {}),
    ]


_STEP_TEMPLATE = """def training_step(params, batch, loss_fn, groups, step, total_steps, args):
    loss, grads, stats = loss_fn(params, batch)
    {clip_before}
    lr = {lr}
    for names, optimizer in groups:
        {set_lr}
        optimizer.step([grads[name] for name in names])
    {clip_after}
    return {{**stats, "loss": float(loss), "grad_norm": {norm}, "learning_rate": lr}}
"""


def _step_mistake(**parts):
    defaults = {"clip_before": "grad_norm = clip_grad_norm(list(grads.values()), "
                               "args.max_grad_norm or math.inf)",
                "lr": "scheduled_lr(step, args.learning_rate, args.warmup_steps, total_steps, "
                      "args.lr_scheduler_type)",
                "set_lr": "optimizer.lr = lr", "clip_after": "pass", "norm": "grad_norm"}
    defaults.update(parts)
    return _STEP_TEMPLATE.format(**defaults)


training_step = Exercise(
    id="09.training_step", symbol="training_step", points=3,
    title="one training step: gradients, clipping, the scheduled learning rate, AdamW",
    reference=pretraining.training_step, cases=_step_cases, run=run_training_step,
    requires=("02.scheduled_lr", "02.clip_grad_norm"),
    mistakes=[
        Mistake("warmup skipped",
                "pass args.warmup_steps to scheduled_lr: the learning rate must grow from 0 "
                "during warmup, not start at its peak",
                _step_mistake(lr="scheduled_lr(step, args.learning_rate, 0, total_steps, "
                                 "args.lr_scheduler_type)")),
        Mistake("scaled even below the limit",
                "clip only a norm above the limit: the factor is min(1, max_norm / norm), so a "
                "gradient already under max_grad_norm stays as it is (clip_grad_norm does that)",
                _step_mistake(clip_before="grad_norm = float(np.sqrt(sum((g ** 2).sum() "
                                          "for g in grads.values())))\n"
                                          "    if args.max_grad_norm:\n"
                                          "        for g in grads.values():\n"
                                          "            g *= args.max_grad_norm / (grad_norm + 1e-6)")),
        Mistake("loss_fn called twice",
                "call loss_fn once a step: with dropout every call draws new masks, so a second "
                "call's loss is not the one the gradients belong to (and costs a forward pass)",
                _step_mistake().replace(
                    "    loss, grads, stats = loss_fn(params, batch)\n",
                    "    loss = loss_fn(params, batch)[0]\n"
                    "    _, grads, stats = loss_fn(params, batch)\n")),
        Mistake("clipped after the optimizer step",
                "the optimizer must get the clipped gradients: clip the gradients themselves "
                "(clip_grad_norm scales the arrays it is given, in place), before "
                "optimizer.step; clipping afterwards, or clipping copies, changes nothing that "
                "was used",
                _step_mistake(clip_before="pass",
                              clip_after="grad_norm = clip_grad_norm(list(grads.values()), "
                                         "args.max_grad_norm or math.inf)")),
        Mistake("learning rate not given to the optimizers",
                "set optimizer.lr = lr for every group before its step: the optimizers keep "
                "the rate they were built with otherwise",
                _step_mistake(set_lr="pass")),
        Mistake("schedule one step ahead",
                "step counts the steps already taken (0 for the first one): pass it to "
                "scheduled_lr as it is, not step + 1",
                _step_mistake(lr="scheduled_lr(step + 1, args.learning_rate, args.warmup_steps, "
                                 "total_steps, args.lr_scheduler_type)")),
        Mistake("each group clipped on its own",
                "clip all the gradients together, once: one norm over every group's gradients "
                "(clip_grad_norm on list(grads.values())); clipped group by group, each group "
                "may reach max_grad_norm and the whole step is larger",
                _step_mistake(clip_before="grad_norm = float(np.sqrt(sum((g ** 2).sum() "
                                          "for g in grads.values())))",
                              set_lr="optimizer.lr = lr\n"
                                     "        clip_grad_norm([grads[name] for name in names], "
                                     "args.max_grad_norm or math.inf)")),
        Mistake("norm after clipping",
                "return the norm measured before clipping (what clip_grad_norm returns): it "
                "shows how large the gradients really were",
                _step_mistake(clip_before="clip_grad_norm(list(grads.values()), "
                                          "args.max_grad_norm or math.inf)\n"
                                          "    grad_norm = float(np.sqrt(sum((g ** 2).sum() "
                                          "for g in grads.values())))")),
        Mistake("clipping written out without the 1e-6",
                "call lesson 02's clip_grad_norm: it scales by max_norm / (norm + 1e-6), as "
                "PyTorch's clip_grad_norm_ does; without the 1e-6 the clipped gradients differ "
                "by 1e-7 of their size, enough to fail a check at float64 precision",
                _step_mistake(clip_before="grad_norm = float(np.sqrt(sum((g ** 2).sum() "
                                          "for g in grads.values())))\n"
                                          "    if args.max_grad_norm and grad_norm > args.max_grad_norm:\n"
                                          "        for g in grads.values():\n"
                                          "            g *= args.max_grad_norm / grad_norm")),
    ],
)

# --------------------------------------------------------------------------- evaluate_mlm


def run_evaluate(fn, case):
    table, position, offset = case.data["table"], case.data["position"], case.data["offset"]

    def predict(batch):                       # a fake model: logits from a lookup table
        T = batch["input_ids"].shape[1]
        return table[batch["input_ids"]] + position[:T] + offset
    batches = case.args["batches"]
    before = copy_arrays(batches)
    result = fn(predict, batches)
    if not isinstance(result, dict):
        return result
    # the same batches serve the next evaluation (and, in the notebook, the baselines)
    return {**result, "the batches left as they were": unchanged(batches, before)}


def _eval_batch(rng, B, T, V, rate):
    lengths = rng.integers(2, T + 1, size=B)
    lengths[0] = T
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    ids = np.where(mask == 1, rng.integers(1, V, size=(B, T)), 0)
    labels = np.where((mask == 1) & (rng.random((B, T)) < rate), ids, -100)
    ids = np.where(labels != -100, 0, ids)              # 0 plays [MASK] (and [PAD])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _eval_cases(rng):
    def case(name, shapes, V=7, scale=2.0, T_max=12, offset=0.0):
        batches = [_eval_batch(rng, B, T, V, rate) for B, T, rate in shapes]
        return Case(name, {"batches": batches},
                    data={"table": rng.normal(scale=scale, size=(V, V)),
                          "position": rng.normal(scale=scale / 2, size=(T_max, V)),
                          "offset": offset})
    return [
        case("3 batches, different sizes and numbers of masks",
             [(4, 6, 0.3), (2, 9, 0.6), (3, 5, 0.15)]),
        case("a batch without labels among others", [(3, 6, 0.4), (2, 4, 0.0), (5, 7, 0.25)]),
        case("one batch, one sentence", [(1, 8, 0.5)]),
        case("no labelled position at all", [(2, 5, 0.0), (3, 4, 0.0)]),
        case("huge logits (all near 1e4)", [(3, 6, 0.5), (2, 8, 0.3)], offset=1e4),
        case("vocabulary of 50", [(4, 9, 0.2), (6, 11, 0.35)], V=50),
    ]


_EVAL_TEMPLATE = """def evaluate_mlm(predict, batches):
    total, correct, count, positions = 0.0, 0, 0, 0
    batch_losses, batch_accs, batch_sizes = [], [], []
    for batch in batches:
        labels = batch["labels"]
        keep = {keep}
        targets = {targets}
        n = int(keep.sum())
        if n == 0:
            continue
        logits = predict(batch)
        picked = logits[keep]
        log_probs = {log_probs}
        nll = -log_probs[np.arange(n), targets[keep]]
        total += nll.sum()
        correct += int(np.sum(picked.argmax(-1) == targets[keep]))
        count += n
        positions += {accuracy_count}
        batch_losses.append(nll.mean())
        batch_accs.append(np.mean(picked.argmax(-1) == targets[keep]))
        batch_sizes.append(n)
    if count == 0:
        return {{"eval_loss": 0.0, "eval_perplexity": 1.0, "eval_accuracy": 0.0}}
    loss = {loss}
    return {{"eval_loss": float(loss), "eval_perplexity": float({perplexity}),
            "eval_accuracy": {accuracy}}}
"""


def _eval_mistake(**parts):
    defaults = {"keep": "labels != -100", "targets": "labels",
                "log_probs": "picked - picked.max(-1, keepdims=True) - np.log(np.exp(picked - "
                             "picked.max(-1, keepdims=True)).sum(-1, keepdims=True))",
                "accuracy_count": "n", "loss": "total / count",
                "perplexity": "math.exp(loss)", "accuracy": "correct / positions"}
    defaults.update(parts)
    return _EVAL_TEMPLATE.format(**defaults)


evaluate_mlm = Exercise(
    id="09.evaluate_mlm", symbol="evaluate_mlm", points=2,
    title="evaluation: loss, perplexity and accuracy over the masked positions",
    reference=pretraining.evaluate_mlm, cases=_eval_cases, run=run_evaluate,
    requires=("01.cross_entropy",),
    mistakes=[
        Mistake("the batches' labels changed in place",
                "leave the batches as they are (pick with a mask, or copy first): the same "
                "batches serve the next evaluation, and labels overwritten here spoil it",
                _eval_mistake(targets="labels\n        labels[labels == -100] = 0")),
        Mistake("every position counted",
                "only the masked positions count (labels != -100), for the loss and for the "
                "accuracy: the others are visible in the input, so predicting them is copying",
                _eval_mistake(keep="batch['attention_mask'] == 1",
                              targets="np.where(labels != -100, labels, batch['input_ids'])")),
        Mistake("accuracy over all positions",
                "divide the correct guesses by the number of masked positions: a position "
                "labelled -100 can never match and must not count as wrong",
                _eval_mistake(accuracy_count="labels.size")),
        Mistake("mean of the batch means",
                "every masked position counts the same, whatever its batch: add up the losses "
                "and the correct guesses, and divide once by the total number of masked positions",
                _eval_mistake(loss="np.mean(batch_losses)", accuracy="float(np.mean(batch_accs))")),
        Mistake("mean of the batch perplexities",
                "the perplexity is exp of the overall mean loss, not the mean of the batches' "
                "exp(loss)",
                _eval_mistake(perplexity="np.average(np.exp(batch_losses), weights=batch_sizes)")),
        Mistake("base-2 perplexity",
                "the loss is in nats (natural logarithm), so the perplexity is exp(loss), not "
                "2 ** loss",
                _eval_mistake(perplexity="2.0 ** loss")),
        Mistake("log of the softmax",
                "log(softmax(x)) overflows for large logits: use log_softmax (or cross_entropy), "
                "which subtracts the maximum first",
                _eval_mistake(log_probs="np.log(np.exp(picked) / np.exp(picked).sum(-1, "
                                        "keepdims=True))")),
    ],
)

# --------------------------------------------------------------------------- optimizer state


def _adam_run(params, grads_per_step, weight_decay, lr):
    groups = toy_groups(params, lr, weight_decay)
    for grads in grads_per_step:
        for names, optimizer in groups:
            optimizer.step([grads[n] for n in names])
    return groups


def run_optimizer_state(fn, case):
    """Train, save with the learner's function, train on: the saved state must not move."""
    params = {name: value.copy() for name, value in case.args["params"].items()}
    groups = _adam_run(params, case.data["before"], case.data["weight_decay"], case.data["lr"])
    state = fn(groups)
    for grads in case.data["after"]:
        for names, optimizer in groups:
            optimizer.step([grads[n] for n in names])
    return state


def run_load_optimizer_state(fn, case):
    """Train, save (reference), restore into fresh optimizers (learner), train on."""
    params = {name: value.copy() for name, value in case.args["params"].items()}
    groups = _adam_run(params, case.data["before"], case.data["weight_decay"], case.data["lr"])
    state = pretraining.optimizer_state(groups)
    resumed = {name: value.copy() for name, value in params.items()}
    fresh = toy_groups(resumed, case.data["lr"], case.data["weight_decay"])
    saved = copy_arrays(state)
    fn(fresh, state)
    history = {name: [] for name in TOY_NAMES}
    for grads in case.data["after"]:
        for names, optimizer in fresh:
            optimizer.step([grads[n] for n in names])
        for name in TOY_NAMES:
            history[name].append(resumed[name].copy())
    # copied into the optimizer, not shared with it: training on leaves the saved state alone
    return {**{f"params[{name!r}] after each step once resumed": np.stack(h)
               for name, h in history.items()},
            "the saved state left as it was after training on": unchanged(state, saved)}


def _state_cases(rng):
    def grads(scale=1.0):
        return {name: rng.normal(scale=scale, size=value.shape)
                for name, value in _toy_params(np.random.default_rng(0)).items()}

    def case(name, before, after, lr=0.05, weight_decay=0.1, scale=1.0, dtype=np.float64):
        def cast(arrays):
            return {k: v.astype(dtype) for k, v in arrays.items()}
        return Case(name, {"params": cast(_toy_params(rng))},
                    data={"before": [cast(grads(scale)) for _ in range(before)],
                          "after": [cast(grads(scale)) for _ in range(after)],
                          "lr": lr, "weight_decay": weight_decay})
    return [
        case("3 steps, then 3 more", 3, 3),
        case("1 step, then 4 more", 1, 4),
        case("6 steps, lr 0.2, then 2 more", 6, 2, lr=0.2, weight_decay=0.3),
        case("small gradients (1e-3), 2 steps, then 3 more", 2, 3, scale=1e-3),
        case("float32 parameters: the moments stay float32", 2, 2, dtype=np.float32),
    ]


optimizer_state = Exercise(
    id="09.optimizer_state", symbol="optimizer_state", points=1,
    title="save AdamW's state: both moments of every parameter, and the step count",
    reference=pretraining.optimizer_state, cases=_state_cases, run=run_optimizer_state,
    mistakes=[
        Mistake("not copied",
                "save copies (m.copy()): the optimizer keeps changing its own m and v in place, "
                "and the saved state would change with them",
                "def optimizer_state(groups):\n"
                "    state = {}\n"
                "    for names, opt in groups:\n"
                "        for name, m, v in zip(names, opt.m, opt.v):\n"
                "            state[name + '.exp_avg'] = m\n"
                "            state[name + '.exp_avg_sq'] = v\n"
                "    state['step'] = np.array(groups[0][1].t, dtype=np.int64)\n"
                "    return state\n"),
        Mistake("step count left out",
                "save the step count under \"step\": Adam's bias correction needs t to carry on",
                "def optimizer_state(groups):\n"
                "    state = {}\n"
                "    for names, opt in groups:\n"
                "        for name, m, v in zip(names, opt.m, opt.v):\n"
                "            state[name + '.exp_avg'] = m.copy()\n"
                "            state[name + '.exp_avg_sq'] = v.copy()\n"
                "    return state\n"),
        Mistake("names sorted",
                "opt.m[k] belongs to names[k]: pair them in the group's order, not in sorted order",
                "def optimizer_state(groups):\n"
                "    state = {}\n"
                "    for names, opt in groups:\n"
                "        for name, m, v in zip(sorted(names), opt.m, opt.v):\n"
                "            state[name + '.exp_avg'] = m.copy()\n"
                "            state[name + '.exp_avg_sq'] = v.copy()\n"
                "    state['step'] = np.array(groups[0][1].t, dtype=np.int64)\n"
                "    return state\n"),
        Mistake("first group only",
                "save the moments of every group (the one without weight decay too)",
                "def optimizer_state(groups):\n"
                "    names, opt = groups[0]\n"
                "    state = {}\n"
                "    for name, m, v in zip(names, opt.m, opt.v):\n"
                "        state[name + '.exp_avg'] = m.copy()\n"
                "        state[name + '.exp_avg_sq'] = v.copy()\n"
                "    state['step'] = np.array(opt.t, dtype=np.int64)\n"
                "    return state\n"),
    ],
)

_LOAD_TEMPLATE = """def load_optimizer_state(groups, state):
    for names, opt in {groups}:
        for k, name in enumerate(names):
            {assign}
        {step}
"""


def _load_mistake(**parts):
    defaults = {"groups": "groups",
                "assign": "opt.m[k][...] = state[name + '.exp_avg']; "
                          "opt.v[k][...] = state[name + '.exp_avg_sq']",
                "step": "opt.t = int(state['step'])"}
    defaults.update(parts)
    return _LOAD_TEMPLATE.format(**defaults)


load_optimizer_state = Exercise(
    id="09.load_optimizer_state", symbol="load_optimizer_state", points=2,
    title="restore AdamW's state, so that a resumed run carries on exactly",
    reference=pretraining.load_optimizer_state, cases=_state_cases,
    run=run_load_optimizer_state,
    mistakes=[
        Mistake("step count not restored",
                "restore t as well (opt.t = int(state['step'])): Adam's bias correction "
                "depends on it, and with t back at 0 the steps after resuming are wrong",
                _load_mistake(step="pass")),
        Mistake("moments swapped",
                "exp_avg is the first moment m, exp_avg_sq the second moment v",
                _load_mistake(assign="opt.m[k][...] = state[name + '.exp_avg_sq']; "
                                     "opt.v[k][...] = state[name + '.exp_avg']")),
        Mistake("loop variable rebound",
                "m = saved only rebinds a local name; write into the optimizer's array "
                "(m[...] = saved) or replace opt.m[k]",
                "def load_optimizer_state(groups, state):\n"
                "    for names, opt in groups:\n"
                "        for name, m, v in zip(names, opt.m, opt.v):\n"
                "            m = state[name + '.exp_avg'].copy()\n"
                "            v = state[name + '.exp_avg_sq'].copy()\n"
                "        opt.t = int(state['step'])\n"),
        Mistake("the saved arrays put in the optimizer",
                "leave the saved state as it was: copy the saved moments into the optimizer's "
                "own arrays (opt.m[k][...] = saved; opt.m[k] = saved makes the optimizer update "
                "the checkpoint's arrays as it trains), and read them with state[key], not "
                "state.pop(key)",
                _load_mistake(assign="opt.m[k] = state[name + '.exp_avg']; "
                                     "opt.v[k] = state[name + '.exp_avg_sq']")),
        Mistake("t set to the saved array",
                "t is a plain int: opt.t = int(state['step']). The saved step is an array of "
                "shape (), and every group's optimizer would then share it and add 1 to it",
                _load_mistake(step="opt.t = state['step']")),
        Mistake("first group only",
                "restore every group (the one without weight decay too)",
                _load_mistake(groups="groups[:1]")),
    ],
)

# --------------------------------------------------------------------------- checkpoints_to_delete


def _rotation_cases(rng):
    def case(name, names, limit):
        return Case(name, {"names": names, "save_total_limit": limit})
    return [
        case("five checkpoints, keep 2",
             ["checkpoint-200", "checkpoint-1000", "checkpoint-400", "checkpoint-600",
              "checkpoint-800"], 2),
        case("steps of 1, 2 and 3 digits, keep 2", ["checkpoint-10", "checkpoint-9",
                                                    "checkpoint-100"], 2),
        case("other folders and files are never deleted",
             ["runs", "checkpoint-500", "pretrained.safetensors", "checkpoint-50",
              "checkpoint-final", "tmp-checkpoint-900", "checkpoint-5000"], 1),
        case("fewer checkpoints than the limit", ["checkpoint-3", "checkpoint-6"], 5),
        case("exactly the limit", ["checkpoint-3", "checkpoint-6", "checkpoint-9"], 3),
        case("save_total_limit=None keeps everything", ["checkpoint-3", "checkpoint-6"], None),
        case("save_total_limit=0 keeps everything", ["checkpoint-3", "checkpoint-6"], 0),
        case("an empty folder", [], 2),
        case("a save in progress (checkpoint-700.tmp) is not a checkpoint",
             ["checkpoint-300", "checkpoint-700.tmp", "checkpoint-500", "checkpoint-100"], 1),
    ]


_ROTATION_TEMPLATE = """def checkpoints_to_delete(names, save_total_limit):
    if not save_total_limit:
        return []
    found = [n for n in names if {is_checkpoint}]
    ordered = sorted(found, key={key}{reverse})
    return ordered[:max(0, len(ordered) - {keep})]
"""


def _rotation_mistake(**parts):
    defaults = {"is_checkpoint": "n.startswith('checkpoint-') and n[11:].isdigit()",
                "key": "lambda n: int(n[11:])", "reverse": "", "keep": "save_total_limit"}
    defaults.update(parts)
    return _ROTATION_TEMPLATE.format(**defaults)


checkpoints_to_delete = Exercise(
    id="09.checkpoints_to_delete", symbol="checkpoints_to_delete", points=1,
    title="checkpoint rotation: delete all but the newest save_total_limit",
    reference=pretraining.checkpoints_to_delete, cases=_rotation_cases,
    mistakes=[
        Mistake("the newest deleted",
                "delete the oldest checkpoints (smallest steps) and keep the newest: the newest "
                "is the one a crashed run resumes from",
                _rotation_mistake(reverse=", reverse=True")),
        Mistake("steps compared as text",
                "compare the steps as numbers: as text, 'checkpoint-1000' < 'checkpoint-200', "
                "so the newest would be deleted",
                _rotation_mistake(key="str")),
        Mistake("other folders deleted",
                "only folders named checkpoint-<step> (digits) are checkpoints; never delete "
                "anything else",
                _rotation_mistake(is_checkpoint="True", key="lambda n: (len(n), n)")),
        Mistake("one too many kept",
                "keep exactly save_total_limit checkpoints and delete all the older ones",
                _rotation_mistake(keep="save_total_limit + 1")),
    ],
)


LESSON = Lesson(
    id="09", slug="09_pretraining", title="Pretraining",
    exercises=[num_training_steps, epoch_batches, decay_parameter_names, training_step,
               evaluate_mlm, optimizer_state, load_optimizer_state, checkpoints_to_delete],
)
