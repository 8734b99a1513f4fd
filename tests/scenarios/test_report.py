"""The scenario report: plots and a self-contained HTML page built from a synthetic run folder."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.report import (
    PLOTS,
    SERVICE_PRESSURE_M,
    format_kpi,
    plot_congested_links,
    plot_dispatch,
    plot_district_pressure,
    plot_tank_levels,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KPIS = {"unserved_energy_mwh": 12.3456, "unserved_water_m3": 4567.0, "energy_cost_mad": 1234567.8,
        "co2_t": 0.5, "restoration_time_h": 6.0, "extra_vehicle_hours_veh_h": 321.25, "peak_people_without_water": 1500,
        "restoration_time_overall_h": None}
EXPECTED = {"unserved_energy_mwh": "12.35 MWh", "unserved_water_m3": "4,567 m³", "energy_cost_mad": "1,234,568 MAD",
            "co2_t": "0.5 t", "restoration_time_h": "6 h", "extra_vehicle_hours_veh_h": "321.2 veh·h",
            "peak_people_without_water": "1,500", "restoration_time_overall_h": "n/a"}


def _hourly(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    idx = pd.date_range("2030-07-15", periods=24, freq="h", name="time")
    return pd.DataFrame(columns, index=idx)


def _tables() -> dict[str, pd.DataFrame]:
    """Small tables with the run-folder contract's columns (24 hourly rows)."""
    h = np.arange(24, dtype=float)
    pv = np.clip(np.sin((h - 6) / 12 * math.pi), 0, None) * 8.0
    load = 30 + 10 * np.sin((h - 9) / 24 * 2 * math.pi)
    pumping, ev = np.where(h < 6, 2.0, 0.5), np.where(h > 17, 1.5, 0.2)
    charge = np.where((h >= 10) & (h < 14), -2.0, np.where((h >= 18) & (h < 22), 2.0, 0.0))
    grid = load - pv - charge
    people_w = np.where((h >= 8) & (h < 12), 1200.0, 0.0)
    req = 900 + 300 * np.sin(h / 24 * 2 * math.pi)
    deliv = req - np.where(people_w > 0, 150.0, 0.0)
    t = {
        "energy_hourly": _hourly({"load_mw": load, "served_mw": load, "unserved_mw": 0 * h, "generation_mw": grid + pv,
                                  "pv_mw": pv, "losses_mw": 0.02 * load, "pumping_mw": pumping,
                                  "treatment_mw": 0.3 + 0 * h, "ev_mw": ev, "vmin_pu": 0.97 + 0 * h,
                                  "vmax_pu": 1.03 + 0 * h, "people_without_power": np.where(h == 20, 300.0, 0.0)}),
        "generation": _hourly({"G_GRID": grid * 0.7, "G_GRID2": grid * 0.3, "PV_PLANT": pv * 0.8, "PV_ROOF": pv * 0.2}),
        "generator_kind": pd.DataFrame({"kind": ["grid", "grid", "pv", "pv"]},
                                       index=pd.Index(["G_GRID", "G_GRID2", "PV_PLANT", "PV_ROOF"], name="generator")),
        "storage_soc": _hourly({"BESS_1": 4 - np.cumsum(charge) * 0.9, "BESS_2": 2 - np.cumsum(charge) * 0.3}),
        "storage_power": _hourly({"BESS_1": charge * 0.75, "BESS_2": charge * 0.25}),
        "water_hourly": _hourly({"source_m3h": deliv + 20, "required_m3h": req, "delivered_m3h": deliv,
                                 "unserved_m3h": req - deliv, "tank_change_m3h": 20 + 0 * h,
                                 "people_without_water": people_w}),
        "tank_levels": _hourly({f"T{i}": 3 + i * 0.5 + np.sin(h / 4 + i) for i in range(3)}),
        "tank_bounds": pd.DataFrame({"min_level_m": [1.0, 1.5, 2.0], "max_level_m": [6.0, 6.5, 7.0]},
                                    index=pd.Index([f"T{i}" for i in range(3)], name="tank")),
        "district_pressure": _hourly({f"D{i:02d}": 35 - 2.5 * i + 5 * np.cos(h / 24 * 2 * math.pi + i)
                                      for i in range(8)}),
        "pump_schedule": _hourly({f"P{i}": np.where((h + i) % 5 < 3, 0.6 + 0.1 * i, 0.0) for i in range(4)}),
        "traffic_hourly": pd.DataFrame({"tstt_veh_h": [800.0, 2100.0, 1500.0, 2600.0],
                                        "unserved_trips": [0, 12, 0, 30]}, index=pd.Index([7, 8, 12, 18], name="hour")),
        "comparison": pd.DataFrame({"base": [0.0, 0.0], "scenario": [12.3456, 4567.0], "change": [12.3456, 4567.0]},
                                   index=pd.Index(["unserved_energy_mwh", "unserved_water_m3"], name="kpi")),
    }
    rng = np.random.default_rng(7)
    lon0, lat0 = rng.uniform(-2.35, -2.28, 40), rng.uniform(34.90, 34.96, 40)
    vc = np.linspace(0.1, 1.4, 40)
    t["links_peak"] = pd.DataFrame({"from_lon": lon0, "from_lat": lat0, "to_lon": lon0 + rng.normal(0, 0.004, 40),
                                    "to_lat": lat0 + rng.normal(0, 0.004, 40), "flow_veh_h": vc * 900,
                                    "capacity_veh_h": 900.0 + 0 * vc, "v_c": vc,
                                    "corridor": [f"C{i % 5}" for i in range(40)]},
                                   index=pd.Index([f"L{i}" for i in range(40)], name="link"))
    return t


