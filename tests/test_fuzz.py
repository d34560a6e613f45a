"""Hostile input, fuzzed: every public entry point ends in a correct result or a clear exception.

Property-based tests (hypothesis) over ``fastmlp.fit``, ``MLP.predict``/``predict_proba``/
``score``, ``fastmlp.load``, ``fastmlp.datasets.read_idx`` and the command line. The inputs are
random shapes (0 and 1 included), mismatched lengths, NaN, infinities and values too large for
float32, wrong dtypes (object, complex, bool, strings), Fortran-order, strided and read-only
views, 1-D where 2-D is expected, unseen labels, a single class and absurd hyper-parameters.

A clear exception is one of ``CLEAR``; anything else (MemoryError, IndexError, an error from
deep inside NumPy) fails the test, and a crash in compiled code kills the run. Every test also
checks that its input arrays come back unmodified. The examples are bounded and derandomized,
so the file runs in well under a minute and the same way in CI every time.
"""
import contextlib
import gzip
import io
import os
import struct
import tempfile
import warnings
from functools import lru_cache
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastmlp
import fastmlp.__main__ as cli
from fastmlp import datasets

CLEAR = (ValueError, TypeError, FloatingPointError)

# The tmp_path fixture is shared by the examples of a test: each example writes its own file anew.
FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.uint8, np.bool_,
                          np.complex128, object, "U8", "S8"])
LAYOUTS = st.sampled_from(["C", "F", "strided", "read-only", "reversed"])


def _cast(values, dtype):
    """values (float64) as ``dtype``; integer casts first replace NaN and infinities."""
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iub":
            values = np.nan_to_num(values, posinf=1e6, neginf=-1e6).clip(-1e6, 1e6)
        return values.astype(dtype)


def _lay_out(array, layout):
    """The same values in another memory layout: Fortran order, a strided or reversed view,
    or a read-only array."""
    if array.ndim == 0:
        return array
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "strided":
        return np.repeat(array, 2, axis=-1)[..., ::2]
    if layout == "reversed":
        return array[::-1]
    if layout == "read-only":
        array = array.copy()
        array.flags.writeable = False
    return array


@st.composite
def hostile_arrays(draw, shapes, dtypes=DTYPES, elements=FLOATS):
    """An array of a random dtype and layout whose values come from ``elements``."""
    values = draw(hnp.arrays(np.float64, draw(shapes), elements=elements))
    return _lay_out(_cast(values, draw(dtypes)), draw(LAYOUTS))


