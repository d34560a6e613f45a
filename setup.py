"""Build the compiled kernels: one extension, fastmlp._kernels, from Cython plus the C in csrc/.

Environment switches (never on by default):
  FASTMLP_NATIVE=1        add -march=native (fastest on the build machine, not portable)
  FASTMLP_CYTHON_DEBUG=1  Cython bounds checking and -O0 -g, for hunting a segfault
  FASTMLP_NO_OPENMP=1     build without OpenMP (single-threaded kernels)
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


debug = flag("FASTMLP_CYTHON_DEBUG")
compile_args = ["-O0", "-g"] if debug else ["-O3"]
compile_args += ["-std=gnu11", "-fno-strict-aliasing"]
link_args = []
if flag("FASTMLP_NATIVE"):
    compile_args.append("-march=native")
if not flag("FASTMLP_NO_OPENMP"):
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

c_sources = sorted(
    path for path in glob.glob("csrc/*.c")
    if not os.path.basename(path).startswith(("test_", "bench_"))
)

extension = Extension(
    "fastmlp._kernels",
    sources=["fastmlp/_kernels.pyx"] + c_sources,
    include_dirs=["csrc", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(
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
