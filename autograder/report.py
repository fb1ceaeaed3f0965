"""Write grading results: a terminal table, JSON, Gradescope's results.json, HTML for check()."""

from __future__ import annotations

import html
import json
import math
import textwrap

from .device import NO_GPU

STATUS_LABEL = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "timeout": "timeout",
    "out_of_memory": "out of memory",
    "not_attempted": "not attempted",
    "skipped": "skipped",
}


def _pts(x):
    return f"{x:g}" if float(x).is_integer() else f"{x:.2f}".rstrip("0")


def _percent(score, max_score):
    return 100.0 * score / max_score if max_score else 0.0


def _shown_percent(score, max_score):
    """A whole percentage, never rounded up to 100 % while a point is missing."""
    percent = _percent(score, max_score)
    return f"{math.floor(percent)}" if percent < 100 else f"{percent:.0f}"


def totals(graded):
    """(exercises passed, exercises, score, max score) over ``[(lesson, results), ...]``.

    Skipped exercises (they need a GPU this machine does not have) count in neither.
    """
    results = [r for _, rs in graded for r in rs if r.status != "skipped"]
    return (sum(r.passed for r in results), len(results),
            round(sum(r.score for r in results), 2), sum(r.max_score for r in results))


def skipped_count(graded):
    return sum(r.status == "skipped" for _, rs in graded for r in rs)


def _points_cell(r):
    if r.status == "skipped":
        return f"- / {_pts(r.max_score)}"
    return f"{_pts(r.score)} / {_pts(r.max_score)}"


def table(graded, sources=None, notes=()):
    """The report a learner reads in a terminal: a table per lesson, then their progress."""
    sources = sources or {}
    width = max([len(r.id) for _, rs in graded for r in rs] + [8]) + 2
    lines = [f"Note: {note}" for note in notes] + ([""] if notes else [])
    for lesson, results in graded:
        where = f"  ({sources[lesson.id]})" if lesson.id in sources else ""
        lines.append(f"Lesson {lesson.id} · {lesson.title}{where}")
        lines.append(f"  {'exercise':<{width}}{'points':>9}   status")
        for r in results:
            label = STATUS_LABEL[r.status] + (f" ({NO_GPU})" if r.status == "skipped" else "")
            lines.append(f"  {r.id:<{width}}{_points_cell(r):>9}   {label}")
            if r.status not in ("passed", "not_attempted", "skipped") and r.message:
                for para in r.message.splitlines():
                    lines.extend(textwrap.wrap(para, 96, initial_indent=" " * 6,
                                               subsequent_indent=" " * 8) or [""])
            for warning in r.warnings:                  # e.g. an input changed in place
                if warning in r.message:                # already given as a failure's note
                    continue
                lines.extend(textwrap.wrap(f"warning: {warning}", 96, initial_indent=" " * 6,
                                           subsequent_indent=" " * 8))
        n_pass, n, score, max_score = totals([(lesson, results)])
        n_skipped = skipped_count([(lesson, results)])
        lines.append(f"  {n_pass} of {n} exercises passed, {_pts(score)} / {_pts(max_score)} points"
                     + (f" ({n_skipped} skipped: they need a CUDA GPU)" if n_skipped else ""))
        lines.append("")
    lines.append("Progress")
    lines.append(f"  {'lesson':<42}{'exercises':>10}{'points':>16}")
    for lesson, results in graded:
        n_pass, n, score, max_score = totals([(lesson, results)])
        label = f"{lesson.id} {lesson.title}"[:41]
        lines.append(f"  {label:<42}{f'{n_pass} / {n}':>10}{f'{_pts(score)} / {_pts(max_score)}':>16}")
    n_pass, n, score, max_score = totals(graded)
    lines.append(f"  {'overall':<42}{f'{n_pass} / {n}':>10}"
                 f"{f'{_pts(score)} / {_pts(max_score)}':>16}  ({_shown_percent(score, max_score)} %)")
    n_skipped = skipped_count(graded)
    if n_skipped:
        lines.append(f"  {n_skipped} exercise(s) skipped: they need a CUDA GPU and count in "
                     "neither total")
    return "\n".join(lines) + "\n"


def as_json(graded):
    _, _, score, max_score = totals(graded)
    return json.dumps({"score": score, "max_score": max_score, "skipped": skipped_count(graded),
                       "exercises": [r.to_json() for _, rs in graded for r in rs]}, indent=2) + "\n"


GRADESCOPE_VISIBILITY = ("visible", "after_published", "after_due_date", "hidden")


def as_gradescope(graded, notes=(), visibility="visible"):
    """Gradescope's results.json: a test per exercise, shown to the student as
    ``visibility`` says (one of GRADESCOPE_VISIBILITY)."""
    n_pass, n, score, max_score = totals(graded)
    tests = []
    for lesson, results in graded:
        for r in results:
            output = STATUS_LABEL[r.status] + (f"\n{r.message}" if r.message else "")
            output += "".join(f"\nwarning: {w}" for w in r.warnings if w not in r.message)
            if r.status == "skipped":       # worth nothing either way on Gradescope
                tests.append({"name": f"{r.id} (skipped: {NO_GPU})", "score": 0,
                              "max_score": 0, "output": output, "visibility": visibility})
                continue
            tests.append({"name": r.id, "score": r.score, "max_score": r.max_score,
                          "status": "passed" if r.passed else "failed", "output": output,
                          "visibility": visibility})
    summary = "\n".join([f"{n_pass} of {n} exercises passed, {_pts(score)} / {_pts(max_score)} "
                         "points", *notes])
    return json.dumps({"score": score, "output": summary, "visibility": visibility,
                       "stdout_visibility": "visible", "tests": tests}, indent=2) + "\n"


