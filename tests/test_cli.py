"""The command-line contract: list, grade (formats, output, exit codes), solve."""

import json
import shutil

import pytest

from autograder import grader, specs

from conftest import ROOT, grade_json, run_cli, with_cells


def test_list_shows_every_lesson_exercise_and_points():
    proc = run_cli("list")
    assert proc.returncode == 0
    for lesson in specs.lessons():
        assert lesson.slug in proc.stdout
        for ex in lesson.exercises:
            line = next(l for l in proc.stdout.splitlines() if ex.id in l.split())
            assert f" {ex.points:g} " in line


def test_table_has_a_row_per_exercise_and_a_progress_section():
    proc = run_cli("grade")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for ex in specs.exercises():
        assert ex.id in out
    assert "not attempted" in out
    assert "Progress" in out and "overall" in out
    gpu_only = [ex for ex in specs.exercises() if grader.device_for(ex) is None]
    total = sum(l.points for l in specs.lessons()) - sum(ex.points for ex in gpu_only)
    assert f"0 / {total:g}" in out                    # GPU-only exercises count in neither total
    if gpu_only:
        assert f"{len(gpu_only)} exercise(s) skipped" in out


def test_table_shows_first_failure_and_hint(solved_dir, tmp_path):
    from conftest import with_cells
    ex = specs.get_exercise("01.cross_entropy")
    path = with_cells(solved_dir / "01_losses.ipynb",
                      {ex.id: "# EXERCISE: 01.cross_entropy\n" + ex.mistakes[0].source},
                      tmp_path / "one_wrong.ipynb")
    out = run_cli("grade", "--notebook", path).stdout
    assert "01.cross_entropy" in out and "failed" in out
    assert "First failure" in out and ex.mistakes[0].hint[:40] in out.replace("\n        ", " ")
    assert "9 of 10 exercises passed" in out


@pytest.mark.parametrize("key", ["01", "1", "01_losses"])
def test_lesson_can_be_named_by_number_or_slug(key):
    report = json.loads(run_cli("grade", key, "--format", "json").stdout)
    assert {e["lesson"] for e in report["exercises"]} == {"01"}


def test_json_format_fields():
    report = json.loads(run_cli("grade", "00", "--format", "json").stdout)
    assert set(report) == {"score", "max_score", "skipped", "exercises"}
    for entry in report["exercises"]:
        assert set(entry) == {"id", "lesson", "score", "max_score", "status", "message",
                              "warnings"}
        assert isinstance(entry["warnings"], list)
        assert entry["status"] in ("passed", "failed", "error", "timeout", "out_of_memory",
                                   "not_attempted", "skipped")


def test_gradescope_format(solved_dir):
    proc = run_cli("grade", "--notebook", solved_dir / "02_optimizers.ipynb",
                   "--format", "gradescope")
    results = json.loads(proc.stdout)
    assert results["score"] == specs.get_lesson("02").points
    assert len(results["tests"]) == len(specs.get_lesson("02").exercises)
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] == "passed" and test["visibility"] == "visible"


IN_PLACE = ("# EXERCISE: 00.standardize_columns\n"
            "def standardize_columns(x, eps=1e-8):\n"
            "    x -= x.mean(axis=0)\n"
            "    x /= np.sqrt(x.var(axis=0) + eps)\n"
            "    return x\n")


def test_warnings_of_a_passed_exercise_reach_json_and_gradescope(solved_dir, tmp_path):
    path = with_cells(solved_dir / "00_welcome.ipynb", {"00.standardize_columns": IN_PLACE},
                      tmp_path / "00_welcome.ipynb")
    report = grade_json("--notebook", path, "00")
    entry = next(e for e in report["exercises"] if e["id"] == "00.standardize_columns")
    assert entry["status"] == "passed"
    assert any("changed its input `x` in place" in w for w in entry["warnings"]), entry
    results = json.loads(run_cli("grade", "--notebook", path, "00", "--format",
                                 "gradescope").stdout)
    test = next(t for t in results["tests"] if t["name"] == "00.standardize_columns")
    assert test["status"] == "passed" and "warning: your code changed its input `x`" in \
        test["output"]


def test_lessons_named_with_a_notebook_are_the_assignment(solved_dir):
    # the notebook holds lesson 02; the assignment is 01 and 02: lesson 01's exercises score 0
    report = grade_json("--notebook", solved_dir / "02_optimizers.ipynb", "01", "02")
    by_lesson = {}
    for entry in report["exercises"]:
        by_lesson.setdefault(entry["lesson"], []).append(entry)
    assert set(by_lesson) == {"01", "02"}
    assert all(e["status"] == "passed" for e in by_lesson["02"])
    assert all(e["status"] == "error" and "no cell" in e["message"] for e in by_lesson["01"])
    assert report["max_score"] == specs.get_lesson("01").points + specs.get_lesson("02").points


