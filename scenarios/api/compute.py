"""The computations behind the processes, run by a job worker (a worker process of the service, or a Dask
worker).  Each takes the inputs already checked by :mod:`scenarios.api.processes` and returns a JSON-ready dict
of outputs.  Scenarios go through :func:`scenarios.run_scenario` and batches through
:func:`scenarios.batch.run_batch`, the project's one path for each."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .jsonable import jsonable, records

__all__ = ["JobContext", "execute", "COMPUTATIONS", "input_error_classes"]

Progress = Callable[[float, str], None]


@dataclass
class JobContext:
    """Where a job writes (``data_dir``), the Dask scheduler batches use (None: a local cluster), the job id,
    and ``progress(percent, message)``."""

    data_dir: Path
    job_id: str
    scheduler: str | None = None
    batch_workers: int | None = None
    progress: Progress = field(default=lambda _p, _m: None)


@lru_cache(maxsize=1)
def reuse_cache():
    """This worker process's :class:`~scenarios.reuse.ReuseCache`: base twins, pump schedules, water works and
    day-ahead models shared by its jobs (results equal those computed afresh)."""
    from scenarios.reuse import ReuseCache

    return ReuseCache()


def twin_of(season: str):
    """The Berkane twin of a season, loaded once per process (computations do not modify it)."""
    return reuse_cache().base_twin(season)


def input_error_classes() -> tuple[type[BaseException], ...]:
    """The project's error classes that mean "these inputs cannot be computed" (answered as 400)."""
    from scenarios import ScenarioError
    from twin.energy import MatpowerFormatError, SlackError
    from twin.transport.assignment import AssignmentError
    from twin.water.compile import NetworkError

    return ScenarioError, MatpowerFormatError, SlackError, AssignmentError, NetworkError


