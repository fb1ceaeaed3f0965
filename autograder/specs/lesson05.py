"""Lesson 05 - Attention: exercise specs."""

import numpy as np

from solutions import attention

from ..compare import GRADIENT
from ..gradcheck import gradients_through, numerical_gradient
from ..spec import (THROUGH_CACHE, Case, Exercise, Lesson, Mistake, backward_driver,
                    dtypes_of, through_cache, watch)

# --------------------------------------------------------------------------- helpers


def _pad(lengths, T):
    """A tokenizer's attention mask (B, T): 1 for the first ``length`` tokens, then 0."""
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)


def _qkv(rng, lead, Tq, Tk, d, dv=None, scale=1.0):
    return {"q": rng.normal(scale=scale, size=(*lead, Tq, d)),
            "k": rng.normal(scale=scale, size=(*lead, Tk, d)),
            "v": rng.normal(size=(*lead, Tk, dv or d))}


def _pair(result, what):
    """``(out, cache)`` from a forward function, or a clear error."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"{what} must return the pair (out, cache), got {type(result).__name__}")
    return result


# --------------------------------------------------------------------------- attention


def run_attention(fn, case):
    """The output, the attention weights the cache holds (cache[3]), and its q, k, v: the
    inputs as they were given (scaling q in place would break the backward pass)."""
    out, cache = _pair(fn(*case.args.values(), **case.kwargs), "attention_forward")
    if not isinstance(cache, (tuple, list)) or len(cache) != 4:
        raise TypeError("the cache must be the tuple (q, k, v, weights) described in the docstring")
    if case.data.get("float32"):
        return {"dtype of out": str(np.asarray(out).dtype),
                "dtype of the weights (cache[3])": str(np.asarray(cache[3]).dtype)}
    return {"out": out, "attention weights (cache[3])": cache[3],
            "q, k, v in the cache (cache[:3], as given)": list(cache[:3])}


def _attention_cases(rng, small=False):
    """Several shapes and every kind of mask, fully masked rows included.

    ``small`` keeps every array to a few dozen entries (gradient checks).
    """
    T = 4 if small else 5
    left_padded = _pad([T - 2], T)[:, ::-1].copy()                  # padding first: [0, 0, 1, 1]
    cases = [
        Case(f"B=2, T={T - 1}, d=4, no mask", _qkv(rng, (2,), T - 1, T - 1, 4)),
        Case("B=1, H=2, Tq=2, Tk=4, d=3, dv=2" if small else "B=2, H=3, Tq=3, Tk=5, d=4, dv=6",
             _qkv(rng, (1, 2), 2, 4, 3, 2) if small else _qkv(rng, (2, 3), 3, 5, 4, 6)),
        Case("padding mask (B, 1, 1, T)", _qkv(rng, (2, 2), T, T, 3 if small else 4),
             {"mask": attention.padding_mask(_pad([T, T - 2], T))}),
        Case("causal mask (T, T)", _qkv(rng, (1 if small else 2, 2), T, T, 3 if small else 4),
             {"mask": attention.causal_mask(T)}),
        Case("a sequence of padding only (all its rows masked)", _qkv(rng, (2, 1), 3, 3, 2),
             {"mask": attention.padding_mask(_pad([2, 0], 3))}),
        Case("left padding with a causal mask (first rows fully masked)",
             _qkv(rng, (1, 2), T, T, 3),
             {"mask": attention.padding_mask(left_padded) & attention.causal_mask(T)}),
    ]
    if not small:
        cases += [
            Case("batch of one, a single key", _qkv(rng, (1,), 3, 1, 4, 2)),
            Case("large scores (about 1000)", _qkv(rng, (2,), 3, 4, 4, scale=30.0)),
            Case("float32 in, float32 out", {k: v.astype(np.float32) for k, v in
                                            _qkv(rng, (2,), 3, 3, 4).items()},
                 {"mask": attention.causal_mask(3)}, data={"float32": True}),
            Case("no batch axis: q (Tq, d), k (Tk, d)", _qkv(rng, (), 3, 4, 2)),
            Case("a masked key scores about 1000, the allowed ones about 0: the max is the "
                 "allowed keys'", _masked_giant(rng), {"mask": attention.causal_mask(3)}),
        ]
    return cases


def _masked_giant(rng):
    """q, k, v where a future key would dominate every score if the mask came too late."""
    qkv = _qkv(rng, (1,), 3, 3, 2, scale=0.1)
    qkv["q"][...] = 1.0
    qkv["k"][..., 2, :] = 800.0                              # key 2: scores 1131, masked for
    return qkv                                               # queries 0 and 1


_ATTENTION_NAN = """def attention_forward(q, k, v, mask=None):
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ v, (q, k, v, weights)
"""

attention_forward = Exercise(
    id="05.attention_forward", symbol="attention_forward", points=3,
    title="scaled dot-product attention with a mask",
    reference=attention.attention_forward, cases=_attention_cases, run=run_attention,
    requires=("01.softmax",),
    mistakes=[
        Mistake("no 1/sqrt(d)",
                "divide the scores by sqrt(d) (d = q.shape[-1]): without it the softmax "
                "saturates as d grows",
                "def attention_forward(q, k, v, mask=None):\n"
                "    scores = q @ np.swapaxes(k, -1, -2)\n"
                "    if mask is not None:\n"
                "        scores = np.where(mask, scores, -1e30)\n"
                "    weights = softmax(scores, axis=-1)\n"
                "    if mask is not None:\n"
                "        weights = weights * mask\n"
                "    return weights @ v, (q, k, v, weights)\n"),
        Mistake("mask applied after the softmax",
                "mask the scores before the softmax (set them to -inf): zeroing weights after "
                "it leaves rows that no longer sum to 1",
                "def attention_forward(q, k, v, mask=None):\n"
                "    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])\n"
                "    weights = softmax(scores, axis=-1)\n"
                "    if mask is not None:\n"
                "        weights = weights * mask\n"
                "    return weights @ v, (q, k, v, weights)\n"),
        Mistake("the max over the masked keys too",
                "take each row's maximum over the allowed keys only (mask with -inf first, "
                "then shift): a masked key scoring far above the others makes exp underflow "
                "to 0 for every allowed key (renormalising after the softmax fails the same way)",
                "def attention_forward(q, k, v, mask=None):\n"
                "    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])\n"
                "    top = scores.max(axis=-1, keepdims=True)\n"
                "    if mask is not None:\n"
                "        scores = np.where(mask, scores, -np.inf)\n"
                "    e = np.exp(scores - top)\n"
                "    total = e.sum(axis=-1, keepdims=True)\n"
                "    weights = e / np.where(total == 0, 1.0, total)\n"
                "    return weights @ v, (q, k, v, weights)\n"),
        Mistake("softmax over the queries",
                "each query's weights are a distribution over the keys: softmax along the "
                "last axis (Tk), not axis -2",
                "def attention_forward(q, k, v, mask=None):\n"
                "    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])\n"
                "    if mask is not None:\n"
                "        scores = np.where(mask, scores, -1e30)\n"
                "    weights = softmax(scores, axis=-2)\n"
                "    if mask is not None:\n"
                "        weights = weights * mask\n"
                "    return weights @ v, (q, k, v, weights)\n"),
        Mistake("NaN on a fully masked row",
                "a row whose keys are all masked is all -inf, and its softmax is 0/0 = NaN; "
                "give that row weights 0 (and so an output of 0)",
                _ATTENTION_NAN),
        Mistake("large negative fill, row not zeroed",
                "with a large negative number instead of -inf, a fully masked row gets uniform "
                "weights and averages every value; its weights and output must be 0",
                "def attention_forward(q, k, v, mask=None):\n"
                "    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])\n"
                "    if mask is not None:\n"
                "        scores = np.where(mask, scores, -1e9)\n"
                "    weights = softmax(scores, axis=-1)\n"
                "    return weights @ v, (q, k, v, weights)\n"),
        Mistake("no max shift",
                "exp overflows for large scores: subtract each row's maximum (over the allowed "
                "keys) before exp",
                "def attention_forward(q, k, v, mask=None):\n"
                "    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])\n"
                "    e = np.exp(scores)\n"
                "    if mask is not None:\n"
                "        e = e * mask\n"
                "    total = e.sum(axis=-1, keepdims=True)\n"
                "    weights = e / np.where(total > 0, total, 1.0)\n"
                "    return weights @ v, (q, k, v, weights)\n"),
    ],
)


def _attention_backward_cases(rng):
    cases = _attention_cases(rng, small=True)
    cases.append(Case("float32 in, float32 out", {k: v.astype(np.float32) for k, v in
                                                 _qkv(rng, (2,), 3, 3, 4).items()},
                      {"mask": attention.causal_mask(3)}, data={"float32": True}))
    for case in cases:
        out, _ = attention.attention_forward(*case.args.values(), **case.kwargs)
        case.data["dout"] = rng.normal(size=out.shape).astype(out.dtype)
    return cases


_attention_gradients = gradients_through(attention.attention_forward, ("q", "k", "v"))


def run_attention_backward(fn, case):
    gradients = backward_driver(attention.attention_forward)(fn, case)
    return dtypes_of(gradients) if case.data.get("float32") else gradients


def _expected_attention_backward(case):
    """Central differences; for float32 inputs, the dtypes of the reference's gradients."""
    if case.data.get("float32"):
        return run_attention_backward(attention.attention_backward, case)
    return _attention_gradients(case)


