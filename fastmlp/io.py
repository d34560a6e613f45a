"""Saving and loading fitted models: a versioned ``.npz`` file, never pickle.

The file is a NumPy ``.npz`` archive (a zip) holding ``weights_0 ... weights_{L-1}``,
``biases_0 ...``, ``classes`` for a classifier, and ``metadata``: a JSON string with
``format`` ("fastmlp"), ``format_version``, ``layer_sizes``, ``layer_activations``, ``loss``,
``dtype``, ``l2``, ``single_target``, ``history`` and ``sha256``, a digest of every array,
so that an edited or damaged file is rejected. Loading uses ``allow_pickle=False``: nothing in
a file can run code. Saving writes a temporary file beside the target and renames it over the
target, so a crash mid-save never leaves a half-written file in place.
"""
import hashlib
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from ._validation import HIDDEN_ACTIVATIONS, check_activations
from .model import MLP

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
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "layer_sizes": list(model.layer_sizes), "layer_activations": model.layer_activations,
        "loss": model.loss, "dtype": np.dtype(model.dtype).name, "l2": model.l2,
        "single_target": bool(model.single_target),
        "history": {key: [float(v) for v in values] for key, values in model.history.items()},
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
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path} is not a readable fastmlp model file (truncated or damaged?): {error}") from None
    try:
        metadata = json.loads(str(arrays.pop("metadata")))
    except (KeyError, ValueError):
        raise ValueError(f"{path} is not a fastmlp model file: no valid metadata") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastmlp model file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {metadata.get('format_version')!r}; "
                         f"this fastmlp reads version {FORMAT_VERSION}")
    if metadata.get("sha256") != _digest(arrays, metadata):
        raise ValueError(f"{path} has been modified or damaged: its arrays do not match their checksum")
    try:
        sizes = [int(n) for n in metadata["layer_sizes"]]
        n_layers = len(sizes) - 1
        dtype = np.dtype(metadata["dtype"])
        weights = [arrays[f"weights_{l}"] for l in range(n_layers)]
        biases = [arrays[f"biases_{l}"] for l in range(n_layers)]
        activations, loss = list(metadata["layer_activations"]), metadata["loss"]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is incomplete: {error!r}") from None
    for l, (w, b) in enumerate(zip(weights, biases)):
        if w.shape != (sizes[l], sizes[l + 1]) or b.shape != (sizes[l + 1],) or w.dtype != dtype or b.dtype != dtype:
            raise ValueError(f"{path}: layer {l} arrays do not match the metadata")
    task = "classification" if "classes" in arrays else "regression"
    if n_layers < 1 or len(activations) != n_layers or not set(activations[:-1]) <= set(HIDDEN_ACTIVATIONS):
        raise ValueError(f"{path}: the layer activations {activations} do not fit the layer sizes {sizes}")
    check_activations(n_layers, "identity", activations[-1], loss, task)   # the output rules of fit
    return MLP([np.ascontiguousarray(w) for w in weights], [np.ascontiguousarray(b) for b in biases],
               activations, loss, arrays.get("classes"), history=metadata.get("history", {}),
               l2=float(metadata.get("l2", 0.0)), single_target=bool(metadata.get("single_target", True)))
