"""Exercises whose docstring says "no Python loops" are graded on it, from the source."""

import textwrap

import numpy as np

from autograder import grader, specs
from autograder.check import check
from autograder.spec import NO_LOOPS_CASE, python_loops


def test_loops_are_found_inside_functions_only():
    code = textwrap.dedent("""
        import numpy as np

        def helper(v):
            return sum(x * x for x in v)           # a generator expression: line 5

        def pairwise_sq_distances(a, b):
            total = 0
            while total < 1:                       # line 9
                total += 1
            return [[helper(r - s) for s in b] for r in a]

        for trial in range(3):                     # the cell's own quick test: not counted
            print(trial)
        """)
    found = python_loops(code)
    assert [line for line, _ in found] == [5, 9, 11]        # one entry per line and kind
    assert {what for _, what in found} == {"a generator expression", "a `while` loop",
                                           "a list comprehension"}
    assert python_loops("def f(a, b):\n    return a[:, None] - b[None]\n") == []
    assert python_loops("def broken(:\n") == []            # a syntax error is reported elsewhere


def test_a_loop_costs_one_case_and_says_where(tmp_path):
    exercise = specs.get_exercise("00.pairwise_sq_distances")
    n_cases = len(exercise.make_cases())
    looped = ("def pairwise_sq_distances(a, b):\n"
              "    return np.array([[((r - s) ** 2).sum() for s in b] for r in a])\n")
    result = grader.grade(exercise, source=looped)
    assert result.status == "failed"
    assert result.score == round(exercise.points * n_cases / (n_cases + 1), 2)
    assert f'case "{NO_LOOPS_CASE}":' in result.message
    assert "line 2 has a list comprehension" in result.message
    assert "hint: " + exercise.no_loops in result.message


def test_check_reads_the_live_functions_source():
    def one_hot(labels, num_classes):
        out = np.zeros((labels.shape[0], num_classes))
        for i, label in enumerate(labels):
            out[i, label] = 1.0
        return out

    result = check(one_hot)
    assert result.status == "failed" and NO_LOOPS_CASE in result.result.message

    def one_hot(labels, num_classes):                # noqa: F811  the right answer
        out = np.zeros((labels.shape[0], num_classes))
        out[np.arange(labels.shape[0]), labels] = 1.0
        return out

    assert check(one_hot).status == "passed"
