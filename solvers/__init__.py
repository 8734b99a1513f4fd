"""Optimisation models of the twin (Pyomo, solved by HiGHS through one persistent route).

Importing :mod:`twin` never imports this package (or Pyomo).
"""

from .day_ahead import (
    DayAheadSchedule,
    EVCharging,
    WaterWorks,
    build_day_ahead_model,
    ev_sessions_from_arrivals,
    solve_day_ahead,
)
from .dispatch import (
    DispatchInputError,
    DispatchModel,
    DispatchOptions,
    DispatchSolution,
    DispatchState,
    build_dispatch_model,
    solve_dispatch,
    update_dispatch,
)
from .highs_route import HighsModel, SolveStatus
from .pump_scheduling import (
    PumpSchedule,
    PumpScheduleError,
    PumpScheduleOptions,
    build_pump_schedule_model,
    simulate_pump_schedule,
    solve_pump_schedule,
    time_of_use_tariff,
)
from .restoration import (
    RestorationError,
    RestorationModel,
    RestorationOptions,
    RestorationProblem,
    RestorationSolution,
    build_restoration_model,
    evaluate_routes,
    solve_restoration,
    travel_times_from_skim,
)
from .rolling import handover_state, rolling_day_ahead, rolling_dispatch
from .water_allocation import AllocationError, AllocationProblem, AllocationSolution, solve_allocation

__all__ = ["build_dispatch_model", "solve_dispatch", "update_dispatch", "DispatchOptions", "DispatchModel",
           "DispatchSolution", "DispatchInputError", "HighsModel", "SolveStatus", "rolling_dispatch",
           "AllocationProblem", "AllocationSolution", "AllocationError", "solve_allocation",
           "PumpSchedule", "PumpScheduleError", "PumpScheduleOptions", "build_pump_schedule_model",
           "simulate_pump_schedule", "solve_pump_schedule", "time_of_use_tariff", "DispatchState",
           "DayAheadSchedule", "EVCharging", "WaterWorks", "build_day_ahead_model", "ev_sessions_from_arrivals",
           "solve_day_ahead", "rolling_day_ahead", "handover_state", "RestorationError", "RestorationModel",
           "RestorationOptions", "RestorationProblem", "RestorationSolution", "build_restoration_model",
           "evaluate_routes", "solve_restoration", "travel_times_from_skim"]
