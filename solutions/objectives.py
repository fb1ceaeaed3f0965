"""Lesson 08 - Self-supervised objectives (reference solutions).

Every function and class here is an exercise in ``lessons/08_objectives.ipynb``,
with the same signature and docstring. They turn lists of token ids into
training batches for the two ways of getting labels out of raw text:

* masked language modelling (BERT): hide some tokens, predict them from both
  sides (``special_tokens_mask``, ``mask_tokens``, ``MLMCollator``);
* causal language modelling (GPT): predict every token from the ones before it
  (``causal_lm_batch``, ``CausalLMCollator``).

Both put -100 in ``labels`` where nothing is to be predicted, so the same loss,
``solutions.losses.masked_lm_loss``, trains either. Lesson 09's Trainer builds
its batches with the collators.
"""

import numpy as np

from solutions.tokenization import pad_batch


def special_tokens_mask(input_ids, special_ids):
    """Where the special tokens are: the positions that masking must leave alone.

    Args:
        input_ids: int array of any shape, usually (B, T).
        special_ids: sequence of ints (list, tuple or 1-D array, possibly
            empty): the ids of [PAD], [UNK], [CLS], [SEP], [MASK], ...

    Returns:
        bool array shaped like ``input_ids``: True where the id is one of
        ``special_ids``.
    """
    return np.isin(input_ids, np.asarray(special_ids, dtype=np.int64))


def mask_tokens(input_ids, special_mask, mask_token_id, vocab_size, rng, mlm_probability=0.15):
    """BERT's masking: choose the tokens to predict, and hide most of them.

    Every position that is not special is *selected* independently with
    probability ``mlm_probability``. A selected token becomes [MASK] with
    probability 0.8, a random id with probability 0.1, and stays as it is with
    probability 0.1; its label is its original id. Every other position keeps
    its token and gets the label -100, which the loss ignores.

    The draws, in this order (Hugging Face's DataCollatorForLanguageModeling
    does the same with Bernoulli draws), so that a generator in the same state
    gives the same result:

    1. ``selected = (rng.random(shape) < mlm_probability) & ~special_mask``
    2. ``to_mask = selected & (rng.random(shape) < 0.8)``
    3. ``to_random = selected & ~to_mask & (rng.random(shape) < 0.5)``
       (half of the remaining 20 %)
    4. ``random_ids = rng.integers(0, vocab_size, size=shape)``

    Random ids come from the whole vocabulary, special ids included, as in
    Hugging Face and Google's original BERT code: this function is given only
    the vocabulary's size, and a special id turns up in (number of special
    ids) / ``vocab_size`` of the random replacements, a tiny share of the
    tokens. A random id can also be the original one.

    Args:
        input_ids: int64 array of shape (B, T); it is not modified.
        special_mask: bool array of shape (B, T), True at the positions that
            must never be selected ([CLS], [SEP], [PAD], ...); it is not modified.
        mask_token_id: int, the id of [MASK].
        vocab_size: int, the number of ids; random ids are in [0, vocab_size).
        rng: ``np.random.Generator``, the only source of randomness: each call
            draws new masks from it.
        mlm_probability: float in [0, 1], the chance that a non-special
            position is selected.

    Returns:
        (inputs, labels): two new int64 arrays of shape (B, T). ``labels`` is
        the original id at the selected positions and -100 elsewhere;
        ``inputs`` equals ``input_ids`` wherever ``labels`` is -100.
    """
    shape = input_ids.shape
    selected = (rng.random(shape) < mlm_probability) & ~special_mask
    to_mask = selected & (rng.random(shape) < 0.8)
    to_random = selected & ~to_mask & (rng.random(shape) < 0.5)
    random_ids = rng.integers(0, vocab_size, size=shape, dtype=np.int64)

    labels = np.where(selected, input_ids, -100)
    inputs = input_ids.copy()
    inputs[to_mask] = mask_token_id
    inputs[to_random] = random_ids[to_random]
    return inputs, labels


