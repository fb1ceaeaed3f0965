"""Lesson 07 - Mini-BERT: exercise specs.

A model's configuration travels in ``case.data["config"]`` (a plain dict; the drivers build
the ``BertConfig``) and its parameters in ``case.data["params"]`` (the flat dict of
``init_bert``, drawn far from their initial values so that every term matters). Dropout
draws from a generator that the drivers rebuild from ``case.data["seed"]`` for every
forward pass, so central differences see the same masks as the backward pass. Float32
cases check only the dtypes (float32 in, float32 out); the values are checked in float64.
The central differences of the big backward exercises are computed once per case and
kept (``_memo``): the grader asks for them again for every candidate it explains.
"""

import hashlib
import math

import numpy as np

from solutions import bert

from ..compare import GRADIENT, _describe_type
from ..gradcheck import numerical_gradient
from ..spec import (THROUGH_CACHE, Case, Exercise, Lesson, Mistake, dtypes_of,
                    through_cache, watch)

# --------------------------------------------------------------------------- helpers


def _config(V=11, D=8, L=2, H=2, F=16, P=8, **kw):
    """A small model's configuration as plain data (dropout 0 unless asked)."""
    H = H if D % H == 0 else 1
    return dict(vocab_size=V, hidden_size=D, num_layers=L, num_heads=H, intermediate_size=F,
                max_position_embeddings=P, **{"dropout": 0.0, **kw})


def _cfg(case):
    return bert.BertConfig(**case.data["config"])


def _pad(lengths, T):
    """A tokenizer's attention mask (B, T): 1 for the first ``length`` tokens, then 0."""
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)


def perturbed_params(rng, config, dtype=np.float64):
    """Every parameter of the model, far from its initial value: each one matters.

    Args:
        rng: a ``np.random.Generator``.
        config: a ``BertConfig`` or a dict of its fields.
        dtype: the dtype of the arrays returned.
    """
    if isinstance(config, dict):
        config = bert.BertConfig(**config)
    params = bert.init_bert(config, rng, dtype=np.float64)
    for name, value in params.items():
        short = name.rsplit(".", 1)[1]
        if "gamma" in short:
            params[name] = rng.normal(1.0, 0.3, size=value.shape)
        elif value.ndim == 1:
            params[name] = rng.normal(0.0, 0.3, size=value.shape)
        elif name.startswith("embeddings."):
            params[name] = rng.normal(0.0, 1.0, size=value.shape)
        else:
            params[name] = rng.normal(0.0, 1.0, size=value.shape) / math.sqrt(value.shape[0])
    return {name: value.astype(dtype) for name, value in params.items()}


def _pick(params, *prefixes):
    return {k: v for k, v in params.items() if k.startswith(prefixes)}


def _as_float32(case):
    for key in ("params",):
        case.data[key] = {k: v.astype(np.float32) for k, v in case.data[key].items()}
    for key, value in case.args.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            case.args[key] = value.astype(np.float32)
    case.data["float32"] = True
    return case


def _pair(result, what):
    """``(out, cache)`` from a forward function, or a clear error."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"{what} returns the pair (out, cache); got {_describe_type(result)}")
    return result


def _grads_dict(value, what):
    if not isinstance(value, dict):
        raise TypeError(f"{what} returns a dict name -> gradient; got {_describe_type(value)}")
    return value


_MEMO = {}


def _memo(exercise_id, case, compute):
    """``compute(case)``, once per case (central differences of a model are slow)."""
    digest = hashlib.sha1()
    for value in (case.data.get("dout"), case.args.get("input_ids")):
        if isinstance(value, np.ndarray):
            digest.update(value.tobytes())
    key = (exercise_id, case.name, digest.hexdigest())
    if key not in _MEMO:
        _MEMO[key] = compute(case)
    return _MEMO[key]


def _numeric(loss, params, names):
    """Central differences of ``loss(params)`` for each parameter in ``names``."""
    return {name: numerical_gradient(lambda value, name=name: loss({**params, name: value}),
                                     params[name])
            for name in names}

# --------------------------------------------------------------------------- embeddings

_EMBEDDING_NAMES = ("embeddings.word", "embeddings.position", "embeddings.token_type",
                    "embeddings.ln_gamma", "embeddings.ln_beta")


def _embeddings_call(fn, case, params=None):
    rng = np.random.default_rng(int(case.data["seed"]))
    return fn(case.args["input_ids"], case.args["token_type_ids"],
              case.data["params"] if params is None else params, _cfg(case),
              rng=rng, **case.kwargs)


def run_embeddings(fn, case):
    out, cache = _pair(_embeddings_call(fn, case), "embeddings_forward")
    if not isinstance(cache, dict):
        raise TypeError("the cache is the dict described in the docstring (keys input_ids, "
                        f"token_type_ids, shapes, ln, dropout); got {_describe_type(cache)}")
    keys = {str(k): "present" for k in cache}         # a stray or missing key is named
    if case.data.get("float32"):
        return {"dtype of out": dtypes_of(out), "cache keys": keys}
    return {"out": out, "cache keys": keys,
            THROUGH_CACHE: through_cache(bert.embeddings_backward, out, cache)}


def _embeddings_cases(rng, small=False):
    def case(name, B, T, V=9, D=6, P=8, S=2, types="random", dropout=0.0, eps=None, **kwargs):
        config = _config(V=V, D=D, P=P, type_vocab_size=S, dropout=dropout,
                         **({} if eps is None else {"layer_norm_eps": eps}))
        ids = rng.integers(0, V, size=(B, T))
        if types == "random":       # the first two tokens: the first and the last segment
            token_types = rng.integers(0, S, size=(B, T))
            token_types.flat[:2] = (0, S - 1)
        elif types == "pair":       # [CLS] A A [SEP] B B [SEP]: the second half is segment 1
            token_types = (np.arange(T)[None, :] >= T // 2).repeat(B, axis=0).astype(np.int64)
        else:
            token_types = np.zeros((B, T), dtype=np.int64)
        params = _pick(perturbed_params(rng, config), "embeddings.")
        return Case(name, {"input_ids": ids, "token_type_ids": token_types}, kwargs,
                    {"params": params, "config": config, "seed": int(rng.integers(2 ** 31))})
    if small:
        cases = [
            case("B=2, T=4, V=7, D=4, segments 0 and 1", 2, 4, V=7, D=4, P=5),
            case("a pair of sentences (segments 0 then 1), repeated ids", 2, 4, V=3, D=3, P=4,
                 types="pair"),
            case("dropout 0.3 while training", 2, 3, V=5, D=4, P=4, dropout=0.3,
                 training=True),
            case("batch of one, T = max_position_embeddings", 1, 4, V=4, D=3, P=4),
        ]
        for c in cases:
            c.data["dout"] = rng.normal(size=c.args["input_ids"].shape
                                        + (c.data["config"]["hidden_size"],))
        cases.append(_as_float32(case("float32 in, float32 out", 2, 3, V=5, D=4, P=4)))
        cases[-1].data["dout"] = rng.normal(size=(2, 3, 4)).astype(np.float32)
        return cases
    return [
        case("B=2, T=5, D=6, segments 0 and 1", 2, 5),
        case("a pair of sentences (segments 0 then 1)", 3, 6, types="pair"),
        case("one segment (token types all 0), T shorter than P", 2, 3, types="zeros"),
        case("batch of one, T = max_position_embeddings", 1, 8),
        case("three segment types, one token", 2, 1, S=3),
        case("dropout 0.3 while training", 2, 4, dropout=0.3, training=True),
        case("dropout 0.3 but not training: no dropout", 2, 4, dropout=0.3),
        case("config.layer_norm_eps = 0.5 (large, so that it shows)", 2, 3, eps=0.5),
        _as_float32(case("float32 in, float32 out", 2, 4)),
    ]


_EMBEDDINGS = """def embeddings_forward(input_ids, token_type_ids, params, config, training=False, rng=None):
    T = input_ids.shape[1]
    p = params
    summed = {summed}
    {normalize}
    shapes = {{n: p[n].shape for n in ("embeddings.word", "embeddings.position",
                                      "embeddings.token_type")}}
    return out, {{"input_ids": input_ids, "token_type_ids": token_type_ids, "shapes": shapes,
                 "ln": ln_cache, "dropout": dropout_cache}}
