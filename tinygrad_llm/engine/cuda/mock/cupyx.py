"""A stand-in for the parts of cupyx the engine uses, on the mock CUDA device (see cupy.py beside it)."""
import math
import types

import numpy as np

from .cupy import _unwrap, _wrap


def scatter_add(a, slices, value):
    """a[slices] += value, where slices may pick an element twice (each pick adds), in place on the device."""
    np.add.at(_unwrap(a, "cupyx.scatter_add"), _unwrap(slices, "cupyx.scatter_add"),
              _unwrap(value, "cupyx.scatter_add"))


def _erf(x):
    x = _unwrap(x, "cupyx.scipy.special.erf")
    try:
        from scipy.special import erf
    except ImportError:
        return _wrap(np.vectorize(math.erf, otypes=[x.dtype])(x))
    return _wrap(erf(x).astype(x.dtype, copy=False))


scipy = types.SimpleNamespace(special=types.SimpleNamespace(erf=_erf))


class _NCCLBackend:
    """cupyx.distributed.NCCLBackend(n_devices, rank, use_mpi=True) for ranks that share the mock device: the
    reductions NCCL would make between GPUs, made by MPI between the processes, on the arrays inside."""

    def __init__(self, n_devices, rank, host="127.0.0.1", port=13333, use_mpi=False):
        from mpi4py import MPI
        self.comm = MPI.COMM_WORLD
        if not use_mpi or (n_devices, rank) != (self.comm.Get_size(), self.comm.Get_rank()):
            raise ValueError("the mock NCCLBackend runs under mpiexec only, with use_mpi=True and MPI's own "
                             f"size and rank, got n_devices {n_devices}, rank {rank}, use_mpi {use_mpi}")

    def all_reduce(self, in_array, out_array, op="sum", stream=None):
        from mpi4py import MPI
        if op != "sum":
            raise ValueError(f"the mock NCCLBackend sums only, got op {op!r}")
        sent = _unwrap(in_array, "NCCLBackend.all_reduce").copy()
        self.comm.Allreduce(sent, _unwrap(out_array, "NCCLBackend.all_reduce"), op=MPI.SUM)

    def broadcast(self, in_out_array, root=0, stream=None):
        self.comm.Bcast(_unwrap(in_out_array, "NCCLBackend.broadcast"), root=root)


distributed = types.SimpleNamespace(NCCLBackend=_NCCLBackend)
