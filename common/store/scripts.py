"""The store's Lua scripts: loaded once per client, run with the keys every one of them may touch.

Each script is ``common/store/lua/prelude.lua`` and the other shared helpers
(``INCLUDES``) followed by its own file. Every script gets the same leading keys
and arguments, so any of them can end a prediction the same way (publish the
news, close the event log, snapshot the webhook, count the metrics, free a turn).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from common.config import Settings
from common.connections.masters import (
    REPLICAS_ACK_TIMEOUT_MS,
    SLOW_WRITE,
    ReplicasBehind,
    confirm_master,
    follow_master,
)
from common.store import keys
from common.store.stats import BUCKETS

Call = tuple[str, str, Sequence[Any]]
"""One script run for :meth:`Scripts.many`: ``(script, prediction_id, args)``."""

NAMES = (
    "create",
    "claim",
    "next",
    "park",
    "unpark",
    "started",
    "renew",
    "emit",
    "finish",
    "cancel",
    "release",
    "expire",
    "withdraw",
)
"""The scripts in ``common/store/lua``, besides the shared helpers."""

ACKED = frozenset({"create", "claim", "next", "finish", "cancel", "release", "expire"})
"""The scripts that accept, claim or end a prediction: with ``INFERQ_REDIS_REPLICAS_ACK`` set,
they count only once that many replicas have them, so a failover cannot undo them (a lost claim
would let the prediction run twice; a lost create or ending would lose it)."""

INCLUDES = ("prelude", "schedule", "ending", "claiming")
"""The shared helpers every script begins with, in order (each may use those before it)."""


def load(name: str) -> str:
    """The source of script ``name``, shared helpers included."""
    lua = resources.files("common.store").joinpath("lua")
    values = {
        "{{BUCKETS}}": ", ".join(map(str, BUCKETS)),
        "{{SCHEDULE}}": keys.schedule(),
        "{{BATCH_PREFIX}}": keys.batch_prefix(),
        "{{BATCHES_OPEN}}": keys.batches_open(),
        "{{BATCH_LINES}}": keys.batch_line_counts(),
    }
    parts = []
    for part in (*INCLUDES, name):
        text = lua.joinpath(f"{part}.lua").read_text()
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        parts.append(text)
    return "\n".join(parts)


class Scripts:
    """Runs the store's scripts on one client: ``scripts("claim", prediction_id, *args)``."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.settings = settings
        self._client = client
        self._scripts = {name: client.register_script(load(name)) for name in NAMES}
        self._ack = settings.redis_replicas_ack

    def __call__(self, script: str, prediction_id: str, *args: Any, extra_keys: Sequence[str] = ()) -> Any:
        """Runs ``script`` on ``prediction_id``, loading it first if Redis has lost it (a restart).

        (This is redis-py's ``Script.__call__`` without its per-call import, which
        costs as much Python time as the rest of the call.)
        """
        script_keys = self._keys(prediction_id, extra_keys)
        argv = [*script_keys, *self._argv(prediction_id, args)]
        registered = self._scripts[script]
        command = ("EVALSHA", registered.sha, len(script_keys), *argv)
        try:
            return self._execute(command, acked=script in ACKED)
        except NoScriptError:
            self._client.script_load(registered.script)
            return self._execute(command, acked=script in ACKED)

    def _execute(self, command: tuple[Any, ...], *, acked: bool) -> Any:
        """Runs one command; one that must reach replicas is followed by ``WAIT`` on its connection
        (a pipeline sends both on one)."""
        if not (acked and self._ack):
            return self._client.execute_command(*command)
        pipe = self._client.pipeline(transaction=False)
        pipe.execute_command(*command)
        pipe.execute_command("WAIT", self._ack, REPLICAS_ACK_TIMEOUT_MS)
        sent = time.monotonic()
        result, replicas = pipe.execute(raise_on_error=False)
        if isinstance(result, Exception):
            raise result
        self._check_replicas(replicas, sent)
        return result

    def _check_replicas(self, replicas: Any, sent: float) -> None:
        """Raises :class:`ReplicasBehind` unless the write sent at ``sent`` (monotonic) counts:
        enough replicas have it and, when it took over ``SLOW_WRITE``, its server is still master."""
        if isinstance(replicas, Exception):
            raise replicas
        if int(replicas) < self._ack:
            follow_master(self._client)
            raise ReplicasBehind(int(replicas), self._ack)
        if time.monotonic() - sent > SLOW_WRITE:
            confirm_master(self._client, int(replicas), self._ack)

    def many(self, calls: Sequence[Call], extra_keys: Sequence[str] = ()) -> list[Any]:
        """Runs several scripts in one round trip: a pipeline of ``EVALSHA``, each given
        ``extra_keys`` after the standard ones.

        (redis-py's own pipelined scripts would first ask ``SCRIPT EXISTS`` on
        every execute, a second round trip.) A call that finds its script gone
        from Redis (``NOSCRIPT``, after a restart) did not run, and is run again
        on its own, which loads it. A single call skips the pipeline. With
        ``INFERQ_REDIS_REPLICAS_ACK``, one ``WAIT`` at the end covers them all.
        """
        if len(calls) == 1:
            script, prediction_id, args = calls[0]
            return [self(script, prediction_id, *args, extra_keys=extra_keys)]
        pipe = self._client.pipeline(transaction=False)
        for script, prediction_id, args in calls:
            script_keys = self._keys(prediction_id, extra_keys)
            pipe.evalsha(
                self._scripts[script].sha, len(script_keys), *script_keys, *self._argv(prediction_id, args)
            )
        acked = bool(self._ack) and any(script in ACKED for script, _, _ in calls)
        if acked:
            pipe.execute_command("WAIT", self._ack, REPLICAS_ACK_TIMEOUT_MS)
        sent = time.monotonic()
        results: list[Any] = pipe.execute(raise_on_error=False)
        if acked:
            self._check_replicas(results.pop(), sent)
        for i, result in enumerate(results):
            if isinstance(result, NoScriptError):
                script, prediction_id, args = calls[i]
                results[i] = self(script, prediction_id, *args, extra_keys=extra_keys)
            elif isinstance(result, Exception):
                raise result
        return results

    @staticmethod
    def _keys(prediction_id: str, extra_keys: Sequence[str]) -> list[str]:
        return [
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
            keys.unfinished_counts(),
            keys.schedule(),
            keys.schedule_parked_queues(),
            *extra_keys,
        ]

    def _argv(self, prediction_id: str, args: Sequence[Any]) -> list[Any]:
        return [
            prediction_id,
            keys.updates_channel(),
            keys.cancel_channel(),
            int(self.settings.retention),
            keys.progress_channel(),
            *args,
        ]
