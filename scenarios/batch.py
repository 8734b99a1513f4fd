"""Batches of scenarios on Dask: ``twin batch SPEC``.

A batch file (YAML, unknown keys rejected) names a base scenario and generators of scenarios:

* ``scenarios`` — scenario files (paths relative to the batch file), run as they are;
* ``grid`` — a full factorial over a small vocabulary of parameters (:data:`GRID_PARAMETERS`), each value
  becoming modifications added to the base scenario (0 MW / 0 MWh add nothing);
* ``monte_carlo`` — N outage samples: each element fails on the day with its per-day probability, at a
  uniform whole start hour within the batch's hours, for a uniform duration (whole hours); sample *i* depends
  only on the seed and *i* (``numpy.random.default_rng([seed, i])``), so adding samples never changes earlier ones;
* ``ensembles`` — N members scaling demand by log-normal factors (electric load, water, trips).

Every generated scenario has a stable name ``<batch>-<kind>-<index>`` and records its parameters.

The runner submits one task per scenario to a Dask cluster (a ``LocalCluster`` by default, or the scheduler
at ``--scheduler ADDRESS``: the same code path).  Each task runs :func:`scenarios.run_scenario` in its worker
thread's scenario process (:class:`ScenarioProcess`, ``python -m scenarios.batch --serve``), a long-lived
child that waits for it with the per-scenario timeout: it can be killed cleanly on a timeout, whatever it is
doing (a solver in C code does not see signals or thread flags), it works in Dask's daemonic worker
processes (which ``multiprocessing`` refuses to fork from), and a crash (segfault, memory) is a failed
record, not a lost worker.  Living on, it keeps a :class:`~scenarios.reuse.ReuseCache`: the worker's
scenarios share the base twins, the pump schedules and water works of identical water networks, and the
day-ahead models of one structure, re-solved in place (same results as separate runs, tested).  Exceptions,
timeouts and crashes come back as failed records (a timeout or a crash replaces the process); a lost
worker is retried (``retries``) by resubmitting the scenario.

Results are keyed by the scenario's content hash: the run folders (``<out>/<batch>/runs/<name>-<hash>``) are
written atomically by ``run_scenario``, and a rerun reads the complete ones instead of running them again, so
a killed batch resumes where it stopped.  The catalogue ``<out>/<batch>/catalogue.parquet`` (one row per
scenario: id, hash, kind, parameters, status, error, KPIs, timings) is rewritten atomically after each result
and at the end, followed by the comparison report ``report.html`` (:mod:`scenarios.batch_report`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import itertools
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from twin.atomic import atomic_write_bytes

from .loading import ScenarioError, load_scenario, scenario_hash
from .schema import KPI_NAMES, Scenario

try:  # POSIX: the peak memory of a scenario process
    import resource
except ImportError:  # pragma: no cover
    resource = None

__all__ = ["BatchSpec", "BatchItem", "BatchResult", "GRID_PARAMETERS", "load_batch", "expand_batch", "run_batch",
           "run_batch_cli", "add_batch_arguments", "catalogue_frame"]

GRID_PARAMETERS = {
    "pv_mw": "add_pv of this many MWp on placement.pv_bus (0: none)",
    "battery_mwh": "add_battery of this many MWh on placement.battery_bus, power MWh ÷ placement.battery_hours",
    "battery_mw": "the battery's power (MW) when swept apart from its energy",
    "ev_share": "ev_growth: the share of vehicles that are electric (0–1)",
    "load_factor": "scale_demand of the electric load, whole city",
    "water_factor": "scale_demand of the water demand, whole city",
    "trips_factor": "scale_demand of the trips, whole city",
}
Progress = Callable[[dict[str, Any]], None]
STATUSES = ("ok", "failed", "timeout")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Placement(_Strict):
    """Where the grid vocabulary puts new elements: buses, and the battery's energy-to-power ratio (h)."""

    pv_bus: str = "B_PV_PLANT"
    battery_bus: str = "B_SOUTH_22"
    battery_hours: float = Field(2.0, gt=0.0, le=24.0)


