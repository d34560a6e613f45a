"""Training features: optimizers, penalties, dropout, schedules, early stopping, callbacks,
progress, sample and class weights, multi-label, warm starts and L-BFGS."""
import io

import numpy as np
import pytest

import fastmlp
from fastmlp import _kernels, reference
from fastmlp.training import _split


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    return X, y


def team_runs():
    """How many tasks the compiled kernels have run on more than one thread so far."""
    return _kernels.team_stats()["runs"]


def networks(optimizer="sgd", dtype=np.float64, **options):
    """A compiled and a NumPy network from the same weights, bound to the same data."""
    rng = np.random.default_rng(1)
    sizes = (5, 7, 4, 3)
    weights = [rng.standard_normal((a, b)).astype(dtype) * 0.5 for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(b).astype(dtype) * 0.1 for b in sizes[1:]]
    X = rng.standard_normal((23, 5)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 23)]
    built = []
    for backend in (_kernels.Network, reference.Network):
        network = backend([w.copy() for w in weights], [b.copy() for b in biases],
                          ["tanh", "relu", "softmax"], "log_loss", 8, optimizer=optimizer, **options)
        network.bind(X, Y, np.arange(23, dtype=np.int64), options.get("sample_weight_array"))
        built.append(network)
    return built


@pytest.mark.parametrize("split_rows", [True, False], ids=["by-rows", "by-tiles"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer, options", [
    ("sgd", {"momentum": 0.9, "l2": 1e-3}), ("sgd", {"momentum": 0.9}), ("adam", {"dropout": 0.3, "l1": 1e-4}),
    ("nesterov", {"momentum": 0.5, "use_bias": False}), ("sgd", {"l2": 1e-3, "dropout": 0.2}),
    ("sgd", {}),
])
def test_teams_of_any_size_train_bit_identically(split_rows, dtype, optimizer, options):
    """Batches big enough for a team of threads, split by rows or by tiles of each product; a
    hidden layer wider than the batch, so that tiles are cut by columns as well as rows (tiles
    narrower than a row, softmax kept whole). Plain SGD is applied inside the products."""
    rng = np.random.default_rng(4)
    sizes = (60, 300, 24, 7)
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes, sizes[1:])]
    biases = [(rng.standard_normal(b) * 0.1).astype(dtype) for b in sizes[1:]]
    X = rng.standard_normal((117, 60)).astype(dtype)
    Y = np.eye(7, dtype=dtype)[rng.integers(0, 7, 117)]
    sample_weight = rng.uniform(0.5, 2, 117).astype(dtype)
    order = rng.permutation(117).astype(np.int64)
    results = []
    for nthreads in (1, 2, 3):
        network = _kernels.Network([w.copy() for w in weights], [b.copy() for b in biases],
                                   ["sigmoid", "relu", "softmax"], "log_loss", 40, nthreads=nthreads,
                                   optimizer=optimizer, seed=7, **options)
        network.split_rows = split_rows
        network.adaptive_team = False   # every batch as a team, as counted below
        network.bind(X, Y, order, sample_weight)
        runs = team_runs()
        losses = [network.train_batch(start, min(start + 40, 117), 0.05) for start in (0, 40, 80, 0)]
        out = np.empty((117, 7), dtype)
        network.forward(X, out)
        backprop_loss = network.backprop(X[:37], Y[:37])
        # each of the 8 calls (4 batches, 3 blocks of forward, backprop) ran as a team, or alone
        assert team_runs() - runs == (0 if nthreads == 1 else 8)
        results.append((losses, backprop_loss, network.dropout_counter, out,
                        network.weights + network.biases + network.state,
                        network.weight_grads + network.bias_grads + network.deltas))
    for other in results[1:]:
        assert other[:3] == results[0][:3]
        np.testing.assert_array_equal(other[3], results[0][3])
        for got, want in zip(other[4] + other[5], results[0][4] + results[0][5]):
            np.testing.assert_array_equal(got, want)
    assert np.all(np.isfinite(results[0][3])) and not np.array_equal(results[0][4][0], weights[0])


