"""fastmlp: fast multilayer-perceptron training on the CPU.

Textbook backpropagation (3Blue1Brown, Welch Labs, Nielsen) with compiled kernels:
``fastmlp.fit(X, y)`` trains a dense network by mini-batch gradient descent and returns an
``MLP`` with ``predict``, ``predict_proba`` and ``score``. ``fastmlp.reference`` holds the same
algorithm in plain NumPy.
"""
__version__ = "0.1.0"   # the one place the version is written (pyproject.toml reads it)

try:
    from . import _kernels
except ImportError as error:   # never fall back to NumPy silently
    raise ImportError(
        "fastmlp's compiled kernels (fastmlp._kernels) are not built or cannot be loaded: "
        "install the package with 'pip install .' (or 'pip install -e .' for development). "
        f"Original error: {error}"
    ) from error

from . import datasets, reference
from ._kernels import gemm_isa as kernel_isa
from ._config import get_num_threads, set_num_threads, warn_unknown_isa
from ._info import show_config
from .exceptions import DivergenceError
from .gradcheck import check_gradients
from .io import load, save
from . import callbacks
from .model import MLP, init_parameters
from .trainer import Trainer
from .training import fit

warn_unknown_isa()

__all__ = ["fit", "MLP", "Trainer", "callbacks", "check_gradients", "init_parameters", "datasets", "reference",
           "get_num_threads", "set_num_threads", "kernel_isa", "show_config", "save", "load", "__version__",
           "MLPClassifier", "MLPRegressor", "DivergenceError", "to_onnx"]


def __getattr__(name):
    # MLPClassifier and MLPRegressor import scikit-learn when it is installed (over a second): on first use only.
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimators
        return getattr(estimators, name)
    if name == "to_onnx":   # fastmlp.onnx registers converters with skl2onnx, which imports scikit-learn
        from .onnx import to_onnx
        return to_onnx
    if name == "distributed":   # data-parallel training on Dask, which it imports only when fit is called
        import importlib
        return importlib.import_module(".distributed", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
