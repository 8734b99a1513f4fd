"""Extended-period hydraulic simulation (EPANET 2.2/2.3 semantics).

The time loop mirrors EPANET's ``runH``/``nextH``: at each hydraulic time
demands, fixed heads and pump speed patterns are applied, time and tank-level
controls fire, the network is balanced by the Global Gradient Algorithm (the
Cython kernel :mod:`twin._ext.hydraulics`), pump energy is accounted, and
the next step is the shortest of the hydraulic step, the next pattern
period, the next reporting time, a tank filling or emptying, and a control
triggering.  Results are kept at the reporting times.
"""

from __future__ import annotations

import time as _time
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from .._ext import hydraulics as _k
from . import units as U
from .compile import (
    CLOSED,
    CONST_HP,
    HILEVEL,
    LOWLEVEL,
    MISSING,
    OPEN,
    PIPE,
    PUMP,
    TIMEOFDAY,
    TIMER,
    XFCV,
    XHEAD,
    CompiledWater,
    NetworkError,
    _interp,
    compile_water,
)
from .network import WaterNetwork
from .results import HydraulicResult
from .rules import RuleEngine

__all__ = ["simulate_hydraulics", "HydraulicWarning", "NetworkError"]


class HydraulicWarning(UserWarning):
    """An abnormal hydraulic condition (unbalanced step, negative pressure, pump or valve
    that cannot deliver, disconnected nodes)."""


def _round(x: np.ndarray) -> np.ndarray:
    """EPANET's ROUND(): half away from zero, truncated to an integer."""
    return np.where(x >= 0, np.trunc(x + 0.5), np.trunc(x - 0.5))