def test_adaptive_teams_try_the_team_first_and_train_bit_identically():
    """By default train_batch times its batches and may run some alone (csrc/fm_team.h,
    fm_team_run_adaptive; its choices are tested in csrc/test_csrc.c): the results stay the same."""
    rng = np.random.default_rng(8)
    sizes = (200, 300, 7)
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    X = rng.standard_normal((400, 200)).astype(np.float32)
    Y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, 400)]
    order = rng.permutation(400).astype(np.int64)
    results = []
    for adaptive in (True, False):
        network = _kernels.Network([w.copy() for w in weights], [np.zeros(n, np.float32) for n in sizes[1:]],
                                   ["relu", "softmax"], "log_loss", 20, nthreads=2, momentum=0.9)
        assert network.adaptive_team   # the default
        network.adaptive_team = adaptive
        network.bind(X, Y, order)
        runs = team_runs()
        losses = [network.train_batch(start, start + 20, 0.05) for _ in range(3) for start in range(0, 400, 20)]
        assert team_runs() - runs >= (4 if adaptive else 60)   # the first try is of the team, 4 batches at least
        results.append((losses, network.weights + network.biases + network.state))
    assert results[0][0] == results[1][0]
    for got, want in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("split_rows", [True, False], ids=["by-rows", "by-tiles"])
def test_a_team_with_more_threads_than_rows_trains_bit_identically(split_rows):
    """Batches of 5 rows, big enough for a team, shared by 8 threads: some have no rows (or tiles)."""
    rng = np.random.default_rng(5)
    sizes = (400, 300, 7)   # 5 rows x 122,100 multiply-adds: over _team_size's bar for either split
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    X = rng.standard_normal((23, 400)).astype(np.float32)
    Y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, 23)]
    order = rng.permutation(23).astype(np.int64)
    results = []
    for nthreads in (1, 8):
        network = _kernels.Network([w.copy() for w in weights], [np.zeros(n, np.float32) for n in sizes[1:]],
                                   ["tanh", "softmax"], "log_loss", 5, nthreads=nthreads, dropout=0.1, seed=3)
        network.split_rows = split_rows
        network.adaptive_team = False
        network.bind(X, Y, order)
        runs = team_runs()
        losses = [network.train_batch(start, min(start + 5, 23), 0.1) for start in range(0, 23, 5)]
        assert team_runs() - runs == (0 if nthreads == 1 else 5)   # the last batch, of 3 rows, too
        out = np.empty((23, 7), np.float32)
        network.forward(X, out)
        results.append((losses, out, network.weights + network.biases))
    assert results[1][0] == results[0][0]
    np.testing.assert_array_equal(results[1][1], results[0][1])
    for got, want in zip(results[1][2], results[0][2]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("optimizer, options", [
    ("sgd", {}), ("sgd", {"momentum": 0.9}), ("nesterov", {"momentum": 0.9}),
    ("adam", {}), ("adam", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}),
    ("adam", {"epsilon": 1e-3, "epsilon_hat": True}),
    ("sgd", {"l1": 0.01, "l2": 0.02}), ("sgd", {"l2": 0.02}), ("sgd", {"use_bias": False}),
    ("sgd", {"dropout": 0.3, "seed": 7}), ("adam", {"dropout": 0.5, "seed": 3, "momentum": 0.5}),
    ("sgd", {"momentum": 0.9, "dropout": 0.3, "seed": 5}), ("sgd", {"momentum": 0.9, "use_bias": False}),
])
def test_compiled_steps_match_the_numpy_update_rules(optimizer, options):
    compiled, numpy_twin = networks(optimizer, **options)
    for _ in range(4):                        # several epochs: state carries across steps
        for start in range(0, 23, 8):
            a = compiled.train_batch(start, min(start + 8, 23), 0.05)
            b = numpy_twin.train_batch(start, min(start + 8, 23), 0.05)
            assert a == pytest.approx(b, rel=1e-10)
    for mine, twin in zip(compiled.weights + compiled.biases, numpy_twin.weights + numpy_twin.biases):
        np.testing.assert_allclose(mine, twin, rtol=1e-10, atol=1e-12)
    assert compiled.step_count == numpy_twin.step_count == 12


