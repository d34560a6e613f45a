"""Training speed on sparse input: fastmlp's MLPClassifier against scikit-learn's, epoch by epoch.

    python benchmarks/bench_sparse.py                   # 50,000 x 100,000 CSR, float64 and float32, 1 and 2 threads
    python benchmarks/bench_sparse.py --quick           # 5,000 rows, one dtype, to check that it runs
    python benchmarks/bench_sparse.py --dtypes float64 --threads 1 --epochs 3

The data (a fixed seed): X is a CSR matrix of ``--rows`` rows and 100,000 columns, a bag of words.
Each row draws column indices with replacement, column c (after a fixed random permutation of the
columns) with probability proportional to 1 / (c + 1)^1.1, a Zipf-like law as word or hashed-feature
counts follow; repeated draws merge, and the number of draws is chosen so that a row has 500
distinct columns on average (0.5% density; the measured density is printed). A row's value in a
column is log(1 + count) times the column's IDF (scikit-learn's smooth idf, from the training rows),
and each row is scaled to unit length: TF-IDF. The labels follow a planted linear rule,
``argmax(X · W_true)`` over 20 classes with W_true ~ N(0, 1), so accuracy means something; a test set
of 5,000 rows drawn the same way is scored after the epochs.

Both estimators get the same settings: ``hidden_layer_sizes=(64,)``, ReLU, softmax output, Adam
(learning_rate_init=1e-3, alpha=1e-4), ``batch_size=256``, shuffled, and one epoch per
``partial_fit`` call; X is given in the dtype named, which both keep. Per thread count the process
is pinned to that many cores (sched_setaffinity: core 1 alone for one thread), fastmlp's kernels
use that many threads, and BLAS (scikit-learn's hidden-layer products) is limited to it with
threadpoolctl. After a warm-up epoch each, the two take turns for ``--epochs`` measured epochs;
reported is the median seconds per epoch, the ratio (scikit-learn's time over fastmlp's), the test
accuracy after all epochs, and the peak memory one more epoch allocates on top of what is already
held (tracemalloc: every NumPy and SciPy array; fastmlp's own C buffers are NumPy arrays too).
"""
import argparse
import os
import platform
import statistics
import time
import tracemalloc
import warnings

import numpy as np
import scipy
import scipy.sparse as sp

import fastmlp

N_FEATURES = 100_000
DISTINCT_PER_ROW = 500    # 0.5% of the columns
ZIPF_EXPONENT = 1.1
N_CLASSES = 20
TEST_ROWS = 5_000


def draws_for(column_probability, distinct):
    """The number of draws with replacement after which a row has ``distinct`` distinct columns on
    average: Σ_c 1 − (1 − p_c)^draws = distinct, by bisection."""
    low, high = distinct, 100 * distinct
    while high - low > 1:
        middle = (low + high) // 2
        expected = np.sum(-np.expm1(middle * np.log1p(-column_probability)))
        low, high = (middle, high) if expected < distinct else (low, middle)
    return high


def counts(rows, draws, rng, column_probability):
    """A CSR matrix of each row's counts of its draws."""
    columns = rng.choice(N_FEATURES, size=rows * draws, p=column_probability).astype(np.int32)
    indptr = np.arange(0, rows * draws + 1, draws, dtype=np.int64)
    X = sp.csr_matrix((np.ones(len(columns)), columns, indptr), shape=(rows, N_FEATURES))
    X.sum_duplicates()
    return X


def tf_idf(X, idf):
    X = sp.csr_matrix(X.multiply(idf[None, :]))
    lengths = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.maximum(lengths, 1e-300)) @ X)


