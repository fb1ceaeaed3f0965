"""``python -m autograder release``: a student bundle that withholds answers and still runs."""

import ast
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from autograder import notebook, release, specs

from conftest import ROOT, lesson_path, run_cli


def _in_bundle(bundle, code, timeout=120):
    """Run ``code`` with the bundle's packages first on the path (as its own install would)."""
    env = dict(os.environ, PYTHONPATH=str(bundle), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=bundle, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _solve_into(bundle, lessons):
    for lesson in lessons:
        proc = run_cli("solve", lesson_path(lesson), "-o", bundle / "lessons" / f"{lesson.slug}.ipynb")
        assert proc.returncode == 0, proc.stderr


def _bodies(obj):
    """The code of a reference's function (or of each method), without the docstring."""
    source = textwrap.dedent(inspect.getsource(obj))
    lines, node = source.splitlines(), ast.parse(source).body[0]
    functions = [node] if isinstance(node, ast.FunctionDef) else \
        [f for f in node.body if isinstance(f, ast.FunctionDef)]
    out = []
    for f in functions:
        code = [s for s in f.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if code:
            out.append("\n".join(lines[code[0].lineno - 1:f.end_lineno]))
    return out


@pytest.fixture(scope="module")
def bundle_03(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "class"
    proc = run_cli("release", out, "--solutions-through", "03")
    assert proc.returncode == 0, proc.stderr
    assert "through lesson 03" in proc.stdout and "lessons 04-18 withheld" in proc.stdout
    return out


@pytest.fixture(scope="module")
def bundle_none(tmp_path_factory):
    """Nothing included; the notebooks of lessons 00-09 solved in the bundle, as a learner's."""
    out = tmp_path_factory.mktemp("release") / "class"
    release.build(out)
    _solve_into(out, [l for l in specs.lessons() if int(l.id) <= 9])
    return out


def test_the_bundle_leaves_out_the_withheld_specs_the_tests_and_the_dev_scripts(bundle_03):
    shipped = sorted(p.name for p in (bundle_03 / "autograder" / "specs").glob("lesson*.py"))
    assert shipped == ["lesson00.py", "lesson01.py", "lesson02.py", "lesson03.py"]
    assert not (bundle_03 / "tests").exists() and not (bundle_03 / ".ci").exists()
    assert not (bundle_03 / "scripts" / "sync_setup_imports.py").exists()
    assert sorted(p.name for p in (bundle_03 / "lessons").iterdir()) == \
        sorted(lesson_path(l).name for l in specs.lessons())
    assert (bundle_03 / "autograder" / "gradcheck.py").exists()     # lesson 00 is included
    proc = _in_bundle(bundle_03, "from autograder.carry import release_info; print(repr(release_info()))")
    info = eval(proc.stdout)
    assert info["solutions_through"] == "03"
    assert sorted(info["withheld"]) == [l.id for l in specs.lessons() if int(l.id) > 3]
    assert info["withheld"]["09"]["requires"]["09.training_step"] == ["scheduled_lr", "clip_grad_norm"]
    assert "through lesson 03" in (bundle_03 / "README.md").read_text()


def test_a_bundle_without_lesson_00_leaves_out_the_grader_s_gradient_check_too(bundle_none):
    # autograder/gradcheck.py holds working numerical_gradient and relative_error: lesson 00's
    assert not (bundle_none / "autograder" / "gradcheck.py").exists()
    assert not list((bundle_none / "autograder" / "specs").glob("lesson*.py"))


def test_no_withheld_reference_is_in_the_bundle_and_the_released_ones_are_untouched(bundle_03):
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in bundle_03.rglob("*")
                     if p.is_file() and p.suffix in (".py", ".ipynb", ".md", ".json"))
    original = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "solutions").glob("*.py"))
    withheld = [ex for l in release.withheld_lessons("03") for ex in l.exercises]
    assert len(withheld) > 100
    for ex in withheld:
        bodies = _bodies(ex.reference)
        assert bodies, ex.id
        for body in bodies:
            assert body in original                     # the search can find what it looks for
            assert body not in text, f"{ex.id}'s reference is in the bundle"
    for module in ("welcome", "losses", "optimizers", "layers"):
        assert (bundle_03 / "solutions" / f"{module}.py").read_text() == \
            (ROOT / "solutions" / f"{module}.py").read_text()


