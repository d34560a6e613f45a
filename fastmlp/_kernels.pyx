# cython: language_level=3
"""Compiled kernels of fastmlp: every step of backpropagation for a dense network.

Row-major batches: the activations of layer l are a matrix with one row per sample, and
``weights[l]`` has shape ``(n_in, n_out)``, so a layer computes ``Z = A · W + b``, ``A' = σ(Z)``.
(Nielsen's and 3Blue1Brown's ``z = W a + b`` is the same product for one column vector ``a``:
our ``W`` is their ``Wᵀ``.)

Each kernel is a ``cdef ... nogil`` function over raw pointers, generic over ``float`` and
``double`` through the fused type ``floating``; the matrix products are the C GEMM in csrc/.
``Network`` strings the kernels together so that one call trains one mini-batch (forward from
the batch's rows where they lie, backward, update) without the GIL and without allocating: read
it beside ``Network`` in ``fastmlp/reference.py``. Kernels trust their callers: the Python layer
validates user input. The rest is included from files of their own:

- ``_sparse.pxi``: sparse input (a CSR matrix) changes only the first layer, whose product and
  weight gradient run over the batch's nonzeros (csrc/fm_sparse.h);
- ``_team.pxi``: how a batch is shared among a team of threads, and the team tasks;
- ``_predict.pxi``: inference (``Predictor``) and the finiteness check of the front door;
- ``_testing.pxi``: single kernels exposed to the tests, with the names and signatures of their
  NumPy twins in ``fastmlp.reference``.
"""
from cython cimport floating
from libc.math cimport log, sqrt
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from posix.mman cimport POSIX_MADV_WILLNEED, posix_madvise
from posix.unistd cimport _SC_PAGESIZE, sysconf

cimport numpy as cnp
import numpy as np

from .reference import same_layout

cnp.import_array()

cdef extern from "fm_gemm.h" nogil:
    size_t fm_sgemm_workspace_size(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int nthreads)
    size_t fm_dgemm_workspace_size(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int nthreads)
    int fm_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                 const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                 const int64_t *a_rows, const int64_t *a_cols,
                 const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                 float beta, float *C, Py_ssize_t ldc, float *work, int nthreads)
    int fm_dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                 const double *A, Py_ssize_t rsa, Py_ssize_t csa,
                 const int64_t *a_rows, const int64_t *a_cols,
                 const double *B, Py_ssize_t rsb, Py_ssize_t csb,
                 double beta, double *C, Py_ssize_t ldc, double *work, int nthreads)
    const char *fm_gemm_isa()
    ctypedef struct fm_tile:
        Py_ssize_t row, rows, col, cols
    int fm_sgemm_team(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                      const float *A, Py_ssize_t rsa, Py_ssize_t csa, const int64_t *a_rows,
                      const int64_t *a_cols,
                      const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                      float beta, float *C, Py_ssize_t ldc, float *work, int whole_rows, int id,
                      int count, fm_tile *tile)
    int fm_dgemm_team(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                      const double *A, Py_ssize_t rsa, Py_ssize_t csa, const int64_t *a_rows,
                      const int64_t *a_cols,
                      const double *B, Py_ssize_t rsb, Py_ssize_t csb,
                      double beta, double *C, Py_ssize_t ldc, double *work, int whole_rows, int id,
                      int count, fm_tile *tile)

cdef extern from "fm_sparse.h" nogil:
    int fm_csr_check_i32(Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t nnz, const int32_t *indptr,
                         const int32_t *indices)
    int fm_csr_check_i64(Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t nnz, const int64_t *indptr,
                         const int64_t *indices)
    void fm_scsr_mm_i32(Py_ssize_t m, Py_ssize_t n, const float *data, const int32_t *indices,
                        const int32_t *indptr, const int64_t *rows, const float *W, Py_ssize_t ldw,
                        float *Z, Py_ssize_t ldz)
    void fm_scsr_mm_i64(Py_ssize_t m, Py_ssize_t n, const float *data, const int64_t *indices,
                        const int64_t *indptr, const int64_t *rows, const float *W, Py_ssize_t ldw,
                        float *Z, Py_ssize_t ldz)
    void fm_dcsr_mm_i32(Py_ssize_t m, Py_ssize_t n, const double *data, const int32_t *indices,
                        const int32_t *indptr, const int64_t *rows, const double *W, Py_ssize_t ldw,
                        double *Z, Py_ssize_t ldz)
    void fm_dcsr_mm_i64(Py_ssize_t m, Py_ssize_t n, const double *data, const int64_t *indices,
                        const int64_t *indptr, const int64_t *rows, const double *W, Py_ssize_t ldw,
                        double *Z, Py_ssize_t ldz)
    void fm_scsr_tmm_add_i32(Py_ssize_t m, Py_ssize_t n, float alpha, const float *data,
                             const int32_t *indices, const int32_t *indptr, const int64_t *rows,
                             const float *D, Py_ssize_t ldd, float *G, Py_ssize_t ldg)
    void fm_scsr_tmm_add_i64(Py_ssize_t m, Py_ssize_t n, float alpha, const float *data,
                             const int64_t *indices, const int64_t *indptr, const int64_t *rows,
                             const float *D, Py_ssize_t ldd, float *G, Py_ssize_t ldg)
    void fm_dcsr_tmm_add_i32(Py_ssize_t m, Py_ssize_t n, double alpha, const double *data,
                             const int32_t *indices, const int32_t *indptr, const int64_t *rows,
                             const double *D, Py_ssize_t ldd, double *G, Py_ssize_t ldg)
    void fm_dcsr_tmm_add_i64(Py_ssize_t m, Py_ssize_t n, double alpha, const double *data,
                             const int64_t *indices, const int64_t *indptr, const int64_t *rows,
                             const double *D, Py_ssize_t ldd, double *G, Py_ssize_t ldg)
    const char *fm_sparse_isa()
    enum:
        FM_CSR_UNSORTED, FM_CSR_BAD_INDEX, FM_CSR_BAD_INDPTR

cdef extern from "fm_team.h" nogil:
    ctypedef void (*fm_team_task)(void *arg, int id, int count) noexcept nogil
    ctypedef int (*fm_thread_starter)(void (*body)(void *) noexcept nogil, void *arg) noexcept nogil
    void fm_team_set_starter(fm_thread_starter start)
    int fm_team_run(int count, fm_team_task task, void *arg)
    ctypedef struct fm_team_choice:
        pass
    int fm_team_run_adaptive(fm_team_choice *choice, int count, double units, fm_team_task task,
                             void *arg)
    void fm_team_barrier(int count)
    unsigned fm_team_runs()
    int fm_team_workers()
    enum:
        FM_TEAM_MAX

cdef extern from "fm_tuning.h" nogil:
    enum:   # the tuning constants of csrc/, each with why in the header
        FM_CACHE_LINE_BYTES, FM_SPLIT_ROWS_MAX_WEIGHT_BYTES, FM_PREDICT_BLOCK_ROWS,
        FM_PREDICT_BLOCK_BYTES
    const double FM_GEMM_TEAM_MIN_MNK, FM_GEMM_PARALLEL_MIN_MNK

cdef extern from "fm_activations.h" nogil:
    void fm_sbias_activation(Py_ssize_t rows, Py_ssize_t cols, float *Z, const float *b, int activation)
    void fm_dbias_activation(Py_ssize_t rows, Py_ssize_t cols, double *Z, const double *b, int activation)
    void fm_sactivation_derivative(Py_ssize_t size, const float *A, float *D, int activation)
    void fm_dactivation_derivative(Py_ssize_t size, const double *A, double *D, int activation)

    enum:   # activation codes
        FM_IDENTITY, FM_SIGMOID, FM_TANH, FM_RELU, FM_SOFTMAX, FM_EXP

