#!/usr/bin/env python
"""Regenerate the multi-period DC dispatch test case ``case118_24h`` and its PyPSA reference.

Usage (from anywhere)::

    python tests/data/dispatch/make_case118_24h.py

The script

1. reads ``tests/data/matpower/case118.m`` with :func:`twin.energy.read_matpower`,
2. builds the inputs of the 24 h dispatch problem deterministically (closed-form
   profiles, no random numbers) and writes them as CSV files into
   ``case118_24h/`` (overwriting the old ones),
3. reads those CSV files back and builds a PyPSA network from them only (so the
   CSV files are the single source of truth),
4. checks PyPSA's per-unit convention: ``n.lpf()`` against
   ``twin.energy.power_flow(grid, "dc")`` on the same fixed injections,
5. solves ``n.optimize(solver_name="highs")``, checks the solution (balance,
   limits, storage equation, DC flows recomputed with twin, objective), solves a
   second time to check determinism, and probes for alternative optima with
   HiGHS' interior point method,
6. writes the reference results into ``case118_24h/reference/``.

The problem is specified in ``case118_24h/README.md``; keep that file in step
with the constants below.

Requirements: numpy, pandas, pypsa (with linopy and highspy), and this
repository's ``twin`` package.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CASE_FILE = ROOT / "tests" / "data" / "matpower" / "case118.m"
OUT = HERE / "case118_24h"
REF = OUT / "reference"

try:
    import twin  # noqa: F401
except ImportError:  # run from a checkout without an installed package
    sys.path.insert(0, str(ROOT))
from twin.energy import power_flow, read_matpower  # noqa: E402

# ------------------------------------------------------------------------------ problem constants
SNAPSHOTS = pd.date_range("2026-06-21 00:00", periods=24, freq="h", name="snapshot")
HOURS = np.arange(24, dtype=float)  # hour of day of each snapshot
VOLL = 10000.0  # value of lost load, $/MWh
S_MAX_MW = 125.0  # thermal limit given to every branch (case118 has rate_a = 0 everywhere)
DECIMALS = 6  # input series are rounded to this many decimals (exactly representable in the CSVs)

# photovoltaic plants: bus -> p_nom (MW); id "pv_<bus>"
PV = {"3": 150.0, "20": 200.0, "21": 100.0, "33": 80.0, "41": 120.0,
      "53": 60.0, "75": 180.0, "83": 90.0, "95": 140.0, "116": 100.0}
# wind farms: bus -> (p_nom MW, a, b, phi1 h, c, phi2 h); id "wind_<bus>"
# p_max_pu(h) = clip(a + b cos(2 pi (h - phi1) / 24) + c sin(2 pi (h - phi2) / 7), 0, 1)
WIND = {"7": (200.0, 0.55, 0.35, 2.0, 0.15, 0.0),
        "22": (150.0, 0.45, 0.30, 5.0, 0.20, 2.0),
        "44": (250.0, 0.60, 0.45, 23.0, 0.15, 4.0),
        "94": (120.0, 0.40, 0.25, 8.0, 0.20, 1.0),
        "108": (180.0, 0.50, 0.40, 20.0, 0.10, 3.0)}
# batteries: bus -> p_max (MW); id "bat_<bus>"
BATTERIES = {"6": 100.0, "20": 50.0, "34": 120.0, "116": 50.0}
BAT_HOURS = 4.0
ETA_CHARGE = 0.95
ETA_DISCHARGE = 0.95
STANDING_LOSS = 0.001  # per hour

FLOAT_IN = "%.12g"  # inputs: rounded to DECIMALS first, so this prints them exactly
REF_DECIMALS = 9  # reference results are rounded to 1e-9 (MW, MWh, $/MWh)
FLOAT_REF = "%.15g"


# ------------------------------------------------------------------------------ profiles
def load_factor(h: np.ndarray) -> np.ndarray:
    """Daily load profile: 0.6 at the 04:00 minimum, 1.0 at the 19:00 evening peak."""
    raw = 0.5 * (1.0 - np.cos(2.0 * np.pi * (h - 4.0) / 24.0)) + 0.6 * np.exp(-(((h - 19.0) / 2.5) ** 2))
    f = 0.6 + 0.4 * (raw - raw.min()) / (raw.max() - raw.min())
    return np.round(f, DECIMALS)


def pv_shape(h: np.ndarray) -> np.ndarray:
    """Clear-sky bell: sin(pi (h - 6) / 12) ** 1.5 between 06:00 and 18:00, exactly 0 otherwise."""
    day = (h > 6.0) & (h < 18.0)
    s = np.where(day, np.sin(np.pi * (h - 6.0) / 12.0), 0.0)
    return np.round(np.where(day, s ** 1.5, 0.0), DECIMALS)


def wind_shape(h: np.ndarray, a: float, b: float, phi1: float, c: float, phi2: float) -> np.ndarray:
    raw = a + b * np.cos(2.0 * np.pi * (h - phi1) / 24.0) + c * np.sin(2.0 * np.pi * (h - phi2) / 7.0)
    return np.round(np.clip(raw, 0.0, 1.0), DECIMALS)


# ------------------------------------------------------------------------------ inputs
def build_inputs(grid) -> dict[str, pd.DataFrame]:
    """All input tables of the case, as written to CSV."""
    ts = SNAPSHOTS.strftime("%Y-%m-%d %H:%M")
    f = load_factor(HOURS)

    bus = pd.DataFrame({"id": grid.bus.index, "v_nom_kv_case": grid.bus["vn_kv"].values,
                        "is_reference": grid.bus["type"].eq("ref").values})

    parts = []
    for kind, t in (("line", grid.line), ("transformer", grid.transformer)):
        tap = t["tap_ratio"].where(t["tap_ratio"] != 0.0, 1.0) if kind == "transformer" else pd.Series(1.0, t.index)
        if kind == "transformer" and (t["shift_deg"] != 0.0).any():
            raise SystemExit("case118 has a phase shifter; the case definition assumes none")
        parts.append(pd.DataFrame({"id": t.index, "kind": kind, "bus0": t["bus0"].values, "bus1": t["bus1"].values,
                                   "x_pu": t["x_pu"].values, "tap_ratio": tap.values,
                                   "x_eff_pu": (t["x_pu"] * tap).values, "s_max_mw": S_MAX_MW,
                                   "rate_a_mva_case": t["rate_a_mva"].values,
                                   "in_service": t["in_service"].values}))
    branch = pd.concat(parts, ignore_index=True)
    branch["_n"] = branch["id"].astype(int)
    branch = branch.sort_values("_n").drop(columns="_n").reset_index(drop=True)
    if not branch["in_service"].all():
        raise SystemExit("case118 has an out-of-service branch; the case definition assumes none")
    branch = branch.drop(columns="in_service")

    gen = grid.generator[grid.generator["in_service"]]
    cost = grid.generator_cost.loc[gen.index]
    if not (cost["model"] == 2).all():
        raise SystemExit("expected polynomial gencost (model 2) for every generator")
    coef = cost["coefficients"]
    thermal = pd.DataFrame({"id": gen.index, "bus": gen["bus"].values, "p_max_mw": gen["p_max_mw"].values,
                            "p_min_mw": 0.0,
                            "marginal_cost": [c[-2] if len(c) >= 2 else 0.0 for c in coef],
                            "c2_ignored": [c[-3] if len(c) >= 3 else 0.0 for c in coef],
                            "c0_ignored": [c[-1] if len(c) >= 1 else 0.0 for c in coef],
                            "p_min_mw_case": gen["p_min_mw"].values})

    load = grid.load[grid.load["in_service"]]
    load_p = pd.DataFrame(np.round(np.outer(f, load["p_mw"].values), DECIMALS), index=ts, columns=load.index)
    load_p.index.name = "snapshot"
    loads = pd.DataFrame({"id": load.index, "bus": load["bus"].values, "p_base_mw": load["p_mw"].values})
    shed = pd.DataFrame({"id": "shed_" + load.index, "load": load.index, "bus": load["bus"].values,
                         "marginal_cost": VOLL})

    ren_rows, ren_pu = [], {}
    for b, p in PV.items():
        ren_rows.append({"id": f"pv_{b}", "bus": b, "kind": "pv", "p_nom_mw": p})
        ren_pu[f"pv_{b}"] = pv_shape(HOURS)
    for b, (p, *par) in WIND.items():
        ren_rows.append({"id": f"wind_{b}", "bus": b, "kind": "wind", "p_nom_mw": p})
        ren_pu[f"wind_{b}"] = wind_shape(HOURS, *par)
    renewables = pd.DataFrame(ren_rows).assign(marginal_cost=0.0)
    ren_p_max_pu = pd.DataFrame(ren_pu, index=ts)
    ren_p_max_pu.index.name = "snapshot"

    storage = pd.DataFrame([{"id": f"bat_{b}", "bus": b, "p_max_mw": p, "e_max_mwh": BAT_HOURS * p,
                             "eta_charge": ETA_CHARGE, "eta_discharge": ETA_DISCHARGE,
                             "standing_loss": STANDING_LOSS, "cyclic": True, "marginal_cost": 0.0}
                            for b, p in BATTERIES.items()])

    profiles = pd.DataFrame({"load_factor": f, "pv_p_max_pu": pv_shape(HOURS), "weight_h": 1.0}, index=ts)
    profiles.index.name = "snapshot"

    for df in (renewables, storage):
        missing = set(df["bus"]) - set(grid.bus.index)
        if missing:
            raise SystemExit(f"unknown buses {sorted(missing)}")
    return {"buses": bus, "branches": branch, "thermal": thermal, "loads": loads, "load_p_mw": load_p,
            "load_shedding": shed, "renewables": renewables, "renewable_p_max_pu": ren_p_max_pu,
            "storage": storage, "profiles": profiles}


TIME_TABLES = {"load_p_mw", "renewable_p_max_pu", "profiles"}


def write_inputs(inp: dict[str, pd.DataFrame]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, df in inp.items():
        df.to_csv(OUT / f"{name}.csv", index=name in TIME_TABLES, float_format=FLOAT_IN, lineterminator="\n")


def read_inputs() -> dict[str, pd.DataFrame]:
    """Read the case back from its CSV files (ids as strings, snapshots as timestamps)."""
    out = {}
    for name in ("buses", "branches", "thermal", "loads", "load_p_mw", "load_shedding", "renewables",
                 "renewable_p_max_pu", "storage", "profiles"):
        if name in TIME_TABLES:
            df = pd.read_csv(OUT / f"{name}.csv", index_col="snapshot", parse_dates=["snapshot"])
            df.columns = df.columns.astype(str)
        else:
            df = pd.read_csv(OUT / f"{name}.csv", dtype={"id": str, "bus": str, "bus0": str, "bus1": str,
                                                         "load": str}).set_index("id")
        out[name] = df
    return out


# ------------------------------------------------------------------------------ PyPSA model
def build_network(inp: dict[str, pd.DataFrame], base_mva: float):
    """The PyPSA network of the case.  Every branch is a Line between buses of v_nom = 1 kV with
    x = x_eff_pu / base_mva (ohm), so PyPSA's x_pu = x / v_nom**2 (1 MVA base) gives
    flow_MW = (theta0 - theta1) / x = base_mva * (theta0 - theta1) / x_eff_pu, MATPOWER's DC flow."""
    import pypsa

    sn = inp["load_p_mw"].index
    n = pypsa.Network()
    n.set_snapshots(sn)
    n.snapshot_weightings.loc[:, :] = 1.0
    n.add("Carrier", ["AC", "thermal", "pv", "wind", "shed", "battery"])
    n.add("Bus", inp["buses"].index, v_nom=1.0, carrier="AC")
    br = inp["branches"]
    n.add("Line", br.index, bus0=br["bus0"], bus1=br["bus1"], x=br["x_eff_pu"] / base_mva, r=0.0,
          s_nom=br["s_max_mw"], carrier="AC")
    th = inp["thermal"]
    n.add("Generator", th.index, bus=th["bus"], p_nom=th["p_max_mw"], p_min_pu=th["p_min_mw"] / th["p_max_mw"],
          marginal_cost=th["marginal_cost"], carrier="thermal")
    ren = inp["renewables"]
    n.add("Generator", ren.index, bus=ren["bus"], p_nom=ren["p_nom_mw"], marginal_cost=ren["marginal_cost"],
          p_max_pu=inp["renewable_p_max_pu"][ren.index], carrier=ren["kind"])
    ld = inp["loads"]
    n.add("Load", ld.index, bus=ld["bus"], p_set=inp["load_p_mw"][ld.index])
    sh = inp["load_shedding"]
    shed_pu = inp["load_p_mw"][sh["load"]].div(ld.loc[sh["load"], "p_base_mw"].values, axis=1)
    shed_pu.columns = sh.index
    n.add("Generator", sh.index, bus=sh["bus"], p_nom=ld.loc[sh["load"], "p_base_mw"].values,
          p_max_pu=shed_pu, marginal_cost=sh["marginal_cost"], carrier="shed")
    st = inp["storage"]
    n.add("StorageUnit", st.index, bus=st["bus"], p_nom=st["p_max_mw"], max_hours=st["e_max_mwh"] / st["p_max_mw"],
          efficiency_store=st["eta_charge"], efficiency_dispatch=st["eta_discharge"],
          standing_loss=st["standing_loss"], cyclic_state_of_charge=st["cyclic"].astype(bool),
          marginal_cost=st["marginal_cost"], carrier="battery")
    return n