def test_a_withheld_exercise_keeps_its_signature_and_docstring(bundle_03):
    code = """
        import inspect, json, solutions.attention as a, solutions.optimizers as o
        print(json.dumps([str(inspect.signature(a.attention_forward)), a.attention_forward.__doc__,
                          str(inspect.signature(o.SGD.step))]))
    """
    proc = _in_bundle(bundle_03, code)
    assert proc.returncode == 0, proc.stderr
    from solutions import attention, optimizers
    assert json.loads(proc.stdout) == [str(inspect.signature(attention.attention_forward)),
                                       attention.attention_forward.__doc__,
                                       str(inspect.signature(optimizers.SGD.step))]


def test_in_the_bundle_a_missing_answer_says_which_exercise_to_write_and_check_says_who_grades(bundle_03):
    code = """
        import importlib, pkgutil, solutions
        for m in pkgutil.iter_modules(solutions.__path__):
            importlib.import_module("solutions." + m.name)
        from solutions.tokenization import clean_text
        try:
            clean_text("a b")
        except NotImplementedError as exc:
            print("RAISED", exc)
        from autograder import check
        print("CHECK", repr(check(clean_text)))
        from solutions.losses import softmax
        print("RELEASED", check(softmax).passed)
    """
    proc = _in_bundle(bundle_03, code)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "RAISED `clean_text` (exercise 04.clean_text) is still the starting stub in " \
           "lessons/04_tokenization.ipynb" in out
    assert "solutions are included through lesson 03" in out
    assert "CHECK Not checked here" in out and "your teacher grades 04.clean_text" in out
    assert "RELEASED True" in out


def test_in_the_bundle_the_command_line_grades_released_lessons_only(bundle_03):
    withheld = run_cli("grade", "09", cwd=bundle_03, env={"PYTHONPATH": str(bundle_03)})
    assert withheld.returncode == 2
    assert "lesson 09_pretraining is graded by your teacher" in withheld.stderr
    assert "the lessons it can grade: 00, 01, 02, 03" in withheld.stderr
    released = run_cli("grade", "00", cwd=bundle_03, env={"PYTHONPATH": str(bundle_03)})
    assert released.returncode == 0, released.stderr
    assert "00_welcome" in released.stdout
    assert "lessons 04, 05, 06, 07, 08, 09, 10, 11, 12, 13, 14, 15, 16, 17, 18 are graded by " \
           "your teacher" in released.stdout


