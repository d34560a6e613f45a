# Included by _kernels.pyx.

# ---------------------------------------------------------------------------------------------
# Single kernels, exposed for the tests (same names and signatures as in fastmlp.reference)
# ---------------------------------------------------------------------------------------------

cdef const int64_t *_index(index, Py_ssize_t size, str name) except? NULL:
    """The data of an int64 index into 0 .. size-1, or NULL for None."""
    cdef const int64_t[::1] entries
    if index is None:
        return NULL
    entries = index
    if entries.shape[0] and (np.min(index) < 0 or np.max(index) >= size):
        raise ValueError(f"gemm: {name} holds an index out of range")
    return &entries[0] if entries.shape[0] else NULL


def gemm(double alpha, floating[:, :] A, floating[:, :] B, double beta, floating[:, ::1] C,
         int nthreads=1, a_rows=None, a_cols=None):
    """C := alpha · A · B + beta · C for any (strided, transposed) views A and B; with an int64
    index ``a_rows`` the product reads A[a_rows] (the rows it names, where they lie), with
    ``a_cols`` A[:, a_cols]."""
    cdef Py_ssize_t m = A.shape[0], k = A.shape[1], n = B.shape[1]
    cdef Py_ssize_t item = sizeof(floating)
    if a_rows is not None and a_cols is not None:
        raise ValueError("gemm: give a_rows or a_cols, not both")
    m = len(a_rows) if a_rows is not None else m
    k = len(a_cols) if a_cols is not None else k
    if B.shape[0] != k or C.shape[0] != m or C.shape[1] != n or nthreads < 1:
        raise ValueError("gemm: shapes do not match")
    cdef const int64_t *rows = _index(a_rows, A.shape[0], "a_rows")
    cdef const int64_t *cols = _index(a_cols, A.shape[1], "a_cols")
    cdef const floating *a = &A[0, 0] if A.shape[0] and A.shape[1] else NULL
    cdef const floating *bp = &B[0, 0] if k and n else NULL
    cdef floating *c = &C[0, 0] if m and n else NULL
    # malloc, not a NumPy array: for the smallest products the allocation would cost more than the work
    cdef size_t work_size = (fm_sgemm_workspace_size(m, n, k, nthreads) if floating is float
                             else fm_dgemm_workspace_size(m, n, k, nthreads))
    cdef floating *work = <floating *> malloc(work_size * sizeof(floating))
    if work == NULL:
        raise MemoryError("gemm: no memory for the workspace")
    with nogil:
        _gemm(m, n, k, <floating> alpha, a, A.strides[0] // item, A.strides[1] // item, rows, cols,
              bp, B.strides[0] // item, B.strides[1] // item, <floating> beta, c, C.strides[0] // item,
              work, nthreads)
        free(work)


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
                 str loss, sample_weight=None):
    """delta := δᴸ for each row (times its sample weight); returns the (weighted) loss summed over the rows."""
    if not (A.shape[0] == Y.shape[0] == delta.shape[0] and A.shape[1] == Y.shape[1] == delta.shape[1]):
        raise ValueError("A, Y and delta must have the same shape")
    cdef int act = ACTIVATIONS[activation], code = LOSSES[loss]
    cdef double total = 0
    cdef floating[::1] weights
    cdef const floating *w = NULL
    if sample_weight is not None:
        weights = sample_weight
        if weights.shape[0] != A.shape[0]:
            raise ValueError("sample_weight must have one value per row")
        w = &weights[0] if weights.shape[0] else NULL
    if A.shape[0] and A.shape[1]:
        with nogil:
            total = _output_delta(&A[0, 0], &Y[0, 0], NULL, &delta[0, 0], w, A.shape[0], A.shape[1], act,
                                  code, NULL)
    return total


def column_sums(floating[:, ::1] D, floating[::1] out, double scale):
    """out := scale · (sum of the rows of D)."""
    if out.shape[0] != D.shape[1]:
        raise ValueError("out length must equal the number of columns of D")
    if D.shape[1]:
        with nogil:
            _column_sums(&D[0, 0] if D.shape[0] else NULL, &out[0], D.shape[0], D.shape[1],
                         <floating> scale)


cdef floating *_state_pointer(floating[::1] params, state, str name) except? NULL:
    cdef floating[::1] view
    if state is None:
        return NULL
    view = state
    if view.shape[0] != params.shape[0]:
        raise ValueError(f"{name} must have the length of params")
    return &view[0] if view.shape[0] else NULL


def _step_inplace(floating[::1] params, floating[::1] grads, first, second, Step step):
    if grads.shape[0] != params.shape[0]:
        raise ValueError("params and grads must have the same length")
    cdef floating *s1 = _state_pointer(params, first, "state")
    cdef floating *s2 = _state_pointer(params, second, "state")
    if params.shape[0]:
        with nogil:
            _update(&params[0], &grads[0], s1, s2, params.shape[0], &step)


