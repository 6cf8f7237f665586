"""bench/fairness.py: how far two keys' completed counts are from their weights."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def fairness() -> Iterator[ModuleType]:
    """``bench/fairness.py``, imported as the scripts import each other: with ``bench/`` on the path."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("fairness")
    finally:
        sys.path.remove(str(BENCH))


def test_the_gap_is_relative_to_the_larger_weighted_count(fairness: ModuleType) -> None:
    assert fairness.gap(90, 100, (1, 1)) == pytest.approx(0.1)
    assert fairness.gap(300, 100, (3, 1)) == 0
    assert fairness.gap(270, 100, (3, 1)) == pytest.approx(0.1)
    assert fairness.gap(40, 0, (1, 1)) == 1
    assert fairness.gap(0, 0, (1, 1)) == 0


def test_the_worst_gap_ignores_samples_below_the_floor(fairness: ModuleType) -> None:
    samples = [(10, 2), (30, 27), (100, 98)]
    assert fairness.worst_gap(samples, (1, 1), floor=20) == pytest.approx(0.1)
    assert fairness.worst_gap(samples, (3, 1), floor=20) == pytest.approx(1 - (100 / 3) / 98)
    assert fairness.worst_gap([(19, 0)], (1, 1), floor=20) == 0


def test_weights_are_read_as_a_to_b(fairness: ModuleType) -> None:
    assert fairness.parse_weights("3:1") == (3, 1)
    for bad in ("3", "3:0", "a:b"):
        with pytest.raises(argparse.ArgumentTypeError, match="two positive weights"):
            fairness.parse_weights(bad)
