"""Lesson 18 - A small GPT: causal language modelling and generation: exercise specs.

The model exercises run on lesson 07's small perturbed models; the decoding
exercises take their uniform numbers from the case, so that sampling is
graded exactly; the cache is graded against its definition on cases where
several new tokens arrive at once.
"""

import numpy as np

from solutions import gpt
from solutions.bert import mlm_head_forward
from solutions.losses import softmax

from ..compare import _describe_type
from ..spec import Case, Exercise, Lesson, Mistake, returns
from .lesson07 import _cfg, _config, _pad, _pair, _pick, perturbed_params

PRELUDE = "import math\n\nimport numpy as np\n"

# --------------------------------------------------------------------------- causal_attention_mask


def _left_pad(lengths, T):
    """An attention mask padded on the left: 0 first, then ``length`` ones."""
    return _pad(lengths, T)[:, ::-1].copy()


def _mask_cases(rng):
    return [
        Case("B=2, T=5, right padding", {"attention_mask": _pad([5, 3], 5)}),
        Case("left padding (the first rows of sequence 1 see nothing)",
             {"attention_mask": _left_pad([4, 2], 4)}),
        Case("no padding, batch of one, T=1", {"attention_mask": np.ones((1, 1), np.int64)}),
        Case("bool mask, B=3, T=6", {"attention_mask": _pad([6, 1, 4], 6).astype(bool)}),
    ]


_MASK = """def causal_attention_mask(attention_mask):
    B, T = attention_mask.shape
    past = {past}
    real = {real}
    return {out}
"""


def _mask_mistake(**parts):
    defaults = {"past": "np.tril(np.ones((T, T), dtype=bool))",
                "real": "(attention_mask != 0)[:, None, None, :]",
                "out": "past[None, None] & real"}
    return _MASK.format(**dict(defaults, **parts))


causal_attention_mask = Exercise(
    id="18.causal_attention_mask", symbol="causal_attention_mask", points=1,
    title="the causal mask of a padded batch",
    reference=gpt.causal_attention_mask, cases=_mask_cases,
    requires=("05.causal_mask", "05.padding_mask"),
    mistakes=[
        Mistake("the causal mask alone",
                "combine the two masks with &: causal_mask(T) (the past) and "
                "padding_mask(attention_mask) (the real keys); with left padding the real "
                "tokens would otherwise attend to the padding",
                _mask_mistake(out="np.broadcast_to(past[None, None], (B, 1, T, T))")),
        Mistake("the future instead of the past",
                "query i (a row) may see keys j <= i: np.tril, True on and below the diagonal",
                _mask_mistake(past="np.triu(np.ones((T, T), dtype=bool))")),
        Mistake("padding over the queries",
                "padding hides keys: the sequence's mask goes on the last axis, "
                "attention_mask[:, None, None, :]",
                _mask_mistake(real="(attention_mask != 0)[:, None, :, None]")),
        Mistake("padding over the queries too",
                "padding hides keys only: attention_mask[:, None, None, :], as lesson 05's "
                "padding_mask; a padding position's own row keeps its past (its output is never "
                "used, and a row with nothing to see would need special care)",
                _mask_mistake(real="((attention_mask != 0)[:, None, None, :] "
                                   "& (attention_mask != 0)[:, None, :, None])")),
        Mistake("no head axis",
                "the result is (B, 1, T, T): the axis of size 1 broadcasts over the heads",
                _mask_mistake(out="past[None] & (attention_mask != 0)[:, None, :]")),
    ],
)

# --------------------------------------------------------------------------- gpt_forward


def _forward_call(fn, case, params=None):
    rng = np.random.default_rng(int(case.data["seed"]))
    return fn(case.data["params"] if params is None else params, _cfg(case),
              case.args["input_ids"], rng=rng, **case.kwargs)


def run_gpt_forward(fn, case):
    hidden, cache = _pair(_forward_call(fn, case), "gpt_forward")
    if not isinstance(cache, dict) or sorted(map(str, cache)) != ["embeddings", "final_ln", "layers"]:
        raise TypeError("the cache is bert_forward's dict (keys embeddings, layers, final_ln), "
                        f"so that bert_backward can use it; got {_describe_type(cache)}")
    from solutions.bert import bert_backward
    grads = bert_backward(case.data["dout"], cache)
    return {"hidden": hidden, "bert_backward(dout, your cache)": grads}