"""
_SUMMED = 'p["embeddings.word"][input_ids] + p["embeddings.position"][:T] + ' \
          'p["embeddings.token_type"][token_type_ids]'
_NORMALIZE = """normed, ln_cache = layernorm_forward(summed, p["embeddings.ln_gamma"],
                                         p["embeddings.ln_beta"], config.layer_norm_eps)
    out, dropout_cache = dropout_forward(normed, config.dropout, training, rng)"""


_DROPOUT_FIRST = """dropped, dropout_cache = dropout_forward(summed, config.dropout, training, rng)
    out, ln_cache = layernorm_forward(dropped, p["embeddings.ln_gamma"], p["embeddings.ln_beta"],
                                      config.layer_norm_eps)"""


def _embeddings_mistake(summed=_SUMMED, normalize=_NORMALIZE):
    return _EMBEDDINGS.format(summed=summed, normalize=normalize)


embeddings_forward = Exercise(
    id="07.embeddings_forward", symbol="embeddings_forward", points=2,
    title="word + position + segment embeddings, LayerNorm, dropout",
    reference=bert.embeddings_forward, cases=_embeddings_cases, run=run_embeddings,
    requires=("03.layernorm_forward", "03.dropout_forward"),
    mistakes=[
        Mistake("segment embeddings ignored",
                "add the segment (token type) embedding of every token: "
                "token_type[token_type_ids]; even a single sentence (all 0) gets row 0",
                _embeddings_mistake(summed='p["embeddings.word"][input_ids] + '
                                           'p["embeddings.position"][:T]')),
        Mistake("position embeddings not added",
                "attention alone cannot tell the order of the tokens: add row t of the "
                "position table to the token at position t (position[:T], broadcast over "
                "the batch)",
                _embeddings_mistake(summed='p["embeddings.word"][input_ids] + '
                                           'p["embeddings.token_type"][token_type_ids]')),
        Mistake("positions looked up by token id",
                "the position table is indexed by the position t = 0..T-1, not by the "
                "token's id: position[:T]",
                _embeddings_mistake(summed='p["embeddings.word"][input_ids] + '
                                           'p["embeddings.position"][input_ids] + '
                                           'p["embeddings.token_type"][token_type_ids]')),
        Mistake("LayerNorm missing",
                "normalise the sum with the embeddings' LayerNorm (embeddings.ln_gamma, "
                "embeddings.ln_beta, config.layer_norm_eps) before the dropout",
                _embeddings_mistake(normalize="""ln_cache = None
    out, dropout_cache = dropout_forward(summed, config.dropout, training, rng)""")),
        Mistake("dropout before the LayerNorm",
                "the order is LayerNorm, then dropout: Dropout(LayerNorm(e))",
                _embeddings_mistake(normalize=_DROPOUT_FIRST)),
    ],
)


def run_embeddings_backward(fn, case):
    _, cache = _embeddings_call(bert.embeddings_forward, case)
    grads = _grads_dict(fn(case.data["dout"], watch("cache", cache)), "embeddings_backward")
    return dtypes_of(grads) if case.data.get("float32") else grads


def _expected_embeddings_gradients(case):
    if case.data.get("float32"):
        return run_embeddings_backward(bert.embeddings_backward, case)

    def compute(case):
        def loss(params):
            out, _ = _embeddings_call(bert.embeddings_forward, case, params)
            return float(np.sum(out * case.data["dout"]))
        return _numeric(loss, case.data["params"], _EMBEDDING_NAMES)
    return _memo("07.embeddings_backward", case, compute)


_EMBEDDINGS_BACKWARD = """def embeddings_backward(dout, cache):
    shapes = cache["shapes"]
    dnormed = {dropout}
    dsum, dgamma, dbeta = {layernorm}
    T = dsum.shape[1]
    dposition = np.zeros(shapes["embeddings.position"], dtype=dout.dtype)
    dposition[:T] = {dposition}
    dword = {dword}
    dtype_ = embedding_backward(dsum, (cache["token_type_ids"], shapes["embeddings.token_type"]))
    return {{"embeddings.word": dword, "embeddings.position": dposition,
            "embeddings.token_type": dtype_, "embeddings.ln_gamma": dgamma,
            "embeddings.ln_beta": dbeta}}
