"""The drinking-water layer of the synthetic Berkane model: an EPANET-style network on the shared frame.

:func:`build_water` turns the :class:`~twin.datasets.berkane.frame.Frame` into a
:class:`~twin.water.WaterNetwork` (SI inside, written in LPS) and a few summary tables.  The network is
synthetic but sized on the sourced facts (README.water.md lists every assumption with its status):

* **Sources.**  The ONEE treatment plant's clear-water tank is the fixed-head reservoir ``WTP`` (plant
  ground + 4 m).  Three identical pumps ``PS_WTP_1..3`` (two duty, one standby) lift the city's water through
  a 600 mm rising main to the south-foothill service reservoirs ``T_S1`` and ``T_S2``; the bulk offtake to
  the other centres the plant serves (junction ``BULK_CENTRES``) and the 22 km gravity branch main to
  Saïdia (flow-controlled by ``FCV_SAIDIA`` into the 1,000 m³ tank ``T_SAIDIA``) leave the clear-water tank
  directly.  Boosters ``PS_EAST_1/2`` lift from ``T_S2`` to the eastern high-zone reservoir ``T_E``.
* **Pressure zones.**  Gravity zone (``T_S1``/``T_S2``): the southern and centre-south districts.  High
  zone (``T_E``): the two south-eastern districts.  Reduced zones: the centre-north and north districts,
  one per column of the district lattice, each fed through one PRV ``PRV_<district>`` (a district metered
  area); the boundary pipes between zones are closed valves.
* **Districts.**  Each of the 24 districts is a looped 7 × 7 grid (160 m blocks): a ring main (sized on the
  district's peak flow, at least 200 mm), a 150 mm cross, 100 mm secondary pipes; trunk mains (200–600 mm)
  join the districts' inlets.
* **Demands.**  Population × 172 l/person/day spread evenly over the district's junctions, under a
  residential diurnal pattern (``RES_SUMMER`` the file's default, ``RES_WINTER``; both mean 1).

Positions are the frame's (km east/north of the reference point); every node carries ``lon``/``lat`` and
``x``/``y`` = lon/lat, so the ``.inp`` [COORDINATES] are WGS84.  Generation is deterministic (a fixed seed
for the ±20 m jitter of grid junctions); the initial tank levels and pump statuses are the midnight state of
the daily cycle, found by simulating two days (:func:`settle_initial_state`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...water import Control, Curve, WaterNetwork, simulate_hydraulics
from .frame import (
    PEOPLE_SERVED_BY_PLANT,
    PLANT_CAPACITY_M3_DAY,
    POPULATION_2024,
    SAIDIA_POPULATION_2014,
    WATER_L_PER_PERSON_DAY,
    Frame,
    elevation_m,
    to_lonlat,
)

__all__ = ["build_water", "with_season", "hazen_williams_headloss", "SUMMER_PATTERN", "WINTER_PATTERN",
           "SAIDIA_SUMMER_UPLIFT", "GRID_N", "TANKS",
           "settle_initial_state"]

# --- the district grids [E] ------------------------------------------------------------------------------
GRID_N = 7  # junctions per side of a district grid (49 per district)
GRID_HALF_KM = 0.48  # the grid spans the district centre ± 0.48 km (160 m blocks)
JITTER_KM = 0.02  # deterministic position jitter of grid junctions (so that streets are not a perfect lattice)
SEED = 20240901
STANDARD_DIAMETERS_MM = (100, 150, 200, 250, 300, 400, 500, 600)

# --- water use ------------------------------------------------------------------------------------------
L_PER_PERSON_DAY = WATER_L_PER_PERSON_DAY  # 172 l/person/day gross [D: 56,160 m³/d ÷ 325,500]
SAIDIA_SUMMER_UPLIFT = 3.0  # summer population of Saïdia ÷ residents [E: seaside resort, facts §2]
BULK_POPULATION = PEOPLE_SERVED_BY_PLANT - POPULATION_2024 - SAIDIA_POPULATION_2014  # nearby centres [D]

# residential diurnal multipliers, hour 0..23 [E: typical Mediterranean residential shape — low night use,
# morning peak 07–09 h, midday plateau, evening peak; summer: later, longer evening peak and more night use
# (irrigation, late evenings); winter: sharper morning peak and an earlier evening peak]; normalised to mean 1
_SUMMER_RAW = (0.70, 0.55, 0.48, 0.45, 0.48, 0.60, 0.90, 1.25, 1.40, 1.35, 1.20, 1.15,
               1.20, 1.15, 1.00, 0.95, 1.00, 1.10, 1.25, 1.40, 1.50, 1.45, 1.20, 0.95)
_WINTER_RAW = (0.55, 0.45, 0.40, 0.40, 0.45, 0.65, 1.10, 1.55, 1.50, 1.25, 1.10, 1.05,
               1.15, 1.20, 1.00, 0.90, 0.95, 1.15, 1.45, 1.50, 1.35, 1.10, 0.85, 0.65)


def _normalised(raw: tuple[float, ...]) -> np.ndarray:
    """Multipliers scaled to mean 1 and rounded to 4 decimals, the rounding residue put on the largest one."""
    p = np.round(np.asarray(raw) / np.mean(raw), 4)
    k = int(np.argmax(p))
    p[k] = round(p[k] + round(24.0 - float(p.sum()), 4), 4)
    return p


SUMMER_PATTERN = _normalised(_SUMMER_RAW)
WINTER_PATTERN = _normalised(_WINTER_RAW)

# --- storage [E: 2–4 foothill reservoirs of 1,000–5,000 m³ (facts §4.2); T_SAIDIA 1,000 m³ (S, 2007)] ------
# bottom: ``bottom_m`` (elevation, m) or ``above_ground_m`` (m above the site's terrain)
TANKS = {
    "T_S1": {"volume_m3": 5_000.0, "max_level_m": 6.0, "min_level_m": 0.5, "bottom_m": 236.0,
             "note": "half-buried: bottom 3.3 m below the site's ground"},
    "T_S2": {"volume_m3": 4_000.0, "max_level_m": 6.0, "min_level_m": 0.5, "bottom_m": 236.0,
             "note": "on a 3.5 m embankment: the same bottom as T_S1 (one pressure zone)"},
    "T_E": {"volume_m3": 1_000.0, "max_level_m": 5.0, "min_level_m": 0.5, "above_ground_m": 0.0,
            "note": "on the site's ground"},
    "T_SAIDIA": {"volume_m3": 1_000.0, "max_level_m": 5.0, "min_level_m": 0.5, "above_ground_m": 25.0,
                 "note": "a water tower: bottom 25 m above ground, for ≥ 20 m of pressure in Saïdia"},
}
WTP_HEAD_ABOVE_GROUND_M = 4.0  # clear-water tank's water level above the plant's ground [E]
PRV_HGL_M = 205.0  # hydraulic grade set by the PRVs of the reduced zones [E: ≤ ~70 m static in the north]
PS_WTP_PUMPING_HOURS = 20.0  # two PS_WTP pumps deliver the peak day's city demand in 20 h [E]
PS_EAST_PEAK_FACTOR = 1.1  # one PS_EAST pump delivers 1.1 × the high zone's mean demand [E]
SAIDIA_FCV_FLOW_FACTOR = 1.25  # FCV_SAIDIA's setting ÷ Saïdia's summer mean demand [E]
# pump start / stop levels (m above the tank bottom) [E]; PS_WTP_* on T_S1, PS_EAST_* on T_E
PUMP_LEVELS = {"PS_WTP_1": (4.8, 5.6), "PS_WTP_2": (4.2, 5.3), "PS_WTP_3": (1.5, 3.0),
               "PS_EAST_1": (3.2, 4.5), "PS_EAST_2": (1.0, 2.5)}
SETTLE_DAYS = 2  # days simulated to find the periodic initial state
HW_C = {"trunk": 130.0, "new": 130.0, "main": 120.0, "old": 110.0, "secondary_old": 100.0}


def hazen_williams_headloss(q_m3s: float, length_m: float, diameter_m: float, c: float) -> float:
    """Hazen-Williams head loss (m) of a flow (m³/s) in a pipe (SI form, EPANET's coefficient 10.667)."""
    return 10.667 * length_m * abs(q_m3s) ** 1.852 / (c**1.852 * diameter_m**4.871)


def _size_mm(q_m3s: float, v_max: float = 1.0, minimum: int = 100) -> int:
    """Smallest standard diameter (mm) keeping the velocity of ``q_m3s`` at or below ``v_max`` (m/s)."""
    for d in STANDARD_DIAMETERS_MM:
        if d >= minimum and q_m3s <= v_max * math.pi * (d / 1000.0) ** 2 / 4.0:
            return d
    return STANDARD_DIAMETERS_MM[-1]


class _Builder:
    """Collects nodes and links (positions in frame km) before they become WaterNetwork tables."""

    def __init__(self) -> None:
        self.junctions: dict[str, dict] = {}
        self.pipes: dict[str, dict] = {}
        self.xy: dict[str, tuple[float, float]] = {}

    def junction(self, jid: str, x_km: float, y_km: float, tag: str, elevation: float | None = None) -> str:
        """Add a junction at (x_km, y_km); elevation (m) from the terrain unless given."""
        z = float(elevation_m(x_km, y_km)) if elevation is None else elevation
        self.junctions[jid] = {"elevation_m": round(z, 2), "tag": tag, "x_km": x_km, "y_km": y_km}
        self.xy[jid] = (x_km, y_km)
        return jid

    def place(self, nid: str, x_km: float, y_km: float) -> None:
        """Record the position of a node that is not a junction (reservoir, tank)."""
        self.xy[nid] = (x_km, y_km)

    def length_m(self, a: str, b: str) -> float:
        """Straight-line length (m) between two placed nodes, rounded to 0.1 m."""
        (xa, ya), (xb, yb) = self.xy[a], self.xy[b]
        return round(1000.0 * math.hypot(xb - xa, yb - ya), 1)

    def pipe(self, pid: str, a: str, b: str, d_mm: int, c: float, tag: str, status: str = "OPEN",
             length_m: float | None = None) -> str:
        """Add a pipe a → b of diameter ``d_mm`` (mm), H-W ``c``; length (m) straight-line unless given."""
        length = self.length_m(a, b) if length_m is None else length_m
        if length <= 0.0:
            raise ValueError(f"pipe {pid} would have zero length")
        self.pipes[pid] = {"node1": a, "node2": b, "length_m": length, "diameter_m": d_mm / 1000.0,
                           "roughness": c, "status": status, "tag": tag}
        return pid


def _district_layout(fr: Frame) -> pd.DataFrame:
    """Districts with their lattice ``row`` (0 = south … 3 = north), ``col`` (0 = west … 5 = east) and
    pressure ``zone``: 'gravity' (T_S1/T_S2), 'high' (T_E: the two south-eastern districts) or
    'reduced:<inlet district>' (a centre-north district and the north district of its column, behind one PRV)."""
    d = fr.districts.copy()
    k = np.array([int(i[1:]) - 1 for i in d.index])
    d["row"], d["col"] = k // 6, k % 6
    if not (d.groupby("row")["y_km"].mean().is_monotonic_increasing
            and d.groupby("col")["x_km"].mean().is_monotonic_increasing):
        raise ValueError("the frame's district ids are not in lattice order (rows south→north, columns W→E)")
    zone = np.where((d["row"] == 0) & (d["col"] >= 4), "high", "gravity").astype(object)
    inlet = {c: d.index[(d["row"] == 2) & (d["col"] == c)][0] for c in range(6)}
    for i, (r, c) in enumerate(zip(d["row"], d["col"])):
        if r >= 2:
            zone[i] = f"reduced:{inlet[c]}"
    d["zone"] = zone
    return d


def _node(did: str, i: int, j: int) -> str:
    """Id of the grid junction in row ``i`` (south → north) and column ``j`` (west → east) of a district."""
    return f"{did}_{i}_{j}"


def _inlet(did: str) -> str:
    """A district's inlet junction: the middle of its ring main's southern side."""
    return _node(did, 0, GRID_N // 2)


def _add_district_grids(b: _Builder, d: pd.DataFrame) -> None:
    """The looped grid of each district: ring main (sized on the district's peak flow), a 150 mm cross
    through the middle, 100 mm secondary pipes.  Roughness by age [E]: older centre rows C 110/100,
    southern extension C 130, the rest C 120."""
    rng = np.random.default_rng(SEED)
    n, mid = GRID_N, GRID_N // 2
    offs = np.linspace(-GRID_HALF_KM, GRID_HALF_KM, n)
    for did, row in d.iterrows():
        jit = rng.uniform(-JITTER_KM, JITTER_KM, size=(n, n, 2))
        for i in range(n):
            for j in range(n):
                x = row["x_km"] + offs[j] + jit[i, j, 0]
                y = row["y_km"] + offs[i] + jit[i, j, 1]
                b.junction(_node(did, i, j), x, y, did)
        peak = row["population"] * L_PER_PERSON_DAY / 86_400e3 * float(SUMMER_PATTERN.max())
        ring = max(200, _size_mm(peak / 2.0, v_max=0.8))  # the inlet feeds the ring both ways
        if row["row"] == 0:
            c_main, c_sec = HW_C["new"], HW_C["new"]
        elif row["role"] == "centre" or row["row"] == 1:
            c_main, c_sec = HW_C["old"], HW_C["secondary_old"]
        else:
            c_main, c_sec = HW_C["main"], HW_C["main"]
        for i in range(n):
            for j in range(n):
                for di, dj, kind in ((0, 1, "h"), (1, 0, "v")):
                    i2, j2 = i + di, j + dj
                    if i2 >= n or j2 >= n:
                        continue
                    on_ring = (kind == "h" and i in (0, n - 1)) or (kind == "v" and j in (0, n - 1))
                    on_cross = (kind == "h" and i == mid) or (kind == "v" and j == mid)
                    dmm, c = (ring, c_main) if on_ring else (150, c_main) if on_cross else (100, c_sec)
                    b.pipe(f"P_{did}_{kind}{i}{j}", _node(did, i, j), _node(did, i2, j2), dmm, c, did)


def _daily_m3s(population: float) -> float:
    """Mean demand (m³/s) of a population at 172 l/person/day."""
    return population * L_PER_PERSON_DAY / 86_400e3


def _add_trunks(b: _Builder, d: pd.DataFrame, fac: pd.DataFrame) -> dict[str, str]:
    """Trunk mains between district inlets, the reservoirs' outlet mains and the PRVs' upstream nodes;
    diameters sized for the peak flow of what each main serves (≤ ~1 m/s).  Returns PRV id → district."""
    at = {(r, c): i for i, r, c in zip(d.index, d["row"], d["col"])}
    pop = d["population"]
    peak = float(SUMMER_PATTERN.max())

    def column_pop(c: int, rows: range) -> float:
        return float(sum(pop[at[(r, c)]] for r in rows))

    def size(population: float, minimum: int = 250) -> int:
        return _size_mm(_daily_m3s(population) * peak, v_max=1.0, minimum=minimum)

    tr = HW_C["trunk"]
    for t in ("T_S1", "T_S2", "T_E"):
        b.place(t, fac.at[t, "x_km"], fac.at[t, "y_km"])
    gravity = d.index[d["zone"] != "high"]
    half = float(pop[gravity].sum()) / 2.0
    b.pipe("P_T_S1_OUT", "T_S1", _inlet(at[(0, 2)]), size(half), tr, "TRUNK")
    b.pipe("P_T_S2_OUT", "T_S2", _inlet(at[(0, 3)]), size(half), tr, "TRUNK")
    # southern trunk (row 0, gravity columns 0–3) and the columns' rising trunks row 0 → 1
    for c in range(3):  # D01–D02 serves column 0, D02–D03 columns 0–1, D03–D04 joins the two tanks' inlets
        served = column_pop(0, range(4)) + (column_pop(1, range(4)) if c >= 1 else 0.0)
        b.pipe(f"P_TR_{at[(0, c)]}_{at[(0, c + 1)]}", _inlet(at[(0, c)]), _inlet(at[(0, c + 1)]), size(served),
               tr, "TRUNK")
    east = column_pop(4, range(1, 4)) + column_pop(5, range(1, 4))  # the two eastern columns, fed via D10
    for c in range(4):
        served = column_pop(c, range(1, 4)) + (east if c == 3 else 0.0)
        b.pipe(f"P_TR_{at[(0, c)]}_{at[(1, c)]}", _inlet(at[(0, c)]), _inlet(at[(1, c)]), size(served), tr,
               "TRUNK")
    # centre-south trunk (row 1, west → east): loops D07…D10; D10 → D11 → D12 feeds the two eastern columns
    for c in range(5):
        served = {3: east, 4: column_pop(5, range(1, 4))}.get(c, column_pop(c, range(1, 4)))
        b.pipe(f"P_TR_{at[(1, c)]}_{at[(1, c + 1)]}", _inlet(at[(1, c)]), _inlet(at[(1, c + 1)]), size(served),
               tr, "TRUNK")
    # reduced zones: trunk row 1 → PRV upstream node → PRV → inlet of the centre-north district → north district
    prvs = {}
    for c in range(6):
        up, dn, nn = at[(1, c)], at[(2, c)], at[(3, c)]
        x, y = b.xy[_inlet(dn)]
        u = b.junction(f"{dn}_PRV", x, y - 0.03, dn)
        b.pipe(f"P_TR_{up}_{dn}", _inlet(up), u, size(column_pop(c, range(2, 4))), tr, "TRUNK")
        prvs[f"PRV_{dn}"] = dn
        b.pipe(f"P_TR_{dn}_{nn}", _inlet(dn), _inlet(nn), size(float(pop[nn]), minimum=200), tr, "TRUNK")
    # high zone: T_E → D06 inlet → D05 inlet
    he, hw = at[(0, 5)], at[(0, 4)]
    b.pipe(f"P_T_E_OUT_{he}", "T_E", _inlet(he), size(float(pop[he] + pop[hw])), tr, "TRUNK")
    b.pipe(f"P_TR_{he}_{hw}", _inlet(he), _inlet(hw), size(float(pop[hw]), minimum=200), tr, "TRUNK")
    # closed boundary valves between pressure zones (DMA boundaries): 150 mm pipes between facing ring nodes
    n, mid = GRID_N, GRID_N // 2
    pairs = [((0, 3), (0, 4), "E"), ((0, 4), (1, 4), "N"), ((0, 5), (1, 5), "N")]
    pairs += [((r, c), (r, c + 1), "E") for r in (2, 3) for c in range(5)]
    pairs += [((1, c), (2, c), "N") for c in range(6)]
    for (r1, c1), (r2, c2), way in pairs:
        a, z = at[(r1, c1)], at[(r2, c2)]
        if way == "E":
            n1, n2 = _node(a, mid, n - 1), _node(z, mid, 0)
        else:  # north: west quarter of the facing sides, away from the trunk
            n1, n2 = _node(a, n - 1, 1), _node(z, 0, 1)
        b.pipe(f"P_BND_{a}_{z}", n1, n2, 150, HW_C["main"], "BOUNDARY", status="CLOSED")
    return prvs


def _line(b: _Builder, prefix: str, a: str, z_xy: tuple[float, float], step_km: float, tag: str) -> list[str]:
    """Junctions every ~``step_km`` along the straight line from node ``a`` towards ``z_xy`` (excluded)."""
    (xa, ya), (xz, yz) = b.xy[a], z_xy
    k = max(1, round(math.hypot(xz - xa, yz - ya) / step_km))
    return [b.junction(f"{prefix}_{i:02d}", xa + (xz - xa) * i / k, ya + (yz - ya) * i / k, tag)
            for i in range(1, k)]


def _chain(b: _Builder, prefix: str, nodes: list[str], d_mm: int, c: float, tag: str) -> None:
    """Pipes joining consecutive nodes."""
    for i, (a, z) in enumerate(zip(nodes[:-1], nodes[1:])):
        b.pipe(f"{prefix}_{i + 1:02d}", a, z, d_mm, c, tag)


def _pump_curve(q_design: float, h_design: float) -> Curve:
    """EPANET's standard three-point head curve through the design point: shut-off 4/3 H, zero head at 2 Q."""
    return Curve("HEAD", [0.0, q_design, 2.0 * q_design], [4.0 * h_design / 3.0, h_design, 0.0])


def _tank_row(fac: pd.DataFrame, tid: str) -> dict:
    """Tank table row (m) from :data:`TANKS` and the site: a cylinder holding ``volume_m3`` at max level."""
    spec = TANKS[tid]
    ground = float(fac.at[tid, "elevation_m"])
    elev = spec.get("bottom_m", ground + spec.get("above_ground_m", 0.0))
    area = spec["volume_m3"] / spec["max_level_m"]
    return {"elevation_m": round(elev, 2), "max_level_m": spec["max_level_m"], "min_level_m": spec["min_level_m"],
            "diameter_m": round(math.sqrt(4.0 * area / math.pi), 3)}


def build_water(fr: Frame) -> tuple[WaterNetwork, dict[str, pd.DataFrame]]:
    """The Berkane water network on the frame ``fr`` and its summary tables.

    Returns ``(wn, tables)``: ``wn`` a 24 h extended-period :class:`~twin.water.WaterNetwork` (summer day,
    demand model DDA, flow units LPS when written); ``tables`` has ``districts`` (per district: zone, number
    of junctions, pipe km, population, mean demand m³/day), ``facilities`` (the water facilities: element
    ids, site, elevation m, capacity) and ``demand_groups`` (city / Saïdia / bulk: population served,
    m³/day in summer and winter).
    """
    d = _district_layout(fr)
    fac = fr.facilities
    b = _Builder()
    _add_district_grids(b, d)
    prvs = _add_trunks(b, d, fac)

    # -- treatment plant, PS_WTP and the rising main to T_S1/T_S2 --------------------------------------
    wx, wy = fac.at["WTP", "x_km"], fac.at["WTP", "y_km"]
    wtp_head = round(float(fac.at["WTP", "elevation_m"]) + WTP_HEAD_ABOVE_GROUND_M, 2)
    b.place("WTP", wx, wy)
    px, py = fac.at["PS_WTP", "x_km"], fac.at["PS_WTP", "y_km"]
    b.junction("PS_WTP_IN", px + 0.02, py - 0.02, "PS_WTP")
    b.junction("PS_WTP_OUT", px + 0.04, py - 0.04, "PS_WTP")
    b.pipe("P_PS_WTP_SUCTION", "WTP", "PS_WTP_IN", 600, HW_C["trunk"], "PS_WTP")
    # the rising main ends between the two reservoirs, which it feeds through equal 500 mm branches
    sx_ = 0.5 * (fac.at["T_S1", "x_km"] + fac.at["T_S2", "x_km"])
    sy_ = 0.5 * (fac.at["T_S1", "y_km"] + fac.at["T_S2", "y_km"]) + 0.3
    rm = _line(b, "RM", "PS_WTP_OUT", (sx_, sy_), 1.2, "TRUNK")
    split = b.junction("RM_SPLIT", sx_, sy_, "TRUNK")
    _chain(b, "P_RM", ["PS_WTP_OUT", *rm, split], 600, HW_C["trunk"], "TRUNK")
    b.pipe("P_RM_T_S1", split, "T_S1", 500, HW_C["trunk"], "TRUNK")
    b.pipe("P_RM_T_S2", split, "T_S2", 500, HW_C["trunk"], "TRUNK")

    # -- bulk offtake to the other centres at the plant outlet ------------------------------------------
    # a metering point on the transfer main to the centres, which lie on the plain below the plant: its
    # elevation is the plant's ground less 25 m [E], so the offtake is delivered at service pressure (≈ 29 m)
    # and a pressure-driven simulation does not read a shortfall into it
    b.junction("BULK_CENTRES", wx + 0.03, wy + 0.03, "BULK", elevation=float(elevation_m(wx, wy)) - 25.0)
    b.pipe("P_BULK_CENTRES", "WTP", "BULK_CENTRES", 600, HW_C["trunk"], "BULK")

    # -- PS_EAST boosters from T_S2 to T_E -------------------------------------------------------------
    ex, ey = fac.at["PS_EAST", "x_km"], fac.at["PS_EAST", "y_km"]
    b.junction("PS_EAST_IN", ex, ey, "PS_EAST")
    b.junction("PS_EAST_OUT", ex + 0.02, ey - 0.02, "PS_EAST")
    b.pipe("P_PS_EAST_SUCTION", "T_S2", "PS_EAST_IN", 300, HW_C["trunk"], "PS_EAST")
    em = _line(b, "EM", "PS_EAST_OUT", b.xy["T_E"], 1.2, "TRUNK")
    _chain(b, "P_EM", ["PS_EAST_OUT", *em, "T_E"], 300, HW_C["trunk"], "TRUNK")

    # -- Saïdia: gravity branch main from the clear-water tank, FCV, water tower, town grid -------------
    tsx, tsy = fac.at["T_SAIDIA", "x_km"], fac.at["T_SAIDIA", "y_km"]
    gate = (float(fr.external_zones.at["X_SAIDIA", "x_km"]), float(fr.external_zones.at["X_SAIDIA", "y_km"]))
    b.place("T_SAIDIA", tsx, tsy)
    sm0 = b.junction("SM_00", wx + 0.03, wy + 0.06, "SAIDIA_MAIN")
    leg1 = _line(b, "SMA", sm0, gate, 2.0, "SAIDIA_MAIN")
    g = b.junction("SM_GATE", *gate, "SAIDIA_MAIN")
    leg2 = _line(b, "SMB", g, (gate[0], tsy - 1.0), 2.0, "SAIDIA_MAIN")
    fu = b.junction("SAIDIA_FCV_U", tsx - 0.06, tsy - 0.06, "SAIDIA_MAIN")
    tin = b.junction("T_SAIDIA_IN", tsx - 0.03, tsy - 0.03, "SAIDIA_MAIN")
    b.pipe("P_SM_00", "WTP", sm0, 500, HW_C["trunk"], "SAIDIA_MAIN")
    _chain(b, "P_SM", [sm0, *leg1, g, *leg2, fu], 500, HW_C["trunk"], "SAIDIA_MAIN")
    b.pipe("P_T_SAIDIA_IN", tin, "T_SAIDIA", 300, HW_C["trunk"], "SAIDIA_MAIN")
    sx, sy = fac.at["SAIDIA", "x_km"], fac.at["SAIDIA", "y_km"]
    ns, so = 6, 0.2  # Saïdia: 6 × 6 junctions, 200 m blocks [E]
    for i in range(ns):
        for j in range(ns):
            b.junction(f"SAIDIA_{i}_{j}", sx + (j - (ns - 1) / 2) * so, sy + (i - (ns - 1) / 2) * so, "SAIDIA")
    for i in range(ns):
        for j in range(ns):
            for di, dj, kind in ((0, 1, "h"), (1, 0, "v")):
                if i + di < ns and j + dj < ns:
                    ring = (kind == "h" and i in (0, ns - 1)) or (kind == "v" and j in (0, ns - 1))
                    b.pipe(f"P_SAIDIA_{kind}{i}{j}", f"SAIDIA_{i}_{j}", f"SAIDIA_{i + di}_{j + dj}",
                           250 if ring else 100, HW_C["main"], "SAIDIA")
    b.pipe("P_T_SAIDIA_OUT", "T_SAIDIA", "SAIDIA_0_1", 300, HW_C["trunk"], "SAIDIA")

    wn = WaterNetwork("berkane")
    wn.title = ["Berkane Twin - synthetic drinking-water network of Berkane (Morocco)",
                "SI model; summer day; see the dataset README for sources and assumptions"]
    _tables(wn, b, fac, wtp_head)
    _add_valves(wn, prvs)
    _patterns_options(wn)
    _demands(wn, d)
    _pumps_and_controls(wn, d, wtp_head)
    wn.validate()
    wn = settle_initial_state(wn)
    return wn, _summaries(wn, d, fac)


def settle_initial_state(wn: WaterNetwork, days: int = SETTLE_DAYS) -> WaterNetwork:
    """A copy of ``wn`` whose tank levels (m) and pump / FCV statuses at midnight are those of the daily cycle:
    ``days`` days are simulated from the current state and the state at the end becomes the initial one.

    With the level controls the tanks settle into a 24 h cycle within a day (the night refill ends at the
    pumps' stop levels every night), so a day simulated from the settled state ends where it started.
    """
    res = simulate_hydraulics(wn, duration_s=days * 86_400)
    if not res.converged:
        raise RuntimeError("the water network's settling run did not converge")
    out = wn.copy()
    end = res.node_pressure.index[-1]
    t = out.tank.copy()
    t["init_level_m"] = [round(float(res.node_pressure.at[end, i]), 3) for i in t.index]
    out.tank = t
    pu = out.pump.copy()
    pu["initial_status"] = [str(res.link_status.at[end, i]) for i in pu.index]
    out.pump = pu
    va = out.valve.copy()
    va.loc["FCV_SAIDIA", "initial_status"] = "CLOSED" if res.link_status.at[end, "FCV_SAIDIA"] == "CLOSED" \
        else "ACTIVE"
    out.valve = va
    return out


def _lonlat_cols(b: _Builder, ids: list[str]) -> dict[str, np.ndarray]:
    """lon/lat (deg) of placed nodes, and x/y equal to them (the .inp carries WGS84)."""
    xy = np.array([b.xy[i] for i in ids], dtype=float).reshape(-1, 2)
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
    lon, lat = np.round(lon, 7), np.round(lat, 7)
    return {"x": lon, "y": lat, "lon": lon, "lat": lat}


def _tables(wn: WaterNetwork, b: _Builder, fac: pd.DataFrame, wtp_head: float) -> None:
    """Junction, reservoir, tank and pipe tables from the builder."""
    jids = list(b.junctions)
    j = pd.DataFrame.from_dict(b.junctions, orient="index")
    wn.add("junction", index=jids, elevation_m=j["elevation_m"].to_numpy(), tag=j["tag"].to_numpy(),
           **_lonlat_cols(b, jids))
    wn.add("reservoir", index="WTP", head_m=wtp_head, tag="WTP", **_lonlat_cols(b, ["WTP"]))
    tids = list(TANKS)
    rows = pd.DataFrame([_tank_row(fac, t) for t in tids], index=tids)
    rows["init_level_m"] = rows["min_level_m"] + 0.55 * (rows["max_level_m"] - rows["min_level_m"])
    for k, v in _lonlat_cols(b, tids).items():
        rows[k] = v
    rows["tag"] = tids
    wn.add("tank", rows)
    p = pd.DataFrame.from_dict(b.pipes, orient="index")
    wn.add("pipe", p)


def _add_valves(wn: WaterNetwork, prvs: dict[str, str]) -> None:
    """The reduced zones' PRVs (setting = PRV_HGL_M − the downstream junction's elevation) and FCV_SAIDIA
    (its setting is controlled with the tank level; initial setting the design flow)."""
    ids, n1, n2, sets = [], [], [], []
    for vid, dn in prvs.items():
        ids.append(vid)
        n1.append(f"{dn}_PRV")
        n2.append(_inlet(dn))
        sets.append(round(PRV_HGL_M - float(wn.junction.at[_inlet(dn), "elevation_m"]), 2))
    wn.add("valve", index=ids, node1=n1, node2=n2, valve_type="PRV", diameter_m=0.3, setting=sets,
           tag=[prvs[v] for v in ids])
    wn.add("valve", index="FCV_SAIDIA", node1="SAIDIA_FCV_U", node2="T_SAIDIA_IN", valve_type="FCV",
           diameter_m=0.3, setting=_saidia_fcv_m3s(), tag="SAIDIA_MAIN")


def _saidia_fcv_m3s(season: str = "summer") -> float:
    """FCV_SAIDIA's flow setting (m³/s, rounded to 0.1 l/s): 1.25 × Saïdia's mean demand of the season."""
    uplift = SAIDIA_SUMMER_UPLIFT if season == "summer" else 1.0
    return round(SAIDIA_FCV_FLOW_FACTOR * uplift * _daily_m3s(SAIDIA_POPULATION_2014), 4)


def _demands(wn: WaterNetwork, d: pd.DataFrame) -> None:
    """Base demands (m³/s): each district's population × 172 l/d spread evenly over its grid junctions
    (default pattern RES_SUMMER); Saïdia's residents over its junctions (pattern SAIDIA_SUMMER = the
    uplift × RES_SUMMER); the bulk offtake as a flat demand."""
    j = wn.junction
    grid = j.index.str.fullmatch(r"D\d\d_\d_\d")
    rows = []
    for did, row in d.iterrows():
        ids = j.index[grid & (j["tag"] == did)]
        q = _daily_m3s(row["population"]) / len(ids)
        rows += [(f"{i}#0", i, q, "", "residential") for i in ids]
    sai = j.index[j["tag"] == "SAIDIA"]
    rows += [(f"{i}#0", i, _daily_m3s(SAIDIA_POPULATION_2014) / len(sai), "SAIDIA_SUMMER", "saidia")
             for i in sai]
    rows.append(("BULK_CENTRES#0", "BULK_CENTRES", _daily_m3s(BULK_POPULATION), "FLAT", "bulk"))
    # EPANET gives every junction a primary demand: the other junctions get a zero one (as read_inp does)
    done = {r[1] for r in rows}
    rows += [(f"{i}#0", i, 0.0, "", "") for i in j.index if i not in done]
    df = pd.DataFrame(rows, columns=["id", "junction", "base_m3s", "pattern", "category"]).set_index("id")
    df = df.loc[[f"{i}#0" for i in j.index]]  # in junction order, as the .inp lists them
    wn.add("demand", df)


def _patterns_options(wn: WaterNetwork) -> None:
    """Patterns, options and times of the 24 h summer day."""
    wn.patterns = {
        "RES_SUMMER": SUMMER_PATTERN.copy(),
        "RES_WINTER": WINTER_PATTERN.copy(),
        "SAIDIA_SUMMER": np.round(SAIDIA_SUMMER_UPLIFT * SUMMER_PATTERN, 4),
        "SAIDIA_WINTER": WINTER_PATTERN.copy(),
        "FLAT": np.ones(1),
    }
    o = wn.options
    o.flow_units, o.headloss, o.pattern, o.demand_model = "LPS", "H-W", "RES_SUMMER", "DDA"
    o.pressure_units, o.trials, o.accuracy = "METERS", 200, 0.001
    # for pressure-driven runs (PDA): full demand from the 20 m service pressure, none at 0 m [E]
    o.minimum_pressure_m, o.required_pressure_m = 0.0, 20.0
    tm = wn.times
    tm.duration_s, tm.hydraulic_step_s, tm.pattern_step_s, tm.report_step_s = 86_400, 3_600, 3_600, 3_600
    wn.energy.efficiency_pct = 75.0


def _pumps_and_controls(wn: WaterNetwork, d: pd.DataFrame, wtp_head: float) -> None:
    """PS_WTP (3 identical pumps, two deliver the peak day's city demand in 20 h) and PS_EAST (2 pumps, one
    delivers 1.1 × the high zone's mean), each on a design point computed from the mains' H-W losses;
    level controls on T_S1, T_E and T_SAIDIA."""
    p = wn.pipe
    t = wn.tank
    city = _daily_m3s(float(d["population"].sum()))
    q_wtp = city * 24.0 / PS_WTP_PUMPING_HOURS / 2.0
    mid_s1 = t.at["T_S1", "elevation_m"] + 0.5 * (t.at["T_S1", "min_level_m"] + t.at["T_S1", "max_level_m"])
    rising = p[p.index.str.startswith("P_RM_") & (p.index != "P_RM_T_S2")]
    loss = sum(hazen_williams_headloss(2 * q_wtp, r.length_m, r.diameter_m, r.roughness)
               for r in rising.itertuples())
    h_wtp = round(mid_s1 - wtp_head + loss + 2.0, 1)
    high = d.index[d["zone"] == "high"]
    q_east = PS_EAST_PEAK_FACTOR * _daily_m3s(float(d.loc[high, "population"].sum()))
    mid_e = t.at["T_E", "elevation_m"] + 0.5 * (t.at["T_E", "min_level_m"] + t.at["T_E", "max_level_m"])
    mains = p[p.index.str.startswith("P_EM_") | (p.index == "P_PS_EAST_SUCTION")]
    loss_e = sum(hazen_williams_headloss(q_east, r.length_m, r.diameter_m, r.roughness) for r in mains.itertuples())
    h_east = round(mid_e - mid_s1 + loss_e + 2.0, 1)
    wn.curves = {"PS_WTP_HEAD": _pump_curve(round(q_wtp, 4), h_wtp),
                 "PS_EAST_HEAD": _pump_curve(round(q_east, 4), h_east)}
    wn.add("pump", index=["PS_WTP_1", "PS_WTP_2", "PS_WTP_3"], node1="PS_WTP_IN", node2="PS_WTP_OUT",
           head_curve="PS_WTP_HEAD", initial_status=["OPEN", "OPEN", "CLOSED"], tag="PS_WTP")
    wn.add("pump", index=["PS_EAST_1", "PS_EAST_2"], node1="PS_EAST_IN", node2="PS_EAST_OUT",
           head_curve="PS_EAST_HEAD", initial_status=["OPEN", "CLOSED"], tag="PS_EAST")
    c = []
    # start below / stop above the PUMP_LEVELS: duty pumps PS_WTP_1/2 and PS_EAST_1 stop when the night refill
    # reaches the top of their band; the standby pumps start only on a low level that a normal day never reaches
    for pump, (on, off) in PUMP_LEVELS.items():
        tank = "T_S1" if pump.startswith("PS_WTP") else "T_E"
        c.append(Control(pump, "OPEN", "BELOW", node=tank, value=on))
        c.append(Control(pump, "CLOSED", "ABOVE", node=tank, value=off))
    # FCV_SAIDIA: shut above 4.3 m in T_SAIDIA, back to its flow setting below 3.3 m
    c.append(Control("FCV_SAIDIA", "CLOSED", "ABOVE", node="T_SAIDIA", value=4.3))
    c.append(Control("FCV_SAIDIA", "SETTING", "BELOW", setting=_saidia_fcv_m3s(), node="T_SAIDIA",
                     value=3.3))
    wn.controls = c


def with_season(wn: WaterNetwork, season: str, settle: bool = True) -> WaterNetwork:
    """A copy of ``wn`` for a ``"summer"`` or ``"winter"`` day: the default pattern (city demands) becomes
    RES_SUMMER / RES_WINTER and Saïdia's demands SAIDIA_SUMMER (× the tourist uplift) / SAIDIA_WINTER;
    with ``settle`` the initial tank levels and pump statuses are those of that season's daily cycle."""
    if season not in ("summer", "winter"):
        raise ValueError(f"season must be 'summer' or 'winter', got {season!r}")
    out = wn.copy()
    out.options.pattern = f"RES_{season.upper()}"
    dem = out.demand.copy()
    dem.loc[dem["category"] == "saidia", "pattern"] = f"SAIDIA_{season.upper()}"
    out.demand = dem
    q = _saidia_fcv_m3s(season)
    va = out.valve.copy()
    va.loc["FCV_SAIDIA", "setting"] = q
    out.valve = va
    for c in out.controls:
        if c.link == "FCV_SAIDIA" and c.action == "SETTING":
            c.setting = q
    return settle_initial_state(out) if settle else out


def _summaries(wn: WaterNetwork, d: pd.DataFrame, fac: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Summary tables: districts, facilities, demand groups."""
    j, p, dem = wn.junction, wn.pipe, wn.demand
    base = dem.groupby("junction")["base_m3s"].sum()
    out = d[["name", "zone", "population"]].copy()
    out["junctions"] = [int((j["tag"] == i).sum()) for i in d.index]
    out["pipe_km"] = [round(float(p.loc[p["tag"] == i, "length_m"].sum()) / 1000.0, 2) for i in d.index]
    out["demand_m3_day"] = [round(float(base.reindex(j.index[j["tag"] == i]).sum()) * 86_400.0, 1)
                            for i in d.index]
    out["min_elevation_m"] = [float(j.loc[j["tag"] == i, "elevation_m"].min()) for i in d.index]
    out["max_elevation_m"] = [float(j.loc[j["tag"] == i, "elevation_m"].max()) for i in d.index]
    t = wn.tank
    facilities = pd.DataFrame({
        "element": ["reservoir", "pumps", "tank", "tank", "pumps", "tank", "tank", "junction"],
        "ids": ["WTP", "PS_WTP_1,PS_WTP_2,PS_WTP_3", "T_S1", "T_S2", "PS_EAST_1,PS_EAST_2", "T_E", "T_SAIDIA",
                "SAIDIA_*"],
        "capacity": [f"{PLANT_CAPACITY_M3_DAY:,.0f} m3/day (plant)",
                     _pump_text(wn, "PS_WTP_HEAD"), _tank_text(t, "T_S1"), _tank_text(t, "T_S2"),
                     _pump_text(wn, "PS_EAST_HEAD"), _tank_text(t, "T_E"), _tank_text(t, "T_SAIDIA"),
                     f"{SAIDIA_POPULATION_2014} residents x {SAIDIA_SUMMER_UPLIFT:g} in summer"],
    }, index=pd.Index(["WTP", "PS_WTP", "T_S1", "T_S2", "PS_EAST", "T_E", "T_SAIDIA", "SAIDIA"], name="site"))
    facilities["x_km"] = fac.loc[facilities.index, "x_km"]
    facilities["y_km"] = fac.loc[facilities.index, "y_km"]
    facilities["ground_m"] = fac.loc[facilities.index, "elevation_m"]
    city_pop = int(d["population"].sum())
    groups = pd.DataFrame({
        "population": [city_pop, SAIDIA_POPULATION_2014, BULK_POPULATION],
        "summer_m3_day": [_daily_m3s(city_pop) * 86_400, _daily_m3s(SAIDIA_POPULATION_2014) * 86_400
                          * SAIDIA_SUMMER_UPLIFT, _daily_m3s(BULK_POPULATION) * 86_400],
        "winter_m3_day": [_daily_m3s(city_pop) * 86_400, _daily_m3s(SAIDIA_POPULATION_2014) * 86_400,
                          _daily_m3s(BULK_POPULATION) * 86_400],
    }, index=pd.Index(["city", "saidia", "bulk_centres"], name="group")).round(1)
    return {"districts": out, "facilities": facilities, "demand_groups": groups}


def _pump_text(wn: WaterNetwork, curve: str) -> str:
    """Design point of a head curve, as text."""
    cv = wn.curves[curve]
    return f"{cv.x[1] * 1000:.0f} l/s at {cv.y[1]:.1f} m per pump"


def _tank_text(t: pd.DataFrame, tid: str) -> str:
    """Volume between 0 and max level and bottom elevation, as text."""
    r = t.loc[tid]
    vol = math.pi * r["diameter_m"] ** 2 / 4.0 * r["max_level_m"]
    return f"{vol:,.0f} m3, bottom {r['elevation_m']:.1f} m, levels {r['min_level_m']:g}-{r['max_level_m']:g} m"
