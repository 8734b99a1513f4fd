"""Re-solving a day-ahead model in place (nightly sweeps): the same structure digest for problems that differ
only in numbers, another digest for another matrix, and exactly the answer of a new model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from joint_case import SNAPS, ev, grid, water

from solvers import DispatchInputError, DispatchOptions
from solvers.day_ahead import day_ahead_structure, resolve_day_ahead, solve_day_ahead

OPTS = DispatchOptions(cyclic_storage=False, end_soc_at_least_start=True)


def _grid(pv_mw=12.0, load=1.0, battery=(2.0, 4.0, 0.5), price=1.0):
    g = grid(pv_mw)
    g.add("storage", index="bess", bus="town", p_max_mw=battery[0], e_max_mwh=battery[1], soc_init=battery[2],
          eta_charge=0.95, eta_discharge=0.95)
    g.set_series("load.p_mw", g.series["load.p_mw"] * load)
    g.set_series("generator.marginal_cost", g.series["generator.marginal_cost"] * price)
    return g


def _water(demand=1.0, allowance=60000.0, v_init=10000.0):
    w = water()
    w.transfers["max_volume_m3"] = [allowance, np.nan]
    w.storages.loc["service", "v_init_m3"] = v_init
    w.demand_m3h = w.demand_m3h * demand
    return w


def _ev(energy=1.0, hub=1.5):
    e = ev()
    e.sessions["energy_mwh"] = e.sessions["energy_mwh"] * energy
    e.hubs["p_max_mw"] = hub
    return e


VARIANTS = {
    "less PV": (_grid(pv_mw=5.0), _water(), _ev()),
    "more load, dearer import": (_grid(load=1.25, price=1.3), _water(), _ev()),
    "bigger battery, empty at the start": (_grid(battery=(5.0, 15.0, 0.1)), _water(), _ev()),
    "water: more demand, a tighter allowance, a lower start": (_grid(), _water(1.3, 35000.0, 7000.0), _ev()),
    "more EV energy, a larger hub": (_grid(), _water(), _ev(energy=1.6, hub=2.5)),
    "all at once": (_grid(8.0, 1.1, (3.0, 9.0, 0.8), 0.9), _water(0.8, 50000.0), _ev(0.7, 1.0)),
}


def _tables(s):
    return {"generation": s.dispatch.generation, "soc": s.dispatch.state_of_charge, "flows": s.dispatch.flows,
            "prices": s.dispatch.nodal_price, "water_flow": s.water_flow, "water_volume": s.water_volume,
            "ev": s.ev_session_charging, "unserved": s.ev_unserved.to_frame()}


def test_problems_that_differ_only_in_numbers_share_a_structure():
    base = day_ahead_structure(_grid(), _water(), _ev(), OPTS)
    for name, (g, w, e) in VARIANTS.items():
        assert day_ahead_structure(g, w, e, OPTS) == base, name


def test_another_matrix_is_another_structure():
    base = day_ahead_structure(_grid(), _water(), _ev(), OPTS)
    g = _grid()
    g.line.loc["l1", "x_pu"] = 0.08  # another reactance
    other_kwh = _water()
    other_kwh.transfers.loc["lift", "kwh_per_m3"] = 0.6
    other_window = _ev()
    other_window.sessions.loc["shop", "departure_h"] = 14.0
    no_battery = grid()
    for what, key in [("reactance", day_ahead_structure(g, _water(), _ev(), OPTS)),
                      ("kWh/m3", day_ahead_structure(_grid(), other_kwh, _ev(), OPTS)),
                      ("window", day_ahead_structure(_grid(), _water(), other_window, OPTS)),
                      ("no battery", day_ahead_structure(no_battery, _water(), _ev(), OPTS)),
                      ("options", day_ahead_structure(_grid(), _water(), _ev(), DispatchOptions())),
                      ("inflexible", day_ahead_structure(_grid(), _water(), _ev(), OPTS, flexible=False))]:
        assert key != base, what


def test_a_model_resolved_in_place_gives_exactly_what_a_new_model_gives():
    model = solve_day_ahead(_grid(), _water(), _ev(), OPTS).model
    for name, (g, w, e) in VARIANTS.items():  # one model through every variant in turn
        fresh = solve_day_ahead(g, w, e, OPTS)
        again = resolve_day_ahead(model, g, w, e)
        assert again.model is model
        assert again.objective == pytest.approx(fresh.objective, rel=1e-12, abs=1e-9), name
        for table, a in _tables(again).items():
            b = _tables(fresh)[table]
            assert np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=0, atol=1e-9), (name, table)
        assert again.cost_breakdown == pytest.approx(fresh.cost_breakdown, rel=1e-12, abs=1e-9)
    # a variant that changes the answer did change it (the refresh is not a no-op)
    first = VARIANTS["water: more demand, a tighter allowance, a lower start"]
    r = resolve_day_ahead(model, *first)
    assert r.water_flow["plant"].sum() == pytest.approx(35000.0, rel=1e-9)  # the allowance binds
    assert r.water_shortage.to_numpy().sum() == pytest.approx(37440.0 - 35000.0, rel=1e-6)  # demand 1.3 × 28,800


def test_a_warm_resolve_reaches_the_same_optimum():
    model = solve_day_ahead(_grid(), _water(), _ev(), OPTS).model
    g, w, e = VARIANTS["all at once"]
    fresh = solve_day_ahead(g, w, e, OPTS)
    assert resolve_day_ahead(model, g, w, e, warm=True).objective == pytest.approx(fresh.objective, rel=1e-9)


def test_another_structure_is_refused():
    model = solve_day_ahead(_grid(), _water(), _ev(), OPTS).model
    other = _ev()
    other.sessions = other.sessions.rename(index={"shop": "market"})
    with pytest.raises(DispatchInputError, match="sessions differ"):
        resolve_day_ahead(model, _grid(), _water(), other)
    with pytest.raises(DispatchInputError, match="EV charging differ"):
        resolve_day_ahead(model, _grid(), _water(), None)
    g = _grid()
    g.add("load", index="works", bus="works", p_mw=0.5)
    g.set_series("load.p_mw", g.series["load.p_mw"].assign(works=pd.Series(0.5, index=SNAPS)))
    with pytest.raises(DispatchInputError, match="load ids differ"):
        resolve_day_ahead(model, g, _water(), _ev())
