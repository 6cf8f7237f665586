"""What an adapter sees of the prediction it runs: cancellation, streamed output, logs, metrics."""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from typing import Any

from common.errors import NotFound, PredictionCancelled
from common.storage import Storage
from common.store.predictions import PredictionStore

logger = logging.getLogger(__name__)


class StopReason(StrEnum):
    """Why a running prediction was asked to stop."""

    CANCELLED = "cancelled"
    """Its owner cancelled it."""
    TIMED_OUT = "timed_out"
    """It ran past the maximum run time."""
    LOST = "lost"
    """Another worker took it over (this worker's lease lapsed): discard the result."""


class PredictionContext:
    """Handed to ``Adapter.predict``; check :attr:`cancelled` between steps.

    Args:
        prediction_id: The prediction being run.
        store: Where its output, logs and events go.
        stream: Whether it was created with ``stream: true`` (else :meth:`emit` does nothing).
        token: The claim this attempt holds; streamed chunks are appended only while it holds it.
        uploads: Where the files uploaded with the request are (``/v1/images/edits``' images).

    Attributes:
        prediction_id: The prediction being run.
        cancelled: Set when the adapter should stop (cancel, run cap, or lost claim);
            ``cancelled.wait(seconds)`` is a sleep that ends early on a stop.
        metrics: Extra metrics the adapter reports (merged into the prediction's ``metrics``).
    """

    def __init__(
        self,
        prediction_id: str,
        store: PredictionStore,
        *,
        stream: bool,
        token: str = "",
        uploads: Storage | None = None,
    ) -> None:
        if stream and not token:
            raise ValueError("a streamed prediction's context needs the claim token")
        self.prediction_id = prediction_id
        self.cancelled = threading.Event()
        self.metrics: dict[str, Any] = {}
        self.stop_reason: StopReason | None = None
        self._store = store
        self._stream = stream
        self._token = token
        self._uploads = uploads

    def raise_if_cancelled(self) -> None:
        """Raises :class:`~common.errors.PredictionCancelled` once a stop was requested."""
        if self.cancelled.is_set():
            raise PredictionCancelled(f"prediction {self.prediction_id} was asked to stop")

    def emit(self, chunk: Any) -> None:
        """Streams one chunk of output (JSON-serialisable) to the prediction's event stream.

        A chunk is refused once this attempt has lost its claim (another worker
        took the prediction over, or it ended); the adapter is then asked to stop.
        """
        if not self._stream or self.stop_reason is StopReason.LOST:
            return
        if self._store.events.emit(self.prediction_id, self._token, chunk) is None:
            logger.warning("prediction %s: output refused, this attempt lost its claim", self.prediction_id)
            self.request_stop(StopReason.LOST)

    def read_upload(self, name: str) -> bytes:
        """The bytes of a file uploaded with the request, named in the input by the API.

        Raises:
            NotFound: No such upload (it expired with its prediction, or was never stored).
        """
        if self._uploads is None:
            raise NotFound(f"upload {name} not found: this worker has no upload storage")
        return self._uploads.get(name)

    def log(self, message: str) -> None:
        """Appends a line to the prediction's logs."""
        logger.info("prediction %s: %s", self.prediction_id, message)
        self._store.append_log(self.prediction_id, message.rstrip("\n") + "\n")

    def request_stop(self, reason: StopReason) -> None:
        """Asks the adapter to stop; the first reason given wins."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.cancelled.set()
