"""``/v1/queues``: the model queues' figures, as the scheduler keeps them."""

from __future__ import annotations

from typing import Any

from flask import g

from api import queues
from api.blueprint import Blueprint
from api.schemas.queues import QueueListSchema
from api.services import services

blp = Blueprint("queues", __name__, url_prefix="/v1", description="Queues")


@blp.route("/queues", methods=["GET"])
@blp.response(200, QueueListSchema)
def list_queues() -> Any:
    """List every model queue: waiting and running predictions by priority class, the oldest
    wait, live worker processes, and the caller's own share (inferq extension)."""
    return queues.list_queues(services(), g.owner)