"""


def _embeddings_backward_mistake(**parts):
    defaults = {"dropout": 'dropout_backward(dout, cache["dropout"])',
                "layernorm": 'layernorm_backward(dnormed, cache["ln"])',
                "dposition": "dsum.sum(axis=0)",
                "dword": 'embedding_backward(dsum, (cache["input_ids"], shapes["embeddings.word"]))'}
    defaults.update(parts)
    source = _EMBEDDINGS_BACKWARD.format(**defaults)
    if "scatter" in defaults["dword"]:
        source += ("def scatter(dsum, ids, shape):\n"
                   "    table = np.zeros(shape, dtype=dsum.dtype)\n"
                   "    table[ids] += dsum\n"
                   "    return table\n")
    return source


embeddings_backward = Exercise(
    id="07.embeddings_backward", symbol="embeddings_backward", points=2,
    title="the embeddings' backward pass: three tables and a LayerNorm",
    reference=bert.embeddings_backward, cases=lambda rng: _embeddings_cases(rng, small=True),
    run=run_embeddings_backward, expected=_expected_embeddings_gradients, tolerance=GRADIENT,
    requires=("03.dropout_backward", "03.layernorm_backward", "03.embedding_backward"),
    mistakes=[
        Mistake("position gradient of the first sequence only",
                "every sequence of the batch used the same position rows: dposition[:T] is "
                "the sum of dsum over the batch axis",
                _embeddings_backward_mistake(dposition="dsum[0]")),
        Mistake("repeated ids counted once",
                "table[ids] += dsum keeps one gradient per repeated id; an id used k times "
                "collects the sum of its k gradients: lesson 03's embedding_backward "
                "(np.add.at) does that",
                _embeddings_backward_mistake(dword='scatter(dsum, cache["input_ids"], '
                                                   'shapes["embeddings.word"])')),
        Mistake("LayerNorm skipped",
                "the three embeddings were summed and *then* normalised: go back through "
                "layernorm_backward (cache['ln']) before reaching the tables",
                _embeddings_backward_mistake(
                    layernorm='dnormed, *layernorm_backward(dnormed, cache["ln"])[1:]')),
        Mistake("dropout mask not applied",
                "a dropped entry did not reach the output: start with dropout_backward(dout, "
                "cache['dropout'])",
                _embeddings_backward_mistake(dropout="dout")),
        Mistake("word gradient before the LayerNorm",
                "the tables receive the gradient of their sum, which is what comes out of the "
                "LayerNorm's backward (dsum), not the gradient arriving at the LayerNorm's output",
                _embeddings_backward_mistake(
                    dword='embedding_backward(dnormed, (cache["input_ids"], '
                          'shapes["embeddings.word"]))')),
    ],
)

# --------------------------------------------------------------------------- the MLM head

_MLM_NAMES = ("mlm.W", "mlm.b", "mlm.ln_gamma", "mlm.ln_beta", "mlm.bias", "embeddings.word")


def _mlm_call(fn, case, params=None, hidden=None):
    return fn(case.args["hidden"] if hidden is None else hidden,
              case.data["params"] if params is None else params, _cfg(case))


def run_mlm_head(fn, case):
    logits, cache = _pair(_mlm_call(fn, case), "mlm_head_forward")
    if not (isinstance(cache, tuple) and len(cache) == 5):
        raise TypeError("the cache is the tuple (dense_cache, gelu_cache, ln_cache, normed, "
                        f"word) described in the docstring; got {_describe_type(cache)}")
    if case.data.get("float32"):
        return {"dtype of logits": dtypes_of(logits)}
    return {"logits": logits, "normed (cache[3])": cache[3],
            THROUGH_CACHE: through_cache(bert.mlm_head_backward, logits, cache)}


def _mlm_cases(rng, small=False):
    def case(name, lead, V=9, D=6, scale=1.0, eps=None):
        config = _config(V=V, D=D, **({} if eps is None else {"layer_norm_eps": eps}))
        params = _pick(perturbed_params(rng, config), "mlm.", "embeddings.word")
        return Case(name, {"hidden": rng.normal(scale=scale, size=(*lead, D))},
                    data={"params": params, "config": config})
    if small:
        cases = [case("(B, T, D) = (2, 3, 4), V=5", (2, 3), V=5, D=4),
                 case("the masked positions only: (M, D) = (4, 3), V=6", (4,), V=6, D=3),
                 case("one position, V=3", (1,), V=3, D=4)]
        for c in cases:
            c.data["dout"] = rng.normal(size=c.args["hidden"].shape[:-1]
                                        + (c.data["config"]["vocab_size"],))
        cases.append(_as_float32(case("float32 in, float32 out", (2, 2), V=5, D=4)))
        cases[-1].data["dout"] = rng.normal(size=(2, 2, 5)).astype(np.float32)
        return cases
    return [case("(B, T, D) = (2, 4, 6), V=9", (2, 4)),
            case("the masked positions only: (M, D) = (5, 8), V=12", (5,), V=12, D=8),
            case("batch of one, one token", (1, 1)),
            case("vocabulary smaller than D", (2, 3), V=3, D=8),
            case("large hidden values (about 5)", (2, 3), scale=5.0),
            case("config.layer_norm_eps = 0.5 (large, so that it shows)", (2, 3), eps=0.5),
            _as_float32(case("float32 in, float32 out", (2, 3)))]


_MLM_HEAD = """def mlm_head_forward(hidden, params, config):
    p = params
    word = p["embeddings.word"]
    dense, dense_cache = linear_forward(hidden, p["mlm.W"], p["mlm.b"])
    {activate}
    {normalize}
    logits = {decode}
    return logits, (dense_cache, gelu_cache, ln_cache, normed, word)
