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

The configurations, the contenders and the timing loop live in ``fastmlp.bench`` (``fastmlp bench``
runs them in one process); this script adds the child processes, the call overhead and the tables.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import fastmlp
from fastmlp.bench import (CONFIGS, PEERS, RESULT_HEADER, THREAD_VARIABLES, available_peers, load_data,
                           machine_info, result_rows, set_threads, table, time_config, usable_cores)
from fastmlp.model import BACKENDS, init_parameters


# ---------------------------------------------------------------------------------------------
# One child process: one thread count
# ---------------------------------------------------------------------------------------------

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


def progress(text):
    print(text, file=sys.stderr, flush=True)


def measure(args):
    """Train every configuration with every contender; the results as a JSON-able dict."""
    threads = args.threads[0]
    limiter = set_threads(threads, args.peers)   # noqa: F841 (the BLAS limit lasts while it lives)
    data = load_data(args.dtype)
    X_train, X_test, source = data[0], data[2], data[4]
    rows = [row for name in args.configs
            for row in time_config(CONFIGS[name], args.peers, data, args.dtype, args.warmup, args.epochs,
                                   progress, threads)]
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
    header = RESULT_HEADER
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
                "threads": sorted({1, usable_cores()})}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    unknown = set(args.configs) - set(CONFIGS) | set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown configs or peers: {', '.join(sorted(unknown))}")
    if args.epochs < 1 or args.warmup < 0 or args.overhead_calls < 1 or min(args.threads) < 1:
        parser.error("--epochs, --threads and --overhead-calls must be >= 1, --warmup >= 0")
    args.peers, args.notes = available_peers(args.peers, args.configs)
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
