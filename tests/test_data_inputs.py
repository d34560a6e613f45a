"""Integer inputs with an input scale, memory-mapped inputs, and shuffle="blocks".

A uint8 or uint16 X with ``input_scale`` must train exactly as the float array
``X.astype(dtype) * dtype(input_scale)`` does (bit for bit: the rows are converted and multiplied
in the training dtype, the same two operations NumPy does), and a memory-mapped X must train as
the same rows in memory, without being copied.
"""
import errno
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import fastmlp
from conftest import DTYPES
from fastmlp import _kernels, io, model as model_module, reference, trainer as trainer_module
from fastmlp.callbacks import Callback
from fastmlp._validation import check_array, check_inputs

PIXELS = (np.uint8, np.uint16)
SCALE = {np.uint8: 1 / 255, np.uint16: 1 / 4095}


def pixels(rng, pixel, n_samples=300, n_features=12):
    """Random integer rows (12-bit values for uint16) and three classes."""
    X = rng.integers(0, 256 if pixel is np.uint8 else 4096, (n_samples, n_features)).astype(pixel)
    return X, rng.integers(0, 3, n_samples)


def prescaled(X, dtype, input_scale):
    """The float array an integer X with input_scale stands for."""
    return X.astype(dtype) * dtype(input_scale)


def same_parameters(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.weights + a.biases, b.weights + b.biases))


@pytest.mark.parametrize("pixel", PIXELS, ids=lambda t: t.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
def test_gather_scaled_rows_matches_reference(rng, pixel, dtype):
    X, _ = pixels(rng, pixel)
    index = rng.integers(0, len(X), 37)
    out, expected = np.full((37, X.shape[1]), np.nan, dtype), np.empty((37, X.shape[1]), dtype)
    _kernels.gather_scaled_rows(X, index, SCALE[pixel], out)
    reference.gather_scaled_rows(X, index, SCALE[pixel], expected)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, prescaled(X, dtype, SCALE[pixel])[index])


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("pixel", PIXELS, ids=lambda t: t.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
def test_integer_inputs_train_as_the_prescaled_floats(rng, pixel, dtype, backend):
    X, y = pixels(rng, pixel)
    X_val, y_val = pixels(rng, pixel, 50)
    kept = X.copy()
    options = dict(hidden=(9,), epochs=3, batch_size=32, seed=3, dtype=dtype, backend=backend)
    scaled = fastmlp.fit(X, y, input_scale=SCALE[pixel], validation_data=(X_val, y_val), **options)
    floats = fastmlp.fit(prescaled(X, dtype, SCALE[pixel]), y,
                         validation_data=(prescaled(X_val, dtype, SCALE[pixel]), y_val), **options)
    assert same_parameters(scaled, floats)
    assert scaled.history["val_loss"] == floats.history["val_loss"]
    assert scaled.input_scale == SCALE[pixel] and floats.input_scale is None
    np.testing.assert_array_equal(X, kept)   # the caller's array is never modified


@pytest.mark.parametrize("options", [
    dict(optimizer="adam", learning_rate=0.01, dropout=0.2),
    dict(momentum=0.9, learning_rate=0.5, l2=1e-3, shuffle="blocks"),
    dict(optimizer="lbfgs", epochs=5),
], ids=["adam-dropout", "momentum-blocks", "lbfgs"])
def test_integer_inputs_with_other_optimizers_and_weights(rng, options):
    if options.get("optimizer") == "lbfgs":
        pytest.importorskip("scipy")
    X, y = pixels(rng, np.uint8, 500, 40)
    sample_weight = rng.random(len(X))
    options = dict(dict(hidden=(200,), epochs=2, batch_size=50, seed=1, sample_weight=sample_weight), **options)
    scaled = fastmlp.fit(X, y, input_scale=1 / 255, **options)
    floats = fastmlp.fit(prescaled(X, np.float32, 1 / 255), y, **options)
    assert same_parameters(scaled, floats)


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_divergence_is_caught_as_with_the_prescaled_floats(rng, backend):
    X = rng.integers(0, 256, (200, 5)).astype(np.uint8)
    y = X.sum(axis=1).astype(float)
    options = dict(hidden=(8,), activation="relu", learning_rate=50.0, epochs=20, seed=0, on_divergence="stop",
                   backend=backend)
    with pytest.warns(RuntimeWarning, match="diverged"):
        scaled = fastmlp.fit(X, y, input_scale=2.0, **options)
    with pytest.warns(RuntimeWarning, match="diverged"):
        floats = fastmlp.fit(prescaled(X, np.float32, 2.0), y, **options)
    assert scaled.history["diverged"] == floats.history["diverged"]
    assert same_parameters(scaled, floats)


def test_a_scaled_model_predicts_as_the_float_model(rng):
    X, y = pixels(rng, np.uint8)
    scaled = fastmlp.fit(X, y, input_scale=1 / 255, hidden=(9,), epochs=2, seed=0)
    floats = fastmlp.fit(prescaled(X, np.float32, 1 / 255), y, hidden=(9,), epochs=2, seed=0)
    X_float = prescaled(X, np.float32, 1 / 255)
    np.testing.assert_array_equal(scaled.output(X), floats.output(X_float))
    np.testing.assert_array_equal(scaled.output(X, backend="numpy"), floats.output(X_float, backend="numpy"))
    np.testing.assert_array_equal(scaled.predict(X), floats.predict(X_float))
    np.testing.assert_array_equal(scaled.predict_proba(X), floats.predict_proba(X_float))
    assert scaled.score(X, y) == floats.score(X_float, y)
    np.testing.assert_array_equal(scaled.forward(X)[-1], floats.forward(X_float)[-1])
    for mine, theirs in zip(scaled.backprop(X, y), floats.backprop(X_float, y)):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a, b)
    # the scale belongs to the model: the same values as floats give the same outputs
    np.testing.assert_array_equal(scaled.output(X.astype(np.float32)), scaled.output(X))


