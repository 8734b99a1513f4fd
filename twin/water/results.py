"""Result object of a hydraulic simulation: time series tables plus convergence facts."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import atomic_write_text

__all__ = ["HydraulicResult"]


@dataclass
class HydraulicResult:
    """Hydraulic results at the reporting times.

    Time series (index = time in seconds since the start, columns = element ids):

    * ``node_head`` (m), ``node_pressure`` (m of water; tank level for tanks; for reservoirs the head
      above the base head, non-zero only under a head pattern), ``node_demand`` (m³/s; delivered
      demand + emitter flow at junctions, net inflow at tanks and reservoirs — negative when they
      supply the network, as EPANET reports it);
    * ``link_flow`` (m³/s, 0 for closed links), ``link_velocity`` (m/s; 0 for pumps),
      ``link_status`` (CLOSED / OPEN / ACTIVE), ``link_setting`` (pump speed, valve setting in SI;
      NaN where none applies);
    * ``pump_power`` (kW), ``pump_efficiency`` (fraction).

    ``steps``: one row per hydraulic solve (also those between reporting times):
    ``time_s``, ``iterations``, ``relative_error``, ``converged``, ``reported``.
    ``pump_energy``: per pump ``kwh``, ``hours_online``, ``average_efficiency``, ``average_kw``,
    ``peak_kw``, ``kwh_per_m3``, ``cost``; ``energy_demand_charge`` = demand charge × peak power.
    ``messages``: (time_s, element, text) warnings, each also emitted once as a
    :class:`~twin.water.hydraulics.HydraulicWarning` summary.
    """

    node_head: pd.DataFrame
    node_pressure: pd.DataFrame
    node_demand: pd.DataFrame
    link_flow: pd.DataFrame
    link_velocity: pd.DataFrame
    link_status: pd.DataFrame
    link_setting: pd.DataFrame
    pump_power: pd.DataFrame
    pump_efficiency: pd.DataFrame
    steps: pd.DataFrame
    pump_energy: pd.DataFrame
    energy_demand_charge: float
    demand_model: str
    wall_time_s: float
    halted_at_s: int | None = None
    messages: list[tuple[int, str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        """True when every hydraulic step met the accuracy and the run was not halted."""
        return bool(self.steps["converged"].all()) and self.halted_at_s is None

    TABLES = ("node_head", "node_pressure", "node_demand", "link_flow", "link_velocity", "link_status",
              "link_setting", "pump_power", "pump_efficiency", "steps", "pump_energy")

    def save(self, folder: str | os.PathLike) -> list[Path]:
        """Write every table as ``<name>.csv`` and ``summary.json`` into ``folder`` (each file atomically)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in self.TABLES:
            written.append(atomic_write_text(out / f"{name}.csv", getattr(self, name).to_csv()))
        written.append(atomic_write_text(out / "summary.json", json.dumps(self.summary(), indent=2)))
        return written

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable key figures (for batch catalogues and the HTTP API)."""

        def num(v: float) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        p = self.node_pressure
        return {
            "demand_model": self.demand_model,
            "converged": self.converged,
            "halted_at_s": self.halted_at_s,
            "reporting_times": int(len(self.node_head)),
            "hydraulic_steps": int(len(self.steps)),
            "max_iterations": int(self.steps["iterations"].max()) if len(self.steps) else 0,
            "min_pressure_m": num(float(p.min().min())) if p.size else None,
            "pump_kwh": num(float(self.pump_energy["kwh"].sum())) if len(self.pump_energy) else 0.0,
            "pump_cost": num(float(self.pump_energy["cost"].sum())) if len(self.pump_energy) else 0.0,
            "warnings": len(self.messages),
            "wall_time_s": self.wall_time_s,
        }