class _Simulation:
    def __init__(self, cw: CompiledWater, wn: WaterNetwork, duration_s: int):
        self.cw = cw
        self.wn = wn
        n = cw.net
        self.nj, self.nn, self.nl = n["nj"], n["nn"], n["nl"]
        self.nr = cw.n_res
        self.dur = duration_s
        tm = wn.times
        self.hstep = tm.hydraulic_step_s if tm.hydraulic_step_s > 0 else 3600
        self.pstep = tm.pattern_step_s if tm.pattern_step_s > 0 else 3600
        self.rstep = tm.report_step_s if tm.report_step_s > 0 else self.pstep
        self.hstep = min(self.hstep, self.pstep, self.rstep)
        self.pstart = tm.pattern_start_s
        self.rstart = tm.report_start_s if tm.report_start_s <= duration_s else 0
        self.tstart = tm.start_clocktime_s
        ldl = _k.LDLPattern(self.nj, cw.ldl_ap, cw.ldl_ai)
        self.solver = _k.GGASolver(n, cw.opts, ldl, cw.pairpos)
        self.H = np.zeros(self.nn)
        self.Q = cw.init_flow.copy()
        self.status = cw.init_status.astype(np.int32).copy()
        self.setting = cw.init_setting.copy()
        self.dflow = np.zeros(self.nn)
        self.full = np.zeros(self.nn)
        self.eflow = np.where(n["ke"] > 0, U.CFS, 0.0)  # EPANET starts emitters at 1 cfs
        self.node_out = np.zeros(self.nn)
        self.solver.bind(self.H, self.Q, self.status, self.setting, self.dflow, self.full, self.eflow,
                         self.node_out)
        self.tank_nodes = np.arange(self.nj + self.nr, self.nn)
        self.V = cw.tank_v0.copy()
        self.H[self.tank_nodes] = cw.tank_h0
        self.H[self.nj:self.nj + self.nr] = cw.res_head
        self.tank_hmin = n["tank_hmin"][self.nr:]
        self.tank_hmax = n["tank_hmax"][self.nr:]
        self.ltype = n["ltype"]
        self.pump_links = cw.pump_links
        self.ptype = n["ptype"]
        self.pQ0 = n["pQ0"]
        self.dmult = wn.options.demand_multiplier
        # controls
        c = cw.controls
        self.nc = len(c.get("link", []))
        if self.nc:
            node = c["node"]
            self.c_is_tank = (node >= self.nj) & c["enabled"]
            self.c_tank = np.where(node >= self.nj + self.nr, node - self.nj - self.nr, -1)
            self.c_v2 = self.tank_volumes(self.c_tank, c["grade"])
            self.c_level = np.flatnonzero(self.c_is_tank)
            self.c_timer = np.flatnonzero(c["enabled"] & (c["type"] == TIMER))
            self.c_tod = np.flatnonzero(c["enabled"] & (c["type"] == TIMEOFDAY))
            self.c_setting_matters = self.ltype[c["link"]] > PIPE
        self.pump_qmax = np.array([self._pump_qmax(i) for i in range(len(self.pump_links))])
        # energy accounting
        np_ = len(self.pump_links)
        self.e_online = np.zeros(np_)
        self.e_eff = np.zeros(np_)
        self.e_kwh = np.zeros(np_)
        self.e_kwh_per_flow = np.zeros(np_)
        self.e_peak = np.zeros(np_)
        self.e_cost = np.zeros(np_)
        self.e_max_total = 0.0
        self.cur_kw = np.zeros(np_)
        self.cur_eff = np.zeros(np_)
        self.messages: list[tuple[int, str, str]] = []
        self.node_demand = np.zeros(self.nn)
        self.system_demand = 0.0
        rs = tm.rule_step_s if tm.rule_step_s > 0 else self.hstep // 10
        self.rule_step = max(1, min(rs, self.hstep))
        self.rules = RuleEngine(wn.rules, self) if wn.rules else None

    # -- EPANET helpers ------------------------------------------------------------
    def tank_volume(self, i: int, h: float) -> float:
        cw = self.cw
        c = cw.tank_curve[i]
        if c < 0:
            area = self.cw.net["tank_area"][self.nr + i]
            return cw.tank_vmin[i] + (h - self.tank_hmin[i]) * area
        return _interp(cw.curves_x[c], cw.curves_y[c], h - cw.tank_elev[i])

    def tank_volumes(self, tanks: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`tank_volume` (``tanks`` = tank indices, -1 for reservoirs → 0)."""
        cw = self.cw
        ti = np.maximum(tanks, 0)
        area = cw.net["tank_area"][self.nr + ti] if len(cw.tank_vmin) else np.zeros(len(ti))
        v = np.where(tanks >= 0, cw.tank_vmin[ti] + (h - self.tank_hmin[ti]) * area, 0.0) if len(cw.tank_vmin) \
            else np.zeros(len(ti))
        for j in np.flatnonzero((tanks >= 0) & (cw.tank_curve[ti] >= 0) if len(cw.tank_vmin) else []):
            v[j] = self.tank_volume(int(tanks[j]), float(h[j]))
        return v

    def tank_grade(self, i: int, v: float) -> float:
        cw = self.cw
        c = cw.tank_curve[i]
        if c < 0:
            area = self.cw.net["tank_area"][self.nr + i]
            return self.tank_hmin[i] + (v - cw.tank_vmin[i]) / area
        return cw.tank_elev[i] + _interp(cw.curves_y[c], cw.curves_x[c], v)

    def pattern_factors(self, period: int) -> np.ndarray:
        """Multiplier of every pattern at pattern period ``period`` (plus a trailing 1.0 for 'none')."""
        out = np.ones(len(self.cw.patterns) + 1)
        for i, p in enumerate(self.cw.patterns):
            out[i] = p[period % len(p)]
        return out

    def reset_pump_flow(self, k: int) -> None:
        p = k - self.pump_links[0]
        if self.ptype[p] == CONST_HP:
            self.Q[k] = self.pQ0[p]

    def demands(self, t: int) -> None:
        cw = self.cw
        p = (t + self.pstart) // self.pstep
        f = self.pattern_factors(p)
        d = cw.demand_base * f[cw.demand_pattern] * self.dmult
        self.full[:] = 0.0
        if len(d):
            self.full[: self.nj] = np.bincount(cw.demand_junction, weights=d, minlength=self.nj)[: self.nj]
        self.dflow[:] = self.full
        self.system_demand = float(d[d > 0].sum())
        if self.nr:
            self.H[self.nj:self.nj + self.nr] = cw.res_head * f[cw.res_pattern]
        for i, pat in enumerate(cw.pump_speed_pattern):
            if pat < 0:
                continue
            k = self.pump_links[i]
            value = f[pat]
            self.setting[k] = value
            if value > 0 and self.status[k] <= CLOSED:
                self.reset_pump_flow(k)
                self.status[k] = OPEN
            if value == 0 and self.status[k] > CLOSED:
                self.status[k] = CLOSED

    def controls(self, t: int) -> None:
        if not self.nc:
            return
        c = self.cw.controls
        fire = np.zeros(self.nc, dtype=bool)
        idx = self.c_level
        if len(idx):
            n = c["node"][idx]
            v1 = self.tank_volumes(self.c_tank[idx], self.H[n])
            vplus = np.abs(self.node_out[n])
            v2 = self.c_v2[idx]
            typ = c["type"][idx]
            fire[idx] = ((typ == LOWLEVEL) & (v1 <= v2 + vplus)) | ((typ == HILEVEL) & (v1 >= v2 - vplus))
        en = c["enabled"]
        fire |= en & (c["type"] == TIMER) & (c["time"] == t)
        fire |= en & (c["type"] == TIMEOFDAY) & (((t + self.tstart) % U.SEC_PER_DAY) == c["time"])
        for i in np.flatnonzero(fire):
            k = c["link"][i]
            s1 = CLOSED if self.status[k] <= CLOSED else OPEN
            s2 = c["status"][i]
            k1 = self.setting[k]
            k2 = k1 if self.ltype[k] <= PIPE else c["setting"][i]
            if self.ltype[k] == PUMP and s1 == CLOSED and s2 == OPEN:
                self.reset_pump_flow(k)
            if s1 != s2 or k1 != k2:
                self.status[k] = s2
                self.setting[k] = k2

    def timestep(self, t: int, rtime: int) -> int:
        tstep = self.hstep
        n = (t + self.pstart) // self.pstep + 1
        dt = n * self.pstep - t
        if 0 < dt < tstep:
            tstep = dt
        dt = rtime - t
        if 0 < dt < tstep:
            tstep = dt
        tstep = self.tank_timestep(tstep)
        tstep = self.control_timestep(t, tstep)
        if self.rules is not None:
            return self.rules.timestep(t, tstep, self.rule_step)
        self.tank_levels(tstep)
        return tstep

    def tank_timestep(self, tstep: int) -> int:
        if not len(self.tank_nodes):
            return tstep
        h = self.H[self.tank_nodes]
        q = self.node_out[self.tank_nodes]
        fill = (q > U.QZERO) & (h < self.tank_hmax)
        drain = (q < -U.QZERO) & (h > self.tank_hmin)
        v = np.where(fill, self.cw.tank_vmax - self.V, self.cw.tank_vmin - self.V)
        with np.errstate(divide="ignore", invalid="ignore"):
            xt = np.where(fill | drain, v / np.where(q == 0, 1.0, q), np.inf)
        ok = (fill | drain) & (np.abs(xt) <= tstep + 1)
        if ok.any():
            t = _round(xt[ok])
            t = t[(t > 0) & (t < tstep)]
            if len(t):
                tstep = int(t.min())
        return tstep

    def control_timestep(self, now: int, tstep: int) -> int:
        if not self.nc:
            return tstep
        c = self.cw.controls
        t = np.zeros(self.nc)
        idx = self.c_level
        if len(idx):
            n = c["node"][idx]
            h, q, g, typ = self.H[n], self.node_out[n], c["grade"][idx], c["type"][idx]
            rising = (h < g) & (typ == HILEVEL) & (q > 0)
            falling = (h > g) & (typ == LOWLEVEL) & (q < 0)
            ok = (np.abs(q) > U.QZERO) & (rising | falling)
            if ok.any():
                ti = self.c_tank[idx]
                vol = np.where(ti >= 0, self.V[np.maximum(ti, 0)], 0.0) if len(self.V) else np.zeros(len(ti))
                with np.errstate(divide="ignore", invalid="ignore"):
                    t[idx] = np.where(ok, _round((self.c_v2[idx] - vol) / np.where(ok, q, 1.0)), 0.0)
        tm = self.c_timer
        if len(tm):
            later = c["time"][tm] > now
            t[tm] = np.where(later, c["time"][tm] - now, 0)
        td = self.c_tod
        if len(td):
            t1 = (now + self.tstart) % U.SEC_PER_DAY
            t2 = c["time"][td]
            t[td] = np.where(t2 >= t1, t2 - t1, U.SEC_PER_DAY - t1 + t2)
        cand = (t > 0) & (t < tstep)
        if not cand.any():
            return tstep
        i = np.flatnonzero(cand)
        k = c["link"][i]
        change = (self.c_setting_matters[i] & (self.setting[k] != c["setting"][i])) | (self.status[k] != c["status"][i])
        if change.any():
            return int(t[i[change]].min())
        return tstep

    def tank_levels(self, tstep: int) -> None:
        if not len(self.tank_nodes):
            return
        cw = self.cw
        for i, n in enumerate(self.tank_nodes):
            q = self.node_out[n]
            if abs(q) <= U.QZERO:
                continue
            self.V[i] += q * tstep
            if self.V[i] + q >= cw.tank_vmax[i]:
                self.V[i] = cw.tank_vmax[i]
            elif self.V[i] - q <= cw.tank_vmin[i]:
                self.V[i] = cw.tank_vmin[i]
            self.H[n] = self.tank_grade(i, self.V[i])

    # -- energy -----------------------------------------------------------------------
    def pump_energy(self) -> None:
        cw = self.cw
        ks = self.pump_links
        if not len(ks):
            return
        eff0 = self.wn.energy.efficiency_pct
        spgr = self.wn.options.specific_gravity
        n1, n2 = cw.net["n1"], cw.net["n2"]
        for i, k in enumerate(ks):
            if self.status[k] <= CLOSED:
                self.cur_kw[i] = self.cur_eff[i] = 0.0
                continue
            q = abs(self.Q[k])
            dh = abs(self.H[n1[k]] - self.H[n2[k]])
            e = eff0
            c = cw.pump_eff_curve[i]
            speed = self.setting[k]
            if c >= 0:
                e = _interp(cw.curves_x[c], cw.curves_y[c], q / speed)
                e = 100.0 - (100.0 - e) * (1.0 / speed) ** 0.1
            e = min(max(e, 1.0), 100.0) / 100.0
            self.cur_kw[i] = U.POWER_K * spgr * q * dh / e
            self.cur_eff[i] = e

    def add_energy(self, t: int, hstep: int) -> None:
        if self.dur == 0:
            dt = 1.0
        elif t < self.dur:
            dt = hstep / 3600.0
        else:
            return
        if dt == 0.0:
            return
        cw = self.cw
        en = self.wn.energy
        n = (t + self.pstart) // self.pstep
        f = self.pattern_factors(n)
        f0 = f[self.cw.pattern_ids.index(en.price_pattern)] if en.price_pattern else 1.0
        psum = 0.0
        for i, k in enumerate(self.pump_links):
            if self.cur_eff[i] == 0.0:
                continue
            q = max(U.QZERO, abs(self.Q[k]))
            price = cw.pump_price[i]
            c = price if price > 0 else en.price
            pp = cw.pump_price_pattern[i]
            c *= f[pp] if pp >= 0 else f0
            p = self.cur_kw[i]
            psum += p
            self.e_online[i] += dt
            self.e_eff[i] += self.cur_eff[i] * dt
            self.e_kwh_per_flow[i] += p / q * dt
            self.e_kwh[i] += p * dt
            self.e_peak[i] = max(self.e_peak[i], p)
            self.e_cost[i] += c * p * dt
        self.e_max_total = max(self.e_max_total, psum)

    # -- warnings ---------------------------------------------------------------------------
    def check(self, t: int, iterations: int, relerr: float, max_iter: int, hacc: float, dda: bool) -> bool:
        cw = self.cw
        ids = cw.link_ids
        flag = False
        msgs = self.messages
        if iterations > max_iter and relerr <= hacc:
            msgs.append((t, "", "system unstable: converged only after status changes were frozen"))
            flag = True
        if dda and self.nj:
            el = cw.net["elev"][: self.nj]
            neg = np.flatnonzero((self.H[: self.nj] < el) & (self.full[: self.nj] > 0))
            for i in neg:
                msgs.append((t, str(cw.node_ids[i]), f"negative pressure {self.H[i] - el[i]:.3f} m at a demand "
                                                      "junction"))
            flag |= bool(len(neg))
        for k in np.flatnonzero(self.ltype > PUMP):
            s = self.status[k]
            if s >= XFCV:
                what = "flow" if s == XFCV else "pressure"
                msgs.append((t, str(ids[k]), f"valve cannot deliver {what}"))
                flag = True
        for i, k in enumerate(self.pump_links):
            s = self.status[k]
            qmax = self.pump_qmax[i]
            if s >= OPEN:
                if self.Q[k] > self.setting[k] * qmax:
                    s = -1
                if self.Q[k] < 0.0:
                    s = XHEAD
            if s == XHEAD:
                msgs.append((t, str(ids[k]), "pump cannot deliver head (closed)"))
                flag = True
            elif s == -1:
                msgs.append((t, str(ids[k]), "pump cannot deliver flow (beyond its curve)"))
                flag = True
        if iterations > max_iter and relerr > hacc:
            msgs.append((t, "", f"system unbalanced: relative flow change {relerr:.3g} > accuracy {hacc:g} "
                                f"after {iterations - 1} trials"))
            flag = True
        if flag:
            self.disconnected(t)
        return flag

    def _pump_qmax(self, i: int) -> float:
        cw = self.cw
        pt = self.ptype[i]
        if pt == CONST_HP:
            return U.BIG
        if pt == 2:  # CUSTOM
            return float(cw.curves_x[cw.net["pcurve"][i]][-1])
        a, b, c = -cw.net["pH0"][i], -cw.net["pR"][i], cw.net["pN"][i]
        return (-a / b) ** (1.0 / c)

    def disconnected(self, t: int) -> None:
        """Junctions with demand that no open link path joins to a tank or reservoir."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n1, n2 = self.cw.net["n1"], self.cw.net["n2"]
        up = self.status > CLOSED
        g = coo_matrix((np.ones(int(up.sum())), (n1[up], n2[up])), shape=(self.nn, self.nn))
        _, lab = connected_components(g, directed=False)
        fed = np.zeros(lab.max() + 1, dtype=bool)
        fed[lab[self.nj:]] = True
        cut = np.flatnonzero(~fed[lab[: self.nj]] & (self.full[: self.nj] > 0))
        for i in cut:
            self.messages.append((t, str(self.cw.node_ids[i]), "disconnected from every tank and reservoir"))


def simulate_hydraulics(
    wn: WaterNetwork,
    duration_s: int | None = None,
    demand_model: str = "DDA",
    *,
    accuracy: float | None = None,
    trials: int | None = None,
) -> HydraulicResult:
    """Run an extended-period hydraulic simulation of ``wn`` (not modified).

    ``duration_s`` overrides ``wn.times.duration_s``; ``demand_model`` is
    ``"DDA"`` (demand driven) or ``"PDA"`` (pressure driven, Wagner: full
    demand above ``options.required_pressure_m``, none below
    ``options.minimum_pressure_m``, ``options.pressure_exponent`` between);
    ``accuracy`` (relative flow change) and ``trials`` override the options.

    Returns a :class:`~twin.water.results.HydraulicResult`.  Unbalanced steps,
    negative pressures, pumps and valves that cannot deliver and disconnected
    nodes are listed in ``messages`` and summarised by a
    :class:`HydraulicWarning`; with ``options.unbalanced == "STOP"`` an
    unbalanced step halts the run (``halted_at_s``), as EPANET does.
    Raises :class:`~twin.water.compile.NetworkError` when the network cannot
    be simulated or its equations cannot be solved (naming the node).
    """
    t0 = _time.perf_counter()
    model = demand_model.upper()
    cw = compile_water(wn, accuracy=accuracy, demand_model=model, trials=trials)
    dur = int(wn.times.duration_s if duration_s is None else duration_s)
    if dur < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
    t_compile = _time.perf_counter() - t0
    sim = _Simulation(cw, wn, dur)
    solver = sim.solver
    nj = sim.nj
    max_iter, hacc = cw.opts["max_iter"], cw.opts["hacc"]
    halt_on_unbalanced = cw.opts["extra_iter"] == -1
    rec_t: list[int] = []
    rec = {k: [] for k in ("H", "D", "Q", "S", "set", "kw", "eff")}
    steps: list[tuple[int, int, float, bool, bool]] = []
    t = 0
    rtime = sim.rstep
    halted = None
    t_solve = 0.0
    while True:
        sim.demands(t)
        sim.controls(t)
        ts = _time.perf_counter()
        err = solver.solve()
        t_solve += _time.perf_counter() - ts
        if err:
            node = cw.node_ids[solver.bad_node] if solver.bad_node >= 0 else "?"
            raise NetworkError(f"at t = {t} s the hydraulic equations cannot be solved: the matrix is singular at "
                               f"junction {node!r} (EPANET error 110) — check for nodes cut off by closed links, "
                               "pumps or valves")
        it, relerr = solver.iterations, solver.relative_error
        converged = relerr <= hacc
        # total outflow at junctions: demand + emitter flow
        node_demand = sim.node_out.copy()
        node_demand[:nj] = sim.dflow[:nj] + sim.eflow[:nj]
        sim.node_demand = node_demand
        reported = t >= sim.rstart and (t - sim.rstart) % sim.rstep == 0
        steps.append((t, it, relerr, converged, reported))
        sim.pump_energy()
        sim.check(t, it, relerr, max_iter, hacc, model == "DDA")
        if reported:
            rec_t.append(t)
            rec["H"].append(sim.H.copy())
            rec["D"].append(node_demand)
            q = sim.Q.copy()
            q[sim.status <= CLOSED] = 0.0
            rec["Q"].append(q)
            rec["S"].append(sim.status.copy())
            rec["set"].append(sim.setting.copy())
            rec["kw"].append(sim.cur_kw.copy())
            rec["eff"].append(sim.cur_eff.copy())
        if not converged and halt_on_unbalanced:
            halted = t
        if halted is not None:
            t = dur
        hstep = sim.timestep(t, rtime) if t < dur else 0
        sim.add_energy(t, hstep)
        if t < dur:
            t += hstep
            if t >= rtime:
                rtime += sim.rstep
        else:
            break
    wall = _time.perf_counter() - t0
    return _assemble(wn, cw, sim, rec_t, rec, steps, halted, model, wall,
                     {"compile_s": t_compile, "solve_s": t_solve, "total_s": wall})


def _assemble(wn, cw, sim, rec_t, rec, steps, halted, model, wall, timings) -> HydraulicResult:
    idx = pd.Index(rec_t, name="time_s", dtype="int64")
    nodes = pd.Index(cw.node_ids, name="node", dtype=object)
    links = pd.Index(cw.link_ids, name="link", dtype=object)
    nj = cw.nj
    H = np.array(rec["H"]).reshape(len(rec_t), len(nodes))
    P = H - cw.net["elev"]
    P[:, nj:nj + cw.n_res] = 0.0
    Q = np.array(rec["Q"]).reshape(len(rec_t), len(links))
    S = np.array(rec["S"]).reshape(len(rec_t), len(links))
    # EPANET's EN_STATUS: closed (incl. temporarily / cannot deliver head), open, and for valves
    # any state beyond open (active, cannot deliver flow or pressure) reported as active
    ltype = cw.net["ltype"]
    words = np.array(["CLOSED", "CLOSED", "CLOSED", "OPEN", "ACTIVE", "OPEN", "OPEN", "OPEN"], dtype=object)
    status = words[S]
    status[:, ltype > PUMP] = np.where(S[:, ltype > PUMP] > OPEN, "ACTIVE", status[:, ltype > PUMP])
    setting = np.array(rec["set"]).reshape(len(rec_t), len(links))
    setting = np.where(setting == MISSING, np.nan, setting)
    setting[:, ltype <= PIPE] = np.nan
    area = np.pi * cw.net["diam"] ** 2 / 4.0
    with np.errstate(divide="ignore", invalid="ignore"):
        vel = np.where(area > 0, np.abs(Q) / np.where(area > 0, area, 1.0), 0.0)
    vel[:, ltype == PUMP] = 0.0
    pumps = pd.Index(cw.link_ids[cw.pump_links], name="pump", dtype=object)
    kw = np.array(rec["kw"]).reshape(len(rec_t), len(pumps))
    eff = np.array(rec["eff"]).reshape(len(rec_t), len(pumps))
    hours = sim.e_online
    with np.errstate(divide="ignore", invalid="ignore"):
        pe = pd.DataFrame({
            "kwh": sim.e_kwh,
            "hours_online": hours,
            "average_efficiency": np.where(hours > 0, sim.e_eff / np.where(hours > 0, hours, 1), 0.0),
            "average_kw": np.where(hours > 0, sim.e_kwh / np.where(hours > 0, hours, 1), 0.0),
            "peak_kw": sim.e_peak,
            "kwh_per_m3": np.where(hours > 0, sim.e_kwh_per_flow / np.where(hours > 0, hours, 1) / 3600.0, 0.0),
            "cost": sim.e_cost,
        }, index=pumps)
    steps_df = pd.DataFrame(steps, columns=["time_s", "iterations", "relative_error", "converged", "reported"])
    res = HydraulicResult(
        node_head=pd.DataFrame(H, index=idx, columns=nodes),
        node_pressure=pd.DataFrame(P, index=idx, columns=nodes),
        node_demand=pd.DataFrame(np.array(rec["D"]).reshape(len(rec_t), len(nodes)), index=idx, columns=nodes),
        link_flow=pd.DataFrame(Q, index=idx, columns=links),
        link_velocity=pd.DataFrame(vel, index=idx, columns=links),
        link_status=pd.DataFrame(status, index=idx, columns=links),
        link_setting=pd.DataFrame(setting, index=idx, columns=links),
        pump_power=pd.DataFrame(kw, index=idx, columns=pumps),
        pump_efficiency=pd.DataFrame(eff, index=idx, columns=pumps),
        steps=steps_df,
        pump_energy=pe,
        energy_demand_charge=wn.energy.demand_charge * sim.e_max_total,
        demand_model=model,
        wall_time_s=wall,
        halted_at_s=halted,
        messages=sim.messages,
        timings=timings,
    )
    if sim.messages:
        kinds = Counter(m[2].split(":")[0].split(" at ")[0] for m in sim.messages)
        first = sim.messages[0]
        summary = "; ".join(f"{n} × {k}" for k, n in kinds.most_common(4))
        warnings.warn(f"{len(sim.messages)} hydraulic warning(s): {summary} (first at t = {first[0]} s"
                      f"{', element ' + repr(first[1]) if first[1] else ''}); see result.messages",
                      HydraulicWarning, stacklevel=3)
    if halted is not None:
        warnings.warn(f"the run halted at t = {halted} s: the system is unbalanced and options.unbalanced is STOP",
                      HydraulicWarning, stacklevel=3)
    return res
