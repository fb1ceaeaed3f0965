"""The catalogue of plausible wrong answers loses points; correct alternatives keep them.

Each spec carries at least three ``Mistake``s (a wrong solution, written in full,
with the hint a learner gets when their output matches it). Every one must lose
points, and when it runs to the end its hint must be what the learner sees.
"""

import pytest

from autograder import grader, notebook, specs

from alternatives import ALTERNATIVES

EXERCISES = specs.exercises()
MISTAKES = [(ex, m) for ex in EXERCISES for m in ex.mistakes]
def skip_without_its_device(exercise):
    """A GPU-only exercise is graded only where there is a GPU (elsewhere: "skipped")."""
    if grader.device_for(exercise) is None:
        pytest.skip(f"{exercise.id} needs a CUDA GPU")


ALTERNATIVE_CASES = [(specs.get_exercise(ex_id), src) for ex_id, sources in ALTERNATIVES.items()
                     for src in sources]


@pytest.mark.parametrize("exercise", EXERCISES, ids=[ex.id for ex in EXERCISES])
def test_every_exercise_has_three_mistakes_and_an_alternative(exercise):
    assert len(exercise.mistakes) >= 3, exercise.id
    assert len(ALTERNATIVES.get(exercise.id, [])) >= 1, exercise.id


@pytest.mark.parametrize("exercise,mistake", MISTAKES,
                         ids=[f"{ex.id}:{m.name}" for ex, m in MISTAKES])
def test_mistake_loses_points_with_its_hint(exercise, mistake):
    skip_without_its_device(exercise)
    result = grader.grade(exercise, source=mistake.source)
    assert result.score < exercise.points, (mistake.name, result.status, result.message)
    assert result.status in ("failed", "error"), (result.status, result.message)
    if result.status == "failed":           # it ran, so its known-mistake hint must be shown
        assert "hint: " + mistake.hint in result.message, result.message


@pytest.mark.parametrize("exercise,source", ALTERNATIVE_CASES,
                         ids=[f"{ex.id}:{i}" for i, (ex, _) in enumerate(ALTERNATIVE_CASES)])
def test_correct_alternative_keeps_full_marks(exercise, source):
    skip_without_its_device(exercise)
    result = grader.grade(exercise, source=source)
    assert result.status == "passed", result.message
    assert result.score == exercise.points


@pytest.mark.parametrize("exercise", EXERCISES, ids=[ex.id for ex in EXERCISES])
def test_reference_source_passes_and_grading_is_deterministic(exercise):
    skip_without_its_device(exercise)
    source = notebook.solution_source(exercise)
    first = grader.grade(exercise, source=source)
    assert first.status == "passed", first.message
    assert not first.warnings, first.warnings       # the reference changes none of its inputs
    wrong = exercise.mistakes[0].source
    a, b = grader.grade(exercise, source=wrong), grader.grade(exercise, source=wrong)
    assert (a.score, a.status, a.message) == (b.score, b.status, b.message)


def test_cases_are_seeded():
    for exercise in EXERCISES:
        one, two = exercise.make_cases(), exercise.make_cases()
        assert [c.describe() for c in one] == [c.describe() for c in two]
