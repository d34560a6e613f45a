"""Peak memory of a one-epoch fit for C1-C4 (float32), against the data and one batch's buffers.

Run from the repository root with the package installed:

    python benchmarks/bench_memory.py            # prints the table and writes benchmarks/MEMORY.md

The parent process loads Fashion-MNIST once and stores it as ``.npy`` files; each
configuration then runs in a fresh subprocess (``--config C1 --data DIR``), which reads them with
``np.load`` (one allocation, no decompression buffers to raise the peak) and measures twice:

- ``maxrss delta``: how far the process's peak resident set size rises during ``fastmlp.fit``,
  above where it stood with the data loaded; tracemalloc is off for this one. It is read as
  ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` would do on its own, but a
  child inherits its parent's value across fork and exec, so it starts at the parent's peak.
- ``traced peak``: tracemalloc's peak over a second, identical fit: every allocation made through
  Python's and NumPy's allocators (NumPy reports its array buffers to tracemalloc), not the C
  kernels' stack or the team pool's thread stacks.

They are set against the data (X in float32, passed in; the one-hot targets Y and the shuffled
row order, which fit makes and keeps for the whole fit) and ``batch buffers``: what ``_kernels.Network`` allocates once for
mini-batches of ``batch_size`` rows: weights, activations, deltas and gradients (velocities for
momentum), plus the GEMM workspace. ``fit`` also holds one copy of the parameters (the last
finite epoch, for divergence and Ctrl-C) and draws the initial weights in float64.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

from _common import CONFIGS, machine_info

MIB = 2**20
HERE = Path(__file__).resolve().parent


def save_data(directory):
    """Fashion-MNIST scaled to [0, 1] in float32, as X.npy and y.npy; returns its name and size."""
    from fastmlp import datasets

    X, y, _, _, source = datasets.load_fashion_mnist_or_small()
    np.save(directory / "X.npy", X * np.float32(1 / 255))
    np.save(directory / "y.npy", y)
    return source, len(X)


def batch_buffers(config, dtype=np.float32, nthreads=1):
    """Bytes of the buffers Network allocates for one mini-batch size (see fastmlp/_kernels.pyx)."""
    from fastmlp import _kernels

    itemsize, batch = np.dtype(dtype).itemsize, config.batch_size
    widths = config.layer_sizes
    parameters = sum(n_in * n_out + n_out for n_in, n_out in config.layers)
    activations = batch * sum(widths)
    deltas = batch * sum(widths[1:])
    velocities = parameters if config.momentum else 0
    workspace = max(max(_kernels.workspace_size(dtype, m, n, k, nthreads)
                        for m, n, k in ((batch, n_out, n_in), (n_in, n_out, batch), (batch, n_in, n_out)))
                    for n_in, n_out in config.layers)
    return {"weights": parameters * itemsize, "gradients": parameters * itemsize,
            "activations": activations * itemsize, "deltas": deltas * itemsize,
            "velocities": velocities * itemsize, "workspace": workspace * itemsize}


def peak_rss():
    """The process's peak resident set size in bytes (VmHWM), Linux only."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024   # kB
    raise OSError("no VmHWM in /proc/self/status")


def measure(name, directory):
    """Run in a fresh process: load the data, then fit one epoch twice (maxrss, then tracemalloc)."""
    import fastmlp

    config = CONFIGS[name]
    X, y = np.load(directory / "X.npy"), np.load(directory / "y.npy")
    options = dict(hidden=config.hidden, activation=config.activation, loss=config.loss, epochs=1,
                   batch_size=config.batch_size, learning_rate=config.learning_rate,
                   momentum=config.momentum, seed=0, dtype="float32")
    rss_before = peak_rss()
    fastmlp.fit(X, y, **options)
    rss_delta = peak_rss() - rss_before
    tracemalloc.start()
    fastmlp.fit(X, y, **options)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    n_samples, n_outputs = len(X), config.layer_sizes[-1]
    return {"config": name, "data": X.nbytes,
            "targets_and_order": n_samples * n_outputs * 4 + n_samples * 8,   # one-hot Y, int64 order
            "batch_buffers": batch_buffers(config, nthreads=fastmlp.get_num_threads()),
            "traced_peak": traced_peak, "maxrss_delta": rss_delta}


def run_all(directory):
    results = []
    for name in CONFIGS:
        output = subprocess.run([sys.executable, __file__, "--config", name, "--data", str(directory)],
                                check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output))
        print(f"{name}: done", file=sys.stderr)
    return results


def table(results):
    lines = ["| config | layers | batch | X (MiB) | Y + order (MiB) | batch buffers (MiB) "
             "| traced peak (MiB) | (peak − Y − order) / buffers | maxrss delta (MiB) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for result in results:
        config = CONFIGS[result["config"]]
        buffers = sum(result["batch_buffers"].values())
        lines.append(
            f"| {config.name} | {'-'.join(map(str, config.layer_sizes))} | {config.batch_size} "
            f"| {result['data'] / MIB:.1f} | {result['targets_and_order'] / MIB:.2f} | {buffers / MIB:.2f} "
            f"| {result['traced_peak'] / MIB:.2f} "
            f"| {(result['traced_peak'] - result['targets_and_order']) / buffers:.1f} "
            f"| {result['maxrss_delta'] / MIB:.1f} |")
    return "\n".join(lines)


def breakdown(results):
    names = list(results[0]["batch_buffers"])
    lines = ["| config | " + " | ".join(names) + " |", "| --- " * (len(names) + 1) + "|"]
    for result in results:
        lines.append(f"| {result['config']} | "
                     + " | ".join(f"{result['batch_buffers'][name] / MIB:.3f}" for name in names) + " |")
    return "\n".join(lines)


def write_report(results, source, n_samples, path=HERE / "MEMORY.md"):
    machine = "\n".join(f"- {key}: {value}" for key, value in machine_info().items())
    path.write_text(f"""# Peak memory of a fit

Written by `python benchmarks/bench_memory.py` (see its docstring for what is measured), one
epoch of `fastmlp.fit` in float32 on {source} ({n_samples} training images), each
configuration in a fresh process.

{table(results)}

- **X**: the training images in float32, passed in (fit uses them as they are, no copy).
- **Y + order**: the one-hot targets and the int64 row order that fit makes; alive for the whole fit.
- **batch buffers**: what `_kernels.Network` allocates once for mini-batches of `batch` rows
  (breakdown below, MiB). The training loop allocates nothing per batch
  (`tests/test_reliability.py::test_training_loop_allocates_nothing_per_batch`).
- **traced peak**: tracemalloc's peak during the fit (X not included, it exists before). Beyond
  Y, the order and the batch buffers, `fit` holds one copy of the parameters (the last finite
  epoch) and draws the initial weights in float64 (twice the float32 weights, briefly); X is
  checked for NaN and infinity in place. So peak = X + Y + order + at most about 2 × the batch
  buffers.
- **maxrss delta**: the rise of the peak resident set size during the first fit: the same
  allocations as they reach the pages, plus the shared libraries and thread stacks the first
  call touches.

{breakdown(results)}

Machine:

{machine}
""")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=list(CONFIGS), help="measure one configuration, print JSON")
    parser.add_argument("--data", type=Path, help="with --config: the folder holding X.npy and y.npy")
    args = parser.parse_args()
    if args.config:
        print(json.dumps(measure(args.config, args.data)))
        return
    with tempfile.TemporaryDirectory() as directory:
        source, n_samples = save_data(Path(directory))
        results = run_all(Path(directory))
    print(table(results))
    write_report(results, source, n_samples)
    print(f"written to {HERE / 'MEMORY.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
