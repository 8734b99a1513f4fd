"""Restoration scheduling after a disruption: which crew repairs which failed element, and when (a MILP).

Failed elements of any layer (electricity, water, roads) each need one crew for ``repair_h`` hours at a
location; crews leave their depots when available and drive between locations (travel times in hours, e.g.
from the traffic model's skims: :func:`travel_times_from_skim`).  An element's service comes back when it
is repaired *and* every element it requires (a pumping station needs its feeder) has its service back.
The schedule minimises the weighted sum of service-restoration times, i.e. the people-hours (and, with
weights, MWh and m³) without service.

Symbols (failed elements i, j ∈ J; crew classes c ∈ K — crews with the same depot, availability and skills
are one class of ``m_c`` interchangeable crews; eligibility groups g — crew classes that may repair the same
set of elements):

============  =====================  ==============================================================
symbol        Pyomo                  meaning (unit)
============  =====================  ==============================================================
p_j                                  repair duration (h), > 0
t_ij, t_cj                           travel time (h) from element i's / class c's depot location to j's
r_c                                  time the crews of class c are ready at their depot (h)
a_ij                                 t_ij + p_j: time from finishing i to finishing j when j follows i (h)
w_j                                  weight (per h without service) = ω_P·people_j + ω_E·MW_j + ω_W·(m³/h)_j
ŵ_j                                  w_j / Σ_l w_l (the model works in weighted hours; results are × Σ w)
x_ij          ``m.x[i, j]``          1 when the crew that repairs i repairs j next (binary; arcs shared by
                                     all crews)
z_cj          ``m.z[c, j]``          1 when j is the first repair of a crew of class c (binary)
y_jg          ``m.y[j, g]``          1 when j is repaired by a crew of group g (binary; only when skills
                                     split the crews into groups)
C_j           ``m.C[j]``             completion of j's repair (h); C̲_j ≤ C_j ≤ C̄_j
S_j           ``m.S[j]``             time j's service is back (h)
f_ij, g_cj    ``m.f``, ``m.g``       weight still waiting when the crew drives i → j / leaves c for j
                                     (share of Σ w, 0-1)
R(j)                                 elements j requires (``requires``)
============  =====================  ==============================================================

Objective: min Σ_j ŵ_j S_j (``m.objective``), i.e. Σ_j w_j S_j / Σ_j w_j.

Routing (``m.enter[j]``, ``m.leave[i]``, ``m.crews[c]``): Σ_i x_ij + Σ_c z_cj = 1, Σ_j x_ij ≤ 1,
Σ_j z_cj ≤ m_c.  Crews never wait (no time windows), so in an optimal schedule each repair ends a_ij after
its predecessor's; the completion rows state exactly that.

* ``m.first[j]``: C_j ≥ Σ_c (r_c + t_cj + p_j) z_cj + Σ_i (C̲_i + a_ij) x_ij (one arc enters j).
* ``m.seq[i, j]`` (lifted Miller-Tucker-Zemlin, Desrochers & Laporte 1991, with a big-M per arc):
  C_i − C_j + M_ij x_ij + max(0, M_ij − a_ij − a_ji) x_ji ≤ M_ij − a_ij, M_ij = C̄_i − C̲_j + a_ij:
  C_j ≥ C_i + a_ij when i → j, C_i = C_j + a_ji when j → i (no idle), nothing otherwise.  The positive
  repair times rule out sub-tours.
* ``m.group_one[j]``, ``m.group_start[c, j]``, ``m.group_arc[i, j, g]``: Σ_g y_jg = 1, z_cj ≤ y_j,g(c),
  x_ij + y_ig − y_jg ≤ 1 (a route stays in one group; y_jg = 0 where g may not repair j).
* Weight flow (the travelling-repairman flow): ``m.flow[j]``: Σ_i f_ij + Σ_c g_cj − Σ_k f_jk = ŵ_j;
  ``m.flow_lo``/``m.flow_hi``: ŵ_j x_ij ≤ f_ij ≤ (1 − ŵ_i) x_ij; ``m.start_lo``/``m.start_hi``:
  ŵ_j z_cj ≤ g_cj ≤ z_cj; ``m.latency``: Σ_j ŵ_j C_j ≥ Σ_cj (r_c + t_cj + p_j) g_cj + Σ_ij a_ij f_ij (along a
  route, every leg delays all the weight still waiting: equality for integer routes).
* ``m.service[j]``, ``m.needs[j, i]``: S_j ≥ C_j, S_j ≥ S_i for i ∈ R(j).
* Cuts (rows added to the HiGHS model, not Pyomo components): parallel-machine inequalities (Queyranne
  1993; Schulz 1996) on effective durations q_j = p_j + τ_j, τ_j the shortest travel into j from an element
  or depot that may precede it.  On one crew the intervals [C_j − q_j, C_j] are disjoint and start after
  its r_k, so for every set A of elements that only the crews of a set U can repair
  Σ_{j∈A} q_j C_j ≥ F_U(q(A)) + ½ Σ_{j∈A} q_j², F_U(Q) = min{Σ_{k∈U} (r_k Q_k + ½ Q_k²) : Σ_k Q_k = Q, Q_k ≥ 0}
  (water-filling over the crews k of U; U = all crews, each skill's crews and their unions).  They are
  separated on the scheduling LP — C, S, ``m.service``, ``m.needs`` and the bounds, 2n columns —
  for the prefixes of its completion order, round after round (milliseconds a round), and those binding at
  its optimum are added to the MILP.

Bounds: C̲_j is the shortest depot-to-j chain ending with j's repair (Dijkstra: valid without the
triangle inequality); S̲_j = max(C̲_j, S̲_i for i ∈ R(j)).  With an incumbent of objective U (the heuristic):
an element with w_j > 0 has S_j ≤ (U − Σ_{l≠j} w_l S̲_l) / w_j in any schedule at least as good, and an
element's repair ends no later than the service of everything that requires it; C̄_j is the smallest of
those and of the horizon max_c r_c + Σ_j (p_j + max travel into j).  Arcs with C̲_i + a_ij > C̄_j are left
out.

What keeps 50 failures × 6 crews solvable in a minute — a schedule at once, improved and bounded within the
time limit:

1. Successor arcs shared by all crews: n(n−1) + n·|K| binaries (2 750 at 50 × 6, instead of n²·|K| for one
   arc set per crew); identical crews are one class (no symmetry between them); skills only add the
   group variables when they split the crews.
2. Tight per-arc big-M values from the incumbent-based C̄ (and arc fixing), the lifted sequence rows, the
   aggregated first-arc row and the weight flow.
3. A heuristic incumbent computed first — weighted-shortest-processing-time insertion (an element's weight
   counts what waits on it), local search (relocate, swap: each move priced in O(1) from suffix weights)
   and an iterated local search with random relocations — handed to HiGHS as its start (``setSolution``):
   the answer is never worse than the heuristic.
4. The cuts, separated outside the MILP in a fraction of a second: they give the lower bound, hence the
   reported gap.
5. A time limit (``RestorationOptions.time_limit_s``, 60 s by default, over the whole solve).

Proving optimality is another matter.  Measured with ``bench/restoration.py`` on a 2-CPU machine:
60 s limit, seeds 0-2 (0-4 at 50 × 6), crews with skills unless said otherwise:

* 8 × 2: optimal in 0.9-1.3 s; 10 × 3: optimal in 1.2-8.2 s; 12 × 3: optimal in 27.5 s for one seed, gaps of
  7.0 % and 7.6 % at 60 s for the others; 15 × 3: gaps 6.7-7.9 %; 20 × 3: gaps 5.2-10.2 %.
* 50 × 6: gaps 6.5-8.0 % (median 7.3 %); without skills 4.5-5.8 % (median 5.4 %).  The heuristic takes
  2-3 s (5-9 s without skills), the cuts 0.2 s; HiGHS spends the rest without finding a better schedule.

HiGHS improved the heuristic's schedule on none of these instances, and wherever it proved optimality
the heuristic had already found the optimum.  The gaps are those of the lower bound, which does not see
the travel that the weighted order forces: the best 50 × 6 schedule of seed 0 drives 21 h, while the
shortest legs into each element (τ_j above) add up to 5 h.  Optimality is proven in a minute up to about
ten failures; beyond, the answer is the best schedule found with its gap to the proven bound.

Road failures are scheduled like the others; the travel times are those given (e.g. the skim of the
disrupted network) and do not change as roads are repaired.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .highs_route import HighsModel, new_highs

__all__ = ["RestorationProblem", "RestorationOptions", "RestorationModel", "RestorationSolution", "RestorationError",
           "build_restoration_model", "solve_restoration", "travel_times_from_skim", "evaluate_routes"]

LAYERS = ("energy", "water", "road")


class RestorationError(ValueError):
    """Bad input of a restoration problem (names the element, crew or location and the field)."""


@dataclass
class RestorationProblem:
    """Inputs of a restoration schedule (times in h after the disruption).

    ``failures`` (index = element id): ``layer`` ("energy", "water" or "road"), ``location`` (a location of
    ``travel_h``: road node or zone where the crew must go), ``repair_h`` (h, > 0), ``people`` (people whose
    service depends on the element, ≥ 0; count each person once, on the most downstream element),
    ``unserved_mw`` (MW lost while the element is out, ≥ 0), ``unserved_m3h`` (water lost, m³/h, ≥ 0); optional
    ``requires`` (ids of other failures whose service must be back before this one's, e.g. a pumping
    station's feeder: a list, tuple or set, or empty) and ``skill`` (one skill name; empty = any crew).
    Missing ``people``/``unserved_mw``/``unserved_m3h`` columns count as 0.

    ``crews`` (index = crew id): ``depot`` (a location of ``travel_h``), ``available_h`` (h, ≥ 0: when the crew
    is ready at its depot); optional ``skills`` (the skills it has: a list, tuple, set or one name; empty
    or missing = every skill).

    ``travel_h``: travel times (h) location × location (index = from, columns = to), finite and ≥ 0 on
    the locations used; not necessarily symmetric.
    """

    failures: pd.DataFrame
    crews: pd.DataFrame
    travel_h: pd.DataFrame


@dataclass
class RestorationOptions:
    """Options.

    Weights: w_j = ``weight_people``·people_j + ``weight_mwh``·unserved_mw_j + ``weight_m3``·unserved_m3h_j, so the
    objective Σ_j w_j S_j is in people-hours (+ MWh, + m³, weighted).  ``time_limit_s``: the whole solve
    (heuristic, cuts, MILP); ``heuristic_time_s``: cap of the heuristic (default: a fifth of the limit);
    ``heuristic_rounds``: iterated-local-search rounds (``seed`` for its random moves: the same inputs give
    the same heuristic schedule unless the time cap is hit); ``cut_rounds``: rounds of the scheduling LP
    separating the parallel-machine inequalities; ``mip_gap``: relative gap at which HiGHS stops;
    ``milp=False``: the heuristic only; ``threads``, ``output`` for HiGHS.
    """

    weight_people: float = 1.0
    weight_mwh: float = 0.0
    weight_m3: float = 0.0
    time_limit_s: float = 60.0
    heuristic_time_s: float | None = None
    heuristic_rounds: int = 300
    seed: int = 0
    cut_rounds: int = 200
    mip_gap: float = 1e-4
    milp: bool = True
    threads: int = 1
    output: bool = False


@dataclass
class RestorationData:
    """Checked inputs as arrays (element positions 0..n−1, crew-class positions 0..|K|−1)."""

    ids: pd.Index
    crew_ids: pd.Index
    layer: np.ndarray
    location: np.ndarray
    p: np.ndarray  # (n,) h
    w: np.ndarray  # (n,) weight per h
    people: np.ndarray
    mw: np.ndarray
    m3h: np.ndarray
    requires: list[list[int]]  # positions each element requires
    topo: list[int]  # elements, each after those it requires
    t: np.ndarray  # (n, n) h, element to element
    crew_class: np.ndarray  # (crews,) class of each crew
    class_count: np.ndarray  # (K,) m_c
    class_r: np.ndarray  # (K,) h
    class_t: np.ndarray  # (K, n) h, depot to element
    class_group: np.ndarray  # (K,) eligibility group
    eligible: np.ndarray  # (n, K) bool
    crew_r: np.ndarray  # (crews,) h
    crew_t: np.ndarray  # (crews, n) h
    crew_eligible: np.ndarray  # (n, crews) bool

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def groups(self) -> int:
        return int(self.class_group.max()) + 1 if len(self.class_group) else 0


def _as_list(value: Any) -> list:
    """Items of a ``requires``/``skills`` cell: a list, tuple, set or array, one scalar, or nothing."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list | tuple | set | frozenset | np.ndarray | pd.Index):
        return list(value)
    if isinstance(value, float) and math.isnan(value):
        return []
    return [value]


def _number(df: pd.DataFrame, col: str, what: str, default: float | None, lower: float, strict: bool = False
            ) -> np.ndarray:
    if col not in df.columns:
        if default is None:
            raise RestorationError(f"{what}: column {col!r} is missing")
        return np.full(len(df), default)
    try:
        v = pd.to_numeric(df[col], errors="raise").to_numpy(float)
    except (TypeError, ValueError) as exc:
        raise RestorationError(f"{what}: column {col!r} must be numeric ({exc})") from None
    bad = ~np.isfinite(v) | ((v <= lower) if strict else (v < lower))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        rel = ">" if strict else ">="
        raise RestorationError(f"{what} {df.index[k]!r}: {col} = {float(v[k]):g} (must be finite and {rel} {lower:g})")
    return v


def _topological(ids: pd.Index, requires: list[list[int]]) -> list[int]:
    """Elements ordered so that each comes after those it requires; a cycle is an error naming it."""
    state = [0] * len(ids)  # 0 new, 1 on the stack, 2 done
    order: list[int] = []
    for root in range(len(ids)):
        if state[root]:
            continue
        stack = [(root, iter(requires[root]))]
        state[root] = 1
        path = [root]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
                order.append(node)
            elif state[nxt] == 1:
                cyc = path[path.index(nxt):] + [nxt]
                raise RestorationError("failure requires form a cycle: "
                                       + " requires ".join(repr(ids[k]) for k in cyc))
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(requires[nxt])))
    return order