"""


def _mlm_mistake(**parts):
    defaults = {"activate": "activated, gelu_cache = gelu_forward(dense)",
                "normalize": 'normed, ln_cache = layernorm_forward(activated, p["mlm.ln_gamma"], '
                             'p["mlm.ln_beta"], config.layer_norm_eps)',
                "decode": 'normed @ word.T + p["mlm.bias"]'}
    defaults.update(parts)
    return _MLM_HEAD.format(**defaults)


mlm_head_forward = Exercise(
    id="07.mlm_head_forward", symbol="mlm_head_forward", points=2,
    title="the masked-LM head, its decoder tied to the word embeddings",
    reference=bert.mlm_head_forward, cases=_mlm_cases, run=run_mlm_head,
    requires=("03.linear_forward", "03.gelu_forward", "03.layernorm_forward"),
    mistakes=[
        Mistake("decoder not tied (a weight of its own)",
                "the MLM decoder has no weight of its own: it is the word embedding table, "
                "logits = n @ params['embeddings.word'].T + params['mlm.bias']",
                _mlm_mistake(decode='normed @ p["mlm.decoder"] + p["mlm.bias"]')),
        Mistake("decoder bias missing",
                "the decoder has a bias of its own, one per word: add params['mlm.bias'] (V,)",
                _mlm_mistake(decode="normed @ word.T")),
        Mistake("GELU missing",
                "the transform is dense, then GELU, then LayerNorm: apply gelu_forward to the "
                "dense layer's output",
                _mlm_mistake(activate="activated, gelu_cache = dense, None")),
        Mistake("the tanh approximation of the GELU",
                "BERT's GELU is the exact one, x * Phi(x) with erf (lesson 03's gelu_forward); "
                "the tanh formula differs by up to about 1e-3",
                _mlm_mistake(activate="activated = 0.5 * dense * (1 + np.tanh(0.7978845608028654 "
                                      "* (dense + 0.044715 * dense ** 3)))\n"
                                      "    _, gelu_cache = gelu_forward(dense)")),
        Mistake("ReLU for the GELU",
                "the activation is the GELU (lesson 03's gelu_forward), not a ReLU",
                _mlm_mistake(activate="activated, gelu_cache = np.maximum(dense, 0), None")),
        Mistake("LayerNorm missing",
                "after the GELU comes a LayerNorm (mlm.ln_gamma, mlm.ln_beta), then the decoder",
                _mlm_mistake(normalize="normed, ln_cache = activated, None")),
        Mistake("LayerNorm before the GELU",
                "the order is dense, GELU, LayerNorm (Hugging Face's "
                "BertPredictionHeadTransform)",
                _mlm_mistake(activate='n0, ln_cache = layernorm_forward(dense, p["mlm.ln_gamma"], '
                                      'p["mlm.ln_beta"], config.layer_norm_eps)',
                             normalize="normed, gelu_cache = gelu_forward(n0)")),
    ],
)


def run_mlm_backward(fn, case):
    _, cache = _mlm_call(bert.mlm_head_forward, case)
    result = fn(case.data["dout"], watch("cache", cache))
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"mlm_head_backward returns (dhidden, grads); got {_describe_type(result)}")
    result = {"dhidden": result[0], "grads": _grads_dict(result[1], "mlm_head_backward's grads")}
    return dtypes_of(result) if case.data.get("float32") else result


def _expected_mlm_gradients(case):
    if case.data.get("float32"):
        return run_mlm_backward(bert.mlm_head_backward, case)

    def loss(params, hidden=None):
        logits, _ = _mlm_call(bert.mlm_head_forward, case, params, hidden)
        return float(np.sum(logits * case.data["dout"]))
    params = case.data["params"]
    dhidden = numerical_gradient(lambda h: loss(params, h), case.args["hidden"])
    return {"dhidden": dhidden, "grads": _numeric(loss, params, _MLM_NAMES)}


_MLM_BACKWARD = """def mlm_head_backward(dlogits, cache):
    dense_cache, gelu_cache, ln_cache, normed, word = cache
    V, D = word.shape
    G = dlogits.reshape(-1, V)
    dnormed = dlogits @ word
    dactivated, dgamma, dbeta = layernorm_backward(dnormed, ln_cache)
    ddense = {gelu}
    dhidden, dW, db = linear_backward(ddense, dense_cache)
    grads = {{"mlm.W": dW, "mlm.b": db, "mlm.ln_gamma": dgamma, "mlm.ln_beta": dbeta,
             "mlm.bias": {dbias}}}
    {tied}
    return dhidden, grads
"""


def _mlm_backward_mistake(**parts):
    defaults = {"gelu": "gelu_backward(dactivated, gelu_cache)", "dbias": "G.sum(axis=0)",
                "tied": 'grads["embeddings.word"] = G.T @ normed.reshape(-1, D)'}
    defaults.update(parts)
    return _MLM_BACKWARD.format(**defaults)


mlm_head_backward = Exercise(
    id="07.mlm_head_backward", symbol="mlm_head_backward", points=3,
    title="the MLM head's backward pass, with the tied gradient",
    reference=bert.mlm_head_backward, cases=lambda rng: _mlm_cases(rng, small=True),
    run=run_mlm_backward, expected=_expected_mlm_gradients, tolerance=GRADIENT,
    requires=("03.linear_backward", "03.gelu_backward", "03.layernorm_backward"),
    mistakes=[
        Mistake("tied gradient missing",
                "the decoder's weight is the word table: return its gradient "
                "dlogits^T @ n, (V, D), under 'embeddings.word' (the caller adds it to the "
                "embedding lookup's)",
                _mlm_backward_mistake(tied="pass")),
        Mistake("tied gradient transposed",
                "logits = n @ word.T, so the word table's gradient is dlogits^T @ n, shaped "
                "like the table (V, D)",
                _mlm_backward_mistake(tied='grads["embeddings.word"] = normed.reshape(-1, D).T @ G')),
        Mistake("tied gradient from the input of the head",
                "the decoder multiplies the LayerNorm's output n (cache[3]), not the head's "
                "input: dword = dlogits^T @ n",
                _mlm_backward_mistake(tied='grads["embeddings.word"] = G.T @ dense_cache[0]'
                                           '.reshape(-1, D)')),
        Mistake("decoder bias gradient averaged",
                "the bias is added at every position, so its gradient is the *sum* of dlogits "
                "over the positions",
                _mlm_backward_mistake(dbias="G.mean(axis=0)")),
        Mistake("GELU skipped in the backward pass",
                "go back through the GELU: gelu_backward(dactivated, gelu_cache)",
                _mlm_backward_mistake(gelu="dactivated")),
    ],
)

# --------------------------------------------------------------------------- the pooler


def _pooler_call(fn, case, params=None, hidden=None):
    return fn(case.args["hidden"] if hidden is None else hidden,
              case.data["params"] if params is None else params)


def run_pooler(fn, case):
    pooled, cache = _pair(_pooler_call(fn, case), "pooler_forward")
    if case.data.get("float32"):
        return {"dtype of pooled": dtypes_of(pooled)}
    return {"pooled": pooled, THROUGH_CACHE: through_cache(bert.pooler_backward, pooled, cache)}


def _pooler_cases(rng, small=False):
    def case(name, B, T, D, scale=1.0):
        config = _config(D=D)
        return Case(name, {"hidden": rng.normal(scale=scale, size=(B, T, D))},
                    data={"params": _pick(perturbed_params(rng, config), "pooler."), "config": config})
    if small:
        cases = [case("(B, T, D) = (2, 3, 4)", 2, 3, 4), case("batch of one, one token", 1, 1, 3),
                 case("B=3, T=4, D=2", 3, 4, 2)]
        for c in cases:
            B, _, D = c.args["hidden"].shape
            c.data["dout"] = rng.normal(size=(B, D))
        cases.append(_as_float32(case("float32 in, float32 out", 2, 3, 4)))
        cases[-1].data["dout"] = rng.normal(size=(2, 4)).astype(np.float32)
        return cases
    return [case("(B, T, D) = (2, 5, 6)", 2, 5, 6), case("batch of one, one token", 1, 1, 4),
            case("B=4, T=3, D=8", 4, 3, 8), case("large values: tanh saturates", 2, 3, 4, 10.0),
            _as_float32(case("float32 in, float32 out", 2, 3, 4))]


_POOLER = """def pooler_forward(hidden, params):
    first = {first}
    pre, linear_cache = linear_forward(first, params["pooler.W"], params["pooler.b"])
    pooled = {activate}
    return pooled, (linear_cache, pooled, hidden.shape)
