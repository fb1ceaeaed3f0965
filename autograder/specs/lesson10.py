"""Lesson 10 - Fine-tuning: exercise specs.

The metrics are compared exactly with the reference, which matches scikit-learn
(``tests/test_lesson10.py`` checks that on random labels). ``stratified_subset``
draws at random, and any order of draws is correct, so it is graded by what every
correct answer shares: the size, the count of each class, distinct sorted indices,
the same subset for the same seed and another one for another seed.
"""

import numpy as np

from solutions import finetuning

from ..spec import Case, Exercise, Lesson, Mistake, returns

# --------------------------------------------------------------------------- predictions


def _prediction_cases(rng):
    ties = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.5, 0.5, 0.5], [3.0, -1.0, 3.0]])
    return [
        Case("N=6 examples, C=3 classes", {"logits": rng.normal(size=(6, 3))}),
        Case("batch of one, C=2", {"logits": rng.normal(size=(1, 2))}),
        Case("square: N=C=4", {"logits": rng.normal(scale=2.0, size=(4, 4))}),
        Case("huge logits (±1000)", {"logits": rng.normal(scale=1000.0, size=(5, 3))}),
        Case("ties: the first largest wins", {"logits": ties}),
        Case("float32, N=10, C=2", {"logits": rng.normal(size=(10, 2)).astype(np.float32)}),
        Case("N=3, C=7", {"logits": rng.normal(size=(3, 7))}),
    ]


_PREDICTIONS_TEMPLATE = """def predictions_from_logits(logits):
    predicted = {predicted}
    confidence = {confidence}
    return predicted, confidence
"""


def _predictions_mistake(**parts):
    defaults = {"predicted": "np.argmax(logits, axis=-1)",
                "confidence": "softmax(logits, axis=-1).max(axis=-1)"}
    return _PREDICTIONS_TEMPLATE.format(**dict(defaults, **parts))


predictions_from_logits = Exercise(
    id="10.predictions_from_logits", symbol="predictions_from_logits", points=1,
    title="predicted classes and their probabilities",
    reference=finetuning.predictions_from_logits, cases=_prediction_cases, run=returns("predicted", "confidence"),
    requires=("01.softmax",),
    mistakes=[
        Mistake("argmax over the examples",
                "the classes are the last axis: np.argmax(logits, axis=-1) gives one class per "
                "example; axis=0 gives one example per class",
                _predictions_mistake(predicted="np.argmax(logits, axis=0)")),
        Mistake("confidence from the logits",
                "a logit is not a probability: the confidence is the largest entry of "
                "softmax(logits), in [1/C, 1]",
                _predictions_mistake(confidence="logits.max(axis=-1)")),
        Mistake("softmax over the examples",
                "normalise each example's scores over its classes: softmax(logits, axis=-1)",
                _predictions_mistake(confidence="softmax(logits, axis=0).max(axis=-1)")),
        Mistake("softmax without the max shift",
                "exp of a logit of 1000 overflows: use the stable softmax of lesson 01",
                _predictions_mistake(confidence="(np.exp(logits) / np.exp(logits).sum(axis=-1, "
                                                "keepdims=True)).max(axis=-1)")),
    ],
)

# --------------------------------------------------------------------------- accuracy


def _label_cases(rng):
    """Pairs (y_true, y_pred) of several sizes and class counts, edge cases included."""
    y = rng.integers(0, 3, size=40)
    skewed = np.where(rng.random(40) < 0.8, 0, y)           # mostly class 0
    return [
        Case("N=20, two classes", {"y_true": rng.integers(0, 2, size=20),
                                   "y_pred": rng.integers(0, 2, size=20)}),
        Case("N=1, right", {"y_true": np.array([1]), "y_pred": np.array([1])}),
        Case("N=1, wrong", {"y_true": np.array([0]), "y_pred": np.array([1])}),
        Case("all right, 5 classes", {"y_true": y + 2, "y_pred": y + 2}),
        Case("imbalanced: mostly class 0, predicted 0 every time",
             {"y_true": skewed, "y_pred": np.zeros(40, dtype=np.int64)}),
        Case("N=50, 5 classes", {"y_true": rng.integers(0, 5, size=50),
                                 "y_pred": rng.integers(0, 5, size=50)}),
    ]


