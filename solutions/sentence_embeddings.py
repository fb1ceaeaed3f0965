"""Lesson 13 - A real pretrained BERT: sentence embeddings with all-MiniLM-L6-v2.

all-MiniLM-L6-v2 is a 6-layer BERT whose package declares, in ``modules.json``,
three steps: the Transformer, a *mean pooling* of its token vectors, and a
*normalisation* to unit length. Two sentences are then compared by the cosine of
their embeddings, which for unit vectors is their dot product. The model was
fine-tuned for this with a contrastive objective: each sentence of a pair must
pick out its partner among the other sentences of the batch.

Exercises: ``mean_pool``, ``l2_normalize``, ``cosine_similarity``,
``sentence_embeddings``, ``semantic_search`` and ``contrastive_loss``. The helpers
below them load the model into lesson 07's NumPy BERT and tokenize with lesson 04.
"""

from __future__ import annotations

import json

import numpy as np

from solutions.bert import BertConfig, bert_forward, from_hf_state_dict   # lesson 07
from solutions.losses import log_softmax, softmax                         # lesson 01
from solutions.tokenization import bert_tokenize, encode_pair, pad_batch  # lesson 04

# --------------------------------------------------------------------------- exercises


def mean_pool(hidden, attention_mask):
    """The average of each sequence's token vectors, padding left out.

    Padding positions (mask 0) hold vectors too, and they are not zero: they
    must not enter the sum, nor the count. A row with no real token at all gives
    a vector of zeros (the count is clamped at 1e-9, as sentence-transformers does).

    Args:
        hidden: float array (B, T, D), one vector per token (BERT's output).
        attention_mask: int array (B, T), 1 for a real token, 0 for padding.

    Returns:
        float array (B, D), the dtype of ``hidden``.
    """
    mask = attention_mask[:, :, None].astype(hidden.dtype)         # (B, T, 1)
    total = (hidden * mask).sum(axis=1)                            # (B, D)
    count = np.maximum(mask.sum(axis=1), 1e-9)                     # (B, 1)
    return (total / count).astype(hidden.dtype, copy=False)


def l2_normalize(x, eps=1e-12):
    """Scale every row to unit Euclidean length: ``x / max(||x||, eps)``.

    The ``eps`` keeps a zero row at zero instead of 0 / 0 (PyTorch's
    ``F.normalize`` does the same).

    Args:
        x: float array (..., D).
        eps: float, the smallest norm divided by.

    Returns:
        float array of the shape and dtype of ``x``; every row of norm 1
        (except rows of norm below ``eps``).
    """
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    return (x / np.maximum(norm, eps)).astype(x.dtype, copy=False)


def cosine_similarity(a, b):
    """The cosine of the angle between every row of ``a`` and every row of ``b``.

    $\\cos(a_i, b_j) = a_i \\cdot b_j / (\\|a_i\\| \\|b_j\\|)$; rows need not be unit
    vectors (use ``l2_normalize``).

    Args:
        a: float array (N, D).
        b: float array (M, D).

    Returns:
        float array (N, M) in [-1, 1]: entry (i, j) compares a[i] with b[j].
    """
    return l2_normalize(a) @ l2_normalize(b).T


def sentence_embeddings(params, config, input_ids, attention_mask):
    """all-MiniLM-L6-v2's recipe: BERT, then ``mean_pool``, then ``l2_normalize``.

    Run lesson 07's ``bert_forward`` (no dropout: not training) *with* the
    attention mask, so that no token attends to the padding; average the real
    tokens' vectors; scale to unit length.

    Args:
        params: a BERT's parameters (lesson 07's names), e.g. MiniLM's.
        config: its ``BertConfig``.
        input_ids: int array (B, T), padded with any id where the mask is 0.
        attention_mask: int array (B, T), 1 for a real token, 0 for padding.

    Returns:
        float array (B, D), the dtype of the parameters, unit rows: one embedding
        per sequence, the same whatever padding the batch adds.
    """
    hidden, _ = bert_forward(params, config, input_ids, attention_mask=attention_mask)
    return l2_normalize(mean_pool(hidden, attention_mask))


def semantic_search(query_embeddings, corpus_embeddings, k):
    """The k entries of a corpus most similar to each query, by cosine similarity.

    Args:
        query_embeddings: float array (Q, D).
        corpus_embeddings: float array (N, D), N >= k.
        k: int, 1 <= k <= N.

    Returns:
        (indices, scores): int64 array (Q, k), the corpus rows of each query's
        k best matches, the most similar first (on a tie, the smaller index
        first); and float array (Q, k), their cosine similarities, in the same
        order (non-increasing along each row).
    """
    scores = cosine_similarity(query_embeddings, corpus_embeddings)           # (Q, N)
    indices = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return indices.astype(np.int64), np.take_along_axis(scores, indices, axis=1)


