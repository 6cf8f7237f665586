"""Process-wide tuning for inferq's long-running server processes."""

from __future__ import annotations

import gc

GC_THRESHOLDS = (20_000, 50, 100)
"""Young-generation collections every 20k allocations instead of 700: a request or a task
allocates a few thousand short-lived objects, so the default collects several times per
request, each time walking a heap of framework modules. Measured in bench/overhead.py."""


def tune_gc() -> None:
    """Freezes what is loaded so far (never collected again) and makes collections rarer."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
