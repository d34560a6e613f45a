# Included by _kernels.pyx.

# ---------------------------------------------------------------------------------------------
# Single kernels, exposed for the tests (same names and signatures as in fastmlp.reference)
# ---------------------------------------------------------------------------------------------

# The arrays are checked here, not by typed memoryviews: those would add Cython's memoryview code
# (40% of the generated C, and of its compile time) to a module whose other functions need none of it.

cdef cnp.ndarray _operand(x, str name, int ndim, dtype=None, str layout="C", bint writeable=False):
    """x as a kernel reads it: a NumPy array of ndim dimensions and this dtype (float32 or float64 if
    None), aligned (so its strides are whole elements), in the machine's byte order, and writeable
    if asked. layout "C": C-contiguous; "rows": its rows contiguous, at any row stride; "any": any
    strides."""
    if not isinstance(x, np.ndarray) or x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D NumPy array")
    cdef cnp.ndarray a = x
    if (a.dtype != dtype) if dtype is not None else (a.dtype not in (np.float32, np.float64)):
        raise ValueError(f"{name} must be {'float32 or float64' if dtype is None else np.dtype(dtype)}, "
                         f"not {a.dtype}")
    if not cnp.PyArray_ISBEHAVED_RO(a):
        raise ValueError(f"{name} must be aligned and in the machine's byte order")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if layout == "C" and not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{name} must be C-contiguous")
    if layout == "rows" and a.shape[1] > 1 and a.strides[1] != a.itemsize:
        raise ValueError(f"{name} must be contiguous along its rows")
    return a


cdef const int64_t *_index(index, Py_ssize_t size, str name) except? NULL:
    """The data of an int64 index into 0 .. size-1, or NULL for None (or no entries)."""
    if index is None:
        return NULL
    cdef cnp.ndarray entries = _operand(index, name, 1, np.int64)
    if len(entries) and (np.min(entries) < 0 or np.max(entries) >= size):
        raise ValueError(f"gemm: {name} holds an index out of range")
    return <const int64_t *> _data(entries) if len(entries) else NULL


def gemm(double alpha, A, B, double beta, C, int nthreads=1, a_rows=None, a_cols=None):
    """C := alpha · A · B + beta · C for any (strided, transposed) views A and B; with an int64
    index ``a_rows`` the product reads A[a_rows] (the rows it names, where they lie), with
    ``a_cols`` A[:, a_cols]."""
    cdef cnp.ndarray c = _operand(C, "C", 2, None, "rows", True)
    cdef cnp.ndarray a = _operand(A, "A", 2, c.dtype, "any"), b = _operand(B, "B", 2, c.dtype, "any")
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1], item = c.itemsize
    cdef bint double = c.dtype == np.float64
    if a_rows is not None and a_cols is not None:
        raise ValueError("gemm: give a_rows or a_cols, not both")
    m = len(a_rows) if a_rows is not None else m
    k = len(a_cols) if a_cols is not None else k
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != n or nthreads < 1:
        raise ValueError("gemm: shapes do not match")
    cdef const int64_t *rows = _index(a_rows, a.shape[0], "a_rows")
    cdef const int64_t *cols = _index(a_cols, a.shape[1], "a_cols")
    cdef Py_ssize_t rsa = a.strides[0] // item, csa = a.strides[1] // item
    cdef Py_ssize_t rsb = b.strides[0] // item, csb = b.strides[1] // item, ldc = c.strides[0] // item
    cdef const char *pa = _data(a) if a.shape[0] and a.shape[1] else NULL
    cdef const char *pb = _data(b) if k and n else NULL
    cdef char *pc = _data(c) if m and n else NULL
    # malloc, not a NumPy array: for the smallest products the allocation would cost more than the work
    cdef size_t work_size = (fm_dgemm_workspace_size(m, n, k, nthreads) if double
                             else fm_sgemm_workspace_size(m, n, k, nthreads))
    cdef char *work = <char *> malloc(work_size * item)
    if work == NULL:
        raise MemoryError("gemm: no memory for the workspace")
    with nogil:
        if double:
            _gemm(m, n, k, alpha, <const double *> pa, rsa, csa, rows, cols, <const double *> pb, rsb, csb,
                  beta, <double *> pc, ldc, <double *> work, nthreads)
        else:
            _gemm(m, n, k, <float> alpha, <const float *> pa, rsa, csa, rows, cols, <const float *> pb, rsb,
                  csb, <float> beta, <float *> pc, ldc, <float *> work, nthreads)
        free(work)


