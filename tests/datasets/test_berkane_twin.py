"""The coupled Berkane twin as users load it: stored files, coupling, balances, the cascade engine, maps,
bad input, and the generator rebuilding the very same files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from twin import load_berkane
from twin.cascade import Outage, required_demand, run_cascade, simulate_coupled
from twin.coupled import CouplingError
from twin.datasets.berkane import DATA_DIR


@pytest.fixture(scope="module")
def summer():
    return load_berkane("summer")


@pytest.fixture(scope="module")
def day(summer):
    return simulate_coupled(summer)


@pytest.fixture(scope="module")
def cascade(summer):
    feeder = summer.bus_info.loc["B_WTP", "feeder"]
    return run_cascade(summer, [Outage("energy", feeder, 6, 18)])


def test_the_twin_holds_three_layers_of_the_required_size(summer):
    assert len(summer.grid.bus) >= 150 and len(summer.water.junction) >= 1000
    assert len(summer.roads.link) >= 300 and len(summer.roads.zone) >= 25
    assert 2 <= len(summer.water.tank) - 1 <= 4  # city tanks, plus Saïdia's
    for table in (summer.grid.bus, summer.water.junction, summer.water.tank, summer.roads.node):
        assert table[["lon", "lat"]].notna().all().all()
    assert summer.districts["population"].sum() == 142_278
    assert len(summer.snapshots) == 24 and summer.snapshots[0] == pd.Timestamp("2026-07-15")
    winter = load_berkane("winter")
    assert winter.series["pv_rooftop_pu"].sum() < summer.series["pv_rooftop_pu"].sum()
    assert winter.water.options.pattern == "RES_WINTER"


def test_energy_balance_closes_every_hour(day):
    e = day.energy
    assert np.abs(e["balance_mw"]).max() < 1e-6
    assert np.allclose(e["generation_mw"], e["served_mw"] + e["losses_mw"] + e["shunt_mw"], atol=1e-6)
    assert (e["unserved_mw"] == 0).all() and (e["vmin_pu"] >= 0.95).all() and (e["vmax_pu"] <= 1.05).all()
    assert e["pv_mw"].max() > 5 and e["pumping_mw"].sum() > 0 and e["ev_mw"].sum() > 0


def test_water_balance_closes_every_hour(summer, day):
    w = day.water
    assert np.abs(w["balance_m3h"]).max() < 1e-3  # supplied = consumed + stored, m³/h
    assert np.allclose(w["delivered_m3h"], w["required_m3h"], rtol=1e-4)  # a normal day serves all demand
    assert (w["people_without_water"] == 0).all()
    req = required_demand(summer.water, np.arange(24) * 3600).sum(axis=1).to_numpy() * 3600
    assert np.allclose(w["required_m3h"], req)


def test_pumping_on_the_grid_is_the_hydraulic_pump_power(summer, day):
    kw = day.pump_power_kw[["PS_WTP_1", "PS_WTP_2", "PS_WTP_3", "PS_EAST_1", "PS_EAST_2"]].sum(axis=1)
    assert np.allclose(day.energy["pumping_mw"], kw / 1000.0)
    plant = summer.coupling.loc["plant_WTP", "kwh_per_m3"]
    assert np.allclose(day.energy["treatment_mw"], day.water["source_m3h"] * plant / 1000.0)


def test_tripping_the_pumping_stations_feeder_drains_the_tanks_as_the_physics_says(summer, cascade):
    d = cascade.disrupted
    lev = d.tank_level
    tank = summer.water.tank
    south = ["T_S1", "T_S2"]
    area = np.pi * tank.loc[south, "diameter_m"] ** 2 / 4
    usable = float(((lev.iloc[6][south] - tank.loc[south, "min_level_m"]) * area).sum())  # m³ at the trip
    # what the gravity zone of T_S1/T_S2 draws: the required demand of its districts (independent of the
    # hydraulic solution) plus what the east booster lifts out of T_S2 into T_E
    req = required_demand(summer.water, np.arange(24) * 3600)
    tag = summer.water.junction["tag"]
    zone = tag.str.match(r"D\d\d$") & ~tag.isin(["D05", "D06"])
    east = d.hydraulics[1].link_flow[["PS_EAST_1", "PS_EAST_2"]].sum(axis=1).mean() * 3600
    draw = req.loc[:, zone[zone].index].sum(axis=1).to_numpy() * 3600 + east
    cum = np.cumsum(draw[6:])
    expected = 6 + int(np.searchsorted(cum, usable)) + 1  # the first hour that starts with the volume gone
    empty = lev.index.get_loc(lev.index[(lev[south] <= tank.loc[south, "min_level_m"] + 0.02).all(axis=1)][0])
    assert abs(empty - expected) <= 1
    # people without water follow: none before the tanks empty, the gravity zone's people once they have
    people = cascade.hourly["people_without_water"]
    city = summer.districts.loc[[z for z in summer.districts.index if z not in ("D05", "D06")], "population"].sum()
    assert people.iloc[empty + 1] >= city
    assert (d.water["people_without_water"].iloc[:6] == 0).all()
    assert cascade.hourly["people_without_power"].iloc[6:18].min() > 0
    assert cascade.kpis["unserved_energy_mwh"] > 0 and cascade.kpis["unserved_water_m3"] > 0
    assert 12 <= cascade.kpis["restoration_by_layer_h"]["water"] < 18  # the tanks refill after 18 h
    s = cascade.summary()
    json.dumps(s)
    assert s["outages"][0]["element"] == summer.bus_info.loc["B_WTP", "feeder"]


def test_outages_of_unknown_elements_name_the_nearest_ids(summer):
    with pytest.raises(CouplingError, match=r"energy element 'F_N9' does not exist; nearest: .*'F_N"):
        simulate_coupled(summer, outages=[Outage("energy", "F_N9", 1, 2)])
    with pytest.raises(CouplingError, match="end_h 1 is not after"):
        simulate_coupled(summer, outages=[Outage("water", "T_S1", 3, 1)])


def test_a_bad_coupling_row_names_the_row_and_the_nearest_ids(summer):
    bad = summer.copy()
    c = bad.coupling.copy()
    c.loc["pump_PS_WTP_1", "element"] = "PS_WTP_9"
    bad.coupling = c
    with pytest.raises(CouplingError, match=r"row 'pump_PS_WTP_1': pump 'PS_WTP_9' is not in the water network; "
                                            r"nearest: 'PS_WTP_"):
        bad.validate()
    c = summer.coupling.copy()
    c.loc["ev_EV_CENTRE", "bus"] = "B_EV_CENTER"
    bad.coupling = c
    with pytest.raises(CouplingError, match=r"bus 'B_EV_CENTER' is not a bus of the grid; nearest: 'B_EV_CENTRE'"):
        bad.validate()


def test_a_series_with_the_wrong_index_names_the_row(summer):
    wrong = summer.series.copy()
    wrong.index = wrong.index + pd.Timedelta(hours=1)
    with pytest.raises(CouplingError, match="row 0: Timestamp\\('2026-07-15 01:00:00'\\), expected "
                                            "Timestamp\\('2026-07-15 00:00:00'\\)"):
        summer.check_series(wrong, "series")


def test_geojson_has_every_layer(summer, tmp_path):
    fc = summer.to_geojson(tmp_path / "berkane.geojson")
    layers = {(f["properties"]["layer"], f["properties"]["kind"]) for f in fc["features"]}
    for want in [("energy", "bus"), ("energy", "line"), ("water", "junction"), ("water", "pipe"), ("water", "tank"),
                 ("roads", "link"), ("roads", "node"), ("district", "district"), ("facility", "facility")]:
        assert want in layers
    again = json.loads((tmp_path / "berkane.geojson").read_text())
    assert len(again["features"]) == len(fc["features"])
    lon = [f["geometry"]["coordinates"][0] for f in fc["features"] if f["geometry"]["type"] == "Point"]
    assert -2.45 < min(lon) and max(lon) < -2.2


def test_the_generator_rebuilds_the_stored_files_exactly(tmp_path):
    pytest.importorskip("pvlib")
    from twin.datasets.berkane.build import build_dataset

    manifest = build_dataset(tmp_path)
    stored = json.loads((DATA_DIR / "MANIFEST.json").read_text())
    assert manifest == stored