# ------------------------------------------------------------------------------ twin DC flows
def twin_dc_flows(grid, inj: dict[str, pd.Series]) -> pd.Series:
    """Branch flows p0_mw (MW, bus0 -> bus1) of twin's DC power flow for fixed injections.

    ``inj``: "load" (per load id, MW), "thermal" (per generator id, MW), "other" (per bus, MW, all other
    injections: renewables, storage net output, shedding)."""
    g = grid.copy()
    g.load["p_mw"] = inj["load"].reindex(g.load.index).fillna(0.0).values
    g.generator["p_mw"] = inj["thermal"].reindex(g.generator.index).fillna(0.0).values
    other = inj["other"][inj["other"] != 0.0]
    if len(other):
        g.add("storage", index=["x_" + b for b in other.index], bus=list(other.index), p_mw=other.values)
    res = power_flow(g, "dc")
    return res.branch["p0_mw"]


def check_per_unit(grid, inp) -> dict:
    """PyPSA n.lpf() vs twin DC power flow, 19:00 loads, renewables at availability, case118's Pg scaled
    to balance; the slack (bus 69's generator) closes rounding."""
    n = build_network(inp, grid.base_mva)
    t = inp["load_p_mw"].index[19]
    load = inp["load_p_mw"].loc[t]
    ren = inp["renewables"]
    ren_p = ren["p_nom_mw"] * inp["renewable_p_max_pu"].loc[t, ren.index]
    pg = grid.generator.loc[inp["thermal"].index, "p_mw"]
    pg = pg * (load.sum() - ren_p.sum()) / pg.sum()
    slack = grid.generator.index[grid.generator["bus"] == grid.bus.index[grid.bus["type"] == "ref"][0]][0]
    n.generators.loc[slack, "control"] = "Slack"
    n.generators_t.p_set = pd.DataFrame(0.0, index=n.snapshots, columns=n.generators.index)
    n.generators_t.p_set.loc[t, pg.index] = pg.values
    n.generators_t.p_set.loc[t, ren_p.index] = ren_p.values
    n.lpf(snapshots=[t])
    p_pypsa = n.lines_t.p0.loc[t]
    other = ren_p.groupby(ren["bus"]).sum()
    p_twin = twin_dc_flows(grid, {"load": load, "thermal": pg, "other": other})
    diff = (p_pypsa - p_twin.reindex(p_pypsa.index)).abs()
    return {"snapshot": str(t), "max_abs_flow_diff_mw": float(diff.max()),
            "max_abs_flow_mw": float(p_pypsa.abs().max()),
            "pypsa_slack_p_mw": float(n.generators_t.p.loc[t, slack]), "slack_generator": slack}


