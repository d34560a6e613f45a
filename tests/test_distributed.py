"""Data-parallel training on Dask (fastmlp.distributed): equality with single-machine training
where the algorithm is the same, accuracy where it is not, and recovery from a lost worker; the
scikit-learn estimators on a dask X, with dask-ml's Incremental and GridSearchCV on the cluster."""
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import fastmlp
import fastmlp.distributed
from fastmlp import MLPClassifier, MLPRegressor
from fastmlp.distributed import _order
from fastmlp.estimators import ConvergenceWarning


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 8))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    return X, y


def parameters(model):
    return model.weights + model.biases


def assert_same_parameters(first, second, **tolerance):
    for a, b in zip(parameters(first), parameters(second)):
        if tolerance:
            np.testing.assert_allclose(a, b, **tolerance)
        else:
            np.testing.assert_array_equal(a, b)


def test_importing_fastmlp_does_not_import_dask():
    code = "import sys, fastmlp; fastmlp.distributed.fit; sys.exit('dask' in sys.modules or 'distributed' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_without_dask_fit_names_the_extra(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "fastmlp\[dask\]"'):
        fastmlp.distributed.fit(*data)


@pytest.mark.parametrize("options, message", [({"average_every": 0}, "average_every must be >= 1, got 0"),
                                              ({"validation_fraction": 0.1}, "does not support validation_fraction"),
                                              ({"epochs_": 1}, "unexpected keyword argument 'epochs_'")])
def test_invalid_arguments(data, options, message):
    pytest.importorskip("distributed")
    with pytest.raises((ValueError, TypeError), match=message):
        fastmlp.distributed.fit(*data, **options)


