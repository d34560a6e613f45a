"""How many threads the compiled kernels use.

The default is the number of cores this process may run on; the environment variable
FASTMLP_NUM_THREADS or ``set_num_threads`` changes it. Results are bit-identical whatever
the thread count: threads split the output of a product, never a sum.
"""
import numbers
import os
import warnings

_num_threads = None

# More threads than any machine has cores is a mistake, not a request for a million workspaces.
MAX_THREADS = 1024
# A team of the compiled kernels has at most this many threads (FM_TEAM_MAX in csrc/fm_team.h), so a
# network needs no more workspaces than this, whatever the thread count.
TEAM_MAX = 64


# The values of FASTMLP_ISA that csrc/fm_isa.c knows (it ignores any other).
ISA_LEVELS = ("avx512", "avx2", "baseline", "reference")


def warn_unknown_isa():
    """A RuntimeWarning when FASTMLP_ISA is set to a level the kernels do not know: they would
    run at the fastest level without a word, and a benchmark would measure what it did not ask for."""
    value = os.environ.get("FASTMLP_ISA", "")
    if value and value not in ISA_LEVELS:
        warnings.warn(f"FASTMLP_ISA={value!r} is none of {', '.join(ISA_LEVELS)}: ignored, the kernels "
                      "run at the fastest level this CPU runs", RuntimeWarning, stacklevel=3)


def check_num_threads(n, name="number of threads"):
    """``n`` as an int in 1..MAX_THREADS, else a ValueError naming ``name`` and the value."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_THREADS:
        shown = f"an integer of {len(str(abs(int(n))))} digits" if isinstance(n, numbers.Integral) and \
            abs(int(n)) >= 10**18 else repr(n)
        raise ValueError(f"{name} must be an integer >= 1 and <= {MAX_THREADS}, got {shown}")
    return int(n)


def _default_num_threads():
    value = os.environ.get("FASTMLP_NUM_THREADS", "")
    if value:
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"FASTMLP_NUM_THREADS must be a positive integer, got {value!r}") from None
        return check_num_threads(count, "FASTMLP_NUM_THREADS")
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


def kernel_threads():
    """The thread count a compiled network is built for: ``get_num_threads()``, at most a team's size."""
    return min(get_num_threads(), TEAM_MAX)


def set_num_threads(n):
    """Use ``n`` threads (1 <= n <= 1024) in the compiled kernels from now on.

    Raises
    ------
    ValueError
        If ``n`` is not an integer in that range (bools and floats included).
    """
    global _num_threads
    _num_threads = check_num_threads(n)
