"""Lesson 09 - Pretraining (reference solutions).

A small ``Trainer`` in the style of Hugging Face's, for the mini-BERT of lesson 07,
built from the exercises of ``lessons/09_pretraining.ipynb`` (the functions before the
``TrainingArguments`` section, each with the same signature and docstring there):

* how many optimizer steps a run takes (``num_training_steps``) and which examples
  form each batch (``epoch_batches``, a new shuffle every epoch, seeded);
* which parameters get weight decay (``decay_parameter_names``: not biases and LayerNorms);
* one step: gradients, clipping, the scheduled learning rate, AdamW (``training_step``);
* evaluation: loss, perplexity and accuracy over the masked positions (``evaluate_mlm``);
* checkpoints: the optimizer's state saved and restored (``optimizer_state``,
  ``load_optimizer_state``) and old checkpoints rotated away (``checkpoints_to_delete``).

The settings keep Hugging Face's names (``output_dir``, ``num_train_epochs``,
``per_device_train_batch_size``, ...). A checkpoint is a folder
``output_dir/checkpoint-<step>/`` holding ``model.safetensors`` (the parameters),
``optimizer.safetensors`` (AdamW's moments and step count) and ``trainer_state.json``
(the step, the log, the settings and the state of every random generator), so that a
run resumed from it logs exactly the same losses as a run that never stopped.

The end of the module prepares the corpora of the real pretraining runs
(``scripts/pretrain.py``) and measures what a model learned from them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from solutions.bert import BertConfig, mlm_logits, mlm_loss_and_grads
from solutions.data import SPECIAL_TOKENS
from solutions.losses import cross_entropy
from solutions.optimizers import AdamW, clip_grad_norm, scheduled_lr
from solutions.pretrained import read_safetensors, write_safetensors

# =============================================================================
# The exercises
# =============================================================================


def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):
    """How many optimizer steps a run takes.

    One epoch is one pass over the examples in batches of ``batch_size``; the
    last batch may be smaller, so an epoch has ``ceil(num_examples / batch_size)``
    steps. A run of ``num_train_epochs`` (possibly fractional, e.g. 2.5) takes
    ``ceil(num_train_epochs * steps_per_epoch)`` steps, unless ``max_steps > 0``,
    which sets the number of steps directly (as in Hugging Face's Trainer).

    Args:
        num_examples: int >= 1, the size of the training set.
        batch_size: int >= 1.
        num_train_epochs: float > 0.
        max_steps: int; when > 0 it is the answer, whatever the epochs say.

    Returns:
        int: the number of optimizer steps.
    """
    if max_steps > 0:
        return max_steps
    steps_per_epoch = math.ceil(num_examples / batch_size)
    return math.ceil(num_train_epochs * steps_per_epoch)


def epoch_batches(num_examples, batch_size, epoch, seed):
    """The indices of the examples in every batch of one epoch, in a new random order.

    The order of epoch ``epoch`` is
    ``np.random.default_rng([seed, epoch]).permutation(num_examples)``: every
    example once per epoch, a different order each epoch, and the same order
    whenever the same (seed, epoch) comes back. A run resumed in the middle of an
    epoch can therefore rebuild that epoch's batches without any saved state. The
    order is cut into consecutive batches of ``batch_size``; the last one holds
    what is left (it may be smaller).

    Args:
        num_examples: int >= 1.
        batch_size: int >= 1.
        epoch: int >= 0.
        seed: int >= 0.

    Returns:
        list of ``ceil(num_examples / batch_size)`` int64 arrays of example indices.
    """
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return [order[start:start + batch_size] for start in range(0, num_examples, batch_size)]


def decay_parameter_names(params):
    """The parameters that get weight decay: every matrix, no bias, no LayerNorm.

    Weight decay pulls weights towards 0. That suits the weight matrices and
    embedding tables (2 or more dimensions), but not the biases or the
    LayerNorms' gains and shifts (1 dimension): a LayerNorm gain pulled towards
    0 shrinks the whole layer's output, and biases have nothing to regularise.
    BERT and Hugging Face decay everything except biases and LayerNorms; by shape
    that rule needs no list of names.

    Args:
        params: dict name -> array.

    Returns:
        list of str: the names of the arrays with ``ndim >= 2``, in the order of ``params``.
    """
    return [name for name, value in params.items() if value.ndim >= 2]


def training_step(params, batch, loss_fn, groups, step, total_steps, args):
    """One optimizer step: loss and gradients, clipping, the scheduled learning rate, AdamW.

    In this order:

    1. ``loss, grads, stats = loss_fn(params, batch)``;
    2. clip all the gradients together with lesson 02's ``clip_grad_norm`` to
       ``args.max_grad_norm`` (when it is None or 0 nothing is clipped, but the
       norm is still measured: clip to ``math.inf``), before any parameter moves;
    3. ``lr = scheduled_lr(step, args.learning_rate, args.warmup_steps,
       total_steps, args.lr_scheduler_type)``: warmup, then decay;
    4. for every group ``(names, optimizer)``: set ``optimizer.lr = lr`` and call
       ``optimizer.step`` with the gradients of ``names``, in that order.

    Args:
        params: dict name -> float array; the optimizers update these arrays in place.
        batch: dict of arrays, passed to ``loss_fn`` as it is.
        loss_fn: callable ``(params, batch) -> (loss, grads, stats)``: ``loss`` a
            float, ``grads`` a dict name -> array (one per parameter, shaped like
            it), ``stats`` a dict of numbers.
        groups: list of ``(names, optimizer)`` pairs; each optimizer (lesson 02's
            ``AdamW``) was built on ``[params[n] for n in names]``.
        step: int >= 0, the optimizer steps already taken (0 for the first one).
        total_steps: int, the number of steps of the whole run.
        args: the run's ``TrainingArguments`` (uses ``learning_rate``,
            ``warmup_steps``, ``lr_scheduler_type`` and ``max_grad_norm``).

    Returns:
        dict: a new dict with the entries of ``stats``, plus "loss" (float),
        "grad_norm" (the global norm before clipping) and "learning_rate" (the
        ``lr`` of this step).
    """
    loss, grads, stats = loss_fn(params, batch)
    max_norm = args.max_grad_norm or math.inf          # None or 0: measure, do not clip
    grad_norm = clip_grad_norm(list(grads.values()), max_norm)
    lr = scheduled_lr(step, args.learning_rate, args.warmup_steps, total_steps,
                      args.lr_scheduler_type)
    for names, optimizer in groups:
        optimizer.lr = lr
        optimizer.step([grads[name] for name in names])
    return {**stats, "loss": float(loss), "grad_norm": grad_norm, "learning_rate": lr}


def evaluate_mlm(predict, batches):
    """Masked-LM loss, perplexity and accuracy over the labelled positions of a dataset.

    Only the positions whose label is not -100 count, and they count equally
    whichever batch they are in: with M labelled positions in all,
    ``loss = (1/M) * sum of -log softmax(logits)[label]`` over all of them,
    ``perplexity = exp(loss)``, and ``accuracy`` is the share of them whose
    highest logit is the label. A batch without labels adds nothing. When no
    position is labelled: loss 0.0, perplexity 1.0, accuracy 0.0.

    Args:
        predict: callable ``batch -> logits``, a float array (B, T, V) for a batch.
        batches: list of dicts, each with "input_ids", "attention_mask" and
            "labels" (int arrays (B, T); B and T may differ between batches).
            They are left as they are: the same batches serve every evaluation.

    Returns:
        dict with the floats "eval_loss", "eval_perplexity" and "eval_accuracy".
    """
    total_loss, correct, count = 0.0, 0, 0
    for batch in batches:
        labels = batch["labels"]
        labelled = labels != -100                               # (B, T)
        n = int(labelled.sum())
        if n == 0:
            continue
        logits = predict(batch)[labelled]                       # (n, V)
        targets = labels[labelled]                              # (n,)
        total_loss += cross_entropy(logits, targets) * n        # the sum, not the mean
        correct += int(np.sum(logits.argmax(axis=-1) == targets))
        count += n
    loss = total_loss / count if count else 0.0
    return {"eval_loss": loss, "eval_perplexity": math.exp(loss),
            "eval_accuracy": correct / count if count else 0.0}


def optimizer_state(groups):
    """A copy of everything AdamW needs to carry on: its two moments, and the step count.

    The names are PyTorch's: for every parameter ``name`` of every group,
    ``name + ".exp_avg"`` is a copy of its first moment ``m`` and
    ``name + ".exp_avg_sq"`` a copy of its second moment ``v``; "step" is the
    optimizer's step count ``t`` as an int64 array of shape (). (The groups all
    step together, so one count serves them all.) Copies, because the optimizer
    keeps changing its own arrays in place.

    Args:
        groups: list of ``(names, optimizer)`` pairs; ``optimizer.m[k]`` and
            ``optimizer.v[k]`` belong to ``names[k]``, and ``optimizer.t`` is its
            step count (lesson 02's ``AdamW``).

    Returns:
        dict str -> array, ready for ``write_safetensors``.
    """
    state = {}
    for names, optimizer in groups:
        for name, m, v in zip(names, optimizer.m, optimizer.v):
            state[name + ".exp_avg"] = m.copy()
            state[name + ".exp_avg_sq"] = v.copy()
    state["step"] = np.array(groups[0][1].t, dtype=np.int64)
    return state


def load_optimizer_state(groups, state):
    """Put a saved optimizer state back: the moments of every parameter, and the step count.

    The inverse of ``optimizer_state``: every ``optimizer.m[k]`` and
    ``optimizer.v[k]`` gets the values saved under ``names[k] + ".exp_avg"`` and
    ``names[k] + ".exp_avg_sq"`` (copied into the existing arrays), and every
    optimizer's ``t`` becomes ``int(state["step"])``, so that Adam's bias
    correction continues where it stopped.

    Args:
        groups: list of ``(names, optimizer)`` pairs of fresh optimizers built on
            the same parameters as when the state was saved.
        state: dict str -> array, as returned by ``optimizer_state``.
    """
    for names, optimizer in groups:
        for name, m, v in zip(names, optimizer.m, optimizer.v):
            m[...] = state[name + ".exp_avg"]
            v[...] = state[name + ".exp_avg_sq"]
        optimizer.t = int(state["step"])


def checkpoints_to_delete(names, save_total_limit):
    """The checkpoint folders to delete so that only the newest ``save_total_limit`` remain.

    A checkpoint folder is named ``checkpoint-<step>``, the step in digits and
    nothing after them (``checkpoint-1500``; a save in progress, such as the
    Trainer's ``tmp-checkpoint-1500`` or a ``checkpoint-1500.tmp``, is not one);
    the newest is the one with the largest step, compared
    as numbers (``checkpoint-1000`` is newer than ``checkpoint-900``). Every
    other name is not a checkpoint and is never deleted. A limit of None, or
    below 1, keeps every checkpoint.

    Args:
        names: list of str, the entries of the output folder in any order (as
            ``os.listdir`` gives them).
        save_total_limit: int or None.

    Returns:
        list of str: the checkpoint names to delete, oldest first (empty when
        there are no more than ``save_total_limit``).
    """
    steps = {}
    for name in names:
        prefix, _, number = name.partition("-")
        if prefix == "checkpoint" and number.isdigit():
            steps[name] = int(number)
    if save_total_limit is None or save_total_limit < 1:
        return []
    oldest_first = sorted(steps, key=steps.get)
    return oldest_first[:max(0, len(oldest_first) - save_total_limit)]


# =============================================================================
# The Trainer
# =============================================================================


@dataclass
class TrainingArguments:
    """The settings of a training run, under Hugging Face's names.

    Attributes:
        output_dir: where the checkpoints go (``output_dir/checkpoint-<step>/``).
        num_train_epochs: passes over the training set (may be fractional).
        max_steps: when > 0, the number of steps, whatever ``num_train_epochs`` says.
        per_device_train_batch_size: examples per training step.
        per_device_eval_batch_size: examples per evaluation batch.
        learning_rate: the peak learning rate, reached at the end of warmup.
        warmup_steps: steps of linear warmup from 0.
        lr_scheduler_type: "linear" or "cosine" decay after warmup, to 0 at the last step.
        weight_decay: AdamW's decoupled weight decay, for ``decay_parameter_names`` only.
        adam_beta1, adam_beta2, adam_epsilon: AdamW's other settings.
        max_grad_norm: clip the global gradient norm to this (None or 0: no clipping).
        logging_steps: log the mean training loss, accuracy, gradient norm and the
            learning rate every this many steps.
        eval_steps: evaluate on the evaluation set every this many steps (None: never).
        save_steps: save a checkpoint every this many steps (None: never).
        save_total_limit: keep only the newest this many checkpoints (None: all).
        seed: seeds the data order, the dropout and the evaluation masks.
        disable_tqdm: True turns the progress bar off.
    """

    output_dir: str
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 64
    learning_rate: float = 5e-4
    warmup_steps: int = 0
    lr_scheduler_type: str = "linear"
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = 1.0
    logging_steps: int = 50
    eval_steps: int | None = None
    save_steps: int | None = None
    save_total_limit: int | None = None
    seed: int = 42
    disable_tqdm: bool = False


@dataclass
class TrainerState:
    """What a checkpoint must remember besides the weights (saved in ``trainer_state.json``).

    ``window`` holds the sums of the steps since the last log, and ``loss_sum`` the
    sum of every step's loss: a run resumed between two logs still logs the same means.
    """

    global_step: int = 0
    epoch: float = 0.0
    log_history: list = field(default_factory=list)
    window: dict = field(default_factory=dict)
    loss_sum: float = 0.0


class TrainOutput(NamedTuple):
    """What ``Trainer.train`` returns (Hugging Face's TrainOutput, plus the log)."""

    global_step: int
    training_loss: float
    metrics: dict
    log_history: list


def make_param_groups(params, args):
    """Two AdamW optimizers, PyTorch's "parameter groups": with and without weight decay.

    Returns:
        list of ``(names, AdamW)``: the names of ``decay_parameter_names(params)`` with
        ``args.weight_decay``, then the other names with weight decay 0.
    """
    decay = decay_parameter_names(params)
    no_decay = [name for name in params if name not in set(decay)]
    groups = []
    for names, weight_decay in ((decay, args.weight_decay), (no_decay, 0.0)):
        optimizer = AdamW([params[name] for name in names], lr=args.learning_rate,
                          betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon,
                          weight_decay=weight_decay)
        groups.append((names, optimizer))
    return groups


def stack_examples(examples):
    """The default collator: examples that are dicts of arrays, stacked along a new axis 0."""
    return {key: np.stack([np.asarray(ex[key]) for ex in examples]) for key in examples[0]}


class ProgressBar:
    """A one-line text progress bar (no tqdm needed): steps, speed, the latest loss."""

    def __init__(self, total, start=0, disable=False, stream=None, min_interval=0.25):
        self.total, self.count, self.disable = total, start, disable
        self.stream = stream or sys.stdout
        self.start_count, self.start_time = start, time.perf_counter()
        self.min_interval, self.last_shown = min_interval, 0.0

    def update(self, count, postfix=""):
        self.count = count
        now = time.perf_counter()
        if self.disable or (now - self.last_shown < self.min_interval and count < self.total):
            return
        self.last_shown = now
        done = self.count / max(self.total, 1)
        bar = "=" * int(30 * done) + ">" + " " * (30 - int(30 * done))
        rate = (self.count - self.start_count) / max(now - self.start_time, 1e-9)
        left = (self.total - self.count) / rate if rate > 0 else float("inf")
        self.stream.write(f"\r{self.count:>6}/{self.total} [{bar[:31]}] {rate:5.1f} it/s, "
                          f"{left:5.0f} s left {postfix}  ")
        self.stream.flush()

    def close(self):
        if not self.disable:
            self.stream.write("\n")
            self.stream.flush()


def _rng_of(obj):
    return getattr(obj, "rng", None) if obj is not None else None


class Trainer:
    """Train a model given as a dict of parameters: batches, AdamW, logs, evaluation, checkpoints.

    The loss function has lesson 07's signature,
    ``loss_fn(params, config, batch, training, rng, compute_grads=True) -> (loss, grads,
    stats)``, ``mlm_loss_and_grads`` by default (``classification_loss_and_grads`` for
    fine-tuning). Its ``stats`` give the logged accuracy ("masked_accuracy" or
    "accuracy") and the weight of a batch in an evaluation ("num_masked" for masked LM,
    "num_predicted" for next-token prediction (lesson 18), or "num_examples").

    Randomness, all of it seeded by ``args.seed`` and all of it saved in checkpoints:
    the order of the examples (``epoch_batches`` with (seed, epoch): nothing to save),
    the dropout generator ``self.rng``, and the collator's generator
    (``data_collator.rng``, if it has one: MLM masks). Evaluation masks the
    evaluation set with a generator of its own, the same at every evaluation, and
    leaves the training draws alone.

    Args:
        params: dict name -> float array, trained in place.
        config: the model's config, passed to ``loss_fn``.
        args: ``TrainingArguments``.
        train_dataset: list of examples (e.g. lists of token ids).
        eval_dataset: list of examples, or None.
        data_collator: callable ``list of examples -> batch dict`` (default: ``stack_examples``).
        loss_fn: see above (default: ``mlm_loss_and_grads``).
        compute_metrics: optional callable ``(logits, labels) -> dict``, called by
            ``evaluate`` with all the evaluation logits and labels concatenated, when
            the loss function returns "logits" in its stats (classification).
    """

    def __init__(self, params, config, args, train_dataset, eval_dataset=None,
                 data_collator=None, loss_fn=None, compute_metrics=None):
        self.params, self.config, self.args = params, config, args
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.data_collator = data_collator or stack_examples
        self.loss_fn = loss_fn or mlm_loss_and_grads
        self.compute_metrics = compute_metrics
        self.groups = make_param_groups(params, args)
        self.rng = np.random.default_rng([args.seed, 1])           # dropout
        self.state = TrainerState()

    # ------------------------------------------------------------------ sizes

    @property
    def steps_per_epoch(self):
        return math.ceil(len(self.train_dataset) / self.args.per_device_train_batch_size)

    @property
    def total_steps(self):
        return num_training_steps(len(self.train_dataset), self.args.per_device_train_batch_size,
                                  self.args.num_train_epochs, self.args.max_steps)

    # ------------------------------------------------------------------ training

    def _batch(self, step):
        """The batch of global step ``step``: its epoch's order, then its place in the epoch."""
        epoch, index = divmod(step, self.steps_per_epoch)
        order = epoch_batches(len(self.train_dataset), self.args.per_device_train_batch_size,
                              epoch, self.args.seed)[index]
        return self.data_collator([self.train_dataset[i] for i in order])

    def _loss(self, params, batch):
        return self.loss_fn(params, self.config, batch, training=True, rng=self.rng)

    def train(self, resume_from_checkpoint=None):
        """Train to ``total_steps``, logging, evaluating and saving on the way.

        Args:
            resume_from_checkpoint: None to start afresh; a checkpoint folder; or True
                for the newest checkpoint in ``args.output_dir``.

        Returns:
            ``TrainOutput(global_step, training_loss, metrics, log_history)``;
            ``training_loss`` is the mean loss over every step of the run.
        """
        args = self.args
        if resume_from_checkpoint is True:
            resume_from_checkpoint = self.latest_checkpoint()
            if resume_from_checkpoint is None:
                raise FileNotFoundError(f"no checkpoint-<step> folder in {args.output_dir}")
        if resume_from_checkpoint:
            self.load_checkpoint(resume_from_checkpoint)
        state = self.state
        total, started = self.total_steps, time.perf_counter()
        first_step = state.global_step
        progress = ProgressBar(total, start=first_step, disable=args.disable_tqdm)
        while state.global_step < total:
            batch = self._batch(state.global_step)
            out = training_step(self.params, batch, self._loss, self.groups,
                                state.global_step, total, args)
            state.global_step += 1
            state.epoch = state.global_step / self.steps_per_epoch
            state.loss_sum += out["loss"]
            self._accumulate(out)
            step = state.global_step
            if step % args.logging_steps == 0 or step == total:
                self._log_window()
            if args.eval_steps and step % args.eval_steps == 0 and self.eval_dataset is not None:
                state.log_history.append({"step": step, "epoch": state.epoch, **self.evaluate()})
            if args.save_steps and step % args.save_steps == 0:
                self.save_checkpoint()
            progress.update(step, f"loss {out['loss']:.4f}")
        progress.close()
        runtime = time.perf_counter() - started
        training_loss = state.loss_sum / max(state.global_step, 1)
        metrics = {"train_runtime": runtime, "train_loss": training_loss,
                   "train_steps_per_second": (state.global_step - first_step) / max(runtime, 1e-9)}
        return TrainOutput(state.global_step, training_loss, metrics, state.log_history)

    def _accumulate(self, out):
        window = self.state.window
        accuracy = out.get("masked_accuracy", out.get("accuracy"))
        for key, value in (("loss", out["loss"]), ("accuracy", accuracy),
                           ("grad_norm", out["grad_norm"])):
            if value is not None:
                window[key] = window.get(key, 0.0) + float(value)
        window["steps"] = window.get("steps", 0) + 1
        window["learning_rate"] = out["learning_rate"]

    def _log_window(self):
        window, state = self.state.window, self.state
        entry = {"step": state.global_step, "epoch": state.epoch}
        for key in ("loss", "accuracy", "grad_norm"):
            if key in window:
                entry[key] = window[key] / window["steps"]
        entry["learning_rate"] = window["learning_rate"]
        state.log_history.append(entry)
        state.window = {}

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, eval_dataset=None):
        """Loss, accuracy (and perplexity for a language model) on a dataset, every batch weighted by its size.

        A batch weighs its number of predicted positions ("num_masked" for masked LM,
        "num_predicted" for next-token prediction), its number of examples otherwise; the result equals ``evaluate_mlm`` on the same
        batches. The collator's generator is swapped for a fixed one meanwhile, so the
        masks are the same at every evaluation and training draws are not disturbed.

        Returns:
            dict with "eval_loss", "eval_accuracy", "eval_perplexity" (language models only)
            and whatever ``compute_metrics`` returns, prefixed with "eval_".
        """
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        size = self.args.per_device_eval_batch_size
        collator_rng = _rng_of(self.data_collator)
        if collator_rng is not None:
            self.data_collator.rng = np.random.default_rng([self.args.seed, 2])
        total_loss, total_correct, total_weight, is_lm = 0.0, 0.0, 0, False
        all_logits, all_labels = [], []
        try:
            for start in range(0, len(dataset), size):
                batch = self.data_collator(dataset[start:start + size])
                loss, _, stats = self.loss_fn(self.params, self.config, batch, training=False,
                                              rng=None, compute_grads=False)
                lm_weight = stats.get("num_masked", stats.get("num_predicted"))
                is_lm = is_lm or lm_weight is not None
                weight = stats.get("num_examples") if lm_weight is None else lm_weight
                accuracy = stats.get("masked_accuracy", stats.get("accuracy", 0.0))
                total_loss += float(loss) * weight
                total_correct += accuracy * weight
                total_weight += weight
                if "logits" in stats:
                    all_logits.append(stats["logits"])
                    all_labels.append(batch["labels"])
        finally:
            if collator_rng is not None:
                self.data_collator.rng = collator_rng
        loss = total_loss / total_weight if total_weight else 0.0
        metrics = {"eval_loss": loss,
                   "eval_accuracy": total_correct / total_weight if total_weight else 0.0}
        if is_lm:
            metrics["eval_perplexity"] = math.exp(loss)
        if self.compute_metrics is not None and all_logits:
            extra = self.compute_metrics(np.concatenate(all_logits), np.concatenate(all_labels))
            metrics.update({f"eval_{key}": value for key, value in extra.items()})
        return metrics

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self):
        """Write ``output_dir/checkpoint-<step>/`` and delete the checkpoints over the limit.

        The folder is written under a temporary name and renamed when complete, so a
        run killed while saving never leaves a half checkpoint behind.

        Returns:
            Path of the checkpoint folder.
        """
        out = Path(self.args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = f"checkpoint-{self.state.global_step}"
        tmp = out / f"tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write_safetensors(tmp / "model.safetensors", self.params, metadata={"format": "np"})
        write_safetensors(tmp / "optimizer.safetensors", optimizer_state(self.groups),
                          metadata={"format": "np"})
        collator_rng = _rng_of(self.data_collator)
        trainer_state = {
            **asdict(self.state),
            "args": asdict(self.args),
            "rng_states": {"dropout": self.rng.bit_generator.state,
                           "collator": collator_rng.bit_generator.state
                           if collator_rng is not None else None},
        }
        if hasattr(self.config, "to_dict"):
            trainer_state["config"] = self.config.to_dict()
        with open(tmp / "trainer_state.json", "w", encoding="utf-8") as fh:
            json.dump(trainer_state, fh, indent=1)
        final = out / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints_to_delete(os.listdir(out), self.args.save_total_limit):
            shutil.rmtree(out / old)
        return final

    def latest_checkpoint(self):
        """The newest ``checkpoint-<step>`` folder in ``args.output_dir``, or None."""
        out = Path(self.args.output_dir)
        names = os.listdir(out) if out.is_dir() else []
        steps = {name: int(name.partition("-")[2]) for name in names
                 if name.startswith("checkpoint-") and name.partition("-")[2].isdigit()}
        return out / max(steps, key=steps.get) if steps else None

    def load_checkpoint(self, folder):
        """Restore the parameters, the optimizers, the state and the generators from a checkpoint.

        The parameters are copied *into* the existing arrays: the optimizers hold
        references to them, and a new dict of new arrays would leave the optimizers
        updating the old ones.
        """
        folder = Path(folder)
        weights = read_safetensors(folder / "model.safetensors")
        if set(weights) != set(self.params):
            raise KeyError(f"{folder}: the checkpoint's parameters do not match the model's")
        for name, value in self.params.items():
            value[...] = weights[name]
        load_optimizer_state(self.groups, read_safetensors(folder / "optimizer.safetensors"))
        with open(folder / "trainer_state.json", encoding="utf-8") as fh:
            saved = json.load(fh)
        self.state = TrainerState(saved["global_step"], saved["epoch"], saved["log_history"],
                                  saved["window"], saved["loss_sum"])
        self.rng.bit_generator.state = saved["rng_states"]["dropout"]
        collator_rng = _rng_of(self.data_collator)
        if collator_rng is not None and saved["rng_states"]["collator"] is not None:
            collator_rng.bit_generator.state = saved["rng_states"]["collator"]


# =============================================================================
# Pretrained models on disk (for lesson 10)
# =============================================================================


def save_pretrained(folder, params, config, tokens):
    """Save a model as Hugging Face does: ``model.safetensors``, ``config.json``, ``vocab.txt``.

    Args:
        folder: str or Path, created if needed.
        params: dict name -> array (our names, see ``solutions.bert``).
        config: a ``BertConfig``.
        tokens: list of str, token i on line i of ``vocab.txt``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "model.safetensors", params, metadata={"format": "np"})
    (folder / "config.json").write_text(json.dumps(config.to_dict(), indent=1), encoding="utf-8")
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")


def load_pretrained(folder, dtype=np.float32):
    """Read back what ``save_pretrained`` wrote.

    Returns:
        (params, config, tokens): dict name -> array of ``dtype``, a ``BertConfig``,
        and the list of tokens (id i is ``tokens[i]``).
    """
    folder = Path(folder)
    params = {name: value.astype(dtype) for name, value in
              read_safetensors(folder / "model.safetensors").items()}
    config = BertConfig(**json.loads((folder / "config.json").read_text(encoding="utf-8")))
    tokens = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return params, config, tokens


# =============================================================================
# The corpora of the pretraining runs, and what a model learned from them
# =============================================================================

PAD, UNK, CLS, SEP, MASK = range(5)           # SPECIAL_TOKENS' ids, first in every vocabulary
SPECIAL_IDS = [PAD, UNK, CLS, SEP, MASK]


def grammar_tokens():
    """The toy grammar's vocabulary: the five special tokens, then its 354 words (lesson 08)."""
    from solutions.corpora import grammar_vocabulary
    return SPECIAL_TOKENS + grammar_vocabulary()


def encode_words(sentence, vocab):
    """``[CLS] w1 ... wn [SEP]`` as ids, for a sentence of space-separated words."""
    return [CLS] + [vocab.get(word, UNK) for word in sentence.split()] + [SEP]


def chinese_characters(text):
    """The characters of a Chinese text, as bert-base-chinese reads it: one token each, no spaces.

    Full-width forms are folded to half-width (NFKC) and Latin letters to lower case.
    """
    import unicodedata
    return [ch for ch in unicodedata.normalize("NFKC", text).lower() if not ch.isspace()]


def build_char_vocabulary(texts, min_count=2):
    """A character vocabulary: the special tokens, then the characters seen ``min_count`` times.

    Args:
        texts: list of str (the training text only).
        min_count: int, rarer characters become [UNK].

    Returns:
        list of str: the tokens, the characters by decreasing frequency (ties by code point).
    """
    counts = Counter(ch for text in texts for ch in chinese_characters(text))
    chars = sorted((ch for ch, n in counts.items() if n >= min_count),
                   key=lambda ch: (-counts[ch], ch))
    return SPECIAL_TOKENS + chars


def build_token_vocabulary(token_lists, min_count=2):
    """A compact vocabulary: the special tokens, then the tokens seen ``min_count`` times.

    For text already tokenised (e.g. by lesson 04's ``bert_tokenize``): a model trained on
    a small corpus needs rows only for the tokens that corpus holds, not for all of
    BERT's 30,522.

    Args:
        token_lists: list of lists of str (the training text only).
        min_count: int, rarer tokens become [UNK].

    Returns:
        list of str: the tokens, by decreasing frequency (ties in string order).
    """
    counts = Counter(token for tokens in token_lists for token in tokens)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
    return SPECIAL_TOKENS + kept


def encode_chars(text, vocab, max_length=None):
    """``[CLS] c1 ... cn [SEP]`` as ids, cut to ``max_length`` ids in all (None: no cut)."""
    ids = [vocab.get(ch, UNK) for ch in chinese_characters(text)]
    if max_length is not None:
        ids = ids[:max_length - 2]
    return [CLS] + ids + [SEP]


def unigram_counts(sequences, vocab_size):
    """How often each id occurs in the sequences, special ids excluded (float64 (V,))."""
    counts = np.bincount(np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]),
                         minlength=vocab_size).astype(np.float64)
    counts[SPECIAL_IDS] = 0.0
    return counts


