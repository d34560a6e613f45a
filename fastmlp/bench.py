"""Training speed, like with like: fastmlp against its NumPy twin, PyTorch and scikit-learn.

The four network configurations C1-C4, the contenders (each trains one epoch at a time and
reports the seconds it took), the interleaved timing loop and a description of the machine.
``fastmlp bench`` runs them in its own process; ``benchmarks/bench_end_to_end.py`` runs them in
one child process per thread count, and ``benchmarks/bench_kernels.py`` times the kernels on the
same configurations. PyTorch, scikit-learn and threadpoolctl are imported only when used.
"""
import importlib.util
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np

# The variables that pin the thread pools of OpenBLAS, OpenMP (PyTorch), MKL and fastmlp.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FASTMLP_NUM_THREADS")
PEERS = ("numpy", "torch", "sklearn")
NOTES = {
    "sklearn": "scikit-learn has no quadratic classification loss: its C1/C2 networks have logistic "
               "hidden units and a softmax + log-loss output.",
    "momentum": "fastmlp (one fit call per epoch) and scikit-learn (warm_start, max_iter=1) restart "
                "the momentum velocity every epoch; PyTorch keeps it. This affects C3's accuracy, "
                "not its speed.",
}


@dataclass(frozen=True)
class Config:
    """A network and its training settings, for 28 x 28 images in 10 classes."""

    name: str
    hidden: tuple
    activation: str      # of the hidden layers
    loss: str            # "quadratic" (sigmoid outputs) or "log_loss" (softmax outputs)
    learning_rate: float
    batch_size: int
    momentum: float = 0.0

    @property
    def layer_sizes(self):
        return (784, *self.hidden, 10)

    @property
    def layers(self):
        """(n_in, n_out) of every dense layer."""
        return list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))

    @property
    def layer_activations(self):
        """As ``fastmlp.fit`` chooses them: softmax outputs for log-loss, else the hidden activation."""
        output = "softmax" if self.loss == "log_loss" else self.activation
        return [self.activation] * len(self.hidden) + [output]


CONFIGS = {config.name: config for config in (
    Config("C1", (16, 16), "sigmoid", "quadratic", learning_rate=3.0, batch_size=100),
    Config("C2", (30,), "sigmoid", "quadratic", learning_rate=3.0, batch_size=10),
    Config("C3", (256, 128), "relu", "log_loss", learning_rate=0.05, batch_size=128, momentum=0.9),
    Config("C4", (1024, 1024), "relu", "log_loss", learning_rate=0.05, batch_size=256),
)}


# ---------------------------------------------------------------------------------------------
# The machine and its threads
# ---------------------------------------------------------------------------------------------

def blas_info():
    """NumPy's BLAS and its thread count: from threadpoolctl when installed, else NumPy's build
    configuration and the thread variables of the environment."""
    info = {"numpy": np.__version__}
    info.update({name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ})
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pools = []
    else:
        pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        # Other packages (SciPy, PyTorch) may load a BLAS of their own: prefer NumPy's.
        pools.sort(key=lambda pool: "numpy" not in pool["filepath"])
    if pools:
        pool = pools[0]
        info["blas"] = f"{pool['internal_api']} {pool['version']}"
        info["blas_threads"] = pool["num_threads"]
        info["blas_threading_layer"] = pool.get("threading_layer", "unknown")
        return info
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):   # NumPy < 1.26 has no mode="dicts"
        info["blas"] = "unknown"
    info["blas_threads"] = "unknown (install threadpoolctl)"
    return info


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def machine_info():
    """CPU, cores, Python, NumPy and its BLAS, the peers' versions and fastmlp's GEMM."""
    import fastmlp
    from fastmlp import _kernels

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "python": platform.python_version(),
        **blas_info(),
        "torch": package_version("torch"),
        "scikit-learn": package_version("scikit-learn"),
        "fastmlp": fastmlp.__version__,
        "fastmlp_threads": fastmlp.get_num_threads(),
        "gemm_isa": _kernels.gemm_isa(),
    }


