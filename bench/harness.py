"""What every benchmark shares: a private Redis, inferq's processes, and percentile maths."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402

from common.processes.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from common.processes.launcher import Launcher  # noqa: E402

API_KEY = "sk-bench"
"""The API key benchmarks use (owner ``bench``)."""


@dataclass
class Stack:
    """A running private Redis and a launcher whose processes use it."""

    redis: EmbeddedRedis
    launcher: Launcher
    env: dict[str, str]
    workdir: Path


@contextmanager
def stack(extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A private Redis (no persistence) plus a launcher for inferq processes, torn down after."""
    with tempfile.TemporaryDirectory(prefix="inferq-bench-") as tmp:
        workdir = Path(tmp)
        redis = EmbeddedRedis(workdir / "redis", appendonly=False).start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
        env.update(
            {
                "INFERQ_REDIS_URL": redis.url,
                "INFERQ_API_KEYS": f"bench:{API_KEY}",
                "INFERQ_DATA_DIR": str(workdir / "data"),
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
            }
        )
        env.update(extra_env or {})
        replica = _replica(redis, workdir) if int(env.get("INFERQ_REDIS_REPLICAS_ACK", "0")) else None
        launcher = Launcher(env, log_dir=workdir / "logs")
        try:
            yield Stack(redis, launcher, env, workdir)
        finally:
            launcher.stop_all()
            redis.stop()
            if replica is not None:
                replica.stop()


def _replica(primary: EmbeddedRedis, workdir: Path) -> EmbeddedRedis:
    """A replica of ``primary``, synced, for runs with ``INFERQ_REDIS_REPLICAS_ACK``."""
    replica = EmbeddedRedis(workdir / "replica", appendonly=False).start()
    client = redis_lib.Redis(port=replica.port, decode_responses=True)
    client.replicaof("127.0.0.1", str(primary.port))
    deadline = time.monotonic() + 10
    while client.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RuntimeError("the replica did not sync within 10 s")
        time.sleep(0.05)
    client.close()
    return replica


def add_replicas_ack_option(parser: argparse.ArgumentParser) -> None:
    """``--replicas-ack N``: run inferq with ``INFERQ_REDIS_REPLICAS_ACK=N`` (and one replica)."""
    parser.add_argument(
        "--replicas-ack", type=int, default=0, choices=[0, 1], help="replicas a write waits for"
    )


def replicas_ack_env(n: int) -> dict[str, str]:
    """``stack``'s ``extra_env`` for ``--replicas-ack``."""
    return {"INFERQ_REDIS_REPLICAS_ACK": str(n)} if n else {}


def add_raw_transport_option(parser: argparse.ArgumentParser) -> None:
    """``--raw-transport``: the broker transport of the raw Celery baseline (``raw_celery.py``)."""
    parser.add_argument(
        "--raw-transport",
        choices=["stock", "inferq"],
        default="stock",
        help="raw Celery's broker transport: as Celery ships, or inferq's (common.queue.transport)",
    )


def raw_transport_env(name: str) -> dict[str, str]:
    """Sets the baseline's transport for ``raw_celery`` imported here, and returns it for the
    environment of its worker (``stack``'s ``extra_env``)."""
    os.environ["RAW_CELERY_TRANSPORT"] = name
    return {"RAW_CELERY_TRANSPORT": name}


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def describe(samples: list[float]) -> str:
    """``p50 1.23 ms, p99 4.56 ms`` for samples in seconds."""
    return (
        f"p50 {percentile(samples, 0.5) * 1000:.2f} ms, p99 {percentile(samples, 0.99) * 1000:.2f} ms, "
        f"mean {statistics.fmean(samples) * 1000:.2f} ms (n={len(samples)})"
    )


__all__ = [
    "API_KEY",
    "Stack",
    "add_raw_transport_option",
    "describe",
    "free_port",
    "percentile",
    "raw_transport_env",
    "stack",
]