class MLMCollator:
    """Turns a list of token-id sequences into a masked-LM batch, with new masks at every call.

    A call pads the sequences on the right with ``pad_batch``, protects the
    special tokens and the padding, and masks with ``mask_tokens``. The
    collator owns one generator, ``np.random.default_rng(seed)``, created once
    in ``__init__``, and every call draws from it: the same sentences get new
    masks every epoch (dynamic masking), and the same seed gives the same
    batches.

    Args:
        pad_id: int, the id of [PAD].
        mask_id: int, the id of [MASK].
        vocab_size: int, the number of ids (random replacements are in
            [0, vocab_size)).
        special_ids: sequence of ints, the ids never to mask ([CLS], [SEP],
            ...). Padding is never masked, even when ``pad_id`` is not in it.
        mlm_probability: float, the chance that a token is selected.
        seed: int, the seed of the collator's generator.
    """

    def __init__(self, pad_id, mask_id, vocab_size, special_ids, mlm_probability=0.15, seed=0):
        self.pad_id = pad_id
        self.mask_id = mask_id
        self.vocab_size = vocab_size
        self.special_ids = list(special_ids)
        self.mlm_probability = mlm_probability
        self.rng = np.random.default_rng(seed)

    def __call__(self, sequences):
        """Pad and mask one batch.

        Args:
            sequences: list of B sequences of ints (lists or 1-D arrays); they are
                not modified (the same lists come back every epoch).

        Returns:
            dict of three int64 arrays of shape (B, T), T the length of the
            longest sequence: "input_ids" (padded, then masked), "attention_mask"
            (1 on tokens, 0 on padding) and "labels" (the original id at the
            selected positions, -100 elsewhere). They come from one call,
            ``mask_tokens(padded_ids, special, self.mask_id, self.vocab_size,
            self.rng, self.mlm_probability)``, where ``special`` is True at the
            special ids and at the padding.
        """
        input_ids, attention_mask = pad_batch(sequences, self.pad_id)
        special = special_tokens_mask(input_ids, self.special_ids) | (attention_mask == 0)
        inputs, labels = mask_tokens(input_ids, special, self.mask_id, self.vocab_size,
                                     self.rng, self.mlm_probability)
        return {"input_ids": inputs, "attention_mask": attention_mask, "labels": labels}


def causal_lm_batch(input_ids, attention_mask):
    """Inputs and labels for next-token prediction, the labels already shifted.

    Position t of the inputs is trained to predict the token at t + 1, so the
    inputs drop the last column and the labels drop the first:
    ``labels[:, t] = input_ids[:, t + 1]``, or -100 where position t + 1 is
    padding (``attention_mask[:, t + 1] == 0``). The model reads the inputs
    with the mask ``attention_mask[:, :-1]``. (Hugging Face's models do the
    shift inside the loss instead and take ``labels`` shaped like
    ``input_ids``; here the shift is done once, in the batch, so that the loss
    is ``masked_lm_loss`` unchanged.)

    Args:
        input_ids: int64 array of shape (B, T), padded on the right.
        attention_mask: int or bool array of shape (B, T), 1 (True) on tokens
            and 0 (False) on padding.

    Returns:
        (inputs, labels): two int64 arrays of shape (B, T - 1).
    """
    inputs = input_ids[:, :-1].copy()
    labels = np.where(attention_mask[:, 1:].astype(bool), input_ids[:, 1:], -100)
    return inputs, labels


class CausalLMCollator:
    """Turns a list of token-id sequences into a next-token-prediction batch.

    A call pads the sequences on the right with ``pad_batch``, shifts them
    with ``causal_lm_batch`` and cuts the attention mask like the inputs.
    Nothing is random.

    Args:
        pad_id: int, the id of [PAD].
    """

    def __init__(self, pad_id):
        self.pad_id = pad_id

    def __call__(self, sequences):
        """Pad and shift one batch.

        Args:
            sequences: list of B sequences of ints (lists or 1-D arrays); they are
                not modified (the same lists come back every epoch).

        Returns:
            dict of three int64 arrays of shape (B, T - 1), T the length of the
            longest sequence: "input_ids" (the padded ids without the last
            column), "attention_mask" (the padded batch's mask without its
            last column) and "labels" (from ``causal_lm_batch``).
        """
        input_ids, attention_mask = pad_batch(sequences, self.pad_id)
        inputs, labels = causal_lm_batch(input_ids, attention_mask)
        return {"input_ids": inputs, "attention_mask": attention_mask[:, :-1], "labels": labels}
