"""Scenarios: the schema and its errors, the library, the run folder, KPIs moving the way physics says."""

from __future__ import annotations

import json
import math

import pytest

from scenarios import (
    Scenario,
    ScenarioError,
    apply_scenario,
    check_against_twin,
    library,
    load_scenario,
    parse_scenario,
    run_scenario,
    scenario_hash,
)
from twin import load_berkane

FAST = ["dispatch", "power_flow", "hydraulics", "traffic", "cascade"]  # no pump schedule: the network's controls


@pytest.fixture(scope="module")
def summer():
    return load_berkane("summer")


def _run(summer, tmp_path, name: str, hours: int, mods: list, analyses=FAST, **opts):
    sc = Scenario.model_validate({"name": name, "season": "summer", "hours": hours, "modifications": mods,
                                  "analyses": analyses, "options": opts or {"peak_hours": [min(8, hours - 1)]}})
    return run_scenario(sc, tmp_path, base=summer, report=False)


# -- the schema and its errors -----------------------------------------------------------------------------------

def test_unknown_keys_are_rejected_with_the_yaml_path_and_line():
    text = "name: x\nseason: summer\nmodifications:\n  - type: outage\n    layer: energy\n    element: F_N1\n" \
           "    start_h: 2\n    finish: 4\n"
    with pytest.raises(ScenarioError, match=r"x.yaml:8: modifications\[0\]\.finish: unknown key 'finish'"):
        parse_scenario(text, "x.yaml")


def test_an_outage_ending_before_it_starts_is_refused_before_any_computation():
    text = "name: x\nmodifications:\n  - type: outage\n    layer: water\n    element: T_S1\n    start_h: 9\n" \
           "    end_h: 3\n"
    with pytest.raises(ScenarioError, match=r"x.yaml:3: modifications\[0\]: .*end_h 3 must be after start_h 9"):
        parse_scenario(text, "x.yaml")


def test_a_negative_scale_is_refused_with_its_line():
    text = "name: x\nmodifications:\n  - type: scale_demand\n    layer: water\n    factor: -2\n"
    with pytest.raises(ScenarioError, match=r"x.yaml:5: modifications\[0\]\.factor: Input should be greater than 0"):
        parse_scenario(text, "x.yaml")


def test_an_unknown_element_names_the_nearest_valid_ids(summer):
    text = "name: x\nmodifications:\n  - type: outage\n    layer: energy\n    element: SS_NORHT\n    start_h: 1\n" \
           "  - type: add_pv\n    bus: B_PV_PLAN\n    mw: 3\n"
    sc = parse_scenario(text, "x.yaml")
    with pytest.raises(ScenarioError) as err:
        check_against_twin(sc, summer, "x.yaml", text)
    msg = str(err.value)
    assert "x.yaml:5: modifications[0].element: energy element 'SS_NORHT' does not exist; nearest: 'SS_NORTH'" in msg
    assert "x.yaml:8: modifications[1].bus: bus 'B_PV_PLAN' does not exist; nearest: 'B_PV_PLANT'" in msg


def test_the_content_hash_is_stable_and_follows_the_content():
    a = parse_scenario("name: x\nseason: summer\n")
    b = parse_scenario("season: summer\nname: x   # same content, other order\n")
    c = parse_scenario("name: x\nseason: winter\n")
    assert scenario_hash(a) == scenario_hash(b) != scenario_hash(c)
    assert scenario_hash(a, {"f": "1"}) != scenario_hash(a, {"f": "2"})  # the base data is part of it


def test_every_library_scenario_is_valid_against_the_twin(summer):
    names = set(library())
    assert {"baseline_summer", "baseline_winter", "heatwave", "drought_raw_water_cut", "substation_loss",
            "n2_closure", "pv_expansion", "ev_growth_2030"} <= names
    for path in library().values():
        sc = load_scenario(path)
        check_against_twin(sc, summer, str(path), path.read_text())
        tw, outages = apply_scenario(summer, sc)
        assert tw is not summer and len(summer.grid.generator) <= len(tw.grid.generator)


def test_applying_a_scenario_leaves_the_base_untouched(summer):
    before = summer.grid.load["p_mw"].sum()
    sc = load_scenario(library()["heatwave"])
    tw, _ = apply_scenario(summer, sc)
    assert tw.grid.load["p_mw"].sum() == pytest.approx(1.15 * before)
    assert summer.grid.load["p_mw"].sum() == before


# -- runs ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["baseline_summer", "baseline_winter", "heatwave", "drought_raw_water_cut",
                                  "substation_loss", "n2_closure", "pv_expansion", "ev_growth_2030"])