def _model_case(rng, name, B, T, lengths=None, left=False, L=2, D=8, H=2, F=16, V=11, P=8,
                dropout=0.0, pre_ln=False, eps=None, **kwargs):
    config = _config(V=V, D=D, L=L, H=H, F=F, P=P, dropout=dropout, pre_ln=pre_ln,
                     **({} if eps is None else {"layer_norm_eps": eps}))
    kw = dict(kwargs)
    if lengths is not None:
        kw["attention_mask"] = (_left_pad if left else _pad)(lengths, T)
    params = perturbed_params(rng, config)
    return Case(name, {"input_ids": rng.integers(0, V, size=(B, T))}, kw,
                {"params": params, "config": config, "seed": int(rng.integers(2 ** 31)),
                 "dout": rng.normal(size=(B, T, D))})


def _forward_cases(rng):
    cases = [
        _model_case(rng, "B=2, T=5, 2 layers, right padding", 2, 5, lengths=[5, 3]),
        _model_case(rng, "left padding", 2, 5, lengths=[5, 3], left=True),
        _model_case(rng, "attention_mask=None", 2, 4),
        _model_case(rng, "pre-LN (GPT-2's layout), 3 layers", 2, 5, lengths=[5, 4], pre_ln=True,
                    L=3),
        _model_case(rng, "dropout 0.3 while training", 2, 4, lengths=[4, 3], dropout=0.3,
                    training=True),
        _model_case(rng, "dropout 0.3, evaluation", 2, 4, lengths=[4, 2], dropout=0.3),
        _model_case(rng, "one layer, one head, batch of one", 1, 6, L=1, H=1),
        _model_case(rng, "layer_norm_eps 1e-5 (GPT-2's)", 2, 4, lengths=[4, 3], eps=1e-5),
    ]
    for case in cases:     # the encoder's parameters only: the heads play no part here
        case.data["params"] = _pick(case.data["params"], "embeddings.", "layers.", "final.")
    return cases


_FORWARD = """def gpt_forward(params, config, input_ids, attention_mask=None, training=False, rng=None):
    T = input_ids.shape[1]
    mask = {mask}
    hidden, embeddings_cache = embeddings_forward(input_ids, np.zeros_like(input_ids), params,
                                                  config, training, rng)
    caches = []
    for i in range(config.num_layers):
        prefix = "layers.{{}}.".format(i)
        block = {{k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}}
        hidden, c = encoder_block_forward(hidden, block, config.num_heads, mask,
                                          pre_ln=config.pre_ln, dropout_p=config.dropout,
                                          training={training}, rng=rng,
                                          eps=config.layer_norm_eps)
        caches.append(c)
    final = None
    if {final}:
        hidden, final = layernorm_forward(hidden, params["final.ln_gamma"],
                                          params["final.ln_beta"], config.layer_norm_eps)
    return hidden, {{"embeddings": embeddings_cache, "layers": caches, "final_ln": final}}
"""


def _forward_mistake(**parts):
    defaults = {"mask": "causal_mask(T) if attention_mask is None else "
                        "causal_attention_mask(attention_mask)",
                "training": "training", "final": "config.pre_ln"}
    return _FORWARD.format(**dict(defaults, **parts))


gpt_forward = Exercise(
    id="18.gpt_forward", symbol="gpt_forward", points=2,
    title="lesson 07's encoder with a causal mask",
    reference=gpt.gpt_forward, cases=_forward_cases, run=run_gpt_forward,
    requires=("18.causal_attention_mask", "05.causal_mask", "05.padding_mask",
              "07.embeddings_forward", "06.encoder_block_forward", "03.layernorm_forward"),
    mistakes=[
        Mistake("BERT's padding mask: every position sees the future",
                "a GPT position reads only its past: give every block "
                "causal_attention_mask(attention_mask), not padding_mask(attention_mask)",
                _forward_mistake(mask="None if attention_mask is None else "
                                      "padding_mask(attention_mask)")),
        Mistake("the padding ignored",
                "the causal mask alone lets real tokens attend to the padding on the left: use "
                "causal_attention_mask(attention_mask) when there is an attention mask",
                _forward_mistake(mask="causal_mask(T)")),
        Mistake("final LayerNorm missing (pre-LN)",
                "a pre-LN model ends with one more LayerNorm ('final.ln_gamma', 'final.ln_beta')",
                _forward_mistake(final="False")),
        Mistake("the padding masked over the queries",
                "padding hides keys, not queries: causal_attention_mask(attention_mask) puts "
                "the sequence's mask on the last axis; on the queries' axis a real token still "
                "sees the padding on its left",
                _forward_mistake(mask="causal_mask(T) if attention_mask is None else "
                                      "causal_mask(T) & (attention_mask != 0)[:, None, :, None]")),
        Mistake("dropout active in evaluation",
                "pass `training` on to every block: with training=False nothing is dropped",
                _forward_mistake(training="True")),
        Mistake("the LayerNorms' eps left at its default",
                "pass eps=config.layer_norm_eps to every block (and the final LayerNorm): "
                "GPT-2 uses 1e-5, not the blocks' default 1e-12",
                _forward_mistake().replace("eps=config.layer_norm_eps", "eps=1e-12")),
    ],
)

