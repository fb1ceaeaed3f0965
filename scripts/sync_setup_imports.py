"""Write autograder/setup_imports.py from the lessons' first cells.

The grader runs each exercise cell after the imports of its notebook's first cell, so that a
cell graded on its own sees what it sees in the notebook. The grader does not read the course's
notebooks (a Gradescope bundle has none), so the imports are copied into a module; a test fails
when a first cell changes and this script has not been run since.

Usage:
    python scripts/sync_setup_imports.py
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import notebook  # noqa: E402

HEADER = '''"""The imports of each lesson's first notebook cell, for the grader (``Lesson.prelude``).

Written by ``scripts/sync_setup_imports.py`` from ``lessons/*.ipynb``; do not edit by hand.
"""

SETUP_IMPORTS = {
'''


def render():
    entries = []
    for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        imports = notebook.setup_imports(notebook.read(path))
        entries.append(f"    {path.name[:2]!r}: (\n" + "".join(
            f"        {line + chr(10)!r}\n" for line in imports.splitlines()) + "    ),\n")
    return HEADER + "".join(entries) + "}\n"


def main():
    target = ROOT / "autograder" / "setup_imports.py"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
