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
    CUSTOM,
    MISSING,
    OPEN,
    PIPE,
    PUMP,
    XFCV,
    XHEAD,
    CompiledWater,
    NetworkError,
    compile_water,
)
from .network import WaterNetwork
from .results import HydraulicResult
from .rules import RuleEngine

__all__ = ["simulate_hydraulics", "HydraulicWarning", "NetworkError"]


class HydraulicWarning(UserWarning):
    """An abnormal hydraulic condition (unbalanced step, negative pressure, pump or valve
    that cannot deliver, disconnected nodes)."""


class _Simulation:
    """The state of one run: the Cython solver and period loop, plus what the rule engine and the
    warning messages need (numpy views of the same arrays)."""

    def __init__(self, cw: CompiledWater, wn: WaterNetwork, duration_s: int):
        self.cw = cw
        self.wn = wn
        n = cw.net
        self.nj, self.nn, self.nl = n["nj"], n["nn"], n["nl"]
        self.nr = cw.n_res
        tm = wn.times
        pstep = tm.pattern_step_s if tm.pattern_step_s > 0 else 3600
        rstep = tm.report_step_s if tm.report_step_s > 0 else pstep
        hstep = min(tm.hydraulic_step_s if tm.hydraulic_step_s > 0 else 3600, pstep, rstep)
        rstart = tm.report_start_s if tm.report_start_s <= duration_s else 0
        self.tstart = tm.start_clocktime_s
        rs = tm.rule_step_s if tm.rule_step_s > 0 else hstep // 10
        self.rule_step = max(1, min(rs, hstep))
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
        tank_nodes = np.arange(self.nj + self.nr, self.nn, dtype=np.int32)
        self.H[tank_nodes] = cw.tank_h0
        self.H[self.nj:self.nj + self.nr] = cw.res_head
        self.ltype = n["ltype"]
        self.ptype = n["ptype"]
        self.pump_links = cw.pump_links
        npat = len(cw.patterns)
        none = np.int32(npat)  # index of the constant-1 factor

        def pat(idx: np.ndarray) -> np.ndarray:
            return np.where(np.asarray(idx) < 0, none, idx).astype(np.int32)

        lens = [len(p) for p in cw.patterns]
        self.pump_qmax = np.array([self._pump_qmax(i) for i in range(len(cw.pump_links))])
        c = cw.controls
        node = c["node"]
        en = wn.energy
        i32, f64 = np.int32, np.float64
        data = dict(
            hstep=hstep, pstep=pstep, pstart=tm.pattern_start_s, rstep=rstep, rstart=rstart, tstart=self.tstart,
            dur=duration_s, rule_step=self.rule_step, halt_on_unbalanced=int(cw.opts["extra_iter"] == -1),
            dda=int(cw.opts["pda"] == 0), qzero=U.QZERO, tiny_q=U.TINY_Q, power_k=U.POWER_K,
            pat_ptr=np.concatenate([[0], np.cumsum(lens)]).astype(i32),
            pat_val=np.concatenate(cw.patterns).astype(f64) if npat else np.zeros(1),
            d_junc=cw.demand_junction.astype(i32), d_pat=pat(cw.demand_pattern),
            d_base=cw.demand_base.astype(f64), dmult=float(wn.options.demand_multiplier),
            res_head=cw.res_head.astype(f64), res_pat=pat(cw.res_pattern),
            t_node=tank_nodes, t_curve=cw.tank_curve.astype(i32), t_v0=cw.tank_v0.astype(f64),
            t_vmin=cw.tank_vmin.astype(f64), t_vmax=cw.tank_vmax.astype(f64),
            t_hmin=n["tank_hmin"][self.nr:].copy(), t_hmax=n["tank_hmax"][self.nr:].copy(),
            t_area=n["tank_area"][self.nr:].copy(), t_elev=cw.tank_elev.astype(f64),
            p_link=cw.pump_links.astype(i32), p_speed_pat=pat(cw.pump_speed_pattern),
            p_eff_curve=cw.pump_eff_curve.astype(i32), p_price_pat=pat(cw.pump_price_pattern),
            p_type=n["ptype"][: len(cw.pump_links)].astype(i32), p_q0=n["pQ0"][: len(cw.pump_links)].copy(),
            p_qmax=self.pump_qmax.astype(f64), p_price=np.nan_to_num(cw.pump_price, nan=0.0).astype(f64),
            eff0=float(en.efficiency_pct), spgr=float(wn.options.specific_gravity), price0=float(en.price),
            price0_pat=int(pat(np.array([cw.pattern_ids.index(en.price_pattern) if en.price_pattern else -1]))[0]),
            c_link=c["link"], c_node=node, c_type=c["type"], c_status=c["status"], c_time=c["time"],
            c_tank=np.where(node >= self.nj + self.nr, node - self.nj - self.nr, -1).astype(i32),
            c_enabled=c["enabled"].astype(i32), c_grade=c["grade"], c_setting=c["setting"],
            elev=n["elev"], cx=n["cx"], cy=n["cy"], cptr=n["cptr"], ltype=n["ltype"], n1=n["n1"], n2=n["n2"],
            pump_of=n["pump_of"],
        )
        self.period = _k.Period(self.solver, data)
        self.V = self.period.V_arr
        self.node_demand = self.period.node_demand_arr
        self.messages: list[tuple[int, str, str]] = []
        self.rules = RuleEngine(wn.rules, self) if wn.rules else None

    # -- what the rule engine reads and calls ---------------------------------------------
    @property
    def system_demand(self) -> float:
        return self.period.system_demand

    def tank_levels(self, tstep: int) -> None:
        self.period.tank_levels(tstep)

    def reset_pump_flow(self, k: int) -> None:
        self.period.reset_pump_flow(k)

    def rules_timestep(self, t: int, tstep: int) -> int:
        return self.rules.timestep(t, tstep, self.rule_step)

    def on_warning(self, t: int, iterations: int, relerr: float) -> None:
        self.check(t, iterations, relerr, self.cw.opts["max_iter"], self.cw.opts["hacc"], self.cw.opts["pda"] == 0)

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
        if pt == CUSTOM:
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
    demand_model: str | None = None,
    *,
    accuracy: float | None = None,
    trials: int | None = None,
) -> HydraulicResult:
    """Run an extended-period hydraulic simulation of ``wn`` (not modified).

    ``duration_s`` overrides ``wn.times.duration_s``; ``demand_model`` is
    ``"DDA"`` (demand driven) or ``"PDA"`` (pressure driven, Wagner: full
    demand above ``options.required_pressure_m``, none below
    ``options.minimum_pressure_m``, ``options.pressure_exponent`` between),
    by default ``options.demand_model`` (the file's ``DEMAND MODEL``);
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
    model = (demand_model or wn.options.demand_model).upper()
    cw = compile_water(wn, accuracy=accuracy, demand_model=model, trials=trials)
    dur = int(wn.times.duration_s if duration_s is None else duration_s)
    if dur < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
    t_compile = _time.perf_counter() - t0
    sim = _Simulation(cw, wn, dur)
    err = sim.period.run(sim.rules_timestep if sim.rules is not None else None, sim.on_warning)
    if err:
        bad = sim.solver.bad_node
        node = cw.node_ids[bad] if bad >= 0 else "?"
        raise NetworkError(f"at t = {sim.period.t_now} s the hydraulic equations cannot be solved: the matrix is "
                           f"singular at junction {node!r} (EPANET error 110) — check for nodes cut off by closed "
                           "links, pumps or valves")
    wall = _time.perf_counter() - t0
    halted = None if sim.period.halted_at < 0 else int(sim.period.halted_at)
    return _assemble(wn, cw, sim, halted, model, wall,
                     {"compile_s": t_compile, "solve_s": sim.period.solve_s, "total_s": wall})


def _assemble(wn, cw, sim, halted, model, wall, timings) -> HydraulicResult:
    per = sim.period
    n = per.n_rec
    idx = pd.Index(per.rec_t[:n], name="time_s", dtype="int64")
    nodes = pd.Index(cw.node_ids, name="node", dtype=object)
    links = pd.Index(cw.link_ids, name="link", dtype=object)
    H = per.rec_H[:n]
    P = H - cw.net["elev"]  # reservoirs: head above the base head (non-zero under a head pattern), as EPANET
    Q = per.rec_Q[:n]
    S = per.rec_S[:n]
    # EPANET's EN_STATUS: closed (incl. temporarily / cannot deliver head), open, and for valves
    # any state beyond open (active, cannot deliver flow or pressure) reported as active
    ltype = cw.net["ltype"]
    words = np.array(["CLOSED", "CLOSED", "CLOSED", "OPEN", "ACTIVE", "OPEN", "OPEN", "OPEN"], dtype=object)
    status = words[S]
    status[:, ltype > PUMP] = np.where(S[:, ltype > PUMP] > OPEN, "ACTIVE", status[:, ltype > PUMP])
    setting = per.rec_set[:n]
    setting = np.where(setting == MISSING, np.nan, setting)
    setting[:, ltype <= PIPE] = np.nan
    area = np.pi * cw.net["diam"] ** 2 / 4.0
    with np.errstate(divide="ignore", invalid="ignore"):
        vel = np.where(area > 0, np.abs(Q) / np.where(area > 0, area, 1.0), 0.0)
    vel[:, ltype == PUMP] = 0.0
    pumps = pd.Index(cw.link_ids[cw.pump_links], name="pump", dtype=object)
    kw = per.rec_kw[:n, : len(pumps)]
    eff = per.rec_eff[:n, : len(pumps)]
    e = per.energy
    npump = len(pumps)
    hours = e["online_h"][:npump]
    on = np.where(hours > 0, hours, 1.0)
    pe = pd.DataFrame({
        "kwh": e["kwh"][:npump],
        "hours_online": hours,
        "average_efficiency": np.where(hours > 0, e["eff_h"][:npump] / on, 0.0),
        "average_kw": np.where(hours > 0, e["kwh"][:npump] / on, 0.0),
        "peak_kw": e["peak_kw"][:npump],
        "kwh_per_m3": np.where(hours > 0, e["kwh_per_flow"][:npump] / on / 3600.0, 0.0),
        "cost": e["cost"][:npump],
    }, index=pumps)
    steps_df = pd.DataFrame(per.steps, columns=["time_s", "iterations", "relative_error", "converged", "reported"])
    res = HydraulicResult(
        node_head=pd.DataFrame(H, index=idx, columns=nodes),
        node_pressure=pd.DataFrame(P, index=idx, columns=nodes),
        node_demand=pd.DataFrame(per.rec_D[:n], index=idx, columns=nodes),
        link_flow=pd.DataFrame(Q, index=idx, columns=links),
        link_velocity=pd.DataFrame(vel, index=idx, columns=links),
        link_status=pd.DataFrame(status, index=idx, columns=links, dtype=object),
        link_setting=pd.DataFrame(setting, index=idx, columns=links),
        pump_power=pd.DataFrame(kw, index=idx, columns=pumps),
        pump_efficiency=pd.DataFrame(eff, index=idx, columns=pumps),
        steps=steps_df,
        pump_energy=pe,
        energy_demand_charge=wn.energy.demand_charge * per.e_max_total,
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
