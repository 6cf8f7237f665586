"""The ``inferq`` command: ``api``, ``worker`` and ``up``.

``api`` and ``worker`` replace themselves with the real server process
(gunicorn, or a Celery worker), so signals reach it directly; ``up`` runs an
embedded Redis if none is configured, one API and one worker per configured
queue, in the foreground, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path

from kombu.utils.url import maybe_sanitize_url

from common.catalog import Catalog
from common.config import Settings, describe_settings
from common.errors import ConfigError
from common.processes.embedded_redis import EmbeddedRedis, kept_secret
from common.processes.launcher import Launcher, api_command, metrics_directory, worker_command
from common.processes.relay import Relay

DEV_OWNER = "dev"
"""Owner of the development key ``inferq up`` creates when no keys are configured."""


def dev_key(data_dir: Path) -> str:
    """The development API key, created once (readable by its owner only) in the data directory."""
    return kept_secret(data_dir / "dev-key", prefix="sk-dev-")


def redis_password(data_dir: Path) -> str:
    """The embedded Redis's password, created once beside the development key."""
    return kept_secret(data_dir / "redis-password")


def _settings() -> Settings:
    try:
        return Settings.from_env(os.environ)
    except ConfigError as e:
        sys.exit(f"inferq: {e}")


def run_api(args: argparse.Namespace) -> int:
    """``inferq api``: checks the settings, then becomes gunicorn."""
    settings = _settings()
    if not settings.redis_url or not settings.api_keys:
        sys.exit("inferq api: set INFERQ_REDIS_URL and INFERQ_API_KEYS (or use `inferq up`)")
    metrics_dir = metrics_directory(settings.data_dir / "metrics" / str(args.port))
    command = api_command(args.host, args.port, args.workers, metrics_dir)
    os.execv(command[0], command)


def run_worker(args: argparse.Namespace) -> int:
    """``inferq worker``: becomes a Celery worker."""
    command = worker_command(args.queues, args.concurrency, args.hostname)
    os.execv(command[0], command)


def run_up(args: argparse.Namespace) -> int:
    """``inferq up``: Redis (embedded when unset), the API and a worker per queue, until Ctrl-C.

    The processes' output is held back while they start and then printed, so
    the banner comes last. At a terminal they log plain text lines unless
    ``INFERQ_LOG_FORMAT`` says otherwise.
    """
    settings = _settings()
    env = dict(os.environ)
    if "INFERQ_LOG_FORMAT" not in env and sys.stderr.isatty():
        env["INFERQ_LOG_FORMAT"] = "text"
    embedded: EmbeddedRedis | None = None
    relay = Relay(sys.stderr)
    launcher = Launcher(env, relay=relay)
    try:
        catalog = Catalog.load(settings.models_path)
        if not settings.redis_url:
            password = redis_password(settings.data_dir)
            embedded = EmbeddedRedis(settings.data_dir / "redis", password=password, allow_config=False)
            embedded.start()
            env["INFERQ_REDIS_URL"] = embedded.url
        key = None
        if not settings.api_keys:
            key = dev_key(settings.data_dir)
            env["INFERQ_API_KEYS"] = f"{DEV_OWNER}:{key}"
        base = launcher.start_api(args.host, args.port, args.workers)
        queues = [*catalog.queues, settings.webhook_queue]
        for queue in queues:
            launcher.start_worker([queue], name=f"{queue}@{socket.gethostname()}")
        relay.release()
        relay.settle()
        print(banner(base, key, queues, env["INFERQ_REDIS_URL"], embedded is not None), flush=True)
        return _supervise(launcher)
    except (ConfigError, RuntimeError) as e:
        relay.release()
        print(f"inferq up: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        relay.release()
        launcher.stop_all()
        if embedded is not None:
            embedded.stop()
        print("inferq up: stopped", flush=True)


def banner(base: str, key: str | None, queues: list[str], redis_url: str, embedded: bool) -> str:
    """What ``inferq up`` prints once every process is ready: where to go, with what key, how to stop."""
    return "\n".join(
        [
            f"inferq is up: {base}/v1",
            f"  API key: {key or '(one of INFERQ_API_KEYS)'}",
            f"  in a browser: {base}/ (the console: playground, predictions, queues, batches)",
            f"  API docs: {base}/docs",
            f"  queues: {', '.join(queues)}",
            f"  Redis: {maybe_sanitize_url(redis_url)}{' (embedded)' if embedded else ''}",
            "  press Ctrl-C to stop",
        ]
    )


def _supervise(launcher: Launcher) -> int:
    """Waits for Ctrl-C or SIGTERM (returns 0), or for any process to exit (returns 1)."""
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        exited = launcher.exited()
        if exited:
            print(f"inferq up: {exited[0][0]} exited with {exited[0][1]}; stopping", flush=True)
            return 1
        time.sleep(0.2)
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line of ``inferq``."""
    settings_help = "\n".join(f"  {name:32} {doc}" for name, doc in describe_settings())
    root = argparse.ArgumentParser(
        prog="inferq",
        description="A self-hostable inference API (WriftAI and OpenAI compatible).",
        epilog=f"settings (environment variables):\n{settings_help}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True)
    for name, run, doc in (
        ("api", run_api, "run the HTTP API (gunicorn + gevent)"),
        ("up", run_up, "run everything on this machine, with an embedded Redis if none is set"),
    ):
        command = commands.add_parser(name, help=doc)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=8000)
        command.add_argument("--workers", type=int, default=2 if name == "api" else 1, help="API processes")
        command.set_defaults(run=run)
    worker = commands.add_parser("worker", help="run a Celery worker for predictions")
    worker.add_argument("--queues", help="comma-separated queues (default: every configured queue)")
    worker.add_argument("--concurrency", type=int, default=1, help="predictions run at once")
    worker.add_argument("--hostname", help="worker name")
    worker.set_defaults(run=run_worker)
    return root


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``inferq`` console script."""
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
