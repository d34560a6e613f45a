"""Training speed, like with like: fastmlp against its NumPy twin, PyTorch, scikit-learn and JAX.

The four network configurations C1-C4 and the floating-point operations of their epochs, the
contenders (each trains one epoch at a time and reports the seconds it took), the interleaved
timing loop, the machine's GEMM peak and a description of the machine.
``fastmlp bench`` runs them in its own process; ``benchmarks/bench_end_to_end.py`` runs them in
one child process per thread count, and ``benchmarks/bench_kernels.py`` times the kernels on the
same configurations. PyTorch, scikit-learn, JAX and threadpoolctl are imported only when used.
"""
import contextlib
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
# The variables that override OpenBLAS's choice of kernel for the CPU it finds.
BLAS_KERNEL_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PEERS = ("numpy", "torch", "sklearn", "jax")
NOTES = {
    "sklearn": "scikit-learn has no quadratic classification loss: its C1/C2 networks have logistic "
               "hidden units and a softmax + log-loss output.",
    "momentum": "fastmlp (one fit call per epoch) and scikit-learn (warm_start, max_iter=1) restart "
                "the momentum velocity every epoch; PyTorch and JAX keep it. This affects C3's accuracy, "
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


def epoch_flops(config, n_samples):
    """Floating-point operations in the matrix products of one epoch of ``config`` on ``n_samples``.

    Per sample and dense layer of ``n_in`` inputs and ``n_out`` units, counting a multiply-add as two:

    - forward, z = a · W: 2 · n_in · n_out;
    - weight gradient, aᵀ · δ: 2 · n_in · n_out;
    - back-propagated error, δ · Wᵀ: 2 · n_in · n_out, for every layer but the first (no one needs
      the error of the input).

    Activations, losses, bias sums and updates are left out: they are O(n_out) per sample, not
    O(n_in · n_out). So the same count serves every contender, and divided by the seconds of an
    epoch it is the rate to compare with the machine's GEMM peak.

    Examples
    --------
    >>> epoch_flops(CONFIGS["C2"], 1)     # 784-30-10: 4·(784·30 + 30·10) + 2·(30·10)
    95880
    """
    products = [2 * n_in * n_out for n_in, n_out in config.layers]
    return n_samples * (2 * sum(products) + sum(products[1:]))


# The targets (issue 29): fastmlp's epoch rate as a share of NumPy's GEMM peak at the same
# thread count, at 1 and at 2 threads.
PEAK_SHARE_TARGETS = {"C1": {1: 0.75, 2: 0.70}, "C2": {1: 0.50, 2: 0.40},
                      "C3": {1: 0.90, 2: 0.85}, "C4": {1: 0.94, 2: 0.90}}


# ---------------------------------------------------------------------------------------------
# The machine and its threads
# ---------------------------------------------------------------------------------------------

def blas_info():
    """NumPy's BLAS, the kernel it runs and its thread count: from threadpoolctl when installed
    (``internal_api``, ``version``, ``architecture``: OpenBLAS's core name, ``num_threads``), else
    NumPy's build configuration; and the thread and kernel variables set in the environment."""
    info = {"numpy": np.__version__}
    info.update({name: os.environ[name] for name in THREAD_VARIABLES + BLAS_KERNEL_VARIABLES
                 if name in os.environ})
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
        info["blas_kernel"] = pool.get("architecture") or "unknown"
        info["blas_threads"] = pool["num_threads"]
        info["blas_threading_layer"] = pool.get("threading_layer", "unknown")
        return info
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):   # NumPy < 1.26 has no mode="dicts"
        info["blas"] = "unknown"
    info["blas_kernel"] = "unknown (install threadpoolctl)"
    info["blas_threads"] = "unknown (install threadpoolctl)"
    return info


