"""Lesson 15 - Responsible training: differential privacy, federated learning, bias, attributions.

Exercises: ``per_example_linear_grads`` and ``clip_per_example`` and
``dp_noisy_mean`` (the three steps of DP-SGD, Abadi et al., 2016),
``federated_averaging`` (one round of FedAvg, McMahan et al., 2017),
``weat_effect_size`` (an association test on embeddings, Caliskan et al., 2017)
and ``integrated_gradients`` (Sundararajan et al., 2017). The helpers after them
are the lesson's: a privacy accountant (full batches, and Poisson-sampled
mini-batches), a softmax regression's loss, and a small MLP with its input gradient.
"""

from __future__ import annotations

import math

import numpy as np

from solutions.losses import cross_entropy_grad, softmax                  # lesson 01
from solutions.optimizers import Adam, logreg_loss_and_grad              # lesson 02

# --------------------------------------------------------------------------- DP-SGD


def per_example_linear_grads(x, dout):
    """The gradient of a linear layer ``y = x W + b`` for each example of the batch separately.

    Backpropagation gives the batch's gradient ``x^T dout``: a sum over the
    examples, in which no single example's part can be seen any more. Keeping
    the batch axis apart gives each example's own: ``dW[n] = x[n]^T dout[n]``
    (summed over the example's tokens when there is a token axis).

    Args:
        x: float array (N, D_in), or (N, T, D_in) for N sequences of T tokens.
        dout: float array (N, D_out), or (N, T, D_out): the upstream gradient.

    Returns:
        (dW, db): float arrays (N, D_in, D_out) and (N, D_out), in the inputs'
        dtype (float32 stays float32); their sums over the first axis are the
        batch's gradients for the same ``dout`` (``x^T dout``).
    """
    if x.ndim == 2:
        x, dout = x[:, None, :], dout[:, None, :]
    dW = np.einsum("nti,nto->nio", x, dout)
    db = dout.sum(axis=1)
    return dW, db


def clip_per_example(per_example_grads, max_norm):
    """Scale each example's gradient so that its norm is at most ``max_norm``.

    Example n's gradient is all of its parameters' gradients together; its norm
    is the square root of the sum of their squares. It is multiplied by
    ``min(1, max_norm / (norm + 1e-6))`` (as Opacus does): a gradient already
    inside the ball is left alone, a larger one is shrunk onto it.

    Args:
        per_example_grads: dict name -> float array (N, ...): each parameter's
            gradient for each of the N examples (not modified).
        max_norm: float C > 0.

    Returns:
        dict name -> float array of the same shapes: the clipped gradients.
    """
    squares = sum(np.sum(g.reshape(len(g), -1) ** 2, axis=1) for g in per_example_grads.values())
    norms = np.sqrt(squares)                                             # (N,)
    factor = np.minimum(1.0, max_norm / (norms + 1e-6))
    return {name: g * factor.reshape((-1,) + (1,) * (g.ndim - 1))
            for name, g in per_example_grads.items()}


def dp_noisy_mean(clipped_grads, max_norm, noise_multiplier, noise):
    """DP-SGD's gradient: the sum of the clipped gradients plus Gaussian noise, over N.

    One example changes the sum by at most ``max_norm`` (its clipped gradient),
    so Gaussian noise of standard deviation ``noise_multiplier * max_norm`` on
    the sum hides it:

        ( sum_n clipped[n] + noise_multiplier * max_norm * z ) / N,  z ~ N(0, I).

    Args:
        clipped_grads: dict name -> float array (N, ...) from ``clip_per_example``
            (not modified).
        max_norm: float C.
        noise_multiplier: float sigma >= 0.
        noise: dict name -> float array of the parameter's shape (without N):
            standard normal draws z (not modified).

    Returns:
        dict name -> float array of the parameter's shape.
    """
    return {name: (g.sum(axis=0) + noise_multiplier * max_norm * noise[name]) / len(g)
            for name, g in clipped_grads.items()}


# --------------------------------------------------------------------------- federated learning


