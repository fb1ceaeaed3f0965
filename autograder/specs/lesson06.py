"""Lesson 06 - The Transformer encoder block: exercise specs.

Parameters travel in ``case.data["params"]`` (so that a case's description stays short) and
the drivers pass them as the second argument, as in lesson 05. Dropout draws from a generator
that the drivers build from ``case.data["seed"]`` for every forward pass, so the central
differences of the backward exercises see the same masks as the backward pass itself.
Float32 cases check only the dtypes (float32 in, float32 out); the values are checked in
float64.
"""

import numpy as np

from solutions import attention, transformer

from ..compare import GRADIENT, _describe_type
from ..gradcheck import numerical_gradient
from ..spec import (THROUGH_CACHE, Case, Exercise, Lesson, Mistake, dtypes_of,
                    through_cache, watch)

PRELUDE = "import math\n\nimport numpy as np\nfrom scipy.special import erf\n"

# --------------------------------------------------------------------------- helpers


def _pad(lengths, T):
    """A tokenizer's attention mask (B, T): 1 for the first ``length`` tokens, then 0."""
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)


def _pair(result, what):
    """``(out, cache)`` from a forward function, or a clear error."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"{what} returns the pair (out, cache); got {_describe_type(result)}")
    return result


def _named(value, names, what):
    if not (isinstance(value, (tuple, list)) and len(value) == len(names)):
        raise TypeError(f"{what} returns the tuple ({', '.join(names)}); got "
                        f"{_describe_type(value)}")
    return dict(zip(names, value))


def _ffn_params(rng, D, F):
    return {"W1": rng.normal(size=(D, F)) / np.sqrt(D), "b1": rng.normal(scale=0.5, size=F),
            "W2": rng.normal(size=(F, D)) / np.sqrt(F), "b2": rng.normal(scale=0.5, size=D)}


def _block_params(rng, D, F):
    """All 16 parameters of a block, far from their initial values so that each one matters."""
    def value(name):
        if name[0] == "W":
            shape = {"W1": (D, F), "W2": (F, D)}.get(name, (D, D))
            return rng.normal(size=shape) / np.sqrt(shape[0])
        mean = 1.0 if name.endswith("gamma") else 0.0
        return rng.normal(mean, 0.3, size=F if name == "b1" else D)
    return {name: value(name) for name in transformer.PARAM_NAMES}


def _as_float32(case):
    case.args["x"] = case.args["x"].astype(np.float32)
    case.data["params"] = {k: v.astype(np.float32) for k, v in case.data["params"].items()}
    case.data["float32"] = True
    return case


def _numeric_grads(loss, x, params):
    """Central differences of ``loss(x, params)`` for x and for every parameter."""
    dx = numerical_gradient(lambda value: loss(value, params), x)
    grads = {name: numerical_gradient(lambda value, name=name: loss(x, {**params, name: value}),
                                      params[name])
             for name in params}
    return dx, grads


def _with_dout(cases, forward, rng):
    """Give every case an upstream gradient shaped like the forward's output, in its dtype."""
    for case in cases:
        out, _ = forward(case)
        case.data["dout"] = rng.normal(size=out.shape).astype(out.dtype)
    return cases


# --------------------------------------------------------------------------- feed-forward


def _ffn_call(fn, case):
    return fn(case.args["x"], case.data["params"])


def run_ffn(fn, case):
    out, cache = _pair(_ffn_call(fn, case), "feed_forward_forward")
    if case.data.get("float32"):
        return {"dtype of out": str(np.asarray(out).dtype)}
    return {"out": out, "cache": cache}


def _ffn_cases(rng, small=False):
    def case(name, lead, D, F, scale=1.0):
        return Case(name, {"x": rng.normal(scale=scale, size=(*lead, D))},
                    data={"params": _ffn_params(rng, D, F)})
    if small:
        return [case("(B, T, D) = (2, 3, 4), F=8", (2, 3), 4, 8),
                case("batch of one, F=5 (not a multiple of D)", (1, 2), 3, 5),
                case("F smaller than D", (2, 2), 4, 2),
                case("large inputs (x about 3)", (2, 2), 3, 6, scale=3.0),
                _as_float32(case("float32 in, float32 out", (2, 3), 4, 8))]
    return [case("(B, T, D) = (2, 3, 4), F=16", (2, 3), 4, 16),
            case("(B, T, D) = (2, 5, 8), F=32", (2, 5), 8, 32),
            case("batch of one, one token", (1, 1), 6, 4),
            case("F smaller than D", (3, 2), 8, 3),
            case("large inputs (x about 10): the GELU's tails", (2, 3), 4, 8, scale=10.0),
            _as_float32(case("float32 in, float32 out", (2, 3), 4, 8))]


_FFN_FORWARD = """def feed_forward_forward(x, params):
    hidden, linear1_cache = linear_forward(x, params["W1"], params["b1"])
    {activation}
    out, linear2_cache = linear_forward(activation, params["W2"], params["b2"])
    {out}
    return out, (linear1_cache, {gelu_cache}, linear2_cache)
"""


def _ffn_mistake(activation="activation, gelu_cache = gelu_forward(hidden)", out="",
                 gelu_cache="gelu_cache"):
    return _FFN_FORWARD.format(activation=activation, out=out, gelu_cache=gelu_cache)


