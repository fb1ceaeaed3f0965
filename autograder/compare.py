"""Compare a learner's value with the expected one and say precisely how they differ.

``compare(expected, got, tol)`` returns None when they match, otherwise a
``Difference`` whose ``text`` a learner can act on: which output, the shape or
dtype that is wrong, where NaN or Inf appeared, or how many entries differ,
the worst one with both values, and the largest absolute and relative errors.
``generic_hint`` then looks for patterns with an obvious cause (transposed,
off by a constant factor, sign flipped, forgot ``return``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from .codec import Opaque


@dataclass(frozen=True)
class Tolerance:
    """Entries match when ``|got - expected| <= atol + rtol * |expected|``."""

    rtol: float = 1e-7
    atol: float = 1e-10
    check_dtype: bool = True


# Used when an exercise does not say otherwise. An expected float32 (or float16) array is
# compared with at least FLOAT32's tolerance, whatever the exercise asks: its last bits depend
# on the order of the operations.
FLOAT64 = Tolerance()
FLOAT32 = Tolerance(rtol=1e-4, atol=1e-6)
GRADIENT = Tolerance(rtol=1e-5, atol=1e-8)   # against a central-difference estimate


@dataclass
class Difference:
    path: str                  # which output: "result", "result[1]", "result['loss']"
    kind: str                  # "type", "length", "keys", "shape", "dtype", "nonfinite",
                               # "inf_placement" (infinities expected, elsewhere), "values"
    text: str
    expected: object = None
    got: object = None


def _fmt(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{float(value):.6g}"
    return repr(value)


def _fmt_apart(got, expected):
    """Both values with enough digits to see that they differ (6 unless they look equal)."""
    for digits in (6, 10, 17):
        a, b = f"{float(got):.{digits}g}", f"{float(expected):.{digits}g}"
        if a != b:
            return a, b
    return a, b


def _index(flat_index, shape):
    if not shape:
        return ""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape)) + "]"


def _describe_type(value):
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}" if value.ndim else f"a scalar ({value.dtype})"
    if isinstance(value, Opaque):
        return f"a {value.type_name}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, str):                      # a driver's sentence, or a wrong string
        return repr(value) if len(value) <= 300 else repr(value[:297] + "...")
    return f"a {type(value).__name__}"


def _as_array(value):
    """Lists and tuples of numbers are accepted where an array is expected (not tuples of
    arrays: a cache (x, y) where x belongs is a different thing, not an array with an axis more)."""
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, np.ndarray) and v.ndim > 0 for v in value):
            return None
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            return None
        return arr if arr.dtype.kind in "biufc" else None
    return value if isinstance(value, np.ndarray) else None


def compare(expected, got, tol: Tolerance = FLOAT64, path: str = "result"):
    """Return None if ``got`` matches ``expected``, else the first Difference found."""
    with np.errstate(all="ignore"):
        return _compare(expected, got, tol, path)


def _compare(expected, got, tol, path):
    if isinstance(expected, np.ndarray):
        return _compare_arrays(expected, got, tol, path)
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return Difference(path, "type", f"{path}: expected a {type(expected).__name__} of "
                              f"{len(expected)} values, got {_describe_type(got)}", expected, got)
        if len(got) != len(expected):
            text = f"{path}: expected {len(expected)} values, got {len(got)}"
            if all(isinstance(v, str) for v in (*expected, *got)):   # token lists: show both
                shown = f": expected {list(expected)!r}, got {list(got)!r}"
                text += shown if len(shown) <= 240 else shown[:237] + "..."
            return Difference(path, "length", text, expected, got)
        for i, (e, g) in enumerate(zip(expected, got)):
            diff = _compare(e, g, tol, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return Difference(path, "type", f"{path}: expected a dict, got {_describe_type(got)}",
                              expected, got)
        if set(got) != set(expected):
            missing = sorted(map(str, set(expected) - set(got)))
            extra = sorted(map(str, set(got) - set(expected)))
            parts = ([f"missing {_listed(missing)}"] if missing else []) + \
                ([f"unexpected {_listed(extra)}"] if extra else [])
            return Difference(path, "keys", f"{path}: the keys differ: {'; '.join(parts)}",
                              expected, got)
        for key in expected:
            if path == "result":
                label = key
            elif " " in path:         # a phrase such as spec.THROUGH_CACHE: "dx from the ..."
                label = f"{key} from {path}"
            else:
                label = f"{path}[{key!r}]"
            diff = _compare(expected[key], got[key], tol, label)
            if diff:
                return diff
        return None
    if isinstance(got, (np.ndarray, list, tuple, dict)):    # `!=` would compare entrywise
        return Difference(path, "type", f"{path}: expected {expected!r}, got {_describe_type(got)}",
                          expected, got)
    if expected != got:
        text = f"{path}: expected {expected!r}, got {got!r}"
        if isinstance(expected, str) and isinstance(got, str) and \
                unicodedata.normalize("NFC", expected) == unicodedata.normalize("NFC", got):
            text += (" (they look alike but are different characters: expected "
                     f"{ascii(expected)}, got {ascii(got)})")
        return Difference(path, "values", text, expected, got)
    return None


def _listed(names, limit=8):
    """``['a', 'b']``, or the first ``limit`` names and how many more."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}" + (f", and {len(names) - limit} more]" if len(names) > limit else "]")


