"""Process-wide tuning for inferq's long-running server processes."""

from __future__ import annotations

import gc
import os

GC_THRESHOLDS = (20_000, 50, 100)
"""Young-generation collections every 20k allocations instead of 700: a request or a task
allocates a few thousand short-lived objects, so the default collects several times per
request, each time walking a heap of framework modules. Measured in bench/overhead.py."""


def tune_gc() -> None:
    """Freezes what is loaded so far (never collected again) and makes collections rarer."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


OPENMP_SPIN_COUNT = "10000"
"""How long an idle OpenMP thread (torch's, on CPU, with GNU OpenMP) spins before it sleeps:
``GOMP_SPINCOUNT`` spins, not the default 300,000 (milliseconds of a core after every parallel
step). Spinning threads hold cores that the API, Redis and the worker's own Python share on a
small machine. MiniLM to 32 clients on 2 cores (bench/embeddings.py, four alternations): about
160 sentences/s at 8.0-8.5 ms of worker CPU each, against 135-168 at 8.6-10.5 ms with the
default; a lone request 22-26 ms, no slower. ``OMP_WAIT_POLICY=PASSIVE`` (no spinning at all)
saved as much CPU but added 3-4 ms to a lone request, waking threads at every layer."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which container cpusets narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_process(processes: int, cores: int) -> int:
    """Intra-op threads for each of ``processes`` processes sharing ``cores``: a fair share, at least one."""
    return max(1, cores // max(1, processes))


def share_cores(processes: int = 1) -> None:
    """Shares the cores among the ``processes`` pool processes that will load models, for models
    loaded later in this process and its children.

    Idle OpenMP threads sleep soon, unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` says
    otherwise. With more than one process, each gets ``OMP_NUM_THREADS`` of its share of the
    cores unless ``OMP_NUM_THREADS`` is set: torch would give every process a thread per core,
    and ``--concurrency 2`` on 2 cores would run 4 threads on 2 cores, each pass waiting on
    threads that are not running (bench/embeddings.py: 153 sentences/s against 212 with one
    process; 248 with two processes of one thread each). One process keeps torch's default.
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN_COUNT)
    if processes > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_process(processes, usable_cores())))