feed_forward_forward = Exercise(
    id="06.feed_forward_forward", symbol="feed_forward_forward", points=1,
    title="the feed-forward network: Linear, GELU, Linear",
    reference=transformer.feed_forward_forward, cases=_ffn_cases, run=run_ffn,
    requires=("03.linear_forward", "03.gelu_forward"),
    mistakes=[
        Mistake("tanh GELU where the exact one is asked",
                "BERT's activation is the exact GELU, x * Phi(x) with erf (gelu_forward); the "
                "tanh approximation differs by up to 1e-3",
                _ffn_mistake(activation="u = math.sqrt(2 / math.pi) * (hidden + 0.044715 * "
                                        "hidden ** 3)\n"
                                        "    cdf = 0.5 * (1 + np.tanh(u))\n"
                                        "    activation, gelu_cache = hidden * cdf, (hidden, cdf)")),
        Mistake("ReLU instead of GELU",
                "the Transformer's feed-forward uses a GELU (BERT) between the projections, "
                "not a ReLU (the original 2017 Transformer)",
                _ffn_mistake(activation="activation, gelu_cache = np.maximum(hidden, 0), hidden")),
        Mistake("GELU after the second projection too",
                "only the hidden layer goes through the GELU; the output x @ W1 ... @ W2 + b2 "
                "stays linear (it is added to the residual stream)",
                _ffn_mistake(out="out, _ = gelu_forward(out)")),
        Mistake("GELU's output in its cache",
                "the GELU's cache is (h, Phi(h)) with h its input, the pre-activation "
                "x @ W1 + b1 (gelu_backward evaluates the derivative there): keep the cache "
                "gelu_forward returns",
                _ffn_mistake(activation="activation, (h, cdf) = gelu_forward(hidden)",
                             gelu_cache="(activation, cdf)")),
    ],
)


def run_ffn_backward(fn, case):
    _, cache = _ffn_call(transformer.feed_forward_forward, case)
    result = _named(fn(case.data["dout"], watch("cache", cache)), ("dx", "grads"),
                    "feed_forward_backward")
    return dtypes_of(result) if case.data.get("float32") else result


def _expected_ffn_gradients(case):
    if case.data.get("float32"):
        return run_ffn_backward(transformer.feed_forward_backward, case)

    def loss(x, params):
        out, _ = transformer.feed_forward_forward(x, params)
        return float(np.sum(out * case.data["dout"]))
    dx, grads = _numeric_grads(loss, case.args["x"], case.data["params"])
    return {"dx": dx, "grads": grads}


_FFN_BACKWARD = """def feed_forward_backward(dout, cache):
    linear1_cache, gelu_cache, linear2_cache = cache
    x, W1 = linear1_cache
    a, W2 = linear2_cache
    D, F = W1.shape
    da = dout @ W2.T
    dW2 = a.reshape(-1, F).T @ dout.reshape(-1, D)
    db2 = {db2}
    {before}
    dh = {dh}
    dx = dh @ W1.T
    dW1 = x.reshape(-1, D).T @ dh.reshape(-1, F)
    db1 = dh.reshape(-1, F).sum(axis=0)
    return dx, {{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}}
"""


def _ffn_backward_mistake(dh="gelu_backward(da, gelu_cache)",
                          db2="dout.reshape(-1, D).sum(axis=0)", before=""):
    return _FFN_BACKWARD.format(dh=dh, db2=db2, before=before)


feed_forward_backward = Exercise(
    id="06.feed_forward_backward", symbol="feed_forward_backward", points=2,
    title="its backward pass: dx and the four parameter gradients",
    reference=transformer.feed_forward_backward, cases=lambda rng: _with_dout(
        _ffn_cases(rng, small=True), lambda c: _ffn_call(transformer.feed_forward_forward, c), rng),
    run=run_ffn_backward, expected=_expected_ffn_gradients, tolerance=GRADIENT,
    requires=("03.linear_backward", "03.gelu_backward"),
    mistakes=[
        Mistake("GELU derivative missing",
                "between the two projections the gradient goes back through the GELU: "
                "gelu_backward(d_activation, gelu_cache) (times Phi(h) + h * phi(h))",
                _ffn_backward_mistake(dh="da")),
        Mistake("GELU derivative at its output",
                "gelu_backward needs the GELU's cache as gelu_forward made it, (h, Phi(h)) with "
                "h its *input*, the pre-activation; a is its output (the x of the second "
                "linear layer)",
                _ffn_backward_mistake(before="h, cdf = gelu_cache",
                                      dh="gelu_backward(da, (a, cdf))")),
        Mistake("tanh GELU's derivative",
                "the forward used the exact GELU, so its derivative is Phi(h) + h * phi(h) "
                "(gelu_backward), not the tanh form's",
                _ffn_backward_mistake(
                    before="h, _ = gelu_cache\n"
                           "    t = np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3))",
                    dh="da * (0.5 * (1 + t) + 0.5 * h * (1 - t ** 2) * math.sqrt(2 / math.pi) "
                       "* (1 + 3 * 0.044715 * h ** 2))")),
        Mistake("b2 summed over the batch axis only",
                "a bias is added at every position of every sequence: sum its gradient over "
                "every leading axis (reshape to (-1, D) first)",
                _ffn_backward_mistake(db2="dout.sum(axis=0)")),
    ],
)

# --------------------------------------------------------------------------- add & norm


def _add_layernorm_cases(rng, small=False):
    def case(name, shape, kwargs=None, x=None, sub=None):
        D = shape[-1]
        return Case(name, {"x": rng.normal(size=shape) if x is None else x,
                           "sublayer_out": rng.normal(size=shape) if sub is None else sub,
                           "gamma": rng.normal(1.0, 0.5, size=D),
                           "beta": rng.normal(0.0, 0.5, size=D)}, kwargs or {},
                    data={"dout": rng.normal(size=shape)})
    constant = rng.normal(size=(1, 2, 5))
    cases = [
        case("(B, T, D) = (2, 3, 4)", (2, 3, 4)),
        case("batch of one, eps=1e-5", (1, 4, 6), {"eps": 1e-5}),
        case("the sublayer output is small next to x (as at BERT's initialisation)", (2, 2, 5),
             sub=0.01 * rng.normal(size=(2, 2, 5))),
    ]
    if small:
        return cases + [Case("float32 in, float32 out",
                             {"x": rng.normal(size=(2, 3, 4)).astype(np.float32),
                              "sublayer_out": rng.normal(size=(2, 3, 4)).astype(np.float32),
                              "gamma": rng.normal(1.0, 0.5, size=4).astype(np.float32),
                              "beta": rng.normal(0.0, 0.5, size=4).astype(np.float32)},
                             data={"float32": True,
                                   "dout": rng.normal(size=(2, 3, 4)).astype(np.float32)})]
    return cases + [
        case("x + sublayer_out is constant along D (variance 0)", (1, 2, 5),
             x=constant, sub=3.0 - constant),
        case("values far from 0 (mean 1e4)", (2, 2, 8), x=1e4 + rng.normal(size=(2, 2, 8))),
        Case("float32 in, float32 out",
             {"x": rng.normal(size=(2, 3, 4)).astype(np.float32),
              "sublayer_out": rng.normal(size=(2, 3, 4)).astype(np.float32),
              "gamma": np.ones(4, np.float32), "beta": np.zeros(4, np.float32)},
             data={"float32": True}),
    ]


