"""What consecutive scenarios of one process share, computed once: ``run_scenario(..., cache=ReuseCache())``.

A nightly sweep runs many scenarios that differ in a few numbers (PV and battery sizes, the EV share,
demand factors).  Profiled on Berkane's summer day (``twin run``, 27 s): the pump schedule takes 86 % (the
hydraulic surrogate and its MILP, 23 s), the water works' reference hydraulic day 4 % (1 s), loading the
dataset 4 %, the day-ahead model's Pyomo build, compilation and HiGHS solve 1 % (0.35 s).  A
:class:`ReuseCache` keeps, for the life of the process:

* the **base twins** by season (read only: ``apply_scenario`` copies before changing anything);
* the **pump schedule** and the **water works' reference day** by a digest of everything they read (the
  water network's tables, patterns, curves, controls and options — :func:`twin.digest.content_digest` —,
  the tariff and the options): a sweep over the grid never changes them, so they are computed once;
* the **day-ahead models** by their structure (:func:`solvers.day_ahead_structure`): a scenario whose model
  has the structure of one built before changes that model's numbers in place and HiGHS re-solves it
  (:func:`solvers.resolve_day_ahead`), from scratch so that the answer is exactly that of a new model
  (tested to the last bit): no Pyomo rebuild, no recompilation.  A PV size of 0 (no generator) or a battery
  of 0 MWh is another structure, and so is a water-demand factor (it changes the stations' kWh/m³).

Every entry is keyed by content, so a hit returns what the computation would return for this scenario,
never a neighbour's answer.  ``stats`` counts hits and misses by kind.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from twin.coupled import CoupledTwin
from twin.digest import content_digest

__all__ = ["ReuseCache"]

T = TypeVar("T")


class _Failure:
    """A kept exception (:meth:`ReuseCache.result`)."""

    def __init__(self, error: BaseException):
        self.error = error


class ReuseCache:
    """Per-process reuse of base twins, pump schedules, reference hydraulic days and day-ahead models (module
    docstring).  ``max_results``: results kept (least recently used dropped first); ``max_models``: day-ahead
    models kept (each holds its Pyomo model and HiGHS instance, ~10–50 MB for Berkane)."""

    def __init__(self, max_results: int = 16, max_models: int = 2):
        self.max_results = int(max_results)
        self.max_models = int(max_models)
        self._twins: dict[str, CoupledTwin] = {}
        self._results: OrderedDict[str, Any] = OrderedDict()
        self._models: OrderedDict[str, Any] = OrderedDict()
        self.stats: dict[str, list[int]] = {}

    def _count(self, kind: str, hit: bool) -> None:
        self.stats.setdefault(kind, [0, 0])[0 if hit else 1] += 1

    def base_twin(self, season: str) -> CoupledTwin:
        """The Berkane twin of ``season``, loaded once (callers must not change it)."""
        if season not in self._twins:
            from twin import load_berkane

            self._twins[season] = load_berkane(season)
            self._count("twin", False)
        else:
            self._count("twin", True)
        return self._twins[season]

    def result(self, kind: str, key_parts: tuple, compute: Callable[[], T],
               errors: tuple[type[BaseException], ...] = ()) -> T:
        """The value of ``compute()`` for inputs whose content is ``key_parts``, computed once.  An exception of
        a type in ``errors`` (one the inputs determine, e.g. an infeasible schedule) is kept and raised again
        for the same inputs; any other is not kept (the next call computes again)."""
        key = kind + ":" + content_digest(*key_parts)
        if key in self._results:
            self._results.move_to_end(key)
            self._count(kind, True)
            value = self._results[key]
            if isinstance(value, _Failure):
                raise value.error.with_traceback(None)
            return value
        self._count(kind, False)
        try:
            value = compute()
        except errors as exc:
            self._keep(key, _Failure(exc))
            raise
        self._keep(key, value)
        return value

    def _keep(self, key: str, value: Any) -> None:
        self._results[key] = value
        while len(self._results) > self.max_results:
            self._results.popitem(last=False)

    def day_ahead(self, grid, water, ev, options):
        """The joint day-ahead schedule (:func:`solvers.solve_day_ahead`), on a model of the same structure
        re-solved in place where one was built before (module docstring)."""
        from solvers import DispatchInputError, solve_day_ahead
        from solvers.day_ahead import day_ahead_structure, resolve_day_ahead

        key = day_ahead_structure(grid, water, ev, options)
        dm = self._models.pop(key, None)
        if dm is not None:
            try:
                sched = resolve_day_ahead(dm, grid, water, ev)
            except DispatchInputError:
                self._count("day_ahead_model", True)
                raise  # the model may be part-updated: it is not kept
            self._count("day_ahead_model", True)
        else:
            sched = solve_day_ahead(grid, water, ev, options)
            self._count("day_ahead_model", False)
        self._models[key] = sched.model
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)
        return sched

    def summary(self) -> dict[str, dict[str, int]]:
        """Hits and misses by kind."""
        return {k: {"hits": v[0], "misses": v[1]} for k, v in sorted(self.stats.items())}