def test_each_library_scenario_runs_on_a_short_day(name, tmp_path):
    res = run_scenario(library()[name], tmp_path, hours=5, report=False)
    doc = json.loads((res.path / "kpis.json").read_text())
    assert doc["hash"] == res.hash and doc["hours"] == 5
    assert (res.path / "tables" / "energy_hourly.parquet").exists()
    assert (res.path / "scenario.yaml").read_text() == library()[name].read_text()
    for k in ("import_mwh", "water_delivered_m3", "min_voltage_pu"):
        assert res.kpis[k] is not None and math.isfinite(res.kpis[k])


def test_a_run_folder_is_complete_reused_and_has_a_report(summer, tmp_path):
    sc = Scenario.model_validate({"name": "short", "hours": 3, "analyses": FAST, "options": {"peak_hours": [2]}})
    first = run_scenario(sc, tmp_path, base=summer)
    assert (first.path / "report.html").exists() and (first.path / "plots").is_dir()
    again = run_scenario(sc, tmp_path, base=summer)
    assert again.reused and again.path == first.path and again.kpis == first.kpis
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_drought_delivers_less_water(summer, tmp_path):
    base = _run(summer, tmp_path, "base", 6, [])
    dry = _run(summer, tmp_path, "dry", 6, [{"type": "drought", "raw_water_m3_day": 40000}])
    assert dry.kpis["water_delivered_m3"] < 0.8 * base.kpis["water_delivered_m3"]
    assert dry.kpis["water_shortfall_m3"] > 0


def test_substation_loss_leaves_load_unserved(summer, tmp_path):
    res = _run(summer, tmp_path, "ss", 4, [{"type": "outage", "layer": "energy", "element": "SS_NORTH",
                                            "start_h": 1, "end_h": 3}])
    assert res.kpis["unserved_energy_mwh"] > 1.0 and res.kpis["peak_people_without_power"] > 10_000
    assert res.kpis["restoration_time_h"] is not None


def test_pv_expansion_lowers_cost_and_emissions(summer, tmp_path):
    mods = [{"type": "add_pv", "bus": "B_PV_PLANT", "mw": 10}]
    base = _run(summer, tmp_path, "base", 14, [], analyses=["dispatch", "power_flow", "hydraulics"])
    more = _run(summer, tmp_path, "pv", 14, mods, analyses=["dispatch", "power_flow", "hydraulics"])
    assert more.kpis["energy_cost_mad"] < base.kpis["energy_cost_mad"]
    assert more.kpis["emissions_t"] < base.kpis["emissions_t"]
    assert more.kpis["pv_mwh"] > base.kpis["pv_mwh"]


def test_heatwave_and_ev_growth_raise_demand(summer, tmp_path):
    base = _run(summer, tmp_path, "base", 10, [], analyses=["dispatch", "power_flow", "hydraulics"])
    hot = _run(summer, tmp_path, "hot", 10, [{"type": "heatwave"}], analyses=["dispatch", "power_flow", "hydraulics"])
    ev = _run(summer, tmp_path, "ev", 10, [{"type": "ev_growth", "share": 0.1}],
              analyses=["dispatch", "power_flow", "hydraulics"])
    assert hot.kpis["import_mwh"] > base.kpis["import_mwh"]
    assert ev.kpis["ev_charged_mwh"] > 5 * base.kpis["ev_charged_mwh"]


def test_closing_the_n2_costs_vehicle_hours(summer, tmp_path):
    res = _run(summer, tmp_path, "n2", 9, [{"type": "road_closure", "corridor": "N2", "start_h": 7, "end_h": 9}],
               peak_hours=[8])
    assert res.kpis["extra_vehicle_hours"] > 0


def test_the_cli_runs_and_compares(tmp_path, capsys):
    from twin.cli import main

    assert main(["run", str(library()["baseline_summer"]), "--out", str(tmp_path), "--hours", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "baseline_summer [" in out and "import_mwh" in out
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert main(["compare", str(runs[0]), str(runs[0])]) == 0
    assert "import_mwh" in capsys.readouterr().out
    assert main(["run", str(tmp_path / "missing.yaml")]) == 1


def test_scaling_pv_availability_changes_only_the_pv_series(summer):
    sc = Scenario.model_validate({"name": "cloudy", "modifications": [{"type": "scale_pv", "factor": 0.5}]})
    tw, _ = apply_scenario(summer, sc)
    assert tw.series["pv_rooftop_pu"].sum() == pytest.approx(0.5 * summer.series["pv_rooftop_pu"].sum())
    assert tw.series["residential"].equals(summer.series["residential"])
