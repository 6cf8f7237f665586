"""Per-key rate limits (``INFERQ_RATE_LIMIT``, in the limits notation), counted in Redis.

Every ``/v1`` response then carries ``x-ratelimit-limit``,
``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (unix seconds); a 429
carries ``x-ratelimit-reset`` and ``Retry-After`` too, which the wriftai
client needs to wait and retry.
"""

from __future__ import annotations

import hashlib

from flask import Flask, request
from flask_limiter import HeaderNames, Limiter

from common.config import Settings
from common.connections import limiter_storage
from common.store import keys

HEADERS = {
    HeaderNames.LIMIT: "x-ratelimit-limit",
    HeaderNames.REMAINING: "x-ratelimit-remaining",
    HeaderNames.RESET: "x-ratelimit-reset",
    HeaderNames.RETRY_AFTER: "Retry-After",
}


def _bucket() -> str:
    """Counts per API key (by its hash); a request without one is counted by its address."""
    key = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return "addr:" + (request.remote_addr or "unknown")


def _exempt() -> bool:
    return not (request.path == "/v1" or request.path.startswith("/v1/"))


def install(app: Flask, settings: Settings) -> Limiter | None:
    """Limits ``/v1`` requests per key when ``INFERQ_RATE_LIMIT`` is set; does nothing otherwise.

    A Redis outage does not turn into errors from the limiter (it stops
    counting); the requests themselves then answer 503.
    """
    if not settings.rate_limit:
        return None
    storage_uri, storage_options = limiter_storage(settings)
    return Limiter(
        key_func=_bucket,
        app=app,
        default_limits=[settings.rate_limit],
        default_limits_exempt_when=_exempt,
        headers_enabled=True,
        header_name_mapping=HEADERS,
        strategy="fixed-window",
        storage_uri=storage_uri,
        storage_options=storage_options,
        key_prefix=keys.rate_limit_prefix(),
        swallow_errors=True,
        retry_after="delta-seconds",
    )
