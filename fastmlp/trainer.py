"""The training loop: epochs of mini-batch gradient descent on one network, callbacks between them.

Each mini-batch is one call into the network (``train_batch``: forward pass, output error,
backpropagation, the averaged gradients and one optimizer step, in compiled code or its NumPy
twin). Python runs once per epoch: shuffle, then the callbacks (history, early stopping,
schedules, checkpoints, progress; see :mod:`fastmlp.callbacks`).
"""
import mmap
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _kernels, reference
from ._validation import is_sparse
from .callbacks import copy_into

# shuffle="blocks" takes contiguous blocks of rows worth about this many bytes of X, and requests
# the reads of the blocks up to READ_AHEAD_BLOCKS ahead of the one it trains on (see BlockShuffle).
BLOCK_BYTES = 4 << 20
READ_AHEAD_BLOCKS = 2
# What an optimizer state records of the network it came from (kept in saved models).
OPTIMIZER_CONFIG = ("optimizer", "momentum", "beta1", "beta2", "epsilon", "epsilon_hat", "l2", "l1", "dropout")


class Trainer:
    """Trains ``model`` through ``network`` (built from it by ``model.network``) on (X, Y).

    Callbacks may read ``model``, ``history``, ``epoch``, ``X``, ``validation_data``, and set
    ``learning_rate`` (the step size η from the next epoch on) and ``stop_training``. Ctrl-C
    (KeyboardInterrupt) stops after the current mini-batch and goes back to the last completed
    epoch: weights, optimizer state, history and the callbacks' own state
    (``history["interrupted"]`` holds the epoch cut short).
    """

    unit = "epoch"

    def __init__(self, model, network, X, Y, sample_weight=None, *, batch_size=100, learning_rate=3.0,
                 shuffle=True, seed=None, validation_data=None, callbacks=()):
        self.attach(model, model.weights + model.biases, X.shape[0], callbacks)
        self.network, self.X, self.Y, self.sample_weight = network, X, Y, sample_weight
        self.batch_size, self.learning_rate = min(batch_size, X.shape[0]), learning_rate
        self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
        self.validation_data = validation_data
        self.blocks = BlockShuffle(X, self.batch_size) if shuffle == "blocks" else None
        self.restore_optimizer(model.optimizer_state)
        self.order = np.arange(self.n_samples, dtype=np.int64)   # the epoch's order; the network reads it
        if is_sparse(X):   # a CSR matrix: the first layer reads the batch's nonzeros
            network.bind_sparse(X, Y, self.order, sample_weight)
        else:
            network.bind(X, Y, self.order, sample_weight, 1.0 if model.input_scale is None else model.input_scale)

    def attach(self, model, parameters, n_samples, callbacks):
        """What every trainer has: the model, the parameters it trains, the callbacks, the count."""
        self.model, self.parameters, self.history, self.n_samples = model, parameters, model.history, n_samples
        self.network = self.X = self.validation_data = self.validation_output = self.learning_rate = None
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.trainer = self
        self.epoch = len(self.history.get("loss", ()))   # epochs completed
        self.stop_training = self.interrupted = self.undone = False

    def run(self, epochs):
        """Train for up to ``epochs`` epochs; returns the model."""
        self.last_epoch = self.epoch + epochs
        self.call("on_train_begin")
        self.save_state()
        batch_callbacks = [c for c in self.callbacks if c.wants_batches()]
        try:
            while self.epoch < self.last_epoch and not self.stop_training:
                epoch = self.epoch + 1
                self.call("on_epoch_begin", epoch)
                result = self.train_epoch(epoch, batch_callbacks)
                if result is None:   # the epoch itself ended training
                    break
                self.end_epoch(epoch, self.epoch_logs(epoch, *result))
        except KeyboardInterrupt:
            self.undo_epoch()
            self.history["interrupted"] = self.epoch + 1
            self.interrupted = True
        except BaseException:   # a model trained in place is left as after the last completed epoch
            self.undo_epoch()
            self.release()
            raise
        self.model.optimizer_state = self.optimizer_state(into=False)   # the network goes with the trainer
        self.call("on_train_end")
        self.release()
        return self.model

    def release(self):
        """Drop the network and the snapshot, so that their arrays are freed when training ends
        even while callbacks, which point back at the trainer, are still referenced."""
        self.network = self.saved = None

    def train_epoch(self, epoch, batch_callbacks=()):
        """One pass over the shuffled samples: the mean cost and the seconds it took."""
        started = time.perf_counter()
        if self.blocks is not None:
            self.blocks.shuffle(self.order, self.rng)
        elif self.shuffle:
            self.rng.shuffle(self.order)
        weights, total = self.sample_weight, 0.0
        # A mini-batch whose sample weights are all 0 has no cost to take a step on (its weighted
        # mean would be 0/0): it is skipped. Only looked for when some weight is 0.
        zero_weights = weights is not None and not weights.all()
        for start in range(0, self.n_samples, self.batch_size):
            stop = min(start + self.batch_size, self.n_samples)
            if self.blocks is not None:
                self.blocks.read_ahead(start)
            if zero_weights and not weights[self.order[start:stop]].any():
                continue
            total += self.network.train_batch(start, stop, self.learning_rate)
            for callback in batch_callbacks:
                callback.on_batch_end(epoch, stop)
        total_weight = self.n_samples if weights is None else float(weights.sum(dtype=np.float64))
        return total / total_weight, time.perf_counter() - started

    def epoch_logs(self, epoch, loss, seconds):
        """The epoch's metrics: the cost (penalty included) and the validation loss and score."""
        model = self.model
        penalty = model.penalty()
        logs = {"epoch": epoch, "loss": loss + penalty, "penalty": penalty, "learning_rate": self.learning_rate,
                "seconds": seconds}
        if self.validation_data is not None:
            X_val, Y_val, W_val = self.validation_data
            self.validation_output = output = model.output(X_val)
            total = X_val.shape[0] if W_val is None else W_val.sum()
            with np.errstate(all="ignore"):   # a diverged output: the divergence guard reports it
                logs["val_loss"] = reference.loss_sum(output, Y_val, model.loss, W_val) / total
                score = "val_accuracy" if model.task != "regression" else "val_r2"
                logs[score] = model._score(output, Y_val, W_val)
        return logs

    def end_epoch(self, epoch, logs):
        """Pass the epoch's logs to the callbacks (until one undoes the epoch); it is then complete."""
        self.undone = False
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)
            if self.undone:
                return
        self.epoch = epoch
        self.save_state()

    def call(self, event, *args):
        for callback in self.callbacks:
            getattr(callback, event)(*args)

    # -- going back to the last completed epoch -----------------------------------------------

    def save_state(self):
        """Remember the state after a completed epoch: parameters, optimizer, history, callbacks
        (the arrays into the same copies every epoch: one copy of the model, not one per epoch)."""
        saved = getattr(self, "saved", None)   # the previous snapshot, whose arrays are reused
        optimizer = saved["optimizer"] if saved else None
        self.saved = {"parameters": copies(self.parameters, saved["parameters"] if saved else None),
                      "optimizer": self.optimizer_state(optimizer["state"] if optimizer else None),
                      "history": {key: len(value) if isinstance(value, list) else value
                                  for key, value in self.history.items()},
                      "callbacks": [dict(vars(callback)) for callback in self.callbacks]}

    def undo_epoch(self):
        """Go back to the last completed epoch (the epoch in progress leaves nothing behind) and stop."""
        saved = self.saved
        copy_into(self.parameters, saved["parameters"])
        self.restore_optimizer(saved["optimizer"])
        for key in list(self.history):
            if key not in saved["history"]:
                del self.history[key]
            elif isinstance(self.history[key], list):
                del self.history[key][saved["history"][key]:]
            else:
                self.history[key] = saved["history"][key]
        for callback, attributes in zip(self.callbacks, saved["callbacks"]):
            vars(callback).clear()
            vars(callback).update(attributes)
        self.stop_training = self.undone = True

    def optimizer_state(self, into=None):
        """What continuing training needs (``fit(warm_start=...)``): the network's optimizer and its
        state arrays, copied (into the arrays ``into`` when given; shared with ``into=False``)."""
        network = self.network
        state = list(network.state) if into is False else copies(network.state, into)
        return {"optimizer": network.optimizer, "state": state,
                "step_count": int(network.step_count), "dropout_counter": int(network.dropout_counter),
                "config": {name: getattr(network, name) for name in OPTIMIZER_CONFIG}}

    def restore_optimizer(self, optimizer_state):
        restore_optimizer(self.network, optimizer_state)

    def current_model(self):
        """The model as training would return it now (its optimizer state brought up to date)."""
        self.model.optimizer_state = self.optimizer_state()
        return self.model


