"""CPU-heavy request work run off the gevent loop, so one large request never freezes the others.

Every request of an API process shares one gevent loop; a greenlet that computes
for seconds (counting the tokens of 2,048 long inputs) holds up every wait and
stream of that process for as long. Such work runs in gevent's pool of real
threads instead: the interpreter switches threads every few milliseconds, so
the loop goes on serving while it computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Result = TypeVar("Result")

SMALL = 20_000
"""Characters of input below which work runs in place: handing it to a thread costs more."""


def in_thread(size: int, work: Callable[[], Result]) -> Result:
    """Runs ``work`` in gevent's thread pool when it is large (``size`` characters) and the process
    runs on gevent; in place otherwise (small work, or tests calling the app directly)."""
    if size < SMALL:
        return work()
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return work()
    if not monkey.is_module_patched("threading"):
        return work()
    result: Result = get_hub().threadpool.apply(work)
    return result
