"""Lesson 15: DP-SGD, FedAvg, WEAT and integrated gradients, against independent computations."""

import math

import numpy as np
import pytest

from solutions import responsible as rs
from solutions.optimizers import logreg_loss_and_grad
from solutions.welcome import numerical_gradient

rng = np.random.default_rng(15)


def test_per_example_grads_match_torch_vmap_of_grad():
    torch = pytest.importorskip("torch")
    from torch.func import grad, vmap

    x, dout = rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3, 2))
    W, b = torch.tensor(rng.normal(size=(4, 2))), torch.tensor(rng.normal(size=2))

    def one_example(W, b, x, dout):                   # the loss whose gradient is x^T dout
        return ((x @ W + b) * dout).sum()

    dW, db = vmap(grad(one_example, argnums=(0, 1)), in_dims=(None, None, 0, 0))(
        W, b, torch.tensor(x), torch.tensor(dout))
    ours = rs.per_example_linear_grads(x, dout)
    np.testing.assert_allclose(ours[0], dW.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours[1], db.numpy(), atol=1e-12)


def test_softmax_regression_per_example_grads_sum_to_n_times_the_batch_gradient():
    X, y = rng.normal(size=(30, 5)), rng.integers(0, 3, size=30)
    params = {"W": rng.normal(size=(5, 3)), "b": rng.normal(size=3)}
    per_example = rs.softmax_regression_per_example_grads(params, X, y)
    _, dW, db = logreg_loss_and_grad(params["W"], params["b"], X, y)
    np.testing.assert_allclose(per_example["W"].sum(axis=0), 30 * dW, atol=1e-12)
    np.testing.assert_allclose(per_example["b"].sum(axis=0), 30 * db, atol=1e-12)


def test_clipping_bounds_every_example_and_keeps_directions():
    grads = {"W": rng.normal(size=(20, 4, 3)) * rng.uniform(0.01, 1, size=(20, 1, 1)),
             "b": 0.01 * rng.normal(size=(20, 3))}
    clipped = rs.clip_per_example(grads, 1.0)

    def norms(g):
        return np.sqrt(sum(np.sum(v.reshape(20, -1) ** 2, axis=1) for v in g.values()))

    before, after = norms(grads), norms(clipped)
    assert np.all(after <= 1.0 + 1e-9)
    small = before < 1.0
    assert small.any() and (~small).any()
    np.testing.assert_allclose(after[small], before[small], rtol=1e-5)   # (the 1e-6 in the factor)
    factor = after / before                             # each example scaled as a whole
    for name, g in grads.items():
        np.testing.assert_allclose(clipped[name], g * factor.reshape((20,) + (1,) * (g.ndim - 1)),
                                   rtol=1e-12)


def test_dp_noise_has_the_promised_standard_deviation():
    N, C, sigma = 10, 0.5, 2.0
    zeros = {"w": np.zeros((N, 4000))}
    draws = rs.dp_noisy_mean(zeros, C, sigma, {"w": rng.normal(size=4000)})["w"]
    assert abs(np.std(draws) / (sigma * C / N) - 1) < 0.05


@pytest.mark.parametrize("sigma,steps", [(1.0, 1), (2.0, 50), (10.0, 200), (50.0, 200)])
def test_rdp_epsilon_is_the_closed_form_minimum(sigma, steps):
    # min over alpha of  T alpha / (2 sigma^2) + L / (alpha - 1)  =  T / (2 sigma^2) + sqrt(2 T L) / sigma
    L = math.log(1e5)
    expected = steps / (2 * sigma ** 2) + math.sqrt(2 * steps * L) / sigma
    assert abs(rs.rdp_epsilon(sigma, steps, 1e-5) - expected) < 1e-3 * expected
    assert rs.rdp_epsilon(0.0, steps, 1e-5) == math.inf


@pytest.mark.parametrize("q,sigma,alpha", [(0.01, 1.1, 2), (0.05, 1.0, 8), (0.3, 0.8, 5),
                                           (0.1, 2.0, 16), (0.02, 4.0, 32)])
