"""Grade a whole class: ``python -m autograder grade-class SUBMISSIONS``.

SUBMISSIONS is a folder with one entry per student::

    alice.ipynb          one notebook: the student is "alice"
    bob/                 a folder: every notebook under it, at any depth, is bob's
        01_losses.ipynb
        lesson02/02_optimizers.ipynb

The assignment is the lessons named on the command line (by default, every lesson
whose exercises appear in some submission). Each student is graded in a process of
their own, ``--jobs`` at a time, so nothing in one submission can touch another's
grade. For each student the output folder gets ``students/NAME.json`` (the scores and
messages, as ``grade --format json`` gives them) and ``students/NAME.html`` (a feedback
page to hand back); then ``gradebook.csv`` gets one row per student.

Grading can be stopped and started again: a student whose notebooks, assignment and
options are the same as in the last run, graded by the same grader (its code and
the reference solutions), is not graded again.
"""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import grader, notebook, report, sandbox, specs

STUDENTS_DIR = "students"
GRADEBOOK = "gradebook.csv"


class ClassError(Exception):
    """A problem with the command itself (no such folder, nothing to grade): one line."""


@dataclass
class Student:
    name: str
    notebooks: list                  # Paths, sorted
    fingerprint: str = ""


@dataclass
class Outcome:
    """What grading one student gave: their saved report, or why there is none."""
    student: Student
    report: dict | None = None
    reused: bool = False
    failure: str = ""
    seconds: float = 0.0


# --------------------------------------------------------------------------- finding the work

def _hidden(name):
    return name.startswith(".")


def notebooks_under(folder):
    """Every notebook under ``folder``, at any depth, sorted; hidden files and folders
    (``.ipynb_checkpoints`` among them) are left out."""
    folder = Path(folder)
    return [path for path in sorted(folder.rglob("*.ipynb"))
            if not any(_hidden(part) for part in path.relative_to(folder).parts)]


def find_students(folder, exclude=None):
    """``[Student, ...]`` sorted by name, from a submissions folder (see the module's doc).

    ``alice.ipynb`` and a folder ``alice/`` are the same student. Hidden files and
    folders (``.ipynb_checkpoints`` among them) are ignored, and so is ``exclude``
    (the output folder, when it is inside the submissions folder).
    """
    exclude = Path(exclude).resolve() if exclude else None
    folder = Path(folder)
    if not folder.is_dir():
        raise ClassError(f"{folder}: no such folder (give the folder that holds the submissions)")
    found = {}
    for entry in sorted(folder.iterdir()):
        if _hidden(entry.name) or entry.resolve() == exclude:
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir():
            found.setdefault(entry.name, []).extend(notebooks_under(entry))
    if not found:
        raise ClassError(f"{folder}: no submissions in it (a notebook NAME.ipynb or a folder NAME/ "
                         "per student)")
    return [Student(name, sorted(paths)) for name, paths in sorted(found.items())]


def assignment(students, keys):
    """The lessons to grade: those named by ``keys``, else those the submissions touch."""
    if keys:
        try:
            return specs.lessons_named(keys)
        except ValueError as exc:
            raise ClassError(str(exc)) from None
    seen = set()
    for student in students:
        for path in student.notebooks:
            try:
                seen.update(notebook.exercise_cells(notebook.read(path)))
            except notebook.NotebookError:
                pass
    lessons = grader.lessons_of(seen)
    if not lessons:
        raise ClassError("no submission holds an exercise of this course; name the lessons to "
                         "grade (for example: grade-class SUBMISSIONS 01 02)")
    return lessons


