"""What happens around every request: its id, the caller's key, metrics, and identifying headers."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Response, g, request

from api import metrics
from api.services import services
from common import logs

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
    """Adds ``x-request-id`` (and ``x-prediction-id`` when there is one) and counts the request."""
    response.headers["x-request-id"] = g.get("request_id") or uuid.uuid4().hex
    if g.get("prediction_id"):
        response.headers["x-prediction-id"] = g.prediction_id
    route = request.url_rule.rule if request.url_rule else "unmatched"
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    metrics.observe_request(request.method, route, response.status_code, elapsed)
    access.info(
        "%s %s %d",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )
    return response
