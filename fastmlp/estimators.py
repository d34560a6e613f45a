"""scikit-learn compatible estimators: ``MLPClassifier`` and ``MLPRegressor`` over :func:`fastmlp.fit`.

The parameters, fitted attributes and training loop follow ``sklearn.neural_network``: the same
names and meanings where the concept is the same, the same stopping rule (``tol``,
``n_iter_no_change``, ``early_stopping``), the same initialisation (Glorot uniform) and the same
penalty. The mini-batches themselves run in fastmlp's compiled kernels.

scikit-learn is optional. When it is importable the estimators derive from its ``BaseEstimator``
and mixins (tags, ``clone``, ``Pipeline``, ``GridSearchCV``, ``check_estimator``); otherwise from
a small base class here that provides ``get_params``, ``set_params``, ``__repr__`` and ``score``.

A dask array X (``dask.array.Array``) trains data-parallel on the current Dask cluster through
:func:`fastmlp.distributed.fit`, with the same initial weights, optimizer, schedules and
bookkeeping; only the function that runs the epochs differs (docs/distributed.md, "The
scikit-learn estimators on Dask").

scikit-learn's ``alpha`` and our ``l2``
---------------------------------------
scikit-learn's cost on a mini-batch B is ``mean loss + alpha / (2 |B|) · Σ‖W‖²`` (its ``_backprop``
adds ``0.5 · alpha · Σ‖W‖² / n_samples`` to the loss and ``alpha · W / n_samples`` to the gradient,
with ``n_samples`` the rows of the batch, or the sum of their sample weights). fastmlp's cost is
``mean loss + (l2 / 2) · Σ‖W‖²``, so ``l2 = alpha / batch_size``, with ``batch_size`` as clipped
to the training rows (times the mean sample weight when there are weights). For L-BFGS the batch
is the whole training set: ``l2 = alpha / n_samples``. That is exact for every full mini-batch;
only the last, smaller one of an epoch gets a slightly weaker penalty than scikit-learn gives it.
"""
import functools
import math
import numbers
import sys
import types
import warnings
from inspect import signature

import numpy as np

from ._kernels import all_finite
from ._validation import (MAX_INT, check_array, check_choice, check_dtype, check_fits_in_memory, check_float,
                          check_int, check_sample_weight, check_targets_for_loss, is_sparse)
from .exceptions import DivergenceError
from ._split import split_rows
from .callbacks import AdaptiveLearningRate, InverseScaling, copy_into, invscaling_rate
from .model import r2_score
from .training import fit, fit_rows

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError
except ImportError:
    BaseEstimator = None
try:
    from sklearn.utils.validation import validate_data
except ImportError:   # no scikit-learn, or one older than 1.6
    validate_data = None if BaseEstimator is None else (lambda estimator, *args, **kwargs:
                                                         estimator._validate_data(*args, **kwargs))

ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SOLVERS = ("sgd", "adam", "lbfgs")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
OUT_ACTIVATIONS = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity", "exp": "exp"}

SKLEARN = BaseEstimator is not None
if not SKLEARN:
    class ConvergenceWarning(UserWarning):
        """Training stopped at ``max_iter`` before the stopping rule was met."""

    class DataConversionWarning(UserWarning):
        """A column vector y was given where a 1-D array was expected."""

    class NotFittedError(ValueError, AttributeError):
        """The estimator is used before ``fit``."""

    class BaseEstimator:
        """``get_params``, ``set_params`` and ``__repr__`` from the ``__init__`` signature."""

        @classmethod
        def _get_param_names(cls):
            return sorted(name for name in signature(cls.__init__).parameters if name != "self")

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for name, value in params.items():
                if name not in valid:
                    raise ValueError(f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                                     f"Valid parameters are: {valid}.")
                setattr(self, name, value)
            return self

        def __repr__(self):
            defaults = signature(type(self).__init__).parameters
            changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                       if repr(value) != repr(defaults[name].default)]
            return f"{type(self).__name__}({', '.join(changed)})"

    class ClassifierMixin:
        pass

    class RegressorMixin:
        pass


def _accuracy(y, predicted, sample_weight=None):
    """scikit-learn's ``accuracy_score(y, predicted)`` when it is installed; else the fraction of rows
    that match exactly."""
    if SKLEARN:
        from sklearn.metrics import accuracy_score
        return accuracy_score(y, predicted, sample_weight=sample_weight)
    predicted, y = _as_rows(predicted), _as_rows(np.asarray(y))
    return float(np.average(np.all(predicted == y, axis=1), weights=sample_weight))


def _r2(y, predicted, sample_weight=None):
    """scikit-learn's ``r2_score(y, predicted)`` when it is installed; else fastmlp's, the same
    average over the outputs."""
    if SKLEARN:
        from sklearn.metrics import r2_score as sklearn_r2_score
        return sklearn_r2_score(y, predicted, sample_weight=sample_weight)
    return r2_score(_as_rows(np.asarray(y, np.float64)), _as_rows(predicted), sample_weight)


def _as_sklearn_reports(loss, penalty, outputs_averaged):
    """fit's mean cost (loss plus penalty) with the loss averaged over ``outputs_averaged`` outputs."""
    return (loss - penalty) / outputs_averaged + penalty


def _as_rows(array):
    return array.reshape(len(array), -1)


