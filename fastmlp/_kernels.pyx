# cython: language_level=3
"""Compiled kernels of fastmlp: every step of backpropagation for a dense network.

Row-major batches: the activations of layer l are a matrix with one row per sample, and
``weights[l]`` has shape ``(n_in, n_out)``, so a layer computes ``Z = A · W + b``, ``A' = σ(Z)``.
(Nielsen's and 3Blue1Brown's ``z = W a + b`` is the same product for one column vector ``a``:
our ``W`` is their ``Wᵀ``.)

Each kernel is a ``cdef ... nogil`` function over raw pointers, generic over ``float`` and
``double`` through the fused type ``floating``; the matrix products are the C GEMM in csrc/.
``Network`` strings the kernels together so that one call trains one mini-batch (gather rows,
forward, backward, update) without the GIL and without allocating. The ``def`` functions at
the end expose single kernels to the tests, with the same names as their NumPy twins in
``fastmlp.reference``. Kernels trust their callers: the Python layer validates user input.
"""
from cython cimport floating
from libc.math cimport log
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "fm_gemm.h" nogil:
    size_t fm_sgemm_workspace_size(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int nthreads)
    size_t fm_dgemm_workspace_size(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int nthreads)
    int fm_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                 const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                 const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                 float beta, float *C, Py_ssize_t ldc, float *work, int nthreads)
    int fm_dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                 const double *A, Py_ssize_t rsa, Py_ssize_t csa,
                 const double *B, Py_ssize_t rsb, Py_ssize_t csb,
                 double beta, double *C, Py_ssize_t ldc, double *work, int nthreads)
    const char *fm_gemm_isa()

cdef extern from "fm_activations.h" nogil:
    void fm_sbias_activation(Py_ssize_t rows, Py_ssize_t cols, float *Z, const float *b, int activation)
    void fm_dbias_activation(Py_ssize_t rows, Py_ssize_t cols, double *Z, const double *b, int activation)
    void fm_sactivation_derivative(Py_ssize_t size, const float *A, float *D, int activation)
    void fm_dactivation_derivative(Py_ssize_t size, const double *A, double *D, int activation)

    enum:   # activation codes
        FM_IDENTITY, FM_SIGMOID, FM_TANH, FM_RELU, FM_SOFTMAX

cdef enum Loss:
    QUADRATIC = 0
    CROSS_ENTROPY = 1
    LOG_LOSS = 2

# The codes the kernels take, by the names the Python layer uses.
ACTIVATIONS = {"identity": FM_IDENTITY, "sigmoid": FM_SIGMOID, "tanh": FM_TANH, "relu": FM_RELU,
               "softmax": FM_SOFTMAX}
LOSSES = {"quadratic": QUADRATIC, "cross_entropy": CROSS_ENTROPY, "log_loss": LOG_LOSS}

# log(a) of an output that rounded to 0 is clipped here, so a reported loss is finite.
cdef double LOG_FLOOR = 1e-300


def gemm_isa():
    """Name of the instruction-set level the GEMM uses on this CPU."""
    return fm_gemm_isa().decode()


def workspace_size(dtype, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int nthreads):
    """Number of elements of ``dtype`` the GEMM needs as workspace for an m x n x k product."""
    if np.dtype(dtype) == np.float32:
        return fm_sgemm_workspace_size(m, n, k, nthreads)
    return fm_dgemm_workspace_size(m, n, k, nthreads)


# ---------------------------------------------------------------------------------------------
# Kernels over raw pointers
# ---------------------------------------------------------------------------------------------

cdef inline int _gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                      const floating *A, Py_ssize_t rsa, Py_ssize_t csa,
                      const floating *B, Py_ssize_t rsb, Py_ssize_t csb,
                      floating beta, floating *C, Py_ssize_t ldc,
                      floating *work, int nthreads) noexcept nogil:
    """C := alpha · A · B + beta · C, A and B read through (row, column) strides."""
    if floating is float:
        return fm_sgemm(m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, work, nthreads)
    else:
        return fm_dgemm(m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, work, nthreads)