def _make_run(folder: Path) -> Path:
    (folder / "tables").mkdir(parents=True)
    meta = {"scenario": "heatwave-july", "hash": "3fa9c1e07b2d", "season": "summer",
            "description": "A July heatwave: +12 % load, PV derated.", "kpis": KPIS,
            "timings": {"energy": 1.25, "water": 3.5}, "messages": ["tank T2 reached its minimum at 14:00"]}
    (folder / "kpis.json").write_text(json.dumps(meta), encoding="utf-8")
    for name, df in _tables().items():
        df.to_parquet(folder / "tables" / f"{name}.parquet")
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    run = _make_run(tmp_path_factory.mktemp("run") / "heatwave")
    write_report(run)
    return run


def test_every_plot_is_a_small_valid_png(full_run):
    for plot in PLOTS:
        data = (full_run / "plots" / f"{plot.name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC), plot.name
        assert 5_000 < len(data) < 150_000, (plot.name, len(data))


def test_html_is_self_contained_and_complete(full_run):
    page = (full_run / "report.html").read_text(encoding="utf-8")
    for text in ("heatwave-july", "3fa9c1e07b2d", "summer", "A July heatwave", "tank T2 reached its minimum"):
        assert text in page
    for name, shown in EXPECTED.items():
        assert re.search(rf"<td>{name}</td><td[^>]*>{re.escape(shown)}</td>", page), (name, shown)
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)) == len(PLOTS)
    assert "http" not in page and "<script" not in page and "<link" not in page
    assert "<td>total (sum of the steps)</td><td class=\"num\">4.75 s</td>" in page
    assert "Comparison with the normal day" in page and "Skipped:" not in page
    assert "None: every section of the report was drawn." in page
    assert "most loaded corridors: C4 (v/c 1.40)" in page and "8 MWh discharged" in page
    assert "600 m³ unserved (2.8 %)" in page


def test_report_is_deterministic(full_run, tmp_path):
    copy = tmp_path / "again"
    shutil.copytree(full_run, copy)
    write_report(copy)
    assert (copy / "report.html").read_bytes() == (full_run / "report.html").read_bytes()
    for plot in PLOTS:
        png = f"plots/{plot.name}.png"
        assert (copy / png).read_bytes() == (full_run / png).read_bytes(), png


