"""The secrets ``inferq up`` keeps on disk: created readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.processes.cli import dev_key, redis_password
from common.processes.embedded_redis import write_private


def test_secrets_are_created_owner_only_even_under_an_open_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        key = dev_key(tmp_path / "data")
        password = redis_password(tmp_path / "data")
    finally:
        os.umask(previous)
    assert key.startswith("sk-dev-") and len(password) >= 32
    for name in ("dev-key", "redis-password"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o777 == 0o600


def test_a_kept_secret_is_read_back_not_replaced(tmp_path: Path) -> None:
    assert dev_key(tmp_path) == dev_key(tmp_path)
    assert redis_password(tmp_path) == redis_password(tmp_path)


def test_write_private_never_overwrites(tmp_path: Path) -> None:
    write_private(tmp_path / "secret", "one")
    with pytest.raises(FileExistsError):
        write_private(tmp_path / "secret", "two")
    assert (tmp_path / "secret").read_text() == "one"
