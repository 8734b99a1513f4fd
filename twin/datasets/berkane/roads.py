"""The road layer of the synthetic Berkane model: a directed road network, its zones and a gravity demand model.

Geometry is synthetic, existence is sourced (facts §1, §6; README.roads.md lists every assumption with its
status): the N2 crosses the city east–west as an urban boulevard (2×2 lanes, 50 km/h, roundabouts and
signals) at ``N2_Y_KM``; the 14 km 2×2 bypass runs north of the city at ``BYPASS_Y_KM`` and joins the N2
west and east of town; Avenue Mohammed V, the commercial spine, runs east–west at ``MOHAMMED_V_Y_KM``; the
road to Saïdia leaves north at ``SAIDIA_ROAD_X_KM``; the express road to Oujda leaves from the bypass' east
junction towards the south-east; a lattice of avenues, collectors and local streets covers the 24 districts.
The classes form a hierarchy (``RoadClass.rank``): the N2 boulevard is the fastest urban road, the undivided
avenues and collectors are slower, local streets slowest, and a road meeting a higher-class one at a priority
junction gives way; a lane's urban capacity is set by the junctions along it.

Units: lengths in km (``TransportNetwork.length_unit = "km"``), speeds in km/h (``link.speed``),
capacities in vehicles/h (passenger cars; no truck class), free-flow times in minutes (junction delay
included), demand in vehicles/day (daily OD) and vehicles/h (the peak-hour ``od`` table).

Demand: a doubly-constrained gravity model in production/attraction format for the internal trips
(productions and attractions from district population and jobs), external trips fixed at the gateways'
``daily_veh`` (through trips between gateways by a Furness-balanced matrix, the rest distributed to the
districts by a singly-constrained gravity model), an exponential deterrence of the free-flow travel time,
a 24-hour profile per season and the peak-hour matrix with the home-based trips split by direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from twin.transport import TransportNetwork

from .frame import BYPASS_Y_KM, MOHAMMED_V_Y_KM, N2_Y_KM, SAIDIA_ROAD_X_KM, Frame, to_lonlat

__all__ = ["RoadClass", "ROAD_CLASSES", "GATEWAYS", "BETA_PER_MIN", "BETA_EXT_PER_MIN", "TRIP_RATES",
           "THROUGH_SHARE", "HB_SHARE", "RETURN_SHARE_EVENING", "build_roads", "hourly_profiles", "trip_ends",
           "free_flow_skim", "furness", "tntp_numbering", "facility_nodes"]

GATEWAYS = ("X_OUJDA", "X_AHFIR", "X_SAIDIA", "X_NADOR")


@dataclass(frozen=True)
class RoadClass:
    """A road class [E]: ``lanes`` per direction, practical capacity ``cap_per_lane`` (vehicles/h/lane),
    free-flow ``speed_kmh``, BPR ``alpha``/``beta``, ``link_type`` code (TNTP ``link_type``), ``rank`` in the
    road hierarchy (1 = highest; 0 for connectors, which are outside it)."""

    name: str
    link_type: int
    lanes: int
    cap_per_lane: float
    speed_kmh: float
    alpha: float = 0.15
    beta: float = 4.0
    rank: int = 0


# Capacities and speeds by class [E: usual planning values, README.roads.md].  Rural and express roads:
# HCM-type practical capacities of 1,400–1,800 veh/h/lane and the posted 70–100 km/h.  Urban roads: a lane's
# capacity is set by the junctions along it — signals and roundabouts every 300–400 m cut it to ~600–800
# veh/h (saturation flow ≈1,500–1,800 veh/h × the green share, or a roundabout entry's capacity under the
# circulating flow): 650 on the N2 boulevard (a roundabout or a signal at every junction; it is the major
# flow), 600 on Avenue Mohammed V (signals, parking, deliveries, taxis stopping), 800 on the other avenues
# (priority over the side streets, few signals), 700 on collectors, 500 on local streets.  Free-flow speeds
# (junction delays added separately): 50 km/h on the divided 2×2 boulevard; 40 km/h on the undivided 1+1
# avenues (kerbside parking, frontage access, left-turners holding up the single lane) and collectors;
# 25 km/h on local streets (a 30 km/h running speed slowed by the unmodelled minor junctions every ~100 m).
ROAD_CLASSES = {c.name: c for c in (
    RoadClass("express", 1, 2, 1800.0, 100.0, rank=1),  # the 2×2 bypass and the express road to Oujda
    RoadClass("national_2x2", 2, 2, 1500.0, 70.0, rank=1),  # N2 between the city edge and the bypass
    RoadClass("national", 3, 1, 1400.0, 80.0, rank=2),  # N2 east towards Ahfir, two-lane road
    RoadClass("urban_boulevard", 4, 2, 650.0, 50.0, rank=3),  # the N2 and the road to Saïdia inside the city
    RoadClass("avenue", 5, 1, 600.0, 40.0, rank=4),  # Avenue Mohammed V (2 lanes in its core): shops, signals
    RoadClass("regional", 6, 1, 1400.0, 80.0, rank=2),  # the road to Saïdia outside the city
    RoadClass("urban_arterial", 7, 1, 800.0, 40.0, rank=4),  # the avenues from the centre to the southern extension
    RoadClass("collector", 8, 1, 700.0, 40.0, rank=5),
    RoadClass("local", 9, 1, 500.0, 25.0, rank=6),
    RoadClass("connector", 10, 1, 5000.0, 20.0, alpha=0.0, beta=0.0),  # zone access, never congested
)}

# junction delay added to the free-flow time of every link *entering* a controlled junction, min [E:
# ~15 s mean signal delay at low volume/capacity, ~6 s yield delay at an urban roundabout]
JUNCTION_DELAY_MIN = {"signal": 0.25, "roundabout": 0.10, "priority": 0.0, "interchange": 0.0, "none": 0.0}
# added to a road link entering a priority junction where a road of a higher class (smaller rank) passes: it
# gives way, min [E: ~9 s, the control delay of a minor-street approach at low conflicting flow]
GIVE_WAY_DELAY_MIN = 0.15

# street lattice (km): 13 columns 600 m apart (one on the Saïdia road), 8 rows on the corridors
GRID_X = tuple(round(-3.8 + 0.6 * k, 2) for k in range(13))
GRID_Y = (-2.4, -1.8, -1.2, -0.6, MOHAMMED_V_Y_KM, N2_Y_KM, 1.6, 2.3)
COLLECTOR_X = (-2.6, 2.2)  # north–south collectors [E]
COLLECTOR_Y: tuple[float, ...] = ()  # no east–west collector: the N2 is the through street of the north [E]
ARTERIAL_Y = (-1.2,)  # the east–west avenue of the southern extension [E]
MOHAMMED_V_X = (-2.6, 2.8)  # extent of the avenue [E]
MOHAMMED_V_2X2_X = (-0.2, 0.4)  # its central part with 2 lanes per direction [E]
# gaps in the local east–west streets (segment starting at column x, per row y): only the N2, Avenue
# Mohammed V's line and the southern extension's avenue cross the city from end to end ('a single boulevard
# crosses the city', facts §1) [E]
LOCAL_GAPS = {-2.4: (-2.6, 0.4, 2.2), -1.8: (-2.0, 1.0), -0.6: (-1.4, 1.6), 1.6: (-2.0, 0.4, 2.2), 2.3: (-0.8, 2.2)}
SIGNALS_MOHAMMED_V_X = (-2.6, -2.0, -0.8, -0.2, 0.4, 1.0, 2.2)  # signalised crossings [E]
SIGNALS_N2_X = (-2.6, -0.2, 0.4, 2.2)  # signalised N2 crossings; the other N2 junctions are roundabouts [E]
SIGNALS_OTHER = ((-0.2, -1.2), (1.0, -1.2), (-0.2, 1.6))  # avenue crossings off the corridors [E]
ARTERIAL_X = (-0.2, SAIDIA_ROAD_X_KM)  # the two north–south avenues from the centre to the south [E]
FRONTAGE_KM = 0.8  # districts whose centroid is this close to Avenue Mohammed V are served from it [E]
N2_ACCESS_KM = 1.0  # districts this close to the N2 (the rows either side of it) have a connector to it [E]
N_CONNECTORS, N_FRONTAGE = 3, 2  # connectors per district: to junctions; to the avenue's frontage points [E]

# demand parameters
TRIP_RATES = {  # vehicle trips/day in production-attraction format [E, see README.roads.md]
    "production_per_inhabitant": 0.60,
    "production_per_job": 0.30,
    "attraction_per_job": 1.00,
    "attraction_per_inhabitant": 0.20,
}
HB_SHARE = 0.75  # share of the internal trips that are home-based (directional at the peaks) [E]
RETURN_SHARE_EVENING = 0.65  # of the home-based trips in the evening peak hour, share going home [E]
BETA_PER_MIN = 0.10  # deterrence exp(−β t) of the internal trips, t = free-flow time in min [E]
BETA_EXT_PER_MIN = 0.05  # deterrence of the external–internal trips [E: long trips, weak in-city choice]
INTRAZONAL_FACTOR = 0.5  # intrazonal time = factor × time to the nearest other district [E: usual rule]
THROUGH_SHARE = {"X_OUJDA": 0.45, "X_AHFIR": 0.30, "X_SAIDIA": 0.15, "X_NADOR": 0.50}  # [E]

# 24-hour traffic profiles, % of the daily vehicles per hour starting at 0 h [E: urban Mediterranean
# working-day shapes; morning, midday and evening peaks; summer: later, flatter, with evening/night traffic
# of the resort season]
_PROFILE_PCT = {
    "winter": (0.6, 0.4, 0.3, 0.3, 0.4, 1.0, 2.4, 5.4, 7.4, 6.0, 5.6, 5.8,
               6.4, 6.6, 5.4, 5.2, 6.2, 7.2, 8.2, 7.2, 5.2, 3.4, 2.1, 1.3),
    "summer": (1.4, 0.9, 0.6, 0.4, 0.4, 0.7, 1.6, 3.6, 5.4, 6.0, 5.8, 5.8,
               6.0, 5.8, 4.8, 4.6, 5.6, 6.6, 7.4, 8.0, 7.0, 5.4, 3.6, 2.6),
}


# -- geometry ------------------------------------------------------------------------------------------


class _Builder:
    """Accumulates nodes (km positions) and undirected road edges, then emits directed links."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {}
        self.edges: list[tuple[str, str, str, str, int | None]] = []  # (a, b, class, corridor, lanes)

    def node(self, nid: str, x: float, y: float, kind: str = "junction", control: str = "priority") -> str:
        self.nodes[nid] = {"x_km": float(x), "y_km": float(y), "kind": kind, "control": control}
        return nid

    def road(self, a: str, b: str, cls: str, corridor: str, lanes: int | None = None) -> None:
        self.edges.append((a, b, cls, corridor, lanes))


