"""The Berkane dataset: a documented synthetic model of the city's 22 kV grid, water network and roads.

``load_berkane(season)`` reads the stored files (MATPOWER, EPANET, TNTP, CSV) into one
:class:`~twin.coupled.CoupledTwin`; ``python -m twin.datasets.berkane.build`` regenerates them.  See the
dataset's README for every assumption and its source.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...coupled import CoupledTwin, CouplingError
from ...energy import Grid, read_matpower
from ...transport import TransportNetwork, read_tntp
from ...water import read_inp
from .frame import PEOPLE_SERVED_BY_PLANT, POPULATION_2024, SAIDIA_POPULATION_2014
from .water import SAIDIA_SUMMER_UPLIFT

__all__ = ["load_berkane", "DATA_DIR", "SEASONS", "EV_DEFAULTS", "LOAD_REFERENCE_HOUR"]

DATA_DIR = Path(__file__).parent / "data"
SEASONS = ("summer", "winter")
LOAD_REFERENCE_HOUR = 21  # the grid's static loads are the summer evening peak at 21 h (README.grid)
# uncontrolled charging [E]: 1 % of vehicles electric today, 30 % of them plug in after a trip, 10 kWh at 7 kW
EV_DEFAULTS = {"share": 0.01, "plug_in_share": 0.3, "kwh_per_session": 10.0, "charger_kw": 7.0}


def _csv(name: str, data_dir: Path, **kw) -> pd.DataFrame:
    path = data_dir / name
    if not path.exists():
        raise FileNotFoundError(f"the Berkane dataset file {name} is missing from {data_dir}: rebuild it with "
                                "python -m twin.datasets.berkane.build")
    return pd.read_csv(path, keep_default_na=False, na_values=[""], **kw)


def _rename_roads(tn: TransportNetwork, ids: pd.DataFrame) -> TransportNetwork:
    """TNTP numbers back to the dataset's ids (nodes, zones, links)."""
    node = dict(zip(ids.loc[ids["kind"] == "node", "tntp_id"].astype(str), ids.loc[ids["kind"] == "node", "id"]))
    zone = dict(zip(ids.loc[ids["kind"] == "zone", "tntp_id"].astype(str), ids.loc[ids["kind"] == "zone", "id"]))
    link = dict(zip(ids.loc[ids["kind"] == "link", "tntp_id"].astype(str), ids.loc[ids["kind"] == "link", "id"]))
    out = tn.copy()
    n = out.node.rename(index=node)
    lk = out.link.rename(index=link)
    lk["from_node"] = lk["from_node"].map(node)
    lk["to_node"] = lk["to_node"].map(node)
    z = out.zone.rename(index=zone)
    z["node"] = z["node"].map(node)
    od = out.od.copy()
    od["origin"] = od["origin"].map(zone)
    od["destination"] = od["destination"].map(zone)
    res = TransportNetwork(name=out.name, length_unit=out.length_unit)
    for name, df in (("node", n), ("link", lk), ("zone", z), ("od", od)):
        res.set_table(name, df)
    for name in out.TABLES:
        if name not in ("node", "link", "zone", "od"):
            res.set_table(name, out[name])
    return res


def _rename_grid(grid, ids: pd.DataFrame):
    """MATPOWER's branch and generator numbers back to the dataset's ids (and the generator cost rows)."""
    br = dict(zip(ids.loc[ids["kind"] == "branch", "file_id"], ids.loc[ids["kind"] == "branch", "id"]))
    gen = dict(zip(ids.loc[ids["kind"] == "generator", "file_id"], ids.loc[ids["kind"] == "generator", "id"]))
    tables = {t: grid[t].copy() for t in grid.TABLES}
    bus = dict(zip(ids.loc[ids["kind"] == "bus", "file_id"], ids.loc[ids["kind"] == "bus", "id"]))
    if set(bus) != set(grid.bus.index):  # the file carries the ids as bus names
        bus = {b: b for b in grid.bus.index}
    tables["bus"] = tables["bus"].rename(index=bus)
    for t, df in tables.items():
        for col in ("bus", "bus0", "bus1"):
            if col in df.columns and t != "bus":
                df[col] = df[col].map(lambda b: bus.get(b, b))
    if len(tables["load"]) and set(tables["load"].index) <= set(bus):
        tables["load"] = tables["load"].rename(index=bus)
    tables["line"] = tables["line"].rename(index=br)
    tables["transformer"] = tables["transformer"].rename(index=br)
    tables["generator"] = tables["generator"].rename(index=gen)
    tables["generator_cost"] = tables["generator_cost"].rename(index=gen)
    return Grid(base_mva=grid.base_mva, name=grid.name, tables=tables)


def _hourly_od(od_daily: pd.DataFrame, profile: pd.Series) -> pd.DataFrame:
    rows = []
    for h, share in profile.items():
        part = od_daily.copy()
        part["trips_veh_h"] = part["trips_veh_day"] * float(share)
        part["hour"] = int(h)
        rows.append(part[part["trips_veh_h"] > 0])
    out = pd.concat(rows, ignore_index=True)
    out["vehicle_class"] = "car"
    out.index = pd.Index([f"h{h:02d}:{o}-{d}" for h, o, d in zip(out["hour"], out["origin"], out["destination"])],
                         name="id")
    return out[["origin", "destination", "trips_veh_h", "hour", "vehicle_class"]]


