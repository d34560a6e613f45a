"""Hostile input, round two (issue 25): regression tests for what it found, then a property suite.

The first part holds one plain test per failure found (by the issue or by the properties below).
The second part is property-based (hypothesis, marker ``hostile``): hostile numbers (huge and
tiny, negative, zero, NaN, infinity, Python ints beyond any float or C integer, bools, strings),
hostile arrays (wrong dimensions and dtypes, NaN, empty, non-contiguous), every optimizer ×
activation × loss × task, damaged model and data files (truncation, byte flips, zip-header
fields, huge declared shapes) and command lines. It asserts that only documented exception types
escape (docs/api.md, "Errors"), that inputs are not modified, and that any model returned has
finite outputs.

Examples per property: a few dozen by default (the file runs in well under a minute on a slow
2-core machine). Set FASTMLP_HOSTILE_EXAMPLES to scale them, e.g.
``FASTMLP_HOSTILE_EXAMPLES=2000 pytest -m hostile tests/test_hostile.py`` for thousands, and
FASTMLP_HOSTILE_RANDOM=1 for new examples each run (the default is the same examples every run).
"""
import gzip
import json
import re
import struct
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import fastmlp


# ---------------------------------------------------------------------------------------------
# Losses and the targets they take (issue 25, 2): defined with backprop its exact gradient, or a
# ValueError saying why
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    return X, rng


@pytest.mark.parametrize("loss, task, make_y, message", [
    ("log_loss", "regression", lambda rng: rng.standard_normal((6, 2)), r"must be in \[0, 1\] for loss 'log_loss'"),
    ("log_loss", "regression", lambda rng: rng.uniform(0, 1, (6, 3)), "rows must each sum to 1"),
    ("log_loss", None, lambda rng: np.array([[1, 1, 0], [0, 1, 0]] * 3), "rows must each sum to 1"),
    ("cross_entropy", "regression", lambda rng: 2 * rng.standard_normal((6, 2)), r"must be in \[0, 1\] for loss 'cross_"),
    ("poisson", "regression", lambda rng: -rng.uniform(0.1, 1, 6), "must be >= 0 for loss 'poisson'"),
])
@pytest.mark.parametrize("entry", ["fit", "check_gradients", "targets"])
def test_a_loss_rejects_targets_it_is_not_defined_for(small, loss, task, make_y, message, entry):
    X, rng = small
    y = make_y(rng)
    with pytest.raises(ValueError, match=message):
        if entry == "fit":
            fastmlp.fit(X, y, loss=loss, task=task, hidden=(3,), epochs=1)
        elif entry == "check_gradients":
            fastmlp.check_gradients(X, y, loss=loss, task=task)
        else:   # a fitted model's cost, score and backprop decide the same way
            Y = np.asarray(y, float).reshape(len(X), -1)
            good = {"log_loss": rng.dirichlet(np.ones(Y.shape[1]), len(X)), "poisson": np.abs(Y),
                    "cross_entropy": rng.uniform(0, 1, Y.shape)}[loss]
            model = fastmlp.fit(X, good, loss=loss, task="regression", hidden=(3,), epochs=1, learning_rate=0.1)
            model.cost(X, y)


@pytest.mark.parametrize("loss, output_activation, make_y", [
    ("log_loss", "softmax", lambda rng: rng.dirichlet(np.ones(3), 6)),                  # soft labels
    ("cross_entropy", "sigmoid", lambda rng: rng.uniform(0, 1, (6, 2))),               # probabilities
    ("poisson", "exp", lambda rng: rng.poisson(2.0, (6, 2)).astype(float)),            # counts
    ("quadratic", "softmax", lambda rng: 3 * rng.standard_normal((6, 3))),             # any targets
    ("quadratic", "sigmoid", lambda rng: 3 * rng.standard_normal((6, 2))),
])
def test_targets_a_loss_accepts_get_backprop_as_their_exact_gradient(small, loss, output_activation, make_y):
    X, rng = small
    result = fastmlp.check_gradients(X, make_y(rng), hidden=(4,), loss=loss, output_activation=output_activation,
                                     task="regression")
    assert result["max"] < 1e-6, result


def test_log_loss_accepts_soft_labels_rounded_in_float32(small):
    X, rng = small
    y = rng.dirichlet(np.ones(10), 6).astype(np.float32)   # each row sums to 1 within float32 rounding
    model = fastmlp.fit(X, y, loss="log_loss", task="regression", hidden=(3,), epochs=1, learning_rate=0.1)
    assert np.isfinite(model.output(X)).all()


# ---------------------------------------------------------------------------------------------
# Sample weights, checked in the dtype they are used in (issue 25, 6)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weights, message", [
    (np.full(6, 1e-50), "too small for float32"),                      # 0 in float32: a 0/0 mean
    (np.full(6, 1e-40), "too small for float32"),                      # subnormal in float32
    (np.full(6, 1e38), "sums to 6e\\+38, more than the largest float32"),
    (np.full(6, 1e39), "too large for float32"),
])
def test_sample_weights_are_checked_in_float32(small, weights, message):
    X, _ = small
    y = np.arange(6) % 2
    with pytest.raises(ValueError, match=message):
        fastmlp.fit(X, y, sample_weight=weights, epochs=1)
    fastmlp.fit(X, y, sample_weight=weights, dtype="float64", epochs=1, learning_rate=0.1)   # fine there


