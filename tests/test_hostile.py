"""Hostile input, round two (issue 25): plain regression tests for what it found."""
import numpy as np
import pytest

import fastmlp


# ---------------------------------------------------------------------------------------------
# Losses and the targets they take (issue 25, 2): defined with backprop its exact gradient, or a
# ValueError saying why
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    return X, rng


@pytest.mark.parametrize("loss, task, make_y, message", [
    ("log_loss", "regression", lambda rng: rng.standard_normal((6, 2)), r"must be in \[0, 1\] for loss 'log_loss'"),
    ("log_loss", "regression", lambda rng: rng.uniform(0, 1, (6, 3)), "rows must each sum to 1"),
    ("log_loss", None, lambda rng: np.array([[1, 1, 0], [0, 1, 0]] * 3), "rows must each sum to 1"),
    ("cross_entropy", "regression", lambda rng: 2 * rng.standard_normal((6, 2)), r"must be in \[0, 1\] for loss 'cross_"),
    ("poisson", "regression", lambda rng: -rng.uniform(0.1, 1, 6), "must be >= 0 for loss 'poisson'"),
])
@pytest.mark.parametrize("entry", ["fit", "check_gradients", "targets"])
def test_a_loss_rejects_targets_it_is_not_defined_for(small, loss, task, make_y, message, entry):
    X, rng = small
    y = make_y(rng)
    with pytest.raises(ValueError, match=message):
        if entry == "fit":
            fastmlp.fit(X, y, loss=loss, task=task, hidden=(3,), epochs=1)
        elif entry == "check_gradients":
            fastmlp.check_gradients(X, y, loss=loss, task=task)
        else:   # a fitted model's cost, score and backprop decide the same way
            Y = np.asarray(y, float).reshape(len(X), -1)
            good = {"log_loss": rng.dirichlet(np.ones(Y.shape[1]), len(X)), "poisson": np.abs(Y),
                    "cross_entropy": rng.uniform(0, 1, Y.shape)}[loss]
            model = fastmlp.fit(X, good, loss=loss, task="regression", hidden=(3,), epochs=1, learning_rate=0.1)
            model.cost(X, y)


@pytest.mark.parametrize("loss, output_activation, make_y", [
    ("log_loss", "softmax", lambda rng: rng.dirichlet(np.ones(3), 6)),                  # soft labels
    ("cross_entropy", "sigmoid", lambda rng: rng.uniform(0, 1, (6, 2))),               # probabilities
    ("poisson", "exp", lambda rng: rng.poisson(2.0, (6, 2)).astype(float)),            # counts
    ("quadratic", "softmax", lambda rng: 3 * rng.standard_normal((6, 3))),             # any targets
    ("quadratic", "sigmoid", lambda rng: 3 * rng.standard_normal((6, 2))),
])
def test_targets_a_loss_accepts_get_backprop_as_their_exact_gradient(small, loss, output_activation, make_y):
    X, rng = small
    result = fastmlp.check_gradients(X, make_y(rng), hidden=(4,), loss=loss, output_activation=output_activation,
                                     task="regression")
    assert result["max"] < 1e-6, result


def test_log_loss_accepts_soft_labels_rounded_in_float32(small):
    X, rng = small
    y = rng.dirichlet(np.ones(10), 6).astype(np.float32)   # each row sums to 1 within float32 rounding
    model = fastmlp.fit(X, y, loss="log_loss", task="regression", hidden=(3,), epochs=1, learning_rate=0.1)
    assert np.isfinite(model.output(X)).all()


# ---------------------------------------------------------------------------------------------
# Sample weights, checked in the dtype they are used in (issue 25, 6)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weights, message", [
    (np.full(6, 1e-50), "too small for float32"),                      # 0 in float32: a 0/0 mean
    (np.full(6, 1e-40), "too small for float32"),                      # subnormal in float32
    (np.full(6, 1e38), "sums to 6e\\+38, more than the largest float32"),
    (np.full(6, 1e39), "too large for float32"),
])
def test_sample_weights_are_checked_in_float32(small, weights, message):
    X, _ = small
    y = np.arange(6) % 2
    with pytest.raises(ValueError, match=message):
        fastmlp.fit(X, y, sample_weight=weights, epochs=1)
    fastmlp.fit(X, y, sample_weight=weights, dtype="float64", epochs=1, learning_rate=0.1)   # fine there
