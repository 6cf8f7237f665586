"""Bearer-key authentication: each configured key maps to the owner it acts for."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from common.errors import Unauthorized


class KeyRing:
    """Looks keys up by their SHA-256, so the comparison time tells nothing about the keys."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._owners = {self._digest(key): owner for key, owner in keys.items()}

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()

    def owner(self, authorization: str | None) -> str:
        """The owner of the key in an ``Authorization: Bearer <key>`` header.

        Raises:
            Unauthorized: When the header is missing, malformed, or names no configured key.
        """
        if not authorization:
            raise Unauthorized("Missing Authorization header; send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("The Authorization header must be 'Bearer <key>'")
        owner = self._owners.get(self._digest(key.strip()))
        if owner is None:
            raise Unauthorized("Invalid API key")
        return owner
