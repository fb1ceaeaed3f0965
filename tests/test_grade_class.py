"""``grade-class``: a folder of submissions graded into a CSV gradebook and feedback pages.

The class used here (lessons 00 and 01):
- alice: a folder, lesson 00 solved in a subfolder, lesson 01 solved; a wrong copy of
  lesson 01 in .ipynb_checkpoints that must be ignored;
- bob.ipynb: the fresh stub of lesson 01;
- carol: a folder, lesson 01 solved but one mistake in 01.cross_entropy, and a broken notebook;
- dave: an empty folder;
- "=HYPERLINK": a solved lesson 00, whose name a spreadsheet must not run as a formula.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from autograder import classroom, specs

from conftest import ROOT, lesson_path, run_cli, with_cells

LESSONS = [specs.get_lesson("00"), specs.get_lesson("01")]
MAX_SCORE = sum(lesson.points for lesson in LESSONS)
CE = specs.get_exercise("01.cross_entropy")


def _cross_entropy_mistake():
    return "# EXERCISE: 01.cross_entropy\n" + CE.mistakes[0].source


def make_class(root, solved_dir):
    sub = root / "submissions"
    (sub / "alice" / "week1").mkdir(parents=True)
    shutil.copy(solved_dir / "00_welcome.ipynb", sub / "alice" / "week1" / "00_welcome.ipynb")
    shutil.copy(solved_dir / "01_losses.ipynb", sub / "alice" / "01_losses.ipynb")
    (sub / "alice" / ".ipynb_checkpoints").mkdir()
    with_cells(solved_dir / "01_losses.ipynb", {CE.id: _cross_entropy_mistake()},
               sub / "alice" / ".ipynb_checkpoints" / "01_losses-checkpoint.ipynb")
    shutil.copy(lesson_path(LESSONS[1]), sub / "bob.ipynb")
    (sub / "carol").mkdir()
    with_cells(solved_dir / "01_losses.ipynb", {CE.id: _cross_entropy_mistake()},
               sub / "carol" / "01_losses.ipynb")
    (sub / "carol" / "broken.ipynb").write_text("{not json", encoding="utf-8")
    (sub / "dave").mkdir()
    shutil.copy(solved_dir / "00_welcome.ipynb", sub / "=HYPERLINK.ipynb")
    return sub


def read_gradebook(out):
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, solved_dir):
    root = tmp_path_factory.mktemp("class")
    sub = make_class(root, solved_dir)
    out = root / "grades"
    proc = run_cli("grade-class", sub, "00", "01", "--out", out, "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sub, out, proc.stdout


def test_gradebook_has_a_row_per_student_and_a_column_per_exercise(graded_class):
    _, out, _ = graded_class
    book = read_gradebook(out)
    assert set(book) == {"alice", "bob", "carol", "dave", "'=HYPERLINK"}
    ids = [ex.id for lesson in LESSONS for ex in lesson.exercises]
    with open(out / "gradebook.csv", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == ["student", "score", "max_score", "percent", *ids, "notes"]

    alice = book["alice"]                  # the checkpoint's wrong copy was not graded
    assert float(alice["score"]) == float(alice["max_score"]) == MAX_SCORE
    assert alice["percent"] == "100.0" and alice["notes"] == ""
    assert float(book["bob"]["score"]) == 0 and all(book["bob"][i] == "0" for i in ids)

    carol = book["carol"]                  # the mistake may pass some cases: partial credit
    assert float(carol[CE.id]) < CE.points
    assert all(float(carol[ex.id]) == ex.points for ex in LESSONS[1].exercises if ex is not CE)
    assert float(carol["score"]) == LESSONS[1].points - CE.points + float(carol[CE.id])
    assert all(carol[ex.id] == "0" for ex in LESSONS[0].exercises)
    assert "broken.ipynb" in carol["notes"] and "not valid notebook JSON" in carol["notes"]
    assert "no notebooks" in book["dave"]["notes"]
    assert float(book["'=HYPERLINK"]["score"]) == LESSONS[0].points


def test_each_student_gets_a_json_report_and_a_feedback_page(graded_class):
    _, out, _ = graded_class
    carol = json.loads((out / "students" / "carol.json").read_text())
    entry = next(e for e in carol["exercises"] if e["id"] == CE.id)
    assert entry["status"] == "failed" and CE.mistakes[0].hint[:30] in entry["message"]
    assert carol["student"] == "carol"
    assert carol["score"] == LESSONS[1].points - CE.points + entry["score"]
    page = (out / "students" / "carol.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert CE.id in page and "broken.ipynb" in page
    assert f"{carol['score']:g} / {MAX_SCORE:g} points" in page
    assert not list((out / "students").glob(".*"))          # no job files left behind


def test_summary_gives_each_exercise_pass_rate(graded_class):
    _, _, stdout = graded_class
    line = next(l for l in stdout.splitlines() if l.split()[:1] == [CE.id])
    assert line.split()[1:4] == ["1", "/", "5"]   # alice only: a stub, a mistake, two with no cell
    assert "5 of 5 students graded" in stdout


def test_a_second_run_grades_only_what_changed(graded_class, tmp_path, solved_dir):
    sub, out, _ = graded_class
    work_sub, work_out = tmp_path / "submissions", tmp_path / "grades"
    shutil.copytree(sub, work_sub)
    shutil.copytree(out, work_out)
    # the reports hold the notebooks' fingerprints, not their paths: a copied class is unchanged
    again = run_cli("grade-class", work_sub, "00", "01", "--out", work_out)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("unchanged since the last run") == 5

    shutil.copy(solved_dir / "01_losses.ipynb", work_sub / "carol" / "01_losses.ipynb")
    third = run_cli("grade-class", work_sub, "00", "01", "--out", work_out)
    assert third.stdout.count("unchanged since the last run") == 4
    assert "carol: " in third.stdout and float(read_gradebook(work_out)["carol"]["score"]) \
        == LESSONS[1].points

    other_lessons = run_cli("grade-class", work_sub, "01", "--out", work_out)
    assert "unchanged" not in other_lessons.stdout       # a new assignment is graded afresh
    forced = run_cli("grade-class", work_sub, "01", "--out", work_out, "--regrade")
    assert "unchanged" not in forced.stdout


def test_default_assignment_is_the_lessons_the_submissions_hold(tmp_path, solved_dir):
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(solved_dir / "02_optimizers.ipynb", sub / "zoe.ipynb")
    for _ in range(2):                 # the output folder inside the submissions is no student
        proc = run_cli("grade-class", sub, "--out", sub / "grades")
        assert proc.returncode == 0, proc.stderr
    book = read_gradebook(sub / "grades")
    assert list(book) == ["zoe"]
    row = book["zoe"]
    assert {k.split(".")[0] for k in row if "." in k} == {"02"}
    assert float(row["score"]) == specs.get_lesson("02").points


@pytest.mark.parametrize("args, message", [
    (["missing-folder"], "no such folder"),
    (["{empty}"], "no submissions"),
    (["{sub}", "77"], "unknown lesson '77'"),
    (["{sub}", "--jobs", "0"], "--jobs must be at least 1"),
    (["{sub}", "--timeout", "-1"], "--timeout must be a positive number"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "sub").mkdir()
    shutil.copy(lesson_path(LESSONS[0]), tmp_path / "sub" / "x.ipynb")
    args = [a.format(empty=tmp_path / "empty", sub=tmp_path / "sub") for a in args]
    proc = run_cli("grade-class", *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _students(tmp_path, names):
    students = []
    for name in names:
        path = tmp_path / f"{name}.ipynb"
        shutil.copy(lesson_path(LESSONS[0]), path)
        students.append(classroom.Student(name, [path]))
    return students


def test_a_grader_that_crashes_or_hangs_costs_that_student_only(tmp_path, monkeypatch):
    # stands in for a fault of the grader itself (student code cannot cause one: it is sandboxed)
    fake_worker = ("import json, sys, time\n"
                   "from autograder import classroom\n"
                   "job = json.load(open(sys.argv[1]))\n"
                   "if job['name'] == 'crash': raise RuntimeError('grader bug')\n"
                   "if job['name'] == 'hang': time.sleep(600)\n"
                   "sys.exit(classroom._worker(sys.argv[1:]))\n")
    monkeypatch.setattr(classroom, "student_time_limit", lambda lessons, timeout: 8)
    students = _students(tmp_path, ["crash", "fine", "hang"])
    start = time.monotonic()
    outcomes = classroom.grade_class(students, [LESSONS[0]], tmp_path / "out", jobs=3,
                                     command=[sys.executable, "-c", fake_worker])
    assert time.monotonic() - start < 30
    by_name = {o.student.name: o for o in outcomes}
    assert by_name["fine"].report is not None
    assert "exit code 1" in by_name["crash"].failure and "grader bug" in by_name["crash"].failure
    assert "stopped answering" in by_name["hang"].failure
    book = classroom.gradebook(outcomes, [LESSONS[0]])
    assert "crash,,,," in book and "not graded: the grader failed" in book
    # nothing is saved for them, so the next run tries them again
    assert not (tmp_path / "out" / "students" / "crash.json").exists()


def _interrupt_a_thread_other_than_main(pid):
    """SIGINT to one of the process's other threads, as the kernel sometimes delivers a Ctrl-C."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if not sys.platform.startswith("linux") or not hasattr(libc, "tgkill"):
        pytest.skip("needs Linux's tgkill")
    others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert others, "grade-class runs its students from a thread pool"
    assert libc.tgkill(pid, others[0], signal.SIGINT) == 0