def run_add_layernorm(fn, case):
    out, cache = _pair(fn(*case.args.values(), **case.kwargs), "add_layernorm_forward")
    if case.data.get("float32"):
        return {"dtype of out": str(np.asarray(out).dtype)}
    return {"out": out, "cache": cache}


_ADD_LN = """def add_layernorm_forward(x, sublayer_out, gamma, beta, eps=1e-12):
    {body}
"""

add_layernorm_forward = Exercise(
    id="06.add_layernorm_forward", symbol="add_layernorm_forward", points=1,
    title="post-LN's add & norm: LayerNorm(x + sublayer_out)",
    reference=transformer.add_layernorm_forward, cases=_add_layernorm_cases,
    run=run_add_layernorm, requires=("03.layernorm_forward",),
    mistakes=[
        Mistake("residual added after the LayerNorm",
                "post-LN normalises the sum: LayerNorm(x + sublayer_out); x + "
                "LayerNorm(sublayer_out) is neither post-LN nor pre-LN",
                _ADD_LN.format(body="out, cache = layernorm_forward(sublayer_out, gamma, beta, "
                                    "eps)\n    return x + out, cache")),
        Mistake("residual missing",
                "add the residual x before normalising: LayerNorm(x + sublayer_out)",
                _ADD_LN.format(body="return layernorm_forward(sublayer_out, gamma, beta, eps)")),
        Mistake("x normalised, not the sum",
                "normalise the sum x + sublayer_out; LayerNorm(x) + sublayer_out leaves the "
                "output unnormalised",
                _ADD_LN.format(body="out, cache = layernorm_forward(x, gamma, beta, eps)\n"
                                    "    return out + sublayer_out, cache")),
    ],
)


def run_add_layernorm_backward(fn, case):
    _, cache = transformer.add_layernorm_forward(*case.args.values(), **case.kwargs)
    result = _named(fn(case.data["dout"], watch("cache", cache)),
                    ("dx", "dsublayer_out", "dgamma", "dbeta"), "add_layernorm_backward")
    return dtypes_of(result) if case.data.get("float32") else result


def _expected_add_layernorm_gradients(case):
    if case.data.get("float32"):
        return run_add_layernorm_backward(transformer.add_layernorm_backward, case)
    def f(**changed):
        args = {**case.args, **changed}
        out, _ = transformer.add_layernorm_forward(*args.values(), **case.kwargs)
        return float(np.sum(out * case.data["dout"]))
    names = {"x": "dx", "sublayer_out": "dsublayer_out", "gamma": "dgamma", "beta": "dbeta"}
    return {grad: numerical_gradient(lambda v, n=name: f(**{n: v}), case.args[name])
            for name, grad in names.items()}


_ADD_LN_BACKWARD = """def add_layernorm_backward(dout, cache):
    dsum, dgamma, dbeta = layernorm_backward(dout, cache)
    return {result}
"""

add_layernorm_backward = Exercise(
    id="06.add_layernorm_backward", symbol="add_layernorm_backward", points=2,
    title="its backward pass: both terms of the sum get the LayerNorm's gradient",
    reference=transformer.add_layernorm_backward,
    cases=lambda rng: _add_layernorm_cases(rng, small=True),
    run=run_add_layernorm_backward, expected=_expected_add_layernorm_gradients,
    tolerance=GRADIENT, requires=("03.layernorm_backward",),
    mistakes=[
        Mistake("gradient passed around the LayerNorm",
                "the sum goes *through* the LayerNorm: x and sublayer_out both get "
                "layernorm_backward's dx, not dout",
                _ADD_LN_BACKWARD.format(result="dout, dout, dgamma, dbeta")),
        Mistake("residual gradient counted twice",
                "in post-LN there is no path around the LayerNorm: x reaches the output only "
                "through LayerNorm(x + sublayer_out), so dx is the LayerNorm's dx alone",
                _ADD_LN_BACKWARD.format(result="dout + dsum, dsum, dgamma, dbeta")),
        Mistake("x gets no gradient",
                "x is one of the two terms of the sum: it gets the same gradient as "
                "sublayer_out (the residual connection's gradient)",
                _ADD_LN_BACKWARD.format(result="np.zeros_like(dsum), dsum, dgamma, dbeta")),
        Mistake("dgamma and dbeta swapped",
                "layernorm_backward returns (dx, dgamma, dbeta); return them in the order "
                "(dx, dsublayer_out, dgamma, dbeta)",
                _ADD_LN_BACKWARD.format(result="dsum, dsum, dbeta, dgamma")),
    ],
)

# --------------------------------------------------------------------------- the block


def _block_call(fn, case, params=None, x=None):
    """Run a block forward on the case, with a generator rebuilt from the case's seed."""
    rng = np.random.default_rng(int(case.data["seed"]))
    return fn(case.args["x"] if x is None else x, case.data["params"] if params is None else params,
              case.args["num_heads"], rng=rng, **case.kwargs)


