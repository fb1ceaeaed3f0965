"""Lesson 16 (appendix) - Classic models: a decision tree, a Bayesian network, a Turing machine.

Exercises: ``entropy``, ``information_gain``, ``best_split`` and ``predict_tree``
(with ``fit_tree``: a decision tree grown by information gain, ID3's criterion,
with thresholds on numeric features); ``joint_probability`` and ``posterior`` (exact inference by
enumeration in a network of yes/no variables); ``run_turing_machine``.
"""

from __future__ import annotations

import itertools

import numpy as np

# --------------------------------------------------------------------------- decision trees


def entropy(labels):
    """The entropy of the labels' distribution, in bits: ``-sum_c p_c log2 p_c``.

    Args:
        labels: int array (N,), N >= 0.

    Returns:
        float >= 0: 0 for one class only (or no label at all), 1 for two equal classes,
        log2(C) at most.
    """
    if len(labels) == 0:
        return 0.0
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(np.sum(p * np.log2(1 / p)))         # every term >= 0: no -0.0 for one class


def information_gain(labels, goes_left):
    """How much a yes/no split reduces the labels' entropy.

    ``H(labels) - (n_left / n) H(left) - (n_right / n) H(right)``: the entropy
    before, minus the entropies after, each weighted by its share of the examples.

    Args:
        labels: int array (N,), N >= 1.
        goes_left: bool array (N,): which examples the split sends left.

    Returns:
        float >= 0 (0 when one side is empty).
    """
    n = len(labels)
    left, right = labels[goes_left], labels[~goes_left]
    gain = entropy(labels) - len(left) / n * entropy(left) - len(right) / n * entropy(right)
    return max(0.0, gain)              # rounding leaves -1e-16 where a split gains nothing


def best_split(X, y):
    """The split "feature j <= threshold" with the largest information gain.

    The candidate thresholds of feature j are the midpoints between its
    consecutive distinct values (in increasing order). On a tie (gains within
    1e-12 of each other) the smaller j wins, then the smaller threshold.

    Args:
        X: float array (N, F) (not modified).
        y: int array (N,).

    Returns:
        (feature, threshold, gain): int, float and float; (None, None, 0.0) when
        no split gains anything (the labels are pure, or no feature has two
        distinct values).
    """
    best = (None, None, 0.0)
    for j in range(X.shape[1]):
        values = np.unique(X[:, j])
        for threshold in (values[:-1] + values[1:]) / 2:
            gain = information_gain(y, X[:, j] <= threshold)
            if gain > best[2] + 1e-12:
                best = (j, float(threshold), gain)
    return best


def fit_tree(X, y, max_depth, min_samples=2):
    """Grow a decision tree by information gain (not an exercise: it uses yours).

    A node becomes a leaf when it is pure, has fewer than ``min_samples``
    examples, is at ``max_depth``, or no split gains anything. A leaf predicts its
    most frequent label (the smallest on a tie).

    Returns:
        a nested dict: a leaf ``{"label": int}``, or a node ``{"feature": j,
        "threshold": t, "left": subtree (X[:, j] <= t), "right": subtree,
        "majority": the label a leaf here would give}``.
    """
    labels, counts = np.unique(y, return_counts=True)
    leaf = {"label": int(labels[np.argmax(counts)])}
    if max_depth == 0 or len(y) < min_samples or len(labels) == 1:
        return leaf
    feature, threshold, gain = best_split(X, y)
    if feature is None or gain <= 0:
        return leaf
    left = X[:, feature] <= threshold
    return {"feature": feature, "threshold": threshold,
            "left": fit_tree(X[left], y[left], max_depth - 1, min_samples),
            "right": fit_tree(X[~left], y[~left], max_depth - 1, min_samples),
            "majority": leaf["label"]}


def truncate_tree(tree, depth):
    """The tree cut at ``depth``: what ``fit_tree`` with ``max_depth=depth`` grows (greedy
    growth makes the same choices), without growing it again."""
    if "label" in tree:
        return tree
    if depth == 0:
        return {"label": tree["majority"]}
    return {**tree, "left": truncate_tree(tree["left"], depth - 1),
            "right": truncate_tree(tree["right"], depth - 1)}


def tree_size(tree):
    """(number of leaves, depth) of a tree."""
    if "label" in tree:
        return 1, 0
    (left_leaves, left_depth), (right_leaves, right_depth) = tree_size(tree["left"]), tree_size(tree["right"])
    return left_leaves + right_leaves, 1 + max(left_depth, right_depth)


def predict_tree(tree, X):
    """The label a decision tree gives each row of X.

    Start at the root; at a node go left when ``x[feature] <= threshold``, right
    otherwise; a leaf's ``"label"`` is the prediction.

    Args:
        tree: a nested dict as ``fit_tree`` returns.
        X: float array (N, F).

    Returns:
        int64 array (N,).
    """
    predictions = np.empty(len(X), dtype=np.int64)
    for i, x in enumerate(X):
        node = tree
        while "label" not in node:
            node = node["left"] if x[node["feature"]] <= node["threshold"] else node["right"]
        predictions[i] = node["label"]
    return predictions


