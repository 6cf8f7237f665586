"""Image edits versus generations: ``/v1/images/edits`` latency ÷ ``/v1/images/generations`` latency.

In one run, alternating in rounds: the p50 latency of generating one image of
``--size`` with ``inferq/sketch`` through the official ``openai`` client
(``images.generate``, b64_json), and of editing one image of the same size
with the same prompt (``images.edit``: the upload is one of the model's own
PNGs, and a mask transparent over its middle quarter, so the API checks and
decodes two files, stores their pixels, and the worker reads them). One API process, one
worker process. Prints the ratio (goal: edit / generation <= 1.3: decoding the
upload must not dominate).

    python bench/images.py [--size 1024x1024] [--quality medium] [--requests 15] [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import openai
from goals import goal
from harness import API_KEY, free_port, stack
from PIL import Image
from record import Run, add_record_option, baseline

GOAL = goal("images", "ratio").bound
"""The largest acceptable ratio of edit latency to generation latency."""

PROMPT = "mountains under a sun, with waves and three stars"


def _mask(width: int, height: int) -> bytes:
    """A PNG mask transparent over the middle quarter of the image."""
    rgba = np.full((height, width, 4), 255, np.uint8)
    rgba[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4, 3] = 0
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, "PNG")
    return buffer.getvalue()


def _p50_ms(call: Callable[[], object], requests: int) -> float:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--quality", default="medium", choices=["low", "medium", "high"])
    parser.add_argument("--requests", type=int, default=15, help="requests of each kind a round")
    parser.add_argument("--rounds", type=int, default=3)
    add_record_option(parser)
    args = parser.parse_args()
    recording = Run("images", args)
    width, height = (int(side) for side in args.size.split("x"))
    with stack() as s:
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, 1)
        s.launcher.start_worker(["inferq.sketch"], concurrency=1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=0)
        options = {"model": "inferq/sketch", "prompt": PROMPT, "size": args.size, "quality": args.quality}
        source = client.images.generate(**options)  # type: ignore[call-overload]
        picture = base64.b64decode(source.data[0].b64_json or "")
        files = {
            "image": ("in.png", picture, "image/png"),
            "mask": ("mask.png", _mask(width, height), "image/png"),
        }

        def generate() -> object:
            return client.images.generate(**options)  # type: ignore[call-overload]

        def edit() -> object:
            return client.images.edit(**options, **files)  # type: ignore[call-overload]

        generate(), edit()  # warm up both paths
        generations, edits = [], []
        for _ in range(args.rounds):
            generations.append(_p50_ms(generate, args.requests))
            edits.append(_p50_ms(edit, args.requests))
        client.close()
    generation, edited = statistics.median(generations), statistics.median(edits)
    ratio = edited / generation

    def rounds(values: list[float]) -> str:
        return ", ".join(f"{value:.0f}" for value in values)

    print(f"input: a {len(picture) / 1024:.0f} KiB PNG of {args.size} and its mask, {args.quality} quality")
    print(f"generation p50: {generation:.1f} ms (rounds: {rounds(generations)})")
    print(f"edit p50: {edited:.1f} ms (rounds: {rounds(edits)})")
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"images: edit/generation latency {ratio:.2f} ({verdict} the goal of <= {GOAL})")
    recording.finish(
        {"ratio": ratio, "edit p50 ms": edited, "generation p50 ms": generation},
        baseline(f"inferq/sketch generation p50, {args.size}", generation, "ms"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
