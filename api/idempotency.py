"""The ``Idempotency-Key`` request header, as in the IETF httpapi draft and Stripe.

A create sent with a key makes one prediction; the same key from the same
owner within ``IDEMPOTENCY_TTL`` answers with that prediction (or, on the
OpenAI routes, waits on it) instead of making another, so a retried request
never duplicates work. The key's mapping is written by the create script
itself, so two concurrent requests with one key make one prediction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from common.errors import IdempotencyKeyInvalid
from common.store.predictions import Idempotency

HEADER = "Idempotency-Key"
"""The request header naming a create."""

MAX_LENGTH = 255
"""Characters a key may have, at most."""


def parse(value: str | None, path: str, body: Mapping[str, Any]) -> Idempotency | None:
    """The key in header ``value`` (None without one), with the fingerprint of the request it names.

    The fingerprint is a SHA-256 of the route and the loaded body (its keys sorted),
    so the same request reads the same however its JSON was spelled, and a key
    reused on another route or with another body is told apart.

    Raises:
        IdempotencyKeyInvalid: An empty key, or one over ``MAX_LENGTH`` characters (400).
    """
    if value is None:
        return None
    if not value or len(value) > MAX_LENGTH:
        raise IdempotencyKeyInvalid(
            f"{HEADER} must be 1 to {MAX_LENGTH} characters long, not {len(value)}", param=HEADER
        )
    canonical = json.dumps([path, body], sort_keys=True, separators=(",", ":"), default=str)
    return Idempotency(value, hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest())


DOC = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
    "description": (
        "Makes a retried create safe: the same key from the same owner within 24 hours answers "
        "with the prediction the first request made (or waits on it) instead of making another. "
        "The same key with a different request is a 422; a key over 255 characters a 400."
    ),
}
"""The header as the OpenAPI document describes it on every create."""
