"""Grading on any machine: GPU-only exercises are skipped without a GPU, never failed."""

import json

import numpy as np
import pytest

from autograder import device, grader, report
from autograder.spec import Case, Exercise, Lesson
from conftest import run_cli


def _lesson(*devices_per_exercise):
    exercises = [Exercise(id=f"98.ex{i}", symbol=f"ex{i}", points=2, reference=np.negative,
                          cases=lambda rng: [Case("one", {"x": np.ones(2)})], devices=devices)
                 for i, devices in enumerate(devices_per_exercise)]
    return Lesson(id="98", slug="98_fake", title="Fake", exercises=exercises)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_NO_CUDA", "1")
    device.cuda_available.cache_clear()
    yield
    device.cuda_available.cache_clear()


def test_where_each_kind_of_exercise_runs_without_a_gpu(no_gpu):
    cpu, both, gpu = _lesson(("cpu",), ("cpu", "cuda"), ("cuda",)).exercises
    assert grader.device_for(cpu) == "cpu"
    assert grader.device_for(both) == "cpu"
    assert grader.device_for(both, "cuda") is None        # asked for a GPU that is not there
    assert grader.device_for(gpu) is None
    assert grader.device_for(cpu, "cuda") == "cpu"        # NumPy-only code stays on the CPU


def test_a_gpu_only_exercise_is_skipped_with_the_reason(no_gpu):
    gpu = _lesson(("cuda",)).exercises[0]
    result = grader.grade(gpu, source="def ex0(x):\n    return -x\n")
    assert result.status == "skipped" and result.score == 0
    assert result.message.startswith(device.NO_GPU)
    assert not result.passed


def test_skipped_exercises_count_in_neither_total():
    lesson = _lesson(("cpu",), ("cuda",))
    cpu, gpu = lesson.exercises
    results = [grader._result(cpu, "passed", score=2), grader.skipped(gpu)]
    graded = [(lesson, results)]
    assert report.totals(graded) == (1, 1, 2, 2)           # 100 %, not 50 %
    text = report.table(graded)
    assert "skipped (no CUDA GPU)" in text and "- / 2" in text
    assert "1 exercise(s) skipped" in text
    assert json.loads(report.as_json(graded))["skipped"] == 1
    tests = json.loads(report.as_gradescope(graded))["tests"]
    assert [t["max_score"] for t in tests] == [2, 0]
    assert "no CUDA GPU" in tests[1]["name"]


def test_device_helpers_on_the_cpu():
    assert device.current() == "cpu" and device.array_module() is np
    x = {"a": np.ones(3), "b": [np.zeros(2)]}
    assert device.to_device(x) is x                        # nothing moves on the CPU
    with pytest.raises(ValueError, match="unknown device"):
        device.set_current("tpu")


def test_to_numpy_brings_torch_tensors_back_as_float32():
    torch = pytest.importorskip("torch")
    back = device.to_numpy({"w": torch.ones(2, dtype=torch.bfloat16, requires_grad=True)})
    assert isinstance(back["w"], np.ndarray) and back["w"].dtype == np.float32


def test_cli_refuses_cuda_without_a_gpu(no_gpu):
    result = run_cli("grade", "00", "--device", "cuda", env={"AUTOGRADER_NO_CUDA": "1"})
    assert result.returncode == 2
    assert "no CUDA GPU" in result.stderr


def test_on_the_gpu_a_fresh_interpreter_gets_its_start_up_time_and_no_memory_cap(monkeypatch):
    both = _lesson(("cpu", "cuda")).exercises[0]
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    seen = []

    def fake_run(job, limits, mode):
        seen.append((limits, mode))
        return grader.sandbox.Outcome("crashed", message="stand-in")

    monkeypatch.setattr(grader.sandbox, "run", fake_run)
    grader.grade(both, source="def ex0(x):\n    return -x\n", on="cuda", mode="fork")
    grader.grade(both, source="def ex0(x):\n    return -x\n", on="cpu", mode="fork")
    (on_gpu, gpu_mode), (on_cpu, cpu_mode) = seen
    assert gpu_mode == "spawn" and cpu_mode == "fork"
    assert on_gpu.timeout == both.timeout + grader.CUDA_START_SECONDS
    assert on_cpu.timeout == both.timeout
    assert on_gpu.memory_mb == 0 and on_cpu.memory_mb > 0
