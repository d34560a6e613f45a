"""Training and using a dense network: ``fit``, the fitted ``MLP``, ``forward`` and ``backprop``.

Python drives the epochs and mini-batches; each mini-batch is one call into compiled code
(``fastmlp._kernels.Network.train_batch``), or into its NumPy twin with ``backend="numpy"``.
"""
import math
import time
import warnings

import numpy as np

from . import _kernels, reference
from ._config import kernel_threads
from ._progress import Progress
from ._validation import (check_activations, check_array, check_choice, check_dtype, check_fits_in_memory,
                          check_float, check_hidden, check_int, check_parameters, check_sample_weight,
                          check_targets, check_targets_for_loss, encode_labels, is_sparse)
from .exceptions import DivergenceError

BACKENDS = {"compiled": _kernels.Network, "numpy": reference.Network}
OPTIMIZERS = ("sgd", "nesterov", "adam", "lbfgs")
SCHEDULES = ("constant", "invscaling", "step", "plateau")
MAX_SEED = 2**64 - 1   # the compiled network keeps its dropout seed as a uint64
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "identity", "softmax", "exp")


def network_class(backend):
    """The Network class of ``backend``: "compiled" (the kernels) or "numpy" (their NumPy twin)."""
    return BACKENDS[check_choice(backend, "backend", tuple(BACKENDS))]


def invscaling_rate(learning_rate, samples_seen, power_t):
    """η / (samples_seen + 1)^power_t (scikit-learn's "invscaling"), 0 where the power overflows."""
    try:
        return learning_rate / float(samples_seen + 1) ** power_t
    except OverflowError:   # (t + 1)^power_t beyond 1.8e308: η over it is 0 in double precision
        return 0.0


def r2_score(Y, predicted, sample_weight=None):
    """R² = 1 − Σ w (y − ŷ)² / Σ w (y − ȳ)² of each column (ȳ its weighted mean), averaged over
    the columns; a constant column scores 1 if it is predicted exactly, else 0."""
    Y, predicted = np.asarray(Y, np.float64), np.asarray(predicted, np.float64)
    weights = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    residual = weights @ (Y - predicted) ** 2
    total = weights @ (Y - np.average(Y, axis=0, weights=weights)) ** 2
    return float(np.mean(np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), residual == 0)))


def init_parameters(layer_sizes, activations, rng, dtype=np.float32, init="fan_in"):
    """Random weights and biases for the given layer sizes.

    ``init="fan_in"``: weights ~ N(0, 1/n_in) (N(0, 2/n_in) into a ReLU layer, He et al.), biases 0.
    ``init="normal"``: weights and biases ~ N(0, 1), as in Nielsen's network.py.
    Drawn in float64 from ``rng`` and then cast, so both dtypes start from the same numbers.
    """
    check_choice(init, "init", ("fan_in", "normal"))
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(f"layer_sizes must be a sequence of ints, got {layer_sizes!r}")
    layer_sizes = [check_int(n, "layer size") for n in layer_sizes]
    if isinstance(activations, (str, bytes)) or not hasattr(activations, "__len__"):
        raise TypeError(f"activations must be a sequence of names, got {activations!r}")
    if len(layer_sizes) < 2 or len(activations) != len(layer_sizes) - 1:
        raise ValueError(f"need at least two layer sizes and one activation per layer after the first, got "
                         f"{len(layer_sizes)} sizes and {len(activations)} activations")
    for activation in activations:
        check_choice(activation, "activation", ACTIVATION_NAMES)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {rng!r}")
    dtype = check_dtype(dtype)
    check_fits_in_memory(layer_sizes, dtype, f"layer_sizes={tuple(layer_sizes)}")
    weights, biases = [], []
    for n_in, n_out, activation in zip(layer_sizes[:-1], layer_sizes[1:], activations):
        if init == "normal":
            scale, bias = 1.0, rng.standard_normal(n_out)
        else:
            scale, bias = np.sqrt((2.0 if activation == "relu" else 1.0) / n_in), np.zeros(n_out)
        weights.append((scale * rng.standard_normal((n_in, n_out))).astype(dtype))
        biases.append(bias.astype(dtype))
    return weights, biases