_ATTENTION_BACKWARD = """def attention_backward(dout, cache):
    q, k, v, w = cache
    dv = {dv}
    dw = dout @ np.swapaxes(v, -1, -2)
    ds = {ds}
    ds = ds {scale}
    return ds @ k, np.swapaxes(ds, -1, -2) @ q, dv
"""


def _backward_mistake(**parts):
    defaults = {"dv": "np.swapaxes(w, -1, -2) @ dout",
                "ds": "w * (dw - (dw * w).sum(axis=-1, keepdims=True))",
                "scale": "/ math.sqrt(q.shape[-1])"}
    defaults.update(parts)
    return _ATTENTION_BACKWARD.format(**defaults)


attention_backward = Exercise(
    id="05.attention_backward", symbol="attention_backward", points=3,
    title="its backward pass: dq, dk, dv",
    reference=attention.attention_backward, cases=_attention_backward_cases,
    run=run_attention_backward, expected=_expected_attention_backward,
    tolerance=GRADIENT,
    mistakes=[
        Mistake("no 1/sqrt(d)",
                "the scores were divided by sqrt(d), so dq and dk are too: dscores / sqrt(d)",
                _backward_mistake(scale="")),
        Mistake("softmax backward without the row sum",
                "the softmax couples a row: dS = P * (dP - sum_j(dP * P)), the sum over the keys "
                "of each row",
                _backward_mistake(ds="w * dw")),
        Mistake("row sum over the queries",
                "in dS = P * (dP - sum(dP * P)) the sum runs over the keys (axis -1), the axis "
                "the softmax normalised",
                _backward_mistake(ds="w * (dw - (dw * w).sum(axis=-2, keepdims=True))")),
        Mistake("dv without the transpose",
                "out = P @ v, so dv = P^T @ dout (swap the last two axes of P)",
                _backward_mistake(dv="w @ dout")),
    ],
)

