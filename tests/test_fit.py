"""Seeded end-to-end runs of fastmlp.fit: backends agree, runs repeat, the loss goes down, and the
seed network learns Fashion-MNIST."""
import warnings

import numpy as np
import pytest

import fastmlp

from conftest import FASHION_MNIST_DIR


def classification_data(rng, n_samples=203, n_features=10, n_classes=3):
    """Blobs around random centres: learnable, and 203 rows leave a short last mini-batch."""
    centres = 2 * rng.standard_normal((n_classes, n_features))
    y = rng.integers(0, n_classes, n_samples)
    X = centres[y] + rng.standard_normal((n_samples, n_features))
    return X, y


def regression_data(rng, n_samples=150, n_features=5):
    X = rng.standard_normal((n_samples, n_features))
    y = np.tanh(X @ rng.standard_normal(n_features)) + 0.1 * rng.standard_normal(n_samples)
    return X, y


def assert_same_parameters(a, b, **tolerance):
    assert len(a.weights) == len(b.weights)
    for got, expected in zip(a.weights + a.biases, b.weights + b.biases):
        if tolerance:
            np.testing.assert_allclose(got, expected, **tolerance)
        else:
            np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------------------
# Reproducibility: backends, seeds, threads, continuing from given weights
# ---------------------------------------------------------------------------------------------

