# Thread-team orchestration: the pool's thread starter, how a batch is shared among a team
# (rows or tiles), and the team tasks that run train_batch, forward and backprop. Included by
# _kernels.pyx.

cdef extern from "pythread.h" nogil:
    unsigned long PyThread_start_new_thread(void (*body)(void *) noexcept nogil, void *arg)


cdef int _start_thread(void (*body)(void *) noexcept nogil, void *arg) noexcept nogil:
    """The team pool's way to start a worker: CPython's own (it needs no GIL, and no newer glibc
    than the interpreter's)."""
    return 0 if PyThread_start_new_thread(body, arg) != <unsigned long> -1 else -1


fm_team_set_starter(_start_thread)


def team_stats():
    """How many team tasks have run on more than one thread, and how many worker threads the
    team pool has started (in this process)."""
    return {"runs": fm_team_runs(), "workers": fm_team_workers()}

cdef inline Py_ssize_t _share(Py_ssize_t size, Py_ssize_t unit, int id, int count,
                              Py_ssize_t *start) noexcept nogil:
    """Thread id's part of 0 .. size-1 among count threads: nearly equal parts cut at multiples of
    unit. Sets start[0] and returns the part's length (0 for a thread with no share)."""
    cdef Py_ssize_t units = (size + unit - 1) // unit
    cdef Py_ssize_t first = min(units * id // count * unit, size)
    start[0] = first
    return min(units * (id + 1) // count * unit, size) - first


cdef inline Py_ssize_t _segments(const fm_tile *tile, Py_ssize_t width, Py_ssize_t *stride) noexcept nogil:
    """A tile of a row-major matrix ``width`` columns wide, as contiguous segments of
    ``tile.cols``-wide rows: one segment of all its rows if it spans whole rows, else one per row.
    Returns how many; segment s starts at element tile.row · width + tile.col + s · stride[0]."""
    if tile.cols == width:
        stride[0] = 0
        return 1 if tile.rows > 0 else 0
    stride[0] = width
    return tile.rows


cdef inline bint _by_rows(Network net, int count) noexcept nogil:
    """Whether a team of count splits the batch by rows (see Network.split_rows)."""
    return count > 1 and net.split_rows


cdef int _team_size(Network net, Py_ssize_t rows) noexcept nogil:
    """Threads for a batch of ``rows``: all nthreads when its forward products have at least
    FM_GEMM_TEAM_MIN_MNK multiply-adds (30k, about 1 µs of one core's work) for each time the team
    meets (starting a team costs about 0.3 µs, a barrier less: `make -C csrc bench`), so that
    sharing the work saves more than the meetings cost; else one. Split by tiles, a team meets
    once per layer and pass and at its start and end; split by rows, at its start, once, and at
    its end."""
    cdef Py_ssize_t l
    cdef double multiply_adds = 0
    cdef int meetings = 3 if net.split_rows else 2 * net.n_layers + 2
    for l in range(net.n_layers):
        multiply_adds += <double> rows * net.sizes[l] * net.sizes[l + 1]
    return net.nthreads if multiply_adds >= FM_GEMM_TEAM_MIN_MNK * meetings else 1


cdef struct Job:
    # What a team works on: the Network (borrowed: the method that runs the team holds a reference)
    # and the batch's rows; per method, its input rows, targets, sample weights, output rows and
    # optimizer step. Thread 0 sets loss.
    void *net
    Py_ssize_t start, rows
    const char *X
    const char *Y
    const char *sample_weight
    char *out
    Step *step
    double loss
    const Csr *csr   # backprop_sparse's input rows (else NULL)


cdef Job _job(Network net, Py_ssize_t rows):
    cdef Job job
    job.net, job.start, job.rows = <void *> net, 0, rows
    job.X = job.Y = job.sample_weight = job.out = NULL
    job.csr = NULL
    job.step, job.loss = NULL, 0
    return job


cdef void _train_task(void *job, int id, int count) noexcept nogil:
    """Thread id's part of train_batch, run by fm_team_run: _train_step."""
    _train_team(<Network> (<Job *> job).net, <Job *> job, id, count)


cdef void _train_team(Network net, Job *job, int id, int count) noexcept nogil:
    cdef double total
    cdef char *sample_weight = net.sw_batch if net.sw_data != NULL else NULL
    if net.is_double:
        total = _train_step(net, job.start, job.rows, <double *> sample_weight, job.step, id, count)
    else:
        total = _train_step(net, job.start, job.rows, <float *> sample_weight, job.step, id, count)
    if id == 0:
        job.loss = total


cdef void _forward_task(void *job, int id, int count) noexcept nogil:
    """Thread id's part of forward, run by fm_team_run: _forward, not training."""
    _forward_team(<Network> (<Job *> job).net, <Job *> job, id, count)


cdef void _forward_team(Network net, Job *job, int id, int count) noexcept nogil:
    cdef Py_ssize_t first = 0, own = job.rows
    cdef Py_ssize_t work = id * net.work_per_thread   # where this thread's own workspace starts
    if _by_rows(net, count):
        own = _share(job.rows, 1, id, count, &first)
        id, count = 0, 1   # this thread's rows alone
    if net.is_double:
        _forward(net, <const double *> job.X, NULL, NULL, first, own, job.rows, <double *> job.out, False,
                 <double *> net.work + work, id, count)
    else:
        _forward(net, <const float *> job.X, NULL, NULL, first, own, job.rows, <float *> job.out, False,
                 <float *> net.work + work, id, count)


cdef void _backprop_task(void *job, int id, int count) noexcept nogil:
    """Thread id's part of backprop, run by fm_team_run: _forward_backward, not training."""
    _backprop_team(<Network> (<Job *> job).net, <Job *> job, id, count)


cdef void _backprop_team(Network net, Job *job, int id, int count) noexcept nogil:
    cdef double total
    if net.is_double:
        total = _forward_backward(net, <const double *> net.acts[0], NULL, job.csr, job.rows,
                                  <const double *> job.Y, NULL, <const double *> job.sample_weight, False,
                                  NULL, id, count)
    else:
        total = _forward_backward(net, <const float *> net.acts[0], NULL, job.csr, job.rows,
                                  <const float *> job.Y, NULL, <const float *> job.sample_weight, False,
                                  NULL, id, count)
    if id == 0:
        job.loss = total
