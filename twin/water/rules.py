"""Rule-based controls, evaluated as EPANET 2.2/2.3 does.

Within a hydraulic step the clock advances in rule steps (``times.rule_step_s``,
default a tenth of the hydraulic step); tank levels are updated and every
enabled rule's premises are checked at each rule step; the step ends at the
first rule step where an action changes a link.  Actions of rules that fire
together go on one list: a later rule's action on the same link replaces an
earlier one only when its priority is higher.  Numeric premises compare with
EPANET's tolerance of 0.001 in the network's reporting units.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import units as U
from .compile import CLOSED, FCV, GPV, MISSING, PBV, PIPE, PRV, PSV, PUMP, NetworkError
from .network import Rule

_REL = {"=": "EQ", "IS": "EQ", "<>": "NE", "NOT": "NE", "<": "LT", "BELOW": "LT", ">": "GT", "ABOVE": "GT",
        "<=": "LE", ">=": "GE"}


@dataclass
class _Premise:
    logic: str  # IF / AND / OR
    kind: str  # node / link / system
    index: int
    attribute: str
    relation: str  # EQ NE LT GT LE GE
    value: float  # SI (seconds for times and fill/drain times)
    status: str  # '' or OPEN / CLOSED / ACTIVE
    tol: float


@dataclass
class _Action:
    link: int
    status: str  # '' or OPEN / CLOSED
    setting: float  # SI or MISSING
    tol: float


class RuleEngine:
    """Compiled rules of one network, acting on a running simulation's state."""

    def __init__(self, rules: list[Rule], sim) -> None:  # sim: hydraulics._Simulation
        self.sim = sim
        cw = sim.cw
        o = sim.wn.options
        q = U.flow_factor(o.flow_units)
        L = U.length_factor(o.flow_units)
        P = U.pressure_factor(o.pressure_units or U.default_pressure_units(o.flow_units), o.specific_gravity)
        node_index = {n: i for i, n in enumerate(cw.node_ids)}
        link_index = {n: i for i, n in enumerate(cw.link_ids)}
        ltype = cw.net["ltype"]

        def setting_tol(k: int, internal: bool) -> float:
            t = ltype[k]
            if t in (PRV, PSV, PBV):
                return 1e-3 * (U.FT if internal else P)
            if t == FCV:
                return 1e-3 * (U.CFS if internal else q)
            return 1e-3

        self.rules: list[tuple[float, list[_Premise], list[_Action], list[_Action]]] = []
        for r in rules:
            if not r.enabled:  # EPANET 2.3's DISABLED rules are skipped
                continue
            prem = []
            for p in r.premises:
                if p.object == "SYSTEM":
                    kind, idx = "system", -1
                elif p.object in ("PIPE", "PUMP", "VALVE", "LINK"):
                    kind, idx = "link", link_index[p.id]
                else:
                    kind, idx = "node", node_index[p.id]
                rel = _REL.get(p.relation)
                if rel is None:
                    raise NetworkError(f"rule {r.name!r}: unknown relation {p.relation!r}")
                status = p.value if isinstance(p.value, str) else ""
                value = float("nan") if status else float(p.value)
                attr = p.attribute
                if attr in ("FILLTIME", "DRAINTIME"):
                    value *= 3600.0
                tol = {"DEMAND": 1e-3 * q, "FLOW": 1e-3 * q, "HEAD": 1e-3 * L, "GRADE": 1e-3 * L,
                       "LEVEL": 1e-3 * L, "PRESSURE": 1e-3 * P}.get(attr, 1e-3)
                if attr == "SETTING" and kind == "link":
                    tol = setting_tol(idx, internal=False)
                prem.append(_Premise(p.logic, kind, idx, attr, rel, value, status, tol))
            acts = []
            for group in (r.then_actions, r.else_actions):
                out = []
                for a in group:
                    k = link_index[a.id]
                    if ltype[k] == 0:
                        raise NetworkError(f"rule {r.name!r}: a check-valve pipe ({a.id!r}) cannot be controlled")
                    if isinstance(a.value, str):
                        st = a.value
                        if st not in ("OPEN", "CLOSED", "ACTIVE"):
                            raise NetworkError(f"rule {r.name!r}: links can be set OPEN, CLOSED or ACTIVE, not {st!r}")
                        # EPANET accepts ACTIVE but its takeactions() then does nothing; so do we
                        out.append(_Action(k, st, MISSING, 0.0))
                    else:
                        x = float(a.value)
                        if x < 0 or ltype[k] == GPV:
                            raise NetworkError(f"rule {r.name!r}: invalid setting {x:g} for link {a.id!r}")
                        if ltype[k] <= PIPE:
                            out.append(_Action(k, "CLOSED" if x == 0 else "OPEN", MISSING, 0.0))
                        else:
                            out.append(_Action(k, "", x, setting_tol(k, internal=True)))
                acts.append(out)
            self.rules.append((r.priority, prem, acts[0], acts[1]))
        self.time1 = 0

    # -- premises ---------------------------------------------------------------
    def _time_ok(self, p: _Premise, now: int) -> bool:
        sim = self.sim
        if p.attribute == "TIME":
            t1, t2 = self.time1, now
        else:
            t1 = (self.time1 + sim.tstart) % U.SEC_PER_DAY
            t2 = (now + sim.tstart) % U.SEC_PER_DAY
        x = int(p.value)
        r = p.relation
        if r == "LT":
            return t2 < x
        if r == "LE":
            return t2 <= x
        if r == "GT":
            return t2 > x
        if r == "GE":
            return t2 >= x
        flag = (x >= t1 or x <= t2) if t2 < t1 else (t1 <= x <= t2)
        return flag if r == "EQ" else not flag

    def _value(self, p: _Premise) -> float | None:
        sim = self.sim
        i = p.index
        a = p.attribute
        if a == "DEMAND":
            return sim.system_demand if p.kind == "system" else sim.node_demand[i]
        if a in ("HEAD", "GRADE"):
            return sim.H[i]
        if a in ("PRESSURE", "LEVEL"):
            return sim.H[i] - sim.cw.net["elev"][i]
        if a == "FLOW":
            return abs(sim.Q[i])
        if a == "SETTING":
            s = sim.setting[i]
            return None if s == MISSING else s
        if a in ("FILLTIME", "DRAINTIME"):
            j = i - sim.nj - sim.nr
            if j < 0:
                return None
            q = sim.node_demand[i]
            if a == "FILLTIME":
                return None if q <= U.TINY_Q else (sim.cw.tank_vmax[j] - sim.V[j]) / q
            return None if q >= -U.TINY_Q else (sim.cw.tank_vmin[j] - sim.V[j]) / q
        return None

    def _check(self, p: _Premise, now: int) -> bool:
        if p.attribute in ("TIME", "CLOCKTIME"):
            return self._time_ok(p, now)
        if p.status:
            s = self.sim.status[p.index]
            word = "CLOSED" if s <= CLOSED else "ACTIVE" if s == 4 else "OPEN"
            return (word == p.status) if p.relation == "EQ" else (word != p.status) if p.relation == "NE" else False
        x = self._value(p)
        if x is None:
            return False
        v, tol, r = p.value, p.tol, p.relation
        if r == "EQ":
            return abs(x - v) <= tol
        if r == "NE":
            return abs(x - v) >= tol
        if r == "LT":
            return x <= v + tol
        if r == "LE":
            return x <= v - tol
        if r == "GT":
            return x >= v - tol
        return x >= v + tol  # GE

    def _premises(self, prem: list[_Premise], now: int) -> bool:
        result = True
        for p in prem:
            if p.logic == "OR":
                if not result:
                    result = self._check(p, now)
            else:
                if not result:
                    return False
                result = self._check(p, now)
        return result

    # -- actions --------------------------------------------------------------------
    def check(self, now: int, dt: int) -> int:
        """EPANET's checkrules(): evaluate all rules at ``now``; returns the number of actions taken."""
        self.time1 = now - dt + 1
        todo: list[tuple[_Action, int]] = []  # EPANET prepends: later entries are taken first
        for i, (_prio, prem, then, other) in enumerate(self.rules):
            acts = then if self._premises(prem, now) else other
            for a in acts:
                for j, (b, ri) in enumerate(todo):
                    if b.link == a.link:
                        if self.rules[i][0] > self.rules[ri][0]:
                            todo[j] = (a, i)
                        break
                else:
                    todo.append((a, i))
        n = 0
        for a, _ri in reversed(todo):
            n += self._take(a)
        return n

    def _take(self, a: _Action) -> int:
        sim = self.sim
        k = a.link
        s = sim.status[k]
        v = sim.setting[k]
        t = sim.ltype[k]
        if a.status == "OPEN" and s <= CLOSED:
            if t == PUMP:
                sim.setting[k] = 1.0
                sim.reset_pump_flow(k)
            elif t > PUMP and t != GPV:
                sim.setting[k] = MISSING
            sim.status[k] = 3
            return 1
        if a.status == "CLOSED" and s > CLOSED:
            if t == PUMP:
                sim.setting[k] = 0.0
            elif t > PUMP and t != GPV:
                sim.setting[k] = MISSING
            sim.status[k] = CLOSED
            return 1
        if a.setting != MISSING and abs(a.setting - v) > a.tol:
            x = a.setting
            if t == PUMP:
                sim.setting[k] = x
                if x > 0 and s <= CLOSED:
                    sim.reset_pump_flow(k)
                    sim.status[k] = 3
                if x == 0 and s > CLOSED:
                    sim.status[k] = CLOSED
            elif t == FCV:
                sim.setting[k] = x
                sim.status[k] = 4
            else:
                if v == MISSING and s <= CLOSED:
                    sim.status[k] = 3
                sim.setting[k] = x
            return 1
        return 0

    def timestep(self, now: int, tstep: int, rule_step: int) -> int:
        """EPANET's ruletimestep(): advance tank levels in rule steps until a rule fires."""
        sim = self.sim
        tmax = now + tstep
        dt = min(rule_step, tstep)
        dt1 = min(rule_step - (now % rule_step), tstep)
        if dt1 == 0:
            dt1 = dt
        t = now
        while True:
            t += dt1
            sim.tank_levels(dt1)
            if self.check(t, dt1):
                break
            dt = min(dt, tmax - t)
            dt1 = dt
            if dt <= 0:
                break
        return t - now

