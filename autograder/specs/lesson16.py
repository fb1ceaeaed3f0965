"""Lesson 16 (appendix) - Classic models: exercise specs.

Bayesian networks and Turing machines are dicts with tuple keys, which do not cross
between processes as they are (the grader's ``codec`` carries string-keyed dicts).
Their cases hold them as rows, and the drivers rebuild the dicts in the process that
runs the learner's code.
"""

import numpy as np

from solutions import classic

from ..spec import Case, Exercise, Lesson, Mistake, named_results, not_modified, returns

# --------------------------------------------------------------------------- entropy


def _entropy_cases(rng):
    def case(name, labels):
        return Case(name, {"labels": np.asarray(labels, dtype=np.int64)})
    return [
        case("two equal classes: 1 bit", [0, 1, 0, 1]),
        case("one class: 0", [3, 3, 3]),
        case("no labels: 0", []),
        case("three classes, uneven", rng.choice(3, size=40, p=[0.6, 0.3, 0.1])),
        case("labels 2, 7 and 100 (not 0..C-1)", [2, 7, 7, 100, 100, 100]),
        case("ten classes, uniform: log2(10)", np.repeat(np.arange(10), 5)),
    ]


entropy = Exercise(
    id="16.entropy", symbol="entropy", points=1, title="entropy in bits",
    reference=classic.entropy, cases=_entropy_cases,
    mistakes=[
        Mistake("natural logarithm",
                "entropy in bits uses log2: np.log2(p); np.log gives nats (times 0.693)",
                "def entropy(labels):\n"
                "    if len(labels) == 0:\n        return 0.0\n"
                "    _, counts = np.unique(labels, return_counts=True)\n"
                "    p = counts / counts.sum()\n"
                "    return float(-np.sum(p * np.log(p)))\n"),
        Mistake("0 log 0 from np.bincount",
                "np.bincount counts classes that never occur as 0, and 0 * log2(0) is NaN: count "
                "only the labels present (np.unique(..., return_counts=True))",
                "def entropy(labels):\n"
                "    if len(labels) == 0:\n        return 0.0\n"
                "    p = np.bincount(labels) / len(labels)\n"
                "    return float(-np.sum(p * np.log2(p)))\n"),
        Mistake("counts, not probabilities",
                "divide the counts by the number of labels: p_c = n_c / N",
                "def entropy(labels):\n"
                "    if len(labels) == 0:\n        return 0.0\n"
                "    _, counts = np.unique(labels, return_counts=True)\n"
                "    return float(-np.sum(counts * np.log2(counts)))\n"),
    ],
)

# --------------------------------------------------------------------------- information_gain


def _gain_cases(rng):
    def case(name, labels, left):
        return Case(name, {"labels": np.asarray(labels, dtype=np.int64),
                           "goes_left": np.asarray(left, dtype=bool)})
    y = rng.integers(0, 3, size=30)
    return [
        case("a perfect split: 1 bit", [0, 0, 1, 1], [True, True, False, False]),
        case("a useless split: 0", [0, 1, 0, 1], [True, True, False, False]),
        case("unequal sides: 2 left, 6 right", [0, 0, 1, 1, 1, 0, 1, 1],
             [True, True, False, False, False, False, False, False]),
        case("an empty side: 0", [0, 1, 1], [True, True, True]),
        case("3 classes, a random split", y, rng.random(30) < 0.3),
        case("one example", [1], [False]),
    ]


information_gain = Exercise(
    id="16.information_gain", symbol="information_gain", points=2,
    title="the entropy a split removes",
    reference=classic.information_gain, cases=_gain_cases, requires=("16.entropy",),
    mistakes=[
        Mistake("the sides not weighted",
                "weight each side's entropy by its share of the examples, n_side / n: a side "
                "with two examples counts less than one with twenty",
                "def information_gain(labels, goes_left):\n"
                "    left, right = labels[goes_left], labels[~goes_left]\n"
                "    return entropy(labels) - (entropy(left) + entropy(right)) / 2\n"),
        Mistake("the entropy after, not the gain",
                "the gain is the entropy *before* minus the weighted entropy after",
                "def information_gain(labels, goes_left):\n"
                "    n = len(labels)\n"
                "    left, right = labels[goes_left], labels[~goes_left]\n"
                "    return len(left) / n * entropy(left) + len(right) / n * entropy(right)\n"),
        Mistake("weights swapped",
                "the left side's entropy is weighted by the left side's share",
                "def information_gain(labels, goes_left):\n"
                "    n = len(labels)\n"
                "    left, right = labels[goes_left], labels[~goes_left]\n"
                "    return entropy(labels) - len(right) / n * entropy(left) - len(left) / n * entropy(right)\n"),
    ],
)