def _is_dask_array(values):
    """Whether ``values`` is a ``dask.array.Array``, without importing Dask (an array of it can
    only exist once ``dask.array`` is imported)."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(values, dask_array.Array)


def _gathered(values):
    """``values`` as a NumPy array when it is a dask array (labels and weights: one number per
    row, small enough for the client); anything else as it is."""
    return np.asarray(values.compute()) if _is_dask_array(values) else values


def _check_dask_client(estimator):
    """The current Dask client, which trains a dask X; a clear error without one (or without Dask)."""
    from .distributed import _import_dask
    _import_dask()
    import distributed
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError(f"{type(estimator).__name__}.fit with a dask array X trains data-parallel on the current "
                         "Dask cluster: create a distributed.Client first (or pass X.compute() to train in this "
                         "process)") from None


def _block_output(block, model):
    """The network's output for one block of rows (a task of ``map_blocks``)."""
    return model.output(block)


class _StochasticOnly:
    """A method that exists only for the stochastic solvers (``hasattr(est, "partial_fit")`` is
    False with ``solver="lbfgs"``, as in scikit-learn)."""

    def __init__(self, method):
        self.method = method
        self.__doc__ = method.__doc__

    def __get__(self, estimator, owner=None):
        if estimator is None:
            return self.method
        if estimator.solver not in ("sgd", "adam"):
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{estimator.solver} is not stochastic.")
        return types.MethodType(self.method, estimator)


# What scikit-learn raises when the weights stop being finite (and its tests look for).
_DIVERGED = ("Solver produced non-finite parameter weights. The input data may contain large values and need "
             "to be preprocessed.")


def _ravel_column(y):
    """A column-vector y as 1-D, with scikit-learn's DataConversionWarning."""
    if y is not None and y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the "
                      "shape of y to (n_samples, ), for example using ravel().", DataConversionWarning,
                      stacklevel=5)
        return y.ravel()
    return y


def _check_random_state(random_state):
    """The random generator ``random_state`` names, as scikit-learn's ``check_random_state``:
    None is NumPy's global RandomState, an int seeds a new RandomState, a RandomState (or a
    ``np.random.Generator``, a fastmlp extra) is used as it is."""
    if random_state is None or random_state is np.random:
        return np.random.mtrand._rand
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.RandomState(check_int(random_state, "random_state", 0, 2**32 - 1))
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    raise ValueError(f"random_state must be None, an int or a numpy RandomState, got {random_state!r}")


def _base_seed(random_state):
    """An int seed drawn from a RandomState or Generator."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int32).max))
    return int(random_state.randint(np.iinfo(np.int32).max))


def _glorot_uniform(layer_sizes, activation, rng, dtype):
    """scikit-learn's initialisation: weights and biases ~ U(-r, r), r = sqrt(6 / (n_in + n_out))
    (sqrt(2 / ...) for logistic hidden layers), drawn in float64 in scikit-learn's order (a
    layer's weights, then its biases, layer by layer): from the same RandomState, the same numbers."""
    factor = 2.0 if activation == "logistic" else 6.0
    weights, biases = [], []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        bound = np.sqrt(factor / (n_in + n_out))
        weights.append(rng.uniform(-bound, bound, (n_in, n_out)).astype(dtype))
        biases.append(rng.uniform(-bound, bound, n_out).astype(dtype))
    return weights, biases


def _split_indices(n_samples, fraction, strata, rng, classes=None):
    """(train, validation) row indices: ceil(fraction · n) rows held out, per class when ``strata``
    (codes into ``classes``) is given, so that every class keeps its share."""
    if strata is not None:
        codes, counts = np.unique(strata, return_counts=True)
        if counts.min() < 2:
            # scikit-learn's error (from train_test_split), which names the classes as its
            # binarized y spells them: "True" / "False" for two classes; the labels follow.
            lonely = codes[counts < 2]
            names = [str(bool(code)) if len(classes) <= 2 else str(classes[code]) for code in lonely]
            raise ValueError(f"The least populated classes in y have only 1 member, which is too few. The minimum "
                             f"number of groups for any class cannot be less than 2. Classes with too few members "
                             f"are: {names} (labels {classes[lonely].tolist()}); early_stopping holds out a "
                             f"validation set stratified by class")
    train, held = split_rows(n_samples, fraction, rng, strata)
    if len(held) < 2 or len(train) == 0:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                         "your dataset.")
    return train, held


