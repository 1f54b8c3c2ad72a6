"""Data-parallel training over MPI (mpi4py), and over GPUs with NCCL (through CuPy).

    mpiexec -n 4 aecore train --model cae --batch-size 64    # 4 ranks x 64 = global batch 256

Every rank holds the whole model and the whole data set. Each step, the global batch (drawn
exactly as one process with batch 256 would draw it) is dealt across the ranks; each rank
computes the loss and gradients of its part; the gradients, weighted by each part's share, are
summed across the ranks; and every rank takes the same optimizer step. So p ranks of batch b
train the same weights as one process of batch p x b (to rounding), and a checkpoint resumes
with any rank count that divides the global batch.

The pieces, a module each:
    launch.py     was this process started by mpiexec? each rank's share of the cores
    world.py      World: the ranks and their collectives (bucketed gradient allreduce,
                  broadcasts, the check that every rank has the same settings, time limits);
                  SingleProcess: the same interface for one process, doing nothing
    nccl.py       the allreduce of CuPy gradients through NCCL
    sampler.py    ShardedLoader, shard_bounds: each rank's part of each global batch
    optimizer.py  MultiNodeOptimizer, for a training loop of your own

In a script: `world = aecore.distributed.init()` once, at the start (then train() and the
Trainer use it); mpi4py is imported only here, and only when the script runs under a launcher
or asks for it.
"""

from __future__ import annotations

import sys

from . import launch
from .launch import launched_local_size, launched_rank, launched_size

__all__ = ["init", "current", "World", "SingleProcess", "ShardedLoader",
           "shard_bounds", "MultiNodeOptimizer", "create_multi_node_optimizer",
           "DistributedError", "DistributedTimeout", "RanksDisagree", "MissingMPIError",
           "launched_size", "launched_rank", "launched_local_size"]

_world = None      # the World of init(), or None


class MissingMPIError(ImportError):
    """Started by an MPI launcher (or asked for MPI) without mpi4py installed."""


def init(timeout=None, require_mpi=False):
    """The world of this process: a World over MPI_COMM_WORLD when mpi4py is installed and the
    job has several ranks (or require_mpi), else SingleProcess. Called once; later calls return
    the same world.

    Started by a launcher with several ranks but without mpi4py: MissingMPIError, in one line.
    With several ranks, an uncaught exception on any rank aborts the whole job (MPI_Abort), so
    that the others do not wait for it until their time limit.
    """
    global _world
    if _world is not None:
        return _world
    from .world import SingleProcess, World
    if launched_size() < 2 and not require_mpi:     # run plainly, or as `mpiexec -n 1`
        _world = SingleProcess()
        return _world
    try:
        from mpi4py import MPI
    except ImportError:
        raise MissingMPIError(
            f"started by an MPI launcher with {launched_size()} processes, but mpi4py is not "
            "installed: pip install 'aecore[mpi]' (mpi4py and mpich), then run mpiexec again"
            if launched_size() > 1 else "aecore.distributed needs mpi4py: pip install "
            "'aecore[mpi]'") from None
    comm = MPI.COMM_WORLD
    _world = World(comm, timeout=timeout) if comm.Get_size() > 1 or require_mpi else \
        SingleProcess()
    if _world.size > 1:
        _set_threads()
        _abort_on_uncaught_exceptions(_world)
    return _world


def current():
    """The world init() made, or SingleProcess() when init() was not called."""
    if _world is not None:
        return _world
    from .world import SingleProcess
    return SingleProcess()


def _set_threads():
    """Numba's thread count to this rank's share of the cores, when the environment (set by
    aecore's import under a launcher, or by the user) says one; BLAS took its count at import."""
    import os
    value = os.environ.get("NUMBA_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if not (value and value.isdigit()):
        return
    try:
        import numba
        from ..kernels.compile import start_threads
        start_threads()                     # with aecore's OpenMP spin, before set_num_threads
        numba.set_num_threads(min(int(value), numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):
        pass


def _abort_on_uncaught_exceptions(world):
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        world.abort(1)

    sys.excepthook = hook


_LAZY = {"World": "world", "SingleProcess": "world", "DistributedError": "world",
         "DistributedTimeout": "world", "RanksDisagree": "world", "ShardedLoader": "sampler",
         "shard_bounds": "sampler", "MultiNodeOptimizer": "optimizer",
         "create_multi_node_optimizer": "optimizer"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
