"""Export to ONNX: ONNX Runtime, given the exported graph, predicts what the model predicts.

Labels must be identical; probabilities and targets agree to 1e-5 (float32) or 1e-12 (float64),
the difference between two correct implementations that sum and round in another order.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastmlp
from conftest import DTYPES, HIDDEN_ACTIVATIONS, OUTPUT_LOSS_PAIRS
from fastmlp.__main__ import main

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.fixture
def run():
    """``run(graph, X)``: the outputs of an ONNX graph in ONNX Runtime, by name."""
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")

    def run(graph, X):
        session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(None, {session.get_inputs()[0].name: X})))
    return run


def data(rng, dtype, n_samples=40, n_features=4):
    return rng.standard_normal((n_samples, n_features)).astype(dtype)


def quiet_fit(estimator, X, y):
    """``estimator.fit(X, y)`` without the ConvergenceWarning of a deliberately short run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, y)


def assert_same_predictions(model, outputs, X):
    """``outputs`` (from ONNX Runtime) hold ``model``'s labels and probabilities, or its targets."""
    tolerance = TOLERANCE[np.dtype(X.dtype).type]
    if "variable" in outputs:
        assert set(outputs) == {"variable"}
        expected = model.predict(X)
        assert outputs["variable"].shape == expected.shape and outputs["variable"].dtype == X.dtype
        np.testing.assert_allclose(outputs["variable"], expected, rtol=tolerance, atol=tolerance)
        return
    assert list(outputs) == ["label", "probabilities"]
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    expected = model.predict_proba(X)
    assert outputs["probabilities"].shape == expected.shape and outputs["probabilities"].dtype == X.dtype
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=tolerance, atol=tolerance)


# ---------------------------------------------------------------------------------------------
# fastmlp.MLP: every activation, every output activation and loss, every task
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_every_hidden_activation(run, rng, dtype, activation):
    X = data(rng, dtype)
    model = fastmlp.fit(X, rng.integers(0, 3, len(X)), hidden=(6, 5), activation=activation,
                        loss="log_loss", epochs=3, batch_size=10, learning_rate=0.5, dtype=dtype, seed=0)
    assert_same_predictions(model, run(fastmlp.to_onnx(model), X), X)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
@pytest.mark.parametrize("output_activation, loss", OUTPUT_LOSS_PAIRS)
def test_every_output_activation_and_loss(run, rng, dtype, output_activation, loss):
    X = data(rng, dtype)
    # Poisson is for counts (regression); the others classify, through predict_proba's
    # clipping and normalising when the output is not a softmax.
    y = rng.poisson(2.0, len(X)).astype(dtype) if loss == "poisson" else rng.integers(0, 3, len(X))
    model = fastmlp.fit(X, y, hidden=(5,), activation="tanh", output_activation=output_activation, loss=loss,
                        epochs=3, batch_size=10, learning_rate=0.1, dtype=dtype, seed=0)
    assert_same_predictions(model, run(fastmlp.to_onnx(model), X), X)


def test_rows_without_positive_outputs_get_uniform_probabilities(run, rng):
    """A ReLU output layer that gives 0 everywhere: predict_proba's 1/n_classes, and predict's
    argmax of the outputs, the first class."""
    X = data(rng, np.float64)
    model = fastmlp.fit(X, rng.integers(0, 3, len(X)), hidden=(5,), output_activation="relu", epochs=1,
                        dtype="float64", seed=0)
    model.weights[-1][:], model.biases[-1][:] = 0.0, -1.0
    outputs = run(fastmlp.to_onnx(model), X)
    np.testing.assert_array_equal(outputs["probabilities"], np.full((len(X), 3), 1 / 3))
    np.testing.assert_array_equal(outputs["label"], np.zeros(len(X)))
    assert_same_predictions(model, outputs, X)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
@pytest.mark.parametrize("labels", [np.array([3, 7, 11], np.uint8), np.array(["cat", "dog", "emu"]),
                                    np.array([-1.5, 0.0, 2.5]), np.array([False, True])],
                         ids=["uint8", "str", "float", "bool"])