def masked_eval_batches(sequences, vocab_size, batch_size=64, seed=0, mlm_probability=0.15):
    """Held-out MLM batches with fixed masks (the same for every model that is compared)."""
    from solutions.objectives import MLMCollator
    collator = MLMCollator(PAD, MASK, vocab_size, SPECIAL_IDS, mlm_probability, seed=seed)
    return [collator(sequences[i:i + batch_size]) for i in range(0, len(sequences), batch_size)]


def mlm_predictor(params, config):
    """``batch -> logits (B, T, V)`` for ``evaluate_mlm``."""
    return lambda batch: mlm_logits(params, config, batch["input_ids"],
                                    attention_mask=batch["attention_mask"])


def unigram_predictor(counts):
    """The baseline: at every position, the most frequent token of the training text.

    Its logits are the log frequencies, the same at every position, so its loss is the
    cross-entropy of the unigram distribution and its accuracy the share of the most
    frequent token.
    """
    log_freq = np.log(np.maximum(counts, 0.5) / counts.sum())
    return lambda batch: np.broadcast_to(log_freq, batch["input_ids"].shape + log_freq.shape)


def grammar_probes(predict, examples, vocab, seed=0):
    """What a masked LM knows of the toy grammar, on held-out sentences.

    * grammatical choice: one random word of each sentence (never the final ".") is
      masked; the top guess among the words other than "." counts as right when it
      makes the sentence grammatical (``grammatical_choices``);
    * agreement: every verb is masked in turn; right when the verb as generated scores
      higher than the same verb in the other number ("sleeps" vs "sleep"), also split
      into items with and without an attractor (a noun of the other number in between).

    Args:
        predict: callable ``batch -> logits (B, T, V)`` (``mlm_predictor``,
            ``unigram_predictor``), given batches with "input_ids" and "attention_mask".
        examples: list of ``GrammarSentence`` (``generate_grammar_examples``), held out.
        vocab: dict token -> id (``grammar_tokens``).
        seed: the seed of the masked positions.

    Returns:
        dict of floats: "grammatical_choice", "agreement", "agreement_attractor",
        "agreement_no_attractor", and the counts "n_choice", "n_agreement",
        "n_attractor".
    """
    from solutions.corpora import agreement_items, grammatical_choices
    from solutions.tokenization import pad_batch
    tokens = list(vocab)
    rng = np.random.default_rng(seed)

    def scores_at(sentences, positions):
        ids = [encode_words(" ".join(s), vocab) for s in sentences]
        for row, pos in zip(ids, positions):
            row[pos + 1] = MASK                                      # +1: [CLS]
        out = []
        for start in range(0, len(ids), 256):
            input_ids, mask = pad_batch(ids[start:start + 256], PAD)
            logits = predict({"input_ids": input_ids, "attention_mask": mask})
            rows = np.arange(len(input_ids))
            out.append(logits[rows, np.asarray(positions[start:start + 256]) + 1])
        return np.concatenate(out)                                   # (N, V)

    sentences = [ex.tokens for ex in examples]
    positions = [int(rng.integers(0, len(s) - 1)) for s in sentences]   # never the final "."
    scores = scores_at(sentences, positions)
    scores[:, SPECIAL_IDS + [vocab["."]]] = -np.inf        # guesses: words, never the end
    guesses = scores.argmax(axis=-1)
    choice = np.mean([tokens[g] in grammatical_choices(s, p)
                      for g, s, p in zip(guesses, sentences, positions)])
    items = agreement_items(examples)
    scores = scores_at([it.tokens for it in items], [it.verb for it in items])
    right = np.array([scores[i, vocab[it.correct]] > scores[i, vocab[it.wrong]]
                      for i, it in enumerate(items)])
    attractor = np.array([it.attractors > 0 for it in items])
    return {"grammatical_choice": float(choice), "agreement": float(right.mean()),
            "agreement_attractor": float(right[attractor].mean()) if attractor.any() else 0.0,
            "agreement_no_attractor": float(right[~attractor].mean()),
            "n_choice": len(sentences), "n_agreement": len(items),
            "n_attractor": int(attractor.sum())}


