"""``python -m autograder gradescope LESSON ... -o autograder.zip``: a Gradescope autograder.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` there once to
build its image, and then, for each submission, ``run_autograder``: the student's files
are in ``/autograder/submission`` and the results must be written to
``/autograder/results/results.json``. The zip holds the grader, the reference solutions
and the course's small data files; the lessons named are the assignment.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from .sandbox import PROJECT_ROOT

_PROJECT_ROOT = Path(PROJECT_ROOT)
# What the grader needs, relative to the project root (folders are taken whole, but
# for caches); README.md because pyproject.toml names it.
CONTENTS = ("pyproject.toml", "README.md", "autograder", "solutions", "datasets")
_LEFT_OUT = ("__pycache__", "cache", ".ipynb_checkpoints")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, in /autograder/source, when it builds the image.
set -euo pipefail
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet --upgrade pip
/autograder/venv/bin/pip install --quiet /autograder/source    # numpy, scipy, matplotlib
{torch}"""

TORCH_LINE = ("# lesson 12 grades PyTorch code: the CPU build is enough, and far smaller\n"
              "/autograder/venv/bin/pip install --quiet \"{requirement}\" "
              "--index-url https://download.pytorch.org/whl/cpu\n")

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission. GRADESCOPE_ROOT and AUTOGRADER_PYTHON exist
# only to try it elsewhere; on Gradescope they are unset.
root="${{GRADESCOPE_ROOT:-/autograder}}"
python="${{AUTOGRADER_PYTHON:-$root/venv/bin/python}}"
mkdir -p "$root/results"
cd "$root/source"
# Every notebook the student handed in is graded, as one submission, on lesson(s) {lessons}.
# results.json is written even when nothing can be graded (no notebook, a broken file).
"$python" -m autograder grade --notebook "$root/submission" {lesson_args}{timeout} \\
    --format gradescope --visibility {visibility} --output "$root/results/results.json"
"""


def torch_requirement():
    """The torch requirement of the dev extra, as pyproject.toml writes it."""
    text = (_PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"(torch\s*[<>=!~][^"]*)"', text)
    return match.group(1) if match else "torch"


def _files():
    for name in CONTENTS:
        path = _PROJECT_ROOT / name
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*")):
            parts = file.relative_to(_PROJECT_ROOT).parts
            if file.is_file() and not any(p in _LEFT_OUT or p.endswith(".pyc") for p in parts):
                yield file


def _add(archive, name, data, executable=False):
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    archive.writestr(info, data)


def build(lessons, out_path, timeout=None, visibility="visible"):
    """Write the autograder zip for ``lessons``; return the number of files in it."""
    lesson_ids = [lesson.id for lesson in lessons]
    torch = "12" in lesson_ids
    setup = SETUP_SH.format(torch=TORCH_LINE.format(requirement=torch_requirement()) if torch
                            else "")
    run = RUN_AUTOGRADER.format(lessons=", ".join(lesson_ids), lesson_args=" ".join(lesson_ids),
                                timeout=f" --timeout {timeout:g}" if timeout else "",
                                visibility=visibility)
    count = 0
    with zipfile.ZipFile(out_path, "w") as archive:
        _add(archive, "setup.sh", setup, executable=True)
        _add(archive, "run_autograder", run, executable=True)
        for file in _files():
            _add(archive, file.relative_to(_PROJECT_ROOT).as_posix(), file.read_bytes())
            count += 1
    return count + 2
