"""The prediction store's owner index, on fakeredis: pages newest first, by status, past expiry."""

import fakeredis
import pytest

from common.records import Prediction, Status
from common.store import keys, listing
from common.store.predictions import PredictionStore
from tests.unit.stores import new


@pytest.fixture
def six(store: PredictionStore) -> list[str]:
    """Six of alice's predictions, oldest first (and one of bob's)."""
    made = [new(store).id for _ in range(6)]
    new(store, owner="bob")
    return made


def ids(page: tuple[list[Prediction], bool]) -> tuple[list[str], bool]:
    return [p.id for p in page[0]], page[1]


def test_page_newest_first_with_limits(store: PredictionStore, six: list[str]) -> None:
    assert ids(store.index.page("alice", limit=10)) == (six[::-1], False)
    assert ids(store.index.page("alice", limit=6)) == (six[::-1], False)
    assert ids(store.index.page("alice", limit=2)) == ([six[5], six[4]], True)
    assert ids(store.index.page("carol", limit=2)) == ([], False)


def test_page_older_than(store: PredictionStore, six: list[str]) -> None:
    assert ids(store.index.page("alice", limit=2, older_than=six[4])) == ([six[3], six[2]], True)
    assert ids(store.index.page("alice", limit=2, older_than=six[1])) == ([six[0]], False)
    assert ids(store.index.page("alice", limit=2, older_than=six[0])) == ([], False)


def test_page_newer_than(store: PredictionStore, six: list[str]) -> None:
    assert ids(store.index.page("alice", limit=2, newer_than=six[1])) == ([six[3], six[2]], True)
    assert ids(store.index.page("alice", limit=2, newer_than=six[3])) == ([six[5], six[4]], False)
    assert ids(store.index.page("alice", limit=2, newer_than=six[5])) == ([], False)


@pytest.mark.parametrize("chunk", [2, 100])
def test_page_filters_by_status(
    store: PredictionStore, six: list[str], monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(listing, "SCAN_CHUNK", chunk)
    for prediction_id in (six[0], six[2], six[3]):
        store.claim(prediction_id, "t", ready=True)
    store.finish(six[2], "t", Status.SUCCEEDED)
    assert ids(store.index.page("alice", limit=5, statuses={Status.STARTED})) == ([six[3], six[0]], False)
    assert ids(store.index.page("alice", limit=1, statuses={Status.STARTED})) == ([six[3]], True)
    both = {Status.SUCCEEDED, Status.PENDING}
    assert ids(store.index.page("alice", limit=2, statuses=both, older_than=six[5])) == (
        [six[4], six[2]],
        True,
    )
    assert ids(store.index.page("alice", limit=9, statuses={Status.FAILED})) == ([], False)


@pytest.mark.parametrize("chunk", [2, 100])
def test_page_skips_and_unindexes_expired_records(
    store: PredictionStore, client: fakeredis.FakeRedis, six: list[str], monkeypatch: pytest.MonkeyPatch,
    chunk: int,
) -> None:  # fmt: skip
    monkeypatch.setattr(listing, "SCAN_CHUNK", chunk)
    client.delete(keys.prediction(six[4]), keys.prediction(six[3]))
    assert ids(store.index.page("alice", limit=3)) == ([six[5], six[2], six[1]], True)
    assert client.zscore(keys.owner_predictions("alice"), six[4]) is None
    assert client.zscore(keys.owner_predictions("alice"), six[3]) is None
    assert client.zcard(keys.owner_predictions("alice")) == 4


def test_creating_drops_the_oldest_expired_entries_a_few_at_a_time(
    store: PredictionStore, client: fakeredis.FakeRedis, six: list[str]
) -> None:
    index = keys.owner_predictions("alice")
    client.delete(*(keys.prediction(prediction_id) for prediction_id in six[:5]))  # expired, never listed
    fresh = new(store).id
    assert client.zrange(index, 0, -1) == [six[4], six[5], fresh]  # at most four dropped per create
    newer = new(store).id
    assert client.zrange(index, 0, -1) == [six[5], fresh, newer]

    client.delete(keys.prediction(fresh))  # behind a live one: left for later (or for a listing)
    latest = new(store).id
    assert client.zrange(index, 0, -1) == [six[5], fresh, newer, latest]
    assert client.zcard(keys.owner_predictions("bob")) == 1
