"""A small joint case built in code: a 22 kV grid with a grid import, PV on the town bus, the water works
(treatment plant → clear-water reservoir → lift station → service reservoir) and an EV hub."""

from __future__ import annotations

import numpy as np
import pandas as pd

from solvers.day_ahead import EVCharging, WaterWorks
from twin.energy import Grid

HOURS = 24
SNAPS = pd.date_range("2026-07-15", periods=HOURS, freq="h")
PRICE = np.where((np.arange(HOURS) >= 18) & (np.arange(HOURS) < 22), 140.0,
                 np.where((np.arange(HOURS) >= 7) & (np.arange(HOURS) < 18), 80.0, 50.0))
SUN = np.clip(np.sin((np.arange(HOURS) - 6) / 13 * np.pi), 0, None)  # 6 h – 19 h
BASE_LOAD = 6.0 + 2.0 * np.sin((np.arange(HOURS) - 9) / 24 * 2 * np.pi)
WATER_DEMAND = 1200.0 * (1.0 + 0.4 * np.sin((np.arange(HOURS) - 10) / 24 * 2 * np.pi))  # m³/h


def grid(pv_mw: float = 12.0) -> Grid:
    g = Grid(name="joint")
    g.add("bus", index=["hv", "town", "works"], type=["ref", "pq", "pq"], vn_kv=22.0)
    g.add("line", index=["l1", "l2"], bus0=["hv", "hv"], bus1=["town", "works"], r_pu=0.01, x_pu=0.05)
    g.add("load", index="town", bus="town", p_mw=1.0)
    g.add("generator", index=["import", "pv"], bus=["hv", "town"], p_max_mw=[60.0, pv_mw], kind=["grid", "pv"])
    g.set_series("load.p_mw", pd.DataFrame({"town": BASE_LOAD}, index=SNAPS))
    g.set_series("generator.marginal_cost", pd.DataFrame({"import": PRICE, "pv": 0.0}, index=SNAPS))
    g.set_series("generator.p_max_pu", pd.DataFrame({"pv": SUN}, index=SNAPS))
    return g


def water(**kw) -> WaterWorks:
    storages = pd.DataFrame({"v_min_m3": [500.0, 2000.0], "v_max_m3": [6000.0, 20000.0],
                             "v_init_m3": [3000.0, 10000.0]}, index=pd.Index(["clear_water", "service"]))
    transfers = pd.DataFrame({"from": ["", "clear_water"], "to": ["clear_water", "service"], "bus": ["works", "works"],
                              "q_max_m3h": [2340.0, 3000.0], "kwh_per_m3": [0.25, 0.55], "units": [1, 4]},
                             index=pd.Index(["plant", "lift"]))
    demand = pd.DataFrame({"service": WATER_DEMAND}, index=SNAPS)
    return WaterWorks(storages=storages, transfers=transfers, demand_m3h=demand, **kw)


def ev(**kw) -> EVCharging:
    hubs = pd.DataFrame({"bus": ["town"], "p_max_mw": [1.5]}, index=pd.Index(["centre"]))
    sessions = pd.DataFrame({"hub": "centre", "arrival_h": [8.0, 9.0, 18.0], "departure_h": [17.0, 13.0, 24.0],
                             "energy_mwh": [3.0, 1.2, 2.5], "p_max_mw": [1.0, 0.6, 1.0]},
                            index=pd.Index(["work_am", "shop", "home_pm"]))
    return EVCharging(hubs=hubs, sessions=sessions, **kw)
