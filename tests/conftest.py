"""Shared fixtures: paths to the small data files shipped in tests/data."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
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


@pytest.fixture
def epanet_hourly():
    """Run an ``.inp`` file in EPANET 2.3 (owa-epanet; the test is skipped without it) and return a function
    ``(path, nodes, value) -> DataFrame``: the nodes' ``value`` at every whole hour (rows: time in s) —
    ``"PRESSURE"`` or ``"HEAD"`` in the file's units, or ``"LEVEL"`` (head − elevation: a tank's level).
    ``df.attrs`` holds EPANET's node and link counts."""
    en = pytest.importorskip("epanet.toolkit")

    def run(path: Path, nodes, value: str = "PRESSURE") -> pd.DataFrame:
        p = en.createproject()
        rows = {}
        try:
            en.open(p, str(path), str(Path(path).with_suffix(".rpt")), "")
            counts = {"nodes": en.getcount(p, en.NODECOUNT), "links": en.getcount(p, en.LINKCOUNT)}
            idx = {k: en.getnodeindex(p, k) for k in nodes}

            def read(i: int) -> float:
                if value == "LEVEL":
                    return en.getnodevalue(p, i, en.HEAD) - en.getnodevalue(p, i, en.ELEVATION)
                return en.getnodevalue(p, i, getattr(en, value))

            en.openH(p)
            en.initH(p, 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # EPANET's own hydraulic warnings
                while True:
                    t = en.runH(p)
                    if t % 3600 == 0:
                        rows[t] = {k: read(i) for k, i in idx.items()}
                    if en.nextH(p) <= 0:
                        break
            en.closeH(p)
            en.close(p)
        finally:
            en.deleteproject(p)
        out = pd.DataFrame(rows).T
        out.attrs.update(counts)
        return out

    return run