def prepare_restoration_data(problem: RestorationProblem, options: RestorationOptions | None = None
                             ) -> RestorationData:
    """Check the inputs (errors name the element, crew or location and the field) and make the arrays."""
    opts = options or RestorationOptions()
    for name in ("weight_people", "weight_mwh", "weight_m3"):
        v = getattr(opts, name)
        if not (math.isfinite(v) and v >= 0):
            raise RestorationError(f"options: {name} = {v!r} (must be finite and >= 0)")
    if not opts.time_limit_s > 0:
        raise RestorationError(f"options: time_limit_s = {opts.time_limit_s!r} (must be > 0)")
    f, cr, tr = problem.failures, problem.crews, problem.travel_h
    for label, df in (("failures", f), ("crews", cr)):
        if not isinstance(df, pd.DataFrame):
            raise RestorationError(f"{label} must be a DataFrame (index = id)")
        if not df.index.is_unique:
            raise RestorationError(f"{label}: id {df.index[df.index.duplicated()][0]!r} appears twice")
    if not isinstance(tr, pd.DataFrame):
        raise RestorationError("travel_h must be a DataFrame (location × location, h)")
    if not tr.index.is_unique or not tr.columns.is_unique:
        raise RestorationError("travel_h: a location appears twice in its index or columns")
    ids = f.index
    n = len(ids)
    for col in ("layer", "location", "repair_h"):
        if col not in f.columns:
            raise RestorationError(f"failures: column {col!r} is missing")
    if "depot" not in cr.columns:
        raise RestorationError("crews: column 'depot' is missing")
    if n and not len(cr):
        raise RestorationError("no crews: every failure needs a crew")
    layer = f["layer"].to_numpy(object)
    for k in range(n):
        if layer[k] not in LAYERS:
            raise RestorationError(f"failure {ids[k]!r}: layer = {layer[k]!r} (must be one of {LAYERS})")
    p = _number(f, "repair_h", "failure", None, 0.0, strict=True)
    people = _number(f, "people", "failure", 0.0, 0.0)
    mw = _number(f, "unserved_mw", "failure", 0.0, 0.0)
    m3h = _number(f, "unserved_m3h", "failure", 0.0, 0.0)
    avail = _number(cr, "available_h", "crew", 0.0, 0.0)
    w = opts.weight_people * people + opts.weight_mwh * mw + opts.weight_m3 * m3h

    location = f["location"].to_numpy(object)
    depot = cr["depot"].to_numpy(object)
    rows, cols = set(tr.index), set(tr.columns)
    for what, ids_, locs, field_ in (("failure", ids, location, "location"), ("crew", cr.index, depot, "depot")):
        for k, loc in enumerate(locs):
            if loc not in rows or loc not in cols:
                raise RestorationError(f"{what} {ids_[k]!r}: {field_} {loc!r} is not a location of the travel "
                                       "times (index and columns of travel_h)")
    used = pd.unique(np.concatenate([location, depot]).astype(object)) if n or len(cr) else np.array([], object)
    sub = tr.reindex(index=used, columns=used)
    try:
        tv = sub.to_numpy(float)
    except (TypeError, ValueError):
        raise RestorationError("travel_h: travel times must be numeric (h)") from None
    bad = ~np.isfinite(tv) | (tv < 0)
    if bad.any():
        a, b = np.argwhere(bad)[0]
        raise RestorationError(f"travel_h: {used[a]!r} -> {used[b]!r} is {float(tv[a, b]):g} h "
                               "(must be finite and >= 0: an unreachable pair?)")
    pos = pd.Index(used).get_indexer
    li, di = pos(location), pos(depot)
    t = tv[np.ix_(li, li)]
    crew_t = tv[np.ix_(di, li)]

    # requires
    index_of = {k: i for i, k in enumerate(ids)}
    requires: list[list[int]] = []
    req_col = f["requires"].tolist() if "requires" in f.columns else [None] * n
    for k in range(n):
        lst = []
        for other in _as_list(req_col[k]):
            if other not in index_of:
                raise RestorationError(f"failure {ids[k]!r}: requires {other!r}, which is not a failure id")
            if index_of[other] == k:
                raise RestorationError(f"failure {ids[k]!r}: requires itself")
            if index_of[other] not in lst:
                lst.append(index_of[other])
        requires.append(lst)
    topo = _topological(ids, requires)

    # skills and crew classes
    skill_col = f["skill"].tolist() if "skill" in f.columns else [None] * n
    need = []
    for k in range(n):
        s = _as_list(skill_col[k])
        if len(s) > 1:
            raise RestorationError(f"failure {ids[k]!r}: skill = {skill_col[k]!r} (one skill name, or empty)")
        need.append(s[0] if s else None)
    crew_skills_col = cr["skills"].tolist() if "skills" in cr.columns else [None] * len(cr)
    crew_skills = [frozenset(_as_list(s)) or None for s in crew_skills_col]  # None: every skill
    crew_elig = np.array([[need[j] is None or crew_skills[c] is None or need[j] in crew_skills[c]
                           for c in range(len(cr))] for j in range(n)], bool).reshape(n, len(cr))
    lonely = ~crew_elig.any(axis=1) if len(cr) else np.ones(n, bool)
    if n and lonely.any():
        j = int(np.flatnonzero(lonely)[0])
        raise RestorationError(f"failure {ids[j]!r}: no crew has its skill {need[j]!r} (crews' skills)")
    keys: dict[tuple, int] = {}
    crew_class = np.zeros(len(cr), int)
    for c in range(len(cr)):
        key = (depot[c], float(avail[c]), crew_elig[:, c].tobytes())
        crew_class[c] = keys.setdefault(key, len(keys))
    K = len(keys)
    first = [int(np.flatnonzero(crew_class == c)[0]) for c in range(K)]
    eligible = crew_elig[:, first] if n else np.zeros((0, K), bool)
    gkeys: dict[bytes, int] = {}
    class_group = np.array([gkeys.setdefault(eligible[:, c].tobytes(), len(gkeys)) for c in range(K)], int)
    return RestorationData(
        ids=ids, crew_ids=cr.index, layer=layer, location=location, p=p, w=w, people=people, mw=mw, m3h=m3h,
        requires=requires, topo=topo, t=t, crew_class=crew_class,
        class_count=np.bincount(crew_class, minlength=K), class_r=avail[first], class_t=crew_t[first],
        class_group=class_group, eligible=eligible, crew_r=avail, crew_t=crew_t, crew_eligible=crew_elig)


