"""``/healthz``: the process is up (no auth)."""

from __future__ import annotations

from api.blueprint import Blueprint

blp = Blueprint("health", __name__, description="Health")


@blp.route("/healthz", methods=["GET"])
@blp.response(200)
def healthz() -> dict[str, str]:
    """The API process is alive."""
    return {"status": "ok"}
