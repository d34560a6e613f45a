"""Backpropagation against centred finite differences of the cost (fastmlp.check_gradients), float64.

Inputs are random and continuous, so no pre-activation sits within ε of relu's kink.
"""
import numpy as np
import pytest

import fastmlp
from fastmlp import model as model_module
from fastmlp import reference

from conftest import HIDDEN_ACTIVATIONS, OUTPUT_LOSS_PAIRS

TOLERANCE = 1e-7


def problem(rng, output_activation, loss, n_samples=6, n_features=4, n_outputs=3):
    """(X, y, task): class labels for softmax outputs, targets in the output's range otherwise."""
    X = rng.standard_normal((n_samples, n_features))
    if output_activation == "softmax":
        return X, rng.permutation(np.arange(n_samples) % n_outputs), "classification"
    if loss == "poisson":   # counts, zeros among them
        return X, rng.poisson(1.5, (n_samples, n_outputs)), "regression"
    if output_activation in ("sigmoid", "relu"):
        return X, rng.uniform(0.05, 0.95, (n_samples, n_outputs)), "regression"
    if output_activation == "tanh":
        return X, rng.uniform(-0.9, 0.9, (n_samples, n_outputs)), "regression"
    return X, rng.standard_normal((n_samples, n_outputs)), "regression"


def parameters(rng, layer_sizes):
    """Random weights, and biases that are not zero: with zero biases a layer of dead relus feeds
    exactly 0 into the next relu, right on its kink, where finite differences see slope ½."""
    weights = [rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
               for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])]
    biases = [rng.normal(0, 0.5, n_out) for n_out in layer_sizes[1:]]
    return weights, biases


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("hidden, l2", [((5,), 0.0), ((5,), 0.1), ((5, 4), 0.0), ((5, 4), 0.05)],
                         ids=["one-hidden", "one-hidden-l2", "two-hidden", "two-hidden-l2"])
@pytest.mark.parametrize("output_activation, loss", OUTPUT_LOSS_PAIRS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_backprop_matches_finite_differences(rng, activation, output_activation, loss, hidden, l2, backend):
    X, y, task = problem(rng, output_activation, loss)
    weights, biases = parameters(rng, (X.shape[1],) + hidden + (3,))
    result = fastmlp.check_gradients(X, y, hidden=hidden, activation=activation,
                                     output_activation=output_activation, loss=loss, l2=l2, task=task,
                                     weights=weights, biases=biases, backend=backend)
    assert len(result["weights"]) == len(result["biases"]) == len(hidden) + 1
    assert result["max"] < TOLERANCE, result


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_check_with_default_random_weights(rng, seed):
    """The default starting point of check_gradients (fan-in weights, zero biases)."""
    X, y, task = problem(rng, "sigmoid", "quadratic")
    result = fastmlp.check_gradients(X, y, hidden=(5, 4), output_activation="sigmoid", task=task, seed=seed)
    assert result["max"] < TOLERANCE, result


def test_gradient_check_without_hidden_layer(rng):
    X, y, task = problem(rng, "softmax", "log_loss")
    result = fastmlp.check_gradients(X, y, hidden=(), loss="log_loss", task=task)
    assert len(result["weights"]) == 1
    assert result["max"] < TOLERANCE, result


@pytest.mark.parametrize("layer, which", [(0, "weights"), (1, "weights"), (0, "biases"), (1, "biases")])
def test_a_wrong_gradient_is_detected(rng, monkeypatch, layer, which):
    """One gradient entry off by 1e-3 must push that layer's relative error far above 1e-7."""
    X, y, task = problem(rng, "sigmoid", "quadratic")
    correct = model_module.MLP.backprop

    def wrong_backprop(self, X, y, backend="compiled"):
        weight_grads, bias_grads = correct(self, X, y, backend)
        grads = weight_grads if which == "weights" else bias_grads
        grads[layer].flat[0] += 1e-3
        return weight_grads, bias_grads

    monkeypatch.setattr(model_module.MLP, "backprop", wrong_backprop)
    result = fastmlp.check_gradients(X, y, hidden=(5,), output_activation="sigmoid", task=task)
    assert result[which][layer] > 1e-4, result
    others = [error for key in ("weights", "biases") for l, error in enumerate(result[key])
              if (key, l) != (which, layer)]
    assert max(others) < TOLERANCE, result
    assert result["max"] == result[which][layer]


def test_a_wrong_activation_derivative_is_detected(rng, monkeypatch):
    """A textbook slip, σ' = σ instead of σ(1 − σ), in the reference backprop is caught."""
    X, y, task = problem(rng, "sigmoid", "quadratic")
    correct = reference.derivative
    monkeypatch.setattr(reference, "derivative",
                        lambda A, activation: A if activation == "sigmoid" else correct(A, activation))
    result = fastmlp.check_gradients(X, y, hidden=(5,), output_activation="sigmoid", task=task,
                                     backend="numpy")
    assert result["max"] > 1e-2, result


def test_gradient_check_leaves_given_weights_alone(rng):
    X, y, task = problem(rng, "identity", "quadratic")
    weights = [rng.standard_normal((4, 5)), rng.standard_normal((5, 3))]
    biases = [rng.standard_normal(5), rng.standard_normal(3)]
    saved = [p.copy() for p in weights + biases]
    result = fastmlp.check_gradients(X, y, hidden=(5,), activation="tanh", weights=weights, biases=biases,
                                     task=task)
    assert result["max"] < TOLERANCE
    for before, after in zip(saved, weights + biases):
        np.testing.assert_array_equal(before, after)
