"""Lesson 10 - Fine-tuning (reference solutions).

The exercises of ``lessons/10_finetuning.ipynb`` come first: turning logits into
predictions, the metrics of a classifier (accuracy, the confusion matrix, precision,
recall and F1, per class, binary and macro-averaged), the collator that makes
classification batches, and the choice of a small labelled subset that keeps the
classes' proportions.

The helpers after them (not exercises) run the lesson's experiments: a word
vocabulary for the synthetic sentiment task, a bag-of-words baseline, fine-tuning
a mini-BERT on the pooled [CLS] vector, its evaluation, and its attention maps.
``scripts/finetune.py`` uses them for the full-size runs.
"""

import numpy as np

from solutions.losses import softmax
from solutions.tokenization import pad_batch

# =============================================================================
# Exercises
# =============================================================================


def predictions_from_logits(logits):
    """The class each example is given, and the probability the model gives it.

    ``predicted[n]`` is the index of the largest logit of row n (the first one on
    ties, as ``np.argmax``); ``confidence[n]`` is the softmax probability of that
    class, the largest entry of ``softmax(logits[n])``.

    Args:
        logits: float array of shape (N, C): one row of C class scores per example.

    Returns:
        (predicted, confidence): an int64 array of shape (N,), each in [0, C), and
        a float array of shape (N,), the dtype of ``logits``, each in [1/C, 1].
    """
    predicted = np.argmax(logits, axis=-1)
    confidence = softmax(logits, axis=-1).max(axis=-1)
    return predicted, confidence


def accuracy(y_true, y_pred):
    """The share of examples whose predicted class is the true one.

    Args:
        y_true: int array of shape (N,), N >= 1: the true classes.
        y_pred: int array of shape (N,): the predicted classes.

    Returns:
        float in [0, 1].
    """
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, num_classes):
    """Count how often each true class was predicted as each class.

    ``matrix[i, j]`` is the number of examples of true class i predicted as class
    j (rows: the truth, columns: the prediction, as scikit-learn's
    ``confusion_matrix``). The diagonal holds the correct predictions; classes
    that never occur get a row and a column of zeros.

    Args:
        y_true: int array of shape (N,), each in [0, num_classes).
        y_pred: int array of shape (N,), each in [0, num_classes).
        num_classes: int C.

    Returns:
        int64 array of shape (C, C) whose entries sum to N.
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)          # repeated (i, j) pairs add up
    return matrix


def precision_recall_f1(confusion):
    """Precision, recall and F1 of every class, from a confusion matrix.

    For class c, with ``tp = confusion[c, c]``:

    - precision: ``tp / (number of examples predicted as c)``, the column sum;
    - recall: ``tp / (number of examples of class c)``, the row sum;
    - F1: their harmonic mean, ``2 * precision * recall / (precision + recall)``.

    A ratio whose denominator is 0 (a class never predicted, a class absent from
    the truth, or precision = recall = 0) is 0.0, never NaN: scikit-learn's
    ``zero_division=0``.

    Args:
        confusion: int array of shape (C, C), rows the true classes and columns
            the predicted ones (see ``confusion_matrix``).

    Returns:
        (precision, recall, f1): three float64 arrays of shape (C,).
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positives = np.diag(confusion)
    predicted = confusion.sum(axis=0)               # column sums: examples predicted as c
    actual = confusion.sum(axis=1)                  # row sums: examples of class c

    def ratio(numerator, denominator):              # 0.0 where the denominator is 0
        return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                         where=denominator != 0)

    precision = ratio(true_positives, predicted)
    recall = ratio(true_positives, actual)
    f1 = ratio(2 * precision * recall, precision + recall)
    return precision, recall, f1


