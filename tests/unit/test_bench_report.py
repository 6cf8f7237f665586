"""bench/report.py: the table of where each goal stands, from a results file, and the plot."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def report() -> Iterator[ModuleType]:
    """``bench/report.py``, imported as the scripts import each other: with ``bench/`` on the path."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("report")
    finally:
        sys.path.remove(str(BENCH))


def run(
    benchmark: str, date: str, figures: dict[str, float], commit: str | None = "abcdef0123"
) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "date": date,
        "commit": commit,
        "dirty": False,
        "source": "test",
        "figures": figures,
        "baseline": {"what": "raw Celery p50", "value": 2.013, "unit": "ms"},
        "machine": {
            "cores": 2,
            "load average at start": [0.5, 0.4, 0.3],
            "load average at end": [1.5, 1.0, 0.5],
        },
    }


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results file: overhead twice (the later run first in the file), throughput and cancel once."""
    runs = [
        run("overhead", "2026-12-02T10:00:00+00:00", {"p50 ratio": 1.4, "p99 ratio": 1.6}),
        run("overhead", "2026-12-01T10:00:00+00:00", {"p50 ratio": 1.3, "p99 ratio": 1.2}, commit=None),
        run("throughput", "2026-12-02T11:00:00+00:00", {"ratio": 0.75}),
        run(
            "cancel_latency", "2026-12-02T12:00:00+00:00", {"queued p99 ms": 25.0, "cooperative p99 ms": 5.0}
        ),
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    return path


def by_benchmark(report: ModuleType, results: Path) -> dict[str, Any]:
    return {line.benchmark: line for line in report.lines(report.read(results))}


def test_each_benchmark_is_judged_on_its_latest_run(report: ModuleType, results: Path) -> None:
    found = by_benchmark(report, results)
    assert found["overhead"].run["date"].startswith("2026-12-02")
    assert found["overhead"].verdict == "misses (p99)"
    assert found["throughput"].verdict == "meets"
    assert found["cancel_latency"].verdict == "misses (queued); not recorded (deaf)"
    assert found["soak"].run is None and found["soak"].verdict == "not recorded"


def test_the_table_has_a_line_a_benchmark_with_its_baseline_and_when_it_ran(
    report: ModuleType, results: Path
) -> None:
    rows = report.table(report.lines(report.read(results))).splitlines()[2:]
    assert len(rows) == len(report.BENCHMARKS)
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells == [
        "overhead",
        report.BENCHMARKS["overhead"],
        "p50 <= 1.5, p99 <= 1.5",
        "p50 **1.40**, p99 **1.60**",
        "raw Celery p50 2.01 ms",
        "2026-12-02 10:00, abcdef0, load 0.5→1.5 on 2 cores",
        "misses (p99)",
    ]
    assert "queued **25**, cooperative **5**, deaf –" in rows[2]


def test_a_run_on_a_machine_loaded_beyond_its_cores_says_so(report: ModuleType, tmp_path: Path) -> None:
    loaded = run("throughput", "2026-12-02T10:00:00+00:00", {"ratio": 0.9})
    loaded["machine"]["load average at end"] = [2.5, 1.0, 0.5]
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(loaded) + "\n")
    assert by_benchmark(report, path)["throughput"].verdict == "meets, on a loaded machine"


def test_a_later_line_wins_a_tie(report: ModuleType, tmp_path: Path) -> None:
    date = "2026-12-02T10:00:00+00:00"
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(run("scaling", date, {"4 / 1": v})) + "\n" for v in (3.9, 3.5)))
    assert by_benchmark(report, path)["scaling"].verdict == "misses"


def test_plot_writes_a_png(report: ModuleType, results: Path, tmp_path: Path, capsys: Any) -> None:
    picture = tmp_path / "bench.png"
    assert report.main(["--results", str(results), "--plot", str(picture)]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| overhead |" in capsys.readouterr().out
