"""Export to ONNX: :func:`to_onnx`, and skl2onnx converters for the estimators (pipelines holding them).

The graph computes what ``predict`` and ``predict_proba`` compute, in the model's dtype: one
``Gemm`` per layer (``Z = A · W + b``) followed by the layer's activation, then the labels and
probabilities (or the regression targets) read from the output layer as ``predict`` reads them.
Needs the ``onnx`` package (``pip install "fastmlp[onnx]"``); importing this module registers the
converters with skl2onnx when skl2onnx is installed.
"""
import os

import numpy as np

from . import __version__
from .model import MLP

OPSET = 18
ACTIVATION_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax", "exp": "Exp"}


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError('fastmlp.to_onnx needs the onnx package: pip install "fastmlp[onnx]"') from None
    return onnx


def to_onnx(model, path=None):
    """The ONNX graph of a fitted network: the same predictions in ONNX Runtime.

    Parameters
    ----------
    model : MLP, or a fitted MLPClassifier or MLPRegressor
    path : str or path-like, optional
        Also write the graph to this file (conventionally ``*.onnx``).

    Returns
    -------
    onnx.ModelProto
        Opset 18. One input ``X`` of shape (n_samples, n_features) in the model's dtype (float32 or
        float64); a model fitted with ``input_scale`` takes X's values as they are (an 8-bit image
        cast to float) and multiplies them by it first, as ``predict`` does. A classifier has the outputs ``label`` (what ``predict`` returns: integer labels as
        int64, booleans as bool, strings as string, float labels in their float type; multi-label
        models give int64 0/1 rows) and ``probabilities`` (what ``predict_proba`` returns); a
        regressor has ``variable``, shaped as ``predict``'s result.

    Raises
    ------
    ImportError
        If onnx is not installed.
    TypeError
        If ``model`` is not an MLP or estimator, or its class labels are not numbers or strings.
    ValueError
        If the estimator is not fitted.

    Examples
    --------
    >>> import numpy as np, fastmlp, onnxruntime
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25, dtype=np.float32)
    >>> model = fastmlp.fit(X, X[:, 0] != X[:, 1], hidden=(8,), epochs=300, batch_size=4, learning_rate=2.0,
    ...                     seed=0)
    >>> onnx_model = fastmlp.to_onnx(model)
    >>> [output.name for output in onnx_model.graph.output]
    ['label', 'probabilities']
    >>> session = onnxruntime.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    >>> session.run(None, {"X": X[:4]})[0]
    array([False,  True,  True, False])
    """
    onnx = _require_onnx()
    network, reading, classes = _reading(model)
    _check_network(network)
    labels = None if classes is None else _labels(classes)
    graph = _Graph()
    outputs = _predictions(graph, "X", network, reading, labels)
    proto = graph.model("X", network, outputs, _output_types(network, reading, labels))
    if path is not None:
        onnx.save_model(proto, os.fspath(path))
    return proto


def _reading(model):
    """``(network, reading, classes)``: the MLP, how ``predict`` reads its output, and the labels.

    reading is "argmax" (labels[argmax a]), "binary" (one sigmoid output: labels[a > 0.5],
    probabilities [1 − a, a]), "indicator" (multi-label: a > 0.5 per output), "regression" or
    "regression_1d" (a single output returned as a 1-D array).
    """
    if isinstance(model, MLP):
        if model.task == "regression":
            one_column = model.single_target and model.layer_sizes[-1] == 1
            return model, "regression_1d" if one_column else "regression", None
        if model.classes_ is None:
            raise ValueError("the classification model has no classes_")
        return model, "indicator" if model.task == "multilabel" else "argmax", model.classes_
    from .estimators import MLPClassifier, MLPRegressor
    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        raise TypeError(f"model must be a fastmlp.MLP, MLPClassifier or MLPRegressor, got {type(model).__name__}")
    model._check_fitted()
    network = model.model_
    if isinstance(model, MLPRegressor):
        return network, "regression_1d" if model.n_outputs_ == 1 else "regression", None
    if model.out_activation_ == "softmax":
        return network, "argmax", model.classes_
    if model.n_outputs_ == 1 and len(model.classes_) == 2:
        return network, "binary", model.classes_
    return network, "indicator", model.classes_


def _labels(classes, integers=False):
    """The class labels as an array ONNX holds: int64, bool, float or str (object).

    ``integers``: skl2onnx's convention, booleans and whole floats as int64 too.
    """
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if integers and kind == "f" and not np.all(classes == np.round(classes)):
        raise TypeError(f"skl2onnx needs integer or string class labels, got {classes.tolist()[:5]}")
    if kind in "iu" or (integers and kind in "bf"):
        if kind == "u" and classes.max() > np.iinfo(np.int64).max:
            raise TypeError(f"class labels above {np.iinfo(np.int64).max} cannot be exported")
        return classes.astype(np.int64)
    if kind in "bf":
        return classes
    if kind in "US" or (kind == "O" and all(isinstance(c, (str, bytes)) for c in classes)):
        return np.array([c.decode() if isinstance(c, bytes) else str(c) for c in classes], dtype=object)
    raise TypeError(f"class labels of dtype {classes.dtype} cannot be exported; use numbers or strings")


