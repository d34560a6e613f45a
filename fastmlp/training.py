"""``fit``: check the arguments, build the model and its network, run the Trainer.

The keyword arguments are shorthands: early stopping, the learning-rate schedules, the
divergence guard, progress and ``callback`` become callback objects (:mod:`fastmlp.callbacks`)
that the :class:`~fastmlp.trainer.Trainer` calls after every epoch.
"""
import inspect
import types

import numpy as np

from ._lbfgs import fit_lbfgs
from ._split import split_rows
from ._validation import (check_activations, check_choice, check_dtype, check_fits_in_memory, check_float,
                          check_hidden, check_input_scale, check_inputs, check_int, check_parameters,
                          check_sample_weight, check_targets, encode_labels, is_sparse)
from .callbacks import (Callback, DivergenceGuard, EarlyStopping, FunctionCallback, History, InverseScaling,
                        ProgressLogger, ReduceLROnPlateau, StepDecay)
from .model import BACKENDS, MAX_SEED, MLP, OPTIMIZERS, OptimizerConfig, init_parameters, scaled_inputs
from .trainer import Trainer

SCHEDULES = ("constant", "invscaling", "step", "plateau")


def fit(X, y, *, hidden=(16, 16), activation="sigmoid", output_activation=None, loss=None,
        epochs=10, batch_size=100, learning_rate=3.0, optimizer="sgd", momentum=0.0,
        beta1=0.9, beta2=0.999, epsilon=1e-8, epsilon_hat=False, l2=0.0, l1=0.0, dropout=0.0,
        use_bias=True, lr_schedule="constant", power_t=0.5, samples_seen=0, lr_decay=0.5, lr_step=10,
        lr_patience=2, task=None, init="fan_in", seed=None, dtype="float32", weights=None, biases=None,
        warm_start=None, in_place=False, classes_=None, shuffle=True, sample_weight=None, class_weight=None,
        validation_data=None, validation_fraction=None, early_stopping=False,
        n_iter_no_change=10, tol=1e-4, max_fun=15000, monitor=None, restore_best=True, callback=None,
        on_divergence="raise", backend="compiled", verbose=0, callbacks=(), input_scale=None):
    """Train a dense network by mini-batch gradient descent with backpropagation.

    The defaults are the seed network of 3Blue1Brown and Nielsen: two hidden layers of 16
    sigmoid neurons, quadratic cost, mini-batches of 100, learning rate 3.0, plain SGD.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Floats, or uint8 or uint16 integers, which are kept as they are (a quarter or half of
        float32's memory) and converted a mini-batch at a time, as ``X.astype(dtype) *
        dtype(input_scale)``: the result is the same as fitting that float array. A
        ``numpy.memmap`` is read where it lies, never copied (see ``shuffle="blocks"``; but see
        ``validation_fraction``). Other integer types are converted to ``dtype`` up front.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Labels (integers, strings or booleans: classification, one output per class), a 0/1
        indicator matrix (multi-label classification), or float targets (regression).
        ``task`` overrides the guess.
    hidden : sequence of int
        Sizes of the hidden layers (empty for no hidden layer).
    activation : str or sequence of str
        Activation of the hidden layers (one name, or one per hidden layer): "sigmoid",
        "tanh", "relu" or "identity".
    output_activation : {"sigmoid", "tanh", "relu", "identity", "softmax", "exp"}, optional
        Default: softmax for ``log_loss``, sigmoid for ``cross_entropy``, exp for ``poisson``,
        and for the quadratic cost the last hidden activation (classification) or identity
        (regression).
    loss : {"quadratic", "cross_entropy", "log_loss", "poisson"}, optional
        ``C = 1/(2n) Σ‖y − a‖²``; sigmoid cross-entropy; softmax log-loss; or for counts and
        rates (y ≥ 0, regression) half the Poisson deviance ``1/n Σ a − y ln a + y ln y − y``
        with an exp output (a log link). Default: quadratic, or cross_entropy for multi-label
        classification.
    epochs, batch_size : int
        A last mini-batch smaller than ``batch_size`` is kept. For L-BFGS ``epochs`` is the
        maximum number of iterations.
    max_fun : int
        L-BFGS only: the maximum number of evaluations of the cost and its gradient. L-BFGS
        stops earlier when no component of the gradient exceeds ``tol`` in size (SciPy's gtol).
    learning_rate : float
        Step size η (the initial one when a schedule changes it).
    optimizer : {"sgd", "nesterov", "adam", "lbfgs"}
        SGD (with classical ``momentum``), Nesterov momentum, Adam (``beta1``, ``beta2``,
        ``epsilon``), or full-batch L-BFGS (needs SciPy; loss and gradient come from our kernels).
    epsilon_hat : bool
        Adam only. False: ε is added to the bias-corrected √v̂, as in the paper's Algorithm 1
        (and PyTorch). True: it is added to √v before the correction, the paper's "ε̂" variant
        (as in scikit-learn and Keras): ``η (√(1−β₂ᵗ) / (1−β₁ᵗ)) m / (√v + ε)``.
    l2, l1 : float
        Penalties on the weights (not biases): the cost is
        ``mean loss + (l2/2) Σ‖W‖² + l1 Σ|W|``. Nielsen's λ over n training samples is ``l2 = λ/n``.
    dropout : float in [0, 1)
        Fraction of hidden units dropped in each training step (inverted dropout: the kept ones
        are scaled by 1/(1 − dropout)); nothing is dropped at predict time.
    use_bias : bool
        False: no biases (Welch Labs' network); ``biases`` stay zero.
    lr_schedule : {"constant", "invscaling", "step", "plateau"}
        ``invscaling``: η / (samples seen + 1)^power_t after each epoch (scikit-learn's rule),
        counting on from ``samples_seen`` (the samples of earlier calls, to continue a schedule);
        ``step``: η · lr_decay every ``lr_step`` epochs; ``plateau``: η · lr_decay when the
        monitored metric has not improved by ``tol`` for ``lr_patience`` epochs.
    task : {"classification", "multilabel", "regression"}, optional
    init : {"fan_in", "normal"}
        Weight initialisation (see :func:`init_parameters`).
    seed : int or None
        The same seed gives the same weights, whichever backend and thread count.
    dtype : {"float32", "float64"}
    weights, biases : lists of arrays, optional
        Start from these (copied, never modified) instead of random values.
    warm_start : MLP, optional
        Continue training this model: its weights, optimizer state, classes and history.
    in_place : bool
        With ``warm_start`` and a mini-batch optimizer: train that model itself, not a copy (no
        second copy of its weights and optimizer state; fit returns it). When training raises,
        the model is left as it was after its last completed epoch.
    classes_ : array-like, optional
        Every class label (classification), when ``y`` may not show all of them (training in
        chunks, as ``partial_fit`` does).
    shuffle : bool or "blocks"
        Shuffle the samples every epoch; ``False`` trains on them in order, step for step
        reproducible against another implementation. ``"blocks"``: each epoch takes contiguous
        blocks of rows (about 4 MiB of X each, a whole number of mini-batches) in a random order,
        and the rows of each block in a random order, so that an X memory-mapped from disk is
        read nearly sequentially, the next blocks while one is trained on. A ``numpy.memmap`` (or
        a view of one) is read with direct I/O (Linux's ``O_DIRECT``, bypassing the page cache)
        into a few reused buffers of a block each, where the file system allows it, otherwise
        through its mapping. Meant for rows stored in no particular order: a file sorted by class
        gives mini-batches of one class.
    sample_weight : array-like of shape (n_samples,), optional
        Weights of the samples' costs; a mini-batch's gradient is the weighted mean.
    class_weight : dict or "balanced", optional
        Weights per class (classification), multiplied into ``sample_weight``.
    validation_data : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
        Evaluated after every epoch into ``history`` (the loss and the score as weighted means
        when sample weights are given).
    validation_fraction : float in (0, 1), optional
        Hold out this fraction of the training data (stratified for classification), with its
        sample weights, as validation data instead. The held-out rows are copied into memory;
        the training rows are read where they lie (a memory-mapped X too), except for a sparse X
        or L-BFGS, which copy them.
    early_stopping : bool
        Stop when ``monitor`` has not improved by ``tol`` for ``n_iter_no_change`` epochs and,
        with ``restore_best``, go back to the best epoch's weights.
    monitor : {"val_loss", "val_score", "loss"}, optional
        The metric early stopping and the plateau schedule watch: validation loss by default
        (training loss without validation data).
    callback : callable, optional
        Called after every epoch as ``callback(metrics)`` with a dict (``epoch``, ``loss``,
        ``penalty``, ``learning_rate``, ``seconds`` and the validation metrics); a true return
        value stops training.
    callbacks : sequence of :class:`fastmlp.callbacks.Callback`
        Called between epochs after the ones the arguments above create (see
        :mod:`fastmlp.callbacks`): they can record, save, change the learning rate and stop.
    on_divergence : {"raise", "stop"}
        When the cost, the weights, the optimizer state or the outputs on the training (or
        validation) data stop being finite: raise :class:`DivergenceError` naming the epoch, or
        stop and keep the weights of the last finite epoch (``history["diverged"]``).
    backend : {"compiled", "numpy"}
        The compiled kernels, or their NumPy twin (the same algorithm, for checking and comparing).
    verbose : int
        1 prints one line per epoch (loss, validation score, samples/s, time left), with a
        progress line inside long epochs when the output is a terminal.
    input_scale : float > 0, optional
        For a uint8 or uint16 X only (e.g. ``1/255`` for 8-bit pixels): the network's input is
        ``X.astype(dtype) * dtype(input_scale)``. The model keeps it (``MLP.input_scale``) and
        multiplies every X it is given later by it, as does ``validation_data``'s X. None (the
        default): the integers as they are, as for any other X. With ``warm_start`` the model's
        scale is used, and ``input_scale``, if given, must equal it.

    Returns
    -------
    MLP
        The fitted model.

    Raises
    ------
    ValueError, TypeError
        On invalid input, naming the argument: among them a TypeError for ``input_scale`` with
        an X that is not uint8 or uint16, and a ValueError for an ``input_scale`` that is not
        finite and > 0, or for ``shuffle`` other than True, False or "blocks".
    DivergenceError
        When training diverges (a FloatingPointError and a ValueError).

    Notes
    -----
    Ctrl-C (KeyboardInterrupt) during training stops after the current mini-batch and returns the
    model as it was after the last completed epoch (L-BFGS: iteration): weights, optimizer state
    and history; ``history["interrupted"]`` holds the epoch that was cut short.

    Examples
    --------
    >>> import numpy as np, fastmlp
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25, dtype=float)
    >>> model = fastmlp.fit(X, (X[:, 0] != X[:, 1]).astype(int), hidden=(8,), epochs=300,
    ...                     batch_size=4, learning_rate=2.0, seed=0)
    >>> model.predict([[0, 1], [1, 1]])
    array([1, 0])
    """

    return _fit(X, y, _check_options(locals()))