def classification_scores(y_true, y_pred, num_classes, average="macro", positive_label=1):
    """Accuracy, and precision, recall and F1 averaged the way ``average`` says.

    - ``average="binary"``: the precision, recall and F1 of the class
      ``positive_label`` alone (a two-class task where one class is "the positive one");
    - ``average="macro"``: the unweighted mean over the ``num_classes`` classes of
      each class's precision, recall and F1 (a rare class counts as much as a
      frequent one; a class that never occurs counts as 0). The macro F1 is the
      mean of the per-class F1 scores, not the F1 of the mean precision and recall.

    Use ``confusion_matrix``, ``precision_recall_f1`` and ``accuracy``.

    Args:
        y_true: int array of shape (N,), N >= 1, each in [0, num_classes).
        y_pred: int array of shape (N,), each in [0, num_classes).
        num_classes: int C.
        average: "binary" or "macro".
        positive_label: int, the positive class for ``average="binary"``.

    Returns:
        dict with the floats "accuracy", "precision", "recall" and "f1", each in
        [0, 1]. They equal scikit-learn's ``accuracy_score`` and
        ``precision_recall_fscore_support(y_true, y_pred, average=average,
        labels=range(C), pos_label=positive_label, zero_division=0)``.
    """
    precision, recall, f1 = precision_recall_f1(confusion_matrix(y_true, y_pred, num_classes))
    if average == "binary":
        chosen = [precision[positive_label], recall[positive_label], f1[positive_label]]
    elif average == "macro":
        chosen = [precision.mean(), recall.mean(), f1.mean()]
    else:
        raise ValueError(f"average must be 'binary' or 'macro', not {average!r}")
    return {"accuracy": accuracy(y_true, y_pred), "precision": float(chosen[0]),
            "recall": float(chosen[1]), "f1": float(chosen[2])}


class ClassificationCollator:
    """Turns a list of (token ids, label) examples into a sentence-classification batch.

    Each sequence is ``[CLS] ... [SEP]`` as a tokenizer made it. A sequence longer
    than ``max_length`` is cut to its first ``max_length - 1`` ids followed by its
    last id, so that it still ends with [SEP]. The batch is then padded on the
    right to its longest sequence (not to ``max_length``: a batch of short
    sentences stays short), with ``pad_batch``.

    Args:
        pad_id: int, the id of [PAD].
        max_length: int >= 2, the longest sequence the model reads, or None for no limit.
    """

    def __init__(self, pad_id, max_length=None):
        self.pad_id = pad_id
        self.max_length = max_length

    def __call__(self, examples):
        """Truncate, pad and stack one batch.

        Args:
            examples: list of B pairs ``(ids, label)``: ``ids`` a sequence of ints
                (a list or a 1-D array: ``+`` adds arrays entry by entry, so join
                with ``list(...)`` or ``np.concatenate``), ``label`` an int. The
                examples are not modified: the same ones come back every epoch.

        Returns:
            dict of int64 arrays: "input_ids", "token_type_ids" (all 0: one
            sentence) and "attention_mask" (1 on tokens, 0 on padding) of shape
            (B, T), T the length of the longest truncated sequence, and "labels"
            of shape (B,).
        """
        sequences = [list(ids) for ids, _ in examples]
        if self.max_length is not None:
            sequences = [seq if len(seq) <= self.max_length
                         else seq[:self.max_length - 1] + seq[-1:] for seq in sequences]
        input_ids, attention_mask = pad_batch(sequences, self.pad_id)
        labels = np.array([label for _, label in examples], dtype=np.int64)
        return {"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids),
                "attention_mask": attention_mask, "labels": labels}