def make_data(rows, seed=0):
    """Training and test X (float64 CSR) and labels, as the module docstring says."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, N_FEATURES + 1) ** ZIPF_EXPONENT
    column_probability = rng.permutation(weights / weights.sum())
    draws = draws_for(column_probability, DISTINCT_PER_ROW)
    X, X_test = counts(rows, draws, rng, column_probability), counts(TEST_ROWS, draws, rng, column_probability)
    for matrix in (X, X_test):
        matrix.data = np.log1p(matrix.data)
    document_frequency = np.bincount(X.indices, minlength=N_FEATURES)
    idf = np.log((1 + rows) / (1 + document_frequency)) + 1
    X, X_test = tf_idf(X, idf), tf_idf(X_test, idf)
    W_true = rng.standard_normal((N_FEATURES, N_CLASSES))
    return X, np.argmax(X @ W_true, axis=1), X_test, np.argmax(X_test @ W_true, axis=1)


def estimators(threads):
    from sklearn.neural_network import MLPClassifier as SklearnMLP
    settings = dict(hidden_layer_sizes=(64,), activation="relu", solver="adam", learning_rate_init=1e-3,
                    alpha=1e-4, batch_size=256, shuffle=True, random_state=0)
    return {"fastmlp": fastmlp.MLPClassifier(**settings), "scikit-learn": SklearnMLP(**settings)}


def one_epoch(model, X, y, classes):
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.partial_fit(X, y, classes=classes)
    return time.perf_counter() - started


def peak_memory(model, X, y, classes):
    """Bytes allocated at the peak of one more epoch, beyond what was allocated before it."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    one_epoch(model, X, y, classes)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - before


def run(X, y, X_test, y_test, threads, epochs):
    """{contender: (median seconds per epoch, test accuracy, peak bytes of an epoch)} at ``threads``."""
    from threadpoolctl import threadpool_limits
    os.sched_setaffinity(0, {1} if threads == 1 else set(range(threads)))
    fastmlp.set_num_threads(threads)
    classes = np.arange(N_CLASSES)
    models = estimators(threads)
    seconds = {name: [] for name in models}
    with threadpool_limits(limits=threads):
        for name, model in models.items():       # warm-up: the first call also draws the weights
            one_epoch(model, X, y, classes)
        for epoch in range(epochs):              # turns, the order rotating
            names = list(models) if epoch % 2 == 0 else list(models)[::-1]
            for name in names:
                seconds[name].append(one_epoch(models[name], X, y, classes))
        memory = {name: peak_memory(model, X, y, classes) for name, model in models.items()}
    return {name: (statistics.median(seconds[name]), models[name].score(X_test, y_test), memory[name])
            for name in models}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs (after one warm-up)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--quick", action="store_true", help="5,000 rows, float32 only, 1 measured epoch")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.dtypes = 5_000, 1, "float32"
    import sklearn
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
          f"{platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, scikit-learn "
          f"{sklearn.__version__}, fastmlp {fastmlp.__version__} (kernels: "
          f"{fastmlp._kernels.build_info()['sparse_isa']})")
    X64, y, X_test64, y_test = make_data(args.rows)
    print(f"X: {X64.shape[0]} x {X64.shape[1]}, {X64.nnz} nonzeros (density {X64.nnz / np.prod(X64.shape):.3%}); "
          f"test: {X_test64.shape[0]} rows; majority class {np.bincount(y).max() / len(y):.1%}")
    print()
    print("| dtype | threads | fastmlp s/epoch | scikit-learn s/epoch | ratio | fastmlp accuracy | "
          "scikit-learn accuracy | fastmlp epoch peak | scikit-learn epoch peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dtype in args.dtypes.split(","):
        X, X_test = X64.astype(dtype), X_test64.astype(dtype)
        for threads in (int(t) for t in args.threads.split(",")):
            results = run(X, y, X_test, y_test, threads, args.epochs)
            (fm_s, fm_acc, fm_mem), (sk_s, sk_acc, sk_mem) = results["fastmlp"], results["scikit-learn"]
            print(f"| {dtype} | {threads} | {fm_s:.2f} | {sk_s:.2f} | {sk_s / fm_s:.1f}x | {fm_acc:.3f} | "
                  f"{sk_acc:.3f} | {fm_mem / 2**20:.0f} MiB | {sk_mem / 2**20:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
