"""Validation of the Berkane electricity layer (twin.datasets.berkane.grid) with the twin's own AC power flow,
the MATPOWER round trip and, when installed, PYPOWER's runpf on the written case."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings

import networkx as nx
import numpy as np
import pytest

from tests.conftest import DATA
from twin.datasets.berkane.frame import POPULATION_2024, frame, to_xy
from twin.datasets.berkane.grid import (
    FIRM_MVA,
    MIDDAY_FACTOR,
    SHARE_GROUP,
    SUBSTATION_TRANSFORMERS,
    build_grid,
    build_grid_tables,
    load_class,
    midday_case,
)
from twin.energy import power_flow, read_matpower, to_networkx, write_matpower

FEEDERS = [f"F_{s}{k}" for s in "NS" for k in range(1, 5)]
FACILITY_BUSES = {"B_WTP": "WTP", "B_PS_EAST": "PS_EAST", "B_EV_CENTRE": "EV_CENTRE", "B_EV_N2_EAST": "EV_N2_EAST",
                  "B_EV_SOUTH": "EV_SOUTH", "B_EV_WEST": "EV_WEST", "B_PV_PLANT": "PV_PLANT"}


@pytest.fixture(scope="module")
def fr():
    return frame()


@pytest.fixture(scope="module")
def built(fr):
    return build_grid_tables(fr)


@pytest.fixture(scope="module")
def evening(built):
    res = power_flow(built.grid, tol=1e-10)
    assert res.converged
    return res


@pytest.fixture(scope="module")
def midday(built):
    g = midday_case(built.grid)
    res = power_flow(g, tol=1e-10)
    assert res.converged
    return g, res


def test_build_grid_is_the_tables_and_deterministic(fr, built):
    g, info = build_grid(fr)
    assert g.equals(built.grid) and info.equals(built.bus_info)


def test_size_and_coordinates(built):
    g, info = built.grid, built.bus_info
    assert len(g.bus) >= 150
    assert list(info.index) == list(g.bus.index)
    assert g.bus[["lon", "lat", "vn_kv"]].notna().all().all() and g.bus["name"].str.len().gt(5).all()
    assert set(g.bus["vn_kv"]) == {225.0, 60.0, 22.0}
    x, y = to_xy(g.bus["lon"], g.bus["lat"])
    assert (np.abs(x) <= 6.5).all() and (np.abs(y) <= 4.5).all()  # the city and its near surroundings (km)
    np.testing.assert_allclose(x, info["x_km"], atol=1e-6)  # lon/lat agree with the frame's km
    np.testing.assert_allclose(y, info["y_km"], atol=1e-6)


def test_every_district_is_fed_and_people_add_up(fr, built, evening):
    info = built.bus_info
    posts = info[info["kind"] == "post"]
    assert set(posts["district"]) == set(fr.districts.index)
    assert posts["people"].sum() == POPULATION_2024
    assert (info.loc[info["kind"] != "post", "people"] == 0).all()
    per_district = posts.groupby("district")["people"].sum()
    assert per_district.equals(fr.districts["population"].loc[per_district.index].astype(per_district.dtype))
    assert evening.bus.loc[posts.index, "energised"].all()
    hv = built.grid.bus["vn_kv"] >= 60
    assert (info.loc[hv, "district"] == "").all() and (info.loc[~hv, "district"] != "").all()


def test_facility_buses_are_at_their_sites_on_named_feeders(fr, built):
    g, info = built.grid, built.bus_info
    assert set(FEEDERS) <= set(info["feeder"])
    for bus, site in FACILITY_BUSES.items():
        x, y = to_xy(g.bus.at[bus, "lon"], g.bus.at[bus, "lat"])
        s = fr.facilities.loc[site]
        assert np.hypot(x - s["x_km"], y - s["y_km"]) <= 0.3, bus
        assert info.at[bus, "kind"] == "facility" and g.bus.at[bus, "vn_kv"] == 22.0
        assert info.at[bus, "feeder"] in (FEEDERS if site != "PV_PLANT" else ["F_PV"]), bus
    # the PV plant: its own line from SS_SOUTH's 22 kV busbar
    pv_lines = g.line[(g.line["bus1"] == "B_PV_PLANT") | (g.line["bus0"] == "B_PV_PLANT")]
    assert len(pv_lines) == 1 and set(pv_lines.iloc[0][["bus0", "bus1"]]) == {"B_SOUTH_22", "B_PV_PLANT"}
    gen = g.generator
    assert gen.at["PV_PLANT", "bus"] == "B_PV_PLANT" and gen.at["PV_PLANT", "kind"] == "pv"
    assert gen.at["PV_PLANT", "p_max_mw"] == 10.0
    roof = gen.loc[[f"PV_ROOF_{f}" for f in FEEDERS]]
    assert (roof["kind"] == "pv").all() and 1.0 <= roof["p_max_mw"].sum() <= 6.0
    assert (info.loc[roof["bus"], "feeder"].to_numpy() == np.array(FEEDERS)).all()
    assert info.at[g.storage.at["BESS_SOUTH", "bus"], "substation"] == "SS_SOUTH"
    cost = g.generator_cost
    assert cost.at["GRID_225", "coefficients"][1] > 0
    assert all(cost.at[i, "coefficients"] == (0.0, 0.0, 0.0) for i in gen.index[gen["kind"] == "pv"])
    assert g.bus.at["B_SS225_225", "type"] == "ref" and gen.at["GRID_225", "bus"] == "B_SS225_225"


def test_facility_loads(built):
    load = built.grid.load
    wtp = load.loc[load["bus"] == "B_WTP", "p_mw"].sum()
    assert 1.0 <= wtp <= 1.5
    assert 0.05 <= load.loc[load["bus"] == "B_PS_EAST", "p_mw"].sum() <= 0.2
    for hub in ("B_EV_CENTRE", "B_EV_N2_EAST", "B_EV_SOUTH", "B_EV_WEST"):
        assert 0 < load.loc[load["bus"] == hub, "p_mw"].sum() <= 0.1
    cls = load_class(load.index)
    assert set(cls) == set(MIDDAY_FACTOR)
    pf = load["p_mw"] / np.hypot(load["p_mw"], load["q_mvar"])
    assert pf.between(0.88, 0.96).all()
    # the class split kept in the bus table: shares of each bus's load
    info = built.bus_info
    shares = info[[f"share_{s}" for s in dict.fromkeys(SHARE_GROUP.values())]]
    loaded = info.index.isin(load["bus"])
    np.testing.assert_allclose(shares[loaded].sum(axis=1), 1.0, atol=1e-12)
    assert (shares[~loaded] == 0).all().all()
    res = load[cls == "RES"].groupby("bus")["p_mw"].sum() / load.groupby("bus")["p_mw"].sum()
    np.testing.assert_allclose(info["share_residential"], res.reindex(info.index).fillna(0.0), atol=1e-12)
    assert (info.loc[info["kind"] == "facility", "share_facility"].drop("B_PV_PLANT") == 1).all()


def test_22kv_feeders_are_radial(built):
    g, info = built.grid, built.bus_info
    G = to_networkx(g)
    mv = g.bus.index[g.bus["vn_kv"] == 22.0]
    H = G.subgraph(mv)
    assert all(d["kind"] == "line" for _, _, d in H.edges(data=True))
    for comp in nx.connected_components(H):  # one tree per substation: no loop at 22 kV
        assert nx.is_tree(H.subgraph(comp))
    busbars = list(info.index[(info["kind"] == "busbar") & (info["feeder"] == "MV busbar")])
    assert sorted(busbars) == ["B_NORTH_22", "B_SOUTH_22"]
    feeders = H.subgraph([b for b in mv if b not in busbars])
    comps = list(nx.connected_components(feeders))
    assert len(comps) == len(FEEDERS) + 1  # eight city feeders and the PV plant's line
    seen = set()
    for comp in comps:
        labels = set(info.loc[list(comp), "feeder"])
        assert len(labels) == 1, labels
        feeder = labels.pop()
        seen.add(feeder)
        heads = [(a, b) for a, b in H.edges(busbars) if b in comp or a in comp]
        assert len(heads) == 1, feeder  # one feeder cell at one busbar
        busbar = heads[0][0] if heads[0][0] in busbars else heads[0][1]
        assert set(info.loc[list(comp), "substation"]) == {info.at[busbar, "substation"]}
    assert seen == set(FEEDERS) | {"F_PV"}


def _substation_mva(res, ss: str) -> float:
    """Apparent power (MVA) through a substation's two 60/22 kV units, at their 60 kV side."""
    br = res.branch.loc[list(SUBSTATION_TRANSFORMERS[ss])]
    return float(np.hypot(br["p0_mw"], br["q0_mvar"]).sum())