def blas_kernel_overrides(environ=None):
    """The variables of BLAS_KERNEL_VARIABLES set in ``environ`` (default: ``os.environ``), by name."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in BLAS_KERNEL_VARIABLES if name in environ}


def blas_kernel_warning(environ=None):
    """A warning to print when ``environ`` overrides OpenBLAS's kernel choice, else None.

    OPENBLAS_CORETYPE picks the kernel instead of the CPU's own (a Haswell kernel on an AVX-512
    CPU runs at about half its speed) and OPENBLAS_L2_SIZE changes its blocking: NumPy's times, and
    the GEMM peak that the shares are measured against, then describe the setting, not the machine.
    """
    overrides = blas_kernel_overrides(environ)
    if not overrides:
        return None
    settings = ", ".join(f"{name}={value}" for name, value in overrides.items())
    return (f"{settings} overrides OpenBLAS's kernel choice: the NumPy contenders and the GEMM peak "
            f"are measured both with it and without ({', '.join(overrides)} unset, in a separate "
            f"process), and the shares use the higher peak")


def child_environment(threads, environ=None, unset=()):
    """The environment of a benchmark process on ``threads`` threads: ``environ`` (default:
    ``os.environ``) with every THREAD_VARIABLES set to ``threads``, without the variables named in
    ``unset``, and on one thread XLA's CPU client (JAX) without its own thread pools."""
    env = dict(os.environ if environ is None else environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    for name in unset:
        env.pop(name, None)
    if threads == 1:
        env["XLA_FLAGS"] = " ".join(filter(None, [
            env.get("XLA_FLAGS"), "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"]))
    return env


def pin_to_cores(count):
    """Run this process on the first ``count`` cores it may use: every thread it has now, and so
    the threads they start later (a thread inherits its creator's cores). Returns those cores.

    NumPy's BLAS starts its threads on import, before the benchmark can limit them, and PyTorch
    and XLA size their pools from the machine: pinned, no contender can use more cores than the
    thread count it is reported with. Does nothing when ``count`` covers every usable core.
    """
    allowed = sorted(os.sched_getaffinity(0))
    cores = set(allowed[:count])
    if len(cores) < len(allowed):
        _set_every_thread_affinity(cores)
    return sorted(cores)


@contextlib.contextmanager
def pinned_to_cores(count):
    """``pin_to_cores(count)`` for the ``with`` block (which gets the cores); then every thread of
    the process may use the cores it could before."""
    allowed = os.sched_getaffinity(0)
    try:
        yield pin_to_cores(count)
    finally:
        _set_every_thread_affinity(allowed)


def _set_every_thread_affinity(cores):
    """Let every thread of this process run on ``cores`` only."""
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), cores)
        except ProcessLookupError:      # a thread that ended meanwhile
            pass


def gemm_peak(dtype="float32", size=4096, repeats=3, budget_seconds=1.5):
    """NumPy's best matrix-product rate on this process's threads: the machine's GEMM peak.

    Times ``np.matmul(A, B, out=C)`` of two n x n matrices of ``dtype`` (2 n³ operations)
    ``repeats`` times and keeps the fastest. n is ``size``, or less (a multiple of 256, at least
    the 1024 of a first, warming product) when one product would take longer than
    ``budget_seconds``: the rate hardly grows beyond n = 2048.

    Returns
    -------
    dict
        ``dtype``, ``size`` (n), ``seconds`` (the fastest product) and ``flops`` (per second).
    """
    rng = np.random.default_rng(0)

    def fastest(n, times):
        A, B = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
        C = np.empty((n, n), dtype)
        best = float("inf")
        for _ in range(times):
            started = time.perf_counter()
            np.matmul(A, B, out=C)
            best = min(best, time.perf_counter() - started)
        return best

    probe = min(size, 1024)
    seconds = fastest(probe, 2)              # the first also wakes the BLAS threads
    n = int(probe * (budget_seconds / seconds) ** (1 / 3)) // 256 * 256
    n = max(probe, min(size, n))
    seconds = fastest(n, repeats)
    return {"dtype": str(np.dtype(dtype)), "size": n, "seconds": seconds, "flops": 2 * n ** 3 / seconds}


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
        "jax": package_version("jax"),
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
        if peer in ("torch", "sklearn", "jax") and importlib.util.find_spec(peer) is None:
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


