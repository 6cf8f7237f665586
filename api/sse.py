"""Server-sent events: the wire format, and following a prediction's event log live.

Shared by the WriftAI prediction streams and the OpenAI image stream. A
follower reads the log from Redis in batches and sleeps on the process's
notifier between them, so an open stream holds no Redis connection and
nobody polls; idle gaps are filled with heartbeat comments.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, stream_with_context

from api.services import Services
from common.store.events import StoredEvent

HEARTBEAT = ": keep-alive\n\n"
"""The comment sent every ``INFERQ_HEARTBEAT_INTERVAL`` seconds on an idle stream, so proxies keep it open."""


def format_event(data: Any, *, event: str | None = None, event_id: str | None = None) -> str:
    """One SSE event: optional ``id:`` and ``event:`` lines, then a JSON ``data:`` line."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def event_stream(chunks: Iterator[str]) -> Response:
    """A streaming ``text/event-stream`` response, each chunk flushed as it is produced."""
    return Response(
        stream_with_context(chunks),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@dataclass(frozen=True)
class Heartbeat:
    """Yielded by :func:`follow` when nothing happened for a while."""


def follow(
    services: Services,
    prediction_id: str,
    after: str | None,
    idle_timeout: float,
    deadline: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[StoredEvent | Heartbeat]:
    """Replays a prediction's events after ``after``, then follows them live.

    Ends after the terminal event, once ``idle_timeout`` seconds pass with no
    new event (a clean end the client resumes from), at the monotonic
    ``deadline``, or when ``stop`` is set (set it, then ``notifier.wake`` the
    prediction). Yields a :class:`Heartbeat` every ``INFERQ_HEARTBEAT_INTERVAL``
    seconds of silence.
    """
    store = services.store
    with services.notifier.watch(prediction_id) as watcher:
        last = after
        idle_since = time.monotonic()
        end = float("inf") if deadline is None else deadline
        while stop is None or not stop.is_set():
            watcher.event.clear()
            batch = store.events.after(prediction_id, last)
            for event in batch:
                yield event
                last = event.id
                if event.is_terminal:
                    return
            if batch:
                idle_since = time.monotonic()
                continue
            remaining = min(idle_since + idle_timeout, end) - time.monotonic()
            if remaining <= 0:
                return
            if not watcher.event.wait(min(remaining, services.settings.heartbeat_interval)):
                yield Heartbeat()
