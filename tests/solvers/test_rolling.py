"""Rolling horizons carry the state across windows: unit status and minimum up times, ramping from the last
output, reservoir volumes and the energy still owed to charging vehicles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from joint_case import WATER_DEMAND, ev, grid, water

from solvers import DispatchOptions, rolling_day_ahead, rolling_dispatch, solve_day_ahead, solve_dispatch
from twin.energy import Grid


def uc_grid(hours: int = 12) -> Grid:
    """A cheap base unit, a committable mid unit (4 h minimum up time, start-up cost) and a peak unit; load
    with a short evening bump that only the mid unit can serve cheaply."""
    g = Grid(name="uc-rolling")
    g.add("bus", index="1", type="ref")
    g.add("load", index="L", bus="1", p_mw=0.0)
    g.add("generator", index=["base", "mid", "peak"], bus="1", p_max_mw=[100.0, 80.0, 200.0],
          p_min_mw=[0.0, 30.0, 0.0], committable=[False, True, False], min_up_h=[0.0, 4.0, 0.0],
          ramp_up_mw_h=[np.inf, np.inf, 60.0], ramp_down_mw_h=[np.inf, np.inf, 60.0])
    g.add("generator_cost", pd.DataFrame({"model": 2, "startup": [0.0, 100.0, 0.0],
                                          "coefficients": [(10.0, 0.0), (20.0, 0.0), (90.0, 0.0)]},
                                         index=["base", "mid", "peak"]))
    load = np.full(hours, 90.0)
    load[5] = 160.0  # the mid unit starts in the last committed hour of the first window …
    load[6:] = 95.0  # … and, had its history been lost, would stop again at once
    snaps = pd.date_range("2026-01-01", periods=hours, freq="h")
    g.set_series("load.p_mw", pd.DataFrame({"L": load}, index=snaps))
    return g


def test_minimum_up_time_spans_the_window_hand_over():
    g = uc_grid()
    opts = DispatchOptions(unit_commitment=True, mip_gap=0.0)
    rolled, log = rolling_dispatch(g, window=6, commit=6, options=opts)
    on = rolled.commitment["mid"].to_numpy()
    assert on[5] == 1  # started in hour 5, the last committed hour of the first window
    assert on[5:9].sum() == 4  # and kept on through hours 6–8 in the second window
    assert len(log) == 2
    # with one window the rolling run is the full MILP
    full = solve_dispatch(g, DispatchOptions(unit_commitment=True, mip_gap=0.0, cyclic_storage=False,
                                             end_soc_at_least_start=True))
    one, _ = rolling_dispatch(g, window=12, commit=12, options=opts)
    assert one.objective == pytest.approx(full.objective, rel=1e-9)
    assert rolled.objective >= full.objective - 1e-6  # losing foresight can only cost


def test_ramping_spans_the_window_hand_over():
    g = uc_grid()
    load = g.series["load.p_mw"].copy()
    load["L"] = [90.0] * 6 + [300.0] * 6  # a jump at the hand-over: the peak unit must ramp 60 MW/h
    g.set_series("load.p_mw", load)
    rolled, _ = rolling_dispatch(g, window=6, commit=6, options=DispatchOptions(voll=1000.0))
    peak = rolled.generation["peak"].to_numpy()
    assert np.all(np.abs(np.diff(peak)) <= 60.0 + 1e-6)
    assert peak[6] <= peak[5] + 60.0 + 1e-6 and rolled.shed.to_numpy().sum() > 0


def test_rolling_day_ahead_carries_volumes_and_owed_charging():
    g = grid()
    sched, log = rolling_day_ahead(g, water(), ev(), window=12, commit=6)
    assert list(log["committed"]) == [6, 6, 6, 6]
    f, v = sched.water_flow, sched.water_volume
    prev = np.r_[10000.0, v["service"].to_numpy()[:-1]]  # balance holds at every hour, hand-overs included
    assert np.allclose(v["service"] - prev, f["lift"] - WATER_DEMAND + sched.water_shortage["service"], atol=1e-6)
    prev = np.r_[3000.0, v["clear_water"].to_numpy()[:-1]]
    assert np.allclose(v["clear_water"] - prev, f["plant"] - f["lift"], atol=1e-6)
    delivered = sched.ev_session_charging.sum()
    owed = ev().sessions["energy_mwh"]
    assert np.allclose(delivered.reindex(owed.index).fillna(0) + sched.ev_unserved.reindex(owed.index), owed, atol=1e-6)
    assert sched.ev_unserved.sum() < 1e-6  # each vehicle got its energy although its stay spans windows
    assert (sched.ev_charging["centre"] <= 1.5 + 1e-9).all()
    full = solve_day_ahead(g, water(), ev(), DispatchOptions(cyclic_storage=False, end_soc_at_least_start=True))
    assert sched.objective >= full.objective - 1e-6
    assert sched.objective == pytest.approx(full.objective, rel=0.05)


def test_one_window_rolling_day_ahead_is_the_full_schedule():
    g = grid()
    one, _ = rolling_day_ahead(g, water(), ev(), window=24, commit=24)
    full = solve_day_ahead(g, water(), ev(), DispatchOptions(cyclic_storage=False, end_soc_at_least_start=True))
    assert one.objective == pytest.approx(full.objective, rel=1e-9)
