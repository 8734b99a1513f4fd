"""Power-flow semantics beyond the reference cases: islands, slack errors, non-convergence, Q limits."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import MATPOWER_DIR
from twin.energy import Grid, PowerFlowWarning, SlackError, power_flow, read_matpower


def two_islands() -> Grid:
    g = Grid(base_mva=100, name="islands")
    g.add("bus", index=["a1", "a2", "b1", "b2", "c1"], vn_kv=22.0, type=["ref", "pq", "ref", "pq", "pq"])
    g.add("line", index=["la", "lb"], bus0=["a1", "b1"], bus1=["a2", "b2"], r_pu=0.01, x_pu=0.05, b_pu=0.001)
    g.add("generator", index=["ga", "gb"], bus=["a1", "b1"], vm_pu=[1.02, 1.01])
    g.add("load", index=["da", "db", "dc"], bus=["a2", "b2", "c1"], p_mw=[10.0, 20.0, 5.0], q_mvar=2.0)
    return g


def test_each_island_has_its_own_slack():
    with pytest.warns(PowerFlowWarning):  # c1 is alone and unsupplied
        res = power_flow(two_islands(), "ac")
    assert res.converged
    gen = res.generator["p_mw"]
    assert gen["ga"] > 10 and gen["gb"] > 20  # each slack covers its own island (plus losses)
    assert res.bus.loc["a1", "vm_pu"] == pytest.approx(1.02)
    assert np.isnan(res.bus.loc["c1", "vm_pu"]) and not res.bus.loc["c1", "energised"]


def test_deenergised_island_warns():
    with pytest.warns(PowerFlowWarning, match="de-energised: c1"):
        power_flow(two_islands(), "ac")


def test_island_without_slack_is_a_clear_error():
    g = two_islands()
    g.bus.loc["b1", "type"] = "pv"
    with pytest.raises(SlackError, match="no reference bus") as exc:
        power_flow(g, "ac")
    assert "b1" in str(exc.value) and "gb" in str(exc.value)


def test_non_convergence_is_reported(recwarn):
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.load["p_mw"] *= 12
    g.load["q_mvar"] *= 12
    res = power_flow(g, "ac", max_iter=10)
    assert not res.converged
    assert res.worst_bus in g.bus.index
    assert res.max_mismatch_mva > 1
    assert any("did not converge" in str(w.message) and res.worst_bus in str(w.message) for w in recwarn)
    assert res.summary()["converged"] is False


def test_pv_bus_without_generator_is_pq_and_gen_on_pq_bus_is_fixed():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.generator.loc["3", "in_service"] = False  # bus 3 becomes PQ: its voltage floats
    g.add("generator", index="extra", bus="5", p_mw=10.0, q_mvar=4.0, vm_pu=1.1)  # PQ bus: fixed injection
    res = power_flow(g, "ac")
    assert res.converged
    assert res.bus.loc["3", "type"] == "pq"
    assert res.bus.loc["3", "vm_pu"] != pytest.approx(1.025)
    assert res.generator.loc["extra", "q_mvar"] == pytest.approx(4.0)
    assert res.generator.loc["3", "p_mw"] == 0


def test_q_limits_switch_pv_to_pq():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.generator.loc["2", "q_max_mvar"] = 2.0  # unlimited solve gives 6.65 MVAr
    free = power_flow(g, "ac")
    assert free.generator.loc["2", "q_mvar"] > 2.0
    lim = power_flow(g, "ac", enforce_q_limits=True)
    assert any("Q limit" in n for n in lim.notes)
    assert lim.converged
    assert lim.generator.loc["2", "q_mvar"] == pytest.approx(2.0)
    assert lim.generator.loc["2", "at_q_limit"]
    assert lim.bus.loc["2", "type"] == "pq"
    assert lim.bus.loc["2", "vm_pu"] < 1.025


def test_several_generators_on_one_bus_share_q_by_range():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.generator.loc["2", ["q_min_mvar", "q_max_mvar"]] = [-100.0, 100.0]
    g.add("generator", index="2b", bus="2", p_mw=0.0, vm_pu=1.025, q_min_mvar=-300.0, q_max_mvar=300.0)
    res = power_flow(g, "ac")
    q = res.generator["q_mvar"]
    one = power_flow(read_matpower(MATPOWER_DIR / "case9.m"), "ac").generator.loc["2", "q_mvar"]
    assert q["2"] + q["2b"] == pytest.approx(one, abs=1e-6)
    assert q["2b"] == pytest.approx(3 * q["2"], rel=1e-9)  # proportional to the Q ranges


def test_result_tables_and_summary():
    g = read_matpower(MATPOWER_DIR / "case30.m")
    res = power_flow(g, "ac")
    assert {"vm_pu", "va_deg", "p_mw", "q_mvar"} <= set(res.bus.columns)
    assert {"p0_mw", "q0_mvar", "p1_mw", "q1_mvar", "loading_percent", "pl_mw"} <= set(res.branch.columns)
    assert list(res.bus.index) == list(g.bus.index)
    assert res.iterations >= 1 and res.converged
    import json

    s = json.loads(res.to_json())
    assert s["n_bus"] == 30 and s["max_loading_percent"] > 0


def test_grid_is_not_mutated():
    g = read_matpower(MATPOWER_DIR / "case14.m")
    before = g.copy()
    power_flow(g, "ac", enforce_q_limits=True)
    power_flow(g, "dc")
    assert g.equals(before)


def test_bad_arguments():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    with pytest.raises(ValueError, match="method"):
        power_flow(g, "acdc")
    with pytest.raises(ValueError, match="init"):
        power_flow(g, "ac", init="warm")
    with pytest.raises(ValueError, match="linear_solver"):
        power_flow(g, "ac", linear_solver="lapack")


def test_zero_impedance_branch_is_named():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.line.loc["4", ["r_pu", "x_pu"]] = 0.0
    with pytest.raises(ValueError, match="branch '4' has zero impedance"):
        power_flow(g, "ac")


def test_q_limits_clamp_generators_on_pq_buses_too():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.add("generator", index="pq_gen", bus="5", p_mw=5.0, q_mvar=30.0, q_max_mvar=10.0, q_min_mvar=-10.0)
    free = power_flow(g, "ac")
    assert free.generator.loc["pq_gen", "q_mvar"] == pytest.approx(30.0)  # a fixed injection
    lim = power_flow(g, "ac", enforce_q_limits=True)
    assert lim.generator.loc["pq_gen", "q_mvar"] == pytest.approx(10.0)
    assert lim.generator.loc["pq_gen", "at_q_limit"]


def test_nan_input_is_an_error_naming_the_element():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.load.loc["5", "p_mw"] = np.nan
    with pytest.raises(ValueError, match="load '5': p_mw = nan"):
        power_flow(g, "ac")


def test_direct_table_edits_are_checked():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.line.loc["1", "bus1"] = "99"
    with pytest.raises(ValueError, match="bus1 = '99' is not a bus id"):
        power_flow(g, "ac")
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.bus.loc["1", "type"] = "slack"
    with pytest.raises(ValueError, match="type 'slack'"):
        power_flow(g, "ac")
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.load = g.load.assign(p_mw=g.load["p_mw"] * 2)  # assignment goes through the schema
    assert g["load"]["p_mw"].sum() == 630
    with pytest.raises(ValueError, match="both a line and a transformer"):
        g.add("transformer", index="1", bus0="1", bus1="4", x_pu=0.1)


def test_zero_reactance_branch_dc_error_and_ac_flat_fallback():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.line.loc["5", "x_pu"] = 0.0  # r > 0 remains: fine for AC, impossible for DC
    with pytest.raises(ValueError, match="branch '5' has x_pu = 0"):
        power_flow(g, "dc")
    with pytest.warns(PowerFlowWarning, match="flat profile"):
        res = power_flow(g, "ac")
    assert res.converged


def test_phase_shifter_in_dead_island_carries_no_flow():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.add("bus", index=["x1", "x2"], vn_kv=230.0)
    g.add("transformer", index="tx", bus0="x1", bus1="x2", x_pu=0.05, shift_deg=10.0)
    g.add("load", index="lx", bus="x2", p_mw=7.0)
    with pytest.warns(PowerFlowWarning, match="de-energised"):
        dc = power_flow(g, "dc")
    assert dc.branch.loc["tx", "p0_mw"] == 0
    assert dc.bus.loc["x2", "p_unserved_mw"] == pytest.approx(7.0)
    assert dc.summary()["unserved_load_mw"] == pytest.approx(7.0)
