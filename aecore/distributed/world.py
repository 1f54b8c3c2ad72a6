"""The ranks of a data-parallel run, and everything they say to one another.

    world = aecore.distributed.init()      # COMM_WORLD through mpi4py; one process: SingleProcess
    world.rank, world.size, world.local_rank, world.local_size
    world.allreduce_gradients(params, weight)   # p.grad <- sum over ranks of weight * p.grad
    world.broadcast_parameters(model)           # every rank takes rank 0's weights and buffers

Two kinds of world share one interface, so the Trainer has no branches for it: `SingleProcess`
(size 1: every collective is the identity, nothing is imported) and `World` (mpi4py).

Gradients travel in buckets: the gradients, in parameter order, are packed into flat buffers
of at most `bucket_bytes` (4 MiB) each, every gradient already multiplied by the rank's weight,
and each buffer is summed across the ranks by one in-place allreduce, then unpacked. The
weight is this rank's share of the global batch (n_rank / n_global) for a loss that is a batch
mean, so the sum is exactly the gradient of the whole batch's mean. NumPy buffers go through
MPI; CuPy buffers through NCCL (aecore.distributed.nccl), whose id travels over MPI. The sum's
order is fixed by the rank count and the sizes, so a run repeats bit for bit, and every rank
receives the same bits (the MPI standard asks that of a commutative reduction), so the ranks'
weights never drift apart.

Nothing waits forever. Every collective is started non-blocking and then polled; when the other
ranks have not answered within `timeout` seconds (AECORE_DIST_TIMEOUT, default 300: long enough
for a first run's compile on a slow rank; aecore.settings), DistributedTimeout names the rank,
the collective and the likely cause. `init()` makes an uncaught exception on any rank abort
the whole job (a rank that raises would otherwise wait in MPI_Finalize while the others wait
for it); mpiexec itself ends the job when a rank is killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import time

import numpy as np

from .. import settings
from ..backend import get_array_module, is_cupy_array

__all__ = ["SingleProcess", "World", "DistributedError", "DistributedTimeout", "RanksDisagree",
           "BUCKET_BYTES"]

BUCKET_BYTES = 4 << 20
ABORT_PAUSE = 1.0      # seconds between a rank's last words and MPI_Abort


class DistributedError(RuntimeError):
    """A data-parallel run cannot go on (a rank is gone, MPI is missing, ...)."""


class DistributedTimeout(DistributedError):
    """The other ranks did not answer a collective in time: one died or hangs."""


class RanksDisagree(DistributedError):
    """The ranks were started with different settings or data; raised on every rank at once."""

    collective = True   # every rank raises it: rank 0 reports it, no rank needs to abort


def _differences(descriptions, limit=4):
    """'batch_size (rank 0: 32, rank 1: 64); data (...)': the top-level keys the ranks'
    descriptions disagree on, each with every rank's value."""
    keys = sorted(set().union(*descriptions), key=str)
    parts = []
    for key in keys:
        values = [d.get(key) for d in descriptions]
        if any(v != values[0] for v in values):
            shown = ", ".join(f"rank {r}: {json.dumps(v, default=str)[:60]}"
                              for r, v in enumerate(values))
            parts.append(f"{key} ({shown})")
    return "; ".join(parts[:limit]) + ("; ..." if len(parts) > limit else "")


class SingleProcess:
    """The world of a run in one process: rank 0 of 1, and every collective does nothing."""

    rank, size, local_rank, local_size = 0, 1, 0, 1
    is_root = True
    seconds_in_allreduce = 0.0      # time inside allreduce_gradients (bench/distributed.py)

    def __repr__(self):
        return "SingleProcess()"

    # the collectives, as the identity
    def allreduce_sum(self, array, what="an allreduce"):
        return array

    def allreduce_gradients(self, params, weight=1.0, what="the gradient allreduce"):
        """p.grad *= weight (the sum over one rank)."""
        if weight != 1.0:
            for p in params:
                if p.grad is not None:
                    p.grad = p.grad * weight
        return None

    def broadcast_object(self, obj=None, what="a broadcast"):
        return obj

    def broadcast_arrays(self, arrays, what="a broadcast"):
        return None

    def broadcast_parameters(self, module):
        return None

    def broadcast_buffers(self, module):
        return None

    def check_same(self, description, what="the settings"):
        return None

    def on_root(self, function, share=False):
        """function() here (on the root), its result returned."""
        return function()

    def abort(self, code=1):
        sys.exit(code)


