"""Pictures of training and of what a network learned, written as PNG files.

matplotlib is an optional extra (``pip install fastmlp[plot]``) and is imported only when a
picture is drawn. Figures are drawn on matplotlib's Agg canvas directly, without ``pyplot``:
no window ever opens and the backend a user chose for their own plots is left alone.
``confusion_matrix`` needs only NumPy.
"""
import math
import os

import numpy as np

__all__ = ["confusion_matrix", "plot_confusion_matrix", "plot_first_layer", "plot_history",
           "plot_misclassified"]


def _figure(width, height):
    """A matplotlib Figure on an Agg canvas (so ``savefig`` never needs a display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("fastmlp's plots need matplotlib: pip install fastmlp[plot]") from error
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    path = os.fspath(path)
    figure.savefig(path, format="png")
    return path


def _check_count(n, name="n"):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    return int(n)


def _check_image_shape(image_shape):
    """image_shape as a tuple of positive ints, else a ValueError naming it."""
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = None
    if not shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 1 <= n <= 2**31
                            for n in shape):
        raise ValueError(f"image_shape must be a tuple of positive ints such as (28, 28), got {image_shape!r}")
    return tuple(int(n) for n in shape)


def _label_name(label, class_names):
    """``class_names[label]`` when names are given, else the label itself, as text."""
    if class_names is None:
        return str(label)
    label = label.item() if isinstance(label, np.generic) else label
    try:
        return str(class_names[label])
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"class_names has no name for label {label!r}") from None


def _image_grid(figure, images, titles, cmap, symmetric):
    """Draw ``images`` in a near-square grid of axes, without ticks, one title each."""
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    for index, (image, title) in enumerate(zip(images, titles)):
        axes = figure.add_subplot(rows, columns, index + 1)
        limit = float(np.max(np.abs(image))) or 1.0
        limits = {"vmin": -limit, "vmax": limit} if symmetric else {}
        axes.imshow(image, cmap=cmap, interpolation="nearest", **limits)
        axes.set_title(title, fontsize=8)
        axes.set_xticks([])
        axes.set_yticks([])


def plot_history(history, path):
    """Loss per epoch (training and validation) and the validation score, as a PNG.

    Parameters
    ----------
    history : dict of lists, or a fitted MLP
        ``MLP.history``: ``loss`` is required; ``val_loss`` and ``val_accuracy`` (or ``val_r2``
        for regression) are drawn when present.
    path : str or os.PathLike
        The PNG file to write.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``history`` has no ``loss`` values.

    Examples
    --------
    >>> plot_history({"loss": [0.3, 0.2, 0.15], "val_loss": [0.31, 0.22, 0.2],
    ...               "val_accuracy": [0.7, 0.8, 0.82]}, "history.png")   # doctest: +SKIP
    'history.png'
    """
    history = getattr(history, "history", history)
    if not isinstance(history, dict) or not isinstance(history.get("loss"), list) or not history["loss"]:
        raise ValueError("history must hold a non-empty 'loss' list (MLP.history after fit)")
    for key in ("loss", "val_loss", "val_accuracy", "val_r2"):
        values = history.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                                    for v in values):
            raise ValueError(f"history[{key!r}] must be a list of numbers")
    score_key = next((key for key in ("val_accuracy", "val_r2") if history.get(key)), None)
    figure = _figure(10 if score_key else 5, 4)
    epochs = np.arange(1, len(history["loss"]) + 1)
    axes = figure.add_subplot(1, 2 if score_key else 1, 1)
    axes.plot(epochs, history["loss"], "o-", label="training")
    if history.get("val_loss"):
        axes.plot(epochs[:len(history["val_loss"])], history["val_loss"], "s-", label="validation")
    axes.set(xlabel="epoch", ylabel="cost", title="Cost per epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend()
    axes.grid(alpha=0.3)
    if score_key:
        axes = figure.add_subplot(1, 2, 2)
        axes.plot(epochs[:len(history[score_key])], history[score_key], "s-", color="C1")
        name = "accuracy" if score_key == "val_accuracy" else "R²"
        axes.set(xlabel="epoch", ylabel=name, title=f"Validation {name}")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def _labels(y_true, y_pred, labels):
    """The given labels as a 1-D array, or by default the sorted labels of y_true and y_pred."""
    return np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels).ravel()


def confusion_matrix(y_true, y_pred, labels=None):
    """Counts of (true label, predicted label) pairs.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like of shape (n_labels,), optional
        The labels, in the order of the rows and columns. Default: the sorted labels that occur
        in ``y_true`` or ``y_pred``.

    Returns
    -------
    ndarray of shape (n_labels, n_labels), dtype int64
        ``counts[i, j]``: the number of samples with true label ``labels[i]`` predicted as
        ``labels[j]``. Rows sum to the number of samples of each true label.

    Raises
    ------
    ValueError
        If the lengths differ or a label is missing from ``labels``.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0])
    array([[1, 1, 0],
           [0, 1, 0],
           [1, 0, 1]])
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred have different lengths: {len(y_true)} and {len(y_pred)}")
    labels = _labels(y_true, y_pred, labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]

    def indices(values, name):
        position = np.minimum(np.searchsorted(sorted_labels, values), len(labels) - 1)
        unknown = sorted_labels[position] != values
        if unknown.any():
            raise ValueError(f"{name} holds labels not in labels: {np.unique(values[unknown])[:5].tolist()}")
        return order[position]

    counts = np.zeros((len(labels), len(labels)), np.int64)
    if len(labels):
        np.add.at(counts, (indices(y_true, "y_true"), indices(y_pred, "y_pred")), 1)
    return counts


