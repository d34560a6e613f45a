"""Training from a memory-mapped uint8 file twice the size of its page cache, against the same rows in memory.

Run from the repository root as root (it makes a memory cgroup), with the package built:

    python benchmarks/bench_memmap.py                  # --gib 1 --limit-mib 512 --epochs 3 --repeats 3
    python benchmarks/bench_memmap.py --cpus 0,1       # the read-ahead thread may use the other core
    python benchmarks/bench_memmap.py --page-cache     # also the memmap read through the page cache

It writes Fashion-MNIST's training images, tiled in a shuffled order, as one raw uint8 file of
``--gib`` GiB (784 bytes a row) in a temporary directory, and trains the seed network on it
(784-16-16-10 sigmoid, quadratic cost, mini-batches of 100, η = 3, ``input_scale=1/255``,
``shuffle="blocks"``), each run a fresh process with one kernel thread, pinned to the cores
``--cpus`` (``taskset -c 1`` by default: training and the read-ahead thread share one core), the
the kinds of run alternating:

- ``disk``: X is a ``numpy.memmap`` of the file, and the process runs in a memory cgroup limited to
  ``--limit-mib`` (its own memory and the page cache it fills: the file is at least twice the
  cache it can have). The file is dropped from the page cache first (``posix_fadvise``
  DONTNEED), so every epoch reads it from the disk again. fit reads its blocks with direct I/O.
- ``mapped`` (with ``--page-cache``): as ``disk``, but with fit's direct reads turned off
  (``fastmlp.trainer.DirectReader.open`` made to refuse): the blocks are read through the page
  cache, as before direct I/O.
- ``memory``: the same rows read into an ndarray (``np.fromfile``) before training, no limit.

It prints each kind's median samples per second over every epoch of every run, disk (and mapped)
over memory, the bytes the runs from the file read from storage (``/proc/self/io``) and whether
all trained the same weights (they must: the same rows in the same order).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FEATURES = 784
HERE = Path(__file__).resolve()


def write_data(directory, gib):
    """X.u8 (rows of 784 uint8) and y.npy: Fashion-MNIST's training set tiled to ``gib`` GiB."""
    from fastmlp import datasets
    X, y, _, _, source = datasets.load_fashion_mnist_or_small()
    images = np.ascontiguousarray(X, np.uint8)
    n_samples = int(gib * 2**30) // FEATURES
    rng = np.random.default_rng(0)
    labels = np.empty(n_samples, np.int64)
    with open(directory / "X.u8", "wb") as file:
        for start in range(0, n_samples, len(images)):
            rows = rng.permutation(len(images))[:n_samples - start]
            file.write(images[rows].tobytes())
            labels[start:start + len(rows)] = y[rows]
        file.flush()
        os.fsync(file.fileno())
    np.save(directory / "y.npy", labels)
    return source, n_samples


