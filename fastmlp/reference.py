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


# Each activation σ beside its derivative σ'(z), written in terms of the stored output A = σ(z)
# (no need to keep z). Softmax is an output activation only: output_delta handles its Jacobian.
ACTIVATIONS = {
    #             σ(z)                           σ'(z) from A = σ(z)
    "sigmoid":   (sigmoid,                       lambda A: A * (1 - A)),
    "tanh":      (np.tanh,                       lambda A: 1 - A * A),
    "relu":      (lambda z: np.maximum(z, 0),    lambda A: (A > 0).astype(A.dtype)),
    "identity":  (lambda z: z,                   np.ones_like),
    "exp":       (np.exp,                        lambda A: A),     # a Poisson regression's output (log link)
    "softmax":   (softmax,                       np.ones_like),
}
ACTIVATION_FUNCTIONS = {name: value for name, (value, _) in ACTIVATIONS.items()}


def derivative(A, activation):
    """σ'(z) written in terms of the stored output A = σ(z)."""
    return ACTIVATIONS[activation][1](A)


def gemm(alpha, A, B, beta, C, nthreads=1, a_rows=None, a_cols=None):
    """C := alpha · A · B + beta · C   (beta == 0: C is not read), with A[a_rows] or A[:, a_cols]
    in place of A when an index is given."""
    A = A if a_rows is None else A[a_rows]
    A = A if a_cols is None else A[:, a_cols]
    product = alpha * (A @ B)
    C[...] = product if beta == 0 else product + beta * C


def bias_activation_inplace(Z, b, activation):
    """Z := σ(Z + b) row by row."""
    Z[...] = ACTIVATION_FUNCTIONS[activation](Z + b)


def activation_derivative_inplace(A, delta, activation):
    """delta := delta ⊙ σ'(z), from the stored activation A = σ(z)."""
    delta *= derivative(A, activation)


# Each cost beside its output error δᴸ = ∇ₐC ⊙ σ'(zᴸ) (Nielsen's cost classes: fn and delta).

def quadratic(A, Y):
    """C = ½‖y − a‖²"""
    return 0.5 * (A - Y) ** 2


def quadratic_delta(A, Y, activation):
    gradient = A - Y                           # ∇ₐC of the quadratic cost
    if activation == "softmax":                # softmax's Jacobian is diag(a) − a aᵀ
        return A * (gradient - np.sum(A * gradient, axis=1, keepdims=True))
    return gradient * derivative(A, activation)


def cross_entropy(A, Y):
    """C = −Σ y ln a + (1 − y) ln(1 − a)"""
    return -(Y * np.log(np.maximum(A, LOG_FLOOR)) + (1 - Y) * np.log(np.maximum(1 - A, LOG_FLOOR)))


def log_loss(A, Y):
    """C = −Σ y ln a   (y = 0 terms are zero even where a rounded to 0)"""
    return -np.where(Y != 0, Y * np.log(np.maximum(A, LOG_FLOOR)), 0.0)


def poisson(A, Y):
    """C = Σ a − y ln a + y ln y − y   (half the Poisson deviance: 0 where a = y)"""
    with np.errstate(divide="ignore", invalid="ignore"):   # y ln(y/a) is 0 where y = 0
        ratio = np.log(np.where(Y != 0, Y, 1)) - np.log(np.maximum(A, LOG_FLOOR))
    return A - Y + np.where(Y != 0, Y * ratio, 0.0)


def matched_delta(A, Y, activation):
    """δᴸ = a − y: with its own output (sigmoid, softmax, exp) the σ' factor cancels."""
    return A - Y


LOSSES = {
    #                 C per output     δᴸ
    "quadratic":     (quadratic,      quadratic_delta),
    "cross_entropy": (cross_entropy,  matched_delta),      # sigmoid outputs
    "log_loss":      (log_loss,       matched_delta),      # softmax outputs
    "poisson":       (poisson,        matched_delta),      # exp outputs
}


