"""Collect the pytest-benchmark suites in ``bench_*.py`` files of this folder.

``pyproject.toml`` sets ``testpaths = ["tests"]``, so a plain ``pytest`` never comes here; run
``pytest benchmarks --benchmark-only`` to time the kernels.
"""
import pytest


def pytest_collect_file(file_path, parent):
    if file_path.name.startswith("bench_") and file_path.suffix == ".py":
        return pytest.Module.from_parent(parent, path=file_path)
    return None
