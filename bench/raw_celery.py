"""The baseline: a bare Celery app with a no-op task, on the benchmark's Redis (database 1).

``RAW_CELERY_TRANSPORT`` picks its broker transport: ``stock`` (the default:
kombu's Redis transport, as Celery ships) or ``inferq`` (``common.queue.transport``,
to see what inferq adds on top of the same Celery layer).
"""

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
TRANSPORTS = {"stock": None, "inferq": "common.queue.transport:Transport"}
"""The broker transports the baseline can run on, by the name ``RAW_CELERY_TRANSPORT`` gives."""
if TRANSPORTS[os.environ.get("RAW_CELERY_TRANSPORT", "stock")]:
    app.conf.broker_transport = TRANSPORTS[os.environ["RAW_CELERY_TRANSPORT"]]


@app.task(name="raw.noop")
def noop() -> None:
    """Does nothing: the round trip is all Celery and Redis."""
    return None
