"""Lesson 13 - A real pretrained BERT: exercise specs.

The exercises are graded on small random inputs and small random BERTs, not on
all-MiniLM-L6-v2 itself: grading needs neither the model's package nor its
40 seconds of loading and running per exercise. Results in float32 are compared
with the FLOAT32 tolerance (another summation order changes the last bits);
every mistake of the catalogue is off by far more.
"""

import numpy as np

from solutions import bert, sentence_embeddings as reference

from ..compare import FLOAT32
from ..spec import Case, Exercise, Lesson, Mistake, call, named_results, returns
from .lesson07 import _config, _pad, perturbed_params

# --------------------------------------------------------------------------- mean_pool


def _padded(rng, lengths, T, D, dtype=np.float64, pad_value=None):
    """BERT-like output (B, T, D) and its mask; padding rows hold vectors too."""
    mask = _pad(lengths, T)
    hidden = rng.normal(size=(len(lengths), T, D))
    if pad_value is not None:
        hidden[mask == 0] = pad_value
    return {"hidden": hidden.astype(dtype), "attention_mask": mask}


def _mean_pool_cases(rng):
    return [
        Case("B=2, T=5, D=4, the second row padded", _padded(rng, [5, 3], 5, 4)),
        Case("no padding", _padded(rng, [6, 6, 6], 6, 3)),
        Case("padding vectors of 100 (they must not count)",
             _padded(rng, [2, 4, 1], 4, 5, pad_value=100.0)),
        Case("a row with no real token gives zeros", _padded(rng, [0, 3], 3, 4)),
        Case("float32 (MiniLM's dtype)", _padded(rng, [7, 2, 5], 7, 8, dtype=np.float32)),
        Case("B=1, T=1", _padded(rng, [1], 1, 6)),
    ]


_MEAN_POOL = """def mean_pool(hidden, attention_mask):
    mask = attention_mask[:, :, None].astype(hidden.dtype)
    total = {total}
    count = {count}
    return (total / count).astype(hidden.dtype)
"""


def _mean_pool_mistake(**parts):
    defaults = {"total": "(hidden * mask).sum(axis=1)",
                "count": "np.maximum(mask.sum(axis=1), 1e-9)"}
    return _MEAN_POOL.format(**dict(defaults, **parts))


mean_pool = Exercise(
    id="13.mean_pool", symbol="mean_pool", points=2,
    title="mean pooling over the real tokens",
    reference=reference.mean_pool, cases=_mean_pool_cases, tolerance=FLOAT32,
    mistakes=[
        Mistake("padding averaged in",
                "hidden.mean(axis=1) averages the padding's vectors too: multiply by the mask "
                "and divide by the number of real tokens, attention_mask.sum(axis=1)",
                _mean_pool_mistake(total="hidden.sum(axis=1)",
                                   count="hidden.shape[1]")),
        Mistake("divided by T",
                "the sum leaves the padding out, but the count must too: divide by the number "
                "of real tokens of each row, not by T",
                _mean_pool_mistake(count="hidden.shape[1]")),
        Mistake("the sum, not the mean",
                "divide the sum of the real tokens' vectors by how many there are",
                _mean_pool_mistake(count="1")),
        Mistake("0 / 0 on a row without real tokens",
                "a row of padding only has a count of 0: clamp it, np.maximum(count, 1e-9), "
                "so that the row's mean is 0 instead of NaN",
                _mean_pool_mistake(count="mask.sum(axis=1)")),
    ],
)

# --------------------------------------------------------------------------- l2_normalize


def _normalize_cases(rng):
    tiny = rng.normal(size=(3, 4))
    tiny[1] *= 1e-13 / np.linalg.norm(tiny[1])            # norm 1e-13 < eps
    zero = rng.normal(size=(3, 5))
    zero[2] = 0.0
    return [
        Case("N=4 rows of D=6", {"x": rng.normal(scale=3.0, size=(4, 6))}),
        Case("(B, T, D): the last axis", {"x": rng.normal(size=(2, 3, 4))}),
        Case("one vector (D,)", {"x": rng.normal(size=7)}),
        Case("a zero row stays zero", {"x": zero}),
        Case("a row of norm 1e-13, below eps", {"x": tiny}),
        Case("eps=0.5", {"x": rng.normal(scale=0.2, size=(5, 2))}, {"eps": 0.5}),
        Case("float32", {"x": rng.normal(size=(4, 8)).astype(np.float32)}),
        Case("one column: D=1", {"x": rng.normal(size=(5, 1))}),
    ]


