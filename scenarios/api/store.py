"""The service's database: API keys, jobs and the twin's measurements, in SQLite (WAL, the default, one file
in the data directory) or PostgreSQL (``postgresql://…``).

One :class:`Store` class serves both backends: the SQL is shared (written with ``?`` placeholders, rewritten to
``%s`` for PostgreSQL); only the connection, the schema's column types and the write lock differ.  Every
method runs in its own transaction on a connection taken from a small pool, so the store can be used from the
web server's threads and the job executor's threads at once.  Writers that must check-then-write (a job under
the per-key limit, measurements against the latest stored ones) take the database's write lock first
(``BEGIN IMMEDIATE`` in SQLite, a transaction-level advisory lock in PostgreSQL), so two requests can never both
pass a check that only one of them should.

Times are stored as ISO-8601 UTC text (``2026-07-15T08:00:00.000000Z``, which sorts as time) and, for
measurements, also as seconds since the epoch (``t_epoch``) for comparisons.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Store", "StoreError", "DuplicateError", "JobRow", "utc_now", "iso", "redact_url", "JOB_STATUSES",
           "ACTIVE_STATUSES"]

JOB_STATUSES = ("accepted", "running", "successful", "failed", "dismissed")
ACTIVE_STATUSES = ("accepted", "running")
_LOCK_ID = 7_402_411  # the advisory lock of the writers that check-then-write (PostgreSQL)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    salt TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    revoked TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    process_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    progress INTEGER NOT NULL DEFAULT 0,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL DEFAULT '{}',
    response TEXT NOT NULL DEFAULT 'document',
    results TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (key_id, status);
CREATE TABLE IF NOT EXISTS measurements (
    kind TEXT NOT NULL,
    element TEXT NOT NULL,
    t TEXT NOT NULL,
    t_epoch DOUBLE PRECISION NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    received TEXT NOT NULL,
    key_id TEXT NOT NULL,
    PRIMARY KEY (kind, element, t_epoch)
);
CREATE TABLE IF NOT EXISTS twin_state (
    kind TEXT NOT NULL,
    element TEXT NOT NULL,
    t TEXT NOT NULL,
    t_epoch DOUBLE PRECISION NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    received TEXT NOT NULL,
    PRIMARY KEY (kind, element)
);
"""

_JOB_COLUMNS = ("job_id", "process_id", "key_id", "status", "message", "progress", "inputs", "outputs", "response",
                "results", "error", "attempts", "created", "started", "finished", "updated")


class StoreError(RuntimeError):
    """The database cannot be opened or used (the message names the database, never its password)."""


class DuplicateError(StoreError):
    """A row with the same key exists already."""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    """A timezone-aware time as sortable ISO-8601 UTC text with microseconds and ``Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redact_url(url: str) -> str:
    """A database URL without its password (for messages and logs)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


@dataclass(frozen=True)
class JobRow:
    """One job as stored: JSON columns decoded (``inputs``, ``outputs``, ``results``, ``error``)."""

    job_id: str
    process_id: str
    key_id: str
    status: str
    message: str
    progress: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    response: str
    results: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    created: str
    started: str | None
    finished: str | None
    updated: str

    @classmethod
    def from_row(cls, row: tuple) -> JobRow:
        d = dict(zip(_JOB_COLUMNS, row, strict=True))
        for k in ("inputs", "outputs"):
            d[k] = json.loads(d[k]) if d[k] else {}
        for k in ("results", "error"):
            d[k] = json.loads(d[k]) if d[k] else None
        d["progress"] = int(d["progress"])
        d["attempts"] = int(d["attempts"])
        return cls(**d)


