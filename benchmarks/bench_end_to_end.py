"""Training speed on Fashion-MNIST: fastmlp against its NumPy twin, PyTorch, scikit-learn and JAX,
and against the machine's GEMM peak.

    python benchmarks/bench_end_to_end.py                     # C1-C4, 1 warm-up + 5 epochs, 1 and all cores
    python benchmarks/bench_end_to_end.py --quick             # C1, C2, 1 warm-up + 2 epochs
    python benchmarks/bench_end_to_end.py --configs C3 --threads 1 --peers numpy,torch,jax --markdown

Every thread count runs in a fresh child process whose environment pins OpenBLAS, OpenMP, MKL and
fastmlp to that many threads before NumPy is imported (PyTorch also gets torch.set_num_threads, and
on one thread XLA's CPU client is told to use no thread pools); the child then runs on that many
cores only (sched_setaffinity), so no contender uses more. Each child measures NumPy's matrix-product
peak (sgemm, and dgemm for float64) before and after the epochs, best of both. Inside a child the
contenders of a configuration take turns epoch by epoch, in a rotating order, so that noise from the
rest of the machine hits all of them alike. Reported: the median seconds per measured epoch, its
ratio to the NumPy twin's (> 1: faster than NumPy), the test accuracy after all epochs, and the
epoch's FLOP rate (``fastmlp.bench.epoch_flops``) as a share of the peak; then the issue's targets,
met or not. fastmlp runs ``fastmlp.fit`` one epoch per call, continuing from the previous weights,
and its time is ``history["seconds"]`` (the epoch loop, without the set-up of a call).

When OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set, the script warns, and a second child per thread
count measures the peak and the NumPy contenders with both unset: the rows say which is which.

The configurations, the contenders and the timing loop live in ``fastmlp.bench`` (``fastmlp bench``
runs them in one process); this script adds the child processes, the peak, the call overhead and
the tables.
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
from fastmlp.bench import (BLAS_KERNEL_VARIABLES, CONFIGS, PEAK_HEADER, PEERS, RESULT_HEADER, THREAD_VARIABLES,
                           available_peers, blas_kernel_warning, child_environment,
                           gemm_peak, load_data, machine_info, pin_to_cores, result_rows, set_threads, table,
                           target_lines, time_config, usable_cores)
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


# The peak is the fastest of PEAK_REPEATS products, measured before and again after the epochs.
PEAK_REPEATS = 3


def peak_dtypes(dtype):
    """The GEMM peaks to measure: sgemm's always, dgemm's too for float64 runs."""
    return ["float32"] + (["float64"] if dtype == "float64" else [])


def measure(args):
    """Train every configuration with every contender; the results as a JSON-able dict."""
    threads = args.threads[0]
    usable = usable_cores()
    cores = pin_to_cores(threads)
    limiter = set_threads(threads, args.peers)   # noqa: F841 (the BLAS limit lasts while it lives)
    unset = args.blas_env == "unset"
    peaks = {dtype: gemm_peak(dtype, args.peak_size, PEAK_REPEATS) for dtype in peak_dtypes(args.dtype)}
    data = load_data(args.dtype)
    X_train, X_test, source = data[0], data[2], data[4]
    # With the kernel variables unset only NumPy's contenders (and the peak) are measured again.
    peers = [peer for peer in args.peers if peer == "numpy" or not unset]
    rows = [row for name in args.configs if peers or not unset
            for row in time_config(CONFIGS[name], peers, data, args.dtype, args.warmup, args.epochs,
                                   progress, threads, fastmlp=not unset)]
    for dtype, before in peaks.items():
        after = gemm_peak(dtype, args.peak_size, PEAK_REPEATS)
        peaks[dtype] = max(before, after, key=lambda peak: peak["flops"])
    for row in rows:
        row["blas_env"] = args.blas_env
    machine = dict(machine_info(), usable_cores=usable, pinned_cores=cores)
    return {"threads": threads, "blas_env": args.blas_env, "machine": machine, "peaks": peaks,
            "data": f"{source} ({len(X_train)} train, {len(X_test)} test)", "rows": rows,
            "call_overhead_us": {} if unset else call_overhead(args.overhead_calls)}


# ---------------------------------------------------------------------------------------------
# The parent: one child per thread count (two when OpenBLAS's kernel is overridden), then the tables
# ---------------------------------------------------------------------------------------------

def run_child(argv, threads, blas_env=None):
    """Re-run this script for one thread count, the thread variables set before NumPy loads;
    ``blas_env`` "unset": without BLAS_KERNEL_VARIABLES, "as set": with them (labels the rows)."""
    env = child_environment(threads, unset=BLAS_KERNEL_VARIABLES if blas_env == "unset" else ())
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "result.json")
        # A later --threads overrides one in argv.
        command = [sys.executable, os.path.abspath(__file__), *argv, "--threads", str(threads),
                   "--child-output", output] + (["--blas-env", blas_env] if blas_env else [])
        completed = subprocess.run(command, env=env)
        if completed.returncode != 0:
            sys.exit(f"the run with {threads} thread(s) failed (exit code {completed.returncode})")
        with open(output) as f:
            return json.load(f)


def best_peaks(results, dtype):
    """FLOP/s by thread count: the higher peak of a thread count's children (with the BLAS kernel
    variables as set and unset), as the machine's."""
    peaks = {}
    for result in results:
        flops = result["peaks"][dtype]["flops"]
        peaks[result["threads"]] = max(peaks.get(result["threads"], 0.0), flops)
    return peaks


