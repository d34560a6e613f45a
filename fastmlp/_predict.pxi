# Included by _kernels.pyx.

# ---------------------------------------------------------------------------------------------
# Inference: the forward pass of a fitted network, its buffers allocated per call
# ---------------------------------------------------------------------------------------------

# A batch goes through all the layers a block of rows at a time (Predictor._block_rows), so that a
# block's hidden activations are still in cache when the next layer's product reads them, and is
# shared among the kernel threads from FM_GEMM_PARALLEL_MIN_MNK multiply-adds on (fm_tuning.h):
# waking a worker costs a few µs on a quiet machine and more on a busy one.


cdef bint _all_finite(const floating *X, Py_ssize_t size) noexcept nogil:
    """Whether no x in X is ±∞ or NaN, the values whose exponent bits are all ones: adding 1 to
    the exponent field then carries into the sign bit. Integer AND, add and shift only, which
    the compiler vectorises with any instruction set (SSE2 has no 64-bit compare)."""
    cdef Py_ssize_t i
    cdef const uint32_t *bits32 = <const uint32_t *> X
    cdef const uint64_t *bits64 = <const uint64_t *> X
    cdef uint32_t bad32 = 0
    cdef uint64_t bad64 = 0
    if floating is float:
        for i in range(size):
            bad32 |= ((bits32[i] & 0x7f800000U) + 0x00800000U) >> 31
        return bad32 == 0
    else:
        for i in range(size):
            bad64 |= ((bits64[i] & 0x7ff0000000000000ULL) + 0x0010000000000000ULL) >> 63
        return bad64 == 0