cdef inline void _bias_activation(floating *Z, const floating *b, Py_ssize_t rows, Py_ssize_t cols,
                                  int activation) noexcept nogil:
    """Z := σ(Z + b), b added to every row; σ elementwise (softmax: row by row, max-shifted)."""
    if floating is float:
        fm_sbias_activation(rows, cols, Z, b, activation)
    else:
        fm_dbias_activation(rows, cols, Z, b, activation)


cdef inline void _activation_derivative(const floating *A, floating *D, Py_ssize_t size,
                                        int activation) noexcept nogil:
    """D := D ⊙ σ'(z), with σ'(z) written in terms of the stored output a = σ(z):
    σ(1 − σ) for sigmoid, 1 − a² for tanh, 1 where a > 0 for ReLU."""
    if floating is float:
        fm_sactivation_derivative(size, A, D, activation)
    else:
        fm_dactivation_derivative(size, A, D, activation)


cdef double _output_delta(const floating *A, const floating *Y, floating *D,
                          Py_ssize_t rows, Py_ssize_t cols, int activation, int loss) noexcept nogil:
    """δᴸ := ∇ₐC ⊙ σ'(zᴸ) for every sample (row); returns the loss summed over the rows.

    quadratic      C = ½‖y − a‖²                   ∇ₐC = a − y
    cross_entropy  C = −Σ y ln a + (1−y) ln(1−a)    δᴸ = a − y   (sigmoid output: σ' cancels)
    log_loss       C = −Σ y ln a                    δᴸ = a − y   (softmax output: Jacobian cancels)
    """
    cdef Py_ssize_t i, j, size = rows * cols
    cdef double total = 0, a, y, dot
    for i in range(size):
        D[i] = A[i] - Y[i]
    if loss == QUADRATIC:
        for i in range(size):
            total += 0.5 * D[i] * D[i]
        if activation == FM_SOFTMAX:
            # softmax's Jacobian is diag(a) − a aᵀ, so δ = a ⊙ (g − (a·g)) with g = a − y
            for i in range(rows):
                dot = 0
                for j in range(cols):
                    dot += A[i * cols + j] * D[i * cols + j]
                for j in range(cols):
                    D[i * cols + j] = A[i * cols + j] * (D[i * cols + j] - dot)
        else:
            _activation_derivative(A, D, size, activation)
    elif loss == CROSS_ENTROPY:
        for i in range(size):
            a = A[i]
            y = Y[i]
            total -= y * log(max(a, LOG_FLOOR)) + (1 - y) * log(max(1 - a, LOG_FLOOR))
    else:
        for i in range(size):
            if Y[i] != 0:
                total -= Y[i] * log(max(<double> A[i], LOG_FLOOR))
    return total


cdef void _column_sums(const floating *D, floating *out, Py_ssize_t rows, Py_ssize_t cols,
                       floating scale) noexcept nogil:
    """out := scale · Σᵢ D[i, :]   (the bias gradient: δ summed over the batch)."""
    cdef Py_ssize_t i, j
    for j in range(cols):
        out[j] = 0
    for i in range(rows):
        for j in range(cols):
            out[j] += D[i * cols + j]
    for j in range(cols):
        out[j] *= scale


cdef void _add_scaled(floating *out, const floating *x, Py_ssize_t size, floating scale) noexcept nogil:
    """out := out + scale · x   (the L2 term of a weight gradient)."""
    cdef Py_ssize_t i
    for i in range(size):
        out[i] += scale * x[i]


cdef void _sgd_update(floating *P, const floating *G, floating *V, Py_ssize_t size,
                      floating learning_rate, floating momentum) noexcept nogil:
    """P := P − η G;  with momentum μ (V not NULL): V := μ V − η G, P := P + V."""
    cdef Py_ssize_t i
    if V == NULL:
        for i in range(size):
            P[i] -= learning_rate * G[i]
    else:
        for i in range(size):
            V[i] = momentum * V[i] - learning_rate * G[i]
            P[i] += V[i]


