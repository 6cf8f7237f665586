"""CPU-heavy request work run off the gevent loop, so one large request never freezes the others.

Every request of an API process shares one gevent loop; a greenlet that computes
for seconds (counting the tokens of 2,048 long inputs) holds up every wait and
stream of that process for as long. Such work runs in gevent's pool of real
threads instead: the interpreter switches threads every few milliseconds, so
the loop goes on serving while it computes. Work that lets go of the GIL (an
edit's image decodes) runs several at once, on more than one core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")

SMALL = 20_000
"""Characters of input below which work runs in place: handing it to a thread costs more."""


def in_thread(size: int, work: Callable[[], Result]) -> Result:
    """Runs ``work`` in gevent's thread pool when it is large (``size`` characters) and the process
    runs on gevent; in place otherwise (small work, or tests calling the app directly)."""
    if size < SMALL or not _on_gevent():
        return work()
    from gevent import get_hub

    result: Result = get_hub().threadpool.apply(work)
    return result


def all_in_threads(works: Sequence[Callable[[], Result]], at_once: int) -> list[Result | Exception]:
    """Runs ``works`` in real threads, at most ``at_once`` at a time, and answers each one's result,
    or the exception it raised, in their order, once they have ended. A wave of ``at_once`` in which
    one raised is the last: the works after it are neither run nor answered.

    Work that lets go of the GIL (Pillow's decoders, hashing, file writes) runs on
    as many cores as there are threads. On gevent the threads are gevent's pool's,
    so the loop goes on serving meanwhile; elsewhere (tests calling the app directly)
    a pool made for the call, or none for work that runs alone.
    """
    outcomes: list[Result | Exception] = []
    gevent = _on_gevent()
    for start in range(0, len(works), at_once):
        wave = [_caught(work) for work in works[start : start + at_once]]
        if gevent:
            from gevent import get_hub

            pool = get_hub().threadpool
            outcomes += [running.get() for running in [pool.spawn(work) for work in wave]]
        elif len(wave) == 1:
            outcomes.append(wave[0]())
        else:
            with ThreadPoolExecutor(len(wave)) as executor:
                outcomes += executor.map(lambda work: work(), wave)
        if any(isinstance(outcome, Exception) for outcome in outcomes):
            break
    return outcomes


def _caught(work: Callable[[], Result]) -> Callable[[], Result | Exception]:
    def run() -> Result | Exception:
        try:
            return work()
        except Exception as e:
            return e

    return run


def _on_gevent() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return bool(monkey.is_module_patched("threading"))
