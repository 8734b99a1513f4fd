"""Compile a :class:`WaterNetwork` into the flat arrays of the hydraulic kernel.

Node order: junctions ``0..nj-1``, then reservoirs, then tanks (fixed-head
nodes).  Link order: pipes, pumps, valves.  Pattern and curve references
become integer indices; EPANET's derived quantities (pipe resistances, pump
curve fits, tank volumes) are computed here once, in SI.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from ..schema import SchemaError
from . import units as U
from .network import WaterNetwork

# EPANET codes (see ext/hydraulics.pyx)
CVPIPE, PIPE, PUMP, PRV, PSV, PBV, FCV, TCV, GPV, PCV = range(10)
VALVE_CODE = {"PRV": PRV, "PSV": PSV, "PBV": PBV, "FCV": FCV, "TCV": TCV, "GPV": GPV, "PCV": PCV}
XHEAD, TEMPCLOSED, CLOSED, OPEN, ACTIVE, XFLOW, XFCV, XPRESSURE = range(8)
CONST_HP, POWER_FUNC, CUSTOM, NOCURVE = range(4)
LOWLEVEL, HILEVEL, TIMER, TIMEOFDAY = range(4)
MISSING = U.MISSING


class NetworkError(ValueError):
    """The network cannot be simulated as it stands (names the element and the reason)."""


@dataclass
class CompiledWater:
    """Flat arrays describing a water network (SI; EPANET's codes)."""

    node_ids: np.ndarray
    link_ids: np.ndarray
    nj: int
    n_res: int
    net: dict  # arrays for the kernel
    opts: dict  # scalar options for the kernel
    # demands
    demand_junction: np.ndarray
    demand_base: np.ndarray
    demand_pattern: np.ndarray  # index into patterns (-1 = constant 1)
    patterns: list[np.ndarray]
    pattern_ids: list[str]
    # fixed-head nodes
    res_head: np.ndarray  # base head of reservoirs (m)
    res_pattern: np.ndarray
    tank_v0: np.ndarray
    tank_vmin: np.ndarray
    tank_vmax: np.ndarray
    tank_h0: np.ndarray
    tank_curve: np.ndarray  # curve index or -1
    tank_elev: np.ndarray
    # links
    init_status: np.ndarray
    init_setting: np.ndarray
    init_flow: np.ndarray
    pump_links: np.ndarray
    pump_speed_pattern: np.ndarray
    pump_eff_curve: np.ndarray
    pump_price: np.ndarray
    pump_price_pattern: np.ndarray
    curves_x: list[np.ndarray]
    curves_y: list[np.ndarray]
    curve_ids: list[str]
    # controls (all kinds; the kernel gets the junction-pressure ones)
    controls: dict = field(default_factory=dict)
    perm: np.ndarray | None = None
    ldl_ap: np.ndarray | None = None
    ldl_ai: np.ndarray | None = None
    pairpos: np.ndarray | None = None


def _interp(x: np.ndarray, y: np.ndarray, xx: float) -> float:
    """EPANET's interp(): linear, clamped at both ends."""
    if len(x) == 0:
        return 0.0
    if xx <= x[0]:
        return float(y[0])
    for k in range(1, len(x)):
        if x[k] >= xx:
            dx = x[k] - x[k - 1]
            if abs(dx) < U.TINY:
                return float(y[k])
            return float(y[k] - (x[k] - xx) * (y[k] - y[k - 1]) / dx)
    return float(y[-1])


def minimum_degree_order(n: int, edges: np.ndarray) -> np.ndarray:
    """A minimum-degree elimination order of an undirected graph (``edges``: m×2 array).

    Returns ``perm`` with ``perm[k]`` = the node eliminated k-th.  Ties go to
    the lowest node index, which keeps the order deterministic.
    """
    adj: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges:
        if a != b:
            adj[a].add(b)
            adj[b].add(a)
    heap = [(len(adj[i]), i) for i in range(n)]
    heapq.heapify(heap)
    done = np.zeros(n, dtype=bool)
    order = []
    while heap:
        deg, v = heapq.heappop(heap)
        if done[v] or deg != len(adj[v]):
            continue
        done[v] = True
        order.append(v)
        nbrs = adj[v]
        for u in nbrs:
            au = adj[u]
            au.discard(v)
            au |= nbrs
            au.discard(u)
        for u in nbrs:
            heapq.heappush(heap, (len(adj[u]), u))
        adj[v] = set()
    return np.array(order, dtype=np.int32)


def fit_pump_curve(q, h, tiny_q: float) -> tuple[str, float, float, float]:
    """EPANET's reading of a pump head curve (flow ``q``, head ``h``).

    One point (q1, h1), or three points starting at zero flow, give a power function
    h = a + b·q^c (b < 0; one point: shutoff head 4/3·h1, zero head at 2·q1): returns
    ("power", a, b, c).  Any other curve is used as given, interpolated linearly:
    ("custom", 0, 0, 0).  Raises ValueError (EPANET error 227) when the power function
    cannot be fitted or a multi-point curve's heads do not decrease.  ``tiny_q`` is
    EPANET's TINY in the units of ``q``.
    """
    if len(q) == 1 or (len(q) == 3 and q[0] == 0.0):
        if len(q) == 1:
            h0, q1, h1, q2, h2 = 1.33334 * h[0], q[0], h[0], 2.0 * q[0], 0.0
        else:
            h0, q1, h1, q2, h2 = h[0], q[1], h[1], q[2], h[2]
        ok = not (h0 < U.TINY or h0 - h1 < U.TINY or h1 - h2 < U.TINY or q1 < tiny_q or q2 - q1 < tiny_q)
        if ok:
            c = math.log((h0 - h2) / (h0 - h1)) / math.log(q2 / q1)
            ok = 0.0 < c <= 20.0
        if ok:
            b = -(h0 - h1) / q1**c
            ok = b < 0.0
        if not ok:
            raise ValueError("cannot be fitted by h = a - b·q^c (EPANET error 227)")
        return "power", float(h0), float(b), float(c)
    if any(h[i] >= h[i - 1] for i in range(1, len(h))):
        raise ValueError("must have decreasing heads (EPANET error 227)")
    return "custom", 0.0, 0.0, 0.0


def illegal_valve_pairs(valves) -> list[tuple[str, str]]:
    """Pairs of PRV/PSV/FCV valves connected in a way EPANET refuses (its error 220).

    ``valves``: the ``valve`` table.  Two PRVs may not share a downstream node or
    be in series, nor two PSVs share an upstream node or be in series; a PSV may
    not start at a PRV's or FCV's downstream node, nor an FCV start at a PRV's
    downstream node.  Returns (later valve, earlier valve) id pairs in table order.
    """
    seen: list[tuple[str, str, str, str]] = []
    bad = []
    for vid, vt, a, b in zip(valves.index, valves["valve_type"], valves["node1"], valves["node2"]):
        if vt not in ("PRV", "PSV", "FCV"):
            continue
        for oid, ot, oa, ob in seen:
            pair = {vt, ot}
            if vt == ot == "PRV":
                clash = ob == b or ob == a or oa == b
            elif vt == ot == "PSV":
                clash = oa == a or oa == b or ob == a
            elif pair == {"PRV", "PSV"}:
                (_pa, pb), (sa, _sb) = ((a, b), (oa, ob)) if vt == "PRV" else ((oa, ob), (a, b))
                clash = pb == sa
            elif pair == {"FCV", "PSV"}:
                (_fa, fb), (sa, _sb) = ((a, b), (oa, ob)) if vt == "FCV" else ((oa, ob), (a, b))
                clash = fb == sa
            elif pair == {"FCV", "PRV"}:
                (fa, fb), (pa, pb) = ((a, b), (oa, ob)) if vt == "FCV" else ((oa, ob), (a, b))
                clash = pb == fa
            else:  # two FCVs
                clash = False
            if clash:
                bad.append((vid, oid))
        seen.append((vid, vt, a, b))
    return bad


def compile_water(wn: WaterNetwork, *, accuracy: float | None = None, demand_model: str | None = None,
                  trials: int | None = None) -> CompiledWater:
    """Build the kernel's arrays for ``wn`` (not modified).

    ``accuracy``, ``demand_model`` and ``trials`` override the network's options.
    Raises :class:`NetworkError` naming the element for what EPANET would refuse.
    """
    try:
        wn.validate()
    except SchemaError as exc:
        raise NetworkError(str(exc)) from None
    o = wn.options
    j, r, t = wn.junction, wn.reservoir, wn.tank
    nj, nr, nt = len(j), len(r), len(t)
    if nr + nt == 0:
        raise NetworkError("the network has no reservoir or tank: heads are undetermined")
    node_ids = np.concatenate([j.index.to_numpy(object), r.index.to_numpy(object), t.index.to_numpy(object)])
    nn = len(node_ids)
    node_index = {n: i for i, n in enumerate(node_ids)}
    pipes, pumps, valves = wn.pipe, wn.pump, wn.valve
    link_ids = np.concatenate([pipes.index.to_numpy(object), pumps.index.to_numpy(object),
                               valves.index.to_numpy(object)])
    nl = len(link_ids)
    if nl == 0:
        raise NetworkError("the network has no links")

    # patterns and curves
    pattern_ids = list(wn.patterns)
    patterns = [np.asarray(wn.patterns[p], dtype=float) for p in pattern_ids]
    pidx = {p: i for i, p in enumerate(pattern_ids)}
    default_pat = pidx.get(o.pattern, -1)

    def pat(name: str, default: int = -1) -> int:
        return pidx[name] if name else default

    curve_ids = list(wn.curves)
    cidx = {c: i for i, c in enumerate(curve_ids)}
    curves_x = [wn.curves[c].x for c in curve_ids]
    curves_y = [wn.curves[c].y for c in curve_ids]
    cptr = np.zeros(len(curve_ids) + 1, dtype=np.int32)
    for i, x in enumerate(curves_x):
        cptr[i + 1] = cptr[i] + len(x)
    cx = np.concatenate(curves_x) if curves_x else np.zeros(1)
    cy = np.concatenate(curves_y) if curves_y else np.zeros(1)

    # nodes
    elev = np.zeros(nn)
    elev[:nj] = j["elevation_m"].to_numpy(float)
    elev[nj:nj + nr] = r["head_m"].to_numpy(float)
    elev[nj + nr:] = t["elevation_m"].to_numpy(float)
    qexp = 1.0 / o.emitter_exponent
    kcoef = j["emitter_coefficient"].to_numpy(float)
    ke = np.zeros(nn)
    with np.errstate(divide="ignore"):
        ke[:nj] = np.where(kcoef > 0, kcoef ** (-qexp), 0.0)

    # tanks
    tank_area = np.zeros(nr + nt)
    tank_hmin = np.zeros(nr + nt)
    tank_hmax = np.zeros(nr + nt)
    tank_over = np.zeros(nr + nt, dtype=np.int32)
    tank_v0 = np.zeros(nt)
    tank_vmin = np.zeros(nt)
    tank_vmax = np.zeros(nt)
    tank_curve = np.full(nt, -1, dtype=np.int64)
    tel = t["elevation_m"].to_numpy(float)
    for i, (tid, row) in enumerate(t.iterrows()):
        lo, hi, h0 = row["min_level_m"], row["max_level_m"], row["init_level_m"]
        if row["volume_curve"]:
            c = cidx[row["volume_curve"]]
            x, y = curves_x[c], curves_y[c]
            if lo < x[0] or hi > x[-1]:
                raise NetworkError(f"tank {tid!r}: levels {lo:g}..{hi:g} m are outside its volume curve "
                                   f"{row['volume_curve']!r} ({x[0]:g}..{x[-1]:g} m)")
            tank_vmin[i] = _interp(x, y, lo)
            tank_vmax[i] = _interp(x, y, hi)
            tank_v0[i] = _interp(x, y, h0)
            a = (y[-1] - y[0]) / (x[-1] - x[0])
            d_eq = math.sqrt(4.0 * a / math.pi)
            tank_area[nr + i] = math.pi * d_eq**2 / 4.0
            tank_curve[i] = c
        else:
            area = math.pi * row["diameter_m"] ** 2 / 4.0
            if area <= 0:
                raise NetworkError(f"tank {tid!r} has no diameter and no volume curve")
            vmin = area * lo if row["min_volume_m3"] <= 0 else row["min_volume_m3"]
            tank_vmin[i] = vmin
            tank_v0[i] = vmin + area * (h0 - lo)
            tank_vmax[i] = vmin + area * (hi - lo)
            tank_area[nr + i] = area
        tank_hmin[nr + i] = tel[i] + lo
        tank_hmax[nr + i] = tel[i] + hi
        tank_over[nr + i] = int(bool(row["overflow"]))
    tank_h0 = tel + t["init_level_m"].to_numpy(float)

    # links
    n1 = np.empty(nl, dtype=np.int32)
    n2 = np.empty(nl, dtype=np.int32)
    for col, arr in (("node1", n1), ("node2", n2)):
        arr[:] = [node_index[v] for v in np.concatenate([pipes[col].to_numpy(object), pumps[col].to_numpy(object),
                                                          valves[col].to_numpy(object)])]
    ltype = np.empty(nl, dtype=np.int32)
    R = np.zeros(nl)
    Km = np.zeros(nl)
    diam = np.zeros(nl)
    rough = np.zeros(nl)
    pump_of = np.full(nl, -1, dtype=np.int32)
    valve_curve = np.full(nl, -1, dtype=np.int32)
    init_status = np.empty(nl, dtype=np.int32)
    init_setting = np.zeros(nl)
    init_flow = np.zeros(nl)
    npipe, npump = len(pipes), len(pumps)

    # pipes
    if npipe:
        L = pipes["length_m"].to_numpy(float)
        d = pipes["diameter_m"].to_numpy(float)
        c = pipes["roughness"].to_numpy(float)
        st = pipes["status"].to_numpy(object)
        ltype[:npipe] = np.where(st == "CV", CVPIPE, PIPE)
        if o.headloss == "H-W":
            R[:npipe] = U.HW_K * L / c**1.852 / d**4.871
        elif o.headloss == "D-W":
            R[:npipe] = L / 2.0 / U.G_DW / d / (math.pi * d**2 / 4.0) ** 2
        else:  # Chezy-Manning, computed in EPANET's ft units and converted
            d_ft, L_ft = d / U.FT, L / U.FT
            r_ft = (4.0 * c / (1.49 * math.pi * d_ft**2)) ** 2 * (d_ft / 4.0) ** -1.333 * L_ft
            R[:npipe] = r_ft * U.FT / U.CFS**2
        Km[:npipe] = U.KM_K * pipes["minor_loss"].to_numpy(float) / d**4
        diam[:npipe] = d
        rough[:npipe] = c
        init_status[:npipe] = np.where(st == "CLOSED", CLOSED, OPEN)
        init_setting[:npipe] = c  # EPANET's Kc (unused by pipes)
    # pumps
    npm = npump
    ptype = np.full(max(npm, 1), NOCURVE, dtype=np.int32)
    pcurve = np.full(max(npm, 1), -1, dtype=np.int32)
    pH0 = np.zeros(max(npm, 1))
    pR = np.zeros(max(npm, 1))
    pN = np.zeros(max(npm, 1))
    pHmax = np.zeros(max(npm, 1))
    pQ0 = np.zeros(max(npm, 1))
    for i, (pid, row) in enumerate(pumps.iterrows()):
        k = npipe + i
        ltype[k] = PUMP
        pump_of[k] = i
        R[k] = U.CBIG_R
        if row["head_curve"]:
            ci = cidx[row["head_curve"]]
            q, h = curves_x[ci], curves_y[ci]
            try:
                kind, a, b, cexp = fit_pump_curve(q, h, U.TINY * U.CFS)
            except ValueError as exc:
                raise NetworkError(f"pump {pid!r}: head curve {row['head_curve']!r} {exc}") from None
            if kind == "power":
                ptype[i] = POWER_FUNC
                pH0[i], pR[i], pN[i] = -a, -b, cexp
                pQ0[i] = q[0] if len(q) == 1 else q[1]
                pHmax[i] = a
            else:
                ptype[i] = CUSTOM
                pcurve[i] = ci
                pQ0[i] = (q[0] + q[-1]) / 2.0
                pHmax[i] = h[0]
        elif row["power_kw"] > 0:
            ptype[i] = CONST_HP
            pR[i] = -8.814 * U.FT * U.CFS * row["power_kw"] / U.KW_PER_HP
            pN[i] = -1.0
            pHmax[i] = U.BIG
            pQ0[i] = U.CFS  # EPANET: initial flow 1 cfs
        else:
            raise NetworkError(f"pump {pid!r} has neither a head curve nor a power (EPANET error 226)")
        closed = row["initial_status"] == "CLOSED"
        init_status[k] = CLOSED if closed else OPEN
        init_setting[k] = 0.0 if closed else row["speed"]
    # valves
    for i, (vid, row) in enumerate(valves.iterrows()):
        k = npipe + npump + i
        vt = VALVE_CODE[row["valve_type"]]
        ltype[k] = vt
        d = row["diameter_m"]
        diam[k] = d
        Km[k] = U.KM_K * row["minor_loss"] / d**4
        R[k] = U.KM_K / d**4 if vt == TCV else U.CSMALL_R
        if row["curve"]:
            valve_curve[k] = cidx[row["curve"]]
        if vt == GPV and valve_curve[k] < 0:
            raise NetworkError(f"GPV {vid!r} has no headloss curve")
        st = row["initial_status"]
        if vt == GPV:
            init_status[k] = CLOSED if st == "CLOSED" else OPEN
            init_setting[k] = 0.0
        elif st == "ACTIVE":
            init_status[k] = ACTIVE
            s = row["setting"]
            init_setting[k] = min(s, 100.0) if vt == PCV and valve_curve[k] >= 0 else s
        else:
            init_status[k] = OPEN if st == "OPEN" else CLOSED
            init_setting[k] = MISSING
    # initial flows (EPANET's initlinkflow: 1 ft/s velocity; pumps at Q0 × setting)
    for k in range(nl):
        if init_status[k] == CLOSED:
            init_flow[k] = U.QZERO
        elif ltype[k] == PUMP:
            init_flow[k] = init_setting[k] * pQ0[pump_of[k]]
        else:
            init_flow[k] = math.pi * diam[k] ** 2 / 4.0 * U.FT
    # nodes that no link touches (EPANET error 233)
    touched = np.zeros(nn, dtype=bool)
    touched[n1] = True
    touched[n2] = True
    if not touched[:nj].all():
        lone = node_ids[:nj][~touched[:nj]]
        raise NetworkError(f"{len(lone)} junction(s) are connected to no link (EPANET error 233): "
                           f"{', '.join(map(repr, lone[:10]))}{' …' if len(lone) > 10 else ''}")
    # valve checks EPANET makes at input time
    for vid, oid in illegal_valve_pairs(valves):
        raise NetworkError(f"valve {vid!r} is connected to valve {oid!r} in a way EPANET refuses (error 220: "
                           "PRVs sharing a downstream node or in series, PSVs sharing an upstream node or in "
                           "series, a PSV downstream of a PRV or FCV, an FCV downstream of a PRV)")
    fixed = np.arange(nn) >= nj
    for k in range(npipe + npump, nl):
        if ltype[k] in (PRV, PSV, FCV) and (fixed[n1[k]] or fixed[n2[k]]):
            raise NetworkError(f"valve {link_ids[k]!r}: a PRV, PSV or FCV cannot be connected to a tank or "
                               "reservoir (EPANET error 219)")

    # demands
    dem = wn.demand
    demand_junction = np.array([node_index[x] for x in dem["junction"]], dtype=np.int64)
    demand_base = dem["base_m3s"].to_numpy(float)
    demand_pattern = np.array([pat(p, default_pat) for p in dem["pattern"]], dtype=np.int64)
    res_head = r["head_m"].to_numpy(float)
    res_pattern = np.array([pat(p) for p in r["head_pattern"]], dtype=np.int64)

    # pumps: energy data
    pump_links = np.arange(npipe, npipe + npump)
    pump_speed_pattern = np.array([pat(p) for p in pumps["speed_pattern"]], dtype=np.int64)
    pump_eff_curve = np.array([cidx[c] if c else -1 for c in pumps["efficiency_curve"]], dtype=np.int64)
    pump_price = pumps["energy_price"].to_numpy(float)
    pump_price_pattern = np.array([pat(p) for p in pumps["price_pattern"]], dtype=np.int64)

    # controls
    lidx = {x: i for i, x in enumerate(link_ids)}
    ctl = {"link": [], "node": [], "type": [], "grade": [], "status": [], "setting": [], "time": [],
           "enabled": []}
    for c in wn.controls:
        k = lidx[c.link]
        lt = ltype[k]
        if lt == CVPIPE:
            raise NetworkError(f"control on check-valve pipe {c.link!r} (EPANET error 207)")
        setting = MISSING
        if c.action in ("OPEN", "CLOSED"):
            status = OPEN if c.action == "OPEN" else CLOSED
            if lt == PUMP:  # EPANET: opening a pump sets speed 1, closing it speed 0
                setting = 1.0 if status == OPEN else 0.0
            elif lt == GPV:  # a GPV's setting is its curve, which a control never changes
                setting = 0.0
        else:
            setting = c.setting
            status = ACTIVE
            if lt in (PUMP, PIPE):
                status = CLOSED if setting == 0 else OPEN
        node = -1
        grade = 0.0
        if c.condition in ("ABOVE", "BELOW"):
            node = node_index[c.node]
            grade = elev[node] + c.value  # junction: elevation + pressure; tank: bottom + level
            ctype = HILEVEL if c.condition == "ABOVE" else LOWLEVEL
        else:
            ctype = TIMER if c.condition == "TIME" else TIMEOFDAY
        ctl["link"].append(k)
        ctl["node"].append(node)
        ctl["type"].append(ctype)
        ctl["grade"].append(grade)
        ctl["status"].append(status)
        ctl["setting"].append(setting)
        ctl["time"].append(c.time_s)
        ctl["enabled"].append(c.enabled)
    controls = {k: np.array(v, dtype=float if k in ("grade", "setting") else bool if k == "enabled" else np.int32)
                for k, v in ctl.items()}
    controls["time"] = controls["time"].astype(np.int64)
    # junction-pressure controls act inside the balance (EPANET's pswitch); the others between steps
    pc = controls["enabled"] & (controls["node"] >= 0) & (controls["node"] < nj)

    # sparse structure: junction pairs, fill-reducing order, permuted upper-triangular CSC
    both = (n1 < nj) & (n2 < nj)
    a = np.minimum(n1, n2)[both]
    b = np.maximum(n1, n2)[both]
    key = a.astype(np.int64) * nn + b
    ukeys, inv = np.unique(key, return_inverse=True)
    pair = np.full(nl, -1, dtype=np.int32)
    pair[np.flatnonzero(both)] = inv
    pa, pb = (ukeys // nn).astype(np.int32), (ukeys % nn).astype(np.int32)
    perm = minimum_degree_order(nj, np.column_stack([pa, pb])) if nj else np.zeros(0, np.int32)
    row = np.zeros(nn, dtype=np.int32)
    row[perm] = np.arange(nj, dtype=np.int32)
    ra, rb = row[pa], row[pb]
    lo_, hi_ = np.minimum(ra, rb), np.maximum(ra, rb)
    # CSC by column hi_, rows lo_ (one entry per pair); diagonal kept separately
    order = np.lexsort((lo_, hi_))
    Ap = np.zeros(nj + 1, dtype=np.int32)
    np.add.at(Ap, hi_[order] + 1, 1)
    Ap = np.cumsum(Ap).astype(np.int32)
    Ai = lo_[order].astype(np.int32)
    pairpos = np.empty(len(ukeys), dtype=np.int32)
    pairpos[order] = np.arange(len(ukeys), dtype=np.int32)

    hexp = 1.852 if o.headloss == "H-W" else 2.0
    model = (demand_model or o.demand_model).upper()
    if model not in ("DDA", "PDA"):
        raise ValueError(f"demand_model must be 'DDA' or 'PDA', got {demand_model!r}")
    opts = dict(
        formula={"H-W": 0, "D-W": 1, "C-M": 2}[o.headloss], max_iter=int(trials or o.trials),
        extra_iter=(-1 if o.unbalanced == "STOP" else int(o.unbalanced_extra_trials)),
        check_freq=int(o.check_freq), max_check=int(o.max_check), pda=int(model == "PDA"),
        emit_backflow=int(o.emitter_backflow), hexp=hexp, qexp=qexp, htol=U.HTOL, qtol=U.QTOL, rqtol=U.RQTOL,
        hacc=float(accuracy if accuracy is not None else o.accuracy), damp_limit=float(o.damp_limit),
        viscosity=float(o.viscosity_m2s), pmin=float(o.minimum_pressure_m), preq=float(o.required_pressure_m),
        pexp=float(o.pressure_exponent), head_error_limit=float(o.head_error_m),
        flow_change_limit=float(o.flow_change_m3s), cbig_r=U.CBIG_R, cbig_g=U.CBIG_G, csmall_r=U.CSMALL_R,
        tiny_q=U.TINY_Q, tiny_r=U.TINY_R, barrier=U.BARRIER, minpdiff=U.MINPDIFF, pda_qtol=U.PDA_QTOL, ft=U.FT,
    )
    if model == "PDA" and not opts["preq"] - opts["pmin"] > 0:
        raise NetworkError("pressure-driven analysis needs required_pressure_m > minimum_pressure_m")
    i32 = np.int32
    net = dict(
        nj=nj, nn=nn, nl=nl, n1=n1, n2=n2, ltype=ltype, pump_of=pump_of, valve_curve=valve_curve, pair=pair,
        row=row, R=R, Km=Km, diam=diam, rough=rough, elev=elev, ke=ke, ptype=ptype, pcurve=pcurve,
        pH0=pH0, pR=pR, pN=pN, pHmax=pHmax, pQ0=pQ0, cptr=cptr, cx=np.ascontiguousarray(cx, float),
        cy=np.ascontiguousarray(cy, float), tank_area=tank_area, tank_hmin=tank_hmin, tank_hmax=tank_hmax,
        tank_overflow=tank_over, perm=perm.astype(i32) if nj else np.zeros(1, i32),
        **{f"pc_{k}": controls[k][pc] for k in ("link", "node", "type", "status", "grade", "setting")},
    )
    return CompiledWater(
        node_ids=node_ids, link_ids=link_ids, nj=nj, n_res=nr, net=net, opts=opts,
        demand_junction=demand_junction, demand_base=demand_base, demand_pattern=demand_pattern,
        patterns=patterns, pattern_ids=pattern_ids, res_head=res_head, res_pattern=res_pattern,
        tank_v0=tank_v0, tank_vmin=tank_vmin, tank_vmax=tank_vmax, tank_h0=tank_h0, tank_curve=tank_curve,
        tank_elev=tel, init_status=init_status, init_setting=init_setting, init_flow=init_flow,
        pump_links=pump_links, pump_speed_pattern=pump_speed_pattern, pump_eff_curve=pump_eff_curve,
        pump_price=pump_price, pump_price_pattern=pump_price_pattern, curves_x=curves_x, curves_y=curves_y,
        curve_ids=curve_ids, controls=controls, perm=perm, ldl_ap=Ap, ldl_ai=Ai, pairpos=pairpos,
    )
