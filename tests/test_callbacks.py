"""The Trainer's callbacks: each one alone, combined, written by a user, and what fit makes of its
keyword arguments."""
import csv

import numpy as np
import pytest

import fastmlp
from fastmlp import callbacks as cb


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


OPTIONS = dict(hidden=(4,), batch_size=16, learning_rate=0.5, seed=0)


class Recorder(cb.Callback):
    """Records the events it sees."""

    def __init__(self, batches=False):
        self.events, self.batches = [], batches

    def wants_batches(self):
        return self.batches

    def on_train_begin(self):
        self.events.append("begin")

    def on_epoch_begin(self, epoch):
        self.events.append(("epoch", epoch))

    def on_batch_end(self, epoch, samples_done):
        self.events.append(("batch", epoch, samples_done))

    def on_epoch_end(self, epoch, logs):
        self.events.append(("end", epoch, sorted(logs)))

    def on_train_end(self):
        self.events.append("finish")


def test_events_arrive_in_order_and_batches_only_when_asked(data):
    X, y = data
    quiet, loud = Recorder(), Recorder(batches=True)
    fastmlp.fit(X, y, epochs=2, callbacks=[quiet, loud], **OPTIONS)
    keys = ["epoch", "learning_rate", "loss", "penalty", "seconds"]
    assert quiet.events == ["begin", ("epoch", 1), ("end", 1, keys), ("epoch", 2), ("end", 2, keys), "finish"]
    batches = [event for event in loud.events if event[0] == "batch"]
    assert batches[:8] == [("batch", 1, n) for n in (16, 32, 48, 64, 80, 96, 112, 120)] and len(batches) == 16


def test_a_user_callback_changes_the_learning_rate_and_stops(data):
    X, y = data

    class HalveThenStop(cb.Callback):
        def on_epoch_end(self, epoch, logs):
            self.trainer.learning_rate /= 2
            if epoch == 3:
                self.trainer.stop_training = True

    model = fastmlp.fit(X, y, epochs=10, callbacks=[HalveThenStop()], **OPTIONS)
    assert model.history["learning_rate"] == [0.5, 0.25, 0.125]


def test_a_callback_and_the_shorthand_train_the_same_weights(data):
    X, y = data
    options = dict(OPTIONS, epochs=12, validation_fraction=0.25)
    cases = [(dict(early_stopping=True, n_iter_no_change=2, tol=0.0), [cb.EarlyStopping(patience=2, min_delta=0.0)]),
             (dict(lr_schedule="step", lr_decay=0.5, lr_step=3), [cb.StepDecay(0.5, 3)]),
             (dict(lr_schedule="invscaling", power_t=0.4), [cb.InverseScaling(0.4)]),
             (dict(lr_schedule="plateau", lr_patience=1, tol=1e9), [cb.ReduceLROnPlateau(factor=0.5, patience=1,
                                                                                         min_delta=1e9)])]
    for shorthand, objects in cases:
        a = fastmlp.fit(X, y, **shorthand, **options)
        b = fastmlp.fit(X, y, callbacks=objects, **options)
        assert a.history["learning_rate"] == b.history["learning_rate"], shorthand
        assert a.history.get("best_epoch") == b.history.get("best_epoch"), shorthand
        for p, q in zip(a.weights + a.biases, b.weights + b.biases):
            np.testing.assert_array_equal(p, q)


def test_learning_rate_scheduler_sets_each_epochs_rate(data):
    X, y = data
    model = fastmlp.fit(X, y, epochs=4, callbacks=[cb.LearningRateScheduler(lambda epoch, rate: 0.1 * epoch)],
                        **OPTIONS)
    np.testing.assert_allclose(model.history["learning_rate"], [0.1, 0.2, 0.3, 0.4])


def test_adaptive_rate_divides_by_five_then_stops(data):
    X, y = data
    # tol so large that no epoch improves: every patience + 1 epochs the rate is divided by 5
    model = fastmlp.fit(X, y, epochs=100, callbacks=[cb.AdaptiveLearningRate(monitor="loss", patience=1, tol=1e9)],
                        **OPTIONS)
    rates = model.history["learning_rate"]
    assert rates[:6] == pytest.approx([0.5, 0.5, 0.5, 0.1, 0.1, 0.02])
    assert model.history["stopped_early"] == len(rates) and rates[-1] <= 1e-6


