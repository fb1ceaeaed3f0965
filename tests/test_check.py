"""check() as a learner uses it in a notebook, on live functions."""

import linecache

import numpy as np
import pytest

from autograder import check, sandbox
from solutions import losses


def softmax(x, axis=-1):                       # a correct learner function
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_check_finds_the_exercise_by_name_and_passes():
    result = check(softmax)
    assert result.passed and result.score == 2
    assert "✓ 01.softmax" in repr(result)
    assert "01.softmax" in result._repr_html_()


def test_check_reports_the_first_failure_with_a_hint():
    def mse(predictions, targets):
        return float(np.sum((predictions - targets) ** 2))
    result = check(mse)
    assert not result.passed and result.status == "failed"
    text = repr(result)
    assert "First failure" in text and "hint: average over all entries" in text


def test_check_with_an_explicit_id_and_another_name():
    def my_mse(predictions, targets):
        return float(np.mean((predictions - targets) ** 2))
    assert check("01.mse", my_mse).passed
    with pytest.raises(ValueError, match="pass its id"):
        check(my_mse)


def test_check_by_id_takes_the_function_from_the_caller():
    global mse

    def mse(predictions, targets):
        return float(np.mean((predictions - targets) ** 2))
    try:
        assert check("01.mse").passed
    finally:
        del mse


def test_unknown_id_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown exercise"):
        check("01.nope", softmax)


def test_a_stub_is_not_attempted():
    def kl_divergence(p, q):
        raise NotImplementedError
    result = check(kl_divergence)
    assert result.status == "not_attempted" and result.score == 0


def test_an_endless_loop_times_out_without_hanging_the_caller():
    def mse(predictions, targets):
        while True:
            pass
    result = check(mse, timeout=1)
    assert result.status == "timeout"


def test_a_crash_in_check_does_not_kill_the_caller():
    import ctypes

    def mse(predictions, targets):
        return ctypes.string_at(0)
    assert check(mse).status == "error"


def test_prerequisites_are_the_reference_during_check_and_restored_after():
    # A learner's cross_entropy_grad that calls their own (broken) softmax is graded with the
    # reference softmax, and their softmax is back in place afterwards.
    namespace = {"np": np}
    exec("def softmax(x, axis=-1):\n    return x\n"
         "def cross_entropy_grad(logits, targets, ignore_index=-100):\n"
         "    keep = targets != ignore_index\n"
         "    g = softmax(logits)\n"
         "    g[np.flatnonzero(keep), targets[keep]] -= 1\n"
         "    g[~keep] = 0\n"
         "    return g / max(int(keep.sum()), 1)\n", namespace)
    broken = namespace["softmax"]
    assert check(namespace["cross_entropy_grad"]).passed
    assert namespace["softmax"] is broken


@pytest.mark.parametrize("mode", ["inprocess", "spawn"])
def test_check_without_fork(monkeypatch, mode):
    monkeypatch.setenv("AUTOGRADER_SANDBOX", mode)   # spawn cannot carry a live function
    assert sandbox.default_mode() == mode
    assert check(softmax).passed
    namespace = {"np": np}
    exec("def softmax(x, axis=-1):\n    return x\n"
         "def log_softmax(x, axis=-1):\n    return np.log(softmax(x, axis))\n", namespace)
    broken = namespace["softmax"]
    result = check(namespace["log_softmax"])
    assert result.status == "failed"               # log(softmax) still fails on huge logits
    assert namespace["softmax"] is broken          # the learner's own softmax was restored


def test_inprocess_timeout(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "inprocess")

    def mse(predictions, targets):
        while True:
            pass
    assert check(mse, timeout=0.5).status == "timeout"


def test_html_escapes_what_the_learner_printed():
    def mse(predictions, targets):
        print("<script>alert(1)</script>")
        return float(np.mean((predictions - targets) ** 2))
    result = check(mse)
    assert result.passed
    assert "<script>" not in result._repr_html_()
    assert "&lt;script&gt;" in result._repr_html_()


def test_reference_is_unchanged_by_check():
    x = np.array([[1.0, 2.0]])
    before = losses.softmax(x).copy()
    check(softmax)
    assert np.array_equal(losses.softmax(x), before)


def _run_cell(source, namespace, number):
    """What Jupyter does with a cell: its source kept in linecache under a file name of its own."""
    filename = f"/tmp/ipykernel_0/{number}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def test_check_warns_about_a_helper_from_another_cell():
    """check() runs the live function, which sees every cell; the command-line grader runs the
    exercise cell alone. A helper defined in another cell passes one and fails the other."""
    namespace = {"np": np}
    _run_cell("def _center(x):\n    return x - x.mean(axis=0)\n", namespace, 1)
    _run_cell("# EXERCISE: 00.standardize_columns\n"
              "def standardize_columns(x, eps=1e-8):\n"
              "    return _center(x) / np.sqrt(x.var(axis=0) + eps)\n", namespace, 2)
    result = check(namespace["standardize_columns"])
    assert result.passed
    assert any("`_center` comes from another cell" in w for w in result.result.warnings), \
        result.result.warnings

    # the same helper inside the exercise's cell: nothing to say
    _run_cell("def _center(x):\n    return x - x.mean(axis=0)\n\n"
              "def standardize_columns(x, eps=1e-8):\n"
              "    return _center(x) / np.sqrt(x.var(axis=0) + eps)\n", namespace, 3)
    assert check(namespace["standardize_columns"]).result.warnings == []


def test_a_local_or_an_attribute_named_like_another_cells_global_is_no_warning():
    """Only names the function reads as globals count: a local ``T`` and ``x.T`` are its own,
    even with a global ``T`` left by another cell (the trial found the warning on lesson 12's
    solved notebook); a global read inside a nested function still counts."""
    namespace = {"np": np}
    _run_cell("T = 5\nscale = 2.0\n", namespace, 1)
    _run_cell("# EXERCISE: 00.standardize_columns\n"
              "def standardize_columns(x, eps=1e-8):\n"
              "    T = x.T\n"
              "    return (T - T.mean(axis=1, keepdims=True)).T / np.sqrt(x.var(axis=0) + eps)\n",
              namespace, 2)
    result = check(namespace["standardize_columns"])
    assert result.passed and result.result.warnings == [], result.result.warnings

    _run_cell("# EXERCISE: 00.standardize_columns\n"
              "def standardize_columns(x, eps=1e-8):\n"
              "    def center(v):\n"
              "        return (v - v.mean(axis=0)) * scale / 2\n"
              "    return center(x) / np.sqrt(x.var(axis=0) + eps)\n", namespace, 3)
    result = check(namespace["standardize_columns"])
    assert any("`scale` comes from another cell" in w for w in result.result.warnings), \
        result.result.warnings
