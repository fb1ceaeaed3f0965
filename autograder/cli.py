"""``python -m autograder``: list, grade, grade-class, gradescope, release and solve.

Exit codes: 0 when grading ran (whatever the score); 1 when ``--fail-under``
is not met, or when ``grade-class`` could not grade some student; 2 for a usage
error or a notebook that cannot be read, with a one-line reason on stderr;
130 when ``grade-class`` is interrupted (what it graded is kept).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

from . import classroom, device, gradescope, grader, notebook, release, report, sandbox, specs


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):               # one line, exit 2
        raise UsageError(message)


def _parser():
    p = _Parser(prog="python -m autograder",
                description="Grade the course's exercises, list them, or make solved notebooks.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("list", help="list the lessons, their exercise ids and points")

    g = sub.add_parser("grade", help="grade notebooks (default: lessons/NN_*.ipynb)")
    g.add_argument("lessons", nargs="*", metavar="LESSON",
                   help="lessons to grade, as 01 or 01_losses (default: all)")
    g.add_argument("--notebook", metavar="PATH",
                   help="grade this notebook, or every notebook under this folder (LESSON "
                        "arguments then fix the lessons graded: a missing exercise scores 0)")
    g.add_argument("--format", choices=("table", "json", "gradescope", "html"), default="table",
                   help="html: a self-contained feedback page")
    g.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    _add_visibility(g)
    g.add_argument("--fail-under", type=float, metavar="PERCENT",
                   help="exit 1 when the total score is below PERCENT")
    _add_timeout(g)
    _add_device(g)
    g.add_argument("--lessons-dir", metavar="DIR",
                   help="where the lesson notebooks are (default: ./lessons, else the course's)")

    c = sub.add_parser("grade-class", help="grade a folder of submissions into a CSV gradebook "
                                           "and a feedback page per student")
    c.add_argument("submissions", metavar="SUBMISSIONS",
                   help="a folder with NAME.ipynb or a folder NAME/ per student")
    c.add_argument("lessons", nargs="*", metavar="LESSON",
                   help="the lessons of the assignment (default: those the submissions hold)")
    c.add_argument("--out", default="grades", metavar="DIR",
                   help="where gradebook.csv and students/NAME.{json,html} go (default: grades)")
    c.add_argument("--jobs", type=int, metavar="N",
                   help="students graded at once (default: one per CPU core)")
    _add_timeout(c)
    _add_device(c)
    c.add_argument("--regrade", action="store_true",
                   help="grade every student again, even those whose saved report is still valid")

    z = sub.add_parser("gradescope", help="write a Gradescope autograder (a zip) for the lessons "
                                          "of an assignment")
    z.add_argument("lessons", nargs="+", metavar="LESSON", help="the lessons of the assignment")
    z.add_argument("-o", "--output", default="autograder.zip", metavar="ZIP",
                   help="where to write it (default: autograder.zip)")
    _add_timeout(z)
    _add_visibility(z)

    r = sub.add_parser("release", help="write a copy of the course for students, without the "
                                       "solutions of the lessons after --solutions-through")
    r.add_argument("output", metavar="OUT", help="a new (or empty) folder")
    r.add_argument("--solutions-through", metavar="LESSON",
                   help="include the reference solutions (and check()) of the lessons up to this "
                        "one, as 03 or 03_layers (default: none)")

    s = sub.add_parser("solve", help="write NOTEBOOK with every exercise filled from solutions/")
    s.add_argument("notebook", metavar="NOTEBOOK")
    s.add_argument("-o", "--output", required=True, metavar="OUT")
    return p


def _add_timeout(p):
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="time limit per exercise (default: each exercise's own, usually 10 s)")


def _add_device(p):
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: grade the exercises that can run on a GPU there (lessons 11-12); "
                        "GPU-only exercises run on a GPU whenever there is one")


def _add_visibility(p):
    p.add_argument("--visibility", choices=report.GRADESCOPE_VISIBILITY, default="visible",
                   help="Gradescope: when students see their results (default: visible, at once)")


def _require_cuda(args):
    if args.device == "cuda" and not device.cuda_available():
        raise UsageError("--device cuda: no CUDA GPU is visible here (neither CuPy nor PyTorch "
                         "sees one); grade without --device to use the CPU")


def _lessons_dir(option):
    if option:
        return option
    if os.path.isdir("lessons"):
        return "lessons"
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lessons")


def cmd_list(args, out):
    for lesson in specs.lessons():
        out.write(f"{lesson.slug}  {lesson.title}  ({report._pts(lesson.points)} points)\n")
        for ex in lesson.exercises:
            out.write(f"  {ex.id:<32}{report._pts(ex.points):>4}  {ex.title}\n")
    for lesson_id, held in specs.withheld().items():
        out.write(f"{held['slug']}  {held['title']}  ({specs.graded_by_the_teacher([lesson_id])})\n")
    return 0


def _limits(args):
    if args.timeout is None:
        return None
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    return sandbox.Limits(timeout=args.timeout)


def _graded_from_lessons_dir(args):
    folder = _lessons_dir(args.lessons_dir)
    for name in args.lessons:
        if name.endswith(".ipynb") or os.path.isdir(name):
            raise UsageError(f"{name!r} is a notebook or a folder, not a lesson: grade it with "
                             f"--notebook {name} (LESSON arguments name lessons, as 01 or 01_losses)")
    try:
        chosen = specs.lessons_named(args.lessons) if args.lessons else specs.lessons()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    graded, sources = [], {}
    for lesson in chosen:
        path = os.path.join(folder, lesson.slug + ".ipynb")
        if not os.path.exists(path):
            matches = sorted(glob.glob(os.path.join(folder, f"{lesson.id}_*.ipynb")))
            path = matches[0] if matches else path
        if not os.path.exists(path):
            graded.append((lesson, [grader.grade_missing(ex, f"notebook {path} not found")
                                    for ex in lesson.exercises]))
            continue
        sources[lesson.id] = path
        graded.extend(grader.grade_notebook(path, only_lessons=[lesson], limits=_limits(args),
                                            on=args.device))
    return graded, sources


def _graded_from_notebook(args):
    """``(graded, notes)`` for ``--notebook``: one notebook, or every notebook under a folder."""
    try:
        lessons = specs.lessons_named(args.lessons) if args.lessons else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not os.path.isdir(args.notebook):
        return grader.grade_notebook(args.notebook, only_lessons=lessons, limits=_limits(args),
                                     on=args.device), []
    paths = classroom.notebooks_under(args.notebook)
    if not paths:
        raise notebook.NotebookError(f"{args.notebook}: no notebook (.ipynb file) in it")
    cells, notes = classroom.collect_cells(paths)
    if not cells:
        raise notebook.NotebookError(f"{args.notebook}: no notebook in it has an exercise cell "
                                     f"(a code cell whose first line is '# EXERCISE: <id>')"
                                     + "".join(f"; {note}" for note in notes))
    lessons = lessons or grader.lessons_of(cells)
    if not lessons:
        raise notebook.NotebookError(f"{args.notebook}: its exercise cells belong to no lesson "
                                     "this grader knows" + specs.withheld_note(cells))
    where = ", ".join(os.path.relpath(p, args.notebook) for p in paths)
    return grader.grade_cells(cells, lessons, where, limits=_limits(args), on=args.device), notes


def _write(path, text):
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def cmd_grade(args, out):
    _require_cuda(args)
    notes = []
    if args.notebook:
        try:
            graded, notes = _graded_from_notebook(args)
        except notebook.NotebookError as exc:
            if args.format == "gradescope" and args.output:    # Gradescope needs a results file
                _write(args.output, report.gradescope_failure(str(exc)))
            raise
        sources = {lesson.id: args.notebook for lesson, _ in graded}
    else:
        graded, sources = _graded_from_lessons_dir(args)
    held = sorted(specs.withheld())
    if held:
        notes = notes + [specs.graded_by_the_teacher(held)]
    if args.format == "json":
        text = report.as_json(graded)
    elif args.format == "gradescope":
        text = report.as_gradescope(graded, notes, visibility=args.visibility)
    elif args.format == "html":
        title = args.notebook or f"lessons in {_lessons_dir(args.lessons_dir)}"
        text = report.feedback_page(graded, f"Autograder feedback: {title}", notes)
    else:
        text = report.table(graded, sources, notes)
    if args.output:
        _write(args.output, text)
    else:
        out.write(text)
    if args.fail_under is not None:
        _, _, score, max_score = report.totals(graded)
        if report._percent(score, max_score) < args.fail_under:
            return 1
    return 0


def cmd_grade_class(args, out):
    _require_cuda(args)
    _limits(args)                                      # rejects a timeout that is not positive
    try:
        return classroom.run(args, out)
    except classroom.ClassError as exc:
        raise UsageError(str(exc)) from None


def cmd_gradescope(args, out):
    try:
        lessons = specs.lessons_named(args.lessons)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _limits(args)                                      # rejects a timeout that is not positive
    try:
        count = gradescope.build(lessons, args.output, timeout=args.timeout,
                                 visibility=args.visibility)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    exercises = [ex for lesson in lessons for ex in lesson.exercises]
    gpu_only = sum(ex.points for ex in exercises if ex.devices == ("cuda",))
    points = sum(ex.points for ex in exercises) - gpu_only
    out.write(f"wrote {args.output} ({count} files): lesson(s) {', '.join(l.id for l in lessons)}, "
              f"{points:g} points"
              + (f" (and {gpu_only:g} for GPU-only exercises, skipped: Gradescope has no GPU)"
                 if gpu_only else "")
              + ". On Gradescope: a Programming Assignment, autograder \"zip file upload\", "
              "Ubuntu base image; students submit their .ipynb files.\n")
    return 0


def cmd_solve(args, out):
    nb = notebook.read(args.notebook)
    solved = notebook.solve(nb, {ex.id: ex for ex in specs.exercises()})
    try:
        notebook.write(solved, args.output)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    out.write(f"wrote {args.output}\n")
    return 0


def cmd_release(args, out):
    try:
        summary = release.build(args.output, args.solutions_through)
    except release.ReleaseError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    held = summary["withheld"]
    out.write(f"wrote {args.output} ({summary['files']} files): solutions "
              + (f"through lesson {summary['through']}" if summary["through"] else "of no lesson")
              + (f"; lessons {held[0]}-{held[-1]} withheld ({summary['exercises']} exercises: "
                 "stubs that call the learner's answers; no specs, so check() says you grade "
                 "them)" if held else "; nothing withheld")
              + ". Students open lessons/ in Jupyter; grade what they hand in from this full "
              "course with grade-class.\n")
    return 0


def main(argv=None, out=None):
    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            raise UsageError("a command is needed: list, grade, grade-class, gradescope, release "
                             "or solve (see --help)")
        command = {"list": cmd_list, "grade": cmd_grade, "grade-class": cmd_grade_class,
                   "gradescope": cmd_gradescope, "solve": cmd_solve,
                   "release": cmd_release}[args.command]
        return command(args, out)
    except (UsageError, notebook.NotebookError) as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2
