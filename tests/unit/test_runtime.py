"""Process-wide tuning: idle OpenMP threads spin briefly and pool processes share the cores,
unless the operator chose otherwise."""

from __future__ import annotations

import os

import pytest

from common.processes.runtime import OPENMP_SPIN_COUNT, share_cores, threads_per_process


def test_idle_openmp_threads_spin_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    share_cores()
    assert os.environ["GOMP_SPINCOUNT"] == OPENMP_SPIN_COUNT == "10000"
    assert "OMP_WAIT_POLICY" not in os.environ


@pytest.mark.parametrize(("name", "value"), [("OMP_WAIT_POLICY", "PASSIVE"), ("GOMP_SPINCOUNT", "500")])
def test_an_operators_choice_is_kept(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv(name, value)
    share_cores()
    assert os.environ[name] == value
    assert os.environ.get("GOMP_SPINCOUNT", value) == value


def _unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Removes ``name`` for the test (set first, so that undoing restores what was there)."""
    monkeypatch.setenv(name, "")
    monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("processes", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (2, 8, 4), (3, 8, 2), (4, 2, 1), (0, 4, 4)]
)
def test_each_process_gets_a_fair_share_of_the_cores_and_at_least_one(
    processes: int, cores: int, threads: int
) -> None:
    assert threads_per_process(processes, cores) == threads


def test_several_processes_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    _unset(monkeypatch, "OMP_NUM_THREADS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3})
    share_cores(2)
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_one_process_keeps_torchs_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _unset(monkeypatch, "OMP_NUM_THREADS")
    share_cores(1)
    assert "OMP_NUM_THREADS" not in os.environ


def test_an_operators_thread_count_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    share_cores(4)
    assert os.environ["OMP_NUM_THREADS"] == "3"
