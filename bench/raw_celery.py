"""The baseline: a bare Celery app with a no-op task, on the benchmark's Redis (database 1)."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("raw", set_as_current=False)
app.conf.update(
    broker_url=os.environ["INFERQ_REDIS_URL"].rsplit("/", 1)[0] + "/1",
    result_backend=os.environ["INFERQ_REDIS_URL"].rsplit("/", 1)[0] + "/1",
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    worker_hijack_root_logger=False,
)


@app.task(name="raw.noop")
def noop() -> None:
    """Does nothing: the round trip is all Celery and Redis."""
    return None