def _grid_id(i: int, j: int) -> str:
    """Id of the lattice node at row i (south → north), column j (west → east)."""
    return f"J{i}{j:02d}"


def _street_class(horizontal: bool, fixed: float) -> str:
    """Class of a lattice street: urban arterial, collector or local by the line it lies on."""
    if any(abs(fixed - v) < 1e-9 for v in (ARTERIAL_Y if horizontal else ARTERIAL_X)):
        return "urban_arterial"
    lines = COLLECTOR_Y if horizontal else COLLECTOR_X
    return "collector" if any(abs(fixed - v) < 1e-9 for v in lines) else "local"


def _layout() -> _Builder:
    """Nodes and undirected road edges of the whole network (districts' centroids excluded)."""
    b = _Builder()
    for i, y in enumerate(GRID_Y):
        for j, x in enumerate(GRID_X):
            b.node(_grid_id(i, j), x, y)
    iy_mv, iy_n2 = GRID_Y.index(MOHAMMED_V_Y_KM), GRID_Y.index(N2_Y_KM)
    for i, y in enumerate(GRID_Y):  # east–west streets
        for j in range(len(GRID_X) - 1):
            a, c = _grid_id(i, j), _grid_id(i, j + 1)
            x0, x1 = GRID_X[j], GRID_X[j + 1]
            if i == iy_n2:
                b.road(a, c, "urban_boulevard", "N2")
            elif i == iy_mv and MOHAMMED_V_X[0] - 1e-9 <= x0 and x1 <= MOHAMMED_V_X[1] + 1e-9:
                central = MOHAMMED_V_2X2_X[0] - 1e-9 <= x0 and x1 <= MOHAMMED_V_2X2_X[1] + 1e-9
                mid = b.node(f"MV{j:02d}", 0.5 * (x0 + x1), y, kind="frontage")  # mid-block access point
                b.road(a, mid, "avenue", "MOHAMMED_V", lanes=2 if central else 1)
                b.road(mid, c, "avenue", "MOHAMMED_V", lanes=2 if central else 1)
            elif any(abs(x0 - g) < 1e-9 for g in LOCAL_GAPS.get(y, ())):
                continue
            else:
                b.road(a, c, _street_class(True, y), "street")
    for j, x in enumerate(GRID_X):  # north–south streets
        for i in range(len(GRID_Y) - 1):
            a, c = _grid_id(i, j), _grid_id(i + 1, j)
            if abs(x - SAIDIA_ROAD_X_KM) < 1e-9 and i >= iy_n2:
                b.road(a, c, "urban_boulevard", "SAIDIA_ROAD")
            else:
                b.road(a, c, _street_class(False, x), "street")
    # junction control on the lattice
    for x in SIGNALS_MOHAMMED_V_X:
        b.nodes[_grid_id(iy_mv, GRID_X.index(x))]["control"] = "signal"
    for j, x in enumerate(GRID_X):
        b.nodes[_grid_id(iy_n2, j)]["control"] = "signal" if x in SIGNALS_N2_X else "roundabout"
    for x, y in SIGNALS_OTHER:
        b.nodes[_grid_id(GRID_Y.index(y), GRID_X.index(x))]["control"] = "signal"

    # N2 west: city edge → bypass west junction (roundabout) → gateway towards Nador
    west_edge, east_edge = _grid_id(iy_n2, 0), _grid_id(iy_n2, len(GRID_X) - 1)
    b.node("N2_W1", -4.8, N2_Y_KM + 0.08)
    b.node("BYP_W", -5.8, N2_Y_KM + 0.17, control="roundabout")
    b.road(west_edge, "N2_W1", "national_2x2", "N2")
    b.road("N2_W1", "BYP_W", "national_2x2", "N2")
    b.road("BYP_W", "X_NADOR", "express", "N2")
    # N2 east: city edge → bypass east junction (roundabout) → Ahfir; the express road to Oujda leaves there
    b.node("N2_E1", 4.3, N2_Y_KM)
    b.node("BYP_E", 5.2, N2_Y_KM, control="roundabout")
    b.road(east_edge, "N2_E1", "national_2x2", "N2")
    b.road("N2_E1", "BYP_E", "national_2x2", "N2")
    b.road("BYP_E", "X_AHFIR", "national", "N2")
    b.node("OUJ_1", 5.3, -1.5, control="roundabout")
    b.node("OUJ_2", 5.4, -3.0)
    b.road("BYP_E", "OUJ_1", "express", "OUJDA_ROAD")
    b.road("OUJ_1", "OUJ_2", "express", "OUJDA_ROAD")
    b.road("OUJ_2", "X_OUJDA", "express", "OUJDA_ROAD")
    b.road(_grid_id(GRID_Y.index(-1.8), len(GRID_X) - 1), "OUJ_1", "collector", "street")  # south-east access
    # the bypass: west leg, northern straight with one junction (the road to Saïdia), east leg
    b.node("BYP_NW", -4.6, BYPASS_Y_KM)
    b.node("BYP_NE", 4.2, BYPASS_Y_KM)
    b.node("BYP_S", SAIDIA_ROAD_X_KM, BYPASS_Y_KM, control="interchange")  # its one junction [E]
    stops = ["BYP_W", "BYP_NW", "BYP_S", "BYP_NE", "BYP_E"]
    for a, c in zip(stops[:-1], stops[1:]):
        b.road(a, c, "express", "BYPASS")
    # the road to Saïdia: city north edge → bypass junction → gateway
    b.node("SAI_1", SAIDIA_ROAD_X_KM, 4.9)
    b.road(_grid_id(len(GRID_Y) - 1, GRID_X.index(SAIDIA_ROAD_X_KM)), "BYP_S", "urban_boulevard", "SAIDIA_ROAD")
    b.road("BYP_S", "SAI_1", "regional", "SAIDIA_ROAD")
    b.road("SAI_1", "X_SAIDIA", "regional", "SAIDIA_ROAD")
    return b