def bias_activation_inplace(Z, b, str activation):
    """Z := σ(Z + b) row by row."""
    cdef cnp.ndarray z = _operand(Z, "Z", 2, None, "C", True)
    cdef cnp.ndarray bias = _operand(b, "b", 1, z.dtype)
    if bias.shape[0] != z.shape[1]:
        raise ValueError("bias length must equal the number of columns of Z")
    cdef int code = ACTIVATIONS[activation]
    if z.size == 0:
        return
    if z.dtype == np.float64:
        _bias_activation(<double *> _data(z), <const double *> _data(bias), z.shape[0], z.shape[1], code)
    else:
        _bias_activation(<float *> _data(z), <const float *> _data(bias), z.shape[0], z.shape[1], code)


def activation_derivative_inplace(A, delta, str activation):
    """delta := delta ⊙ σ'(z), from the stored activation A = σ(z)."""
    cdef cnp.ndarray d = _operand(delta, "delta", 2, None, "C", True)
    cdef cnp.ndarray a = _operand(A, "A", 2, d.dtype)
    if a.shape[0] != d.shape[0] or a.shape[1] != d.shape[1]:
        raise ValueError("A and delta must have the same shape")
    cdef int code = ACTIVATIONS[activation]
    if d.dtype == np.float64:
        _activation_derivative(<const double *> _data(a), <double *> _data(d), d.size, code)
    else:
        _activation_derivative(<const float *> _data(a), <float *> _data(d), d.size, code)


def output_delta(A, Y, delta, str activation, str loss, sample_weight=None):
    """delta := δᴸ for each row (times its sample weight); returns the (weighted) loss summed over the rows."""
    cdef cnp.ndarray d = _operand(delta, "delta", 2, None, "C", True)
    cdef cnp.ndarray a = _operand(A, "A", 2, d.dtype), y = _operand(Y, "Y", 2, d.dtype)
    cdef cnp.ndarray weights = None
    if not (a.shape[0] == y.shape[0] == d.shape[0] and a.shape[1] == y.shape[1] == d.shape[1]):
        raise ValueError("A, Y and delta must have the same shape")
    cdef int act = ACTIVATIONS[activation], code = LOSSES[loss]
    if sample_weight is not None:
        weights = _operand(sample_weight, "sample_weight", 1, d.dtype)
        if weights.shape[0] != a.shape[0]:
            raise ValueError("sample_weight must have one value per row")
    cdef const char *w = _data(weights) if weights is not None and weights.shape[0] else NULL
    if d.size == 0:
        return 0.0
    if d.dtype == np.float64:
        return _output_delta(<const double *> _data(a), <const double *> _data(y), NULL, <double *> _data(d),
                             <const double *> w, d.shape[0], d.shape[1], act, code, NULL)
    return _output_delta(<const float *> _data(a), <const float *> _data(y), NULL, <float *> _data(d),
                         <const float *> w, d.shape[0], d.shape[1], act, code, NULL)


def column_sums(D, out, double scale):
    """out := scale · (sum of the rows of D)."""
    cdef cnp.ndarray o = _operand(out, "out", 1, None, "C", True)
    cdef cnp.ndarray d = _operand(D, "D", 2, o.dtype)
    if o.shape[0] != d.shape[1]:
        raise ValueError("out length must equal the number of columns of D")
    if o.shape[0] == 0:
        return
    if o.dtype == np.float64:
        _column_sums(<const double *> _data(d), <double *> _data(o), d.shape[0], d.shape[1], scale)
    else:
        _column_sums(<const float *> _data(d), <float *> _data(o), d.shape[0], d.shape[1], <float> scale)