cdef extern from "fm_update.h" nogil:
    ctypedef struct fm_step:
        int optimizer
        double learning_rate, momentum, beta1, beta2, epsilon, correction1, correction2, l2
    void fm_supdate(Py_ssize_t size, float *P, const float *G, float *S1, float *S2, const fm_step *step)
    void fm_dupdate(Py_ssize_t size, double *P, const double *G, double *S1, double *S2,
                    const fm_step *step)
    void fm_sadd_penalty(Py_ssize_t size, float *G, const float *W, float l2, float l1)
    void fm_dadd_penalty(Py_ssize_t size, double *G, const double *W, double l2, double l1)
    void fm_scolumn_sums(Py_ssize_t rows, Py_ssize_t cols, const float *D, float *out, float scale)
    void fm_dcolumn_sums(Py_ssize_t rows, Py_ssize_t cols, const double *D, double *out, double scale)

    enum:   # optimizer codes
        FM_SGD, FM_NESTEROV, FM_ADAM

cdef enum Loss:
    QUADRATIC = 0
    CROSS_ENTROPY = 1
    LOG_LOSS = 2
    POISSON = 3

# The codes the kernels take, by the names the Python layer uses.
ACTIVATIONS = {"identity": FM_IDENTITY, "sigmoid": FM_SIGMOID, "tanh": FM_TANH, "relu": FM_RELU,
               "softmax": FM_SOFTMAX, "exp": FM_EXP}
LOSSES = {"quadratic": QUADRATIC, "cross_entropy": CROSS_ENTROPY, "log_loss": LOG_LOSS,
          "poisson": POISSON}

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
                      const int64_t *a_rows, const int64_t *a_cols,
                      const floating *B, Py_ssize_t rsb, Py_ssize_t csb,
                      floating beta, floating *C, Py_ssize_t ldc,
                      floating *work, int nthreads) noexcept nogil:
    """C := alpha · A · B + beta · C, A and B read through (row, column) strides, and A's rows
    or columns picked by an index when a_rows or a_cols is not NULL (see fm_gemm.h)."""
    if floating is float:
        return fm_sgemm(m, n, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb, csb, beta, C, ldc, work,
                        nthreads)
    else:
        return fm_dgemm(m, n, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb, csb, beta, C, ldc, work,
                        nthreads)


cdef inline int _gemm_team(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                           const floating *A, Py_ssize_t rsa, Py_ssize_t csa,
                           const int64_t *a_rows, const int64_t *a_cols,
                           const floating *B, Py_ssize_t rsb, Py_ssize_t csb,
                           floating beta, floating *C, Py_ssize_t ldc, floating *work, bint whole_rows,
                           int id, int count, fm_tile *tile) noexcept nogil:
    """This thread's tile of _gemm's product, in a team of count (see fm_gemm.h)."""
    if floating is float:
        return fm_sgemm_team(m, n, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb, csb, beta, C, ldc, work,
                             whole_rows, id, count, tile)
    else:
        return fm_dgemm_team(m, n, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb, csb, beta, C, ldc, work,
                             whole_rows, id, count, tile)


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


cdef double _output_delta(const floating *A, const floating *Y, const int64_t *y_rows, floating *D,
                          const floating *weights, Py_ssize_t rows, Py_ssize_t cols, int activation,
                          int loss, double *row_losses) noexcept nogil:
    """δᴸ := ∇ₐC ⊙ σ'(zᴸ) for every sample (row); returns the loss summed over the rows, and
    writes each row's loss to row_losses unless it is NULL. Row i's targets are row y_rows[i] of Y
    (a mini-batch read where it lies in the data set) or, with y_rows NULL, row i.

    quadratic      C = ½‖y − a‖²                   ∇ₐC = a − y
    cross_entropy  C = −Σ y ln a + (1−y) ln(1−a)    δᴸ = a − y   (sigmoid output: σ' cancels)
    log_loss       C = −Σ y ln a                    δᴸ = a − y   (softmax output: Jacobian cancels)
    poisson        C = Σ a − y ln a + y ln y − y    δᴸ = a − y   (exp output: σ' = a cancels)
    With sample weights (not NULL) row i of δᴸ and its loss are multiplied by weights[i].
    """
    cdef Py_ssize_t i, j, size = rows * cols
    cdef double total = 0, row_loss, a, y, dot
    cdef const floating *targets
    for i in range(rows):
        targets = Y + (y_rows[i] if y_rows != NULL else i) * cols
        for j in range(cols):
            D[i * cols + j] = A[i * cols + j] - targets[j]
    if loss == QUADRATIC and activation == FM_SOFTMAX:
        # softmax's Jacobian is diag(a) − a aᵀ, so δ = a ⊙ (g − (a·g)) with g = a − y
        for i in range(rows):
            dot = 0
            for j in range(cols):
                dot += A[i * cols + j] * D[i * cols + j]
            for j in range(cols):
                D[i * cols + j] = A[i * cols + j] * (D[i * cols + j] - dot)
    for i in range(rows):
        row_loss = 0
        targets = Y + (y_rows[i] if y_rows != NULL else i) * cols
        for j in range(cols):
            a = A[i * cols + j]
            y = targets[j]
            if loss == QUADRATIC:
                row_loss += 0.5 * (a - y) * (a - y)
            elif loss == CROSS_ENTROPY:
                row_loss -= y * log(max(a, LOG_FLOOR)) + (1 - y) * log(max(1 - a, LOG_FLOOR))
            elif loss == POISSON:   # half the Poisson deviance: 0 where a = y
                row_loss += a - y
                if y != 0:
                    row_loss += y * (log(y) - log(max(a, LOG_FLOOR)))
            elif y != 0:
                row_loss -= y * log(max(a, LOG_FLOOR))
        if weights != NULL:
            row_loss *= weights[i]
            for j in range(i * cols, (i + 1) * cols):
                D[j] *= weights[i]
        total += row_loss
        if row_losses != NULL:
            row_losses[i] = row_loss
    if loss == QUADRATIC and activation != FM_SOFTMAX:
        _activation_derivative(A, D, size, activation)
    return total


cdef void _column_sums(const floating *D, floating *out, Py_ssize_t rows, Py_ssize_t cols,
                       floating scale) noexcept nogil:
    """out := scale · Σᵢ D[i, :]   (the bias gradient: δ summed over the batch)."""
    if floating is float:
        fm_scolumn_sums(rows, cols, D, out, scale)
    else:
        fm_dcolumn_sums(rows, cols, D, out, scale)


cdef void _add_penalty(floating *G, const floating *W, Py_ssize_t size, floating l2,
                       floating l1) noexcept nogil:
    """G := G + l2 · W + l1 · sign(W)   (the gradient of (l2/2)‖W‖² + l1 |W|₁)."""
    if l2 == 0 and l1 == 0:
        return
    if floating is float:
        fm_sadd_penalty(size, G, W, l2, l1)
    else:
        fm_dadd_penalty(size, G, W, l2, l1)


# Optimizers (the update step of one parameter array); the codes are csrc/fm_update.h's.
cdef enum Optimizer:
    SGD = FM_SGD
    NESTEROV = FM_NESTEROV
    ADAM = FM_ADAM

OPTIMIZERS = {"sgd": SGD, "nesterov": NESTEROV, "adam": ADAM}


cdef struct Step:
    # One update step: its learning rate and the optimizer's constants. For Adam, correction1
    # and correction2 are 1 − β₁ᵗ and 1 − β₂ᵗ at step t. l2 != 0: the gradient is G + l2 P.
    int optimizer
    double learning_rate, momentum, beta1, beta2, epsilon, correction1, correction2, l2


