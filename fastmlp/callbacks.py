"""Callbacks: small objects the :class:`~fastmlp.trainer.Trainer` calls between epochs.

Modelled on Keras's callbacks. A callback reads the trainer it is attached to (``self.trainer``:
its ``model``, ``history``, ``learning_rate``) and each epoch's ``logs``: ``epoch``, ``loss`` (the
mean cost, penalty included), ``penalty``, ``learning_rate``, ``seconds`` and, with validation
data, ``val_loss`` and ``val_accuracy`` (classification) or ``val_r2`` (regression). It changes
training by setting ``trainer.learning_rate`` (the step size from the next epoch on) or
``trainer.stop_training = True``.

A callback that keeps state between epochs should rebind its attributes rather than change
them in place: after Ctrl-C the trainer puts back each callback's attributes as they were after
the last completed epoch.
"""
import csv
import math
import time
import warnings

import numpy as np

from . import io
from ._progress import Progress
from ._kernels import all_finite
from ._validation import is_sparse, row_blocks
from .exceptions import DivergenceError


class Callback:
    """Base class: override the events you need. ``self.trainer`` is set by the Trainer."""

    trainer = None

    def on_train_begin(self):
        """Before the first epoch."""

    def on_epoch_begin(self, epoch):
        """Before each epoch (epochs count from 1 and on across warm starts)."""

    def on_batch_end(self, epoch, samples_done):
        """After each mini-batch; only called for callbacks whose ``wants_batches()`` is true."""

    def on_epoch_end(self, epoch, logs):
        """After each epoch, with its metrics."""

    def on_train_end(self):
        """After the last epoch, however training ended (also after Ctrl-C)."""

    def wants_batches(self):
        """Whether to call ``on_batch_end``: mini-batches run in Python only for those who ask."""
        return type(self).on_batch_end is not Callback.on_batch_end


def monitored(logs, monitor):
    """The monitored metric as a value to minimise ("val_score": minus the accuracy or R²)."""
    if monitor == "val_score":
        return -logs.get("val_accuracy", logs.get("val_r2"))
    return logs[monitor]


def default_monitor(trainer, monitor):
    """``monitor``, or by default the validation loss (the training loss without validation data)."""
    if monitor is None:
        return "val_loss" if trainer.validation_data is not None else "loss"
    if monitor.startswith("val") and trainer.validation_data is None:
        raise ValueError(f"monitor={monitor!r} needs validation_data or validation_fraction")
    return monitor


class History(Callback):
    """Appends each epoch's logs (all but ``epoch``) to the model's history."""

    def on_train_begin(self):
        # The lists exist from the start: empty if no epoch completes (Ctrl-C in the first).
        for name in self.trainer.log_names():
            self.trainer.history.setdefault(name, [])

    def on_epoch_end(self, epoch, logs):
        for key, value in logs.items():
            if key != "epoch":
                self.trainer.history.setdefault(key, []).append(value)


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs and, with
    ``restore_best``, goes back to the best epoch's weights (``history["best_epoch"]``)."""

    def __init__(self, monitor=None, patience=10, min_delta=1e-4, restore_best=True):
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, patience, min_delta, restore_best

    def on_train_begin(self):
        self.watched = default_monitor(self.trainer, self.monitor)
        self.best, self.best_epoch, self.waited, self.best_parameters = math.inf, 0, 0, None

    def on_epoch_end(self, epoch, logs):
        value = monitored(logs, self.watched)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.waited = value, epoch, 0
            if self.restore_best:
                self.best_parameters = [p.copy() for p in self.trainer.parameters]
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.trainer.history["stopped_early"] = epoch
            self.trainer.stop_training = True

    def on_train_end(self):
        if self.best_parameters is not None:
            copy_into(self.trainer.parameters, self.best_parameters)
            self.trainer.history["best_epoch"] = self.best_epoch


# -- learning-rate schedules ------------------------------------------------------------------------

def invscaling_rate(learning_rate, samples_seen, power_t):
    """η / (samples_seen + 1)^power_t (scikit-learn's "invscaling"), 0 where the power overflows."""
    try:
        return learning_rate / float(samples_seen + 1) ** power_t
    except OverflowError:   # (t + 1)^power_t beyond 1.8e308: η over it is 0 in double precision
        return 0.0


class LearningRateScheduler(Callback):
    """Before each epoch, sets the learning rate to ``schedule(epoch, learning_rate)``."""

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {schedule!r}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch):
        self.trainer.learning_rate = float(self.schedule(epoch, self.trainer.learning_rate))


class StepDecay(Callback):
    """Multiplies the learning rate by ``factor`` every ``every`` epochs (of this run)."""

    def __init__(self, factor=0.5, every=10):
        self.factor, self.every = factor, every

    def on_train_begin(self):
        self.epochs = 0

    def on_epoch_end(self, epoch, logs):
        self.epochs += 1
        if self.epochs % self.every == 0:
            self.trainer.learning_rate *= self.factor