def sgd_update_inplace(params, grads, velocity, double learning_rate, double momentum=0.0,
                       bint nesterov=False):
    """params := params − η grads; with momentum μ: velocity := μ velocity − η grads and
    params += velocity (classical) or params += μ velocity − η grads (Nesterov)."""
    cdef Step step
    step.optimizer = NESTEROV if nesterov else SGD
    step.learning_rate, step.momentum, step.l2 = learning_rate, momentum, 0
    _step_inplace(params, grads, velocity, None, step)


def adam_update_inplace(params, grads, first_moment, second_moment, double learning_rate,
                        long long t, double beta1=0.9, double beta2=0.999, double epsilon=1e-8):
    """Adam step t (from 1): moments updated in place, params −= η m̂ / (√v̂ + ε)."""
    cdef Step step
    step.optimizer = ADAM
    step.learning_rate, step.beta1, step.beta2, step.epsilon = learning_rate, beta1, beta2, epsilon
    step.l2 = 0
    step.correction1, step.correction2 = 1 - beta1 ** t, 1 - beta2 ** t
    _step_inplace(params, grads, first_moment, second_moment, step)


def dropout_mask(floating[::1] mask, uint64_t seed, uint64_t counter, double keep):
    """mask[i] := 1/keep or 0, the draw for element i a hash of splitmix64(seed) + counter + i."""
    if not 0 < keep <= 1:
        raise ValueError("keep must be in (0, 1]")
    if mask.shape[0]:
        with nogil:
            _dropout_mask(&mask[0], mask.shape[0], _splitmix64(seed), counter, keep)


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


def gather_scaled_rows(const pixel[:, ::1] X, const int64_t[::1] index, double scale, floating[:, ::1] out):
    """out[r] := dtype(X[index[r]]) · dtype(scale) for every r (out's dtype)."""
    cdef Py_ssize_t r
    if out.shape[0] != index.shape[0] or out.shape[1] != X.shape[1]:
        raise ValueError("out must have shape (len(index), X.shape[1])")
    for r in range(index.shape[0]):
        if not 0 <= index[r] < X.shape[0]:
            raise IndexError(f"row index {index[r]} out of range")
    if index.shape[0] and X.shape[1]:
        with nogil:
            _gather_scaled_rows(&X[0, 0], &index[0], index.shape[0], X.shape[1], <floating> scale, &out[0, 0])


def _csr_rows(X, rows):
    """Check that rows (an int64 index, or None) names rows of X: the kernels trust it."""
    if rows is not None and len(rows) and (np.min(rows) < 0 or np.max(rows) >= X.shape[0]):
        raise IndexError("rows holds a row index out of range")


def csr_mm(X, floating[:, ::1] W, floating[:, ::1] Z, rows=None):
    """Z := X[rows] · W for a CSR matrix X (all its rows when rows is None)."""
    cdef Csr csr
    cdef const int64_t[::1] index
    cdef const int64_t *r = NULL
    cdef Py_ssize_t m = X.shape[0] if rows is None else len(rows)
    _csr_view(X, np.float32 if floating is float else np.float64, W.shape[0], &csr)
    _csr_rows(X, rows)
    if Z.shape[0] != m or Z.shape[1] != W.shape[1]:
        raise ValueError("csr_mm: Z must have shape (len(rows), W.shape[1])")
    if rows is not None and m:
        index = rows
        r = &index[0]
    if m and W.shape[1]:
        with nogil:
            _csr_mm(&csr, r, 0, m, W.shape[1], &W[0, 0], W.shape[1], &Z[0, 0], Z.shape[1])


def csr_tmm_add(double alpha, X, floating[:, ::1] D, floating[:, ::1] G, rows=None):
    """G := G + alpha · X[rows]ᵀ · D for a CSR matrix X (all its rows when rows is None)."""
    cdef Csr csr
    cdef const int64_t[::1] index
    cdef const int64_t *r = NULL
    cdef Py_ssize_t m = X.shape[0] if rows is None else len(rows)
    _csr_view(X, np.float32 if floating is float else np.float64, G.shape[0], &csr)
    _csr_rows(X, rows)
    if D.shape[0] != m or D.shape[1] != G.shape[1]:
        raise ValueError("csr_tmm_add: D must have shape (len(rows), G.shape[1])")
    if rows is not None and m:
        index = rows
        r = &index[0]
    if m and G.shape[1]:
        with nogil:
            _csr_tmm_add(&csr, r, 0, m, G.shape[1], <floating> alpha, &D[0, 0], D.shape[1], &G[0, 0], G.shape[1])


# How this module was built and which levels this CPU runs, for fastmlp.show_config(). setup.py
# defines FASTMLP_BUILD_FLAGS and FASTMLP_BUILT_WITH; the fallbacks cover any other build.