# --------------------------------------------------------------------------- best_split


def _split_cases(rng):
    def case(name, X, y):
        return Case(name, {"X": np.asarray(X, dtype=float), "y": np.asarray(y, dtype=np.int64)})
    X = rng.integers(0, 6, size=(40, 3)).astype(float)
    y = (X[:, 1] > 2).astype(np.int64)
    y[:3] = 1 - y[:3]
    return [
        case("feature 1 decides (3 labels flipped)", X, y),
        case("one feature, 6 points", [[1.0], [2.0], [3.0], [10.0], [11.0], [12.0]],
             [0, 0, 0, 1, 1, 1]),
        case("a tie between features 0 and 1: the smaller wins", [[1, 5], [2, 6], [3, 7], [4, 8]],
             [0, 0, 1, 1]),
        case("a tie between thresholds: the smaller wins", [[1.0], [2.0], [3.0], [4.0]], [0, 1, 1, 0]),
        case("pure labels: nothing to gain", [[1.0, 2.0], [3.0, 4.0]], [1, 1]),
        case("XOR: mixed labels, and no split gains anything", [[0, 0], [0, 1], [1, 0], [1, 1]],
             [0, 1, 1, 0]),
        case("real-valued features, 3 classes", rng.normal(size=(25, 4)), rng.integers(0, 3, size=25)),
        # feature 1 is feature 0 mirrored: the same split, whose two gains differ by 1e-16
        case("a mirrored feature: gains equal but for rounding, the smaller j wins",
             *_mirrored_split()),
    ]


def _mirrored_split():
    y = np.array([0, 0, 1, 2, 1, 2, 0, 0, 2, 2, 0, 0, 2, 1, 1, 0, 2, 1, 2])
    left = np.array([1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0], dtype=bool)
    return np.stack([np.where(left, 0.0, 1.0), np.where(left, 1.0, 0.0)], axis=1), y


# fit_tree hands the same X to both children: a column sorted in place scrambles the rows
run_best_split = not_modified("X", run=returns("feature", "threshold", "gain"))


_SPLIT = """def best_split(X, y):
    best = {start}
    for j in range(X.shape[1]):
        values = np.unique(X[:, j])
        for threshold in {thresholds}:
            gain = information_gain(y, X[:, j] <= threshold)
            if {better}:
                best = (j, float(threshold), gain)
    return best
"""


def _split_mistake(**parts):
    defaults = {"thresholds": "(values[:-1] + values[1:]) / 2", "better": "gain > best[2] + 1e-12",
                "start": "(None, None, 0.0)"}
    return _SPLIT.format(**dict(defaults, **parts))


best_split = Exercise(
    id="16.best_split", symbol="best_split", points=2,
    title="the split with the largest information gain",
    reference=classic.best_split, cases=_split_cases, run=run_best_split,
    requires=("16.entropy", "16.information_gain"),
    mistakes=[
        Mistake("thresholds at the data values",
                "use the midpoints between consecutive distinct values: the same split, but "
                "a threshold halfway between the two sides generalises better",
                _split_mistake(thresholds="values[:-1]")),
        Mistake("the last of equal gains",
                "on a tie keep the first (smaller feature, then smaller threshold): replace "
                "the best only when the gain is larger by more than 1e-12",
                _split_mistake(better="gain >= best[2] - 1e-12 and gain > 0")),
        Mistake("equal gains compared without the tolerance",
                "compare with the docstring's tolerance, gain > best + 1e-12: a split and its "
                "mirror image have the same gain, but rounding can make the later one larger "
                "by 1e-16",
                _split_mistake(better="gain > best[2]")),
        Mistake("a split even when nothing is gained",
                "when no split gains anything (pure labels), return (None, None, 0.0): the node "
                "must become a leaf",
                _split_mistake(start="(0, float(X[0, 0]), 0.0)")),
    ],
)