def stratified_subset(labels, size, rng):
    """A random subset of ``size`` examples with the classes in the same proportions.

    Class c, with ``n_c`` of the N examples, gets ``floor(size * n_c / N)`` places;
    the places left over go one each to the classes with the largest remainders
    ``size * n_c / N - floor(size * n_c / N)`` (the smaller class index first on
    ties). Compare the remainders exactly, in integers: ``(size * n_c) % N``
    (as floats, equal remainders can differ in their last bit). Within each class the examples are drawn at random, without
    replacement, from ``rng``: the same generator state gives the same subset.

    Args:
        labels: int array of shape (N,), the class of every example (classes are
            the values 0 .. labels.max()); it is not modified.
        size: int in [0, N], how many examples to keep.
        rng: a ``np.random.Generator``.

    Returns:
        int64 array of shape (size,): distinct indices into ``labels``, sorted.
    """
    counts = np.bincount(labels)
    quotas, remainders = np.divmod(size * counts, len(labels))     # in integers: exact
    leftover = size - quotas.sum()
    by_remainder = np.argsort(-remainders, kind="stable")          # largest first
    quotas[by_remainder[:leftover]] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=quota, replace=False)
              for c, quota in enumerate(quotas)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# =============================================================================
# Helpers for the lesson's experiments (not exercises)
# =============================================================================

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
SPECIAL_IDS = [PAD, UNK, CLS, SEP, MASK]


def sentiment_tokens():
    """The sentiment task's vocabulary: the five special tokens, then its 66 words, sorted."""
    from solutions.corpora import sentiment_vocabulary
    return SPECIAL_TOKENS + sentiment_vocabulary()


def encode_sentence(sentence, vocab):
    """``[CLS] w1 ... wn [SEP]`` as ids, for a sentence of space-separated words."""
    return [CLS] + [vocab.get(word, UNK) for word in sentence.split()] + [SEP]


def sentiment_task(n_train=4000, n_validation=1000, n_test=2000, seed=0):
    """The synthetic sentiment task (``solutions.corpora.sentiment_splits``) as ids.

    Returns:
        dict with "tokens" (list of str), and for each split "train", "validation",
        "test" a dict with "sentences" (list of str), "examples" (list of (ids, label)),
        "labels" (int64 (N,)) and "kinds" (array of "plain", "negation", "contrast").
    """
    from solutions.corpora import sentiment_kind, sentiment_splits
    tokens = sentiment_tokens()
    vocab = {token: i for i, token in enumerate(tokens)}
    task = {"tokens": tokens}
    for split, rows in sentiment_splits(n_train, n_validation, n_test, seed=seed).items():
        sentences = [sentence for sentence, _ in rows]
        labels = np.array([label for _, label in rows], dtype=np.int64)
        task[split] = {"sentences": sentences,
                       "examples": [(encode_sentence(s, vocab), int(y)) for s, y in rows],
                       "labels": labels,
                       "kinds": np.array([sentiment_kind(s) for s in sentences])}
    return task


def sentiment_pretraining_text(n_sentences, exclude=(), seed=1):
    """Unlabelled sentences from the sentiment generator, for masked-LM pretraining.

    The labels are thrown away, and so is every sentence in ``exclude`` (pass the
    validation and test sentences: a model must not have read them).
    """
    from solutions.corpora import generate_sentiment_dataset
    excluded = set(exclude)
    return [s for s, _ in generate_sentiment_dataset(n_sentences, seed=seed) if s not in excluded]


def bag_of_words(sequences, vocab_size):
    """How often each id occurs in each sequence, the special ids left out.

    Args:
        sequences: list of N sequences of ids.
        vocab_size: int V.

    Returns:
        float64 array (N, V) of counts; the columns of the special ids are 0.
    """
    counts = np.zeros((len(sequences), vocab_size))
    for row, ids in enumerate(sequences):
        np.add.at(counts[row], np.asarray(ids, dtype=np.int64), 1.0)
    counts[:, SPECIAL_IDS] = 0.0
    return counts