cdef void _gather_rows(const floating *X, const int64_t *index, Py_ssize_t count, Py_ssize_t cols,
                       floating *out) noexcept nogil:
    """out[r, :] := X[index[r], :]   (a shuffled mini-batch, without copying the data set)."""
    cdef Py_ssize_t r
    for r in range(count):
        memcpy(out + r * cols, X + index[r] * cols, cols * sizeof(floating))


# ---------------------------------------------------------------------------------------------
# A network: weights plus every buffer one mini-batch needs, allocated once
# ---------------------------------------------------------------------------------------------

cdef char *_data(cnp.ndarray array):
    return <char *> cnp.PyArray_DATA(array)


cdef char **_pointers(list arrays) except NULL:
    cdef char **out = <char **> malloc((len(arrays) + 1) * sizeof(char *))
    if out == NULL:
        raise MemoryError()
    for i, array in enumerate(arrays):
        out[i] = _data(array)
    return out


cdef class Network:
    """Weights, biases and the training buffers of one dense network.

    ``weights`` and ``biases`` are updated in place by ``train_batch``; every other buffer
    (activations, deltas, gradients, velocities, GEMM workspace) is allocated here, once, for
    mini-batches of up to ``capacity`` rows.
    """
    cdef readonly int n_layers, nthreads
    cdef readonly Py_ssize_t capacity
    cdef readonly object dtype
    cdef readonly list weights, biases, activations, deltas, weight_grads, bias_grads
    cdef readonly double momentum, l2
    cdef list _velocities, _bound
    cdef int loss, is_double
    cdef Py_ssize_t *sizes
    cdef int *codes
    cdef char **W
    cdef char **b
    cdef char **gW
    cdef char **gb
    cdef char **vW
    cdef char **vb
    cdef char **acts
    cdef char **dels
    cdef char *work
    cdef char *Y_batch
    cdef char *X_data
    cdef char *Y_data
    cdef int64_t *order
    cdef Py_ssize_t n_samples

    def __cinit__(self):
        self.sizes = NULL
        self.codes = NULL
        self.W = self.b = self.gW = self.gb = self.vW = self.vb = self.acts = self.dels = NULL

    def __init__(self, list weights, list biases, activations, str loss, Py_ssize_t capacity,
                 double momentum=0.0, double l2=0.0, int nthreads=1):
        """Bind ``weights[l]`` (n_in, n_out) and ``biases[l]`` (n_out,), C-contiguous, one dtype.

        ``activations`` names each layer's activation, ``loss`` the cost function.
        """
        cdef Py_ssize_t l, work_size = 1
        n_layers = len(weights)
        if n_layers < 1 or len(biases) != n_layers or len(activations) != n_layers:
            raise ValueError("need one weight matrix, bias vector and activation per layer")
        dtype = np.dtype(weights[0].dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"weights must be float32 or float64, got {dtype}")
        if capacity < 1 or nthreads < 1:
            raise ValueError("capacity and nthreads must be >= 1")
        for l in range(n_layers):
            w, bias = weights[l], biases[l]
            if (not isinstance(w, np.ndarray) or not isinstance(bias, np.ndarray)
                    or w.dtype != dtype or bias.dtype != dtype or w.ndim != 2
                    or bias.shape != (w.shape[1],) or not w.flags.c_contiguous
                    or not w.flags.writeable or not bias.flags.c_contiguous
                    or not bias.flags.writeable
                    or (l > 0 and w.shape[0] != weights[l - 1].shape[1])):
                raise ValueError(f"layer {l}: weights and biases have inconsistent shapes or dtypes")
        self.n_layers = n_layers
        self.dtype = dtype
        self.is_double = dtype == np.float64
        self.loss = LOSSES[loss]
        self.capacity = capacity
        self.momentum = momentum
        self.l2 = l2
        self.nthreads = nthreads
        self.weights = list(weights)
        self.biases = list(biases)
        widths = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        self.activations = [np.zeros((capacity, n), dtype) for n in widths]
        self.deltas = [np.zeros((capacity, n), dtype) for n in widths[1:]]
        self.weight_grads = [np.zeros_like(w) for w in weights]
        self.bias_grads = [np.zeros_like(bias) for bias in biases]
        use_momentum = momentum != 0
        self._velocities = ([np.zeros_like(w) for w in weights] + [np.zeros_like(bias) for bias in biases]
                            if use_momentum else [])
        for l in range(n_layers):
            n_in, n_out = widths[l], widths[l + 1]
            for m, n, k in ((capacity, n_out, n_in), (n_in, n_out, capacity), (capacity, n_in, n_out)):
                work_size = max(work_size, workspace_size(dtype, m, n, k, nthreads))
        workspace = np.empty(work_size, dtype)
        y_batch = np.zeros((capacity, widths[-1]), dtype)
        self._bound = [workspace, y_batch, self._velocities]

        self.sizes = <Py_ssize_t *> malloc((n_layers + 1) * sizeof(Py_ssize_t))
        self.codes = <int *> malloc(n_layers * sizeof(int))
        if self.sizes == NULL or self.codes == NULL:
            raise MemoryError()
        for l in range(n_layers + 1):
            self.sizes[l] = widths[l]
        for l in range(n_layers):
            self.codes[l] = ACTIVATIONS[activations[l]]
        self.W = _pointers(self.weights)
        self.b = _pointers(self.biases)
        self.gW = _pointers(self.weight_grads)
        self.gb = _pointers(self.bias_grads)
        self.acts = _pointers(self.activations)
        self.dels = _pointers(self.deltas)
        if use_momentum:
            self.vW = _pointers(self._velocities[:n_layers])
            self.vb = _pointers(self._velocities[n_layers:])
        self.work = _data(workspace)
        self.Y_batch = _data(y_batch)
        self.n_samples = 0

    def __dealloc__(self):
        free(self.sizes)
        free(self.codes)
        free(self.W)
        free(self.b)
        free(self.gW)
        free(self.gb)
        free(self.vW)
        free(self.vb)
        free(self.acts)
        free(self.dels)

    def bind(self, cnp.ndarray X, cnp.ndarray Y, cnp.ndarray order):
        """Bind the training set: X (n, n_in), targets Y (n, n_out), and an int64 ``order``.

        ``train_batch(start, stop)`` trains on the rows ``order[start:stop]``; the caller
        reshuffles ``order`` in place between epochs.
        """
        if (X.dtype != self.dtype or Y.dtype != self.dtype or order.dtype != np.int64
                or X.ndim != 2 or Y.ndim != 2 or order.ndim != 1
                or X.shape[1] != self.sizes[0] or Y.shape[1] != self.sizes[self.n_layers]
                or X.shape[0] != Y.shape[0] or order.shape[0] != X.shape[0]
                or not (X.flags.c_contiguous and Y.flags.c_contiguous and order.flags.c_contiguous)):
            raise ValueError("bind: X, Y and order do not match the network")
        if order.shape[0] and (order.min() < 0 or order.max() >= X.shape[0]):
            raise ValueError("bind: order holds a row index out of range")
        self._bound = self._bound[:3] + [X, Y, order]
        self.X_data = _data(X)
        self.Y_data = _data(Y)
        self.order = <int64_t *> _data(order)
        self.n_samples = X.shape[0]

    def train_batch(self, Py_ssize_t start, Py_ssize_t stop, double learning_rate):
        """One step of gradient descent on rows ``order[start:stop]``; returns their summed loss."""
        cdef Py_ssize_t rows = stop - start
        cdef double total
        if start < 0 or rows < 1 or rows > self.capacity or stop > self.n_samples:
            raise ValueError(f"train_batch: bad row range [{start}, {stop})")
        with nogil:
            if self.is_double:
                _gather_rows(<double *> self.X_data, self.order + start, rows, self.sizes[0],
                             <double *> self.acts[0])
                _gather_rows(<double *> self.Y_data, self.order + start, rows,
                             self.sizes[self.n_layers], <double *> self.Y_batch)
                total = _train_step[double](self, rows, <double *> self.Y_batch, learning_rate)
            else:
                _gather_rows(<float *> self.X_data, self.order + start, rows, self.sizes[0],
                             <float *> self.acts[0])
                _gather_rows(<float *> self.Y_data, self.order + start, rows,
                             self.sizes[self.n_layers], <float *> self.Y_batch)
                total = _train_step[float](self, rows, <float *> self.Y_batch, learning_rate)
        return total

    def forward(self, cnp.ndarray X, cnp.ndarray out):
        """out := network output for every row of X, computed ``capacity`` rows at a time."""
        cdef Py_ssize_t start = 0, rows, n = X.shape[0]
        cdef char *x = _data(X)
        cdef char *o = _data(out)
        self._check_batch(X, out, n)
        if not out.flags.writeable:
            raise ValueError("forward: out must be writeable")
        with nogil:
            while start < n:
                rows = min(self.capacity, n - start)
                if self.is_double:
                    _forward[double](self, <double *> x + start * self.sizes[0], rows,
                                     <double *> o + start * self.sizes[self.n_layers])
                else:
                    _forward[float](self, <float *> x + start * self.sizes[0], rows,
                                    <float *> o + start * self.sizes[self.n_layers])
                start += rows

    def backprop(self, cnp.ndarray X, cnp.ndarray Y):
        """Gradients of the mean cost over the rows of X into ``weight_grads``/``bias_grads``.

        After the call ``activations[l][:n]`` and ``deltas[l][:n]`` hold aˡ and δˡ of every
        sample. Returns the loss summed over the rows (without the L2 term).
        """
        cdef Py_ssize_t rows = X.shape[0]
        cdef double total
        cdef char *x = _data(X)
        cdef char *y = _data(Y)
        self._check_batch(X, Y, self.capacity)
        if rows < 1:
            raise ValueError("backprop needs at least one row")
        with nogil:
            if self.is_double:
                memcpy(self.acts[0], x, rows * self.sizes[0] * sizeof(double))
                _forward_backward[double](self, rows, <double *> y, &total)
            else:
                memcpy(self.acts[0], x, rows * self.sizes[0] * sizeof(float))
                _forward_backward[float](self, rows, <float *> y, &total)
        return total

    def _check_batch(self, cnp.ndarray X, cnp.ndarray Y, Py_ssize_t max_rows):
        if (X.dtype != self.dtype or Y.dtype != self.dtype or X.ndim != 2 or Y.ndim != 2
                or X.shape[1] != self.sizes[0] or Y.shape[1] != self.sizes[self.n_layers]
                or X.shape[0] != Y.shape[0] or X.shape[0] > max_rows
                or not (X.flags.c_contiguous and Y.flags.c_contiguous)):
            raise ValueError("arrays do not match the network's shapes, dtype or capacity")