def test_a_mini_batch_whose_weights_are_all_zero_is_skipped(small):
    X, _ = small
    y = np.arange(6) % 2
    weights = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])   # the second and third batches weigh nothing
    model = fastmlp.fit(X, y, sample_weight=weights, batch_size=2, shuffle=False, epochs=3, hidden=(3,),
                        learning_rate=0.5, seed=0)
    alone = fastmlp.fit(X[:2], y[:2], batch_size=2, shuffle=False, epochs=3, hidden=(3,), learning_rate=0.5,
                        seed=0)   # the same steps: those of the first batch
    for got, expected in zip(model.weights + model.biases, alone.weights + alone.biases):
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------------------
# Divergence, checked on what fit returns (issue 25, 1 and 4)
# ---------------------------------------------------------------------------------------------

def identity_network_that_overflows():
    """Found by a search: finite costs and weights after epoch 2, but outputs beyond float32."""
    rng = np.random.default_rng(0)
    for _ in range(400):
        n, f = int(rng.integers(4, 40)), int(rng.integers(1, 5))
        X = rng.standard_normal((n, f)) * 10 ** rng.uniform(-1, 2)
        y = rng.integers(0, 2, n) if rng.random() < 0.5 else rng.standard_normal(n)
        options = dict(hidden=(int(rng.integers(1, 6)),), activation="identity", epochs=2,
                       learning_rate=float(10 ** rng.uniform(-2, 1)), batch_size=int(rng.integers(1, 10)), seed=0,
                       dtype=str(rng.choice(["float32", "float64"])))
        if options["dtype"] == "float32" and options["learning_rate"] > 1 and f == 3 and n == 14:
            return X, y, options
    raise AssertionError("the search no longer finds the case")


def test_outputs_that_overflow_are_divergence():
    X, y, options = identity_network_that_overflows()
    with pytest.raises(fastmlp.DivergenceError, match=r"diverged in epoch 2: the outputs on the training data "
                                                      r"overflowed float32"):
        fastmlp.fit(X, y, **options)
    with pytest.warns(RuntimeWarning, match="diverged in epoch 2"):
        model = fastmlp.fit(X, y, on_divergence="stop", **options)
    assert np.isfinite(model.output(X)).all() and model.history["diverged"] == 2


def test_a_nan_penalty_of_huge_weights_is_not_reported_as_a_cost():
    """0 · Σ‖W‖² is 0, not NaN, when the weights pass 1e154 (float64): the recorded loss stays finite."""
    model = fastmlp.fit(np.ones((2, 1)), [1e160, 1e160], hidden=(), epochs=1, dtype="float64",
                        weights=[np.full((1, 1), 1e160)], biases=[np.zeros(1)])   # a perfect fit
    assert model.penalty() == 0.0 and np.isfinite(model.history["loss"]).all()


def test_adam_moments_that_overflow_are_divergence(small):
    """A huge penalty that makes Adam's second moment inf in float32 is divergence: left alone, the
    weights would stop changing and load would refuse the saved model."""
    X, _ = small
    with pytest.raises(fastmlp.DivergenceError, match=r"epoch 1: the optimizer state .* overflowed float32"):
        fastmlp.fit(X, X.sum(axis=1), optimizer="adam", l2=1e30, epochs=3, learning_rate=0.01)


def test_divergence_error_is_both_a_floating_point_error_and_a_value_error():
    assert issubclass(fastmlp.DivergenceError, FloatingPointError)
    assert issubclass(fastmlp.DivergenceError, ValueError)


# ---------------------------------------------------------------------------------------------
# Numbers at their limits (issue 25, 3 and 5): a ValueError or TypeError naming the argument
# ---------------------------------------------------------------------------------------------

HUGE = 10**400   # beyond any float


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lr_schedule="invscaling", power_t=10**100, epochs=2), None, None),      # no exact big-int power
    (dict(lr_schedule="invscaling", power_t=1e300, epochs=2), None, None),        # no OverflowError
    (dict(learning_rate=HUGE), ValueError, "learning_rate must be finite .* got an integer of 401 digits"),
    (dict(learning_rate=1e-50), ValueError, r"learning_rate=1e-50 is out of range in float32"),
    (dict(l2=HUGE), ValueError, "l2 must be finite"),
    (dict(l2=1e39), ValueError, "l2=1e\\+39 is out of range in float32"),
    (dict(momentum=HUGE), ValueError, "momentum must be finite"),
    (dict(epsilon=1e-320, optimizer="adam"), ValueError, "epsilon=1e-320 is out of range in float32"),
    (dict(tol=HUGE), ValueError, "tol must be finite"),
    (dict(dropout=HUGE), ValueError, "dropout must be finite"),
    (dict(validation_fraction=HUGE), ValueError, "validation_fraction must be finite"),
    (dict(power_t=-1e308, lr_schedule="invscaling"), ValueError, "power_t must be finite and >= 0.0"),
    (dict(lr_decay=0, lr_schedule="step"), ValueError, "lr_decay must be finite and > 0.0, got 0"),
    (dict(lr_decay=HUGE, lr_schedule="step"), ValueError, "lr_decay must be finite"),
    (dict(lr_decay=2.0, lr_schedule="step"), ValueError, "lr_decay must be <= 1"),
    (dict(lr_step=0, lr_schedule="step"), ValueError, "lr_step must be >= 1, got 0"),    # not ZeroDivisionError
    (dict(lr_patience="2"), TypeError, "lr_patience must be an integer"),
    (dict(epochs=10**30), ValueError, "epochs must be <= 9223372036854775807, got an integer of 31 digits"),
    (dict(batch_size=2**63), ValueError, "batch_size must be <= 9223372036854775807"),
    (dict(seed=2**64), ValueError, "seed must be <= 18446744073709551615"),   # not OverflowError
    (dict(seed=2**64 - 1), None, None),
    (dict(max_fun=10**30, optimizer="lbfgs"), ValueError, "max_fun must be <="),
    (dict(samples_seen=10**30), ValueError, "samples_seen must be <="),
    (dict(hidden=(10**30,)), ValueError, "hidden layer size must be <="),
    (dict(init=["fan_in"]), ValueError, r"init must be one of \['fan_in', 'normal'\]"),
])
def test_fit_numbers_at_their_limits(small, kwargs, error, message):
    X, _ = small
    kwargs = {"epochs": 1, "hidden": (3,), "learning_rate": 0.1, **kwargs}
    if error is None:
        model = fastmlp.fit(X, X.sum(axis=1), **kwargs)
        assert np.isfinite(model.output(X)).all()
    else:
        with pytest.raises(error, match=message):
            fastmlp.fit(X, X.sum(axis=1), **kwargs)