def _check_network(network):
    """The network, if ONNX can express it: known activations, float32 or float64 throughout."""
    if not network.weights:
        raise ValueError("the model has no layers")
    unknown = [name for name in network.layer_activations if name != "identity" and name not in ACTIVATION_OPS]
    if unknown:
        raise ValueError(f"activation {unknown[0]!r} cannot be exported; use one of "
                         f"{['identity', *ACTIVATION_OPS]}")
    dtype = np.dtype(network.dtype)
    if dtype not in (np.float32, np.float64) or any(p.dtype != dtype for p in network.weights + network.biases):
        raise TypeError("the weights and biases must all be float32 or all float64")
    return network


def _network(graph, X, network):
    """aᴸ: one Gemm per layer, Z = A · W + b, and the layer's activation, from a⁰ = X · input_scale."""
    A = X
    if getattr(network, "input_scale", None) is not None:
        A = graph.op("Mul", [X, graph.constant("input_scale", np.array(network.input_scale, network.dtype))])
    for l, (W, b, activation) in enumerate(zip(network.weights, network.biases, network.layer_activations)):
        A = graph.op("Gemm", [A, graph.constant(f"weights_{l}", W), graph.constant(f"biases_{l}", b)])
        if activation == "softmax":
            A = graph.op("Softmax", [A], axis=1)
        elif activation != "identity":
            A = graph.op(ACTIVATION_OPS[activation], [A])
    return A


def _predictions(graph, X, network, reading, labels):
    """``{output name: value}``: what ``predict`` and ``predict_proba`` return, from the network's output."""
    out = _network(graph, X, network)
    dtype = network.dtype
    if reading == "regression":
        return {"variable": out}
    if reading == "regression_1d":
        return {"variable": _flat(graph, out)}
    if reading == "indicator":
        return {"label": _above_half(graph, out, dtype), "probabilities": out}
    classes = graph.constant("classes", labels)
    if reading == "binary":
        label = graph.op("Gather", [classes, _above_half(graph, _flat(graph, out), dtype)])
        negative = graph.op("Sub", [graph.constant("one", np.array(1, dtype)), out])
        return {"label": label, "probabilities": graph.op("Concat", [negative, out], axis=1)}
    label = graph.op("Gather", [classes, graph.op("ArgMax", [out], axis=1, keepdims=0)])
    softmax = network.layer_activations[-1] == "softmax"
    return {"label": label, "probabilities": out if softmax else _normalised(graph, out, len(labels), dtype)}


def _flat(graph, A):
    return graph.op("Reshape", [A, graph.constant("flat", np.array([-1], np.int64))])


def _above_half(graph, A, dtype):
    """(A > 0.5) as int64."""
    above = graph.op("Greater", [A, graph.constant("half", np.array(0.5, dtype))])
    return graph.op("Cast", [above], to=graph.TensorProto.INT64)


def _normalised(graph, A, n_classes, dtype):
    """max(A, 0) / its row sum; rows that sum to 0 get 1/n_classes each (as MLP.predict_proba)."""
    positive = graph.op("Relu", [A])
    total = graph.op("ReduceSum", [positive, graph.constant("axis_1", np.array([1], np.int64))], keepdims=1)
    has_mass = graph.op("Greater", [total, graph.constant("zero", np.array(0, dtype))])
    uniform = graph.constant("uniform", np.array(1 / n_classes, dtype))
    return graph.op("Where", [has_mass, graph.op("Div", [positive, total]), uniform])


def _output_types(network, reading, labels):
    """``{output name: (ONNX element type, shape)}``, "N" standing for the number of samples."""
    from onnx import TensorProto, helper
    floats = helper.np_dtype_to_tensor_dtype(np.dtype(network.dtype))
    n_outputs = network.layer_sizes[-1]
    if reading.startswith("regression"):
        return {"variable": (floats, ["N"] if reading == "regression_1d" else ["N", n_outputs])}
    if reading == "indicator":
        return {"label": (TensorProto.INT64, ["N", n_outputs]), "probabilities": (floats, ["N", n_outputs])}
    label_type = TensorProto.STRING if labels.dtype == object else helper.np_dtype_to_tensor_dtype(labels.dtype)
    return {"label": (label_type, ["N"]), "probabilities": (floats, ["N", len(labels)])}


