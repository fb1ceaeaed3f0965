"""Lesson 17 in PyTorch: LoRA with the adapter in the forward pass, as libraries do it.

``LoRALinear`` wraps a frozen ``nn.Linear`` and adds ``scale * (x @ A) @ B``
(lesson 17's ``lora_forward``); autograd then computes no gradient for the
frozen weights at all. ``add_lora`` puts adapters into a ``TorchBert`` (lesson
12), and ``MeanPoolClassifier`` is lesson 17's classifier (mean of the hidden
states, a linear head) around it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from solutions.torch_bert import torch_names                            # lesson 12


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a low-rank adapter: ``base(x) + scale * (x @ A) @ B``.

    ``A`` (in, r) starts as N(0, 1 / in) and ``B`` (r, out) at zero, in our
    (in, out) layout, so that the numbers are the NumPy lesson's.
    """

    def __init__(self, base, rank, alpha, generator=None):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.randn(base.in_features, rank, generator=generator,
                                          dtype=base.weight.dtype) / math.sqrt(base.in_features))
        self.B = nn.Parameter(torch.zeros(rank, base.out_features, dtype=base.weight.dtype))

    def forward(self, x):
        return self.base(x) + self.scale * ((x @ self.A) @ self.B)

    def merged_weight(self):
        """The merged weight in ``nn.Linear``'s (out, in) layout: ``W.T + scale * (A @ B).T``."""
        return self.base.weight + self.scale * (self.A @ self.B).T


class MeanPoolClassifier(nn.Module):
    """Lesson 17's classifier: the mean of a ``TorchBert``'s hidden states, then a linear head."""

    def __init__(self, bert, num_labels):
        super().__init__()
        self.bert = bert
        self.head = nn.Linear(bert.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask):
        hidden = self.bert(input_ids, attention_mask=attention_mask)
        mask = attention_mask[..., None].to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return self.head(pooled)

    def loss(self, batch):
        return F.cross_entropy(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])


def add_lora(classifier, rank, alpha, targets=("Wq", "Wv"), seed=0):
    """Freeze ``classifier.bert`` and put a ``LoRALinear`` on every target of every layer.

    The head stays trainable. Returns the trainable parameters, by name, for the optimizer.
    """
    generator = torch.Generator().manual_seed(seed)
    bert = classifier.bert
    bert.requires_grad_(False)
    for i in range(bert.config.num_layers):
        for target in targets:
            parent, attribute = _linear_of(bert, f"layers.{i}.{target}").rsplit(".", 1)
            layer = bert.get_submodule(parent)
            setattr(layer, attribute, LoRALinear(getattr(layer, attribute), rank, alpha, generator))
    return {name: p for name, p in classifier.named_parameters() if p.requires_grad}


def _linear_of(bert, name):
    """The ``TorchBert`` submodule that holds our weight ``name``: "layers.0.Wq" -> "layers.0.query"."""
    return torch_names(bert.config)[name][0].rsplit(".", 1)[0]


def load_adapters(classifier, adapters, head):
    """Copy lesson 17's NumPy adapters (``"layers.{i}.{target}.A"``/``".B"``) and head into it."""
    with torch.no_grad():
        for key, value in adapters.items():
            name, part = key.rsplit(".", 1)
            module = classifier.bert.get_submodule(_linear_of(classifier.bert, name))
            getattr(module, part).copy_(torch.as_tensor(value))
        classifier.head.weight.copy_(torch.as_tensor(head["head.W"]).T)
        classifier.head.bias.copy_(torch.as_tensor(head["head.b"]))
    return classifier
