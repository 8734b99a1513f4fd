"""Applying a scenario's modifications to a twin: returns a new twin (the base is never changed) and the
outages to simulate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin.cascade import Outage, required_demand
from twin.coupled import CoupledTwin

from .schema import Scenario

__all__ = ["apply_scenario", "PV_TEMPERATURE_COEFF"]

PV_TEMPERATURE_COEFF = -0.004  # per °C of cell temperature, crystalline silicon [E]


def _buses_in(twin: CoupledTwin, districts: list[str]) -> pd.Index:
    info = twin.bus_info
    return info.index if not districts else info.index[info["district"].isin(districts)]


def _scale_energy(twin: CoupledTwin, factor: float, districts: list[str]) -> None:
    ld = twin.grid.load.copy()
    sel = ld["bus"].isin(_buses_in(twin, districts))
    ld.loc[sel, ["p_mw", "q_mvar"]] = ld.loc[sel, ["p_mw", "q_mvar"]].to_numpy() * factor
    twin.grid.load = ld


def _scale_water(twin: CoupledTwin, factor: float, districts: list[str]) -> None:
    w = twin.water
    dem = w.demand.copy()
    if districts:
        tag = w.junction["tag"].reindex(dem["junction"]).to_numpy()
        sel = np.isin(tag, districts)
    else:
        sel = np.ones(len(dem), bool)
    dem.loc[sel, "base_m3s"] = dem.loc[sel, "base_m3s"].to_numpy() * factor
    w.demand = dem


def _scale_roads(twin: CoupledTwin, factor: float, districts: list[str]) -> None:
    od = twin.roads.od.copy()
    sel = (od["origin"].isin(districts) | od["destination"].isin(districts)) if districts else np.ones(len(od), bool)
    od.loc[sel, "trips_veh_h"] = od.loc[sel, "trips_veh_h"].to_numpy() * factor
    twin.roads.od = od
    daily = twin.od_daily.copy()
    if districts:
        rows = daily.index.isin(districts)
        cols = daily.columns.isin(districts)
        mask = rows[:, None] | cols[None, :]
        daily = daily.where(~mask, daily * factor)
    else:
        daily = daily * factor
    twin.od_daily = daily


def apply_scenario(base: CoupledTwin, sc: Scenario) -> tuple[CoupledTwin, list[Outage]]:
    """A copy of ``base`` with the scenario's modifications applied, and the outages it schedules.

    ``scale_demand`` scales the layer's loads / water demands / trips (in the listed districts or all);
    ``scale_pv`` the PV availability;
    ``heatwave`` scales every electric load and water demand and raises the air temperature (PV derate
    −0.4 %/°C); ``drought`` rations supply to the raw-water allowance: every water demand is served at
    allowance ÷ normal daily production (``twin.meta['water_rationing']``); ``add_pv`` / ``add_battery`` /
    ``add_ev_hub`` add elements; ``ev_growth`` sets the EV share; ``outage`` and ``road_closure`` become
    :class:`~twin.cascade.Outage` entries."""
    tw = base.copy()
    outages: list[Outage] = []
    for k, m in enumerate(sc.modifications):
        if m.type == "scale_demand":
            {"energy": _scale_energy, "water": _scale_water, "roads": _scale_roads}[m.layer](tw, m.factor, m.districts)
        elif m.type == "scale_pv":
            s = tw.series.copy()
            for col in ("pv_rooftop_pu", "pv_plant_pu"):
                s[col] = (s[col] * m.factor).clip(upper=1.0)
            tw.series = s
        elif m.type == "heatwave":
            _scale_energy(tw, m.load_factor, [])
            _scale_water(tw, m.water_factor, [])
            s = tw.series.copy()
            s["air_temperature_c"] = s["air_temperature_c"] + m.temperature_rise_c
            derate = 1.0 + PV_TEMPERATURE_COEFF * m.temperature_rise_c
            for col in ("pv_rooftop_pu", "pv_plant_pu"):
                s[col] = s[col] * derate
            tw.series = s
        elif m.type == "drought":
            normal = float(required_demand(tw.water, np.arange(24) * 3600).to_numpy().sum() * 3600.0)
            factor = min(1.0, m.raw_water_m3_day / normal)
            tw.water.options.demand_multiplier *= factor
            tw.meta["water_rationing"] = tw.meta.get("water_rationing", 1.0) * factor
            tw.meta["raw_water_m3_day"] = m.raw_water_m3_day
        elif m.type == "add_pv":
            gid = m.id or f"PV_{'ROOF' if m.rooftop else 'PLANT'}_{m.bus}_{k}"
            tw.grid.add("generator", index=gid, bus=m.bus, p_max_mw=m.mw, p_min_mw=0.0, p_mw=0.0, kind="pv")
            tw.grid.add("generator_cost", pd.DataFrame({"model": [2], "coefficients": [(0.0, 0.0)]}, index=[gid]))
        elif m.type == "add_battery":
            sid = m.id or f"BESS_{m.bus}_{k}"
            tw.grid.add("storage", index=sid, bus=m.bus, p_max_mw=m.mw, e_max_mwh=m.mwh, soc_init=0.5,
                        eta_charge=0.95, eta_discharge=0.95)
        elif m.type == "add_ev_hub":
            row = pd.DataFrame({"kind": ["ev_hub"], "element": [m.id], "bus": [m.bus], "kwh_per_m3": [math.nan],
                                "p_kw": [math.nan], "zones": [";".join(m.districts)], "capacity_factor": [math.nan],
                                "note": ["added by the scenario"]}, index=[f"ev_{m.id}"])
            tw.coupling = pd.concat([tw.coupling, row])
        elif m.type == "ev_growth":
            ev = dict(tw.meta.get("ev", {}))
            ev["share"] = m.share
            if m.kwh_per_session is not None:
                ev["kwh_per_session"] = m.kwh_per_session
            tw.meta["ev"] = ev
        elif m.type == "outage":
            outages.append(Outage(m.layer, m.element, m.start_h, math.inf if m.end_h is None else m.end_h))
        elif m.type == "road_closure":
            links = list(m.links)
            if m.corridor:
                rl = tw.road_links
                links += [lk for lk in rl.index[rl["corridor"].astype(str) == m.corridor] if lk not in links]
            outages += [Outage("roads", lk, m.start_h, math.inf if m.end_h is None else m.end_h) for lk in links]
    tw.validate()
    return tw, outages
