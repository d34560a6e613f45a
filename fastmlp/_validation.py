"""Validate once, at the front door: every user input is checked and converted here.

The compiled kernels trust their callers, so nothing reaches them that has not passed through
these functions. Error messages name the argument and show the value. Inputs are never modified:
conversion makes a copy whenever the dtype or memory layout has to change.
"""
import numbers
import os
import sys

import numpy as np

from ._kernels import all_finite, csr_problem

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
# Output activations that each loss accepts.
OUTPUT_ACTIVATIONS = {
    "quadratic": ("identity", "sigmoid", "tanh", "relu", "softmax"),
    "cross_entropy": ("sigmoid",),
    "log_loss": ("softmax",),
    "poisson": ("exp",),
}
DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(dtype):
    """The float dtype to compute in: float32 (default) or float64."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype.type


def _as_numeric_array(value, name):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def check_array(X, dtype, name="X", n_features=None, accept_sparse=False):
    """X as a C-contiguous, aligned 2-D array of ``dtype``, finite and non-empty (a copy if needed).

    An array that is already so (a ``numpy.memmap`` or a read-only array included) is returned
    without a copy, after one pass over it for NaN and infinity. A SciPy sparse X is returned as
    :func:`check_sparse` makes it with ``accept_sparse``, and is a TypeError without."""
    if is_ready(X, dtype, n_features) and all_finite(X):   # O(1) Python work, one pass in C
        return X
    if is_sparse(X):
        if not accept_sparse:
            raise TypeError(f"{name} must be a dense array, got a sparse {type(X).__name__}; use {name}.toarray()")
        return check_sparse(X, dtype, name, n_features)
    array = _as_numeric_array(X, name)
    _check_shape(array, name, n_features)
    with np.errstate(over="ignore"):   # a value too large for float32 becomes inf, reported just below
        array = np.require(array, dtype, "CA")   # C-contiguous, aligned, in the machine's byte order
    if not all_finite(array):
        raise ValueError(f"{name} contains NaN or infinity (or values too large for {np.dtype(dtype)})")
    return array


# Integer inputs that fit and the models take as they are (8-bit images, 12- or 16-bit sensors):
# converted to the float dtype, and multiplied by the input scale, a mini-batch at a time.
INTEGER_INPUTS = (np.uint8, np.uint16)


def check_inputs(X, dtype, name="X", n_features=None, accept_sparse=True):
    """X as ``check_array`` gives it (sparse accepted), except that a uint8 or uint16 ndarray stays
    of its dtype: returned as it is when C-contiguous and 2-D (a ``numpy.memmap`` stays one, never
    read here), else as a C-contiguous copy of the same dtype. Integers need no finiteness check."""
    if not (isinstance(X, np.ndarray) and X.dtype.type in INTEGER_INPUTS):
        return check_array(X, dtype, name, n_features, accept_sparse)
    _check_shape(X, name, n_features)
    return np.require(X, X.dtype.newbyteorder("="), "CA")   # a subclass (memmap) is kept


def check_input_scale(input_scale, x_dtype, dtype):
    """The input scale fit stores with the model: None (X's values as they are), or a finite
    number > 0 for X of ``x_dtype`` uint8 or uint16, whose rows become
    ``X.astype(dtype) * dtype(input_scale)``.

    Raises TypeError for an input_scale with any other X (a float X is scaled by its owner; other
    integer types are converted up front) and ValueError for a scale that is not a
    finite number > 0 in ``dtype`` or makes X's largest possible value overflow it."""
    if input_scale is None:
        return None
    input_scale = check_float(input_scale, "input_scale", 0.0, inclusive=False, dtype=dtype)
    x_dtype = np.dtype(x_dtype)
    if x_dtype.type not in INTEGER_INPUTS:
        raise TypeError(f"input_scale is for uint8 or uint16 X, which is converted a mini-batch at a time; "
                        f"got X of dtype {x_dtype} (multiply a float X by the scale yourself)")
    largest = float(np.iinfo(x_dtype).max) * float(np.asarray(input_scale, dtype))
    if not largest <= float(np.finfo(dtype).max):
        raise ValueError(f"input_scale={input_scale!r} makes {x_dtype} values as large as {largest:g}, "
                         f"beyond the largest {np.dtype(dtype).name}")
    return input_scale


def _check_shape(array, name, n_features):
    """A ValueError unless ``array`` is 2-D, non-empty and (if given) ``n_features`` wide."""
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}; "
                         "use X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for one sample")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"{name} has {array.shape[1]} features, but the model expects {n_features}")