def set_threads(threads, peers):
    """Run fastmlp (and PyTorch, when it is a peer) on ``threads`` threads in this process.

    NumPy's BLAS pool can only be resized through threadpoolctl: returns its limiter (keep it
    alive while timing), or None when threadpoolctl is not installed.
    """
    import fastmlp

    fastmlp.set_num_threads(threads)
    if "torch" in peers:
        import torch
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def available_peers(peers, config_names):
    """(the installed ones of ``peers``, notes to print: skipped peers, loss and momentum differences)."""
    kept, notes = [], []
    for peer in peers:
        if peer in ("torch", "sklearn") and importlib.util.find_spec(peer) is None:
            notes.append(f"{peer} is not installed: skipped")
        else:
            kept.append(peer)
    if "sklearn" in kept and {"C1", "C2"} & set(config_names):
        notes.append(NOTES["sklearn"])
    if "C3" in config_names:
        notes.append(NOTES["momentum"])
    return kept, notes


# ---------------------------------------------------------------------------------------------
# Contenders: train_epoch() returns the seconds one epoch took, accuracy() scores the test set
# ---------------------------------------------------------------------------------------------

class FastMLP:
    """``fastmlp.fit`` with the compiled kernels or (``backend="numpy"``) the NumPy twin."""

    def __init__(self, name, backend, config, X, y, dtype):
        self.name, self.backend, self.config = name, backend, config
        self.X, self.y, self.dtype = X, y, dtype
        self.model, self.epochs_done = None, 0
        # The share of the last epoch's batches that ran as a team of threads (the compiled
        # backend on more than one thread adapts it to the machine's load), else None.
        self.team_share = None

    def train_epoch(self):
        import fastmlp
        from fastmlp import _kernels

        config, model = self.config, self.model
        team_runs = _kernels.team_stats()["runs"]
        start = {} if model is None else {"weights": model.weights, "biases": model.biases}
        # The seed draws the initial weights (first call) and the epoch's shuffle, the same for
        # both backends, so their accuracies should agree.
        self.model = fastmlp.fit(
            self.X, self.y, hidden=config.hidden, activation=config.activation, loss=config.loss,
            epochs=1, batch_size=config.batch_size, learning_rate=config.learning_rate,
            momentum=config.momentum, seed=self.epochs_done, dtype=self.dtype,
            backend=self.backend, **start)
        self.epochs_done += 1
        if self.backend == "compiled" and fastmlp.get_num_threads() > 1:
            batches = -(-len(self.X) // config.batch_size)
            self.team_share = (_kernels.team_stats()["runs"] - team_runs) / batches
        return self.model.history["seconds"][0]

    def accuracy(self, X, y):
        return self.model.score(X, y)


class PlainNumPy:
    """The textbook loop in plain vectorised NumPy, nothing else: shuffle by ``X[perm]``, then per
    mini-batch the forward pass, δᴸ, backpropagation and an SGD (momentum) step, all in place.

    The leanest NumPy peer (no options, no checks), so that fastmlp's lead is not measured against
    the overheads of its own, more general NumPy twin. It draws its own initial weights and
    shuffles (not fastmlp's): only its speed is compared, and its accuracy shows that it learns.
    """

    name = "numpy plain"

    def __init__(self, config, X, y, dtype):
        self.config, self.X, self.dtype = config, X, np.dtype(dtype)
        self.Y = np.eye(10, dtype=dtype)[y]
        rng = np.random.default_rng(0)
        self.rng = rng
        self.weights = [(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
                        for n_in, n_out in config.layers]
        self.biases = [np.zeros(n_out, dtype) for _, n_out in config.layers]
        self.velocities = [np.zeros_like(p) for p in self.weights + self.biases]

    def _activate(self, z, name):
        if name == "sigmoid":
            return 1 / (1 + np.exp(-z))
        if name == "relu":
            return np.maximum(z, 0)
        z = np.exp(z - z.max(axis=1, keepdims=True))        # softmax
        return z / z.sum(axis=1, keepdims=True)

    def _derivative(self, a, name):
        return a * (1 - a) if name == "sigmoid" else (a > 0).astype(a.dtype)

    def train_epoch(self):
        config, names = self.config, self.config.layer_activations
        parameters = self.weights + self.biases
        with np.errstate(over="ignore"):    # exp(-z) of a large negative z is inf: σ is then 0
            started = time.perf_counter()
            order = self.rng.permutation(len(self.X))
            X, Y = self.X[order], self.Y[order]
            for start in range(0, len(X), config.batch_size):
                activations = [X[start:start + config.batch_size]]
                for W, b, name in zip(self.weights, self.biases, names):
                    activations.append(self._activate(activations[-1] @ W + b, name))
                delta = activations[-1] - Y[start:start + config.batch_size]
                if config.loss == "quadratic":
                    delta *= self._derivative(activations[-1], names[-1])
                rate = self.dtype.type(config.learning_rate / len(delta))
                gradients = [None] * len(parameters)
                for l in range(len(self.weights) - 1, -1, -1):
                    gradients[l] = activations[l].T @ delta
                    gradients[len(self.weights) + l] = delta.sum(axis=0)
                    if l > 0:
                        delta = (delta @ self.weights[l].T) * self._derivative(activations[l], names[l - 1])
                for p, g, v in zip(parameters, gradients, self.velocities):
                    if config.momentum:
                        v *= config.momentum
                        v -= rate * g
                        p += v
                    else:
                        p -= rate * g
            return time.perf_counter() - started

    def accuracy(self, X, y):
        a = X
        with np.errstate(over="ignore"):    # as in train_epoch
            for W, b, name in zip(self.weights, self.biases, self.config.layer_activations):
                a = self._activate(a @ W + b, name)
        return float(np.mean(a.argmax(axis=1) == y))


class Torch:
    """A plain PyTorch loop: nn.Sequential, torch.optim.SGD, a permutation per epoch."""

    name = "torch"

    def __init__(self, config, X, y, dtype):
        import torch

        self.torch, self.config = torch, config
        torch.manual_seed(0)
        activation = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[config.activation]
        layers = []
        for n_in, n_out in config.layers:
            layers += [torch.nn.Linear(n_in, n_out), activation()]
        if config.loss == "log_loss":
            layers.pop()                       # CrossEntropyLoss applies the softmax itself
        self.model = torch.nn.Sequential(*layers).to(getattr(torch, dtype))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.learning_rate,
                                         momentum=config.momentum)
        self.X = torch.from_numpy(X)
        labels = torch.from_numpy(y.astype(np.int64))
        if config.loss == "quadratic":
            # C = 1/(2n) Σ‖y − a‖², as fastmlp's quadratic cost over a batch of n.
            self.targets = torch.nn.functional.one_hot(labels, 10).to(self.X.dtype)
            self.loss = lambda output, target: 0.5 * torch.nn.functional.mse_loss(
                output, target, reduction="sum") / len(output)
        else:
            self.targets, self.loss = labels, torch.nn.CrossEntropyLoss()
        self.generator = torch.Generator().manual_seed(0)

    def train_epoch(self):
        started = time.perf_counter()
        n_samples, batch_size = len(self.X), self.config.batch_size
        order = self.torch.randperm(n_samples, generator=self.generator)
        for start in range(0, n_samples, batch_size):
            batch = order[start:start + batch_size]
            self.optimizer.zero_grad()
            self.loss(self.model(self.X[batch]), self.targets[batch]).backward()
            self.optimizer.step()
        return time.perf_counter() - started

    def accuracy(self, X, y):
        with self.torch.no_grad():
            predicted = self.model(self.torch.from_numpy(X)).argmax(dim=1).numpy()
        return float(np.mean(predicted == y))


class SkLearn:
    """scikit-learn's MLPClassifier, one epoch per ``fit`` (warm_start, max_iter=1)."""

    name = "sklearn"

    def __init__(self, config, X, y, dtype):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        self.X, self.y, self.ConvergenceWarning = X, y, ConvergenceWarning
        self.model = MLPClassifier(
            hidden_layer_sizes=config.hidden,
            activation={"sigmoid": "logistic", "relu": "relu"}[config.activation],
            solver="sgd", alpha=0.0, batch_size=config.batch_size, learning_rate="constant",
            learning_rate_init=config.learning_rate, momentum=config.momentum,
            nesterovs_momentum=False, max_iter=1, warm_start=True, shuffle=True, random_state=0)

    def train_epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)   # max_iter=1, on purpose
            started = time.perf_counter()
            self.model.fit(self.X, self.y)
            return time.perf_counter() - started

    def accuracy(self, X, y):
        return float(self.model.score(X, y))


