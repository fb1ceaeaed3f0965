"""``check(fn)``: grade one exercise from inside a notebook, on the live function.

The function runs in a forked child process (on Linux; elsewhere in the
kernel itself, with a time limit), exactly as the command-line grader runs a
cell, and with the reference versions of the exercises it builds on. The
result shows as HTML in Jupyter and as text anywhere else.
"""

from __future__ import annotations

import ast
import builtins
import dis
import html
import inspect
import linecache
import sys
import types

from . import carry, grader, report, specs
from .setup_imports import SETUP_IMPORTS
from .spec import BASE_PRELUDE


class CheckResult:
    """What ``check`` returns: displays itself, and exposes ``passed`` and ``score``."""

    def __init__(self, result, exercise):
        self.result = result
        self.exercise = exercise

    @property
    def passed(self):
        return self.result.passed

    @property
    def status(self):
        return self.result.status

    @property
    def score(self):
        return self.result.score

    def _repr_html_(self):
        return report.check_html(self.result, self.exercise.title)

    def __repr__(self):
        return report.check_text(self.result, self.exercise.title)


def _resolve(args):
    if len(args) == 2:
        exercise_id, obj = args
    elif len(args) == 1 and isinstance(args[0], str):
        exercise_id = args[0]
        ex = _exercise(exercise_id)
        caller = sys._getframe(2).f_globals
        if ex.symbol not in caller:
            raise NameError(f"check({exercise_id!r}): `{ex.symbol}` is not defined here; run the "
                            "exercise cell first")
        return ex, caller[ex.symbol]
    elif len(args) == 1:
        obj = args[0]
        name = getattr(obj, "__name__", None)
        found = specs.find_by_symbol(name) if name else []
        if len(found) != 1:
            raise ValueError(f"check(): no exercise is called {name!r}; pass its id as well, "
                             "e.g. check('01.softmax', my_softmax)")
        return found[0], obj
    else:
        raise TypeError("use check(fn), check('01.softmax', fn) or check('01.softmax')")
    return _exercise(exercise_id), obj


def _exercise(exercise_id):
    try:
        return specs.get_exercise(exercise_id)
    except KeyError:
        known = ", ".join(ex.id for ex in specs.exercises())
        raise ValueError(f"unknown exercise {exercise_id!r}; the exercises are: {known}") from None


def check(*args, timeout=None, device="cpu"):
    """Run an exercise's test cases on your function and show what passed.

    ``check(softmax)`` finds the exercise by the function's name;
    ``check("01.softmax", fn)`` names it explicitly; ``check("01.softmax")``
    takes the function called ``softmax`` from your notebook.
    ``device="cuda"`` runs an exercise that can use a GPU on the GPU (lessons 11
    and 12); one that needs a GPU runs there whenever there is one, and is
    ``skipped`` otherwise.
    """
    withheld = _withheld(args)
    if withheld is not None:
        return withheld
    exercise, obj = _resolve(args)
    limits = None
    if timeout is not None:
        from .sandbox import Limits
        limits = Limits(timeout=timeout)
    result = grader.grade(exercise, fn=obj, limits=limits, on=device)
    for name in names_from_other_cells(exercise, obj):
        result.warnings.append(_other_cell_warning(name))
    return CheckResult(result, exercise)


class WithheldCheck:
    """What ``check`` returns, in a student bundle, for a lesson whose answers it does not hold."""

    passed = None
    score = None

    def __init__(self, exercise_id, lesson, warnings=()):
        self.exercise_id = exercise_id
        self.message = (f"Not checked here: this copy of the course holds no answers for lesson "
                        f"{lesson['slug']}, so your teacher grades {exercise_id} from the notebook "
                        "you hand in. Test it with the notebook's own cells.")
        self.warnings = list(warnings)

    def _repr_html_(self):
        notes = "".join(f"<br>warning: {html.escape(w)}" for w in self.warnings)
        return (f"<div style='border-left:4px solid #888;padding:4px 8px'>"
                f"{html.escape(self.message)}{notes}</div>")

    def __repr__(self):
        return self.message + "".join(f"\nwarning: {w}" for w in self.warnings)