def row_blocks(array, block_bytes=1 << 20):
    """Views of consecutive rows of ``array``, about ``block_bytes`` each: a pass over a large
    array (or a memory-mapped one) with temporaries of one block, not of the whole."""
    rows = max(1, block_bytes // max(1, array[:1].nbytes))
    return (array[start:start + rows] for start in range(0, len(array), rows))


def is_sparse(X):
    """Whether X is a SciPy sparse matrix or array. SciPy is never imported for this: an X that is
    one means that scipy.sparse has been imported already."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


# What csr_problem's answers mean, for the error messages.
CSR_PROBLEMS = {"bad index": "a column index is negative or not less than the number of columns",
                "bad indptr": "its indptr does not start at 0, decreases, or points past the stored values"}


def check_sparse(X, dtype, name="X", n_features=None):
    """X, a SciPy sparse matrix or array, in CSR format as the kernels take it: 2-D and non-empty,
    finite values of ``dtype``, int32 or int64 indices (indices and indptr of one dtype) in range.

    Only what has to change is copied, and X itself is never modified: CSC and the other formats are
    converted to CSR (once); other value or index dtypes are converted. Unsorted or duplicate indices
    are kept (the kernels add duplicates up, what a duplicate means in SciPy's ``toarray``). The
    values are never densified.
    """
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got a sparse {type(X).__name__} of shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects {n_features}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.format != "csr":
        X = X.tocsr()
    index_dtype = X.indices.dtype
    if X.indptr.dtype != index_dtype or index_dtype not in (np.int32, np.int64):
        index_dtype = np.int64
    with np.errstate(over="ignore"):   # a value too large for float32 becomes inf, reported below
        data = np.require(X.data, dtype, "CA")
    indices, indptr = np.require(X.indices, index_dtype, "CA"), np.require(X.indptr, index_dtype, "CA")
    if indptr.shape != (X.shape[0] + 1,) or indices.ndim != 1 or data.ndim != 1:
        raise ValueError(f"{name} is not a valid CSR matrix: indptr must hold n_samples + 1 = {X.shape[0] + 1} "
                         f"values, got {indptr.shape}")
    problem = csr_problem(indptr, indices, X.shape[1], min(len(data), len(indices)))
    if problem in CSR_PROBLEMS:
        raise ValueError(f"{name} is not a valid CSR matrix: {CSR_PROBLEMS[problem]}")
    if not all_finite(data[:indptr[-1]]):
        raise ValueError(f"{name} contains NaN or infinity (or values too large for {np.dtype(dtype)})")
    if data is not X.data or indices is not X.indices or indptr is not X.indptr:
        X = type(X)((data, indices, indptr), shape=X.shape, copy=False)
    return X   # unsorted or duplicate indices as they are: the products add up duplicates, as toarray does


def is_ready(X, dtype, n_features=None):
    """Whether X needs no conversion for ``check_array``: a non-empty, C-contiguous, aligned 2-D
    ndarray (not a subclass) of ``dtype`` (np.float32 or np.float64) in the machine's byte order,
    ``n_features`` wide if given. Finiteness is not checked."""
    if type(X) is not np.ndarray or X.ndim != 2 or X.dtype.type is not dtype or not X.dtype.isnative:
        return False
    flags = X.flags
    return (flags.c_contiguous and flags.aligned and X.shape[0] > 0
            and (X.shape[1] == n_features if n_features is not None else X.shape[1] > 0))


TASKS = ("classification", "multilabel", "regression")


def check_targets(y, n_samples, task, dtype, name="y", loss=None):
    """Decide the task and encode the targets.

    Returns ``(task, Y, classes)``: Y is a C-contiguous ``(n_samples, n_outputs)`` array of
    ``dtype`` and ``classes`` the labels (None for regression). Without ``task``: a 1-D y of
    integers, booleans or strings is classification (one-hot rows); a 2-D y of booleans or of
    integers 0/1 is multi-label classification (one output per label); a float y is regression,
    and so is any y for the Poisson loss (integer counts).
    """
    if y is None:
        raise TypeError(f"{name} is required")
    if is_sparse(y):
        raise TypeError(f"{name} must be a dense array, got a sparse {type(y).__name__}; use {name}.toarray()")
    labels = np.asarray(y)
    if labels.ndim == 0 or labels.ndim > 2:
        raise ValueError(f"{name} must be 1-D (labels or targets) or 2-D (targets), got shape {labels.shape}")
    if labels.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different numbers of samples: {n_samples} and {labels.shape[0]}")
    if task is None and loss == "poisson":
        task = "regression"
    if task is None:
        if labels.ndim == 2 and labels.shape[1] > 1 and labels.dtype.kind in "biu" and np.isin(labels, (0, 1)).all():
            task = "multilabel"
        else:
            task = "regression" if labels.dtype.kind in "fc" or labels.ndim == 2 else "classification"
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if task == "classification":
        labels = check_labels(labels, name)
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise ValueError(f"{name} contains NaN or infinity")
        try:
            classes, encoded = np.unique(labels, return_inverse=True)
        except TypeError:
            raise TypeError(f"{name} labels cannot be compared with each other (mixed types?)") from None
        if len(classes) < 2:
            raise ValueError(f"{name} has a single class ({classes[0]!r}); classification needs at least two")
        Y = np.zeros((n_samples, len(classes)), dtype=dtype)
        Y[np.arange(n_samples), encoded.ravel()] = 1
        return task, Y, classes
    if task == "multilabel":
        Y = check_array(labels.reshape(n_samples, -1), dtype, name)
        if not np.isin(Y, (0, 1)).all():
            raise ValueError(f"{name} for multi-label classification must hold only 0 and 1")
        return task, check_targets_for_loss(Y, loss, name), np.arange(Y.shape[1])
    Y = check_array(labels.reshape(n_samples, -1), dtype, name)
    return task, check_targets_for_loss(Y, loss, name), None


def check_targets_for_loss(Y, loss, name="y"):
    """Y, if ``loss`` is defined for it with backprop's output error its exact gradient; else a
    ValueError saying why. This is the one place that decides which targets a loss takes.

    quadratic      any finite targets (with any output activation; softmax's Jacobian is applied)
    cross_entropy  0 <= y <= 1: outside, −y ln a − (1 − y) ln(1 − a) has no minimum (it falls
                   without bound as a output nears 0 or 1)
    log_loss       rows of probabilities that sum to 1: the softmax output error a − y is the
                   gradient of −Σ y ln a only then (it is (Σ y) a − y), and a negative y has no minimum
    poisson        y >= 0 (counts or rates): a − y ln a has no minimum for y < 0
    """
    if loss is None or loss == "quadratic" or not Y.size:
        return Y
    low, high = float(Y.min()), float(Y.max())
    if loss == "poisson" and low < 0:
        raise ValueError(f"{name} must be >= 0 for loss 'poisson' (counts or rates), got a minimum of {low:g}")
    if loss == "cross_entropy" and (low < 0 or high > 1):
        raise ValueError(f"{name} must be in [0, 1] for loss 'cross_entropy' (the probability of each "
                         f"output), got values from {low:g} to {high:g}; use loss='quadratic' for other targets")
    if loss == "log_loss":
        if low < 0 or high > 1:
            raise ValueError(f"{name} must be in [0, 1] for loss 'log_loss' (a probability distribution per "
                             f"row), got values from {low:g} to {high:g}")
        sums = Y.sum(axis=1, dtype=np.float64)
        worst = sums[np.argmax(np.abs(sums - 1))]
        # rounding: soft labels normalised in float64 and then cast sum to 1 within a few ulps per output
        if abs(worst - 1) > 8 * Y.shape[1] * np.finfo(Y.dtype if Y.dtype.kind == "f" else np.float64).eps:
            raise ValueError(f"{name} rows must each sum to 1 for loss 'log_loss' (softmax outputs: a "
                             f"probability distribution per row), got a row summing to {worst:g}; use "
                             "loss='cross_entropy' for multi-label 0/1 rows, or divide each row by its sum")
    return Y


def check_sample_weight(sample_weight, class_weight, y_encoded, classes, dtype, name="sample_weight"):
    """Per-sample weights (or None) from ``sample_weight`` and ``class_weight``.

    ``class_weight`` is a dict {label: weight} or "balanced" (n_samples / (n_classes · count)),
    for single-label classification; the two multiply when both are given.
    """
    n_samples = len(y_encoded)
    weights = None
    if sample_weight is not None:
        weights = check_array(np.asarray(sample_weight).reshape(1, -1), np.float64, name).ravel()
        if len(weights) != n_samples:
            raise ValueError(f"{name} has {len(weights)} values for {n_samples} samples")
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"{name} must be >= 0 with a positive sum")
    if class_weight is not None:
        if classes is None or y_encoded.shape[1] != len(classes) or not np.all(y_encoded.sum(axis=1) == 1):
            raise ValueError("class_weight is only for single-label classification")
        index = np.argmax(y_encoded, axis=1)
        if class_weight == "balanced":
            per_class = n_samples / (len(classes) * np.bincount(index, minlength=len(classes)))
        elif isinstance(class_weight, dict):
            unknown = [label for label in class_weight if label not in set(classes.tolist())]
            if unknown:
                raise ValueError(f"class_weight names labels not in y: {unknown[:5]}")
            per_class = np.array([float(class_weight.get(label, 1.0)) for label in classes.tolist()])
            if not np.all(np.isfinite(per_class)) or (per_class < 0).any():
                raise ValueError("class_weight values must be finite and >= 0")
        else:
            raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
        weights = per_class[index] * (1 if weights is None else weights)
        if weights.sum() <= 0:
            raise ValueError("class_weight leaves every sample with weight 0")
        name = f"{name} times class_weight" if sample_weight is not None else "class_weight"
    return None if weights is None else _weights_in(weights, dtype, name)


def _weights_in(weights, dtype, name):
    """The (float64, >= 0) weights as ``dtype``, checked there: none overflows to infinity or
    underflows (a positive weight must stay a normal number, so that a mini-batch's sum of weights
    is 0 or at least the smallest normal), and their sum stays finite."""
    info = np.finfo(dtype)
    with np.errstate(over="ignore"):
        used = np.ascontiguousarray(weights, dtype=dtype)
    if not np.isfinite(used).all():
        raise ValueError(f"{name} holds values too large for {info.dtype}: the largest is {weights.max():g}")
    lost = (weights > 0) & (used < info.tiny)
    if lost.any():
        raise ValueError(f"{name} holds positive values too small for {info.dtype} ({weights[lost][0]:g}, "
                         f"below its smallest normal number {info.tiny:g}); scale all the weights up")
    total = float(used.sum(dtype=np.float64))
    if not total <= float(info.max):
        raise ValueError(f"{name} sums to {total:g}, more than the largest {info.dtype} ({info.max:g}); "
                         "scale all the weights down")
    return used


def check_labels(y, name="y"):
    """Class labels as a 1-D array (a single column is accepted) of numbers, strings or objects."""
    if is_sparse(y):
        raise TypeError(f"{name} must be a dense array, got a sparse {type(y).__name__}; use {name}.toarray()")
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.ravel()
    if labels.ndim != 1:
        raise ValueError(f"{name} for classification must be 1-D labels, got shape {labels.shape}")
    if labels.dtype.kind not in "biufUSO":
        raise TypeError(f"{name} labels have an unsupported dtype {labels.dtype}")
    return labels


def encode_labels(y, classes, dtype, name="y"):
    """One-hot rows for labels ``y`` of a model fitted on ``classes``; unseen labels are an error."""
    labels = check_labels(y, name)
    index = np.searchsorted(classes, labels)
    index = np.minimum(index, len(classes) - 1)
    unseen = classes[index] != labels
    if unseen.any():
        raise ValueError(f"{name} holds labels not seen during fit: {np.unique(labels[unseen])[:5].tolist()}")
    Y = np.zeros((len(labels), len(classes)), dtype=dtype)
    Y[np.arange(len(labels)), index] = 1
    return Y


# Counts (epochs, batch sizes, seeds, layer sizes, ...) reach C as 64-bit integers: anything larger
# is a mistake, and a clear one, not an OverflowError from deep inside.
MAX_INT = 2**63 - 1


def check_int(value, name, minimum=1, maximum=MAX_INT):
    """``value`` as a Python int in [minimum, maximum]: TypeError for a non-integer (bools, floats and
    strings included), ValueError naming ``name`` and the value when out of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_shown(value)}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_shown(value)}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_shown(value)}")
    return value