class MonteCarlo(_Strict):
    """Outage samples: per-day failure probabilities of elements, a duration range (h) and a seed."""

    samples: int = Field(ge=1, le=100_000)
    seed: int = 0
    failure_rates: dict[str, float] = Field(min_length=1, description="element id → probability of failing that day")
    layers: dict[str, Literal["energy", "water", "roads"]] = Field(
        default_factory=dict, description="element id → layer (default energy)")
    duration_h: tuple[float, float] = (1.0, 4.0)

    @model_validator(mode="after")
    def _check(self):
        bad = [k for k, p in self.failure_rates.items() if not 0.0 <= p <= 1.0]
        if bad:
            raise ValueError(f"failure rate of {bad[0]!r} must be a probability in [0, 1]")
        extra = sorted(set(self.layers) - set(self.failure_rates))
        if extra:
            raise ValueError(f"layer given for {extra[0]!r}, which has no failure rate")
        lo, hi = self.duration_h
        if not 0.0 < lo <= hi <= 24.0:
            raise ValueError(f"duration_h must be 0 < min <= max <= 24 (got {lo:g}, {hi:g})")
        return self


class Ensembles(_Strict):
    """Forecast ensemble members: demand factors exp(N(0, σ²)) per layer and a PV availability factor
    (σ of the log, 0: not perturbed)."""

    members: int = Field(ge=1, le=100_000)
    seed: int = 0
    load_sigma: float = Field(0.0, ge=0.0, le=1.0)
    water_sigma: float = Field(0.0, ge=0.0, le=1.0)
    pv_sigma: float = Field(0.0, ge=0.0, le=1.0)
    trips_sigma: float = Field(0.0, ge=0.0, le=1.0)


