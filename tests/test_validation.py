"""Validation at the front door: bad input gets a clear error naming the argument; anything that can
be converted is converted, gives the same result as a clean float array, and is never modified."""
import numpy as np
import pytest

import fastmlp

N_SAMPLES, N_FEATURES = 40, 4


@pytest.fixture
def data(rng):
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    y = np.arange(N_SAMPLES) % 3
    return X, y


@pytest.fixture
def model(data):
    X, y = data
    return fastmlp.fit(X, y, hidden=(5,), epochs=2, batch_size=10, seed=0)


@pytest.fixture
def regressor(data):
    X, _ = data
    return fastmlp.fit(X, X[:, 0] - X[:, 1], hidden=(5,), epochs=2, batch_size=10, seed=0)


def with_value(array, index, value):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


# ---------------------------------------------------------------------------------------------
# Bad X and y
# ---------------------------------------------------------------------------------------------

X_ERRORS = [
    ("1-D", lambda X: X[:, 0], ValueError, r"X must be 2-D .*got shape \(40,\)"),
    ("3-D", lambda X: X.reshape(N_SAMPLES, 2, 2), ValueError, r"X must be 2-D .*got shape \(40, 2, 2\)"),
    ("scalar", lambda X: 3.0, ValueError, "X must be 2-D"),
    ("no features", lambda X: X[:, :0], ValueError, r"X is empty: shape \(40, 0\)"),
    ("NaN", lambda X: with_value(X, (3, 1), np.nan), ValueError, "X contains NaN or infinity"),
    ("inf", lambda X: with_value(X, (0, 0), np.inf), ValueError, "X contains NaN or infinity"),
    ("-inf", lambda X: with_value(X, (5, 2), -np.inf), ValueError, "X contains NaN or infinity"),
    ("too large for float32", lambda X: with_value(X, (5, 2), 1e300), ValueError, "X contains NaN or inf"),
    ("strings", lambda X: X.astype(str), TypeError, "X must hold real numbers"),
    ("complex", lambda X: X + 1j, TypeError, "X must hold real numbers, got dtype complex128"),
    ("objects", lambda X: X.astype(object), TypeError, "X must hold real numbers, got dtype object"),
    ("None", lambda X: None, TypeError, "X must be an array of numbers"),
    ("a string", lambda X: "data.csv", TypeError, "X must be an array of numbers, got str"),
]


@pytest.mark.filterwarnings("error")   # the error itself, not a RuntimeWarning on the way
@pytest.mark.parametrize("make_X, error, message", [case[1:] for case in X_ERRORS],
                         ids=[case[0] for case in X_ERRORS])
def test_bad_X_is_rejected(data, make_X, error, message):
    X, y = data
    with pytest.raises(error, match=message):
        fastmlp.fit(make_X(X), y, epochs=1)


Y_ERRORS = [
    ("too short", lambda y: y[:-1], None, ValueError, "X and y have different numbers of samples: 40 and 39"),
    ("too long", lambda y: np.tile(y, 2), None, ValueError, "X and y have different numbers of samples"),
    ("scalar", lambda y: 1, None, ValueError, "y must be 1-D .* got shape ()"),
    ("3-D", lambda y: y.reshape(N_SAMPLES, 1, 1), None, ValueError, "y must be 1-D .* or 2-D"),
    ("None", lambda y: None, None, TypeError, "y is required"),
    ("NaN target", lambda y: with_value(y, 4, np.nan), None, ValueError, "y contains NaN or infinity"),
    ("inf target", lambda y: with_value(y, 4, np.inf), None, ValueError, "y contains NaN or infinity"),
    ("NaN label", lambda y: with_value(y, 4, np.nan), "classification", ValueError,
     "y contains NaN or infinity"),
    ("complex", lambda y: y + 1j, None, TypeError, "y must hold real numbers, got dtype complex128"),
    ("complex labels", lambda y: y + 1j, "classification", TypeError, "y labels have an unsupported dtype"),
    ("single class", lambda y: np.zeros_like(y), None, ValueError, "y has a single class"),
    ("single string class", lambda y: np.full(len(y), "cat"), None, ValueError, "y has a single class"),
    ("mixed objects", lambda y: np.array([1, "a", 2.5, None] * 10, dtype=object), None, TypeError,
     "y labels cannot be compared"),
    ("2-D labels", lambda y: np.column_stack([y, y]), "classification", ValueError,
     "y for classification must be 1-D labels"),
    ("unknown task", lambda y: y, "clustering", ValueError, "task must be one of"),
]


