"""Where an exercise runs: the CPU (NumPy, PyTorch on the CPU) or a CUDA GPU (CuPy, PyTorch).

The GPU lessons (11 and 12) are graded on any machine. An exercise says what it
can run on:

* ``devices=("cpu",)`` (the default): NumPy code, graded on the CPU.
* ``devices=("cpu", "cuda")``: array-module-agnostic code. It is graded with
  NumPy standing in for CuPy (and PyTorch on the CPU), and on the GPU when the
  grade asks for it (``python -m autograder grade --device cuda``).
* ``devices=("cuda",)``: needs a GPU (a CUDA kernel, CUDA events). Graded on the
  GPU when there is one; elsewhere reported as ``skipped`` with the reason
  "no CUDA GPU", neither passed nor failed, and left out of the total.

An exercise's driver asks this module where it runs (``current()``), which array
module that means (``array_module()``), and moves the case's NumPy arrays there
and the results back (``to_device``, ``to_numpy``). The expected values are
always computed on the CPU, by the NumPy reference, in the grader's own process.
"""

from __future__ import annotations

import functools
import os

import numpy as np

DEVICES = ("cpu", "cuda")
NO_GPU = "no CUDA GPU"

_current = "cpu"


@functools.lru_cache(maxsize=None)
def cuda_available():
    """True when CuPy or PyTorch can reach a CUDA GPU here.

    ``AUTOGRADER_NO_CUDA=1`` hides the GPU (to see how a CPU-only machine grades).
    The answer is computed once per process.
    """
    if os.environ.get("AUTOGRADER_NO_CUDA", "").strip() not in ("", "0"):
        return False
    try:
        import cupy
        if cupy.is_available():
            return True
    except Exception:             # not installed, or installed without a driver
        pass
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def current():
    """The device the running exercise is graded on: "cpu" or "cuda"."""
    return _current


def set_current(name):
    global _current
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    _current = name


def array_module():
    """``cupy`` when grading on the GPU, else ``numpy``."""
    if _current == "cuda":
        import cupy
        return cupy
    return np


def torch_device():
    """The ``torch.device`` name for the current device: "cuda" or "cpu"."""
    return _current


def to_device(value):
    """NumPy arrays (also inside lists, tuples and dicts) moved to the current device's
    array module; anything else unchanged."""
    if _current == "cpu":
        return value
    xp = array_module()
    if isinstance(value, np.ndarray):
        return xp.asarray(value)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v) for k, v in value.items()}
    return value


def to_numpy(value):
    """CuPy arrays and PyTorch tensors (also inside lists, tuples and dicts) as NumPy
    arrays on the host; anything else unchanged. bfloat16 and float16 tensors come
    back as float32 (NumPy has no bfloat16)."""
    module = type(value).__module__.split(".")[0]
    if module == "cupy" and hasattr(value, "get"):
        return value.get()
    if module == "torch" and hasattr(value, "detach"):
        import torch
        tensor = value.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        return tensor.numpy()
    if isinstance(value, (list, tuple)):
        return type(value)(to_numpy(v) for v in value)
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    return value
