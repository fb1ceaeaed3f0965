"""Lesson 08 - Self-supervised objectives: exercise specs.

``mask_tokens`` is random, so it is graded on what any correct masking must
get right rather than on one particular draw:

* statistically: the driver calls the learner's function hundreds of times
  with one generator (as a collator does, epoch after epoch) and measures
  the share of non-special positions selected (expected ``mlm_probability``),
  and among the selected ones the shares turned into [MASK] (0.8), into
  another id (0.1) and left as they were (0.1), plus the share of selected
  positions that were also selected in the previous draw (``mlm_probability``
  when every draw is new; 1 when the mask repeats). Each case makes enough
  draws that at least ``MIN_SELECTED`` positions are selected in expectation,
  so the binomial standard deviation of every share,
  ``sqrt(q (1 - q) / n) <= sqrt(0.16 / 44000) = 0.0019``, is at most
  ``RATE_ATOL / 5``: a correct solution is more than 5 sigma inside the
  tolerance (a chance below one in a million per share), a wrong share of
  0.2 instead of 0.1 is 50 sigma out.
* exactly: counts that must be 0 (sent as floats, which the feedback shows as
  "got 51007, expected 0"; special or padding positions
  selected or changed, labels that are not the original id, unselected
  positions changed, ``input_ids`` modified in place) and whether two calls
  with equally seeded generators agree.

The expected shares are exact for the reference's convention (random ids
drawn from the whole vocabulary, so a random id is the original one, or
[MASK], with probability 1 / vocab_size); every case has vocab_size >= 300, so
a solution that leaves special ids out of the random draws stays well inside
the tolerance too. The collators call ``mask_tokens`` (the reference one, when
graded) with their own generator, so they are compared exactly.
"""

import copy
import math

import numpy as np

from solutions import objectives

from ..compare import Tolerance, _describe_type
from ..spec import Case, Exercise, Lesson, Mistake

# Two vocabulary layouts: the course's (five special ids first, then the 354 words of the
# toy grammar) and BERT's (its special tokens at 0 and 100-103, words from 999 on).
COURSE = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4, "first_word": 5, "vocab_size": 359}
BERT = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103, "first_word": 999,
        "vocab_size": 30522}


def _special_ids(layout):
    return [layout[k] for k in ("pad", "unk", "cls", "sep", "mask")]


def _sentence(rng, layout, n_words, pair=False, unk_rate=0.03):
    """[CLS] w1 ... wn [SEP] (or [CLS] A [SEP] B [SEP]) with a few [UNK] among the words."""
    words = rng.integers(layout["first_word"], layout["vocab_size"], size=n_words)
    words[rng.random(n_words) < unk_rate] = layout["unk"]
    if pair:
        cut = n_words // 2
        return [layout["cls"], *words[:cut], layout["sep"], *words[cut:], layout["sep"]]
    return [layout["cls"], *words, layout["sep"]]


def _sentences(rng, layout, lengths, pair=False):
    return [[int(t) for t in _sentence(rng, layout, n, pair)] for n in lengths]


