"""The coupled twin: the three networks, the coupling table, districts, facility sites and time series.

The **coupling table** (one row per coupling, index = coupling id) ties elements of one layer to another:

=========  ==========================  ====================================================================
kind       element (layer)             meaning
=========  ==========================  ====================================================================
pump       water pump id (water)       the pump's electrical power is a load on ``bus``; the pump stops
                                       when ``bus`` is de-energised
plant      water source id (water)     treatment: ``kwh_per_m3`` × the flow leaving the source is a load on
                                       ``bus``; the source stops supplying when ``bus`` is de-energised
ev_hub     hub id (mobility)           EV charging of trips ending in ``zones`` (';'-separated road zones)
                                       is a load on ``bus``
signal     road node id (roads)        traffic signal fed from ``bus`` (``p_kw``); dark signals cut the
                                       capacity of the links entering the node by ``capacity_factor``
=========  ==========================  ====================================================================

Every referenced id is checked against its network (:meth:`CoupledTwin.validate`); a bad row raises a
:class:`CouplingError` naming the row, the column and the nearest valid ids.
"""

from __future__ import annotations

import copy as _copy
import difflib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .atomic import atomic_write_text
from .energy import Grid
from .transport import TransportNetwork
from .water import WaterNetwork

__all__ = ["CoupledTwin", "CouplingError", "COUPLING_COLUMNS", "nearest_ids"]

COUPLING_COLUMNS = ("kind", "element", "bus", "kwh_per_m3", "p_kw", "zones", "capacity_factor", "note")
KINDS = ("pump", "plant", "ev_hub", "signal")


class CouplingError(ValueError):
    """A coupling row or a time series that does not fit the twin (names the row and the nearest ids)."""


def nearest_ids(name: str, valid, n: int = 3) -> str:
    """The ``n`` valid ids closest to ``name`` (for error messages)."""
    valid = [str(v) for v in valid]
    near = difflib.get_close_matches(str(name), valid, n=n, cutoff=0.0) if valid else []
    return ", ".join(repr(v) for v in near) if near else "(none)"


