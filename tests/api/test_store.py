"""The job store on both backends: SQLite (always) and PostgreSQL (marked ``postgres``; needs
``TWIN_TEST_DATABASE_URL``, which ``.ci/run`` sets after starting a throw-away server)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from scenarios.api.keys import create_key, verify_key
from scenarios.api.state import Measurement, ingest
from scenarios.api.store import Store, redact_url

from .conftest import Service, wait_job


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(sqlite_path=tmp_path / "service.db")
    else:
        s = Store(url=request.getfixturevalue("pg_url"))
    yield s
    s.close()


def test_keys(store):
    key_id, key = create_key(store, "run", "label")
    principal, _ = verify_key(store, key)
    assert principal.key_id == key_id and principal.scope == "run"
    assert verify_key(store, key[:-1] + ("A" if key[-1] != "A" else "B"))[1] == "invalid API key"
    assert store.revoke_key(key_id) and not store.revoke_key(key_id)
    assert "revoked" in verify_key(store, key)[1]
    assert [k["key_id"] for k in store.list_keys()] == [key_id]


def test_job_life_cycle(store):
    job = store.create_job("j1", "power-flow", "k1", {"algorithm": "dc"}, {"selected": ["summary"]}, "document", 2)
    assert job.status == "accepted" and job.inputs == {"algorithm": "dc"} and job.attempts == 0
    claimed = store.claim_next_job()
    assert claimed.job_id == "j1" and claimed.status == "running" and claimed.attempts == 1
    assert store.claim_next_job() is None
    store.set_progress("j1", 40, "half way")
    assert store.get_job("j1").progress == 40
    assert store.finish_job("j1", "successful", "done", results={"summary": {"x": 1.5}})
    done = store.get_job("j1")
    assert done.status == "successful" and done.results == {"summary": {"x": 1.5}} and done.finished
    dismissed = store.dismiss_job("j1")
    assert dismissed.status == "dismissed" and dismissed.results is None
    assert not store.finish_job("j1", "successful", "late")  # a dismissed job stays dismissed


def test_limit_per_key_holds_under_concurrency(store):
    created = []

    def submit(i: int) -> None:
        if store.create_job(f"c{i}", "power-flow", "k", {}, {}, "document", 3) is not None:
            created.append(i)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 3
    assert store.create_job("other", "power-flow", "k2", {}, {}, "document", 3) is not None
    rows, total = store.list_jobs("k", ["accepted"], None, 10, 0)
    assert total == 3 and all(r.key_id == "k" for r in rows)


def test_recovery_requeues_once_then_fails(store):
    store.create_job("r1", "batch", "k", {}, {}, "document", None)
    store.claim_next_job()
    assert store.recover_interrupted() == (["r1"], [])
    job = store.get_job("r1")
    assert job.status == "accepted" and "re-queued" in job.message
    store.claim_next_job()  # second attempt, interrupted again
    assert store.recover_interrupted() == ([], ["r1"])
    job = store.get_job("r1")
    assert job.status == "failed" and job.error["status"] == 422 and "again" in job.message


def test_measurements_are_transactional(store):
    t = datetime(2026, 1, 10, 8, tzinfo=UTC)
    ms = [Measurement(kind="tank_level", element="T_E", time=t, value=2.0),
          Measurement(kind="tank_level", element="T_E", time=t, value=2.5)]
    acc, rej = ingest(store, ms, "k")
    assert len(acc) == 1 and rej[0]["reason"].startswith("duplicate")
    assert store.count_measurements() == 1
    state = store.latest_state()
    assert state[0]["element"] == "T_E" and state[0]["value"] == 2.0

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.measurement_writer() as w:  # a failure in the middle stores nothing
        w.add("tank_level", "T_E", "2026-01-10T09:00:00.000000Z", t.timestamp() + 3600, 3.0, "m", "k")
        raise Boom
    assert store.count_measurements() == 1 and store.latest_state()[0]["value"] == 2.0


def test_redacted_url():
    assert redact_url("postgresql://twin:s3cret@db:5432/twin") == "postgresql://twin:***@db:5432/twin"
    assert redact_url("postgresql://twin@db/twin") == "postgresql://twin@db/twin"


@pytest.mark.postgres
def test_service_on_postgresql_keeps_jobs_across_restarts(tmp_path, pg_url):
    data = tmp_path / "data"
    data.mkdir()
    svc = Service(data, "--workers", "1", database_url=pg_url).start()
    key = svc.key("run")
    try:
        with svc.client(key) as c:
            job_id = c.post("/processes/power-flow/execution", json={"inputs": {}},
                            headers={"Prefer": "respond-async"}).json()["jobID"]
            assert wait_job(c, job_id)["status"] == "successful"
            first = c.get(f"/jobs/{job_id}/results").json()
            assert c.get("/health").json()["database"]["kind"] == "postgresql"
    finally:
        svc.stop_gracefully()
    assert not (data / "service.db").exists()
    again = Service(data, "--workers", "1", database_url=pg_url).start()
    try:
        with again.client(key) as c:
            assert c.get(f"/jobs/{job_id}/results").json() == first
    finally:
        again.stop_gracefully()
