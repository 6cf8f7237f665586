"""Process-wide tuning: idle OpenMP threads sleep unless the operator chose otherwise."""

from __future__ import annotations

import os

import pytest

from common.runtime import OPENMP_WAIT_POLICY, share_cores


def test_idle_openmp_threads_are_made_to_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    share_cores()
    assert os.environ["OMP_WAIT_POLICY"] == OPENMP_WAIT_POLICY == "PASSIVE"


def test_an_operators_wait_policy_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    share_cores()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
