"""Reliability: divergence, interrupts, threads, memory and hostile model files.

- Divergence is caught in the epoch it happens: the error names that epoch, and
  ``on_divergence="stop"`` keeps exactly the weights of the epoch before.
- Ctrl-C (a KeyboardInterrupt from a signal handler, or SIGINT to the command line) stops
  training in the current epoch and keeps the weights of the last completed one; the command
  line exits with status 130 and writes nothing.
- Fits in several threads give bit-for-bit the results they give alone, and one model predicts
  from many threads at once. (The kernels run ``with nogil``, so such fits do run in parallel;
  no timing is asserted here.)
- The training loop allocates nothing per mini-batch, repeated fit/predict/save/load cycles keep
  the resident memory flat, and a float32 ``numpy.memmap`` is trained on in place.
- Files that ``fastmlp.load`` must refuse even though their checksum matches (anyone can
  recompute it), and models that must save although training stopped early.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import tracemalloc
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastmlp
from fastmlp import _kernels
from fastmlp.io import _digest


def classification_data(seed, n_samples=200, n_features=10, n_classes=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)).astype(np.float32)
    return X, np.argmax(X[:, :n_classes] + 0.5 * rng.standard_normal((n_samples, n_classes)), axis=1)


def assert_same_parameters(model, other):
    for ours, theirs in zip(model.weights + model.biases, other.weights + other.biases):
        np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------------------------

DIVERGING = dict(hidden=(8,), activation="relu", epochs=50, learning_rate=0.5, seed=0)


def diverging_data():
    X, _ = classification_data(0)
    return X, 1e3 * X.sum(axis=1)     # large regression targets: relu and identity outputs blow up


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_divergence_is_caught_in_its_epoch_and_stop_keeps_the_epoch_before(backend):
    X, y = diverging_data()
    with pytest.warns(RuntimeWarning, match="training diverged"):
        stopped = fastmlp.fit(X, y, on_divergence="stop", backend=backend, **DIVERGING)
    epoch = stopped.history["diverged"]
    assert 1 < epoch < DIVERGING["epochs"] and len(stopped.history["loss"]) == epoch - 1
    assert all(np.isfinite(p).all() for p in stopped.weights + stopped.biases)
    # The weights kept are exactly those after epoch - 1: the same fit, stopped there.
    before = fastmlp.fit(X, y, backend=backend, **{**DIVERGING, "epochs": epoch - 1})
    assert_same_parameters(stopped, before)
    with pytest.raises(FloatingPointError, match=rf"diverged in epoch {epoch}\b.*smaller learning_rate"):
        fastmlp.fit(X, y, backend=backend, **DIVERGING)


# ---------------------------------------------------------------------------------------------
# Interrupts
# ---------------------------------------------------------------------------------------------

class InterruptAfter:
    """Raise KeyboardInterrupt from a SIGALRM handler ``seconds`` after entering, as Ctrl-C does."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        def interrupt(signum, frame):
            raise KeyboardInterrupt
        self.previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, kind, value, traceback):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        absorbed(kind)


def absorbed(kind):
    """Fail the test, not the whole pytest session, when a KeyboardInterrupt escaped ``fit``."""
    if kind is KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped fit")


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)")
def test_interrupt_mid_epoch_keeps_the_last_completed_epoch():
    X, y = classification_data(1, n_samples=20000, n_features=100)
    options = dict(hidden=(64,), batch_size=10, learning_rate=0.1, seed=0)
    start = fastmlp.fit(X, y, epochs=1, **options)   # fixed starting weights, for the comparison
    options.update(weights=start.weights, biases=start.biases)
    timer = InterruptAfter(0.05)

    def start_the_timer(metrics):   # after the first epoch, however long it took on this machine
        if metrics["epoch"] == 1:
            timer.__enter__()

    try:
        model = fastmlp.fit(X, y, epochs=10_000, callback=start_the_timer, **options)
    finally:
        timer.__exit__(None, None, None)
    epoch = model.history["interrupted"]
    assert epoch >= 2 and len(model.history["loss"]) == epoch - 1   # stopped inside the epoch it was in
    assert_same_parameters(model, fastmlp.fit(X, y, epochs=epoch - 1, **options))