def test_lbfgs_matches_single_machine(client, data):
    # The cost and gradient are sums over the shards: only the summation order differs.
    da = pytest.importorskip("dask.array")
    X, y = data
    options = dict(hidden=(7,), optimizer="lbfgs", epochs=10, seed=0, dtype="float64")
    single = fastmlp.fit(X, y, **options)
    for X_in in (X, da.from_array(X, chunks=(150, 4))):   # 2 blocks; 3 uneven row chunks
        model = fastmlp.distributed.fit(X_in, y, client=client, **options)
        assert_same_parameters(model, single, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(model.history["loss"], single.history["loss"], rtol=1e-9)


@pytest.mark.parametrize("options", [{}, {"momentum": 0.9}, {"optimizer": "nesterov", "momentum": 0.9}])
def test_synchronous_sgd_is_sgd_on_the_global_batch(client, data, options):
    # Two shards of 200 rows, global batch 40: each round every shard steps on 20 of its rows, and
    # the mean of the two updated parameters (and velocities, which are linear in the gradient
    # too) is one step on the 40 rows together. Replay the same batches, epoch by epoch, on one
    # machine: shard k's epoch order comes from (seed, epoch, k).
    X, y = data
    options = dict(options, hidden=(7,), batch_size=40, learning_rate=0.5, seed=3, dtype="float64")
    model = fastmlp.distributed.fit(X, y, client=client, epochs=2, **options)
    single = None
    for epoch in (1, 2):
        orders = [k * 200 + _order(3, epoch, k, 200, True) for k in (0, 1)]
        rows = np.concatenate([np.concatenate([order[j:j + 20] for order in orders]) for j in range(0, 200, 20)])
        single = fastmlp.fit(X[rows], y[rows], epochs=1, shuffle=False, warm_start=single, **options)
    assert_same_parameters(model, single, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.history["loss"], single.history["loss"], rtol=1e-12)
    assert model.history["rounds"] == [10, 20]


def test_dask_and_numpy_inputs_give_the_same_model(client, data):
    da = pytest.importorskip("dask.array")
    X, y = data
    weights = np.random.default_rng(1).uniform(0.5, 2, len(X))
    options = dict(hidden=(5,), epochs=2, batch_size=50, optimizer="adam", learning_rate=0.01, seed=0,
                   average_every=3, sample_weight=weights, client=client)
    from_numpy = fastmlp.distributed.fit(X, y, **options)
    from_dask = fastmlp.distributed.fit(da.from_array(X, chunks=(200, 3)), da.from_array(y, chunks=100),
                                        **dict(options, sample_weight=da.from_array(weights, chunks=50)))
    assert_same_parameters(from_numpy, from_dask)
    assert isinstance(from_dask, fastmlp.MLP) and from_dask.history["loss"][1] < from_dask.history["loss"][0]
    assert from_dask.optimizer_state["optimizer"] == "adam"


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_uint8_chunks_with_input_scale_train_as_the_prescaled_floats(client, data, tmp_path, optimizer):
    da = pytest.importorskip("dask.array")
    X, y = data
    pixels = np.clip(np.rint(X * 40 + 128), 0, 255).astype(np.uint8)
    floats = pixels.astype(np.float32) * np.float32(1 / 255)
    mapped = np.memmap(tmp_path / "X.u8", np.uint8, "w+", shape=pixels.shape)
    mapped[:] = pixels
    options = dict(hidden=(5,), epochs=2, batch_size=40, seed=0, optimizer=optimizer, client=client,
                   validation_data=(pixels[:50], y[:50]))
    scaled = fastmlp.distributed.fit(da.from_array(mapped, chunks=(200, 8)), da.from_array(y, chunks=200),
                                     input_scale=1 / 255, **options)
    expected = fastmlp.distributed.fit(da.from_array(floats, chunks=(200, 8)), da.from_array(y, chunks=200),
                                       **dict(options, validation_data=(floats[:50], y[:50])))
    assert_same_parameters(scaled, expected)
    assert scaled.input_scale == 1 / 255
    np.testing.assert_array_equal(scaled.predict(pixels), expected.predict(floats))


@pytest.mark.slow   # the longest default test (Fashion-MNIST epochs on the cluster): CI runs it with -m slow
def test_local_sgd_reaches_single_machine_accuracy(client):
    X_train, y_train, X_test, y_test, _ = fastmlp.datasets.load_fashion_mnist_or_small()
    X, y = X_train[:12000] / 255.0, y_train[:12000]
    options = dict(hidden=(32,), activation="relu", loss="log_loss", optimizer="adam", learning_rate=1e-3,
                   epochs=10, batch_size=100, seed=0)
    single = fastmlp.fit(X, y, **options).score(X_test / 255.0, y_test)
    model = fastmlp.distributed.fit(X, y, client=client, average_every=10, **options)
    assert model.score(X_test / 255.0, y_test) >= single - 0.005


def test_a_killed_worker_changes_nothing(client, data):
    # Kill one worker's process during epoch 2; its shard and tasks are recomputed elsewhere.
    X, y = data
    options = dict(hidden=(7,), epochs=4, batch_size=20, learning_rate=0.5, seed=0, average_every=2)
    undisturbed = fastmlp.distributed.fit(X, y, client=client, **options)
    pids = client.run(os.getpid)
    address = sorted(pids)[0]
    killed = []
    killer = threading.Timer(0.05, lambda: killed.append(os.kill(pids[address], signal.SIGKILL) or time.perf_counter()))

    def kill_after_first_epoch(metrics):
        if metrics["epoch"] == 1:
            killer.start()

    disturbed = fastmlp.distributed.fit(X, y, client=client, callback=kill_after_first_epoch, **options)
    finished = time.perf_counter()
    killer.join()
    assert killed[0] < finished
    client.wait_for_workers(2, timeout=60)
    assert pids[address] not in client.run(os.getpid).values()
    assert_same_parameters(disturbed, undisturbed)
    assert disturbed.history["loss"] == undisturbed.history["loss"]


def test_divergence_names_the_round(client, data):
    X, _ = data
    y = 1e3 * X.sum(axis=1)      # large regression targets: relu and identity outputs blow up
    options = dict(hidden=(8,), activation="relu", epochs=50, learning_rate=0.5, seed=0, client=client)
    with pytest.raises(FloatingPointError, match=r"diverged in round \d+ \(epoch \d+\).*smaller learning_rate"):
        fastmlp.distributed.fit(X, y, **options)
    with pytest.warns(RuntimeWarning, match="last finite round"):
        model = fastmlp.distributed.fit(X, y, on_divergence="stop", **options)
    assert len(model.history.get("loss", [])) == model.history["diverged"] - 1
    assert all(np.isfinite(p).all() for p in parameters(model))


def test_validation_early_stopping_and_interrupt(client, data):
    X, y = data
    options = dict(hidden=(7,), batch_size=50, learning_rate=0.5, seed=0, client=client)
    model = fastmlp.distributed.fit(X[:300], y[:300], epochs=30, validation_data=(X[300:], y[300:]),
                                    early_stopping=True, n_iter_no_change=2, tol=10.0, **options)
    assert model.history["stopped_early"] == 3 and model.history["best_epoch"] == 1
    assert len(model.history["val_accuracy"]) == len(model.history["loss"])

    def interrupt(metrics):
        if metrics["epoch"] == 2:
            raise KeyboardInterrupt

    interrupted = fastmlp.distributed.fit(X, y, epochs=5, callback=interrupt, **options)
    assert interrupted.history["interrupted"] == 2
    assert_same_parameters(interrupted, fastmlp.distributed.fit(X, y, epochs=2, **options))


# -- the scikit-learn estimators on Dask -----------------------------------------------------------

def fitted(estimator, *args, **kwargs):
    """``estimator.fit(*args)``, checking the ConvergenceWarning of a deliberately short run."""
    with pytest.warns(ConvergenceWarning):
        return estimator.fit(*args, **kwargs)


def assert_same_estimator(first, second, **tolerance):
    for a, b in zip(first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_):
        np.testing.assert_allclose(a, b, **tolerance)
    np.testing.assert_allclose(first.loss_curve_, second.loss_curve_, **tolerance)
    assert first.n_iter_ == second.n_iter_ and first.t_ == second.t_


def test_estimator_lbfgs_on_dask_is_the_local_estimator(client, data):
    # Full-batch L-BFGS from the same Glorot weights (random_state): the cost and gradient are sums
    # over 3 uneven row chunks, so only the summation order differs from the local estimator.
    da = pytest.importorskip("dask.array")
    X, y = data
    options = dict(hidden_layer_sizes=(7,), solver="lbfgs", max_iter=6, random_state=0)
    local = fitted(MLPClassifier(**options), X, y)
    on_dask = fitted(MLPClassifier(**options), da.from_array(X, chunks=(150, 4)), da.from_array(y, chunks=100))
    assert_same_estimator(on_dask, local, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(on_dask.classes_, [0, 1, 2])
    assert on_dask.n_features_in_ == 8 and on_dask.n_iter_ == len(on_dask.loss_curve_) == 6
    predicted = on_dask.predict(da.from_array(X, chunks=(100, 8)))     # block by block on the workers
    assert type(predicted) is np.ndarray
    np.testing.assert_array_equal(predicted, local.predict(X))
    np.testing.assert_allclose(on_dask.predict_proba(da.from_array(X, chunks=50)), local.predict_proba(X))
    assert on_dask.score(da.from_array(X, chunks=50), da.from_array(y, chunks=50)) == local.score(X, y)


@pytest.mark.parametrize("options", [
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1, momentum=0.5, nesterovs_momentum=False,
         tol=10.0, n_iter_no_change=1, max_iter=8),
    dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, max_iter=3),
    dict(solver="adam", early_stopping=True, validation_fraction=0.2, alpha=0.01, max_iter=4)],
    ids=["sgd-adaptive", "nesterov-invscaling", "adam-early-stopping"])
