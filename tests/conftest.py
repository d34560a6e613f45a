"""Shared fixtures and the tolerance table of the core test suite.

The NumPy twin ``fastmlp.reference`` is the oracle for every compiled kernel. The tolerances
below bound the difference between two correct implementations that round differently
(summation order, ``expf`` against NumPy's ``exp``, fused multiply-adds); a real bug is off
by orders of magnitude more.
"""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

# FASTMLP_TESTS_WITHOUT_EXTRAS=1: the tests run as if no optional package were installed (import
# fails, importlib.util.find_spec says None), so that CI sees every test that needs one skip cleanly
# without it. Only this process: the programs that tests start see what is installed.
OPTIONAL_PACKAGES = ("matplotlib", "scipy", "sklearn", "onnx", "onnxruntime", "skl2onnx", "dask",
                     "distributed", "dask_ml", "pandas", "joblib", "torch", "jax", "threadpoolctl")
if os.environ.get("FASTMLP_TESTS_WITHOUT_EXTRAS", "") not in ("", "0"):
    sys.modules.update(dict.fromkeys(OPTIONAL_PACKAGES))

import fastmlp
from fastmlp import _kernels, datasets, reference

DTYPES = (np.float32, np.float64)

# Elementwise kernels: a few units in the last place of float32, near-exact in float64.
TOLERANCE = {
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
    np.float64: {"rtol": 1e-12, "atol": 1e-14},
}

# Whole networks (several GEMMs and activations chained): rounding compounds layer by layer.
NETWORK_TOLERANCE = {
    np.float32: {"rtol": 1e-4, "atol": 1e-5},
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
}

# Every output activation each loss accepts (the same table as fastmlp._validation).
OUTPUT_LOSS_PAIRS = [
    ("identity", "quadratic"), ("sigmoid", "quadratic"), ("tanh", "quadratic"),
    ("relu", "quadratic"), ("softmax", "quadratic"),
    ("sigmoid", "cross_entropy"),
    ("softmax", "log_loss"),
    ("exp", "poisson"),
]
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def gemm_tolerance(dtype, k):
    """Tolerance for an m x k by k x n product of standard-normal matrices.

    The rounding error of a dot product of length k grows like sqrt(k) relative to the result,
    whose entries are themselves about sqrt(k) in size, hence rtol * sqrt(k) and atol ~ rtol * k.
    """
    rtol = TOLERANCE[dtype]["rtol"]
    k = max(k, 1)
    return {"rtol": rtol * np.sqrt(k), "atol": rtol * k}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=DTYPES, ids=lambda dtype: dtype.__name__)
def dtype(request):
    return request.param


@pytest.fixture(params=["compiled", "numpy"])
def backend(request):
    return request.param


@pytest.fixture
def kernels():
    return _kernels


@pytest.fixture
def threads():
    """Set fastmlp's thread count inside a test; the previous count comes back afterwards."""
    before = fastmlp.get_num_threads()
    yield fastmlp.set_num_threads
    fastmlp.set_num_threads(before)


def output_targets(rng, n_samples, n_outputs, output_activation, loss, dtype):
    """Targets Y that make sense for an output activation and loss (one-hot for softmax)."""
    if output_activation == "softmax" or loss == "log_loss":
        Y = np.zeros((n_samples, n_outputs), dtype)
        Y[np.arange(n_samples), rng.integers(0, n_outputs, n_samples)] = 1
        return Y
    if loss == "poisson":   # counts, zeros among them
        return rng.poisson(2.0, (n_samples, n_outputs)).astype(dtype)
    if output_activation in ("sigmoid", "relu") or loss == "cross_entropy":
        return rng.uniform(0, 1, (n_samples, n_outputs)).astype(dtype)
    if output_activation == "tanh":
        return rng.uniform(-1, 1, (n_samples, n_outputs)).astype(dtype)
    return rng.standard_normal((n_samples, n_outputs)).astype(dtype)


def random_output(rng, shape, activation, dtype):
    """A plausible output-layer activation matrix: σ applied to random pre-activations."""
    Z = 2 * rng.standard_normal(shape)
    return reference.ACTIVATION_FUNCTIONS[activation](Z).astype(dtype)


@pytest.fixture(scope="session")
def fashion_mnist():
    """Fashion-MNIST scaled to [0, 1] in float32: the full set when installed, else the small one."""
    X_train, y_train, X_test, y_test, source = datasets.load_fashion_mnist_or_small()
    scale = np.float32(1 / 255)
    return X_train * scale, y_train, X_test * scale, y_test, source
