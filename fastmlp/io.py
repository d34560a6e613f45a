"""Saving and loading fitted models: a versioned ``.npz`` file, never pickle.

The file is a NumPy ``.npz`` archive (a zip) holding ``weights_0 ... weights_{L-1}``,
``biases_0 ...``, ``classes`` for a classifier, and ``metadata``: a JSON string with
``format`` ("fastmlp"), ``format_version``, ``layer_sizes``, ``layer_activations``, ``loss``,
``dtype``, ``l2``, ``single_target``, ``history``, ``input_scale`` (null, or absent in older
files, when the model takes X as it is) and ``sha256``, a digest of every array,
so that an edited or damaged file is rejected. Loading uses ``allow_pickle=False``: nothing in
a file can run code. Every member is stored uncompressed, so no header can make loading allocate
more than the file's size, and the arrays are checked as ``fit`` checks user-given weights
(float32/float64, the shapes of the layer sizes, finite values). Saving writes a temporary file beside the target and renames it over the
target, so a crash mid-save never leaves a half-written file in place.
"""
import hashlib
import json
import math
import numbers
import os
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from ._validation import (HIDDEN_ACTIVATIONS, TASKS, check_activations, check_dtype, check_float, check_int,
                          check_parameters)
from .model import MLP, OPTIMIZERS

FORMAT = "fastmlp"
FORMAT_VERSION = 1


def _digest(arrays, metadata):
    """SHA-256 over the metadata (but its own digest) and every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    described = {key: value for key, value in metadata.items() if key != "sha256"}
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _plain(entry):
    """A history entry as JSON: per-epoch numbers, or one epoch number ("interrupted", "diverged")."""
    if isinstance(entry, numbers.Integral):
        return int(entry)
    if isinstance(entry, numbers.Real):
        return float(entry)
    return [float(value) for value in entry]


def save(model, path):
    """Write ``model`` to ``path`` (conventionally ``*.npz``) atomically.

    Raises
    ------
    TypeError
        If ``model`` is not a fitted :class:`fastmlp.MLP` or its class labels are not numbers or strings.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a fastmlp.MLP, got {type(model).__name__}")
    arrays = {f"weights_{l}": w for l, w in enumerate(model.weights)}
    arrays.update({f"biases_{l}": b for l, b in enumerate(model.biases)})
    if model.classes_ is not None:
        classes = np.asarray(model.classes_)
        if classes.dtype.kind not in "biufUS":
            raise TypeError(f"class labels of dtype {classes.dtype} cannot be saved; use numbers or strings")
        arrays["classes"] = classes
    optimizer = None
    if model.optimizer_state is not None:
        state = model.optimizer_state
        arrays.update({f"state_{i}": array for i, array in enumerate(state["state"])})
        optimizer = {"name": state["optimizer"], "step_count": int(state["step_count"]),
                     "dropout_counter": int(state["dropout_counter"]),
                     "config": {key: float(value) for key, value in state.get("config", {}).items()
                                if key != "optimizer"}}
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "layer_sizes": list(model.layer_sizes), "layer_activations": model.layer_activations,
        "loss": model.loss, "dtype": np.dtype(model.dtype).name, "l2": model.l2,
        "single_target": bool(model.single_target), "task": model.task, "l1": model.l1,
        "use_bias": bool(model.use_bias), "optimizer": optimizer,
        "input_scale": None if model.input_scale is None else float(model.input_scale),
        "history": {key: _plain(values) for key, values in model.history.items()},
    }
    metadata["sha256"] = _digest(arrays, metadata)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".fastmlp-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, metadata=np.array(json.dumps(metadata)), **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path):
    """Read a model written by :func:`save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a fastmlp model, has an unsupported format version, is truncated or
        damaged, or its arrays do not match its metadata.
    """
    path = os.fspath(path)
    arrays = read_npz(path)
    try:
        metadata = json.loads(str(arrays.pop("metadata")))
    except (KeyError, ValueError, RecursionError):   # RecursionError: absurdly nested JSON
        raise ValueError(f"{path} is not a fastmlp model file: no valid metadata") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastmlp model file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {metadata.get('format_version')!r}; "
                         f"this fastmlp reads version {FORMAT_VERSION}")
    if metadata.get("sha256") != _digest(arrays, metadata):
        raise ValueError(f"{path} has been modified or damaged: its arrays do not match their checksum")
    try:
        return _model(arrays, metadata)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} does not describe a valid model: {error!r}") from None


