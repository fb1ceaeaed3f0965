"""A stand-in for CuPy that runs on the CPU but is as strict as CuPy about host arrays.

No test machine has a GPU, yet lesson 11 claims that the course's NumPy model runs on CuPy
unchanged. What breaks that claim is code that makes a *host* (NumPy) array in the middle of
a computation on device arrays (``np.zeros(shape)`` instead of ``np.zeros_like(x, ...)``, a
NumPy random generator, ``np.add.at``, SciPy's ``erf``): CuPy refuses to mix the two.

``DeviceArray`` is an ``np.ndarray`` subclass that does the same: a NumPy ufunc or function
that gets a device array and a plain NumPy array (other than an index) raises ``TypeError``,
as do ``ufunc.at`` and ufuncs CuPy does not have (SciPy's), exactly where CuPy's
``__array_ufunc__`` / ``__array_function__`` give up. ``installed()`` (a context manager) and
``install(monkeypatch)`` (for tests) put the fake module in ``sys.modules`` as ``cupy`` (and
``cupyx.scipy.special``), so that ``solutions.layers.array_module`` and
``solutions.gpu.get_array_module`` pick it for device arrays.

The grader uses it to grade lesson 11's array-module-agnostic exercises on a machine without
a GPU a second time, on "device" arrays: code that hard-codes NumPy (``np.add.at``, a host
``np.zeros``) fails there as it would on a GPU. The fake module has CuPy's names for every
NumPy function (``cupy.X`` is ``numpy.X`` on device arrays).

It checks where arrays live, not CUDA: kernels, events and speed still need a real GPU.
"""

from __future__ import annotations

import contextlib
import sys
import types

import numpy as np
from scipy import special as scipy_special


class HostDeviceMix(TypeError):
    """A host (NumPy) array met a device array: CuPy would raise here."""


