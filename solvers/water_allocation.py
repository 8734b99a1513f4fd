"""Seasonal allocation of scarce water from a dam complex (a linear programme, robust to inflow scenarios).

Symbols (periods p, e.g. months or weeks; inflow scenarios s; users u — drinking-water supply through a
treatment plant, irrigation sectors of the plain):

=============  =======================  ==============================================================
symbol         Pyomo                    meaning (unit)
=============  =======================  ==============================================================
x_up           ``m.delivery[u, p]``     water delivered to user u in period p (hm³), 0 ≤ x_up ≤ D_up, ≤ C_u
S_sp           ``m.storage[s, p]``      stored water at the end of period p under scenario s (hm³)
e_sp           ``m.release_env[s, p]``  environmental release (hm³) ≥ E_p (the minimum environmental flow)
o_sp           ``m.spill[s, p]``        spill (hm³) ≥ 0
I_sp                                    inflow of scenario s (hm³); ε_p evaporation (fraction of storage)
w_u                                     weight of a unit of shortage of user u (drinking ≫ irrigation)
=============  =======================  ==============================================================

Storage (``m.balance[s, p]``): S_sp = (1 − ε_p) S_s,p−1 + I_sp − Σ_u x_up − e_sp − o_sp, with S_s,−1 the
initial storage, S̲ ≤ S_sp ≤ S̄ and S_s,last ≥ S_end.  Objective: min Σ_u Σ_p w_u (D_up − x_up)
+ δ Σ_s π_s Σ_p (e_sp − E_p) (δ small: release no more than needed).

Robustness: the deliveries x are one plan for every scenario (they are what is announced to users);
storage, environmental release and spill adapt per scenario.  So the plan is feasible however the
season turns out among the scenarios given: with an equally weighted scenario set this is the
conservative (worst-case feasible) allocation.  Infeasible (even zero deliveries break the minimum
storage or environmental flow in some scenario) is diagnosed by scenario and period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .highs_route import HighsModel

__all__ = ["AllocationProblem", "AllocationSolution", "solve_allocation", "AllocationError"]


class AllocationError(ValueError):
    """Bad input or an infeasible allocation (names the user, period or scenario)."""


@dataclass
class AllocationProblem:
    """Inputs (hm³ per period unless said otherwise).

    ``inflow``: periods × scenarios; ``demand``: periods × users; ``users``: index = user id, columns
    ``weight`` (shortage weight per hm³) and ``capacity_hm3`` (per period, e.g. a treatment plant; inf for
    none); ``evaporation``: fraction of storage lost per period; ``env_flow_min``: per period;
    ``probability``: per scenario (defaults equal).
    """

    inflow: pd.DataFrame
    demand: pd.DataFrame
    users: pd.DataFrame
    storage_init: float
    storage_min: float
    storage_max: float
    storage_end_min: float = 0.0
    evaporation: pd.Series | None = None
    env_flow_min: pd.Series | None = None
    probability: pd.Series | None = None


@dataclass
class AllocationSolution:
    """Deliveries and shortages (periods × users), storage per scenario (periods × scenarios), objective."""

    delivery: pd.DataFrame
    shortage: pd.DataFrame
    storage: pd.DataFrame
    spill: pd.DataFrame
    release_env: pd.DataFrame
    objective: float
    weighted_shortage: float


def _check(pb: AllocationProblem) -> None:
    periods = pb.inflow.index
    if not pb.demand.index.equals(periods):
        raise AllocationError("demand and inflow must have the same periods (index)")
    missing = [u for u in pb.demand.columns if u not in pb.users.index]
    if missing:
        raise AllocationError(f"user {missing[0]!r} has a demand but no row in users (weight, capacity_hm3)")
    for name, df in (("inflow", pb.inflow), ("demand", pb.demand)):
        v = df.to_numpy(float)
        if not np.isfinite(v).all() or (v < 0).any():
            r, c = np.argwhere(~np.isfinite(v) | (v < 0))[0]
            raise AllocationError(f"{name}: {df.columns[c]!r} at {df.index[r]!r} is {v[r, c]!r} (must be >= 0)")
    if not 0 <= pb.storage_min <= pb.storage_init <= pb.storage_max:
        raise AllocationError("storage must satisfy 0 <= storage_min <= storage_init <= storage_max")
    if (pb.users["weight"] < 0).any():
        raise AllocationError(f"user {pb.users.index[pb.users['weight'] < 0][0]!r}: negative weight")


def solve_allocation(pb: AllocationProblem, *, release_penalty: float = 1e-6) -> AllocationSolution:
    """Solve the robust seasonal allocation (see the module docstring)."""
    _check(pb)
    periods, scen, users = pb.inflow.index, pb.inflow.columns, list(pb.demand.columns)
    P, Sn, U = len(periods), len(scen), len(users)
    inflow = pb.inflow.to_numpy(float)
    demand = pb.demand.to_numpy(float)
    cap = pb.users.loc[users, "capacity_hm3"].to_numpy(float) if "capacity_hm3" in pb.users else np.full(U, np.inf)
    weight = pb.users.loc[users, "weight"].to_numpy(float)
    evap = np.zeros(P) if pb.evaporation is None else pb.evaporation.reindex(periods).to_numpy(float)
    env = np.zeros(P) if pb.env_flow_min is None else pb.env_flow_min.reindex(periods).to_numpy(float)
    prob = np.full(Sn, 1.0 / Sn) if pb.probability is None else pb.probability.reindex(scen).to_numpy(float)
    m = pyo.ConcreteModel(name="water allocation")
    m.delivery = pyo.Var(range(U), range(P), bounds=lambda _m, u, p: (0.0, float(min(demand[p, u], cap[u]))))
    m.storage = pyo.Var(range(Sn), range(P), bounds=(pb.storage_min, pb.storage_max))
    m.release_env = pyo.Var(range(Sn), range(P), bounds=lambda _m, s, p: (float(env[p]), None))
    m.spill = pyo.Var(range(Sn), range(P), bounds=(0.0, None))

    def balance(_m, s, p):
        prev = m.storage[s, p - 1] if p > 0 else pb.storage_init
        return m.storage[s, p] == (1.0 - evap[p]) * prev + float(inflow[p, s]) - sum(
            m.delivery[u, p] for u in range(U)) - m.release_env[s, p] - m.spill[s, p]

    m.balance = pyo.Constraint(range(Sn), range(P), rule=balance)
    m.end = pyo.Constraint(range(Sn), rule=lambda _m, s: m.storage[s, P - 1] >= pb.storage_end_min)
    m.objective = pyo.Objective(expr=sum(weight[u] * (float(demand[p, u]) - m.delivery[u, p])
                                         for u in range(U) for p in range(P))
                                + release_penalty * sum(prob[s] * (m.release_env[s, p] - float(env[p]))
                                                        for s in range(Sn) for p in range(P)))
    h = HighsModel(m)
    status = h.solve()
    if not status.optimal:
        raise AllocationError(f"the allocation is {status.status.lower()}: " + _diagnose(pb, inflow, evap, env))
    x = h.values_of(m.delivery[u, p] for u in range(U) for p in range(P)).reshape(U, P).T

    def per_scenario(var):
        return pd.DataFrame(h.values_of(var[s, p] for s in range(Sn) for p in range(P)).reshape(Sn, P).T,
                            index=periods, columns=scen)

    delivery = pd.DataFrame(x, index=periods, columns=users)
    shortage = pd.DataFrame(demand - x, index=periods, columns=users).clip(lower=0.0)
    return AllocationSolution(delivery=delivery, shortage=shortage, storage=per_scenario(m.storage),
                              spill=per_scenario(m.spill), release_env=per_scenario(m.release_env),
                              objective=status.objective,
                              weighted_shortage=float((shortage.to_numpy() * weight[None, :]).sum()))


def _diagnose(pb: AllocationProblem, inflow: np.ndarray, evap: np.ndarray, env: np.ndarray) -> str:
    """Simulate zero deliveries with only the environmental flow released: where storage falls below its minimum."""
    for s in range(inflow.shape[1]):
        S = pb.storage_init
        for p in range(inflow.shape[0]):
            S = (1.0 - evap[p]) * S + inflow[p, s] - env[p]
            S = min(S, pb.storage_max)
            if S < pb.storage_min - 1e-9:
                return (f"in scenario {pb.inflow.columns[s]!r} the storage falls below its minimum in period "
                        f"{pb.inflow.index[p]!r} even with no deliveries (environmental flow {env[p]:g} hm³)")
        if S < pb.storage_end_min - 1e-9:
            return f"in scenario {pb.inflow.columns[s]!r} the end storage cannot reach {pb.storage_end_min:g} hm³"
    return "check capacities and bounds"