def make_contenders(config, peers, X, y, dtype):
    contenders = [FastMLP("fastmlp", "compiled", config, X, y, dtype)]
    if "numpy" in peers:
        contenders.append(FastMLP("numpy twin", "numpy", config, X, y, dtype))
        contenders.append(PlainNumPy(config, X, y, dtype))
    contenders += [peer(config, X, y, dtype) for peer in (Torch, SkLearn) if peer.name in peers]
    return contenders


# ---------------------------------------------------------------------------------------------
# Data, the timing loop and the table
# ---------------------------------------------------------------------------------------------

def load_data(dtype, samples=None):
    """Fashion-MNIST as X / 255 in ``dtype``: ``(X_train, y_train, X_test, y_test, source)``.

    The small shipped subset, with a warning, when the full set is not installed. ``samples``
    keeps only the first that many training images (a quick check: the times are then not
    comparable with full-data runs).
    """
    from fastmlp import datasets

    X_train, y_train, X_test, y_test, source = datasets.load_fashion_mnist_or_small()
    if source != "fashion-mnist":
        warnings.warn("Fashion-MNIST is not installed: using the small shipped subset "
                      f"({len(X_train)} training images); the times are not comparable with "
                      "full-data runs", stacklevel=2)
    if samples is not None:
        X_train, y_train = X_train[:samples], y_train[:samples]
    scaled = []
    for X in (X_train, X_test):
        X = X.astype(dtype)
        X /= 255
        scaled.append(X)
    return scaled[0], y_train, scaled[1], y_test, source


