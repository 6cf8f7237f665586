"""``/``: the console, a web page to try models and watch predictions, queues and batches.

It is HTML, CSS and JavaScript for people, served from the installed package
(``api/console/``, package data), not part of the API: a plain Flask blueprint
that stays out of ``/openapi.json``. The page speaks only the public API, with
the API key the person signs in with, so it sees exactly what that key may see.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

STATIC = Path(__file__).resolve().parents[1] / "console"
"""The console's files, shipped in the package."""

POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""The console's Content-Security-Policy: its own files only, images from data: and blob: URLs (the
models' images arrive as base64), requests to this origin only, no inline script or style."""

blp = Blueprint("console", __name__)


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blp.route("/", methods=["GET"])
def index() -> Response:
    """The console's one page (its views are routed in the browser, after ``#``)."""
    response = send_from_directory(STATIC, "index.html", max_age=0)
    return _secured(response)


@blp.route("/console/<path:name>", methods=["GET"])
def asset(name: str) -> Response:
    """The console's scripts and style sheet."""
    response = send_from_directory(STATIC, name, max_age=0)
    return _secured(response)