accuracy = Exercise(
    id="10.accuracy", symbol="accuracy", points=1,
    title="accuracy",
    reference=finetuning.accuracy, cases=_label_cases,
    mistakes=[
        Mistake("the number right",
                "divide by the number of examples: accuracy is a share, in [0, 1]",
                "def accuracy(y_true, y_pred):\n"
                "    return int(np.sum(y_true == y_pred))\n"),
        Mistake("the error rate", "accuracy is the share of *right* predictions: y_true == y_pred",
                "def accuracy(y_true, y_pred):\n"
                "    return float(np.mean(y_true != y_pred))\n"),
        Mistake("a percentage", "return a share in [0, 1], not a percentage",
                "def accuracy(y_true, y_pred):\n"
                "    return float(100 * np.mean(y_true == y_pred))\n"),
        Mistake("balanced accuracy",
                "this is the mean of the classes' recalls (balanced accuracy); accuracy counts "
                "every example once: np.mean(y_true == y_pred)",
                "def accuracy(y_true, y_pred):\n"
                "    classes = np.unique(y_true)\n"
                "    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))\n"),
    ],
)

# --------------------------------------------------------------------------- confusion matrix


def _confusion_cases(rng):
    return [
        Case("N=30, C=3", {"y_true": rng.integers(0, 3, size=30),
                           "y_pred": rng.integers(0, 3, size=30), "num_classes": 3}),
        Case("N=1, C=2", {"y_true": np.array([0]), "y_pred": np.array([1]), "num_classes": 2}),
        Case("the same (true, predicted) pair 6 times",
             {"y_true": np.full(6, 2), "y_pred": np.full(6, 1), "num_classes": 3}),
        Case("C=5, classes 3 and 4 never occur",
             {"y_true": rng.integers(0, 3, size=25), "y_pred": rng.integers(0, 3, size=25),
              "num_classes": 5}),
        Case("everything predicted as class 0", {"y_true": rng.integers(0, 4, size=20),
                                                 "y_pred": np.zeros(20, dtype=np.int64),
                                                 "num_classes": 4}),
        Case("N=300, C=10", {"y_true": rng.integers(0, 10, size=300),
                             "y_pred": rng.integers(0, 10, size=300), "num_classes": 10}),
    ]


_CONFUSION_TEMPLATE = """def confusion_matrix(y_true, y_pred, num_classes):
    C = {size}
    matrix = np.zeros((C, C), dtype=np.int64)
    {fill}
    return {result}
"""


def _confusion_mistake(**parts):
    defaults = {"size": "num_classes", "fill": "np.add.at(matrix, (y_true, y_pred), 1)",
                "result": "matrix"}
    return _CONFUSION_TEMPLATE.format(**dict(defaults, **parts))


confusion_matrix = Exercise(
    id="10.confusion_matrix", symbol="confusion_matrix", points=2,
    title="the confusion matrix",
    reference=finetuning.confusion_matrix, cases=_confusion_cases,
    mistakes=[
        Mistake("transposed",
                "rows are the true classes and columns the predicted ones (scikit-learn's "
                "convention): matrix[true, predicted]",
                _confusion_mistake(fill="np.add.at(matrix, (y_pred, y_true), 1)")),
        Mistake("repeated pairs counted once",
                "matrix[y_true, y_pred] += 1 adds 1 once per distinct (true, predicted) pair: "
                "fancy indexing does not accumulate repeated indices. Use np.add.at, a loop, "
                "or np.bincount",
                _confusion_mistake(fill="matrix[y_true, y_pred] += 1")),
        Mistake("size from the data",
                "the matrix is (num_classes, num_classes) even when some classes never occur; "
                "y.max() + 1 misses the classes above the largest one seen",
                _confusion_mistake(size="int(max(y_true.max(), y_pred.max())) + 1")),
        Mistake("rows normalised",
                "return the counts (int64); dividing each row by its sum gives the recalls, "
                "a different matrix",
                _confusion_mistake(result="matrix / matrix.sum(axis=1, keepdims=True)")),
    ],
)

# --------------------------------------------------------------------------- precision, recall, F1


def _prf_cases(rng):
    def counts(C, high=20):
        return rng.integers(0, high, size=(C, C))

    never_predicted = counts(3)
    never_predicted[:, 1] = 0
    absent = counts(4)
    absent[2, :] = 0
    no_hit = counts(3) + 1
    no_hit[0, 0] = 0
    return [
        Case("C=3", {"confusion": counts(3)}),
        Case("C=2", {"confusion": counts(2, 50)}),
        Case("class 1 never predicted (a zero column)", {"confusion": never_predicted}),
        Case("class 2 absent from the truth (a zero row)", {"confusion": absent}),
        Case("class 0 never right: precision = recall = 0", {"confusion": no_hit}),
        Case("one class only, C=1", {"confusion": np.array([[7]])}),
        Case("all zero, C=2 (no examples)", {"confusion": np.zeros((2, 2), dtype=np.int64)}),
        Case("C=10", {"confusion": counts(10, 100)}),
    ]


