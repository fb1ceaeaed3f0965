"""GPU check: run the GPU tests, then time one training step on every backend, in one table.

Usage:
    python scripts/gpu_check.py              # tests + benchmark (under 5 minutes on an H200)
    python scripts/gpu_check.py --no-tests   # the benchmark only
    python scripts/gpu_check.py --quick      # tiny sizes: checks that everything runs
    python scripts/gpu_check.py --markdown gpu_check.md   # the table also as Markdown

What it does:

1. Says what it runs on: the CPU, the GPU (name, memory), NumPy, CuPy and PyTorch versions.
2. With a CUDA GPU: runs the tests that exercise the GPU code paths
   (``pytest tests/test_device.py tests/test_lesson11.py tests/test_lesson12.py``, where the
   CUDA tests are no longer skipped: lesson 11's exercises, their catalogued mistakes and
   correct alternatives graded on the GPU, lesson 12's model and training step on the GPU)
   runs the solved notebooks of lessons 11 and 12 top to bottom (their GPU cells included),
   and grades the solved lessons 11 and 12 on the GPU (``python -m autograder grade
   --device cuda``), GPU-only exercises included. The three parts run at the same time
   (pytest over 8 processes where pytest-xdist is installed); each says how long it took.
3. Times one masked-LM training step (forward, backward, AdamW) of the same model on each
   backend, and prints one table:

   ========================  =========================================================
   NumPy (CPU)               lesson 07's model, ``solutions.gpu.make_train_step(xp=numpy)``
   CuPy                      the very same code on CuPy arrays (lesson 11)
   PyTorch fp32              ``solutions.torch_bert.make_train_step`` (lesson 12), float32
   PyTorch bf16              the same under bfloat16 autocast (float32 weights and loss)
   PyTorch bf16 + compile    the same, each encoder layer compiled (``torch.compile``)
   ========================  =========================================================

   for the course's mini-BERT (V=1000, D=128, 4 layers, 4 heads, F=512) at the course's
   batch (32 x 64 tokens) and at a batch big enough for a GPU (1,024 x 128 on the GPU, 32 x 128
   on the CPU), and for a BERT-base-sized model (V=30522, D=768, 12 layers, 12 heads,
   F=3072; 256 x 128 on the GPU, 8 x 128 on the CPU). See ``BENCHMARKS`` for why.
   tokens/s = batch * T / step time (median of timed steps, after warm-up steps, with
   the GPU synchronized around every timed step). FLOPs are counted analytically (matrix
   products only: ``torch_bert.train_step_flops``); the model FLOP utilization (MFU) is the
   achieved FLOP/s over the GPU's peak for that precision: its dense bf16 tensor-core peak
   for the bf16 rows and its float32 (non-tensor-core) peak for the float32 rows, from the
   data sheet for the GPUs listed in ``PEAKS``, else the best large matmul measured here.
   CPU rows are compared with the best float32 matmul measured on the CPU.

Without a GPU it prints the CPU rows (NumPy, and PyTorch fp32 on the CPU) and says plainly
which rows need a CUDA GPU. With one it ends with the targets of issue 5 (set for an NVIDIA
H200), each measured and marked met or NOT met: CuPy >= 20x NumPy-CPU on the course's model
(the big batch), and PyTorch bf16 on the BERT-base-sized model >= 35 % MFU.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# Dense peak FLOP/s from the data sheets (SXM boards): (bf16 tensor cores, float32 without them).
PEAKS = {
    "H200": (989e12, 67e12),
    "H100 80GB HBM3": (989e12, 67e12),      # H100 SXM
    "H100 PCIe": (756e12, 51e12),
    "A100": (312e12, 19.5e12),
    "L40S": (362e12, 91.6e12),
    "RTX 4090": (165e12, 82.6e12),
}

_MINI = {"vocab_size": 1000, "hidden_size": 128, "num_layers": 4, "num_heads": 4,
         "intermediate_size": 512, "max_position_embeddings": 128}
_BASE = {"vocab_size": 30522, "hidden_size": 768, "num_layers": 12, "num_heads": 12,
         "intermediate_size": 3072, "max_position_embeddings": 512}

# Each benchmark: (label, BertConfig fields, seq_len, batch on the GPU, batch on the CPU).
# Every backend runs at a batch that suits it, and tokens/s compares them. The mini-BERT runs
# twice. A CuPy step of it is about 2,000 kernel launches whatever the batch (lesson 11), tens
# of milliseconds of Python. At the course's batch (32 x 64 = 2,048 tokens) the GPU's work is
# far less than that: it idles between launches. At 1,024 x 128 (131,072 tokens, about 8 GiB)
# there is enough work per kernel for the GPU, not the launching, to set the pace. A CPU is
# busy from a few sequences on, and NumPy is fastest at a small batch: at 256 x 128 its
# tokens/s fell by 40 % on our 2-core machine (arrays that big no longer fit the caches), so
# the CPU keeps 32 sequences of the same length. BERT-base on the GPU gets BERT's own
# pretraining batch, 256 sequences; on the CPU 8 sequences keep a step to seconds.
BENCHMARKS = [
    ("mini-BERT", _MINI, 64, 32, 32),
    ("mini-BERT, big batch", _MINI, 128, 1024, 32),
    ("BERT-base size", _BASE, 128, 256, 8),
]
QUICK_BENCHMARKS = [
    ("mini-BERT", {"vocab_size": 100, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                   "intermediate_size": 64, "max_position_embeddings": 32}, 16, 4, 4),
]
# A CPU row whose step is more FLOPs than this is timed after 1 warm-up step, over 3 steps.
HEAVY_CPU_STEP_FLOPS = 5e10
TARGETS = {"cupy_vs_numpy": ("mini-BERT, big batch", 20.0), "bf16_mfu": ("BERT-base size", 35.0)}
CHECK_SECONDS = 300             # the whole check on an H200, tests included


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few steps")
    parser.add_argument("--no-tests", action="store_true", help="skip the GPU tests")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as Markdown")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- the machine


def gpu_info():
    """(name, total memory in GiB) of GPU 0, or None without a CUDA GPU."""
    from autograder import device
    if not device.cuda_available():
        return None
    try:
        import torch
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return props.name, props.total_memory / 2**30
    except ImportError:
        pass
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    return props["name"].decode(), props["totalGlobalMem"] / 2**30


def has_cupy():
    try:
        import cupy
        return bool(cupy.is_available())
    except Exception:                      # not installed, or no driver
        return False


def has_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def gpu_batch_for(batch, gpu_memory_gib):
    """The GPU batch for a GPU with this much memory: a quarter of it under 60 GiB.

    The batches in ``BENCHMARKS`` are sized for an 80-141 GiB data-centre GPU: a BERT-base
    step of the NumPy-style code holds about 0.12 GiB per sequence of 128 tokens (measured
    with NumPy), about 30 GiB at 256 sequences, before CuPy's pool rounds its blocks up. A
    smaller GPU runs a quarter.
    """
    return batch if gpu_memory_gib >= 60 or batch <= 32 else batch // 4


def release_gpu_memory():
    """Give the memory that CuPy's pool and PyTorch's cache hold back, between two rows."""
    import gc
    gc.collect()
    if has_cupy():
        import cupy
        cupy.get_default_memory_pool().free_all_blocks()
    if has_torch():
        import torch
        torch._dynamo.reset()          # compiled graphs of the last model, and their guards
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def data_sheet_peaks(name):
    for key, peaks in PEAKS.items():
        if key in name:
            return peaks
    return None


# --------------------------------------------------------------------------- timing


def median_step_seconds(step, synchronize, warmup, steps):
    """Median seconds of ``step()``, the device synchronized before and after each call."""
    for _ in range(warmup):
        step()
    synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_matmul_peak(n=2048, repeats=5):
    a = np.ones((n, n), dtype=np.float32)
    b = np.ones((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def torch_matmul_peak(dtype_name, n=8192, repeats=10):
    import torch
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    end.synchronize()
    return 2 * n ** 3 * repeats / (start.elapsed_time(end) / 1000)


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- the rows


def numpy_row(fields, seq_len, batch, warmup, steps, xp_name="numpy"):
    from solutions import gpu
    from solutions.bert import BertConfig
    from solutions.torch_bert import train_step_flops
    config = BertConfig(**fields)
    if xp_name == "cupy":
        import cupy as xp

        def synchronize():
            xp.cuda.get_current_stream().synchronize()
    else:
        xp, synchronize = np, (lambda: None)
    step = gpu.make_train_step(config, batch, seq_len, xp=xp)
    seconds = median_step_seconds(step, synchronize, warmup, steps)
    num_masked = int((step.batch["labels"] != -100).sum())
    return seconds, batch * seq_len, train_step_flops(config, batch, seq_len, num_masked)


def torch_row(fields, seq_len, batch, device_name, precision, compiled, warmup, steps):
    import torch

    from solutions.torch_bert import make_train_step
    step = make_train_step(fields, batch, seq_len, device_name, precision, compile=compiled)
    synchronize = torch.cuda.synchronize if device_name == "cuda" else (lambda: None)
    seconds = median_step_seconds(step, synchronize, warmup, steps)
    return seconds, step.tokens, step.flops


def run_part(command, env, timeout):
    """Run one part of the checks: (stdout, stderr, seconds, timed_out).

    The command runs in its own process group, so that on a timeout the processes it
    started (graders, notebook kernels) are killed with it and free the GPU.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:      # a process that left the group holds the pipes
            proc.stdout.close(), proc.stderr.close()
            out, err = "", ""
        timed_out = True
    return out, err, time.perf_counter() - started, timed_out


