"""The comparison and its feedback, on small hand-made examples."""

import numpy as np

from autograder.compare import FLOAT64, Tolerance, compare, generic_hint


def test_equal_arrays_match():
    a = np.linspace(0, 1, 5)
    assert compare(a, a.copy()) is None
    assert compare(a, a + 1e-12) is None


def test_shape_mismatch_names_both_shapes_and_hints_transpose():
    exp = np.zeros((2, 3))
    diff = compare(exp, np.zeros((3, 2)))
    assert diff.kind == "shape" and "(3, 2)" in diff.text and "(2, 3)" in diff.text
    assert "transposed" in generic_hint(diff)


def test_dtype_mismatch():
    diff = compare(np.zeros(3), np.zeros(3, dtype=np.float32))
    assert diff.kind == "dtype" and "float32" in diff.text
    assert "float32" in generic_hint(diff)
    promoted = compare(np.zeros(2, dtype=np.float32), np.zeros(2))
    assert "np.sqrt(d)" in generic_hint(promoted)
    counted = compare(np.array(12, dtype=np.int64), np.array(12.0))
    assert counted.kind == "dtype" and "whole number" in generic_hint(counted)
    assert compare(np.zeros(3), np.zeros(3, dtype=np.float32), Tolerance(check_dtype=False)) is None
    booleans = compare(np.zeros(3), np.zeros(3, dtype=bool))
    assert "boolean" in generic_hint(booleans) and "//" not in generic_hint(booleans)
    integers = compare(np.zeros(3), np.zeros(3, dtype=np.int64))
    assert "//" in generic_hint(integers)


def test_an_extra_axis_of_length_one_is_named_before_the_entry_count():
    kept = compare(np.zeros((4, 6)), np.zeros((4, 6, 1)))
    assert "keepdims" in generic_hint(kept)
    dropped = compare(np.zeros((5, 1)), np.zeros(5))
    assert "keepdims" in generic_hint(dropped)
    assert "reshape" in generic_hint(compare(np.zeros((4, 6)), np.zeros((6, 4, 1))))


def test_nan_is_reported_with_its_position():
    exp = np.ones((2, 2))
    got = exp.copy()
    got[1, 0] = np.nan
    diff = compare(exp, got)
    assert diff.kind == "nonfinite" and "[1, 0]" in diff.text and "1 NaN" in diff.text


def test_worst_entry_and_errors_are_named():
    exp = np.array([1.0, 2.0, 3.0])
    got = np.array([1.0, 2.5, 3.0])
    diff = compare(exp, got)
    assert "1 of 3 entries differ" in diff.text
    assert "worst at [1]: got 2.5, expected 2" in diff.text
    assert "max abs error 0.5" in diff.text


def test_constant_factor_and_sign_hints():
    exp = np.array([1.0, -2.0, 0.5])
    assert "4 times" in generic_hint(compare(exp, 4 * exp))
    assert "opposite sign" in generic_hint(compare(exp, -exp))
    assert generic_hint(compare(exp, 1.00001 * exp)) is None      # an eps left out, not a factor


def test_a_single_number_gets_the_factor_hint_only_for_a_count_or_its_square_root():
    assert "8 times" in generic_hint(compare(np.array(0.3), np.array(2.4)))
    assert "0.125 times" in generic_hint(compare(np.array(0.3), np.array(0.0375)))
    assert "2.82843 times" in generic_hint(compare(np.array(1.5), np.array(1.5 * 8 ** 0.5)))
    assert "opposite sign" in generic_hint(compare(np.array(0.7), np.array(-0.7)))
    assert generic_hint(compare(np.array(1.0), np.array(1.98415))) is None   # any other number
    assert generic_hint(compare(np.array(0.5), np.array(0.498071))) is None
    # at 1e-6 relative, every number above a million is "close to a whole number"
    assert generic_hint(compare(np.array(1e-4), np.array(4605.03))) is None


def test_none_hints_missing_return():
    diff = compare(np.zeros(2), None)
    assert diff.kind == "type" and "return" in generic_hint(diff)
    inner = compare({"cache": (np.zeros(2), np.ones(2))}, {"cache": (np.zeros(2), None)})
    assert "cache[1] is None" in generic_hint(inner) and "`return`" not in generic_hint(inner)


