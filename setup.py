"""Build the compiled kernels: one extension, fastmlp._kernels, from Cython plus the C in csrc/.

Environment switches (never on by default):
  FASTMLP_NATIVE=1        add -march=native (fastest on the build machine, not portable: for a
                          source build you run where you build, never for a wheel you share)
  FASTMLP_CYTHON_DEBUG=1  Cython bounds checking and -O0 -g, for hunting a segfault

The flags are recorded in the module (FASTMLP_BUILD_FLAGS, FASTMLP_BUILT_WITH), so that
fastmlp.show_config() reports how it was built; nothing is written into the source tree.
"""
import glob
import os

import Cython
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


def c_string(text):
    """A C string literal for a -D define (the compiler is run without a shell)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


debug = flag("FASTMLP_CYTHON_DEBUG")
compile_args = ["-O0", "-g"] if debug else ["-O3", "-g0"]   # -g0: no debug info in wheels
compile_args += ["-std=gnu11", "-fno-strict-aliasing"]
if flag("FASTMLP_NATIVE"):
    compile_args.append("-march=native")

c_sources = sorted(
    path for path in glob.glob("csrc/*.c")
    if not os.path.basename(path).startswith(("test_", "bench_"))
)

extension = Extension(
    "fastmlp._kernels",
    sources=["fastmlp/_kernels.pyx"] + c_sources,
    include_dirs=["csrc", numpy.get_include()],
    depends=sorted(glob.glob("csrc/*.h")),   # an edited header rebuilds the extension
    define_macros=[
        ("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
        # Built against NumPy 2, the module also loads under NumPy >= 1.25.
        ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION"),
        ("FASTMLP_BUILD_FLAGS", c_string(" ".join(compile_args))),
        ("FASTMLP_BUILT_WITH", c_string(f"NumPy {numpy.__version__}, Cython {Cython.__version__}")),
    ],
    extra_compile_args=compile_args,
)

setup(
    options={"build_ext": {"parallel": os.cpu_count() or 1}},   # the C files compile in parallel
    ext_modules=cythonize(
        [extension],
        language_level=3,
        compiler_directives={
            "boundscheck": debug,
            "cdivision": True,
            "initializedcheck": debug,
        },
    ),
)
