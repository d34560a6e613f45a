"""What both benchmarks share: the four network configurations and a description of the machine.

Imported as a plain module (``benchmarks/`` has no ``__init__.py``): pytest puts this folder on
``sys.path`` when it collects ``bench_kernels.py``, and Python does when it runs
``bench_end_to_end.py`` as a script.
"""
import os
import platform
from dataclasses import dataclass
from importlib import metadata

# The variables that pin the thread pools of OpenBLAS, OpenMP (PyTorch), MKL and fastmlp.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FASTMLP_NUM_THREADS")


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


def blas_info():
    """NumPy's BLAS and its thread count: from threadpoolctl when installed, else NumPy's build
    configuration and the thread variables of the environment."""
    import numpy as np

    info = {"numpy": np.__version__}
    info.update({name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ})
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
        info["blas_threads"] = pool["num_threads"]
        info["blas_threading_layer"] = pool.get("threading_layer", "unknown")
        return info
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):   # NumPy < 1.26 has no mode="dicts"
        info["blas"] = "unknown"
    info["blas_threads"] = "unknown (install threadpoolctl)"
    return info


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


def machine_info():
    """CPU, cores, Python, NumPy and its BLAS, the peers' versions and fastmlp's GEMM."""
    import fastmlp
    from fastmlp import _kernels

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        **blas_info(),
        "torch": package_version("torch"),
        "scikit-learn": package_version("scikit-learn"),
        "fastmlp": fastmlp.__version__,
        "fastmlp_threads": fastmlp.get_num_threads(),
        "gemm_isa": _kernels.gemm_isa(),
    }