def load_berkane(season: str = "summer", data_dir: str | Path | None = None) -> CoupledTwin:
    """The Berkane twin for a typical ``season`` day ('summer' or 'winter'), hourly.

    Electricity: the 22 kV grid (loads at the summer evening peak; hourly values come from the class
    profiles in ``series``), PV availability in ``series``.  Water: the summer or winter demand pattern.
    Roads: the peak-hour demand (static rows, hour −1) plus the day's 24 hourly OD matrices.  The
    coupling table is checked (:meth:`CoupledTwin.validate`)."""
    if season not in SEASONS:
        raise ValueError(f"season must be one of {SEASONS}, got {season!r}")
    d = Path(data_dir) if data_dir is not None else DATA_DIR
    grid = _rename_grid(read_matpower(d / "berkane_grid.m"), _csv("grid_ids.csv", d, dtype=str))
    buses = _csv("grid_buses.csv", d, index_col=0, dtype={"district": str, "feeder": str, "substation": str})
    buses[["district", "feeder", "substation"]] = buses[["district", "feeder", "substation"]].fillna("")
    missing = grid.bus.index.difference(buses.index)
    if len(missing):
        raise CouplingError(f"grid_buses.csv has no row for bus {missing[0]!r}")
    bus = grid.bus.copy()
    bus["lon"] = buses.loc[bus.index, "lon"].to_numpy()
    bus["lat"] = buses.loc[bus.index, "lat"].to_numpy()
    grid.bus = bus
    sto = _csv("grid_storage.csv", d, index_col=0)
    if len(sto):
        grid.add("storage", sto.drop(columns=[c for c in sto.columns if c not in grid.storage.columns]))
    water = read_inp(d / f"berkane_water_{season}.inp")
    for table in ("junction", "reservoir", "tank"):
        df = water[table].copy()
        df["lon"], df["lat"] = df["x"], df["y"]
        water.set_table(table, df)
    roads = read_tntp(d / "berkane_roads_net.tntp", d / "berkane_roads_trips.tntp",
                      node_path=d / "berkane_roads_node.tntp")
    roads = _rename_roads(roads, _csv("road_ids.csv", d, dtype=str))
    node = roads.node.copy()
    node["lon"], node["lat"] = node["x"], node["y"]
    roads.node = node
    od_long = _csv("od_daily.csv", d, dtype={"origin": str, "destination": str})
    od_daily = od_long.rename(columns={season: "trips_veh_day"})[["origin", "destination", "trips_veh_day"]]
    profile = _csv("traffic_profile.csv", d, index_col=0)[season]
    od = pd.concat([roads.od, _hourly_od(od_daily, profile)])
    roads.od = od
    series = _csv(f"series_{season}.csv", d, index_col=0, parse_dates=[0])
    series.index = pd.DatetimeIndex(series.index, name="time")
    summer = series if season == "summer" else _csv("series_summer.csv", d, index_col=0, parse_dates=[0])
    ref = summer.iloc[LOAD_REFERENCE_HOUR]
    meta = {"load_reference": {c: float(ref[c]) for c in ("residential", "commercial", "industry", "lighting")},
            "ev": dict(EV_DEFAULTS), "required_pressure_m": 15.0,
            # people behind the water junctions outside the 24 districts (README.water): Saïdia (residents,
            # × the summer tourist uplift) and the nearby centres of the bulk offtake
            "water_people": {"SAIDIA": SAIDIA_POPULATION_2014 * (SAIDIA_SUMMER_UPLIFT if season == "summer" else 1.0),
                             "BULK": float(PEOPLE_SERVED_BY_PLANT - POPULATION_2024 - SAIDIA_POPULATION_2014)},
            # the water works as the day-ahead schedule sees them (README.water): the plant's lift fills the
            # two foothill tanks, the east booster lifts from them to the high zone (districts D05, D06)
            "water_works": {
                "storages": {"FOOTHILL": ["T_S1", "T_S2"], "EAST": ["T_E"]},
                "transfers": {"PS_WTP": {"pumps": ["PS_WTP_1", "PS_WTP_2", "PS_WTP_3"], "from": "",
                                         "to": "FOOTHILL", "bus": "B_WTP"},
                              "PS_EAST": {"pumps": ["PS_EAST_1", "PS_EAST_2"], "from": "FOOTHILL", "to": "EAST",
                                          "bus": "B_PS_EAST"}},
                "zones": {"FOOTHILL": [f"D{i:02d}" for i in range(1, 25) if i not in (5, 6)], "EAST": ["D05", "D06"]}},
            "manifest": json.loads((d / "MANIFEST.json").read_text()) if (d / "MANIFEST.json").exists() else {}}
    twin = CoupledTwin(
        name=f"Berkane ({season} day)", grid=grid, water=water, roads=roads,
        coupling=_csv("coupling.csv", d, index_col=0, dtype={"zones": str, "element": str, "bus": str}).fillna(
            {"zones": "", "note": ""}),
        districts=_csv("districts.csv", d, index_col=0), facilities=_csv("facilities.csv", d, index_col=0),
        bus_info=buses, series=series, road_links=_csv("road_links.csv", d, index_col=0),
        traffic_profile=profile,
        od_daily=od_daily.pivot(index="origin", columns="destination", values="trips_veh_day").fillna(0.0),
        season=season, meta=meta)
    twin.validate()
    if not np.isfinite(series.select_dtypes("number").to_numpy()).all():
        raise CouplingError(f"series_{season}.csv has missing values")
    return twin
