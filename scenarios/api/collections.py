"""The network layers as OGC API – Features collections: GeoJSON features (WGS84 lon/lat) of the Berkane twin
(summer data; the layers' geometry and ratings do not change with the season), built once per process from
:meth:`twin.coupled.CoupledTwin.to_geojson`, with each feature's bounding box kept for ``bbox`` filters."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .jsonable import jsonable

__all__ = ["COLLECTIONS", "Layer", "layers", "page"]

# collection id → (title, description, [(layer, kind) of the twin's GeoJSON features])
COLLECTIONS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "buses": ("Grid buses", "Electricity buses (points): voltage level (kV), type, district", [("energy", "bus")]),
    "lines": ("Grid lines and transformers", "Electricity branches (bus0 → bus1): impedances (p.u.), ratings (MVA)",
              [("energy", "line"), ("energy", "transformer")]),
    "junctions": ("Water junctions", "Water network junctions (points): elevation (m), district tag",
                  [("water", "junction")]),
    "pipes": ("Water pipes", "Water pipes (node1 → node2): length (m), diameter (m), roughness",
              [("water", "pipe")]),
    "tanks": ("Water tanks", "Storage tanks (points): levels (m), diameter (m)", [("water", "tank")]),
    "links": ("Road links", "Directed road links: capacity (veh/h), free-flow time (min), corridor",
              [("roads", "link")]),
    "zones": ("Road zones", "Traffic zones (points at their centroid node): population and jobs of the district",
              [("roads", "zone")]),
}


@dataclass
class Layer:
    """One collection's features, their ids and bounding boxes (minLon, minLat, maxLon, maxLat per row)."""

    id: str
    title: str
    description: str
    features: list[dict[str, Any]]
    index: dict[str, int]
    boxes: np.ndarray

    @property
    def extent(self) -> list[float]:
        """The collection's bounding box [minLon, minLat, maxLon, maxLat]."""
        if not len(self.boxes):
            return [-180.0, -90.0, 180.0, 90.0]
        return [float(self.boxes[:, 0].min()), float(self.boxes[:, 1].min()), float(self.boxes[:, 2].max()),
                float(self.boxes[:, 3].max())]


def _zone_features(tw) -> list[dict[str, Any]]:
    zones, nodes, districts = tw.roads.zone, tw.roads.node, tw.districts
    out = []
    for zid, row in zones.iterrows():
        node = row.get("node", zid)
        if node not in nodes.index:
            continue
        lon, lat = float(nodes.at[node, "lon"]), float(nodes.at[node, "lat"])
        if not (np.isfinite(lon) and np.isfinite(lat)):
            continue
        props: dict[str, Any] = {"layer": "roads", "kind": "zone", "id": str(zid), "node": str(node)}
        if zid in districts.index:
            d = districts.loc[zid]
            props.update({col: jsonable(d[col]) for col in ("name", "role", "population", "jobs", "area_km2")
                          if col in d.index})
        out.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props})
    return out


def _box(geom: dict[str, Any]) -> tuple[float, float, float, float]:
    c = geom["coordinates"]
    pts = [c] if geom["type"] == "Point" else c
    lons = [p[0] for p in pts]
    lats = [p[1] for p in pts]
    return min(lons), min(lats), max(lons), max(lats)


@lru_cache(maxsize=1)
def layers() -> dict[str, Layer]:
    """Every collection, built once per process."""
    from twin import load_berkane

    tw = load_berkane("summer")
    by_kind: dict[tuple[str, str], list[dict]] = {}
    for f in tw.to_geojson()["features"]:
        p = f["properties"]
        by_kind.setdefault((p["layer"], p["kind"]), []).append(f)
    by_kind[("roads", "zone")] = _zone_features(tw)
    out = {}
    for cid, (title, desc, kinds) in COLLECTIONS.items():
        feats = []
        for k in kinds:
            for f in by_kind.get(k, []):
                feats.append({"type": "Feature", "id": f["properties"]["id"], "geometry": f["geometry"],
                              "properties": f["properties"]})
        boxes = np.array([_box(f["geometry"]) for f in feats], dtype=float).reshape(-1, 4)
        out[cid] = Layer(cid, title, desc, feats, {f["id"]: i for i, f in enumerate(feats)}, boxes)
    return out


def page(layer: Layer, limit: int, offset: int, bbox: tuple[float, float, float, float] | None
         ) -> tuple[list[dict[str, Any]], int]:
    """The features of one page (after the bbox filter: features whose box intersects it) and how many match."""
    if bbox is None:
        return layer.features[offset:offset + limit], len(layer.features)
    x0, y0, x1, y1 = bbox
    b = layer.boxes
    hit = np.flatnonzero((b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1))
    sel = hit[offset:offset + limit]
    return [layer.features[i] for i in sel], len(hit)
