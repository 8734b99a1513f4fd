"""Batch throughput on Dask: 16 Berkane-day scenarios with 1 and then 2 workers, in one run.

    python bench/batch.py [--hours 24] [--analyses dispatch,pump_schedule,power_flow,hydraulics,traffic]

Prints, per worker count: wall time, scenarios per minute, the speed-up of 2 workers over 1, the batch
machinery's overhead per scenario (the task's wall time less the scenario's own ``run_scenario`` time:
process start, loading the twin, scheduling, serialisation, writing the catalogue) as a share of the
scenario's own time, and the peak resident memory of the scenario processes per worker.  Each worker
count runs in a fresh output folder (no reuse).  The scenarios: a 4 × 4 grid of new PV (0–15 MWp) and EV
share (1–12 %) over the summer baseline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _report import table, versions  # bench/_report.py (the script folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: scenarios

from scenarios.batch import parse_batch, run_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def spec(hours: int, analyses: list[str], reuse: bool) -> dict:
    return {"name": "bench16", "description": "4 x 4 grid of PV and EV share", "base": "baseline_summer.yaml",
            "hours": hours, "analyses": analyses, "reuse": reuse,
            "grid": {"pv_mw": [0, 5, 10, 15], "ev_share": [0.01, 0.04, 0.08, 0.12]}, "timeout_s": 1800}


def measure(hours: int, analyses: list[str], reuse: bool, workers: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        sp = parse_batch(spec(hours, analyses, reuse)).with_root(ROOT / "scenarios")
        t0 = time.perf_counter()
        res = run_batch(sp, out, workers=workers, report=False)
        wall = time.perf_counter() - t0
        cat = res.catalogue
        ok = cat[cat["status"] == "ok"]
        own = ok["t_total_s"]
        overhead = (ok["wall_s"] - own) / own
        return {"wall_s": wall, "per_min": 60 * len(ok) / wall, "ok": len(ok), "failed": len(cat) - len(ok),
                "scenario_s": statistics.median(own), "overhead": statistics.median(overhead),
                "overhead_max": float(overhead.max()), "peak_rss_mb": float(cat["peak_rss_mb"].max())}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--analyses", default="dispatch,pump_schedule,power_flow,hydraulics,traffic")
    ap.add_argument("--modes", default="reuse,no-reuse")
    args = ap.parse_args()
    analyses = [a for a in args.analyses.split(",") if a]
    modes = [m for m in args.modes.split(",") if m]
    rows, results = [], {}
    for mode in modes:
        for workers in (1, 2):
            results[mode, workers] = measure(args.hours, analyses, mode == "reuse", workers)
    for (mode, w), r in results.items():
        rows.append([f"{mode}, {w} worker{'s' if w > 1 else ''}", f"{r['ok']}/{r['ok'] + r['failed']}",
                     f"{r['wall_s']:.1f}", f"{r['per_min']:.2f}", f"{r['scenario_s']:.2f}",
                     f"{100 * r['overhead']:.1f} % ({100 * r['overhead_max']:.1f} %)", f"{r['peak_rss_mb']:.0f}"])
    print(f"16 scenarios, {args.hours} h, analyses {','.join(analyses)}")
    print(table(["", "ok", "wall s", "scen/min", "scenario s (median)", "overhead median (max)", "peak MB/worker"],
                rows))
    for mode in modes:
        print(f"{mode}: speed-up with 2 workers {results[mode, 2]['per_min'] / results[mode, 1]['per_min']:.2f}x "
              "(target >= 1.7x)")
    if set(modes) >= {"reuse", "no-reuse"}:
        for w in (1, 2):
            print(f"{w} worker(s): reuse / no reuse throughput "
                  f"{results['reuse', w]['per_min'] / results['no-reuse', w]['per_min']:.2f}x")
    print(json.dumps(versions("dask", "distributed", "highspy", "pyomo")))


if __name__ == "__main__":
    main()