class BatchSpec(_Strict):
    """A batch file: base scenario, generators, and how to run (module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    description: str = ""
    base: str | dict[str, Any] = Field(description="scenario file (relative to the batch file) or inline scenario")
    include_base: bool = Field(False, description="run the base scenario itself as <batch>-base")
    hours: int | None = Field(None, ge=1, le=24, description="shorten every scenario's day to this many hours")
    analyses: list[Literal["dispatch", "pump_schedule", "power_flow", "hydraulics", "traffic", "cascade"]] | None = None
    scenarios: list[str] = Field(default_factory=list, description="scenario files, relative to the batch file")
    grid: dict[str, list[float]] = Field(default_factory=dict)
    placement: Placement = Field(default_factory=Placement)
    monte_carlo: MonteCarlo | None = None
    ensembles: Ensembles | None = None
    timeout_s: float | None = Field(None, gt=0.0, description="per-scenario wall-clock limit (s)")
    retries: int = Field(1, ge=0, le=10, description="resubmissions of a scenario whose worker was lost")
    reuse: bool = Field(True, description="scenarios of a worker share base twins, pump schedules and day-ahead "
                                          "models (scenarios.reuse); false: each run computes everything")
    _root: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _check(self):
        unknown = sorted(set(self.grid) - set(GRID_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown grid parameter {unknown[0]!r}; known: {', '.join(GRID_PARAMETERS)}")
        empty = [k for k, v in self.grid.items() if not v]
        if empty:
            raise ValueError(f"grid parameter {empty[0]!r} has no values")
        return self

    @property
    def root(self) -> Path:
        """The folder relative paths are resolved against (the batch file's folder)."""
        return self._root

    def with_root(self, root: str | os.PathLike) -> BatchSpec:
        """This spec with relative paths resolved against ``root``."""
        out = self.model_copy()
        out._root = Path(root)
        return out


@dataclass(frozen=True)
class BatchItem:
    """One concrete scenario of a batch: stable name, generator kind, index in it, parameters."""

    name: str
    kind: str
    index: int
    parameters: dict[str, Any]
    scenario: Scenario


@dataclass
class BatchResult:
    """A finished batch: the catalogue (one row per scenario), its folder, counts and wall time (s)."""

    path: Path
    catalogue: pd.DataFrame
    elapsed_s: float
    report: Path | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        """Scenarios that succeeded (computed now or reused)."""
        return int((self.catalogue["status"] == "ok").sum())

    @property
    def n_failed(self) -> int:
        """Scenarios that raised, timed out or whose worker was lost beyond the retries."""
        return int((self.catalogue["status"] != "ok").sum())


# -- the spec and its expansion -----------------------------------------------------------------------------------

def load_batch(path: str | os.PathLike) -> BatchSpec:
    """Read and validate a batch file; relative paths in it resolve against its folder."""
    p = Path(path)
    if not p.exists():
        raise ScenarioError(f"{p}: no such batch file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{p}: not valid YAML: {exc}") from None
    return parse_batch(data, str(p)).with_root(p.parent)


def parse_batch(data: Any, source: str = "<batch>") -> BatchSpec:
    """Validate a batch spec given as a dict; errors list ``source: path: message`` for every problem."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a batch file is a mapping of keys (name, base, grid …)")
    try:
        return BatchSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {'.'.join(str(x) for x in e['loc']) or '(top level)'}: "
                 f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}" for e in exc.errors()]
        raise ScenarioError("invalid batch:\n  " + "\n  ".join(lines)) from None


def _shortened(sc: Scenario, hours: int | None, analyses: list[str] | None) -> Scenario:
    """The scenario cut to ``hours`` (peak hours kept inside the day, as ``run_scenario`` does) and with the
    batch's analyses, if given."""
    update: dict[str, Any] = {}
    if hours is not None:
        peaks = [h for h in sc.options.peak_hours if h < hours] or [hours - 1]
        update.update(hours=int(hours), options=sc.options.model_copy(update={"peak_hours": peaks}))
    if analyses is not None:
        update["analyses"] = list(analyses)
    return Scenario.model_validate({**sc.model_dump(mode="json"), **update})


def _derived(base: Scenario, name: str, description: str, mods: list[dict]) -> Scenario:
    """A scenario from the base with another name and extra modifications (validated)."""
    doc = base.model_dump(mode="json")
    doc.update(name=name, description=description, modifications=doc["modifications"] + mods)
    return Scenario.model_validate(doc)


def _base_scenario(spec: BatchSpec) -> Scenario:
    """The batch's base scenario (file or inline), cut to the batch's hours and analyses."""
    if isinstance(spec.base, str):
        sc = load_scenario(spec.root / spec.base)
    else:
        sc = Scenario.model_validate({"name": spec.name, **spec.base})
    return _shortened(sc, spec.hours, spec.analyses)


def grid_modifications(params: dict[str, float], placement: Placement) -> list[dict]:
    """The modifications of one grid point (vocabulary :data:`GRID_PARAMETERS`; MW, MWh, shares, factors)."""
    mods: list[dict] = []
    if params.get("pv_mw", 0.0) > 0.0:
        mods.append({"type": "add_pv", "bus": placement.pv_bus, "mw": float(params["pv_mw"]), "id": "PV_BATCH"})
    mwh = float(params.get("battery_mwh", 0.0))
    if mwh > 0.0:
        mw = float(params.get("battery_mw", mwh / placement.battery_hours))
        mods.append({"type": "add_battery", "bus": placement.battery_bus, "mw": mw, "mwh": mwh, "id": "BESS_BATCH"})
    if "ev_share" in params:
        mods.append({"type": "ev_growth", "share": float(params["ev_share"])})
    for key, layer in (("load_factor", "energy"), ("water_factor", "water"), ("trips_factor", "roads")):
        if key in params and float(params[key]) != 1.0:
            mods.append({"type": "scale_demand", "layer": layer, "factor": float(params[key])})
    return mods


def monte_carlo_sample(mc: MonteCarlo, index: int, hours: int) -> tuple[list[dict], dict[str, Any]]:
    """Outage modifications of sample ``index`` and its parameters: each element (in sorted order) fails with
    its probability, starting at a whole hour uniform in [0, hours), lasting a uniform draw in ``duration_h``
    rounded to whole hours (at least 1): the simulation is hourly, so fractions of hours would change nothing."""
    rng = np.random.default_rng([mc.seed, index])
    mods, labels = [], []
    for element in sorted(mc.failure_rates):
        fails, u_start, u_dur = rng.random(3)
        if fails >= mc.failure_rates[element]:
            continue
        start = float(min(hours - 1, math.floor(u_start * hours)))
        lo, hi = mc.duration_h
        end = min(24.0, start + max(1.0, float(round(lo + u_dur * (hi - lo)))))
        layer = mc.layers.get(element, "energy")
        mods.append({"type": "outage", "layer": layer, "element": element, "start_h": start, "end_h": end})
        labels.append(f"{element}@{start:g}-{end:g}")
    return mods, {"sample": index, "n_outages": len(mods), "outages": ";".join(labels)}


def ensemble_member(ens: Ensembles, index: int) -> tuple[list[dict], dict[str, Any]]:
    """Demand-scaling modifications of member ``index`` and its factors (log-normal, seeded by seed and index)."""
    rng = np.random.default_rng([ens.seed, index])
    z = rng.standard_normal(3)
    mods, params = [], {"member": index}
    for k, (key, layer, sigma) in enumerate((("load_factor", "energy", ens.load_sigma),
                                            ("water_factor", "water", ens.water_sigma),
                                            ("trips_factor", "roads", ens.trips_sigma))):
        if sigma > 0.0:
            factor = float(np.exp(sigma * z[k]))
            mods.append({"type": "scale_demand", "layer": layer, "factor": factor})
            params[key] = factor
    z_pv = rng.standard_normal()  # drawn after the demand factors: members of earlier specs are unchanged
    if ens.pv_sigma > 0.0:
        factor = float(np.exp(ens.pv_sigma * z_pv))
        mods.append({"type": "scale_pv", "factor": min(factor, 3.0)})
        params["pv_factor"] = factor
    return mods, params


def expand_batch(spec: BatchSpec) -> list[BatchItem]:
    """The batch's concrete scenarios, in a stable order: base, listed files, grid, Monte Carlo, ensembles."""
    base = _base_scenario(spec)
    hours = base.hours
    items: list[BatchItem] = []
    if spec.include_base:
        items.append(BatchItem(f"{spec.name}-base", "base", 0, {}, _derived(base, f"{spec.name}-base",
                                                                           base.description, [])))
    for i, rel in enumerate(spec.scenarios):
        sc = _shortened(load_scenario(spec.root / rel), spec.hours, spec.analyses)
        name = f"{spec.name}-{sc.name}"[:80]
        items.append(BatchItem(name, "file", i, {"file": rel}, _derived(sc, name, sc.description, [])))
    if spec.grid:
        keys = list(spec.grid)
        for i, values in enumerate(itertools.product(*(spec.grid[k] for k in keys))):
            params = dict(zip(keys, (float(v) for v in values), strict=True))
            name = f"{spec.name}-grid-{i:03d}"
            text = ", ".join(f"{k}={v:g}" for k, v in params.items())
            items.append(BatchItem(name, "grid", i, params, _derived(
                base, name, f"{spec.name} grid point: {text}", grid_modifications(params, spec.placement))))
    if spec.monte_carlo is not None:
        for i in range(spec.monte_carlo.samples):
            mods, params = monte_carlo_sample(spec.monte_carlo, i, hours)
            name = f"{spec.name}-mc-{i:03d}"
            items.append(BatchItem(name, "monte_carlo", i, params, _derived(
                base, name, f"{spec.name} outage sample {i}: {params['outages'] or 'no failure'}", mods)))
    if spec.ensembles is not None:
        for i in range(spec.ensembles.members):
            mods, params = ensemble_member(spec.ensembles, i)
            name = f"{spec.name}-ens-{i:03d}"
            items.append(BatchItem(name, "ensemble", i, params, _derived(
                base, name, f"{spec.name} ensemble member {i}", mods)))
    seen: set[str] = set()
    for it in items:
        if it.name in seen:
            raise ScenarioError(f"batch {spec.name!r}: two scenarios are named {it.name!r}")
        seen.add(it.name)
    return items


# -- one task: run_scenario in a long-lived child process --------------------------------------------------------

def _child_env() -> dict[str, str]:
    """The environment of a child run: this package importable whatever the worker's folder."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class ScenarioProcess:
    """A child Python process (``python -m scenarios.batch --serve``) that runs scenarios one after another
    with one :class:`~scenarios.reuse.ReuseCache`, so that a worker's scenarios share base twins, pump
    schedules and day-ahead models; one per Dask worker thread.

    It keeps what a process per scenario gave: a timeout can always kill it (a solver in C code does not see
    signals or thread flags), it works in Dask's daemonic worker processes (which ``multiprocessing`` refuses
    to fork from), and a crash (segfault, memory) is a failed record, not a lost worker.  After a timeout or a
    crash the next scenario starts a new process; after ``max_runs`` scenarios, or once its peak memory passes
    ``max_rss_mb``, it is replaced too (a cache never grows without bound).  Requests and records are JSON
    lines on its stdin and on a private copy of its stdout; whatever it prints goes to a log whose last lines
    explain a crash."""

    def __init__(self, max_runs: int = 200, max_rss_mb: float = 4096.0):
        self.max_runs, self.max_rss_mb = int(max_runs), float(max_rss_mb)
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self._log: Any = None
        self._buf = b""

    def _start(self) -> None:
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "scenarios.batch", "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=_child_env())
        self.runs, self._buf = 0, b""

    def _log_tail(self, lines: int = 8) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").strip().splitlines()[-lines:])

    def _read_line(self, timeout_s: float | None) -> bytes | None:
        """One record line; b"" when the process ended; None at the timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def run(self, scenario: dict, runs_dir: str, timeout_s: float | None = None, reuse: bool = True
            ) -> dict[str, Any]:
        """Run one scenario (its JSON dict) within ``timeout_s`` seconds, with the process's reuse cache or
        (``reuse=False``) without; return its record: status ``ok`` (hash, KPIs, timings, reused) or ``failed``
        / ``timeout`` (error, traceback), with ``wall_s``, the process's ``peak_rss_mb`` and ``reused_parts``
        (what this run took from earlier ones)."""
        t0 = time.perf_counter()
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        self._log.seek(0)
        self._log.truncate()
        try:
            req = {"scenario": scenario, "runs_dir": str(runs_dir), "reuse": bool(reuse)}
            self.proc.stdin.write(json.dumps(req).encode() + b"\n")
            self.proc.stdin.flush()
            line = self._read_line(timeout_s)
        except (BrokenPipeError, OSError):
            line = b""
        if line is None:
            self.close(kill=True)
            rec = {"status": "timeout", "error": f"timed out after {timeout_s:g} s", "traceback": ""}
        elif not line:
            code = self.proc.wait()
            how = f"signal {-code}" if code < 0 else f"code {code}"
            rec = {"status": "failed", "error": f"the scenario process ended ({how}) with no result",
                   "traceback": self._log_tail()}
            self.close()
        if not line:  # the process died mid-run: remove the temporary run folder it was writing, if any
            for tmp in Path(runs_dir).glob(f".{scenario.get('name', '')}-*"):
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            rec = json.loads(line)
            self.runs += 1
            if self.runs >= self.max_runs or float(rec.get("peak_rss_mb", 0.0)) > self.max_rss_mb:
                self.close()
        rec["wall_s"] = time.perf_counter() - t0
        return rec

    def close(self, kill: bool = False) -> None:
        """End the process (closing its stdin ends it between scenarios; ``kill``: at once)."""
        if self.proc is not None:
            if kill:
                self.proc.kill()
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


