"""Saving and loading: identical predictions after a round trip; damaged files are rejected."""
import json
import os

import numpy as np
import pytest

import fastmlp
from fastmlp.io import load, save


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 60)]
    return fastmlp.fit(X, y, hidden=(7,), epochs=3, batch_size=16, learning_rate=0.5, seed=0), X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_gives_identical_predictions(tmp_path, dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    model = fastmlp.fit(X, X @ [1.0, -2.0, 0.5], hidden=(4, 4), activation="tanh", learning_rate=0.05,
                        epochs=2, seed=0, dtype=dtype)
    save(model, tmp_path / "model.npz")
    loaded = load(tmp_path / "model.npz")
    assert loaded.dtype == model.dtype and loaded.layer_activations == model.layer_activations
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.history == model.history


def test_classifier_labels_survive(tmp_path, classifier):
    model, X = classifier
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert list(loaded.classes_) == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_truncated_file_is_rejected(tmp_path, classifier):
    save(classifier[0], tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable fastmlp model"):
        load(tmp_path / "cut.npz")


def test_tampered_weights_are_rejected(tmp_path, classifier):
    model = classifier[0]
    save(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as archive:
        arrays = dict(archive)
    arrays["weights_0"] = arrays["weights_0"] + 1
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="modified or damaged"):
        load(tmp_path / "bad.npz")


def test_tampered_metadata_is_rejected(tmp_path, classifier):
    save(classifier[0], tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as archive:
        arrays = dict(archive)
    metadata = json.loads(str(arrays["metadata"]))
    metadata["layer_activations"][0] = "os.system"
    arrays["metadata"] = np.array(json.dumps(metadata))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="modified or damaged"):
        load(tmp_path / "bad.npz")


def test_other_files_are_rejected(tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.arange(3))
    with pytest.raises(ValueError, match="not a fastmlp model"):
        load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError):
        load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_failed_save_leaves_previous_file_and_no_temporary(tmp_path, classifier, monkeypatch):
    model = classifier[0]
    save(model, tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save(model, tmp_path / "m.npz")
    assert (tmp_path / "m.npz").read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("optimizer, momentum", [("adam", 0.0), ("sgd", 0.9)])
def test_training_continues_after_a_round_trip_with_its_optimizer_state(tmp_path, optimizer, momentum):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    options = dict(hidden=(6,), optimizer=optimizer, momentum=momentum, learning_rate=0.05, batch_size=10,
                   seed=0, shuffle=False)
    whole = fastmlp.fit(X, y, epochs=4, **options)
    save(fastmlp.fit(X, y, epochs=2, **options), tmp_path / "half.npz")
    resumed = fastmlp.fit(X, y, epochs=2, warm_start=load(tmp_path / "half.npz"), **options)
    for mine, theirs in zip(resumed.weights, whole.weights):
        np.testing.assert_array_equal(mine, theirs)


def test_multilabel_and_no_bias_models_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    Y = (X[:, :2] > 0).astype(int)
    model = fastmlp.fit(X, Y, hidden=(5,), use_bias=False, l1=1e-3, epochs=3, seed=0)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert (loaded.task, loaded.use_bias, loaded.l1) == ("multilabel", False, 1e-3)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_model_with_read_only_weights_predicts(classifier):
    model, X = classifier
    frozen = fastmlp.MLP([w.copy() for w in model.weights], [b.copy() for b in model.biases],
                         model.layer_activations, model.loss, model.classes_)
    for array in frozen.weights + frozen.biases:
        array.flags.writeable = False
    np.testing.assert_array_equal(frozen.predict_proba(X), model.predict_proba(X))
