"""The supervisor of the predictions a worker process runs (one, or one batch).

One thread per worker process keeps their claims alive while the adapter runs,
relays cancellation within one Redis round trip of the request, enforces the
maximum run time, and — when an adapter ignores a stop past the grace period —
records the outcome and kills its own process. Prefork runs one prediction (or
one batch of a version) per process, so the kill harms no other prediction;
Celery replaces the process and the requeued message finds the prediction
already ended.

This thread needs its process's GIL; a model that holds it in a C call starves
it. The same class therefore runs in a warden process beside each pool process
(``workers.warden``), told over a pipe which claims the pool process holds.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.backoff import Backoff
from common.config import Settings
from common.records import ErrorSource, PredictionError, Status
from common.store.notifier import Notifier
from common.store.predictions import PredictionStore
from workers.context import PredictionContext, StopReason

if TYPE_CHECKING:
    from workers.warden import WardenLink

logger = logging.getLogger(__name__)

MAX_RENEW_BACKOFF = 1.0
"""Seconds between attempts to renew at most while Redis refuses them: a lease then outlives a
fault of up to its TTL less a renewal interval and this."""


def kill_own_process() -> None:
    """Ends this worker process at once (SIGKILL), as the last resort for a deaf adapter."""
    os.kill(os.getpid(), signal.SIGKILL)


def run_time_exceeded(max_run_time: float) -> PredictionError:
    """The error recorded for a prediction stopped at the run cap."""
    return PredictionError(
        ErrorSource.EXTERNAL, f"The prediction exceeded the maximum run time of {max_run_time:g} s."
    )


@dataclass
class Watch:
    """The supervisor's view of one running prediction.

    Attributes:
        in_adapter: True while ``predict`` runs. Only then may a deaf adapter be
            killed; a stop during ``setup`` ends the prediction but lets loading finish.
    """

    prediction_id: str
    token: str
    ctx: PredictionContext
    started: float
    in_adapter: bool = False
    stop_requested_at: float | None = None
    enforced: bool = False
    ended: bool = False


class Supervisor:
    """Watches the predictions this process runs; see the module docstring."""

    def __init__(
        self,
        store: PredictionStore,
        cancel_notifier: Notifier,
        settings: Settings,
        kill: Callable[[], None] = kill_own_process,
        grace_margin: float = 0.0,
    ) -> None:
        """
        Args:
            kill: Ends the process that runs the adapter.
            grace_margin: Seconds past ``INFERQ_CANCEL_GRACE`` before enforcing (the warden's is above 0).
        """
        self._store = store
        self._notifier = cancel_notifier
        self._settings = settings
        self._kill = kill
        self._grace = settings.cancel_grace + grace_margin
        self.warden: WardenLink | None = None
        """The warden of this process, told of every watch (none inside the warden itself)."""
        self._watches: dict[str, Watch] = {}
        self._signal = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(
            "renewing leases", logger, cap=min(settings.lease_renew_interval, MAX_RENEW_BACKOFF)
        )

    @contextmanager
    def hearing(self, prediction_ids: list[str]) -> Iterator[threading.Event]:
        """Listens for cancellations of predictions about to be claimed, for the duration of the block.

        The returned event fires on any news of them. A cancel published after
        the claim but before :meth:`watching` began would otherwise be heard by
        no one, and noticed only at the first renewal of the lease, seconds later.
        """
        heard = threading.Event()
        with ExitStack() as stack:
            for prediction_id in prediction_ids:
                stack.enter_context(self._notifier.watch(prediction_id, heard))
            yield heard

    @contextmanager
    def watching(
        self, prediction_id: str, token: str, ctx: PredictionContext, heard: threading.Event | None = None
    ) -> Iterator[Watch]:
        """Supervises ``prediction_id`` for the duration of the block (blocks may nest, for a batch).

        Args:
            heard: The event of the :meth:`hearing` begun before the claim; if it
                fired, the lease is checked at once, in case that news was a cancel.
        """
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="inferq-supervisor", daemon=True)
                self._thread.start()
        with self._notifier.watch(prediction_id, self._signal):
            watch = Watch(prediction_id, token, ctx, time.monotonic())
            with self._lock:
                self._watches[prediction_id] = watch
            if self.warden is not None:
                self.warden.watch(prediction_id, token)
            if heard is not None and heard.is_set():
                self._signal.set()
            try:
                yield watch
            finally:
                with self._lock:
                    watch.ended = True
                    self._watches.pop(prediction_id, None)
                if self.warden is not None:
                    self.warden.end(prediction_id)

    def in_adapter(self, watch: Watch, inside: bool) -> None:
        """Marks ``predict`` as running (or done) for ``watch``: only then may a deaf adapter be killed."""
        watch.in_adapter = inside
        if self.warden is not None:
            self.warden.adapter(watch.prediction_id, inside)

    @contextmanager
    def telling_warden_together(self) -> Iterator[None]:
        """What the block tells the warden (watches, ends, adapter marks) reaches it in one write,
        at the block's end."""
        if self.warden is None:
            yield
            return
        with self.warden.together():
            yield

    def _current(self) -> list[Watch]:
        with self._lock:
            return [w for w in self._watches.values() if not w.ended]

    def _loop(self) -> None:
        # Not woken when a prediction starts (its fresh lease outlives the first
        # renewal interval); woken at once when a cancellation is published. Any
        # error (Redis refusing writes, say) ends only the round: the thread must
        # outlive it, or no lease of this process would be renewed again.
        while True:
            self._signal.wait(self._timeout())
            self._signal.clear()
            with self._backoff.round():
                for watch in self._current():
                    self._check(watch)

    def _timeout(self) -> float:
        """Seconds until the next round: when the first watch needs one, or the backoff after a failure."""
        if self._backoff.delay is not None:
            return self._backoff.delay
        watches = self._current()
        return min((self._next_wakeup(w) for w in watches), default=self._settings.lease_renew_interval)

    def _next_wakeup(self, watch: Watch) -> float:
        deadline = watch.started + self._settings.max_run_time
        if watch.enforced:
            return self._settings.lease_renew_interval
        if watch.stop_requested_at is not None:
            deadline = watch.stop_requested_at + self._grace
        return max(0.0, min(self._settings.lease_renew_interval, deadline - time.monotonic()))

    def _check(self, watch: Watch) -> None:
        held, cancel = self._store.renew(watch.prediction_id, watch.token)
        now = time.monotonic()
        if not held:
            self._stop(watch, StopReason.LOST, now)
        elif cancel:
            self._stop(watch, StopReason.CANCELLED, now)
        elif now - watch.started >= self._settings.max_run_time:
            self._stop(watch, StopReason.TIMED_OUT, now)
        stopped_at = watch.stop_requested_at
        if stopped_at is not None and now - stopped_at >= self._grace and not watch.enforced:
            self._enforce(watch)

    def _stop(self, watch: Watch, reason: StopReason, now: float) -> None:
        if watch.stop_requested_at is None:
            logger.info("asking prediction %s to stop (%s)", watch.prediction_id, reason)
            watch.stop_requested_at = now
        watch.ctx.request_stop(reason)

    def _enforce(self, watch: Watch) -> None:
        """Ends a prediction that ignored its stop for the grace period, killing a deaf adapter.

        The process is killed only when every prediction its adapter runs is
        past its grace period, and never while none is in the adapter (a stop
        during ``setup``); a batch member that was stopped alone is just ended,
        and its result discarded when the batch returns. Predictions claimed
        for the next batch while this one runs (not in the adapter yet) do not
        stand in the way: killed with the process, they run again once their
        leases lapse, as after a crash.
        """
        reason = watch.ctx.stop_reason
        if reason is StopReason.CANCELLED:
            self._store.finish(watch.prediction_id, watch.token, Status.CANCELLED)
        elif reason is StopReason.TIMED_OUT:
            error = run_time_exceeded(self._settings.max_run_time)
            self._store.finish(watch.prediction_id, watch.token, Status.FAILED, error=error)
        with self._lock:
            watch.enforced = True
            running = [w for w in self._watches.values() if not w.ended and w.in_adapter]
            if not running or not all(w.enforced for w in running):
                return  # a stop during setup, or others in the adapter still need this process
            logger.error(
                "prediction(s) %s ignored a stop (%s) for %g s; killing the worker process",
                ", ".join(w.prediction_id for w in running),
                reason,
                self._grace,
            )
            self._kill()
