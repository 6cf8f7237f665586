"""``GET /v1/predictions/{id}/stream`` and streamed creates: a prediction's events as SSE.

Every event carries ``id:``, ``event:`` and JSON ``data:``: ``init`` and
``done`` the full prediction, ``output`` one chunk, ``error`` the error
object. The client reconnects at once and forever after a clean close without
a terminal event, so a finished prediction's stream always ends with its
terminal event, re-sent even when ``after_id`` already points at it.

A prediction that runs again after its worker was lost has a restart marker in
its log, sent as a fresh ``init`` (the one event type that says "from the
start" to every client): output after it replaces what came before. A reader
that starts before the latest marker skips to it, so a stream read from the
start (or resumed from the lost attempt) holds the current attempt's chunks
alone; ``done`` carries the authoritative output either way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from api.services import Services
from api.sse import HEARTBEAT, Heartbeat, follow, format_event
from common.errors import StreamExpired, StreamUnavailable
from common.records import ErrorSource, Prediction, PredictionError
from common.store.events import RESTART_EVENT, StoredEvent, event_order
from common.wire import render


def open_stream(
    services: Services, owner: str, prediction_id: str, after: str | None, idle: float
) -> Iterator[str]:
    """The SSE chunks of one of ``owner``'s predictions, after the event id ``after``.

    Raises:
        NotFound: Unknown, or another owner's (404).
        StreamUnavailable: Created without streaming (409).
        StreamExpired: Its events have expired (410).
    """
    prediction = services.store.get_owned(prediction_id, owner)
    if not prediction.stream:
        raise StreamUnavailable(f"Prediction {prediction_id} was created without stream: true")
    if not services.store.events.exists(prediction_id):
        raise StreamExpired(f"The events of prediction {prediction_id} have expired")
    return _chunks(services, prediction_id, after, idle)


def created_stream(services: Services, prediction_id: str, idle: float) -> Iterator[str]:
    """The SSE chunks of a streamed prediction its create request has just stored (or found by its
    ``Idempotency-Key``): the caller's, streamed, its log opened with ``init``.

    A heartbeat comes first, so the ``201`` has been sent before Redis is read
    again: a fault after the store can break the stream (the client resumes it
    with ``GET .../stream``), never turn the create into an error it would retry.
    """
    yield HEARTBEAT
    yield from _chunks(services, prediction_id, None, idle)


def _chunks(services: Services, prediction_id: str, after: str | None, idle: float) -> Iterator[str]:
    prediction = services.store.get(prediction_id)
    marker = _restart_marker(services, prediction, after)
    if marker is not None:
        yield render_event(services, prediction_id, marker)
        after = marker.id
    if prediction is not None and prediction.status.is_terminal:
        yield from _replay(services, prediction_id, after)
        return
    for item in follow(services, prediction_id, after, idle):
        if isinstance(item, Heartbeat):
            yield HEARTBEAT
            continue
        yield render_event(services, prediction_id, item)
        if item.is_terminal:
            return
    ended = services.store.get(prediction_id)
    if ended is not None and ended.status.is_terminal:
        yield from _replay(services, prediction_id, None, terminal_only=True)


def _restart_marker(
    services: Services, prediction: Prediction | None, after: str | None
) -> StoredEvent | None:
    """The latest restart marker, when a reader starting after ``after`` has not passed it yet."""
    if prediction is None or not prediction.stream_start:
        return None
    if after is not None and event_order(after) >= event_order(prediction.stream_start):
        return None
    return services.store.events.at(prediction.id, prediction.stream_start)


def _replay(
    services: Services, prediction_id: str, after: str | None, *, terminal_only: bool = False
) -> Iterator[str]:
    """A finished prediction's events after ``after``, always ending with its terminal event."""
    last = after
    while not terminal_only and (batch := services.store.events.after(prediction_id, last)):
        for event in batch:
            yield render_event(services, prediction_id, event)
            last = event.id
            if event.is_terminal:
                return
    terminal = services.store.events.last(prediction_id)
    if terminal is not None and terminal.is_terminal:
        yield render_event(services, prediction_id, terminal)


def render_event(services: Services, prediction_id: str, event: StoredEvent) -> str:
    """One stored event as SSE, the terminal ones rendered from the finished prediction, a restart
    marker as an ``init`` of the prediction as it stands."""
    data: Any
    if event.event == RESTART_EVENT:
        prediction = services.store.get(prediction_id)
        data = render(prediction) if prediction is not None else {"id": prediction_id}
        return format_event(data, event="init", event_id=event.id)
    if event.is_terminal:
        prediction = services.store.get(prediction_id)
        if event.event == "done" and prediction is not None:
            data = render(prediction)
        else:
            error = prediction.error if prediction is not None else None
            data = (
                error or PredictionError(ErrorSource.INTERNAL, "The prediction ended without a result")
            ).to_dict()
    else:
        data = json.loads(event.data)
        if event.event == "init" and "input" not in data:
            # The init event is stored without the input, which the record keeps once for all.
            prediction = services.store.get(prediction_id)
            data["input"] = prediction.input if prediction is not None else None
    return format_event(data, event=event.event, event_id=event.id)
