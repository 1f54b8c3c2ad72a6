"""Summing CuPy gradients across GPUs with NCCL (through cupy.cuda.nccl), set up over MPI.

Rank 0 makes NCCL's unique id and MPI broadcasts it; every rank then joins one NCCL
communicator of world.size GPUs (one per rank: World.use_local_gpu picks local_rank's). An
allreduce runs on the current CuPy stream, in place; the host then waits for that stream with
the same time limit as every other collective (World.timeout), and on a timeout the NCCL
communicator is aborted so that the error can reach the user instead of a hang.

This path needs a GPU per rank and CuPy built with NCCL (`pip install "aecore[cuda]"`); the
CPU path (MPI on NumPy buffers) needs neither.
"""

from __future__ import annotations

import time

import numpy as np

from .world import DistributedError, DistributedTimeout

__all__ = ["NcclCommunicator"]


def _nccl():
    try:
        from cupy.cuda import nccl
    except ImportError:
        nccl = None
    if nccl is None or not getattr(nccl, "available", True):
        raise DistributedError("gradients on the GPU are summed with NCCL, and this CuPy has "
                               "no NCCL (cupy.cuda.nccl does not import): install a CuPy wheel "
                               "built with NCCL, e.g. pip install cupy-cuda13x")
    return nccl


class NcclCommunicator:
    """One NCCL communicator over the ranks of `world` (a World), for in-place sums."""

    def __init__(self, world):
        nccl = _nccl()
        self.nccl, self.world = nccl, world
        unique_id = world.broadcast_object(nccl.get_unique_id() if world.is_root else None,
                                           "the broadcast of NCCL's id")
        self.comm = nccl.NcclCommunicator(world.size, unique_id, world.rank)
        self.dtypes = {np.dtype(np.float16): nccl.NCCL_FLOAT16,
                       np.dtype(np.float32): nccl.NCCL_FLOAT32,
                       np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def allreduce_sum(self, array, what="an allreduce"):
        """`array` (a contiguous CuPy array) summed over the ranks, in place."""
        import cupy
        dtype = np.dtype(array.dtype)
        if dtype not in self.dtypes:
            raise DistributedError(f"{what}: NCCL sums float16, float32 or float64 here, got "
                                   f"{dtype}")
        stream = cupy.cuda.get_current_stream()
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, self.dtypes[dtype],
                            self.nccl.NCCL_SUM, stream.ptr)
        deadline = time.monotonic() + self.world.timeout
        while not stream.done:
            if time.monotonic() > deadline:
                self.comm.abort()
                raise DistributedTimeout(
                    f"rank {self.world.rank} of {self.world.size}: NCCL did not finish {what} in "
                    f"{self.world.timeout:g} s; a rank died or hangs (AECORE_DIST_TIMEOUT sets "
                    "this limit)")
            time.sleep(0.0001)
        return array
