"""A benchmark run's result as one JSON line of ``bench/results.jsonl``: the history lives there.

Each benchmark script takes ``--record``; it starts a :class:`Run` once its options are
parsed (noting the time, the commit and the machine's load before it adds its own) and
finishes it with its figures, which appends the line when ``--record`` was given. A line:

    {"benchmark": "overhead", "date": "2026-12-03T01:02:03+00:00", "commit": "<sha>",
     "dirty": false, "source": "bench/overhead.py --record", "seconds": 61.2,
     "options": {...}, "figures": {"p50 ratio": 1.35, ...},
     "baseline": {"what": "raw Celery delay().get() p50", "value": 2.01, "unit": "ms"},
     "machine": {"cores": 2, "cpu": "AMD EPYC", "load average at start": [0.4, 0.3, 0.2],
                 "load average at end": [1.9, 1.1, 0.6]}}

The load averages (1, 5 and 15 minutes) are there because this kind of machine is shared:
a figure recorded while other work ran is worth less, and the line says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.jsonl"
"""Where recorded runs are appended."""


def add_record_option(parser: argparse.ArgumentParser) -> None:
    """``--record``: append the run's result to ``results.jsonl``."""
    parser.add_argument(
        "--record",
        nargs="?",
        const=str(RESULTS),
        default=None,
        metavar="FILE",
        help=f"append the result as one JSON line to FILE (default {RESULTS.relative_to(BENCH.parent)})",
    )


def git(*args: str) -> str | None:
    """The output of a git command in the repository, or None outside one."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=BENCH, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


CODE = ("--untracked-files=no", "--", ":(top)", ":(top,exclude)bench/results.jsonl")
"""What ``git status`` looks at to tell whether the code run was the commit's: all but the results."""


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), or ``""`` where it is not told: figures of a
    model run on different processors are not comparable, and a shared host's can change."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                name, _, value = line.partition(":")
                if name.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return ""


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(load, 2) for load in os.getloadavg()]


@dataclass
class Run:
    """One benchmark run, started when its options are parsed.

    Args:
        benchmark: The benchmark's name (its script's, without ``.py``).
        options: The script's parsed options; ``record`` says where to append, if anywhere.
        script: What was run, when not ``bench/<benchmark>.py`` (a script of several benchmarks).
    """

    benchmark: str
    options: argparse.Namespace
    script: str = ""
    date: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    )
    commit: str | None = field(default_factory=lambda: git("rev-parse", "HEAD"))
    dirty: bool = field(default_factory=lambda: bool(git("status", "--porcelain", *CODE)))
    load_at_start: list[float] = field(default_factory=load_average)
    started: float = field(default_factory=time.monotonic)

    def finish(self, figures: Mapping[str, float], baseline: dict[str, Any] | None) -> None:
        """Appends the run's line to the results file when ``--record`` was given.

        Args:
            figures: The run's figures by name (a goal names the one it bounds).
            baseline: What the figures are measured against, in absolute terms:
                ``{"what": ..., "value": ..., "unit": ...}``, or None when there is none.
        """
        if not self.options.record:
            return
        line = {
            "benchmark": self.benchmark,
            "date": self.date,
            "commit": self.commit,
            "dirty": self.dirty,
            "source": f"{self.script or f'bench/{self.benchmark}.py'} --record",
            "seconds": round(time.monotonic() - self.started, 1),
            "options": {k: v for k, v in vars(self.options).items() if k != "record"},
            "figures": {name: round(value, 4) for name, value in figures.items()},
            "baseline": baseline,
            "machine": {
                "cores": os.cpu_count(),
                "cpu": cpu_model(),
                "load average at start": self.load_at_start,
                "load average at end": load_average(),
            },
        }
        with Path(self.options.record).open("a") as results:
            results.write(json.dumps(line, ensure_ascii=False) + "\n")
        print(f"recorded in {self.options.record}")


def baseline(what: str, value: float, unit: str) -> dict[str, Any]:
    """A run's baseline, in absolute terms."""
    return {"what": what, "value": round(value, 4), "unit": unit}


def read(path: Path = RESULTS) -> list[dict[str, Any]]:
    """Every line of a results file, in the file's order (an absent file holds none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
