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
import types
import warnings
from dataclasses import dataclass

import numpy as np

from . import model as _model
from . import training as _training
from ._config import get_num_threads
from ._lbfgs import LBFGSTrainer
from .callbacks import History, ProgressLogger, copy_into
from .exceptions import DivergenceError
from .trainer import Trainer
from ._validation import (check_activations, check_dtype, check_hidden,
                          check_input_scale, check_inputs, check_int, check_parameters, check_sample_weight,
                          check_targets)

UNSUPPORTED = ("validation_fraction", "class_weight", "in_place")


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
    if options["optimizer"].name == "lbfgs":
        return _fit_lbfgs(client, model, shards, sizes, setup, options)
    return _fit_rounds(client, model, shards, sizes, setup, options, average_every, validation)


def _import_dask():
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError('fastmlp.distributed needs Dask: pip install "fastmlp[dask]"') from None


def _options(fit_kwargs):
    """fit's keyword arguments, checked as fit checks them (a dict); unsupported ones rejected."""
    signature = inspect.signature(_training.fit)
    try:
        bound = signature.bind(None, None, **fit_kwargs)
    except TypeError as error:
        raise TypeError(f"fastmlp.distributed.fit: {error}") from None
    bound.apply_defaults()
    for name in UNSUPPORTED:
        if bound.arguments[name] not in (None, False):
            raise ValueError(f"fastmlp.distributed.fit does not support {name}, got {bound.arguments[name]!r}")
    options = vars(_training._check_options(bound.arguments))
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
        warm_start.expect_features(n_features)
        return warm_start.copy()
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
    return _Setup(model.copy(), options["optimizer"], options["dropout"], options["backend"], options["seed"],
                  bool(options["shuffle"]))


@dataclass(frozen=True)
class _Setup:
    """The network and the optimizer, as every task needs them: ``template`` is the model
    (its architecture, cost, penalties and input scale; its own weights are not trained)."""
    template: _model.MLP
    optimizer: _model.OptimizerConfig
    dropout: float
    backend: str
    seed: int
    shuffle: bool

    @property
    def dtype(self):
        return self.template.dtype

    def network(self, weights, biases, capacity, shard_index=0):
        """A network over ``weights``, ``biases`` (updated in place) with its own dropout key."""
        template = self.template
        model = _model.MLP(weights, biases, template.layer_activations, template.loss, l2=template.l2,
                           l1=template.l1, use_bias=template.use_bias)
        optimizer = self.optimizer if self.optimizer.name != "lbfgs" else _model.OptimizerConfig()
        return model.network(capacity, optimizer, dropout=self.dropout, backend=self.backend,
                             seed=_shard_seed(self.seed, shard_index), nthreads=_task_threads())


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
    X = check_inputs(X, template.dtype, "X", template.layer_sizes[0], accept_sparse=False)   # uint8/uint16 stay as they are
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
    X_val = check_inputs(values[0], model.dtype, "validation_data X", model.layer_sizes[0], accept_sparse=False)
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


def _broadcast(client, value):
    """A future of ``value`` for the tasks of a round: the result of a task that returns it.

    The value is sent to the cluster once, in that task's definition; each worker fetches the
    result once for all its tasks that read it. A worker lost with it costs nothing: Dask reruns
    the task, from its definition, on another. Not a scatter to every worker: one that meets a
    worker as it is killed can wait for it forever, whatever its timeout says.
    """
    return client.submit(_same, value, pure=False)


def _same(value):
    return value


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
    n_layers = len(setup.template.weights)
    parameters = [p.copy() for p in start.parameters]
    network = setup.network(parameters[:n_layers], parameters[n_layers:], batch_size, shard_index)
    copy_into(network.state, start.state)
    network.step_count, network.dropout_counter = start.step_count, start.dropout_counter
    order = _order(setup.seed, epoch, shard_index, len(X), setup.shuffle)
    input_scale = setup.template.input_scale
    network.bind(X, Y, order, sample_weight, 1.0 if input_scale is None else input_scale)
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
    """Synchronous rounds of local SGD (Nesterov, Adam) through the Trainer: its callbacks, early
    stopping, schedules and Ctrl-C, with each epoch a series of rounds."""
    o = types.SimpleNamespace(**options)
    trainer = _RoundTrainer(model, client, shards, [int(n) for n in shard_sizes[:, 0]], setup, o, average_every,
                            validation)
    return trainer.run(o.epochs)