# --------------------------------------------------------------------------- predict_tree


def _tree_cases(rng):
    stump = {"feature": 0, "threshold": 0.5, "left": {"label": 3}, "right": {"label": 7}}
    deep = {"feature": 1, "threshold": 2.0,
            "left": {"feature": 0, "threshold": -1.0, "left": {"label": 0}, "right": {"label": 1}},
            "right": {"feature": 2, "threshold": 0.0, "left": {"label": 2},
                      "right": {"feature": 0, "threshold": 3.0, "left": {"label": 1},
                                "right": {"label": 0}}}}
    return [
        Case("a stump", {"tree": stump, "X": np.array([[0.1], [0.9], [0.5], [-3.0]])}),
        Case("a leaf only", {"tree": {"label": 4}, "X": rng.normal(size=(3, 2))}),
        Case("three levels, random points", {"tree": deep, "X": rng.normal(scale=3, size=(20, 3))}),
        Case("points exactly on the thresholds (go left)",
             {"tree": deep, "X": np.array([[-1.0, 2.0, 0.0], [3.0, 2.5, 1.0], [3.0, 5.0, 0.0]])}),
    ]


predict_tree = Exercise(
    id="16.predict_tree", symbol="predict_tree", points=1, title="a decision tree's predictions",
    reference=classic.predict_tree, cases=_tree_cases,
    mistakes=[
        Mistake("< instead of <=",
                "a value equal to the threshold goes left: x[feature] <= threshold",
                "def predict_tree(tree, X):\n"
                "    out = np.empty(len(X), dtype=np.int64)\n"
                "    for i, x in enumerate(X):\n"
                "        node = tree\n"
                "        while 'label' not in node:\n"
                "            node = node['left'] if x[node['feature']] < node['threshold'] else node['right']\n"
                "        out[i] = node['label']\n"
                "    return out\n"),
        Mistake("left and right swapped",
                "left holds the examples with x[feature] <= threshold",
                "def predict_tree(tree, X):\n"
                "    out = np.empty(len(X), dtype=np.int64)\n"
                "    for i, x in enumerate(X):\n"
                "        node = tree\n"
                "        while 'label' not in node:\n"
                "            node = node['right'] if x[node['feature']] <= node['threshold'] else node['left']\n"
                "        out[i] = node['label']\n"
                "    return out\n"),
        Mistake("one level only",
                "keep going down until a leaf (a dict with 'label'): a child may be a node again",
                "def predict_tree(tree, X):\n"
                "    if 'label' in tree:\n"
                "        return np.full(len(X), tree['label'], dtype=np.int64)\n"
                "    out = np.empty(len(X), dtype=np.int64)\n"
                "    for i, x in enumerate(X):\n"
                "        child = tree['left'] if x[tree['feature']] <= tree['threshold'] else tree['right']\n"
                "        out[i] = child.get('label', 0)\n"
                "    return out\n"),
    ],
)

# --------------------------------------------------------------------------- Bayesian networks

def rows_from_network(network):
    """A network as plain lists ({var: (parents, [[parent values..., p], ...])}), which crosses."""
    return {var: (list(parents), [[*key, p] for key, p in table.items()])
            for var, (parents, table) in network.items()}


ALARM_ROWS = rows_from_network(classic.ALARM_NETWORK)
# A chain with a collider: Rain -> WetGrass <- Sprinkler, WetGrass -> Slippery.
GARDEN_ROWS = {
    "Rain": ([], [[0.2]]),
    "Sprinkler": ([], [[0.4]]),
    "WetGrass": (["Sprinkler", "Rain"], [[True, True, 0.99], [True, False, 0.9],
                                         [False, True, 0.8], [False, False, 0.0]]),
    "Slippery": (["WetGrass"], [[True, 0.7], [False, 0.05]]),
}


