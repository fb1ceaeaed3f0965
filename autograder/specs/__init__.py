"""The exercise specs, one module per lesson, and lookups across them."""

from __future__ import annotations

import importlib

_MODULES = ["lesson00", "lesson01", "lesson02"]
_LESSONS = None


def lessons():
    """Every Lesson, in course order."""
    global _LESSONS
    if _LESSONS is None:
        _LESSONS = [importlib.import_module(f"{__name__}.{m}").LESSON for m in _MODULES]
    return _LESSONS


def exercises():
    return [ex for lesson in lessons() for ex in lesson.exercises]


def get_lesson(key):
    """A lesson by number ("01", "1") or slug ("01_losses"); None when unknown."""
    key = str(key).strip()
    for lesson in lessons():
        if key in (lesson.id, lesson.slug) or (key.isdigit() and int(key) == int(lesson.id)):
            return lesson
    return None


def get_exercise(exercise_id):
    for ex in exercises():
        if ex.id == exercise_id:
            return ex
    raise KeyError(exercise_id)


def find_by_symbol(symbol):
    """The exercises whose learner-facing name is ``symbol``."""
    return [ex for ex in exercises() if ex.symbol == symbol]