class _ScikitLearnRule(AdaptiveLearningRate):
    """scikit-learn's record of an epoch (``n_iter_``, ``t_``, ``loss_curve_``,
    ``validation_scores_``) and its stopping rule, on the estimator's own counters so that they
    carry over ``partial_fit`` and ``warm_start`` calls; with early stopping, the weights of the
    best validation epoch come back at the end."""

    def __init__(self, estimator, n_train, outputs_averaged, adapt):
        super().__init__(patience=estimator.n_iter_no_change, tol=estimator._numbers.tol, adapt=adapt)
        self.estimator, self.n_train, self.outputs_averaged = estimator, n_train, outputs_averaged

    def on_train_begin(self):
        estimator = self.estimator
        self.best_parameters = None
        self.waited = estimator._no_improvement_count
        self.best = -estimator.best_validation_score_ if estimator.early_stopping else estimator.best_loss_
        if self.best is None:
            self.best = np.inf

    def on_epoch_end(self, epoch, logs):
        estimator = self.estimator
        estimator.n_iter_ += 1
        estimator.t_ += self.n_train
        estimator.loss_ = _as_sklearn_reports(logs["loss"], logs["penalty"], self.outputs_averaged)
        estimator.loss_curve_.append(estimator.loss_)
        if estimator.verbose:
            print(f"Iteration {estimator.n_iter_}, loss = {estimator.loss_:.8f}")
        if estimator.early_stopping:
            score = logs["val_r2" if "val_r2" in logs else "val_accuracy"]
            if len(getattr(estimator, "classes_", ())) == 1:   # one class: predict is always right (fit
                score = 1.0                                      # scores the network's output against 0)
            estimator.validation_scores_.append(score)
            if estimator.verbose:
                print(f"Validation score: {score:f}")
            if score > estimator.best_validation_score_:
                estimator.best_validation_score_ = score
                self.best_parameters = [p.copy() for p in self.trainer.parameters]
                self.best_epoch = epoch
            self.step(-score, epoch)
        else:
            self.step(estimator.loss_, epoch)
            estimator.best_loss_ = self.best
        estimator._no_improvement_count = self.waited
        if self.trainer.stop_training and estimator.verbose:
            print(f"{'Validation score' if estimator.early_stopping else 'Training loss'} did not improve more "
                  f"than tol={estimator.tol:f} for {estimator.n_iter_no_change} consecutive epochs. Stopping.")

    def on_train_end(self):
        self.estimator._learning_rate = self.trainer.learning_rate
        if self.best_parameters is not None:
            copy_into(self.trainer.parameters, self.best_parameters)
            self.trainer.history["best_epoch"] = self.best_epoch


