"""The service's configuration: where it keeps its data, which database, how jobs run and their limits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServiceConfig", "DATABASE_URL_ENV"]

DATABASE_URL_ENV = "TWIN_DATABASE_URL"


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of one service instance.

    * ``data_dir``: the SQLite database (``service.db``), scenario run folders (``runs/``) and batch folders
      (``batches/``);
    * ``database_url``: ``postgresql://user@host:port/db`` to keep keys, jobs and measurements in PostgreSQL
      instead of SQLite (default: the ``TWIN_DATABASE_URL`` environment variable, else SQLite);
    * ``workers``: job worker threads, each with its own worker process (0: accept and queue jobs, run none);
    * ``scheduler``: a Dask scheduler address: jobs other than batches are submitted to it, and batches use it
      for their scenarios (default: worker processes of this service; batches on a local Dask cluster);
    * ``max_jobs_per_key``: accepted + running jobs one key may have (more → 429);
    * ``job_timeout_s``: wall-clock limit of one job (s); ``sync_timeout_s``: how long a synchronous execution
      waits before it is answered like an asynchronous one (201 and the job's location);
    * ``max_batch_scenarios``: the most scenarios one batch job may expand to; ``batch_workers``: processes
      of a batch's local Dask cluster (default: the cores).
    """

    data_dir: Path = Path("service")
    database_url: str | None = None
    workers: int = 2
    scheduler: str | None = None
    max_jobs_per_key: int = 4
    job_timeout_s: float = 3600.0
    sync_timeout_s: float = 300.0
    max_batch_scenarios: int = 100
    batch_workers: int | None = None
    max_body_bytes: int = 8 * 1024 * 1024

    @classmethod
    def build(cls, data_dir: str | os.PathLike | None = None, database_url: str | None = None,
              **kw) -> ServiceConfig:
        """A configuration with the environment's database URL when none is given; ``None`` settings keep
        their defaults."""
        url = database_url or os.environ.get(DATABASE_URL_ENV) or None
        kw = {k: v for k, v in kw.items() if v is not None or k in ("scheduler", "batch_workers")}
        return cls(data_dir=Path(data_dir) if data_dir else Path("service"), database_url=url, **kw)

    def open_store(self):
        """The store of this configuration (schema created if missing)."""
        from .store import Store

        if self.database_url:
            if not self.database_url.startswith(("postgresql://", "postgres://")):
                from .store import StoreError

                raise StoreError("the database URL must start with postgresql://")
            return Store(url=self.database_url)
        return Store(sqlite_path=self.data_dir / "service.db")
