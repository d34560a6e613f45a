"""Each compiled kernel against its NumPy twin, on the shapes that training C1-C4 gives it.

One pytest-benchmark group per kernel and shape, with two contenders: ``fastmlp`` (the kernel in
``fastmlp._kernels``) and ``numpy`` (the function of the same name in ``fastmlp.reference``).
After timing, the contender runs once more on fresh inputs and its result is compared with the
NumPy twin's: the timed calls update their buffers in place over and over, so their final
values depend on how many rounds were run.

    pytest benchmarks --benchmark-only                      # everything, a few minutes
    pytest benchmarks --benchmark-only -k "gemm and C3"     # one kernel, one config
    FASTMLP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 pytest benchmarks --benchmark-only

The compiled GEMM uses ``fastmlp.get_num_threads()`` threads (FASTMLP_NUM_THREADS); NumPy's BLAS
its own pool (OPENBLAS_NUM_THREADS). Both are recorded in every benchmark's ``extra_info``.
"""
import numpy as np
import pytest

import fastmlp
from fastmlp import _kernels, reference
from fastmlp.bench import CONFIGS, blas_info
from fastmlp.model import init_parameters

CONTENDERS = {"fastmlp": _kernels, "numpy": reference}
NTHREADS = fastmlp.get_num_threads()
EXTRA_INFO = {**blas_info(), "fastmlp_threads": NTHREADS, "gemm_isa": _kernels.gemm_isa()}

# float64 is timed for these configurations only, to keep the suite short.
FLOAT64_CONFIGS = ("C3",)
# Relative tolerance, and absolute tolerance per term of a sum (a GEMM's k).
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}

# The three products of a dense layer with batch size B (A: B x n_in activations, W: n_in x n_out
# weights, D: B x n_out deltas), as train_batch computes them: (left, right, alpha, C) from
# (A, W, D), where C is None for C := alpha · left · right (beta = 0), else the matrix that the
# product adds to (beta = 1).
PRODUCTS = {
    "forward": lambda A, W, D: (A, W, 1.0, None),                     # Z = A · W
    "weight_grad": lambda A, W, D: (A.T, D, 1.0 / A.shape[0], None),  # ∂C/∂W = Aᵀ · Δ / B
    # plain SGD applies its step inside the product: W := W − η Aᵀ · Δ / B (η = 0.1 here)
    "weight_step": lambda A, W, D: (A.T, D, -0.1 / A.shape[0], W),
    "backprop": lambda A, W, D: (D, W.T, 1.0, None),                  # Δ · Wᵀ
}


def random_arrays(dtype, *shapes):
    """Standard-normal arrays of the given shapes, the same on every call (seed 0)."""
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def gemm_operands(product, batch, n_in, n_out, dtype):
    """(left, right, alpha, C) of one product, transposes as strided views, as in training."""
    return PRODUCTS[product](*random_arrays(dtype, (batch, n_in), (n_in, n_out), (batch, n_out)))


def bench(benchmark, group, contender, prepare, dtype, terms=1):
    """Time one contender, then check it against the NumPy twin on fresh inputs.

    ``prepare(kernels)`` makes fresh (seeded) inputs and returns ``(function, args, outputs)``;
    ``outputs(result)`` lists what to compare (arrays written in place, numbers returned).
    """
    benchmark.group = group
    benchmark.extra_info.update(EXTRA_INFO)
    function, args, _ = prepare(CONTENDERS[contender])
    benchmark(function, *args)
    results = []
    for kernels in (CONTENDERS[contender], reference):
        function, args, outputs = prepare(kernels)
        results.append(outputs(function(*args)))
    tolerance = TOLERANCE[np.dtype(dtype).type]
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * terms)


def cases(rows):
    """pytest params from (id, values...) rows, each id once (layers can share a shape)."""
    unique = {row[0]: row for row in rows}
    return [pytest.param(*row[1:], id=row[0]) for row in unique.values()]


def dtypes(config):
    return (np.float32, np.float64) if config.name in FLOAT64_CONFIGS else (np.float32,)


def layer_outputs(hidden_only=False):
    """(config, batch size, width, activation) of every layer output (or hidden layer)."""
    for config in CONFIGS.values():
        layers = zip(config.layers, config.layer_activations)
        for (_, n_out), activation in list(layers)[:-1] if hidden_only else layers:
            yield config, config.batch_size, n_out, activation


@pytest.fixture(params=list(CONTENDERS))
def contender(request):
    return request.param


@pytest.mark.parametrize("product, batch, n_in, n_out, dtype", cases(
    (f"{config.name}-{product}-B{config.batch_size}-{n_in}x{n_out}-{dtype.__name__}",
     product, config.batch_size, n_in, n_out, dtype)
    for config in CONFIGS.values() for n_in, n_out in config.layers
    for product in PRODUCTS for dtype in dtypes(config)))