def loss_sum(A, Y, loss, sample_weight=None):
    """The cost summed over the rows (samples) of the network output A for targets Y,
    each row's cost multiplied by its ``sample_weight`` when given."""
    A, Y = np.asarray(A, np.float64), np.asarray(Y, np.float64)
    per_element = LOSSES[loss][0](A, Y)
    if sample_weight is None:
        return float(np.sum(per_element))
    return float(np.sum(per_element.sum(axis=1) * sample_weight))


def output_delta(A, Y, delta, activation, loss, sample_weight=None):
    """delta := δᴸ = ∇ₐC ⊙ σ'(zᴸ) for each row; returns the loss summed over the rows.
    With ``sample_weight``, row i of δᴸ and its loss are multiplied by ``sample_weight[i]``."""
    delta[...] = LOSSES[loss][1](A, Y, activation)
    if sample_weight is not None:
        delta *= sample_weight[:, None]
    return loss_sum(A, Y, loss, sample_weight)


def column_sums(D, out, scale):
    """out := scale · (sum of the rows of D)   (a bias gradient)."""
    out[...] = scale * D.sum(axis=0)


def flush_subnormal(state):
    """Set the values of an optimizer's state smaller in magnitude than the smallest normal number
    to 0, in place (NaN kept). A velocity or moment whose gradient stays 0 (a dead ReLU unit, an
    input that is always 0) decays into the subnormal numbers and stays there (μ times the smallest
    subnormal rounds back to it), and arithmetic on them is many times slower on x86 CPUs."""
    state[np.abs(state) < np.finfo(state.dtype).tiny] = 0


def sgd_update_inplace(params, grads, velocity, learning_rate, momentum=0.0, nesterov=False):
    """params := params − η grads; with momentum μ: velocity := μ velocity − η grads and
    params += velocity (classical) or params += μ velocity − η grads (Nesterov)."""
    if velocity is None:
        params -= learning_rate * grads
        return
    velocity *= momentum
    velocity -= learning_rate * grads
    flush_subnormal(velocity)
    params += momentum * velocity - learning_rate * grads if nesterov else velocity


def adam_update_inplace(params, grads, first_moment, second_moment, learning_rate, t,
                        beta1=0.9, beta2=0.999, epsilon=1e-8):
    """Adam step t (from 1), Kingma & Ba's Algorithm 1: m := β₁m + (1−β₁)g, v := β₂v + (1−β₂)g²,
    params −= η m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ)."""
    first_moment[...] = beta1 * first_moment + (1 - beta1) * grads
    second_moment[...] = beta2 * second_moment + (1 - beta2) * grads * grads
    flush_subnormal(first_moment)
    flush_subnormal(second_moment)
    params -= learning_rate * (first_moment / (1 - beta1 ** t)) / (np.sqrt(second_moment / (1 - beta2 ** t)) + epsilon)


