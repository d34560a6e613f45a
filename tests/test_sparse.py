"""Sparse input (SciPy CSR, CSC, sparse arrays): the first layer's products over the nonzeros against
the dense computation, training steps and gradients against dense input, the front door's rules,
and the estimators."""
import warnings

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

import fastmlp  # noqa: E402
from fastmlp import MLPClassifier, MLPRegressor, _kernels, reference  # noqa: E402
from fastmlp._validation import check_array  # noqa: E402

from conftest import NETWORK_TOLERANCE, TOLERANCE, gemm_tolerance  # noqa: E402

CONTAINERS = [sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array]


def random_csr(rng, rows, cols, density, dtype=np.float64, index_dtype=np.int32):
    """A CSR matrix with empty rows and columns among its rows and columns, of the index dtype asked."""
    X = sp.random(rows, cols, density=density, format="csr", random_state=rng, dtype=np.float64)
    X.data = rng.standard_normal(X.nnz)
    X = X.astype(dtype)
    if rows > 2:
        X = sp.csr_matrix(X.multiply(np.arange(rows)[:, None] % 3 != 1))   # every third row empty
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    return X


def shuffled_within_rows(X, rng):
    """X with the same values but each row's (index, value) pairs in a random order."""
    X = X.copy()
    for r in range(X.shape[0]):
        start, stop = X.indptr[r], X.indptr[r + 1]
        order = start + rng.permutation(stop - start)
        X.indices[start:stop], X.data[start:stop] = X.indices[order], X.data[order]
    X.has_sorted_indices = False
    return X


# ---------------------------------------------------------------------------------------------
# The kernels against the dense product
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, cols, n", [(1, 1, 1), (3, 17, 1), (17, 3, 17), (17, 17, 3), (40, 300, 33)])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("batch", [False, True], ids=["all rows", "batch"])
def test_csr_products_match_dense(rng, dtype, rows, cols, n, index_dtype, batch):
    X = shuffled_within_rows(random_csr(rng, rows, cols, 0.3, dtype, index_dtype), rng)
    picked = rng.integers(0, rows, size=rows + 2) if batch else None
    dense = X.toarray() if picked is None else X.toarray()[picked]
    W = rng.standard_normal((cols, n)).astype(dtype)
    Z = np.full((len(dense), n), np.nan, dtype)             # overwritten, never read
    _kernels.csr_mm(X, W, Z, picked)
    np.testing.assert_allclose(Z, dense @ W, **gemm_tolerance(dtype, cols))   # summation orders differ
    D, G = rng.standard_normal((len(dense), n)).astype(dtype), rng.standard_normal((cols, n)).astype(dtype)
    expected = G - 0.5 * dense.T @ D
    _kernels.csr_tmm_add(-0.5, X, D, G, picked)
    np.testing.assert_allclose(G, expected, **gemm_tolerance(dtype, len(dense)))


def test_csr_products_match_the_reference(rng):
    X = random_csr(rng, 9, 12, 0.4)
    W, rows = rng.standard_normal((12, 5)), np.array([8, 0, 0, 3])
    Z, Z_ref = np.empty((4, 5)), np.empty((4, 5))
    _kernels.csr_mm(X, W, Z, rows)
    reference.csr_mm(X, W, Z_ref, rows)
    np.testing.assert_allclose(Z, Z_ref, rtol=1e-12)


def test_csr_kernels_refuse_what_would_leave_the_arrays():
    W = np.zeros((3, 2))
    bad_index = sp.csr_matrix((np.ones(1), np.array([5], np.int32), np.array([0, 1], np.int32)), shape=(1, 3))
    with pytest.raises(ValueError, match="bad index"):
        _kernels.csr_mm(bad_index, W, np.empty((1, 2)))
    X = sp.csr_matrix(np.eye(3))
    with pytest.raises(IndexError):
        _kernels.csr_mm(X, W, np.empty((1, 2)), np.array([3]))
    assert _kernels.csr_problem(np.array([0, 2, 1]), np.array([0, 1]), 3, 2) == "bad indptr"


# ---------------------------------------------------------------------------------------------
# Training on sparse input against training on the same values, dense
# ---------------------------------------------------------------------------------------------

