"""Pump scheduling on Net3, checked in closed loop with our hydraulic solver and, where installed, with EPANET."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from solvers import PumpScheduleError, PumpScheduleOptions, solve_pump_schedule, time_of_use_tariff
from solvers.pump_surrogate import find_companions, schedule_network
from twin.water import read_inp, simulate_hydraulics, write_inp

DATA = Path(__file__).resolve().parents[1] / "data" / "water"
# off-peak 22–7 h, mid 7–17 h, peak 17–22 h (per kWh)
TARIFF = time_of_use_tariff([(22, 7, 0.06), (7, 17, 0.10), (17, 22, 0.18)])


@pytest.fixture(scope="module")
def net3():
    return read_inp(DATA / "Net3.inp")


@pytest.fixture(scope="module")
def onoff(net3):
    return solve_pump_schedule(net3, PumpScheduleOptions(tariff=TARIFF))


def _levels(res, wn):
    tanks = list(wn.tank.index)
    return res.node_head[tanks] - wn.tank.loc[tanks, "elevation_m"].to_numpy()


def test_tariff_bands_wrap_midnight_and_must_cover_the_day():
    assert TARIFF.loc[0] == 0.06 and TARIFF.loc[7 * 3600] == 0.10 and TARIFF.loc[21 * 3600] == 0.18
    assert TARIFF.loc[22 * 3600] == 0.06 and len(TARIFF) == 24
    with pytest.raises(PumpScheduleError, match="no tariff band covers clock hour 7"):
        time_of_use_tariff([(22, 7, 0.06), (8, 22, 0.1)])
    with pytest.raises(PumpScheduleError, match="overlaps"):
        time_of_use_tariff([(0, 12, 0.06), (11, 24, 0.1)])
    shifted = time_of_use_tariff([(22, 7, 0.06), (7, 17, 0.10), (17, 22, 0.18)], start_clock_h=6)
    assert shifted.iloc[0] == 0.06 and shifted.iloc[1] == 0.10


def test_the_bypass_of_pump_335_is_found_as_its_companion(net3):
    assert find_companions(net3, ["10", "335"]) == {"330": "335"}


def test_optimised_schedule_is_cheaper_than_the_files_controls_at_the_same_tariff(onoff):
    assert onoff.baseline_cost > 0
    assert onoff.cost < 0.9 * onoff.baseline_cost
    assert set(np.unique(onoff.status.to_numpy())) <= {0.0, 1.0}
    assert onoff.status.shape == (24, 2)


def test_simulated_schedule_keeps_every_tank_within_bounds_and_refills_it(net3, onoff):
    # simulate the schedule's network again, independently of the scheduler's own check
    res = simulate_hydraulics(onoff.network, duration_s=24 * 3600)
    lev = _levels(res, net3)
    assert (lev.min() > net3.tank["min_level_m"] + 1e-3).all()
    assert (lev.max() < net3.tank["max_level_m"] - 1e-3).all()
    end = lev.loc[24 * 3600]
    assert (end >= net3.tank["init_level_m"] - 1e-6).all()
    assert res.pump_energy.loc[["10", "335"], "cost"].sum() == pytest.approx(onoff.cost, rel=1e-12)


def test_the_gap_between_optimiser_and_simulation_is_reported_and_small(onoff):
    gap = onoff.tank_level_planned - onoff.tank_level_simulated
    assert np.allclose(gap.to_numpy(), onoff.level_gap.to_numpy())
    assert gap.shape == (25, 3)
    assert (gap.iloc[0].abs() < 1e-9).all()  # both start from the initial levels
    assert onoff.max_level_gap_m < 0.5
    assert onoff.planned_cost == pytest.approx(onoff.cost, rel=0.05)
    assert onoff.iterations["within_bounds"].any()
    s = onoff.summary()
    assert s["within_bounds"] and s["saving_pct"] > 10


def test_the_schedule_network_gives_the_same_levels_in_epanet(net3, onoff, tmp_path, epanet_hourly):
    path = tmp_path / "scheduled.inp"
    write_inp(onoff.network, path)
    levels = epanet_hourly(path, list(net3.tank.index), "LEVEL")
    ours = onoff.tank_level_simulated
    theirs = levels.loc[ours.index] * 0.3048  # ft → m (Net3 is a GPM file)
    assert np.abs(ours.to_numpy() - theirs.to_numpy()).max() < 1e-3


def test_discrete_speeds_only_take_allowed_values(net3):
    r = solve_pump_schedule(net3, PumpScheduleOptions(tariff=TARIFF, speeds={"10": [0.8, 1.0], "335": [1.0]}))
    assert set(np.unique(r.status["10"])) <= {0.0, 0.8, 1.0}
    assert set(np.unique(r.status["335"])) <= {0.0, 1.0}
    assert r.within_bounds and r.cost < r.baseline_cost
    # a speed set through a SETTING control reaches the simulation
    sim_speed = r.hydraulics.link_setting["10"].reindex(r.status.index, method="ffill")
    running = r.status["10"] > 0
    assert np.allclose(sim_speed[running], r.status["10"][running])


def test_max_starts_is_honoured(net3):
    r = solve_pump_schedule(net3, PumpScheduleOptions(tariff=TARIFF, max_starts=1))
    for p in r.status:
        on = (r.status[p] > 0).astype(int).to_numpy()
        before = int(net3.pump.loc[p, "initial_status"] == "OPEN")
        starts = int(np.sum(np.diff(np.concatenate([[before], on])) > 0))
        assert starts <= 1


def test_schedule_network_writes_time_controls_and_keeps_other_links(net3):
    status = pd.DataFrame({"10": [0.0, 1.0, 1.0, 0.9], "335": [1.0, 1.0, 0.0, 0.0]},
                          index=pd.Index([0, 3600, 7200, 10800], name="time_s"))
    net, notes = schedule_network(net3, status, {"330": "335"})
    assert all(c.link not in {"10", "335", "330"} or c.condition == "TIME" for c in net.controls)
    got = {(c.link, c.action, c.time_s) for c in net.controls}
    assert got == {("10", "OPEN", 3600), ("10", "SETTING", 10800), ("335", "CLOSED", 7200), ("330", "OPEN", 7200)}
    assert net.pump.loc["10", "initial_status"] == "CLOSED" and net.pipe.loc["330", "status"] == "CLOSED"
    assert notes and net3.controls[0].condition == "TIME"  # the original is untouched


def test_bad_input_names_the_element(net3):
    with pytest.raises(PumpScheduleError, match="'P9' is not a pump"):
        solve_pump_schedule(net3, PumpScheduleOptions(tariff=TARIFF, pumps=["P9"]))
    with pytest.raises(PumpScheduleError, match="12 prices for 24 steps"):
        solve_pump_schedule(net3, PumpScheduleOptions(tariff=TARIFF.iloc[:12]))
    with pytest.raises(PumpScheduleError, match="speeds of pump '10'"):
        solve_pump_schedule(net3, PumpScheduleOptions(tariff=TARIFF, speeds={"10": [0.0, 1.0]}))
    with pytest.raises(PumpScheduleError, match="tariff: no price column for pump '335'"):
        solve_pump_schedule(net3, PumpScheduleOptions(tariff=pd.DataFrame({"10": TARIFF.to_numpy()})))


def test_an_unreachable_end_level_is_diagnosed_with_the_tank(net3):
    wn = net3.copy()
    # tank 1 must end 4 m above where it starts while only the lake pump may run (the river pump is held off)
    with pytest.raises(PumpScheduleError, match=r"tank '1' cannot be kept within its end level"):
        solve_pump_schedule(wn, PumpScheduleOptions(tariff=TARIFF, pumps=["10"], iterations=1,
                                                    end_level={"1": float(wn.tank.loc["1", "init_level_m"]) + 4.0}))


def test_the_berkane_network_schedule_beats_its_level_controls_and_stays_within_bounds():
    """The Berkane summer day at the dataset's time-of-use tariff: identical parallel pumps are scheduled as
    units, the Saïdia tank (fed by gravity through its own valve control) is left to its control."""
    from twin import load_berkane

    twin = load_berkane("summer")
    tariff = twin.series["price_mad_kwh"].to_numpy()
    r = solve_pump_schedule(twin.water, PumpScheduleOptions(tariff=tariff, iterations=2))
    assert r.cost < r.baseline_cost
    assert r.steered == ["T_S1", "T_S2", "T_E"]
    lev = _levels(simulate_hydraulics(r.network, duration_s=24 * 3600), twin.water)
    tank = twin.water.tank
    assert (lev.min() > tank["min_level_m"]).all() and (lev.max() < tank["max_level_m"]).all()
    assert (lev.loc[24 * 3600, r.steered] >= tank.loc[r.steered, "init_level_m"] - 1e-3).all()
    assert r.max_level_gap_m < 0.25
    # identical pumps run as a unit: PS_WTP_2 never runs without PS_WTP_1
    assert ((r.status["PS_WTP_2"] > 0) <= (r.status["PS_WTP_1"] > 0)).all()
