"""Command line: ``fastmlp train``, ``evaluate``, ``predict``, ``export``, ``bench``, ``check-grad``
and ``info``.

User mistakes end in one line on stderr, ``fastmlp: error: ...``, and exit status 2, never a
traceback; Ctrl-C ends with exit status 130.
"""
import argparse
import csv
import importlib.util
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

import fastmlp
from fastmlp import datasets
from fastmlp._config import check_num_threads
from fastmlp._split import split_rows
from fastmlp._validation import check_targets
from fastmlp.io import read_npz as read_npz_arrays

DATASETS = ("fashion-mnist", "fashion-mnist-small", "mnist", "mnist-nielsen")
# A data file without a test split: this fraction is held out, the same rows every time (so that
# `evaluate` scores the rows `train` never saw), stratified by class for classification.
TEST_FRACTION = 0.1
SPLIT_SEED = 0


class UserError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


class Formatter(argparse.HelpFormatter):
    """Help that shows a default when there is one (not for None or a flag's False)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is not None and action.default is not False and action.default != argparse.SUPPRESS \
                and "default" not in text:
            default = action.default
            text += f" (default: {','.join(map(str, default)) if isinstance(default, tuple) else default})"
        return text


class Parser(argparse.ArgumentParser):
    """argparse, with its errors (bad option values, unknown commands) as one line, status 2."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


# ---------------------------------------------------------------------------------------------
# Data: named data sets, .npz and CSV files
# ---------------------------------------------------------------------------------------------

@dataclass
class Data:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str                  # what to print: the data set, or the file and how it was split
    validation: tuple = None     # (X_val, y_val) when the data set has its own validation split
    class_names: list = None     # text for each label in pictures (Fashion-MNIST's class names)


def load_dataset(name, task=None, download=False):
    """A named data set (pixels scaled to [0, 1]) or a ``.npz``/CSV file, split into train and test.

    ``task`` ("regression" or not) decides whether a file's held-out test rows are stratified.
    """
    if name in DATASETS:
        return _named_dataset(name, download)
    if not name.lower().endswith((".npz", ".csv")):
        raise UserError(f"unknown dataset {name!r}: use {', '.join(DATASETS)}, or a .npz or .csv file")
    if not os.path.isfile(name):
        raise UserError(f"no such file: {name}")
    if name.lower().endswith(".npz"):
        arrays = read_npz(name, required=("X", "y"))
        X, y = arrays["X"], arrays["y"]
        if ("X_test" in arrays) != ("y_test" in arrays):
            raise UserError(f"{name} must hold both X_test and y_test, or neither")
    else:
        table = read_csv(name)
        if table.shape[1] < 2:
            raise UserError(f"{name} has one column; it needs features and, last, the label or target")
        X, y, arrays = table[:, :-1], _labels(table[:, -1], task), {}
    X = _features(X, f"{name}: X")
    if np.ndim(y) not in (1, 2):
        raise UserError(f"{name}: y must be 1-D (labels or targets) or 2-D (targets), got shape {np.shape(y)}")
    if len(X) != len(y):
        raise UserError(f"{name}: X has {len(X)} rows but y has {len(y)}")
    if "X_test" in arrays:
        _features(arrays["X_test"], f"{name}: X_test")
        return Data(X, y, arrays["X_test"], arrays["y_test"], f"{name} ({len(X)} training and "
                    f"{len(arrays['X_test'])} test samples)")
    stratify = task != "regression" and np.ndim(y) == 1 and np.asarray(y).dtype.kind != "f"
    X_train, y_train, X_test, y_test = hold_out(X, y, stratify, name)
    return Data(X_train, y_train, X_test, y_test, f"{name} ({len(X_train)} training samples, "
                f"{len(X_test)} held out for testing)")