class Jax:
    """JAX on the CPU, written for speed: one jitted call per epoch.

    The call draws the epoch's permutation from a PRNG key, cuts it into ``(n_batches, batch_size)``
    row numbers and runs the mini-batch steps as one ``jax.lax.scan``, each step gathering its rows
    from the data set in place; a last, smaller batch of the remainder gets one more step, as in
    fastmlp. The step is ``jax.grad`` of the same cost (quadratic on sigmoid outputs, or softmax and
    log-loss, averaged over the batch) followed by SGD, with classical momentum when the config
    has it (the velocity carries over between epochs, as in PyTorch). Parameters and velocity are
    donated, so XLA updates them in place. The epoch is compiled ahead of time in the constructor:
    no timed epoch includes compilation. Initial weights as `PlainNumPy`'s.
    """

    name = "jax"

    def __init__(self, config, X, y, dtype):
        import jax
        import jax.numpy as jnp

        if np.dtype(dtype) == np.float64:
            jax.config.update("jax_enable_x64", True)
        self.jax, self.config = jax, config
        rng = np.random.default_rng(0)
        self.params = [(jnp.asarray((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)),
                        jnp.zeros(n_out, dtype)) for n_in, n_out in config.layers]
        self.velocity = jax.tree.map(jnp.zeros_like, self.params) if config.momentum else ()
        self.X, self.Y = jnp.asarray(X), jnp.asarray(np.eye(10, dtype=dtype)[y])
        self.key, self.epoch = jax.random.key(0), 0
        self._epoch = jax.jit(self._make_epoch(len(X)), donate_argnums=(0, 1)).lower(
            self.params, self.velocity, self.key, 0, self.X, self.Y).compile()
        self._predict = jax.jit(self._forward)

    def _forward(self, params, X):
        """The output layer's z (softmax or sigmoid not applied)."""
        jax = self.jax
        hidden = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[self.config.activation]
        a = X
        for W, b in params[:-1]:
            a = hidden(a @ W + b)
        W, b = params[-1]
        return a @ W + b

    def _make_epoch(self, n_samples):
        jax, config = self.jax, self.config
        jnp = jax.numpy
        n_batches, remainder = divmod(n_samples, config.batch_size)

        def cost(params, X, Y):
            z = self._forward(params, X)
            if config.loss == "quadratic":     # C = 1/(2n) Σ‖y − σ(z)‖²
                return 0.5 * jnp.sum((jax.nn.sigmoid(z) - Y) ** 2) / len(X)
            return -jnp.sum(Y * jax.nn.log_softmax(z)) / len(X)

        def step(state, rows, X, Y):
            params, velocity = state
            gradients = jax.grad(cost)(params, X.at[rows].get(mode="promise_in_bounds"),
                                       Y.at[rows].get(mode="promise_in_bounds"))
            if config.momentum:
                velocity = jax.tree.map(lambda v, g: config.momentum * v - config.learning_rate * g,
                                        velocity, gradients)
                params = jax.tree.map(jnp.add, params, velocity)
            else:
                params = jax.tree.map(lambda p, g: p - config.learning_rate * g, params, gradients)
            return params, velocity

        def epoch(params, velocity, key, number, X, Y):
            order = jax.random.permutation(jax.random.fold_in(key, number), n_samples)
            batches = order[:n_batches * config.batch_size].reshape(n_batches, config.batch_size)
            state, _ = jax.lax.scan(lambda state, rows: (step(state, rows, X, Y), None),
                                    (params, velocity), batches)
            if remainder:
                state = step(state, order[n_batches * config.batch_size:], X, Y)
            return state

        return epoch

    def train_epoch(self):
        started = time.perf_counter()
        self.params, self.velocity = self._epoch(self.params, self.velocity, self.key, self.epoch,
                                                 self.X, self.Y)
        self.jax.block_until_ready(self.params)
        elapsed = time.perf_counter() - started
        self.epoch += 1
        return elapsed

    def accuracy(self, X, y):
        predicted = np.asarray(self._predict(self.params, self.jax.numpy.asarray(X)).argmax(axis=1))
        return float(np.mean(predicted == y))


def make_contenders(config, peers, X, y, dtype, fastmlp=True):
    """The contenders for ``config``: fastmlp (unless ``fastmlp`` is false), then ``peers``."""
    contenders = [FastMLP("fastmlp", "compiled", config, X, y, dtype)] if fastmlp else []
    if "numpy" in peers:
        contenders.append(FastMLP("numpy twin", "numpy", config, X, y, dtype))
        contenders.append(PlainNumPy(config, X, y, dtype))
    contenders += [peer(config, X, y, dtype) for peer in (Torch, SkLearn, Jax) if peer.name in peers]
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
# contender's threads (without the pause, fastmlp's C1 epochs at 2 threads run up to 2x slower).
PAUSE_SECONDS = 0.3


def time_config(config, peers, data, dtype, warmup, epochs, log=None, threads=None, fastmlp=True):
    """Train ``config`` with fastmlp (unless ``fastmlp`` is false) and each of ``peers``, taking
    turns epoch by epoch.

    The order of the contenders rotates every epoch, so that noise from the rest of the machine
    hits all of them alike, and each epoch starts after a pause of PAUSE_SECONDS. ``data`` is
    what `load_data` returns; ``log(text)``, when given, hears one line per contender and epoch.
    Returns one dict per contender: ``config``, ``threads``, ``contender``, ``seconds`` (each
    measured epoch's), ``team_share`` (each measured epoch's share of batches run as a team, for
    fastmlp on more than one thread; else empty), the test ``accuracy`` after all epochs and
    ``flops``, the `epoch_flops` of one epoch.
    """
    X_train, y_train, X_test, y_test = data[:4]
    contenders = make_contenders(config, peers, X_train, y_train, dtype, fastmlp)
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
             "accuracy": contender.accuracy(X_test, y_test), "flops": epoch_flops(config, len(X_train))}
            for contender in contenders]


