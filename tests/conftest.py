"""Shared fixtures: the project root, a CLI runner, and solved copies of the lessons."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import notebook, specs  # noqa: E402


def run_cli(*args, cwd=ROOT, env=None, timeout=300):
    """Run ``python -m autograder ARGS``; return the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def grade_json(*args, **kw):
    proc = run_cli("grade", "--format", "json", *args, **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def lesson_path(lesson):
    return ROOT / "lessons" / f"{lesson.slug}.ipynb"


@pytest.fixture(scope="session")
def solved_dir(tmp_path_factory):
    """Every lesson solved with ``python -m autograder solve``, in a temporary folder."""
    folder = tmp_path_factory.mktemp("solved")
    for lesson in specs.lessons():
        out = folder / f"{lesson.slug}.ipynb"
        proc = run_cli("solve", lesson_path(lesson), "-o", out)
        assert proc.returncode == 0, proc.stderr
    return folder


def with_cells(nb_path, replacements, out_path):
    """Copy a notebook, replacing the exercise cells named in ``replacements`` ({id: source})."""
    nb = notebook.read(nb_path)
    for cell in nb["cells"]:
        ex_id = notebook.exercise_id_of(cell)
        if ex_id in replacements:
            cell["source"] = replacements[ex_id]
    notebook.write(nb, out_path)
    return out_path


@pytest.fixture
def minilm_not_installed(monkeypatch):
    """A machine without the all-MiniLM-L6-v2 package: its module cannot be found."""
    from solutions import pretrained
    real = pretrained.importlib.util.find_spec
    monkeypatch.setattr(pretrained.importlib.util, "find_spec",
                        lambda name, *a: None if name == pretrained.MINILM_PACKAGE else real(name, *a))