def test_integer_outputs_are_converted_in_blocks(rng, monkeypatch):
    X, y = pixels(rng, np.uint8, 100)
    model = fastmlp.fit(X, y, input_scale=1 / 255, hidden=(9,), epochs=1, seed=0)
    whole = model.output(X)
    monkeypatch.setattr(model_module, "CONVERT_BYTES", 7 * X.shape[1] * 4)   # blocks of 7 rows
    np.testing.assert_array_equal(model.output(X), whole)


def test_uint8_without_scale_is_taken_as_it_is(rng):
    X, y = pixels(rng, np.uint8)
    a = fastmlp.fit(X, y, hidden=(5,), epochs=1, seed=0, learning_rate=0.01)
    b = fastmlp.fit(X.astype(np.float32), y, hidden=(5,), epochs=1, seed=0, learning_rate=0.01)
    assert same_parameters(a, b) and a.input_scale is None


def test_warm_start_keeps_the_scale(rng):
    X, y = pixels(rng, np.uint8)
    first = fastmlp.fit(X, y, input_scale=1 / 255, hidden=(5,), epochs=1, seed=0)
    again = fastmlp.fit(X, y, warm_start=first, epochs=1, seed=1)
    assert again.input_scale == 1 / 255
    floats = fastmlp.fit(prescaled(X, np.float32, 1 / 255), y, hidden=(5,), epochs=1, seed=0)
    assert same_parameters(again, fastmlp.fit(prescaled(X, np.float32, 1 / 255), y, warm_start=floats, epochs=1,
                                                 seed=1))
    with pytest.raises(ValueError, match="input_scale=0.5 differs"):
        fastmlp.fit(X, y, warm_start=first, input_scale=0.5)