"""

pooler_forward = Exercise(
    id="07.pooler_forward", symbol="pooler_forward", points=1,
    title="the pooler: dense + tanh on [CLS]",
    reference=bert.pooler_forward, cases=_pooler_cases, run=run_pooler,
    requires=("03.linear_forward",),
    mistakes=[
        Mistake("mean over the tokens instead of [CLS]",
                "BERT's pooler reads the first token only, [CLS]: hidden[:, 0]; the "
                "attention layers have already gathered the sentence into it",
                _POOLER.format(first="hidden.mean(axis=1)", activate="np.tanh(pre)")),
        Mistake("tanh missing",
                "the pooler is a dense layer followed by tanh: pooled = tanh(hidden[:, 0] @ W + b)",
                _POOLER.format(first="hidden[:, 0]", activate="pre")),
        Mistake("the last token instead of the first",
                "[CLS] is the first token of every sequence: hidden[:, 0]",
                _POOLER.format(first="hidden[:, -1]", activate="np.tanh(pre)")),
        Mistake("the value before tanh cached",
                "cache the pooled output, tanh's result: the backward pass reads tanh' = "
                "1 - pooled**2 from it (the cache is (linear_cache, pooled, hidden.shape))",
                _POOLER.format(first="hidden[:, 0]", activate="np.tanh(pre)")
                .replace("(linear_cache, pooled, hidden.shape)",
                         "(linear_cache, pre, hidden.shape)")),
        Mistake("the first sequence instead of the first token",
                "hidden is (B, T, D): the first token of every sequence is hidden[:, 0] (B, D); "
                "hidden[0] is every token of the first sequence",
                _POOLER.format(first="hidden[0]", activate="np.tanh(pre)")),
    ],
)


def run_pooler_backward(fn, case):
    _, cache = _pooler_call(bert.pooler_forward, case)
    result = fn(case.data["dout"], watch("cache", cache))
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"pooler_backward returns (dhidden, grads); got {_describe_type(result)}")
    result = {"dhidden": result[0], "grads": _grads_dict(result[1], "pooler_backward's grads")}
    return dtypes_of(result) if case.data.get("float32") else result


def _expected_pooler_gradients(case):
    if case.data.get("float32"):
        return run_pooler_backward(bert.pooler_backward, case)

    def loss(params, hidden=None):
        pooled, _ = _pooler_call(bert.pooler_forward, case, params, hidden)
        return float(np.sum(pooled * case.data["dout"]))
    params = case.data["params"]
    return {"dhidden": numerical_gradient(lambda h: loss(params, h), case.args["hidden"]),
            "grads": _numeric(loss, params, ("pooler.W", "pooler.b"))}


_POOLER_BACKWARD = """def pooler_backward(dpooled, cache):
    linear_cache, pooled, hidden_shape = cache
    dpre = {dpre}
    first, W = linear_cache
    dfirst = dpre @ W.T
    dW = {dW}
    db = dpre.sum(axis=0)
    dhidden = np.zeros(hidden_shape, dtype=dfirst.dtype)
    {scatter}
    return dhidden, {{"pooler.W": dW, "pooler.b": db}}
"""


def _pooler_backward_mistake(**parts):
    defaults = {"dpre": "dpooled * (1 - pooled ** 2)", "dW": "first.T @ dpre",
                "scatter": "dhidden[:, 0] = dfirst"}
    defaults.update(parts)
    return _POOLER_BACKWARD.format(**defaults)


pooler_backward = Exercise(
    id="07.pooler_backward", symbol="pooler_backward", points=2,
    title="the pooler's backward pass",
    reference=bert.pooler_backward, cases=lambda rng: _pooler_cases(rng, small=True),
    run=run_pooler_backward, expected=_expected_pooler_gradients, tolerance=GRADIENT,
    requires=("03.linear_backward",),
    mistakes=[
        Mistake("tanh derivative missing",
                "go back through the tanh first: d(tanh a)/da = 1 - tanh(a)^2 = 1 - pooled^2",
                _pooler_backward_mistake(dpre="dpooled")),
        Mistake("tanh derivative without the square",
                "d(tanh a)/da = 1 - tanh(a)**2: square the pooled output",
                _pooler_backward_mistake(dpre="dpooled * (1 - pooled)")),
        Mistake("gradient sent to every position",
                "only the first token ([CLS]) was read: dhidden is dfirst at position 0 and 0 "
                "at every other position",
                _pooler_backward_mistake(scatter="dhidden[:] = dfirst[:, None, :]")),
        Mistake("dW transposed",
                "for y = x @ W the gradient is dW = x^T @ dy (D_in, D_out); with a square W "
                "the shape cannot tell you",
                _pooler_backward_mistake(dW="dpre.T @ first")),
    ],
)

# --------------------------------------------------------------------------- parameter count


def run_count(fn, case):
    value = fn(_cfg(case))
    return int(value) if isinstance(value, np.integer) else value


def _count_cases(rng):
    def case(name, **config):
        return Case(name, data={"config": config})
    return [
        case("a small model", **_config(V=100, D=16, L=2, H=2, F=64, P=32)),
        case("the course's model: V=1000, D=128, 4 layers, F=512", **_config(
            V=1000, D=128, L=4, H=4, F=512, P=128)),
        case("BERT-base (110 M)", **_config(V=30522, D=768, L=12, H=12, F=3072, P=512)),
        case("pre-LN, 3 labels, 3 segment types", **_config(
            V=50, D=8, L=3, H=2, F=20, P=10, pre_ln=True, num_labels=3, type_vocab_size=3)),
        case("no layers at all", **_config(V=20, D=4, L=0, H=1, F=8, P=6)),
        case("one segment type, 5 labels", **_config(V=30, D=6, L=1, H=3, F=12, P=7,
                                                     type_vocab_size=1, num_labels=5)),
    ]


_COUNT = """def count_parameters(config):
    V, D, F = config.vocab_size, config.hidden_size, config.intermediate_size
    P, S, C = config.max_position_embeddings, config.type_vocab_size, config.num_labels
    embeddings = {embeddings}
    block = {block}
    final_ln = {final_ln}
    mlm_head = {mlm_head}
    pooler = {pooler}
    classifier = D * C + C
    return int(embeddings + config.num_layers * block + final_ln + mlm_head + pooler + classifier)