_LOCAL = threading.local()
_ALL_PROCESSES: list[ScenarioProcess] = []


def _thread_process() -> ScenarioProcess:
    """This thread's scenario process (made on first use, ended when this Python ends)."""
    proc = getattr(_LOCAL, "process", None)
    if proc is None:
        proc = _LOCAL.process = ScenarioProcess()
        _ALL_PROCESSES.append(proc)
    return proc


@atexit.register
def _close_processes() -> None:
    for proc in _ALL_PROCESSES:
        with contextlib.suppress(Exception):
            proc.close()


def run_isolated(scenario: dict, runs_dir: str, timeout_s: float | None = None) -> dict[str, Any]:
    """Run one scenario (its JSON dict) in a new child process, at most ``timeout_s`` seconds; return its
    record (:meth:`ScenarioProcess.run`)."""
    proc = ScenarioProcess()
    try:
        return proc.run(scenario, runs_dir, timeout_s)
    finally:
        proc.close()


def _die_with_parent() -> None:
    """Linux: end this process when the process (thread) that started it ends, so that a worker killed with
    SIGKILL leaves no scenario running."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent had already gone
            os._exit(0)


def _serve_main() -> int:
    """The child: read requests (JSON lines) on stdin, run each scenario with one reuse cache, write each
    record as a JSON line on a private copy of stdout; end at the end of stdin."""
    import warnings

    from .reuse import ReuseCache
    from .run import run_scenario

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the solvers print (C code included) goes to the log, never into the records
    _die_with_parent()
    cache = ReuseCache()
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return 0
        req = json.loads(line)
        before = cache.summary()
        try:
            sc = Scenario.model_validate(req["scenario"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # solver warnings land in the run's messages
                res = run_scenario(sc, req["runs_dir"], report=False, cache=cache if req.get("reuse", True) else None)
            doc = json.loads((res.path / "kpis.json").read_text())  # what is stored, as a rerun would read it
            rec = {"status": "ok", "hash": res.hash, "path": res.path.name, "kpis": doc["kpis"],
                   "timings": doc.get("timings", {}), "reused": res.reused, "error": "", "traceback": ""}
        except Exception as exc:  # every failure is a record; the batch goes on
            tb = traceback.format_exc().strip().splitlines()
            rec = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": "\n".join(tb[-6:])}
        if resource is not None:  # this process's peak resident memory so far (MB; Linux reports kB)
            rec["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        after = cache.summary()
        rec["reused_parts"] = ",".join(k for k, v in after.items() if v["hits"] > before.get(k, {}).get("hits", 0))
        try:
            out.write(json.dumps(rec).encode() + b"\n")
            out.flush()
        except BrokenPipeError:
            return 0


def _task(scenario: dict, runs_dir: str, timeout_s: float | None, reuse: bool = True) -> dict[str, Any]:
    """The Dask task: the scenario in this worker thread's scenario process (module docstring); never raises
    for a scenario's own failure.  The record names the worker that ran it."""
    from dask.distributed import get_worker

    rec = _thread_process().run(scenario, runs_dir, timeout_s, reuse)
    try:
        rec["worker"] = get_worker().address
    except ValueError:  # called outside a worker
        rec["worker"] = ""
    return rec


