"""Shared fixtures: paths to the small data files shipped in tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
MATPOWER_DIR = DATA / "matpower"
REFERENCE_DIR = DATA / "reference" / "powerflow"
IEEE_CASES = ["case9", "case14", "case30", "case57", "case118", "case300"]


@pytest.fixture
def case_path():
    def _path(name: str) -> Path:
        return MATPOWER_DIR / f"{name}.m"

    return _path
