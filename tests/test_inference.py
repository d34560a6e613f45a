"""The inference path: ``MLP.output`` through ``_kernels.Predictor`` equals the training network's
forward pass bit for bit, accepts what ``check_array`` converts, rejects what it rejects, and gives
the same answers from many threads at once, after pickling and after save/load."""
import copy
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastmlp
from fastmlp import _kernels

from conftest import HIDDEN_ACTIVATIONS, OUTPUT_LOSS_PAIRS

DTYPES = (np.float32, np.float64)


def make_model(rng, sizes, hidden, output, loss, dtype, use_bias=True, task="regression"):
    activations = [hidden] * (len(sizes) - 2) + [output]
    weights, biases = fastmlp.init_parameters(sizes, activations, rng, dtype, init="normal")
    if not use_bias:
        biases = [np.zeros_like(b) for b in biases]
    classes = np.arange(sizes[-1]) if task == "classification" else None
    return fastmlp.MLP(weights, biases, activations, loss, classes, task=task, use_bias=use_bias)


def training_forward(model, X, nthreads=1):
    """The forward pass of a training Network, which the Predictor must match."""
    X = np.ascontiguousarray(X, model.dtype)
    out = np.empty((len(X), model.layer_sizes[-1]), model.dtype)
    weights, biases = [w.copy() for w in model.weights], [b.copy() for b in model.biases]
    network = _kernels.Network(weights, biases, model.layer_activations, model.loss, min(len(X), 1024),
                               nthreads=nthreads, use_bias=model.use_bias)
    network.forward(X, out)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_output_equals_training_forward(rng, hidden, output, loss, dtype):
    model = make_model(rng, (7, 9, 5, 4), hidden, output, loss, dtype)
    for rows in (1, 3, 17, model._predictor().block_rows + 1):   # the last: two blocks
        X = rng.standard_normal((rows, 7)).astype(dtype)
        np.testing.assert_array_equal(model.output(X), training_forward(model, X))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [(1, 1), (5, 3), (784, 100, 10), (1000, 20, 3), (13, 40, 3, 40, 2)])