cdef void _forward(Network net, const floating *X, Py_ssize_t rows, floating *out) noexcept nogil:
    """Forward pass of ``rows`` samples from X (not copied) to out: aˡ⁺¹ = σ(aˡ · Wˡ + bˡ)."""
    cdef Py_ssize_t l
    cdef const floating *a = X
    cdef floating *z
    cdef floating *work = <floating *> net.work
    cdef Py_ssize_t *n = net.sizes
    for l in range(net.n_layers):
        z = out if l == net.n_layers - 1 else <floating *> net.acts[l + 1]
        _gemm(rows, n[l + 1], n[l], <floating> 1, a, n[l], 1, <floating *> net.W[l], n[l + 1], 1,
              <floating> 0, z, n[l + 1], work, net.nthreads)
        _bias_activation(z, <floating *> net.b[l], rows, n[l + 1], net.codes[l])
        a = z


cdef void _forward_backward(Network net, Py_ssize_t rows, const floating *Y,
                            double *loss_total) noexcept nogil:
    """Forward pass from acts[0], then backpropagation into the gradient buffers."""
    cdef Py_ssize_t l, L = net.n_layers
    cdef Py_ssize_t *n = net.sizes
    cdef floating *work = <floating *> net.work
    cdef floating inv_rows = (<floating> 1) / rows
    cdef floating *a
    cdef floating *delta
    _forward(net, <floating *> net.acts[0], rows, <floating *> net.acts[L])
    # Output error: δᴸ = ∇ₐC ⊙ σ'(zᴸ)
    loss_total[0] = _output_delta(<floating *> net.acts[L], Y, <floating *> net.dels[L - 1],
                                  rows, n[L], net.codes[L - 1], net.loss)
    for l in range(L - 1, -1, -1):
        a = <floating *> net.acts[l]
        delta = <floating *> net.dels[l]
        # ∂C/∂Wˡ = (1/rows) Σ_x aˡ⁻¹ δˡᵀ = (1/rows) Aᵀ Δ   (A read transposed through strides)
        _gemm(n[l], n[l + 1], rows, inv_rows, a, 1, n[l], delta, n[l + 1], 1,
              <floating> 0, <floating *> net.gW[l], n[l + 1], work, net.nthreads)
        # ∂C/∂bˡ = (1/rows) Σ_x δˡ
        _column_sums(delta, <floating *> net.gb[l], rows, n[l + 1], inv_rows)
        if net.l2 != 0:
            _add_scaled(<floating *> net.gW[l], <floating *> net.W[l], n[l] * n[l + 1],
                        <floating> net.l2)
        if l > 0:
            # δˡ⁻¹ = (δˡ · Wˡᵀ) ⊙ σ'(zˡ⁻¹)   (W read transposed through strides)
            _gemm(rows, n[l], n[l + 1], <floating> 1, delta, n[l + 1], 1,
                  <floating *> net.W[l], 1, n[l + 1], <floating> 0,
                  <floating *> net.dels[l - 1], n[l], work, net.nthreads)
            _activation_derivative(a, <floating *> net.dels[l - 1], rows * n[l], net.codes[l - 1])


