"""Lesson 06's encoder block agrees with PyTorch (CPU, float64), forward and backward.

``encoder_block_forward`` is compared with ``torch.nn.TransformerEncoderLayer`` holding the
same weights, post-LN and pre-LN, with and without a padding mask, and the hand-written
backward with autograd, for the input and every parameter. The torch tests are skipped when
torch is missing; the others (dtypes, the Module, no loops) need NumPy only.
"""

import ast
import inspect

import numpy as np
import pytest

from solutions import attention, transformer

rng = np.random.default_rng(6)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[dev]'); "
                                               "these tests compare lesson 06 with PyTorch")


def _t(torch, x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def _padded(lengths, T):
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)


def _random_params(D, H, F):
    """Parameters far from the initial ones, so that every term of the block matters."""
    params = transformer.init_encoder_block(D, H, F, rng, init_std=0.3)
    for name, value in params.items():
        if "gamma" in name:
            params[name] = rng.normal(1.0, 0.3, size=value.shape)
        elif name[0] != "W":
            params[name] = rng.normal(0.0, 0.3, size=value.shape)
    return params


def _torch_layer(torch, params, D, H, F, pre_ln, eps):
    """nn.TransformerEncoderLayer holding our weights (torch computes x @ W^T + b)."""
    layer = torch.nn.TransformerEncoderLayer(D, H, dim_feedforward=F, dropout=0.0,
                                             activation="gelu", batch_first=True,
                                             norm_first=pre_ln, layer_norm_eps=eps,
                                             dtype=torch.float64)
    copies = {
        layer.self_attn.in_proj_weight: np.concatenate([params["Wq"].T, params["Wk"].T,
                                                        params["Wv"].T]),
        layer.self_attn.in_proj_bias: np.concatenate([params["bq"], params["bk"], params["bv"]]),
        layer.self_attn.out_proj.weight: params["Wo"].T,
        layer.self_attn.out_proj.bias: params["bo"],
        layer.linear1.weight: params["W1"].T, layer.linear1.bias: params["b1"],
        layer.linear2.weight: params["W2"].T, layer.linear2.bias: params["b2"],
        layer.norm1.weight: params["ln1_gamma"], layer.norm1.bias: params["ln1_beta"],
        layer.norm2.weight: params["ln2_gamma"], layer.norm2.bias: params["ln2_beta"],
    }
    with torch.no_grad():
        for tensor, value in copies.items():
            tensor.copy_(_t(torch, value))
    return layer


def _torch_grads(layer, D):
    """The torch layer's parameter gradients, under our names and in our layout."""
    attn = layer.self_attn
    dW_in, db_in = attn.in_proj_weight.grad.numpy(), attn.in_proj_bias.grad.numpy()
    grads = {}
    for i, name in enumerate("qkv"):
        grads["W" + name] = dW_in[i * D:(i + 1) * D].T
        grads["b" + name] = db_in[i * D:(i + 1) * D]
    grads.update({
        "Wo": attn.out_proj.weight.grad.numpy().T, "bo": attn.out_proj.bias.grad.numpy(),
        "W1": layer.linear1.weight.grad.numpy().T, "b1": layer.linear1.bias.grad.numpy(),
        "W2": layer.linear2.weight.grad.numpy().T, "b2": layer.linear2.bias.grad.numpy(),
        "ln1_gamma": layer.norm1.weight.grad.numpy(), "ln1_beta": layer.norm1.bias.grad.numpy(),
        "ln2_gamma": layer.norm2.weight.grad.numpy(), "ln2_beta": layer.norm2.bias.grad.numpy(),
    })
    return grads


@pytest.mark.parametrize("pre_ln", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("B,T,D,H,F,lengths,eps", [
    (2, 5, 8, 2, 32, None, 1e-12),
    (3, 6, 12, 3, 20, [6, 4, 1], 1e-12),
    (1, 4, 8, 4, 16, None, 1e-5),
    (2, 7, 6, 1, 24, [3, 7], 1e-5),
])
def test_encoder_block_matches_torch_forward_and_backward(torch, pre_ln, B, T, D, H, F,
                                                          lengths, eps):
    x = rng.normal(size=(B, T, D))
    params = _random_params(D, H, F)
    layer = _torch_layer(torch, params, D, H, F, pre_ln, eps)
    layer.train()       # dropout is 0; in training mode torch never takes its inference fast path
    mask, kwargs = None, {}
    if lengths is not None:
        attention_mask = _padded(lengths, T)
        mask = attention.padding_mask(attention_mask)
        kwargs["src_key_padding_mask"] = torch.tensor(attention_mask == 0)   # True = ignore

    ours, cache = transformer.encoder_block_forward(x, params, H, mask, pre_ln=pre_ln, eps=eps)
    tx = _t(torch, x, grad=True)
    theirs = layer(tx, **kwargs)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)

    dout = rng.normal(size=ours.shape)
    theirs.backward(_t(torch, dout))
    dx, grads = transformer.encoder_block_backward(dout, cache)
    assert list(grads) == list(transformer.PARAM_NAMES)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    expected = _torch_grads(layer, D)
    for name in transformer.PARAM_NAMES:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_padded_rows_also_match_torchs_inference_fast_path(torch):
    """In eval mode without grad, torch may skip padded positions; the real ones agree."""
    B, T, D, H, F = 3, 6, 8, 2, 16
    x, params = rng.normal(size=(B, T, D)), _random_params(D, H, F)
    attention_mask = _padded([6, 2, 4], T)
    for pre_ln in (False, True):
        layer = _torch_layer(torch, params, D, H, F, pre_ln, 1e-12).eval()
        with torch.no_grad():
            theirs = layer(_t(torch, x), src_key_padding_mask=torch.tensor(attention_mask == 0))
        ours, _ = transformer.encoder_block_forward(x, params, H,
                                                    attention.padding_mask(attention_mask),
                                                    pre_ln=pre_ln)
        real = attention_mask.astype(bool)
        np.testing.assert_allclose(ours[real], theirs.numpy()[real], rtol=1e-10, atol=1e-12)