def run_scenario_job(inputs: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """``run_scenario`` of the scenario (already validated) into ``data_dir/runs``."""
    from scenarios import Scenario, run_scenario

    sc = Scenario.model_validate(inputs["scenario"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # solver and simulator warnings land in the run's messages
        res = run_scenario(sc, ctx.data_dir / "runs", hours=inputs.get("hours"), report=False,
                           progress=lambda step, frac: ctx.progress(frac * 100.0, step), cache=reuse_cache())
    return {"kpis": jsonable(res.kpis), "hash": res.hash, "run": res.path.name, "messages": list(res.messages),
            "timings_s": jsonable(res.timings), "reused": bool(res.reused)}


def _grid_of(inputs: dict[str, Any]):
    if inputs.get("case_text"):
        from twin.energy import read_matpower

        with tempfile.TemporaryDirectory(prefix="twin-api-case-") as tmp:
            path = Path(tmp) / "case.m"
            path.write_text(inputs["case_text"], encoding="utf-8")
            return read_matpower(path)
    return twin_of(inputs["case"].split("-", 1)[1]).grid


def power_flow_job(inputs: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """AC or DC power flow of a Berkane grid or of a MATPOWER case given as text."""
    from twin.energy import power_flow

    grid = _grid_of(inputs)
    ctx.progress(30.0, "power flow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the messages are in the result
        res = power_flow(grid, inputs["algorithm"], tol=inputs["tolerance"], max_iter=inputs["max_iter"],
                         init=inputs["init"], enforce_q_limits=inputs["enforce_q_limits"])
    bus_cols = {"vm_pu": "vm_pu", "va_deg": "va_deg", "p_mw": "p_mw", "q_mvar": "q_mvar",
                "p_load_mw": "p_load_mw", "energised": "energised"}
    br_cols = {"kind": "kind", "bus0": "bus0", "bus1": "bus1", "p0_mw": "p0_mw", "q0_mvar": "q0_mvar",
               "p1_mw": "p1_mw", "q1_mvar": "q1_mvar", "pl_mw": "losses_mw", "loading_percent": "loading_percent"}
    return {"converged": bool(res.converged), "iterations": int(res.iterations),
            "summary": jsonable(res.summary()), "buses": records(res.bus, "id", bus_cols),
            "branches": records(res.branch, "id", br_cols)}


def hydraulic_job(inputs: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Extended-period hydraulic simulation of Berkane's water network."""
    from twin.water import simulate_hydraulics

    wn = twin_of(inputs["season"]).water
    ctx.progress(20.0, "hydraulic simulation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simulate_hydraulics(wn, duration_s=int(round(inputs["duration_h"] * 3600)),
                                  demand_model=inputs.get("demand_model"))
    hours = (res.node_pressure.index.to_numpy(dtype=float) / 3600.0).round(6)
    tanks = [t for t in wn.tank.index if t in res.node_pressure.columns]
    levels = pd.DataFrame({f"{t}_level_m": res.node_pressure[t].to_numpy() for t in tanks}, index=hours)
    junctions = [j for j in wn.junction.index if j in res.node_pressure.columns]
    p = res.node_pressure[junctions].to_numpy() if junctions else np.zeros((len(hours), 0))
    pressure = pd.DataFrame({"min_m": p.min(axis=1) if p.size else np.nan,
                             "p05_m": np.percentile(p, 5, axis=1) if p.size else np.nan,
                             "mean_m": p.mean(axis=1) if p.size else np.nan,
                             "max_m": p.max(axis=1) if p.size else np.nan}, index=hours)
    lowest = res.node_pressure[junctions].min().nsmallest(10) if junctions else pd.Series(dtype=float)
    return {"converged": bool(res.converged), "summary": jsonable(res.summary()),
            "tank_levels": records(levels, "time_h"), "pressure_summary": records(pressure, "time_h"),
            "lowest_pressure_junctions": [{"id": str(k), "min_pressure_m": jsonable(v)} for k, v in lowest.items()],
            "pump_energy": records(res.pump_energy, "id"),
            "messages": [f"t={t} s {el}: {msg}" for t, el, msg in res.messages[:50]]}


def traffic_job(inputs: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Static user-equilibrium assignment of one hour's trips on Berkane's roads."""
    from twin.transport import assign_traffic

    tw = twin_of(inputs["season"])
    ctx.progress(20.0, "traffic assignment")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = assign_traffic(tw.roads, method=inputs["method"], rel_gap=inputs["rel_gap"],
                             max_iter=inputs["max_iter"], hour=inputs["hour"],
                             closed_links=inputs.get("closed_links", []))
    lk = res.link.copy()
    lk["capacity_veh_h"] = tw.roads.link["capacity_veh_h"].reindex(lk.index)
    cols = {"from_node": "from_node", "to_node": "to_node", "flow": "flow_veh_h", "capacity_veh_h": "capacity_veh_h",
            "voc": "v_c", "time_min": "time_min", "closed": "closed"}
    return {"converged": bool(res.converged), "gap": jsonable(res.gap), "iterations": int(res.iterations),
            "total_travel_time_veh_min_h": jsonable(res.total_time), "tstt": jsonable(res.tstt),
            "unserved_trips_veh_h": jsonable(float(res.unserved["trips"].sum()) if len(res.unserved) else 0.0),
            "links": records(lk, "id", cols)}


def dispatch_job(inputs: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """The joint day-ahead schedule (generation, storage, water works, EV charging) over the first hours."""
    from scenarios.run import dispatch_inputs
    from solvers import DispatchOptions

    tw = twin_of(inputs["season"])
    hours = int(inputs["hours"])
    ctx.progress(10.0, "inputs")
    g, works, ev = dispatch_inputs(tw, hours, reuse_cache())
    ctx.progress(40.0, "optimisation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = reuse_cache().day_ahead(g, works, ev, DispatchOptions(network="angle", cyclic_storage=False,
                                                                      end_soc_at_least_start=True))
    sol = sched.dispatch

    def timed(df: pd.DataFrame, unit: str) -> list[dict[str, Any]]:
        frame = df.copy()
        frame.columns = [f"{c}_{unit}" for c in frame.columns]
        frame.index = [pd.Timestamp(t).isoformat() for t in frame.index]
        return records(frame, "time")

    return {"objective_mad": jsonable(sched.objective), "status": str(sol.status.status),
            "cost_breakdown_mad": jsonable(sched.cost_breakdown), "generation": timed(sol.generation, "mw"),
            "storage_soc": timed(sol.state_of_charge, "mwh"), "water_volume": timed(sched.water_volume, "m3"),
            "ev_charging": timed(sched.ev_charging, "mw")}


def batch_job(inputs: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A batch of scenarios on Dask (:func:`scenarios.batch.run_batch`) into ``data_dir/batches/<job id>``."""
    from scenarios import LIBRARY
    from scenarios.batch import parse_batch, run_batch

    spec = parse_batch(inputs["spec"], "inputs.spec").with_root(LIBRARY)

    def progress(state: dict[str, Any]) -> None:
        total = max(1, int(state["total"]))
        ctx.progress(100.0 * (state["done"] + state["failed"]) / total,
                     f"{state['done']} done, {state['failed']} failed, {state['remaining']} remaining")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_batch(spec, ctx.data_dir / "batches" / ctx.job_id, scheduler=ctx.scheduler,
                        workers=ctx.batch_workers, progress=progress, report=False)
    cat = res.catalogue.drop(columns=[c for c in ("traceback",) if c in res.catalogue.columns])
    return {"catalogue": records(cat.set_index("scenario"), "scenario") if len(cat) else [],
            "n_ok": res.n_ok, "n_failed": res.n_failed, "elapsed_s": jsonable(res.elapsed_s),
            "messages": list(res.messages)}


COMPUTATIONS: dict[str, Callable[[dict[str, Any], JobContext], dict[str, Any]]] = {
    "run-scenario": run_scenario_job,
    "power-flow": power_flow_job,
    "hydraulic-simulation": hydraulic_job,
    "traffic-assignment": traffic_job,
    "dispatch-optimisation": dispatch_job,
    "batch": batch_job,
}


def execute(process_id: str, inputs: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Run one process's computation and return its outputs (JSON-ready)."""
    return COMPUTATIONS[process_id](inputs, ctx)


def execute_plain(process_id: str, inputs: dict[str, Any], data_dir: str, job_id: str) -> dict[str, Any]:
    """:func:`execute` with plain arguments (what a Dask task is given); an error comes back as
    ``{"__error__": exception document fields}`` so that it needs no unpickling of project classes."""
    try:
        return execute(process_id, inputs, JobContext(data_dir=Path(data_dir), job_id=job_id))
    except Exception as exc:  # the executor turns it into a failed job
        return {"__error__": classify_error(exc)}


def classify_error(exc: BaseException) -> dict[str, Any]:
    """The failure of a computation as exception-document fields: 400 for the project's input errors, 422 for
    anything else (a computation that could not be done); the detail is the exception's message, never a
    traceback."""
    if isinstance(exc, input_error_classes()):
        return {"status": 400, "title": "invalid input", "detail": str(exc)}
    return {"status": 422, "title": "computation failed", "detail": f"{type(exc).__name__}: {exc}"}