def test_save_and_load_keep_the_scale(rng, tmp_path):
    X, y = pixels(rng, np.uint8)
    model = fastmlp.fit(X, y, input_scale=1 / 255, hidden=(5,), epochs=1, seed=0)
    fastmlp.save(model, tmp_path / "scaled.npz")
    loaded = fastmlp.load(tmp_path / "scaled.npz")
    assert loaded.input_scale == 1 / 255
    np.testing.assert_array_equal(loaded.output(X), model.output(X))


def test_files_without_a_scale_still_load(rng, tmp_path):
    X, y = pixels(rng, np.uint8)
    model = fastmlp.fit(X.astype(np.float32), y, hidden=(5,), epochs=1, seed=0)
    fastmlp.save(model, tmp_path / "model.npz")
    arrays = io.read_npz(tmp_path / "model.npz")
    metadata = json.loads(str(arrays.pop("metadata")))
    del metadata["input_scale"]   # as files written before the key existed
    metadata["sha256"] = io._digest(arrays, metadata)
    np.savez(tmp_path / "older.npz", metadata=np.array(json.dumps(metadata)), **arrays)
    loaded = fastmlp.load(tmp_path / "older.npz")
    assert loaded.input_scale is None
    np.testing.assert_array_equal(loaded.output(X), model.output(X))


def test_onnx_export_multiplies_by_the_scale(rng):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    X, y = pixels(rng, np.uint8)
    model = fastmlp.fit(X, y, input_scale=1 / 255, hidden=(5,), epochs=1, seed=0)
    session = onnxruntime.InferenceSession(fastmlp.to_onnx(model).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"X": X.astype(np.float32)})
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Memory-mapped and read-only inputs
# ---------------------------------------------------------------------------------------------

def memmap(tmp_path, array):
    path = tmp_path / f"X-{array.dtype}.bin"
    array.tofile(path)
    return np.memmap(path, array.dtype, "r", shape=array.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=lambda t: t.__name__)
def test_checking_a_memmap_or_read_only_array_copies_nothing(rng, tmp_path, dtype):
    X = rng.integers(0, 256, (50, 8)).astype(dtype)
    mapped = memmap(tmp_path, X)
    read_only = X.copy()
    read_only.flags.writeable = False
    for array in (mapped, read_only):
        checked = check_inputs(array, np.float32)
        assert np.shares_memory(checked, array)
        if dtype == np.float32:
            assert np.shares_memory(check_array(array, np.float32), array)


class RecordingNetwork(_kernels.Network):
    """The compiled network, remembering the X it was bound to."""
    bound = []

    def bind(self, X, *args):
        RecordingNetwork.bound.append(X)
        return super().bind(X, *args)