class Store:
    """Keys, jobs and measurements in SQLite (``path``) or PostgreSQL (``url``); see the module docstring."""

    def __init__(self, *, sqlite_path: str | Path | None = None, url: str | None = None, pool_size: int = 8):
        if (sqlite_path is None) == (url is None):
            raise ValueError("Store: give exactly one of sqlite_path and url")
        self.kind = "sqlite" if url is None else "postgresql"
        self.path = Path(sqlite_path) if sqlite_path is not None else None
        self._url = url
        self.description = str(self.path) if self.path is not None else redact_url(url or "")
        self._pool: queue.LifoQueue = queue.LifoQueue(maxsize=pool_size)
        self._closed = False
        self._local_lock = threading.Lock()  # SQLite: one writer of this process at a time
        if self.kind == "postgresql":
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise StoreError("PostgreSQL needs the psycopg package: pip install 'berkane-twin[postgres]'") from None
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._create_schema()

    # -- connections ---------------------------------------------------------------------------------------------
    def _open(self):
        try:
            if self.kind == "sqlite":
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=30000")
                return conn
            import psycopg

            return psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        except Exception as exc:  # the driver's message may hold the URL: name the redacted one
            raise StoreError(f"cannot open the database {self.description}: {type(exc).__name__}") from None

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._open()
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if ok and not self._closed:
                try:
                    self._pool.put_nowait(conn)
                except queue.Full:
                    conn.close()
            else:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - a broken connection is dropped
                    pass

    def _sql(self, sql: str) -> str:
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    @contextmanager
    def _tx(self, *, lock: bool = False) -> Iterator[Any]:
        """A transaction (a cursor); ``lock``: hold the write lock for check-then-write sequences."""
        with self._conn() as conn:
            if self.kind == "sqlite":
                with self._local_lock if lock else _nullctx():
                    cur = conn.cursor()
                    cur.execute("BEGIN IMMEDIATE" if lock else "BEGIN")
                    try:
                        yield _Cursor(cur, self)
                        cur.execute("COMMIT")
                    except BaseException:
                        cur.execute("ROLLBACK")
                        raise
            else:
                with conn.transaction(), conn.cursor() as cur:
                    if lock:
                        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                    yield _Cursor(cur, self)

    def _create_schema(self) -> None:
        with self._tx(lock=True) as cur:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)

    def close(self) -> None:
        """Close the pooled connections."""
        self._closed = True
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self._tx() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone()[0] == 1
        except Exception:  # noqa: BLE001 - a health probe reports, never raises
            return False

    # -- keys -------------------------------------------------------------------------------------------------------
    def add_key(self, key_id: str, salt: str, secret_hash: str, scope: str, label: str = "") -> None:
        """Store a new key (its hash and salt, never the secret)."""
        try:
            with self._tx(lock=True) as cur:
                cur.execute("INSERT INTO api_keys (key_id, salt, secret_hash, scope, label, created) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (key_id, salt, secret_hash, scope, label, iso(utc_now())))
        except self._integrity_errors():
            raise DuplicateError(f"key {key_id} exists already") from None

    def get_key(self, key_id: str) -> dict[str, Any] | None:
        """The key's row (``key_id, salt, secret_hash, scope, label, created, revoked``), or None."""
        with self._tx() as cur:
            cur.execute("SELECT key_id, salt, secret_hash, scope, label, created, revoked FROM api_keys "
                        "WHERE key_id = ?", (key_id,))
            row = cur.fetchone()
        if row is None:
            return None
        return dict(zip(("key_id", "salt", "secret_hash", "scope", "label", "created", "revoked"), row, strict=True))

    def list_keys(self) -> list[dict[str, Any]]:
        """Every key: id, scope, label, created, revoked (no hashes)."""
        with self._tx() as cur:
            cur.execute("SELECT key_id, scope, label, created, revoked FROM api_keys ORDER BY created")
            return [dict(zip(("key_id", "scope", "label", "created", "revoked"), r, strict=True))
                    for r in cur.fetchall()]

    def revoke_key(self, key_id: str) -> bool:
        """Mark a key revoked; False when there is no such (unrevoked) key."""
        with self._tx(lock=True) as cur:
            cur.execute("UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL",
                        (iso(utc_now()), key_id))
            return cur.rowcount == 1

    # -- jobs ---------------------------------------------------------------------------------------------------------
    def create_job(self, job_id: str, process_id: str, key_id: str, inputs: dict, outputs: dict, response: str,
                   limit: int | None) -> JobRow | None:
        """Insert an accepted job, unless ``key_id`` has ``limit`` or more accepted or running jobs (None)."""
        now = iso(utc_now())
        with self._tx(lock=True) as cur:
            if limit is not None:
                cur.execute("SELECT COUNT(*) FROM jobs WHERE key_id = ? AND status IN ('accepted', 'running')",
                            (key_id,))
                if cur.fetchone()[0] >= limit:
                    return None
            cur.execute(f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({', '.join('?' * len(_JOB_COLUMNS))})",
                        (job_id, process_id, key_id, "accepted", "queued", 0, json.dumps(inputs),
                         json.dumps(outputs), response, None, None, 0, now, None, None, now))
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> JobRow | None:
        """The job, or None."""
        with self._tx() as cur:
            cur.execute(f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,))
            row = cur.fetchone()
        return None if row is None else JobRow.from_row(row)

    def job_status(self, job_id: str) -> str | None:
        """Only the job's status (cheap; the executor polls it for dismissals)."""
        with self._tx() as cur:
            cur.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
            row = cur.fetchone()
        return None if row is None else row[0]

    def list_jobs(self, key_id: str | None, statuses: list[str] | None, process_ids: list[str] | None,
                  limit: int, offset: int) -> tuple[list[JobRow], int]:
        """Jobs, newest first, of one key (None: all), filtered by status and process; and how many match."""
        where, args = [], []
        if key_id is not None:
            where.append("key_id = ?")
            args.append(key_id)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args += statuses
        if process_ids:
            where.append(f"process_id IN ({', '.join('?' * len(process_ids))})")
            args += process_ids
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._tx() as cur:
            cur.execute(f"SELECT COUNT(*) FROM jobs{clause}", tuple(args))
            total = int(cur.fetchone()[0])
            cur.execute(f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs{clause} ORDER BY created DESC, job_id "
                        "LIMIT ? OFFSET ?", (*args, limit, offset))
            rows = [JobRow.from_row(r) for r in cur.fetchall()]
        return rows, total

    def claim_next_job(self) -> JobRow | None:
        """Take the oldest accepted job: set it running (attempts + 1) and return it; None when there is none."""
        with self._tx(lock=True) as cur:
            cur.execute("SELECT job_id FROM jobs WHERE status = 'accepted' ORDER BY created, job_id LIMIT 1")
            row = cur.fetchone()
            if row is None:
                return None
            now = iso(utc_now())
            cur.execute("UPDATE jobs SET status = 'running', started = ?, updated = ?, progress = 0, "
                        "message = 'running', attempts = attempts + 1 WHERE job_id = ? AND status = 'accepted'",
                        (now, now, row[0]))
            if cur.rowcount != 1:
                return None
        return self.get_job(row[0])

    def set_progress(self, job_id: str, progress: int, message: str) -> None:
        """Update a running job's progress (0–100) and message."""
        with self._tx() as cur:
            cur.execute("UPDATE jobs SET progress = ?, message = ?, updated = ? "
                        "WHERE job_id = ? AND status = 'running'",
                        (int(max(0, min(100, progress))), message[:500], iso(utc_now()), job_id))

    def finish_job(self, job_id: str, status: str, message: str, results: dict | None = None,
                   error: dict | None = None) -> bool:
        """Record the end of a running job (successful or failed); False when it was dismissed meanwhile."""
        now = iso(utc_now())
        with self._tx(lock=True) as cur:
            cur.execute("UPDATE jobs SET status = ?, message = ?, progress = ?, results = ?, error = ?, finished = ?, "
                        "updated = ? WHERE job_id = ? AND status = 'running'",
                        (status, message[:2000], 100 if status == "successful" else 0,
                         None if results is None else json.dumps(results, allow_nan=False),
                         None if error is None else json.dumps(error), now, now, job_id))
            return cur.rowcount == 1

    def dismiss_job(self, job_id: str) -> JobRow | None:
        """Dismiss a job (any status): status ``dismissed``, results deleted; returns the updated job."""
        now = iso(utc_now())
        with self._tx(lock=True) as cur:
            cur.execute("UPDATE jobs SET status = 'dismissed', message = 'dismissed', results = NULL, updated = ?, "
                        "finished = COALESCE(finished, ?) WHERE job_id = ?", (now, now, job_id))
        return self.get_job(job_id)

    def recover_interrupted(self, max_attempts: int = 2) -> tuple[list[str], list[str]]:
        """Jobs left ``running`` by a service that stopped: re-queue those started fewer than ``max_attempts``
        times, fail the others with a message saying so.  Returns (re-queued ids, failed ids)."""
        now = iso(utc_now())
        with self._tx(lock=True) as cur:
            cur.execute("SELECT job_id, attempts FROM jobs WHERE status = 'running'")
            rows = cur.fetchall()
            requeued = [r[0] for r in rows if int(r[1]) < max_attempts]
            failed = [r[0] for r in rows if int(r[1]) >= max_attempts]
            for jid in requeued:
                cur.execute("UPDATE jobs SET status = 'accepted', progress = 0, started = NULL, updated = ?, "
                            "message = 're-queued: the service stopped while the job was running' WHERE job_id = ?",
                            (now, jid))
            for jid in failed:
                err = {"type": "about:blank", "title": "job interrupted", "status": 422,
                       "detail": f"the service stopped while the job was running, {max_attempts} times; "
                                 "it is not started again", "instance": f"/jobs/{jid}"}
                cur.execute("UPDATE jobs SET status = 'failed', updated = ?, finished = ?, error = ?, "
                            "message = 'failed: the service stopped while the job was running, again' "
                            "WHERE job_id = ?", (now, now, json.dumps(err), jid))
        return requeued, failed

    def count_jobs(self) -> dict[str, int]:
        """How many jobs there are of each status."""
        with self._tx() as cur:
            cur.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            out = dict.fromkeys(JOB_STATUSES, 0)
            out.update({s: int(n) for s, n in cur.fetchall()})
        return out

    # -- measurements -------------------------------------------------------------------------------------------
    @contextmanager
    def measurement_writer(self) -> Iterator[MeasurementWriter]:
        """A locked transaction for checking and storing measurements: nothing is stored unless it commits."""
        with self._tx(lock=True) as cur:
            yield MeasurementWriter(cur, self)

    def latest_state(self) -> list[dict[str, Any]]:
        """The latest accepted measurement of every element: kind, element, time, value, unit, received."""
        with self._tx() as cur:
            cur.execute("SELECT kind, element, t, t_epoch, value, unit, received FROM twin_state "
                        "ORDER BY kind, element")
            return [dict(zip(("kind", "element", "time", "t_epoch", "value", "unit", "received"), r, strict=True))
                    for r in cur.fetchall()]

    def count_measurements(self) -> int:
        """How many measurements are stored (all, not only the latest)."""
        with self._tx() as cur:
            cur.execute("SELECT COUNT(*) FROM measurements")
            return int(cur.fetchone()[0])

    def _integrity_errors(self) -> tuple[type[BaseException], ...]:
        if self.kind == "sqlite":
            return (sqlite3.IntegrityError,)
        import psycopg

        return (psycopg.IntegrityError,)


