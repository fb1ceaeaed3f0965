"""Lesson 08: the masking against Hugging Face's DataCollatorForLanguageModeling.

The two draw differently (Hugging Face uses Bernoulli draws from its own generator), so
their masks differ; what must agree is the rules (special tokens and padding never
selected, -100 on every other unselected position, unselected inputs unchanged) and
every rate, within a few binomial standard deviations. Hugging Face is optional: those
tests skip without transformers. The first test checks the grader's own arithmetic.
"""

import math

import numpy as np
import pytest

from autograder.specs import lesson08
from solutions.corpora import generate_grammar_corpus, grammar_vocabulary
from solutions.objectives import MLMCollator

TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + grammar_vocabulary()
VOCAB = {token: i for i, token in enumerate(TOKENS)}
PAD, MASK = VOCAB["[PAD]"], VOCAB["[MASK]"]
SPECIAL_IDS = [VOCAB[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
EXPECTED = {"selected": 0.15, "masked": 0.8, "random": 0.1, "unchanged": 0.1}


def test_every_mask_tokens_case_draws_enough_for_five_sigma():
    """The tolerance is at least 5 binomial standard deviations of every graded share."""
    for case in lesson08.mask_tokens.make_cases():
        p = case.kwargs.get("mlm_probability", 0.15)
        maskable = np.sum(~case.args["special_mask"]) * case.data["draws"]
        selected = p * maskable
        assert selected >= lesson08.MIN_SELECTED, case.name
        for q, n in [(p, maskable), (0.8, selected), (0.1, selected)]:
            if 0 < q < 1:
                assert 5 * math.sqrt(q * (1 - q) / n) <= lesson08.RATE_ATOL, (case.name, q)


def _hugging_face_collator(seed):
    transformers = pytest.importorskip("transformers")
    try:                                           # transformers 5: the vocabulary as a dict
        tokenizer = transformers.BertTokenizer(vocab=dict(VOCAB))
    except TypeError:                              # transformers 4: a vocab.txt file
        import tempfile
        from pathlib import Path
        path = Path(tempfile.mkdtemp()) / "vocab.txt"
        path.write_text("\n".join(TOKENS) + "\n", encoding="utf-8")
        tokenizer = transformers.BertTokenizer(vocab_file=str(path))
    if len(tokenizer) != len(TOKENS) or tokenizer.mask_token_id != MASK:
        pytest.skip("this version of transformers did not load the vocabulary as expected")
    return transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15,
                                                        return_tensors="np", seed=seed)


def _batches(n_batches=150, size=64):
    sentences = generate_grammar_corpus(n_batches * size, seed=5)
    ids = [[VOCAB["[CLS]"]] + [VOCAB[w] for w in s.split()] + [VOCAB["[SEP]"]] for s in sentences]
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _tally(totals, batch, sequences):
    """Add one batch's counts; check the rules that hold for every batch."""
    original = np.full(batch["input_ids"].shape, PAD)
    for row, seq in enumerate(sequences):
        original[row, :len(seq)] = seq
    np.testing.assert_array_equal(batch["attention_mask"], original != PAD)
    inputs, labels = batch["input_ids"], batch["labels"]
    special = np.isin(original, SPECIAL_IDS)
    selected = labels != -100
    assert not np.any(selected & special), "a special or padding position was selected"
    assert np.all(inputs[~selected] == original[~selected]), "an unselected input changed"
    assert np.all(labels[selected] == original[selected])
    swapped = selected & (inputs != original) & (inputs != MASK)
    totals["maskable"] += np.sum(~special)
    totals["selected"] += np.sum(selected)
    totals["masked"] += np.sum(selected & (inputs == MASK))
    totals["random"] += np.sum(swapped)
    totals["unchanged"] += np.sum(selected & (inputs == original))
    totals["random special ids"] += np.sum(swapped & np.isin(inputs, SPECIAL_IDS))


def _shares(totals):
    return {"selected": totals["selected"] / totals["maskable"],
            **{k: totals[k] / totals["selected"] for k in ("masked", "random", "unchanged")}}


def test_rates_and_rules_agree_with_hugging_face():
    hugging_face = _hugging_face_collator(seed=0)
    ours = MLMCollator(PAD, MASK, len(TOKENS), SPECIAL_IDS, seed=0)
    tallies = {"hugging face": dict.fromkeys(
        ["maskable", "selected", "masked", "random", "unchanged", "random special ids"], 0)}
    tallies["ours"] = dict(tallies["hugging face"])
    for sequences in _batches():
        _tally(tallies["hugging face"], hugging_face([{"input_ids": s} for s in sequences]),
               sequences)
        _tally(tallies["ours"], ours(sequences), sequences)

    shares = {name: _shares(t) for name, t in tallies.items()}
    for key, q in EXPECTED.items():
        n = tallies["ours"]["maskable" if key == "selected" else "selected"]
        sigma = math.sqrt(q * (1 - q) / n)
        for name in shares:
            assert abs(shares[name][key] - q) < 5 * sigma, (name, key, shares[name][key])
        assert abs(shares["ours"][key] - shares["hugging face"][key]) < 5 * math.sqrt(2) * sigma
    # The same convention for random ids: the whole vocabulary, special ids included.
    for name, t in tallies.items():
        assert t["random special ids"] > 0, name


def test_our_batches_have_hugging_face_keys_shapes_and_dtypes():
    hugging_face = _hugging_face_collator(seed=1)
    sequences = _batches(n_batches=1, size=8)[0]
    theirs = hugging_face([{"input_ids": s} for s in sequences])
    ours = MLMCollator(PAD, MASK, len(TOKENS), SPECIAL_IDS, seed=1)(sequences)
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert ours[key].shape == theirs[key].shape, key
        assert ours[key].dtype == theirs[key].dtype == np.int64, key
    np.testing.assert_array_equal(ours["attention_mask"], theirs["attention_mask"])
