"""Inference latency: the median time per predict_proba call, by batch size, against ONNX Runtime.

Run from the repository root with the package and its test extra installed (scikit-learn, onnx,
onnxruntime, skl2onnx):

    python benchmarks/bench_inference.py              # a plain table
    python benchmarks/bench_inference.py --markdown   # a Markdown table

The network is a 784-100-10 classifier (ReLU hidden layer, softmax output), in float32 and in
float64, with the same weights in every contender:

- ``MLP``: ``fastmlp.MLP.predict_proba`` (the fitted model of the estimator below);
- ``estimator``: ``fastmlp.MLPClassifier.predict_proba``;
- ``sklearn``: scikit-learn's ``MLPClassifier.predict_proba`` with fastmlp's ``coefs_`` and
  ``intercepts_`` copied in;
- ``onnxruntime``: an ``InferenceSession`` on ``fastmlp.to_onnx``'s graph, asked for the
  probabilities only.

Each runs on 1 thread pinned to one core (``os.sched_setaffinity``; fastmlp's kernel threads,
ONNX Runtime's intra- and inter-op threads and NumPy's BLAS all set to 1), then on 2 threads and
two cores. The input is a C-contiguous array of the model's dtype, made once per batch size; each
cell is the median of repeated calls for about ``--seconds`` seconds (at least 5 calls). On one
thread the contenders take turns of about 20 ms, so that the ratios compare calls made side by side;
on two, each runs alone in a process of its own, one after the other (in one process ONNX Runtime's
and OpenBLAS's threads spin for a while after their calls, on the core another contender's second
thread needs, and fastmlp then finds its team slower and predicts alone). The probabilities of the
contenders are compared with the ``MLP``'s after timing. The ratio columns are each time over
ONNX Runtime's (below 1: faster than ONNX Runtime).
"""
import argparse
import multiprocessing
import os
import platform
import statistics
import time
import warnings

import numpy as np

import fastmlp

ROWS = (1, 10, 100, 1000, 10000)
CONTENDERS = ("MLP", "estimator", "sklearn", "onnxruntime")


