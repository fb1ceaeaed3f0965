"""Lesson 17: LoRA, against central differences, PyTorch's autograd and the unadapted model."""

import numpy as np
import pytest

from solutions import lora
from solutions.bert import BertConfig, count_parameters, init_bert
from solutions.welcome import numerical_gradient

rng = np.random.default_rng(17)


def _tiny_bert(num_labels=3):
    config = BertConfig(vocab_size=23, hidden_size=8, num_layers=2, num_heads=2,
                        intermediate_size=12, max_position_embeddings=10, dropout=0.0)
    params = {k: v.astype(np.float64) for k, v in init_bert(config, np.random.default_rng(0)).items()}
    params.update({k: v.astype(np.float64) for k, v in
                   lora.init_head(config.hidden_size, num_labels, np.random.default_rng(1)).items()})
    params["head.W"] *= 50                        # a head big enough for gradients to matter
    batch = {"input_ids": rng.integers(5, 23, size=(3, 6)),
             "attention_mask": np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4]),
             "labels": np.array([0, 2, 1])}
    return config, params, batch


def test_lora_layer_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    x, W, b = rng.normal(size=(2, 5, 6)), rng.normal(size=(6, 4)), rng.normal(size=4)
    A, B, dout = rng.normal(size=(6, 3)), rng.normal(size=(3, 4)), rng.normal(size=(2, 5, 4))
    out, cache = lora.lora_forward(x, W, b, A, B, 0.5)
    dx, dA, dB = lora.lora_backward(dout, cache)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in {"x": x, "A": A, "B": B}.items()}
    out_t = t["x"] @ torch.tensor(W) + torch.tensor(b) + 0.5 * t["x"] @ t["A"] @ t["B"]
    (out_t * torch.tensor(dout)).sum().backward()
    assert np.allclose(out, out_t.detach().numpy(), atol=1e-12)
    for name, mine in {"x": dx, "A": dA, "B": dB}.items():
        assert np.allclose(mine, t[name].grad.numpy(), atol=1e-10), name


def test_merged_layer_equals_the_adapted_layer_and_b_zero_is_the_original():
    x, W, b = rng.normal(size=(7, 6)), rng.normal(size=(6, 5)), rng.normal(size=5)
    A, B = rng.normal(size=(6, 2)), rng.normal(size=(2, 5))
    out, _ = lora.lora_forward(x, W, b, A, B, 2.0)
    assert np.allclose(out, x @ lora.merge_lora(W, A, B, 2.0) + b)
    assert np.array_equal(lora.lora_forward(x, W, b, A, np.zeros_like(B), 2.0)[0], x @ W + b)


def test_parameter_count_is_the_size_of_the_adapters_init_lora_makes():
    config = BertConfig(vocab_size=50, hidden_size=16, num_layers=3, num_heads=2,
                        intermediate_size=40, max_position_embeddings=8)
    params = init_bert(config, np.random.default_rng(0))
    for targets in [("Wq", "Wv"), ("Wq", "Wk", "Wv", "Wo", "W1", "W2")]:
        adapters = lora.init_lora(params, config, 4, targets)
        assert sum(a.size for a in adapters.values()) == lora.lora_parameter_count(config, 4, targets)
        assert all(not adapters[k].any() for k in adapters if k.endswith(".B"))
    assert lora.lora_parameter_count(config, 4) < count_parameters(config) / 10


def test_pooled_classifier_gradients_match_central_differences():
    config, params, batch = _tiny_bert()
    _, grads, _ = lora.pooled_classifier_loss_and_grads(params, config, batch)
    assert set(grads) == set(params)
    for name in ["head.W", "head.b", "layers.1.Wv", "layers.0.ln1_gamma", "embeddings.position"]:
        def loss(value, name=name):
            return lora.pooled_classifier_loss_and_grads({**params, name: value}, config, batch,
                                                         compute_grads=False)[0]
        expected = numerical_gradient(loss, params[name])
        assert np.abs(grads[name] - expected).max() < 1e-6 * max(1, np.abs(expected).max()), name
    assert np.abs(grads["embeddings.position"]).max() > 1e-4       # the check had something to see


def test_lora_loss_and_grads_match_central_differences_through_a_bert():
    config, params, batch = _tiny_bert()
    adapters = {k: v.astype(np.float64) for k, v in
                lora.init_lora(params, config, 2, ("Wq", "W2"), np.random.default_rng(3)).items()}
    for k in adapters:                                 # B = 0 would hide a wrong dA
        adapters[k] = adapters[k] + rng.normal(scale=0.3, size=adapters[k].shape)

    def loss_fn(p, b):
        return lora.pooled_classifier_loss_and_grads(p, config, b)[:2]

    loss, grads = lora.lora_loss_and_grads(params, adapters, 1.5, loss_fn, batch)
    assert "layers.0.Wq" not in grads and "layers.1.W2" not in grads and "head.W" in grads
    for key in ["layers.0.Wq.A", "layers.1.W2.B", "layers.1.Wq.B"]:
        def f(value, key=key):
            return lora.pooled_classifier_loss_and_grads(
                lora.merged_params(params, {**adapters, key: value}, 1.5), config, batch,
                compute_grads=False)[0]
        expected = numerical_gradient(f, adapters[key])
        assert np.abs(grads[key] - expected).max() < 1e-6 * max(1, np.abs(expected).max()), key