"""


def _count_mistake(**parts):
    defaults = {"embeddings": "(V + P + S) * D + 2 * D",
                "block": "4 * (D * D + D) + (D * F + F) + (F * D + D) + 4 * D",
                "final_ln": "2 * D if config.pre_ln else 0",
                "mlm_head": "(D * D + D) + 2 * D + V", "pooler": "D * D + D"}
    defaults.update(parts)
    return _COUNT.format(**defaults)


count_parameters = Exercise(
    id="07.count_parameters", symbol="count_parameters", points=2,
    title="the parameter count in closed form",
    reference=bert.count_parameters, cases=_count_cases, run=run_count,
    mistakes=[
        Mistake("the decoder counted as a weight of its own",
                "the MLM decoder's weight is the word table (tied), already counted with the "
                "embeddings: the head adds only its dense layer, its LayerNorm and the bias V",
                _count_mistake(mlm_head="(D * D + D) + 2 * D + V * D + V")),
        Mistake("the decoder bias forgotten",
                "the tied decoder still has a bias of its own, one per word: V parameters",
                _count_mistake(mlm_head="(D * D + D) + 2 * D")),
        Mistake("LayerNorms forgotten",
                "every LayerNorm has two vectors of size D (gamma and beta): two per block, "
                "one in the embeddings, one in the MLM head",
                _count_mistake(embeddings="(V + P + S) * D",
                               block="4 * (D * D + D) + (D * F + F) + (F * D + D)",
                               mlm_head="(D * D + D) + V")),
        Mistake("biases forgotten",
                "every dense layer has a bias: D for each of the four projections, F and D "
                "for the feed-forward layers",
                _count_mistake(block="4 * D * D + D * F + F * D + 4 * D")),
        Mistake("the final LayerNorm of a pre-LN model forgotten",
                "a pre-LN model has one more LayerNorm after its last block (2 D parameters)",
                _count_mistake(final_ln="0")),
        Mistake("no pooler",
                "count the pooler too (a dense D x D layer with its bias): init_bert creates "
                "every head",
                _count_mistake(pooler="0")),
        Mistake("the token type table forgotten",
                "the embeddings are three tables, words V x D, positions P x D and token types "
                "S x D (type_vocab_size), then a LayerNorm: (V + P + S) D + 2 D",
                _count_mistake(embeddings="(V + P) * D + 2 * D")),
        Mistake("three attention projections",
                "attention has four D x D projections with their biases: query, key, value and "
                "the output one after the heads are merged, 4 (D^2 + D)",
                _count_mistake(block="3 * (D * D + D) + (D * F + F) + (F * D + D) + 4 * D")),
    ],
)

# --------------------------------------------------------------------------- initialisation


def _describe_init(value, std):
    """A parameter's shape, dtype and what its values look like, for grading an init."""
    a = np.asarray(value)
    text = f"shape {a.shape}, {a.dtype}, "
    if a.dtype.kind != "f" or a.size == 0:
        return text + "not a float array"
    if np.all(a == 0):
        return text + "all 0"
    if np.all(a == 1):
        return text + "all 1"
    mean, spread = float(a.mean()), float(a.std())
    # Six standard errors of each estimate: a right draw fails about once in a billion arrays.
    if abs(mean) < 6 * std / math.sqrt(a.size) and \
            abs(spread / std - 1) < 6 / math.sqrt(2 * a.size):
        return text + f"normal(0, {std:g})"
    return text + f"mean {mean:.2g}, std {spread:.2g}"


def run_init(fn, case):
    config = _cfg(case)
    dtype = np.dtype(case.data["dtype"]).type if "dtype" in case.data else None

    def draw(seed):
        rng = np.random.default_rng(seed)
        params = fn(config, rng) if dtype is None else fn(config, rng, dtype=dtype)
        if not isinstance(params, dict):
            raise TypeError(f"init_bert returns a dict name -> array; got {_describe_type(params)}")
        return params
    params = draw(int(case.data["seed"]))
    other = draw(int(case.data["seed"]) + 1)
    reference = bert.init_bert(config, np.random.default_rng(0))
    names = set(reference)                                            # the expected names
    drawn = [n for n, v in reference.items() if not np.all((v == 0) | (v == 1))]   # weights
    arrays = [(n, v) for n, v in params.items() if isinstance(v, np.ndarray)]
    return {
        "names missing from your dict": sorted(names - set(params)),
        "names in your dict that init_bert does not make":
            sorted(str(n) for n in set(params) - names),
        "parameters": {str(n): _describe_init(v, config.init_std) for n, v in params.items()},
        "every weight changes with the generator's seed": bool(all(
            n in params and n in other and not np.array_equal(params[n], other[n])
            for n in drawn)),
        "the blocks' weights differ from one another": bool(all(
            not np.array_equal(params.get(f"layers.{i}.Wq"), params.get(f"layers.{i + 1}.Wq"))
            for i in range(config.num_layers - 1))),
        "all the weights together": _describe_weights(
            [params[n] for n in drawn if n in params], config.init_std),
        "parameters sharing memory": [f"{a} and {b}" for i, (a, x) in enumerate(arrays)
                                      for b, y in arrays[i + 1:] if np.shares_memory(x, y)],
    }


def _describe_weights(weights, std):
    """Every drawn weight together (thousands of values): normal(0, std), or what they are.

    One array's spread is judged loosely (``_describe_init``); all of them at once show a
    standard deviation off by a few percent, or a uniform draw (58 % of it within one
    standard deviation of 0, against a normal's 68 %).
    """
    try:
        values = np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])
    except (TypeError, ValueError):
        return "not all float arrays"
    if values.size == 0:
        return "none"
    spread = float(values.std())
    within = float(np.mean(np.abs(values) <= std))
    if abs(spread / std - 1) < 0.04 and abs(within - 0.6827) < 0.025:   # 6 standard errors
        return f"normal(0, {std:g})"
    return (f"standard deviation {spread:.4g} (init_std {std:g}), {within:.1%} of them within "
            "one init_std of 0 (a normal distribution: 68.3 %)")


def _init_cases(rng):
    def case(name, dtype=None, **config):
        data = {"config": config, "seed": int(rng.integers(2 ** 31))}
        if dtype:
            data["dtype"] = dtype
        return Case(name, data=data)
    return [
        case("V=50, D=32, 2 layers, float32 by default", **_config(V=50, D=32, L=2, H=4, F=64,
                                                                   P=40, num_labels=3)),
        case("dtype=float64", dtype="float64", **_config(V=60, D=32, L=1, H=2, F=48, P=32,
                                                         num_labels=3)),
        case("init_std=0.05, pre-LN, 3 layers", **_config(V=40, D=48, L=3, H=4, F=96, P=32,
                                                          init_std=0.05, pre_ln=True,
                                                          num_labels=4)),
        case("init_std=1.0, dtype=float32", dtype="float32",
             **_config(V=64, D=32, L=1, H=1, F=32, P=48, init_std=1.0, num_labels=3)),
        case("three segment types", **_config(V=30, D=16, L=1, H=2, F=32, P=16,
                                                type_vocab_size=3, num_labels=2)),
    ]