def _pytest_summary(out, err, seconds, timed_out, timeout):
    """The last line of a pytest run and its failures, as report lines."""
    last = [line for line in out.splitlines() if line.strip()][-1:]
    outcome = (f"TIMED OUT after {timeout} s" if timed_out
               else " ".join(last) or err.strip()[-300:] or "no output")
    failed = [f"    {line}" for line in out.splitlines() if line.startswith("FAILED")]
    return [f"{outcome} ({seconds:.0f} s)"] + failed


def run_tests(timeout=240):
    """The GPU tests and a GPU grade of the solved lessons 11 and 12; returns their summaries.

    Every grade on the GPU starts a fresh interpreter (CUDA does not survive a fork), a few
    seconds each, so nothing is graded twice: the pytest run leaves out lesson 12's
    reference-on-the-GPU test, because the ``grade --device cuda`` of the solved notebooks
    below grades those same references, through the command a teacher uses. (The CPU
    catalogue of wrong answers runs in CI; lesson 11's GPU-only mistakes are graded on the
    GPU by ``test_grading_on_the_gpu``.)

    The three parts run at the same time, each in processes of its own (a GPU takes several
    CUDA contexts), and the pytest part spreads over ``TEST_WORKERS`` processes where
    pytest-xdist is installed. Each part is stopped after ``timeout`` seconds, and every command
    in it is bounded (``run_part``), so that a hang cannot cost the benchmark.
    """
    # the repository first, then whatever PYTHONPATH already holds (carried packages, say)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, \
            concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        parts = [pool.submit(_gpu_tests, env, timeout), pool.submit(_solved_notebooks, env, timeout),
                 pool.submit(_gpu_grade, env, timeout, folder)]
        lines = [line for part in parts for line in part.result()]
    lines.append(f"  the three parts at once: {time.perf_counter() - started:.0f} s")
    return "\n".join(lines)