def drop_from_cache(path):
    with open(path, "rb") as file:
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def memory_cgroup(limit_bytes):
    """A child of this process's memory cgroup limited to ``limit_bytes`` (v2 or v1): its directory."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            directory, limit_file = Path("/sys/fs/cgroup" + path) / "fastmlp-bench-memmap", "memory.max"
            break
        if "memory" in controllers.split(","):
            directory = Path("/sys/fs/cgroup/memory" + path) / "fastmlp-bench-memmap"
            limit_file = "memory.limit_in_bytes"
            break
    else:
        raise RuntimeError("no memory cgroup found")
    directory.mkdir(exist_ok=True)
    (directory / limit_file).write_text(str(limit_bytes))
    return directory


def run(kind, data, epochs, cpus, cgroup=None):
    """One training run in a fresh process pinned to ``cpus`` (in ``cgroup`` if given): its report."""
    def join_cgroup():
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    command = ["taskset", "-c", cpus, sys.executable, str(HERE), "--child", kind, "--data", str(data),
               "--epochs", str(epochs)]
    environment = dict(os.environ, FASTMLP_NUM_THREADS="1")
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=True,
                            preexec_fn=join_cgroup if cgroup else None)
    return json.loads(result.stdout.splitlines()[-1])


def child(kind, data, epochs):
    """Train once and print a JSON report: samples per second of each epoch, bytes read, final loss."""
    import fastmlp
    n_samples = os.path.getsize(data / "X.u8") // FEATURES
    if kind == "mapped":
        fastmlp.trainer.DirectReader.open = lambda *args: None
    if kind in ("disk", "mapped"):
        X = np.memmap(data / "X.u8", np.uint8, "r", shape=(n_samples, FEATURES))
    else:
        X = np.fromfile(data / "X.u8", np.uint8).reshape(n_samples, FEATURES)
    y = np.load(data / "y.npy")
    before, times = _read_bytes(), os.times()
    model = fastmlp.fit(X, y, epochs=epochs, input_scale=1 / 255, shuffle="blocks", seed=0)
    after = os.times()
    print(json.dumps({"samples_per_second": [n_samples / s for s in model.history["seconds"]],
                      "read_bytes": _read_bytes() - before, "loss": model.history["loss"][-1],
                      "user": after.user - times.user, "system": after.system - times.system,
                      "n_samples": n_samples}))


def _read_bytes():
    """Bytes this process has had read from storage (/proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--limit-mib", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", default="1", help="taskset's CPU list for every run (default: 1)")
    parser.add_argument("--page-cache", action="store_true", help="also run 'mapped': disk without direct I/O")
    parser.add_argument("--child", choices=["disk", "mapped", "memory"])
    parser.add_argument("--data", type=Path, help="where to write the temporary file (default: the temp directory)")
    options = parser.parse_args()
    if options.child:
        return child(options.child, options.data, options.epochs)
    if options.gib * 1024 < 2 * options.limit_mib:
        parser.error("the file (--gib) must be at least twice the cgroup's limit (--limit-mib)")
    with tempfile.TemporaryDirectory(prefix="fastmlp-memmap-", dir=options.data) as directory:
        directory = Path(directory)
        source, n_samples = write_data(directory, options.gib)
        cgroup = memory_cgroup(options.limit_mib * 2**20)
        reports = {kind: [] for kind in ("disk", "mapped", "memory") if kind != "mapped" or options.page_cache}
        try:
            for _ in range(options.repeats):
                for kind in reports:
                    if kind == "memory":
                        reports[kind].append(run(kind, directory, options.epochs, options.cpus))
                    else:
                        drop_from_cache(directory / "X.u8")
                        reports[kind].append(run(kind, directory, options.epochs, options.cpus, cgroup))
        finally:
            cgroup.rmdir()
    speed = {kind: statistics.median(s for r in runs for s in r["samples_per_second"])
             for kind, runs in reports.items()}
    print(f"{source}, {n_samples} rows x {FEATURES} uint8 = {options.gib:g} GiB; cgroup limit "
          f"{options.limit_mib} MiB; CPUs {options.cpus}")
    for kind in reports:
        print(f"{kind:6}  median {speed[kind]:,.0f} samples/s   per epoch: "
              + "  ".join(f"{s:,.0f}" for r in reports[kind] for s in r["samples_per_second"]))
    for kind in [kind for kind in reports if kind != "memory"]:
        read = [r["read_bytes"] / 2**30 for r in reports[kind]]
        print(f"{kind} / memory: {speed[kind] / speed['memory']:.2f}; {kind} runs read "
              + ", ".join(f"{gib:.2f}" for gib in read) + f" GiB from storage in {options.epochs} epochs each")
    for kind in reports:
        print(f"{kind:6}  CPU seconds per run, user + system: "
              + "  ".join(f"{r['user']:.2f} + {r['system']:.2f}" for r in reports[kind]))
    same = all(r["loss"] == reports["memory"][0]["loss"] for runs in reports.values() for r in runs)
    print(f"same final loss in every run: {same}")


if __name__ == "__main__":
    main()
