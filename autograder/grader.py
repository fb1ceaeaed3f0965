"""Grade one exercise: run the learner's code in the sandbox, judge it here.

The child (``run_student``) only executes: it defines the learner's symbol
(from a cell's source, or a live function in a notebook), runs the driver on
every case and sends back the raw outputs. The parent (``grade``) computes the
expected outputs from the references, compares, scores and writes the
feedback, so nothing the learner's code does to NumPy or to this package in
its own process can change the verdict.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import inspect
import linecache
import os
import re
import sysconfig
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import device, fake_gpu, sandbox, spec, specs
from .codec import normalize
from .compare import compare, generic_hint
from .spec import Case, arrays_in, copy_arrays, has_arrays, unchanged

STATUSES = ("passed", "failed", "error", "timeout", "out_of_memory", "not_attempted", "skipped")


@dataclass
class CaseResult:
    name: str
    passed: bool
    detail: str = ""           # what was wrong, for a failed case


@dataclass
class ExerciseResult:
    id: str
    lesson: str
    score: float
    max_score: float
    status: str
    message: str = ""          # the first failure, with its hint; or why nothing ran
    cases: list = field(default_factory=list)
    output: str = ""           # what the learner's code printed (cut short)
    warnings: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self):
        return self.status == "passed"

    def to_json(self):
        return {"id": self.id, "lesson": self.lesson, "score": self.score,
                "max_score": self.max_score, "status": self.status, "message": self.message,
                "warnings": self.warnings}


# --------------------------------------------------------------------------- child side

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The reference solutions count as a library: an error inside a reference prerequisite is
# reported at the learner's line that called it, not at a line of the reference.
_SOLUTIONS_DIR = os.path.join(os.path.dirname(_PACKAGE_DIR), "solutions") + os.sep
_LIBRARY_DIRS = tuple(p for p in {sysconfig.get_paths().get("stdlib"),
                                  sysconfig.get_paths().get("purelib"),
                                  sysconfig.get_paths().get("platlib"),
                                  os.path.dirname(np.__file__), _PACKAGE_DIR,
                                  _SOLUTIONS_DIR} if p)


def _student_frame(tb):
    """The innermost traceback frame that is the learner's code, not a library's."""
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        if not os.path.abspath(frame.filename).startswith(_LIBRARY_DIRS) \
                or frame.filename.startswith("<exercise"):
            return frame
    return None


def describe_exception(exc):
    """``TypeError: ... (line 7, in softmax: return e / e.sum())``."""
    if isinstance(exc, SystemExit):
        return f"the code called exit({exc.code!r}); do not call exit() or sys.exit() in an exercise"
    text = f"{type(exc).__name__}: {exc}"
    if len(text) > 400:
        text = text[:400] + "..."
    if isinstance(exc, NameError) and not isinstance(exc, UnboundLocalError):
        text += (" [an exercise cell is graded on its own, after the imports of the notebook's "
                 "first cell: define or import anything else inside the cell]")
    frame = _student_frame(exc.__traceback__)
    if frame is not None:
        where = f"line {frame.lineno}, in {frame.name}"
        if frame.line:
            where += f": {frame.line.strip()}"
        text += f" ({where})"
    return text


_FAULT_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<name>\S+)')


def _crash_location(output):
    """The learner's innermost frame in a faulthandler dump (most recent call first)."""
    for match in _FAULT_FRAME.finditer(output):
        filename = match.group("file")
        if filename.startswith("<exercise") or \
                not os.path.abspath(filename).startswith(_LIBRARY_DIRS):
            return f"line {match.group('line')}, in {match.group('name')}"
    return None


def _globals_of(obj):
    if hasattr(obj, "__globals__"):
        return obj.__globals__
    for value in vars(obj).values() if isinstance(obj, type) else ():
        if hasattr(value, "__globals__"):
            return value.__globals__
    return None


def _given(case):
    """Every input of a case by name: its data (which drivers pass on, e.g. ``dout``), then its
    arguments, positional and keyword."""
    return {**case.data, **case.args, **case.kwargs}


