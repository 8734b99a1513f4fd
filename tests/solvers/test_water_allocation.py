"""Seasonal water allocation: hand-computable cases, priorities, robustness across scenarios, diagnosis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from solvers.water_allocation import AllocationError, AllocationProblem, solve_allocation

USERS = pd.DataFrame({"weight": [100.0, 1.0], "capacity_hm3": [np.inf, np.inf]}, index=["drinking", "irrigation"])


def one_period(inflows: list[float], drinking=5.0, irrigation=10.0, **kw) -> AllocationProblem:
    periods = pd.Index(["2027-07"], name="period")
    return AllocationProblem(
        inflow=pd.DataFrame([inflows], index=periods, columns=[f"s{i}" for i in range(len(inflows))]),
        demand=pd.DataFrame({"drinking": [drinking], "irrigation": [irrigation]}, index=periods),
        users=USERS, storage_init=10.0, storage_min=2.0, storage_max=50.0,
        env_flow_min=pd.Series([1.0], index=periods), **kw)


def test_by_hand_drinking_first_then_irrigation():
    # available: 10 + 5 - 2 (minimum storage) - 1 (environmental flow) = 12
    sol = solve_allocation(one_period([5.0]))
    assert sol.delivery.loc["2027-07", "drinking"] == pytest.approx(5.0)
    assert sol.delivery.loc["2027-07", "irrigation"] == pytest.approx(7.0)
    assert sol.storage.iloc[0, 0] == pytest.approx(2.0)
    assert sol.weighted_shortage == pytest.approx(3.0)


def test_deliveries_hold_in_the_driest_scenario():
    sol = solve_allocation(one_period([5.0, 1.0]))  # the dry scenario leaves 8
    assert sol.delivery.loc["2027-07", "irrigation"] == pytest.approx(3.0)
    assert (sol.storage.to_numpy() >= 2.0 - 1e-9).all()
    assert sol.spill["s0"].iloc[0] + sol.storage["s0"].iloc[0] == pytest.approx(6.0)  # the wet surplus is kept/spilt


def test_treatment_capacity_and_season_balance():
    periods = pd.Index([f"2027-{m:02d}" for m in range(6, 10)], name="period")
    users = USERS.copy()
    users.loc["drinking", "capacity_hm3"] = 3.0
    pb = AllocationProblem(
        inflow=pd.DataFrame({"wet": [8.0, 4.0, 2.0, 6.0], "dry": [3.0, 1.0, 0.5, 2.0]}, index=periods),
        demand=pd.DataFrame({"drinking": 4.0, "irrigation": 6.0}, index=periods), users=users,
        storage_init=20.0, storage_min=5.0, storage_max=60.0, storage_end_min=5.0,
        evaporation=pd.Series(0.02, index=periods), env_flow_min=pd.Series(0.5, index=periods))
    sol = solve_allocation(pb)
    assert (sol.delivery["drinking"] <= 3.0 + 1e-9).all()
    assert (sol.delivery["drinking"] >= sol.delivery["drinking"].max() - 1e-6).all()  # capacity binds every month
    for s in pb.inflow.columns:  # the storage balance holds in each scenario
        prev = pd.Series([20.0] + list(sol.storage[s].iloc[:-1]), index=periods)
        expect = 0.98 * prev + pb.inflow[s] - sol.delivery.sum(axis=1) - sol.release_env[s] - sol.spill[s]
        assert np.allclose(sol.storage[s], expect, atol=1e-7)
        assert (sol.release_env[s] >= 0.5 - 1e-9).all()


def test_an_impossible_season_is_diagnosed():
    pb = one_period([0.0])
    pb.storage_init = 2.5  # 2.5 + 0 - 1 (environmental flow) < 2 (minimum storage)
    with pytest.raises(AllocationError, match="scenario 's0'.*below its minimum"):
        solve_allocation(pb)
    bad = one_period([5.0])
    bad.demand.loc["2027-07", "irrigation"] = -1.0
    with pytest.raises(AllocationError, match="'irrigation'.*-1"):
        solve_allocation(bad)
