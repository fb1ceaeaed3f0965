"""The course's model on "device" arrays: no step may fall back to a host (NumPy) array.

Runs everywhere, with autograder/fake_gpu.py standing in for CuPy (as strict about mixing host
and device arrays as CuPy is). A real GPU run of tests/test_lesson11.py checks the rest.
"""

import numpy as np
import pytest
from scipy.special import erf as scipy_erf

from autograder import fake_gpu as fake_cupy
from solutions import gpu
from solutions.bert import BertConfig, init_bert, mlm_loss_and_grads
from solutions.gpu import random_mlm_batch, to_device

CONFIG = BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                    intermediate_size=32, max_position_embeddings=16, dropout=0.1)


@pytest.fixture
def cupy(monkeypatch):
    fake = fake_cupy.install(monkeypatch)
    monkeypatch.setattr(gpu, "cupy", fake)
    return fake


def test_the_stand_in_is_as_strict_as_cupy(cupy):
    on_device = cupy.zeros(3)
    with pytest.raises(fake_cupy.HostDeviceMix):
        on_device + np.ones(3)                              # a host array in a device sum
    with pytest.raises(fake_cupy.HostDeviceMix):
        np.add.at(on_device, np.array([0, 0]), 1.0)         # ufunc.at is not passed on
    with pytest.raises(fake_cupy.HostDeviceMix):
        scipy_erf(on_device)                                # neither are SciPy's ufuncs
    assert isinstance(np.exp(on_device) + 1.0, fake_cupy.DeviceArray)   # NumPy's are
    assert gpu.get_array_module(on_device) is cupy


def _model_and_batch(xp):
    rng = np.random.default_rng(0)
    params = init_bert(CONFIG, rng, dtype=np.float32)
    batch = random_mlm_batch(CONFIG, 3, 8, rng)
    batch["attention_mask"][0, 6:] = 0                      # some padding, as in real batches
    return to_device(params, xp), to_device(batch, xp)


def test_loss_and_every_gradient_stay_on_the_device_and_equal_numpy(cupy):
    host_params, host_batch = _model_and_batch(np)
    params, batch = _model_and_batch(cupy)
    host_loss, host_grads, _ = mlm_loss_and_grads(host_params, CONFIG, host_batch)
    loss, grads, _ = mlm_loss_and_grads(params, CONFIG, batch)
    assert loss == pytest.approx(host_loss, rel=1e-6)
    for name, grad in grads.items():
        assert isinstance(grad, fake_cupy.DeviceArray), f"{name}: came back as {type(grad)}"
        np.testing.assert_allclose(grad.view(np.ndarray), host_grads[name], rtol=1e-5,
                                   atol=1e-7, err_msg=name)


def test_training_steps_with_dropout_run_on_the_device(cupy):
    step = gpu.make_train_step(CONFIG, 4, 8, xp=cupy)
    losses = [float(step()) for _ in range(3)]
    assert all(np.isfinite(losses))
    assert all(isinstance(p, fake_cupy.DeviceArray) for p in step.params.values())


def test_device_mlm_step_moves_the_batch_and_updates_in_place(cupy):
    from solutions.optimizers import AdamW
    params, _ = _model_and_batch(cupy)
    optimizer = AdamW(list(params.values()), lr=1e-2)
    batch = random_mlm_batch(CONFIG, 3, 8, np.random.default_rng(1))     # NumPy, as collated
    before = params["embeddings.word"].copy()
    first = gpu.device_mlm_step(params, optimizer, batch, CONFIG)
    second = gpu.device_mlm_step(params, optimizer, batch, CONFIG)
    assert second < first
    assert not np.array_equal(params["embeddings.word"].view(np.ndarray), before.view(np.ndarray))


def _on_device_exercises():
    from autograder import specs
    return [ex for ex in specs.get_lesson("11").exercises if ex.devices == ("cpu", "cuda")]


@pytest.mark.parametrize("exercise", _on_device_exercises(), ids=lambda ex: ex.id)
def test_grading_on_the_device_passes_the_reference(exercise, cupy, monkeypatch):
    """``grade --device cuda`` as far as it goes without CUDA: the drivers move the cases to
    the device module and the results back, and the reference still gets full marks."""
    from autograder import device, grader, notebook
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    result = grader.grade(exercise, source=notebook.solution_source(exercise),
                          mode="inprocess", on="cuda")
    assert result.status == "passed", result.message


def test_a_mini_bert_step_is_about_2000_array_operations_most_of_them_in_adamw(cupy, monkeypatch):
    """Lesson 11's figures: every array operation is a kernel launch on a GPU, at any batch."""
    calls = []
    ufunc = fake_cupy.DeviceArray.__array_ufunc__
    function = fake_cupy.DeviceArray.__array_function__

    def counted_ufunc(self, *args, **kwargs):
        calls.append(1)
        return ufunc(self, *args, **kwargs)

    def counted_function(self, *args, **kwargs):
        calls.append(1)
        return function(self, *args, **kwargs)

    monkeypatch.setattr(fake_cupy.DeviceArray, "__array_ufunc__", counted_ufunc)
    monkeypatch.setattr(fake_cupy.DeviceArray, "__array_function__", counted_function)
    counts = {}
    for batch_size in (2, 8):
        step = gpu.make_train_step(gpu.MINI_BERT, batch_size, 16, xp=cupy)
        step()                                              # the first step makes AdamW's state
        optimizer_step = step.optimizer.step

        def counted_step(grads):
            before = len(calls)
            optimizer_step(grads)
            counts["optimizer"] = len(calls) - before

        step.optimizer.step = counted_step
        del calls[:]
        step()
        counts[batch_size] = len(calls)
    assert counts[2] == counts[8], "the number of operations must not depend on the batch"
    assert len(step.params) == 78
    assert counts["optimizer"] == 15 * 78                   # 1,170
    assert 1800 <= counts[8] <= 2200, counts                # "about 2,000": 1,957 when written


def test_the_stand_in_is_installed_for_a_block_only():
    import sys
    before = sys.modules.get("cupy")
    with fake_cupy.installed() as fake:
        assert sys.modules["cupy"] is fake and fake.linspace(0, 1, 3).__class__ is fake.ndarray
    assert sys.modules.get("cupy") is before


def test_on_the_cpu_hard_coded_numpy_passes_the_plain_cases_and_fails_the_stand_in_gpu():
    from autograder import grader, specs
    exercise = specs.get_exercise("11.scatter_add_rows")
    source = ("def scatter_add_rows(ids, values, num_rows):\n"
              "    table = np.zeros((num_rows, values.shape[-1]), dtype=values.dtype)\n"
              "    np.add.at(table, ids.reshape(-1), values.reshape(-1, values.shape[-1]))\n"
              "    return table\n")
    result = grader.grade(exercise, source=source)
    plain = [c for c in result.cases if "stand-in GPU" not in c.name]
    stand_in = [c for c in result.cases if "stand-in GPU" in c.name]
    assert len(plain) == len(stand_in) == len(exercise.make_cases())
    assert all(c.passed for c in plain) and not any(c.passed for c in stand_in)
    assert result.score == exercise.points / 2
    assert "np.add.at does not pass CuPy arrays on to CuPy" in result.message
    reference = grader.grade(exercise, source=notebook_source(exercise))
    assert reference.status == "passed" and len(reference.cases) == 2 * len(plain)


def notebook_source(exercise):
    from autograder import notebook
    return notebook.solution_source(exercise)
