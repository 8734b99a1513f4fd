"""DC power flow = PTDF product; LODF N-1 flows = re-solved DC flows; islanding outages reported."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import MATPOWER_DIR
from twin.energy import DCSensitivity, PowerFlowWarning, contingency_analysis, lodf, power_flow, ptdf, read_matpower
from twin.energy.sensitivity import DENSE_LIMIT


def _injection_mw(grid, res):
    """Net bus injection seen by the DC network (MW): generation - load + storage - shunt conductance."""
    sens = DCSensitivity(grid)
    cg = sens.compiled
    return res.bus["p_mw"].to_numpy() - cg.ysh.real * cg.base_mva, sens


@pytest.mark.parametrize("case", ["case9", "case30", "case118", "case300"])
def test_dc_flows_equal_ptdf_product(case):
    g = read_matpower(MATPOWER_DIR / f"{case}.m")
    res = power_flow(g, "dc")
    p, sens = _injection_mw(g, res)
    cg = sens.compiled
    H = ptdf(g).to_numpy()
    flows = H @ (p - sens.pbusinj * cg.base_mva) + sens.pfinj * cg.base_mva
    np.testing.assert_allclose(flows, res.branch["p0_mw"].to_numpy(), atol=1e-8)
    np.testing.assert_allclose(sens.flows_mw(p), flows, atol=1e-8)
    # the slack column is zero; with positive reactances no branch carries more than the transfer
    ref = g.bus.index[g.bus["type"] == "ref"][0]
    assert np.all(ptdf(g)[ref] == 0)
    if (g.line["x_pu"] > 0).all() and (g.transformer["x_pu"] > 0).all():
        assert np.abs(H).max() <= 1 + 1e-9


def test_ptdf_rows_match_dense():
    g = read_matpower(MATPOWER_DIR / "case118.m")
    s = DCSensitivity(g)
    full = s.ptdf_rows()
    np.testing.assert_allclose(s.ptdf_rows([3, 17, 100]), full[[3, 17, 100]], atol=1e-12)


@pytest.mark.parametrize("case", ["case30", "case118", "case300"])
def test_n1_by_lodf_equals_resolved_dc(case):
    g = read_matpower(MATPOWER_DIR / f"{case}.m")
    res = contingency_analysis(g, return_flows=True, chunk=37)  # small chunks exercise the chunking
    checked = 0
    for bid, row in res.outage.iterrows():
        if row["islanding"]:
            assert row["buses_cut_off"] > 0
            continue
        g2 = g.copy()
        table = "line" if bid in g2.line.index else "transformer"
        g2[table].loc[bid, "in_service"] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PowerFlowWarning)
            pf = power_flow(g2, "dc")
        np.testing.assert_allclose(res.flows[bid].to_numpy(), pf.branch["p0_mw"].to_numpy(), atol=1e-7,
                                   err_msg=f"outage {bid}")
        checked += 1
    assert checked > 0.7 * len(res.outage)


def test_islanding_outages_are_reported_not_crashed():
    g = read_matpower(MATPOWER_DIR / "case30.m")
    res = contingency_analysis(g)
    isl = res.outage[res.outage["islanding"]]
    assert len(isl) >= 1
    assert isl["max_loading_percent"].isna().all()
    # the LODF column of a bridge is NaN
    L = lodf(g)
    assert L[isl.index[0]].isna().all()
    assert np.allclose(np.diag(L.drop(columns=isl.index).loc[L.drop(columns=isl.index).columns]), -1)


def test_overloads_listed_with_ratings_and_ac_check():
    g = read_matpower(MATPOWER_DIR / "case30.m")
    res = contingency_analysis(g, threshold_percent=80.0, ac_check=True)
    assert len(res.overload) > 0
    o = res.overload
    np.testing.assert_allclose(o["loading_percent"], np.abs(o["p_mw"]) / o["rating_mva"] * 100)
    assert (o["loading_percent"] > 80).all()
    flagged = res.outage[res.outage["n_overloads"] > 0]
    assert flagged["ac_converged"].all()
    assert flagged["ac_max_loading_percent"].notna().all()
    assert res.summary()["n_outages_with_overloads"] == len(flagged)


def test_unknown_or_out_of_service_outage():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    with pytest.raises(KeyError, match="unknown branch id 'nope'"):
        contingency_analysis(g, outages=["nope"])
    g.line.loc["2", "in_service"] = False  # 4-5 lies on case9's ring: the grid stays connected
    with pytest.raises(ValueError, match="already out of service"):
        contingency_analysis(g, outages=["2"])


def test_dense_limit_guards_memory(monkeypatch):
    import twin.energy.sensitivity as s

    monkeypatch.setattr(s, "DENSE_LIMIT", 100)
    g = read_matpower(MATPOWER_DIR / "case30.m")
    with pytest.raises(MemoryError, match="DCSensitivity"):
        s.ptdf(g)
    with pytest.raises(MemoryError, match="LODF"):
        s.lodf(g)


def test_default_dense_limit_allows_the_ieee_cases():
    assert DENSE_LIMIT >= 411 * 411
