"""fastmlp.bench: the contenders train correctly, and the measures of speed (FLOPs, GEMM peak,
targets) and the benchmark's child environments are right."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastmlp import bench, reference


@pytest.mark.parametrize("name", ["C1", "C3"])
def test_plain_numpy_full_batch_epoch_is_one_gradient_step(name):
    """With the whole set as one batch an epoch is one step, whatever the shuffle: it must equal the
    NumPy twin's step from the same weights (float64, so only rounding differs)."""
    rng = np.random.default_rng(0)
    config = bench.CONFIGS[name]
    config = bench.Config(config.name, (5, 4), config.activation, config.loss, config.learning_rate,
                          batch_size=37, momentum=config.momentum)
    X = rng.random((37, 784))
    y = rng.integers(0, 10, 37)
    plain = bench.PlainNumPy(config, X, y, "float64")
    twin = reference.Network([w.copy() for w in plain.weights], [b.copy() for b in plain.biases],
                             config.layer_activations, config.loss, 37, momentum=config.momentum)
    twin.bind(X, np.eye(10)[y], np.arange(37, dtype=np.int64))
    for _ in range(2):                       # the second step also uses the velocity
        plain.train_epoch()
        twin.train_batch(0, 37, config.learning_rate)
    for got, want in zip(plain.weights + plain.biases, twin.weights + twin.biases):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_plain_numpy_learns_the_small_fashion_mnist():
    from fastmlp import datasets
    X, y, X_test, y_test = datasets.load_small_fashion_mnist()
    plain = bench.PlainNumPy(bench.CONFIGS["C2"], (X / 255).astype(np.float32), y, "float32")
    for _ in range(3):
        assert plain.train_epoch() > 0
    assert plain.accuracy((X_test / 255).astype(np.float32), y_test) > 0.6


