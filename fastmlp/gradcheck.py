"""Gradient checking: backpropagation against centred finite differences (Welch Labs, part 5)."""
import numpy as np

from .model import MAX_SEED, MLP, init_parameters, network_class
from ._validation import (check_activations, check_array, check_float, check_hidden, check_int, check_parameters,
                          check_targets)


def check_gradients(X, y, *, hidden=(3,), activation="sigmoid", output_activation=None,
                    loss="quadratic", l2=0.0, weights=None, biases=None, task=None, seed=0,
                    epsilon=1e-6, backend="compiled"):
    """Compare backprop's gradients with centred finite differences of the cost, in float64.

    For every parameter θ the numerical gradient is ``(C(θ + ε) − C(θ − ε)) / 2ε``. The error of
    each layer is ``‖g_backprop − g_numerical‖ / ‖g_backprop + g_numerical‖``, which is about
    1e-8 or smaller when backprop is right.

    Parameters
    ----------
    X, y : training inputs and labels/targets, as for :func:`fastmlp.fit`
    hidden, activation, output_activation, loss, l2, task : the network, as for :func:`fastmlp.fit`
    weights, biases : optional starting parameters (default: random, from ``seed``)
    epsilon : float
        The finite-difference step.

    Returns
    -------
    dict
        ``{"weights": [error per layer], "biases": [error per layer], "max": largest error}``.

    Raises
    ------
    ValueError, TypeError
        On invalid input, naming the argument, as :func:`fastmlp.fit` does (targets a loss is not
        defined for included).

    Examples
    --------
    >>> import numpy as np, fastmlp
    >>> X = np.array([[3, 5], [5, 1], [10, 2]]) / 10
    >>> result = fastmlp.check_gradients(X, np.array([[.75], [.82], [.93]]), hidden=(3,))
    >>> result["max"] < 1e-7
    True
    """
    l2 = check_float(l2, "l2")
    epsilon = check_float(epsilon, "epsilon", 0.0, inclusive=False)
    seed = check_int(seed, "seed", 0, MAX_SEED)
    network_class(backend)
    X = check_array(X, np.float64, "X")
    task, Y, classes = check_targets(y, len(X), task, np.float64, loss=loss)
    layer_sizes = (X.shape[1],) + check_hidden(hidden) + (Y.shape[1],)
    activations = check_activations(len(layer_sizes) - 1, activation, output_activation, loss, task)
    if (weights is None) != (biases is None):
        raise ValueError("give both weights and biases, or neither")
    if weights is None:
        weights, biases = init_parameters(layer_sizes, activations, np.random.default_rng(seed), np.float64)
    else:
        weights, biases = check_parameters(weights, biases, layer_sizes, np.float64)   # copies
    model = MLP(weights, biases, activations, loss, classes, l2=l2)
    weight_grads, bias_grads = model.backprop(X, y, backend=backend)

    def numerical(params):
        grad = np.zeros_like(params)
        for i in np.ndindex(params.shape):
            saved = params[i]
            params[i] = saved + epsilon
            plus = model.cost(X, y)
            params[i] = saved - epsilon
            minus = model.cost(X, y)
            params[i] = saved
            grad[i] = (plus - minus) / (2 * epsilon)
        return grad

    def relative_error(analytic, numeric):
        scale = np.linalg.norm(analytic + numeric)
        return float(np.linalg.norm(analytic - numeric) / scale) if scale > 0 else 0.0

    result = {
        "weights": [relative_error(g, numerical(w)) for g, w in zip(weight_grads, weights)],
        "biases": [relative_error(g, numerical(b)) for g, b in zip(bias_grads, biases)],
    }
    result["max"] = max(result["weights"] + result["biases"])
    return result
