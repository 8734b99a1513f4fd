"""The one HiGHS route: a Pyomo model handed to ``highspy`` through Pyomo's standard-form compiler.

Linear models (and a diagonal quadratic objective passed alongside: a convex QP).

One ``passModel`` call instead of building the model row by row through a solver interface;
the :class:`HighsModel` keeps the HiGHS instance, so bounds and costs can be changed in place and the
model re-solved from its last basis (persistent route for rolling horizons and scenario sweeps).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

__all__ = ["HighsModel", "SolveStatus", "new_highs"]


def new_highs() -> highspy.Highs:
    """A HiGHS instance, without the banner its constructor prints on the C-level standard output (it
    would land in the middle of a progress display); output stays off until a caller turns it on."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no file descriptor 1 to silence: construct as is
        saved = None
    if saved is None:
        h = highspy.Highs()
    else:
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


@dataclass
class SolveStatus:
    """How a solve ended: ``status`` (HiGHS model status text), ``optimal``, ``objective``, timings (s)."""

    status: str
    optimal: bool
    objective: float
    iterations: int
    timings: dict[str, float] = field(default_factory=dict)
    feasible: bool = False  # a primal solution is at hand (optimal, or an incumbent at a time limit)
    mip_gap: float = 0.0  # relative gap of that solution (MILP)


