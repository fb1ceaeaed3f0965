"""The reference scores full marks through solve + grade; the fresh stubs score 0."""

import pytest

from autograder import grader, specs

from conftest import grade_json, lesson_path

LESSONS = specs.lessons()


def gpu_only_here(lesson):
    """The ids of the lesson's exercises that need a GPU this machine does not have."""
    return {ex.id for ex in lesson.exercises if grader.device_for(ex) is None}


def points_here(lessons):
    return sum(ex.points for l in lessons for ex in l.exercises if ex.id not in gpu_only_here(l))


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_solved_notebook_scores_full_marks(lesson, solved_dir):
    report = grade_json("--notebook", solved_dir / f"{lesson.slug}.ipynb")
    statuses = {e["id"]: (e["status"], e["message"]) for e in report["exercises"]}
    assert {e["id"] for e in report["exercises"]} == {ex.id for ex in lesson.exercises}
    for ex_id, (status, message) in statuses.items():
        expected = "skipped" if ex_id in gpu_only_here(lesson) else "passed"
        assert status == expected, f"{ex_id}: {status}: {message}"
    assert report["score"] == report["max_score"] == points_here([lesson])


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_fresh_stub_scores_zero_as_not_attempted(lesson):
    report = grade_json("--notebook", lesson_path(lesson))
    assert report["score"] == 0
    assert report["max_score"] == points_here([lesson])
    for entry in report["exercises"]:
        expected = "skipped" if entry["id"] in gpu_only_here(lesson) else "not_attempted"
        assert entry["status"] == expected, entry
        assert entry["score"] == 0


def test_default_grade_on_a_fresh_checkout_is_all_not_attempted():
    report = grade_json()
    assert len(report["exercises"]) == len(specs.exercises())
    gpu_only = set().union(*(gpu_only_here(l) for l in LESSONS))
    assert all(e["status"] == ("skipped" if e["id"] in gpu_only else "not_attempted")
               for e in report["exercises"])
    assert report["score"] == 0 and report["max_score"] == points_here(LESSONS)
