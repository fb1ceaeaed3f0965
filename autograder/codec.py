"""Move values between the grader and the child process without pickle.

A value is split into a JSON tree and a set of NumPy arrays saved with
``allow_pickle=False``. Only plain data crosses the boundary: arrays, Python
and NumPy scalars (as 0-d arrays), strings, None, and lists, tuples and dicts
(with string keys) of those. Anything else arrives as ``Opaque`` with its type
name, so the comparison can say what came back instead of crashing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Opaque:
    """Stands for a value that could not be sent: we keep only its type name."""

    type_name: str

    def __repr__(self):
        return f"<a {self.type_name} object>"


def _encode(value, arrays, python_scalars=False):
    if value is None:
        return {"t": "none"}
    if isinstance(value, str):
        return {"t": "str", "v": value}
    if python_scalars and type(value) in (bool, int, float):
        return {"t": "py", "v": value}
    if isinstance(value, (bool, int, float, complex, np.generic)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.kind == "V":
            return {"t": "opaque", "v": f"numpy array of dtype {value.dtype}"}
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"t": "array", "k": key}
    if isinstance(value, (list, tuple)):
        return {"t": type(value).__name__,
                "v": [_encode(v, arrays, python_scalars) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"t": "dict", "v": {k: _encode(v, arrays, python_scalars) for k, v in value.items()}}
    return {"t": "opaque", "v": type(value).__name__}


def _decode(tree, arrays):
    kind = tree["t"]
    if kind == "none":
        return None
    if kind in ("str", "py"):
        return tree["v"]
    if kind == "array":
        return arrays[tree["k"]]
    if kind == "list":
        return [_decode(v, arrays) for v in tree["v"]]
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in tree["v"])
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in tree["v"].items()}
    return Opaque(tree["v"])


def save(value, folder, name, python_scalars=False):
    """Write ``value`` as ``name.json`` and ``name.npz`` inside ``folder``.

    ``python_scalars=True`` keeps Python's bool, int and float as they are (for a job's
    arguments, so that a spawned child gets what a forked one would); by default they
    become 0-d arrays, as results are compared.
    """
    arrays = {}
    tree = _encode(value, arrays, python_scalars)
    np.savez(os.path.join(folder, name + ".npz"), **arrays)
    # The JSON is written last and renamed into place: its presence means the
    # whole value was written.
    tmp = os.path.join(folder, name + ".json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(tree, fh)
    os.replace(tmp, os.path.join(folder, name + ".json"))


def load(folder, name):
    """Read back what ``save`` wrote; raises FileNotFoundError if it never finished."""
    with open(os.path.join(folder, name + ".json"), encoding="utf-8") as fh:
        tree = json.load(fh)
    with np.load(os.path.join(folder, name + ".npz"), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return _decode(tree, arrays)


def normalize(value):
    """The value as it would arrive from the child: scalars as 0-d arrays, unknown types as Opaque."""
    arrays = {}
    return _decode(_encode(value, arrays), arrays)
