"""The C in csrc/ stands on its own: `make -C csrc test` builds its tests with a C compiler only.

Marked slow (it compiles every kernel level): CI runs it after the default suite, `pytest -m slow`."""
import pathlib
import shutil
import subprocess

import pytest

CSRC = pathlib.Path(__file__).resolve().parent.parent / "csrc"
needs_make = pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None,
                                reason="needs make and gcc")
pytestmark = pytest.mark.slow
# Only a guard against a hang: the build and the tests take about a minute on a 2-core machine.
HANG_TIMEOUT = 30 * 60


def make(folder, *targets):
    """Run make on targets in a copy of csrc/ in folder (out of tree, so the source folder stays clean)."""
    for path in CSRC.iterdir():
        if path.suffix in (".c", ".h") or path.name == "Makefile":
            shutil.copy(path, folder)
    return subprocess.run(["make", "-C", str(folder), *targets], capture_output=True, text=True,
                          timeout=HANG_TIMEOUT)


@needs_make
def test_c_gemm_tests_pass(tmp_path):
    result = make(tmp_path, "test")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " 0 failed" in result.stdout


@needs_make
def test_c_benchmarks_build_without_warnings(tmp_path):
    # `make -C csrc bench` is how RESULTS.md's kernel figures are re-run: it must keep building.
    result = make(tmp_path, "bench_csrc", "bench_activations")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning" not in result.stderr, result.stderr[-3000:]