_PRF_TEMPLATE = """def precision_recall_f1(confusion):
    confusion = confusion.astype(np.float64)
    tp = np.diag(confusion)
    def ratio(a, b):
        {ratio}
    precision = ratio(tp, confusion.sum(axis={p_axis}))
    recall = ratio(tp, confusion.sum(axis={r_axis}))
    f1 = {f1}
    return precision, recall, f1
"""


def _prf_mistake(**parts):
    defaults = {"ratio": "return np.divide(a, b, out=np.zeros_like(a), where=b != 0)",
                "p_axis": "0", "r_axis": "1", "f1": "ratio(2 * precision * recall, precision + recall)"}
    return _PRF_TEMPLATE.format(**dict(defaults, **parts))


precision_recall_f1 = Exercise(
    id="10.precision_recall_f1", symbol="precision_recall_f1", points=3,
    title="precision, recall and F1 of every class, no NaN",
    reference=finetuning.precision_recall_f1, cases=_prf_cases,
    mistakes=[
        Mistake("precision and recall swapped",
                "precision divides by the examples *predicted* as c (the column sum, axis=0); "
                "recall by the examples that *are* c (the row sum, axis=1)",
                _prf_mistake(p_axis="1", r_axis="0")),
        Mistake("F1 as the arithmetic mean",
                "F1 is the harmonic mean 2PR / (P + R), which stays low when either is low; "
                "(P + R) / 2 is not",
                _prf_mistake(f1="(precision + recall) / 2")),
        Mistake("division by zero gives NaN",
                "a class never predicted (or never present) makes a 0 / 0: return 0.0 there "
                "(np.divide with where=, or np.where on a safe denominator)",
                _prf_mistake(ratio="return a / b")),
        Mistake("F1 without the factor 2",
                "the harmonic mean of P and R is 2PR / (P + R); without the 2, F1 of a perfect "
                "class would be 0.5",
                _prf_mistake(f1="ratio(precision * recall, precision + recall)")),
    ],
)

# --------------------------------------------------------------------------- averaged scores


def _scores_cases(rng):
    def labels(n, C):
        return rng.integers(0, C, size=n)

    y3 = rng.choice(3, size=60, p=[0.7, 0.2, 0.1])
    noisy3 = np.where(rng.random(60) < 0.6, y3, labels(60, 3))
    y4 = labels(40, 4)
    no_class_3 = np.where(y4 == 3, 0, y4)
    binary = labels(30, 2)
    binary_pred = np.where(rng.random(30) < 0.7, binary, 1 - binary)
    return [
        Case("binary, positive_label=1", {"y_true": binary, "y_pred": binary_pred,
                                          "num_classes": 2, "average": "binary"}),
        Case("binary, positive_label=0", {"y_true": binary, "y_pred": binary_pred,
                                          "num_classes": 2, "average": "binary",
                                          "positive_label": 0}),
        Case("macro, 3 imbalanced classes", {"y_true": y3, "y_pred": noisy3, "num_classes": 3,
                                             "average": "macro"}),
        Case("macro, class 3 never predicted", {"y_true": y4, "y_pred": no_class_3,
                                                "num_classes": 4, "average": "macro"}),
        Case("macro, C=5 but class 4 never occurs", {"y_true": no_class_3, "y_pred": y4,
                                                     "num_classes": 5, "average": "macro"}),
        Case("macro, N=1", {"y_true": np.array([1]), "y_pred": np.array([1]), "num_classes": 2,
                            "average": "macro"}),
        Case("binary, nothing predicted positive", {"y_true": binary,
                                                    "y_pred": np.zeros(30, dtype=np.int64),
                                                    "num_classes": 2, "average": "binary"}),
    ]


_SCORES_TEMPLATE = """def classification_scores(y_true, y_pred, num_classes, average="macro", positive_label=1):
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1 = precision_recall_f1(confusion)
    support = confusion.sum(axis=1)
    if average == "binary":
        k = {positive}
        p, r, f = precision[k], recall[k], f1[k]
    else:
{macro}
    return {{"accuracy": accuracy(y_true, y_pred), "precision": float(p), "recall": float(r),
            "f1": float(f)}}
"""
_MACRO = "        p, r, f = precision.mean(), recall.mean(), f1.mean()"