def check_float(value, name, minimum=0.0, inclusive=True, maximum=None, dtype=None):
    """``value`` as a finite Python float with ``minimum <= value`` (``<`` unless ``inclusive``) and
    ``value < maximum``.

    Python ints too large for a float are a ValueError, as NaN and infinity are. With ``dtype``
    (the float type the value is used in) the value must also be finite in that dtype, and a value
    > 0 must not round to 0 there: 1e-50 is 0 in float32, 1e39 is infinity.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_shown(value)}")
    shown = value
    try:
        value = float(value)
    except (OverflowError, ValueError):   # an int beyond 1.8e308 (or a Real whose __float__ fails)
        value, shown = float("nan"), _shown(value)
    if not isinstance(shown, str):
        shown = value
    too_small = value < minimum if inclusive else value <= minimum
    if not np.isfinite(value) or too_small or (maximum is not None and value >= maximum):
        bound = f">= {minimum}" if inclusive else f"> {minimum}"
        bound += f" and < {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be finite and {bound}, got {shown}")
    if dtype is not None:
        info = np.finfo(dtype)
        if abs(value) > float(info.max) or (value != 0 and abs(value) < float(info.tiny)):
            raise ValueError(f"{name}={value!r} is out of range in {np.dtype(dtype).name}, whose finite "
                             f"non-zero magnitudes run from {info.tiny:.3g} to {info.max:.3g}")
    return value


def check_choice(value, name, choices):
    """``value`` if it is one of ``choices`` (strings, or None), else a ValueError listing them."""
    try:
        known = bool(value in choices)
    except (TypeError, ValueError):   # an unhashable value, or an array compared with each choice
        known = False
    if not known or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be one of {list(choices)}, got {_shown(value)}")
    return value


def _shown(value, limit=60):
    """repr(value), shortened: a huge int or a long string in a message stays one line."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) >= 10**18:
        return f"an integer of {len(str(abs(int(value))))} digits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_hidden(hidden):
    """Hidden layer sizes as a tuple of positive ints (an int means one hidden layer)."""
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        sizes = tuple(hidden)
    except TypeError:
        raise TypeError(f"hidden must be a sequence of layer sizes, got {hidden!r}") from None
    return tuple(check_int(size, "hidden layer size") for size in sizes)


