"""Compile every CUDA kernel of lesson 11 with NVRTC, without a GPU.

Lesson 11's two kernel exercises (``gelu_kernel``, an ``ElementwiseKernel``; and
``softmax_rows_kernel``, a ``RawKernel``) are graded only where there is a GPU. Their CUDA
code (the reference, each catalogued mistake and each correct alternative) can still be
*compiled* on any machine: NVRTC, CUDA's run-time compiler, is a library that needs no
driver. This script finds those sources by calling each function with a stand-in ``cupy``
that records the kernel it is given, then compiles each for one GPU architecture:

- a ``RawKernel``'s source as it is;
- an ``ElementwiseKernel``'s loop body inside a kernel shaped like the one CuPy generates
  (``typedef float T;`` or ``double``, ``CArray`` parameters, CuPy's ``CUPY_FOR`` loop, CuPy's
  own headers), once per float type. An imitation, not CuPy's exact code: it catches
  syntax errors, unknown functions and type mistakes in the part a learner writes.

Usage (needs CuPy and the NVRTC library, not a GPU)::

    pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12     # or: cupy-cuda13x nvidia-cuda-nvrtc
    python scripts/nvrtc_check.py [--arch compute_90]

Prints one line per kernel, OK or the compiler's log; exits 1 if any kernel failed to
compile, 2 if NVRTC cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOAT_TYPES = {"float32": "float", "float64": "double"}


class _Captured(Exception):
    """Raised by the stand-in once a kernel is recorded: nothing needs to run."""


def kernel_sources():
    """Every kernel of lesson 11: a list of (label, kind, details).

    ``kind`` is "raw" with details ``(source, name)``, or "elementwise" with details
    ``(in_params, out_params, operation, name)``.
    """
    from autograder.specs import lesson11 as spec
    from solutions import gpu
    from tests.alternatives.lesson11 import ALTERNATIVES

    recorded = []

    def elementwise(in_params, out_params, operation, name, *args, **kwargs):
        recorded.append(("elementwise", (in_params, out_params, operation, name)))
        raise _Captured

    def raw(source, name, *args, **kwargs):
        recorded.append(("raw", (source, name)))
        raise _Captured

    stand_in = types.ModuleType("cupy")
    stand_in.ElementwiseKernel, stand_in.RawKernel = elementwise, raw
    calls = {"gelu_kernel": lambda fn: fn(None),
             "softmax_rows_kernel": lambda fn: fn(np.zeros((3, 4), np.float32), None)}

    functions = [("reference gelu_kernel", gpu.gelu_kernel),
                 ("reference softmax_rows_kernel", gpu.softmax_rows_kernel)]
    for exercise in (spec.gelu_kernel, spec.softmax_rows_kernel):
        for mistake in exercise.mistakes:
            functions.append((f"{exercise.symbol}, mistake '{mistake.name}'",
                              _define(mistake.source, exercise.symbol)))
        for number, source in enumerate(ALTERNATIVES[exercise.id], 1):
            functions.append((f"{exercise.symbol}, alternative {number}",
                              _define(source, exercise.symbol)))

    sources = []
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = stand_in
    try:
        for label, fn in functions:
            before = len(recorded)
            try:
                calls[fn.__name__](fn)
            except _Captured:
                pass
            sources += [(label, kind, details) for kind, details in recorded[before:]]
    finally:
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved
    return sources


def _define(source, symbol):
    namespace = {"np": np}
    exec(compile(source, f"<{symbol}>", "exec"), namespace)
    return namespace[symbol]


def elementwise_source(in_params, out_params, operation, name, dtype):
    """A CUDA kernel shaped like the one ``cupy.ElementwiseKernel`` generates for ``dtype``."""
    def declared(params):
        result = []
        for param in params.split(","):
            type_name, var = param.split()
            result.append((FLOAT_TYPES[dtype] if len(type_name) == 1
                           else FLOAT_TYPES.get(type_name, type_name), var))
        return result

    inputs, outputs = declared(in_params), declared(out_params)
    params = ", ".join([f"CArray<{t}, 1> _raw_{v}" for t, v in inputs + outputs]
                       + ["CIndexer<1> _ind"])
    loads = " ".join(f"const {t} {v} = _raw_{v}[_ind.get()];" for t, v in inputs)
    stores = " ".join(f"{t} &{v} = _raw_{v}[_ind.get()];" for t, v in outputs)
    return (f"#include <cupy/carray.cuh>\n"
            f"typedef {FLOAT_TYPES[dtype]} T;\n"
            f'extern "C" __global__ void {name}({params}) {{\n'
            f"  CUPY_FOR(i, _ind.size()) {{\n"
            f"    _ind.set(i);\n"
            f"    {loads} {stores}\n"
            f"    {operation};\n"
            f"  }}\n"
            f"}}\n")


def include_options():
    """-I options for CuPy's headers and, where pip installed them, CUDA's."""
    import cupy
    options = [f"-I{Path(cupy.__file__).parent / '_core' / 'include'}"]
    try:
        import nvidia.cuda_runtime
        options.append(f"-I{Path(list(nvidia.cuda_runtime.__path__)[0]) / 'include'}")
    except ImportError:
        pass
    return options


def compile_with_nvrtc(source, arch, options):
    """Compile with NVRTC; returns None on success, else the compiler's log."""
    from cupy.cuda import nvrtc
    program = nvrtc.createProgram(source, "kernel.cu", [], [])
    try:
        nvrtc.compileProgram(program, [f"-arch={arch}", "--std=c++17", *options])
    except nvrtc.NVRTCError:
        return nvrtc.getProgramLog(program).strip() or "compilation failed"
    finally:
        nvrtc.destroyProgram(program)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="compute_90",
                        help="virtual architecture to compile for (compute_90: H100/H200)")
    args = parser.parse_args(argv)
    try:
        from cupy.cuda import nvrtc
        major, minor = nvrtc.getVersion()
        options = include_options()
    except Exception as exc:                               # noqa: BLE001
        print(f"NVRTC cannot be loaded ({type(exc).__name__}: {exc}).\n"
              "Install CuPy and the NVRTC library: pip install cupy-cuda12x "
              "nvidia-cuda-nvrtc-cu12")
        return 2
    print(f"NVRTC {major}.{minor}, -arch={args.arch}")
    failures = 0
    for label, kind, details in kernel_sources():
        if kind == "raw":
            builds = [(label, details[0])]
        else:
            builds = [(f"{label} [{dtype}]", elementwise_source(*details, dtype))
                      for dtype in FLOAT_TYPES]
        for name, source in builds:
            log = compile_with_nvrtc(source, args.arch, options)
            print(f"  {'OK  ' if log is None else 'FAIL'} {name}")
            if log is not None:
                failures += 1
                print("       " + log.replace("\n", "\n       "))
    print(f"{failures} kernel(s) failed to compile" if failures else "every kernel compiles")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
