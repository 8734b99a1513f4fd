"""``run_scenario``: the one path from a scenario to its results, for Python, the CLI, the batch and the API.

Steps (each an analysis the scenario may leave out):

1. **dispatch** — the joint day-ahead schedule (:func:`solvers.solve_day_ahead`): the grid's generation,
   imports at the time-of-use price, PV, batteries, with the water works (plant and pumping stations,
   reservoir volumes) and EV charging (sessions from the trips ending near each hub) as flexible loads;
2. **pump_schedule** — the hydraulic pump schedule at the tariff (:func:`solvers.solve_pump_schedule`,
   closed loop with the hydraulic solver);
3. **power_flow** + **hydraulics** + **traffic** — the coupled day (:func:`twin.cascade.simulate_coupled`):
   hourly AC power flows with the scheduled pumping, EV charging and battery output, the extended-period
   hydraulic simulation with the pump schedule, the peak hours assigned;
4. **cascade** — with outages, the same day without them, and the difference (:func:`twin.cascade.run_cascade`);
5. KPIs, tables (Parquet), plots and a self-contained HTML report, written into a run folder named by
   the scenario's content hash, atomically (a temporary folder renamed at the end): an existing run is
   reused, so reruns are idempotent.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin import load_berkane
from twin.cascade import (
    CoupledResult,
    load_multipliers,
    pv_availability,
    required_demand,
    run_cascade,
    simulate_coupled,
)
from twin.coupled import CoupledTwin
from twin.energy import Grid
from twin.transport import assign_traffic
from twin.water import simulate_hydraulics

from .apply import apply_scenario
from .loading import ScenarioError, check_against_twin, parse_scenario, scenario_hash
from .reuse import ReuseCache
from .schema import KPI_NAMES, Scenario

__all__ = ["run_scenario", "RunResult", "dispatch_inputs", "water_works_of"]

Progress = Callable[[str, float], None]


@dataclass
class RunResult:
    """A finished run: its folder, the scenario, hash, KPIs, timings (s) and messages."""

    path: Path
    scenario: Scenario
    hash: str
    kpis: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    reused: bool = False


# -- inputs of the day-ahead schedule ---------------------------------------------------------------------------

def water_works_of(tw: CoupledTwin, hours: int, cache: ReuseCache | None = None):
    """The water works as flexible loads (:class:`solvers.WaterWorks`) from the twin: storages and pumping
    stations as described by ``twin.meta['water_works']``, volumes from the tanks' geometry, each station's
    specific energy (kWh/m³, treatment included for the plant's lift) and capacity measured on a normal
    hydraulic day, each storage's demand the required demand of the districts it serves.  With a ``cache``,
    computed once per content of the water network, the coupling and ``hours``."""
    if cache is not None:
        key = (tw.water, tw.meta["water_works"], tw.coupling_of("plant"), list(tw.snapshots[:hours]), hours)
        return copy.copy(cache.result("water_works", key, lambda: water_works_of(tw, hours)))
    from solvers import WaterWorks

    ww = tw.meta["water_works"]
    w = tw.water
    res = simulate_hydraulics(w, duration_s=24 * 3600)
    plant_kwh = float(tw.coupling_of("plant")["kwh_per_m3"].fillna(0).max() or 0.0)
    rows = []
    for name, spec in ww["transfers"].items():
        pumps = spec["pumps"]
        flow = res.link_flow[pumps].clip(lower=0)
        kwh = float(res.pump_energy.loc[pumps, "kwh"].sum())
        step = np.diff(np.append(res.link_flow.index.to_numpy(), 24 * 3600)).astype(float)
        m3 = float((flow.sum(axis=1).to_numpy() * step).sum())
        per_pump = float(flow.max().max())
        rows.append({"id": name, "from": spec["from"], "to": spec["to"], "bus": spec["bus"],
                     "q_max_m3h": per_pump * len(pumps) * 3600.0,
                     "kwh_per_m3": kwh / m3 + (plant_kwh if spec["from"] == "" else 0.0)})
    transfers = pd.DataFrame(rows).set_index("id")
    tanks = w.tank
    st_rows = []
    for name, members in ww["storages"].items():
        area = np.pi * tanks.loc[members, "diameter_m"] ** 2 / 4.0
        st_rows.append({"id": name, "v_min_m3": float((area * tanks.loc[members, "min_level_m"]).sum()),
                        "v_max_m3": float((area * tanks.loc[members, "max_level_m"]).sum()),
                        "v_init_m3": float((area * tanks.loc[members, "init_level_m"]).sum())})
    storages = pd.DataFrame(st_rows).set_index("id")
    tag = tw.water.junction["tag"]
    demand_all = required_demand(w, np.arange(hours) * 3600) * 3600.0
    demand = pd.DataFrame(index=tw.snapshots[:hours])
    for name, districts in ww["zones"].items():
        cols = tag.index[tag.isin(districts)]
        demand[name] = demand_all[cols].sum(axis=1).to_numpy()
    return WaterWorks(storages=storages, transfers=transfers, demand_m3h=demand, shortage_cost=50.0)


def _direct_treatment_mw(tw: CoupledTwin, hours: int) -> np.ndarray:
    """Treatment power (MW) of the water that leaves the plant without the scheduled stations (Saïdia's
    branch, the bulk offtake): the required demand outside the storages' zones × the plant's kWh/m³."""
    zones = {d for ds in tw.meta["water_works"]["zones"].values() for d in ds}
    tag = tw.water.junction["tag"]
    cols = tag.index[~tag.isin(zones)]
    m3h = required_demand(tw.water, np.arange(hours) * 3600)[cols].sum(axis=1).to_numpy() * 3600.0
    plant_kwh = float(tw.coupling_of("plant")["kwh_per_m3"].fillna(0).max() or 0.0)
    return m3h * plant_kwh / 1000.0


def _ev_charging_of(tw: CoupledTwin, hours: int):
    from solvers import EVCharging, ev_sessions_from_arrivals

    ev = tw.meta.get("ev", {})
    hubs_c = tw.coupling_of("ev_hub")
    hubs = pd.DataFrame({"bus": hubs_c["bus"].to_numpy(), "p_max_mw": 5.0}, index=hubs_c["element"].to_numpy())
    hub_of_zone = {z: row["element"] for _, row in hubs_c.iterrows() for z in str(row["zones"]).split(";") if z}
    arrivals = pd.DataFrame(np.outer(tw.traffic_profile.to_numpy()[:hours], tw.od_daily.sum(axis=0).to_numpy()),
                            index=np.arange(hours, dtype=float), columns=tw.od_daily.columns)
    ses = ev_sessions_from_arrivals(arrivals, hub_of_zone, ev_share=float(ev.get("share", 0.01)),
                                    kwh_per_vehicle=float(ev.get("kwh_per_session", 10.0)), dwell_h=3.0,
                                    charger_kw=float(ev.get("charger_kw", 7.0)),
                                    plug_in_share=float(ev.get("plug_in_share", 0.3)))
    ses["departure_h"] = ses["departure_h"].clip(upper=float(hours))
    ses = ses[ses["departure_h"] - ses["arrival_h"] >= 1.0]
    return EVCharging(hubs=hubs, sessions=ses, unserved_cost=2000.0)


def dispatch_inputs(tw: CoupledTwin, hours: int, cache: ReuseCache | None = None) -> tuple[Grid, Any, Any]:
    """The grid with its time series for the day-ahead schedule (loads by class profile without the
    pumping and treatment loads the water works schedule; imports at the time-of-use price in MAD/MWh;
    PV availability), the water works and the EV charging."""
    g = tw.grid.copy()
    snaps = pd.DatetimeIndex(tw.snapshots[:hours])
    ld = g.load[g.load["in_service"]]
    mult = load_multipliers(tw, hours)
    loads = pd.DataFrame((ld["p_mw"].to_numpy()[:, None] * mult).T, index=snaps, columns=ld.index)
    plant_bus = tw.coupling_of("plant")["bus"]
    if len(plant_bus):
        g.add("load", index="PLANT_DIRECT", bus=plant_bus.iloc[0], p_mw=0.0, q_mvar=0.0, name="treatment, direct")
        loads["PLANT_DIRECT"] = _direct_treatment_mw(tw, hours)
    g.set_series("load.p_mw", loads)
    gen = g.generator
    price = tw.series["price_mad_kwh"].to_numpy()[:hours] * 1000.0
    cost = {gid: (price if str(row.get("kind", "")) == "grid" else np.zeros(hours)) for gid, row in gen.iterrows()}
    g.set_series("generator.marginal_cost", pd.DataFrame(cost, index=snaps))
    avail = pv_availability(tw, hours)
    if len(avail.columns):
        g.set_series("generator.p_max_pu", avail.set_axis(snaps))
    return g, water_works_of(tw, hours, cache), _ev_charging_of(tw, hours)


# -- the run ----------------------------------------------------------------------------------------------------

def _kpis(sc: Scenario, tw: CoupledTwin, day: CoupledResult, hours: int, cascade, pump, links_peak: pd.DataFrame
          ) -> dict[str, Any]:
    e, w = day.energy, day.water
    price = tw.series["price_mad_kwh"].to_numpy()[:hours]
    imp = (e["generation_mw"] - e["pv_mw"]).to_numpy()
    avail = pv_availability(tw, hours)
    pv_avail = (avail * tw.grid.generator.loc[avail.columns, "p_max_mw"].to_numpy()).sum(axis=1).to_numpy()
    rationing = float(tw.meta.get("water_rationing", 1.0))
    pressures = day.district_pressure
    k = {
        "energy_cost_mad": float((np.clip(imp, 0, None) * price * 1000.0).sum()),
        "import_mwh": float(imp.sum()),
        "pv_mwh": float(e["pv_mw"].sum()),
        "pv_curtailed_mwh": float(np.clip(pv_avail - e["pv_mw"].to_numpy(), 0, None).sum()),
        "emissions_t": float(np.clip(imp, 0, None).sum() * sc.options.emission_t_per_mwh),
        "losses_mwh": float(e["losses_mw"].sum()),
        "pumping_mwh": float(e["pumping_mw"].sum()),
        "pumping_cost_mad": float((e["pumping_mw"].to_numpy() * price * 1000.0).sum()),
        "ev_charged_mwh": float(e["ev_mw"].sum()),
        "unserved_energy_mwh": float(e["unserved_mw"].sum()),
        "min_voltage_pu": float(e["vmin_pu"].min()),
        "max_voltage_pu": float(e["vmax_pu"].max()),
        "water_required_m3": float(w["required_m3h"].sum() / rationing),
        "water_delivered_m3": float(w["delivered_m3h"].sum()),
        "water_shortfall_m3": max(0.0, float(w["required_m3h"].sum() / rationing - w["delivered_m3h"].sum())),
        "people_hours_without_water": float(w["people_without_water"].sum()),
        "peak_people_without_water": float(w["people_without_water"].max()),
        "people_hours_without_power": float(e["people_without_power"].sum()),
        "peak_people_without_power": float(e["people_without_power"].max()),
        "min_service_pressure_m": float(pressures.min().min()) if pressures is not None and len(pressures) else None,
        "peak_hour_vehicle_hours": float(day.traffic["tstt_veh_h"].max()) if len(day.traffic) else None,
        "max_v_c": float(links_peak["v_c"].max()) if len(links_peak) else None,
        "unserved_trips": float(day.traffic["unserved_trips"].sum()) if len(day.traffic) else None,
        "extra_vehicle_hours": float(cascade.kpis["extra_vehicle_hours"]) if cascade is not None else 0.0,
        "restoration_time_h": (None if cascade is None or math.isinf(cascade.kpis["restoration_time_h"])
                               else float(cascade.kpis["restoration_time_h"])),
    }
    if cascade is not None:  # the outage's own effect: the difference with the normal day
        k["unserved_energy_mwh"] = float(cascade.kpis["unserved_energy_mwh"])
    if pump is not None:
        k["pumping_cost_mad"] = float(pump.cost)
    wanted = sc.kpis or list(KPI_NAMES)
    return {name: k.get(name) for name in wanted}


def _links_peak(tw: CoupledTwin, outages, hour: int, rel_gap: float) -> pd.DataFrame:
    closed = [o.element for o in outages if o.layer == "roads" and o.active(hour) and o.element in tw.roads.link.index]
    res = assign_traffic(tw.roads, method="bfw", rel_gap=rel_gap, max_iter=500, closed_links=closed, hour=hour)
    lk = res.link
    node = tw.roads.node
    cap = tw.roads.link["capacity_veh_h"]
    out = pd.DataFrame({"from_lon": node.loc[lk["from_node"], "lon"].to_numpy(),
                        "from_lat": node.loc[lk["from_node"], "lat"].to_numpy(),
                        "to_lon": node.loc[lk["to_node"], "lon"].to_numpy(),
                        "to_lat": node.loc[lk["to_node"], "lat"].to_numpy(),
                        "flow_veh_h": lk["flow"].to_numpy(), "capacity_veh_h": cap.reindex(lk.index).to_numpy(),
                        "v_c": lk["voc"].to_numpy()}, index=lk.index)
    out["corridor"] = tw.road_links["corridor"].reindex(out.index).fillna("").astype(str).to_numpy() \
        if "corridor" in tw.road_links else ""
    return out


def run_scenario(scenario: Scenario | str | os.PathLike, out_dir: str | os.PathLike = "runs", *,
                 hours: int | None = None, progress: Progress | None = None, overwrite: bool = False,
                 base: CoupledTwin | None = None, report: bool = True,
                 cache: ReuseCache | None = None) -> RunResult:
    """Run a scenario (a :class:`Scenario` or the path of its YAML file) end to end and write its run folder
    ``out_dir/<name>-<hash>``; return its KPIs.  ``hours`` shortens the day (tests); ``progress(step,
    fraction)`` is called as the steps go; an existing complete run folder is reused unless ``overwrite``.
    ``cache``: what earlier scenarios of this process computed and this one can reuse
    (:class:`~scenarios.reuse.ReuseCache`: base twins, pump schedules, day-ahead models re-solved in place);
    the results are those of a run without it."""
    t_start = time.perf_counter()
    say = progress or (lambda _step, _frac: None)
    text, source = None, "<scenario>"
    if isinstance(scenario, Scenario):
        sc = scenario
    else:
        source = str(scenario)
        p = Path(scenario)
        if not p.exists():
            raise ScenarioError(f"{p}: no such scenario file")
        text = p.read_text(encoding="utf-8")
        sc = parse_scenario(text, source)
    if hours is not None:
        sc = sc.model_copy(update={"hours": int(hours), "options": sc.options.model_copy(update={
            "peak_hours": [h for h in sc.options.peak_hours if h < hours] or [hours - 1]})})
    say("load twin", 0.02)
    twin = base if base is not None else cache.base_twin(sc.season) if cache is not None else load_berkane(sc.season)
    check_against_twin(sc, twin, source, text)
    digest = scenario_hash(sc, twin.meta.get("manifest"))
    out = Path(out_dir)
    final = out / f"{sc.name}-{digest}"
    if final.exists() and (final / "kpis.json").exists() and not overwrite:
        doc = json.loads((final / "kpis.json").read_text())
        return RunResult(path=final, scenario=sc, hash=digest, kpis=doc["kpis"], timings=doc.get("timings", {}),
                         messages=doc.get("messages", []), reused=True)
    tw, outages = apply_scenario(twin, sc)
    H = sc.hours
    timings: dict[str, float] = {}
    messages: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    ev_mw = storage_mw = None
    if "dispatch" in sc.analyses:
        say("day-ahead schedule", 0.1)
        t0 = time.perf_counter()
        from solvers import DispatchOptions, solve_day_ahead

        g, works, ev = dispatch_inputs(tw, H, cache)
        opts = DispatchOptions(network="angle", cyclic_storage=False, end_soc_at_least_start=True)
        sched = cache.day_ahead(g, works, ev, opts) if cache is not None else solve_day_ahead(g, works, ev, opts)
        timings["dispatch_s"] = time.perf_counter() - t0
        idx = tw.snapshots[:H]
        ev_mw = sched.ev_charging.reindex(columns=tw.coupling_of("ev_hub")["element"]).fillna(0.0)
        ev_mw.index = idx
        sol = sched.dispatch
        storage_mw = sol.storage_discharge - sol.storage_charge
        storage_mw.index = idx
        tables["generation"] = sol.generation.set_axis(idx)
        tables["generator_kind"] = tw.grid.generator[["kind"]].astype(str)
        tables["storage_soc"] = sol.state_of_charge.set_axis(idx)
        tables["storage_power"] = storage_mw
        tables["water_plan_volume"] = sched.water_volume.set_axis(idx)
        tables["ev_charging"] = ev_mw
        messages.append(f"day-ahead objective {sched.objective:,.0f} (MAD at the import price)")
    pump_status, pump = None, None
    if "pump_schedule" in sc.analyses:
        say("pump schedule", 0.3)
        t0 = time.perf_counter()
        from solvers import PumpScheduleError, PumpScheduleOptions, solve_pump_schedule

        try:
            popts = PumpScheduleOptions(tariff=tw.series["price_mad_kwh"].to_numpy()[:H], horizon_s=H * 3600,
                                        iterations=sc.options.pump_schedule_rounds)
            pump = (cache.result("pump_schedule", (tw.water, popts), lambda: solve_pump_schedule(tw.water, popts),
                                 errors=(PumpScheduleError,))
                    if cache is not None else solve_pump_schedule(tw.water, popts))
            pump_status = pump.status
            tables["pump_schedule"] = pump.status.set_axis(tw.snapshots[:H])
            tables["tank_bounds"] = pump.tank_bounds[["min_level_m", "max_level_m"]]
            messages.append(f"pump schedule: {pump.cost:,.0f} MAD vs {pump.baseline_cost:,.0f} with the network's own "
                            f"controls; planned-simulated level gap {pump.max_level_gap_m:.2f} m")
        except PumpScheduleError as exc:
            messages.append(f"pump schedule not used (the network's own controls run): {exc}")
        timings["pump_schedule_s"] = time.perf_counter() - t0
    say("coupled simulation", 0.55)
    t0 = time.perf_counter()
    kw = dict(hours=H, pump_schedule=pump_status, ev_charging_mw=ev_mw, storage_mw=storage_mw,
              rel_gap=sc.options.rel_gap)
    cascade = None
    if outages and "cascade" in sc.analyses:
        cascade = run_cascade(tw, outages, **kw)
        day = cascade.disrupted
        tables["cascade_hourly"] = cascade.hourly
        tables["comparison"] = _comparison(cascade)
    else:
        day = simulate_coupled(tw, outages=outages, assign_hours=sc.options.peak_hours if "traffic" in sc.analyses
                               else (), **kw)
    timings["coupled_s"] = time.perf_counter() - t0
    messages += day.messages[:20]
    say("traffic", 0.8)
    t0 = time.perf_counter()
    links_peak = pd.DataFrame()
    if "traffic" in sc.analyses:
        peak = max(sc.options.peak_hours, key=lambda h: float(tw.traffic_profile.iloc[h]))
        links_peak = _links_peak(tw, outages, peak, sc.options.rel_gap)
        tables["links_peak"] = links_peak
    timings["traffic_s"] = time.perf_counter() - t0
    tables.update({"energy_hourly": day.energy, "water_hourly": day.water, "tank_levels": day.tank_level,
                   "district_pressure": day.district_pressure, "district_water": day.district_water,
                   "traffic_hourly": day.traffic})
    if "tank_bounds" not in tables:
        tables["tank_bounds"] = tw.water.tank[["min_level_m", "max_level_m"]]
    kpis = _kpis(sc, tw, day, H, cascade, pump, links_peak)
    timings["total_s"] = time.perf_counter() - t_start
    say("write", 0.9)
    _write(final, sc, digest, kpis, timings, messages, tables, text, report)
    say("done", 1.0)
    return RunResult(path=final, scenario=sc, hash=digest, kpis=kpis, timings=timings, messages=messages)


def _comparison(cascade) -> pd.DataFrame:
    b, d = cascade.base, cascade.disrupted
    rows = {
        "unserved_energy_mwh": (b.energy["unserved_mw"].sum(), d.energy["unserved_mw"].sum()),
        "water_delivered_m3": (b.water["delivered_m3h"].sum(), d.water["delivered_m3h"].sum()),
        "people_hours_without_water": (b.water["people_without_water"].sum(), d.water["people_without_water"].sum()),
        "people_hours_without_power": (b.energy["people_without_power"].sum(), d.energy["people_without_power"].sum()),
    }
    out = pd.DataFrame(rows, index=["base", "scenario"]).T.astype(float)
    out["change"] = out["scenario"] - out["base"]
    return out


def _write(final: Path, sc: Scenario, digest: str, kpis: dict, timings: dict, messages: list[str],
           tables: dict[str, pd.DataFrame], text: str | None, report: bool) -> None:
    """Write the run folder into a temporary sibling, then rename it into place (never half-written)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        (tmp / "tables").mkdir()
        for name, df in tables.items():
            frame = df.copy()
            frame.columns = [str(c) for c in frame.columns]
            frame.to_parquet(tmp / "tables" / f"{name}.parquet")
        doc = {"scenario": sc.name, "hash": digest, "season": sc.season, "description": sc.description,
               "hours": sc.hours, "kpis": {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                           for k, v in kpis.items()},
               "timings": timings, "messages": messages}
        (tmp / "kpis.json").write_text(json.dumps(doc, indent=1))
        (tmp / "scenario.json").write_text(json.dumps(sc.model_dump(mode="json"), indent=1, sort_keys=True))
        if text is not None:
            (tmp / "scenario.yaml").write_text(text)
        if report:
            from .report import write_report

            write_report(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
