"""The command line: every command runs on small data made here, user mistakes end in one line
and exit status 2."""
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import fastmlp
from fastmlp import datasets
from fastmlp import __main__ as cli
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
    out = capsys.readouterr().out
    assert re.search(r"GEMM kernels: (avx512|avx2|baseline)", out)
    # every level this CPU runs is compiled in (an editable build leaves out only those it cannot run)
    compiled = re.search(r"compiled levels: (.*)", out).group(1).split(", ")
    runs = re.search(r"cpu supports: (.*)", out).group(1).split(", ")
    assert set(runs) <= set(compiled) and "baseline" in compiled


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
    assert fastmlp.load(path).layer_sizes == (784, 16, 16, 10)


def test_interrupt_exits_130_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import fastmlp.model

    class Interrupting(fastmlp.model.BACKENDS["compiled"]):
        def train_batch(self, start, stop, learning_rate):
            raise KeyboardInterrupt
    monkeypatch.setitem(fastmlp.model.BACKENDS, "compiled", Interrupting)
    # The pictures would come after training: matplotlib is never imported, installed or not.
    monkeypatch.setattr(cli, "have_matplotlib", lambda: True)
    path, pictures = tmp_path / "never.npz", tmp_path / "pictures"
    assert main(["train", "--dataset", "fashion-mnist-small", "--epochs", "2", "--output", str(path),
                 "--plot", str(pictures)]) == 130
    assert not path.exists() and not pictures.exists()
    assert "interrupted in epoch 1" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# train on files, evaluate, predict: small data made here
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def blobs(tmp_path):
    """200 rows, 4 features, 3 classes, as a CSV with a header and as a .npz without a test split."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    X = rng.standard_normal((200, 4)) + 2.0 * np.eye(3, 4)[y]    # each class shifted along one axis
    csv_path, npz_path = tmp_path / "blobs.csv", tmp_path / "blobs.npz"
    np.savetxt(csv_path, np.column_stack([X, y]), delimiter=",", header="a,b,c,d,label", comments="")
    np.savez(npz_path, X=X, y=y)
    return X, y, csv_path, npz_path


FAST = ["--hidden", "8", "--activation", "tanh", "--loss", "log_loss", "--learning-rate", "0.5",
        "--batch-size", "20", "--epochs", "20", "--threads", "1"]


def accuracy(out):
    return float(re.search(r"test accuracy (\d\.\d+)", out).group(1))


def test_train_on_a_csv_holds_out_a_stratified_tenth(blobs, capsys):
    X, y, csv_path, _ = blobs
    assert main(["train", "--dataset", str(csv_path), *FAST]) == 0
    out = capsys.readouterr().out
    assert "4-8-3 tanh network" in out
    n_test = sum(int(np.ceil(0.1 * np.sum(y == c))) for c in range(3))     # a tenth of each class, rounded up
    assert f"({200 - n_test} training samples, {n_test} held out for testing)" in out
    assert accuracy(out) > 0.7                # well-separated blobs; chance is about 1/3


def test_npz_with_a_test_split_and_every_training_option(blobs, tmp_path, capsys):
    X, y, _, _ = blobs
    path = tmp_path / "split.npz"
    np.savez(path, X=X[:150], y=y[:150], X_test=X[150:], y_test=y[150:])
    assert main(["train", "--dataset", str(path), "--optimizer", "nesterov", "--momentum", "0.9", "--l2", "1e-4",
                 "--dropout", "0.1", "--seed", "3", "--dtype", "float64", "--backend", "numpy",
                 "--early-stopping", "--validation-fraction", "0.2", *FAST]) == 0
    out = capsys.readouterr().out
    assert "(150 training and 50 test samples)" in out and "validation: 0.2 of the training data" in out
    assert accuracy(out) > 0.7


def test_regression_csv_reports_r2(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    path = tmp_path / "line.csv"
    np.savetxt(path, np.column_stack([X, X @ [0.5, -0.25, 0.1] + 0.05]), delimiter=",")
    assert main(["train", "--dataset", str(path), "--hidden", "", "--activation", "identity",
                 "--learning-rate", "0.1", "--batch-size", "10", "--epochs", "20", "--threads", "1"]) == 0
    assert float(re.search(r"test R² (-?\d\.\d+)", capsys.readouterr().out).group(1)) > 0.99


def test_evaluate_and_predict_round_trip(blobs, tmp_path, capsys):
    X, y, csv_path, npz_path = blobs
    model_path = tmp_path / "model.npz"
    assert main(["train", "--dataset", str(csv_path), *FAST, "--output", str(model_path)]) == 0
    trained = accuracy(capsys.readouterr().out)
    model = fastmlp.load(model_path)

    # The same held-out rows, from the CSV or from the .npz of the same data.
    for dataset in (csv_path, npz_path):
        assert main(["evaluate", str(model_path), "--dataset", str(dataset)]) == 0
        out = capsys.readouterr().out
        assert accuracy(out) == trained
        assert re.search(r"mean cost \d+\.\d+ on \d+ test samples", out)

    features = tmp_path / "features.csv"
    np.savetxt(features, X[:5], delimiter=",")
    assert main(["predict", str(model_path), str(features)]) == 0
    assert capsys.readouterr().out.split() == [str(label) for label in model.predict(X[:5])]

    output = tmp_path / "proba.csv"
    assert main(["predict", str(model_path), str(npz_path), "--proba", "--output", str(output)]) == 0
    assert "200 predictions written" in capsys.readouterr().out
    lines = output.read_text().splitlines()
    assert lines[0] == "0,1,2" and len(lines) == 201
    proba = np.loadtxt(output, delimiter=",", skiprows=1)
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_mnist_nielsen_validates_on_its_own_split(monkeypatch, capsys):
    X_train, y_train, X_test, y_test = datasets.load_small_fashion_mnist()
    loaded = ((X_train[:1000], y_train[:1000]), (X_train[1000:1500], y_train[1000:1500]), (X_test, y_test))
    monkeypatch.setattr(datasets, "load_mnist_nielsen", lambda download=False: loaded)
    assert main(["train", "--dataset", "mnist-nielsen", "--epochs", "1", "--threads", "1", "--early-stopping"]) == 0
    out = capsys.readouterr().out
    assert "Nielsen's 50,000/10,000/10,000 split), 1000 training and 1000 test images" in out
    assert "validation: the 500 validation images" in out


def png_pixels(path):
    image = pytest.importorskip("matplotlib.image")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return image.imread(path)


def test_plot_writes_non_blank_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    directory = tmp_path / "pictures"
    assert main(["train", "--dataset", "fashion-mnist-small", "--epochs", "1", "--threads", "1",
                 "--plot", str(directory)]) == 0
    names = ["history.png", "first_layer.png", "confusion_matrix.png", "misclassified.png"]
    assert f"pictures written to {directory}: {', '.join(names)}" in capsys.readouterr().out
    for name in names:
        pixels = png_pixels(directory / name)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels[..., :3].std() > 0.01, name


def test_plot_without_matplotlib_is_one_line_before_training(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "have_matplotlib", lambda: False)
    assert main(["train", "--dataset", "fashion-mnist-small", "--plot", str(tmp_path / "p")]) == 2
    captured = capsys.readouterr()
    assert captured.err == "fastmlp: error: --plot needs matplotlib: pip install fastmlp[plot]\n"
    assert captured.out == "" and not (tmp_path / "p").exists()


def test_bench_times_fastmlp_against_the_numpy_twin(monkeypatch, capsys):
    monkeypatch.setattr(datasets, "load_fashion_mnist_or_small",
                        lambda: (*datasets.load_small_fashion_mnist(), "fashion-mnist-small"))
    cores = os.sched_getaffinity(0)
    assert main(["bench", "--config", "C1", "--epochs", "1", "--warmup", "0", "--samples", "300",
                 "--peers", "numpy", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    # timed on one core, and the process may use all of its cores again afterwards
    assert re.search(rf"1 thread\(s\) on core\(s\) {min(cores)}$", out, re.MULTILINE)
    assert os.sched_getaffinity(0) == cores
    assert "300 training and 1000 test images" in out and "note: Fashion-MNIST is not installed" in out
    assert re.search(r"median s/epoch .* vs NumPy twin", out)
    assert re.search(r"^C1 +1 +fastmlp +\d+\.\d{3} +\d+% +\d+\.\d\d +\d+\.\d\d +\d\.\d{4}$", out, re.MULTILINE)
    assert re.search(r"^C1 +1 +numpy twin +\d+\.\d{3} +\d+% +1\.00 ", out, re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# User mistakes: one line, exit status 2
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path, blobs):
    """name: path of small files, good and bad, and a model trained on the blobs."""
    X, y, csv_path, npz_path = blobs
    paths = {"blobs.csv": csv_path, "blobs.npz": npz_path}
    for name, text in {"word.csv": "a,b,label\n1,2,0\n3,x,1\n", "ragged.csv": "1,2,0\n3,1\n",
                       "one-column.csv": "1\n2\n", "empty.csv": "a,b\n", "text.npz": "not an archive"}.items():
        paths[name] = tmp_path / name
        paths[name].write_text(text)
    paths["no-y.npz"] = tmp_path / "no-y.npz"
    np.savez(paths["no-y.npz"], X=X)
    paths["wide.csv"] = tmp_path / "wide.csv"
    np.savetxt(paths["wide.csv"], np.ones((2, 7)), delimiter=",")
    paths["model.npz"] = tmp_path / "model.npz"
    fastmlp.save(fastmlp.fit(X, y, hidden=(4,), epochs=1, seed=0), paths["model.npz"])
    paths["regression.npz"] = tmp_path / "regression.npz"
    fastmlp.save(fastmlp.fit(X, X[:, 0], hidden=(4,), epochs=1, learning_rate=0.1, seed=0), paths["regression.npz"])
    paths["missing"] = tmp_path / "missing.csv"
    return {name: str(path) for name, path in paths.items()}


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "{missing}"], "no such file: "),
    (["train", "--dataset", "{word.csv}"], "word.csv, line 3: 'x' is not a number"),
    (["train", "--dataset", "{ragged.csv}"], "ragged.csv, line 2: 2 values, but 3 on line 1"),
    (["train", "--dataset", "{one-column.csv}"], "it needs features and, last, the label"),
    (["train", "--dataset", "{empty.csv}"], "has no rows of numbers"),
    (["train", "--dataset", "{text.npz}"], "text.npz is not a .npz archive"),
    (["train", "--dataset", "{no-y.npz}"], "has no array 'y' (it holds: X)"),
    (["train", "--dataset", "{blobs.csv}", "--hidden", "8,x"], "expected comma-separated layer sizes"),
    (["train", "--dataset", "{blobs.csv}", "--learning-rate", "-1"], "learning_rate must be finite and > 0"),
    (["train", "--dataset", "{blobs.csv}", "--optimizer", "rmsprop"], "optimizer must be one of"),
    (["train", "--dataset", "{blobs.csv}", "--validation-fraction", "1.5"], "validation_fraction must be"),
    (["train", "--dataset", "{blobs.csv}", "--threads", "0"], "number of threads must be an integer >= 1"),
    (["train", "--dataset", "{blobs.csv}", "--plot", "{blobs.npz}"], "--plot needs a folder, and "),
    (["train", "--dataset", "mnist-nielsen"], "--download"),
    (["train", "--epochs", "ten"], "argument --epochs: invalid int value: 'ten' (see fastmlp train --help)"),
    (["train", "--dtype", "float16"], "argument --dtype: invalid choice"),
    (["fly"], "argument COMMAND: invalid choice: 'fly'"),
    ([], "the following arguments are required: COMMAND"),
    (["evaluate", "{missing}"], "no such model file: "),
    (["evaluate", "{blobs.npz}", "--dataset", "{blobs.csv}"], "is not a fastmlp model file"),
    (["evaluate", "{model.npz}", "--dataset", "fashion-mnist-small"], "X has 784 features, but the model expects 4"),
    (["predict", "{model.npz}", "{wide.csv}"], "X has 7 features, but the model expects 4"),
    (["predict", "{model.npz}", "{missing}"], "no such file: "),
    (["predict", "{model.npz}", "{blobs.csv}"], "X has 5 features, but the model expects 4"),
    (["predict", "{regression.npz}", "{blobs.npz}", "--proba"], "--proba needs a classification model"),
    (["predict", "{model.npz}"], "the following arguments are required: INPUT"),
    (["bench", "--config", "C5"], "--config takes a comma-separated list from C1,C2,C3,C4, got 'C5'"),
    (["bench", "--peers", "tensorflow"], "--peers takes a comma-separated list from numpy,torch,sklearn,jax"),
    (["bench", "--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_file_and_option_mistakes_are_one_line_and_status_2(capsys, monkeypatch, files, argv, message):
    monkeypatch.setenv("FASTMLP_CACHE", files["missing"])       # MNIST is never found
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    monkeypatch.setattr(datasets, "_SYSTEM_DATA_DIR", datasets.Path(files["missing"]))
    assert main([re.sub(r"\{(.+)\}", lambda match: files[match[1]], arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastmlp: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err


def test_importing_without_the_compiled_kernels_fails_loudly(tmp_path):
    # A copy of the Python sources without the built extension: no silent fallback to NumPy.
    import shutil
    package = tmp_path / "fastmlp"
    shutil.copytree(pathlib.Path(fastmlp.__file__).parent, package,
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # -S: no site-packages, so neither an installed nor an editable fastmlp can answer instead
    result = subprocess.run([sys.executable, "-S", "-c", "import fastmlp"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "compiled kernels (fastmlp._kernels) are not built" in result.stderr
