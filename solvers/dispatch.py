"""Multi-period economic dispatch with a DC network (DC optimal power flow) over a time index.

Symbols (per snapshot t of length Δ_t hours; sets G generators, S storage units, L loads, B buses, K
limited branches):

============  ======================  =================================================================
symbol        Pyomo                   meaning (unit)
============  ======================  =================================================================
p_gt          ``m.p[g, t]``           generator output (MW); p̲_gt ≤ p_gt ≤ p̄_g · a_gt (availability a)
c_gt                                  marginal cost (per MWh): ``generator.marginal_cost`` series, else
                                      the linear term of the generator's polynomial cost
r_lt          ``m.shed[l, t]``        load shed (MW), 0 ≤ r_lt ≤ d_lt, cost VOLL per MWh
h_st, u_st    ``m.charge``/``m.discharge``  storage charging / discharging power (MW), ≤ P_s
e_st          ``m.soc[s, t]``         stored energy (MWh), 0 ≤ e_st ≤ E_s
η⁺, η⁻, σ                             charge / discharge efficiency, standing loss per hour
PTDF_kb                               DC power transfer distribution factor of branch k for bus b
F_k                                   branch limit (MW) = rate_a
u_gt, v_gt,   ``m.on``, ``m.start``,  commitment, start-up, shut-down (binary) of committable units
w_gt          ``m.stop``
RU_g, RD_g                            ramp limits (MW/h); UT_g, DT_g minimum up / down times (h)
============  ======================  =================================================================

Objective: min Σ_t Δ_t (Σ_g c_gt p_gt + VOLL Σ_l r_lt).

Energy balance (``m.balance[t]``): Σ_g p_gt + Σ_s (u_st − h_st) + Σ_l r_lt = Σ_l d_lt.

Network, ``network="ptdf"`` (``m.flow_limit[k, t]``): −F_k ≤ Σ_b PTDF_kb · inj_bt ≤ F_k with
inj_bt the net injection at bus b.  ``network="angle"``: bus angles θ (``m.theta``), nodal balance
(``m.nodal_balance[b, t]``) and −F_k ≤ B_k (θ_f − θ_t) ≤ F_k.  ``network="copper"``: no network.

Storage (``m.soc_balance[s, t]``): e_st = (1 − σ)^Δ_t e_s,t−1 + Δ_t (η⁺ h_st − u_st / η⁻ + i_st), with
i_st the ``storage.inflow_mw`` series (0 by default) and
e_s,−1 = soc_init · E_s, or e_s,T−1 when ``cyclic_storage``.

Unit commitment (``unit_commitment=True``, committable units only): p̲_g u_gt ≤ p_gt ≤ p̄_gt u_gt,
u_gt − u_g,t−1 = v_gt − w_gt, Σ_{τ∈(t−UT_g, t]} v_gτ ≤ u_gt, Σ_{τ∈(t−DT_g, t]} w_gτ ≤ 1 − u_gt, start-up and
shut-down costs from ``generator_cost``.  Ramping: p_gt − p_g,t−1 ≤ RU_g Δ_t u_g,t−1 + max(p̲_g, RU_g Δ_t) v_gt
and p_g,t−1 − p_gt ≤ RD_g Δ_t u_gt + max(p̲_g, RD_g Δ_t) w_gt (u = 1, v = w = 0 for other units).

Nodal prices are the balance duals (per MWh): with PTDF, λ_bt = λ_t + Σ_k μ_kt PTDF_kb; after a unit
commitment they are those of the LP with the commitment fixed.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.expr.numeric_expr import LinearExpression

from twin.energy import Grid
from twin.energy.compile import compile_grid
from twin.energy.sensitivity import DCSensitivity

from .highs_route import HighsModel, SolveStatus

__all__ = ["DispatchOptions", "DispatchState", "DispatchData", "DispatchModel", "DispatchSolution",
           "dispatch_structure", "refresh_dispatch",
           "build_dispatch_model", "solve_dispatch", "update_dispatch", "DispatchInputError"]


class DispatchInputError(ValueError):
    """The grid or its series cannot make a dispatch problem (names the element and the field)."""


@dataclass
class DispatchOptions:
    """Options of the dispatch model.

    ``network``: ``"angle"`` (sparse; the default), ``"ptdf"`` (dense rows, one per limited branch: for small
    grids or few limits) or ``"copper"``; ``voll``: value of lost load per MWh
    (``None`` forbids shedding); ``cyclic_storage``: end state of charge = start; otherwise the start
    is ``soc_init`` and, with ``end_soc_at_least_start``, the end may not be below it; ``line_limits``;
    ``threads`` and ``time_limit_s`` for HiGHS; ``unit_commitment``: on/off of committable units as
    binaries (a MILP solved to ``mip_gap``); ``keep_model=False`` frees the Pyomo model once HiGHS has it
    (results and in-place updates use column/row indexes; saves memory on long horizons).
    """

    network: str = "angle"
    voll: float | None = 10000.0
    cyclic_storage: bool = True
    end_soc_at_least_start: bool = False
    line_limits: bool = True
    threads: int = 1
    time_limit_s: float | None = None
    unit_commitment: bool = False
    mip_gap: float = 1e-4
    keep_model: bool = True


@dataclass
class DispatchState:
    """The state a dispatch starts from (handed over between rolling-horizon windows).

    Series indexed by element id, each optional: ``soc`` (storage, fraction of e_max_mwh), ``on``
    (generator committed before the first snapshot), ``up_h``/``down_h`` (hours it has been on/off by
    then: minimum up/down times carry over), ``p_mw`` (its output in the last hour: ramp limits apply
    to the first snapshot)."""

    soc: pd.Series | None = None
    on: pd.Series | None = None
    up_h: pd.Series | None = None
    down_h: pd.Series | None = None
    p_mw: pd.Series | None = None


@contextmanager
def _no_gc():
    """Pause Python's garbage collector while Pyomo builds many small objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class DispatchData:
    """Index maps and numbers of a dispatch problem (precomputed once; blocks only read them)."""

    snapshots: pd.Index
    hours: np.ndarray  # Δ_t
    bus_ids: pd.Index
    gen_ids: pd.Index
    gen_bus: np.ndarray
    p_nom: np.ndarray  # (G,) MW, p_max_mw
    p_max: np.ndarray  # (G, T) MW (availability applied)
    p_min: np.ndarray  # (G, T)
    cost: np.ndarray  # (G, T) per MWh
    quad: np.ndarray  # (G,) quadratic cost coefficient, per MW²h
    committable: np.ndarray  # (G,) bool
    min_up: np.ndarray  # (G,) h
    min_down: np.ndarray
    ramp_up: np.ndarray  # (G,) MW/h, inf = none
    ramp_down: np.ndarray
    on0: np.ndarray  # (G,) bool, committed before the first snapshot
    up0: np.ndarray  # (G,) h on before the first snapshot (inf: long enough)
    down0: np.ndarray  # (G,) h off before the first snapshot
    p0: np.ndarray  # (G,) MW output before the first snapshot (NaN: unknown, no ramp limit at t = 0)
    startup_cost: np.ndarray
    shutdown_cost: np.ndarray
    pwl: dict  # generator position -> (n, 2) points (MW, per h) of a convex piecewise-linear cost
    load_ids: pd.Index
    load_bus: np.ndarray
    demand: np.ndarray  # (L, T) MW
    sto_ids: pd.Index
    sto_bus: np.ndarray
    sto_p: np.ndarray
    sto_e: np.ndarray
    sto_soc0: np.ndarray
    sto_eta_c: np.ndarray
    sto_eta_d: np.ndarray
    sto_loss: np.ndarray
    sto_inflow: np.ndarray  # (S, T) MW of energy flowing into the store (e.g. a reservoir's inflow)
    branch_ids: pd.Index
    branch_limit: np.ndarray  # MW, inf when unlimited
    branch_b: np.ndarray  # MW per rad (base × 1/(x·ratio))
    branch_f: np.ndarray
    branch_t: np.ndarray
    ref_buses: np.ndarray
    ptdf: np.ndarray | None  # (branches, buses)
    fixed_bus: np.ndarray  # (B,) MW withdrawn at every snapshot: shunt conductance (Gs at 1 p.u.) and the
    #                        phase shifters' equivalent bus injections (MATPOWER's Pbusinj)
    flow_offset: np.ndarray  # (branches,) MW of branch flow from phase shifts (Pfinj), added to b(θf − θt)

    def load_at_buses(self) -> np.ndarray:
        """(B, T) MW that must be supplied at each bus: loads plus the fixed withdrawals."""
        out = np.repeat(self.fixed_bus[:, None], self.T, axis=1)
        np.add.at(out, self.load_bus, self.demand)
        return out

    @property
    def T(self) -> int:
        return len(self.snapshots)