_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Sizes of the hidden layers.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Activation of the hidden layers ("logistic" is fastmlp's "sigmoid").
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
        "sgd" is SGD with ``momentum`` (Nesterov's when ``nesterovs_momentum``); "lbfgs" is
        full-batch L-BFGS through SciPy.
    alpha : float, default=0.0001
        L2 penalty, in scikit-learn's scaling: fastmlp's ``l2 = alpha / batch_size`` (see the module
        docstring).
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; "auto" is ``min(200, n_samples)``. Clipped to the training rows.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule of the SGD step size: "invscaling" is ``learning_rate_init / (t + 1)^power_t``
        after each epoch, with t the samples seen; "adaptive" divides it by 5 each time the stopping
        rule fires, and stops once it is below 1e-6. Only used with ``solver="sgd"``.
    learning_rate_init : float, default=0.001
        The (initial) step size, for "sgd" and "adam".
    power_t : float, default=0.5
        Exponent of "invscaling".
    max_iter : int, default=200
        Maximum number of epochs (of iterations for "lbfgs").
    shuffle : bool, default=True
        Shuffle the rows every epoch.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights (as scikit-learn does: the same numbers for the same
        ``random_state``), then the seed of the validation split, the shuffling and dropout
        (which are drawn differently from scikit-learn's).
    tol : float, default=1e-4
        Training stops when the training loss (the validation score with ``early_stopping``) has
        not improved by ``tol`` for more than ``n_iter_no_change`` epochs in a row.
    verbose : bool, default=False
        Print the loss of every epoch.
    warm_start : bool, default=False
        ``fit`` continues from the current weights (with a fresh optimizer, as scikit-learn).
    momentum : float, default=0.9
        Momentum of "sgd".
    nesterovs_momentum : bool, default=True
        Nesterov momentum for "sgd" (fastmlp's ``optimizer="nesterov"``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for single-output
        classification), stop on its score and keep the weights of the best epoch. The held-out
        rows are copied; the others are trained on where they lie (a memory-mapped X too), except
        for a sparse or dask X.
    validation_fraction : float, default=0.1
        Share of the data held out with ``early_stopping``.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters; ``epsilon`` is added to √v before the bias correction, as
        scikit-learn does (``fit(epsilon_hat=True)``).
    n_iter_no_change : int, default=10
        Epochs without improvement by ``tol`` that the stopping rule allows.
    max_fun : int, default=15000
        ``solver="lbfgs"`` only: the maximum number of evaluations of the loss and its gradient.
    dtype : {None, "float32", "float64"}, default=None
        What the network computes in: None keeps float32 input in float32 and computes everything
        else (float64, integers, ...) in float64.
    dropout : float, default=0.0
        Inverted dropout on the hidden layers while training (fastmlp extra).
    l1 : float, default=0.0
        L1 penalty in fastmlp's scaling: the cost gains ``l1 · Σ|W|`` (fastmlp extra).
    average_every : int, default=1
        Only when X is a dask array, which ``fit`` trains data-parallel on the current Dask
        cluster (:func:`fastmlp.distributed.fit`, see docs/distributed.md): the mini-batch steps
        each chunk of rows takes between two averagings of the parameters. 1 is synchronous SGD
        on the global mini-batch of ``batch_size`` rows; larger values communicate less (local
        SGD). Ignored by "lbfgs" and by arrays in memory (fastmlp extra)."""

_ATTRIBUTES = """
    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        ``coefs_[i]`` of shape (n_in, n_out) maps layer i to layer i + 1; ``intercepts_[i]`` has
        shape (n_out,). These are the arrays of ``model_``.
    loss_ : float
        The cost (loss and penalty) of the last epoch.
    loss_curve_ : list of float
        The cost of every epoch (for "lbfgs", of every iteration).
    best_loss_ : float or None
        The lowest training cost (None with ``early_stopping``).
    validation_scores_ : list of float or None
        The validation score of every epoch (with ``early_stopping``).
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    t_ : int
        Training samples seen, over all calls.
    n_iter_ : int
        Epochs run by the last call to ``fit`` or ``partial_fit``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names (a DataFrame).
    n_layers_, n_outputs_ : int
    out_activation_ : {"softmax", "logistic", "identity"}
    model_ : fastmlp.MLP
        The underlying fitted network (``model_.history`` holds the last call's epochs)."""


class _BaseMLP(BaseEstimator):
    """Parameter checks, input validation and the training loop shared by both estimators."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype=None,
                 dropout=0.0, l1=0.0, average_every=1):
        self.hidden_layer_sizes, self.activation, self.solver = hidden_layer_sizes, activation, solver
        self.alpha, self.batch_size, self.learning_rate = alpha, batch_size, learning_rate
        self.learning_rate_init, self.power_t, self.max_iter = learning_rate_init, power_t, max_iter
        self.shuffle, self.random_state, self.tol, self.verbose = shuffle, random_state, tol, verbose
        self.warm_start, self.momentum, self.nesterovs_momentum = warm_start, momentum, nesterovs_momentum
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.n_iter_no_change, self.dtype, self.dropout, self.l1 = n_iter_no_change, dtype, dropout, l1
        self.max_fun, self.average_every = max_fun, average_every

    # -- checks -----------------------------------------------------------------------------------

    def _check_params(self):
        """The hidden layer sizes, checked; the numbers are checked and kept, converted to bounded
        ints and finite floats, in ``self._numbers`` (a huge int ``power_t`` would otherwise be
        raised to exactly). fit checks the parameters it takes under other names again."""
        for name, allowed in (("activation", tuple(ACTIVATIONS)), ("solver", SOLVERS),
                              ("learning_rate", LEARNING_RATES)):
            check_choice(getattr(self, name), name, allowed)
        numbers_ = {name: check_float(getattr(self, name), name, minimum, inclusive, maximum)
                    for name, minimum, inclusive, maximum in (
                        ("alpha", 0.0, True, None), ("learning_rate_init", 0.0, False, None),
                        ("power_t", 0.0, True, None), ("beta_1", 0.0, True, 1.0), ("beta_2", 0.0, True, 1.0),
                        ("validation_fraction", 0.0, True, 1.0), ("tol", 0.0, True, None),
                        ("momentum", 0.0, True, 1.0), ("epsilon", 0.0, False, None),
                        ("dropout", 0.0, True, 1.0), ("l1", 0.0, True, None))}
        # max_iter + 1 epochs is fit's n_iter_no_change: one less than the largest count
        numbers_["max_iter"] = check_int(self.max_iter, "max_iter", 1, MAX_INT - 1)
        numbers_["max_fun"] = check_int(self.max_fun, "max_fun")
        numbers_["average_every"] = check_int(self.average_every, "average_every")
        if self.batch_size != "auto":
            check_int(self.batch_size, "batch_size")
        if not (isinstance(self.n_iter_no_change, float) and self.n_iter_no_change == np.inf):
            check_int(self.n_iter_no_change, "n_iter_no_change")
        if self.dtype is not None:
            check_dtype(self.dtype)
        self._numbers = types.SimpleNamespace(**numbers_)
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else sizes
        try:
            return tuple(check_int(size, "hidden_layer_sizes[i]") for size in sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}") from None

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                 "appropriate arguments before using this estimator.")

    def _validate(self, X, y=None, reset=True):
        """X as a float32 or float64 array (and y checked), recording or checking the features."""
        if reset:
            dtype = (np.float64, np.float32) if self.dtype is None else check_dtype(self.dtype)
        else:
            dtype = self.model_.dtype
        classifier = isinstance(self, ClassifierMixin)
        if validate_data is not None:
            kwargs = dict(reset=reset, dtype=dtype, accept_sparse=("csr", "csc"))
            if y is None:
                return validate_data(self, X, **kwargs), None
            X, y = validate_data(self, X, y, multi_output=True, y_numeric=not classifier, **kwargs)
        else:
            columns = getattr(X, "columns", None)
            if isinstance(dtype, tuple):
                dtype = np.float32 if (X if is_sparse(X) else np.asarray(X)).dtype == np.float32 else np.float64
            X = check_array(X, dtype, "X", None if reset else self.n_features_in_, accept_sparse=True)
            if reset:
                self.n_features_in_ = X.shape[1]
                if columns is not None and all(isinstance(name, str) for name in columns):
                    self.feature_names_in_ = np.asarray(list(columns), dtype=object)
            if y is None:
                return X, None
            y = self._check_y(y, X.shape[0])
        return X, _ravel_column(y)

    def _check_y(self, y, n_samples):
        """y as a NumPy array of ``n_samples`` rows: finite numbers for a regressor (float64), and
        for a classifier finite ones when they are floats."""
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n_samples:
            raise ValueError(f"X and y have inconsistent numbers of samples: {n_samples} and "
                             f"{len(y) if y.ndim else 'a scalar'}")
        classifier = isinstance(self, ClassifierMixin)
        if not classifier or y.dtype.kind == "f":
            check_array(_as_rows(y), np.float64, "y")
        return y if classifier else y.astype(np.float64)

    def _validate_dask(self, X, y, reset=True):
        """A dask X checked without computing it, as :meth:`_validate` checks an array, and
        converted lazily (on the workers) to the dtype the network computes in; y gathered to the
        client and checked. Its row chunks become the shards of data-parallel training, so their
        sizes must be known."""
        X = self._check_dask_X(X, reset, known_chunks=True)
        return X, _ravel_column(self._check_y(_gathered(y), X.shape[0]))

    def _check_dask_X(self, X, reset, known_chunks=False):
        """A dask X of 2 dimensions, numbers, at least one row and the fitted number of features
        (recorded when ``reset``), as a lazy float array of one column chunk."""
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask array of shape (n_samples, n_features), got {X.ndim} "
                             f"dimension(s)")
        if math.isnan(X.shape[1]) or (known_chunks and math.isnan(X.shape[0])):
            raise ValueError("X is a dask array of unknown chunk sizes: call X.compute_chunk_sizes() first")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must hold numbers (bool, integer or float), got a dask array of dtype {X.dtype}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must have at least one sample and one feature, got shape {X.shape}")
        if reset:
            self.n_features_in_ = X.shape[1]
            self.__dict__.pop("feature_names_in_", None)   # a dask array has no column names
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        if reset:
            dtype = check_dtype(self.dtype) if self.dtype is not None else \
                np.float32 if X.dtype == np.float32 else np.float64
        else:
            dtype = self.model_.dtype
        return X.astype(dtype).rechunk({1: -1})

    # -- training ---------------------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        hidden = self._check_params()
        if y is None:
            raise ValueError(f"This {type(self).__name__} estimator requires y to be passed, but the target y is None.")
        distributed = _is_dask_array(X)
        if distributed:
            if incremental:
                raise ValueError("partial_fit takes arrays in memory, not a dask array X: wrap the estimator in "
                                 "dask_ml.wrappers.Incremental to stream the chunks through partial_fit, or call "
                                 "fit to train data-parallel on the whole array")
            _check_dask_client(self)
            sample_weight = _gathered(sample_weight)
        if sample_weight is not None and not np.any(np.asarray(sample_weight)):
            raise ValueError("Sample weights must contain at least one non-zero number.")
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = (self._validate_dask if distributed else self._validate)(X, y, reset=first)
        for name in ("learning_rate_init", "epsilon"):   # used in X's dtype: neither 0 nor inf there
            check_float(getattr(self._numbers, name), name, 0.0, inclusive=False, dtype=X.dtype)
        targets, strata, weights, task = self._encode(y, sample_weight, X.dtype, first, incremental, classes)
        random_state = _check_random_state(self.random_state) if first or not incremental else None
        if first:
            n_outputs = targets.shape[1] if targets.ndim == 2 else len(self.classes_)
            layer_sizes = (X.shape[1],) + hidden + (n_outputs,)
            check_fits_in_memory(layer_sizes, X.dtype, f"hidden_layer_sizes={self.hidden_layer_sizes!r}")
            start = dict(zip(("weights", "biases"),
                             _glorot_uniform(layer_sizes, self.activation, random_state, X.dtype)))
            self.t_, self.loss_curve_ = 0, []
        elif incremental:
            self.model_.history = {}   # model_.history keeps the last call's epochs, not all of them
            start = {"warm_start": self.model_, "in_place": True}   # as scikit-learn, no copy of the weights
        else:   # warm_start: the current weights, a fresh optimizer
            start = {"weights": self.model_.weights, "biases": self.model_.biases}
        if random_state is not None:   # after the initial weights, as scikit-learn draws its split and shuffles
            self._seed = _base_seed(random_state)
        rng = np.random.default_rng(self._seed)
        if first or self.early_stopping != (self.validation_scores_ is not None):
            self._no_improvement_count = 0
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
        options = dict(task=task, hidden=hidden, activation=ACTIVATIONS[self.activation],
                       loss=self._loss_for(task),
                       dtype=X.dtype, classes_=np.arange(len(self.classes_)) if task == "classification" else None,
                       l1=self._numbers.l1, dropout=self._numbers.dropout, verbose=0, **start)
        # scikit-learn reports its squared error averaged over the outputs too (its gradients, and
        # ours, are those of the sum), so the loss is divided by this before it is recorded
        outputs_averaged = targets.shape[1] if options["loss"] == "quadratic" and task == "regression" else 1
        try:
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, targets, weights, options, outputs_averaged)
            else:
                self._fit_stochastic(X, targets, strata, weights, options, rng, incremental, outputs_averaged)
        except FloatingPointError as error:   # the cost or the weights stopped being finite
            raise DivergenceError(f"{_DIVERGED} ({error})") from error
        self._set_model(self.model_)
        return self

    def _l2(self, divisor, dtype):
        """fastmlp's ``l2 = alpha / divisor`` (batch size times mean sample weight, or the total
        weight), checked to be finite and not 0 for a positive alpha in ``dtype``."""
        alpha = self._numbers.alpha
        with np.errstate(over="ignore"):
            l2 = alpha / divisor
        if alpha and not (np.finfo(dtype).tiny <= l2 <= np.finfo(dtype).max):
            raise ValueError(f"alpha={alpha!r} gives an L2 coefficient alpha / {divisor:g} = {l2:g}, out of "
                             f"range in {np.dtype(dtype).name}")
        return l2

    def _loss_for(self, task):
        """fastmlp's name of the loss this estimator trains with."""
        return {"regression": "quadratic", "multilabel": "cross_entropy"}.get(task, "log_loss")

    def _train_function(self, X, rows=None):
        """:func:`fastmlp.fit` for X in memory (on ``rows`` of it only, read where they lie, when
        given); for a dask X, :func:`fastmlp.distributed.fit` on the current client, which takes
        the same arguments and callbacks and trains data-parallel."""
        if not _is_dask_array(X):
            return fit if rows is None else functools.partial(fit_rows, rows=rows)
        from . import distributed
        return functools.partial(distributed.fit, average_every=self._numbers.average_every)

    def _fit_lbfgs(self, X, targets, weights, options, outputs_averaged):
        total_weight = X.shape[0] if weights is None else float(np.sum(weights))
        numbers_ = self._numbers
        train = self._train_function(X)
        model = train(X, targets, optimizer="lbfgs", epochs=numbers_.max_iter, max_fun=numbers_.max_fun,
                      tol=numbers_.tol, l2=self._l2(total_weight, X.dtype), sample_weight=weights, **options)
        self.loss_curve_ = [_as_sklearn_reports(loss, penalty, outputs_averaged) for loss, penalty in
                             zip(model.history.get("loss", []), model.history.get("penalty", []))]
        self.n_iter_ = max(1, len(self.loss_curve_))
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else np.nan
        if "limit_reached" in model.history:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iterations: increase max_iter or "
                          "max_fun, or scale the data", ConvergenceWarning, stacklevel=4)
        self.model_ = model

    def _fit_stochastic(self, X, targets, strata, weights, options, rng, incremental, outputs_averaged):
        """Epochs of mini-batch training in one call of :func:`fastmlp.fit`, with scikit-learn's
        bookkeeping and stopping rule (and "adaptive" step sizes) as a callback after each one."""
        numbers_ = self._numbers
        validation_data = kept = None
        if self.early_stopping:
            kept, held = _split_indices(X.shape[0], self._numbers.validation_fraction, strata, rng,
                                        getattr(self, "classes_", None))
            validation_data = (X[held], targets[held], None if weights is None else weights[held])
            if _is_dask_array(X):
                X, targets = X[kept], targets[kept]
                weights, kept = None if weights is None else weights[kept], None
        # the training rows: kept rows of X (read where they lie), or all
        n_train = X.shape[0] if kept is None else len(kept)
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                              stacklevel=4)
            batch_size = min(self.batch_size, n_train)
        mean_weight = 1.0 if weights is None else float(np.mean(weights if kept is None else weights[kept]))
        sgd = self.solver == "sgd"
        if not incremental or not hasattr(self, "_learning_rate"):
            self._learning_rate = numbers_.learning_rate_init   # a new optimizer, as in scikit-learn
        invscaling = sgd and self.learning_rate == "invscaling"
        rule = _ScikitLearnRule(self, n_train, outputs_averaged, adapt=sgd and self.learning_rate == "adaptive")
        callbacks = [rule]
        if invscaling and not incremental:
            callbacks.append(InverseScaling(numbers_.power_t, samples_seen=self.t_))
        self.n_iter_ = 0
        train = self._train_function(X, kept)
        with warnings.catch_warnings():   # fit's own warning of a divergence: ours follows
            warnings.filterwarnings("ignore", "training diverged", RuntimeWarning)
            model = train(X, targets, epochs=1 if incremental else numbers_.max_iter, batch_size=batch_size,
                          learning_rate=self._learning_rate if not invscaling or incremental else
                          numbers_.learning_rate_init,
                          seed=int(np.random.SeedSequence([self._seed, self.t_]).generate_state(1)[0]),
                          l2=self._l2(batch_size * mean_weight, X.dtype), shuffle=self.shuffle, sample_weight=weights,
                          validation_data=validation_data, momentum=numbers_.momentum,
                          optimizer="adam" if not sgd else "nesterov" if self.nesterovs_momentum else "sgd",
                          beta1=numbers_.beta_1, beta2=numbers_.beta_2, epsilon=numbers_.epsilon, epsilon_hat=True,
                          # With early stopping a diverging epoch ends training (scikit-learn's issue
                          # 29504: it must not raise); without, fit raises and _fit re-raises it.
                          on_divergence="stop" if self.early_stopping else "raise", callbacks=callbacks, **options)
        stopped = "stopped_early" in model.history
        if "diverged" in model.history:   # early stopping only: fit stopped before that epoch
            self._record_divergence(n_train)
            stopped = True
        if invscaling:
            self._learning_rate = invscaling_rate(numbers_.learning_rate_init, self.t_, numbers_.power_t)
        if not incremental and not stopped and self.n_iter_ == numbers_.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
        self.model_ = model

    def _record_divergence(self, n_train):
        """The epoch in which the loss or the weights stopped being finite, as scikit-learn records
        it (loss and validation score nan); training ends with the best validation epoch's weights."""
        self.n_iter_ += 1
        self.t_ += n_train
        self.loss_ = float("nan")
        self.loss_curve_.append(self.loss_)
        self.validation_scores_.append(float("nan"))
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = nan\nValidation score: nan")
        warnings.warn(f"Training diverged in epoch {self.n_iter_} (the loss or the weights stopped being finite): "
                      f"stopped, keeping the weights of the epoch with the best validation score. Try a smaller "
                      f"learning_rate_init, or scale the data.", ConvergenceWarning, stacklevel=5)

    def _set_model(self, model):
        self.model_ = model
        self.coefs_, self.intercepts_ = model.weights, model.biases
        self.n_layers_ = len(model.weights) + 1
        self.n_outputs_ = model.layer_sizes[-1]
        self.out_activation_ = OUT_ACTIVATIONS[model.layer_activations[-1]]

    def __setstate__(self, state):
        super_setstate = getattr(super(), "__setstate__", None)
        super_setstate(state) if super_setstate is not None else self.__dict__.update(state)
        model = self.__dict__.get("model_")
        if model is not None:
            # The kernels want writeable arrays; joblib.load(..., mmap_mode="r") gives read-only ones.
            model.weights = [np.require(w, requirements="CW") for w in model.weights]
            model.biases = [np.require(b, requirements="CW") for b in model.biases]
            self._set_model(model)

    def _output(self, X):
        if _is_dask_array(X):
            return self._dask_output(X)
        model = self.__dict__.get("model_")
        if model is not None and "feature_names_in_" not in self.__dict__:
            out = model._fast_output(X)   # X is as validate_data would return it: its checks skipped
            if out is not None:
                return out
        self._check_fitted()
        X, _ = self._validate(X, reset=False)
        return self.model_.output(X)

    def _dask_output(self, X):
        """The network's output for a dask X, computed block by block on the workers: only the
        outputs, one row per sample, come back to the client (as a NumPy array)."""
        self._check_fitted()
        X = self._check_dask_X(X, reset=False)
        n_outputs = self.model_.layer_sizes[-1]
        out = X.map_blocks(_block_output, model=self.model_, dtype=self.model_.dtype,
                           chunks=(X.chunks[0], (n_outputs,)))
        return out.compute()

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y): up to ``max_iter`` epochs, or until the stopping rule fires.

        A dask array X is trained data-parallel on the current Dask cluster, one shard per chunk of
        rows, by :func:`fastmlp.distributed.fit` (see docs/distributed.md); y and sample_weight
        (NumPy or dask arrays) are gathered to the client, X never is.

        Parameters
        ----------
        X : array-like, SciPy sparse matrix or dask array of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron classifier with scikit-learn's interface, trained by fastmlp.

    Single-label y: a softmax output with log-loss (one logistic output with binary log-loss for
    two classes, as scikit-learn). Multi-label y (a 0/1 indicator matrix): one logistic output per
    label with binary cross-entropy. A y of one class is accepted, as scikit-learn does: the
    network (one logistic output) is trained, ``predict`` always returns that class and
    ``predict_proba`` a column of ones.

    Training that diverges (the cost or the weights stop being finite) raises
    :class:`fastmlp.DivergenceError`, a ``ValueError`` with scikit-learn's message; with
    ``early_stopping`` it ends training instead (a ``ConvergenceWarning``), with the weights of
    the best validation epoch and nan recorded for the diverged one. The same holds for
    ``MLPRegressor``.
{_PARAMETERS}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` (fastmlp extra; single-label y).
{_ATTRIBUTES}
    classes_ : ndarray of shape (n_classes,)
        The class labels (0 ... n_labels - 1 for multi-label y).

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import MLPClassifier
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25, dtype=float)
    >>> clf = MLPClassifier((8,), "tanh", learning_rate_init=0.05, max_iter=300, random_state=0)
    >>> clf.fit(X, np.logical_xor(X[:, 0], X[:, 1])).predict([[0, 1], [1, 1]])
    array([ True, False])
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype=None,
                 dropout=0.0, l1=0.0, average_every=1,
                 class_weight=None):
        parameters = dict(locals())   # every parameter, with self and the __class__ cell of super()
        del parameters["self"], parameters["class_weight"], parameters["__class__"]
        super().__init__(**parameters)
        self.class_weight = class_weight

    def _encode(self, y, sample_weight, dtype, first, incremental, classes):
        """What fit trains on: ``(targets, strata, sample_weight, task)``.

        Two classes: a 0/1 column (one logistic output); more: class codes (softmax); a 0/1 matrix:
        itself (multi-label). ``strata`` are the class codes for a stratified validation split.
        """
        y = np.asarray(y)
        multilabel = y.ndim == 2
        if multilabel and not np.isin(y, (0, 1)).all():
            raise ValueError("Unknown label type: multiclass-multioutput; a 2-D y must be a 0/1 indicator matrix")
        if y.dtype.kind == "f" and np.any(y != np.round(y)):
            raise ValueError("Unknown label type: continuous. Maybe you are trying to fit a classifier, which "
                             "expects discrete classes on a regression target with continuous values.")
        present = np.arange(y.shape[1]) if multilabel else np.unique(y)
        if incremental and classes is not None and hasattr(self, "classes_") and \
                not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={np.unique(classes)!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        if first:
            if incremental and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = present if multilabel or not incremental else np.unique(classes)
        elif self.warm_start and not incremental and not np.array_equal(present, self.classes_):
            raise ValueError(f"warm_start can only be used where `y` has the same classes as in the previous "
                             f"call to fit. Previously got {self.classes_}, `y` has {present}")
        if not multilabel and np.setdiff1d(present, self.classes_).size:
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                             f"'y' has {present}.")
        if multilabel:
            targets = y.astype(dtype)
            return targets, None, check_sample_weight(sample_weight, self.class_weight, targets, None, dtype), \
                "multilabel"
        codes = np.searchsorted(self.classes_, y)
        one_hot = np.eye(len(self.classes_), dtype=dtype)[codes]
        weights = check_sample_weight(sample_weight, self.class_weight, one_hot, self.classes_, dtype)
        if len(self.classes_) == 2:
            return one_hot[:, 1:], codes, weights, "multilabel"
        if len(self.classes_) == 1:   # as scikit-learn: one logistic output, trained towards 0
            return np.zeros_like(one_hot), codes, weights, "multilabel"
        return codes, codes, weights, "classification"

    def predict_proba(self, X):
        """Class probabilities, ndarray of shape (n_samples, n_classes) in the dtype of the network."""
        out = self._output(X)
        if len(self.classes_) == 1:   # fitted on one class: that class, surely
            return np.ones_like(out)
        return np.hstack([1 - out, out]) if len(self.classes_) == 2 and self.n_outputs_ == 1 else out

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def predict(self, X):
        """Class labels, shape (n_samples,) (a 0/1 matrix of shape (n_samples, n_labels) for multi-label)."""
        out = self._output(X)
        if self.out_activation_ == "softmax":
            return self.classes_[np.argmax(out, axis=1)]
        if self.n_outputs_ == 1 and len(self.classes_) <= 2:   # two classes, or one (always predicted)
            return self.classes_[(out[:, 0] > 0.5).astype(np.intp) if len(self.classes_) == 2
                                 else np.zeros(len(out), np.intp)]
        return (out > 0.5).astype(np.int64)

    def score(self, X, y, sample_weight=None):
        """Accuracy of ``predict(X)`` (every label must match for multi-label y), weighted by
        ``sample_weight``: scikit-learn's ``accuracy_score``."""
        predicted = self.predict(X)
        y, sample_weight = _gathered(y), _gathered(sample_weight)
        if (sample_weight is None and type(y) is np.ndarray and y.ndim == predicted.ndim == 1
                and len(y) == len(predicted) and y.dtype.kind in "biuU" and y.dtype.kind == predicted.dtype.kind):
            return float(np.mean(y == predicted))   # what accuracy_score computes here, after its checks
        return _accuracy(y, predicted, sample_weight)

    @_StochasticOnly
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing the weights and the optimizer state (Adam's moments too).

        ``classes`` (every label) is required on the first call.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True   # as scikit-learn's MLPClassifier
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor with scikit-learn's interface, trained by fastmlp.

    Identity output and the squared error ``1/(2n) Σ‖y − a‖²`` (scikit-learn's "squared_error"), or
    an exp output and half the Poisson deviance (``loss="poisson"``, for counts and rates y ≥ 0).
{_PARAMETERS}
    loss : {{"squared_error", "poisson"}}, default="squared_error"
        "poisson": ``1/n Σ a − y ln a + y ln y − y`` with ``a = exp(z)`` (a log link), as in
        scikit-learn; y must be ≥ 0. (Keyword-only here; scikit-learn 1.7 made it the first
        positional parameter.) With several outputs ``loss_`` averages the squared error over
        them too, as scikit-learn does (the gradients are those of the sum, in both).
{_ATTRIBUTES}

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor((16,), "tanh", batch_size=20, learning_rate_init=0.01, random_state=0)
    >>> round(reg.fit(X, X[:, 0] ** 2).score(X, X[:, 0] ** 2), 2) > 0.9
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="squared_error", solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype=None,
                 dropout=0.0, l1=0.0, average_every=1):
        parameters = dict(locals())   # every parameter, with self and the __class__ cell of super()
        del parameters["self"], parameters["loss"], parameters["__class__"]
        super().__init__(**parameters)
        self.loss = loss

    def _loss_for(self, task):
        return "poisson" if self.loss == "poisson" else "quadratic"

    def _encode(self, y, sample_weight, dtype, first, incremental, classes):
        if self.loss not in ("squared_error", "poisson"):
            raise ValueError(f"loss must be 'squared_error' or 'poisson', got {self.loss!r}")
        if not first and self.loss != ("poisson" if self.out_activation_ == "exp" else "squared_error"):
            raise ValueError(f"loss={self.loss!r} does not match the fitted model's loss; fit anew "
                             "(warm_start=False) to change it")
        targets = np.ascontiguousarray(_as_rows(y), dtype=dtype)
        check_targets_for_loss(targets, self._loss_for("regression"))
        return targets, None, check_sample_weight(sample_weight, None, targets, None, dtype), "regression"

    def predict(self, X):
        """Predicted targets: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        out = self._output(X)
        return out.ravel() if out.shape[1] == 1 else out

    def score(self, X, y, sample_weight=None):
        """R² of ``predict(X)``, averaged over the outputs and weighted by ``sample_weight``:
        scikit-learn's ``r2_score``."""
        predicted = self.predict(X)
        y, sample_weight = _gathered(y), _gathered(sample_weight)
        if (sample_weight is None and type(y) is np.ndarray and y.ndim == predicted.ndim == 1
                and y.dtype == np.float64 and len(y) == len(predicted) >= 2 and y.flags.c_contiguous
                and all_finite(y) and all_finite(predicted)):
            # r2_score's arithmetic for one output, without its checks (which these arrays pass)
            y_true, y_pred = y.reshape(-1, 1), predicted.astype(np.float64).reshape(-1, 1)
            numerator = np.sum((y_true - y_pred) ** 2, axis=0)
            denominator = np.sum((y_true - np.average(y_true, axis=0)) ** 2, axis=0)
            if numerator[0] == 0:
                return 1.0
            return float(1 - numerator[0] / denominator[0]) if denominator[0] != 0 else 0.0
        return _r2(y, predicted, sample_weight)

    @_StochasticOnly
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the weights and the optimizer state (Adam's moments too)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.loss == "poisson"   # as scikit-learn's PoissonRegressor
        tags.input_tags.sparse = True
        return tags
