"""Every Redis key and channel has one exact format, and no two collide."""

import pytest

from common.store import keys

PID = "0190f3a2-7b1c-7d3e-8f00-0123456789ab"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (keys.prediction(PID), f"inferq:prediction:{PID}"),
        (keys.prediction_logs(PID), f"inferq:prediction:{PID}:logs"),
        (keys.prediction_events(PID), f"inferq:prediction:{PID}:events"),
        (keys.webhook_outbox(PID), f"inferq:prediction:{PID}:webhook"),
        (keys.webhook_attempts(PID), f"inferq:prediction:{PID}:webhook-attempts"),
        (keys.webhook_deliveries(PID), f"inferq:prediction:{PID}:webhook-deliveries"),
        (keys.webhook_lock(PID), f"inferq:prediction:{PID}:webhook-lock"),
        (keys.webhooks_due(), "inferq:webhooks-due"),
        (keys.owner_predictions("alice"), "inferq:owner:alice:predictions"),
        (keys.idempotency_key("alice", "k-1"), "inferq:owner:alice:idempotency:k-1"),
        (
            keys.file("file-0190f3a27b1c7d3e8f000123456789ab"),
            "inferq:file:file-0190f3a27b1c7d3e8f000123456789ab",
        ),
        (keys.owner_files("alice"), "inferq:owner:alice:files"),
        (keys.files_expiry(), "inferq:files-expiry"),
        (keys.pending(), "inferq:pending"),
        (keys.leases(), "inferq:leases"),
        (keys.updates_channel(), "inferq:updates"),
        (keys.progress_channel(), "inferq:progress"),
        (keys.cancel_channel(), "inferq:cancel"),
        (keys.worker_heartbeats("inferq.echo"), "inferq:workers:inferq.echo"),
        (keys.celery_queue("inferq.echo"), "inferq.echo"),
        (keys.schedule(), "inferq:schedule"),
        (keys.schedule_turns("inferq.echo", "batch"), "inferq:schedule:inferq.echo:batch"),
        (keys.schedule_waiting("inferq.echo", "batch", "alice"), "inferq:schedule:inferq.echo:batch:alice"),
        (keys.schedule_parked("inferq.echo"), "inferq:schedule:inferq.echo:parked"),
        (keys.batch("batch_1"), "inferq:batch:batch_1"),
        (keys.batch_results("batch_1"), "inferq:batch:batch_1:results"),
        (keys.batch_plan("batch_1"), "inferq:batch:batch_1:plan"),
        (keys.batch_lock("batch_1"), "inferq:batch:batch_1:lock"),
        (keys.batch_validation_lock("batch_1"), "inferq:batch:batch_1:validation-lock"),
        (keys.owner_batches("alice"), "inferq:owner:alice:batches"),
    ],
)
def test_key_format(key: str, expected: str) -> None:
    assert key == expected


def test_keys_are_distinct() -> None:
    every = [
        keys.prediction(PID),
        keys.prediction_logs(PID),
        keys.prediction_events(PID),
        keys.webhook_outbox(PID),
        keys.webhook_attempts(PID),
        keys.webhook_deliveries(PID),
        keys.webhook_lock(PID),
        keys.webhooks_due(),
        keys.owner_predictions(PID),
        keys.idempotency_key(PID, "predictions"),
        keys.file(PID),
        keys.owner_files(PID),
        keys.files_expiry(),
        keys.pending(),
        keys.leases(),
        keys.updates_channel(),
        keys.progress_channel(),
        keys.cancel_channel(),
        keys.worker_heartbeats(PID),
        keys.celery_queue(PID),
    ]
    assert len(set(every)) == len(every)


def test_every_key_but_the_celery_queue_is_namespaced() -> None:
    owned = [
        keys.prediction(PID),
        keys.prediction_logs(PID),
        keys.prediction_events(PID),
        keys.owner_predictions("alice"),
        keys.file("file-1"),
        keys.owner_files("alice"),
        keys.files_expiry(),
        keys.pending(),
        keys.leases(),
        keys.updates_channel(),
        keys.progress_channel(),
        keys.cancel_channel(),
        keys.worker_heartbeats("q"),
    ]
    assert all(key.startswith(f"{keys.PREFIX}:") for key in owned)