cdef double _train_step(Network net, Py_ssize_t rows, const floating *Y,
                        floating learning_rate) noexcept nogil:
    """Forward, backward and one gradient-descent update of every layer; returns the loss sum."""
    cdef Py_ssize_t l
    cdef double total
    cdef Py_ssize_t *n = net.sizes
    _forward_backward(net, rows, Y, &total)
    for l in range(net.n_layers):
        _sgd_update(<floating *> net.W[l], <floating *> net.gW[l],
                    <floating *> net.vW[l] if net.vW != NULL else NULL,
                    n[l] * n[l + 1], learning_rate, <floating> net.momentum)
        _sgd_update(<floating *> net.b[l], <floating *> net.gb[l],
                    <floating *> net.vb[l] if net.vb != NULL else NULL,
                    n[l + 1], learning_rate, <floating> net.momentum)
    return total


# ---------------------------------------------------------------------------------------------
# Single kernels, exposed for the tests (same names and signatures as in fastmlp.reference)
# ---------------------------------------------------------------------------------------------

def gemm(double alpha, floating[:, :] A, floating[:, :] B, double beta, floating[:, ::1] C,
         int nthreads=1):
    """C := alpha · A · B + beta · C for any (strided, transposed) views A and B."""
    cdef Py_ssize_t m = A.shape[0], k = A.shape[1], n = B.shape[1]
    cdef Py_ssize_t item = sizeof(floating)
    if B.shape[0] != k or C.shape[0] != m or C.shape[1] != n or nthreads < 1:
        raise ValueError("gemm: shapes do not match")
    work = np.empty(workspace_size(np.float32 if floating is float else np.float64, m, n, k, nthreads),
                    np.float32 if floating is float else np.float64)
    cdef floating[::1] w = work
    cdef const floating *a = &A[0, 0] if m and k else NULL
    cdef const floating *bp = &B[0, 0] if k and n else NULL
    cdef floating *c = &C[0, 0] if m and n else NULL
    with nogil:
        _gemm(m, n, k, <floating> alpha, a, A.strides[0] // item, A.strides[1] // item,
              bp, B.strides[0] // item, B.strides[1] // item, <floating> beta, c, C.strides[0] // item,
              &w[0], nthreads)


