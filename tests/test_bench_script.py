"""scripts/bench_numpy_vs_torch.py runs (--quick) and prints its table; the FLOP count is right."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "bench_numpy_vs_torch.py"
ROWS = ("loss at start (no dropout)", "step time, median", "step time, min - max", "tokens/s",
        "achieved GFLOP/s", "share of matmul peak", "step FLOPs (analytic)",
        "matmul peak (np.matmul)")


def run_script(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def header(output):
    """The column names: the line that holds nothing but them."""
    return next(line.split() for line in output.splitlines()
                if line.split() and set(line.split()) <= {"NumPy", "PyTorch"})


def row(output, label):
    """The values printed after ``label`` on its line."""
    line = next(line for line in output.splitlines() if line.strip().startswith(label))
    return line.strip()[len(label):].split()


def test_quick_run_prints_both_sides_and_their_ratio():
    pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[dev]')")
    pytest.importorskip("transformers", reason="transformers is not installed")
    output = run_script()
    for label in ROWS:
        assert label in output, f"no {label!r} row in\n{output}"
    assert header(output) == ["NumPy", "PyTorch"]
    numpy_loss, torch_loss = map(float, row(output, "loss at start (no dropout)"))
    assert numpy_loss == pytest.approx(torch_loss, rel=1e-4)      # the same model on both sides
    numpy_rate, torch_rate = map(float, row(output, "tokens/s"))
    assert numpy_rate > 0 and torch_rate > 0
    ratio = re.search(r"ratio NumPy / PyTorch\s+([\d.]+)x", output)
    assert ratio, output
    assert float(ratio.group(1)) == pytest.approx(numpy_rate / torch_rate, rel=0.05)


def test_numpy_only_run():
    output = run_script("--no-torch", "--steps", "2")
    assert header(output) == ["NumPy"]
    assert float(row(output, "tokens/s")[0]) > 0
    assert "ratio" not in output


def test_step_flops_formula():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from bench_numpy_vs_torch import step_flops
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from solutions.bert import BertConfig
    config = BertConfig(vocab_size=10, hidden_size=4, num_layers=2, num_heads=2,
                        intermediate_size=8, max_position_embeddings=8)
    B, T, M = 3, 5, 2
    per_token_forward = 2 * (4 * 4 * 4 + 2 * 4 * 8) * 2 + 2 * (2 * T * 4) * 2   # 2 layers
    head_forward = 2 * (4 * 4 + 4 * 10)
    assert step_flops(config, B, T, M) == 3 * (B * T * per_token_forward + M * head_forward)
