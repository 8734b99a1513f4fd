"""Joint energy–water–mobility day-ahead schedule: the dispatch with the water works and EV charging as
flexible loads on their buses.

The electricity side is the dispatch of :mod:`solvers.dispatch` (generators, PV/wind with availability
and curtailment, batteries, DC network, shedding).  Two extensions add flexible consumers to its nodal
balances:

**Water works** (:class:`WaterWorks`; storages k — clear-water and service reservoirs —, transfers j —
the treatment plant and the pumping stations —, snapshots t of Δ_t hours):

=============  ===========================  ==========================================================
symbol         Pyomo                        meaning (unit)
=============  ===========================  ==========================================================
f_jt           ``m.water_flow[j, t]``       flow through transfer j (m³/h), q̲_j ≤ f_jt ≤ q̄_j
n_jt           ``m.water_units[j, t]``      pumps running (integer, ``discrete``): f_jt = (q̄_j/N_j) n_jt
V_kt           ``m.water_volume[k, t]``     volume in storage k at the end of t (m³), V̲_k ≤ V_kt ≤ V̄_k
σ_kt           ``m.water_shortage[k, t]``   demand not served from storage k (m³/h), priced at c^σ
e_j                                         specific energy of transfer j (kWh/m³); its load e_j f_jt/1000 MW
D_kt                                        demand drawn from storage k (m³/h)
=============  ===========================  ==========================================================

``m.water_balance[k, t]``: V_kt = V_k,t−1 + Δ_t (Σ_{j→k} f_jt − Σ_{j←k} f_jt − D_kt + σ_kt), V_k,−1 = V_k^0;
``m.water_end[k]``: V_k,T−1 ≥ V_k^end; ``m.water_raw_limit[j]``: Σ_t Δ_t f_jt ≤ W_j (a raw-water allowance,
drought); cost Σ c^σ Δ_t σ_kt.

**EV charging** (:class:`EVCharging`; hubs h on buses, sessions s = vehicles arriving at a hub in a window):

=============  ===========================  ==========================================================
c_st           ``m.ev_charge[s, t]``        charging power of session s (MW), 0 ≤ c_st ≤ c̄_s, only for t
                                            within [arrival_s, departure_s)
u_s            ``m.ev_unserved[s]``         energy not delivered (MWh), priced at c^u
=============  ===========================  ==========================================================

``m.ev_energy[s]``: Σ_t Δ_t c_st + u_s ≥ E̲_s and ``m.ev_energy_max[s]``: Σ_t Δ_t c_st ≤ E_s, with E̲_s = E_s
unless a rolling window ends before the vehicle leaves (then only what cannot be charged after the window
is due in it); ``m.ev_hub_limit[h, t]``: Σ_{s∈h} c_st ≤ P̄_h.

PV surplus is absorbed by batteries, pumping and charging before it is curtailed because curtailment is
free while every other use of that energy displaces paid generation or import: the optimiser shifts the
flexible loads into the sunny hours as far as storage volumes, arrival windows and capacities allow.
:func:`solve_day_ahead` with ``flexible=False`` gives the reference without that freedom (pumping follows
demand hour by hour, vehicles charge as soon as they arrive at full power), so the value of flexibility
is the difference of the two objectives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from twin.digest import content_digest
from twin.energy import Grid

from .dispatch import (
    DispatchData,
    DispatchInputError,
    DispatchModel,
    DispatchOptions,
    DispatchSolution,
    DispatchState,
    build_dispatch_model,
    dispatch_structure,
    refresh_dispatch,
    solve_dispatch,
)
from .highs_route import HighsModel

__all__ = ["WaterWorks", "EVCharging", "DayAheadSchedule", "solve_day_ahead", "build_day_ahead_model",
           "ev_sessions_from_arrivals", "day_ahead_structure", "resolve_day_ahead"]

RowBounds = tuple[np.ndarray, np.ndarray]  # the HiGHS instance's current row bounds (lower, upper)


def _one_row_each(h: HighsModel, cons) -> np.ndarray:
    rows = [h.rows_of(c) for c in cons]
    if any(len(r) != 1 for r in rows):
        raise DispatchInputError("a constraint of the model spans several rows: rebuild it instead of refreshing")
    return np.array([r[0] for r in rows], dtype=np.int64)


def _columns(h: HighsModel, vars_) -> np.ndarray:
    """Columns of the variables (-1 for a fixed variable the compiler eliminated)."""
    return np.array([h._col.get(id(v), -1) for v in vars_], dtype=np.int64)


def _refresh(h: HighsModel, now: RowBounds, old_rows: list, new_rows: list, new_cols: list, what: str) -> None:
    """Set the row bounds ``new_rows`` [(rows, lower, upper)] after checking that the rows hold the bounds the
    old numbers give (``old_rows``; a formula or orientation that differed from the compiler's would be caught
    here, not solved wrong), then the column bounds ``new_cols`` [(columns, lower, upper)]."""
    lo_now, hi_now = now
    for (rows, lo, hi) in old_rows:
        if not (np.allclose(lo_now[rows], lo, rtol=1e-9, atol=1e-7) and np.allclose(hi_now[rows], hi, rtol=1e-9,
                                                                                     atol=1e-7)):
            raise DispatchInputError(f"{what}: the model's rows do not hold the expected bounds: rebuild it")
    for (rows, lo, hi) in new_rows:
        h.set_row_bounds(rows, lo, hi)
    for (cols, lo, hi) in new_cols:
        keep = cols >= 0
        h.set_col_bounds(cols[keep], np.asarray(lo, float)[keep], np.asarray(hi, float)[keep])


def _bus_positions(d: DispatchData, buses: pd.Series, what: str) -> np.ndarray:
    pos = d.bus_ids.get_indexer(buses.astype(str))
    if (pos < 0).any():
        i = int(np.flatnonzero(pos < 0)[0])
        raise DispatchInputError(f"{what} {buses.index[i]!r}: bus {buses.iloc[i]!r} is not a bus of the grid")
    return pos


def _snapshot_frame(df: pd.DataFrame, d: DispatchData, what: str) -> np.ndarray:
    if len(df.index) != d.T or not df.index.equals(pd.Index(d.snapshots)):
        raise DispatchInputError(f"{what}: the index must be the grid's snapshots ({d.T} of them)")
    vals = df.to_numpy(float)
    if not np.isfinite(vals).all() or (vals < 0).any():
        r, c = np.argwhere(~np.isfinite(vals) | (vals < 0))[0]
        raise DispatchInputError(f"{what}: {df.columns[c]!r} at {df.index[r]!r} is {vals[r, c]!r} (must be >= 0)")
    return vals


@dataclass
class WaterWorks:
    """The treatment plant and pumping stations as flexible loads (see the module docstring).

    ``storages``: index = storage id; ``v_min_m3``, ``v_max_m3``, ``v_init_m3`` and optional ``v_end_m3``
    (default: the initial volume).  ``transfers``: index = transfer id; ``from`` (a storage, or '' for the
    raw-water source), ``to`` (a storage), ``bus``, ``q_max_m3h``, optional ``q_min_m3h`` (0),
    ``kwh_per_m3`` (specific energy), ``units`` (pumps in the station, for ``discrete``) and
    ``max_volume_m3`` (allowance over the horizon; NaN = none).  ``demand_m3h``: snapshots × storages.
    ``shortage_cost`` per m³ not served (None: demand must be met)."""

    storages: pd.DataFrame
    transfers: pd.DataFrame
    demand_m3h: pd.DataFrame
    shortage_cost: float | None = 10.0
    discrete: bool = False
    name: str = "water"
    follow_demand: bool = False  # inflexible reference: storages held at their initial volume

    def _check(self, d: DispatchData) -> None:
        st, tr = self.storages, self.transfers
        for col in ("v_min_m3", "v_max_m3", "v_init_m3"):
            if col not in st:
                raise DispatchInputError(f"water storages: column {col!r} is missing")
        bad = st.index[(st["v_min_m3"] > st["v_init_m3"]) | (st["v_init_m3"] > st["v_max_m3"])
                       | (st["v_min_m3"] < 0)]
        if len(bad):
            raise DispatchInputError(f"water storage {bad[0]!r}: needs 0 <= v_min_m3 <= v_init_m3 <= v_max_m3")
        for col in ("from", "to", "bus", "q_max_m3h", "kwh_per_m3"):
            if col not in tr:
                raise DispatchInputError(f"water transfers: column {col!r} is missing")
        for j, row in tr.iterrows():
            if row["to"] not in st.index:
                raise DispatchInputError(f"water transfer {j!r}: 'to' {row['to']!r} is not a storage")
            if row["from"] and row["from"] not in st.index:
                raise DispatchInputError(f"water transfer {j!r}: 'from' {row['from']!r} is not a storage")
            if not (row["q_max_m3h"] >= 0 and row["kwh_per_m3"] >= 0):
                raise DispatchInputError(f"water transfer {j!r}: q_max_m3h and kwh_per_m3 must be >= 0")
        missing = [k for k in self.demand_m3h.columns if k not in st.index]
        if missing:
            raise DispatchInputError(f"water demand: {missing[0]!r} is not a storage")
        _snapshot_frame(self.demand_m3h, d, "water demand_m3h")

    def declare(self, m: pyo.ConcreteModel, d: DispatchData) -> None:
        """Flows, volumes, shortages and their balances (module docstring)."""
        self._check(d)
        st, tr, T = self.storages, self.transfers, d.T
        K, J = len(st), len(tr)
        self._bus = _bus_positions(d, tr["bus"], "water transfer")
        qmin = tr["q_min_m3h"].to_numpy(float) if "q_min_m3h" in tr else np.zeros(J)
        qmax = tr["q_max_m3h"].to_numpy(float)
        self._kw = tr["kwh_per_m3"].to_numpy(float)
        demand = np.zeros((K, T))
        dpos = st.index.get_indexer(self.demand_m3h.columns)
        demand[dpos] = _snapshot_frame(self.demand_m3h, d, "water demand_m3h").T
        m.water_flow = pyo.Var(range(J), range(T), bounds=lambda _m, j, t: (float(qmin[j]), float(qmax[j])))
        if self.discrete:
            units = tr["units"].to_numpy(int) if "units" in tr else np.ones(J, int)
            m.water_units = pyo.Var(range(J), range(T), domain=pyo.NonNegativeIntegers,
                                    bounds=lambda _m, j, t: (0, int(units[j])))
            m.water_unit_flow = pyo.Constraint(range(J), range(T), rule=lambda _m, j, t: m.water_flow[j, t] == float(
                qmax[j] / max(units[j], 1)) * m.water_units[j, t])
        vmin, vmax = st["v_min_m3"].to_numpy(float), st["v_max_m3"].to_numpy(float)
        v0 = st["v_init_m3"].to_numpy(float)
        vend = st["v_end_m3"].to_numpy(float) if "v_end_m3" in st else v0.copy()
        vend = np.where(np.isnan(vend), v0, vend)
        m.water_volume = pyo.Var(range(K), range(T), bounds=lambda _m, k, t: (float(vmin[k]), float(vmax[k])))
        allow_short = self.shortage_cost is not None
        m.water_shortage = pyo.Var(range(K), range(T),
                                   bounds=lambda _m, k, t: (0.0, float(demand[k, t]) if allow_short else 0.0))
        src = st.index.get_indexer(tr["from"].replace("", None).fillna("~none~"))
        dst = st.index.get_indexer(tr["to"])

        def balance(_m, k, t):
            prev = m.water_volume[k, t - 1] if t > 0 else float(v0[k])
            net = (sum(m.water_flow[j, t] for j in np.flatnonzero(dst == k))
                   - sum(m.water_flow[j, t] for j in np.flatnonzero(src == k)))
            return m.water_volume[k, t] == prev + float(d.hours[t]) * (net - float(demand[k, t])
                                                                       + m.water_shortage[k, t])

        m.water_balance = pyo.Constraint(range(K), range(T), rule=balance)
        m.water_end = pyo.Constraint(range(K), rule=lambda _m, k: m.water_volume[k, T - 1]
                                     >= float(min(vend[k], vmax[k])))
        if self.follow_demand:
            m.water_hold = pyo.Constraint(range(K), range(T),
                                          rule=lambda _m, k, t: m.water_volume[k, t] == float(v0[k]))
        if "max_volume_m3" in tr:
            cap = tr["max_volume_m3"].to_numpy(float)
            lim = [int(j) for j in np.flatnonzero(np.isfinite(cap))]
            m.water_raw_limit = pyo.Constraint(lim, rule=lambda _m, j: sum(
                float(d.hours[t]) * m.water_flow[j, t] for t in range(T)) <= float(cap[j]))

    def _numbers(self, d: DispatchData) -> dict[str, np.ndarray]:
        st, tr, T = self.storages, self.transfers, d.T
        K, J = len(st), len(tr)
        demand = np.zeros((K, T))
        demand[st.index.get_indexer(self.demand_m3h.columns)] = self.demand_m3h.to_numpy(float).T
        v0 = st["v_init_m3"].to_numpy(float)
        vend = st["v_end_m3"].to_numpy(float) if "v_end_m3" in st else v0.copy()
        return {"qmin": tr["q_min_m3h"].to_numpy(float) if "q_min_m3h" in tr else np.zeros(J),
                "qmax": tr["q_max_m3h"].to_numpy(float), "vmin": st["v_min_m3"].to_numpy(float),
                "vmax": st["v_max_m3"].to_numpy(float), "v0": v0, "vend": np.where(np.isnan(vend), v0, vend),
                "demand": demand,
                "cap": tr["max_volume_m3"].to_numpy(float) if "max_volume_m3" in tr else np.full(J, np.nan)}

    def _bounds(self, m: pyo.ConcreteModel, d: DispatchData, h: HighsModel) -> tuple[list, list]:
        """(rows, lower, upper) of the balances, end levels, allowances and held volumes and (columns, lower,
        upper) of flows, volumes and shortages, from this object's numbers (module docstring)."""
        n, T = self._numbers(d), d.T
        K, J = len(self.storages), len(self.transfers)
        kt = [(k, t) for k in range(K) for t in range(T)]
        jt = [(j, t) for j in range(J) for t in range(T)]
        rhs = np.array([(n["v0"][k] if t == 0 else 0.0) - float(d.hours[t]) * n["demand"][k, t] for k, t in kt])
        rows = [(_one_row_each(h, (m.water_balance[k] for k in kt)), rhs, rhs)]
        end = np.minimum(n["vend"], n["vmax"])
        rows.append((_one_row_each(h, (m.water_end[k] for k in range(K))), end, np.full(K, np.inf)))
        if hasattr(m, "water_raw_limit") and len(m.water_raw_limit):
            lim = list(m.water_raw_limit.keys())
            rows.append((_one_row_each(h, (m.water_raw_limit[j] for j in lim)), np.full(len(lim), -np.inf),
                         n["cap"][lim]))
        if self.follow_demand:
            held = np.array([n["v0"][k] for k, _t in kt])
            rows.append((_one_row_each(h, (m.water_hold[k] for k in kt)), held, held))
        short_hi = n["demand"].ravel() if self.shortage_cost is not None else np.zeros(K * T)
        cols = [(_columns(h, (m.water_flow[j] for j in jt)), np.repeat(n["qmin"], T), np.repeat(n["qmax"], T)),
                (_columns(h, (m.water_volume[k] for k in kt)), np.repeat(n["vmin"], T), np.repeat(n["vmax"], T)),
                (_columns(h, (m.water_shortage[k] for k in kt)), np.zeros(K * T), short_hi)]
        return rows, cols

    def refresh(self, m: pyo.ConcreteModel, d: DispatchData, h: HighsModel, new: WaterWorks, now: RowBounds) -> None:
        """Take the numbers of ``new`` — the same storages, transfers and structure (:func:`day_ahead_structure`)
        — into the solved model in place: demands (m³/h), volume bounds and initial/end volumes (m³), transfer
        capacities (m³/h) and allowances (m³)."""
        new._check(d)
        if not (new.storages.index.equals(self.storages.index) and new.transfers.index.equals(self.transfers.index)):
            raise DispatchInputError("water works: the storages or transfers differ from the model's")
        old_rows, _ = self._bounds(m, d, h)
        self.storages, self.transfers, self.demand_m3h = new.storages, new.transfers, new.demand_m3h
        new_rows, new_cols = self._bounds(m, d, h)
        _refresh(h, now, old_rows, new_rows, new_cols, "water works")

    def injections(self, m: pyo.ConcreteModel, d: DispatchData, t: int):
        J = len(self.transfers)
        cols = [m.water_flow[j, t] for j in range(J)]
        return cols, self._bus, -self._kw / 1000.0  # m³/h × kWh/m³ = kW → MW withdrawn

    def cost_terms(self, m: pyo.ConcreteModel, d: DispatchData):
        if self.shortage_cost is None:
            return [], []
        K = len(self.storages)
        keys = [(k, t) for k in range(K) for t in range(d.T)]
        return [self.shortage_cost * d.hours[t] for _k, t in keys], [m.water_shortage[k, t] for k, t in keys]