def _check_case(g, res) -> None:
    vm = res.bus["vm_pu"]
    assert res.bus["energised"].all()
    assert vm.between(0.95, 1.05).all(), (vm.idxmin(), vm.min(), vm.idxmax(), vm.max())
    assert res.branch["loading_percent"].max() < 100.0
    for ss in SUBSTATION_TRANSFORMERS:
        assert _substation_mva(res, ss) <= 0.7 * FIRM_MVA, ss
    load = g.load["p_mw"].sum()
    losses = res.branch["pl_mw"].sum()
    assert 0.005 * load <= losses <= 0.04 * load


def test_evening_peak_power_flow(built, evening):
    g = built.grid
    assert (g.generator.loc[g.generator["kind"] == "pv", "p_mw"] == 0).all()  # evening peak: no PV
    _check_case(g, evening)
    load = g.load["p_mw"].sum()
    assert 30.0 <= load <= 60.0 and 0.2 <= load / POPULATION_2024 * 1e3 <= 0.42  # MW; kW per inhabitant
    q = g.load["q_mvar"].sum()
    assert 0.9 <= load / np.hypot(load, q) <= 0.95
    assert evening.iterations <= 6


def test_midday_power_flow(built, midday):
    g, res = midday
    pv = g.generator["kind"] == "pv"
    assert (g.generator.loc[pv, "p_mw"] == g.generator.loc[pv, "p_max_mw"]).all()
    assert g.generator.loc[pv, "p_mw"].sum() >= 11.0
    assert g.load["p_mw"].sum() < built.grid.load["p_mw"].sum()
    assert g.load.loc[load_class(g.load.index) == "PL", "p_mw"].eq(0).all()  # no street lighting at noon
    _check_case(g, res)
    assert res.branch.at["F_PV_001", "p0_mw"] < -9.0  # the plant exports through its own line