# --------------------------------------------------------------------------- gpt_loss_and_grads


def run_gpt_loss(fn, case):
    rng = np.random.default_rng(int(case.data["seed"]))
    result = fn(case.data["params"], _cfg(case), dict(case.data["batch"]), rng=rng, **case.kwargs)
    if not (isinstance(result, tuple) and len(result) == 3):
        raise TypeError("gpt_loss_and_grads returns (loss, grads, stats); got "
                        + _describe_type(result))
    loss, grads, stats = result
    if not isinstance(stats, dict):
        raise TypeError(f"stats is a dict; got {_describe_type(stats)}")
    missing = [key for key in ("loss", "accuracy", "num_predicted") if key not in stats]
    if missing:
        raise KeyError(f"stats lacks {missing}: its keys are 'loss', 'accuracy' and "
                       "'num_predicted' (lesson 07's 'masked_accuracy' and 'num_masked' are "
                       f"renamed here); got {sorted(map(str, stats))}")
    return {"loss": np.float64(loss), "grads": grads,
            "stats": {key: stats[key] for key in ("loss", "accuracy", "num_predicted")}}


def _loss_cases(rng):
    def case(name, sequences, **kw):
        from solutions.objectives import CausalLMCollator
        c = _model_case(rng, name, 1, 1, **kw)
        V = c.data["config"]["vocab_size"]
        seqs = [rng.integers(5, V, size=n).tolist() for n in sequences]
        c.data["batch"] = CausalLMCollator(0)(seqs)
        c.args = {}
        return c
    cases = [
        case("3 sequences of lengths 6, 3, 5 (right padding)", [6, 3, 5]),
        case("pre-LN, 1 layer", [4, 4], pre_ln=True, L=1),
        case("dropout 0.2 while training", [5, 4], dropout=0.2, training=True),
        case("a batch of one sequence of length 2", [2]),
        case("compute_grads=False", [5, 3], compute_grads=False),
    ]
    # left padding: only the attention mask keeps the real tokens from the padding before them
    left = case("left padding: the attention mask matters", [6, 3, 5])
    batch = left.data["batch"]
    for row in range(len(batch["input_ids"])):
        n = int(batch["attention_mask"][row].sum())
        for key in ("input_ids", "attention_mask", "labels"):
            batch[key][row] = np.roll(batch[key][row], len(batch[key][row]) - n)
    cases.append(left)
    no_labels = case("no position to predict (every label -100)", [3, 2])
    no_labels.data["batch"]["labels"][:] = -100
    # At random initialisation the model predicts no label, so an accuracy with a wrong
    # numerator or denominator would still be 0: here every other label is what it predicts.
    half_right = case("every other label is the model's own guess", [6, 4, 5])
    batch = half_right.data["batch"]
    hidden, _ = gpt.gpt_forward(half_right.data["params"], _cfg(half_right), batch["input_ids"],
                                batch["attention_mask"])
    flat = batch["labels"].reshape(-1)
    positions = np.flatnonzero(flat != -100)[::2]
    logits, _ = mlm_head_forward(hidden.reshape(-1, hidden.shape[-1])[positions],
                                 half_right.data["params"], _cfg(half_right))
    flat[positions] = logits.argmax(axis=-1)
    return cases + [no_labels, half_right]


_LOSS = """def gpt_loss_and_grads(params, config, batch, training=False, rng=None, compute_grads=True):
    hidden, cache = {forward}(params, config, batch["input_ids"], {mask_arg},
                                training={training}, rng=rng)
    B, T, D = hidden.shape
    labels = batch["labels"].reshape(-1)
    positions = np.flatnonzero(labels != -100)
    targets = labels[positions]
    logits, head_cache = mlm_head_forward(hidden.reshape(-1, D)[positions], params, config)
    loss = cross_entropy(logits, targets)
    n = int(positions.size)
    stats = {{"loss": loss, "num_predicted": n,
             "accuracy": {accuracy}}}
    if not compute_grads:
        return loss, None, stats
    dselected, head_grads = mlm_head_backward(cross_entropy_grad(logits, targets), head_cache)
    dhidden = np.zeros((B * T, D))
    dhidden[positions] = dselected
    encoder_grads = bert_backward(dhidden.reshape(B, T, D), cache)
    grads = {start}
    for part in (encoder_grads, head_grads):
        for name, g in part.items():
            {accumulate}
    return loss, grads, stats
"""