def test_sampled_gaussian_rdp_is_its_definition_integrated(q, sigma, alpha):
    # The step's cost is log E_{z ~ N(0, s^2)} [(1 - q + q exp((2z - 1) / (2 s^2)))^alpha] / (alpha - 1):
    # the Renyi divergence of the mixture (1 - q) N(0, s^2) + q N(1, s^2) from N(0, s^2).
    from scipy import integrate

    def integrand(z):
        mixture_ratio = (1 - q) + q * math.exp((2 * z - 1) / (2 * sigma ** 2))
        return math.exp(-z * z / (2 * sigma ** 2) + alpha * math.log(mixture_ratio)) \
            / math.sqrt(2 * math.pi * sigma ** 2)

    moment, _ = integrate.quad(integrand, -20 * sigma, 20 * sigma + alpha, epsabs=0,
                               epsrel=1e-12, limit=1000)
    expected = math.log(moment) / (alpha - 1)
    got = rs.sampled_gaussian_rdp(q, sigma, alpha)
    assert abs(got - expected) < 1e-8 * expected, (q, sigma, alpha, got, expected)


def test_sampled_gaussian_rdp_at_the_ends_and_in_between():
    assert rs.sampled_gaussian_rdp(1.0, 3.0, 7) == 7 / (2 * 3.0 ** 2)
    assert rs.sampled_gaussian_rdp(0.0, 3.0, 7) == 0.0
    costs = [rs.sampled_gaussian_rdp(q, 2.0, 10) for q in (0.001, 0.01, 0.1, 0.5, 0.999)]
    assert all(a < b for a, b in zip(costs, costs[1:]))            # more sampling, more cost
    assert costs[-1] < 10 / (2 * 2.0 ** 2)
    assert math.isfinite(rs.sampled_gaussian_rdp(0.01, 0.5, 1024))  # no overflow at high orders


def test_poisson_sampling_spends_less_privacy_and_noise_multiplier_for_inverts_it():
    full, sampled = rs.rdp_epsilon(5.0, 200, 1e-5), rs.rdp_epsilon(5.0, 200, 1e-5, sample_rate=0.05)
    assert sampled < full / 10
    assert rs.rdp_epsilon(0.0, 200, 1e-5, sample_rate=0.05) == math.inf
    for q in (1.0, 0.05):
        sigma = rs.noise_multiplier_for(1.0, 200, 1e-5, sample_rate=q)
        assert rs.rdp_epsilon(sigma, 200, 1e-5, sample_rate=q) <= 1.0
        assert rs.rdp_epsilon(sigma / 1.002, 200, 1e-5, sample_rate=q) > 1.0
    with pytest.raises(ValueError, match="out of reach"):
        rs.noise_multiplier_for(1e-6, 200, 1e-5)


