"""Data-parallel training on a Dask cluster: :func:`fit` over row chunks held by the workers.

Each chunk of rows is a *shard*. Every round, each shard's worker trains from the same parameters
with the compiled kernels, and the results are summed over the shards by a tree of Dask tasks; only
parameters, optimizer state and a few numbers travel. A round is a pure function of (parameters,
optimizer state, shard, round, seed), so a lost worker costs recomputation only and the trained
weights do not depend on where the tasks ran. Dask is optional: ``pip install "fastmlp[dask]"``.
"""
import functools
import inspect
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from . import model as _model
from . import reference
from . import training as _training
from ._config import get_num_threads
from ._lbfgs import LBFGSTrainer
from ._progress import Progress
from .callbacks import History, ProgressLogger, copy_into
from .trainer import restore_optimizer
from ._validation import (check_activations, check_dtype, check_float, check_hidden,
                          check_input_scale, check_inputs, check_int, check_parameters, check_sample_weight,
                          check_targets)

UNSUPPORTED = ("validation_fraction", "class_weight")


def fit(X, y, *, client=None, average_every=1, **fit_kwargs):
    """Train a dense network on a Dask cluster, data-parallel over row chunks.

    Parameters
    ----------
    X : dask array or array-like of shape (n_samples, n_features)
        A dask array is used as chunked (one shard per chunk of rows, column chunks merged); a
        NumPy array is cut into one row block per worker.
    y : dask array or array-like of shape (n_samples,) or (n_samples, n_outputs)
        As in :func:`fastmlp.fit`; rechunked like X's rows. The labels are gathered once on the
        client to find the task and classes, unless ``classes_`` is given.
    client : distributed.Client, optional
        Default: the current client (``distributed.get_client()``).
    average_every : int
        SGD, Nesterov and Adam: local mini-batch steps each shard takes between two averagings
        of the parameters and optimizer state (weighted by the samples of each shard's steps).
        Ignored by L-BFGS.
    **fit_kwargs
        The keyword arguments of :func:`fastmlp.fit`. ``batch_size`` is the global mini-batch:
        each shard's steps take its share, ``batch_size · n_shard / n_samples`` rows (at least one).
        ``sample_weight`` may be a dask array. uint8 and uint16 chunks of X, with ``input_scale``,
        are converted a mini-batch at a time, as by fit. ``validation_fraction`` and
        ``class_weight`` are not supported.

    Returns
    -------
    MLP
        ``history`` holds fit's per-epoch entries plus ``rounds`` (rounds completed by the end of
        each epoch), ``compute_seconds`` (the slowest shard's training time, summed over the
        epoch's rounds) and ``round_loss`` (the mean training cost of each round).

    Raises
    ------
    ImportError
        Without Dask.
    FloatingPointError
        When training diverges, naming the round.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> import fastmlp.distributed
    >>> with LocalCluster(n_workers=2, processes=True) as cluster, Client(cluster) as client:
    ...     model = fastmlp.distributed.fit(X, y, average_every=10, epochs=5, seed=0)
    """
    _import_dask()
    options = _options(fit_kwargs)
    average_every = check_int(average_every, "average_every")
    client = _client(client)
    X_blocks, y_blocks, w_blocks, n_features = _blocks(client, X, y, options.pop("sample_weight"))
    model = _initial_model(n_features, y, options)
    model.input_scale = _input_scale(X, model, options)
    validation = _validation(model, options["validation_data"], options["monitor"])
    setup = _setup(model, options)
    shards, sizes = _shards(client, X_blocks, y_blocks, w_blocks, model)
    if options["optimizer"] == "lbfgs":
        return _fit_lbfgs(client, model, shards, sizes, setup, options)
    return _fit_rounds(client, model, shards, sizes, setup, options, average_every, validation)


def _import_dask():
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError('fastmlp.distributed needs Dask: pip install "fastmlp[dask]"') from None