def fit_rows(X, y, rows, **options):
    """``fit(X[rows], y[rows], **options)`` (``sample_weight[rows]`` too) without copying X's rows:
    they are read where they lie, as with ``validation_fraction``; a sparse X, or L-BFGS, copies
    them. ``rows``: sorted, distinct row indices. For the estimators' early-stopping split."""
    arguments = inspect.signature(fit).bind(X, y, **options)
    arguments.apply_defaults()
    return _fit(X, y, _check_options(arguments.arguments), np.asarray(rows, np.int64))


def _fit(X, y, options, rows=None):
    """fit, with its options checked; ``rows``: train on these rows of X only (None: all)."""
    X = check_inputs(X, options.dtype, "X")   # uint8 and uint16 are kept, and converted a batch at a time
    model, Y = _start(X, y, options)
    sample_weight = check_sample_weight(options.sample_weight, options.class_weight, Y,
                                        model.classes_ if model.task == "classification" else None, options.dtype)
    if rows is not None:
        X, Y, sample_weight, rows = _kept_rows(X, Y, sample_weight, rows, options)
    X, Y, sample_weight, rows, validation_data = _validation_data(X, Y, sample_weight, model, options, rows)
    if options.optimizer.name == "lbfgs":
        return _fit_lbfgs(model, X, Y, sample_weight, options)
    n_train = X.shape[0] if rows is None else len(rows)
    network = model.network(min(options.batch_size, n_train), options.optimizer, dropout=options.dropout,
                            seed=options.seed or 0, backend=options.backend, sparse_input=is_sparse(X))
    trainer = Trainer(model, network, X, Y, sample_weight, batch_size=options.batch_size,
                      learning_rate=options.learning_rate, shuffle=options.shuffle, seed=options.seed,
                      validation_data=validation_data, callbacks=_shorthand_callbacks(options), rows=rows)
    return trainer.run(options.epochs)