def contrastive_loss(anchors, candidates, scale=20.0):
    """In-batch contrastive loss (sentence-transformers' MultipleNegativesRankingLoss).

    Anchor i's partner is ``candidates[i]``; every other candidate is a negative.
    With unit vectors, ``S = scale * anchors @ candidates.T`` holds scaled cosine
    similarities, and the loss is the cross-entropy of each row of S against its
    diagonal entry, averaged over the N anchors:

        loss = mean_i ( logsumexp_j S[i, j] - S[i, i] ).

    Args:
        anchors: float array (N, D), unit rows.
        candidates: float array (M, D), M >= N, unit rows: the N partners first,
            then any extra negatives.
        scale: float, the inverse temperature (sentence-transformers' default: 20).

    Returns:
        (loss, d_anchors, d_candidates): a float, and the gradients of the loss
        with respect to ``anchors`` (N, D) and ``candidates`` (M, D).
    """
    N = anchors.shape[0]
    scores = scale * anchors @ candidates.T                                   # (N, M)
    loss = -np.mean(log_softmax(scores, axis=1)[np.arange(N), np.arange(N)])
    d_scores = softmax(scores, axis=1)
    d_scores[np.arange(N), np.arange(N)] -= 1.0
    d_scores *= scale / N
    return float(loss), d_scores @ candidates, d_scores.T @ anchors


# --------------------------------------------------------------------------- helpers


def load_minilm_bert():
    """all-MiniLM-L6-v2 as lesson 07's NumPy BERT.

    Returns:
        (params, config, vocab, recipe): float32 parameters under our names and
        in our layout; the ``BertConfig``; the vocabulary as a dict token -> id;
        and a dict read from the package's own files: "modules" (the steps of
        ``modules.json``), "pooling" (``1_Pooling/config.json``) and
        "max_seq_length" (``sentence_bert_config.json``).

    Raises:
        MissingSource: the package is not installed (the message says how to).
    """
    from solutions.pretrained import load_minilm, minilm_dir
    hf_config, weights, tokens = load_minilm()
    config = BertConfig.from_hf(hf_config)
    config.dropout = 0.0
    params = from_hf_state_dict(weights, config)
    folder = minilm_dir()

    def read(name):
        return json.loads((folder / name).read_text(encoding="utf-8"))

    recipe = {"modules": [m["type"].rsplit(".", 1)[-1] for m in read("modules.json")],
              "pooling": read("1_Pooling/config.json"),
              "max_seq_length": read("sentence_bert_config.json")["max_seq_length"]}
    return params, config, {token: i for i, token in enumerate(tokens)}, recipe


def _encode(texts, vocab, max_length):
    """Each text as ``[CLS] tokens [SEP]`` ids (its first ``max_length - 2`` tokens): lesson 04."""
    return [encode_pair(bert_tokenize(text, vocab), None, vocab, max_length)["input_ids"]
            for text in texts]


def tokenize_batch(texts, vocab, max_length=256):
    """Lesson 04's tokenizer on a list of texts: one padded batch.

    Each text becomes ``[CLS] tokens [SEP]`` (its first ``max_length - 2`` tokens),
    padded on the right with "[PAD]".

    Returns:
        (input_ids, attention_mask): int64 arrays (B, T), T the longest encoding.
    """
    return pad_batch(_encode(texts, vocab, max_length), vocab["[PAD]"])


def embed_texts(params, config, vocab, texts, batch_size=64, max_length=256, embed_fn=None):
    """``sentence_embeddings`` of many texts, a batch at a time.

    Texts of similar length are batched together (sorted by length), so that
    little time goes into padding; the rows come back in the order of ``texts``.
    ``embed_fn`` replaces ``sentence_embeddings`` (same arguments), e.g. with yours.

    Returns:
        float array (len(texts), D), unit rows.
    """
    encoded = _encode(texts, vocab, max_length)
    embed_fn = sentence_embeddings if embed_fn is None else embed_fn
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    result = np.zeros((len(texts), config.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        input_ids, attention_mask = pad_batch([encoded[i] for i in rows], vocab["[PAD]"])
        result[rows] = embed_fn(params, config, input_ids, attention_mask)
    return result
