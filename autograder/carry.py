"""Your answers, carried forward: what the course's code calls in a student bundle.

``python -m autograder release`` (see ``release.py``) writes a copy of the course
for a class in which the reference solutions of some lessons are withheld. In
that copy each withheld exercise in ``solutions/`` is its stub, decorated with
``@yours("<exercise id>")``. Calling it calls the learner's own answer instead:

1. the function or class of that name in the running notebook (``__main__``),
   when it was defined by the exercise's own cell (the cell that starts with
   ``# EXERCISE: <id>``); so in lesson 09, the Trainer runs your ``training_step``;
2. otherwise the exercise's cell in your saved notebook for its lesson
   (``lessons/NN_*.ipynb``), run after that notebook's imports; so lesson 07's
   code runs your lesson 06 encoder block.

When neither has an answer (the cell is still the stub, or missing, or raises),
the call raises ``MissingAnswer`` (a ``NotImplementedError``) saying which
exercise to write, and where. A withheld class stands for the learner's class
too: building it builds the learner's, ``isinstance`` accepts the learner's
objects, and a class derived from it (the course's ``LayerNorm`` from lesson 03's
``Module``, say) is derived from the learner's as well.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import linecache
import os
import re
import sys
import weakref
from pathlib import Path

from . import notebook
from .spec import BASE_PRELUDE

ROOT = Path(__file__).resolve().parent.parent       # the bundle: lessons/, solutions/, ...


class MissingAnswer(NotImplementedError):
    """A withheld exercise that the course's code needs, and that the learner has not written."""


def release_info():
    """What ``release`` wrote about this copy of the course, or None in the full course."""
    try:
        from .release_info import INFO
    except ImportError:
        return None
    return INFO


def yours(exercise_id):
    """Decorate a withheld exercise's stub so that calling it calls the learner's answer."""
    def wrap(stub):
        if isinstance(stub, type):
            return _forward_class(exercise_id, stub)

        @functools.wraps(stub)
        def forward(*args, **kwargs):
            return answer(exercise_id, stub.__name__)(*args, **kwargs)
        forward.__yours__ = exercise_id
        return forward
    return wrap


def _is_forwarder(obj):
    """A withheld exercise's stand-in itself (not a class the learner derived from one)."""
    return "__yours__" in getattr(obj, "__dict__", {})


class _Yours(type):
    """The type of a withheld class: the learner's objects and classes count as its own."""

    def __instancecheck__(cls, obj):
        return type.__instancecheck__(cls, obj) or \
            (_is_forwarder(cls) and isinstance(obj, _learners_class(cls)))

    def __subclasscheck__(cls, sub):
        return type.__subclasscheck__(cls, sub) or \
            (_is_forwarder(cls) and issubclass(sub, _learners_class(cls)))


def _learners_class(stub):
    try:
        found = answer(stub.__yours__, stub.__name__)
    except MissingAnswer:
        return ()
    return found if isinstance(found, type) else ()


def _forward_class(exercise_id, stub):
    """The stub rebuilt as a ``_Yours`` class that stands for the learner's class."""
    def __new__(cls, *args, **kwargs):
        if cls is forwarded:                  # the exercise itself: build the learner's class
            return answer(exercise_id, stub.__name__)(*args, **kwargs)
        # A class derived from withheld ones (the course's LayerNorm from Module, or the
        # learner's own): its objects are the learner's classes' too, so that the learner's
        # methods, their super() calls and isinstance all work on them.
        learners = tuple(answer(k.__yours__, k.__name__) for k in cls.__mro__
                         if _is_forwarder(k))
        return object.__new__(_joined(cls, learners))

    def method(name):
        def call(self, *args, **kwargs):
            return getattr(answer(exercise_id, stub.__name__), name)(self, *args, **kwargs)
        call.__name__ = call.__qualname__ = name
        return call

    namespace = {name: value for name, value in vars(stub).items()
                 if name not in ("__dict__", "__weakref__")}
    for name, value in namespace.items():
        if inspect.isfunction(value):
            namespace[name] = functools.wraps(value)(method(name))
    namespace["__new__"] = __new__
    namespace["__yours__"] = exercise_id
    forwarded = _Yours(stub.__name__, stub.__bases__, namespace)
    return forwarded


