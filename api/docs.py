"""The API description: OpenAPI 3.1 at ``/openapi.json``, generated from the schemas, and ``/docs``.

The docs page is Swagger UI served from the installed ``swagger-ui-py``
package, so it works with no internet access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui
from apispec import BasePlugin
from flask import Blueprint, Flask, Response, send_from_directory
from flask_smorest import Api

from api.schemas.errors import ErrorBodySchema

STATIC = Path(swagger_ui.__file__).with_name("static")
"""Swagger UI's files, as shipped in the package."""

SPEC_OPTIONS: dict[str, Any] = {
    "API_TITLE": "inferq",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/docs/static/",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": (
                "A self-hostable inference API: the WriftAI HTTP API (predictions, Prefer: wait, "
                "cancellation, streams, webhooks) and the OpenAI-compatible images and embeddings endpoints."
            )
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key"}}
        },
        "security": [{"bearer": []}],
    },
}
"""flask-smorest's settings for the document and the docs page."""


def _header(description: str, kind: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


COMMON_HEADERS = {
    "x-request-id": _header("The request's id (the caller's X-Request-Id, if sane).", "string"),
    "x-ratelimit-limit": _header("Requests allowed per window (with INFERQ_RATE_LIMIT).", "integer"),
    "x-ratelimit-remaining": _header("Requests left in this window.", "integer"),
    "x-ratelimit-reset": _header("When the window resets, in unix seconds.", "integer"),
}
"""Headers every ``/v1`` response may carry."""

ERRORS = {
    "400": (
        "The body is not JSON (or nests too deep), or the request is refused (moderation, model);"
        " an upload is missing a field or its file does not suit its purpose."
    ),
    "401": "No API key, or an unknown one.",
    "404": "No such prediction, model, version or file (or it belongs to someone else).",
    "409": "The prediction's state forbids it (already finished; created without streaming; cancelled).",
    "410": "The prediction's events have expired; on a create, the prediction its Idempotency-Key made has.",
    "413": (
        "The body is over INFERQ_MAX_BODY_BYTES, or its input (as JSON) over INFERQ_MAX_INPUT_BYTES;"
        " an uploaded file over INFERQ_MAX_FILE_BYTES."
    ),
    "429": "Rate limited, or the model's queue is full; see x-ratelimit-reset and Retry-After.",
    "500": "The model failed on this request; x-prediction-id names the prediction.",
    "503": "Redis is unreachable; see Retry-After.",
    "504": "The model did not answer in time; the prediction was cancelled (x-should-retry: false).",
}
"""Failures documented on operations, each answering with the error body."""


URL_TOO_LONG = {"description": "The URL is longer than the server reads (gunicorn answers, in HTML)."}
"""The answer of the HTTP server itself to an over-long request line, before the app sees it."""


def sse_events(*events: str) -> dict[str, Any]:
    """The schema of each event of a ``text/event-stream`` response: its ``event`` is one of ``events``."""
    return {
        "type": "object",
        "description": "One server-sent event: `id:` (to resume from), `event:`, and a JSON `data:` line",
        "required": ["event", "data"],
        "properties": {
            "id": {"type": "string"},
            "event": {"enum": list(events)},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
    }


class InferqApi(Api):
    """flask-smorest's Api, documenting inferq's error body and each failure by status (no ``default``)."""

    ERROR_SCHEMA = ErrorBodySchema
    DEFAULT_ERROR_RESPONSE_NAME = None


ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


class SharedResponses(BasePlugin):
    """Adds what every operation shares to the document: headers, and the failures it may answer."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        """Completes each operation's responses (``/v1`` ones with their headers and failures)."""
        if not path or not operations:
            return
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if path.startswith("/v1"):
                for response in responses.values():
                    if isinstance(response, dict) and "$ref" not in response:
                        response.setdefault("headers", {}).update(COMMON_HEADERS)
                for status in _failures(path, method):
                    responses.setdefault(status, {"description": ERRORS[status], "content": ERROR_BODY})
            responses.setdefault("414", URL_TOO_LONG)


def _failures(path: str, method: str) -> list[str]:
    statuses = ["401", "429", "503"]
    if method == "post":
        statuses += ["400", "413"]
    if "{" in path or path.startswith("/v1/models") or method == "post":
        statuses.append("404")
    if path.endswith(("/cancel", "/stream")):
        statuses.append("409")
    if path.endswith("/stream") or (method == "post" and path.endswith(CREATES)):
        statuses.append("410")
    if path in ("/v1/images/generations", "/v1/embeddings"):
        statuses += ["409", "500", "504"]
    return statuses


CREATES = ("/predictions", "/images/generations", "/embeddings")
"""How the paths of the create routes (those taking an ``Idempotency-Key``) end."""


static = Blueprint("docs_static", __name__)


@static.route("/docs/static/<path:filename>")
def swagger_ui_file(filename: str) -> Response:
    """One of Swagger UI's files (scripts, styles), from the installed package."""
    return send_from_directory(STATIC, filename, max_age=3600)


def configure(app: Flask) -> InferqApi:
    """Sets up the document and the docs page; returns the Api to register blueprints on."""
    app.config.update(SPEC_OPTIONS)
    app.register_blueprint(static)
    return InferqApi(app, spec_kwargs={"extra_plugins": [SharedResponses()]})
