"""Jobs survive restarts: results of a finished job after SIGTERM; an accepted job queued by a service that runs
none is run by the next; a job running when the service is killed (SIGKILL) is re-queued and completed."""

from __future__ import annotations

import time

import pytest

from .conftest import Service, wait_job

ASYNC = {"Prefer": "respond-async"}


def _data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


def test_results_survive_a_restart_and_queued_jobs_run(tmp_path):
    data = _data(tmp_path)
    front = Service(data, "--workers", "0").start()  # accepts and queues, runs nothing
    try:
        key = front.key("run")
        with front.client(key) as c:
            queued = c.post("/processes/power-flow/execution", json={"inputs": {"algorithm": "dc"}},
                            headers=ASYNC).json()["jobID"]
            time.sleep(0.5)
            assert c.get(f"/jobs/{queued}").json()["status"] == "accepted"
    finally:
        front.stop_gracefully()
    svc = Service(data, "--workers", "1").start()
    try:
        with svc.client(key) as c:
            assert wait_job(c, queued)["status"] == "successful"
            first = c.get(f"/jobs/{queued}/results").json()
            assert first["summary"]["method"] == "dc"
    finally:
        svc.stop_gracefully()
    again = Service(data, "--workers", "1").start()
    try:
        with again.client(key) as c:
            assert c.get(f"/jobs/{queued}").json()["status"] == "successful"
            assert c.get(f"/jobs/{queued}/results").json() == first
    finally:
        again.stop()


@pytest.mark.parametrize("how", ["kill", "term"])
def test_running_job_is_requeued_after_the_service_stops(tmp_path, how):
    data = _data(tmp_path)
    svc = Service(data, "--workers", "1").start()
    key = svc.key("run")
    sc = {"name": f"restart_{how}", "analyses": ["dispatch", "power_flow", "hydraulics", "traffic"]}
    try:
        with svc.client(key) as c:
            job_id = c.post("/processes/run-scenario/execution", json={"inputs": {"scenario": sc, "hours": 3}},
                            headers=ASYNC).json()["jobID"]
            wait_job(c, job_id, until=("running", "successful", "failed"))
    finally:
        svc.kill() if how == "kill" else svc.stop_gracefully()
    store = svc.store()
    try:
        job = store.get_job(job_id)
        if how == "term":  # a graceful stop re-queues at once
            assert job.status == "accepted" and "re-queued" in job.message
        else:  # a killed service leaves it running, for the next start to recover
            assert job.status == "running"
    finally:
        store.close()
    svc2 = Service(data, "--workers", "1").start()
    try:
        with svc2.client(key) as c:
            done = wait_job(c, job_id)
            assert done["status"] == "successful"
            assert c.get(f"/jobs/{job_id}/results").json()["kpis"]["import_mwh"] > 0
    finally:
        svc2.stop()
    store = svc.store()
    try:
        assert store.get_job(job_id).attempts == 2
    finally:
        store.close()