_INIT = """def init_bert(config, rng, dtype=np.float32):
    D, std = config.hidden_size, config.init_std
    def weight(*shape):
        return {draw}
    params = {{"embeddings.word": weight(config.vocab_size, D),
              "embeddings.position": weight(config.max_position_embeddings, D),
              "embeddings.token_type": weight(config.type_vocab_size, D),
              "embeddings.ln_gamma": {gamma}, "embeddings.ln_beta": np.zeros(D)}}
    for i in range(config.num_layers):
        block = init_encoder_block(D, config.num_heads, config.intermediate_size, rng, {block_std})
        params.update({{f"layers.{{i}}.{{k}}": v for k, v in block.items()}})
    if config.pre_ln:
        params["final.ln_gamma"], params["final.ln_beta"] = np.ones(D), np.zeros(D)
    params.update({{"mlm.W": weight(D, D), "mlm.b": {bias}(D), "mlm.ln_gamma": {gamma},
                   "mlm.ln_beta": np.zeros(D), "mlm.bias": {bias}(config.vocab_size),
                   "pooler.W": weight(D, D), "pooler.b": {bias}(D),
                   "classifier.W": weight(D, config.num_labels),
                   "classifier.b": {bias}(config.num_labels){extra}}})
    return {{k: {cast} for k, v in params.items()}}
"""


def _init_mistake(**parts):
    defaults = {"draw": "rng.normal(0.0, std, size=shape)", "gamma": "np.ones(D)",
                "block_std": "std", "bias": "np.zeros", "extra": "", "cast": "v.astype(dtype)"}
    defaults.update(parts)
    source = _INIT.format(**defaults)
    if defaults["bias"] != "np.zeros":
        source += "def random_bias(n):\n    return np.random.default_rng(1).normal(0.0, 0.02, n)\n"
    return source


init_bert = Exercise(
    id="07.init_bert", symbol="init_bert", points=2,
    title="BERT's initialisation, graded by its statistics",
    reference=bert.init_bert, cases=_init_cases, run=run_init,
    requires=("06.init_encoder_block",),
    mistakes=[
        Mistake("init std 1 instead of 0.02",
                "BERT draws every weight from normal(0, config.init_std) (0.02): "
                "rng.normal(0.0, std, size=shape); a standard normal (std 1) makes the "
                "attention scores and the logits huge at the start",
                _init_mistake(draw="rng.normal(size=shape)")),
        Mistake("the blocks drawn with std 1",
                "pass config.init_std on to init_encoder_block: the blocks use the same "
                "standard deviation as everything else",
                _init_mistake(block_std="1.0")),
        Mistake("a separate decoder weight",
                "the MLM decoder is tied to the word embeddings: no 'mlm.decoder' of its own "
                "(only its bias, 'mlm.bias')",
                _init_mistake(extra=',\n                   "mlm.decoder": weight(D, config.vocab_size)')),
        Mistake("LayerNorm scale 0",
                "a LayerNorm starts as the identity: gamma = 1 (np.ones), beta = 0",
                _init_mistake(gamma="np.zeros(D)")),
        Mistake("random biases",
                "every bias starts at 0 (np.zeros); only weights and embedding tables are random",
                _init_mistake(bias="random_bias")),
        Mistake("dtype ignored",
                "cast every array to `dtype` (float32 by default): init_encoder_block and "
                "np.zeros give float64",
                _init_mistake(cast="v")),
        Mistake("no final LayerNorm for a pre-LN model",
                "a pre-LN model (config.pre_ln) ends with one more LayerNorm: add "
                "'final.ln_gamma' (ones) and 'final.ln_beta' (zeros)",
                _init_mistake().replace("    if config.pre_ln:\n", "    if False:\n")),
    ],
)

# --------------------------------------------------------------------------- the whole encoder


def _bert_call(fn, case, params=None):
    rng = np.random.default_rng(int(case.data["seed"]))
    return fn(case.data["params"] if params is None else params, _cfg(case),
              case.args["input_ids"], rng=rng, **case.kwargs)


def run_bert(fn, case):
    hidden, cache = _pair(_bert_call(fn, case), "bert_forward")
    if not isinstance(cache, dict):
        raise TypeError("the cache is the dict described in the docstring (keys embeddings, "
                        f"layers, final_ln); got {_describe_type(cache)}")
    keys = {str(k): "present" for k in cache}         # a stray or missing key is named
    if case.data.get("float32"):
        return {"dtype of hidden": dtypes_of(hidden), "cache keys": keys}
    return {"hidden": hidden, "cache keys": keys,
            THROUGH_CACHE: through_cache(bert.bert_backward, hidden, cache)}