def matrices(n_features=None, max_rows=6):
    """Mostly (n_samples, n_features) arrays, sometimes 0-D, 1-D or 3-D ones."""
    columns = st.just(n_features) if n_features else st.integers(0, 4)
    two_d = st.tuples(st.integers(0, max_rows), columns)
    shapes = st.one_of(two_d, two_d, two_d, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    sane = st.floats(-10, 10, width=32)
    return st.one_of(hostile_arrays(shapes, dtypes=st.sampled_from([np.float64, np.float32]), elements=sane),
                     hostile_arrays(shapes))


LABELS = st.one_of(
    hostile_arrays(st.integers(0, 7).map(lambda n: (n,)), st.sampled_from([np.int64, np.uint8, np.bool_]),
                   st.integers(0, 2).map(float)),
    st.lists(st.sampled_from(["cat", "dog", "eel", 7, None, 1.5]), max_size=7).map(np.array),
    st.lists(st.sampled_from(["cat", "dog", "eel", 7, None, 1.5]), max_size=7).map(lambda v: np.array(v, object)),
    hostile_arrays(st.sampled_from([(0,), (3,), (4,), (5,), (4, 1), (4, 2), (), (2, 2, 1)])),
    st.sampled_from([None, 3, "abc", [[1, 2], [3]]]),
)

ABSURD_INTS = st.sampled_from([-1, 0, 2**62, 2**70, 1.5, True, "16", None])
ABSURD_FLOATS = st.sampled_from([-1.0, 0.0, 1e30, 1e300, float("nan"), float("inf"), "0.1", None, True])
HYPER_PARAMETERS = st.fixed_dictionaries({}, optional={
    "hidden": st.one_of(st.lists(st.integers(1, 5), max_size=2), st.integers(-1, 4),
                        st.sampled_from([(0,), (2**62,), (2**70,), (3.0,), "16", None, (True,)])),
    "activation": st.sampled_from(["sigmoid", "tanh", "relu", "identity", "softmax", "swish", None, ["relu"]]),
    "output_activation": st.sampled_from([None, "identity", "sigmoid", "softmax", "relu", "nope", 3]),
    "loss": st.sampled_from(["quadratic", "cross_entropy", "log_loss", "hinge", None, ["quadratic"]]),
    "batch_size": st.one_of(st.integers(1, 8), ABSURD_INTS),
    "epochs": st.one_of(st.integers(1, 2), ABSURD_INTS.filter(lambda v: v not in (2**62, 2**70))),
    "learning_rate": st.one_of(st.floats(1e-3, 10), ABSURD_FLOATS),
    "momentum": st.one_of(st.floats(0, 0.99), ABSURD_FLOATS, st.just(1.0)),
    "l2": st.one_of(st.floats(0, 1), ABSURD_FLOATS),
    "dtype": st.sampled_from(["float32", "float64", np.float32, "float16", "int64", object, None, "x"]),
    "task": st.sampled_from([None, "classification", "regression", "ranking", 1]),
    "on_divergence": st.sampled_from(["raise", "stop", "ignore"]),
    "shuffle": st.booleans(),
    "backend": st.sampled_from(["compiled", "numpy", "cuda"]),
})


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def snapshot(value):
    """A deep copy of an array argument, to check afterwards that nothing modified it."""
    return value.copy() if isinstance(value, np.ndarray) else value


def assert_unchanged(value, before):
    if isinstance(value, np.ndarray):
        same = (repr(value.tolist()) == repr(before.tolist()) if value.dtype.kind == "O"   # NaN != NaN
                else np.array_equal(value, before, equal_nan=value.dtype.kind in "fc"))
        assert value.dtype == before.dtype and same, "an input array was modified"


def assert_fitted(model, X):
    """A model fit returned has finite weights and predicts one value per row of its data."""
    assert all(np.isfinite(w).all() for w in model.weights + model.biases), "a NaN model was returned"
    assert len(model.predict(X)) == len(X)


@lru_cache(maxsize=None)
def fitted_models():
    """Three small fitted models over 3 features: integer classes, string classes, regression."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    options = dict(hidden=(4,), epochs=2, batch_size=8, learning_rate=0.5, seed=0)
    return {
        "int classes": fastmlp.fit(X, rng.integers(0, 3, 30), **options),
        "str classes": fastmlp.fit(X, np.array(["cat", "dog"])[rng.integers(0, 2, 30)], loss="log_loss", **options),
        "regression": fastmlp.fit(X, X @ [1.0, -1.0, 0.5], **options),
    }


@lru_cache(maxsize=None)
def model_file_bytes():
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.npz")
        fastmlp.save(fitted_models()["str classes"], path)
        with open(path, "rb") as file:
            return file.read()


# ---------------------------------------------------------------------------------------------
# fit, predict, predict_proba, score
# ---------------------------------------------------------------------------------------------

@FUZZ
@given(X=matrices(), y=LABELS, params=HYPER_PARAMETERS)
def test_fit_returns_a_finite_model_or_raises_a_clear_error(X, y, params):
    before = snapshot(X), snapshot(y)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # on_divergence="stop" warns
            model = fastmlp.fit(X, y, seed=0, **{"epochs": 2, **params})
    except CLEAR:
        pass
    else:
        assert_fitted(model, X)
    assert_unchanged(X, before[0])
    assert_unchanged(y, before[1])


@FUZZ
@given(kind=st.sampled_from(["int classes", "str classes", "regression"]),
       method=st.sampled_from(["predict", "predict_proba", "score"]),
       X=matrices(), y=LABELS)
def test_predictions_are_correct_or_a_clear_error(kind, method, X, y):
    model = fitted_models()[kind]
    before = snapshot(X), snapshot(y)
    arguments = (X, y) if method == "score" else (X,)
    try:
        result = getattr(model, method)(*arguments)
    except CLEAR:
        pass
    except AttributeError:
        assert method == "predict_proba" and kind == "regression"
    else:
        X_valid = np.asarray(X, dtype=np.float64)   # fit's conversion accepted it
        assert X_valid.shape[1:] == (3,) and len(X_valid) > 0
        if method == "predict":
            assert len(result) == len(X_valid)
            if model.classes_ is not None:
                assert set(result.tolist()) <= set(model.classes_.tolist())
        elif method == "predict_proba":
            assert result.shape == (len(X_valid), len(model.classes_)) and (result >= 0).all()
            np.testing.assert_allclose(result.sum(axis=1), 1, rtol=1e-5)
        else:
            assert np.isfinite(result) and (0 <= result <= 1 or kind == "regression")
    assert_unchanged(X, before[0])
    assert_unchanged(y, before[1])


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------

def load_or_reject(path):
    """fastmlp.load(path): a model equal to the saved one, or a ValueError."""
    try:
        model = fastmlp.load(path)
    except ValueError:
        return
    original = fitted_models()["str classes"]
    for loaded, saved in zip(model.weights + model.biases, original.weights + original.biases):
        np.testing.assert_array_equal(loaded, saved)
    assert list(model.classes_) == list(original.classes_)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_load_rejects_random_bytes(tmp_path, data):
    (tmp_path / "random.npz").write_bytes(data)
    load_or_reject(tmp_path / "random.npz")


@FUZZ
@given(data=st.data())
def test_load_rejects_truncated_and_bit_flipped_models(tmp_path, data):
    content = bytearray(model_file_bytes())
    if data.draw(st.booleans(), "truncate"):
        content = content[:data.draw(st.integers(1, len(content) - 1), "length")]
    for position in data.draw(st.lists(st.integers(0, len(content) - 1), min_size=1, max_size=3), "flips"):
        content[position] ^= 1 << data.draw(st.integers(0, 7), "bit")
    (tmp_path / "damaged.npz").write_bytes(bytes(content))
    load_or_reject(tmp_path / "damaged.npz")


def test_load_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastmlp.load(tmp_path / "missing.npz")


# ---------------------------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------------------------

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@st.composite
def idx_files(draw):
    """IDX bytes: a valid or broken header, and as much data as it asks for, or more, or less."""
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\xff\xff"]))
    type_code = draw(st.one_of(st.sampled_from(sorted(IDX_TYPES)), st.integers(0, 255)))
    shape = draw(st.lists(st.one_of(st.integers(0, 4), st.just(2**32 - 1)), max_size=4))
    n_dims = draw(st.one_of(st.just(len(shape)), st.integers(0, 255)))
    header = magic + bytes([type_code, n_dims]) + struct.pack(f">{len(shape)}I", *shape)
    itemsize = np.dtype(IDX_TYPES.get(type_code, "u1")).itemsize
    size = int(np.prod(shape, dtype=object)) * itemsize
    size = size if size < 4096 else draw(st.integers(0, 64))
    data = draw(st.binary(min_size=size, max_size=size)) + draw(st.binary(max_size=2))
    data = data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data
    return header + data


@FUZZ
@given(content=st.one_of(idx_files(), st.binary(max_size=64)), compress=st.booleans())
def test_read_idx_reads_what_the_header_says_or_raises_value_error(tmp_path, content, compress):
    (tmp_path / "file.idx").write_bytes(gzip.compress(content) if compress else content)
    try:
        array = datasets.read_idx(tmp_path / "file.idx")
    except ValueError:
        return
    type_code, n_dims = content[2], content[3]
    shape = struct.unpack(f">{n_dims}I", content[4:4 + 4 * n_dims])
    expected = np.frombuffer(content, IDX_TYPES[type_code], offset=4 + 4 * n_dims).reshape(shape)
    assert content[:2] == b"\x00\x00" and array.dtype.isnative
    np.testing.assert_array_equal(array, expected)


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------

WORDS = ["train", "check-grad", "info", "--hidden", "--epochs", "--batch-size", "--learning-rate",
         "--momentum", "--dtype", "--backend", "--threads", "--output", "--activation", "--loss", "--seed",
         "--samples", "--features", "--classes", "--dataset", "--version", "--help", "--bogus"]
VALUES = ["0", "1", "2", "3", "-1", "16,16", "3,x", "", "nan", "inf", "1e30", "0.5", "float16", "float64",
          "numpy", "relu", "tanh", "swish", "log_loss", "cross_entropy", "fashion-mnist-small", "mnist",
          "no-such-data", "model.npz", "no/such/dir/model.npz"]


@lru_cache(maxsize=None)
def tiny_dataset():
    X_train, y_train, X_test, y_test = datasets.load_small_fashion_mnist()
    scale = np.float32(1 / 255)
    return X_train[:60] * scale, y_train[:60], X_test[:20] * scale, y_test[:20]


def fake_load_dataset(name, real=cli.load_dataset):
    """The named dataset cut to 60 training images, so that a fuzzed `train` takes milliseconds."""
    if name in ("fashion-mnist", "fashion-mnist-small", "mnist"):
        return (*tiny_dataset(), name)
    return real(name)


@FUZZ
@given(argv=st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(VALUES), st.text(max_size=6)),
                     max_size=8))
def test_command_line_exits_cleanly(tmp_path, argv):
    """Exit status 0, 1 (gradient check failed) or 2 (usage or user error), and never a traceback."""
    threads = fastmlp.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    directory = os.getcwd()
    os.chdir(tmp_path)   # --output model.npz writes here
    try:
        with mock.patch.object(cli, "load_dataset", fake_load_dataset), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), np.errstate(all="ignore"):
            status = cli.main(argv)
    except SystemExit as exit:   # argparse: --help, --version, or a usage error
        status = exit.code
    finally:
        os.chdir(directory)
        fastmlp.set_num_threads(threads)
    assert status in (0, 1, 2), (argv, status, err.getvalue())
    assert "Traceback" not in err.getvalue()
