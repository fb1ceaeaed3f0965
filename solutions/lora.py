"""Lesson 17 - Parameter-efficient fine-tuning with LoRA.

LoRA (Hu et al., 2021) freezes a pretrained weight ``W`` (D_in, D_out) and
learns a low-rank change of it, ``W + scale * A @ B`` with ``A`` (D_in, r) and
``B`` (r, D_out), ``r`` much smaller than D_in and D_out. ``B`` starts at zero,
so training starts from the pretrained model exactly.

Exercises: ``lora_forward`` and ``lora_backward`` (a linear layer with an
adapter), ``lora_grads_from_weight_grad`` (the chain rule through ``W + scale *
A @ B``), ``merge_lora``, ``lora_parameter_count`` and ``lora_loss_and_grads``
(a whole model's adapters from its ordinary gradients). The helpers after them
are the lesson's: adapters for a BERT, and a sentence classifier on mean-pooled
hidden states (lesson 13's recipe) with its gradients.
"""

from __future__ import annotations

import numpy as np

from solutions.bert import _all_grads, bert_backward, bert_forward      # lesson 07
from solutions.losses import cross_entropy, cross_entropy_grad          # lesson 01
from solutions.optimizers import AdamW                                  # lesson 02
from solutions.sentence_embeddings import mean_pool, tokenize_batch     # lesson 13

# Where LoRA goes by default: the query and value projections, as in the paper.
LORA_TARGETS = ("Wq", "Wv")

# --------------------------------------------------------------------------- one layer


def lora_forward(x, W, b, A, B, scale):
    """A frozen linear layer plus a low-rank adapter: ``x @ W + b + scale * (x @ A) @ B``.

    ``x @ A`` is computed first: the product ``A @ B`` (D_in, D_out) is never
    formed, so the adapter costs r * (D_in + D_out) multiply-adds per row
    instead of D_in * D_out.

    Args:
        x: float array (..., D_in), any number of leading axes.
        W: float array (D_in, D_out), frozen.
        b: float array (D_out,), frozen.
        A: float array (D_in, r), the adapter's down-projection.
        B: float array (r, D_out), the adapter's up-projection.
        scale: float, usually alpha / r.

    Returns:
        (out, cache): ``out`` (..., D_out); ``cache = (x, W, A, B, scale, h)``
        with ``h = x @ A`` (..., r).
    """
    h = x @ A
    out = x @ W + b + scale * (h @ B)
    return out, (x, W, A, B, scale, h)


def lora_backward(dout, cache):
    """The gradients of ``lora_forward`` for the input and the adapter; W and b are frozen.

    As in lesson 03, every leading axis of ``x`` is a row: reshape ``x``,
    ``h`` and ``dout`` to 2-D (rows, features) before the products.

    Args:
        dout: float array (..., D_out), the upstream gradient.
        cache: ``(x, W, A, B, scale, h)`` from ``lora_forward``.

    Returns:
        (dx, dA, dB): shaped like x, A and B. No gradient for W or b: they are
        not trained, so nothing is computed for them.
    """
    x, W, A, B, scale, h = cache
    x2 = x.reshape(-1, A.shape[0])                 # every leading axis is a row
    h2 = h.reshape(-1, A.shape[1])
    d2 = dout.reshape(-1, B.shape[1])
    dh2 = scale * (d2 @ B.T)                       # the gradient reaching h = x @ A
    dB = scale * (h2.T @ d2)
    dA = x2.T @ dh2
    dx = (d2 @ W.T + dh2 @ A.T).reshape(x.shape)
    return dx, dA, dB


def lora_grads_from_weight_grad(dW, A, B, scale):
    """The adapter's gradients from the gradient of the merged weight ``W + scale * A @ B``.

    If a model uses ``W_eff = W + scale * A @ B`` and its backward pass gives
    ``dW = dL/dW_eff``, the chain rule gives ``dA = scale * dW @ B.T`` and
    ``dB = scale * A.T @ dW``.

    Args:
        dW: float array (D_in, D_out), the gradient of the merged weight.
        A: float array (D_in, r).
        B: float array (r, D_out).
        scale: float.

    Returns:
        (dA, dB): shaped like A and B.
    """
    return scale * (dW @ B.T), scale * (A.T @ dW)