def _scores_mistake(positive="positive_label", macro=_MACRO):
    return _SCORES_TEMPLATE.format(positive=positive, macro=macro)


classification_scores = Exercise(
    id="10.classification_scores", symbol="classification_scores", points=2,
    title="accuracy, precision, recall and F1: binary and macro-averaged",
    reference=finetuning.classification_scores, cases=_scores_cases,
    requires=("10.accuracy", "10.confusion_matrix", "10.precision_recall_f1"),
    mistakes=[
        Mistake("macro weighted by support",
                "the macro average gives every class the same weight: a plain mean over the "
                "classes (weighting by the number of examples is the 'weighted' average)",
                _scores_mistake(macro="        w = support / support.sum()\n"
                                      "        p, r, f = w @ precision, w @ recall, w @ f1")),
        Mistake("macro F1 from the mean precision and recall",
                "the macro F1 is the mean of the classes' F1 scores, not the harmonic mean "
                "of the macro precision and the macro recall",
                _scores_mistake(macro="        p, r = precision.mean(), recall.mean()\n"
                                      "        f = 2 * p * r / (p + r) if p + r > 0 else 0.0")),
        Mistake("positive_label ignored",
                "with average='binary' report the class positive_label, which is not always 1",
                _scores_mistake(positive="1")),
        Mistake("micro average",
                "pooling every class's counts (the micro average) gives the accuracy three "
                "times; macro averages the per-class scores",
                _scores_mistake(macro="        p = r = f = np.trace(confusion) / confusion.sum()")),
        Mistake("macro over the classes seen only",
                "average over all num_classes classes: a class that never occurs counts as 0 "
                "(scikit-learn does so when given labels=range(num_classes))",
                _scores_mistake(macro="        seen = (support + confusion.sum(axis=0)) > 0\n"
                                      "        p, r, f = precision[seen].mean(), recall[seen].mean(), "
                                      "f1[seen].mean()")),
    ],
)

# --------------------------------------------------------------------------- collator


def run_collator(cls, case):
    """Build one collator and call it on each batch in turn; the examples must not change."""
    collator = cls(*case.args.values(), **case.kwargs)
    batches = case.data["examples"]           # a list of batches: each call's `examples`
    before = [[(np.array(ids), label) for ids, label in batch] for batch in batches]
    outputs = [collator(batch) for batch in batches]
    unchanged = all(np.array_equal(np.asarray(ids), old) and label == old_label
                    for batch, old_batch in zip(batches, before)
                    for (ids, label), (old, old_label) in zip(batch, old_batch))
    return {"batches": outputs, "the examples left as they were": unchanged}


def _examples(rng, lengths, cls=2, sep=3, vocab=30, classes=2):
    """(ids, label) pairs: [CLS] random ids [SEP], ids above the special ones."""
    return [([cls] + rng.integers(5, vocab, size=n - 2).tolist() + [sep],
             int(rng.integers(0, classes))) for n in lengths]


def _collator_cases(rng):
    return [
        Case("4 examples, pad_id=0", {"pad_id": 0},
             data={"examples": [_examples(rng, [5, 9, 3, 6])]}),
        Case("pad_id=7, two batches", {"pad_id": 7},
             data={"examples": [_examples(rng, [4, 8, 2]), _examples(rng, [6, 3])]}),
        Case("max_length=6: long sequences cut, [SEP] kept", {"pad_id": 0}, {"max_length": 6},
             data={"examples": [_examples(rng, [10, 4, 6, 7])]}),
        Case("max_length=32, every sequence shorter", {"pad_id": 0}, {"max_length": 32},
             data={"examples": [_examples(rng, [5, 8, 3])]}),
        Case("batch of one, ids as an array", {"pad_id": 0},
             data={"examples": [[(np.array([2, 11, 12, 3]), 1)]]}),
        Case("ids as arrays, max_length=4: cut arrays too", {"pad_id": 0}, {"max_length": 4},
             data={"examples": [[(np.array([2, 11, 12, 13, 14, 3]), 1),
                                (np.array([2, 9, 3]), 0)]]}),
        Case("no padding needed, 4 classes", {"pad_id": 0},
             data={"examples": [_examples(rng, [6, 6, 6, 6, 6], classes=4)]}),
        Case("max_length=2: only [CLS] [SEP] left", {"pad_id": 0}, {"max_length": 2},
             data={"examples": [_examples(rng, [5, 3])]}),
        Case("BERT's ids ([CLS] 101, [SEP] 102), max_length=5: the last id is kept, whatever it is",
             {"pad_id": 0}, {"max_length": 5},
             data={"examples": [_examples(rng, [9, 4], cls=101, sep=102, vocab=1000)]}),
    ]


