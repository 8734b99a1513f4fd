"""Rolling-horizon dispatch: solve a window, commit its first hours, carry the state, move on.

The state handed over between windows (the peers' users lost it at window hand-over) is the one at the
end of the committed hours: the storage's state of charge; the units' on/off status, how long they have
been on or off (minimum up/down times span windows) and their output (ramp limits span windows); and in
:func:`rolling_day_ahead` the water volumes in the reservoirs and the energy still owed to each charging
vehicle.  For a linear dispatch one model is built for the window length and re-solved in place (HiGHS
keeps its basis) with each window's demand, availability and costs; with unit commitment, ramping or
flexible loads each window is built with the state handed over.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from twin.energy import Grid

from .day_ahead import DayAheadSchedule, EVCharging, WaterWorks, solve_day_ahead
from .dispatch import (
    DispatchData,
    DispatchInputError,
    DispatchOptions,
    DispatchSolution,
    DispatchState,
    build_dispatch_model,
    solve_dispatch,
    update_dispatch,
)

__all__ = ["rolling_dispatch", "rolling_day_ahead", "handover_state"]

_TABLES = ("generation", "curtailment", "shed", "storage_charge", "storage_discharge", "state_of_charge", "flows",
           "nodal_price", "hourly_cost")


def _window_grid(grid: Grid, start: int, stop: int) -> Grid:
    g = grid.copy()
    snaps = grid.snapshots[start:stop]
    g.series = {}
    g.snapshots = pd.Index([], name="snapshot")
    g.set_snapshots(snaps)
    for name, df in grid.series.items():
        g.set_series(name, df.iloc[start:stop])
    return g


def handover_state(sol: DispatchSolution, d: DispatchData, keep: int, before: DispatchState | None = None
                   ) -> DispatchState:
    """The state after the first ``keep`` snapshots of a window's solution (``before``: the window's own
    initial state, to count hours on/off that started in earlier windows)."""
    last = keep - 1
    soc = None
    if len(d.sto_ids):
        soc = pd.Series(sol.state_of_charge.iloc[last].to_numpy() / np.where(d.sto_e > 0, d.sto_e, 1.0),
                        index=d.sto_ids).clip(0.0, 1.0)
    on = np.ones(len(d.gen_ids), bool)
    status = np.ones((keep, len(d.gen_ids)), bool)
    if sol.commitment is not None:
        pos = d.gen_ids.get_indexer(sol.commitment.columns)
        status[:, pos] = sol.commitment.iloc[:keep].to_numpy() > 0.5
        on = status[-1]
    hours = d.hours[:keep]
    up, down = np.zeros(len(d.gen_ids)), np.zeros(len(d.gen_ids))
    prev_on = d.on0
    prev_up = before.up_h.reindex(d.gen_ids).to_numpy(float) if before is not None and before.up_h is not None \
        else d.up0
    prev_down = before.down_h.reindex(d.gen_ids).to_numpy(float) if before is not None and before.down_h is not None \
        else d.down0
    for g in range(len(d.gen_ids)):
        same = status[:, g] == on[g]
        run = keep if same.all() else keep - 1 - int(np.flatnonzero(~same)[-1])
        span = float(hours[keep - run:].sum())
        if run == keep and bool(prev_on[g]) == bool(on[g]):  # the same status since before this window
            span += float(prev_up[g] if on[g] else prev_down[g])
        (up if on[g] else down)[g] = span
    ids = d.gen_ids
    return DispatchState(soc=soc, on=pd.Series(on, index=ids), up_h=pd.Series(up, index=ids),
                         down_h=pd.Series(down, index=ids), p_mw=sol.generation.iloc[last].copy())


def _checks(grid: Grid, window: int, commit: int) -> int:
    if not 0 < commit <= window:
        raise DispatchInputError(f"need 0 < commit <= window, got commit={commit}, window={window}")
    T = len(grid.snapshots)
    if T == 0:
        raise DispatchInputError("the grid has no snapshots")
    return T


def _stitch(parts: dict[str, list[pd.DataFrame]], sol: DispatchSolution, objective: float, windows: int
            ) -> DispatchSolution:
    return DispatchSolution(
        status=sol.status, objective=objective,
        **{k: pd.concat(v) for k, v in parts.items()},
        cost_breakdown={"committed_cost": objective}, timings={"windows": float(windows)},
    )


def _keep_rows(parts: dict[str, list[pd.DataFrame]], sol: DispatchSolution, snaps: pd.Index, keep: int) -> None:
    for k in parts:
        frame = getattr(sol, k)
        if frame is None:
            continue
        part = frame.iloc[:keep].copy()
        part.index = snaps
        parts[k].append(part)


def rolling_dispatch(grid: Grid, window: int, commit: int, options: DispatchOptions | None = None,
                     ) -> tuple[DispatchSolution, pd.DataFrame]:
    """Dispatch ``grid``'s snapshots in windows of ``window`` steps, committing the first ``commit`` of each.

    Each window starts from the state the previous window's committed hours left (module docstring; the
    first from the grid's ``soc_init`` and ``initially_on``); inside a window the storage may not end below
    its start (``end_soc_at_least_start``), so no window empties the stores for free.  Returns the stitched
    solution (objective = cost of the committed hours, start-ups included) and a table of the windows
    (start, iterations, objective, solve time, warm).
    """
    T = _checks(grid, window, commit)
    opts = replace(options or DispatchOptions(), cyclic_storage=False, end_soc_at_least_start=True)
    gens = grid.generator[grid.generator["in_service"]]
    stateful = (opts.unit_commitment and gens["committable"].any()) or \
        np.isfinite(gens[["ramp_up_mw_h", "ramp_down_mw_h"]].to_numpy(float)).any()
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in _TABLES + ("commitment",)}
    log = []
    model, state = None, None
    objective = 0.0
    for start in range(0, T, commit):
        stop = min(start + window, T)
        length = stop - start
        warm = model is not None and len(model.data.snapshots) == length and not stateful
        if not warm:  # first window, a shorter last one, or a state that shapes the model: build
            model = build_dispatch_model(_window_grid(grid, start, stop), opts, initial_state=state)
        else:
            idx = model.data.snapshots
            frames = {}
            for key, name in (("load", "load.p_mw"), ("p_max_pu", "generator.p_max_pu"),
                              ("marginal_cost", "generator.marginal_cost")):
                if name in grid.series:
                    df = grid.series[name].iloc[start:stop].copy()
                    df.index = idx
                    frames[key] = df
            update_dispatch(model, soc_init=state.soc if state is not None else None, **frames)
        sol = solve_dispatch(model)
        keep = min(commit, T - start)
        _keep_rows(parts, sol, grid.snapshots[start:start + keep], keep)
        objective += float(sol.hourly_cost.iloc[:keep].sum())
        state = handover_state(sol, model.data, keep, state)
        log.append({"start": grid.snapshots[start], "steps": length, "committed": keep, "warm": warm,
                    "objective": sol.objective, "iterations": sol.status.iterations,
                    "solve_s": sol.status.timings["solve_s"]})
    if not parts["commitment"]:
        del parts["commitment"]
    return _stitch(parts, sol, objective, len(log)), pd.DataFrame(log)


def _window_water(water: WaterWorks, volumes: pd.Series, snaps: pd.Index, start: int, stop: int) -> WaterWorks:
    st = water.storages.copy()
    if "v_end_m3" not in st:
        st["v_end_m3"] = st["v_init_m3"]
    st["v_init_m3"] = volumes.reindex(st.index).to_numpy()
    demand = water.demand_m3h.iloc[start:stop].copy()
    demand.index = snaps
    return replace(water, storages=st, demand_m3h=demand)


def _window_ev(ev: EVCharging, owed: pd.Series, t0_h: float, t1_h: float) -> EVCharging:
    """Sessions present in [t0_h, t1_h) with energy still owed, in the window's hours; a vehicle leaving
    after the window only has to receive in it what it could not receive later."""
    ses = ev.sessions
    live = (owed > 1e-9) & (ses["arrival_h"] < t1_h - 1e-9) & (ses["departure_h"] > t0_h + 1e-9)
    sub = ses[live].copy()
    sub["energy_mwh"] = owed[live]
    sub["arrival_h"] = np.maximum(sub["arrival_h"], t0_h) - t0_h
    later = np.clip(sub["departure_h"] - t1_h, 0.0, None)
    sub["departure_h"] = np.minimum(sub["departure_h"], t1_h) - t0_h
    sub["energy_min_mwh"] = np.clip(sub["energy_mwh"] - later * sub["p_max_mw"], 0.0, None)
    # a session that only covers part of the window's first snapshot starts at the next whole one
    sub = sub[sub["departure_h"] - np.ceil(sub["arrival_h"] - 1e-9) >= 1.0 - 1e-9] if len(sub) else sub
    return replace(ev, sessions=sub)


def rolling_day_ahead(grid: Grid, water: WaterWorks | None, ev: EVCharging | None, window: int, commit: int,
                      options: DispatchOptions | None = None) -> tuple[DayAheadSchedule, pd.DataFrame]:
    """The joint schedule of :func:`~solvers.day_ahead.solve_day_ahead` in rolling windows (hourly snapshots).

    Handed over at each window's end: the dispatch state (:func:`handover_state`), the water volumes in
    every storage (each window must restore its storages' end volumes, ``v_end_m3`` or the initial ones)
    and the energy each vehicle is still owed (a vehicle leaving after the window only has to receive in it
    what it could not receive later).  Returns the stitched schedule and the window log."""
    T = _checks(grid, window, commit)
    opts = replace(options or DispatchOptions(), cyclic_storage=False, end_soc_at_least_start=True)
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in _TABLES + ("commitment",)}
    extra: dict[str, list[pd.DataFrame]] = {k: [] for k in ("water_flow", "water_power", "water_volume",
                                                               "water_shortage", "ev_charging", "flexible_load",
                                                               "curtailment", "ev_session_charging")}
    volumes = water.storages["v_init_m3"].astype(float).copy() if water is not None else None
    owed = ev.sessions["energy_mwh"].astype(float).copy() if ev is not None else None
    hours_from_start = np.concatenate([[0.0], np.cumsum(_hours(grid.snapshots))])
    state, log, objective = None, [], 0.0
    for start in range(0, T, commit):
        stop = min(start + window, T)
        sub = _window_grid(grid, start, stop)
        w = _window_water(water, volumes, sub.snapshots, start, stop) if water is not None else None
        e = _window_ev(ev, owed, hours_from_start[start], hours_from_start[stop]) if ev is not None else None
        if e is not None and not len(e.sessions):
            e = None
        sched = solve_day_ahead(sub, w, e, opts, initial_state=state)
        keep = min(commit, T - start)
        snaps = grid.snapshots[start:start + keep]
        _keep_rows(parts, sched.dispatch, snaps, keep)
        for k in extra:
            frame = getattr(sched, k).iloc[:keep].copy()
            frame.index = snaps
            extra[k].append(frame)
        objective += float(sched.dispatch.hourly_cost.iloc[:keep].sum())
        dm_data = sched.model.data
        state = handover_state(sched.dispatch, dm_data, keep, state)
        if water is not None:
            volumes = sched.water_volume.iloc[keep - 1]
            short = sched.water_shortage.iloc[:keep].to_numpy() * _hours(grid.snapshots)[start:start + keep, None]
            objective += (water.shortage_cost or 0.0) * float(short.sum())
        if e is not None:
            delivered = sched.ev_delivered(keep)
            owed = owed.sub(delivered.reindex(owed.index).fillna(0.0)).clip(lower=0.0)
        log.append({"start": grid.snapshots[start], "steps": stop - start, "committed": keep,
                    "objective": sched.objective, "solve_s": sched.dispatch.status.timings["solve_s"]})
    if ev is not None:  # what is still owed to vehicles gone by the end of the horizon was not delivered
        gone = ev.sessions["departure_h"] <= hours_from_start[T] + 1e-9
        unserved = owed.where(gone, 0.0).rename("unserved_mwh")
        objective += (ev.unserved_cost or 0.0) * float(unserved.sum())
    else:
        unserved = pd.Series(dtype=float, name="unserved_mwh")
    if not parts["commitment"]:
        del parts["commitment"]
    dispatch = _stitch(parts, sched.dispatch, objective, len(log))
    tables = {k: pd.concat(v).fillna(0.0) for k, v in extra.items()}
    return DayAheadSchedule(dispatch=dispatch, ev_unserved=unserved, objective=objective,
                            cost_breakdown={"committed_cost": objective}, **tables), pd.DataFrame(log)


def _hours(snaps: pd.Index) -> np.ndarray:
    if isinstance(snaps, pd.DatetimeIndex) and len(snaps) > 1:
        step = np.diff(snaps).astype("timedelta64[ns]").astype(np.int64) / 3.6e12
        return np.append(step, step[-1])
    return np.ones(len(snaps))
