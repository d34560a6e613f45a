"""The fitted network: ``MLP`` (predict, score, forward, backprop), its starting weights and the
configuration records its training networks are built from (:func:`fastmlp.fit` trains it).
"""
from dataclasses import dataclass

import numpy as np

from . import _kernels, reference
from ._config import kernel_threads
from ._validation import (check_array, check_choice, check_dtype, check_fits_in_memory, check_inputs, check_int,
                          check_sample_weight, check_targets_for_loss, encode_labels, is_ready, is_sparse,
                          row_blocks)

BACKENDS = {"compiled": _kernels.Network, "numpy": reference.Network}
OPTIMIZERS = ("sgd", "nesterov", "adam", "lbfgs")
MAX_SEED = 2**64 - 1   # the compiled network keeps its dropout seed as a uint64
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "identity", "softmax", "exp")


# Integer inputs are converted for inference in blocks of about this many bytes of floats.
CONVERT_BYTES = 4 << 20


def scaled_inputs(X, dtype, input_scale):
    """The network's input for the rows of X: ``X.astype(dtype) * dtype(input_scale)``, converted and
    then multiplied in ``dtype`` (as the compiled gather does); X itself when there is nothing to do."""
    if is_sparse(X):   # of dtype already (check_sparse)
        return X if input_scale is None else X * dtype(input_scale)
    if X.dtype != dtype:
        X = X.astype(dtype)
        if input_scale is not None:
            X *= dtype(input_scale)
    elif input_scale is not None:
        X = X * dtype(input_scale)
    return X


def network_class(backend):
    """The Network class of ``backend``: "compiled" (the kernels) or "numpy" (their NumPy twin)."""
    return BACKENDS[check_choice(backend, "backend", tuple(BACKENDS))]