def grader_fingerprint():
    """A hash of the grader's code and the reference solutions: a change to either regrades."""
    digest = hashlib.sha256()
    for package in ("autograder", "solutions"):
        for path in sorted((Path(sandbox.PROJECT_ROOT) / package).rglob("*.py")):
            digest.update(str(path.relative_to(sandbox.PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def student_fingerprint(student, settings):
    """A hash of everything a student's grade depends on (see the module's doc)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in student.notebooks:
        digest.update(path.name.encode())
        try:
            digest.update(path.read_bytes())
        except OSError as exc:                 # graded as unreadable; retried next time
            digest.update(f"unreadable {exc}".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- one student

def collect_cells(paths):
    """``({exercise_id: source}, notes)`` over a student's notebooks, in order.

    An exercise found in two notebooks is taken from the later one (as within one
    notebook, the last cell wins), and a note says so. An unreadable notebook is a note.
    """
    cells, found_in, notes = {}, {}, []
    for path in paths:
        try:
            nb_cells = notebook.exercise_cells(notebook.read(path))
        except notebook.NotebookError as exc:
            notes.append(f"not graded: {exc}")
            continue
        for ex_id, source in nb_cells.items():
            if ex_id in found_in:
                notes.append(f"{ex_id} is in both {found_in[ex_id].name} and {path.name}; "
                             f"the one in {path.name} was graded")
            cells[ex_id], found_in[ex_id] = source, path
    if not paths:
        notes.append("no notebooks in this submission")
    return cells, notes


def grade_student(student, lessons, limits=None, on="cpu"):
    """``(graded, notes)`` for one student: ``graded`` as ``grader.grade_notebook`` gives it."""
    cells, notes = collect_cells(student.notebooks)
    where = ", ".join(p.name for p in student.notebooks) or "the submission"
    return grader.grade_cells(cells, lessons, where, limits=limits, on=on), notes


def _write_atomically(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_student(out_dir, student, graded, notes, seconds):
    """Write ``NAME.html`` and then ``NAME.json`` (the JSON last: it marks the student done)."""
    folder = Path(out_dir) / STUDENTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(folder / f"{student.name}.html",
                      report.feedback_page(graded, student.name, notes))
    saved = json.loads(report.as_json(graded))
    saved.update({"student": student.name, "fingerprint": student.fingerprint,
                  "notebooks": [str(p) for p in student.notebooks], "notes": notes,
                  "seconds": round(seconds, 2)})
    _write_atomically(folder / f"{student.name}.json", json.dumps(saved, indent=2) + "\n")
    return saved


def _interrupted(signum, frame):
    raise KeyboardInterrupt        # the sandbox then kills the child it is running, and we exit


def _worker(argv):
    """``python -m autograder.classroom JOB``: grade one student, as the job file says."""
    signal.signal(signal.SIGTERM, _interrupted)
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    student = Student(job["name"], [Path(p) for p in job["notebooks"]], job["fingerprint"])
    lessons = [specs.get_lesson(key) for key in job["lessons"]]
    limits = sandbox.Limits(timeout=job["timeout"]) if job["timeout"] else None
    start = time.monotonic()
    graded, notes = grade_student(student, lessons, limits=limits, on=job["device"])
    save_student(job["out"], student, graded, notes, time.monotonic() - start)
    return 0


# --------------------------------------------------------------------------- the whole class

def previous_report(out_dir, student):
    """The report saved for ``student`` by an earlier run, if it is still valid."""
    path = Path(out_dir) / STUDENTS_DIR / f"{student.name}.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved if saved.get("fingerprint") == student.fingerprint else None


def student_time_limit(lessons, timeout):
    """A bound for one student's whole grading, however their code behaves: every exercise
    at its time limit, plus start-up. Only a fault of the grader itself can reach it."""
    per_exercise = [(timeout or ex.timeout) + grader.CUDA_START_SECONDS
                    for lesson in lessons for ex in lesson.exercises]
    return 60 + 1.5 * sum(per_exercise)


class _Processes:
    """The grading processes running now, so that an interrupt can stop every one of them."""

    def __init__(self):
        self._procs, self._lock, self.stopping = set(), threading.Lock(), False

    def start(self, argv, env):
        with self._lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                    env=env)
            self._procs.add(proc)
            return proc

    def finished(self, proc):
        with self._lock:
            self._procs.discard(proc)

    def stop_all(self):
        with self._lock:
            self.stopping = True
            procs = list(self._procs)
        for proc in procs:
            stop(proc)


def stop(proc, grace=5.0):
    """Stop a grading process: SIGTERM first, so that it kills the sandboxed child it is
    running (that child has a process group of its own), then SIGKILL if it is still there."""
    if os.name != "posix":                    # no process groups: the process alone
        proc.kill()
        proc.wait()
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _grade_in_a_process(student, job, out_dir, limit, processes, command):
    job_path = Path(out_dir) / STUDENTS_DIR / f".{student.name}.job.json"
    job_path.write_text(json.dumps({**job, "name": student.name, "fingerprint": student.fingerprint,
                                    "notebooks": [str(p) for p in student.notebooks]}),
                        encoding="utf-8")
    start = time.monotonic()
    proc = processes.start([*command, str(job_path)], sandbox.child_env())
    if proc is None:
        job_path.unlink(missing_ok=True)
        return Outcome(student, failure="interrupted before grading")
    try:
        output, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        stop(proc)
        proc.communicate()
        return Outcome(student, failure=f"the grader itself stopped answering (no result after "
                                        f"{limit:.0f} s)", seconds=time.monotonic() - start)
    finally:
        processes.finished(proc)
        job_path.unlink(missing_ok=True)
    seconds = time.monotonic() - start
    saved = previous_report(out_dir, student)
    if proc.returncode != 0 or saved is None:
        last = (output or "").strip().splitlines()[-1:] or ["no output"]
        return Outcome(student, failure=f"the grader failed (exit code {proc.returncode}): "
                                        f"{last[0][:300]}", seconds=seconds)
    return Outcome(student, report=saved, seconds=seconds)


def grade_class(students, lessons, out_dir, *, jobs=None, timeout=None, on="cpu", regrade=False,
                progress=None, command=None):
    """Grade every student (reusing valid earlier reports unless ``regrade``); ``[Outcome]``.

    ``progress(outcome, done, total)`` is called as each student finishes.
    ``command`` is the worker's command line (tests replace it).
    """
    out_dir = Path(out_dir)
    (out_dir / STUDENTS_DIR).mkdir(parents=True, exist_ok=True)
    job = {"lessons": [l.id for l in lessons], "timeout": timeout, "device": on,
           "out": str(out_dir)}
    settings = {"grader": grader_fingerprint(), "lessons": job["lessons"], "timeout": timeout,
                "device": on}                # what a grade depends on (not where it is saved)
    for student in students:
        student.fingerprint = student_fingerprint(student, settings)
    command = command or [sys.executable, "-m", "autograder.classroom"]
    limit = student_time_limit(lessons, timeout)
    outcomes, todo = {}, []
    for student in students:
        saved = None if regrade else previous_report(out_dir, student)
        if saved is not None:
            outcomes[student.name] = Outcome(student, report=saved, reused=True)
        else:
            todo.append(student)
    done = 0
    for outcome in outcomes.values():
        done += 1
        if progress:
            progress(outcome, done, len(students))
    processes, futures = _Processes(), []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    try:
        futures = [pool.submit(_grade_in_a_process, s, job, out_dir, limit, processes, command)
                   for s in todo]
        pending = set(futures)
        while pending:
            # Short waits, not as_completed's endless one: the kernel may hand a Ctrl-C to one
            # of the pool's threads, and Python only raises it when the main thread comes back
            # from waiting. An endless wait would then last until a student finished.
            finished, pending = concurrent.futures.wait(
                pending, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                outcome = future.result()
                outcomes[outcome.student.name] = outcome
                done += 1
                if progress:
                    progress(outcome, done, len(students))
    except BaseException:                  # Ctrl-C: stop every grading process, keep what is saved
        for future in futures:
            future.cancel()
        processes.stop_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [outcomes[s.name] for s in students]


# --------------------------------------------------------------------------- what the teacher reads

def _safe_cell(text):
    """A spreadsheet must not take a name for a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def gradebook(outcomes, lessons):
    """The CSV gradebook: a row per student, a column per exercise (blank where skipped)."""
    exercises = [ex for lesson in lessons for ex in lesson.exercises]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", "percent",
                     *[ex.id for ex in exercises], "notes"])
    for outcome in outcomes:
        name = _safe_cell(outcome.student.name)
        if outcome.report is None:
            writer.writerow([name, "", "", "", *[""] * len(exercises),
                             _safe_cell(f"not graded: {outcome.failure}")])
            continue
        by_id = {e["id"]: e for e in outcome.report["exercises"]}
        cells = []
        for ex in exercises:
            entry = by_id.get(ex.id)
            cells.append("" if entry is None or entry["status"] == "skipped"
                         else report._pts(entry["score"]))
        score, max_score = outcome.report["score"], outcome.report["max_score"]
        writer.writerow([name, report._pts(score), report._pts(max_score),
                         f"{report._percent(score, max_score):.1f}", *cells,
                         _safe_cell("; ".join(outcome.report.get("notes", [])))])
    return buffer.getvalue()


def summary(outcomes, lessons):
    """For the terminal: each exercise's pass rate and mean points over the graded students."""
    graded = [o.report for o in outcomes if o.report is not None]
    lines = [f"{len(graded)} of {len(outcomes)} students graded"]
    if not graded:
        return "\n".join(lines) + "\n"
    width = max(len(ex.id) for lesson in lessons for ex in lesson.exercises) + 2
    lines.append(f"  {'exercise':<{width}}{'passed':>10}{'mean points':>14}")
    for lesson in lessons:
        for ex in lesson.exercises:
            entries = [e for r in graded for e in r["exercises"]
                       if e["id"] == ex.id and e["status"] != "skipped"]
            if not entries:
                lines.append(f"  {ex.id:<{width}}{'skipped':>10}")
                continue
            passed = sum(e["status"] == "passed" for e in entries)
            mean = sum(e["score"] for e in entries) / len(entries)
            lines.append(f"  {ex.id:<{width}}{f'{passed} / {len(entries)}':>10}"
                         f"{f'{mean:.2f} / {report._pts(ex.points)}':>14}")
    scores = [report._percent(r["score"], r["max_score"]) for r in graded]
    lines.append(f"  mean score {sum(scores) / len(scores):.1f} %, lowest {min(scores):.1f} %, "
                 f"highest {max(scores):.1f} %")
    return "\n".join(lines) + "\n"


def run(args, out):
    """The ``grade-class`` command (its options: see the CLI); returns the exit code."""
    if args.jobs is not None and args.jobs < 1:
        raise ClassError("--jobs must be at least 1")
    students = find_students(args.submissions, exclude=args.out)
    lessons = assignment(students, args.lessons)
    out.write(f"Grading {len(students)} students on lesson(s) "
              f"{', '.join(l.id for l in lessons)} into {args.out}/\n")

    def progress(outcome, done, total):
        name = outcome.student.name
        if outcome.report is None:
            line = f"NOT GRADED: {outcome.failure}"
        else:
            r = outcome.report
            line = (f"{report._pts(r['score'])} / {report._pts(r['max_score'])} points"
                    + (" (unchanged since the last run)" if outcome.reused
                       else f" ({outcome.seconds:.1f} s)"))
        out.write(f"  [{done}/{total}] {name}: {line}\n")
        out.flush()

    try:
        outcomes = grade_class(students, lessons, args.out, jobs=args.jobs, timeout=args.timeout,
                               on=args.device, regrade=args.regrade, progress=progress)
    except KeyboardInterrupt:
        out.write("interrupted: the students graded so far are saved; run the same command "
                  "again to grade the rest\n")
        return 130
    _write_atomically(Path(args.out) / GRADEBOOK, gradebook(outcomes, lessons))
    out.write("\n" + summary(outcomes, lessons))
    out.write(f"wrote {Path(args.out) / GRADEBOOK} and a feedback page per student in "
              f"{Path(args.out) / STUDENTS_DIR}/\n")
    failed = [o.student.name for o in outcomes if o.report is None]
    if failed:
        out.write(f"{len(failed)} student(s) could not be graded ({', '.join(failed)}); run the "
                  "same command again to retry them\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