def _compare_arrays(expected, got, tol, path):
    arr = _as_array(got)
    if arr is None:
        what = "a scalar" if expected.ndim == 0 else f"an array of shape {expected.shape}"
        return Difference(path, "type", f"{path}: expected {what}, got {_describe_type(got)}",
                          expected, got)
    given, got = got, arr
    if got.shape != expected.shape:
        return Difference(path, "shape", f"{path}: shape {got.shape}, expected {expected.shape}",
                          expected, got)
    if tol.check_dtype and not _dtype_ok(expected.dtype, got.dtype):
        if isinstance(given, (list, tuple)):            # NumPy chose the dtype, not the learner
            return Difference(path, "dtype", f"{path}: a {type(given).__name__} (read as "
                              f"{got.dtype}) where a {expected.dtype} array is expected",
                              expected, given)
        return Difference(path, "dtype", f"{path}: dtype {got.dtype}, expected {expected.dtype}",
                          expected, got)
    if expected.dtype.kind in "biuSU" and got.dtype.kind in "biuSU":
        wrong = expected != got
        if not np.any(wrong):
            return None
        if expected.ndim == 0:
            return Difference(path, "values", f"{path}: got {_fmt(got.item())}, expected "
                              f"{_fmt(expected.item())}", expected, got)
        first = int(np.flatnonzero(wrong)[0])
        return Difference(path, "values",
                          f"{path}: {int(wrong.sum())} of {expected.size} entries differ; first at "
                          f"{_index(first, expected.shape)}: got {_fmt(got.flat[first])}, expected "
                          f"{_fmt(expected.flat[first])}", expected, got)
    if expected.dtype in (np.float32, np.float16):
        tol = Tolerance(max(tol.rtol, FLOAT32.rtol), max(tol.atol, FLOAT32.atol), tol.check_dtype)
    e = expected.astype(np.complex128 if expected.dtype.kind == "c" else np.float64)
    g = got.astype(e.dtype)
    # NaN and Inf first: their positions must agree exactly.
    bad = (np.isnan(g) != np.isnan(e)) | (np.isinf(g) != np.isinf(e))
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        n_nan = int(np.sum(np.isnan(g) & ~np.isnan(e)))
        n_inf = int(np.sum(np.isinf(g) & ~np.isinf(e)))
        where = f"first at {_index(first, e.shape) or 'the scalar'}: got {_fmt(g.flat[first])}, " \
                f"expected {_fmt(e.flat[first])}"
        if np.any(np.isinf(e)):          # infinities are part of the answer (masked entries, say)
            n_finite = int(np.sum(np.isfinite(g) & np.isinf(e)))
            return Difference(path, "inf_placement",
                              f"{path}: the infinite entries are not where expected: {n_inf} Inf "
                              f"where a finite value is expected, {n_finite} finite where Inf is "
                              f"expected, {n_nan} NaN ({where})", expected, got)
        return Difference(path, "nonfinite",
                          f"{path}: {n_nan} NaN and {n_inf} Inf entries where the expected value "
                          f"is finite ({where})", expected, got)
    finite = np.isfinite(e)
    both_inf_differ = np.isinf(e) & (e != g)          # +Inf where -Inf is expected
    abs_err = np.where(finite, np.abs(g - e), 0.0)
    allowed = tol.atol + tol.rtol * np.abs(np.where(finite, e, 0.0))
    wrong = (abs_err > allowed) | both_inf_differ
    if not np.any(wrong):
        return None
    worst = int(np.argmax(np.where(wrong, abs_err / allowed, -1.0)))
    nonzero = wrong & (np.abs(np.where(finite, e, 0.0)) > 0)
    errors = f"max abs error {float(abs_err.max()):.3g}"
    if np.any(nonzero):
        rel_err = abs_err[nonzero] / np.abs(e[nonzero])
        errors += f", max rel error {float(rel_err.max()):.3g}"
    shown_got, shown_expected = _fmt_apart(g.flat[worst].real, e.flat[worst].real)
    if e.ndim == 0:
        text = f"{path}: got {shown_got}, expected {shown_expected} ({errors})"
    else:
        text = (f"{path}: {int(wrong.sum())} of {e.size} entries differ; worst at "
                f"{_index(worst, e.shape)}: got {shown_got}, expected {shown_expected}; {errors}")
    return Difference(path, "values", text, expected, got)