def pack_sequences(id_lists, max_length):
    """Consecutive texts packed into ``[CLS] ... [SEP]`` sequences of at most ``max_length`` ids.

    BERT's pretraining fills every sequence with contiguous text instead of padding
    short sentences: texts are appended while they fit in ``max_length - 2`` ids, and
    a text longer than that is cut into pieces. Nearly every sequence is then full, so
    almost no computation is spent on padding.

    Args:
        id_lists: list of lists of token ids (without [CLS] and [SEP]), in reading order.
        max_length: int, the length of a packed sequence, [CLS] and [SEP] included.

    Returns:
        list of lists of ids.
    """
    room = max_length - 2
    sequences, current = [], []
    for ids in id_lists:
        while ids:
            if len(current) + len(ids) <= room:
                current = current + list(ids)
                ids = []
            elif not current:
                current, ids = list(ids[:room]), ids[room:]
            if ids or len(current) == room:
                sequences.append([CLS] + current + [SEP])
                current = []
    if current:
        sequences.append([CLS] + current + [SEP])
    return sequences


def plot_curves(log_history, title="", axes=None):
    """Training and evaluation loss, masked accuracy, and the learning rate against the step.

    Args:
        log_history: ``Trainer.state.log_history`` (or the list saved in trainer_state.json).
        title: put above the first panel.
        axes: three matplotlib axes, or None for a new figure.

    Returns:
        the three axes.
    """
    import matplotlib.pyplot as plt
    if axes is None:
        axes = plt.subplots(1, 3, figsize=(13, 3.4))[1]
    train = [e for e in log_history if "loss" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    steps = [e["step"] for e in train]
    axes[0].plot(steps, [e["loss"] for e in train], lw=1, label="training (mean since last log)")
    axes[1].plot(steps, [e["accuracy"] for e in train], lw=1, label="training")
    if evals:
        eval_steps = [e["step"] for e in evals]
        axes[0].plot(eval_steps, [e["eval_loss"] for e in evals], "o-", ms=3, label="held out")
        axes[1].plot(eval_steps, [e["eval_accuracy"] for e in evals], "o-", ms=3,
                     label="held out")
    axes[2].plot(steps, [e["learning_rate"] for e in train], color="tab:green")
    for ax, label in zip(axes, ("masked-LM loss (nats)", "masked-token accuracy",
                                "learning rate")):
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    axes[0].set_title(title, loc="left", fontsize=10)
    return axes
