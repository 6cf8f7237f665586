"""Opaque cursors for the strict ``{items, next_cursor, previous_cursor}`` lists."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from common.errors import RequestValidationError
from common.ids import is_prediction_id

OLDER = "o"
NEWER = "n"


@dataclass(frozen=True)
class Cursor:
    """A position in a newest-first list: the items older (or newer) than ``boundary``."""

    direction: str
    boundary: str

    def encode(self) -> str:
        """The opaque string handed to clients."""
        return base64.urlsafe_b64encode(f"{self.direction}:{self.boundary}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Reads a cursor back.

        Raises:
            RequestValidationError: When ``text`` is not a cursor inferq made (422).
        """
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raw = ""
        direction, _, boundary = raw.partition(":")
        if direction not in (OLDER, NEWER) or not is_prediction_id(boundary):
            raise RequestValidationError.single(["query", "cursor"], "Invalid cursor", "value_error")
        return cls(direction, boundary)
