"""Prediction ids: time-ordered UUIDs (version 7, RFC 9562).

Ids that sort by creation time let an owner's predictions live in one Redis
sorted set ordered lexicographically, so listing newest-first and paging with
a cursor need no separate timestamp index.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_prediction_id(now: float | None = None) -> str:
    """Returns a new UUIDv7 string, strictly increasing within this process."""
    global _last_ms, _counter
    ms = int((time.time() if now is None else now) * 1000)
    with _lock:
        if ms <= _last_ms:
            # Same millisecond (or a clock step back): keep order with the 12-bit counter.
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def id_floor(timestamp: float) -> str:
    """The smallest UUIDv7 string of ``timestamp``: every id created earlier sorts below it."""
    ms = int(timestamp * 1000) & ((1 << 48) - 1)
    return str(uuid.UUID(int=ms << 80 | 0x7 << 76 | 0b10 << 62))


def is_prediction_id(value: str) -> bool:
    """Whether ``value`` is a canonical lowercase UUID string (the only form inferq hands out)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
