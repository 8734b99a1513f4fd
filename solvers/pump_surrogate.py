"""A linear surrogate of a water network's tanks around an operating trajectory, from the twin's hydraulic solver.

The pump scheduler (:mod:`solvers.pump_scheduling`) needs, for every schedule step t, how each tank's net
inflow and each pump's power respond to the pump states and to the tank levels.  They are measured on the
network itself, not assumed: at the start of each step the hydraulic solver (:func:`~twin.water.
simulate_hydraulics`, a single snapshot at that step's demand multipliers) is run

* at the reference state (unit states ū_t, tank levels ĥ_t): tank inflows q̂_kt;
* with one *unit* switched to each of its other states s, the others at reference:
  Δq_kust = q_k(ū with u→s) − q̂_kt and the unit's power in that state P_ust;
* with one tank's level raised by δ: the sensitivities B_kjt = ∂q_k/∂h_j (forward difference).

A unit is a pump, or a group of identical pumps in parallel (same nodes, curves and prices): its states
are how many of them run (and at which speed), each measured as such — parallel pumps on one main do not
add their flows, so a per-pump linearisation would be wrong by the whole interaction.  So
q_kt ≈ q̂_kt + Σ_u Σ_s Δq_kust x_ust + Σ_j B_kjt (h_jt − ĥ_jt), exact at the reference and at every
single-unit change; interactions between units switched together and the level dependence of power are
left to the closed loop (re-linearising around the simulated trajectory).  With the step equal to the
hydraulic step, EPANET's own tank update (flows at the step's start held over the step) is the explicit
Euler step the scheduler uses, so the only model error is this linearisation.

Links whose controls mirror a scheduled pump's (same tank and levels, opposite actions — Net3's bypass
pipe 330 around pump 335) are its *companions*: closed while the pump runs, open while it is off.  Other
controlled links keep, in each snapshot, the status and setting they had in the reference simulation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.water import WaterNetwork, simulate_hydraulics
from twin.water.schedule import schedule_network, set_link_status

__all__ = ["TankSurrogate", "find_companions", "measure_surrogate", "schedule_network", "tank_area",
           "tank_levels", "install_tariff", "step_states", "unit_state_index"]

_FLIP = {"OPEN": "CLOSED", "CLOSED": "OPEN"}


@dataclass
class TankSurrogate:
    """Per-step linear response of tank inflows (m³/s) and unit powers (kW) to unit states and tank levels.

    ``units``: the pump ids of each unit; ``unit_states[u]``: its states as (pumps running, speed), state 0
    = (0, 0.0).  Arrays: ``q_ref`` (T × K), ``dq`` (T × K × U × S: change of tank inflow when unit u is in
    state s, zero at its reference state; S = the most states of a unit, padded), ``power`` (T × U × S, kW),
    ``dq_dh`` (T × K × K, m³/s per m), ``level_ref`` (T × K, m), ``area`` (T × K, m²), ``state_ok`` (U × S)."""

    tanks: list[str]
    units: list[list[str]]
    unit_states: list[list[tuple[int, float]]]
    q_ref: np.ndarray
    dq: np.ndarray
    power: np.ndarray
    dq_dh: np.ndarray
    level_ref: np.ndarray
    area: np.ndarray
    state_ok: np.ndarray
    snapshots: int

    def running(self, u: int, s: int) -> int:
        """Pumps running in state s of unit u."""
        return self.unit_states[u][s][0]

    def pump_speeds(self, u: int, s: int) -> list[float]:
        """The speed of each pump of unit u in state s (0 = off): the first n run."""
        n, speed = self.unit_states[u][s]
        return [speed if i < n else 0.0 for i in range(len(self.units[u]))]


def unit_state_index(states: list[tuple[int, float]], speeds: np.ndarray) -> int:
    """The state of a unit whose pumps run at ``speeds`` (0 = off): the count running, at their mean speed
    rounded to the nearest allowed one."""
    n = int((speeds > 0).sum())
    if n == 0:
        return 0
    mean = float(speeds[speeds > 0].mean())
    cands = [i for i, (k, _v) in enumerate(states) if k == n]
    if not cands:  # more pumps than the states know: the largest count
        top = max(k for k, _v in states)
        cands = [i for i, (k, _v) in enumerate(states) if k == top]
    return min(cands, key=lambda i: abs(states[i][1] - mean))


def tank_area(wn: WaterNetwork, tank: str, level_m: float) -> float:
    """Surface area (m²) of a tank at a level: π d²/4, or the slope of its volume curve at that level."""
    row = wn.tank.loc[tank]
    curve = str(row["volume_curve"])
    if not curve:
        return float(np.pi * row["diameter_m"] ** 2 / 4.0)
    c = wn.curves[curve]
    if len(c.x) < 2:
        return float(np.pi * row["diameter_m"] ** 2 / 4.0)
    i = int(np.clip(np.searchsorted(c.x, level_m) - 1, 0, len(c.x) - 2))
    return float((c.y[i + 1] - c.y[i]) / (c.x[i + 1] - c.x[i]))


def find_companions(wn: WaterNetwork, pumps: Sequence[str]) -> dict[str, str]:
    """Non-pump links whose level/pressure controls are a pump's with opposite actions (link → pump)."""
    sig: dict[str, set] = {}
    for c in wn.controls:
        if c.enabled and c.condition in ("ABOVE", "BELOW") and c.action in _FLIP:
            sig.setdefault(c.link, set()).add((c.node, c.condition, round(c.value, 9), c.action))
    out = {}
    for p in pumps:
        if p not in sig:
            continue
        mirrored = {(n, cond, v, _FLIP[a]) for n, cond, v, a in sig[p]}
        for link, s in sig.items():
            if link not in wn.pump.index and s == mirrored:
                out[link] = p
    return out