# --------------------------------------------------------------------------- masks


def _padding_cases(rng):
    lengths = rng.integers(1, 8, size=4)
    lengths[0] = 7
    return [
        Case("2 x 5, the second sequence padded", {"attention_mask": _pad([5, 3], 5)}),
        Case("no padding, batch of one", {"attention_mask": np.ones((1, 3), dtype=np.int64)}),
        Case("a sequence of padding only", {"attention_mask": _pad([2, 0, 1], 4)}),
        Case("int32, length 1", {"attention_mask": np.array([[1], [0]], dtype=np.int32)}),
        Case("4 x 7, random lengths", {"attention_mask": _pad(lengths, 7)}),
    ]


padding_mask = Exercise(
    id="05.padding_mask", symbol="padding_mask", points=1,
    title="the padding mask, shaped to broadcast",
    reference=attention.padding_mask, cases=_padding_cases,
    mistakes=[
        Mistake("padding marked True",
                "True means \"may attend\": real tokens (1) are True, padding (0) is False",
                "def padding_mask(attention_mask):\n"
                "    return (attention_mask == 0)[:, None, None, :]\n"),
        Mistake("mask over the queries",
                "padding hides *keys*: the T axis goes last, (B, 1, 1, T), so that it lines up "
                "with the keys axis of the scores (B, H, Tq, Tk)",
                "def padding_mask(attention_mask):\n"
                "    return (attention_mask != 0)[:, None, :, None]\n"),
        Mistake("head axis missing",
                "add two axes, (B, 1, 1, T): one for the heads and one for the queries",
                "def padding_mask(attention_mask):\n"
                "    return (attention_mask != 0)[:, None, :]\n"),
        Mistake("integers, not booleans",
                "return booleans (attention_mask != 0): an int mask used in np.where or `&` "
                "works, but indexing with it picks rows 0 and 1 instead",
                "def padding_mask(attention_mask):\n"
                "    return attention_mask[:, None, None, :]\n"),
    ],
)