TEST_WORKERS = 8


def _gpu_tests(env, timeout):
    tests = ["tests/test_device.py", "tests/test_lesson11.py", "tests/test_lesson12.py"]
    deselect = "not test_reference_passes_on_the_gpu"
    workers = ["-n", str(TEST_WORKERS)] if importlib.util.find_spec("xdist") else []
    result = run_part([sys.executable, "-m", "pytest", "-q", "-rs", *workers, *tests,
                       "-k", deselect], env, timeout)
    first, *rest = _pytest_summary(*result, timeout)
    spread = f", {TEST_WORKERS} processes" if workers else ""
    return [f"  pytest {' '.join(tests)} -k '{deselect}'{spread}: {first}", *rest]


def _solved_notebooks(env, timeout):
    """The solved notebooks of lessons 11 and 12, top to bottom: with a GPU their GPU cells run."""
    selection = "runs_top_to_bottom and (11_gpu_cupy or 12_pytorch)"
    result = run_part([sys.executable, "-m", "pytest", "-q", "tests/test_notebooks.py", "-k",
                       selection], env, timeout)
    first, *rest = _pytest_summary(*result, timeout)
    return [f"  solved notebooks 11 and 12 in a kernel: {first}", *rest]


def _gpu_grade(env, timeout, folder):
    for slug in ("11_gpu_cupy", "12_pytorch"):
        run_part([sys.executable, "-m", "autograder", "solve", f"lessons/{slug}.ipynb",
                  "-o", f"{folder}/{slug}.ipynb"], env, 60)
    out, err, seconds, timed_out = run_part(
        [sys.executable, "-m", "autograder", "grade", "--device", "cuda", "--lessons-dir",
         folder, "11", "12"], env, timeout)
    overall = [line.strip() for line in out.splitlines() if line.strip().startswith("overall")]
    outcome = (f"TIMED OUT after {timeout} s" if timed_out
               else overall[0] if overall else err.strip()[-300:] or "no output")
    return [f"  grade --device cuda, solved lessons 11-12: {outcome} ({seconds:.0f} s)",
            *[f"    {line}" for line in not_passed(out)]]


