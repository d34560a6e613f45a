"""The C in csrc/ stands on its own: `make -C csrc test` builds its tests with a C compiler only."""
import pathlib
import shutil
import subprocess

import pytest

CSRC = pathlib.Path(__file__).resolve().parent.parent / "csrc"


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None, reason="needs make and gcc")
def test_c_gemm_tests_pass(tmp_path):
    # Build out of tree so the source folder stays clean.
    for path in CSRC.iterdir():
        if path.suffix in (".c", ".h") or path.name == "Makefile":
            shutil.copy(path, tmp_path)
    result = subprocess.run(["make", "-C", str(tmp_path), "test"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " 0 failed" in result.stdout
