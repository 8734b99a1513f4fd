"""Resilience metrics: pure functions over result series (no twin, no solver).

A *performance* series is the share of service delivered per time step (1 = normal, 0 = none); a
*shortfall* series is what was not delivered per step (MW, m³/h, people, vehicle-hours per hour).  Time
steps are hours unless a ``step_h`` is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["unserved_energy_mwh", "unserved_volume_m3", "people_hours", "time_to_recover_h",
           "resilience_loss", "minimum_performance", "summarise_shortfall"]


def _steps(series: pd.Series, step_h: float | None) -> np.ndarray:
    if step_h is not None:
        return np.full(len(series), float(step_h))
    idx = series.index
    if isinstance(idx, pd.DatetimeIndex) and len(idx) > 1:
        d = np.diff(idx).astype("timedelta64[ns]").astype(np.int64) / 3.6e12
        return np.append(d, d[-1])
    return np.ones(len(series))


def unserved_energy_mwh(shortfall_mw: pd.Series | pd.DataFrame, step_h: float | None = None) -> float:
    """Energy not served (MWh): Σ_t shortfall_t (MW) · Δt (h), over all columns of a frame."""
    s = shortfall_mw.sum(axis=1) if isinstance(shortfall_mw, pd.DataFrame) else shortfall_mw
    return float((s.to_numpy(float).clip(min=0) * _steps(s, step_h)).sum())


def unserved_volume_m3(shortfall_m3h: pd.Series | pd.DataFrame, step_h: float | None = None) -> float:
    """Water not delivered (m³): Σ_t shortfall_t (m³/h) · Δt (h)."""
    return unserved_energy_mwh(shortfall_m3h, step_h)


def people_hours(affected: pd.Series | pd.DataFrame, step_h: float | None = None) -> float:
    """Person-hours without service: Σ_t people_t · Δt."""
    return unserved_energy_mwh(affected, step_h)


def time_to_recover_h(shortfall: pd.Series, start: object | None = None, tol: float = 1e-6,
                      step_h: float | None = None) -> float:
    """Hours from ``start`` (default the first step with a shortfall) to the end of the last step with a
    shortfall above ``tol``; 0 when there is none; ``inf`` when the series ends still short."""
    vals = shortfall.to_numpy(float)
    bad = np.flatnonzero(vals > tol)
    if not len(bad):
        return 0.0
    steps = _steps(shortfall, step_h)
    ends = np.cumsum(steps)
    starts = ends - steps
    t0 = starts[bad[0]] if start is None else starts[shortfall.index.get_loc(start)]
    if bad[-1] == len(vals) - 1:
        return float("inf")
    return float(ends[bad[-1]] - t0)


def resilience_loss(performance: pd.Series, step_h: float | None = None) -> float:
    """The 'resilience triangle': Σ_t (1 − performance_t) · Δt, in hours of lost full service."""
    p = performance.to_numpy(float)
    return float(((1.0 - np.clip(p, 0.0, 1.0)) * _steps(performance, step_h)).sum())


def minimum_performance(performance: pd.Series) -> float:
    """The deepest point of the performance curve (fraction of normal service)."""
    return float(np.clip(performance.to_numpy(float), 0.0, 1.0).min()) if len(performance) else 1.0


def summarise_shortfall(shortfall: pd.Series, baseline: pd.Series, step_h: float | None = None) -> dict[str, float]:
    """Total shortfall, peak shortfall, lost share of the baseline and recovery time of one service."""
    base = float((baseline.to_numpy(float) * _steps(baseline, step_h)).sum())
    total = unserved_energy_mwh(shortfall, step_h)
    return {"total": total, "peak": float(shortfall.max()) if len(shortfall) else 0.0,
            "share_lost": total / base if base > 0 else 0.0, "recovery_h": time_to_recover_h(shortfall, step_h=step_h)}