def train(X, Y, dtype, optimizer, momentum, l2, l1, nthreads, split_rows, sparse, dropout=0.0, steps=3):
    weights, biases = fastmlp.init_parameters([X.shape[1], 16, Y.shape[1]], ["relu", "softmax"],
                                              np.random.default_rng(0), dtype)
    network = _kernels.Network(weights, biases, ["relu", "softmax"], "log_loss", 64, momentum=momentum, l2=l2,
                               l1=l1, nthreads=nthreads, optimizer=optimizer, dropout=dropout, sparse_input=sparse)
    network.adaptive_team, network.split_rows = False, split_rows   # the team runs, and splits as asked
    order = np.random.default_rng(1).permutation(X.shape[0]).astype(np.int64)
    if sparse:
        network.bind_sparse(X, Y, order)
    else:
        network.bind(np.ascontiguousarray(X.toarray()), Y, order)
    losses = [network.train_batch(start, min(start + 64, X.shape[0]), 0.05) for start in range(0, 64 * steps, 64)]
    return weights + biases, losses


@pytest.mark.parametrize("optimizer, momentum, l2, l1", [
    ("sgd", 0.0, 0.0, 0.0), ("sgd", 0.0, 1e-2, 0.0), ("sgd", 0.9, 0.0, 0.0), ("sgd", 0.9, 1e-2, 0.0),
    ("nesterov", 0.9, 1e-2, 0.0), ("adam", 0.0, 1e-2, 0.0), ("adam", 0.0, 1e-2, 1e-3)])
@pytest.mark.parametrize("nthreads, split_rows", [(1, False), (2, False), (2, True)])
def test_training_steps_match_dense_input(rng, dtype, optimizer, momentum, l2, l1, nthreads, split_rows):
    X = random_csr(rng, 200, 300, 0.05, dtype, np.int64)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 200)]
    sparse, dense = (train(X, Y, dtype, optimizer, momentum, l2, l1, nthreads, split_rows, kind, dropout=0.2)
                     for kind in (True, False))
    for got, want in zip(sparse[0], dense[0]):
        np.testing.assert_allclose(got, want, **NETWORK_TOLERANCE[dtype])
    np.testing.assert_allclose(sparse[1], dense[1], **NETWORK_TOLERANCE[dtype])


def test_the_callers_matrix_is_never_changed(rng):
    X = shuffled_within_rows(random_csr(rng, 60, 40, 0.2), rng)
    X.data[:2], X.indices[1] = 1.0, X.indices[0]   # a duplicate in row 0
    X.has_sorted_indices = False
    copies = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    y = rng.integers(0, 2, 60)
    model = fastmlp.fit(X, y, hidden=(4,), epochs=2, seed=0)
    model.predict(X)
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y).predict(X)
    for array, copy in zip((X.data, X.indices, X.indptr), copies):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_fit_on_sparse_equals_fit_on_dense(rng, optimizer, backend):
    X = random_csr(rng, 150, 50, 0.1)
    y = rng.integers(0, 3, 150)
    options = dict(hidden=(8,), activation="relu", epochs=3, seed=0, dtype="float64", optimizer=optimizer,
                   learning_rate=0.01 if optimizer == "adam" else 0.5, l2=1e-3, backend=backend,
                   validation_fraction=0.2)
    sparse, dense = fastmlp.fit(X, y, **options), fastmlp.fit(X.toarray(), y, **options)
    for got, want in zip(sparse.weights + sparse.biases, dense.weights + dense.biases):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(sparse.predict(X), dense.predict(X.toarray()))
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X.toarray()), rtol=1e-12, atol=1e-14)


def test_gradients_of_sparse_input_check_against_central_differences(rng):
    X = random_csr(rng, 20, 12, 0.3)
    y = rng.integers(0, 3, 20)
    model = fastmlp.fit(X, y, hidden=(5,), activation="tanh", epochs=1, seed=0, dtype="float64", l2=1e-2)
    weight_grads, bias_grads = model.backprop(X, y)
    epsilon = 1e-6
    for l in range(len(model.weights)):
        for index in [(0, 0), (3, 2), (11, 4)] if l == 0 else [(1, 1)]:
            original = model.weights[l][index]
            model.weights[l][index] = original + epsilon
            up = model.cost(X, y)
            model.weights[l][index] = original - epsilon
            down = model.cost(X, y)
            model.weights[l][index] = original
            np.testing.assert_allclose(weight_grads[l][index], (up - down) / (2 * epsilon), rtol=1e-6, atol=1e-9)
    dense = model.backprop(X.toarray(), y)
    for got, want in zip(weight_grads + bias_grads, dense[0] + dense[1]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# The front door
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (3, 17)])
def test_predict_on_sparse_equals_predict_on_dense(rng, container, shape):
    model = fastmlp.fit(rng.standard_normal((30, shape[1])), rng.integers(0, 2, 30), hidden=(3,), epochs=1, seed=0)
    X = container(random_csr(rng, shape[0], shape[1], 0.5))
    np.testing.assert_array_equal(model.predict(X), model.predict(X.toarray()))
    np.testing.assert_allclose(model.output(X, backend="numpy"), model.output(X.toarray()), **TOLERANCE[np.float32])