RESULT_HEADER = ["config", "threads", "contender", "median s/epoch", "spread", "vs NumPy twin",
                 "vs plain NumPy", "test accuracy", "team batches"]
# The columns that `result_rows` adds when it is given the GEMM peaks.
PEAK_HEADER = ["GFLOP/s", "of GEMM peak"]


# The contenders whose products run on NumPy's BLAS.
BLAS_CONTENDERS = ("numpy twin", "numpy plain", "sklearn")


def contender_label(row):
    """The contender's name, and for one on NumPy's BLAS which kernel variables it ran with when a
    run measured both (``row["blas_env"]``: "as set" or "unset")."""
    blas_env = row.get("blas_env")
    if blas_env is None or row["contender"] not in BLAS_CONTENDERS:
        return row["contender"]
    return f"{row['contender']} (OPENBLAS_* {blas_env})"


def result_rows(rows, peaks=None):
    """Table rows: median s/epoch, spread, ratios to the NumPy twin and to plain NumPy (> 1: faster),
    accuracy, (fastmlp on more than one thread) the median share of batches run as a team, and,
    given ``peaks`` (FLOP/s by thread count), the rate of the median epoch (`epoch_flops`) and
    its share of the peak at the same thread count.

    A NumPy contender measured with the BLAS kernel variables unset is compared with the NumPy
    twin and plain NumPy of the same process."""
    def key(row, contender):
        return row["config"], row["threads"], row.get("blas_env") == "unset", contender

    medians = {key(row, row["contender"]): statistics.median(row["seconds"]) for row in rows}
    out = []
    for row in rows:
        median = medians[key(row, row["contender"])]
        ratios = []
        for baseline_name in ("numpy twin", "numpy plain"):
            baseline = medians.get(key(row, baseline_name))
            ratios.append(f"{baseline / median:.2f}" if baseline and median else "n/a")
        spread = (max(row["seconds"]) - min(row["seconds"])) / median if median else 0.0
        shares = row.get("team_share")
        cells = [row["config"], row["threads"], contender_label(row), f"{median:.3f}",
                 f"{spread:.0%}", *ratios, f"{row['accuracy']:.4f}",
                 f"{statistics.median(shares):.0%}" if shares else ""]
        if peaks is not None:
            rate = row["flops"] / median if median else 0.0
            peak = peaks.get(row["threads"])
            cells += [f"{rate / 1e9:.1f}", f"{rate / peak:.0%}" if peak else "n/a"]
        out.append(cells)
    return out


def target_lines(rows, peaks, targets=None):
    """The issue's targets, met or not: fastmlp the fastest contender (lowest median s/epoch) of
    every config and thread count, and its share of the GEMM peak (``peaks``: FLOP/s by thread
    count) against ``targets`` (default PEAK_SHARE_TARGETS; no target beyond 2 threads)."""
    targets = PEAK_SHARE_TARGETS if targets is None else targets
    runs = {}
    for row in rows:
        runs.setdefault((row["config"], row["threads"]), []).append(row)
    lines, slower = [], []
    for (config, threads), contenders in runs.items():
        medians = {contender_label(row): statistics.median(row["seconds"]) for row in contenders}
        fast = medians.pop("fastmlp", None)
        if fast is None:
            continue
        beaten = sorted((seconds, name) for name, seconds in medians.items() if seconds <= fast)
        slower += [f"{config} at {threads} thread(s): {name} {seconds:.3f} s vs fastmlp {fast:.3f} s"
                   for seconds, name in beaten]
        target = targets.get(config, {}).get(threads)
        peak = peaks.get(threads)
        if peak:
            share = next(row for row in contenders if row["contender"] == "fastmlp")["flops"] / fast / peak
            verdict = "no target" if target is None else (
                f"target {target:.0%}: " + ("met" if share >= target else "not met"))
            # One decimal: a share that rounds to its target but falls short must not read as met.
            lines.append(f"{config} at {threads} thread(s): fastmlp at {share:.1%} of the GEMM peak ({verdict})")
    verdict = "met" if not slower else "not met (" + "; ".join(slower) + ")"
    return [f"fastmlp the fastest contender on every config: {verdict}", *lines]


def table(header, rows, markdown=False):
    """``rows`` under ``header`` as aligned text, or as a Markdown table."""
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *rows])