def not_passed(table):
    """The rows of a ``grade`` table whose exercise did not pass ("11.time_gpu 0 / 2 failed")."""
    return [" ".join(line.split()) for line in table.splitlines()
            if re.match(r"\s+\d\d\.\w+\s", line) and not line.rstrip().endswith("passed")]


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    warmup, steps = (1, args.steps or 2) if args.quick else (3, args.steps or 10)
    gpu = gpu_info()
    cupy_ok, torch_ok = has_cupy(), has_torch()

    versions = [f"NumPy {np.__version__}"]
    if cupy_ok:
        import cupy
        versions.append(f"CuPy {cupy.__version__}")
    if torch_ok:
        import torch
        versions.append(f"PyTorch {torch.__version__}")
    header = [f"date {time.strftime('%Y-%m-%d')}; CPU: {os.cpu_count()} cores, "
              f"{platform.processor() or platform.machine()}",
              ", ".join(versions),
              "GPU: none (no CUDA GPU visible to CuPy or PyTorch): the GPU rows below need one"
              if gpu is None else f"GPU: {gpu[0]}, {gpu[1]:.0f} GiB"]
    print("GPU check")
    for line in header:
        print("  " + line)

    if gpu is not None and not args.no_tests:
        print("\nTests on the GPU")
        print(run_tests())

    peaks = {"cpu": numpy_matmul_peak(1024 if args.quick else 2048)}
    peak_source = "measured (float32 matmul, NumPy)"
    if gpu is not None and torch_ok:
        sheet = data_sheet_peaks(gpu[0])
        measured = {"bf16": torch_matmul_peak("bf16"), "fp32": torch_matmul_peak("fp32")}
        if sheet:
            peaks["bf16"], peaks["fp32"] = sheet
            gpu_source = f"data sheet of the {gpu[0]}"
        else:
            peaks.update(measured)
            gpu_source = "measured (8192^3 matmul)"
        print(f"\nPeaks: CPU float32 {peaks['cpu'] / 1e9:.0f} GFLOP/s ({peak_source}); GPU "
              f"bf16 {peaks['bf16'] / 1e12:.0f} and fp32 {peaks['fp32'] / 1e12:.1f} TFLOP/s "
              f"({gpu_source}); an 8192^3 matmul reached {measured['bf16'] / 1e12:.0f} (bf16) "
              f"and {measured['fp32'] / 1e12:.1f} (fp32) TFLOP/s here")
    else:
        print(f"\nPeak: CPU float32 {peaks['cpu'] / 1e9:.0f} GFLOP/s ({peak_source})")

    print("\nOne training step (forward, backward, AdamW), median of "
          f"{steps} after {warmup} warm-up (a CPU step over "
          f"{HEAVY_CPU_STEP_FLOPS:.0e} FLOPs: 3 after 1)")
    results = run_benchmarks(QUICK_BENCHMARKS if args.quick else BENCHMARKS, gpu, cupy_ok,
                             torch_ok, peaks, warmup, steps, args.no_compile)
    print("\nMFU: achieved FLOP/s over the peak above (CPU rows: the CPU matmul; bf16 rows: the "
          "bf16 peak; fp32 rows: the fp32 peak).")
    if gpu is None:
        print("No CUDA GPU here: the CuPy and GPU PyTorch rows, and the GPU tests, need one "
              "(pip install -e '.[gpu]' for CuPy).")
    targets = target_lines(results) if gpu is not None else []
    seconds = time.perf_counter() - started
    if targets and not (args.no_tests or args.quick):
        targets.append(judged("the whole check, tests and benchmark", seconds, CHECK_SECONDS,
                              " s", digits=0, under=True))
    if targets:
        print("\nTargets (set for an NVIDIA H200)")
        for line in targets:
            print("  " + line)
    if args.markdown:
        Path(args.markdown).write_text(markdown_report(header, results, targets), encoding="utf-8")
        print(f"the table as Markdown: {args.markdown}")
    print(f"done in {time.perf_counter() - started:.0f} s")


