"""Every compiled kernel against its NumPy twin in fastmlp.reference, both dtypes, awkward shapes.

Shapes straddle the GEMM's blocking: micro-tiles of MR = 6 (AVX2) or 12 (AVX-512) rows by NR = 8,
16 or 32 columns (double/float, AVX2/AVX-512), KC = 800 (k = 801 needs two k blocks), MC = 72 (double) and
144 (float) rows per block of A.
"""
import re

import numpy as np
import pytest

from fastmlp import _kernels, init_parameters, reference

from conftest import (HIDDEN_ACTIVATIONS, NETWORK_TOLERANCE, OUTPUT_LOSS_PAIRS, TOLERANCE,
                      gemm_tolerance, output_targets, random_output)

# (m, k, n) of C (m x n) := A (m x k) · B (k x n)
GEMM_SHAPES = [
    (1, 1, 1), (3, 3, 3), (17, 17, 17), (1, 257, 1), (257, 3, 17),
    (5, 9, 17), (6, 8, 16), (7, 15, 33), (5, 7, 31), (12, 4, 32),     # MR ± 1, NR ± 1
    (11, 5, 33), (13, 9, 31), (25, 3, 17),                            # 12-row tiles
    (64, 300, 33), (1, 784, 16), (100, 784, 16), (784, 100, 16), (100, 16, 784),   # the seed network
    (73, 801, 9), (145, 20, 17), (3, 1601, 5),                        # MC + 1, KC + 1, 2 KC + 1
    (37, 784, 100), (13, 6, 22),                                      # AVX-512's float tails of 4 and 6
    (3, 0, 5), (1, 0, 1),                                             # k == 0: C := beta · C
]
# Elementwise kernels: rows x columns
SHAPES = [(1, 1), (1, 17), (3, 3), (17, 257), (257, 3), (3, 1)]


def as_id(shape):
    return "x".join(map(str, shape))


def mkn(shapes):
    """Parameters (m, k, n) with readable ids such as ``5x9x17``."""
    return [pytest.param(*shape, id=as_id(shape)) for shape in shapes]


def operands(rng, m, k, n, dtype, layout):
    """A (m x k) and B (k x n) as the views ``layout`` names, with the same values throughout."""
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    if layout == "A.T":                            # column-major A: a transposed view
        A = np.ascontiguousarray(A.T).T
    elif layout == "B.T":
        B = np.ascontiguousarray(B.T).T
    elif layout == "A.T, B.T":
        A, B = np.ascontiguousarray(A.T).T, np.ascontiguousarray(B.T).T
    elif layout == "A[::2]":                       # every other row of a taller matrix
        tall = np.full((2 * m, k), np.nan, dtype)
        tall[::2] = A
        A = tall[::2]
    elif layout == "B[:, ::3]":                    # every third column of a wider matrix
        wide = np.full((k, 3 * n), np.nan, dtype)
        wide[:, ::3] = B
        B = wide[:, ::3]
    elif layout == "A[:, ::2].T":                  # transposed and strided
        wide = np.full((k, 2 * m), np.nan, dtype)
        wide[:, ::2] = A.T
        A = wide[:, ::2].T
    return A, B


# ---------------------------------------------------------------------------------------------
# GEMM
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m, k, n", mkn(GEMM_SHAPES))
def test_gemm_matches_reference(rng, dtype, m, k, n):
    A, B = operands(rng, m, k, n, dtype, "contiguous")
    C = np.full((m, n), np.nan, dtype)              # beta == 0 must not read C
    _kernels.gemm(1.0, A, B, 0.0, C)
    expected = np.empty((m, n), dtype)
    reference.gemm(1.0, A, B, 0.0, expected)
    np.testing.assert_allclose(C, expected, **gemm_tolerance(dtype, k))


@pytest.mark.parametrize("layout", ["A.T", "B.T", "A.T, B.T", "A[::2]", "B[:, ::3]", "A[:, ::2].T"])
@pytest.mark.parametrize("m, k, n", mkn([(1, 1, 1), (5, 9, 17), (64, 300, 33), (100, 784, 16), (3, 0, 5)]))
def test_gemm_reads_strided_and_transposed_views(rng, dtype, m, k, n, layout):
    A, B = operands(rng, m, k, n, dtype, layout)
    C = np.full((m, n), np.nan, dtype)
    _kernels.gemm(1.0, A, B, 0.0, C)
    expected = np.empty((m, n), dtype)
    reference.gemm(1.0, np.ascontiguousarray(A), np.ascontiguousarray(B), 0.0, expected)
    np.testing.assert_allclose(C, expected, **gemm_tolerance(dtype, k))