@dataclass(frozen=True)
class OptimizerConfig:
    """How training steps the parameters: the method ("sgd", "nesterov", "adam", "lbfgs") and
    its constants (see :func:`fastmlp.fit`)."""
    name: str = "sgd"
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    epsilon_hat: bool = False


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
    input_scale : float or None
        The network's input is ``X * input_scale`` (see ``fit(input_scale=...)``), whatever
        the dtype of the X given to ``predict``, ``output`` or ``score``; None: X as it is.
    """

    input_scale = None   # also for a model pickled without the attribute: it takes X as it is

    def __init__(self, weights, biases, layer_activations, loss, classes=None, history=None, l2=0.0,
                 single_target=True, task=None, l1=0.0, use_bias=True, optimizer_state=None, input_scale=None):
        self.weights, self.biases = weights, biases
        self.layer_activations, self.loss = list(layer_activations), loss
        self.classes_ = classes
        self.history = history if history is not None else {}
        self.l2, self.l1, self.use_bias = l2, l1, use_bias
        self.single_target = single_target   # regression on a 1-D y: predict returns 1-D
        self.task = task or ("regression" if classes is None else "classification")
        self.optimizer_state = optimizer_state
        self.input_scale = input_scale

    def network(self, capacity, optimizer=OptimizerConfig(), *, dropout=0.0, seed=0, backend="compiled",
                nthreads=None, sparse_input=False):
        """A Network of ``backend`` that trains this model's weights and biases in place, in
        mini-batches of up to ``capacity`` rows (of a SciPy CSR matrix with ``sparse_input``); and
        its optimizer state arrays in place too, when they are of ``optimizer``."""
        saved = self.optimizer_state
        state = saved["state"] if saved and saved["optimizer"] == optimizer.name else None
        return network_class(backend)(
            self.weights, self.biases, self.layer_activations, self.loss, capacity,
            l2=self.l2, l1=self.l1, use_bias=self.use_bias, dropout=dropout, seed=seed, sparse_input=sparse_input,
            nthreads=kernel_threads() if nthreads is None else nthreads, optimizer=optimizer.name,
            momentum=optimizer.momentum, beta1=optimizer.beta1, beta2=optimizer.beta2, epsilon=optimizer.epsilon,
            epsilon_hat=optimizer.epsilon_hat, state=state)

    def expect_features(self, n_features):
        """Raise ValueError unless the first layer takes ``n_features`` inputs (to continue training)."""
        if self.layer_sizes[0] != n_features:
            raise ValueError(f"X has {n_features} features, but the warm_start model expects {self.layer_sizes[0]}")

    def copy(self):
        """A copy to continue training: weights, optimizer state, history."""
        state = self.optimizer_state
        if state is not None:
            state = dict(state, state=[s.copy() for s in state["state"]])
        return MLP([w.copy() for w in self.weights], [b.copy() for b in self.biases], self.layer_activations,
                   self.loss, self.classes_, l2=self.l2, l1=self.l1, task=self.task, use_bias=self.use_bias,
                   single_target=self.single_target, optimizer_state=state, input_scale=self.input_scale,
                   history={key: list(value) if isinstance(value, list) else value
                            for key, value in self.history.items()})

    @property
    def dtype(self):
        return self.weights[0].dtype.type

    @property
    def layer_sizes(self):
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)

    def output(self, X, backend="compiled"):
        """The output layer's activations aᴸ for every row of X (times ``input_scale``, if set).

        uint8 and uint16 rows are converted a block at a time: a memory-mapped X is never
        converted whole."""
        out = self._fast_output(X) if backend == "compiled" else None
        if out is not None:
            return out
        X = check_inputs(X, self.weights[0].dtype.type, "X", self.weights[0].shape[0])
        if is_sparse(X):   # a SciPy sparse matrix, never densified: the first layer reads its nonzeros
            X = scaled_inputs(X, self.dtype, self.input_scale)
            if backend == "compiled":
                return self._predictor().output_sparse(X, kernel_threads())
            return self._float_output(X, backend)
        if X.dtype != self.dtype or self.input_scale is not None:
            rows = max(1, CONVERT_BYTES // (X.shape[1] * np.dtype(self.dtype).itemsize))
            return np.concatenate([self._float_output(scaled_inputs(X[start:start + rows], self.dtype,
                                                                    self.input_scale), backend)
                                   for start in range(0, len(X), rows)])
        return self._float_output(X, backend)

    def _float_output(self, X, backend):
        """aᴸ for the rows of X, already of the model's dtype and scaled."""
        if backend == "compiled":
            return self._output(X)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        self.network(min(X.shape[0], 1024), backend=backend, nthreads=1, sparse_input=is_sparse(X)).forward(X, out)
        return out

    def _output(self, X):
        """aᴸ for the rows of X, which ``check_array`` has passed: one compiled call."""
        return self._predictor().output(X, kernel_threads())

    def _fast_output(self, X):
        """aᴸ for the rows of X in one compiled call, when X needs no conversion (``is_ready``, no
        input scale) and is finite; else None, and the caller validates X as usual."""
        if self.input_scale is not None or not is_ready(X, self.dtype, self.weights[0].shape[0]):
            return None
        return self._predictor().output_if_finite(X, kernel_threads())

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
        """Activations of every layer for the rows of X: ``[a⁰ = X · input_scale, a¹, ..., aᴸ]``."""
        X = scaled_inputs(check_inputs(X, self.dtype, "X", self.layer_sizes[0]), self.dtype, self.input_scale)
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
            for rows in (rows for w in self.weights for rows in row_blocks(w)):   # no temporary the size of W
                if self.l2:
                    total += 0.5 * self.l2 * float(np.sum(np.square(rows, dtype=np.float64)))
                if self.l1:
                    total += self.l1 * float(np.sum(np.abs(rows), dtype=np.float64))
        return total

    def cost(self, X, y):
        """The mean cost over the rows of X, including the regularisation term."""
        out, Y = self._output_and_targets(X, y)
        return reference.loss_sum(out, Y, self.loss) / len(out) + self.penalty()

    def backprop(self, X, y, backend="compiled"):
        """Exact gradients of the mean cost over (X, y): ``(weight_grads, bias_grads)``.

        Same shapes as ``weights`` and ``biases``; the regularisation term is included.
        """
        network_class(backend)   # an unknown backend is an error before X is looked at
        X = scaled_inputs(check_inputs(X, self.dtype, "X", self.layer_sizes[0]), self.dtype, self.input_scale)
        Y = self.targets(y, X.shape[0])
        sparse = is_sparse(X)
        network = self.network(X.shape[0], backend=backend, sparse_input=sparse)
        (network.backprop_sparse if sparse else network.backprop)(X, Y)
        return [g.copy() for g in network.weight_grads], [g.copy() for g in network.bias_grads]