def all_finite(cnp.ndarray X):
    """Whether X, a C-contiguous, aligned float32 or float64 array in the machine's byte order, holds
    no NaN and no infinity."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(X)
    cdef int typenum = cnp.PyArray_TYPE(X)
    cdef bint finite = True
    cdef const char *data = _data(X)
    if (not cnp.PyArray_IS_C_CONTIGUOUS(X) or not cnp.PyArray_ISBEHAVED_RO(X)
            or typenum not in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64)):
        raise ValueError("all_finite: X must be a C-contiguous, aligned float32 or float64 array in the "
                         "machine's byte order")
    if size:
        with nogil:
            if typenum == cnp.NPY_FLOAT64:
                finite = _all_finite(<const double *> data, size)
            else:
                finite = _all_finite(<const float *> data, size)
    return finite


cdef extern from *:
    """
    #include "fm_team.h"
    /* Whether this thread's large predictions have gone faster on a team or alone: one record per
       calling thread, so that threads predicting at once share nothing. */
    static _Thread_local fm_team_choice fm_predict_choice;
    static fm_team_choice *fm_predict_team_choice(void) { return &fm_predict_choice; }
    """
    fm_team_choice *fm_predict_team_choice() nogil


cdef extern from *:
    """
    /* A flag several threads may raise at once. */
    static void fm_raise_flag(int *flag) { __atomic_store_n(flag, 1, __ATOMIC_RELAXED); }
    static int fm_flag_raised(int *flag) { return __atomic_load_n(flag, __ATOMIC_RELAXED); }
    """
    void fm_raise_flag(int *flag) nogil
    int fm_flag_raised(int *flag) nogil


cdef struct Prediction:
    # What a team predicts: the Predictor (borrowed: output holds a reference), the batch's rows in
    # and out, and every thread's buffer of per_thread values: two blocks of `block` rows of hidden
    # activations, then a GEMM workspace.
    void *predictor
    const char *X
    char *out
    Py_ssize_t rows, block, per_thread
    char *buffers
    const Csr *csr   # the rows in, when they are a CSR matrix (X is then NULL)
    bint check_first_layer   # stop, raising non_finite, at a first-layer value that is NaN or ±∞
    int non_finite


cdef class Predictor:
    """The forward pass of a fitted network, for inference: ``output(X)`` is one compiled call.

    The weights and biases are checked once, here, and only read (read-only arrays, such as a
    memory-mapped model's, are fine). A Predictor holds no buffers: each call allocates what its
    batch needs (two blocks of hidden activations and a GEMM workspace per thread), so any number
    of threads may call ``output`` on one Predictor at once.
    """
    cdef readonly int n_layers
    cdef readonly object dtype
    cdef readonly tuple weights, biases, activations
    cdef readonly bint use_bias
    cdef int is_double, typenum
    cdef Py_ssize_t widest   # the widest hidden layer (0 without one)
    cdef Py_ssize_t *sizes
    cdef int *codes
    cdef char **W
    cdef char **b

    def __cinit__(self):
        self.sizes = NULL
        self.codes = NULL
        self.W = self.b = NULL

    def __init__(self, weights, biases, activations, bint use_bias=True):
        """Bind ``weights[l]`` (n_in, n_out) and ``biases[l]`` (n_out,): C-contiguous, aligned arrays
        of one dtype, float32 or float64; ``activations`` names each layer's activation."""
        cdef Py_ssize_t l
        n_layers = len(weights)
        if n_layers < 1 or len(biases) != n_layers or len(activations) != n_layers:
            raise ValueError("need one weight matrix, bias vector and activation per layer")
        dtype = np.dtype(weights[0].dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"weights must be float32 or float64, got {dtype}")
        for l in range(n_layers):
            w, bias = weights[l], biases[l]
            if (not isinstance(w, np.ndarray) or not isinstance(bias, np.ndarray)
                    or w.dtype != dtype or bias.dtype != dtype or w.ndim != 2
                    or bias.shape != (w.shape[1],) or not w.flags.c_contiguous or not w.flags.aligned
                    or not bias.flags.c_contiguous or not bias.flags.aligned
                    or (l > 0 and w.shape[0] != weights[l - 1].shape[1])):
                raise ValueError(f"layer {l}: weights and biases must be C-contiguous, aligned arrays of "
                                 "one dtype and matching shapes")
        self.n_layers = n_layers
        self.dtype = dtype
        self.is_double = dtype == np.float64
        self.typenum = cnp.NPY_FLOAT64 if self.is_double else cnp.NPY_FLOAT32
        self.weights, self.biases = tuple(weights), tuple(biases)
        self.activations = tuple(activations)
        self.use_bias = use_bias
        widths = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        self.widest = max(widths[1:-1], default=0)
        self.sizes = _sizes(widths)
        self.codes = _codes(activations)
        self.W = _pointers(list(weights))
        self.b = _pointers(list(biases))

    def __dealloc__(self):
        free(self.sizes)
        free(self.codes)
        free(self.W)
        free(self.b)

    def binds(self, weights, biases, activations, bint use_bias):
        """Whether this Predictor computes the network of these very arrays (the same objects),
        activations and use_bias."""
        cdef Py_ssize_t l
        if (len(weights) != self.n_layers or len(biases) != self.n_layers
                or len(activations) != self.n_layers or use_bias != self.use_bias):
            return False
        for l in range(self.n_layers):
            if (weights[l] is not self.weights[l] or biases[l] is not self.biases[l]
                    or activations[l] != self.activations[l]):
                return False
        return True

    def output(self, cnp.ndarray X, int nthreads=1):
        """aᴸ for the rows of X (C-contiguous and aligned, of the weights' dtype): a new array of shape
        (n_samples, n_outputs). The rows are shared among up to ``nthreads`` kernel threads when the
        batch is large enough to pay for waking them and a team has not been slower than the calling
        thread alone lately; else they are computed on the calling thread."""
        return self._output(X, nthreads, False)

    def output_if_finite(self, cnp.ndarray X, int nthreads=1):
        """``output(X)``, or None if X may hold a NaN or an infinity: then the caller checks X.

        A NaN or ±∞ in a row x of X makes every value of that row's first-layer product x·W⁰
        NaN or ±∞ (∞·0 is NaN), so the products are checked instead of X when they are
        narrower (784 → 100: an eighth of the reads, in cache). Finite X whose products
        overflow also gives None."""
        if self.sizes[1] < self.sizes[0]:
            return self._output(X, nthreads, True)
        out = self._output(X, nthreads, False)   # which checks X's layout
        return out if all_finite(X) else None

    cdef object _output(self, cnp.ndarray X, int nthreads, bint check_first_layer):
        cdef Py_ssize_t l, rows, block, work_size = 0
        cdef int count
        cdef double multiply_adds
        cdef Prediction job
        cdef cnp.npy_intp dims[2]
        if (X.ndim != 2 or cnp.PyArray_TYPE(X) != self.typenum or X.shape[1] != self.sizes[0]
                or not cnp.PyArray_IS_C_CONTIGUOUS(X) or not cnp.PyArray_ISBEHAVED_RO(X) or nthreads < 1):
            raise ValueError("output: X must be a C-contiguous, aligned 2-D array of the network's dtype "
                             "(in the machine's byte order) and width")
        rows = X.shape[0]
        dims[0], dims[1] = rows, self.sizes[self.n_layers]
        out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        if rows == 0:
            return out
        multiply_adds = self._multiply_adds(rows)
        count = 1 if multiply_adds < FM_GEMM_PARALLEL_MIN_MNK else <int> min(nthreads, FM_TEAM_MAX, rows)
        block = min(self._block_rows(), (rows + count - 1) // count)
        for l in range(self.n_layers):
            work_size = max(work_size, workspace_size(self.dtype, block, self.sizes[l + 1], self.sizes[l], 1))
        job.predictor, job.rows, job.block = <void *> self, rows, block
        job.X, job.out, job.csr = _data(X), _data(out), NULL
        job.check_first_layer, job.non_finite = check_first_layer, 0
        job.per_thread = 2 * block * self.widest + work_size
        job.buffers = <char *> malloc(max(1, count * job.per_thread) * cnp.PyArray_ITEMSIZE(X))
        if job.buffers == NULL:
            raise MemoryError("output: no memory for the activations of a block of rows")
        with nogil:
            # A team, or alone when that has been faster on this thread lately (a busy machine,
            # where a team member waits for a core): fm_team_run_adaptive in csrc/fm_team.h.
            fm_team_run_adaptive(fm_predict_team_choice(), count, multiply_adds, _predict_task, &job)
            free(job.buffers)
        return None if job.non_finite else out

    def output_sparse(self, X, int nthreads=1):
        """``output`` for X a CSR matrix (``X.data`` of the weights' dtype, ``X.indices`` and ``X.indptr``
        int32 or int64, contiguous): the first layer's product runs over X's nonzeros."""
        cdef Py_ssize_t l, rows, block, work_size = 0
        cdef int count
        cdef double multiply_adds
        cdef Prediction job
        cdef Csr csr
        cdef cnp.npy_intp dims[2]
        _csr_view(X, self.dtype, self.sizes[0], &csr)
        if nthreads < 1:
            raise ValueError("output_sparse: nthreads must be >= 1")
        rows = X.shape[0]
        dims[0], dims[1] = rows, self.sizes[self.n_layers]
        out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        if rows == 0:
            return out
        # the first layer costs a multiply-add per nonzero and output
        multiply_adds = self._multiply_adds(rows) - <double> rows * self.sizes[0] * self.sizes[1]
        multiply_adds += <double> len(X.indices) * self.sizes[1]
        count = 1 if multiply_adds < FM_GEMM_PARALLEL_MIN_MNK else <int> min(nthreads, FM_TEAM_MAX, rows)
        block = min(self._block_rows(), (rows + count - 1) // count)
        for l in range(1, self.n_layers):
            work_size = max(work_size, workspace_size(self.dtype, block, self.sizes[l + 1], self.sizes[l], 1))
        job.predictor, job.rows, job.block = <void *> self, rows, block
        job.X, job.out, job.csr = NULL, _data(out), &csr
        job.check_first_layer, job.non_finite = False, 0
        job.per_thread = 2 * block * self.widest + work_size
        job.buffers = <char *> malloc(max(1, count * job.per_thread) * cnp.PyArray_ITEMSIZE(out))
        if job.buffers == NULL:
            raise MemoryError("output_sparse: no memory for the activations of a block of rows")
        with nogil:
            fm_team_run_adaptive(fm_predict_team_choice(), count, multiply_adds, _predict_task, &job)
            free(job.buffers)
        return out

    @property
    def block_rows(self):
        """How many rows go through all the layers at a time (each thread's share of a batch in
        blocks of this many rows, the last one shorter)."""
        return self._block_rows()

    cdef Py_ssize_t _block_rows(self) noexcept:
        """The rows of a block: FM_PREDICT_BLOCK_ROWS, or more while the widest hidden layer's
        activations fit in FM_PREDICT_BLOCK_BYTES (fm_tuning.h): every block packs the weights
        again."""
        cdef Py_ssize_t itemsize = 8 if self.is_double else 4
        return max(<Py_ssize_t> FM_PREDICT_BLOCK_ROWS, FM_PREDICT_BLOCK_BYTES // max(1, self.widest * itemsize))

    cdef double _multiply_adds(self, Py_ssize_t rows):
        """The multiply-adds of the products of a batch of ``rows``."""
        cdef Py_ssize_t l
        cdef double total = 0
        for l in range(self.n_layers):
            total += <double> rows * self.sizes[l] * self.sizes[l + 1]
        return total


cdef void _predict_task(void *job, int id, int count) noexcept nogil:
    """Thread id's share of Predictor.output, run by fm_team_run: its own rows, with its own buffer."""
    _predict_team(<Predictor> (<Prediction *> job).predictor, <Prediction *> job, id, count)


cdef void _predict_team(Predictor p, Prediction *job, int id, int count) noexcept nogil:
    cdef Py_ssize_t first
    cdef Py_ssize_t rows = _share(job.rows, 1, id, count, &first)
    cdef Py_ssize_t n_in = p.sizes[0], n_out = p.sizes[p.n_layers], at = id * job.per_thread
    if rows == 0:
        return
    cdef int *non_finite = &job.non_finite if job.check_first_layer else NULL
    if p.is_double:
        _predict_rows(p, <const double *> job.X + first * n_in if job.csr == NULL else NULL, job.csr, first,
                      rows, <double *> job.out + first * n_out, <double *> job.buffers + at, job.block,
                      non_finite)
    else:
        _predict_rows(p, <const float *> job.X + first * n_in if job.csr == NULL else NULL, job.csr, first,
                      rows, <float *> job.out + first * n_out, <float *> job.buffers + at, job.block,
                      non_finite)


cdef void _predict_rows(Predictor p, const floating *X, const Csr *csr, Py_ssize_t first, Py_ssize_t rows,
                        floating *out, floating *buffer, Py_ssize_t block, int *non_finite) noexcept nogil:
    """out := aᴸ for the rows of X, block rows at a time: aˡ⁺¹ = σ(aˡ · Wˡ + bˡ), the hidden layers
    taking turns in the two halves of the front of buffer, the GEMM workspace behind them. The same
    products and activations as Network._forward, so the same values, bit for bit. With csr, the rows
    are rows first .. first+rows-1 of that CSR matrix instead (X is NULL). With non_finite, a block
    whose first-layer product holds a NaN or ±∞ raises that flag and ends the work (as does a flag
    another thread has raised)."""
    cdef Py_ssize_t l, L = p.n_layers, start = 0, m
    cdef Py_ssize_t *n = p.sizes
    cdef floating *hidden[2]
    cdef floating *work = buffer + 2 * block * p.widest
    cdef const floating *a
    cdef floating *z
    hidden[0], hidden[1] = buffer, buffer + block * p.widest
    while start < rows:
        m = min(block, rows - start)
        a = X + start * n[0] if csr == NULL else NULL
        for l in range(L):
            z = out + start * n[L] if l == L - 1 else hidden[l % 2]
            if l == 0 and csr != NULL:
                _csr_mm(csr, NULL, first + start, m, n[1], <const floating *> p.W[0], n[1], z, n[1])
            else:
                _gemm(m, n[l + 1], n[l], <floating> 1, a, n[l], 1, NULL, NULL, <const floating *> p.W[l], n[l + 1],
                      1, <floating> 0, z, n[l + 1], work, 1)
            if l == 0 and non_finite != NULL:
                if fm_flag_raised(non_finite) or not _all_finite(z, m * n[1]):
                    fm_raise_flag(non_finite)
                    return
            _bias_activation(z, <const floating *> p.b[l] if p.use_bias else NULL, m, n[l + 1], p.codes[l])
            a = z
        start += m