def test_all_zero_and_empty_columns(rng):
    zeros = sp.csr_matrix((5, 4))
    model = fastmlp.fit(rng.standard_normal((30, 4)), rng.integers(0, 2, 30), hidden=(3,), epochs=1, seed=0)
    np.testing.assert_array_equal(model.output(zeros), model.output(np.zeros((5, 4))))
    y = rng.integers(0, 2, 5)
    fitted = fastmlp.fit(zeros, np.r_[0, 1, y[2:]], hidden=(3,), epochs=2, seed=0)
    assert np.all(np.isfinite(fitted.weights[0]))


@pytest.mark.parametrize("data_dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_check_array_converts_what_it_can(rng, data_dtype, dtype):
    X = random_csr(rng, 7, 5, 0.5).astype(data_dtype)
    checked = check_array(X, dtype, accept_sparse=True)
    assert checked.format == "csr" and checked.dtype == dtype
    assert checked.indices.dtype in (np.int32, np.int64) and checked.indptr.dtype == checked.indices.dtype
    np.testing.assert_array_equal(checked.toarray(), X.toarray().astype(dtype))


def with_a_duplicate(X):
    """X with row 0's second stored index made a copy of its first (a duplicate, which adds up)."""
    X = X.copy()
    X.indices[X.indptr[0] + 1] = X.indices[X.indptr[0]]
    X.has_sorted_indices = X.has_canonical_format = False
    return X


def test_check_array_keeps_unsorted_and_duplicate_indices_without_a_copy(rng):
    X = with_a_duplicate(shuffled_within_rows(random_csr(rng, 30, 20, 0.3), rng))
    assert check_array(X, np.float64, accept_sparse=True) is X


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_unsorted_and_duplicate_indices_train_as_their_sum(rng, optimizer):
    X = with_a_duplicate(shuffled_within_rows(random_csr(rng, 150, 50, 0.1), rng))
    canonical = X.copy()
    canonical.sum_duplicates()
    assert canonical.nnz < X.nnz
    y = rng.integers(0, 3, 150)
    options = dict(hidden=(8,), activation="relu", epochs=3, seed=0, dtype="float64", optimizer=optimizer,
                   learning_rate=0.01 if optimizer == "adam" else 0.5, l2=1e-3)
    got, want = fastmlp.fit(X, y, **options), fastmlp.fit(canonical, y, **options)
    for ours, theirs in zip(got.weights + got.biases, want.weights + want.biases):
        np.testing.assert_allclose(ours, theirs, **NETWORK_TOLERANCE[np.float64])
    np.testing.assert_allclose(got.output(X), want.output(canonical), **NETWORK_TOLERANCE[np.float64])


def test_check_array_keeps_a_good_matrix_as_it_is(rng):
    X = random_csr(rng, 6, 5, 0.5, np.float32, np.int64)
    assert check_array(X, np.float32, accept_sparse=True) is X


@pytest.mark.parametrize("make, error, message", [
    (lambda: sp.csr_matrix((np.array([np.nan]), np.array([0]), np.array([0, 1])), shape=(1, 2)), ValueError, "NaN"),
    (lambda: sp.csr_matrix((np.array([1e39]), np.array([0]), np.array([0, 1])), shape=(1, 2)), ValueError, "large"),
    (lambda: sp.csr_matrix((0, 3)), ValueError, "empty"),
    (lambda: sp.csr_matrix((np.ones(1), np.array([7]), np.array([0, 1])), shape=(1, 2)), ValueError, "column index"),
    (lambda: sp.csr_matrix(np.eye(2, dtype=np.complex128)), TypeError, "real numbers"),
])
def test_bad_sparse_input_raises(make, error, message):
    with pytest.raises(error, match=message):
        X = make()
        fastmlp.fit(X, np.arange(X.shape[0]) % 2, hidden=(2,), epochs=1)


def test_bad_indptr_raises_value_error():
    X = sp.csr_matrix(np.eye(3))
    X.indptr = X.indptr.copy()
    X.indptr[1] = 3   # decreases after it
    with pytest.raises(ValueError, match="indptr"):
        check_array(X, np.float64, accept_sparse=True)


def test_sparse_where_a_dense_array_is_needed_is_a_type_error(rng):
    X = random_csr(rng, 10, 3, 0.5)
    with pytest.raises(TypeError, match="dense"):
        fastmlp.fit(X, sp.csr_matrix(np.ones((10, 1))), hidden=(2,), epochs=1)
    with pytest.raises(ValueError, match="features"):
        fastmlp.fit(X, np.arange(10) % 2, hidden=(2,), epochs=1).predict(random_csr(rng, 2, 4, 0.5))


# ---------------------------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_estimators_fit_and_predict_sparse_as_dense(rng, container, solver):
    X = random_csr(rng, 120, 30, 0.2)
    y = rng.integers(0, 3, 120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = MLPClassifier(hidden_layer_sizes=(6,), solver=solver, max_iter=5, random_state=0).fit(container(X), y)
        dense = MLPClassifier(hidden_layer_sizes=(6,), solver=solver, max_iter=5, random_state=0).fit(X.toarray(), y)
    for got, want in zip(sparse.coefs_, dense.coefs_):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(sparse.predict(container(X)), dense.predict(X.toarray()))


def test_partial_fit_and_regressor_on_sparse(rng):
    X = random_csr(rng, 80, 20, 0.2)
    y = rng.standard_normal(80)
    sparse, dense = MLPRegressor(hidden_layer_sizes=(5,), random_state=0), MLPRegressor(hidden_layer_sizes=(5,),
                                                                                        random_state=0)
    for _ in range(3):
        sparse.partial_fit(sp.csr_array(X), y)
        dense.partial_fit(X.toarray(), y)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), rtol=1e-6, atol=1e-7)
    classifier = MLPClassifier(hidden_layer_sizes=(5,), random_state=0, early_stopping=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.fit(X.tocsc(), y > 0)
    assert classifier.score(X, y > 0) >= 0


@pytest.mark.parametrize("call", ["bind", "forward", "backprop"])
def test_a_network_built_for_sparse_input_refuses_a_dense_x(call):
    weights, biases = fastmlp.init_parameters([20, 8, 3], ["relu", "softmax"], np.random.default_rng(0), np.float64)
    network = _kernels.Network(weights, biases, ["relu", "softmax"], "log_loss", 16, sparse_input=True)
    X, Y = np.ones((4, 20)), np.eye(3)[[0, 1, 2, 0]]
    arguments = {"bind": (X, Y, np.arange(4, dtype=np.int64)), "forward": (X, np.empty((4, 3))),
                 "backprop": (X, Y)}[call]
    with pytest.raises(ValueError, match="built for sparse input"):
        getattr(network, call)(*arguments)


def test_partial_fit_allocates_four_copies_of_the_weights_and_keeps_none():
    # Per call: the gradients, and the snapshot of the weights and Adam's two moments that Ctrl-C
    # or a divergence goes back to. The weights and moments themselves are trained in place, and
    # a sparse batch needs no buffer the size of the first layer.
    import tracemalloc
    rng = np.random.default_rng(0)
    # X's values take more memory than the first layer: a temporary of X's size would show
    X, y = random_csr(rng, 1000, 4000, 0.2), rng.integers(0, 3, 1000)
    assert X.data.nbytes > 5 * 4000 * 32 * 8
    estimator = MLPClassifier(hidden_layer_sizes=(32,), batch_size=100, random_state=0)
    estimator.partial_fit(X, y, classes=[0, 1, 2])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        estimator.partial_fit(X, y)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    first_layer = estimator.coefs_[0].nbytes
    blocks = 2**20   # the penalty and the divergence checks read the weights a MiB at a time
    assert 3.9 * first_layer < peak - before < 4.3 * first_layer + blocks, (peak - before) / first_layer
    assert current - before < 0.05 * first_layer, (current - before) / first_layer