def _check_options(arguments):
    """fit's arguments but X and y, checked: every number a bounded Python int or a finite float
    (a huge int exponent would otherwise be raised to exactly, a float beyond the dtype would
    overflow in the kernels), every name a known one."""
    o = types.SimpleNamespace(**{name: value for name, value in arguments.items() if name not in ("X", "y")})
    if o.warm_start is not None and not isinstance(o.warm_start, MLP):
        raise TypeError(f"warm_start must be a fitted fastmlp.MLP, got {type(o.warm_start).__name__}")
    o.dtype = dtype = check_dtype(o.dtype if o.warm_start is None else o.warm_start.dtype)
    o.in_place = bool(o.in_place)
    if o.in_place and (o.warm_start is None or o.optimizer == "lbfgs"):
        raise ValueError("in_place=True trains a warm_start model in place, with a mini-batch optimizer: "
                         f"got warm_start={o.warm_start!r}, optimizer={o.optimizer!r}")
    for name in ("epochs", "batch_size", "max_fun"):
        setattr(o, name, check_int(getattr(o, name), name))
    o.learning_rate = check_float(o.learning_rate, "learning_rate", 0.0, inclusive=False, dtype=dtype)
    momentum = check_float(o.momentum, "momentum", 0.0, maximum=1.0, dtype=dtype)
    beta1 = check_float(o.beta1, "beta1", 0.0, maximum=1.0, dtype=dtype)
    beta2 = check_float(o.beta2, "beta2", 0.0, maximum=1.0, dtype=dtype)
    epsilon = check_float(o.epsilon, "epsilon", 0.0, inclusive=False, dtype=dtype)
    o.l2, o.l1 = check_float(o.l2, "l2", dtype=dtype), check_float(o.l1, "l1", dtype=dtype)
    o.dropout = check_float(o.dropout, "dropout", 0.0, maximum=1.0)
    o.tol = check_float(o.tol, "tol")
    o.n_iter_no_change = check_int(o.n_iter_no_change, "n_iter_no_change")
    o.samples_seen = check_int(o.samples_seen, "samples_seen", 0)
    o.power_t = check_float(o.power_t, "power_t")
    o.lr_decay = check_float(o.lr_decay, "lr_decay", 0.0, inclusive=False)
    if o.lr_decay > 1:
        raise ValueError(f"lr_decay must be <= 1 (the rate is multiplied by it), got {o.lr_decay}")
    o.lr_step, o.lr_patience = check_int(o.lr_step, "lr_step"), check_int(o.lr_patience, "lr_patience")
    for name, allowed in (("optimizer", OPTIMIZERS), ("lr_schedule", SCHEDULES),
                          ("on_divergence", ("raise", "stop")), ("backend", tuple(BACKENDS)),
                          ("monitor", (None, "val_loss", "val_score", "loss")), ("init", ("fan_in", "normal"))):
        check_choice(getattr(o, name), name, allowed)
    if o.seed is not None:
        o.seed = check_int(o.seed, "seed", 0, MAX_SEED)
    if o.callback is not None and not callable(o.callback):
        raise TypeError(f"callback must be callable, got {o.callback!r}")
    if isinstance(o.shuffle, str):
        check_choice(o.shuffle, "shuffle", (True, False, "blocks"))
    o.callbacks = list(o.callbacks)
    for callback in o.callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be fastmlp.callbacks.Callback objects, got {callback!r}")
    o.optimizer = OptimizerConfig(o.optimizer, momentum, beta1, beta2, epsilon, bool(o.epsilon_hat))
    return o


