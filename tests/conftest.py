"""Fixtures shared by every test: a private Redis for the whole run, and settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.processes.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODELS = FIXTURES / "models.yaml"

KEYS = {"alice": "sk-alice", "bob": "sk-bob"}
"""The API keys every test stack accepts, by owner."""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server private to this test run, on a free loopback port (never the shared one)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client of the private Redis, flushed before the test."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def base_env(redis_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of inferq processes under test: short timings, the test models file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update(
        {
            "INFERQ_REDIS_URL": redis_url,
            "INFERQ_API_KEYS": ",".join(f"{owner}:{key}" for owner, key in KEYS.items()),
            "INFERQ_MODELS": str(MODELS),
            "INFERQ_DATA_DIR": str(data_dir),
            "INFERQ_LEASE_TTL": "3",
            "INFERQ_CANCEL_GRACE": "1",
            "INFERQ_WAIT_MAX": "30",
            "INFERQ_SYNC_TIMEOUT": "4",
            "INFERQ_HEARTBEAT_INTERVAL": "0.5",
            "INFERQ_WEBHOOK_ALLOW_PRIVATE": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(overrides)
    return env


def stored(client: redis.Redis) -> list[str]:
    """Every key that holds or indexes a prediction (what bad requests must not create)."""
    return sorted(
        client.keys("inferq:prediction:*") + client.keys("inferq:owner:*") + client.keys("inferq:pending")
    )
