# Included by _kernels.pyx.

# ---------------------------------------------------------------------------------------------
# Sparse input: the first layer's products over a CSR matrix's nonzeros
# ---------------------------------------------------------------------------------------------

cdef struct Csr:
    # A CSR matrix (csrc/fm_sparse.h): row r's nonzeros are data[p] in columns indices[p] for p =
    # indptr[r] .. indptr[r+1]-1; indices and indptr are int64 when index64, else int32.
    const char *data
    const char *indices
    const char *indptr
    bint index64


cdef void _csr_mm(const Csr *X, const int64_t *rows, Py_ssize_t first, Py_ssize_t m, Py_ssize_t n,
                  const floating *W, Py_ssize_t ldw, floating *Z, Py_ssize_t ldz) noexcept nogil:
    """Z := X[rows] · W, Z m x n: row i is row rows[i] of X, or with rows NULL row first + i."""
    cdef const floating *data = <const floating *> X.data
    if rows != NULL:
        first = 0   # indptr is read at the rows named, from its start
    if X.index64:
        if floating is float:
            fm_scsr_mm_i64(m, n, data, <const int64_t *> X.indices, <const int64_t *> X.indptr + first, rows,
                           W, ldw, Z, ldz)
        else:
            fm_dcsr_mm_i64(m, n, data, <const int64_t *> X.indices, <const int64_t *> X.indptr + first, rows,
                           W, ldw, Z, ldz)
    else:
        if floating is float:
            fm_scsr_mm_i32(m, n, data, <const int32_t *> X.indices, <const int32_t *> X.indptr + first, rows,
                           W, ldw, Z, ldz)
        else:
            fm_dcsr_mm_i32(m, n, data, <const int32_t *> X.indices, <const int32_t *> X.indptr + first, rows,
                           W, ldw, Z, ldz)


cdef void _csr_tmm_add(const Csr *X, const int64_t *rows, Py_ssize_t first, Py_ssize_t m, Py_ssize_t n,
                       floating alpha, const floating *D, Py_ssize_t ldd, floating *G,
                       Py_ssize_t ldg) noexcept nogil:
    """G := G + alpha · X[rows]ᵀ · D, D m x n (rows as for _csr_mm): each nonzero x = X[r, k] adds
    alpha · x · D[i, :] to row k of G; the other rows of G are not touched."""
    cdef const floating *data = <const floating *> X.data
    if rows != NULL:
        first = 0
    if X.index64:
        if floating is float:
            fm_scsr_tmm_add_i64(m, n, alpha, data, <const int64_t *> X.indices,
                                <const int64_t *> X.indptr + first, rows, D, ldd, G, ldg)
        else:
            fm_dcsr_tmm_add_i64(m, n, alpha, data, <const int64_t *> X.indices,
                                <const int64_t *> X.indptr + first, rows, D, ldd, G, ldg)
    else:
        if floating is float:
            fm_scsr_tmm_add_i32(m, n, alpha, data, <const int32_t *> X.indices,
                                <const int32_t *> X.indptr + first, rows, D, ldd, G, ldg)
        else:
            fm_dcsr_tmm_add_i32(m, n, alpha, data, <const int32_t *> X.indices,
                                <const int32_t *> X.indptr + first, rows, D, ldd, G, ldg)


CSR_PROBLEMS = {FM_CSR_UNSORTED: "unsorted", FM_CSR_BAD_INDEX: "bad index", FM_CSR_BAD_INDPTR: "bad indptr"}


cdef bint _is_index(array):
    """Whether array is a 1-D, C-contiguous, aligned int32 or int64 array in the machine's byte order."""
    return (isinstance(array, np.ndarray) and array.ndim == 1 and array.dtype in (np.int32, np.int64)
            and array.dtype.isnative and array.flags.c_contiguous and array.flags.aligned)


def csr_problem(indptr, indices, Py_ssize_t n_cols, Py_ssize_t nnz):
    """What is wrong with a CSR structure of n_cols columns and nnz stored values: None, "unsorted"
    (a row's indices not strictly increasing: unsorted or duplicated; safe for the kernels), "bad index"
    (a column index out of range) or "bad indptr" (not 0, ..., non-decreasing, ..., at most nnz).
    indptr and indices: 1-D contiguous int32 or int64 arrays of one dtype, indptr non-empty."""
    cdef int code
    cdef Py_ssize_t n_rows = len(indptr) - 1
    cdef bint index64
    cdef const char *pointers
    cdef const char *columns
    if (not _is_index(indptr) or not _is_index(indices) or indptr.dtype != indices.dtype or n_rows < 0
            or nnz > len(indices)):
        raise ValueError("csr_problem: indptr and indices must be contiguous int32 or int64 arrays of one "
                         "dtype, indptr non-empty, nnz at most len(indices)")
    pointers, columns, index64 = _data(indptr), _data(indices), indptr.dtype == np.int64
    with nogil:
        if index64:
            code = fm_csr_check_i64(n_rows, n_cols, nnz, <const int64_t *> pointers, <const int64_t *> columns)
        else:
            code = fm_csr_check_i32(n_rows, n_cols, nnz, <const int32_t *> pointers, <const int32_t *> columns)
    return CSR_PROBLEMS.get(code)