@functools.lru_cache(maxsize=None)
def _joined(cls, learners):
    missing = tuple(dict.fromkeys(k for k in learners if not issubclass(cls, k)))
    if not missing:
        return cls
    return type(cls)(cls.__name__, (cls, *missing), {"__module__": cls.__module__,
                                                     "__qualname__": cls.__qualname__})


def answer(exercise_id, symbol):
    """The learner's function or class for ``exercise_id``, or raise MissingAnswer."""
    candidate = getattr(sys.modules.get("__main__"), symbol, None)
    elsewhere = ""
    if candidate is not None and not _is_forwarder(candidate):
        verdict = _verdict(candidate, exercise_id, symbol)
        if verdict == "answer":
            return candidate
        if verdict == "stub":
            raise MissingAnswer(_message(exercise_id, symbol, "is still the starting stub in "
                                         "this notebook: write it, and run its cell"))
        if verdict == "another cell":
            elsewhere = (f" (the `{symbol}` defined in the running notebook does not count: it "
                         f"is not in the cell that starts with '# EXERCISE: {exercise_id}')")
    return _from_saved_notebook(exercise_id, symbol, elsewhere)


_VERDICTS = weakref.WeakKeyDictionary()   # a running notebook's function or class -> verdict


def _verdict(candidate, exercise_id, symbol):
    """"answer", "stub", "another cell" or "unknown" (no source) for a function or class of the
    running notebook; fixed for the object, so worked out once (calls are a hot path)."""
    key = (exercise_id, symbol)
    try:
        known = _VERDICTS.setdefault(candidate, {})
    except TypeError:                         # an object that takes no weak reference
        known = {}
    if key not in known:
        cell = _cell_of(candidate)
        if cell is None:
            known[key] = "unknown"
        elif not _marker_in(cell, exercise_id):
            known[key] = "another cell"
        else:
            known[key] = "stub" if is_stub(cell, symbol) else "answer"
    return known[key]


def _cell_of(obj):
    """The source of the cell (or file) that defined ``obj``, as Jupyter keeps it."""
    code = getattr(obj, "__code__", None)
    if code is None and isinstance(obj, type):
        code = next((value.__code__ for value in vars(obj).values() if inspect.isfunction(value)),
                    None)
    if code is None:
        return None
    return "".join(linecache.getlines(code.co_filename)) or None


def _marker_in(source, exercise_id):
    return any((match := notebook.MARKER.match(line)) and match.group(1) == exercise_id
               for line in source.splitlines())


def is_stub(source, symbol):
    """Whether ``symbol``'s definition in ``source`` does nothing but raise NotImplementedError."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == symbol:
            functions = [node] if isinstance(node, ast.FunctionDef) else \
                [item for item in node.body if isinstance(item, ast.FunctionDef)]
            return bool(functions) and all(_only_raises(f) for f in functions)
    return False


def _only_raises(function):
    body = [stmt for stmt in function.body
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))]
    return len(body) == 1 and isinstance(body[0], ast.Raise) and \
        "NotImplementedError" in ast.unparse(body[0])


def notebook_folders():
    """Where a lesson's saved notebook is looked for: the bundle's lessons/ folder, then (for a
    course installed without -e) the working folder, its lessons/ and its parent's lessons/."""
    cwd = Path.cwd()
    folders = [ROOT / "lessons", cwd, cwd / "lessons", cwd.parent / "lessons"]
    return list(dict.fromkeys(folders))


_NOTEBOOKS = {}   # lesson id -> its saved notebook's path
_SAVED = {}       # notebook path -> (modification time, {exercise id: (answer or None, problem)})


def _notebook_of(lesson_id):
    slug = _withheld_lesson(lesson_id).get("slug")
    for folder in notebook_folders() if slug else ():
        if (folder / f"{slug}.ipynb").is_file():
            return folder / f"{slug}.ipynb"
    return None


def _withheld_lesson(lesson_id):
    return (release_info() or {}).get("withheld", {}).get(lesson_id, {})


