"""Lesson 10: the metrics agree with scikit-learn, the collator pads and cuts, fine-tuning learns.

The exercises themselves are graded by the generic tests (reference, stubs, mistakes,
alternatives, notebook); here we check the references against an independent
implementation, the experiment helpers, and the quick mode of ``scripts/finetune.py``.
"""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from solutions import finetuning as ft
from solutions.bert import BertConfig, init_bert
from solutions.data import MissingSource

from conftest import ROOT

metrics = pytest.importorskip("sklearn.metrics")


def load_or_skip(loader, *args, **kwargs):
    try:
        return loader(*args, **kwargs)
    except MissingSource as exc:
        pytest.skip(str(exc))


def _random_labels(rng):
    C = int(rng.integers(2, 7))
    N = int(rng.integers(1, 60))
    y_true = rng.integers(0, C, size=N)
    y_pred = np.where(rng.random(N) < 0.5, y_true, rng.integers(0, C, size=N))
    if rng.random() < 0.2:                       # some classes never predicted
        y_pred[:] = y_true[0]
    return C, y_true, y_pred


def test_metrics_match_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(300):
            C, y_true, y_pred = _random_labels(rng)
            labels = list(range(C))
            assert ft.accuracy(y_true, y_pred) == pytest.approx(
                metrics.accuracy_score(y_true, y_pred))
            confusion = ft.confusion_matrix(y_true, y_pred, C)
            assert confusion.dtype == np.int64
            np.testing.assert_array_equal(
                confusion, metrics.confusion_matrix(y_true, y_pred, labels=labels))
            per_class = metrics.precision_recall_fscore_support(
                y_true, y_pred, labels=labels, average=None, zero_division=0)
            for ours, theirs in zip(ft.precision_recall_f1(confusion), per_class[:3]):
                assert ours.dtype == np.float64 and not np.isnan(ours).any()
                np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
            macro = ft.classification_scores(y_true, y_pred, C, average="macro")
            expected = metrics.precision_recall_fscore_support(
                y_true, y_pred, labels=labels, average="macro", zero_division=0)
            assert [macro[k] for k in ("precision", "recall", "f1")] == pytest.approx(
                list(expected[:3]), abs=1e-12)
            if C == 2:
                for positive in (0, 1):
                    binary = ft.classification_scores(y_true, y_pred, 2, "binary", positive)
                    expected = metrics.precision_recall_fscore_support(
                        y_true, y_pred, labels=labels, average="binary", pos_label=positive,
                        zero_division=0)
                    assert [binary[k] for k in ("precision", "recall", "f1")] == pytest.approx(
                        list(expected[:3]), abs=1e-12)


