"""The scenario schema: a scenario is data, validated before any computation (unknown keys rejected).

A scenario names its base twin and season, the hours to run, a list of typed modifications, the
analyses to run and the KPIs to report.  Times are hours from midnight of the scenario's day.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Scenario", "Modification", "ANALYSES", "KPI_NAMES", "RunOptions"]

ANALYSES = ("dispatch", "pump_schedule", "power_flow", "hydraulics", "traffic", "cascade")
KPI_NAMES = (
    "energy_cost_mad", "import_mwh", "pv_mwh", "pv_curtailed_mwh", "emissions_t", "losses_mwh", "pumping_mwh",
    "pumping_cost_mad", "ev_charged_mwh", "unserved_energy_mwh", "min_voltage_pu", "max_voltage_pu",
    "water_required_m3", "water_delivered_m3", "water_shortfall_m3", "people_hours_without_water",
    "peak_people_without_water", "people_hours_without_power", "peak_people_without_power", "min_service_pressure_m",
    "peak_hour_vehicle_hours", "max_v_c", "unserved_trips", "extra_vehicle_hours", "restoration_time_h",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Timed(_Strict):
    start_h: float = Field(0.0, ge=0.0, le=24.0, description="start, hours from midnight")
    end_h: float | None = Field(None, gt=0.0, le=24.0, description="end (h); omitted: not restored within the day")

    @model_validator(mode="after")
    def _order(self):
        if self.end_h is not None and not self.end_h > self.start_h:
            raise ValueError(f"end_h {self.end_h:g} must be after start_h {self.start_h:g}")
        return self


class ScaleDemand(_Strict):
    """Scale demand of one layer (loads, water demand or trips), in some districts or everywhere."""

    type: Literal["scale_demand"]
    layer: Literal["energy", "water", "roads"]
    factor: float = Field(gt=0.0, le=10.0)
    districts: list[str] = Field(default_factory=list, description="district ids; empty = the whole city")


class ScalePV(_Strict):
    """Scale the PV availability (a forecast error or a cloudier day): every PV generator's hourly p.u.
    output × factor, capped at 1."""

    type: Literal["scale_pv"]
    factor: float = Field(ge=0.0, le=3.0)


class ElementOutage(_Timed):
    """An element out of service: a grid branch, bus, generator, feeder or substation; a water link or tank;
    a road link or node."""

    type: Literal["outage"]
    layer: Literal["energy", "water", "roads"]
    element: str


class RoadClosure(_Timed):
    """Roads closed: listed links, or every link of a corridor (e.g. N2)."""

    type: Literal["road_closure"]
    links: list[str] = Field(default_factory=list)
    corridor: str | None = None

    @model_validator(mode="after")
    def _something(self):
        if not self.links and not self.corridor:
            raise ValueError("give links or a corridor")
        return self


class AddPV(_Strict):
    """A PV plant (MWp) on a grid bus, with the dataset's availability profile."""

    type: Literal["add_pv"]
    bus: str
    mw: float = Field(gt=0.0, le=500.0)
    id: str | None = None
    rooftop: bool = False


class AddBattery(_Strict):
    """A battery on a grid bus: power (MW) and energy (MWh)."""

    type: Literal["add_battery"]
    bus: str
    mw: float = Field(gt=0.0, le=500.0)
    mwh: float = Field(gt=0.0, le=5000.0)
    id: str | None = None


class AddEVHub(_Strict):
    """An EV charging hub on a grid bus serving the trips that end in some districts."""

    type: Literal["add_ev_hub"]
    id: str
    bus: str
    districts: list[str] = Field(min_length=1)


class EVGrowth(_Strict):
    """The share of vehicles that are electric (and, optionally, charging parameters)."""

    type: Literal["ev_growth"]
    share: float = Field(gt=0.0, le=1.0)
    kwh_per_session: float | None = Field(None, gt=0.0, le=100.0)


class Drought(_Strict):
    """A raw-water allowance at the treatment plant (m³/day): supply is rationed to it."""

    type: Literal["drought"]
    raw_water_m3_day: float = Field(gt=0.0)


class Heatwave(_Strict):
    """Electric load and water demand uplift (factors ≥ 1), air temperature rise (PV derate)."""

    type: Literal["heatwave"]
    load_factor: float = Field(1.15, ge=1.0, le=2.0)
    water_factor: float = Field(1.10, ge=1.0, le=2.0)
    temperature_rise_c: float = Field(4.0, ge=0.0, le=15.0)


Modification = Annotated[ScaleDemand | ScalePV | ElementOutage | RoadClosure | AddPV | AddBattery | AddEVHub | EVGrowth
                         | Drought | Heatwave, Field(discriminator="type")]


class RunOptions(_Strict):
    """How the analyses run: closed-loop rounds of the pump schedule, the peak hours assigned, the
    traffic assignment's relative gap, the grid emission factor (tCO₂/MWh imported) [E]."""

    pump_schedule_rounds: int = Field(2, ge=1, le=10)
    peak_hours: list[int] = Field(default_factory=lambda: [8, 18], description="hours assigned (0–23)")
    rel_gap: float = Field(1e-4, gt=0.0, le=0.1)
    emission_t_per_mwh: float = Field(0.7, ge=0.0, le=2.0)


class Scenario(_Strict):
    """A scenario: base twin, day, modifications, analyses and KPIs (module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    description: str = ""
    base: Literal["berkane"] = "berkane"
    season: Literal["summer", "winter"] = "summer"
    hours: int = Field(24, ge=1, le=24)
    modifications: list[Modification] = Field(default_factory=list)
    analyses: list[Literal["dispatch", "pump_schedule", "power_flow", "hydraulics", "traffic", "cascade"]] = Field(
        default_factory=lambda: list(ANALYSES))
    kpis: list[str] = Field(default_factory=list, description="KPI names to report; empty = all")
    options: RunOptions = Field(default_factory=RunOptions)

    @model_validator(mode="after")
    def _kpis_known(self):
        unknown = [k for k in self.kpis if k not in KPI_NAMES]
        if unknown:
            raise ValueError(f"unknown KPI {unknown[0]!r}; known: {', '.join(KPI_NAMES)}")
        bad = [h for h in self.options.peak_hours if not 0 <= h < self.hours]
        if bad:
            raise ValueError(f"peak hour {bad[0]} is outside the scenario's {self.hours} hours")
        return self
