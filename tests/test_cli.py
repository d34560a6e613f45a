"""The command line: the main job runs, user mistakes end in one line and exit status 2."""
import re
import subprocess
import sys

import pytest

from fastmlp.__main__ import main


def test_train_small_dataset_prints_accuracy_and_time(capsys):
    assert main(["train", "--dataset", "fashion-mnist-small", "--epochs", "15", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "784-16-16-10 sigmoid network" in out
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert 0.7 < accuracy <= 1.0          # 15 epochs on 5,000 images: far above chance (0.1)
    assert re.search(r"training time \d+\.\d+ s", out)


def test_check_grad_passes(capsys):
    assert main(["check-grad", "--activation", "tanh", "--loss", "log_loss"]) == 0
    assert "gradient check passed" in capsys.readouterr().out


def test_info_names_kernel_level(capsys):
    assert main(["info"]) == 0
    assert re.search(r"GEMM kernels: (avx512|avx2|baseline)", capsys.readouterr().out)


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "fashion-mnist-small", "--epochs", "0"], "epochs must be >= 1"),
    (["train", "--dataset", "no-such-data"], "unknown dataset"),
    (["train", "--dataset", "fashion-mnist-small", "--activation", "swish"], "activation must be one of"),
])
def test_user_mistakes_are_one_line_and_status_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "fastmlp", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("fastmlp ")


def test_output_writes_a_loadable_model(tmp_path, capsys):
    path = tmp_path / "seed.npz"
    assert main(["train", "--dataset", "fashion-mnist-small", "--epochs", "1", "--threads", "1",
                 "--output", str(path)]) == 0
    import fastmlp
    assert fastmlp.load(path).layer_sizes == (784, 16, 16, 10)


def test_interrupt_exits_130_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import fastmlp.model

    class Interrupting(fastmlp.model.BACKENDS["compiled"]):
        def train_batch(self, start, stop, learning_rate):
            raise KeyboardInterrupt
    monkeypatch.setitem(fastmlp.model.BACKENDS, "compiled", Interrupting)
    path = tmp_path / "never.npz"
    assert main(["train", "--dataset", "fashion-mnist-small", "--epochs", "2", "--output", str(path)]) == 130
    assert not path.exists()
    assert "interrupted in epoch 1" in capsys.readouterr().err
