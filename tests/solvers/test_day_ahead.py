"""Joint energy–water–mobility day-ahead schedule: balances close, windows and capacities hold, flexibility
absorbs PV surplus, and the optimum equals an independent linear programme."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from joint_case import BASE_LOAD, HOURS, PRICE, SNAPS, SUN, WATER_DEMAND, ev, grid, water
from scipy.optimize import linprog

from solvers import DispatchInputError, DispatchOptions
from solvers.day_ahead import ev_sessions_from_arrivals, solve_day_ahead


@pytest.fixture(scope="module")
def both():
    g = grid()
    return g, solve_day_ahead(g, water(), ev()), solve_day_ahead(g, water(), ev(), flexible=False)


def test_electricity_balance_closes_every_hour(both):
    g, flex, _ = both
    d = flex.dispatch
    supply = d.generation.sum(axis=1) + d.shed.sum(axis=1)
    demand = pd.Series(BASE_LOAD, index=SNAPS) + flex.flexible_load.sum(axis=1)
    assert np.allclose(supply.to_numpy(), demand.to_numpy(), atol=1e-6)
    pumping = flex.water_power.sum(axis=1) + flex.ev_charging.sum(axis=1)
    assert np.allclose(pumping.to_numpy(), flex.flexible_load.sum(axis=1).to_numpy(), atol=1e-9)


def test_water_balance_closes_every_hour(both):
    _, flex, _ = both
    f, v = flex.water_flow, flex.water_volume
    prev_cw = np.r_[3000.0, v["clear_water"].to_numpy()[:-1]]
    assert np.allclose(v["clear_water"] - prev_cw, f["plant"] - f["lift"], atol=1e-6)
    prev_sr = np.r_[10000.0, v["service"].to_numpy()[:-1]]
    assert np.allclose(v["service"] - prev_sr, f["lift"] - WATER_DEMAND + flex.water_shortage["service"], atol=1e-6)
    assert v["service"].iloc[-1] >= 10000.0 - 1e-6 and v["clear_water"].iloc[-1] >= 3000.0 - 1e-6
    assert flex.water_shortage.to_numpy().sum() < 1e-9


def test_ev_sessions_charge_only_in_their_window_within_hub_limits(both):
    _, flex, _ = both
    assert (flex.ev_charging["centre"] <= 1.5 + 1e-9).all()
    hours = np.arange(HOURS)
    outside = (hours < 8)
    assert flex.ev_charging["centre"][outside].abs().max() < 1e-9
    assert flex.ev_charging["centre"].sum() == pytest.approx(3.0 + 1.2 + 2.5 - flex.ev_unserved.sum(), abs=1e-6)
    assert flex.ev_unserved.sum() < 1e-9


def test_flexibility_absorbs_pv_surplus_and_lowers_cost(both):
    _, flex, rigid = both
    assert rigid.curtailment["pv"].sum() > 1.0  # the inflexible day wastes sun at noon
    assert flex.curtailment["pv"].sum() < 0.5 * rigid.curtailment["pv"].sum()
    assert flex.objective < rigid.objective
    noon, night = flex.water_power.iloc[10:15].sum().sum(), flex.water_power.iloc[0:5].sum().sum()
    assert noon > night  # pumping moved into the sunny hours
    s = flex.summary()
    assert s["curtailed_mwh"] == pytest.approx(flex.curtailment["pv"].sum())
    assert s["pumping_mwh"] > 0 and s["ev_charged_mwh"] == pytest.approx(6.7, abs=1e-6)


def test_optimum_equals_an_independent_linear_programme():
    """The copper-plate joint problem written directly for scipy's linprog (no shedding, no shortage, no
    unserved charging): the same optimum."""
    g = grid()
    w, e = water(shortage_cost=None), ev(unserved_cost=None)
    ours = solve_day_ahead(g, w, e, DispatchOptions(network="copper", voll=None))
    T = HOURS
    # variables: import[T], pv[T], plant[T], lift[T], Vcw[T], Vsr[T], then charging per (session, t in window)
    wins = [list(range(8, 17)), list(range(9, 13)), list(range(18, 24))]
    pairs = [(s, t) for s, ts in enumerate(wins) for t in ts]
    n = 6 * T + len(pairs)
    imp, pv, plant, lift, vcw, vsr = (np.arange(T) + k * T for k in range(6))
    ev_col = {p: 6 * T + i for i, p in enumerate(pairs)}
    c = np.zeros(n)
    c[imp] = PRICE
    a_eq, b_eq = [], []
    for t in range(T):  # power balance (MW): import + pv = load + 0.25/1000 plant + 0.55/1000 lift + charging
        row = np.zeros(n)
        row[imp[t]] = row[pv[t]] = 1.0
        row[plant[t]] = -0.25e-3
        row[lift[t]] = -0.55e-3
        for s in range(3):
            if (s, t) in ev_col:
                row[ev_col[s, t]] = -1.0
        a_eq.append(row)
        b_eq.append(BASE_LOAD[t])
        for vol, inflow, outflow, v0, dem in ((vcw, plant, lift, 3000.0, 0.0), (vsr, lift, None, 10000.0,
                                                                                 WATER_DEMAND[t])):
            row = np.zeros(n)
            row[vol[t]] = 1.0
            if t > 0:
                row[vol[t - 1]] = -1.0
            row[inflow[t]] = -1.0
            if outflow is not None:
                row[outflow[t]] = 1.0
            a_eq.append(row)
            b_eq.append((v0 if t == 0 else 0.0) - dem)
    for s, energy in enumerate([3.0, 1.2, 2.5]):
        row = np.zeros(n)
        for t in wins[s]:
            row[ev_col[s, t]] = 1.0
        a_eq.append(row)
        b_eq.append(energy)
    a_ub, b_ub = [], []
    for t in range(T):  # hub limit
        row = np.zeros(n)
        for s in range(3):
            if (s, t) in ev_col:
                row[ev_col[s, t]] = 1.0
        a_ub.append(row)
        b_ub.append(1.5)
    for vol, v0 in ((vcw, 3000.0), (vsr, 10000.0)):  # end volumes
        row = np.zeros(n)
        row[vol[-1]] = -1.0
        a_ub.append(row)
        b_ub.append(-v0)
    bounds = ([(0, 60.0)] * T + [(0, 12.0 * SUN[t]) for t in range(T)] + [(0, 2340.0)] * T + [(0, 3000.0)] * T
              + [(500.0, 6000.0)] * T + [(2000.0, 20000.0)] * T + [(0, [1.0, 0.6, 1.0][s]) for s, _t in pairs])
    ref = linprog(c, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs")
    assert ref.status == 0
    assert ours.objective == pytest.approx(ref.fun, rel=1e-9)


def test_discrete_pumps_run_whole_units():
    sol = solve_day_ahead(grid(), water(discrete=True), None)
    lift = sol.water_flow["lift"].to_numpy() / 750.0  # 4 pumps of 750 m³/h
    assert np.allclose(lift, np.round(lift), atol=1e-6)
    assert sol.water_shortage.to_numpy().sum() < 1e-9


def test_a_raw_water_allowance_is_honoured_and_shortage_reported():
    w = water()
    w.transfers = w.transfers.assign(max_volume_m3=[20000.0, np.nan])
    sol = solve_day_ahead(grid(), w, None)
    assert (sol.water_flow["plant"].sum()) <= 20000.0 + 1e-6
    # demand is ~28,800 m³ and storage can give back 9,500 m³ at most (end volumes must be restored: none)
    assert sol.summary()["water_shortage_m3"] > 0


def test_sessions_from_traffic_arrivals():
    arrivals = pd.DataFrame({"Z1": [100.0, 300.0], "Z2": [50.0, 0.0], "Z9": [10.0, 10.0]}, index=[7.0, 8.0])
    ses = ev_sessions_from_arrivals(arrivals, {"Z1": "centre", "Z2": "centre"}, ev_share=0.1, kwh_per_vehicle=12.0,
                                    dwell_h=4.0, charger_kw=7.0)
    assert len(ses) == 3 and set(ses["zone"]) == {"Z1", "Z2"}
    row = ses[(ses["zone"] == "Z1") & (ses["arrival_h"] == 8.0)].iloc[0]
    assert row["vehicles"] == pytest.approx(30.0) and row["energy_mwh"] == pytest.approx(0.36)
    assert row["departure_h"] == 12.0 and row["p_max_mw"] == pytest.approx(0.21)


def test_bad_input_names_the_element():
    w = water()
    w.transfers = w.transfers.assign(bus=["works", "nowhere"])
    with pytest.raises(DispatchInputError, match="water transfer 'lift': bus 'nowhere'"):
        solve_day_ahead(grid(), w, None)
    e = ev()
    e.sessions = e.sessions.assign(departure_h=[17.0, 8.0, 24.0])
    with pytest.raises(DispatchInputError, match="EV session 'shop': departure_h 8.0 is not after"):
        solve_day_ahead(grid(), None, e)
    w = water()
    w.transfers = w.transfers.assign(to=["clear_water", "tank9"])
    with pytest.raises(DispatchInputError, match="'to' 'tank9' is not a storage"):
        solve_day_ahead(grid(), w, None)
