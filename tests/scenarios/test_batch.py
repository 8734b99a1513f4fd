"""Batches of scenarios on Dask: the spec and its expansion, a local cluster, an external scheduler with two
worker processes, a killed and resumed batch, failure isolation, the catalogue and the comparison report."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.distributed")

from scenarios import ScenarioError  # noqa: E402
from scenarios.batch import (  # noqa: E402
    MonteCarlo,
    add_batch_arguments,
    expand_batch,
    load_batch,
    monte_carlo_sample,
    parse_batch,
    run_batch,
    run_batch_cli,
    run_isolated,
)
from scenarios.batch_report import main_effects, pareto_front  # noqa: E402
from scenarios.schema import KPI_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
name: tb
base: {season: summer, analyses: [power_flow, hydraulics]}
hours: 2
scenarios: [bad.yaml]
grid: {load_factor: [1.0, 1.3]}
monte_carlo: {samples: 1, seed: 5, failure_rates: {SS_NORTH: 1.0}, duration_h: [1, 1]}
timeout_s: 120
"""
BAD = """\
name: bad
modifications:
  - {type: outage, layer: energy, element: NO_SUCH_ELEMENT, start_h: 0}
"""
N_SCENARIOS = 4  # bad, two grid points, one outage sample


def _write_spec(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad.yaml").write_text(BAD)
    spec = folder / "tb.yaml"
    spec.write_text(SPEC)
    return spec


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _kpi_view(cat: pd.DataFrame) -> pd.DataFrame:
    return cat[["scenario", "hash", "status", *KPI_NAMES]].sort_values("hash").reset_index(drop=True)


@pytest.fixture(scope="module")
def local_batch(tmp_path_factory):
    """The test batch run once, uninterrupted, on a local cluster of two workers."""
    root = tmp_path_factory.mktemp("local")
    spec = _write_spec(root / "spec")
    states = []
    res = run_batch(spec, root / "out", workers=2, progress=states.append)
    return res, states, spec


# -- the spec and its expansion -------------------------------------------------------------------------------

def test_unknown_keys_and_grid_parameters_are_refused():
    with pytest.raises(ScenarioError, match="grdi: unknown key"):
        parse_batch({"name": "x", "base": {}, "grdi": {"pv_mw": [1]}})
    with pytest.raises(ScenarioError, match="unknown grid parameter 'pv_gw'; known: pv_mw"):
        parse_batch({"name": "x", "base": {}, "grid": {"pv_gw": [1]}})
    with pytest.raises(ScenarioError, match="probability"):
        parse_batch({"name": "x", "base": {}, "monte_carlo": {"samples": 2, "failure_rates": {"SS_NORTH": 2.0}}})


def test_expansion_gives_stable_names_parameters_and_modifications(tmp_path):
    (tmp_path / "base.yaml").write_text("name: b\nseason: summer\noptions: {peak_hours: [8, 18]}\n")
    spec = parse_batch({"name": "sw", "base": "base.yaml", "hours": 3, "include_base": True,
                        "grid": {"pv_mw": [0, 10], "battery_mwh": [0, 8], "ev_share": [0.05]},
                        "placement": {"battery_hours": 4},
                        "monte_carlo": {"samples": 3, "seed": 1, "failure_rates": {"SS_NORTH": 0.5, "T_S1": 0.5},
                                        "layers": {"T_S1": "water"}},
                        "ensembles": {"members": 2, "seed": 2, "load_sigma": 0.1, "pv_sigma": 0.2}}).with_root(tmp_path)
    items = expand_batch(spec)
    assert [it.name for it in items] == ["sw-base", "sw-grid-000", "sw-grid-001", "sw-grid-002", "sw-grid-003",
                                         "sw-mc-000", "sw-mc-001", "sw-mc-002", "sw-ens-000", "sw-ens-001"]
    assert all(it.scenario.hours == 3 and it.scenario.options.peak_hours == [2] for it in items)
    g3 = items[4]
    assert g3.parameters == {"pv_mw": 10.0, "battery_mwh": 8.0, "ev_share": 0.05}
    mods = {m.type: m for m in g3.scenario.modifications}
    assert mods["add_pv"].mw == 10.0 and mods["add_battery"].mwh == 8.0 and mods["add_battery"].mw == 2.0
    assert mods["ev_growth"].share == 0.05
    assert {m.type for m in items[1].scenario.modifications} == {"ev_growth"}  # 0 MW, 0 MWh: nothing added
    for it in items[5:8]:
        outs = [m for m in it.scenario.modifications if m.type == "outage"]
        assert len(outs) == it.parameters["n_outages"]
        assert all(0 <= m.start_h < 3 and m.end_h > m.start_h for m in outs)
        assert {m.layer for m in outs if m.element == "T_S1"} <= {"water"}
    ens = [it.parameters["load_factor"] for it in items[8:]]
    assert ens[0] != ens[1] and all(0.5 < f < 2.0 for f in ens)
    pv = [{m.type: m for m in it.scenario.modifications}["scale_pv"].factor for it in items[8:]]
    assert pv == [it.parameters["pv_factor"] for it in items[8:]] and pv[0] != pv[1]
    again = expand_batch(spec)
    assert [it.scenario for it in again] == [it.scenario for it in items]


def test_monte_carlo_samples_depend_only_on_seed_and_index():
    mc = MonteCarlo(samples=50, seed=9, failure_rates={"SS_NORTH": 0.3, "F_N1": 0.3, "T_S1": 0.3},
                    layers={"T_S1": "water"}, duration_h=(1.0, 3.0))
    first = [monte_carlo_sample(mc, i, 24) for i in range(50)]
    assert first[7] == monte_carlo_sample(mc.model_copy(update={"samples": 8}), 7, 24)
    assert first[7] != monte_carlo_sample(mc.model_copy(update={"seed": 10}), 7, 24)
    counts = np.array([p["n_outages"] for _, p in first])
    assert 0.5 < counts.mean() < 1.3  # 3 elements × 0.3 per day: 0.9 failures a sample on average
    durations = [m["end_h"] - m["start_h"] for mods, _ in first for m in mods if m["start_h"] <= 21]
    assert set(durations) <= {1.0, 2.0, 3.0} and len(set(durations)) == 3
    assert all(float(m["start_h"]).is_integer() for mods, _ in first for m in mods)


def test_the_example_sweep_expands():
    items = expand_batch(load_batch(REPO / "scenarios" / "batches" / "example_sweep.yaml"))
    kinds = pd.Series([it.kind for it in items]).value_counts()
    assert kinds["grid"] == 8 and kinds["monte_carlo"] >= 3
    assert all(it.scenario.hours <= 12 for it in items)


# -- one isolated run -----------------------------------------------------------------------------------------

def test_a_run_over_its_timeout_is_recorded_as_timed_out(tmp_path):
    rec = run_isolated({"name": "slow", "hours": 2, "options": {"peak_hours": [1]}}, str(tmp_path), timeout_s=0.2)
    assert rec["status"] == "timeout" and "0.2 s" in rec["error"]
    assert not any(tmp_path.iterdir())  # killed before any run folder was written


# -- batches on Dask ------------------------------------------------------------------------------------------

def test_a_local_batch_runs_isolates_the_failure_and_writes_catalogue_and_report(local_batch):
    res, states, _ = local_batch
    cat = res.catalogue
    assert len(cat) == N_SCENARIOS and res.n_ok == 3 and res.n_failed == 1
    bad = cat.set_index("scenario").loc["tb-bad"]
    assert bad["status"] == "failed" and "NO_SUCH_ELEMENT" in bad["error"] and "ScenarioError" in bad["error"]
    ok = cat[cat["status"] == "ok"].set_index("scenario")
    assert ok.loc["tb-grid-001", "param_load_factor"] == 1.3
    assert ok.loc["tb-grid-001", "energy_cost_mad"] > ok.loc["tb-grid-000", "energy_cost_mad"] * 1.1
    assert ok.loc["tb-mc-000", "param_n_outages"] == 1 and ok.loc["tb-mc-000", "param_outages"].startswith("SS_NORTH@")
    assert ok.loc["tb-mc-000", "unserved_energy_mwh"] > 0.0 == ok.loc["tb-grid-000", "unserved_energy_mwh"]
    for name, row in ok.iterrows():  # every ok row points at a complete run folder keyed by its hash
        assert row["run"] == f"{name}-{row['hash']}" and (res.path / "runs" / row["run"] / "kpis.json").exists()
    on_disk = pd.read_parquet(res.path / "catalogue.parquet")
    pd.testing.assert_frame_equal(on_disk, cat)
    last = states[-1]
    assert (last["done"], last["failed"], last["running"], last["remaining"]) == (3, 1, 0, 0)
    assert any(s["eta_s"] is not None and s["remaining"] > 0 for s in states)
    page = res.report.read_text()
    assert page.count("data:image/png;base64,") >= 2 and "Pareto front" in page and "tb-bad" in page


def test_a_rerun_reuses_every_finished_run(local_batch, tmp_path):
    res, _, spec = local_batch
    again = run_batch(spec, res.path.parent, workers=1, report=False)
    ok = again.catalogue[again.catalogue["status"] == "ok"]
    assert ok["reused"].all() and len(ok) == 3
    pd.testing.assert_frame_equal(_kpi_view(again.catalogue), _kpi_view(res.catalogue))


def test_a_batch_on_an_external_scheduler_with_two_worker_processes(local_batch, tmp_path, capsys,
                                                                    external_dask_cluster):
    from dask.distributed import Client

    with external_dask_cluster() as address:
        with Client(address, timeout="5s") as c:
            workers = set(c.scheduler_info()["workers"])
        args = add_batch_arguments(argparse.ArgumentParser()).parse_args(
            [str(local_batch[2]), "--out", str(tmp_path / "out"), "--scheduler", address, "--quiet", "--no-report"])
        code = run_batch_cli(args)
        assert code == 1  # the bad scenario failed
        printed = capsys.readouterr().out
        assert "3 ok, 1 failed of 4" in printed and "tb-bad" in printed
        cat = pd.read_parquet(tmp_path / "out" / "tb" / "catalogue.parquet")
        assert set(cat["worker"]) == workers and len(workers) == 2  # both external workers ran scenarios
        pd.testing.assert_frame_equal(_kpi_view(cat), _kpi_view(local_batch[0].catalogue))


def test_a_killed_batch_resumes_to_the_results_of_an_uninterrupted_one(local_batch, tmp_path):
    spec = local_batch[2]
    out = tmp_path / "out"
    cat_path = out / "tb" / "catalogue.parquet"
    proc = subprocess.Popen([sys.executable, "-m", "scenarios.batch", str(spec), "--out", str(out), "--workers", "1",
                             "--quiet", "--no-report"], cwd=REPO, env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        rows = 0
        while time.time() < deadline and proc.poll() is None:
            if cat_path.exists():
                rows = len(pd.read_parquet(cat_path))
                if rows >= 1:
                    break
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the batch, its cluster and any running child, at once
        proc.wait(timeout=10)
    killed = pd.read_parquet(cat_path)  # a valid catalogue of what had finished
    assert 1 <= len(killed) < N_SCENARIOS
    runs = out / "tb" / "runs"
    assert all((p / "kpis.json").exists() for p in runs.iterdir() if not p.name.startswith("."))
    resumed = run_batch(spec, out, workers=2, report=False)
    assert not [p.name for p in runs.iterdir() if p.name.startswith(".")]  # no half-written folder left
    done_before = set(killed.loc[killed["status"] == "ok", "scenario"])
    assert set(resumed.catalogue.loc[resumed.catalogue["reused"], "scenario"]) >= done_before
    pd.testing.assert_frame_equal(_kpi_view(resumed.catalogue), _kpi_view(local_batch[0].catalogue))


def test_a_worker_killed_mid_task_does_not_lose_its_scenario(local_batch, tmp_path, external_dask_cluster):
    """Two external workers (no nanny: the process is the worker); once a scenario is running, its worker is
    killed with SIGKILL; the scheduler hands the task to the surviving worker and the batch ends with every
    result of the uninterrupted run."""
    from dask.distributed import Client

    batch = None
    with external_dask_cluster(nanny=False) as address:
        try:
            out = tmp_path / "out"
            batch = subprocess.Popen([sys.executable, "-m", "scenarios.batch", str(local_batch[2]), "--out", str(out),
                                      "--scheduler", address, "--quiet", "--no-report"], cwd=REPO, env=_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            killed = None
            deadline = time.time() + 90
            with Client(address, timeout="5s") as client:
                while killed is None and time.time() < deadline and batch.poll() is None:
                    busy = [w for w, keys in client.processing().items() if keys]
                    if busy:
                        killed = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                        os.kill(killed, signal.SIGKILL)
                    time.sleep(0.05)
            assert killed is not None, "no scenario was seen running"
            assert batch.wait(timeout=180) == 1  # the deliberately bad scenario still fails; nothing else does
            cat = pd.read_parquet(out / "tb" / "catalogue.parquet")
            assert set(cat.loc[cat["status"] == "ok", "scenario"]) == {"tb-grid-000", "tb-grid-001", "tb-mc-000"}
            pd.testing.assert_frame_equal(_kpi_view(cat), _kpi_view(local_batch[0].catalogue))
        finally:
            if batch is not None and batch.poll() is None:
                batch.kill()


# -- the report's calculations --------------------------------------------------------------------------------

def test_pareto_front_keeps_only_non_dominated_points():
    x = pd.Series([1.0, 2.0, 3.0, 2.5, 4.0])
    y = pd.Series([5.0, 3.0, 1.0, 4.0, 1.0])
    assert list(pareto_front(x, y)) == [0, 1, 2]


def test_main_effects_rank_the_parameters_by_their_effect():
    cat = pd.DataFrame({"kind": "grid", "status": "ok", "param_a": [0, 0, 1, 1], "param_b": [0, 1, 0, 1],
                        "kpi": [10.0, 11.0, 20.0, 21.0]})
    eff = main_effects(cat, "kpi")
    assert list(eff.index) == ["a", "b"] and eff["a"] == pytest.approx(10.0) and eff["b"] == pytest.approx(1.0)