class _RoundTrainer(Trainer):
    """The Trainer's epochs, each made of rounds: every shard steps from the same start, then the
    parameters and optimizer state are averaged into the model. The divergence check runs after
    every round, and Ctrl-C keeps the last complete round."""

    def __init__(self, model, client, shards, sizes, setup, o, average_every, validation):
        self.attach(model, model.weights + model.biases, sum(sizes),
                    _training._shorthand_callbacks(o, divergence_guard=False))
        self.client, self.shards, self.setup, self.on_divergence = client, shards, setup, o.on_divergence
        self.network = setup.network(model.weights, model.biases, 1)   # holds the optimizer state
        self.restore_optimizer(model.optimizer_state)
        self.learning_rate, self.validation_data = o.learning_rate, validation
        self.batch_sizes = [max(1, round(o.batch_size * n / self.n_samples)) for n in sizes]
        self.steps = [-(-n // b) for n, b in zip(sizes, self.batch_sizes)]
        self.average_every = average_every
        self.rounds_per_epoch = -(-max(self.steps) // average_every)
        self.round_number = self.history["rounds"][-1] if self.history.get("rounds") else 0

    def train_epoch(self, epoch, batch_callbacks=()):
        """The epoch's rounds; the mean cost and the seconds, or None when a divergence ended training."""
        started, self.compute_seconds, loss, weight = time.perf_counter(), 0.0, 0.0, 0.0
        network = self.network
        current = _Round([p.copy() for p in self.parameters], [s.copy() for s in network.state],
                         int(network.step_count), int(network.dropout_counter))
        for index in range(self.rounds_per_epoch):
            total = self.round(current, epoch, index * self.average_every)
            following = _average(total, current, self.model.dtype)
            if not (np.isfinite(total.loss) and all(np.isfinite(p).all() for p in following.parameters)):
                self.diverged(epoch, total)
                return None
            current = following
            self.take(current)
            self.history.setdefault("round_loss", []).append(total.loss / total.weight)
            self.compute_seconds, loss, weight = self.compute_seconds + total.seconds, loss + total.loss, \
                weight + total.weight
        return loss / weight, time.perf_counter() - started

    def round(self, current, epoch, first_step):
        """One round from ``current``: each shard's steps first_step.. on the workers, summed."""
        start = _broadcast(self.client, current)
        futures = [self.client.submit(_train_shard, shard, self.setup, start, epoch, k, first_step,
                                      min(self.average_every, self.steps[k] - first_step), self.batch_sizes[k],
                                      self.learning_rate, pure=False)
                   for k, shard in enumerate(self.shards) if self.steps[k] > first_step]
        self.round_number += 1
        return _tree_sum(self.client, futures)

    def take(self, current):
        """Make ``current`` the model's parameters and the network's optimizer state."""
        copy_into(self.parameters, current.parameters)
        copy_into(self.network.state, current.state)
        self.network.step_count, self.network.dropout_counter = current.step_count, current.dropout_counter

    def diverged(self, epoch, total):
        """Raise, or stop keeping the last finite round (the model holds it)."""
        message = (f"training diverged in round {self.round_number} (epoch {epoch}): the cost became "
                   f"{total.loss / total.weight} or the weights stopped being finite; try a smaller "
                   f"learning_rate (now {self.learning_rate})")
        if self.on_divergence == "raise":
            raise DivergenceError(message)
        self.history["diverged"] = epoch
        self.stop_training = True
        warnings.warn(message + "; keeping the weights of the last finite round", RuntimeWarning, stacklevel=4)

    def undo_epoch(self):
        """After Ctrl-C: stop, keeping the last complete round (the model holds it)."""
        self.stop_training = self.undone = True

    def log_names(self):
        return super().log_names() + ["rounds", "compute_seconds"]

    def epoch_logs(self, epoch, loss, seconds):
        logs = super().epoch_logs(epoch, loss, seconds)
        logs.update(rounds=self.round_number, compute_seconds=self.compute_seconds)
        return logs


def _cost_gradient(shard, setup, shapes, vector):
    """Σ over the shard's rows of the cost, and its weight times the gradient of its mean cost
    (the penalty's included), at the parameters in ``vector``."""
    X, Y, sample_weight = shard
    pieces = np.split(vector, np.cumsum([math.prod(s) for s in shapes])[:-1])
    parameters = [np.ascontiguousarray(p.reshape(s), setup.dtype) for p, s in zip(pieces, shapes)]
    n_layers = len(setup.template.weights)
    weights = parameters[:n_layers]
    biases = parameters[n_layers:] or [np.zeros(w.shape[1], setup.dtype) for w in weights]
    network = setup.network(weights, biases, len(X))
    loss = network.backprop(_model.scaled_inputs(X, setup.dtype, setup.template.input_scale), Y, sample_weight)
    weight = float(len(X) if sample_weight is None else sample_weight.sum(dtype=np.float64))
    gradients = network.weight_grads + (network.bias_grads if setup.template.use_bias else [])
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

    o = types.SimpleNamespace(**options)
    trainer = LBFGSTrainer(model, cost_and_gradient, int(shard_sizes[:, 0].sum()),
                           [History(), ProgressLogger(o.verbose)] + _training._user_callbacks(o))
    trainer.run(options["epochs"], options["max_fun"], options["tol"])
    history = model.history
    if "interrupted" not in history and not all(np.isfinite(p).all() for p in parameters):
        raise FloatingPointError(f"L-BFGS diverged in iteration {len(history.get('loss', ())) + 1}: "
                                 "the weights stopped being finite")
    return model