# ------------------------------------------------------------------------------ solve and results
def solve(inp, base_mva: float, **solver_options):
    t0 = time.perf_counter()
    n = build_network(inp, base_mva)
    t1 = time.perf_counter()
    status = n.optimize(solver_name="highs", include_objective_constant=False, log_to_console=False,
                        **solver_options)
    t2 = time.perf_counter()
    return n, tuple(status), {"build_s": t1 - t0, "optimize_s": t2 - t1, "total_s": t2 - t0}


def results(n, inp) -> dict[str, pd.DataFrame]:
    ren, sh = inp["renewables"], inp["load_shedding"]
    gen_ids = list(inp["thermal"].index) + list(ren.index)
    m = n.model
    up = m.constraints["Line-fix-s-upper"].dual.to_pandas()
    lo = m.constraints["Line-fix-s-lower"].dual.to_pandas()
    mu = -(up + lo)  # >0: the bus0->bus1 limit binds, <0: the bus1->bus0 limit binds ($/MWh per MW)
    avail = inp["renewable_p_max_pu"][ren.index] * ren["p_nom_mw"]
    curt = avail - n.generators_t.p[ren.index]
    out = {
        "generator_p_mw": n.generators_t.p[gen_ids],
        "load_shedding_mw": n.generators_t.p[sh.index],
        "storage_p_dispatch_mw": n.storage_units_t.p_dispatch,
        "storage_p_store_mw": n.storage_units_t.p_store,
        "storage_p_mw": n.storage_units_t.p,
        "storage_soc_mwh": n.storage_units_t.state_of_charge,
        "line_p0_mw": n.lines_t.p0[inp["branches"].index],
        "line_mu": mu[inp["branches"].index],
        "bus_marginal_price": n.buses_t.marginal_price[inp["buses"].index],
        "renewable_curtailment_mw": curt,
    }
    th = inp["thermal"]
    gp = n.generators_t.p
    summ = pd.DataFrame({"load_mw": inp["load_p_mw"].sum(axis=1).values}, index=n.snapshots)
    for c, ids in th.groupby("marginal_cost").groups.items():
        summ[f"thermal_cost{c:g}_mw"] = gp[ids].sum(axis=1)
    summ["renewable_available_mw"] = avail.sum(axis=1).values
    summ["renewable_p_mw"] = gp[ren.index].sum(axis=1)
    summ["curtailment_mw"] = curt.sum(axis=1).values
    summ["storage_net_mw"] = n.storage_units_t.p.sum(axis=1)
    summ["storage_soc_total_mwh"] = n.storage_units_t.state_of_charge.sum(axis=1)
    summ["shed_mw"] = gp[sh.index].sum(axis=1)
    summ["cost"] = (gp[th.index] * th["marginal_cost"]).sum(axis=1) + (gp[sh.index] * sh["marginal_cost"]).sum(axis=1)
    out["summary_by_hour"] = summ
    for df in out.values():
        df.index = inp["load_p_mw"].index
        df.index.name = "snapshot"
        df.columns.name = None
    return out


