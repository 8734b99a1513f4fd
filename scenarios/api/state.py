"""The twin's state from the city's sensors: measurements checked against the twin and stored, the latest value
of each element, and KPIs computed from them.

A measurement is ``{kind, element, time, value, unit?}``:

=============  ====================================  ======  =============================================
kind           element                               unit    accepted range
=============  ====================================  ======  =============================================
tank_level     a water tank                          m       0 … max_level_m + 0.05 m
feeder_load    a feeder, grid line/transformer, load MW      0 … 3 × rating (feeder: its loads' peak sum;
                                                             branch: rate A in MVA; load: its peak)
pv_output      a PV generator                        MW      0 … 1.05 × p_max_mw
traffic_count  a road link                           veh/h   0 … 3 × capacity_veh_h
=============  ====================================  ======  =============================================

``kW`` is accepted for the MW kinds (converted).  Each measurement is accepted or rejected on its own, with a
reason: unknown element, wrong unit, out of range, in the future (more than :data:`FUTURE_SKEW_S` ahead of the
service's clock), duplicate (the same element and time is stored, or given twice), late (older than the
element's latest accepted measurement).  A request's measurements are taken in time order, so a history can
be posted in one request.  The accepted ones are stored in one transaction with the state update: the state
never holds a rejected value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .store import Store, iso, utc_now

__all__ = ["Measurement", "MeasurementBatch", "ElementCatalogue", "catalogue", "ingest", "state_kpis",
           "FUTURE_SKEW_S", "UNITS"]

FUTURE_SKEW_S = 300.0
KINDS = ("tank_level", "feeder_load", "pv_output", "traffic_count")
UNITS = {"tank_level": "m", "feeder_load": "MW", "pv_output": "MW", "traffic_count": "veh/h"}
_FACTORS = {("MW", "kW"): 1e-3, ("MW", "MW"): 1.0, ("m", "m"): 1.0, ("veh/h", "veh/h"): 1.0}


class Measurement(BaseModel):
    """One sensor reading."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["tank_level", "feeder_load", "pv_output", "traffic_count"]
    element: str = Field(min_length=1, max_length=200, description="the element's id in the twin")
    time: AwareDatetime = Field(description="ISO-8601 time with a timezone, e.g. 2026-07-15T08:00:00+01:00")
    value: float = Field(description="in the kind's unit (m, MW, veh/h)")
    unit: str | None = Field(None, max_length=20, description="m, MW (or kW), veh/h; default the kind's unit")


class MeasurementBatch(BaseModel):
    """A request body of ``POST /state/measurements``."""

    model_config = ConfigDict(extra="forbid")

    measurements: list[Measurement] = Field(min_length=1, max_length=10_000)


@dataclass(frozen=True)
class ElementCatalogue:
    """Per kind: element id → (upper bound of the value, what the bound is), plus tank areas (m²) and
    capacities (m³), PV ratings (MW) and link capacities (veh/h) for the KPIs."""

    bounds: dict[str, dict[str, tuple[float, str]]]
    tank_area_m2: dict[str, float]
    tank_capacity_m3: dict[str, float]
    pv_rating_mw: dict[str, float]
    link_capacity_veh_h: dict[str, float]
    feeders: frozenset[str] = frozenset()  # the feeder ids among the feeder_load elements (not branches, loads)


@lru_cache(maxsize=1)
def catalogue() -> ElementCatalogue:
    """The elements measurements may name, from the Berkane twin (summer: the larger loads)."""
    from twin import load_berkane

    tw = load_berkane("summer")
    g, w, r = tw.grid, tw.water, tw.roads
    bounds: dict[str, dict[str, tuple[float, str]]] = {k: {} for k in KINDS}
    tank = w.tank
    for tid, row in tank.iterrows():
        bounds["tank_level"][str(tid)] = (float(row["max_level_m"]) + 0.05, "max_level_m + 0.05 m")
    ld = g.load
    load_bus = ld.groupby("bus")["p_mw"].sum()
    feeder = tw.bus_info["feeder"].astype(str)
    for fid in sorted(set(feeder[feeder.str.startswith("F_")])):
        peak = float(load_bus.reindex(feeder.index[feeder == fid]).fillna(0.0).sum())
        if peak > 0:
            bounds["feeder_load"][fid] = (3.0 * peak, "3 × the feeder's peak load")
    for table in ("line", "transformer"):
        for bid, row in g[table].iterrows():
            rate = float(row["rate_a_mva"])
            if math.isfinite(rate) and rate > 0:
                bounds["feeder_load"].setdefault(str(bid), (3.0 * rate, f"3 × the {table}'s rate A"))
    for lid, row in ld.iterrows():
        bounds["feeder_load"].setdefault(str(lid), (3.0 * max(float(row["p_mw"]), 0.01), "3 × the load's peak"))
    gen = g.generator
    pv = gen[gen["kind"].astype(str) == "pv"]
    for gid, row in pv.iterrows():
        bounds["pv_output"][str(gid)] = (1.05 * float(row["p_max_mw"]), "1.05 × p_max_mw")
    cap = r.link["capacity_veh_h"]
    for lid, c in cap.items():
        bounds["traffic_count"][str(lid)] = (3.0 * float(c), "3 × capacity_veh_h")
    area = (math.pi * tank["diameter_m"] ** 2 / 4.0).astype(float)
    return ElementCatalogue(bounds=bounds, tank_area_m2={str(k): float(v) for k, v in area.items()},
                            tank_capacity_m3={str(k): float(area[k] * tank.at[k, "max_level_m"]) for k in tank.index},
                            pv_rating_mw={str(k): float(v) for k, v in pv["p_max_mw"].items()},
                            link_capacity_veh_h={str(k): float(v) for k, v in cap.items()},
                            feeders=frozenset(feeder[feeder.str.startswith("F_")]))