@dataclass
class EVCharging:
    """EV charging hubs with sessions (see the module docstring).

    ``hubs``: index = hub id; ``bus``, ``p_max_mw``.  ``sessions``: index = session id; ``hub``,
    ``arrival_h`` and ``departure_h`` (hours from the first snapshot), ``energy_mwh``, ``p_max_mw`` (the
    session's chargers together), optional ``energy_min_mwh`` (what must be delivered in this horizon;
    default all of it).  ``unserved_cost`` per MWh not delivered (None: must be delivered).
    ``as_soon_as_possible``: the inflexible reference (each session charges at full power from arrival)."""

    hubs: pd.DataFrame
    sessions: pd.DataFrame
    unserved_cost: float | None = 500.0
    name: str = "ev"
    as_soon_as_possible: bool = False

    def _windows(self, d: DispatchData) -> list[list[int]]:
        start = np.concatenate([[0.0], np.cumsum(d.hours)[:-1]])
        end = start + d.hours
        out = []
        for s, row in self.sessions.iterrows():
            a, b = float(row["arrival_h"]), float(row["departure_h"])
            if not b > a:
                raise DispatchInputError(f"EV session {s!r}: departure_h {b!r} is not after arrival_h {a!r}")
            ts = [int(t) for t in np.flatnonzero((start >= a - 1e-9) & (end <= b + 1e-9))]
            if not ts:
                raise DispatchInputError(f"EV session {s!r}: no whole snapshot lies within [{a:g}, {b:g}) h")
            out.append(ts)
        return out

    def declare(self, m: pyo.ConcreteModel, d: DispatchData) -> None:
        """Charging powers, delivered energy and hub limits (module docstring)."""
        hubs, ses = self.hubs, self.sessions
        for col in ("hub", "arrival_h", "departure_h", "energy_mwh", "p_max_mw"):
            if col not in ses:
                raise DispatchInputError(f"EV sessions: column {col!r} is missing")
        unknown = ses.index[~ses["hub"].isin(hubs.index)]
        if len(unknown):
            raise DispatchInputError(f"EV session {unknown[0]!r}: hub {ses.loc[unknown[0], 'hub']!r} is not a hub")
        neg = ses.index[(ses["energy_mwh"] < 0) | (ses["p_max_mw"] < 0)]
        if len(neg):
            raise DispatchInputError(f"EV session {neg[0]!r}: energy_mwh and p_max_mw must be >= 0")
        self._bus_of_hub = _bus_positions(d, hubs["bus"], "EV hub")
        hub_pos = hubs.index.get_indexer(ses["hub"])
        self._bus = self._bus_of_hub[hub_pos]
        self._win = self._windows(d)
        pairs = [(s, t) for s, ts in enumerate(self._win) for t in ts]
        self._by_t: dict[int, list[int]] = {}
        for s, t in pairs:
            self._by_t.setdefault(t, []).append(s)
        pmax = ses["p_max_mw"].to_numpy(float)
        energy = ses["energy_mwh"].to_numpy(float)
        m.ev_charge = pyo.Var(pairs, bounds=lambda _m, s, t: (0.0, float(pmax[s])))
        m.ev_unserved = pyo.Var(range(len(ses)), bounds=(0.0, None if self.unserved_cost is not None else 0.0))
        due = ses["energy_min_mwh"].to_numpy(float) if "energy_min_mwh" in ses else energy

        def delivered(s):
            return sum(float(d.hours[t]) * m.ev_charge[s, t] for t in self._win[s])

        m.ev_energy = pyo.Constraint(range(len(ses)), rule=lambda _m, s: delivered(s) + m.ev_unserved[s]
                                     >= float(min(due[s], energy[s])))
        m.ev_energy_max = pyo.Constraint(range(len(ses)), rule=lambda _m, s: delivered(s) <= float(energy[s]))
        hub_cap = hubs["p_max_mw"].to_numpy(float)
        keys = sorted({(int(hub_pos[s]), t) for s, t in pairs})
        m.ev_hub_limit = pyo.Constraint(keys, rule=lambda _m, h, t: sum(
            m.ev_charge[s, t] for s in self._by_t[t] if hub_pos[s] == h) <= float(hub_cap[h]))
        if self.as_soon_as_possible:  # the uncontrolled reference: full power from arrival until charged,
            room = np.repeat(hub_cap[:, None], d.T, axis=1)  # first come first served at each hub
            for s in np.argsort(ses["arrival_h"].to_numpy(float), kind="stable"):
                left = energy[s]
                for t in self._win[s]:
                    p = max(0.0, min(pmax[s], left / d.hours[t], room[hub_pos[s], t]))
                    m.ev_charge[int(s), t].fix(float(p))
                    room[hub_pos[s], t] -= p
                    left -= p * d.hours[t]

    def _bounds(self, m: pyo.ConcreteModel, d: DispatchData, h: HighsModel) -> tuple[list, list]:
        """(rows, lower, upper) of the energy and hub rows and (columns, lower, upper) of the charging powers,
        from this object's numbers (module docstring)."""
        ses, hubs = self.sessions, self.hubs
        n = len(ses)
        energy = ses["energy_mwh"].to_numpy(float)
        due = ses["energy_min_mwh"].to_numpy(float) if "energy_min_mwh" in ses else energy
        rows = [(_one_row_each(h, (m.ev_energy[s] for s in range(n))), np.minimum(due, energy), np.full(n, np.inf)),
                (_one_row_each(h, (m.ev_energy_max[s] for s in range(n))), np.full(n, -np.inf), energy)]
        keys = list(m.ev_hub_limit.keys())
        cap = hubs["p_max_mw"].to_numpy(float)
        rows.append((_one_row_each(h, (m.ev_hub_limit[k] for k in keys)), np.full(len(keys), -np.inf),
                     np.array([cap[hub] for hub, _t in keys])))
        pmax = ses["p_max_mw"].to_numpy(float)
        pairs = list(m.ev_charge.keys())
        cols = [(_columns(h, (m.ev_charge[k] for k in pairs)), np.zeros(len(pairs)),
                 np.array([pmax[s] for s, _t in pairs]))]
        return rows, cols

    def refresh(self, m: pyo.ConcreteModel, d: DispatchData, h: HighsModel, new: EVCharging, now: RowBounds) -> None:
        """Take the numbers of ``new`` — the same hubs and sessions with the same windows
        (:func:`day_ahead_structure`) — into the solved model in place: session energies (MWh) and powers (MW),
        hub limits (MW)."""
        same = (new.hubs.index.equals(self.hubs.index) and new.sessions.index.equals(self.sessions.index)
                and new.sessions[["hub", "arrival_h", "departure_h"]].equals(
                    self.sessions[["hub", "arrival_h", "departure_h"]]))
        if not same:
            raise DispatchInputError("EV charging: the hubs or sessions differ from the model's")
        neg = new.sessions.index[(new.sessions["energy_mwh"] < 0) | (new.sessions["p_max_mw"] < 0)]
        if len(neg):
            raise DispatchInputError(f"EV session {neg[0]!r}: energy_mwh and p_max_mw must be >= 0")
        old_rows, _ = self._bounds(m, d, h)
        self.hubs, self.sessions = new.hubs, new.sessions
        new_rows, new_cols = self._bounds(m, d, h)
        _refresh(h, now, old_rows, new_rows, new_cols, "EV charging")

    def injections(self, m: pyo.ConcreteModel, d: DispatchData, t: int):
        ss = self._by_t.get(t, [])
        return [m.ev_charge[s, t] for s in ss], self._bus[ss] if ss else np.zeros(0, np.int64), -np.ones(len(ss))

    def cost_terms(self, m: pyo.ConcreteModel, d: DispatchData):
        if self.unserved_cost is None:
            return [], []
        n = len(self.sessions)
        return [self.unserved_cost] * n, [m.ev_unserved[s] for s in range(n)]


