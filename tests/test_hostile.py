"""Hostile submissions cost only their own exercise, with a clear status.

One notebook holds a hostile cell per exercise of lesson 01 (and a second notebook
the rest); every other exercise of the notebook keeps the reference solution and
must still pass. Run once with fork (the Linux default) and once with spawn.
"""

import json

import pytest

from autograder import specs

from conftest import ROOT, run_cli, with_cells

LOOP = "def {name}(*args, **kwargs):\n    while True:\n        pass\n"
HOSTILE = {
    "endless loop": (LOOP, "timeout", "time limit"),
    "endless loop, SIGALRM and SIGTERM ignored": (
        "import signal\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + LOOP, "timeout", "time limit"),
    "sys.exit(0)": ("import sys\ndef {name}(*args, **kwargs):\n    sys.exit(0)\n",
                    "error", "exit(0)"),
    "os._exit(1)": ("import os\ndef {name}(*args, **kwargs):\n    os._exit(1)\n",
                    "error", "exit code 1"),
    "segfault": ("import ctypes\ndef {name}(*args, **kwargs):\n    return ctypes.string_at(0)\n",
                 "error", "SIGSEGV"),
    "allocates 30 GB": ("def {name}(*args, **kwargs):\n"
                        "    big = np.ones(30 * 10**9 // 8)\n    return big\n",
                        "out_of_memory", "memory"),
    "prints 200 MB": ("import sys\ndef {name}(*args, **kwargs):\n"
                      "    for _ in range(200):\n        sys.stdout.write('x' * 1_000_000)\n",
                      "error", "output"),
    "patches numpy.allclose and numpy.testing": (
        "import numpy, numpy.testing\n"
        "numpy.allclose = lambda *a, **k: True\n"
        "numpy.array_equal = lambda *a, **k: True\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "def {name}(*args, **kwargs):\n    return 0.0\n", "failed", "expected"),
    "patches the autograder": (
        "import autograder.compare, autograder.grader\n"
        "autograder.compare.compare = lambda *a, **k: None\n"
        "autograder.grader.judge = lambda *a, **k: None\n"
        "def {name}(*args, **kwargs):\n    return 0.0\n", "failed", "expected"),
    "syntax error": ("def {name}(x\n    return x\n", "error", "SyntaxError"),
    "raises at import": ("raise RuntimeError('boom')\n", "error", "RuntimeError: boom"),
}

LESSON = specs.get_lesson("01")


def _hostile_notebooks(solved_dir, tmp_path):
    """Spread the hostile cells over copies of the solved lesson 01, one per exercise."""
    items = list(HOSTILE.items())
    exercises = LESSON.exercises
    groups = [items[i:i + len(exercises)] for i in range(0, len(items), len(exercises))]
    plans = []
    for n, group in enumerate(groups):
        plan = {}
        for (label, (template, status, needle)), ex in zip(group, exercises):
            plan[ex.id] = (label, "# EXERCISE: %s\n" % ex.id + template.format(name=ex.symbol),
                           status, needle)
        path = with_cells(solved_dir / f"{LESSON.slug}.ipynb",
                          {k: v[1] for k, v in plan.items()}, tmp_path / f"hostile{n}.ipynb")
        plans.append((path, plan))
    return plans


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_hostile_cells_cost_only_their_exercise(mode, solved_dir, tmp_path):
    for path, plan in _hostile_notebooks(solved_dir, tmp_path):
        proc = run_cli("grade", "--notebook", path, "--format", "json", "--timeout", "2",
                       env={"AUTOGRADER_SANDBOX": mode})
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        report = json.loads(proc.stdout)
        for entry in report["exercises"]:
            if entry["id"] in plan:
                label, _, status, needle = plan[entry["id"]]
                assert entry["status"] == status, (label, entry)
                assert entry["score"] == 0 or status == "failed", (label, entry)
                assert needle in entry["message"], (label, entry["message"])
            else:
                assert entry["status"] == "passed", entry


def test_the_timeout_holds_in_wall_clock_time(solved_dir, tmp_path):
    path = with_cells(solved_dir / f"{LESSON.slug}.ipynb",
                      {"01.softmax": "# EXERCISE: 01.softmax\n" + HOSTILE[
                          "endless loop, SIGALRM and SIGTERM ignored"][0].format(name="softmax")},
                      tmp_path / "loop.ipynb")
    import time
    start = time.monotonic()
    proc = run_cli("grade", "--notebook", path, "--format", "json", "--timeout", "1")
    assert time.monotonic() - start < 15
    report = json.loads(proc.stdout)
    assert [e["status"] for e in report["exercises"]].count("timeout") == 1


def test_invalid_json_gives_exit_2_and_one_line(tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text('{"cells": [ {"cell_type": "code", ', encoding="utf-8")
    proc = run_cli("grade", "--notebook", bad)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "not valid notebook JSON" in proc.stderr


def test_notebook_without_exercise_cells_gives_exit_2(tmp_path):
    empty = tmp_path / "empty.ipynb"
    empty.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "print(1)",
                                            "metadata": {}, "outputs": []}],
                                 "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    proc = run_cli("grade", "--notebook", empty)
    assert proc.returncode == 2
    assert "no exercise cells" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00", b"[1, 2, 3]", b""])
def test_other_unreadable_files_give_exit_2(tmp_path, content):
    path = tmp_path / "odd.ipynb"
    path.write_bytes(content)
    proc = run_cli("grade", "--notebook", path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_missing_notebook_file_gives_exit_2(tmp_path):
    proc = run_cli("grade", "--notebook", tmp_path / "nope.ipynb")
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_cell_that_lost_its_metadata_is_still_found(solved_dir, tmp_path):
    from autograder import notebook
    nb = notebook.read(solved_dir / f"{LESSON.slug}.ipynb")
    for cell in nb["cells"]:
        cell["metadata"] = {}
    notebook.write(nb, tmp_path / "nometa.ipynb")
    proc = run_cli("grade", "--notebook", tmp_path / "nometa.ipynb", "--format", "json")
    report = json.loads(proc.stdout)
    assert report["score"] == report["max_score"]


def test_deleted_exercise_cell_costs_that_exercise(solved_dir, tmp_path):
    from autograder import notebook
    nb = notebook.read(solved_dir / f"{LESSON.slug}.ipynb")
    nb["cells"] = [c for c in nb["cells"] if notebook.exercise_id_of(c) != "01.mse"]
    notebook.write(nb, tmp_path / "nomse.ipynb")
    report = json.loads(run_cli("grade", "--notebook", tmp_path / "nomse.ipynb",
                                "--format", "json").stdout)
    by_id = {e["id"]: e for e in report["exercises"]}
    assert by_id["01.mse"]["status"] == "error" and "EXERCISE: 01.mse" in by_id["01.mse"]["message"]
    assert all(e["status"] == "passed" for k, e in by_id.items() if k != "01.mse")


def test_magics_in_a_cell_do_not_break_grading(solved_dir, tmp_path):
    from autograder import notebook
    source = notebook.solution_source(specs.get_exercise("01.mse"))
    source = source.replace("\ndef mse", "\n%timeit 1 + 1\n!echo hi\ndef mse")
    path = with_cells(solved_dir / f"{LESSON.slug}.ipynb", {"01.mse": source},
                      tmp_path / "magic.ipynb")
    report = json.loads(run_cli("grade", "--notebook", path, "--format", "json").stdout)
    assert report["score"] == report["max_score"]


def test_unused_root_is_the_project():
    assert (ROOT / "lessons").is_dir()


def test_a_package_missing_from_the_machine_costs_only_the_exercises_that_need_it(solved_dir,
                                                                                    tmp_path):
    # a "torch" that cannot be imported, first on the path: as on a machine without torch
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    (tmp_path / "sub").mkdir()
    for lesson in ("00_welcome", "12_pytorch"):
        (tmp_path / "sub" / f"{lesson}.ipynb").write_bytes(
            (solved_dir / f"{lesson}.ipynb").read_bytes())
    proc = run_cli("grade", "--notebook", tmp_path / "sub", "--format", "json",
                   env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert proc.returncode == 0, proc.stderr
    by_lesson = {}
    for entry in json.loads(proc.stdout)["exercises"]:
        by_lesson.setdefault(entry["lesson"], []).append(entry)
    assert all(e["status"] == "passed" for e in by_lesson["00"])
    assert by_lesson["12"] and all(
        e["status"] == "error" and "needs the package 'torch'" in e["message"]
        for e in by_lesson["12"])