def run_block(fn, case):
    out, cache = _pair(_block_call(fn, case), "encoder_block_forward")
    if not isinstance(cache, dict):
        raise TypeError("the cache is the dict described in the docstring (keys pre_ln, attention, "
                        "dropout1, ln1, ffn, dropout2, ln2); got " + _describe_type(cache))
    keys = {str(k): "present" for k in cache}         # a stray or missing key is named
    if case.data.get("float32"):
        return {"dtype of out": str(np.asarray(out).dtype), "cache keys": keys}
    return {"out": out, "cache keys": keys,
            THROUGH_CACHE: through_cache(transformer.encoder_block_backward, out, cache)}


def _block_cases(rng, small=False):
    def case(name, B, T, D, H, F, lengths=None, causal=False, **kwargs):
        if lengths is not None:
            kwargs["mask"] = attention.padding_mask(_pad(lengths, T))
        if causal:
            kwargs["mask"] = attention.causal_mask(T)
        return Case(name, {"x": rng.normal(size=(B, T, D)), "num_heads": H}, kwargs,
                    {"params": _block_params(rng, D, F), "seed": int(rng.integers(2 ** 31))})
    if small:
        cases = [
            case("post-LN, B=2, T=4, D=8, H=2, F=16", 2, 4, 8, 2, 16),
            case("post-LN, padding mask", 2, 4, 8, 2, 16, lengths=[4, 2]),
            case("pre-LN", 2, 4, 8, 2, 16, pre_ln=True),
            case("pre-LN, padding mask", 2, 4, 8, 2, 16, lengths=[3, 4], pre_ln=True),
            case("post-LN, dropout 0.3 while training, padding mask", 2, 4, 8, 2, 16,
                 lengths=[4, 3], dropout_p=0.3, training=True),
            case("pre-LN, dropout 0.3 while training", 2, 4, 8, 2, 16, pre_ln=True,
                 dropout_p=0.3, training=True),
            case("pre-LN, a sequence of padding only, one head, eps=1e-5", 2, 3, 4, 1, 8,
                 lengths=[3, 0], pre_ln=True, eps=1e-5),
            _as_float32(case("float32 in, float32 out (post-LN, padding mask)", 2, 4, 8, 2, 16,
                             lengths=[4, 3])),
        ]
        return _with_dout(cases, lambda c: _block_call(transformer.encoder_block_forward, c),
                          rng)
    return [
        case("post-LN, B=2, T=4, D=8, H=2, F=32", 2, 4, 8, 2, 32),
        case("post-LN, padding mask", 2, 5, 8, 2, 16, lengths=[5, 2]),
        case("pre-LN", 2, 4, 8, 2, 32, pre_ln=True),
        case("pre-LN, padding mask", 3, 5, 6, 3, 12, lengths=[5, 1, 3], pre_ln=True),
        case("post-LN, dropout 0.3 while training", 2, 4, 8, 2, 16, dropout_p=0.3,
             training=True),
        case("pre-LN, dropout 0.3 while training, padding mask", 2, 4, 8, 4, 16,
             lengths=[4, 2], pre_ln=True, dropout_p=0.3, training=True),
        case("evaluation (training=False) with dropout_p=0.5", 2, 4, 8, 2, 16, dropout_p=0.5),
        case("training with dropout_p=0", 2, 3, 4, 2, 8, training=True),
        case("pre-LN, evaluation with dropout_p=0.5", 2, 4, 8, 2, 16, pre_ln=True,
             dropout_p=0.5),
        case("batch of one, one head, causal mask, eps=1e-5", 1, 4, 6, 1, 12, causal=True,
             eps=1e-5),
        case("post-LN, a sequence of padding only", 2, 3, 4, 2, 8, lengths=[3, 0]),
        _as_float32(case("float32 in, float32 out (pre-LN, padding mask)", 2, 4, 8, 2, 16,
                         lengths=[4, 2], pre_ln=True)),
        _as_float32(case("float32 in, float32 out (post-LN)", 2, 4, 8, 2, 16)),
    ]


_BLOCK_FORWARD = """def encoder_block_forward(x, params, num_heads, mask=None, pre_ln=False, dropout_p=0.0,
                          training=False, rng=None, eps=1e-12):
    p = params
    ffn = feed_forward_forward
    cache = {{"pre_ln": pre_ln}}
    if {condition}:
{pre}
    else:
{post}
    return out, cache
"""
_PRE_LN = """        n, cache["ln1"] = layernorm_forward(x, p["{ln1}_gamma"], p["{ln1}_beta"], eps)
        a, cache["attention"] = multi_head_attention_forward(n, p, num_heads, {mask})
        a, cache["dropout1"] = dropout_forward(a, dropout_p, {training}, rng)
        h = x + a
        n, cache["ln2"] = layernorm_forward(h, p["{ln2}_gamma"], p["{ln2}_beta"], eps)
        f, cache["ffn"] = ffn(n, p)
        f, cache["dropout2"] = dropout_forward(f, dropout_p, {training}, rng)
        out = h + f"""
_POST_LN = """        a, cache["attention"] = multi_head_attention_forward(x, p, num_heads, {mask})
        a, cache["dropout1"] = dropout_forward(a, dropout_p, {training}, rng)
        h, cache["ln1"] = add_layernorm_forward(x, a, p["{ln1}_gamma"], p["{ln1}_beta"], eps)
        f, cache["ffn"] = ffn(h, p)
        f, cache["dropout2"] = dropout_forward(f, dropout_p, {training}, rng)
        out, cache["ln2"] = add_layernorm_forward(h, f, p["{ln2}_gamma"], p["{ln2}_beta"], eps)"""
# x + LN(sublayer(x)): post-LN with the residual after the LayerNorm, or pre-LN that
# normalises the sub-layer's output instead of its input; both are the same computation.
_NORM_AFTER = """        a, cache["attention"] = multi_head_attention_forward(x, p, num_heads, mask)
        a, cache["dropout1"] = dropout_forward(a, dropout_p, training, rng)
        n, cache["ln1"] = layernorm_forward(a, p["ln1_gamma"], p["ln1_beta"], eps)
        h = x + n
        f, cache["ffn"] = ffn(h, p)
        f, cache["dropout2"] = dropout_forward(f, dropout_p, training, rng)
        n, cache["ln2"] = layernorm_forward(f, p["ln2_gamma"], p["ln2_beta"], eps)
        out = h + n"""
