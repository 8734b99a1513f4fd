"""Static user-equilibrium traffic assignment with BPR link costs.

Link-based methods: Frank-Wolfe (``fw``), conjugate (``cfw``) and bi-conjugate (``bfw``)
Frank-Wolfe (Mitradjieva & Lindberg, 2013) with an exact line search.  Path-based: gradient
projection (``gp``, Jayakrishnan et al., 1994), which keeps each OD pair's used paths and reaches
relative gaps of 1e-10 and below where Frank-Wolfe methods stall.  Shortest paths, all-or-nothing
loading and the path-based sweeps run in the Cython kernel :mod:`twin._ext.paths`.

Convergence is measured by the relative gap in its standard form,
``(TSTT - SPTT) / TSTT``, where ``TSTT = Σ_a v_a c_a(v_a)`` and ``SPTT = Σ_od q_od · min-cost_od``
are both evaluated at the *current* flows' costs.  Costs are generalised:
``c_a = t_a(v_a) + toll_factor · toll_a + distance_factor · length_a`` with
``t_a = t0_a (1 + alpha_a (v_a / cap_a) ** beta_a)`` in minutes.
"""

from __future__ import annotations

import math
import time as _time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._ext import assignment as _a
from .._ext import paths as _p
from .network import TransportNetwork

__all__ = ["assign_traffic", "AssignmentResult", "AssignmentWarning", "AssignmentError", "METHODS"]

METHODS = ("fw", "cfw", "bfw", "gp")


class AssignmentError(ValueError):
    """The assignment cannot be set up (names the link, zone or option at fault)."""


class AssignmentWarning(UserWarning):
    """Demand that cannot be assigned (no path) or an assignment that stopped short of its gap."""


@dataclass
class _Compiled:
    node_ids: np.ndarray
    link_ids: np.ndarray
    graph: Any
    tail: np.ndarray
    head: np.ndarray
    t0: np.ndarray
    cap: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    g: np.ndarray  # constant generalised-cost term per link
    length: np.ndarray
    closed: np.ndarray
    origins: np.ndarray  # origin node indices
    od_ptr: np.ndarray
    od_dest: np.ndarray
    od_trips: np.ndarray
    od_origin_zone: np.ndarray
    od_dest_zone: np.ndarray
    intrazonal: float
    zone_ids: np.ndarray
    zone_node: np.ndarray


def _compile(tn: TransportNetwork, toll_factor: float, distance_factor: float, closed_links: Iterable[str],
             capacity_factor: Mapping[str, float] | pd.Series | None, hour: int | None) -> _Compiled:
    tn.validate()
    node_ids = tn.node.index.to_numpy(dtype=object)
    nidx = pd.Index(node_ids)
    link = tn.link
    if not len(link):
        raise AssignmentError("the network has no links")
    tail = nidx.get_indexer(link["from_node"]).astype(np.int32)
    head = nidx.get_indexer(link["to_node"]).astype(np.int32)
    cap = link["capacity_veh_h"].to_numpy(float).copy()
    closed = np.zeros(len(link), dtype=bool)
    closed_links = list(closed_links)
    if closed_links:
        pos = link.index.get_indexer(closed_links)
        if (pos < 0).any():
            raise AssignmentError(f"closed link {closed_links[int(np.flatnonzero(pos < 0)[0])]!r} is not a link id")
        closed[pos] = True
    if capacity_factor is not None:
        cf = pd.Series(capacity_factor, dtype=float)
        pos = link.index.get_indexer(cf.index)
        if (pos < 0).any():
            raise AssignmentError(f"capacity_factor for {cf.index[pos < 0][0]!r}, which is not a link id")
        if (cf.to_numpy() < 0).any() or not np.isfinite(cf.to_numpy()).all():
            raise AssignmentError("capacity factors must be finite and >= 0 (0 closes the link)")
        cap[pos] *= cf.to_numpy()
        closed[pos[cf.to_numpy() == 0]] = True
        cap[closed] = np.where(cap[closed] > 0, cap[closed], 1.0)
    length = link["length"].to_numpy(float)
    g = toll_factor * link["toll"].to_numpy(float) + distance_factor * length
    if (g < 0).any():
        raise AssignmentError("negative generalised cost terms (toll_factor × toll + distance_factor × length)")
    through = tn.node["through"].to_numpy(bool).astype(np.int8)
    graph = _p.Graph(len(node_ids), tail, head, through)

    # demand: static (hour -1) or one hour, in passenger-car equivalents
    od = tn.od
    sel = od["hour"].to_numpy() == (-1 if hour is None else hour)
    if hour is None and not sel.any() and len(od):
        raise AssignmentError("the network has hourly demand only: give hour=0..23")
    od = od[sel]
    pce = tn.vehicle_class["pce"].reindex(od["vehicle_class"]).to_numpy(float)
    trips = od["trips_veh_h"].to_numpy(float) * pce
    zone_ids = tn.zone.index.to_numpy(dtype=object)
    zone_node = nidx.get_indexer(tn.zone["node"]).astype(np.int32)
    zidx = pd.Index(zone_ids)
    oz = zidx.get_indexer(od["origin"])
    dz = zidx.get_indexer(od["destination"])
    intra = oz == dz
    intrazonal = float(trips[intra].sum())
    keep = ~intra & (trips > 0)
    frame = pd.DataFrame({"o": oz[keep], "d": dz[keep], "q": trips[keep]}).groupby(["o", "d"], sort=True)["q"].sum()
    oz, dz = frame.index.get_level_values(0).to_numpy(), frame.index.get_level_values(1).to_numpy()
    q = frame.to_numpy(float)
    onode = zone_node[oz]
    order = np.lexsort((dz, onode))
    onode, oz, dz, q = onode[order], oz[order], dz[order], q[order]
    origins, starts = np.unique(onode, return_index=True)
    od_ptr = np.append(starts, len(onode)).astype(np.int32)
    return _Compiled(
        node_ids=node_ids, link_ids=link.index.to_numpy(dtype=object), graph=graph, tail=tail, head=head,
        t0=link["free_flow_time_min"].to_numpy(float).copy(), cap=cap, alpha=link["alpha"].to_numpy(float).copy(),
        beta=link["beta"].to_numpy(float).copy(), g=g, length=length, closed=closed,
        origins=origins.astype(np.int32), od_ptr=od_ptr, od_dest=zone_node[dz].astype(np.int32),
        od_trips=q, od_origin_zone=zone_ids[oz], od_dest_zone=zone_ids[dz], intrazonal=intrazonal,
        zone_ids=zone_ids, zone_node=zone_node,
    )