def merge_lora(W, A, B, scale):
    """The merged weight ``W + scale * A @ B``: one plain matrix, as fast as the original.

    Args:
        W: float array (D_in, D_out) (not modified).
        A: float array (D_in, r).
        B: float array (r, D_out).
        scale: float.

    Returns:
        a new float array (D_in, D_out).
    """
    return W + scale * (A @ B)


# --------------------------------------------------------------------------- a whole model


def lora_parameter_count(config, rank, targets=LORA_TARGETS):
    """How many numbers LoRA trains in a BERT: an A and a B for each target in each layer.

    A weight of shape (D_in, D_out) gets ``rank * (D_in + D_out)`` adapter
    parameters. With H = ``config.hidden_size`` and I =
    ``config.intermediate_size``, the shapes are: "Wq", "Wk", "Wv", "Wo"
    (H, H); "W1" (H, I); "W2" (I, H).

    Args:
        config: a ``BertConfig`` (``num_layers``, ``hidden_size``,
            ``intermediate_size``).
        rank: int r >= 1.
        targets: names among "Wq", "Wk", "Wv", "Wo", "W1", "W2", adapted in
            every layer (by default ``LORA_TARGETS``, ("Wq", "Wv"), as in the
            LoRA paper).

    Returns:
        int: the number of adapter parameters.
    """
    H, I = config.hidden_size, config.intermediate_size
    shapes = {"Wq": (H, H), "Wk": (H, H), "Wv": (H, H), "Wo": (H, H), "W1": (H, I), "W2": (I, H)}
    per_layer = sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)
    return config.num_layers * per_layer


def lora_loss_and_grads(params, adapters, scale, loss_fn, batch):
    """A model's loss, and the gradients of its adapters, from its ordinary backward pass.

    Every adapted weight ``name`` (the adapters hold ``name + ".A"`` and
    ``name + ".B"``: ``"layers.0.Wq.A"`` and ``"layers.0.Wq.B"`` for the
    weight ``"layers.0.Wq"``) is replaced by its merged weight in a new dict,
    the model runs as usual, and the gradient of each merged weight becomes its
    adapter's two gradients (``lora_grads_from_weight_grad``).

    Args:
        params: dict name -> float array (not modified).
        adapters: dict ``name + ".A"`` -> (D_in, r) and ``name + ".B"`` -> (r,
            D_out) for each adapted ``name`` of ``params``.
        scale: float.
        loss_fn: function ``(params, batch) -> (loss, grads)``, ``grads`` a dict
            with the keys of ``params``.
        batch: whatever ``loss_fn`` takes.

    Returns:
        (loss, grads): ``loss`` from ``loss_fn``; ``grads`` a dict with the
        gradient of every adapter key and of every key of ``params`` except
        the adapted weights themselves (they stay frozen).
    """
    adapted = [key[:-2] for key in adapters if key.endswith(".A")]
    merged = dict(params)
    for name in adapted:
        merged[name] = merge_lora(params[name], adapters[name + ".A"], adapters[name + ".B"], scale)
    loss, model_grads = loss_fn(merged, batch)
    grads = {key: g for key, g in model_grads.items() if key not in adapted}
    for name in adapted:
        grads[name + ".A"], grads[name + ".B"] = lora_grads_from_weight_grad(
            model_grads[name], adapters[name + ".A"], adapters[name + ".B"], scale)
    return loss, grads


# --------------------------------------------------------------------------- the lesson's helpers