class InverseScaling(Callback):
    """scikit-learn's "invscaling": after each epoch η₀ / (t + 1)^power_t, t the samples seen
    (counting on from ``samples_seen``, to continue a schedule), η₀ the starting rate."""

    def __init__(self, power_t=0.5, samples_seen=0):
        self.power_t, self.samples_seen = power_t, samples_seen

    def on_train_begin(self):
        self.initial_rate = self.trainer.learning_rate

    def on_epoch_end(self, epoch, logs):
        self.samples_seen += self.trainer.n_samples
        self.trainer.learning_rate = invscaling_rate(self.initial_rate, self.samples_seen, self.power_t)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not improved by
    ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor=None, factor=0.5, patience=2, min_delta=1e-4):
        self.monitor, self.factor, self.patience, self.min_delta = monitor, factor, patience, min_delta

    def on_train_begin(self):
        self.watched = default_monitor(self.trainer, self.monitor)
        self.best, self.waited = math.inf, 0

    def on_epoch_end(self, epoch, logs):
        value = monitored(logs, self.watched)
        if value < self.best - self.min_delta:
            self.best, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.trainer.learning_rate *= self.factor
            self.waited = 0


class AdaptiveLearningRate(Callback):
    """scikit-learn's "adaptive" rule: when ``monitor`` has not improved by ``tol`` for more than
    ``patience`` epochs in a row, divide the learning rate by 5, or stop once it is at most 1e-6.

    As in scikit-learn, the loss improves when it is at most the lowest so far minus ``tol``; a
    validation score ("val_score") when it is at least the highest so far plus ``tol``.
    """

    def __init__(self, monitor=None, patience=10, tol=1e-4, adapt=True):
        self.monitor, self.patience, self.tol, self.adapt = monitor, patience, tol, adapt

    def on_train_begin(self):
        self.watched = default_monitor(self.trainer, self.monitor)
        self.best, self.waited = math.inf, 0

    def on_epoch_end(self, epoch, logs):
        self.step(monitored(logs, self.watched), epoch)

    def step(self, value, epoch):
        """Count an epoch whose monitored value (to minimise) is ``value``; adapt or stop."""
        improved = value <= self.best - self.tol
        self.best = min(self.best, value)
        self.waited = 0 if improved else self.waited + 1
        if self.waited <= self.patience:
            return
        if self.adapt and self.trainer.learning_rate > 1e-6:
            self.trainer.learning_rate /= 5
            self.waited = 0
        else:
            self.trainer.history["stopped_early"] = epoch
            self.trainer.stop_training = True


# -- safety, records and display --------------------------------------------------------------------

class DivergenceGuard(Callback):
    """Checks the model fit would return after each epoch: the cost, the weights, the optimizer
    state and the outputs on the training and validation data must be finite.

    ``on_divergence="raise"``: raise :class:`DivergenceError` naming the epoch; ``"stop"``: undo
    the epoch, keep the last finite one (``history["diverged"]``) and warn. Put it first: an undone
    epoch reaches no later callback.
    """

    def __init__(self, on_divergence="raise"):
        if on_divergence not in ("raise", "stop"):
            raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}")
        self.on_divergence = on_divergence

    def on_train_begin(self):
        model, X = self.trainer.model, self.trainer.X
        # a bound on |a⁰|; for integers their type's largest value, which needs no pass over a large X
        self.x_max = (max_abs(X) if X.dtype == model.dtype else
                      float(np.iinfo(X.dtype).max) * (model.input_scale or 1.0))
        problem = non_finite(model, X, self.x_max)
        if problem is not None:
            raise ValueError(f"the starting weights give non-finite outputs: {problem}")

    def on_epoch_end(self, epoch, logs):
        trainer, model = self.trainer, self.trainer.model
        problem = (f"the cost became {logs['loss']}" if not np.isfinite(logs["loss"]) else
                   non_finite(model, trainer.X, self.x_max, trainer.network.state, trainer.validation_output))
        if problem is None:
            return
        message = (f"training diverged in epoch {epoch}: {problem}; try a smaller learning_rate "
                   f"(now {logs['learning_rate']})" + (" or penalty" if model.l2 or model.l1 else ""))
        if self.on_divergence == "raise":
            raise DivergenceError(message)
        trainer.undo_epoch()
        trainer.history["diverged"] = epoch
        warnings.warn(message + "; keeping the weights of the last finite epoch", RuntimeWarning, stacklevel=2)


