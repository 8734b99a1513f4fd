"""Rebuild the Berkane dataset deterministically: ``python -m twin.datasets.berkane.build [OUT_DIR]``.

Writes, atomically, into ``twin/datasets/berkane/data/`` (or OUT_DIR): the grid as MATPOWER
(``berkane_grid.m``; the battery in ``grid_storage.csv``, the ids MATPOWER cannot keep in ``grid_ids.csv``)
with its bus table (``grid_buses.csv``: coordinates, feeder, district, people, class split of the load);
the water network as EPANET, one file per season (``berkane_water_summer.inp``,
``berkane_water_winter.inp``); the roads as TNTP (``berkane_roads_net.tntp``, ``_trips.tntp`` (peak
hour), ``_node.tntp``) with ``road_ids.csv`` (TNTP numbers → ids), ``road_links.csv`` (corridor and class
per link), ``road_signals.csv``, ``od_daily.csv`` and ``traffic_profile.csv``; ``districts.csv``,
``facilities.csv``, ``coupling.csv``, ``series_summer.csv``, ``series_winter.csv`` and ``MANIFEST.json``
(SHA-256 of every file).  Needs pvlib (the ``[data]`` extra) for the PV series.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...atomic import atomic_write_text
from ...energy import write_matpower
from ...transport.tntp import write_tntp
from ...water import write_inp
from .frame import frame
from .series import SEASON_DAYS, day_series

__all__ = ["build_dataset", "DATA_DIR", "build_coupling"]

DATA_DIR = Path(__file__).parent / "data"
PLANT_KWH_PER_M3 = 0.25  # treatment process ≈ 0.10 plus raw-water intake and lift ≈ 0.15 kWh/m³ [E]
SIGNAL_KW = 0.5  # one signalised intersection's controller and lamps [E]
DARK_SIGNAL_CAPACITY = 0.6  # a dark signal works as an all-way stop: ~60 % of the approach capacity [E]


def _csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, df.to_csv(float_format="%.10g", lineterminator="\n"))


def build_coupling(fr, grid, bus_info: pd.DataFrame, water, roads, road_meta: dict) -> pd.DataFrame:
    """The coupling table (see :mod:`twin.coupled`) from the layers' contract ids and the sites."""
    rows = []
    for p in water.pump.index:
        site = "B_WTP" if str(p).startswith("PS_WTP") else "B_PS_EAST" if str(p).startswith("PS_EAST") else None
        if site is None:
            raise ValueError(f"pump {p!r} has no feeding bus in the contract")
        rows.append({"id": f"pump_{p}", "kind": "pump", "element": p, "bus": site,
                     "note": "the pump's power is a load on the bus; it stops when the bus is dead"})
    rows.append({"id": "plant_WTP", "kind": "plant", "element": "WTP", "bus": "B_WTP",
                 "kwh_per_m3": PLANT_KWH_PER_M3, "note": "treatment + raw-water intake energy per m³ [E]"})
    hubs = fr.facilities[fr.facilities["kind"] == "ev_hub"]
    dist = fr.districts
    d2 = ((dist["x_km"].to_numpy()[:, None] - hubs["x_km"].to_numpy()[None, :]) ** 2
          + (dist["y_km"].to_numpy()[:, None] - hubs["y_km"].to_numpy()[None, :]) ** 2)
    nearest = pd.Series(hubs.index[np.argmin(d2, axis=1)], index=dist.index)
    for hub in hubs.index:
        zones = [d for d in nearest.index[nearest == hub] if d in roads.zone.index]
        rows.append({"id": f"ev_{hub}", "kind": "ev_hub", "element": hub, "bus": f"B_{hub}", "zones": ";".join(zones),
                     "note": "charging of vehicles ending their trips in the hub's districts (nearest hub)"})
    posts = bus_info[bus_info["kind"].isin(["post", "facility"]) & bus_info["feeder"].astype(str).str.startswith("F_")]
    signals = road_meta["signals"]
    for s in signals.index:
        x, y = float(signals.loc[s, "x_km"]), float(signals.loc[s, "y_km"])
        k = int(np.argmin((posts["x_km"].to_numpy() - x) ** 2 + (posts["y_km"].to_numpy() - y) ** 2))
        rows.append({"id": f"signal_{s}", "kind": "signal", "element": s, "bus": posts.index[k], "p_kw": SIGNAL_KW,
                     "capacity_factor": DARK_SIGNAL_CAPACITY,
                     "note": "fed from the nearest 22/0.4 kV post; dark: all-way stop [E]"})
    out = pd.DataFrame(rows).set_index("id")
    for col in ("kwh_per_m3", "p_kw", "capacity_factor"):
        if col not in out:
            out[col] = np.nan
    for col in ("zones", "note"):
        out[col] = out[col].fillna("") if col in out else ""
    return out[["kind", "element", "bus", "kwh_per_m3", "p_kw", "zones", "capacity_factor", "note"]]