@dataclass
class CoupledTwin:
    """Berkane's three networks as one model.

    ``grid`` (22 kV and upstream, :class:`~twin.energy.Grid`), ``water`` (:class:`~twin.water.WaterNetwork`),
    ``roads`` (:class:`~twin.transport.TransportNetwork` with hourly demand rows), ``coupling`` (module
    docstring), ``districts`` (population, jobs, coordinates), ``facilities`` (sites), ``bus_info`` (per
    bus: feeder, district, people served, class split of its load), ``series`` (the day's time series,
    hourly: PV availability, class multipliers, tariff …), ``road_links`` (corridor of each link),
    ``traffic_profile`` (share of daily trips per hour), ``od_daily`` (vehicles/day), ``season``.
    """

    name: str
    grid: Grid
    water: WaterNetwork
    roads: TransportNetwork
    coupling: pd.DataFrame
    districts: pd.DataFrame
    facilities: pd.DataFrame
    bus_info: pd.DataFrame
    series: pd.DataFrame
    road_links: pd.DataFrame = field(default_factory=pd.DataFrame)
    traffic_profile: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    od_daily: pd.DataFrame = field(default_factory=pd.DataFrame)
    season: str = "summer"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def snapshots(self) -> pd.DatetimeIndex:
        """The twin's time index (hourly, one day)."""
        return self.series.index

    def copy(self) -> CoupledTwin:
        """A deep copy (scenarios modify copies)."""
        return CoupledTwin(name=self.name, grid=self.grid.copy(), water=self.water.copy(), roads=self.roads.copy(),
                           coupling=self.coupling.copy(), districts=self.districts.copy(),
                           facilities=self.facilities.copy(), bus_info=self.bus_info.copy(),
                           series=self.series.copy(), road_links=self.road_links.copy(),
                           traffic_profile=self.traffic_profile.copy(), od_daily=self.od_daily.copy(),
                           season=self.season, meta=_copy.deepcopy(self.meta))

    # -- checks -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every coupling row and the series index; raise :class:`CouplingError` on the first problem."""
        c = self.coupling
        missing = [col for col in ("kind", "element", "bus") if col not in c.columns]
        if missing:
            raise CouplingError(f"coupling table: column {missing[0]!r} is missing")
        buses = self.grid.bus.index
        zones = self.roads.zone.index
        for cid, row in c.iterrows():
            kind = row["kind"]
            if kind not in KINDS:
                raise CouplingError(f"coupling row {cid!r}: kind {kind!r} is not one of {KINDS}")
            if row["bus"] not in buses:
                raise CouplingError(f"coupling row {cid!r}: bus {row['bus']!r} is not a bus of the grid; nearest: "
                                    f"{nearest_ids(row['bus'], buses)}")
            valid = {"pump": self.water.pump.index, "plant": self.water.reservoir.index,
                     "signal": self.roads.node.index}.get(kind)
            if valid is not None and row["element"] not in valid:
                layer = "roads" if kind == "signal" else "water"
                raise CouplingError(f"coupling row {cid!r}: {kind} {row['element']!r} is not in the {layer} network; "
                                    f"nearest: {nearest_ids(row['element'], valid)}")
            if kind == "ev_hub":
                for z in str(row.get("zones", "") or "").split(";"):
                    if z and z not in zones:
                        raise CouplingError(f"coupling row {cid!r}: zone {z!r} is not a road zone; nearest: "
                                            f"{nearest_ids(z, zones)}")
        for name, ids in (("district", self.districts.index),):
            bad = self.bus_info.loc[self.bus_info["district"].astype(str) != "", "district"]
            unknown = bad[~bad.isin(ids)]
            if len(unknown):
                raise CouplingError(f"bus_info row {unknown.index[0]!r}: {name} {unknown.iloc[0]!r} is unknown; "
                                    f"nearest: {nearest_ids(unknown.iloc[0], ids)}")

    def check_series(self, series: pd.DataFrame | pd.Series, what: str, hours: int | None = None) -> None:
        """A time series must be indexed by the twin's snapshots (the first ``hours`` of them if given); raise
        naming the first bad row."""
        idx, snaps = series.index, self.snapshots if hours is None else self.snapshots[:hours]
        if len(idx) != len(snaps) or not idx.equals(snaps):
            n = min(len(idx), len(snaps))
            pos = next((i for i in range(n) if idx[i] != snaps[i]), n)
            got = idx[pos] if pos < len(idx) else "(missing)"
            want = snaps[pos] if pos < len(snaps) else "(none: too many rows)"
            raise CouplingError(f"{what}: the index does not match the twin's snapshots at row {pos}: {got!r}, "
                                f"expected {want!r} ({len(idx)} rows for {len(snaps)} snapshots)")

    def coupling_of(self, kind: str) -> pd.DataFrame:
        return self.coupling[self.coupling["kind"] == kind]

    # -- maps ---------------------------------------------------------------------------------------------
    def to_geojson(self, path: str | os.PathLike | None = None) -> dict:
        """All layers as one GeoJSON FeatureCollection (WGS84).  Each feature's properties hold ``layer``
        (energy/water/roads/district/facility), ``kind`` (bus, line, transformer, junction, tank,
        reservoir, pipe, pump, valve, node, link, district, …) and ``id``, plus the table's columns."""
        feats: list[dict] = []
        feats += _points(self.grid.bus, "energy", "bus")
        bus_ll = self.grid.bus[["lon", "lat"]]
        for kind in ("line", "transformer"):
            feats += _lines(self.grid[kind], "energy", kind, bus_ll, "bus0", "bus1")
        nodes_ll = pd.concat([self.water[t][["lon", "lat"]] for t in ("junction", "reservoir", "tank")])
        for t in ("junction", "reservoir", "tank"):
            feats += _points(self.water[t], "water", t)
        for t in ("pipe", "pump", "valve"):
            feats += _lines(self.water[t], "water", t, nodes_ll, "node1", "node2")
        road_ll = self.roads.node[["lon", "lat"]]
        feats += _points(self.roads.node, "roads", "node")
        meta = self.road_links
        meta = meta.rename(columns={c: f"{c}_meta" for c in meta.columns if c in self.roads.link.columns})
        links = self.roads.link.join(meta, how="left") if len(meta) else self.roads.link
        feats += _lines(links, "roads", "link", road_ll, "from_node", "to_node")
        feats += _points(self.districts, "district", "district")
        feats += _points(self.facilities, "facility", "facility")
        fc = {"type": "FeatureCollection", "name": self.name, "features": feats}
        if path is not None:
            atomic_write_text(path, json.dumps(fc, allow_nan=False))
        return fc


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) or math.isinf(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean(x) for x in v]
    return v


def _props(row: pd.Series, layer: str, kind: str, ident: Any, skip: tuple = ()) -> dict:
    props = {"layer": layer, "kind": kind, "id": str(ident)}
    for k, v in row.items():
        if k in skip or k in props:
            continue
        props[str(k)] = _clean(v)
    return props


def _points(df: pd.DataFrame, layer: str, kind: str) -> list[dict]:
    out = []
    for ident, row in df.iterrows():
        lon, lat = row.get("lon", np.nan), row.get("lat", np.nan)
        if not (np.isfinite(lon) and np.isfinite(lat)):
            continue
        out.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
                    "properties": _props(row, layer, kind, ident, ("lon", "lat"))})
    return out


def _lines(df: pd.DataFrame, layer: str, kind: str, ends: pd.DataFrame, a: str, b: str) -> list[dict]:
    out = []
    for ident, row in df.iterrows():
        if row[a] not in ends.index or row[b] not in ends.index:
            continue
        p, q = ends.loc[row[a]], ends.loc[row[b]]
        if not np.isfinite([p["lon"], p["lat"], q["lon"], q["lat"]]).all():
            continue
        out.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [
            [float(p["lon"]), float(p["lat"])], [float(q["lon"]), float(q["lat"])]]},
            "properties": _props(row, layer, kind, ident)})
    return out
