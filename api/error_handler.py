"""The one error handler: every failure becomes the documented JSON error body.

``{"detail": <str or list of {loc, msg, type}>, "error": {message, type, param, code}}``:
``detail`` as FastAPI (and the WriftAI docs) shape it, ``error`` as OpenAI clients read it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, jsonify
from kombu.exceptions import OperationalError
from werkzeug.exceptions import HTTPException

from common.connections import redis_unavailable
from common.errors import (
    InferqError,
    PredictionOutcomeError,
    QueueFull,
    RequestValidationError,
    ServiceUnavailable,
)

logger = logging.getLogger(__name__)

HTTP_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
"""OpenAI ``error.type`` for HTTP errors raised by Flask itself (unknown route, wrong method...)."""

UNAVAILABLE = (OperationalError,)
"""Exceptions besides Redis's (:func:`~common.connections.redis_unavailable`) that mean a backing
service is down, not that inferq is broken."""


def error_body(
    status: int, detail: Any, message: str, error_type: str, code: str | None, param: str | None
) -> Response:
    """Builds the documented error response."""
    response = jsonify(
        {"detail": detail, "error": {"message": message, "type": error_type, "param": param, "code": code}}
    )
    response.status_code = status
    return response


def handle(e: Exception) -> Response:
    """Turns any exception raised while serving a request into its documented response."""
    if isinstance(e, UNAVAILABLE) or redis_unavailable(e):
        logger.warning("backing service unavailable: %s", e)
        e = ServiceUnavailable("A backing service is unavailable; retry shortly.", retry_after=1)
    if isinstance(e, InferqError):
        detail: Any = e.details if isinstance(e, RequestValidationError) else e.message
        code = e.code
        if isinstance(e, RequestValidationError) and e.details:
            code = e.details[0]["type"]
        response = error_body(e.status_code, detail, e.message, e.error_type, code, e.param)
        response.headers.update(_headers(e))
        return response
    if isinstance(e, HTTPException) and e.code is not None:
        message = e.description or e.name
        error_type = HTTP_ERROR_TYPES.get(e.code, "invalid_request_error")
        code = e.name.lower().replace(" ", "_")
        response = error_body(e.code, message, message, error_type, code, None)
        for name, value in e.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
    logger.exception("unhandled error while serving a request")
    return error_body(500, "Internal server error", "Internal server error", "server_error", None, None)


def _headers(e: InferqError) -> dict[str, str]:
    """Headers that tell clients what to do next: when to retry, and which prediction it was."""
    headers = {}
    if isinstance(e, ServiceUnavailable):
        headers["Retry-After"] = str(e.retry_after)
    if isinstance(e, QueueFull):
        headers["Retry-After"] = str(e.retry_after)
        headers["x-ratelimit-reset"] = str(int(time.time()) + e.retry_after)
    if isinstance(e, PredictionOutcomeError):
        headers["x-prediction-id"] = e.prediction_id
        headers["x-should-retry"] = "true" if e.retryable else "false"
        if e.retryable:
            headers["Retry-After"] = "1"
    return headers


def register_error_handler(app: Flask) -> None:
    """Installs :func:`handle` for every exception (after flask-smorest's, replacing it)."""
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(Exception, handle)