def _withheld(args):
    """A WithheldCheck when ``args`` name an exercise that a student bundle withholds, else None."""
    withheld = specs.withheld()
    if args and isinstance(args[0], str):
        names = {args[0]}
    elif len(args) == 1 and not specs.find_by_symbol(getattr(args[0], "__name__", None)):
        names = {getattr(args[0], "__name__", None)}
    else:
        return None
    for lesson_id, lesson in withheld.items():
        for exercise_id, symbol in lesson["exercises"].items():
            if exercise_id in names or symbol in names:
                if len(args) == 2 or not isinstance(args[0], str):
                    fn = args[-1]
                else:
                    fn = sys._getframe(2).f_globals.get(symbol)
                requires = lesson.get("requires", {}).get(exercise_id, [])
                return WithheldCheck(exercise_id, lesson,
                                     _withheld_warnings(exercise_id, lesson_id, fn, requires))
    return None


def _withheld_warnings(exercise_id, lesson_id, fn, requires):
    """What the command-line grader would warn about, without the lesson's spec: names from
    other cells, and a function that is not the exercise cell's own."""
    warnings = []
    if carry._is_forwarder(fn):                       # the course's stand-in, not an answer
        return warnings
    code = getattr(fn, "__code__", None)
    cell = "".join(linecache.getlines(code.co_filename)) if code is not None else ""
    if cell and not carry._marker_in(cell, exercise_id):
        warnings.append(f"this function was not defined by the cell that starts with "
                        f"'# EXERCISE: {exercise_id}': the course's code and your teacher's "
                        "grader use that cell's version only")
    prelude = BASE_PRELUDE + SETUP_IMPORTS.get(lesson_id, "")
    available = _defined_at_top_level(ast.parse(prelude).body) | set(requires)
    for name in _names_from_other_cells(fn, available):
        warnings.append(_other_cell_warning(name))
    return warnings


def _other_cell_warning(name):
    return (f"`{name}` comes from another cell: the command-line grader runs this exercise's "
            f"cell on its own (after the imports of the notebook's first cell), where `{name}` "
            "is not defined; move it into this cell")


def names_from_other_cells(exercise, fn):
    """The global names ``fn`` uses that its own cell does not define, and that the command-line
    grader, which runs the cell alone, would not have either.

    A notebook function sees every cell's definitions; the grader sees the exercise cell, the
    lesson's prelude and the reference versions of the exercises it builds on. Jupyter keeps
    each cell's source under the function's file name, which is how the cell is found; for a
    function whose source cannot be found the answer is ``[]``.
    """
    return _names_from_other_cells(fn, set(grader.cell_namespace(exercise)))


def _names_from_other_cells(fn, available):
    """``names_from_other_cells`` with the names the grader provides given as ``available``."""
    if not inspect.isfunction(fn):
        return []
    cell = "".join(linecache.getlines(fn.__code__.co_filename))
    try:
        cell_tree = ast.parse(cell)
        inspect.getsource(fn)                   # raises for a function whose source is lost
    except (OSError, TypeError, SyntaxError):
        return []
    available = _defined_at_top_level(cell_tree.body) | set(dir(builtins)) | set(available)
    return sorted(_global_loads(fn.__code__) & set(fn.__globals__) - available)


def _global_loads(code):
    """The global names a function's bytecode reads, its nested functions' included.

    Not the names of its locals, nor of attributes (``x.T``): a local ``T`` or a ``.T`` is no
    reason to warn about a global ``T`` another cell defined.
    """
    names = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_loads(const)
    return names


def _defined_at_top_level(statements):
    """The names a cell binds outside its functions: defs, classes, imports, assignments."""
    names = set()
    for stmt in statements:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
        else:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):   # inside an if, say
                    names.add(node.name)
    return names