@pytest.mark.parametrize("ss", list(SUBSTATION_TRANSFORMERS))
def test_firm_capacity_with_one_unit_out(built, ss):
    g = built.grid.copy()
    out, kept = SUBSTATION_TRANSFORMERS[ss]
    g.transformer.loc[out, "in_service"] = False
    res = power_flow(g, tol=1e-10)
    assert res.converged and res.bus["energised"].all()
    assert res.branch.at[kept, "loading_percent"] <= 70.0


def _without_storage(g):
    g = g.copy()
    assert (g.storage["p_mw"] == 0).all()  # idle in both cases: dropping it changes no flow
    g.storage = g.storage.iloc[0:0]
    return g


def _write(g, path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="write_matpower: the MATPOWER format does not keep")
        return write_matpower(g, path)


def test_matpower_round_trip(built, tmp_path):
    g = _without_storage(built.grid)
    back = read_matpower(_write(g, tmp_path / "berkane_grid.m"))
    assert back.base_mva == g.base_mva and len(back.bus) == len(g.bus)
    pos = dict(zip(g.bus.index, back.bus.index))
    cols = ["name", "vn_kv", "type", "in_service", "vm_pu", "va_deg", "vmin_pu", "vmax_pu", "area", "zone"]
    assert back.bus[cols].reset_index(drop=True).equals(g.bus[cols].reset_index(drop=True))
    assert back.bus[["lon", "lat"]].isna().all().all()  # coordinates live in the bus CSV, not in MATPOWER
    bcols = ["r_pu", "x_pu", "b_pu", "rate_a_mva", "rate_b_mva", "rate_c_mva", "in_service", "angmin_deg",
             "angmax_deg"]
    for table, extra in (("line", []), ("transformer", ["tap_ratio", "shift_deg"])):
        a, b = g[table], back[table]
        assert len(a) == len(b)
        assert (a["bus0"].map(pos).to_numpy() == b["bus0"].to_numpy()).all()
        assert (a["bus1"].map(pos).to_numpy() == b["bus1"].to_numpy()).all()
        assert b[bcols + extra].reset_index(drop=True).equals(a[bcols + extra].reset_index(drop=True))
    gcols = ["p_mw", "q_mvar", "q_max_mvar", "q_min_mvar", "vm_pu", "mbase_mva", "in_service", "p_max_mw",
             "p_min_mw", "kind", "fuel"]
    assert back.generator[gcols].reset_index(drop=True).equals(g.generator[gcols].reset_index(drop=True))
    assert (g.generator["bus"].map(pos).to_numpy() == back.generator["bus"].to_numpy()).all()
    assert list(back.generator_cost["coefficients"]) == list(g.generator_cost["coefficients"])
    per_bus = g.load.groupby("bus")[["p_mw", "q_mvar"]].sum().rename(index=pos)
    np.testing.assert_allclose(back.load.loc[per_bus.index, ["p_mw", "q_mvar"]], per_bus, rtol=0, atol=1e-12)
    assert len(back.load) == len(per_bus)
    ours, again = power_flow(g, tol=1e-10), power_flow(back, tol=1e-10)
    np.testing.assert_allclose(again.bus["vm_pu"].to_numpy(), ours.bus["vm_pu"].to_numpy(), atol=1e-12)


def _pypower_case(path):
    spec = importlib.util.spec_from_file_location("make_powerflow_reference",
                                                  DATA / "reference" / "make_powerflow_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.parse_matpower_case(path)


@pytest.mark.parametrize("case", ["evening", "midday"])
def test_pypower_runpf_gives_the_same_voltages(built, tmp_path, case):
    pytest.importorskip("pypower")
    from pypower.ppoption import ppoption
    from pypower.runpf import runpf

    g = _without_storage(built.grid if case == "evening" else midday_case(built.grid))
    ppc = _pypower_case(_write(g, tmp_path / "berkane_grid.m"))
    with contextlib.redirect_stdout(io.StringIO()):
        ref, ok = runpf(ppc, ppoption(VERBOSE=0, OUT_ALL=0, PF_TOL=1e-10))
    assert ok
    ours = power_flow(g, tol=1e-10)
    np.testing.assert_allclose(ours.bus["vm_pu"].to_numpy(), ref["bus"][:, 7], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.bus["va_deg"].to_numpy(), ref["bus"][:, 8], rtol=0, atol=1e-5)
    assert ours.generator.at["GRID_225", "p_mw"] == pytest.approx(ref["gen"][0, 1], abs=1e-4)
