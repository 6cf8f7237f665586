"""``/files/<name>``: generated files behind signed, expiring links (no API key needed)."""

from __future__ import annotations

from flask import Response, request

from api.blueprint import Blueprint
from api.services import services
from common.storage import content_type

blp = Blueprint("files", __name__, description="Generated files, behind signed links")


@blp.route("/files/<name>", methods=["GET"])
@blp.response(200, description="The file")
def get_file(name: str) -> Response:
    """Fetch a generated file through the signed link an endpoint returned."""
    found = services()
    found.signer.verify(name, request.args.get("expires"), request.args.get("signature"))
    return Response(
        found.storage.get(name), mimetype=content_type(name), headers={"Cache-Control": "private"}
    )