_NORMALIZE = """def l2_normalize(x, eps=1e-12):
    norm = {norm}
    return (x / {divide}).astype(x.dtype)
"""


def _normalize_mistake(**parts):
    defaults = {"norm": "np.sqrt(np.sum(x * x, axis=-1, keepdims=True))",
                "divide": "np.maximum(norm, eps)"}
    return _NORMALIZE.format(**dict(defaults, **parts))


l2_normalize = Exercise(
    id="13.l2_normalize", symbol="l2_normalize", points=1,
    title="unit length along the last axis",
    reference=reference.l2_normalize, cases=_normalize_cases, tolerance=FLOAT32,
    mistakes=[
        Mistake("the norm of the columns",
                "each *row* (vector) gets unit length: sum over the last axis, axis=-1, "
                "with keepdims=True so that the division broadcasts",
                _normalize_mistake(norm="np.sqrt(np.sum(x * x, axis=0, keepdims=True))")),
        Mistake("the norm of the whole array",
                "normalise every vector by its own norm, np.sum(x * x, axis=-1, keepdims=True)",
                _normalize_mistake(norm="np.sqrt(np.sum(x * x))")),
        Mistake("divided by the squared norm",
                "the norm is the square root of the sum of squares",
                _normalize_mistake(norm="np.sum(x * x, axis=-1, keepdims=True)")),
        Mistake("no eps: 0 / 0",
                "a zero vector has norm 0: divide by np.maximum(norm, eps), which keeps it at 0",
                _normalize_mistake(divide="norm")),
        Mistake("eps added",
                "the docstring asks for max(norm, eps), as F.normalize: norm + eps changes the "
                "result for vectors whose norm is near eps",
                _normalize_mistake(divide="(norm + eps)")),
    ],
)

# --------------------------------------------------------------------------- cosine_similarity


def _cosine_cases(rng):
    same = rng.normal(size=(4, 5))
    scaled = rng.normal(size=(3, 6)) * np.array([[1e3], [1e-3], [1.0]])
    return [
        Case("N=4, M=3, D=5", {"a": rng.normal(size=(4, 5)), "b": rng.normal(size=(3, 5))}),
        Case("a with itself: 1 on the diagonal", {"a": same, "b": same.copy()}),
        Case("rows of norm 1000 and 0.001", {"a": scaled, "b": rng.normal(size=(5, 6))}),
        Case("N=1", {"a": rng.normal(size=(1, 4)), "b": rng.normal(size=(6, 4))}),
        Case("float32, D=384", {"a": rng.normal(size=(3, 384)).astype(np.float32),
                                "b": rng.normal(size=(4, 384)).astype(np.float32)}),
        Case("opposite vectors: -1", {"a": same[:2], "b": -3.0 * same[:2]}),
        Case("a zero row: cosine 0, not NaN (l2_normalize keeps it at 0)",
             {"a": np.vstack([np.zeros(4), rng.normal(size=4)]), "b": rng.normal(size=(3, 4))}),
    ]


cosine_similarity = Exercise(
    id="13.cosine_similarity", symbol="cosine_similarity", points=1,
    title="every pair's cosine",
    reference=reference.cosine_similarity, cases=_cosine_cases, tolerance=FLOAT32,
    requires=("13.l2_normalize",),
    mistakes=[
        Mistake("dot products, not cosines",
                "a @ b.T is a cosine only for unit vectors: l2_normalize both sides first",
                "def cosine_similarity(a, b):\n    return a @ b.T\n"),
        Mistake("only a normalised",
                "normalise b too: cos = a.b / (|a| |b|)",
                "def cosine_similarity(a, b):\n    return l2_normalize(a) @ b.T\n"),
        Mistake("the cosine distance",
                "return the similarity cos, not the distance 1 - cos",
                "def cosine_similarity(a, b):\n    return 1 - l2_normalize(a) @ l2_normalize(b).T\n"),
    ],
)

# --------------------------------------------------------------------------- sentence_embeddings


