"""The webhook outbox on fakeredis: a prediction stays due only while snapshots wait in its outbox."""

from __future__ import annotations

import fakeredis

from common.store import keys
from common.store.outbox import Outbox
from common.store.predictions import PredictionStore
from tests.unit.stores import new


def test_a_due_prediction_whose_outbox_is_gone_is_dropped(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    outbox = Outbox(client)
    kept, expired = new(store, webhook={"url": "http://hook"}), new(store, webhook={"url": "http://hook"})
    assert set(outbox.due(now=2e9)) == {kept.id, expired.id}
    client.hset(keys.webhook_attempts(expired.id), "count", 3)
    client.delete(keys.webhook_outbox(expired.id))  # expired with its record

    assert not outbox.drop_if_empty(kept.id)  # snapshots still wait: still due
    assert outbox.drop_if_empty(expired.id)
    assert outbox.due(now=2e9) == [kept.id]
    assert not client.exists(keys.webhook_attempts(expired.id))
    assert not outbox.drop_if_empty(expired.id)  # nothing left to drop