_COLLATOR_TEMPLATE = """class ClassificationCollator:
    def __init__(self, pad_id, max_length=None):
        self.pad_id = pad_id
        self.max_length = max_length

    def __call__(self, examples):
        sequences = [list(ids) for ids, _ in examples]
        m = self.max_length
        {truncate}
        input_ids, attention_mask = pad_batch(sequences, {pad}{width})
        labels = np.array([label for _, label in examples], dtype=np.int64)
        return {{"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids),
                "attention_mask": attention_mask, "labels": labels}}
"""
_TRUNCATE = ("if m is not None:\n"
             "            sequences = [s if len(s) <= m else s[:m - 1] + s[-1:] for s in sequences]")


def _collator_mistake(truncate=_TRUNCATE, pad="self.pad_id", width=""):
    return _COLLATOR_TEMPLATE.format(truncate=truncate, pad=pad, width=width)


classification_collator = Exercise(
    id="10.classification_collator", symbol="ClassificationCollator", points=2,
    title="truncate, pad and stack a classification batch",
    reference=finetuning.ClassificationCollator, cases=_collator_cases, run=run_collator,
    requires=("04.pad_batch",),
    mistakes=[
        Mistake("a literal [SEP] id",
                "keep the sequence's own last id (s[-1:]), whatever it is: [SEP] is 3 in the "
                "course's vocabulary but 102 in BERT's",
                _collator_mistake(truncate="if m is not None:\n"
                                           "            sequences = [s if len(s) <= m else "
                                           "s[:m - 1] + [3] for s in sequences]")),
        Mistake("padded with 0",
                "pad with self.pad_id: [PAD] is not id 0 in every vocabulary",
                _collator_mistake(pad="0")),
        Mistake("[SEP] cut off",
                "a truncated sequence must still end with [SEP]: keep its first max_length - 1 "
                "ids and its last one, seq[:max_length - 1] + seq[-1:]",
                _collator_mistake(truncate="if m is not None:\n"
                                           "            sequences = [s[:m] for s in sequences]")),
        Mistake("max_length ignored",
                "cut the sequences longer than max_length: the model cannot read more positions "
                "than it has position embeddings",
                _collator_mistake(truncate="pass")),
        Mistake("always padded to max_length",
                "pad to the longest sequence of the batch (after truncation), not to max_length: "
                "padding costs computation and changes nothing",
                _collator_mistake(width=", max_length=m")),
    ],
)

# --------------------------------------------------------------------------- stratified subset


def run_subset(fn, case):
    """What every correct answer shares: size, class counts, distinct sorted indices, seeding."""
    labels, size, seed = case.args["labels"], case.args["size"], case.data["seed"]
    given = labels.copy()
    first = np.asarray(fn(given, size, np.random.default_rng(seed)))
    left_alone = bool(np.array_equal(given, labels))     # the caller's labels, not a copy
    again = np.asarray(fn(labels.copy(), size, np.random.default_rng(seed)))
    other = np.asarray(fn(labels.copy(), size, np.random.default_rng(seed + 1)))
    if first.ndim != 1 or first.dtype.kind not in "iu" or (
            first.size and (first.min() < 0 or first.max() >= len(labels))):
        return {"the indices (a 1-D int array, each in [0, N))": first}
    return {
        "number of indices": len(first),
        "examples of each class": np.bincount(labels[first], minlength=labels.max() + 1),
        "indices distinct": len(np.unique(first)) == len(first),
        "indices sorted": bool(np.all(np.diff(first) >= 0)),
        "the same subset for the same seed": bool(np.array_equal(first, again)),
        "another subset for another seed": not np.array_equal(first, other),
        "the labels left as they were": left_alone,
    }