def _causal_cases(rng):
    return [Case(f"T={T}", {"T": T}) for T in (4, 1, 2, 7)]


causal_mask = Exercise(
    id="05.causal_mask", symbol="causal_mask", points=1,
    title="the causal mask",
    reference=attention.causal_mask, cases=_causal_cases,
    mistakes=[
        Mistake("the future instead of the past",
                "query i (a row) may see keys j <= i: True on and *below* the diagonal (np.tril)",
                "def causal_mask(T):\n"
                "    return np.triu(np.ones((T, T), dtype=bool))\n"),
        Mistake("diagonal excluded",
                "a position may attend to itself: keep the diagonal (j <= i, not j < i); "
                "without it the first row has no key at all",
                "def causal_mask(T):\n"
                "    return np.tril(np.ones((T, T), dtype=bool), k=-1)\n"),
        Mistake("True where masked",
                "True means \"may attend\" (as in torch's boolean attn_mask), so the allowed "
                "past and present are True",
                "def causal_mask(T):\n"
                "    return np.triu(np.ones((T, T), dtype=bool), k=1)\n"),
        Mistake("floats, not booleans", "return a bool array (np.ones((T, T), dtype=bool))",
                "def causal_mask(T):\n"
                "    return np.tril(np.ones((T, T)))\n"),
    ],
)

# --------------------------------------------------------------------------- heads


def _split_cases(rng):
    def case(B, T, D, H):
        return Case(f"B={B}, T={T}, D={D}, H={H}", {"x": rng.normal(size=(B, T, D)), "num_heads": H})
    float32 = case(2, 3, 6, 3)
    float32.name += ", float32"
    float32.args["x"] = float32.args["x"].astype(np.float32)
    return [case(2, 3, 8, 2), case(1, 4, 6, 3), case(2, 5, 4, 1), case(3, 2, 12, 4),
            case(2, 3, 4, 4), float32]


split_heads = Exercise(
    id="05.split_heads", symbol="split_heads", points=1,
    title="split the features into heads",
    reference=attention.split_heads, cases=_split_cases,
    no_loops="one reshape to (B, T, H, dh) and one transpose to (B, H, T, dh) split every head "
             "at once",
    mistakes=[
        Mistake("reshape without transpose",
                "reshaping (B, T, D) straight to (B, H, T, dh) mixes tokens into heads; "
                "reshape to (B, T, H, dh), then transpose to (B, H, T, dh)",
                "def split_heads(x, num_heads):\n"
                "    B, T, D = x.shape\n"
                "    return x.reshape(B, num_heads, T, D // num_heads)\n"),
        Mistake("heads interleaved",
                "head h owns the contiguous features h*dh : (h+1)*dh; reshape to (B, T, H, dh), "
                "with H before dh",
                "def split_heads(x, num_heads):\n"
                "    B, T, D = x.shape\n"
                "    return x.reshape(B, T, D // num_heads, num_heads).transpose(0, 3, 1, 2)\n"),
        Mistake("head axis not moved forward",
                "the result is (B, H, T, dh): transpose the (B, T, H, dh) reshape with "
                "(0, 2, 1, 3)",
                "def split_heads(x, num_heads):\n"
                "    B, T, D = x.shape\n"
                "    return x.reshape(B, T, num_heads, D // num_heads)\n"),
    ],
)