@dataclass
class AssignmentResult:
    """An equilibrium (or the last iterate of an assignment that stopped short).

    * ``link``: index = link id; ``from_node``, ``to_node``, ``flow`` (vehicles/h, PCE),
      ``time_min`` (BPR travel time), ``cost`` (generalised), ``voc`` (flow / capacity), ``closed``.
    * ``gap`` (relative gap of the final flows), ``iterations``, ``converged``, ``method``;
      ``tstt`` (Σ flow × generalised cost), ``total_time`` (Σ flow × travel time, vehicle-min/h),
      ``beckmann`` (the objective), ``sptt``.
    * ``history``: per iteration ``rel_gap``, ``tstt``, ``sptt``, ``beckmann``, ``step``, ``time_s``.
    * ``unserved``: OD pairs with demand but no open path (origin, destination, trips), excluded from
      the assignment; ``intrazonal_trips``: demand inside a zone (not assigned).
    * :meth:`skim`: zone-to-zone matrices along the final shortest paths.
    """

    method: str
    link: pd.DataFrame
    gap: float
    iterations: int
    converged: bool
    tstt: float
    sptt: float
    total_time: float
    beckmann: float
    history: pd.DataFrame
    unserved: pd.DataFrame
    intrazonal_trips: float
    wall_time_s: float
    _compiled: _Compiled = field(repr=False)
    _cost: np.ndarray = field(repr=False)

    def skim(self, what: str | Iterable[str] = "time") -> pd.DataFrame | dict[str, pd.DataFrame]:
        """Zone × zone matrices along the shortest (generalised-cost) paths at the final flows.

        ``what``: ``"time"`` (min), ``"cost"`` (generalised), ``"distance"`` (length unit) or several;
        NaN where no path exists, 0 on the diagonal."""
        kinds = [what] if isinstance(what, str) else list(what)
        cw = self._compiled
        rows = {"time": self.link["time_min"].to_numpy(float), "cost": self._cost, "distance": cw.length}
        bad = [k for k in kinds if k not in rows]
        if bad:
            raise ValueError(f"unknown skim {bad[0]!r}; choose from {sorted(rows)}")
        attrs = np.ascontiguousarray(np.vstack([rows[k] for k in kinds]))
        cost = np.where(cw.closed, np.inf, self._cost)
        out = cw.graph.skim(cost, cw.zone_node, cw.zone_node, attrs)
        frames = {k: pd.DataFrame(out[i], index=pd.Index(cw.zone_ids, name="origin"),
                                  columns=pd.Index(cw.zone_ids, name="destination")) for i, k in enumerate(kinds)}
        return frames[kinds[0]] if isinstance(what, str) else frames

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable key figures."""
        return {"method": self.method, "gap": float(self.gap), "iterations": int(self.iterations),
                "converged": bool(self.converged), "tstt": float(self.tstt), "total_time": float(self.total_time),
                "beckmann": float(self.beckmann), "unserved_trips": float(self.unserved["trips"].sum()),
                "wall_time_s": self.wall_time_s}


def assign_traffic(
    tn: TransportNetwork,
    method: str = "bfw",
    rel_gap: float = 1e-5,
    max_iter: int = 1000,
    *,
    toll_factor: float = 0.0,
    distance_factor: float = 0.0,
    closed_links: Iterable[str] = (),
    capacity_factor: Mapping[str, float] | pd.Series | None = None,
    hour: int | None = None,
    time_limit_s: float | None = None,
) -> AssignmentResult:
    """Static user equilibrium of ``tn``'s demand (not modified).

    ``method``: ``"fw"``, ``"cfw"``, ``"bfw"`` or ``"gp"`` (path-based; for gaps of 1e-8 and below).
    Stops at ``rel_gap`` (relative gap of the current flows), ``max_iter`` iterations or
    ``time_limit_s``.  Generalised cost = BPR time (min) +
    ``toll_factor`` × toll + ``distance_factor`` × length.  ``closed_links`` (ids) and
    ``capacity_factor`` (link id → multiplier; 0 closes) change this run only.  ``hour`` picks hourly
    demand rows (default: the static rows, hour -1).  Demand with no open path is reported in
    ``result.unserved`` and an :class:`AssignmentWarning`, never silently dropped.
    """
    t_start = _time.perf_counter()
    method = method.lower()
    if method not in METHODS:
        raise AssignmentError(f"unknown method {method!r}; choose from {METHODS}")
    if not rel_gap > 0:
        raise AssignmentError("rel_gap must be positive")
    cw = _compile(tn, toll_factor, distance_factor, closed_links, capacity_factor, hour)
    m = len(cw.link_ids)
    args = (cw.t0, cw.cap, cw.alpha, cw.beta, cw.g)
    cost = np.empty(m)
    reached = np.ones(len(cw.od_trips), dtype=np.int8)

    def current_cost(v: np.ndarray) -> np.ndarray:
        _a.costs(*args, v, cost)
        return np.where(cw.closed, np.inf, cost)

    def aon(c: np.ndarray) -> tuple[np.ndarray, float]:
        y = np.empty(m)
        sptt = cw.graph.all_or_nothing(c, cw.origins, cw.od_ptr, cw.od_dest, cw.od_trips, y, reached)
        return y, sptt

    history: list[tuple] = []
    # all-or-nothing skips (and flags in ``reached``) demand with no path: it is reported, not assigned
    if method == "gp":
        v, tstt, sptt, gap, it, converged = _path_based(cw, reached, rel_gap, max_iter, time_limit_s, t_start, history)
    else:
        v, tstt, sptt, gap, it, converged = _frank_wolfe(cw, method, aon, current_cost, reached, rel_gap, max_iter,
                                                         time_limit_s, t_start, history)
    unreached = reached == 0
    lost = cw.od_trips[unreached].copy()
    c = current_cost(v)
    time_min = np.where(cw.closed, np.nan, c - cw.g)
    link = pd.DataFrame({
        "from_node": cw.node_ids[cw.tail], "to_node": cw.node_ids[cw.head], "flow": v, "time_min": time_min,
        "cost": np.where(cw.closed, np.nan, c), "voc": v / cw.cap, "closed": cw.closed,
    }, index=pd.Index(cw.link_ids, name="link"))
    unserved = pd.DataFrame({"origin": cw.od_origin_zone[unreached], "destination": cw.od_dest_zone[unreached],
                             "trips": lost})
    hist = pd.DataFrame(history, columns=["iteration", "rel_gap", "tstt", "sptt", "beckmann", "step", "time_s"])
    res = AssignmentResult(
        method=method, link=link, gap=gap, iterations=it, converged=converged, tstt=tstt, sptt=sptt,
        total_time=float(np.nansum(v * time_min)), beckmann=float(_a.beckmann(*args, v)), history=hist,
        unserved=unserved, intrazonal_trips=cw.intrazonal, wall_time_s=_time.perf_counter() - t_start,
        _compiled=cw, _cost=np.where(cw.closed, np.inf, c),
    )
    if unreached.any():
        warnings.warn(f"{int(unreached.sum())} OD pair(s) with {res.unserved['trips'].sum():.6g} vehicles/h have "
                      f"no open path and were not assigned (first: {res.unserved.iloc[0]['origin']!r} -> "
                      f"{res.unserved.iloc[0]['destination']!r}); see result.unserved", AssignmentWarning,
                      stacklevel=2)
    if not converged:
        warnings.warn(f"{method} stopped at relative gap {gap:.3g} > {rel_gap:g} after {it} iterations",
                      AssignmentWarning, stacklevel=2)
    return res



def _path_based(cw: _Compiled, reached: np.ndarray, rel_gap: float, max_iter: int, time_limit_s: float | None,
                t_start: float, history: list) -> tuple:
    """Gradient projection: each sweep measures the gap of the current flows from its own shortest-path trees
    (no extra all-or-nothing), then shifts flow unless converged."""
    args = (cw.t0, cw.cap, cw.alpha, cw.beta, cw.g)
    pb = _p.PathBased(cw.graph, cw.t0, cw.cap, cw.alpha, cw.beta, cw.g, cw.closed.astype(np.int8), cw.origins,
                      cw.od_ptr, cw.od_dest, cw.od_trips)
    pb.sweep(math.inf, reached)  # all-or-nothing loading at free-flow costs
    it = 0
    while True:
        stop = it >= max_iter or (time_limit_s is not None and _time.perf_counter() - t_start > time_limit_s)
        v = pb.v_arr.copy()
        beck = _a.beckmann(*args, v)
        tstt, sptt = pb.sweep(math.inf if stop else rel_gap, reached)
        gap = (tstt - sptt) / tstt if tstt > 0 else 0.0
        history.append((it, gap, tstt, sptt, beck, np.nan, _time.perf_counter() - t_start))
        if gap <= rel_gap:
            return v, tstt, sptt, gap, it, True
        if stop:
            return v, tstt, sptt, gap, it, False
        it += 1


def _frank_wolfe(cw: _Compiled, method: str, aon, current_cost, reached: np.ndarray, rel_gap: float, max_iter: int,
                 time_limit_s: float | None, t_start: float, history: list) -> tuple:
    """FW, CFW, BFW: all-or-nothing direction (conjugated), exact line search, standard gap each iteration."""
    args = (cw.t0, cw.cap, cw.alpha, cw.beta, cw.g)
    deriv = np.empty(len(cw.t0))
    v, _ = aon(current_cost(np.zeros(len(cw.t0))))
    s_prev = s_prev2 = None
    step_prev = step_prev2 = 1.0
    it = 0
    while True:
        c = current_cost(v)
        y, sptt = aon(c)
        tstt = float(np.dot(v, np.where(cw.closed, 0.0, c)))
        gap = (tstt - sptt) / tstt if tstt > 0 else 0.0
        history.append((it, gap, tstt, sptt, _a.beckmann(*args, v), step_prev if it else np.nan,
                        _time.perf_counter() - t_start))
        if gap <= rel_gap:
            return v, tstt, sptt, gap, it, True
        if it >= max_iter or (time_limit_s is not None and _time.perf_counter() - t_start > time_limit_s):
            return v, tstt, sptt, gap, it, False
        it += 1
        s = y
        if method != "fw" and s_prev is not None and step_prev < 1.0:
            _a.derivatives(cw.t0, cw.cap, cw.alpha, cw.beta, v, deriv)
            if method == "cfw" or s_prev2 is None or step_prev2 >= 1.0:
                w = deriv * (s_prev - v)
                den = float(np.dot(w, y - s_prev))
                alpha = float(np.dot(w, y - v)) / den if den != 0 else 0.0
                alpha = min(max(alpha, 0.0), 1.0 - 1e-6)
                s = alpha * s_prev + (1.0 - alpha) * y
            else:
                w = deriv * (step_prev * s_prev - v + (1.0 - step_prev) * s_prev2)
                den = float(np.dot(w, s_prev2 - s_prev))
                mu = max(0.0, -float(np.dot(w, y - v)) / den) if den != 0 else 0.0
                w = deriv * (s_prev - v)
                den = float(np.dot(w, s_prev - v))
                nu = max(0.0, mu * step_prev / (1.0 - step_prev) - float(np.dot(w, y - v)) / den) if den != 0 \
                    else 0.0
                b0 = 1.0 / (1.0 + mu + nu)
                s = b0 * y + nu * b0 * s_prev + mu * b0 * s_prev2
        d = s - v
        lam, _ = _a.line_search(*args, v, d)
        if lam <= 0.0 and s is not y:  # the conjugate direction does not descend: restart from Frank-Wolfe's
            s, d = y, y - v
            lam, _ = _a.line_search(*args, v, d)
            step_prev2 = 1.0
        v = v + lam * d
        s_prev2, s_prev = s_prev, s
        step_prev2, step_prev = step_prev, lam
