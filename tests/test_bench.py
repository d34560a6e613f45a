"""The benchmark's plain-NumPy contender is a real, correct training loop (fastmlp.bench)."""
import numpy as np
import pytest

from fastmlp import bench, reference


@pytest.mark.parametrize("name", ["C1", "C3"])
def test_plain_numpy_full_batch_epoch_is_one_gradient_step(name):
    """With the whole set as one batch an epoch is one step, whatever the shuffle: it must equal the
    NumPy twin's step from the same weights (float64, so only rounding differs)."""
    rng = np.random.default_rng(0)
    config = bench.CONFIGS[name]
    config = bench.Config(config.name, (5, 4), config.activation, config.loss, config.learning_rate,
                          batch_size=37, momentum=config.momentum)
    X = rng.random((37, 784))
    y = rng.integers(0, 10, 37)
    plain = bench.PlainNumPy(config, X, y, "float64")
    twin = reference.Network([w.copy() for w in plain.weights], [b.copy() for b in plain.biases],
                             config.layer_activations, config.loss, 37, momentum=config.momentum)
    twin.bind(X, np.eye(10)[y], np.arange(37, dtype=np.int64))
    for _ in range(2):                       # the second step also uses the velocity
        plain.train_epoch()
        twin.train_batch(0, 37, config.learning_rate)
    for got, want in zip(plain.weights + plain.biases, twin.weights + twin.biases):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_plain_numpy_learns_the_small_fashion_mnist():
    from fastmlp import datasets
    X, y, X_test, y_test = datasets.load_small_fashion_mnist()
    plain = bench.PlainNumPy(bench.CONFIGS["C2"], (X / 255).astype(np.float32), y, "float32")
    for _ in range(3):
        assert plain.train_epoch() > 0
    assert plain.accuracy((X_test / 255).astype(np.float32), y_test) > 0.6
