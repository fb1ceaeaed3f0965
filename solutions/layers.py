"""Lesson 03 - Layers and backprop (reference solutions).

Every layer is a pair of functions in the style of Stanford's CS231n:
``out, cache = layer_forward(inputs...)`` computes the output and keeps in
``cache`` what the backward pass needs; ``layer_backward(dout, cache)`` takes
``dout``, the gradient of the loss with respect to ``out``, and returns the
gradients with respect to the inputs (and parameters). What each cache holds is
documented in its forward's docstring: the grader hands the reference cache to
your backward.

On top of the functions, a small ``Module`` base class (parameters, gradients,
train/eval) and the layer classes that later lessons assemble into BERT.
"""

import math
import sys

import numpy as np
from scipy.special import erf as scipy_erf

from solutions.losses import cross_entropy, cross_entropy_grad


def array_module(x):
    """The array library ``x`` belongs to: ``numpy``, or ``cupy`` for a CuPy array (lesson 11).

    NumPy's functions hand CuPy arrays over to CuPy by themselves (``np.exp`` of a
    GPU array runs on the GPU), all but a few such as ``np.add.at``: code meant for
    both asks for the module there.
    """
    return sys.modules["cupy"] if type(x).__module__.split(".")[0] == "cupy" else np


def erf(x):
    """The error function, elementwise: SciPy's on NumPy arrays, CuPy's on GPU arrays."""
    if array_module(x) is np:
        return scipy_erf(x)
    from cupyx.scipy.special import erf as cupy_erf
    return cupy_erf(x)

# --------------------------------------------------------------------------- functions


def linear_forward(x, W, b):
    """A fully connected (affine) layer: ``out = x @ W + b``.

    Args:
        x: float array of shape (..., D_in): any number of leading axes, for
            example (N, D_in) for a batch of vectors or (B, T, D_in) for a batch
            of sequences.
        W: float array of shape (D_in, D_out).
        b: float array of shape (D_out,).

    Returns:
        (out, cache): ``out`` a float array of shape (..., D_out); ``cache`` the
        tuple ``(x, W)``.
    """
    out = x @ W
    out += b                    # in place: no second (..., D_out) array to allocate
    return out, (x, W)


def linear_backward(dout, cache):
    """Backward pass of ``linear_forward``.

    ``dx = dout @ W.T``; ``dW`` and ``db`` sum over every leading axis (every
    sample and every position contributes to the same weights).

    Args:
        dout: float array of shape (..., D_out), the gradient of the loss with
            respect to ``out``.
        cache: ``(x, W)`` from ``linear_forward``.

    Returns:
        (dx, dW, db): float arrays of shapes (..., D_in), (D_in, D_out) and
        (D_out,).
    """
    x, W = cache
    x_rows = x.reshape(-1, W.shape[0])              # (M, D_in), M = product of leading axes
    dout_rows = dout.reshape(-1, W.shape[1])        # (M, D_out)
    dx = dout @ W.T
    dW = x_rows.T @ dout_rows
    db = dout_rows.sum(axis=0)
    return dx, dW, db


def relu_forward(x):
    """The rectified linear unit, ``max(x, 0)`` entry by entry.

    Args:
        x: float array of any shape.

    Returns:
        (out, cache): ``out`` of the same shape and dtype as ``x``; ``cache`` is
        ``x`` itself.
    """
    return np.maximum(x, 0.0), x


def relu_backward(dout, cache):
    """Backward pass of ``relu_forward``.

    The gradient flows through where ``x > 0`` and is 0 elsewhere; at exactly
    ``x == 0`` we take the derivative to be 0, as PyTorch does.

    Args:
        dout: float array, shaped like ``x``.
        cache: ``x`` from ``relu_forward``.

    Returns:
        dx: float array shaped like ``x``.
    """
    x = cache
    return dout * (x > 0)


