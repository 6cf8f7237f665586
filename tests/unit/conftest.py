"""Fixtures of the store's unit tests: fakeredis and a store on it."""

from collections.abc import Callable, Iterator

import fakeredis
import pytest

from common.config import Settings
from common.store import keys
from common.store.notifier import split_news
from common.store.predictions import PredictionStore


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def store(client: fakeredis.FakeRedis) -> PredictionStore:
    return PredictionStore(client, Settings.defaults())


@pytest.fixture
def updates(client: fakeredis.FakeRedis) -> Iterator[Callable[[], list[str]]]:
    """Returns the news published on the updates and progress channels since the last call,
    as ``<id> <note>`` (without the record an ending's news carries)."""
    pubsub = client.pubsub()
    pubsub.subscribe(keys.updates_channel(), keys.progress_channel())
    for _ in range(2):
        assert pubsub.get_message(timeout=1)["type"] == "subscribe"

    def published() -> list[str]:
        messages = []
        while (message := pubsub.get_message(timeout=0)) is not None:
            prediction_id, note, _ = split_news(message["data"])
            messages.append(f"{prediction_id} {note}")
        return messages

    yield published
    pubsub.close()