def test_a_huge_epoch_count_is_a_long_run_that_a_callback_can_end(small):
    # Found by a random run of the properties below: epochs=2**31 is valid, so it trains on.
    X, _ = small
    model = fastmlp.fit(X, X.sum(axis=1), hidden=(3,), learning_rate=0.1, epochs=2**31,
                        callback=lambda logs: logs["epoch"] >= 3)
    assert len(model.history["loss"]) == 3 and model.history["stopped_by_callback"] == 3


@pytest.mark.parametrize("n", [0, -1, 10**6, 2**64, 1.5, True, "2", None])
def test_set_num_threads_rejects_counts_beyond_any_machine(threads, n):
    with pytest.raises(ValueError, match="number of threads must be an integer >= 1 and <= 1024"):
        threads(n)


def test_set_num_threads_takes_numpy_integers_and_networks_get_at_most_a_team(threads):
    threads(np.int64(1000))
    assert fastmlp.get_num_threads() == 1000
    X = np.random.default_rng(0).standard_normal((20, 3))
    fastmlp.fit(X, X[:, 0], hidden=(3,), epochs=1)   # 64 workspaces at most, not 1000


@pytest.mark.parametrize("params, error, message", [
    (dict(power_t=10**100, solver="sgd", learning_rate="invscaling"), None, None),   # no hang
    (dict(alpha=HUGE), ValueError, "alpha must be finite"),
    (dict(alpha=1e300), ValueError, "alpha=1e\\+300 gives an L2 coefficient"),
    (dict(learning_rate_init=1e-50), ValueError, "learning_rate_init=1e-50 is out of range in float32"),
    (dict(epsilon=HUGE), ValueError, "epsilon must be finite"),
    (dict(tol="x"), TypeError, "tol must be a number"),
    (dict(momentum=HUGE, solver="sgd"), ValueError, "momentum must be finite"),
    (dict(max_iter=10**30), ValueError, "max_iter must be <="),
    (dict(batch_size=10**30), ValueError, "batch_size must be <="),
    (dict(random_state=10**30), ValueError, "random_state must be <="),
    (dict(random_state=-1), ValueError, "random_state must be >= 0"),
    (dict(hidden_layer_sizes=10**30), ValueError, r"hidden_layer_sizes\[i\] must be <="),
    (dict(hidden_layer_sizes=(2**40,)), ValueError, r"hidden_layer_sizes=\(1099511627776,\) needs"),
    (dict(solver=["adam"]), ValueError, "solver must be one of"),
])
def test_estimator_numbers_at_their_limits(small, params, error, message):
    X, _ = small
    estimator = fastmlp.MLPRegressor((3,), max_iter=2).set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ConvergenceWarning
        if error is None:
            assert np.isfinite(estimator.fit(X.astype(np.float32), X.sum(axis=1)).predict(X)).all()
        else:
            with pytest.raises(error, match=message):
                estimator.fit(X.astype(np.float32), X.sum(axis=1))


# ---------------------------------------------------------------------------------------------
# Smaller entry points (issue 25, 9)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["output", "backprop"])
def test_an_unknown_backend_is_a_value_error_listing_the_choices(small, method):
    X, _ = small
    model = fastmlp.fit(X, X[:, 0], hidden=(3,), epochs=1)
    arguments = (X,) if method == "output" else (X, X[:, 0])
    with pytest.raises(ValueError, match=r"backend must be one of \['compiled', 'numpy'\], got 'gpu'"):
        getattr(model, method)(*arguments, backend="gpu")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(epsilon=0), ValueError, "epsilon must be finite and > 0.0"),             # not ZeroDivisionError
    (dict(l2="x"), TypeError, "l2 must be a number"),
    (dict(backend="x"), ValueError, "backend must be one of"),                      # not KeyError
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(weights=[np.zeros((2, 2))], biases=[np.zeros(2)]), ValueError, "need 2 weight matrices"),
    (dict(weights=[np.zeros((3, 3)), np.zeros((3, 1))]), ValueError, "give both weights and biases"),
    (dict(weights=np.zeros((3, 3)), biases=np.zeros(3)), TypeError, "weights must be a list of arrays"),
])
def test_check_gradients_rejects_what_it_would_fail_on(small, kwargs, error, message):
    X, _ = small
    with pytest.raises(error, match=message):
        fastmlp.check_gradients(X, X[:, 0], **kwargs)


@pytest.mark.parametrize("args, error, message", [
    (((4, -1), ["sigmoid"], np.random.default_rng(0)), ValueError, "layer size must be >= 1"),
    (((4, 2), ["sigmoid"], 0), TypeError, "rng must be a numpy.random.Generator"),
    (((4, 2, 2), ["sigmoid"], np.random.default_rng(0)), ValueError, "one activation per layer"),
    (((4, 2), ["swish"], np.random.default_rng(0)), ValueError, "activation must be one of"),
    ((4, ["sigmoid"], np.random.default_rng(0)), TypeError, "layer_sizes must be a sequence"),
    (((4, 2**40), ["sigmoid"], np.random.default_rng(0)), ValueError, r"layer_sizes=\(4, 1099511627776\) needs"),
])
def test_init_parameters_rejects_what_it_would_fail_on(args, error, message):
    with pytest.raises(error, match=message):
        fastmlp.init_parameters(*args)


