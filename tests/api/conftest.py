"""Fixtures of the HTTP API tests: services started as real processes (``python -m scenarios.api``) on free
loopback ports with temporary data folders, API keys, and an httpx client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from scenarios.api.keys import create_key
from scenarios.api.store import Store

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "TWIN_TEST_DATABASE_URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A service process: start, wait for it, stop (SIGTERM) or kill (SIGKILL); its stderr in ``log``."""

    def __init__(self, data_dir: Path, *args: str, database_url: str | None = None):
        self.data_dir, self.args, self.database_url = data_dir, list(args), database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}-{self.port}.log"

    def store(self) -> Store:
        if self.database_url:
            return Store(url=self.database_url)
        return Store(sqlite_path=self.data_dir / "service.db")

    def key(self, scope: str) -> str:
        store = self.store()
        try:
            return create_key(store, scope, "test")[1]
        finally:
            store.close()

    def start(self, timeout_s: float = 90.0) -> Service:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("TWIN_DATABASE_URL", None)
        cmd = [sys.executable, "-m", "scenarios.api", "serve", "--port", str(self.port), "--data-dir",
               str(self.data_dir), *self.args]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._fh, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the service did not start in {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        self._fh.close()
        return code

    def stop_gracefully(self) -> None:
        """SIGTERM, and check that the service shut down cleanly (uvicorn re-raises the signal after its
        graceful shutdown, so the exit status is -SIGTERM)."""
        code = self.stop()
        assert code in (0, -signal.SIGTERM), code
        assert "Application shutdown complete" in self.log.read_text()[-2000:]

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def client(self, key: str | None = None, timeout: float = 120.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def wait_job(client: httpx.Client, job_id: str, timeout_s: float = 120.0,
             until: tuple[str, ...] = ("successful", "failed", "dismissed")) -> dict:
    """Poll a job's status until it is one of ``until``; return the status document."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        doc = client.get(f"/jobs/{job_id}").json()
        if doc["status"] in until:
            return doc
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {doc['status']} after {timeout_s} s")


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """One service for the end-to-end tests (one worker, small batches on one Dask worker)."""
    svc = Service(tmp_path_factory.mktemp("svc") / "data", "--workers", "1", "--batch-workers", "1",
                  "--max-jobs-per-key", "3", "--max-batch-scenarios", "4")
    svc.data_dir.mkdir(parents=True)
    svc.start()
    svc.keys = {scope: svc.key(scope) for scope in ("read", "run", "admin")}
    svc.keys["run2"] = svc.key("run")
    yield svc
    svc.stop()


@pytest.fixture
def pg_url() -> str:
    """The throw-away PostgreSQL database of the tests (``.ci/run`` starts one), or skip."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL server: set {PG_ENV}=postgresql://… (.ci/run starts one)")
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(url, autocommit=True) as conn:  # a clean database for each test
        conn.execute("DROP TABLE IF EXISTS api_keys, jobs, measurements, twin_state")
    return url