def plot_confusion_matrix(y_true, y_pred, labels, path, class_names=None):
    """The confusion matrix as a PNG: true labels down, predicted labels across, counts in the cells.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like of shape (n_labels,) or None
        As in :func:`confusion_matrix`.
    path : str or os.PathLike
        The PNG file to write.
    class_names : sequence or mapping, optional
        ``class_names[label]`` is printed for a label (for example ``fastmlp.datasets.CLASS_NAMES``
        with labels 0..9). Default: the labels themselves.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> plot_confusion_matrix(y_test, model.predict(X_test), range(10), "confusion.png",
    ...                       class_names=datasets.CLASS_NAMES)   # doctest: +SKIP
    'confusion.png'
    """
    counts = confusion_matrix(y_true, y_pred, labels)
    names = [_label_name(label, class_names) for label in _labels(np.ravel(y_true), np.ravel(y_pred), labels)]
    size = max(4.0, 0.6 * len(names) + 2)
    figure = _figure(size + 1, size)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=45, ha="right")
    axes.set_yticks(ticks, names)
    axes.set(xlabel="predicted", ylabel="true",
             title=f"Confusion matrix (accuracy {np.trace(counts) / max(counts.sum(), 1):.3f})")
    threshold = counts.max() / 2
    for (i, j), count in np.ndenumerate(counts):
        axes.text(j, i, str(count), ha="center", va="center", fontsize=7,
                  color="white" if count > threshold else "black")
    figure.tight_layout()
    return _save(figure, path)