def cpu_description():
    """lscpu's model name and whether the CPU has AVX-512F and AVX2 (from /proc/cpuinfo)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {"cpu": model, "avx512f": "avx512f" in flags, "avx2": "avx2" in flags}


def versions():
    import onnxruntime
    import sklearn
    return {"python": platform.python_version(), "numpy": np.__version__, "fastmlp": fastmlp.__version__,
            "scikit-learn": sklearn.__version__, "onnxruntime": onnxruntime.__version__,
            "fastmlp GEMM": fastmlp.kernel_isa()}


def contenders(dtype, threads, seed=0):
    """The four predict_proba functions of one network in ``dtype``, set up for ``threads`` threads."""
    import onnxruntime
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, 784)).astype(dtype)
    y = np.arange(200) % 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = fastmlp.MLPClassifier((100,), max_iter=1, random_state=seed, dtype=dtype).fit(X, y)
        reference = SklearnMLP((100,), max_iter=1, random_state=seed).fit(X, y)
    reference.coefs_ = [w.copy() for w in estimator.coefs_]
    reference.intercepts_ = [b.copy() for b in estimator.intercepts_]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    graph = fastmlp.to_onnx(estimator.model_)
    session = onnxruntime.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    probabilities = [output.name for output in session.get_outputs() if "prob" in output.name]
    model = estimator.model_
    return {
        "MLP": model.predict_proba,
        "estimator": estimator.predict_proba,
        "sklearn": reference.predict_proba,
        "onnxruntime": lambda X: session.run(probabilities, {name: X})[0],
    }


def interleaved_medians(functions, X, seconds, turn_seconds=0.02, warmup_seconds=0.0):
    """{name: median seconds per call of functions[name](X)}. The contenders take turns, calling
    for about ``turn_seconds`` each (who goes first rotating), until each has spent ``seconds``
    and made 5 calls: with short turns a slow spell of a shared machine falls on all alike. Each
    first calls for ``warmup_seconds`` (at least once), untimed."""
    names = list(functions)
    for function in functions.values():   # first-call allocations, page faults, waking threads
        end = time.perf_counter() + warmup_seconds
        function(X)
        while time.perf_counter() < end:
            function(X)
    times = {name: [] for name in names}
    spent = dict.fromkeys(names, 0.0)
    turn = 0
    while min(spent.values()) < seconds or min(map(len, times.values())) < 5:
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            began = time.perf_counter()
            while True:
                start = time.perf_counter()
                functions[name](X)
                end = time.perf_counter()
                times[name].append(end - start)
                spent[name] += end - start
                if end - began >= turn_seconds:
                    break
        turn += 1
    return {name: statistics.median(calls) for name, calls in times.items()}


def run(dtype, threads, cores, seconds, rows_list, names=CONTENDERS):
    """{rows: {contender: median seconds}} for one dtype on ``threads`` threads over ``cores``, of
    the contenders ``names`` taking turns in this process."""
    from threadpoolctl import threadpool_limits

    os.sched_setaffinity(0, cores)
    fastmlp.set_num_threads(threads)
    functions = contenders(dtype, threads)
    results = {}
    with threadpool_limits(threads):
        for rows in rows_list:
            X = np.random.default_rng(rows).standard_normal((rows, 784)).astype(dtype)
            timed = {name: functions[name] for name in names}
            if len(names) > 1:
                results[rows] = interleaved_medians(timed, X, seconds)
            else:   # calls for a second first (at most `seconds`): fastmlp's choice of a team
                # settles, and other pools wake
                results[rows] = interleaved_medians(timed, X, seconds, seconds, min(1.0, seconds))
            expected = np.asarray(functions["MLP"](X), np.float64)
            tolerance = 1e-4 if dtype == np.float32 else 1e-10
            for name, function in timed.items():
                np.testing.assert_allclose(np.asarray(function(X), np.float64), expected, atol=tolerance,
                                           err_msg=name)
    return results


def run_apart(dtype, threads, cores, seconds, rows_list):
    """``run``, each contender alone in a fresh process, one after the other."""
    context = multiprocessing.get_context("spawn")
    results = {rows: {} for rows in rows_list}
    for name in CONTENDERS:
        with context.Pool(1) as pool:
            alone = pool.apply(run, (dtype, threads, cores, seconds, rows_list, (name,)))
        for rows in rows_list:
            results[rows][name] = alone[rows][name]
    return results


def shown(seconds):
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def table(all_results, markdown):
    header = ["dtype", "threads", "rows"] + list(CONTENDERS) + [f"{name} / ORT" for name in CONTENDERS[:3]]
    lines = []
    for (dtype, threads), results in all_results.items():
        for rows, times in results.items():
            ort = times["onnxruntime"]
            lines.append([np.dtype(dtype).name, str(threads), str(rows)] + [shown(times[name]) for name in CONTENDERS]
                         + [f"{times[name] / ort:.2f}" for name in CONTENDERS[:3]])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header] + lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--seconds", type=float, default=0.3,
                        help="seconds of calls per contender and cell (default 0.3)")
    parser.add_argument("--rows", type=int, nargs="+", default=ROWS, help="batch sizes (default %(default)s)")
    parser.add_argument("--threads", type=int, nargs="+", default=(1, 2), help="thread counts (default 1 2)")
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    all_results = {}
    for dtype in (np.float32, np.float64):
        for threads in args.threads:
            measure = run if threads == 1 else run_apart
            all_results[(dtype, threads)] = measure(dtype, threads, set(available[:threads]), args.seconds,
                                                    args.rows)
    os.sched_setaffinity(0, available)
    machine = cpu_description()
    print(f"CPU: {machine['cpu']} (avx512f: {'yes' if machine['avx512f'] else 'no'}, "
          f"avx2: {'yes' if machine['avx2'] else 'no'}); {os.cpu_count()} cores; load average "
          f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(", ".join(f"{name} {version}" for name, version in versions().items()))
    print("median time per predict_proba call; 784-100-10 ReLU/softmax; ratios are time / ONNX Runtime's\n")
    print(table(all_results, args.markdown))


if __name__ == "__main__":
    main()