def test_the_memory_check_counts_the_float64_initial_draw(monkeypatch):
    """A layer whose float32 weights fit but whose float64 initial draw does not is refused."""
    import os
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PHYS_PAGES": 3 * 2**18, "SC_PAGE_SIZE": 4096}[name])
    X = np.zeros((2, 1000))   # 3 GiB of memory; 1000 x 500000 float32 weights are 1.9 GiB, the draw 3.7
    with pytest.raises(ValueError, match="float64 initial draw"):
        fastmlp.fit(X, [0, 1], hidden=(500_000,), epochs=1)


# ---------------------------------------------------------------------------------------------
# Damaged files (issue 25, 7)
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    path = tmp_path_factory.mktemp("model") / "model.npz"
    fastmlp.save(fastmlp.fit(X, rng.integers(0, 2, 20), hidden=(3,), epochs=2, seed=0), path)
    return path.read_bytes()


def patch_zip_headers(content, field, value):
    """Every local and central-directory header of a zip with ``field`` ("flags" or "method") set."""
    content = bytearray(content)
    offsets = {b"PK\x03\x04": {"flags": 6, "method": 8}, b"PK\x01\x02": {"flags": 8, "method": 10}}
    for signature, fields in offsets.items():
        at = content.find(signature)
        while at >= 0:
            content[at + fields[field]:at + fields[field] + 2] = struct.pack("<H", value)
            at = content.find(signature, at + 4)
    return bytes(content)


@pytest.mark.parametrize("field, value", [("flags", 0x1), ("flags", 0x41), ("method", 99), ("method", 12),
                                          ("method", 8)])
def test_zip_level_damage_to_a_model_is_a_value_error(tmp_path, model_bytes, field, value):
    """An 'encrypted' flag, strong encryption or an unknown method is a ValueError (not zipfile's
    RuntimeError or NotImplementedError)."""
    (tmp_path / "damaged.npz").write_bytes(patch_zip_headers(model_bytes, field, value))
    with pytest.raises(ValueError, match="damaged.npz is not a readable fastmlp model file"):
        fastmlp.load(tmp_path / "damaged.npz")