def _connectors(b: _Builder, districts: pd.DataFrame) -> None:
    """Centroid connectors, ``N_CONNECTORS`` per district: a district within ``N2_ACCESS_KM`` of the N2 (the
    two rows either side of it) to its nearest N2 junction (the boulevard is its main road); a district within
    ``FRONTAGE_KM`` of Avenue Mohammed V to the avenue's ``N_FRONTAGE`` nearest mid-block frontage points (its
    commercial frontage); the remaining connectors to the nearest lattice junctions."""
    iy_n2 = GRID_Y.index(N2_Y_KM)
    lattice = [k for k, v in b.nodes.items() if v["kind"] == "junction" and k.startswith("J")]
    n2 = [_grid_id(iy_n2, j) for j in range(len(GRID_X))]
    front = [k for k, v in b.nodes.items() if v["kind"] == "frontage"]
    pos = {k: np.array([[b.nodes[n]["x_km"], b.nodes[n]["y_km"]] for n in ids]) for k, ids in
           (("lattice", lattice), ("n2", n2), ("front", front))}
    for did, r in districts.iterrows():
        dist = {k: np.hypot(p[:, 0] - r["x_km"], p[:, 1] - r["y_km"]) for k, p in pos.items()}
        near: list[str] = []
        if abs(r["y_km"] - N2_Y_KM) <= N2_ACCESS_KM:
            near.append(n2[int(np.argmin(dist["n2"]))])
        if abs(r["y_km"] - MOHAMMED_V_Y_KM) <= FRONTAGE_KM and MOHAMMED_V_X[0] <= r["x_km"] <= MOHAMMED_V_X[1]:
            near += [front[k] for k in np.argsort(dist["front"], kind="stable")[:N_FRONTAGE]]
        for k in np.argsort(dist["lattice"], kind="stable"):
            if len(near) >= N_CONNECTORS:
                break
            if lattice[k] not in near:
                near.append(lattice[k])
        for k in near:
            b.road(did, k, "connector", "connector")


