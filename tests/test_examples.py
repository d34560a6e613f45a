"""Every script in examples/ runs (with few epochs), exits 0 and prints what it promises."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FASHION_MNIST_DIR

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name, *args):
    # One thread: on a busy machine threads that wait for each other make tiny runs slow.
    env = dict(os.environ, FASTMLP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True,
                            text=True, env=env, timeout=1200)   # only a guard against a hang
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_example_is_tested():
    tested = {"seed_network.py", "welch_labs.py", "nielsen_network.py", "gradient_check.py", "save_and_load.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_seed_network(tmp_path):
    # The small shipped set (used when Debian's dataset-fashion-mnist is not installed) has a twelfth
    # of the steps per epoch: 0.32 after 2 epochs, 0.73 after 10.
    epochs = 2 if FASHION_MNIST_DIR.exists() else 10
    out = run("seed_network.py", "--epochs", epochs)
    assert re.search(r"data: fashion-mnist(-small)?, \d+ training and \d+ test images", out)
    assert f"epoch {epochs}/{epochs}: loss" in out
    accuracy = float(re.search(r"network 784-16-16-10: test accuracy (\d\.\d+)", out).group(1))
    assert accuracy > 0.5                                  # chance is 0.1


def test_seed_network_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    out = run("seed_network.py", "--epochs", 1, "--plot", tmp_path / "pictures")
    names = {"history.png", "confusion.png", "first_layer.png", "misclassified.png"}
    assert {path.name for path in (tmp_path / "pictures").iterdir()} == names
    assert all(name in out for name in names)


def test_welch_labs():
    out = run("welch_labs.py", "--epochs", 500)
    assert re.search(r"gradient check: largest relative error \S+ \(passed\)", out)
    first, last = map(float, re.search(r"cost (\S+) in epoch 1, (\S+) in epoch 500", out).groups())
    assert last < first / 10
    predicted = [float(value) for value in re.findall(r"predicted (\d+\.\d)", out)]
    assert len(predicted) == 3 and all(60 < value < 100 for value in predicted)


def test_nielsen_network():
    out = run("nielsen_network.py", "--epochs", 1)
    correct, total = map(int, re.search(r"Epoch 0: (\d+) / (\d+)", out).groups())
    assert correct > total / 2


def test_gradient_check():
    out = run("gradient_check.py")
    assert out.count(" ok") == 8 and "all gradient checks passed" in out


def test_save_and_load(tmp_path):
    out = run("save_and_load.py", "--epochs", 1, "--out", tmp_path / "model.npz")
    assert (tmp_path / "model.npz").is_file()
    assert "identical outputs: True" in out
    before, after = re.search(r"test accuracy (\S+) before, (\S+) after", out).groups()
    assert before == after