cdef char *_state_pointer(cnp.ndarray params, state, str name) except? NULL:
    if state is None:
        return NULL
    cdef cnp.ndarray view = _operand(state, name, 1, params.dtype, "C", True)
    if view.shape[0] != params.shape[0]:
        raise ValueError(f"{name} must have the length of params")
    return _data(view) if view.shape[0] else NULL


def _step_inplace(params, grads, first, second, Step step):
    cdef cnp.ndarray p = _operand(params, "params", 1, None, "C", True)
    cdef cnp.ndarray g = _operand(grads, "grads", 1, p.dtype)
    if g.shape[0] != p.shape[0]:
        raise ValueError("params and grads must have the same length")
    cdef char *s1 = _state_pointer(p, first, "state")
    cdef char *s2 = _state_pointer(p, second, "state")
    if p.shape[0] == 0:
        return
    if p.dtype == np.float64:
        _update(<double *> _data(p), <const double *> _data(g), <double *> s1, <double *> s2, p.shape[0], &step)
    else:
        _update(<float *> _data(p), <const float *> _data(g), <float *> s1, <float *> s2, p.shape[0], &step)


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


def dropout_mask(mask, uint64_t seed, uint64_t counter, double keep):
    """mask[i] := 1/keep or 0, the draw for element i a hash of splitmix64(seed) + counter + i."""
    cdef cnp.ndarray m = _operand(mask, "mask", 1, None, "C", True)
    if not 0 < keep <= 1:
        raise ValueError("keep must be in (0, 1]")
    if m.dtype == np.float64:
        _dropout_mask(<double *> _data(m), m.shape[0], _splitmix64(seed), counter, keep)
    else:
        _dropout_mask(<float *> _data(m), m.shape[0], _splitmix64(seed), counter, keep)


cdef const int64_t *_row_index(index, Py_ssize_t rows, Py_ssize_t count) except? NULL:
    """The data of an int64 index of count rows of a matrix of rows rows (IndexError for one out of range)."""
    cdef cnp.ndarray entries = _operand(index, "index", 1, np.int64)
    if entries.shape[0] != count:
        raise ValueError("out must have shape (len(index), X.shape[1])")
    if count and (np.min(entries) < 0 or np.max(entries) >= rows):
        bad = entries[(entries < 0) | (entries >= rows)][0]
        raise IndexError(f"row index {bad} out of range")
    return <const int64_t *> _data(entries) if count else NULL


def gather_rows(X, index, out):
    """out[r] := X[index[r]] for every r."""
    cdef cnp.ndarray o = _operand(out, "out", 2, None, "C", True)
    cdef cnp.ndarray x = _operand(X, "X", 2, o.dtype)
    if o.shape[1] != x.shape[1]:
        raise ValueError("out must have shape (len(index), X.shape[1])")
    cdef const int64_t *rows = _row_index(index, x.shape[0], o.shape[0])
    if o.size == 0:
        return
    if o.dtype == np.float64:
        _gather_rows(<const double *> _data(x), rows, o.shape[0], o.shape[1], <double *> _data(o))
    else:
        _gather_rows(<const float *> _data(x), rows, o.shape[0], o.shape[1], <float *> _data(o))


