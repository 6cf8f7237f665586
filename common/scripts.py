"""The store's Lua scripts: loaded once per client, run with the keys every one of them may touch.

Each script is ``common/lua/prelude.lua`` (shared helpers) followed by its own
file. Every script gets the same leading keys and arguments, so any of them can
end a prediction the same way (publish the news, close the event log, snapshot
the webhook, count the metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis

from common import keys
from common.config import Settings
from common.stats import BUCKETS

NAMES = ("create", "claim", "started", "renew", "finish", "cancel", "release", "expire", "requeue")
"""The scripts in ``common/lua``, besides the prelude."""


def load(name: str) -> str:
    """The source of script ``name``, prelude included."""
    lua = resources.files("common").joinpath("lua")
    prelude = lua.joinpath("prelude.lua").read_text().replace("{{BUCKETS}}", ", ".join(map(str, BUCKETS)))
    return prelude + "\n" + lua.joinpath(f"{name}.lua").read_text()


class Scripts:
    """Runs the store's scripts on one client: ``scripts("claim", prediction_id, *args)``."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.settings = settings
        self._scripts = {name: client.register_script(load(name)) for name in NAMES}

    def __call__(
        self,
        script: str,
        prediction_id: str,
        *args: Any,
        extra_keys: Sequence[str] = (),
        client: redis.client.Pipeline | None = None,
    ) -> Any:
        """Runs ``script`` on ``prediction_id`` (queued on ``client`` when it is a pipeline)."""
        script_keys = [
            keys.prediction(prediction_id),
            keys.pending(),
            keys.leases(),
            keys.prediction_logs(prediction_id),
            keys.prediction_events(prediction_id),
            keys.webhook_outbox(prediction_id),
            keys.webhooks_due(),
            keys.finished_counts(),
            keys.duration_histogram("wait"),
            keys.duration_histogram("run"),
            *extra_keys,
        ]
        argv = [
            prediction_id,
            keys.updates_channel(),
            keys.cancel_channel(),
            int(self.settings.retention),
            *args,
        ]
        return self._scripts[script](keys=script_keys, args=argv, client=client)