def backends_for(gpu, torch_ok):
    """(label, where, how) of each row: how is None (NumPy), "cupy" or (precision, compiled)."""
    rows = [("NumPy (CPU)", "cpu", None)]
    if torch_ok:
        rows.append(("PyTorch fp32 (CPU)" if gpu is None else "PyTorch fp32",
                     "cpu" if gpu is None else "cuda", ("fp32", False)))
    return rows + [("CuPy", "cuda", "cupy"), ("PyTorch bf16", "cuda", ("bf16", False)),
                   ("PyTorch bf16 + compile", "cuda", ("bf16", True))]


def run_benchmarks(benchmarks, gpu, cupy_ok, torch_ok, peaks, warmup, steps, no_compile):
    """Time every backend on every benchmark, print a row each; returns the rows.

    Returns a list of dicts, one per row: model, backend, batch, seq_len and note (why the
    row was not measured, or None); a measured row also has step_ms, tokens_per_s, gflops,
    mfu (percent, or None) and vs_numpy (the ratio to the NumPy row of the same model, or
    None).
    """
    from solutions.bert import BertConfig
    from solutions.torch_bert import train_step_flops
    print(f"  {'model':<22}{'backend':<25}{'batch x T':>10}{'step (ms)':>11}"
          f"{'tokens/s':>12}{'GFLOP/s':>11}{'MFU':>7}{'vs NumPy':>10}")
    results = []
    for model_name, fields, seq_len, gpu_batch, cpu_batch in benchmarks:
        numpy_rate = None
        for label, where, how in backends_for(gpu, torch_ok):
            gpu_gib = gpu[1] if gpu else float("inf")
            batch = cpu_batch if where == "cpu" else gpu_batch_for(gpu_batch, gpu_gib)
            prefix = f"  {model_name:<22}{label:<25}{f'{batch} x {seq_len}':>10}"
            row = {"model": model_name, "backend": label, "batch": batch, "seq_len": seq_len,
                   "note": None}
            results.append(row)

            def not_measured(note):
                row["note"] = note
                print(prefix + "   " + note)

            if where == "cuda" and gpu is None:
                not_measured("needs a CUDA GPU")
                continue
            if how == "cupy" and not cupy_ok:
                not_measured("needs CuPy (pip install -e '.[gpu]')")
                continue
            if how == ("bf16", True) and no_compile:
                not_measured("skipped (--no-compile)")
                continue
            # A big step takes seconds on a CPU: fewer of them keep the check short.
            expected_flops = train_step_flops(BertConfig(**fields), batch, seq_len,
                                              batch * round(0.15 * seq_len))
            w, n = ((1, min(steps, 3)) if where == "cpu" and expected_flops > HEAVY_CPU_STEP_FLOPS
                    else (warmup, steps))
            try:
                if how is None or how == "cupy":
                    seconds, tokens, flops = numpy_row(fields, seq_len, batch, w, n,
                                                       how or "numpy")
                else:
                    seconds, tokens, flops = torch_row(fields, seq_len, batch, where, how[0],
                                                       how[1], w, n)
            except Exception as exc:                                  # noqa: BLE001
                not_measured(f"failed: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            finally:
                if where == "cuda":
                    release_gpu_memory()
            rate = tokens / seconds
            if how is None:
                numpy_rate = rate
            peak = peaks["cpu"] if where == "cpu" else peaks.get(
                "bf16" if how and how[0] == "bf16" else "fp32")
            mfu = 100 * flops / seconds / peak if peak else None
            ratio = rate / numpy_rate if numpy_rate else None
            row.update(step_ms=1000 * seconds, tokens_per_s=rate, gflops=flops / seconds / 1e9,
                       mfu=mfu, vs_numpy=ratio)
            print(prefix + f"{1000 * seconds:>11.1f}{rate:>12,.0f}{flops / seconds / 1e9:>11,.0f}"
                  + (f"{mfu:>6.0f}%" if mfu is not None else f"{'-':>7}")
                  + (f"{ratio:>9.1f}x" if ratio is not None else f"{'-':>10}"))
    return results


def markdown_report(header, results, targets):
    """The table as Markdown, ready for the README and the lessons."""
    lines = [f"- {line}" for line in header] + [
        "", "| model | backend | batch x T | step (ms) | tokens/s | GFLOP/s | MFU | vs NumPy |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        cells = [r["model"], r["backend"], f"{r['batch']} x {r['seq_len']}"]
        if r.get("tokens_per_s") is None:
            cells += [r["note"] or "-", "", "", "", ""]
        else:
            cells += [f"{r['step_ms']:,.1f}", f"{r['tokens_per_s']:,.0f}",
                      f"{r['gflops']:,.0f}", "-" if r["mfu"] is None else f"{r['mfu']:.0f} %",
                      "-" if r["vs_numpy"] is None else f"{r['vs_numpy']:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    if targets:
        lines += [""] + [f"- {line}" for line in targets]
    return "\n".join(lines) + "\n"


def judged(what, value, target, unit, digits=1, under=False):
    """One target's line: "what: value (target ...): met", "NOT met", or "not measured"."""
    goal = f"target {'under ' if under else ''}{target:.0f}{unit}"
    if value is None:
        return f"{what}: not measured ({goal})"
    met = value < target if under else value >= target
    return f"{what}: {value:.{digits}f}{unit} ({goal}): {'met' if met else 'NOT met'}"


def target_lines(results):
    """One line per target of issue 5: the figure measured, the target, met or not."""
    def measured(model, backend, key):
        row = next((r for r in results if r["model"] == model and r["backend"] == backend
                    and r.get("tokens_per_s") is not None), None)
        return None if row is None else row[key]

    model, target = TARGETS["cupy_vs_numpy"]
    lines = [judged(f"CuPy vs NumPy-CPU ({model})", measured(model, "CuPy", "vs_numpy"),
                    target, "x")]
    model, target = TARGETS["bf16_mfu"]
    for backend in ("PyTorch bf16", "PyTorch bf16 + compile"):
        lines.append(judged(f"{backend} MFU ({model})", measured(model, backend, "mfu"),
                            target, " %"))
    return lines


if __name__ == "__main__":
    main()
