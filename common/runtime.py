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


OPENMP_WAIT_POLICY = "PASSIVE"
"""How idle OpenMP threads (torch's on CPU) wait: asleep, not spinning. Spinning threads hold
cores that the API, Redis and the rest of the batch's work share on a small machine; with
MiniLM served to 32 clients they cost the worker about a sixth more CPU per sentence, for
no gain in speed (bench/embeddings.py). ``OMP_WAIT_POLICY`` in the environment wins."""


def share_cores() -> None:
    """Makes the OpenMP runtime of models loaded later in this process (and its children) sleep when idle."""
    os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_WAIT_POLICY)