# -- network --------------------------------------------------------------------------------------------


def _junction_rank(b: _Builder) -> dict[str, int]:
    """Highest hierarchy level (smallest ``rank``) of the roads meeting at each node, connectors excluded."""
    top: dict[str, int] = {}
    for a, c, cls, _, _ in b.edges:
        r = ROAD_CLASSES[cls].rank
        if r > 0:
            for n in (a, c):
                top[n] = min(top.get(n, r), r)
    return top


def _links(b: _Builder) -> pd.DataFrame:
    """Directed links (both directions of every edge) with their class parameters and junction delay (the
    control's ``JUNCTION_DELAY_MIN``, plus ``GIVE_WAY_DELAY_MIN`` entering a priority junction on a road of
    a higher class)."""
    top = _junction_rank(b)
    rows = []
    for a, c, cls, corridor, lanes in b.edges:
        rc = ROAD_CLASSES[cls]
        nl = rc.lanes if lanes is None else lanes
        pa, pc = b.nodes[a], b.nodes[c]
        length = float(np.hypot(pc["x_km"] - pa["x_km"], pc["y_km"] - pa["y_km"]))
        for u, v in ((a, c), (c, a)):
            control = b.nodes[v]["control"]
            delay = 0.0 if cls == "connector" else JUNCTION_DELAY_MIN[control]
            if cls != "connector" and control == "priority" and rc.rank > top.get(v, rc.rank):
                delay += GIVE_WAY_DELAY_MIN
            rows.append({"id": f"{u}-{v}", "from_node": u, "to_node": v, "road_class": cls, "corridor": corridor,
                         "lanes": nl, "cap_per_lane": rc.cap_per_lane, "speed_kmh": rc.speed_kmh,
                         "length_km": length, "junction_delay_min": delay, "alpha": rc.alpha, "beta": rc.beta,
                         "link_type": rc.link_type})
    df = pd.DataFrame(rows).set_index("id")
    df["capacity_veh_h"] = df["lanes"] * df["cap_per_lane"]
    df["free_flow_time_min"] = 60.0 * df["length_km"] / df["speed_kmh"] + df["junction_delay_min"]
    df["lane_km"] = df["lanes"] * df["length_km"]
    return df


