"""Lesson 02 - Optimizers (reference solutions).

An optimizer holds a list of parameter arrays and changes them *in place*:
``opt = Adam(params, lr=1e-3)`` once, then ``opt.step(grads)`` after every
backward pass, with ``grads[k]`` the gradient of the loss with respect to
``params[k]`` (same shape, same order every step). The learning rate is kept
in ``opt.lr`` so that a schedule can change it between steps. The formulas follow
PyTorch's ``torch.optim`` so that lesson 12 can compare them step for step.
"""

import math

import numpy as np

from solutions.losses import cross_entropy, cross_entropy_grad


class SGD:
    """Stochastic gradient descent, with optional (heavy-ball) momentum.

    Every step, for each parameter p with gradient g:
    ``velocity = momentum * velocity + g`` (velocity starts at 0), then
    ``p -= lr * velocity``. With ``momentum=0`` this is plain ``p -= lr * g``.

    Args:
        params: list of float arrays, updated in place by ``step``.
        lr: float, the learning rate, kept in ``self.lr`` (a schedule may change it
            between steps).
        momentum: float in [0, 1), how much of the previous velocity to keep.
    """

    def __init__(self, params, lr, momentum=0.0):
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.velocities = [np.zeros_like(p) for p in params]

    def step(self, grads):
        """Update every parameter in place.

        Args:
            grads: list of float arrays, ``grads[k]`` shaped like ``params[k]``.
        """
        for p, g, v in zip(self.params, grads, self.velocities):
            v *= self.momentum
            v += g
            p -= self.lr * v


class Adam:
    """Adam with bias correction (Kingma and Ba, 2015), as in ``torch.optim.Adam``.

    Step t = 1, 2, ... for each parameter p with gradient g:
    ``m = b1 * m + (1 - b1) * g`` and ``v = b2 * v + (1 - b2) * g**2`` (both
    start at 0); ``m_hat = m / (1 - b1**t)``, ``v_hat = v / (1 - b2**t)``;
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)``.

    Args:
        params: list of float arrays, kept in ``self.params`` (AdamW builds on
            that name) and updated in place by ``step``.
        lr: float, the learning rate, kept in ``self.lr`` (a schedule may change it
            between steps).
        betas: (b1, b2), the decay rates of the two moving averages.
        eps: float added to the denominator.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = params
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):
        """Update every parameter in place.

        Args:
            grads: list of float arrays, ``grads[k]`` shaped like ``params[k]``.
        """
        self.t += 1
        correction1 = 1 - self.beta1 ** self.t
        correction2 = 1 - self.beta2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m[...] = self.beta1 * m + (1 - self.beta1) * g
            v[...] = self.beta2 * v + (1 - self.beta2) * g * g
            m_hat = m / correction1
            v_hat = v / correction2
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as in ``torch.optim.AdamW``.

    Each step first shrinks every parameter, ``p *= 1 - lr * weight_decay``,
    and then takes the ordinary Adam step. The decay never enters the moving
    averages ``m`` and ``v`` (folding ``weight_decay * p`` into the gradient
    would make it L2 regularisation, which Adam then rescales).

    Args:
        params: list of float arrays, updated in place by ``step``.
        lr: float, the learning rate, kept in ``self.lr`` (a schedule may change it
            between steps).
        betas: (b1, b2), the decay rates of the two moving averages.
        eps: float added to the denominator.
        weight_decay: float, the decoupled weight decay.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        self.weight_decay = weight_decay

    def step(self, grads):
        """Update every parameter in place.

        Args:
            grads: list of float arrays, ``grads[k]`` shaped like ``params[k]``.
        """
        for p in self.params:
            p *= 1 - self.lr * self.weight_decay
        super().step(grads)


def scheduled_lr(step, base_lr, warmup_steps, total_steps, schedule="linear"):
    """The learning rate for one step of linear warmup followed by a decay.

    ``step`` counts the optimizer steps already taken (0 for the first one),
    as in Hugging Face's schedulers. During warmup, ``step < warmup_steps``,
    the rate grows linearly: ``base_lr * step / warmup_steps``. After it,
    ``progress = (step - warmup_steps) / (total_steps - warmup_steps)``
    runs from 0 to 1 and the rate is ``base_lr * (1 - progress)`` ("linear")
    or ``base_lr * 0.5 * (1 + cos(pi * progress))`` ("cosine"). From
    ``total_steps`` on it stays at 0.

    Args:
        step: int >= 0.
        base_lr: float, the peak learning rate, reached when warmup ends.
        warmup_steps: int >= 0 (0 means no warmup).
        total_steps: int > warmup_steps.
        schedule: "linear" or "cosine".

    Returns:
        float: the learning rate to use for this step.
    """
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    if schedule == "linear":
        return base_lr * (1.0 - progress)
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}: use 'linear' or 'cosine'")


def clip_grad_norm(grads, max_norm):
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    The global norm is ``sqrt(sum over all arrays and entries of g**2)``. When
    it exceeds ``max_norm`` every gradient is multiplied, in place, by
    ``max_norm / (norm + 1e-6)``; otherwise nothing changes (as
    ``torch.nn.utils.clip_grad_norm_``).

    Args:
        grads: list of float arrays, modified in place.
        max_norm: float > 0.

    Returns:
        float: the global norm *before* clipping (handy for logging).
    """
    total_norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    scale = max_norm / (total_norm + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= scale
    return total_norm


def logreg_loss_and_grad(W, b, X, y):
    """Loss and gradients of a softmax (multinomial logistic) regression.

    ``logits = X @ W + b``; ``loss = cross_entropy(logits, y)``. Use the
    ``cross_entropy`` and ``cross_entropy_grad`` of lesson 01.

    Args:
        W: float array of shape (D, C), the weights.
        b: float array of shape (C,), the biases.
        X: float array of shape (N, D), one sample per row.
        y: int array of shape (N,), the class of each sample, in [0, C).

    Returns:
        (loss, dW, db): the mean cross-entropy (float), and its gradients
        with respect to W, shape (D, C), and b, shape (C,).
    """
    logits = X @ W + b                                # (N, C)
    loss = cross_entropy(logits, y)
    dlogits = cross_entropy_grad(logits, y)           # (N, C)
    dW = X.T @ dlogits                                # (D, C)
    db = dlogits.sum(axis=0)                          # (C,)
    return loss, dW, db
