"""Training speed on Fashion-MNIST: fastmlp against its NumPy twin, PyTorch and scikit-learn.

    python benchmarks/bench_end_to_end.py                     # C1-C4, 1 warm-up + 5 epochs, 1 and all cores
    python benchmarks/bench_end_to_end.py --quick             # C1, C2, 1 warm-up + 2 epochs
    python benchmarks/bench_end_to_end.py --configs C3 --threads 1 --peers numpy,torch --markdown

Every thread count runs in a fresh child process whose environment pins OpenBLAS, OpenMP, MKL and
fastmlp to that many threads before NumPy is imported (PyTorch also gets torch.set_num_threads).
Inside a child the contenders of a configuration take turns epoch by epoch, in a rotating order,
so that noise from the rest of the machine hits all of them alike. Reported: the median seconds
per measured epoch, its ratio to the NumPy twin's (> 1: faster than NumPy), and the test accuracy
after all epochs. fastmlp runs ``fastmlp.fit`` one epoch per call, continuing from the previous
weights, and its time is ``history["seconds"]`` (the epoch loop, without the set-up of a call).
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

import fastmlp
from fastmlp import datasets
from fastmlp.model import BACKENDS, init_parameters

from _common import CONFIGS, THREAD_VARIABLES, machine_info

PEERS = ("numpy", "torch", "sklearn")
NOTES = {
    "sklearn": "scikit-learn has no quadratic classification loss: its C1/C2 networks have logistic "
               "hidden units and a softmax + log-loss output.",
    "momentum": "fastmlp (one fit call per epoch) and scikit-learn (warm_start, max_iter=1) restart "
                "the momentum velocity every epoch; PyTorch keeps it. This affects C3's accuracy, "
                "not its speed.",
}


# ---------------------------------------------------------------------------------------------
# Contenders: train_epoch() returns the seconds one epoch took, accuracy() scores the test set
# ---------------------------------------------------------------------------------------------

class FastMLP:
    """``fastmlp.fit`` with the compiled kernels or (``backend="numpy"``) the NumPy twin."""

    def __init__(self, name, backend, config, X, y, dtype):
        self.name, self.backend, self.config = name, backend, config
        self.X, self.y, self.dtype = X, y, dtype
        self.model, self.epochs_done = None, 0

    def train_epoch(self):
        config, model = self.config, self.model
        start = {} if model is None else {"weights": model.weights, "biases": model.biases}
        # The seed draws the initial weights (first call) and the epoch's shuffle, the same for
        # both backends, so their accuracies should agree.
        self.model = fastmlp.fit(
            self.X, self.y, hidden=config.hidden, activation=config.activation, loss=config.loss,
            epochs=1, batch_size=config.batch_size, learning_rate=config.learning_rate,
            momentum=config.momentum, seed=self.epochs_done, dtype=self.dtype,
            backend=self.backend, **start)
        self.epochs_done += 1
        return self.model.history["seconds"][0]

    def accuracy(self, X, y):
        return self.model.score(X, y)


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
    contenders += [peer(config, X, y, dtype) for peer in (Torch, SkLearn) if peer.name in peers]
    return contenders


# ---------------------------------------------------------------------------------------------
# One child process: one thread count
# ---------------------------------------------------------------------------------------------

def load_data(dtype):
    """Fashion-MNIST as X / 255 in ``dtype``; the small shipped subset, with a warning, if absent."""
    X_train, y_train, X_test, y_test, source = datasets.load_fashion_mnist_or_small()
    if source != "fashion-mnist":
        warnings.warn("Fashion-MNIST is not installed: using the small shipped subset "
                      f"({len(X_train)} training images); the times are not comparable with "
                      "full-data runs", stacklevel=2)
    scaled = []
    for X in (X_train, X_test):
        X = X.astype(dtype)
        X /= 255
        scaled.append(X)
    return scaled[0], y_train, scaled[1], y_test, source


def call_overhead(calls, repeats=5):
    """µs per ``Network.train_batch`` call on a 4-2-2 network with batches of 1, per backend."""
    rng = np.random.default_rng(0)
    X, Y = rng.random((1, 4)).astype(np.float32), np.array([[1, 0]], np.float32)
    result = {}
    for backend, Network in BACKENDS.items():
        weights, biases = init_parameters((4, 2, 2), ["sigmoid"] * 2, rng)
        network = Network(weights, biases, ["sigmoid"] * 2, "quadratic", 1,
                          nthreads=fastmlp.get_num_threads())
        network.bind(X, Y, np.zeros(1, np.int64))
        train_batch, times = network.train_batch, []
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(calls):
                train_batch(0, 1, 0.1)
            times.append((time.perf_counter() - started) / calls * 1e6)
        result[backend] = statistics.median(times)
    return result


def measure(args):
    """Train every configuration with every contender; the results as a JSON-able dict."""
    threads = args.threads[0]
    fastmlp.set_num_threads(threads)
    if "torch" in args.peers:
        import torch
        torch.set_num_threads(threads)
    X_train, y_train, X_test, y_test, source = load_data(args.dtype)
    rows = []
    for name in args.configs:
        config = CONFIGS[name]
        contenders = make_contenders(config, args.peers, X_train, y_train, args.dtype)
        seconds = {contender.name: [] for contender in contenders}
        for epoch in range(args.warmup + args.epochs):
            shift = epoch % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                elapsed = contender.train_epoch()
                if epoch >= args.warmup:
                    seconds[contender.name].append(elapsed)
                print(f"[threads {threads}] {name} epoch {epoch + 1}/{args.warmup + args.epochs} "
                      f"{contender.name}: {elapsed:.3f} s", file=sys.stderr, flush=True)
        rows += [{"config": name, "threads": threads, "contender": contender.name,
                  "seconds": seconds[contender.name], "accuracy": contender.accuracy(X_test, y_test)}
                 for contender in contenders]
    return {"machine": machine_info(), "data": f"{source} ({len(X_train)} train, {len(X_test)} test)",
            "rows": rows, "call_overhead_us": call_overhead(args.overhead_calls)}


# ---------------------------------------------------------------------------------------------
# The parent: one child per thread count, then the tables
# ---------------------------------------------------------------------------------------------

def run_child(argv, threads):
    """Re-run this script for one thread count, the thread variables set before NumPy loads."""
    env = dict(os.environ, **{name: str(threads) for name in THREAD_VARIABLES})
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "result.json")
        # A later --threads overrides one in argv.
        command = [sys.executable, os.path.abspath(__file__), *argv, "--threads", str(threads),
                   "--child-output", output]
        completed = subprocess.run(command, env=env)
        if completed.returncode != 0:
            sys.exit(f"the run with {threads} thread(s) failed (exit code {completed.returncode})")
        with open(output) as f:
            return json.load(f)


def table(header, rows, markdown=False):
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *rows])


def result_rows(rows):
    """Table rows: median s/epoch, spread, ratio to the NumPy twin (> 1: faster), accuracy."""
    medians = {(row["config"], row["threads"], row["contender"]): statistics.median(row["seconds"])
               for row in rows}
    out = []
    for row in rows:
        median = medians[row["config"], row["threads"], row["contender"]]
        baseline = medians.get((row["config"], row["threads"], "numpy twin"))
        spread = (max(row["seconds"]) - min(row["seconds"])) / median
        out.append([row["config"], row["threads"], row["contender"], f"{median:.3f}",
                    f"{spread:.0%}", f"{baseline / median:.2f}" if baseline else "n/a",
                    f"{row['accuracy']:.4f}"])
    return out


def report(results, args):
    first = results[0]
    print("Machine:")
    for key, value in first["machine"].items():
        if key not in THREAD_VARIABLES and key not in ("blas_threads", "fastmlp_threads"):
            print(f"  {key}: {value}")
    for threads, result in zip(args.threads, results):
        machine = result["machine"]
        print(f"  run with {threads} thread(s): BLAS uses {machine['blas_threads']}, "
              f"fastmlp {machine['fastmlp_threads']}")
    print(f"Data: {first['data']}; dtype {args.dtype}; {args.warmup} warm-up + {args.epochs} "
          f"measured epochs, interleaved")
    for note in args.notes:
        print(f"Note: {note}")
    header = ["config", "threads", "contender", "median s/epoch", "spread", "vs NumPy twin",
              "test accuracy"]
    rows = result_rows([row for result in results for row in result["rows"]])
    overhead_header = ["threads", "backend", "µs per train_batch call (4-2-2, batch 1)"]
    overhead = [[threads, backend, f"{us:.2f}"] for threads, result in zip(args.threads, results)
                for backend, us in result["call_overhead_us"].items()]
    print()
    print(table(header, rows))
    print()
    print(table(overhead_header, overhead))
    if args.markdown:
        print()
        print(table(header, rows, markdown=True))
        print()
        print(table(overhead_header, overhead, markdown=True))


def comma_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=comma_list, help="from C1,C2,C3,C4 (default: all; "
                        "--quick: C1,C2)")
    parser.add_argument("--epochs", type=int, help="measured epochs (default 5; --quick: 2)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured epochs first (default 1)")
    parser.add_argument("--threads", type=lambda text: [int(n) for n in comma_list(text)],
                        help="thread counts, each run in its own process (default: 1 and all cores)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--peers", type=comma_list, default=list(PEERS),
                        help=f"besides fastmlp, from {','.join(PEERS)} (default: all installed)")
    parser.add_argument("--quick", action="store_true", help="C1 and C2, 2 measured epochs")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    parser.add_argument("--json", help="also write the raw results (every epoch's time) here")
    parser.add_argument("--overhead-calls", type=int, help="train_batch calls per overhead repeat "
                        "(default 20000; --quick: 2000)")
    parser.add_argument("--child-output", help=argparse.SUPPRESS)   # set by run_child
    args = parser.parse_args(argv)
    defaults = {"configs": ["C1", "C2"] if args.quick else list(CONFIGS),
                "epochs": 2 if args.quick else 5,
                "overhead_calls": 2000 if args.quick else 20000,
                "threads": sorted({1, len(os.sched_getaffinity(0))})}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    unknown = set(args.configs) - set(CONFIGS) | set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown configs or peers: {', '.join(sorted(unknown))}")
    if args.epochs < 1 or args.warmup < 0 or args.overhead_calls < 1 or min(args.threads) < 1:
        parser.error("--epochs, --threads and --overhead-calls must be >= 1, --warmup >= 0")
    args.notes = []
    for peer, module in (("torch", "torch"), ("sklearn", "sklearn")):
        if peer in args.peers and importlib.util.find_spec(module) is None:
            args.peers.remove(peer)
            args.notes.append(f"{peer} is not installed: skipped")
    if "sklearn" in args.peers and {"C1", "C2"} & set(args.configs):
        args.notes.append(NOTES["sklearn"])
    if "C3" in args.configs:
        args.notes.append(NOTES["momentum"])
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child_output:
        with open(args.child_output, "w") as f:
            json.dump(measure(args), f)
        return
    results = [run_child(argv, threads) for threads in args.threads]
    report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