# Idle time before each epoch: a contender's worker threads keep spinning for a while after its
# last call (OpenBLAS's for about 0.1 s), and would otherwise compete for the cores with the next
# contender's threads; at 2 threads this slowed fastmlp's C1 epochs by up to 2x.
PAUSE_SECONDS = 0.3


def time_config(config, peers, data, dtype, warmup, epochs, log=None, threads=None):
    """Train ``config`` with fastmlp and each of ``peers``, taking turns epoch by epoch.

    The order of the contenders rotates every epoch, so that noise from the rest of the machine
    hits all of them alike, and each epoch starts after a pause of PAUSE_SECONDS. ``data`` is
    what `load_data` returns; ``log(text)``, when given, hears one line per contender and epoch.
    Returns one dict per contender: ``config``, ``threads``, ``contender``, ``seconds`` (each
    measured epoch's), ``team_share`` (each measured epoch's share of batches run as a team, for
    fastmlp on more than one thread; else empty) and the test ``accuracy`` after all epochs.
    """
    X_train, y_train, X_test, y_test = data[:4]
    contenders = make_contenders(config, peers, X_train, y_train, dtype)
    seconds = {contender.name: [] for contender in contenders}
    team_shares = {contender.name: [] for contender in contenders}
    for epoch in range(warmup + epochs):
        shift = epoch % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            time.sleep(PAUSE_SECONDS)
            elapsed = contender.train_epoch()
            share = getattr(contender, "team_share", None)
            if epoch >= warmup:
                seconds[contender.name].append(elapsed)
                if share is not None:
                    team_shares[contender.name].append(share)
            if log is not None:
                log(f"[threads {threads}] {config.name} epoch {epoch + 1}/{warmup + epochs} "
                    f"{contender.name}: {elapsed:.3f} s")
    return [{"config": config.name, "threads": threads, "contender": contender.name,
             "seconds": seconds[contender.name], "team_share": team_shares[contender.name],
             "accuracy": contender.accuracy(X_test, y_test)}
            for contender in contenders]


RESULT_HEADER = ["config", "threads", "contender", "median s/epoch", "spread", "vs NumPy twin",
                 "vs plain NumPy", "test accuracy", "team batches"]


def result_rows(rows):
    """Table rows: median s/epoch, spread, ratios to the NumPy twin and to plain NumPy (> 1: faster),
    accuracy, and (fastmlp on more than one thread) the median share of batches run as a team."""
    medians = {(row["config"], row["threads"], row["contender"]): statistics.median(row["seconds"])
               for row in rows}
    out = []
    for row in rows:
        median = medians[row["config"], row["threads"], row["contender"]]
        ratios = []
        for baseline_name in ("numpy twin", "numpy plain"):
            baseline = medians.get((row["config"], row["threads"], baseline_name))
            ratios.append(f"{baseline / median:.2f}" if baseline and median else "n/a")
        spread = (max(row["seconds"]) - min(row["seconds"])) / median if median else 0.0
        shares = row.get("team_share")
        out.append([row["config"], row["threads"], row["contender"], f"{median:.3f}",
                    f"{spread:.0%}", *ratios, f"{row['accuracy']:.4f}",
                    f"{statistics.median(shares):.0%}" if shares else ""])
    return out


def table(header, rows, markdown=False):
    """``rows`` under ``header`` as aligned text, or as a Markdown table."""
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *rows])