def gelu_forward(x):
    """GELU, the exact form: ``0.5 * x * (1 + erf(x / sqrt(2)))``, which is ``x * Phi(x)``.

    ``Phi`` is the standard normal CDF. NumPy has no ``erf``; use
    ``scipy.special.erf`` (available as ``erf``). This is BERT's activation
    (``hidden_act="gelu"``).

    The cache keeps ``Phi(x)`` next to ``x``: the backward pass needs ``Phi(x)``
    again, and ``erf`` is the costliest element-wise operation of a Transformer
    block (several times an ``np.exp`` per entry), so it is computed once, here.

    Args:
        x: float array of any shape.

    Returns:
        (out, cache): ``out`` of the same shape and dtype as ``x``; ``cache`` the
        pair ``(x, cdf)`` with ``cdf = Phi(x) = 0.5 * (1 + erf(x / sqrt(2)))``, of
        the same shape and dtype as ``x``. (Take the square root with ``math.sqrt``:
        ``np.sqrt(2)`` is a NumPy float64, which turns a float32 ``x`` into float64
        under NumPy 2.)
    """
    # Phi(x), built in place (+=, *=): on a Transformer's (B, T, F) activations,
    # every new array costs more time than the arithmetic.
    cdf = erf(x / math.sqrt(2.0))
    cdf += 1.0
    cdf *= 0.5
    return x * cdf, (x, cdf)


def gelu_backward(dout, cache):
    """Backward pass of ``gelu_forward``.

    ``d/dx [x * Phi(x)] = Phi(x) + x * phi(x)``, with ``phi(x) = exp(-x**2 / 2) / sqrt(2 pi)``
    the standard normal density. ``Phi(x)`` comes from the cache: no ``erf`` here.

    Args:
        dout: float array, shaped like ``x``.
        cache: ``(x, Phi(x))`` from ``gelu_forward``.

    Returns:
        dx: float array shaped like ``x``.
    """
    x, cdf = cache
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)     # phi(x)
    return dout * (cdf + x * pdf)


def gelu_tanh_forward(x):
    """GELU, the tanh approximation: ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.

    PyTorch's ``F.gelu(x, approximate="tanh")`` and GPT-2's activation. It
    differs from the exact form by less than 1e-3.

    Args:
        x: float array of any shape.

    Returns:
        (out, cache): ``out`` of the same shape and dtype as ``x`` (``math.sqrt``,
        as in ``gelu_forward``); ``cache`` is ``x`` itself.
    """
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
    return 0.5 * x * (1.0 + np.tanh(inner)), x


def gelu_tanh_backward(dout, cache):
    """Backward pass of ``gelu_tanh_forward``.

    With ``u = sqrt(2 / pi) * (x + 0.044715 * x**3)`` and ``t = tanh(u)``:
    ``d/dx = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * sqrt(2 / pi) * (1 + 3 * 0.044715 * x**2)``.

    Args:
        dout: float array, shaped like ``x``.
        cache: ``x`` from ``gelu_tanh_forward``.

    Returns:
        dx: float array shaped like ``x``.
    """
    x = cache
    t = np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))
    du_dx = math.sqrt(2.0 / math.pi) * (1.0 + 3 * 0.044715 * x ** 2)
    return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx)


def dropout_forward(x, p, training, rng):
    """Inverted dropout: zero each entry with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    When ``training`` and ``p > 0``, draw exactly once
    ``keep = rng.random(x.shape) >= p`` (so the same generator state gives the
    same mask), and return ``out = x * keep / (1 - p)``: the expected value
    of every entry is unchanged, so nothing needs rescaling at test time.
    Otherwise (evaluation, or ``p == 0``) the layer does nothing and draws
    nothing: ``out`` is ``x``.

    Args:
        x: float array of any shape.
        p: float in [0, 1), the probability of dropping an entry.
        training: bool; dropout acts only while training.
        rng: a ``np.random.Generator``.

    Returns:
        (out, cache): ``out`` shaped like ``x``; ``cache`` the scaled mask
        ``keep / (1 - p)`` (an array shaped like ``x``, in its dtype: 0 where dropped,
        ``1 / (1 - p)`` where kept), or None in evaluation or when ``p == 0``
        (a training call returns the mask even if it happens to keep everything).
    """
    if not training or p == 0:
        return x, None
    mask = (rng.random(x.shape) >= p).astype(x.dtype)   # keep x's dtype
    mask /= 1.0 - p
    return x * mask, mask


def dropout_backward(dout, cache):
    """Backward pass of ``dropout_forward``.

    Args:
        dout: float array, shaped like ``x``.
        cache: the scaled mask from ``dropout_forward``, or None.

    Returns:
        dx: float array shaped like ``x``: ``dout * mask``, or ``dout`` when
        the cache is None.
    """
    mask = cache
    if mask is None:
        return dout
    return dout * mask