def _named_dataset(name, download):
    class_names = list(datasets.CLASS_NAMES) if name.startswith("fashion") else None
    validation = None
    if name == "fashion-mnist":
        X_train, y_train, X_test, y_test, source = datasets.load_fashion_mnist_or_small()
    elif name == "fashion-mnist-small":
        X_train, y_train, X_test, y_test = datasets.load_small_fashion_mnist()
        source = name
    elif name == "mnist":
        X_train, y_train = _mnist(datasets.load_mnist, download, kind="train")
        X_test, y_test = _mnist(datasets.load_mnist, download, kind="test")
        source = name
    else:   # Nielsen's split: train on 50,000, validate on 10,000, test on the official 10,000
        (X_train, y_train), validation, (X_test, y_test) = _mnist(datasets.load_mnist_nielsen, download)
        source = "mnist (Nielsen's 50,000/10,000/10,000 split)"
    scale = np.float32(1 / 255)
    if validation is not None:
        validation = (validation[0] * scale, validation[1])
    return Data(X_train * scale, y_train, X_test * scale, y_test,
                f"{source}, {len(X_train)} training and {len(X_test)} test images", validation, class_names)


def _mnist(loader, download, **kind):
    try:
        return loader(download=download, **kind)
    except FileNotFoundError as error:
        hint = "" if download else "; add --download to fetch it"
        raise UserError(f"{error}{hint}") from None


def read_npz(path, required):
    """The arrays of a ``.npz`` file (never unpickled), with the ``required`` names present."""
    with open(path, "rb") as file:
        if file.read(4) != b"PK\x03\x04":   # else np.load would try it as a .npy or a pickle
            raise UserError(f"{path} is not a .npz archive")
    arrays = read_npz_arrays(path, "npz file of arrays", compressed=True)   # damage: a ValueError
    missing = [key for key in required if key not in arrays]
    if missing:
        raise UserError(f"{path} has no array {missing[0]!r} (it holds: {', '.join(arrays) or 'nothing'})")
    return arrays


def read_csv(path):
    """A CSV file of numbers as a float64 array of shape (n_rows, n_columns).

    A first row that is not all numbers is a header and skipped; anything else that is not a
    number, and rows of different lengths, are errors naming the line.
    """
    with open(path, newline="") as file:
        try:
            lines = list(enumerate(csv.reader(file), start=1))
        except (csv.Error, UnicodeDecodeError) as error:
            raise UserError(f"{path} is not a readable CSV file: {error}") from None
    lines = [(number, row) for number, row in lines if any(cell.strip() for cell in row)]
    if lines and not all(_is_number(cell) for cell in lines[0][1]):
        lines = lines[1:]
    if not lines:
        raise UserError(f"{path} has no rows of numbers")
    width = len(lines[0][1])
    table = np.empty((len(lines), width))
    for i, (number, row) in enumerate(lines):
        if len(row) != width:
            raise UserError(f"{path}, line {number}: {len(row)} values, but {width} on line {lines[0][0]}")
        try:
            table[i] = [float(cell) for cell in row]
        except ValueError:
            bad = next(cell for cell in row if not _is_number(cell))
            raise UserError(f"{path}, line {number}: {bad.strip()!r} is not a number") from None
    return table


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _labels(column, task):
    """A CSV's last column: whole numbers become integer labels unless the task is regression."""
    if task != "regression" and np.all(np.isfinite(column)) and np.all(column == np.round(column)):
        return column.astype(np.int64)
    return column


def hold_out(X, y, stratify, name):
    """(X_train, y_train, X_test, y_test): ``TEST_FRACTION`` of the rows held out, seeded.

    Stratified: that fraction of every class (rounded up), but never a class's last row.
    """
    labels = np.asarray(y)
    keep, held = split_rows(len(labels), TEST_FRACTION, np.random.default_rng(SPLIT_SEED),
                            labels if stratify else None, keep_one=True)
    if len(held) == 0:
        raise UserError(f"{name}: {len(labels)} rows are too few to hold out a test set")
    return X[keep], labels[keep], X[held], labels[held]


def _features(X, name):
    """X, if it is a 2-D array of numbers (rows of features); else a UserError naming it."""
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise UserError(f"{name} must be a 2-D array of numbers (one row per sample), got {X.dtype} of "
                        f"shape {X.shape}")
    return X


def read_features(path):
    """The inputs to predict: array ``X`` of a ``.npz`` file, or every column of a CSV file."""
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    if path.lower().endswith(".npz"):
        return _features(read_npz(path, required=("X",))["X"], f"{path}: X")
    if path.lower().endswith(".csv"):
        return read_csv(path)
    raise UserError(f"{path}: expected a .npz file (array X) or a .csv file of features")


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def load_model(path):
    if not os.path.isfile(path):
        raise UserError(f"no such model file: {path}")
    return fastmlp.load(path)