def test_predictions_are_the_argmax_and_its_probability():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=5.0, size=(50, 4))
    predicted, confidence = ft.predictions_from_logits(logits)
    np.testing.assert_array_equal(predicted, logits.argmax(axis=1))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(confidence, probabilities.max(axis=1), rtol=1e-12)
    _, huge = ft.predictions_from_logits(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(huge, [1.0, 0.5])


def test_collator_pads_to_the_batch_and_keeps_sep_when_cutting():
    examples = [([2, 10, 11, 12, 13, 14, 3], 1), ([2, 20, 3], 0), (np.array([2, 30, 31, 3]), 1)]
    batch = ft.ClassificationCollator(pad_id=9)(examples)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, 7)
    assert all(v.dtype == np.int64 for v in batch.values())
    np.testing.assert_array_equal(batch["input_ids"][1], [2, 20, 3, 9, 9, 9, 9])
    np.testing.assert_array_equal(batch["attention_mask"][1], [1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch["labels"], [1, 0, 1])
    assert not batch["token_type_ids"].any()

    cut = ft.ClassificationCollator(pad_id=0, max_length=5)(examples)
    assert cut["input_ids"].shape == (3, 5)                      # the batch's longest after cutting
    np.testing.assert_array_equal(cut["input_ids"][0], [2, 10, 11, 12, 3])
    short = ft.ClassificationCollator(pad_id=0, max_length=64)(examples[1:])
    assert short["input_ids"].shape == (2, 4)                    # not padded to max_length


def test_stratified_subset_keeps_the_proportions_and_follows_the_seed():
    labels = np.random.default_rng(2).permutation(np.repeat([0, 1, 2], [500, 300, 200]))
    for size in (0, 7, 100, 333, 1000):
        chosen = ft.stratified_subset(labels, size, np.random.default_rng(size))
        assert chosen.dtype == np.int64 and len(chosen) == size
        assert np.all(np.diff(chosen) > 0)
        counts = np.bincount(labels[chosen], minlength=3)
        assert np.all(np.abs(counts - size * np.array([0.5, 0.3, 0.2])) < 1)
    again = [ft.stratified_subset(labels, 100, np.random.default_rng(s)) for s in (5, 5, 6)]
    assert np.array_equal(again[0], again[1]) and not np.array_equal(again[0], again[2])


def test_bag_of_words_is_perfect_on_plain_sentences_and_a_coin_on_the_hard_ones():
    task = ft.sentiment_task(n_train=800, n_validation=10, n_test=400)
    V = len(task["tokens"])
    W, b = ft.train_bag_of_words(
        ft.bag_of_words([ids for ids, _ in task["train"]["examples"]], V), task["train"]["labels"])
    predicted = (ft.bag_of_words([ids for ids, _ in task["test"]["examples"]], V) @ W + b).argmax(1)
    right = predicted == task["test"]["labels"]
    kinds = task["test"]["kinds"]
    assert right[kinds == "plain"].mean() > 0.97
    assert right[kinds != "plain"].mean() == 0.5                  # twins: exactly one is right


@pytest.fixture(scope="module")
def small_task():
    return ft.sentiment_task(n_train=600, n_validation=100, n_test=400)


def _small_config(V):
    return BertConfig(vocab_size=V, hidden_size=32, num_layers=1, num_heads=2,
                      intermediate_size=64, max_position_embeddings=32, dropout=0.1)


def test_quick_fine_tuning_beats_chance(small_task, tmp_path):
    config = _small_config(len(small_task["tokens"]))
    params = init_bert(config, np.random.default_rng(0))
    subset = ft.stratified_subset(small_task["train"]["labels"], 300, np.random.default_rng(0))
    few = [small_task["train"]["examples"][i] for i in subset]
    collator = ft.ClassificationCollator(ft.PAD)
    before = ft.classifier_logits(params, config, small_task["test"]["examples"], collator)
    trainer = ft.finetune(params, config, few, small_task["validation"]["examples"], collator,
                          num_train_epochs=10, learning_rate=3e-3, evaluations=2, seed=0,
                          output_dir=tmp_path)
    after = ft.classifier_logits(params, config, small_task["test"]["examples"], collator)
    truth = small_task["test"]["labels"]
    assert ft.accuracy(truth, before.argmax(1)) < 0.6
    scores = ft.classification_scores(truth, after.argmax(1), 2)
    assert scores["accuracy"] > 0.7 and scores["f1"] > 0.7
    evaluations = [e for e in trainer.state.log_history if "eval_accuracy" in e]
    assert len(evaluations) == 2 and "eval_f1" in evaluations[-1]
    assert not list(tmp_path.iterdir())                           # no checkpoint written


def test_pretrained_encoder_fresh_heads_and_attention_maps(small_task):
    config = _small_config(len(small_task["tokens"]))
    fresh = init_bert(config, np.random.default_rng(0))
    pretrained = init_bert(config, np.random.default_rng(1))
    model = ft.with_pretrained_encoder(fresh, pretrained)
    assert set(model) == set(fresh)
    for name, value in model.items():
        source = fresh if name.startswith(("pooler.", "classifier.")) else pretrained
        np.testing.assert_array_equal(value, source[name])
        assert value is not source[name]
    ids = small_task["test"]["examples"][0][0]
    maps = ft.attention_maps(model, config, ids)
    assert maps.shape == (1, 2, len(ids), len(ids))
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, rtol=1e-5)
    probe = ft.polarity_probe(model, config, small_task["test"]["sentences"][:40],
                              small_task["tokens"])
    assert 0.0 <= probe["p_positive"] <= 1.0 and "one adjective" in probe


def _run_script(*args, timeout=240):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "finetune.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_finetune_script_quick_mode(tmp_path):
    proc = _run_script("--quick", "--task", "sentiment", "--seeds", "0", "--out", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "finetune-quick" / "finetune-sentiment.json").read_text())
    assert results["quick"] and results["bag_of_words"]["accuracy_hard"] == 0.5
    assert set(results["summary"]) == {"scratch", "pretrained"}
    assert (tmp_path / "finetune-quick" / "minibert-sentiment" / "model.safetensors").exists()
    assert (tmp_path / "finetune-quick" / "finetune-sentiment.png").exists()
    proc = _run_script("--quick", "--task", "chinese", "--out", tmp_path)   # no pretrained model
    assert proc.returncode == 0, proc.stderr
    assert "python scripts/pretrain.py --corpus chinese" in proc.stdout


def test_finetune_script_on_chinese_reviews_with_a_tiny_pretrained_model(tmp_path):
    from solutions.corpora import load_chinese_reviews
    from solutions.pretraining import build_char_vocabulary, save_pretrained
    reviews = load_or_skip(load_chinese_reviews)
    tokens = build_char_vocabulary([t for t, _ in reviews["train"][:2000]], min_count=2)
    config = BertConfig(vocab_size=len(tokens), hidden_size=16, num_layers=1, num_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    save_pretrained(tmp_path / "tiny", init_bert(config, np.random.default_rng(0)), config, tokens)
    proc = _run_script("--quick", "--task", "chinese", "--seeds", "0", "--out", tmp_path,
                       "--chinese-model", tmp_path / "tiny")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "finetune-quick" / "finetune-chinese.json").read_text())
    assert set(results["summary"]) == {"scratch", "pretrained"}
    assert results["max_length"] == 32
