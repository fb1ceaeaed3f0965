"""Lesson 12's TorchBert is lesson 07's NumPy model: same outputs, same gradients, same files.

On the CPU: float32 outputs within 1e-5 of the NumPy model (post-LN and pre-LN, all three
heads), float64 gradients of both losses within rounding of ``mlm_loss_and_grads`` and
``classification_loss_and_grads``, Hugging Face's ``BertForMaskedLM`` holding the same
weights, lesson 09's checkpoint folders read and written, ``make_train_step`` in quick sizes
(fp32 and bf16), and grading in forked children after the parent used PyTorch's thread pool.
The GPU tests at the end run only where CUDA is available (``pytest tests/test_lesson12.py``
on a GPU machine checks every cuda path: the exercises graded with ``--device cuda``, the
model on the GPU, and ``make_train_step`` in fp32, bf16 and bf16 + torch.compile).
"""

import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="lesson 12 needs PyTorch (pip install -e '.[dev]')")

from autograder import device, grader, notebook, specs  # noqa: E402
from autograder.specs.lesson07 import perturbed_params  # noqa: E402
from solutions import bert  # noqa: E402
from solutions.objectives import MLMCollator  # noqa: E402
from solutions.pretraining import (MASK, PAD, SPECIAL_IDS, Trainer, TrainingArguments,  # noqa: E402
                                   load_pretrained, save_pretrained)
from solutions.torch_bert import (TorchBert, load_numpy_weights, make_train_step,  # noqa: E402
                                  numpy_weights, torch_names, train_step_flops)

from conftest import ROOT  # noqa: E402

CONFIG = bert.BertConfig(vocab_size=31, hidden_size=16, num_layers=2, num_heads=4,
                         intermediate_size=32, max_position_embeddings=12, dropout=0.0,
                         num_labels=3)
PRE_LN = bert.BertConfig(**{**CONFIG.to_dict(), "pre_ln": True})
needs_cuda = pytest.mark.skipif(not device.cuda_available(), reason="no CUDA GPU")


def _random_params(config, seed=0, dtype=np.float32):
    """Parameters far from the initial ones, so that every term of the model matters."""
    return perturbed_params(np.random.default_rng(seed), config, dtype)