def test_estimator_on_one_chunk_is_the_local_estimator(client, data, options):
    # One chunk is one shard whose rounds are the local mini-batches (shuffle=False, batch_size
    # the global batch): the same steps from the same weights, with the same optimizer, schedule,
    # stopping rule and held-out rows. "adaptive" divides the step size by 5 after each epoch here.
    da = pytest.importorskip("dask.array")
    X, y = data
    options = dict(options, hidden_layer_sizes=(7,), batch_size=50, shuffle=False, random_state=0)
    with warnings.catch_warnings(record=True) as local_warnings:
        warnings.simplefilter("always", ConvergenceWarning)
        local = MLPClassifier(**options).fit(X, y)
    with warnings.catch_warnings(record=True) as dask_warnings:
        warnings.simplefilter("always", ConvergenceWarning)
        on_dask = MLPClassifier(**options).fit(da.from_array(X, chunks=(400, 8)), y)
    assert [str(w.message) for w in dask_warnings] == [str(w.message) for w in local_warnings]
    assert_same_estimator(on_dask, local, rtol=1e-12, atol=1e-14)
    assert on_dask._learning_rate == local._learning_rate and on_dask.n_iter_ == len(on_dask.loss_curve_)
    assert on_dask.validation_scores_ == local.validation_scores_
    if options.get("learning_rate") == "adaptive":
        assert local._learning_rate < options["learning_rate_init"] / 5


def test_estimator_averages_the_chunks_every_average_every_steps(client, data):
    # 4 chunks of 100 rows, global batch 40: each chunk steps on 10 rows, 10 steps an epoch,
    # averaged every 5 (local SGD), so 2 rounds an epoch.
    da = pytest.importorskip("dask.array")
    X, y = data
    clf = fitted(MLPClassifier((7,), solver="adam", learning_rate_init=0.01, batch_size=40, max_iter=3,
                               average_every=5, random_state=0), da.from_array(X, chunks=(100, 8)), y)
    assert clf.model_.history["rounds"] == [2, 4, 6] and clf.n_iter_ == len(clf.loss_curve_) == 3
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] and clf.t_ == 3 * len(X)
    with pytest.raises(ValueError, match="average_every must be >= 1, got 0"):
        clf.set_params(average_every=0).fit(X, y)