@pytest.mark.parametrize("alpha, beta", [(1.0, 0.5), (-2.0, 0.5), (0.5, 1.0), (1.0, -1.0), (0.0, 0.5)])
@pytest.mark.parametrize("m, k, n", mkn([(1, 1, 1), (5, 9, 17), (64, 300, 33), (3, 0, 5)]))
def test_gemm_alpha_and_beta(rng, dtype, m, k, n, alpha, beta):
    A, B = operands(rng, m, k, n, dtype, "contiguous")
    C0 = rng.standard_normal((m, n)).astype(dtype)
    C, expected = C0.copy(), C0.copy()
    _kernels.gemm(alpha, A, B, beta, C)
    reference.gemm(alpha, A, B, beta, expected)
    np.testing.assert_allclose(C, expected, **gemm_tolerance(dtype, k))


@pytest.mark.parametrize("m, k, n", mkn([(3, 0, 5), (5, 9, 17), (100, 784, 16)]))
def test_gemm_beta_zero_never_reads_c(rng, dtype, m, k, n):
    """NaN in C must vanish with beta == 0 (0 · NaN would be NaN if C were read)."""
    A, B = operands(rng, m, k, n, dtype, "contiguous")
    C = np.full((m, n), np.nan, dtype)
    _kernels.gemm(1.0, A, B, 0.0, C)
    assert np.isfinite(C).all()
    if k == 0:
        np.testing.assert_array_equal(C, 0)


@pytest.mark.parametrize("layout", ["contiguous", "A.T", "B.T"])
@pytest.mark.parametrize("m, k, n", mkn([(5, 9, 17), (64, 300, 33), (100, 784, 16), (784, 100, 16),
                                     (257, 257, 65), (65, 801, 40)]))
def test_gemm_thread_count_is_bit_identical(rng, dtype, m, k, n, layout):
    A, B = operands(rng, m, k, n, dtype, layout)
    one, two = np.full((m, n), np.nan, dtype), np.full((m, n), np.nan, dtype)
    _kernels.gemm(1.0, A, B, 0.0, one, 1)
    _kernels.gemm(1.0, A, B, 0.0, two, 2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, A @ B, **gemm_tolerance(dtype, k))


@pytest.mark.parametrize("transposed", [False, True], ids=["A", "A.T"])
@pytest.mark.parametrize("which", ["a_rows", "a_cols"])
@pytest.mark.parametrize("m, k, n", mkn([(1, 1, 1), (3, 5, 17), (13, 17, 3), (100, 784, 16), (784, 100, 16),
                                     (10, 784, 30), (784, 10, 30), (73, 801, 40)]))
def test_gemm_reads_a_through_an_index(rng, dtype, m, k, n, which, transposed):
    """A mini-batch read where it lies: rows (or columns) of a larger matrix picked by an index,
    in shuffled order with repeats, give the product of the gathered copy, the same for 1 and 2
    threads."""
    rows, cols = (m + 7, k) if which == "a_rows" else (m, k + 7)
    source = rng.standard_normal((rows, cols)).astype(dtype)
    if transposed:                                  # read through strides, as the weight gradient does
        source = np.ascontiguousarray(source.T).T
    index = rng.integers(0, rows if which == "a_rows" else cols, m if which == "a_rows" else k)
    B = rng.standard_normal((k, n)).astype(dtype)
    one, two = np.full((m, n), np.nan, dtype), np.full((m, n), np.nan, dtype)
    _kernels.gemm(1.0, source, B, 0.0, one, 1, **{which: index})
    _kernels.gemm(1.0, source, B, 0.0, two, 2, **{which: index})
    expected = np.empty((m, n), dtype)
    reference.gemm(1.0, source, B, 0.0, expected, **{which: index})
    np.testing.assert_allclose(one, expected, **gemm_tolerance(dtype, k))
    np.testing.assert_array_equal(one, two)