def _merge_cases(rng):
    def case(B, H, T, dh):
        return Case(f"B={B}, H={H}, T={T}, dh={dh}", {"x": rng.normal(size=(B, H, T, dh))})
    return [case(2, 2, 3, 4), case(1, 3, 4, 2), case(2, 1, 5, 4), case(3, 4, 2, 3),
            case(2, 4, 3, 1),
            Case("float32 in, float32 out", {"x": rng.normal(size=(2, 2, 3, 2))
                                             .astype(np.float32)})]


merge_heads = Exercise(
    id="05.merge_heads", symbol="merge_heads", points=1,
    title="put the heads back side by side",
    reference=attention.merge_heads, cases=_merge_cases,
    no_loops="one transpose back to (B, T, H, dh) and one reshape to (B, T, H * dh) merge "
             "every head at once",
    mistakes=[
        Mistake("reshape without transpose",
                "move the heads back next to the features first, transpose(0, 2, 1, 3) to "
                "(B, T, H, dh), then reshape to (B, T, H * dh)",
                "def merge_heads(x):\n"
                "    B, H, T, dh = x.shape\n"
                "    return x.reshape(B, T, H * dh)\n"),
        Mistake("heads interleaved",
                "head h's features go to the contiguous columns h*dh : (h+1)*dh: transpose to "
                "(B, T, H, dh), not (B, T, dh, H)",
                "def merge_heads(x):\n"
                "    B, H, T, dh = x.shape\n"
                "    return x.transpose(0, 2, 3, 1).reshape(B, T, H * dh)\n"),
        Mistake("heads not flattened",
                "the result is (B, T, H * dh): reshape after the transpose",
                "def merge_heads(x):\n"
                "    return x.transpose(0, 2, 1, 3)\n"),
    ],
)

# --------------------------------------------------------------------------- multi-head attention
# The weights travel in case.data["params"] (so that the case's description stays short);
# the drivers pass them as the second argument.

PARAM_NAMES = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo")


def _params(rng, D):
    return {name: rng.normal(scale=0.5, size=(D, D) if name[0] == "W" else (D,))
            for name in PARAM_NAMES}


def _forward(fn, case):
    return fn(case.args["x"], case.data["params"], case.args["num_heads"], **case.kwargs)


def run_mha(fn, case):
    out, cache = _pair(_forward(fn, case), "multi_head_attention_forward")
    if not isinstance(cache, (tuple, list)) or len(cache) != 4 or \
            not isinstance(cache[2], (tuple, list)) or len(cache[2]) != 4:
        raise TypeError("the cache must be the tuple (x, params, attention_cache, context) "
                        "described in the docstring")
    return {"out": out, "attention weights (cache[2][3])": cache[2][3],
            "the merged heads before Wo (cache[3])": cache[3],
            THROUGH_CACHE: through_cache(attention.multi_head_attention_backward, out, cache)}


def run_mha_backward(fn, case):
    _, cache = _forward(attention.multi_head_attention_forward, case)
    return fn(case.data["dout"], watch("cache", cache))


def _expected_mha_gradients(case):
    """Central differences of sum(out * dout) for x and for every parameter."""
    x, num_heads = case.args["x"], case.args["num_heads"]
    params, dout = case.data["params"], case.data["dout"]

    def loss(x, params):
        out, _ = attention.multi_head_attention_forward(x, params, num_heads, **case.kwargs)
        return float(np.sum(out * dout))

    dx = numerical_gradient(lambda value: loss(value, params), x)
    grads = {name: numerical_gradient(lambda value, name=name: loss(x, {**params, name: value}),
                                      params[name])
             for name in params}
    return dx, grads


