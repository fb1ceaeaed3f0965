"""Lesson 18 - A small GPT: causal language modelling and text generation.

BERT (lessons 07-10) reads a sentence in both directions and fills in blanks.
A GPT reads left to right and predicts the next token, so it can write. The
model is lesson 07's, with one change: every block gets a causal mask, so that
position t never sees a later position. Its backward pass is lesson 07's
``bert_backward`` unchanged (the mask lives in the attention weights the caches
keep), and the masked-LM head, tied to the word embeddings, scores the next
token at every position.

Exercises: ``causal_attention_mask``, ``gpt_forward``, ``gpt_loss_and_grads``
(training), ``sample_next_token``, ``top_k_filter``, ``top_p_filter``
(decoding) and ``attend_with_cache`` (the key/value cache). The helpers after
them generate text with or without the cache and measure what was generated.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from solutions.attention import (attention_forward, causal_mask, merge_heads,    # lesson 05
                                 padding_mask, split_heads)
from solutions.bert import (bert_backward, embeddings_forward, layer_params,     # lesson 07
                            mlm_head_backward, mlm_head_forward)
from solutions.corpora import is_grammatical                                    # the toy grammar
from solutions.layers import layernorm_forward                                  # lesson 03
from solutions.losses import cross_entropy, cross_entropy_grad, softmax         # lesson 01
from solutions.pretraining import CLS, SEP                                      # lesson 09
from solutions.transformer import (add_layernorm_forward, encoder_block_forward,  # lesson 06
                                   feed_forward_forward)

# --------------------------------------------------------------------------- the model


def causal_attention_mask(attention_mask):
    """The mask of a causal model reading a padded batch: the past, and real tokens only.

    Query i of sequence b may attend to key j when j <= i (lesson 05's
    ``causal_mask``) and key j is a real token (lesson 05's ``padding_mask``).
    A query with no allowed key (a padding position at the start of a
    left-padded sequence) gets an all-False row; lesson 05's attention then
    gives it an output of 0.

    Args:
        attention_mask: int array of shape (B, T), 1 for a real token and 0 for
            padding (on either side).

    Returns:
        bool array of shape (B, 1, T, T): ``[b, 0, i, j]`` is True when query i
        of sequence b may attend to key j. The axis of size 1 broadcasts over
        the heads.
    """
    T = attention_mask.shape[1]
    return causal_mask(T)[None, None, :, :] & padding_mask(attention_mask)


def gpt_forward(params, config, input_ids, attention_mask=None, training=False, rng=None):
    """The encoder of lesson 07 with a causal mask: every position reads only its past.

    The embeddings (every token type 0: a GPT has one segment), then
    ``config.num_layers`` blocks of lesson 06's ``encoder_block_forward``, each
    with the mask ``causal_attention_mask(attention_mask)``, or
    ``causal_mask(T)`` when ``attention_mask`` is None, and, for a pre-LN model
    (GPT-2's layout), the final LayerNorm. The arguments mean what
    ``bert_forward``'s do (there is no ``token_type_ids``: every token type is
    0), and the cache is ``bert_forward``'s, so ``bert_backward`` is its
    backward pass.

    Args:
        params: the model's dict (``init_bert``'s names).
        config: a ``BertConfig``.
        input_ids: int array of shape (B, T).
        attention_mask: int array of shape (B, T), 1 for a real token and 0 for
            padding, or None for no padding.
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.

    Returns:
        (hidden, cache): ``hidden`` of shape (B, T, D); ``cache`` the dict with
        the keys "embeddings", "layers" and "final_ln" (None for post-LN), as
        ``bert_forward`` returns it.
    """
    T = input_ids.shape[1]
    mask = causal_mask(T) if attention_mask is None else causal_attention_mask(attention_mask)
    token_type_ids = np.zeros_like(input_ids)
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


def gpt_loss_and_grads(params, config, batch, training=False, rng=None, compute_grads=True):
    """One next-token step: the loss, the gradient of every parameter, and statistics.

    The batch comes from lesson 08's ``CausalLMCollator``: its labels are
    already shifted (``labels[:, t]`` is the token at t + 1, -100 where there
    is none). The model reads ``input_ids`` with ``gpt_forward``; the masked-LM
    head (``mlm_head_forward``, tied to the word embeddings) scores the
    positions whose label is not -100; the loss is the mean cross-entropy over
    them (0.0 when there are none). Backward: ``mlm_head_backward``, the
    gradients put back at their positions, then ``bert_backward``. The pooler
    and the classifier get zero gradients.

    Args:
        params: the model's dict.
        config: a ``BertConfig``.
        batch: dict with "input_ids" (B, T), "labels" (B, T) and optionally
            "attention_mask" (B, T).
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``, needed only when dropout acts.
        compute_grads: bool; False skips the backward pass and returns None
            for the gradients.

    Returns:
        (loss, grads, stats): ``loss`` a float; ``grads`` a dict with the keys of
        ``params`` (or None); ``stats`` a dict with "loss", "accuracy" (the share
        of predicted positions whose highest score is the label, 0.0 when there
        are none) and "num_predicted" (int, the number of predicted positions).
        Lesson 09's ``Trainer`` logs these, and reports a perplexity.
    """
    hidden, cache = gpt_forward(params, config, batch["input_ids"], batch.get("attention_mask"),
                                training, rng)
    B, T, D = hidden.shape
    labels = batch["labels"].reshape(-1)
    positions = np.flatnonzero(labels != -100)                   # (M,): positions with a next token
    targets = labels[positions]
    logits, head_cache = mlm_head_forward(hidden.reshape(-1, D)[positions], params, config)
    loss = cross_entropy(logits, targets)
    num_predicted = int(positions.size)
    accuracy = float(np.mean(logits.argmax(axis=-1) == targets)) if num_predicted else 0.0
    stats = {"loss": loss, "accuracy": accuracy, "num_predicted": num_predicted}
    if not compute_grads:
        return loss, None, stats
    dlogits = cross_entropy_grad(logits, targets).astype(logits.dtype, copy=False)
    dselected, head_grads = mlm_head_backward(dlogits, head_cache)
    dhidden = np.zeros_like(hidden, shape=(B * T, D))
    dhidden[positions] = dselected
    encoder_grads = bert_backward(dhidden.reshape(B, T, D), cache)
    grads = {name: np.zeros_like(value) for name, value in params.items()}  # pooler, classifier: 0
    for part in (encoder_grads, head_grads):
        for name, grad in part.items():
            grads[name] += grad         # embeddings.word: the lookup's and the tied decoder's
    return loss, grads, stats


# --------------------------------------------------------------------------- decoding


def sample_next_token(logits, u, temperature=1.0):
    """Pick one token per row: the most likely (temperature 0) or a draw from the softmax.

    With ``temperature > 0`` the row's probabilities are
    ``softmax(logits / temperature)`` (a token whose logit is -inf gets 0), and
    the uniform number ``u`` picks the token by the inverse of the cumulative
    distribution: the first token whose cumulative probability exceeds ``u``.
    Rounding can leave the last cumulative probability just below 1; compare
    ``u`` times that last value, so that the index stays in range and a token
    of probability 0 is never chosen. The same ``u`` always gives the same
    token, which makes sampling reproducible and testable. Temperature 0 is
    greedy decoding: the argmax.

    Args:
        logits: float array of shape (B, V), each row with at least one finite entry.
        u: float array of shape (B,), each in [0, 1).
        temperature: float >= 0.

    Returns:
        int64 array of shape (B,): the chosen token ids.
    """
    if temperature == 0:
        return logits.argmax(axis=-1)
    probs = softmax(logits / temperature)                       # (B, V), 0 where the logit is -inf
    cdf = np.cumsum(probs, axis=-1)
    # Count the tokens whose cumulative probability is <= u: that count is the index of the
    # first one above u. Scaling u by the last entry keeps the count below V when rounding
    # makes the total 0.99999999.
    return (cdf <= u[:, None] * cdf[:, -1:]).sum(axis=-1)


def top_k_filter(logits, k):
    """Keep the ``k`` highest logits of each row and set the others to -inf.

    A logit equal to the k-th highest of its row is kept too (ties are not
    broken), and ``k >= V`` keeps every token. The result goes to
    ``sample_next_token``: the removed tokens get probability 0 and the kept
    ones share what they had, renormalised.

    Args:
        logits: float array of shape (..., V).
        k: int >= 1.

    Returns:
        float array shaped like ``logits``: each kept entry unchanged, the others -inf.
    """
    if k >= logits.shape[-1]:
        return logits.copy()
    kth_highest = np.sort(logits, axis=-1)[..., -k, None]       # (..., 1)
    return np.where(logits < kth_highest, -np.inf, logits)


def top_p_filter(logits, p):
    """Nucleus filtering: keep the most likely tokens until their probability reaches ``p``.

    Sort each row's tokens from the most likely down (``softmax(logits)``;
    tokens of equal probability in vocabulary order, as a stable sort leaves
    them). A token is kept when the probability of the tokens before it in
    that order is below ``p``: the smallest set of top tokens whose total is
    at least ``p``. The most likely token is always kept. The others are set
    to -inf.

    Args:
        logits: float array of shape (..., V); entries may be -inf (already
            removed, e.g. by ``top_k_filter``).
        p: float in (0, 1].

    Returns:
        float array shaped like ``logits``: each kept entry unchanged, the others -inf.
    """
    probs = softmax(logits)
    order = np.argsort(-probs, axis=-1, kind="stable")          # most likely first
    sorted_probs = np.take_along_axis(probs, order, axis=-1)
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs    # the mass of the tokens before
    keep = np.empty(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, before < p, axis=-1)         # back to the vocabulary's order
    return np.where(keep, logits, -np.inf)


# --------------------------------------------------------------------------- the key/value cache


def attend_with_cache(q, k, v, k_cache, v_cache):
    """Attention for new tokens, reusing the keys and values of the tokens before them.

    The cache holds the keys and values of the ``Tc`` tokens already read. The
    ``Tn`` new tokens' keys and values are appended to it (along the token
    axis), and new token i, at position ``Tc + i``, attends to every key at a
    position ``<= Tc + i``: the whole cache and the new tokens up to itself.
    With ``Tn = 1`` (one token at a time) that is every key; with a whole
    prompt at once it is a causal mask shifted by ``Tc``.

    Args:
        q, k, v: float arrays of shape (B, H, Tn, dh): the new tokens' queries,
            keys and values, split into heads.
        k_cache, v_cache: float arrays of shape (B, H, Tc, dh); Tc may be 0.

    Returns:
        (out, k_cache, v_cache): ``out`` of shape (B, H, Tn, dh), the new
        tokens' attention outputs (lesson 05's ``attention_forward``); the two
        caches of shape (B, H, Tc + Tn, dh), the old entries first.
    """
    k_all = np.concatenate([k_cache, k], axis=2)
    v_all = np.concatenate([v_cache, v], axis=2)
    Tc, Tn = k_cache.shape[2], q.shape[2]
    key_positions = np.arange(Tc + Tn)[None, :]                 # (1, Tc + Tn)
    query_positions = Tc + np.arange(Tn)[:, None]               # (Tn, 1)
    out, _ = attention_forward(q, k_all, v_all, key_positions <= query_positions)
    return out, k_all, v_all


# =============================================================================
# The lesson's helpers: generation, with and without the cache, and its measures
# =============================================================================


def next_token_logits(params, config, input_ids):
    """The scores of the token after each sequence, by reading every sequence in full.

    This is generation without a cache: each new token costs a forward pass
    over the whole sequence so far.

    Args:
        input_ids: int array of shape (B, T), no padding.

    Returns:
        float array of shape (B, V).
    """
    hidden, _ = gpt_forward(params, config, input_ids)
    return mlm_head_forward(hidden[:, -1], params, config)[0]


def empty_cache(config, batch_size, dtype=np.float32):
    """One (keys, values) pair per layer, each (B, H, 0, dh): nothing read yet."""
    H = config.num_heads
    shape = (batch_size, H, 0, config.hidden_size // H)
    return [(np.zeros(shape, dtype), np.zeros(shape, dtype)) for _ in range(config.num_layers)]


def _cached_attention(x, block, num_heads, cache):
    q = split_heads(x @ block["Wq"] + block["bq"], num_heads)   # (B, H, Tn, dh)
    k = split_heads(x @ block["Wk"] + block["bk"], num_heads)
    v = split_heads(x @ block["Wv"] + block["bv"], num_heads)
    heads, k_cache, v_cache = attend_with_cache(q, k, v, *cache)
    return merge_heads(heads) @ block["Wo"] + block["bo"], (k_cache, v_cache)


def decode_step(params, config, input_ids, cache):
    """Read new tokens, reusing (and extending) the keys and values of the ones before.

    The same computation as ``gpt_forward`` in evaluation mode, restricted to
    the new tokens: their embeddings take the positions after the cached ones,
    and each block's attention goes through ``attend_with_cache``.

    Args:
        params, config: the model (dropout is not applied).
        input_ids: int array of shape (B, Tn): the new tokens (a whole prompt,
            or the one token just generated).
        cache: the list ``empty_cache`` makes, or the one a previous call returned.

    Returns:
        (logits, cache): ``logits`` of shape (B, Tn, V), the next-token scores
        after each new token; the cache extended by Tn positions.
    """
    Tc, Tn = cache[0][0].shape[2], input_ids.shape[1]
    summed = (params["embeddings.word"][input_ids] + params["embeddings.position"][Tc:Tc + Tn]
              + params["embeddings.token_type"][0])
    x, _ = layernorm_forward(summed, params["embeddings.ln_gamma"], params["embeddings.ln_beta"],
                             config.layer_norm_eps)
    eps, new_cache = config.layer_norm_eps, []
    for i in range(config.num_layers):
        block = layer_params(params, i)
        if config.pre_ln:
            normed, _ = layernorm_forward(x, block["ln1_gamma"], block["ln1_beta"], eps)
            attended, layer_cache = _cached_attention(normed, block, config.num_heads, cache[i])
            h = x + attended
            normed, _ = layernorm_forward(h, block["ln2_gamma"], block["ln2_beta"], eps)
            x = h + feed_forward_forward(normed, block)[0]
        else:
            attended, layer_cache = _cached_attention(x, block, config.num_heads, cache[i])
            h, _ = add_layernorm_forward(x, attended, block["ln1_gamma"], block["ln1_beta"], eps)
            x, _ = add_layernorm_forward(h, feed_forward_forward(h, block)[0],
                                         block["ln2_gamma"], block["ln2_beta"], eps)
        new_cache.append(layer_cache)
    if config.pre_ln:
        x, _ = layernorm_forward(x, params["final.ln_gamma"], params["final.ln_beta"], eps)
    return mlm_head_forward(x, params, config)[0], new_cache


def generate(params, config, prompt_ids, max_new_tokens, choose, eos_id=SEP, use_cache=True):
    """Extend every prompt one token at a time, each token chosen by ``choose``.

    Args:
        params, config: the model.
        prompt_ids: int array of shape (B, T0), every prompt the same length
            (e.g. all ``[[CLS]]``).
        max_new_tokens: int, the most tokens added to a sequence (fewer if the
            sequences reach ``config.max_position_embeddings``).
        choose: callable ``logits (B, V) -> ids (B,)``, e.g. a sampler built on
            ``sample_next_token``.
        eos_id: int or None; a sequence that produces it stops there (its
            later tokens are dropped), and generation stops when all have.
        use_cache: bool; True reads each new token once through
            ``decode_step``, False reads the whole sequence again at every
            step (``next_token_logits``). Both give the same tokens.

    Returns:
        list of B lists of ints: each prompt followed by its generated tokens,
        up to and including ``eos_id``.
    """
    ids = np.asarray(prompt_ids, dtype=np.int64)
    B, T0 = ids.shape
    cache = empty_cache(config, B, params["mlm.W"].dtype) if use_cache else None
    unread = ids                                               # what the cache has not seen yet
    finished = np.zeros(B, dtype=bool)
    for _ in range(min(max_new_tokens, config.max_position_embeddings - T0)):
        if use_cache:
            logits, cache = decode_step(params, config, unread, cache)
            logits = logits[:, -1]
        else:
            logits = next_token_logits(params, config, ids)
        new = np.asarray(choose(logits), dtype=np.int64)
        ids = np.concatenate([ids, new[:, None]], axis=1)
        unread = new[:, None]
        if eos_id is not None:
            finished |= new == eos_id
            if finished.all():
                break
    sequences = []
    for row in ids.tolist():
        if eos_id is not None and eos_id in row[T0:]:
            row = row[:row.index(eos_id, T0) + 1]
        sequences.append(row)
    return sequences


def ids_to_sentence(ids, tokens):
    """The words of a generated sequence, without [CLS] and [SEP]: ``"the dog sleeps"``."""
    return " ".join(tokens[i] for i in ids if i not in (CLS, SEP))


def generation_report(sentences, training_sentences):
    """What a set of generated sentences is worth, against the grammar and the training set.

    Args:
        sentences: list of str, space-separated words.
        training_sentences: set of str, the sentences the model was trained on.

    Returns:
        dict with "grammatical" (share the grammar accepts), "distinct" (share
        of different sentences), "novel" (share that is grammatical and not in
        the training set) and "mean_words".
    """
    n = len(sentences)
    grammatical = [is_grammatical(s) if s else False for s in sentences]
    novel = [g and s not in training_sentences for s, g in zip(sentences, grammatical)]
    return {"grammatical": sum(grammatical) / n, "distinct": len(Counter(sentences)) / n,
            "novel": sum(novel) / n, "mean_words": float(np.mean([len(s.split()) for s in sentences]))}


def agreement_accuracy(params, config, items, vocab):
    """How often the model prefers the verb that agrees with its subject, from the left context only.

    For each item of ``solutions.corpora.agreement_items``, the model reads
    ``[CLS]`` and the words before the verb and scores the next token; the item
    counts as right when ``correct`` scores higher than ``wrong``. (Lesson 09's
    masked model saw both sides of the verb; here only the left one.)

    Returns:
        dict attractors -> (accuracy, number of items).
    """
    by_attractors = {}
    for item in items:
        prefix = np.array([[CLS] + [vocab[w] for w in item.tokens[:item.verb]]])
        scores = next_token_logits(params, config, prefix)[0]
        right = scores[vocab[item.correct]] > scores[vocab[item.wrong]]
        by_attractors.setdefault(item.attractors, []).append(right)
    return {a: (float(np.mean(r)), len(r)) for a, r in sorted(by_attractors.items())}