def check_activations(n_layers, activation, output_activation, loss, task):
    """One activation name per layer, with the output activation the loss requires.

    ``activation`` is one name for every hidden layer or a sequence of one name per hidden layer.
    """
    if not isinstance(loss, str) or loss not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"loss must be one of {sorted(OUTPUT_ACTIVATIONS)}, got {loss!r}")
    if loss == "poisson" and task != "regression":
        raise ValueError(f"loss 'poisson' is for regression (targets >= 0), not {task}")
    if isinstance(activation, str):
        hidden = [activation] * (n_layers - 1)
    elif isinstance(activation, (list, tuple)):
        hidden = list(activation)
    else:
        raise ValueError(f"activation must be one of {list(HIDDEN_ACTIVATIONS)} or a list of them, got {activation!r}")
    if len(hidden) != n_layers - 1:
        raise ValueError(f"activation lists {len(hidden)} names for {n_layers - 1} hidden layers")
    for name in hidden or [activation if isinstance(activation, str) else "sigmoid"]:
        if name not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(HIDDEN_ACTIVATIONS)}, got {name!r}")
    if output_activation is None:
        if loss == "quadratic":
            last_hidden = hidden[-1] if hidden else (activation if isinstance(activation, str) else "sigmoid")
            output_activation = last_hidden if task == "classification" else "identity"
        else:
            output_activation = OUTPUT_ACTIVATIONS[loss][0]
    allowed = OUTPUT_ACTIVATIONS[loss]
    if output_activation not in allowed:
        raise ValueError(f"output_activation {output_activation!r} does not go with loss {loss!r}; "
                         f"use one of {list(allowed)}")
    return hidden + [output_activation]


