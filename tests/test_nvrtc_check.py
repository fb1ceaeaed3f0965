"""scripts/nvrtc_check.py: lesson 11's CUDA sources are found, and compile where NVRTC is."""

import importlib.util
import sys

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "nvrtc_check.py"


@pytest.fixture(scope="module")
def nvrtc_check():
    spec = importlib.util.spec_from_file_location("nvrtc_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_finds_the_reference_every_mistake_and_every_alternative(nvrtc_check):
    sources = nvrtc_check.kernel_sources()
    cupy = sys.modules.get("cupy")                          # the real one, or none: not the
    assert cupy is None or hasattr(cupy, "ndarray")         # stand-in, which has no ndarray
    kinds = [kind for _, kind, _ in sources]
    assert kinds.count("elementwise") == 5                  # reference, 3 mistakes, 1 alternative
    assert kinds.count("raw") == 6                          # reference, 4 mistakes, 1 alternative
    labels = [label for label, _, _ in sources]
    assert "reference softmax_rows_kernel" in labels
    assert "softmax_rows_kernel, mistake 'no bounds check'" in labels
    raw_reference = dict((label, details) for label, _, details in sources)[
        "reference softmax_rows_kernel"]
    assert "if (row >= n_rows) return;" in raw_reference[0]


def test_an_elementwise_body_gets_the_float_type_and_cupys_loop(nvrtc_check):
    source = nvrtc_check.elementwise_source("T x", "T y", "y = (T)2 * x", "twice", "float64")
    assert "typedef double T;" in source
    assert "const double x = _raw_x[_ind.get()];" in source
    assert "double &y = _raw_y[_ind.get()];" in source
    assert "y = (T)2 * x;" in source and "CUPY_FOR(i, _ind.size())" in source


def _nvrtc_or_skip(nvrtc_check):
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
        return nvrtc_check.include_options()
    except Exception as exc:                               # noqa: BLE001
        pytest.skip(f"NVRTC cannot be loaded here ({type(exc).__name__}); "
                    "pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12")


def test_every_kernel_compiles_and_a_broken_one_does_not(nvrtc_check):
    options = _nvrtc_or_skip(nvrtc_check)
    assert nvrtc_check.main([]) == 0
    broken = nvrtc_check.elementwise_source("T x", "T y", "y = erff2(x)", "broken", "float32")
    log = nvrtc_check.compile_with_nvrtc(broken, "compute_90", options)
    assert log is not None and "erff2" in log
