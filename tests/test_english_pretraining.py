"""The English pretraining path of scripts/pretrain.py: gensim's Lee news corpus, Pang-Lee probe."""

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from solutions.data import SPECIAL_TOKENS, MissingSource
from solutions.pretraining import CLS, SEP, UNK, build_token_vocabulary, load_pretrained

from conftest import ROOT


def load_script():
    spec = importlib.util.spec_from_file_location("pretrain_script",
                                                  ROOT / "scripts" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = load_script()


@pytest.fixture(scope="module")
def english():
    """The english corpus with the full run's data settings (min_count, held-out documents)."""
    from solutions.corpora import load_lee_corpus
    from solutions.tokenization import bert_tokenize
    data = SCRIPT.settings("english", quick=False)["data"]
    try:
        documents = load_lee_corpus()
    except MissingSource as exc:
        pytest.skip(str(exc))
    corpus = SCRIPT.english_corpus(data)
    corpus["pieces"] = [bert_tokenize(d, corpus["bert_vocab"]) for d in documents]
    corpus["data"] = data
    return corpus


def test_build_token_vocabulary_keeps_frequent_tokens_in_order():
    tokens = build_token_vocabulary([["b", "a", "b", "c"], ["a", "b", "[UNK]", "d", "d"]],
                                    min_count=2)
    assert tokens == SPECIAL_TOKENS + ["b", "a", "d"]        # by count, ties in string order
    assert build_token_vocabulary([["x"]], min_count=1) == SPECIAL_TOKENS + ["x"]


def test_the_compact_vocabulary_maps_every_kept_token_and_sends_rare_ones_to_unk(english):
    tokens, data = english["tokens"], english["data"]
    n_train = len(english["pieces"]) - data["n_held_out"]
    counts = Counter(p for doc in english["pieces"][:n_train] for p in doc)
    assert tokens[:5] == SPECIAL_TOKENS and len(set(tokens)) == len(tokens)
    kept = {t for t, n in counts.items() if n >= data["min_count"] and t not in SPECIAL_TOKENS}
    assert set(tokens[5:]) == kept
    assert [counts[t] for t in tokens[5:]] == sorted((counts[t] for t in tokens[5:]), reverse=True)
    assert tokens[5] == "the"
    ids = english["train_ids"] + english["held_out_ids"]
    n_rare = 0
    for doc_pieces, doc_ids in zip(english["pieces"], ids):
        assert len(doc_pieces) == len(doc_ids)
        for piece, i in zip(doc_pieces, doc_ids):
            if piece in kept:
                assert tokens[i] == piece
            else:
                assert i == UNK
                n_rare += 1
    assert n_rare > 0                   # rare and held-out-only tokens exist, and became [UNK]


def test_held_out_documents_never_appear_in_the_training_sequences(english):
    data = english["data"]
    assert len(english["held_out_ids"]) == data["n_held_out"] == 30
    assert len(english["train_ids"]) + len(english["held_out_ids"]) == len(english["pieces"])

    def stream(sequences):
        for seq in sequences:
            assert seq[0] == CLS and seq[-1] == SEP and len(seq) <= data["max_length"]
        return [i for seq in sequences for i in seq[1:-1]]

    # The training sequences hold exactly the training documents, in order, and nothing else.
    assert stream(english["train"]) == [i for doc in english["train_ids"] for i in doc]
    assert stream(english["held_out"]) == [i for doc in english["held_out_ids"] for i in doc]
    vocab = {t: i for i, t in enumerate(english["tokens"])}
    last = [vocab.get(p, UNK) for p in english["pieces"][-1]]
    assert english["held_out_ids"][-1] == last


def test_quick_english_run_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "pretrain.py"), "--corpus",
                           "english", "--quick", "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "== english: skipped" in proc.stdout:
        pytest.skip(proc.stdout.split("== english: skipped", 1)[1].strip())
    folder = tmp_path / "minibert-english"
    params, config, tokens = load_pretrained(folder)
    assert len(tokens) == config.vocab_size == params["embeddings.word"].shape[0]
    assert tokens[:5] == SPECIAL_TOKENS
    results = json.loads((folder / "results.json").read_text())
    assert results["corpus"] == "english"
    assert results["model"]["eval_loss"] < results["unigram"]["eval_loss"] + 2.0
    probe = results["polarity_probe"]
    assert probe["n_sentences"] == 200 and probe["n_folds"] == 5
    assert len(probe["accuracy"]) == 4
    for row in probe["accuracy"].values():
        assert len(row["folds"]) == 5 and 0.0 <= row["mean"] <= 1.0 and row["std"] >= 0.0
    assert "Pang-Lee polarity" in proc.stdout
    assert (folder / "curves.png").stat().st_size > 1000


def test_the_default_run_leaves_english_out():
    assert SCRIPT.selected_corpora("all") == ["grammar", "chinese"]
    assert SCRIPT.selected_corpora("english") == ["english"]