def _mha_cases(rng, small=False):
    def case(name, B, T, D, H, lengths=None, causal=False):
        kwargs = {}
        if lengths is not None:
            kwargs["mask"] = attention.padding_mask(_pad(lengths, T))
        if causal:
            kwargs["mask"] = attention.causal_mask(T)
        return Case(name, {"x": rng.normal(size=(B, T, D)), "num_heads": H}, kwargs,
                    {"params": _params(rng, D)})
    if small:
        cases = [
            case("B=2, T=3, D=4, H=2, no mask", 2, 3, 4, 2),
            case("padding mask", 2, 3, 4, 2, lengths=[3, 2]),
            case("causal mask, one head (H=1)", 1, 3, 3, 1, causal=True),
            case("head size 1 (H=D=4)", 1, 3, 4, 4),
            case("a sequence of padding only", 2, 2, 4, 2, lengths=[2, 0]),
        ]
        for c in cases:
            out, _ = _forward(attention.multi_head_attention_forward, c)
            c.data["dout"] = rng.normal(size=out.shape)
        return cases
    return [
        case("B=2, T=4, D=8, H=2, no mask", 2, 4, 8, 2),
        case("padding mask", 2, 5, 6, 3, lengths=[5, 2]),
        case("causal mask", 2, 4, 8, 4, causal=True),
        case("one head (H=1), batch of one", 1, 3, 4, 1),
        case("head size 1 (H=D=4)", 2, 3, 4, 4),
        case("a sequence of padding only", 2, 3, 4, 2, lengths=[3, 0]),
    ]


_MHA_TEMPLATE = """def multi_head_attention_forward(x, params, num_heads, mask=None):
    B, T, D = x.shape
    p = params
    q = {split}(x @ p["Wq"]{bq}, num_heads)
    k = {split}(x @ p["Wk"]{bk}, num_heads)
    v = {split}(x @ p["Wv"]{bv}, num_heads)
    heads, attention_cache = {attend}
    context = {merge}(heads)
    return {out}, (x, params, attention_cache, context)
"""


def _mha_mistake(**parts):
    defaults = {"split": "split_heads", "merge": "merge_heads", "bq": ' + p["bq"]',
                "bk": ' + p["bk"]', "bv": ' + p["bv"]',
                "attend": "attention_forward(q, k, v, mask)",
                "out": 'context @ p["Wo"] + p["bo"]'}
    defaults.update(parts)
    source = _MHA_TEMPLATE.format(**defaults)
    if defaults["split"] != "split_heads":
        source += ("def reshape_heads(y, num_heads):\n"
                   "    B, T, D = y.shape\n"
                   "    return y.reshape(B, num_heads, T, D // num_heads)\n"
                   "def reshape_back(h):\n"
                   "    B, H, T, dh = h.shape\n"
                   "    return h.reshape(B, T, H * dh)\n")
    if "attend_wide" in defaults["attend"]:
        source += ("def attend_wide(q, k, v, mask, D):\n"
                   "    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(D)\n"
                   "    if mask is not None:\n"
                   "        scores = np.where(mask, scores, -1e30)\n"
                   "    w = softmax(scores, axis=-1)\n"
                   "    if mask is not None:\n"
                   "        w = w * mask\n"
                   "    return w @ v, (q, k, v, w)\n")
    return source


multi_head_attention_forward = Exercise(
    id="05.multi_head_attention_forward", symbol="multi_head_attention_forward", points=2,
    title="multi-head self-attention, forward",
    reference=attention.multi_head_attention_forward, cases=_mha_cases, run=run_mha,
    requires=("01.softmax", "05.attention_forward", "05.split_heads", "05.merge_heads"),
    mistakes=[
        Mistake("heads split with a reshape but no transpose",
                "x @ Wq + bq is (B, T, D): reshape it to (B, T, H, dh) and transpose to "
                "(B, H, T, dh) (split_heads); a straight reshape to (B, H, T, dh) mixes tokens "
                "into heads",
                _mha_mistake(split="reshape_heads", merge="reshape_back")),
        Mistake("scaled by the model width",
                "each head's scores are divided by sqrt(dh), its own size (dh = D / H), not "
                "by sqrt(D)",
                _mha_mistake(attend="attend_wide(q, k, v, mask, D)")),
        Mistake("output projection missing",
                "after merging the heads, project: out = context @ Wo + bo",
                _mha_mistake(out="context")),
        Mistake("mask not passed on", "pass the mask to attention_forward",
                _mha_mistake(attend="attention_forward(q, k, v)")),
        Mistake("biases left out", "each projection is x @ W + b: add bq, bk and bv",
                _mha_mistake(bq="", bk="", bv="")),
    ],
)

