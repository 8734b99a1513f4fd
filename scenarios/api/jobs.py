"""The job executor: worker threads that take accepted jobs from the store and run them.

Each worker thread owns one worker process (started with ``spawn``, kept for the next jobs so that imports and
the twin load are paid once) and sends it one job at a time over a pipe; the process answers with progress
messages and the outputs or an error.  A job's computation therefore never runs in the web server's process:
an exception becomes a failed job with an exception document, a crash of the worker process (memory, a
segfault in a solver) fails only that job (the process is started again), a dismissed or timed-out job is
stopped by killing its process.  With a Dask scheduler (``scheduler``), jobs other than batches are submitted
to it instead (:func:`scenarios.api.compute.execute_plain`); batch jobs always run in a worker process and use
the scheduler for their scenarios.

Shutdown: :meth:`Executor.stop` stops the worker processes and hands the jobs they were running back to the
store's recovery (re-queued once, failed the second time), the same rule applied at start-up to jobs left
``running`` by a service that was killed.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .config import ServiceConfig
from .store import Store

__all__ = ["Executor"]

log = logging.getLogger("twin.api.jobs")
_POLL_S = 0.1
_STATUS_CHECK_S = 0.5


def _child_main(conn, data_dir: str, scheduler: str | None, batch_workers: int | None) -> None:
    """The worker process: run jobs sent over ``conn`` until it closes; exit if the service process dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle
    parent = os.getppid()

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch_parent, daemon=True).start()
    from . import compute

    try:
        compute.twin_of("summer")  # warm: the first job does not pay for the twin's load
    except Exception:  # noqa: BLE001 - a job will report the problem
        pass
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job_id, pid, inputs = msg

        def progress(pct: float, text: str) -> None:
            conn.send(("progress", float(pct), str(text)))

        ctx = compute.JobContext(data_dir=Path(data_dir), job_id=job_id, scheduler=scheduler,
                                 batch_workers=batch_workers, progress=progress)
        try:
            out = compute.execute(pid, inputs, ctx)
            json.dumps(out, allow_nan=False)  # fails here, not in the store
            reply = ("ok", out)
        except Exception as exc:  # every failure becomes a failed job
            log.error("job %s (%s) failed:\n%s", job_id, pid, traceback.format_exc())
            reply = ("error", compute.classify_error(exc))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class _WorkerProcess:
    """One spawned worker process and the parent's end of its pipe."""

    def __init__(self, cfg: ServiceConfig):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        # not a daemon: a batch job starts a local Dask cluster of processes from it
        self.proc = ctx.Process(target=_child_main, args=(child, str(cfg.data_dir.resolve()), cfg.scheduler,
                                                          cfg.batch_workers), daemon=False, name="twin-api-worker")
        self.proc.start()
        child.close()

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=10)
        self.conn.close()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()


class _Stopped(Exception):
    """The service is stopping: the job is left to the recovery rule."""


