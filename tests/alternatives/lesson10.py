"""Correct solutions for lesson 10, written differently from the reference."""

ALTERNATIVES = {
    "10.predictions_from_logits": [
        # after the max shift the top class's exp is 1, so its probability is 1 / sum
        "def predictions_from_logits(logits):\n"
        "    top = logits.max(axis=1, keepdims=True)\n"
        "    confidence = 1.0 / np.exp(logits - top).sum(axis=1)\n"
        "    return logits.argmax(axis=1), confidence\n",
        # the probability of the predicted class, picked by fancy indexing
        "def predictions_from_logits(logits):\n"
        "    predicted = np.argmax(logits, axis=-1)\n"
        "    probabilities = softmax(logits)\n"
        "    return predicted, probabilities[np.arange(len(logits)), predicted]\n",
    ],
    "10.accuracy": [
        "def accuracy(y_true, y_pred):\n"
        "    return np.count_nonzero(np.equal(y_true, y_pred)) / len(y_true)\n",
    ],
    "10.confusion_matrix": [
        # one bincount over the flattened (true, predicted) index
        "def confusion_matrix(y_true, y_pred, num_classes):\n"
        "    flat = np.asarray(y_true) * num_classes + np.asarray(y_pred)\n"
        "    counts = np.bincount(flat, minlength=num_classes * num_classes)\n"
        "    return counts.reshape(num_classes, num_classes).astype(np.int64)\n",
        # a plain loop
        "def confusion_matrix(y_true, y_pred, num_classes):\n"
        "    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)\n"
        "    for t, p in zip(y_true, y_pred):\n"
        "        matrix[t, p] += 1\n"
        "    return matrix\n",
    ],
    "10.precision_recall_f1": [
        # F1 from the counts: 2 tp / (2 tp + fp + fn)
        "def precision_recall_f1(confusion):\n"
        "    c = np.asarray(confusion, dtype=float)\n"
        "    tp = np.diag(c)\n"
        "    fp = c.sum(axis=0) - tp\n"
        "    fn = c.sum(axis=1) - tp\n"
        "    def safe(a, b):\n"
        "        return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)\n"
        "    return safe(tp, tp + fp), safe(tp, tp + fn), safe(2 * tp, 2 * tp + fp + fn)\n",
    ],
    "10.classification_scores": [
        "def classification_scores(y_true, y_pred, num_classes, average=\"macro\", positive_label=1):\n"
        "    scores = np.stack(precision_recall_f1(confusion_matrix(y_true, y_pred, num_classes)))\n"
        "    if average == \"binary\":\n"
        "        chosen = scores[:, positive_label]\n"
        "    else:\n"
        "        chosen = scores.sum(axis=1) / num_classes\n"
        "    names = [\"precision\", \"recall\", \"f1\"]\n"
        "    result = {name: float(value) for name, value in zip(names, chosen)}\n"
        "    result[\"accuracy\"] = accuracy(y_true, y_pred)\n"
        "    return result\n",
    ],
    "10.classification_collator": [
        # padding by hand, without pad_batch
        "class ClassificationCollator:\n"
        "    def __init__(self, pad_id, max_length=None):\n"
        "        self.pad_id, self.max_length = pad_id, max_length\n"
        "\n"
        "    def __call__(self, examples):\n"
        "        rows = []\n"
        "        for ids, _ in examples:\n"
        "            ids = [int(i) for i in ids]\n"
        "            if self.max_length is not None and len(ids) > self.max_length:\n"
        "                ids = ids[:self.max_length - 1] + [ids[-1]]\n"
        "            rows.append(ids)\n"
        "        T = max(len(r) for r in rows)\n"
        "        input_ids = np.array([r + [self.pad_id] * (T - len(r)) for r in rows], dtype=np.int64)\n"
        "        mask = np.array([[1] * len(r) + [0] * (T - len(r)) for r in rows], dtype=np.int64)\n"
        "        return {\"input_ids\": input_ids, \"attention_mask\": mask,\n"
        "                \"token_type_ids\": np.zeros((len(rows), T), dtype=np.int64),\n"
        "                \"labels\": np.array([y for _, y in examples], dtype=np.int64)}\n",
    ],
    "10.stratified_subset": [
        # one permutation of everything, then the first members of each class in that order;
        # the quotas by exact fractions
        "from fractions import Fraction\n"
        "def stratified_subset(labels, size, rng):\n"
        "    n = len(labels)\n"
        "    classes = range(int(labels.max()) + 1)\n"
        "    share = [Fraction(size * int(np.sum(labels == c)), n) for c in classes]\n"
        "    quotas = [int(s) for s in share]\n"
        "    order = sorted(classes, key=lambda c: (-(share[c] - quotas[c]), c))\n"
        "    for c in order[:size - sum(quotas)]:\n"
        "        quotas[c] += 1\n"
        "    shuffled = rng.permutation(n)\n"
        "    keep = [i for c in classes for i in shuffled[labels[shuffled] == c][:quotas[c]]]\n"
        "    return np.array(sorted(keep), dtype=np.int64)\n",
    ],
}
