"""Dataset loaders read installed packages, check what they read, and explain what is missing."""

import builtins

import numpy as np
import pytest

from solutions import data


def test_digits_split_is_deterministic_and_complete():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    a, b = data.load_digits(), data.load_digits()
    assert a["X_train"].shape == (1438, 64) and a["X_test"].shape == (359, 64)
    assert np.array_equal(a["y_test"], b["y_test"])
    assert 0.0 <= a["X_train"].min() and a["X_train"].max() <= 1.0
    assert set(np.unique(a["y_train"])) == set(range(10))


def test_missing_scikit_learn_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(data.MissingSource, match="pip install scikit-learn"):
        data.load_digits()
