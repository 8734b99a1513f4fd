"""The road network as GeoJSON (RFC 7946), for maps."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text
from .network import TransportNetwork

__all__ = ["to_geojson"]

#: note carried by every feature whose coordinates are the source file's x/y rather than lon/lat
XY_NOTE = "x/y in the source file's map units, not WGS84 lon/lat"
_RESERVED = ("kind", "id", "coordinates")


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values, NaN → None."""
    cols = {}
    for c in df.columns:
        vals = df[c].tolist()
        cols[c] = [None if isinstance(v, float) and math.isnan(v) else v for v in vals]
    names = list(cols)
    return [dict(zip(names, row)) for row in zip(*cols.values())] if names else [{} for _ in range(len(df))]


def _merge_flows(tn: TransportNetwork, flows: pd.DataFrame) -> pd.DataFrame:
    link = tn.link
    unknown = flows.index.difference(link.index)
    if len(unknown):
        raise ValueError(f"flows has {len(unknown)} rows for unknown link ids, e.g. {unknown[0]!r}")
    if not flows.index.is_unique:
        raise ValueError(f"flows repeats link id {flows.index[flows.index.duplicated()][0]!r}")
    extra = []
    for c in flows.columns:
        if c in _RESERVED:
            raise ValueError(f"flows column {c!r} clashes with a feature property; rename it")
        if c in link.columns:  # e.g. from_node/to_node of read_tntp_flows: must agree with the link
            same = link.loc[flows.index, c].to_numpy() == flows[c].to_numpy()
            if not same.all():
                k = int(np.flatnonzero(~same)[0])
                raise ValueError(f"flows row {flows.index[k]!r}: {c} = {flows[c].iat[k]!r} but the link has "
                                 f"{link.at[flows.index[k], c]!r}")
        else:
            extra.append(c)
    return flows[extra].reindex(link.index)


def to_geojson(tn: TransportNetwork, path: str | os.PathLike | None = None, *,
               flows: pd.DataFrame | None = None) -> dict:
    """A GeoJSON FeatureCollection of the links (LineString) and nodes (Point); written to ``path`` if given.

    Every feature's ``properties`` hold ``kind`` (``"link"`` or ``"node"``), ``id`` and the table's
    columns; NaN becomes ``null``.  ``flows`` (a DataFrame indexed by link id, e.g. ``flow``, ``cost``
    from an assignment or :func:`~twin.transport.tntp.read_tntp_flows`) adds its columns to the link
    properties (links it omits get ``null``); a column the link table also has (``from_node``,
    ``to_node``) must agree with it and is not repeated.  The feature ids are ``"link/<id>"`` and
    ``"node/<id>"``.

    GeoJSON coordinates are WGS84 longitude, latitude (RFC 7946; there is no ``crs`` member).  When
    any node has ``lon``/``lat`` those are used (nodes without them, and links touching those nodes,
    get a ``null`` geometry).  When no node has them, the source file's ``x``/``y`` are written instead
    and every feature's properties carry ``"coordinates": "x/y in the source file's map units, not
    WGS84 lon/lat"`` (``null`` otherwise): the file is then valid JSON but a map will misplace it unless
    it is told the coordinate system.  Nodes without any coordinates get a ``null`` geometry.
    """
    node, link = tn.node, tn.link
    lon, lat = node["lon"].to_numpy(dtype=float), node["lat"].to_numpy(dtype=float)
    use_lonlat = bool((np.isfinite(lon) & np.isfinite(lat)).any())
    cx, cy = (lon, lat) if use_lonlat else (node["x"].to_numpy(dtype=float), node["y"].to_numpy(dtype=float))
    note = None if use_lonlat else XY_NOTE
    ok = np.isfinite(cx) & np.isfinite(cy)
    points = [[x, y] if good else None for x, y, good in zip(cx.tolist(), cy.tolist(), ok.tolist())]
    pos = pd.Series(np.arange(len(node)), index=node.index)
    ia = pos.reindex(link["from_node"]).to_numpy()
    ib = pos.reindex(link["to_node"]).to_numpy()

    props = link
    if flows is not None:
        props = pd.concat([link, _merge_flows(tn, flows)], axis=1)
    features = []
    for lid, a, b, rec in zip(link.index.tolist(), ia.tolist(), ib.tolist(), _records(props)):
        pa, pb = points[a], points[b]
        geom = {"type": "LineString", "coordinates": [pa, pb]} if pa is not None and pb is not None else None
        features.append({"type": "Feature", "id": f"link/{lid}", "geometry": geom,
                         "properties": {"kind": "link", "id": lid, **rec, "coordinates": note}})
    for nid, p, rec in zip(node.index.tolist(), points, _records(node)):
        geom = {"type": "Point", "coordinates": p} if p is not None else None
        features.append({"type": "Feature", "id": f"node/{nid}", "geometry": geom,
                         "properties": {"kind": "node", "id": nid, **rec, "coordinates": note}})
    collection = {"type": "FeatureCollection", "name": tn.name, "features": features}
    if path is not None:
        atomic_write_text(path, json.dumps(collection, allow_nan=False, ensure_ascii=False))
    return collection
