"""The processes of the service (OGC API – Processes): their descriptions, input models and the checks of an
execution request's inputs, done before a job is accepted so that bad inputs are answered 400 at once.

Inputs are validated with pydantic models (unknown inputs rejected); the descriptions' input schemas are those
models' JSON schemas, with references resolved, so a client sees exactly what is checked.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .problems import NO_SUCH_PROCESS, ApiProblem

__all__ = ["PROCESSES", "ProcessDef", "check_inputs", "describe", "summary", "select_outputs", "inline_refs"]

VERSION = "1.0.0"


class _Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunScenarioInputs(_Inputs):
    scenario: str | dict[str, Any] = Field(description="name of a shipped scenario (e.g. baseline_summer) or a "
                                                       "scenario object (the YAML schema of scenarios/*.yaml, as JSON)")
    hours: int | None = Field(None, ge=1, le=24, description="shorten the day to this many hours")


class PowerFlowInputs(_Inputs):
    case: Literal["berkane-summer", "berkane-winter"] = Field(
        "berkane-summer", description="the Berkane grid of a season (ignored when case_text is given)")
    case_text: str | None = Field(None, max_length=5_000_000, description="a MATPOWER case file's text")
    algorithm: Literal["ac", "dc"] = "ac"
    tolerance: float = Field(1e-8, gt=0.0, le=1e-2, description="largest P or Q mismatch, p.u.")
    max_iter: int = Field(20, ge=1, le=100)
    init: Literal["dc", "flat", "case"] = "dc"
    enforce_q_limits: bool = False


class HydraulicInputs(_Inputs):
    season: Literal["summer", "winter"] = "summer"
    duration_h: float = Field(24.0, gt=0.0, le=168.0, description="simulated duration, h")
    demand_model: Literal["DDA", "PDA"] | None = Field(None, description="default: the network's")


class TrafficInputs(_Inputs):
    season: Literal["summer", "winter"] = "summer"
    hour: int = Field(8, ge=0, le=23, description="the hour whose trips are assigned (0–23)")
    rel_gap: float = Field(1e-4, ge=1e-8, le=0.1, description="target relative gap")
    method: Literal["fw", "cfw", "bfw", "gp"] = "bfw"
    max_iter: int = Field(500, ge=1, le=5000)
    closed_links: list[str] = Field(default_factory=list, max_length=1000, description="road link ids closed")


class DispatchInputs(_Inputs):
    season: Literal["summer", "winter"] = "summer"
    hours: int = Field(24, ge=1, le=24, description="horizon (h) from midnight")


class BatchInputs(_Inputs):
    spec: dict[str, Any] = Field(description="a batch spec (the format of scenarios/batches/*.yaml, as JSON); "
                                             "`base` and `scenarios` name shipped scenarios or are inline")


def _obj(props: dict[str, Any], title: str) -> dict[str, Any]:
    return {"title": title, "schema": {"type": "object", "properties": props} if props else {"type": "object"}}


def _arr(title: str, item: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"title": title, "schema": {"type": "array", "items": item or {"type": "object"}}}


_NUM = {"type": ["number", "null"]}


@dataclass(frozen=True)
class ProcessDef:
    """A process: id, title, description, input model, outputs (id → {title, schema})."""

    id: str
    title: str
    description: str
    inputs: type[_Inputs]
    outputs: dict[str, dict[str, Any]]


PROCESSES: dict[str, ProcessDef] = {p.id: p for p in (
    ProcessDef("run-scenario", "Run a scenario",
               "Optimise and simulate a scenario's day (scenarios.run_scenario): KPIs, the run's content hash and "
               "folder, messages.", RunScenarioInputs,
               {"kpis": _obj({}, "KPIs (names with units, e.g. energy_cost_mad, water_shortfall_m3)"),
                "hash": {"title": "content hash of the scenario and data", "schema": {"type": "string"}},
                "run": {"title": "run folder name", "schema": {"type": "string"}},
                "messages": _arr("messages", {"type": "string"}),
                "timings_s": _obj({}, "timings (s)"),
                "reused": {"title": "an identical run was reused", "schema": {"type": "boolean"}}}),
    ProcessDef("power-flow", "Power flow",
               "AC (Newton-Raphson) or DC power flow of Berkane's grid or of a MATPOWER case.", PowerFlowInputs,
               {"converged": {"title": "converged", "schema": {"type": "boolean"}},
                "iterations": {"title": "Newton iterations", "schema": {"type": "integer"}},
                "summary": _obj({}, "key figures (MW, MVAr, p.u., %)"),
                "buses": _arr("buses: id, vm_pu, va_deg, p_mw, q_mvar, p_load_mw, energised"),
                "branches": _arr("branches: id, kind, bus0, bus1, p0_mw, q0_mvar, p1_mw, q1_mvar, losses_mw, "
                                 "loading_percent")}),
    ProcessDef("hydraulic-simulation", "Hydraulic simulation",
               "Extended-period hydraulic simulation of Berkane's water network.", HydraulicInputs,
               {"converged": {"title": "every step balanced", "schema": {"type": "boolean"}},
                "summary": _obj({}, "key figures"),
                "tank_levels": _arr("tank levels (m) by reporting time (h): time_h, <tank>_level_m"),
                "pressure_summary": _arr("junction pressure (m) by reporting time: time_h, min_m, p05_m, mean_m, "
                                         "max_m"),
                "lowest_pressure_junctions": _arr("the ten junctions of lowest pressure: id, min_pressure_m"),
                "pump_energy": _arr("per pump: id, kwh, hours_online, …"),
                "messages": _arr("warnings", {"type": "string"})}),
    ProcessDef("traffic-assignment", "Traffic assignment",
               "Static user-equilibrium assignment of one hour's trips on Berkane's roads.", TrafficInputs,
               {"converged": {"title": "gap reached", "schema": {"type": "boolean"}},
                "gap": {"title": "relative gap", "schema": _NUM},
                "iterations": {"title": "iterations", "schema": {"type": "integer"}},
                "total_travel_time_veh_min_h": {"title": "total travel time (veh·min/h)", "schema": _NUM},
                "tstt": {"title": "total system travel cost", "schema": _NUM},
                "unserved_trips_veh_h": {"title": "trips with no open path (veh/h)", "schema": _NUM},
                "links": _arr("links: id, from_node, to_node, flow_veh_h, capacity_veh_h, v_c, time_min, "
                              "closed")}),
    ProcessDef("dispatch-optimisation", "Dispatch optimisation",
               "The joint day-ahead schedule of generation, batteries, water works and EV charging (HiGHS).",
               DispatchInputs,
               {"objective_mad": {"title": "objective (MAD)", "schema": _NUM},
                "status": {"title": "solver status", "schema": {"type": "string"}},
                "cost_breakdown_mad": _obj({}, "cost terms (MAD)"),
                "generation": _arr("generation (MW) by hour: time, <generator>_mw"),
                "storage_soc": _arr("battery state of charge (MWh) by hour"),
                "water_volume": _arr("water storages' volume (m³) by hour"),
                "ev_charging": _arr("EV hubs' charging (MW) by hour")}),
    ProcessDef("batch", "Batch of scenarios",
               "A batch (grid sweep, Monte Carlo outages, ensembles) run on Dask: one catalogue row per scenario.",
               BatchInputs,
               {"catalogue": _arr("one row per scenario: scenario, hash, kind, param_*, status, error, KPIs"),
                "n_ok": {"title": "scenarios that succeeded", "schema": {"type": "integer"}},
                "n_failed": {"title": "scenarios that failed", "schema": {"type": "integer"}},
                "elapsed_s": {"title": "wall time (s)", "schema": _NUM},
                "messages": _arr("messages", {"type": "string"})}),
)}


def inline_refs(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """A JSON schema with its local ``$ref``s (``#/$defs/...``) replaced by their targets (not recursive)."""
    if isinstance(schema, dict):
        defs = {**(defs or {}), **schema.get("$defs", {})}
        if "$ref" in schema and schema["$ref"].startswith("#/$defs/"):
            target = defs[schema["$ref"].split("/")[-1]]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return inline_refs({**target, **rest}, defs)
        return {k: inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [inline_refs(v, defs) for v in schema]
    return schema


def _scenario_schema() -> dict[str, Any]:
    from scenarios import Scenario

    return inline_refs(Scenario.model_json_schema())


def _batch_schema() -> dict[str, Any]:
    from scenarios.batch import BatchSpec

    return inline_refs(BatchSpec.model_json_schema())


def _links(pid: str, base: str) -> list[dict[str, str]]:
    return [{"href": f"{base}/processes/{pid}", "rel": "self", "type": "application/json", "title": "description"},
            {"href": f"{base}/processes/{pid}/execution", "rel": "http://www.opengis.net/def/rel/ogc/1.0/execute",
             "type": "application/json", "title": "execute"}]


def summary(p: ProcessDef, base: str) -> dict[str, Any]:
    """The process summary of ``/processes``."""
    return {"id": p.id, "title": p.title, "description": p.description, "version": VERSION,
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"], "outputTransmission": ["value"],
            "links": _links(p.id, base)}


def describe(p: ProcessDef, base: str) -> dict[str, Any]:
    """The process description of ``/processes/{id}``: inputs and outputs with JSON schemas."""
    schema = inline_refs(p.inputs.model_json_schema())
    required = set(schema.get("required", []))
    inputs = {}
    for name, prop in schema["properties"].items():
        if p.id == "run-scenario" and name == "scenario":
            prop = {"oneOf": [{"type": "string", "description": "a shipped scenario's name"}, _scenario_schema()]}
        if p.id == "batch" and name == "spec":
            prop = _batch_schema()
        inputs[name] = {"title": prop.get("title", name), "description": schema["properties"][name].get(
            "description", ""), "schema": prop, "minOccurs": 1 if name in required else 0, "maxOccurs": 1}
    return {**summary(p, base), "inputs": inputs, "outputs": p.outputs}


def _unwrap(v: Any) -> Any:
    """OGC qualified values ``{"value": x}`` (optionally with mediaType/encoding/schema) as ``x``."""
    if isinstance(v, dict) and "value" in v and set(v) <= {"value", "mediaType", "encoding", "schema"}:
        return v["value"]
    return v


def _invalid(pid: str, detail: str) -> ApiProblem:
    return ApiProblem(400, f"process {pid}: {detail}", title="invalid input")


def _pydantic_detail(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:10]:
        where = ".".join(str(x) for x in e["loc"]) or "(inputs)"
        msg = f"unknown input {e['loc'][-1]!r}" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"inputs.{where}: {msg}")
    return "; ".join(parts)


def get_process(pid: str) -> ProcessDef:
    """The process, or a 404 ``no-such-process`` problem."""
    p = PROCESSES.get(pid)
    if p is None:
        raise ApiProblem(404, f"there is no process {pid!r}; processes: {', '.join(PROCESSES)}",
                         type_=NO_SUCH_PROCESS, title="no such process")
    return p


def check_inputs(pid: str, raw: Any, *, twin_of, max_batch_scenarios: int = 100) -> dict[str, Any]:
    """The inputs of an execution of ``pid`` checked and normalised (what the job stores and runs); raises
    :class:`ApiProblem` 400 naming the input and what is wrong.  ``twin_of(season)`` gives the base twin that
    element ids are checked against."""
    p = get_process(pid)
    if not isinstance(raw, dict):
        raise _invalid(pid, "inputs must be an object of input id → value")
    try:
        model = p.inputs.model_validate({str(k): _unwrap(v) for k, v in raw.items()})
    except ValidationError as exc:
        raise _invalid(pid, _pydantic_detail(exc)) from None
    data = model.model_dump(mode="json")
    if pid == "run-scenario":
        return _check_scenario(pid, model, twin_of)
    if pid == "power-flow" and model.case_text is not None:
        _check_case_text(pid, model.case_text)
    if pid == "traffic-assignment" and model.closed_links:
        links = twin_of(model.season).roads.link.index
        bad = [x for x in model.closed_links if x not in links]
        if bad:
            from twin.coupled import nearest_ids

            raise _invalid(pid, f"inputs.closed_links: road link {bad[0]!r} does not exist; nearest: "
                                f"{nearest_ids(bad[0], links)}")
    if pid == "batch":
        return {"spec": _check_batch(pid, model.spec, twin_of, max_batch_scenarios)}
    return data


def _library_path(pid: str, where: str, name: str) -> str:
    from scenarios import library

    stem = Path(name).name.removesuffix(".yaml")
    if stem not in library():
        raise _invalid(pid, f"{where}: there is no shipped scenario {name!r}; shipped: {', '.join(library())}")
    return f"{stem}.yaml"


def _check_scenario(pid: str, model: RunScenarioInputs, twin_of) -> dict[str, Any]:
    from scenarios import ScenarioError, check_against_twin, library, load_scenario, parse_scenario

    try:
        if isinstance(model.scenario, str):
            stem = _library_path(pid, "inputs.scenario", model.scenario).removesuffix(".yaml")
            sc = load_scenario(library()[stem])
        else:
            sc = parse_scenario(json.dumps(model.scenario), "inputs.scenario")
        check_against_twin(sc, twin_of(sc.season), "inputs.scenario")
    except ScenarioError as exc:
        raise _invalid(pid, str(exc)) from None
    return {"scenario": sc.model_dump(mode="json"), "hours": model.hours}


def _check_case_text(pid: str, text: str) -> None:
    from twin.energy import read_matpower

    with tempfile.TemporaryDirectory(prefix="twin-api-case-") as tmp:
        path = Path(tmp) / "case.m"
        path.write_text(text, encoding="utf-8")
        try:
            read_matpower(path)
        except (ValueError, KeyError, IndexError) as exc:
            msg = str(exc).replace(str(path), "case_text")
            raise _invalid(pid, f"inputs.case_text: {msg}") from None


def _count_batch(spec) -> int:
    n = int(spec.include_base) + len(spec.scenarios)
    if spec.grid:
        n += math.prod(len(v) for v in spec.grid.values())
    if spec.monte_carlo is not None:
        n += spec.monte_carlo.samples
    if spec.ensembles is not None:
        n += spec.ensembles.members
    return n


def _check_batch(pid: str, raw: dict[str, Any], twin_of, limit: int) -> dict[str, Any]:
    from scenarios import LIBRARY, ScenarioError, check_against_twin
    from scenarios.batch import expand_batch, parse_batch

    data = dict(raw)
    if isinstance(data.get("base"), str):
        data["base"] = _library_path(pid, "inputs.spec.base", data["base"])
    if isinstance(data.get("scenarios"), list):
        data["scenarios"] = [_library_path(pid, f"inputs.spec.scenarios[{i}]", s) if isinstance(s, str) else s
                             for i, s in enumerate(data["scenarios"])]
    try:
        spec = parse_batch(data, "inputs.spec").with_root(LIBRARY)
        n = _count_batch(spec)
        if n > limit:
            raise _invalid(pid, f"inputs.spec: the batch has {n} scenarios; this service runs at most {limit} "
                                "per batch job")
        if n == 0:
            raise _invalid(pid, "inputs.spec: the batch has no scenario (give grid, monte_carlo, ensembles, "
                                "scenarios or include_base)")
        items = expand_batch(spec)
        for it in items:
            check_against_twin(it.scenario, twin_of(it.scenario.season), f"inputs.spec ({it.name})")
    except ScenarioError as exc:
        raise _invalid(pid, str(exc)) from None
    return data


def select_outputs(pid: str, requested: dict[str, Any] | None) -> list[str]:
    """The output ids an execution asked for (all when none are named); 400 for an unknown output."""
    p = get_process(pid)
    if not requested:
        return list(p.outputs)
    unknown = [k for k in requested if k not in p.outputs]
    if unknown:
        raise _invalid(pid, f"outputs: there is no output {unknown[0]!r}; outputs: {', '.join(p.outputs)}")
    return list(requested)