cdef int _csr_view(X, dtype, Py_ssize_t n_cols, Csr *out) except -1:
    """Point out at the arrays of X, a CSR matrix (X.data, X.indices, X.indptr, X.shape) of dtype and
    n_cols columns, after checking everything whose failure would make the kernels read or write out
    of bounds. The caller keeps X alive while out is used."""
    data, indices, indptr = X.data, X.indices, X.indptr
    if (not isinstance(data, np.ndarray) or data.dtype != dtype or data.ndim != 1 or not data.dtype.isnative
            or not data.flags.c_contiguous or not data.flags.aligned or tuple(X.shape) != (len(indptr) - 1, n_cols)):
        raise ValueError(f"X must be a CSR matrix of {np.dtype(dtype).name} data, contiguous, and {n_cols} columns")
    problem = csr_problem(indptr, indices, n_cols, min(len(data), len(indices)))
    if problem not in (None, "unsorted"):
        raise ValueError(f"X is not a valid CSR matrix: {problem}")
    out.data, out.indices, out.indptr = _data(data), _data(indices), _data(indptr)
    out.index64 = indptr.dtype == np.int64
    return 0


cdef void _csr_forward_share(Network net, const Csr *csr, const int64_t *x_rows, Py_ssize_t first,
                             Py_ssize_t rows, floating *z, int id, int count, fm_tile *tile) noexcept nogil:
    """This thread's share of the first layer's product on sparse input, z := X · W⁰ for rows first ..
    first+rows-1 of the batch (rows x_rows[0 ..] of X, or with x_rows NULL rows first .. of X), z
    pointing at the batch's row first. The team shares the rows; tile says which, for _forward."""
    cdef Py_ssize_t start, width = net.sizes[1]
    cdef Py_ssize_t own = _share(rows, 1, id, count, &start)
    tile.row, tile.rows, tile.col, tile.cols = start, own, 0, width
    if own > 0:
        _csr_mm(csr, x_rows + start if x_rows != NULL else NULL, first + start, own, width,
                <const floating *> net.W[0], width, z + start * width, width)


cdef void _csr_weight_gradient(Network net, const Csr *csr, const int64_t *x_rows, Py_ssize_t rows,
                               floating total_weight, const Step *sgd_step, int id, int count) noexcept nogil:
    """This thread's part of the first layer's weight gradient on sparse input,
    ∂C/∂W⁰ = Xᵀ Δ / Σw + l2 W⁰ + l1 sign(W⁰), into weight_grads[0] (X the batch's rows, Δ deltas[0]);
    with ``sgd_step`` applied to the weights instead (see _forward_backward).

    Xᵀ Δ is accumulated from the batch's nonzeros, O(nnz · n_out): each adds x · δ to one row of the
    gradient. The team shares that by blocks of whole cache lines of columns, so that no two threads
    write one value, and the passes over every weight (the penalty, the step) by rows. Plain SGD
    without a penalty touches only the rows of the batch's columns: W⁰ −= η Xᵀ Δ / Σw, nothing else.

    In training without L1 (net.csr_step: train_batch's step) the layer takes any optimizer's step
    here: weight_grads[0] holds zeros outside the rows the batch touches, Xᵀ Δ / Σw is accumulated
    into it, the step reads the gradient as G + l2 W⁰ (one pass over the weights and their state),
    and G is set back to zero.
    """
    cdef Step step
    cdef Py_ssize_t n_out = net.sizes[1], col, row
    cdef Py_ssize_t cols = _share(n_out, 64 // sizeof(floating), id, count, &col)
    cdef Py_ssize_t own = _share(net.sizes[0], 1, id, count, &row)
    cdef Py_ssize_t at = row * n_out, size = own * n_out
    cdef floating *W = <floating *> net.W[0]
    cdef floating *G = <floating *> net.gW[0]
    cdef const floating *delta = <const floating *> net.dels[0]
    if sgd_step != NULL and net.S1 == NULL and net.l2 == 0:
        if cols > 0:
            _csr_tmm_add(csr, x_rows, 0, rows, cols, <floating> (-sgd_step.learning_rate / total_weight),
                         delta + col, n_out, W + col, n_out)
        return
    if net.csr_step != NULL:
        if cols > 0:
            _csr_tmm_add(csr, x_rows, 0, rows, cols, 1 / total_weight, delta + col, n_out, G + col, n_out)
        fm_team_barrier(count)   # the gradient is complete
        step = net.csr_step[0]
        step.l2 = net.l2
        _update(W + at, G + at, <floating *> net.S1[0] + at if net.S1 != NULL else NULL,
                <floating *> net.S2[0] + at if net.S2 != NULL else NULL, size, &step)
        # zero again: one sequential pass over this thread's rows costs less than visiting the
        # batch's rows (a Zipf-like batch touches a large share of them, scattered)
        memset(G + at, 0, size * sizeof(floating))
        return
    memset(G + at, 0, size * sizeof(floating))
    _add_penalty(G + at, W + at, size, <floating> net.l2, <floating> net.l1)
    fm_team_barrier(count)   # every row of the gradient holds its penalty term
    if cols > 0:
        _csr_tmm_add(csr, x_rows, 0, rows, cols, 1 / total_weight, delta + col, n_out, G + col, n_out)
    if sgd_step != NULL:
        fm_team_barrier(count)   # the gradient is complete
        _update(W + at, G + at, <floating *> net.S1[0] + at if net.S1 != NULL else NULL, NULL, size, sgd_step)