def _loss_mistake(**parts):
    defaults = {"forward": "gpt_forward", "mask_arg": "batch.get('attention_mask')",
                "training": "training",
                "start": "{name: np.zeros_like(value) for name, value in params.items()}",
                "accumulate": "grads[name] = grads[name] + g",
                "accuracy": "float(np.mean(logits.argmax(-1) == targets)) if n else 0.0"}
    return _LOSS.format(**dict(defaults, **parts))


gpt_loss_and_grads = Exercise(
    id="18.gpt_loss_and_grads", symbol="gpt_loss_and_grads", points=3,
    title="the next-token loss and every parameter's gradient",
    reference=gpt.gpt_loss_and_grads, cases=_loss_cases, run=run_gpt_loss,
    requires=("18.gpt_forward", "07.bert_forward", "07.bert_backward", "07.mlm_head_forward",
              "07.mlm_head_backward", "01.cross_entropy", "01.cross_entropy_grad"),
    mistakes=[
        Mistake("lesson 07's bidirectional encoder",
                "read the batch with gpt_forward: with bert_forward position t sees the token "
                "t + 1 it must predict, and the loss says nothing about writing",
                _loss_mistake(forward="bert_forward", mask_arg="None, batch.get('attention_mask')")),
        Mistake("the tied weight's two gradients: one overwrites the other",
                "embeddings.word gets a gradient from the lookup (bert_backward) and one from "
                "the tied decoder (mlm_head_backward): add them",
                _loss_mistake(accumulate="grads[name] = g")),
        Mistake("only the parameters used get a gradient",
                "return a gradient for every parameter, zeros for the pooler and the "
                "classifier, so that an optimizer can treat them all alike",
                _loss_mistake(start="{}", accumulate="grads[name] = grads.get(name, 0) + g")),
        Mistake("dropout active in evaluation (or never)",
                "pass `training` on to gpt_forward",
                _loss_mistake(training="False")),
        Mistake("the labels shifted a second time",
                "the collator has already shifted the labels: labels[:, t] is the token after "
                "position t, so position t's hidden vector goes with labels[:, t]; shifting "
                "again trains the model to predict two tokens ahead",
                _loss_mistake().replace(
                    '    labels = batch["labels"].reshape(-1)\n',
                    '    labels = np.concatenate([batch["labels"][:, 1:], np.full((B, 1), -100)],\n'
                    '                            axis=1).reshape(-1)\n')),
        Mistake("the attention mask not passed on",
                "give gpt_forward the batch's attention_mask: with left padding the real tokens "
                "would otherwise attend to the padding before them",
                _loss_mistake(mask_arg="None")),
        Mistake("accuracy over every position",
                "the accuracy is the share of the predicted positions (label not -100) whose "
                "top score is the label: divide by their number, not by B * T",
                _loss_mistake(accuracy="float((logits.argmax(-1) == targets).sum() / labels.size)")),
        Mistake("accuracy counted, not shared",
                "the accuracy is a share in [0, 1]: the correct predictions divided by "
                "num_predicted",
                _loss_mistake(accuracy="float((logits.argmax(-1) == targets).sum())")),
    ],
)

# --------------------------------------------------------------------------- sample_next_token


def _safe_u(rng, logits, temperature):
    """Uniform numbers at least 1e-6 away from every cumulative probability of their row."""
    if temperature == 0:
        return rng.random(logits.shape[0])
    with np.errstate(all="ignore"):
        cdf = np.cumsum(softmax(logits / temperature), axis=-1)
    u = rng.random(logits.shape[0])
    for b in range(len(u)):
        while np.abs(cdf[b] - u[b]).min() < 1e-6:
            u[b] = rng.random()
    return u


