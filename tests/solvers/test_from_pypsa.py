"""twin.energy.from_pypsa: the PyPSA network of the dispatch reference case, imported, gives PyPSA's
objective with our dispatch (PyPSA models load shedding as generators: imported as such)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from solvers import DispatchOptions, solve_dispatch
from tests.conftest import DATA
from twin.energy import from_pypsa

pytest.importorskip("pypsa")


def test_imported_pypsa_case_reproduces_its_objective():
    path = DATA / "dispatch" / "make_case118_24h.py"
    spec = importlib.util.spec_from_file_location("make_case118_24h", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    n = mod.build_network(mod.read_inputs(), 100.0)
    grid = from_pypsa(n, base_mva=100.0)
    assert len(grid.bus) == 118 and len(grid.storage) == 4
    assert set(grid.series) >= {"load.p_mw", "generator.p_max_pu"}
    ref = json.loads((DATA / "dispatch" / "case118_24h" / "reference" / "info.json").read_text())
    sol = solve_dispatch(grid, DispatchOptions(network="ptdf", voll=None))
    assert sol.objective == pytest.approx(ref["objective"], rel=1e-9)
