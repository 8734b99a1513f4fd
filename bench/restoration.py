"""Restoration scheduling benchmark: 50 failures × 6 crews, several seeds, heuristic against the MILP.

Run it from the repository root::

    python bench/restoration.py                          # seeds 0-4, 60 s per instance, crews with skills
    python bench/restoration.py --seeds 0 1 2 --time-limit 30 --no-skills --json restoration.json
    python bench/restoration.py --failures 20 --crews 3   # a smaller size

Instances (seeded, ``make_instance``): a synthetic road grid of 10 × 10 intersections with link times drawn
in 2.4-7.2 min; travel between two distinct intersections = 0.1 h (leaving, parking) + the shortest path,
capped at 1.5 h (so 0.1-1.5 h, still a metric), 0 within an intersection.  Failures at random intersections:
45 % energy (feeders and substations: 200-15 000 people, 0.5-12 MW), 35 % water (mains and pumping
stations: 300-20 000 people, 50-900 m³/h; a third of them require an energy failure, their feeder), 20 %
road (bridges, cuts: 50-5 000 people whose access is cut); repair 1-8 h (quarter hours); skills by layer
(electrical, hydraulic, civil).  Crews: depots at 3 intersections; two electrical, two hydraulic, one civil
and one general crew (fewer crews: the first of these and one general crew; more: general crews;
``--no-skills``: general crews only), available 0-2 h after the disruption.
Weights: people only (the default of ``RestorationOptions``).

Per seed: the heuristic's objective (people-hours; iterated local search capped at a fifth of the time
limit), the MILP's (HiGHS started from the heuristic, same time limit overall), the lower bound proven,
the gap (objective − bound) / objective, the heuristic's gap to the same bound, the wall time and the
HiGHS status; then medians.  Time: ``solve_restoration`` end to end (``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _report import table, versions  # bench/_report.py (the script folder is on sys.path)
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: solvers

from solvers.restoration import RestorationOptions, RestorationProblem, solve_restoration  # noqa: E402


def road_grid(rng: np.random.Generator, side: int = 10) -> pd.DataFrame:
    """Travel times (h) between the intersections of a side × side grid (see the module docstring)."""
    nodes = [f"n{r}_{c}" for r in range(side) for c in range(side)]
    tail, head = [], []
    for r in range(side):
        for c in range(side):
            k = r * side + c
            if c + 1 < side:
                tail += [k, k + 1]
                head += [k + 1, k]
            if r + 1 < side:
                tail += [k, k + side]
                head += [k + side, k]
    minutes = np.repeat(rng.uniform(2.4, 7.2, len(tail) // 2), 2)
    graph = coo_matrix((minutes / 60.0, (tail, head)), shape=(len(nodes), len(nodes))).tocsr()
    hours = np.minimum(dijkstra(graph) + 0.1, 1.5)
    np.fill_diagonal(hours, 0.0)
    return pd.DataFrame(hours, index=nodes, columns=nodes)


def make_instance(seed: int, failures: int = 50, crews: int = 6, skills: bool = True) -> RestorationProblem:
    """A random but realistic restoration problem (see the module docstring)."""
    rng = np.random.default_rng(seed)
    travel = road_grid(rng)
    nodes = travel.index.to_numpy()
    layer = rng.choice(["energy", "water", "road"], size=failures, p=[0.45, 0.35, 0.20])
    ids = [f"{lay[0]}{k:02d}" for k, lay in enumerate(layer)]
    people = np.where(layer == "energy", rng.uniform(200, 15000, failures),
                      np.where(layer == "water", rng.uniform(300, 20000, failures), rng.uniform(50, 5000, failures)))
    mw = np.where(layer == "energy", rng.uniform(0.5, 12.0, failures), 0.0)
    m3h = np.where(layer == "water", rng.uniform(50.0, 900.0, failures), 0.0)
    energy = [i for i, lay in zip(ids, layer) if lay == "energy"]
    requires = [(str(rng.choice(energy)),) if lay == "water" and energy and rng.random() < 1 / 3 else ()
                for lay in layer]
    skill = {"energy": "electrical", "water": "hydraulic", "road": "civil"}
    frame = pd.DataFrame({
        "layer": layer, "location": rng.choice(nodes, failures), "repair_h": rng.integers(4, 33, failures) / 4.0,
        "people": np.round(people), "unserved_mw": mw, "unserved_m3h": m3h, "requires": requires,
        "skill": [skill[lay] for lay in layer]}, index=pd.Index(ids, name="element"))
    depots = rng.choice(nodes, 3, replace=False)
    kinds = [("electrical",), ("electrical",), ("hydraulic",), ("hydraulic",), ("civil",), None]
    kinds = kinds[:crews - 1] + [None] * max(1, crews - 5)  # one general crew at least
    team = pd.DataFrame({
        "depot": [depots[k % 3] for k in range(crews)],
        "available_h": rng.integers(0, 9, crews) / 4.0,
        "skills": [kinds[k] if skills else None for k in range(crews)]},
        index=pd.Index([f"crew{k}" for k in range(crews)], name="crew"))
    return RestorationProblem(failures=frame, crews=team, travel_h=travel)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--failures", type=int, default=50)
    ap.add_argument("--crews", type=int, default=6)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-skills", action="store_true", help="every crew can repair every failure")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    args = ap.parse_args(argv)
    print(json.dumps(versions("highspy", "pyomo")))
    rows, out = [], []
    for seed in args.seeds:
        pb = make_instance(seed, args.failures, args.crews, skills=not args.no_skills)
        t0 = time.perf_counter()
        sol = solve_restoration(pb, RestorationOptions(time_limit_s=args.time_limit, threads=args.threads))
        wall = time.perf_counter() - t0
        heur_gap = (sol.heuristic_objective - sol.lower_bound) / sol.heuristic_objective
        rec = {"seed": seed, "heuristic": sol.heuristic_objective, "milp": sol.objective, "bound": sol.lower_bound,
               "gap": sol.mip_gap, "heuristic_gap": heur_gap, "time_s": wall, "status": sol.status,
               "improvement": 1 - sol.objective / sol.heuristic_objective, "cuts": sol.timings.get("cuts", 0.0),
               "heuristic_s": sol.timings.get("heuristic_s", 0.0), "cuts_s": sol.timings.get("cuts_s", 0.0)}
        out.append(rec)
        rows.append([str(seed), f"{rec['heuristic']:,.0f}", f"{rec['milp']:,.0f}", f"{rec['bound']:,.0f}",
                     f"{rec['improvement']:.2%}", f"{rec['heuristic_gap']:.2%}", f"{rec['gap']:.2%}",
                     f"{rec['time_s']:.1f}", rec["status"]])
        print(f"seed {seed}: {json.dumps(rec)}", flush=True)
    med = {k: statistics.median(r[k] for r in out) for k in ("heuristic", "milp", "bound", "improvement",
                                                             "heuristic_gap", "gap", "time_s")}
    rows.append(["median", f"{med['heuristic']:,.0f}", f"{med['milp']:,.0f}", f"{med['bound']:,.0f}",
                 f"{med['improvement']:.2%}", f"{med['heuristic_gap']:.2%}", f"{med['gap']:.2%}",
                 f"{med['time_s']:.1f}", ""])
    print(f"\n{args.failures} failures x {args.crews} crews, {'no skills' if args.no_skills else 'skills'}, "
          f"time limit {args.time_limit:g} s; objective in people-hours")
    print(table(["seed", "heuristic", "MILP", "bound", "MILP gain", "heur. gap", "MILP gap", "time s", "status"],
                rows))
    if args.json:
        args.json.write_text(json.dumps({"runs": out, "median": med}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
