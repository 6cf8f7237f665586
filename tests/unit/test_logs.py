"""Log lines: JSON for collectors, plain text for a person at a terminal."""

from __future__ import annotations

import json
import logging

from common.processes import logs
from common.processes.cli import banner


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("inferq.access", logging.WARNING, __file__, 1, message, None, None)


def test_a_text_line_names_level_process_and_logger() -> None:
    token = logs.prediction_id.set("01a20a23-726e-7112-aef2-7b499c04ca05")
    try:
        line = logs.TextFormatter("api").format(_record("GET / 200"))
    finally:
        logs.prediction_id.reset(token)
    clock, level, who, logger, *rest = line.split()
    assert (level, logger) == ("WARNING", "inferq.access:")
    assert who.startswith("api[") and who.endswith("]")
    assert " ".join(rest) == "GET / 200 (01a20a23-726e-7112-aef2-7b499c04ca05)"
    assert len(clock) == 8


def test_a_json_line_is_one_object() -> None:
    entry = json.loads(logs.JsonFormatter().format(_record("GET / 200")))
    assert entry["level"] == "WARNING" and entry["message"] == "GET / 200"


def test_the_banner_says_where_to_go_and_hides_the_redis_password() -> None:
    text = banner("http://127.0.0.1:8000", "sk-dev-x", ["inferq.echo"], "redis://:s3cret@127.0.0.1:1/0", True)
    lines = text.splitlines()
    assert lines[0] == "inferq is up: http://127.0.0.1:8000/v1"
    assert "http://127.0.0.1:8000/ " in text and "sk-dev-x" in text
    assert "s3cret" not in text and lines[-1].strip() == "press Ctrl-C to stop"


def test_the_banner_keeps_redis_urls_without_a_password() -> None:
    plain = banner("http://127.0.0.1:8000", None, ["inferq.echo"], "redis://127.0.0.1:6379/0", False)
    assert "redis://127.0.0.1:6379/0" in plain
    named = banner("http://127.0.0.1:8000", None, ["inferq.echo"], "redis://user:pw@host:1/0", False)
    assert "redis://user:" in named and ":pw@" not in named