def _check(m: Measurement, cat: ElementCatalogue, now: datetime) -> tuple[float | None, str, str]:
    """(value in the kind's unit or None, unit, reason if rejected)."""
    unit = UNITS[m.kind]
    bounds = cat.bounds[m.kind]
    if m.element not in bounds:
        from twin.coupled import nearest_ids

        return None, unit, f"unknown element: {m.kind} element {m.element!r} is not in the twin; nearest: " \
                           f"{nearest_ids(m.element, list(bounds))}"
    factor = _FACTORS.get((unit, m.unit or unit))
    if factor is None:
        return None, unit, f"wrong unit {m.unit!r} for {m.kind} (expected {unit})"
    if m.time > now + timedelta(seconds=FUTURE_SKEW_S):
        return None, unit, f"in the future: {m.time.isoformat()} is more than {FUTURE_SKEW_S:g} s ahead of " \
                           f"the service's clock ({iso(now)})"
    value = m.value * factor
    hi, what = bounds[m.element]
    if not 0.0 <= value <= hi:
        return None, unit, f"out of range: {value:g} {unit} is outside [0, {hi:g}] ({what})"
    return value, unit, ""


def ingest(store: Store, items: Iterable[Measurement], key_id: str, now: datetime | None = None
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check and store measurements (module docstring); return (accepted, rejected), each a list of
    ``{index, kind, element, time, value?, reason?}`` with the index in the request."""
    cat = catalogue()
    now = now or utc_now()
    indexed = sorted(enumerate(items), key=lambda p: (p[1].time.timestamp(), p[0]))
    accepted, rejected = [], []
    with store.measurement_writer() as w:
        seen: set[tuple[str, str, float]] = set()
        for i, m in indexed:
            head = {"index": i, "kind": m.kind, "element": m.element, "time": m.time.isoformat()}
            value, unit, reason = _check(m, cat, now)
            t_epoch = m.time.timestamp()
            if not reason:
                ident = (m.kind, m.element, t_epoch)
                latest = w.latest(m.kind, m.element)
                if ident in seen or w.exists(*ident):
                    reason = "duplicate: a measurement of this element at this time is stored already"
                elif latest is not None and t_epoch < latest:
                    reason = f"late: older than the element's latest accepted measurement ({iso_epoch(latest)})"
            if reason:
                rejected.append({**head, "reason": reason})
                continue
            seen.add((m.kind, m.element, t_epoch))
            w.add(m.kind, m.element, iso(m.time), t_epoch, float(value), unit, key_id)
            accepted.append({**head, "value": value, "unit": unit})
    accepted.sort(key=lambda d: d["index"])
    rejected.sort(key=lambda d: d["index"])
    return accepted, rejected


def iso_epoch(t: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC text."""
    from datetime import UTC

    return iso(datetime.fromtimestamp(t, UTC))


def state_kpis(latest: list[dict[str, Any]], cat: ElementCatalogue) -> dict[str, Any]:
    """KPIs of the latest values: stored water (m³, % of the measured tanks' capacity, and of all tanks), feeder
    load (MW, the sum of the measured feeders' latest values: branches and loads, which lie within feeders,
    are counted apart so that nothing is counted twice), PV output (MW, % of the measured generators'
    rating), count-weighted v/c of the counted links and the most loaded one; ``None`` where nothing is
    measured."""
    by = {k: [r for r in latest if r["kind"] == k] for k in KINDS}
    tanks = by["tank_level"]
    feeders = [r for r in by["feeder_load"] if r["element"] in cat.feeders]
    vol = sum(cat.tank_area_m2[r["element"]] * r["value"] for r in tanks if r["element"] in cat.tank_area_m2)
    cap_measured = sum(cat.tank_capacity_m3.get(r["element"], 0.0) for r in tanks)
    cap_all = sum(cat.tank_capacity_m3.values())
    pv = by["pv_output"]
    pv_mw = sum(r["value"] for r in pv)
    pv_rating = sum(cat.pv_rating_mw.get(r["element"], 0.0) for r in pv)
    counts = [(r["value"], r["value"] / cat.link_capacity_veh_h[r["element"]], r["element"])
              for r in by["traffic_count"] if cat.link_capacity_veh_h.get(r["element"], 0.0) > 0]
    total_count = sum(c for c, _, _ in counts)
    worst = max(counts, key=lambda x: x[1]) if counts else None
    times = [r["time"] for r in latest]
    return {
        "tanks_measured": len(tanks),
        "tank_volume_m3": vol if tanks else None,
        "tank_fill_percent_measured": 100.0 * vol / cap_measured if tanks and cap_measured > 0 else None,
        "tank_capacity_all_m3": cap_all,
        "feeders_measured": len(feeders),
        "feeder_load_mw": sum(r["value"] for r in feeders) if feeders else None,
        "branch_or_load_elements_measured": len(by["feeder_load"]) - len(feeders),
        "pv_generators_measured": len(pv),
        "pv_output_mw": pv_mw if pv else None,
        "pv_output_percent_of_rating": 100.0 * pv_mw / pv_rating if pv and pv_rating > 0 else None,
        "links_counted": len(counts),
        "count_weighted_v_c": (sum(c * vc for c, vc, _ in counts) / total_count) if total_count > 0 else None,
        "max_v_c": worst[1] if worst else None,
        "max_v_c_link": worst[2] if worst else None,
        "oldest_measurement": min(times) if times else None,
        "newest_measurement": max(times) if times else None,
    }