_DROPOUT_AFTER_SUM = {
    "pre": """        n, cache["ln1"] = layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
        a, cache["attention"] = multi_head_attention_forward(n, p, num_heads, mask)
        h, cache["dropout1"] = dropout_forward(x + a, dropout_p, training, rng)
        n, cache["ln2"] = layernorm_forward(h, p["ln2_gamma"], p["ln2_beta"], eps)
        f, cache["ffn"] = ffn(n, p)
        out, cache["dropout2"] = dropout_forward(h + f, dropout_p, training, rng)""",
    "post": """        a, cache["attention"] = multi_head_attention_forward(x, p, num_heads, mask)
        s, cache["dropout1"] = dropout_forward(x + a, dropout_p, training, rng)
        h, cache["ln1"] = layernorm_forward(s, p["ln1_gamma"], p["ln1_beta"], eps)
        f, cache["ffn"] = ffn(h, p)
        s, cache["dropout2"] = dropout_forward(h + f, dropout_p, training, rng)
        out, cache["ln2"] = layernorm_forward(s, p["ln2_gamma"], p["ln2_beta"], eps)""",
}
# Dropout on the FFN's hidden layer (where torch's TransformerEncoderLayer has a third one)
# instead of on its output.
_FFN_INNER_DROPOUT = """
def ffn_with_inner_dropout(h, p, dropout_p, training, rng):
    hidden = h @ p["W1"] + p["b1"]
    activation = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
    activation, mask = dropout_forward(activation, dropout_p, training, rng)
    return activation @ p["W2"] + p["b2"], mask
"""


def _block_mistake(condition="pre_ln", pre=_PRE_LN, post=_POST_LN, mask="mask",
                   training="training", ln1="ln1", ln2="ln2", extra=""):
    parts = {"mask": mask, "training": training, "ln1": ln1, "ln2": ln2}
    return _BLOCK_FORWARD.format(condition=condition, pre=pre.format(**parts),
                                 post=post.format(**parts)) + extra


def _inner_dropout(body):
    return (body.replace('f, cache["ffn"] = ffn(n, p)',
                         'f, cache["ffn"] = ffn_with_inner_dropout(n, p, dropout_p, training, rng)')
                .replace('f, cache["ffn"] = ffn(h, p)',
                         'f, cache["ffn"] = ffn_with_inner_dropout(h, p, dropout_p, training, rng)')
                .replace('f, cache["dropout2"] = dropout_forward(f, dropout_p, {training}, rng)',
                         'cache["dropout2"] = None'))


encoder_block_forward = Exercise(
    id="06.encoder_block_forward", symbol="encoder_block_forward", points=3,
    title="the encoder block, post-LN and pre-LN, with dropout",
    reference=transformer.encoder_block_forward, cases=_block_cases, run=run_block,
    requires=("03.layernorm_forward", "03.dropout_forward", "05.multi_head_attention_forward",
              "06.feed_forward_forward", "06.add_layernorm_forward"),
    mistakes=[
        Mistake("post-LN with the residual after the LayerNorm",
                "post-LN (BERT) normalises the residual sum: h = LN1(x + MHA(x)), "
                "out = LN2(h + FFN(h)); x + LN(MHA(x)) is neither post-LN nor pre-LN",
                _block_mistake(post=_NORM_AFTER)),
        Mistake("pre-LN normalising the sub-layer's output",
                "pre-LN normalises each sub-layer's *input*: h = x + MHA(LN1(x)), "
                "out = h + FFN(LN2(h)); the residual stream itself is never normalised",
                _block_mistake(pre=_NORM_AFTER)),
        Mistake("pre-LN without the residual",
                "each sub-layer's output is *added* to its input: h = x + MHA(LN1(x)), "
                "out = h + FFN(LN2(h)); without the sum the block forgets x",
                _block_mistake(pre=_PRE_LN.replace("h = x + a", "h = a")
                                           .replace("out = h + f", "out = f"))),
        Mistake("pre-LN residual from the normalised input",
                "the residual stream carries x itself, not LN1(x): h = x + MHA(LN1(x)), so "
                "the sum starts from the block's input",
                _block_mistake(pre=_PRE_LN.replace("h = x + a", "h = n + a"))),
        Mistake("post-LN without the residual",
                "post-LN normalises the *sum*: h = LN1(x + MHA(x)); LN1(MHA(x)) drops x",
                _block_mistake(post=_POST_LN.replace("add_layernorm_forward(x, a,",
                                                     "add_layernorm_forward(0.0 * x, a,"))),
        Mistake("pre_ln ignored",
                "with pre_ln=True the LayerNorms move in front of the sub-layers: "
                "h = x + MHA(LN1(x)), out = h + FFN(LN2(h))",
                _block_mistake(condition="False")),
        Mistake("LayerNorms swapped",
                "ln1_gamma and ln1_beta belong to the LayerNorm around the attention, ln2_* to "
                "the one around the feed-forward network",
                _block_mistake(ln1="ln2", ln2="ln1")),
        Mistake("dropout active in evaluation",
                "pass `training` on to dropout_forward: with training=False dropout does "
                "nothing (and draws nothing)",
                _block_mistake(training="True")),
        Mistake("dropout after the residual sum",
                "dropout goes on each sub-layer's output, before it is added to the residual: "
                "x + Dropout(MHA(x)), so the residual stream itself is never dropped",
                _block_mistake(pre=_DROPOUT_AFTER_SUM["pre"], post=_DROPOUT_AFTER_SUM["post"])),
        Mistake("dropout inside the feed-forward network",
                "dropout goes on the feed-forward network's output (before the residual add), "
                "not on its hidden layer after the GELU (torch's TransformerEncoderLayer has "
                "one there too; BERT does not)",
                _block_mistake(pre=_inner_dropout(_PRE_LN), post=_inner_dropout(_POST_LN),
                               extra=_FFN_INNER_DROPOUT)),
        Mistake("mask not passed on",
                "pass the mask to multi_head_attention_forward, or padded tokens are attended to",
                _block_mistake(mask="None")),
    ],
)


