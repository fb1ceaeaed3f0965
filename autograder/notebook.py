"""Reading lesson notebooks: finding exercise cells, and filling them from solutions/.

An exercise cell is a code cell whose first non-blank line is
``# EXERCISE: <id>`` (for example ``# EXERCISE: 01.softmax``). The cell's
metadata may also say ``{"autograder": {"exercise": "<id>"}}``, but the marker
line alone is enough, so a cell that lost its metadata is still found.
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import re

MARKER = re.compile(r"^\s*#\s*EXERCISE:\s*(\S+)\s*$")


class NotebookError(Exception):
    """A notebook that cannot be graded; the message is one line for the learner."""


def read(path):
    """Load a notebook as a dict, or raise NotebookError saying why it cannot be."""
    try:
        with open(path, encoding="utf-8") as fh:
            nb = json.load(fh)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NotebookError(f"{path}: is a folder, not a notebook") from None
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{path}: not a text file ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{path}: not valid notebook JSON (line {exc.lineno}, column "
                            f"{exc.colno}: {exc.msg}); open it in Jupyter, or restore it "
                            "from git") from None
    except OSError as exc:
        raise NotebookError(f"{path}: cannot be read ({exc.strerror})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path}: valid JSON but not a Jupyter notebook (no list of cells)")
    return nb


def cell_source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def exercise_id_of(cell):
    """The exercise id a cell holds, or None."""
    if not isinstance(cell, dict) or cell.get("cell_type") != "code":
        return None
    for line in cell_source(cell).splitlines():
        if line.strip():
            match = MARKER.match(line)
            if match:
                return match.group(1)
            break
    meta = cell.get("metadata", {})
    if isinstance(meta, dict) and isinstance(meta.get("autograder"), dict):
        ex_id = meta["autograder"].get("exercise")
        if isinstance(ex_id, str):
            return ex_id
    return None


def strip_magics(source):
    """Comment out IPython magics (``%timeit``, ``!pip``) so the cell is plain Python.

    Line numbers stay the same, so error messages still point at the right line.
    """
    lines = []
    for line in source.splitlines():
        if line.lstrip().startswith(("%", "!")):
            line = line[: len(line) - len(line.lstrip())] + "# " + line.lstrip()
        lines.append(line)
    return "\n".join(lines) + "\n"


def exercise_cells(nb):
    """``{exercise_id: source}`` for every exercise cell (the last one wins if repeated)."""
    found = {}
    for cell in nb["cells"]:
        ex_id = exercise_id_of(cell)
        if ex_id is not None:
            found[ex_id] = strip_magics(cell_source(cell))
    return found


def solution_source(exercise):
    """The cell a solved notebook holds for ``exercise``: the marker and the reference's code."""
    return f"# EXERCISE: {exercise.id}\n" + inspect.getsource(exercise.reference).rstrip("\n")


def clear_outputs(nb):
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def solve(nb, exercises_by_id):
    """A copy of ``nb`` with every exercise cell replaced by its reference solution.

    Raises NotebookError when the notebook has no exercise cells.
    """
    nb = copy.deepcopy(nb)
    count = 0
    for cell in nb["cells"]:
        ex_id = exercise_id_of(cell)
        if ex_id is None:
            continue
        if ex_id not in exercises_by_id:
            raise NotebookError(f"unknown exercise {ex_id!r} in the notebook")
        cell["source"] = solution_source(exercises_by_id[ex_id])
        count += 1
    if count == 0:
        raise NotebookError("the notebook has no exercise cells (a code cell starting with "
                            "'# EXERCISE: <id>')")
    return clear_outputs(nb)


def write(nb, path):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(nb, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def stub_source(exercise):
    """The learner's starting cell for ``exercise``: the reference's signatures and
    docstrings with every body replaced by ``raise NotImplementedError``."""
    source = inspect.getsource(exercise.reference)
    lines = source.splitlines()
    tree = ast.parse(source)
    out = [f"# EXERCISE: {exercise.id}"]

    def emit_function(node, indent):
        body_start = node.body[0]
        has_doc = isinstance(body_start, ast.Expr) and isinstance(getattr(body_start, "value", None),
                                                                   ast.Constant) \
            and isinstance(body_start.value.value, str)
        header_end = body_start.lineno - 1
        out.extend(lines[node.lineno - 1: header_end])
        if has_doc:
            out.extend(lines[body_start.lineno - 1: body_start.end_lineno])
        pad = " " * (indent + 4)
        out.append(f"{pad}# YOUR CODE HERE")
        out.append(f"{pad}raise NotImplementedError")

    node = tree.body[0]
    if isinstance(node, ast.ClassDef):
        first = node.body[0]
        has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        out.extend(lines[node.lineno - 1: first.lineno - 1])
        if has_doc:
            out.extend(lines[first.lineno - 1: first.end_lineno])
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                out.append("")
                emit_function(item, item.col_offset)
    else:
        emit_function(node, 0)
    return "\n".join(out)


# Packages a notebook's first cell imports for the notebook's sake, not for the exercises.
_NOT_FOR_EXERCISES = ("autograder", "matplotlib", "IPython")


def setup_imports(nb):
    """The import statements of the notebook's first code cell, as source, one per line.

    The grader runs each exercise cell after them (``Lesson.prelude``), so that a name the
    notebook imports at the top is there too when a cell is graded on its own. Imports of
    the grader itself, of plotting and of IPython's display are left out.
    """
    cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    if not cells:
        return ""
    source = cell_source(cells[0])
    lines = []
    for stmt in ast.parse(source).body:
        if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        modules = [stmt.module or ""] if isinstance(stmt, ast.ImportFrom) else \
            [alias.name for alias in stmt.names]
        if any(m.split(".")[0] in _NOT_FOR_EXERCISES for m in modules):
            continue
        lines.append(ast.unparse(stmt))
    return "\n".join(lines) + "\n" if lines else ""

