"""The reference solutions agree with PyTorch (CPU) where PyTorch has the same thing."""

import math

import numpy as np
import pytest

from solutions import losses, optimizers

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[dev]')")
F = torch.nn.functional

rng = np.random.default_rng(0)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_softmax_and_log_softmax():
    x = rng.normal(size=(4, 7)) * 50
    for axis in (0, 1):
        np.testing.assert_allclose(losses.softmax(x, axis), F.softmax(t(x), dim=axis).numpy(), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(losses.log_softmax(x, axis), F.log_softmax(t(x), dim=axis).numpy(), rtol=1e-12)


def test_cross_entropy_with_ignore_index_and_its_gradient():
    logits = rng.normal(size=(9, 5)) * 3
    targets = rng.integers(0, 5, size=9)
    targets[[2, 7]] = -100
    z = t(logits).requires_grad_()
    loss = F.cross_entropy(z, torch.tensor(targets), ignore_index=-100)
    loss.backward()
    assert losses.cross_entropy(logits, targets) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(losses.cross_entropy_grad(logits, targets), z.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_masked_lm_loss_is_flattened_cross_entropy():
    logits = rng.normal(size=(2, 6, 11))
    labels = np.where(rng.random((2, 6)) < 0.4, rng.integers(0, 11, size=(2, 6)), -100)
    labels[0, 0] = 3
    expected = F.cross_entropy(t(logits).reshape(-1, 11), torch.tensor(labels).reshape(-1))
    assert losses.masked_lm_loss(logits, labels) == pytest.approx(expected.item(), rel=1e-12)


def test_bce_with_logits_mse_kl():
    x = np.concatenate([rng.normal(size=10) * 5, [800.0, -800.0]])
    y = rng.random(12)
    assert losses.bce_with_logits(x, y) == pytest.approx(
        F.binary_cross_entropy_with_logits(t(x), t(y)).item(), rel=1e-12)
    p, q = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    assert losses.mse(p, q) == pytest.approx(F.mse_loss(t(p), t(q)).item(), rel=1e-12)
    P = losses.softmax(rng.normal(size=(5, 6)))
    P[0] = np.eye(6)[2]
    Q = losses.softmax(rng.normal(size=(5, 6)))
    expected = F.kl_div(t(np.log(Q)), t(P), reduction="batchmean").item()
    assert losses.kl_divergence(P, Q) == pytest.approx(expected, rel=1e-12)


def test_perception_loss_gradient_matches_autograd():
    f, g, w = rng.normal(size=5), rng.normal(size=(5, 3)), rng.random((5, 3))
    ft = t(f).requires_grad_()
    loss = (t(w) * (ft[:, None] - t(g)) ** 2).sum() / 5
    loss.backward()
    assert losses.perception_loss(f, g, w) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(losses.perception_loss_grad(f, g, w), ft.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name,ours,theirs,kwargs", [
    ("SGD", optimizers.SGD, torch.optim.SGD, {"lr": 0.05}),
    ("SGD momentum", optimizers.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    ("Adam", optimizers.Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("AdamW", optimizers.AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
])
def test_optimizers_follow_torch_for_many_steps(name, ours, theirs, kwargs):
    shapes = [(4, 3), (3,)]
    init = [rng.normal(size=s) for s in shapes]
    params = [p.copy() for p in init]
    opt = ours(params, **kwargs)
    tparams = [t(p).requires_grad_() for p in init]
    topt = theirs(tparams, **kwargs)
    for step in range(200):
        grads = [rng.normal(size=s) for s in shapes]
        lr = kwargs["lr"] * (0.5 + 0.5 * math.cos(step / 30))       # a schedule, via .lr
        opt.lr = lr
        for group in topt.param_groups:
            group["lr"] = lr
        opt.step(grads)
        for tp, g in zip(tparams, grads):
            tp.grad = t(g)
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_clip_grad_norm_matches_torch():
    for scale in (0.01, 10.0):
        grads = [rng.normal(size=(3, 4)) * scale, rng.normal(size=5) * scale]
        tgrads = [t(g).requires_grad_() for g in grads]
        for tp, g in zip(tgrads, grads):
            tp.grad = t(g)
        total = torch.nn.utils.clip_grad_norm_(tgrads, max_norm=1.0)
        ours = optimizers.clip_grad_norm(grads, 1.0)
        assert ours == pytest.approx(total.item(), rel=1e-12)
        for g, tp in zip(grads, tgrads):
            np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedules_match_the_hugging_face_formulas(schedule):
    # transformers' get_{linear,cosine}_schedule_with_warmup, written out (no dependency on it)
    def hf(step, warmup, total):
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        if schedule == "linear":
            return max(0.0, (total - step) / max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    for step in range(0, 101):
        assert optimizers.scheduled_lr(step, 1.0, 10, 100, schedule) == pytest.approx(hf(step, 10, 100), abs=1e-12)
