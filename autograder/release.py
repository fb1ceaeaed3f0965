"""``python -m autograder release OUT``: a copy of the course to hand to students.

The copy holds the lesson notebooks (their exercises are stubs, as stored), the
course's code and data, and the autograder. For every lesson after
``solutions_through`` (all lessons when it is None) it withholds what would give
the answers away:

* each exercise's reference in ``solutions/`` becomes its stub, decorated with
  ``carry.yours``: the course's code that calls it (lesson 09's Trainer calls
  ``training_step``) calls the learner's own answer instead (see ``carry.py``);
  private helpers that only those references used go too;
* the lesson's spec (``autograder/specs/lessonNN.py``, whose catalogue of
  mistakes is mostly the reference with a hole) is left out, so ``check()``
  says that the lesson is graded by the teacher instead of grading it;
* the tests (which hold correct alternatives) and the developers' scripts, and
  with lesson 00 the grader's ``gradcheck.py`` (lesson 00's gradient check).

Only the files git tracks are copied, and the notebooks without their outputs.

Lessons up to ``solutions_through`` keep their references and specs: learners
can read them and ``check()`` their work there as in the full course. The
teacher grades every lesson from the full course with ``grade-class``.
"""

from __future__ import annotations

import ast
import pprint
import re
import shutil
import subprocess
from pathlib import Path

from . import carry, notebook, specs

ROOT = Path(__file__).resolve().parent.parent

# Developers' scripts: they need the tests or every lesson's spec.
_DEV_SCRIPTS = ("bench_grading.py", "gpu_check.py", "nvrtc_check.py", "sync_setup_imports.py")
_SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints", "cache"}


class ReleaseError(Exception):
    """Why a bundle cannot be written; one line."""


def withheld_lessons(solutions_through):
    """The lessons whose references a bundle leaves out: those after ``solutions_through``."""
    if solutions_through is None:
        return list(specs.lessons())
    last = specs.get_lesson(solutions_through)
    if last is None:
        known = ", ".join(lesson.id for lesson in specs.lessons())
        raise ReleaseError(f"--solutions-through {solutions_through!r}: no such lesson (the "
                           f"lessons are {known})")
    return [lesson for lesson in specs.lessons() if int(lesson.id) > int(last.id)]