class Checkpoint(Callback):
    """Saves the model atomically (:func:`fastmlp.io.save`) after every epoch, or with
    ``save_best_only`` whenever ``monitor`` improves; ``path`` may contain ``{epoch}``."""

    def __init__(self, path, save_best_only=False, monitor=None):
        self.path, self.save_best_only, self.monitor = path, save_best_only, monitor

    def on_train_begin(self):
        self.watched = default_monitor(self.trainer, self.monitor)
        self.best = math.inf

    def on_epoch_end(self, epoch, logs):
        value = monitored(logs, self.watched)
        if self.save_best_only and not value < self.best:
            return
        self.best = min(self.best, value)
        io.save(self.trainer.current_model(), str(self.path).format(epoch=epoch))


class ProgressLogger(Callback):
    """One line per epoch (loss, validation metrics, samples/s, time left) and, on a terminal,
    a live line inside long epochs."""

    def __init__(self, verbose=1, stream=None):
        self.verbose, self.stream = verbose, stream

    def on_train_begin(self):
        trainer = self.trainer
        self.progress = Progress(self.verbose, trainer.last_epoch, trainer.n_samples, self.stream, trainer.unit)

    def wants_batches(self):
        return self.progress.live

    def on_epoch_begin(self, epoch):
        self.started = time.perf_counter()

    def on_batch_end(self, epoch, samples_done):
        self.progress.batch(epoch, samples_done, self.started)

    def on_epoch_end(self, epoch, logs):
        self.progress.epoch(logs)

    def on_train_end(self):
        if self.trainer.interrupted:
            self.progress.message(f"{self.trainer.unit} {self.trainer.history['interrupted']}: interrupted; "
                                  f"keeping the weights of the last completed {self.trainer.unit}")


class CSVLogger(Callback):
    """Writes each epoch's logs as a row of a CSV file (a header first, unless appending)."""

    def __init__(self, path, append=False):
        self.path, self.append = path, append

    def on_train_begin(self):
        self.file, self.writer = open(self.path, "a" if self.append else "w", newline=""), None

    def on_epoch_end(self, epoch, logs):
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, fieldnames=list(logs), extrasaction="ignore")
            if not self.append or self.file.tell() == 0:
                self.writer.writeheader()
        self.writer.writerow(logs)
        self.file.flush()

    def on_train_end(self):
        self.file.close()


class FunctionCallback(Callback):
    """Calls ``function(logs)`` after every epoch; a true return value stops training
    (``history["stopped_by_callback"]``). What ``fit(callback=...)`` makes of a function."""

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"callback must be callable, got {function!r}")
        self.function = function

    def on_epoch_end(self, epoch, logs):
        if self.function(dict(logs)):
            self.trainer.history["stopped_by_callback"] = epoch
            self.trainer.stop_training = True


# -- helpers ----------------------------------------------------------------------------------------

def copy_into(targets, sources):
    for target, source in zip(targets, sources):
        if target is not source:
            target[...] = source


def max_abs(X, block_bytes=1 << 20):
    """max |X| as a float, a block at a time (no copy of a memory-mapped X); of a sparse X's
    stored values (its other values are 0)."""
    values = X.data[:X.nnz] if is_sparse(X) else X
    return max((max(float(np.max(rows)), -float(np.min(rows))) for rows in row_blocks(values, block_bytes)),
               default=0.0)


def outputs_bounded(model, x_max):
    """Whether every pre-activation and output is surely finite for inputs no larger than x_max.

    Layer by layer |z_j| <= max|a| · Σᵢ |W_ij| + |b_j| (no partial sum of a product exceeds it
    either); sigmoid, tanh and softmax outputs are at most 1. Costs one pass over the weights. A
    bound near the dtype's largest value is inconclusive (False): then the outputs are computed.
    """
    limit = float(np.finfo(model.dtype).max) / 16
    bound = x_max
    with np.errstate(over="ignore", invalid="ignore"):
        for weights, biases, activation in zip(model.weights, model.biases, model.layer_activations):
            column_sums = sum(np.abs(rows).sum(axis=0, dtype=np.float64) for rows in row_blocks(weights))
            z = bound * float(np.max(column_sums)) + (float(np.max(np.abs(biases))) if biases.size else 0.0)
            if not z < limit or (activation == "exp" and not z < math.log(limit)):
                return False
            bound = 1.0 if activation in ("sigmoid", "tanh", "softmax") else math.exp(z) if activation == "exp" else z
    return True


def non_finite(model, X, x_max, state=(), validation_output=None):
    """What of the model, as fit would return it, is not finite (a phrase), or None."""
    name = np.dtype(model.dtype).name
    if not all(all_finite(p) for p in model.weights + model.biases):
        return "the weights stopped being finite"
    if not all(all_finite(s) for s in state):
        return f"the optimizer state (a velocity or Adam's moments) overflowed {name}"
    if not outputs_bounded(model, x_max) and not np.isfinite(model.output(X)).all():
        return f"the outputs on the training data overflowed {name}"
    if validation_output is not None and not np.isfinite(validation_output).all():
        return f"the outputs on the validation data overflowed {name}"
    return None