def run_sentence_embeddings(fn, case):
    config = bert.BertConfig(**case.data["config"])
    return fn(case.data["params"], config, case.args["input_ids"], case.args["attention_mask"])


def _embedding_cases(rng):
    def case(name, lengths, T, dtype=np.float64, pad_id=0, **sizes):
        config = _config(**sizes)
        mask = _pad(lengths, T)
        low = 0 if pad_id else 1                      # with another pad id, 0 is a real token
        input_ids = np.where(mask == 1, rng.integers(low, config["vocab_size"], size=mask.shape),
                             pad_id)
        if pad_id:
            input_ids[0, 1] = 0
        return Case(name, {"input_ids": input_ids, "attention_mask": mask},
                    data={"config": config, "params": perturbed_params(rng, config, dtype)})
    return [
        case("B=3, T=6, padded, 2 layers", [6, 2, 4], 6),
        case("no padding", [5, 5], 5),
        case("float32 (MiniLM's dtype), 3 layers", [7, 3], 7, dtype=np.float32, L=3, P=8),
        case("one token", [1], 1),
        case("D=12, 3 heads, one row all padding but [CLS]", [4, 1, 3], 4, D=12, H=3),
        case("dropout 0.1 in the config (an embedding is computed without it)", [5, 3], 5,
             dropout=0.1),
        case("padded with id 3, and id 0 a real token: the mask says which is which", [5, 2], 5,
             pad_id=3),
    ]


_EMBEDDINGS = """def sentence_embeddings(params, config, input_ids, attention_mask):
    hidden, _ = bert_forward(params, config, input_ids, {mask_argument})
    pooled = {pooled}
    return {result}
"""


def _embeddings_mistake(**parts):
    defaults = {"mask": "attention_mask", "pooled": "mean_pool(hidden, attention_mask)",
                "result": "l2_normalize(pooled)"}
    defaults.update(parts)
    defaults.setdefault("mask_argument", f"attention_mask={defaults['mask']}")
    return _EMBEDDINGS.format(**defaults)


sentence_embeddings = Exercise(
    id="13.sentence_embeddings", symbol="sentence_embeddings", points=2,
    title="BERT, mean pooling, unit length",
    reference=reference.sentence_embeddings, cases=_embedding_cases,
    run=run_sentence_embeddings, tolerance=FLOAT32, timeout=20,
    requires=("07.bert_forward", "13.mean_pool", "13.l2_normalize"),
    mistakes=[
        Mistake("the [CLS] vector",
                "MiniLM's recipe (1_Pooling/config.json: pooling_mode_mean_tokens) averages the "
                "real tokens with mean_pool; the [CLS] vector is what BERT's pooler reads",
                _embeddings_mistake(pooled="hidden[:, 0]")),
        Mistake("BERT's pooler",
                "sentence embeddings do not use the pooler (a dense layer and tanh on [CLS], "
                "trained for next-sentence prediction): mean_pool the last hidden states",
                _embeddings_mistake(pooled="np.tanh(hidden[:, 0] @ params['pooler.W'] "
                                           "+ params['pooler.b'])")),
        Mistake("attention mask not passed to BERT",
                "give bert_forward the attention_mask, or the real tokens attend to the "
                "padding and the embedding changes with the batch's padding",
                _embeddings_mistake(mask="None")),
        Mistake("dropout left on",
                "an embedding is computed in evaluation (training=False, bert_forward's "
                "default): with dropout on, the same sentence gets another vector every time",
                _EMBEDDINGS.format(mask_argument="attention_mask=attention_mask, training=True, "
                                                 "rng=np.random.default_rng(0)",
                                   pooled="mean_pool(hidden, attention_mask)",
                                   result="l2_normalize(pooled)")),
        Mistake("the mask passed as the token types",
                "bert_forward's fourth argument is token_type_ids: pass the mask by name, "
                "bert_forward(params, config, input_ids, attention_mask=attention_mask)",
                _embeddings_mistake(mask_argument="attention_mask")),
        Mistake("padding averaged in",
                "average the real tokens only: mean_pool(hidden, attention_mask)",
                _embeddings_mistake(pooled="hidden.mean(axis=1)")),
        Mistake("not normalised",
                "the last step of MiniLM's recipe (2_Normalize) scales every embedding to "
                "unit length: l2_normalize",
                _embeddings_mistake(result="pooled")),
    ],
)