def verify(n, inp, res, grid) -> dict:
    """Independent checks of the PyPSA solution against the case definition."""
    th, ren, st, br = inp["thermal"], inp["renewables"], inp["storage"], inp["branches"]
    gp, fl, soc = res["generator_p_mw"], res["line_p0_mw"], res["storage_soc_mwh"]
    pd_, ps = res["storage_p_dispatch_mw"], res["storage_p_store_mw"]
    shed = res["load_shedding_mw"]
    load = inp["load_p_mw"]
    avail = inp["renewable_p_max_pu"][ren.index] * ren["p_nom_mw"]
    # nodal balance
    inj = pd.DataFrame(0.0, index=load.index, columns=inp["buses"].index)
    for ids, buses, sign, df in ((th.index, th["bus"], 1, gp), (ren.index, ren["bus"], 1, gp),
                                 (shed.columns, inp["load_shedding"]["bus"], 1, shed),
                                 (st.index, st["bus"], 1, pd_), (st.index, st["bus"], -1, ps),
                                 (load.columns, inp["loads"]["bus"], -1, load)):
        inj = inj.add(sign * df[ids].T.groupby(buses.loc[ids].values).sum().T, fill_value=0.0)
    out_flow = fl.T.groupby(br["bus0"].values).sum().T.reindex(columns=inj.columns, fill_value=0.0)
    in_flow = fl.T.groupby(br["bus1"].values).sum().T.reindex(columns=inj.columns, fill_value=0.0)
    balance = (inj - out_flow + in_flow).abs().to_numpy().max()
    # bounds
    viol = max(
        float((gp[th.index] - th["p_max_mw"]).to_numpy().max()), float(-gp.to_numpy().min()),
        float((gp[ren.index] - avail).to_numpy().max()),
        float((fl.abs() - br["s_max_mw"]).to_numpy().max()),
        float((pd_ - st["p_max_mw"]).to_numpy().max()), float((ps - st["p_max_mw"]).to_numpy().max()),
        float((soc - st["e_max_mwh"]).to_numpy().max()), float(-soc.to_numpy().min()),
        float(-pd_.to_numpy().min()), float(-ps.to_numpy().min()), float(-shed.to_numpy().min()))
    # storage equation, cyclic
    prev = soc.shift(1)
    prev.iloc[0] = soc.iloc[-1]
    soc_res = (soc - ((1 - st["standing_loss"]) * prev + st["eta_charge"] * ps - pd_ / st["eta_discharge"])).abs()
    # objective
    obj = float((gp[th.index] * th["marginal_cost"]).to_numpy().sum()
                + (shed * inp["load_shedding"]["marginal_cost"]).to_numpy().sum())
    # DC flows recomputed by twin from the optimal injections, every snapshot
    dmax = 0.0
    for t in load.index:
        other = pd.concat([gp.loc[t, ren.index].groupby(ren["bus"]).sum(),
                           (pd_.loc[t] - ps.loc[t]).groupby(st["bus"]).sum(),
                           shed.loc[t].groupby(inp["load_shedding"]["bus"]).sum()]).groupby(level=0).sum()
        p_twin = twin_dc_flows(grid, {"load": load.loc[t], "thermal": gp.loc[t, th.index], "other": other})
        dmax = max(dmax, float((fl.loc[t] - p_twin.reindex(fl.columns)).abs().max()))
    simult = float(np.minimum(pd_, ps).to_numpy().max())
    return {"max_nodal_balance_residual_mw": float(balance), "max_bound_violation": viol,
            "max_soc_equation_residual_mwh": float(soc_res.to_numpy().max()),
            "objective_recomputed": obj, "max_flow_diff_vs_twin_dc_pf_mw": dmax,
            "max_simultaneous_charge_discharge_mw": simult}