class _Graph:
    """The nodes and initializers of an ONNX graph being built, under unique names."""

    def __init__(self):
        from onnx import TensorProto, helper, numpy_helper
        self.TensorProto, self.helper, self.numpy_helper = TensorProto, helper, numpy_helper
        self.nodes, self.initializers, self.counts = [], [], {}

    def name(self, hint):
        count = self.counts.get(hint, 0)
        self.counts[hint] = count + 1
        return hint if count == 0 else f"{hint}_{count}"

    def constant(self, hint, array):
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, output=None, **attributes):
        output = output or self.name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def model(self, X, network, outputs, types):
        """The ModelProto with input ``X`` and the values ``outputs`` renamed to their output names."""
        helper = self.helper
        renamed = {value: name for name, value in outputs.items()}
        for node in self.nodes:
            node.input[:] = [renamed.get(value, value) for value in node.input]
            node.output[:] = [renamed.get(value, value) for value in node.output]
            node.name = renamed.get(node.name, node.name)
        floats = helper.np_dtype_to_tensor_dtype(np.dtype(network.dtype))
        graph = helper.make_graph(
            self.nodes, "fastmlp", [helper.make_tensor_value_info(X, floats, ["N", network.layer_sizes[0]])],
            [helper.make_tensor_value_info(name, *types[name]) for name in outputs], self.initializers)
        opsets = [helper.make_opsetid("", OPSET)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="fastmlp", producer_version=__version__,
                                 ir_version=helper.find_min_ir_version_for(opsets))


class _SklearnGraph(_Graph):
    """The same graph, built into a skl2onnx container under the scope's unique names."""

    def __init__(self, scope, container):
        super().__init__()
        self.scope, self.container = scope, container

    def name(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def constant(self, hint, array):
        name = self.name(hint)
        tensor = self.numpy_helper.from_array(np.asarray(array), name)
        # The container copies raw_data from a TensorProto; strings are not raw data.
        content = list(tensor.string_data) if tensor.data_type == self.TensorProto.STRING else tensor
        self.container.add_initializer(name, tensor.data_type, list(tensor.dims), content)
        return name

    def op(self, op_type, inputs, output=None, **attributes):
        output = output or self.name(op_type.lower())
        self.container.add_node(op_type, inputs, [output], name=self.scope.get_unique_operator_name(op_type),
                                **attributes)
        return output


def _classifier_shapes(operator):
    """skl2onnx shape calculator: int64 or string labels, probabilities in the input's float type."""
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    calculate_linear_classifier_output_shapes(operator)
    estimator = operator.raw_operator
    if _reading(estimator)[1] == "indicator":
        operator.outputs[0].type.shape = [operator.inputs[0].get_first_dimension(), estimator.n_outputs_]


def _regressor_shapes(operator):
    """skl2onnx shape calculator: targets of shape (N, n_outputs) in the input's float type."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    floats = DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) else FloatTensorType
    operator.outputs[0].set_type(floats([operator.inputs[0].get_first_dimension(),
                                         operator.raw_operator.n_outputs_]))


def _convert(scope, operator, container):
    """skl2onnx converter: the graph of :func:`to_onnx`, between the operator's input and outputs."""
    from skl2onnx.common.data_types import guess_proto_type
    from skl2onnx.common.utils_classifier import get_label_classes
    network, reading, classes = _reading(operator.raw_operator)
    _check_network(network)
    graph = _SklearnGraph(scope, container)
    floats = graph.helper.np_dtype_to_tensor_dtype(np.dtype(network.dtype))
    X = operator.inputs[0].full_name
    if guess_proto_type(operator.inputs[0].type) != floats:
        X = graph.op("Cast", [X], to=floats)
    labels = None if classes is None else _labels(get_label_classes(scope, operator.raw_operator), integers=True)
    values = _predictions(graph, X, network, "regression" if reading == "regression_1d" else reading, labels)
    for variable, value in zip(operator.outputs, values.values()):
        # Labels are int64 or strings, as declared; probabilities and targets are declared in the
        # input's float type, which need not be the network's.
        wanted = guess_proto_type(variable.type)
        if wanted in (floats, graph.TensorProto.INT64, graph.TensorProto.STRING):
            graph.op("Identity", [value], output=variable.full_name)
        else:
            graph.op("Cast", [value], output=variable.full_name, to=wanted)


def _register_with_skl2onnx():
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        return
    from .estimators import MLPClassifier, MLPRegressor
    update_registered_converter(MLPClassifier, "FastmlpMLPClassifier", _classifier_shapes, _convert,
                                options={"zipmap": [True, False, "columns"], "nocl": [False, True]})
    update_registered_converter(MLPRegressor, "FastmlpMLPRegressor", _regressor_shapes, _convert)


_register_with_skl2onnx()