def _sample_cases(rng):
    def case(name, logits, temperature=1.0, pass_temperature=True):
        u = _safe_u(rng, logits, temperature)
        kwargs = {"temperature": temperature} if pass_temperature else {}
        return Case(name, {"logits": logits, "u": u}, kwargs)
    flat = rng.normal(size=(6, 8))
    filtered = rng.normal(size=(4, 10)) * 2
    filtered[:, ::3] = -np.inf
    return [
        case("B=6, V=8, temperature 1 (the default)", flat, pass_temperature=False),
        case("temperature 0.5 (sharper)", rng.normal(size=(6, 8)), 0.5),
        case("temperature 2 (flatter)", rng.normal(size=(6, 8)) * 2, 2.0),
        case("temperature 0: greedy", rng.normal(size=(5, 7)), 0.0),
        case("logits in the thousands", rng.normal(size=(3, 6)) * 2 + 1000.0, 1.0),
        case("-inf logits (filtered tokens) never chosen", filtered, 0.8),
        case("many draws of one row: a distribution", np.repeat(rng.normal(size=(1, 5)), 40, 0),
             1.0),
        # exact binary fractions: u lands on a cumulative sum, which it must exceed
        Case("u on a boundary: probabilities (1/2, 1/2) and u = 1/2 give token 1",
             {"logits": np.zeros((1, 2)), "u": np.array([0.5])}),
        Case("u = 0 never picks a token of probability 0",
             {"logits": np.array([[-np.inf, 0.0, 0.0]]), "u": np.array([0.0])}),
        # softmax's cumulative sum ends at 0.9999999999999999 here: u below 1 but above that
        # is still a draw from the distribution, of the last token that has a probability
        Case("u just below 1, probabilities that sum to just below 1: the last possible token",
             {"logits": np.array([[-np.inf, -0.63, -0.38, -1.09, -1.28, 0.63, 0.58, -np.inf]]),
              "u": np.array([np.nextafter(1.0, 0.0)])}),
    ]


_SAMPLE = """def sample_next_token(logits, u, temperature=1.0):
    {greedy}
    z = {scaled}
    {probs}
    cdf = np.cumsum(probs, axis=-1)
    return {pick}
"""

_SHIFTED = ("e = np.exp(z - z.max(axis=-1, keepdims=True))\n"
            "    probs = e / e.sum(axis=-1, keepdims=True)")


_UNSCALED_U = ("compare u times the last cumulative probability, as the docstring says: "
               "rounding can leave the total just below 1, and a u above it then finds no token "
               "(np.argmax of all False is 0, a token that may have probability 0) or one past "
               "the last possible one")


def _sample_mistake(**parts):
    defaults = {"greedy": "if temperature == 0:\n        return logits.argmax(axis=-1)",
                "scaled": "logits / temperature", "probs": _SHIFTED,
                "pick": "(cdf <= u[:, None] * cdf[:, -1:]).sum(axis=-1)"}
    return _SAMPLE.format(**dict(defaults, **parts))


sample_next_token = Exercise(
    id="18.sample_next_token", symbol="sample_next_token", points=2,
    title="greedy decoding, and sampling with a temperature",
    reference=gpt.sample_next_token, cases=_sample_cases,
    requires=("01.softmax",),
    mistakes=[
        Mistake("the temperature multiplies the logits",
                "divide the logits by the temperature: a temperature below 1 sharpens the "
                "distribution, one above 1 flattens it",
                _sample_mistake(scaled="logits * temperature")),
        Mistake("the temperature ignored",
                "sample from softmax(logits / temperature)",
                _sample_mistake(scaled="logits")),
        Mistake("always the most likely token",
                "argmax is greedy decoding, for temperature 0 only; otherwise draw from the "
                "distribution with u",
                "def sample_next_token(logits, u, temperature=1.0):\n"
                "    return logits.argmax(axis=-1)\n"),
        Mistake("the first token whose cumulative probability reaches u",
                "take the first token whose cumulative probability *exceeds* u (>, or "
                "np.searchsorted(cdf, u, side='right')): with probabilities (1/2, 1/2) and "
                "u = 1/2 that is token 1",
                _sample_mistake(pick="(cdf < u[:, None] * cdf[:, -1:]).sum(axis=-1)")),
        Mistake("u not scaled by the last cumulative probability",
                _UNSCALED_U, _sample_mistake(pick="(cdf <= u[:, None]).sum(axis=-1)")),
        Mistake("u not scaled, the first token above it by argmax", _UNSCALED_U,
                _sample_mistake(pick="np.argmax(cdf > u[:, None], axis=-1)")),
        Mistake("u not scaled, the count clipped to the last token", _UNSCALED_U,
                _sample_mistake(pick="np.minimum((cdf <= u[:, None]).sum(axis=-1), "
                                     "logits.shape[-1] - 1)")),
        Mistake("the softmax without its max shift",
                "subtract each row's maximum before np.exp (lesson 01's softmax), or large "
                "logits overflow to inf and the probabilities become NaN",
                _sample_mistake(probs="e = np.exp(z)\n    probs = e / e.sum(axis=-1, keepdims=True)")),
        Mistake("temperature 0 not handled",
                "temperature 0 means greedy decoding: return logits.argmax(axis=-1) before "
                "dividing by it",
                _sample_mistake(greedy="pass")),
    ],
)

