"""``/healthz`` (the process is up), ``/readyz`` (it can serve) and ``/metrics``: no API key needed."""

from __future__ import annotations

from typing import Any

import redis
from flask import Response, request

from api import metrics
from api.blueprint import Blueprint
from api.schemas.errors import ErrorBodySchema
from api.services import services
from common.store.heartbeats import live_workers

blp = Blueprint("health", __name__, description="Health, readiness and metrics")


@blp.route("/healthz", methods=["GET"])
@blp.response(200)
def healthz() -> dict[str, str]:
    """The API process is alive."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, description="Ready: Redis answers and every queue has a live worker")
@blp.alt_response(503, description="Not ready: the body says what is missing")
def readyz() -> Any:
    """Whether predictions can be served: Redis is reachable and every configured queue has a live worker."""
    found = services()
    queues = [*found.catalog.queues, found.settings.webhook_queue]
    try:
        found.store.redis.ping()
        workers = {queue: live_workers(found.store, queue) for queue in queues}
    except (redis.ConnectionError, redis.TimeoutError):
        return {"status": "unready", "redis": False, "queues": {}}, 503, {"Retry-After": "1"}
    ready = all(workers.values())
    body = {"status": "ready" if ready else "unready", "redis": True, "queues": workers}
    return (body, 200) if ready else (body, 503, {"Retry-After": "1"})


@blp.route("/metrics", methods=["GET"])
@blp.response(200, description="Prometheus text format")
@blp.alt_response(
    401, schema=ErrorBodySchema, description="No API key, or an unknown one (INFERQ_METRICS_AUTH)."
)
@blp.alt_response(503, schema=ErrorBodySchema, description="Redis is unreachable; see Retry-After.")
def prometheus_metrics() -> Response:
    """Request, prediction, queue and worker metrics (an API key is needed if INFERQ_METRICS_AUTH is set)."""
    found = services()
    if found.settings.metrics_auth:
        found.keys.owner(request.headers.get("Authorization"))
    body, content_type = metrics.exposition(found)
    return Response(body, content_type=content_type)