# -- the catalogue ------------------------------------------------------------------------------------------------

def _record_row(item: BatchItem, digest: str, rec: dict[str, Any]) -> dict[str, Any]:
    """One catalogue row: id, hash, kind, parameters (``param_*``), status, error, KPIs, timings (``t_*``, s)."""
    row: dict[str, Any] = {"scenario": item.name, "hash": digest, "kind": item.kind, "index": item.index}
    row.update({f"param_{k}": v for k, v in item.parameters.items()})
    row.update(status=rec["status"], error=rec.get("error", ""), traceback=rec.get("traceback", ""),
               reused=bool(rec.get("reused", False)), attempts=int(rec.get("attempts", 1)),
               wall_s=float(rec.get("wall_s", math.nan)), peak_rss_mb=float(rec.get("peak_rss_mb", math.nan)),
               run=rec.get("path", ""), worker=rec.get("worker", ""), reused_parts=rec.get("reused_parts", ""))
    kpis = rec.get("kpis") or {}
    for k in KPI_NAMES:
        v = kpis.get(k)
        row[k] = math.nan if v is None else float(v)
    for k, v in (rec.get("timings") or {}).items():
        row[f"t_{k}"] = float(v)
    return row


def catalogue_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The catalogue table from rows, in the batch's order, with stable column types."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for col in ("scenario", "hash", "kind", "status", "error", "traceback", "run", "worker", "reused_parts"):
        df[col] = df[col].astype(str)
    params = [c for c in df.columns if c.startswith("param_")]
    for col in params:
        if df[col].map(lambda v: isinstance(v, str)).any():
            df[col] = df[col].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    head = ["scenario", "hash", "kind", "index", *params, "status", "error", "traceback", "reused", "attempts",
            "wall_s", "peak_rss_mb", "run", "worker", "reused_parts", *KPI_NAMES]
    return df[head + [c for c in df.columns if c not in head]].reset_index(drop=True)


