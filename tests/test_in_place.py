"""Inputs changed in place are reported, including those a driver builds (dout, the cache).

Backward passes get ``dout`` from the case's data and a cache from the reference forward pass,
not from the case's arguments; the grader watches both (``spec.watch``). In a forward or backward
pass (``Exercise.inputs_kept``) a change in place fails the case even with the right values: the
caches keep the inputs, and a residual sends one ``dout`` down two paths, so the layers around it
would get wrong gradients. Elsewhere it is a warning.
"""

from autograder import grader, notebook, specs

RELU_DOUT = "def relu_backward(dout, cache):\n    dout[cache <= 0] = 0\n    return dout\n"
RELU_CACHE = ("def relu_backward(dout, cache):\n    cache[cache <= 0] = 0\n"
              "    return dout * (cache > 0)\n")
# the reference's gradients, with dout scaled in place afterwards: a custom driver's case
WRAPPED = """from solutions import {module} as reference

def {symbol}(dout, cache):
    result = reference.{symbol}(dout.copy(), cache)
    dout *= 2.0
    return result
"""


def _warnings(exercise_id, source):
    result = grader.grade(specs.get_exercise(exercise_id), source=source)
    return result, [w for w in result.warnings if "in place" in w]


def test_a_backward_pass_that_changes_dout_fails_and_says_why():
    result, found = _warnings("03.relu_backward", RELU_DOUT)
    assert result.status == "failed" and result.score == 0   # every case: right values, dout lost
    assert len(found) == 1 and "the upstream gradient it was given" in found[0], found
    assert "residual" in found[0]
    assert "must leave what it is given as it is" in result.message, result.message


def test_a_changed_cache_is_reported_as_the_cache_not_as_the_forward_input_it_holds():
    # relu's cache *is* x: the learner never saw `x`, so the warning names the cache only
    result, found = _warnings("03.relu_backward", RELU_CACHE)
    assert result.status == "failed"
    assert len(found) == 1 and "the cache it was given" in found[0], found


def test_a_forward_pass_that_adds_into_its_input_fails():
    """The trial's case: `x += sublayer_out` gives the right output, but x is the array the
    attention's cache keeps, so the block's gradients came out wrong with full marks."""
    source = ("def add_layernorm_forward(x, sublayer_out, gamma, beta, eps=1e-12):\n"
              "    x += sublayer_out\n"
              "    return layernorm_forward(x, gamma, beta, eps)\n")
    result, found = _warnings("06.add_layernorm_forward", source)
    assert result.status == "failed", result.message
    assert any("`x`" in w for w in found), found


def test_outside_forward_and_backward_passes_a_change_in_place_is_a_warning():
    source = ("def softmax(x, axis=-1):\n"
              "    x -= x.max(axis=axis, keepdims=True)\n"
              "    np.exp(x, out=x)\n"
              "    x /= x.sum(axis=axis, keepdims=True)\n"
              "    return x\n")
    result, found = _warnings("01.softmax", source)
    assert result.status == "passed", result.message
    assert any("`x`" in w for w in found), found


def test_custom_backward_drivers_watch_dout_too():
    for exercise_id, module in (("06.add_layernorm_backward", "transformer"),
                                ("07.bert_backward", "bert")):
        symbol = exercise_id.split(".")[1]
        result, found = _warnings(exercise_id, WRAPPED.format(module=module, symbol=symbol))
        assert result.status == "failed", (exercise_id, result.message)
        assert len(found) == 1 and "upstream gradient" in found[0], (exercise_id, found)


def test_the_reference_backward_passes_change_nothing():
    for exercise_id in ("03.relu_backward", "03.layernorm_backward", "05.attention_backward",
                        "06.encoder_block_backward", "07.bert_backward", "17.lora_backward"):
        exercise = specs.get_exercise(exercise_id)
        result = grader.grade(exercise, source=notebook.solution_source(exercise))
        assert result.status == "passed" and not result.warnings, (exercise_id, result.warnings)


def test_plain_lists_and_dicts_changed_in_place_are_reported_too():
    # padding the caller's lists of ids in place: the right batch, and the caller's data changed
    source = ("def pad_batch(sequences, pad_id, max_length=None):\n"
              "    length = max(len(s) for s in sequences) if max_length is None else max_length\n"
              "    mask = np.array([[1] * len(s) + [0] * (length - len(s)) for s in sequences])\n"
              "    for s in sequences:\n"
              "        if isinstance(s, list):\n"
              "            s.extend([pad_id] * (length - len(s)))\n"
              "    ids = np.array([list(s) + [pad_id] * (length - len(s)) for s in sequences])\n"
              "    return ids.astype(np.int64), mask.astype(np.int64)\n")
    result, found = _warnings("04.pad_batch", source)
    assert any("`sequences`" in w for w in found), (result.status, found)
