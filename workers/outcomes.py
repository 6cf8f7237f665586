"""How a run's predictions ended, before they are written, and writing them beside the next run.

The runner gives each member of a run an :class:`Outcome`, then records the
outcomes in one round trip. Within a run of batches (``Runner._follow_on``) a
batch's outcomes are recorded by a :class:`Recording` thread while the next
batch gathers and runs: the terminal writes wait on Redis, and the model can
use the core meanwhile (torch releases the GIL). The run waits for every
recording before it hands back to Celery, so a task still ends with all its
outcomes written.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.records import ErrorSource, PredictionError, Status


@dataclass
class Outcome:
    """How a prediction ended, before it is written."""

    status: Status
    output: Any = None
    error: PredictionError | None = None


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
