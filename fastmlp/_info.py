"""What this fastmlp is and how it runs: ``fastmlp.show_config()`` and ``fastmlp info``.

The build half (compiler, flags) is recorded in the compiled module when it is built;
the run half (instruction-set level, threads) is what this process uses now.
"""
import os
import platform
import sys

import numpy as np

from . import _config, _kernels


def config():
    """The report of ``show_config`` as a dict of sections, each a dict of name: text."""
    from . import __version__

    build = _kernels.build_info()
    isa = os.environ.get("FASTMLP_ISA", "")
    threads = os.environ.get("FASTMLP_NUM_THREADS", "")
    return {
        "fastmlp": {
            "version": __version__,
            "location": os.path.dirname(os.path.abspath(__file__)),
        },
        "python": {
            "version": f"{platform.python_implementation()} {platform.python_version()}",
            "numpy": np.__version__,
            "platform": f"{platform.system()} {platform.machine()}",
        },
        "build": {
            "compiler": build["compiler"],
            "flags": build["flags"],
            "built with": build["built_with"],
        },
        "kernels": {
            "GEMM kernels": build["gemm_isa"],
            "activation kernels": build["activation_isa"],
            "compiled levels": ", ".join(build["compiled_levels"]),
            "cpu supports": ", ".join(build["cpu_levels"]),
            "FASTMLP_ISA": (isa or "unset") + f" ({', '.join(_config.ISA_LEVELS)}: caps the level)",
        },
        "threads": {
            "count": str(_config.get_num_threads()),
            "workers started": str(_kernels.team_stats()["workers"]),
            "FASTMLP_NUM_THREADS": threads or "unset",
            "change with": "fastmlp.set_num_threads(n) or FASTMLP_NUM_THREADS=n",
        },
    }


def show_config(file=None):
    """Print fastmlp's version, Python and NumPy, build flags, kernel levels and threads.

    The kernel level in use is the fastest this CPU runs, capped by the environment variable
    FASTMLP_ISA (read once, at the first kernel call); the thread count comes from
    FASTMLP_NUM_THREADS or ``fastmlp.set_num_threads``.
    """
    file = sys.stdout if file is None else file
    for section, entries in config().items():
        print(f"{section}:", file=file)
        for name, value in entries.items():
            print(f"  {name}: {value}", file=file)
