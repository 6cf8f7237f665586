"""How a run's predictions ended, and writing it: members, outcomes, the recorder.

The runner gives each :class:`Member` of a run an :class:`Outcome`, then the
:class:`Recorder` writes the outcomes in one round trip. Within a run of batches (``Runner._batches``) a
batch's outcomes are recorded by a :class:`Recording` thread while the next
batch gathers and runs: the terminal writes wait on Redis, and the model can
use the core meanwhile (torch releases the GIL). The run waits for every
recording before it hands back to Celery, so a task still ends with all its
outcomes written.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from common.backoff import Backoff
from common.config import Settings
from common.queue.broker import TaskMessages
from common.records import ErrorSource, Prediction, PredictionError, Status
from common.store.predictions import Ending, PredictionStore
from workers.context import PredictionContext, StopReason
from workers.supervisor import Watch

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """How a prediction ended, before it is written."""

    status: Status
    output: Any = None
    error: PredictionError | None = None


@dataclass
class Member:
    """One prediction of a run, with its claim token, context and supervisor watch."""

    prediction: Prediction
    token: str
    ctx: PredictionContext
    claimed_at: float = field(default_factory=time.monotonic)
    watch: Watch | None = None
    outcome: Outcome | None = None
    timings: dict[str, float] = field(default_factory=dict)


def external_error(message: str, detail: Any = None) -> PredictionError:
    """An error the model or its input caused."""
    return PredictionError(ErrorSource.EXTERNAL, message, detail)


def exception_error(e: BaseException) -> PredictionError:
    """The error recorded when an adapter raises: its message, type and traceback tail."""
    frames = traceback.format_exception(type(e), e, e.__traceback__)
    detail = {"type": type(e).__name__, "traceback": "".join(frames)[-4000:]}
    return external_error(str(e) or type(e).__name__, detail)


class Recording:
    """One batch's outcomes being written in a thread of their own; :meth:`wait` joins it."""

    def __init__(self, write: Callable[[], None]) -> None:
        self._write = write
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="inferq-recording", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._write()
        except BaseException as e:  # raised again in the runner's thread, by wait()
            self._error = e

    def wait(self) -> None:
        """Returns once the outcomes are written.

        Raises:
            Exception: Whatever writing them raised (as a write in the runner's thread would).
        """
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class Recorder:
    """Writes the outcomes of a worker process's runs, and asks for their webhooks."""

    def __init__(self, store: PredictionStore, settings: Settings, messages: TaskMessages) -> None:
        self.store = store
        self.settings = settings
        self.messages = messages

    def record(self, members: Sequence[Member]) -> None:
        """Writes every member's outcome in one round trip (a member whose claim was lost writes nothing)."""
        endings = []
        for member in members:
            if member.ctx.stop_reason is StopReason.LOST:
                logger.warning(
                    "prediction %s was taken over by another worker; discarded", member.prediction.id
                )
                continue
            outcome = member.outcome or Outcome(Status.FAILED, error=external_error("It did not run."))
            metrics: dict[str, Any] = dict(member.ctx.metrics)
            if "execution_time" in member.timings:
                metrics["predict_time"] = round(member.timings["execution_time"], 6)
            endings.append(
                Ending(
                    member.prediction.id,
                    member.token,
                    outcome.status,
                    outcome.output,
                    outcome.error,
                    metrics,
                    member.timings,
                )
            )
        for ending, ended in zip(endings, self._finish(endings), strict=True):
            logger.info(
                "prediction %s %s%s", ending.prediction_id, ending.status, "" if ended else " (not recorded)"
            )
        for member in members:
            self.announce(member.prediction)

    def _finish(self, endings: list[Ending]) -> list[bool]:
        """Writes the endings, trying again for up to a lease while Redis refuses the write.

        A write lost to a moment of ``OOM`` or ``READONLY`` would leave the claims
        to lapse and the predictions to run again. Trying again is safe: each
        ending presents its claim token, so it is recorded at most once, and not
        at all once recovery has released a claim that lapsed meanwhile.
        """
        backoff = Backoff("recording outcomes", logger, cap=self.settings.lease_renew_interval)
        give_up_at = time.monotonic() + self.settings.lease_ttl
        while True:
            try:
                return self.store.finish_all(endings)
            except redis.RedisError as e:
                if time.monotonic() >= give_up_at:
                    raise
                time.sleep(backoff.failed(e))

    def announce(self, prediction: Prediction) -> None:
        """Asks for the prediction's webhooks at once (recovery would, within a second or so)."""
        if prediction.webhook:
            try:
                self.messages.send_webhook_delivery(prediction.id)
            except Exception:
                logger.warning("could not ask for the webhooks of %s; recovery will", prediction.id)