def splitmix64(x):
    """SplitMix64's finaliser on uint64 values (wrapping arithmetic): counter-based random numbers."""
    with np.errstate(over="ignore"):           # the arithmetic wraps modulo 2⁶⁴ on purpose
        x = np.asarray(x, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def dropout_mask(mask, seed, counter, keep):
    """mask[i] := 1/keep with probability keep, else 0; draw i hashes splitmix64(seed) + counter + i."""
    with np.errstate(over="ignore"):
        draws = splitmix64(splitmix64(seed) + np.uint64(counter) + np.arange(mask.size, dtype=np.uint64))
    kept = (draws >> np.uint64(40)) < np.uint64(int(keep * 16777216.0))
    mask[...] = np.where(kept, mask.dtype.type(1 / keep), 0).reshape(mask.shape)


def gather_rows(X, index, out):
    """out[r] := X[index[r]] for every r."""
    np.take(X, index, axis=0, out=out)


def gather_scaled_rows(X, index, scale, out):
    """out[r] := dtype(X[index[r]]) · dtype(scale) for every r (out's dtype; X of uint8 or uint16)."""
    np.multiply(X[index].astype(out.dtype), out.dtype.type(scale), out=out)


def csr_mm(X, W, Z, rows=None):
    """Z := X[rows] · W for a SciPy CSR matrix X (all its rows when rows is None)."""
    Z[...] = (X if rows is None else X[rows]) @ W


def csr_tmm_add(alpha, X, D, G, rows=None):
    """G := G + alpha · X[rows]ᵀ · D for a SciPy CSR matrix X (all its rows when rows is None)."""
    G += alpha * ((X if rows is None else X[rows]).T @ D)


def same_layout(arrays, like):
    """Whether ``arrays`` can serve as state in place of zeros like ``like``: writeable, C-contiguous
    arrays of their shapes and dtypes, one each."""
    return len(arrays) == len(like) and all(
        isinstance(a, np.ndarray) and a.shape == p.shape and a.dtype == p.dtype
        and a.flags.c_contiguous and a.flags.writeable for a, p in zip(arrays, like))


class Network:
    """The NumPy twin of ``fastmlp._kernels.Network``: same constructor, same methods. A sparse X
    (a SciPy CSR matrix) goes through the same code: SciPy's sparse products give X[rows] · W and
    X[rows]ᵀ · Δ, so ``bind_sparse`` and ``backprop_sparse`` are ``bind`` and ``backprop``."""

    def __init__(self, weights, biases, activations, loss, capacity, momentum=0.0, l2=0.0, nthreads=1, *,
                 optimizer="sgd", l1=0.0, dropout=0.0, use_bias=True, beta1=0.9, beta2=0.999,
                 epsilon=1e-8, epsilon_hat=False, seed=0, sparse_input=False, state=None):
        self.weights, self.biases = list(weights), list(biases)
        self.layer_activations, self.loss = list(activations), loss
        self.capacity, self.momentum, self.l2, self.l1 = capacity, momentum, l2, l1
        self.optimizer, self.beta1, self.beta2, self.epsilon = optimizer, beta1, beta2, epsilon
        self.epsilon_hat = epsilon_hat
        self.dropout, self.use_bias, self.seed = dropout, use_bias, seed
        self.dtype = self.weights[0].dtype
        self.n_layers = len(self.weights)
        self.weight_grads = [np.zeros_like(w) for w in self.weights]
        self.bias_grads = [np.zeros_like(b) for b in self.biases]
        parameters = self.weights + self.biases
        first = parameters if optimizer == "adam" or momentum else []
        second = parameters if optimizer == "adam" else []
        self.state = (list(state) if state is not None and same_layout(state, first + second)
                      else [np.zeros_like(p) for p in first + second])
        self.step_count, self.dropout_counter = 0, 0
        self.activations, self.deltas = [], []
        self.sample_weight = None

    def bind(self, X, Y, order, sample_weight=None, input_scale=1.0):
        """Bind the training set; ``train_batch(start, stop)`` uses rows ``order[start:stop]``. An
        integer X is converted a batch at a time: the network's input is dtype(X) · dtype(input_scale)."""
        self.X, self.Y, self.order, self.sample_weight = X, Y, order, sample_weight
        self.input_scale = input_scale

    def bind_sparse(self, X, Y, order, sample_weight=None):
        """``bind`` for a SciPy CSR matrix X."""
        self.bind(X, Y, order, sample_weight)

    def train_batch(self, start, stop, learning_rate):
        """One optimizer step on rows ``order[start:stop]``; returns their summed (weighted) loss."""
        rows = self.order[start:stop]
        weights = None if self.sample_weight is None else self.sample_weight[rows]
        if self.X.dtype == self.dtype:
            inputs = self.X[rows]
        else:
            inputs = np.empty((len(rows), self.X.shape[1]), self.dtype)
            gather_scaled_rows(self.X, rows, self.input_scale, inputs)
        total = self._backprop(inputs, self.Y[rows], weights, training=True)
        self.step_count += 1
        parameters = self.weights + (self.biases if self.use_bias else [])
        gradients = self.weight_grads + (self.bias_grads if self.use_bias else [])
        n = len(self.weights + self.biases)
        epsilon = self.epsilon
        if self.epsilon_hat:   # m̂ / (√v̂ + ε/√c₂) = (√c₂ / c₁) · m / (√v + ε)
            epsilon /= np.sqrt(1 - self.beta2 ** self.step_count)
        for i, (params, grads) in enumerate(zip(parameters, gradients)):
            if self.optimizer == "adam":
                adam_update_inplace(params, grads, self.state[i], self.state[n + i], learning_rate,
                                    self.step_count, self.beta1, self.beta2, epsilon)
            else:
                sgd_update_inplace(params, grads, self.state[i] if self.state else None, learning_rate,
                                   self.momentum, nesterov=self.optimizer == "nesterov")
        return total

    def _forward(self, X, training=False):
        """Activations of every layer: a⁰ = X, aˡ⁺¹ = σ(aˡ · Wˡ + bˡ); in training with dropout,
        each hidden layer's output is multiplied by a fresh mask (kept in ``self.masks``)."""
        activations, self.raw, self.masks = [X], [X], [None]
        for l, (W, b, name) in enumerate(zip(self.weights, self.biases, self.layer_activations)):
            a = ACTIVATION_FUNCTIONS[name](activations[-1] @ W + (b if self.use_bias else 0))
            self.raw.append(a)
            mask = None
            if training and self.dropout and l < self.n_layers - 1:
                mask = np.empty_like(a)
                dropout_mask(mask, self.seed, self.dropout_counter, 1 - self.dropout)
                self.dropout_counter += a.size
                a = a * mask
            self.masks.append(mask)
            activations.append(a)
        return activations

    def forward(self, X, out):
        """out := network output for every row of X."""
        out[...] = self._forward(X)[-1]

    def backprop(self, X, Y, sample_weight=None):
        """Gradients of the mean cost over the rows of X into ``weight_grads``/``bias_grads``."""
        return self._backprop(X, Y, sample_weight)

    def backprop_sparse(self, X, Y, sample_weight=None):
        """``backprop`` for a SciPy CSR matrix X."""
        return self._backprop(X, Y, sample_weight)

    def _backprop(self, X, Y, sample_weight=None, training=False):
        self.activations = self._forward(X, training)
        total_weight = X.shape[0] if sample_weight is None else sample_weight.sum(dtype=self.dtype)
        L = self.n_layers
        self.deltas = [None] * L
        self.deltas[-1] = np.empty_like(self.activations[-1])
        total = output_delta(self.activations[-1], Y, self.deltas[-1], self.layer_activations[-1], self.loss,
                             sample_weight)
        for l in range(L - 1, -1, -1):
            # ∂C/∂weights[l] = (weighted) mean over the batch of a δᵀ, with a = activations[l] (this
            # layer's input) and δ = deltas[l] (its error);  ∂C/∂biases[l] = mean of δ
            self.weight_grads[l][...] = self.activations[l].T @ self.deltas[l] / total_weight
            if self.use_bias:
                self.bias_grads[l][...] = self.deltas[l].sum(axis=0) / total_weight
            self.weight_grads[l] += self.l2 * self.weights[l] + self.l1 * np.sign(self.weights[l])
            if l > 0:
                # the error of this layer's input: deltas[l-1] = (deltas[l] · weights[l]ᵀ) ⊙ σ'(z)
                # (times the dropout mask of activations[l])
                self.deltas[l - 1] = self.deltas[l] @ self.weights[l].T
                if self.masks[l] is not None:
                    self.deltas[l - 1] *= self.masks[l]
                activation_derivative_inplace(self.raw[l], self.deltas[l - 1], self.layer_activations[l - 1])
        return total