def test_the_sweep_script_prints_a_row_per_setting(capsys, monkeypatch):
    import importlib.util
    from conftest import ROOT
    from solutions.data import MissingSource
    from solutions.sentence_embeddings import load_minilm_bert
    try:
        load_minilm_bert()
    except MissingSource as err:
        pytest.skip(str(err))
    spec = importlib.util.spec_from_file_location("lora_sweep", ROOT / "scripts" / "lora_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    assert sweep.main(["--quick"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [(row[0], row[1], row[2]) for row in rows] == [("Wq,", "Wv", "1"), ("Wq,", "Wv", "2")]
    for row in rows:
        trained, accuracies = int(row[3].replace(",", "")), [float(v) for v in row[4:8]]
        assert trained == 2 * 6 * int(row[2]) * (384 + 384) + 384 * 2 + 2
        assert all(0 <= a <= 1 for a in accuracies)


def test_torch_lora_in_the_forward_pass_equals_the_numpy_merged_route():
    torch = pytest.importorskip("torch")
    from solutions.torch_bert import TorchBert
    from solutions.torch_lora import MeanPoolClassifier, add_lora, load_adapters
    config, params, batch = _tiny_bert(num_labels=3)
    adapters = {k: v.astype(np.float64) + rng.normal(scale=0.3, size=v.shape)
                for k, v in lora.init_lora(params, config, 2, ("Wq", "Wv", "W1"),
                                           np.random.default_rng(4)).items()}
    encoder = {k: v for k, v in params.items() if not k.startswith("head.")}
    head = {k: params[k] for k in ("head.W", "head.b")}
    model = MeanPoolClassifier(TorchBert.from_numpy(encoder, config).double(), 3).double()
    trainable = add_lora(model, 2, 3.0, ("Wq", "Wv", "W1"))
    load_adapters(model, adapters, head)
    assert set(trainable) == {f"bert.layers.{i}.{m}.{p}" for i in range(2)
                              for m in ("query", "value", "ff1") for p in "AB"} | {"head.weight",
                                                                                  "head.bias"}
    tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
    loss = model.loss(tensors)
    loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)

    def loss_fn(p, b):
        return lora.pooled_classifier_loss_and_grads(p, config, b)[:2]

    numpy_loss, grads = lora.lora_loss_and_grads(params, adapters, 1.5, loss_fn, batch)
    assert abs(loss.item() - numpy_loss) < 1e-12
    layer_names = {"Wq": "query", "Wv": "value", "W1": "ff1"}
    for key, value in adapters.items():
        _, i, target, part = key.split(".")
        torch_grad = trainable[f"bert.layers.{i}.{layer_names[target]}.{part}"].grad.numpy()
        assert np.allclose(torch_grad, grads[key], rtol=1e-9, atol=1e-12), key
    assert np.allclose(trainable["head.weight"].grad.numpy().T, grads["head.W"], atol=1e-12)


def test_torch_lora_linear_freezes_its_layer_and_computes_lora_forward():
    torch = pytest.importorskip("torch")
    from solutions.torch_lora import LoRALinear
    base = torch.nn.Linear(6, 4).double()
    layer = LoRALinear(base, rank=3, alpha=6.0, generator=torch.Generator().manual_seed(0))
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["A", "B"]
    assert not layer.B.detach().any()
    with torch.no_grad():
        layer.B.normal_()
    x = rng.normal(size=(5, 6))
    out, _ = lora.lora_forward(x, base.weight.detach().numpy().T, base.bias.detach().numpy(),
                               layer.A.detach().numpy(), layer.B.detach().numpy(), 2.0)
    assert np.allclose(layer(torch.as_tensor(x)).detach().numpy(), out, atol=1e-12)
    merged = lora.merge_lora(base.weight.detach().numpy().T, layer.A.detach().numpy(),
                             layer.B.detach().numpy(), 2.0)
    assert np.allclose(layer.merged_weight().detach().numpy().T, merged, atol=1e-12)


def test_forming_a_times_b_in_lora_forward_costs_a_case():
    """The docstring says A @ B is never formed: the right numbers that way lose the one case
    the grader adds by reading the code, in any spelling of the product."""
    from autograder import grader, specs
    exercise = specs.get_exercise("17.lora_forward")
    formed = ("def lora_forward(x, W, b, A, B, scale):\n    h = x @ A\n"
              "    return x @ W + b + scale * (x @ ({product})), (x, W, A, B, scale, h)\n")
    n_cases = len(exercise.make_cases())
    for product in ("A @ B", "np.matmul(A, B)", "np.dot(A, B)", "A.dot(B)"):
        result = grader.grade(exercise, source=formed.format(product=product))
        assert result.status == "failed", (product, result.message)
        assert result.score == round(exercise.points * n_cases / (n_cases + 1), 2), product
        assert 'case "A @ B never formed"' in result.message
        assert "line 3 forms A @ B" in result.message
    # (x @ A) @ B, and A @ B outside the function (a quick test in the cell), are fine
    right = ("def lora_forward(x, W, b, A, B, scale):\n    h = x @ A\n"
             "    return x @ W + b + scale * (h @ B), (x, W, A, B, scale, h)\n\n"
             "A, B = np.ones((3, 1)), np.ones((1, 2))\nfull = A @ B\n")
    assert grader.grade(exercise, source=right).status == "passed"
