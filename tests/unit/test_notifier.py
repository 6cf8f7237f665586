"""The notifier: one subscription relaying news of predictions to the waiters registered for them."""

import time
from collections.abc import Iterator
from typing import Any, cast

import fakeredis
import pytest
import redis

from common.store.notifier import LISTEN_TIMEOUT, Notifier, split_news

CHANNEL = "news"


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def notifier(client: fakeredis.FakeRedis) -> Iterator[Notifier]:
    notifier = Notifier(client, CHANNEL)
    yield notifier
    notifier.stop()


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("p1", ("p1", "", "")),
        ("p1 event", ("p1", "event", "")),
        ('p1 succeeded {"id": "p1", "logs": "a b"}', ("p1", "succeeded", '{"id": "p1", "logs": "a b"}')),
    ],
)
def test_split_news(message: str, parts: tuple[str, str, str]) -> None:
    assert split_news(message) == parts


def test_a_waiter_hears_the_note_and_data_of_its_own_prediction(
    notifier: Notifier, client: fakeredis.FakeRedis
) -> None:
    with notifier.watch("p1") as mine, notifier.watch("p2") as other:
        deadline = time.monotonic() + 5
        while not mine.event.wait(0.05):  # until the listener has subscribed
            assert time.monotonic() < deadline
            client.publish(CHANNEL, "p1 ping")
        time.sleep(0.1)  # let the last pings arrive
        mine.event.clear()
        other.event.clear()
        client.publish(CHANNEL, 'p1 succeeded {"id": "p1"}')
        assert mine.event.wait(5)
        assert (mine.note, mine.data) == ("succeeded", '{"id": "p1"}')
        mine.event.clear()
        client.publish(CHANNEL, "p1 event")
        assert mine.event.wait(5)
        assert (mine.note, mine.data) == ("event", None)
        assert not other.event.is_set()


def test_the_first_watcher_is_registered_before_the_listener_starts_and_woken_once_it_listens(
    client: fakeredis.FakeRedis,
) -> None:
    registered_at_start: list[set[str]] = []

    class Recording(Notifier):
        def start(self) -> None:
            with self._lock:
                registered_at_start.append(set(self._watchers))
            super().start()

    notifier = Recording(client, CHANNEL)
    try:
        with notifier.watch("p1") as first:
            assert registered_at_start == [{"p1"}]
            # Woken with no note once subscribed, so it re-reads whatever was published before.
            assert first.event.wait(5)
            assert first.note is None
    finally:
        notifier.stop()


def test_on_a_real_redis_silence_is_no_error_and_stop_is_prompt(redis_client: redis.Redis) -> None:
    """A read that times out (a second of silence) keeps the subscription: no reconnect, no
    wake-everyone; news after the silence is heard, and a stop ends the listener within a read."""
    notifier = Notifier(redis_client, CHANNEL)
    with notifier.watch("p1") as watcher:
        assert watcher.event.wait(5) and watcher.note is None  # subscribed
        watcher.event.clear()
        time.sleep(LISTEN_TIMEOUT * 2.5)
        assert not watcher.event.is_set()  # silence woke no one
        redis_client.publish(CHANNEL, "p1 succeeded")
        assert watcher.event.wait(5) and watcher.note == "succeeded"
    stopping = time.monotonic()
    notifier.stop(wait=True)
    assert time.monotonic() - stopping < LISTEN_TIMEOUT + 2


class FailingSubscriptions:
    """A client whose next subscriptions fail with ``errors``, one each."""

    def __init__(self, client: fakeredis.FakeRedis, errors: list[Exception]) -> None:
        self.client = client
        self.errors = errors

    def pubsub(self, **kwargs: Any) -> Any:
        pubsub = self.client.pubsub(**kwargs)
        if self.errors:
            error = self.errors.pop(0)

            def subscribe(*args: Any, **kwargs: Any) -> None:
                raise error

            pubsub.subscribe = subscribe
        return pubsub


def test_the_listener_outlives_any_redis_error_and_subscribes_again(client: fakeredis.FakeRedis) -> None:
    errors: list[Exception] = [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script."),
    ]
    notifier = Notifier(cast(redis.Redis, FailingSubscriptions(client, errors)), CHANNEL)
    try:
        with notifier.watch("p1") as watcher:
            deadline = time.monotonic() + 30
            while not (watcher.event.wait(0.05) and watcher.note == "ping"):
                assert time.monotonic() < deadline, "the listener never subscribed again"
                watcher.event.clear()
                client.publish(CHANNEL, "p1 ping")
            assert not errors
    finally:
        notifier.stop()
