"""Lesson 18: a small GPT, against central differences, PyTorch, prefixes and brute force."""

import math
import types

import numpy as np
import pytest

from solutions import gpt
from solutions.attention import attention_forward, causal_mask
from solutions.bert import BertConfig, init_bert, mlm_head_forward
from solutions.losses import softmax
from solutions.objectives import CausalLMCollator
from solutions.pretraining import CLS, PAD, SEP, Trainer, TrainingArguments
from solutions.welcome import numerical_gradient

rng = np.random.default_rng(18)


def _tiny_gpt(pre_ln, V=13, eps=1e-5):
    config = BertConfig(vocab_size=V, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=16,
                        max_position_embeddings=12, dropout=0.0, pre_ln=pre_ln, layer_norm_eps=eps)
    params = init_bert(config, np.random.default_rng(0), dtype=np.float64)
    params = {k: v + rng.normal(0.0, 0.3, v.shape) for k, v in params.items()}   # away from init
    return config, params


def _sequences(V, lengths):
    return [[CLS] + rng.integers(5, V, size=n).tolist() + [SEP] for n in lengths]


@pytest.mark.parametrize("pre_ln", [False, True], ids=["post-LN", "pre-LN"])
def test_loss_gradients_match_central_differences(pre_ln):
    config, params = _tiny_gpt(pre_ln)
    batch = CausalLMCollator(PAD)(_sequences(config.vocab_size, [5, 2, 3]))
    loss, grads, stats = gpt.gpt_loss_and_grads(params, config, batch)
    assert stats["num_predicted"] == int((batch["labels"] != -100).sum()) == 13
    assert set(grads) == set(params)
    for name in params:
        numeric = numerical_gradient(
            lambda v, name=name: gpt.gpt_loss_and_grads({**params, name: v}, config, batch,
                                                        compute_grads=False)[0], params[name])
        assert np.allclose(grads[name], numeric, rtol=1e-5, atol=1e-8), name
    assert not grads["pooler.W"].any() and not grads["classifier.W"].any()


def test_loss_is_the_mean_log_probability_of_each_next_word_read_from_its_prefix():
    """Each position's loss term, recomputed by running the model on that prefix alone."""
    config, params = _tiny_gpt(True)
    sequences = _sequences(config.vocab_size, [4, 1, 6])
    loss, _, _ = gpt.gpt_loss_and_grads(params, config, CausalLMCollator(PAD)(sequences),
                                        compute_grads=False)
    terms = []
    for seq in sequences:
        for t in range(1, len(seq)):
            logits = gpt.next_token_logits(params, config, np.array([seq[:t]]))[0]
            terms.append(-np.log(softmax(logits)[seq[t]]))
    assert loss == pytest.approx(np.mean(terms), rel=1e-10)


def test_forward_on_a_prefix_equals_the_prefix_of_the_forward():
    config, params = _tiny_gpt(False)
    ids = rng.integers(0, config.vocab_size, size=(2, 9))
    full, _ = gpt.gpt_forward(params, config, ids)
    for t in (1, 4, 8):
        prefix, _ = gpt.gpt_forward(params, config, ids[:, :t])
        assert np.allclose(prefix, full[:, :t], atol=1e-12)


def test_left_padding_does_not_change_the_real_tokens_hidden_states_except_by_position():
    """With the padding part of the mask, a left-padded sequence attends to its tokens only:
    its hidden states equal an unpadded run whose position table is shifted by the padding."""
    config, params = _tiny_gpt(True)
    ids = rng.integers(5, config.vocab_size, size=(1, 5))
    padded = np.concatenate([[[PAD, PAD]], ids], axis=1)
    mask = np.array([[0, 0, 1, 1, 1, 1, 1]])
    shifted = dict(params)
    shifted["embeddings.position"] = params["embeddings.position"][2:]
    hidden, _ = gpt.gpt_forward(params, config, padded, mask)
    alone, _ = gpt.gpt_forward(shifted, config, ids)
    assert np.allclose(hidden[:, 2:], alone, atol=1e-12)
    without_padding_mask, _ = gpt.gpt_forward(params, config, padded)
    assert not np.allclose(without_padding_mask[:, 2:], alone, atol=1e-3)