class MeasurementWriter:
    """Reads and writes of one measurement transaction (:meth:`Store.measurement_writer`)."""

    def __init__(self, cur: _Cursor, store: Store):
        self._cur, self._store = cur, store

    def latest(self, kind: str, element: str) -> float | None:
        """The time (epoch s) of the element's latest accepted measurement, or None."""
        self._cur.execute("SELECT t_epoch FROM twin_state WHERE kind = ? AND element = ?", (kind, element))
        row = self._cur.fetchone()
        return None if row is None else float(row[0])

    def exists(self, kind: str, element: str, t_epoch: float) -> bool:
        """Whether a measurement of the element at that time is stored already."""
        self._cur.execute("SELECT 1 FROM measurements WHERE kind = ? AND element = ? AND t_epoch = ?",
                          (kind, element, t_epoch))
        return self._cur.fetchone() is not None

    def add(self, kind: str, element: str, t: str, t_epoch: float, value: float, unit: str, key_id: str) -> None:
        """Store a measurement and make it the element's latest state."""
        now = iso(utc_now())
        self._cur.execute("INSERT INTO measurements (kind, element, t, t_epoch, value, unit, received, key_id) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (kind, element, t, t_epoch, value, unit, now, key_id))
        self._cur.execute("INSERT INTO twin_state (kind, element, t, t_epoch, value, unit, received) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, element) DO UPDATE SET t = excluded.t, "
                          "t_epoch = excluded.t_epoch, value = excluded.value, unit = excluded.unit, "
                          "received = excluded.received WHERE twin_state.t_epoch < excluded.t_epoch",
                          (kind, element, t, t_epoch, value, unit, now))


class _Cursor:
    """A cursor that rewrites ``?`` placeholders for PostgreSQL."""

    def __init__(self, cur: Any, store: Store):
        self._c, self._s = cur, store

    def execute(self, sql: str, args: tuple = ()) -> None:
        self._c.execute(self._s._sql(sql), args)

    def fetchone(self):
        return self._c.fetchone()

    def fetchall(self):
        return self._c.fetchall()

    @property
    def rowcount(self) -> int:
        return self._c.rowcount


@contextmanager
def _nullctx() -> Iterator[None]:
    yield None
