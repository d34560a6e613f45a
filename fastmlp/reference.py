"""The NumPy twin of fastmlp's compiled kernels: the readable spec, the test oracle, the baseline.

Every kernel in ``fastmlp._kernels`` has a function here with the same name and signature, and
``Network`` here has the same interface as the compiled ``Network``, so ``fit(..., backend="numpy")``
runs exactly the same algorithm in plain vectorised NumPy. Read this file first.

Row-major convention: a batch is a matrix with one sample per row, ``weights[l]`` has shape
``(n_in, n_out)`` and a layer computes ``Z = A · W + b``, ``A' = σ(Z)``. For a single sample as a
column vector that is Nielsen's ``z = W a + b`` with our ``W`` equal to his ``Wᵀ``.
"""
import numpy as np

# log(a) of an output that rounded to 0 is clipped here, so a reported loss is finite.
LOG_FLOOR = 1e-300


def sigmoid(z):
    """σ(z) = 1 / (1 + e⁻ᶻ), computed without overflow for any z."""
    e = np.exp(-np.abs(z))                     # never overflows: the exponent is <= 0
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z):
    """Row-wise softmax, shifted by the row maximum (log-sum-exp trick) so exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACTIVATION_FUNCTIONS = {
    "identity": lambda z: z,
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "softmax": softmax,
}


def derivative(A, activation):
    """σ'(z) written in terms of the stored output A = σ(z) (no need to keep z)."""
    if activation == "sigmoid":
        return A * (1 - A)
    if activation == "tanh":
        return 1 - A * A
    if activation == "relu":
        return (A > 0).astype(A.dtype)
    return np.ones_like(A)


def gemm(alpha, A, B, beta, C, nthreads=1):
    """C := alpha · A · B + beta · C   (beta == 0: C is not read)."""
    product = alpha * (A @ B)
    C[...] = product if beta == 0 else product + beta * C


def bias_activation_inplace(Z, b, activation):
    """Z := σ(Z + b) row by row."""
    Z[...] = ACTIVATION_FUNCTIONS[activation](Z + b)


def activation_derivative_inplace(A, delta, activation):
    """delta := delta ⊙ σ'(z), from the stored activation A = σ(z)."""
    delta *= derivative(A, activation)


def loss_sum(A, Y, loss):
    """The cost summed over the rows (samples) of the network output A for targets Y.

    quadratic      C = ½‖y − a‖²
    cross_entropy  C = −Σ y ln a + (1 − y) ln(1 − a)
    log_loss       C = −Σ y ln a
    """
    A, Y = np.asarray(A, np.float64), np.asarray(Y, np.float64)
    if loss == "quadratic":
        return 0.5 * np.sum((A - Y) ** 2)
    if loss == "cross_entropy":
        return -np.sum(Y * np.log(np.maximum(A, LOG_FLOOR))
                       + (1 - Y) * np.log(np.maximum(1 - A, LOG_FLOOR)))
    nonzero = Y != 0
    return -np.sum(Y[nonzero] * np.log(np.maximum(A[nonzero], LOG_FLOOR)))


def output_delta(A, Y, delta, activation, loss):
    """delta := δᴸ = ∇ₐC ⊙ σ'(zᴸ) for each row; returns the loss summed over the rows.

    For cross-entropy with sigmoid outputs and log-loss with softmax outputs the σ' factor cancels
    and δᴸ = a − y. Softmax with the quadratic cost needs softmax's Jacobian diag(a) − a aᵀ.
    """
    gradient = A - Y                           # ∇ₐC of the quadratic cost
    if loss != "quadratic":
        delta[...] = gradient
    elif activation == "softmax":
        delta[...] = A * (gradient - np.sum(A * gradient, axis=1, keepdims=True))
    else:
        delta[...] = gradient * derivative(A, activation)
    return loss_sum(A, Y, loss)


def column_sums(D, out, scale):
    """out := scale · (sum of the rows of D)   (a bias gradient)."""
    out[...] = scale * D.sum(axis=0)


def sgd_update_inplace(params, grads, velocity, learning_rate, momentum=0.0):
    """params := params − η grads; with momentum: velocity := μ velocity − η grads, params += velocity."""
    if velocity is None:
        params -= learning_rate * grads
    else:
        velocity *= momentum
        velocity -= learning_rate * grads
        params += velocity


def gather_rows(X, index, out):
    """out[r] := X[index[r]] for every r."""
    np.take(X, index, axis=0, out=out)


class Network:
    """The NumPy twin of ``fastmlp._kernels.Network``: same constructor, same methods."""

    def __init__(self, weights, biases, activations, loss, capacity, momentum=0.0, l2=0.0, nthreads=1):
        self.weights, self.biases = list(weights), list(biases)
        self.layer_activations, self.loss = list(activations), loss
        self.capacity, self.momentum, self.l2 = capacity, momentum, l2
        self.dtype = self.weights[0].dtype
        self.n_layers = len(self.weights)
        self.weight_grads = [np.zeros_like(w) for w in self.weights]
        self.bias_grads = [np.zeros_like(b) for b in self.biases]
        self.velocities = ([np.zeros_like(p) for p in self.weights + self.biases]
                           if momentum else [None] * (2 * self.n_layers))
        self.activations, self.deltas = [], []

    def bind(self, X, Y, order):
        """Bind the training set; ``train_batch(start, stop)`` uses rows ``order[start:stop]``."""
        self.X, self.Y, self.order = X, Y, order

    def train_batch(self, start, stop, learning_rate):
        """One step of gradient descent on rows ``order[start:stop]``; returns their summed loss."""
        rows = self.order[start:stop]
        total = self.backprop(self.X[rows], self.Y[rows])
        for params, grads, velocity in zip(self.weights + self.biases,
                                           self.weight_grads + self.bias_grads, self.velocities):
            sgd_update_inplace(params, grads, velocity, learning_rate, self.momentum)
        return total

    def _forward(self, X):
        """Activations of every layer: a⁰ = X, aˡ⁺¹ = σ(aˡ · Wˡ + bˡ)."""
        activations = [X]
        for W, b, name in zip(self.weights, self.biases, self.layer_activations):
            activations.append(ACTIVATION_FUNCTIONS[name](activations[-1] @ W + b))
        return activations

    def forward(self, X, out):
        """out := network output for every row of X."""
        out[...] = self._forward(X)[-1]

    def backprop(self, X, Y):
        """Gradients of the mean cost over the rows of X into ``weight_grads``/``bias_grads``."""
        self.activations = self._forward(X)
        n_samples = X.shape[0]
        L = self.n_layers
        self.deltas = [None] * L
        self.deltas[-1] = np.empty_like(self.activations[-1])
        total = output_delta(self.activations[-1], Y, self.deltas[-1], self.layer_activations[-1], self.loss)
        for l in range(L - 1, -1, -1):
            # ∂C/∂Wˡ = mean over the batch of aˡ⁻¹ δˡᵀ;  ∂C/∂bˡ = mean of δˡ
            self.weight_grads[l][...] = self.activations[l].T @ self.deltas[l] / n_samples
            self.bias_grads[l][...] = self.deltas[l].sum(axis=0) / n_samples
            if self.l2:
                self.weight_grads[l] += self.l2 * self.weights[l]
            if l > 0:
                # δˡ⁻¹ = (δˡ · Wˡᵀ) ⊙ σ'(zˡ⁻¹)
                self.deltas[l - 1] = self.deltas[l] @ self.weights[l].T
                activation_derivative_inplace(self.activations[l], self.deltas[l - 1],
                                              self.layer_activations[l - 1])
        return total
