"""``twin serve`` and ``twin keys``: start the service, create, list and revoke API keys."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import DATABASE_URL_ENV, ServiceConfig

__all__ = ["add_serve_arguments", "add_keys_arguments", "serve_cli", "keys_cli", "main"]


def _add_store_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default="service", help="the service's folder: SQLite database, run and batch "
                   "folders (default: ./service)")
    p.add_argument("--database-url", help=f"postgresql://user@host:port/db (default: ${DATABASE_URL_ENV}, else "
                   "SQLite in the data folder)")


def add_serve_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``twin serve`` arguments."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _add_store_arguments(p)
    p.add_argument("--workers", type=int, default=2, help="job workers, each with a worker process (default 2; "
                   "0: queue jobs without running them)")
    p.add_argument("--scheduler", help="a Dask scheduler address: run jobs on it (default: the worker processes)")
    p.add_argument("--max-jobs-per-key", type=int, default=4, help="accepted + running jobs per key (default 4)")
    p.add_argument("--job-timeout", type=float, default=3600.0, help="wall-clock limit of a job, s (default 3600)")
    p.add_argument("--sync-timeout", type=float, default=300.0, help="how long a synchronous execution waits "
                   "before it is answered as asynchronous, s (default 300)")
    p.add_argument("--max-batch-scenarios", type=int, default=100, help="scenarios per batch job (default 100)")
    p.add_argument("--batch-workers", type=int, help="processes of a batch job's local Dask cluster "
                   "(default: the cores)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def add_keys_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``twin keys`` sub-commands."""
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    c = sub.add_parser("create", help="create a key and print it (once)")
    c.add_argument("--scope", required=True, choices=["read", "run", "admin"])
    c.add_argument("--label", default="", help="a note: who or what uses the key")
    _add_store_arguments(c)
    r = sub.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id", help="the key's id (the 12 hex digits after twk_)")
    _add_store_arguments(r)
    ls = sub.add_parser("list", help="list the keys (ids, scopes, dates; never secrets)")
    _add_store_arguments(ls)
    return p


def _config(args: argparse.Namespace, **kw) -> ServiceConfig:
    return ServiceConfig.build(args.data_dir, args.database_url, **kw)


def serve_cli(args: argparse.Namespace) -> int:
    """Start the service with uvicorn (access logs as JSON lines on stderr)."""
    import uvicorn

    from .app import create_app

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(message)s", stream=sys.stderr)
    cfg = _config(args, workers=args.workers, scheduler=args.scheduler, max_jobs_per_key=args.max_jobs_per_key,
                  job_timeout_s=args.job_timeout, sync_timeout_s=args.sync_timeout,
                  max_batch_scenarios=args.max_batch_scenarios, batch_workers=args.batch_workers)
    cfg.open_store().close()  # fail now, with a clear message, if the database cannot be used
    uvicorn.run(create_app(cfg), host=args.host, port=args.port, access_log=False, log_level=args.log_level,
                timeout_graceful_shutdown=5)
    return 0


def keys_cli(args: argparse.Namespace) -> int:
    """Create, revoke or list keys in the service's database."""
    from .keys import create_key

    store = _config(args).open_store()
    try:
        if args.keys_command == "create":
            key_id, key = create_key(store, args.scope, args.label)
            print(key)
            print(f"key {key_id} ({args.scope}) created in {store.description}; the key is shown only now",
                  file=sys.stderr)
            return 0
        if args.keys_command == "revoke":
            if not store.revoke_key(args.key_id):
                print(f"twin keys: error: there is no active key {args.key_id!r}", file=sys.stderr)
                return 1
            print(f"key {args.key_id} revoked")
            return 0
        for k in store.list_keys():
            state = f"revoked {k['revoked']}" if k["revoked"] else "active"
            print(f"{k['key_id']}  {k['scope']:<5}  created {k['created']}  {state}  {k['label']}")
        return 0
    finally:
        store.close()


def main(argv: list[str] | None = None, prog: str = "python -m scenarios.api") -> int:
    """``python -m scenarios.api [serve] ...`` or ``python -m scenarios.api keys ...`` (``twin serve``,
    ``twin keys`` with ``prog="twin"``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog=prog)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_serve_arguments(sub.add_parser("serve", help="start the service"))
    add_keys_arguments(sub.add_parser("keys", help="create, revoke or list API keys"))
    if not argv or argv[0].startswith("-"):
        argv = ["serve", *argv]
    args = p.parse_args(argv)
    from .store import StoreError

    try:
        return serve_cli(args) if args.command == "serve" else keys_cli(args)
    except (StoreError, ValueError) as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