def _series(grid: Grid, name: str, ids: pd.Index, default: np.ndarray) -> np.ndarray:
    """(len(ids), T) values of series ``name``, the static ``default`` where it has no column."""
    T = len(grid.snapshots)
    out = np.repeat(np.asarray(default, float)[:, None], T, axis=1)
    df = grid.series.get(name)
    if df is not None:
        pos = ids.get_indexer(df.columns)
        keep = pos >= 0
        out[pos[keep]] = df.to_numpy(float).T[keep]
    return out


def _apply_state(d: DispatchData, state: DispatchState) -> None:
    for name, ids, target in (("soc", d.sto_ids, d.sto_soc0), ("on", d.gen_ids, d.on0), ("up_h", d.gen_ids, d.up0),
                              ("down_h", d.gen_ids, d.down0), ("p_mw", d.gen_ids, d.p0)):
        ser = getattr(state, name)
        if ser is None:
            continue
        pos = ids.get_indexer(ser.index.astype(str))
        if (pos < 0).any():
            raise DispatchInputError(f"initial state {name}: {ser.index[pos < 0][0]!r} is not in the dispatch")
        vals = ser.to_numpy(float)
        if name == "soc" and ((vals < 0) | (vals > 1)).any():
            raise DispatchInputError(f"initial state soc: {ser.index[(vals < 0) | (vals > 1)][0]!r} not in [0, 1]")
        target[pos] = vals.astype(target.dtype)