def network_from_rows(rows):
    """A network as ``joint_probability`` takes it, from {var: (parents, rows)}."""
    return {var: (tuple(parents), {tuple(bool(v) for v in row[:-1]): float(row[-1]) for row in table})
            for var, (parents, table) in rows.items()}


def run_joint(fn, case):
    return fn(network_from_rows(case.data["network"]), case.args["assignment"])


def run_posterior(fn, case):
    evidence = case.args["evidence"]
    before = dict(evidence)
    result = fn(network_from_rows(case.data["network"]), case.args["query"], evidence)
    return {"P(query | evidence)": result, "evidence left as it was": evidence == before}


def _joint_cases(rng):
    def case(name, rows, assignment):
        return Case(name, {"assignment": assignment}, data={"network": rows})
    everything = dict.fromkeys(ALARM_ROWS, False)
    return [
        case("alarm network, nothing happens", ALARM_ROWS, everything),
        case("a burglary, the alarm, both call", ALARM_ROWS,
             {"Burglary": True, "Earthquake": False, "Alarm": True, "JohnCalls": True,
              "MaryCalls": True}),
        case("an earthquake without alarm, John calls anyway", ALARM_ROWS,
             {"Burglary": False, "Earthquake": True, "Alarm": False, "JohnCalls": True,
              "MaryCalls": False}),
        case("garden: sprinkler on, no rain, wet, slippery", GARDEN_ROWS,
             {"Rain": False, "Sprinkler": True, "WetGrass": True, "Slippery": True}),
        case("garden: rain, no sprinkler (parents' order matters)", GARDEN_ROWS,
             {"Rain": True, "Sprinkler": False, "WetGrass": True, "Slippery": False}),
    ]


joint_probability = Exercise(
    id="16.joint_probability", symbol="joint_probability", points=2,
    title="one full assignment's probability",
    reference=classic.joint_probability, cases=_joint_cases, run=run_joint,
    mistakes=[
        Mistake("P(True) whatever the value",
                "the table gives P(variable = True); for a variable that is False use 1 - p",
                "def joint_probability(network, assignment):\n"
                "    p = 1.0\n"
                "    for var, (parents, table) in network.items():\n"
                "        p *= table[tuple(assignment[q] for q in parents)]\n"
                "    return p\n"),
        Mistake("parents in the wrong order",
                "the table's keys list the parents' values in the order of `parents`",
                "def joint_probability(network, assignment):\n"
                "    p = 1.0\n"
                "    for var, (parents, table) in network.items():\n"
                "        t = table[tuple(assignment[q] for q in reversed(parents))]\n"
                "        p *= t if assignment[var] else 1 - t\n"
                "    return p\n"),
        Mistake("a sum, not a product",
                "the chain rule multiplies: P(x1, ..., xn) = prod_i P(xi | parents(xi))",
                "def joint_probability(network, assignment):\n"
                "    p = 0.0\n"
                "    for var, (parents, table) in network.items():\n"
                "        t = table[tuple(assignment[q] for q in parents)]\n"
                "        p += t if assignment[var] else 1 - t\n"
                "    return p\n"),
    ],
)


def _posterior_cases(rng):
    def case(name, rows, query, evidence):
        return Case(name, {"query": query, "evidence": evidence}, data={"network": rows})
    return [
        case("P(Burglary | John and Mary call)", ALARM_ROWS, "Burglary",
             {"JohnCalls": True, "MaryCalls": True}),
        case("no evidence: the prior", ALARM_ROWS, "Earthquake", {}),
        case("P(Alarm | Burglary)", ALARM_ROWS, "Alarm", {"Burglary": True}),
        case("P(MaryCalls | JohnCalls)", ALARM_ROWS, "MaryCalls", {"JohnCalls": True}),
        case("explaining away: P(Rain | wet, sprinkler on)", GARDEN_ROWS, "Rain",
             {"WetGrass": True, "Sprinkler": True}),
        case("P(Sprinkler | Slippery is False)", GARDEN_ROWS, "Sprinkler", {"Slippery": False}),
    ]