def test_plain_numpy_accuracy_takes_saturated_sigmoids_quietly():
    """σ of a large negative z is 0 after exp(-z) overflows: no RuntimeWarning in the benchmark's output."""
    import warnings
    rng = np.random.default_rng(0)
    X = rng.random((20, 784)) * 1e4
    y = rng.integers(0, 10, 20)
    plain = bench.PlainNumPy(bench.CONFIGS["C1"], X, y, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0 <= plain.accuracy(-X, y) <= 1


@pytest.mark.parametrize("threads", [1, 2])
def test_fastmlp_contender_reports_its_share_of_team_batches(threads):
    """On more than one thread each epoch reports the share of its batches that ran as a team,
    counted by the team pool: the adaptive choice tries the team first, so the first epoch has
    some, and a share can never exceed every batch."""
    import fastmlp
    from fastmlp import datasets
    X, y = datasets.load_small_fashion_mnist()[:2]
    previous = fastmlp.get_num_threads()
    fastmlp.set_num_threads(threads)
    try:
        contender = bench.FastMLP("fastmlp", "compiled", bench.CONFIGS["C1"], (X[:1000] / 255).astype(np.float32),
                                  y[:1000], "float32")
        shares = []
        for _ in range(2):
            assert contender.train_epoch() > 0
            shares.append(contender.team_share)
    finally:
        fastmlp.set_num_threads(previous)
    if threads == 1:
        assert shares == [None, None]
    else:
        assert 0 < shares[0] <= 1 and 0 <= shares[1] <= 1
    twin = bench.FastMLP("numpy twin", "numpy", bench.CONFIGS["C1"], (X[:100] / 255).astype(np.float32),
                         y[:100], "float32")
    twin.train_epoch()
    assert twin.team_share is None


def test_result_rows_show_the_median_team_share_only_where_measured():
    rows = [{"config": "C1", "threads": 2, "contender": "fastmlp", "seconds": [0.1, 0.2, 0.3],
             "team_share": [0.5, 1.0, 0.75], "accuracy": 0.8},
            {"config": "C1", "threads": 2, "contender": "numpy twin", "seconds": [0.4], "team_share": [],
             "accuracy": 0.8}]
    fast, twin = bench.result_rows(rows)
    assert fast[3:] == ["0.200", "100%", "2.00", "n/a", "0.8000", "75%"]
    assert twin[-1] == "" and twin[5] == "1.00"


# ---------------------------------------------------------------------------------------------
# The hardware's share: FLOPs of an epoch, the GEMM peak, the targets
# ---------------------------------------------------------------------------------------------

def test_epoch_flops_counts_forward_weight_gradient_and_back_propagated_error():
    # C1 is 784-16-16-10; one product per layer is 2·n_in·n_out: 25088, 512 and 320.
    #   forward 25088 + 512 + 320 = 25920, weight gradients the same 25920,
    #   back-propagated errors into layers 2 and 3 only: 512 + 320 = 832 (none into the input).
    assert bench.epoch_flops(bench.CONFIGS["C1"], 1) == 25920 + 25920 + 832
    assert bench.epoch_flops(bench.CONFIGS["C1"], 60000) == 60000 * 52672
    one_layer = bench.Config("L", (), "sigmoid", "quadratic", learning_rate=1.0, batch_size=10)
    assert bench.epoch_flops(one_layer, 3) == 3 * 2 * (2 * 784 * 10)   # no error to back-propagate


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_peak_times_the_product_it_reports(dtype):
    peak = bench.gemm_peak(dtype, size=96, repeats=2)
    assert peak["dtype"] == dtype and peak["size"] == 96      # a small size is kept as it is
    assert peak["seconds"] > 0 and peak["flops"] == pytest.approx(2 * 96 ** 3 / peak["seconds"])


def peak_rows():
    def row(contender, seconds, threads=1, blas_env=None):
        return {"config": "C1", "threads": threads, "contender": contender, "seconds": [seconds],
                "team_share": [], "accuracy": 0.8, "flops": 2e9, "blas_env": blas_env}
    return [row("fastmlp", 0.1), row("numpy twin", 0.4), row("torch", 0.05),
            row("fastmlp", 0.1, threads=2), row("numpy twin", 0.2, threads=2)]


def test_result_rows_give_the_rate_as_a_share_of_the_peak_at_the_same_thread_count():
    rows = bench.result_rows(peak_rows(), peaks={1: 40e9, 2: 25e9})
    assert [row[-2:] for row in rows] == [["20.0", "50%"], ["5.0", "12%"], ["40.0", "100%"],
                                          ["20.0", "80%"], ["10.0", "40%"]]
    assert len(bench.result_rows(peak_rows())[0]) == len(bench.RESULT_HEADER)   # no peaks, no columns


def test_target_lines_name_the_faster_peer_and_each_share_against_its_target():
    lines = bench.target_lines(peak_rows(), peaks={1: 40e9, 2: 25e9})
    assert lines == [
        "fastmlp the fastest contender on every config: not met (C1 at 1 thread(s): torch 0.050 s vs "
        "fastmlp 0.100 s)",
        "C1 at 1 thread(s): fastmlp at 50.0% of the GEMM peak (target 75%: not met)",
        "C1 at 2 thread(s): fastmlp at 80.0% of the GEMM peak (target 70%: met)"]


def test_numpy_rows_measured_with_the_blas_variables_unset_say_so_and_compare_among_themselves():
    rows = [dict(row, blas_env="as set") for row in peak_rows()[:2]]
    rows.append(dict(rows[1], blas_env="unset", seconds=[0.8]))
    labels = [(row[2], row[5]) for row in bench.result_rows(rows)]
    assert labels == [("fastmlp", "4.00"), ("numpy twin (OPENBLAS_* as set)", "1.00"),
                      ("numpy twin (OPENBLAS_* unset)", "1.00")]


# ---------------------------------------------------------------------------------------------
# The environment of the benchmark's children
# ---------------------------------------------------------------------------------------------

def test_blas_kernel_variables_warn_and_are_dropped_from_the_unset_child(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    assert bench.blas_kernel_overrides() == {} and bench.blas_kernel_warning() is None
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert bench.blas_kernel_overrides() == {"OPENBLAS_CORETYPE": "Haswell"}
    warning = bench.blas_kernel_warning()
    assert warning.startswith("OPENBLAS_CORETYPE=Haswell overrides OpenBLAS's kernel choice")
    assert "OPENBLAS_L2_SIZE" not in warning
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    assert "OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE=1048576" in bench.blas_kernel_warning()
    as_set = bench.child_environment(2)
    unset = bench.child_environment(2, unset=bench.BLAS_KERNEL_VARIABLES)
    assert as_set["OPENBLAS_CORETYPE"] == "Haswell" and as_set["OPENBLAS_L2_SIZE"] == "1048576"
    assert not set(bench.BLAS_KERNEL_VARIABLES) & set(unset)
    assert bench.blas_kernel_warning(unset) is None


def test_child_environment_pins_every_pool_and_xla_only_at_one_thread():
    one = bench.child_environment(1, environ={"XLA_FLAGS": "--xla_dump_to=/tmp/x"})
    assert all(one[name] == "1" for name in bench.THREAD_VARIABLES)
    assert one["XLA_FLAGS"] == ("--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1")
    two = bench.child_environment(2, environ={})
    assert all(two[name] == "2" for name in bench.THREAD_VARIABLES) and "XLA_FLAGS" not in two


def test_pin_to_cores_moves_every_thread_of_the_process():
    """NumPy's BLAS threads exist before the child pins itself: they must move too."""
    code = ("import os, numpy\n"
            "from fastmlp.bench import pin_to_cores\n"
            "cores = pin_to_cores(1)\n"
            "tasks = os.listdir('/proc/self/task')\n"
            "assert len(cores) == 1, cores\n"
            "assert all(os.sched_getaffinity(int(t)) == set(cores) for t in tasks), tasks\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=bench.child_environment(2))


# ---------------------------------------------------------------------------------------------
# The JAX contender
# ---------------------------------------------------------------------------------------------

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")


def in_a_new_python(check, *args):
    """Run ``check(*args)``, a function of this module, in a new Python process: JAX starts threads
    on import, and a later test that forks (test_reliability's forked child) must not inherit them."""
    code = f"import runpy; runpy.run_path({__file__!r})[{check.__name__!r}](*{args!r})"
    subprocess.run([sys.executable, "-c", code], check=True)


def check_jax_whole_set_epochs_are_plain_numpy_steps(name, n_samples):
    config = bench.CONFIGS[name]
    config = bench.Config(name, (5, 4), config.activation, config.loss, config.learning_rate,
                          batch_size=37, momentum=config.momentum)
    rng = np.random.default_rng(0)
    X, y = rng.random((n_samples, 784)), rng.integers(0, 10, n_samples)
    jax_contender, plain = bench.Jax(config, X, y, "float64"), bench.PlainNumPy(config, X, y, "float64")
    for _ in range(2):                       # the second step also uses the velocity (C3)
        assert jax_contender.train_epoch() > 0
        plain.train_epoch()
    got = [np.asarray(p) for layer in jax_contender.params for p in layer]
    want = [p for pair in zip(plain.weights, plain.biases) for p in pair]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


@needs_jax
@pytest.mark.parametrize("name, n_samples", [("C1", 30), ("C3", 37)])
def test_jax_whole_set_epochs_are_the_plain_numpy_gradient_steps(name, n_samples):
    """A batch larger than the set (C1: only the remainder, no scan step) or equal to it (C3: one
    scan step, no remainder) makes an epoch one step from the same initial weights: JAX's
    autodiff, cost and momentum must match the textbook loop's (float64, so only rounding differs)."""
    in_a_new_python(check_jax_whole_set_epochs_are_plain_numpy_steps, name, n_samples)


def check_jax_learns_the_small_fashion_mnist():
    from fastmlp import datasets
    X, y, X_test, y_test = datasets.load_small_fashion_mnist()
    config = bench.Config("tiny", (32,), "relu", "log_loss", learning_rate=0.05, batch_size=64,
                          momentum=0.9)                   # 1000 rows: 15 scan steps and a remainder of 40
    contender = bench.Jax(config, (X[:1000] / 255).astype(np.float32), y[:1000], "float32")
    for _ in range(3):
        assert contender.train_epoch() > 0
    assert contender.accuracy((X_test / 255).astype(np.float32), y_test) > 0.5    # chance: 0.1


@needs_jax
def test_jax_learns_the_small_fashion_mnist():
    in_a_new_python(check_jax_learns_the_small_fashion_mnist)


@pytest.mark.slow   # eight child processes, each importing scikit-learn and ONNX Runtime
def test_inference_benchmark_prints_every_cell_and_checks_the_outputs():
    for module in ("sklearn", "onnx", "onnxruntime", "threadpoolctl"):
        pytest.importorskip(module)
    script = Path(__file__).parents[1] / "benchmarks" / "bench_inference.py"
    result = subprocess.run([sys.executable, str(script), "--rows", "1", "3", "--seconds", "0.01", "--markdown"],
                            capture_output=True, text=True, timeout=1800)   # a hang guard only
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| float")]
    assert [(cells[0].strip(), cells[1].strip(), cells[2].strip()) for cells in rows] == [
        (dtype, threads, rows) for dtype in ("float32", "float64") for threads in ("1", "2") for rows in ("1", "3")]
    assert all(len(cells) == 10 for cells in rows)
