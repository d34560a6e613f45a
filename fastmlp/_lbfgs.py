"""Full-batch L-BFGS (as Welch Labs trains with BFGS), with SciPy's optimiser.

SciPy is optional: ``pip install scipy``. The cost and its gradient come from our kernels, in the
model's dtype (float32 stays float32 there); only the flat parameter vector SciPy updates is float64.
Each iteration is an "epoch" to the Trainer's callbacks: history, progress, Ctrl-C and stopping
work as in mini-batch training.
"""
import time

import numpy as np

from ._validation import is_sparse
from .callbacks import max_abs, non_finite
from .exceptions import DivergenceError
from .trainer import Trainer


def fit_lbfgs(model, X, Y, sample_weight, max_iter, max_fun, tol, backend, callbacks=()):
    """Minimise the model's cost over all of (X, Y) with L-BFGS-B; the model is updated and returned.

    Stops when no component of the gradient exceeds ``tol`` in size (SciPy's gtol, as in
    scikit-learn), or after ``max_iter`` iterations or ``max_fun`` evaluations of the cost at the
    latest, recorded as ``history["limit_reached"]``."""
    sparse = is_sparse(X)
    network = model.network(X.shape[0], backend=backend, sparse_input=sparse)
    backprop = network.backprop_sparse if sparse else network.backprop
    total_weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    gradients = network.weight_grads + (network.bias_grads if model.use_bias else [])

    def cost_and_gradient(vector):   # the model's parameters already hold vector
        loss = backprop(X, Y, sample_weight) / total_weight + model.penalty()
        return loss, np.concatenate([g.ravel() for g in gradients]).astype(np.float64)

    trainer = LBFGSTrainer(model, cost_and_gradient, X.shape[0], callbacks)
    trainer.run(max_iter, max_fun, tol)
    if trainer.interrupted:
        return model
    history = model.history
    loss = history["loss"][-1] if history.get("loss") else 0.0
    problem = f"the cost became {loss}" if not np.isfinite(loss) else non_finite(model, X, max_abs(X))
    if problem is not None:
        raise DivergenceError(f"L-BFGS diverged in iteration {max(1, len(history.get('loss', ())))}: {problem}")
    return model


class LBFGSTrainer(Trainer):
    """L-BFGS-B over the model's parameters, flattened into one float64 vector.

    ``cost_and_gradient(vector)`` gives the cost (penalty included) and its gradient, flat and in
    float64, at the flat parameters ``vector``, which the model's parameters hold when it is
    called. The best parameters found are left in the model.
    """

    unit = "iteration"

    def __init__(self, model, cost_and_gradient, n_samples, callbacks=()):
        self.attach(model, model.weights + (model.biases if model.use_bias else []), n_samples, callbacks)
        self.cost_and_gradient = cost_and_gradient
        self.last = {}   # the latest evaluation, which the iteration's record reuses at the same point

    def run(self, max_iter, max_fun, tol):
        try:
            from scipy.optimize import minimize
        except ImportError:
            raise ImportError("optimizer='lbfgs' needs SciPy: pip install scipy") from None
        self.last_epoch = self.epoch + max_iter
        self.call("on_train_begin")
        self.save_state()
        self.started = time.perf_counter()
        x0 = np.concatenate([p.ravel() for p in self.parameters]).astype(np.float64)
        self.model.optimizer_state = None
        try:
            result = minimize(self.evaluate, x0, jac=True, method="L-BFGS-B", callback=self.end_iteration,
                              options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol})
            self.set_parameters(result.x)    # the best parameters found
            if result.status == 1:           # SciPy: too many iterations or cost evaluations
                self.history["limit_reached"] = len(self.history.get("loss", ()))
        except KeyboardInterrupt:
            self.undo_epoch()
            self.history["interrupted"] = self.epoch + 1
            self.interrupted = True
        self.call("on_train_end")
        return self.model

    def set_parameters(self, vector):
        splits = np.cumsum([p.size for p in self.parameters])[:-1]
        for target, piece in zip(self.parameters, np.split(vector, splits)):
            target[...] = piece.reshape(target.shape)

    def evaluate(self, vector):
        self.set_parameters(vector)
        loss, gradient = self.cost_and_gradient(vector)
        self.last = {"vector": vector.copy(), "loss": loss}
        return loss, gradient

    def end_iteration(self, vector):
        """SciPy's callback after each iteration: its logs to the callbacks, which may stop."""
        same = np.array_equal(self.last.get("vector"), vector)
        loss = self.last["loss"] if same else self.evaluate(vector)[0]
        now = time.perf_counter()
        iteration = self.epoch + 1
        self.end_epoch(iteration, {"epoch": iteration, "loss": loss, "penalty": self.model.penalty(),
                                   "seconds": now - self.started})
        self.started = now
        if self.stop_training:
            raise StopIteration

    def optimizer_state(self, into=None):
        return None   # L-BFGS starts afresh each time: nothing to continue from
