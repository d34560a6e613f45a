"""Pictures: each plot writes a valid, non-blank PNG; confusion_matrix counts pairs (NumPy only).

The plotting tests skip when matplotlib (the ``plot`` extra) is not installed.
"""
import sys

import numpy as np
import pytest

import fastmlp
from fastmlp import datasets, plots


@pytest.fixture
def imread():
    return pytest.importorskip("matplotlib.image").imread


def assert_png(imread, path, min_size=100):
    """A readable PNG of at least min_size pixels each way whose pixels are not all the same."""
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= min_size and image.shape[1] >= min_size
    assert image[..., :3].var() > 0


@pytest.fixture(scope="module")
def small_model():
    """The seed network after 2 epochs on 1,000 images of the shipped subset, with its test data."""
    X_train, y_train, X_test, y_test = datasets.load_small_fashion_mnist()
    X_train, X_test = X_train[:1000] / 255, X_test / 255
    model = fastmlp.fit(X_train, y_train[:1000], epochs=2, seed=0, validation_data=(X_test, y_test))
    return model, X_test, y_test


# ---------------------------------------------------------------------------------------------
# confusion_matrix: NumPy only
# ---------------------------------------------------------------------------------------------

def test_confusion_matrix_counts_pairs():
    counts = plots.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2])
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert counts.dtype == np.int64 and counts.sum() == 6


def test_confusion_matrix_follows_the_order_of_labels():
    counts = plots.confusion_matrix(["cat", "dog", "dog"], ["dog", "dog", "cat"], labels=["dog", "cat", "bird"])
    # rows/columns: dog, cat, bird;  (cat→dog), (dog→dog), (dog→cat)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_confusion_matrix_rows_sum_to_class_counts(rng):
    y_true, y_pred = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    counts = plots.confusion_matrix(y_true, y_pred, range(10))
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(y_true, minlength=10))
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(y_pred, minlength=10))
    assert np.trace(counts) == np.sum(y_true == y_pred)


@pytest.mark.parametrize("y_true, y_pred, labels, message", [
    ([0, 1], [0], None, "different lengths: 2 and 1"),
    ([0, 3], [0, 1], [0, 1], "y_true holds labels not in labels: [3]"),
    ([0, 1], [0, 7], [0, 1], "y_pred holds labels not in labels: [7]"),
])
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, labels, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plots.confusion_matrix(y_true, y_pred, labels)


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------

def test_plot_history_of_a_fitted_model(imread, small_model, tmp_path):
    model = small_model[0]
    path = plots.plot_history(model.history, tmp_path / "history.png")
    assert path == str(tmp_path / "history.png")
    assert_png(imread, path)
    assert_png(imread, plots.plot_history(model, tmp_path / "from_model.png"))   # the MLP itself


def test_plot_history_without_validation(imread, tmp_path):
    assert_png(imread, plots.plot_history({"loss": [0.5, 0.3, 0.2]}, tmp_path / "loss.png"))


def test_plot_history_of_regression(imread, tmp_path):
    history = {"loss": [0.5, 0.3], "val_loss": [0.6, 0.4], "val_r2": [0.1, 0.5]}
    assert_png(imread, plots.plot_history(history, tmp_path / "r2.png"))


def test_plot_confusion_matrix(imread, small_model, tmp_path):
    model, X_test, y_test = small_model
    path = plots.plot_confusion_matrix(y_test, model.predict(X_test), range(10), tmp_path / "confusion.png",
                                       class_names=datasets.CLASS_NAMES)
    assert_png(imread, path)


def test_plot_first_layer(imread, small_model, tmp_path):
    model = small_model[0]
    path = plots.plot_first_layer(model.weights[0], tmp_path / "first_layer.png")
    assert_png(imread, path)
    image = imread(path)[..., :3]
    assert (np.abs(image[..., 0] - image[..., 2]) > 0.3).any()   # coloured: red and blue weights


@pytest.mark.parametrize("n", [1, 5, 16, 100])
def test_plot_first_layer_any_number_of_neurons(imread, rng, tmp_path, n):
    weights = rng.standard_normal((12, 7))
    assert_png(imread, plots.plot_first_layer(weights, tmp_path / "w.png", image_shape=(3, 4), n=n))


def test_plot_misclassified(imread, small_model, tmp_path):
    model, X_test, y_test = small_model
    path = plots.plot_misclassified(X_test, y_test, model.predict(X_test), tmp_path / "wrong.png",
                                    class_names=datasets.CLASS_NAMES, n=9)
    assert_png(imread, path)


def test_plot_misclassified_when_nothing_is_wrong(imread, rng, tmp_path):
    X, y = rng.uniform(size=(4, 784)), np.arange(4)
    assert_png(imread, plots.plot_misclassified(X, y, y, tmp_path / "none.png"))


@pytest.mark.parametrize("call, message", [
    (lambda p: plots.plot_history({}, p), "non-empty 'loss'"),
    (lambda p: plots.plot_first_layer(np.zeros((10, 3)), p), r"weights must have shape \(n_pixels, n_hidden\)"),
    (lambda p: plots.plot_first_layer(np.zeros((784, 3)), p, n=0), "n must be an integer >= 1, got 0"),
    (lambda p: plots.plot_misclassified(np.zeros((2, 784)), [0, 1], [0], p), "different lengths"),
    (lambda p: plots.plot_misclassified(np.zeros((2, 10)), [0, 1], [0, 1], p), r"X must have shape"),
])
def test_bad_input_names_the_argument(imread, tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "bad.png")


def test_missing_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # makes `import matplotlib` raise ImportError
    with pytest.raises(ImportError, match=r"pip install fastmlp\[plot\]"):
        plots.plot_history({"loss": [1.0]}, tmp_path / "never.png")
    assert not (tmp_path / "never.png").exists()
