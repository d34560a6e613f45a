"""Data-parallel training on a local Dask cluster against single-process fastmlp.

For C1 and C3 on Fashion-MNIST: one epoch of ``fastmlp.fit`` in this process (1 thread and all
cores), then one epoch of ``fastmlp.distributed.fit`` on a LocalCluster (one single-threaded
worker process per core) with average_every 1, 10 and 100, after a warm-up epoch each. Prints
rounds/s, samples/s and each round's time split into compute (the slowest shard's mini-batch
steps) and the rest (communication: submitting tasks, moving parameters, the tree sum, the
client's averaging). L-BFGS rows time cost-and-gradient iterations over the whole set.

    nice python benchmarks/bench_distributed.py [--rows 60000] [--workers 2]
    python benchmarks/bench_distributed.py --paper     # the scaling estimate of docs/distributed.md

A plain script: it defines no pytest benchmarks.
"""
import argparse
import math
import os
import time

import numpy as np

import fastmlp
from fastmlp.bench import CONFIGS, cpu_model


def options(config, **extra):
    return dict(hidden=config.hidden, activation=config.activation, loss=config.loss,
                learning_rate=config.learning_rate, batch_size=config.batch_size, momentum=config.momentum,
                seed=0, **extra)


def parameter_bytes(config, n_features, n_outputs, itemsize=4):
    sizes = (n_features,) + config.hidden + (n_outputs,)
    return itemsize * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def single_process(config, X, y, threads):
    fastmlp.set_num_threads(threads)
    fastmlp.fit(X, y, **options(config, epochs=1))            # warm-up
    model = fastmlp.fit(X, y, **options(config, epochs=1))
    steps = -(-len(X) // config.batch_size)
    return {"mode": f"single process, {threads} thread{'s' * (threads > 1)}", "rounds": steps,
            "seconds": model.history["seconds"][0], "compute": model.history["seconds"][0]}


def distributed(config, X, y, client, average_every):
    import fastmlp.distributed
    fit = fastmlp.distributed.fit
    fit(X, y, client=client, average_every=average_every, **options(config, epochs=1))   # warm-up
    model = fit(X, y, client=client, average_every=average_every, **options(config, epochs=1))
    history = model.history
    return {"mode": f"dask, average_every={average_every}", "rounds": history["rounds"][0],
            "seconds": history["seconds"][0], "compute": history["compute_seconds"][0]}


def lbfgs(config, X, y, client, iterations=5):
    import fastmlp.distributed
    rows = []
    for mode, run in (("single process L-BFGS", lambda **o: fastmlp.fit(X, y, **o)),
                      ("dask L-BFGS", lambda **o: fastmlp.distributed.fit(X, y, client=client, **o))):
        run(**options(config, optimizer="lbfgs", epochs=1))
        started = time.perf_counter()
        model = run(**options(config, optimizer="lbfgs", epochs=iterations))
        seconds = time.perf_counter() - started
        rows.append({"mode": mode, "rounds": len(model.history["loss"]), "seconds": seconds, "compute": None})
    return rows


def table_row(config, row, n_samples, nbytes):
    per_round = row["seconds"] / row["rounds"]
    compute = "" if row["compute"] is None else f"{1e3 * row['compute'] / row['rounds']:.2f}"
    rest = "" if row["compute"] is None else f"{1e3 * (row['seconds'] - row['compute']) / row['rounds']:.2f}"
    samples = "" if "L-BFGS" in row["mode"] else f"{n_samples / row['seconds']:,.0f}"
    return (f"| {config.name} | {row['mode']} | {row['rounds']} | {row['rounds'] / row['seconds']:,.1f} | {samples} | "
            f"{1e3 * per_round:.2f} | {compute} | {rest} | {nbytes / 1e3:,.0f} |")


# The paper estimate: one core's mini-batch step (measured above, 1 thread), and assumed costs of
# a real cluster: 10 GbE links, a Dask task hop and the scheduler's time per task.
STEP_SECONDS = {"C1": 0.070e-3, "C3": 1.32e-3}
STATE_COPIES = {"C1": 1, "C3": 2}            # parameters, and C3's momentum velocity
BANDWIDTH = 1.25e9                           # bytes/s
HOP_SECONDS = 2e-3
TASK_SECONDS = 0.25e-3


def round_seconds(config, machines, average_every):
    """(compute, communication) of one round: each machine's average_every steps on its own
    mini-batch of config.batch_size rows; the parameters sent as one task's result that every
    machine fetches from the one holding it (a hop before the shards' tasks), and the float64 tree
    sum back (log2(machines) levels, then to the client)."""
    size = parameter_bytes(config, 784, 10) * STATE_COPIES[config.name]
    levels = math.ceil(math.log2(machines)) if machines > 1 else 0
    communication = ((levels + 3) * HOP_SECONDS + 2 * machines * TASK_SECONDS + machines * size / BANDWIDTH
                     + (levels + 1) * 2 * size / BANDWIDTH)
    return average_every * STEP_SECONDS[config.name], communication


def paper_table():
    print("| config | machines | average_every | compute ms/round | communication ms/round "
          "| samples/s | of ideal |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("C1", "C3"):
        config = CONFIGS[name]
        for machines in (8, 64, 512):
            for every in (1, 10, 100):
                compute, communication = round_seconds(config, machines, every)
                samples = machines * every * config.batch_size / (compute + communication)
                ideal = machines * config.batch_size / STEP_SECONDS[name]
                print(f"| {name} | {machines} | {every} | {1e3 * compute:.2f} | {1e3 * communication:.1f} | "
                      f"{samples:,.0f} | {samples / ideal:.1%} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--configs", default="C1,C3")
    parser.add_argument("--paper", action="store_true", help="print the scaling estimate and exit")
    arguments = parser.parse_args()
    if arguments.paper:
        return paper_table()
    from distributed import Client, LocalCluster

    X_train, y_train, *_ = fastmlp.datasets.load_fashion_mnist_or_small()
    X = (X_train[:arguments.rows] / np.float32(255)).astype(np.float32)
    y = y_train[:arguments.rows]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {len(X)} samples; "
          f"{arguments.workers} single-threaded workers on 127.0.0.1\n")
    print("| config | mode | rounds (steps) | rounds/s | samples/s | ms/round | compute ms/round "
          "| other ms/round | parameter kB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with LocalCluster(n_workers=arguments.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for name in arguments.configs.split(","):
            config = CONFIGS[name]
            nbytes = parameter_bytes(config, X.shape[1], 10)
            rows = [single_process(config, X, y, threads) for threads in (1, os.cpu_count())]
            rows += [distributed(config, X, y, client, every) for every in (1, 10, 100)]
            rows += lbfgs(config, X, y, client)
            for row in rows:
                print(table_row(config, row, len(X), nbytes), flush=True)


if __name__ == "__main__":
    main()