def have_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def train(args):
    if args.plot is not None:
        if os.path.exists(args.plot) and not os.path.isdir(args.plot):
            raise UserError(f"--plot needs a folder, and {args.plot} is a file")
        if not have_matplotlib():
            raise UserError("--plot needs matplotlib: pip install fastmlp[plot]")
    if args.threads is not None:
        fastmlp.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.task, args.download)
    _, Y, _ = check_targets(data.y_train, len(data.y_train), args.task, np.float32, loss=args.loss)
    fit_options = {"validation_data": (data.X_test, data.y_test)}   # per-epoch test scores
    validation = "the test set, for information"
    if args.validation_fraction is not None or (args.early_stopping and data.validation is None):
        fraction = TEST_FRACTION if args.validation_fraction is None else args.validation_fraction
        fit_options = {"validation_fraction": fraction}
        validation = f"{fraction:g} of the training data"
    elif data.validation is not None:
        fit_options = {"validation_data": data.validation}
        validation = f"the {len(data.validation[0])} validation images"
    layers = (np.shape(data.X_train)[1],) + args.hidden + (Y.shape[1],)
    print(f"fastmlp {fastmlp.__version__}: {'-'.join(map(str, layers))} {args.activation} network, "
          f"{args.loss} cost, {args.optimizer}, batch {args.batch_size}, learning rate {args.learning_rate}, "
          f"{args.dtype}, {fastmlp.get_num_threads()} thread(s), kernels {fastmlp.kernel_isa()}")
    print(f"data: {data.source}; validation: {validation}")
    started = time.perf_counter()
    model = fastmlp.fit(
        data.X_train, data.y_train, hidden=args.hidden, activation=args.activation, loss=args.loss,
        optimizer=args.optimizer, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, momentum=args.momentum, l2=args.l2, dropout=args.dropout,
        task=args.task, seed=args.seed, dtype=args.dtype, backend=args.backend,
        early_stopping=args.early_stopping, verbose=1, **fit_options)
    total = time.perf_counter() - started
    if "interrupted" in model.history:
        print(f"fastmlp: interrupted in epoch {model.history['interrupted']}; nothing written", file=sys.stderr)
        return 130
    seconds = model.history["seconds"]
    score = "R²" if model.task == "regression" else "accuracy"
    stopped = (f"; stopped early in epoch {model.history['stopped_early']}, weights of epoch "
               f"{model.history.get('best_epoch', model.history['stopped_early'])}"
               if "stopped_early" in model.history else "")
    print(f"test {score} {model.score(data.X_test, data.y_test):.4f}; training time {sum(seconds):.2f} s "
          f"(median {np.median(seconds):.3f} s per epoch, {total:.2f} s with evaluation){stopped}")
    if args.output:
        fastmlp.save(model, args.output)
        print(f"model written to {args.output}")
    if args.plot is not None:
        os.makedirs(args.plot, exist_ok=True)
        written = write_plots(model, data, args.plot)
        print(f"pictures written to {args.plot}: {', '.join(written)}")


def write_plots(model, data, directory):
    """The PNGs of ``train --plot``; returns their file names."""
    from fastmlp import plots

    def path(name):
        return os.path.join(directory, name)

    written = [plots.plot_history(model, path("history.png"))]
    images = model.layer_sizes[0] == 28 * 28
    if images:
        written.append(plots.plot_first_layer(model.weights[0], path("first_layer.png")))
    if model.task == "classification":
        predicted = model.predict(data.X_test)
        written.append(plots.plot_confusion_matrix(data.y_test, predicted, model.classes_,
                                                   path("confusion_matrix.png"), class_names=data.class_names))
        if images:
            written.append(plots.plot_misclassified(data.X_test, data.y_test, predicted, path("misclassified.png"),
                                                    class_names=data.class_names))
    return [os.path.basename(name) for name in written]


def evaluate(args):
    model = load_model(args.model)
    data = load_dataset(args.dataset, model.task, args.download)
    score = "R²" if model.task == "regression" else "accuracy"
    print(f"data: {data.source}")
    print(f"test {score} {model.score(data.X_test, data.y_test):.4f}; "
          f"mean cost {model.cost(data.X_test, data.y_test):.6g} on {len(data.X_test)} test samples")


