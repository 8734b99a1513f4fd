"""Shared fixtures: paths to the small data files shipped in tests/data, EPANET runs, an external Dask
cluster."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"
MATPOWER_DIR = DATA / "matpower"
REFERENCE_DIR = DATA / "reference" / "powerflow"
IEEE_CASES = ["case9", "case14", "case30", "case57", "case118", "case300"]


@pytest.fixture
def case_path():
    def _path(name: str) -> Path:
        return MATPOWER_DIR / f"{name}.m"

    return _path


@pytest.fixture
def epanet_hourly():
    """Run an ``.inp`` file in EPANET 2.3 (owa-epanet; the test is skipped without it) and return a function
    ``(path, nodes, value) -> DataFrame``: the nodes' ``value`` at every whole hour (rows: time in s) —
    ``"PRESSURE"`` or ``"HEAD"`` in the file's units, or ``"LEVEL"`` (head − elevation: a tank's level).
    ``df.attrs`` holds EPANET's node and link counts."""
    en = pytest.importorskip("epanet.toolkit")

    def run(path: Path, nodes, value: str = "PRESSURE") -> pd.DataFrame:
        p = en.createproject()
        rows = {}
        try:
            en.open(p, str(path), str(Path(path).with_suffix(".rpt")), "")
            counts = {"nodes": en.getcount(p, en.NODECOUNT), "links": en.getcount(p, en.LINKCOUNT)}
            idx = {k: en.getnodeindex(p, k) for k in nodes}

            def read(i: int) -> float:
                if value == "LEVEL":
                    return en.getnodevalue(p, i, en.HEAD) - en.getnodevalue(p, i, en.ELEVATION)
                return en.getnodevalue(p, i, getattr(en, value))

            en.openH(p)
            en.initH(p, 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # EPANET's own hydraulic warnings
                while True:
                    t = en.runH(p)
                    if t % 3600 == 0:
                        rows[t] = {k: read(i) for k, i in idx.items()}
                    if en.nextH(p) <= 0:
                        break
            en.closeH(p)
            en.close(p)
        finally:
            en.deleteproject(p)
        out = pd.DataFrame(rows).T
        out.attrs.update(counts)
        return out

    return run


REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _external_cluster(nanny: bool = True):
    """A Dask scheduler and two single-thread workers started as separate processes on localhost; yields the
    scheduler address once both workers are in, stops everything on exit."""
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([py, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([py, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                           "--nworkers" if nanny else "--no-nanny", *(["1"] if nanny else []),
                                           "--no-dashboard", "--host", "127.0.0.1"],
                                          cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    c.wait_for_workers(2, timeout=max(1.0, deadline - time.time()))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def external_dask_cluster():
    """``with external_dask_cluster(nanny=True) as address:`` a Dask scheduler and two worker processes."""
    return _external_cluster