# What a damaged zip can raise from zipfile, zlib and NumPy's .npy reader: a flag saying
# "encrypted" (RuntimeError), an unknown compression method (NotImplementedError), headers with
# absurd fields (OverflowError, struct.error), a cut deflate stream (EOFError, zlib.error), ...
_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, KeyError, RuntimeError,
            NotImplementedError, OverflowError, struct.error, UnicodeDecodeError, IndexError, OSError)
# Deflate inflates at most 1032-fold.
_DEFLATE_RATIO = 1032


def read_npz(path, what="fastmlp model file", compressed=False):
    """Every array of the ``.npz`` archive at ``path`` (never unpickled), as a dict.

    Each member must be a ``.npy`` array, stored (or with ``compressed``, deflated, as
    ``np.savez_compressed`` writes) and no larger than its header promises, before anything is
    allocated: NumPy allocates the array a header describes before reading a byte of it.
    Whatever is not such an archive is a ValueError naming ``path`` and ``what`` it should be;
    a file that cannot be opened is an OSError (FileNotFoundError when it does not exist).
    """
    with open(path, "rb") as file:     # ours to close, whatever zipfile makes of it
        try:
            if file.read(4) != b"PK\x03\x04":
                raise ValueError("not a .npz archive")
            size = os.fstat(file.fileno()).st_size
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                infos = archive.infolist()
                for info in infos:
                    _check_member(archive, info, size, compressed)
                arrays = {}
                for info in infos:
                    with archive.open(info) as member:
                        arrays[info.filename[:-len(".npy")]] = np.lib.format.read_array(member, allow_pickle=False)
                return arrays
        except _DAMAGED as error:
            raise ValueError(f"{path} is not a readable {what} (truncated or damaged?): {error}") from None


def _check_member(archive, info, file_size, compressed):
    """Refuse a member that is not a ``.npy`` array holding the data its header promises."""
    methods = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) if compressed else (zipfile.ZIP_STORED,)
    if not info.filename.endswith(".npy") or info.compress_type not in methods:
        raise ValueError(f"member {info.filename!r} is not a .npy array, "
                         f"{'stored or deflated' if compressed else 'stored uncompressed'}")
    limit = file_size if info.compress_type == zipfile.ZIP_STORED else _DEFLATE_RATIO * file_size + 1024
    if info.file_size > limit:
        raise ValueError(f"member {info.filename!r} says it holds {info.file_size} bytes, more than the file can")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"member {info.filename!r} has .npy format version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(member)
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise ValueError(f"member {info.filename!r} is shorter than its header says ({shape} of {dtype})")