def test_feed_forward_matches_torch(torch):
    D, F = 6, 10
    x = rng.normal(size=(2, 3, D))
    params = {"W1": rng.normal(size=(D, F)), "b1": rng.normal(size=F),
              "W2": rng.normal(size=(F, D)), "b2": rng.normal(size=D)}
    tensors = {name: _t(torch, value, grad=True) for name, value in params.items()}
    tx = _t(torch, x, grad=True)
    hidden = torch.nn.functional.gelu(tx @ tensors["W1"] + tensors["b1"])     # exact (erf)
    theirs = hidden @ tensors["W2"] + tensors["b2"]
    ours, cache = transformer.feed_forward_forward(x, params)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    dout = rng.normal(size=ours.shape)
    theirs.backward(_t(torch, dout))
    dx, grads = transformer.feed_forward_backward(dout, cache)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], tensors[name].grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------- NumPy only

@pytest.mark.parametrize("pre_ln", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "training with dropout"])
def test_float32_in_float32_out(pre_ln, training):
    B, T, D, H, F = 2, 5, 8, 2, 32
    params = {name: value.astype(np.float32)
              for name, value in _random_params(D, H, F).items()}
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    mask = attention.padding_mask(_padded([5, 3], T))
    out, cache = transformer.encoder_block_forward(x, params, H, mask, pre_ln=pre_ln,
                                                   dropout_p=0.1, training=training,
                                                   rng=np.random.default_rng(0))
    dx, grads = transformer.encoder_block_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == np.float32
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}
    params64 = {name: value.astype(np.float64) for name, value in params.items()}
    out64, _ = transformer.encoder_block_forward(x.astype(np.float64), params64, H, mask,
                                                 pre_ln=pre_ln, dropout_p=0.1, training=training,
                                                 rng=np.random.default_rng(0))
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-4)


def test_encoder_block_module_wraps_the_functions():
    D, H, F = 8, 2, 16
    block = transformer.EncoderBlock(D, H, F, np.random.default_rng(1), dropout_p=0.2)
    assert [name for name, _ in block.named_parameters()] == list(transformer.PARAM_NAMES)
    params = transformer.init_encoder_block(D, H, F, np.random.default_rng(1))
    for name, value in params.items():
        np.testing.assert_array_equal(block.params[name], value)
    assert block.num_parameters() == 4 * (D * D + D) + 2 * D * F + F + D + 4 * D
    x = rng.normal(size=(2, 3, D))
    block.eval()
    out, _ = transformer.encoder_block_forward(x, params, H)
    np.testing.assert_array_equal(block.forward(x), out)
    block.train()
    first = block.forward(x)
    assert not np.allclose(first, out)                       # dropout acts while training
    dout = rng.normal(size=first.shape)
    dx = block.backward(dout)
    _, expected = transformer.encoder_block_backward(dout, block.cache)
    block.backward(dout)                                     # gradients add up
    for name in transformer.PARAM_NAMES:
        np.testing.assert_allclose(block.grads[name], 2 * expected[name])
    assert dx.shape == x.shape


def test_no_python_loops_in_the_block():
    """Tokens and heads are batched (lesson 07 trains with these functions)."""
    functions = [transformer.feed_forward_forward, transformer.feed_forward_backward,
                 transformer.add_layernorm_forward, transformer.add_layernorm_backward,
                 transformer.encoder_block_forward, transformer.encoder_block_backward]
    for function in functions:
        tree = ast.parse(inspect.getsource(function))
        loops = [f"line {node.lineno}: {type(node).__name__}" for node in ast.walk(tree)
                 if isinstance(node, (ast.For, ast.While, ast.comprehension))]
        assert not loops, (function.__name__, loops)
