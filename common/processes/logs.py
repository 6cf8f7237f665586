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


def configure(log_format: str, level: str) -> None:
    """Sends every log record to stderr, as JSON (``json``) or plain lines (``text``)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
