"""The next batch of a batching version, claimed by a thread while the model runs the current one.

Gathering a batch after the model's pass means waiting on Redis (which, on a
host where the worker has a core of its own, runs on another core) with the
model's core idle: the lane's hints to take, the claims to make. Those waits
overlap the pass instead: a :class:`Gathering` thread claims hinted predictions
as they are queued, until the batch is full or the pass ends, and the runner
runs what it claimed as soon as the pass is done, without waiting for more.
torch releases the GIL while it computes, so the thread's round trips cost
the model little but their own few microseconds of Python.

The claimed predictions are watched (their leases renewed, their cancels
heard) from their claim on, as a gathered batch's are. A run that ends early
(an error) lets go of them without running them: their leases lapse and
recovery queues them again, as after a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Generic, TypeVar

from common.records import ModelRef
from common.store.lanes import Hint, Lanes

logger = logging.getLogger(__name__)

Member = TypeVar("Member")

Claim = Callable[[ExitStack, list[Hint]], list[Member]]
"""Claims the hinted predictions still free; enters their watches on the stack."""


class Gathering(Generic[Member]):
    """Claims up to ``size`` hinted predictions of ``model`` in a thread, from ``look_after`` seconds
    from now (or :meth:`finish`, if sooner) until it has some.

    It looks at the lane once, late in the pass (the runner expects the pass to
    take a little longer than ``look_after``), so that one round trip to take
    the hints and one to claim them gather what was queued during the pass; the
    requests of the batch before, answered as this pass began, are queued by
    then, and what is queued later waits for the batch after. Only if that look
    finds nobody does it go on taking the lane's hints as they come, until the
    pass ends.
    """

    def __init__(
        self, lanes: Lanes, model: ModelRef, size: int, claim: Claim[Member], look_after: float = 0.0
    ) -> None:
        self._lanes = lanes
        self._model = model
        self._size = size
        self._claim = claim
        self._look_after = look_after
        self._stack = ExitStack()
        self._members: list[Member] = []
        self._error: BaseException | None = None
        self._finishing = threading.Event()
        self._wake = threading.Event()
        """Set on news of the lane, and by :meth:`finish`."""
        self._thread = threading.Thread(target=self._run, name="inferq-gathering", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._finishing.wait(self._look_after)
            with self._lanes.news(self._model, self._wake):
                looked = False
                while True:
                    hints = self._lanes.pop(self._model, self._size - len(self._members))
                    if hints:
                        self._members += self._claim(self._stack, hints)
                    full = len(self._members) >= self._size
                    if full or (self._members and not looked) or (self._finishing.is_set() and not hints):
                        return
                    looked = True
                    if not hints:
                        self._wake.wait()
                        self._wake.clear()
        except BaseException as e:  # raised again in the runner's thread, by finish()
            self._error = e

    def finish(self) -> tuple[list[Member], ExitStack]:
        """The predictions claimed so far (looking once more if none were) and the stack of their
        watches, which the caller now owns.

        Raises:
            Exception: Whatever claiming raised; the predictions claimed are then let go.
        """
        self._finishing.set()
        self._wake.set()
        self._thread.join()
        if self._error is not None:
            self._stack.close()
            raise self._error
        return self._members, self._stack

    def abandon(self) -> None:
        """Stops, and lets go of what was claimed without running it (their leases lapse)."""
        try:
            members, stack = self.finish()
        except Exception:
            logger.exception("gathering the next batch of %s failed", self._model.key)
            return
        stack.close()
        if members:
            logger.warning(
                "%d claimed predictions of %s let go without running; recovery queues them again",
                len(members),
                self._model.key,
            )