def _start(X, y, o):
    """The model to train (new, ``warm_start`` or a copy of it) and the target matrix Y."""
    if o.warm_start is not None:
        if o.input_scale is not None and o.input_scale != o.warm_start.input_scale:
            raise ValueError(f"input_scale={o.input_scale!r} differs from the warm_start model's "
                             f"{o.warm_start.input_scale!r}")
        check_input_scale(o.warm_start.input_scale, X.dtype, o.dtype)
        o.warm_start.expect_features(X.shape[1])
        model = o.warm_start if o.in_place else o.warm_start.copy()
        model.l2, model.l1 = o.l2, o.l1
        return model, model.targets(y, X.shape[0])
    input_scale = check_input_scale(o.input_scale, X.dtype, o.dtype)
    task = o.task
    if o.classes_ is not None:
        if task not in (None, "classification"):
            raise ValueError("classes_ is only for single-label classification")
        task, classes = "classification", np.unique(np.asarray(o.classes_))
        if len(classes) < 2:
            raise ValueError(f"classes_ must hold at least two labels, got {classes.tolist()}")
        Y = encode_labels(y, classes, o.dtype)
        if len(Y) != X.shape[0]:
            raise ValueError(f"X and y have different numbers of samples: {X.shape[0]} and {len(Y)}")
    else:
        task, Y, classes = check_targets(y, X.shape[0], task, o.dtype, loss=o.loss)
    loss = o.loss or ("cross_entropy" if task == "multilabel" else "quadratic")
    layer_sizes = (X.shape[1],) + check_hidden(o.hidden) + (Y.shape[1],)
    check_fits_in_memory(layer_sizes, o.dtype, f"hidden={o.hidden!r}")
    layer_activations = check_activations(len(layer_sizes) - 1, o.activation, o.output_activation, loss, task)
    if (o.weights is None) != (o.biases is None):
        raise ValueError("give both weights and biases, or neither")
    if o.weights is None:
        weights, biases = init_parameters(layer_sizes, layer_activations, np.random.default_rng(o.seed), o.dtype,
                                          o.init)
    else:
        weights, biases = check_parameters(o.weights, o.biases, layer_sizes, o.dtype)
    if not o.use_bias:
        biases = [np.zeros_like(b) for b in biases]
    model = MLP(weights, biases, layer_activations, loss, classes, l2=o.l2, l1=o.l1, task=task,
                single_target=np.ndim(y) == 1, use_bias=bool(o.use_bias), input_scale=input_scale)
    return model, Y