def run_block_backward(fn, case):
    _, cache = _block_call(transformer.encoder_block_forward, case)
    result = _named(fn(case.data["dout"], watch("cache", cache)), ("dx", "grads"),
                    "encoder_block_backward")
    return dtypes_of(result) if case.data.get("float32") else result


def _expected_block_gradients(case):
    """Central differences for x and all 16 parameters, with the same dropout masks."""
    if case.data.get("float32"):
        return run_block_backward(transformer.encoder_block_backward, case)
    def loss(x, params):
        out, _ = _block_call(transformer.encoder_block_forward, case, params=params, x=x)
        return float(np.sum(out * case.data["dout"]))
    dx, grads = _numeric_grads(loss, case.args["x"], case.data["params"])
    return {"dx": dx, "grads": grads}


_BLOCK_BACKWARD = """def encoder_block_backward(dout, cache):
    if {condition}:
        df = dropout_backward(dout, cache["{drop2}"])
        dn, ffn_grads = feed_forward_backward(df, cache["ffn"])
        dh_ffn, dg2, db2 = layernorm_backward(dn, cache["ln2"])
        dh = {pre_dh}
        da = dropout_backward(dh, cache["{drop1}"])
        dn, attention_grads = multi_head_attention_backward(da, cache["attention"])
        dx_attention, dg1, db1 = layernorm_backward(dn, cache["ln1"])
        dx = {pre_dx}
    else:
        dh_direct, df, dg2, db2 = add_layernorm_backward(dout, cache["ln2"])
        df = dropout_backward(df, cache["{drop2}"])
        dh_ffn, ffn_grads = feed_forward_backward(df, cache["ffn"])
        dh = {post_dh}
        dx_direct, da, dg1, db1 = add_layernorm_backward(dh, cache["ln1"])
        da = dropout_backward(da, cache["{drop1}"])
        dx_attention, attention_grads = multi_head_attention_backward(da, cache["attention"])
        dx = {post_dx}
    return dx, {{**attention_grads, "ln1_gamma": {g1}, "ln1_beta": {b1}, **ffn_grads,
                "ln2_gamma": {g2}, "ln2_beta": {b2}}}
"""


def _block_backward_mistake(**parts):
    defaults = {"condition": 'cache["pre_ln"]', "drop1": "dropout1", "drop2": "dropout2",
                "pre_dh": "dout + dh_ffn", "pre_dx": "dh + dx_attention",
                "post_dh": "dh_direct + dh_ffn", "post_dx": "dx_direct + dx_attention",
                "g1": "dg1", "b1": "db1", "g2": "dg2", "b2": "db2"}
    defaults.update(parts)
    return _BLOCK_BACKWARD.format(**defaults)


_NO_DROPOUT_BACKWARD = """
def dropout_backward(dout, cache):
    return dout
"""

encoder_block_backward = Exercise(
    id="06.encoder_block_backward", symbol="encoder_block_backward", points=3,
    title="the whole block's backward pass, gradient-checked end to end",
    reference=transformer.encoder_block_backward,
    cases=lambda rng: _block_cases(rng, small=True),
    run=run_block_backward, expected=_expected_block_gradients, tolerance=GRADIENT,
    requires=("03.layernorm_backward", "03.dropout_backward", "05.multi_head_attention_backward",
              "06.feed_forward_backward", "06.add_layernorm_backward"),
    mistakes=[
        Mistake("residual gradients missing",
                "each residual h = x + sublayer(...) sends the gradient down two paths: add "
                "the direct one (dx = dh + the sub-layer's dx), or the layers below get only "
                "what went through the sub-layers",
                _block_backward_mistake(pre_dh="dh_ffn", pre_dx="dx_attention",
                                        post_dh="dh_ffn", post_dx="dx_attention")),
        Mistake("feed-forward path missing from dh",
                "h feeds the feed-forward network as well as the residual: dh is the sum of "
                "both gradients (the direct one and the FFN's dx)",
                _block_backward_mistake(pre_dh="dout", post_dh="dh_direct")),
        Mistake("LayerNorm gradients swapped",
                "ln1_* is the LayerNorm of the attention sub-layer and ln2_* the one of the "
                "feed-forward network: keep their gradients under their own names",
                _block_backward_mistake(g1="dg2", b1="db2", g2="dg1", b2="db1")),
        Mistake("dropout masks not applied",
                "a dropped entry did not reach the output: send the gradient back through "
                "dropout_backward with the mask the forward pass kept (cache['dropout1'], "
                "cache['dropout2'])",
                _block_backward_mistake() + _NO_DROPOUT_BACKWARD),
        Mistake("dropout masks swapped",
                "the first mask (dropout1) was drawn for the attention's output, the second "
                "(dropout2) for the feed-forward's output",
                _block_backward_mistake(drop1="dropout2", drop2="dropout1")),
        Mistake("pre-LN treated as post-LN",
                "read cache['pre_ln']: in pre-LN the LayerNorms sit inside the residual "
                "branches, so the backward pass is different",
                _block_backward_mistake(condition="False")),
    ],
)

# --------------------------------------------------------------------------- initialisation


def run_init(fn, case):
    rng = np.random.default_rng(int(case.data["seed"]))
    if case.data.get("must_raise"):
        try:
            fn(*case.args.values(), rng, **case.kwargs)
        except ValueError:
            return {"raises ValueError when num_heads does not divide dim": True}
        return {"raises ValueError when num_heads does not divide dim": False}
    params = fn(*case.args.values(), rng, **case.kwargs)
    if not isinstance(params, dict):
        raise TypeError("init_encoder_block returns a dict of arrays; got "
                        + _describe_type(params))
    arrays = [(name, value) for name, value in params.items() if isinstance(value, np.ndarray)]
    shared = [f"{a} and {b}" for i, (a, x) in enumerate(arrays) for b, y in arrays[i + 1:]
              if np.shares_memory(x, y)]
    return {"names, in order": [str(name) for name in params], "params": params,
            "parameters sharing memory": shared}