def install_tariff(wn: WaterNetwork, pumps: Sequence[str], price: np.ndarray, step_s: int) -> None:
    """Make ``price`` (steps × pumps, per kWh, from the simulation start) the energy price of the pumps, as
    price patterns at the network's pattern step (in place)."""
    tm = wn.times
    pstep = tm.pattern_step_s or 3600
    if step_s % pstep:
        raise ValueError(f"the schedule step ({step_s} s) must be a multiple of the pattern step ({pstep} s)")
    rep = step_s // pstep
    shift = (tm.pattern_start_s // pstep) % max(1, price.shape[0] * rep)
    for j, p in enumerate(pumps):
        pat = np.repeat(price[:, j], rep)
        pat = np.roll(pat, shift)  # pattern period (pstart + t)/pstep must read the price of time t
        name = f"tariff_{p}"
        wn.patterns[name] = pat.astype(float)
        wn.pump.loc[p, "energy_price"] = 1.0
        wn.pump.loc[p, "price_pattern"] = name


def tank_levels(result, wn: WaterNetwork, tanks: Sequence[str]) -> pd.DataFrame:
    """Tank levels (m above the tank bottom) from a hydraulic result (rows: its reporting times)."""
    el = wn.tank.loc[list(tanks), "elevation_m"].to_numpy(float)
    return result.node_head[list(tanks)] - el


def step_states(result, pumps: Sequence[str], times: np.ndarray) -> np.ndarray:
    """Pump states (speed, 0 = off) at given times from a hydraulic result (times × pumps)."""
    st = result.link_status[list(pumps)].reindex(times, method="ffill")
    sp = result.link_setting[list(pumps)].reindex(times, method="ffill")
    on = (st.to_numpy() == "OPEN")
    return np.where(on, sp.to_numpy(float), 0.0)


class _Snapshots:
    """One working copy of the network, re-used for every snapshot (only statuses, levels and the pattern
    clock change between them)."""

    def __init__(self, wn: WaterNetwork, pumps: Sequence[str], companions: Mapping[str, str],
                 frozen: Sequence[str]):
        self.base = wn
        w = wn.copy()
        w.controls = []
        w.rules = []
        w.times.duration_s = 0
        self.w = w
        self.pumps = list(pumps)
        self.comp = dict(companions)
        self.frozen = list(frozen)  # other controlled links: status/setting from the reference simulation
        self.count = 0
        self.pattern_start = wn.times.pattern_start_s
        for p in self.pumps:
            w.pump.loc[p, "speed_pattern"] = ""

    def set_clock(self, t_s: int) -> None:
        self.w.times.pattern_start_s = self.pattern_start + int(t_s)

    def set_frozen(self, status: Mapping[str, str], setting: Mapping[str, float]) -> None:
        w = self.w
        for link in self.frozen:
            set_link_status(w, link, status[link] if status[link] in ("OPEN", "CLOSED") else "OPEN")
            if link in w.valve.index:
                if np.isfinite(setting[link]):
                    w.valve.loc[link, "setting"] = float(setting[link])
                w.valve.loc[link, "initial_status"] = "ACTIVE" if status[link] == "ACTIVE" else status[link]
            elif link in w.pump.index and status[link] == "OPEN" and np.isfinite(setting[link]):
                w.pump.loc[link, "speed"] = float(setting[link])

    def run(self, states: np.ndarray, levels: Mapping[str, float], tanks: Sequence[str]
            ) -> tuple[np.ndarray, np.ndarray]:
        w = self.w
        for p, s in zip(self.pumps, states):
            if s > 0:
                w.pump.loc[p, "initial_status"] = "OPEN"
                w.pump.loc[p, "speed"] = float(s)
            else:
                w.pump.loc[p, "initial_status"] = "CLOSED"
        for link, p in self.comp.items():
            set_link_status(w, link, "CLOSED" if states[self.pumps.index(p)] > 0 else "OPEN")
        for k, lev in levels.items():
            w.tank.loc[k, "init_level_m"] = float(lev)
        r = simulate_hydraulics(w, duration_s=0)
        self.count += 1
        inflow = r.node_demand[list(tanks)].to_numpy(float)[0]
        power = r.pump_power[self.pumps].to_numpy(float)[0] if self.pumps else np.zeros(0)
        return inflow, np.nan_to_num(power)


def measure_surrogate(wn: WaterNetwork, units: Sequence[Sequence[str]], unit_states: Sequence[Sequence[tuple]],
                      ref_states: np.ndarray, ref_levels: np.ndarray, step_s: int,
                      companions: Mapping[str, str], frozen_status: pd.DataFrame | None = None,
                      frozen_setting: pd.DataFrame | None = None, level_step_m: float = 0.05) -> TankSurrogate:
    """Measure the :class:`TankSurrogate` along a reference trajectory.

    ``units``: pump ids per unit; ``unit_states``: (pumps running, speed) per unit state, state 0 = off;
    ``ref_states``: steps × units (state index); ``ref_levels``: steps × tanks (m, at each step's start);
    ``frozen_status``/``frozen_setting``: statuses of other controlled links at each step start (rows =
    step index), from the reference simulation."""
    tanks = list(wn.tank.index)
    pumps = [p for u in units for p in u]
    T, K, U = ref_states.shape[0], len(tanks), len(units)
    S = max(len(st) for st in unit_states)
    ok = np.zeros((U, S), bool)
    for u, st in enumerate(unit_states):
        ok[u, : len(st)] = True
    frozen = list(frozen_status.columns) if frozen_status is not None else []
    snap = _Snapshots(wn, pumps, companions, frozen)
    sg = TankSurrogate(tanks=tanks, units=[list(u) for u in units], unit_states=[list(s) for s in unit_states],
                       q_ref=np.zeros((T, K)), dq=np.zeros((T, K, U, S)), power=np.zeros((T, U, S)),
                       dq_dh=np.zeros((T, K, K)), level_ref=np.asarray(ref_levels, float), area=np.zeros((T, K)),
                       state_ok=ok, snapshots=0)
    pos = {p: i for i, p in enumerate(pumps)}

    def speeds(states: np.ndarray) -> np.ndarray:
        out = np.zeros(len(pumps))
        for u, s in enumerate(states):
            for p, v in zip(units[u], sg.pump_speeds(u, int(s))):
                out[pos[p]] = v
        return out

    def unit_power(pw: np.ndarray, u: int) -> float:
        return float(sum(pw[pos[p]] for p in units[u]))

    max_level = wn.tank["max_level_m"].to_numpy(float)
    for t in range(T):
        snap.set_clock(t * step_s)
        if frozen:
            snap.set_frozen(frozen_status.iloc[t].to_dict(), frozen_setting.iloc[t].to_dict())
        lev = dict(zip(tanks, ref_levels[t]))
        ref = ref_states[t].astype(int)
        q0, p0 = snap.run(speeds(ref), lev, tanks)
        sg.q_ref[t] = q0
        for u in range(U):
            for s in range(len(unit_states[u])):
                if s == ref[u]:
                    sg.power[t, u, s] = unit_power(p0, u)
                    continue
                alt = ref.copy()
                alt[u] = s
                q1, p1 = snap.run(speeds(alt), lev, tanks)
                sg.dq[t, :, u, s] = q1 - q0
                sg.power[t, u, s] = unit_power(p1, u)
        for i, k in enumerate(tanks):
            d = level_step_m if ref_levels[t, i] + level_step_m <= max_level[i] else -level_step_m
            lev2 = dict(lev)
            lev2[k] = ref_levels[t, i] + d
            q2, _ = snap.run(speeds(ref), lev2, tanks)
            sg.dq_dh[t, :, i] = (q2 - q0) / d
            sg.area[t, i] = tank_area(wn, k, ref_levels[t, i])
    sg.snapshots = snap.count
    return sg