class HighsModel:
    """A linear Pyomo model compiled once into a HiGHS instance.

    ``column(var)`` / ``row(con)`` give a component's position; after :meth:`solve`, ``x`` holds the
    primal values (column order) and ``row_dual(con)`` the duals of a constraint (HiGHS sign
    convention: the change of the objective per unit increase of the row's bound).
    """

    def __init__(self, model: pyo.ConcreteModel, *, time_limit_s: float | None = None, threads: int = 1,
                 output: bool = False, quadratic: list | None = None):
        t0 = time.perf_counter()
        repn = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=None)
        t1 = time.perf_counter()
        self.columns = repn.columns
        self._col = {id(v): i for i, v in enumerate(repn.columns)}
        self._rows: dict[int, list[int]] = {}
        for i, r in enumerate(repn.rows):
            self._rows.setdefault(id(r.constraint), []).append(i)
        n, m = len(repn.columns), len(repn.rows)
        a = repn.A.tocsc()
        lower = np.array([-np.inf if v.lb is None else v.lb for v in repn.columns], float)
        upper = np.array([np.inf if v.ub is None else v.ub for v in repn.columns], float)
        bound = np.array([r.bound_type for r in repn.rows], int)
        rhs = np.asarray(repn.rhs, float)
        row_lo = np.where(bound <= 0, rhs, -np.inf)  # -1: row >= rhs, 0: row == rhs
        row_hi = np.where(bound >= 0, rhs, np.inf)   # 1: row <= rhs
        obj = model.component_data_objects(pyo.Objective, active=True)
        self.sense = next(iter(obj)).sense
        c = np.asarray(repn.c.toarray()).ravel() if repn.c.shape[0] else np.zeros(n)
        self.offset = float(repn.c_offset[0]) if len(repn.c_offset) else 0.0
        h = new_highs()
        h.setOptionValue("output_flag", bool(output))
        h.setOptionValue("threads", int(threads))
        if time_limit_s is not None:
            h.setOptionValue("time_limit", float(time_limit_s))
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = m
        lp.col_cost_ = c if self.sense == pyo.minimize else -c
        lp.col_lower_ = lower
        lp.col_upper_ = upper
        lp.row_lower_ = row_lo
        lp.row_upper_ = row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data.astype(float)
        lp.offset_ = self.offset if self.sense == pyo.minimize else -self.offset
        self.integer = np.array([v.is_integer() or v.is_binary() for v in repn.columns], bool)
        if self.integer.any():
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                               for i in self.integer]
        self.col_lower, self.col_upper = lower, upper
        h.passModel(lp)
        if quadratic:  # objective + Σ q_j x_j²: HiGHS takes ½ xᵀQx with Q diagonal = 2 q
            diag = np.zeros(n)
            for var, q in quadratic:
                diag[self._col[id(var)]] += 2.0 * q if self.sense == pyo.minimize else -2.0 * q
            cols = np.flatnonzero(diag)
            hess = highspy.HighsHessian()
            hess.dim_ = n
            hess.format_ = highspy.HessianFormat.kTriangular
            start = np.zeros(n + 1, dtype=np.int32)
            start[cols + 1] = 1
            hess.start_ = np.cumsum(start).astype(np.int32)
            hess.index_ = cols.astype(np.int32)
            hess.value_ = diag[cols]
            h.passHessian(hess)
        self.highs = h
        self.x = np.full(n, np.nan)
        self.row_duals = np.full(m, np.nan)
        self._solved = False
        self.timings = {"compile_s": t1 - t0, "pass_s": time.perf_counter() - t1}

    def column(self, var) -> int:
        return self._col[id(var)]

    def columns_of(self, vars_) -> np.ndarray:
        """Column positions of an iterable of variables (e.g. ``model.p.values()``)."""
        return np.fromiter((self._col[id(v)] for v in vars_), dtype=np.int64)

    def release_components(self) -> None:
        """Forget the Pyomo components (columns, rows): positions must then come from an index kept elsewhere."""
        self.columns = []
        self._col = {}
        self._rows = {}

    def values_of(self, vars_) -> np.ndarray:
        """Solution values of an iterable of variables (a fixed variable, which the compiler eliminates,
        gives its fixed value)."""
        return np.fromiter((self.x[self._col[id(v)]] if id(v) in self._col else v.value for v in vars_), dtype=float)

    def rows_of(self, con) -> list[int]:
        """Row positions of a constraint (two for a ranged constraint)."""
        return self._rows.get(id(con), [])

    def solve(self, mip_gap: float | None = None, mip_duals: bool = True, warm: bool = True) -> SolveStatus:
        """Solve (a MILP when the model has integer variables, to ``mip_gap``).  After a MILP, with
        ``mip_duals``, the integers are fixed at their optimum and the LP re-solved for duals (prices).
        A re-solve starts from the last basis (``warm``) or from scratch (``warm=False``: the same answer as a
        new instance of the same LP, whatever was solved before; degenerate LPs have several optimal
        vertices, and a warm start may end at another one)."""
        t0 = time.perf_counter()
        if mip_gap is not None:
            self.highs.setOptionValue("mip_rel_gap", float(mip_gap))
        if self._solved and not warm:
            self.highs.clearSolver()
        elif self._solved and not self.integer.any():
            # warm re-solve: restart from the last basis with Devex pricing (HiGHS' default dual steepest edge
            # would first compute exact weights for every row of a non-slack basis: seconds on case1354pegase)
            basis = self.highs.getBasis()
            self.highs.clearSolver()
            self.highs.setOptionValue("simplex_dual_edge_weight_strategy", 1)
            self.highs.setBasis(basis)
        self.highs.run()
        self._solved = True
        if self.integer.any():
            result = self._finish(t0)
            if result.optimal and mip_duals:
                self._fixed_lp_duals()
            return result
        return self._finish(t0)

    def _fixed_lp_duals(self) -> None:
        h = self.highs
        cols = np.flatnonzero(self.integer).astype(np.int32)
        x = np.round(self.x[cols])
        cont = np.array([highspy.HighsVarType.kContinuous] * len(cols))
        h.changeColsIntegrality(len(cols), cols, cont)
        h.changeColsBounds(len(cols), cols, x, x)
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            duals = np.asarray(h.getSolution().row_dual)
            self.row_duals = duals if self.sense == pyo.minimize else -duals
        h.changeColsBounds(len(cols), cols, self.col_lower[cols], self.col_upper[cols])
        h.changeColsIntegrality(len(cols), cols, np.array([highspy.HighsVarType.kInteger] * len(cols)))

    def _finish(self, t0: float) -> SolveStatus:
        status = self.highs.getModelStatus()
        text = self.highs.modelStatusToString(status)
        optimal = status == highspy.HighsModelStatus.kOptimal
        info = self.highs.getInfo()
        feasible = optimal or int(info.primal_solution_status) == 2  # 2: a feasible point (e.g. a MIP incumbent)
        self.mip_gap = float(info.mip_gap) if self.integer.any() and feasible else 0.0
        if feasible:
            sol = self.highs.getSolution()
            self.x = np.asarray(sol.col_value)
            if optimal:
                duals = np.asarray(sol.row_dual)
                self.row_duals = duals if self.sense == pyo.minimize else -duals
        obj = info.objective_function_value if self.sense == pyo.minimize else -info.objective_function_value
        return SolveStatus(status=text, optimal=optimal, objective=float(obj) if feasible else float("nan"),
                           iterations=int(info.simplex_iteration_count + info.ipm_iteration_count),
                           timings={"solve_s": time.perf_counter() - t0}, feasible=bool(feasible),
                           mip_gap=self.mip_gap)

    def set_col_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Change variable bounds in place (keeps the basis for a warm re-solve)."""
        cols = np.asarray(cols, np.int32)
        self.highs.changeColsBounds(len(cols), cols, np.asarray(lower, float), np.asarray(upper, float))

    def set_costs(self, cols: np.ndarray, costs: np.ndarray) -> None:
        """Change objective coefficients in place."""
        cols = np.asarray(cols, np.int32)
        c = np.asarray(costs, float)
        self.highs.changeColsCost(len(cols), cols, c if self.sense == pyo.minimize else -c)

    def set_row_bounds(self, rows: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        rows = np.asarray(rows, np.int32)
        self.highs.changeRowsBounds(len(rows), rows, np.asarray(lower, float), np.asarray(upper, float))