def _kept_rows(X, Y, sample_weight, rows, o):
    """(X, Y, sample_weight, rows) to train on the given rows of X: the same arrays and the rows,
    or copies of those rows and None for a sparse X or L-BFGS."""
    if rows.ndim != 1 or len(rows) == 0 or np.any(np.diff(rows) <= 0) or rows[0] < 0 or rows[-1] >= X.shape[0]:
        raise ValueError("rows must be sorted, distinct indices of X's rows, at least one")
    if o.validation_fraction is not None:
        raise ValueError("give rows or validation_fraction, not both")
    if sample_weight is not None and not sample_weight[rows].sum() > 0:
        raise ValueError("sample_weight must be >= 0 with a positive sum")
    if is_sparse(X) or o.optimizer.name == "lbfgs":
        return (*_copied_rows(X, Y, sample_weight, rows), None)
    return X, Y, sample_weight, rows


def _validation_data(X, Y, sample_weight, model, o, rows=None):
    """(X, Y, sample_weight, rows, validation_data): the training data, the rows of it to train on
    (``rows``, or None: all), and (X_val, Y_val, W_val) from ``validation_data`` or held out by
    ``validation_fraction`` (stratified by class), or None."""
    validation_data = None
    if o.validation_fraction is not None:
        if o.validation_data is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        fraction = check_float(o.validation_fraction, "validation_fraction", 0.0, inclusive=False, maximum=1.0)
        rng = np.random.default_rng(o.seed)
        if is_sparse(X) or o.optimizer.name == "lbfgs":
            X, Y, sample_weight, validation_data = _split(X, Y, sample_weight, fraction, model.task, rng)
        else:   # the training rows are read where they lie in X: only the held-out ones are copied
            rows, validation_data = _held_out(X, Y, sample_weight, fraction, model.task, rng)
        W_val = validation_data[2]
        if W_val is not None and not W_val.sum() > 0:
            raise ValueError("the validation rows held out all have sample_weight 0; use another seed or "
                             "validation_fraction")
    elif o.validation_data is not None:
        given = o.validation_data
        if not isinstance(given, (tuple, list)) or len(given) not in (2, 3):
            raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)")
        X_val = check_inputs(given[0], o.dtype, "validation_data X", X.shape[1])
        Y_val = model.targets(given[1], X_val.shape[0], "validation_data y")
        W_val = None
        if len(given) == 3 and given[2] is not None:
            W_val = check_sample_weight(given[2], None, Y_val, None, np.float64, "validation_data sample_weight")
        validation_data = (X_val, Y_val, W_val)
    if (o.monitor or "").startswith("val") and validation_data is None:
        raise ValueError(f"monitor={o.monitor!r} needs validation_data or validation_fraction")
    return X, Y, sample_weight, rows, validation_data