def _dtype_ok(expected, got):
    if expected.kind == "f":
        return got == expected
    if expected.kind in "iu":
        return got.kind in "iu"
    return expected.kind == got.kind


def generic_hint(diff: Difference):
    """A hint for differences whose cause is usually the same, or None."""
    with np.errstate(all="ignore"):
        return _generic_hint(diff)


def _generic_hint(diff):
    exp, got = diff.expected, diff.got
    if diff.kind == "type" and got is None:
        if diff.path == "result":
            return "your function returned None: did you forget the `return` statement?"
        return f"{diff.path} is None: it is never set, or set from something that returns None"
    if diff.kind == "shape":
        got = np.asarray(got)
        if exp.ndim == 0 and got.size == 1:
            if exp.dtype.kind in "iu":
                return "return a scalar (shape ()), for example np.asarray(n, dtype=np.int64) " \
                       "for a count"
            return "return a scalar (shape ()), for example with float(...) or .item()"
        if got.ndim == exp.ndim and got.shape == exp.shape[::-1] and exp.ndim > 1:
            return "the shape is the expected one reversed: transposed, or the axes swapped?"
        if got.ndim != exp.ndim and [d for d in got.shape if d != 1] == \
                [d for d in exp.shape if d != 1]:
            return "an axis of length 1 too many or too few: keepdims=True, or a [:, None], " \
                   "where it does not belong (or missing where it does)?"
        if got.size == exp.size:
            return "the right number of entries in the wrong shape: check reshape/transpose"
        if got.ndim == exp.ndim - 1 or got.ndim == exp.ndim + 1:
            return "one axis too few or too many: a reduction over the wrong axis, or keepdims?"
        return None
    if diff.kind == "values" and isinstance(exp, str) and isinstance(got, str) and \
            _dtype_name(exp) and _dtype_name(got):  # a driver's "dtypes of every array" entry
        return _dtype_hint(np.dtype(exp), np.dtype(got))
    if diff.kind == "dtype":
        if isinstance(got, (list, tuple)):
            return "return a NumPy array, not a list: a list has no dtype of its own (NumPy reads " \
                   "numbers as float64 or int64), and array code cannot use it"
        return _dtype_hint(exp.dtype, np.asarray(got).dtype)
    if diff.kind == "nonfinite":
        return "NaN or Inf appeared: an overflow in exp, a log of 0, or 0/0; look at this " \
               "case's inputs (huge values? zeros?)"
    if diff.kind == "inf_placement":
        return "this result holds -inf (or inf) on purpose, at the entries that are removed or " \
               "masked: yours marks other entries; check which entries your code selects"
    if diff.kind == "values" and isinstance(exp, np.ndarray) and exp.dtype.kind == "f":
        e = exp.astype(np.float64).ravel()
        g = np.asarray(got, dtype=np.float64).ravel()
        mask = np.abs(e) > 1e-12
        if mask.sum() >= 1 and np.all(np.isfinite(g)):
            ratios = g[mask] / e[mask]
            r = float(np.median(ratios))
            if np.allclose(ratios, r, rtol=1e-6) and np.allclose(g[~mask], 0, atol=1e-9):
                if abs(r + 1) < 1e-6:
                    return "every value has the opposite sign: a sign flipped somewhere"
                # One number is always some multiple of another: name the factor only when it
                # is a count (2, 1/8, ...) or the square root of one, as a sum for a mean is.
                # A factor within 0.1 % of 1 is rounding or an eps, not a missing constant.
                if abs(r - 1) > 1e-3 and r != 0 and (mask.sum() >= 2 or _simple_factor(r)):
                    return (f"every value is {r:.6g} times the expected one: a constant factor "
                            "is missing or extra (a sum instead of a mean? 1/N? a factor 2? a "
                            "scale such as sqrt(d) or 1/sqrt(d)?)")
        # float64 expected, every difference at float32's rounding (2**-24 = 6e-8 relative), and
        # every value one that float32 can hold: computed in float32 (an eps used otherwise
        # also makes differences this small, but not values that are all float32 numbers)
        scale = np.abs(e).max() if e.size else 0.0
        worst = np.abs(g - e).max() / scale if scale > 0 and np.all(np.isfinite(g)) else 0.0
        if exp.dtype == np.float64 and 1e-8 <= worst <= 3e-6 and \
                np.array_equal(g, g.astype(np.float32).astype(np.float64)):
            return ("the differences are as small as float32's rounding (about 1e-7 of the "
                    "values): is something computed in float32 on the way (a float32 tensor or "
                    "array, dtype=np.float32)? This exercise computes in float64")
    return None


