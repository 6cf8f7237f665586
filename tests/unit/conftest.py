"""Fixtures of the store's unit tests: fakeredis and a store on it."""

from collections.abc import Callable, Iterator

import fakeredis
import pytest

from common import keys
from common.config import Settings
from common.store import PredictionStore


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def store(client: fakeredis.FakeRedis) -> PredictionStore:
    return PredictionStore(client, Settings.defaults())


@pytest.fixture
def updates(client: fakeredis.FakeRedis) -> Iterator[Callable[[], list[str]]]:
    """Returns what was published on the updates channel since the last call."""
    pubsub = client.pubsub()
    pubsub.subscribe(keys.updates_channel())
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"

    def published() -> list[str]:
        messages = []
        while (message := pubsub.get_message(timeout=0)) is not None:
            messages.append(message["data"])
        return messages

    yield published
    pubsub.close()
