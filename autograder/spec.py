"""What an exercise is, to the grader.

An ``Exercise`` names the symbol the learner writes (a function or a class),
the reference it is compared with, a seeded generator of test ``Case``s, the
*driver* that turns the learner's object and a case into outputs (by default:
call it with the case's arguments), how the expected outputs are computed (by
default: the driver applied to the reference; for gradients: central
differences of the reference forward), the tolerance, the exercises whose
reference versions it may use (``requires``), and a catalogue of known
``Mistake``s. Each mistake is a wrong solution written out in full: when a
learner's output matches a mistake's output the learner gets that mistake's
hint, and the test suite checks that every mistake loses points.
"""

from __future__ import annotations

import ast
import copy
import textwrap
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .codec import normalize
from .compare import FLOAT64, Tolerance
from .setup_imports import SETUP_IMPORTS


@dataclass
class Case:
    """One test input. ``args`` are passed positionally in order, ``kwargs`` by
    name; ``data`` holds further inputs that only the driver uses."""

    name: str
    args: dict = field(default_factory=dict)
    kwargs: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    def to_dict(self):
        return {"name": self.name, "args": self.args, "kwargs": self.kwargs, "data": self.data}

    @classmethod
    def from_dict(cls, d):
        return cls(d["name"], dict(d["args"]), dict(d["kwargs"]), dict(d["data"]))

    def copy(self):
        return copy.deepcopy(self)

    def describe(self):
        """A one-line summary of the inputs, for feedback."""
        parts = [f"{k}: {_describe_value(v)}" for k, v in self.args.items()]
        parts += [f"{k}={_describe_value(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)


def _describe_value(v):
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return repr(v.item())
        text = f"{v.dtype} {v.shape}"
        if v.size and v.dtype.kind in "iuf":
            low, high = f"{v.min():.3g}", f"{v.max():.3g}"
            if low == high and v.min() != v.max():          # 1e+06 to 1e+06: show more digits
                low, high = f"{v.min():.7g}", f"{v.max():.7g}"
            text += f" in [{low}, {high}]"
        return text
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, np.ndarray) for x in v):
        return f"{len(v)} arrays of shapes " + ", ".join(str(x.shape) for x in v)
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class Mistake:
    """A plausible wrong answer: ``source`` defines the exercise's symbol wrongly."""

    name: str
    hint: str
    source: str


def call(obj, case):
    """The default driver: call the learner's function with the case's arguments."""
    return obj(*case.args.values(), **case.kwargs)


def named_results(result, names):
    """A function's tuple result as a dict by name, so that the feedback names the part that is off.

    Anything but a tuple or list of ``len(names)`` values comes back under one key
    that says what was expected, e.g. ``"the result (indices, scores)"``.
    """
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        return {f"the result ({', '.join(names)})": result}
    return dict(zip(names, result))


def returns(*names):
    """The default driver for a function that returns a tuple: its parts named (``named_results``)."""
    def run(obj, case):
        return named_results(call(obj, case), names)
    return run


def backward_driver(reference_forward):
    """Driver for ``backward(dout, cache)`` exercises.

    The cache comes from the *reference* forward on the case's arguments (its
    layout is part of the documented contract), and the upstream gradient from
    ``case.data["dout"]``; the learner's backward returns the gradients. The
    grader reports either changed in place (``watch``).
    """
    def run(backward, case):
        _, cache = reference_forward(*case.args.values(), **case.kwargs)
        return backward(case.data["dout"], watch("cache", cache))
    return run


