"""Authentication and scopes: no key, malformed, unknown and wrong keys, wrong scope, revoked keys (revoked with
the ``twin keys`` command line), both headers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import ROOT

PROTECTED = ["/api", "/health", "/processes", "/processes/power-flow", "/jobs", "/jobs/x", "/jobs/x/results",
             "/collections", "/collections/buses", "/collections/buses/items", "/collections/buses/items/x", "/state"]


def _twin(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TWIN_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


@pytest.mark.parametrize("path", PROTECTED)
def test_no_key_is_401(service, path):
    with service.client() as c:
        r = c.get(path)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401


@pytest.mark.parametrize("key, reason", [
    ("hello", "malformed"),
    ("twk_000000000000.abcdefghijklmnopqrstuvwxyz", "unknown"),
])
def test_bad_keys_are_401(service, key, reason):
    with service.client(key) as c:
        r = c.get("/processes")
    assert r.status_code == 401 and reason in r.json()["detail"]


def test_wrong_secret_is_401(service):
    key_id = service.keys["admin"].split(".")[0]
    with service.client(key_id + ".wrongwrongwrongwrongwrongwrong") as c:
        r = c.get("/processes")
    assert r.status_code == 401 and r.json()["detail"] == "invalid API key"


def test_scopes(service):
    with service.client(service.keys["read"]) as c:
        assert c.get("/processes").status_code == 200
        r = c.post("/processes/power-flow/execution", json={"inputs": {}})
        assert r.status_code == 403 and "'run'" in r.json()["detail"]
        assert c.delete("/jobs/x").status_code == 403
    with service.client(service.keys["run"]) as c:
        assert c.post("/processes/power-flow/execution", json={"inputs": {"algorithm": "dc"}}).status_code == 200


def test_x_api_key_header(service):
    import httpx

    r = httpx.get(service.url + "/processes", headers={"X-API-Key": service.keys["read"]})
    assert r.status_code == 200


def test_cli_creates_lists_and_revokes_keys(service):
    out = _twin("keys", "create", "--scope", "read", "--label", "probe", "--data-dir", str(service.data_dir))
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    assert key.startswith("twk_") and "shown only now" in out.stderr
    key_id = key[4:].split(".")[0]
    with service.client(key) as c:
        assert c.get("/processes").status_code == 200
        listing = _twin("keys", "list", "--data-dir", str(service.data_dir))
        assert key_id in listing.stdout and key.split(".")[1] not in listing.stdout
        assert _twin("keys", "revoke", key_id, "--data-dir", str(service.data_dir)).returncode == 0
        r = c.get("/processes")
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    again = _twin("keys", "revoke", key_id, "--data-dir", str(service.data_dir))
    assert again.returncode == 1 and "no active key" in again.stderr
    bad = _twin("keys", "create", "--scope", "root", "--data-dir", str(service.data_dir))
    assert bad.returncode != 0


def test_secrets_are_stored_hashed(service):
    store = service.store()
    try:
        key = service.keys["run"]
        row = store.get_key(key[4:].split(".")[0])
    finally:
        store.close()
    secret = key.split(".")[1]
    assert secret not in str(row) and len(row["secret_hash"]) == 64