def _bert_cases(rng, small=False):
    def case(name, B, T, lengths=None, types=True, seed_dropout=0.0, V=11, D=8, L=2, H=2, F=16,
             P=7, **kwargs):
        config = _config(V=V, D=D, L=L, H=H, F=F, P=P, dropout=seed_dropout,
                         pre_ln=kwargs.pop("pre_ln", False),
                         **({"layer_norm_eps": kwargs.pop("layer_norm_eps")}
                            if "layer_norm_eps" in kwargs else {}))
        kw = dict(kwargs)
        if types:
            kw["token_type_ids"] = (np.arange(T)[None, :] >= T // 2).repeat(B, 0).astype(np.int64)
        if lengths is not None:
            kw["attention_mask"] = _pad(lengths, T)
        params = _pick(perturbed_params(rng, config), "embeddings.", "layers.", "final.")
        return Case(name, {"input_ids": rng.integers(0, V, size=(B, T))}, kw,
                    {"params": params, "config": config, "seed": int(rng.integers(2 ** 31))})
    if small:
        cases = [
            case("B=2, T=5, D=8, 2 layers, 2 heads, V=11, padding", 2, 5, lengths=[5, 3]),
            case("pre-LN, no token types, 1 layer", 2, 4, types=False, pre_ln=True, L=1, D=4,
                 F=8, V=6, P=5),
            case("dropout 0.2 while training, padding", 2, 3, lengths=[3, 2], seed_dropout=0.2,
                 training=True, D=4, F=8, V=5, P=4),
        ]
        for c in cases:
            c.data["dout"] = rng.normal(size=c.args["input_ids"].shape
                                        + (c.data["config"]["hidden_size"],))
        cases.append(_as_float32(case("float32 in, float32 out", 2, 3, lengths=[3, 2], D=4,
                                      F=8, V=5, P=4)))
        cases[-1].data["dout"] = rng.normal(size=(2, 3, 4)).astype(np.float32)
        return cases
    return [
        case("B=2, T=5, 2 layers, token types, no padding", 2, 5),
        case("padding (attention_mask)", 3, 6, lengths=[6, 2, 4]),
        case("token_type_ids=None (all 0)", 2, 4, types=False, lengths=[4, 3]),
        case("pre-LN, 3 layers", 2, 5, pre_ln=True, L=3, lengths=[5, 4]),
        case("dropout 0.3 while training", 2, 4, seed_dropout=0.3, training=True,
             lengths=[4, 3]),
        case("dropout 0.3, evaluation", 2, 4, seed_dropout=0.3, lengths=[4, 2]),
        case("one layer, one head, batch of one", 1, 6, L=1, H=1),
        case("config.layer_norm_eps = 0.5, pre-LN (every LayerNorm uses it)", 2, 4,
             lengths=[4, 3], pre_ln=True, layer_norm_eps=0.5),
        _as_float32(case("float32 in, float32 out", 2, 4, lengths=[4, 2])),
    ]


_BERT_FORWARD = """def bert_forward(params, config, input_ids, token_type_ids=None, attention_mask=None,
                 training=False, rng=None):
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    mask = {mask}
    hidden, embeddings_cache = embeddings_forward(input_ids, token_type_ids, params, config,
                                                  training, rng)
    caches = []
    for i in range(config.num_layers):
        prefix = "layers.{{}}.".format({layer})
        block = {{k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}}
        hidden, c = encoder_block_forward(hidden, block, config.num_heads, mask,
                                          pre_ln={pre_ln}, dropout_p=config.dropout,
                                          training={training}, rng=rng,
                                          eps=config.layer_norm_eps)
        caches.append(c)
    final = None
    if {final}:
        hidden, final = layernorm_forward(hidden, params["final.ln_gamma"],
                                          params["final.ln_beta"], config.layer_norm_eps)
    return hidden, {{"embeddings": embeddings_cache, "layers": caches, "final_ln": final}}
"""


def _bert_mistake(**parts):
    defaults = {"mask": "None if attention_mask is None else padding_mask(attention_mask)",
                "layer": "i", "pre_ln": "config.pre_ln", "training": "training",
                "final": "config.pre_ln"}
    defaults.update(parts)
    return _BERT_FORWARD.format(**defaults)


bert_forward = Exercise(
    id="07.bert_forward", symbol="bert_forward", points=2,
    title="the encoder: embeddings and N blocks",
    reference=bert.bert_forward, cases=_bert_cases, run=run_bert,
    requires=("07.embeddings_forward", "05.padding_mask", "06.encoder_block_forward",
              "03.layernorm_forward"),
    mistakes=[
        Mistake("attention mask ignored",
                "turn attention_mask into padding_mask(attention_mask) (B, 1, 1, T) and pass "
                "it to every block, or the real tokens attend to the padding",
                _bert_mistake(mask="None")),
        Mistake("the mask on the queries",
                "the padding mask hides keys: shape (B, 1, 1, T), one row per batch broadcast "
                "over the queries (padding_mask(attention_mask)); a (B, 1, T, 1) mask blanks "
                "the padding's own rows instead, and every real token still attends to the "
                "padding",
                _bert_mistake(mask="None if attention_mask is None else "
                                   "(attention_mask != 0)[:, None, :, None]")),
        Mistake("the first block's weights for every layer",
                "block i uses the parameters 'layers.i.*': each layer has weights of its own",
                _bert_mistake(layer="0")),
        Mistake("final LayerNorm missing (pre-LN)",
                "a pre-LN model ends with one more LayerNorm ('final.ln_gamma', "
                "'final.ln_beta'): its blocks never normalise the residual stream",
                _bert_mistake(final="False")),
        Mistake("pre_ln not passed on",
                "pass pre_ln=config.pre_ln to every block",
                _bert_mistake(pre_ln="False")),
        Mistake("dropout active in evaluation",
                "pass `training` on: with training=False nothing is dropped",
                _bert_mistake(training="True")),
    ],
)


def run_bert_backward(fn, case):
    _, cache = _bert_call(bert.bert_forward, case)
    grads = _grads_dict(fn(case.data["dout"], watch("cache", cache)), "bert_backward")
    return dtypes_of(grads) if case.data.get("float32") else grads


def _expected_bert_gradients(case):
    if case.data.get("float32"):
        return run_bert_backward(bert.bert_backward, case)

    def compute(case):
        def loss(params):
            hidden, _ = _bert_call(bert.bert_forward, case, params)
            return float(np.sum(hidden * case.data["dout"]))
        return _numeric(loss, case.data["params"], tuple(case.data["params"]))
    return _memo("07.bert_backward", case, compute)


_BERT_BACKWARD = """def bert_backward(dhidden, cache):
    grads = {{}}
    if {final}:
        dhidden, grads["final.ln_gamma"], grads["final.ln_beta"] = layernorm_backward(
            dhidden, cache["final_ln"])
    layers = cache["layers"]
    upstream = dhidden
    for i in {order}:
        d, block_grads = encoder_block_backward({dout}, layers[i])
        dhidden = d
        grads.update({{f"layers.{{i}}.{{k}}": g for k, g in block_grads.items()}})
    {embeddings}
    return grads
"""


def _bert_backward_mistake(**parts):
    defaults = {"final": 'cache["final_ln"] is not None',
                "order": "reversed(range(len(layers)))", "dout": "dhidden",
                "embeddings": 'grads.update(embeddings_backward(dhidden, cache["embeddings"]))'}
    defaults.update(parts)
    return _BERT_BACKWARD.format(**defaults)


bert_backward = Exercise(
    id="07.bert_backward", symbol="bert_backward", points=3,
    title="the whole encoder's backward pass, gradient-checked at a tiny size",
    reference=bert.bert_backward, cases=lambda rng: _bert_cases(rng, small=True),
    run=run_bert_backward, expected=_expected_bert_gradients, tolerance=GRADIENT,
    requires=("07.embeddings_backward", "06.encoder_block_backward", "03.layernorm_backward"),
    mistakes=[
        Mistake("blocks visited in forward order",
                "the backward pass goes from the last block to the first: the last block's "
                "cache is the first to use (reversed(range(num_layers)))",
                _bert_backward_mistake(order="range(len(layers))")),
        Mistake("every block given the model's output gradient",
                "chain the blocks: each block's dx is the upstream gradient of the block "
                "below it",
                _bert_backward_mistake(dout="upstream",
                                       embeddings='grads.update(embeddings_backward(upstream, '
                                                  'cache["embeddings"]))')),
        Mistake("the embeddings left out",
                "the embeddings are parameters too: finish with embeddings_backward(d, "
                "cache['embeddings']), d the gradient that leaves the first block, and add its "
                "five gradients",
                _bert_backward_mistake(embeddings="pass")),
        Mistake("the embeddings given the model's output gradient",
                "the embeddings' output is the first block's input: give embeddings_backward the "
                "gradient that leaves the first block, not the one the model's output received",
                _bert_backward_mistake(embeddings='grads.update(embeddings_backward(upstream, '
                                                  'cache["embeddings"]))')),
        Mistake("final LayerNorm skipped (pre-LN)",
                "a pre-LN model's output went through a final LayerNorm: go back through it "
                "first (cache['final_ln'])",
                _bert_backward_mistake(final="False")),
    ],
)


LESSON = Lesson(
    id="07", slug="07_bert", title="Mini-BERT",
    exercises=[count_parameters, init_bert, embeddings_forward, embeddings_backward,
               bert_forward, bert_backward, mlm_head_forward, mlm_head_backward, pooler_forward,
               pooler_backward],
)