def travel_times_from_skim(skim_minutes: pd.DataFrame, locations: Iterable) -> pd.DataFrame:
    """Travel times in hours between ``locations`` from a zone × zone skim in minutes.

    ``skim_minutes``: e.g. ``AssignmentResult.skim("time")`` (origin × destination, min; NaN where no path).
    Returns a square DataFrame (h) on the distinct ``locations`` in their order; a location missing from the
    skim, or a pair without a finite time, is an error naming it."""
    locs = list(dict.fromkeys(locations))
    missing = [z for z in locs if z not in skim_minutes.index or z not in skim_minutes.columns]
    if missing:
        raise RestorationError(f"location {missing[0]!r} is not a zone of the skim"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    sub = skim_minutes.loc[locs, locs]
    v = sub.to_numpy(float)
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        a, b = np.argwhere(bad)[0]
        raise RestorationError(f"skim: no finite travel time from {locs[a]!r} to {locs[b]!r} ({float(v[a, b]):g} min: "
                               f"unreachable); {int(bad.sum())} such pair(s)")
    return pd.DataFrame(v / 60.0, index=pd.Index(locs, name="from"), columns=pd.Index(locs, name="to"))


# --------------------------------------------------------------------------------------------- evaluation

def _completions(d: RestorationData, routes: Sequence[Sequence[int]]) -> np.ndarray:
    """C_j of every element for crew routes (one list per crew, positions), crews never idle."""
    C = np.full(d.n, np.nan)
    for c, route in enumerate(routes):
        now, here = d.crew_r[c], None
        for j in route:
            now += (d.crew_t[c, j] if here is None else d.t[here, j]) + d.p[j]
            C[j] = now
            here = j
    return C


def _service(d: RestorationData, C: np.ndarray) -> np.ndarray:
    S = C.copy()
    for j in d.topo:
        for i in d.requires[j]:
            if S[i] > S[j]:
                S[j] = S[i]
    return S


def evaluate_routes(problem: RestorationProblem, routes: dict, options: RestorationOptions | None = None) -> float:
    """Objective Σ_j w_j S_j of given crew routes (crew id → element ids in order; every failure once)."""
    d = prepare_restoration_data(problem, options)
    return float(d.w @ _service(d, _completions(d, _routes_from_ids(d, routes))))


def _routes_from_ids(d: RestorationData, routes: dict) -> list[list[int]]:
    pos = {k: i for i, k in enumerate(d.ids)}
    out: list[list[int]] = [[] for _ in d.crew_ids]
    cpos = {k: i for i, k in enumerate(d.crew_ids)}
    seen: set[int] = set()
    for crew, elems in routes.items():
        if crew not in cpos:
            raise RestorationError(f"routes: {crew!r} is not a crew id")
        for e in elems:
            if e not in pos:
                raise RestorationError(f"routes of crew {crew!r}: {e!r} is not a failure id")
            if pos[e] in seen:
                raise RestorationError(f"routes: failure {e!r} appears twice")
            if not d.crew_eligible[pos[e], cpos[crew]]:
                raise RestorationError(f"routes: crew {crew!r} lacks the skill of failure {e!r}")
            seen.add(pos[e])
            out[cpos[crew]].append(pos[e])
    if len(seen) != d.n:
        miss = next(k for k in range(d.n) if k not in seen)
        raise RestorationError(f"routes: failure {d.ids[miss]!r} is not repaired")
    return out


# --------------------------------------------------------------------------------------------- heuristic

class _Search:
    """Crew routes with cached completion times and suffix weights, so that a move (relocate or swap an
    element) is priced in O(1): the repairs after the change shift by one amount, the objective by that
    amount times their weight.  Elements that require others add Σ_d w_d (S_d − C_d) over the few of them
    (S_d the latest completion among d and what it requires, transitively)."""

    def __init__(self, d: RestorationData, rng: random.Random):
        self.n, self.rng = d.n, rng
        self.p = d.p.tolist()
        self.w = d.w.tolist()
        self.t = d.t.tolist()
        self.ct = d.crew_t.tolist()
        self.cr = d.crew_r.tolist()
        self.ncrew = len(d.crew_ids)
        self.elig = [np.flatnonzero(d.crew_eligible[j]).tolist() for j in range(d.n)]
        anc: list[set[int]] = [set() for _ in range(d.n)]
        for j in d.topo:  # what j requires, transitively (topo: required elements first)
            for i in d.requires[j]:
                anc[j] |= anc[i] | {i}
        self.dep = [(j, [j, *sorted(anc[j])]) for j in range(d.n) if anc[j] and d.w[j] > 0]
        deps_of: list[set[int]] = [set() for _ in range(d.n)]
        for idx, (_, grp) in enumerate(self.dep):
            for x in grp:
                deps_of[x].add(idx)
        self.deps_of = [frozenset(v) for v in deps_of]

    # state -------------------------------------------------------------------------------------------
    def load(self, routes: list[list[int]]) -> None:
        self.routes = [list(r) for r in routes]
        self.C = [0.0] * self.n
        self.pos = [(0, 0)] * self.n
        self.wsuf: list[list[float]] = [[] for _ in routes]
        self.cost = [0.0] * len(routes)
        self.suffix: list[list[frozenset[int]]] = [[] for _ in routes]
        for c in range(len(routes)):
            self._refresh(c)
        self._settle()

    def _settle(self) -> None:
        """Objective and the cached contribution of each element that requires others."""
        C, w = self.C, self.w
        self.dep_val = [0.0] * len(self.dep)
        for idx, (d, grp) in enumerate(self.dep):
            late = max(C[x] for x in grp)
            self.dep_val[idx] = w[d] * (late - C[d]) if late > C[d] else 0.0
        self.corr = sum(self.dep_val)
        self.obj = sum(self.cost) + self.corr

    def _delta(self, affected: frozenset[int], new: dict[int, float],
               shifts: tuple[tuple[int, int, float], ...]) -> float:
        """Change of Σ_d w_d (S_d − C_d) over the ``affected`` dependants after a move: completions ``new`` for
        the moved elements, C + δ from position k0 of route c for each (c, k0, δ) in ``shifts``."""
        C, pos, w = self.C, self.pos, self.w
        tot = 0.0
        for idx in affected:
            d, grp = self.dep[idx]
            late = cd = -math.inf
            for x in grp:
                v = new.get(x)
                if v is None:
                    v = C[x]
                    c, k = pos[x]
                    for rc, k0, dv in shifts:
                        if c == rc and k >= k0:
                            v += dv
                            break
                if x == d:
                    cd = v
                if v > late:
                    late = v
            tot += (w[d] * (late - cd) if late > cd else 0.0) - self.dep_val[idx]
        return tot

    def _refresh(self, c: int) -> None:
        route = self.routes[c]
        now, here, tot = self.cr[c], -1, 0.0
        p, t, ct, w, C = self.p, self.t, self.ct[c], self.w, self.C
        for k, j in enumerate(route):
            now += (ct[j] if here < 0 else t[here][j]) + p[j]
            C[j] = now
            tot += w[j] * now
            self.pos[j] = (c, k)
            here = j
        suf = [0.0] * (len(route) + 1)
        deps = [frozenset()] * (len(route) + 1)  # dependants with a member at this position or later
        for k in range(len(route) - 1, -1, -1):
            suf[k] = suf[k + 1] + w[route[k]]
            mine = self.deps_of[route[k]]
            deps[k] = deps[k + 1] | mine if mine else deps[k + 1]
        self.wsuf[c] = suf
        self.cost[c] = tot
        self.suffix[c] = deps

    def _correction(self, get, placed: set[int] | None = None) -> float:
        tot = 0.0
        for d, grp in self.dep:
            if placed is not None and d not in placed:
                continue
            cd = get(d)
            late = max(get(x) for x in grp if placed is None or x in placed)
            if late > cd:
                tot += self.w[d] * (late - cd)
        return tot

    def _route_eval(self, c: int, route: list[int]) -> tuple[float, dict[int, float]]:
        now, here, tot, out = self.cr[c], -1, 0.0, {}
        p, t, ct, w = self.p, self.t, self.ct[c], self.w
        for j in route:
            now += (ct[j] if here < 0 else t[here][j]) + p[j]
            out[j] = now
            tot += w[j] * now
            here = j
        return tot, out

    def _shifted(self, new: dict[int, float], shifts: tuple[tuple[int, int, float], ...]):
        """Completion times after a move: ``new`` for the moved elements, C + δ for the elements at position
        k0 or later of route c for each (c, k0, δ) in ``shifts``, C otherwise."""
        C, pos = self.C, self.pos

        def get(x: int) -> float:
            v = new.get(x)
            if v is not None:
                return v
            c, k = pos[x]
            for rc, k0, dv in shifts:
                if c == rc and k >= k0:
                    return C[x] + dv
            return C[x]

        return get

    def _leg(self, c: int, prev: int, j: int) -> float:
        return self.ct[c][j] if prev < 0 else self.t[prev][j]

    def _set(self, changed: dict[int, list[int]]) -> None:
        for c, r in changed.items():
            self.routes[c] = r
        for c in changed:
            self._refresh(c)
        self._settle()

    # construction ------------------------------------------------------------------------------------
    def insertion(self, order: list[int]) -> None:
        """Insert the elements one by one, each where it raises the objective least."""
        self.load([[] for _ in range(self.ncrew)])
        placed: set[int] = set()
        for j in order:
            placed.add(j)
            best, where = math.inf, None
            for b in self.elig[j]:
                rb, C, suf = self.routes[b], self.C, self.wsuf[b]
                for q in range(len(rb) + 1):
                    prev = rb[q - 1] if q else -1
                    start = C[prev] if q else self.cr[b]
                    cj = start + self._leg(b, prev, j) + self.p[j]
                    shift = 0.0
                    if q < len(rb):
                        nx = rb[q]
                        shift = cj + self.t[j][nx] - (start + self._leg(b, prev, nx))
                    val = self.w[j] * cj + shift * suf[q]
                    if self.dep:
                        get = self._shifted({j: cj}, ((b, q, shift),))
                        val += self._correction(get, placed) - self._correction(C.__getitem__, placed - {j})
                    if val < best - 1e-12:
                        best, where = val, (b, q)
            b, q = where
            self.routes[b].insert(q, j)
            self._refresh(b)
        self._settle()

    # local search ------------------------------------------------------------------------------------
    def local_search(self, deadline: float) -> None:
        improved = True
        while improved and time.perf_counter() < deadline:
            improved = self._relocate()
            improved = self._swap() or improved

    def _relocate(self) -> bool:
        improved = False
        p, t, w, C = self.p, self.t, self.w, self.C
        for j in range(self.n):
            a, i = self.pos[j]
            ra = self.routes[a]
            prev = ra[i - 1] if i else -1
            start_a = C[prev] if i else self.cr[a]
            nxt = ra[i + 1] if i + 1 < len(ra) else -1
            shift_out = (start_a + self._leg(a, prev, nxt)) - (C[j] + t[j][nxt]) if nxt >= 0 else 0.0
            out_val = -w[j] * C[j] + shift_out * self.wsuf[a][i + 1]
            aff_out = self.suffix[a][i]
            best, move = -1e-9 * max(1.0, abs(self.obj)), None
            for b in self.elig[j]:
                if b == a:
                    for q in range(len(ra)):
                        if q == i:
                            continue
                        rest = ra[:i] + ra[i + 1:]
                        cand = rest[:q] + [j] + rest[q:]
                        cost, newc = self._route_eval(a, cand)
                        val = cost - self.cost[a]
                        aff = self.suffix[a][min(i, q)]
                        if aff:
                            val += self._delta(aff, newc, ())
                        if val < best:
                            best, move = val, {a: cand}
                    continue
                rb, suf = self.routes[b], self.wsuf[b]
                for q in range(len(rb) + 1):
                    pv = rb[q - 1] if q else -1
                    start = C[pv] if q else self.cr[b]
                    cj = start + self._leg(b, pv, j) + p[j]
                    shift = 0.0
                    if q < len(rb):
                        nx = rb[q]
                        shift = cj + t[j][nx] - (start + self._leg(b, pv, nx))
                    val = out_val + w[j] * cj + shift * suf[q]
                    aff_in = self.suffix[b][q]
                    if aff_out or aff_in:
                        aff = aff_out | aff_in if aff_out and aff_in else aff_out or aff_in
                        val += self._delta(aff, {j: cj}, ((a, i + 1, shift_out), (b, q, shift)))
                    if val < best:
                        best, move = val, (b, q)
            if move is not None:
                if isinstance(move, dict):
                    self._set(move)
                else:
                    b, q = move
                    rb = list(self.routes[b])
                    rb.insert(q, j)
                    self._set({a: ra[:i] + ra[i + 1:], b: rb})
                improved = True
        return improved

    def _swap(self) -> bool:
        improved = False
        w, C = self.w, self.C
        for i in range(self.n):
            for j in range(i + 1, self.n):
                (a, qa), (b, qb) = self.pos[i], self.pos[j]
                if a == b:
                    if abs(qa - qb) > 3:  # swaps far apart in one route: rarely useful, relocations cover
                        continue
                    cand = list(self.routes[a])
                    cand[qa], cand[qb] = j, i
                    cost, newc = self._route_eval(a, cand)
                    val = cost - self.cost[a]
                    aff = self.suffix[a][min(qa, qb)]
                    if aff:
                        val += self._delta(aff, newc, ())
                    if val < -1e-9 * max(1.0, abs(self.obj)):
                        self._set({a: cand})
                        improved = True
                    continue
                if b not in self.elig[i] or a not in self.elig[j]:
                    continue
                ra, rb = self.routes[a], self.routes[b]
                ca, sa = self._replace(a, ra, qa, i, j)
                cb, sb = self._replace(b, rb, qb, j, i)
                val = (w[j] * ca - w[i] * C[i] + sa * self.wsuf[a][qa + 1]
                       + w[i] * cb - w[j] * C[j] + sb * self.wsuf[b][qb + 1])
                aff_a, aff_b = self.suffix[a][qa], self.suffix[b][qb]
                if aff_a or aff_b:
                    aff = aff_a | aff_b if aff_a and aff_b else aff_a or aff_b
                    val += self._delta(aff, {j: ca, i: cb}, ((a, qa + 1, sa), (b, qb + 1, sb)))
                if val < -1e-9 * max(1.0, abs(self.obj)):
                    ra2, rb2 = list(ra), list(rb)
                    ra2[qa], rb2[qb] = j, i
                    self._set({a: ra2, b: rb2})
                    improved = True
        return improved

    def _replace(self, c: int, route: list[int], k: int, old: int, new: int) -> tuple[float, float]:
        """Completion of ``new`` put in place of ``old`` at position k of route c, and the shift of the
        repairs after it."""
        prev = route[k - 1] if k else -1
        start = self.C[prev] if k else self.cr[c]
        cn = start + self._leg(c, prev, new) + self.p[new]
        if k + 1 < len(route):
            nx = route[k + 1]
            return cn, cn + self.t[new][nx] - (self.C[old] + self.t[old][nx])
        return cn, 0.0

    def perturb(self, moves: int) -> None:
        routes = [list(r) for r in self.routes]
        for _ in range(moves):
            a = self.rng.choice([c for c, r in enumerate(routes) if r])
            j = routes[a].pop(self.rng.randrange(len(routes[a])))
            b = self.rng.choice(self.elig[j])
            routes[b].insert(self.rng.randrange(len(routes[b]) + 1), j)
        self.load(routes)


def _heuristic(d: RestorationData, opts: RestorationOptions, deadline: float) -> tuple[list[list[int]], float]:
    """Best crew routes (crew positions) found: WSPT insertion, local search, iterated local search."""
    if d.n == 0:
        return [[] for _ in d.crew_ids], 0.0
    rng = random.Random(opts.seed)
    s = _Search(d, rng)
    # weight of an element for the order: its own and that of everything waiting on it
    down = d.w.copy()
    for j in reversed(d.topo):  # dependants first
        for i in d.requires[j]:
            down[i] += down[j]
    tin = np.minimum(d.t.min(axis=0, initial=np.inf, where=~np.eye(d.n, dtype=bool)), d.crew_t.min(axis=0))
    ratio = down / (d.p + tin)
    best_routes, best_obj = None, math.inf
    for order in (sorted(range(d.n), key=lambda j: -ratio[j]), sorted(range(d.n), key=lambda j: -d.w[j] / d.p[j])):
        s.insertion(order)
        s.local_search(deadline)
        if s.obj < best_obj - 1e-9:
            best_routes, best_obj = [list(r) for r in s.routes], s.obj
    current_routes, current_obj = best_routes, best_obj
    for _ in range(opts.heuristic_rounds):
        if time.perf_counter() >= deadline or d.n < 2:
            break
        s.load(current_routes)
        s.perturb(rng.randint(2, 4))
        s.local_search(deadline)
        if s.obj < current_obj - 1e-9 or (s.obj <= current_obj * 1.002 and rng.random() < 0.1):
            current_routes, current_obj = [list(r) for r in s.routes], s.obj
        if s.obj < best_obj - 1e-9:
            best_routes, best_obj = [list(r) for r in s.routes], s.obj
    C = _completions(d, best_routes)
    return best_routes, float(d.w @ _service(d, C))


# --------------------------------------------------------------------------------------------- MILP

@dataclass
class RestorationModel:
    """The Pyomo model and what the solve needs: data, bounds, arcs, the weight scale and the cut inputs.

    The model's objective is Σ_j ŵ_j S_j with ŵ_j = w_j / ``scale`` (scale = Σ_j w_j): hours, weighted."""

    model: pyo.ConcreteModel
    data: RestorationData
    arcs: list[tuple[int, int]]
    starts: list[tuple[int, int]]
    c_min: np.ndarray
    c_max: np.ndarray
    s_min: np.ndarray
    scale: float
    q: np.ndarray  # effective durations of the cuts (h)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Graph:
    """Arcs kept after the bounds, their neighbour lists and a_ij."""

    arcs: list[tuple[int, int]]
    starts: list[tuple[int, int]]
    into: list[list[int]]
    out: list[list[int]]
    start_into: list[list[int]]
    class_out: list[list[int]]
    group_ok: np.ndarray  # (n, groups) bool
    a: np.ndarray  # (n, n) h


def _lower_bounds(d: RestorationData) -> tuple[np.ndarray, np.ndarray]:
    """C̲ (shortest depot-to-j chain, Dijkstra over the element graph) and S̲."""
    n = d.n
    cmin = np.full(n, np.inf)
    for c in range(len(d.class_r)):
        ok = d.eligible[:, c]
        cmin[ok] = np.minimum(cmin[ok], d.class_r[c] + d.class_t[c, ok] + d.p[ok])
    heap = [(v, j) for j, v in enumerate(cmin)]
    heapq.heapify(heap)
    done = np.zeros(n, bool)
    while heap:
        v, i = heapq.heappop(heap)
        if done[i] or v > cmin[i]:
            continue
        done[i] = True
        nxt = v + d.t[i] + d.p
        for j in np.flatnonzero((nxt < cmin) & ~done):
            cmin[j] = nxt[j]
            heapq.heappush(heap, (nxt[j], j))
    smin = cmin.copy()
    for j in d.topo:
        for i in d.requires[j]:
            smin[j] = max(smin[j], smin[i])
    return cmin, smin


def _upper_bounds(d: RestorationData, smin: np.ndarray, upper_bound: float | None) -> np.ndarray:
    """C̄_j: horizon, tightened by an incumbent objective (see the module docstring)."""
    n = d.n
    big = np.where(np.eye(n, dtype=bool), -np.inf, d.t).max(axis=0, initial=0.0) if n > 1 else np.zeros(n)
    tin = np.maximum(big, d.class_t.max(axis=0) if len(d.class_t) else 0.0)
    horizon = (d.class_r.max() if len(d.class_r) else 0.0) + float((d.p + tin).sum())
    smax = np.full(n, horizon)
    if upper_bound is not None and math.isfinite(upper_bound):
        total = float(d.w @ smin)
        pos = d.w > 0
        slack = upper_bound * (1 + 1e-7) + 1e-6 - total
        smax[pos] = np.minimum(smax[pos], smin[pos] + slack / d.w[pos])
    cmax = smax.copy()  # a repair ends before the service of everything requiring it is back
    for j in reversed(d.topo):  # dependants before what they require
        for i in d.requires[j]:
            cmax[i] = min(cmax[i], cmax[j])
    return cmax


def _graph(d: RestorationData, cmin: np.ndarray, cmax: np.ndarray) -> _Graph:
    n, K = d.n, len(d.class_r)
    a = d.t + d.p[None, :]
    group_ok = np.zeros((n, d.groups), bool)
    for c in range(K):
        group_ok[:, d.class_group[c]] |= d.eligible[:, c]
    share = (group_ok.astype(int) @ group_ok.T.astype(int)) > 0
    arcs = [(i, j) for i in range(n) for j in range(n)
            if i != j and share[i, j] and cmin[i] + a[i, j] <= cmax[j] + 1e-9]
    starts = [(c, j) for c in range(K) for j in range(n)
              if d.eligible[j, c] and d.class_r[c] + d.class_t[c, j] + d.p[j] <= cmax[j] + 1e-9]
    g = _Graph(arcs=arcs, starts=starts, into=[[] for _ in range(n)], out=[[] for _ in range(n)],
               start_into=[[] for _ in range(n)], class_out=[[] for _ in range(K)], group_ok=group_ok, a=a)
    for i, j in arcs:
        g.into[j].append(i)
        g.out[i].append(j)
    for c, j in starts:
        g.start_into[j].append(c)
        g.class_out[c].append(j)
    bad = [j for j in range(n) if not g.into[j] and not g.start_into[j]]
    if bad:  # cannot happen with a valid upper bound
        raise RestorationError(f"failure {d.ids[bad[0]]!r}: no crew can reach it within the bounds")
    return g


def declare_routing(m: pyo.ConcreteModel, d: RestorationData, g: _Graph) -> None:
    """x_ij, z_cj and the degree rows: one arc into each element (``m.enter``), at most one out
    (``m.leave``), at most m_c first repairs for class c (``m.crews``)."""
    n, K = d.n, len(d.class_r)
    m.x = pyo.Var(g.arcs, domain=pyo.Binary)
    m.z = pyo.Var(g.starts, domain=pyo.Binary)
    m.enter = pyo.Constraint(range(n), rule=lambda _m, j: sum(m.x[i, j] for i in g.into[j])
                             + sum(m.z[c, j] for c in g.start_into[j]) == 1)
    m.leave = pyo.Constraint(range(n), rule=lambda _m, i: sum(m.x[i, j] for j in g.out[i]) <= 1
                             if g.out[i] else pyo.Constraint.Skip)
    m.crews = pyo.Constraint(range(K), rule=lambda _m, c: sum(m.z[c, j] for j in g.class_out[c])
                             <= int(d.class_count[c]) if len(g.class_out[c]) > d.class_count[c]
                             else pyo.Constraint.Skip)


def declare_groups(m: pyo.ConcreteModel, d: RestorationData, g: _Graph) -> None:
    """y_jg when skills split the crews: Σ_g y_jg = 1 (``m.group_one``), z_cj ≤ y_j,g(c) (``m.group_start``),
    x_ij + y_ig − y_jg ≤ 1 (``m.group_arc``)."""
    if d.groups <= 1:
        return
    n, ok = d.n, g.group_ok
    m.y = pyo.Var([(j, k) for j in range(n) for k in range(d.groups) if ok[j, k]], domain=pyo.Binary)
    m.group_one = pyo.Constraint(range(n), rule=lambda _m, j: sum(
        m.y[j, k] for k in range(d.groups) if ok[j, k]) == 1)
    m.group_start = pyo.Constraint(g.starts, rule=lambda _m, c, j: m.z[c, j] <= m.y[j, int(d.class_group[c])])
    gidx = [(i, j, k) for (i, j) in g.arcs for k in range(d.groups) if ok[i, k]]
    m.group_arc = pyo.Constraint(gidx, rule=lambda _m, i, j, k: m.x[i, j] + m.y[i, k]
                                 - (m.y[j, k] if ok[j, k] else 0) <= 1)


def declare_completion(m: pyo.ConcreteModel, d: RestorationData, g: _Graph, cmin: np.ndarray,
                       cmax: np.ndarray) -> None:
    """C_j in [C̲_j, C̄_j], the first-arc rows (``m.first``) and the lifted sequence rows (``m.seq``)."""
    n, a = d.n, g.a
    arcset = set(g.arcs)
    m.C = pyo.Var(range(n), bounds=lambda _m, j: (float(cmin[j]), float(cmax[j])))
    m.first = pyo.Constraint(range(n), rule=lambda _m, j: m.C[j] >= sum(
        float(d.class_r[c] + d.class_t[c, j] + d.p[j]) * m.z[c, j] for c in g.start_into[j])
        + sum(float(cmin[i] + a[i, j]) * m.x[i, j] for i in g.into[j]))

    def seq(_m, i, j):
        big = float(cmax[i] - cmin[j] + a[i, j])
        expr = m.C[i] - m.C[j] + big * m.x[i, j]
        if (j, i) in arcset:
            lift = big - float(a[i, j] + a[j, i])
            if lift > 0:
                expr = expr + lift * m.x[j, i]
        return expr <= big - float(a[i, j])

    m.seq = pyo.Constraint(g.arcs, rule=seq)


def declare_weight_flow(m: pyo.ConcreteModel, d: RestorationData, g: _Graph, wn: np.ndarray) -> None:
    """Weight flow (``m.f``, ``m.g``): the weight still waiting for a crew travels along its route, so
    Σ_j ŵ_j C_j ≥ Σ_cj (r_c + t_cj + p_j) g_cj + Σ_ij a_ij f_ij (``m.latency``); flow balance ``m.flow``,
    ŵ_j x_ij ≤ f_ij ≤ (1 − ŵ_i) x_ij (``m.flow_lo``, ``m.flow_hi``), ŵ_j z_cj ≤ g_cj ≤ z_cj (``m.start_lo``,
    ``m.start_hi``)."""
    n, a = d.n, g.a
    m.f = pyo.Var(g.arcs, bounds=(0.0, 1.0))
    m.g = pyo.Var(g.starts, bounds=(0.0, 1.0))
    m.flow = pyo.Constraint(range(n), rule=lambda _m, j: sum(m.f[i, j] for i in g.into[j])
                            + sum(m.g[c, j] for c in g.start_into[j]) - sum(m.f[j, k] for k in g.out[j])
                            == float(wn[j]))
    m.flow_lo = pyo.Constraint(g.arcs, rule=lambda _m, i, j: m.f[i, j] >= float(wn[j]) * m.x[i, j])
    m.flow_hi = pyo.Constraint(g.arcs, rule=lambda _m, i, j: m.f[i, j] <= float(1.0 - wn[i]) * m.x[i, j])
    m.start_lo = pyo.Constraint(g.starts, rule=lambda _m, c, j: m.g[c, j] >= float(wn[j]) * m.z[c, j])
    m.start_hi = pyo.Constraint(g.starts, rule=lambda _m, c, j: m.g[c, j] <= m.z[c, j])
    m.latency = pyo.Constraint(expr=sum(float(wn[j]) * m.C[j] for j in range(n) if wn[j] > 0) >= sum(
        float(d.class_r[c] + d.class_t[c, j] + d.p[j]) * m.g[c, j] for c, j in g.starts)
        + sum(float(a[i, j]) * m.f[i, j] for i, j in g.arcs))


def declare_service(m: pyo.ConcreteModel, d: RestorationData, smin: np.ndarray, wn: np.ndarray) -> None:
    """S_j ≥ S̲_j, S_j ≥ C_j (``m.service``), S_j ≥ S_i for i ∈ R(j) (``m.needs``); objective min Σ_j ŵ_j S_j."""
    n = d.n
    m.S = pyo.Var(range(n), bounds=lambda _m, j: (float(smin[j]), None))
    m.service = pyo.Constraint(range(n), rule=lambda _m, j: m.S[j] >= m.C[j])
    needs = [(j, i) for j in range(n) for i in d.requires[j]]
    m.needs = pyo.Constraint(needs, rule=lambda _m, j, i: m.S[j] >= m.S[i])
    m.objective = pyo.Objective(expr=sum(float(wn[j]) * m.S[j] for j in range(n) if wn[j] > 0))


def build_restoration_model(problem: RestorationProblem | RestorationData, options: RestorationOptions | None = None,
                            *, upper_bound: float | None = None) -> RestorationModel:
    """The MILP of the module docstring.  ``upper_bound``: objective (Σ w_j S_j) of a known schedule, which
    tightens C̄ and removes arcs; the model then keeps the schedules at least as good."""
    t0 = time.perf_counter()
    d = problem if isinstance(problem, RestorationData) else prepare_restoration_data(problem, options)
    if d.n == 0:
        raise RestorationError("no failures: nothing to schedule")
    scale = float(d.w.sum())
    if not scale > 0:
        raise RestorationError("every failure has weight 0 (people, unserved_mw, unserved_m3h and the option "
                               "weights): any schedule is optimal")
    wn = d.w / scale
    cmin, smin = _lower_bounds(d)
    cmax = np.maximum(_upper_bounds(d, smin, upper_bound), cmin)
    g = _graph(d, cmin, cmax)
    m = pyo.ConcreteModel(name="restoration")
    declare_routing(m, d, g)
    declare_groups(m, d, g)
    declare_completion(m, d, g, cmin, cmax)
    declare_weight_flow(m, d, g, wn)
    declare_service(m, d, smin, wn)
    # effective durations of the parallel-machine cuts: p_j + shortest travel into j
    tin = np.full(d.n, np.inf)
    for i, j in g.arcs:
        tin[j] = min(tin[j], d.t[i, j])
    for c, j in g.starts:
        tin[j] = min(tin[j], d.class_t[c, j])
    q = d.p + np.where(np.isfinite(tin), tin, 0.0)
    return RestorationModel(model=m, data=d, arcs=g.arcs, starts=g.starts, c_min=cmin, c_max=cmax, s_min=smin,
                            scale=scale, q=q, timings={"build_s": time.perf_counter() - t0})


def _fill(Q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """F(Q) = min Σ_k (r_k Q_k + ½ Q_k²) s.t. Σ_k Q_k = Q, Q_k ≥ 0, for each Q (water-filling)."""
    rs = np.sort(r)
    out = np.empty(len(Q))
    for idx, tot in enumerate(Q):
        for mm in range(len(rs), 0, -1):
            lam = (tot + rs[:mm].sum()) / mm
            if lam >= rs[mm - 1]:
                part = lam - rs[:mm]
                out[idx] = float((rs[:mm] * part + 0.5 * part ** 2).sum())
                break
    return out


def _cut_families(d: RestorationData) -> list[tuple[np.ndarray, np.ndarray]]:
    """(elements, crews' ready times) pairs: the elements every crew able to repair lies in a crew set U,
    for U each distinct set of crews able to repair an element, the unions of those sets and all crews."""
    sets = sorted({tuple(np.flatnonzero(d.crew_eligible[j])) for j in range(d.n)})
    unions = {frozenset(s) for s in sets} | {frozenset(range(len(d.crew_ids)))}
    if len(sets) <= 5:
        for mask in range(1, 1 << len(sets)):
            unions.add(frozenset().union(*(sets[b] for b in range(len(sets)) if mask >> b & 1)))
    out = []
    for u in sorted(unions, key=lambda s: (len(s), sorted(s))):
        crews = np.array(sorted(u), int)
        inside = ~d.crew_eligible[:, np.setdiff1d(np.arange(len(d.crew_ids)), crews)].any(axis=1)
        if inside.any():
            out.append((np.flatnonzero(inside), d.crew_r[crews].astype(float)))
    return out


def _separate(C: np.ndarray, q: np.ndarray, families: list[tuple[np.ndarray, np.ndarray]], limit: int = 12
              ) -> list[tuple[np.ndarray, float]]:
    """Violated parallel-machine inequalities among the prefixes of two LP orders of each family's elements
    (most violated first, relative to the right-hand side)."""
    found: dict[bytes, tuple[float, np.ndarray, float]] = {}
    for elems, r in families:
        Cf, qf = C[elems], q[elems]
        for key in (Cf, Cf - 0.5 * qf):
            order = np.argsort(key, kind="stable")
            qs, cs = qf[order], Cf[order]
            Q = np.cumsum(qs)
            rhs = _fill(Q, r) + 0.5 * np.cumsum(qs ** 2)
            viol = rhs - np.cumsum(qs * cs)
            for k in np.flatnonzero(viol > 1e-6 * np.maximum(1.0, rhs)):
                members = np.sort(elems[order[:k + 1]])
                found.setdefault(members.tobytes(), (float(viol[k] / max(1.0, rhs[k])), members, float(rhs[k])))
    best = sorted(found.values(), key=lambda v: -v[0])[:limit]
    return [(members, rhs) for _, members, rhs in best]


# --------------------------------------------------------------------------------------------- solution

@dataclass
class RestorationSolution:
    """A restoration schedule.

    ``assignment`` (one row per failed element, index = element id): ``crew``, ``order`` (1 = first of its
    crew), ``travel_start_h`` (when its crew sets off towards it), ``arrival_h``, ``start_h``, ``finish_h``
    (repair done), ``service_restored_h`` (max of its finish and the service of what it requires), ``layer``,
    ``weight`` (per h); ``crew_routes``: crew id → element ids in order; ``objective`` = Σ w_j S_j;
    ``unserved_energy_mwh`` = Σ unserved_mw_j S_j, ``unserved_water_m3`` = Σ unserved_m3h_j S_j, ``people_hours``
    = Σ people_j S_j; ``lower_bound`` (proven: Σ w_j S̲_j, the scheduling LP with cuts, HiGHS' dual bound),
    ``mip_gap`` = (objective − lower_bound) / objective; ``status``: HiGHS' model status in lower case
    ("optimal": within ``mip_gap``; "time limit reached": the best schedule found, with its gap), "optimal"
    without HiGHS when the schedule meets the bound, "heuristic" when the MILP was not run (``milp=False``
    or no time left); ``heuristic_objective`` (the start handed to HiGHS); ``timings`` (s; ``cuts``: the
    number of cuts added).
    """

    assignment: pd.DataFrame
    crew_routes: dict[Any, list]
    objective: float
    unserved_energy_mwh: float
    unserved_water_m3: float
    people_hours: float
    lower_bound: float
    mip_gap: float
    status: str
    heuristic_objective: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The assignment table (one row per element, in crew and visit order)."""
        return self.assignment.copy()

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable key figures and the crew routes."""
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {"status": self.status, "objective": num(self.objective), "lower_bound": num(self.lower_bound),
                "mip_gap": num(self.mip_gap), "heuristic_objective": num(self.heuristic_objective),
                "unserved_energy_mwh": num(self.unserved_energy_mwh), "unserved_water_m3": num(self.unserved_water_m3),
                "people_hours": num(self.people_hours),
                "last_service_restored_h": num(float(self.assignment["service_restored_h"].max()))
                if len(self.assignment) else 0.0,
                "crew_routes": {str(k): [str(e) for e in v] for k, v in self.crew_routes.items()},
                "timings": {k: float(v) for k, v in self.timings.items()}}


def _solution(d: RestorationData, routes: list[list[int]], *, lower_bound: float, status: str, heuristic: float,
              timings: dict[str, float]) -> RestorationSolution:
    C = _completions(d, routes)
    S = _service(d, C)
    rows = []
    for c, route in enumerate(routes):
        now, here = float(d.crew_r[c]), None
        for k, j in enumerate(route):
            arrive = now + (d.crew_t[c, j] if here is None else d.t[here, j])
            rows.append({"element": d.ids[j], "crew": d.crew_ids[c], "order": k + 1, "travel_start_h": now,
                         "arrival_h": arrive, "start_h": arrive, "finish_h": arrive + d.p[j],
                         "service_restored_h": S[j], "layer": d.layer[j], "weight": d.w[j]})
            now, here = arrive + d.p[j], j
    cols = ["element", "crew", "order", "travel_start_h", "arrival_h", "start_h", "finish_h", "service_restored_h",
            "layer", "weight"]
    table = pd.DataFrame(rows, columns=cols).set_index("element")
    obj = float(d.w @ S) if d.n else 0.0
    lb = min(lower_bound, obj)
    gap = (obj - lb) / obj if obj > 1e-12 else 0.0
    return RestorationSolution(
        assignment=table, crew_routes={d.crew_ids[c]: [d.ids[j] for j in r] for c, r in enumerate(routes)},
        objective=obj, unserved_energy_mwh=float(d.mw @ S) if d.n else 0.0,
        unserved_water_m3=float(d.m3h @ S) if d.n else 0.0, people_hours=float(d.people @ S) if d.n else 0.0,
        lower_bound=float(lb), mip_gap=float(max(gap, 0.0)), status=status, heuristic_objective=float(heuristic),
        timings=timings)


def _start_vector(rm: RestorationModel, h: HighsModel, routes: list[list[int]]) -> np.ndarray:
    """Column values of the MILP for crew routes (crew positions): arcs, groups, flows, C and S."""
    d, m = rm.data, rm.model
    vals = np.zeros(len(h.columns))
    C = _completions(d, routes)
    S = _service(d, C)
    wn = d.w / rm.scale

    def put(var, v):
        vals[h.column(var)] = v

    for c, r in enumerate(routes):
        if not r:
            continue
        cls = int(d.crew_class[c])
        put(m.z[cls, r[0]], 1.0)
        put(m.g[cls, r[0]], float(wn[r].sum()))
        for k, (i, j) in enumerate(zip(r, r[1:])):
            put(m.x[i, j], 1.0)
            put(m.f[i, j], float(wn[r[k + 1:]].sum()))
        if d.groups > 1:
            for j in r:
                put(m.y[j, int(d.class_group[cls])], 1.0)
    for j in range(d.n):
        put(m.C[j], C[j])
        put(m.S[j], S[j])
    return vals


def _routes_from_columns(rm: RestorationModel, h: HighsModel, x: np.ndarray) -> list[list[int]]:
    """Crew routes (crew positions) from MILP column values: follow the arcs from each start."""
    d, m = rm.data, rm.model
    nxt = {}
    for (i, j), v in zip(rm.arcs, x[h.columns_of(m.x[a] for a in rm.arcs)] if rm.arcs else []):
        if v > 0.5:
            nxt[i] = j
    free = {c: [k for k in range(len(d.crew_ids)) if d.crew_class[k] == c] for c in range(len(d.class_r))}
    routes: list[list[int]] = [[] for _ in d.crew_ids]
    for (c, j), v in zip(rm.starts, x[h.columns_of(m.z[s] for s in rm.starts)] if rm.starts else []):
        if v > 0.5:
            crew = free[c].pop(0)
            seen = set()
            while j is not None and j not in seen:
                seen.add(j)
                routes[crew].append(j)
                j = nxt.get(j)
    if sum(map(len, routes)) != d.n:
        raise RuntimeError("the MILP solution does not visit every element once")
    return routes


def solve_restoration(problem: RestorationProblem, options: RestorationOptions | None = None
                      ) -> RestorationSolution:
    """Schedule the repairs (see the module docstring): heuristic, cut rounds, MILP within the time limit."""
    opts = options or RestorationOptions()
    t0 = time.perf_counter()
    end = t0 + opts.time_limit_s
    d = prepare_restoration_data(problem, opts)
    timings = {"prepare_s": time.perf_counter() - t0}
    if d.n == 0:
        return _solution(d, [[] for _ in d.crew_ids], lower_bound=0.0, status="optimal", heuristic=0.0,
                         timings=timings)
    th = time.perf_counter()
    cap = opts.heuristic_time_s if opts.heuristic_time_s is not None else opts.time_limit_s / 5
    routes, heur = _heuristic(d, opts, min(end, th + cap))
    timings["heuristic_s"] = time.perf_counter() - th
    _, smin = _lower_bounds(d)
    lower = float(d.w @ smin)

    def done(best: list[list[int]], status: str) -> RestorationSolution:
        timings["total_s"] = time.perf_counter() - t0
        return _solution(d, best, lower_bound=lower, status=status, heuristic=heur, timings=timings)

    if heur <= lower + 1e-9 * max(1.0, abs(heur)):  # every element restored as early as it can be (or w = 0)
        return done(routes, "optimal")
    if not opts.milp or time.perf_counter() >= end:
        return done(routes, "heuristic")

    rm = build_restoration_model(d, opts, upper_bound=heur)
    timings["build_s"] = rm.timings["build_s"]
    h = HighsModel(rm.model, threads=opts.threads, output=opts.output)
    timings.update(h.timings)
    lower = max(lower, rm.scale * _cut_rounds(rm, h, opts, end, timings))
    left = end - time.perf_counter()
    if left <= 0:
        return done(routes, "heuristic")
    hs = h.highs
    hs.clearSolver()
    start = highspy.HighsSolution()
    start.col_value = _start_vector(rm, h, routes).tolist()
    hs.setSolution(start)
    hs.setOptionValue("time_limit", float(left))
    res = h.solve(mip_gap=opts.mip_gap, mip_duals=False)
    timings["solve_s"] = res.timings["solve_s"]
    info = hs.getInfo()
    best = routes
    if info.primal_solution_status == 2:  # a feasible point: the start or better
        cand = _routes_from_columns(rm, h, np.asarray(hs.getSolution().col_value))
        if float(d.w @ _service(d, _completions(d, cand))) < heur:
            best = cand
    bound = rm.scale * float(info.mip_dual_bound)
    if math.isfinite(bound):
        lower = max(lower, bound)
    return done(best, res.status.lower())


def _cut_rounds(rm: RestorationModel, h: HighsModel, opts: RestorationOptions, end: float,
                timings: dict[str, float]) -> float:
    """Separate the parallel-machine inequalities on the scheduling LP (C, S, ``m.service``, ``m.needs`` and
    the bounds: 2n columns, milliseconds a round), round after round, then add the cuts binding at its optimum
    as rows of the MILP in HiGHS.  Returns the scheduling LP's bound (model units: weighted hours)."""
    t0 = time.perf_counter()
    d, n = rm.data, rm.data.n
    lp = new_highs()
    lp.setOptionValue("output_flag", False)
    lp.setOptionValue("threads", int(opts.threads))  # HiGHS' scheduler is shared: the MILP's thread count
    inf = highspy.kHighsInf
    lp.addVars(2 * n, np.concatenate([rm.c_min, rm.s_min]), np.concatenate([rm.c_max, np.full(n, inf)]))
    lp.changeColsCost(n, np.arange(n, 2 * n, dtype=np.int32), d.w / rm.scale)
    for j in range(n):
        lp.addRow(0.0, inf, 2, np.array([n + j, j], np.int32), np.array([1.0, -1.0]))  # S_j ≥ C_j
        for i in d.requires[j]:
            lp.addRow(0.0, inf, 2, np.array([n + j, n + i], np.int32), np.array([1.0, -1.0]))  # S_j ≥ S_i
    base = lp.getNumRow()
    families = _cut_families(d)
    cuts: list[tuple[np.ndarray, float]] = []
    bound = -math.inf
    for rnd in range(opts.cut_rounds + 1):
        if time.perf_counter() >= end:
            break
        lp.run()
        if lp.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        bound = float(lp.getInfo().objective_function_value)
        if rnd == opts.cut_rounds:
            break
        new = _separate(np.asarray(lp.getSolution().col_value)[:n], rm.q, families)
        if not new:
            break
        for members, rhs in new:
            lp.addRow(float(rhs), inf, len(members), members.astype(np.int32), rm.q[members].astype(float))
        cuts += new
    keep = []
    if cuts and lp.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        sol = lp.getSolution()
        act, dual = np.asarray(sol.row_value)[base:], np.asarray(sol.row_dual)[base:]
        keep = [k for k, (members, rhs) in enumerate(cuts[:len(act)])
                if abs(dual[k]) > 1e-12 or act[k] <= rhs + 1e-9 * max(1.0, abs(rhs))]
    ccols = h.columns_of(rm.model.C[j] for j in range(n)).astype(np.int32)
    for k in keep:
        members, rhs = cuts[k]
        h.highs.addRow(float(rhs), inf, len(members), ccols[members], rm.q[members].astype(float))
    timings["cuts_s"] = time.perf_counter() - t0
    timings["cuts"] = float(len(keep))
    return bound