# --------------------------------------------------------------------------- top_k_filter


def _top_k_cases(rng):
    ties = np.array([[1.0, 3.0, 2.0, 3.0, 0.5], [0.0, 0.0, 0.0, 1.0, -1.0]])
    return [
        Case("B=4, V=10, k=3", {"logits": rng.normal(size=(4, 10)), "k": 3}),
        Case("k=1: only the most likely token", {"logits": rng.normal(size=(3, 6)), "k": 1}),
        Case("(B, T, V) logits, k=4", {"logits": rng.normal(size=(2, 3, 9)), "k": 4}),
        Case("ties with the k-th highest are kept", {"logits": ties, "k": 2}),
        Case("k = V keeps everything", {"logits": rng.normal(size=(2, 5)), "k": 5}),
        Case("k > V keeps everything", {"logits": rng.normal(size=(2, 5)), "k": 8}),
        Case("float32 in, float32 out", {"logits": rng.normal(size=(2, 6)).astype(np.float32),
                                         "k": 2}),
    ]


_TOP_K = """def top_k_filter(logits, k):
    if k >= logits.shape[-1]:
        return logits.copy()
    threshold = {threshold}
    return np.where(logits < threshold, {fill}, logits)
"""


def _top_k_mistake(**parts):
    defaults = {"threshold": "np.sort(logits, axis=-1)[..., -k, None]", "fill": "-np.inf"}
    return _TOP_K.format(**dict(defaults, **parts))


top_k_filter = Exercise(
    id="18.top_k_filter", symbol="top_k_filter", points=1,
    title="top-k filtering",
    reference=gpt.top_k_filter, cases=_top_k_cases,
    mistakes=[
        Mistake("one more token than k",
                "the k-th highest is at index -k of the sorted row (np.sort sorts ascending)",
                _top_k_mistake(threshold="np.sort(logits, axis=-1)[..., -k - 1, None]")),
        Mistake("the k lowest kept",
                "keep the k *highest* logits: np.sort is ascending, so they are at the end",
                "def top_k_filter(logits, k):\n"
                "    if k >= logits.shape[-1]:\n"
                "        return logits.copy()\n"
                "    threshold = np.sort(logits, axis=-1)[..., k - 1, None]\n"
                "    return np.where(logits > threshold, -np.inf, logits)\n"),
        Mistake("removed tokens set to 0",
                "set the removed logits to -inf: a logit of 0 still has a probability "
                "exp(0) / sum, -inf has exactly 0",
                _top_k_mistake(fill="0.0")),
        Mistake("ties broken: exactly k tokens kept",
                "a logit equal to the k-th highest is kept too: compare every logit with the "
                "k-th highest value instead of keeping k indices from argsort",
                "def top_k_filter(logits, k):\n"
                "    if k >= logits.shape[-1]:\n"
                "        return logits.copy()\n"
                "    top = np.argsort(logits, axis=-1)[..., -k:]\n"
                "    keep = np.zeros(logits.shape, dtype=bool)\n"
                "    np.put_along_axis(keep, top, True, axis=-1)\n"
                "    return np.where(keep, logits, -np.inf)\n"),
        Mistake("one threshold for the whole batch",
                "each row (each sequence) keeps its own k tokens: sort along the last axis",
                _top_k_mistake(threshold="np.sort(logits, axis=None)[-k]")),
    ],
)

# --------------------------------------------------------------------------- top_p_filter


def _safe_p(rng, logits, low, high):
    """A p in [low, high) at least 1e-6 away from every cumulative probability."""
    probs = softmax(np.where(np.isfinite(logits), logits, -np.inf))
    sums = np.cumsum(-np.sort(-probs, axis=-1), axis=-1)
    while True:
        p = float(rng.uniform(low, high))
        if np.abs(sums - p).min() > 1e-6:
            return p