def test_fedavg_with_one_local_step_is_gradient_descent_on_all_the_data():
    clients = [(rng.normal(size=(n, 4)), rng.integers(0, 3, size=n)) for n in (5, 17, 9)]
    start = {"W": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    saved = {k: v.copy() for k, v in start.items()}
    new = rs.federated_averaging(start, clients, 1, 0.3, rs.softmax_regression_loss_and_grads)
    X = np.concatenate([c[0] for c in clients])
    y = np.concatenate([c[1] for c in clients])
    _, grads = rs.softmax_regression_loss_and_grads(start, X, y)
    for k in start:
        np.testing.assert_allclose(new[k], start[k] - 0.3 * grads[k], atol=1e-12)
        np.testing.assert_array_equal(start[k], saved[k])               # the input is not modified
    many = rs.federated_averaging(start, clients, 5, 0.3, rs.softmax_regression_loss_and_grads)
    assert max(np.abs(many[k] - new[k]).max() for k in start) > 1e-3


def test_weat_is_antisymmetric_and_ignores_lengths():
    X, Y, A, B = (rng.normal(size=(6, 5)) for _ in range(4))
    d = rs.weat_effect_size(X, Y, A, B)
    assert abs(rs.weat_effect_size(Y, X, A, B) + d) < 1e-12
    assert abs(rs.weat_effect_size(X, Y, B, A) + d) < 1e-12
    lengths = rng.uniform(0.1, 10, size=(6, 1))
    assert abs(rs.weat_effect_size(X * lengths, Y, A * 3.0, B) - d) < 1e-12
    direction = rng.normal(size=5)
    strong = rs.weat_effect_size(direction + 0.1 * X, -direction + 0.1 * Y,
                                 direction + 0.1 * A, -direction + 0.1 * B)
    assert strong > 1.5


def test_integrated_gradients_are_complete_and_exact_for_a_linear_model():
    w = rng.normal(size=7)
    x, baseline = rng.normal(size=7), rng.normal(size=7)
    np.testing.assert_allclose(rs.integrated_gradients(lambda z: w, x, baseline, steps=3),
                               (x - baseline) * w, atol=1e-12)
    X = rng.uniform(0, 1, size=(200, 6))
    y = (X[:, 0] + X[:, 1] > 1).astype(np.int64)
    mlp = rs.train_mlp(X, y, hidden=8, steps=100)
    point, zero = X[:1], np.zeros((1, 6))
    ig = rs.integrated_gradients(lambda z: rs.mlp_input_gradient(mlp, z, 1), point, zero, steps=400)
    gap = rs.mlp_forward(mlp, point)[0, 1] - rs.mlp_forward(mlp, zero)[0, 1]
    assert abs(ig.sum() - gap) < 1e-3 * max(1.0, abs(gap))


def test_mlp_input_gradient_matches_central_differences():
    mlp = rs.train_mlp(rng.uniform(size=(50, 5)), rng.integers(0, 3, size=50), hidden=6, steps=20)
    x = rng.uniform(size=(1, 5))
    numeric = numerical_gradient(lambda v: float(rs.mlp_forward(mlp, v)[0, 2]), x.copy())
    np.testing.assert_allclose(rs.mlp_input_gradient(mlp, x, 2), numeric, atol=1e-7)


def test_an_input_dict_changed_in_place_is_reported():
    """The grader looks inside dicts of arrays too: scaling the caller's gradients in place
    returns the right values, but the docstring says the input is not modified, so the case
    fails, and the warning says why."""
    from autograder import grader, specs
    source = ("def clip_per_example(per_example_grads, max_norm):\n"
              "    squares = sum(np.sum(g.reshape(len(g), -1) ** 2, axis=1)\n"
              "                  for g in per_example_grads.values())\n"
              "    factor = np.minimum(1.0, max_norm / (np.sqrt(squares) + 1e-6))\n"
              "    for g in per_example_grads.values():\n"
              "        g *= factor.reshape((-1,) + (1,) * (g.ndim - 1))\n"
              "    return per_example_grads\n")
    result = grader.grade(specs.get_exercise("15.clip_per_example"), source=source)
    assert result.status == "failed"
    assert "per_example_grads left as they were: got False, expected True" in result.message
    assert any("changed its input `per_example_grads` in place" in w for w in result.warnings)


def test_a_keyword_input_changed_in_place_is_reported_too():
    """attention_forward's mask is a keyword argument of the cases; writing into it is seen."""
    from autograder import grader, specs
    source = ("def attention_forward(q, k, v, mask=None):\n"
              "    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])\n"
              "    if mask is not None:\n"
              "        scores = np.where(mask, scores, -np.inf)\n"
              "        mask[...] = True\n"
              "    finite = np.where(np.isfinite(scores), scores, 0.0).max(-1, keepdims=True)\n"
              "    e = np.exp(scores - finite)\n"
              "    total = e.sum(-1, keepdims=True)\n"
              "    w = e / np.where(total > 0, total, 1.0)\n"
              "    return w @ v, (q, k, v, w)\n")
    result = grader.grade(specs.get_exercise("05.attention_forward"), source=source)
    assert any("changed its input `mask` in place" in w for w in result.warnings), result.warnings


def test_a_name_the_cell_never_imported_says_how_cells_are_graded():
    """A notebook's own imports do not reach the command-line grader: the message says so."""
    from autograder import grader, specs
    source = ("def clip_per_example(per_example_grads, max_norm):\n"
              "    return OrderedDict(per_example_grads)\n")
    result = grader.grade(specs.get_exercise("15.clip_per_example"), source=source)
    assert result.status == "error"
    assert "NameError: name 'OrderedDict' is not defined" in result.message
    assert "import anything else inside the cell" in result.message
