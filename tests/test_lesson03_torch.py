"""Lesson 03's reference layers agree with PyTorch (CPU, float64): values and autograd gradients."""

import math

import numpy as np
import pytest

from solutions import layers

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[dev]'); "
                                            "lesson 03's layers are compared with PyTorch's")
F = torch.nn.functional

rng = np.random.default_rng(3)


def t(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def close(ours, theirs, rtol=1e-12, atol=1e-14):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape,eps", [((4, 8), 1e-12), ((2, 3, 16), 1e-12), ((3, 5), 1e-5)])
def test_layernorm_forward_and_gradients(shape, eps):
    D = shape[-1]
    x = rng.normal(1.0, 2.0, size=shape)
    gamma, beta = rng.normal(1.0, 0.5, size=D), rng.normal(size=D)
    dout = rng.normal(size=shape)
    xt, gt, bt = t(x, True), t(gamma, True), t(beta, True)
    expected = F.layer_norm(xt, (D,), gt, bt, eps=eps)
    (expected * t(dout)).sum().backward()

    out, cache = layers.layernorm_forward(x, gamma, beta, eps=eps)
    close(out, expected)
    dx, dgamma, dbeta = layers.layernorm_backward(dout, cache)
    close(dx, xt.grad, rtol=1e-10, atol=1e-12)
    close(dgamma, gt.grad, rtol=1e-10, atol=1e-12)
    close(dbeta, bt.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_both_forms_and_their_gradients(approximate):
    forward, backward = {"none": (layers.gelu_forward, layers.gelu_backward),
                         "tanh": (layers.gelu_tanh_forward, layers.gelu_tanh_backward)}[approximate]
    x = np.concatenate([rng.normal(scale=3, size=40), [0.0, -0.75, 8.0, -8.0, 30.0, -30.0]])
    dout = rng.normal(size=x.shape)
    xt = t(x, True)
    expected = F.gelu(xt, approximate=approximate)
    (expected * t(dout)).sum().backward()

    out, cache = forward(x)
    close(out, expected, atol=1e-15)
    close(backward(dout, cache), xt.grad, rtol=1e-11, atol=1e-14)


def test_the_two_gelu_forms_differ_by_less_than_1e_3():
    x = np.linspace(-6, 6, 2001)
    gap = np.abs(layers.gelu_forward(x)[0] - layers.gelu_tanh_forward(x)[0])
    assert 1e-4 < gap.max() < 1e-3


def test_relu_and_its_gradient_at_zero():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    xt = t(x, True)
    F.relu(xt).sum().backward()
    out, cache = layers.relu_forward(x)
    close(out, F.relu(t(x)))
    close(layers.relu_backward(np.ones_like(x), cache), xt.grad)


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_linear_matches_f_linear_with_w_transposed(lead):
    x, W, b = rng.normal(size=lead + (4,)), rng.normal(size=(4, 6)), rng.normal(size=6)
    dout = rng.normal(size=lead + (6,))
    xt, Wt, bt = t(x, True), t(W.T.copy(), True), t(b, True)      # torch stores (out, in)
    expected = F.linear(xt, Wt, bt)
    (expected * t(dout)).sum().backward()

    out, cache = layers.linear_forward(x, W, b)
    close(out, expected)
    dx, dW, db = layers.linear_backward(dout, cache)
    close(dx, xt.grad)
    close(dW, Wt.grad.T)
    close(db, bt.grad)


def test_embedding_gradient_adds_repeated_ids():
    ids = np.array([[5, 1, 1, 0, 1], [1, 5, 4, 4, 1]])
    table = rng.normal(size=(7, 3))
    dout = rng.normal(size=ids.shape + (3,))
    tt = t(table, True)
    expected = F.embedding(torch.tensor(ids), tt)
    (expected * t(dout)).sum().backward()

    out, cache = layers.embedding_forward(ids, table)
    close(out, expected)
    dtable = layers.embedding_backward(dout, cache)
    close(dtable, tt.grad)
    assert np.all(dtable[[2, 3, 6]] == 0)                       # ids never looked up


@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_softmax_cross_entropy_matches_f_cross_entropy(ignore_index):
    logits = rng.normal(scale=3, size=(2, 5, 7))
    targets = rng.integers(1, 7, size=(2, 5))
    targets[0, 1] = targets[1, 4] = ignore_index
    zt = t(logits, True)
    expected = F.cross_entropy(zt.reshape(-1, 7), torch.tensor(targets).reshape(-1),
                               ignore_index=ignore_index)
    expected.backward()

    loss, dlogits = layers.softmax_cross_entropy(logits, targets, ignore_index=ignore_index)
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    close(dlogits, zt.grad, rtol=1e-10, atol=1e-15)


def test_dropout_has_torch_s_inverted_scaling():
    p = 0.3
    x = rng.normal(size=(200, 300))
    xt = t(x, True)
    theirs = F.dropout(xt, p=p, training=True)
    theirs.sum().backward()
    ours, cache = layers.dropout_forward(x, p, True, np.random.default_rng(0))
    for out, grad in [(ours, layers.dropout_backward(np.ones_like(x), cache)),
                      (theirs.detach().numpy(), xt.grad.numpy())]:
        kept = out != 0
        assert abs(kept.mean() - (1 - p)) < 0.01
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-15)
        np.testing.assert_array_equal(grad, kept / (1 - p))     # dx = dout * mask / (1 - p)
    # evaluation: both are the identity
    np.testing.assert_array_equal(layers.dropout_forward(x, p, False, None)[0],
                                  F.dropout(t(x), p=p, training=False).numpy())


def test_a_module_mlp_matches_torch_nn_sequential():
    rng_init = np.random.default_rng(0)
    ours = layers.Sequential(layers.Linear(6, 8, rng_init, init_std=0.5), layers.GELU(),
                             layers.LayerNorm(8), layers.Linear(8, 3, rng_init, init_std=0.5))
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(),
                                 torch.nn.LayerNorm(8, eps=1e-12), torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for name, value in ours.named_parameters():
            index, kind = name.split(".")[1:]
            module = theirs[int(index)]
            target = {"W": module.weight, "b": module.bias, "gamma": module.weight,
                      "beta": module.bias}[kind]
            target.copy_(torch.tensor(value.T if kind == "W" else value))
    x, y = rng.normal(size=(10, 6)), rng.integers(0, 3, size=10)

    loss, dlogits = layers.softmax_cross_entropy(ours.forward(x), y)
    ours.zero_grad()
    ours.backward(dlogits)
    expected = F.cross_entropy(theirs(t(x)), torch.tensor(y))
    expected.backward()

    assert loss == pytest.approx(expected.item(), rel=1e-12)
    torch_grads = [p.grad.numpy() for p in theirs.parameters()]
    assert [n for n, _ in ours.named_parameters()] == [
        "layers.0.W", "layers.0.b", "layers.2.gamma", "layers.2.beta", "layers.3.W", "layers.3.b"]
    for (name, _), grad, torch_grad in zip(ours.named_parameters(), ours.gradients(), torch_grads):
        np.testing.assert_allclose(grad, torch_grad.T if name.endswith(".W") else torch_grad,
                                   rtol=1e-10, atol=1e-13, err_msg=name)
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())
    assert not math.isnan(loss)