def _top_p_cases(rng):
    def case(name, logits, low, high):
        return Case(name, {"logits": logits, "p": _safe_p(rng, logits, low, high)})
    peaked = rng.normal(size=(3, 8))
    peaked[:, 2] += 6.0                                          # one token holds about 0.99
    filtered = rng.normal(size=(3, 9)) * 2
    filtered[:, 1::2] = -np.inf
    return [
        case("B=4, V=10, p about 0.9", rng.normal(size=(4, 10)) * 2, 0.85, 0.95),
        case("p about 0.5", rng.normal(size=(4, 10)) * 2, 0.45, 0.55),
        case("one token above p: only it is kept", peaked, 0.5, 0.9),
        case("(B, T, V) logits", rng.normal(size=(2, 3, 7)) * 2, 0.6, 0.8),
        case("after top-k: -inf entries stay removed", filtered, 0.7, 0.95),
        case("p close to 1 keeps almost everything", rng.normal(size=(2, 6)), 0.995, 0.9999),
        # exact quarters: the tokens before the cut hold exactly p, so the third is not kept,
        # and the tie goes to the lower indices
        Case("4 equal tokens, p = 0.5: the first two, in index order",
             {"logits": np.zeros((1, 4)), "p": 0.5}),
        Case("float32 in, float32 out", {"logits": (rng.normal(size=(2, 7)) * 2)
                                         .astype(np.float32), "p": 0.8}),
        # numpy's default sort keeps the order of 4 ties, not of these: only a stable sort does
        Case("V=40 in five tie groups, p = 0.4: ties in vocabulary order",
             {"logits": np.array([[2, 2, 1, 1, 0, 0, 0, 0, 3, 2, 3, 2, 2, 3, 2, 2, 2, 2, 3, 1]
                                  * 2], dtype=float) * 2, "p": 0.4}),
    ]


_TOP_P = """def top_p_filter(logits, p):
    probs = softmax(logits)
    order = np.argsort({key}, axis=-1{kind})
    sorted_probs = np.take_along_axis(probs, order, axis=-1)
    {keep_sorted}
    {unsort}
    return np.where(keep, logits, -np.inf)
"""

_UNSORT = ("keep = np.empty(logits.shape, dtype=bool)\n"
           "    np.put_along_axis(keep, order, keep_sorted, axis=-1)")


def _top_p_mistake(**parts):
    defaults = {"key": "-probs", "kind": ', kind="stable"',
                "keep_sorted": "keep_sorted = np.cumsum(sorted_probs, axis=-1) - sorted_probs < p",
                "unsort": _UNSORT}
    return _TOP_P.format(**dict(defaults, **parts))


top_p_filter = Exercise(
    id="18.top_p_filter", symbol="top_p_filter", points=2,
    title="nucleus (top-p) filtering",
    reference=gpt.top_p_filter, cases=_top_p_cases,
    requires=("01.softmax",),
    mistakes=[
        Mistake("the token that crosses p dropped",
                "keep a token when the probability *before* it is below p (the cumulative sum "
                "minus its own probability): the kept set must reach p, and the most likely "
                "token is always kept",
                _top_p_mistake(keep_sorted="keep_sorted = np.cumsum(sorted_probs, axis=-1) < p")),
        Mistake("the token that crosses p dropped, the most likely one kept",
                "keep a token when the probability *before* it is below p (the cumulative sum "
                "minus its own probability): the token that carries the total past p belongs "
                "to the nucleus",
                _top_p_mistake(keep_sorted="keep_sorted = np.cumsum(sorted_probs, axis=-1) < p\n"
                                           "    keep_sorted[..., 0] = True")),
        Mistake("an unstable sort",
                "sort with np.argsort(-probs, kind='stable'): the default sort may reorder tokens "
                "of equal probability, and then the nucleus keeps other tokens than the "
                "vocabulary order says",
                _top_p_mistake(kind="")),
        Mistake("the mask left in sorted order",
                "the decision is made in sorted order: put it back at each token's place in "
                "the vocabulary (np.put_along_axis with the same order) before using it",
                _top_p_mistake(unsort="keep = keep_sorted")),
        Mistake("the least likely tokens first",
                "sort from the most likely down (np.argsort(-probs)): the nucleus is the top "
                "of the distribution",
                _top_p_mistake(key="probs")),
    ],
)

# --------------------------------------------------------------------------- attend_with_cache