def _snapshot(case):
    """The case's inputs that hold arrays, at any depth, copied before the learner's run; and
    its plain lists and dicts (of words, ids, counts), deep-copied."""
    snapshot = {}
    for k, v in _given(case).items():
        if has_arrays(v):
            snapshot[k] = copy_arrays(v)
        elif isinstance(v, (list, dict)):
            snapshot[k] = _Plain(copy.deepcopy(v))
    return snapshot


@dataclass
class _Plain:
    """A deep copy of a list or dict without arrays, compared with ==."""
    value: Any


def _changed(now, before):
    if isinstance(before, _Plain):
        try:
            return not bool(now == before.value)
        except Exception:                        # a value that cannot be compared
            return False
    return not unchanged(now, before)


def _mutated(before, case):
    """The names of the inputs changed in place: the case's, and those a driver handed over
    through ``spec.watch``. A case input that reached the learner only inside a watched one
    (the forward's ``x`` in a backward pass's cache) goes by the watched name alone."""
    given = _given(case)
    watched = {name: value for name, value, copy in spec.WATCHED if not unchanged(value, copy)}
    names = [k for k, v in before.items() if _changed(given[k], v)
             and not any(_shares_memory(given[k], w) for w in watched.values())]
    return list(dict.fromkeys(names + list(watched)))


def _shares_memory(a, b):
    return any(np.shares_memory(x, y) for x in arrays_in(a) for y in arrays_in(b))


# Inputs that a driver hands over under a name of its own: what the learner knows them as,
# and what changing them in place breaks (for the others: "callers may not expect that").
_MUTATION_EFFECTS = {
    "dout": ("the upstream gradient it was given (its first argument)",
             "where a residual connection sends the same upstream gradient down two paths, "
             "the other path would get the changed one"),
    "cache": ("the cache it was given",
              "the cache belongs to the forward pass; a second backward pass through it, or "
              "anything else that holds its arrays, would see the changed values"),
}


def _mutation_warning(name):
    what, effect = _MUTATION_EFFECTS.get(name, (f"its input `{name}`",
                                                "callers may not expect that"))
    return f"your code changed {what} in place; {effect}"


def _kept_inputs_detail(entry):
    """Why a case with the right values fails: a forward or backward pass changed its inputs."""
    return "\n".join(entry["warnings"]) + (
        "\nhint: a forward or backward pass must leave what it is given as it is: compute new "
        "arrays (x = x + y, not x += y; dx = dout.copy() before writing into it)")


def run_student(payload):
    """Child side: define the learner's symbol, run every case, return the raw outputs."""
    previous = device.current()
    device.set_current(payload.get("device", "cpu"))
    try:
        return _run_student(payload)
    finally:
        device.set_current(previous)        # matters only when run in the grader's process


def prerequisites(exercise):
    """The reference versions of the exercises ``exercise`` builds on, by their symbols."""
    return {specs.get_exercise(r).symbol: specs.get_exercise(r).reference
            for r in exercise.requires}


def cell_namespace(exercise, name="__main__"):
    """What an exercise cell runs in when it is graded on its own: the lesson's prelude (which
    ends with the imports of the notebook's first cell), then ``prerequisites``."""
    namespace = {"__name__": name, "__builtins__": builtins}
    exec(exercise.lesson.prelude, namespace)
    namespace.update(prerequisites(exercise))
    return namespace


def _run_student(payload):
    exercise = specs.get_exercise(payload["exercise"])
    result = {"load_error": None, "load_error_type": None, "cases": []}
    obj = payload.get("fn")
    try:
        if obj is None:
            namespace = cell_namespace(exercise)
            filename = f"<exercise {exercise.id}>"
            source = payload["source"]
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            exec(compile(source, filename, "exec"), namespace)
            obj = namespace.get(exercise.symbol)
            if obj is None:
                result["load_error"] = (f"the cell does not define `{exercise.symbol}`: keep the "
                                        "name the stub gives it")
                result["load_error_type"] = "NameError"
                return result
    except (sandbox.Interrupted, KeyboardInterrupt):
        raise
    except BaseException as exc:
        result["load_error"] = "running the cell raised " + describe_exception(exc)
        result["load_error_type"] = type(exc).__name__
        return result
    # A live notebook function gets the reference prerequisites too, for the duration only.
    references = prerequisites(exercise)
    scope = _globals_of(obj) if payload.get("fn") is not None else None
    saved = {name: scope[name] for name in references if name in scope} if scope else {}
    if scope is not None:
        scope.update(references)
    try:
        _run_cases(exercise, obj, payload["cases"], result)
    finally:
        if scope is not None:
            for name in references:
                scope.pop(name, None)
            scope.update(saved)
    return result


