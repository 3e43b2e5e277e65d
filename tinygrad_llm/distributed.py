"""Data-parallel training over MPI: N processes (ranks), started by `mpiexec -n N`, each with a share of the batch.

    from tinygrad_llm import distributed
    world = distributed.init()                     # the ranks mpiexec started; a world of 1 without mpiexec
    world.broadcast_parameters(model.parameters())  # rank 0's weights on every rank
    for x, y in batches:
        lo, hi = world.share(len(x))               # this rank's rows of the global batch
        loss = model(x[lo:hi], y[lo:hi])[1] * (world.size * (hi - lo) / len(x))  # its part of the global mean
        loss.backward()
        world.average_gradients(model.parameters())  # every rank: the gradient of the whole batch
        clip_grad_norm_(model.parameters(), 1.0)     # after the all-reduce: clipping sees the global gradient
        optimizer.step()                             # the same update on every rank

Why the scaled loss: the loss is a mean over the batch's tokens, and a rank's is the mean over its share only. The
whole batch's mean is the sum over ranks of (share / batch) x the rank's mean; scaling each rank's loss by
size x share / batch makes the *average* over ranks that sum, whatever the shares (12 rows over 5 ranks is 3, 3, 2,
2, 2). So N ranks make exactly the update one process makes on the whole batch.

The transport is MPI's, through mpi4py: one Allreduce, in place, over one flat buffer of every gradient; a world
of 1 does nothing at all. Each rank also limits its BLAS threads to its share of the machine's cores
(threadpoolctl), so N ranks on one machine do not oversubscribe it. On GPUs (`world.use_gpu()` first: one GPU per
rank) the same all-reduce runs through NCCL (CuPy's cupyx.distributed, its unique id broadcast over MPI) on the
current stream, and the arrays never leave the GPUs.
"""
import os

import numpy as np

from .engine import backend, threads

MPI_ENVIRONMENT = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")  # set by MPICH's and Open MPI's launchers
_world = None


def init():
    """The World of this process, made once: from MPI when mpiexec started it, else a world of 1."""
    global _world
    if _world is None:
        _world = World(_communicator()) if any(name in os.environ for name in MPI_ENVIRONMENT) else World(None)
    return _world


def current():
    """The World made by init(), or None before it."""
    return _world


def _communicator():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("this process was started by mpiexec, but mpi4py is not installed: "
                           "pip install 'tinygrad_llm[mpi]' (mpi4py and an MPI library)") from e
    return MPI.COMM_WORLD


class World:
    """The ranks of one run: `rank` (0 .. size-1) and `size`; rank 0 is the one that prints and writes."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self.local_rank, self.local_size = self.rank, self.size  # among the ranks on this machine
        self._nccl = None  # the GPUs' communicator, made on first use
        if self.size > 1:
            from mpi4py import MPI
            local = comm.Split_type(MPI.COMM_TYPE_SHARED)
            self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
            local.Free()
            self._limit_threads()

    def share(self, rows):
        """(start, stop): this rank's rows of a batch of `rows`, as even as can be (earlier ranks take one more)."""
        if rows < self.size:
            raise ValueError(f"distributed: a batch of {rows} rows cannot be shared among {self.size} ranks; give "
                             f"a batch of at least {self.size}, or fewer ranks")
        base, extra = divmod(rows, self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)

    def use_gpu(self):
        """Give this rank a GPU of its own (ranks on one machine take GPUs 0, 1, ...), before any array is made."""
        if self.size > 1:
            backend.use_gpu(self.local_rank)

    def broadcast_parameters(self, params):
        """Copy rank 0's parameters to every rank, in place."""
        if self.size == 1:
            return
        for p in params:
            if backend.device_of(p.data) == "cpu":
                self.comm.Bcast(p.data, root=0)
            else:
                self._gpus().broadcast(p.data, root=0)

    def average_gradients(self, params):
        """Replace each gradient by its mean over the ranks, in place: one all-reduce over one flat buffer.
        Every rank must hold gradients for the same parameters (the same model, after the same backward)."""
        if self.size == 1:
            return
        with_grad = [p for p in params if p.grad is not None]
        if not with_grad:
            return
        flat = backend.xp(with_grad[0].grad.data).concatenate([p.grad.data.ravel() for p in with_grad])  # (total,)
        if backend.device_of(flat) == "cpu":
            self.comm.Allreduce(_in_place(), flat)
        else:
            self._gpus().all_reduce(flat, flat, "sum")
        flat /= self.size
        offset = 0
        for p in with_grad:
            p.grad.data[...] = flat[offset:offset + p.grad.data.size].reshape(p.grad.data.shape)
            offset += p.grad.data.size

    def sum(self, values):
        """The sum over ranks of a float64 vector (losses, counts, flags), as a new array."""
        values = np.array(values, dtype=np.float64)  # (n,): a copy, reduced in place
        if self.size > 1:
            self.comm.Allreduce(_in_place(), values)
        return values

    def gather(self, value):
        """Every rank's `value` (a picklable object), as a list on rank 0 ([value] in a world of 1); None elsewhere."""
        return [value] if self.size == 1 else self.comm.gather(value, root=0)

    def abort(self, code):
        """End every rank at once (a rank that failed alone would leave the others waiting in an all-reduce)."""
        if self.size > 1:
            self.comm.Abort(code)

    def _gpus(self):
        if self._nccl is None:
            self._nccl = backend.nccl_communicator(self.size, self.rank)
        return self._nccl

    def _limit_threads(self):
        """Give each rank's BLAS and its pool of threads (engine/threads.py) its share of the cores of its machine
        (ranks on one machine split them evenly)."""
        from threadpoolctl import threadpool_limits
        share = max(1, len(os.sched_getaffinity(0)) // self.local_size)
        threadpool_limits(share)
        threads.set_num_threads(share)


def _in_place():
    from mpi4py import MPI
    return MPI.IN_PLACE
