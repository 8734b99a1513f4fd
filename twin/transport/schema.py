"""Schema of the road network's component tables.

Flows and capacities in vehicles/h (passenger-car equivalents for mixed classes), travel times in
minutes, lengths in the network's length unit (``TransportNetwork.length_unit``; TNTP files do not
agree on one), tolls in the network's money unit.  Link costs follow the BPR function
``t = t0 · (1 + alpha · (v / capacity) ** beta)``.
"""

from __future__ import annotations

import math

from ..schema import Column as C
from ..schema import TableSchema

NAN = math.nan

NODE = TableSchema(
    "node",
    (
        C("x", "float", "", NAN, doc="map X coordinate as in the source file"),
        C("y", "float", "", NAN, doc="map Y coordinate as in the source file"),
        C("lon", "float", "deg", NAN, doc="WGS84 longitude (optional)"),
        C("lat", "float", "deg", NAN, doc="WGS84 latitude (optional)"),
        C("through", "bool", "", True,
          doc="False for zone nodes that carry no through traffic (TNTP: ids below FIRST THRU NODE)"),
    ),
    doc="Road network nodes (intersections, zone centroids).",
)

LINK = TableSchema(
    "link",
    (
        C("from_node", "str", required=True, references="node"),
        C("to_node", "str", required=True, references="node"),
        C("capacity_veh_h", "float", "vehicles/h", required=True, doc="practical capacity (> 0)"),
        C("length", "float", "length unit", 0.0, doc="length, in TransportNetwork.length_unit"),
        C("free_flow_time_min", "float", "min", required=True, doc="free-flow travel time (>= 0)"),
        C("alpha", "float", "", 0.15, doc="BPR alpha (TNTP 'b')"),
        C("beta", "float", "", 4.0, doc="BPR power"),
        C("speed", "float", "", 0.0, doc="speed limit, in the source file's unit"),
        C("toll", "float", "money", 0.0),
        C("link_type", "int", "", 1),
    ),
    doc="Directed road links; parallel links (same end nodes) are allowed.",
)

ZONE = TableSchema(
    "zone",
    (
        C("node", "str", required=True, references="node", doc="centroid node"),
        C("population", "float", "persons", NAN),
        C("jobs", "float", "jobs", NAN),
    ),
    doc="Traffic analysis zones.",
)

OD = TableSchema(
    "od",
    (
        C("origin", "str", required=True, references="zone"),
        C("destination", "str", required=True, references="zone"),
        C("trips_veh_h", "float", "vehicles/h", required=True, doc="demand (vehicles of the class per hour)"),
        C("hour", "int", "h", -1, doc="hour of the day 0-23; -1 for a static (all-day or peak-hour) demand"),
        C("vehicle_class", "str", "", "car", references="vehicle_class"),
    ),
    doc="Origin-destination demand, sparse: one row per (origin, destination, hour, class) with trips.",
    index_doc="integer-like string row id",
)

VEHICLE_CLASS = TableSchema(
    "vehicle_class",
    (
        C("pce", "float", "", 1.0, doc="passenger-car equivalent of one vehicle"),
        C("name", "str", "", ""),
    ),
    doc="Vehicle classes (car, truck, ev …) and their passenger-car equivalents.",
)

TABLES = {t.name: t for t in (NODE, LINK, ZONE, OD, VEHICLE_CLASS)}