def test_regressor_with_dask_sample_weight_and_warm_start(client, data):
    da = pytest.importorskip("dask.array")
    X, _ = data
    y = X[:, 0] - X[:, 1] * X[:, 2]
    weights = np.random.default_rng(1).uniform(0.5, 2, len(X))
    options = dict(hidden_layer_sizes=(6,), activation="tanh", solver="lbfgs", max_iter=6, random_state=0)
    X_dask = da.from_array(X, chunks=(100, 8))
    local = fitted(MLPRegressor(**options), X, y, sample_weight=weights)
    on_dask = fitted(MLPRegressor(**options), X_dask, da.from_array(y, chunks=200),
                     sample_weight=da.from_array(weights, chunks=400))
    assert_same_estimator(on_dask, local, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(on_dask.score(X_dask, y, sample_weight=weights), local.score(X, y, weights))
    fitted(on_dask.set_params(warm_start=True), X_dask, y)      # continues from the fitted weights
    assert on_dask.loss_curve_[0] < local.loss_curve_[0]
    with pytest.raises(ValueError, match="X has 3 features, but MLPRegressor is expecting 8"):
        on_dask.fit(X_dask[:, :3], y)


def test_estimator_rejects_a_dask_x_it_cannot_train_on(client, data, monkeypatch):
    da = pytest.importorskip("dask.array")
    import distributed
    X, y = data
    X_dask = da.from_array(X, chunks=100)
    clf = MLPClassifier((4,), max_iter=1)
    for bad, message in [(X_dask[:, 0], "X must be a 2-D dask array"),
                         (X_dask.astype(str), "X must hold numbers"),
                         (X_dask[X_dask[:, 0] > 0], r"unknown chunk sizes: call X.compute_chunk_sizes\(\)")]:
        with pytest.raises(ValueError, match=message):
            clf.fit(bad, y)
    with pytest.raises(ValueError, match="dask_ml.wrappers.Incremental"):
        clf.partial_fit(X_dask, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 8"):
        fitted(clf, X, y).predict(X_dask[:, :3])

    def no_client():
        raise ValueError("No clients found")
    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(ValueError, match="create a distributed.Client first"):
        clf.fit(X_dask, y)


def test_incremental_streams_the_chunks_through_partial_fit(client, data):
    # dask-ml's Incremental calls partial_fit on one chunk after another (NumPy blocks, on the
    # workers): the same as calling it on the chunks in order here.
    da = pytest.importorskip("dask.array")
    Incremental = pytest.importorskip("dask_ml.wrappers").Incremental
    X, y = data
    options = dict(hidden_layer_sizes=(7,), learning_rate_init=0.01, random_state=0)
    incremental = Incremental(MLPClassifier(**options), shuffle_blocks=False)
    incremental.fit(da.from_array(X, chunks=(100, 8)), da.from_array(y, chunks=100), classes=[0, 1, 2])
    local = MLPClassifier(**options)
    for start in range(0, len(X), 100):
        local.partial_fit(X[start:start + 100], y[start:start + 100], classes=[0, 1, 2])
    assert_same_estimator(incremental.estimator_, local, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(incremental.predict(da.from_array(X, chunks=100)).compute(), local.predict(X))


def test_grid_search_runs_its_fits_on_the_cluster(client, data):
    # scikit-learn's GridSearchCV with joblib's dask backend: every fit is a task on the workers,
    # with the results of the same search run in this process.
    joblib = pytest.importorskip("joblib")
    GridSearchCV = pytest.importorskip("sklearn.model_selection").GridSearchCV
    from sklearn.base import clone
    import distributed
    X, y = data
    search = GridSearchCV(MLPClassifier((7,), solver="lbfgs", max_iter=20, random_state=0),
                          {"alpha": [1e-4, 1.0], "activation": ["tanh", "relu"]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        here = clone(search).fit(X, y)
        with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as tasks:
            search.fit(X, y)
    assert any("fit_and_score" in str(task["key"]) for task in tasks.data)   # joblib batches them
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], here.cv_results_["mean_test_score"])
    assert search.best_params_ == here.best_params_