def gather_scaled_rows(X, index, double scale, out):
    """out[r] := dtype(X[index[r]]) · dtype(scale) for every r (out's dtype)."""
    cdef cnp.ndarray o = _operand(out, "out", 2, None, "C", True)
    pixels = getattr(X, "dtype", None)
    cdef cnp.ndarray x = _operand(X, "X", 2, pixels if pixels in (np.uint8, np.uint16) else np.uint8)
    if o.shape[1] != x.shape[1]:
        raise ValueError("out must have shape (len(index), X.shape[1])")
    cdef const int64_t *rows = _row_index(index, x.shape[0], o.shape[0])
    cdef Py_ssize_t count = o.shape[0], cols = o.shape[1]
    if o.size == 0:
        return
    if x.dtype == np.uint8 and o.dtype == np.float64:
        _gather_scaled_rows(<const uint8_t *> _data(x), rows, count, cols, scale, <double *> _data(o))
    elif x.dtype == np.uint8:
        _gather_scaled_rows(<const uint8_t *> _data(x), rows, count, cols, <float> scale, <float *> _data(o))
    elif o.dtype == np.float64:
        _gather_scaled_rows(<const uint16_t *> _data(x), rows, count, cols, scale, <double *> _data(o))
    else:
        _gather_scaled_rows(<const uint16_t *> _data(x), rows, count, cols, <float> scale, <float *> _data(o))


def _csr_rows(X, rows):
    """rows (an int64 index, or None) after checking that it names rows of X: the kernels trust it."""
    if rows is None:
        return None
    rows = _operand(rows, "rows", 1, np.int64)
    if len(rows) and (np.min(rows) < 0 or np.max(rows) >= X.shape[0]):
        raise IndexError("rows holds a row index out of range")
    return rows


def csr_mm(X, W, Z, rows=None):
    """Z := X[rows] · W for a CSR matrix X (all its rows when rows is None)."""
    cdef Csr csr
    cdef cnp.ndarray z = _operand(Z, "Z", 2, None, "C", True)
    cdef cnp.ndarray w = _operand(W, "W", 2, z.dtype)
    cdef cnp.ndarray index = _csr_rows(X, rows)
    cdef Py_ssize_t m = X.shape[0] if rows is None else len(index)
    _csr_view(X, z.dtype, w.shape[0], &csr)
    if z.shape[0] != m or z.shape[1] != w.shape[1]:
        raise ValueError("csr_mm: Z must have shape (len(rows), W.shape[1])")
    cdef const int64_t *r = <const int64_t *> _data(index) if index is not None and m else NULL
    if z.size == 0:
        return
    if z.dtype == np.float64:
        _csr_mm(&csr, r, 0, m, w.shape[1], <const double *> _data(w), w.shape[1], <double *> _data(z), z.shape[1])
    else:
        _csr_mm(&csr, r, 0, m, w.shape[1], <const float *> _data(w), w.shape[1], <float *> _data(z), z.shape[1])


def csr_tmm_add(double alpha, X, D, G, rows=None):
    """G := G + alpha · X[rows]ᵀ · D for a CSR matrix X (all its rows when rows is None)."""
    cdef Csr csr
    cdef cnp.ndarray g = _operand(G, "G", 2, None, "C", True)
    cdef cnp.ndarray d = _operand(D, "D", 2, g.dtype)
    cdef cnp.ndarray index = _csr_rows(X, rows)
    cdef Py_ssize_t m = X.shape[0] if rows is None else len(index)
    _csr_view(X, g.dtype, g.shape[0], &csr)
    if d.shape[0] != m or d.shape[1] != g.shape[1]:
        raise ValueError("csr_tmm_add: D must have shape (len(rows), G.shape[1])")
    cdef const int64_t *r = <const int64_t *> _data(index) if index is not None and m else NULL
    if m == 0 or g.shape[1] == 0:
        return
    if g.dtype == np.float64:
        _csr_tmm_add(&csr, r, 0, m, g.shape[1], alpha, <const double *> _data(d), d.shape[1],
                     <double *> _data(g), g.shape[1])
    else:
        _csr_tmm_add(&csr, r, 0, m, g.shape[1], <float> alpha, <const float *> _data(d), d.shape[1],
                     <float *> _data(g), g.shape[1])


# How this module was built and which levels this CPU runs, for fastmlp.show_config(). setup.py
# defines FASTMLP_BUILD_FLAGS and FASTMLP_BUILT_WITH; the fallbacks cover any other build.