_MHA_BACKWARD_TEMPLATE = """def multi_head_attention_backward(dout, cache):
    x, p, attention_cache, context = cache
    B, T, D = x.shape
    H = attention_cache[0].shape[1]
    dcontext = {dcontext}
    dqh, dkh, dvh = attention_backward(split_heads(dcontext, H), attention_cache)
    dq, dk, dv = {merge}(dqh), {merge}(dkh), {merge}(dvh)
    X, C, G = x.reshape(-1, D), context.reshape(-1, D), dout.reshape(-1, D)
    def dW(inp, dy):
        return {dW}
    def db(dy):
        return {db}
    grads = {{"Wq": dW(X, dq), "bq": db(dq), "Wk": dW(X, dk), "bk": db(dk),
             "Wv": dW(X, dv), "bv": db(dv), "Wo": dW(C, G), "bo": db(G)}}
    dx = {dx}
    return dx, grads
"""


def _mha_backward_mistake(**parts):
    defaults = {"dcontext": 'dout @ p["Wo"].T', "merge": "merge_heads",
                "dW": "inp.T @ dy.reshape(-1, D)", "db": "dy.reshape(-1, D).sum(axis=0)",
                "dx": 'dq @ p["Wq"].T + dk @ p["Wk"].T + dv @ p["Wv"].T'}
    defaults.update(parts)
    source = _MHA_BACKWARD_TEMPLATE.format(**defaults)
    if defaults["merge"] != "merge_heads":
        source += ("def reshape_back(h):\n"
                   "    B, H, T, dh = h.shape\n"
                   "    return h.reshape(B, T, H * dh)\n")
    return source


multi_head_attention_backward = Exercise(
    id="05.multi_head_attention_backward", symbol="multi_head_attention_backward", points=3,
    title="multi-head self-attention, backward",
    reference=attention.multi_head_attention_backward,
    cases=lambda rng: _mha_cases(rng, small=True), run=run_mha_backward,
    expected=_expected_mha_gradients, tolerance=GRADIENT,
    requires=("05.attention_backward", "05.split_heads", "05.merge_heads"),
    mistakes=[
        Mistake("dx from the queries only",
                "x feeds the queries, the keys and the values: dx is the sum of the three, "
                "dq @ Wq^T + dk @ Wk^T + dv @ Wv^T",
                _mha_backward_mistake(dx='dq @ p["Wq"].T')),
        Mistake("weight gradients transposed",
                "for y = x @ W the gradient is dW = x^T @ dy (D_in, D_out), not dy^T @ x",
                _mha_backward_mistake(dW="dy.reshape(-1, D).T @ inp")),
        Mistake("heads merged with a reshape only",
                "the backward of split_heads is merge_heads (transpose back, then reshape); "
                "a bare reshape mixes tokens and heads",
                _mha_backward_mistake(merge="reshape_back")),
        Mistake("bias gradients averaged",
                "a bias is added to every token of every sequence, so its gradient is the *sum* "
                "of dy over the batch and the tokens",
                _mha_backward_mistake(db="dy.reshape(-1, D).mean(axis=0)")),
        Mistake("output projection skipped",
                "go back through out = context @ Wo + bo first: dcontext = dout @ Wo^T",
                _mha_backward_mistake(dcontext="dout")),
    ],
)


LESSON = Lesson(
    id="05", slug="05_attention", title="Attention",
    exercises=[padding_mask, causal_mask, attention_forward, attention_backward, split_heads,
               merge_heads, multi_head_attention_forward, multi_head_attention_backward],
)
