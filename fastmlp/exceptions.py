"""fastmlp's own exception classes."""


class DivergenceError(FloatingPointError, ValueError):
    """Training diverged: the cost, the weights, the optimizer state or the outputs on the training
    data stopped being finite. The message names the epoch (L-BFGS: iteration).

    Both a ``FloatingPointError`` (NumPy's kind of error for a computation that overflowed) and a
    ``ValueError`` (what scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` raise for it), so
    that code written for either catches it. A smaller learning rate, or scaled inputs, usually
    avoid it.
    """