def test_loss_and_gradients_match_pytorch_with_a_causal_scaled_dot_product_attention(monkeypatch):
    torch = pytest.importorskip("torch")
    import solutions.torch_bert as torch_bert

    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def causal_sdpa(q, k, v, attn_mask=None):
        T = q.shape[-2]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        return real_sdpa(q, k, v, attn_mask=causal if attn_mask is None else attn_mask & causal)

    functional = types.SimpleNamespace(**{name: getattr(torch.nn.functional, name)
                                          for name in dir(torch.nn.functional)
                                          if not name.startswith("__")})
    functional.scaled_dot_product_attention = causal_sdpa
    monkeypatch.setattr(torch_bert, "F", functional)

    config, params = _tiny_gpt(True)
    params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}  # from_numpy
    batch = CausalLMCollator(PAD)(_sequences(config.vocab_size, [6, 2, 4]))         # goes via float32
    loss, grads, _ = gpt.gpt_loss_and_grads(params, config, batch)
    model = torch_bert.TorchBert.from_numpy(params, config).double().eval()
    torch_loss = model.mlm_loss({k: torch.as_tensor(v) for k, v in batch.items()})
    torch_loss.backward()
    assert torch_loss.item() == pytest.approx(loss, rel=1e-12)
    for ours, (theirs, transposed) in torch_bert.torch_names(config).items():
        grad = model.get_parameter(theirs).grad
        if grad is None:                              # the pooler and the classifier
            assert not grads[ours].any(), ours
            continue
        grad = grad.numpy()
        assert np.allclose(grads[ours], grad.T if transposed else grad, atol=1e-10), ours


def test_attention_with_a_cache_equals_causal_attention_over_the_whole_sequence():
    B, H, T, d = 2, 3, 9, 4
    q, k, v = (rng.normal(size=(B, H, T, d)) for _ in range(3))
    full, _ = attention_forward(q, k, v, causal_mask(T))
    k_cache = v_cache = np.zeros((B, H, 0, d))
    outs = []
    for start, stop in [(0, 3), (3, 4), (4, 8), (8, 9)]:        # a prompt, then chunks of any size
        out, k_cache, v_cache = gpt.attend_with_cache(q[:, :, start:stop], k[:, :, start:stop],
                                                      v[:, :, start:stop], k_cache, v_cache)
        outs.append(out)
    assert np.allclose(np.concatenate(outs, axis=2), full, atol=1e-12)
    assert np.array_equal(k_cache, k) and np.array_equal(v_cache, v)


@pytest.mark.parametrize("pre_ln", [False, True], ids=["post-LN", "pre-LN"])
def test_generation_with_the_cache_gives_the_logits_and_tokens_of_full_forward_passes(pre_ln):
    config, params = _tiny_gpt(pre_ln)
    ids = rng.integers(5, config.vocab_size, size=(2, 7))
    full = mlm_head_forward(gpt.gpt_forward(params, config, ids)[0], params, config)[0]
    cache = gpt.empty_cache(config, 2, np.float64)
    first, cache = gpt.decode_step(params, config, ids[:, :3], cache)
    rest = []
    for t in range(3, 7):
        logits, cache = gpt.decode_step(params, config, ids[:, t:t + 1], cache)
        rest.append(logits)
    assert np.allclose(np.concatenate([first] + rest, axis=1), full, atol=1e-12)

    def sampler(seed):
        draws = np.random.default_rng(seed)
        return lambda logits: gpt.sample_next_token(logits, draws.random(len(logits)), 1.5)
    prompt = np.full((6, 2), CLS)
    cached = gpt.generate(params, config, prompt, 8, sampler(0), eos_id=SEP, use_cache=True)
    uncached = gpt.generate(params, config, prompt, 8, sampler(0), eos_id=SEP, use_cache=False)
    assert cached == uncached
    assert all(len(s) <= 10 and (s[-1] == SEP or len(s) == 10) and SEP not in s[2:-1]
               for s in cached)


def test_generation_stops_at_the_longest_position():
    config, params = _tiny_gpt(True)
    out = gpt.generate(params, config, np.array([[CLS, 5, 6]]), 100,
                       lambda logits: np.full(len(logits), 7), eos_id=None)
    assert len(out[0]) == config.max_position_embeddings