def report(results, args):
    first = results[0]
    per_child = set(THREAD_VARIABLES) | set(BLAS_KERNEL_VARIABLES) | {
        "blas_kernel", "blas_threads", "fastmlp_threads", "pinned_cores"}
    print("Machine:")
    for key, value in first["machine"].items():
        if key not in per_child:
            print(f"  {key}: {value}")
    if args.blas_warning:
        print(f"Warning: {args.blas_warning}")
    blas_lines = []
    for result in results:
        machine, label = result["machine"], f"{result['threads']} thread(s)"
        if result["blas_env"]:
            label = f"{label}, OPENBLAS_* {result['blas_env']}"
        peaks = "; ".join(f"{'s' if dtype == 'float32' else 'd'}gemm peak {peak['flops'] / 1e9:.1f} GFLOP/s "
                          f"({peak['size']}², best of 2 x {PEAK_REPEATS})" for dtype, peak in result["peaks"].items())
        blas_lines.append(f"{label}: cores {machine['pinned_cores']}; BLAS "
                          f"{machine['blas']}, kernel {machine['blas_kernel']}, {machine['blas_threads']} "
                          f"thread(s); fastmlp {machine['fastmlp_threads']}; {peaks}")
    for line in blas_lines:
        print(f"  {line}")
    print(f"Data: {first['data']}; dtype {args.dtype}; {args.warmup} warm-up + {args.epochs} "
          f"measured epochs, interleaved")
    for note in args.notes:
        print(f"Note: {note}")
    all_rows = [row for result in results for row in result["rows"]]
    peaks = best_peaks(results, args.dtype)
    header = RESULT_HEADER + PEAK_HEADER
    rows = result_rows(all_rows, peaks)
    gemm = "sgemm" if args.dtype == "float32" else "dgemm"
    caption = (f"GFLOP/s: epoch_flops / median s/epoch; of GEMM peak: that rate / NumPy's {gemm} peak at "
               f"the same thread count ({', '.join(f'{t}: {p / 1e9:.1f} GFLOP/s' for t, p in peaks.items())})")
    targets = target_lines(all_rows, peaks)
    overhead_header = ["threads", "backend", "µs per train_batch call (4-2-2, batch 1)"]
    overhead = [[result["threads"], backend, f"{us:.2f}"] for result in results
                for backend, us in result["call_overhead_us"].items()]
    print()
    print(caption)
    print(table(header, rows))
    print()
    print("Targets (issue 29):")
    for line in targets:
        print(f"  {line}")
    print()
    print(table(overhead_header, overhead))
    if args.markdown:
        print()
        for line in blas_lines:
            print(f"- {line}")
        print(f"- {caption}")
        print()
        print(table(header, rows, markdown=True))
        print()
        for line in targets:
            print(f"- {line}")
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
    parser.add_argument("--peak-size", type=int, default=4096, help="n of the n x n matrix product "
                        "that measures the GEMM peak, at most (default 4096; smaller when one product "
                        "would take over 1.5 s)")
    parser.add_argument("--child-output", help=argparse.SUPPRESS)   # set by run_child
    parser.add_argument("--blas-env", choices=("as set", "unset"), help=argparse.SUPPRESS)   # run_child
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
    if (args.epochs < 1 or args.warmup < 0 or args.overhead_calls < 1 or min(args.threads) < 1
            or args.peak_size < 1):
        parser.error("--epochs, --threads, --overhead-calls and --peak-size must be >= 1, --warmup >= 0")
    args.peers, args.notes = available_peers(args.peers, args.configs)
    args.blas_warning = blas_kernel_warning()
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child_output:
        with open(args.child_output, "w") as f:
            json.dump(measure(args), f)
        return
    if args.blas_warning:
        print(f"Warning: {args.blas_warning}", file=sys.stderr, flush=True)
    results = []
    for threads in args.threads:
        if args.blas_warning:
            results += [run_child(argv, threads, "as set"), run_child(argv, threads, "unset")]
        else:
            results.append(run_child(argv, threads))
    report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