# --------------------------------------------------------------------------- semantic_search


def _search_cases(rng):
    # Ties that are exact in floating point: one-hot queries against duplicated rows.
    corpus = np.array([[0.6, 0.8, 0.0], [1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0],
                       [1.0, 0.0, 0.0]])
    queries = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return [
        Case("Q=3, N=8, k=3", {"query_embeddings": rng.normal(size=(3, 5)),
                               "corpus_embeddings": rng.normal(size=(8, 5)), "k": 3}),
        Case("rows of different norms (cosine, not dot product)",
             {"query_embeddings": rng.normal(size=(2, 4)),
              "corpus_embeddings": rng.normal(size=(6, 4)) * rng.uniform(0.01, 100, size=(6, 1)),
              "k": 4}),
        Case("ties: the smaller index first", {"query_embeddings": queries,
                                               "corpus_embeddings": corpus, "k": 4}),
        Case("k = N: the whole corpus, sorted", {"query_embeddings": rng.normal(size=(2, 3)),
                                                 "corpus_embeddings": rng.normal(size=(5, 3)),
                                                 "k": 5}),
        Case("k=1, one query", {"query_embeddings": rng.normal(size=(1, 6)),
                                "corpus_embeddings": rng.normal(size=(10, 6)), "k": 1}),
        Case("float32", {"query_embeddings": rng.normal(size=(4, 16)).astype(np.float32),
                         "corpus_embeddings": rng.normal(size=(12, 16)).astype(np.float32),
                         "k": 5}),
    ]


_SEARCH = """def semantic_search(query_embeddings, corpus_embeddings, k):
    scores = {scores}
    indices = {order}
    return indices.astype(np.int64), np.take_along_axis(scores, indices, axis=1)
"""


def _search_mistake(**parts):
    defaults = {"scores": "cosine_similarity(query_embeddings, corpus_embeddings)",
                "order": "np.argsort(-scores, axis=1, kind='stable')[:, :k]"}
    return _SEARCH.format(**dict(defaults, **parts))


semantic_search = Exercise(
    id="13.semantic_search", symbol="semantic_search", points=2,
    title="the k nearest sentences",
    reference=reference.semantic_search, cases=_search_cases, run=returns("indices", "scores"),
    tolerance=FLOAT32, requires=("13.cosine_similarity",),
    mistakes=[
        Mistake("the least similar",
                "np.argsort sorts in increasing order: the first k are the *least* similar. "
                "Sort -scores (or reverse), so that the best match comes first",
                _search_mistake(order="np.argsort(scores, axis=1, kind='stable')[:, :k]")),
        Mistake("reversed sort: ties in the wrong order",
                "np.argsort(scores)[:, ::-1] puts the larger index first among equal scores; "
                "np.argsort(-scores, axis=1, kind='stable') keeps the smaller one first",
                _search_mistake(order="np.argsort(scores, axis=1, kind='stable')[:, ::-1][:, :k]")),
        Mistake("dot products, not cosines",
                "rank by cosine similarity: a long corpus vector must not win because it is long",
                _search_mistake(scores="query_embeddings @ corpus_embeddings.T")),
        Mistake("argpartition: the right k, unsorted",
                "the k best come in decreasing score, and equal scores keep the smaller index "
                "first: np.argsort(-scores, axis=1, kind='stable') gives that order, while "
                "np.argpartition (and a default, unstable argsort) may not",
                _search_mistake(order="np.argpartition(-scores, k - 1, axis=1)[:, :k]")),
    ],
)

# --------------------------------------------------------------------------- contrastive_loss


def run_contrastive(fn, case):
    result = named_results(call(fn, case), ("loss", "d_anchors", "d_candidates"))
    if "loss" in result:                          # a float32 scalar loss is fine
        result["loss"] = np.asarray(result["loss"], dtype=np.float64)
    return result


def _unit(rng, *shape):
    return reference.l2_normalize(rng.normal(size=shape))


