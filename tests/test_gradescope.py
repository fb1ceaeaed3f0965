"""``python -m autograder gradescope``: the autograder zip, unpacked and run as Gradescope would.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once, then
run_autograder per submission. Here the same layout lives in a temporary folder
(GRADESCOPE_ROOT), and this interpreter stands in for the venv setup.sh would build;
setup.sh itself needs apt and the network, so only its syntax and its lines are checked.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder import specs

from conftest import lesson_path, run_cli


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gradescope")
    zip_path = folder / "autograder.zip"
    proc = run_cli("gradescope", "01", "02", "-o", zip_path, "--timeout", "20")
    assert proc.returncode == 0, proc.stderr
    assert "35 points" in proc.stdout
    return zip_path


def unpack(zip_path, root):
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    for name in ("setup.sh", "run_autograder"):
        assert modes[name] & 0o111, f"{name} must be executable"
        os.chmod(root / "source" / name, 0o755)
    (root / "submission").mkdir()
    return root


def run_autograder(root):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # only the bundle's code
    env.update(GRADESCOPE_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    proc = subprocess.run([str(root / "source" / "run_autograder")], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    return proc, json.loads((root / "results" / "results.json").read_text())


def test_the_zip_holds_the_grader_and_nothing_it_does_not_need(bundle):
    names = zipfile.ZipFile(bundle).namelist()
    assert {"setup.sh", "run_autograder", "pyproject.toml", "README.md",
            "autograder/cli.py", "solutions/losses.py", "datasets/course_text.txt"} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "lessons/", "datasets/cache/"))
                or "__pycache__" in n]


def test_a_submission_is_graded_from_the_unpacked_zip(bundle, tmp_path, solved_dir):
    root = unpack(bundle, tmp_path)
    shutil.copy(solved_dir / "01_losses.ipynb", root / "submission" / "my losses.ipynb")
    shutil.copy(lesson_path(specs.get_lesson("02")), root / "submission")   # not started
    (root / "submission" / "notes.txt").write_text("not a notebook")
    proc, results = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert results["score"] == specs.get_lesson("01").points
    names = [t["name"] for t in results["tests"]]
    assert names == [ex.id for key in ("01", "02") for ex in specs.get_lesson(key).exercises]
    assert "10 of 16 exercises passed" in results["output"]
    # the code that ran is the zip's: run from its folder, with no PYTHONPATH
    where = subprocess.run([sys.executable, "-c", "import autograder, solutions; "
                            "print(autograder.__file__); print(solutions.__file__)"],
                           cwd=root / "source", capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert all(line.startswith(str(root / "source")) for line in where.stdout.split())


def test_results_can_wait_until_the_teacher_publishes_them(tmp_path, solved_dir):
    zip_path = tmp_path / "exam.zip"
    assert run_cli("gradescope", "00", "-o", zip_path, "--visibility",
                   "after_published").returncode == 0
    root = unpack(zip_path, tmp_path / "gs")
    shutil.copy(solved_dir / "00_welcome.ipynb", root / "submission")
    proc, results = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert results["visibility"] == "after_published"
    assert {t["visibility"] for t in results["tests"]} == {"after_published"}
    assert results["score"] == specs.get_lesson("00").points


def test_an_empty_submission_still_gets_a_results_file(bundle, tmp_path):
    root = unpack(bundle, tmp_path)
    proc, results = run_autograder(root)
    assert proc.returncode == 2
    assert results["score"] == 0 and "no notebook (.ipynb file)" in results["output"]


def test_the_points_leave_out_what_needs_a_gpu(tmp_path):
    proc = run_cli("gradescope", "11", "-o", tmp_path / "gpu.zip")
    gpu_only = sum(ex.points for ex in specs.get_lesson("11").exercises if ex.devices == ("cuda",))
    assert gpu_only > 0
    assert f"{specs.get_lesson('11').points - gpu_only:g} points (and {gpu_only:g} for GPU-only" \
        in proc.stdout


def test_setup_installs_torch_only_for_lesson_12(bundle, tmp_path):
    setup = zipfile.ZipFile(bundle).read("setup.sh").decode()
    assert "torch" not in setup
    assert subprocess.run(["bash", "-n", "-c", setup]).returncode == 0
    with_12 = tmp_path / "with12.zip"
    assert run_cli("gradescope", "12", "-o", with_12).returncode == 0
    setup = zipfile.ZipFile(with_12).read("setup.sh").decode()
    assert subprocess.run(["bash", "-n", "-c", setup]).returncode == 0
    torch_line = next(line for line in setup.splitlines() if "pip install" in line
                      and "torch" in line)
    assert "download.pytorch.org/whl/cpu" in torch_line and "<2.14" in torch_line


@pytest.mark.parametrize("args, message", [
    ([], "the following arguments are required"),
    (["77"], "unknown lesson '77'"),
    (["01", "--timeout", "0"], "--timeout must be a positive number"),
    (["01", "--visibility", "later"], "invalid choice"),
])
def test_usage_errors(args, message, tmp_path):
    proc = run_cli("gradescope", *args, "-o", tmp_path / "a.zip")
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "a.zip").exists()
