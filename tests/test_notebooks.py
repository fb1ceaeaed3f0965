"""The lesson notebooks: stored clean, stubs in sync with solutions/, runnable top to bottom."""

import glob
import inspect
import json
import re

import pytest

from autograder import grader, notebook, specs

from conftest import ROOT, lesson_path

LESSONS = specs.lessons()
NOTEBOOKS = sorted(glob.glob(str(ROOT / "lessons" / "*.ipynb")))


def test_every_lesson_has_its_notebook_and_nothing_else_is_there():
    assert sorted(NOTEBOOKS) == sorted(str(lesson_path(l)) for l in LESSONS)


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(open(path, encoding="utf-8").read())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"outputs kept in {path}"
            assert cell.get("execution_count") is None, f"execution count kept in {path}"


def _doc(obj):
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else None


def _public_members(obj):
    """(name, signature, docstring) of a function, or of a class and its methods."""
    if inspect.isclass(obj):
        members = [(n, m) for n, m in vars(obj).items()
                   if inspect.isfunction(m) and (not n.startswith("_") or n == "__init__")]
        return [("class", None, _doc(obj))] + [
            (n, str(inspect.signature(m)), _doc(m)) for n, m in members]
    return [(obj.__name__, str(inspect.signature(obj)), _doc(obj))]


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_stubs_match_the_reference_signature_and_docstring(lesson):
    cells = notebook.exercise_cells(notebook.read(lesson_path(lesson)))
    assert set(cells) == {ex.id for ex in lesson.exercises}
    for ex in lesson.exercises:
        namespace = grader.cell_namespace(ex)
        exec(cells[ex.id], namespace)
        stub = namespace[ex.symbol]
        assert _public_members(stub) == _public_members(ex.reference), ex.id
        assert "raise NotImplementedError" in cells[ex.id]


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_every_exercise_is_followed_by_a_check_cell(lesson):
    nb = notebook.read(lesson_path(lesson))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        ex_id = notebook.exercise_id_of(cell)
        if ex_id is None:
            continue
        symbol = specs.get_exercise(ex_id).symbol
        following = notebook.cell_source(code[i + 1]).strip()
        assert following in (f"check({symbol})", f"check({ex_id!r}, {symbol})"), (ex_id, following)


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_lesson_has_math_a_plot_and_a_summary(lesson):
    nb = notebook.read(lesson_path(lesson))
    markdown = "\n".join(notebook.cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    code = "\n".join(notebook.cell_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert "$$" in markdown
    assert "plt.show()" in code
    assert re.search(r"^## Summary", markdown, re.M)
    assert nb["cells"][0]["source"][0].startswith(f"# Lesson {lesson.id}")


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.slug for l in LESSONS])
def test_solved_notebook_runs_top_to_bottom_in_a_real_kernel(lesson, solved_dir, monkeypatch):
    # One BLAS thread: on 2 busy cores, OpenBLAS threads fighting over small matrices can make
    # a notebook 20 times slower. The kernel inherits this environment.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("COURSE_QUICK", "1")   # lessons that train (09, 10) shrink their runs
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(str(solved_dir / f"{lesson.slug}.ipynb"), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "lessons")}})
    client.execute()                      # raises CellExecutionError on any error
    shown = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            if text.startswith(("'✓", "✓", "'✗", "✗", "'–", "–")):
                shown.append(text)
            assert output.get("output_type") != "error"
    # every check() cell displayed a passing result; a GPU-only one without a GPU, "skipped"
    assert len(shown) == len(lesson.exercises)
    gpu_only = sum(grader.device_for(ex) is None for ex in lesson.exercises)
    passed = [t for t in shown if t.lstrip("'").startswith("✓")]
    skipped = [t for t in shown if ": skipped, - / " in t.splitlines()[0]]
    assert len(passed) == len(lesson.exercises) - gpu_only, shown
    assert len(skipped) == gpu_only, shown


def test_the_grader_runs_each_cell_after_its_notebooks_first_cell_imports():
    """autograder/setup_imports.py is the lessons' first cells' imports, kept in step."""
    from autograder.setup_imports import SETUP_IMPORTS
    for lesson in LESSONS:
        imports = notebook.setup_imports(notebook.read(lesson_path(lesson)))
        assert SETUP_IMPORTS.get(lesson.id, "") == imports, \
            f"{lesson.slug}: run python scripts/sync_setup_imports.py"
        assert lesson.prelude.endswith(imports)
    namespace = {}
    exec(specs.get_lesson("07").prelude, namespace)     # lesson 07's first cell imports these
    assert {"gelu_forward", "padding_mask", "encoder_block_forward"} <= set(namespace)
