"""Both cores busy on the large elementwise and row-wise passes: a small pool of threads over blocks of rows.

NumPy runs each ufunc in one thread, but releases the GIL inside its loops, so two threads running the same NumPy
code on two parts of an array run at once. `for_row_blocks(work, *arrays)` splits the arrays' leading (row) axis
into blocks, a few per thread, and the threads (the calling one and the pool's) each take the next block as they
finish one, calling `work` on it; `work` writes its results into the blocks it is given. A large array is cut into
blocks that fit the core's cache even in one thread, so a chain of passes reads each block from the cache after its
first pass, not the whole array from memory on every pass. Each block runs the very same ufuncs on its own rows, so
the numbers are bit for bit those of one call on the whole arrays: `work` must not reduce across rows (a row's own
reduction stays within its row), and BLAS calls stay outside it (OpenBLAS's result for a row can depend on where the
block it was called on begins: work that calls BLAS goes through `for_each_thread`, below). Worth it for a chain of
passes with exp or division in it (GELU, softmax, the Adam step); a lone product or sum runs as fast as memory feeds
it, and gains nothing from a second thread.

Threads: the cores this process may run on (os.sched_getaffinity), unless `set_num_threads(n)` or the environment
variable TINYGRAD_LLM_NUM_THREADS says otherwise (PyTorch's torch.set_num_threads, for these passes; 1 turns the
pool off). The pool is made on first use, not at import, and only NumPy arrays on the CPU use it (CuPy arrays run
`work` once, on the GPU).

BLAS has threads of its own, and OpenBLAS's keep their cores busy-waiting for a while after each call (until its
THREAD_TIMEOUT), so in a training step, where a pass follows a matmul at once, the pool's second thread shares its
core with one of them and brings little: beside them the pool takes only the longest passes (those over at least
MIN_ELEMENTS_BESIDE_BLAS_THREADS elements, and not the cheap ones). `set_blas_on_pool(True)` gives the pool the
cores alone, as PyTorch's one pool does: BLAS at one thread, and each large matmul cut into one piece per thread
(`matmul`, and attention's batches through `for_each_thread`), each piece a one-thread BLAS call; the pool then
takes every pass large enough to split. It is off by default: handing a piece to a sleeping thread and waiting
for it costs more than OpenBLAS's busy-waiting threads pay, so it wins where the matmuls are large and loses where
they are small (benchmarks/RESULTS.md).
"""
import concurrent.futures
import contextlib
import contextvars
import os
import threading

import numpy as np
from threadpoolctl import threadpool_limits

NUM_THREADS_ENV = "TINYGRAD_LLM_NUM_THREADS"
# a block smaller than this is not worth handing to another thread: the handing would cost a good share of the time
# its passes take
MIN_ELEMENTS_PER_BLOCK = 1 << 15
# blocks per thread: each thread takes the next block as it finishes one, so a thread that shares its core (with
# OpenBLAS's threads, which spin for a while after each BLAS call, or with another process) takes fewer blocks and
# the others do not wait for it
BLOCKS_PER_THREAD = 4
# and a block larger than this is split further, so that all of `work`'s passes over one block run while the block
# is still in the core's cache (a block's arrays, a few times this many floats, fit in a 1-2 MB L2), instead of each
# pass streaming the whole array from memory
MAX_ELEMENTS_PER_BLOCK = 1 << 17

# beside BLAS's own threads, which keep the other cores busy-waiting after each matmul, the pool takes only the
# passes over arrays of at least this many elements: on smaller ones its thread, sharing a core with one of BLAS's,
# gains less than the handing costs (benchmarks/RESULTS.md)
MIN_ELEMENTS_BESIDE_BLAS_THREADS = 1 << 20

# a piece of a matmul cut over the threads does at least this many multiply-adds: handing a smaller one to a thread
# would cost more than the thread brings (and BLAS may take small products by other routes, with other roundings)
MIN_MULTIPLY_ADDS_PER_PIECE = 1 << 23

_num_threads = None   # set on first use, or by set_num_threads
_blas_limits = None   # threadpoolctl's hold on BLAS's threads while the pool runs the matmuls (set_blas_on_pool)
_pool = None          # the worker threads (one fewer than _num_threads: the calling thread runs a block too)
_pool_pid = None      # the process that made them: a forked child has none of them, and makes its own


def get_num_threads():
    """The threads the passes split over: set_num_threads' value, else $TINYGRAD_LLM_NUM_THREADS, else the cores
    this process may run on."""
    global _num_threads
    if _num_threads is None:
        value = os.environ.get(NUM_THREADS_ENV, "").strip()
        _num_threads = _checked(int(value) if value.isdigit() else value, NUM_THREADS_ENV) if value else _usable_cores()
    return _num_threads


def set_num_threads(n):
    """Split the large passes over n threads from now on (1: run them in the calling thread alone)."""
    global _num_threads, _pool
    n = _checked(n, "set_num_threads")
    if _pool is not None and n != _num_threads:
        _pool.shutdown()
        _pool = None
    _num_threads = n


def set_blas_on_pool(on):
    """on: BLAS at one thread, and the large matmuls cut over this pool's threads (the module's docstring says when
    that pays); off: BLAS's threads as they were (threadpoolctl sets them)."""
    global _blas_limits
    if on and _blas_limits is None:
        _blas_limits = threadpool_limits(limits=1, user_api="blas")
    elif not on and _blas_limits is not None:
        _blas_limits.restore_original_limits()
        _blas_limits = None


@contextlib.contextmanager
def using_blas_on_pool(on):
    """set_blas_on_pool(on) inside the with-block, and back to what it was after it, however it is left."""
    before = blas_on_pool()
    set_blas_on_pool(on)
    try:
        yield
    finally:
        set_blas_on_pool(before)


