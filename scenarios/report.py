"""The report of a scenario run: PNG plots and one self-contained HTML page, built from the run folder alone.

A run folder holds ``kpis.json`` and Parquet tables under ``tables/`` (see :data:`TABLES`). This module reads
only those files (never the twin's model or the solvers), so a report can be rebuilt from an archived run:

    from scenarios.report import write_report
    write_report("runs/heatwave")          # -> runs/heatwave/report.html, plots in runs/heatwave/plots/

Any table may be absent (its analysis did not run): the section is then skipped and the page says so. Plots are
drawn on :class:`matplotlib.figure.Figure` objects (the Agg renderer, no pyplot state), at a fixed size and DPI,
without timestamps in the PNG metadata: the same run folder gives the same bytes. Every file is written
atomically (a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from twin.atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "TABLES",
    "SERVICE_PRESSURE_M",
    "format_kpi",
    "format_number",
    "kpi_unit",
    "plot_congested_links",
    "plot_dispatch",
    "plot_district_pressure",
    "plot_people_without_service",
    "plot_pump_schedule",
    "plot_storage",
    "plot_tank_levels",
    "plot_traffic",
    "plot_water_balance",
    "read_kpis",
    "read_tables",
    "write_report",
]

#: the tables a run folder may hold, under ``tables/<name>.parquet``
TABLES = ("energy_hourly", "generation", "generator_kind", "storage_soc", "storage_power", "water_hourly",
          "tank_levels", "tank_bounds", "district_pressure", "pump_schedule", "traffic_hourly", "links_peak",
          "comparison")
#: minimum service pressure drawn on the pressure plot (m)
SERVICE_PRESSURE_M = 20.0
DPI = 110
WIDE = (9.0, 4.2)  # inches: 990 × 462 px at DPI
WORST_DISTRICTS = 5
# KPI name suffix -> unit; the first match wins (``_veh_h`` before ``_h``)
_UNITS = (("_veh_h", "veh·h"), ("_mwh", "MWh"), ("_m3", "m³"), ("_mad", "MAD"), ("_t", "t"), ("_h", "h"))
_KIND_COLOURS = {"grid": "#7f7f7f", "pv": "#f2b701", "wind": "#4daf4a", "hydro": "#1f78b4", "gas": "#8c564b",
                 "diesel": "#6b3d2e", "storage": "#9467bd", "unclassified": "#bcbd22"}
_SPARE_COLOURS = ("#17becf", "#e377c2", "#2ca02c", "#d62728", "#ff7f0e", "#1f77b4", "#aec7e8", "#98df8a")

Tables = Mapping[str, pd.DataFrame]


class _Skip(Exception):
    """A section cannot be drawn from this run folder; the message says why (shown in the report)."""


# --------------------------------------------------------------------------------------------------- reading


def read_kpis(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's ``kpis.json`` (scenario, hash, season, description, kpis, timings, messages).

    Raises FileNotFoundError naming the folder when it holds no ``kpis.json`` (not a run folder), ValueError when
    the file is not a JSON object."""
    run = Path(run_dir)
    path = run / "kpis.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run} is not a scenario run folder: it has no kpis.json")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def read_tables(run_dir: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """The run's Parquet tables that exist, by name (see :data:`TABLES`); absent ones are left out.

    Raises ValueError naming the file when a table exists but cannot be read."""
    folder = Path(run_dir) / "tables"
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        if not path.is_file():
            continue
        try:
            out[name] = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ValueError(f"{path}: cannot read the table ({exc})") from exc
    return out


def _need(tables: Tables, name: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """Table ``name`` with ``columns``, or :class:`_Skip` saying which file or columns are missing."""
    if name not in tables:
        raise _Skip(f"tables/{name}.parquet is absent")
    df = tables[name]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise _Skip(f"tables/{name}.parquet lacks column(s) {', '.join(missing)}")
    if df.empty:
        raise _Skip(f"tables/{name}.parquet is empty")
    return df


# ------------------------------------------------------------------------------------------------ formatting


def kpi_unit(name: str) -> str:
    """Unit of a KPI from its name's suffix: _mwh → MWh, _m3 → m³, _mad → MAD, _t → t, _h → h, _veh_h → veh·h;
    "" otherwise."""
    low = name.lower()
    for suffix, unit in _UNITS:
        if low.endswith(suffix):
            return unit
    return ""


def format_number(value: Any) -> str:
    """A KPI value for people: thousands separators, 1–3 significant decimals; None and NaN → "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if not isinstance(value, float | np.floating):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    size = abs(v)
    if v == 0 or (v.is_integer() and size < 1e15):
        return f"{v:,.0f}"
    if size >= 10_000:
        return f"{v:,.0f}"
    if size >= 100:
        return f"{v:,.1f}"
    if size >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def format_kpi(name: str, value: Any) -> str:
    """``value`` formatted with the unit inferred from ``name`` (no unit after "n/a" or text)."""
    text = format_number(value)
    unit = kpi_unit(name)
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if unit and numeric and text != "n/a":
        return f"{text} {unit}"
    return text


def _flat_kpis(kpis: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(display name, name giving the unit, value) per KPI; nested dicts become ``name.key`` rows."""
    rows = []
    for name, value in kpis.items():
        if isinstance(value, Mapping):
            rows.extend((f"{name}.{key}", str(name), sub) for key, sub in value.items())
        else:
            rows.append((str(name), str(name), value))
    return rows


# ------------------------------------------------------------------------------------------------- plot helpers


def _hours(index: pd.Index) -> np.ndarray:
    """Hours (h) since the first row of a DatetimeIndex; other indexes are read as hours already."""
    if isinstance(index, pd.DatetimeIndex):
        return ((index - index[0]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
    return np.asarray(index, dtype=float)


def _step_h(index: pd.Index) -> float:
    """Length of one row (h): the median spacing of the index, 1 h for a single row."""
    x = _hours(index)
    return float(np.median(np.diff(x))) if len(x) > 1 else 1.0


def _when(index: pd.Index, pos: int) -> str:
    """The time of row ``pos`` as "HH:MM" (or "hour N" for a non-datetime index)."""
    t = index[pos]
    return f"{t:%H:%M}" if isinstance(t, pd.Timestamp) else f"hour {t}"


def _time_axis(ax: Axes, index: pd.Index) -> None:
    """Label the x axis with hours since the first row, ticks every 3 h over a day."""
    x = _hours(index)
    start = f" from {index[0]:%Y-%m-%d %H:%M}" if isinstance(index, pd.DatetimeIndex) and len(index) else ""
    ax.set_xlabel(f"hour{start}")
    if len(x) and x[-1] - x[0] <= 48:
        ax.set_xticks(np.arange(math.floor(x[0]), math.ceil(x[-1]) + 1, 3))
    ax.grid(True, alpha=0.3)


def _figure(size: tuple[float, float] = WIDE) -> Figure:
    """A new Agg-backed figure (no pyplot state) with constrained layout, size in inches."""
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _colours(names: Iterable[str]) -> dict[str, str]:
    """A colour per generator kind: fixed for known kinds, a spare palette in order for the others."""
    out, spare = {}, 0
    for name in names:
        if name in _KIND_COLOURS:
            out[name] = _KIND_COLOURS[name]
        else:
            out[name] = _SPARE_COLOURS[spare % len(_SPARE_COLOURS)]
            spare += 1
    return out


def _stack(ax: Axes, x: np.ndarray, frame: pd.DataFrame, colours: Mapping[str, str]) -> None:
    """Stacked areas of ``frame``'s columns: positive parts upwards from 0, negative parts downwards."""
    up = np.zeros(len(x))
    down = np.zeros(len(x))
    for col in frame.columns:
        v = frame[col].to_numpy(dtype=float)
        pos, neg = np.clip(v, 0.0, None), np.clip(v, None, 0.0)
        ax.fill_between(x, up, up + pos, color=colours[col], label=col, linewidth=0)
        if (neg < 0).any():
            ax.fill_between(x, down, down + neg, color=colours[col], linewidth=0)
        up += pos
        down += neg


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`, without metadata that would change between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------- plots


def _by_kind(generation: pd.DataFrame, kinds: pd.DataFrame | None) -> pd.DataFrame:
    """Generation (MW) summed per kind, kinds ordered by energy (largest first, at the bottom of the stack)."""
    kind = {}
    if kinds is not None and "kind" in kinds:  # ids matched as text: Parquet may have stringified one side
        kind = {str(g): str(k) for g, k in kinds["kind"].items()}
    labels = [kind.get(str(g), "unclassified") for g in generation.columns]
    grouped = generation.astype(float).T.groupby(labels).sum().T
    order = sorted(grouped.columns, key=lambda k: (-float(grouped[k].abs().sum()), k))
    return grouped[order]


def _electric_side_loads(energy: pd.DataFrame) -> pd.Series:
    """Pumping + treatment + EV charging (MW), the columns of them present."""
    cols = [c for c in ("pumping_mw", "treatment_mw", "ev_mw") if c in energy]
    return energy[cols].astype(float).sum(axis=1)


def plot_dispatch(generation: pd.DataFrame, kinds: pd.DataFrame | None = None, energy: pd.DataFrame | None = None,
                  storage_power: pd.DataFrame | None = None) -> Figure:
    """Dispatch stack: generation (MW, time × generator) stacked by kind, storage net discharge on top
    (charging below zero), and the total load line (``load_mw``, which includes pumping, treatment and EV
    charging) with the pumping + treatment + EV part dotted."""
    stack = _by_kind(generation, kinds)
    if storage_power is not None and storage_power.shape[1]:
        stack["storage (net discharge)"] = storage_power.astype(float).sum(axis=1).reindex(stack.index).fillna(0.0)
    x = _hours(stack.index)
    fig = _figure()
    ax = fig.add_subplot()
    _stack(ax, x, stack, _colours(stack.columns))
    if energy is not None and "load_mw" in energy:
        e = energy.reindex(stack.index)
        ax.plot(x, e["load_mw"].to_numpy(dtype=float), color="black", lw=1.8,
                label="total load (incl. pumping, treatment, EV)")
        side = _electric_side_loads(e)
        if side.abs().sum() > 0:
            ax.plot(x, side.to_numpy(), color="black", lw=1.2, ls=":", label="of which pumping + treatment + EV")
    ax.set_ylabel("MW")
    ax.set_title("Day-ahead dispatch by generator kind")
    ax.legend(loc="upper left", fontsize=8, ncol=2, framealpha=0.85)
    _time_axis(ax, stack.index)
    return fig


def plot_storage(soc: pd.DataFrame, power: pd.DataFrame | None = None) -> Figure:
    """State of charge (MWh) per storage unit; below it, when given, the power (MW, + discharge / − charge)."""
    rows = 2 if power is not None and power.shape[1] else 1
    fig = _figure((9.0, 5.6) if rows == 2 else WIDE)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    x = _hours(soc.index)
    for col in soc.columns:
        axes[0].plot(x, soc[col].to_numpy(dtype=float), lw=1.6, label=str(col))
    axes[0].set_ylabel("state of charge (MWh)")
    axes[0].set_title("Storage")
    axes[0].legend(fontsize=8, loc="best")
    axes[0].grid(True, alpha=0.3)
    if rows == 2:
        p = power.reindex(soc.index).astype(float)
        for col in p.columns:
            axes[1].step(x, p[col].to_numpy(), where="mid", lw=1.3, label=str(col))
        axes[1].axhline(0.0, color="black", lw=0.8)
        axes[1].set_ylabel("MW (+ discharge, − charge)")
    _time_axis(axes[-1], soc.index)
    return fig


def _tank_bounds(bounds: pd.DataFrame | None, tanks: pd.Index) -> pd.DataFrame:
    """min_level_m / max_level_m (m) per tank of ``tanks`` (NaN where unknown); ids matched as text."""
    cols = [c for c in ("min_level_m", "max_level_m") if bounds is not None and c in bounds]
    if not cols:
        return pd.DataFrame(index=tanks)
    by_name = bounds[cols].astype(float).set_axis([str(i) for i in bounds.index])
    by_name = by_name[~by_name.index.duplicated(keep="first")]
    return by_name.reindex([str(t) for t in tanks]).set_axis(tanks)


def plot_tank_levels(levels: pd.DataFrame, bounds: pd.DataFrame | None = None) -> Figure:
    """Water level (m) per tank over the day, with its min/max bounds (m) as dashed lines of the same colour."""
    fig = _figure((9.0, 4.6))
    ax = fig.add_subplot()
    x = _hours(levels.index)
    cycle = colormaps["tab10"].colors
    limits = _tank_bounds(bounds, levels.columns)
    for i, col in enumerate(levels.columns):
        colour = cycle[i % len(cycle)]
        ax.plot(x, levels[col].to_numpy(dtype=float), color=colour, lw=1.6, label=str(col))
        for bound in limits.columns:
            if pd.notna(limits.at[col, bound]):
                ax.axhline(float(limits.at[col, bound]), color=colour, lw=1.0, ls="--")
    ax.set_ylabel("level (m)")
    ax.set_title("Tank levels (dashed: min/max bounds)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _time_axis(ax, levels.index)
    return fig


def _worst_districts(pressure: pd.DataFrame, count: int = WORST_DISTRICTS) -> list:
    """The ``count`` districts with the lowest minimum pressure over the day, worst first (ties by id)."""
    low = pressure.astype(float).min()
    return sorted(low.index, key=lambda d: (low[d], str(d)))[:count]


def plot_district_pressure(pressure: pd.DataFrame, service_m: float = SERVICE_PRESSURE_M) -> Figure:
    """Left: the minimum pressure over the day per district (m, bars, red under ``service_m``). Right: hourly
    minimum pressure of the worst districts. Both with the service-pressure line (dashed)."""
    fig = _figure((10.0, 4.4))
    left, right = fig.subplots(1, 2, width_ratios=[1.1, 1.0])
    low = pressure.astype(float).min().sort_values(kind="stable")
    colours = ["#d62728" if v < service_m else "#4c72b0" for v in low.to_numpy()]
    left.bar(range(len(low)), low.to_numpy(), color=colours)
    left.set_xticks(range(len(low)), [str(d) for d in low.index], rotation=90, fontsize=7 if len(low) > 12 else 8)
    left.axhline(service_m, color="black", ls="--", lw=1.0, label=f"service pressure {service_m:g} m")
    left.set_ylabel("minimum pressure over the day (m)")
    left.set_title("Minimum pressure per district")
    left.legend(fontsize=8, loc="upper left")
    x = _hours(pressure.index)
    for d in _worst_districts(pressure):
        right.plot(x, pressure[d].to_numpy(dtype=float), lw=1.5, label=str(d))
    right.axhline(service_m, color="black", ls="--", lw=1.0)
    right.set_ylabel("minimum junction pressure (m)")
    right.set_title(f"The {min(WORST_DISTRICTS, pressure.shape[1])} worst districts, hourly")
    right.legend(fontsize=8, loc="best")
    _time_axis(right, pressure.index)
    return fig


def plot_congested_links(links: pd.DataFrame) -> Figure:
    """Road links at the peak hour on a lon/lat map, coloured by volume/capacity and thicker when more loaded
    (most loaded drawn on top), with a colour bar; equal distances on both axes (aspect 1/cos(latitude))."""
    df = links.assign(v_c=links["v_c"].astype(float).fillna(0.0)).sort_values("v_c", kind="stable")
    segments = np.stack([df[["from_lon", "from_lat"]].to_numpy(float), df[["to_lon", "to_lat"]].to_numpy(float)],
                        axis=1)
    vc = df["v_c"].to_numpy()
    norm = Normalize(vmin=0.0, vmax=max(1.2, float(vc.max())))
    cmap = colormaps["RdYlGn_r"]
    widths = 0.4 + 3.2 * np.clip(vc, 0.0, 1.5) / 1.5
    fig = _figure((7.6, 6.4))
    ax = fig.add_subplot()
    ax.add_collection(LineCollection(segments, colors=cmap(norm(vc)), linewidths=widths, capstyle="round"))
    lon, lat = segments[..., 0], segments[..., 1]
    pad_x, pad_y = 0.03 * np.ptp(lon) + 1e-4, 0.03 * np.ptp(lat) + 1e-4
    ax.set_xlim(lon.min() - pad_x, lon.max() + pad_x)
    ax.set_ylim(lat.min() - pad_y, lat.max() + pad_y)
    ax.set_aspect(1.0 / math.cos(math.radians(float(lat.mean()))))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.8, label="volume / capacity at peak")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(f"Road links at the peak hour: {int((vc >= 1.0).sum())} of {len(vc)} at v/c ≥ 1")
    ax.grid(True, alpha=0.25)
    return fig


def plot_water_balance(water: pd.DataFrame) -> Figure:
    """Water required vs delivered (m³/h) with the unserved part shaded (and the sources' supply dotted)."""
    x = _hours(water.index)
    req = water["required_m3h"].to_numpy(dtype=float)
    deliv = water["delivered_m3h"].to_numpy(dtype=float)
    unserved = (water["unserved_m3h"].to_numpy(dtype=float) if "unserved_m3h" in water
                else np.clip(req - deliv, 0.0, None))
    fig = _figure()
    ax = fig.add_subplot()
    ax.fill_between(x, deliv, deliv + unserved, color="#d62728", alpha=0.35, linewidth=0, label="unserved")
    ax.plot(x, req, color="black", ls="--", lw=1.4, label="required")
    ax.plot(x, deliv, color="#1f77b4", lw=1.8, label="delivered")
    if "source_m3h" in water:
        ax.plot(x, water["source_m3h"].to_numpy(dtype=float), color="#7f7f7f", ls=":", lw=1.3,
                label="supplied by sources")
    ax.set_ylabel("m³/h")
    ax.set_ylim(bottom=0.0)
    ax.set_title("Water balance")
    ax.legend(fontsize=8, loc="best")
    _time_axis(ax, water.index)
    return fig


def plot_people_without_service(people: pd.DataFrame) -> Figure:
    """People without water and/or without power per hour (columns of ``people``, persons)."""
    x = _hours(people.index)
    colours = {"people_without_water": "#1f77b4", "people_without_power": "#ff7f0e"}
    fig = _figure()
    ax = fig.add_subplot()
    for col in people.columns:
        ax.step(x, people[col].to_numpy(dtype=float), where="mid", lw=1.8, color=colours.get(col),
                label=str(col).replace("_", " "))
    ax.set_ylabel("people")
    ax.set_ylim(bottom=0.0)
    ax.set_title("People without service")
    ax.legend(fontsize=8, loc="best")
    _time_axis(ax, people.index)
    return fig


def plot_pump_schedule(schedule: pd.DataFrame) -> Figure:
    """Pump schedule as a heat map: relative speed per pump (rows) and hour (columns), 0 = off."""
    values = schedule.astype(float).to_numpy().T
    x = _hours(schedule.index)
    step = _step_h(schedule.index)
    fig = _figure((9.0, 1.6 + 0.32 * max(len(schedule.columns), 3)))
    ax = fig.add_subplot()
    image = ax.imshow(values, aspect="auto", cmap="Blues", vmin=0.0, vmax=max(1.0, float(np.nanmax(values))),
                      interpolation="nearest", extent=(x[0] - step / 2, x[-1] + step / 2, len(values) - 0.5, -0.5))
    ax.set_yticks(range(len(values)), [str(p) for p in schedule.columns], fontsize=8)
    fig.colorbar(image, ax=ax, label="relative speed")
    ax.set_title("Pump schedule")
    _time_axis(ax, schedule.index)
    ax.grid(False)
    return fig


def plot_traffic(traffic: pd.DataFrame) -> Figure:
    """Total system travel time (veh·h) per assigned hour, and the unserved trips below it."""
    fig = _figure((9.0, 5.0))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    x = np.asarray(traffic.index, dtype=float)
    top.bar(x, traffic["tstt_veh_h"].to_numpy(dtype=float), color="#4c72b0", width=0.8)
    top.set_ylabel("TSTT (veh·h)")
    top.set_title("Road traffic per assigned hour")
    top.grid(True, axis="y", alpha=0.3)
    bottom.bar(x, traffic["unserved_trips"].to_numpy(dtype=float), color="#d62728", width=0.8)
    bottom.set_ylabel("unserved trips")
    bottom.set_xlabel("hour of the day")
    bottom.grid(True, axis="y", alpha=0.3)
    return fig


# -------------------------------------------------------------------------------------------------- sections


def _dispatch(t: Tables) -> tuple[Figure, str]:
    """Dispatch stack with its caption (MWh generated, peak load)."""
    gen = _need(t, "generation")
    energy = t.get("energy_hourly")
    fig = plot_dispatch(gen, t.get("generator_kind"), energy, t.get("storage_power"))
    mwh = float(gen.astype(float).clip(lower=0.0).to_numpy().sum()) * _step_h(gen.index)
    caption = f"Day-ahead dispatch: {format_number(mwh)} MWh generated"
    if energy is not None and "load_mw" in energy and len(energy):
        load = energy["load_mw"].astype(float)
        pos = int(np.argmax(load.to_numpy()))
        caption += f"; peak load {format_number(float(load.iloc[pos]))} MW at {_when(energy.index, pos)}"
    if "generator_kind" not in t:
        caption += " (generator kinds unknown: tables/generator_kind.parquet is absent)"
    return fig, caption + "."


def _storage(t: Tables) -> tuple[Figure, str]:
    """State-of-charge plot with its caption (energy discharged when the power table is there)."""
    soc = _need(t, "storage_soc")
    if not soc.shape[1]:
        raise _Skip("the run has no storage units")
    power = t.get("storage_power")
    caption = f"State of charge of {soc.shape[1]} storage unit(s)"
    if power is not None and power.shape[1]:
        out = float(power.astype(float).clip(lower=0.0).to_numpy().sum()) * _step_h(power.index)
        caption += f"; {format_number(out)} MWh discharged over the run"
    return plot_storage(soc, power), caption + "."


def _tanks(t: Tables) -> tuple[Figure, str]:
    """Tank-level plot with its caption (the tank closest to its minimum bound)."""
    levels = _need(t, "tank_levels")
    bounds = t.get("tank_bounds")
    caption = f"Levels of {levels.shape[1]} tank(s)"
    limits = _tank_bounds(bounds, levels.columns)
    if "min_level_m" in limits:
        margin = levels.astype(float) - limits["min_level_m"]
        lowest = margin.min().dropna()
        if len(lowest):
            tank = sorted(lowest.index, key=lambda k: (lowest[k], str(k)))[0]
            pos = int(np.argmin(margin[tank].to_numpy()))
            caption += (f"; smallest margin above the minimum: {tank} at {format_number(float(lowest[tank]))} m "
                        f"({_when(levels.index, pos)})")
    else:
        caption += " (bounds unknown: tables/tank_bounds.parquet is absent)"
    return plot_tank_levels(levels, bounds), caption + "."


def _pressure(t: Tables) -> tuple[Figure, str]:
    """District-pressure plot with its caption (districts under the service pressure, the worst one)."""
    pressure = _need(t, "district_pressure")
    low = pressure.astype(float).min()
    worst = _worst_districts(pressure, 1)[0]
    pos = int(np.argmin(pressure[worst].to_numpy(dtype=float)))
    under = int((low < SERVICE_PRESSURE_M).sum())
    caption = (f"{under} of {len(low)} districts fall below {SERVICE_PRESSURE_M:g} m; the worst, {worst}, reaches "
               f"{format_number(float(low[worst]))} m at {_when(pressure.index, pos)}.")
    return plot_district_pressure(pressure), caption


def _links(t: Tables) -> tuple[Figure, str]:
    """Congested-links map with its caption (the most loaded corridors)."""
    links = _need(t, "links_peak", ("from_lon", "from_lat", "to_lon", "to_lat", "v_c"))
    vc = links["v_c"].astype(float)
    caption = f"{int((vc >= 1.0).sum())} of {len(links)} links at or over capacity at the peak hour"
    if "corridor" in links:
        named = links["corridor"].notna() & (links["corridor"].astype(str).str.strip() != "")
        top = vc[named].groupby(links.loc[named, "corridor"].astype(str)).max().dropna()
        names = sorted(top.index, key=lambda c: (-top[c], str(c)))[:3]
        if names:
            caption += "; most loaded corridors: " + ", ".join(f"{c} (v/c {top[c]:.2f})" for c in names)
    return plot_congested_links(links), caption + "."


def _water(t: Tables) -> tuple[Figure, str]:
    """Water-balance plot with its caption (volumes over the run, share unserved)."""
    water = _need(t, "water_hourly", ("required_m3h", "delivered_m3h"))
    step = _step_h(water.index)
    req = float(water["required_m3h"].astype(float).sum()) * step
    deliv = float(water["delivered_m3h"].astype(float).sum()) * step
    if "unserved_m3h" in water:
        uns = float(water["unserved_m3h"].astype(float).sum()) * step
    else:
        uns = float((water["required_m3h"] - water["delivered_m3h"]).clip(lower=0.0).sum()) * step
    share = f" ({100.0 * uns / req:.1f} %)" if req > 0 else ""
    caption = (f"{format_number(req)} m³ required, {format_number(deliv)} m³ delivered, "
               f"{format_number(uns)} m³ unserved{share}.")
    return plot_water_balance(water), caption


def _people(t: Tables) -> tuple[Figure, str]:
    """People-without-service plot with its caption; skipped when nobody lost water or power."""
    cols = {"water_hourly": "people_without_water", "energy_hourly": "people_without_power"}
    found = {col: t[name][col].astype(float) for name, col in cols.items() if name in t and col in t[name]}
    if not found:
        raise _Skip("neither tables/water_hourly.parquet nor tables/energy_hourly.parquet gives people without "
                    "service")
    people = pd.DataFrame(found)
    if not (people.fillna(0.0) > 0).any().any():
        raise _Skip("nobody was without water or power during the run")
    step = _step_h(people.index)
    parts = [f"{c.replace('people_without_', 'without ')}: peak {format_number(float(s.max()))} people, "
             f"{format_number(float(s.sum()) * step)} people·h" for c, s in people.items()]
    return plot_people_without_service(people), "; ".join(parts) + "."


def _pumps(t: Tables) -> tuple[Figure, str]:
    """Pump-schedule heat map with its caption (pump-hours running)."""
    schedule = _need(t, "pump_schedule")
    if not schedule.shape[1]:
        raise _Skip("the run has no pumps")
    running = float((schedule.astype(float) > 0).to_numpy().sum()) * _step_h(schedule.index)
    caption = f"{schedule.shape[1]} pump(s), {format_number(running)} pump-hours running."
    return plot_pump_schedule(schedule), caption


def _traffic(t: Tables) -> tuple[Figure, str]:
    """Traffic plot with its caption (TSTT over the assigned hours, worst hour)."""
    traffic = _need(t, "traffic_hourly", ("tstt_veh_h", "unserved_trips"))
    tstt = traffic["tstt_veh_h"].astype(float)
    caption = (f"{format_number(float(tstt.sum()))} veh·h over {len(traffic)} assigned hour(s); busiest hour "
               f"{traffic.index[int(np.argmax(tstt.to_numpy()))]}; "
               f"{format_number(float(traffic['unserved_trips'].astype(float).max()))} unserved trips at most.")
    return plot_traffic(traffic), caption


@dataclass(frozen=True)
class _Plot:
    """A plot of the report: its file stem, its heading and how to draw it (figure, caption) or skip it."""

    name: str
    title: str
    build: Callable[[Tables], tuple[Figure, str]]


#: the plots, in the report's order
PLOTS = (
    _Plot("dispatch", "Dispatch stack", _dispatch),
    _Plot("storage_soc", "Storage state of charge", _storage),
    _Plot("water_balance", "Water balance", _water),
    _Plot("tank_levels", "Tank levels", _tanks),
    _Plot("district_pressure", "Pressure by district", _pressure),
    _Plot("pump_schedule", "Pump schedule", _pumps),
    _Plot("people_without_service", "People without water or power", _people),
    _Plot("congested_links", "Congested road links", _links),
    _Plot("traffic", "Road traffic", _traffic),
)


@dataclass(frozen=True)
class _Section:
    """A drawn plot (``png`` set, ``text`` = caption) or a skipped one (``png`` None, ``text`` = reason)."""

    name: str
    title: str
    text: str
    png: bytes | None = None


# ------------------------------------------------------------------------------------------------- writing


def _render(plot: _Plot, tables: Tables, folder: Path) -> _Section:
    """Draw ``plot`` into ``folder/<name>.png`` (atomically), or remove a stale file when it is skipped."""
    target = folder / f"{plot.name}.png"
    try:
        fig, caption = plot.build(tables)
    except _Skip as skip:
        target.unlink(missing_ok=True)
        return _Section(plot.name, plot.title, str(skip))
    png = _png(fig)
    fig.clear()
    atomic_write_bytes(target, png)
    return _Section(plot.name, plot.title, caption, png)


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``plots/*.png`` and ``report.html`` (self-contained: plots embedded) into the run folder ``run_dir``;
    return the HTML file's path. Deterministic: the same folder gives the same bytes.

    Raises FileNotFoundError naming the folder when it has no ``kpis.json``."""
    run = Path(run_dir)
    meta = read_kpis(run)
    tables = read_tables(run)
    folder = run / "plots"
    folder.mkdir(exist_ok=True)
    sections = [_render(plot, tables, folder) for plot in PLOTS]
    return atomic_write_text(run / "report.html", _html(meta, tables.get("comparison"), sections))


# ---------------------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 1060px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; } th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; }
th { background: #f2f2f2; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: 0.95em; } .skip { color: #8a6d00; } .meta td:first-child { font-weight: bold; }
""".strip()


def _e(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """An HTML table from already formatted, unescaped cells; columns from ``numeric_from`` right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _header_html(meta: Mapping[str, Any]) -> str:
    """Title, description and the run's identity (hash, season; hours when recorded)."""
    name = meta.get("scenario", "(unnamed scenario)")
    keys = ["scenario", "hash", "season"] + (["hours"] if "hours" in meta else [])
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(meta.get(k, 'n/a'))}</td></tr>" for k in keys)
    return (f"<h1>Scenario report: {_e(name)}</h1>\n<p>{_e(meta.get('description', ''))}</p>\n"
            f'<table class="meta">\n{rows}\n</table>')


def _kpi_html(kpis: Mapping[str, Any]) -> str:
    """The KPI table (formatted values with units)."""
    rows = [[name, format_kpi(unit_name, value)] for name, unit_name, value in _flat_kpis(kpis)]
    if not rows:
        return "<h2>Key performance indicators</h2>\n<p>No KPIs were recorded.</p>"
    return "<h2>Key performance indicators</h2>\n" + _table(["KPI", "value"], rows)


def _comparison_html(comparison: pd.DataFrame | None) -> str:
    """The base-vs-scenario table (outage scenarios), or a note that the run has none."""
    if comparison is None:
        return ("<h2>Comparison with the normal day</h2>\n"
                '<p class="skip">Skipped: tables/comparison.parquet is absent.</p>')
    cols = [c for c in ("base", "scenario", "change") if c in comparison.columns]
    rows = [[str(name)] + [format_kpi(str(name), _scalar(comparison.at[name, c])) for c in cols]
            for name in comparison.index]
    return "<h2>Comparison with the normal day</h2>\n" + _table(["KPI", *cols], rows)


def _scalar(value: Any) -> Any:
    """A table cell as a plain Python value (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


def _plots_html(sections: list[_Section]) -> str:
    """Each drawn plot as an embedded PNG with its caption; each skipped one with its reason."""
    parts = []
    for s in sections:
        parts.append(f'<h2 id="{_e(s.name)}">{_e(s.title)}</h2>')
        if s.png is None:
            parts.append(f'<p class="skip">Skipped: {_e(s.text)}.</p>')
            continue
        data = base64.b64encode(s.png).decode("ascii")
        parts.append(f'<figure>\n<img src="data:image/png;base64,{data}" alt="{_e(s.title)}">\n'
                     f"<figcaption>{_e(s.text)}</figcaption>\n</figure>")
    return "\n".join(parts)


def _skipped_html(sections: list[_Section], comparison: pd.DataFrame | None) -> str:
    """The list of skipped sections with their reasons (or a line saying none was)."""
    items = [(s.title, s.text) for s in sections if s.png is None]
    if comparison is None:
        items.insert(0, ("Comparison with the normal day", "tables/comparison.parquet is absent"))
    if not items:
        return "<h2>Skipped sections</h2>\n<p>None: every section of the report was drawn.</p>"
    lis = "".join(f"<li><b>{_e(title)}</b>: {_e(reason)}</li>\n" for title, reason in items)
    return f'<h2>Skipped sections</h2>\n<ul class="skip">\n{lis}</ul>'


def _timings_html(timings: Mapping[str, Any]) -> str:
    """Time per step of the run (s) and the total."""
    if not timings:
        return "<h2>Timings</h2>\n<p>No timings were recorded.</p>"
    rows = [[str(step), f"{float(s):.2f} s"] for step, s in timings.items()]
    if not any(str(step).startswith("total") for step in timings):  # the run may record its own total
        rows.append(["total (sum of the steps)", f"{sum(float(s) for s in timings.values()):.2f} s"])
    return "<h2>Timings</h2>\n" + _table(["step", "time"], rows)


def _messages_html(messages: Iterable[Any]) -> str:
    """The run's messages (warnings, notes) as a list."""
    items = "".join(f"<li>{_e(m)}</li>\n" for m in messages)
    return "<h2>Messages</h2>\n" + (f"<ul>\n{items}</ul>" if items else "<p>No messages.</p>")


def _html(meta: Mapping[str, Any], comparison: pd.DataFrame | None, sections: list[_Section]) -> str:
    """The whole report page: inline CSS, embedded images, no external resource and no script."""
    body = "\n".join([
        _header_html(meta),
        _kpi_html(meta.get("kpis") or {}),
        _comparison_html(comparison),
        _plots_html(sections),
        _skipped_html(sections, comparison),
        _timings_html(meta.get("timings") or {}),
        _messages_html(meta.get("messages") or []),
    ])
    title = _e(f"Scenario report: {meta.get('scenario', '(unnamed scenario)')}")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>\n{_CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