def _on_stand_in_gpu(case):
    """Where a case runs: the device being graded, or the stand-in GPU (see ``grade``)."""
    if not case.data.get(STAND_IN_GPU):
        return contextlib.nullcontext()
    return _stand_in_gpu()


@contextlib.contextmanager
def _stand_in_gpu():
    with fake_gpu.installed():
        previous = device.current()
        device.set_current("cuda")          # the drivers move the arrays to "cupy": the fake
        try:
            yield
        finally:
            device.set_current(previous)


def _run_cases(exercise, obj, raw_cases, result):
    for raw in raw_cases:
        case = Case.from_dict(raw).copy()      # the learner may change what it is given
        before = _snapshot(case) if exercise.warn_on_mutation else None
        spec.WATCHED.clear()
        entry = {"value": None, "error": None, "error_type": None, "warnings": []}
        try:
            with warnings.catch_warnings(), _on_stand_in_gpu(case):
                warnings.simplefilter("ignore")
                entry["value"] = exercise.run(obj, case)
        except (sandbox.Interrupted, KeyboardInterrupt):
            raise                 # the time is up (in-process runs), or the learner pressed stop
        except BaseException as exc:
            entry["error"] = describe_exception(exc)
            entry["error_type"] = type(exc).__name__
        entry["mutated"] = _mutated(before, case) if before is not None else []
        for name in entry["mutated"]:
            entry["warnings"].append(_mutation_warning(name))
        result["cases"].append(entry)


# --------------------------------------------------------------------------- parent side

_MISTAKE_CACHE = {}


def _mistake_objects(exercise):
    """The exercise's known mistakes, defined once in this (trusted) process."""
    if exercise.id not in _MISTAKE_CACHE:
        objects = []
        for mistake in exercise.mistakes:
            namespace = cell_namespace(exercise, "__mistake__")
            exec(compile(mistake.source, f"<mistake {mistake.name}>", "exec"), namespace)
            objects.append((mistake, namespace[exercise.symbol]))
        _MISTAKE_CACHE[exercise.id] = objects
    return _MISTAKE_CACHE[exercise.id]


