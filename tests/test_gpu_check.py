"""scripts/gpu_check.py: without a GPU it prints the CPU rows and says which rows need one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from autograder import device, specs
from conftest import ROOT, run_cli

SCRIPT = ROOT / "scripts" / "gpu_check.py"
BACKENDS = ("NumPy (CPU)", "CuPy", "PyTorch bf16", "PyTorch bf16 + compile")


def run_quick(*options):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--no-tests", *options],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def rows(output, backend):
    return [line for line in output.splitlines()
            if line.startswith("  mini-BERT") and line[24:49].strip() == backend]


@pytest.mark.skipif(device.cuda_available(), reason="this test is about a machine without a GPU")
def test_without_a_gpu_the_cpu_rows_are_measured_and_the_gpu_rows_say_why_not(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[dev]')")
    output = run_quick("--markdown", str(tmp_path / "table.md"))
    for backend in BACKENDS:
        assert len(rows(output, backend)) == 1, (backend, output)
    numpy_row = rows(output, "NumPy (CPU)")[0].split()
    assert float(numpy_row[-4].replace(",", "")) > 0            # tokens/s measured
    assert numpy_row[-1] == "1.0x"
    torch_row = rows(output, "PyTorch fp32 (CPU)")
    assert len(torch_row) == 1 and "needs" not in torch_row[0]
    for backend in ("CuPy", "PyTorch bf16", "PyTorch bf16 + compile"):
        assert "needs a CUDA GPU" in rows(output, backend)[0]
    assert "No CUDA GPU here" in output
    markdown = (tmp_path / "table.md").read_text().splitlines()
    assert markdown[2].startswith("- GPU: none")
    assert "| mini-BERT | CuPy | 4 x 16 | needs a CUDA GPU |" in "\n".join(markdown)
    numpy_line = next(line for line in markdown if "| NumPy (CPU) |" in line)
    assert numpy_line.endswith("| 1.0x |")


def _script_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_sheet_peaks_know_the_h200_and_leave_unknown_gpus_to_a_measurement():
    gpu_check = _script_module()
    bf16, fp32 = gpu_check.data_sheet_peaks("NVIDIA H200")
    assert bf16 == pytest.approx(989e12) and fp32 == pytest.approx(67e12)
    assert gpu_check.data_sheet_peaks("NVIDIA H100 80GB HBM3") == gpu_check.PEAKS["H100 80GB HBM3"]
    assert gpu_check.data_sheet_peaks("Some Future GPU") is None


def test_the_gpu_test_step_runs_and_reports_even_where_cuda_is_missing():
    """On a GPU machine this step runs the CUDA tests; here it must still run, not crash."""
    gpu_check = _script_module()
    report = gpu_check.run_tests()
    assert "passed" in report                                   # the pytest summary line
    assert "-k 'not test_reference_passes_on_the_gpu'" in report
    assert "grade --device cuda, solved lessons 11-12:" in report
    assert "solved notebooks 11 and 12 in a kernel: 2 passed" in report
    assert report.count(" s)") == 3                             # each part timed
    assert "the three parts at once:" in report


def _row(model, backend, tokens_per_s, mfu=None, vs_numpy=None):
    return {"model": model, "backend": backend, "tokens_per_s": tokens_per_s, "mfu": mfu,
            "vs_numpy": vs_numpy}


def test_targets_are_judged_on_the_big_batch_and_the_bert_base_rows():
    gpu_check = _script_module()
    results = [
        _row("mini-BERT", "NumPy (CPU)", 8e3, 20, 1.0),
        _row("mini-BERT", "CuPy", 5e4, 1, 6.2),                 # launch-bound: not judged
        _row("mini-BERT, big batch", "NumPy (CPU)", 7e3, 20, 1.0),
        _row("mini-BERT, big batch", "CuPy", 2.1e5, 3, 30.0),
        _row("BERT-base size", "PyTorch bf16", 3e5, 34.6),
        _row("BERT-base size", "PyTorch bf16 + compile", 4e5, 48.2),
    ]
    lines = gpu_check.target_lines(results)
    assert lines[0] == "CuPy vs NumPy-CPU (mini-BERT, big batch): 30.0x (target 20x): met"
    assert lines[1] == "PyTorch bf16 MFU (BERT-base size): 34.6 % (target 35 %): NOT met"
    assert lines[2] == "PyTorch bf16 + compile MFU (BERT-base size): 48.2 % (target 35 %): met"


def test_a_target_whose_rows_failed_says_not_measured():
    gpu_check = _script_module()
    lines = gpu_check.target_lines([_row("mini-BERT, big batch", "NumPy (CPU)", 7e3, 20, 1.0)])
    assert lines == ["CuPy vs NumPy-CPU (mini-BERT, big batch): not measured (target 20x)",
                     "PyTorch bf16 MFU (BERT-base size): not measured (target 35 %)",
                     "PyTorch bf16 + compile MFU (BERT-base size): not measured (target 35 %)"]


def test_the_markdown_report_holds_the_measured_rows_and_the_targets():
    gpu_check = _script_module()
    rows = [dict(_row("BERT-base size", "PyTorch bf16", 412345.6, 41.23), batch=256,
                 seq_len=128, step_ms=79.5, gflops=407000.0, note=None),
            dict(model="BERT-base size", backend="PyTorch bf16 + compile", batch=256,
                 seq_len=128, note="skipped (--no-compile)")]
    report = gpu_check.markdown_report(["GPU: NVIDIA H200, 140 GiB"], rows, ["a target: met"])
    assert report.splitlines()[0] == "- GPU: NVIDIA H200, 140 GiB"
    assert "| BERT-base size | PyTorch bf16 | 256 x 128 | 79.5 | 412,346 | 407,000 | 41 % | - |" \
        in report
    assert "| PyTorch bf16 + compile | 256 x 128 | skipped (--no-compile) |" in report
    assert report.rstrip().endswith("- a target: met")


def test_the_rows_that_did_not_pass_are_picked_out_of_a_grade_table():
    gpu_check = _script_module()
    proc = run_cli("grade", "11", "--lessons-dir", str(ROOT / "lessons"))    # the stubs
    rows = gpu_check.not_passed(proc.stdout)
    assert "11.to_device 0 / 2 not attempted" in rows
    assert len(rows) == len(specs.get_lesson("11").exercises)              # none passed
    assert gpu_check.not_passed("  11.to_device 2 / 2 passed\n  overall 1 / 1") == []


def test_a_part_that_hangs_is_stopped_with_the_processes_it_started(tmp_path):
    gpu_check = _script_module()
    pid_file = tmp_path / "grandchild.pid"
    hang = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(60)\n")
    out, err, seconds, timed_out = gpu_check.run_part([sys.executable, "-c", hang],
                                                      dict(os.environ), timeout=3)
    assert timed_out and seconds < 30
    grandchild = int(pid_file.read_text())
    for _ in range(50):                                     # killed, then reaped by init
        if not os.path.exists(f"/proc/{grandchild}") or \
                "Z" in open(f"/proc/{grandchild}/stat").read().split()[2]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the grandchild {grandchild} still runs")


def test_with_a_gpu_the_report_has_every_row_the_peaks_and_the_targets(monkeypatch, tmp_path,
                                                                       capsys):
    """The GPU path of main(), with the GPU and the timings faked: what a GPU run prints."""
    gpu_check = _script_module()
    monkeypatch.setattr(gpu_check, "gpu_info", lambda: ("NVIDIA H200", 139.8))
    monkeypatch.setattr(gpu_check, "has_cupy", lambda: True)
    monkeypatch.setattr(gpu_check, "has_torch", lambda: True)
    monkeypatch.setattr(gpu_check, "release_gpu_memory", lambda: None)
    monkeypatch.setattr(gpu_check, "run_tests", lambda: "  pytest ...: 60 passed (90 s)")
    monkeypatch.setattr(gpu_check, "torch_matmul_peak", lambda precision: 800e12)
    monkeypatch.setitem(sys.modules, "cupy", type(sys)("cupy"))
    sys.modules["cupy"].__version__ = "14.2.0"
    calls = []

    def fake_numpy_row(fields, seq_len, batch, warmup, steps, xp_name="numpy"):
        calls.append(("numpy_row", xp_name, batch))
        return (0.02 if xp_name == "cupy" else 1.0), batch * seq_len, 1e12

    def fake_torch_row(fields, seq_len, batch, device_name, precision, compiled, warmup, steps):
        calls.append(("torch_row", precision, compiled, batch))
        if compiled and fields["num_layers"] == 12:
            raise RuntimeError("stand-in compile failure")
        return 0.01, batch * seq_len, 4e12

    monkeypatch.setattr(gpu_check, "numpy_row", fake_numpy_row)
    monkeypatch.setattr(gpu_check, "torch_row", fake_torch_row)
    gpu_check.main(["--markdown", str(tmp_path / "table.md")])
    out = capsys.readouterr().out
    assert "GPU: NVIDIA H200, 140 GiB" in out and "Tests on the GPU" in out
    assert "data sheet of the NVIDIA H200" in out
    assert ("numpy_row", "cupy", 1024) in calls and ("numpy_row", "numpy", 32) in calls
    assert ("torch_row", "bf16", False, 256) in calls
    # the big batch: CuPy 1024 x 128 in 0.02 s against NumPy 32 x 128 in 1 s
    assert "CuPy vs NumPy-CPU (mini-BERT, big batch): 1600.0x (target 20x): met" in out
    # 4e12 FLOPs in 0.01 s against the H200's 989 TFLOP/s
    assert "PyTorch bf16 MFU (BERT-base size): 40.4 % (target 35 %): met" in out
    assert "PyTorch bf16 + compile MFU (BERT-base size): not measured" in out
    assert "failed: RuntimeError: stand-in compile failure" in out
    assert "the whole check, tests and benchmark:" in out and "(target under 300 s): met" in out
    markdown = (tmp_path / "table.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3 * 5                           # the header, 3 models x 5 backends
    assert "- the whole check, tests and benchmark:" in markdown


def test_a_process_that_left_the_group_cannot_hold_a_part_forever(tmp_path):
    """A grandchild in a session of its own outlives the kill and keeps the pipes open;
    run_part gives up on them after a few seconds instead of waiting for it."""
    gpu_check = _script_module()
    pid_file = tmp_path / "escaped.pid"
    escape = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(40)'],\n"
              "                         start_new_session=True)\n"
              f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
              "time.sleep(40)\n")
    try:
        out, err, seconds, timed_out = gpu_check.run_part([sys.executable, "-c", escape],
                                                          dict(os.environ), timeout=2)
        assert timed_out and seconds < 25 and out == ""
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
