"""End-to-end tests over real HTTP against a started service: OGC API – Processes, collections, twin state."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import wait_job

OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0"
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def run(service):
    with service.client(service.keys["run"]) as c:
        yield c


@pytest.fixture
def admin(service):
    with service.client(service.keys["admin"]) as c:
        yield c


def test_landing_and_conformance_are_public(service):
    with service.client() as c:
        doc = c.get("/").json()
        rels = {link["rel"] for link in doc["links"]}
        assert {"self", "service-desc", "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                "http://www.opengis.net/def/rel/ogc/1.0/processes", "http://www.opengis.net/def/rel/ogc/1.0/job-list",
                "data"} <= rels
        conf = c.get("/conformance").json()["conformsTo"]
        assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in conf
        assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss" in conf


def test_openapi_document_lists_every_endpoint(run):
    r = run.get("/api")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/processes", "/processes/{processId}", "/processes/{processId}/execution", "/jobs", "/jobs/{jobId}",
              "/jobs/{jobId}/results", "/collections/{collectionId}/items", "/state/measurements", "/state",
              "/health"):
        assert p in paths, p
    assert "delete" in paths["/jobs/{jobId}"]


def test_health(run):
    doc = run.get("/health").json()
    assert doc["status"] == "ok" and doc["database"]["ok"] and doc["workers"]["alive"] == 1


def test_process_list_and_descriptions(run):
    ids = [p["id"] for p in run.get("/processes").json()["processes"]]
    assert ids == ["run-scenario", "power-flow", "hydraulic-simulation", "traffic-assignment",
                   "dispatch-optimisation", "batch"]
    d = run.get("/processes/run-scenario").json()
    assert set(d["jobControlOptions"]) >= {"sync-execute", "async-execute"}
    assert d["inputs"]["hours"]["schema"]["anyOf"][0]["maximum"] == 24
    scenario_schema = d["inputs"]["scenario"]["schema"]["oneOf"][1]
    assert "modifications" in scenario_schema["properties"] and "$ref" not in json.dumps(scenario_schema)
    assert {"kpis", "hash", "run"} <= set(d["outputs"])
    pf = run.get("/processes/power-flow").json()
    assert pf["inputs"]["algorithm"]["schema"]["enum"] == ["ac", "dc"]
    r = run.get("/processes/no-such")
    assert r.status_code == 404 and r.json()["type"] == f"{OGC}/no-such-process"
    assert r.headers["content-type"].startswith("application/problem+json")


def test_power_flow_sync(run):
    r = run.post("/processes/power-flow/execution", json={"inputs": {"case": "berkane-summer"}})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["converged"] is True and doc["iterations"] >= 1
    assert len(doc["buses"]) == 163 and {"id", "vm_pu", "va_deg"} <= set(doc["buses"][0])
    assert 0.9 < min(b["vm_pu"] for b in doc["buses"]) <= 1.0
    assert {"p0_mw", "losses_mw", "loading_percent"} <= set(doc["branches"][0])
    # selected outputs, raw response of one output, OGC qualified input values
    r = run.post("/processes/power-flow/execution",
                 json={"inputs": {"algorithm": {"value": "dc"}}, "outputs": {"summary": {}}, "response": "raw"})
    assert r.status_code == 200 and r.json()["method"] == "dc"


def test_power_flow_of_matpower_text(run):
    text = (open("tests/data/matpower/case9.m").read())
    doc = run.post("/processes/power-flow/execution", json={"inputs": {"case_text": text}}).json()
    assert doc["converged"] and len(doc["buses"]) == 9
    r = run.post("/processes/power-flow/execution", json={"inputs": {"case_text": "function mpc = x\nmpc.bus = [1 2"}})
    assert r.status_code == 400
    assert "case_text" in r.json()["detail"]


@pytest.mark.parametrize("inputs, fragment", [
    ({"algorithm": "xx"}, "inputs.algorithm"),
    ({"tolerance": -1}, "inputs.tolerance"),
    ({"colour": "red"}, "unknown input 'colour'"),
])
def test_bad_inputs_are_400_naming_the_input(run, inputs, fragment):
    r = run.post("/processes/power-flow/execution", json={"inputs": inputs})
    assert r.status_code == 400
    body = r.json()
    assert fragment in body["detail"] and body["status"] == 400 and "Traceback" not in r.text


def test_bad_execute_bodies(run):
    assert run.post("/processes/power-flow/execution", content=b"{not json",
                    headers={"Content-Type": "application/json"}).status_code == 400
    r = run.post("/processes/power-flow/execution", json={"inputs": {}, "outputs": {"nope": {}}})
    assert r.status_code == 400 and "nope" in r.json()["detail"]
    r = run.post("/processes/nope/execution", json={"inputs": {}})
    assert r.status_code == 404 and r.json()["type"] == f"{OGC}/no-such-process"


def test_scenario_errors_name_the_element(run):
    sc = {"name": "bad", "modifications": [{"type": "add_pv", "bus": "B_NOWHERE", "mw": 5}]}
    r = run.post("/processes/run-scenario/execution", json={"inputs": {"scenario": sc, "hours": 2}})
    assert r.status_code == 400 and "B_NOWHERE" in r.json()["detail"]
    r = run.post("/processes/run-scenario/execution", json={"inputs": {"scenario": "no_such_scenario"}})
    assert r.status_code == 400 and "baseline_summer" in r.json()["detail"]
    r = run.post("/processes/run-scenario/execution", json={"inputs": {"scenario": {"name": "x", "hours": 99}}})
    assert r.status_code == 400 and "hours" in r.json()["detail"]


def test_run_scenario_async_job_with_progress(service, run):
    sc = {"name": "api_short", "analyses": ["power_flow", "hydraulics"]}
    r = run.post("/processes/run-scenario/execution", json={"inputs": {"scenario": sc, "hours": 3}}, headers=ASYNC)
    assert r.status_code == 201, r.text
    job_id = r.json()["jobID"]
    assert r.headers["location"].endswith(f"/jobs/{job_id}")
    info = r.json()
    assert info["status"] in ("accepted", "running") and info["processID"] == "run-scenario"
    assert info["type"] == "process"
    early = run.get(f"/jobs/{job_id}/results")
    if early.status_code == 404:  # unless the run was already done
        assert early.json()["type"] == f"{OGC}/result-not-ready"
    done = wait_job(run, job_id)
    assert done["status"] == "successful" and done["progress"] == 100
    assert {"created", "started", "finished", "updated"} <= set(done)
    res = run.get(f"/jobs/{job_id}/results").json()
    assert res["kpis"]["min_voltage_pu"] > 0.9 and len(res["hash"]) == 16
    assert (service.data_dir / "runs" / res["run"] / "kpis.json").exists()


def test_library_scenario_sync(run):
    r = run.post("/processes/run-scenario/execution",
                 json={"inputs": {"scenario": "baseline_winter", "hours": 2}, "outputs": {"kpis": {}}})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"kpis"} and r.json()["kpis"]["import_mwh"] > 0


def test_other_processes(run):
    h = run.post("/processes/hydraulic-simulation/execution", json={"inputs": {"duration_h": 2}}).json()
    assert h["converged"] and len(h["tank_levels"]) == 3 and "T_S1_level_m" in h["tank_levels"][0]
    assert h["pressure_summary"][0]["min_m"] <= h["pressure_summary"][0]["max_m"]
    t = run.post("/processes/traffic-assignment/execution", json={"inputs": {"hour": 8, "rel_gap": 1e-3}}).json()
    assert len(t["links"]) == 546 and {"flow_veh_h", "v_c", "capacity_veh_h"} <= set(t["links"][0])
    r = run.post("/processes/traffic-assignment/execution", json={"inputs": {"closed_links": ["NOPE"]}})
    assert r.status_code == 400 and "NOPE" in r.json()["detail"]
    d = run.post("/processes/dispatch-optimisation/execution", json={"inputs": {"hours": 2}}).json()
    assert d["objective_mad"] > 0 and len(d["generation"]) == 2 and "GRID_225_mw" in d["generation"][0]


def test_batch_process(service, run):
    spec = {"name": "api_sweep", "base": "baseline_summer", "hours": 2, "analyses": ["power_flow"],
            "grid": {"load_factor": [1.0, 1.1]}}
    r = run.post("/processes/batch/execution", json={"inputs": {"spec": spec}}, headers=ASYNC)
    assert r.status_code == 201, r.text
    done = wait_job(run, r.json()["jobID"], timeout_s=180)
    assert done["status"] == "successful", run.get(f"/jobs/{done['jobID']}/results").text
    res = run.get(f"/jobs/{done['jobID']}/results").json()
    assert res["n_ok"] == 2 and [row["status"] for row in res["catalogue"]] == ["ok", "ok"]
    assert res["catalogue"][1]["param_load_factor"] == 1.1


@pytest.mark.parametrize("spec, fragment", [
    ({"name": "x", "base": "../../../etc/passwd", "grid": {"load_factor": [1.0]}}, "no shipped scenario"),
    ({"name": "x", "base": "baseline_summer", "monte_carlo": {"samples": 99999, "failure_rates": {"F_N1": 0.1}}},
     "at most 4"),
    ({"name": "x", "base": "baseline_summer", "grid": {"colour": [1]}}, "unknown grid parameter"),
])
def test_batch_input_errors(run, spec, fragment):
    r = run.post("/processes/batch/execution", json={"inputs": {"spec": spec}})
    assert r.status_code == 400 and fragment in r.json()["detail"]


def test_dismiss_and_job_visibility(service, run):
    sc = {"name": "api_dismiss", "analyses": ["power_flow", "hydraulics", "traffic"]}
    job_id = run.post("/processes/run-scenario/execution", json={"inputs": {"scenario": sc, "hours": 3}},
                      headers=ASYNC).json()["jobID"]
    with service.client(service.keys["run2"]) as other, service.client(service.keys["read"]) as reader:
        assert other.get(f"/jobs/{job_id}").status_code == 404  # another key's job does not exist for it
        assert other.delete(f"/jobs/{job_id}").status_code == 404
        assert job_id not in [j["jobID"] for j in other.get("/jobs").json()["jobs"]]
        assert reader.delete(f"/jobs/{job_id}").status_code == 403
    with service.client(service.keys["admin"]) as admin:
        assert admin.get(f"/jobs/{job_id}").status_code == 200
        assert job_id in [j["jobID"] for j in admin.get("/jobs", params={"limit": 1000}).json()["jobs"]]
    r = run.delete(f"/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    time.sleep(1.0)  # a running job's worker is stopped; it must not come back as successful
    assert run.get(f"/jobs/{job_id}").json()["status"] == "dismissed"
    r = run.get(f"/jobs/{job_id}/results")
    assert r.status_code == 404 and r.json()["type"] == f"{OGC}/no-such-job"
    assert run.get("/jobs/not-a-job/results").json()["type"] == f"{OGC}/no-such-job"
    listed = run.get("/jobs", params={"status": "dismissed"}).json()["jobs"]
    assert job_id in [j["jobID"] for j in listed] and all(j["status"] == "dismissed" for j in listed)
    # the worker is usable after the dismissal (a new worker process)
    assert run.post("/processes/power-flow/execution", json={"inputs": {}}).status_code == 200


def test_failed_job_has_an_exception_document(run):
    # a case that parses but has no reference bus: the computation fails (SlackError), the job is failed
    text = open("tests/data/matpower/case9.m").read()
    for b in ("1\t3", "2\t2", "3\t2"):
        text = text.replace(f"\t{b}\t0\t0", f"\t{b[0]}\t1\t0\t0")
    r = run.post("/processes/power-flow/execution", json={"inputs": {"case_text": text}})
    assert r.status_code == 400 and "no reference bus" in r.json()["detail"] and "Traceback" not in r.text
    job_id = run.post("/processes/power-flow/execution", json={"inputs": {"case_text": text}},
                      headers=ASYNC).json()["jobID"]
    assert wait_job(run, job_id)["status"] == "failed"
    r = run.get(f"/jobs/{job_id}/results")
    assert r.status_code == 400 and "no reference bus" in r.json()["detail"]
    assert r.json()["instance"] == f"/jobs/{job_id}"


# -- collections -----------------------------------------------------------------------------------------------------

def test_collections(run):
    ids = [c["id"] for c in run.get("/collections").json()["collections"]]
    assert ids == ["buses", "lines", "junctions", "pipes", "tanks", "links", "zones"]
    meta = run.get("/collections/pipes").json()
    x0, y0, x1, y1 = meta["extent"]["spatial"]["bbox"][0]
    assert -3 < x0 < x1 < -2 and 34 < y0 < y1 < 35.2
    r = run.get("/collections/pipes/items", params={"limit": 10})
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["numberReturned"] == 10 and fc["numberMatched"] == 2149
    nxt = next(link["href"] for link in fc["links"] if link["rel"] == "next")
    page2 = run.get(nxt.replace(str(run.base_url).rstrip("/"), "")).json()
    assert page2["features"][0]["id"] != fc["features"][0]["id"]
    assert any(link["rel"] == "prev" for link in page2["links"])
    last = run.get("/collections/pipes/items", params={"limit": 100, "offset": 2100}).json()
    assert last["numberReturned"] == 49 and not any(link["rel"] == "next" for link in last["links"])
    assert run.get("/collections/zones/items").json()["numberMatched"] == 28
    lines = run.get("/collections/lines/items", params={"limit": 1000}).json()
    assert lines["numberMatched"] == 166 and lines["features"][0]["geometry"]["type"] == "LineString"


def test_bbox_filter_matches_a_brute_force_filter(run):
    everything = run.get("/collections/junctions/items", params={"limit": 10000}).json()["features"]
    box = (-2.34, 34.90, -2.31, 34.93)
    want = {f["id"] for f in everything if box[0] <= f["geometry"]["coordinates"][0] <= box[2]
            and box[1] <= f["geometry"]["coordinates"][1] <= box[3]}
    got = run.get("/collections/junctions/items",
                  params={"limit": 10000, "bbox": ",".join(map(str, box))}).json()
    assert 0 < len(want) < len(everything)
    assert {f["id"] for f in got["features"]} == want and got["numberMatched"] == len(want)


@pytest.mark.parametrize("params", [{"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "5,5,1,1"},
                                    {"bbox": "0,0,0,nan"}, {"limit": 0}, {"limit": 10001}, {"offset": -1}])
def test_bad_paging_and_bbox_are_400(run, params):
    r = run.get("/collections/buses/items", params=params)
    assert r.status_code == 400 and r.json()["detail"]


def test_feature_by_id(run):
    f = run.get("/collections/tanks/items/T_S1").json()
    assert f["id"] == "T_S1" and f["properties"]["max_level_m"] == 6.0
    r = run.get("/collections/tanks/items/T_NOPE")
    assert r.status_code == 404
    assert run.get("/collections/nope").status_code == 404


# -- twin state ------------------------------------------------------------------------------------------------------

def test_measurements_and_state(service, run):
    t = "2026-01-10T08:00:00+01:00"
    body = {"measurements": [
        {"kind": "tank_level", "element": "T_S1", "time": t, "value": 4.0},
        {"kind": "tank_level", "element": "T_S2", "time": t, "value": 9.0},             # out of range
        {"kind": "feeder_load", "element": "F_N1", "time": t, "value": 3500, "unit": "kW"},
        {"kind": "pv_output", "element": "PV_PLANT", "time": t, "value": 6.5},
        {"kind": "traffic_count", "element": "J000-J001", "time": t, "value": 250},
        {"kind": "traffic_count", "element": "J999-X", "time": t, "value": 10},          # unknown element
        {"kind": "pv_output", "element": "PV_PLANT", "time": "2099-01-01T00:00:00Z", "value": 1.0},  # future
        {"kind": "tank_level", "element": "T_S1", "time": t, "value": 4.1},             # duplicate in the request
        {"kind": "feeder_load", "element": "F_N2", "time": t, "value": 1.0, "unit": "A"},  # wrong unit
    ]}
    r = run.post("/state/measurements", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [a["index"] for a in doc["accepted"]] == [0, 2, 3, 4]
    reasons = {x["index"]: x["reason"] for x in doc["rejected"]}
    assert reasons[1].startswith("out of range") and reasons[5].startswith("unknown element")
    assert reasons[6].startswith("in the future") and reasons[7].startswith("duplicate")
    assert reasons[8].startswith("wrong unit")
    # late and duplicate against the stored state; all rejected -> 422; the state is unchanged
    r = run.post("/state/measurements", json={"measurements": [
        {"kind": "tank_level", "element": "T_S1", "time": "2026-01-10T06:00:00Z", "value": 1.0},
        {"kind": "tank_level", "element": "T_S1", "time": "2026-01-10T07:00:00Z", "value": 2.0}]})
    assert r.status_code == 422
    assert [x["reason"].split(":")[0] for x in r.json()["rejected"]] == ["late", "duplicate"]
    state = run.get("/state").json()
    tank = next(e for e in state["elements"] if e["element"] == "T_S1")
    assert tank["value"] == 4.0 and tank["time"] == "2026-01-10T07:00:00.000000Z"
    k = state["kpis"]
    area = 3.141592653589793 * 32.574 ** 2 / 4
    assert k["tank_volume_m3"] == pytest.approx(4.0 * area)
    assert k["tank_fill_percent_measured"] == pytest.approx(100 * 4.0 / 6.0)
    assert k["feeder_load_mw"] == pytest.approx(3.5) and k["pv_output_mw"] == pytest.approx(6.5)
    assert k["count_weighted_v_c"] == pytest.approx(250 / 500)
    # a load of feeder F_N1 measured on its own is not added to the feeders' load (it lies within the feeder)
    r = run.post("/state/measurements", json={"measurements": [
        {"kind": "feeder_load", "element": "P_D15_01", "time": t, "value": 0.2}]})
    assert r.status_code == 200, r.text
    k = run.get("/state").json()["kpis"]
    assert k["feeder_load_mw"] == pytest.approx(3.5) and k["feeders_measured"] == 1
    assert k["branch_or_load_elements_measured"] == 1
    # a newer value replaces the state
    r = run.post("/state/measurements", json={"measurements": [
        {"kind": "tank_level", "element": "T_S1", "time": "2026-01-10T09:00:00+01:00", "value": 5.0}]})
    assert r.status_code == 200
    assert next(e for e in run.get("/state").json()["elements"] if e["element"] == "T_S1")["value"] == 5.0


@pytest.mark.parametrize("m", [
    {"kind": "tank_level", "element": "T_S1", "time": "2026-01-10T08:00:00", "value": 1.0},  # no timezone
    {"kind": "tank_level", "element": "T_S1", "time": "2026-01-10T08:00:00Z", "value": "NaN"},
    {"kind": "pressure", "element": "T_S1", "time": "2026-01-10T08:00:00Z", "value": 1.0},
])
def test_malformed_measurements_are_422(run, m):
    r = run.post("/state/measurements", json={"measurements": [m]})
    assert r.status_code == 422 and r.json()["errors"][0]["where"].startswith("body.measurements.0")


def test_read_key_cannot_post_measurements(service):
    with service.client(service.keys["read"]) as c:
        assert c.post("/state/measurements", json={"measurements": []}).status_code == 403
        assert c.get("/state").status_code == 200


def test_access_log_is_json_without_secrets(service, run):
    run.get("/processes")
    lines = [json.loads(x) for x in service.log.read_text().splitlines() if x.startswith('{"time"')]
    mine = [x for x in lines if x["path"] == "/processes" and x["key_id"]]
    assert mine and {"method", "status", "ms", "key_id"} <= set(mine[-1])
    text = service.log.read_text()
    for key in service.keys.values():
        assert key.split(".")[1] not in text
    assert "Bearer" not in text


def test_jobs_run_on_a_dask_scheduler(tmp_path, external_dask_cluster):
    """``twin serve --scheduler ADDRESS``: a job is a task of the external cluster (its key is in the
    scheduler's task prefixes) and its results come back through the store."""
    from dask.distributed import Client

    from .conftest import Service

    with external_dask_cluster() as address:
        svc = Service(tmp_path / "data", "--scheduler", address, "--workers", "1")
        svc.data_dir.mkdir(parents=True)
        svc.start()
        try:
            with svc.client(svc.key("run")) as c:
                r = c.post("/processes/power-flow/execution", json={"inputs": {"case": "berkane-summer"}},
                           headers={"Prefer": "respond-async"})
                assert r.status_code == 201, r.text
                job = wait_job(c, r.json()["jobID"], timeout_s=120)
                assert job["status"] == "successful", job
                res = c.get(f"/jobs/{job['jobID']}/results").json()
                assert res["converged"] is True and len(res["buses"]) == 163
            with Client(address, timeout="5s") as client:
                prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
            assert "twin-api" in prefixes
        finally:
            svc.stop()