def test_gemm_rejects_a_bad_index(rng):
    A, B, C = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), np.empty((2, 2))
    with pytest.raises(ValueError, match="out of range"):
        _kernels.gemm(1.0, A, B, 0.0, C, a_rows=np.array([0, 4]))
    with pytest.raises(ValueError, match="out of range"):
        _kernels.gemm(1.0, A, B[:2], 0.0, np.empty((4, 2)), a_cols=np.array([-1, 0]))
    with pytest.raises(ValueError, match="not both"):
        _kernels.gemm(1.0, A, B, 0.0, C, a_rows=np.array([0, 1]), a_cols=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="shapes"):
        _kernels.gemm(1.0, A, B, 0.0, C, a_rows=np.array([0, 1, 2]))


def test_gemm_rejects_mismatched_shapes(rng):
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="shapes"):
        _kernels.gemm(1.0, A, B, 0.0, np.empty((3, 2)))


# ---------------------------------------------------------------------------------------------
# Elementwise kernels
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu", "softmax", "exp"])
@pytest.mark.parametrize("shape", SHAPES, ids=as_id)
def test_bias_activation_matches_reference(rng, dtype, shape, activation):
    Z = (3 * rng.standard_normal(shape)).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    expected = Z.copy()
    reference.bias_activation_inplace(expected, b, activation)
    _kernels.bias_activation_inplace(Z, b, activation)
    np.testing.assert_allclose(Z, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softmax", "relu", "identity"])
def test_bias_activation_of_huge_inputs_is_finite(dtype, activation):
    """exp must never overflow: σ(±1e4) is 0 or 1 and softmax is shifted by the row maximum."""
    Z = np.array([[-1e4, 0.0, 1e4], [3e4, 3e4, -3e4]], dtype)
    b = np.zeros(3, dtype)
    expected = Z.copy()
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        reference.bias_activation_inplace(expected, b, activation)
    _kernels.bias_activation_inplace(Z, b, activation)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS + ("exp",))
