"""Fairness (issue #22): one API key's flood must not starve another, and keys share by weight.

The model is ``inferq/echo`` with ``delay_s: 0.05`` (a 50 ms model that waits
cooperatively), served by one worker with ``--processes`` pool processes
(default 2) and one API process. Two owners' keys are configured besides the
harness's (``INFERQ_API_KEYS=...,a:sk-a,b:sk-b``), with no queue depth limit
(``INFERQ_MAX_QUEUE_DEPTH=0``) and ``INFERQ_WAIT_MAX`` long enough to hold a
flooded wait. Three measurements, one subcommand each:

- ``flood``: B's ``Prefer: wait`` prediction on the idle system, ``--idle``
  times (the baseline is their median); then A creates ``--predictions``
  (2,000) without waiting, from ``--clients`` kept-alive connections, and once
  they are all created B sends one ``Prefer: wait`` prediction. Ratio = B's
  flooded latency ÷ B's idle median; goal <= 3. Also printed: how many of A's
  had ended when B was sent and when B's answer came. A's unfinished ones are
  then cancelled. A scheduler that puts ``Prefer: wait`` creates in a class of
  their own (or gives each key its turn) answers B within a prediction or two;
  plain FIFO answers it after A's whole backlog.
- ``shares``: A and B each create ``--count`` (1,000) at once, from two sets
  of threads, so their predictions arrive interleaved; then every second the
  completed predictions of each key (terminal statuses heard on the updates
  channel, see ``updates.py``) are sampled, until either key has none left
  queued (each of its predictions was seen starting). The figure is the worst
  gap over the samples between the counts and the keys' weights,
  ``|a/wa - b/wb| / max(a/wa, b/wb)``: for 1:1 the relative gap
  ``|a - b| / max(a, b)``; for 3:1 the deviation of ``a/b`` from 3 relative to
  the larger of the two (so a starved key scores 1, not infinity). Samples
  where both weighted counts are below ``--floor`` (20) are ignored. Run once
  per ``--weights`` (default ``1:1 3:1``), each in a fresh stack with
  ``INFERQ_KEY_WEIGHTS=a:WA,b:WB``; goal <= 0.10 for each. A tree whose
  settings do not know ``INFERQ_KEY_WEIGHTS`` (plain FIFO: inferq refuses an
  unknown ``INFERQ_*`` variable) runs without it and says so. FIFO completes
  the keys only as evenly as their creators happened to race (one key's
  creates getting tens ahead early keeps that lead until both drain).
- ``cost``: what the scheduler costs the core. ``overhead.py`` and
  ``throughput.py`` are run, alternating, from this tree and from a copy of
  ``--baseline-commit`` (``git archive`` into a temporary directory: nothing in
  the repository changes), ``--rounds`` times each, each recording into a
  temporary results file; the medians of their headline figures are printed
  side by side with current / baseline. No goal. By hand, the same is: check
  out the baseline commit in a second worktree (``git worktree add --detach
  ../base <commit>``), run ``python bench/overhead.py --record base.jsonl``
  there and ``python bench/overhead.py --record now.jsonl`` here, in turns, and
  compare the figures of the two files.

    python bench/fairness.py flood [--predictions 2000] [--idle 10] [--processes 2] [--record]
    python bench/fairness.py shares [--count 1000] [--weights 1:1 3:1] [--floor 20] [--record]
    python bench/fairness.py cost --baseline-commit REV [--rounds 2] [--overhead-options "..."]
                                  [--throughput-options "..."] [--record]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from client import Client, creates
from goals import goal
from harness import API_KEY, ROOT, Stack, free_port, stack
from record import Run, add_record_option, baseline, git, read
from updates import Updates

from common.config import Settings

DELAY = 0.05
"""Seconds the model takes per prediction."""

KEYS = {"a": "sk-a", "b": "sk-b"}
"""The two owners' API keys."""

WAIT = 600.0
"""Seconds a flooded ``Prefer: wait`` may hold (``INFERQ_WAIT_MAX``)."""

WEIGHTS = "INFERQ_KEY_WEIGHTS"
"""The scheduler's setting of per-key weights (``owner:weight,owner:weight``)."""

COST_FIGURES = {
    "overhead": ("p50 ratio", "p99 ratio", "inferq p50 ms"),
    "throughput": ("ratio", "inferq per second", "inferq CPU per prediction ms"),
}
"""The figures the cost comparison reads from each script's recorded run."""


def echo(api: Client, wait: float | None = None) -> tuple[int, Any]:
    """Creates one 50 ms echo prediction."""
    return api.create("inferq/echo", {"prompt": "fair", "delay_s": DELAY}, wait)