_POSTERIOR = """def posterior(network, query, evidence):
    hidden = [v for v in network if v != query and v not in evidence]
    totals = {{}}
    for value in (True, False):
        total = 0.0
        for values in itertools.product((True, False), repeat=len(hidden)):
            assignment = {{**evidence, query: value, **{hidden_values}}}
            total += joint_probability(network, assignment)
        totals[value] = total
    return {result}
"""


def _posterior_mistake(**parts):
    defaults = {"hidden_values": "dict(zip(hidden, values))",
                "result": "totals[True] / (totals[True] + totals[False])"}
    return _POSTERIOR.format(**dict(defaults, **parts))


posterior = Exercise(
    id="16.posterior", symbol="posterior", points=3,
    title="exact inference by enumeration",
    reference=classic.posterior, cases=_posterior_cases, run=run_posterior,
    requires=("16.joint_probability",),
    mistakes=[
        Mistake("not normalised",
                "P(q=True, e) is not P(q=True | e): divide by P(e) = P(q=True, e) + P(q=False, e)",
                _posterior_mistake(result="totals[True]")),
        Mistake("hidden variables fixed to False",
                "sum over every value of every hidden variable: itertools.product((True, False), "
                "repeat=len(hidden))",
                _posterior_mistake(hidden_values="dict.fromkeys(hidden, False)")),
        Mistake("hidden variables fixed to True",
                "sum over every value of every hidden variable: itertools.product((True, False), "
                "repeat=len(hidden))",
                _posterior_mistake(hidden_values="dict.fromkeys(hidden, True)")),
        Mistake("the evidence summed over too",
                "the evidence variables keep their observed values: sum only over the variables "
                "that are neither the query nor in the evidence (summing over the evidence gives "
                "the prior P(q))",
                _posterior_mistake(hidden_values="dict(zip([v for v in network if v != query], "
                                                 "values))").replace(
                    "repeat=len(hidden)", "repeat=len(network) - 1")),
        Mistake("the evidence dict changed",
                "build a new assignment dict for each term ({**evidence, query: value, ...}): "
                "writing the query and the hidden values into `evidence` changes the caller's dict",
                "def posterior(network, query, evidence):\n"
                "    hidden = [v for v in network if v != query and v not in evidence]\n"
                "    totals = {}\n"
                "    for value in (True, False):\n"
                "        total = 0.0\n"
                "        for values in itertools.product((True, False), repeat=len(hidden)):\n"
                "            evidence[query] = value\n"
                "            evidence.update(zip(hidden, values))\n"
                "            total += joint_probability(network, evidence)\n"
                "        totals[value] = total\n"
                "    return totals[True] / (totals[True] + totals[False])\n"),
        Mistake("P(evidence | query)",
                "Bayes' rule: the question is P(q | e) = P(q, e) / P(e), not P(q, e) / P(q)",
                _posterior_mistake(result="totals[True] / sum(joint_probability(network, "
                                          "{**{v: False for v in network}, **dict(zip(list(network), "
                                          "vals)), query: True}) for vals in itertools.product("
                                          "(True, False), repeat=len(network)))")),
    ],
)

# --------------------------------------------------------------------------- Turing machines

def rows_from_transitions(transitions):
    """Transitions as rows [state, read, new state, write, move], which cross."""
    return [[state, read, *rule] for (state, read), rule in transitions.items()]


INCREMENT_ROWS = rows_from_transitions(classic.BINARY_INCREMENT)
# Unary addition: "111+11" becomes "11111".
ADD_ROWS = [["scan", "1", "scan", "1", "R"], ["scan", "+", "scan", "1", "R"],
            ["scan", "_", "back", "_", "L"], ["back", "1", "done", "_", "L"]]
BEAVER_ROWS = rows_from_transitions(classic.BUSY_BEAVER_2)
# Runs right forever on a blank tape.
FOREVER_ROWS = [["go", "_", "go", "_", "R"]]


def transitions_from_rows(rows):
    """Transitions as ``run_turing_machine`` takes them, from rows [state, read, new, write, move]."""
    return {(state, read): (new, write, move) for state, read, new, write, move in rows}


def run_turing(fn, case):
    result = fn(transitions_from_rows(case.data["rows"]), case.args["tape"], case.args["start"],
                set(case.data["halting"]), **case.kwargs)
    return named_results(result, ("state", "tape", "steps"))