# --------------------------------------------------------------------------- Bayesian networks


def joint_probability(network, assignment):
    """The probability of one full assignment: the product of each variable's CPT entry.

    Args:
        network: dict variable -> (parents, table): ``parents`` a tuple of variable
            names, ``table`` a dict mapping each tuple of the parents' values
            (True/False, in the order of ``parents``) to P(variable = True).
        assignment: dict variable -> bool, for every variable of the network.

    Returns:
        float in [0, 1].
    """
    probability = 1.0
    for variable, (parents, table) in network.items():
        p_true = table[tuple(assignment[parent] for parent in parents)]
        probability *= p_true if assignment[variable] else 1.0 - p_true
    return probability


def posterior(network, query, evidence):
    """P(query = True | evidence), exactly, by summing the joint over the hidden variables.

    Every variable that is neither the query nor in the evidence is hidden:
    ``P(q, e) = sum_h P(q, e, h)``, and the answer is
    ``P(q=True, e) / (P(q=True, e) + P(q=False, e))``. The cost doubles with
    every hidden variable; it is exact.

    Args:
        network: as in ``joint_probability``.
        query: the name of a variable not in the evidence.
        evidence: dict variable -> bool (not modified).

    Returns:
        float in [0, 1].
    """
    hidden = [v for v in network if v != query and v not in evidence]
    totals = {}
    for value in (True, False):
        total = 0.0
        for values in itertools.product((True, False), repeat=len(hidden)):
            assignment = {**evidence, query: value, **dict(zip(hidden, values))}
            total += joint_probability(network, assignment)
        totals[value] = total
    return totals[True] / (totals[True] + totals[False])


# --------------------------------------------------------------------------- Turing machines


def run_turing_machine(transitions, tape, start, halting, max_steps=10_000, blank="_"):
    """Run a one-tape Turing machine until it halts or ``max_steps`` steps have run.

    The tape is unbounded both ways and blank except for ``tape``; the head
    starts on its first symbol. A step looks up ``(state, symbol under the
    head)`` in ``transitions``, writes the new symbol, moves the head one cell
    ("L" or "R") and changes state. The machine halts in a state of ``halting``
    (a machine started in one takes no step), or when no transition applies
    (it then stays in its state).

    Args:
        transitions: dict (state, symbol) -> (new state, written symbol, "L" or "R").
        tape: str, the input (may be empty: all blank).
        start: the initial state.
        halting: a set of states in which the machine stops.
        max_steps: int, the most steps to run.
        blank: the blank symbol (one character).

    Returns:
        (state, tape, steps): the final state; the tape from its leftmost to its
        rightmost non-blank cell ("" if all blank); and the number of steps taken.
        A machine still running after ``max_steps`` steps returns its state then.
    """
    cells = dict(enumerate(tape))
    head, state, steps = 0, start, 0
    while state not in halting and steps < max_steps:
        key = (state, cells.get(head, blank))
        if key not in transitions:
            break
        state, symbol, move = transitions[key]
        cells[head] = symbol
        head += 1 if move == "R" else -1
        steps += 1
    written = [i for i, s in cells.items() if s != blank]
    if not written:
        return state, "", steps
    return state, "".join(cells.get(i, blank) for i in range(min(written), max(written) + 1)), steps


# --------------------------------------------------------------------------- examples

# The classic alarm network (after Pearl; the numbers of Russell and Norvig's textbook): a
# burglary or an earthquake may set the alarm off, and two neighbours may call when they hear it.
ALARM_NETWORK = {
    "Burglary": ((), {(): 0.001}),
    "Earthquake": ((), {(): 0.002}),
    "Alarm": (("Burglary", "Earthquake"), {(True, True): 0.95, (True, False): 0.94,
                                           (False, True): 0.29, (False, False): 0.001}),
    "JohnCalls": (("Alarm",), {(True,): 0.90, (False,): 0.05}),
    "MaryCalls": (("Alarm",), {(True,): 0.70, (False,): 0.01}),
}

# Binary increment: walk right to the end of the number, then add 1 from the right, carrying.
BINARY_INCREMENT = {("right", "0"): ("right", "0", "R"), ("right", "1"): ("right", "1", "R"),
                    ("right", "_"): ("carry", "_", "L"), ("carry", "1"): ("carry", "0", "L"),
                    ("carry", "0"): ("done", "1", "L"), ("carry", "_"): ("done", "1", "L")}

# The 2-state busy beaver: from a blank tape, four 1s in six steps, then it halts in H.
BUSY_BEAVER_2 = {("A", "_"): ("B", "1", "R"), ("A", "1"): ("B", "1", "L"),
                 ("B", "_"): ("A", "1", "L"), ("B", "1"): ("H", "1", "R")}
