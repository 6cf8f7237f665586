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


def share_cores() -> None:
    """Makes idle OpenMP threads of models loaded later in this process (and its children) sleep
    soon, unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` says otherwise."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN_COUNT)
