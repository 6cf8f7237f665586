"""``/``: a small page for a person who opens the server in a browser (the console will take its place).

It is HTML for people, not part of the API, so it is a plain Flask blueprint and
stays out of ``/openapi.json``.
"""

from __future__ import annotations

from flask import Blueprint, Response

blp = Blueprint("index", __name__)

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>inferq</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}</style>
</head>
<body>
<h1>inferq</h1>
<p>A self-hostable inference API, speaking the WriftAI and OpenAI-compatible wire contracts
under <code>/v1</code>.</p>
<ul>
<li><a href="/docs">API docs</a> (try every endpoint with your API key)</li>
<li><a href="/openapi.json">OpenAPI document</a></li>
<li><a href="/healthz">Health</a> and <a href="/readyz">readiness</a></li>
</ul>
</body>
</html>
"""
"""The page: links to the docs, the OpenAPI document and the health checks."""


@blp.route("/", methods=["GET"])
def index() -> Response:
    """The links a person in a browser needs first."""
    return Response(PAGE, content_type="text/html; charset=utf-8")