def federated_averaging(global_params, client_data, local_steps, lr, loss_and_grads):
    """One round of federated averaging (FedAvg).

    Each client starts from a copy of the global parameters, takes
    ``local_steps`` steps of full-batch gradient descent on its own data, and
    sends back only its parameters. The new global parameters are the clients'
    average, each weighted by its number of examples. The data never leaves the
    clients.

    Args:
        global_params: dict name -> float array (not modified).
        client_data: list of (X, y) pairs, one per client, each with at least
            one example.
        local_steps: int >= 1.
        lr: float, the learning rate.
        loss_and_grads: function (params, X, y) -> (loss, grads), grads a dict
            with the names of ``params``.

    Returns:
        dict name -> float array: the new global parameters.
    """
    sizes = [len(y) for _, y in client_data]
    results = []
    for X, y in client_data:
        params = {name: value.copy() for name, value in global_params.items()}
        for _ in range(local_steps):
            _, grads = loss_and_grads(params, X, y)
            params = {name: params[name] - lr * grads[name] for name in params}
        results.append(params)
    return {name: sum(n * params[name] for n, params in zip(sizes, results)) / sum(sizes)
            for name in global_params}


# --------------------------------------------------------------------------- bias


def weat_effect_size(X, Y, A, B):
    """The effect size of the Word Embedding Association Test (WEAT), with cosines.

    Each target w gets an association score, how much closer it is to the
    attribute set A than to B: ``s(w) = mean_a cos(w, a) - mean_b cos(w, b)``.
    The effect size compares the two target sets, in units of the scores'
    spread (the sample standard deviation, ddof=1, over all the targets):

        d = ( mean_{x in X} s(x) - mean_{y in Y} s(y) ) / std_{w in X u Y} s(w).

    Args:
        X, Y: float arrays (n_X, D) and (n_Y, D): the target embeddings.
        A, B: float arrays (n_A, D) and (n_B, D): the attribute embeddings.

    Returns:
        float in [-2, 2] (for sets of equal size): positive when X is closer to
        A (and Y to B).
    """
    def unit(v):
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    A, B = unit(A), unit(B)

    def scores(W):
        W = unit(W)
        return (W @ A.T).mean(axis=1) - (W @ B.T).mean(axis=1)

    s_x, s_y = scores(X), scores(Y)
    return float((s_x.mean() - s_y.mean()) / np.std(np.concatenate([s_x, s_y]), ddof=1))


# --------------------------------------------------------------------------- attributions


def integrated_gradients(grad_fn, x, baseline, steps=50):
    """Attribute a model's score to the input's features: integrated gradients.

    Walk in a straight line from ``baseline`` (an input that means "nothing",
    e.g. a black image) to ``x``, and average the score's gradient along the
    way, at the midpoints of ``steps`` equal pieces; multiply by ``x - baseline``:

        IG = (x - x') * mean_k grad_fn(x' + (k + 1/2) / steps * (x - x')),  k = 0 .. steps - 1.

    The attributions add up to about ``f(x) - f(baseline)`` (completeness),
    closer the more steps.

    Args:
        grad_fn: function taking an input shaped like ``x`` and returning the
            gradient of the score with respect to it (same shape).
        x: float array, the input to explain.
        baseline: float array of the same shape.
        steps: int >= 1.

    Returns:
        float array shaped like ``x``: one attribution per feature.
    """
    total = np.zeros_like(x, dtype=np.result_type(x, np.float64))
    for k in range(steps):
        total += grad_fn(baseline + (k + 0.5) / steps * (x - baseline))
    return (x - baseline) * total / steps


# --------------------------------------------------------------------------- helpers


def sampled_gaussian_rdp(sample_rate, noise_multiplier, order):
    """The Renyi privacy cost of one DP-SGD step on a Poisson-sampled batch, at an integer order.

    Every example joins the batch on its own with probability ``q =
    sample_rate``; the clipped gradients are summed and Gaussian noise of
    ``noise_multiplier * C`` is added. For an integer order alpha >= 2 the step
    is (alpha, r)-RDP with (Mironov, Talwar and Zhang, 2019, section 3.3)

        r = log(A) / (alpha - 1),
        A = sum_{k=0..alpha} binom(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2)).

    The sum is taken in log space, so large orders do not overflow. With
    ``q = 1`` it is the full-batch cost alpha / (2 sigma^2).
    """
    q, sigma, alpha = sample_rate, noise_multiplier, int(order)
    if q == 0:
        return 0.0
    if q == 1:
        return alpha / (2 * sigma ** 2)
    k = np.arange(alpha + 1)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, alpha + 1)))])
    log_binomial = log_factorial[alpha] - log_factorial[k] - log_factorial[alpha - k]
    log_terms = (log_binomial + (alpha - k) * math.log1p(-q) + k * math.log(q)
                 + (k * k - k) / (2 * sigma ** 2))
    top = log_terms.max()
    return float(top + math.log(np.exp(log_terms - top).sum())) / (alpha - 1)