def _mistaken(exercise, obj, case):
    """What a known mistake gives on ``case``, or None when it raises."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings(), _on_stand_in_gpu(case):
            warnings.simplefilter("ignore")
            return normalize(exercise.run(obj, case.copy()))
    except Exception:
        return None


def _hint_for(exercise, case, expected, got, diff, outcomes=()):
    """The hint of the known mistake whose output equals the learner's, else a generic hint.

    With ``outcomes`` (every case's ``(case, value, expected)``; given for the first failure,
    whose hint the learner reads first), a mistake that gets wrong values where the learner's
    are right is not theirs, even if it gives their output here (a ``+=`` mistake, right on a
    case without repeated ids, only float64 there, "explains" a learner whose only slip is the
    dtype); and when several mistakes remain, the one that agrees with the learner on the most
    cases explains it best. Without ``outcomes`` the first that matches is taken.
    """
    matching = []
    for mistake, obj in _mistake_objects(exercise):
        mistaken = _mistaken(exercise, obj, case)
        if mistaken is None or compare(expected, mistaken, exercise.tolerance) is None:
            continue        # raised, or right on this case: it explains nothing
        if compare(mistaken, got, exercise.tolerance) is None:
            matching.append((mistake, obj))
            if not outcomes:
                break
    if matching and outcomes:
        runs = {}                            # each mistake runs once per case, for both uses

        def mistaken_on(obj, other):
            key = (id(obj), id(other))
            if key not in runs:
                runs[key] = _mistaken(exercise, obj, other)
            return runs[key]

        def wrong_where_learner_is_right(pair):
            for other, value, right in outcomes:
                if compare(right, value, exercise.tolerance) is not None:
                    continue                 # the learner is wrong here too
                mistaken = mistaken_on(pair[1], other)
                difference = None if mistaken is None else \
                    compare(right, mistaken, exercise.tolerance)
                if difference is not None and difference.kind != "dtype":
                    return True              # (a template sloppy about dtypes still counts)
            return False

        def agreement(pair):
            return sum(1 for other, value, _ in outcomes
                       if (mistaken := mistaken_on(pair[1], other)) is not None
                       and compare(mistaken, value, exercise.tolerance) is None)
        matching = [pair for pair in matching if not wrong_where_learner_is_right(pair)]
        if len(matching) > 1:
            matching.sort(key=agreement, reverse=True)  # stable: ties keep the catalogue's order
    if not matching:
        return generic_hint(diff)
    return matching[0][0].hint


def check_syntax(source, exercise_id):
    """None if ``source`` compiles, else a one-line message."""
    try:
        compile(source, f"<exercise {exercise_id}>", "exec")
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        return f"SyntaxError in the cell, line {exc.lineno}: {exc.msg}" + (f": {line}" if line else "")
    except (ValueError, OverflowError) as exc:          # e.g. null bytes in the source
        return f"the cell cannot be compiled: {exc}"
    return None


def _result(exercise, status, message="", score=0.0, **kw):
    return ExerciseResult(exercise.id, exercise.lesson.id, round(score, 2), exercise.points,
                          status, message, **kw)


def device_for(exercise, requested="cpu"):
    """Where ``exercise`` runs when the grade asks for ``requested`` ("cpu" or "cuda").

    None means it cannot run here: it needs a GPU and there is none.
    """
    if exercise.devices == ("cuda",):
        return "cuda" if device.cuda_available() else None
    if requested == "cuda" and "cuda" in exercise.devices:
        return "cuda" if device.cuda_available() else None
    return "cpu"


# Added to an exercise's time limit when it runs on the GPU (see grade()).
CUDA_START_SECONDS = 30

# A case's data key: run it on autograder.fake_gpu's device arrays (see grade()).
STAND_IN_GPU = "stand_in_gpu"


def with_stand_in_gpu_cases(exercise, cases, where):
    """The cases, and on the CPU each one again on a stand-in GPU, for CuPy code
    (``exercise.stand_in_gpu``: lesson 11's array-module-agnostic exercises).

    Without a GPU, NumPy stands in for CuPy, so code that hard-codes NumPy (``np.add.at``,
    a host ``np.zeros`` next to device arrays) would pass. The copies run on
    ``fake_gpu``'s device arrays, which refuse to mix with host arrays as CuPy does; their
    expected values are the NumPy reference's, as on a real GPU.
    """
    if where != "cpu" or not exercise.stand_in_gpu:
        return cases
    copies = []
    for case in cases:
        copy = case.copy()
        copy.name = f"{case.name} · on a stand-in GPU (NumPy as strict as CuPy)"
        copy.data[STAND_IN_GPU] = True
        copies.append(copy)
    return cases + copies


def grade(exercise, *, source=None, fn=None, limits=None, mode=None, on="cpu"):
    """Grade ``source`` (an exercise cell's code) or ``fn`` (a live object) for ``exercise``.

    ``on="cuda"`` grades the exercises that can run on a GPU there (see ``device``).
    """
    where = device_for(exercise, on)
    if where is None:
        return skipped(exercise)
    if source is not None:
        problem = check_syntax(source, exercise.id)
        if problem:
            return _result(exercise, "error", problem)
    try:
        cases = with_stand_in_gpu_cases(exercise, exercise.make_cases(), where)
    except ImportError as exc:          # the machine lacks a package (torch for lesson 12)
        return _result(exercise, "error", missing_package(exc))
    limits = limits or sandbox.Limits(timeout=exercise.timeout)
    payload = {"exercise": exercise.id, "source": source, "cases": [c.to_dict() for c in cases],
               "device": where}
    mode = mode or sandbox.default_mode()
    if where == "cuda":
        # CUDA does not survive fork(), and a CUDA context reserves far more address space
        # than the memory cap allows: a fresh interpreter, without the cap. Its start-up is
        # not the learner's time: importing CuPy or PyTorch, creating the CUDA context, and
        # CuPy compiling each kernel the first time this machine meets it.
        limits = sandbox.Limits(timeout=limits.timeout + CUDA_START_SECONDS, memory_mb=0,
                                max_output=limits.max_output)
        if mode == "fork":
            mode = "spawn"
    if fn is not None:
        payload["fn"] = fn
        if mode == "spawn":             # a live object cannot travel to a fresh interpreter
            mode = "inprocess"
    outcome = sandbox.run(sandbox.Job(run_student, payload), limits, mode)
    return judge(exercise, cases, outcome, code=source if fn is None else _source_of(fn))


def _source_of(obj):
    """The source of a live function or class (for the static checks), or None; blank lines
    before it keep the line numbers of its cell or file."""
    try:
        lines, first = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return None
    return "\n" * max(first - 1, 0) + "".join(lines)


def missing_package(exc):
    """Why an exercise could not be graded when the grader's own import failed."""
    name = getattr(exc, "name", None) or str(exc)
    return (f"not graded: the grader needs the package {name!r} for this exercise, and it is "
            "not installed here. This is the machine's fault, not your code's: "
            "pip install -e \".[dev]\" installs every package the course uses.")


def skipped(exercise):
    """The result of an exercise that needs a GPU, on a machine without one."""
    return _result(exercise, "skipped", f"{device.NO_GPU}: this exercise runs on an NVIDIA GPU "
                   "(CUDA); it is graded on a machine that has one, and counts neither for nor "
                   "against you here")


def judge(exercise, cases, outcome, code=None):
    """Turn the child's raw outputs into a scored, explained ExerciseResult.

    ``code`` is the learner's source, for the exercises whose docstring states a rule about
    the code (no Python loops, a product never formed): one case more per rule
    (``Exercise.all_source_rules``), which fails where the code breaks it.
    """
    common = {"output": outcome.output, "seconds": outcome.seconds}
    if outcome.status != "ok":
        status = {"timeout": "timeout", "out_of_memory": "out_of_memory"}.get(outcome.status, "error")
        message = outcome.message
        if outcome.status == "crashed":
            where = _crash_location(outcome.output)
            message += f" ({where})" if where else ""
        return _result(exercise, status, message, **common)
    raw = outcome.value
    if not isinstance(raw, dict) or "cases" not in raw:
        return _result(exercise, "error", "the child process returned nothing usable", **common)
    if raw["load_error"]:
        status = {"NotImplementedError": "not_attempted",
                  "MemoryError": "out_of_memory"}.get(raw["load_error_type"], "error")
        return _result(exercise, status, raw["load_error"], **common)

    entries = raw["cases"]
    error_types = [e["error_type"] for e in entries]
    if error_types and all(t == "NotImplementedError" for t in error_types):
        return _result(exercise, "not_attempted",
                       "not attempted yet (the stub still raises NotImplementedError)", **common)
    if "MemoryError" in error_types:
        first = entries[error_types.index("MemoryError")]
        return _result(exercise, "out_of_memory",
                       f"ran out of memory: {first['error']}", **common)

    case_results, first_failure, first_failure_raised = [], None, False
    warnings_seen = []
    expected_values = {}

    def expected_of(case):                   # the reference's output, computed once per case
        if id(case) not in expected_values:
            expected_values[id(case)] = exercise.expected_for(case)
        return expected_values[id(case)]
    for case, entry in zip(cases, entries):
        for w in entry["warnings"]:
            if w not in warnings_seen:
                warnings_seen.append(w)
        if entry["error"] is not None:
            detail = entry["error"]
            if entry["error_type"] == "NotImplementedError":
                detail += " (remove `raise NotImplementedError` once your code is written)"
            case_results.append(CaseResult(case.name, False, detail))
        else:
            expected = expected_of(case)
            diff = compare(expected, entry["value"], exercise.tolerance)
            kept = exercise.inputs_kept and entry.get("mutated")
            if diff is None and not kept:
                case_results.append(CaseResult(case.name, True))
                continue
            if diff is None:               # the right values, at the cost of its inputs
                case_results.append(CaseResult(case.name, False, _kept_inputs_detail(entry)))
                if first_failure is None:
                    first_failure, first_failure_raised = (case, case_results[-1]), False
                continue
            detail = diff.text
            outcomes = [] if first_failure is not None else \
                [(c, e["value"], expected_of(c)) for c, e in zip(cases, entries)
                 if e["error"] is None]
            hint = _hint_for(exercise, case, expected, entry["value"], diff, outcomes)
            if hint:
                detail += f"\nhint: {hint}"
            for warning in entry["warnings"]:      # an input changed in place: a likely cause
                detail += f"\nnote: {warning}"
            case_results.append(CaseResult(case.name, False, detail))
        if first_failure is None:
            first_failure = (case, case_results[-1])
            first_failure_raised = entry["error"] is not None

    for rule in exercise.all_source_rules if code is not None else ():
        found = rule.find(code)
        detail = ""
        if found:
            line, what = found[0]
            detail = f"line {line} {what}; {rule.asks}\nhint: {rule.hint}"
        case_results.append(CaseResult(rule.case, not found, detail))
        if found and first_failure is None:
            first_failure = (Case(rule.case), case_results[-1])

    n_passed = sum(c.passed for c in case_results)
    score = exercise.points * n_passed / len(case_results) if case_results else 0.0
    if first_failure is None:
        return _result(exercise, "passed", score=score, cases=case_results,
                       warnings=warnings_seen, **common)
    case, failed = first_failure
    inputs = f" ({case.describe()})" if case.describe() else ""
    message = (f"{n_passed}/{len(case_results)} cases passed. First failure, case "
               f"\"{case.name}\"{inputs}:\n{failed.detail}")
    return _result(exercise, "error" if first_failure_raised else "failed", message, score=score,
                   cases=case_results, warnings=warnings_seen, **common)


def grade_missing(exercise, reason):
    return _result(exercise, "error", reason)


def grade_notebook(path, only_lessons=None, limits=None, mode=None, on="cpu"):
    """Grade every exercise of the lessons a notebook holds.

    Returns a list of ``(lesson, [ExerciseResult, ...])``. The lessons are the
    ones whose exercise cells appear in the notebook (or ``only_lessons``); an
    exercise whose cell is missing scores 0 with a message. Raises
    ``notebook.NotebookError`` for a file that is not a notebook or has no
    exercise cells.
    """
    from . import notebook

    nb = notebook.read(path)
    cells = notebook.exercise_cells(nb)
    if not cells:
        raise notebook.NotebookError(f"{path}: no exercise cells (a code cell whose first line "
                                     "is '# EXERCISE: <id>')")
    lessons = only_lessons or lessons_of(cells)
    if not lessons:
        raise notebook.NotebookError(f"{path}: its exercise cells ({', '.join(sorted(cells))}) "
                                     "belong to no lesson this grader knows"
                                     + specs.withheld_note(cells))
    return grade_cells(cells, lessons, str(path), limits=limits, mode=mode, on=on)


def lessons_of(exercise_ids):
    """The lessons, in course order, that the given exercise ids belong to."""
    lesson_ids = {ex_id.split(".")[0] for ex_id in exercise_ids}
    return [lesson for lesson in specs.lessons() if lesson.id in lesson_ids]


def grade_cells(cells, lessons, where, limits=None, mode=None, on="cpu"):
    """Grade ``lessons`` from ``cells`` (``{exercise_id: source}``) found in ``where``.

    Returns a list of ``(lesson, [ExerciseResult, ...])``; an exercise with no cell
    scores 0 with a message that names ``where``.
    """
    graded = []
    for lesson in lessons:
        results = []
        for exercise in lesson.exercises:
            source = cells.get(exercise.id)
            if device_for(exercise, on) is None:
                results.append(skipped(exercise))
            elif source is None:
                results.append(grade_missing(exercise, f"no cell starting with '# EXERCISE: "
                                                       f"{exercise.id}' in {where}"))
            else:
                results.append(grade(exercise, source=source, limits=limits, mode=mode, on=on))
        graded.append((lesson, results))
    return graded