cdef void _update(floating *P, const floating *G, floating *S1, floating *S2, Py_ssize_t size,
                  const Step *step) noexcept nogil:
    """One optimizer step on the parameters P with gradient G (G + l2 P with step.l2) and state S1
    (and S2).

    sgd        S1 is NULL: P −= η G;  else (momentum μ): S1 := μ S1 − η G,  P += S1
    nesterov   S1 := μ S1 − η G,  P += μ S1 − η G
    adam       S1 := β₁ S1 + (1 − β₁) G,  S2 := β₂ S2 + (1 − β₂) G²,
               P −= η (S1 / (1 − β₁ᵗ)) / (√(S2 / (1 − β₂ᵗ)) + ε)
    The loops are the vectorised C in csrc/fm_update_impl.h.
    """
    cdef fm_step c_step
    c_step.optimizer = step.optimizer
    c_step.learning_rate, c_step.momentum = step.learning_rate, step.momentum
    c_step.beta1, c_step.beta2, c_step.epsilon = step.beta1, step.beta2, step.epsilon
    c_step.correction1, c_step.correction2, c_step.l2 = step.correction1, step.correction2, step.l2
    if floating is float:
        fm_supdate(size, P, G, S1, S2, &c_step)
    else:
        fm_dupdate(size, P, G, S1, S2, &c_step)


cdef inline uint64_t _splitmix64(uint64_t x) noexcept nogil:
    """A well-mixed 64-bit hash of x (SplitMix64's finaliser): counter-based random numbers."""
    x += 0x9E3779B97F4A7C15ULL
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL
    return x ^ (x >> 31)


cdef void _dropout_mask(floating *mask, Py_ssize_t size, uint64_t key, uint64_t counter,
                        double keep) noexcept nogil:
    """mask[i] := 1/keep with probability keep, else 0; the draw for element i is a hash of
    key + counter + i, so masks depend only on the seed and the step, never on threads."""
    cdef Py_ssize_t i
    cdef uint64_t threshold = <uint64_t> (keep * 16777216.0)     # keep · 2²⁴
    cdef floating scale = <floating> (1 / keep)
    for i in range(size):
        mask[i] = scale if (_splitmix64(key + counter + <uint64_t> i) >> 40) < threshold else 0


cdef void _multiply(floating *out, const floating *x, Py_ssize_t size) noexcept nogil:
    """out := out ⊙ x."""
    cdef Py_ssize_t i
    for i in range(size):
        out[i] *= x[i]


cdef extern from *:
    void __builtin_prefetch(const void *address) nogil


cdef void _prefetch_rows(const floating *X, const int64_t *index, Py_ssize_t count,
                         Py_ssize_t cols) noexcept nogil:
    """Request the cache lines of rows index[0], ..., index[count - 1] of X, to be read soon."""
    cdef Py_ssize_t r, line, size = cols * <Py_ssize_t> sizeof(floating)
    cdef const char *row
    for r in range(count):
        row = <const char *> (X + index[r] * cols)
        line = 0
        while line < size:   # a C loop: range() needs a literal step
            __builtin_prefetch(row + line)
            line += FM_CACHE_LINE_BYTES
        __builtin_prefetch(row + size - 1)   # the row need not start on a line


cdef void _gather_rows(const floating *X, const int64_t *index, Py_ssize_t count, Py_ssize_t cols,
                       floating *out) noexcept nogil:
    """out[r, :] := X[index[r], :]   (a shuffled mini-batch, without copying the data set).

    The rows are scattered over memory, so each row's cache lines are requested (prefetched)
    while the row before is copied."""
    cdef Py_ssize_t r
    for r in range(count):
        if r + 1 < count:
            _prefetch_rows(X, index + r + 1, 1, cols)
        memcpy(out + r * cols, X + index[r] * cols, cols * sizeof(floating))


# Integer inputs (8- or 16-bit pixels, counts): stored as they are, converted a mini-batch at a time.
ctypedef fused pixel:
    uint8_t
    uint16_t

# What the bound X holds: the training dtype, or integers to convert as the batch is gathered.
cdef enum InputKind:
    INPUT_FLOAT, INPUT_UINT8, INPUT_UINT16

INPUT_KINDS = {np.dtype(np.uint8): INPUT_UINT8, np.dtype(np.uint16): INPUT_UINT16}


cdef void _gather_scaled_rows(const pixel *X, const int64_t *index, Py_ssize_t count, Py_ssize_t cols,
                              floating scale, floating *out) noexcept nogil:
    """out[r, j] := floating(X[index[r], j]) · scale   (integer rows, converted as they are gathered).

    Convert, then multiply, in the training dtype: the batch is then bit for bit the same rows of
    ``X.astype(dtype) * dtype(scale)``. Each row's cache lines are requested while the row before
    is converted, as in _gather_rows."""
    cdef Py_ssize_t r, j, line, size = cols * <Py_ssize_t> sizeof(pixel)
    cdef const pixel *row
    cdef const char *next_row
    cdef floating *o
    for r in range(count):
        if r + 1 < count:
            next_row = <const char *> (X + index[r + 1] * cols)
            for line in range(0, size, 64):
                __builtin_prefetch(next_row + line)
            __builtin_prefetch(next_row + size - 1)
        row = X + index[r] * cols
        o = out + r * cols
        for j in range(cols):
            o[j] = (<floating> row[j]) * scale


def will_need(cnp.ndarray X, Py_ssize_t start, Py_ssize_t stop):
    """Ask the operating system to read rows start .. stop-1 of X into memory now, without waiting.

    For X memory-mapped from a file (``numpy.memmap``) this starts the disk reads of rows that
    training will reach soon (``posix_madvise(POSIX_MADV_WILLNEED)``), so that they arrive while
    the rows before them are trained on. A hint: its failure is ignored, and it changes no data."""
    cdef Py_ssize_t row_bytes = X.shape[1] * X.itemsize if X.ndim == 2 else X.itemsize
    cdef size_t page = <size_t> sysconf(_SC_PAGESIZE)
    cdef size_t first, last
    if not X.flags.c_contiguous or X.ndim != 2:
        raise ValueError("will_need: X must be a C-contiguous 2-D array")
    start, stop = max(start, 0), min(stop, X.shape[0])
    if start >= stop:
        return
    first = <size_t> (_data(X) + start * row_bytes)
    last = <size_t> (_data(X) + stop * row_bytes)
    first -= first % page   # madvise takes whole pages, from a page boundary
    with nogil:
        posix_madvise(<void *> first, last - first, POSIX_MADV_WILLNEED)


include "_sparse.pxi"


# ---------------------------------------------------------------------------------------------
# A network: weights plus every buffer one mini-batch needs, allocated once
# ---------------------------------------------------------------------------------------------

cdef char *_data(cnp.ndarray array):
    return <char *> cnp.PyArray_DATA(array)


cdef char **_pointers(list arrays) except NULL:
    """A malloc'ed array of the data pointers of ``arrays`` (None gives NULL)."""
    cdef char **out = <char **> malloc((len(arrays) + 1) * sizeof(char *))
    if out == NULL:
        raise MemoryError()
    for i, array in enumerate(arrays):
        out[i] = NULL if array is None else _data(array)
    return out


cdef Py_ssize_t *_sizes(list widths) except NULL:
    """A malloc'ed copy of the layer widths n[0], ..., n[L]."""
    cdef Py_ssize_t *out = <Py_ssize_t *> malloc(len(widths) * sizeof(Py_ssize_t))
    if out == NULL:
        raise MemoryError()
    for l, width in enumerate(widths):
        out[l] = width
    return out


