"""The Berkane water layer: structure, coordinates, demands and a 24 h extended-period run of the network
built by twin.datasets.berkane.water, validated with the project's hydraulic solver (and EPANET when the
owa-epanet toolkit is installed)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from twin.datasets.berkane.frame import (
    PEOPLE_SERVED_BY_PLANT,
    PLANT_CAPACITY_M3_DAY,
    POPULATION_2024,
    SAIDIA_POPULATION_2014,
    elevation_m,
    frame,
    to_xy,
)
from twin.datasets.berkane.water import SAIDIA_SUMMER_UPLIFT, build_water, with_season
from twin.water import HydraulicWarning, read_inp, simulate_hydraulics, write_inp

FINE_STEP_S = 300  # reporting step of the runs whose volumes are integrated (s)
LPCD = 172.0  # l/person/day
CITY_TANKS = ["T_S1", "T_S2", "T_E"]
TANKS = [*CITY_TANKS, "T_SAIDIA"]
PERIODIC_TOL_M = 0.1  # a day simulated from the settled state ends within 0.1 m of its start level
DISTRICTS = [f"D{k:02d}" for k in range(1, 25)]


def _run(wn, report_step_s: int | None = None):
    """Simulate (DDA), recording every warning; returns (result, warnings)."""
    if report_step_s is not None:
        wn = wn.copy()
        wn.times.report_step_s = report_step_s
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = simulate_hydraulics(wn, demand_model="DDA")
    return res, [w for w in caught if issubclass(w.category, HydraulicWarning)]


@pytest.fixture(scope="module")
def built():
    return build_water(frame())


@pytest.fixture(scope="module")
def wn(built):
    return built[0]


@pytest.fixture(scope="module")
def hourly(wn):
    """The network as shipped: 24 h, hourly steps and reports."""
    return _run(wn)


@pytest.fixture(scope="module")
def fine(wn):
    """The same day reported every 5 minutes (for volumes and tank extremes)."""
    return _run(wn, FINE_STEP_S)


@pytest.fixture(scope="module")
def winter(wn):
    w = with_season(wn, "winter")
    return w, *_run(w, FINE_STEP_S)


def _integral_m3(series: pd.Series) -> float:
    """∫ q dt (m³) of a step series (m³/s) reported at its index times (s): each value holds until the next."""
    t = series.index.to_numpy(dtype=float)
    return float((series.to_numpy()[:-1] * np.diff(t)).sum())


def _tank_volume_m3(wn, levels: pd.DataFrame) -> pd.DataFrame:
    area = np.pi * wn.tank["diameter_m"] ** 2 / 4.0
    return levels[wn.tank.index] * area


# -- structure ---------------------------------------------------------------------------------------------
def test_size_named_elements_and_pipes(wn):
    j = wn.junction
    assert len(j) >= 1000
    assert set(wn.tank.index) == set(TANKS)
    assert 2 <= len(wn.tank.index.drop("T_SAIDIA")) <= 4  # the city's service reservoirs
    assert list(wn.reservoir.index) == ["WTP"]
    assert set(wn.pump.index) == {"PS_WTP_1", "PS_WTP_2", "PS_WTP_3", "PS_EAST_1", "PS_EAST_2"}
    ps = wn.pump.loc[["PS_WTP_1", "PS_WTP_2", "PS_WTP_3"]]
    assert ps["head_curve"].nunique() == 1 and (ps["node1"] == "PS_WTP_IN").all()
    assert (wn.pump.loc[["PS_EAST_1", "PS_EAST_2"], "node1"] == "PS_EAST_IN").all()
    for d in DISTRICTS:  # every district is a grid of ≥ 40 junctions
        assert (j["tag"] == d).sum() >= 40, d
    p = wn.pipe
    assert p["diameter_m"].between(0.1, 0.6).all()
    assert p["roughness"].between(100, 130).all()
    assert (p["length_m"] > 10.0).all()  # no zero-length pipes
    assert wn.options.headloss == "H-W" and wn.options.flow_units == "LPS"
    assert wn.energy.efficiency_pct == 75.0 and all(wn.pump["efficiency_curve"] == "")
    prv = wn.valve[wn.valve["valve_type"] == "PRV"]
    assert len(prv) >= 1 and all(i == f"PRV_{t}" for i, t in prv["tag"].items())


def test_coordinates_are_wgs84_in_berkane_and_saidia(wn):
    nodes = pd.concat([wn.junction[["x", "y", "lon", "lat", "tag"]], wn.reservoir[["x", "y", "lon", "lat", "tag"]],
                       wn.tank[["x", "y", "lon", "lat", "tag"]]])
    assert nodes[["lon", "lat"]].notna().all().all()
    assert (nodes["x"] == nodes["lon"]).all() and (nodes["y"] == nodes["lat"]).all()
    saidia = nodes["tag"].isin(["SAIDIA", "T_SAIDIA"])
    main = nodes["tag"] == "SAIDIA_MAIN"
    city = nodes[~saidia & ~main]
    assert city["lon"].between(-2.40, -2.23).all() and city["lat"].between(34.86, 34.96).all()
    s = nodes[saidia]
    assert s["lat"].between(35.09, 35.13).all() and s["lon"].between(-2.31, -2.28).all()
    assert nodes.loc[main, "lat"].between(34.92, 35.11).all()
    # elevations are the frame's terrain at each junction's position (lon/lat kept to 1e-7 deg ≈ 1 cm)
    j = wn.junction
    x, y = to_xy(j["lon"].to_numpy(), j["lat"].to_numpy())
    terrain = j.index != "BULK_CENTRES"  # the bulk metering point sits 25 m below the plant (README.water)
    assert np.max(np.abs(elevation_m(x, y) - j["elevation_m"].to_numpy())[terrain]) < 0.05


def test_every_node_is_reachable_through_open_links(wn):
    ids = list(wn.node_ids())
    pos = {n: i for i, n in enumerate(ids)}
    links = pd.concat([wn.pipe.loc[wn.pipe["status"] != "CLOSED", ["node1", "node2"]],
                       wn.pump[["node1", "node2"]], wn.valve[["node1", "node2"]]])
    a = links["node1"].map(pos).to_numpy()
    b = links["node2"].map(pos).to_numpy()
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, label = connected_components(g, directed=False)
    assert (label == label[pos["WTP"]]).all()


# -- demands and patterns -------------------------------------------------------------------------------------
def test_demands_follow_population_and_172_lpcd(built):
    wn, tables = built
    fr = frame()
    dem = wn.demand.join(wn.junction["tag"], on="junction")
    by_tag = dem.groupby("tag")["base_m3s"].sum()
    expected = fr.districts["population"] * LPCD / 86_400e3
    assert np.allclose(by_tag[DISTRICTS].to_numpy(), expected[DISTRICTS].to_numpy(), rtol=1e-9)
    assert by_tag["SAIDIA"] == pytest.approx(SAIDIA_POPULATION_2014 * LPCD / 86_400e3, rel=1e-9)
    bulk = PEOPLE_SERVED_BY_PLANT - POPULATION_2024 - SAIDIA_POPULATION_2014
    assert wn.demand.at["BULK_CENTRES#0", "base_m3s"] == pytest.approx(bulk * LPCD / 86_400e3, rel=1e-12)
    assert by_tag.drop(DISTRICTS + ["SAIDIA", "BULK"]).abs().sum() == 0.0
    groups = tables["demand_groups"]
    assert groups["population"].sum() == PEOPLE_SERVED_BY_PLANT
    assert tables["districts"]["population"].sum() == POPULATION_2024


def test_diurnal_patterns(wn):
    assert wn.options.pattern == "RES_SUMMER"
    for pid in ("RES_SUMMER", "RES_WINTER"):
        p = wn.patterns[pid]
        assert len(p) == 24 and p.mean() == pytest.approx(1.0, abs=1e-12)
        assert p[6:11].max() > 1.2 and p[17:23].max() > 1.2 and p[0:5].max() < 0.8  # two peaks, low nights
    assert wn.patterns["SAIDIA_SUMMER"].mean() == pytest.approx(SAIDIA_SUMMER_UPLIFT, rel=1e-4)
    assert set(wn.demand.loc[wn.demand["category"] == "saidia", "pattern"]) == {"SAIDIA_SUMMER"}


# -- the 24 h summer day -------------------------------------------------------------------------------------
def test_24h_run_converges_without_warnings(hourly, fine):
    for res, caught in (hourly, fine):
        assert res.converged and res.halted_at_s is None
        assert res.steps["converged"].all()
        assert res.messages == [] and caught == []
        assert res.node_head.index[-1] == 86_400


def test_service_pressure_at_the_peak_hour(wn, hourly):
    res, _ = hourly
    peak_s = int(np.argmax(wn.patterns["RES_SUMMER"])) * 3600
    p = res.node_pressure.loc[peak_s, wn.junction.index]
    low = p.groupby(wn.junction["tag"]).min()
    assert (low[DISTRICTS] >= 20.0).all(), low[DISTRICTS][low[DISTRICTS] < 20.0]
    assert low["SAIDIA"] >= 20.0


def test_no_distribution_junction_above_90_m(wn, fine):
    res, _ = fine
    dist = wn.junction.index[wn.junction["tag"].isin(DISTRICTS + ["SAIDIA"])]
    assert res.node_pressure[dist].max().max() <= 90.0
    # the PRVs are what keeps the northern districts below it: their static head would exceed 90 m
    t = wn.tank
    top = float((t.loc[["T_S1", "T_S2"], "elevation_m"] + t.loc[["T_S1", "T_S2"], "max_level_m"]).max())
    north = wn.junction.index[wn.junction["tag"].isin([f"D{k}" for k in range(13, 25)])]
    assert (top - wn.junction.loc[north, "elevation_m"]).max() > 90.0
    assert (res.link_status[wn.valve.index[wn.valve["valve_type"] == "PRV"]] == "ACTIVE").all().all()


def test_tanks_cycle_strictly_within_their_levels(wn, fine):
    res, _ = fine
    lv = res.node_pressure[TANKS]
    t = wn.tank.loc[TANKS]
    assert (lv.min() > t["min_level_m"]).all() and (lv.max() < t["max_level_m"]).all()
    assert ((lv.max() - lv.min()) > 0.5).all(), lv.max() - lv.min()
    assert ((lv.iloc[-1] - lv.iloc[0]).abs() <= PERIODIC_TOL_M).all(), lv.iloc[-1] - lv.iloc[0]
    # the duty pumps start and stop on the levels; the standby ones never run on a normal day
    st = res.link_status
    for pump in ("PS_WTP_1", "PS_WTP_2", "PS_EAST_1"):
        assert {"OPEN", "CLOSED"} <= set(st[pump]), pump
    assert (st[["PS_WTP_3", "PS_EAST_2"]] == "CLOSED").all().all()


def test_water_balance_and_plant_production(built, fine):
    wn, tables = built
    res, _ = fine
    production = -_integral_m3(res.node_demand["WTP"])
    demand = _integral_m3(res.node_demand[wn.junction.index].sum(axis=1))
    vol = _tank_volume_m3(wn, res.node_pressure)
    stored = float((vol.iloc[-1] - vol.iloc[0]).sum())
    assert abs(production - demand - stored) / production < 1e-3
    groups = tables["demand_groups"]
    assert demand == pytest.approx(groups["summer_m3_day"].sum(), rel=1e-6)
    # the plant runs near its capacity: the summer day asks ~5 % more (Saïdia's tourists)
    assert 1.0 < production / PLANT_CAPACITY_M3_DAY < 1.1
    # what the city pumps lift (PS_WTP) is the city's demand up to the change in T_S1 + T_S2 + T_E
    lifted = sum(_integral_m3(res.link_flow[p]) for p in ("PS_WTP_1", "PS_WTP_2", "PS_WTP_3"))
    city_change = float((vol[CITY_TANKS].iloc[-1] - vol[CITY_TANKS].iloc[0]).sum())
    assert lifted == pytest.approx(groups.at["city", "summer_m3_day"] + city_change, rel=1e-3)


def test_two_ps_wtp_pumps_deliver_the_peak_day(built, fine):
    wn, tables = built
    res, _ = fine
    q = res.link_flow[["PS_WTP_1", "PS_WTP_2"]]
    both = (res.link_status[["PS_WTP_1", "PS_WTP_2"]] == "OPEN").all(axis=1)
    assert both.any()
    assert float(q[both].sum(axis=1).min()) * 86_400 > tables["demand_groups"].at["city", "summer_m3_day"]
    e = res.pump_energy
    assert (e.loc[["PS_WTP_1", "PS_WTP_2", "PS_EAST_1"], "kwh"] > 0).all()
    assert e.loc[["PS_WTP_3", "PS_EAST_2"], "kwh"].sum() == 0.0
    # ~0.3–0.4 kWh per m³ lifted ~90 m at 75 %: ρ g H / η
    assert 0.25 < e.loc["PS_WTP_1", "kwh_per_m3"] < 0.45


def test_winter_day_uses_less_water(wn, fine, winter):
    w, res_w, caught = winter
    res_s, _ = fine
    assert w.options.pattern == "RES_WINTER" and wn.options.pattern == "RES_SUMMER"
    assert res_w.converged and res_w.messages == [] and caught == []
    dem_s = _integral_m3(res_s.node_demand[wn.junction.index].sum(axis=1))
    dem_w = _integral_m3(res_w.node_demand[w.junction.index].sum(axis=1))
    assert dem_w < dem_s
    # the difference is Saïdia's summer uplift
    saidia = SAIDIA_POPULATION_2014 * LPCD / 1000.0
    assert dem_s - dem_w == pytest.approx((SAIDIA_SUMMER_UPLIFT - 1.0) * saidia, rel=1e-3)
    lv = res_w.node_pressure[TANKS]
    t = w.tank.loc[TANKS]
    assert (lv.min() > t["min_level_m"]).all() and (lv.max() < t["max_level_m"]).all()
    assert ((lv.iloc[-1] - lv.iloc[0]).abs() <= PERIODIC_TOL_M).all()


# -- the .inp file ---------------------------------------------------------------------------------------------
def test_inp_round_trip(wn, tmp_path):
    path = tmp_path / "berkane.inp"
    write_inp(wn, path)
    text = path.read_text()
    assert "Units\tLPS" in text and "\tPS_WTP_HEAD" in text
    back = read_inp(path)
    # the .inp keeps WGS84 in [COORDINATES]; lon/lat are not an .inp field
    for table in ("junction", "reservoir", "tank"):
        df = back[table].copy()
        assert df["lon"].isna().all()
        df["lon"], df["lat"] = df["x"], df["y"]
        back.set_table(table, df)
    assert wn.equals(back)


def test_epanet_reads_the_file_and_agrees(wn, hourly, tmp_path, epanet_hourly):
    path = tmp_path / "berkane.inp"
    write_inp(wn, path)
    res, _ = hourly
    theirs = epanet_hourly(path, TANKS, "PRESSURE")
    assert theirs.attrs["nodes"] == len(wn.node_ids()) and theirs.attrs["links"] == len(wn.link_ids())
    ours = res.node_pressure[TANKS]
    assert list(theirs.index) == list(ours.index)
    assert np.max(np.abs(theirs.to_numpy() - ours.to_numpy())) < 1e-4  # m