def plot_first_layer(weights, path, image_shape=(28, 28), n=16):
    """Each hidden neuron's incoming weights drawn as an image: what the neuron "looks for".

    As in 3Blue1Brown's videos: column j of the first weight matrix holds the weights from every
    pixel to hidden neuron j, so reshaped to the image's shape it shows which pixels push the
    neuron up (red) and which push it down (blue); each image is scaled to its own largest weight.

    Parameters
    ----------
    weights : array-like of shape (n_pixels, n_hidden)
        The first layer's weights, ``model.weights[0]`` (fastmlp's row-major layout: one row per
        input pixel, one column per hidden neuron).
    path : str or os.PathLike
        The PNG file to write.
    image_shape : tuple of int, default=(28, 28)
        The shape of one input image; its product must equal ``n_pixels``.
    n : int, default=16
        How many neurons to draw (the first ``n``, or all when there are fewer).

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> plot_first_layer(model.weights[0], "first_layer.png")   # doctest: +SKIP
    'first_layer.png'
    """
    weights = np.asarray(weights, dtype=np.float64)
    n = _check_count(n)
    image_shape = _check_image_shape(image_shape)
    if weights.ndim != 2 or weights.shape[0] != math.prod(image_shape):
        raise ValueError(f"weights must have shape (n_pixels, n_hidden) with n_pixels = "
                         f"{math.prod(image_shape)} for image_shape {tuple(image_shape)}, got {weights.shape}")
    n = min(n, weights.shape[1])
    images = [weights[:, j].reshape(image_shape) for j in range(n)]
    columns = math.ceil(math.sqrt(n))
    figure = _figure(1.6 * columns, 1.7 * math.ceil(n / columns) + 0.4)
    _image_grid(figure, images, [f"neuron {j}" for j in range(n)], "RdBu_r", symmetric=True)
    figure.suptitle("First-layer weights (red +, blue −)")
    figure.tight_layout()
    return _save(figure, path)


def plot_misclassified(X, y_true, y_pred, path, class_names=None, n=16, image_shape=(28, 28)):
    """The first ``n`` misclassified inputs as images, each titled "true → predicted".

    Parameters
    ----------
    X : array-like of shape (n_samples, n_pixels)
        The inputs, one flattened image per row (any scale: each image is scaled on its own).
    y_true, y_pred : array-like of shape (n_samples,)
    path : str or os.PathLike
        The PNG file to write.
    class_names : sequence or mapping, optional
        ``class_names[label]`` is printed for a label (for example ``fastmlp.datasets.CLASS_NAMES``
        with labels 0..9). Default: the labels themselves.
    n : int, default=16
        How many examples to draw, at most.
    image_shape : tuple of int, default=(28, 28)

    Returns
    -------
    str
        ``path``. When nothing is misclassified the picture says so.

    Examples
    --------
    >>> plot_misclassified(X_test, y_test, model.predict(X_test), "misclassified.png",
    ...                    class_names=datasets.CLASS_NAMES)   # doctest: +SKIP
    'misclassified.png'
    """
    X = np.asarray(X)
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    n = _check_count(n)
    image_shape = _check_image_shape(image_shape)
    if X.ndim != 2 or X.shape[1] != math.prod(image_shape):
        raise ValueError(f"X must have shape (n_samples, {math.prod(image_shape)}) for image_shape "
                         f"{tuple(image_shape)}, got {X.shape}")
    if not len(X) == len(y_true) == len(y_pred):
        raise ValueError(f"X, y_true and y_pred have different lengths: {len(X)}, {len(y_true)} "
                         f"and {len(y_pred)}")

    wrong = np.flatnonzero(y_true != y_pred)
    if len(wrong) == 0:
        figure = _figure(4, 2)
        figure.text(0.5, 0.5, f"no misclassified examples among {len(X)}", ha="center", va="center")
        return _save(figure, path)
    shown = wrong[:n]
    images = [X[i].reshape(image_shape).astype(np.float64) for i in shown]
    titles = [f"{_label_name(y_true[i], class_names)} → {_label_name(y_pred[i], class_names)}" for i in shown]
    columns = math.ceil(math.sqrt(len(shown)))
    figure = _figure(2.0 * columns, 2.1 * math.ceil(len(shown) / columns) + 0.4)
    _image_grid(figure, images, titles, "gray_r", symmetric=False)
    figure.suptitle(f"Misclassified: {len(wrong)} of {len(X)} (true → predicted)")
    figure.tight_layout()
    return _save(figure, path)