def train_bag_of_words(features, labels, num_classes=2, steps=300, lr=0.1, l2=1e-3):
    """A softmax regression on word counts (lesson 02), trained full-batch with Adam.

    Args:
        features: float array (N, V), e.g. ``bag_of_words(...)``.
        labels: int array (N,).
        num_classes: int C.
        steps: full-batch Adam steps.
        lr: Adam's learning rate.
        l2: the weight of an L2 penalty on W (keeps the weights finite when the
            training set is separable).

    Returns:
        (W, b): float64 arrays (V, C) and (C,); the logits are ``features @ W + b``.
    """
    from solutions.optimizers import Adam, logreg_loss_and_grad
    W = np.zeros((features.shape[1], num_classes))
    b = np.zeros(num_classes)
    optimizer = Adam([W, b], lr=lr)
    for _ in range(steps):
        _, dW, db = logreg_loss_and_grad(W, b, features, labels)
        optimizer.step([dW + l2 * W, db])
    return W, b


def classifier_logits(params, config, examples, collator, batch_size=256):
    """The classification logits of every example (evaluation mode: no dropout).

    Args:
        params, config: a model with a classification head (lesson 07).
        examples: list of (ids, label) pairs.
        collator: e.g. ``ClassificationCollator(PAD, max_length)``.
        batch_size: examples per forward pass.

    Returns:
        float array (N, C).
    """
    from solutions.bert import classification_loss_and_grads
    logits = []
    for start in range(0, len(examples), batch_size):
        batch = collator(examples[start:start + batch_size])
        _, _, stats = classification_loss_and_grads(params, config, batch, training=False,
                                                     compute_grads=False)
        logits.append(stats["logits"])
    return np.concatenate(logits)


ENCODER_PARTS = ("embeddings.", "layers.", "final.", "mlm.")


def with_pretrained_encoder(fresh, pretrained, parts=ENCODER_PARTS):
    """A model whose encoder is the pretrained one and whose heads are fresh.

    Everything the pretraining trained (the embeddings, the blocks, the final
    LayerNorm of a pre-LN model and the MLM head) is copied from ``pretrained``;
    the pooler and the classifier stay as in ``fresh``. Masked-LM pretraining
    never trains the pooler, so a model "from scratch" and one "from pretrained
    weights" built on the same ``fresh`` differ in the encoder only.

    Args:
        fresh: dict name -> array, e.g. ``init_bert(config, rng)``.
        pretrained: dict name -> array with the same names and shapes for the encoder.
        parts: the name prefixes taken from ``pretrained`` (e.g. ``("embeddings.",)``
            to transfer the embeddings alone and keep fresh blocks).

    Returns:
        a new dict (copies), with the keys of ``fresh``.
    """
    model = {}
    for name, value in fresh.items():
        source = pretrained if name.startswith(tuple(parts)) else fresh
        if source[name].shape != value.shape:
            raise ValueError(f"{name}: pretrained shape {source[name].shape}, model {value.shape}")
        model[name] = source[name].astype(value.dtype, copy=True)
    return model


def attention_maps(params, config, ids):
    """The attention weights of every layer and head for one sequence.

    Args:
        params, config: the model.
        ids: list of ints, one sequence (no padding).

    Returns:
        float array (L, H, T, T): ``maps[l, h, i, j]`` is how much token i attends
        to token j in head h of layer l (each row sums to 1).
    """
    from solutions.bert import bert_forward
    _, cache = bert_forward(params, config, np.array([ids], dtype=np.int64))
    # each block's attention cache is (x, params, (q, k, v, weights), context)
    return np.stack([layer["attention"][2][3][0] for layer in cache["layers"]])