class Executor:
    """``cfg.workers`` worker threads running the store's accepted jobs (module docstring)."""

    def __init__(self, cfg: ServiceConfig, store: Store):
        self.cfg, self.store = cfg, store
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._done: dict[str, threading.Event] = {}
        self._done_lock = threading.Lock()
        self._procs: list[_WorkerProcess | None] = []
        self._dask = None
        self._dask_lock = threading.Lock()

    # -- life cycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Recover the jobs a stopped service left running, then start the worker threads."""
        if self.cfg.workers <= 0:
            return
        requeued, failed = self.store.recover_interrupted()
        for jid in requeued:
            log.warning("job %s was running when the service stopped: re-queued", jid)
        for jid in failed:
            log.warning("job %s was running when the service stopped, again: failed", jid)
        self._procs = [None] * self.cfg.workers
        for i in range(self.cfg.workers):
            t = threading.Thread(target=self._loop, args=(i,), name=f"twin-api-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop the worker processes and threads; jobs they were running go back to the recovery rule."""
        self._stopping.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=15)
        for i, wp in enumerate(self._procs):
            if wp is not None:
                wp.kill()
                self._procs[i] = None
        if self.cfg.workers > 0:
            requeued, failed = self.store.recover_interrupted()
            for jid in requeued:
                log.warning("job %s stopped by the service's shutdown: re-queued", jid)
            for jid in failed:
                log.warning("job %s stopped by the service's shutdown, again: failed", jid)
        if self._dask is not None:
            try:
                self._dask.close()
            except Exception:  # noqa: BLE001
                pass

    def alive_workers(self) -> int:
        """Worker threads running."""
        return sum(t.is_alive() for t in self._threads)

    # -- submission and waiting -----------------------------------------------------------------------------------
    def notify(self, job_id: str) -> threading.Event:
        """A job was accepted: wake a worker; returns the event set when the job ends (in this process)."""
        with self._done_lock:
            ev = self._done.setdefault(job_id, threading.Event())
        self._wake.set()
        return ev

    def _finished(self, job_id: str) -> None:
        with self._done_lock:
            ev = self._done.pop(job_id, None)
        if ev is not None:
            ev.set()

    # -- the worker threads ---------------------------------------------------------------------------------------
    def _loop(self, slot: int) -> None:
        if self.cfg.scheduler is None:
            self._ensure_process(slot)  # warm while idle
        while not self._stopping.is_set():
            try:
                job = self.store.claim_next_job()
            except Exception:  # noqa: BLE001 - a database hiccup: try again later
                log.exception("cannot read the job queue")
                job = None
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._wake.set()  # more jobs may be waiting: let another idle worker look
            try:
                self._run(slot, job.job_id, job.process_id, job.inputs)
            except _Stopped:
                return
            except Exception:  # noqa: BLE001 - never lose a job silently
                log.exception("job %s: executor error", job.job_id)
                self._fail(job.job_id, 422, "executor error", "the job could not be run by the service")
            finally:
                self._finished(job.job_id)

    def _ensure_process(self, slot: int) -> _WorkerProcess:
        wp = self._procs[slot]
        if wp is None or not wp.alive():
            if wp is not None:
                wp.kill()
            wp = _WorkerProcess(self.cfg)
            self._procs[slot] = wp
        return wp

    def _fail(self, job_id: str, status: int, title: str, detail: str) -> None:
        err = {"type": "about:blank", "title": title, "status": status, "detail": detail,
               "instance": f"/jobs/{job_id}"}
        self.store.finish_job(job_id, "failed", f"failed: {detail}"[:500], error=err)

    def _run(self, slot: int, job_id: str, pid: str, inputs: dict[str, Any]) -> None:
        if self.cfg.scheduler is not None and pid != "batch":
            return self._run_dask(job_id, pid, inputs)
        wp = self._ensure_process(slot)
        t0 = time.monotonic()
        wp.conn.send((job_id, pid, inputs))
        last_check, last_write, last_pct = t0, 0.0, -1.0
        while True:
            if self._stopping.is_set():
                wp.kill()
                self._procs[slot] = None
                raise _Stopped
            now = time.monotonic()

            def stop_process() -> None:
                wp.kill()
                self._procs[slot] = None

            if now - last_check > _STATUS_CHECK_S:
                last_check = now
                if self._must_end(job_id, t0, stop_process):
                    return
            try:
                ready = wp.conn.poll(_POLL_S)
            except (EOFError, OSError):
                ready = True
            if not ready and wp.alive():
                continue
            try:
                msg = wp.conn.recv() if ready else None
            except (EOFError, OSError):
                msg = None
            if msg is None:  # the process died (no message, or a broken pipe)
                code = wp.proc.exitcode
                stop_process()
                self._fail(job_id, 422, "worker process lost",
                           f"the job's worker process ended unexpectedly (exit code {code})")
                return
            if msg[0] == "progress":
                pct, text = msg[1], msg[2]
                if (abs(pct - last_pct) >= 1.0 or pct >= 100.0) and now - last_write > 0.2:
                    self.store.set_progress(job_id, int(min(99, pct)), text)
                    last_write, last_pct = now, pct
                continue
            if msg[0] == "ok":
                self.store.finish_job(job_id, "successful", "done", results=msg[1])
            else:
                err = {"type": "about:blank", "instance": f"/jobs/{job_id}", **msg[1]}
                self.store.finish_job(job_id, "failed", f"failed: {err['detail']}"[:500], error=err)
            return

    def _must_end(self, job_id: str, t0: float, stop) -> bool:
        """A running job dismissed, or past the service's time limit: ``stop()`` it (and fail it at the limit);
        True when the job must end now."""
        if self.store.job_status(job_id) == "dismissed":
            stop()
            log.info("job %s dismissed while running: its computation was stopped", job_id)
            return True
        if time.monotonic() - t0 > self.cfg.job_timeout_s:
            stop()
            self._fail(job_id, 422, "job timed out",
                       f"the job ran longer than the service's limit of {self.cfg.job_timeout_s:g} s")
            return True
        return False

    # -- Dask --------------------------------------------------------------------------------------------------------
    def _client(self):
        with self._dask_lock:
            if self._dask is None:
                from dask.distributed import Client

                self._dask = Client(self.cfg.scheduler, timeout="20s")
            return self._dask

    def _run_dask(self, job_id: str, pid: str, inputs: dict[str, Any]) -> None:
        from . import compute

        try:
            client = self._client()
        except Exception as exc:  # noqa: BLE001
            self._fail(job_id, 422, "scheduler unavailable",
                       f"the Dask scheduler cannot be reached: {type(exc).__name__}: {exc}")
            return
        self.store.set_progress(job_id, 1, f"submitted to the Dask scheduler ({pid})")
        fut = client.submit(compute.execute_plain, pid, inputs, str(self.cfg.data_dir.resolve()), job_id,
                            pure=False, key=f"twin-api-{job_id}")
        t0 = last = time.monotonic()
        while not fut.done():
            time.sleep(_POLL_S)
            if self._stopping.is_set():
                fut.cancel()
                raise _Stopped
            now = time.monotonic()
            if now - last > _STATUS_CHECK_S:
                last = now
                if self._must_end(job_id, t0, fut.cancel):
                    return
        if fut.status != "finished":
            exc = fut.exception() if fut.status == "error" else None
            self._fail(job_id, 422, "task failed", f"the Dask task ended with status {fut.status}"
                       + (f": {type(exc).__name__}: {exc}" if exc is not None else ""))
            return
        out = fut.result()
        if "__error__" in out:
            err = {"type": "about:blank", "instance": f"/jobs/{job_id}", **out["__error__"]}
            self.store.finish_job(job_id, "failed", f"failed: {err['detail']}"[:500], error=err)
        else:
            self.store.finish_job(job_id, "successful", "done", results=out)