def test_release_refuses_an_existing_folder_an_unknown_lesson_and_a_solved_notebook(tmp_path, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    proc = run_cli("release", tmp_path / "full")
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    proc = run_cli("release", tmp_path / "new", "--solutions-through", "42")
    assert proc.returncode == 2 and "no such lesson" in proc.stderr and not (tmp_path / "new").exists()

    lesson = specs.get_lesson("16")
    solved = tmp_path / "lessons"
    solved.mkdir()
    notebook.write(notebook.solve(notebook.read(lesson_path(lesson)),
                                  {ex.id: ex for ex in lesson.exercises}), solved / f"{lesson.slug}.ipynb")
    monkeypatch.setattr(release, "ROOT", tmp_path)
    with pytest.raises(release.ReleaseError, match="16.entropy is not its stub"):
        release._check_stubs(lesson)


def test_withheld_exercises_call_the_learners_answers_from_their_saved_notebooks(bundle_none):
    from solutions import bert, optimizers
    cfg = bert.BertConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2,
                          intermediate_size=32, max_position_embeddings=16)
    ids = np.random.default_rng(1).integers(5, 40, (2, 7))
    expected = bert.mlm_logits(bert.init_bert(cfg, np.random.default_rng(0)), cfg, ids)
    w, g = np.linspace(-1, 1, 5), np.linspace(2, 3, 5)
    optimizers.AdamW([w], lr=0.1).step([g])
    code = """
        import json, numpy as np
        from solutions import bert, optimizers, transformer
        cfg = bert.BertConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2,
                              intermediate_size=32, max_position_embeddings=16)
        ids = np.random.default_rng(1).integers(5, 40, (2, 7))
        logits = bert.mlm_logits(bert.init_bert(cfg, np.random.default_rng(0)), cfg, ids)
        w, g = np.linspace(-1, 1, 5), np.linspace(2, 3, 5)
        opt = optimizers.AdamW([w], lr=0.1)
        opt.step([g])
        block = transformer.EncoderBlock(8, 2, 16, np.random.default_rng(0))
        print(json.dumps({"logits": logits.tolist(), "w": w.tolist(),
                          "opt": type(opt).__module__, "block": [c.__module__ for c in type(block).__mro__],
                          "block_parameters": len(list(block.parameters())),
                          "isinstance": [isinstance(opt, optimizers.AdamW),
                                         isinstance(block, transformer.EncoderBlock)]}))
    """
    proc = _in_bundle(bundle_none, code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    np.testing.assert_allclose(got["logits"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["w"], w, rtol=0, atol=1e-15)
    assert got["opt"] == "lessons.02_optimizers"          # the learner's class, from lesson 02
    # the learner's block (lesson 06), derived from the bundle's Module, is the learner's
    # lesson 03 Module too
    assert "lessons.06_transformer" in got["block"] and "lessons.03_layers" in got["block"]
    assert got["block_parameters"] == 16
    assert got["isinstance"] == [True, True]


def test_classes_derived_from_withheld_ones_are_the_learners_too(bundle_none):
    code = """
        import numpy as np
        from solutions.layers import LayerNorm, Linear, Module, ReLU, Sequential
        from solutions.transformer import EncoderBlock
        rng = np.random.default_rng(0)
        model = Sequential(Linear(4, 3, rng), ReLU(), LayerNorm(3), Linear(3, 2, rng))
        print("PARAMS", [name for name, _ in model.named_parameters()])
        print("ISINSTANCE", isinstance(LayerNorm(3), Module), isinstance(Linear(2, 2, rng), Module))

        class Doubled(EncoderBlock):          # a learner's own class on a withheld one
            def forward(self, x, mask=None):
                return 2 * super().forward(x, mask)

        block = Doubled(8, 2, 16, rng)
        print("SUBCLASS", block.forward(np.ones((1, 3, 8))).shape, isinstance(block, EncoderBlock))
    """
    proc = _in_bundle(bundle_none, code)
    assert proc.returncode == 0, proc.stderr
    # the same names as the full course's: LayerNorm's parameters are seen by the learner's
    # Module (lesson 03), which decides what a parameter is
    from solutions.layers import LayerNorm, Linear, ReLU, Sequential
    rng = np.random.default_rng(0)
    expected = [n for n, _ in Sequential(Linear(4, 3, rng), ReLU(), LayerNorm(3),
                                         Linear(3, 2, rng)).named_parameters()]
    assert f"PARAMS {expected}" in proc.stdout
    assert "ISINSTANCE True True" in proc.stdout
    assert "SUBCLASS (1, 3, 8) True" in proc.stdout


def test_the_running_notebooks_own_cell_wins_and_a_broken_saved_cell_is_named(bundle_none):
    script = bundle_none / "learner.py"
    script.write_text(textwrap.dedent('''
        # EXERCISE: 01.softmax
        def softmax(x, axis=-1):
            return "mine"


        def log_softmax(x, axis=-1):          # no marker: not taken for the exercise
            return "not an answer"


        from autograder.carry import MissingAnswer, answer
        from solutions import losses
        print("MAIN", losses.softmax([1.0]))
        print("SAVED", type(answer("01.log_softmax", "log_softmax")).__name__,
              answer("01.log_softmax", "log_softmax") is not log_softmax)
        try:
            losses.mse(0, 0)                       # lesson 01's saved notebook: mse broken below
        except MissingAnswer as exc:
            print("BROKEN", exc)
    '''))
    nb_path = bundle_none / "lessons" / "01_losses.ipynb"
    saved = nb_path.read_bytes()
    nb = notebook.read(nb_path)
    for cell in nb["cells"]:
        if notebook.exercise_id_of(cell) == "01.mse":
            cell["source"] = "# EXERCISE: 01.mse\ndef mse(pred, target):\n    return pred / undefined_name\n" \
                             "undefined_name.shape\n"
    notebook.write(nb, nb_path)
    env = dict(os.environ, PYTHONPATH=str(bundle_none))
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=bundle_none, env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        nb_path.write_bytes(saved)
    assert proc.returncode == 0, proc.stderr
    assert "MAIN mine" in proc.stdout
    assert "SAVED function True" in proc.stdout
    assert "BROKEN `mse` (exercise 01.mse) could not be loaded from lessons/01_losses.ipynb: its " \
           "cell raised NameError: name 'undefined_name' is not defined" in proc.stdout


def _edited(bundle, lesson_id, edits):
    """Replace exercise cells of a bundle's saved notebook; returns a function that restores it."""
    path = next((bundle / "lessons").glob(f"{lesson_id}_*.ipynb"))
    saved = path.read_bytes()
    nb = notebook.read(path)
    for cell in nb["cells"]:
        ex_id = notebook.exercise_id_of(cell)
        if ex_id in edits:
            cell["source"] = edits[ex_id](notebook.cell_source(cell))
    notebook.write(nb, path)
    return lambda: path.write_bytes(saved)


def test_an_unfinished_exercise_called_by_another_is_named_and_self_imports_do_not_loop(bundle_none):
    stub = notebook.stub_source(specs.get_exercise("06.feed_forward_backward"))
    restore = _edited(bundle_none, "06", {
        "06.feed_forward_backward": lambda source: stub,
        # an exercise cell that imports another exercise from solutions/ (the withheld stand-in)
        "06.encoder_block_forward": lambda source: source.replace(
            "def encoder_block_forward", "from solutions.transformer import feed_forward_forward\n\n\n"
            "def encoder_block_forward", 1)})
    code = """
        import numpy as np
        from solutions import transformer
        p = transformer.init_encoder_block(8, 2, 16, np.random.default_rng(0))
        out, cache = transformer.encoder_block_forward(np.ones((1, 3, 8)), p, 2)
        print("FORWARD", out.shape)
        try:
            transformer.encoder_block_backward(np.ones_like(out), cache)
        except NotImplementedError as exc:
            print("BACKWARD", type(exc).__name__, exc)
    """
    try:
        proc = _in_bundle(bundle_none, code)
    finally:
        restore()
    assert proc.returncode == 0, proc.stderr
    assert "FORWARD (1, 3, 8)" in proc.stdout
    assert "BACKWARD MissingAnswer `feed_forward_backward` (exercise 06.feed_forward_backward) is " \
           "still the starting stub in lessons/06_transformer.ipynb" in proc.stdout


def test_a_copy_of_a_notebook_is_not_read_instead_of_the_lessons_own(bundle_none):
    copy = bundle_none / "lessons" / "06_transformer-Copy1.ipynb"       # sorts first
    lesson = specs.get_lesson("06")
    nb = notebook.read(lesson_path(lesson))                              # the stubs
    notebook.write(nb, copy)
    try:
        proc = _in_bundle(bundle_none, "import numpy as np\nfrom solutions import transformer\n"
                                       "print(sorted(transformer.init_encoder_block(8, 2, 16, "
                                       "np.random.default_rng(0)))[:2])")
    finally:
        copy.unlink()
    assert proc.returncode == 0, proc.stderr
    assert "['W1', 'W2']" in proc.stdout


def test_check_on_a_withheld_exercise_still_warns_about_other_cells(bundle_03):
    code = """
        import linecache
        from autograder import check
        helper_cell = "def my_gelu(x):\\n    return x\\n"
        exec(compile(helper_cell, "<cell 1>", "exec"))
        cell = ("# EXERCISE: 06.feed_forward_forward\\n"
                "def feed_forward_forward(x, W1, b1, W2, b2):\\n    return my_gelu(x @ W1 + b1) @ W2 + b2\\n")
        linecache.cache["<cell 2>"] = (len(cell), None, cell.splitlines(True), "<cell 2>")
        exec(compile(cell, "<cell 2>", "exec"))
        print("CHECK", repr(check(feed_forward_forward)))
        other = "def add_layernorm_forward(*args):\\n    return 0\\n"
        linecache.cache["<cell 3>"] = (len(other), None, other.splitlines(True), "<cell 3>")
        exec(compile(other, "<cell 3>", "exec"))
        print("SCRATCH", repr(check(add_layernorm_forward)))
    """
    proc = _in_bundle(bundle_03, code)
    assert proc.returncode == 0, proc.stderr
    assert "Not checked here" in proc.stdout
    assert "warning: `my_gelu` comes from another cell" in proc.stdout
    assert "warning: this function was not defined by the cell that starts with " \
           "'# EXERCISE: 06.add_layernorm_forward'" in proc.stdout


def _printed(nb):
    """What a run notebook printed, outside the check cells and the cells that read the full
    runs' results (datasets/cache, which only a machine that ran them has), without timings
    and speeds."""
    text = "".join(o["text"] for cell in nb.cells if cell.cell_type == "code"
                   and not cell.source.startswith("check(") and '"cache"' not in cell.source
                   for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    text = re.sub(r"\(?[0-9.]+ ?(s|ms|seconds)\b\)?", "T", text)
    return [line for line in text.splitlines()
            if not re.search(r"it/s|tokens/s|GFLOP/s|\r", line)]


def _execute(nbclient, nb, folder):
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    return nb          # executing raises CellExecutionError on any error


def test_a_solved_notebook_runs_top_to_bottom_in_the_bundle_on_the_learners_answers(
        bundle_none, solved_dir, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for name, value in {"COURSE_QUICK": "1", "OPENBLAS_NUM_THREADS": "1",
                        "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)
    lesson = specs.get_lesson("09")
    full = _execute(nbclient, nbformat.read(str(solved_dir / f"{lesson.slug}.ipynb"), as_version=4),
                    ROOT / "lessons")
    monkeypatch.setenv("PYTHONPATH", str(bundle_none))
    nb = nbformat.read(str(bundle_none / "lessons" / f"{lesson.slug}.ipynb"), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import solutions, solutions.pretraining as library\n"
        "from autograder.carry import answer\n"
        "print('TRAINER USES', answer('09.training_step', 'training_step') is training_step,\n"
        "      library.training_step is not training_step, solutions.__file__)"))
    _execute(nbclient, nb, bundle_none / "lessons")
    texts = [o.get("text", "") or o.get("data", {}).get("text/plain", "")
             for cell in nb.cells for o in cell.get("outputs", [])]
    not_checked = [t for t in texts if "Not checked here" in t]
    assert len(not_checked) == len(lesson.exercises)
    assert f"TRAINER USES True True {bundle_none / 'solutions' / '__init__.py'}" in texts[-1]
    # the learner's answers (here the reference's code, from the saved notebooks of lessons
    # 00-09) give what the full course gives: losses, evaluations, probes
    bundle_printed, full_printed = _printed(nb)[:-1], _printed(full)
    assert len(full_printed) > 20
    assert bundle_printed == full_printed
