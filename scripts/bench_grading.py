"""How fast is grading? Prints figures side by side; it is a script, not a test.

1. The median time of one ``check(fn)`` call inside a real Jupyter kernel (what a
   learner waits for after running a check cell), over several exercises.
2. The time ``python -m autograder grade`` takes on the solved lessons, against
   the time ``jupyter nbconvert --execute`` takes to run the same notebooks.

Usage: python scripts/bench_grading.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import notebook, specs  # noqa: E402

CHECKED = ["01.softmax", "01.cross_entropy_grad", "02.adam", "02.logreg_loss_and_grad",
           "00.numerical_gradient"]


def check_latency_in_kernel(repeats):
    import nbformat
    from nbclient import NotebookClient

    define = "import numpy as np, math\nfrom autograder import check\n" + "\n\n".join(
        notebook.solution_source(specs.get_exercise(i)) for i in
        ["01.softmax", "01.log_softmax", "01.cross_entropy", "01.cross_entropy_grad", "02.adam",
         "00.numerical_gradient", "02.logreg_loss_and_grad"])
    timing = (
        "import statistics, time\n"
        f"results = {{}}\n"
        f"for ex_id in {CHECKED!r}:\n"
        "    symbol = ex_id.split('.')[1]\n"
        "    fn = {'sgd': 'SGD', 'adam': 'Adam', 'adamw': 'AdamW'}.get(symbol, symbol)\n"
        "    times = []\n"
        f"    for _ in range({repeats}):\n"
        "        t0 = time.perf_counter()\n"
        "        r = check(ex_id, globals()[fn])\n"
        "        times.append(time.perf_counter() - t0)\n"
        "        assert r.passed, r\n"
        "    results[ex_id] = statistics.median(times)\n"
        "print(repr(results))\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(define),
                                         nbformat.v4.new_code_cell(timing)])
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    return eval(nb.cells[1].outputs[0]["text"])      # our own printed dict


def timed(cmd, env=None):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    print(f"check() latency in a Jupyter kernel (median of {args.repeats} calls)")
    latencies = check_latency_in_kernel(args.repeats)
    for ex_id, seconds in latencies.items():
        print(f"  {ex_id:<28} {seconds * 1000:7.1f} ms")
    print(f"  {'median over exercises':<28} {statistics.median(latencies.values()) * 1000:7.1f} ms")

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        solved = []
        for lesson in specs.lessons():
            out = Path(tmp) / f"{lesson.slug}.ipynb"
            subprocess.run([sys.executable, "-m", "autograder", "solve",
                            str(ROOT / "lessons" / f"{lesson.slug}.ipynb"), "-o", str(out)],
                           check=True, capture_output=True, env=env)
            solved.append(out)
        grade = [timed([sys.executable, "-m", "autograder", "grade", "--notebook", str(p)], env)
                 for p in solved]
        execute = [timed([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook",
                          "--execute", "--output-dir", tmp, "--output", p.stem + ".run",
                          str(p)], env) for p in solved]
    print("\nlesson                      autograder grade   nbconvert --execute   ratio")
    for lesson, g, e in zip(specs.lessons(), grade, execute):
        print(f"  {lesson.slug:<26}{g:12.2f} s{e:18.2f} s{e / g:11.1f}x")
    print(f"  {'all three':<26}{sum(grade):12.2f} s{sum(execute):18.2f} s"
          f"{sum(execute) / sum(grade):11.1f}x")


if __name__ == "__main__":
    main()
