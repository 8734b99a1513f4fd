"""Unit commitment (MILP) and ramping: checked against brute force on a tiny case, and for consistency."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from solvers import DispatchOptions, solve_dispatch
from twin.energy import Grid

HOURS = 4
LOAD = np.array([60.0, 150.0, 210.0, 90.0])
#            p_min, p_max, cost, startup, min_up
UNITS = {"base": (0.0, 120.0, 10.0, 0.0, 0), "mid": (40.0, 100.0, 20.0, 300.0, 2), "peak": (20.0, 80.0, 35.0, 50.0, 1)}


def tiny_grid(committable: bool = True) -> Grid:
    g = Grid(name="uc")
    g.add("bus", index="1", type="ref")
    g.add("load", index="L", bus="1", p_mw=100.0)
    for name, (pmin, pmax, _c, _su, up) in UNITS.items():
        g.add("generator", index=name, bus="1", p_min_mw=pmin, p_max_mw=pmax,
              committable=committable and name != "base", min_up_h=float(up), initially_on=(name == "base"))
    g.add("generator_cost", pd.DataFrame({"model": 2, "startup": [u[3] for u in UNITS.values()],
                                          "coefficients": [(u[2], 0.0) for u in UNITS.values()]},
                                         index=list(UNITS)))
    snaps = pd.date_range("2026-01-01", periods=HOURS, freq="h")
    g.set_series("load.p_mw", pd.DataFrame({"L": LOAD}, index=snaps))
    return g


def brute_force() -> float:
    """Enumerate every on/off schedule of 'mid' and 'peak', keep those honouring minimum up times, dispatch
    each hour by LP, add start-up costs."""
    best = np.inf
    for bits in itertools.product([0, 1], repeat=2 * HOURS):
        on = {"mid": bits[:HOURS], "peak": bits[HOURS:]}
        ok = True
        for name in ("mid", "peak"):
            up = UNITS[name][4]
            u = (0,) + on[name]
            for t in range(1, HOURS + 1):
                if u[t] == 1 and u[t - 1] == 0 and sum(u[t:t + up]) < min(up, HOURS + 1 - t):
                    ok = False
        if not ok:
            continue
        cost = sum(UNITS[n][3] for n in ("mid", "peak") for t in range(HOURS)
                   if on[n][t] and (t == 0 or not on[n][t - 1]))
        for t in range(HOURS):
            names = ["base"] + [n for n in ("mid", "peak") if on[n][t]]
            c = [UNITS[n][2] for n in names]
            bounds = [(UNITS[n][0], UNITS[n][1]) for n in names]
            res = linprog(c, A_eq=[[1.0] * len(names)], b_eq=[LOAD[t]], bounds=bounds, method="highs")
            if res.status != 0:
                cost = np.inf
                break
            cost += res.fun
        best = min(best, cost)
    return best


def test_unit_commitment_equals_brute_force():
    sol = solve_dispatch(tiny_grid(), DispatchOptions(network="copper", voll=None, unit_commitment=True, mip_gap=0.0))
    assert sol.objective == pytest.approx(brute_force(), rel=1e-9)
    gen = sol.generation
    for name in ("mid", "peak"):
        on = gen[name].to_numpy() > 1e-6
        assert ((gen[name] >= UNITS[name][0] - 1e-6) | ~on).all()  # minimum output when on
    # minimum up time of 'mid' (2 h) holds in the schedule
    on = np.r_[0, (gen["mid"].to_numpy() > 1e-6).astype(int)]
    starts = np.flatnonzero(np.diff(on) == 1)
    assert all(on[s + 1:s + 3].sum() == min(2, HOURS - s) for s in starts)


def test_without_commitment_minimum_outputs_are_must_run():
    lp = solve_dispatch(tiny_grid(committable=False), DispatchOptions(network="copper", voll=None))
    for name, (pmin, *_rest) in UNITS.items():
        assert (lp.generation[name] >= pmin - 1e-9).all()
    uc = solve_dispatch(tiny_grid(), DispatchOptions(network="copper", voll=None, unit_commitment=True))
    assert uc.objective < lp.objective  # switching 'peak' off at night beats running it at its minimum


def test_ramp_limits_hold_and_cost_more():
    g = tiny_grid(committable=False)
    gen = g.generator.copy()
    gen["p_min_mw"] = 0.0
    g.generator = gen
    free = solve_dispatch(g, DispatchOptions(network="copper", voll=1000.0))
    gen.loc["base", "ramp_up_mw_h"] = 30.0
    gen.loc["base", "ramp_down_mw_h"] = 30.0
    g.generator = gen
    ramped = solve_dispatch(g, DispatchOptions(network="copper", voll=1000.0))
    steps = np.diff(ramped.generation["base"].to_numpy())
    assert (np.abs(steps) <= 30.0 + 1e-6).all()
    assert ramped.objective > free.objective