@pytest.mark.parametrize("shuffle", [True, "blocks"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=lambda t: t.__name__)
def test_a_memmap_trains_as_the_rows_in_memory_without_a_copy(rng, tmp_path, monkeypatch, dtype, shuffle):
    X = rng.integers(0, 256, (400, 16)).astype(dtype)
    y = rng.integers(0, 2, len(X))
    mapped = memmap(tmp_path, X)
    input_scale = 1 / 255 if dtype == np.uint8 else None
    options = dict(hidden=(6,), epochs=2, batch_size=20, seed=5, input_scale=input_scale, shuffle=shuffle,
                   learning_rate=0.01 if dtype == np.float32 else 3.0)
    monkeypatch.setitem(model_module.BACKENDS, "compiled", RecordingNetwork)
    RecordingNetwork.bound.clear()
    from_disk = fastmlp.fit(mapped, y, **options)
    assert np.shares_memory(RecordingNetwork.bound[0], mapped)
    assert same_parameters(from_disk, fastmlp.fit(X, y, **options))


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("shuffle", [True, False, "blocks", "blocks-page-cache"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=lambda t: t.__name__)
def test_validation_fraction_trains_on_a_memmap_in_place(rng, tmp_path, monkeypatch, dtype, shuffle, backend):
    """The training rows of a split are read where they lie (only the held-out ones are copied), and
    the model is the one trained on copies of them with the held-out rows as validation_data. Blocks
    of 60 kept rows (3 batches), read directly where the file system allows or through the page
    cache, hold held-out rows between them; the last is short, so later batches straddle two."""
    from fastmlp._split import split_rows

    monkeypatch.setattr(trainer_module, "BLOCK_BYTES", 60 * 16 * np.dtype(dtype).itemsize)
    if shuffle == "blocks-page-cache":
        monkeypatch.setattr(trainer_module.DirectReader, "open", lambda *args: None)
    shuffle = "blocks" if shuffle == "blocks-page-cache" else shuffle

    X = rng.integers(0, 256, (400, 16)).astype(dtype)
    y = rng.integers(0, 3, len(X))
    weights = rng.uniform(0.5, 2, len(X)).astype(np.float32)   # the training dtype's values, as fit keeps them
    mapped = memmap(tmp_path, X)
    options = dict(hidden=(6,), epochs=3, batch_size=20, seed=5, shuffle=shuffle, sample_weight=weights,
                   input_scale=1 / 255 if dtype == np.uint8 else None, backend=backend,
                   learning_rate=0.01 if dtype == np.float32 else 3.0)
    monkeypatch.setitem(model_module.BACKENDS, "compiled", RecordingNetwork)
    RecordingNetwork.bound.clear()
    split = fastmlp.fit(mapped, y, validation_fraction=0.2, **options)
    if backend == "compiled":
        assert np.shares_memory(RecordingNetwork.bound[0], mapped)
    keep, held = split_rows(len(X), 0.2, np.random.default_rng(5), y)
    options["sample_weight"] = weights[keep]
    copies = fastmlp.fit(X[keep], y[keep], validation_data=(X[held], y[held], weights[held]), **options)
    assert same_parameters(split, copies)
    assert split.history["val_loss"] == copies.history["val_loss"]
    assert split.history["loss"] == copies.history["loss"]


@pytest.mark.parametrize("shuffle", [True, "blocks"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=lambda t: t.__name__)
def test_fit_rows_trains_on_a_memmap_in_place(rng, tmp_path, monkeypatch, dtype, shuffle):
    """fit_rows (the estimators' early-stopping split) reads the rows it is given where they lie,
    and trains the model that fit trains on copies of them."""
    from fastmlp.training import fit_rows

    monkeypatch.setattr(trainer_module, "BLOCK_BYTES", 60 * 16 * np.dtype(dtype).itemsize)
    X = rng.integers(0, 256, (400, 16)).astype(dtype)
    y = rng.integers(0, 3, len(X))
    weights = rng.uniform(0.5, 2, len(X)).astype(np.float32)
    keep = np.sort(rng.choice(len(X), 330, replace=False))
    held = np.setdiff1d(np.arange(len(X)), keep)
    options = dict(hidden=(6,), epochs=3, batch_size=20, seed=5, shuffle=shuffle,
                   input_scale=1 / 255 if dtype == np.uint8 else None,
                   learning_rate=0.01 if dtype == np.float32 else 3.0,
                   validation_data=(X[held], y[held], weights[held]))
    mapped = memmap(tmp_path, X)
    monkeypatch.setitem(model_module.BACKENDS, "compiled", RecordingNetwork)
    RecordingNetwork.bound.clear()
    kept = fit_rows(mapped, y, keep, sample_weight=weights, **options)
    assert np.shares_memory(RecordingNetwork.bound[0], mapped)
    copies = fastmlp.fit(X[keep], y[keep], sample_weight=weights[keep], **options)
    assert same_parameters(kept, copies)
    assert kept.history["loss"] == copies.history["loss"]
    assert kept.history["val_loss"] == copies.history["val_loss"]


@pytest.mark.parametrize("kind", ["sparse", "lbfgs"])
def test_fit_rows_copies_a_sparse_x_or_for_lbfgs(rng, kind):
    from fastmlp.training import fit_rows

    X = rng.standard_normal((120, 9))
    sparse = pytest.importorskip("scipy.sparse")   # L-BFGS needs SciPy too
    if kind == "sparse":
        X[X < 0.5] = 0
        X = sparse.csr_matrix(X)
    y = rng.integers(0, 2, X.shape[0])
    keep = np.arange(0, X.shape[0], 3)
    options = dict(hidden=(5,), epochs=3, batch_size=10, seed=1, dtype="float64",
                   optimizer="lbfgs" if kind == "lbfgs" else "sgd")
    assert same_parameters(fit_rows(X, y, keep, **options), fastmlp.fit(X[keep], y[keep], **options))


@pytest.mark.parametrize("rows, message", [
    ([3, 1], "sorted, distinct"), ([1, 1], "sorted, distinct"), ([], "at least one"), ([-1, 2], "indices"),
    ([5, 40], "indices"), ([[1, 2]], "indices")])
def test_fit_rows_refuses_rows_that_are_not_rows_of_x(rng, rows, message):
    from fastmlp.training import fit_rows

    X, y = rng.standard_normal((40, 3)), np.arange(40) % 2
    with pytest.raises(ValueError, match=message):
        fit_rows(X, y, np.array(rows, np.int64), hidden=(2,), epochs=1)
    with pytest.raises(ValueError, match="rows or validation_fraction"):
        fit_rows(X, y, [0, 1, 2], hidden=(2,), epochs=1, validation_fraction=0.2)
    weights = np.ones(40)
    weights[:10] = 0
    with pytest.raises(ValueError, match="positive sum"):
        fit_rows(X, y, np.arange(10), hidden=(2,), epochs=1, sample_weight=weights)


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_early_stopping_estimators_train_on_a_memmap_in_place(rng, tmp_path, monkeypatch, estimator):
    pytest.importorskip("sklearn")
    X = rng.standard_normal((300, 8))
    y = rng.integers(0, 3, len(X)) if estimator == "MLPClassifier" else X[:, 0] - X[:, 1]
    mapped = memmap(tmp_path, X)
    monkeypatch.setitem(model_module.BACKENDS, "compiled", RecordingNetwork)
    RecordingNetwork.bound.clear()
    options = dict(hidden_layer_sizes=(5,), early_stopping=True, max_iter=3, random_state=0)
    with pytest.warns(Warning):   # not converged in 3 epochs
        from_disk = getattr(fastmlp, estimator)(**options).fit(mapped, y)
    assert np.shares_memory(RecordingNetwork.bound[0], mapped)
    with pytest.warns(Warning):
        in_memory = getattr(fastmlp, estimator)(**options).fit(X, y)
    for a, b in zip(from_disk.coefs_ + from_disk.intercepts_, in_memory.coefs_ + in_memory.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert from_disk.validation_scores_ == in_memory.validation_scores_


class InlineExecutor:
    """An executor that runs what it is given at once, on the calling thread."""

    def __init__(self, *args, **kwargs):
        pass

    def submit(self, function, *args):
        function(*args)

    def shutdown(self, **kwargs):
        pass


def test_blocks_of_a_memmap_are_read_ahead(rng, tmp_path, monkeypatch):
    X = rng.integers(0, 256, (1000, 10)).astype(np.uint8)
    mapped = memmap(tmp_path, X)
    monkeypatch.setattr(trainer_module, "BLOCK_BYTES", 100 * 10)   # blocks of 100 rows
    monkeypatch.setattr(trainer_module.DirectReader, "open", lambda *args: None)   # through the page cache
    requested = []
    monkeypatch.setattr(_kernels, "will_need", lambda X, start, stop: requested.append((start, stop)))
    monkeypatch.setattr(trainer_module, "ThreadPoolExecutor", InlineExecutor)
    fastmlp.fit(mapped, rng.integers(0, 2, 1000), hidden=(4,), epochs=2, batch_size=50, shuffle="blocks",
                input_scale=1 / 255, seed=0)
    assert len(requested) == 20 and sorted(requested[:10]) == [(k, k + 100) for k in range(0, 1000, 100)]
    requested.clear()
    fastmlp.fit(X, rng.integers(0, 2, 1000), hidden=(4,), epochs=1, batch_size=50, shuffle="blocks", seed=0)
    assert requested == []   # only a mapped file is read ahead


def test_will_need_is_a_harmless_hint(rng, tmp_path):
    X = rng.integers(0, 256, (300, 7)).astype(np.uint8)
    mapped = memmap(tmp_path, X)
    for array in (mapped, X):
        _kernels.will_need(array, 5, 200)
        _kernels.will_need(array, 250, 10**9)   # clipped to the rows there are
    np.testing.assert_array_equal(mapped, X)


def reads_directly(directory):
    """Whether direct I/O (O_DIRECT) reads the files of ``directory`` (not on tmpfs, for one)."""
    np.zeros(8192, np.uint8).tofile(directory / "probe.bin")
    probe = np.memmap(directory / "probe.bin", np.uint8, "r", shape=(2, 4096))
    return trainer_module.DirectReader.open(probe, 1, 1) is not None


@pytest.fixture
def direct_path(tmp_path):
    """A directory whose files direct I/O reads: tmp_path, else one in /var/tmp, else a skip."""
    if reads_directly(tmp_path):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/var/tmp") as directory:
        if not reads_directly(Path(directory)):
            pytest.skip("no file system here reads files with O_DIRECT")
        yield Path(directory)


def record_direct_reads(monkeypatch):
    """The (first, stop) rows of every direct read from now on (a list that fills)."""
    reads, read = [], trainer_module.DirectReader.read

    def recording(self, first, stop, buffer):
        reads.append((first, stop))
        return read(self, first, stop, buffer)
    monkeypatch.setattr(trainer_module.DirectReader, "read", recording)
    return reads


def mapped_rows(directory, X, layout):
    """X as the rows of a file on disk: after a header of 1000 bytes ("file"), from row 3 on of a
    longer mapped array ("view"), or written through a ``w+`` memmap and not flushed ("written")."""
    path = directory / "X.u8"
    if layout == "written":
        mapped = np.memmap(path, X.dtype, "w+", shape=X.shape)
        mapped[:] = X
        return mapped
    rows = np.concatenate([X[:3], X]) if layout == "view" else X
    with open(path, "wb") as file:
        file.write(bytes(range(250)) * 4)
        rows.tofile(file)
    mapped = np.memmap(path, X.dtype, "r", offset=1000, shape=rows.shape)
    return mapped[3:] if layout == "view" else mapped


# 457 rows in blocks of 100: the short block (57 rows) leaves every later mini-batch of 20
# straddling two blocks, and the file's last page is partial.
BLOCKS = dict(hidden=(6,), epochs=3, batch_size=20, seed=4, input_scale=1 / 255, shuffle="blocks")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "zero-weights"])
@pytest.mark.parametrize("layout", ["file", "view", "written"])
def test_direct_reads_train_as_the_rows_in_memory(rng, direct_path, monkeypatch, layout, weighted):
    X = rng.integers(0, 256, (457, 10)).astype(np.uint8)
    y = rng.integers(0, 3, len(X))
    sample_weight = None
    if weighted:   # a mini-batch with all weights zero is skipped
        sample_weight = rng.random(len(X))
        sample_weight[100:160] = 0
    monkeypatch.setattr(trainer_module, "BLOCK_BYTES", 100 * 10)   # blocks of 100 rows
    reads = record_direct_reads(monkeypatch)
    mapped = mapped_rows(direct_path, X, layout)
    from_disk = fastmlp.fit(mapped, y, sample_weight=sample_weight, **BLOCKS)
    in_memory = fastmlp.fit(X, y, sample_weight=sample_weight, **BLOCKS)
    assert same_parameters(from_disk, in_memory)
    assert from_disk.history["loss"] == in_memory.history["loss"]
    blocks = [(first, min(first + 100, len(X))) for first in range(0, len(X), 100)]
    assert reads[0] == (0, 1) and sorted(reads[1:]) == sorted(blocks * BLOCKS["epochs"])


@pytest.mark.parametrize("refused", ["open", "read"])
def test_without_direct_io_a_memmap_is_read_through_the_page_cache(rng, direct_path, monkeypatch, refused):
    X = rng.integers(0, 256, (457, 10)).astype(np.uint8)
    y = rng.integers(0, 3, len(X))
    monkeypatch.setattr(trainer_module, "BLOCK_BYTES", 100 * 10)
    mapped = mapped_rows(direct_path, X, "file")
    if refused == "open":   # as on tmpfs before Linux 6.6
        os_open = os.open

        def refusing(path, flags, *args, **kwargs):
            if flags & os.O_DIRECT:
                raise OSError(errno.EINVAL, "Invalid argument")
            return os_open(path, flags, *args, **kwargs)
        monkeypatch.setattr(os, "open", refusing)
    else:
        def refusing(*args):
            raise OSError(errno.EINVAL, "Invalid argument")
        monkeypatch.setattr(os, "preadv", refusing)
    reads_ahead = []
    monkeypatch.setattr(trainer_module, "_read_block", lambda X, start, stop: reads_ahead.append(start))
    monkeypatch.setattr(trainer_module, "ThreadPoolExecutor", InlineExecutor)
    assert same_parameters(fastmlp.fit(mapped, y, **BLOCKS), fastmlp.fit(X, y, **BLOCKS))
    assert len(reads_ahead) == 5 * BLOCKS["epochs"]


class InterruptAt(Callback):
    """Ctrl-C after the mini-batch that ends with sample ``samples`` of epoch ``epoch``; records
    every (epoch, samples done) it is called with."""

    def __init__(self, epoch, samples):
        self.epoch, self.samples, self.calls = epoch, samples, []

    def on_batch_end(self, epoch, samples_done):
        self.calls.append((epoch, samples_done))
        if (epoch, samples_done) == (self.epoch, self.samples):
            raise KeyboardInterrupt


def descriptors_of(path):
    """How many of this process's file descriptors are open on ``path`` (Linux)."""
    links = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            links.append(os.readlink(fd))
        except OSError:   # the descriptor of the listing itself, closed by now
            pass
    return links.count(str(path))


def test_interrupting_direct_reads_keeps_the_last_completed_epoch(rng, direct_path, monkeypatch):
    X = rng.integers(0, 256, (457, 10)).astype(np.uint8)
    y = rng.integers(0, 3, len(X))
    monkeypatch.setattr(trainer_module, "BLOCK_BYTES", 100 * 10)
    reads = record_direct_reads(monkeypatch)
    mapped = mapped_rows(direct_path, X, "file")
    opened = descriptors_of(mapped.filename)
    assert opened == 1   # the memmap's own
    interrupt = InterruptAt(2, 240)
    model = fastmlp.fit(mapped, y, callbacks=[interrupt], **dict(BLOCKS, epochs=5))
    assert descriptors_of(mapped.filename) == opened   # the file read directly is closed
    assert len(reads) > 1 and model.history["interrupted"] == 2 and len(model.history["loss"]) == 1
    assert same_parameters(model, fastmlp.fit(X, y, **dict(BLOCKS, epochs=1)))
    in_memory = InterruptAt(2, 240)
    fastmlp.fit(X, y, callbacks=[in_memory], **dict(BLOCKS, epochs=5))
    assert interrupt.calls == in_memory.calls   # the same mini-batches, counted alike


# ---------------------------------------------------------------------------------------------
# shuffle="blocks"
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_samples, block_rows", [(1, 1), (10, 3), (100, 10), (101, 25)])
def test_block_order_is_a_permutation_of_contiguous_blocks(n_samples, block_rows):
    blocks, order = trainer_module.block_order(n_samples, block_rows, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(order), np.arange(n_samples))
    assert sorted(blocks.tolist()) == list(range(-(-n_samples // block_rows)))
    position = 0
    for block in blocks:   # each block's rows come together, in the blocks' order
        rows = np.arange(block * block_rows, min((block + 1) * block_rows, n_samples))
        np.testing.assert_array_equal(np.sort(order[position:position + len(rows)]), rows)
        position += len(rows)


def test_block_order_depends_only_on_the_seed():
    first = trainer_module.block_order(1000, 30, np.random.default_rng(7))[1]
    np.testing.assert_array_equal(first, trainer_module.block_order(1000, 30, np.random.default_rng(7))[1])
    assert not np.array_equal(first, trainer_module.block_order(1000, 30, np.random.default_rng(8))[1])


def test_blocks_are_a_whole_number_of_batches(rng):
    X = np.zeros((10, 784), np.uint8)
    assert trainer_module.BlockShuffle(X, 100).block_rows == 5300   # 4 MiB / 784 B = 5350 rows
    assert trainer_module.BlockShuffle(X, 10**6).block_rows == 10**6
    assert trainer_module.BlockShuffle(np.zeros((10, 1), np.float64), 7).block_rows % 7 == 0


def test_shuffle_blocks_trains_and_is_reproducible(rng):
    X, y = pixels(rng, np.uint8, 600)
    X[:, 0] = y * 80   # a learnable feature
    options = dict(hidden=(8,), epochs=6, batch_size=20, seed=2, shuffle="blocks", input_scale=1 / 255)
    model = fastmlp.fit(X, y, **options)
    assert model.history["loss"][-1] < model.history["loss"][0]
    assert same_parameters(model, fastmlp.fit(X, y, **options))
    assert not same_parameters(model, fastmlp.fit(X, y, **dict(options, seed=3)))


# ---------------------------------------------------------------------------------------------
# Validation errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("X_dtype", [np.float32, np.float64, np.int8, np.int64, np.uint32, bool],
                         ids=lambda t: np.dtype(t).name)
def test_input_scale_needs_uint8_or_uint16(rng, X_dtype):
    X = rng.integers(0, 2, (20, 3)).astype(X_dtype)
    with pytest.raises(TypeError, match="input_scale is for uint8 or uint16 X"):
        fastmlp.fit(X, rng.integers(0, 2, 20), input_scale=0.5)
    fastmlp.fit(X, rng.integers(0, 2, 20), epochs=1)   # without a scale, converted up front as ever


@pytest.mark.parametrize("input_scale, error", [(0, ValueError), (-1 / 255, ValueError), (np.nan, ValueError),
                                                (np.inf, ValueError), (1e-60, ValueError), (1e36, ValueError),
                                                ("1/255", TypeError), (True, TypeError)])
def test_bad_input_scales(rng, input_scale, error):
    with pytest.raises(error, match="input_scale"):
        fastmlp.fit(rng.integers(0, 256, (20, 3)).astype(np.uint16), rng.integers(0, 2, 20),
                    input_scale=input_scale)


@pytest.mark.parametrize("shuffle", ["rows", "block", "True"])
def test_bad_shuffle(rng, shuffle):
    with pytest.raises(ValueError, match="shuffle must be one of"):
        fastmlp.fit(rng.random((20, 3)), rng.integers(0, 2, 20), shuffle=shuffle)


def test_integer_X_of_the_wrong_shape(rng):
    with pytest.raises(ValueError, match="X must be 2-D"):
        fastmlp.fit(np.zeros(20, np.uint8), rng.integers(0, 2, 20), input_scale=1.0)
    model = fastmlp.fit(np.zeros((20, 3), np.uint8), rng.integers(0, 2, 20), input_scale=1.0, epochs=1)
    with pytest.raises(ValueError, match="X has 4 features, but the model expects 3"):
        model.predict(np.zeros((5, 4), np.uint8))
