"""Files: the query of ``GET /files/<name>`` (a signed link's expiry and signature), and OpenAI's
file objects, lists and queries under ``/v1/files``."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class FileLinkQuerySchema(Schema):
    """What a link returned by an endpoint carries; a missing or garbled one is refused (403)."""

    expires = fields.String(
        load_default=None, metadata={"description": "Unix seconds the link is valid until"}
    )
    signature = fields.String(
        load_default=None, metadata={"description": "Hex HMAC-SHA256 of name and expiry"}
    )


class FileObjectSchema(Schema):
    """OpenAI's file object (``status`` is deprecated there but required by its clients)."""

    id = fields.String(metadata={"description": "`file-` and 32 hex digits"})
    object = fields.Constant("file")
    bytes = fields.Integer()
    created_at = fields.Integer(metadata={"description": "Unix seconds"})
    expires_at = fields.Integer(
        allow_none=True, metadata={"description": "Unix seconds it is deleted at; null: kept until deleted"}
    )
    filename = fields.String()
    purpose = fields.String()
    status = fields.String(metadata={"enum": ["processed"]})
    status_details = fields.String(allow_none=True)


class FileListSchema(Schema):
    """``GET /v1/files``: OpenAI's list of file objects."""

    object = fields.Constant("list")
    data = fields.List(fields.Nested(FileObjectSchema))
    first_id = fields.String(allow_none=True)
    last_id = fields.String(allow_none=True)
    has_more = fields.Boolean()


class FileDeletedSchema(Schema):
    """What ``DELETE /v1/files/{file_id}`` answers."""

    id = fields.String()
    object = fields.Constant("file")
    deleted = fields.Boolean()


class ListFilesQuerySchema(Schema):
    """Query of ``GET /v1/files``, as OpenAI takes it."""

    purpose = fields.String(
        load_default=None,
        validate=validate.Length(max=64),
        metadata={"description": "Only files of this purpose"},
    )
    limit = fields.Integer(load_default=10_000, validate=validate.Range(min=1, max=10_000))
    after = fields.String(
        load_default=None,
        validate=validate.Length(max=64),
        metadata={"description": "A file id: the page starts after it, in `order`"},
    )
    order = fields.String(load_default="desc", validate=validate.OneOf(["asc", "desc"]))
