"""Schema of the water network's component tables (SI units).

Heads, elevations, levels and lengths in m; diameters in m; flows and demands
in m³/s; volumes in m³; power in kW.  Pipe ``roughness`` follows the
network's headloss formula: Hazen-Williams C (dimensionless), Darcy-Weisbach
absolute roughness ε (m) or Manning n (s/m^⅓).  Valve ``setting`` is a pressure
(m of head) for PRV/PSV/PBV, a flow (m³/s) for FCV, a loss coefficient for
TCV, a percentage open for PCV; GPV valves use ``curve`` (headloss curve).
Empty strings mean "none" for pattern and curve references.
"""

from __future__ import annotations

import math

from ..schema import Column as C
from ..schema import TableSchema

NAN = math.nan

_XY = (
    C("x", "float", "", NAN, doc="map X coordinate as in the source file ([COORDINATES])"),
    C("y", "float", "", NAN, doc="map Y coordinate as in the source file ([COORDINATES])"),
    C("lon", "float", "deg", NAN, doc="WGS84 longitude (optional)"),
    C("lat", "float", "deg", NAN, doc="WGS84 latitude (optional)"),
    C("tag", "str", "", "", doc="free label ([TAGS])"),
    C("initial_quality", "float", "", 0.0, doc="initial water quality, in the file's quality units"),
)

JUNCTION = TableSchema(
    "junction",
    (
        C("elevation_m", "float", "m", 0.0, doc="ground/reference elevation; pressure = head - elevation"),
        C("emitter_coefficient", "float", "m³/s per m^γ", 0.0,
          doc="emitter (sprinkler/leak) discharge coefficient: q = K·p^γ, γ = options.emitter_exponent"),
    ),
    doc="Nodes where demand is drawn; demands themselves are in the 'demand' table.",
)
JUNCTION = TableSchema(JUNCTION.name, JUNCTION.columns + _XY, JUNCTION.doc)

DEMAND = TableSchema(
    "demand",
    (
        C("junction", "str", required=True, references="junction"),
        C("base_m3s", "float", "m³/s", required=True, doc="base demand (multiplied by the pattern)"),
        C("pattern", "str", "", "", doc="demand pattern id; '' = the default pattern (options.pattern)"),
        C("category", "str", "", "", doc="demand category name"),
    ),
    doc="Demand categories at junctions; a junction may have several, each with its own pattern.",
    index_doc="'<junction>#<k>'",
)

RESERVOIR = TableSchema(
    "reservoir",
    (
        C("head_m", "float", "m", required=True, doc="total head (water surface elevation)"),
        C("head_pattern", "str", "", "", doc="pattern multiplying the head; '' = constant"),
    ) + _XY,
    doc="Fixed-head sources (lakes, aquifers, connections to other systems).",
)

TANK = TableSchema(
    "tank",
    (
        C("elevation_m", "float", "m", required=True, doc="bottom elevation; levels are above it"),
        C("init_level_m", "float", "m", required=True),
        C("min_level_m", "float", "m", 0.0),
        C("max_level_m", "float", "m", required=True),
        C("diameter_m", "float", "m", required=True, doc="diameter of a cylindrical tank"),
        C("min_volume_m3", "float", "m³", 0.0, doc="volume at min level (cylindrical tanks; 0 = area × min level)"),
        C("volume_curve", "str", "", "", doc="volume curve (level m → m³); '' = cylindrical"),
        C("overflow", "bool", "", False, doc="may overflow when full (EPANET 2.2 CanOverflow)"),
    ) + _XY,
    doc="Storage tanks whose level varies over an extended-period run.",
)

_LINK = (
    C("node1", "str", required=True, references="node", doc="start node"),
    C("node2", "str", required=True, references="node", doc="end node"),
)

PIPE = TableSchema(
    "pipe",
    _LINK + (
        C("length_m", "float", "m", required=True),
        C("diameter_m", "float", "m", required=True),
        C("roughness", "float", "", required=True,
          doc="H-W C, D-W ε (m) or C-M n, per options.headloss"),
        C("minor_loss", "float", "", 0.0, doc="minor loss coefficient K (h = K v²/2g)"),
        C("status", "str", "", "OPEN", choices=("OPEN", "CLOSED", "CV"),
          doc="initial status; CV = check valve (flow only from node1 to node2)"),
        C("tag", "str", "", ""),
    ),
    doc="Pipes.",
)

PUMP = TableSchema(
    "pump",
    _LINK + (
        C("head_curve", "str", "", "", doc="head curve id (flow m³/s → head m); '' for constant power"),
        C("power_kw", "float", "kW", 0.0, doc="constant power (when no head curve)"),
        C("speed", "float", "", 1.0, doc="relative speed setting"),
        C("speed_pattern", "str", "", "", doc="pattern of speed settings"),
        C("initial_status", "str", "", "OPEN", choices=("OPEN", "CLOSED")),
        C("efficiency_curve", "str", "", "", doc="efficiency curve id (flow m³/s → %)"),
        C("energy_price", "float", "per kWh", NAN, doc="energy price; NaN = the global price"),
        C("price_pattern", "str", "", "", doc="price pattern; '' = the global price pattern"),
        C("tag", "str", "", ""),
    ),
    doc="Pumps (head added from node1 to node2).",
)

VALVE_TYPES = ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV", "PCV")

VALVE = TableSchema(
    "valve",
    _LINK + (
        C("valve_type", "str", "", required=True, choices=VALVE_TYPES),
        C("diameter_m", "float", "m", required=True),
        C("setting", "float", "", 0.0,
          doc="PRV/PSV/PBV: pressure (m); FCV: flow (m³/s); TCV: loss coefficient; PCV: % open"),
        C("curve", "str", "", "", doc="GPV headloss curve / PCV valve curve"),
        C("minor_loss", "float", "", 0.0),
        C("initial_status", "str", "", "ACTIVE", choices=("ACTIVE", "OPEN", "CLOSED"),
          doc="ACTIVE = controlled by its setting; OPEN/CLOSED fix it ([STATUS])"),
        C("tag", "str", "", ""),
    ),
    doc="Control valves.",
)

TABLES = {t.name: t for t in (JUNCTION, DEMAND, RESERVOIR, TANK, PIPE, PUMP, VALVE)}
NODE_TABLES = ("junction", "reservoir", "tank")
LINK_TABLES = ("pipe", "pump", "valve")