def test_checkpoint_saves_the_best_epoch_atomically(data, tmp_path):
    X, y = data
    path = tmp_path / "best.npz"
    saved = []

    class Spy(cb.Callback):
        def on_epoch_end(self, epoch, logs):
            if path.exists():
                saved.append((epoch, fastmlp.load(path).weights[0].copy()))

    model = fastmlp.fit(X, y, epochs=5, callbacks=[cb.Checkpoint(path), Spy()], **OPTIONS)
    assert [epoch for epoch, _ in saved] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(saved[-1][1], model.weights[0])
    assert fastmlp.load(path).optimizer_state["step_count"] == model.optimizer_state["step_count"]
    every = tmp_path / "epoch{epoch}.npz"
    fastmlp.fit(X, y, epochs=2, callbacks=[cb.Checkpoint(every)], **OPTIONS)
    assert sorted(p.name for p in tmp_path.glob("epoch*.npz")) == ["epoch1.npz", "epoch2.npz"]
    assert not list(tmp_path.glob(".fastmlp-*"))   # no temporary file left behind


def test_checkpoint_save_best_only_skips_worse_epochs(data, tmp_path):
    X, y = data
    path = tmp_path / "best.npz"
    model = fastmlp.fit(X, y, epochs=6, validation_fraction=0.25, callbacks=[cb.Checkpoint(path, save_best_only=True)],
                        **dict(OPTIONS, learning_rate=20.0))
    losses = model.history["val_loss"]
    best = int(np.argmin(losses))
    assert fastmlp.load(path).history["val_loss"] == losses[:best + 1]


def test_csv_logger_writes_a_row_per_epoch(data, tmp_path):
    X, y = data
    path = tmp_path / "log.csv"
    model = fastmlp.fit(X, y, epochs=3, validation_fraction=0.25, callbacks=[cb.CSVLogger(path)], **OPTIONS)
    rows = list(csv.DictReader(path.open()))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert [float(row["val_loss"]) for row in rows] == pytest.approx(model.history["val_loss"])
    fastmlp.fit(X, y, epochs=2, callbacks=[cb.CSVLogger(path, append=True)], **OPTIONS)
    assert len(list(csv.DictReader(path.open()))) == 5


def test_divergence_guard_stop_undoes_the_epoch_before_later_callbacks(data):
    X, y = data
    seen = Recorder()
    with pytest.warns(RuntimeWarning, match="training diverged"):
        model = fastmlp.fit(X * 1e30, y, epochs=5, on_divergence="stop", callbacks=[seen],
                            **dict(OPTIONS, learning_rate=1e30, hidden=(4,)), activation="relu")
    diverged = model.history["diverged"]
    assert [e[1] for e in seen.events if e[0] == "end"] == list(range(1, diverged))
    assert len(model.history.get("loss", [])) == diverged - 1


def test_lbfgs_iterations_reach_the_callbacks(data):
    pytest.importorskip("scipy")
    X, y = data
    seen = Recorder()
    model = fastmlp.fit(X, y, optimizer="lbfgs", epochs=50, tol=0.0, seed=0, hidden=(4,),
                        callbacks=[seen, cb.FunctionCallback(lambda logs: logs["epoch"] == 4)])
    assert [e[1] for e in seen.events if e[0] == "end"] == [1, 2, 3, 4]
    assert len(model.history["loss"]) == 4 and model.history["stopped_by_callback"] == 4


def test_callbacks_must_be_callback_objects(data):
    X, y = data
    with pytest.raises(TypeError, match="callbacks must be fastmlp.callbacks.Callback"):
        fastmlp.fit(X, y, callbacks=[print], **OPTIONS)
    with pytest.raises(ValueError, match="needs validation_data"):
        fastmlp.fit(X, y, callbacks=[cb.EarlyStopping(monitor="val_loss")], **OPTIONS)