class MLP:
    """A fitted multilayer perceptron, as returned by :func:`fit`.

    Attributes
    ----------
    weights : list of ndarray of shape (n_in, n_out)
        ``weights[l]`` maps layer l to layer l + 1 (``Z = A · W + b``).
    biases : list of ndarray of shape (n_out,)
        Zeros that stay zero when the model was fitted with ``use_bias=False``.
    layer_activations : list of str
        The activation of each layer (the last one is the output activation).
    loss : str
    task : {"classification", "multilabel", "regression"}
    classes_ : ndarray or None
        The class labels (classification), label indices (multi-label), None for regression.
    history : dict of lists
        Per epoch: ``loss`` (mean training cost), ``penalty`` (the regularisation term included
        in ``loss``), ``learning_rate``, ``seconds``, and with
        validation data ``val_loss`` and ``val_accuracy`` (classification) or ``val_r2``
        (regression). ``interrupted``, ``diverged``, ``stopped_early``, ``best_epoch`` and
        ``limit_reached`` (L-BFGS stopped by ``epochs`` or ``max_fun``) record how training ended.
    optimizer_state : dict or None
        What continuing training needs (see ``fit(warm_start=...)``): the optimizer's name,
        its state arrays (velocity or Adam's moments), the step count and the dropout counter.
    """

    def __init__(self, weights, biases, layer_activations, loss, classes=None, history=None, l2=0.0,
                 single_target=True, task=None, l1=0.0, use_bias=True, optimizer_state=None):
        self.weights, self.biases = weights, biases
        self.layer_activations, self.loss = list(layer_activations), loss
        self.classes_ = classes
        self.history = history if history is not None else {}
        self.l2, self.l1, self.use_bias = l2, l1, use_bias
        self.single_target = single_target   # regression on a 1-D y: predict returns 1-D
        self.task = task or ("regression" if classes is None else "classification")
        self.optimizer_state = optimizer_state

    @property
    def dtype(self):
        return self.weights[0].dtype.type

    @property
    def layer_sizes(self):
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)

    def output(self, X, backend="compiled"):
        """The output layer's activations aᴸ for every row of X (an array, or a SciPy sparse matrix)."""
        X = check_array(X, self.weights[0].dtype.type, "X", self.weights[0].shape[0], accept_sparse=True)
        if backend == "compiled" and is_sparse(X):
            return self._predictor().output_sparse(X, kernel_threads())
        if backend == "compiled":
            return self._output(X)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        network = network_class(backend)(self.weights, self.biases, self.layer_activations, self.loss,
                                         min(X.shape[0], 1024), use_bias=self.use_bias)
        network.forward(X, out)
        return out

    def _output(self, X):
        """aᴸ for the rows of X, which ``check_array`` has passed: one compiled call."""
        return self._predictor().output(X, kernel_threads())

    def _predictor(self):
        """The compiled forward pass of this network (``_kernels.Predictor``), built on first use and
        again whenever the weights, biases or activations have been replaced since."""
        predictor = self.__dict__.get("_compiled")
        if predictor is None or not predictor.binds(self.weights, self.biases, self.layer_activations,
                                                    self.use_bias):
            predictor = self._compiled = _kernels.Predictor(self.weights, self.biases, self.layer_activations,
                                                            self.use_bias)
        return predictor

    def __getstate__(self):
        """The model's attributes without its compiled forward pass (rebuilt on first use)."""
        state = self.__dict__.copy()
        state.pop("_compiled", None)
        return state

    def forward(self, X):
        """Activations of every layer for the rows of X: ``[a⁰ = X, a¹, ..., aᴸ]``."""
        X = check_array(X, self.dtype, "X", self.layer_sizes[0], accept_sparse=True)
        network = reference.Network(self.weights, self.biases, self.layer_activations, self.loss, X.shape[0],
                                    use_bias=self.use_bias)
        return network._forward(X)

    def predict(self, X):
        """Class labels (classification), 0/1 indicator rows (multi-label) or target values (regression)."""
        out = self.output(X)
        if self.task == "multilabel":
            return (out > 0.5).astype(np.int64)
        if self.task == "regression":
            return out[:, 0] if self.single_target and out.shape[1] == 1 else out
        return self.classes_[np.argmax(out, axis=1)]

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes).

        Softmax outputs are probabilities as they are; multi-label sigmoid outputs are each
        label's probability; other outputs are clipped at 0 and normalised to sum to 1.
        """
        if self.task == "regression":
            raise AttributeError("predict_proba is only available for classification")
        out = self.output(X)
        if self.layer_activations[-1] == "softmax" or self.task == "multilabel":
            return out
        out = np.maximum(out, 0)
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.full_like(out, 1 / out.shape[1]), where=total > 0)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classification; exact-match for multi-label), or R² (regression); weighted by
        ``sample_weight`` when given."""
        out, Y = self._output_and_targets(X, y)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, None, Y, None, np.float64)
        return self._score(out, Y, sample_weight)

    def _score(self, out, Y, sample_weight=None):
        if self.task == "classification":
            correct = np.argmax(out, axis=1) == np.argmax(Y, axis=1)
        elif self.task == "multilabel":
            correct = np.all((out > 0.5) == (Y > 0.5), axis=1)
        else:
            return r2_score(Y, out, sample_weight)
        return float(np.average(correct, weights=sample_weight))

    def targets(self, y, n_samples=None, name="y"):
        """The target matrix Y the cost compares with the output (one-hot rows for labels).

        Labels not seen during fit are an error; so is a length other than ``n_samples``.
        """
        if self.task == "classification":
            Y = encode_labels(y, self.classes_, self.dtype, name)
        else:
            y = np.asarray(y)
            Y = check_array(y.reshape(len(y), -1) if y.ndim else y, self.dtype, name)
            if Y.shape[1] != self.layer_sizes[-1]:
                raise ValueError(f"{name} has {Y.shape[1]} columns, but the model has {self.layer_sizes[-1]} outputs")
            check_targets_for_loss(Y, self.loss, name)
        if n_samples is not None and len(Y) != n_samples:
            x_name = name[:-1] + "X"
            raise ValueError(f"{x_name} and y have different numbers of samples: {n_samples} and {len(Y)}")
        return Y

    def _output_and_targets(self, X, y):
        out = self.output(X)
        return out, self.targets(y, len(out))

    def penalty(self):
        """The regularisation term of the cost: (l2/2) Σ‖W‖² + l1 Σ|W|, over the weights.

        A term whose coefficient is 0 is 0, however large the weights (never 0 · inf = NaN)."""
        total = 0.0
        with np.errstate(over="ignore"):   # weights beyond 1e154: Σ‖W‖² is inf, and so is the cost
            for w in self.weights:
                if self.l2:
                    total += 0.5 * self.l2 * float(np.sum(np.square(w, dtype=np.float64)))
                if self.l1:
                    total += self.l1 * float(np.sum(np.abs(w), dtype=np.float64))
        return total

    def cost(self, X, y):
        """The mean cost over the rows of X, including the regularisation term."""
        out, Y = self._output_and_targets(X, y)
        return reference.loss_sum(out, Y, self.loss) / len(out) + self.penalty()

    def backprop(self, X, y, backend="compiled"):
        """Exact gradients of the mean cost over (X, y): ``(weight_grads, bias_grads)``.

        Same shapes as ``weights`` and ``biases``; the regularisation term is included.
        """
        Network = network_class(backend)
        X = check_array(X, self.dtype, "X", self.layer_sizes[0], accept_sparse=True)
        Y = self.targets(y, X.shape[0])
        sparse = is_sparse(X)
        network = Network(self.weights, self.biases, self.layer_activations, self.loss,
                          X.shape[0], l2=self.l2, nthreads=kernel_threads(), l1=self.l1,
                          use_bias=self.use_bias, sparse_input=sparse)
        (network.backprop_sparse if sparse else network.backprop)(X, Y)
        return [g.copy() for g in network.weight_grads], [g.copy() for g in network.bias_grads]


