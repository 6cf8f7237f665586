"""Each prediction's event log: an ordered Redis stream of ``init``, ``output`` chunks, ``done``/``error``.

The store's scripts write ``init`` (at create) and the terminal event (in the
same step as the terminal status); adapters append ``output`` chunks through
their context, with the claim token of their attempt, and a chunk of an attempt
that no longer holds the claim is refused. A prediction claimed again after a
lost attempt gets a ``restart`` marker, and its record's ``stream_start`` names
the latest one: a reader serves the current attempt from there, so the chunks of
two attempts are never read as one text. Readers follow the log through the
updates channel, where every append is announced as ``<id> event``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis

from common.config import Settings
from common.store import keys
from common.store.scripts import Scripts

EVENT_NOTE = "event"
"""The note published on the updates channel when a prediction's event log grows."""

TERMINAL_EVENTS = frozenset({"done", "error"})
"""Event types that end a prediction's event log."""

RESTART_EVENT = "restart"
"""Stored (by the claim script) where a prediction starts running again after a lost attempt."""


@dataclass(frozen=True)
class StoredEvent:
    """One entry of a prediction's event log; ``data`` is JSON, empty for terminal events
    (whose data is the finished prediction, rendered when sent)."""

    id: str
    event: str
    data: str

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends the log."""
        return self.event in TERMINAL_EVENTS


def event_order(event_id: str) -> tuple[int, int]:
    """An event id (``<ms>-<seq>``) as a key that sorts as the log does."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class EventLog:
    """Appends to and reads predictions' event logs."""

    def __init__(self, client: redis.Redis, settings: Settings, scripts: Scripts) -> None:
        self.redis = client
        self._ttl = settings.live_ttl
        self._run = scripts

    def emit(self, prediction_id: str, token: str, data: Any) -> str | None:
        """Appends an ``output`` chunk for the attempt holding claim ``token`` and tells the followers.

        One round trip: the claim is checked in the same script that appends.

        Returns:
            The event's id, or None when ``token`` no longer holds the claim (another
            attempt took the prediction over, or it ended): the chunk was refused.
        """
        event_id = self._run("emit", prediction_id, token, json.dumps(data), self._ttl)
        return None if event_id is None else str(event_id)

    def after(self, prediction_id: str, after: str | None, count: int = 100) -> list[StoredEvent]:
        """Up to ``count`` events after the event id ``after`` (or from the start)."""
        start = f"({after}" if after else "-"
        found = self.redis.xrange(keys.prediction_events(prediction_id), start, "+", count=count)
        return _events(found)

    def at(self, prediction_id: str, event_id: str) -> StoredEvent | None:
        """The event ``event_id``, or None when the log no longer holds it."""
        found = _events(self.redis.xrange(keys.prediction_events(prediction_id), event_id, event_id, count=1))
        return found[0] if found else None

    def last(self, prediction_id: str) -> StoredEvent | None:
        """The newest event (the terminal one, once the prediction ended)."""
        found = _events(self.redis.xrevrange(keys.prediction_events(prediction_id), "+", "-", count=1))
        return found[0] if found else None

    def exists(self, prediction_id: str) -> bool:
        """Whether the prediction's event log still exists (it expires with the record)."""
        return bool(self.redis.exists(keys.prediction_events(prediction_id)))


def _events(found: Any) -> list[StoredEvent]:
    entries = cast(list[tuple[str, dict[str, str]]], found or [])
    return [StoredEvent(event_id, fields["event"], fields["data"]) for event_id, fields in entries]