def interrupt_in_epoch(epoch):
    """A callback that raises KeyboardInterrupt in epoch ``epoch``'s bookkeeping, as a Ctrl-C there would."""
    def callback(metrics):
        if metrics["epoch"] == epoch:
            raise KeyboardInterrupt
    return callback


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("validation_fraction", [None, 0.2])
def test_interrupt_in_the_first_epoch_leaves_the_history_empty(backend, validation_fraction):
    X, y = classification_data(2)
    options = dict(hidden=(8,), batch_size=16, seed=0, backend=backend, validation_fraction=validation_fraction)
    start = fastmlp.fit(X, y, epochs=1, **options)
    options.update(weights=start.weights, biases=start.biases)
    model = fastmlp.fit(X, y, epochs=3, callback=interrupt_in_epoch(1), **options)
    assert model.history.pop("interrupted") == 1
    assert model.history == dict.fromkeys(start.history, [])   # every per-epoch list, empty
    assert_same_parameters(model, start)   # the weights it started from


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("options", [dict(optimizer="sgd", momentum=0.9, validation_fraction=0.2),
                                     dict(optimizer="adam", learning_rate=0.01, dropout=0.2),
                                     dict(early_stopping=True, n_iter_no_change=50, validation_fraction=0.2)],
                         ids=["momentum", "adam-dropout", "early-stopping"])
def test_interrupt_after_an_epochs_batches_goes_back_to_the_epoch_before(backend, options):
    # Between its last mini-batch and its end an epoch still checks, scores, records and schedules;
    # an interrupt there leaves nothing of the epoch behind: parameters, optimizer state, history.
    X, y = classification_data(2)
    options = dict(hidden=(8,), batch_size=16, seed=0, backend=backend, **options)
    try:
        model = fastmlp.fit(X, y, epochs=10, callback=interrupt_in_epoch(4), **options)
    except KeyboardInterrupt as error:
        absorbed(type(error))
    before = fastmlp.fit(X, y, epochs=3, **options)
    assert model.history.pop("interrupted") == 4
    assert model.history.keys() == before.history.keys()
    for key, values in model.history.items():
        if key != "seconds":
            assert values == before.history[key], key
    assert_same_parameters(model, before)
    for ours, theirs in zip(model.optimizer_state["state"], before.optimizer_state["state"]):
        np.testing.assert_array_equal(ours, theirs)
    for key in ("step_count", "dropout_counter"):
        assert model.optimizer_state[key] == before.optimizer_state[key]
    # and training on from there is training on from epoch 3
    assert_same_parameters(fastmlp.fit(X, y, epochs=2, warm_start=model, **options),
                           fastmlp.fit(X, y, epochs=2, warm_start=before, **options))


class InterruptingNetwork:
    """The NumPy network, but its ``calls``-th backprop raises KeyboardInterrupt."""

    calls = 0

    def __init__(self, *args, **kwargs):
        self.network = fastmlp.reference.Network(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.network, name)

    def backprop(self, *args):
        type(self).calls -= 1
        if type(self).calls == 0:
            raise KeyboardInterrupt
        return self.network.backprop(*args)


def test_interrupted_lbfgs_keeps_its_last_completed_iteration(monkeypatch):
    pytest.importorskip("scipy")
    X, y = classification_data(3)
    options = dict(hidden=(8,), optimizer="lbfgs", backend="numpy", seed=0, tol=0.0)
    monkeypatch.setattr(InterruptingNetwork, "calls", 12)
    monkeypatch.setitem(fastmlp.model.BACKENDS, "numpy", InterruptingNetwork)
    try:
        model = fastmlp.fit(X, y, epochs=100, **options)
    except KeyboardInterrupt as error:
        absorbed(type(error))
    monkeypatch.undo()
    iteration = model.history["interrupted"]
    assert 1 < iteration < 12 and len(model.history["loss"]) == iteration - 1
    before = fastmlp.fit(X, y, epochs=iteration - 1, **options)
    assert model.history["loss"] == before.history["loss"]
    assert_same_parameters(model, before)


