"""The electricity layer of the synthetic Berkane model: 225/60/22 kV network, loads by customer class, PV, storage.

``build_grid(frame())`` returns a :class:`~twin.energy.Grid` at the summer evening peak (PV at 0) and a
bus-information table; :func:`midday_case` turns it into the midday case (PV at full output, midday loads).
Structure [E, after ONEE's substation templates, facts §5]: one 225/60 kV source substation (2 × 100 MVA)
at SS_225 behind which the transmission grid is the slack ``GRID_225``; 60 kV overhead lines to the two
60/22 kV city substations SS_NORTH and SS_SOUTH (2 × 40 MVA each); four radial 22 kV feeders per substation
(``F_N1``..``F_N4``, ``F_S1``..``F_S4``) running post to post through the districts, and a dedicated 22 kV
line ``F_PV`` from SS_SOUTH to the 10 MWp PV plant.  Every number and its source status ([S] sourced,
[D] derived, [E] estimate) is listed in README.grid.md; the constants below carry the same tags.

Units: lengths km, powers MW / MVAr / MVA, impedances Ω/km (per phase) and p.u. on ``BASE_MVA``,
capacitances nF/km, currents A, voltages kV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from ...energy import Grid
from .frame import PLANT_CAPACITY_M3_DAY, WATER_L_PER_PERSON_DAY, Frame, to_lonlat

__all__ = ["build_grid", "build_grid_tables", "BerkaneGrid", "midday_case", "load_class", "CONDUCTORS",
           "Conductor", "MIDDAY_FACTOR", "SHARE_GROUP", "FIRM_MVA", "SUBSTATION_TRANSFORMERS", "BASE_MVA"]

BASE_MVA = 100.0
F_HZ = 50.0

# ------------------------------------------------------------------ loads at the summer evening peak [E]
RES_KW_PER_PERSON = 0.18  # [E] after diversity, summer evening (fans/AC, lighting, TV, cooking)
COM_KW_PER_JOB = 0.20  # [E] shops, cafés, services open in summer evenings; offices mostly closed
IND_KW_PER_JOB = 0.60  # [E] activity zone: workshops, packing and cold stores running in the evening
LIGHTING_KW_PER_PERSON = 0.010  # [E] 1 luminaire per 10 inhabitants × 100 W (lamp + ballast), all on at 21-22 h
EV_BASE_MW = 0.03  # [E] hub auxiliaries (lighting, cooling, chargers on standby); charging added by the coupling
POWER_FACTOR = {"RES": 0.93, "COM": 0.92, "IND": 0.90, "PL": 0.90, "WTP": 0.88, "PUMP": 0.88, "EV": 0.95}  # [E]
CLASS_NAMES = {"RES": "residential", "COM": "commercial/tertiary", "IND": "activity zone", "PL": "public lighting",
               "WTP": "treatment plant and PS_WTP", "PUMP": "booster pumping", "EV": "EV hub base load"}
#: load class → bus-information share column (``share_<group>``)
SHARE_GROUP = {"RES": "residential", "COM": "commercial", "IND": "industry", "PL": "lighting", "WTP": "facility",
               "PUMP": "facility", "EV": "facility"}
#: a light-load midday relative to the evening peak, by class (the worst case for the voltage rise) [E];
#: PV at full output
MIDDAY_FACTOR = {"RES": 0.55, "COM": 1.10, "IND": 1.40, "PL": 0.0, "WTP": 1.0, "PUMP": 1.0, "EV": 1.0}

# ------------------------------------------------------------------ water facilities' electrical load
WTP_PROCESS_KWH_PER_M3 = 0.10  # [E] conventional treatment (flocculation, filtration, backwash, chemicals)
PLANT_FLOW_M3_S = PLANT_CAPACITY_M3_DAY / 86_400  # [S] 650 l/s, facts §4.2 (the plant at capacity in summer)
RAW_WATER_HEAD_M = 30.0  # [E] raw-water intake lift into the plant's head works
PUMP_EFFICIENCY = 0.72  # [E] wire-to-water efficiency of a pump set
TRANSFER_HEAD_M = 95.0  # [D+E] plant (160 m) to the foothill reservoirs (≈ 240 m + 5 m water) + 10 m friction
MAX_DAY_FACTOR = 1.2  # [E] summer max-day demand / mean
WTP_AUX_MW = 0.08  # [E] buildings, lighting, laboratory, dosing of the plant
EAST_ZONE_DISTRICTS = ("D05", "D06", "D11", "D12")  # [E] the booster's supply zone: the south-east districts
EAST_HEAD_M = 70.0  # [D+E] PS_EAST (204 m) to T_E (255 m + 5 m water) + 10 m friction
EAST_PEAK_HOUR_FACTOR = 2.0  # [E] the booster follows the evening peak hour of its zone

# ------------------------------------------------------------------ equipment [E]
@dataclass(frozen=True)
class Conductor:
    """A line type: per-phase positive-sequence data (Ω/km, nF/km), thermal rating (A) and voltage (kV)."""

    label: str
    r_ohm_km: float
    x_ohm_km: float
    c_nf_km: float
    i_max_a: float
    kv: float

    @property
    def rating_mva(self) -> float:
        """Thermal rating (MVA) at nominal voltage."""
        return math.sqrt(3.0) * self.kv * self.i_max_a / 1e3


CONDUCTORS = {  # [E] typical catalogue values of the types used by Moroccan distributors
    "cable_240": Conductor("240 mm² Al XLPE 12/20(24) kV underground cable", 0.125, 0.11, 350.0, 350.0, 22.0),
    "cable_150": Conductor("150 mm² Al XLPE 12/20(24) kV underground cable", 0.206, 0.12, 300.0, 280.0, 22.0),
    "ohl_148": Conductor("148 mm² Almelec 22 kV overhead line", 0.224, 0.35, 10.0, 350.0, 22.0),
    "ohl_288": Conductor("288 mm² Almelec 60 kV overhead line", 0.115, 0.40, 9.0, 600.0, 60.0),
}
ROUTE_FACTOR = 1.25  # [E] route length / straight distance for cables along streets and overhead lines
URBAN_BOX_KM = (-3.8, 3.8, -2.5, 2.5)  # [E] x/y extent of the built-up area (district lattice ± 0.7 km)
TRUNK_MVA = 2.5  # [E] a section carrying more than this at peak is 240 mm², otherwise 150 mm²
POST_TARGET_MW = 0.25  # [E] one post bus ≈ one 400 kVA 22/0.4 kV post at ~70 % loading at peak
POST_RADIUS_KM = 0.5  # [E] posts spread within this radius of the district centre


@dataclass(frozen=True)
class TransformerType:
    """A two-winding transformer: rating (MVA), short-circuit voltage and copper losses (fractions of rating)."""

    label: str
    s_mva: float
    uk: float
    pcu: float


T_225_60 = TransformerType("225/60 kV 100 MVA", 100.0, 0.125, 0.0035)  # [E after ONEE template 2 × 100 MVA]
T_60_22 = TransformerType("60/22 kV 40 MVA", 40.0, 0.11, 0.0045)  # [E after ONEE template 2 × 40 MVA]
FIRM_MVA = T_60_22.s_mva  # firm capacity of a 2 × 40 MVA substation: one unit out
#: tap ratio on the 60 kV side, 3 steps of 1.25 % boost: 22 kV busbars at ≈ 1.01 p.u. at the evening peak [E]
TAP_60_22 = 0.9625
GRID_VM_PU = 1.0  # [E] 225 kV voltage set point of the transmission grid
IMPORT_PRICE_MAD_MWH = 850.0  # [E] energy bought at 225 kV, order of Moroccan HV tariffs (0.8-1.2 MAD/kWh)
PV_PLANT_MWP = 10.0  # [E] frame note for PV_PLANT
ROOFTOP_MWP = 3.0  # [E] ≈ 21 Wp per inhabitant, early self-consumption uptake
BESS = {"p_max_mw": 4.0, "e_max_mwh": 8.0, "eta": 0.95}  # [E] 2-hour battery at SS_SOUTH

SUBSTATIONS = {"SS_NORTH": ("N", "NORTH"), "SS_SOUTH": ("S", "SOUTH")}
SUBSTATION_TRANSFORMERS = {"SS_NORTH": ("TN_1", "TN_2"), "SS_SOUTH": ("TS_1", "TS_2")}
FACILITY_BUSES = {"WTP": "B_WTP", "PS_EAST": "B_PS_EAST", "EV_CENTRE": "B_EV_CENTRE",
                  "EV_N2_EAST": "B_EV_N2_EAST", "EV_SOUTH": "B_EV_SOUTH", "EV_WEST": "B_EV_WEST"}
FEEDERS_PER_SUBSTATION = 4


@dataclass
class BerkaneGrid:
    """The built layer: the grid, the bus-information table and the branch-information table.

    ``branch_info`` (index = line or transformer id): ``kind`` (line/transformer), ``type`` (a
    :data:`CONDUCTORS` key or the transformer type), ``feeder`` (or 'HV'), ``substation``, ``length_km``
    (route length; 0 for transformers), ``rating_mva``."""

    grid: Grid
    bus_info: pd.DataFrame
    branch_info: pd.DataFrame


def build_grid(fr: Frame) -> tuple[Grid, pd.DataFrame]:
    """The Berkane grid at the summer evening peak and its bus-information table (see :func:`build_grid_tables`)."""
    b = build_grid_tables(fr)
    return b.grid, b.bus_info


def build_grid_tables(fr: Frame) -> BerkaneGrid:
    """Build the 225/60/22 kV grid on the frame.

    The grid is at the summer evening peak: loads per post by class (ids ``<bus>:<CLASS>``, classes RES,
    COM, IND, PL, WTP, PUMP, EV), PV generators at 0 MW, the battery idle.  ``bus_info`` (index = bus id):
    ``feeder`` (feeder id, 'HV' or 'MV busbar'), ``substation``, ``district`` (nearest district; '' for HV
    buses), ``kind`` (source/busbar/post/facility), ``x_km``, ``y_km``, ``people`` (inhabitants served
    through the post; the posts' sum is the 2024 population) and the class split of the bus's
    evening-peak active load, ``share_residential``, ``share_commercial``, ``share_industry``,
    ``share_lighting``, ``share_facility`` (fractions summing to 1 on loaded buses, 0 elsewhere: MATPOWER
    sums a bus's loads, this keeps the split)."""
    d = fr.districts
    fac = fr.facilities
    t = _Tables()
    _add_hv(t, fac)
    dist_load = _district_load_mw(d)
    fac_load = _facility_loads(d)
    fac_district = {f: _nearest(d, fac.at[f, "x_km"], fac.at[f, "y_km"]) for f in FACILITY_BUSES}
    posts = _posts(d, dist_load)
    for ss in SUBSTATIONS:
        ds = d.index[(d["y_km"] > 0) == (ss == "SS_NORTH")]  # [E] the N2 axis splits the two service areas
        extra = pd.Series(0.0, index=ds)
        for f, dist in fac_district.items():
            if dist in extra.index:
                extra[dist] += fac_load[f][0]
        groups = _partition(d.loc[ds], fac.loc[ss], dist_load.loc[ds].sum(axis=1) + extra)
        for k, members in enumerate(groups, start=1):
            feeder = f"F_{SUBSTATIONS[ss][0]}{k}"
            fac_here = [f for f, dist in fac_district.items() if dist in members]
            _add_feeder(t, fr, ss, feeder, posts[posts["district"].isin(members)], fac_here, fac_load)
    _add_pv_plant(t, fac)
    _add_rooftop_pv(t)
    g = t.grid()
    return BerkaneGrid(g, _bus_info(g, t, d), pd.DataFrame(t.branch_info).set_index("id"))


def _bus_info(g: Grid, t: _Tables, d: pd.DataFrame) -> pd.DataFrame:
    """The bus-information table (see :func:`build_grid_tables`) in the grid's bus order."""
    info = pd.DataFrame(t.info).set_index("id")
    info["district"] = [_nearest(d, x, y) if kv < 60 else "" for x, y, kv in
                        zip(info["x_km"], info["y_km"], g.bus.loc[info.index, "vn_kv"])]
    info = info.loc[g.bus.index, ["feeder", "substation", "district", "kind", "x_km", "y_km", "people"]]
    info["people"] = info["people"].astype(int)
    group = load_class(g.load.index).map(SHARE_GROUP).to_numpy()
    split = g.load.groupby([g.load["bus"], group])["p_mw"].sum().unstack(fill_value=0.0)
    split = split.div(split.sum(axis=1), axis=0).reindex(info.index, fill_value=0.0)
    for name in dict.fromkeys(SHARE_GROUP.values()):
        info[f"share_{name}"] = split[name] if name in split else 0.0
    return info


@dataclass
class _Tables:
    """Rows collected while the network is laid out, turned into a :class:`Grid` in one go."""

    bus: list[dict] = field(default_factory=list)
    line: list[dict] = field(default_factory=list)
    transformer: list[dict] = field(default_factory=list)
    load: list[dict] = field(default_factory=list)
    generator: list[dict] = field(default_factory=list)
    info: list[dict] = field(default_factory=list)
    branch_info: list[dict] = field(default_factory=list)

    def grid(self) -> Grid:
        """The grid: every table added at once, generator costs (MATPOWER model 2: c2, c1, c0 in MAD/MW²h,
        MAD/MWh, MAD/h) and the battery."""
        g = Grid(base_mva=BASE_MVA, name="berkane_grid")
        for name in ("bus", "line", "transformer", "load", "generator"):
            g.add(name, pd.DataFrame(getattr(self, name)).set_index("id"))
        gen = g.generator.index
        g.add("generator_cost", index=gen, model=2,
              coefficients=[(0.0, IMPORT_PRICE_MAD_MWH if i == "GRID_225" else 0.0, 0.0) for i in gen])
        g.add("storage", index="BESS_SOUTH", bus="B_SOUTH_22", p_mw=0.0, p_max_mw=BESS["p_max_mw"],
              e_max_mwh=BESS["e_max_mwh"], soc_init=0.5, eta_charge=BESS["eta"], eta_discharge=BESS["eta"],
              name="battery at SS_SOUTH 22 kV, 4 MW / 8 MWh")
        return g


# ------------------------------------------------------------------ loads
def _district_load_mw(d: pd.DataFrame) -> pd.DataFrame:
    """Evening-peak active power (MW) per district and class (columns RES, COM, IND, PL)."""
    activity = (d["role"] == "activity").to_numpy()
    return pd.DataFrame({
        "RES": RES_KW_PER_PERSON * d["population"] / 1e3,
        "COM": np.where(activity, 0.0, COM_KW_PER_JOB * d["jobs"] / 1e3),
        "IND": np.where(activity, IND_KW_PER_JOB * d["jobs"] / 1e3, 0.0),
        "PL": LIGHTING_KW_PER_PERSON * d["population"] / 1e3,
    }, index=d.index)


def _pump_mw(q_m3_s: float, head_m: float) -> float:
    """Electrical power (MW) of pumps lifting ``q_m3_s`` (m³/s) by ``head_m`` (m)."""
    return 1000.0 * 9.81 * q_m3_s * head_m / PUMP_EFFICIENCY / 1e6


def _facility_loads(d: pd.DataFrame) -> dict[str, tuple[float, str]]:
    """Evening-peak load (MW, class) of each facility bus.

    WTP: treatment process at the plant's capacity + raw-water intake + the transfer pumps of PS_WTP
    carrying the city's max-day demand to the foothill reservoirs + auxiliaries.  PS_EAST: the
    south-east districts' peak-hour demand lifted to T_E."""
    city_q = d["population"].sum() * WATER_L_PER_PERSON_DAY / 1e3 / 86_400  # m³/s, 172 l/person/day [D]
    wtp = (WTP_PROCESS_KWH_PER_M3 * PLANT_FLOW_M3_S * 3600 / 1e3 + _pump_mw(PLANT_FLOW_M3_S, RAW_WATER_HEAD_M)
           + _pump_mw(MAX_DAY_FACTOR * city_q, TRANSFER_HEAD_M) + WTP_AUX_MW)
    east_q = d.loc[list(EAST_ZONE_DISTRICTS), "population"].sum() * WATER_L_PER_PERSON_DAY / 1e3 / 86_400
    east = _pump_mw(MAX_DAY_FACTOR * EAST_PEAK_HOUR_FACTOR * east_q, EAST_HEAD_M)
    out = {"WTP": (wtp, "WTP"), "PS_EAST": (east, "PUMP")}
    out.update({f: (EV_BASE_MW, "EV") for f in FACILITY_BUSES if f.startswith("EV_")})
    return out


def _q(p_mw: float, cls: str) -> float:
    """Reactive power (MVAr) of ``p_mw`` at the class's power factor (lagging)."""
    pf = POWER_FACTOR[cls]
    return p_mw * math.tan(math.acos(pf))


def load_class(load_ids) -> pd.Series:
    """Customer class of each load id (``<bus>:<CLASS>``)."""
    idx = pd.Index(load_ids)
    return pd.Series([s.rsplit(":", 1)[1] for s in idx], index=idx)


def midday_case(grid: Grid) -> Grid:
    """A copy of the (evening-peak) grid at midday: loads scaled by :data:`MIDDAY_FACTOR` per class, every
    PV generator at its full output (``p_max_mw``), the battery idle."""
    g = grid.copy()
    f = load_class(g.load.index).map(MIDDAY_FACTOR).to_numpy()
    g.load["p_mw"] = g.load["p_mw"] * f
    g.load["q_mvar"] = g.load["q_mvar"] * f
    pv = g.generator["kind"] == "pv"
    g.generator.loc[pv, "p_mw"] = g.generator.loc[pv, "p_max_mw"]
    return g


# ------------------------------------------------------------------ geometry helpers
def _nearest(d: pd.DataFrame, x: float, y: float) -> str:
    """Id of the district whose centre is nearest to (x, y) km."""
    return str(d.index[np.argmin(np.hypot(d["x_km"] - x, d["y_km"] - y))])


def _round_to_total(values: np.ndarray, total: int) -> np.ndarray:
    """Integers with the given total (largest remainders)."""
    base = np.floor(values).astype(int)
    order = np.argsort(-(values - base), kind="stable")
    base[order[:int(total - base.sum())]] += 1
    return base


def _posts(d: pd.DataFrame, load: pd.DataFrame) -> pd.DataFrame:
    """22/0.4 kV post buses: one per :data:`POST_TARGET_MW` of district peak (at least 3), spread over the
    district on a sunflower pattern around its centre; people and loads split evenly over the posts."""
    golden = math.pi * (3.0 - math.sqrt(5.0))
    rows = []
    for i, (did, r) in enumerate(d.iterrows()):
        n = max(3, round(load.loc[did].sum() / POST_TARGET_MW))
        people = _round_to_total(np.full(n, r["population"] / n), int(r["population"]))
        for k in range(n):
            rad = POST_RADIUS_KM * math.sqrt(k / (n - 1))
            ang = k * golden + i  # rotate the pattern per district
            rows.append({"id": f"P_{did}_{k + 1:02d}", "district": did, "k": k + 1,
                         "x_km": r["x_km"] + rad * math.cos(ang), "y_km": r["y_km"] + rad * math.sin(ang),
                         "people": int(people[k]),
                         **{c: load.at[did, c] / n for c in load.columns}})
    return pd.DataFrame(rows).set_index("id")


def _partition(ds: pd.DataFrame, ss: pd.Series, load: pd.Series) -> list[list[str]]:
    """Split a substation's districts into angular sectors (one feeder each) minimising the largest feeder
    load: districts sorted by bearing from the substation, every rotation and cut tried (≥ 2 per feeder)."""
    ang = np.arctan2(ds["y_km"] - ss["y_km"], ds["x_km"] - ss["x_km"])
    order = list(ds.index[np.argsort(ang.to_numpy(), kind="stable")])
    n, best, best_cost = len(order), None, math.inf
    for s in range(n):
        seq = order[s:] + order[:s]
        for cuts in combinations(range(2, n - 1), FEEDERS_PER_SUBSTATION - 1):
            bounds = (0, *cuts, n)
            if min(b - a for a, b in zip(bounds, bounds[1:])) < 2:
                continue
            groups = [seq[a:b] for a, b in zip(bounds, bounds[1:])]
            cost = max(load[gr].sum() for gr in groups)
            if cost < best_cost - 1e-9:
                best, best_cost = groups, cost
    return best


def _prim(xy: np.ndarray, root: int) -> list[tuple[int, int]]:
    """Edges (parent, child) of the Euclidean minimum spanning tree of points ``xy`` grown from ``root``."""
    n = len(xy)
    inside = np.zeros(n, bool)
    inside[root] = True
    dist = np.hypot(*(xy - xy[root]).T)
    parent = np.full(n, root)
    edges = []
    for _ in range(n - 1):
        cand = np.where(inside, np.inf, dist)
        j = int(np.argmin(cand))
        edges.append((int(parent[j]), j))
        inside[j] = True
        dj = np.hypot(*(xy - xy[j]).T)
        closer = dj < dist
        parent[closer] = j
        dist = np.minimum(dist, dj)
    return edges


def _urban(x: float, y: float) -> bool:
    """Whether (x, y) km lies in the built-up area (underground cables) rather than the open plain."""
    x0, x1, y0, y1 = URBAN_BOX_KM
    return x0 <= x <= x1 and y0 <= y <= y1


# ------------------------------------------------------------------ grid assembly
def _add_bus(t: _Tables, bid: str, name: str, kv: float, x: float, y: float, *, feeder: str, substation: str,
             kind: str, people: int = 0, bus_type: str = "pq") -> None:
    """Add one bus (lon/lat from the frame, band 0.95-1.05 p.u.) and its bus-information row."""
    lon, lat = to_lonlat(x, y)
    t.bus.append({"id": bid, "name": name, "vn_kv": kv, "type": bus_type, "vmin_pu": 0.95, "vmax_pu": 1.05,
                  "lon": float(lon), "lat": float(lat)})
    t.info.append({"id": bid, "feeder": feeder, "substation": substation, "kind": kind, "x_km": x, "y_km": y,
                   "people": people})


def _add_line(t: _Tables, lid: str, b0: str, b1: str, ctype: str, length_km: float, name: str, feeder: str,
              substation: str) -> None:
    """Add a line of conductor type ``ctype`` and route length ``length_km`` (pi model, p.u. on BASE_MVA)."""
    c = CONDUCTORS[ctype]
    zb = c.kv ** 2 / BASE_MVA
    b_siemens = 2 * math.pi * F_HZ * c.c_nf_km * 1e-9 * length_km
    t.line.append({"id": lid, "bus0": b0, "bus1": b1, "r_pu": c.r_ohm_km * length_km / zb,
                   "x_pu": c.x_ohm_km * length_km / zb, "b_pu": b_siemens * zb, "rate_a_mva": c.rating_mva,
                   "rate_b_mva": c.rating_mva, "rate_c_mva": c.rating_mva, "name": name})
    t.branch_info.append({"id": lid, "kind": "line", "type": ctype, "feeder": feeder, "substation": substation,
                          "length_km": length_km, "rating_mva": c.rating_mva})


def _add_transformer(t: _Tables, tid: str, b0: str, b1: str, tt: TransformerType, tap: float,
                     substation: str) -> None:
    """Add a transformer (tap on the bus0 = high-voltage side; magnetising branch neglected)."""
    r = tt.pcu * BASE_MVA / tt.s_mva
    x = math.sqrt(tt.uk ** 2 - tt.pcu ** 2) * BASE_MVA / tt.s_mva
    t.transformer.append({"id": tid, "bus0": b0, "bus1": b1, "r_pu": r, "x_pu": x, "tap_ratio": tap,
                          "rate_a_mva": tt.s_mva, "rate_b_mva": tt.s_mva, "rate_c_mva": tt.s_mva,
                          "name": f"{substation} {tt.label} unit {tid[-1]}"})
    t.branch_info.append({"id": tid, "kind": "transformer", "type": tt.label, "feeder": "HV",
                          "substation": substation, "length_km": 0.0, "rating_mva": tt.s_mva})


def _add_load(t: _Tables, bus: str, cls: str, p_mw: float, where: str) -> None:
    """Add the load of one customer class at a bus (id ``<bus>:<CLASS>``, Q from the class power factor)."""
    t.load.append({"id": f"{bus}:{cls}", "bus": bus, "p_mw": p_mw, "q_mvar": _q(p_mw, cls),
                   "name": f"{CLASS_NAMES[cls]}, {where}"})


def _add_hv(t: _Tables, fac: pd.DataFrame) -> None:
    """225 kV source with the slack generator, 225/60 kV transformers, 60 kV lines, 60/22 kV substations."""
    x, y = fac.at["SS_225", "x_km"], fac.at["SS_225", "y_km"]
    _add_bus(t, "B_SS225_225", "SS_225 225 kV busbar (transmission grid)", 225.0, x, y, feeder="HV",
             substation="SS_225", kind="source", bus_type="ref")
    _add_bus(t, "B_SS225_60", "SS_225 60 kV busbar", 60.0, x, y, feeder="HV", substation="SS_225", kind="busbar")
    t.generator.append({"id": "GRID_225", "bus": "B_SS225_225", "p_mw": 0.0, "vm_pu": GRID_VM_PU,
                        "p_max_mw": 200.0, "p_min_mw": -200.0, "q_max_mvar": 150.0, "q_min_mvar": -150.0,
                        "mbase_mva": 200.0, "kind": "grid", "fuel": "import",
                        "name": "225 kV transmission grid (import)"})
    for k in (1, 2):
        _add_transformer(t, f"T225_{k}", "B_SS225_225", "B_SS225_60", T_225_60, 1.0, "SS_225")
    for ss, (_, word) in SUBSTATIONS.items():
        sx, sy = fac.at[ss, "x_km"], fac.at[ss, "y_km"]
        _add_bus(t, f"B_{word}_60", f"{ss} 60 kV busbar", 60.0, sx, sy, feeder="HV", substation=ss, kind="busbar")
        _add_bus(t, f"B_{word}_22", f"{ss} 22 kV busbar", 22.0, sx, sy, feeder="MV busbar", substation=ss,
                 kind="busbar")
        _add_line(t, f"L60_{word}", "B_SS225_60", f"B_{word}_60", "ohl_288",
                  ROUTE_FACTOR * math.hypot(sx - x, sy - y), f"60 kV line SS_225 - {ss}", "HV", ss)
        for tid in SUBSTATION_TRANSFORMERS[ss]:
            _add_transformer(t, tid, f"B_{word}_60", f"B_{word}_22", T_60_22, TAP_60_22, ss)
    n, s = fac.loc["SS_NORTH"], fac.loc["SS_SOUTH"]
    _add_line(t, "L60_NORTH_SOUTH", "B_NORTH_60", "B_SOUTH_60", "ohl_288",
              ROUTE_FACTOR * math.hypot(n["x_km"] - s["x_km"], n["y_km"] - s["y_km"]),
              "60 kV tie SS_NORTH - SS_SOUTH", "HV", "SS_NORTH")


def _add_feeder(t: _Tables, fr: Frame, ss: str, feeder: str, posts: pd.DataFrame, fac_ids: list[str],
                fac_load: dict[str, tuple[float, str]]) -> None:
    """One radial 22 kV feeder: its posts and facility buses joined by a minimum spanning tree grown from
    the bus nearest the substation; sections sized by the peak load they carry."""
    d, fac = fr.districts, fr.facilities
    busbar = f"B_{SUBSTATIONS[ss][1]}_22"
    nodes = [(pid, r["x_km"], r["y_km"]) for pid, r in posts.iterrows()]
    nodes += [(FACILITY_BUSES[f], fac.at[f, "x_km"], fac.at[f, "y_km"]) for f in fac_ids]
    mva: dict[str, float] = {}
    for pid, r in posts.iterrows():
        _add_bus(t, pid, f"Post {r['district']}-{r['k']:02d} ({d.at[r['district'], 'name']}, {feeder})", 22.0,
                 r["x_km"], r["y_km"], feeder=feeder, substation=ss, kind="post", people=r["people"])
        for cls in ("RES", "COM", "IND", "PL"):
            if r[cls] > 0:
                _add_load(t, pid, cls, r[cls], f"post {pid}")
        mva[pid] = sum(r[c] / POWER_FACTOR[c] for c in ("RES", "COM", "IND", "PL"))
    for f in fac_ids:
        bid, (p, cls) = FACILITY_BUSES[f], fac_load[f]
        _add_bus(t, bid, f"{f} ({fac.at[f, 'kind'].replace('_', ' ')}, {feeder})", 22.0, fac.at[f, "x_km"],
                 fac.at[f, "y_km"], feeder=feeder, substation=ss, kind="facility")
        _add_load(t, bid, cls, p, f)
        mva[bid] = p / POWER_FACTOR[cls]
    xy = np.array([[x, y] for _, x, y in nodes] + [[fac.at[ss, "x_km"], fac.at[ss, "y_km"]]])
    head = int(np.argmin(np.hypot(*(xy[:-1] - xy[-1]).T)))
    edges = [(len(nodes), head)] + _prim(xy[:-1], head)
    ids = [n[0] for n in nodes] + [busbar]
    down = np.array([mva.get(i, 0.0) for i in ids])
    for a, b in reversed(edges):  # edges run parent → child in growth order: accumulate from the leaves
        down[a] += down[b]
    for k, (a, b) in enumerate(edges, start=1):
        (xa, ya), (xb, yb) = xy[a], xy[b]
        length = max(0.05, ROUTE_FACTOR * math.hypot(xb - xa, yb - ya))
        if not (_urban(xa, ya) and _urban(xb, yb)):
            ctype = "ohl_148"
        else:
            ctype = "cable_240" if down[b] > TRUNK_MVA else "cable_150"
        _add_line(t, f"{feeder}_{k:03d}", ids[a], ids[b], ctype, length, f"{feeder} section {ids[a]} - {ids[b]}",
                  feeder, ss)


def _add_pv_plant(t: _Tables, fac: pd.DataFrame) -> None:
    """The 10 MWp PV plant on its own 22 kV line (feeder F_PV) from SS_SOUTH's busbar; AC rating = MWp."""
    x, y = fac.at["PV_PLANT", "x_km"], fac.at["PV_PLANT", "y_km"]
    _add_bus(t, "B_PV_PLANT", "PV_PLANT 10 MWp PV plant (F_PV)", 22.0, x, y, feeder="F_PV", substation="SS_SOUTH",
             kind="facility")
    s = fac.loc["SS_SOUTH"]
    _add_line(t, "F_PV_001", "B_SOUTH_22", "B_PV_PLANT", "ohl_148",
              ROUTE_FACTOR * math.hypot(x - s["x_km"], y - s["y_km"]), "F_PV dedicated line SS_SOUTH - PV_PLANT",
              "F_PV", "SS_SOUTH")
    t.generator.append({"id": "PV_PLANT", "bus": "B_PV_PLANT", "p_mw": 0.0, "p_max_mw": PV_PLANT_MWP,
                        "q_max_mvar": 0.0, "q_min_mvar": 0.0, "mbase_mva": PV_PLANT_MWP, "kind": "pv",
                        "fuel": "solar", "name": "utility PV plant, 10 MWp"})


def _add_rooftop_pv(t: _Tables) -> None:
    """Rooftop PV, one aggregate per city feeder (``PV_ROOF_<feeder>``, unity power factor) in proportion to
    the people it serves, at the feeder's post with the longest route from the busbar (the worst place for
    the midday voltage rise)."""
    info = pd.DataFrame(t.info).set_index("id")
    posts = info[info["kind"] == "post"]
    share = posts.groupby("feeder")["people"].sum()
    share = share / share.sum()
    for feeder, frac in share.items():
        p = round(ROOFTOP_MWP * frac, 3)
        t.generator.append({"id": f"PV_ROOF_{feeder}", "bus": _farthest_post(t, posts, feeder), "p_mw": 0.0,
                            "p_max_mw": p, "q_max_mvar": 0.0, "q_min_mvar": 0.0, "mbase_mva": 1.0, "kind": "pv",
                            "fuel": "solar", "name": f"rooftop PV of feeder {feeder} (aggregate)"})


def _farthest_post(t: _Tables, posts: pd.DataFrame, feeder: str) -> str:
    """The post of ``feeder`` with the longest route (km) from the substation busbar."""
    length = {b["id"]: b["length_km"] for b in t.branch_info}
    dist: dict[str, float] = {}
    for ln in t.line:  # a feeder's sections are stored parent → child from its busbar
        if ln["id"].startswith(feeder + "_"):
            dist[ln["bus1"]] = dist.get(ln["bus0"], 0.0) + length[ln["id"]]
    cand = {b: v for b, v in dist.items() if b in posts.index}
    return max(cand, key=cand.get)