class World(SingleProcess):
    """The ranks of MPI_COMM_WORLD (or of `comm`), talking through mpi4py and, for CuPy
    gradients, NCCL."""

    def __init__(self, comm, timeout=None, bucket_bytes=BUCKET_BYTES):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.is_root = self.rank == 0
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.timeout = settings.dist_timeout() if timeout is None else float(timeout)
        self.bucket_bytes = int(bucket_bytes)
        self._nccl = None                 # made on the first CuPy allreduce

    def __repr__(self):
        return (f"World(rank={self.rank}, size={self.size}, local_rank={self.local_rank}, "
                f"local_size={self.local_size})")

    # ------------------------------------------------------------------ waiting, with a limit
    def wait(self, request, what):
        """Poll `request` until it completes; DistributedTimeout after self.timeout seconds."""
        deadline = time.monotonic() + self.timeout
        polls = 0
        while not request.Test():
            polls += 1
            if polls > 2000:           # past about a millisecond: let the other ranks' work run
                time.sleep(0.0002)
                if time.monotonic() > deadline:
                    raise DistributedTimeout(
                        f"rank {self.rank} of {self.size}: no answer from the other ranks for "
                        f"{self.timeout:g} s in {what}; a rank died or hangs (AECORE_DIST_TIMEOUT "
                        "sets this limit)")

    # ------------------------------------------------------------------ arrays
    def allreduce_sum(self, array, what="an allreduce"):
        """`array` summed over the ranks, in place (a contiguous NumPy or CuPy array)."""
        if is_cupy_array(array):
            self._nccl_communicator().allreduce_sum(array, what)
            return array
        self.wait(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM), what)
        return array

    def _broadcast_array(self, array, what):
        """`array` (host, contiguous) overwritten with rank 0's, in place."""
        self.wait(self.comm.Ibcast(array, root=0), what)
        return array

    def _buckets(self, arrays):
        """Index lists of `arrays` (in order), each run of one dtype and array module, at most
        bucket_bytes per list (a larger array alone)."""
        buckets, current, size, key = [], [], 0, None
        for index, (dtype, module, nbytes) in enumerate(arrays):
            if current and ((dtype, module) != key or size + nbytes > self.bucket_bytes):
                buckets.append(current)
                current, size = [], 0
            current.append(index)
            size += nbytes
            key = (dtype, module)
        if current:
            buckets.append(current)
        return buckets

    def allreduce_gradients(self, params, weight=1.0, what="the gradient allreduce"):
        """For every parameter: p.grad <- sum over the ranks of weight * p.grad, bucketed (see
        the module docstring). A parameter without a gradient on this rank counts as zeros."""
        start = time.perf_counter()
        params = list(params)
        xps = [p.xp for p in params]
        layout = [(np.dtype(p.dtype), xp.__name__, p.data.nbytes) for p, xp in zip(params, xps)]
        for bucket in self._buckets(layout):
            xp = xps[bucket[0]]
            flat = xp.empty(sum(params[i].data.size for i in bucket), dtype=params[bucket[0]].dtype)
            offset = 0
            for i in bucket:                                  # pack: weight * grad
                n = params[i].data.size
                part = flat[offset:offset + n]
                grad = params[i].grad
                if grad is None:
                    part[...] = 0
                else:
                    xp.multiply(grad.reshape(-1), weight, out=part)
                offset += n
            self.allreduce_sum(flat, what)
            offset = 0
            for i in bucket:                                  # unpack: views of the new buffer
                n = params[i].data.size
                params[i].grad = flat[offset:offset + n].reshape(params[i].shape)
                offset += n
        self.seconds_in_allreduce += time.perf_counter() - start

    def broadcast_arrays(self, arrays, what):
        """Each array (NumPy or CuPy) overwritten with rank 0's, in place (through the host)."""
        for array in arrays:
            if is_cupy_array(array):
                host = np.ascontiguousarray(array.get())
                self._broadcast_array(host, what)
                array[...] = get_array_module(array).asarray(host)
            elif array.flags.c_contiguous:
                self._broadcast_array(array, what)
            else:
                host = np.ascontiguousarray(array)
                self._broadcast_array(host, what)
                array[...] = host

    def broadcast_parameters(self, module):
        """Every rank takes rank 0's parameters and buffers (the start of a run)."""
        self.broadcast_arrays([p.data for p in module.parameters()],
                                    "the broadcast of the parameters")
        self.broadcast_buffers(module)

    def broadcast_buffers(self, module):
        """Every rank takes rank 0's buffers (BatchNorm's running statistics), as PyTorch's
        DistributedDataParallel does before each forward."""
        buffers = [b.data for _, b in module.named_buffers()]     # Tensors
        if buffers:
            self.broadcast_arrays(buffers, "the broadcast of the buffers")

    # ------------------------------------------------------------------ Python objects
    def broadcast_object(self, obj=None, what="a broadcast"):
        """Rank 0's `obj` (pickled) on every rank."""
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL) if self.is_root else b""
        length = np.array([len(payload)], dtype=np.int64)
        self._broadcast_array(length, what)
        buffer = np.frombuffer(payload, dtype=np.uint8).copy() if self.is_root else \
            np.empty(int(length[0]), dtype=np.uint8)
        self._broadcast_array(buffer, what)
        return obj if self.is_root else pickle.loads(buffer.tobytes())

    def check_same(self, description, what="the settings"):
        """Raise RanksDisagree on every rank when the ranks' `description` (a JSON-safe dict)
        differ, naming what differs and each rank's value."""
        text = json.dumps(description, sort_keys=True, default=str).encode()
        digest = np.frombuffer(hashlib.sha256(text).digest(), dtype=np.uint8).copy()
        everyone = np.empty((self.size, digest.size), dtype=np.uint8)
        self.wait(self.comm.Iallgather(digest, everyone), f"the check of {what}")
        if (everyone == everyone[0]).all():
            return
        descriptions = self.comm.allgather(description)  # every rank answered just now
        raise RanksDisagree(f"the {self.size} ranks were started with different {what}: "
                            f"{_differences(descriptions)}; start every rank with the same "
                            "command and data")

    def on_root(self, function, share=False):
        """function() on rank 0 only; what it raises is raised on every rank (marked
        collective: rank 0 reports it). share=True: its result is returned on every rank."""
        outcome, raised, result = None, None, None
        if self.is_root:
            try:
                result = function()
                outcome = ("ok", result if share else None)
            except Exception as error:        # sent to the other ranks, then raised here too
                raised = error
                outcome = ("error", _portable(error))
        kind, value = self.broadcast_object(outcome, "a step only rank 0 does")
        if kind == "error":
            error = raised if self.is_root else value
            error.collective = True
            raise error
        return result if self.is_root else value

    def abort(self, code=1):
        """End every rank of the job now (MPI_Abort), after a pause that lets the launcher
        forward what this rank printed (mpiexec drops output still in flight at an abort)."""
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(ABORT_PAUSE)
        self.comm.Abort(int(code))

    # ------------------------------------------------------------------ GPUs
    def _nccl_communicator(self):
        if self._nccl is None:
            from .nccl import NcclCommunicator
            self._nccl = NcclCommunicator(self)
        return self._nccl

    def use_local_gpu(self):
        """Make GPU local_rank % count this rank's current device (one GPU per rank)."""
        from ..backend import cupy_module
        cupy = cupy_module()
        count = cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(self.local_rank % count).use()
        return self.local_rank % count


def _portable(error):
    """`error` if it survives pickling, else a DistributedError carrying its message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return DistributedError(f"{type(error).__name__}: {error}")
