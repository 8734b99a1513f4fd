"""HTTP API throughput and latency on loopback: a service started here, 50 concurrent clients.

    python bench/api.py [--clients 50] [--seconds 10] [--jobs 10] [--database-url postgresql://...]

Starts ``python -m scenarios.api`` (one uvicorn process, 1 job worker) on a free port with a temporary data
folder, creates a key, then measures with an asynchronous client (httpx.AsyncClient, ``--clients`` tasks,
each sending its next request as soon as the previous one is answered):

* ``GET /collections/buses/items?limit=100`` (a page of GeoJSON, ≈ 60 kB);
* ``GET /jobs/{id}`` (a job's status document, a database read);

for ``--seconds`` each: requests per second, p50 and p99 latency (ms), errors.  With ``wrk`` installed
(``apt-get install wrk``; ``--tool wrk``, the default when it is found), wrk is the load generator (50
connections on 2 threads): a C client, which leaves the cores to the service.  Then the time from a
submitted asynchronous power-flow job (Berkane's summer grid, AC) to its results, polled every 10 ms: the
median of ``--jobs`` jobs, after one warm-up job.  The client runs in this process and shares the machine's
cores with the service: the figures are a lower bound of what the service does alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import child_env, table, versions  # bench/_report.py (the script folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from scenarios.api.keys import create_key  # noqa: E402
from scenarios.api.store import Store  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(data: Path, port: int, database_url: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "scenarios.api", "serve", "--port", str(port), "--data-dir", str(data),
           "--workers", "1", "--log-level", "warning"]
    if database_url:
        cmd += ["--database-url", database_url]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the service did not start")


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


def _ms(text: str) -> float:
    units = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
    for u in ("us", "ms", "s"):
        if text.endswith(u):
            return float(text[: -len(u)]) * units[u]
    return float(text)


def load_wrk(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, float]:
    """The same measurement with wrk (``--latency``: its percentiles)."""
    import shutil

    cmd = [shutil.which("wrk") or "wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds:g}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    res: dict[str, float] = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            res["rps"] = float(parts[1])
        elif parts[:1] == ["50%"]:
            res["p50"] = _ms(parts[1])
        elif parts[:1] == ["99%"]:
            res["p99"] = _ms(parts[1])
        elif "requests in" in line:
            res["n"] = int(parts[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            res["errors"] = int(parts[-1])
    return res


async def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` tasks requesting ``url`` back to back for ``seconds``: rate (1/s), p50, p99 (ms), errors."""
    lat: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30.0) as client:
        await client.get(url)  # warm
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.get(url)
                lat.append((time.perf_counter() - t0) * 1000.0)
                if r.status_code != 200:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {"rps": len(lat) / wall, "p50": percentile(lat, 50), "p99": percentile(lat, 99), "n": len(lat),
            "errors": errors}


def job_round_trip(base: str, headers: dict[str, str], n: int) -> list[float]:
    """Seconds from POST (async power flow) to its results, for ``n`` jobs after a warm-up one."""
    out = []
    with httpx.Client(base_url=base, headers=headers, timeout=60.0) as c:
        for i in range(n + 1):
            t0 = time.perf_counter()
            r = c.post("/processes/power-flow/execution", json={"inputs": {"case": "berkane-summer"}},
                       headers={"Prefer": "respond-async"})
            job = r.json()["jobID"]
            while c.get(f"/jobs/{job}").json()["status"] not in ("successful", "failed"):
                time.sleep(0.01)
            res = c.get(f"/jobs/{job}/results")
            assert res.status_code == 200 and res.json()["converged"], res.text[:200]
            if i:
                out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument("--database-url", default=os.environ.get("TWIN_DATABASE_URL"))
    ap.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto",
                    help="load generator (auto: wrk when installed, else httpx.AsyncClient)")
    args = ap.parse_args()
    import shutil

    tool = ("wrk" if shutil.which("wrk") else "httpx") if args.tool == "auto" else args.tool
    with tempfile.TemporaryDirectory(prefix="twin-bench-api-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        store = Store(url=args.database_url) if args.database_url else Store(sqlite_path=data / "service.db")
        key = create_key(store, "run", "bench")[1]
        store.close()
        port = _free_port()
        proc = start_service(data, port, args.database_url)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        try:
            trips = job_round_trip(base, headers, args.jobs)
            job = httpx.post(f"{base}/processes/power-flow/execution", json={"inputs": {}}, headers=headers,
                             timeout=60).headers["location"].rsplit("/", 1)[1]
            rows = []
            for name, path in (("GET collection page (buses, limit 100)", "/collections/buses/items?limit=100"),
                               ("GET job status", f"/jobs/{job}")):
                if tool == "wrk":
                    s = load_wrk(base + path, headers, args.clients, args.seconds)
                else:
                    s = asyncio.run(load(base + path, headers, args.clients, args.seconds))
                rows.append([name, f"{s['rps']:.0f}", f"{s['p50']:.1f}", f"{s['p99']:.1f}", f"{s['n']}",
                             f"{s['errors']}"])
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    db = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    print(f"HTTP API on loopback, {args.clients} concurrent clients ({tool}), {args.seconds:g} s per endpoint, {db}")
    print(table(["endpoint", "req/s", "p50 ms", "p99 ms", "requests", "errors"], rows))
    print()
    print(f"power-flow job, submitted (async) -> results: median {statistics.median(trips) * 1000:.0f} ms, "
          f"min {min(trips) * 1000:.0f} ms, max {max(trips) * 1000:.0f} ms over {len(trips)} jobs")
    print(versions("fastapi", "uvicorn", "httpx"))


if __name__ == "__main__":
    main()
