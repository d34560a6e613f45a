"""The configurations C1-C4 and the machine description, for the benchmark scripts of this folder.

They live in ``fastmlp.bench`` (the ``fastmlp bench`` command uses them too); this module only
re-exports them for ``bench_memory.py``.
"""
from fastmlp.bench import CONFIGS, THREAD_VARIABLES, Config, blas_info, machine_info  # noqa: F401