@pytest.mark.parametrize("make_y, task, error, message", [case[1:] for case in Y_ERRORS],
                         ids=[case[0] for case in Y_ERRORS])
def test_bad_y_is_rejected(data, make_y, task, error, message):
    X, y = data
    with pytest.raises(error, match=message):
        fastmlp.fit(X, make_y(y), task=task, epochs=1)


@pytest.mark.parametrize("X, y", [(np.empty((0, 4)), np.empty(0)), (np.empty((0, 4)), np.empty(0, int)),
                                  ([], [])])
def test_empty_data_is_rejected(X, y):
    with pytest.raises(ValueError, match="X (is empty|must be 2-D)"):
        fastmlp.fit(X, y, epochs=1)


# ---------------------------------------------------------------------------------------------
# Bad parameters
# ---------------------------------------------------------------------------------------------

PARAMETER_ERRORS = [
    (dict(activation="softplus"), ValueError, r"activation must be one of \['sigmoid', 'tanh', 'relu', "
                                              r"'identity'\], got 'softplus'"),
    (dict(activation="softmax"), ValueError, "activation must be one of"),
    (dict(activation=None), ValueError, "activation must be one of"),
    (dict(loss="hinge"), ValueError, "loss must be one of .* got 'hinge'"),
    (dict(loss="mse"), ValueError, "loss must be one of"),
    (dict(output_activation="softplus"), ValueError, "output_activation 'softplus' does not go with loss"),
    (dict(loss="log_loss", output_activation="sigmoid"), ValueError,
     r"output_activation 'sigmoid' does not go with loss 'log_loss'; use one of \['softmax'\]"),
    (dict(loss="cross_entropy", output_activation="softmax"), ValueError,
     "output_activation 'softmax' does not go with loss 'cross_entropy'"),
    (dict(loss="cross_entropy", output_activation="tanh"), ValueError, "does not go with loss"),
    (dict(loss="log_loss", output_activation="identity"), ValueError, "does not go with loss"),
    (dict(loss="poisson", output_activation="identity"), ValueError,
     r"output_activation 'identity' does not go with loss 'poisson'; use one of \['exp'\]"),
    (dict(loss="poisson", task="classification"), ValueError, "loss 'poisson' is for regression"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (dict(batch_size=-5), ValueError, "batch_size must be >= 1, got -5"),
    (dict(batch_size=2.5), TypeError, "batch_size must be an integer, got 2.5"),
    (dict(batch_size=True), TypeError, "batch_size must be an integer"),
    (dict(epochs=0), ValueError, "epochs must be >= 1, got 0"),
    (dict(samples_seen=-1), ValueError, "samples_seen must be >= 0, got -1"),
    (dict(epochs=-1), ValueError, "epochs must be >= 1, got -1"),
    (dict(epochs="10"), TypeError, "epochs must be an integer, got '10'"),
    (dict(learning_rate=0.0), ValueError, r"learning_rate must be finite and > 0.0, got 0.0"),
    (dict(learning_rate=-0.1), ValueError, r"learning_rate must be finite and > 0.0, got -0.1"),
    (dict(learning_rate=np.nan), ValueError, "learning_rate must be finite .* got nan"),
    (dict(learning_rate=np.inf), ValueError, "learning_rate must be finite .* got inf"),
    (dict(learning_rate="fast"), TypeError, "learning_rate must be a number, got 'fast'"),
    (dict(learning_rate=None), TypeError, "learning_rate must be a number"),
    (dict(momentum=1.0), ValueError, r"momentum must be finite and >= 0.0 and < 1.0, got 1.0"),
    (dict(momentum=-0.5), ValueError, "momentum must be finite"),
    (dict(l2=-1e-3), ValueError, "l2 must be finite and >= 0.0, got -0.001"),
    (dict(l2=np.nan), ValueError, "l2 must be finite"),
    (dict(hidden=(5, 0)), ValueError, "hidden layer size must be >= 1, got 0"),
    (dict(hidden=(5, 2.5)), TypeError, "hidden layer size must be an integer, got 2.5"),
    (dict(hidden=-3), ValueError, "hidden layer size must be >= 1, got -3"),
    (dict(hidden=None), TypeError, "hidden must be a sequence of layer sizes, got None"),
    (dict(dtype="float16"), TypeError, "dtype must be float32 or float64, got float16"),
    (dict(dtype=np.int32), TypeError, "dtype must be float32 or float64, got int32"),
    (dict(dtype="double precision"), TypeError, "dtype must be float32 or float64, got 'double precision'"),
    (dict(backend="torch"), ValueError, r"backend must be one of \['compiled', 'numpy'\], got 'torch'"),
    (dict(init="xavier"), ValueError, r"init must be one of \['fan_in', 'normal'\], got 'xavier'"),
    (dict(weights=[np.zeros((4, 5)), np.zeros((5, 3))]), ValueError, "give both weights and biases"),
    (dict(weights=[np.zeros((4, 5))], biases=[np.zeros(5)]), ValueError,
     r"need 2 weight matrices and bias vectors for layer sizes \(4, 5, 3\), got 1 and 1"),
    (dict(weights=[np.zeros((4, 6)), np.zeros((6, 3))], biases=[np.zeros(6), np.zeros(3)]), ValueError,
     r"weights\[0\] must have shape \(4, 5\), got \(4, 6\)"),
    (dict(weights=[np.zeros((4, 5)), np.zeros((5, 3))], biases=[np.zeros(5), np.zeros(2)]), ValueError,
     r"biases\[1\] must have shape \(3,\), got \(2,\)"),
    (dict(weights=[np.zeros((4, 5)), np.full((5, 3), np.nan)], biases=[np.zeros(5), np.zeros(3)]), ValueError,
     r"weights\[1\] contains NaN"),
    (dict(weights=[np.zeros((4, 5)), np.zeros((5, 3))], biases=[np.zeros(5), np.array([0, np.inf, 0])]),
     ValueError, r"biases\[1\] contains NaN or infinity"),
    (dict(validation_data=(np.zeros((5, 4)),)), ValueError, r"validation_data must be a tuple \(X_val, y_val\)"),
    (dict(validation_data=(np.zeros((5, 3)), np.zeros(5, int))), ValueError,
     "validation_data X has 3 features, but the model expects 4"),
    (dict(validation_data=(np.zeros((5, 4)), np.zeros(4, int))), ValueError,
     "validation_data X and y have different numbers of samples"),
    (dict(validation_data=(np.zeros((5, 4)), np.full(5, 7))), ValueError, r"y holds labels not seen during fit: \[7\]"),
]


@pytest.mark.parametrize("kwargs, error, message", PARAMETER_ERRORS,
                         ids=[" ".join(f"{k}={v!r}"[:40] for k, v in case[0].items()) for case in PARAMETER_ERRORS])
def test_bad_parameters_are_rejected(data, kwargs, error, message):
    X, y = data
    options = dict(hidden=(5,), epochs=1)
    options.update(kwargs)
    with pytest.raises(error, match=message):
        fastmlp.fit(X, y, **options)


def test_poisson_targets_must_not_be_negative(data):
    X, _ = data
    counts = np.arange(len(X)) % 4
    negative = counts - 1.5
    with pytest.raises(ValueError, match=r"y must be >= 0 for loss 'poisson' \(counts or rates\), got a minimum of -1.5"):
        fastmlp.fit(X, negative, loss="poisson", epochs=1)
    with pytest.raises(ValueError, match="validation_data y must be >= 0"):
        fastmlp.fit(X, counts, loss="poisson", epochs=1, validation_data=(X, negative))
    model = fastmlp.fit(X, counts, hidden=(5,), loss="poisson", epochs=1, learning_rate=0.1)
    assert model.task == "regression" and model.layer_activations[-1] == "exp"   # counts are not labels
    with pytest.raises(ValueError, match="y must be >= 0"):
        fastmlp.fit(X, negative, warm_start=model, epochs=1)
    with pytest.raises(ValueError, match="y must be >= 0"):
        model.cost(X, negative)


@pytest.mark.parametrize("kwargs, message", [(dict(hidden=(0,)), "hidden layer size must be >= 1"),
                                             (dict(activation="gelu"), "activation must be one of"),
                                             (dict(loss="log_loss", output_activation="tanh"), "does not go with")])
def test_check_gradients_validates_like_fit(data, kwargs, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        fastmlp.check_gradients(X, y, **kwargs)


def test_set_num_threads_rejects_non_positive_counts(threads):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="number of threads must be an integer >= 1"):
            threads(bad)


@pytest.mark.parametrize("value, warned", [("AVX2", True), ("sse4", True), ("avx2", False), ("reference", False)])
def test_an_unknown_fastmlp_isa_is_warned_about(monkeypatch, recwarn, value, warned):
    from fastmlp import _config

    monkeypatch.setenv("FASTMLP_ISA", value)
    _config.warn_unknown_isa()
    messages = [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert messages == ([f"FASTMLP_ISA={value!r} is none of avx512, avx2, baseline, reference: ignored, the "
                         "kernels run at the fastest level this CPU runs"] if warned else [])


# ---------------------------------------------------------------------------------------------
# A fitted model: predict, predict_proba, score, backprop
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["predict", "predict_proba", "output", "forward"])
def test_predict_with_the_wrong_number_of_features(model, data, method):
    X, _ = data
    with pytest.raises(ValueError, match="X has 3 features, but the model expects 4"):
        getattr(model, method)(X[:, :3])
    with pytest.raises(ValueError, match="X must be 2-D"):
        getattr(model, method)(X[0])
    with pytest.raises(ValueError, match="X contains NaN"):
        getattr(model, method)(with_value(X, (0, 0), np.nan))


@pytest.mark.parametrize("labels, message", [(np.full(N_SAMPLES, 7), r"y holds labels not seen during fit: \[7\]"),
                                             (np.array(["a"] * N_SAMPLES), "labels not seen during fit"),
                                             (np.arange(N_SAMPLES) % 3 + 0.5, "labels not seen during fit")])
@pytest.mark.parametrize("method", ["score", "backprop"])
def test_unseen_labels_are_rejected(model, data, method, labels, message):
    X, _ = data
    with pytest.raises(ValueError, match=message):
        getattr(model, method)(X, labels)


@pytest.mark.parametrize("method", ["score", "backprop", "cost"])
def test_mismatched_lengths_after_fit(model, regressor, data, method):
    X, y = data
    with pytest.raises(ValueError, match="X and y have different numbers of samples"):
        getattr(model, method)(X, y[:-3])
    with pytest.raises(ValueError, match="X and y have different numbers of samples|different"):
        getattr(regressor, method)(X, X[:-3, 0])


def test_regression_score_rejects_nan_targets(regressor, data):
    X, _ = data
    with pytest.raises(ValueError, match="y contains NaN"):
        regressor.score(X, with_value(X[:, 0], 2, np.nan))


# ---------------------------------------------------------------------------------------------
# Inputs that are converted, and never modified
# ---------------------------------------------------------------------------------------------

def read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


def strided(array):
    """The same values as a non-contiguous view of a wider array."""
    wide = np.zeros((array.shape[0], 2 * array.shape[1]), array.dtype)
    wide[:, ::2] = array
    return wide[:, ::2]


CONVERSIONS = [
    ("non-contiguous", strided),
    ("Fortran order", np.asfortranarray),
    ("float32", lambda X: X.astype(np.float32)),
    ("int", lambda X: X.astype(np.int64)),
    ("int8", lambda X: X.astype(np.int8)),
    ("uint8", lambda X: X.astype(np.uint8)),
    ("bool", lambda X: X > 2),
    ("read-only", read_only),
    ("read-only float32", lambda X: read_only(X.astype(np.float32))),
    ("list", lambda X: X.tolist()),
    ("tuple of tuples", lambda X: tuple(map(tuple, X.tolist()))),
]


@pytest.fixture
def pixels(rng):
    """Small non-negative integers held as floats, so that every conversion keeps every value."""
    X = rng.integers(0, 5, (N_SAMPLES, N_FEATURES)).astype(float)
    return X, (X.sum(axis=1) > 8).astype(int) + (X[:, 0] > 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("convert", [case[1] for case in CONVERSIONS], ids=[case[0] for case in CONVERSIONS])
def test_convertible_X_gives_the_same_model(pixels, convert, dtype):
    converted = convert(pixels[0])
    X, y = np.array(converted, np.float64, order="C"), pixels[1]   # a clean array of the same values
    assert X.flags.c_contiguous and X.flags.writeable
    options = dict(hidden=(5,), epochs=3, batch_size=8, learning_rate=0.5, seed=0, dtype=dtype)
    clean = fastmlp.fit(X, y, **options)
    model = fastmlp.fit(converted, y, **options)
    for got, expected in zip(model.weights + model.biases, clean.weights + clean.biases):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(model.predict(converted), clean.predict(X))
    np.testing.assert_array_equal(model.predict_proba(converted), clean.predict_proba(X))
    assert model.score(converted, y) == clean.score(X, y)


@pytest.mark.parametrize("convert", [np.asfortranarray, read_only, lambda y: y.tolist(),
                                     lambda y: y.astype(np.float32), lambda y: y[:, None]],
                         ids=["Fortran order", "read-only", "list", "float32", "column"])
def test_convertible_regression_targets_give_the_same_model(pixels, convert):
    X, _ = pixels
    y = np.column_stack([X[:, 0] - X[:, 1], X[:, 2]])
    if convert is not np.asfortranarray:
        y = y[:, 0].copy()
    options = dict(hidden=(5,), activation="tanh", epochs=3, batch_size=8, learning_rate=0.05, seed=0,
                   dtype="float64", task="regression")
    clean = fastmlp.fit(X, y, **options)
    model = fastmlp.fit(X, convert(y), **options)
    np.testing.assert_array_equal(model.weights[0], clean.weights[0])
    np.testing.assert_array_equal(model.output(X), clean.output(X))
    assert model.score(X, convert(y)) == pytest.approx(clean.score(X, y))
    weight_grads, _ = model.backprop(X, convert(y))
    np.testing.assert_allclose(weight_grads[0], clean.backprop(X, y)[0][0], rtol=1e-12)


@pytest.mark.parametrize("convert", [lambda y: y.astype(np.uint8), lambda y: y.tolist(), read_only,
                                     lambda y: y.astype(float), lambda y: np.asarray(y, object)],
                         ids=["uint8", "list", "read-only", "float labels", "object"])
def test_convertible_labels_give_the_same_model(pixels, convert):
    X, y = pixels
    options = dict(hidden=(5,), epochs=3, batch_size=8, learning_rate=0.5, seed=0, task="classification")
    clean = fastmlp.fit(X, y, **options)
    model = fastmlp.fit(X, convert(y), **options)
    np.testing.assert_array_equal(model.weights[0], clean.weights[0])
    np.testing.assert_array_equal(model.predict(X).astype(int), clean.predict(X))
    assert model.score(X, convert(y)) == clean.score(X, y)


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_user_arrays_are_never_modified(rng, pixels, dtype, backend):
    """X, y, the starting weights and validation data come back exactly as they were given."""
    X, y = pixels
    X = X.astype(dtype)                            # the dtype fit computes in: no conversion copy
    weights = [rng.standard_normal((N_FEATURES, 5)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)]
    biases = [rng.standard_normal(5).astype(dtype), rng.standard_normal(3).astype(dtype)]
    X_val, y_val = X[:10].copy(), y[:10].copy()
    given = [X, y, X_val, y_val] + weights + biases
    saved = [array.copy() for array in given]
    model = fastmlp.fit(X, y, hidden=(5,), epochs=3, batch_size=8, learning_rate=0.5, momentum=0.9, dtype=dtype,
                        weights=weights, biases=biases, validation_data=(X_val, y_val), backend=backend)
    model.predict(X), model.predict_proba(X), model.score(X, y), model.forward(X), model.backprop(X, y)
    fastmlp.check_gradients(X, y, hidden=(5,), weights=weights, biases=biases)
    for before, after in zip(saved, given):
        np.testing.assert_array_equal(before, after)
    assert model.weights[0] is not weights[0]
    assert not np.array_equal(model.weights[0], weights[0])
