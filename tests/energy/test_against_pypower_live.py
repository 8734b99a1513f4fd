"""Live cross-checks against PYPOWER for what no stored case covers: PTDF/LODF and phase shifters.

PYPOWER reads the case through the reference script's own parser (independent of ours).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io

import numpy as np
import pytest
from pypower.ext2int import ext2int
from pypower.makeLODF import makeLODF
from pypower.makePTDF import makePTDF
from pypower.ppoption import ppoption
from pypower.rundcpf import rundcpf
from pypower.runpf import runpf

from tests.conftest import DATA, MATPOWER_DIR
from twin.energy import lodf, power_flow, ptdf, read_matpower


def _ppc(case: str) -> dict:
    path = DATA / "reference" / "make_powerflow_reference.py"
    spec = importlib.util.spec_from_file_location("make_powerflow_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.parse_matpower_case(MATPOWER_DIR / f"{case}.m")


@pytest.mark.parametrize("case", ["case9", "case30", "case118"])
def test_ptdf_and_lodf_equal_makeptdf_makelodf(case):
    ppc = ext2int(_ppc(case))  # consecutive bus numbers in these cases: internal = external - 1
    slack = int(np.flatnonzero(ppc["bus"][:, 1] == 3)[0])
    H = makePTDF(ppc["baseMVA"], ppc["bus"], ppc["branch"], slack)
    with np.errstate(divide="ignore", invalid="ignore"):  # makeLODF divides by 0 for islanding outages
        L = makeLODF(ppc["branch"], H)
    g = read_matpower(MATPOWER_DIR / f"{case}.m")
    rows = [str(i + 1) for i in range(len(ppc["branch"]))]
    cols = [str(int(b) + 1) for b in ppc["bus"][:, 0]]
    np.testing.assert_allclose(ptdf(g).loc[rows, cols].to_numpy(), H, atol=1e-10)
    ours = lodf(g).loc[rows, rows].to_numpy()
    finite = np.isfinite(ours).all(axis=0)  # islanding outages: NaN columns here, division by ~0 in makeLODF
    np.testing.assert_allclose(ours[:, finite], L[:, finite], atol=1e-8)


def _shifted(case: str, row: int, shift_deg: float, tap: float):
    ppc = _ppc(case)
    ppc["branch"][row, 8] = tap
    ppc["branch"][row, 9] = shift_deg
    g = read_matpower(MATPOWER_DIR / f"{case}.m")
    g.transformer.loc[str(row + 1), ["shift_deg", "tap_ratio"]] = [shift_deg, tap]
    return ppc, g


@pytest.mark.parametrize("method", ["ac", "dc"])
def test_phase_shifter_matches_pypower(method):
    ppc, g = _shifted("case118", 7, 8.0, 0.97)  # branch 8 (bus 8 - 5) becomes a phase-shifting transformer
    opt = ppoption(VERBOSE=0, OUT_ALL=0, PF_TOL=1e-10)
    with contextlib.redirect_stdout(io.StringIO()):
        res, ok = (runpf if method == "ac" else rundcpf)(ppc, opt)
    assert ok
    ours = power_flow(g, method, tol=1e-10)
    bus_ids = res["bus"][:, 0].astype(int).astype(str)
    np.testing.assert_allclose(ours.bus.loc[bus_ids, "va_deg"], res["bus"][:, 8], atol=1e-6)
    br = ours.branch.loc[[str(i + 1) for i in range(len(res["branch"]))]]
    np.testing.assert_allclose(br["p0_mw"], res["branch"][:, 13], atol=1e-5)
    np.testing.assert_allclose(br["p1_mw"], res["branch"][:, 15], atol=1e-5)
    assert abs(br.loc["8", "p0_mw"] - power_flow(read_matpower(MATPOWER_DIR / "case118.m"), method)
               .branch.loc["8", "p0_mw"]) > 10  # the shift really moves power
