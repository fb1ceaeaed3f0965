"""The exercise specs, one module per lesson, and lookups across them."""

from __future__ import annotations

import importlib
import pkgutil
import re

_LESSONS = None


def _module_names():
    """lessonNN modules in this package, in course order (lesson numbers sort as text)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"lesson\d\d", m.name))


def lessons():
    """Every Lesson, in course order."""
    global _LESSONS
    if _LESSONS is None:
        _LESSONS = [importlib.import_module(f"{__name__}.{m}").LESSON for m in _module_names()]
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


def lessons_named(keys):
    """The lessons named by ``keys`` (see ``get_lesson``), in the order given, each once.

    Raises ValueError, with a one-line message that lists the lessons, for an unknown key.
    """
    chosen = []
    for key in keys:
        lesson = get_lesson(key)
        if lesson is None:
            for lesson_id, held in withheld().items():
                if key in (lesson_id, held["slug"]) or (key.isdigit() and int(key) == int(lesson_id)):
                    gradable = ", ".join(l.id for l in lessons()) or "none"
                    raise ValueError(f"{graded_by_the_teacher([held['slug']])} (the lessons it "
                                     f"can grade: {gradable})")
            known = ", ".join(l.slug for l in lessons())
            raise ValueError(f"unknown lesson {key!r}; the lessons are: {known}")
        if lesson not in chosen:
            chosen.append(lesson)
    return chosen


def withheld():
    """In a student bundle (``python -m autograder release``), the lessons whose specs it leaves
    out: ``{lesson id: {"slug", "title", "exercises": {id: symbol}}}``; ``{}`` in the full course."""
    from ..carry import release_info
    return (release_info() or {}).get("withheld", {})


def graded_by_the_teacher(lesson_ids):
    """"lessons 04, 05 are graded by your teacher: ..." for a student bundle's withheld lessons."""
    many = len(lesson_ids) > 1
    return (f"lesson{'s' if many else ''} {', '.join(lesson_ids)} {'are' if many else 'is'} "
            "graded by your teacher: this copy of the course holds no answers for "
            f"{'them' if many else 'it'}")


def withheld_note(exercise_ids):
    """"; lesson(s) NN ... graded by your teacher ..." for the ids a student bundle withholds."""
    held = sorted({i.split(".")[0] for i in exercise_ids} & set(withheld()))
    return "; " + graded_by_the_teacher(held) if held else ""


def get_exercise(exercise_id):
    for ex in exercises():
        if ex.id == exercise_id:
            return ex
    raise KeyError(exercise_id)


def find_by_symbol(symbol):
    """The exercises whose learner-facing name is ``symbol``."""
    return [ex for ex in exercises() if ex.symbol == symbol]