def _padded(sequences, layout, width):
    ids = np.full((len(sequences), width), layout["pad"], dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = seq
    return ids


# --------------------------------------------------------------------------- special_tokens_mask


def _special_cases(rng):
    course = _padded(_sentences(rng, COURSE, [6, 2, 0]), COURSE, 9)
    bert = _padded(_sentences(rng, BERT, [5, 9, 3], pair=True), BERT, 14)
    return [
        Case("3 padded sentences, the course's ids (0-4 special)",
             {"input_ids": course, "special_ids": _special_ids(COURSE)}),
        Case("sentence pairs, BERT's ids (0, 100, 101, 102, 103)",
             {"input_ids": bert, "special_ids": _special_ids(BERT)}),
        Case("special_ids in another order, as a tuple",
             {"input_ids": bert, "special_ids": (103, 102, 0, 101, 100)}),
        Case("special_ids as an array, [PAD] not among them",
             {"input_ids": course, "special_ids": np.array([2, 3, 4, 1])}),
        Case("no special ids", {"input_ids": course, "special_ids": []}),
        Case("one sequence (1-D)", {"input_ids": np.array(_sentence(rng, BERT, 6)),
                                    "special_ids": _special_ids(BERT)}),
    ]


special_tokens_mask = Exercise(
    id="08.special_tokens_mask", symbol="special_tokens_mask", points=1,
    title="where the special tokens are",
    reference=objectives.special_tokens_mask, cases=_special_cases,
    mistakes=[
        Mistake("ints instead of booleans",
                "return a bool array (np.isin gives one): ~mask and boolean indexing need "
                "booleans, and ~ on an int array gives -1 and -2",
                "def special_tokens_mask(input_ids, special_ids):\n"
                "    return np.isin(input_ids, special_ids).astype(np.int64)\n"),
        Mistake("by position",
                "look at the ids, not at the positions: with padding, [SEP] is not the last "
                "column, and [PAD] and [UNK] are special too",
                "def special_tokens_mask(input_ids, special_ids):\n"
                "    mask = np.zeros(input_ids.shape, dtype=bool)\n"
                "    mask[:, 0] = True\n"
                "    mask[:, -1] = True\n"
                "    return mask\n"),
        Mistake("the smallest ids",
                "special tokens are not always the first ids of the vocabulary: in BERT's, "
                "[CLS] is 101 and [SEP] 102. Test membership in special_ids",
                "def special_tokens_mask(input_ids, special_ids):\n"
                "    return input_ids < len(special_ids)\n"),
        Mistake("only the first special id",
                "compare with every id of special_ids (np.isin(input_ids, special_ids)), not "
                "only the first",
                "def special_tokens_mask(input_ids, special_ids):\n"
                "    return input_ids == special_ids[0]\n"),
    ],
)

# --------------------------------------------------------------------------- mask_tokens

RATE_ATOL = 0.01
MIN_SELECTED = 44_000          # expected selected positions per case: 5 sigma <= RATE_ATOL

SELECTED = "selected: share of the non-special positions"
MASKED = "[MASK]: share of the selected"
RANDOM = "another id: share of the selected"
UNCHANGED = "unchanged: share of the selected"
AGAIN = "selected in the previous draw too: share of the selected"
SPECIAL_SELECTED = "special or padding positions selected (label not -100)"
SPECIAL_CHANGED = "special or padding positions changed in inputs"
WRONG_LABELS = "labels that are not -100 and not the original id"
UNSELECTED_CHANGED = "positions labelled -100 whose input changed"
IN_PLACE = "entries of input_ids changed by the call"
SPECIAL_IN_PLACE = "entries of special_mask changed by the call"
OUT_OF_RANGE = "random replacements outside [0, vocab_size)"
ONE_ID = "calls whose 3 or more random replacements are all one id"
NOT_REPRODUCIBLE = "pairs of calls with equally seeded generators that disagree"
# an input changed in place first: it can make every other count wrong (labels read from ids
# already overwritten, say), and is then the one thing to fix
COUNTS = (IN_PLACE, SPECIAL_IN_PLACE, SPECIAL_SELECTED, SPECIAL_CHANGED, WRONG_LABELS,
          UNSELECTED_CHANGED, OUT_OF_RANGE, ONE_ID, NOT_REPRODUCIBLE)


def _inputs_and_labels(result, shape):
    """The pair (inputs, labels) as integer arrays of the right shape, or a clear error."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"mask_tokens returns the pair (inputs, labels); got {_describe_type(result)}")
    arrays = []
    for name, value in zip(("inputs", "labels"), result):
        value = np.asarray(value)
        if value.shape != shape:
            raise ValueError(f"{name} has shape {value.shape}; expected {shape}, the shape of input_ids")
        if value.dtype.kind not in "iu":
            raise TypeError(f"{name} has dtype {value.dtype}; ids and labels are integers (int64)")
        arrays.append(value)
    return arrays


def run_mask_tokens(mask_tokens, case):
    """Statistics over ``case.data["draws"]`` calls sharing one generator, and exact counts."""
    input_ids = case.args["input_ids"]
    special = case.args["special_mask"]
    mask_id, vocab_size = int(case.args["mask_token_id"]), int(case.args["vocab_size"])
    seed = int(case.data["seed"])

    def call(rng):
        given, given_special = input_ids.copy(), special.copy()
        result = mask_tokens(given, given_special, mask_id, vocab_size, rng, **case.kwargs)
        inputs, labels = _inputs_and_labels(result, input_ids.shape)
        return (inputs, labels, int(np.sum(given != input_ids)),
                int(np.sum(given_special != special)))

    totals = dict.fromkeys(("selected", "masked", "random", "unchanged", "again", "selected_after"), 0)
    counts = dict.fromkeys(COUNTS, 0)
    rng = np.random.default_rng(seed)
    previous = None
    for _ in range(int(case.data["draws"])):
        inputs, labels, changed, special_changed = call(rng)
        selected = labels != -100
        kept = inputs == input_ids
        replaced = inputs[selected & ~kept & (inputs != mask_id)]
        counts[OUT_OF_RANGE] += int(np.sum((replaced < 0) | (replaced >= vocab_size)))
        counts[ONE_ID] += int(replaced.size >= 3 and np.all(replaced == replaced[0]))
        counts[SPECIAL_IN_PLACE] += special_changed
        totals["selected"] += int(np.sum(selected & ~special))
        totals["masked"] += int(np.sum(selected & (inputs == mask_id)))
        totals["unchanged"] += int(np.sum(selected & kept))
        totals["random"] += int(np.sum(selected & ~kept & (inputs != mask_id)))
        if previous is not None:
            totals["again"] += int(np.sum(selected & previous))
            totals["selected_after"] += int(np.sum(selected))
        previous = selected
        counts[SPECIAL_SELECTED] += int(np.sum(selected & special))
        counts[SPECIAL_CHANGED] += int(np.sum(~kept & special))
        counts[WRONG_LABELS] += int(np.sum(selected & (labels != input_ids)))
        counts[UNSELECTED_CHANGED] += int(np.sum(~selected & ~kept))
        counts[IN_PLACE] += changed
    first, second = call(np.random.default_rng(seed + 1)), call(np.random.default_rng(seed + 1))
    counts[NOT_REPRODUCIBLE] = int(not (np.array_equal(first[0], second[0])
                                        and np.array_equal(first[1], second[1])))

    n_labelled = sum(totals[k] for k in ("masked", "random", "unchanged"))
    n_maskable = int(np.sum(~special)) * int(case.data["draws"])
    # the exact counts first: a rule broken outright is reported before any share
    return {**{name: float(count) for name, count in counts.items()},
            SELECTED: totals["selected"] / max(n_maskable, 1),
            MASKED: totals["masked"] / max(n_labelled, 1),
            RANDOM: totals["random"] / max(n_labelled, 1),
            UNCHANGED: totals["unchanged"] / max(n_labelled, 1),
            AGAIN: totals["again"] / max(totals["selected_after"], 1)}


def _mask_expected(case):
    """The exact expectations of the shares (a random id is any given id with prob. 1/V)."""
    p = float(case.kwargs.get("mlm_probability", 0.15))
    hit = 1.0 / int(case.args["vocab_size"])
    return {**dict.fromkeys(COUNTS, 0.0), SELECTED: p, MASKED: 0.8 + 0.1 * hit,
            RANDOM: 0.1 * (1 - 2 * hit), UNCHANGED: 0.1 + 0.1 * hit, AGAIN: p}


def _mask_cases(rng):
    def case(name, sequences, layout, width, p=None):
        ids = _padded(sequences, layout, width)
        special = np.isin(ids, _special_ids(layout))
        probability = 0.15 if p is None else p
        draws = math.ceil(MIN_SELECTED / (probability * np.sum(~special)))
        return Case(f"{name}; {draws} draws",
                    {"input_ids": ids, "special_mask": special, "mask_token_id": layout["mask"],
                     "vocab_size": layout["vocab_size"]},
                    {} if p is None else {"mlm_probability": p},
                    data={"seed": int(rng.integers(2 ** 31)), "draws": draws})

    lengths = [0, 62, *rng.integers(1, 62, size=62)]          # a row of [CLS] [SEP] and padding
    return [
        case("64 sentences padded to 64, the course's ids (vocabulary of 359)",
             _sentences(rng, COURSE, lengths), COURSE, 64),
        case("32 sentence pairs, BERT's ids (vocabulary of 30,522), mlm_probability=0.15",
             _sentences(rng, BERT, rng.integers(4, 44, size=32), pair=True), BERT, 48, 0.15),
        case("mlm_probability=0.3", _sentences(rng, COURSE, rng.integers(2, 30, size=64)),
             COURSE, 32, 0.3),
        case("batch of one, 512 tokens, no padding, mlm_probability=0.5",
             _sentences(rng, BERT, [510]), BERT, 512, 0.5),
        case("mlm_probability=1.0: every non-special token",
             _sentences(rng, COURSE, rng.integers(0, 30, size=32)), COURSE, 32, 1.0),
        case("128 short sentences of 1 to 4 words (no row is sure to get a mask)",
             _sentences(rng, COURSE, rng.integers(1, 5, size=128)), COURSE, 8),
    ]


_MASK_TEMPLATE = """def mask_tokens(input_ids, special_mask, mask_token_id, vocab_size, rng, mlm_probability=0.15):
    shape = input_ids.shape
    selected = {selected}
    to_mask = {to_mask}
    to_random = {to_random}
    random_ids = rng.integers(0, vocab_size, size=shape)
    labels = {labels}
    inputs = {inputs}
    inputs[to_mask] = mask_token_id
    inputs[to_random] = random_ids[to_random]
    return inputs, labels
"""
_MASK_PARTS = {
    "selected": "(rng.random(shape) < mlm_probability) & ~special_mask",
    "to_mask": "selected & (rng.random(shape) < 0.8)",
    "to_random": "selected & ~to_mask & (rng.random(shape) < 0.5)",
    "labels": "np.where(selected, input_ids, -100)",
    "inputs": "input_ids.copy()",
}


def _mask_mistake(**parts):
    return _MASK_TEMPLATE.format(**dict(_MASK_PARTS, **parts))


mask_tokens = Exercise(
    id="08.mask_tokens", symbol="mask_tokens", points=3,
    title="BERT's masking: 15 % selected, then 80/10/10 (graded by statistics)",
    reference=objectives.mask_tokens, cases=_mask_cases, run=run_mask_tokens,
    expected=_mask_expected, tolerance=Tolerance(rtol=0.0, atol=RATE_ATOL), timeout=30.0,
    mistakes=[
        Mistake("special tokens selected",
                "[CLS], [SEP], [PAD] and the other special positions are never selected: "
                "combine the draw with & ~special_mask",
                _mask_mistake(selected="rng.random(shape) < mlm_probability")),
        Mistake("80/10/10 over every token",
                "the 80/10/10 split applies to the selected positions only: the others keep "
                "their token (and their label -100). Combine the second and third draws "
                "with & selected",
                _mask_mistake(to_mask="rng.random(shape) < 0.8",
                              to_random="~to_mask & (rng.random(shape) < 0.5)")),
        Mistake("labels everywhere",
                "labels hold the original id only at the selected positions and -100 "
                "everywhere else, or the model is trained to copy the visible tokens",
                _mask_mistake(labels="input_ids.copy()")),
        Mistake("unchanged ones unlabelled",
                "the selected tokens left unchanged (10 %) are still predicted: their label "
                "is their id. Build labels from the selection, not from what changed",
                _mask_mistake(labels="np.where(selected, input_ids, -100)\n"
                                     "    labels = np.where(selected & ~to_mask & ~to_random, -100, labels)")),
        Mistake("all of the other 20 % random",
                "after the 80 % [MASK], only half of the remaining 20 % get a random id (10 % "
                "of the selected); the other half stays unchanged",
                _mask_mistake(to_random="selected & ~to_mask")),
        Mistake("0.1 of the remaining 20 %",
                "the random 10 % are *half* of the 20 % not masked: draw them with probability "
                "0.5 (= 0.1 / 0.2) among those, not 0.1",
                _mask_mistake(to_random="selected & ~to_mask & (rng.random(shape) < 0.1)")),
        Mistake("the same mask every call",
                "a generator seeded inside the function draws the same mask at every call, "
                "epoch after epoch (static masking): draw from the rng you are given",
                _mask_mistake().replace("    shape = input_ids.shape\n",
                                        "    rng = np.random.default_rng(0)\n"
                                        "    shape = input_ids.shape\n")),
        Mistake("input_ids changed in place",
                "inputs = input_ids is not a copy: writing [MASK] into it changes the "
                "caller's batch. Start from input_ids.copy()",
                _mask_mistake(inputs="input_ids")),
        Mistake("input_ids changed in place, the labels read afterwards",
                "inputs = input_ids is not a copy: writing [MASK] into it changes the caller's "
                "batch, and labels taken from input_ids afterwards hold [MASK] and random ids. "
                "Start from input_ids.copy()",
                _mask_mistake(inputs="input_ids")
                .replace("    labels = np.where(selected, input_ids, -100)\n", "")
                .replace("    return inputs, labels\n",
                         "    labels = np.where(selected, input_ids, -100)\n"
                         "    return inputs, labels\n")),
        Mistake("one random id for the whole batch",
                "draw one random id per position, rng.integers(0, vocab_size, size=shape): "
                "without size= every replaced token of the call gets the same id",
                _mask_mistake().replace("rng.integers(0, vocab_size, size=shape)",
                                        "rng.integers(0, vocab_size)")),
        Mistake("random ids up to vocab_size",
                "ids run from 0 to vocab_size - 1: rng.integers(0, vocab_size, ...) already "
                "excludes its upper end",
                _mask_mistake().replace("rng.integers(0, vocab_size, size=shape)",
                                        "rng.integers(0, vocab_size + 1, size=shape)")),
        Mistake("special_mask changed in place",
                "leave special_mask as it is (it is the caller's, and may serve the next call): "
                "build new boolean arrays instead of writing into it",
                _mask_mistake(selected="(rng.random(shape) < mlm_probability) & ~special_mask\n"
                                       "    special_mask |= selected")),
        Mistake("at least one token per row",
                "select every position independently, with probability mlm_probability: "
                "forcing one mask into rows that drew none raises the share above "
                "mlm_probability on short sentences",
                _mask_mistake(selected="(rng.random(shape) < mlm_probability) & ~special_mask\n"
                                       "    for row in np.flatnonzero(~selected.any(axis=1) & "
                                       "(~special_mask).any(axis=1)):\n"
                                       "        selected[row, np.flatnonzero(~special_mask[row])[0]] "
                                       "= True")),
        Mistake("NumPy's global generator",
                "draw from the rng argument, not from np.random.*: then the same seed gives "
                "the same masks (reproducible runs, resumable training)",
                _mask_mistake(selected="(np.random.random(shape) < mlm_probability) & ~special_mask",
                              to_mask="selected & (np.random.random(shape) < 0.8)",
                              to_random="selected & ~to_mask & (np.random.random(shape) < 0.5)")
                .replace("rng.integers(0, vocab_size, size=shape)",
                         "np.random.randint(0, vocab_size, size=shape)")),
    ],
)

# --------------------------------------------------------------------------- MLMCollator


def run_mlm_collator(MLMCollator, case):
    """Build one collator, call it on each batch in turn (each call is an epoch's batch)."""
    collator = MLMCollator(*case.args.values(), **case.kwargs)
    return _collated(collator, case.data["batches"])


def _collated(collator, batches):
    """Each batch collated, and whether the examples came out as they went in: the same lists
    are collated again in the next epoch."""
    before = copy.deepcopy(batches)
    collated = [collator(batch) for batch in batches]
    return {"the batches": collated, "the examples left as they were": _same(batches, before)}


def _same(now, before):
    """Lists of token lists (or arrays) equal, entry by entry."""
    return len(now) == len(before) and all(
        len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
        for a, b in zip(now, before))


def _collator_cases(rng):
    four = _sentences(rng, COURSE, [5, 11, 2, 8])
    course = (COURSE["pad"], COURSE["mask"], COURSE["vocab_size"], _special_ids(COURSE))
    bert = (BERT["pad"], BERT["mask"], BERT["vocab_size"], _special_ids(BERT))

    def case(name, layout_args, batches, **kwargs):
        return Case(name, dict(zip(("pad_id", "mask_id", "vocab_size", "special_ids"), layout_args)),
                    kwargs, data={"batches": batches})
    return [
        case("the same 4 sentences in three calls (three epochs)", course, [four, four, four]),
        case("BERT's ids, mlm_probability=0.3, seed=7, two batches", bert,
             [_sentences(rng, BERT, rng.integers(3, 20, size=6), pair=True),
              _sentences(rng, BERT, rng.integers(3, 20, size=3))], mlm_probability=0.3, seed=7),
        case("[PAD] not in special_ids", (0, 4, 359, [1, 2, 3, 4]),
             [_sentences(rng, COURSE, [3, 15, 7, 1, 12])]),
        case("batch of one, ids as an array", course,
             [[np.array(_sentence(rng, COURSE, 20))]], seed=123),
        case("16 sentences, mlm_probability=0.5, two calls", course,
             [_sentences(rng, COURSE, rng.integers(0, 25, size=16))] * 2, mlm_probability=0.5,
             seed=2024),
        # [PAD] = 7 is also a word of these sentences: only the attention mask tells them apart
        case("[PAD] = 7, and 7 a word too: the attention mask finds the padding",
             (7, COURSE["mask"], COURSE["vocab_size"], _special_ids(COURSE)),
             [[s[:2] + [7, 7] + s[2:] for s in _sentences(rng, COURSE, [3, 12, 6, 9])]],
             mlm_probability=0.5, seed=11),
    ]


_COLLATOR_TEMPLATE = """class MLMCollator:
    def __init__(self, pad_id, mask_id, vocab_size, special_ids, mlm_probability=0.15, seed=0):
        self.pad_id = pad_id
        self.mask_id = mask_id
        self.vocab_size = vocab_size
        self.special_ids = list(special_ids)
        self.mlm_probability = mlm_probability
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __call__(self, sequences):
        input_ids, attention_mask = pad_batch(sequences, self.pad_id)
        special = {special}
        inputs, labels = mask_tokens(input_ids, special, self.mask_id, self.vocab_size,
                                     {rng}{probability})
        return {{"input_ids": {inputs}, "attention_mask": attention_mask, "labels": labels}}
"""
_COLLATOR_PARTS = {
    "special": "special_tokens_mask(input_ids, self.special_ids) | (attention_mask == 0)",
    "rng": "self.rng", "probability": ", self.mlm_probability", "inputs": "inputs",
}


def _collator_mistake(**parts):
    return _COLLATOR_TEMPLATE.format(**dict(_COLLATOR_PARTS, **parts))


mlm_collator = Exercise(
    id="08.mlm_collator", symbol="MLMCollator", points=2,
    title="pad and mask a batch, new masks at every call",
    reference=objectives.MLMCollator, cases=_collator_cases, run=run_mlm_collator,
    requires=("04.pad_batch", "08.special_tokens_mask", "08.mask_tokens"),
    mistakes=[
        Mistake("a new generator at every call",
                "create the generator once, in __init__, and draw from it at every call: a "
                "generator seeded in __call__ gives the same masks every epoch",
                _collator_mistake(rng="np.random.default_rng(self.seed)")),
        Mistake("padding not protected",
                "padding must never be selected, even when pad_id is not in special_ids: "
                "add the positions where attention_mask is 0 to the special mask",
                _collator_mistake(special="special_tokens_mask(input_ids, self.special_ids)")),
        Mistake("padding found by its id",
                "find the padding with the attention mask (attention_mask == 0), not by its id: "
                "the pad id may also be a real token's (here 7), which must stay maskable",
                _collator_mistake(special="np.isin(input_ids, self.special_ids + [self.pad_id])")),
        Mistake("mlm_probability not passed",
                "pass self.mlm_probability to mask_tokens; without it mask_tokens uses its "
                "default, 0.15",
                _collator_mistake(probability="")),
        Mistake("unmasked ids returned",
                "return the masked inputs from mask_tokens as \"input_ids\", not the padded "
                "batch: the model must not see the tokens it has to predict",
                _collator_mistake(inputs="input_ids")),
    ],
)

# --------------------------------------------------------------------------- causal_lm_batch


def run_causal_lm_batch(causal_lm_batch, case):
    """The pair (inputs, labels), named in the feedback."""
    result = causal_lm_batch(*case.args.values())
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"causal_lm_batch returns the pair (inputs, labels); got {_describe_type(result)}")
    return {"inputs": result[0], "labels": result[1]}


def _causal_cases(rng):
    def case(name, lengths, width, as_bool=False):
        sequences = _sentences(rng, COURSE, lengths)
        ids = _padded(sequences, COURSE, width)
        mask = (ids != COURSE["pad"]) if as_bool else (ids != COURSE["pad"]).astype(np.int64)
        return Case(name, {"input_ids": ids, "attention_mask": mask})
    lone = Case("a sequence of one token: nothing to predict",
                {"input_ids": np.array([[2, 0, 0], [2, 7, 3]]),
                 "attention_mask": np.array([[1, 0, 0], [1, 1, 1]])})
    return [
        case("4 sentences padded to 12", [6, 2, 9, 4], 12),
        case("no padding", [5, 5, 5], 7),
        case("batch of one, padded", [3], 9),
        lone,
        case("attention_mask of booleans", [1, 7, 4], 10, as_bool=True),
        case("T = 2", [0, 0], 2),
        Case("padding id 5, and id 0 a real token (GPT-2 pads with a real id): the mask decides",
             {"input_ids": np.array([[7, 0, 9, 5, 5], [0, 8, 0, 6, 5]]),
              "attention_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])}),
    ]


causal_lm_batch = Exercise(
    id="08.causal_lm_batch", symbol="causal_lm_batch", points=2,
    title="next-token inputs and labels, shifted, padding ignored",
    reference=objectives.causal_lm_batch, cases=_causal_cases, run=run_causal_lm_batch,
    mistakes=[
        Mistake("not shifted",
                "position t predicts the token at t + 1: inputs = input_ids[:, :-1], labels "
                "from input_ids[:, 1:]. (Hugging Face's models take unshifted labels and shift "
                "in the loss; here the batch is shifted, so the loss stays masked_lm_loss)",
                "def causal_lm_batch(input_ids, attention_mask):\n"
                "    return input_ids.copy(), np.where(attention_mask == 1, input_ids, -100)\n"),
        Mistake("padding counted",
                "[PAD] is not a word to predict: the label is -100 where position t + 1 is "
                "padding",
                "def causal_lm_batch(input_ids, attention_mask):\n"
                "    return input_ids[:, :-1].copy(), input_ids[:, 1:].copy()\n"),
        Mistake("the input position's mask",
                "the label at t is the token at t + 1, so test attention_mask[:, 1:]; with "
                "attention_mask[:, :-1] the last token of each sentence learns to predict [PAD]",
                "def causal_lm_batch(input_ids, attention_mask):\n"
                "    return input_ids[:, :-1].copy(), np.where(attention_mask[:, :-1] == 1, "
                "input_ids[:, 1:], -100)\n"),
        Mistake("padding found by its id",
                "find the padding with attention_mask, not with an id: a vocabulary's [PAD] is "
                "not always 0 (GPT-2 pads with a real token), and 0 may be a real token",
                "def causal_lm_batch(input_ids, attention_mask):\n"
                "    labels = input_ids[:, 1:].copy()\n"
                "    labels[labels == 0] = -100\n"
                "    return input_ids[:, :-1].copy(), labels\n"),
        Mistake("shifted the wrong way",
                "the inputs are the first T - 1 tokens and the labels the last T - 1: each "
                "position predicts the token after it, not the one before",
                "def causal_lm_batch(input_ids, attention_mask):\n"
                "    return input_ids[:, 1:].copy(), np.where(attention_mask[:, :-1] == 1, "
                "input_ids[:, :-1], -100)\n"),
    ],
)

# --------------------------------------------------------------------------- CausalLMCollator


def run_causal_collator(CausalLMCollator, case):
    collator = CausalLMCollator(*case.args.values())
    return _collated(collator, case.data["batches"])


def _causal_collator_cases(rng):
    def case(name, pad_id, *batches):
        return Case(name, {"pad_id": pad_id}, data={"batches": list(batches)})
    return [
        case("4 sentences, [PAD] = 0", 0, _sentences(rng, COURSE, [4, 9, 1, 6])),
        case("[PAD] = 7, two batches", 7, [[2, 50, 51, 3], [2, 60, 3]],
             [[2, 70, 71, 72, 73, 3], [2, 3], [2, 80, 81, 3]]),
        case("equal lengths", 0, _sentences(rng, COURSE, [5, 5])),
        case("batch of one, ids as an array", 0, [np.array(_sentence(rng, BERT, 8))]),
        case("[PAD] = 7, and 7 a word too: the attention mask finds the padding", 7,
             [[2, 7, 50, 7, 3], [2, 60, 3], [2, 7, 7, 61, 62, 63, 3]]),
    ]


_CAUSAL_COLLATOR_TEMPLATE = """class CausalLMCollator:
    def __init__(self, pad_id):
        self.pad_id = pad_id

    def __call__(self, sequences):
        input_ids, attention_mask = pad_batch(sequences, {pad})
        {body}
"""
_CAUSAL_BODY = ("inputs, labels = causal_lm_batch(input_ids, attention_mask)\n"
                "        return {{'input_ids': inputs, 'attention_mask': {mask}, 'labels': labels}}")


def _causal_collator_mistake(pad="self.pad_id", mask="attention_mask[:, :-1]", body=None):
    return _CAUSAL_COLLATOR_TEMPLATE.format(pad=pad, body=body or _CAUSAL_BODY.format(mask=mask))


causal_lm_collator = Exercise(
    id="08.causal_lm_collator", symbol="CausalLMCollator", points=1,
    title="pad and shift a batch for next-token prediction",
    reference=objectives.CausalLMCollator, cases=_causal_collator_cases, run=run_causal_collator,
    requires=("04.pad_batch", "08.causal_lm_batch"),
    mistakes=[
        Mistake("attention mask not cut",
                "the inputs lose their last column, so does their attention mask: "
                "attention_mask[:, :-1], the same shape as the inputs",
                _causal_collator_mistake(mask="attention_mask")),
        Mistake("padding found by its id",
                "give causal_lm_batch the attention mask from pad_batch: the pad id may also be "
                "a real token's (here 7), and only the mask tells them apart",
                _causal_collator_mistake(body="inputs, labels = causal_lm_batch(input_ids, "
                                              "(input_ids != self.pad_id).astype(np.int64))\n"
                                              "        return {'input_ids': inputs, "
                                              "'attention_mask': attention_mask[:, :-1], "
                                              "'labels': labels}")),
        Mistake("the labels' mask",
                "the attention mask describes the inputs (positions 0 to T - 2): "
                "attention_mask[:, :-1]; attention_mask[:, 1:] hides each sentence's last "
                "input token",
                _causal_collator_mistake(mask="attention_mask[:, 1:]")),
        Mistake("not shifted (Hugging Face's convention)",
                "this course shifts in the batch: inputs and labels come from "
                "causal_lm_batch, both T - 1 long",
                _causal_collator_mistake(body="return {'input_ids': input_ids, 'attention_mask': "
                                              "attention_mask,\n"
                                              "                'labels': np.where(attention_mask == 1, "
                                              "input_ids, -100)}")),
        Mistake("padded with 0",
                "pad with self.pad_id: [PAD] is not id 0 in every vocabulary",
                _causal_collator_mistake(pad="0")),
        Mistake("the caller's sequences padded in place",
                "leave the examples as they are (pad_batch builds new arrays): extending the "
                "caller's lists changes the dataset for every later epoch",
                _causal_collator_mistake(body="width = max(len(s) for s in sequences)\n"
                                              "        for s in sequences:\n"
                                              "            s.extend([self.pad_id] * (width - len(s)))\n"
                                              "        " + _CAUSAL_BODY.format(
                                                  mask="attention_mask[:, :-1]"))),
    ],
)


LESSON = Lesson(
    id="08", slug="08_objectives", title="Self-supervised objectives",
    exercises=[special_tokens_mask, mask_tokens, mlm_collator, causal_lm_batch,
               causal_lm_collator],
)