def _model(arrays, metadata):
    """The MLP that ``arrays`` and ``metadata`` describe, checked as ``fit`` checks given weights."""
    sizes = [check_int(n, "layer size") for n in metadata["layer_sizes"]]
    n_layers = len(sizes) - 1
    dtype = check_dtype(metadata["dtype"])
    activations, loss = list(metadata["layer_activations"]), metadata["loss"]
    if n_layers < 1 or len(activations) != n_layers or not set(activations[:-1]) <= set(HIDDEN_ACTIVATIONS):
        raise ValueError(f"the layer activations {activations} do not fit the layer sizes {sizes}")
    task = metadata.get("task", "classification" if "classes" in arrays else "regression")
    if task not in TASKS or (task == "regression") != ("classes" not in arrays):
        raise ValueError(f"task {task!r} does not fit the arrays")
    check_activations(n_layers, "identity", activations[-1], loss, task)   # the output rules of fit
    weights = [arrays[f"weights_{l}"] for l in range(n_layers)]
    biases = [arrays[f"biases_{l}"] for l in range(n_layers)]
    for l, (w, b) in enumerate(zip(weights, biases)):
        if w.dtype != dtype or b.dtype != dtype:
            raise ValueError(f"layer {l} holds {w.dtype} and {b.dtype} arrays, the metadata says {dtype.__name__}")
    weights, biases = check_parameters(weights, biases, sizes, dtype)   # shapes and finite values
    classes = arrays.get("classes")
    if classes is not None and (classes.dtype.kind not in "biufUS" or classes.shape != (sizes[-1],)
                                or not np.array_equal(np.unique(classes), classes)):
        raise ValueError(f"classes must be {sizes[-1]} distinct sorted numbers or strings, "
                         f"got {classes.dtype} of shape {classes.shape}")
    history = _history(metadata.get("history", {}))
    if not isinstance(metadata.get("single_target", True), bool):
        raise ValueError("single_target must be true or false")
    use_bias = metadata.get("use_bias", True)
    if not isinstance(use_bias, bool) or (not use_bias and any(b.any() for b in biases)):
        raise ValueError("use_bias must be true or false, and false only with zero biases")
    input_scale = metadata.get("input_scale")
    if input_scale is not None:
        input_scale = check_float(input_scale, "input_scale", 0.0, inclusive=False, dtype=dtype)
    return MLP(weights, biases, activations, loss, classes, history=history, input_scale=input_scale,
               l2=check_float(metadata.get("l2", 0.0), "l2"),
               single_target=bool(metadata.get("single_target", True)), task=task,
               l1=check_float(metadata.get("l1", 0.0), "l1"), use_bias=use_bias,
               optimizer_state=_optimizer_state(arrays, metadata.get("optimizer"), weights + biases))


def _history(history):
    """A model's history as fit writes it: per-epoch lists of finite numbers, and epoch numbers
    (``interrupted``, ``diverged``, ``stopped_early``, ...)."""
    if not isinstance(history, dict):
        raise ValueError(f"history must be a dict, got {type(history).__name__}")
    checked = {}
    for key, value in history.items():
        if isinstance(value, list):
            checked[key] = [check_float(v, f"history[{key!r}]", -np.inf) for v in value]
        else:
            checked[key] = check_int(value, f"history[{key!r}]", 0)
    return checked


def _optimizer_state(arrays, optimizer, parameters):
    """The optimizer state saved with a model, checked against its parameters (or None)."""
    if optimizer is None:
        return None
    if not isinstance(optimizer, dict) or optimizer.get("name") not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer state {optimizer!r}")
    count = sum(name.startswith("state_") for name in arrays)
    if count not in (0, len(parameters), 2 * len(parameters)):
        raise ValueError(f"{count} optimizer state arrays do not fit {len(parameters)} parameter arrays")
    state = [arrays[f"state_{i}"] for i in range(count)]
    for i, array in enumerate(state):
        like = parameters[i % len(parameters)]
        if array.shape != like.shape or array.dtype != like.dtype or not np.isfinite(array).all():
            raise ValueError(f"optimizer state {i} does not match its parameters")
    config = optimizer.get("config", {})
    if not isinstance(config, dict):
        raise ValueError("optimizer config must be a dict")
    return {"optimizer": optimizer["name"], "state": [np.ascontiguousarray(a) for a in state],
            "step_count": check_int(optimizer.get("step_count", 0), "step_count", 0),
            "dropout_counter": check_int(optimizer.get("dropout_counter", 0), "dropout_counter", 0, 2**64 - 1),
            "config": {key: check_float(value, key, -np.inf) for key, value in config.items()}}