def _held_out(X, Y, sample_weight, fraction, task, rng):
    """(keep, (X_val, Y_val, W_val)): the rows to train on, and ``fraction`` of the rows held out as
    validation data (copies), stratified by class for classification."""
    strata = np.argmax(Y, axis=1) if task == "classification" else None
    keep, held = split_rows(X.shape[0], fraction, rng, strata)
    if len(keep) == 0 or len(held) == 0:
        raise ValueError(f"validation_fraction={fraction} leaves no training or no validation samples")
    held_weights = None if sample_weight is None else sample_weight[held].astype(np.float64)
    return keep, (X[held], Y[held], held_weights)


def _split(X, Y, sample_weight, fraction, task, rng):
    """``_held_out``, with the training rows copied too: (X, Y, sample_weight, validation_data)."""
    keep, validation_data = _held_out(X, Y, sample_weight, fraction, task, rng)
    return (*_copied_rows(X, Y, sample_weight, keep), validation_data)


def _copied_rows(X, Y, sample_weight, rows):
    """(X, Y, sample_weight) of the given rows only, copies (C-contiguous where dense)."""
    weights = None if sample_weight is None else np.ascontiguousarray(sample_weight[rows])
    kept = X[rows] if is_sparse(X) else np.ascontiguousarray(X[rows])
    return kept, np.ascontiguousarray(Y[rows]), weights


def _fit_lbfgs(model, X, Y, sample_weight, o):
    """L-BFGS, full batch: every step reads every row, so integer rows are converted once, up front."""
    input_scale, model.input_scale = model.input_scale, None
    model = fit_lbfgs(model, scaled_inputs(X, o.dtype, input_scale), Y, sample_weight, o.epochs, o.max_fun, o.tol,
                      o.backend, [History(), ProgressLogger(o.verbose)] + _user_callbacks(o))
    model.input_scale = input_scale
    return model


def _user_callbacks(o):
    """``callback`` (a function) and ``callbacks`` (objects), as callback objects."""
    return ([FunctionCallback(o.callback)] if o.callback is not None else []) + o.callbacks


def _shorthand_callbacks(o, divergence_guard=True):
    """The callbacks fit's keyword arguments ask for, in the order they act after an epoch."""
    callbacks = [DivergenceGuard(o.on_divergence)] if divergence_guard else []
    callbacks += [History(), ProgressLogger(o.verbose)]
    if o.early_stopping:
        callbacks.append(EarlyStopping(o.monitor, o.n_iter_no_change, o.tol, o.restore_best))
    if o.lr_schedule == "invscaling":
        callbacks.append(InverseScaling(o.power_t, o.samples_seen))
    elif o.lr_schedule == "step":
        callbacks.append(StepDecay(o.lr_decay, o.lr_step))
    elif o.lr_schedule == "plateau":
        callbacks.append(ReduceLROnPlateau(o.monitor, o.lr_decay, o.lr_patience, o.tol))
    return callbacks + _user_callbacks(o)
