"""How many threads the compiled kernels use.

The default is the number of cores this process may run on; the environment variable
FASTMLP_NUM_THREADS or ``set_num_threads`` changes it. Results are bit-identical whatever
the thread count: threads split the output of a product, never a sum.
"""
import os

_num_threads = None


def _default_num_threads():
    value = os.environ.get("FASTMLP_NUM_THREADS", "")
    if value:
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"FASTMLP_NUM_THREADS must be a positive integer, got {value!r}") from None
        if count < 1:
            raise ValueError(f"FASTMLP_NUM_THREADS must be a positive integer, got {value!r}")
        return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def get_num_threads():
    """The number of threads the compiled kernels use."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_num_threads()
    return _num_threads


def set_num_threads(n):
    """Use ``n`` threads (>= 1) in the compiled kernels from now on."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"number of threads must be an integer >= 1, got {n!r}")
    _num_threads = n