def _init_cases(rng):
    def case(name, dim, heads, ff, **kwargs):
        return Case(name, {"dim": dim, "num_heads": heads, "ff_dim": ff}, kwargs,
                    {"seed": int(rng.integers(2 ** 31))})
    return [case("D=8, H=2, F=32", 8, 2, 32), case("D=4, H=1, F=16", 4, 1, 16),
            case("D=6, H=3, F=10, init_std=0.5", 6, 3, 10, init_std=0.5),
            case("D=12, H=4, F=48, init_std=1.0", 12, 4, 48, init_std=1.0),
            Case("D=8, H=3: H does not divide D", {"dim": 8, "num_heads": 3, "ff_dim": 16},
                 data={"seed": 0, "must_raise": True})]


_INIT = """def init_encoder_block(dim, num_heads, ff_dim, rng, init_std=0.02):
    {check}
    def weight(shape):
        return {draw}
    Wq, Wk, Wv, Wo = weight((dim, dim)), weight((dim, dim)), weight((dim, dim)), weight((dim, dim))
    {ffn_weights}
    {biases}
    return {{"Wq": Wq, "bq": bq, "Wk": Wk, "bk": bk, "Wv": Wv, "bv": bv, "Wo": Wo, "bo": bo,
            "ln1_gamma": {gamma}, "ln1_beta": np.zeros(dim), "W1": W1, "b1": b1, "W2": W2,
            "b2": b2, "ln2_gamma": {gamma}, "ln2_beta": np.zeros(dim)}}
"""


def _init_mistake(**parts):
    defaults = {"draw": "rng.normal(0.0, init_std, size=shape)",
                "ffn_weights": "W1, W2 = weight((dim, ff_dim)), weight((ff_dim, dim))",
                "biases": "bq, bk, bv, bo, b2 = (np.zeros(dim) for _ in range(5))\n"
                          "    b1 = np.zeros(ff_dim)",
                "gamma": "np.ones(dim)",
                "check": "if dim % num_heads:\n"
                         "        raise ValueError('num_heads must divide dim')"}
    defaults.update(parts)
    return _INIT.format(**defaults)


init_encoder_block = Exercise(
    id="06.init_encoder_block", symbol="init_encoder_block", points=1,
    title="BERT's initialisation of a block",
    reference=transformer.init_encoder_block, cases=_init_cases, run=run_init,
    mistakes=[
        Mistake("random biases",
                "BERT starts every bias at 0; only the weight matrices are drawn from rng",
                _init_mistake(biases="bq, bk, bv, bo, b2 = (rng.normal(0.0, init_std, size=dim) "
                                     "for _ in range(5))\n"
                                     "    b1 = rng.normal(0.0, init_std, size=ff_dim)")),
        Mistake("no ValueError",
                "check the sizes first: when num_heads does not divide dim, raise ValueError "
                "(the heads split D into equal parts), before drawing anything",
                _init_mistake(check="pass")),
        Mistake("init_std ignored",
                "draw the weights with the init_std argument, rng.normal(0.0, init_std, ...): "
                "0.02 is only its default",
                _init_mistake(draw="rng.normal(0.0, 0.02, size=shape)")),
        Mistake("LayerNorm scale 0",
                "a LayerNorm starts as the identity: gamma = 1 (ones), beta = 0; with gamma = 0 "
                "every block's output would be 0",
                _init_mistake(gamma="np.zeros(dim)")),
        Mistake("FFN weights in PyTorch's layout",
                "here every projection is x @ W + b: W1 is (D, F) and W2 is (F, D) (nn.Linear "
                "stores the transpose)",
                _init_mistake(ffn_weights="W1, W2 = weight((ff_dim, dim)), weight((dim, ff_dim))")),
        Mistake("weights drawn in another order",
                "draw the six weight matrices in the documented order, Wq, Wk, Wv, Wo, W1, W2, "
                "one rng.normal call each, so the same seed gives the same block",
                _init_mistake(ffn_weights="W1, W2 = weight((dim, ff_dim)), weight((ff_dim, dim))"
                                          "\n    Wq, Wk, Wv, Wo = Wo, Wv, Wk, Wq")),
        Mistake("one zeros array for every bias",
                "give every parameter its own array: an optimizer updates them in place, and "
                "biases sharing one array would all move together",
                _init_mistake(biases="bq = bk = bv = bo = b2 = np.zeros(dim)\n"
                                     "    b1 = np.zeros(ff_dim)")),
    ],
)

# --------------------------------------------------------------------------- the Module


def _copies(arrays):
    return {str(k): np.array(v, copy=True) for k, v in arrays.items()}


def run_block_module(EncoderBlock, case):
    dim, heads, ff = (int(v) for v in case.args.values())
    block = EncoderBlock(dim, heads, ff, np.random.default_rng(int(case.data["seed"])),
                         **case.kwargs)
    x, dout, mask = case.data["x"], case.data["dout"], case.data.get("mask")
    result = {"names from named_parameters()": [name for name, _ in block.named_parameters()],
              "params after construction": _copies(block.params),
              "forward(x, mask) while training": block.forward(x, mask),
              "backward(dout)": block.backward(dout),
              "grads after one backward": _copies(block.grads)}
    arrays = [id(g) for g in block.gradients()]
    block.forward(x, mask)
    block.backward(dout)
    result["grads after a second forward and backward (they add up)"] = _copies(block.grads)
    result["gradients() the same arrays as before, added to in place"] = \
        [id(g) for g in block.gradients()] == arrays
    block.eval()
    result["forward(x, mask) after eval()"] = block.forward(x, mask)
    for p in block.parameters():                     # what an optimizer's step does
        p *= 1.5
    result["forward(x, mask) after the parameters() changed in place"] = block.forward(x, mask)
    return result