cdef int *_codes(activations) except NULL:
    """A malloc'ed array of the kernels' codes (FM_SIGMOID, ...) of each layer's activation."""
    cdef int *out = <int *> malloc(max(len(activations), 1) * sizeof(int))
    if out == NULL:
        raise MemoryError()
    for l, name in enumerate(activations):
        out[l] = ACTIVATIONS[name]
    return out


cdef class Network:
    """Weights, biases, optimizer state and the training buffers of one dense network.

    ``weights`` and ``biases`` are updated in place by ``train_batch``; every other buffer
    (activations, deltas, gradients, optimizer state, dropout masks, GEMM workspace) is allocated
    here, once, for mini-batches of up to ``capacity`` rows. ``weight_grads`` and ``bias_grads``
    hold the gradients after ``backprop``; ``train_batch`` with plain SGD applies the weight
    gradient inside its GEMM and leaves ``weight_grads`` alone.

    A team of threads splits a batch by rows when ``split_rows`` (set when the weights are small)
    or else each product by tiles; the results are the same bit for bit. With ``adaptive_team``
    (the default), ``train_batch`` times its batches and runs them alone instead when that has been
    faster (a busy machine, where a team member waits for a core), trying the team again now and
    then (fm_team_run_adaptive in csrc/fm_team.h).
    """
    cdef readonly int n_layers, nthreads
    cdef readonly Py_ssize_t capacity
    cdef readonly object dtype, optimizer
    cdef readonly list weights, biases, activations, deltas, weight_grads, bias_grads, state
    cdef readonly double momentum, l2, l1, dropout, beta1, beta2, epsilon
    cdef readonly bint use_bias, epsilon_hat
    cdef public long long step_count
    cdef public uint64_t dropout_counter
    cdef public bint split_rows, adaptive_team
    cdef fm_team_choice team_choice
    cdef list _buffers, _bound
    cdef int loss, is_double, optimizer_code
    cdef uint64_t dropout_key
    cdef Py_ssize_t *sizes
    cdef int *codes
    cdef char **W
    cdef char **b
    cdef char **gW
    cdef char **gb
    cdef char **S1
    cdef char **S2
    cdef char **acts
    cdef char **raw
    cdef char **masks
    cdef char **dels
    cdef char *work
    cdef Py_ssize_t work_per_thread
    cdef char *sw_batch
    cdef double *row_losses
    cdef char *X_data
    cdef char *Y_data
    cdef char *sw_data
    cdef int64_t *order
    cdef Py_ssize_t n_samples
    cdef InputKind input_kind
    cdef double input_scale
    cdef readonly bint sparse_input
    cdef Csr csr_bound, csr_batch   # the bound data set's arrays, and backprop_sparse's batch's
    cdef const Csr *x_csr           # &csr_bound while a sparse data set is bound, else NULL
    cdef const Step *csr_step       # train_batch's step while it runs on sparse input without L1
    cdef bint csr_grad_dirty        # weight_grads[0] may be non-zero outside a batch's rows

    def __cinit__(self):
        self.sizes = NULL
        self.codes = NULL
        self.W = self.b = self.gW = self.gb = self.S1 = self.S2 = NULL
        self.acts = self.raw = self.masks = self.dels = NULL

    def __init__(self, list weights, list biases, activations, str loss, Py_ssize_t capacity,
                 double momentum=0.0, double l2=0.0, int nthreads=1, *, str optimizer="sgd",
                 double l1=0.0, double dropout=0.0, bint use_bias=True, double beta1=0.9,
                 double beta2=0.999, double epsilon=1e-8, bint epsilon_hat=False, uint64_t seed=0,
                 bint sparse_input=False, list state=None):
        """Bind ``weights[l]`` (n_in, n_out) and ``biases[l]`` (n_out,), C-contiguous, one dtype.

        ``activations`` names each layer's activation, ``loss`` the cost function, ``optimizer``
        the update rule ("sgd" with optional ``momentum``, "nesterov", "adam"; ``epsilon_hat``:
        Adam's ε is added before the bias correction, see ``fastmlp.fit``). ``dropout`` is the
        fraction of hidden units dropped in training (inverted dropout), drawn from ``seed``.
        ``sparse_input``: the inputs will be CSR matrices (``bind_sparse``, ``backprop_sparse``), so
        ``activations[0]``, the dense copy of a batch, is not allocated (it has 0 rows).
        ``state``: optimizer state arrays to use and update in place when they have the layout of
        ``Network.state`` (see ``fastmlp.reference.same_layout``); otherwise new ones, zero.
        """
        cdef Py_ssize_t l, work_size = 1
        n_layers = len(weights)
        if n_layers < 1 or len(biases) != n_layers or len(activations) != n_layers:
            raise ValueError("need one weight matrix, bias vector and activation per layer")
        dtype = np.dtype(weights[0].dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"weights must be float32 or float64, got {dtype}")
        if capacity < 1 or nthreads < 1 or not 0 <= dropout < 1 or optimizer not in OPTIMIZERS:
            raise ValueError("bad capacity, nthreads, dropout or optimizer")
        for l in range(n_layers):
            w, bias = weights[l], biases[l]
            if (not isinstance(w, np.ndarray) or not isinstance(bias, np.ndarray)
                    or w.dtype != dtype or bias.dtype != dtype or w.ndim != 2
                    or bias.shape != (w.shape[1],) or not w.flags.c_contiguous
                    or not w.flags.writeable or not bias.flags.c_contiguous
                    or not bias.flags.writeable
                    or (l > 0 and w.shape[0] != weights[l - 1].shape[1])):
                raise ValueError(f"layer {l}: weights and biases must be writeable, C-contiguous arrays "
                                 "of one dtype and matching shapes")
        self.n_layers = n_layers
        self.dtype = dtype
        self.is_double = dtype == np.float64
        self.loss = LOSSES[loss]
        self.capacity = capacity
        self.momentum, self.l2, self.l1, self.dropout = momentum, l2, l1, dropout
        self.beta1, self.beta2, self.epsilon, self.epsilon_hat = beta1, beta2, epsilon, epsilon_hat
        self.optimizer, self.optimizer_code = optimizer, OPTIMIZERS[optimizer]
        self.use_bias = use_bias
        self.nthreads = nthreads
        self.step_count = 0
        self.dropout_key = _splitmix64(seed)
        self.dropout_counter = 0
        self.weights = list(weights)
        self.biases = list(biases)
        widths = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        hidden = range(1, n_layers)
        self.activations = [np.zeros((0 if l == 0 and sparse_input else capacity, n), dtype)
                            for l, n in enumerate(widths)]
        self.sparse_input = sparse_input
        self.x_csr = self.csr_step = NULL
        self.csr_grad_dirty = False
        self.deltas = [np.zeros((capacity, n), dtype) for n in widths[1:]]
        self.weight_grads = [np.zeros_like(w) for w in weights]
        self.bias_grads = [np.zeros_like(bias) for bias in biases]
        parameters = self.weights + self.biases
        # Optimizer state: S1 (velocity, or Adam's first moment) and S2 (Adam's second moment).
        first = parameters if optimizer == "adam" or momentum != 0 else []
        second = parameters if optimizer == "adam" else []
        self.state = (list(state) if state is not None and same_layout(state, first + second)
                      else [np.zeros_like(p) for p in first + second])
        # With dropout, raw[l] keeps σ(z) of hidden layer l (for σ') and masks[l] its mask;
        # activations[l] holds the dropped-out values the next layer sees.
        raw = [self.activations[l] if l not in hidden or dropout == 0 else np.zeros_like(self.activations[l])
               for l in range(n_layers + 1)]
        masks = [np.zeros_like(self.activations[l]) if l in hidden and dropout != 0 else None
                 for l in range(n_layers + 1)]
        for l in range(1 if sparse_input else 0, n_layers):   # a sparse first layer needs no GEMM
            n_in, n_out = widths[l], widths[l + 1]
            for m, n, k in ((capacity, n_out, n_in), (n_in, n_out, capacity), (capacity, n_in, n_out)):
                work_size = max(work_size, workspace_size(dtype, m, n, k, 1))
        self.work_per_thread = work_size   # each thread of a team has its own workspace
        workspace = np.empty(work_size * nthreads, dtype)
        sw_batch = np.zeros(capacity, dtype)
        row_losses = np.zeros(capacity, np.float64)
        self._buffers = [workspace, sw_batch, row_losses, raw, masks]
        # Small weights (fm_tuning.h): each thread of a team reads them all, so the team can split a
        # batch by rows and meet once per batch, not per layer.
        self.split_rows = sum(w.nbytes for w in weights) <= FM_SPLIT_ROWS_MAX_WEIGHT_BYTES
        self.adaptive_team = True
        self._bound = []

        self.sizes = _sizes(widths)
        self.codes = _codes(activations)
        self.W = _pointers(self.weights)
        self.b = _pointers(self.biases)
        self.gW = _pointers(self.weight_grads)
        self.gb = _pointers(self.bias_grads)
        n_parameters = len(parameters)
        self.S1 = _pointers(self.state[:n_parameters]) if first else NULL
        self.S2 = _pointers(self.state[n_parameters:]) if second else NULL
        self.acts = _pointers(self.activations)
        self.raw = _pointers(raw)
        self.masks = _pointers(masks)
        self.dels = _pointers(self.deltas)
        self.work = _data(workspace)
        self.sw_batch = _data(sw_batch)
        self.row_losses = <double *> _data(row_losses)
        self.sw_data = NULL
        self.n_samples = 0
        self.input_kind, self.input_scale = INPUT_FLOAT, 1.0

    def __dealloc__(self):
        free(self.sizes)
        free(self.codes)
        free(self.W)
        free(self.b)
        free(self.gW)
        free(self.gb)
        free(self.S1)
        free(self.S2)
        free(self.acts)
        free(self.raw)
        free(self.masks)
        free(self.dels)

    def bind(self, cnp.ndarray X, cnp.ndarray Y, cnp.ndarray order, sample_weight=None,
             double input_scale=1.0):
        """Bind the training set: X (n, n_in), targets Y (n, n_out), and an int64 ``order``.

        ``train_batch(start, stop)`` trains on the rows ``order[start:stop]``; the caller
        reshuffles ``order`` in place between epochs. ``order`` holds every row of X or some of
        them (the rest held out for validation, say), at most n. ``sample_weight`` (n,) weighs
        each sample's cost; a mini-batch's gradient is then the weighted mean. X is of the
        network's dtype, or uint8 or uint16: then the network's input is ``dtype(X) ·
        dtype(input_scale)``, converted into ``activations[0]`` as each mini-batch is gathered.
        """
        self._check_dense()
        input_kind = INPUT_KINDS.get(X.dtype, INPUT_FLOAT)
        if input_kind == INPUT_FLOAT and X.dtype != self.dtype:
            raise ValueError("bind: X must be of the network's dtype, uint8 or uint16")
        if (Y.dtype != self.dtype or order.dtype != np.int64
                or X.ndim != 2 or Y.ndim != 2 or order.ndim != 1
                or X.shape[1] != self.sizes[0] or Y.shape[1] != self.sizes[self.n_layers]
                or X.shape[0] != Y.shape[0] or order.shape[0] > X.shape[0]
                or not (X.flags.c_contiguous and Y.flags.c_contiguous and order.flags.c_contiguous)):
            raise ValueError("bind: X, Y and order do not match the network")
        if order.shape[0] and (order.min() < 0 or order.max() >= X.shape[0]):
            raise ValueError("bind: order holds a row index out of range")
        if sample_weight is not None:
            if (not isinstance(sample_weight, np.ndarray) or sample_weight.dtype != self.dtype
                    or sample_weight.shape != (X.shape[0],) or not sample_weight.flags.c_contiguous):
                raise ValueError("bind: sample_weight does not match X")
        self._bound = [X, Y, order, sample_weight]
        self.x_csr = NULL
        self.X_data = _data(X)
        self.Y_data = _data(Y)
        self.sw_data = NULL if sample_weight is None else _data(sample_weight)
        self.order = <int64_t *> _data(order)
        self.n_samples = order.shape[0]
        self.input_kind, self.input_scale = input_kind, input_scale

    def train_batch(self, Py_ssize_t start, Py_ssize_t stop, double learning_rate):
        """One optimizer step on rows ``order[start:stop]``; returns their summed (weighted) loss.

        The inputs are read where they lie in the bound data set, so ``activations[0]`` (the
        copy of X that ``backprop`` makes) is left alone; afterwards ``activations[l][:rows]`` for
        l ≥ 1 and ``deltas[l][:rows]`` hold the batch's values (rows = stop − start).
        """
        cdef Py_ssize_t rows = stop - start
        cdef Step step
        cdef Job job = _job(self, rows)
        if start < 0 or rows < 1 or rows > self.capacity or stop > self.n_samples:
            raise ValueError(f"train_batch: bad row range [{start}, {stop})")
        self.step_count += 1
        step.optimizer = self.optimizer_code
        step.learning_rate, step.momentum, step.l2 = learning_rate, self.momentum, 0
        step.beta1, step.beta2, step.epsilon = self.beta1, self.beta2, self.epsilon
        step.correction1 = 1 - self.beta1 ** self.step_count
        step.correction2 = 1 - self.beta2 ** self.step_count
        if self.epsilon_hat:   # m̂ / (√v̂ + ε/√c₂) = (√c₂ / c₁) · m / (√v + ε)
            step.epsilon = self.epsilon / sqrt(step.correction2)
        job.start, job.step = start, &step
        # On sparse input without L1 the first layer takes its step itself (_csr_weight_gradient),
        # with weight_grads[0] zero outside the batch's rows.
        self.csr_step = &step if self.x_csr != NULL and self.l1 == 0 else NULL
        if self.csr_step != NULL and self.csr_grad_dirty:
            self.weight_grads[0].fill(0)
            self.csr_grad_dirty = False
        with nogil:
            if self.adaptive_team:
                fm_team_run_adaptive(&self.team_choice, _team_size(self, rows), rows, _train_task, &job)
            else:
                fm_team_run(_team_size(self, rows), _train_task, &job)
        self.csr_step = NULL
        return job.loss

    def bind_sparse(self, X, cnp.ndarray Y, cnp.ndarray order, sample_weight=None):
        """Bind a training set whose X is a CSR matrix (n, n_in): ``X.data`` of the network's dtype,
        ``X.indices`` and ``X.indptr`` int32 or int64 (one dtype), contiguous; otherwise as ``bind``.

        ``train_batch`` then computes the first layer's product and weight gradient from the batch's
        nonzeros, read where they lie in X (csrc/fm_sparse.h); the rows need not have sorted indices.
        """
        cdef Csr csr
        _csr_view(X, self.dtype, self.sizes[0], &csr)
        n = X.shape[0]
        if (Y.dtype != self.dtype or order.dtype != np.int64 or Y.ndim != 2 or order.ndim != 1
                or Y.shape[0] != n or Y.shape[1] != self.sizes[self.n_layers] or order.shape[0] != n
                or not (Y.flags.c_contiguous and order.flags.c_contiguous)):
            raise ValueError("bind_sparse: X, Y and order do not match the network")
        if order.shape[0] and (order.min() < 0 or order.max() >= n):
            raise ValueError("bind_sparse: order holds a row index out of range")
        if sample_weight is not None:
            if (not isinstance(sample_weight, np.ndarray) or sample_weight.dtype != self.dtype
                    or sample_weight.shape != (n,) or not sample_weight.flags.c_contiguous):
                raise ValueError("bind_sparse: sample_weight does not match X")
        self._bound = [X, X.data, X.indices, X.indptr, Y, order, sample_weight]
        self.csr_grad_dirty = True   # weight_grads[0] may hold a dense-input gradient
        self.csr_bound = csr
        self.x_csr = &self.csr_bound
        self.X_data = <char *> csr.data
        self.Y_data = _data(Y)
        self.sw_data = NULL if sample_weight is None else _data(sample_weight)
        self.order = <int64_t *> _data(order)
        self.n_samples = n

    def backprop_sparse(self, X, cnp.ndarray Y, sample_weight=None):
        """``backprop`` for X a CSR matrix (as ``bind_sparse`` takes it) of at most ``capacity`` rows.
        ``activations[0]`` is left alone."""
        cdef Py_ssize_t rows = X.shape[0]
        cdef Job job = _job(self, rows)
        _csr_view(X, self.dtype, self.sizes[0], &self.csr_batch)
        if (Y.dtype != self.dtype or Y.ndim != 2 or Y.shape[0] != rows or Y.shape[1] != self.sizes[self.n_layers]
                or not Y.flags.c_contiguous or rows > self.capacity or rows < 1):
            raise ValueError("backprop_sparse: X and Y do not match the network's shapes, dtype or capacity")
        if sample_weight is not None:
            if (not isinstance(sample_weight, np.ndarray) or sample_weight.dtype != self.dtype
                    or sample_weight.shape != (rows,) or not sample_weight.flags.c_contiguous):
                raise ValueError("backprop_sparse: sample_weight does not match X")
            job.sample_weight = _data(sample_weight)
        job.Y = _data(Y)
        job.csr = &self.csr_batch
        self.csr_grad_dirty = True
        with nogil:
            fm_team_run(_team_size(self, rows), _backprop_task, &job)
        return job.loss

    def forward(self, cnp.ndarray X, cnp.ndarray out):
        """out := network output for every row of X, computed ``capacity`` rows at a time."""
        cdef Py_ssize_t start = 0, n = X.shape[0]
        cdef Py_ssize_t item = X.itemsize
        cdef char *x = _data(X)
        cdef char *o = _data(out)
        cdef Job job = _job(self, 0)
        self._check_batch(X, out, n)
        if not out.flags.writeable:
            raise ValueError("forward: out must be writeable")
        with nogil:
            while start < n:
                job.rows = min(self.capacity, n - start)
                job.X = x + start * self.sizes[0] * item
                job.out = o + start * self.sizes[self.n_layers] * item
                fm_team_run(_team_size(self, job.rows), _forward_task, &job)
                start += job.rows

    def backprop(self, cnp.ndarray X, cnp.ndarray Y, sample_weight=None):
        """Gradients of the mean cost over the rows of X into ``weight_grads``/``bias_grads``.

        After the call ``activations[l][:n]`` and ``deltas[l][:n]`` hold aˡ and δˡ of every
        sample. Returns the loss summed over the rows (weighted by ``sample_weight`` if given;
        without the penalty terms). No dropout.
        """
        cdef Py_ssize_t rows = X.shape[0]
        cdef char *x = _data(X)
        cdef Py_ssize_t item = X.itemsize
        cdef Job job = _job(self, rows)
        self._check_batch(X, Y, self.capacity)
        if rows < 1:
            raise ValueError("backprop needs at least one row")
        self.csr_grad_dirty = True
        if sample_weight is not None:
            if (not isinstance(sample_weight, np.ndarray) or sample_weight.dtype != self.dtype
                    or sample_weight.shape != (rows,) or not sample_weight.flags.c_contiguous):
                raise ValueError("backprop: sample_weight does not match X")
            job.sample_weight = _data(sample_weight)
        job.Y = _data(Y)
        with nogil:
            memcpy(self.acts[0], x, rows * self.sizes[0] * item)
            fm_team_run(_team_size(self, rows), _backprop_task, &job)
        return job.loss

    def _check_dense(self):
        if self.sparse_input:   # it has no buffer for a dense first layer's products
            raise ValueError("this network was built for sparse input: use bind_sparse or backprop_sparse")

    def _check_batch(self, cnp.ndarray X, cnp.ndarray Y, Py_ssize_t max_rows):
        self._check_dense()
        if (X.dtype != self.dtype or Y.dtype != self.dtype or X.ndim != 2 or Y.ndim != 2
                or X.shape[1] != self.sizes[0] or Y.shape[1] != self.sizes[self.n_layers]
                or X.shape[0] != Y.shape[0] or X.shape[0] > max_rows
                or not (X.flags.c_contiguous and Y.flags.c_contiguous)):
            raise ValueError("arrays do not match the network's shapes, dtype or capacity")