@pytest.mark.parametrize("shape", SHAPES, ids=as_id)
def test_activation_derivative_matches_reference(rng, dtype, shape, activation):
    A = random_output(rng, shape, activation, dtype)   # relu: about half exact zeros
    delta = rng.standard_normal(shape).astype(dtype)
    expected = delta.copy()
    reference.activation_derivative_inplace(A, expected, activation)
    _kernels.activation_derivative_inplace(A, delta, activation)
    np.testing.assert_allclose(delta, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("activation, loss", OUTPUT_LOSS_PAIRS)
@pytest.mark.parametrize("shape", SHAPES, ids=as_id)
def test_output_delta_matches_reference(rng, dtype, shape, activation, loss):
    A = random_output(rng, shape, activation, dtype)
    Y = output_targets(rng, shape[0], shape[1], activation, loss, dtype)
    delta, expected = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
    expected_loss = reference.output_delta(A, Y, expected, activation, loss)
    total = _kernels.output_delta(A, Y, delta, activation, loss)
    np.testing.assert_allclose(delta, expected, **TOLERANCE[dtype])
    np.testing.assert_allclose(total, expected_loss, rtol=TOLERANCE[dtype]["rtol"])


def test_exp_of_huge_inputs_is_infinite_or_zero_as_numpys(dtype):
    """e^z past the largest finite number is +inf (no NaN), tiny results are 0 or tiny."""
    largest = float(np.log(np.finfo(dtype).max))
    Z = np.array([[-1e4, -largest, 0.0, 0.5 * largest, 0.999 * largest, largest * 1.001, 1e4]], dtype)
    expected = Z.copy()
    with np.errstate(over="ignore", under="ignore"):
        reference.bias_activation_inplace(expected, np.zeros(Z.shape[1], dtype), "exp")
    _kernels.bias_activation_inplace(Z, np.zeros(Z.shape[1], dtype), "exp")
    assert Z[0, -1] == Z[0, -2] == np.inf and not np.isnan(Z).any()
    np.testing.assert_allclose(Z, expected, rtol=TOLERANCE[dtype]["rtol"], atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("activation, loss", [("sigmoid", "cross_entropy"), ("softmax", "log_loss")])
def test_output_delta_loss_is_finite_for_saturated_outputs(dtype, activation, loss):
    """An output that rounded to exactly 0 or 1 gives a large finite loss, not inf or NaN."""
    A = np.array([[0.0, 1.0], [1.0, 0.0]], dtype)
    Y = np.array([[1.0, 0.0], [1.0, 0.0]], dtype)
    delta = np.empty_like(A)
    total = _kernels.output_delta(A, Y, delta, activation, loss)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        expected = reference.output_delta(A, Y, np.empty_like(A), activation, loss)
    assert np.isfinite(total) and total > 100
    assert total == pytest.approx(expected)
    np.testing.assert_array_equal(delta, A - Y)


@pytest.mark.parametrize("scale", [1.0, 1 / 17])
@pytest.mark.parametrize("shape", SHAPES + [(0, 5)], ids=as_id)
def test_column_sums_matches_reference(rng, dtype, shape, scale):
    D = rng.standard_normal(shape).astype(dtype)
    out, expected = np.full(shape[1], np.nan, dtype), np.full(shape[1], np.nan, dtype)
    reference.column_sums(D, expected, scale)
    _kernels.column_sums(D, out, scale)
    np.testing.assert_allclose(out, expected, rtol=TOLERANCE[dtype]["rtol"] * np.sqrt(max(shape[0], 1)),
                               atol=TOLERANCE[dtype]["atol"] * max(shape[0], 1))


@pytest.mark.parametrize("momentum", [None, 0.0, 0.9])
@pytest.mark.parametrize("size", [1, 3, 17, 257])
def test_sgd_update_matches_reference(rng, dtype, size, momentum):
    """None: plain SGD (no velocity); 0.0 and 0.9: the momentum update with a velocity buffer."""
    params = rng.standard_normal(size).astype(dtype)
    grads = rng.standard_normal(size).astype(dtype)
    velocity = None if momentum is None else rng.standard_normal(size).astype(dtype)
    expected_params = params.copy()
    expected_velocity = None if velocity is None else velocity.copy()
    reference.sgd_update_inplace(expected_params, grads, expected_velocity, 0.3, momentum or 0.0)
    _kernels.sgd_update_inplace(params, grads, velocity, 0.3, momentum or 0.0)
    np.testing.assert_allclose(params, expected_params, **TOLERANCE[dtype])
    if velocity is not None:
        np.testing.assert_allclose(velocity, expected_velocity, **TOLERANCE[dtype])


@pytest.mark.parametrize("n_rows, n_cols, count", [(1, 1, 1), (3, 17, 5), (257, 3, 100), (17, 257, 17)])
def test_gather_rows_matches_reference(rng, dtype, n_rows, n_cols, count):
    X = rng.standard_normal((n_rows, n_cols)).astype(dtype)
    index = rng.integers(0, n_rows, count).astype(np.int64)   # repeats and any order
    out, expected = np.full((count, n_cols), np.nan, dtype), np.full((count, n_cols), np.nan, dtype)
    reference.gather_rows(X, index, expected)
    _kernels.gather_rows(X, index, out)
    np.testing.assert_array_equal(out, expected)


def test_gather_rows_rejects_out_of_range_index(dtype):
    X = np.zeros((3, 2), dtype)
    with pytest.raises(IndexError, match="out of range"):
        _kernels.gather_rows(X, np.array([0, 3], np.int64), np.empty((2, 2), dtype))


def read_only(array):
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("Z, b, message", [
    (np.zeros((4, 6))[:, ::2], np.zeros(3), "Z must be C-contiguous"),
    (np.zeros((2, 3), np.int64), np.zeros(3), "Z must be float32 or float64, not int64"),
    (read_only(np.zeros((2, 3))), np.zeros(3), "Z must be writeable"),
    (np.zeros((2, 3)).astype(">f8"), np.zeros(3), "Z must be float32 or float64, not >f8"),
    ([[0.0] * 3] * 2, np.zeros(3), "Z must be a 2-D NumPy array"),
    (np.zeros((2, 3)), np.zeros(3, np.float32), "b must be float64, not float32"),
    (np.zeros((2, 3)), np.zeros(6)[::2], "b must be C-contiguous"),
], ids=["strided", "int64", "read-only", "big-endian", "list", "dtypes differ", "strided bias"])
def test_test_kernels_refuse_arrays_they_cannot_read(Z, b, message):
    """The kernels trust their pointers: the wrappers the tests call check every array first."""
    with pytest.raises(ValueError, match=re.escape(message)):
        _kernels.bias_activation_inplace(Z, b, "relu")


def test_gemm_reads_any_whole_element_strides_but_writes_contiguous_rows(rng):
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    C = np.zeros((3, 5))[:, :2]                      # rows 5 apart, each contiguous: fine
    _kernels.gemm(1.0, A[::-1], B, 0.0, C)
    np.testing.assert_allclose(C, A[::-1] @ B)
    with pytest.raises(ValueError, match="C must be contiguous along its rows"):
        _kernels.gemm(1.0, A, B, 0.0, np.zeros((3, 4))[:, ::2])
    misaligned = np.zeros(97, np.uint8)[1:].view(np.float64).reshape(3, 4)
    with pytest.raises(ValueError, match="A must be aligned"):
        _kernels.gemm(1.0, misaligned, B, 0.0, C)


# ---------------------------------------------------------------------------------------------
# A one-step worked example
# ---------------------------------------------------------------------------------------------

def test_one_step_worked_example(backend):
    """A 1-1-1 network of identity units, quadratic cost, one sample, learning rate 0.1.

    w¹ = 2, b¹ = 0.5, w² = -1, b² = 1; x = 1.5, y = 3.
      forward:  a¹ = 2 · 1.5 + 0.5 = 3.5;   a² = -1 · 3.5 + 1 = -2.5
      cost:     ½ (a² − y)² = ½ (-5.5)² = 15.125
      output:   δ² = a² − y = -5.5;  ∂C/∂w² = a¹ δ² = -19.25;  ∂C/∂b² = -5.5
      hidden:   δ¹ = δ² w² = 5.5;    ∂C/∂w¹ = x δ¹ = 8.25;      ∂C/∂b¹ = 5.5
      update:   w² = -1 + 1.925 = 0.925, b² = 1.55, w¹ = 2 − 0.825 = 1.175, b¹ = 0.5 − 0.55 = -0.05
    """
    network_class = _kernels.Network if backend == "compiled" else reference.Network
    weights = [np.array([[2.0]]), np.array([[-1.0]])]
    biases = [np.array([0.5]), np.array([1.0])]
    network = network_class(weights, biases, ["identity", "identity"], "quadratic", 1)
    X, Y = np.array([[1.5]]), np.array([[3.0]])
    network.bind(X, Y, np.array([0], np.int64))
    assert network.backprop(X, Y) == pytest.approx(15.125)
    np.testing.assert_allclose([w.item() for w in network.weight_grads], [8.25, -19.25])
    np.testing.assert_allclose([b.item() for b in network.bias_grads], [5.5, -5.5])
    # (with plain SGD the compiled step applies the gradient inside the GEMM, without storing it)
    assert network.train_batch(0, 1, 0.1) == pytest.approx(15.125)
    np.testing.assert_allclose([w.item() for w in weights], [1.175, 0.925])
    np.testing.assert_allclose([b.item() for b in biases], [-0.05, 1.55])


# ---------------------------------------------------------------------------------------------
# The compiled Network against the reference Network
# ---------------------------------------------------------------------------------------------

def make_networks(rng, layer_sizes, hidden_activation, output_activation, loss, dtype, capacity,
                  momentum=0.0, l2=0.0):
    """A compiled and a reference Network with the same (separately owned) starting weights."""
    activations = [hidden_activation] * (len(layer_sizes) - 2) + [output_activation]
    weights, biases = init_parameters(layer_sizes, activations, rng, dtype, init="normal")
    networks = []
    for network_class in (_kernels.Network, reference.Network):
        networks.append(network_class([w.copy() for w in weights], [b.copy() for b in biases],
                                      activations, loss, capacity, momentum=momentum, l2=l2))
    return networks


@pytest.mark.parametrize("l2", [0.0, 0.1])
@pytest.mark.parametrize("output_activation, loss", OUTPUT_LOSS_PAIRS)
@pytest.mark.parametrize("hidden_activation", HIDDEN_ACTIVATIONS)
def test_network_backprop_matches_reference(rng, dtype, hidden_activation, output_activation, loss, l2):
    layer_sizes, capacity, n_samples = (7, 9, 5, 4), 8, 5          # a batch smaller than capacity
    compiled, ref = make_networks(rng, layer_sizes, hidden_activation, output_activation, loss, dtype,
                                  capacity, l2=l2)
    X = rng.standard_normal((n_samples, layer_sizes[0])).astype(dtype)
    Y = output_targets(rng, n_samples, layer_sizes[-1], output_activation, loss, dtype)
    total = compiled.backprop(X, Y)
    expected_total = ref.backprop(X, Y)
    tolerance = NETWORK_TOLERANCE[dtype]
    assert total == pytest.approx(expected_total, rel=tolerance["rtol"])
    for got, expected in zip(compiled.weight_grads + compiled.bias_grads, ref.weight_grads + ref.bias_grads):
        np.testing.assert_allclose(got, expected, **tolerance)
    assert len(compiled.activations) == len(ref.activations) == len(layer_sizes)
    for got, expected in zip(compiled.activations, ref.activations):
        np.testing.assert_allclose(got[:n_samples], expected, **tolerance)
    assert len(compiled.deltas) == len(ref.deltas) == len(layer_sizes) - 1
    for got, expected in zip(compiled.deltas, ref.deltas):
        np.testing.assert_allclose(got[:n_samples], expected, **tolerance)


@pytest.mark.parametrize("momentum, l2", [(0.0, 0.0), (0.9, 0.0), (0.5, 0.01)])
@pytest.mark.parametrize("output_activation, loss", [("sigmoid", "quadratic"), ("softmax", "log_loss"),
                                                     ("sigmoid", "cross_entropy")])
def test_network_train_batch_matches_reference(rng, dtype, output_activation, loss, momentum, l2):
    """Mini-batches of 4, 4 and 3 rows (a short last batch) of a shuffled order, step by step."""
    layer_sizes, capacity, n_samples = (6, 8, 5, 3), 4, 11
    compiled, ref = make_networks(rng, layer_sizes, "tanh", output_activation, loss, dtype, capacity,
                                  momentum=momentum, l2=l2)
    X = rng.standard_normal((n_samples, layer_sizes[0])).astype(dtype)
    Y = output_targets(rng, n_samples, layer_sizes[-1], output_activation, loss, dtype)
    order = rng.permutation(n_samples).astype(np.int64)
    X_before = X.copy()
    compiled.bind(X, Y, order)
    ref.bind(X, Y, order)
    tolerance = NETWORK_TOLERANCE[dtype]
    for start, stop in [(0, 4), (4, 8), (8, 11), (0, 4)]:
        total = compiled.train_batch(start, stop, 0.5)
        assert total == pytest.approx(ref.train_batch(start, stop, 0.5), rel=tolerance["rtol"])
        for got, expected in zip(compiled.weights + compiled.biases, ref.weights + ref.biases):
            np.testing.assert_allclose(got, expected, **tolerance)
        # the batch's values, as documented: activations[0] is not written (X is read in place)
        batch_values = zip(compiled.activations[1:] + compiled.deltas, ref.activations[1:] + ref.deltas)
        for got, expected in batch_values:
            np.testing.assert_allclose(got[:stop - start], expected, **tolerance)
    assert not compiled.activations[0].any()
    np.testing.assert_array_equal(X, X_before)


def test_network_forward_matches_reference_in_chunks(rng, dtype):
    """forward() runs ``capacity`` rows at a time: 10 rows through a network of capacity 4."""
    compiled, ref = make_networks(rng, (5, 6, 3), "relu", "softmax", "log_loss", dtype, 4)
    X = rng.standard_normal((10, 5)).astype(dtype)
    out, expected = np.full((10, 3), np.nan, dtype), np.full((10, 3), np.nan, dtype)
    compiled.forward(X, out)
    ref.forward(X, expected)
    np.testing.assert_allclose(out, expected, **NETWORK_TOLERANCE[dtype])


def test_network_rejects_a_batch_above_capacity(rng, dtype):
    compiled, _ = make_networks(rng, (5, 6, 3), "relu", "softmax", "log_loss", dtype, 4)
    with pytest.raises(ValueError, match="capacity"):
        compiled.backprop(np.zeros((5, 5), dtype), np.zeros((5, 3), dtype))
    compiled.bind(np.zeros((6, 5), dtype), np.zeros((6, 3), dtype), np.arange(6, dtype=np.int64))
    with pytest.raises(ValueError, match="bad row range"):
        compiled.train_batch(0, 5, 0.1)