def test_nested_structures_report_the_path():
    exp = {"loss": np.array(1.0), "grads": [np.zeros(2), np.ones(2)]}
    got = {"loss": np.array(1.0), "grads": [np.zeros(2), np.zeros(2)]}
    diff = compare(exp, got)
    assert diff.path == "grads[1]"


def test_lists_of_numbers_are_accepted_as_arrays():
    assert compare(np.array([1.0, 2.0]), [1.0, 2.0]) is None


def test_tolerance_is_relative_and_absolute():
    tol = Tolerance(rtol=1e-3, atol=0)
    assert compare(np.array([1000.0]), np.array([1000.5]), tol) is None
    assert compare(np.array([1000.0]), np.array([1002.0]), tol) is not None
    assert compare(np.array([0.0]), np.array([1e-11]), FLOAT64) is None


def test_infinities_must_agree_in_sign():
    assert compare(np.array([np.inf]), np.array([np.inf])) is None
    assert compare(np.array([np.inf]), np.array([-np.inf])) is not None


def test_infinities_expected_in_other_places_are_named_as_such():
    exp = np.array([[1.0, -np.inf, 0.5], [-np.inf, 2.0, -np.inf]])
    got = exp.copy()
    got[0, 1], got[1, 1] = 0.3, -np.inf          # one removed entry kept, one kept entry removed
    diff = compare(exp, got)
    assert diff.kind == "inf_placement"
    assert "1 Inf where a finite value is expected, 1 finite where Inf is expected" in diff.text
    assert "first at [0, 1]: got 0.3, expected -inf" in diff.text
    assert "on purpose" in generic_hint(diff) and "overflow" not in generic_hint(diff)
    unexpected = compare(np.ones(2), np.array([1.0, np.inf]))   # no Inf expected: an overflow
    assert unexpected.kind == "nonfinite" and "overflow" in generic_hint(unexpected)


def test_values_that_look_equal_at_six_digits_get_more():
    diff = compare(np.array([-0.4999775]), np.array([-0.4999780]))
    assert "got -0.499978" in diff.text and "expected -0.4999775" in diff.text


def test_dict_keys_that_differ_are_named_missing_and_unexpected():
    expected = {f"layers.{i}.W": np.zeros(2) for i in range(12)} | {"final.b": np.zeros(2)}
    got = {f"layers.{i}.W": np.zeros(2) for i in range(12)} | {"pooler.b": np.zeros(2)}
    diff = compare(expected, got)
    assert diff.kind == "keys"
    assert diff.text == "result: the keys differ: missing ['final.b']; unexpected ['pooler.b']"
    many = compare({str(i): 1 for i in range(20)}, {})
    assert "missing ['0', '1', " in many.text and "and 12 more]" in many.text


def test_a_tuple_of_arrays_where_one_array_belongs_is_a_type_difference():
    diff = compare(np.zeros((3, 5)), (np.zeros((3, 5)), np.ones((3, 5))))
    assert diff.kind == "type" and "a tuple of 2" in diff.text
    assert compare(np.arange(3.0), [0.0, 1.0, 2.0]) is None        # numbers are still fine


def test_a_list_where_a_float32_array_belongs_is_named_as_a_list():
    diff = compare(np.zeros(3, dtype=np.float32), [0.0, 0.0, 0.0])
    assert diff.kind == "dtype" and "a list (read as float64)" in diff.text
    assert generic_hint(diff).startswith("return a NumPy array, not a list")


def test_differences_at_float32_rounding_get_the_float32_hint():
    """A float64 result that went through float32 somewhere differs from the expected one by
    about 1e-7 of its values: too much for a gradient check, and the hint says where to look."""
    exp = np.random.default_rng(0).normal(size=(6, 5))
    tight = Tolerance(rtol=1e-9, atol=1e-12)
    via_float32 = exp.astype(np.float32).astype(np.float64)
    assert "float32's rounding" in generic_hint(compare(exp, via_float32, tight))
    assert generic_hint(compare(exp, exp * (1 + 1e-4), tight)) is None   # a real difference
    # as small, but not float32 numbers: an eps used otherwise, say, not float32
    assert generic_hint(compare(exp, exp * (1 + 1e-7), tight)) is None
    assert "float32's rounding" not in (generic_hint(compare(exp.astype(np.float32),
                                                           exp.astype(np.float32) * 1.1)) or "")
