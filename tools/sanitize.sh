#!/usr/bin/env bash
# Run the kernel tests against a debug build: Cython bounds checking on (FASTMLP_CYTHON_DEBUG=1)
# and every C file compiled with AddressSanitizer and UndefinedBehaviorSanitizer (the C tests also
# with ThreadSanitizer).
#
#   tools/sanitize.sh              # from the repository root; uses $PYTHON or python3
#   PYTHON=/tmp/venv/bin/python tools/sanitize.sh
#   KEEP=1 tools/sanitize.sh       # keep the scratch directory (printed at the start)
#
# Nothing in the source tree or in the Python environment changes: the sources are copied to a
# scratch directory (cythonize would otherwise rewrite fastmlp/_kernels.c in place with bounds
# checking on, and a later `pip install -e .` would silently reuse it), a wheel is built there
# and unpacked with `pip install --target` into a directory that goes first on PYTHONPATH. The
# environment must already hold what building needs (setuptools, Cython, NumPy) and pytest.
#
# Steps, each of which must pass:
#   1. pytest tests/test_kernels.py tests/test_gradients.py tests/test_fit.py tests/test_training.py
#      (teams of 1-3 threads among them), run from outside
#      the source tree under LD_PRELOAD=libasan (Python itself is not built with ASan, and the
#      ASan runtime must be the first library loaded);
#   2. make -C csrc test, the C-only tests, with the same sanitizers (and leak checking);
#   3. the same C tests under ThreadSanitizer: the team pool's atomics and barriers, with teams of
#      up to 64 threads and two callers at once.
# Any ASan or UBSan report aborts the run (-fno-sanitize-recover, halt_on_error).
set -euo pipefail

PYTHON=${PYTHON:-python3}
case "$PYTHON" in   # a relative path (.venv/bin/python) must survive the cd into the scratch copy
    */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;;
esac
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/fastmlp-sanitize.XXXXXX")
if [ -z "${KEEP:-}" ]; then
    trap 'rm -rf "$SCRATCH"' EXIT
fi
echo "sanitize: scratch directory $SCRATCH"

SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
started=$SECONDS

# A clean copy: the files git tracks plus new ones it does not ignore (build products are ignored).
mkdir -p "$SCRATCH/src"
cd "$SOURCE"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    if [ -e "$file" ]; then cp --parents "$file" "$SCRATCH/src"; fi   # skip files deleted but not yet committed
done

echo "sanitize: building the wheel (FASTMLP_CYTHON_DEBUG=1, $SANITIZE)"
FASTMLP_CYTHON_DEBUG=1 CFLAGS="$SANITIZE" LDFLAGS="$SANITIZE" \
    "$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$SCRATCH/wheel" "$SCRATCH/src"
"$PYTHON" -m pip install --quiet --no-deps --target "$SCRATCH/site" "$SCRATCH"/wheel/fastmlp-*.whl

echo "sanitize: kernel tests under ASan + UBSan"
cd "$SCRATCH"   # outside the source tree, so `import fastmlp` finds only the debug build
LIBASAN=$(gcc -print-file-name=libasan.so)
tested=$(PYTHONPATH="$SCRATCH/site" LD_PRELOAD="$LIBASAN" "$PYTHON" -c 'import fastmlp; print(fastmlp.__file__)')
case "$tested" in
    "$SCRATCH/site/"*) echo "sanitize: testing $tested" ;;
    *) echo "sanitize: expected the debug build, but Python imports $tested" >&2; exit 1 ;;
esac
PYTHONPATH="$SCRATCH/site" LD_PRELOAD="$LIBASAN" "$PYTHON" -m pytest -q -p no:cacheprovider \
    -p no:benchmark "$SCRATCH/src/tests/test_kernels.py" "$SCRATCH/src/tests/test_gradients.py" \
    "$SCRATCH/src/tests/test_fit.py" "$SCRATCH/src/tests/test_training.py"

echo "sanitize: make -C csrc test under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 make --no-print-directory -C "$SCRATCH/src/csrc" test \
    CFLAGS="-O1 -g -std=gnu11 -pthread -Wall -Wextra $SANITIZE"

echo "sanitize: make -C csrc test under ThreadSanitizer"
make --no-print-directory -C "$SCRATCH/src/csrc" clean test \
    CFLAGS="-O1 -g -std=gnu11 -pthread -Wall -Wextra -fsanitize=thread"

echo "sanitize: all clean in $((SECONDS - started)) s"