@contextmanager
def served(processes: int, weights: str | None = None) -> Iterator[tuple[Stack, int]]:
    """A stack with keys ``a`` and ``b``, one API process and one echo worker of ``processes``."""
    env = {
        "INFERQ_API_KEYS": f"bench:{API_KEY}," + ",".join(f"{o}:{k}" for o, k in KEYS.items()),
        "INFERQ_MAX_QUEUE_DEPTH": "0",
        "INFERQ_WAIT_MAX": f"{WAIT:g}",
    }
    if weights is not None:
        env[WEIGHTS] = weights
    with stack(env) as s:
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, workers=1)
        s.launcher.start_worker(["inferq.echo"], concurrency=processes)
        yield s, port


def flood_of(port: int, key: str, count: int, clients: int) -> list[str]:
    """Creates ``count`` echo predictions with ``key`` (no wait); returns their ids.

    Raises:
        RuntimeError: When a create is refused.
    """
    answers, errors = creates(port, count, clients, echo, key=key)
    if errors:
        raise RuntimeError(f"creates failed: {errors[:3]}")
    return [answer["id"] for answer in answers]


def cancel_all(port: int, key: str, ids: Sequence[str], clients: int) -> None:
    """Cancels ``ids`` (queued ones end at once) from ``clients`` threads; a 409 (ended) is fine."""

    def cancel(chunk: Sequence[str]) -> None:
        api = Client(port, key=key)
        try:
            for prediction_id in chunk:
                api.cancel(prediction_id)
        finally:
            api.close()

    threads = [threading.Thread(target=cancel, args=(ids[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def ended(updates: Updates, ids: Sequence[str]) -> int:
    """How many of ``ids`` have been heard ending."""
    return sum(1 for p in ids if updates.status(p) is not None)


def timed_wait(api: Client) -> float:
    """Seconds one ``Prefer: wait`` echo prediction takes to be answered ``succeeded``.

    Raises:
        RuntimeError: On any other answer.
    """
    started = time.perf_counter()
    code, payload = echo(api, wait=WAIT)
    elapsed = time.perf_counter() - started
    if code != 201 or payload.get("status") != "succeeded":
        raise RuntimeError(f"B's wait answered {code} {payload}")
    return elapsed


def flood(args: argparse.Namespace) -> int:
    """The ``flood`` measurement."""
    recording = Run("fairness flood", args, script="bench/fairness.py flood")
    bound = goal("fairness flood", "ratio").bound
    with served(args.processes) as (s, port):
        updates = Updates(s.redis.url)
        b = Client(port, timeout=WAIT + 30, key=KEYS["b"])
        try:
            for _ in range(5):  # every pool process has loaded echo
                timed_wait(b)
            idle = statistics.median(timed_wait(b) for _ in range(args.idle))
            started = time.perf_counter()
            ids = flood_of(port, KEYS["a"], args.predictions, args.clients)
            created = time.perf_counter() - started
            before = ended(updates, ids)
            flooded = timed_wait(b)
            after = ended(updates, ids)
            cancel_all(port, KEYS["a"], [p for p in ids if updates.status(p) is None], args.clients)
        finally:
            b.close()
            updates.close()
    ratio = flooded / idle
    print(f"B idle, Prefer: wait: median {idle * 1000:.1f} ms of {args.idle}")
    print(f"A created {args.predictions} in {created:.2f} s ({args.predictions / created:.0f}/s)")
    print(
        f"B flooded, Prefer: wait: {flooded * 1000:.1f} ms; "
        f"A's ended: {before} when B was sent, {after} when B was answered"
    )
    verdict = "meets" if ratio <= bound else "misses"
    print(
        f"fairness flood: B's latency behind A's {args.predictions} queued / idle = {ratio:.2f} "
        f"with {args.processes} processes ({verdict} the goal of <= {bound:g})"
    )
    recording.finish(
        {
            "ratio": ratio,
            "flooded ms": flooded * 1000,
            "A ended when B was sent": before,
            "A ended when B was answered": after,
        },
        baseline("B's idle Prefer: wait, median", idle * 1000, "ms"),
    )
    return 0


def gap(a: int, b: int, weights: tuple[float, float]) -> float:
    """How far two keys' completed counts are from their weights' ratio, from 0 (exactly) to 1 (one starved).

    ``|a/wa - b/wb| / max(a/wa, b/wb)``: with 1:1, ``|a - b| / max(a, b)``.
    """
    x, y = a / weights[0], b / weights[1]
    return abs(x - y) / max(x, y) if max(x, y) else 0.0


def worst_gap(samples: Sequence[tuple[int, int]], weights: tuple[float, float], floor: float) -> float:
    """The largest :func:`gap` of ``samples`` (``(a, b)`` counts), ignoring those where both weighted
    counts are below ``floor``; 0 when none is left."""
    considered = [(a, b) for a, b in samples if max(a / weights[0], b / weights[1]) >= floor]
    return max((gap(a, b, weights) for a, b in considered), default=0.0)


def parse_weights(text: str) -> tuple[int, int]:
    """``3:1`` as ``(3, 1)``: A's weight and B's."""
    a, sep, b = text.partition(":")
    try:
        weights = int(a), int(b)
    except ValueError:
        weights = (0, 0)
    if not sep or min(weights) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not two positive weights, A:B")
    return weights


def knows(setting: str) -> bool:
    """Whether this tree's settings read ``setting`` (inferq refuses an unknown ``INFERQ_*``)."""
    return any(f.metadata["env"] == setting for f in dataclasses.fields(Settings))


def sample(updates: Updates, ids: dict[str, list[str]], deadline: float) -> list[tuple[int, int]]:
    """Each key's completed count every second, until either key has none left queued (or the deadline)."""
    samples = []
    due = time.monotonic()
    while True:
        samples.append((ended(updates, ids["a"]), ended(updates, ids["b"])))
        if any(all(p in updates.seen for p in mine) for mine in ids.values()) or due > deadline:
            return samples
        due += 1.0
        time.sleep(max(0.0, due - time.monotonic()))


def one_share(args: argparse.Namespace, weights: tuple[int, int]) -> tuple[list[tuple[int, int]], float]:
    """Both keys flood at once under ``weights``; returns the samples and completions per second."""
    setting = f"a:{weights[0]},b:{weights[1]}" if knows(WEIGHTS) else None
    with served(args.processes, setting) as (s, port):
        updates = Updates(s.redis.url)
        ids: dict[str, list[str]] = {}
        try:
            started = time.monotonic()

            def create(owner: str) -> None:
                ids[owner] = flood_of(port, KEYS[owner], args.count, args.clients)

            threads = [threading.Thread(target=create, args=(owner,)) for owner in KEYS]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if len(ids) < len(KEYS):
                raise RuntimeError("a key's creates failed (see above)")
            expected = 2 * args.count * DELAY / args.processes  # both floods, every process busy
            samples = sample(updates, ids, started + 2 * expected + 60)
            rate = sum(samples[-1]) / (time.monotonic() - started)
            for owner, mine in ids.items():
                cancel_all(port, KEYS[owner], [p for p in mine if updates.status(p) is None], args.clients)
        finally:
            updates.close()
    return samples, rate


def shares(args: argparse.Namespace) -> int:
    """The ``shares`` measurement: one flood of both keys per weighting."""
    recording = Run("fairness shares", args, script="bench/fairness.py shares")
    args.weights_set = knows(WEIGHTS)  # recorded with the options
    if not args.weights_set:
        print(f"this tree's settings have no {WEIGHTS} (plain FIFO): every run is measured without it")
    figures: dict[str, float] = {}
    rates = []
    for weights in args.weights:
        name = f"{weights[0]}:{weights[1]}"
        samples, rate = one_share(args, weights)
        rates.append(rate)
        worst = worst_gap(samples, weights, args.floor)
        figures[f"{name} worst gap"] = worst
        figures[f"{name} final gap"] = gap(*samples[-1], weights)
        shown = " ".join(f"{a}/{b}" for a, b in samples)
        print(f"weights {name}: completed a/b each second: {shown}")
        try:
            bound: float | None = goal("fairness shares", f"{name} worst gap").bound
        except KeyError:
            bound = None
        verdict = "no goal" if bound is None else ("meets" if worst <= bound else "misses") + f" <= {bound:g}"
        print(f"weights {name}: worst gap {worst:.3f} over {len(samples)} samples ({verdict})")
    print(
        "fairness shares: worst gap from the weights "
        + ", ".join(f"{k.removesuffix(' worst gap')} {v:.3f}" for k, v in figures.items() if "worst" in k)
        + f" ({args.count} each, {args.processes} processes)"
    )
    recording.finish(figures, baseline("both keys' completions", statistics.median(rates), "predictions/s"))
    return 0


def export(commit: str, into: Path) -> None:
    """Writes the tree of ``commit`` into the directory ``into`` (``git archive``: no worktree)."""
    archive = into.with_suffix(".tar")
    if git("-C", str(ROOT), "archive", "--output", str(archive), commit) is None:
        raise RuntimeError(f"git archive {commit} failed")
    into.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(into)], check=True)


def run_script(tree: Path, script: str, options: str, results: Path) -> None:
    """Runs ``bench/<script>.py`` of ``tree`` with ``options``, recording into ``results``."""
    command = [sys.executable, str(tree / "bench" / f"{script}.py"), *shlex.split(options)]
    print(f"$ {' '.join(command)}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}  # that tree's packages, not an installed inferq's
    subprocess.run([*command, "--record", str(results)], cwd=tree, env=env, check=True)


def cost(args: argparse.Namespace) -> int:
    """The ``cost`` measurement: overhead and throughput at the baseline commit and here, alternating."""
    recording = Run("fairness cost", args, script="bench/fairness.py cost")
    commit = git("rev-parse", "--verify", f"{args.baseline_commit}^{{commit}}")
    if not commit:
        raise SystemExit(f"no commit {args.baseline_commit!r}")
    args.baseline_commit = commit  # recorded resolved
    options = {"overhead": args.overhead_options, "throughput": args.throughput_options}
    with tempfile.TemporaryDirectory(prefix="inferq-baseline-") as tmp:
        trees = {"baseline": Path(tmp) / "tree", "current": ROOT}
        export(commit, trees["baseline"])
        for _ in range(args.rounds):
            for side, tree in trees.items():
                for script in COST_FIGURES:
                    run_script(tree, script, options[script], Path(tmp) / f"{side}.jsonl")
        runs = {side: read(Path(tmp) / f"{side}.jsonl") for side in trees}

    def median(side: str, script: str, figure: str) -> float:
        return statistics.median(r["figures"][figure] for r in runs[side] if r["benchmark"] == script)

    figures: dict[str, float] = {}
    print(f"{'figure':40} {'baseline ' + commit[:7]:>16} {'current':>10} {'current / baseline':>20}")
    for script, names in COST_FIGURES.items():
        for figure in names:
            before, after = median("baseline", script, figure), median("current", script, figure)
            figures[f"{script} {figure}, current / baseline"] = after / before
            print(f"{script + ' ' + figure:40} {before:16.3f} {after:10.3f} {after / before:20.3f}")
    print(
        f"fairness cost: overhead p50 ratio {figures['overhead p50 ratio, current / baseline']:.2f}x and "
        f"throughput ratio {figures['throughput ratio, current / baseline']:.2f}x those of {commit[:7]} "
        f"(medians of {args.rounds} runs each, alternating)"
    )
    recording.finish(
        figures,
        baseline(f"overhead p50 ratio at {commit[:7]}", median("baseline", "overhead", "p50 ratio"), "x"),
    )
    return 0


def parser() -> argparse.ArgumentParser:
    """The options: one subcommand per measurement."""
    top = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="measurement", required=True)
    served_options = argparse.ArgumentParser(add_help=False)
    served_options.add_argument("--processes", type=int, default=2, help="the worker's pool processes")
    served_options.add_argument("--clients", type=int, default=4, help="connections creating a key's flood")
    add_record_option(served_options)
    one = commands.add_parser("flood", parents=[served_options], help="B's wait behind A's flood / idle")
    one.add_argument("--predictions", type=int, default=2000, help="A's flood")
    one.add_argument("--idle", type=int, default=10, help="B's waits on the idle system")
    two = commands.add_parser("shares", parents=[served_options], help="two floods against their weights")
    two.add_argument("--count", type=int, default=1000, help="each key's flood")
    two.add_argument(
        "--weights", type=parse_weights, nargs="+", default=[(1, 1), (3, 1)], help="A:B, one run each"
    )
    two.add_argument("--floor", type=float, default=20, help="ignore samples with both weighted counts below")
    three = commands.add_parser("cost", help="overhead.py and throughput.py here and at a baseline commit")
    three.add_argument("--baseline-commit", required=True, help="the commit to compare with (e.g. main~3)")
    three.add_argument("--rounds", type=int, default=2, help="runs of each script on each side")
    three.add_argument("--overhead-options", default="", help='e.g. "--requests 100 --rounds 3"')
    three.add_argument("--throughput-options", default="", help='e.g. "--predictions 500 --rounds 2"')
    add_record_option(three)
    return top


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], int]] = {
    "flood": flood,
    "shares": shares,
    "cost": cost,
}
"""Each subcommand's measurement."""


def main() -> int:
    args = parser().parse_args()
    return MEASUREMENTS[args.measurement](args)


if __name__ == "__main__":
    sys.exit(main())