def _block_module_cases(rng):
    def case(name, D, H, F, B, T, lengths=None, **kwargs):
        data = {"seed": int(rng.integers(2 ** 31)), "x": rng.normal(size=(B, T, D)),
                "dout": rng.normal(size=(B, T, D))}
        if lengths is not None:
            data["mask"] = attention.padding_mask(_pad(lengths, T))
        return Case(name, {"dim": D, "num_heads": H, "ff_dim": F}, kwargs, data)
    return [
        case("post-LN, dropout 0.1 (the defaults), padding mask", 8, 2, 32, 2, 4, [4, 2],
             init_std=0.3),
        case("pre-LN, dropout 0.2", 8, 4, 16, 2, 3, pre_ln=True, dropout_p=0.2, init_std=0.3),
        case("no dropout, eps=1e-5, BERT's init_std", 6, 3, 12, 1, 5, [3], dropout_p=0.0,
             eps=1e-5),
        case("pre-LN, padding mask, dropout 0.3", 4, 2, 8, 3, 4, [4, 1, 2], pre_ln=True,
             dropout_p=0.3, init_std=0.5),
    ]


_MODULE = """class EncoderBlock(Module):
    def __init__(self, dim, num_heads, ff_dim, rng, dropout_p=0.1, pre_ln=False, eps=1e-12,
                 init_std=0.02):
        super().__init__()
{register}
        self.num_heads, self.dropout_p, self.pre_ln, self.eps = num_heads, dropout_p, pre_ln, eps
        self.rng = rng
        self.cache = None
    def forward(self, x, mask=None):
        out, self.cache = encoder_block_forward(x, {params}, self.num_heads, {mask},
                                                pre_ln={pre_ln}, dropout_p=self.dropout_p,
                                                training={training}, rng=self.rng, eps=self.eps)
        return out
    def backward(self, dout):
        dx, grads = encoder_block_backward(dout, self.cache)
{accumulate}
        return dx
"""


_OWN_COPY = """class EncoderBlock(Module):
    def __init__(self, dim, num_heads, ff_dim, rng, dropout_p=0.1, pre_ln=False, eps=1e-12,
                 init_std=0.02):
        super().__init__()
        self.weights = init_encoder_block(dim, num_heads, ff_dim, rng, init_std)
        for name, value in self.weights.items():
            self.add_parameter(name, value.copy())
        self.num_heads, self.dropout_p, self.pre_ln, self.eps = num_heads, dropout_p, pre_ln, eps
        self.rng = rng
        self.cache = None
    def forward(self, x, mask=None):
        out, self.cache = encoder_block_forward(x, self.weights, self.num_heads, mask,
                                                pre_ln=self.pre_ln, dropout_p=self.dropout_p,
                                                training=self.training, rng=self.rng, eps=self.eps)
        return out
    def backward(self, dout):
        dx, grads = encoder_block_backward(dout, self.cache)
        for name, grad in grads.items():
            self.grads[name] += grad
        return dx
"""


def _module_mistake(**parts):
    defaults = {
        "register": "        for name, value in init_encoder_block(dim, num_heads, ff_dim, rng, "
                    "init_std).items():\n            self.add_parameter(name, value)",
        "params": "self.params", "mask": "mask", "pre_ln": "self.pre_ln",
        "training": "self.training",
        "accumulate": "        for name, grad in grads.items():\n"
                      "            self.grads[name] += grad"}
    defaults.update(parts)
    return _MODULE.format(**defaults)


encoder_block = Exercise(
    id="06.encoder_block", symbol="EncoderBlock", points=2,
    title="the encoder block as a Module",
    reference=transformer.EncoderBlock, cases=_block_module_cases, run=run_block_module,
    requires=("03.module", "06.init_encoder_block", "06.encoder_block_forward",
              "06.encoder_block_backward"),
    mistakes=[
        Mistake("gradients overwritten",
                "backward *adds* into self.grads (+=), as lesson 03's layers do: zero_grad() is "
                "what clears them",
                _module_mistake(accumulate="        for name, grad in grads.items():\n"
                                           "            self.grads[name] = grad")),
        Mistake("a new gradient array at each backward",
                "add into the arrays already in self.grads (self.grads[name] += grad), as the "
                "docstring says: self.grads[name] = self.grads[name] + grad puts a new array "
                "there, and whatever holds the old one (a list from gradients()) misses the sum",
                _module_mistake(accumulate="        for name, grad in grads.items():\n"
                                           "            self.grads[name] = self.grads[name] + grad")),
        Mistake("forward with a copy of the parameters",
                "forward must read self.params, the arrays the optimizer updates in place: a "
                "separate copy never sees a training step",
                _OWN_COPY),
        Mistake("dropout on in evaluation",
                "pass training=self.training: after eval() the block must not drop anything",
                _module_mistake(training="True")),
        Mistake("parameters not registered",
                "register every parameter with self.add_parameter(name, value), in the order "
                "init_encoder_block returns them, or parameters() and the optimizer never see "
                "them",
                _module_mistake(register="        self.weights = init_encoder_block(dim, "
                                         "num_heads, ff_dim, rng, init_std)",
                                params="self.weights",
                                accumulate="        self.weight_grads = grads")),
        Mistake("mask not passed on",
                "forward(x, mask) hands the mask to encoder_block_forward",
                _module_mistake(mask="None")),
        Mistake("pre_ln not passed on",
                "pass pre_ln=self.pre_ln to encoder_block_forward",
                _module_mistake(pre_ln="False")),
    ],
)


LESSON = Lesson(
    id="06", slug="06_transformer", title="The Transformer encoder block",
    exercises=[feed_forward_forward, feed_forward_backward, add_layernorm_forward,
               add_layernorm_backward, init_encoder_block, encoder_block_forward,
               encoder_block_backward, encoder_block],
    prelude=PRELUDE,
)
