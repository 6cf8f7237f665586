"""``/v1/files``: OpenAI's Files API (upload, list, get, content, delete), per API key.

Signed links to generated images are served elsewhere (``/files/<name>``, ``api.views.links``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, request

from api import files
from api.blueprint import Blueprint
from api.schemas.files import FileDeletedSchema, FileListSchema, FileObjectSchema, ListFilesQuerySchema
from api.services import services
from common.storage import CONTENT_TYPES, content_type

blp = Blueprint("files", __name__, url_prefix="/v1", description="OpenAI-compatible files")

UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "purpose"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "The file, with its name"},
                    "purpose": {"type": "string", "enum": list(files.UPLOADABLE)},
                    "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
                    "expires_after[seconds]": {
                        "type": "integer",
                        "minimum": files.EXPIRES_MIN,
                        "maximum": files.EXPIRES_MAX,
                    },
                },
            }
        }
    },
}
"""The upload's multipart body, documented by hand: it is read by ``api.files``, not a schema, so
that its refusals are OpenAI's ``400``s and the file is never loaded into memory to validate it."""

CONTENT = {
    media_type: {"schema": {"type": "string", "format": "binary"}}
    for media_type in sorted({*CONTENT_TYPES.values(), "application/octet-stream"})
}
"""The content types a file is served with, by its name's extension."""


@blp.route("/files", methods=["POST"])
@blp.doc(requestBody=UPLOAD_BODY)
@blp.response(200, FileObjectSchema)
def create_file() -> Any:
    """Upload a file (multipart: `file`, `purpose`, optional `expires_after[anchor]`/`[seconds]`).

    A `batch` file must be UTF-8 JSONL, each non-empty line a JSON object, at most
    `INFERQ_MAX_FILE_LINES` of them; it expires after 30 days unless `expires_after` says otherwise.
    """
    found = services()
    files.allow_upload(request, found)
    return files.upload(found, g.owner, request).to_wire()


@blp.route("/files", methods=["GET"])
@blp.arguments(ListFilesQuerySchema, location="query")
@blp.response(200, FileListSchema)
def list_files(query: dict[str, Any]) -> Any:
    """List your files (newest first by default), optionally of one purpose."""
    return files.page(services(), g.owner, query)


@blp.route("/files/<file_id>", methods=["GET"])
@blp.response(200, FileObjectSchema)
def get_file(file_id: str) -> Any:
    """Get one of your files' object."""
    return services().files.get_owned(file_id, g.owner).to_wire()


@blp.route("/files/<file_id>/content", methods=["GET"])
@blp.response(200, description="The file's bytes, as uploaded", content_type="application/octet-stream")
@blp.doc(responses={"200": {"description": "The file's bytes, as uploaded", "content": CONTENT}})
def get_file_content(file_id: str) -> Response:
    """Download one of your files."""
    found = services()
    file = found.files.get_owned(file_id, g.owner)
    return Response(found.files.content(file), mimetype=content_type(file.filename))


@blp.route("/files/<file_id>", methods=["DELETE"])
@blp.response(200, FileDeletedSchema)
def delete_file(file_id: str) -> Any:
    """Delete one of your files (its bytes and its object)."""
    services().files.delete(file_id, g.owner)
    return {"id": file_id, "object": "file", "deleted": True}
