"""Batches in Redis (``common.store.batches``): parts' outcomes recorded by their terminal writes."""

import json
import time

import fakeredis
import pytest

from common.records import Priority, Status
from common.store import keys
from common.store.batches import Batch, BatchStatus, BatchStore, Line, Part, new_batch_id
from common.store.predictions import ClaimOutcome, PredictionStore
from tests.unit.stores import new


@pytest.fixture
def batches(client: fakeredis.FakeRedis) -> BatchStore:
    return BatchStore(client, 3600)


def open_batch(
    batches: BatchStore, store: PredictionStore, lines_per_part: list[int]
) -> tuple[Batch, list[str]]:
    batch = Batch(new_batch_id(), "alice", BatchStatus.VALIDATING, "/v1/predictions", "file-1")
    batch.times = {"created_at": int(time.time()), "expires_at": int(time.time()) + 3600}
    made = [
        new(store, "alice", priority=Priority.BATCH, batch_part=f"{batch.id} {number} {lines}")
        for number, lines in enumerate(lines_per_part)
    ]
    plan = [
        Part(p.id, [Line(f"c{n}-{i}", i + 1) for i in range(k)])
        for n, (p, k) in enumerate(zip(made, lines_per_part, strict=True))
    ]
    batches.add(batch, due=time.time() + 7200)  # as its validator postpones it
    assert batches.plan_parts(batch.id, plan, sum(lines_per_part))
    assert batches.started(batch.id, time.time() + 3600)
    return batch, [p.id for p in made]


def test_each_part_is_recorded_once_and_its_lines_counted(
    batches: BatchStore, store: PredictionStore
) -> None:
    batch, (first, second, third) = open_batch(batches, store, [3, 2, 1])
    assert store.claim(first, "t1", ready=True).outcome is ClaimOutcome.CLAIMED
    assert store.finish(first, "t1", Status.SUCCEEDED, output={"ok": 1})
    assert not store.finish(first, "t1", Status.FAILED)  # a second terminal write changes nothing
    assert store.claim(second, "t2", ready=True).outcome is ClaimOutcome.CLAIMED
    store.finish(second, "t2", Status.FAILED)
    found = batches.get(batch.id)
    assert found is not None and (found.status, found.completed, found.failed, found.ended) == (
        BatchStatus.IN_PROGRESS,
        3,
        2,
        2,
    )
    assert batches.due(time.time()) == []

    store.request_cancel(third, "alice")  # cancelled while queued: its line counts neither way
    found = batches.get(batch.id)
    assert found is not None and (found.completed, found.failed, found.ended) == (3, 2, 3)
    assert batches.due(time.time()) == [batch.id]  # every part ended: due for its files
    results = batches.results(batch.id)
    assert {n: r["status"] for n, r in results.items()} == {0: "succeeded", 1: "failed", 2: "cancelled"}
    assert results[0]["output"] == '{"ok": 1}'


