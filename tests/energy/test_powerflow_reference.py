"""AC power flow against PYPOWER's runpf (MATPOWER semantics) on the IEEE cases.

Reference results: tests/data/reference/powerflow/<case>/ (regenerate with
tests/data/reference/make_powerflow_reference.py).  Tolerances from the issue:
|Δvm| ≤ 1e-6 p.u., |Δva| ≤ 1e-5 deg relative to the slack, flows within 1e-4 MW.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from tests.conftest import IEEE_CASES, MATPOWER_DIR, REFERENCE_DIR
from twin.energy import PowerFlowWarning, power_flow, read_matpower


def load_reference(folder: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    d = REFERENCE_DIR / folder
    bus = pd.read_csv(d / "bus.csv")
    bus.index = bus["bus_i"].astype(str)
    br = pd.read_csv(d / "branch.csv")
    br.index = (br["row"] + 1).astype(str)
    gen = pd.read_csv(d / "gen.csv")
    gen.index = (gen["row"] + 1).astype(str)
    return bus, br, gen


def compare(res, folder: str, *, ac: bool = True) -> None:
    bus, br, gen = load_reference(folder)
    ours = res.bus.loc[bus.index]
    ref_bus = bus.index[bus["type"] == 3][0]
    on = bus["type"] != 4
    np.testing.assert_allclose(ours.loc[on, "vm_pu"], bus.loc[on, "vm_pu"], atol=1e-6, rtol=0)
    dva = (ours["va_deg"] - ours.loc[ref_bus, "va_deg"]) - (bus["va_deg"] - bus.loc[ref_bus, "va_deg"])
    assert np.abs(dva[on]).max() <= 1e-5
    b = res.branch.loc[br.index]
    cols = [("p0_mw", "pf_mw"), ("p1_mw", "pt_mw")] + ([("q0_mvar", "qf_mvar"), ("q1_mvar", "qt_mvar")] if ac else [])
    for ours_col, ref_col in cols:
        np.testing.assert_allclose(b[ours_col], br[ref_col], atol=1e-4, rtol=0, err_msg=ours_col)
    g = res.generator.loc[gen.index]
    np.testing.assert_allclose(g["p_mw"], gen["pg_mw"], atol=1e-4, rtol=0)
    if ac:
        np.testing.assert_allclose(g["q_mvar"], gen["qg_mvar"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", IEEE_CASES)
@pytest.mark.parametrize("init", ["dc", "flat", "case"])
def test_ac_matches_pypower(case, init):
    grid = read_matpower(MATPOWER_DIR / f"{case}.m")
    res = power_flow(grid, "ac", init=init, tol=1e-10)
    assert res.converged
    assert res.max_mismatch_mva < 1e-6
    compare(res, case)


@pytest.mark.parametrize("case", ["case30", "case300"])
def test_superlu_and_klu_agree(case):
    grid = read_matpower(MATPOWER_DIR / f"{case}.m")
    a = power_flow(grid, "ac", linear_solver="klu", tol=1e-10)
    b = power_flow(grid, "ac", linear_solver="superlu", tol=1e-10)
    assert a.iterations == b.iterations
    np.testing.assert_allclose(a.bus["vm_pu"], b.bus["vm_pu"], atol=1e-10)
    np.testing.assert_allclose(a.branch["p0_mw"], b.branch["p0_mw"], atol=1e-8)


def test_power_balance_and_losses():
    grid = read_matpower(MATPOWER_DIR / "case118.m")
    res = power_flow(grid, "ac")
    s = res.summary()
    # generation = load + losses + shunt consumption (MW)
    vm = res.bus["vm_pu"]
    shunt_p = (grid.shunt["g_mw"] * vm.loc[grid.shunt["bus"]].to_numpy() ** 2).sum()
    assert s["generation_mw"] == pytest.approx(s["load_mw"] + s["losses_mw"] + shunt_p, abs=1e-5)
    assert res.branch["pl_mw"].min() > -1e-9  # passive branches do not generate


@pytest.mark.parametrize("case", IEEE_CASES)
def test_dc_matches_pypower_rundcpf(case):
    grid = read_matpower(MATPOWER_DIR / f"{case}.m")
    res = power_flow(grid, "dc")
    compare(res, f"{case}_dc", ac=False)


@pytest.mark.parametrize("case", ["case14", "case30", "case57", "case118", "case300"])
def test_q_limits_match_matpower(case):
    """ENFORCE_Q_LIMS=1 semantics, reference bus included (references from a patched PYPOWER runpf)."""
    grid = read_matpower(MATPOWER_DIR / f"{case}.m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PowerFlowWarning)
        res = power_flow(grid, "ac", tol=1e-10, enforce_q_limits=True)
    assert res.converged
    compare(res, f"{case}_qlim")
    info = json.loads((REFERENCE_DIR / f"{case}_qlim" / "info.json").read_text())
    q = res.generator
    on = q["in_service"]
    gen = grid.generator
    assert (q.loc[on, "q_mvar"] <= gen.loc[on, "q_max_mvar"] + 1e-4).all()
    assert (q.loc[on, "q_mvar"] >= gen.loc[on, "q_min_mvar"] - 1e-4).all()
    assert res.generator["at_q_limit"].sum() == len(info["q_limits"]["gens_at_q_limit"])
