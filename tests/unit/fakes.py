"""A stand-in for the context adapters get, for tests that call adapters directly."""

from __future__ import annotations

import threading
from typing import Any

from common.errors import PredictionCancelled


class FakeContext:
    """What an adapter sees of a prediction, recording emitted chunks and logs.

    Args:
        cancel_on_emit: Cancel as soon as the adapter emits its first chunk.
        cancel_after_check: Cancel right after the adapter's first look that found it running.
    """

    def __init__(
        self,
        cancel_on_emit: bool = False,
        cancel_after_check: bool = False,
        uploads: dict[str, bytes] | None = None,
    ) -> None:
        self.cancelled = threading.Event()
        self.metrics: dict[str, Any] = {}
        self.chunks: list[Any] = []
        self.logs: list[str] = []
        self.cancel_on_emit = cancel_on_emit
        self.cancel_after_check = cancel_after_check
        self.uploads = dict(uploads or {})

    def emit(self, chunk: Any) -> None:
        self.chunks.append(chunk)
        if self.cancel_on_emit:
            self.cancelled.set()

    def read_upload(self, name: str) -> bytes:
        return self.uploads[name]

    def log(self, message: str) -> None:
        self.logs.append(message)

    def raise_if_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise PredictionCancelled("asked to stop")
        if self.cancel_after_check:
            self.cancelled.set()