def sanity(n, inp, res) -> dict:
    br, st = inp["branches"], inp["storage"]
    fl, mu = res["line_p0_mw"], res["line_mu"]
    hours = fl.index.strftime("%H:%M")
    at_limit = fl.abs() >= br["s_max_mw"] - 1e-6
    binding = at_limit & (mu.abs() > 1e-6)
    lines = {}
    for b in br.index[binding.any()]:
        lines[b] = {"bus0": br.at[b, "bus0"], "bus1": br.at[b, "bus1"], "kind": br.at[b, "kind"],
                    "hours": list(hours[binding[b].values]),
                    "max_abs_mu": float(mu[b].abs().max())}
    only_at_limit = list(br.index[(at_limit & ~binding).any()])
    pd_, ps = res["storage_p_dispatch_mw"], res["storage_p_store_mw"]
    bat = {s: {"charge_hours": list(hours[(ps[s] > 1e-6).values]),
               "discharge_hours": list(hours[(pd_[s] > 1e-6).values]),
               "charged_mwh": float(ps[s].sum()), "discharged_mwh": float(pd_[s].sum()),
               "soc_max_mwh": float(res["storage_soc_mwh"][s].max())} for s in st.index}
    curt = res["renewable_curtailment_mw"]
    curt_units = {g: {h: float(v) for h, v in zip(hours, curt[g].values) if v > 1e-6}
                  for g in curt.columns[(curt > 1e-6).any()]}
    price = res["bus_marginal_price"]
    gp = res["generator_p_mw"]
    th = inp["thermal"]
    by_cost = gp[th.index].T.groupby(th["marginal_cost"].values).sum().T
    return {
        "load_shedding_total_mwh": float(res["load_shedding_mw"].to_numpy().sum()),
        "binding_lines": lines,
        "n_binding_line_hours": int(binding.to_numpy().sum()),
        "lines_at_limit_with_zero_dual": only_at_limit,
        "batteries": bat,
        "curtailment_total_mwh": float(curt.to_numpy().sum()),
        "curtailment_by_hour_mwh": {h: float(v) for h, v in zip(hours, curt.sum(axis=1).values)},
        "curtailment_by_unit_mw": curt_units,
        "price_min": float(price.to_numpy().min()), "price_max": float(price.to_numpy().max()),
        "n_distinct_prices_rounded_1e-3": int(np.unique(price.to_numpy().round(3)).size),
        "thermal_energy_by_marginal_cost_mwh": {f"{k:g}": float(v) for k, v in by_cost.sum().items()},
        "renewable_energy_mwh": float(gp[inp["renewables"].index].to_numpy().sum()),
        "load_energy_mwh": float(inp["load_p_mw"].to_numpy().sum()),
    }