def layernorm_forward(x, gamma, beta, eps=1e-12):
    """Layer normalisation over the last axis, as in BERT.

    For each vector along the last axis: ``mean`` and the population
    variance ``var`` (divide by D, not D - 1), ``x_hat = (x - mean) / sqrt(var + eps)``,
    then ``out = gamma * x_hat + beta``. BERT uses ``eps = 1e-12``.

    Args:
        x: float array of shape (..., D).
        gamma: float array of shape (D,), the scale.
        beta: float array of shape (D,), the shift.
        eps: small float added to the variance.

    Returns:
        (out, cache): ``out`` of shape (..., D); ``cache`` the tuple
        ``(x_hat, inv_std, gamma)`` with ``x_hat`` of shape (..., D) and
        ``inv_std = 1 / sqrt(var + eps)`` of shape (..., 1) (``keepdims=True``);
        ``out``, ``x_hat`` and ``inv_std`` in the dtype of ``x``.
    """
    centered = x - x.mean(axis=-1, keepdims=True)
    var = (centered * centered).mean(axis=-1, keepdims=True)  # (..., 1), divides by D
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = centered * inv_std
    out = gamma * x_hat
    out += beta                         # in place: one array fewer to allocate
    return out, (x_hat, inv_std, gamma)


def layernorm_backward(dout, cache):
    """Backward pass of ``layernorm_forward``.

    With ``g = dout * gamma`` and means taken over the last axis:
    ``dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``; the two mean
    terms come from the mean and the variance depending on every entry.
    ``dgamma`` and ``dbeta`` sum over every leading axis.

    Args:
        dout: float array of shape (..., D).
        cache: ``(x_hat, inv_std, gamma)`` from ``layernorm_forward``.

    Returns:
        (dx, dgamma, dbeta): float arrays of shapes (..., D), (D,) and (D,).
    """
    x_hat, inv_std, gamma = cache
    D = x_hat.shape[-1]
    g = dout * gamma
    dx = g - g.mean(axis=-1, keepdims=True)              # then in place, term by term:
    dx -= x_hat * (g * x_hat).mean(axis=-1, keepdims=True)
    dx *= inv_std
    dgamma = (dout * x_hat).reshape(-1, D).sum(axis=0)
    dbeta = dout.reshape(-1, D).sum(axis=0)
    return dx, dgamma, dbeta


def embedding_forward(ids, table):
    """Look up one row of ``table`` per id.

    Args:
        ids: int array of any shape (...), every value in [0, V).
        table: float array of shape (V, D): one vector per id.

    Returns:
        (out, cache): ``out = table[ids]``, shape (..., D); ``cache`` the tuple
        ``(ids, table.shape)``.
    """
    return table[ids], (ids, table.shape)


def embedding_backward(dout, cache):
    """Backward pass of ``embedding_forward``: the gradient with respect to the table.

    Row ``v`` of the result is the sum of ``dout`` over every position whose
    id is ``v`` (an id that appears three times collects three gradients; rows
    never looked up get 0). ``np.add.at`` adds repeated indices correctly;
    ``dtable[ids] += dout`` does not.

    Args:
        dout: float array of shape (..., D), shaped like ``out``.
        cache: ``(ids, table_shape)`` from ``embedding_forward``.

    Returns:
        dtable: array of shape ``table_shape`` = (V, D), in the dtype of ``dout``.
    """
    ids, table_shape = cache
    xp = array_module(dout)                   # numpy, or cupy on a GPU (lesson 11)
    dtable = xp.zeros(table_shape, dtype=dout.dtype)
    xp.add.at(dtable, ids, dout)
    return dtable


def softmax_cross_entropy(logits, targets, ignore_index=-100):
    """The classification head: mean cross-entropy and its gradient in one call.

    Works for any number of leading axes (a score for every class at every
    position): both are flattened to rows, the ``cross_entropy`` and
    ``cross_entropy_grad`` of lesson 01 do the work, and the gradient is given
    back in the shape of ``logits``. Targets equal to ``ignore_index`` do not
    count; the mean runs over the others (the loss is 0.0 when none counts).

    Args:
        logits: float array of shape (..., C).
        targets: int array of shape (...), each in [0, C) or ``ignore_index``.
        ignore_index: the target value that marks a position to skip.

    Returns:
        (loss, dlogits): the mean loss (float) and its gradient with respect to
        ``logits``, a float array of shape (..., C).
    """
    num_classes = logits.shape[-1]
    flat_logits = logits.reshape(-1, num_classes)
    flat_targets = targets.reshape(-1)
    loss = cross_entropy(flat_logits, flat_targets, ignore_index)
    dlogits = cross_entropy_grad(flat_logits, flat_targets, ignore_index)
    return loss, dlogits.reshape(logits.shape)