def bias_activation_inplace(floating[:, ::1] Z, floating[::1] b, str activation):
    """Z := σ(Z + b) row by row."""
    if b.shape[0] != Z.shape[1]:
        raise ValueError("bias length must equal the number of columns of Z")
    cdef int code = ACTIVATIONS[activation]
    if Z.shape[0] and Z.shape[1]:
        with nogil:
            _bias_activation(&Z[0, 0], &b[0], Z.shape[0], Z.shape[1], code)


def activation_derivative_inplace(floating[:, ::1] A, floating[:, ::1] delta, str activation):
    """delta := delta ⊙ σ'(z), from the stored activation A = σ(z)."""
    if A.shape[0] != delta.shape[0] or A.shape[1] != delta.shape[1]:
        raise ValueError("A and delta must have the same shape")
    cdef int code = ACTIVATIONS[activation]
    if A.shape[0] and A.shape[1]:
        with nogil:
            _activation_derivative(&A[0, 0], &delta[0, 0], A.shape[0] * A.shape[1], code)


def output_delta(floating[:, ::1] A, floating[:, ::1] Y, floating[:, ::1] delta, str activation,
                 str loss):
    """delta := δᴸ for each row; returns the loss summed over the rows."""
    if not (A.shape[0] == Y.shape[0] == delta.shape[0] and A.shape[1] == Y.shape[1] == delta.shape[1]):
        raise ValueError("A, Y and delta must have the same shape")
    cdef int act = ACTIVATIONS[activation], code = LOSSES[loss]
    cdef double total = 0
    if A.shape[0] and A.shape[1]:
        with nogil:
            total = _output_delta(&A[0, 0], &Y[0, 0], &delta[0, 0], A.shape[0], A.shape[1], act, code)
    return total


