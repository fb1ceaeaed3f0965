"""Lesson 11 (GPU with CuPy): the array-module-agnostic references, the training step, and
everything that needs CUDA (skipped without a GPU; run `pytest tests/test_lesson11.py` on one).
"""

import dataclasses

import numpy as np
import pytest

from autograder import device, grader, notebook, specs
from solutions import bert, gpu, layers
from solutions.attention import attention_forward
from solutions.optimizers import AdamW

from alternatives.lesson11 import ALTERNATIVES

TINY = bert.BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                       intermediate_size=32, max_position_embeddings=16)
needs_gpu = pytest.mark.skipif(not gpu.cuda_available(), reason="no CUDA GPU")


# --------------------------------------------------------------------------- NumPy, everywhere


def test_helpers_fall_back_to_numpy():
    x = np.ones(3)
    assert gpu.get_array_module(x) is np and gpu.get_array_module() is np
    assert gpu.to_host({"a": [x]})["a"][0] is x
    gpu.synchronize(np)                                  # nothing to wait for
    assert gpu.memory_pool_bytes(np) == (0, 0)
    assert gpu.seconds_per_call(lambda: x + 1, np, repeats=2) > 0


def test_to_device_copies_casts_floats_and_keeps_ids():
    batch = {"ids": np.arange(4), "w": np.ones((2, 2)), "pair": (np.zeros(2), "s"), "n": None}
    moved = gpu.to_device(batch, np, dtype=np.float32)
    assert moved["ids"].dtype == np.int64 and moved["w"].dtype == np.float32
    assert isinstance(moved["pair"], tuple) and moved["pair"][1] == "s" and moved["n"] is None
    moved["ids"][0] = 99
    assert batch["ids"][0] == 0                          # a copy, also on NumPy


def test_masked_softmax_equals_the_attention_weights_of_lesson_05():
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(2, 3, 4)) for _ in range(3))
    mask = np.array([[True, True, False], [False, False, False], [True, False, True]])
    _, (_, _, _, weights) = attention_forward(q, k, v, mask)
    assert np.allclose(gpu.masked_softmax(q @ k.swapaxes(-1, -2) / 2.0, mask), weights)


def test_scatter_add_rows_equals_lesson_03_embedding_backward():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 6, size=(3, 7))
    dout = rng.normal(size=(3, 7, 4)).astype(np.float32)
    expected = layers.embedding_backward(dout, (ids, (9, 4)))
    got = gpu.scatter_add_rows(ids, dout, 9)
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=1e-6)


def test_fit_transfer_model_recovers_latency_and_bandwidth():
    sizes = np.geomspace(1e3, 1e9, 7)
    latency, bandwidth = gpu.fit_transfer_model(sizes, 8e-6 + sizes / 32e9)
    assert latency == pytest.approx(8e-6, rel=1e-6) and bandwidth == pytest.approx(32.0, rel=1e-9)


def test_make_train_step_is_mlm_loss_and_grads_plus_adamw():
    config = dataclasses.replace(TINY, dropout=0.1)
    step = gpu.make_train_step(config, batch_size=3, seq_len=8, xp=np, seed=5, lr=1e-3)
    # the same thing by hand
    rng = np.random.default_rng(5)
    params = {k: v.astype(np.float32) for k, v in bert.init_bert(config, rng).items()}
    batch = gpu.random_mlm_batch(config, 3, 8, rng)
    optimizer = AdamW(list(params.values()), lr=1e-3)
    dropout_rng = np.random.default_rng(5)
    for _ in range(2):
        loss, grads, _ = bert.mlm_loss_and_grads(params, config, batch, training=True,
                                                 rng=dropout_rng)
        optimizer.step([grads[name] for name in params])
        assert step() == loss
    for name, value in params.items():
        assert step.params[name].dtype == np.float32
        np.testing.assert_array_equal(step.params[name], value, err_msg=name)