def test_gemm(benchmark, contender, product, batch, n_in, n_out, dtype):
    def prepare(kernels):
        left, right, alpha, C = gemm_operands(product, batch, n_in, n_out, dtype)
        beta = 0.0 if C is None else 1.0
        if C is None:
            C = np.empty((left.shape[0], right.shape[1]), dtype)  # beta == 0: C is not read
        return kernels.gemm, (alpha, left, right, beta, C, NTHREADS), lambda _: [C]

    left, right = gemm_operands(product, batch, n_in, n_out, dtype)[:2]
    (m, k), n = left.shape, right.shape[1]
    bench(benchmark, f"gemm {product} ({m}x{k})·({k}x{n}) {dtype.__name__}", contender, prepare,
          dtype, terms=k)


@pytest.mark.parametrize("rows, cols, activation", cases(
    (f"{config.name}-{rows}x{cols}-{activation}", rows, cols, activation)
    for config, rows, cols, activation in layer_outputs()))
def test_bias_activation_inplace(benchmark, contender, rows, cols, activation):
    def prepare(kernels):
        Z, b = random_arrays(np.float32, (rows, cols), (cols,))
        return kernels.bias_activation_inplace, (Z, b, activation), lambda _: [Z]

    bench(benchmark, f"bias_activation_inplace {rows}x{cols} {activation}", contender, prepare,
          np.float32)


@pytest.mark.parametrize("rows, cols, activation", cases(
    (f"{config.name}-{rows}x{cols}-{activation}", rows, cols, activation)
    for config, rows, cols, activation in layer_outputs(hidden_only=True)))
def test_activation_derivative_inplace(benchmark, contender, rows, cols, activation):
    def prepare(kernels):
        Z, delta = random_arrays(np.float32, (rows, cols), (rows, cols))
        A = reference.ACTIVATION_FUNCTIONS[activation](Z)
        return kernels.activation_derivative_inplace, (A, delta, activation), lambda _: [delta]

    bench(benchmark, f"activation_derivative_inplace {rows}x{cols} {activation}", contender,
          prepare, np.float32)


@pytest.mark.parametrize("config", [pytest.param(config, id=name) for name, config in CONFIGS.items()])
def test_output_delta(benchmark, contender, config):
    rows, cols, activation, loss = config.batch_size, 10, config.layer_activations[-1], config.loss

    def prepare(kernels):
        Z, delta = random_arrays(np.float32, (rows, cols), (rows, cols))
        A = reference.ACTIVATION_FUNCTIONS[activation](Z)
        Y = np.eye(cols, dtype=np.float32)[np.arange(rows) % cols]
        return kernels.output_delta, (A, Y, delta, activation, loss), lambda total: [delta, total]

    bench(benchmark, f"output_delta {rows}x{cols} {activation} {loss}", contender, prepare,
          np.float32)


@pytest.mark.parametrize("rows, cols", cases(
    (f"{config.name}-{rows}x{cols}", rows, cols) for config, rows, cols, _ in layer_outputs()))
def test_column_sums(benchmark, contender, rows, cols):
    def prepare(kernels):
        D, out = random_arrays(np.float32, (rows, cols), (cols,))
        return kernels.column_sums, (D, out, 1.0 / rows), lambda _: [out]

    bench(benchmark, f"column_sums {rows}x{cols}", contender, prepare, np.float32)


@pytest.mark.parametrize("size, momentum", cases(
    (f"{config.name}-{n_in}x{n_out}" + ("-momentum" if config.momentum else ""),
     n_in * n_out, config.momentum)
    for config in CONFIGS.values() for n_in, n_out in config.layers))
def test_sgd_update_inplace(benchmark, contender, size, momentum):
    def prepare(kernels):
        params, grads, velocity = random_arrays(np.float32, size, size, size)
        velocity = velocity if momentum else None
        return (kernels.sgd_update_inplace, (params, grads, velocity, 0.05, momentum),
                lambda _: [params] + ([velocity] if momentum else []))

    bench(benchmark, f"sgd_update_inplace {size}" + (" momentum" if momentum else ""), contender,
          prepare, np.float32)


@pytest.mark.parametrize("config, dtype", [
    pytest.param(config, dtype, id=f"{name}-{dtype.__name__}")
    for name, config in CONFIGS.items() for dtype in dtypes(config)])
def test_train_batch(benchmark, contender, config, dtype):
    """One whole mini-batch step: gather rows, forward, backward, update."""
    batch = config.batch_size

    def prepare(kernels):
        rng = np.random.default_rng(0)
        weights, biases = init_parameters(config.layer_sizes, config.layer_activations, rng, dtype)
        network = kernels.Network(weights, biases, config.layer_activations, config.loss, batch,
                                  momentum=config.momentum, nthreads=NTHREADS)
        X = rng.random((batch, config.layer_sizes[0])).astype(dtype)
        Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
        network.bind(X, Y, np.arange(batch, dtype=np.int64))
        return (network.train_batch, (0, batch, config.learning_rate),
                lambda total: [total, *weights, *biases])

    bench(benchmark, f"train_batch {config.name} {'-'.join(map(str, config.layer_sizes))} "
          f"B{batch} {dtype.__name__}", contender, prepare, dtype)