# --------------------------------------------------------------------------- modules


class Module:
    """The base class of every layer and model: parameters, their gradients, a train/eval flag.

    A subclass calls ``super().__init__()`` first, registers its arrays with
    ``add_parameter``, and keeps its sub-layers in attributes: a Module, or a
    list of Modules. It writes its own ``forward(...)`` and ``backward(dout)``;
    ``backward`` *adds* into ``self.grads`` (so a parameter used twice collects
    both gradients), which is why a training step starts with ``zero_grad()``.

    Attributes:
        params: dict name -> float array, this module's own parameters (its
            children's are in the children).
        grads: dict with the same keys: the gradient of each parameter, an
            array of the same shape.
        training: bool, True after construction; ``eval()`` sets it to False
            here and in every module below.
    """

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True

    def add_parameter(self, name, value):
        """Register ``value`` as the parameter ``name``, with a gradient of zeros of its shape.

        Args:
            name: str, the key in ``params`` and ``grads``.
            value: float array, stored as it is (not copied).
        """
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def named_children(self):
        """The direct sub-modules, in the order their attributes were first set.

        An attribute holding a Module gives ``(attribute name, module)``; an
        attribute holding a list gives ``("name.i", module)`` for each Module at
        index ``i`` of the list. Every other attribute is ignored.

        Returns:
            list of (str, Module) pairs.
        """
        children = []
        for name, value in vars(self).items():
            if isinstance(value, Module):
                children.append((name, value))
            elif isinstance(value, list):
                children += [(f"{name}.{i}", item) for i, item in enumerate(value)
                             if isinstance(item, Module)]
        return children

    def named_parameters(self):
        """Every parameter of this module and of the modules below it, depth first.

        This module's own parameters come first, in the order they were added,
        then each child's (in ``named_children`` order), their names prefixed
        with the child's name and a dot: ``"layers.0.W"``.

        Returns:
            list of (str, array) pairs; the arrays themselves, not copies.
        """
        named = list(self.params.items())
        for child_name, child in self.named_children():
            named += [(f"{child_name}.{name}", value) for name, value in child.named_parameters()]
        return named

    def parameters(self):
        """The parameter arrays, in ``named_parameters`` order: what an optimizer takes.

        Returns:
            list of arrays (the arrays themselves, so an optimizer updates the model in place).
        """
        return [value for _, value in self.named_parameters()]

    def gradients(self):
        """The gradient arrays, in the same order as ``parameters()``.

        Returns:
            list of arrays (the arrays in ``grads`` themselves, not copies).
        """
        grads = [self.grads[name] for name in self.params]
        for _, child in self.named_children():
            grads += child.gradients()
        return grads

    def zero_grad(self):
        """Set every gradient, here and below, to 0 in place (the arrays stay the same objects)."""
        for grad in self.gradients():
            grad.fill(0.0)

    def train(self):
        """Switch this module and every module below it to training mode.

        Returns:
            self.
        """
        self.training = True
        for _, child in self.named_children():
            child.train()
        return self

    def eval(self):
        """Switch this module and every module below it to evaluation mode.

        Returns:
            self.
        """
        self.training = False
        for _, child in self.named_children():
            child.eval()
        return self

    def num_parameters(self):
        """The total number of entries in all parameters, here and below.

        Returns:
            int.
        """
        return sum(int(value.size) for value in self.parameters())


