"""The spatial frame of the synthetic Berkane model: local coordinates, terrain, districts and facility sites.

Every layer (22 kV grid, water network, roads) is generated on this one frame, so that a pumping station,
its bus and the road node a repair crew drives to are the same place.  Positions are kilometres east
(``x_km``) and north (``y_km``) of the province reference point 34.917614 N, 2.317469 W, converted to
WGS84 with a local equirectangular projection (error < 1 m over the city).  What is sourced and what is
an estimate is recorded in the dataset's README; the layout of districts and facilities is synthetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CENTRE_LAT", "CENTRE_LON", "to_lonlat", "to_xy", "elevation_m", "districts", "facilities",
           "external_zones", "POPULATION_2024", "WATER_L_PER_PERSON_DAY", "Frame", "frame"]

CENTRE_LAT, CENTRE_LON = 34.917614, -2.317469  # province reference point (facts §1)
KM_PER_DEG_LAT = 110.95
KM_PER_DEG_LON = 111.32 * math.cos(math.radians(CENTRE_LAT))
POPULATION_2024 = 142_278  # Berkane municipality, 2024 census (facts §2)
SAIDIA_POPULATION_2014 = 8_780  # facts §2
WATER_L_PER_PERSON_DAY = 172.0  # gross production per served person: 56,160 m³/d ÷ 325,500 (facts §4.2, derived)
PLANT_CAPACITY_M3_DAY = 56_160.0  # ONEE treatment plant since July 2023 (facts §4.2)
PEOPLE_SERVED_BY_PLANT = 325_500  # Berkane, Saïdia and nearby centres (facts §4.2)


def to_lonlat(x_km, y_km):
    """(lon, lat) in degrees of local positions (km east, km north of the reference point)."""
    x, y = np.asarray(x_km, float), np.asarray(y_km, float)
    return CENTRE_LON + x / KM_PER_DEG_LON, CENTRE_LAT + y / KM_PER_DEG_LAT


def to_xy(lon, lat):
    """Inverse of :func:`to_lonlat`: (x_km, y_km)."""
    return ((np.asarray(lon, float) - CENTRE_LON) * KM_PER_DEG_LON,
            (np.asarray(lat, float) - CENTRE_LAT) * KM_PER_DEG_LAT)


def elevation_m(x_km, y_km):
    """Ground elevation (m) of the synthetic terrain [estimate, shaped on the facts]: 168 m mean altitude at
    the centre (facts §1), the Triffa plain falling 12 m/km to the north, the Beni Snassen foothills rising
    25 m/km south of y = −1.5 km; the coastal strip (y > 10 km, towards Saïdia) falls to ~10 m."""
    x, y = np.asarray(x_km, float), np.asarray(y_km, float)
    z = np.where(y >= -1.5, 168.0 - 12.0 * y, 186.0 + 25.0 * (-1.5 - y))
    z = np.where(y > 10.0, np.maximum(10.0, 48.0 - 2.0 * (y - 10.0)), z)  # the plain towards the sea
    z = z - 0.8 * x  # a gentle fall towards the east (Oued Cheraa side)
    return np.maximum(z, 5.0)


_ROWS = {"south": -1.8, "centre-south": -0.6, "centre-north": 0.6, "north": 1.8}
_COLS = {"W3": -3.0, "W2": -1.8, "W1": -0.6, "E1": 0.6, "E2": 1.8, "E3": 3.0}
# deterministic jitter (km) so that the districts are not a perfect lattice
_JITTER = np.array([[0.10, -0.05], [-0.08, 0.12], [0.05, 0.07], [-0.12, -0.04], [0.09, 0.10], [-0.06, -0.11]])


def districts() -> pd.DataFrame:
    """The 24 city districts (synthetic: no list of Berkane's neighbourhoods was found, facts §1).

    Columns: ``name`` (row-column label), ``x_km``, ``y_km``, ``lon``, ``lat``, ``elevation_m``,
    ``area_km2`` (1.44 each: a 1.2 km lattice), ``population`` (2024 census total spread by a density
    falling with distance from the centre, the southern extension districts weighted up: facts §1 'urban
    extension mainly to the south'), ``jobs`` (0.32 per inhabitant, concentrated in the centre along
    Avenue Mohammed V and in the eastern activity zone), ``role`` (residential / centre / activity)."""
    rows = []
    k = 0
    for rname, y in _ROWS.items():
        for cname, x in _COLS.items():
            jx, jy = _JITTER[(k * 5 + 3) % 6]
            rows.append({"id": f"D{k + 1:02d}", "name": f"{rname} {cname}", "x_km": x + jx, "y_km": y + jy})
            k += 1
    df = pd.DataFrame(rows).set_index("id")
    r = np.hypot(df["x_km"], df["y_km"])
    w = np.exp(-r / 2.6) * np.where(df["y_km"] < -1.0, 1.25, 1.0)
    pop = w / w.sum() * POPULATION_2024
    df["population"] = _round_to_total(pop.to_numpy(), POPULATION_2024)
    centre = np.exp(-np.hypot(df["x_km"], df["y_km"] - 0.2) / 1.1)
    activity = ((df["x_km"] > 2.5) & (df["y_km"].between(0.0, 1.5))).to_numpy() * 0.35
    jw = centre + activity + 0.08
    jobs_total = round(0.32 * POPULATION_2024)
    df["jobs"] = _round_to_total((jw / jw.sum() * jobs_total).to_numpy(), jobs_total)
    df["role"] = np.where(activity > 0, "activity", np.where(centre > 0.45, "centre", "residential"))
    df["area_km2"] = 1.44
    lon, lat = to_lonlat(df["x_km"], df["y_km"])
    df["lon"], df["lat"] = lon, lat
    df["elevation_m"] = elevation_m(df["x_km"], df["y_km"])
    return df[["name", "role", "x_km", "y_km", "lon", "lat", "elevation_m", "area_km2", "population", "jobs"]]


def _round_to_total(values: np.ndarray, total: int) -> np.ndarray:
    """Integers with the given total (largest remainders)."""
    base = np.floor(values).astype(int)
    short = int(total - base.sum())
    order = np.argsort(-(values - base), kind="stable")
    base[order[:short]] += 1
    return base


def external_zones() -> pd.DataFrame:
    """Road gateways to the towns around Berkane (facts §1, §6): where the roads leave the modelled area,
    ~6–7 km from the centre on the road towards the town.  ``daily_veh`` is the two-way daily traffic at
    the gateway [E: the order of magnitude of facts §6's placeholders — RN2 8,000–15,000 veh/day,
    Berkane–Saïdia 5,000–10,000 veh/day, ×1.5–2 in summer]; it scales the gravity model's external trips.
    ``distance_km`` is to the town itself (facts §1)."""
    rows = [
        {"id": "X_OUJDA", "name": "towards Oujda (60 km SE)", "x_km": 5.5, "y_km": -4.5, "daily_veh": 9_000,
         "summer_factor": 1.2, "distance_km": 60.0},
        {"id": "X_AHFIR", "name": "N2 east, towards Ahfir", "x_km": 7.0, "y_km": 0.9, "daily_veh": 6_000,
         "summer_factor": 1.3, "distance_km": 25.0},
        {"id": "X_SAIDIA", "name": "north, towards Saïdia (22 km)", "x_km": 1.0, "y_km": 6.5, "daily_veh": 7_000,
         "summer_factor": 1.8, "distance_km": 22.0},
        {"id": "X_NADOR", "name": "N2 west, towards Nador (80 km)", "x_km": -7.0, "y_km": 1.2, "daily_veh": 10_000,
         "summer_factor": 1.3, "distance_km": 80.0},
    ]
    df = pd.DataFrame(rows).set_index("id")
    lon, lat = to_lonlat(df["x_km"], df["y_km"])
    df["lon"], df["lat"] = lon, lat
    return df


@dataclass(frozen=True)
class Site:
    id: str
    layer: str
    kind: str
    x_km: float
    y_km: float
    note: str


# Facility sites every layer must use (ids are the contract between layers and the coupling table).
_SITES = [
    Site("WTP", "water", "treatment_plant", -4.5, 1.0,
         "ONEE treatment plant, 56,160 m³/d (650 l/s), raw water from the Mohammed V – Machraa Hammadi "
         "complex to the west [capacity S, site E]"),
    Site("PS_WTP", "water", "pumping_station", -4.5, 1.0,
         "treated-water pumping station at the plant lifting to the foothill reservoirs [S: exists; size E]"),
    Site("T_S1", "water", "tank", -1.0, -3.6, "service reservoir, south foothills [E: 2–4 reservoirs of "
         "1,000–5,000 m³ on the foothills, facts §4.2]"),
    Site("T_S2", "water", "tank", 1.2, -3.4, "service reservoir, south foothills [E]"),
    Site("PS_EAST", "water", "pumping_station", 2.6, -2.3, "booster to the eastern high zone [E]"),
    Site("T_E", "water", "tank", 4.0, -4.4, "service reservoir of the eastern high zone [E]"),
    Site("T_SAIDIA", "water", "tank", 2.0, 21.0, "Saïdia reservoir (1,000 m³, 2007 extension; facts §4.2)"),
    Site("SAIDIA", "water", "district", 2.2, 21.5, "Saïdia town, supplied by a branch main [S]; summer peak [E]"),
    Site("SS_225", "energy", "substation_225_60", -5.5, 3.0,
         "225/60 kV source substation, 2 × 100 MVA [E from ONEE templates, facts §5]"),
    Site("SS_NORTH", "energy", "substation_60_22", -0.5, 1.5, "60/22 kV substation, 2 × 40 MVA [E]"),
    Site("SS_SOUTH", "energy", "substation_60_22", 1.0, -1.2, "60/22 kV substation, 2 × 40 MVA [E]"),
    Site("PV_PLANT", "energy", "pv_plant", 2.8, -3.0, "utility PV on the foothills, 10 MWp [E]"),
    Site("EV_CENTRE", "mobility", "ev_hub", 0.0, 0.2, "EV charging hub, Avenue Mohammed V [E; EV stations "
         "installed with Majal Berkane in 2023, facts §5]"),
    Site("EV_N2_EAST", "mobility", "ev_hub", 2.6, 0.9, "EV charging hub on the N2, east [E]"),
    Site("EV_SOUTH", "mobility", "ev_hub", 0.3, -1.6, "EV charging hub, southern districts [E]"),
    Site("EV_WEST", "mobility", "ev_hub", -2.4, 0.9, "EV charging hub on the N2, west [E]"),
]


def facilities() -> pd.DataFrame:
    """Facility sites (index = id): ``layer``, ``kind``, ``x_km``, ``y_km``, ``lon``, ``lat``,
    ``elevation_m``, ``note`` (source status)."""
    df = pd.DataFrame([s.__dict__ for s in _SITES]).set_index("id")
    lon, lat = to_lonlat(df["x_km"], df["y_km"])
    df["lon"], df["lat"] = lon, lat
    df["elevation_m"] = elevation_m(df["x_km"], df["y_km"])
    return df[["layer", "kind", "x_km", "y_km", "lon", "lat", "elevation_m", "note"]]


# Road corridors (synthetic geometry, sourced existence: facts §6)
N2_Y_KM = 0.95  # the N2 crossing the city east–west (the 'single boulevard' of facts §1)
BYPASS_Y_KM = 3.3  # the 14 km 2×2 bypass, north of the city across the plain [geometry E]
MOHAMMED_V_Y_KM = 0.2  # Avenue Mohammed V, the commercial spine, east–west through the centre
SAIDIA_ROAD_X_KM = 1.0  # the road north to Saïdia


@dataclass
class Frame:
    """All of the frame in one object (what the layer builders receive)."""

    districts: pd.DataFrame
    facilities: pd.DataFrame
    external_zones: pd.DataFrame


def frame() -> Frame:
    return Frame(districts=districts(), facilities=facilities(), external_zones=external_zones())