def _from_saved_notebook(exercise_id, symbol, elsewhere=""):
    lesson_id = exercise_id.split(".")[0]
    path = _NOTEBOOKS.get(lesson_id)
    try:
        mtime = os.stat(path).st_mtime_ns
    except (OSError, TypeError):                 # not found yet, or gone: look again
        path = _NOTEBOOKS[lesson_id] = _notebook_of(lesson_id)
        if path is None:
            searched = ", ".join(str(f) for f in notebook_folders())
            raise MissingAnswer(_message(exercise_id, symbol, f"has no saved notebook: lesson "
                                         f"{lesson_id}'s was looked for in {searched}")) from None
        mtime = os.stat(path).st_mtime_ns
    if path not in _SAVED or _SAVED[path][0] != mtime:
        _SAVED[path] = (mtime, _run_exercise_cells(path))
    found, problem = _SAVED[path][1].get(exercise_id, (None, None))
    if found is None:
        problem = problem or (f"has no cell in {_shown(path)} (the cell that starts with "
                              f"'# EXERCISE: {exercise_id}')")
        raise MissingAnswer(_message(exercise_id, symbol, problem + elsewhere))
    return found


def _shown(path):
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _run_exercise_cells(path):
    """Run a saved notebook's first-cell imports, then its exercise cells in order, in one
    namespace (as the notebook's own kernel would); ``{id: (answer or None, problem)}``.

    Each answer is taken right after its own cell. An exercise whose cell is still the stub,
    or raised, is replaced in the namespace by a function that raises MissingAnswer, so that
    another exercise of the notebook that calls it says what is missing too.
    """
    nb = notebook.read(path)
    namespace = {"__name__": f"lessons.{path.stem}", "__builtins__": builtins}
    exec(BASE_PRELUDE + notebook.setup_imports(nb), namespace)
    other_cells = [notebook.cell_source(c) for c in nb["cells"]
                   if c.get("cell_type") == "code" and notebook.exercise_id_of(c) is None]
    found = {}
    for cell in nb["cells"]:
        exercise_id = notebook.exercise_id_of(cell)
        if exercise_id is None:
            continue
        symbol = _withheld_lesson(exercise_id.split(".")[0]).get("exercises", {}).get(exercise_id)
        source = notebook.strip_magics(notebook.cell_source(cell))
        filename = f"<{path.name}, exercise {exercise_id}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        where = _shown(path)
        try:
            exec(compile(source, filename, "exec"), namespace)
        except Exception as exc:                      # the learner's cell: report, go on
            problem = f"could not be loaded from {where}: its cell raised " \
                      f"{type(exc).__name__}: {exc}"
        else:
            obj = namespace.get(symbol)
            if obj is None or _is_forwarder(obj):
                problem = f"is not defined by its cell in {where}: keep the name the stub gives it"
            elif is_stub(source, symbol):
                problem = f"is still the starting stub in {where}: write it there and save " \
                          "the notebook" + _defined_elsewhere(other_cells, symbol)
            else:
                found[exercise_id] = (obj, None)
                continue
        found[exercise_id] = (None, problem)
        if symbol:
            namespace[symbol] = _raiser(exercise_id, symbol, problem)
    return found


def _defined_elsewhere(other_cells, symbol):
    pattern = re.compile(rf"^(def|class)\s+{re.escape(symbol)}\b", re.M)
    if any(pattern.search(cell) for cell in other_cells):
        return (f" (another cell of the notebook defines `{symbol}` too: only the exercise's "
                "own cell counts)")
    return ""


def _raiser(exercise_id, symbol, problem):
    def missing(*args, **kwargs):
        raise MissingAnswer(_message(exercise_id, symbol, problem))
    missing.__name__ = symbol
    return missing


def _message(exercise_id, symbol, what):
    info = release_info()
    released = ""
    if info is not None:
        through = info.get("solutions_through")
        released = f" (solutions are included through lesson {through})" if through else \
            " (no solutions are included)"
    return (f"`{symbol}` (exercise {exercise_id}) {what}. The course's code calls your answer "
            f"to it: this copy of the course holds no reference solution for lesson "
            f"{exercise_id.split('.')[0]}{released}.")
