"""Coupled hourly simulation of the three layers and the cascade engine for outages.

One day is simulated hour by hour in the order the dependencies run:

1. **Electricity topology.**  Outaged branches, buses, generators, feeders (their head breakers) or
   substations (their transformers) are removed; buses no longer connected to a reference bus are
   de-energised (their load unserved, their PV and batteries tripped: anti-islanding).
2. **Water.**  Pumps and treatment plants fed from a de-energised bus stop, outaged water links close;
   the day is simulated with the twin's extended-period hydraulic solver in segments between the hours
   where that set changes (tank levels, pump states and link statuses carried across segments), with
   pressure-driven demand so that a district whose pressure collapses receives less water.
3. **Electricity power flow.**  Each hour's AC power flow: class loads × the day's profiles, pumping and
   treatment power from the hydraulic result, EV charging, traffic signals; PV at the day's availability.
4. **Roads.**  Signals on de-energised buses go dark (the capacity of the links entering the node falls
   by the coupling's ``capacity_factor``), outaged links close; the hours where the road state differs
   from normal are assigned with and without the disruption.

:func:`run_cascade` runs the day without and with the outages and reports the service KPIs; the metrics
are the pure functions of :mod:`twin.resilience`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from . import resilience
from .coupled import CoupledTwin, CouplingError, nearest_ids
from .energy import power_flow
from .transport import assign_traffic
from .water import HydraulicWarning, WaterNetwork, simulate_hydraulics
from .water.schedule import schedule_network, set_link_status

__all__ = ["Outage", "CoupledResult", "CascadeResult", "simulate_coupled", "run_cascade", "required_demand",
           "ev_uncontrolled_mw", "load_multipliers", "pv_availability"]

SERVICE_SHARE = 0.5  # a junction receiving less than half its demand counts its people as without water [E]
UNSERVED_TRIP_H = 1.0  # vehicle-hours lost per trip that has no open path (not made, or made another way) [E]


@dataclass(frozen=True)
class Outage:
    """An element out of service from ``start_h`` to ``end_h`` (hours from the start of the day; ``end_h``
    may be ``inf``: not restored within the day).  ``layer``: ``"energy"`` (branch, bus, generator,
    feeder or substation id), ``"water"`` (link id, or a tank/reservoir id: its links close) or
    ``"roads"`` (link id, or a node id: its links close)."""

    layer: str
    element: str
    start_h: float
    end_h: float = math.inf

    def active(self, hour: int) -> bool:
        return self.start_h <= hour < self.end_h


@dataclass
class CoupledResult:
    """Hourly results of :func:`simulate_coupled` (rows = the twin's snapshots).

    ``energy``: load_mw (demand), served_mw, unserved_mw, generation_mw, pv_mw, storage_mw (battery output),
    losses_mw, shunt_mw, pumping_mw, treatment_mw, ev_mw, balance_mw (generation + battery − served − losses −
    shunts: ~0), vmin_pu,
    vmax_pu, people_without_power.  ``water``: source_m3h (supplied by reservoirs), required_m3h,
    delivered_m3h, unserved_m3h, tank_change_m3h, balance_m3h (source − delivered − tank change: ~0),
    people_without_water.  ``tank_level`` (m), ``pump_power_kw``, ``pump_on`` (hours × pumps),
    ``district_water`` (people without water per district and hour), ``district_pressure`` (lowest junction
    pressure per district and hour, m), ``bus_dead`` (hours × buses, bool),
    ``traffic`` (per assigned hour: tstt_veh_h, unserved_trips), ``hydraulics`` (the segment results),
    ``timings``."""

    energy: pd.DataFrame
    water: pd.DataFrame
    tank_level: pd.DataFrame
    pump_power_kw: pd.DataFrame
    pump_on: pd.DataFrame
    district_water: pd.DataFrame
    bus_dead: pd.DataFrame
    district_pressure: pd.DataFrame
    traffic: pd.DataFrame
    hydraulics: list = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class CascadeResult:
    """Normal day, disrupted day and the KPIs of the difference.

    ``kpis``: unserved_energy_mwh, unserved_water_m3, people_hours_without_water,
    peak_people_without_water, people_hours_without_power, peak_people_without_power,
    extra_vehicle_hours (more total travel time in the disrupted hours, plus ``UNSERVED_TRIP_H`` per trip
    left without a path), restoration_time_h (per layer and overall: hours from the first outage until
    every service is back to normal; ``inf`` when not within the day)."""

    base: CoupledResult
    disrupted: CoupledResult
    outages: list[Outage]
    kpis: dict[str, Any]
    hourly: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        out = {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in self.kpis.items()
               if not isinstance(v, dict)}
        out.update({k: {kk: (None if isinstance(vv, float) and math.isinf(vv) else vv) for kk, vv in v.items()}
                    for k, v in self.kpis.items() if isinstance(v, dict)})
        out["outages"] = [{"layer": o.layer, "element": o.element, "start_h": o.start_h,
                           "end_h": None if math.isinf(o.end_h) else o.end_h} for o in self.outages]
        return out


# -- electricity topology --------------------------------------------------------------------------------------

def _check_outages(twin: CoupledTwin, outages: Sequence[Outage]) -> None:
    g, info = twin.grid, twin.bus_info
    energy_ids = {"branch": set(g.line.index) | set(g.transformer.index), "bus": set(g.bus.index),
                  "generator": set(g.generator.index),
                  "feeder": set(info["feeder"].dropna().astype(str)) - {""},
                  "substation": set(info["substation"].dropna().astype(str)) - {""}}
    for o in outages:
        if not o.end_h > o.start_h:
            raise CouplingError(f"outage of {o.element!r}: end_h {o.end_h!r} is not after start_h {o.start_h!r}")
        if o.layer == "energy":
            valid = set().union(*energy_ids.values())
        elif o.layer == "water":
            w = twin.water
            valid = set(w.link_ids()) | set(w.tank.index) | set(w.reservoir.index)
        elif o.layer == "roads":
            valid = set(twin.roads.link.index) | set(twin.roads.node.index)
        else:
            raise CouplingError(f"outage of {o.element!r}: layer {o.layer!r} is not energy, water or roads")
        if o.element not in valid:
            raise CouplingError(f"outage: {o.layer} element {o.element!r} does not exist; nearest: "
                                f"{nearest_ids(o.element, sorted(valid))}")


def _branches_out(twin: CoupledTwin, element: str) -> tuple[set[str], set[str], set[str]]:
    """(branches, buses, generators) taken out by an energy outage of ``element``."""
    g, info = twin.grid, twin.bus_info
    if element in g.line.index or element in g.transformer.index:
        return {element}, set(), set()
    if element in g.bus.index:
        return set(), {element}, set()
    if element in g.generator.index:
        return set(), set(), {element}
    br = pd.concat([g.line[["bus0", "bus1"]], g.transformer[["bus0", "bus1"]]])
    if element in set(info["feeder"].astype(str)):  # the feeder's head breaker: branches leaving the feeder
        members = set(info.index[info["feeder"].astype(str) == element])
        head = br.index[br["bus0"].isin(members) != br["bus1"].isin(members)]
        return set(head), set(), set()
    members = set(info.index[info["substation"].astype(str) == element])  # a substation: its transformers
    inside = br.index[br["bus0"].isin(members) | br["bus1"].isin(members)]
    trafos = [b for b in inside if b in g.transformer.index]
    return set(trafos), set(), set()


def _dead_buses(twin: CoupledTwin, branches: set[str], buses: set[str]) -> set[str]:
    g = twin.grid
    graph = nx.Graph()
    live_bus = g.bus.index[g.bus["in_service"]]
    graph.add_nodes_from(b for b in live_bus if b not in buses)
    for table in ("line", "transformer"):
        df = g[table]
        for bid, row in df[df["in_service"]].iterrows():
            if bid in branches or row["bus0"] in buses or row["bus1"] in buses:
                continue
            graph.add_edge(row["bus0"], row["bus1"])
    refs = [b for b in g.bus.index[g.bus["type"] == "ref"] if b in graph]
    alive = set().union(*(nx.node_connected_component(graph, r) for r in refs)) if refs else set()
    return set(g.bus.index) - alive


# -- water ---------------------------------------------------------------------------------------------------

def required_demand(wn: WaterNetwork, times_s: np.ndarray) -> pd.DataFrame:
    """Demand the junctions ask for (m³/s) at the given times: base × pattern × demand multiplier."""
    d = wn.demand
    pstep = wn.times.pattern_step_s or 3600
    default = wn.options.pattern
    out = np.zeros((len(times_s), len(wn.junction)))
    pos = wn.junction.index.get_indexer(d["junction"])
    for k, (_, row) in enumerate(d.iterrows()):
        pat_id = row["pattern"] or default
        pat = wn.patterns.get(pat_id)
        if pat is None or len(pat) == 0:
            mult = np.ones(len(times_s))
        else:
            idx = ((np.asarray(times_s) + wn.times.pattern_start_s) // pstep) % len(pat)
            mult = pat[idx.astype(int)]
        out[:, pos[k]] += row["base_m3s"] * mult
    return pd.DataFrame(out * wn.options.demand_multiplier, index=pd.Index(times_s, name="time_s"),
                        columns=wn.junction.index)


def _links_of_node(wn: WaterNetwork, node: str) -> list[str]:
    out = []
    for t in ("pipe", "pump", "valve"):
        df = wn[t]
        out += list(df.index[(df["node1"] == node) | (df["node2"] == node)])
    return out


def _segment_network(wn: WaterNetwork, t0: int, t1: int, closed: set[str], state: dict | None) -> WaterNetwork:
    """The network for [t0, t1): closed links forced shut (their controls and rules dropped), the clock
    moved to t0, tank levels and link statuses from the previous segment's end."""
    w = wn.copy()
    w.controls = [c for c in w.controls if c.link not in closed]
    kept = []
    for c in w.controls:
        if c.condition == "TIME":
            if c.time_s < t0:
                continue
            c.time_s -= t0
        kept.append(c)
    w.controls = kept
    w.rules = [r for r in w.rules if not any(a.id in closed for a in r.then_actions + r.else_actions)]
    if state is not None:
        tank = w.tank.copy()
        for k, lev in state["levels"].items():
            tank.loc[k, "init_level_m"] = float(np.clip(lev, tank.loc[k, "min_level_m"], tank.loc[k, "max_level_m"]))
        w.tank = tank
        for link, (status, setting) in state["links"].items():
            if link in closed:
                continue
            if link in w.pump.index:
                set_link_status(w, link, "OPEN" if status == "OPEN" else "CLOSED")
                if status == "OPEN" and np.isfinite(setting) and setting > 0:
                    w.pump.loc[link, "speed"] = float(setting)
            elif link in w.pipe.index and w.pipe.loc[link, "status"] != "CV":
                set_link_status(w, link, "CLOSED" if status == "CLOSED" else "OPEN")
            elif link in w.valve.index:
                set_link_status(w, link, status if status in ("OPEN", "CLOSED") else "ACTIVE")
    for link in closed:
        if link in w.pipe.index:
            w.pipe.loc[link, "status"] = "CLOSED"
        else:
            set_link_status(w, link, "CLOSED")
    w.times.pattern_start_s = wn.times.pattern_start_s + t0
    w.times.start_clocktime_s = (wn.times.start_clocktime_s + t0) % 86400
    w.times.duration_s = t1 - t0
    w.times.report_start_s = 0
    w.times.report_step_s = 3600
    return w


def _simulate_water(twin: CoupledTwin, hours: int, closed_by_hour: list[set[str]], demand_model: str,
                    pump_schedule: pd.DataFrame | None) -> tuple[dict[str, pd.DataFrame], list, list[str]]:
    wn = twin.water
    if pump_schedule is not None:
        wn, _notes = schedule_network(wn, pump_schedule)
    wn = wn.copy()
    wn.options.unbalanced = "CONTINUE"  # a damaged network may not balance at some steps: go on (EPANET's
    wn.options.unbalanced_extra_trials = 10  # CONTINUE n), the unbalanced steps are listed in the messages
    if demand_model == "PDA":
        wn.options.demand_model = "PDA"
        wn.options.minimum_pressure_m = 0.0
        wn.options.required_pressure_m = float(twin.meta.get("required_pressure_m", 15.0))
    segs, start = [], 0
    for h in range(1, hours + 1):
        if h == hours or closed_by_hour[h] != closed_by_hour[start]:
            segs.append((start, h))
            start = h
    frames: dict[str, list[pd.DataFrame]] = {k: [] for k in ("node_head", "node_pressure", "node_demand", "link_flow",
                                                             "link_status", "link_setting", "pump_power")}
    results, messages, state = [], [], None
    ruled = {a.id for r in wn.rules for a in r.then_actions + r.else_actions}
    controlled = sorted({c.link for c in wn.controls} | ruled | set(wn.pump.index))
    for a, b in segs:
        w = _segment_network(wn, a * 3600, b * 3600, closed_by_hour[a], state)
        with warnings.catch_warnings():  # a damaged network warns at every step: the messages are kept below
            warnings.simplefilter("ignore", HydraulicWarning)
            res = simulate_hydraulics(w, duration_s=(b - a) * 3600, demand_model=demand_model)
        results.append(res)
        if res.messages:
            elements = sorted({m[1] for m in res.messages})
            messages.append(f"water {a}-{b} h: {len(res.messages)} hydraulic warning(s) on {len(elements)} element(s), "
                            f"e.g. {elements[0]!r}: {res.messages[0][2]}")
        if res.halted_at_s is not None:
            messages.append(f"water {a}-{b} h: the hydraulic run halted at {a + res.halted_at_s / 3600:.2f} h")
        for k in frames:
            df = getattr(res, k).copy()
            df.index = df.index + a * 3600
            if b < hours:
                df = df[df.index < b * 3600]
            frames[k].append(df)
        end = res.node_head.index[-1]
        tanks = list(w.tank.index)
        levels = res.node_head.loc[end, tanks] - w.tank["elevation_m"]
        links = {lk: (res.link_status.loc[end, lk], float(res.link_setting.loc[end, lk])) for lk in controlled
                 if lk in res.link_status.columns}
        state = {"levels": levels.to_dict(), "links": links}
    out = {k: pd.concat(v) for k, v in frames.items()}
    return out, results, messages


# -- EV --------------------------------------------------------------------------------------------------------

def ev_uncontrolled_mw(twin: CoupledTwin, ev_share: float | None = None) -> pd.DataFrame:
    """Uncontrolled EV charging (MW) per hub and hour: vehicles arriving in the hub's zones (daily OD column
    sums × the hourly profile) × EV share × plug-in share, each drawing ``charger_kw`` from arrival until
    ``kwh_per_session`` is delivered (parameters in ``twin.meta['ev']``, estimates)."""
    ev = dict(twin.meta.get("ev", {}))
    share = float(ev_share if ev_share is not None else ev.get("share", 0.01))
    plug = float(ev.get("plug_in_share", 0.3))
    kwh = float(ev.get("kwh_per_session", 10.0))
    kw = float(ev.get("charger_kw", 7.0))
    hubs = twin.coupling_of("ev_hub")
    T = len(twin.snapshots)
    out = pd.DataFrame(0.0, index=twin.snapshots, columns=hubs["element"].tolist())
    if twin.od_daily.empty or not len(hubs):
        return out
    arrivals_day = twin.od_daily.sum(axis=0)  # vehicles/day ending in each zone
    prof = twin.traffic_profile.to_numpy(float)[:T]
    dur = kwh / kw
    for _, row in hubs.iterrows():
        zones = [z for z in str(row["zones"]).split(";") if z]
        n = float(arrivals_day.reindex(zones).fillna(0).sum()) * share * plug
        for a in range(T):
            veh = n * prof[a]
            left = dur
            t = a
            while left > 1e-9 and t < T:
                frac = min(1.0, left)
                out.iloc[t, out.columns.get_loc(row["element"])] += veh * kw * frac / 1000.0
                left -= frac
                t += 1
    return out


def load_multipliers(twin: CoupledTwin, hours: int) -> np.ndarray:
    """(in-service loads × hours) factors on the grid's static loads (the summer peak at the hour
    ``twin.meta['load_reference']`` describes): each class share × its hourly profile relative to that hour;
    facility shares stay at 1 except at the buses of pumps and plants, whose power comes from the water side
    (hydraulic result or water-works schedule)."""
    info, ld = twin.bus_info, twin.grid.load[twin.grid.load["in_service"]]
    cols = [c for c in info.columns if c.startswith("share_")]
    shares = info.reindex(ld["bus"])[cols].fillna(0.0).to_numpy()
    ref = twin.meta.get("load_reference", {})
    prof = twin.series.iloc[:hours]
    coupled = set(twin.coupling_of("pump")["bus"]) | set(twin.coupling_of("plant")["bus"])
    out = np.zeros((len(ld), hours))
    for j, col in enumerate(cols):
        cls = col.removeprefix("share_")
        if cls == "facility":
            out += (shares[:, j] * ~ld["bus"].isin(coupled).to_numpy())[:, None]
        elif cls in prof:
            out += shares[:, j][:, None] * (prof[cls].to_numpy() / float(ref.get(cls, 1.0) or 1.0))[None, :]
    return out


def pv_availability(twin: CoupledTwin, hours: int) -> pd.DataFrame:
    """(hours × PV generator ids) availability (p.u. of p_max_mw): the plant profile for generators named
    ``*PLANT*``, the rooftop profile for the others."""
    gen = twin.grid.generator
    pv = gen.index[gen["kind"].astype(str) == "pv"]
    cols = {g: twin.series["pv_plant_pu" if "PLANT" in str(g).upper() else "pv_rooftop_pu"].to_numpy()[:hours]
            for g in pv}
    return pd.DataFrame(cols, index=twin.snapshots[:hours], columns=pv)


# -- the coupled day ------------------------------------------------------------------------------------------

def simulate_coupled(twin: CoupledTwin, *, outages: Iterable[Outage] = (), hours: int | None = None,
                     pump_schedule: pd.DataFrame | None = None, ev_charging_mw: pd.DataFrame | None = None,
                     demand_model: str = "PDA", assign_hours: Iterable[int] | None = None,
                     rel_gap: float = 1e-4, storage_mw: pd.DataFrame | None = None) -> CoupledResult:
    """Simulate the coupled day hour by hour (module docstring).

    ``pump_schedule``: pump speeds by step (rows: seconds from the start) replacing the pumps' own
    controls (e.g. an optimised schedule); ``ev_charging_mw``: hub charging (hours × hub ids), default
    :func:`ev_uncontrolled_mw`; ``assign_hours``: hours whose traffic is assigned even without a road
    disruption (default: only disrupted hours); ``storage_mw``: battery output by hour (hours × storage ids,
    MW, + discharging), e.g. from a dispatch (default idle)."""
    t_start = time.perf_counter()
    outages = list(outages)
    _check_outages(twin, outages)
    T = len(twin.snapshots) if hours is None else int(hours)
    idx = twin.snapshots[:T]
    g = twin.grid
    # 1. electricity topology per hour
    dead_by_hour, gens_out_by_hour = [], []
    cache: dict[frozenset, tuple[set, set]] = {}
    for h in range(T):
        active = frozenset(o.element for o in outages if o.layer == "energy" and o.active(h))
        if active not in cache:
            br, bu, ge = set(), set(), set()
            for e in active:
                a, b, c = _branches_out(twin, e)
                br |= a
                bu |= b
                ge |= c
            cache[active] = (_dead_buses(twin, br, bu) if active else set(), ge | set(), br)
        dead, ge, _br = cache[active]
        dead_by_hour.append(dead)
        gens_out_by_hour.append(ge)
    branches_by_hour = [cache[frozenset(o.element for o in outages if o.layer == "energy" and o.active(h))][2]
                        for h in range(T)]
    # 2. water: what the grid and the outages switch off
    pumps = twin.coupling_of("pump")
    plants = twin.coupling_of("plant")
    closed_by_hour = []
    for h in range(T):
        closed = set(pumps.loc[pumps["bus"].isin(dead_by_hour[h]), "element"])
        for src in plants.loc[plants["bus"].isin(dead_by_hour[h]), "element"]:
            closed |= set(_links_of_node(twin.water, src))
        for o in outages:
            if o.layer == "water" and o.active(h):
                nodes = set(twin.water.tank.index) | set(twin.water.reservoir.index)
                closed |= set(_links_of_node(twin.water, o.element)) if o.element in nodes else {o.element}
        closed_by_hour.append(closed)
    t0 = time.perf_counter()
    hyd, hyd_results, messages = _simulate_water(twin, T, closed_by_hour, demand_model, pump_schedule)
    t_water = time.perf_counter() - t0
    times = np.arange(T) * 3600
    wn = twin.water
    junctions = wn.junction.index
    req = required_demand(wn, times)
    deliv = hyd["node_demand"].reindex(times)[junctions].clip(lower=0.0)
    tanks = list(wn.tank.index)
    reservoirs = list(wn.reservoir.index)
    levels = hyd["node_head"].reindex(times)[tanks] - wn.tank["elevation_m"]
    pump_kw = hyd["pump_power"].reindex(times).fillna(0.0)
    pump_on = hyd["link_status"].reindex(times)[list(wn.pump.index)] == "OPEN"
    source_m3h = -hyd["node_demand"].reindex(times)[reservoirs].sum(axis=1) * 3600.0
    tank_m3h = hyd["node_demand"].reindex(times)[tanks].sum(axis=1) * 3600.0
    all_junction_m3h = hyd["node_demand"].reindex(times)[junctions].sum(axis=1) * 3600.0
    # people per junction: the district's population in proportion to the junction's base demand
    tag = wn.junction["tag"].astype(str)
    base = req.mean(axis=0)
    dist_pop = pd.concat([twin.districts["population"].astype(float),
                          pd.Series(twin.meta.get("water_people", {}), dtype=float)])
    share = base / base.groupby(tag).transform("sum").replace(0, np.nan)
    people_j = (share * tag.map(dist_pop)).fillna(0.0)
    short = (deliv < SERVICE_SHARE * req) & (req > 0)
    people_out = short.astype(float) * people_j.to_numpy()[None, :]
    district_water = people_out.T.groupby(tag.to_numpy()).sum().T
    district_water.index = idx
    pressure = hyd["node_pressure"].reindex(times)[junctions]
    in_district = tag.isin(twin.districts.index).to_numpy()
    district_pressure = pressure.loc[:, in_district].T.groupby(tag[in_district].to_numpy()).min().T
    district_pressure.index = idx
    # 3. electricity: loads per hour, power flow
    info = twin.bus_info
    ev = ev_uncontrolled_mw(twin) if ev_charging_mw is None else ev_charging_mw
    if ev_charging_mw is not None:
        twin.check_series(ev_charging_mw, "ev_charging_mw", T)
    if storage_mw is not None:
        twin.check_series(storage_mw, "storage_mw", T)
    loads = g.load[g.load["in_service"]]
    multipliers = load_multipliers(twin, T)
    pv_pu = pv_availability(twin, T)
    rows_e = []
    t0 = time.perf_counter()
    for h in range(T):
        gh = g.copy()
        mult = multipliers[:, h]
        ld = gh.load.copy()
        ld.loc[loads.index, "p_mw"] = loads["p_mw"].to_numpy() * mult
        ld.loc[loads.index, "q_mvar"] = loads["q_mvar"].to_numpy() * mult
        extra = {}
        pumping = 0.0
        for _, row in pumps.iterrows():
            kw = float(pump_kw[row["element"]].iloc[h]) if row["element"] in pump_kw else 0.0
            extra[row["bus"]] = extra.get(row["bus"], 0.0) + kw / 1000.0
            pumping += kw / 1000.0
        treatment = 0.0
        for _, row in plants.iterrows():
            q = -float(hyd["node_demand"].reindex(times)[row["element"]].iloc[h]) * 3600.0
            mw = max(q, 0.0) * float(row.get("kwh_per_m3", 0.0) or 0.0) / 1000.0
            extra[row["bus"]] = extra.get(row["bus"], 0.0) + mw
            treatment += mw
        ev_mw = 0.0
        for _, row in twin.coupling_of("ev_hub").iterrows():
            mw = float(ev[row["element"]].iloc[h]) if row["element"] in ev else 0.0
            extra[row["bus"]] = extra.get(row["bus"], 0.0) + mw
            ev_mw += mw
        for _, row in twin.coupling_of("signal").iterrows():
            extra[row["bus"]] = extra.get(row["bus"], 0.0) + float(row.get("p_kw", 0.0) or 0.0) / 1000.0
        new = [{"bus": b, "p_mw": p, "q_mvar": 0.2 * p, "in_service": True, "name": "coupled"}
               for b, p in extra.items() if p != 0.0]
        if new:
            ld = pd.concat([ld, pd.DataFrame(new, index=[f"coupled_{b}" for b, _p in extra.items() if _p != 0.0])])
        gh.load = ld
        gen = gh.generator.copy()
        gen.loc[pv_pu.columns, "p_mw"] = gen.loc[pv_pu.columns, "p_max_mw"].to_numpy() * pv_pu.iloc[h].to_numpy()
        dead = dead_by_hour[h]
        gen.loc[gen["bus"].isin(dead) | gen.index.isin(gens_out_by_hour[h]), "in_service"] = False
        gh.generator = gen
        sto = gh.storage.copy()
        sto["p_mw"] = 0.0
        if storage_mw is not None:
            cols = [c for c in storage_mw.columns if c in sto.index]
            sto.loc[cols, "p_mw"] = storage_mw[cols].iloc[h].to_numpy(float)
        sto.loc[sto["bus"].isin(dead), "in_service"] = False
        gh.storage = sto
        bus = gh.bus.copy()
        bus.loc[list(dead), "in_service"] = False
        gh.bus = bus
        for table in ("line", "transformer"):
            df = gh[table].copy()
            df.loc[df.index.isin(branches_by_hour[h]), "in_service"] = False
            gh.set_table(table, df)
        res = power_flow(gh)
        if not res.converged:
            messages.append(f"{h} h: the power flow did not converge (worst bus {res.worst_bus!r})")
        on = ld[ld["in_service"]]
        unserved = float(on.loc[on["bus"].isin(dead), "p_mw"].sum())  # load at de-energised buses
        served = float(res.bus["p_load_mw"].sum())
        losses = float(res.branch["pl_mw"].sum())
        gen_mw = float(res.generator.loc[res.generator["in_service"], "p_mw"].sum())
        sh = gh.shunt[gh.shunt["in_service"]]
        vm = res.bus["vm_pu"].reindex(sh["bus"]).to_numpy() if len(sh) else np.zeros(0)
        shunt = float((sh["g_mw"].to_numpy() * np.nan_to_num(vm) ** 2).sum()) if len(sh) else 0.0
        pv = float(res.generator.loc[res.generator.index.isin(gen.index[gen["kind"].astype(str) == "pv"])
                                     & res.generator["in_service"], "p_mw"].sum())
        vmin = float(res.bus.loc[res.bus["energised"], "vm_pu"].min())
        vmax = float(res.bus.loc[res.bus["energised"], "vm_pu"].max())
        battery = float(sto.loc[sto["in_service"], "p_mw"].sum())
        rows_e.append({"load_mw": served + unserved, "served_mw": served, "unserved_mw": unserved,
                       "generation_mw": gen_mw, "pv_mw": pv, "storage_mw": battery, "losses_mw": losses,
                       "shunt_mw": shunt, "pumping_mw": pumping, "treatment_mw": treatment, "ev_mw": ev_mw,
                       "balance_mw": gen_mw + battery - served - losses - shunt, "vmin_pu": vmin, "vmax_pu": vmax,
                       "people_without_power": float(info["people"].reindex(list(dead)).fillna(0).sum())})
    t_grid = time.perf_counter() - t0
    energy = pd.DataFrame(rows_e, index=idx)
    water = pd.DataFrame({"source_m3h": source_m3h.to_numpy(), "required_m3h": req.sum(axis=1).to_numpy() * 3600.0,
                          "delivered_m3h": deliv.sum(axis=1).to_numpy() * 3600.0,
                          "tank_change_m3h": tank_m3h.to_numpy(),
                          "balance_m3h": (source_m3h - all_junction_m3h - tank_m3h).to_numpy(),
                          "people_without_water": people_out.sum(axis=1).to_numpy()}, index=idx)
    water["unserved_m3h"] = (req - deliv).clip(lower=0.0).sum(axis=1).to_numpy() * 3600.0
    # 4. roads
    t0 = time.perf_counter()
    traffic = _traffic(twin, outages, dead_by_hour, T, assign_hours, rel_gap)
    t_roads = time.perf_counter() - t0
    dead_frame = pd.DataFrame(False, index=idx, columns=g.bus.index)
    for h, dead in enumerate(dead_by_hour):
        if dead:
            dead_frame.iloc[h, dead_frame.columns.get_indexer(list(dead))] = True
    for frame_ in (levels, pump_kw, pump_on):
        frame_.index = idx
    return CoupledResult(energy=energy, water=water, tank_level=levels, pump_power_kw=pump_kw, pump_on=pump_on,
                         district_water=district_water, bus_dead=dead_frame, district_pressure=district_pressure,
                         traffic=traffic,
                         hydraulics=hyd_results, messages=messages,
                         timings={"water_s": t_water, "grid_s": t_grid, "roads_s": t_roads,
                                  "total_s": time.perf_counter() - t_start})


def _road_state(twin: CoupledTwin, outages: Sequence[Outage], dead: set[str], h: int
                ) -> tuple[frozenset, tuple]:
    closed = set()
    link = twin.roads.link
    for o in outages:
        if o.layer == "roads" and o.active(h):
            if o.element in link.index:
                closed.add(o.element)
            else:
                closed |= set(link.index[(link["from_node"] == o.element) | (link["to_node"] == o.element)])
    factors = {}
    for _, row in twin.coupling_of("signal").iterrows():
        if row["bus"] in dead:
            f = float(row.get("capacity_factor", 0.6) if pd.notna(row.get("capacity_factor", np.nan)) else 0.6)
            for lid in link.index[link["to_node"] == row["element"]]:
                factors[lid] = min(factors.get(lid, 1.0), f)
    return frozenset(closed), tuple(sorted(factors.items()))


def _traffic(twin: CoupledTwin, outages: Sequence[Outage], dead_by_hour: list[set[str]], T: int,
             assign_hours: Iterable[int] | None, rel_gap: float) -> pd.DataFrame:
    rows = []
    wanted = set(assign_hours or ())
    hourly = "hour" in twin.roads.od.columns and (twin.roads.od["hour"] >= 0).any()
    for h in range(T):
        closed, factors = _road_state(twin, outages, dead_by_hour[h], h)
        if not closed and not factors and h not in wanted:
            continue
        hour = h if hourly else None
        res = assign_traffic(twin.roads, method="bfw", rel_gap=rel_gap, max_iter=500, closed_links=closed,
                             capacity_factor=dict(factors) or None, hour=hour)
        rows.append({"hour": h, "tstt_veh_h": float(res.tstt) / 60.0,
                     "unserved_trips": float(res.unserved["trips"].sum()), "gap": float(res.gap),
                     "closed_links": len(closed), "dark_signal_links": len(factors)})
    return pd.DataFrame(rows).set_index("hour") if rows else pd.DataFrame(
        columns=["tstt_veh_h", "unserved_trips", "gap", "closed_links", "dark_signal_links"])


def run_cascade(twin: CoupledTwin, outages: Iterable[Outage], **kwargs: Any) -> CascadeResult:
    """Simulate the day without and with ``outages`` and report the service KPIs (class docstring)."""
    outages = list(outages)
    _check_outages(twin, outages)
    disrupted = simulate_coupled(twin, outages=outages, **kwargs)
    road_hours = list(disrupted.traffic.index)
    base = simulate_coupled(twin, outages=(), assign_hours=road_hours, **{k: v for k, v in kwargs.items()
                                                                          if k != "assign_hours"})
    e_short = (disrupted.energy["unserved_mw"] - base.energy["unserved_mw"]).clip(lower=0.0)
    w_short = (disrupted.water["unserved_m3h"] - base.water["unserved_m3h"]).clip(lower=0.0)
    w_people = (disrupted.water["people_without_water"] - base.water["people_without_water"]).clip(lower=0.0)
    p_people = (disrupted.energy["people_without_power"] - base.energy["people_without_power"]).clip(lower=0.0)
    extra = pd.Series(0.0, index=disrupted.energy.index)
    if len(disrupted.traffic):  # a trip that cannot be made at all counts UNSERVED_TRIP_H hours lost
        d, b = disrupted.traffic, base.traffic.reindex(disrupted.traffic.index)
        diff = (d["tstt_veh_h"] + UNSERVED_TRIP_H * d["unserved_trips"]) - (
            b["tstt_veh_h"] + UNSERVED_TRIP_H * b["unserved_trips"])
        extra.iloc[list(disrupted.traffic.index)] = diff.clip(lower=0.0).to_numpy()
    hourly = pd.DataFrame({"unserved_mw": e_short, "unserved_water_m3h": w_short, "people_without_water": w_people,
                           "people_without_power": p_people, "extra_vehicle_hours": extra})
    first = min((o.start_h for o in outages), default=0.0)
    start = hourly.index[min(int(first), len(hourly) - 1)]
    recover = {
        "energy": resilience.time_to_recover_h(e_short + p_people, start=start),
        "water": resilience.time_to_recover_h(w_short + w_people, start=start),
        "roads": resilience.time_to_recover_h(extra, start=start),
    }
    live = [v for v in recover.values()]
    kpis = {"unserved_energy_mwh": resilience.unserved_energy_mwh(e_short),
            "unserved_water_m3": resilience.unserved_volume_m3(w_short),
            "people_hours_without_water": resilience.people_hours(w_people),
            "peak_people_without_water": float(w_people.max()),
            "people_hours_without_power": resilience.people_hours(p_people),
            "peak_people_without_power": float(p_people.max()),
            "extra_vehicle_hours": float(extra.sum()),
            "restoration_time_h": max(live) if live else 0.0,
            "restoration_by_layer_h": recover}
    return CascadeResult(base=base, disrupted=disrupted, outages=outages, kpis=kpis, hourly=hourly)