def test_missing_tables_are_reported_as_skipped(tmp_path):
    run = _make_run(tmp_path / "partial")
    (run / "plots").mkdir()
    for stale in ("dispatch", "congested_links", "traffic"):  # left by an earlier report of this folder
        (run / "plots" / f"{stale}.png").write_bytes(PNG_MAGIC)
    for name in ("generation", "links_peak", "traffic_hourly", "comparison", "tank_bounds", "storage_power"):
        (run / "tables" / f"{name}.parquet").unlink()
    page = write_report(run).read_text(encoding="utf-8")
    for reason in ("tables/generation.parquet is absent", "tables/links_peak.parquet is absent",
                   "tables/traffic_hourly.parquet is absent", "tables/comparison.parquet is absent"):
        assert reason in page
    skipped = page.split("<h2>Skipped sections</h2>")[1].split("<h2>")[0]
    for title in ("Dispatch stack", "Congested road links", "Road traffic", "Comparison with the normal day"):
        assert title in skipped
    assert "Tank levels" not in skipped and "bounds unknown" in page
    assert page.count('<img src="data:image/png;base64,') == len(PLOTS) - 3
    for stale in ("dispatch", "congested_links", "traffic"):
        assert not (run / "plots" / f"{stale}.png").exists()


def test_people_plot_skipped_when_nobody_lost_service(tmp_path):
    run = _make_run(tmp_path / "calm")
    for name in ("generation", "storage_soc", "tank_levels", "district_pressure", "pump_schedule", "links_peak",
                 "traffic_hourly"):  # only the two tables this test is about (and a faster report)
        (run / "tables" / f"{name}.parquet").unlink()
    for name, col in (("water_hourly", "people_without_water"), ("energy_hourly", "people_without_power")):
        path = run / "tables" / f"{name}.parquet"
        df = pd.read_parquet(path)
        df[col] = 0.0
        df.to_parquet(path)
    page = write_report(run).read_text(encoding="utf-8")
    assert "nobody was without water or power" in page
    assert not (run / "plots" / "people_without_service.png").exists()
    assert (run / "plots" / "water_balance.png").exists()


def test_missing_kpis_names_the_folder(tmp_path):
    run = tmp_path / "not-a-run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="not-a-run.*kpis.json"):
        write_report(run)


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("unserved_energy_mwh", 0.01234, "0.0123 MWh"), ("trips_veh_h", 1e6, "1,000,000 veh·h"),
    ("duration_h", 2.5, "2.50 h"), ("water_m3", float("nan"), "n/a"), ("people", 12, "12"), ("ratio", 0.0, "0"),
    ("dam_mad", -250.25, "-250.2 MAD"), ("restored", True, "yes"),
])
def test_kpi_formatting(name, value, shown):
    assert format_kpi(name, value) == shown


def test_plots_carry_bounds_service_line_and_map_aspect():
    t = _tables()
    fig = plot_tank_levels(t["tank_levels"], t["tank_bounds"])
    dashed = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"]
    assert sorted(round(ln.get_ydata()[0], 6) for ln in dashed) == [1.0, 1.5, 2.0, 6.0, 6.5, 7.0]
    fig = plot_district_pressure(t["district_pressure"])
    bars, hourly = fig.axes[0], fig.axes[1]
    assert len(bars.patches) == 8 and len([ln for ln in hourly.lines if ln.get_linestyle() == "-"]) == 5
    assert all(any(ln.get_ydata()[0] == SERVICE_PRESSURE_M for ln in ax.lines) for ax in (bars, hourly))
    lows = [p.get_height() for p in bars.patches]
    assert lows == sorted(lows)
    fig = plot_congested_links(t["links_peak"])
    lat = t["links_peak"][["from_lat", "to_lat"]].to_numpy().mean()
    assert fig.axes[0].get_aspect() == pytest.approx(1 / math.cos(math.radians(lat)))
    assert len(fig.axes) == 2  # the map and its colour bar


def test_ids_are_matched_as_text_across_tables():
    """Parquet keeps string column names but an integer index: kinds and bounds still find their columns."""
    t = _tables()
    gen = t["generation"].set_axis(["1", "2", "3", "4"], axis=1)
    kinds = t["generator_kind"].set_axis(pd.Index([1, 2, 3, 4], name="generator"))
    fig = plot_dispatch(gen, kinds, t["energy_hourly"], t["storage_power"])
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels[:3] == ["grid", "pv", "storage (net discharge)"] and "unclassified" not in labels
    levels = t["tank_levels"].set_axis(["10", "11", "12"], axis=1)
    bounds = t["tank_bounds"].set_axis(pd.Index([10, 11, 12], name="tank"))
    dashed = [ln for ln in plot_tank_levels(levels, bounds).axes[0].lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 6
