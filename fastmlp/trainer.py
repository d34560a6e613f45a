"""The training loop: epochs of mini-batch gradient descent on one network, callbacks between them.

Each mini-batch is one call into the network (``train_batch``: forward pass, output error,
backpropagation, the averaged gradients and one optimizer step, in compiled code or its NumPy
twin). Python runs once per epoch: shuffle, then the callbacks (history, early stopping,
schedules, checkpoints, progress; see :mod:`fastmlp.callbacks`).
"""
import collections
import mmap
import os
import stat
import time
import weakref
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from . import _kernels, reference
from ._validation import is_sparse
from .callbacks import copy_into

# shuffle="blocks" takes contiguous blocks of rows worth about this many bytes of X, and requests
# the reads of the blocks up to READ_AHEAD_BLOCKS ahead of the one it trains on (see BlockShuffle).
BLOCK_BYTES = 4 << 20
READ_AHEAD_BLOCKS = 2
# Direct I/O (O_DIRECT) reads at file offsets, of lengths and into addresses that are multiples of
# the disk's logical block size (512 or 4096 bytes): 4096 is a multiple of both.
DIRECT_ALIGNMENT = 4096
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
                 shuffle=True, seed=None, validation_data=None, callbacks=(), rows=None):
        """``rows``: train on these rows of X (and Y, sample_weight) only, sorted, read where they
        lie: the training part of a validation split, without a copy."""
        # the epoch's order (the network reads it): every row of X, or the rows given
        self.order = np.arange(X.shape[0], dtype=np.int64) if rows is None else np.array(rows, np.int64)
        self.attach(model, model.weights + model.biases, len(self.order), callbacks)
        self.network, self.X, self.Y, self.sample_weight = network, X, Y, sample_weight
        self.batch_size, self.learning_rate = min(batch_size, self.n_samples), learning_rate
        self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
        self.validation_data = validation_data
        self.blocks = BlockShuffle(X, self.batch_size, rows) if shuffle == "blocks" else None
        self.restore_optimizer(model.optimizer_state)
        self.input_scale = 1.0 if model.input_scale is None else model.input_scale
        # The weights of the rows trained on, summed in their order (the weighted mean's divisor).
        self.total_weight = (float(self.n_samples) if sample_weight is None else
                             float(sample_weight[self.order].sum(dtype=np.float64)))
        # A mini-batch whose sample weights are all 0 has no cost to take a step on (its weighted
        # mean would be 0/0): it is skipped. Only looked for when some weight is 0.
        self.zero_weights = sample_weight is not None and not sample_weight[self.order].all()
        if self.blocks is not None and self.blocks.direct is not None:   # see train_direct
            self.block_order = np.empty(self.blocks.block_rows, np.int64)
            self.seam = seam_arrays(self.batch_size, X, Y, sample_weight)
        self.bind()

    def bind(self):
        """Bind the network to the whole training set, its rows taken in ``order``."""
        if is_sparse(self.X):   # a CSR matrix: the first layer reads the batch's nonzeros
            self.network.bind_sparse(self.X, self.Y, self.order, self.sample_weight)
        else:
            self.network.bind(self.X, self.Y, self.order, self.sample_weight, self.input_scale)

    def attach(self, model, parameters, n_samples, callbacks):
        """What every trainer has: the model, the parameters it trains, the callbacks, the count."""
        self.model, self.parameters, self.history, self.n_samples = model, parameters, model.history, n_samples
        self.network = self.X = self.blocks = self.validation_data = self.validation_output = None
        self.learning_rate = None
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
        if self.blocks is not None:
            self.blocks.close()
        self.network = self.saved = None

    def train_epoch(self, epoch, batch_callbacks=()):
        """One pass over the shuffled samples: the mean cost and the seconds it took."""
        started = time.perf_counter()
        if self.blocks is not None:
            self.blocks.shuffle(self.order, self.rng)
        elif self.shuffle:
            self.rng.shuffle(self.order)
        if self.blocks is not None and self.blocks.direct is not None:
            total = self.train_direct(epoch, batch_callbacks)
        else:
            total = 0.0
            for start in range(0, self.n_samples, self.batch_size):
                if self.blocks is not None:
                    self.blocks.read_ahead(start)
                stop = min(start + self.batch_size, self.n_samples)
                total += self.train_batch(epoch, start, stop, batch_callbacks)
        return total / self.total_weight, time.perf_counter() - started

    def train_batch(self, epoch, start, stop, batch_callbacks, bound_from=0):
        """Train on the mini-batch ``order[start:stop]``, the network bound to the rows of
        ``order[bound_from:]``: its summed loss."""
        if self.zero_weights and not self.sample_weight[self.order[start:stop]].any():
            return 0.0
        loss = self.network.train_batch(start - bound_from, stop - bound_from, self.learning_rate)
        for callback in batch_callbacks:
            callback.on_batch_end(epoch, stop)
        return loss

    def train_direct(self, epoch, batch_callbacks):
        """The epoch's mini-batches with X read block by block into buffers (BlockShuffle.read_blocks),
        the network bound to one block at a time: the same mini-batches as from X itself.

        A mini-batch that begins in one block and ends in the next is gathered from both
        (train_seam): once the short block of X's last rows is past, the mini-batches no longer
        line up with the blocks.
        """
        blocks = self.blocks.read_blocks()
        total, bound, block = 0.0, None, None
        try:
            for start in range(0, self.n_samples, self.batch_size):
                stop = min(start + self.batch_size, self.n_samples)
                while block is None or stop > block.end:   # on to the block that holds order[stop - 1]
                    previous, block = block, next(blocks)
                if start < block.position:
                    total += self.train_seam(epoch, start, stop, previous, block, batch_callbacks)
                    bound = None
                    continue
                if bound is not block:
                    self.bind_block(block)
                    bound = block
                total += self.train_batch(epoch, start, stop, batch_callbacks, block.position)
        finally:
            self.bind()   # no buffer stays bound: later reads write into them
        return total

    def bind_block(self, block):
        """Bind the network to a block: ``order[block.position:block.end]``, rows of ``block.rows``."""
        first, n = block.first, len(block.rows)
        order = np.subtract(self.order[block.position:block.end], first,
                            out=self.block_order[:block.end - block.position])
        weights = None if self.sample_weight is None else self.sample_weight[first:first + n]
        self.network.bind(block.rows, self.Y[first:first + n], order, weights, self.input_scale)

    def train_seam(self, epoch, start, stop, previous, block, batch_callbacks):
        """Train on the mini-batch ``order[start:stop]`` that begins in block ``previous`` and ends
        in ``block``: its rows, targets and weights gathered into the seam's arrays, in order."""
        X, Y, weights, order = self.seam
        n, middle, rows = stop - start, block.position - start, self.order[start:stop]
        np.take(previous.rows, rows[:middle] - previous.first, axis=0, out=X[:middle])
        np.take(block.rows, rows[middle:] - block.first, axis=0, out=X[middle:n])
        np.take(self.Y, rows, axis=0, out=Y[:n])
        if weights is not None:
            weights = np.take(self.sample_weight, rows, out=weights[:n])
        self.network.bind(X[:n], Y[:n], order[:n], weights, self.input_scale)
        return self.train_batch(epoch, start, stop, batch_callbacks, start)

    def log_names(self):
        """The names of the numbers epoch_logs gives every epoch (but "epoch"): the history's lists."""
        names = ["loss", "penalty", "learning_rate", "seconds"]
        if self.validation_data is not None:
            names += ["val_loss", "val_accuracy" if self.model.task != "regression" else "val_r2"]
        return names

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


