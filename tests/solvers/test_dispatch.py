"""The DC dispatch: formulations agree, the dispatch is feasible under our DC power flow, storage and
prices behave, re-solves are in place, bad input is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from solvers import DispatchInputError, DispatchOptions, build_dispatch_model, solve_dispatch, update_dispatch
from twin.energy import power_flow, read_matpower

MATPOWER = Path(__file__).parents[1] / "data" / "matpower"


def small_case(hours: int = 12):
    """case118 with a daily load curve, line limits, differentiated costs, PV and two batteries."""
    g = read_matpower(MATPOWER / "case118.m")
    snaps = pd.date_range("2026-06-21", periods=hours, freq="h")
    f = 0.75 + 0.25 * np.sin(np.linspace(0, np.pi, hours))
    g.set_series("load.p_mw", pd.DataFrame(np.outer(f, g.load["p_mw"]), index=snaps, columns=g.load.index))
    line = g.line.copy()
    line["rate_a_mva"] = 175.0  # case118 has no limits (rate_a 0): give some so that a few bind
    g.line = line
    g.add("generator", index=["pv1", "pv2"], bus=["59", "80"], p_max_mw=[150.0, 200.0], kind="pv")
    costs = {g_id: float(10 + (7 * i) % 37) for i, g_id in enumerate(g.generator.index)}
    costs["pv1"] = costs["pv2"] = 0.0
    g.set_series("generator.marginal_cost", pd.DataFrame(costs, index=snaps))
    sun = np.clip(np.sin(np.linspace(-0.5, np.pi + 0.5, hours)), 0, None)
    g.set_series("generator.p_max_pu", pd.DataFrame({"pv1": sun, "pv2": sun}, index=snaps))
    g.add("storage", index=["bat1", "bat2"], bus=["65", "10"], p_max_mw=80.0, e_max_mwh=320.0, standing_loss=0.001,
          eta_charge=0.99, eta_discharge=0.99)
    return g


@pytest.fixture(scope="module")
def case():
    return small_case()


def test_ptdf_and_angle_formulations_agree(case):
    a = solve_dispatch(case, DispatchOptions(network="ptdf"))
    b = solve_dispatch(case, DispatchOptions(network="angle"))
    assert a.status.optimal and b.status.optimal
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
    assert np.abs(a.nodal_price.to_numpy() - b.nodal_price.to_numpy()).max() < 1e-6 * a.nodal_price.abs().max().max()
    rate = pd.concat([case.line["rate_a_mva"], case.transformer["rate_a_mva"]]).reindex(a.flows.columns)
    limit = rate.where(rate > 0, np.inf)
    assert (a.flows.abs() >= 0.999 * limit).to_numpy().any()  # the case exercises line limits
    assert a.nodal_price.to_numpy().std() > 0  # and congestion separates the prices


def test_dispatch_is_feasible_under_our_dc_power_flow(case):
    sol = solve_dispatch(case, DispatchOptions(network="ptdf"))
    t = 6
    g = case.copy()
    gen = g.generator.copy()
    gen.loc[sol.generation.columns, "p_mw"] = sol.generation.iloc[t].to_numpy()
    g.generator = gen
    load = g.load.copy()
    load["p_mw"] = case.series["load.p_mw"].iloc[t].to_numpy() - sol.shed.iloc[t].to_numpy()
    g.load = load
    sto = g.storage.copy()
    sto["p_mw"] = (sol.storage_discharge - sol.storage_charge).iloc[t].to_numpy()
    g.storage = sto
    pf = power_flow(g, "dc")
    flows = pf.branch["p0_mw"].reindex(sol.flows.columns).to_numpy()
    assert np.abs(flows - sol.flows.iloc[t].to_numpy()).max() < 1e-6
    rate = pd.concat([case.line["rate_a_mva"], case.transformer["rate_a_mva"]]).reindex(sol.flows.columns).to_numpy()
    assert (np.abs(flows)[rate > 0] <= rate[rate > 0] + 1e-6).all()


def test_storage_follows_its_energy_balance_and_cycles(case):
    sol = solve_dispatch(case)
    soc, ch, dis = sol.state_of_charge, sol.storage_charge, sol.storage_discharge
    prev = soc.shift(1)
    prev.iloc[0] = soc.iloc[-1]  # cyclic
    expect = (1 - 0.001) * prev + 0.99 * ch - dis / 0.99
    assert np.abs((soc - expect).to_numpy()).max() < 1e-6
    assert ch.to_numpy().sum() > 1 and dis.to_numpy().sum() > 1


def test_uncongested_prices_equal_a_marginal_generator_cost():
    g = small_case(6)
    for table in ("line", "transformer"):
        df = g[table].copy()
        df["rate_a_mva"] = 0.0
        g.set_table(table, df)
    sol = solve_dispatch(g, DispatchOptions(network="ptdf"))
    price = sol.nodal_price.iloc[:, 0]
    assert (sol.nodal_price.sub(price, axis=0).abs().to_numpy() < 1e-9).all()
    cost = g.series["generator.marginal_cost"]
    avail = g.series["generator.p_max_pu"].reindex(columns=sol.generation.columns).fillna(1.0)
    pmax = avail * g.generator["p_max_mw"].reindex(sol.generation.columns).to_numpy()
    for t in range(6):  # the price is the cost of a unit strictly between its bounds
        gen = sol.generation.iloc[t]
        inner = (gen > 1e-6) & (gen < pmax.iloc[t] - 1e-6)
        assert np.isclose(cost.iloc[t][gen.index[inner]].to_numpy(), price.iloc[t]).any()


def test_in_place_update_matches_a_rebuild(case):
    dm = build_dispatch_model(case)
    solve_dispatch(dm)
    new_load = case.series["load.p_mw"] * 1.05
    update_dispatch(dm, load=new_load)
    warm = solve_dispatch(dm)
    g2 = case.copy()
    g2.set_series("load.p_mw", new_load)
    cold = solve_dispatch(g2)
    assert warm.objective == pytest.approx(cold.objective, rel=1e-9)
    update_dispatch(dm, marginal_cost=case.series["generator.marginal_cost"] * 0.5)
    assert solve_dispatch(dm).objective == pytest.approx(0.5 * cold.objective, rel=1e-6)


def test_bad_inputs_name_the_element_and_field():
    g = small_case(3)
    wrong = g.series["load.p_mw"].copy()
    wrong.index = wrong.index + pd.Timedelta(hours=1)
    with pytest.raises(ValueError, match="snapshots"):
        g.set_series("load.p_mw", wrong)
    bad = g.copy()
    sto = bad.storage.copy()
    sto.loc["bat1", "p_max_mw"] = -5.0
    bad.storage = sto
    with pytest.raises(DispatchInputError, match="bat1.*p_max_mw"):
        build_dispatch_model(bad)
    nocost = g.copy()
    nocost.add("generator", index="orphan", bus="1", p_max_mw=10.0)
    with pytest.raises(DispatchInputError, match="'orphan' has no cost"):
        build_dispatch_model(nocost)
    short = g.copy()
    short.set_series("load.p_mw", g.series["load.p_mw"] * 10)
    with pytest.raises(DispatchInputError, match="infeasible|exceeds"):
        solve_dispatch(short, DispatchOptions(voll=None))


def test_rolling_horizon_one_window_equals_the_full_solve(case):
    from solvers import rolling_dispatch

    full = solve_dispatch(case, DispatchOptions(cyclic_storage=False, end_soc_at_least_start=True))
    rolled, log = rolling_dispatch(case, window=12, commit=12)
    assert len(log) == 1
    assert rolled.objective == pytest.approx(full.objective, rel=1e-9)


def test_rolling_horizon_carries_the_state_of_charge_across_windows():
    """Windows of 8 h committing 4 h over a day: the stitched state of charge obeys the storage balance at
    every hand-over, i.e. each window starts where the previous committed hours left the stores."""
    from solvers import rolling_dispatch

    g = small_case(24)
    rolled, log = rolling_dispatch(g, window=8, commit=4)
    assert list(log["committed"]) == [4] * 6
    assert log["warm"].sum() >= 3  # same-length windows re-solve the one model in place
    soc, ch, dis = rolled.state_of_charge, rolled.storage_charge, rolled.storage_discharge
    e = g.storage["e_max_mwh"].to_numpy()
    prev = soc.shift(1)
    prev.iloc[0] = g.storage["soc_init"].to_numpy() * e
    expect = (1 - 0.001) * prev + 0.99 * ch - dis / 0.99
    assert np.abs((soc - expect).to_numpy()).max() < 1e-6
    assert (ch.to_numpy().sum() > 1) and (dis.to_numpy().sum() > 1)
    assert rolled.objective == pytest.approx(float(rolled.hourly_cost.sum()))
    # the stitched run ends wherever its last window leaves the stores (it may end emptier than a full-day
    # solve, which must return to soc_init): the costs are close, not ordered
    full = solve_dispatch(g, DispatchOptions(cyclic_storage=False, end_soc_at_least_start=True))
    assert rolled.objective == pytest.approx(full.objective, rel=0.01)


def test_an_infeasible_dispatch_says_where_load_cannot_be_served():
    g = small_case(4)
    fed = set(g.generator["bus"]) | set(g.storage["bus"])
    loads = g.load[~g.load["bus"].isin(fed)]
    bus = loads.loc[loads["p_mw"].idxmax(), "bus"]  # the largest load at a bus without generation
    for table in ("line", "transformer"):
        df = g[table].copy()
        df.loc[(df["bus0"] == bus) | (df["bus1"] == bus), "rate_a_mva"] = 1.0  # it cannot be fed
        g.set_table(table, df)
    with pytest.raises(DispatchInputError, match=rf"shedding needed at bus\(es\) '{bus}'.*branch limits binding"):
        solve_dispatch(g, DispatchOptions(voll=None))


def test_storage_inflow_series_enters_the_energy_balance():
    g = small_case(6)
    inflow = pd.DataFrame({"bat1": 10.0, "bat2": 0.0}, index=g.snapshots)
    g.set_series("storage.inflow_mw", inflow)
    sol = solve_dispatch(g, DispatchOptions(cyclic_storage=False))
    soc, ch, dis = sol.state_of_charge["bat1"], sol.storage_charge["bat1"], sol.storage_discharge["bat1"]
    prev = soc.shift(1)
    prev.iloc[0] = g.storage.at["bat1", "soc_init"] * g.storage.at["bat1", "e_max_mwh"]
    expect = (1 - 0.001) * prev + 0.99 * ch - dis / 0.99 + 10.0
    assert np.abs((soc - expect).to_numpy()).max() < 1e-6


def test_a_model_released_after_the_hand_over_gives_the_same_results_and_updates(case):
    kept = build_dispatch_model(case, DispatchOptions(network="ptdf"))
    freed = build_dispatch_model(case, DispatchOptions(network="ptdf", keep_model=False))
    a, b = solve_dispatch(kept), solve_dispatch(freed)
    assert freed.model is None
    assert a.objective == pytest.approx(b.objective, rel=1e-12)
    assert np.allclose(a.nodal_price.to_numpy(), b.nodal_price.to_numpy())
    for dm in (kept, freed):
        update_dispatch(dm, load=case.series["load.p_mw"] * 1.02)
    assert solve_dispatch(kept).objective == pytest.approx(solve_dispatch(freed).objective, rel=1e-12)


@pytest.mark.parametrize("network", ["angle", "ptdf"])
def test_in_place_inflow_and_branch_limit_updates_match_a_rebuild(case, network):
    opts = DispatchOptions(network=network, cyclic_storage=False)
    dm = build_dispatch_model(case, opts)
    solve_dispatch(dm)
    inflow = pd.DataFrame({"bat1": np.linspace(0.0, 20.0, len(case.snapshots)), "bat2": 5.0}, index=case.snapshots)
    rate = pd.Series({case.line.index[0]: 60.0, case.line.index[5]: 40.0})
    update_dispatch(dm, inflow=inflow, branch_limit=rate, soc_init=pd.Series({"bat1": 0.3}))
    warm = solve_dispatch(dm)
    g2 = case.copy()
    g2.set_series("storage.inflow_mw", inflow)
    line = g2.line.copy()
    line.loc[rate.index, "rate_a_mva"] = rate.to_numpy()
    g2.line = line
    sto = g2.storage.copy()
    sto.loc["bat1", "soc_init"] = 0.3
    g2.storage = sto
    cold = solve_dispatch(g2, opts)
    assert warm.objective == pytest.approx(cold.objective, rel=1e-9)
    assert (warm.flows[rate.index].abs() <= rate + 1e-6).all().all()
    with pytest.raises(DispatchInputError, match="'nowhere' is not a branch"):
        update_dispatch(dm, branch_limit=pd.Series({"nowhere": 1.0}))
