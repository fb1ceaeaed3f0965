"""Engine parts: gradient checking, the codec, the sandbox's limits."""

import os

import numpy as np
import pytest

from autograder import codec, gradcheck, sandbox
from autograder.codec import Opaque


def test_numerical_gradient_matches_an_analytic_gradient():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 3))
    x = rng.normal(size=3)
    numeric = gradcheck.numerical_gradient(lambda v: float(v @ A @ v), x)
    assert gradcheck.relative_error(numeric, (A + A.T) @ x) < 1e-8


def test_numerical_gradient_does_not_change_its_input():
    x = np.arange(4.0)
    gradcheck.numerical_gradient(lambda v: float(np.sum(v ** 2)), x)
    assert np.array_equal(x, np.arange(4.0))


def test_relative_error_is_zero_for_equal_and_finite_for_zeros():
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradcheck.relative_error(np.ones(2), -np.ones(2)) == pytest.approx(1.0)


def test_codec_round_trip(tmp_path):
    value = {"a": np.arange(3), "b": [1.5, (True, None)], "c": "text", "d": object()}
    codec.save(value, str(tmp_path), "v")
    back = codec.load(str(tmp_path), "v")
    assert np.array_equal(back["a"], np.arange(3))
    assert back["b"][0].shape == () and float(back["b"][0]) == 1.5
    assert isinstance(back["b"][1], tuple) and back["b"][1][1] is None
    assert back["c"] == "text"
    assert back["d"] == Opaque("object")


def test_job_arguments_keep_python_scalars(tmp_path):
    value = {"n": 3, "p": 0.5, "flag": True, "list": [1, 2.0], "a": np.float64(1.0)}
    codec.save(value, str(tmp_path), "job", python_scalars=True)
    back = codec.load(str(tmp_path), "job")
    assert type(back["n"]) is int and type(back["p"]) is float and back["flag"] is True
    assert [type(v) for v in back["list"]] == [int, float]
    assert isinstance(back["a"], np.ndarray)              # NumPy scalars stay arrays
    codec.save(value, str(tmp_path), "result")
    assert isinstance(codec.load(str(tmp_path), "result")["n"], np.ndarray)


def test_object_arrays_never_cross(tmp_path):
    codec.save(np.array([{"x": 1}], dtype=object), str(tmp_path), "v")
    assert isinstance(codec.load(str(tmp_path), "v"), Opaque)


def _return_payload(payload):
    return payload


def _sleep_forever(payload):
    import time
    while True:
        time.sleep(1)


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_sandbox_returns_data_and_enforces_the_time_limit(mode, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(__file__))   # spawn imports this module
    ok = sandbox.run(sandbox.Job(_return_payload, {"x": np.ones(2)}), mode=mode)
    assert ok.status == "ok" and np.array_equal(ok.value["x"], np.ones(2))
    slow = sandbox.run(sandbox.Job(_sleep_forever, None), sandbox.Limits(timeout=0.5), mode=mode)
    assert slow.status == "timeout"


def test_spawn_reports_a_job_it_cannot_import():
    out = sandbox.run(sandbox.Job(_return_payload, 1), mode="spawn")   # tests/ not on the path
    assert out.status == "internal" and "ModuleNotFoundError" in out.message