def rdp_epsilon(noise_multiplier, steps, delta, sample_rate=1.0):
    """The privacy loss epsilon of ``steps`` DP gradient steps, for a given delta.

    A Gaussian mechanism whose noise is ``noise_multiplier`` times its
    sensitivity is (alpha, alpha / (2 sigma^2))-RDP for every order alpha > 1
    (Mironov, 2017); RDP adds up over steps, and (alpha, r)-RDP gives
    (r + log(1/delta) / (alpha - 1), delta)-DP. The best alpha is taken over a
    grid.

    With ``sample_rate`` q < 1 each step uses a batch in which every example is
    included with probability q (Poisson sampling): each step then costs
    ``sampled_gaussian_rdp`` at the integer orders 2 to 1024, much less than a
    full-batch step with the same noise.

    Returns:
        float epsilon (inf for noise_multiplier 0).
    """
    if noise_multiplier <= 0:
        return math.inf
    if sample_rate == 1:
        alphas = np.concatenate([np.linspace(1.01, 10, 900), np.linspace(10, 1000, 9901)])
        costs = alphas / (2 * noise_multiplier ** 2)
    else:
        alphas = np.arange(2, 1025)
        costs = np.array([sampled_gaussian_rdp(sample_rate, noise_multiplier, a) for a in alphas])
    return float(np.min(steps * costs + math.log(1 / delta) / (alphas - 1)))


def noise_multiplier_for(epsilon, steps, delta, sample_rate=1.0):
    """The smallest noise multiplier whose ``rdp_epsilon`` is at most ``epsilon`` (to 0.1 %).

    Found by bisection on a log scale: epsilon falls as the noise grows.
    """
    low, high = 0.05, 1e4
    if rdp_epsilon(high, steps, delta, sample_rate) > epsilon:
        raise ValueError(f"epsilon {epsilon} is out of reach with noise up to {high}")
    while high / low > 1.001:
        middle = math.sqrt(low * high)
        if rdp_epsilon(middle, steps, delta, sample_rate) > epsilon:
            low = middle
        else:
            high = middle
    return high


def softmax_regression_loss_and_grads(params, X, y):
    """Lesson 02's ``logreg_loss_and_grad`` as ``loss_and_grads(params, X, y)``: params "W" (D, C), "b" (C,)."""
    loss, dW, db = logreg_loss_and_grad(params["W"], params["b"], X, y)
    return loss, {"W": dW, "b": db}


def softmax_regression_per_example_grads(params, X, y):
    """Each example's gradient of its own cross-entropy: dict name -> (N, ...)."""
    probs = softmax(X @ params["W"] + params["b"], axis=-1)
    probs[np.arange(len(y)), y] -= 1.0                                 # (N, C), not divided by N
    dW, db = per_example_linear_grads(X, probs)
    return {"W": dW, "b": db}


def mlp_forward(params, X):
    """A two-layer MLP: ``relu(X W1 + b1) W2 + b2`` -> logits (N, C)."""
    hidden = np.maximum(X @ params["W1"] + params["b1"], 0.0)
    return hidden @ params["W2"] + params["b2"]


def mlp_input_gradient(params, X, target):
    """The gradient of logit ``target`` of ``mlp_forward`` with respect to the input X (N, D)."""
    pre = X @ params["W1"] + params["b1"]
    dhidden = np.broadcast_to(params["W2"][:, target], pre.shape) * (pre > 0)
    return dhidden @ params["W1"].T


def train_mlp(X, y, hidden=32, steps=300, lr=0.01, seed=0):
    """A two-layer MLP trained full-batch with Adam (lesson 02) on (X, y): its params dict."""
    rng = np.random.default_rng(seed)
    D, C = X.shape[1], int(y.max()) + 1
    params = {"W1": rng.normal(0, math.sqrt(2 / D), (D, hidden)), "b1": np.zeros(hidden),
              "W2": rng.normal(0, math.sqrt(1 / hidden), (hidden, C)), "b2": np.zeros(C)}
    names = list(params)
    optimizer = Adam([params[n] for n in names], lr=lr)
    for _ in range(steps):
        pre = X @ params["W1"] + params["b1"]
        hidden_out = np.maximum(pre, 0.0)
        logits = hidden_out @ params["W2"] + params["b2"]
        dlogits = cross_entropy_grad(logits, y)
        dhidden = (dlogits @ params["W2"].T) * (pre > 0)
        grads = {"W1": X.T @ dhidden, "b1": dhidden.sum(axis=0),
                 "W2": hidden_out.T @ dlogits, "b2": dlogits.sum(axis=0)}
        optimizer.step([grads[n] for n in names])
    return params
