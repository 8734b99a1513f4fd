"""Rolling-horizon dispatch: solve a window, commit its first hours, carry the state, move on.

One model is built for the window length and re-solved in place (HiGHS keeps its basis) with each
window's demand, availability and costs; the state handed over between windows is the storage's
state of charge at the end of the committed hours (the peers' users lost it at window hand-over).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from twin.energy import Grid

from .dispatch import (
    DispatchInputError,
    DispatchOptions,
    DispatchSolution,
    build_dispatch_model,
    solve_dispatch,
    update_dispatch,
)

__all__ = ["rolling_dispatch"]

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


def rolling_dispatch(grid: Grid, window: int, commit: int, options: DispatchOptions | None = None,
                     ) -> tuple[DispatchSolution, pd.DataFrame]:
    """Dispatch ``grid``'s snapshots in windows of ``window`` steps, committing the first ``commit`` of each.

    Storage starts each window at the state of charge the previous window's committed hours left
    (the first at ``soc_init``); inside a window the end may not fall below its start
    (``end_soc_at_least_start``), so no window empties the stores for free.  Returns the stitched
    solution (objective = cost of the committed hours) and a table of the windows (start, iterations,
    objective, solve time, warm).
    """
    if not 0 < commit <= window:
        raise DispatchInputError(f"need 0 < commit <= window, got commit={commit}, window={window}")
    T = len(grid.snapshots)
    if T == 0:
        raise DispatchInputError("the grid has no snapshots")
    opts = replace(options or DispatchOptions(), cyclic_storage=False, end_soc_at_least_start=True)
    soc = grid.storage.loc[grid.storage["in_service"], "soc_init"].astype(float).copy()
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in _TABLES}
    log = []
    model = None
    objective = 0.0
    for start in range(0, T, commit):
        stop = min(start + window, T)
        length = stop - start
        warm = model is not None and len(model.data.snapshots) == length
        if not warm:  # first window, or a shorter last one: build
            sub = _window_grid(grid, start, stop)
            sto = sub.storage.copy()
            sto.loc[soc.index, "soc_init"] = soc.to_numpy()
            sub.storage = sto
            model = build_dispatch_model(sub, opts)
        else:
            idx = model.data.snapshots
            frames = {}
            for key, name in (("load", "load.p_mw"), ("p_max_pu", "generator.p_max_pu"),
                              ("marginal_cost", "generator.marginal_cost")):
                if name in grid.series:
                    df = grid.series[name].iloc[start:stop].copy()
                    df.index = idx
                    frames[key] = df
            update_dispatch(model, soc_init=soc, **frames)
        sol = solve_dispatch(model)
        keep = min(commit, T - start)
        for k in _TABLES:
            part = getattr(sol, k).iloc[:keep].copy()
            part.index = grid.snapshots[start:start + keep]
            parts[k].append(part)
        d = model.data
        objective += float(sol.hourly_cost.iloc[:keep].sum())
        if len(d.sto_ids):
            soc = pd.Series(sol.state_of_charge.iloc[keep - 1].to_numpy() / np.where(d.sto_e > 0, d.sto_e, 1.0),
                            index=d.sto_ids)
        log.append({"start": grid.snapshots[start], "steps": length, "committed": keep, "warm": warm,
                    "objective": sol.objective, "iterations": sol.status.iterations,
                    "solve_s": sol.status.timings["solve_s"]})
    stitched = DispatchSolution(
        status=sol.status, objective=objective,
        **{k: pd.concat(v) for k, v in parts.items()},
        cost_breakdown={"committed_cost": objective}, timings={"windows": float(len(log))},
    )
    return stitched, pd.DataFrame(log)