def column_sums(floating[:, ::1] D, floating[::1] out, double scale):
    """out := scale · (sum of the rows of D)."""
    if out.shape[0] != D.shape[1]:
        raise ValueError("out length must equal the number of columns of D")
    if D.shape[1]:
        with nogil:
            _column_sums(&D[0, 0] if D.shape[0] else NULL, &out[0], D.shape[0], D.shape[1],
                         <floating> scale)


def sgd_update_inplace(floating[::1] params, floating[::1] grads, velocity, double learning_rate,
                       double momentum=0.0):
    """params := params − η grads, or with momentum: velocity := μ·velocity − η grads, params += velocity."""
    if grads.shape[0] != params.shape[0]:
        raise ValueError("params and grads must have the same length")
    cdef floating[::1] v
    cdef floating *vp = NULL
    if velocity is not None:
        v = velocity
        if v.shape[0] != params.shape[0]:
            raise ValueError("velocity must have the length of params")
        vp = &v[0] if v.shape[0] else NULL
    if params.shape[0]:
        with nogil:
            _sgd_update(&params[0], &grads[0], vp, params.shape[0], <floating> learning_rate,
                        <floating> momentum)


def gather_rows(floating[:, ::1] X, const int64_t[::1] index, floating[:, ::1] out):
    """out[r] := X[index[r]] for every r."""
    cdef Py_ssize_t r
    if out.shape[0] != index.shape[0] or out.shape[1] != X.shape[1]:
        raise ValueError("out must have shape (len(index), X.shape[1])")
    for r in range(index.shape[0]):
        if not 0 <= index[r] < X.shape[0]:
            raise IndexError(f"row index {index[r]} out of range")
    if index.shape[0] and X.shape[1]:
        with nogil:
            _gather_rows(&X[0, 0], &index[0], index.shape[0], X.shape[1], &out[0, 0])