def predict(args):
    model = load_model(args.model)
    X = read_features(args.input)
    if args.proba:
        if model.task == "regression":
            raise UserError(f"--proba needs a classification model; {args.model} is a regression model")
        values = model.predict_proba(X)
        header = ",".join(str(label) for label in model.classes_)
    else:
        values, header = model.predict(X), None
    digits = 7 if model.dtype == np.float32 else 15
    cell = (lambda v: f"{v:.{digits}g}") if values.dtype.kind == "f" else str
    lines = [",".join(map(cell, row)) if values.ndim == 2 else cell(row) for row in values]
    text = "\n".join(([header] if header else []) + lines) + "\n"
    if args.output:
        with open(args.output, "w") as file:
            file.write(text)
        print(f"{len(lines)} predictions written to {args.output}")
    else:
        sys.stdout.write(text)


def export(args):
    fastmlp.to_onnx(load_model(args.model), args.output)
    print(f"ONNX model written to {args.output}")


def bench(args):
    from fastmlp import bench as timing

    configs, peers = _choose(args.config, timing.CONFIGS, "--config"), _choose(args.peers, timing.PEERS, "--peers")
    for option, value, minimum in (("--epochs", args.epochs, 1), ("--warmup", args.warmup, 0),
                                   ("--samples", args.samples, 1), ("--threads", args.threads, 1)):
        if value is not None and value < minimum:
            raise UserError(f"{option} must be >= {minimum}, got {value}")
    if args.threads is not None:
        check_num_threads(args.threads)
    peers, notes = timing.available_peers(peers, configs)
    threads = args.threads or fastmlp.get_num_threads()
    limiter = timing.set_threads(threads, peers)
    if limiter is None:
        notes.append("threadpoolctl is not installed: NumPy's BLAS keeps its own thread count "
                     "(set OPENBLAS_NUM_THREADS to pin it)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = timing.load_data(args.dtype, args.samples)
    notes += [str(warning.message) for warning in caught]
    machine = timing.machine_info()
    # On no more cores than threads: a peer that sizes its pool from the machine (XLA, PyTorch)
    # cannot use more than it is reported with.
    with timing.pinned_to_cores(threads) as cores:
        print(f"fastmlp {machine['fastmlp']} on {machine['cpu']} ({machine['usable_cores']} usable cores), "
              f"kernels {machine['gemm_isa']}; NumPy {machine['numpy']} with {machine['blas']}; "
              f"{threads} thread(s) on core(s) {','.join(map(str, cores))}")
        print(f"data: {data[4]}, {len(data[0])} training and {len(data[2])} test images, {args.dtype}; "
              f"{args.warmup} warm-up + {args.epochs} measured epochs, contenders interleaved")
        for note in notes:
            print(f"note: {note}")
        rows = [row for name in configs
                for row in timing.time_config(timing.CONFIGS[name], peers, data, args.dtype, args.warmup,
                                              args.epochs, _progress, threads)]
    print()
    print(timing.table(timing.RESULT_HEADER, timing.result_rows(rows)))


def _progress(text):
    print(text, file=sys.stderr, flush=True)


def _choose(text, allowed, option):
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        raise UserError(f"{option} takes a comma-separated list from {','.join(allowed)}, got {text!r}")
    return chosen


# A gradient check computes the cost twice per parameter: a few thousand rows are plenty.
MAX_CHECK_VALUES = 10**7


def check_grad(args):
    for option, value, minimum in (("--samples", args.samples, 1), ("--features", args.features, 1),
                                   ("--classes", args.classes, 2), ("--seed", args.seed, 0)):
        if value < minimum:
            raise UserError(f"--{option.lstrip('-')} must be >= {minimum}, got {value}")
    if args.samples * max(args.features, args.classes) > MAX_CHECK_VALUES or args.features > MAX_CHECK_VALUES:
        raise UserError(f"--samples {args.samples} and --features {args.features} are more data than a gradient "
                        f"check needs (at most {MAX_CHECK_VALUES} values)")
    sizes = (args.features,) + args.hidden + (args.classes,)
    n_parameters = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    if n_parameters > MAX_CHECK_VALUES // 100:
        raise UserError(f"a {'-'.join(map(str, sizes))} network has {n_parameters} parameters, too many to check "
                        f"one by one (at most {MAX_CHECK_VALUES // 100})")
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.samples, args.features))
    y = rng.integers(0, args.classes, args.samples)
    result = fastmlp.check_gradients(X, y, hidden=args.hidden, activation=args.activation,
                                     loss=args.loss, seed=args.seed)
    for l, (w, b) in enumerate(zip(result["weights"], result["biases"])):
        print(f"layer {l + 1}: relative error weights {w:.2e}, biases {b:.2e}")
    ok = result["max"] < 1e-7
    print("gradient check " + ("passed" if ok else "FAILED") + f" (largest error {result['max']:.2e})")
    return 0 if ok else 1