def check_parameters(weights, biases, layer_sizes, dtype):
    """Copies of user-given weights and biases, checked against the layer sizes."""
    for name, value in (("weights", weights), ("biases", biases)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list of arrays, one per layer, got {type(value).__name__}")
    if len(weights) != len(layer_sizes) - 1 or len(biases) != len(layer_sizes) - 1:
        raise ValueError(f"need {len(layer_sizes) - 1} weight matrices and bias vectors for layer sizes "
                         f"{tuple(layer_sizes)}, got {len(weights)} and {len(biases)}")
    weights = [check_array(w, dtype, f"weights[{l}]").copy() for l, w in enumerate(weights)]
    with np.errstate(over="ignore"):   # a bias too large for float32 becomes inf, reported below
        biases = [np.array(_as_numeric_array(b, f"biases[{l}]"), dtype=dtype) for l, b in enumerate(biases)]
    for l, (w, b) in enumerate(zip(weights, biases)):
        expected = (layer_sizes[l], layer_sizes[l + 1])
        if w.shape != expected:
            raise ValueError(f"weights[{l}] must have shape {expected}, got {w.shape}")
        if b.shape != (expected[1],):
            raise ValueError(f"biases[{l}] must have shape ({expected[1]},), got {b.shape}")
        if not np.isfinite(b).all():
            raise ValueError(f"biases[{l}] contains NaN or infinity (or values too large for {np.dtype(dtype)})")
    return weights, biases


def check_fits_in_memory(layer_sizes, dtype, what):
    """A clear ValueError, instead of a MemoryError, for layers whose parameters cannot fit in memory.

    Counts the weights and biases in ``dtype`` and, beside them, the float64 draw of the largest
    weight matrix (initial weights are drawn in float64 and then cast). ``what`` names the argument
    in the message (``hidden=(...)``).
    """
    sizes = [int(n) for n in layer_sizes]
    layers = [(n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    needed = sum(layers) * np.dtype(dtype).itemsize + max(layers, default=0) * 8
    try:
        available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return
    if needed > available:
        raise ValueError(f"{what} needs {needed / 2**30:.1f} GiB for its weights (and their float64 "
                         f"initial draw), more than this machine's {available / 2**30:.1f} GiB of memory")