def test_a_folder_of_notebooks_is_graded_as_one_submission(solved_dir, tmp_path):
    (tmp_path / "week2").mkdir()
    shutil.copy(solved_dir / "00_welcome.ipynb", tmp_path / "00_welcome.ipynb")
    shutil.copy(solved_dir / "01_losses.ipynb", tmp_path / "week2" / "losses.ipynb")
    (tmp_path / ".ipynb_checkpoints").mkdir()             # ignored, even though it is broken
    (tmp_path / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{")
    (tmp_path / "notes.ipynb").write_text("{")             # unreadable: a note, not a crash
    proc = run_cli("grade", "--notebook", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Note: not graded:" in proc.stdout and "notes.ipynb" in proc.stdout
    assert "x-checkpoint" not in proc.stdout
    points = specs.get_lesson("00").points + specs.get_lesson("01").points
    assert f"{points:g} / {points:g}  (100 %)" in proc.stdout


def test_gradescope_gets_a_results_file_even_when_nothing_can_be_graded(tmp_path):
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "essay.txt").write_text("no notebook here")
    results = tmp_path / "results.json"
    proc = run_cli("grade", "--notebook", tmp_path / "submission", "--format", "gradescope",
                   "--output", results)
    assert proc.returncode == 2 and "no notebook (.ipynb file) in it" in proc.stderr
    written = json.loads(results.read_text())
    assert written["score"] == 0 and written["tests"] == []
    assert "no notebook (.ipynb file) in it" in written["output"]
    (tmp_path / "submission" / "draft.ipynb").write_text(json.dumps({"cells": []}))
    proc = run_cli("grade", "--notebook", tmp_path / "submission", "--format", "gradescope",
                   "--output", results)
    assert "no notebook in it has an exercise cell" in json.loads(results.read_text())["output"]


def test_output_file(tmp_path):
    out = tmp_path / "report.json"
    proc = run_cli("grade", "00", "--format", "json", "--output", out)
    assert proc.returncode == 0 and proc.stdout == ""
    assert json.loads(out.read_text())["max_score"] == specs.get_lesson("00").points


def test_fail_under(solved_dir):
    assert run_cli("grade", "00", "--fail-under", "50").returncode == 1
    assert run_cli("grade", "00", "--fail-under", "0").returncode == 0
    solved = solved_dir / "00_welcome.ipynb"
    assert run_cli("grade", "--notebook", solved, "--fail-under", "100").returncode == 0


@pytest.mark.parametrize("args,needle", [
    ([], "a command is needed"),
    (["frobnicate"], "invalid choice"),
    (["grade", "99"], "unknown lesson"),
    (["grade", "--format", "xml"], "invalid choice"),
    (["grade", "77", "--notebook", "lessons/01_losses.ipynb"], "unknown lesson '77'"),
    (["grade", "my_work/01_losses.ipynb"], "grade it with --notebook my_work/01_losses.ipynb"),
    (["grade", "--fail-under", "lots"], "invalid float"),
    (["solve", "lessons/01_losses.ipynb"], "required"),
])
def test_usage_errors_exit_2_with_one_line(args, needle):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert needle in proc.stderr


def test_grade_from_another_folder_finds_the_course_lessons(tmp_path):
    proc = run_cli("grade", "00", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["max_score"] == specs.get_lesson("00").points


def test_solve_fills_every_stub_and_clears_outputs(tmp_path):
    from autograder import notebook
    out = tmp_path / "solved.ipynb"
    assert run_cli("solve", ROOT / "lessons" / "01_losses.ipynb", "-o", out).returncode == 0
    nb = notebook.read(out)
    cells = notebook.exercise_cells(nb)
    assert set(cells) == {ex.id for ex in specs.get_lesson("01").exercises}
    assert all("NotImplementedError" not in src for src in cells.values())


def test_solve_rejects_a_notebook_without_exercises(tmp_path):
    empty = tmp_path / "e.ipynb"
    empty.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    proc = run_cli("solve", empty, "-o", tmp_path / "o.ipynb")
    assert proc.returncode == 2 and "no exercise cells" in proc.stderr


def test_a_missing_fraction_of_a_point_is_never_shown_as_100_percent():
    from autograder import report
    assert report._shown_percent(23.89, 24) == "99"
    assert report._shown_percent(24, 24) == "100"
    assert report._shown_percent(0, 0) == "0"
