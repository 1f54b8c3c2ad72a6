"""Was this process started by an MPI launcher, and how many threads should each rank use?

Read from the environment only (no mpi4py, no NumPy), so that `import aecore` can settle the
thread counts before NumPy's BLAS and Numba's workers start: `mpiexec -n 2` on a 2-core machine
would otherwise start two ranks of two threads each, four threads fighting for two cores.

The launchers' variables: MPICH's and Intel MPI's Hydra (PMI_SIZE, PMI_RANK, MPI_LOCALNRANKS),
Open MPI (OMPI_COMM_WORLD_SIZE, ..._RANK, ..._LOCAL_SIZE), MVAPICH (MV2_COMM_WORLD_SIZE, ...).
"""

import os

__all__ = ["launched_size", "launched_rank", "launched_local_size", "set_rank_threads",
           "THREAD_VARIABLES"]

_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_LOCAL_SIZE = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")

# The thread pools a rank may start: Numba's workers (OpenMP), OpenBLAS / MKL inside NumPy.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")


def _first_int(names, default):
    for name in names:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return default


def launched_size():
    """How many processes the launcher started (1 when none did)."""
    return _first_int(_SIZE, 1)


def launched_rank():
    """This process's rank as the launcher numbered it (0 when none did)."""
    return _first_int(_RANK, 0)


def launched_local_size():
    """How many of the launched processes share this machine (all of them when unsaid)."""
    return _first_int(_LOCAL_SIZE, launched_size())


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def set_rank_threads():
    """Under a launcher with several ranks on this machine, give each rank its share of the
    cores (cores // ranks here, at least 1) unless the user set any thread count. Returns the
    count set, or None when nothing was changed."""
    local = launched_local_size()
    if launched_size() < 2 or local < 2 or any(os.environ.get(v) for v in THREAD_VARIABLES):
        return None
    threads = max(1, cores() // local)
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    return threads