def ev_sessions_from_arrivals(arrivals: pd.DataFrame, hub_of_zone: Mapping[str, str], *, ev_share: float,
                              kwh_per_vehicle: float, dwell_h: float, charger_kw: float,
                              plug_in_share: float = 1.0) -> pd.DataFrame:
    """EV charging sessions from the traffic model: ``arrivals`` (rows: hour offsets from the first snapshot;
    columns: zones; vehicles/h ending their trip in the zone, e.g. the OD matrix's column sums times the
    hourly profile).  Vehicles arriving in a zone served by a hub in an hour form one session: EVs =
    arrivals × ``ev_share`` × ``plug_in_share``, energy = EVs × ``kwh_per_vehicle``, window = the arrival
    hour to ``dwell_h`` later, power = EVs × ``charger_kw``.  Zones without a hub are skipped."""
    if not 0 <= ev_share <= 1 or not 0 <= plug_in_share <= 1:
        raise DispatchInputError("ev_share and plug_in_share must be in [0, 1]")
    rows = []
    for zone in arrivals.columns:
        hub = hub_of_zone.get(str(zone))
        if hub is None:
            continue
        for h, veh in arrivals[zone].items():
            n = float(veh) * ev_share * plug_in_share
            if n <= 0:
                continue
            rows.append({"id": f"{hub}@{float(h):g}h:{zone}", "hub": hub, "zone": str(zone), "arrival_h": float(h),
                         "departure_h": float(h) + dwell_h, "vehicles": n, "energy_mwh": n * kwh_per_vehicle / 1000.0,
                         "p_max_mw": n * charger_kw / 1000.0})
    cols = ["hub", "zone", "arrival_h", "departure_h", "vehicles", "energy_mwh", "p_max_mw"]
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows).set_index("id")[cols]