def test_sigint_to_the_command_line_exits_130_and_writes_nothing(tmp_path):
    output = tmp_path / "model.npz"
    command = [sys.executable, "-m", "fastmlp", "train", "--dataset", "fashion-mnist-small",
               "--epochs", "100000", "--threads", "1", "--output", str(output)]
    # Ctrl-C's default action in the child even when this run inherited SIGINT ignored (a shell
    # starts background jobs so), which Python would keep, and never raise KeyboardInterrupt
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in process.stdout:   # wait until training has started
            if line.startswith("epoch"):
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=600)   # only a guard against a hang
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []   # neither the model nor a temporary file


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------

def fit_job(seed):
    X, y = classification_data(seed, n_samples=2000, n_features=50)
    return fastmlp.fit(X, y, hidden=(32, 32), epochs=3, batch_size=16, learning_rate=0.5, seed=seed)


@pytest.mark.parametrize("backend_threads", [1, 2])
def test_fits_in_threads_give_bit_identical_results(threads, backend_threads):
    threads(backend_threads)
    alone = [fit_job(seed) for seed in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(fit_job, range(4)))
    for model, reference in zip(together, alone):
        assert_same_parameters(model, reference)
        assert model.history["loss"] == reference.history["loss"]


def team_job(seed):
    """Batches big enough that train_batch runs in a team of two threads (when the pool is free)."""
    rng = np.random.default_rng(seed)
    sizes = (300, 64, 32, 5)
    X = rng.random((1000, 300), dtype=np.float32)
    Y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 1000)]
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    network = _kernels.Network(weights, [np.zeros(b, np.float32) for b in sizes[1:]],
                               ["sigmoid", "relu", "softmax"], "log_loss", 128, nthreads=2, momentum=0.5)
    network.adaptive_team = False   # every batch as a team (when the pool is free), as counted
    network.bind(X, Y, rng.permutation(1000).astype(np.int64))
    losses = [network.train_batch(start, min(start + 128, 1000), 0.1) for _ in range(2)
              for start in range(0, 1000, 128)]
    return losses, weights


def test_teams_started_from_several_python_threads_do_not_mix():
    """One caller's team holds the pool; the others' batches run alone meanwhile, with the same result."""
    runs = _kernels.team_stats()["runs"]
    alone = [team_job(seed) for seed in range(4)]
    assert _kernels.team_stats()["runs"] - runs == 4 * 16   # every batch ran as a team
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(team_job, range(4)))
    for (losses, weights), (expected_losses, expected_weights) in zip(together, alone):
        assert losses == expected_losses
        for got, want in zip(weights, expected_weights):
            np.testing.assert_array_equal(got, want)


