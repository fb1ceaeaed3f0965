"""Lesson 07 - Mini-BERT (reference solutions).

The whole model in NumPy, forward and backward, built from lessons 01, 03, 05 and 06:

    input ids, token types -> embeddings (word + position + segment, LayerNorm, dropout)
                           -> N encoder blocks (lesson 06)            -> hidden (B, T, D)
    hidden -> MLM head (dense, GELU, LayerNorm, decoder tied to the word embeddings) -> (.., V)
    hidden[:, 0] ([CLS]) -> pooler (dense, tanh) -> classifier (dropout, dense)    -> (B, C)

Every piece is a pair ``out, cache = piece_forward(...)`` / ``piece_backward(dout, cache)``
as in lessons 03-06. ``mlm_loss_and_grads`` and ``classification_loss_and_grads`` put them
together for one training step (lessons 09 and 10). Everything keeps the dtype of the
parameters (float32 by default) and works on whole batches: no Python loop over tokens
or heads, only over the layers.

The parameters are ONE flat dict, name -> array, with these names (D = hidden_size,
V = vocab_size, P = max_position_embeddings, S = type_vocab_size, F = intermediate_size,
C = num_labels). Our weights are (in, out) and compute ``x @ W + b``; Hugging Face stores
the transpose, (out, in), marked ^T below. Its names are those of ``BertForPreTraining``
and ``BertForSequenceClassification``, where the encoder's start with "bert." (left out
here; a bare ``BertModel`` has no prefix):

    ours                        shape     Hugging Face
    embeddings.word             (V, D)    embeddings.word_embeddings.weight (= MLM decoder)
    embeddings.position         (P, D)    embeddings.position_embeddings.weight
    embeddings.token_type       (S, D)    embeddings.token_type_embeddings.weight
    embeddings.ln_gamma/beta    (D,)      embeddings.LayerNorm.weight / .bias
    layers.i.Wq, Wk, Wv         (D, D)    encoder.layer.i.attention.self.query/key/value.weight^T
    layers.i.Wo                 (D, D)    encoder.layer.i.attention.output.dense.weight^T
    layers.i.bq, bk, bv, bo     (D,)      the matching .bias
    layers.i.ln1_gamma/beta     (D,)      encoder.layer.i.attention.output.LayerNorm.weight/.bias
    layers.i.W1, b1             (D, F)    encoder.layer.i.intermediate.dense.weight^T / .bias
    layers.i.W2, b2             (F, D)    encoder.layer.i.output.dense.weight^T / .bias
    layers.i.ln2_gamma/beta     (D,)      encoder.layer.i.output.LayerNorm.weight / .bias
    final.ln_gamma/beta         (D,)      (pre-LN models only; Hugging Face's BERT is post-LN)
    mlm.W, mlm.b                (D, D)    cls.predictions.transform.dense.weight^T / .bias
    mlm.ln_gamma/beta           (D,)      cls.predictions.transform.LayerNorm.weight / .bias
    mlm.bias                    (V,)      cls.predictions.bias (= cls.predictions.decoder.bias)
    pooler.W, pooler.b          (D, D)    pooler.dense.weight^T / .bias
    classifier.W, classifier.b  (D, C)    classifier.weight^T / .bias

There is no ``mlm.decoder``: the decoder's weight IS ``embeddings.word`` (weight tying), so
its gradient is the sum of what the embedding lookup and the MLM head send back.
``to_hf_state_dict`` and ``from_hf_state_dict`` convert between the two namings.
"""

from dataclasses import asdict, dataclass

import numpy as np

from solutions.attention import padding_mask
from solutions.layers import (dropout_backward, dropout_forward, embedding_backward,
                              gelu_backward, gelu_forward, layernorm_backward, layernorm_forward,
                              linear_backward, linear_forward)
from solutions.losses import cross_entropy, cross_entropy_grad
from solutions.transformer import (PARAM_NAMES, encoder_block_backward, encoder_block_forward,
                                   init_encoder_block)

# --------------------------------------------------------------------------- configuration


