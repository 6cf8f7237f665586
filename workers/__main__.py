"""``python -m workers``: a Celery worker running inferq's predictions (what ``inferq worker`` runs)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from typing import Any

from celery import signals
from celery.exceptions import CPendingDeprecationWarning

from common.catalog import Catalog
from common.config import Settings
from common.connections import redis_client
from common.errors import ConfigError
from common.processes import logs
from common.processes.runtime import share_cores, tune_gc
from common.processes.ticker import Ticker
from common.queue.broker import TaskMessages, make_celery
from common.queue.recovery import INTERVAL, Recovery
from common.store.heartbeats import Heartbeat
from common.store.outbox import Outbox
from common.store.predictions import PredictionStore
from workers.process import ProcessState
from workers.tasks import register_tasks
from workers.warden import WardenLink

logger = logging.getLogger("workers")

CANCEL_ON_CONNECTION_LOSS_WARNING = r"\s*In Celery 5\.1 we introduced an optional breaking change"
"""Celery's warning, at every broker connection loss, that running tasks are not cancelled: inferq
means it (``common.queue.broker.celery_config``), so the warning is silenced."""

CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")
"""Celery's two lines per task (``Task ... received``, ``... succeeded in``), shown only at DEBUG:
the runner logs one line per prediction, with its id, and each line costs the hot path time."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Reads the worker's command line."""
    parser = argparse.ArgumentParser(prog="inferq worker", description=__doc__)
    parser.add_argument(
        "--queues", help="comma-separated queues (default: every configured queue, and the webhooks queue)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="predictions run at once (processes)")
    parser.add_argument("--hostname", default=None, help="worker name (default: inferq-<pid>@<host>)")
    parser.add_argument("--loglevel", default=None, help="default: INFERQ_LOG_LEVEL")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Starts a prefork Celery worker on the given queues; returns its exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    share_cores(args.concurrency)
    try:
        settings = Settings.from_env(os.environ)
        level = args.loglevel or settings.log_level
        logs.configure(settings.log_format, level, (args.hostname or "worker").split("@")[0])
        if logging.getLevelName(level.upper()) != logging.DEBUG:
            for name in CELERY_TASK_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        catalog = Catalog.load(settings.models_path)
        settings.required_redis_url  # noqa: B018 - fail before forking anything
    except ConfigError as e:
        print(f"inferq worker: {e}", file=sys.stderr)
        return 2
    queues = args.queues.split(",") if args.queues else [*catalog.queues, settings.webhook_queue]
    hostname = args.hostname or f"inferq-{os.getpid()}@{socket.gethostname()}"
    app = make_celery(settings, "inferq-worker")
    state = ProcessState(settings, catalog, TaskMessages(app, settings.webhook_queue))
    register_tasks(app, state.runner, state.deliverer)
    _install_housekeeping(settings, app, hostname, queues, state, args.concurrency)
    tune_gc()
    worker = app.Worker(
        hostname=hostname,
        queues=queues,
        concurrency=args.concurrency,
        pool="prefork",
        loglevel=level,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
        quiet=True,  # no ASCII-art banner: the log says when the worker is ready, and on which queues
    )
    worker.start()
    return int(worker.exitcode or 0)


def _install_housekeeping(
    settings: Settings, app: Any, hostname: str, queues: list[str], state: ProcessState, concurrency: int
) -> None:
    """Loads models in each pool process; starts heartbeats and recovery in the main process."""
    client = redis_client(settings)
    store = PredictionStore(client, settings)
    heartbeat = Heartbeat(store, hostname, queues, concurrency)
    recovery = Recovery(store, TaskMessages(app, settings.webhook_queue), Outbox(client))

    def on_process_init(**_: Any) -> None:
        runner = state.runner()
        if set(queues) - {settings.webhook_queue}:
            runner.supervisor.warden = WardenLink.start()
        runner.preload(queues)
        Heartbeat(runner.store, hostname, queues, concurrency).announce()
        tune_gc()

    tickers: list[Ticker] = []

    def on_ready(**_: Any) -> None:
        # After Celery's own logging setup, which shows every pending deprecation.
        warnings.filterwarnings(
            "ignore", CANCEL_ON_CONNECTION_LOSS_WARNING, category=CPendingDeprecationWarning
        )
        tickers.append(Ticker("inferq-housekeeping", INTERVAL, [heartbeat.beat, recovery.run_once]).start())
        logger.info("worker %s ready on queues %s", hostname, ", ".join(queues))

    def on_shutting_down(how: str = "", **_: Any) -> None:
        # Not live any more the moment it starts stopping.
        for ticker in tickers:
            ticker.stop()
        heartbeat.retire()
        if how == "Warm":
            _bound_warm_shutdown(settings.shutdown_grace)

    signals.worker_process_init.connect(on_process_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutting_down.connect(on_shutting_down, weak=False)


def _bound_warm_shutdown(grace: float) -> None:
    """Escalates a warm shutdown (SIGTERM: running predictions may finish) to a cold one after ``grace``.

    Predictions still running then lose their worker: Celery puts their
    unacknowledged messages back, and in any case their leases lapse and
    recovery queues them again, so none is lost.
    """

    def escalate() -> None:
        logger.warning(
            "predictions still running after %g s; stopping them (they go back to the queue)", grace
        )
        os.kill(os.getpid(), signal.SIGQUIT)

    timer = threading.Timer(grace, escalate)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    sys.exit(main())