def test_class_labels_keep_their_values(run, rng, dtype, labels):
    X = data(rng, dtype)
    model = fastmlp.fit(X, labels[rng.integers(0, len(labels), len(X))], task="classification", hidden=(5,),
                        epochs=2, dtype=dtype, seed=0)
    graph = fastmlp.to_onnx(model)
    outputs = run(graph, X)
    assert_same_predictions(model, outputs, X)
    if labels.dtype.kind == "U":
        assert all(isinstance(label, str) for label in outputs["label"])
    else:   # integers as int64, the others in their own dtype
        assert outputs["label"].dtype == (np.int64 if labels.dtype.kind == "u" else labels.dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
def test_multilabel(run, rng, dtype):
    X = data(rng, dtype)
    model = fastmlp.fit(X, rng.integers(0, 2, (len(X), 3)), hidden=(5,), epochs=3, dtype=dtype, seed=0)
    assert model.task == "multilabel"
    outputs = run(fastmlp.to_onnx(model), X)
    assert outputs["label"].dtype == np.int64 and outputs["label"].shape == (len(X), 3)
    assert_same_predictions(model, outputs, X)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
@pytest.mark.parametrize("shape", [(40,), (40, 1), (40, 2)], ids=["1-D", "one column", "two columns"])
def test_regression_targets_have_predicts_shape(run, rng, dtype, shape):
    X = data(rng, dtype)
    model = fastmlp.fit(X, rng.standard_normal(shape), hidden=(5,), use_bias=False, epochs=3, dtype=dtype,
                        seed=0)
    assert_same_predictions(model, run(fastmlp.to_onnx(model), X), X)


def test_no_hidden_layer(run, rng):
    X = data(rng, np.float32)
    model = fastmlp.fit(X, rng.integers(0, 2, len(X)), hidden=(), epochs=2, seed=0)
    assert_same_predictions(model, run(fastmlp.to_onnx(model), X), X)


def test_the_graph_is_one_gemm_per_layer_and_its_activation(rng):
    pytest.importorskip("onnx")
    X = data(rng, np.float64)
    model = fastmlp.fit(X, rng.standard_normal(len(X)), hidden=(5, 4), activation=["relu", "identity"],
                        epochs=1, dtype="float64", seed=0)
    graph = fastmlp.to_onnx(model).graph
    assert [node.op_type for node in graph.node] == ["Gemm", "Relu", "Gemm", "Gemm", "Reshape"]
    assert [(value.name, value.type.tensor_type.elem_type) for value in graph.input] == [("X", 11)]   # DOUBLE


def test_saved_and_loaded_model_exports_the_same_graph(rng, tmp_path):
    pytest.importorskip("onnx")
    X = data(rng, np.float32)
    model = fastmlp.fit(X, np.array(["a", "b", "c"])[rng.integers(0, 3, len(X))], hidden=(5,), epochs=2, seed=0)
    fastmlp.save(model, tmp_path / "model.npz")
    loaded = fastmlp.load(tmp_path / "model.npz")
    assert fastmlp.to_onnx(loaded).SerializeToString() == fastmlp.to_onnx(model).SerializeToString()


def test_path_writes_the_graph(run, rng, tmp_path):
    import onnx
    X = data(rng, np.float32)
    model = fastmlp.fit(X, rng.integers(0, 2, len(X)), hidden=(5,), epochs=1, seed=0)
    graph = fastmlp.to_onnx(model, tmp_path / "model.onnx")
    written = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(written, full_check=True)
    assert written.SerializeToString() == graph.SerializeToString()
    assert_same_predictions(model, run(written, X), X)


# ---------------------------------------------------------------------------------------------
# The scikit-learn estimators
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
@pytest.mark.parametrize("labels", [np.array(["no", "yes"]), np.array([2, 5, 9]), np.array([False, True])],
                         ids=["binary-str", "multiclass-int", "binary-bool"])
def test_classifier(run, rng, dtype, labels):
    X = data(rng, dtype)
    y = labels[rng.integers(0, len(labels), len(X))]
    clf = quiet_fit(fastmlp.MLPClassifier((5,), "tanh", max_iter=3, random_state=0), X, y)
    assert_same_predictions(clf, run(fastmlp.to_onnx(clf), X), X)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
def test_multilabel_classifier(run, rng, dtype):
    X = data(rng, dtype)
    clf = quiet_fit(fastmlp.MLPClassifier((5,), max_iter=3, random_state=0), X, rng.integers(0, 2, (len(X), 3)))
    assert_same_predictions(clf, run(fastmlp.to_onnx(clf), X), X)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.__name__)