def _batch(config, seed=1, B=3, T=9, lengths=(9, 5, 7)):
    rng = np.random.default_rng(seed)
    attention_mask = (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
    input_ids = np.where(attention_mask == 1, rng.integers(1, config.vocab_size, size=(B, T)), 0)
    token_type_ids = ((np.arange(T)[None, :] >= 4) & (attention_mask == 1)).astype(np.int64)
    labels = np.where((rng.random((B, T)) < 0.4) & (attention_mask == 1), input_ids, -100)
    labels[0, 1] = input_ids[0, 1]
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": attention_mask, "labels": labels}


def _tensors(batch, where="cpu"):
    return {k: torch.from_numpy(v).to(where) for k, v in batch.items()}


def _torch_outputs(model, batch):
    t = _tensors(batch, next(model.parameters()).device)
    with torch.no_grad():
        hidden = model(t["input_ids"], t["token_type_ids"], t["attention_mask"])
        return {"hidden": hidden, "mlm": model.mlm_logits(hidden), "pooled": model.pooled(hidden),
                "classifier": model.classifier_logits(hidden)}


def _numpy_outputs(params, config, batch):
    hidden, _ = bert.bert_forward(params, config, batch["input_ids"], batch["token_type_ids"],
                                  batch["attention_mask"])
    pooled, _ = bert.pooler_forward(hidden, params)
    return {"hidden": hidden, "mlm": bert.mlm_head_forward(hidden, params, config)[0],
            "pooled": pooled, "classifier": bert.classifier_forward(pooled, params, config)[0]}


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize("config", [CONFIG, PRE_LN], ids=["post-LN", "pre-LN"])
def test_float32_outputs_match_the_numpy_model(config):
    params, batch = _random_params(config), _batch(config)
    model = TorchBert.from_numpy(params, config).eval()
    ours, theirs = _numpy_outputs(params, config, batch), _torch_outputs(model, batch)
    for name in ours:
        assert theirs[name].dtype == torch.float32
        np.testing.assert_allclose(theirs[name].numpy(), ours[name], rtol=0, atol=1e-5, err_msg=name)


def test_names_cover_every_parameter_once_and_the_decoder_is_tied():
    for config in (CONFIG, PRE_LN):
        model = TorchBert(config)
        names = torch_names(config)
        assert set(names) == set(bert.init_bert(config, np.random.default_rng(0)))
        assert sorted(theirs for theirs, _ in names.values()) == sorted(dict(model.named_parameters()))
        assert model.mlm.decoder.weight is model.embeddings.word.weight
        shapes = {n: p.shape for n, p in bert.init_bert(config, np.random.default_rng(0)).items()}
        for ours, (theirs, transposed) in names.items():
            shape = tuple(model.get_parameter(theirs).shape)
            assert shape == (shapes[ours][::-1] if transposed else shapes[ours]), ours
        assert sum(p.numel() for p in model.parameters()) == bert.count_parameters(config)


def test_initialisation_is_berts():
    model = TorchBert(bert.BertConfig(vocab_size=500, hidden_size=64, num_layers=1, num_heads=4,
                                      intermediate_size=128, max_position_embeddings=64))
    assert abs(model.embeddings.word.weight.std().item() - 0.02) < 0.002
    assert abs(model.layers[0].ff1.weight.std().item() - 0.02) < 0.002
    assert not model.layers[0].ff1.bias.any() and not model.mlm.decoder.bias.any()
    assert (model.layers[0].ln1.weight == 1).all() and not model.layers[0].ln1.bias.any()


@pytest.mark.parametrize("config", [CONFIG, PRE_LN], ids=["post-LN", "pre-LN"])
def test_float64_gradients_match_the_numpy_backward_passes(config):
    params, batch = _random_params(config, dtype=np.float64), _batch(config)
    model = load_numpy_weights(TorchBert(config).double(), params)
    names = torch_names(config)

    def compare(grads, loss, torch_loss):
        assert torch_loss.dtype == torch.float64
        assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
        scale = max(np.abs(g).max() for g in grads.values())
        for ours, (theirs, transposed) in names.items():
            grad = model.get_parameter(theirs).grad      # None: not used by this loss
            grad = np.zeros_like(grads[ours]) if grad is None else \
                (grad.numpy().T if transposed else grad.numpy())
            np.testing.assert_allclose(grad, grads[ours], rtol=1e-9, atol=1e-12 * scale,
                                       err_msg=ours)

    loss, grads, _ = bert.mlm_loss_and_grads(params, config, batch)
    torch_loss = model.mlm_loss(_tensors(batch))
    torch_loss.backward()
    compare(grads, loss, torch_loss)

    model.zero_grad()
    batch["labels"] = np.array([0, 2, 1])
    loss, grads, _ = bert.classification_loss_and_grads(params, config, batch)
    torch_loss = model.classification_loss(_tensors(batch))
    torch_loss.backward()
    compare(grads, loss, torch_loss)


def test_mlm_loss_without_labels_is_zero_and_differentiable():
    model = TorchBert(CONFIG)
    batch = _tensors(_batch(CONFIG))
    batch["labels"][:] = -100
    loss = model.mlm_loss(batch)
    loss.backward()
    assert loss.item() == 0.0


def test_numpy_weights_round_trip_and_copy():
    params = _random_params(CONFIG)
    model = TorchBert.from_numpy(params, CONFIG)
    back = numpy_weights(model)
    assert set(back) == set(params)
    for name in params:
        assert back[name].dtype == np.float32 and back[name].flags.c_contiguous
        np.testing.assert_array_equal(back[name], params[name], err_msg=name)
    with torch.no_grad():
        model.embeddings.word.weight.add_(1.0)
    np.testing.assert_array_equal(back["embeddings.word"], params["embeddings.word"])


def test_same_logits_as_hugging_face_bert_for_masked_lm():
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    params, batch = _random_params(CONFIG), _batch(CONFIG)
    model = TorchBert.from_numpy(params, CONFIG).eval()
    hf = transformers.BertForMaskedLM(transformers.BertConfig(**CONFIG.to_hf(),
                                                              attn_implementation="eager")).eval()
    state = bert.to_hf_state_dict(numpy_weights(model), CONFIG)
    hf.load_state_dict({k: torch.from_numpy(state[k]) for k in hf.state_dict()})
    with torch.no_grad():
        theirs = hf(**{k: v for k, v in _tensors(batch).items() if k != "labels"}).logits
    np.testing.assert_allclose(_torch_outputs(model, batch)["mlm"].numpy(), theirs.numpy(),
                               rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- lesson 09's files


def test_reads_save_pretrained_and_writes_what_numpy_reads(tmp_path):
    params, batch = _random_params(CONFIG), _batch(CONFIG)
    tokens = [f"t{i}" for i in range(CONFIG.vocab_size)]
    save_pretrained(tmp_path / "numpy", params, CONFIG, tokens)
    model = TorchBert.from_pretrained(tmp_path / "numpy").eval()
    assert model.config == CONFIG
    expected = _numpy_outputs(params, CONFIG, batch)["mlm"]
    np.testing.assert_allclose(_torch_outputs(model, batch)["mlm"].numpy(), expected, atol=1e-5)

    model.save_pretrained(tmp_path / "torch", tokens)
    params_back, config_back, tokens_back = load_pretrained(tmp_path / "torch")
    assert config_back == CONFIG and tokens_back == tokens
    assert set(params_back) == set(params)
    for name in params:
        np.testing.assert_array_equal(params_back[name], params[name], err_msg=name)


def test_reads_a_trainer_checkpoint(tmp_path):
    params, batch = _random_params(CONFIG), _batch(CONFIG)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                             disable_tqdm=True)
    examples = [[2, 7, 8, 9, 3], [2, 10, 11, 3], [2, 12, 13, 14, 15, 3]]
    collator = MLMCollator(PAD, MASK, CONFIG.vocab_size, SPECIAL_IDS, seed=0)
    trainer = Trainer({k: v.copy() for k, v in params.items()}, CONFIG, args, examples,
                      data_collator=collator)
    folder = trainer.save_checkpoint()
    model = TorchBert.from_pretrained(folder).eval()
    expected = _numpy_outputs(params, CONFIG, batch)["mlm"]
    np.testing.assert_allclose(_torch_outputs(model, batch)["mlm"].numpy(), expected, atol=1e-5)


# --------------------------------------------------------------------------- make_train_step

SMALL = bert.BertConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4,
                        intermediate_size=64, max_position_embeddings=32)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_make_train_step_runs_and_learns_on_the_cpu(precision):
    step = make_train_step(SMALL, batch_size=4, seq_len=16, device="cpu", precision=precision)
    losses = [step().item() for _ in range(8)]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]                       # one fixed batch: the loss must fall
    assert step.tokens == 64
    assert step.flops == train_step_flops(SMALL, 4, 16, 4 * round(0.15 * 16))
    assert all(p.dtype == torch.float32 for p in step.model.parameters())
    assert step.batch["positions"].numel() == 4 * 2