def _cache_cases(rng):
    def case(name, B, H, Tc, Tn, dh):
        return Case(name, {"q": rng.normal(size=(B, H, Tn, dh)),
                           "k": rng.normal(size=(B, H, Tn, dh)),
                           "v": rng.normal(size=(B, H, Tn, dh)),
                           "k_cache": rng.normal(size=(B, H, Tc, dh)),
                           "v_cache": rng.normal(size=(B, H, Tc, dh))})
    return [
        case("one new token after 4 cached, B=2, H=2, dh=3", 2, 2, 4, 1, 3),
        case("the first token: an empty cache", 2, 2, 0, 1, 3),
        case("a prompt of 5 tokens, empty cache", 1, 2, 0, 5, 4),
        case("3 new tokens after 3 cached", 2, 1, 3, 3, 2),
        case("2 new tokens after 6 cached, 4 heads", 1, 4, 6, 2, 3),
    ]


_CACHE = """def attend_with_cache(q, k, v, k_cache, v_cache):
    k_all = np.concatenate({keys}, axis=2)
    v_all = np.concatenate({values}, axis=2)
    Tc, Tn = k_cache.shape[2], q.shape[2]
    mask = {mask}
    out, _ = attention_forward(q, {attend_k}, {attend_v}, mask)
    return out, k_all, v_all
"""


def _cache_mistake(**parts):
    defaults = {"keys": "[k_cache, k]", "values": "[v_cache, v]",
                "mask": "np.arange(Tc + Tn)[None, :] <= Tc + np.arange(Tn)[:, None]",
                "attend_k": "k_all", "attend_v": "v_all"}
    return _CACHE.format(**dict(defaults, **parts))


attend_with_cache = Exercise(
    id="18.attend_with_cache", symbol="attend_with_cache", points=2,
    title="attention with a key/value cache",
    reference=gpt.attend_with_cache, cases=_cache_cases,
    run=returns("out", "k_cache", "v_cache"),
    requires=("05.attention_forward",),
    mistakes=[
        Mistake("no mask among the new tokens",
                "when several tokens arrive at once (a prompt), new token i must not see the "
                "new tokens after it: allow key j when j <= Tc + i",
                _cache_mistake(mask="None")),
        Mistake("the causal mask without the cache's offset",
                "new token i sits at position Tc + i: it sees all Tc cached keys, so the test "
                "is j <= Tc + i, not j <= i",
                _cache_mistake(mask="np.arange(Tc + Tn)[None, :] <= np.arange(Tn)[:, None]")),
        Mistake("attention over the cache only",
                "append the new keys and values first: a token attends to itself too",
                _cache_mistake(attend_k="k_cache", attend_v="v_cache",
                               mask="np.ones((Tn, Tc), dtype=bool)")),
        Mistake("the new keys put before the old ones",
                "keep the cache in position order, the old entries first: "
                "np.concatenate([k_cache, k], axis=2)",
                _cache_mistake(keys="[k, k_cache]", values="[v, v_cache]")),
        Mistake("scores scaled by the number of keys",
                "divide the scores by sqrt(d), d = q.shape[-1] the width of a head (lesson 05's "
                "attention_forward does it for you), not by the square root of the number of keys",
                "def attend_with_cache(q, k, v, k_cache, v_cache):\n"
                "    k_all = np.concatenate([k_cache, k], axis=2)\n"
                "    v_all = np.concatenate([v_cache, v], axis=2)\n"
                "    Tc, Tn = k_cache.shape[2], q.shape[2]\n"
                "    scores = q @ np.swapaxes(k_all, -1, -2) / np.sqrt(k_all.shape[2])\n"
                "    allowed = np.arange(Tc + Tn)[None, :] <= Tc + np.arange(Tn)[:, None]\n"
                "    scores = np.where(allowed, scores, -np.inf)\n"
                "    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))\n"
                "    weights /= weights.sum(axis=-1, keepdims=True)\n"
                "    return weights @ v_all, k_all, v_all\n"),
        Mistake("a token does not see itself",
                "a token attends to itself as well as to what came before: allow key j when "
                "j <= Tc + i (with <, the first token of an empty cache has no key at all)",
                _cache_mistake(mask="np.arange(Tc + Tn)[None, :] < Tc + np.arange(Tn)[:, None]")),
    ],
)


LESSON = Lesson(
    id="18", slug="18_gpt", title="A small GPT: causal language modelling and generation",
    prelude=PRELUDE,
    exercises=[causal_attention_mask, gpt_forward, gpt_loss_and_grads, sample_next_token,
               top_k_filter, top_p_filter, attend_with_cache],
)