def _dtype_name(text):
    try:
        return np.dtype(text).kind in "biuf"
    except TypeError:
        return False


def _dtype_hint(expected, got):
    """A hint for an array of dtype ``got`` where ``expected`` was asked, or None."""
    if expected.kind == "f" and got.kind == "b":
        return "a boolean array where floats are expected: a comparison such as x > 0 " \
               "gives booleans; convert with .astype(x.dtype), or build the result with " \
               "np.zeros and set its entries"
    if expected.kind == "f" and got.kind in "iu":
        return "integer dtype where floats are expected: a // where / belongs, or an " \
               "array started as integers (np.zeros(shape) is float64)"
    if expected.kind in "iu" and got.kind == "f":
        return "a float where a whole number is expected: count in integers (// rather " \
               "than /, int(...) at the end, or an array made with dtype=np.int64)"
    if expected == np.float32 and got == np.float64:
        return "float64 where float32 is expected: a float64 array (np.zeros(shape) without " \
               "dtype=...), or a NumPy scalar such as np.sqrt(d) or mask.sum() (an int64), " \
               "promotes the result (math.sqrt(d) and int(mask.sum()) do not)"
    if expected == np.float64 and got == np.float32:
        return "float32 where float64 is expected: a float32 input, or a dtype=np.float32 " \
               "somewhere, carries through (np.zeros(shape) alone gives float64)"
    return None


def _simple_factor(r):
    """Whether ``|r|``, ``1/|r|`` or their squares are a whole number from 2 to a million,
    to 1e-6 relative (so 4.6e7, which any number is close to at that tolerance, is not)."""
    r = abs(r)
    return any(2 <= round(x) <= 1e6 and abs(x - round(x)) <= 1e-6 * x
               for x in (r, 1 / r, r * r, 1 / (r * r)))