def test_sampling_follows_the_distribution_and_temperature_zero_is_the_argmax():
    logits = np.array([[2.0, 0.5, -np.inf, 1.0, -1.0]])
    n = 200_000
    u = np.random.default_rng(0).random(n)
    for temperature in (0.5, 1.0, 3.0):
        draws = gpt.sample_next_token(np.repeat(logits, n, 0), u, temperature)
        shares = np.bincount(draws, minlength=5) / n
        p = softmax(logits[0] / temperature)
        assert np.abs(shares - p).max() < 4 * math.sqrt(0.25 / n), temperature   # 4 sigma at most
        assert shares[2] == 0
    batch = rng.normal(size=(50, 7))
    assert np.array_equal(gpt.sample_next_token(batch, rng.random(50), 0.0), batch.argmax(-1))
    cold = gpt.sample_next_token(batch, rng.random(50), 1e-3)
    assert np.array_equal(cold, batch.argmax(-1))


def test_top_k_and_top_p_against_their_definitions_by_brute_force():
    for _ in range(200):
        V = int(rng.integers(2, 12))
        logits = rng.normal(size=V) * rng.uniform(0.1, 4)
        k = int(rng.integers(1, V + 2))
        kept = set(np.flatnonzero(np.isfinite(gpt.top_k_filter(logits[None], k)[0])))
        assert kept == {i for i in range(V) if (logits > logits[i]).sum() < k}
        p = float(rng.uniform(0.05, 0.99))
        probs = softmax(logits)
        kept = set(np.flatnonzero(np.isfinite(gpt.top_p_filter(logits[None], p)[0])))
        # the smallest set of most likely tokens whose total reaches p
        order = sorted(range(V), key=lambda i: -probs[i])
        expected, total = set(), 0.0
        for i in order:
            if total >= p:
                break
            expected.add(i)
            total += probs[i]
        assert kept == expected
        assert sum(probs[i] for i in kept) >= p - 1e-12


def test_trainer_weighs_a_causal_evaluation_by_its_predicted_positions(tmp_path):
    config, params = _tiny_gpt(True)
    data = _sequences(config.vocab_size, [1, 7, 3, 2, 8])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=2, disable_tqdm=True)
    metrics = Trainer(params, config, args, data, data, CausalLMCollator(PAD),
                      loss_fn=gpt.gpt_loss_and_grads).evaluate()
    terms = []
    for seq in data:
        for t in range(1, len(seq)):
            logits = gpt.next_token_logits(params, config, np.array([seq[:t]]))[0]
            terms.append(-np.log(softmax(logits)[seq[t]]))
    assert metrics["eval_loss"] == pytest.approx(np.mean(terms), rel=1e-10)
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(np.mean(terms)), rel=1e-10)


def test_generation_report_and_agreement_accuracy():
    report = gpt.generation_report(["the dog sleeps .", "the dog sleeps .", "dog the sleeps",
                                    "the cats sleep ."], {"the dog sleeps ."})
    assert report == {"grammatical": 0.75, "distinct": 0.75, "novel": 0.25, "mean_words": 3.75}

    from solutions.corpora import AgreementItem
    from solutions.pretraining import grammar_tokens
    tokens = grammar_tokens()
    vocab = {t: i for i, t in enumerate(tokens)}
    config = BertConfig(vocab_size=len(tokens), hidden_size=8, num_layers=1, num_heads=2,
                        intermediate_size=16, max_position_embeddings=64, dropout=0.0, pre_ln=True)
    params = init_bert(config, np.random.default_rng(0), dtype=np.float64)
    params["mlm.bias"][vocab["sleeps"]] = 100.0       # this model always prefers "sleeps"
    right = AgreementItem(("the", "dog", "near", "the", "cats", "sleeps", "."), 1, 5,
                          "sleeps", "sleep", 1)
    wrong = AgreementItem(("the", "dogs", "sleep", "."), 1, 2, "sleep", "sleeps", 0)
    result = gpt.agreement_accuracy(params, config, [right, wrong, right], vocab)
    assert result == {0: (0.0, 1), 1: (1.0, 2)}
