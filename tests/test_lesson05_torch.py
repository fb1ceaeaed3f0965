"""Lesson 05's attention agrees with PyTorch (CPU, float64), forward and backward.

``attention_forward`` is compared with ``torch.nn.functional.scaled_dot_product_attention``
and ``multi_head_attention_forward`` with ``torch.nn.MultiheadAttention``; the hand-written
backward passes with autograd. Each of these tests is skipped when torch is missing.
"""

import ast
import inspect

import numpy as np
import pytest

from solutions import attention

rng = np.random.default_rng(0)
PARAM_NAMES = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[dev]'); "
                                               "these tests compare lesson 05 with PyTorch")


def _t(torch, x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def _padded(lengths, T):
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)


def _sdpa_case(torch, q, k, v, mask=None, is_causal=False):
    """Our forward and backward next to torch's, on the query rows that have an allowed key."""
    F = torch.nn.functional
    ours, cache = attention.attention_forward(q, k, v, mask)
    dout = rng.normal(size=ours.shape)
    tq, tk, tv = (_t(torch, a, grad=True) for a in (q, k, v))
    theirs = F.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=None if mask is None else torch.tensor(mask), is_causal=is_causal)
    theirs.backward(_t(torch, dout))
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, t in zip(attention.attention_backward(dout, cache), (tq, tk, tv)):
        np.testing.assert_allclose(mine, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_attention_without_a_mask(torch):
    q, k, v = rng.normal(size=(2, 3, 5, 4)), rng.normal(size=(2, 3, 7, 4)), rng.normal(size=(2, 3, 7, 6))
    _sdpa_case(torch, q, k, v)


def test_attention_with_a_boolean_padding_mask(torch):
    B, H, T, d = 3, 2, 6, 4
    q, k, v = (rng.normal(size=(B, H, T, d)) for _ in range(3))
    mask = attention.padding_mask(_padded([6, 4, 1], T))          # (B, 1, 1, T), True = attend
    _sdpa_case(torch, q, k, v, mask)


def test_attention_with_is_causal_and_with_a_causal_mask(torch):
    B, H, T, d = 2, 3, 5, 4
    q, k, v = (rng.normal(size=(B, H, T, d)) for _ in range(3))
    ours, _ = attention.attention_forward(q, k, v, attention.causal_mask(T))
    causal_torch = torch.nn.functional.scaled_dot_product_attention(
        *(_t(torch, a) for a in (q, k, v)), is_causal=True)
    np.testing.assert_allclose(ours, causal_torch.numpy(), rtol=1e-10, atol=1e-12)
    _sdpa_case(torch, q, k, v, attention.causal_mask(T))
    _sdpa_case(torch, q, k, v, attention.padding_mask(_padded([5, 3], T)) & attention.causal_mask(T))


def test_fully_masked_rows_give_zero_and_the_others_match_torch(torch):
    B, H, T, d = 2, 2, 4, 3
    q, k, v = (rng.normal(size=(B, H, T, d)) for _ in range(3))
    left_padded = np.array([[0, 0, 1, 1], [1, 1, 1, 1]])
    mask = attention.padding_mask(left_padded) & attention.causal_mask(T)   # rows 0, 1 of seq 0
    ours, cache = attention.attention_forward(q, k, v, mask)
    assert not np.isnan(ours).any()
    np.testing.assert_array_equal(ours[0, :, :2], 0.0)
    dout = rng.normal(size=ours.shape)
    dq, dk, dv = attention.attention_backward(dout, cache)
    np.testing.assert_array_equal(dq[0, :, :2], 0.0)
    np.testing.assert_array_equal(dk[0, :, :2], 0.0)                        # padded keys
    np.testing.assert_array_equal(dv[0, :, :2], 0.0)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(_t(torch, a) for a in (q, k, v)), attn_mask=torch.tensor(mask)).numpy()
    has_key = np.broadcast_to(mask.any(axis=-1), ours.shape[:-1])          # (B, H, T)
    np.testing.assert_allclose(ours[has_key], theirs[has_key], rtol=1e-10, atol=1e-12)


def _torch_mha(torch, params, D, H):
    """nn.MultiheadAttention holding our weights (torch computes x @ W^T + b)."""
    mha = torch.nn.MultiheadAttention(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(_t(torch, np.concatenate([params["Wq"].T, params["Wk"].T,
                                                           params["Wv"].T])))
        mha.in_proj_bias.copy_(_t(torch, np.concatenate([params["bq"], params["bk"], params["bv"]])))
        mha.out_proj.weight.copy_(_t(torch, params["Wo"].T))
        mha.out_proj.bias.copy_(_t(torch, params["bo"]))
    return mha


@pytest.mark.parametrize("B,T,D,H,lengths,causal", [
    (2, 5, 8, 2, [5, 3], False),
    (3, 4, 12, 4, [4, 1, 2], False),
    (2, 6, 6, 3, None, True),
    (1, 3, 4, 1, [2], False),
])
def test_multi_head_attention_matches_torch_forward_and_backward(torch, B, T, D, H, lengths, causal):
    x = rng.normal(size=(B, T, D))
    params = {n: rng.normal(scale=0.5, size=(D, D) if n[0] == "W" else (D,)) for n in PARAM_NAMES}
    mha = _torch_mha(torch, params, D, H)
    kwargs, mask = {}, None
    if lengths is not None:
        attention_mask = _padded(lengths, T)
        mask = attention.padding_mask(attention_mask)
        kwargs["key_padding_mask"] = torch.tensor(attention_mask == 0)    # torch: True = ignore
    if causal:
        mask = attention.causal_mask(T)
        kwargs["attn_mask"] = torch.tensor(~mask)                          # torch: True = ignore

    ours, cache = attention.multi_head_attention_forward(x, params, H, mask)
    tx = _t(torch, x, grad=True)
    theirs, their_weights = mha(tx, tx, tx, need_weights=True, average_attn_weights=False, **kwargs)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cache[2][3], their_weights.detach().numpy(), rtol=1e-10, atol=1e-12)

    dout = rng.normal(size=ours.shape)
    theirs.backward(_t(torch, dout))
    dx, grads = attention.multi_head_attention_backward(dout, cache)
    assert set(grads) == set(PARAM_NAMES)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    dW_in = mha.in_proj_weight.grad.numpy()                               # (3D, D), each W^T
    db_in = mha.in_proj_bias.grad.numpy()
    for i, name in enumerate("qkv"):
        np.testing.assert_allclose(grads["W" + name], dW_in[i * D:(i + 1) * D].T, rtol=1e-9,
                                   atol=1e-12, err_msg="W" + name)
        np.testing.assert_allclose(grads["b" + name], db_in[i * D:(i + 1) * D], rtol=1e-9,
                                   atol=1e-12, err_msg="b" + name)
    np.testing.assert_allclose(grads["Wo"], mha.out_proj.weight.grad.numpy().T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["bo"], mha.out_proj.bias.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_no_python_loops_in_the_attention_reference():
    """Heads and tokens are batched (lesson 09 trains with these functions): no for/while at all."""
    tree = ast.parse(inspect.getsource(attention))
    loops = [f"line {node.lineno}: {type(node).__name__}" for node in ast.walk(tree)
             if isinstance(node, (ast.For, ast.While, ast.comprehension))]
    assert not loops, loops