def _write_catalogue(path: Path, rows: dict[str, dict], order: list[str]) -> pd.DataFrame:
    """Write the rows known so far (in batch order) atomically as Parquet; return the table."""
    df = catalogue_frame([rows[n] for n in order if n in rows])
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    return df


# -- the runner ---------------------------------------------------------------------------------------------------

def _hashes(items: list[BatchItem]) -> dict[str, str]:
    """The content hash of each scenario as ``run_scenario`` computes it (scenario + base dataset manifest)."""
    from twin import load_berkane

    manifests = {season: load_berkane(season).meta.get("manifest") for season in {it.scenario.season for it in items}}
    return {it.name: scenario_hash(it.scenario, manifests[it.scenario.season]) for it in items}


def _done_record(run_dir: Path) -> dict[str, Any] | None:
    """The record of a complete run folder (``kpis.json`` present), or None."""
    f = run_dir / "kpis.json"
    if not f.exists():
        return None
    doc = json.loads(f.read_text())
    return {"status": "ok", "hash": doc["hash"], "path": run_dir.name, "kpis": doc["kpis"],
            "timings": doc.get("timings", {}), "reused": True, "wall_s": 0.0}


def _open_client(scheduler: str | None, workers: int | None, n_tasks: int):
    """A Dask client: on the scheduler at ``scheduler``, or on a new LocalCluster of ``workers`` single-threaded
    worker processes (default: the machine's cores, at most the number of tasks)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    n = workers or max(1, min(os.cpu_count() or 1, n_tasks))
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    return Client(cluster), cluster


def _eta(done_now: int, remaining: int, started: float) -> float | None:
    """Seconds left at the throughput of the runs finished so far in this session (None before the first)."""
    if done_now == 0:
        return None
    return (time.perf_counter() - started) / done_now * remaining


def run_batch(spec: BatchSpec | str | os.PathLike, out_dir: str | os.PathLike = "batches", *,
              scheduler: str | None = None, workers: int | None = None, progress: Progress | None = None,
              report: bool = True) -> BatchResult:
    """Run every scenario of a batch on Dask (module docstring) and write ``out_dir/<batch>/``: ``runs/``,
    ``catalogue.parquet`` and ``report.html``.  Complete runs are reused, failed ones run again, and the
    half-written folders of an interrupted batch are removed first (one batch per output folder at a time);
    ``progress(state)`` gets counts (done, failed, running, remaining, total) and ``eta_s`` after each result."""
    t_start = time.perf_counter()
    spec = spec if isinstance(spec, BatchSpec) else load_batch(spec)
    items = expand_batch(spec)
    hashes = _hashes(items)
    folder = Path(out_dir) / spec.name
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    cat_path = folder / "catalogue.parquet"
    messages: list[str] = []
    stale = [p for p in runs.iterdir() if p.name.startswith(".") and p.is_dir()]
    for p in stale:  # half-written run folders of a killed batch (one batch per output folder at a time)
        shutil.rmtree(p, ignore_errors=True)
    if stale:
        messages.append(f"removed {len(stale)} half-written run folder(s) of an interrupted batch")
    order = [it.name for it in items]
    by_name = {it.name: it for it in items}
    rows: dict[str, dict] = {}
    todo: list[BatchItem] = []
    for it in items:
        rec = _done_record(runs / f"{it.name}-{hashes[it.name]}")
        if rec is not None:
            rows[it.name] = _record_row(it, hashes[it.name], rec)
        else:
            todo.append(it)
    counts = {"total": len(items), "reused": len(rows), "done": len(rows), "failed": 0}
    say = progress or (lambda _state: None)

    def state(running: int) -> dict[str, Any]:
        remaining = counts["total"] - counts["done"] - counts["failed"]
        finished_now = counts["done"] + counts["failed"] - counts["reused"]
        return {**counts, "running": running, "remaining": remaining, "elapsed_s": time.perf_counter() - t_start,
                "eta_s": _eta(finished_now, remaining, t_start)}

    _write_catalogue(cat_path, rows, order)
    if todo:
        from dask.distributed import as_completed

        # the task by reference to the importable module, also under ``python -m scenarios.batch`` (where this
        # module is __main__ and cloudpickle would pickle the function by value with its thread-local globals)
        from scenarios.batch import _task as task

        client, cluster = _open_client(scheduler, workers, len(todo))
        try:
            slots = max(1, sum(client.nthreads().values()))
            attempts = dict.fromkeys((it.name for it in todo), 1)

            def submit(it: BatchItem):
                key = f"{it.name}-{hashes[it.name]}-a{attempts[it.name]}"
                fut = client.submit(task, it.scenario.model_dump(mode="json"), str(runs.resolve()), spec.timeout_s,
                                    spec.reuse, pure=False, retries=0, key=key)
                return fut

            futures = {submit(it): it.name for it in todo}
            say(state(min(slots, len(futures))))
            pending = as_completed(list(futures))
            outstanding = len(futures)
            for fut in pending:
                name = futures.pop(fut)
                outstanding -= 1
                it = by_name[name]
                if fut.status == "finished":
                    rec = fut.result()
                else:  # the task itself did not finish: a lost worker (KilledWorker) or a lost connection
                    exc = fut.exception()
                    if attempts[name] <= spec.retries:
                        attempts[name] += 1
                        messages.append(f"{name}: resubmitted after {type(exc).__name__}: {exc}")
                        new = submit(it)
                        futures[new] = name
                        pending.add(new)
                        outstanding += 1
                        continue
                    rec = {"status": "failed", "error": f"worker lost: {type(exc).__name__}: {exc}",
                           "traceback": ""}
                rec["attempts"] = attempts[name]
                if rec["status"] == "ok" and rec.get("hash") != hashes[name]:
                    messages.append(f"{name}: run hash {rec.get('hash')} differs from the batch's {hashes[name]}")
                rows[name] = _record_row(it, hashes[name], rec)
                counts["done" if rec["status"] == "ok" else "failed"] += 1
                _write_catalogue(cat_path, rows, order)
                say(state(min(slots, outstanding)))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    cat = _write_catalogue(cat_path, rows, order)
    say(state(0))
    rep = None
    if report:
        from .batch_report import write_batch_report

        rep = write_batch_report(cat, folder / "report.html", title=spec.name, description=spec.description)
    return BatchResult(path=folder, catalogue=cat, elapsed_s=time.perf_counter() - t_start, report=rep,
                       messages=messages)


# -- the command line ---------------------------------------------------------------------------------------------

def add_batch_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``twin batch`` arguments."""
    p.add_argument("spec", help="batch file (YAML), e.g. scenarios/batches/example_sweep.yaml")
    p.add_argument("--out", default="batches", help="folder of batch folders (default: batches)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, help="worker processes of the local cluster (default: the cores)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML comparison report")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    return p


def _print_progress(s: dict[str, Any]) -> None:
    """One progress line, redrawn in place."""
    eta = "—" if s["eta_s"] is None else f"{s['eta_s']:.0f} s"
    print(f"\r  done {s['done']:>4} (reused {s['reused']})  failed {s['failed']:>3}  running {s['running']:>3}  "
          f"remaining {s['remaining']:>4}  elapsed {s['elapsed_s']:6.1f} s  ETA {eta:<8}", end="", flush=True)


def summary_table(cat: pd.DataFrame, kpis: tuple[str, ...] = ("energy_cost_mad", "unserved_energy_mwh",
                                                              "water_shortfall_m3")) -> str:
    """The end-of-batch summary: one line per scenario (status, wall time, a few KPIs, error)."""
    cols = ["scenario", "status", "wall_s"] + [k for k in kpis if k in cat.columns]
    view = cat[cols].copy()
    view["error"] = cat["error"].str.slice(0, 60)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:,.4g}".format):
        return view.to_string(index=False)


def run_batch_cli(args: argparse.Namespace) -> int:
    """``twin batch``: run the batch, print the summary; exit code 0 when every scenario succeeded, else 1."""
    res = run_batch(args.spec, args.out, scheduler=args.scheduler, workers=args.workers,
                    progress=None if args.quiet else _print_progress, report=not args.no_report)
    if not args.quiet:
        print()
    print(summary_table(res.catalogue))
    for m in res.messages:
        print(f"  note: {m}")
    print(f"{res.n_ok} ok, {res.n_failed} failed of {len(res.catalogue)} in {res.elapsed_s:.1f} s; "
          f"catalogue: {res.path / 'catalogue.parquet'}" + (f"; report: {res.report}" if res.report else ""))
    return 0 if res.n_failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m scenarios.batch SPEC [...]`` (as ``twin batch``), or ``--serve`` (a scenario process)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return _serve_main()
    args = add_batch_arguments(argparse.ArgumentParser(prog="twin batch")).parse_args(argv)
    try:
        return run_batch_cli(args)
    except (ScenarioError, FileNotFoundError) as exc:
        print(f"twin batch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