def test_a_part_of_a_batch_that_is_gone_records_nothing(
    batches: BatchStore, store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    batch, (only,) = open_batch(batches, store, [1])
    client.delete(keys.batch(batch.id))
    store.request_cancel(only, "alice")
    assert client.exists(keys.batch_results(batch.id)) == 0


def test_status_moves_by_compare_and_set(batches: BatchStore, store: PredictionStore) -> None:
    batch, _ = open_batch(batches, store, [1])
    assert batches.move(batch.id, [BatchStatus.IN_PROGRESS], BatchStatus.CANCELLING, cancelling_at=5)
    assert not batches.move(batch.id, [BatchStatus.IN_PROGRESS], BatchStatus.FINALIZING)
    found = batches.get(batch.id)
    assert found is not None and found.status is BatchStatus.CANCELLING and found.times["cancelling_at"] == 5


def test_pages_are_newest_first_and_per_owner(batches: BatchStore, store: PredictionStore) -> None:
    made = [open_batch(batches, store, [1])[0].id for _ in range(3)]
    page, more = batches.page("alice", limit=2, after=None)
    assert [b.id for b in page] == made[::-1][:2] and more
    page, more = batches.page("alice", limit=2, after=page[-1].id)
    assert [b.id for b in page] == [made[0]] and not more
    assert batches.page("bob", limit=5, after=None) == ([], False)


def test_ids_sort_by_creation() -> None:
    first = new_batch_id()
    time.sleep(0.002)
    assert first < new_batch_id()


def webhook_news(client: fakeredis.FakeRedis, batch_id: str) -> tuple[list[str], float | None]:
    """The snapshots waiting in the batch's webhook outbox, and when it is due."""
    return client.lrange(keys.webhook_outbox(batch_id), 0, -1), client.zscore(keys.webhooks_due(), batch_id)


def test_a_batch_with_a_webhook_queues_it_once_as_it_ends(
    batches: BatchStore, store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    batch, _ = open_batch(batches, store, [1])
    client.hset(keys.batch(batch.id), "webhook", '{"url": "https://example.com/hook", "secret": null}')
    batches.move(batch.id, [BatchStatus.IN_PROGRESS], BatchStatus.CANCELLING)
    assert webhook_news(client, batch.id) == ([], None)  # not an end
    assert batches.move(batch.id, [BatchStatus.CANCELLING], BatchStatus.CANCELLED, cancelled_at=1)
    assert not batches.move(batch.id, [BatchStatus.CANCELLING], BatchStatus.CANCELLED)  # once
    snapshots, due = webhook_news(client, batch.id)
    assert [json.loads(s) for s in snapshots] == [{"batch": batch.id, "status": "cancelled"}]
    assert due is not None and due <= time.time()


def test_a_batch_without_a_webhook_queues_none(
    batches: BatchStore, store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    batch, _ = open_batch(batches, store, [1])
    assert batches.move(batch.id, [BatchStatus.IN_PROGRESS], BatchStatus.COMPLETED, completed_at=1)
    assert webhook_news(client, batch.id) == ([], None)


def test_a_batch_cancelled_while_validating_gets_no_plan(batches: BatchStore) -> None:
    batch = Batch(new_batch_id(), "alice", BatchStatus.VALIDATING, "/v1/predictions", "file-1")
    batches.add(batch, due=time.time())
    assert batches.move(batch.id, [BatchStatus.VALIDATING], BatchStatus.CANCELLING)
    assert not batches.plan_parts(batch.id, [Part("p1", [Line("a", 1)])], 1)
    assert batches.plan(batch.id) == {}
    assert not batches.started(batch.id, time.time())
    found = batches.get(batch.id)
    assert found is not None and (found.status, found.parts, found.total) == (BatchStatus.CANCELLING, 0, 0)


def test_a_started_batch_is_due_at_its_window_unless_sooner(
    batches: BatchStore, client: fakeredis.FakeRedis
) -> None:
    batch = Batch(new_batch_id(), "alice", BatchStatus.VALIDATING, "/v1/predictions", "file-1")
    batches.add(batch, due=time.time() + 600)  # its validator's postponement
    assert batches.plan_parts(batch.id, [Part("p1", [Line("a", 1)])], 1)
    batches.postpone(batch.id, 5.0)  # its only part ended already
    assert batches.started(batch.id, time.time() + 3600)
    assert client.zscore(keys.batches_open(), batch.id) == 5.0
    found = batches.get(batch.id)
    assert found is not None and found.status is BatchStatus.IN_PROGRESS and found.times["in_progress_at"]


def test_a_batch_failed_while_validating_queues_its_webhook_and_expires(
    batches: BatchStore, client: fakeredis.FakeRedis
) -> None:
    batch = Batch(new_batch_id(), "alice", BatchStatus.VALIDATING, "/v1/predictions", "file-1")
    batch.fields = {"webhook": {"url": "https://example.com/hook", "secret": "s"}}
    batches.add(batch, due=time.time())
    assert batches.move(batch.id, [BatchStatus.VALIDATING], BatchStatus.FAILED, failed_at=1)
    batches.closed(batch.id)
    snapshots, due = webhook_news(client, batch.id)
    assert [json.loads(s) for s in snapshots] == [{"batch": batch.id, "status": "failed"}]
    assert due is not None
    assert client.ttl(keys.batch(batch.id)) > 0
    assert batch.id not in client.zrange(keys.batches_open(), 0, -1)


def test_a_part_never_queued_ends_once_with_no_result(
    batches: BatchStore, store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    batch = Batch(new_batch_id(), "alice", BatchStatus.VALIDATING, "/v1/predictions", "file-1")
    batches.add(batch, due=time.time() + 7200)
    made = new(store, "alice", priority=Priority.BATCH, batch_part=f"{batch.id} 1 1")
    assert batches.plan_parts(
        batch.id, [Part("never-made", [Line("a", 1)]), Part(made.id, [Line("b", 2)])], 2
    )
    assert batches.never_queued(batch.id, 0)
    assert not batches.never_queued(batch.id, 0)  # once
    found = batches.get(batch.id)
    assert found is not None and found.ended == 1 and batches.due(time.time()) == []
    store.request_cancel(made.id, "alice")
    found = batches.get(batch.id)
    assert found is not None and (found.ended, found.completed, found.failed) == (2, 0, 0)
    assert batches.due(time.time()) == [batch.id]  # every part ended
    assert batches.results(batch.id)[0] == {}


def test_a_part_ending_after_its_batch_ended_changes_nothing(
    batches: BatchStore, store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    batch, (first, late) = open_batch(batches, store, [1, 1])
    store.request_cancel(first, "alice")
    assert batches.move(batch.id, [BatchStatus.IN_PROGRESS], BatchStatus.CANCELLED, cancelled_at=1)
    batches.closed(batch.id)
    assert store.claim(late, "t", ready=True).outcome is ClaimOutcome.CLAIMED
    assert store.finish(late, "t", Status.SUCCEEDED, output={"ok": 1})  # the prediction itself ends
    found = batches.get(batch.id)
    assert found is not None and (found.ended, found.completed) == (1, 0)
    assert client.exists(keys.batch_results(batch.id)) == 0