@pytest.mark.parametrize("receiver", ["main thread", "a pool thread"])
def test_ctrl_c_stops_every_process_and_keeps_what_was_graded(tmp_path, solved_dir, receiver):
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(solved_dir / "00_welcome.ipynb", sub / "a_first.ipynb")
    pid_file = tmp_path / "pid"
    hang = ("# EXERCISE: 00.standardize_columns\nimport os\n"
            f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\nwhile True:\n    pass\n")
    with_cells(solved_dir / "00_welcome.ipynb", {"00.standardize_columns": hang},
               sub / "b_hangs.ipynb")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # Ctrl-C as in a terminal, even where these tests run as a background job: a shell starts
    # those with SIGINT ignored, and Python then keeps ignoring it (as it should).
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade-class", str(sub), "00",
                             "--out", str(tmp_path / "out"), "--jobs", "1", "--timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    student_code = int(pid_file.read_text())
    if receiver == "main thread":
        proc.send_signal(signal.SIGINT)
    else:       # Python raises it only when the main thread returns from what it waits on
        _interrupt_a_thread_other_than_main(proc.pid)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, output
    assert "run the same command again" in output
    assert (tmp_path / "out" / "students" / "a_first.json").exists()
    assert not (tmp_path / "out" / "students" / "b_hangs.json").exists()
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):           # the student's endless loop is gone
        os.kill(student_code, 0)


def test_grade_writes_a_feedback_page(solved_dir, tmp_path):
    path = with_cells(solved_dir / "01_losses.ipynb", {CE.id: _cross_entropy_mistake()},
                      tmp_path / "one_wrong.ipynb")
    proc = run_cli("grade", "--notebook", path, "--format", "html")
    assert proc.returncode == 0, proc.stderr
    page = proc.stdout
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert all(ex.id in page for ex in LESSONS[1].exercises)
    assert "9 of 10 exercises passed" in page