def seam_arrays(batch_size, X, Y, sample_weight):
    """Room for one mini-batch's rows of X, Y and sample_weight, and the order 0, 1, ... of its rows."""
    weights = None if sample_weight is None else np.empty(batch_size, sample_weight.dtype)
    return (np.empty((batch_size, X.shape[1]), X.dtype), np.empty((batch_size, Y.shape[1]), Y.dtype), weights,
            np.arange(batch_size, dtype=np.int64))


def block_order(n_samples, block_rows, rng):
    """``(blocks, order)``: the blocks of rows ``[b · block_rows, (b + 1) · block_rows)`` in a random
    order, and the order of the rows, each block's rows together and in a random order."""
    blocks = rng.permutation(-(-n_samples // block_rows))
    order = np.concatenate([block * block_rows + rng.permutation(min(block_rows, n_samples - block * block_rows))
                            for block in blocks.tolist()])
    return blocks, order


class Block(NamedTuple):
    """A block of rows read for training: rows ``first ..`` of X, trained on as ``order[position:end]``
    (all of them, or those of the rows trained on)."""
    position: int
    first: int
    rows: np.ndarray
    end: int


class BlockShuffle:
    """shuffle="blocks": every epoch a new :func:`block_order`, and for an X mapped from a file the
    disk reads of each block requested while the block before it is trained on.

    The reads run on a thread of their own. Where the file can be read with direct I/O (see
    :class:`DirectReader`), they read each block into a buffer that training then reads
    (``read_blocks``); elsewhere they ask for the block's pages and take its page faults: the
    kernel's share of reading (finding pages for the block, evicting others when the page cache is
    full, mapping them) then runs beside training, on another core when there is one.

    A block is about BLOCK_BYTES of X: long enough that the disk reads it as a few long sequential
    requests (4 MiB take 2-4 ms at 1-2 GB/s, against a request's latency of ~0.1 ms), short enough
    that the block trained on and the ones being read stay in any page cache and in the L3 cache,
    where its rows are read in random order. It is a whole number of mini-batches, so that a
    mini-batch comes from one block (all of them when the row count divides evenly).
    """

    def __init__(self, X, batch_size, rows=None):
        """``rows``: the rows of X trained on (sorted), if not all: the blocks are blocks of them, and a
        block's read spans X from its first row to its last."""
        row_bytes = X[:1].nbytes if isinstance(X, np.ndarray) else X.data.nbytes / X.shape[0]   # sparse: on average
        rows_per_block = BLOCK_BYTES / max(1, row_bytes)
        self.block_rows = max(1, round(rows_per_block / batch_size)) * batch_size
        self.rows, self.n_samples = rows, X.shape[0] if rows is None else len(rows)
        self.X = X if _is_mapped(X) else None
        self.blocks, self.starts, self.sizes, self.next = [], [], [], 0   # of the epoch, in training order
        self.reads, self.direct = collections.deque(), None
        if self.X is not None:
            self.reader = ThreadPoolExecutor(1, thread_name_prefix="fastmlp-read-ahead")
            weakref.finalize(self, self.reader.shutdown, wait=False, cancel_futures=True)
            # A block's buffer is read into again READ_AHEAD_BLOCKS + 2 blocks later: its rows stay
            # while the block after it is trained on (train_seam reads both).
            n_blocks = -(-self.n_samples // self.block_rows)
            widest = max(stop - first for first, stop in map(self.span, range(n_blocks)))   # a buffer's rows
            self.direct = DirectReader.open(X, widest, READ_AHEAD_BLOCKS + 2)

    def span(self, block):
        """(first, stop): the rows of X that block number ``block`` lies in."""
        start, end = block * self.block_rows, min((block + 1) * self.block_rows, self.n_samples)
        return (start, end) if self.rows is None else (int(self.rows[start]), int(self.rows[end - 1]) + 1)

    def shuffle(self, order, rng):
        """Fill ``order`` (in place: the network holds it) with a new block order."""
        blocks, positions = block_order(len(order), self.block_rows, rng)
        order[:] = positions if self.rows is None else self.rows[positions]
        self.sizes = np.minimum(self.block_rows, len(order) - blocks * self.block_rows).tolist()
        self.blocks, self.starts = blocks.tolist(), (np.cumsum(self.sizes) - self.sizes).tolist()
        self.next = 0

    def read_ahead(self, position):
        """Before training on ``order[position:]``: request the blocks that start within
        READ_AHEAD_BLOCKS blocks of it."""
        if self.X is None:
            return
        ahead = position + READ_AHEAD_BLOCKS * self.block_rows
        while self.next < len(self.blocks) and self.starts[self.next] <= ahead:
            self.reader.submit(_read_block, self.X, *self.span(self.blocks[self.next]))
            self.next += 1

    def read_blocks(self):
        """The epoch's blocks in training order, each a :class:`Block` read by the direct reader,
        which reads up to READ_AHEAD_BLOCKS blocks ahead of the one handed out."""
        self.settle()
        for k, block in enumerate(self.blocks):
            for ahead in range(k + len(self.reads), min(k + READ_AHEAD_BLOCKS + 1, len(self.blocks))):
                first, stop = self.span(self.blocks[ahead])
                self.reads.append(self.reader.submit(self.direct.read, first, stop, ahead % self.direct.n_buffers))
            yield Block(self.starts[k], self.span(block)[0], self.reads.popleft().result(),
                        self.starts[k] + self.sizes[k])

    def settle(self):
        """Cancel the reads not begun and wait for the one under way (of an epoch cut short: it
        writes into a buffer that the next reads use)."""
        for read in self.reads:
            read.cancel()
        futures.wait(self.reads)
        self.reads.clear()

    def close(self):
        """Stop reading: the reads under way end, the file is closed."""
        if self.X is not None:
            self.reader.shutdown(cancel_futures=True)
        if self.direct is not None:
            self.direct.close()


class DirectReader:
    """Reads blocks of rows of an X mapped from a file with direct I/O (``O_DIRECT``), around the
    page cache, into buffers reused from block to block.

    Through the page cache, each GiB read from a file larger than the cache costs ~0.35 s of
    kernel time (finding pages, evicting others) and ~0.4 s more in page faults and misses of
    4 KiB pages (benchmarks/RESULTS.md); a direct read goes from the disk into the buffer. It
    needs the file offset, the length and the buffer's address aligned (DIRECT_ALIGNMENT): a
    block is read from the aligned offset at or before its first byte to the one after its last,
    and its rows are a view into the buffer.
    """

    def __init__(self, fd, offset, X, block_rows, n_buffers):
        self.fd, self.offset = fd, offset   # offset: of X's first row, in the file
        self.row_bytes, self.dtype, self.n_features = X[:1].nbytes, X.dtype, X.shape[1]
        size = block_rows * self.row_bytes + 2 * DIRECT_ALIGNMENT
        self.buffers = [np.frombuffer(mmap.mmap(-1, size), np.uint8) for _ in range(n_buffers)]   # page-aligned
        self.n_buffers = n_buffers
        self.close = weakref.finalize(self, os.close, fd)   # closes the file once, when called or collected

    @classmethod
    def open(cls, X, block_rows, n_buffers):
        """A reader of X's rows, or None where they cannot be read with direct I/O: X is not a
        C-contiguous 2-D (view of a) ``numpy.memmap`` of a regular file, or the file system or
        the operating system has no O_DIRECT (tmpfs, macOS)."""
        mapped = mapped_file(X)
        if mapped is None or not hasattr(os, "O_DIRECT"):
            return None
        filename, offset = mapped
        try:
            fd = os.open(filename, os.O_RDONLY | os.O_DIRECT)
        except OSError:
            return None
        reader = cls(fd, offset, X, block_rows, n_buffers)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                reader.read(0, 1, 0)   # some file systems take O_DIRECT at open and refuse the reads
                return reader
        except OSError:
            pass
        reader.close()
        return None

    def read(self, first, stop, buffer):
        """Rows first .. stop-1 of X, read into buffer number ``buffer``: a (rows, features) view of it."""
        start, end = self.offset + first * self.row_bytes, self.offset + stop * self.row_bytes
        aligned = start - start % DIRECT_ALIGNMENT
        length = -(-(end - aligned) // DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT
        into = self.buffers[buffer]
        done = 0
        while aligned + done < end:   # a read may return less, as at the end of the file (its last page)
            count = os.preadv(self.fd, [into[done:length]], aligned + done)
            if count == 0:
                raise OSError(f"the file ends before row {stop} of X")
            done += count
        rows = into[start - aligned:end - aligned]
        return rows.view(self.dtype).reshape(stop - first, self.n_features)


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


def mapped_file(X):
    """``(file name, offset of X's first row in the file)`` for a C-contiguous 2-D X that is a
    ``numpy.memmap`` of a file or a view of one, else None."""
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.flags.c_contiguous):
        return None
    mapping = X
    while isinstance(mapping.base, np.ndarray):   # down to the array made on the mmap object
        mapping = mapping.base
    # Copy-on-write ("c"): what was written into the map is not in the file.
    if not isinstance(mapping, np.memmap) or mapping.filename is None or mapping.mode == "c":
        return None
    return mapping.filename, mapping.offset + X.ctypes.data - mapping.ctypes.data