def team_job_in_child(seed):
    """team_job in a forked child, with how many of its batches ran as teams there."""
    runs = _kernels.team_stats()["runs"]
    losses, weights = team_job(seed)
    return losses, weights, _kernels.team_stats()["runs"] - runs, _kernels.team_stats()["workers"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # Python 3.12+: fork of a threaded process
def test_a_forked_child_starts_its_own_workers():
    """The parent's workers do not exist in a fork's child (multiprocessing's default on Linux):
    the child starts its own and trains as a team, with the parent's results."""
    import multiprocessing

    expected_losses, expected_weights = team_job(0)   # the parent's pool has its workers by now
    assert _kernels.team_stats()["workers"] >= 1
    with multiprocessing.get_context("fork").Pool(1) as pool:
        losses, weights, runs, workers = pool.apply(team_job_in_child, (0,))
    assert losses == expected_losses and runs == 16 and workers == 1
    for got, want in zip(weights, expected_weights):
        np.testing.assert_array_equal(got, want)


def test_predict_from_many_threads_on_one_model():
    model = fit_job(0)
    X, _ = classification_data(5, n_samples=3000, n_features=50)   # several 1024-row blocks
    expected = model.predict_proba(X), model.predict(X)
    barrier = threading.Barrier(8)

    def predict(_):
        barrier.wait()   # start together, for as much overlap as possible
        return [(model.predict_proba(X), model.predict(X)) for _ in range(5)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        for results in pool.map(predict, range(8)):
            for proba, labels in results:
                np.testing.assert_array_equal(proba, expected[0])
                np.testing.assert_array_equal(labels, expected[1])


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------

def train_batch_peak(n_batches, batch_size=32):
    """Peak memory traced by tracemalloc while a bound Network trains ``n_batches`` mini-batches."""
    X, y = classification_data(2, n_samples=640, n_features=20)
    Y = np.eye(3, dtype=np.float32)[y]
    model = fastmlp.fit(X, y, hidden=(16, 16), epochs=1, seed=0)
    network = _kernels.Network(model.weights, model.biases, model.layer_activations, model.loss,
                               batch_size, momentum=0.9, nthreads=1)
    order = np.arange(len(X), dtype=np.int64)
    network.bind(X, Y, order)
    starts = [(i * batch_size) % len(X) for i in range(n_batches)]
    network.train_batch(0, batch_size, 0.1)   # warm-up: anything cached on a first call
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for start in starts:
            network.train_batch(start, start + batch_size, 0.1)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_training_loop_allocates_nothing_per_batch():
    few, many = train_batch_peak(10), train_batch_peak(1000)
    assert many <= few + 256, (few, many)   # a returned float at a time, not a buffer per batch
    assert many < 4096


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_in_place_training_matches_a_copy_and_shares_the_optimizer_state(backend):
    X, y = classification_data(3, n_samples=200)
    options = dict(hidden=(8,), epochs=2, batch_size=20, optimizer="adam", learning_rate=0.01, backend=backend)
    start = fastmlp.fit(X, y, seed=0, **options)
    copied = fastmlp.fit(X, y, warm_start=start, seed=1, **options)
    state = start.optimizer_state["state"]
    trained = fastmlp.fit(X, y, warm_start=start, in_place=True, seed=1, **options)
    assert trained is start and len(trained.history["loss"]) == 4
    assert_same_parameters(trained, copied)
    assert all(ours is theirs for ours, theirs in zip(trained.optimizer_state["state"], state))
    for ours, theirs in zip(trained.optimizer_state["state"], copied.optimizer_state["state"]):
        np.testing.assert_array_equal(ours, theirs)


def test_in_place_training_that_diverges_keeps_its_last_completed_epoch():
    X, y = diverging_data()
    model = fastmlp.fit(X, y, **{**DIVERGING, "epochs": 1, "learning_rate": 1e-4})
    start = model.copy()
    with pytest.raises(fastmlp.DivergenceError, match="diverged in epoch"):
        fastmlp.fit(X, y, warm_start=model, in_place=True, **DIVERGING)
    completed = len(model.history["loss"]) - 1   # epochs of this call before the one that diverged
    assert 0 < completed < DIVERGING["epochs"]
    expected = fastmlp.fit(X, y, warm_start=start, **{**DIVERGING, "epochs": completed})
    assert_same_parameters(model, expected)
    assert model.history["loss"] == expected.history["loss"]
    for ours, theirs in zip(model.optimizer_state["state"], expected.optimizer_state["state"]):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("options, message", [({}, "warm_start=None"), ({"optimizer": "lbfgs"}, "optimizer='lbfgs'")])
def test_in_place_needs_a_warm_start_and_a_mini_batch_optimizer(options, message):
    X, y = classification_data(3, n_samples=60)
    warm = fastmlp.fit(X, y, hidden=(4,), epochs=1, seed=0) if options else None
    with pytest.raises(ValueError, match=re.escape(message)):
        fastmlp.fit(X, y, hidden=(4,), warm_start=warm, in_place=True, **options)


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_fit_predict_save_load_cycles_keep_resident_memory_flat(tmp_path):
    X, y = classification_data(3, n_samples=100)

    def cycle():
        model = fastmlp.fit(X, y, hidden=(8,), epochs=1, batch_size=20, seed=0)
        model.predict_proba(X)
        fastmlp.save(model, tmp_path / "model.npz")
        fastmlp.load(tmp_path / "model.npz").predict(X)

    for _ in range(50):   # warm-up: allocator pools, caches, lazily imported modules
        cycle()
    before = resident_bytes()
    for _ in range(300):
        cycle()
    growth = resident_bytes() - before
    assert growth < 2 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB over 300 cycles"


def test_fit_on_a_memmap_trains_in_place(tmp_path):
    X, y = classification_data(4, n_samples=20000, n_features=200)
    X.tofile(tmp_path / "X.f32")
    X_map = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="r", shape=X.shape)
    options = dict(hidden=(16,), epochs=1, batch_size=100, seed=0)
    tracemalloc.start()
    try:
        model = fastmlp.fit(X_map, y, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 8, f"fit allocated {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.1f} MiB of data"
    assert_same_parameters(model, fastmlp.fit(X, y, **options))


def test_absurd_layer_size_is_a_value_error():
    X, y = classification_data(0, n_samples=10)
    with pytest.raises(ValueError, match="hidden"):
        fastmlp.fit(X, y, hidden=(2**40,), epochs=1)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def test_models_that_stopped_early_save_and_load(tmp_path):
    X, y = diverging_data()
    with pytest.warns(RuntimeWarning):
        model = fastmlp.fit(X, y, on_divergence="stop", **DIVERGING)
    fastmlp.save(model, tmp_path / "model.npz")
    assert fastmlp.load(tmp_path / "model.npz").history == model.history


def write_forged(path, arrays, **changes):
    """A model file with ``changes`` to its metadata and a recomputed, matching checksum."""
    metadata = {"format": "fastmlp", "format_version": 1, "layer_sizes": [2, 1], "dtype": "float64",
                "layer_activations": ["identity"], "loss": "quadratic", "l2": 0.0, **changes}
    metadata["sha256"] = _digest(arrays, metadata)
    np.savez(path, metadata=np.array(json.dumps(metadata)), **arrays)


@pytest.mark.parametrize("arrays, changes, message", [
    ({"weights_0": np.full((2, 1), np.nan), "biases_0": np.zeros(1)}, {}, "NaN or infinity"),
    ({"weights_0": np.zeros((2, 1), np.int64), "biases_0": np.zeros(1, np.int64)}, {"dtype": "int64"},
     "float32 or float64"),
    ({"weights_0": np.zeros((2, 1)), "biases_0": np.zeros(1)}, {"layer_sizes": [2**40, 1]}, "shape"),
    ({"weights_0": np.zeros((2, 2)), "biases_0": np.zeros(2), "classes": np.array([3, 1])},
     {"layer_sizes": [2, 2], "layer_activations": ["softmax"], "loss": "log_loss"}, "sorted"),
    ({"weights_0": np.zeros((2, 1)), "biases_0": np.zeros(1)}, {"loss": ["quadratic"]}, "loss"),
    ({"weights_0": np.zeros((2, 1)), "biases_0": np.zeros(1)}, {"history": 3}, "history"),
])
def test_load_rejects_forged_files_with_a_valid_checksum(tmp_path, arrays, changes, message):
    write_forged(tmp_path / "forged.npz", arrays, **changes)
    with pytest.raises(ValueError, match=message):
        fastmlp.load(tmp_path / "forged.npz")


def test_load_rejects_a_header_promising_more_data_than_the_file_holds(tmp_path):
    """NumPy allocates what an array header says before reading: 8 TiB here, a MemoryError."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        with archive.open("weights_0.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(bytes(16))
    with pytest.raises(ValueError, match="shorter than its header says"):
        fastmlp.load(tmp_path / "huge.npz")


def test_load_rejects_a_plain_npy_file(tmp_path):
    np.save(tmp_path / "array.npy", np.arange(3))
    with pytest.raises(ValueError, match="not a .npz archive"):
        fastmlp.load(tmp_path / "array.npy")