def test_shapes_and_no_bias(rng, sizes, dtype):
    for use_bias in (True, False):
        model = make_model(rng, sizes, "tanh", "softmax", "log_loss", dtype, use_bias)
        X = rng.standard_normal((33, sizes[0])).astype(dtype)
        np.testing.assert_array_equal(model.output(X), training_forward(model, X))


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_give_the_same_bits(rng, threads, dtype):
    # 600 rows of 64-128-10: 5.7M multiply-adds, enough for the kernel threads to share them
    model = make_model(rng, (64, 128, 10), "relu", "softmax", "log_loss", dtype)
    X = rng.standard_normal((600, 64)).astype(dtype)
    expected = training_forward(model, X)
    for count in (1, 2, 3, 7):
        threads(count)
        np.testing.assert_array_equal(model.output(X), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_and_predict_proba_unchanged(rng, dtype):
    model = make_model(rng, (6, 8, 3), "sigmoid", "softmax", "log_loss", dtype, task="classification")
    model.classes_ = np.array(["a", "b", "c"])
    X = rng.standard_normal((40, 6))
    expected = training_forward(model, X)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(expected, axis=1)])
    np.testing.assert_array_equal(model.predict_proba(X), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_converted(rng, dtype):
    model = make_model(rng, (5, 6, 2), "relu", "identity", "quadratic", dtype)
    X = rng.standard_normal((20, 10)) * 3
    expected = training_forward(model, np.ascontiguousarray(X[::2, ::2]))
    for given in (X[::2, ::2], np.asfortranarray(X[::2, ::2]), X[::2, ::2].tolist(),
                  X[::2, ::2].astype(np.float32 if dtype == np.float64 else np.float64)):
        np.testing.assert_array_equal(model.output(given),
                                      training_forward(model, np.asarray(given, dtype)))
    np.testing.assert_array_equal(model.output(X[::2, ::2]), expected)
    integers = rng.integers(-3, 4, (4, 5))
    np.testing.assert_array_equal(model.output(integers), training_forward(model, integers.astype(dtype)))
    np.testing.assert_array_equal(model.output(integers.tolist()), model.output(integers))


def test_byte_swapped_and_unaligned_inputs_converted(rng):
    model = make_model(rng, (4, 3, 2), "tanh", "identity", "quadratic", np.float64)
    X = rng.standard_normal((5, 4))
    expected = model.output(X)
    np.testing.assert_array_equal(model.output(X.astype(">f8")), expected)
    raw = np.zeros(X.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, np.float64, X.size, offset=1).reshape(X.shape)
    assert not unaligned.flags.aligned
    unaligned.setflags(write=True) if unaligned.flags.writeable else None
    raw[1:] = X.view(np.uint8).ravel()
    np.testing.assert_array_equal(model.output(unaligned), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_threads_at_once(rng, threads, dtype):
    threads(2)
    model = make_model(rng, (30, 50, 4), "relu", "softmax", "log_loss", dtype, task="classification")
    batches = [rng.standard_normal((rows, 30)).astype(dtype) for rows in (1, 3, 17, 100, 2000)]
    alone = [(model.predict(X), model.predict_proba(X)) for X in batches]

    def call(i):
        X = batches[i % len(batches)]
        return i % len(batches), model.predict(X), model.predict_proba(X)

    with ThreadPoolExecutor(8) as pool:
        for which, labels, proba in pool.map(call, range(8 * 50)):
            np.testing.assert_array_equal(labels, alone[which][0])
            np.testing.assert_array_equal(proba, alone[which][1])


def test_pickle_copy_and_save_load(rng, tmp_path):
    model = make_model(rng, (6, 7, 3), "tanh", "softmax", "log_loss", np.float32, task="classification")
    X = rng.standard_normal((9, 6)).astype(np.float32)
    expected = model.predict_proba(X)
    assert "_compiled" in model.__dict__   # built by the call above
    for other in (pickle.loads(pickle.dumps(model)), copy.copy(model), copy.deepcopy(model)):
        assert "_compiled" not in other.__dict__
        np.testing.assert_array_equal(other.predict_proba(X), expected)
    fastmlp.save(model, tmp_path / "model.npz")
    loaded = fastmlp.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_replaced_and_read_only_weights(rng):
    model = make_model(rng, (4, 5, 2), "sigmoid", "identity", "quadratic", np.float64)
    X = rng.standard_normal((3, 4))
    model.output(X)
    model.weights = [2 * w for w in model.weights]        # a new list of new arrays
    np.testing.assert_array_equal(model.output(X), training_forward(model, X))
    model.biases[1] = model.biases[1] + 1                  # one array replaced in the list
    np.testing.assert_array_equal(model.output(X), training_forward(model, X))
    model.weights[0][0, 0] += 1                            # changed in place: read where it lies
    np.testing.assert_array_equal(model.output(X), training_forward(model, X))
    for p in model.weights + model.biases:
        p.flags.writeable = False
    np.testing.assert_array_equal(model.output(X), training_forward(model, X))


@pytest.mark.parametrize("bad, error, match", [
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), ValueError,
     "X contains NaN or infinity"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, -np.inf, X), ValueError,
     "X contains NaN or infinity"),
    (lambda X: X[:, :3], ValueError, "X has 3 features, but the model expects 4"),
    (lambda X: X[0], ValueError, "X must be 2-D"),
    (lambda X: X[None], ValueError, "X must be 2-D"),
    (lambda X: X[:0], ValueError, r"X is empty: shape \(0, 4\)"),
    (lambda X: X.astype(str), TypeError, "X must hold real numbers"),
    (lambda X: "X", TypeError, "X must be an array of numbers"),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_errors_unchanged(rng, bad, error, match, dtype):
    model = make_model(rng, (4, 3, 2), "relu", "softmax", "log_loss", dtype, task="classification")
    X = bad(rng.standard_normal((5, 4)).astype(dtype))
    for method in (model.output, model.predict, model.predict_proba):
        with pytest.raises(error, match=match):
            method(X)


def non_finite_inputs(rng, sizes, dtype):
    """A model whose first layer has a zero row (infinity times a zero weight is NaN: to be found
    all the same), and copies of an X of two and a half blocks of rows (shared by a team) with a
    NaN or an infinity in one row: the first or last of a block, or of a thread's share."""
    model = make_model(rng, sizes, "relu", "softmax", "log_loss", dtype, task="classification")
    model.weights[0][1] = 0
    block = model._predictor().block_rows
    rows = 5 * block // 2
    X = rng.standard_normal((rows, sizes[0])).astype(dtype)
    bad = []
    for row in (0, block - 1, block, rows // 2, rows - 1):
        for value in (np.nan, np.inf, -np.inf):
            bad.append(X.copy())
            bad[-1][row, 1] = value
    big = X.copy()   # finite, but its first-layer products overflow
    big[7] = np.finfo(dtype).max
    return model, bad, big


NON_FINITE_CASES = pytest.mark.parametrize("sizes, nthreads", [   # first-layer products checked, or X
    ((64, 16, 3), 1), ((64, 16, 3), 2), ((16, 64, 3), 1), ((16, 64, 3), 2)])


@pytest.mark.parametrize("dtype", DTYPES)
@NON_FINITE_CASES
def test_a_nan_or_infinity_in_any_row_or_block_is_found(rng, threads, dtype, sizes, nthreads):
    threads(nthreads)
    model, bad, big = non_finite_inputs(rng, sizes, dtype)
    for X in bad:
        for method in (model.output, model.predict, model.predict_proba):
            with pytest.raises(ValueError, match="X contains NaN or infinity"):
                method(X)
    expected = model._predictor().output(big)   # no error: the outputs of the unchecked path
    assert not np.isfinite(expected[7]).all()
    np.testing.assert_array_equal(model.output(big), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@NON_FINITE_CASES
@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")   # a short fit, only to set it up
def test_the_estimators_find_a_nan_or_infinity_in_any_row_or_block(rng, threads, dtype, sizes, nthreads):
    pytest.importorskip("sklearn")
    threads(nthreads)
    model, bad, big = non_finite_inputs(rng, sizes, dtype)
    estimator = fastmlp.MLPClassifier(hidden_layer_sizes=sizes[1:2], max_iter=20, dtype=dtype)
    estimator.fit(rng.standard_normal((30, sizes[0])).astype(dtype), np.arange(30) % 3)
    estimator.model_ = model
    for X in bad:
        with pytest.raises(ValueError, match="contains (NaN|infinity)"):   # scikit-learn's words
            estimator.predict_proba(X)
    np.testing.assert_array_equal(estimator.predict_proba(big), model._predictor().output(big))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 8, 9, 31, 1000])
def test_all_finite_matches_numpy(rng, dtype, size):
    X = rng.standard_normal(size).astype(dtype)
    assert _kernels.all_finite(X)
    for value in (np.nan, np.inf, -np.inf, -np.nan):
        for at in {0, size // 2, size - 1}:
            Y = X.copy()
            Y[at] = value
            assert not _kernels.all_finite(Y)
    big = np.full(size, np.finfo(dtype).max, dtype)   # finite, though its sum overflows
    assert _kernels.all_finite(big)
    info, uint = np.finfo(dtype), np.dtype(f"u{np.dtype(dtype).itemsize}")
    smallest = np.array(1, uint).view(dtype)   # the smallest subnormal
    for value in (-info.max, info.tiny, -info.tiny, smallest, -0.0):
        Y = X.copy()
        Y[size // 2] = value
        assert _kernels.all_finite(Y), value
    # every exponent-all-ones pattern: a signalling NaN, a negative NaN with a payload
    bits = 8 * np.dtype(dtype).itemsize
    exponent = (2 ** (info.nexp) - 1) << (info.nmant)
    for pattern in (exponent | 1, (1 << (bits - 1)) | exponent | (1 << (info.nmant - 1)) | 5):
        Y = X.copy()
        Y.view(uint)[size - 1] = pattern
        assert not _kernels.all_finite(Y), hex(pattern)


# ---------------------------------------------------------------------------------------------
# The estimators: a ready X skips scikit-learn's validation, with the same results
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def fitted(rng):
    pytest.importorskip("sklearn")
    X = rng.standard_normal((60, 5)).astype(np.float32)
    y = np.where(X[:, 0] + X[:, 1] > 0, 2, 7) + (X[:, 2] > 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier = fastmlp.MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
        regressor = fastmlp.MLPRegressor((8,), max_iter=5, random_state=0).fit(X, X @ np.arange(5.0))
    return X, y, classifier, regressor


def test_estimators_fast_path_equals_validated_path(fitted):
    X, y, classifier, regressor = fitted
    for given in (X, X.tolist(), np.asfortranarray(X), X.astype(np.float64)):
        np.testing.assert_array_equal(classifier.predict_proba(given), classifier.predict_proba(X.tolist()))
        np.testing.assert_array_equal(classifier.predict(given), classifier.predict(X.tolist()))
        np.testing.assert_array_equal(regressor.predict(given), regressor.predict(X.tolist()))
    np.testing.assert_array_equal(classifier.predict_proba(X), classifier.model_.output(X))


def test_estimator_scores_equal_sklearn(fitted):
    from sklearn.metrics import accuracy_score, r2_score
    X, y, classifier, regressor = fitted
    target = X @ np.arange(5.0)
    for rows in (1, 2, 17, 60):
        assert classifier.score(X[:rows], y[:rows]) == accuracy_score(y[:rows], classifier.predict(X[:rows]))
        assert classifier.score(X[:rows], y[:rows].tolist()) == classifier.score(X[:rows], y[:rows])
    for rows in (2, 17, 60):
        assert regressor.score(X[:rows], target[:rows]) == r2_score(target[:rows], regressor.predict(X[:rows]))
    constant = np.full(5, 3.0)
    assert regressor.score(X[:5], constant) == r2_score(constant, regressor.predict(X[:5]))
    weights = np.linspace(1, 2, 60)
    assert classifier.score(X, y, weights) == accuracy_score(y, classifier.predict(X), sample_weight=weights)


def test_estimator_errors_unchanged(fitted):
    X, y, classifier, regressor = fitted
    bad = X.copy()
    bad[3, 2] = np.nan
    for estimator in (classifier, regressor):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            estimator.predict(bad)
        with pytest.raises(ValueError, match="X has 4 features, but"):
            estimator.predict(np.ascontiguousarray(X[:, :4]))