def test_make_train_step_same_seed_same_losses_and_checks_its_arguments():
    first = [make_train_step(SMALL, 2, 8, seed=3)().item() for _ in range(2)]
    assert first[0] == first[1]
    with pytest.raises(ValueError, match="precision"):
        make_train_step(SMALL, 2, 8, precision="fp16")
    with pytest.raises(ValueError, match="max_position_embeddings"):
        make_train_step(SMALL, 2, 64)
    assert make_train_step(SMALL.to_dict(), 2, 8).tokens == 16     # a dict config works too


def test_train_step_flops_of_bert_base():
    base = bert.BertConfig(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
                           intermediate_size=3072, max_position_embeddings=512)
    flops = train_step_flops(base, 1, 128, 19)
    matmul_params = 12 * (4 * 768 ** 2 + 2 * 768 * 3072)
    assert flops == 6 * 128 * matmul_params + 12 * 128 * 12 * 128 * 768 + 6 * 19 * (768 ** 2 + 768 * 30522)


# --------------------------------------------------------------------------- grading


def test_the_registry_does_not_import_torch():
    code = "import sys; from autograder import specs; specs.lessons(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_grading_in_a_forked_child_after_the_parent_used_torch_threads():
    """PyTorch's OpenMP pool does not survive fork: the drivers must not hang."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = torch.randn(300, 300)
        (a @ a).sum().item()                            # the parent's pool is now running
        exercise = specs.get_exercise("12.sdpa_attention")
        result = grader.grade(exercise, source=notebook.solution_source(exercise))
        assert result.status == "passed", result.message
        assert torch.get_num_threads() == 2             # the drivers give the setting back
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("exercise_id", ["12.torch_training_step", "12.mlm_dataloader",
                                         "12.numpy_weights"])
def test_grading_in_a_fresh_interpreter(exercise_id):
    """``--device cuda`` grades in a fresh interpreter, where a case's Python numbers arrive as
    0-d arrays: the same path on the CPU."""
    exercise = specs.get_exercise(exercise_id)
    result = grader.grade(exercise, source=notebook.solution_source(exercise), mode="spawn")
    assert result.status == "passed", result.message


# --------------------------------------------------------------------------- on a GPU

GPU_EXERCISES = [ex for ex in specs.get_lesson("12").exercises if "cuda" in ex.devices]


@needs_cuda
@pytest.mark.parametrize("exercise", GPU_EXERCISES, ids=[ex.id for ex in GPU_EXERCISES])
def test_reference_passes_on_the_gpu(exercise):
    result = grader.grade(exercise, source=notebook.solution_source(exercise), on="cuda")
    assert result.status == "passed", result.message


@needs_cuda
def test_model_on_the_gpu_matches_the_numpy_model():
    params, batch = _random_params(CONFIG), _batch(CONFIG)
    model = TorchBert.from_numpy(params, CONFIG).to("cuda").eval()
    ours, theirs = _numpy_outputs(params, CONFIG, batch), _torch_outputs(model, batch)
    for name in ours:
        np.testing.assert_allclose(theirs[name].cpu().numpy(), ours[name], rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    back = numpy_weights(model)
    np.testing.assert_array_equal(back["layers.0.W1"], params["layers.0.W1"])


@needs_cuda
@pytest.mark.parametrize("precision,compile", [("fp32", False), ("bf16", False), ("bf16", True)])
def test_make_train_step_on_the_gpu(precision, compile):
    step = make_train_step(SMALL, batch_size=8, seq_len=32, device="cuda", precision=precision,
                           compile=compile)
    losses = [step().item() for _ in range(5)]
    torch.cuda.synchronize()
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert step.batch["input_ids"].is_cuda
    assert all(p.dtype == torch.float32 and p.is_cuda for p in step.model.parameters())
