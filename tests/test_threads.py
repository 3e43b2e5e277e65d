"""engine/threads.py: the pool that splits large passes over blocks of rows. Every op that runs on it (GELU,
softmax, log_softmax, cross-entropy, the Adam step) gives, bit for bit, what it gives in one thread: forward and
backward, float32 and float64, odd row counts, arrays below and above the size where the pool starts; layer norm,
which runs its blocks in one thread, gives what it gives on the whole arrays. With BLAS on the pool
(set_blas_on_pool), the matmuls cut over its threads (linear, attention) and layer norm on them give what they give
with BLAS's own threads. Blocks are forced on small arrays by lowering that size (the tests stay cheap), and once at
the real size."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import tinygrad_llm.nn.functional as F
from tinygrad_llm.engine import rng as engine_rng
from tinygrad_llm.engine import threads
from tinygrad_llm.engine.tensor import Tensor
from tinygrad_llm.nn.module import Parameter
from tinygrad_llm.nn.utils import clip_grad_norm_
from tinygrad_llm.optim import Adam, AdamW

from conftest import assert_raises_naming


@pytest.fixture
def restore_threads():
    """Whatever a test sets, the next one finds the process's own number of threads, and BLAS's own threads."""
    before = threads.get_num_threads()
    yield
    threads.set_num_threads(before)
    threads.set_blas_on_pool(False)


def _in_threads(n, compute):
    """compute() with the passes split over n threads (blocks of at least one row: the size limit lowered to 1)."""
    threads.set_num_threads(n)
    return compute()


def _bytes(arrays):
    return [np.ascontiguousarray(a).tobytes() for a in arrays]


def _same_in_one_and_three_threads(compute, monkeypatch, min_elements=1):
    """compute() (a list of arrays) is bit-identical in 1 thread and in 3 (three blocks of rows on any machine),
    the pool taking arrays from min_elements on."""
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", min_elements)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_BESIDE_BLAS_THREADS", min_elements)
    one = _bytes(_in_threads(1, compute))
    three = _bytes(_in_threads(3, compute))
    assert one == three


# ---------------------------------------------------------------- the pool itself

def test_blocks_cover_every_row_once_and_run_on_several_threads(restore_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 4)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_BESIDE_BLAS_THREADS", 4)
    threads.set_num_threads(3)
    rows = np.arange(7 * 5, dtype=np.float32).reshape(7, 5)       # 7 rows: blocks of 1
    out = np.zeros_like(rows)
    seen, lock = [], threading.Lock()
    first_three = threading.Barrier(3, timeout=30)                 # passed only by three blocks running at once

    def work(block, out_block, nothing):
        assert nothing is None                                     # a None among the arrays is passed on
        with lock:
            seen.append((int(block[0, 0]) // 5, threading.current_thread().name))
            starting = len(seen) <= 3
        if starting:
            first_three.wait()
        out_block += block * 2

    threads.for_row_blocks(work, rows, out, None)
    assert np.array_equal(out, rows * 2)                           # every row once
    assert sorted(row for row, _ in seen) == list(range(7))
    assert len({name for _, name in seen}) == 3                    # the caller's thread and two of the pool's


def test_small_arrays_and_one_thread_run_once_on_the_whole_arrays(restore_threads):
    """Below the size where blocks start, or in one thread up to one cache-sized block, work runs once."""
    calls = []
    small = np.ones((3, threads.MIN_ELEMENTS_PER_BLOCK // 3), np.float32)   # under the size where blocks start
    threads.set_num_threads(2)
    threads.for_row_blocks(lambda a: calls.append(a.shape), small)
    large = np.ones((4, threads.MAX_ELEMENTS_PER_BLOCK // 4), np.float32)  # blocks for threads, not for the cache
    assert large.size >= 4 * threads.MIN_ELEMENTS_PER_BLOCK
    threads.set_num_threads(1)
    threads.for_row_blocks(lambda a: calls.append(a.shape), large)
    threads.for_row_blocks(lambda a: calls.append(a.shape), np.float32(1) + np.zeros((), np.float32))   # 0-d
    assert calls == [small.shape, large.shape, ()]


def test_large_arrays_run_in_cache_sized_blocks_even_in_one_thread(restore_threads, monkeypatch):
    """In one thread; and beside BLAS's own threads, for cheap passes or under MIN_ELEMENTS_BESIDE_BLAS_THREADS:
    cache-sized blocks, all in this thread."""
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 4)
    monkeypatch.setattr(threads, "MAX_ELEMENTS_PER_BLOCK", 20)
    rows = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)   # 70 elements: 4 blocks of at most 20 (2-3 rows)
    for n, cheap, beside_blas_from in ((1, False, 1), (3, True, 1), (3, False, 71)):
        monkeypatch.setattr(threads, "MIN_ELEMENTS_BESIDE_BLAS_THREADS", beside_blas_from)
        threads.set_num_threads(n)
        seen = []
        threads.for_row_blocks(lambda block: seen.append((block.shape, threading.current_thread().name)), rows,
                               cheap=cheap)
        assert sorted(shape for shape, _ in seen) == [(2, 7), (2, 7), (3, 7), (3, 7)]
        assert {name for _, name in seen} == {threading.current_thread().name}   # all here: no pool thread


def test_with_blas_on_the_pool_the_pool_takes_cheap_passes_and_small_arrays(restore_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 4)
    monkeypatch.setattr(threads, "MAX_ELEMENTS_PER_BLOCK", 20)
    threads.set_num_threads(2)
    threads.set_blas_on_pool(True)
    rows = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)   # under MIN_ELEMENTS_BESIDE_BLAS_THREADS
    names, both = set(), threading.Barrier(2, timeout=30)      # passed only by two blocks at once

    def work(block):
        names.add(threading.current_thread().name)
        if block[0, 0] < 2 * 7 * 2:                            # the first two blocks wait for each other
            both.wait()

    threads.for_row_blocks(work, rows, cheap=True)
    assert len(names) == 2


def test_an_error_in_a_block_is_raised_here_once_every_thread_has_stopped(restore_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 1)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_BESIDE_BLAS_THREADS", 1)
    threads.set_num_threads(2)
    done = []

    def work(block):
        if block[0] == 0:
            done.append("first")
            return
        raise ValueError("a later block failed")

    with pytest.raises(ValueError, match="a later block failed"):
        threads.for_row_blocks(work, np.arange(4.0))
    assert done == ["first"]


def test_workers_see_the_callers_numpy_error_state(restore_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 1)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_BESIDE_BLAS_THREADS", 1)
    threads.set_num_threads(2)
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            threads.for_row_blocks(lambda a: np.divide(1, a, out=a), np.array([1.0, 1.0, 0.0, 0.0]))


def test_number_of_threads_is_checked_and_read_from_the_environment(restore_threads):
    for bad in (0, -1, 1.5, True, "2"):
        assert_raises_naming(lambda: threads.set_num_threads(bad), ValueError, ["set_num_threads", repr(bad)])
    code = "from tinygrad_llm.engine import threads; print(threads.get_num_threads())"
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, threads.NUM_THREADS_ENV: "3"},
                         capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "3"
    for bad in ("0", "two"):
        run = subprocess.run([sys.executable, "-c", code], env={**os.environ, threads.NUM_THREADS_ENV: bad},
                             capture_output=True, text=True)
        assert run.returncode != 0 and f"{threads.NUM_THREADS_ENV}: the number of threads" in run.stderr
    env = {k: v for k, v in os.environ.items() if k != threads.NUM_THREADS_ENV}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(len(os.sched_getaffinity(0)))


# ---------------------------------------------------------------- the ops on it: bit-identical to one thread

DTYPES = [np.float32, np.float64]


def _forward_backward(op, *arrays, seed=0):
    """op's output and the gradients of every input, for a fixed upstream gradient."""
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    out = op(*inputs)
    out.backward(Tensor(np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)))
    return [out.data] + [t.grad.data for t in inputs]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(7, 3, 5), (5, 9), (1, 11, 4), (13,)])
