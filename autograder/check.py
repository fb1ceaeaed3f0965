"""``check(fn)``: grade one exercise from inside a notebook, on the live function.

The function runs in a forked child process (on Linux; elsewhere in the
kernel itself, with a time limit), exactly as the command-line grader runs a
cell, and with the reference versions of the exercises it builds on. The
result shows as HTML in Jupyter and as text anywhere else.
"""

from __future__ import annotations

import sys

from . import grader, report, specs


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
    exercise, obj = _resolve(args)
    limits = None
    if timeout is not None:
        from .sandbox import Limits
        limits = Limits(timeout=timeout)
    return CheckResult(grader.grade(exercise, fn=obj, limits=limits, on=device), exercise)