@dataclass
class BertConfig:
    """The sizes and settings of a BERT model (``to_hf()`` gives Hugging Face's names).

    Attributes:
        vocab_size: V, the number of token ids.
        hidden_size: D, the width of every token's vector.
        num_layers: N, the number of encoder blocks.
        num_heads: H, attention heads per block (dividing D).
        intermediate_size: F, the feed-forward's hidden width (BERT: 4 D).
        max_position_embeddings: P, the longest sequence the model can read.
        type_vocab_size: S, the number of segments (2: sentence A and B).
        dropout: the dropout probability of the embeddings, every block and the classifier.
        layer_norm_eps: the epsilon of every LayerNorm (BERT: 1e-12).
        init_std: the standard deviation of every initial weight (BERT: 0.02).
        pre_ln: False for BERT's post-LN blocks; True for pre-LN blocks, which then get
            a final LayerNorm ("final.ln_gamma", "final.ln_beta") after the last block.
        num_labels: C, the classes of the classification head.
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    init_std: float = 0.02
    pre_ln: bool = False
    num_labels: int = 2

    def to_hf(self):
        """The keyword arguments of ``transformers.BertConfig`` for the same model.

        Our blocks have no dropout on the attention probabilities, so
        ``attention_probs_dropout_prob`` is 0.

        Returns:
            dict of Hugging Face config names -> values.
        """
        if self.pre_ln:
            raise ValueError("Hugging Face's BERT is post-LN; this config has pre_ln=True")
        return {"vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
                "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
                "intermediate_size": self.intermediate_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size, "hidden_dropout_prob": self.dropout,
                "attention_probs_dropout_prob": 0.0, "layer_norm_eps": self.layer_norm_eps,
                "initializer_range": self.init_std, "hidden_act": "gelu",
                "num_labels": self.num_labels}

    @classmethod
    def from_hf(cls, hf):
        """A BertConfig from a Hugging Face config (a ``config.json`` dict, or a config object).

        Args:
            hf: dict (or object with the same attributes) with Hugging Face's names.

        Returns:
            BertConfig.
        """
        def get(key, default=None):
            return hf.get(key, default) if isinstance(hf, dict) else getattr(hf, key, default)

        if get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act={get('hidden_act')!r}: only the exact GELU is supported")
        return cls(vocab_size=get("vocab_size"), hidden_size=get("hidden_size"),
                   num_layers=get("num_hidden_layers"), num_heads=get("num_attention_heads"),
                   intermediate_size=get("intermediate_size"),
                   max_position_embeddings=get("max_position_embeddings"),
                   type_vocab_size=get("type_vocab_size", 2),
                   dropout=get("hidden_dropout_prob", 0.1),
                   layer_norm_eps=get("layer_norm_eps", 1e-12),
                   init_std=get("initializer_range", 0.02),
                   num_labels=get("num_labels") or len(get("id2label") or {}) or 2)

    def to_dict(self):
        """The fields as a plain dict (JSON-friendly, for checkpoints)."""
        return asdict(self)


# --------------------------------------------------------------------------- parameters


def count_parameters(config):
    """The number of parameters of ``init_bert(config, ...)``, from the sizes alone.

    With D = hidden_size, V = vocab_size, P = max_position_embeddings,
    S = type_vocab_size, F = intermediate_size, L = num_layers, C = num_labels:

    - embeddings: the three tables (V + P + S) D, and a LayerNorm, 2 D;
    - each encoder block: four (D, D) projections with biases, 4 (D² + D); the
      feed-forward, D F + F + F D + D; two LayerNorms, 4 D;
    - a pre-LN model (``config.pre_ln``): one more LayerNorm after the last block, 2 D;
    - the MLM head: a dense layer D² + D, a LayerNorm 2 D, and the decoder's bias V
      (its weight is the word embedding table, already counted);
    - the pooler: D² + D;
    - the classifier: D C + C.

    Args:
        config: a ``BertConfig``.

    Returns:
        int, the total number of entries of all parameter arrays.
    """
    V, D, F = config.vocab_size, config.hidden_size, config.intermediate_size
    P, S, C = config.max_position_embeddings, config.type_vocab_size, config.num_labels
    embeddings = (V + P + S) * D + 2 * D
    block = 4 * (D * D + D) + (D * F + F) + (F * D + D) + 4 * D
    final_ln = 2 * D if config.pre_ln else 0
    mlm_head = (D * D + D) + 2 * D + V
    pooler = D * D + D
    classifier = D * C + C
    return int(embeddings + config.num_layers * block + final_ln + mlm_head + pooler + classifier)


def init_bert(config, rng, dtype=np.float32):
    """BERT's initialisation: weights ~ normal(0, init_std), biases 0, LayerNorms identity.

    Every weight matrix and embedding table is drawn from
    ``rng.normal(0.0, config.init_std, size=shape)``; every bias (the names whose
    last part is ``b``, ``b1``, ``b2``, ``bq``, ``bk``, ``bv``, ``bo`` or ``bias``) is
    0; every LayerNorm starts as the identity (``gamma`` 1, ``beta`` 0). The
    blocks come from lesson 06's ``init_encoder_block``. The MLM decoder has no
    weight of its own: it is ``embeddings.word``. (The grader checks the names,
    shapes, dtypes and the statistics of the arrays, one by one and all together,
    not the exact draws; every weight must change with the generator's seed.)

    Args:
        config: a ``BertConfig``.
        rng: a ``np.random.Generator``.
        dtype: the float dtype of every array (float32 by default: half the memory
            and about twice the speed of float64).

    Returns:
        dict name -> array: the names and shapes of the lesson's parameter table
        ("embeddings.word" (V, D), ..., "layers.0.Wq" (D, D), ..., "mlm.W" (D, D),
        "mlm.bias" (V,), "pooler.W" (D, D), "classifier.W" (D, C), ...), plus
        "final.ln_gamma" and "final.ln_beta" (D,) when ``config.pre_ln``.
    """
    D, std = config.hidden_size, config.init_std

    def weight(*shape):
        return rng.normal(0.0, std, size=shape)

    params = {
        "embeddings.word": weight(config.vocab_size, D),
        "embeddings.position": weight(config.max_position_embeddings, D),
        "embeddings.token_type": weight(config.type_vocab_size, D),
        "embeddings.ln_gamma": np.ones(D), "embeddings.ln_beta": np.zeros(D),
    }
    for i in range(config.num_layers):
        block = init_encoder_block(D, config.num_heads, config.intermediate_size, rng, std)
        params.update({f"layers.{i}.{name}": value for name, value in block.items()})
    if config.pre_ln:
        params["final.ln_gamma"], params["final.ln_beta"] = np.ones(D), np.zeros(D)
    params.update({
        "mlm.W": weight(D, D), "mlm.b": np.zeros(D),
        "mlm.ln_gamma": np.ones(D), "mlm.ln_beta": np.zeros(D),
        "mlm.bias": np.zeros(config.vocab_size),
        "pooler.W": weight(D, D), "pooler.b": np.zeros(D),
        "classifier.W": weight(D, config.num_labels), "classifier.b": np.zeros(config.num_labels),
    })
    return {name: value.astype(dtype) for name, value in params.items()}


def layer_params(params, i):
    """The parameters of encoder block ``i``, under the names lesson 06 uses (Wq, bq, ...).

    Args:
        params: the model's flat dict.
        i: int, the block's index.

    Returns:
        dict with the 16 keys of ``solutions.transformer.PARAM_NAMES`` (the arrays themselves).
    """
    return {name: params[f"layers.{i}.{name}"] for name in PARAM_NAMES}


# --------------------------------------------------------------------------- embeddings


def embeddings_forward(input_ids, token_type_ids, params, config, training=False, rng=None):
    """BERT's input vectors: word + position + segment embeddings, then LayerNorm and dropout.

    ``e = word[input_ids] + position[0..T-1] + token_type[token_type_ids]``, then
    ``out = Dropout(LayerNorm(e))`` with ``embeddings.ln_gamma``, ``embeddings.ln_beta``,
    ``config.layer_norm_eps`` and lesson 03's ``dropout_forward`` (probability
    ``config.dropout``, active only when ``training``). Position t of every sequence
    gets row t of the position table.

    Args:
        input_ids: int array of shape (B, T), each id in [0, V); T <= max_position_embeddings.
        token_type_ids: int array of shape (B, T), each in [0, S) (0: sentence A, 1: B).
        params: the model's dict; uses "embeddings.word" (V, D), "embeddings.position"
            (P, D), "embeddings.token_type" (S, D), "embeddings.ln_gamma" and
            "embeddings.ln_beta" (D,).
        config: a ``BertConfig`` (``layer_norm_eps``, ``dropout``).
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.

    Returns:
        (out, cache): ``out`` of shape (B, T, D), the dtype of the tables; ``cache`` a
        dict with the keys ``"input_ids"``, ``"token_type_ids"`` (the two id arrays),
        ``"shapes"`` (dict: the shape of each of the three tables, under their
        parameter names), ``"ln"`` (the LayerNorm's cache) and ``"dropout"`` (the
        dropout's cache).
    """
    T = input_ids.shape[1]
    word, position = params["embeddings.word"], params["embeddings.position"]
    token_type = params["embeddings.token_type"]
    summed = word[input_ids] + position[:T] + token_type[token_type_ids]        # (B, T, D)
    normed, ln_cache = layernorm_forward(summed, params["embeddings.ln_gamma"],
                                         params["embeddings.ln_beta"], config.layer_norm_eps)
    out, dropout_cache = dropout_forward(normed, config.dropout, training, rng)
    shapes = {"embeddings.word": word.shape, "embeddings.position": position.shape,
              "embeddings.token_type": token_type.shape}
    cache = {"input_ids": input_ids, "token_type_ids": token_type_ids, "shapes": shapes,
             "ln": ln_cache, "dropout": dropout_cache}
    return out, cache


def embeddings_backward(dout, cache):
    """Backward pass of ``embeddings_forward``: gradients of the three tables and the LayerNorm.

    Back through the dropout and the LayerNorm to ``dsum``, the gradient of the sum
    of the three embeddings; then each table gets ``dsum`` scattered onto the rows
    it lent: for the word and segment tables, the scatter-add of lesson 03's
    ``embedding_backward`` (``np.add.at``: repeated ids add up), and for the
    position table the sum over the batch in rows 0..T-1 (rows T and beyond get
    0). Every gradient has the dtype of ``dout``.

    Args:
        dout: float array of shape (B, T, D), the gradient of the loss with respect to ``out``.
        cache: the dict returned by ``embeddings_forward``.

    Returns:
        dict with the keys "embeddings.word", "embeddings.position",
        "embeddings.token_type", "embeddings.ln_gamma", "embeddings.ln_beta", each
        gradient shaped like its parameter.
    """
    shapes = cache["shapes"]
    dnormed = dropout_backward(dout, cache["dropout"])
    dsum, dgamma, dbeta = layernorm_backward(dnormed, cache["ln"])           # (B, T, D)
    T = dsum.shape[1]
    dposition = np.zeros_like(dout, shape=shapes["embeddings.position"])  # like dout: NumPy/CuPy
    dposition[:T] = dsum.sum(axis=0)
    dword = embedding_backward(dsum, (cache["input_ids"], shapes["embeddings.word"]))
    dtoken_type = embedding_backward(dsum, (cache["token_type_ids"],
                                            shapes["embeddings.token_type"]))
    return {"embeddings.word": dword, "embeddings.position": dposition,
            "embeddings.token_type": dtoken_type, "embeddings.ln_gamma": dgamma,
            "embeddings.ln_beta": dbeta}


# --------------------------------------------------------------------------- the encoder


def bert_forward(params, config, input_ids, token_type_ids=None, attention_mask=None,
                 training=False, rng=None):
    """The BERT encoder: embeddings, then ``config.num_layers`` encoder blocks.

    Token types default to 0 (a single sentence). The attention mask becomes
    lesson 05's ``padding_mask`` (B, 1, 1, T), so that no query attends to a
    padding key; ``None`` means no padding. Block i uses the parameters
    "layers.i.*" (without the prefix, lesson 06's names) and lesson 06's
    ``encoder_block_forward`` with ``config.num_heads``, ``config.pre_ln``,
    ``config.dropout``, ``training``, ``rng`` and ``config.layer_norm_eps``. A
    pre-LN model ends with one more LayerNorm ("final.ln_gamma", "final.ln_beta").

    Args:
        params: the model's dict (see ``init_bert``).
        config: a ``BertConfig``.
        input_ids: int array of shape (B, T).
        token_type_ids: int array of shape (B, T), or None for all 0.
        attention_mask: int array of shape (B, T), 1 for a real token and 0 for
            padding, or None for no padding.
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.

    Returns:
        (hidden, cache): ``hidden`` of shape (B, T, D), one vector per token, the
        dtype of the parameters; ``cache`` a dict with the keys ``"embeddings"``
        (the cache of ``embeddings_forward``), ``"layers"`` (the list of the blocks'
        caches, block 0 first) and ``"final_ln"`` (the final LayerNorm's cache, or
        None for a post-LN model).
    """
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    mask = None if attention_mask is None else padding_mask(attention_mask)
    hidden, embeddings_cache = embeddings_forward(input_ids, token_type_ids, params, config,
                                                  training, rng)
    layer_caches = []
    for i in range(config.num_layers):
        prefix = f"layers.{i}."
        block = {name[len(prefix):]: value for name, value in params.items()
                 if name.startswith(prefix)}
        hidden, layer_cache = encoder_block_forward(
            hidden, block, config.num_heads, mask, pre_ln=config.pre_ln,
            dropout_p=config.dropout, training=training, rng=rng, eps=config.layer_norm_eps)
        layer_caches.append(layer_cache)
    final_cache = None
    if config.pre_ln:
        hidden, final_cache = layernorm_forward(hidden, params["final.ln_gamma"],
                                                params["final.ln_beta"], config.layer_norm_eps)
    return hidden, {"embeddings": embeddings_cache, "layers": layer_caches,
                    "final_ln": final_cache}


def bert_backward(dhidden, cache):
    """Backward pass of ``bert_forward``: the gradient of every encoder parameter.

    Go back through the final LayerNorm (pre-LN only), the blocks from the last
    to the first (lesson 06's ``encoder_block_backward``; block i's gradients go
    under "layers.i.<name>"), and the embeddings (``embeddings_backward``). The
    heads' parameters (mlm.*, pooler.*, classifier.*) are not part of the
    encoder and get no entry here.

    Args:
        dhidden: float array of shape (B, T, D), the gradient of the loss with
            respect to ``hidden``.
        cache: the dict returned by ``bert_forward``.

    Returns:
        dict name -> gradient for every "embeddings.*", "layers.i.*" (and
        "final.*") parameter, each shaped like its parameter, in the dtype of
        ``dhidden``.
    """
    grads = {}
    if cache["final_ln"] is not None:
        dhidden, grads["final.ln_gamma"], grads["final.ln_beta"] = layernorm_backward(
            dhidden, cache["final_ln"])
    for i in reversed(range(len(cache["layers"]))):
        dhidden, block_grads = encoder_block_backward(dhidden, cache["layers"][i])
        grads.update({f"layers.{i}.{name}": grad for name, grad in block_grads.items()})
    grads.update(embeddings_backward(dhidden, cache["embeddings"]))
    return grads


# --------------------------------------------------------------------------- the heads


def mlm_head_forward(hidden, params, config):
    """The masked-LM head: a score for every word of the vocabulary at every given position.

    ``h = GELU(hidden @ mlm.W + mlm.b)``, ``n = LayerNorm(h)`` (with ``mlm.ln_gamma``,
    ``mlm.ln_beta`` and ``config.layer_norm_eps``), then the decoder
    ``logits = n @ embeddings.word.T + mlm.bias``: the decoder's weight is the word
    embedding table itself (weight tying), so a word's output score is the dot
    product with its own input vector.

    Args:
        hidden: float array of shape (..., D): (B, T, D) for every position, or
            (M, D) for the M masked positions only.
        params: the model's dict; uses "mlm.W" (D, D), "mlm.b", "mlm.ln_gamma",
            "mlm.ln_beta" (D,), "mlm.bias" (V,) and "embeddings.word" (V, D).
        config: a ``BertConfig`` (``layer_norm_eps``).

    Returns:
        (logits, cache): ``logits`` of shape (..., V); ``cache`` the tuple
        ``(dense_cache, gelu_cache, ln_cache, normed, word)``: the caches of
        lesson 03's ``linear_forward``, ``gelu_forward`` and ``layernorm_forward``,
        the LayerNorm's output ``n`` (..., D), and ``embeddings.word`` (V, D).
    """
    word = params["embeddings.word"]
    dense, dense_cache = linear_forward(hidden, params["mlm.W"], params["mlm.b"])
    activated, gelu_cache = gelu_forward(dense)
    normed, ln_cache = layernorm_forward(activated, params["mlm.ln_gamma"],
                                         params["mlm.ln_beta"], config.layer_norm_eps)
    logits = normed @ word.T + params["mlm.bias"]
    return logits, (dense_cache, gelu_cache, ln_cache, normed, word)


def mlm_head_backward(dlogits, cache):
    """Backward pass of ``mlm_head_forward``, including the tied decoder's gradient.

    The decoder ``logits = n @ word.T + bias`` gives ``dn = dlogits @ word``,
    ``dbias`` the sum of ``dlogits`` over every position, and a gradient for the
    word table, ``dlogits^T @ n`` (V, D), returned under "embeddings.word": the
    caller adds it to the embedding lookup's gradient of the same table. Then back
    through the LayerNorm, the GELU and the dense layer.

    Args:
        dlogits: float array of shape (..., V), the gradient of the loss with
            respect to ``logits``.
        cache: the tuple returned by ``mlm_head_forward``.

    Returns:
        (dhidden, grads): ``dhidden`` of shape (..., D), and a dict with the keys
        "mlm.W", "mlm.b", "mlm.ln_gamma", "mlm.ln_beta", "mlm.bias" and
        "embeddings.word" (the decoder's share only), each shaped like its parameter.
    """
    dense_cache, gelu_cache, ln_cache, normed, word = cache
    V, D = word.shape
    dlogits_rows = dlogits.reshape(-1, V)                 # (M, V): every position a row
    dnormed = dlogits @ word                              # (..., D)
    dword = dlogits_rows.T @ normed.reshape(-1, D)        # (V, D)
    dbias = dlogits_rows.sum(axis=0)
    dactivated, dgamma, dbeta = layernorm_backward(dnormed, ln_cache)
    ddense = gelu_backward(dactivated, gelu_cache)
    dhidden, dW, db = linear_backward(ddense, dense_cache)
    return dhidden, {"mlm.W": dW, "mlm.b": db, "mlm.ln_gamma": dgamma, "mlm.ln_beta": dbeta,
                     "mlm.bias": dbias, "embeddings.word": dword}


def pooler_forward(hidden, params):
    """BERT's pooler: one vector per sequence, from its first token ([CLS]).

    ``pooled = tanh(hidden[:, 0] @ pooler.W + pooler.b)``. Only position 0 is
    read; the other tokens reach it through attention.

    Args:
        hidden: float array of shape (B, T, D), the encoder's output.
        params: the model's dict; uses "pooler.W" (D, D) and "pooler.b" (D,).

    Returns:
        (pooled, cache): ``pooled`` of shape (B, D), each entry in (-1, 1);
        ``cache`` the tuple ``(linear_cache, pooled, hidden_shape)``: the cache of
        lesson 03's ``linear_forward`` on ``hidden[:, 0]``, the output, and
        ``hidden.shape``.
    """
    first = hidden[:, 0]                                                  # (B, D): [CLS]
    pre_activation, linear_cache = linear_forward(first, params["pooler.W"], params["pooler.b"])
    pooled = np.tanh(pre_activation)
    return pooled, (linear_cache, pooled, hidden.shape)


def pooler_backward(dpooled, cache):
    """Backward pass of ``pooler_forward``.

    ``tanh'(a) = 1 - tanh(a)**2 = 1 - pooled**2``; then lesson 03's
    ``linear_backward``. Only position 0 of ``hidden`` was read, so ``dhidden`` is
    0 at every other position.

    Args:
        dpooled: float array of shape (B, D), the gradient of the loss with
            respect to ``pooled``.
        cache: the tuple returned by ``pooler_forward``.

    Returns:
        (dhidden, grads): ``dhidden`` of shape (B, T, D) and a dict with the keys
        "pooler.W" (D, D) and "pooler.b" (D,).
    """
    linear_cache, pooled, hidden_shape = cache
    dpre_activation = dpooled * (1.0 - pooled * pooled)
    dfirst, dW, db = linear_backward(dpre_activation, linear_cache)
    dhidden = np.zeros_like(dfirst, shape=hidden_shape)     # like dfirst: NumPy or CuPy
    dhidden[:, 0] = dfirst
    return dhidden, {"pooler.W": dW, "pooler.b": db}


def classifier_forward(pooled, params, config, training=False, rng=None):
    """The classification head on the pooled vector: dropout, then a dense layer.

    ``logits = Dropout(pooled) @ classifier.W + classifier.b``, as in Hugging
    Face's ``BertForSequenceClassification``.

    Args:
        pooled: float array of shape (B, D), the pooler's output.
        params: the model's dict; uses "classifier.W" (D, C) and "classifier.b" (C,).
        config: a ``BertConfig`` (``dropout``).
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.

    Returns:
        (logits, cache): ``logits`` of shape (B, C); ``cache`` the tuple
        ``(dropout_cache, linear_cache)``.
    """
    dropped, dropout_cache = dropout_forward(pooled, config.dropout, training, rng)
    logits, linear_cache = linear_forward(dropped, params["classifier.W"], params["classifier.b"])
    return logits, (dropout_cache, linear_cache)


def classifier_backward(dlogits, cache):
    """Backward pass of ``classifier_forward``.

    Args:
        dlogits: float array of shape (B, C).
        cache: the tuple returned by ``classifier_forward``.

    Returns:
        (dpooled, grads): ``dpooled`` of shape (B, D) and a dict with the keys
        "classifier.W" (D, C) and "classifier.b" (C,).
    """
    dropout_cache, linear_cache = cache
    ddropped, dW, db = linear_backward(dlogits, linear_cache)
    return dropout_backward(ddropped, dropout_cache), {"classifier.W": dW, "classifier.b": db}


# --------------------------------------------------------------------------- training steps


def _all_grads(params, *partial):
    """One gradient per parameter: the partial dicts added up, zeros for the rest."""
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    for part in partial:
        for name, grad in part.items():
            grads[name] += grad
    return grads


def mlm_logits(params, config, input_ids, token_type_ids=None, attention_mask=None):
    """The masked-LM scores at every position (evaluation mode): the clear, slow version.

    Args:
        params, config: the model.
        input_ids, token_type_ids, attention_mask: as for ``bert_forward``.

    Returns:
        float array of shape (B, T, V).
    """
    hidden, _ = bert_forward(params, config, input_ids, token_type_ids, attention_mask)
    return mlm_head_forward(hidden, params, config)[0]


def mlm_loss_and_grads(params, config, batch, training=False, rng=None, compute_grads=True):
    """One masked-LM step: the loss, the gradient of every parameter, and statistics.

    The loss is lesson 01's masked-LM loss: the mean cross-entropy over the
    positions whose label is not -100 (0.0 when there are none). The MLM head
    only runs on those positions: with 15 % of the tokens masked, that skips 85 %
    of the (positions x vocabulary) work, the largest matrix product of a small
    model. The gradient of ``embeddings.word`` adds the lookup's and the tied
    decoder's. The pooler and the classifier get zero gradients.

    Args:
        params: the model's dict.
        config: a ``BertConfig``.
        batch: dict with "input_ids" (B, T), "attention_mask" (B, T), "labels"
            (B, T) (the original id at the positions to predict, -100 elsewhere),
            and optionally "token_type_ids" (B, T).
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.
        compute_grads: bool; False skips the backward pass (evaluation) and
            returns None for the gradients.

    Returns:
        (loss, grads, stats): ``loss`` a float; ``grads`` a dict with the keys of
        ``params`` (or None); ``stats`` a dict with "loss", "masked_accuracy" (the
        share of predicted positions whose highest score is the label, 0.0 when
        there are none) and "num_masked" (int, the number of predicted positions).
    """
    hidden, cache = bert_forward(params, config, batch["input_ids"],
                                 batch.get("token_type_ids"), batch.get("attention_mask"),
                                 training, rng)
    B, T, D = hidden.shape
    labels = batch["labels"].reshape(-1)
    positions = np.flatnonzero(labels != -100)                   # (M,): the masked positions
    targets = labels[positions]
    selected = hidden.reshape(-1, D)[positions]                  # (M, D)
    logits, head_cache = mlm_head_forward(selected, params, config)
    loss = cross_entropy(logits, targets)
    num_masked = int(positions.size)
    accuracy = float(np.mean(logits.argmax(axis=-1) == targets)) if num_masked else 0.0
    stats = {"loss": loss, "masked_accuracy": accuracy, "num_masked": num_masked}
    if not compute_grads:
        return loss, None, stats
    dlogits = cross_entropy_grad(logits, targets).astype(logits.dtype, copy=False)
    dselected, head_grads = mlm_head_backward(dlogits, head_cache)
    dhidden = np.zeros_like(hidden, shape=(B * T, D))            # like hidden: NumPy or CuPy
    dhidden[positions] = dselected                               # each position once
    encoder_grads = bert_backward(dhidden.reshape(B, T, D), cache)
    return loss, _all_grads(params, encoder_grads, head_grads), stats


def classification_loss_and_grads(params, config, batch, training=False, rng=None,
                                  compute_grads=True):
    """One sentence-classification step on the [CLS] pooler: loss, gradients, statistics.

    ``hidden = bert_forward(...)``, ``pooled = pooler_forward(hidden)``,
    ``logits = classifier_forward(pooled)``, and the mean cross-entropy with the
    labels. The MLM head's parameters (mlm.*) get zero gradients.

    Args:
        params: the model's dict.
        config: a ``BertConfig`` (``num_labels`` classes).
        batch: dict with "input_ids" (B, T), "attention_mask" (B, T), "labels"
            (B,) (a class in [0, C) per sequence), and optionally "token_type_ids".
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.
        compute_grads: bool; False skips the backward pass and returns None for
            the gradients.

    Returns:
        (loss, grads, stats): ``loss`` a float; ``grads`` a dict with the keys of
        ``params`` (or None); ``stats`` a dict with "loss", "accuracy",
        "num_examples" (B) and "logits" (the (B, C) array, for metrics).
    """
    hidden, cache = bert_forward(params, config, batch["input_ids"],
                                 batch.get("token_type_ids"), batch.get("attention_mask"),
                                 training, rng)
    pooled, pooler_cache = pooler_forward(hidden, params)
    logits, classifier_cache = classifier_forward(pooled, params, config, training, rng)
    labels = batch["labels"]
    loss = cross_entropy(logits, labels)
    stats = {"loss": loss, "accuracy": float(np.mean(logits.argmax(axis=-1) == labels)),
             "num_examples": int(labels.shape[0]), "logits": logits}
    if not compute_grads:
        return loss, None, stats
    dlogits = cross_entropy_grad(logits, labels).astype(logits.dtype, copy=False)
    dpooled, classifier_grads = classifier_backward(dlogits, classifier_cache)
    dhidden, pooler_grads = pooler_backward(dpooled, pooler_cache)
    encoder_grads = bert_backward(dhidden, cache)
    return loss, _all_grads(params, encoder_grads, pooler_grads, classifier_grads), stats


# --------------------------------------------------------------------------- Hugging Face names

_HF_LAYER = {   # ours -> (Hugging Face's name inside "encoder.layer.i.", stored transposed?)
    "Wq": ("attention.self.query.weight", True), "bq": ("attention.self.query.bias", False),
    "Wk": ("attention.self.key.weight", True), "bk": ("attention.self.key.bias", False),
    "Wv": ("attention.self.value.weight", True), "bv": ("attention.self.value.bias", False),
    "Wo": ("attention.output.dense.weight", True), "bo": ("attention.output.dense.bias", False),
    "ln1_gamma": ("attention.output.LayerNorm.weight", False),
    "ln1_beta": ("attention.output.LayerNorm.bias", False),
    "W1": ("intermediate.dense.weight", True), "b1": ("intermediate.dense.bias", False),
    "W2": ("output.dense.weight", True), "b2": ("output.dense.bias", False),
    "ln2_gamma": ("output.LayerNorm.weight", False), "ln2_beta": ("output.LayerNorm.bias", False),
}
_HF_ENCODER = {  # names inside BertModel (prefixed with "bert." in the task models)
    "embeddings.word": ("embeddings.word_embeddings.weight", False),
    "embeddings.position": ("embeddings.position_embeddings.weight", False),
    "embeddings.token_type": ("embeddings.token_type_embeddings.weight", False),
    "embeddings.ln_gamma": ("embeddings.LayerNorm.weight", False),
    "embeddings.ln_beta": ("embeddings.LayerNorm.bias", False),
    "pooler.W": ("pooler.dense.weight", True), "pooler.b": ("pooler.dense.bias", False),
}
_HF_HEADS = {    # the heads' names, at the top of BertForMaskedLM, ...ForSequenceClassification
    "mlm.W": ("cls.predictions.transform.dense.weight", True),
    "mlm.b": ("cls.predictions.transform.dense.bias", False),
    "mlm.ln_gamma": ("cls.predictions.transform.LayerNorm.weight", False),
    "mlm.ln_beta": ("cls.predictions.transform.LayerNorm.bias", False),
    "mlm.bias": ("cls.predictions.bias", False),
    "classifier.W": ("classifier.weight", True), "classifier.b": ("classifier.bias", False),
}


def hf_names(config, prefix="bert."):
    """The name mapping: our name -> (Hugging Face's name, whether HF stores it transposed).

    Args:
        config: a post-LN ``BertConfig``.
        prefix: put before the encoder's and the pooler's names: "bert." in
            ``BertForMaskedLM`` and friends, "" in a bare ``BertModel``.

    Returns:
        dict our name -> (str, bool), for every parameter of ``init_bert(config)``.
    """
    if config.pre_ln:
        raise ValueError("Hugging Face's BERT is post-LN; this config has pre_ln=True")
    names = {ours: (prefix + theirs, t) for ours, (theirs, t) in _HF_ENCODER.items()}
    for i in range(config.num_layers):
        names.update({f"layers.{i}.{ours}": (f"{prefix}encoder.layer.{i}.{theirs}", t)
                      for ours, (theirs, t) in _HF_LAYER.items()})
    names.update(_HF_HEADS)
    return names


def to_hf_state_dict(params, config, prefix="bert."):
    """Our parameters under Hugging Face's names and layout (NumPy arrays, (out, in) weights).

    The result holds every name of ``BertForPreTraining`` except the next-sentence
    head, plus ``classifier.*``, and the tied copies ``cls.predictions.decoder.weight``
    (= the word table) and ``cls.predictions.decoder.bias``. Load it into a model
    with ``model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()
    if k in model.state_dict()})``.

    Args:
        params: our dict (see ``init_bert``).
        config: a post-LN ``BertConfig``.
        prefix: "bert." for the task models, "" for a bare ``BertModel``.

    Returns:
        dict Hugging Face name -> contiguous np.ndarray.
    """
    state = {}
    for ours, (theirs, transposed) in hf_names(config, prefix).items():
        value = params[ours]
        state[theirs] = np.ascontiguousarray(value.T if transposed else value)
    state["cls.predictions.decoder.weight"] = state[prefix + "embeddings.word_embeddings.weight"]
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    return state


def from_hf_state_dict(state_dict, config, dtype=np.float32):
    """Our parameters from a Hugging Face state dict (with or without the "bert." prefix).

    The encoder's names must all be there; the heads (MLM, pooler, classifier)
    are taken when present and left out otherwise, so that
    ``{**init_bert(config, rng), **from_hf_state_dict(sd, config)}`` gives a
    complete model with fresh heads where the checkpoint has none.

    Args:
        state_dict: dict name -> array (NumPy arrays or CPU torch tensors), e.g.
            ``model.state_dict()`` or the tensors of a ``model.safetensors`` file.
        config: the matching post-LN ``BertConfig``.
        dtype: the float dtype of the result.

    Returns:
        dict our name -> np.ndarray (our layout: (in, out) weights), contiguous.
    """
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in state_dict else ""
    params = {}
    for ours, (theirs, transposed) in hf_names(config, prefix).items():
        if theirs not in state_dict:
            if ours.startswith(("embeddings.", "layers.")):
                raise KeyError(f"{theirs} (our {ours}) is missing from the state dict")
            continue
        value = np.asarray(state_dict[theirs], dtype=dtype)
        params[ours] = np.ascontiguousarray(value.T if transposed else value)
    return params