cdef uint64_t _forward(Network net, const floating *X, const int64_t *x_rows, const Csr *csr,
                       Py_ssize_t first, Py_ssize_t rows, Py_ssize_t batch_rows, floating *out,
                       bint training, floating *work, int id, int count) noexcept nogil:
    """Forward pass of rows first .. first+rows-1 of a batch of batch_rows, from X (not copied) to
    out, both pointing at the batch's first row: aˡ⁺¹ = σ(aˡ · Wˡ + bˡ). With x_rows, the batch is
    rows x_rows[0 .. batch_rows-1] of X, read where they lie (X is the data set). With csr, X is
    that CSR matrix instead (X is not read), and the first layer's product runs over its nonzeros.

    Run by every thread of a team (thread id of count): each computes its tile of a layer's
    product, and adds the bias and applies σ to that tile while it is in cache; the team meets
    after each layer. A thread that takes its own rows through the pass calls it alone (id 0,
    count 1). work is the calling thread's own workspace. In training with dropout, each hidden
    layer's σ(z) goes to raw[l] and aˡ = raw[l] ⊙ mask. Returns the dropout counter after the batch.
    """
    cdef Py_ssize_t l, L = net.n_layers, s, segments, stride, at, size, width
    cdef const floating *a = X if x_rows != NULL else X + first * net.sizes[0]
    cdef const int64_t *a_rows = x_rows + first if x_rows != NULL else NULL
    cdef floating *z
    cdef floating *act
    cdef floating *mask = NULL
    cdef floating *bias
    cdef Py_ssize_t *n = net.sizes
    cdef uint64_t counter = net.dropout_counter
    cdef fm_tile tile
    cdef bint dropped
    for l in range(L):
        dropped = training and l < L - 1 and net.masks[l + 1] != NULL
        width = n[l + 1]
        act = (out if l == L - 1 else <floating *> net.acts[l + 1]) + first * width
        z = act
        if dropped:
            z = <floating *> net.raw[l + 1] + first * width
            mask = <floating *> net.masks[l + 1] + first * width
        if l == 0 and csr != NULL:
            _csr_forward_share(net, csr, a_rows, first, rows, z, id, count, &tile)
        else:
            _gemm_team(rows, width, n[l], <floating> 1, a, n[l], 1, a_rows, NULL, <floating *> net.W[l],
                       width, 1, <floating> 0, z, width, work, net.codes[l] == FM_SOFTMAX, id, count, &tile)
        segments = _segments(&tile, width, &stride)
        for s in range(segments):
            at = tile.row * width + tile.col + s * stride
            size = tile.rows * tile.cols // segments
            bias = <floating *> net.b[l] + tile.col if net.use_bias else NULL
            _bias_activation(z + at, bias, size // tile.cols, tile.cols, net.codes[l])
            if dropped:
                _dropout_mask(mask + at, size, net.dropout_key, counter + <uint64_t> (first * width + at),
                              1 - net.dropout)
                memcpy(act + at, z + at, size * sizeof(floating))
                _multiply(act + at, mask + at, size)
        if dropped:
            counter += batch_rows * width
        fm_team_barrier(count)   # returns at once for a thread alone (count 1)
        a, a_rows = act, NULL
    return counter


cdef void _input_delta(Network net, Py_ssize_t l, Py_ssize_t first, Py_ssize_t rows, bint training,
                       floating *work, int id, int count) noexcept nogil:
    """The error of layer l's input, rows first .. first+rows-1 of the batch: deltas[l-1] =
    (deltas[l] · weights[l]ᵀ) ⊙ σ'(z), this thread's tile of it (times dropout's mask in
    training), σ' applied to the tile while it is in cache."""
    cdef Py_ssize_t *n = net.sizes
    cdef Py_ssize_t s, segments, stride, at, size
    cdef floating *delta = <floating *> net.dels[l] + first * n[l + 1]
    cdef floating *previous = <floating *> net.dels[l - 1] + first * n[l]
    cdef floating *a = <floating *> (net.raw[l] if training else net.acts[l]) + first * n[l]
    cdef fm_tile tile
    # weights[l] read transposed through its strides
    _gemm_team(rows, n[l], n[l + 1], <floating> 1, delta, n[l + 1], 1, NULL, NULL,
               <floating *> net.W[l], 1, n[l + 1], <floating> 0, previous, n[l],
               work, False, id, count, &tile)
    segments = _segments(&tile, n[l], &stride)
    for s in range(segments):
        at = tile.row * n[l] + tile.col + s * stride
        size = tile.rows * tile.cols // segments
        if training and net.masks[l] != NULL:
            _multiply(previous + at, <floating *> net.masks[l] + first * n[l] + at, size)
        _activation_derivative(a + at, previous + at, size, net.codes[l - 1])


cdef void _weight_gradient(Network net, Py_ssize_t l, const floating *X, const int64_t *x_rows,
                           const Csr *csr, Py_ssize_t rows, floating total_weight, const Step *sgd_step,
                           floating *work, int id, int count) noexcept nogil:
    """This thread's tile of layer l's weight gradient (and, on the last thread, the bias
    gradient); with ``sgd_step`` applied to the weights and biases instead of stored. The first
    layer's input is the batch (X, x_rows, csr) as _forward reads it."""
    cdef Py_ssize_t *n = net.sizes
    cdef Py_ssize_t s, segments, stride, at
    cdef const floating *a = X if l == 0 else <floating *> net.acts[l]
    cdef const int64_t *a_cols = x_rows if l == 0 else NULL
    cdef floating *delta = <floating *> net.dels[l]
    cdef floating *W = <floating *> net.W[l]
    cdef floating *velocity = NULL
    cdef floating *bias_velocity = NULL
    cdef floating rate
    cdef fm_tile tile
    if l == 0 and csr != NULL:
        _csr_weight_gradient(net, csr, x_rows, rows, total_weight, sgd_step, id, count)
        if sgd_step != NULL and net.S1 != NULL:
            bias_velocity = <floating *> net.S1[net.n_layers]
    elif sgd_step != NULL and net.S1 != NULL:
        # momentum inside the product: velocity[l] := μ velocity[l] − η Aᵀ Δ / Σw, then
        # weights[l] += velocity[l], each tile while it is in cache
        rate = sgd_step.learning_rate
        velocity = <floating *> net.S1[l]
        bias_velocity = <floating *> net.S1[net.n_layers + l]
        _gemm_team(n[l], n[l + 1], rows, -rate / total_weight, a, 1, n[l], NULL, a_cols, delta,
                   n[l + 1], 1, <floating> sgd_step.momentum, velocity, n[l + 1], work, False, id, count,
                   &tile)
        segments = _segments(&tile, n[l + 1], &stride)
        for s in range(segments):
            at = tile.row * n[l + 1] + tile.col + s * stride
            _update(W + at, NULL, velocity + at, NULL, tile.rows * tile.cols // segments, sgd_step)
    elif sgd_step != NULL:
        # plain SGD inside the product: weights[l] := (1 − η·l2) weights[l] − η Aᵀ Δ / Σw
        rate = sgd_step.learning_rate
        _gemm_team(n[l], n[l + 1], rows, -rate / total_weight, a, 1, n[l], NULL, a_cols, delta,
                   n[l + 1], 1, 1 - rate * <floating> net.l2, W, n[l + 1], work, False, id, count, &tile)
    else:
        # ∂C/∂weights[l] = weighted mean over the batch of a δᵀ = Aᵀ Δ / Σw, with A =
        # activations[l] (this layer's input, read transposed through strides) and Δ =
        # deltas[l] (its error), plus the penalty's gradient, added to each tile in cache
        _gemm_team(n[l], n[l + 1], rows, 1 / total_weight, a, 1, n[l], NULL, a_cols, delta, n[l + 1], 1,
                   <floating> 0, <floating *> net.gW[l], n[l + 1], work, False, id, count, &tile)
        segments = _segments(&tile, n[l + 1], &stride)
        for s in range(segments):
            at = tile.row * n[l + 1] + tile.col + s * stride
            _add_penalty(<floating *> net.gW[l] + at, <floating *> net.W[l] + at,
                         tile.rows * tile.cols // segments, <floating> net.l2, <floating> net.l1)
    # ∂C/∂biases[l] = weighted mean over the batch of δ (by the last thread, which has the
    # smallest share of the products when they are not split)
    if net.use_bias and id == count - 1:
        _column_sums(delta, <floating *> net.gb[l], rows, n[l + 1], 1 / total_weight)
        if sgd_step != NULL:
            _update(<floating *> net.b[l], <floating *> net.gb[l], bias_velocity, NULL, n[l + 1], sgd_step)


cdef double _forward_backward(Network net, const floating *X, const int64_t *x_rows, const Csr *csr,
                              Py_ssize_t rows, const floating *Y, const int64_t *y_rows,
                              const floating *sample_weight, bint training, const Step *sgd_step, int id,
                              int count) noexcept nogil:
    """Forward pass from the batch's inputs (X, x_rows, csr: see _forward), then backpropagation into
    the gradient buffers. Sample i's targets are row y_rows[i] of Y or, with y_rows NULL, row i.

    Run by every thread of a team. Split by rows (Network.split_rows), each thread takes its own
    samples through the forward pass and the errors δ of every layer, and the team meets once,
    before the weight gradients; split by tiles, the team shares each product as in _forward and
    meets once per layer. Either way it then shares each weight gradient by tiles. With
    ``sgd_step`` (plain SGD, or classical momentum without l2; no L1) each layer's gradient is
    applied inside its product instead of being stored: weights[l] := (1 − η·l2) weights[l] −
    η Aᵀ Δ / Σw, one pass over the weights instead of three, or velocity[l] := μ velocity[l] −
    η Aᵀ Δ / Σw and then weights[l] += velocity[l] on each tile. Returns (on thread 0) the loss
    summed over the rows, weighted by sample_weight when it is not NULL.
    """
    cdef Py_ssize_t l, L = net.n_layers, i, first = 0, own = rows
    cdef Py_ssize_t *n = net.sizes
    cdef floating *work = <floating *> net.work + id * net.work_per_thread
    cdef floating total_weight = rows
    cdef double loss_total = 0
    cdef uint64_t counter
    cdef bint by_rows = _by_rows(net, count)
    cdef const floating *targets = Y
    if by_rows:
        own = _share(rows, 1, id, count, &first)
        counter = _forward(net, X, x_rows, csr, first, own, rows, <floating *> net.acts[L], training,
                           work, 0, 1)
    else:
        counter = _forward(net, X, x_rows, csr, 0, rows, rows, <floating *> net.acts[L], training,
                           work, id, count)
    if by_rows or id == 0:
        # Output error: δᴸ = ∇ₐC ⊙ σ'(zᴸ), each row's loss kept to be summed in order
        if y_rows == NULL:
            targets = Y + first * n[L]
        _output_delta(<floating *> net.acts[L] + first * n[L], targets,
                      y_rows + first if y_rows != NULL else NULL,
                      <floating *> net.dels[L - 1] + first * n[L],
                      sample_weight + first if sample_weight != NULL else NULL, own, n[L],
                      net.codes[L - 1], net.loss, net.row_losses + first)
    if by_rows:
        for l in range(L - 1, 0, -1):
            _input_delta(net, l, first, own, training, work, 0, 1)
    fm_team_barrier(count)   # every row's output error (by rows: every error) is complete
    if id == 0:
        net.dropout_counter = counter   # every thread has read the old value by now
        for i in range(rows):
            loss_total += net.row_losses[i]
    if sample_weight != NULL:
        total_weight = 0
        for i in range(rows):
            total_weight += sample_weight[i]
    for l in range(L - 1, -1, -1):
        if l > 0 and not by_rows:
            _input_delta(net, l, 0, rows, training, work, id, count)
            fm_team_barrier(count)   # deltas[l-1] is complete, and weights[l] is read no more
        _weight_gradient(net, l, X, x_rows, csr, rows, total_weight, sgd_step, work, id, count)
    return loss_total


cdef double _train_step(Network net, Py_ssize_t start, Py_ssize_t rows, floating *sample_weight,
                        Step *step, int id, int count) noexcept nogil:
    """Forward, backward and one optimizer step on the mini-batch of rows order[start:start + rows].

    Run by every thread of a team: each gathers a share of the sample weights (if any) into
    sample_weight and (unless plain SGD was applied inside the products) updates a share of every
    parameter array. The inputs and targets are not gathered: the first layer's products read the
    batch's rows where they lie in the data set, so that fetching them from memory overlaps the
    arithmetic, and the output error reads its targets' rows there too, requested here so that
    they arrive during the forward pass. Returns (on thread 0) the batch's summed loss.
    """
    cdef Py_ssize_t l, first, size
    cdef double total
    cdef Py_ssize_t *n = net.sizes
    cdef const int64_t *index = net.order + start
    cdef const floating *X = <const floating *> net.X_data
    cdef const int64_t *x_rows = index
    # plain SGD, or classical momentum without a penalty: applied inside the weight-gradient products
    cdef bint fused = step.optimizer == SGD and net.l1 == 0 and (net.S1 == NULL or net.l2 == 0)
    # the same share of the rows as _forward_backward's when it splits by rows
    size = _share(rows, 1, id, count, &first)
    _prefetch_rows(<const floating *> net.Y_data, index + first, size, n[net.n_layers])
    if sample_weight != NULL:
        _gather_rows(<floating *> net.sw_data, index + first, size, 1, sample_weight + first)
    if net.input_kind != INPUT_FLOAT:
        # integer inputs: converted into activations[0], which the products then read as the batch
        X, x_rows = <const floating *> net.acts[0], NULL
        _gather_inputs(net, index + first, size, <floating *> net.acts[0] + first * n[0])
    if (sample_weight != NULL or x_rows == NULL) and not _by_rows(net, count):
        fm_team_barrier(count)   # thread 0 reads every sample weight, every thread every input row
    total = _forward_backward(net, X, x_rows, net.x_csr, rows, <const floating *> net.Y_data,
                              index, sample_weight, True, step if fused else NULL, id, count)
    if fused:
        return total
    fm_team_barrier(count)   # every gradient is complete
    for l in range(net.n_layers):
        if l > 0 or net.csr_step == NULL:   # else the sparse first layer has taken its step
            _update_share(net, l, <floating *> net.W[l], <floating *> net.gW[l], n[l] * n[l + 1], step,
                          id, count)
        if net.use_bias:
            _update_share(net, net.n_layers + l, <floating *> net.b[l], <floating *> net.gb[l],
                          n[l + 1], step, id, count)
    return total


cdef inline void _gather_inputs(Network net, const int64_t *index, Py_ssize_t count,
                                floating *out) noexcept nogil:
    """out[r] := dtype(X[index[r]]) · input_scale for the bound integer X (see Network.bind)."""
    if net.input_kind == INPUT_UINT8:
        _gather_scaled_rows(<const uint8_t *> net.X_data, index, count, net.sizes[0],
                            <floating> net.input_scale, out)
    else:
        _gather_scaled_rows(<const uint16_t *> net.X_data, index, count, net.sizes[0],
                            <floating> net.input_scale, out)


cdef inline void _update_share(Network net, Py_ssize_t index, floating *P, const floating *G,
                               Py_ssize_t size, const Step *step, int id, int count) noexcept nogil:
    """Thread id's share of the optimizer step for parameter ``index`` (weights first, then biases),
    cut at whole cache lines."""
    cdef Py_ssize_t first
    cdef floating *S1 = <floating *> net.S1[index] if net.S1 != NULL else NULL
    cdef floating *S2 = <floating *> net.S2[index] if net.S2 != NULL else NULL
    size = _share(size, FM_CACHE_LINE_BYTES // sizeof(floating), id, count, &first)
    if size > 0:
        _update(P + first, G + first, S1 + first if S1 != NULL else NULL,
                S2 + first if S2 != NULL else NULL, size, step)


include "_team.pxi"
include "_predict.pxi"
include "_testing.pxi"


cdef extern from *:
    """
    #ifndef FASTMLP_BUILD_FLAGS
    #define FASTMLP_BUILD_FLAGS "unknown"
    #endif
    #ifndef FASTMLP_BUILT_WITH
    #define FASTMLP_BUILT_WITH "unknown"
    #endif
    #if defined(__clang__)
    #define FASTMLP_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define FASTMLP_COMPILER "gcc " __VERSION__
    #else
    #define FASTMLP_COMPILER "unknown"
    #endif
    """
    const char *FASTMLP_BUILD_FLAGS
    const char *FASTMLP_BUILT_WITH
    const char *FASTMLP_COMPILER

cdef extern from "fm_isa.h" nogil:
    int _build_info_cpu_runs "fm_cpu_runs"(const char *level)

cdef extern from "fm_activations.h" nogil:
    const char *_build_info_activation_isa "fm_activation_isa"()
    ctypedef struct _build_info_level "fm_activation_level":
        const char *name
    const _build_info_level *_build_info_levels "fm_activation_levels"(int *count)


def build_info():
    """Compiler and flags of this build; kernel levels compiled and in use, and those this CPU runs."""
    cdef int count
    cdef const _build_info_level *levels = _build_info_levels(&count)
    return {
        "compiler": FASTMLP_COMPILER.decode(),
        "flags": FASTMLP_BUILD_FLAGS.decode(),
        "built_with": FASTMLP_BUILT_WITH.decode(),
        "gemm_isa": fm_gemm_isa().decode(),
        "activation_isa": _build_info_activation_isa().decode(),
        "sparse_isa": fm_sparse_isa().decode(),
        "compiled_levels": [levels[i].name.decode() for i in range(count)],
        "cpu_levels": [level for level in ("avx512", "avx2", "baseline")
                       if _build_info_cpu_runs(level.encode())],
    }
