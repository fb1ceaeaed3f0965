"""Lesson 16 (appendix): the classic models against scipy, scikit-learn and known answers."""

import itertools

import numpy as np
import pytest

from solutions import classic

rng = np.random.default_rng(16)


def test_entropy_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for _ in range(5):
        labels = rng.integers(0, 6, size=50)
        counts = np.bincount(labels)
        assert abs(classic.entropy(labels) - stats.entropy(counts, base=2)) < 1e-12


def test_the_root_split_is_scikit_learns():
    """scikit-learn's tree with criterion="entropy" picks its root split by the same gain."""
    tree_module = pytest.importorskip("sklearn.tree")
    X = rng.normal(size=(120, 5))
    y = ((X[:, 2] > 0.3) ^ (rng.random(120) < 0.1)).astype(np.int64)
    feature, threshold, gain = classic.best_split(X, y)
    fitted = tree_module.DecisionTreeClassifier(criterion="entropy", max_depth=1,
                                                random_state=0).fit(X, y).tree_
    assert feature == fitted.feature[0] == 2
    assert abs(threshold - fitted.threshold[0]) < 1e-6
    n = fitted.n_node_samples
    children_entropy = (n[1] * fitted.impurity[1] + n[2] * fitted.impurity[2]) / n[0]
    assert abs(gain - (fitted.impurity[0] - children_entropy)) < 1e-9


def test_a_truncated_tree_is_the_tree_grown_to_that_depth():
    X = rng.integers(0, 5, size=(80, 4)).astype(float)
    y = (X[:, 0] + X[:, 1] + rng.integers(0, 2, size=80) > 4).astype(np.int64)
    deep = classic.fit_tree(X, y, max_depth=6)
    for depth in range(0, 6):
        grown = classic.fit_tree(X, y, max_depth=depth)
        truncated = classic.truncate_tree(deep, depth)
        np.testing.assert_array_equal(classic.predict_tree(grown, X),
                                      classic.predict_tree(truncated, X))
        assert classic.tree_size(grown) == classic.tree_size(truncated)
    assert np.mean(classic.predict_tree(deep, X) == y) > 0.9


def test_the_alarm_networks_textbook_answers():
    alarm = classic.ALARM_NETWORK
    # Russell and Norvig: P(Burglary | JohnCalls, MaryCalls) = 0.284
    assert abs(classic.posterior(alarm, "Burglary", {"JohnCalls": True, "MaryCalls": True})
               - 0.284) < 5e-4
    assert abs(classic.posterior(alarm, "Burglary", {}) - 0.001) < 1e-12
    # explaining away: an earthquake makes the burglary less likely, given the alarm
    given_alarm = classic.posterior(alarm, "Burglary", {"Alarm": True})
    given_both = classic.posterior(alarm, "Burglary", {"Alarm": True, "Earthquake": True})
    assert given_both < given_alarm / 10
    total = sum(classic.joint_probability(alarm, dict(zip(alarm, values)))
                for values in itertools.product((True, False), repeat=len(alarm)))
    assert abs(total - 1.0) < 1e-12


def test_binary_increment_adds_one_and_the_busy_beaver_writes_four_ones():
    for number in range(0, 130):
        state, tape, _ = classic.run_turing_machine(classic.BINARY_INCREMENT, format(number, "b"),
                                                   "right", {"done"})
        assert state == "done" and int(tape, 2) == number + 1
    assert classic.run_turing_machine(classic.BUSY_BEAVER_2, "", "A", {"H"}) == ("H", "1111", 6)
    forever = {("go", "_"): ("go", "_", "R")}
    assert classic.run_turing_machine(forever, "", "go", set(), max_steps=50) == ("go", "", 50)


def test_a_failure_after_changing_an_input_in_place_says_so():
    """Sorting X's columns in place gives a wrong split; the feedback names the likely cause."""
    from autograder import grader, specs
    source = ("def best_split(X, y):\n"
              "    best = (None, None, 0.0)\n"
              "    for j in range(X.shape[1]):\n"
              "        column = X[:, j]\n"
              "        column.sort()\n"
              "        values = np.unique(column)\n"
              "        for t in (values[:-1] + values[1:]) / 2:\n"
              "            gain = information_gain(y, X[:, j] <= t)\n"
              "            if gain > best[2] + 1e-12:\n"
              "                best = (j, float(t), gain)\n"
              "    return best\n")
    exercise = specs.get_exercise("16.best_split")
    result = grader.grade(exercise, source=source)
    assert result.status == "failed"
    assert "note: your code changed its input `X` in place" in result.message
    # the terminal report shows the warning too, not only check() in a notebook
    from autograder import report
    text = report.table([(exercise.lesson, [result])])
    assert text.count("your code changed its input `X` in place") == 1
    for shown in (report.check_text(result, ""), report.check_html(result, "")):   # once, too
        assert shown.count("your code changed its input `X` in place") == 1
    passing = source.replace("        column = X[:, j]\n        column.sort()\n",
                             "        column = X[:, j].copy()\n").replace(
        "    return best\n", "    X[:] = 0.0\n    return best\n")
    result = grader.grade(exercise, source=passing)        # right answer, then X wiped
    assert result.status == "failed", result.message        # the docstring: X is not modified
    assert "X left as it was: got False, expected True" in result.message
    # where the docstring promises nothing, the right answer passes, with the warning shown
    softmax = specs.get_exercise("01.softmax")
    in_place = ("def softmax(x, axis=-1):\n    x -= x.max(axis=axis, keepdims=True)\n"
                "    np.exp(x, out=x)\n    x /= x.sum(axis=axis, keepdims=True)\n    return x\n")
    result = grader.grade(softmax, source=in_place)
    assert result.status == "passed" and result.warnings
    assert "warning: your code changed its input" in report.table([(softmax.lesson, [result])])