class Linear(Module):
    """A fully connected layer, ``out = x @ W + b``, as a Module.

    Parameters: ``W`` of shape (in_features, out_features), drawn with exactly
    one call ``rng.normal(0.0, init_std, size=(in_features, out_features))``
    (BERT initialises with init_std = 0.02), and ``b`` of shape (out_features,),
    zeros. Both are registered with ``add_parameter``, in that order.
    ``forward`` and ``backward`` call ``linear_forward`` and ``linear_backward``;
    ``backward`` adds into ``self.grads``.

    Args:
        in_features: int, D_in.
        out_features: int, D_out.
        rng: a ``np.random.Generator`` for the weights.
        init_std: float, the standard deviation of the entries of W.
    """

    def __init__(self, in_features, out_features, rng, init_std=0.02):
        super().__init__()
        self.add_parameter("W", rng.normal(0.0, init_std, size=(in_features, out_features)))
        self.add_parameter("b", np.zeros(out_features))
        self.cache = None

    def forward(self, x):
        """Compute the output and keep the cache for ``backward``.

        Args:
            x: float array of shape (..., in_features).

        Returns:
            float array of shape (..., out_features).
        """
        out, self.cache = linear_forward(x, self.params["W"], self.params["b"])
        return out

    def backward(self, dout):
        """Add dW and db to ``self.grads`` (in place) and return dx.

        Args:
            dout: float array of shape (..., out_features), for the last ``forward``.

        Returns:
            dx: float array of shape (..., in_features).
        """
        dx, dW, db = linear_backward(dout, self.cache)
        self.grads["W"] += dW
        self.grads["b"] += db
        return dx


class ReLU(Module):
    """``relu_forward`` / ``relu_backward`` as a layer (no parameters)."""

    def __init__(self):
        super().__init__()
        self.cache = None

    def forward(self, x):
        out, self.cache = relu_forward(x)
        return out

    def backward(self, dout):
        return relu_backward(dout, self.cache)


class GELU(Module):
    """GELU as a layer: ``approximate="none"`` (exact, BERT) or ``"tanh"``, as ``torch.nn.GELU``."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', not {approximate!r}")
        self.approximate = approximate
        self.cache = None

    def forward(self, x):
        forward = gelu_forward if self.approximate == "none" else gelu_tanh_forward
        out, self.cache = forward(x)
        return out

    def backward(self, dout):
        backward = gelu_backward if self.approximate == "none" else gelu_tanh_backward
        return backward(dout, self.cache)


class Dropout(Module):
    """Inverted dropout with probability ``p``; active only while ``self.training``.

    Args:
        p: float in [0, 1), the probability of dropping an entry.
        rng: a ``np.random.Generator``, drawn from at every training ``forward``.
    """

    def __init__(self, p, rng):
        super().__init__()
        self.p = p
        self.rng = rng
        self.cache = None

    def forward(self, x):
        out, self.cache = dropout_forward(x, self.p, self.training, self.rng)
        return out

    def backward(self, dout):
        return dropout_backward(dout, self.cache)


class LayerNorm(Module):
    """Layer normalisation over the last axis; ``gamma`` starts at 1 and ``beta`` at 0.

    Args:
        dim: int, D, the size of the last axis.
        eps: float added to the variance (BERT: 1e-12).
    """

    def __init__(self, dim, eps=1e-12):
        super().__init__()
        self.add_parameter("gamma", np.ones(dim))
        self.add_parameter("beta", np.zeros(dim))
        self.eps = eps
        self.cache = None

    def forward(self, x):
        out, self.cache = layernorm_forward(x, self.params["gamma"], self.params["beta"], self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = layernorm_backward(dout, self.cache)
        self.grads["gamma"] += dgamma
        self.grads["beta"] += dbeta
        return dx


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``dim``, looked up by integer id.

    The table is drawn as ``rng.normal(0.0, init_std, size=(num_embeddings, dim))``
    (BERT: 0.02). ``backward`` adds into ``grads["table"]`` and returns None:
    integer ids have no gradient.

    Args:
        num_embeddings: int, V.
        dim: int, D.
        rng: a ``np.random.Generator``.
        init_std: float, the standard deviation of the entries.
    """

    def __init__(self, num_embeddings, dim, rng, init_std=0.02):
        super().__init__()
        self.add_parameter("table", rng.normal(0.0, init_std, size=(num_embeddings, dim)))
        self.cache = None

    def forward(self, ids):
        out, self.cache = embedding_forward(ids, self.params["table"])
        return out

    def backward(self, dout):
        self.grads["table"] += embedding_backward(dout, self.cache)
        return None


class Sequential(Module):
    """Layers applied one after the other; ``backward`` visits them in reverse.

    Its children are ``layers.0``, ``layers.1``, ... (the list ``self.layers``).
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