@pytest.mark.parametrize("loss, n_outputs", [("squared_error", 1), ("squared_error", 2), ("poisson", 1)])
def test_regressor(run, rng, dtype, loss, n_outputs):
    X = data(rng, dtype)
    y = rng.poisson(2.0, (len(X), n_outputs)).astype(float).squeeze()
    reg = quiet_fit(fastmlp.MLPRegressor((5,), "relu", loss=loss, max_iter=3, random_state=0), X, y)
    assert_same_predictions(reg, run(fastmlp.to_onnx(reg), X), X)


@pytest.mark.parametrize("estimator", [fastmlp.MLPClassifier, fastmlp.MLPRegressor])
def test_unfitted_estimator_is_a_value_error(estimator):
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="not fitted"):
        fastmlp.to_onnx(estimator())


@pytest.mark.parametrize("model", [None, "model.npz", {"weights": []}])
def test_what_is_not_a_model_is_a_type_error(model):
    pytest.importorskip("onnx")
    with pytest.raises(TypeError, match="model must be a fastmlp.MLP, MLPClassifier or MLPRegressor"):
        fastmlp.to_onnx(model)


def test_unsupported_models_are_clear_errors(rng):
    pytest.importorskip("onnx")
    X = data(rng, np.float64)
    model = fastmlp.fit(X, rng.integers(0, 2, len(X)), hidden=(3,), epochs=1, dtype="float64", seed=0)
    mixed = fastmlp.MLP([model.weights[0].astype(np.float32), model.weights[1]], model.biases,
                        model.layer_activations, model.loss, model.classes_)
    with pytest.raises(TypeError, match="all be float32 or all float64"):
        fastmlp.to_onnx(mixed)
    unknown = fastmlp.MLP(model.weights, model.biases, ["swish", "sigmoid"], model.loss, model.classes_)
    with pytest.raises(ValueError, match="activation 'swish' cannot be exported"):
        fastmlp.to_onnx(unknown)
    objects = fastmlp.MLP(model.weights, model.biases, model.layer_activations, model.loss,
                          np.array([(1, 2), None], dtype=object))
    with pytest.raises(TypeError, match="class labels of dtype object cannot be exported"):
        fastmlp.to_onnx(objects)


# ---------------------------------------------------------------------------------------------
# skl2onnx: a Pipeline holding an estimator converts in one call
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def skl2onnx():
    pytest.importorskip("sklearn")
    skl2onnx = pytest.importorskip("skl2onnx")
    import fastmlp.onnx   # noqa: F401  (registers the converters)
    return skl2onnx


def pipeline(estimator, X, y):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    return quiet_fit(Pipeline([("scale", StandardScaler()), ("mlp", estimator)]), X, y)


@pytest.mark.parametrize("labels", [np.array(["ant", "bee", "cow"]), np.array([0, 1]), np.array([4, 8])],
                         ids=["multiclass-str", "binary-01", "binary-int"])
def test_pipeline_converts_without_zipmap(skl2onnx, run, rng, labels):
    X = 3 * data(rng, np.float32) + 1
    model = pipeline(fastmlp.MLPClassifier((5,), max_iter=3, random_state=0), X,
                     labels[rng.integers(0, len(labels), len(X))])
    graph = skl2onnx.to_onnx(model, X[:1], options={fastmlp.MLPClassifier: {"zipmap": False}})
    assert_same_predictions(model, run(graph, X), X)


