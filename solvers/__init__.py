"""Optimisation models of the twin (Pyomo, solved by HiGHS through one persistent route).

Importing :mod:`twin` never imports this package (or Pyomo).
"""

from .dispatch import (
    DispatchInputError,
    DispatchModel,
    DispatchOptions,
    DispatchSolution,
    build_dispatch_model,
    solve_dispatch,
    update_dispatch,
)
from .highs_route import HighsModel, SolveStatus
from .rolling import rolling_dispatch
from .water_allocation import AllocationError, AllocationProblem, AllocationSolution, solve_allocation

__all__ = ["build_dispatch_model", "solve_dispatch", "update_dispatch", "DispatchOptions", "DispatchModel",
           "DispatchSolution", "DispatchInputError", "HighsModel", "SolveStatus", "rolling_dispatch",
           "AllocationProblem", "AllocationSolution", "AllocationError", "solve_allocation"]