def build_dataset(out_dir: str | Path | None = None) -> dict[str, str]:
    """Generate every layer on the shared frame and write the dataset files; returns the manifest
    (file name → SHA-256)."""
    from .grid import build_grid
    from .roads import build_roads, tntp_numbering
    from .water import build_water, with_season

    out = Path(out_dir) if out_dir is not None else DATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    fr = frame()
    grid, bus_info = build_grid(fr)
    water, water_meta = build_water(fr)
    roads, road_meta = build_roads(fr, season="summer")
    no_storage = grid.copy()  # MATPOWER has no storage table: the battery goes to grid_storage.csv
    no_storage.storage = no_storage.storage.iloc[0:0]
    with warnings.catch_warnings():  # ids and coordinates MATPOWER cannot keep go to grid_ids/grid_buses.csv
        warnings.simplefilter("ignore")
        write_matpower(no_storage, out / "berkane_grid.m", name="berkane_grid")
    _csv(grid.storage, out / "grid_storage.csv")
    br = list(grid.line.index) + list(grid.transformer.index)  # MATPOWER numbers branches and generators 1..n
    ids = pd.concat([pd.DataFrame({"kind": kind, "file_id": [str(i + 1) for i in range(len(names))], "id": names})
                     for kind, names in (("bus", list(grid.bus.index)), ("branch", br),
                                         ("generator", list(grid.generator.index)))], ignore_index=True)
    _csv(ids.set_index(["kind", "file_id"]), out / "grid_ids.csv")
    _csv(bus_info.join(grid.bus[["lon", "lat"]]), out / "grid_buses.csv")
    for season in SEASON_DAYS:  # each season settled on its own daily cycle (README.water)
        write_inp(with_season(water, season), out / f"berkane_water_{season}.inp")
    od = roads.od.copy()  # µveh/h: the last bits of the gravity model's sums differ between pandas versions
    od["trips_veh_h"] = od["trips_veh_h"].round(6)
    roads.od = od
    num, maps = tntp_numbering(roads)  # TNTP needs numbers, zones first
    write_tntp(num, out / "berkane_roads_net.tntp", out / "berkane_roads_trips.tntp", out / "berkane_roads_node.tntp")
    ids = pd.concat([pd.DataFrame({"kind": k, "id": pd.Series(v).index.astype(str),
                                   "tntp_id": pd.Series(v).to_numpy().astype(str)}) for k, v in maps.items()],
                    ignore_index=True)
    _csv(ids.set_index(["kind", "tntp_id"]), out / "road_ids.csv")
    _csv(road_meta["links"], out / "road_links.csv")
    _csv(road_meta["signals"], out / "road_signals.csv")
    _csv(road_meta["od_daily"].set_index(["origin", "destination"]), out / "od_daily.csv")
    _csv(road_meta["hourly_profile"], out / "traffic_profile.csv")
    _csv(fr.districts, out / "districts.csv")
    _csv(fr.facilities, out / "facilities.csv")
    _csv(build_coupling(fr, grid, bus_info, water, roads, road_meta), out / "coupling.csv")
    for season in SEASON_DAYS:
        _csv(day_series(season), out / f"series_{season}.csv")
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != "MANIFEST.json")
    manifest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    atomic_write_text(out / "MANIFEST.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":  # pragma: no cover
    m = build_dataset(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"{len(m)} files written")