def prepare_dispatch_data(grid: Grid, options: DispatchOptions | None = None,
                          initial_state: DispatchState | None = None) -> DispatchData:
    """Check the grid and its series and compute the index maps of the dispatch problem."""
    opts = options or DispatchOptions()
    if not len(grid.snapshots):
        raise DispatchInputError("the grid has no snapshots: set its time index and series "
                                 "(grid.set_series('load.p_mw', df) …) before a dispatch")
    snaps = grid.snapshots
    if isinstance(snaps, pd.DatetimeIndex) and len(snaps) > 1:
        step = np.diff(snaps).astype("timedelta64[ns]").astype(np.int64) / 3.6e12  # any resolution (pandas 3: us)
        hours = np.append(step, step[-1]) if len(step) else np.ones(1)
        if (hours <= 0).any():
            raise DispatchInputError("snapshots must increase")
    else:
        hours = np.ones(len(snaps))
    cg = compile_grid(grid)
    gens = grid.generator[grid.generator["in_service"]]
    gen_ids = gens.index
    bus_ids = grid.bus.index
    bpos = bus_ids.get_indexer
    pmax = gens["p_max_mw"].to_numpy(float)
    pmin = gens["p_min_mw"].to_numpy(float)
    for col, arr in (("p_max_mw", pmax), ("p_min_mw", pmin)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DispatchInputError(f"generator {gen_ids[bad][0]!r}: {col} must be finite for a dispatch")
    if (pmax < pmin).any():
        g = gen_ids[pmax < pmin][0]
        raise DispatchInputError(f"generator {g!r}: p_max_mw < p_min_mw")
    avail = _series(grid, "generator.p_max_pu", gen_ids, np.ones(len(gen_ids)))
    minpu = _series(grid, "generator.p_min_pu", gen_ids, np.where(pmax != 0, pmin / np.where(pmax != 0, pmax, 1), 0))
    if (avail < 0).any() or (avail > 1 + 1e-12).any():
        i, t = np.argwhere((avail < 0) | (avail > 1 + 1e-12))[0]
        raise DispatchInputError(f"generator {gen_ids[i]!r}: p_max_pu {avail[i, t]!r} at {snaps[t]!r} not in [0, 1]")
    p_max = pmax[:, None] * avail
    p_min = np.minimum(pmax[:, None] * minpu, p_max) if (pmin >= 0).all() else np.repeat(pmin[:, None], len(snaps), 1)
    # costs: marginal_cost series, else the linear term of the polynomial cost
    lin = np.full(len(gen_ids), np.nan)
    quad = np.zeros(len(gen_ids))
    pwl: dict[int, np.ndarray] = {}
    gc_tab = grid.generator_cost
    overridden = set(grid.series["generator.marginal_cost"].columns) if "generator.marginal_cost" in grid.series \
        else set()
    for i, g in enumerate(gen_ids):
        if g not in gc_tab.index or g in overridden:
            continue
        row = gc_tab.loc[g]
        coeffs = np.asarray(tuple(row["coefficients"]), float)
        if int(row["model"]) == 2:  # polynomial (c_n … c_1, c_0): linear and quadratic terms used
            if len(coeffs) > 3 and np.any(coeffs[:-3] != 0):
                raise DispatchInputError(f"generator {g!r}: polynomial cost of degree {len(coeffs) - 1}; "
                                         "only up to quadratic costs can be dispatched")
            lin[i] = coeffs[-2] if len(coeffs) >= 2 else 0.0
            quad[i] = coeffs[-3] if len(coeffs) >= 3 else 0.0
            if quad[i] < 0:
                raise DispatchInputError(f"generator {g!r}: negative quadratic cost {quad[i]!r} (not convex)")
        else:  # piecewise linear through (p_k, cost_k) points, $/h
            pts = coeffs.reshape(-1, 2)
            slopes = np.diff(pts[:, 1]) / np.diff(pts[:, 0])
            if len(pts) < 2 or np.any(np.diff(pts[:, 0]) <= 0) or np.any(np.diff(slopes) < -1e-12):
                raise DispatchInputError(f"generator {g!r}: a piecewise-linear cost needs increasing powers and "
                                         "non-decreasing slopes (a convex cost)")
            pwl[i] = pts
            lin[i] = 0.0
    startup = np.array([float(gc_tab.at[g, "startup"]) if g in gc_tab.index else 0.0 for g in gen_ids])
    shutdown = np.array([float(gc_tab.at[g, "shutdown"]) if g in gc_tab.index else 0.0 for g in gen_ids])
    for col in ("min_up_h", "min_down_h", "ramp_up_mw_h", "ramp_down_mw_h"):
        neg = gens[col].to_numpy(float) < 0
        if neg.any():
            raise DispatchInputError(f"generator {gen_ids[neg][0]!r}: {col} must not be negative")
    cost = _series(grid, "generator.marginal_cost", gen_ids, lin)
    missing = np.isnan(cost).any(axis=1)
    if missing.any():
        raise DispatchInputError(f"generator {gen_ids[missing][0]!r} has no cost: give a generator_cost row or a "
                                 "'generator.marginal_cost' series")
    loads = grid.load[grid.load["in_service"]]
    demand = _series(grid, "load.p_mw", loads.index, loads["p_mw"].to_numpy(float))
    sto = grid.storage[grid.storage["in_service"]]
    for col in ("p_max_mw", "e_max_mwh"):
        neg = sto[col].to_numpy(float) < 0
        if neg.any():
            raise DispatchInputError(f"storage {sto.index[neg][0]!r}: {col} must not be negative")
    for col in ("eta_charge", "eta_discharge"):
        bad = ~((sto[col] > 0) & (sto[col] <= 1)).to_numpy()
        if bad.any():
            raise DispatchInputError(f"storage {sto.index[bad][0]!r}: {col} must be in (0, 1]")
    soc0 = np.array(sto["soc_init"], dtype=float)  # a writable copy (updated by update_dispatch)
    if ((soc0 < 0) | (soc0 > 1)).any():
        raise DispatchInputError(f"storage {sto.index[(soc0 < 0) | (soc0 > 1)][0]!r}: soc_init must be in [0, 1]")
    ratio = np.abs(cg.tap)
    on = cg.branch_on
    b = np.where(on, cg.base_mva / (cg.x * ratio), 0.0)
    limit = np.where(np.isnan(cg.rate_a) | (cg.rate_a <= 0), np.inf, cg.rate_a)
    limit = np.where(on, limit, np.inf)
    sens = DCSensitivity(cg)
    ptdf = sens.ptdf_rows() if opts.network == "ptdf" else None
    fixed_bus = (cg.ysh.real + sens.pbusinj) * cg.base_mva
    d = DispatchData(
        snapshots=snaps, hours=hours, bus_ids=bus_ids, gen_ids=gen_ids, gen_bus=bpos(gens["bus"]), p_nom=pmax,
        p_max=p_max, p_min=p_min, cost=cost, quad=quad, pwl=pwl,
        committable=gens["committable"].to_numpy(bool) & opts.unit_commitment, min_up=gens["min_up_h"].to_numpy(float),
        min_down=gens["min_down_h"].to_numpy(float), ramp_up=gens["ramp_up_mw_h"].to_numpy(float),
        ramp_down=gens["ramp_down_mw_h"].to_numpy(float), on0=gens["initially_on"].to_numpy(bool).copy(),
        up0=np.full(len(gen_ids), np.inf), down0=np.full(len(gen_ids), np.inf), p0=np.full(len(gen_ids), np.nan),
        startup_cost=startup, shutdown_cost=shutdown, load_ids=loads.index, load_bus=bpos(loads["bus"]),
        demand=demand,
        sto_ids=sto.index, sto_bus=bpos(sto["bus"]), sto_p=sto["p_max_mw"].to_numpy(float),
        sto_e=sto["e_max_mwh"].to_numpy(float), sto_soc0=soc0, sto_eta_c=sto["eta_charge"].to_numpy(float),
        sto_eta_d=sto["eta_discharge"].to_numpy(float), sto_loss=sto["standing_loss"].to_numpy(float),
        sto_inflow=_series(grid, "storage.inflow_mw", sto.index, np.zeros(len(sto))),
        branch_ids=cg.branch_ids, branch_limit=limit, branch_b=b, branch_f=cg.f, branch_t=cg.t,
        ref_buses=np.flatnonzero(cg.bus_type == 3), ptdf=ptdf, fixed_bus=fixed_bus,
        flow_offset=np.where(on, sens.pfinj * cg.base_mva, 0.0),
    )
    if initial_state is not None:
        _apply_state(d, initial_state)
    return d


# -- model blocks ------------------------------------------------------------------------------------


def _rows(m: pyo.ConcreteModel, name: str, matrix: sp.csr_matrix, cols: list, lo: np.ndarray, hi: np.ndarray,
          index: list) -> None:
    """Add constraint family ``name``: lo_i ≤ Σ_j matrix_ij · cols_j ≤ hi_i, one row per ``index`` entry,
    built as linear expressions straight from the sparse matrix."""
    matrix = matrix.tocsr()
    ptr, idx, val = matrix.indptr, matrix.indices, matrix.data

    def rule(_m, *key):
        i = pos[key if len(key) > 1 else key[0]]
        sl = slice(ptr[i], ptr[i + 1])
        expr = LinearExpression(constant=0.0, linear_coefs=val[sl].tolist(), linear_vars=[cols[j] for j in idx[sl]])
        a, b = lo[i], hi[i]
        if a == b:
            return expr == a
        return (None if a == -math.inf else a, expr, None if b == math.inf else b)

    pos = {k: i for i, k in enumerate(index)}
    setattr(m, name, pyo.Constraint(index, rule=rule))


def declare_generation(m: pyo.ConcreteModel, d: DispatchData) -> None:
    """p_gt with p̲_gt ≤ p_gt ≤ p̄_gt (``m.p``); committable units: 0 ≤ p_gt, bounds through u_gt."""
    G, T = len(d.gen_ids), d.T
    m.p = pyo.Var(range(G), range(T), bounds=lambda _m, g, t: (0.0 if d.committable[g] else d.p_min[g, t],
                                                              d.p_max[g, t]))


def declare_commitment(m: pyo.ConcreteModel, d: DispatchData) -> None:
    """u, v, w binaries of committable units with their output bounds, logic and minimum up/down times
    (``m.on``, ``m.start``, ``m.stop``, ``m.p_on_min``, ``m.p_on_max``, ``m.logic``, ``m.min_up``,
    ``m.min_down``)."""
    units = [int(g) for g in np.flatnonzero(d.committable)]
    T = d.T
    m.on = pyo.Var(units, range(T), domain=pyo.Binary)
    m.start = pyo.Var(units, range(T), domain=pyo.Binary)
    m.stop = pyo.Var(units, range(T), domain=pyo.Binary)
    m.p_on_min = pyo.Constraint(units, range(T), rule=lambda _m, g, t: m.p[g, t] >= float(d.p_min[g, t]) * m.on[g, t])
    m.p_on_max = pyo.Constraint(units, range(T), rule=lambda _m, g, t: m.p[g, t] <= float(d.p_max[g, t]) * m.on[g, t])

    def logic(_m, g, t):
        prev = m.on[g, t - 1] if t > 0 else float(d.on0[g])
        return m.on[g, t] - prev == m.start[g, t] - m.stop[g, t]

    m.logic = pyo.Constraint(units, range(T), rule=logic)
    ends = np.cumsum(d.hours)

    def window(g, t, span):
        """Snapshots τ ≤ t whose start lies within ``span`` hours before the end of t."""
        return [tau for tau in range(t + 1) if ends[t] - (ends[tau] - d.hours[tau]) <= span + 1e-9]

    m.min_up = pyo.Constraint(
        [(g, t) for g in units if d.min_up[g] > 0 for t in range(T)],
        rule=lambda _m, g, t: sum(m.start[g, tau] for tau in window(g, t, d.min_up[g])) <= m.on[g, t])
    m.min_down = pyo.Constraint(
        [(g, t) for g in units if d.min_down[g] > 0 for t in range(T)],
        rule=lambda _m, g, t: sum(m.stop[g, tau] for tau in window(g, t, d.min_down[g])) <= 1 - m.on[g, t])
    # history: a unit on (off) for less than its minimum up (down) time before the first snapshot stays on (off)
    starts = ends - d.hours
    for g in units:
        left = (d.min_up[g] - d.up0[g]) if d.on0[g] else (d.min_down[g] - d.down0[g])
        for t in np.flatnonzero(starts < left - 1e-9):
            m.on[g, int(t)].fix(1.0 if d.on0[g] else 0.0)


def declare_ramping(m: pyo.ConcreteModel, d: DispatchData) -> None:
    """Ramp limits between consecutive snapshots (``m.ramp_up``, ``m.ramp_down``); see the module docstring."""
    T = d.T
    up = [(int(g), t) for g in np.flatnonzero(np.isfinite(d.ramp_up)) for t in range(1, T)]
    down = [(int(g), t) for g in np.flatnonzero(np.isfinite(d.ramp_down)) for t in range(1, T)]

    def state(g, t):
        return (m.on[g, t], m.start[g, t], m.stop[g, t]) if d.committable[g] else (1.0, 0.0, 0.0)

    def up_rule(_m, g, t):
        ru = float(d.ramp_up[g] * d.hours[t])
        on_prev = state(g, t - 1)[0]
        return m.p[g, t] - m.p[g, t - 1] <= ru * on_prev + max(float(d.p_min[g, t]), ru) * state(g, t)[1]

    def down_rule(_m, g, t):
        rd = float(d.ramp_down[g] * d.hours[t])
        on, _, stop = state(g, t)
        return m.p[g, t - 1] - m.p[g, t] <= rd * on + max(float(d.p_min[g, t - 1]), rd) * stop

    m.ramp_up = pyo.Constraint(up, rule=up_rule)
    m.ramp_down = pyo.Constraint(down, rule=down_rule)
    # the first snapshot ramps from the output handed over (rolling horizons)
    first_up = [int(g) for g in np.flatnonzero(np.isfinite(d.ramp_up) & np.isfinite(d.p0))]
    first_down = [int(g) for g in np.flatnonzero(np.isfinite(d.ramp_down) & np.isfinite(d.p0))]

    def first_up_rule(_m, g):
        ru = float(d.ramp_up[g] * d.hours[0])
        start = state(g, 0)[1]
        on_before = float(d.on0[g]) if d.committable[g] else 1.0
        return m.p[g, 0] - float(d.p0[g]) <= ru * on_before + max(float(d.p_min[g, 0]), ru) * start

    def first_down_rule(_m, g):
        rd = float(d.ramp_down[g] * d.hours[0])
        on, _, stop = state(g, 0)
        return float(d.p0[g]) - m.p[g, 0] <= rd * on + max(float(d.p0[g]), rd) * stop

    m.ramp_up_first = pyo.Constraint(first_up, rule=first_up_rule)
    m.ramp_down_first = pyo.Constraint(first_down, rule=first_down_rule)


def declare_shedding(m: pyo.ConcreteModel, d: DispatchData, allowed: bool) -> None:
    """r_lt with 0 ≤ r_lt ≤ d_lt (``m.shed``; fixed at 0 when shedding is not allowed)."""
    L, T = len(d.load_ids), d.T
    m.shed = pyo.Var(range(L), range(T),
                     bounds=lambda _m, j, t: (0.0, max(d.demand[j, t], 0.0) if allowed else 0.0))


def declare_storage(m: pyo.ConcreteModel, d: DispatchData, cyclic: bool, end_floor: bool = False) -> None:
    """h_st, u_st, e_st and the state-of-charge balance (``m.soc_balance``); see the module docstring."""
    S, T = len(d.sto_ids), d.T
    m.charge = pyo.Var(range(S), range(T), bounds=lambda _m, s, t: (0.0, d.sto_p[s]))
    m.discharge = pyo.Var(range(S), range(T), bounds=lambda _m, s, t: (0.0, d.sto_p[s]))
    m.soc = pyo.Var(range(S), range(T), bounds=lambda _m, s, t: (0.0, d.sto_e[s]))

    def soc_rule(_m, s, t):
        dt = d.hours[t]
        keep = (1.0 - d.sto_loss[s]) ** dt
        flow = (d.sto_eta_c[s] * dt * m.charge[s, t] - dt / d.sto_eta_d[s] * m.discharge[s, t]
                + float(dt * d.sto_inflow[s, t]))
        if t > 0:
            return m.soc[s, t] == keep * m.soc[s, t - 1] + flow
        if cyclic:
            return m.soc[s, 0] == keep * m.soc[s, T - 1] + flow
        return m.soc[s, 0] == keep * d.sto_soc0[s] * d.sto_e[s] + flow

    m.soc_balance = pyo.Constraint(range(S), range(T), rule=soc_rule)
    if end_floor and not cyclic:
        m.soc_end = pyo.Constraint(range(S), rule=lambda _m, s: m.soc[s, T - 1] >= float(d.sto_soc0[s] * d.sto_e[s]))


def _injection_columns(m: pyo.ConcreteModel, d: DispatchData, t: int, extensions: Sequence[Any] = ()
                       ) -> tuple[list, np.ndarray, np.ndarray]:
    """Variables of snapshot t that inject power, their bus and sign (+1 generation, −1 consumption);
    the extensions' (flexible loads') columns come last."""
    S = len(d.sto_ids)
    cols = [m.p[g, t] for g in range(len(d.gen_ids))]
    cols += [m.discharge[s, t] for s in range(S)] + [m.charge[s, t] for s in range(S)]
    cols += [m.shed[j, t] for j in range(len(d.load_ids))]
    bus = [d.gen_bus, d.sto_bus, d.sto_bus, d.load_bus]
    sign = [np.ones(len(d.gen_ids)), np.ones(S), -np.ones(S), np.ones(len(d.load_ids))]
    for ext in extensions:
        c, b, sg = ext.injections(m, d, t)
        cols += c
        bus.append(np.asarray(b, np.int64))
        sign.append(np.asarray(sg, float))
    return cols, np.concatenate(bus).astype(np.int64), np.concatenate(sign)


def declare_balance_and_network(m: pyo.ConcreteModel, d: DispatchData, opts: DispatchOptions,
                                extensions: Sequence[Any] = ()) -> None:
    """System balance (``m.balance``) and the network: PTDF flow limits (``m.flow_limit``), or angles with
    nodal balances and branch limits (``m.nodal_balance``, ``m.branch_limit``).  The extensions' injections
    (flexible loads) enter every balance at their buses."""
    T, nb = d.T, len(d.bus_ids)
    load_bus = d.load_at_buses()
    total = load_bus.sum(axis=0)
    if opts.network in ("ptdf", "copper"):
        cols_all = []
        for t in range(T):
            cols, _, sign = _injection_columns(m, d, t, extensions)
            cols_all.append((cols, sign))
        m.balance = pyo.Constraint(range(T), rule=lambda _m, t: LinearExpression(
            constant=0.0, linear_coefs=cols_all[t][1].tolist(), linear_vars=cols_all[t][0]) == float(total[t]))
        if opts.network == "ptdf" and opts.line_limits:
            lim = np.flatnonzero(np.isfinite(d.branch_limit))
            if len(lim):
                ptdf = d.ptdf[lim]
                index, lo, hi, mats, allcols = [], [], [], [], []
                for t in range(T):
                    cols, bus, sign = _injection_columns(m, d, t, extensions)
                    coef = ptdf[:, bus] * sign  # (K, n_cols)
                    shift = ptdf @ load_bus[:, t] - d.flow_offset[lim]  # flow = PTDF·inj + offset
                    mats.append(sp.csr_matrix(np.where(np.abs(coef) > 1e-12, coef, 0.0)))
                    lo.append(-d.branch_limit[lim] + shift)
                    hi.append(d.branch_limit[lim] + shift)
                    index += [(int(k), t) for k in lim]
                    allcols.append(cols)
                ncol = len(allcols[0])
                mat = sp.block_diag(mats, format="csr")
                flat_cols = [c for cols in allcols for c in cols]
                assert mat.shape[1] == ncol * T
                _rows(m, "flow_limit", mat, flat_cols, np.concatenate(lo), np.concatenate(hi), index)
        return
    # angle formulation
    m.theta = pyo.Var(range(nb), range(T))
    for b in d.ref_buses:
        for t in range(T):
            m.theta[int(b), t].fix(0.0)
    f, tt, bb = d.branch_f, d.branch_t, d.branch_b
    nl = len(f)
    # nodal balance: Σ injections at b − Σ_k∈out B_k(θ_f − θ_t) + Σ_k∈in B_k(θ_f − θ_t) = load_b
    ones = np.ones(nl)
    inc = sp.csr_matrix((np.r_[ones, -ones], (np.r_[f, tt], np.r_[np.arange(nl), np.arange(nl)])), shape=(nb, nl))
    bflow = sp.csr_matrix((np.r_[bb, -bb], (np.r_[np.arange(nl), np.arange(nl)], np.r_[f, tt])), shape=(nl, nb))
    bbus = (inc @ bflow).tocsr()  # MW per rad
    index, lo, mats, allcols = [], [], [], []
    for t in range(T):
        cols, bus, sign = _injection_columns(m, d, t, extensions)
        inj = sp.csr_matrix((sign, (bus, np.arange(len(cols)))), shape=(nb, len(cols)))
        mats.append(sp.hstack([inj, -bbus]).tocsr())
        allcols.append(cols + [m.theta[b, t] for b in range(nb)])
        lo.append(load_bus[:, t] + inc @ d.flow_offset)
        index += [(b, t) for b in range(nb)]
    mat = sp.block_diag(mats, format="csr")
    flat = [c for cols in allcols for c in cols]
    rhs = np.concatenate(lo)
    _rows(m, "nodal_balance", mat, flat, rhs, rhs, index)
    if opts.line_limits:
        lim = np.flatnonzero(np.isfinite(d.branch_limit))
        if len(lim):
            sub = bflow[lim]
            mat = sp.block_diag([sub] * T, format="csr")
            flat = [m.theta[b, t] for t in range(T) for b in range(nb)]
            index = [(int(k), t) for t in range(T) for k in lim]
            cap = np.tile(d.branch_limit[lim], T)
            off = np.tile(d.flow_offset[lim], T)
            _rows(m, "branch_limit", mat, flat, -cap - off, cap - off, index)


def declare_costs(m: pyo.ConcreteModel, d: DispatchData) -> None:
    """Piecewise-linear costs as epigraphs: z_gt ≥ C_k + s_k (p_gt − P_k) for every segment k
    (``m.pwl_cost``, ``m.pwl_segment``); their total enters the objective."""
    gens = sorted(d.pwl)
    T = d.T
    m.pwl_cost = pyo.Var(gens, range(T))

    def seg_rule(_m, g, t, k):
        pts = d.pwl[g]
        slope = (pts[k + 1, 1] - pts[k, 1]) / (pts[k + 1, 0] - pts[k, 0])
        return m.pwl_cost[g, t] >= float(pts[k, 1]) + float(slope) * (m.p[g, t] - float(pts[k, 0]))

    index = [(g, t, k) for g in gens for t in range(T) for k in range(len(d.pwl[g]) - 1)]
    m.pwl_segment = pyo.Constraint(index, rule=seg_rule)


def declare_objective(m: pyo.ConcreteModel, d: DispatchData, opts: DispatchOptions,
                      extensions: Sequence[Any] = ()) -> None:
    """min Σ_t Δ_t (Σ_g c_gt p_gt + Σ_g z_gt + VOLL Σ_l r_lt) + Σ_t Δ_t Σ_g q_g p_gt² (the quadratic part is
    handed to HiGHS as a diagonal Hessian, see :func:`quadratic_terms`), plus the extensions' cost terms."""
    G, L, T = len(d.gen_ids), len(d.load_ids), d.T
    coefs = [float(d.hours[t] * d.cost[g, t]) for g in range(G) for t in range(T)]
    vars_ = [m.p[g, t] for g in range(G) for t in range(T)]
    coefs += [float(d.hours[t]) for g in sorted(d.pwl) for t in range(T)]
    vars_ += [m.pwl_cost[g, t] for g in sorted(d.pwl) for t in range(T)]
    for g in np.flatnonzero(d.committable):
        coefs += [float(d.startup_cost[g])] * T + [float(d.shutdown_cost[g])] * T
        vars_ += [m.start[int(g), t] for t in range(T)] + [m.stop[int(g), t] for t in range(T)]
    if opts.voll is not None:
        coefs += [float(d.hours[t] * opts.voll) for _l in range(L) for t in range(T)]
        vars_ += [m.shed[j, t] for j in range(L) for t in range(T)]
    for ext in extensions:
        c, v = ext.cost_terms(m, d)
        coefs += [float(x) for x in c]
        vars_ += list(v)
    m.objective = pyo.Objective(expr=LinearExpression(constant=0.0, linear_coefs=coefs, linear_vars=vars_))


def quadratic_terms(m: pyo.ConcreteModel, d: DispatchData) -> list[tuple[Any, float]]:
    """(variable, coefficient) of the objective's quadratic part Σ Δ_t q_g p_gt²."""
    return [(m.p[g, t], float(d.hours[t] * d.quad[g])) for g in np.flatnonzero(d.quad > 0) for t in range(d.T)]


@dataclass
class _Index:
    """Column and row positions of the model's variable and constraint families in the HiGHS instance,
    so that results and in-place updates need not keep the Pyomo model (``keep_model=False``)."""

    cols: dict[str, np.ndarray]  # family -> (n, T) columns, -1 where the compiler eliminated a fixed variable
    fixed: dict[str, np.ndarray]  # family -> (n, T) fixed values (used where cols == -1)
    rows: dict[str, dict]  # constraint family -> {key: [rows]}


def _index(m: pyo.ConcreteModel, d: DispatchData, h: HighsModel) -> _Index:
    T = d.T
    fams = {"p": (m.p, range(len(d.gen_ids))), "shed": (m.shed, range(len(d.load_ids))),
            "charge": (m.charge, range(len(d.sto_ids))), "discharge": (m.discharge, range(len(d.sto_ids))),
            "soc": (m.soc, range(len(d.sto_ids))), "pwl_cost": (m.pwl_cost, sorted(d.pwl))}
    if hasattr(m, "theta"):
        fams["theta"] = (m.theta, range(len(d.bus_ids)))
    if len(m.on):
        units = [int(g) for g in np.flatnonzero(d.committable)]
        fams.update({"on": (m.on, units), "start": (m.start, units), "stop": (m.stop, units)})
    cols, fixed = {}, {}
    for name, (var, keys) in fams.items():
        vs = [var[i, t] for i in keys for t in range(T)]
        n = len(list(keys))
        cols[name] = np.array([h._col.get(id(v), -1) for v in vs], dtype=np.int64).reshape(n, T)
        fixed[name] = np.array([np.nan if id(v) in h._col else (v.value or 0.0) for v in vs], float).reshape(n, T)
    rows = {}
    for name in ("balance", "nodal_balance", "flow_limit", "branch_limit", "soc_balance", "soc_end"):
        con = getattr(m, name, None)
        if con is not None:
            rows[name] = {k: h.rows_of(con[k]) for k in con.keys()}
    return _Index(cols, fixed, rows)


def _values(dm: DispatchModel, family: str) -> np.ndarray:
    """(n, T) solution values of a variable family."""
    c, f = dm.index.cols[family], dm.index.fixed[family]
    return np.where(c >= 0, dm.highs.x[np.maximum(c, 0)], f)


@dataclass
class DispatchModel:
    """A built dispatch problem: the data, the Pyomo model and (after :func:`solve_dispatch`) its HiGHS route."""

    data: DispatchData
    options: DispatchOptions
    model: pyo.ConcreteModel
    timings: dict[str, float] = field(default_factory=dict)
    highs: HighsModel | None = None
    source: Grid | None = None  # the grid it was built from (for diagnoses)
    index: _Index | None = None
    extensions: list = field(default_factory=list)
    initial_state: DispatchState | None = None


def build_dispatch_model(grid: Grid, options: DispatchOptions | None = None,
                         extensions: Sequence[Any] = (), initial_state: DispatchState | None = None) -> DispatchModel:
    """Build the Pyomo dispatch model of ``grid`` and its series (see the module docstring).

    ``extensions``: flexible consumers coupled to the grid (:mod:`solvers.day_ahead`), each with
    ``declare(m, d)`` (its variables and constraints), ``injections(m, d, t)`` (columns, bus positions,
    signs at snapshot t) and ``cost_terms(m, d)`` (objective coefficients and variables).  ``initial_state``:
    the state handed over from a previous window (:class:`DispatchState`)."""
    opts = options or DispatchOptions()
    if extensions and not opts.keep_model:
        raise DispatchInputError("a dispatch with extensions keeps its Pyomo model (keep_model=True)")
    if opts.network not in ("ptdf", "angle", "copper"):
        raise DispatchInputError(f"network must be 'ptdf', 'angle' or 'copper', got {opts.network!r}")
    t0 = time.perf_counter()
    d = prepare_dispatch_data(grid, opts, initial_state)
    t1 = time.perf_counter()
    m = pyo.ConcreteModel(name=f"dispatch {grid.name}")
    with _no_gc():
        declare_generation(m, d)
        declare_commitment(m, d)
        declare_ramping(m, d)
        declare_shedding(m, d, opts.voll is not None)
        declare_storage(m, d, opts.cyclic_storage, opts.end_soc_at_least_start)
        for ext in extensions:
            ext.declare(m, d)
        declare_balance_and_network(m, d, opts, extensions)
        declare_costs(m, d)
        declare_objective(m, d, opts, extensions)
    return DispatchModel(d, opts, m, {"prepare_s": t1 - t0, "build_s": time.perf_counter() - t1}, source=grid,
                         extensions=list(extensions), initial_state=initial_state)


def update_dispatch(dm: DispatchModel, *, load: pd.DataFrame | None = None, p_max_pu: pd.DataFrame | None = None,
                    marginal_cost: pd.DataFrame | None = None, soc_init: pd.Series | None = None,
                    inflow: pd.DataFrame | None = None, branch_limit: pd.Series | None = None) -> None:
    """Change demand (MW), availability (fraction of p_max_mw), costs (per MWh), the initial state of
    charge, storage inflows (MW) or branch limits (MW, branches limited when the model was built) of a
    solved model in place.

    The HiGHS instance keeps its basis, so the next :func:`solve_dispatch` is a warm re-solve; nothing is
    rebuilt.  Frames: rows = the model's snapshots, columns = some load / generator / storage ids."""
    if dm.highs is None:
        raise DispatchInputError("update_dispatch needs a model solved once (solve_dispatch(model))")
    d, h, T, ix = dm.data, dm.highs, dm.data.T, dm.index

    def block(df: pd.DataFrame, ids: pd.Index, what: str) -> tuple[np.ndarray, np.ndarray]:
        if not df.index.equals(d.snapshots):
            raise DispatchInputError(f"{what}: the index is not the model's snapshots")
        pos = ids.get_indexer(df.columns.astype(str))
        if (pos < 0).any():
            raise DispatchInputError(f"{what}: {df.columns[pos < 0][0]!r} is not in the model")
        vals = df.to_numpy(float).T
        if not np.isfinite(vals).all():
            raise DispatchInputError(f"{what}: values must be finite")
        return pos, vals

    if load is not None:
        pos, vals = block(load, d.load_ids, "load")
        d.demand[pos] = vals
        if dm.options.voll is not None:
            cols = ix.cols["shed"][pos].ravel()
            h.set_col_bounds(cols, np.zeros(len(cols)), np.maximum(vals, 0).ravel())
        nb = len(d.bus_ids)
        load_bus = d.load_at_buses()
        if dm.options.network == "angle":
            f, tt, nl = d.branch_f, d.branch_t, len(d.branch_f)
            inc = sp.csr_matrix((np.r_[np.ones(nl), -np.ones(nl)], (np.r_[f, tt], np.r_[np.arange(nl), np.arange(nl)])),
                                shape=(nb, nl))
            rows = np.array([ix.rows["nodal_balance"][b, t][0] for b in range(nb) for t in range(T)])
            rhs = (load_bus + (inc @ d.flow_offset)[:, None]).ravel()
            h.set_row_bounds(rows, rhs, rhs)
        else:
            rows = np.array([ix.rows["balance"][t][0] for t in range(T)])
            total = load_bus.sum(axis=0)
            h.set_row_bounds(rows, total, total)
            if "flow_limit" in ix.rows:
                keys = list(ix.rows["flow_limit"])
                shift = {(k, t): float(d.ptdf[k] @ load_bus[:, t] - d.flow_offset[k]) for (k, t) in keys}
                for (k, t) in keys:
                    lim = d.branch_limit[k]
                    rws = ix.rows["flow_limit"][k, t]
                    h.set_row_bounds(np.array(rws), np.full(len(rws), -lim + shift[k, t]),
                                     np.full(len(rws), lim + shift[k, t]))
    if p_max_pu is not None:
        pos, vals = block(p_max_pu, d.gen_ids, "p_max_pu")
        if ((vals < 0) | (vals > 1 + 1e-12)).any():
            raise DispatchInputError("p_max_pu: values must be in [0, 1]")
        d.p_max[pos] = d.p_nom[pos, None] * vals
        cols = ix.cols["p"][pos].ravel()
        h.set_col_bounds(cols, np.minimum(d.p_min[pos], d.p_max[pos]).ravel(), d.p_max[pos].ravel())
    if soc_init is not None:  # state of charge at the start (fraction of e_max_mwh), non-cyclic models
        if dm.options.cyclic_storage:
            raise DispatchInputError("soc_init can only be changed in a model built with cyclic_storage=False")
        pos = d.sto_ids.get_indexer(soc_init.index.astype(str))
        if (pos < 0).any():
            raise DispatchInputError(f"soc_init: {soc_init.index[pos < 0][0]!r} is not a storage unit of the model")
        d.sto_soc0[pos] = soc_init.to_numpy(float)
        for s_, frac in zip(pos, soc_init.to_numpy(float)):
            if "soc_end" in ix.rows:
                rows = np.array(ix.rows["soc_end"][s_])
                h.set_row_bounds(rows, np.full(len(rows), frac * d.sto_e[s_]), np.full(len(rows), np.inf))
    if inflow is not None:
        pos, vals = block(inflow, d.sto_ids, "inflow")
        d.sto_inflow[pos] = vals
    if inflow is not None or soc_init is not None:  # soc rows: rhs = Δ_t i_st (+ (1 − σ)^Δ e_s,−1 at t = 0)
        for s_ in range(len(d.sto_ids)):
            for t in range(T):
                rhs = d.hours[t] * d.sto_inflow[s_, t]
                if t == 0 and not dm.options.cyclic_storage:
                    rhs += (1.0 - d.sto_loss[s_]) ** d.hours[0] * d.sto_soc0[s_] * d.sto_e[s_]
                rows = np.array(ix.rows["soc_balance"][s_, t])
                h.set_row_bounds(rows, np.full(len(rows), rhs), np.full(len(rows), rhs))
    if branch_limit is not None:
        pos = d.branch_ids.get_indexer(branch_limit.index.astype(str))
        if (pos < 0).any():
            raise DispatchInputError(f"branch_limit: {branch_limit.index[pos < 0][0]!r} is not a branch of the model")
        vals = branch_limit.to_numpy(float)
        if (vals < 0).any() or np.isnan(vals).any():
            raise DispatchInputError("branch_limit: limits must be >= 0 (MW)")
        family = "branch_limit" if dm.options.network == "angle" else "flow_limit"
        rows_of = ix.rows.get(family, {})
        for k, lim in zip(pos, vals):
            keys = [(int(k), t) for t in range(T)]
            if not dm.options.line_limits or keys[0] not in rows_of:
                raise DispatchInputError(f"branch_limit: branch {d.branch_ids[k]!r} had no limit when the model was "
                                         "built: rebuild it with a (large) limit to change it in place")
            d.branch_limit[k] = lim
            for key in keys:
                t = key[1]
                shift = (float(d.ptdf[k] @ d.load_at_buses()[:, t]) - d.flow_offset[k]) if family == "flow_limit" \
                    else -d.flow_offset[k]
                rws = np.array(rows_of[key])
                h.set_row_bounds(rws, np.full(len(rws), -lim + shift), np.full(len(rws), lim + shift))
    if marginal_cost is not None:
        pos, vals = block(marginal_cost, d.gen_ids, "marginal_cost")
        d.cost[pos] = vals
        cols = ix.cols["p"][pos].ravel()
        h.set_costs(cols, (vals * d.hours[None, :]).ravel())


# -- the same structure with other numbers (sweeps re-solve one model) -----------------------------------------

#: grid columns and series whose values :func:`refresh_dispatch` changes in place (the others shape the matrix)
REFRESHABLE = {"load": ("p_mw", "q_mvar"), "storage": ("p_max_mw", "e_max_mwh", "soc_init"),
               "series": ("load.p_mw", "generator.p_max_pu", "generator.marginal_cost", "storage.inflow_mw")}


def _free_generators(grid: Grid, opts: DispatchOptions) -> pd.Series:
    """In-service generators whose capacity only bounds their output: no commitment and no ramp limits
    (their p̲ and p̄ enter ramp rows and commitment rows as coefficients)."""
    gens = grid.generator[grid.generator["in_service"]]
    committed = gens["committable"].astype(bool) & opts.unit_commitment
    ramped = np.isfinite(gens["ramp_up_mw_h"].to_numpy(float)) | np.isfinite(gens["ramp_down_mw_h"].to_numpy(float))
    return pd.Series(~committed.to_numpy() & ~ramped, index=gens.index)


def dispatch_structure(grid: Grid, options: DispatchOptions | None = None,
                       initial_state: DispatchState | None = None) -> list:
    """What shapes the dispatch model's matrix, as data to digest (:func:`twin.digest.content_digest`): every
    table and series of the grid with the values :func:`refresh_dispatch` changes blanked — loads, storage
    power, energy and initial charge, the capacity of generators without commitment or ramp limits, the
    availability, marginal-cost, load and inflow series (their ids and snapshots stay) — and the options."""
    opts = options or DispatchOptions()
    parts: list = [opts, initial_state, "snapshots", grid.snapshots]
    free = _free_generators(grid, opts)
    for name, df in grid.tables():
        masked = list(REFRESHABLE.get(name, ()))
        if name == "generator":
            frame = df.copy()
            rows = free.index[free.to_numpy()]
            frame.loc[rows, ["p_max_mw", "p_min_mw"]] = 0.0
            parts += [name, frame]
            continue
        parts += [name, df.drop(columns=[c for c in masked if c in df.columns])]
    for name in sorted(grid.series):
        df = grid.series[name]
        parts += [name, (list(map(str, df.columns)), df.index) if name in REFRESHABLE["series"] else df]
    return parts


def refresh_dispatch(dm: DispatchModel, grid: Grid) -> None:
    """Give a solved model the numbers of ``grid`` — a grid of the same structure (equal
    :func:`dispatch_structure` digests) — in place: demand (MW), generator capacity (MW, generators without
    commitment or ramp limits), availability and marginal costs, storage power (MW), energy (MWh), initial
    charge and inflows.  The next :func:`solve_dispatch` solves the new problem without rebuilding the Pyomo
    model or the HiGHS instance."""
    if dm.highs is None:
        raise DispatchInputError("refresh_dispatch needs a model solved once (solve_dispatch(model))")
    d, h, ix = dm.data, dm.highs, dm.index
    new = prepare_dispatch_data(grid, dm.options, dm.initial_state)
    for what in ("gen_ids", "load_ids", "sto_ids", "bus_ids", "branch_ids"):
        if not getattr(new, what).equals(getattr(d, what)):
            raise DispatchInputError(f"refresh_dispatch: the grid's {what[:-4]} ids differ from the model's")
    if not np.array_equal(new.hours, d.hours):
        raise DispatchInputError("refresh_dispatch: the snapshots differ from the model's")
    free = _free_generators(grid, dm.options).to_numpy()
    if not np.array_equal(new.p_nom[~free], d.p_nom[~free]):
        raise DispatchInputError("refresh_dispatch: a generator with commitment or ramp limits changed capacity")
    d.p_nom, d.p_max, d.p_min = new.p_nom.copy(), new.p_max.copy(), new.p_min.copy()  # writable (pandas 3: views)
    cols = ix.cols["p"][free]
    keep = cols >= 0
    h.set_col_bounds(cols[keep], new.p_min[free][keep], new.p_max[free][keep])
    frame = pd.DataFrame
    update_dispatch(dm, load=frame(new.demand.T, index=d.snapshots, columns=d.load_ids),
                    marginal_cost=frame(new.cost.T, index=d.snapshots, columns=d.gen_ids))
    if len(d.sto_ids):
        d.sto_p, d.sto_e = new.sto_p.copy(), new.sto_e.copy()
        T = d.T
        for fam, hi in (("charge", new.sto_p), ("discharge", new.sto_p), ("soc", new.sto_e)):
            c = ix.cols[fam]
            ok = c >= 0
            h.set_col_bounds(c[ok], np.zeros(int(ok.sum())), np.repeat(hi[:, None], T, axis=1)[ok])
        update_dispatch(dm, inflow=frame(new.sto_inflow.T, index=d.snapshots, columns=d.sto_ids),
                        soc_init=None if dm.options.cyclic_storage else pd.Series(new.sto_soc0, index=d.sto_ids))


@dataclass
class DispatchSolution:
    """Solution tables (rows = snapshots, columns = element ids) and the objective with its breakdown."""

    status: SolveStatus
    objective: float
    generation: pd.DataFrame
    curtailment: pd.DataFrame
    shed: pd.DataFrame
    storage_charge: pd.DataFrame
    storage_discharge: pd.DataFrame
    state_of_charge: pd.DataFrame
    flows: pd.DataFrame
    nodal_price: pd.DataFrame
    cost_breakdown: dict[str, float]
    timings: dict[str, float]
    hourly_cost: pd.Series | None = None  # objective per snapshot (generation + shedding)
    commitment: pd.DataFrame | None = None  # on/off (1/0) of committable units under unit commitment

    def summary(self) -> dict[str, Any]:
        return {"status": self.status.status, "objective": self.objective, **self.cost_breakdown,
                "shed_mwh": float(self.shed.to_numpy().sum()), "timings": self.timings}


def solve_dispatch(grid_or_model: Grid | DispatchModel, options: DispatchOptions | None = None, *,
                   warm: bool = True) -> DispatchSolution:
    """Build (if given a grid) and solve the dispatch with HiGHS; return the solution tables.  A model solved
    before is re-solved from its last basis (``warm``) or from scratch (:meth:`HighsModel.solve`)."""
    dm = grid_or_model if isinstance(grid_or_model, DispatchModel) else build_dispatch_model(grid_or_model, options)
    if dm.highs is None:
        with _no_gc():  # the compiler allocates many small objects: the collector cost ~40 % of the hand-over
            dm.highs = HighsModel(dm.model, threads=dm.options.threads, time_limit_s=dm.options.time_limit_s,
                                  quadratic=quadratic_terms(dm.model, dm.data))
            dm.index = _index(dm.model, dm.data, dm.highs)
        if not dm.options.keep_model:  # results and updates use the index: the Pyomo objects can go
            dm.model = None
            dm.highs.release_components()
    status = dm.highs.solve(mip_gap=dm.options.mip_gap, warm=warm)
    if not status.optimal:
        raise DispatchInputError(f"the dispatch is {status.status.lower()}: " + _diagnose(dm))
    return _solution(dm, status)


def _diagnose(dm: DispatchModel) -> str:
    """Why a dispatch has no solution: capacity short of demand, else an elastic re-solve (shedding allowed
    at a high price, storage free at the end) that names the buses and hours that must shed and the binding
    branch limits there."""
    d = dm.data
    peak = d.demand.sum(axis=0) + d.fixed_bus.sum()
    cap = d.p_max.sum(axis=0) + d.sto_p.sum()
    short = np.flatnonzero(cap < peak - 1e-9)
    if short.size:
        t = short[0]
        return (f"at {d.snapshots[t]!r} demand {peak[t]:.1f} MW exceeds the available generation and storage "
                f"{cap[t]:.1f} MW ({len(short)} snapshot(s) short)")
    if dm.source is None:
        return "no diagnosis available (the model was not built from a grid)"
    relaxed = replace(dm.options, voll=1e7, unit_commitment=dm.options.unit_commitment)
    try:
        sol = solve_dispatch(build_dispatch_model(dm.source, relaxed, dm.extensions, dm.initial_state))
    except DispatchInputError as exc:
        return f"even with load shedding allowed it has no solution ({exc})"
    shed = sol.shed
    if shed.to_numpy().sum() <= 1e-6:
        return "an elastic re-solve needs no shedding: check storage energy bounds and minimum outputs"
    buses = pd.Series(shed.sum().to_numpy(), index=d.bus_ids[d.load_bus]).groupby(level=0).sum()
    buses = buses[buses > 1e-6].sort_values(ascending=False)
    hours = shed.index[shed.sum(axis=1) > 1e-6]
    flows = sol.flows.abs()
    limit = pd.Series(d.branch_limit, index=d.branch_ids)
    at_limit = [k for k in flows.columns if np.isfinite(limit[k]) and (flows[k] >= limit[k] - 1e-6).any()]
    return (f"the network cannot supply {shed.to_numpy().sum():.1f} MWh: shedding needed at bus(es) "
            f"{', '.join(map(repr, buses.index[:8]))} in {len(hours)} snapshot(s) from {hours[0]!r}"
            + (f"; branch limits binding there: {', '.join(map(repr, at_limit[:8]))}" if at_limit else ""))


def _solution(dm: DispatchModel, status: SolveStatus) -> DispatchSolution:
    d, h, ix = dm.data, dm.highs, dm.index
    T = d.T
    idx = pd.Index(d.snapshots, name="snapshot")

    def table(family, ids):
        return pd.DataFrame(_values(dm, family).T, index=idx, columns=ids)

    gen = table("p", d.gen_ids)
    shed = table("shed", d.load_ids)
    ch, dis, soc = (table(f, d.sto_ids) for f in ("charge", "discharge", "soc"))
    # flows from the injections (DC PTDF or angles)
    nb = len(d.bus_ids)
    inj = np.zeros((nb, T))
    np.add.at(inj, d.gen_bus, gen.to_numpy().T)
    np.add.at(inj, d.sto_bus, (dis - ch).to_numpy().T)
    np.add.at(inj, d.load_bus, shed.to_numpy().T)
    for ext in dm.extensions:
        for t in range(T):
            cols, bus, sign = ext.injections(dm.model, d, t)
            np.add.at(inj[:, t], np.asarray(bus, np.int64), np.asarray(sign) * h.values_of(cols))
    inj -= d.load_at_buses()
    if dm.options.network == "angle":
        th = _values(dm, "theta")
        flows = d.branch_b[:, None] * (th[d.branch_f] - th[d.branch_t]) + d.flow_offset[:, None]
    elif d.ptdf is not None:
        flows = d.ptdf @ inj + d.flow_offset[:, None]
    else:
        flows = np.full((len(d.branch_ids), T), np.nan)  # copper plate: no network
    # nodal prices from duals
    if dm.options.network == "angle":
        rows = ix.rows["nodal_balance"]
        price = np.array([h.row_duals[rows[b, t]].sum() for b in range(nb) for t in range(T)]).reshape(nb, T)
    else:
        lam = np.array([h.row_duals[ix.rows["balance"][t]].sum() for t in range(T)])
        price = np.repeat(lam[None, :], nb, axis=0)
        if "flow_limit" in ix.rows:
            mu = np.zeros((len(d.branch_ids), T))
            for (k, t), r in ix.rows["flow_limit"].items():
                mu[k, t] = h.row_duals[r].sum()
            price = price + d.ptdf.T @ mu
    hours = d.hours[None, :]
    pg = gen.to_numpy().T
    gen_cost_t = (d.cost * pg * hours).sum(axis=0) + (d.quad[:, None] * pg**2 * hours).sum(axis=0)
    if d.pwl:
        gen_cost_t = gen_cost_t + (_values(dm, "pwl_cost") * d.hours[None, :]).sum(axis=0)
    if "on" in ix.cols:  # start-up and shut-down costs, counted in the hour they happen
        units = np.flatnonzero(d.committable)
        gen_cost_t = gen_cost_t + (d.startup_cost[units, None] * np.round(_values(dm, "start"))).sum(axis=0) \
            + (d.shutdown_cost[units, None] * np.round(_values(dm, "stop"))).sum(axis=0)
    shed_cost_t = (dm.options.voll or 0.0) * (shed.to_numpy().T * hours).sum(axis=0)
    energy_cost, shed_cost = float(gen_cost_t.sum()), float(shed_cost_t.sum())
    breakdown = {"generation": energy_cost, "shedding": shed_cost}
    for ext in dm.extensions:
        c, v = ext.cost_terms(dm.model, d)
        breakdown[ext.name] = float(np.dot(np.asarray(c, float), h.values_of(v))) if len(c) else 0.0
    return DispatchSolution(
        status=status, objective=status.objective, generation=gen,
        curtailment=pd.DataFrame((d.p_max - gen.to_numpy().T).T.clip(min=0), index=idx, columns=d.gen_ids),
        shed=shed, storage_charge=ch, storage_discharge=dis, state_of_charge=soc,
        flows=pd.DataFrame(flows.T, index=idx, columns=d.branch_ids),
        nodal_price=pd.DataFrame(price.T, index=idx, columns=d.bus_ids),
        cost_breakdown=breakdown,
        timings={**dm.timings, **h.timings, **status.timings},
        hourly_cost=pd.Series(gen_cost_t + shed_cost_t, index=idx, name="cost"),
        commitment=(pd.DataFrame(np.round(_values(dm, "on")).T + 0.0, index=idx,
                                 columns=d.gen_ids[np.flatnonzero(d.committable)]) if "on" in ix.cols else None),
    )
