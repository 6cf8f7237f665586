"""``/files/<name>``: generated files behind signed, expiring links (no API key needed).

Outside ``/v1``, so no link can be mistaken for an uploaded file (``/v1/files/{file_id}``,
``api.views.files``): each route reads only its own storage.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from api.blueprint import Blueprint
from api.schemas.errors import ErrorBodySchema
from api.schemas.files import FileLinkQuerySchema
from api.services import services
from common.storage import content_type

blp = Blueprint("links", __name__, description="Generated files, behind signed links")


@blp.route("/files/<name>", methods=["GET"])
@blp.arguments(FileLinkQuerySchema, location="query")
@blp.response(200, description="The file")
@blp.alt_response(403, schema=ErrorBodySchema, description="The link's signature does not match.")
@blp.alt_response(404, schema=ErrorBodySchema, description="The file is gone (past the retention window).")
@blp.alt_response(410, schema=ErrorBodySchema, description="The link has expired.")
def get_file(query: dict[str, Any], name: str) -> Response:
    """Fetch a generated file through the signed link an endpoint returned."""
    found = services()
    found.signer.verify(name, query["expires"], query["signature"])
    return Response(
        found.storage.get(name), mimetype=content_type(name), headers={"Cache-Control": "private"}
    )