def test_pipeline_converts_with_zipmap_by_default(skl2onnx, run, rng):
    X = data(rng, np.float32)
    model = pipeline(fastmlp.MLPClassifier((5,), max_iter=3, random_state=0), X, rng.integers(0, 3, len(X)))
    outputs = run(skl2onnx.to_onnx(model, X[:1]), X)
    assert list(outputs) == ["output_label", "output_probability"]   # skl2onnx's names with a ZipMap
    np.testing.assert_array_equal(outputs["output_label"], model.predict(X))
    probabilities = np.array([[row[label] for label in model.classes_] for row in outputs["output_probability"]])
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=1e-5, atol=1e-5)


def test_pipeline_multilabel(skl2onnx, run, rng):
    X = data(rng, np.float32)
    model = pipeline(fastmlp.MLPClassifier((5,), max_iter=3, random_state=0), X, rng.integers(0, 2, (len(X), 3)))
    graph = skl2onnx.to_onnx(model, X[:1], options={fastmlp.MLPClassifier: {"zipmap": False}})
    assert_same_predictions(model, run(graph, X), X)


def test_pipeline_float64_network_takes_float32_input(skl2onnx, run, rng):
    X = data(rng, np.float64)
    model = pipeline(fastmlp.MLPClassifier((5,), max_iter=3, random_state=0), X, rng.integers(0, 3, len(X)))
    assert model[-1].model_.dtype == np.float64
    X32 = X.astype(np.float32)
    outputs = run(skl2onnx.to_onnx(model, X32[:1], options={fastmlp.MLPClassifier: {"zipmap": False}}), X32)
    np.testing.assert_array_equal(outputs["label"], model.predict(X32))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(X32), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_pipeline_regressor(skl2onnx, run, rng, n_outputs):
    X = data(rng, np.float32)
    model = pipeline(fastmlp.MLPRegressor((5,), max_iter=3, random_state=0), X,
                     rng.standard_normal((len(X), n_outputs)).squeeze())
    outputs = run(skl2onnx.to_onnx(model, X[:1]), X)
    assert outputs["variable"].shape == (len(X), n_outputs)   # skl2onnx's regressors: one column per output
    np.testing.assert_allclose(outputs["variable"], model.predict(X).reshape(len(X), -1), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The command line, and onnx as an optional extra
# ---------------------------------------------------------------------------------------------

def test_cli_export_writes_a_graph_onnx_runtime_runs(run, rng, tmp_path, capsys):
    import onnx
    X = data(rng, np.float32)
    model = fastmlp.fit(X, rng.integers(0, 3, len(X)), hidden=(5,), epochs=2, seed=0)
    fastmlp.save(model, tmp_path / "model.npz")
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")]) == 0
    assert "model.onnx" in capsys.readouterr().out
    assert_same_predictions(model, run(onnx.load(tmp_path / "model.onnx"), X), X)


def test_cli_export_mistakes_are_one_line_and_status_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "model.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such model file" in err and "\n" not in err


def test_without_onnx_the_error_says_what_to_install(rng, tmp_path, monkeypatch, capsys):
    X = data(rng, np.float32)
    model = fastmlp.fit(X, rng.integers(0, 2, len(X)), hidden=(3,), epochs=1, seed=0)
    monkeypatch.setitem(sys.modules, "onnx", None)   # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "fastmlp\[onnx\]"'):
        fastmlp.to_onnx(model)
    fastmlp.save(model, tmp_path / "model.npz")
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")]) == 2
    assert 'pip install "fastmlp[onnx]"' in capsys.readouterr().err
    assert not (tmp_path / "model.onnx").exists()


def test_importing_fastmlp_does_not_import_onnx():
    code = "import sys, fastmlp; print(sorted({'onnx', 'fastmlp.onnx', 'skl2onnx'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
