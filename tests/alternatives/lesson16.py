"""Correct solutions for lesson 16, written differently from the reference."""

ALTERNATIVES = {
    "16.entropy": [
        # with collections.Counter and math.log2
        "from collections import Counter\n\n"
        "def entropy(labels):\n"
        "    n = len(labels)\n"
        "    return float(-sum(c / n * math.log2(c / n) for c in Counter(labels.tolist()).values()))\n",
    ],
    "16.information_gain": [
        # the weighted entropies computed in one loop over the two sides
        "def information_gain(labels, goes_left):\n"
        "    after = 0.0\n"
        "    for side in (goes_left, ~goes_left):\n"
        "        if side.any():\n"
        "            after += side.mean() * entropy(labels[side])\n"
        "    return entropy(labels) - after\n",
    ],
    "16.best_split": [
        # every candidate collected, then the best by (-gain, feature, threshold)
        "def best_split(X, y):\n"
        "    candidates = []\n"
        "    for j in range(X.shape[1]):\n"
        "        v = np.sort(np.unique(X[:, j]))\n"
        "        for t in (v[1:] + v[:-1]) / 2:\n"
        "            candidates.append((information_gain(y, X[:, j] <= t), j, float(t)))\n"
        "    if not candidates:\n"
        "        return None, None, 0.0\n"
        "    top = max(g for g, _, _ in candidates)\n"
        "    if top <= 1e-12:\n"
        "        return None, None, 0.0\n"
        "    g, j, t = min((c for c in candidates if c[0] >= top - 1e-12), key=lambda c: (c[1], c[2]))\n"
        "    return j, t, g\n",
    ],
    "16.predict_tree": [
        # recursive, all the rows of a node at once
        "def predict_tree(tree, X):\n"
        "    if 'label' in tree:\n"
        "        return np.full(len(X), tree['label'], dtype=np.int64)\n"
        "    left = X[:, tree['feature']] <= tree['threshold']\n"
        "    out = np.empty(len(X), dtype=np.int64)\n"
        "    out[left] = predict_tree(tree['left'], X[left])\n"
        "    out[~left] = predict_tree(tree['right'], X[~left])\n"
        "    return out\n",
    ],
    "16.joint_probability": [
        "def joint_probability(network, assignment):\n"
        "    factors = []\n"
        "    for var in network:\n"
        "        parents, table = network[var]\n"
        "        p = table[tuple(assignment[q] for q in parents)]\n"
        "        factors.append(p if assignment[var] is True else 1.0 - p)\n"
        "    return float(np.prod(factors))\n",
    ],
    "16.posterior": [
        # all full assignments, filtered by the evidence
        "def posterior(network, query, evidence):\n"
        "    names = list(network)\n"
        "    yes = no = 0.0\n"
        "    for values in itertools.product((False, True), repeat=len(names)):\n"
        "        a = dict(zip(names, values))\n"
        "        if any(a[k] != v for k, v in evidence.items()):\n"
        "            continue\n"
        "        p = joint_probability(network, a)\n"
        "        if a[query]:\n"
        "            yes += p\n"
        "        else:\n"
        "            no += p\n"
        "    return yes / (yes + no)\n",
    ],
    "16.run_turing_machine": [
        # a list for the tape, extended on either side as the head moves off it
        "def run_turing_machine(transitions, tape, start, halting, max_steps=10_000, blank='_'):\n"
        "    cells = list(tape) or [blank]\n"
        "    head, state, steps = 0, start, 0\n"
        "    while state not in halting and steps < max_steps:\n"
        "        if (state, cells[head]) not in transitions:\n"
        "            break\n"
        "        state, cells[head], move = transitions[(state, cells[head])]\n"
        "        steps += 1\n"
        "        head += 1 if move == 'R' else -1\n"
        "        if head < 0:\n"
        "            cells.insert(0, blank)\n"
        "            head = 0\n"
        "        elif head == len(cells):\n"
        "            cells.append(blank)\n"
        "    return state, ''.join(cells).strip(blank), steps\n",
    ],
}