def dtypes_of(value):
    """The dtype of every array in a (nested) result, as text: what a float32 case checks."""
    if isinstance(value, dict):
        return {str(k): dtypes_of(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [dtypes_of(v) for v in value]
    return str(np.asarray(value).dtype)


# A forward pass's cache is graded by what it is for: the reference backward pass reads the
# learner's cache, with a fixed upstream gradient, and must get the gradients it gets from the
# reference cache. A cache laid out otherwise than the docstring says then fails in the forward
# exercise, rather than later in the learner's own backward pass.
THROUGH_CACHE = "the reference backward pass on your cache"   # "dx from the reference ..."


def through_cache(backward, out, cache):
    """``backward``'s gradients from ``cache`` for a fixed upstream gradient, as a flat dict.

    A ``(dinput, grads)`` result comes back as ``{"the input's gradient": dinput, **grads}``.
    A cache the backward pass cannot read gives a sentence that says why (compared after the
    forward's own outputs, so that a wrong output is reported, with its hint, first).
    """
    dout = np.random.default_rng(0).normal(size=np.shape(out))
    try:
        grads = backward(dout, cache)
    except Exception as exc:
        return (f"not laid out as the docstring says: {backward.__name__}, which reads it, "
                f"raised {type(exc).__name__}: {exc}")
    if isinstance(grads, tuple):
        dinput, grads = grads
        grads = {"the input's gradient": dinput, **grads}
    return grads


@dataclass
class Exercise:
    id: str                               # "01.softmax": lesson number, dot, name
    symbol: str                           # the name the learner defines: "softmax"
    points: float
    reference: Any                        # the function or class in solutions/
    cases: Callable[[np.random.Generator], list]
    title: str = ""
    run: Callable[[Any, Case], Any] = call
    expected: Callable[[Case], Any] | None = None
    tolerance: Tolerance = FLOAT64
    requires: tuple = ()                  # ids whose references are available by name
    mistakes: list = field(default_factory=list)
    timeout: float = 10.0
    devices: tuple = ("cpu",)             # ("cpu", "cuda"): also on a GPU; ("cuda",): GPU only
    stand_in_gpu: bool = False            # CuPy code: on the CPU, every case again on
                                          # autograder.fake_gpu's strict device arrays
    warn_on_mutation: bool = True
    no_loops: str = ""                    # where the docstring says "no Python loops": a hint
                                          # for the extra case that checks it (python_loops)
    source_rules: tuple = ()              # other SourceRules the docstring states about the code
    lesson: Any = None                    # set by the Lesson that holds it

    @property
    def seed(self):
        return zlib.crc32(self.id.encode())

    @property
    def inputs_kept(self):
        """Whether a case whose inputs the learner's code changes in place fails (else: a
        warning): in the forward and backward passes. A forward pass's cache keeps its inputs,
        and a residual connection sends the same upstream gradient down two paths, so a
        ``*_forward`` or ``*_backward`` function that writes into what it was given breaks the
        gradients of the layers around it."""
        return self.symbol.endswith(("_forward", "_backward"))

    @property
    def all_source_rules(self):
        """The rules read from the learner's code, each one case more: ``no_loops`` first."""
        loops = SourceRule(NO_LOOPS_CASE, _loops_found,
                           "this exercise asks for array operations only", self.no_loops)
        return ((loops,) if self.no_loops else ()) + tuple(self.source_rules)

    def make_cases(self):
        """The seeded cases: the same list every time."""
        return self.cases(np.random.default_rng(self.seed))

    def expected_for(self, case):
        with np.errstate(all="ignore"):
            if self.expected is not None:
                return normalize(self.expected(case.copy()))
            return normalize(self.run(self.reference, case.copy()))


BASE_PRELUDE = "import math\n\nimport numpy as np\n"   # what every exercise cell may assume


@dataclass
class Lesson:
    id: str                               # "01"
    slug: str                             # "01_losses": the notebook is lessons/<slug>.ipynb
    title: str
    exercises: list
    prelude: str = BASE_PRELUDE         # run before each exercise cell,
                                          # and then the imports of the notebook's first cell

    def __post_init__(self):
        self.prelude += SETUP_IMPORTS.get(self.id, "")
        for ex in self.exercises:
            ex.lesson = self
            if not ex.id.startswith(self.id + "."):
                raise ValueError(f"exercise {ex.id} does not belong to lesson {self.id}")

    @property
    def points(self):
        return sum(ex.points for ex in self.exercises)


# --------------------------------------------------------------------------- inputs left alone
# The grader warns when the learner's code changes a case's input in place, and drivers whose
# docstring promises an input is "not modified" grade it: both compare against these copies.


def arrays_in(value):
    """The arrays in ``value``, also inside dicts, lists and tuples, at any depth."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from arrays_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from arrays_in(v)


def has_arrays(value):
    """Whether ``value`` is an array, or a dict, list or tuple holding one at any depth."""
    return next(arrays_in(value), None) is not None


def array_not_list(result, what="the result"):
    """``result``, unless it is a list or tuple where the docstring promises a NumPy array.

    The comparison accepts a list of numbers where an array is expected; a driver whose
    result the notebook goes on to compute with (``0.5 * a_list`` fails) refuses one here.
    """
    if isinstance(result, (list, tuple)):
        raise TypeError(f"{what} is a {type(result).__name__}, not a NumPy array: build it with "
                        "array operations (np.zeros, broadcasting, indexing), as the docstring "
                        "asks; the notebook goes on to compute with it")
    return result


def copy_arrays(value):
    """Arrays copied, also inside dicts, lists and tuples; other values as they are."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: copy_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [copy_arrays(v) for v in value]
    return value


def unchanged(now, before):
    """Whether ``now`` still holds the arrays ``before = copy_arrays(now)`` copied."""
    if isinstance(before, np.ndarray):
        return isinstance(now, np.ndarray) and now.shape == before.shape and \
            bool(np.array_equal(now, before, equal_nan=True))
    if isinstance(before, dict):
        return isinstance(now, dict) and now.keys() == before.keys() and \
            all(unchanged(now[k], v) for k, v in before.items())
    if isinstance(before, list):
        return isinstance(now, (list, tuple)) and len(now) == len(before) and \
            all(unchanged(n, b) for n, b in zip(now, before))
    return True


def not_modified(*arg_names, result_name=None, run=call):
    """A driver for a function whose docstring says the inputs ``arg_names`` are "not modified".

    ``run``'s result (under ``result_name`` when given; else ``run`` returns a dict) comes
    back next to one "<name> left as it was" entry per input, so that a change in place fails
    the case (``check()`` only warns about inputs the docstring does not promise to leave
    alone).
    """
    def driver(obj, case):
        before = {name: copy_arrays(case.args[name]) for name in arg_names}
        result = run(obj, case)
        if result_name is not None:
            result = {result_name: result}
        for name in arg_names:
            was = "it was" if isinstance(before[name], np.ndarray) else "they were"
            result[f"{name} left as {was}"] = unchanged(case.args[name], before[name])
        return result
    return driver


# Inputs a driver builds for the learner's code (a cache from the reference forward pass, say)
# are not in the case, so the grader cannot see them changed; a driver hands them over through
# ``watch`` and the grader compares them after the run as it compares the case's own inputs.
WATCHED = []                              # (name, value, copy) for the case being run


def watch(name, value):
    """``value``, unchanged, with the grader told to report it if the learner changes it in place."""
    if has_arrays(value):
        WATCHED.append((name, value, copy_arrays(value)))
    return value


# --------------------------------------------------------------------------- loops
# An exercise that asks for array operations instead of Python loops (``no_loops``) gets one
# case more, passed when no function in the learner's code loops.
_LOOPS = {ast.For: "a `for` loop", ast.AsyncFor: "a `for` loop", ast.While: "a `while` loop",
          ast.ListComp: "a list comprehension", ast.SetComp: "a set comprehension",
          ast.DictComp: "a dict comprehension", ast.GeneratorExp: "a generator expression"}
NO_LOOPS_CASE = "no Python loops"


@dataclass
class SourceRule:
    """A rule a docstring states about the code itself (no loops, a product never formed),
    checked by reading the learner's source: one case more, which fails with
    "line N <what>; <asks>" and the hint."""
    case: str                             # the extra case's name
    find: Callable[[str], list]           # code -> [(line, what)], e.g. (3, "has a `for` loop")
    asks: str                             # what the docstring asks instead
    hint: str


def _loops_found(code):
    return [(line, f"has {what}") for line, what in python_loops(code)]


def functions_in(code):
    """The functions and lambdas ``code`` defines, as AST nodes (code at the top level of a
    cell, a quick test say, is not in them); none when ``code`` does not parse."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]


def python_loops(code):
    """``[(line, what), ...]``: the loops and comprehensions inside the functions ``code``
    defines (code at the top level of a cell, a quick test say, does not count)."""
    found = set()
    for function in functions_in(code):
        found.update((inner.lineno, _LOOPS[type(inner)]) for inner in ast.walk(function)
                     if type(inner) in _LOOPS)
    return sorted(found)
