"""What happens around every request: its id, the caller's key, metrics, and identifying headers."""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid

from flask import Response, g, request

from api import metrics
from api.services import services
from common.processes import logs

access = logging.getLogger("inferq.access")
"""One line per answered request."""

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def before() -> None:
    """Names the request (keeping a sane ``X-Request-Id``) and, under ``/v1``, authenticates it."""
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    logs.request_id.set(g.request_id)
    logs.prediction_id.set(None)
    if request.path == "/v1" or request.path.startswith("/v1/"):
        g.owner = services().keys.owner(request.headers.get("Authorization"))


def after(response: Response) -> Response:
    """Adds ``x-request-id`` (and ``x-prediction-id`` when there is one); counts and logs the request
    once the response has been sent, so neither delays it."""
    response.headers["x-request-id"] = g.get("request_id") or uuid.uuid4().hex
    if g.get("prediction_id"):
        response.headers["x-prediction-id"] = g.prediction_id
    answered = functools.partial(
        _answered,
        request.method,
        request.path,
        request.url_rule.rule if request.url_rule else "unmatched",
        response.status_code,
        g.get("started", time.perf_counter()),
        {"request_id": g.get("request_id"), "prediction_id": logs.prediction_id.get()},
    )
    response.call_on_close(answered)
    return response


def _answered(
    method: str, path: str, route: str, status: int, started: float, ids: dict[str, str | None]
) -> None:
    """Counts and logs a request whose response has been sent (or, for a stream, has ended)."""
    elapsed = time.perf_counter() - started
    metrics.observe_request(method, route, status, elapsed)
    access.info(
        "%s %s %d",
        method,
        path,
        status,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            **ids,
        },
    )
