"""Lesson 12 - PyTorch (reference solutions, and the mini-BERT as an ``nn.Module``).

The same mini-BERT as lesson 07, written with PyTorch: tensors that live on a
device (the CPU or a CUDA GPU), gradients from autograd instead of hand-written
backward passes, ``F.scaled_dot_product_attention``, ``torch.optim.AdamW``,
bfloat16 autocast and ``torch.compile``.

The first part holds the exercises of ``lessons/12_pytorch.ipynb`` (same
signatures and docstrings there). Then ``TorchBert``, the model, which loads the
NumPy model's weights and gives the same outputs; checkpoints in lesson 09's
format (``model.safetensors`` with our NumPy names, and ``config.json``), so a
model pretrained in NumPy loads here and back; and ``make_train_step``, one
timed training step for the GPU benchmarks (``scripts/gpu_check.py``).

Our NumPy weights are (in, out) and compute ``x @ W + b``; an ``nn.Linear``
stores the transpose, (out, in), and computes ``x @ weight.T + bias``. The
names, ours -> ``TorchBert``'s (^T: stored transposed), as ``torch_names`` gives them:

    embeddings.word             embeddings.word.weight        (also the MLM decoder's weight)
    embeddings.position         embeddings.position.weight
    embeddings.token_type       embeddings.token_type.weight
    embeddings.ln_gamma/beta    embeddings.ln.weight / .bias
    layers.i.Wq, bq             layers.i.query.weight^T, .bias     (Wk, Wv, Wo: key, value, out)
    layers.i.ln1_gamma/beta     layers.i.ln1.weight / .bias
    layers.i.W1, b1             layers.i.ff1.weight^T, .bias       (D -> F)
    layers.i.W2, b2             layers.i.ff2.weight^T, .bias       (F -> D)
    layers.i.ln2_gamma/beta     layers.i.ln2.weight / .bias
    final.ln_gamma/beta         final_ln.weight / .bias            (pre-LN models only)
    mlm.W, mlm.b                mlm.dense.weight^T, .bias
    mlm.ln_gamma/beta           mlm.ln.weight / .bias
    mlm.bias                    mlm.decoder.bias
    pooler.W, pooler.b          pooler.weight^T, .bias
    classifier.W, classifier.b  classifier.weight^T, .bias

``mlm.decoder.weight`` IS ``embeddings.word.weight`` (the same ``nn.Parameter``:
weight tying), so it has no entry of its own; its bias is our ``mlm.bias``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from solutions.bert import BertConfig
from solutions.pretrained import read_safetensors
from solutions.pretraining import load_pretrained, save_pretrained
from solutions.scaling import train_step_flops                  # lesson 14: the same count

# =============================================================================
# The exercises
# =============================================================================


def batch_to_tensors(batch, device="cpu"):
    """A batch of NumPy arrays as PyTorch tensors on ``device``, with the dtypes a model expects.

    Floating arrays become float32 (the dtype of the model's parameters, even
    when the array is float64); integer arrays (token ids, labels) become int64
    (``torch.long``: what ``nn.Embedding`` and ``F.cross_entropy`` take); bool
    arrays stay bool. The values are unchanged.

    Args:
        batch: dict name -> np.ndarray (any shape; float, integer or bool).
        device: str or ``torch.device``: "cpu", "cuda", ...

    Returns:
        dict with the same names -> ``torch.Tensor`` on ``device``.
    """
    tensors = {}
    for name, array in batch.items():
        tensor = torch.from_numpy(np.asarray(array, order="C"))   # C order; 0-d stays 0-d
        if tensor.is_floating_point():
            tensor = tensor.float()
        elif tensor.dtype != torch.bool:
            tensor = tensor.long()
        tensors[name] = tensor.to(device)
    return tensors


def torch_grad_of(fn, inputs, dout, device="cpu"):
    """The gradients autograd gives for a function of NumPy arrays, in float64.

    Each input becomes a float64 leaf tensor on ``device`` that requires a
    gradient; ``out = fn(*tensors)``; one backward pass from ``dout``, the
    gradient of the loss with respect to ``out`` (``out.backward(dout)``, which
    is the gradient of ``sum(out * dout)``), exactly what a hand-written
    ``backward(dout, cache)`` of lessons 03-07 receives.

    Args:
        fn: callable taking one tensor per input and returning a tensor ``out``.
        inputs: list of float np.ndarrays.
        dout: float np.ndarray shaped like ``out`` (0-d for a scalar output).
        device: where to compute ("cpu" or "cuda").

    Returns:
        list of float64 np.ndarrays (on the host), the gradient of each input,
        shaped like it.
    """
    tensors = [torch.tensor(x, dtype=torch.float64, device=device, requires_grad=True)
               for x in inputs]
    out = fn(*tensors)
    out.backward(torch.as_tensor(dout, dtype=out.dtype, device=device))
    return [t.grad.cpu().numpy() for t in tensors]


def load_numpy_weights(model, params):
    """Copy our NumPy parameters into a ``TorchBert``, in place.

    ``torch_names(model.config)`` maps each of our names to the module's
    parameter name and says whether it is stored transposed (our (in, out)
    weight matrices are ``nn.Linear``'s (out, in)). Every value is *copied into*
    the existing parameter (``param.copy_(...)`` under ``torch.no_grad()``),
    which keeps the parameter's dtype and device, and keeps the MLM decoder
    tied to the word embeddings: they are one ``nn.Parameter``.

    Args:
        model: a ``TorchBert`` (on any device, any float dtype).
        params: dict our name -> np.ndarray (float32 or float64), as ``init_bert`` makes.

    Returns:
        ``model`` itself.
    """
    with torch.no_grad():
        for ours, (theirs, transposed) in torch_names(model.config).items():
            value = torch.as_tensor(params[ours])
            model.get_parameter(theirs).copy_(value.T if transposed else value)
    return model


def sdpa_attention(x, attention_mask, query, key, value, output, num_heads):
    """Multi-head self-attention with ``F.scaled_dot_product_attention``.

    ``q, k, v = query(x), key(x), value(x)``, each split into ``num_heads``
    heads of size d = D / num_heads: (B, T, D) -> (B, T, H, d) -> (B, H, T, d).
    Then ``F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)``, which
    computes ``softmax(q k^T / sqrt(d)) v`` itself; ``allowed`` is a bool mask
    (B, 1, 1, T), True where a key may be attended to (its ``attention_mask``
    is 1). The heads are merged back to (B, T, D) and go through ``output``.

    Args:
        x: float tensor (B, T, D).
        attention_mask: int or bool tensor (B, T), 1 on tokens and 0 on padding;
            or None for no padding.
        query, key, value, output: ``nn.Linear(D, D)`` modules.
        num_heads: int H, dividing D.

    Returns:
        float tensor (B, T, D), the dtype of ``x`` (of the autocast dtype under autocast).
    """
    B, T, D = x.shape

    def split_heads(t):
        return t.view(B, T, num_heads, D // num_heads).transpose(1, 2)     # (B, H, T, d)

    q, k, v = split_heads(query(x)), split_heads(key(x)), split_heads(value(x))
    allowed = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)      # (B, H, T, d)
    return output(context.transpose(1, 2).reshape(B, T, D))


def torch_training_step(model, batch, loss_fn, optimizer, scheduler=None, max_grad_norm=1.0):
    """One training step in PyTorch: gradients, clipping, the optimizer, the schedule.

    In this order: forget the previous step's gradients
    (``optimizer.zero_grad()``); ``loss = loss_fn(model, batch)``;
    ``loss.backward()``; clip all gradients together to ``max_grad_norm``
    (``torch.nn.utils.clip_grad_norm_``; None or 0: measure the norm, clip
    nothing); ``optimizer.step()``; then ``scheduler.step()`` (when there is a
    scheduler), which sets the learning rate of the *next* step.

    Args:
        model: an ``nn.Module``.
        batch: whatever ``loss_fn`` takes.
        loss_fn: callable ``(model, batch) -> loss``, a scalar tensor.
        optimizer: a ``torch.optim`` optimizer over ``model.parameters()``.
        scheduler: a ``torch.optim.lr_scheduler`` scheduler, or None.
        max_grad_norm: float, or None / 0 for no clipping.

    Returns:
        dict of floats: "loss", "grad_norm" (the global norm before clipping) and
        "learning_rate" (the rate this step used: ``optimizer.param_groups[0]["lr"]``).
    """
    learning_rate = optimizer.param_groups[0]["lr"]
    optimizer.zero_grad()
    loss = loss_fn(model, batch)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm or math.inf)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {"loss": loss.item(), "grad_norm": grad_norm.item(), "learning_rate": learning_rate}


def torch_adamw_trajectory(initial, gradient_fn, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.01, device="cpu"):
    """The path of ``torch.optim.AdamW`` from ``initial``, given a gradient function.

    The parameter is a float64 tensor on ``device``, starting at ``initial``.
    Every step: evaluate ``gradient_fn`` at the *current* parameter (as a NumPy
    array), put the result in ``param.grad``, and call ``optimizer.step()``;
    then record a copy of the parameter.

    Args:
        initial: float64 np.ndarray, the starting point.
        gradient_fn: callable np.ndarray -> np.ndarray (the same shape), called
            once per step.
        steps: int >= 1.
        lr, betas, eps, weight_decay: AdamW's settings (passed to torch as they are).
        device: where the parameter lives ("cpu" or "cuda").

    Returns:
        float64 np.ndarray of shape (steps, *initial.shape): row t is the
        parameter after step t + 1.
    """
    param = torch.tensor(initial, dtype=torch.float64, device=device, requires_grad=True)
    optimizer = torch.optim.AdamW([param], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    trajectory = []
    for _ in range(steps):
        grad = gradient_fn(param.detach().cpu().numpy())
        param.grad = torch.as_tensor(grad, dtype=param.dtype, device=param.device)
        optimizer.step()
        trajectory.append(param.detach().cpu().numpy().copy())
    return np.stack(trajectory)


def bf16_mlm_loss(model, batch):
    """The masked-LM loss with the forward pass in bfloat16 (autocast), the loss in float32.

    Under ``torch.autocast(device_type, dtype=torch.bfloat16)`` (the device of
    ``batch["input_ids"]``), the matrix products run in bfloat16 while the
    parameters stay float32. The encoder runs on the batch, the MLM head on the
    positions whose label is not -100 (``model.mlm_logits``). The cross-entropy
    is taken in float32, so that its softmax and its mean over positions are
    float32 sums: here on the logits turned to float32 (``.float()``) outside
    autocast (autocast would also run ``F.cross_entropy`` in float32 itself, but
    outside it a loss on bfloat16 logits is computed in bfloat16).

    Args:
        model: a ``TorchBert`` with float32 parameters.
        batch: dict of tensors on the model's device: "input_ids", "labels"
            (B, T) int64, "attention_mask" (B, T), optionally "token_type_ids".
            At least one label is not -100.

    Returns:
        a float32 scalar tensor (autograd can go back through it).
    """
    labels = batch["labels"].reshape(-1)
    positions = (labels != -100).nonzero().squeeze(1)
    device_type = batch["input_ids"].device.type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
        hidden = model(batch["input_ids"], batch.get("token_type_ids"),
                       batch.get("attention_mask"))
        logits = model.mlm_logits(hidden.flatten(0, 1)[positions])          # (M, V) bfloat16
    return F.cross_entropy(logits.float(), labels[positions])


def mlm_dataloader(examples, collator, batch_size, seed):
    """A ``torch.utils.data.DataLoader`` of masked-LM batches, as int64 tensors.

    The loader shuffles the examples at the start of every pass (``shuffle=True``)
    with its own generator, ``torch.Generator().manual_seed(seed)``: a new order
    every epoch, the same orders for the same seed. Batches hold ``batch_size``
    examples, the last one what is left (it is kept). Its ``collate_fn`` calls
    ``collator`` (lesson 08's ``MLMCollator``) on the batch's list of examples
    and turns each NumPy array of the result into a tensor.

    Args:
        examples: list of token-id lists.
        collator: callable list of examples -> dict of int64 np.ndarrays (B, T).
        batch_size: int >= 1.
        seed: int.

    Returns:
        a DataLoader; iterating it gives dicts name -> int64 tensor (B, T).
    """
    def collate(batch_examples):
        return {name: torch.from_numpy(array) for name, array in collator(batch_examples).items()}

    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(examples, batch_size=batch_size, shuffle=True,
                                       collate_fn=collate, generator=generator)


def numpy_weights(model):
    """A ``TorchBert``'s parameters as our NumPy dict, ready for lesson 09's checkpoint files.

    The inverse of ``load_numpy_weights``: for every entry of
    ``torch_names(model.config)``, the parameter brought to the host as float32,
    transposed back to our (in, out) layout where it is stored transposed. Each
    array is a contiguous *copy*, so training the model afterwards does not
    change it. The tied decoder has no entry (it is ``embeddings.word``).

    Args:
        model: a ``TorchBert`` (on any device, any float dtype).

    Returns:
        dict our name -> float32 np.ndarray (C-contiguous), the names and shapes of ``init_bert``.
    """
    params = {}
    for ours, (theirs, transposed) in torch_names(model.config).items():
        value = model.get_parameter(theirs).detach().float().cpu()
        params[ours] = np.array((value.T if transposed else value).numpy(), order="C")   # a copy
    return params


# =============================================================================
# The model
# =============================================================================

_LAYER_NAMES = {   # ours -> (the name inside TorchBert's "layers.i.", stored transposed?)
    "Wq": ("query.weight", True), "bq": ("query.bias", False),
    "Wk": ("key.weight", True), "bk": ("key.bias", False),
    "Wv": ("value.weight", True), "bv": ("value.bias", False),
    "Wo": ("out.weight", True), "bo": ("out.bias", False),
    "ln1_gamma": ("ln1.weight", False), "ln1_beta": ("ln1.bias", False),
    "W1": ("ff1.weight", True), "b1": ("ff1.bias", False),
    "W2": ("ff2.weight", True), "b2": ("ff2.bias", False),
    "ln2_gamma": ("ln2.weight", False), "ln2_beta": ("ln2.bias", False),
}
_OTHER_NAMES = {
    "embeddings.word": ("embeddings.word.weight", False),
    "embeddings.position": ("embeddings.position.weight", False),
    "embeddings.token_type": ("embeddings.token_type.weight", False),
    "embeddings.ln_gamma": ("embeddings.ln.weight", False),
    "embeddings.ln_beta": ("embeddings.ln.bias", False),
    "mlm.W": ("mlm.dense.weight", True), "mlm.b": ("mlm.dense.bias", False),
    "mlm.ln_gamma": ("mlm.ln.weight", False), "mlm.ln_beta": ("mlm.ln.bias", False),
    "mlm.bias": ("mlm.decoder.bias", False),
    "pooler.W": ("pooler.weight", True), "pooler.b": ("pooler.bias", False),
    "classifier.W": ("classifier.weight", True), "classifier.b": ("classifier.bias", False),
}


def torch_names(config):
    """Our NumPy names -> (``TorchBert``'s parameter name, stored transposed?).

    Args:
        config: a ``BertConfig``.

    Returns:
        dict our name -> (str, bool), one entry per array of ``init_bert(config)``.
    """
    names = dict(_OTHER_NAMES)
    for i in range(config.num_layers):
        names.update({f"layers.{i}.{ours}": (f"layers.{i}.{theirs}", transposed)
                      for ours, (theirs, transposed) in _LAYER_NAMES.items()})
    if config.pre_ln:
        names["final.ln_gamma"] = ("final_ln.weight", False)
        names["final.ln_beta"] = ("final_ln.bias", False)
    return names


def _at_least_float32(logits):
    """bfloat16 / float16 logits as float32 (for the softmax and the loss); float64 stays float64."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


class Embeddings(nn.Module):
    """Word + position + segment embeddings, then LayerNorm and dropout (lesson 07)."""

    def __init__(self, config):
        super().__init__()
        D = config.hidden_size
        self.word = nn.Embedding(config.vocab_size, D)
        self.position = nn.Embedding(config.max_position_embeddings, D)
        self.token_type = nn.Embedding(config.type_vocab_size, D)
        self.ln = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        summed = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        return self.dropout(self.ln(summed))


class EncoderLayer(nn.Module):
    """One Transformer encoder block (lesson 06): attention and feed-forward, post-LN or pre-LN."""

    def __init__(self, config):
        super().__init__()
        D, F_ = config.hidden_size, config.intermediate_size
        self.num_heads = config.num_heads
        self.pre_ln = config.pre_ln
        self.query = nn.Linear(D, D)
        self.key = nn.Linear(D, D)
        self.value = nn.Linear(D, D)
        self.out = nn.Linear(D, D)
        self.ln1 = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.ff1 = nn.Linear(D, F_)
        self.ff2 = nn.Linear(F_, D)
        self.ln2 = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def attention(self, x, attention_mask):
        return sdpa_attention(x, attention_mask, self.query, self.key, self.value, self.out,
                              self.num_heads)

    def feed_forward(self, x):
        return self.ff2(F.gelu(self.ff1(x)))                  # the exact (erf) GELU, as BERT

    def forward(self, x, attention_mask=None):
        if self.pre_ln:
            x = x + self.dropout(self.attention(self.ln1(x), attention_mask))
            return x + self.dropout(self.feed_forward(self.ln2(x)))
        x = self.ln1(x + self.dropout(self.attention(x, attention_mask)))
        return self.ln2(x + self.dropout(self.feed_forward(x)))


class MLMHead(nn.Module):
    """Dense, GELU, LayerNorm, then the decoder, whose weight is the word embedding table."""

    def __init__(self, config, word_embeddings):
        super().__init__()
        D, V = config.hidden_size, config.vocab_size
        self.dense = nn.Linear(D, D)
        self.ln = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(D, V)                        # its bias is our "mlm.bias"
        self.decoder.weight = word_embeddings.weight          # tied: one Parameter, two uses

    def forward(self, hidden):
        return self.decoder(self.ln(F.gelu(self.dense(hidden))))


class TorchBert(nn.Module):
    """Lesson 07's mini-BERT as an ``nn.Module``: the same computation, the same weights.

    ``model(input_ids, token_type_ids, attention_mask)`` runs the encoder and
    returns the hidden states (B, T, D); ``mlm_logits``, ``pooled`` and
    ``classifier_logits`` are the three heads; ``mlm_loss`` and
    ``classification_loss`` take a batch dict of tensors. ``from_numpy`` /
    ``numpy_params`` convert from / to our NumPy parameters (``torch_names``),
    ``from_pretrained`` / ``save_pretrained`` read and write lesson 09's files.

    Args:
        config: a ``BertConfig``. Dropout acts in training mode (``model.train()``,
            the default for a new module) and not after ``model.eval()``.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        D = config.hidden_size
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList([EncoderLayer(config) for _ in range(config.num_layers)])
        self.final_ln = nn.LayerNorm(D, eps=config.layer_norm_eps) if config.pre_ln else None
        self.mlm = MLMHead(config, self.embeddings.word)
        self.pooler = nn.Linear(D, D)
        self.classifier_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(D, config.num_labels)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        """BERT's initialisation, as ``init_bert``: normal(0, init_std) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        """The encoder: (B, T) ids -> hidden states (B, T, D).

        Args:
            input_ids: int64 tensor (B, T).
            token_type_ids: int64 tensor (B, T), or None for all 0.
            attention_mask: tensor (B, T), 1 on tokens and 0 on padding, or None.
        """
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask)
        return hidden if self.final_ln is None else self.final_ln(hidden)

    def mlm_logits(self, hidden):
        """The MLM head: (..., D) -> (..., V)."""
        return self.mlm(hidden)

    def pooled(self, hidden):
        """The pooler on [CLS]: (B, T, D) -> (B, D), tanh(dense(hidden[:, 0]))."""
        return torch.tanh(self.pooler(hidden[:, 0]))

    def classifier_logits(self, hidden):
        """The classification head on the pooled vector: (B, T, D) -> (B, C)."""
        return self.classifier(self.classifier_dropout(self.pooled(hidden)))

    def mlm_loss(self, batch):
        """Lesson 07's masked-LM loss: the mean cross-entropy over the labelled positions.

        The head runs on the labelled positions only (0.0 when there are none); the
        loss is float32 even under bfloat16 autocast (float64 for a float64 model).
        ``batch``: dict of tensors "input_ids", "labels", optionally
        "attention_mask" and "token_type_ids".
        """
        hidden = self(batch["input_ids"], batch.get("token_type_ids"), batch.get("attention_mask"))
        labels = batch["labels"].reshape(-1)
        positions = (labels != -100).nonzero().squeeze(1)
        if positions.numel() == 0:
            return hidden.sum() * 0.0
        logits = self.mlm_logits(hidden.flatten(0, 1)[positions])
        return F.cross_entropy(_at_least_float32(logits), labels[positions])

    def classification_loss(self, batch):
        """The mean cross-entropy of the classification head; ``batch["labels"]`` is (B,)."""
        hidden = self(batch["input_ids"], batch.get("token_type_ids"), batch.get("attention_mask"))
        return F.cross_entropy(_at_least_float32(self.classifier_logits(hidden)), batch["labels"])

    @classmethod
    def from_numpy(cls, params, config):
        """A float32 ``TorchBert`` on the CPU holding our NumPy parameters (``.to(device)`` it)."""
        return load_numpy_weights(cls(config), params)

    def numpy_params(self):
        """Our NumPy parameter dict (float32 copies, our names and layout)."""
        return numpy_weights(self)

    def save_pretrained(self, folder, tokens):
        """Write lesson 09's pretrained-model folder: model.safetensors, config.json, vocab.txt."""
        save_pretrained(folder, self.numpy_params(), self.config, tokens)

    @classmethod
    def from_pretrained(cls, folder):
        """A model from lesson 09's files: a ``save_pretrained`` folder (with config.json) or a
        Trainer checkpoint (``checkpoint-<step>/``, whose trainer_state.json holds the config)."""
        folder = Path(folder)
        if (folder / "config.json").is_file():
            params, config, _ = load_pretrained(folder)
        else:
            state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
            config = BertConfig(**state["config"])
            params = read_safetensors(folder / "model.safetensors")
        return cls.from_numpy(params, config)


# =============================================================================
# One timed training step, for the speed tables and scripts/gpu_check.py
# =============================================================================

PRECISIONS = ("fp32", "bf16")


def make_train_step(config, batch_size, seq_len, device="cpu", precision="fp32", compile=False,
                    seed=0, learning_rate=1e-4):
    """One masked-LM training step of ``TorchBert`` on a fixed random batch, ready to time.

    ``step = make_train_step(config, 32, 128, "cuda", "bf16", compile=True)``
    builds the model (BERT's initialisation, seeded), ``torch.optim.AdamW``
    (weight decay 0.01 on the matrices, none on biases and LayerNorms; fused on a
    GPU) and one batch of random token ids without padding (so the attention can
    use its fastest kernels) with 15 % of the positions to predict, the same
    number in every sequence (fixed shapes: ``torch.compile`` compiles once).
    Each ``step()`` then does, in training mode (dropout as ``config.dropout``):
    ``zero_grad``, the forward pass and the float32 cross-entropy on the
    masked positions (under bfloat16 autocast for ``precision="bf16"``; the
    parameters and the optimizer stay float32), ``backward``, ``optimizer.step()``.

    ``step()`` returns the loss as a 0-d tensor *without* waiting for the GPU:
    to time it, call ``torch.cuda.synchronize()`` (or ``loss.item()``) before
    reading the clock. The first calls are slow (CUDA start-up, cuBLAS
    heuristics, and with ``compile=True`` the compilation itself, seconds to
    minutes): warm up with a few steps first. "fp32" is true float32 (PyTorch's
    default ``torch.backends.cuda.matmul.allow_tf32 = False``).

    The returned function also carries ``step.model``, ``step.optimizer``,
    ``step.batch`` (dict of tensors), ``step.tokens`` (B * T, for tokens/s) and
    ``step.flops`` (``train_step_flops``, for FLOP/s and MFU).

    Args:
        config: a ``BertConfig`` (or a dict of its fields); ``max_position_embeddings >= seq_len``.
        batch_size: int B.
        seq_len: int T.
        device: "cpu", "cuda" or a ``torch.device``.
        precision: "fp32" or "bf16".
        compile: bool; True compiles each encoder layer with ``torch.compile``
            (``layer.compile()``: one compiled graph for all the layers; needs a C
            compiler, and a GPU for the fast kernels).
        seed: int, for the weights, the batch and dropout.
        learning_rate: float.

    Returns:
        ``step``: callable with no argument -> the loss (0-d float32 tensor).
    """
    if isinstance(config, dict):
        config = BertConfig(**config)
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: use one of {PRECISIONS}")
    if seq_len > config.max_position_embeddings:
        raise ValueError(f"seq_len={seq_len} > max_position_embeddings="
                         f"{config.max_position_embeddings}")
    device = torch.device(device)
    torch.manual_seed(seed)
    model = TorchBert(config).to(device).train()
    matrices = [p for p in model.parameters() if p.ndim >= 2]
    vectors = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.01},
                                   {"params": vectors, "weight_decay": 0.0}],
                                  lr=learning_rate, fused=True if device.type == "cuda" else None)

    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), generator=generator)
    per_sequence = max(1, round(0.15 * seq_len))
    chosen = torch.rand(batch_size, seq_len, generator=generator).argsort(dim=1)[:, :per_sequence]
    positions = (chosen + seq_len * torch.arange(batch_size)[:, None]).reshape(-1).sort().values
    targets = input_ids.reshape(-1)[positions]
    batch = {"input_ids": input_ids.to(device), "positions": positions.to(device),
             "targets": targets.to(device)}

    def loss_fn(input_ids, positions, targets):
        hidden = model(input_ids)
        logits = model.mlm_logits(hidden.flatten(0, 1)[positions])
        return F.cross_entropy(logits.float(), targets)

    if compile:
        # Regional compilation: compile the block that repeats, the encoder layer, rather than
        # the whole step. Every layer runs the same code with its own weights as inputs, so one
        # compiled graph serves them all, and compiling costs about one layer's worth (on a
        # 2-core CPU: 11 s instead of 21 for the mini-BERT, 13 s instead of 37 for BERT-base).
        # dynamic=False: the shapes never change, so compile for exactly these.
        for layer in model.layers:
            layer.compile(dynamic=False)
    use_bf16 = precision == "bf16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = loss_fn(batch["input_ids"], batch["positions"], batch["targets"])
        loss.backward()
        optimizer.step()
        return loss.detach()

    step.model, step.optimizer, step.batch = model, optimizer, batch
    step.tokens = batch_size * seq_len
    step.flops = train_step_flops(config, batch_size, seq_len, positions.numel())
    return step
