"""``api.offload`` outside gevent (as tests call the app): work run in real threads, in waves."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from api import offload


def _answers(value: int) -> Callable[[], int]:
    return lambda: value


def _raises(message: str) -> Callable[[], int]:
    def run() -> int:
        raise ValueError(message)

    return run


def test_results_and_exceptions_come_back_in_the_works_order() -> None:
    outcomes = offload.all_in_threads([_answers(1), _raises("two"), _answers(3)], at_once=3)
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "two"


def test_a_wave_runs_at_once_in_as_many_threads() -> None:
    together = threading.Barrier(2, timeout=10)  # broken (an error) unless both wait at the same time

    def meet() -> int:
        return together.wait()

    assert sorted(offload.all_in_threads([meet, meet], at_once=2)) == [0, 1]  # type: ignore[type-var]


def test_the_wave_in_which_one_raised_is_the_last() -> None:
    ran: list[int] = []

    def noted(value: int) -> Callable[[], int]:
        def run() -> int:
            ran.append(value)
            return value

        return run

    works = [noted(0), noted(1), _raises("bad"), noted(3), noted(4), noted(5)]
    outcomes = offload.all_in_threads(works, at_once=2)
    assert outcomes[:2] == [0, 1] and isinstance(outcomes[2], ValueError) and outcomes[3] == 3
    assert len(outcomes) == 4 and sorted(ran) == [0, 1, 3]  # the third wave never ran


def test_work_alone_runs_in_place() -> None:
    assert offload.all_in_threads([threading.get_ident], at_once=2) == [threading.get_ident()]


@pytest.mark.parametrize("at_once", [1, 4])
def test_nothing_to_run_answers_nothing(at_once: int) -> None:
    assert offload.all_in_threads([], at_once) == []