def info(args):
    fastmlp.show_config()
    print(f"Fashion-MNIST installed: {datasets.fashion_mnist_available()}")


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------

def _sizes(text):
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 16,16, got {text!r}")


DATASET_HELP = (f"{', '.join(DATASETS)} (named data sets are scaled to [0, 1]; fashion-mnist is the "
                "installed copy, else the small one shipped), or a .npz file (arrays X, y, optionally "
                "X_test, y_test) or a CSV file (numbers, the label or target last, an optional header "
                f"row); a file without a test split has {TEST_FRACTION * 100:g}%% of its rows held out "
                "(always the same ones) for testing")


def parser():
    main = Parser(prog="fastmlp", formatter_class=Formatter,
                  description="Train multilayer perceptrons on the CPU, use them, export them, and time them.",
                  epilog="Run 'fastmlp COMMAND --help' for the options of a command.")
    main.add_argument("--version", action="version", version=f"fastmlp {fastmlp.__version__}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_command(name, **kwargs):
        return commands.add_parser(name, formatter_class=Formatter, **kwargs)

    def network_arguments(command, hidden):
        command.add_argument("--hidden", type=_sizes, default=hidden, metavar="SIZES",
                             help="comma-separated hidden layer sizes")
        command.add_argument("--activation", default="sigmoid", help="sigmoid, tanh, relu or identity")
        command.add_argument("--loss", default="quadratic", help="quadratic, cross_entropy, log_loss or poisson")
        command.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffles")

    def dataset_arguments(command):
        command.add_argument("--dataset", default="fashion-mnist", metavar="NAME_OR_FILE", help=DATASET_HELP)
        command.add_argument("--download", action="store_true",
                             help="download MNIST into the cache when it is not found")

    run = add_command(
        "train", help="train a network and report its test accuracy",
        description="Train a network on a data set and report the test accuracy (R² for regression) and "
                    "the time; the defaults train the 784-16-16-10 seed network on Fashion-MNIST.")
    dataset_arguments(run)
    network_arguments(run, (16, 16))
    run.add_argument("--optimizer", default="sgd", help="sgd, nesterov, adam or lbfgs")
    run.add_argument("--momentum", type=float, default=0.0, help="momentum of sgd and nesterov")
    run.add_argument("--epochs", type=int, default=10, help="epochs (lbfgs: iterations)")
    run.add_argument("--batch-size", type=int, default=100, help="samples per mini-batch")
    run.add_argument("--learning-rate", type=float, default=3.0, help="step size η")
    run.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights")
    run.add_argument("--dropout", type=float, default=0.0, help="fraction of hidden units dropped in training")
    run.add_argument("--task", choices=["classification", "regression"],
                     help="default: regression for float targets, else classification")
    run.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                     help="precision of the weights and the arithmetic")
    run.add_argument("--backend", default="compiled", choices=["compiled", "numpy"],
                     help="the compiled kernels or their NumPy twin")
    run.add_argument("--threads", type=int, metavar="N", help="number of threads (default: all cores)")
    run.add_argument("--early-stopping", action="store_true",
                     help="stop when the validation loss stops improving and keep the best epoch's weights")
    run.add_argument("--validation-fraction", type=float, metavar="FRACTION",
                     help="validate on this fraction of the training data (default with --early-stopping: "
                          f"{TEST_FRACTION}, or the data set's validation split; else the test set is "
                          "scored after every epoch, for information only)")
    run.add_argument("--output", metavar="FILE", help="save the trained model to this .npz file")
    run.add_argument("--plot", metavar="DIR", help="write PNGs here: history, confusion matrix, and for "
                     "28x28 images the first layer's weights and misclassified examples (needs matplotlib)")
    run.set_defaults(handler=train)

    def model_command(name, summary, does):
        command = add_command(name, help=summary, description=f"Load a model saved by 'fastmlp train --output' "
                                                           f"and print {does}.")
        command.add_argument("model", metavar="MODEL", help="the model file (.npz)")
        return command

    score = model_command("evaluate", "score a saved model on a data set's test split",
                          "its test accuracy (R² for regression) and mean cost on the test split of a data set")
    dataset_arguments(score)
    score.set_defaults(handler=evaluate)

    guess = model_command("predict", "predict with a saved model",
                          "one prediction per row of INPUT (with --proba: the class probabilities, after a "
                          "line naming the classes)")
    guess.add_argument("input", metavar="INPUT", help="a .npz file with an array X, or a CSV file of features "
                       "(an optional header row)")
    guess.add_argument("--output", metavar="FILE", help="write the predictions to this CSV file instead")
    guess.add_argument("--proba", action="store_true", help="class probabilities, one column per class")
    guess.set_defaults(handler=predict)

    convert = add_command("export", help="write a saved model as an ONNX graph",
                          description="Load a model saved by 'fastmlp train --output' and write it as an ONNX "
                                      "graph that computes the same predictions (needs onnx: "
                                      "pip install \"fastmlp[onnx]\").")
    convert.add_argument("model", metavar="MODEL", help="the model file (.npz)")
    convert.add_argument("output", metavar="OUTPUT", help="the ONNX file to write (.onnx)")
    convert.set_defaults(handler=export)

    timing = add_command(
        "bench", help="time fastmlp against NumPy, PyTorch and scikit-learn",
        description="Train the same networks on Fashion-MNIST with fastmlp, its NumPy twin, and PyTorch and "
                    "scikit-learn when they are installed, epoch by epoch in turn, and print the median "
                    "seconds per epoch, the ratio to the NumPy twin (> 1: faster) and the test accuracy. "
                    "Configurations: C1 784-16-16-10 sigmoid; C2 784-30-10 sigmoid, batch 10; "
                    "C3 784-256-128-10 ReLU, momentum; C4 784-1024-1024-10 ReLU. For one process per "
                    "thread count, run benchmarks/bench_end_to_end.py from the source tree.")
    timing.add_argument("--config", default="C1", metavar="C1,...", help="comma-separated, from C1,C2,C3,C4")
    timing.add_argument("--epochs", type=int, default=3, help="measured epochs")
    timing.add_argument("--warmup", type=int, default=1, help="unmeasured epochs first")
    timing.add_argument("--threads", type=int, metavar="N", help="threads for every contender (default: fastmlp's)")
    timing.add_argument("--peers", default="numpy,torch,sklearn", metavar="PEERS",
                        help="besides fastmlp, from numpy (the twin and plain NumPy),torch,sklearn,jax "
                             "(missing ones are skipped)")
    timing.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="for every contender")
    timing.add_argument("--samples", type=int, metavar="N", help="train on the first N images only: a quick check, "
                        "not a comparable time (default: all)")
    timing.set_defaults(handler=bench)

    grad = add_command("check-grad", help="gradient check against finite differences",
                       description="Compare backprop's gradients with finite differences on random data; "
                                   "exit status 1 if they disagree.")
    network_arguments(grad, (5,))
    grad.add_argument("--samples", type=int, default=10, help="rows of random data")
    grad.add_argument("--features", type=int, default=4, help="inputs")
    grad.add_argument("--classes", type=int, default=3, help="classes of the random labels")
    grad.set_defaults(handler=check_grad)

    about = add_command("info", help="version, build flags, kernel levels, threads",
                        description="Print the version, build flags, kernel levels and threads.")
    about.set_defaults(handler=info)
    return main


def main(argv=None):
    try:
        args = parser().parse_args(argv)
        return args.handler(args) or 0
    except (UserError, ValueError, TypeError, OSError, FloatingPointError, ImportError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"fastmlp: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
