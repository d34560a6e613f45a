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


def test_plain_numpy_accuracy_takes_saturated_sigmoids_quietly():
    """σ of a large negative z is 0 after exp(-z) overflows: no RuntimeWarning in the benchmark's output."""
    import warnings
    rng = np.random.default_rng(0)
    X = rng.random((20, 784)) * 1e4
    y = rng.integers(0, 10, 20)
    plain = bench.PlainNumPy(bench.CONFIGS["C1"], X, y, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0 <= plain.accuracy(-X, y) <= 1


@pytest.mark.parametrize("threads", [1, 2])
def test_fastmlp_contender_reports_its_share_of_team_batches(threads):
    """On more than one thread each epoch reports the share of its batches that ran as a team,
    counted by the team pool: the adaptive choice tries the team first, so the first epoch has
    some, and a share can never exceed every batch."""
    import fastmlp
    from fastmlp import datasets
    X, y = datasets.load_small_fashion_mnist()[:2]
    previous = fastmlp.get_num_threads()
    fastmlp.set_num_threads(threads)
    try:
        contender = bench.FastMLP("fastmlp", "compiled", bench.CONFIGS["C1"], (X[:1000] / 255).astype(np.float32),
                                  y[:1000], "float32")
        shares = []
        for _ in range(2):
            assert contender.train_epoch() > 0
            shares.append(contender.team_share)
    finally:
        fastmlp.set_num_threads(previous)
    if threads == 1:
        assert shares == [None, None]
    else:
        assert 0 < shares[0] <= 1 and 0 <= shares[1] <= 1
    twin = bench.FastMLP("numpy twin", "numpy", bench.CONFIGS["C1"], (X[:100] / 255).astype(np.float32),
                         y[:100], "float32")
    twin.train_epoch()
    assert twin.team_share is None


def test_result_rows_show_the_median_team_share_only_where_measured():
    rows = [{"config": "C1", "threads": 2, "contender": "fastmlp", "seconds": [0.1, 0.2, 0.3],
             "team_share": [0.5, 1.0, 0.75], "accuracy": 0.8},
            {"config": "C1", "threads": 2, "contender": "numpy twin", "seconds": [0.4], "team_share": [],
             "accuracy": 0.8}]
    fast, twin = bench.result_rows(rows)
    assert fast[3:] == ["0.200", "100%", "2.00", "n/a", "0.8000", "75%"]
    assert twin[-1] == "" and twin[5] == "1.00"