def _options(fit_kwargs):
    """fit's keyword arguments with its defaults filled in; unknown and unsupported ones rejected."""
    signature = inspect.signature(_training.fit)
    try:
        bound = signature.bind(None, None, **fit_kwargs)
    except TypeError as error:
        raise TypeError(f"fastmlp.distributed.fit: {error}") from None
    bound.apply_defaults()
    options = dict(bound.arguments)
    del options["X"], options["y"]
    for name in UNSUPPORTED:
        if options[name] is not None:
            raise ValueError(f"fastmlp.distributed.fit does not support {name}, got {options[name]!r}")
    if options["optimizer"] not in _model.OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(_model.OPTIMIZERS)}, got {options['optimizer']!r}")
    for name in ("epochs", "batch_size", "max_fun", "n_iter_no_change", "lr_step", "lr_patience"):
        options[name] = check_int(options[name], name)
    for name in ("l2", "l1", "tol", "power_t", "lr_decay"):
        options[name] = check_float(options[name], name)
    options["learning_rate"] = check_float(options["learning_rate"], "learning_rate", 0.0, inclusive=False)
    options["samples_seen"] = check_int(options["samples_seen"], "samples_seen", 0)
    for name in ("momentum", "beta1", "beta2", "dropout"):
        options[name] = check_float(options[name], name, 0.0, maximum=1.0)
    options["epsilon"] = check_float(options["epsilon"], "epsilon", 0.0, inclusive=False)
    for name, allowed in (("lr_schedule", _training.SCHEDULES), ("on_divergence", ("raise", "stop")),
                          ("backend", tuple(_model.BACKENDS)), ("monitor", (None, "val_loss", "val_score", "loss"))):
        if options[name] not in allowed:
            raise ValueError(f"{name} must be one of {list(allowed)}, got {options[name]!r}")
    if options["callback"] is not None and not callable(options["callback"]):
        raise TypeError(f"callback must be callable, got {options['callback']!r}")
    if options["seed"] is None:   # drawn once here, so every shard and every retry agree
        options["seed"] = int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
    return options


def _client(client):
    if client is not None:
        return client
    import distributed
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError("fastmlp.distributed.fit needs a Dask client: pass client= or create a "
                         "distributed.Client first") from None