def blas_on_pool():
    """Whether this pool runs the matmuls (set_blas_on_pool), and so has the cores to itself."""
    return _blas_limits is not None


def matmul(a, b):
    """a @ b for matrices a (n, k) and b (k, m). With BLAS on the pool, a large product's rows are cut into one piece
    per thread, each a one-thread BLAS call writing its rows of the result; else one BLAS call. The pieces give
    what one call at one thread gives, bit for bit in float32 (tests/test_threads.py); in float64 OpenBLAS takes
    some pieces by other kernels than the whole, a few units in the last place apart."""
    if _blas_limits is None or type(a) is not np.ndarray:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))                 # (n, m)
    # pieces of two rows at least: NumPy hands a one-row product to another BLAS routine (a matrix-vector product)
    for_each_thread(lambda rows, out_rows: np.matmul(rows, b, out=out_rows), a, out,
                    multiply_adds=a.shape[0] * a.shape[1] * b.shape[1], min_rows=2)
    return out


def for_each_thread(work, *arrays, multiply_adds, min_rows=1):
    """work(*pieces) on pieces of the leading axis of `arrays`, one per thread and at once, when BLAS is on the pool:
    as many as the work's matmuls (`multiply_adds` in all) give MIN_MULTIPLY_ADDS_PER_PIECE each, of `min_rows` at
    least; else work(*arrays), once, here. For work that calls BLAS: each piece's calls run at BLAS's one thread.
    A None among the arrays is passed on as None. Returns when every piece is done; an error in one is raised here.
    `work` must not hand work to the pool itself (for_row_blocks, matmul): a pool thread would wait for itself."""
    first = arrays[0]
    on_pool = _blas_limits is not None and type(first) is np.ndarray
    pieces = min(get_num_threads(), first.shape[0] // min_rows, multiply_adds // MIN_MULTIPLY_ADDS_PER_PIECE) \
        if on_pool else 1
    if pieces <= 1:
        work(*arrays)
        return
    cuts = _cut(arrays, pieces)
    _run_at_once(work, cuts[1:], cuts[0])


def for_row_blocks(work, *arrays, cheap=False):
    """work(*blocks) for blocks of rows of `arrays` (each block: the same rows of every array; all arrays share
    their leading length; a None among them is passed on as None), at once on the pool's threads when the first
    array is a NumPy array large enough to be worth it; else work(*arrays), once, here. Blocks are at most
    MAX_ELEMENTS_PER_BLOCK elements, so even in one thread a long chain of passes runs block by block in the cache.
    The pool takes them while BLAS is on it; beside BLAS's own threads, only from MIN_ELEMENTS_BESIDE_BLAS_THREADS
    elements on, and never when `cheap` (passes as cheap as a product, which then lose more in the handing than a
    shared core brings): else they run here, one after another. Returns when every block is done; an error in one
    is raised here. `work` must not hand work to the pool itself (for_row_blocks, matmul): a pool thread would wait
    for blocks that only it could run."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.ndim == 0:
        work(*arrays)
        return
    beside_blas = not cheap and first.size >= MIN_ELEMENTS_BESIDE_BLAS_THREADS
    threads = get_num_threads() if _blas_limits is not None or beside_blas else 1
    for_cache = -(-first.size // MAX_ELEMENTS_PER_BLOCK)
    for_threads = BLOCKS_PER_THREAD * threads if threads > 1 else 1
    blocks = min(first.shape[0], first.size // MIN_ELEMENTS_PER_BLOCK, max(for_cache, for_threads))
    if blocks <= 1:
        work(*arrays)
        return
    helpers = min(threads, blocks) - 1                            # threads of the pool that join this thread
    pieces = _cut(arrays, blocks)
    taken, lock = [0], threading.Lock()

    def take_blocks():                                             # each thread: the next block no one has taken
        while True:
            with lock:
                i = taken[0]
                taken[0] += 1
            if i >= len(pieces):
                return
            work(*pieces[i])

    _run_at_once(take_blocks, [()] * helpers, ())


def _cut(arrays, n):
    """The arrays' leading axis cut into n pieces of (nearly) equal length: [the pieces of every array] per piece; a
    None among the arrays stays None."""
    bounds = [arrays[0].shape[0] * i // n for i in range(n + 1)]
    return [[None if a is None else a[lo:hi] for a in arrays] for lo, hi in zip(bounds, bounds[1:])]


def _run_at_once(work, helpers_arguments, own_arguments):
    """work(*arguments) on the pool's threads for each of helpers_arguments, and here on own_arguments, at once."""
    # each helper runs in a copy of this thread's context: NumPy's error state (np.errstate) lives there
    futures = [_executor().submit(contextvars.copy_context().run, work, *arguments) for arguments in helpers_arguments]
    try:
        work(*own_arguments)
    finally:
        concurrent.futures.wait(futures)    # never return while a helper still writes into the arrays
    for future in futures:
        future.result()                     # a helper's error, raised here


def rows_of(*arrays):
    """Arrays of one shape for elementwise work, as (N, last axis) views when all are C-contiguous with more than
    two axes (so that a (1, T, C) activation still splits, over its T rows); else the arrays as they are."""
    if arrays[0].ndim > 2 and all(a.flags.c_contiguous for a in arrays):
        return tuple(a.reshape(-1, a.shape[-1]) for a in arrays)
    return arrays


def _executor():
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = concurrent.futures.ThreadPoolExecutor(get_num_threads() - 1, thread_name_prefix="tinygrad_llm")
        _pool_pid = os.getpid()
    return _pool


def _usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _checked(n, where):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{where}: the number of threads must be a whole number >= 1, got {n!r}")
    return int(n)