def test_gelu_is_bit_identical_on_threads(restore_threads, monkeypatch, dtype, approximate, shape):
    x = (np.random.default_rng(1).standard_normal(shape) * 4).astype(dtype)
    _same_in_one_and_three_threads(lambda: _forward_backward(lambda t: F.gelu(t, approximate=approximate), x),
                                   monkeypatch)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_of_a_transposed_input_is_bit_identical_on_threads(restore_threads, monkeypatch, dtype):
    x = np.random.default_rng(2).standard_normal((6, 9)).astype(dtype).T      # not C-contiguous: split as it is
    _same_in_one_and_three_threads(lambda: _forward_backward(lambda t: F.gelu(t, approximate="tanh"), x), monkeypatch)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(7, 3, 5), (13, 6)])
def test_layer_norm_in_blocks_is_bit_identical_to_the_whole_arrays(monkeypatch, dtype, affine, shape):
    """Layer norm runs its rows in cache-sized blocks (in this thread): each row's mean from that row alone."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w, b = (rng.standard_normal(shape[-1]).astype(dtype) for _ in range(2))
    compute = (lambda: _forward_backward(lambda x, w, b: F.layer_norm(x, shape[-1:], w, b), x, w, b)) if affine \
        else (lambda: _forward_backward(lambda x: F.layer_norm(x, shape[-1:]), x))
    whole = _bytes(compute())
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 1)
    monkeypatch.setattr(threads, "MAX_ELEMENTS_PER_BLOCK", 2 * shape[-1])          # blocks of two rows
    assert _bytes(compute()) == whole


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_softmax_and_log_softmax_are_bit_identical_on_threads(restore_threads, monkeypatch, dtype, op, dim):
    x = np.random.default_rng(8).standard_normal((7, 5, 9)).astype(dtype)
    _same_in_one_and_three_threads(lambda: _forward_backward(lambda t: op(t, dim=dim), x), monkeypatch)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["mean", "sum, smoothed", "none, (N, C, d)", "probabilities"])
def test_cross_entropy_is_bit_identical_on_threads(restore_threads, monkeypatch, dtype, case):
    r = np.random.default_rng(9)
    if case == "none, (N, C, d)":
        logits, targets = r.standard_normal((5, 6, 3)).astype(dtype), r.integers(0, 6, (5, 3))
        targets[1, 2] = -100                                                   # an ignored row
    else:
        logits, targets = r.standard_normal((13, 6)).astype(dtype), r.integers(0, 6, 13)
        targets[4] = -100
    if case == "probabilities":
        targets = r.dirichlet(np.ones(6), 13).astype(dtype)
    reduction, smoothing = {"mean": ("mean", 0.0), "sum, smoothed": ("sum", 0.2)}.get(case, ("none", 0.0))
    if case == "probabilities":
        reduction = "mean"

    _same_in_one_and_three_threads(lambda: _forward_backward(
        lambda x: F.cross_entropy(x, targets, reduction=reduction, label_smoothing=smoothing), logits), monkeypatch)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [lambda ps: AdamW(ps, lr=1e-2, weight_decay=0.1),
                                  lambda ps: Adam(ps, lr=1e-2, weight_decay=0.1, amsgrad=True),
                                  lambda ps: AdamW(ps, lr=1e-2, maximize=True)], ids=["adamw", "adam_amsgrad", "max"])
def test_adam_steps_are_bit_identical_on_threads(restore_threads, monkeypatch, dtype, make):
    def compute():
        r = np.random.default_rng(6)
        params = [Parameter(r.standard_normal(shape).astype(dtype)) for shape in [(11, 3), (7,), ()]]
        optimizer = make(params)
        for _ in range(3):
            for p in params:
                p.grad = Tensor(r.standard_normal(p.shape).astype(dtype))
            clip_grad_norm_(params, 1.0)
            optimizer.step()
        return [p.data for p in params] + [a for s in optimizer.state.values() for a in s.values()
                                            if isinstance(a, np.ndarray)]

    _same_in_one_and_three_threads(compute, monkeypatch)


def test_a_gpt_step_at_the_real_size_is_bit_identical_on_threads(restore_threads, monkeypatch):
    """At the real block size (the pool taking any array that size allows): the MLP's GELU and AdamW's matrices
    are large enough to split (two blocks at least), the biases and gains are not."""
    from tinygrad_llm.models.gpt import GPT, GPTConfig
    batch, block_size, n_embd = 4, 32, 128

    def compute():
        engine_rng.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=65, block_size=block_size, n_layer=1, n_head=2, n_embd=n_embd, bias=True,
                              dropout=0.0))
        optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        x, y = np.random.default_rng(7).integers(0, 65, (2, batch, block_size))
        _, loss = model(x, y)
        loss.backward()
        grads = [p.grad.data.copy() for p in model.parameters()]
        optimizer.step()
        return [loss.data] + grads + [p.data for p in model.parameters()]

    assert min(batch * block_size * 4 * n_embd, 4 * n_embd * n_embd) >= 2 * threads.MIN_ELEMENTS_PER_BLOCK
    _same_in_one_and_three_threads(compute, monkeypatch, min_elements=threads.MIN_ELEMENTS_PER_BLOCK)


# ---------------------------------------------------------------- BLAS on the pool

TIGHT = {np.float32: 1e-6, np.float64: 1e-14}   # a few units in the last place


def _blas_threads():
    from threadpoolctl import threadpool_info
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_on_the_pool_holds_blas_at_one_thread_and_gives_its_threads_back(restore_threads):
    before = _blas_threads()
    assert before and not threads.blas_on_pool()
    threads.set_blas_on_pool(True)
    threads.set_blas_on_pool(True)                                      # twice: still one hold, given back once
    assert threads.blas_on_pool() and _blas_threads() == [1] * len(before)
    threads.set_blas_on_pool(False)
    assert not threads.blas_on_pool() and _blas_threads() == before


def test_pieces_for_each_thread_run_at_once_only_with_blas_on_the_pool(restore_threads, monkeypatch):
    threads.set_num_threads(3)
    rows = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    seen, lock = [], threading.Lock()
    all_three = threading.Barrier(3, timeout=30)                         # passed only by three pieces at once

    def work(piece, nothing):
        assert nothing is None
        with lock:
            seen.append((piece.shape[0], threading.current_thread().name))
        if piece.shape[0] < len(rows):
            all_three.wait()

    enough = 3 * threads.MIN_MULTIPLY_ADDS_PER_PIECE
    threads.for_each_thread(work, rows, None, multiply_adds=enough)
    assert seen == [(7, threading.current_thread().name)]               # BLAS's own threads: once, here
    threads.set_blas_on_pool(True)
    for multiply_adds, min_rows in ((threads.MIN_MULTIPLY_ADDS_PER_PIECE * 2 - 1, 1), (enough, 4)):
        seen.clear()
        threads.for_each_thread(work, rows, None, multiply_adds=multiply_adds, min_rows=min_rows)
        assert seen == [(7, threading.current_thread().name)]           # too little for two pieces
    seen.clear()
    threads.for_each_thread(work, rows, None, multiply_adds=enough)
    assert sorted(n for n, _ in seen) == [2, 2, 3] and len({name for _, name in seen}) == 3


def test_an_error_in_a_piece_is_raised_here(restore_threads):
    threads.set_num_threads(2)
    threads.set_blas_on_pool(True)

    def work(piece):
        if piece[0] != 0:
            raise ValueError("the second piece failed")

    with pytest.raises(ValueError, match="the second piece failed"):
        threads.for_each_thread(work, np.arange(4.0), multiply_adds=2 * threads.MIN_MULTIPLY_ADDS_PER_PIECE)


def _with_blas_on_and_off_the_pool(compute, monkeypatch, cut_everything=True):
    """compute() (a list of arrays) with BLAS at one thread and no pool, and with BLAS on a pool of 3 threads.
    cut_everything: attention's batches and layer norm's rows cut however small (each batch's matmuls are the same
    BLAS calls in any piece; layer norm's rows are row-local); a matmul's rows are cut only as large as
    MIN_MULTIPLY_ADDS_PER_PIECE allows."""
    from threadpoolctl import threadpool_limits
    if cut_everything:
        monkeypatch.setattr(threads, "MIN_MULTIPLY_ADDS_PER_PIECE", 1)
        monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 1)
    threads.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        one_thread = [np.array(a) for a in compute()]
    threads.set_num_threads(3)
    threads.set_blas_on_pool(True)
    on_pool = [np.array(a) for a in compute()]
    threads.set_blas_on_pool(False)
    return one_thread, on_pool


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k, m", [(1001, 97, 257), (768, 128, 384), (256, 384, 1536), (5, 1000, 4000)])
def test_matmul_cut_over_the_pool_gives_what_one_call_gives(restore_threads, dtype, n, k, m):
    """At the real piece size, on three threads (odd cuts, the model's shapes, five rows in pieces of two), the
    pieces give what one call at BLAS's one thread gives: bit for bit in float32; in float64 OpenBLAS takes a piece
    by other kernels than the whole at some shapes ((1001, 97) x (97, 257) here), a few units in the last place
    apart. (Its own threads may round otherwise too: at (5, 1000) x (1000, 4000) its two threads and its one
    differ.)"""
    from threadpoolctl import threadpool_limits
    r = np.random.default_rng(11)
    a, b = r.standard_normal((n, k)).astype(dtype), r.standard_normal((m, k)).astype(dtype)
    assert n * k * m >= 2 * threads.MIN_MULTIPLY_ADDS_PER_PIECE                 # cut in three pieces, or two
    pairs = [(a, b.T), (np.asfortranarray(a), b.T), (np.ascontiguousarray(a.T).T, np.asfortranarray(b).T)]
    with threadpool_limits(limits=1, user_api="blas"):
        one_call = [x @ y for x, y in pairs]
    threads.set_num_threads(3)
    threads.set_blas_on_pool(True)
    cut = [threads.matmul(x, y) for x, y in pairs]
    if dtype == np.float32:
        assert _bytes(cut) == _bytes(one_call)
    for ours, whole in zip(cut, one_call):
        np.testing.assert_allclose(ours, whole, rtol=TIGHT[dtype], atol=TIGHT[dtype] * np.abs(whole).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_with_blas_on_the_pool(restore_threads, monkeypatch, dtype):
    r = np.random.default_rng(12)
    x, w, b = r.standard_normal((3, 341, 128)).astype(dtype), r.standard_normal((384, 128)).astype(dtype), \
        r.standard_normal(384).astype(dtype)
    assert 3 * 341 * 128 * 384 >= 2 * threads.MIN_MULTIPLY_ADDS_PER_PIECE    # y, dx and dW each cut
    one_thread, on_pool = _with_blas_on_and_off_the_pool(lambda: _forward_backward(F.linear, x, w, b), monkeypatch,
                                                         cut_everything=False)
    for ours, theirs in zip(on_pool, one_thread):                       # the matmuls' pieces: as the test above
        np.testing.assert_allclose(ours, theirs, rtol=TIGHT[dtype], atol=TIGHT[dtype] * np.abs(theirs).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["causal", "float mask per batch", "q broadcast over batch", "dropout", "2-D"])
def test_attention_with_blas_on_the_pool_is_bit_identical_to_one_thread(restore_threads, monkeypatch, dtype, case):
    r = np.random.default_rng(13)
    shapes = {"q broadcast over batch": [(1, 3, 9, 4), (5, 3, 9, 4), (5, 3, 9, 4)], "2-D": [(9, 4)] * 3}
    q, k, v = (r.standard_normal(shape).astype(dtype) for shape in shapes.get(case, [(5, 3, 9, 4)] * 3))
    mask = r.standard_normal((5, 1, 9, 9)).astype(dtype) if case == "float mask per batch" else None

    def attention(q, k, v):
        engine_rng.manual_seed(4)                                          # the same dropout masks both ways
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=case != "float mask per batch",
                                              dropout_p=0.3 if case == "dropout" else 0.0)

    one_thread, on_pool = _with_blas_on_and_off_the_pool(lambda: _forward_backward(attention, q, k, v), monkeypatch)
    assert _bytes(on_pool) == _bytes(one_thread)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_with_blas_on_the_pool_is_bit_identical_to_one_thread(restore_threads, monkeypatch, dtype):
    r = np.random.default_rng(14)
    x, w, b = r.standard_normal((7, 3, 5)).astype(dtype), r.standard_normal(5).astype(dtype), \
        r.standard_normal(5).astype(dtype)
    one_thread, on_pool = _with_blas_on_and_off_the_pool(
        lambda: _forward_backward(lambda x, w, b: F.layer_norm(x, (5,), w, b), x, w, b), monkeypatch)
    assert _bytes(on_pool) == _bytes(one_thread)


def test_a_gpt_step_at_a_real_size_with_blas_on_the_pool(restore_threads, monkeypatch):
    """No size lowered: the block's matmuls and attention are large enough to cut, the lm head's are not. The
    step gives what it gives with BLAS at one thread and with BLAS's own threads, to float32's rounding (on our
    machine bit for bit: benchmarks/RESULTS.md; BLAS's kernels may round a piece otherwise elsewhere)."""
    from tinygrad_llm.models.gpt import GPT, GPTConfig
    batch, block_size, n_embd, vocab = 8, 128, 128, 65

    def compute():
        engine_rng.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=vocab, block_size=block_size, n_layer=1, n_head=2, n_embd=n_embd,
                              bias=True, dropout=0.1))
        optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        x, y = np.random.default_rng(7).integers(0, vocab, (2, batch, block_size))
        _, loss = model(x, y)
        loss.backward()
        grads = [p.grad.data.copy() for p in model.parameters()]
        optimizer.step()
        return [loss.data] + grads + [p.data for p in model.parameters()]

    rows, piece = batch * block_size, threads.MIN_MULTIPLY_ADDS_PER_PIECE
    assert rows * n_embd * n_embd >= 2 * piece > rows * n_embd * vocab          # the block's cut, the lm head's not
    assert batch * block_size * block_size * n_embd >= 2 * piece                # attention's Q Kᵀ cut
    one_thread, on_pool = _with_blas_on_and_off_the_pool(compute, monkeypatch, cut_everything=False)
    own_threads = compute()                                              # BLAS's own threads, as by default
    for ours, theirs, blas_own in zip(on_pool, one_thread, own_threads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours, blas_own, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX's")
def test_a_forked_child_makes_its_own_pool(restore_threads, monkeypatch):
    """A forked child inherits the parent's pool object but none of its threads: it must make its own, not hand
    blocks to threads that do not exist there (it would wait for them for ever)."""
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_BLOCK", 1)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_BESIDE_BLAS_THREADS", 1)
    threads.set_num_threads(2)
    rows = np.zeros((8, 3))
    threads.for_row_blocks(lambda block: block.__iadd__(1), rows)       # the parent's pool, made and used
    pid = os.fork()
    if pid == 0:                                                          # the child: exit 0 once its blocks are done
        threads.for_row_blocks(lambda block: block.__iadd__(1), rows)
        os._exit(0 if (rows == 2).all() else 1)
    for _ in range(200):                                                  # up to 20 s, then the child is stuck
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child waited for the parent's pool threads")
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_rank_gives_its_pool_its_share_of_the_cores(restore_threads, monkeypatch):
    """Under mpiexec each rank limits its BLAS and its pool to its share of the machine's cores, so that two ranks
    on two cores do not each run two threads of passes."""
    import threadpoolctl

    from tinygrad_llm import distributed
    blas_limits = []
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", blas_limits.append)   # this process's BLAS left alone
    world = distributed.World.__new__(distributed.World)
    world.local_size = 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    world._limit_threads()
    assert threads.get_num_threads() == 2 and blas_limits == [2]