class DeviceArray(np.ndarray):
    """A NumPy array that pretends to live on a GPU (see the module docstring)."""

    __module__ = "cupy"                     # what array_module() looks at

    def get(self):
        """A host copy, as ``cupy.ndarray.get()``."""
        return np.array(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if method == "at":
            raise HostDeviceMix(f"np.{ufunc.__name__}.at does not pass CuPy arrays on to CuPy; "
                                "use xp.add.at with xp the array's module")
        if not hasattr(np, ufunc.__name__) or getattr(np, ufunc.__name__) is not ufunc:
            raise HostDeviceMix(f"{ufunc.__name__} is not a NumPy ufunc (SciPy's?): CuPy "
                                "does not take it over")
        _check(inputs + (out or ()), f"np.{ufunc.__name__}")
        inputs = tuple(_host(x) for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(_host(x) for x in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(result)

    def __array_function__(self, func, types_, args, kwargs):
        _check(_leaves((args, kwargs)), f"np.{func.__name__}")
        result = func(*_host(args), **_host(kwargs))
        return _device(result)


def _leaves(tree):
    if isinstance(tree, (list, tuple)):
        for item in tree:
            yield from _leaves(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from _leaves(item)
    else:
        yield tree


def _check(values, where):
    values = list(values)
    if any(isinstance(v, DeviceArray) for v in values) and \
            any(type(v) is np.ndarray for v in values):
        raise HostDeviceMix(f"{where} got a device array and a host (NumPy) array: CuPy "
                            "refuses to copy implicitly; make the array on the device "
                            "(np.zeros_like(x, ...), xp.zeros(...))")


def _host(tree):
    if isinstance(tree, DeviceArray):
        return tree.view(np.ndarray)
    if isinstance(tree, list):
        return [_host(v) for v in tree]
    if isinstance(tree, tuple):
        return tuple(_host(v) for v in tree)
    if isinstance(tree, dict):
        return {k: _host(v) for k, v in tree.items()}
    return tree


def _device(tree):
    if type(tree) is np.ndarray:
        return tree.view(DeviceArray)
    if isinstance(tree, tuple):
        return tuple(_device(v) for v in tree)
    if isinstance(tree, list):
        return [_device(v) for v in tree]
    return tree


# --------------------------------------------------------------------------- the fake modules

def _refuse_host(values, where):
    """CuPy's functions take device arrays only: a host array among the arguments raises."""
    if any(type(v) is np.ndarray and v.ndim > 0 for v in values):
        raise HostDeviceMix(f"{where} got a host (NumPy) array: CuPy's functions take device "
                            "arrays only; make it on the device (xp.zeros(...), xp.asarray(...))")


def _wrap(func):
    def wrapped(*args, **kwargs):
        _refuse_host(_leaves((args, kwargs)), f"cupy.{func.__name__}")
        return _device(func(*_host(args), **_host(kwargs)))
    wrapped.__name__ = func.__name__
    return wrapped


class _Ufunc:
    """``cupy.add`` and friends: callable, with a working ``.at`` on device arrays."""

    def __init__(self, ufunc):
        self.ufunc = ufunc

    def __call__(self, *args, **kwargs):
        _refuse_host(_leaves((args, kwargs)), f"cupy.{self.ufunc.__name__}")
        return _device(self.ufunc(*_host(args), **_host(kwargs)))

    def __getattr__(self, name):            # reduce, accumulate, outer, ... on device arrays
        return _wrap(getattr(self.ufunc, name))

    def at(self, a, indices, b=None):
        _check([a, indices] + ([] if b is None else [b]), f"cupy.{self.ufunc.__name__}.at")
        self.ufunc.at(_host(a), _host(indices), *([] if b is None else [_host(b)]))


class _Generator:
    """``cupy.random.default_rng(seed)``: draws device arrays."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64):
        return _device(np.asarray(self.rng.random(size, dtype=dtype)))

    def standard_normal(self, size=None, dtype=np.float64):
        return _device(np.asarray(self.rng.standard_normal(size, dtype=dtype)))


def build():
    """The fake ``cupy`` module (and ``cupyx.scipy.special``)."""
    cupy = types.ModuleType("cupy")
    for name in ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like",
                 "full_like", "arange", "where", "exp", "log", "sqrt", "tanh", "maximum",
                 "isfinite", "concatenate", "stack", "matmul", "sum", "mean", "tril"):
        setattr(cupy, name, _wrap(getattr(np, name)))
    cupy.add = _Ufunc(np.add)
    cupy.inf, cupy.float32, cupy.float64, cupy.int64 = np.inf, np.float32, np.float64, np.int64
    cupy.ndarray = DeviceArray

    def array(obj, dtype=None, copy=True):
        return _device(np.array(_host(obj), dtype=dtype, copy=copy))

    def asarray(obj, dtype=None):
        return _device(np.asarray(_host(obj), dtype=dtype))

    def asnumpy(a):
        return np.array(_host(a))

    def get_array_module(*arrays):
        return cupy if any(isinstance(a, DeviceArray) for a in arrays) else np

    cupy.array, cupy.asarray, cupy.asnumpy = array, asarray, asnumpy
    cupy.get_array_module = get_array_module
    cupy.is_available = lambda: True
    cupy.random = types.SimpleNamespace(default_rng=_Generator)
    cupy.cuda = types.SimpleNamespace(get_current_stream=lambda: types.SimpleNamespace(
        synchronize=lambda: None))

    def any_numpy_name(name):               # cupy.X for every other NumPy X, on device arrays
        value = getattr(np, name)           # AttributeError for a name NumPy lacks too
        if isinstance(value, np.ufunc):
            return _Ufunc(value)
        return _wrap(value) if callable(value) and not isinstance(value, type) else value
    cupy.__getattr__ = any_numpy_name

    special = types.ModuleType("cupyx.scipy.special")
    special.erf = _wrap(scipy_special.erf)
    return cupy, special


_MODULE_NAMES = ("cupy", "cupyx", "cupyx.scipy", "cupyx.scipy.special")


def _modules():
    cupy, special = build()
    cupyx = types.ModuleType("cupyx")
    scipy_pkg = types.ModuleType("cupyx.scipy")
    cupyx.scipy, scipy_pkg.special = scipy_pkg, special
    return dict(zip(_MODULE_NAMES, (cupy, cupyx, scipy_pkg, special)))


@contextlib.contextmanager
def installed():
    """``import cupy`` gives the fake inside the block; whatever was there comes back after."""
    saved = {name: sys.modules.get(name) for name in _MODULE_NAMES}
    modules = _modules()
    sys.modules.update(modules)
    try:
        yield modules["cupy"]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def install(monkeypatch):
    """Make ``import cupy`` (and ``cupyx.scipy.special``) give the fake; returns it."""
    modules = _modules()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return modules["cupy"]