def finetune(params, config, train_examples, eval_examples, collator, num_train_epochs=10,
             learning_rate=1e-3, batch_size=32, warmup_fraction=0.1, evaluations=10, seed=0,
             output_dir="finetune-output"):
    """Fine-tune a classifier with lesson 09's Trainer and ``classification_loss_and_grads``.

    AdamW with weight decay 0.01 (not on biases and LayerNorms), a linear warmup
    over ``warmup_fraction`` of the steps then a linear decay to 0, gradients
    clipped to norm 1. The evaluation set is scored ``evaluations`` times along
    the way (its loss, accuracy and macro F1 go into the log). Nothing is saved.

    Args:
        params: dict name -> array, trained in place.
        config: its ``BertConfig`` (``num_labels`` classes).
        train_examples, eval_examples: lists of (ids, label).
        collator: e.g. ``ClassificationCollator(PAD, max_length)``.
        num_train_epochs, learning_rate, batch_size, seed: the Trainer's settings.
        warmup_fraction: float, the share of the steps spent warming up.
        evaluations: int, how many evaluations in the run (0: none).
        output_dir: the Trainer's folder (nothing is written there: no checkpoints).

    Returns:
        the ``Trainer`` after training: ``trainer.state.log_history`` holds the
        training log and the evaluations ("eval_loss", "eval_accuracy", "eval_f1").
    """
    from solutions.bert import classification_loss_and_grads
    from solutions.pretraining import Trainer, TrainingArguments, num_training_steps
    total = num_training_steps(len(train_examples), batch_size, num_train_epochs)
    eval_steps = max(1, total // evaluations) if evaluations else None
    args = TrainingArguments(output_dir=str(output_dir), num_train_epochs=num_train_epochs,
                             per_device_train_batch_size=batch_size,
                             per_device_eval_batch_size=256, learning_rate=learning_rate,
                             warmup_steps=int(warmup_fraction * total), weight_decay=0.01,
                             logging_steps=max(1, total // 50), eval_steps=eval_steps,
                             seed=seed, disable_tqdm=True)

    def macro_f1(logits, labels):
        predicted = np.argmax(logits, axis=-1)
        return {"f1": classification_scores(labels, predicted, config.num_labels)["f1"]}

    trainer = Trainer(params, config, args, train_examples, eval_examples, data_collator=collator,
                      loss_fn=classification_loss_and_grads, compute_metrics=macro_f1)
    trainer.train()
    return trainer


def polarity_probe(params, config, sentences, tokens):
    """What a sentiment masked LM knows of polarity: mask the last adjective, compare the two sides.

    For each sentence, its last adjective is masked; the guess is "positive" when
    the model's probabilities of the 15 positive adjectives add up to more than
    those of the 15 negative ones. A model that learned how "and", "but" and "not"
    combine gets it right whenever the rest of the sentence decides the polarity
    (every sentence with two adjectives); with one adjective nothing decides it.

    Args:
        params, config: a masked LM trained on the sentiment task's words.
        sentences: list of str from the sentiment generator.
        tokens: the vocabulary (``sentiment_tokens()``).

    Returns:
        dict: for "one adjective" and for each kind of the two-adjective sentences
        ("plain", "negation", "contrast"), the share of right guesses (float),
        and "p_positive": the mean probability share of the positive side.
    """
    from solutions.bert import mlm_logits
    from solutions.corpora import NEGATIVE_WORDS, POSITIVE_WORDS, sentiment_kind
    vocab = {token: i for i, token in enumerate(tokens)}
    positive = [vocab[w] for w in POSITIVE_WORDS]
    negative = [vocab[w] for w in NEGATIVE_WORDS]
    adjectives = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS)
    right, groups, shares = [], [], []
    for sentence in sentences:
        words = sentence.split()
        where = [i for i, w in enumerate(words) if w in adjectives]
        ids = encode_sentence(sentence, vocab)
        ids[where[-1] + 1] = MASK
        logits = mlm_logits(params, config, np.array([ids]))[0, where[-1] + 1]
        probabilities = softmax(logits.astype(np.float64))
        share = probabilities[positive].sum() / (probabilities[positive].sum()
                                                 + probabilities[negative].sum())
        right.append((share > 0.5) == (words[where[-1]] in POSITIVE_WORDS))
        groups.append("one adjective" if len(where) == 1 else sentiment_kind(sentence))
        shares.append(share)
    right, groups = np.array(right), np.array(groups)
    result = {group: float(right[groups == group].mean())
              for group in ("one adjective", "plain", "negation", "contrast") if (groups == group).any()}
    result["p_positive"] = float(np.mean(shares))
    return result