def _network(b: _Builder, links: pd.DataFrame, fr: Frame, od: pd.DataFrame) -> TransportNetwork:
    """The TransportNetwork: nodes (x/y = lon/lat), links, zones (districts then gateways) and the od table."""
    nodes = pd.DataFrame.from_dict(b.nodes, orient="index")
    lon, lat = to_lonlat(nodes["x_km"], nodes["y_km"])
    d = fr.districts
    zone_ids = list(d.index) + list(GATEWAYS)
    order = zone_ids + [k for k in nodes.index if k not in set(zone_ids)]  # centroids first (TNTP numbering)
    node = pd.DataFrame({"x": lon, "y": lat, "lon": lon, "lat": lat,
                         "through": ~nodes["kind"].isin(["centroid", "gateway"]).to_numpy()},
                        index=nodes.index).loc[order]
    link = links[["from_node", "to_node", "capacity_veh_h", "length_km", "free_flow_time_min", "alpha", "beta",
                  "speed_kmh", "link_type"]].rename(columns={"length_km": "length", "speed_kmh": "speed"})
    zone = pd.DataFrame({"node": zone_ids,
                         "population": list(d["population"].astype(float)) + [np.nan] * len(GATEWAYS),
                         "jobs": list(d["jobs"].astype(float)) + [np.nan] * len(GATEWAYS)}, index=zone_ids)
    tn = TransportNetwork("berkane_roads", {"node": node, "link": link, "zone": zone}, length_unit="km")
    tn.od = od
    return tn


def free_flow_skim(links: pd.DataFrame, zones: list[str], what: str = "free_flow_time_min") -> pd.DataFrame:
    """Zone × zone shortest-path matrix of ``what`` (a ``links`` column: min, km) at free flow.

    Paths minimise the free-flow time and never pass through a centroid (each centroid is split into a
    source, holding its outgoing links, and a sink, holding its incoming ones).  Diagonal 0."""
    names = pd.Index(pd.unique(np.concatenate([links["from_node"].to_numpy(), links["to_node"].to_numpy()])))
    n = len(names)
    zpos = {z: i for i, z in enumerate(zones)}
    tail = names.get_indexer(links["from_node"])
    head = np.array([n + zpos[h] if h in zpos else k for h, k in
                     zip(links["to_node"], names.get_indexer(links["to_node"]))])  # into a centroid: its sink
    t = links["free_flow_time_min"].to_numpy(float)
    g = csr_matrix((np.maximum(t, 1e-9), (tail, head)), shape=(n + len(zones),) * 2)
    src = names.get_indexer(zones)
    dist, pred = dijkstra(g, indices=src, return_predecessors=True)
    out = dist[:, n:].copy()
    if what != "free_flow_time_min":  # accumulate another attribute along the same shortest-path trees
        attr = {(a, c): v for a, c, v in zip(tail, head, links[what].to_numpy(float))}
        for i in range(len(zones)):
            acc = np.full(g.shape[0], np.inf)
            acc[src[i]] = 0.0
            for v in np.argsort(dist[i], kind="stable"):  # parents are settled before their children
                p = pred[i, v]
                if p >= 0:
                    acc[v] = acc[p] + attr[(p, v)]
            out[i] = acc[n:]
    np.fill_diagonal(out, 0.0)
    return pd.DataFrame(out, index=pd.Index(zones, name="origin"), columns=pd.Index(zones, name="destination"))


