"""Process-wide tuning: idle OpenMP threads spin briefly, unless the operator chose otherwise."""

from __future__ import annotations

import os

import pytest

from common.runtime import OPENMP_SPIN_COUNT, share_cores


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