def _blocks(client, X, y, sample_weight):
    """X, y and sample_weight as lists of row blocks (NumPy arrays or dask delayed chunks), the
    number of features, the whole y as a dask array or NumPy array, and whether X was NumPy."""
    import dask.array as da
    if isinstance(X, da.Array):
        if X.ndim != 2 or any(math.isnan(c) for c in X.chunks[0]):
            raise ValueError("X must be a 2-D dask array with known chunk sizes (call X.compute_chunk_sizes())")
        X = X.rechunk({1: -1})
        bounds = np.cumsum((0,) + X.chunks[0])
        X_blocks = list(X.to_delayed().ravel())
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {X.shape}")
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        bounds = np.linspace(0, len(X), min(n_workers, max(len(X), 1)) + 1).round().astype(int)
        X_blocks = [X[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def like_rows(values, name):
        if values is None:
            return [None] * len(X_blocks)
        if not isinstance(values, da.Array):
            values = np.asarray(values)
        if values.ndim == 0 or values.shape[0] != X.shape[0]:
            raise ValueError(f"X and {name} have different numbers of samples: {X.shape[0]} and "
                             f"{values.shape[0] if values.ndim else 'a scalar'}")
        if isinstance(values, np.ndarray):
            return [values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        chunks = (tuple(np.diff(bounds)),) + tuple((s,) for s in values.shape[1:])
        return list(values.rechunk(chunks).to_delayed().ravel())

    return X_blocks, like_rows(y, "y"), like_rows(sample_weight, "sample_weight"), X.shape[1]


def _initial_model(n_features, y, options):
    """The model fit would start from: task, classes, layers and the seeded initial weights (or
    a copy of ``warm_start``). Gathers the labels unless ``classes_`` names the classes."""
    warm_start = options["warm_start"]
    if warm_start is not None:
        if not isinstance(warm_start, _model.MLP):
            raise TypeError(f"warm_start must be a fitted fastmlp.MLP, got {type(warm_start).__name__}")
        options["dtype"] = warm_start.dtype
        return warm_start.copy(n_features)
    dtype = options["dtype"] = check_dtype(options["dtype"])
    task, classes, loss = options["task"], options["classes_"], options["loss"]
    if classes is not None:
        if task not in (None, "classification"):
            raise ValueError("classes_ is only for single-label classification")
        task, classes = "classification", np.unique(np.asarray(classes))
        if len(classes) < 2:
            raise ValueError(f"classes_ must hold at least two labels, got {classes.tolist()}")
        n_outputs = len(classes)
    else:
        labels = np.asarray(y.compute() if hasattr(y, "compute") else y)
        task, Y, classes = check_targets(labels, len(labels), task, dtype, loss=loss)
        n_outputs = Y.shape[1]
    if loss is None:
        loss = "cross_entropy" if task == "multilabel" else "quadratic"
    layer_sizes = (n_features,) + check_hidden(options["hidden"]) + (n_outputs,)
    layer_activations = check_activations(len(layer_sizes) - 1, options["activation"],
                                          options["output_activation"], loss, task)
    if (options["weights"] is None) != (options["biases"] is None):
        raise ValueError("give both weights and biases, or neither")
    if options["weights"] is None:
        weights, biases = _model.init_parameters(layer_sizes, layer_activations,
                                                 np.random.default_rng(options["seed"]), dtype, options["init"])
    else:
        weights, biases = check_parameters(options["weights"], options["biases"], layer_sizes, dtype)
    if not options["use_bias"]:
        biases = [np.zeros_like(b) for b in biases]
    return _model.MLP(weights, biases, layer_activations, loss, classes, l2=options["l2"], l1=options["l1"],
                      task=task, single_target=np.ndim(y) == 1, use_bias=bool(options["use_bias"]))


def _input_scale(X, model, options):
    """The model's input scale: as fit checks it, against X's dtype (a dask array's too)."""
    input_scale = options["input_scale"]
    if options["warm_start"] is not None:
        if input_scale is not None and input_scale != model.input_scale:
            raise ValueError(f"input_scale={input_scale!r} differs from the warm_start model's {model.input_scale!r}")
        input_scale = model.input_scale
    x_dtype = X.dtype if hasattr(X, "dtype") else np.asarray(X).dtype
    return check_input_scale(input_scale, x_dtype, model.dtype)


def _setup(model, options):
    return _Setup(tuple(model.layer_activations), model.loss, model.dtype, model.l2, model.l1,
                  model.use_bias, options["optimizer"], options["momentum"], options["beta1"],
                  options["beta2"], options["epsilon"], bool(options["epsilon_hat"]), options["dropout"],
                  options["backend"], options["seed"], bool(options["shuffle"]), model.input_scale)


@dataclass(frozen=True)
class _Setup:
    """The network and the optimizer, as every task needs them."""
    layer_activations: tuple
    loss: str
    dtype: type
    l2: float
    l1: float
    use_bias: bool
    optimizer: str
    momentum: float
    beta1: float
    beta2: float
    epsilon: float
    epsilon_hat: bool
    dropout: float
    backend: str
    seed: int
    shuffle: bool
    input_scale: float = None   # uint8/uint16 shards: the network's input is X · input_scale

    def network(self, weights, biases, capacity, shard_index=0):
        """A network over ``weights``, ``biases`` (updated in place) with its own dropout key."""
        return _model.BACKENDS[self.backend](
            weights, biases, list(self.layer_activations), self.loss, capacity, momentum=self.momentum,
            l2=self.l2, nthreads=_task_threads(), optimizer=self.optimizer if self.optimizer != "lbfgs" else "sgd",
            l1=self.l1, dropout=self.dropout, use_bias=self.use_bias, beta1=self.beta1, beta2=self.beta2,
            epsilon=self.epsilon, epsilon_hat=self.epsilon_hat, seed=_shard_seed(self.seed, shard_index))


def _task_threads():
    """fastmlp's thread count, at most the worker's (a worker runs that many tasks at once)."""
    try:
        from distributed import get_worker
        return max(1, min(get_num_threads(), get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return get_num_threads()


def _shard_seed(seed, shard_index):
    return int(np.random.SeedSequence([seed, shard_index]).generate_state(1, np.uint64)[0])


def _shards(client, X_blocks, y_blocks, w_blocks, model):
    """One future per row block holding (X, Y, sample_weight) encoded as fit encodes them, and each
    shard's (rows, total sample weight). Recomputable from the graph if a worker is lost: a NumPy
    block travels inside its task, a dask chunk keeps its own graph."""
    import dask
    template = _model.MLP(model.weights, model.biases, model.layer_activations, model.loss, model.classes_,
                          task=model.task, use_bias=model.use_bias)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ll]arge (graph|object).*")
        if isinstance(X_blocks[0], np.ndarray):   # one block per worker, allowed to move if it dies
            workers = list(client.scheduler_info()["workers"])
            shards = [client.submit(_make_shard, x, labels, w, template, workers=[workers[k % len(workers)]],
                                    allow_other_workers=True)
                      for k, (x, labels, w) in enumerate(zip(X_blocks, y_blocks, w_blocks))]
        else:
            shards = client.compute([dask.delayed(_make_shard, pure=True)(x, labels, w, template)
                                     for x, labels, w in zip(X_blocks, y_blocks, w_blocks)])
    sizes = np.array(client.gather(client.map(_shard_size, shards)))
    return shards, sizes


def _make_shard(X, y, sample_weight, template):
    X = check_inputs(X, template.dtype, "X", template.layer_sizes[0])   # uint8/uint16 stay as they are
    Y = template.targets(y, len(X))
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, None, Y, None, template.dtype)
    return X, Y, sample_weight


def _shard_size(shard):
    """(rows, total sample weight) of a shard."""
    X, _, sample_weight = shard
    return len(X), float(len(X) if sample_weight is None else sample_weight.sum(dtype=np.float64))


def _validation(model, validation_data, monitor):
    """(X_val, Y_val, W_val) on the client, or None."""
    if validation_data is None:
        if monitor is not None and monitor.startswith("val"):
            raise ValueError(f"monitor={monitor!r} needs validation_data")
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)")
    values = [np.asarray(v.compute() if hasattr(v, "compute") else v) if v is not None else None
              for v in validation_data]
    X_val = check_inputs(values[0], model.dtype, "validation_data X", model.layer_sizes[0])
    Y_val = model.targets(values[1], len(X_val), "validation_data y")
    W_val = None
    if len(values) == 3 and values[2] is not None:
        W_val = check_sample_weight(values[2], None, Y_val, None, np.float64, "validation_data sample_weight")
    return X_val, Y_val, W_val


@dataclass
class _Sums:
    """Sample-weighted sums over shards: Σ wₖ·xₖ of each array and Σ wₖ; ``loss`` the summed cost,
    ``seconds``, ``steps`` and ``dropouts`` the largest of the shards (they run side by side).

    A shard's own result holds its arrays xₖ unscaled in the model's dtype (``scaled`` False), so
    float32 parameters travel as float32; sums are float64."""
    weight: float
    arrays: list
    loss: float
    seconds: float = 0.0
    steps: int = 0
    dropouts: int = 0
    scaled: bool = True

    def weighted(self):
        """Σ wₖ·xₖ in float64."""
        return self.arrays if self.scaled else [self.weight * a.astype(np.float64) for a in self.arrays]

    def __add__(self, other):
        return _Sums(self.weight + other.weight, [a + b for a, b in zip(self.weighted(), other.weighted())],
                     self.loss + other.loss, max(self.seconds, other.seconds), max(self.steps, other.steps),
                     max(self.dropouts, other.dropouts))


def _broadcast(client, value, attempts=5):
    """A future of ``value`` held by every worker: sent to each once, not inside each task that reads it.

    Every worker keeps a copy, so a task rerun after a worker is lost reads the same value on
    another. A worker lost during the scatter itself fails it (a CommClosedError, an OSError): it is
    tried again. Each scatter has a fresh key: a key hashed from the value could meet an earlier
    round's equal value while the scheduler is still releasing it.
    """
    for attempt in range(attempts):
        try:
            return client.scatter(value, broadcast=True, hash=False)
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * 2**attempt)


def _add(first, second):
    return first + second


def _tree_sum(client, futures):
    """Σ futures by a binary tree of tasks on the workers, in a fixed order (the same bits wherever
    the tasks run); returns the total."""
    while len(futures) > 1:
        pairs = [futures[i:i + 2] for i in range(0, len(futures), 2)]
        futures = [client.submit(_add, *pair, pure=False) if len(pair) == 2 else pair[0] for pair in pairs]
    return futures[0].result()


@functools.lru_cache(maxsize=8)
def _order(seed, epoch, shard_index, n_samples, shuffle):
    """The shard's row order in ``epoch``: a permutation drawn from (seed, epoch, shard)."""
    order = np.arange(n_samples, dtype=np.int64)
    if shuffle:
        np.random.default_rng([seed, epoch, shard_index]).shuffle(order)
    order.flags.writeable = False
    return order


@dataclass(frozen=True)
class _Round:
    """What a round starts from and ends with; replaced as a whole, never half-updated."""
    parameters: list
    state: list
    step_count: int
    dropout_counter: int


def _train_shard(shard, setup, start, epoch, shard_index, first_step, n_steps, batch_size, rate):
    """Mini-batch steps ``first_step .. first_step + n_steps − 1`` of ``epoch`` on one shard from
    ``start``; returns the sample-weighted parameters and state as :class:`_Sums`."""
    X, Y, sample_weight = shard
    n_layers = len(setup.layer_activations)
    parameters = [p.copy() for p in start.parameters]
    network = setup.network(parameters[:n_layers], parameters[n_layers:], batch_size, shard_index)
    copy_into(network.state, start.state)
    network.step_count, network.dropout_counter = start.step_count, start.dropout_counter
    order = _order(setup.seed, epoch, shard_index, len(X), setup.shuffle)
    network.bind(X, Y, order, sample_weight, 1.0 if setup.input_scale is None else setup.input_scale)
    first, last = first_step * batch_size, min((first_step + n_steps) * batch_size, len(X))
    started, loss = time.perf_counter(), 0.0
    for begin in range(first, last, batch_size):
        loss += network.train_batch(begin, min(begin + batch_size, last), rate)
    seconds = time.perf_counter() - started
    rows = order[first:last]
    weight = float(len(rows) if sample_weight is None else sample_weight[rows].sum(dtype=np.float64))
    return _Sums(weight, parameters + list(network.state), loss, seconds, network.step_count - start.step_count,
                 network.dropout_counter - start.dropout_counter, scaled=False)


def _average(total, start, dtype):
    """The next round's start: the weighted means of the shards' parameters and optimizer state."""
    means = [(a / total.weight).astype(dtype) for a in total.weighted()]
    n_parameters = len(start.parameters)
    return _Round(means[:n_parameters], means[n_parameters:], start.step_count + total.steps,
                  start.dropout_counter + total.dropouts)


def _fit_rounds(client, model, shards, shard_sizes, setup, options, average_every, validation):
    """Synchronous rounds of local SGD (Nesterov, Adam): the epoch loop of fit, a round at a time."""
    sizes = [int(n) for n in shard_sizes[:, 0]]
    n_samples = sum(sizes)
    batch_sizes = [max(1, round(options["batch_size"] * n / n_samples)) for n in sizes]
    steps = [-(-n // b) for n, b in zip(sizes, batch_sizes)]
    rounds_per_epoch = -(-max(steps) // average_every)
    network = setup.network(model.weights, model.biases, 1)
    restore_optimizer(network, model.optimizer_state)
    current = _Round([p.copy() for p in model.weights + model.biases], [s.copy() for s in network.state],
                     int(network.step_count), int(network.dropout_counter))

    history = model.history
    schedule = _Schedule(options)
    best = {"value": np.inf, "epoch": 0, "parameters": None, "waited": 0}
    first_epoch = len(history.get("loss", [])) + 1
    round_number = history.get("rounds", [0])[-1] if history.get("rounds") else 0
    progress = Progress(options["verbose"], first_epoch + options["epochs"] - 1, n_samples)
    epoch = first_epoch
    try:
        for epoch in range(first_epoch, first_epoch + options["epochs"]):
            started, compute, loss, weight = time.perf_counter(), 0.0, 0.0, 0.0
            for index in range(rounds_per_epoch):
                first_step = index * average_every
                start = _broadcast(client, current)
                futures = [client.submit(_train_shard, shard, setup, start, epoch, k, first_step,
                                         min(average_every, steps[k] - first_step), batch_sizes[k],
                                         schedule.rate, pure=False)
                           for k, shard in enumerate(shards) if steps[k] > first_step]
                total = _tree_sum(client, futures)
                round_number += 1
                following = _average(total, current, model.dtype)
                if not (np.isfinite(total.loss) and all(np.isfinite(p).all() for p in following.parameters)):
                    message = (f"training diverged in round {round_number} (epoch {epoch}): the cost became "
                               f"{total.loss / total.weight} or the weights stopped being finite; try a "
                               f"smaller learning_rate (now {schedule.rate})")
                    if options["on_divergence"] == "raise":
                        raise FloatingPointError(message)
                    history["diverged"] = epoch
                    warnings.warn(message + "; keeping the weights of the last finite round", RuntimeWarning,
                                  stacklevel=3)
                    raise _Stop
                current = following
                history.setdefault("round_loss", []).append(total.loss / total.weight)
                compute, loss, weight = compute + total.seconds, loss + total.loss, weight + total.weight
            model.weights, model.biases = current.parameters[:len(model.weights)], current.parameters[len(model.weights):]
            metrics = _epoch_metrics(model, epoch, loss / weight, schedule.rate, time.perf_counter() - started,
                                     validation)
            metrics.update(rounds=round_number, compute_seconds=compute)
            for key, value in metrics.items():
                if key != "epoch":
                    history.setdefault(key, []).append(value)
            progress.epoch(metrics)
            if _epoch_end(metrics, options, best, schedule, current, n_samples, history, epoch, first_epoch):
                break
    except _Stop:
        pass
    except KeyboardInterrupt:
        history["interrupted"] = epoch
        progress.message(f"epoch {epoch}: interrupted; keeping the weights of the last completed round")
    n_layers = len(model.weights)
    parameters = current.parameters
    if options["early_stopping"] and options["restore_best"] and best["parameters"] is not None:
        parameters = best["parameters"]
        history["best_epoch"] = best["epoch"]
    model.weights, model.biases = parameters[:n_layers], parameters[n_layers:]
    config = {name: options[name] for name in ("optimizer", "momentum", "beta1", "beta2", "epsilon", "l2", "l1",
                                               "dropout")}
    config["epsilon_hat"] = setup.epsilon_hat
    model.optimizer_state = {"optimizer": setup.optimizer, "state": current.state,
                             "step_count": current.step_count, "dropout_counter": current.dropout_counter,
                             "config": config}
    return model


class _Stop(Exception):
    """Training ends here, keeping the last finite round."""


def _epoch_metrics(model, epoch, loss, rate, seconds, validation):
    penalty = model.penalty()
    metrics = {"epoch": epoch, "loss": loss + penalty, "penalty": penalty, "learning_rate": rate,
               "seconds": seconds}
    if validation is not None:
        X_val, Y_val, W_val = validation
        output = model.output(X_val)
        total = len(X_val) if W_val is None else W_val.sum()
        metrics["val_loss"] = reference.loss_sum(output, Y_val, model.loss, W_val) / total
        metrics["val_accuracy" if model.task != "regression" else "val_r2"] = model._score(output, Y_val, W_val)
    return metrics


class _Schedule:
    """The learning rate of each epoch, as fit's ``lr_schedule`` sets it."""

    def __init__(self, options):
        self.options, self.rate, self.waited = options, options["learning_rate"], 0
        self.samples_seen = options["samples_seen"]

    def epoch_end(self, epochs_done, improved, n_samples):
        options, name = self.options, self.options["lr_schedule"]
        self.samples_seen += n_samples
        if name == "invscaling":
            self.rate = options["learning_rate"] / (self.samples_seen + 1) ** options["power_t"]
        elif name == "step" and epochs_done % options["lr_step"] == 0:
            self.rate *= options["lr_decay"]
        elif name == "plateau":
            self.waited = 0 if improved else self.waited + 1
            if self.waited >= options["lr_patience"]:
                self.rate, self.waited = self.rate * options["lr_decay"], 0


def _epoch_end(metrics, options, best, schedule, current, n_samples, history, epoch, first_epoch):
    """Early stopping, the schedule and the callback after an epoch; True to stop."""
    monitor = options["monitor"] or ("val_loss" if "val_loss" in metrics else "loss")
    value = metrics[monitor] if monitor != "val_score" else -metrics.get("val_accuracy", metrics.get("val_r2"))
    improved = value < best["value"] - options["tol"]
    if improved:
        best.update(value=value, epoch=epoch, waited=0)
        if options["early_stopping"] and options["restore_best"]:
            best["parameters"] = current.parameters
    else:
        best["waited"] += 1
    if options["early_stopping"] and best["waited"] >= options["n_iter_no_change"]:
        history["stopped_early"] = epoch
        return True
    schedule.epoch_end(epoch - first_epoch + 1, improved, n_samples)
    callback = options["callback"]
    if callback is not None and callback(dict(metrics)):
        history["stopped_by_callback"] = epoch
        return True
    return False


def _cost_gradient(shard, setup, shapes, vector):
    """Σ over the shard's rows of the cost, and its weight times the gradient of its mean cost
    (the penalty's included), at the parameters in ``vector``."""
    X, Y, sample_weight = shard
    pieces = np.split(vector, np.cumsum([math.prod(s) for s in shapes])[:-1])
    parameters = [np.ascontiguousarray(p.reshape(s), setup.dtype) for p, s in zip(pieces, shapes)]
    n_layers = len(setup.layer_activations)
    weights = parameters[:n_layers]
    biases = parameters[n_layers:] or [np.zeros(w.shape[1], setup.dtype) for w in weights]
    network = setup.network(weights, biases, len(X))
    loss = network.backprop(_model.scaled_inputs(X, setup.dtype, setup.input_scale), Y, sample_weight)
    weight = float(len(X) if sample_weight is None else sample_weight.sum(dtype=np.float64))
    gradients = network.weight_grads + (network.bias_grads if setup.use_bias else [])
    gradient = np.concatenate([g.ravel() for g in gradients]).astype(np.float64)
    return _Sums(weight, [weight * gradient if weight > 0 else np.zeros_like(gradient)], loss)


def _fit_lbfgs(client, model, shards, shard_sizes, setup, options):
    """Full-batch L-BFGS-B on the client; each cost and gradient is a tree sum over the shards."""
    parameters = model.weights + (model.biases if model.use_bias else [])
    shapes = [p.shape for p in parameters]
    total_weight = float(shard_sizes[:, 1].sum())

    def cost_and_gradient(vector):
        vector = _broadcast(client, vector)
        futures = [client.submit(_cost_gradient, shard, setup, shapes, vector, pure=False) for shard in shards]
        total = _tree_sum(client, futures)
        return total.loss / total_weight + model.penalty(), total.weighted()[0] / total_weight

    trainer = LBFGSTrainer(model, cost_and_gradient, int(shard_sizes[:, 0].sum()),
                           [History(), ProgressLogger(options["verbose"])])
    trainer.run(options["epochs"], options["max_fun"], options["tol"])
    history = model.history
    if "interrupted" not in history and not all(np.isfinite(p).all() for p in parameters):
        raise FloatingPointError(f"L-BFGS diverged in iteration {len(history.get('loss', ())) + 1}: "
                                 "the weights stopped being finite")
    return model