# -- demand ---------------------------------------------------------------------------------------------


def trip_ends(districts: pd.DataFrame) -> pd.DataFrame:
    """Daily productions and attractions (vehicle trips/day, P/A format) of the districts from ``TRIP_RATES``;
    attractions are scaled to the productions' total (the usual balancing: productions are the better
    known).  Columns ``production``, ``attraction``, ``attraction_raw``."""
    r = TRIP_RATES
    pop, jobs = districts["population"].astype(float), districts["jobs"].astype(float)
    p = r["production_per_inhabitant"] * pop + r["production_per_job"] * jobs
    a = r["attraction_per_job"] * jobs + r["attraction_per_inhabitant"] * pop
    return pd.DataFrame({"production": p, "attraction": a * p.sum() / a.sum(), "attraction_raw": a})


def furness(seed: np.ndarray, rows: np.ndarray, cols: np.ndarray, tol: float = 1e-12,
            max_iter: int = 10_000) -> np.ndarray:
    """Doubly-constrained balancing (Furness / iterative proportional fitting) of ``seed`` (>= 0) to the row and
    column totals (equal grand totals); stops when every total is met to ``tol`` relative.  Raises
    RuntimeError when it does not converge."""
    t = np.asarray(seed, float).copy()
    rows, cols = np.asarray(rows, float), np.asarray(cols, float)
    for _ in range(max_iter):
        rs = t.sum(axis=1)
        t *= np.divide(rows, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = t.sum(axis=0)
        t *= np.divide(cols, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        err = max(np.max(np.abs(t.sum(axis=1) - rows) / np.maximum(rows, 1e-300)),
                  np.max(np.abs(t.sum(axis=0) - cols) / np.maximum(cols, 1e-300)))
        if err <= tol:
            return t
    raise RuntimeError(f"Furness balancing did not converge (relative error {err:.3g})")


def hourly_profiles() -> pd.DataFrame:
    """Share of the daily traffic in each hour (index 0–23 = the hour starting then), columns ``summer``,
    ``winter``; each column sums to 1 [E]."""
    df = pd.DataFrame({s: np.asarray(v, float) for s, v in _PROFILE_PCT.items()}, index=pd.RangeIndex(24, name="hour"))
    return (df / df.sum())[["summer", "winter"]]


def _internal_pa(skim: pd.DataFrame, ends: pd.DataFrame) -> np.ndarray:
    """Doubly-constrained P/A matrix of the internal trips (vehicle trips/day), deterrence exp(−β t)."""
    t = skim.loc[ends.index, ends.index].to_numpy().copy()
    off = t + np.diag(np.full(len(t), np.inf))
    np.fill_diagonal(t, INTRAZONAL_FACTOR * off.min(axis=1))
    return furness(np.exp(-BETA_PER_MIN * t), ends["production"].to_numpy(), ends["attraction"].to_numpy())


def _external(skim: pd.DataFrame, fr: Frame, season: str) -> tuple[np.ndarray, np.ndarray]:
    """(gateway → district matrix, gateway → gateway matrix), vehicle trips/day in one direction; the
    return direction is the transpose.  Each gateway's two-way daily volume is ``daily_veh`` (×
    ``summer_factor`` in summer): half in, half out; ``THROUGH_SHARE`` of it to the other gateways."""
    g = fr.external_zones.loc[list(GATEWAYS)]
    vol = g["daily_veh"].to_numpy(float) * (g["summer_factor"].to_numpy(float) if season == "summer" else 1.0)
    theta = np.array([THROUGH_SHARE[k] for k in GATEWAYS])
    d = fr.districts
    t = skim.loc[list(GATEWAYS), d.index].to_numpy()
    w = (d["population"] + d["jobs"]).to_numpy(float)[None, :] * np.exp(-BETA_EXT_PER_MIN * t)
    ei = ((1.0 - theta) * vol / 2.0)[:, None] * w / w.sum(axis=1, keepdims=True)
    through = theta * vol / 2.0
    seed = np.ones((len(GATEWAYS),) * 2) - np.eye(len(GATEWAYS))
    return ei, furness(seed, through, through)


def _demand(skim: pd.DataFrame, fr: Frame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Daily OD (vehicles/day) per season in long form, and the segments' matrices (zones in skim order)."""
    zones = list(skim.index)
    nd = len(fr.districts)
    pa = _internal_pa(skim, trip_ends(fr.districts))
    parts: dict[str, np.ndarray] = {"pa": pa}
    out = {}
    for season in ("summer", "winter"):
        ei, xx = _external(skim, fr, season)
        m = np.zeros((len(zones), len(zones)))
        m[:nd, :nd] = 0.5 * (pa + pa.T)  # P/A → O/D over a day: every home-based tour returns
        m[nd:, :nd] = ei
        m[:nd, nd:] = ei.T
        m[nd:, nd:] = xx
        parts[f"ei_{season}"], parts[f"xx_{season}"], parts[f"od_{season}"] = ei, xx, m
        out[season] = m.ravel()
    o, d = np.meshgrid(zones, zones, indexing="ij")
    df = pd.DataFrame({"origin": o.ravel(), "destination": d.ravel(), "summer": out["summer"],
                       "winter": out["winter"]})
    return df, parts


def _peak_od(parts: dict[str, np.ndarray], zones: list[str], nd: int, season: str, evening: bool,
             fraction: float) -> pd.DataFrame:
    """Peak-hour OD (vehicles/h): ``fraction`` of the daily OD, the home-based internal trips split by
    direction (``RETURN_SHARE_EVENING`` towards home at the evening peak, its complement in the morning)."""
    pa = parts["pa"]
    ret = RETURN_SHARE_EVENING if evening else 1.0 - RETURN_SHARE_EVENING
    internal = HB_SHARE * ((1.0 - ret) * pa + ret * pa.T) + (1.0 - HB_SHARE) * 0.5 * (pa + pa.T)
    m = parts[f"od_{season}"].copy()
    m[:nd, :nd] = internal
    m *= fraction
    o, d = np.meshgrid(zones, zones, indexing="ij")
    keep = m.ravel() > 0
    n = int(keep.sum())
    return pd.DataFrame({"origin": o.ravel()[keep], "destination": d.ravel()[keep], "trips_veh_h": m.ravel()[keep],
                         "hour": -1, "vehicle_class": "car"}, index=[str(i) for i in range(1, n + 1)])


# -- public ---------------------------------------------------------------------------------------------


def build_roads(fr: Frame, *, season: str = "winter", peak: str = "evening"
                ) -> tuple[TransportNetwork, dict[str, pd.DataFrame]]:
    """The Berkane road network with the ``season``'s ``peak`` ("evening" or "morning") hour OD (vehicles/h,
    static rows) as its ``od`` table.

    Metadata (all DataFrames): ``links`` (road_class, corridor, lanes, cap_per_lane, speed_kmh, length_km,
    junction_delay_min, lane_km …), ``nodes`` (x_km, y_km, kind, control), ``signals`` (signalised
    junctions: x_km, y_km, lon, lat, corridors, approaches = the link ids entering them), ``trip_ends``
    (district productions/attractions, veh/day), ``pa_internal`` (the gravity model's district × district
    production/attraction matrix, veh/day), ``od_daily`` (origin, destination, summer, winter: vehicles/day,
    all zones), ``hourly_profile`` (24 × summer/winter fractions), ``skim_free_flow`` (zone × zone free-flow
    time, min), ``skim_distance`` (km, along the same paths), ``peak`` (season, peak, hour,
    fraction_of_daily), ``parameters`` (name, value, unit, status), ``facility_nodes`` (nearest junction of
    every frame facility, distance km)."""
    if season not in ("summer", "winter"):
        raise ValueError(f"season must be 'summer' or 'winter', not {season!r}")
    if peak not in ("evening", "morning"):
        raise ValueError(f"peak must be 'evening' or 'morning', not {peak!r}")
    b = _layout()
    d, g = fr.districts, fr.external_zones
    for did, r in d.iterrows():
        b.node(did, r["x_km"], r["y_km"], kind="centroid", control="none")
    for gid in GATEWAYS:
        b.node(gid, g.at[gid, "x_km"], g.at[gid, "y_km"], kind="gateway", control="none")
    _connectors(b, d)
    links = _links(b)
    zones = list(d.index) + list(GATEWAYS)
    skim = free_flow_skim(links, zones)
    daily, parts = _demand(skim, fr)
    prof = hourly_profiles()[season]
    window = prof.loc[12:23] if peak == "evening" else prof.loc[0:11]
    hour = int(window.idxmax())
    od = _peak_od(parts, zones, len(d), season, peak == "evening", float(prof.loc[hour]))
    tn = _network(b, links, fr, od)

    nodes = pd.DataFrame.from_dict(b.nodes, orient="index").loc[tn.node.index]
    nodes.index.name = "id"
    sig = nodes[nodes["control"] == "signal"].copy()
    sig["lon"], sig["lat"] = tn.node.loc[sig.index, "lon"], tn.node.loc[sig.index, "lat"]
    touching = pd.concat([links[["from_node", "corridor"]].rename(columns={"from_node": "node"}),
                          links[["to_node", "corridor"]].rename(columns={"to_node": "node"})])
    sig["corridors"] = [",".join(sorted(set(touching.loc[touching["node"] == k, "corridor"]) - {"connector"}))
                        for k in sig.index]
    sig["approaches"] = [",".join(links.index[links["to_node"] == k]) for k in sig.index]
    nd = len(d)
    meta = {
        "links": links, "nodes": nodes, "signals": sig[["x_km", "y_km", "lon", "lat", "corridors", "approaches"]],
        "trip_ends": trip_ends(d), "od_daily": daily, "hourly_profile": hourly_profiles(),
        "pa_internal": pd.DataFrame(parts["pa"], index=pd.Index(zones[:nd], name="production"),
                                    columns=pd.Index(zones[:nd], name="attraction")),
        "skim_free_flow": skim, "skim_distance": free_flow_skim(links, zones, "length_km"),
        "peak": pd.DataFrame({"season": [season], "peak": [peak], "hour": [hour],
                              "fraction_of_daily": [float(prof.loc[hour])]}),
        "parameters": _parameters(), "facility_nodes": facility_nodes(fr, nodes),
    }
    return tn, meta


def facility_nodes(fr: Frame, nodes: pd.DataFrame) -> pd.DataFrame:
    """Nearest road junction (not a centroid) of every facility site, with the straight-line distance (km):
    where a crew leaves the road network to reach the site."""
    j = nodes[nodes["kind"] == "junction"]
    f = fr.facilities
    dx = f["x_km"].to_numpy()[:, None] - j["x_km"].to_numpy()[None, :]
    dy = f["y_km"].to_numpy()[:, None] - j["y_km"].to_numpy()[None, :]
    dist = np.hypot(dx, dy)
    k = dist.argmin(axis=1)
    return pd.DataFrame({"node": j.index.to_numpy()[k], "distance_km": dist[np.arange(len(f)), k]}, index=f.index)


def _parameters() -> pd.DataFrame:
    """The demand model's parameters with unit and source status."""
    rows = [(k, v, "veh trips/day per person or job", "E") for k, v in TRIP_RATES.items()]
    rows += [("hb_share", HB_SHARE, "", "E"), ("return_share_evening", RETURN_SHARE_EVENING, "", "E"),
             ("beta_internal", BETA_PER_MIN, "1/min", "E"), ("beta_external", BETA_EXT_PER_MIN, "1/min", "E"),
             ("intrazonal_factor", INTRAZONAL_FACTOR, "", "E")]
    rows += [(f"through_share_{k}", v, "", "E") for k, v in THROUGH_SHARE.items()]
    return pd.DataFrame(rows, columns=["name", "value", "unit", "status"]).set_index("name")


def tntp_numbering(tn: TransportNetwork) -> tuple[TransportNetwork, dict[str, pd.Series]]:
    """A copy of ``tn`` with TNTP ids (nodes "1" … "N" with the zone centroids first, zone k at node k, links
    "from-to"), and the maps ``{"node": old → new, "zone": old → new, "link": old → new}``; writes with
    :func:`~twin.transport.write_tntp`."""
    zone_nodes = list(tn.zone["node"])
    rest = [n for n in tn.node.index if n not in set(zone_nodes)]
    nmap = pd.Series([str(i) for i in range(1, len(zone_nodes) + len(rest) + 1)], index=zone_nodes + rest)
    zmap = pd.Series(nmap.loc[zone_nodes].to_numpy(), index=tn.zone.index)
    node = tn.node.loc[nmap.index].set_axis(nmap.to_numpy())
    link = tn.link.copy()
    link["from_node"] = nmap.loc[link["from_node"]].to_numpy()
    link["to_node"] = nmap.loc[link["to_node"]].to_numpy()
    lmap = pd.Series([f"{a}-{c}" for a, c in zip(link["from_node"], link["to_node"])], index=link.index)
    link.index = lmap.to_numpy()
    zone = tn.zone.set_axis(zmap.to_numpy())
    zone["node"] = zone.index
    od = tn.od.copy()
    od["origin"] = zmap.loc[od["origin"]].to_numpy()
    od["destination"] = zmap.loc[od["destination"]].to_numpy()
    out = TransportNetwork(tn.name, {"node": node, "link": link, "zone": zone}, length_unit=tn.length_unit)
    out.od = od
    return out, {"node": nmap, "zone": zmap, "link": lmap}