def compare(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> dict:
    """Largest absolute difference per result table, and per column of summary_by_hour."""
    out = {f"max_abs_diff_{k}": float((a[k] - b[k]).abs().to_numpy().max()) for k in a}
    d = (a["summary_by_hour"] - b["summary_by_hour"]).abs().max()
    out["max_abs_diff_summary_by_hour_columns"] = {k: float(v) for k, v in d.items()}
    return out


def write_results(res: dict[str, pd.DataFrame]) -> None:
    REF.mkdir(parents=True, exist_ok=True)
    for old in REF.glob("*.csv*"):
        old.unlink()
    for name, df in res.items():
        df = df.round(REF_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
        df = df.copy()
        df.index = df.index.strftime("%Y-%m-%d %H:%M")
        df.index.name = "snapshot"
        df.to_csv(REF / f"{name}.csv", float_format=FLOAT_REF, lineterminator="\n")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in ("pypsa", "linopy", "highspy", "pandas", "numpy", "xarray"):
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name in ("pypsa", "linopy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    grid = read_matpower(CASE_FILE)
    write_inputs(build_inputs(grid))
    inp = read_inputs()

    pu = check_per_unit(grid, inp)
    print(f"per-unit check: max |flow(PyPSA lpf) - flow(twin DC)| = {pu['max_abs_flow_diff_mw']:.3e} MW")

    n, status, timing = solve(inp, grid.base_mva)
    if status != ("ok", "optimal"):
        raise SystemExit(f"PyPSA optimisation failed: {status}")
    res = results(n, inp)
    checks = verify(n, inp, res, grid)
    checks["objective_rel_diff_recomputed"] = abs(checks["objective_recomputed"] - n.objective) / abs(n.objective)
    info_sanity = sanity(n, inp, res)

    n2, status2, timing2 = solve(inp, grid.base_mva)
    res2 = results(n2, inp)
    determinism = {"objective_second_run": float(n2.objective), "status_second_run": list(status2),
                   "objective_identical": float(n2.objective) == float(n.objective),
                   **compare(res, res2)}

    probes = []  # the same LP with other HiGHS algorithms: which results are unique?
    for opts in ({"solver": "ipm", "run_crossover": "on"}, {"solver": "simplex", "simplex_strategy": 4}):
        n3, status3, _ = solve(inp, grid.base_mva, **opts)
        probes.append({"solver_options": opts, "status": list(status3), "objective": float(n3.objective),
                       "objective_rel_diff": abs(float(n3.objective) - float(n.objective)) / abs(float(n.objective)),
                       **compare(res, results(n3, inp))})

    write_results(res)
    info = {
        "case": "case118_24h",
        "objective": float(n.objective),
        "objective_repr": repr(float(n.objective)),
        "status": list(status),
        "termination_condition": status[1],
        "solver": "highs",
        "solver_options": {},
        "optimize_call": 'n.optimize(solver_name="highs", include_objective_constant=False)',
        "versions": versions(),
        "timings_s": timing,
        "timings_second_run_s": timing2,
        "per_unit_check": pu,
        "checks": checks,
        "determinism": determinism,
        "alternative_optimum_probes": probes,
        "sanity": info_sanity,
        "curtailment_total_mwh": info_sanity["curtailment_total_mwh"],
        "load_shedding_total_mwh": info_sanity["load_shedding_total_mwh"],
        "n_variables": int(n.model.nvars), "n_constraints": int(n.model.ncons),
        "reference_rounding": f"values rounded to {REF_DECIMALS} decimals",
    }
    (REF / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"objective {n.objective!r}  status {status}  build+solve {timing['total_s']:.2f} s")
    print(f"second run objective {n2.objective!r} identical={determinism['objective_identical']}")
    print("checks:", json.dumps(checks))
    print("binding lines:", {k: v["hours"] for k, v in info_sanity["binding_lines"].items()})
    print("curtailment MWh:", info_sanity["curtailment_total_mwh"], "shedding MWh:",
          info_sanity["load_shedding_total_mwh"])
    for p in probes:
        print("probe", p["solver_options"], "objective rel diff", p["objective_rel_diff"],
              {k: round(v, 6) for k, v in p.items() if k.startswith("max_abs_diff") and not isinstance(v, dict)})
    if not math.isclose(checks["objective_recomputed"], n.objective, rel_tol=1e-9):
        raise SystemExit("objective mismatch")


if __name__ == "__main__":
    main()