def _subset_cases(rng):
    def labels(counts):
        y = np.repeat(np.arange(len(counts)), counts)
        return rng.permutation(y)

    def case(name, counts, size):
        return Case(name, {"labels": labels(counts), "size": size},
                    data={"seed": int(rng.integers(1000))})
    return [
        case("two classes 60/40, 20 kept", [60, 40], 20),
        case("three classes 120/60/20, 33 kept (remainders decide)", [120, 60, 20], 33),
        case("three equal classes, 7 kept (a tie: class 0 first)", [5, 5, 5], 7),
        case("90/10, 15 kept: 13.5 and 1.5, the tie goes to class 0", [90, 10], 15),
        case("size 0", [4, 6], 0),
        case("size N: every example", [30, 10], 40),
        case("four classes, 500 of 2,000", [900, 600, 300, 200], 500),
        case("60/25/15, 7 kept: the leftover place goes to the largest remainder, not the "
             "largest class", [60, 25, 15], 7),
        case("1/1/7, 3 kept: three equal remainders (exact only in integers), class 0 first",
             [1, 1, 7], 3),
    ]


_SUBSET_TEMPLATE = """def stratified_subset(labels, size, rng):
    counts = np.bincount(labels)
    {quotas}
    chosen = []
    for c, q in enumerate(quotas):
        members = np.flatnonzero(labels == c)
        chosen.append({draw})
    return np.sort(np.concatenate(chosen)).astype(np.int64)
"""
_QUOTAS = ("quotas, rest = np.divmod(size * counts, len(labels))\n"
           "    quotas[np.argsort(-rest, kind='stable')[:size - quotas.sum()]] += 1")


def _subset_mistake(quotas=_QUOTAS, draw="rng.choice(members, size=q, replace=False)"):
    return _SUBSET_TEMPLATE.format(quotas=quotas, draw=draw)


stratified_subset = Exercise(
    id="10.stratified_subset", symbol="stratified_subset", points=2,
    title="a few-label subset with the classes' proportions",
    reference=finetuning.stratified_subset, cases=_subset_cases, run=run_subset,
    mistakes=[
        Mistake("the caller's labels sorted in place",
                "leave labels as they are (np.argsort, or a copy, gives the order without "
                "changing them): they are the caller's training labels",
                _subset_mistake(quotas="labels.sort()\n    " + _QUOTAS)),
        Mistake("the same number from every class",
                "stratified means in the classes' proportions: class c gets about "
                "size * n_c / N places, not size / C",
                _subset_mistake(quotas="quotas = np.full(len(counts), size // len(counts))\n"
                                       "    quotas[:size - quotas.sum()] += 1")),
        Mistake("not stratified",
                "a plain random sample gets the proportions only on average; give each class "
                "its quota and draw within the class",
                "def stratified_subset(labels, size, rng):\n"
                "    return np.sort(rng.choice(len(labels), size=size, replace=False)).astype(np.int64)\n"),
        Mistake("each quota rounded",
                "rounding each class's share separately can miss or exceed size: take the floors, "
                "then give the places left to the largest remainders",
                _subset_mistake(quotas="quotas = np.round(size * counts / len(labels)).astype(int)")),
        Mistake("not random",
                "draw the examples of each class at random from rng: the first ones of each "
                "class are the same subset for every seed",
                _subset_mistake(draw="members[:q]")),
        Mistake("remainders compared as floats",
                "compare the remainders exactly, in integers (the remainder of size * n_c "
                "divided by N): as floats, equal remainders can differ in the last bit and "
                "break the tie rule",
                _subset_mistake(quotas="share = size * counts / len(labels)\n"
                                       "    quotas = np.floor(share).astype(int)\n"
                                       "    quotas[np.argsort(-(share - quotas), kind='stable')"
                                       "[:size - quotas.sum()]] += 1")),
        Mistake("the leftover places to the largest classes",
                "the places left over go to the largest *remainders*, size * n_c / N minus its "
                "floor, not to the largest classes",
                _subset_mistake(quotas="quotas = size * counts // len(labels)\n"
                                       "    quotas[np.argsort(-counts, kind='stable')"
                                       "[:size - quotas.sum()]] += 1")),
        Mistake("not sorted",
                "return the indices sorted (np.sort), as the docstring asks",
                _SUBSET_TEMPLATE.format(quotas=_QUOTAS,
                                        draw="rng.choice(members, size=q, replace=False)").replace(
                    "return np.sort(np.concatenate(chosen))", "return np.concatenate(chosen)")),
        Mistake("drawn with replacement",
                "draw without replacement (replace=False): an example must not be picked twice",
                _subset_mistake(draw="rng.choice(members, size=q, replace=True)")),
    ],
)


LESSON = Lesson(
    id="10", slug="10_finetuning", title="Fine-tuning",
    exercises=[predictions_from_logits, accuracy, confusion_matrix, precision_recall_f1,
               classification_scores, classification_collator, stratified_subset],
)