def copies(arrays, into=None):
    """Copies of ``arrays``: new ones, or written into the arrays ``into`` (of the same shapes)."""
    if into is None:
        return [array.copy() for array in arrays]
    copy_into(into, arrays)
    return into


def restore_optimizer(network, optimizer_state):
    """Put an optimizer state (``MLP.optimizer_state``) into ``network`` if it is of its optimizer."""
    if not optimizer_state or optimizer_state["optimizer"] != network.optimizer:
        return
    if len(optimizer_state["state"]) == len(network.state):
        copy_into(network.state, optimizer_state["state"])   # nothing to do where the network adopted them
    network.step_count = optimizer_state["step_count"]
    network.dropout_counter = optimizer_state["dropout_counter"]


def block_order(n_samples, block_rows, rng):
    """``(blocks, order)``: the blocks of rows ``[b · block_rows, (b + 1) · block_rows)`` in a random
    order, and the order of the rows, each block's rows together and in a random order."""
    blocks = rng.permutation(-(-n_samples // block_rows))
    order = np.concatenate([block * block_rows + rng.permutation(min(block_rows, n_samples - block * block_rows))
                            for block in blocks.tolist()])
    return blocks, order


class BlockShuffle:
    """shuffle="blocks": every epoch a new :func:`block_order`, and for an X mapped from a file the
    disk reads of each block requested while the block before it is trained on.

    The requests run on a thread of their own, which also takes the block's page faults: the
    kernel's share of reading (finding pages for the block, evicting others when the page cache is
    full, mapping them) then runs beside training, on another core when there is one.

    A block is about BLOCK_BYTES of X: long enough that the disk reads it as a few long sequential
    requests (4 MiB take 2-4 ms at 1-2 GB/s, against a request's latency of ~0.1 ms), short enough
    that the block trained on and the ones being read stay in any page cache and in the L3 cache,
    where its rows are read in random order. It is a whole number of mini-batches, so that a
    mini-batch comes from one block (all of them when the row count divides evenly).
    """

    def __init__(self, X, batch_size):
        row_bytes = X[:1].nbytes if isinstance(X, np.ndarray) else X.data.nbytes / X.shape[0]   # sparse: on average
        rows_per_block = BLOCK_BYTES / max(1, row_bytes)
        self.block_rows = max(1, round(rows_per_block / batch_size)) * batch_size
        self.X = X if _is_mapped(X) else None
        self.blocks, self.starts, self.next = [], [], 0
        if self.X is not None:
            self.reader = ThreadPoolExecutor(1, thread_name_prefix="fastmlp-read-ahead")
            weakref.finalize(self, self.reader.shutdown, wait=False, cancel_futures=True)

    def shuffle(self, order, rng):
        """Fill ``order`` (in place: the network holds it) with a new block order."""
        blocks, order[:] = block_order(len(order), self.block_rows, rng)
        sizes = np.minimum(self.block_rows, len(order) - blocks * self.block_rows)
        self.blocks, self.starts = blocks.tolist(), (np.cumsum(sizes) - sizes).tolist()
        self.next = 0

    def read_ahead(self, position):
        """Before training on ``order[position:]``: request the blocks that start within
        READ_AHEAD_BLOCKS blocks of it."""
        if self.X is None:
            return
        ahead = position + READ_AHEAD_BLOCKS * self.block_rows
        while self.next < len(self.blocks) and self.starts[self.next] <= ahead:
            first = self.blocks[self.next] * self.block_rows
            self.reader.submit(_read_block, self.X, first, first + self.block_rows)
            self.next += 1


def _read_block(X, start, stop):
    """Rows start .. stop-1 of a memory-mapped X read into memory and mapped into the process: the
    reads requested at once, then a byte of every page touched (its page fault taken here, by the
    read-ahead thread, not by training)."""
    _kernels.will_need(X, start, stop)
    X[start:stop].reshape(-1)[::4096].max()   # one element of every 4 KiB page


def _is_mapped(X):
    """Whether X is (a view of) memory mapped from a file."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False