def build(out, solutions_through=None):
    """Write the bundle into the new folder ``out``; returns a short summary (dict)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"{out} already exists and is not an empty folder: choose a new one "
                           "(a bundle is never written over anything)")
    withheld = withheld_lessons(solutions_through)
    for lesson in withheld:
        _check_stubs(lesson)
    through = None if solutions_through is None else specs.get_lesson(solutions_through).id
    by_module = {}
    for lesson in withheld:
        for ex in lesson.exercises:
            by_module.setdefault(ex.reference.__module__, []).append(ex)

    files = _course_files(withheld)
    out.mkdir(parents=True, exist_ok=True)
    for relative in files:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.suffix == ".ipynb":      # without outputs: they could show an answer
            notebook.write(notebook.clear_outputs(notebook.read(ROOT / relative)), target)
        else:
            shutil.copy2(ROOT / relative, target)
    texts = {f: (ROOT / f).read_text(encoding="utf-8", errors="replace")
             for f in files if f.suffix in (".py", ".ipynb")}
    for module, exercises in by_module.items():
        relative = Path(*module.split(".")).with_suffix(".py")
        others = "\n".join(text for f, text in texts.items() if f != relative)
        (out / relative).write_text(redact(texts[relative], exercises, others), encoding="utf-8")
    info = {"solutions_through": through,
            "withheld": {lesson.id: {
                "slug": lesson.slug, "title": lesson.title,
                "exercises": {ex.id: ex.symbol for ex in lesson.exercises},
                "requires": {ex.id: [specs.get_exercise(r).symbol for r in ex.requires]
                             for ex in lesson.exercises}}
                for lesson in withheld}}
    (out / "autograder" / "release_info.py").write_text(
        '"""What ``python -m autograder release`` wrote this copy of the course with."""\n\n'
        f"INFO = {pprint.pformat(info, width=100, sort_dicts=False)}\n", encoding="utf-8")
    (out / "README.md").write_text(_readme(through, withheld), encoding="utf-8")
    return {"files": len(files) + 2, "withheld": [lesson.id for lesson in withheld],
            "through": through, "exercises": sum(len(v) for v in by_module.values())}


def _course_files(withheld):
    """The repository files a bundle copies, relative to the course's root: the files git
    tracks when the course is a git checkout (so nothing of the teacher's own is copied),
    and only the lessons' own notebooks."""
    left_out = {f"lesson{lesson.id}.py" for lesson in withheld}
    if any(lesson.id == "00" for lesson in withheld):
        left_out.add("gradcheck.py")         # lesson 00's numerical_gradient and relative_error
    files = [Path("pyproject.toml"), Path(".gitignore")]
    files += [Path("lessons", f"{lesson.slug}.ipynb") for lesson in specs.lessons()]
    tracked = _tracked()
    for folder in ("solutions", "autograder", "datasets", "scripts"):
        for path in sorted((ROOT / folder).rglob("*")):
            relative = path.relative_to(ROOT)
            if not path.is_file() or _SKIPPED_DIRS & set(relative.parts[:-1]) or \
                    path.suffix in (".pyc", ".pyo") or (tracked and relative not in tracked):
                continue
            if folder == "autograder" and path.name in left_out and \
                    relative.parent.name in ("specs", "autograder"):
                continue
            if folder == "autograder" and path.name == "release_info.py":
                continue
            if folder == "scripts" and path.name in _DEV_SCRIPTS:
                continue
            files.append(relative)
    return [f for f in files if (ROOT / f).exists()]


def _tracked():
    """The files git tracks, or None when the course is not a git checkout (or git is missing)."""
    if not (ROOT / ".git").exists():
        return None
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                 check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {Path(name) for name in listing.decode("utf-8", "replace").split("\0") if name}


def _check_stubs(lesson):
    """Refuse to ship a withheld lesson's notebook whose exercise cells hold answers."""
    path = ROOT / "lessons" / f"{lesson.slug}.ipynb"
    cells = notebook.exercise_cells(notebook.read(path))
    for ex in lesson.exercises:
        if ex.id in cells and not carry.is_stub(cells[ex.id], ex.symbol):
            raise ReleaseError(f"lessons/{lesson.slug}.ipynb: the cell of {ex.id} is not its stub "
                               "(was the notebook solved or worked in here?); restore it, for "
                               f"example with git checkout lessons/{lesson.slug}.ipynb, and release "
                               "again")


def redact(source, exercises, elsewhere=""):
    """``source`` (a solutions module) with the exercises' definitions replaced by their stubs
    decorated with ``@yours(id)``, and the private top-level helpers that nothing else uses
    any more (neither the module nor the text ``elsewhere``) removed."""
    tree = ast.parse(source)
    lines = source.splitlines()
    by_name = {ex.reference.__name__: ex for ex in exercises}
    replacements = []                                  # (first line, last line, new lines)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in by_name:
            ex = by_name.pop(node.name)
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            stub = notebook.stub_source(ex).splitlines()[1:]       # without the marker line
            replacements.append((first, node.end_lineno, [f'@yours("{ex.id}")'] + stub))
    if by_name:
        raise ReleaseError(f"not found at the top level of their module: {sorted(by_name)}")
    for first, last, new in sorted(replacements, reverse=True):
        lines[first - 1:last] = new
    at = _import_line(ast.parse("\n".join(lines)))
    lines[at:at] = ["", "from autograder.carry import yours   # a withheld exercise calls your answer"]
    return _drop_unused_helpers("\n".join(lines) + "\n", elsewhere)


def _import_line(tree):
    """Where an import can go: after the module's docstring and ``from __future__`` imports."""
    index = 0
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and \
            isinstance(node.value.value, str)
        if is_doc or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            index = node.end_lineno
        else:
            break
    return index


def _drop_unused_helpers(source, elsewhere):
    while True:
        tree = ast.parse(source)
        lines = source.splitlines()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_"):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                rest = "\n".join(lines[:first - 1] + lines[node.end_lineno:])
                word = re.compile(rf"\b{re.escape(node.name)}\b")
                if not word.search(rest) and not word.search(elsewhere):
                    del lines[first - 1:node.end_lineno]
                    source = "\n".join(lines) + "\n"
                    break
        else:
            return re.sub(r"\n{4,}", "\n\n\n", source)


def _install_block():
    """The course README's install commands (its first code block), so both say the same."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```bash\n.*?```", text, re.S)
    return match.group(0) if match else "```bash\npip install -e \".[dev]\"\n```"


def _readme(through, withheld):
    lessons = [lesson for lesson in specs.lessons()]
    rows = "\n".join(
        f"| {lesson.slug} | {lesson.title} | "
        + ("your teacher grades it" if lesson in withheld else "`check()` here; solutions in "
           "`solutions/`") + " |" for lesson in lessons)
    included = f"includes the reference solutions through lesson {through}" if through else \
        "includes no reference solutions"
    example = (f"; `python -m autograder grade {through}` grades a whole notebook from a terminal"
               if through else "")
    return f"""# Mini-BERT from scratch: the course, for students

This copy of the course {included}. Work through the
notebooks in `lessons/` in order; each exercise is a function (or class) to write in the
cell that starts with `# EXERCISE: <id>`.

## Install

{_install_block()}

then `jupyter lab lessons/`.

## Checking your work

| Lesson | Title | Feedback |
|---|---|---|
{rows}

- Where the table says `check()`, the check cell under each exercise grades your function
  at once, with a hint for the usual mistakes{example}.
- Where it says *your teacher grades it*, this copy holds no answers to check against:
  the check cells say so, and your teacher grades the notebooks you hand in. Test your
  functions with the notebook's own cells (gradient checks, plots, small examples).

## Your answers carry forward

The course's code calls the exercises it builds on. For the lessons whose solutions are
not included, it calls **yours**: the function defined by the exercise's cell in the running
notebook, or else by that cell in your saved notebook for its lesson. So lesson 09's
`Trainer` runs your `training_step`, and lesson 07 runs your lesson 06 encoder block. If an
answer is missing or still a stub, the error names the exercise and the notebook to finish
(and save) first. Keep your work in the notebooks as they are named
(`lessons/06_transformer.ipynb`, not a copy such as `06_transformer-Copy1.ipynb`), in the
cell that starts with `# EXERCISE: <id>`: that cell is what the course reads, and what your
teacher grades.

## Handing in

Hand in the notebooks (`lessons/NN_*.ipynb`) as your teacher asks; keep the first line of
every exercise cell (`# EXERCISE: <id>`), which is how the grader finds your answers.
"""