BACKEND_TOLERANCE = {"float32": {"rtol": 2e-3, "atol": 2e-4}, "float64": {"rtol": 1e-9, "atol": 1e-11}}
SETTINGS = [
    dict(hidden=(8, 6), activation="sigmoid", learning_rate=1.0),
    dict(hidden=(8,), activation="tanh", loss="log_loss", learning_rate=0.2, momentum=0.9, l2=1e-3),
    dict(hidden=(8,), activation="relu", loss="cross_entropy", learning_rate=0.2, momentum=0.5),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=["sigmoid-quadratic", "tanh-log_loss", "relu-cross_entropy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_and_numpy_backends_agree(rng, dtype, settings):
    X, y = classification_data(rng)
    common = dict(epochs=5, batch_size=32, seed=0, dtype=dtype, **settings)
    compiled = fastmlp.fit(X, y, backend="compiled", **common)
    numpy = fastmlp.fit(X, y, backend="numpy", **common)
    assert_same_parameters(compiled, numpy, **BACKEND_TOLERANCE[dtype])
    np.testing.assert_allclose(compiled.history["loss"], numpy.history["loss"],
                               rtol=BACKEND_TOLERANCE[dtype]["rtol"])
    assert compiled.history["loss"][-1] < compiled.history["loss"][0]


def test_backends_agree_on_regression(rng):
    X, y = regression_data(rng)
    common = dict(hidden=(7,), activation="tanh", epochs=5, batch_size=16, learning_rate=0.1, seed=3,
                  dtype="float64")
    compiled = fastmlp.fit(X, y, **common)
    numpy = fastmlp.fit(X, y, backend="numpy", **common)
    assert_same_parameters(compiled, numpy, **BACKEND_TOLERANCE["float64"])
    np.testing.assert_allclose(compiled.predict(X), numpy.predict(X), rtol=1e-9)


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_identical_weights(rng, dtype, backend):
    X, y = classification_data(rng)
    common = dict(hidden=(8, 6), epochs=3, batch_size=32, momentum=0.9, learning_rate=0.5, dtype=dtype,
                  backend=backend)
    first = fastmlp.fit(X, y, seed=7, **common)
    second = fastmlp.fit(X, y, seed=7, **common)
    other = fastmlp.fit(X, y, seed=8, **common)
    assert_same_parameters(first, second)
    assert first.history["loss"] == second.history["loss"]
    assert not np.array_equal(first.weights[0], other.weights[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_count_gives_bit_identical_weights(rng, threads, dtype):
    """Wide enough layers and batches that the GEMM really splits its work between two threads."""
    X = rng.standard_normal((300, 100))
    y = rng.integers(0, 10, 300)
    common = dict(hidden=(64, 48), epochs=2, batch_size=128, learning_rate=0.5, momentum=0.9, seed=0,
                  dtype=dtype)
    threads(1)
    one = fastmlp.fit(X, y, **common)
    threads(2)
    two = fastmlp.fit(X, y, **common)
    assert_same_parameters(one, two)
    assert one.history["loss"] == two.history["loss"]
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_continues_from_given_weights(rng, dtype, backend):
    """Without shuffling, 1 epoch + 1 epoch from its weights is the same computation as 2 epochs."""
    X, y = classification_data(rng)
    common = dict(hidden=(8, 6), batch_size=32, learning_rate=1.0, shuffle=False, dtype=dtype,
                  backend=backend)
    first = fastmlp.fit(X, y, epochs=1, seed=0, **common)
    given_weights, given_biases = first.weights, first.biases
    saved = [p.copy() for p in given_weights + given_biases]
    second = fastmlp.fit(X, y, epochs=1, weights=given_weights, biases=given_biases, **common)
    both = fastmlp.fit(X, y, epochs=2, seed=0, **common)
    assert_same_parameters(second, both)
    assert second.history["loss"][0] == both.history["loss"][1]
    for before, after in zip(saved, given_weights + given_biases):   # the given arrays are untouched
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(second.weights[0], saved[0])


def test_fit_from_float64_weights_in_float32(rng):
    """Given weights of another dtype are converted (copied), not rejected."""
    X, y = classification_data(rng)
    start = fastmlp.fit(X, y, hidden=(5,), epochs=1, seed=0, dtype="float64")
    model = fastmlp.fit(X, y, hidden=(5,), epochs=1, weights=start.weights, biases=start.biases,
                        dtype="float32")
    assert model.weights[0].dtype == np.float32
    assert start.weights[0].dtype == np.float64


# ---------------------------------------------------------------------------------------------
# Welch Labs, "Neural Networks Demystified": test scores from hours of sleep and study
# ---------------------------------------------------------------------------------------------

WELCH_X = np.array([[3, 5], [5, 1], [10, 2]], dtype=float)   # (hours of sleep, hours of study)
WELCH_Y = np.array([[75], [82], [93]], dtype=float)           # test score


def welch_data():
    return WELCH_X / WELCH_X.max(axis=0), WELCH_Y / 100


def test_welch_labs_network_trains():
    X, y = welch_data()
    model = fastmlp.fit(X, y, hidden=(3,), activation="sigmoid", output_activation="sigmoid",
                        loss="quadratic", epochs=2000, batch_size=3, learning_rate=3.0, seed=0,
                        dtype="float64")
    assert model.layer_sizes == (2, 3, 1)
    assert model.history["loss"][-1] < model.history["loss"][0] / 100
    assert model.predict(X).shape == (3, 1)
    np.testing.assert_allclose(model.predict(X), y, atol=0.05)


def test_welch_labs_gradient_check():
    X, y = welch_data()
    result = fastmlp.check_gradients(X, y, hidden=(3,), activation="sigmoid", output_activation="sigmoid",
                                     loss="quadratic")
    assert result["max"] < 1e-7, result


# ---------------------------------------------------------------------------------------------
# predict, predict_proba, score, forward, history
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss, output_activation", [("log_loss", "softmax"), ("quadratic", "sigmoid"),
                                                     ("cross_entropy", "sigmoid")])
def test_predict_proba_rows_are_probabilities(rng, loss, output_activation):
    X, y = classification_data(rng)
    model = fastmlp.fit(X, y, hidden=(8,), loss=loss, output_activation=output_activation, epochs=5,
                        learning_rate=0.5, batch_size=20, seed=0)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    assert (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(X))
    assert model.score(X, y) > 0.8


def test_string_labels_round_trip(rng):
    X, codes = classification_data(rng)
    names = np.array(["cat", "dog", "emu"])
    y = names[codes]
    model = fastmlp.fit(X, y, hidden=(8,), loss="log_loss", epochs=10, learning_rate=0.5, batch_size=20,
                        seed=0)
    np.testing.assert_array_equal(model.classes_, names)
    predictions = model.predict(X)
    assert predictions.dtype.kind == "U"
    assert set(predictions) <= set(names)
    assert model.score(X, y) == np.mean(predictions == y) > 0.9
    assert model.score(X, list(y)) == model.score(X, y)


def test_boolean_labels(rng):
    X, codes = classification_data(rng, n_classes=2)
    model = fastmlp.fit(X, codes == 1, hidden=(4,), epochs=10, learning_rate=1.0, batch_size=20, seed=0)
    assert model.predict(X).dtype == bool
    assert model.score(X, codes == 1) > 0.8


@pytest.mark.parametrize("shape", [(150,), (150, 1), (150, 2)])
def test_regression_predict_keeps_the_shape_of_y(rng, shape):
    X, y = regression_data(rng)
    Y = np.column_stack([y, -y])[:, :shape[1]] if len(shape) == 2 else y
    model = fastmlp.fit(X, Y, hidden=(8,), activation="tanh", epochs=50, learning_rate=0.1, batch_size=10,
                        seed=0)
    assert model.classes_ is None and model.task == "regression"
    assert model.layer_activations[-1] == "identity"
    assert model.predict(X).shape == shape
    assert model.score(X, Y) > 0.8
    with pytest.raises(AttributeError, match="classification"):
        model.predict_proba(X)


def test_score_is_the_coefficient_of_determination(rng):
    X, y = regression_data(rng)
    model = fastmlp.fit(X, y, hidden=(4,), epochs=3, learning_rate=0.05, seed=0, dtype="float64")
    residual = y - model.predict(X)
    assert model.score(X, y) == pytest.approx(1 - residual @ residual / np.sum((y - y.mean()) ** 2))


def test_forward_returns_the_activations_of_every_layer(rng):
    X, y = classification_data(rng)
    model = fastmlp.fit(X, y, hidden=(8, 6), activation="relu", loss="log_loss", epochs=1, seed=0,
                        dtype="float64")
    activations = model.forward(X[:7])
    assert [a.shape for a in activations] == [(7, 10), (7, 8), (7, 6), (7, 3)]
    np.testing.assert_array_equal(activations[0], X[:7])
    assert (activations[1] >= 0).all() and (activations[2] >= 0).all()        # relu
    np.testing.assert_allclose(activations[1], np.maximum(X[:7] @ model.weights[0] + model.biases[0], 0))
    np.testing.assert_allclose(activations[-1], model.output(X[:7]), rtol=1e-12)
    np.testing.assert_allclose(activations[-1].sum(axis=1), 1)                 # softmax


def test_history_with_validation_data(rng):
    X, y = classification_data(rng)
    model = fastmlp.fit(X[:150], y[:150], hidden=(8,), epochs=4, learning_rate=1.0, batch_size=25, seed=0,
                        validation_data=(X[150:], y[150:]))
    assert set(model.history) == {"loss", "penalty", "val_loss", "val_accuracy", "seconds", "learning_rate"}
    assert all(len(values) == 4 for values in model.history.values())
    assert all(seconds >= 0 for seconds in model.history["seconds"])
    assert all(0 <= accuracy <= 1 for accuracy in model.history["val_accuracy"])
    assert model.history["val_accuracy"][-1] == pytest.approx(model.score(X[150:], y[150:]))
    assert model.history["val_loss"][-1] < model.history["val_loss"][0]


def test_history_of_regression_with_validation_data(rng):
    X, y = regression_data(rng)
    model = fastmlp.fit(X[:100], y[:100], hidden=(8,), activation="tanh", epochs=3, learning_rate=0.1,
                        batch_size=10, seed=0, validation_data=(X[100:], y[100:]))
    assert set(model.history) == {"loss", "penalty", "val_loss", "val_r2", "seconds", "learning_rate"}
    assert model.history["val_r2"][-1] == pytest.approx(model.score(X[100:], y[100:]))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_validation_metrics_are_weighted_by_the_validation_sample_weights(rng, task):
    X, y = classification_data(rng) if task == "classification" else regression_data(rng)
    weights = rng.uniform(0, 3, len(X))
    weights[::4] = 0                                   # rows that must not count at all
    model = fastmlp.fit(X[:100], y[:100], hidden=(8,), epochs=2, batch_size=10, seed=0, dtype="float64",
                        validation_data=(X[100:], y[100:], weights[100:]))
    out, Y, w = model.output(X[100:]), model.targets(y[100:]), weights[100:]
    expected_loss = np.sum(0.5 * ((out - Y) ** 2).sum(axis=1) * w) / w.sum()
    assert model.history["val_loss"][-1] == pytest.approx(expected_loss, rel=1e-12)
    score = "val_accuracy" if task == "classification" else "val_r2"
    assert model.history[score][-1] == pytest.approx(model.score(X[100:], y[100:], sample_weight=w), rel=1e-12)
    kept = w > 0                                       # zero weights: the same as leaving the rows out
    assert model.score(X[100:], y[100:], sample_weight=w) == pytest.approx(
        model.score(X[100:][kept], y[100:][kept], sample_weight=w[kept]), rel=1e-12)
    assert model.score(X[100:], y[100:], sample_weight=np.full(len(w), 2.0)) == pytest.approx(
        model.score(X[100:], y[100:]), rel=1e-12)


def test_validation_fraction_holds_out_the_sample_weights_with_the_rows(rng):
    X, y = classification_data(rng)
    weights = np.where(y == 0, 5.0, 1.0)
    options = dict(hidden=(8,), epochs=2, batch_size=10, seed=3, dtype="float64", validation_fraction=0.3)
    model = fastmlp.fit(X, y, sample_weight=weights, **options)
    _, _, _, (X_val, Y_val, W_val) = fastmlp.training._split(X, model.targets(y), weights, 0.3, "classification",
                                                           np.random.default_rng(3))
    row_losses = 0.5 * ((model.output(X_val) - Y_val) ** 2).sum(axis=1)
    assert model.history["val_loss"][-1] == pytest.approx(np.average(row_losses, weights=W_val), rel=1e-12)
    assert model.history["val_loss"][-1] != pytest.approx(np.mean(row_losses), rel=1e-3)
    assert model.history["val_accuracy"][-1] == pytest.approx(
        np.average(np.argmax(model.output(X_val), axis=1) == np.argmax(Y_val, axis=1), weights=W_val))


def test_bad_validation_sample_weights_are_named(rng):
    X, y = classification_data(rng)
    with pytest.raises(ValueError, match="validation_data sample_weight has 3 values for 53 samples"):
        fastmlp.fit(X[:150], y[:150], epochs=1, validation_data=(X[150:], y[150:], [1, 2, 3]))
    with pytest.raises(ValueError, match="validation_data sample_weight must be >= 0 with a positive sum"):
        fastmlp.fit(X[:150], y[:150], epochs=1, validation_data=(X[150:], y[150:], np.zeros(53)))
    with pytest.raises(ValueError, match=r"validation_data must be a tuple \(X_val, y_val\)"):
        fastmlp.fit(X[:150], y[:150], epochs=1, validation_data=(X[150:],))


def test_history_without_validation_data(rng):
    X, y = classification_data(rng)
    model = fastmlp.fit(X, y, hidden=(8,), epochs=3, seed=0, l2=0.01)
    assert set(model.history) == {"loss", "penalty", "seconds", "learning_rate"}
    assert len(model.history["loss"]) == len(model.history["penalty"]) == 3
    assert model.history["penalty"][-1] == pytest.approx(model.penalty()) and model.penalty() > 0


# ---------------------------------------------------------------------------------------------
# Divergence and overflow
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_raises_floating_point_error(rng, dtype):
    X, y = regression_data(rng)
    with pytest.raises(FloatingPointError, match=r"epoch \d+.*learning_rate \(now 1000.0\)"):
        fastmlp.fit(X, 100 * y, hidden=(8,), epochs=200, learning_rate=1e3, seed=0, dtype=dtype)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("loss, activation", [("quadratic", "sigmoid"), ("log_loss", "tanh"),
                                              ("cross_entropy", "sigmoid"), ("quadratic", "tanh")])
def test_large_inputs_raise_no_overflow_warnings(rng, backend, loss, activation):
    """Saturated sigmoids and softmaxes, outputs of exactly 0 or 1: every cost stays finite."""
    X, y = classification_data(rng)
    X = 1e4 * X
    with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        model = fastmlp.fit(X, y, hidden=(8,), activation=activation, loss=loss, epochs=3, learning_rate=0.1,
                            batch_size=20, seed=0, backend=backend, validation_data=(X, y))
        proba = model.predict_proba(X)
        score = model.score(X, y)
    assert np.isfinite(model.history["loss"]).all() and np.isfinite(model.history["val_loss"]).all()
    assert np.isfinite(proba).all() and 0 <= score <= 1


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST
# ---------------------------------------------------------------------------------------------

def test_fashion_mnist_is_the_full_set_when_installed(fashion_mnist):
    X_train, y_train, X_test, y_test, source = fashion_mnist
    if FASHION_MNIST_DIR.is_dir():
        assert source == "fashion-mnist"
        assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32 and 0 <= X_train.min() and X_train.max() <= 1


def test_seed_network_learns_fashion_mnist(fashion_mnist):
    """784-16-16-10, sigmoid, quadratic cost, mini-batches of 100, learning rate 3.0 (the defaults)."""
    X_train, y_train, X_test, y_test, source = fashion_mnist
    full = source == "fashion-mnist"
    model = fastmlp.fit(X_train, y_train, epochs=3 if full else 30, seed=0)
    assert model.layer_sizes == (784, 16, 16, 10)
    assert model.layer_activations == ["sigmoid"] * 3 and model.loss == "quadratic"
    assert model.score(X_test, y_test) >= (0.80 if full else 0.72)


def test_softmax_network_learns_fashion_mnist(fashion_mnist):
    """One hidden layer of 100 relus, softmax output, log-loss: 3 epochs at learning rate 0.1, then
    one more from those weights at 0.01 to settle the noise of the last steps."""
    X_train, y_train, X_test, y_test, source = fashion_mnist
    full = source == "fashion-mnist"
    options = dict(hidden=(100,), activation="relu", loss="log_loss", batch_size=50)
    model = fastmlp.fit(X_train, y_train, learning_rate=0.1, epochs=3 if full else 30, seed=0, **options)
    model = fastmlp.fit(X_train, y_train, learning_rate=0.01, epochs=1 if full else 10, weights=model.weights,
                        biases=model.biases, **options)
    assert model.layer_activations == ["relu", "softmax"]
    assert model.score(X_test, y_test) >= (0.85 if full else 0.82)
