"""Signed, expiring links to stored files: fetchable without an API key, unforgeable, short-lived."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from common.errors import LinkExpired, LinkInvalid


def derive_key(api_keys: Iterable[str]) -> bytes:
    """A signing key derived from the configured API keys (secret, and equal in every API process)."""
    material = "\0".join(sorted(api_keys)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(b"inferq file links\0" + material).digest()


class UrlSigner:
    """Signs ``name`` with an expiry: ``expires=<unix>&signature=<hex HMAC-SHA256>``."""

    def __init__(self, key: bytes, ttl: float) -> None:
        self._key = key
        self.ttl = ttl

    def _signature(self, name: str, expires: int) -> str:
        return hmac.new(self._key, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, name: str, now: float | None = None) -> dict[str, str]:
        """The query parameters that make a link to ``name`` valid for ``ttl`` seconds."""
        expires = int((time.time() if now is None else now) + self.ttl)
        return {"expires": str(expires), "signature": self._signature(name, expires)}

    def verify(self, name: str, expires: str | None, signature: str | None, now: float | None = None) -> None:
        """Checks a link.

        Raises:
            LinkInvalid: The signature does not match (tampered with, or made with another key).
            LinkExpired: It was valid, but its time is up.
        """
        try:
            moment = int(expires or "")
        except ValueError:
            raise LinkInvalid("This file link is invalid") from None
        given = (signature or "").encode("utf-8", "surrogatepass")  # compare_digest refuses non-ASCII str
        if not given or not hmac.compare_digest(self._signature(name, moment).encode(), given):
            raise LinkInvalid("This file link is invalid")
        if moment < (time.time() if now is None else now):
            raise LinkExpired("This file link has expired")
