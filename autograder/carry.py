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
exercise to write, and where.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import json
import linecache
import os
import sys
from pathlib import Path

from . import notebook

ROOT = Path(__file__).resolve().parent.parent       # the bundle: lessons/, solutions/, ...
RELEASE_FILE = Path(__file__).resolve().parent / "release.json"


class MissingAnswer(NotImplementedError):
    """A withheld exercise that the course's code needs, and that the learner has not written."""


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


def _forward_class(exercise_id, stub):
    """Building the stub builds the learner's class; a class the course (or the learner)
    derives from the stub gets the learner's methods, looked up when they are called."""
    def __new__(cls, *args, **kwargs):
        if cls is stub:                       # the exercise itself: build the learner's class
            return answer(exercise_id, stub.__name__)(*args, **kwargs)
        return super(stub, cls).__new__(cls)  # a class derived from it

    def method(name):
        def call(self, *args, **kwargs):
            return getattr(answer(exercise_id, stub.__name__), name)(self, *args, **kwargs)
        call.__name__ = call.__qualname__ = name
        return call

    for name, value in list(vars(stub).items()):
        if inspect.isfunction(value):
            setattr(stub, name, functools.wraps(value)(method(name)))
    stub.__new__ = __new__
    stub.__yours__ = exercise_id
    return stub


def answer(exercise_id, symbol):
    """The learner's function or class for ``exercise_id``, or raise MissingAnswer."""
    main = sys.modules.get("__main__")
    candidate = getattr(main, symbol, None)
    if candidate is not None and not hasattr(candidate, "__yours__"):
        cell = _cell_of(candidate)
        if cell is not None and _marker_in(cell, exercise_id):
            if is_stub(cell, symbol):
                raise MissingAnswer(_message(exercise_id, symbol, "is still the starting stub in "
                                             "this notebook: write it, and run its cell"))
            return candidate
    return _from_saved_notebook(exercise_id, symbol)


def _cell_of(obj):
    """The source of the cell (or file) that defined ``obj``, as Jupyter keeps it."""
    code = getattr(obj, "__code__", None)
    if code is None and isinstance(obj, type):
        code = next((value.__code__ for value in vars(obj).values() if inspect.isfunction(value)),
                    None)
    if code is None:
        return None
    return "".join(linecache.getlines(code.co_filename)) or None


@functools.lru_cache(maxsize=512)
def _marker_in(source, exercise_id):
    return any((match := notebook.MARKER.match(line)) and match.group(1) == exercise_id
               for line in source.splitlines())


@functools.lru_cache(maxsize=512)
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


_NOTEBOOKS = {}   # lesson id -> its notebook's path
_SAVED = {}       # notebook path -> (modification time, {exercise id: (namespace, source, error)})


def _from_saved_notebook(exercise_id, symbol):
    lesson_id = exercise_id.split(".")[0]
    path = _NOTEBOOKS.get(lesson_id)
    try:
        mtime = os.stat(path).st_mtime_ns
    except (OSError, TypeError):
        paths = sorted((ROOT / "lessons").glob(f"{lesson_id}_*.ipynb"))
        if not paths:
            raise MissingAnswer(_message(exercise_id, symbol, f"has no notebook: lessons/"
                                         f"{lesson_id}_*.ipynb is not there")) from None
        path = _NOTEBOOKS[lesson_id] = paths[0]
        mtime = os.stat(path).st_mtime_ns
    where = f"lessons/{path.name}"
    if path not in _SAVED or _SAVED[path][0] != mtime:
        _SAVED[path] = (mtime, _run_exercise_cells(path))
    cells = _SAVED[path][1]
    if exercise_id not in cells:
        raise MissingAnswer(_message(exercise_id, symbol, f"has no cell in {where} (the cell "
                                     f"that starts with '# EXERCISE: {exercise_id}')"))
    namespace, source, error = cells[exercise_id]
    if error:
        raise MissingAnswer(_message(exercise_id, symbol, f"could not be loaded from {where}: "
                                     f"its cell raised {error}"))
    if symbol not in namespace:
        raise MissingAnswer(_message(exercise_id, symbol, f"is not defined by its cell in "
                                     f"{where}: keep the name the stub gives it"))
    if is_stub(source, symbol):
        raise MissingAnswer(_message(exercise_id, symbol, f"is still the starting stub in {where}: "
                                     "write it there and save the notebook"))
    return namespace[symbol]


def _run_exercise_cells(path):
    """Run a saved notebook's first-cell imports, then its exercise cells in order, in one
    namespace (as the notebook's own kernel would); ``{id: (namespace, source, error)}``."""
    nb = notebook.read(path)
    namespace = {"__name__": f"lessons.{path.stem}", "__builtins__": builtins}
    exec("import math\nimport numpy as np\n" + notebook.setup_imports(nb), namespace)
    cells = {}
    for cell in nb["cells"]:
        exercise_id = notebook.exercise_id_of(cell)
        if exercise_id is None:
            continue
        source = notebook.strip_magics(notebook.cell_source(cell))
        filename = f"<{path.name}, exercise {exercise_id}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            exec(compile(source, filename, "exec"), namespace)
            error = None
        except Exception as exc:                      # the learner's cell: report, go on
            error = f"{type(exc).__name__}: {exc}"
        cells[exercise_id] = (namespace, source, error)
    return cells


def _message(exercise_id, symbol, what):
    return (f"`{symbol}` (exercise {exercise_id}) {what}. The course's code calls your answer "
            f"to it: this copy of the course holds no reference solution for lesson "
            f"{exercise_id.split('.')[0]}{_released()}.")


def _released():
    try:
        through = json.loads(RELEASE_FILE.read_text(encoding="utf-8")).get("solutions_through")
    except (OSError, ValueError):
        return ""
    return f" (solutions are included through lesson {through})" if through else \
        " (no solutions are included)"
