"""Training and using a dense network: ``fit``, the fitted ``MLP``, ``forward`` and ``backprop``.

Python drives the epochs and mini-batches; each mini-batch is one call into compiled code
(``fastmlp._kernels.Network.train_batch``), or into its NumPy twin with ``backend="numpy"``.
"""
import time
import warnings

import numpy as np

from . import _kernels, reference
from ._config import get_num_threads
from ._validation import (check_activations, check_array, check_dtype, check_float, check_hidden,
                          check_int, check_parameters, check_targets, encode_labels)

BACKENDS = {"compiled": _kernels.Network, "numpy": reference.Network}


def init_parameters(layer_sizes, activations, rng, dtype=np.float32, init="fan_in"):
    """Random weights and biases for the given layer sizes.

    ``init="fan_in"``: weights ~ N(0, 1/n_in) (N(0, 2/n_in) into a ReLU layer, He et al.), biases 0.
    ``init="normal"``: weights and biases ~ N(0, 1), as in Nielsen's network.py.
    Drawn in float64 from ``rng`` and then cast, so both dtypes start from the same numbers.
    """
    if init not in ("fan_in", "normal"):
        raise ValueError(f"init must be 'fan_in' or 'normal', got {init!r}")
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
    layer_activations : list of str
        The activation of each layer (the last one is the output activation).
    loss : str
    classes_ : ndarray or None
        The class labels for classification, None for regression.
    history : dict of lists
        Per epoch: ``loss`` (mean training cost), ``val_loss``, ``val_accuracy`` (classification) or
        ``val_r2`` (regression) when validation data was given, and ``seconds``.
    """

    def __init__(self, weights, biases, layer_activations, loss, classes=None, history=None, l2=0.0,
                 single_target=True):
        self.weights, self.biases = weights, biases
        self.layer_activations, self.loss = list(layer_activations), loss
        self.classes_ = classes
        self.history = history if history is not None else {}
        self.l2 = l2
        self.single_target = single_target   # regression on a 1-D y: predict returns 1-D

    @property
    def dtype(self):
        return self.weights[0].dtype.type

    @property
    def task(self):
        return "regression" if self.classes_ is None else "classification"

    @property
    def layer_sizes(self):
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)

    def _network(self, capacity, backend="compiled"):
        return BACKENDS[backend](self.weights, self.biases, self.layer_activations, self.loss,
                                 capacity, nthreads=get_num_threads())

    def output(self, X, backend="compiled"):
        """The output layer's activations aᴸ for every row of X."""
        X = check_array(X, self.dtype, "X", self.layer_sizes[0])
        out = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        # A network of its own per call, so predictions from several threads never share buffers.
        self._network(min(X.shape[0], 1024), backend).forward(X, out)
        return out

    def forward(self, X):
        """Activations of every layer for the rows of X: ``[a⁰ = X, a¹, ..., aᴸ]``."""
        X = check_array(X, self.dtype, "X", self.layer_sizes[0])
        network = reference.Network(self.weights, self.biases, self.layer_activations, self.loss, len(X))
        return network._forward(X)

    def predict(self, X):
        """Class labels (classification) or target values (regression) for the rows of X."""
        out = self.output(X)
        if self.classes_ is None:
            return out[:, 0] if self.single_target and out.shape[1] == 1 else out
        return self.classes_[np.argmax(out, axis=1)]

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes).

        Softmax outputs are probabilities as they are; other outputs are clipped at 0 and
        normalised to sum to 1 over the classes.
        """
        if self.classes_ is None:
            raise AttributeError("predict_proba is only available for classification")
        out = self.output(X)
        if self.layer_activations[-1] == "softmax":
            return out
        out = np.maximum(out, 0)
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.full_like(out, 1 / out.shape[1]), where=total > 0)

    def score(self, X, y):
        """Accuracy for classification, the coefficient of determination R² for regression."""
        return self._score(*self._output_and_targets(X, y))

    def _score(self, out, Y):
        if self.classes_ is not None:
            return float(np.mean(np.argmax(out, axis=1) == np.argmax(Y, axis=1)))
        residual = ((Y - out.astype(np.float64)) ** 2).sum(axis=0)
        total = ((Y - Y.mean(axis=0, dtype=np.float64)) ** 2).sum(axis=0)
        r2 = 1 - residual / np.where(total > 0, total, 1)
        return float(np.mean(np.where(total > 0, r2, residual == 0)))

    def targets(self, y, n_samples=None, name="y"):
        """The target matrix Y the cost compares with the output (one-hot rows for labels).

        Labels not seen during fit are an error; so is a length other than ``n_samples``.
        """
        if self.classes_ is not None:
            Y = encode_labels(y, self.classes_, self.dtype, name)
        else:
            y = np.asarray(y)
            Y = check_array(y.reshape(len(y), -1) if y.ndim else y, self.dtype, name)
        if n_samples is not None and len(Y) != n_samples:
            x_name = name[:-1] + "X"
            raise ValueError(f"{x_name} and y have different numbers of samples: {n_samples} and {len(Y)}")
        return Y

    def _output_and_targets(self, X, y):
        out = self.output(X)
        return out, self.targets(y, len(out))

    def cost(self, X, y):
        """The mean cost over the rows of X, including the L2 term."""
        out, Y = self._output_and_targets(X, y)
        penalty = 0.5 * self.l2 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in self.weights)
        return reference.loss_sum(out, Y, self.loss) / len(out) + penalty

    def backprop(self, X, y, backend="compiled"):
        """Exact gradients of the mean cost over (X, y): ``(weight_grads, bias_grads)``.

        Same shapes as ``weights`` and ``biases``; the L2 term is included.
        """
        X = check_array(X, self.dtype, "X", self.layer_sizes[0])
        Y = self.targets(y, len(X))
        network = BACKENDS[backend](self.weights, self.biases, self.layer_activations, self.loss,
                                    len(X), l2=self.l2, nthreads=get_num_threads())
        network.backprop(X, Y)
        return [g.copy() for g in network.weight_grads], [g.copy() for g in network.bias_grads]


def fit(X, y, *, hidden=(16, 16), activation="sigmoid", output_activation=None, loss="quadratic",
        epochs=10, batch_size=100, learning_rate=3.0, momentum=0.0, l2=0.0, task=None,
        init="fan_in", seed=None, dtype="float32", weights=None, biases=None, shuffle=True,
        validation_data=None, on_divergence="raise", backend="compiled", verbose=0):
    """Train a dense network by mini-batch stochastic gradient descent with backpropagation.

    The defaults are the seed network of 3Blue1Brown and Nielsen: two hidden layers of 16
    sigmoid neurons, quadratic cost, mini-batches of 100, learning rate 3.0.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Labels (integers, strings or booleans: classification, one output per class) or float
        targets (regression). ``task`` overrides the guess.
    hidden : sequence of int
        Sizes of the hidden layers (empty for no hidden layer).
    activation : {"sigmoid", "tanh", "relu", "identity"}
        Activation of the hidden layers.
    output_activation : {"sigmoid", "tanh", "relu", "identity", "softmax"}, optional
        Default: softmax for ``log_loss``, sigmoid for ``cross_entropy``, and for the quadratic
        cost the hidden activation (classification) or identity (regression).
    loss : {"quadratic", "cross_entropy", "log_loss"}
        ``C = 1/(2n) Σ‖y − a‖²``; sigmoid cross-entropy; softmax log-loss.
    epochs, batch_size : int
        A last mini-batch smaller than ``batch_size`` is kept.
    learning_rate : float
        Step size η of gradient descent.
    momentum : float in [0, 1)
        Classical momentum μ: ``v := μ v − η ∇C``, ``w := w + v``.
    l2 : float
        L2 penalty: the cost is ``mean loss + (l2 / 2) Σ‖W‖²`` (weights, not biases), so each step
        also decays the weights by ``η · l2 · W``. Nielsen's λ over n training samples is
        ``l2 = λ / n``.
    init : {"fan_in", "normal"}
        Weight initialisation (see :func:`init_parameters`).
    seed : int or None
        The same seed gives the same weights, whichever backend and thread count.
    dtype : {"float32", "float64"}
    weights, biases : lists of arrays, optional
        Start from these (copied, never modified) instead of random values.
    shuffle : bool
        Shuffle the samples every epoch; ``False`` trains on them in order, step for step
        reproducible against another implementation.
    validation_data : tuple (X_val, y_val), optional
        Evaluated after every epoch into ``history``.
    on_divergence : {"raise", "stop"}
        When the cost or the weights stop being finite: raise ``FloatingPointError`` naming the
        epoch, or stop and keep the weights of the last finite epoch (``history["diverged"]`` holds
        the epoch).
    backend : {"compiled", "numpy"}
        The compiled kernels, or their NumPy twin (the same algorithm, for checking and comparing).
    verbose : int
        1 prints one line per epoch.

    Returns
    -------
    MLP
        The fitted model.

    Raises
    ------
    ValueError, TypeError
        On invalid input, naming the argument.
    FloatingPointError
        When training diverges (the cost or the weights stop being finite).

    Notes
    -----
    Ctrl-C (KeyboardInterrupt) during training stops after the current mini-batch and returns the
    model with the weights of the last completed epoch; ``history["interrupted"]`` holds the epoch
    that was cut short.

    Examples
    --------
    >>> import numpy as np, fastmlp
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25, dtype=float)
    >>> model = fastmlp.fit(X, (X[:, 0] != X[:, 1]).astype(int), hidden=(8,), epochs=300,
    ...                     batch_size=4, learning_rate=2.0, seed=0)
    >>> model.predict([[0, 1], [1, 1]])
    array([1, 0])
    """
    dtype = check_dtype(dtype)
    hidden = check_hidden(hidden)
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    learning_rate = check_float(learning_rate, "learning_rate", 0.0, inclusive=False)
    momentum = check_float(momentum, "momentum", 0.0, maximum=1.0)
    l2 = check_float(l2, "l2")
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    X = check_array(X, dtype, "X")
    task, Y, classes = check_targets(y, X.shape[0], task, dtype)
    layer_sizes = (X.shape[1],) + hidden + (Y.shape[1],)
    layer_activations = check_activations(len(layer_sizes) - 1, activation, output_activation, loss, task)
    rng = np.random.default_rng(seed)
    if (weights is None) != (biases is None):
        raise ValueError("give both weights and biases, or neither")
    if weights is None:
        weights, biases = init_parameters(layer_sizes, layer_activations, rng, dtype, init)
    else:
        weights, biases = check_parameters(weights, biases, layer_sizes, dtype)
    model = MLP(weights, biases, layer_activations, loss, classes, l2=l2, single_target=np.ndim(y) == 1)
    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (X_val, y_val)")
        X_val = check_array(validation_data[0], dtype, "validation_data X", X.shape[1])
        Y_val = model.targets(validation_data[1], len(X_val), "validation_data y")

    n_samples = X.shape[0]
    batch_size = min(batch_size, n_samples)
    network = BACKENDS[backend](weights, biases, layer_activations, loss, batch_size,
                                momentum=momentum, l2=l2, nthreads=get_num_threads())
    order = np.arange(n_samples, dtype=np.int64)
    network.bind(X, Y, order)
    history = model.history
    parameters = weights + biases
    last_good = [p.copy() for p in parameters]   # the parameters after the last completed epoch
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        if shuffle:
            rng.shuffle(order)
        total = 0.0
        try:
            for start in range(0, n_samples, batch_size):
                total += network.train_batch(start, min(start + batch_size, n_samples), learning_rate)
        except KeyboardInterrupt:
            # Ctrl-C: keep the last completed epoch's parameters and say so in the history.
            _copy_into(parameters, last_good)
            history["interrupted"] = epoch
            if verbose:
                print(f"epoch {epoch}/{epochs}: interrupted; keeping the weights of epoch {epoch - 1}", flush=True)
            break
        seconds = time.perf_counter() - started
        epoch_loss = total / n_samples
        if not np.isfinite(epoch_loss) or not all(np.isfinite(p).all() for p in parameters):
            message = (f"training diverged in epoch {epoch}: the cost became {epoch_loss} or the weights "
                       f"stopped being finite; try a smaller learning_rate (now {learning_rate})")
            if on_divergence == "raise":
                raise FloatingPointError(message)
            _copy_into(parameters, last_good)
            history["diverged"] = epoch
            warnings.warn(message + f"; keeping the weights of epoch {epoch - 1}", RuntimeWarning, stacklevel=2)
            break
        _copy_into(last_good, parameters)
        history.setdefault("loss", []).append(epoch_loss)
        history.setdefault("seconds", []).append(seconds)
        line = f"epoch {epoch}/{epochs}: loss {epoch_loss:.4f}"
        if validation_data is not None:
            output = model.output(X_val)
            score = model._score(output, Y_val)
            history.setdefault("val_loss", []).append(reference.loss_sum(output, Y_val, loss) / len(X_val))
            history.setdefault("val_accuracy" if task == "classification" else "val_r2", []).append(score)
            line += f", val_loss {history['val_loss'][-1]:.4f}, val score {score:.4f}"
        if verbose:
            print(f"{line} ({seconds:.3f} s)", flush=True)
    return model


def _copy_into(targets, sources):
    for target, source in zip(targets, sources):
        target[...] = source