def compressed_npz_promising(path, shape):
    """A deflated .npz member whose .npy header promises ``shape`` of float64 but holds 16 bytes."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("X.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(bytes(16))
    return path


@pytest.mark.parametrize("shape", [(2**40,), (2**62, 2**62), (10**6, 10**6)])
def test_a_compressed_data_file_promising_a_huge_shape_is_a_value_error(tmp_path, shape):
    from fastmlp.io import read_npz

    path = compressed_npz_promising(tmp_path / "huge.npz", shape)
    with pytest.raises(ValueError, match="shorter than its header says"):
        read_npz(path, "data file", compressed=True)


def test_a_model_history_is_checked_when_loaded(tmp_path):
    from fastmlp.io import _digest

    arrays = {"weights_0": np.zeros((2, 1)), "biases_0": np.zeros(1)}
    for history, message in [({"loss": ["x"]}, "history\\['loss'\\] must be a number"),
                             ({"loss": [float("nan")]}, "must be finite"),
                             ({"interrupted": -1}, "must be >= 0"),
                             ({"diverged": 2.5}, "must be an integer")]:
        metadata = {"format": "fastmlp", "format_version": 1, "layer_sizes": [2, 1], "dtype": "float64",
                    "layer_activations": ["identity"], "loss": "quadratic", "l2": 0.0, "history": history}
        metadata["sha256"] = _digest(arrays, metadata)
        np.savez(tmp_path / "forged.npz", metadata=np.array(json.dumps(metadata)), **arrays)
        with pytest.raises(ValueError, match=message):
            fastmlp.load(tmp_path / "forged.npz")


def test_a_small_gzip_idx_file_that_inflates_to_gigabytes_is_refused_early(tmp_path):
    """The header declares 10 bytes; the stream inflates to 256 MiB of zeros after them. The reader
    checks the header before inflating the rest."""
    import tracemalloc

    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)   # gzip framing
    parts = [compressor.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + bytes(10))]
    block = bytes(1 << 20)
    parts += [compressor.compress(block) for _ in range(256)] + [compressor.flush()]
    (tmp_path / "bomb.gz").write_bytes(b"".join(parts))
    assert (tmp_path / "bomb.gz").stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="extra bytes after IDX data"):
            fastmlp.datasets.read_idx(tmp_path / "bomb.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def test_a_gzip_idx_header_declaring_more_than_deflate_can_hold_is_refused_unread(tmp_path):
    (tmp_path / "liar.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 2**20, 2**10, 2**10)))
    with pytest.raises(ValueError, match="truncated IDX data.*more than the file can hold"):
        fastmlp.datasets.read_idx(tmp_path / "liar.gz")


# ---------------------------------------------------------------------------------------------
# The command line (issue 25, 8): one line on stderr and exit status 2 for every data-file mistake
# ---------------------------------------------------------------------------------------------

def run_cli(argv, capsys):
    import fastmlp.__main__ as cli

    threads = fastmlp.get_num_threads()
    try:
        status = cli.main(argv)
    finally:
        fastmlp.set_num_threads(threads)
    err = capsys.readouterr().err
    return status, err


@pytest.fixture
def data_files(tmp_path, model_bytes):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = rng.integers(0, 2, 30)
    np.savez(tmp_path / "one-d.npz", X=X[:, 0], y=y)
    np.savez(tmp_path / "strings.npz", X=X.astype(str), y=y)
    np.savez(tmp_path / "scalar-y.npz", X=X, y=np.array(3))
    np.savez(tmp_path / "good.npz", X=X, y=y)
    np.savez_compressed(tmp_path / "compressed.npz", X=X, y=y)
    (tmp_path / "encrypted.npz").write_bytes(patch_zip_headers((tmp_path / "good.npz").read_bytes(), "flags", 1))
    (tmp_path / "bzip2.npz").write_bytes(patch_zip_headers((tmp_path / "good.npz").read_bytes(), "method", 12))
    compressed_npz_promising(tmp_path / "huge.npz", (2**40, 1))
    (tmp_path / "model.npz").write_bytes(model_bytes)
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "{one-d.npz}"], r"one-d.npz: X must be a 2-D array of numbers .* shape \(30,\)"),
    (["train", "--dataset", "{strings.npz}"], "X must be a 2-D array of numbers"),
    (["train", "--dataset", "{scalar-y.npz}"], "y must be 1-D"),
    (["train", "--dataset", "{encrypted.npz}"], "encrypted.npz is not a readable npz file of arrays"),
    (["train", "--dataset", "{bzip2.npz}"], "is not a .npy array, stored or deflated"),
    (["train", "--dataset", "{huge.npz}"], "shorter than its header says"),
    (["train", "--dataset", "{good.npz}", "--seed", str(2**64)], "seed must be <="),
    (["train", "--dataset", "{good.npz}", "--seed", "-1"], "seed must be >= 0"),
    (["train", "--dataset", "{good.npz}", "--threads", str(10**6)], "number of threads must be an integer >= 1 and <= 1024"),
    (["train", "--dataset", "{good.npz}", "--epochs", str(10**30)], "epochs must be <="),
    (["train", "--dataset", "{good.npz}", "--learning-rate", "1e400"], "learning_rate must be finite"),
    (["train", "--dataset", "{good.npz}", "--hidden", str(10**12)], "needs .* GiB"),
    (["predict", "{model.npz}", "{one-d.npz}"], "X must be a 2-D array"),
    (["predict", "{model.npz}", "{encrypted.npz}"], "not a readable npz file"),
    (["check-grad", "--samples", str(10**12)], "more data than a gradient check needs"),
    (["check-grad", "--features", "0"], "--features must be >= 1"),
    (["check-grad", "--classes", "1"], "--classes must be >= 2"),
    (["check-grad", "--hidden", "100000"], "too many to check"),
    (["check-grad", "--seed", "-1"], "--seed must be >= 0"),
    (["bench", "--threads", str(10**6)], "number of threads must be an integer >= 1 and <= 1024"),
])
def test_data_file_and_number_mistakes_are_one_line_and_status_2(data_files, capsys, argv, message):
    argv = [str(data_files / word[1:-1]) if word.startswith("{") else word for word in argv]
    status, err = run_cli(argv, capsys)
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("fastmlp: error: ") and "Traceback" not in err
    assert re.search(message, err), err


def test_the_command_line_trains_on_a_compressed_npz(data_files, capsys):
    status, err = run_cli(["train", "--dataset", str(data_files / "compressed.npz"), "--hidden", "3",
                           "--epochs", "1", "--threads", "1"], capsys)
    assert status == 0, err


@pytest.mark.parametrize("call, message", [
    (lambda plots, path: plots.plot_history(None, path), "non-empty 'loss' list"),
    (lambda plots, path: plots.plot_history({"loss": [1.0], "val_loss": ["x"]}, path), r"history\['val_loss'\]"),
    (lambda plots, path: plots.plot_first_layer(np.zeros((784, 2)), path, image_shape=(-28, -28)), "image_shape"),
    (lambda plots, path: plots.plot_first_layer(np.zeros((784, 2)), path, image_shape="28x28"), "image_shape"),
    (lambda plots, path: plots.plot_misclassified(np.zeros((2, 4)), [0, 1], [1, 0], path, image_shape=(2, 2),
                                                  class_names=["a"]), "no name for label 1"),
])
def test_plots_reject_what_they_would_fail_on(tmp_path, call, message):
    pytest.importorskip("matplotlib")
    from fastmlp import plots

    with pytest.raises(ValueError, match=message):
        call(plots, tmp_path / "picture.png")


# =============================================================================================
# Property-based suite
# =============================================================================================

import contextlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import fastmlp.__main__ as cli  # noqa: E402

SCALE = int(os.environ.get("FASTMLP_HOSTILE_EXAMPLES", "0") or 0)
# Derandomized, so that a run (CI's included) tries the same examples every time; set
# FASTMLP_HOSTILE_RANDOM=1 to explore new ones.
RANDOM = os.environ.get("FASTMLP_HOSTILE_RANDOM", "") not in ("", "0")
settings.register_profile("hostile", deadline=None, derandomize=not RANDOM, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                 HealthCheck.data_too_large])


def examples(default):
    """``default`` examples, or FASTMLP_HOSTILE_EXAMPLES when it is set."""
    return settings(settings.get_profile("hostile"), max_examples=SCALE or default)


# The documented exception types (docs/api.md, "Errors"); DivergenceError is a ValueError.
DOCUMENTED = (ValueError, TypeError)

HUGE_INTS = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 10**30, 10**400, -(10**400)])
HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 0.0, -0.0, 1e-320, 1e-50, 1e-40, 1e38, 1e39, 1e300, 1.7976931348623157e308,
                     float("nan"), float("inf"), float("-inf"), True, False, None, "1", "", b"1", [1], (1,),
                     np.float32(1e-30), np.int64(-5), np.float64(np.nan), complex(1, 0)]),
    HUGE_INTS,
    st.integers(-10, 10),
    st.floats(allow_nan=True, allow_infinity=True),
)
FIT_NUMBERS = ["epochs", "batch_size", "learning_rate", "momentum", "beta1", "beta2", "epsilon", "l2", "l1",
               "dropout", "power_t", "samples_seen", "lr_decay", "lr_step", "lr_patience", "seed",
               "validation_fraction", "n_iter_no_change", "tol", "max_fun"]
OPTIONS_FOR = {"power_t": dict(lr_schedule="invscaling"), "samples_seen": dict(lr_schedule="invscaling"),
               "lr_decay": dict(lr_schedule="step", lr_step=1), "lr_step": dict(lr_schedule="step"),
               "lr_patience": dict(lr_schedule="plateau"), "beta1": dict(optimizer="adam"),
               "beta2": dict(optimizer="adam"), "epsilon": dict(optimizer="adam"),
               "max_fun": dict(optimizer="lbfgs"), "momentum": dict(optimizer="nesterov"),
               "n_iter_no_change": dict(early_stopping=True)}


def snapshot(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def assert_unchanged(value, before):
    if isinstance(value, np.ndarray):
        same = (repr(value.tolist()) == repr(before.tolist()) if value.dtype.kind == "O"
                else np.array_equal(value, before, equal_nan=value.dtype.kind in "fc"))
        assert value.dtype == before.dtype and same, "an input array was modified"


def assert_finite_model(model, X):
    assert all(np.isfinite(p).all() for p in model.weights + model.biases), "non-finite weights returned"
    assert np.isfinite(model.output(np.asarray(X, model.dtype))).all(), "a model with non-finite outputs returned"


def quietly(function, *args, **kwargs):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def blobs(n_samples=24, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


@pytest.mark.hostile
@examples(120)
@given(name=st.sampled_from(FIT_NUMBERS), value=HOSTILE_NUMBERS, dtype=st.sampled_from(["float32", "float64"]))
def test_every_number_of_fit_at_its_limits(name, value, dtype):
    if name == "max_fun":
        pytest.importorskip("scipy")
    X, y = blobs()
    options = dict(hidden=(3,), epochs=2, learning_rate=0.1, dtype=dtype, **OPTIONS_FOR.get(name, {}))
    options[name] = value
    if name == "epochs":   # a huge count is a valid request for a long run: this one stops after 3 epochs
        options["callback"] = lambda logs: logs["epoch"] >= 3
    try:
        model = quietly(fastmlp.fit, X, y, **options)
    except DOCUMENTED:
        return
    assert_finite_model(model, X)


@pytest.mark.hostile
@examples(60)
@given(name=st.sampled_from(["alpha", "learning_rate_init", "power_t", "max_iter", "batch_size", "momentum",
                             "beta_1", "beta_2", "epsilon", "tol", "n_iter_no_change", "validation_fraction",
                             "max_fun", "dropout", "l1", "random_state", "hidden_layer_sizes"]),
       value=HOSTILE_NUMBERS, solver=st.sampled_from(["adam", "sgd", "lbfgs"]),
       schedule=st.sampled_from(["constant", "invscaling", "adaptive"]), early_stopping=st.booleans())
def test_every_number_of_the_estimators_at_its_limits(name, value, solver, schedule, early_stopping):
    if solver == "lbfgs":
        pytest.importorskip("scipy")
    X, y = blobs(30)
    estimator = fastmlp.MLPClassifier((3,), max_iter=2, solver=solver, learning_rate=schedule,
                                      early_stopping=early_stopping, random_state=0)
    try:
        estimator.set_params(**{name: value})
        quietly(estimator.fit, X, y)
    except DOCUMENTED:
        return
    assert_finite_model(estimator.model_, X)


@pytest.mark.hostile
@examples(30)
@given(value=HOSTILE_NUMBERS)
def test_set_num_threads_at_its_limits(threads, value):
    try:
        threads(value)
    except ValueError:
        return
    assert 1 <= fastmlp.get_num_threads() <= 1024


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
ARRAY_DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.uint8, np.bool_, np.complex128,
                                object, "U4"])


@st.composite
def hostile_arrays(draw, shapes):
    values = draw(hnp.arrays(np.float64, draw(shapes), elements=st.one_of(st.floats(-5, 5), FLOATS)))
    dtype = draw(ARRAY_DTYPES)
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iub":
            values = np.nan_to_num(values, posinf=9, neginf=-9).clip(-9, 9)
        array = np.array(values, dtype=dtype)   # an array even for 0-D values (astype gives a scalar)
    layout = draw(st.sampled_from(["C", "F", "strided", "read-only"]))
    if array.ndim and layout == "F":
        array = np.asfortranarray(array)
    elif array.ndim and layout == "strided":
        array = np.repeat(array, 2, axis=-1)[..., ::2]
    elif layout == "read-only":
        array.flags.writeable = False
    return array


SHAPES = st.one_of(st.tuples(st.integers(0, 8), st.integers(0, 3)),
                   hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
TARGETS = st.one_of(hostile_arrays(st.sampled_from([(8,), (8, 1), (8, 2), (7,), (0,), ()])),
                    st.lists(st.sampled_from(["a", "b", 1, None]), min_size=8, max_size=8).map(np.array))


@pytest.mark.hostile
@examples(80)
@given(X=hostile_arrays(SHAPES), y=TARGETS, sample_weight=st.none() | hostile_arrays(st.sampled_from([(8,), (3,)])),
       loss=st.sampled_from([None, "quadratic", "cross_entropy", "log_loss", "poisson"]))
def test_fit_with_hostile_arrays(X, y, sample_weight, loss):
    before = [snapshot(value) for value in (X, y, sample_weight)]
    try:
        model = quietly(fastmlp.fit, X, y, sample_weight=sample_weight, loss=loss, hidden=(2,), epochs=2,
                        batch_size=3, learning_rate=0.5, seed=0)
    except DOCUMENTED:
        pass
    else:
        assert_finite_model(model, X)
    for value, saved in zip((X, y, sample_weight), before):
        assert_unchanged(value, saved)


@pytest.mark.hostile
@examples(40)
@given(X=hostile_arrays(SHAPES), y=TARGETS,
       method=st.sampled_from(["predict", "predict_proba", "score", "cost", "backprop", "forward"]))
def test_a_fitted_model_with_hostile_arrays(X, y, method):
    model = fitted_for_properties()
    before = snapshot(X), snapshot(y)
    arguments = (X, y) if method in ("score", "cost", "backprop") else (X,)
    try:
        quietly(getattr(model, method), *arguments)
    except DOCUMENTED:
        pass
    assert_unchanged(X, before[0])
    assert_unchanged(y, before[1])


_FITTED = {}


def fitted_for_properties():
    if "model" not in _FITTED:
        X, y = blobs(30, 3)
        _FITTED["model"] = fastmlp.fit(X, y, hidden=(3,), epochs=2, seed=0)
    return _FITTED["model"]


@pytest.mark.hostile
@examples(60)
@given(optimizer=st.sampled_from(["sgd", "nesterov", "adam", "lbfgs"]),
       activation=st.sampled_from(["sigmoid", "tanh", "relu", "identity"]),
       loss=st.sampled_from(["quadratic", "cross_entropy", "log_loss", "poisson"]),
       task=st.sampled_from(["classification", "multilabel", "regression"]),
       learning_rate=st.sampled_from([1e-3, 0.1, 3.0, 1e3, 1e30]), l2=st.sampled_from([0.0, 1e-3, 1e10]),
       momentum=st.sampled_from([0.0, 0.9]), dropout=st.sampled_from([0.0, 0.5]),
       dtype=st.sampled_from(["float32", "float64"]), scale=st.sampled_from([1.0, 1e6, 1e30]),
       schedule=st.sampled_from(["constant", "invscaling", "step", "plateau"]))
def test_every_optimizer_activation_loss_and_task(optimizer, activation, loss, task, learning_rate, l2, momentum,
                                                  dropout, dtype, scale, schedule):
    if optimizer == "lbfgs":
        pytest.importorskip("scipy")
    X, labels = blobs(20)
    X = X * scale
    y = {"classification": labels, "multilabel": np.column_stack([labels > 0, labels > 1]).astype(int),
         "regression": np.abs(X[:, :2]).astype(float)}[task]
    try:
        model = quietly(fastmlp.fit, X, y, optimizer=optimizer, activation=activation, loss=loss, task=task,
                        learning_rate=learning_rate, l2=l2, momentum=momentum, dropout=dropout, dtype=dtype,
                        lr_schedule=schedule, hidden=(4,), epochs=3, batch_size=7, seed=0)
    except DOCUMENTED:
        return
    assert_finite_model(model, X)


ZIP_FIELDS = {b"PK\x03\x04": {"flags": (6, 2), "method": (8, 2), "compressed size": (18, 4),
                              "size": (22, 4), "name length": (26, 2), "extra length": (28, 2)},
              b"PK\x01\x02": {"flags": (8, 2), "method": (10, 2), "compressed size": (20, 4), "size": (24, 4),
                              "name length": (28, 2), "extra length": (30, 2), "offset": (42, 4)},
              b"PK\x05\x06": {"entries": (10, 2), "directory size": (12, 4), "directory offset": (16, 4)}}


@st.composite
def damaged(draw, content):
    """``content`` truncated, bit-flipped, or with zip-header fields (or .npy shapes) set to hostile values."""
    content = bytearray(content)
    kind = draw(st.sampled_from(["truncate", "flip", "field", "shape"]))
    if kind == "truncate":
        return bytes(content[:draw(st.integers(0, len(content) - 1))])
    if kind == "flip":
        for position in draw(st.lists(st.integers(0, len(content) - 1), min_size=1, max_size=4)):
            content[position] ^= 1 << draw(st.integers(0, 7))
        return bytes(content)
    if kind == "shape":
        at = content.find(b"'shape': (")
        if at >= 0:
            end = content.find(b")", at)
            shape = draw(st.sampled_from([b"2**40", b"4294967296, 4294967296", b"-1", b"10000000", b"0"]))
            shape = str(eval(shape)).encode() if b"**" in shape else shape   # noqa: S307 (a constant)
            content[at + 10:end] = (shape + b",")[:max(1, end - at - 10)].ljust(end - at - 10)
        return bytes(content)
    signature = draw(st.sampled_from(sorted(ZIP_FIELDS)))
    field, (offset, width) = draw(st.sampled_from(sorted(ZIP_FIELDS[signature].items())))
    value = draw(st.sampled_from([0, 1, 0x41, 8, 12, 14, 99, 2**(8 * width) - 1, 2**(8 * width - 1)]))
    at = content.find(signature)
    while at >= 0:
        content[at + offset:at + offset + width] = (value % 2**(8 * width)).to_bytes(width, "little")
        at = content.find(signature, at + 4)
    return bytes(content)


def model_file_bytes_for_properties():
    if "bytes" not in _FITTED:
        buffer = io.BytesIO()
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"fastmlp-hostile-{os.getpid()}.npz")
        fastmlp.save(fitted_for_properties(), path)
        with open(path, "rb") as file:
            buffer.write(file.read())
        os.unlink(path)
        _FITTED["bytes"] = buffer.getvalue()
    return _FITTED["bytes"]


@pytest.mark.hostile
@examples(80)
@given(data=st.data())
def test_a_damaged_model_file_loads_intact_or_is_a_value_error(tmp_path, data):
    content = data.draw(damaged(model_file_bytes_for_properties()))
    (tmp_path / "damaged.npz").write_bytes(content)
    try:
        model = fastmlp.load(tmp_path / "damaged.npz")
    except ValueError:
        return
    original = fitted_for_properties()
    for loaded, saved in zip(model.weights + model.biases, original.weights + original.biases):
        np.testing.assert_array_equal(loaded, saved)


def data_file_bytes(compressed):
    key = f"data {compressed}"
    if key not in _FITTED:
        buffer = io.BytesIO()
        X, y = blobs(12)
        (np.savez_compressed if compressed else np.savez)(buffer, X=X, y=y)
        _FITTED[key] = buffer.getvalue()
    return _FITTED[key]


@pytest.mark.hostile
@examples(60)
@given(data=st.data(), compressed=st.booleans())
def test_a_damaged_data_file_is_read_or_is_one_line_and_status_2(tmp_path, data, compressed):
    (tmp_path / "data.npz").write_bytes(data.draw(damaged(data_file_bytes(compressed))))
    out, err = io.StringIO(), io.StringIO()
    threads = fastmlp.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), np.errstate(all="ignore"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status = cli.main(["train", "--dataset", str(tmp_path / "data.npz"), "--hidden", "2", "--epochs", "1",
                               "--threads", "1"])
    finally:
        fastmlp.set_num_threads(threads)
    assert status in (0, 2), err.getvalue()
    if status == 2:
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("fastmlp: error: ")


@st.composite
def idx_bytes(draw):
    type_code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]))
    shape = draw(st.lists(st.one_of(st.integers(0, 3), st.sampled_from([2**31, 2**32 - 1])), min_size=0,
                          max_size=3))
    n_dims = draw(st.one_of(st.just(len(shape)), st.integers(0, 255)))
    body = draw(st.binary(max_size=64))
    return bytes([0, 0, type_code, n_dims]) + struct.pack(f">{len(shape)}I", *shape) + body


@pytest.mark.hostile
@examples(60)
@given(content=idx_bytes(), compress=st.booleans(), damage=st.none() | st.integers(0, 40))
def test_read_idx_reads_or_is_a_value_error(tmp_path, content, compress, damage):
    raw = gzip.compress(content) if compress else content
    if damage is not None and raw:
        raw = raw[:damage] + bytes([raw[damage % len(raw)] ^ 0xFF]) + raw[damage + 1:]
    (tmp_path / "file.idx").write_bytes(raw)
    try:
        array = fastmlp.datasets.read_idx(tmp_path / "file.idx")
    except ValueError:
        return
    assert array.dtype.isnative and array.flags.writeable


CLI_WORDS = ["train", "check-grad", "predict", "evaluate", "--hidden", "--epochs", "--batch-size", "--learning-rate",
             "--momentum", "--l2", "--dropout", "--threads", "--seed", "--samples", "--features", "--classes",
             "--validation-fraction", "--dtype", "--loss", "--activation", "--optimizer", "--dataset"]
CLI_VALUES = ["0", "-1", "1", "2", "3", "1e400", "-1e400", "nan", "inf", "1e-320", str(2**31), str(2**63),
              str(2**64), str(10**30), "3,0", "3,-2", str(10**12), "", "x", "{data}", "{model}", "{one-d}",
              "log_loss", "cross_entropy", "poisson", "identity", "adam", "lbfgs", "float64"]


@pytest.mark.hostile
@examples(80)
@given(argv=st.lists(st.one_of(st.sampled_from(CLI_WORDS), st.sampled_from(CLI_VALUES)), max_size=9))
def test_command_lines_end_in_0_1_or_2_and_never_a_traceback(tmp_path, argv):
    X, y = blobs(20)
    files = {"data": tmp_path / "data.npz", "model": tmp_path / "model.npz", "one-d": tmp_path / "one-d.npz"}
    np.savez(files["data"], X=X, y=y)
    np.savez(files["one-d"], X=X[:, 0], y=y)
    (files["model"]).write_bytes(model_file_bytes_for_properties())
    argv = [str(files[word[1:-1]]) if word.startswith("{") else word for word in argv]
    if "--dataset" not in argv and argv[:1] in (["train"], ["evaluate"]):
        argv += ["--dataset", str(files["data"])]
    for i, word in enumerate(argv[:-1]):   # a huge epoch count is valid, and would train for hours
        if word == "--epochs" and argv[i + 1].isdigit() and int(argv[i + 1]) > 3:
            argv[i + 1] = "3"
    out, err = io.StringIO(), io.StringIO()
    threads = fastmlp.get_num_threads()
    directory = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), np.errstate(all="ignore"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                status = cli.main(argv + (["--epochs", "1"] if argv[:1] == ["train"] and "--epochs" not in argv
                                          else []))
            except SystemExit as exit:   # --help, --version
                status = exit.code
    finally:
        os.chdir(directory)
        fastmlp.set_num_threads(threads)
    assert status in (0, 1, 2), (argv, status, err.getvalue())
    assert "Traceback" not in err.getvalue()
