"""Build the compiled kernels: one extension, fastmlp._kernels, from Cython plus the C in csrc/.

Environment switches:
  FASTMLP_NATIVE=1        add -march=native (fastest on the build machine, not portable: for a
                          source build you run where you build, never for a wheel you share)
  FASTMLP_CYTHON_DEBUG=1  Cython bounds checking and -O0 -g, for hunting a segfault
  FASTMLP_LEVELS=all|host the x86 kernel levels to compile: all (the default for a wheel, which may
                          run anywhere) or only those this machine runs (the default for an editable
                          install, `pip install -e .`, which runs where it is built: a fifth less
                          compile time on a CPU without AVX-512)

The flags are recorded in the module (FASTMLP_BUILD_FLAGS, FASTMLP_BUILT_WITH), so that
fastmlp.show_config() reports how it was built; nothing is written into the source tree.
"""
import glob
import os
from concurrent.futures import ThreadPoolExecutor

import Cython
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


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


PYX, GENERATED_C = "fastmlp/_kernels.pyx", "fastmlp/_kernels.c"
CYTHON_DIRECTIVES = {"boundscheck": debug, "cdivision": True, "initializedcheck": debug}


def source_args(path):
    """Flags for one source file on top of compile_args (benchmarks/RESULTS.md, "Build time", has the
    measurements). The micro-kernels are unrolled by hand (pragmas, one copy per tile shape): at -O2 they
    compile in half the time of -O3 and run as fast; the packing loops likewise. The Cython module is
    mostly Python glue: -O2 compiles it in two thirds of the time, and its few array loops (integer
    pixels to floats, the finiteness check) stay vectorised with -O3's cost model."""
    if debug:
        return []
    if path == GENERATED_C:
        return ["-O2", "-fvect-cost-model=dynamic"]
    return ["-O2"] if ("microkernel" in os.path.basename(path) or "fm_pack" in path) else []


# The files that take longest to compile, longest first (the baseline micro-kernels need the most
# instructions per tile): they start first, so that no long one starts last.
SLOWEST = ("microkernel_baseline", "_kernels", "microkernel")


def levels_left_out(editable):
    """-D flags that leave out the x86 kernel levels (csrc/fm_isa.h) this CPU cannot run, when only
    those it runs are to be compiled (FASTMLP_LEVELS, editable by default) and /proc/cpuinfo says."""
    wanted = os.environ.get("FASTMLP_LEVELS", "host" if editable else "all")
    if wanted not in ("all", "host"):
        raise SystemExit(f"FASTMLP_LEVELS must be 'all' or 'host', not {wanted!r}")
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), None)
    except OSError:
        flags = None
    if wanted == "all" or flags is None:   # not x86 Linux: the x86 levels compile to nothing anyway
        return []
    return ([("FM_WITHOUT_AVX512", None)] if "avx512f" not in flags else []) + \
           ([("FM_WITHOUT_AVX2", None)] if not {"avx2", "fma"} <= set(flags) else [])


def compile_order(path):
    return next((rank for rank, part in enumerate(SLOWEST) if part in path), len(SLOWEST))


def translate_cython():
    """fastmlp/_kernels.pyx (and its .pxi files) into fastmlp/_kernels.c, unless that is up to date."""
    cythonize([Extension("fastmlp._kernels", [PYX], include_dirs=["csrc", numpy.get_include()])],
              language_level=3, compiler_directives=CYTHON_DIRECTIVES)


class ParallelBuildExt(build_ext):
    """build_ext that compiles an extension's C files in parallel, one per core (setuptools' own
    --parallel only builds several extensions at once, and there is one), and translates the
    Cython module on one of those cores while the others compile csrc/."""

    def build_extensions(self):
        compiler = self.compiler
        for ext in self.extensions:
            ext.define_macros += levels_left_out(getattr(self, "editable_mode", False))

        def compile(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                    extra_preargs=None, extra_postargs=None, depends=None):
            macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
                output_dir, macros, include_dirs, sources, depends, extra_postargs)
            cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)

            def compile_one(obj):
                source, ext = build[obj]
                if source == GENERATED_C:
                    translated.result()
                compiler._compile(obj, source, ext, cc_args, extra_postargs + source_args(source), pp_opts)

            slowest_first = sorted((obj for obj in objects if obj in build),
                                   key=lambda obj: compile_order(build[obj][0]))
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                translated = pool.submit(translate_cython)   # first in the queue: nothing waits for it in vain
                list(pool.map(compile_one, slowest_first))
            return objects

        compiler.compile = compile
        super().build_extensions()


# What source_args adds, as show_config reports it.
per_file_flags = "" if debug else (f" (Cython module {' '.join(source_args(GENERATED_C))}; "
                                   f"micro-kernels and packing {' '.join(source_args('csrc/fm_pack.c'))})")

extension = Extension(
    "fastmlp._kernels",
    sources=[GENERATED_C] + c_sources,
    include_dirs=["csrc", numpy.get_include()],
    # an edited header or Cython file rebuilds the extension
    depends=sorted(glob.glob("csrc/*.h") + glob.glob("fastmlp/*.pyx") + glob.glob("fastmlp/*.pxi")),
    define_macros=[
        ("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
        # Built against NumPy 2, the module also loads under NumPy >= 1.25.
        ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION"),
        ("FASTMLP_BUILD_FLAGS", c_string(" ".join(compile_args) + per_file_flags)),
        ("FASTMLP_BUILT_WITH", c_string(f"NumPy {numpy.__version__}, Cython {Cython.__version__}")),
    ],
    extra_compile_args=compile_args,
)

setup(cmdclass={"build_ext": ParallelBuildExt}, ext_modules=[extension])
