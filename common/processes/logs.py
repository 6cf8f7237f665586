"""Structured logs: one JSON object per line, carrying the request and prediction they concern.

The API sets the request id for each request and the prediction id once it
knows it; a worker sets the prediction id while it runs one. Both are context
variables, so concurrent requests (greenlets) and threads never mix them up.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str | None] = ContextVar("inferq_request_id", default=None)
"""The id of the HTTP request being served (``x-request-id``)."""

prediction_id: ContextVar[str | None] = ContextVar("inferq_prediction_id", default=None)
"""The prediction being created, waited on or run."""

FIELDS = ("method", "path", "status", "duration_ms")
"""Extra fields a log call may pass (``extra={...}``) that the JSON lines carry."""


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "message", "request_id"?, "prediction_id"?, ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, variable in (("request_id", request_id), ("prediction_id", prediction_id)):
            value = getattr(record, name, None) or variable.get()
            if value:
                entry[name] = value
        for name in FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        entry["process"] = record.process
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Formats a record as one plain line for a terminal: ``time level process[pid] logger: message``."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        who = f"{self.process}[{record.process}] {record.name}"
        line = f"{clock} {record.levelname:<7} {who}: {record.getMessage()}"
        ids = [value for value in (request_id.get(), prediction_id.get()) if value]
        if ids:
            line += f" ({' '.join(ids)})"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(log_format: str, level: str, process: str) -> None:
    """Sends every log record to stderr, as JSON (``json``) or plain lines (``text``).

    Args:
        log_format: ``json`` for log collectors, ``text`` for a person at a terminal.
        level: The lowest level logged.
        process: What the text lines call this process (``api``, or a worker's name).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
