"""The query of ``GET /files/<name>``: the signed link's expiry and signature."""

from __future__ import annotations

from marshmallow import Schema, fields


class FileLinkQuerySchema(Schema):
    """What a link returned by an endpoint carries; a missing or garbled one is refused (403)."""

    expires = fields.String(
        load_default=None, metadata={"description": "Unix seconds the link is valid until"}
    )
    signature = fields.String(
        load_default=None, metadata={"description": "Hex HMAC-SHA256 of name and expiry"}
    )