def fit(X, y, *, hidden=(16, 16), activation="sigmoid", output_activation=None, loss=None,
        epochs=10, batch_size=100, learning_rate=3.0, optimizer="sgd", momentum=0.0,
        beta1=0.9, beta2=0.999, epsilon=1e-8, epsilon_hat=False, l2=0.0, l1=0.0, dropout=0.0,
        use_bias=True, lr_schedule="constant", power_t=0.5, samples_seen=0, lr_decay=0.5, lr_step=10,
        lr_patience=2, task=None, init="fan_in", seed=None, dtype="float32", weights=None, biases=None,
        warm_start=None, classes_=None, shuffle=True, sample_weight=None, class_weight=None,
        validation_data=None, validation_fraction=None, early_stopping=False,
        n_iter_no_change=10, tol=1e-4, max_fun=15000, monitor=None, restore_best=True, callback=None,
        on_divergence="raise", backend="compiled", verbose=0):
    """Train a dense network by mini-batch gradient descent with backpropagation.

    The defaults are the seed network of 3Blue1Brown and Nielsen: two hidden layers of 16
    sigmoid neurons, quadratic cost, mini-batches of 100, learning rate 3.0, plain SGD.

    Parameters
    ----------
    X : array-like or SciPy sparse matrix of shape (n_samples, n_features)
        A sparse X (CSR as it is; CSC and other formats converted to CSR once) is never densified:
        the first layer works on its nonzeros (see :func:`fastmlp._validation.check_sparse`).
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
    classes_ : array-like, optional
        Every class label (classification), when ``y`` may not show all of them (training in
        chunks, as ``partial_fit`` does).
    shuffle : bool
        Shuffle the samples every epoch; ``False`` trains on them in order, step for step
        reproducible against another implementation.
    sample_weight : array-like of shape (n_samples,), optional
        Weights of the samples' costs; a mini-batch's gradient is the weighted mean.
    class_weight : dict or "balanced", optional
        Weights per class (classification), multiplied into ``sample_weight``.
    validation_data : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
        Evaluated after every epoch into ``history`` (the loss and the score as weighted means
        when sample weights are given).
    validation_fraction : float in (0, 1), optional
        Hold out this fraction of the training data (stratified for classification), with its
        sample weights, as validation data instead.
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
    on_divergence : {"raise", "stop"}
        When the cost, the weights, the optimizer state or the outputs on the training (or
        validation) data stop being finite: raise :class:`DivergenceError` naming the epoch, or
        stop and keep the weights of the last finite epoch (``history["diverged"]``).
    backend : {"compiled", "numpy"}
        The compiled kernels, or their NumPy twin (the same algorithm, for checking and comparing).
    verbose : int
        1 prints one line per epoch (loss, validation score, samples/s, time left), with a
        progress line inside long epochs when the output is a terminal.

    Returns
    -------
    MLP
        The fitted model.

    Raises
    ------
    ValueError, TypeError
        On invalid input, naming the argument.
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
    if warm_start is not None and not isinstance(warm_start, MLP):
        raise TypeError(f"warm_start must be a fitted fastmlp.MLP, got {type(warm_start).__name__}")
    dtype = check_dtype(dtype if warm_start is None else warm_start.dtype)
    # Every number becomes a bounded Python int or a finite float first (a huge int exponent would
    # otherwise be raised to exactly, a float beyond the dtype would overflow in the kernels).
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    max_fun = check_int(max_fun, "max_fun")
    learning_rate = check_float(learning_rate, "learning_rate", 0.0, inclusive=False, dtype=dtype)
    momentum = check_float(momentum, "momentum", 0.0, maximum=1.0, dtype=dtype)
    beta1 = check_float(beta1, "beta1", 0.0, maximum=1.0, dtype=dtype)
    beta2 = check_float(beta2, "beta2", 0.0, maximum=1.0, dtype=dtype)
    epsilon = check_float(epsilon, "epsilon", 0.0, inclusive=False, dtype=dtype)
    l2, l1 = check_float(l2, "l2", dtype=dtype), check_float(l1, "l1", dtype=dtype)
    dropout = check_float(dropout, "dropout", 0.0, maximum=1.0)
    tol = check_float(tol, "tol")
    n_iter_no_change = check_int(n_iter_no_change, "n_iter_no_change")
    samples_seen = check_int(samples_seen, "samples_seen", 0)
    power_t = check_float(power_t, "power_t")
    lr_decay = check_float(lr_decay, "lr_decay", 0.0, inclusive=False)
    if lr_decay > 1:
        raise ValueError(f"lr_decay must be <= 1 (the rate is multiplied by it), got {lr_decay}")
    lr_step = check_int(lr_step, "lr_step")
    lr_patience = check_int(lr_patience, "lr_patience")
    for name, value, allowed in (("optimizer", optimizer, OPTIMIZERS), ("lr_schedule", lr_schedule, SCHEDULES),
                                 ("on_divergence", on_divergence, ("raise", "stop")),
                                 ("backend", backend, tuple(BACKENDS)),
                                 ("monitor", monitor, (None, "val_loss", "val_score", "loss")),
                                 ("init", init, ("fan_in", "normal"))):
        check_choice(value, name, allowed)
    if seed is not None:
        seed = check_int(seed, "seed", 0, MAX_SEED)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")

    X = check_array(X, dtype, "X", accept_sparse=True)
    if warm_start is not None:
        model = _continue(warm_start, X.shape[1])
        Y = model.targets(y, X.shape[0])
    else:
        if classes_ is not None:
            if task not in (None, "classification"):
                raise ValueError("classes_ is only for single-label classification")
            task, classes = "classification", np.unique(np.asarray(classes_))
            if len(classes) < 2:
                raise ValueError(f"classes_ must hold at least two labels, got {classes.tolist()}")
            Y = encode_labels(y, classes, dtype)
            if len(Y) != X.shape[0]:
                raise ValueError(f"X and y have different numbers of samples: {X.shape[0]} and {len(Y)}")
        else:
            task, Y, classes = check_targets(y, X.shape[0], task, dtype, loss=loss)
        if loss is None:
            loss = "cross_entropy" if task == "multilabel" else "quadratic"
        layer_sizes = (X.shape[1],) + check_hidden(hidden) + (Y.shape[1],)
        check_fits_in_memory(layer_sizes, dtype, f"hidden={hidden!r}")
        layer_activations = check_activations(len(layer_sizes) - 1, activation, output_activation, loss, task)
        if (weights is None) != (biases is None):
            raise ValueError("give both weights and biases, or neither")
        if weights is None:
            weights, biases = init_parameters(layer_sizes, layer_activations, np.random.default_rng(seed),
                                              dtype, init)
        else:
            weights, biases = check_parameters(weights, biases, layer_sizes, dtype)
        if not use_bias:
            biases = [np.zeros_like(b) for b in biases]
        model = MLP(weights, biases, layer_activations, loss, classes, l2=l2, l1=l1, task=task,
                    single_target=np.ndim(y) == 1, use_bias=bool(use_bias))
    sample_weight = check_sample_weight(sample_weight, class_weight, Y, model.classes_ if model.task == "classification"
                                        else None, dtype)
    if validation_fraction is not None:
        if validation_data is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        validation_fraction = check_float(validation_fraction, "validation_fraction", 0.0, inclusive=False, maximum=1.0)
        X, Y, sample_weight, validation_data = _split(X, Y, sample_weight, validation_fraction, model.task,
                                                      np.random.default_rng(seed))
        X_val, Y_val, W_val = validation_data
        if W_val is not None and not W_val.sum() > 0:
            raise ValueError("the validation rows held out all have sample_weight 0; use another seed or "
                             "validation_fraction")
    elif validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)")
        X_val = check_array(validation_data[0], dtype, "validation_data X", X.shape[1], accept_sparse=True)
        Y_val = model.targets(validation_data[1], X_val.shape[0], "validation_data y")
        W_val = None
        if len(validation_data) == 3 and validation_data[2] is not None:
            W_val = check_sample_weight(validation_data[2], None, Y_val, None, np.float64,
                                        "validation_data sample_weight")
    monitor = monitor or ("val_loss" if validation_data is not None else "loss")
    if monitor.startswith("val") and validation_data is None:
        raise ValueError(f"monitor={monitor!r} needs validation_data or validation_fraction")

    config = dict(optimizer=optimizer, momentum=momentum, beta1=beta1, beta2=beta2, epsilon=epsilon,
                  epsilon_hat=bool(epsilon_hat), l2=l2, l1=l1, dropout=dropout)
    model.l2, model.l1 = l2, l1
    if optimizer == "lbfgs":
        from ._lbfgs import fit_lbfgs
        return fit_lbfgs(model, X, Y, sample_weight, epochs, max_fun, tol, backend, verbose)

    n_samples = X.shape[0]
    capacity = min(batch_size, n_samples)
    network = BACKENDS[backend](model.weights, model.biases, model.layer_activations, model.loss, capacity,
                                momentum=momentum, l2=l2, nthreads=kernel_threads(), optimizer=optimizer,
                                l1=l1, dropout=dropout, use_bias=model.use_bias, beta1=beta1, beta2=beta2,
                                epsilon=epsilon, epsilon_hat=bool(epsilon_hat), seed=0 if seed is None else seed,
                                sparse_input=is_sparse(X))
    _restore_state(network, model.optimizer_state, optimizer)
    order = np.arange(n_samples, dtype=np.int64)
    (network.bind_sparse if is_sparse(X) else network.bind)(X, Y, order, sample_weight)
    total_weight = n_samples if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
    # A mini-batch whose sample weights are all 0 has no cost to take a step on (its weighted mean
    # would be 0/0): it is skipped. Only looked for when some weight is 0.
    zero_weights = sample_weight is not None and not sample_weight.all()
    x_max = _max_abs(X)
    problem = _non_finite(model, X, x_max)
    if problem is not None:
        raise ValueError(f"the starting weights give non-finite outputs: {problem}")
    rng = np.random.default_rng(seed)

    history = model.history
    parameters = model.weights + model.biases
    best = {"value": np.inf, "epoch": 0, "parameters": None, "waited": 0}
    plateau_waited = 0
    rate = learning_rate
    first_epoch = len(history.get("loss", [])) + 1
    progress = Progress(verbose, first_epoch + epochs - 1, n_samples)
    # An epoch is complete when all its bookkeeping is done; Ctrl-C anywhere before that (a
    # KeyboardInterrupt can be raised between any two Python statements) goes back to the last one.
    checkpoint = _Checkpoint(parameters, history, network, best)
    try:
        for epoch in range(first_epoch, first_epoch + epochs):
            started = time.perf_counter()
            if shuffle:
                rng.shuffle(order)
            total = 0.0
            for start in range(0, n_samples, capacity):
                stop = min(start + capacity, n_samples)
                if zero_weights and not sample_weight[order[start:stop]].any():
                    continue
                total += network.train_batch(start, stop, rate)
                if progress.live:   # a terminal: redraw the progress line now and then
                    progress.batch(epoch, start + capacity, started)
            seconds = time.perf_counter() - started
            samples_seen += n_samples
            epoch_loss = total / total_weight
            penalty = model.penalty()
            # Checked on what fit would return: the cost, the weights, the optimizer state (which
            # warm_start and save carry on) and the outputs on the training and validation data.
            output = model.output(X_val) if validation_data is not None else None
            problem = (f"the cost became {epoch_loss + penalty}" if not np.isfinite(epoch_loss + penalty)
                       else _non_finite(model, X, x_max, network.state, output))
            if problem is not None:
                message = (f"training diverged in epoch {epoch}: {problem}; try a smaller learning_rate "
                           f"(now {rate})" + (" or penalty" if l2 or l1 else ""))
                if on_divergence == "raise":
                    raise DivergenceError(message)
                best = checkpoint.restore(parameters, history, network)
                history["diverged"] = epoch
                warnings.warn(message + "; keeping the weights of the last finite epoch", RuntimeWarning, stacklevel=2)
                break

            metrics = {"epoch": epoch, "loss": epoch_loss + penalty, "penalty": penalty, "learning_rate": rate,
                       "seconds": seconds}
            if validation_data is not None:
                total_val = X_val.shape[0] if W_val is None else W_val.sum()
                metrics["val_loss"] = reference.loss_sum(output, Y_val, model.loss, W_val) / total_val
                metrics["val_accuracy" if model.task != "regression" else "val_r2"] = model._score(output, Y_val,
                                                                                                   W_val)
            for key, value in metrics.items():
                if key != "epoch":
                    history.setdefault(key, []).append(value)
            progress.epoch(metrics)

            # The monitored metric, as a value to minimise.
            value = metrics[monitor] if monitor != "val_score" else -metrics.get("val_accuracy", metrics.get("val_r2"))
            improved = value < best["value"] - tol
            if improved:
                best.update(value=value, epoch=epoch, waited=0)
                if early_stopping and restore_best:
                    best["parameters"] = [p.copy() for p in parameters]
            else:
                best["waited"] += 1
            if early_stopping and best["waited"] >= n_iter_no_change:
                history["stopped_early"] = epoch
                break
            if lr_schedule == "invscaling":
                rate = invscaling_rate(learning_rate, samples_seen, power_t)
            elif lr_schedule == "step" and (epoch - first_epoch + 1) % lr_step == 0:
                rate *= lr_decay
            elif lr_schedule == "plateau":
                plateau_waited = 0 if improved else plateau_waited + 1
                if plateau_waited >= lr_patience:
                    rate, plateau_waited = rate * lr_decay, 0
            if callback is not None and callback(dict(metrics)):
                history["stopped_by_callback"] = epoch
                break
            checkpoint = _Checkpoint(parameters, history, network, best)
    except KeyboardInterrupt:
        best = checkpoint.restore(parameters, history, network)
        history["interrupted"] = epoch = len(history.get("loss", ())) + 1
        progress.message(f"epoch {epoch}: interrupted; keeping the weights of the last completed epoch")
    if early_stopping and restore_best and best["parameters"] is not None:
        _copy_into(parameters, best["parameters"])
        history["best_epoch"] = best["epoch"]
    model.optimizer_state = {"optimizer": optimizer, "state": [s.copy() for s in network.state],
                             "step_count": int(network.step_count), "dropout_counter": int(network.dropout_counter),
                             "config": config}
    return model


def _continue(model, n_features):
    """A copy of ``model`` to continue training (the caller's model is never changed)."""
    if model.layer_sizes[0] != n_features:
        raise ValueError(f"X has {n_features} features, but the warm_start model expects {model.layer_sizes[0]}")
    state = model.optimizer_state
    if state is not None:
        state = dict(state, state=[s.copy() for s in state["state"]])
    return MLP([w.copy() for w in model.weights], [b.copy() for b in model.biases], model.layer_activations,
               model.loss, model.classes_, {k: list(v) if isinstance(v, list) else v
                                            for k, v in model.history.items()},
               model.l2, model.single_target, model.task, model.l1, model.use_bias, state)


def _restore_state(network, optimizer_state, optimizer):
    """Carry the optimizer state of an earlier fit into ``network`` when it is the same optimizer."""
    if not optimizer_state or optimizer_state["optimizer"] != optimizer:
        return
    if len(optimizer_state["state"]) == len(network.state):
        _copy_into(network.state, optimizer_state["state"])
    network.step_count = optimizer_state["step_count"]
    network.dropout_counter = optimizer_state["dropout_counter"]


def _split(X, Y, sample_weight, fraction, task, rng):
    """Hold out ``fraction`` of the rows as validation data (X, Y and the sample weights),
    stratified by class for classification."""
    n_samples = X.shape[0]
    if task == "classification":
        labels = np.argmax(Y, axis=1)
        held = [rng.permutation(np.flatnonzero(labels == c))[: int(np.ceil(fraction * np.sum(labels == c)))]
                for c in range(Y.shape[1]) if np.any(labels == c)]
        held = np.sort(np.concatenate(held))
    else:
        held = np.sort(rng.permutation(n_samples)[: int(np.ceil(fraction * n_samples))])
    keep = np.setdiff1d(np.arange(n_samples), held)
    if len(keep) == 0 or len(held) == 0:
        raise ValueError(f"validation_fraction={fraction} leaves no training or no validation samples")
    weights = held_weights = None
    if sample_weight is not None:
        weights, held_weights = np.ascontiguousarray(sample_weight[keep]), sample_weight[held].astype(np.float64)
    kept = X[keep] if is_sparse(X) else np.ascontiguousarray(X[keep])
    return kept, np.ascontiguousarray(Y[keep]), weights, (X[held], Y[held], held_weights)


def _copy_into(targets, sources):
    for target, source in zip(targets, sources):
        target[...] = source


class _Checkpoint:
    """The training state after a completed epoch (or L-BFGS iteration), to go back to.

    Holds copies of the parameters, the optimizer's state and the early-stopping record, and the
    length of every list in ``history``; ``restore`` puts them back and returns the record.
    """

    def __init__(self, parameters, history, network=None, best=None):
        self.parameters = [p.copy() for p in parameters]
        self.history = {key: len(value) if isinstance(value, list) else value for key, value in history.items()}
        self.best = None if best is None else dict(best)
        if network is not None:
            self.optimizer = ([s.copy() for s in network.state], network.step_count, network.dropout_counter)

    def restore(self, parameters, history, network=None):
        _copy_into(parameters, self.parameters)
        for key in list(history):
            if key not in self.history:
                del history[key]
            elif isinstance(history[key], list):
                del history[key][self.history[key]:]
            else:
                history[key] = self.history[key]
        if network is not None:
            state, network.step_count, network.dropout_counter = self.optimizer
            _copy_into(network.state, state)
        return None if self.best is None else dict(self.best)


def _max_abs(X, block_bytes=1 << 20):
    """max |X| as a float, a block of rows at a time (no copy of a memory-mapped X); of a sparse X's
    stored values (its other values are 0)."""
    if is_sparse(X):
        return float(np.max(np.abs(X.data[:X.nnz]), initial=0.0))
    rows = max(1, block_bytes // max(1, X[:1].nbytes))
    return max(max(float(np.max(X[start:start + rows])), -float(np.min(X[start:start + rows])))
               for start in range(0, len(X), rows))


def _outputs_bounded(model, x_max):
    """Whether every pre-activation and output is surely finite for inputs no larger than x_max.

    Layer by layer |z_j| <= max|a| · Σᵢ |W_ij| + |b_j| (no partial sum of a product exceeds it
    either); sigmoid, tanh and softmax outputs are at most 1. Costs one pass over the weights. A
    bound near the dtype's largest value is inconclusive (False): then the outputs are computed.
    """
    limit = float(np.finfo(model.dtype).max) / 16
    bound = x_max
    with np.errstate(over="ignore", invalid="ignore"):
        for weights, biases, activation in zip(model.weights, model.biases, model.layer_activations):
            z = bound * float(np.linalg.norm(weights, 1)) + (float(np.max(np.abs(biases))) if biases.size else 0.0)
            if not z < limit or (activation == "exp" and not z < math.log(limit)):
                return False
            bound = 1.0 if activation in ("sigmoid", "tanh", "softmax") else math.exp(z) if activation == "exp" else z
    return True


def _non_finite(model, X, x_max, state=(), validation_output=None):
    """What of the model, as fit would return it, is not finite (a phrase), or None."""
    name = np.dtype(model.dtype).name
    if not all(np.isfinite(p).all() for p in model.weights + model.biases):
        return "the weights stopped being finite"
    if not all(np.isfinite(s).all() for s in state):
        return f"the optimizer state (a velocity or Adam's moments) overflowed {name}"
    if not _outputs_bounded(model, x_max) and not np.isfinite(model.output(X)).all():
        return f"the outputs on the training data overflowed {name}"
    if validation_output is not None and not np.isfinite(validation_output).all():
        return f"the outputs on the validation data overflowed {name}"
    return None