def init_lora(params, config, rank, targets=LORA_TARGETS, rng=None, dtype=np.float32):
    """Adapters for every target in every layer: A ~ N(0, 1 / D_in), B = 0.

    With B = 0 the adapted model equals the pretrained one at the start; A is
    random so that B's first gradients (``scale * A.T @ dW``) are not zero.

    Returns:
        dict ``"layers.{i}.{target}.A"`` -> (D_in, r) and ``... .B`` -> (r, D_out).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    adapters = {}
    for i in range(config.num_layers):
        for target in targets:
            name = f"layers.{i}.{target}"
            d_in, d_out = params[name].shape
            adapters[name + ".A"] = (rng.normal(size=(d_in, rank)) / np.sqrt(d_in)).astype(dtype)
            adapters[name + ".B"] = np.zeros((rank, d_out), dtype=dtype)
    return adapters


def merged_params(params, adapters, scale):
    """``params`` with every adapted weight merged (a new dict; the arrays not adapted are shared)."""
    merged = dict(params)
    for key in adapters:
        if key.endswith(".A"):
            name = key[:-2]
            merged[name] = merge_lora(params[name], adapters[key], adapters[name + ".B"], scale)
    return merged


def init_head(hidden_size, num_labels, rng, dtype=np.float32):
    """A linear classifier on the pooled sentence vector: "head.W" (H, C) and "head.b" (C,)."""
    return {"head.W": (rng.normal(size=(hidden_size, num_labels)) * 0.02).astype(dtype),
            "head.b": np.zeros(num_labels, dtype=dtype)}


def pooled_classifier_logits(params, config, input_ids, attention_mask):
    """The classifier's logits (B, C): ``mean_pool(bert_forward(...)) @ head.W + head.b``."""
    hidden, _ = bert_forward(params, config, input_ids, None, attention_mask)
    return mean_pool(hidden, attention_mask) @ params["head.W"] + params["head.b"]


def pooled_classifier_loss_and_grads(params, config, batch, compute_grads=True):
    """Sentence classification on the mean of the hidden states (lesson 13's pooling).

    ``logits = mean_pool(bert_forward(...)) @ head.W + head.b`` and the mean
    cross-entropy with ``batch["labels"]``.

    Args:
        params: an encoder's dict plus "head.W" and "head.b".
        config: its ``BertConfig``.
        batch: dict with "input_ids", "attention_mask" (B, T) and "labels" (B,).
        compute_grads: False skips the backward pass (grads is then None).

    Returns:
        (loss, grads, logits): grads a dict with the keys of ``params``.
    """
    mask = batch["attention_mask"]
    hidden, cache = bert_forward(params, config, batch["input_ids"], None, mask)
    pooled = mean_pool(hidden, mask)
    logits = pooled @ params["head.W"] + params["head.b"]
    loss = cross_entropy(logits, batch["labels"])
    if not compute_grads:
        return loss, None, logits
    dlogits = cross_entropy_grad(logits, batch["labels"]).astype(hidden.dtype)
    dpooled = dlogits @ params["head.W"].T
    weights = mask[..., None].astype(hidden.dtype) / np.maximum(mask.sum(axis=1), 1)[:, None, None]
    encoder_grads = bert_backward(dpooled[:, None, :] * weights, cache)
    head_grads = {"head.W": pooled.T @ dlogits, "head.b": dlogits.sum(axis=0)}
    return loss, _all_grads(params, encoder_grads, head_grads), logits     # zeros for the pooler


def sentence_batches(sentences, labels, vocab, batch_size, rng):
    """Shuffled batches ``{"input_ids", "attention_mask", "labels"}`` of tokenized sentences."""
    order = rng.permutation(len(sentences))
    labels = np.asarray(labels)
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        ids, mask = tokenize_batch([sentences[i] for i in chosen], vocab)
        yield {"input_ids": ids, "attention_mask": mask, "labels": labels[chosen]}


def finetune(trainable, loss_and_grads, sentences, labels, vocab, epochs, lr, batch_size=32, seed=0):
    """Train the arrays of ``trainable`` in place with AdamW (no weight decay); the loss of every step.

    ``loss_and_grads(batch) -> (loss, grads)`` must give a gradient for every key of
    ``trainable`` (``lora_loss_and_grads`` does, for the adapters and the head).
    """
    names = list(trainable)
    optimizer = AdamW([trainable[name] for name in names], lr=lr, weight_decay=0.0)
    order_rng, losses = np.random.default_rng(seed), []
    for _ in range(epochs):
        for batch in sentence_batches(sentences, labels, vocab, batch_size, order_rng):
            loss, grads = loss_and_grads(batch)
            optimizer.step([grads[name] for name in names])
            losses.append(loss)
    return losses


def predict(params, config, vocab, sentences, batch_size=256):
    """The predicted class of each sentence (no gradients)."""
    predictions = []
    for start in range(0, len(sentences), batch_size):
        ids, mask = tokenize_batch(sentences[start:start + batch_size], vocab)
        predictions.append(pooled_classifier_logits(params, config, ids, mask).argmax(axis=-1))
    return np.concatenate(predictions)