def _turing_cases(rng):
    def case(name, rows, tape, start, halting, **kwargs):
        return Case(name, {"tape": tape, "start": start}, kwargs,
                    data={"rows": rows, "halting": halting})
    return [
        case("binary increment of 1011", INCREMENT_ROWS, "1011", "right", ["done"]),
        case("binary increment of 111: the carry grows the tape to the left", INCREMENT_ROWS,
             "111", "right", ["done"]),
        case("unary addition 111+11", ADD_ROWS, "111+11", "scan", ["done"]),
        case("the 2-state busy beaver on a blank tape", BEAVER_ROWS, "", "A", ["H"]),
        case("no transition applies: it stops where it is", INCREMENT_ROWS, "1x1", "right", ["done"]),
        case("never halts: stopped after max_steps", FOREVER_ROWS, "", "go", [], max_steps=25),
        case("already in a halting state (which has transitions): no step", INCREMENT_ROWS
             + [["done", "1", "done", "0", "R"], ["done", "0", "done", "1", "R"]], "10", "done",
             ["done"]),
        case("max_steps=0: no step at all", INCREMENT_ROWS, "1011", "right", ["done"],
             max_steps=0),
        # with blank "0": the 0 inside stays, and the cell past the end is read as a blank
        case("blank '0', a blank inside the written tape, one read past the end",
             [["a", "1", "a", "1", "R"], ["a", "0", "b", "0", "R"], ["b", "1", "c", "1", "R"],
              ["c", "0", "h", "1", "R"]], "1101", "a", ["h"], blank="0"),
    ]


_TURING = """def run_turing_machine(transitions, tape, start, halting, max_steps=10_000, blank="_"):
    cells = dict(enumerate(tape))
    head, state, steps = 0, start, 0
    while state not in halting and steps < max_steps:
        key = (state, cells.get(head, blank))
        if key not in transitions:
            break
        state, symbol, move = transitions[key]
        cells[head] = symbol
        head += {move}
        steps += 1
    written = [i for i, s in cells.items() if s != blank]
    if not written:
        return state, "", steps
    return state, {tape_out}, steps
"""


def _turing_mistake(**parts):
    defaults = {"move": "1 if move == 'R' else -1",
                "tape_out": "''.join(cells.get(i, blank) for i in range(min(written), max(written) + 1))"}
    return _TURING.format(**dict(defaults, **parts))


run_turing_machine = Exercise(
    id="16.run_turing_machine", symbol="run_turing_machine", points=2,
    title="a Turing machine simulator",
    reference=classic.run_turing_machine, cases=_turing_cases, run=run_turing,
    mistakes=[
        Mistake("the tape cut at its start",
                "the tape is unbounded on both sides: cells left of the input (negative "
                "positions) can be written too; report from the leftmost non-blank cell",
                _turing_mistake(tape_out="''.join(cells.get(i, blank) for i in range(0, max(written) + 1))"
                                         ".strip(blank)")),
        Mistake("blanks kept at the ends",
                "report the tape from its leftmost to its rightmost non-blank cell",
                _turing_mistake(tape_out="''.join(cells[i] for i in sorted(cells))")),
        Mistake("the halting test after the first step",
                "test for a halting state before each step, the first included: a machine "
                "started in a halting state takes no step",
                _TURING.replace("while state not in halting and steps < max_steps:",
                                "while steps < max_steps:").replace(
                    "        steps += 1\n", "        steps += 1\n        if state in halting:\n"
                                           "            break\n").format(
                    move="1 if move == 'R' else -1",
                    tape_out="''.join(cells.get(i, blank) for i in range(min(written), "
                             "max(written) + 1))")),
        Mistake("L and R swapped",
                "R moves the head one cell right (+1), L one cell left (-1)",
                _turing_mistake(move="-1 if move == 'R' else 1")),
    ],
)


LESSON = Lesson(
    id="16", slug="16_classic_models", title="Appendix: classic models",
    prelude="import itertools\nimport math\n\nimport numpy as np\n",
    exercises=[entropy, information_gain, best_split, predict_tree, joint_probability, posterior,
               run_turing_machine],
)