@pytest.mark.parametrize("backend", [_kernels.Network, reference.Network], ids=["compiled", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer, options", [
    ("sgd", {"momentum": 0.9}), ("nesterov", {"momentum": 0.9}), ("adam", {"beta1": 0.9, "beta2": 0.9}),
])
def test_optimizer_state_decays_to_zero_not_into_subnormal_numbers(backend, dtype, optimizer, options):
    """An input that is always 0 gives its weights a zero gradient, so their velocity (Adam: both
    moments) only decays, by 0.9 a step. It must reach 0: without a flush it would stay a subnormal
    number forever (0.9 times the smallest one rounds back to it), on which x86 CPUs compute many
    times slower. Every other state value stays normal or 0, and those weights do not move."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((8, 3)).astype(dtype)
    X[:, 0] = 0
    Y = np.eye(2, dtype=dtype)[rng.integers(0, 2, 8)]
    weights = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((4, 2)).astype(dtype)]
    biases = [np.zeros(4, dtype), np.zeros(2, dtype)]
    network = backend(weights, biases, ["tanh", "softmax"], "log_loss", 8, optimizer=optimizer, **options)
    network.bind(X, Y, np.arange(8, dtype=np.int64))
    smallest_normal = np.finfo(dtype).tiny
    for state in network.state:
        state[...] = 3 * smallest_normal     # 11 steps from the subnormal numbers
    first_row = network.weights[0][0].copy()
    for _ in range(40):
        network.train_batch(0, 8, 0.01)
    for state in network.state:
        assert not ((state != 0) & (np.abs(state) < smallest_normal)).any()
    first_moments = network.state[:4]         # weights[0]'s velocity or first moment is the first
    assert (first_moments[0][0] == 0).all() and (first_moments[0][1:] != 0).all()
    if optimizer == "adam":
        assert (network.state[4][0] == 0).all()
    np.testing.assert_array_equal(network.weights[0][0], first_row)


def test_adam_kernel_matches_the_paper_update():
    rng = np.random.default_rng(2)
    params, grads = rng.standard_normal(11), rng.standard_normal(11)
    state = {name: (params.copy(), np.zeros(11), np.zeros(11)) for name in ("compiled", "twin")}
    for t in range(1, 4):
        _kernels.adam_update_inplace(*state["compiled"][:1], grads, *state["compiled"][1:], 0.01, t)
        reference.adam_update_inplace(*state["twin"][:1], grads, *state["twin"][1:], 0.01, t)
    m, v, p = np.zeros(11), np.zeros(11), params.copy()
    for t in range(1, 4):                     # Kingma & Ba, Algorithm 1, written out
        m = 0.9 * m + 0.1 * grads
        v = 0.999 * v + 0.001 * grads ** 2
        p = p - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(state["compiled"][0], p, rtol=1e-13)
    np.testing.assert_allclose(state["twin"][0], p, rtol=1e-13)


def test_nesterov_kernel_matches_its_rule():
    rng = np.random.default_rng(3)
    params, grads, velocity = rng.standard_normal(9), rng.standard_normal(9), rng.standard_normal(9)
    p, v = params.copy(), velocity.copy()
    _kernels.sgd_update_inplace(p, grads, v, 0.1, 0.9, nesterov=True)
    expected_v = 0.9 * velocity - 0.1 * grads
    np.testing.assert_allclose(v, expected_v, rtol=1e-14)
    np.testing.assert_allclose(p, params + 0.9 * expected_v - 0.1 * grads, rtol=1e-14)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9])
def test_dropout_masks_agree_and_keep_the_right_fraction(keep):
    compiled, twin = np.empty(20000), np.empty(20000)
    _kernels.dropout_mask(compiled, 5, 123, keep)
    reference.dropout_mask(twin, 5, 123, keep)
    np.testing.assert_array_equal(compiled, twin)
    assert set(np.unique(compiled)) == {0.0, 1 / keep}
    assert abs(np.mean(compiled > 0) - keep) < 0.02


def test_dropout_is_off_at_predict_time(data):
    X, y = data
    model = fastmlp.fit(X, y, hidden=(16,), activation="relu", loss="log_loss", dropout=0.5, epochs=3,
                        learning_rate=0.1, batch_size=16, seed=0)
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))
    manual = reference.Network(model.weights, model.biases, model.layer_activations, model.loss, len(X))
    np.testing.assert_allclose(model.predict_proba(X), manual._forward(X.astype(np.float32))[-1], rtol=1e-5)


def test_gradients_with_l1_and_without_bias_match_finite_differences(data):
    X, y = data
    model = fastmlp.fit(X[:20], y[:20], hidden=(5,), activation="tanh", loss="log_loss", epochs=1, l1=0.01,
                        l2=0.02, use_bias=False, dtype="float64", seed=0, learning_rate=0.1)
    weight_grads, bias_grads = model.backprop(X[:20], y[:20])
    assert all(not g.any() for g in bias_grads) and all(not b.any() for b in model.biases)
    w, eps = model.weights[0], 1e-6
    numeric = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        saved = w[index]
        w[index] = saved + eps
        plus = model.cost(X[:20], y[:20])
        w[index] = saved - eps
        minus = model.cost(X[:20], y[:20])
        w[index] = saved
        numeric[index] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(weight_grads[0], numeric, rtol=1e-6, atol=1e-8)


def test_early_stopping_stops_and_restores_the_best_epoch(data):
    X, y = data
    options = dict(hidden=(64,), activation="relu", loss="log_loss", learning_rate=0.5, batch_size=8, seed=4,
                   validation_data=(X[90:], y[90:]))
    stopped = fastmlp.fit(X[:90], y[:90], epochs=200, early_stopping=True, n_iter_no_change=5, **options)
    best = stopped.history["best_epoch"]
    assert stopped.history["stopped_early"] == best + 5 < 200
    assert np.argmin(stopped.history["val_loss"]) + 1 == best
    replay = fastmlp.fit(X[:90], y[:90], epochs=best, **options)
    for mine, theirs in zip(stopped.weights, replay.weights):
        np.testing.assert_array_equal(mine, theirs)


def test_validation_fraction_is_stratified():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    Y = np.eye(3)[y]
    X = np.arange(100.0)[:, None]
    X_train, Y_train, _, (X_val, Y_val, _) = _split(X, Y, None, 0.2, "classification", np.random.default_rng(0))
    assert Y_val.sum(axis=0).tolist() == [10, 6, 4]
    assert len(X_train) == 80 and not set(X_train.ravel()) & set(X_val.ravel())


def test_learning_rate_schedules(data):
    X, y = data
    common = dict(hidden=(4,), epochs=6, learning_rate=0.8, batch_size=30, seed=0)
    step = fastmlp.fit(X, y, lr_schedule="step", lr_step=2, lr_decay=0.5, **common).history["learning_rate"]
    np.testing.assert_allclose(step, [0.8, 0.8, 0.4, 0.4, 0.2, 0.2])
    inverse = fastmlp.fit(X, y, lr_schedule="invscaling", power_t=0.5, **common).history["learning_rate"]
    np.testing.assert_allclose(inverse, [0.8] + [0.8 / np.sqrt(120 * e + 1) for e in range(1, 6)])
    # tol so large that only epoch 1 (against infinity) counts as an improvement: after it the
    # rate drops every lr_patience epochs
    plateau = fastmlp.fit(X, y, lr_schedule="plateau", lr_patience=2, lr_decay=0.1, tol=1e9, **common)
    np.testing.assert_allclose(plateau.history["learning_rate"], [0.8, 0.8, 0.8, 0.08, 0.08, 0.008])


def test_callback_receives_metrics_and_can_stop(data):
    X, y = data
    seen = []
    model = fastmlp.fit(X, y, hidden=(4,), epochs=10, validation_data=(X, y), seed=0,
                        callback=lambda metrics: seen.append(metrics) or metrics["epoch"] == 3)
    assert [m["epoch"] for m in seen] == [1, 2, 3] and len(model.history["loss"]) == 3
    assert {"loss", "val_loss", "val_accuracy", "seconds", "learning_rate"} <= set(seen[0])
    assert model.history["stopped_by_callback"] == 3


def test_progress_writes_one_line_per_epoch_when_not_a_terminal(data, capsys):
    X, y = data
    fastmlp.fit(X, y, hidden=(4,), epochs=3, seed=0, verbose=1, validation_data=(X, y))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("\r" not in line for line in lines)
    assert lines[-1].startswith("epoch 3/3: loss ") and "samples/s" in lines[-1] and "0.0 s left" in lines[-1]
    fastmlp.fit(X, y, hidden=(4,), epochs=2, seed=0, verbose=0)
    assert capsys.readouterr().out == ""


def test_progress_redraws_a_live_line_on_a_terminal():
    from fastmlp._progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    stream = Terminal()
    progress = Progress(1, 2, 1000, stream)
    progress.REDRAW_SECONDS = 0
    progress.batch(1, 500, started=0.0)
    progress.epoch({"epoch": 1, "loss": 0.5, "seconds": 0.1})
    text = stream.getvalue()
    assert "\repoch 1/2: 500/1000 samples" in text and "epoch 1/2: loss 0.5000" in text


def test_integer_sample_weights_equal_repeated_samples(data):
    X, y = data
    X, y = X[:30], y[:30]
    counts = np.random.default_rng(5).integers(1, 4, 30)
    options = dict(hidden=(5,), epochs=3, learning_rate=0.5, seed=0, dtype="float64", shuffle=False)
    weighted = fastmlp.fit(X, y, sample_weight=counts, batch_size=30, **options)
    repeated = fastmlp.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts), batch_size=int(counts.sum()),
                           **options)
    for mine, theirs in zip(weighted.weights, repeated.weights):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_balanced_class_weight_is_sample_weight(data):
    X, y = data
    counts = np.bincount(y)
    per_sample = len(y) / (len(counts) * counts[y])
    options = dict(hidden=(5,), epochs=2, seed=0, dtype="float64")
    a = fastmlp.fit(X, y, class_weight="balanced", **options)
    b = fastmlp.fit(X, y, sample_weight=per_sample, **options)
    np.testing.assert_array_equal(a.weights[0], b.weights[0])
    with pytest.raises(ValueError, match="class_weight names labels not in y"):
        fastmlp.fit(X, y, class_weight={7: 2.0}, **options)


def test_per_layer_activations(data):
    X, y = data
    model = fastmlp.fit(X, y, hidden=(6, 5), activation=["relu", "tanh"], loss="log_loss", epochs=1, seed=0)
    assert model.layer_activations == ["relu", "tanh", "softmax"]
    with pytest.raises(ValueError, match="activation lists 1 names for 2 hidden layers"):
        fastmlp.fit(X, y, hidden=(6, 5), activation=["relu"])


def test_multilabel_classification(data):
    X, _ = data
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 1] > 1]).astype(int)
    model = fastmlp.fit(X, Y, hidden=(16,), activation="relu", epochs=60, learning_rate=0.5, batch_size=10, seed=0)
    assert model.task == "multilabel" and model.loss == "cross_entropy"
    assert model.layer_activations[-1] == "sigmoid"
    assert model.predict(X).shape == Y.shape and set(np.unique(model.predict(X))) <= {0, 1}
    assert model.score(X, Y) > 0.8
    assert model.predict_proba(X).shape == Y.shape


@pytest.mark.parametrize("optimizer, momentum", [("sgd", 0.9), ("adam", 0.0)])
def test_warm_start_continues_the_optimizer_state(data, optimizer, momentum):
    X, y = data
    options = dict(hidden=(5,), learning_rate=0.05, optimizer=optimizer, momentum=momentum, batch_size=16,
                   seed=0, dtype="float64", shuffle=False)
    whole = fastmlp.fit(X, y, epochs=4, **options)
    first = fastmlp.fit(X, y, epochs=2, **options)
    first_weights = [w.copy() for w in first.weights]
    second = fastmlp.fit(X, y, epochs=2, warm_start=first, **options)
    for mine, theirs in zip(second.weights, whole.weights):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    assert len(second.history["loss"]) == 4
    for before, after in zip(first_weights, first.weights):   # the warm-start model is not changed
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lbfgs_minimises_the_cost_in_the_models_dtype(dtype):
    pytest.importorskip("scipy")
    X = np.array([[3, 5], [5, 1], [10, 2]]) / np.array([10, 5])       # Welch Labs' data, scaled
    y = np.array([75, 82, 93]) / 100
    model = fastmlp.fit(X, y, hidden=(3,), output_activation="sigmoid", optimizer="lbfgs", epochs=200,
                        dtype=dtype, seed=0, tol=0)
    assert model.weights[0].dtype == np.dtype(dtype)
    assert model.history["loss"][-1] < 1e-4 < model.history["loss"][0]


def test_lbfgs_stops_once_no_gradient_component_exceeds_tol():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 4))
    y = np.tanh(X @ rng.standard_normal(4))
    options = dict(hidden=(5,), activation="tanh", optimizer="lbfgs", epochs=1000, dtype="float64", seed=0)
    loose = fastmlp.fit(X, y, tol=1e-2, **options)
    tight = fastmlp.fit(X, y, tol=1e-4, **options)
    largest = [max(np.abs(g).max() for grads in model.backprop(X, y) for g in grads) for model in (loose, tight)]
    assert 1e-4 < largest[0] <= 1e-2 and largest[1] <= 1e-4   # the loose fit stopped when it got there
    assert len(loose.history["loss"]) < len(tight.history["loss"]) < 1000


def test_classes_may_be_given_when_a_chunk_lacks_some(data):
    X, y = data
    chunk = y == 0
    model = fastmlp.fit(X[chunk], y[chunk], classes_=[0, 1, 2], hidden=(4,), epochs=1, seed=0)
    assert model.classes_.tolist() == [0, 1, 2] and model.layer_sizes[-1] == 3
    model = fastmlp.fit(X, y, warm_start=model, epochs=1)
    assert len(model.history["loss"]) == 2
    with pytest.raises(ValueError, match="labels not seen during fit"):
        fastmlp.fit(X, y, classes_=[0, 1], hidden=(4,), epochs=1)


def test_warm_start_must_be_a_model(data):
    X, y = data
    with pytest.raises(TypeError, match="warm_start must be a fitted fastmlp.MLP, got dict"):
        fastmlp.fit(X, y, warm_start={})