@dataclass
class DayAheadSchedule:
    """The joint schedule.  Frames have the grid's snapshots as rows.

    ``dispatch``: the electricity solution (generation, storage, flows, nodal prices …); ``water_flow``
    (transfers, m³/h), ``water_power`` (transfers, MW), ``water_volume`` (storages, m³, end of snapshot),
    ``water_shortage`` (storages, m³/h); ``ev_charging`` (hubs, MW), ``ev_session_charging`` (sessions, MW),
    ``ev_unserved`` (sessions, MWh);
    ``flexible_load`` (buses, MW: pumping + charging); ``curtailment`` (generators with an availability
    series, MW); ``objective`` and ``cost_breakdown``."""

    dispatch: DispatchSolution
    water_flow: pd.DataFrame
    water_power: pd.DataFrame
    water_volume: pd.DataFrame
    water_shortage: pd.DataFrame
    ev_charging: pd.DataFrame
    ev_unserved: pd.Series
    flexible_load: pd.DataFrame
    curtailment: pd.DataFrame
    objective: float
    cost_breakdown: dict[str, float]
    ev_session_charging: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)
    model: DispatchModel | None = None  # the built model (for in-place re-solves and hand-overs)

    def ev_delivered(self, snapshots: int | None = None) -> pd.Series:
        """Energy delivered to each charging session (MWh) in the first ``snapshots`` (default all)."""
        if self.ev_session_charging is None or self.ev_session_charging.empty:
            return pd.Series(dtype=float)
        part = self.ev_session_charging.iloc[:snapshots] if snapshots is not None else self.ev_session_charging
        return (part.fillna(0.0) * self._hours()[: len(part), None]).sum()

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable key figures (MWh, m³)."""
        h = self._hours()
        return {"objective": self.objective, **{f"cost_{k}": v for k, v in self.cost_breakdown.items()},
                "curtailed_mwh": float((self.curtailment.to_numpy() * h[:, None]).sum()),
                "pumping_mwh": float((self.water_power.to_numpy() * h[:, None]).sum()),
                "ev_charged_mwh": float((self.ev_charging.to_numpy() * h[:, None]).sum()),
                "ev_unserved_mwh": float(self.ev_unserved.sum()),
                "water_shortage_m3": float((self.water_shortage.to_numpy() * h[:, None]).sum()),
                "shed_mwh": float((self.dispatch.shed.to_numpy() * h[:, None]).sum())}

    def _hours(self) -> np.ndarray:
        idx = self.dispatch.generation.index
        if isinstance(idx, pd.DatetimeIndex) and len(idx) > 1:
            step = np.diff(idx).astype("timedelta64[ns]").astype(np.int64) / 3.6e12
            return np.append(step, step[-1])
        return np.ones(len(idx))


def build_day_ahead_model(grid: Grid, water: WaterWorks | None = None, ev: EVCharging | None = None,
                          options: DispatchOptions | None = None, *, flexible: bool = True,
                          initial_state: DispatchState | None = None) -> DispatchModel:
    """Build the joint model (a :class:`~solvers.dispatch.DispatchModel` with the water works and EV charging
    as extensions).  ``flexible=False`` builds the inflexible reference (module docstring)."""
    exts = []
    if water is not None:
        exts.append(replace(water, follow_demand=not flexible) if not flexible else water)
    if ev is not None:
        exts.append(replace(ev, as_soon_as_possible=not flexible) if not flexible else ev)
    return build_dispatch_model(grid, options or DispatchOptions(), exts, initial_state)


def solve_day_ahead(grid: Grid, water: WaterWorks | None = None, ev: EVCharging | None = None,
                    options: DispatchOptions | None = None, *, flexible: bool = True,
                    initial_state: DispatchState | None = None) -> DayAheadSchedule:
    """Build and solve the joint day-ahead schedule (module docstring) and return its tables.
    ``initial_state``: storage charge and unit states handed over (rolling horizons)."""
    dm = build_day_ahead_model(grid, water, ev, options, flexible=flexible, initial_state=initial_state)
    return _schedule(dm, grid, solve_dispatch(dm))


def day_ahead_structure(grid: Grid, water: WaterWorks | None = None, ev: EVCharging | None = None,
                        options: DispatchOptions | None = None, *, flexible: bool = True,
                        initial_state: DispatchState | None = None) -> str:
    """A digest (hex) of what shapes the joint model's matrix.  Two problems with equal digests differ only in
    numbers that :func:`resolve_day_ahead` changes in place: those of :func:`solvers.dispatch.refresh_dispatch`,
    water demands (m³/h), volume bounds (m³), continuous transfers' capacities (m³/h) and allowances (m³), EV
    session energies (MWh) and powers (MW), hub limits (MW).  Everything else — ids, buses, topology,
    reactances, efficiencies, specific energies (kWh/m³), arrival windows, costs of shortage — is digested."""
    parts: list = ["day-ahead", flexible, *dispatch_structure(grid, options or DispatchOptions(), initial_state)]
    if water is not None:
        st = water.storages.drop(columns=[c for c in ("v_min_m3", "v_max_m3", "v_init_m3", "v_end_m3")
                                          if c in water.storages])
        masked = ["q_min_m3h", "max_volume_m3"] + ([] if water.discrete else ["q_max_m3h"])
        tr = water.transfers.drop(columns=[c for c in masked if c in water.transfers])
        allowance = (np.isfinite(water.transfers["max_volume_m3"].to_numpy(float))
                     if "max_volume_m3" in water.transfers else None)
        parts += ["water", st, tr, allowance, list(map(str, water.demand_m3h.columns)), water.demand_m3h.index,
                  water.shortage_cost, water.discrete, water.follow_demand or not flexible, water.name]
    if ev is not None:
        if ev.as_soon_as_possible or not flexible:  # charging fixed from the energies: every number shapes it
            parts += ["ev", ev.hubs, ev.sessions]
        else:
            parts += ["ev", ev.hubs.drop(columns=["p_max_mw"]), ev.sessions[["hub", "arrival_h", "departure_h"]],
                      ev.unserved_cost, ev.name]
    return content_digest(*parts)


def resolve_day_ahead(dm: DispatchModel, grid: Grid, water: WaterWorks | None = None, ev: EVCharging | None = None,
                      *, warm: bool = False) -> DayAheadSchedule:
    """Solve another day-ahead problem of the same structure (equal :func:`day_ahead_structure` digests) on the
    model ``dm`` built and solved before: its numbers are changed in place and HiGHS re-solves, nothing is
    rebuilt.  ``warm=False`` (default) solves from scratch, which gives exactly what a new model gives;
    ``warm=True`` starts from the last basis (faster on large models; a degenerate problem may then end at
    another optimal vertex of equal cost).  On an error the model may be part-updated: rebuild it."""
    wext = next((e for e in dm.extensions if isinstance(e, WaterWorks)), None)
    eext = next((e for e in dm.extensions if isinstance(e, EVCharging)), None)
    if (water is None) != (wext is None) or (ev is None) != (eext is None):
        raise DispatchInputError("resolve_day_ahead: the water works / EV charging differ from the model's")
    if dm.highs is None or dm.model is None:
        raise DispatchInputError("resolve_day_ahead needs a model solved once with keep_model=True")
    lp = dm.highs.highs.getLp()
    now = (np.asarray(lp.row_lower_, float), np.asarray(lp.row_upper_, float))
    refresh_dispatch(dm, grid)
    if wext is not None:
        wext.refresh(dm.model, dm.data, dm.highs, water, now)
    if eext is not None:
        eext.refresh(dm.model, dm.data, dm.highs, ev, now)
    return _schedule(dm, grid, solve_dispatch(dm, warm=warm))


def _schedule(dm: DispatchModel, grid: Grid, sol: DispatchSolution) -> DayAheadSchedule:
    """The schedule's tables from a solved joint model."""
    d, h, m = dm.data, dm.highs, dm.model
    idx = sol.generation.index
    T = d.T
    wext = next((e for e in dm.extensions if isinstance(e, WaterWorks)), None)
    eext = next((e for e in dm.extensions if isinstance(e, EVCharging)), None)
    flex = np.zeros((T, len(d.bus_ids)))
    if wext is not None:
        tr, st = wext.transfers, wext.storages
        J, K = len(tr), len(st)
        flow = h.values_of(m.water_flow[j, t] for j in range(J) for t in range(T)).reshape(J, T).T
        vol = h.values_of(m.water_volume[k, t] for k in range(K) for t in range(T)).reshape(K, T).T
        short = h.values_of(m.water_shortage[k, t] for k in range(K) for t in range(T)).reshape(K, T).T
        power = flow * wext._kw[None, :] / 1000.0
        np.add.at(flex.T, wext._bus, power.T)
        water_flow = pd.DataFrame(flow, index=idx, columns=tr.index)
        water_power = pd.DataFrame(power, index=idx, columns=tr.index)
        water_volume = pd.DataFrame(vol, index=idx, columns=st.index)
        water_short = pd.DataFrame(short, index=idx, columns=st.index)
    else:
        water_flow = water_power = water_volume = water_short = pd.DataFrame(index=idx)
    if eext is not None:
        hubs, ses = eext.hubs, eext.sessions
        by_hub = np.zeros((T, len(hubs)))
        by_session = np.zeros((T, len(ses)))
        hub_pos = hubs.index.get_indexer(ses["hub"])
        for s, ts in enumerate(eext._win):
            vals = h.values_of(m.ev_charge[s, t] for t in ts)
            by_hub[ts, hub_pos[s]] += vals
            by_session[ts, s] = vals
        ev_session = pd.DataFrame(by_session, index=idx, columns=ses.index)
        np.add.at(flex.T, eext._bus_of_hub, by_hub.T)
        ev_charging = pd.DataFrame(by_hub, index=idx, columns=hubs.index)
        ev_unserved = pd.Series(h.values_of(m.ev_unserved[s] for s in range(len(ses))), index=ses.index,
                                name="unserved_mwh")
    else:
        ev_charging, ev_unserved = pd.DataFrame(index=idx), pd.Series(dtype=float, name="unserved_mwh")
        ev_session = pd.DataFrame(index=idx)
    renew = list(grid.series["generator.p_max_pu"].columns) if "generator.p_max_pu" in grid.series else []
    renew = [g for g in renew if g in sol.curtailment.columns]
    return DayAheadSchedule(dispatch=sol, water_flow=water_flow, water_power=water_power, water_volume=water_volume,
                            water_shortage=water_short, ev_charging=ev_charging, ev_unserved=ev_unserved,
                            flexible_load=pd.DataFrame(flex, index=idx, columns=d.bus_ids),
                            curtailment=sol.curtailment[renew], objective=sol.objective,
                            cost_breakdown=dict(sol.cost_breakdown), ev_session_charging=ev_session,
                            timings=dict(sol.timings), model=dm)
