"""The reference scores full marks through solve + grade; the fresh stubs score 0."""

import pytest

from autograder import specs

from conftest import grade_json, lesson_path

LESSONS = specs.lessons()


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_solved_notebook_scores_full_marks(lesson, solved_dir):
    report = grade_json("--notebook", solved_dir / f"{lesson.slug}.ipynb")
    statuses = {e["id"]: (e["status"], e["message"]) for e in report["exercises"]}
    assert {e["id"] for e in report["exercises"]} == {ex.id for ex in lesson.exercises}
    for ex_id, (status, message) in statuses.items():
        assert status == "passed", f"{ex_id}: {status}: {message}"
    assert report["score"] == report["max_score"] == lesson.points


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_fresh_stub_scores_zero_as_not_attempted(lesson):
    report = grade_json("--notebook", lesson_path(lesson))
    assert report["score"] == 0
    assert report["max_score"] == lesson.points
    for entry in report["exercises"]:
        assert entry["status"] == "not_attempted", entry
        assert entry["score"] == 0


def test_default_grade_on_a_fresh_checkout_is_all_not_attempted():
    report = grade_json()
    assert len(report["exercises"]) == len(specs.exercises())
    assert {e["status"] for e in report["exercises"]} == {"not_attempted"}
    assert report["score"] == 0 and report["max_score"] == sum(l.points for l in LESSONS)