def test_device_mlm_step_on_numpy_moves_the_parameters():
    rng = np.random.default_rng(2)
    params = bert.init_bert(TINY, rng)
    before = {k: v.copy() for k, v in params.items()}
    optimizer = AdamW(list(params.values()), lr=1e-2)
    batch = gpu.random_mlm_batch(TINY, 2, 5, rng)
    loss = gpu.device_mlm_step(params, optimizer, batch, TINY)
    assert loss == bert.mlm_loss_and_grads(before, TINY, batch)[0]
    assert not np.array_equal(params["embeddings.word"], before["embeddings.word"])


def test_speedup_table_says_when_the_gpu_is_missing():
    text = gpu.speedup_table([("mini-BERT", 1000.0, None), ("BERT-base", 10.0, 250.0)])
    assert "needs a CUDA GPU" in text and "25.0x" in text


def test_gpu_only_exercises_are_skipped_without_a_gpu(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_NO_CUDA", "1")
    device.cuda_available.cache_clear()
    try:
        for ex in specs.get_lesson("11").exercises:
            result = grader.grade(ex, source=notebook.solution_source(ex))
            if ex.devices == ("cuda",):
                assert result.status == "skipped" and result.message.startswith("no CUDA GPU")
            else:
                assert result.status == "passed", (ex.id, result.message)
    finally:
        device.cuda_available.cache_clear()


# --------------------------------------------------------------------------- CuPy, on a GPU


@needs_gpu
def test_to_device_and_back_on_the_gpu():
    import cupy
    tree = {"ids": np.arange(6).reshape(2, 3), "w": np.ones((2, 3)), "l": [np.zeros(2)]}
    moved = gpu.to_device(tree, cupy, dtype=np.float32)
    assert isinstance(moved["ids"], cupy.ndarray) and moved["w"].dtype == np.float32
    back = gpu.to_host(moved)
    assert isinstance(back["l"][0], np.ndarray)
    np.testing.assert_array_equal(back["ids"], tree["ids"])


@needs_gpu
def test_agnostic_references_on_cupy_equal_numpy():
    import cupy
    rng = np.random.default_rng(3)
    scores = (rng.normal(size=(2, 2, 5, 5)) * 30).astype(np.float32)
    mask = rng.random((2, 1, 1, 5)) < 0.6
    got = gpu.masked_softmax(cupy.asarray(scores), cupy.asarray(mask))
    assert isinstance(got, cupy.ndarray)
    np.testing.assert_allclose(got.get(), gpu.masked_softmax(scores, mask), rtol=1e-5, atol=1e-6)
    ids = rng.integers(0, 7, size=(4, 9))
    values = rng.normal(size=(4, 9, 3)).astype(np.float32)
    got = gpu.scatter_add_rows(cupy.asarray(ids), cupy.asarray(values), 10)
    np.testing.assert_allclose(got.get(), gpu.scatter_add_rows(ids, values, 10), rtol=1e-5,
                               atol=1e-5)


@needs_gpu
def test_mlm_loss_and_grads_on_cupy_equal_numpy():
    """The whole model (lessons 03-07) on CuPy: every gradient, float32."""
    import cupy
    rng = np.random.default_rng(4)
    params = bert.init_bert(TINY, rng)
    batch = gpu.random_mlm_batch(TINY, 3, 10, rng)
    batch["attention_mask"][1, 7:] = 0
    loss, grads, stats = bert.mlm_loss_and_grads(params, TINY, batch)
    loss_gpu, grads_gpu, stats_gpu = bert.mlm_loss_and_grads(
        gpu.to_device(params, cupy), TINY, gpu.to_device(batch, cupy))
    assert loss_gpu == pytest.approx(loss, rel=1e-5)
    assert stats_gpu["num_masked"] == stats["num_masked"]
    for name, grad in grads.items():
        assert isinstance(grads_gpu[name], cupy.ndarray), name
        np.testing.assert_allclose(grads_gpu[name].get(), grad, rtol=1e-3, atol=1e-5,
                                   err_msg=name)


@needs_gpu
def test_train_step_on_cupy_follows_numpy():
    import cupy
    config = dataclasses.replace(TINY, dropout=0.0)      # dropout draws differ between devices
    cpu = gpu.make_train_step(config, 2, 12, np, seed=1, lr=1e-3)
    gpu_step = gpu.make_train_step(config, 2, 12, cupy, seed=1, lr=1e-3)
    for _ in range(3):
        assert gpu_step() == pytest.approx(cpu(), rel=1e-4)
    for name in ("embeddings.word", "layers.1.W1", "mlm.bias"):
        np.testing.assert_allclose(gpu_step.params[name].get(), cpu.params[name], atol=5e-4,
                                   err_msg=name)
    with_dropout = gpu.make_train_step(TINY, 2, 12, cupy, seed=1)
    assert np.isfinite(with_dropout())
    assert gpu.tokens_per_second(TINY, 2, 12, cupy, repeats=2) > 0
    used, held = gpu.memory_pool_bytes(cupy)
    assert 0 < used <= held


@needs_gpu
def test_kernels_on_the_gpu():
    import cupy
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = (rng.normal(size=(3, 77)) * 4).astype(dtype)
        y = gpu.gelu_kernel(cupy.asarray(x))
        assert y.dtype == dtype
        np.testing.assert_allclose(y.get(), layers.gelu_forward(x)[0], rtol=1e-5, atol=1e-6)
    for rows in (1, 127, 128, 129, 300):
        x = (rng.normal(size=(rows, 19)) * 60).astype(np.float32)
        out = cupy.empty_like(cupy.asarray(x))
        got = gpu.softmax_rows_kernel(cupy.asarray(x), out)
        assert got is out
        e = np.exp(x - x.max(axis=1, keepdims=True))
        np.testing.assert_allclose(out.get(), e / e.sum(axis=1, keepdims=True), rtol=1e-5,
                                   atol=1e-7)


@needs_gpu
def test_time_gpu_agrees_with_a_synchronized_host_clock():
    import cupy
    a = cupy.ones((2048, 2048), dtype=cupy.float32)
    events_ms = gpu.time_gpu(lambda: a @ a, repeats=10)
    host_ms = gpu.seconds_per_call(lambda: a @ a, cupy, repeats=10) * 1000
    assert 0.5 < events_ms / host_ms < 2.0


GPU_EXERCISES = [ex for ex in specs.get_lesson("11").exercises if "cuda" in ex.devices]
# Wrong only on the CPU: xp.asarray copies when xp is cupy, so there it is a correct answer.
CPU_ONLY_MISTAKES = {("11.to_device", "xp.asarray: no copy on the CPU")}


@needs_gpu
@pytest.mark.parametrize("exercise", GPU_EXERCISES, ids=[ex.id for ex in GPU_EXERCISES])
def test_grading_on_the_gpu(exercise):
    """What the CPU-only catalogue cannot see: reference, mistakes and alternatives graded
    on the GPU (``grade --device cuda``)."""
    result = grader.grade(exercise, source=notebook.solution_source(exercise), on="cuda")
    assert result.status == "passed", result.message
    for mistake in exercise.mistakes:
        result = grader.grade(exercise, source=mistake.source, on="cuda")
        if (exercise.id, mistake.name) in CPU_ONLY_MISTAKES:
            continue
        assert result.score < exercise.points, (mistake.name, result.message)
        assert result.status in ("failed", "error"), (mistake.name, result.message)
        if result.status == "failed":
            assert "hint: " + mistake.hint in result.message, (mistake.name, result.message)
    for source in ALTERNATIVES.get(exercise.id, []):
        result = grader.grade(exercise, source=source, on="cuda")
        assert result.status == "passed", result.message