def _contrastive_cases(rng):
    anchors = _unit(rng, 4, 8)
    close = reference.l2_normalize(anchors + 0.3 * rng.normal(size=anchors.shape))
    return [
        Case("N=M=4 pairs, D=8", {"anchors": _unit(rng, 4, 8), "candidates": _unit(rng, 4, 8)}),
        Case("partners close to their anchors", {"anchors": anchors, "candidates": close}),
        Case("extra negatives: N=3, M=7", {"anchors": _unit(rng, 3, 6),
                                           "candidates": _unit(rng, 7, 6)}),
        Case("scale=1", {"anchors": _unit(rng, 5, 4), "candidates": _unit(rng, 5, 4)},
             {"scale": 1.0}),
        Case("one pair and one negative: N=1, M=2", {"anchors": _unit(rng, 1, 5),
                                                     "candidates": _unit(rng, 2, 5)}),
        Case("N=8, D=16, scale=50", {"anchors": _unit(rng, 8, 16),
                                     "candidates": _unit(rng, 8, 16)}, {"scale": 50.0}),
        # scores up to 1000: exp overflows unless each row's maximum is subtracted first
        Case("scale=1000 (a very low temperature)", {"anchors": _unit(rng, 4, 6),
                                                     "candidates": _unit(rng, 5, 6)},
             {"scale": 1000.0}),
    ]


_CONTRASTIVE = """def contrastive_loss(anchors, candidates, scale=20.0):
    N = anchors.shape[0]
    scores = {scores}
    loss = {reduce}(-log_softmax(scores, axis={axis})[np.arange(N), np.arange(N)])
    d_scores = softmax(scores, axis={axis})
    d_scores[np.arange(N), np.arange(N)] -= 1.0
    d_scores *= {dscale}
    return float(loss), d_scores @ candidates, {dcand}
"""


def _contrastive_mistake(**parts):
    defaults = {"scores": "scale * anchors @ candidates.T", "reduce": "np.mean", "axis": "1",
                "dscale": "scale / N", "dcand": "d_scores.T @ anchors"}
    return _CONTRASTIVE.format(**dict(defaults, **parts))


contrastive_loss = Exercise(
    id="13.contrastive_loss", symbol="contrastive_loss", points=3,
    title="the in-batch contrastive loss and its gradients",
    reference=reference.contrastive_loss, cases=_contrastive_cases, run=run_contrastive,
    requires=("01.softmax", "01.log_softmax", "13.l2_normalize"),
    mistakes=[
        Mistake("softmax over the anchors",
                "each anchor chooses among the candidates: the softmax runs along each row of "
                "S (axis=1), not down its columns",
                _contrastive_mistake(axis="0")),
        Mistake("the sum over the anchors",
                "average the N anchors' losses (and divide the gradient by N), so that the "
                "loss does not grow with the batch",
                _contrastive_mistake(reduce="np.sum", dscale="scale")),
        Mistake("scale missing from the gradient",
                "S = scale * A C^T, so dA = scale * (softmax(S) - I) C / N: the chain rule "
                "brings the scale into both gradients",
                _contrastive_mistake(dscale="1.0 / N")),
        Mistake("no scale",
                "multiply the cosines by `scale` before the softmax: cosines in [-1, 1] give "
                "a softmax too flat to learn from",
                _contrastive_mistake(scores="anchors @ candidates.T", dscale="1.0 / N")),
        Mistake("the softmax without its max shift",
                "subtract each row's maximum before exp (or use lesson 01's softmax and "
                "log_softmax): scale * cosine reaches the hundreds at a low temperature, and "
                "exp overflows to inf",
                "def contrastive_loss(anchors, candidates, scale=20.0):\n"
                "    N = anchors.shape[0]\n"
                "    e = np.exp(scale * anchors @ candidates.T)\n"
                "    probs = e / e.sum(axis=1, keepdims=True)\n"
                "    loss = -np.mean(np.log(probs[np.arange(N), np.arange(N)]))\n"
                "    probs[np.arange(N), np.arange(N)] -= 1.0\n"
                "    probs *= scale / N\n"
                "    return float(loss), probs @ candidates, probs.T @ anchors\n"),
        Mistake("no gradient for the candidates",
                "the candidates are embeddings of the same model: the loss depends on them "
                "through S as well, dC = dS^T A",
                _contrastive_mistake(dcand="np.zeros_like(candidates)")),
    ],
)


LESSON = Lesson(
    id="13", slug="13_pretrained_bert", title="A real pretrained BERT",
    exercises=[mean_pool, l2_normalize, cosine_similarity, sentence_embeddings, semantic_search,
               contrastive_loss],
)