def gradescope_failure(message):
    """Gradescope's results.json for a submission that could not be graded at all (no
    notebook, not a notebook): without a results file, Gradescope shows the student only
    that the autograder failed. Always visible, so that the student can hand in again."""
    return json.dumps({"score": 0, "output": f"Nothing could be graded: {message}",
                       "visibility": "visible", "stdout_visibility": "visible", "tests": []},
                      indent=2) + "\n"


# --------------------------------------------------------------------------- check() in a notebook

def _mark(result):
    """✓ passed, – skipped (counts neither way), ✗ anything else."""
    return {"passed": "✓", "skipped": "–"}.get(result.status, "✗")


def check_text(result, title):
    mark = _mark(result)
    lines = [f"{mark} {result.id} ({title}): {STATUS_LABEL[result.status]}, "
             f"{_points_cell(result)} points"]
    for case in result.cases:
        lines.append(f"  {'✓' if case.passed else '✗'} {case.name}")
    if result.message:
        lines.append("")
        lines.extend("  " + line for line in result.message.splitlines())
    for warning in result.warnings:
        if warning not in result.message:             # already given as a failure's note
            lines.append(f"  warning: {warning}")
    if result.output.strip():
        lines.append("  your code printed:")
        lines.extend("    " + line for line in result.output.strip().splitlines()[:20])
    return "\n".join(lines)


_COLOR = {"passed": "#1a7f37", "not_attempted": "#6e7781", "skipped": "#6e7781"}


def check_html(result, title):
    color = _COLOR.get(result.status, "#cf222e")
    mark = _mark(result)
    esc = html.escape
    parts = [f'<div style="border-left:4px solid {color};padding:4px 10px;font-family:sans-serif">',
             f'<b style="color:{color}">{mark} {esc(result.id)}</b> {esc(title)} · '
             f'{esc(STATUS_LABEL[result.status])} · {esc(_points_cell(result))} points']
    if result.cases:
        parts.append('<div style="margin:4px 0">' + " ".join(
            f'<span title="{esc(c.name)}" style="color:{"#1a7f37" if c.passed else "#cf222e"}">'
            f'{"✓" if c.passed else "✗"}&nbsp;{esc(c.name)}</span>' for c in result.cases)
            + "</div>")
    if result.message:
        parts.append(f'<pre style="white-space:pre-wrap;margin:4px 0">{esc(result.message)}</pre>')
    for warning in result.warnings:
        if warning not in result.message:             # already given as a failure's note
            parts.append(f'<div style="color:#9a6700">warning: {esc(warning)}</div>')
    if result.output.strip():
        shown = "\n".join(result.output.strip().splitlines()[:20])
        parts.append(f'<details><summary>your code printed</summary><pre>{esc(shown)}</pre></details>')
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- a feedback page

_PAGE_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
               "color:#1f2328}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}"
               "table{border-collapse:collapse}td,th{padding:2px 12px;text-align:left}"
               "th{border-bottom:1px solid #d0d7de}.notes{color:#9a6700}"
               "section>div{margin:8px 0}")


def feedback_page(graded, title, notes=()):
    """A self-contained HTML page (no scripts, no links out) with every exercise's feedback.

    ``graded`` is ``[(lesson, [ExerciseResult, ...]), ...]``; ``notes`` are lines
    about the submission itself (an unreadable notebook, a repeated exercise).
    """
    esc = html.escape
    n_pass, n, score, max_score = totals(graded)
    n_skipped = skipped_count(graded)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{_PAGE_STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             f"<p><b>{_pts(score)} / {_pts(max_score)} points</b> "
             f"({_shown_percent(score, max_score)} %), {n_pass} of {n} exercises passed"
             + (f"; {n_skipped} skipped: they need a CUDA GPU and count in neither total"
                if n_skipped else "") + ".</p>"]
    for note in notes:
        parts.append(f'<p class="notes">{esc(note)}</p>')
    parts.append("<table><tr><th>lesson</th><th>exercises passed</th><th>points</th></tr>")
    for lesson, results in graded:
        l_pass, l_n, l_score, l_max = totals([(lesson, results)])
        parts.append(f"<tr><td>{esc(lesson.id)} {esc(lesson.title)}</td><td>{l_pass} / {l_n}</td>"
                     f"<td>{_pts(l_score)} / {_pts(l_max)}</td></tr>")
    parts.append("</table>")
    for lesson, results in graded:
        parts.append(f"<section><h2>Lesson {esc(lesson.id)} · {esc(lesson.title)}</h2>")
        titles = {ex.id: ex.title for ex in lesson.exercises}
        parts.extend(check_html(r, titles.get(r.id, "")) for r in results)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
