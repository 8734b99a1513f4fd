"""Reuse within a process: runs with a ReuseCache equal runs without it (KPIs and every table), and the batch's
scenario process reuses across scenarios and survives a crash."""

from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest

from scenarios import Scenario, run_scenario
from scenarios.batch import ScenarioProcess
from scenarios.reuse import ReuseCache

ANALYSES = ["dispatch", "pump_schedule", "power_flow", "hydraulics"]


def _scenario(name: str, pv_mw: float, ev_share: float, hours: int = 4, analyses=ANALYSES) -> Scenario:
    mods = [{"type": "ev_growth", "share": ev_share}]
    if pv_mw:
        mods.append({"type": "add_pv", "bus": "B_PV_PLANT", "mw": pv_mw, "id": "PV_BATCH"})
    return Scenario.model_validate({"name": name, "hours": hours, "analyses": analyses, "modifications": mods,
                                    "options": {"peak_hours": [hours - 1]}})


def _tables(path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted((path / "tables").glob("*.parquet"))}


def test_runs_with_a_reuse_cache_equal_runs_without(tmp_path):
    cache = ReuseCache()
    sweep = [_scenario("a", 5.0, 0.02), _scenario("b", 10.0, 0.08), _scenario("c", 0.0, 0.05)]
    for sc in sweep:
        cached = run_scenario(sc, tmp_path / "cached", report=False, cache=cache)
        plain = run_scenario(sc, tmp_path / "plain", report=False)
        assert cached.hash == plain.hash and cached.kpis == plain.kpis, sc.name
        a, b = _tables(cached.path), _tables(plain.path)
        assert a.keys() == b.keys()
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=f"{sc.name}/{name}")
    stats = cache.summary()
    assert stats["pump_schedule"] == {"hits": 2, "misses": 1}  # one water network for the whole sweep
    assert stats["day_ahead_model"] == {"hits": 1, "misses": 2}  # 5 → 10 MWp re-solved; no PV is another model
    assert stats["twin"]["misses"] == 1


def test_the_scenario_process_reuses_across_scenarios_and_survives_a_crash(tmp_path):
    proc = ScenarioProcess()
    try:
        light = dict(hours=2, analyses=["dispatch", "power_flow"])
        first = proc.run(_scenario("p1", 5.0, 0.02, **light).model_dump(mode="json"), str(tmp_path))
        second = proc.run(_scenario("p2", 10.0, 0.04, **light).model_dump(mode="json"), str(tmp_path))
        assert first["status"] == second["status"] == "ok"
        assert "day_ahead_model" in second["reused_parts"].split(",") and "twin" in second["reused_parts"]
        assert second["peak_rss_mb"] > 50
        pid = proc.proc.pid
        out: dict = {}
        slow = _scenario("p3", 5.0, 0.03, hours=24, analyses=["dispatch", "power_flow", "hydraulics"])
        worker = threading.Thread(target=lambda: out.update(proc.run(slow.model_dump(mode="json"), str(tmp_path))))
        worker.start()
        time.sleep(1.0)  # the 24-hour scenario takes several seconds
        os.kill(pid, signal.SIGKILL)
        worker.join(timeout=60)
        assert out["status"] == "failed" and "signal 9" in out["error"]
        again = proc.run(_scenario("p4", 5.0, 0.05, **light).model_dump(mode="json"), str(tmp_path))
        assert again["status"] == "ok" and proc.proc.pid != pid  # a new process took over
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written run left
    finally:
        proc.close()
    assert proc.proc is None  # closed


def test_the_cache_keeps_what_the_inputs_determine_and_forgets_the_oldest():
    cache = ReuseCache(max_results=2)
    calls: list[str] = []

    def infeasible():
        calls.append("infeasible")
        raise ValueError("no schedule keeps tank T1 within its bounds")

    for _ in range(2):  # an error of a kept type is raised again without recomputing
        with pytest.raises(ValueError, match="T1"):
            cache.result("pump_schedule", ("network A",), infeasible, errors=(ValueError,))
    assert calls == ["infeasible"]

    def transient():
        calls.append("transient")
        raise OSError("disk full")

    for _ in range(2):  # any other error is computed again
        with pytest.raises(OSError):
            cache.result("pump_schedule", ("network B",), transient, errors=(ValueError,))
    assert calls.count("transient") == 2
    assert cache.result("x", (1,), lambda: "one") == "one"
    assert cache.result("x", (2,), lambda: "two") == "two"  # "network A" is the oldest: dropped
    assert cache.result("x", (1,), lambda: "again") == "one"
    assert cache.result("pump_schedule", ("network A",), lambda: "computed now", errors=(ValueError,)) == \
        "computed now"
