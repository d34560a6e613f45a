"""Full-batch L-BFGS (as Welch Labs trains with BFGS), with SciPy's optimiser.

SciPy is optional: ``pip install scipy``. The cost and its gradient come from our kernels, in the
model's dtype (float32 stays float32 there); only the flat parameter vector SciPy updates is float64.
"""
import time

import numpy as np

from ._config import kernel_threads


def fit_lbfgs(model, X, Y, sample_weight, max_iter, max_fun, tol, backend, verbose):
    """Minimise the model's cost over all of (X, Y) with L-BFGS-B; the model is updated and returned.

    Stops when no component of the gradient exceeds ``tol`` in size (SciPy's gtol, as in
    scikit-learn), or after ``max_iter`` iterations or ``max_fun`` evaluations of the cost at the
    latest, recorded as ``history["limit_reached"]``."""
    from .exceptions import DivergenceError
    from ._validation import is_sparse
    from .model import BACKENDS, _max_abs, _non_finite

    sparse = is_sparse(X)
    network = BACKENDS[backend](model.weights, model.biases, model.layer_activations, model.loss, X.shape[0],
                                l2=model.l2, nthreads=kernel_threads(), l1=model.l1, use_bias=model.use_bias,
                                sparse_input=sparse)
    backprop = network.backprop_sparse if sparse else network.backprop
    total_weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    gradients = network.weight_grads + (network.bias_grads if model.use_bias else [])

    def cost_and_gradient(vector):   # the model's parameters already hold vector
        loss = backprop(X, Y, sample_weight) / total_weight + model.penalty()
        return loss, np.concatenate([g.ravel() for g in gradients]).astype(np.float64)

    history = minimize_cost(model, cost_and_gradient, max_iter, max_fun, tol, verbose)
    if "interrupted" in history:
        return model
    loss = history["loss"][-1] if history.get("loss") else 0.0
    problem = (f"the cost became {loss}" if not np.isfinite(loss) else _non_finite(model, X, _max_abs(X)))
    if problem is not None:
        raise DivergenceError(f"L-BFGS diverged in iteration {max(1, len(history.get('loss', ())))}: {problem}")
    return model


def minimize_cost(model, cost_and_gradient, max_iter, max_fun, tol, verbose):
    """L-BFGS-B over the model's parameters, flattened into one float64 vector; returns the history.

    ``cost_and_gradient(vector)`` gives the cost (penalty included) and its gradient, flat and in
    float64, at the flat parameters ``vector``, which the model's parameters hold when it is called. Each iteration is recorded in ``model.history``; on
    Ctrl-C the parameters of the last completed iteration come back (``history["interrupted"]``),
    otherwise the best ones found are left in the model."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        raise ImportError("optimizer='lbfgs' needs SciPy: pip install scipy") from None
    from .model import _Checkpoint

    parameters = model.weights + (model.biases if model.use_bias else [])
    splits = np.cumsum([p.size for p in parameters])[:-1]
    history = model.history
    last = {}   # the latest evaluation, which the iteration's record reuses when it is at the same point

    def set_parameters(vector):
        for target, piece in zip(parameters, np.split(vector, splits)):
            target[...] = piece.reshape(target.shape)

    def evaluate(vector):
        set_parameters(vector)
        loss, gradient = cost_and_gradient(vector)
        last.update(vector=vector.copy(), loss=loss)
        return loss, gradient

    started = [time.perf_counter()]
    checkpoint = [_Checkpoint(parameters, history)]   # after the last completed iteration, for Ctrl-C

    def record(vector):
        loss = last["loss"] if np.array_equal(last.get("vector"), vector) else evaluate(vector)[0]
        now = time.perf_counter()
        history.setdefault("loss", []).append(loss)
        history.setdefault("penalty", []).append(model.penalty())
        history.setdefault("seconds", []).append(now - started[0])
        started[0] = now
        if verbose:
            print(f"iteration {len(history['loss'])}: loss {loss:.6f}", flush=True)
        checkpoint[0] = _Checkpoint(parameters, history)

    x0 = np.concatenate([p.ravel() for p in parameters]).astype(np.float64)
    model.optimizer_state = None
    try:
        result = minimize(evaluate, x0, jac=True, method="L-BFGS-B", callback=record,
                          options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol})
    except KeyboardInterrupt:
        checkpoint[0].restore(parameters, history)
        history["interrupted"] = len(history.get("loss", ())) + 1
        if verbose:
            print(f"iteration {history['interrupted']}: interrupted; keeping the last completed iteration", flush=True)
        return history
    set_parameters(result.x)    # the best parameters found
    if result.status == 1:      # SciPy: too many iterations or cost evaluations
        history["limit_reached"] = len(history.get("loss", ()))
    return history
