"""Extended-period hydraulics benchmark: twin.water against EPANET 2.3 (owa-epanet) and WNTR's WNTRSimulator.

Run it from the repository root (needs ``owa-epanet`` and ``wntr`` + ``six`` besides the project itself)::

    python bench/hydraulics.py                         # Net3 and Net6; 7 runs each (WNTR: 3 on Net3, skipped on Net6)
    python bench/hydraulics.py --wntr-large            # also WNTR on Net6: one run, about two minutes more
    python bench/hydraulics.py Net1 path/to/other.inp --repeat 5 --json hydraulics.json
    python bench/hydraulics.py --no-wntr --import-repeat 0

The default run takes about 30 s on a 2-CPU machine, 2.5-3 min with ``--wntr-large``.

A network is ``Net1``, ``Net2``, ``Net3``, ``Net6`` (files in ``tests/data/water/``) or a path to an ``.inp`` file.
Every tool runs in a fresh subprocess of its own (this script with ``--worker TOOL FILE``) that reports JSON on
stdout, so neither imports nor shared libraries can mix: WNTR ships an EPANET 2.2 library under the same file name
as owa-epanet's 2.3 one, and the EPANET worker checks ``getversion()`` that it really talks to 2.3.  Each worker does
one untimed warm-up run and then ``--repeat`` timed runs (``time.perf_counter``, ``gc.collect()`` before each);
tables show medians and the min-max spread.  Reading the file is never part of "ours" or "WNTR".

What is timed (default options of the file: duration, time steps, accuracy, demand model):

``ours``
    ``simulate_hydraulics(wn)`` on a ``wn = read_inp(path)`` read once: compiling the network, every hydraulic
    step (demands, controls, the Cython GGA kernel, time step) and building the result tables.  Its own
    ``res.timings`` split that into ``compile`` (``compile_s``), ``kernel`` (``solve_s``, the GGA solves), ``step``
    (``total_s - compile_s - solve_s``: the Python time-stepping around the kernel) and ``tables`` (call wall time
    minus ``total_s``: assembling the ``HydraulicResult`` DataFrames).
``EPANET``
    EPANET 2.3 through ``epanet.toolkit``, hydraulics only: ``createproject`` + ``open`` (parses the file) +
    ``openH`` + ``initH(0)`` + the ``runH``/``nextH`` loop + ``closeH`` + ``close`` + ``deleteproject``.
    ``EN-open`` is the same run without ``createproject``/``open``/``close``/``deleteproject``, i.e. the like-for-like
    figure for ours, which also starts from an already-read network.  EPANET keeps no result tables.
``WNTR``
    ``wntr.sim.WNTRSimulator(wn).run_sim()`` (WNTR's own Python/NumPy solver, not its EPANET wrapper) on a
    ``wntr.network.WaterNetworkModel(path)`` read once; ``wn.reset_initial_values()`` runs, untimed, before each run.
    It is slow: on Net6 (3323 junctions, 96 h) one run took 115-125 s on a 2-CPU x86-64 machine, against about
    0.6 s for Net3.  So on networks with more than ``--wntr-max-junctions`` junctions (default 1000; this
    catches Net6) WNTR runs only with ``--wntr-large``, then ``--wntr-large-repeat`` times (default 1) and without
    the warm-up run: there is no JIT or cache to warm (on Net3 the first run is within 3 % of the later ones), and
    leaving it out keeps the run near two minutes rather than four.  Elsewhere it runs ``--wntr-repeat`` times (3).

Targets: ``ours/EN`` = ours / EPANET <= 2 (also shown against ``EN-open``) and ``WNTR/ours`` >= 50.

Checks, so that a fast but wrong run cannot pass unnoticed: the number of hydraulic steps (solves at distinct times)
must be the same for ours and EPANET (Net3: 183, Net6: 608) and every step of ours must have converged; our heads are
compared, node by node, with EPANET's (converted to m) at t = 0 and at every reporting time, and WNTR's at t = 0.
Differences at later times can come from a control or a tank switching at a slightly different time and are only
informative; t = 0 should agree to within millimetres.

Import times: ``import twin.water``, ``import epanet.toolkit``, ``import wntr``, each in a fresh interpreter
(after one untimed warm-up import, so the OS file cache is warm), median of ``--import-repeat`` (default 5):
``import`` is the import statement alone, ``process`` the whole ``python -c`` wall time seen from outside.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any

from _report import child_env, stats, table, versions  # bench/_report.py (the script folder is on sys.path)

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "water"
DEFAULT_NETWORKS = ("Net3", "Net6")
TOOLS = ("ours", "epanet", "wntr")
FT = 0.3048  # m per foot
US_FLOW_UNITS = range(0, 5)  # EN_CFS, EN_GPM, EN_MGD, EN_IMGD, EN_AFD: heads in feet
TARGET_OURS_EN = 2.0
TARGET_WNTR_OURS = 50.0
T0_TOL_M = 0.01  # heads at t = 0 should agree with EPANET's to this (m)


# ---------------------------------------------------------------------------------------------------------- workers


def timed(call: Any, repeat: int, warmup: bool = True, before: Any = None) -> tuple[list[float], list[Any]]:
    """Optional warm-up call, then ``repeat`` timed calls; returns wall times (s) and results of the timed calls."""
    walls, outs = [], []
    for i in range(repeat + (1 if warmup else 0)):
        if before is not None:
            before()
        gc.collect()
        t0 = time.perf_counter()
        out = call()
        dt = time.perf_counter() - t0
        if i or not warmup:
            walls.append(dt)
            outs.append(out)
    return walls, outs


def worker_ours(path: str, repeat: int, heads_out: str | None) -> dict[str, Any]:
    import numpy as np

    from twin.water import HydraulicWarning, read_inp, simulate_hydraulics

    warnings.simplefilter("ignore", HydraulicWarning)
    wn = read_inp(path)
    walls, results = timed(lambda: simulate_hydraulics(wn), repeat)
    res = results[-1]
    runs = [dict(r.timings, wall_s=w) for r, w in zip(results, walls)]
    if heads_out:
        h = res.node_head
        np.savez(heads_out, ids=np.asarray(h.columns, dtype=str), times=h.index.to_numpy(), heads=h.to_numpy())
    return {
        "walls": walls,
        "runs": runs,
        "steps": int(len(res.steps)),
        "max_iterations": int(res.steps["iterations"].max()),
        "converged": bool(res.converged),
        "junctions": int((wn.node_type() == "junction").sum()),
        "messages": len(res.messages),
    }


def worker_epanet(path: str, repeat: int, heads_out: str | None) -> dict[str, Any]:
    from epanet import toolkit as en

    version = en.getversion()
    if not 20300 <= version < 20400:
        raise RuntimeError(f"epanet.toolkit reaches EPANET {version}, not 2.3 (a clashing library loaded first?)")
    warnings.simplefilter("ignore")  # the SWIG wrapper turns EPANET warning codes (e.g. negative pressures) into these
    with tempfile.TemporaryDirectory(prefix="bench-epanet-") as tmp:
        return epanet_runs(en, path, repeat, heads_out, os.path.join(tmp, "run.rpt"))


def epanet_runs(en: Any, path: str, repeat: int, heads_out: str | None, rpt: str) -> dict[str, Any]:
    import numpy as np

    opens = []

    def run() -> int:
        t0 = time.perf_counter()
        ph = en.createproject()
        en.open(ph, path, rpt, "")
        t1 = time.perf_counter()
        en.openH(ph)
        en.initH(ph, 0)
        steps = 0
        while True:
            en.runH(ph)
            steps += 1
            if en.nextH(ph) <= 0:
                break
        en.closeH(ph)
        t2 = time.perf_counter()
        en.close(ph)
        en.deleteproject(ph)
        opens.append((t1 - t0) + (time.perf_counter() - t2))
        return steps

    walls, steps = timed(run, repeat)
    opens = opens[1:]  # drop the warm-up
    out = {
        "walls": walls,
        "walls_no_open": [w - o for w, o in zip(walls, opens)],
        "steps": steps[-1],
        "version": en.getversion(),
    }
    # one more, untimed run: heads at every reporting time, in m
    ph = en.createproject()
    en.open(ph, path, rpt, "")
    n = en.getcount(ph, en.NODECOUNT)
    out["junctions"] = en.getcount(ph, en.NODECOUNT) - en.getcount(ph, en.TANKCOUNT)
    unit = FT if en.getflowunits(ph) in US_FLOW_UNITS else 1.0
    rstart, rstep = en.gettimeparam(ph, en.REPORTSTART), en.gettimeparam(ph, en.REPORTSTEP)
    ids = [en.getnodeid(ph, i) for i in range(1, n + 1)]
    times, heads = [], []
    en.openH(ph)
    en.initH(ph, 0)
    while True:
        t = en.runH(ph)
        if t >= rstart and (t - rstart) % rstep == 0:
            times.append(t)
            heads.append([en.getnodevalue(ph, i, en.HEAD) * unit for i in range(1, n + 1)])
        if en.nextH(ph) <= 0:
            break
    en.closeH(ph)
    en.close(ph)
    en.deleteproject(ph)
    if heads_out:
        np.savez(heads_out, ids=np.asarray(ids, dtype=str), times=np.asarray(times), heads=np.asarray(heads))
    return out


def worker_wntr(path: str, repeat: int, heads_out: str | None, warmup: bool) -> dict[str, Any]:
    import numpy as np
    import wntr

    warnings.simplefilter("ignore")
    wn = wntr.network.WaterNetworkModel(path)
    walls, results = timed(lambda: wntr.sim.WNTRSimulator(wn).run_sim(), repeat, warmup=warmup,
                           before=wn.reset_initial_values)
    h = results[-1].node["head"]
    if heads_out:
        np.savez(heads_out, ids=np.asarray(h.columns, dtype=str), times=h.index.to_numpy(), heads=h.to_numpy())
    return {"walls": walls, "reporting_times": int(len(h)), "version": wntr.__version__, "warmup": warmup}


def worker_main(args: argparse.Namespace) -> None:
    tool, path = args.worker
    if tool == "ours":
        out = worker_ours(path, args.repeat, args.heads_out)
    elif tool == "epanet":
        out = worker_epanet(path, args.repeat, args.heads_out)
    elif tool == "wntr":
        out = worker_wntr(path, args.repeat, args.heads_out, not args.no_warmup)
    else:
        raise SystemExit(f"unknown worker {tool!r}; one of {', '.join(TOOLS)}")
    print(json.dumps(out))


# ----------------------------------------------------------------------------------------------------------- driver




def run_worker(tool: str, path: pathlib.Path, repeat: int, heads_out: pathlib.Path,
               warmup: bool = True) -> dict[str, Any]:
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", tool, str(path),
           "--repeat", str(repeat), "--heads-out", str(heads_out)]
    if not warmup:
        cmd.append("--no-warmup")
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env())
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {p.returncode}: {tail}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def import_times(module: str, repeat: int) -> dict[str, Any]:
    code = f"import time; t0 = time.perf_counter(); import {module}; print(time.perf_counter() - t0)"
    stmt, proc = [], []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, cwd=ROOT,
                           env=child_env())
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
        if i:
            stmt.append(float(p.stdout.strip().splitlines()[-1]))
            proc.append(wall)
    return {"import": stmt, "process": proc}


def find_network(name: str) -> pathlib.Path:
    path = pathlib.Path(name)
    if path.is_file():
        return path.resolve()
    candidate = DATA / f"{name.removesuffix('.inp')}.inp"
    if candidate.is_file():
        return candidate
    raise SystemExit(f"no network {name!r}: neither a file nor one of {sorted(p.stem for p in DATA.glob('*.inp'))}")


def head_diffs(ours: pathlib.Path, other: pathlib.Path) -> dict[str, Any]:
    """Max |H_ours - H_other| (m) over nodes present in both, at t = 0 and over all common reporting times."""
    import numpy as np

    a, b = np.load(ours), np.load(other)
    common = sorted(set(a["ids"]) & set(b["ids"]))
    ia = {k: i for i, k in enumerate(a["ids"])}
    ib = {k: i for i, k in enumerate(b["ids"])}
    ca, cb = [ia[k] for k in common], [ib[k] for k in common]
    ta, tb = list(a["times"]), list(b["times"])
    both = sorted(set(ta) & set(tb))
    out: dict[str, Any] = {"nodes": len(common), "times": len(both), "t0": None, "all": None, "worst_t": None}
    if not both or not common:
        return out
    ha = a["heads"][[ta.index(t) for t in both]][:, ca]
    hb = b["heads"][[tb.index(t) for t in both]][:, cb]
    d = np.abs(ha - hb)
    if both[0] == 0:
        out["t0"] = float(d[0].max())
    out["all"] = float(d.max())
    out["worst_t"] = int(both[int(np.unravel_index(d.argmax(), d.shape)[0])])
    return out



def fmt_time(s: dict[str, float] | None, scale: float = 1e3, digits: int = 1) -> str:
    if s is None:
        return "-"
    return f"{s['median'] * scale:.{digits}f} [{s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f}] n={s['n']}"




def bench_network(path: pathlib.Path, args: argparse.Namespace, tmp: pathlib.Path) -> dict[str, Any]:
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    row: dict[str, Any] = {"network": path.stem, "path": str(path)}
    heads = {t: tmp / f"{path.stem}-{t}.npz" for t in TOOLS}
    log(f"[{path.stem}] ours x{args.repeat} ...")
    row["ours"] = run_worker("ours", path, args.repeat, heads["ours"])
    log(f"[{path.stem}] EPANET x{args.repeat} ...")
    row["epanet"] = run_worker("epanet", path, args.repeat, heads["epanet"])
    junctions = row["epanet"].get("junctions") or row["ours"].get("junctions") or 0
    large = junctions > args.wntr_max_junctions
    if args.no_wntr:
        row["wntr"] = {"skipped": "--no-wntr"}
    elif large and not args.wntr_large:
        row["wntr"] = {"skipped": f"{junctions} junctions > {args.wntr_max_junctions}; add --wntr-large"}
    else:
        n = args.wntr_large_repeat if large else args.wntr_repeat
        log(f"[{path.stem}] WNTR x{n}{' (no warm-up)' if large else ''} ...")
        row["wntr"] = run_worker("wntr", path, n, heads["wntr"], warmup=not large)
    for tool in ("ours", "epanet"):
        if "error" in row[tool]:
            log(f"[{path.stem}] {tool} failed: {row[tool]['error']}")
    if "walls" in row["ours"] and "walls" in row["epanet"]:
        row["heads_ours_epanet"] = head_diffs(heads["ours"], heads["epanet"])
    if "walls" in row["ours"] and "walls" in row.get("wntr", {}):
        row["heads_ours_wntr"] = head_diffs(heads["ours"], heads["wntr"])
    return row


def report(rows: list[dict[str, Any]], imports: dict[str, Any]) -> str:
    def med(tool: dict[str, Any], key: str = "walls") -> float | None:
        return statistics.median(tool[key]) if tool.get(key) else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    def mark(r: float | None, target: float, le: bool) -> str:
        if r is None:
            return "-"
        ok = r <= target if le else r >= target
        return f"{r:.2f} {'ok' if ok else 'MISS'}" if r < 10 else f"{r:.0f} {'ok' if ok else 'MISS'}"

    out = []
    times, ratios, split, checks = [], [], [], []
    for row in rows:
        o, e, w = row["ours"], row["epanet"], row["wntr"]
        times.append([row["network"], fmt_time(stats(o.get("walls"))), fmt_time(stats(e.get("walls"))),
                      fmt_time(stats(e.get("walls_no_open"))),
                      fmt_time(stats(w.get("walls")), 1.0, 2) if "walls" in w else w.get("skipped", w.get("error"))])
        mo, me, mw = med(o), med(e), med(w)
        ratios.append([row["network"], mark(ratio(mo, me), TARGET_OURS_EN, True),
                       mark(ratio(mo, med(e, "walls_no_open")), TARGET_OURS_EN, True),
                       mark(ratio(mw, mo), TARGET_WNTR_OURS, False)])
        if o.get("runs"):
            r = o["runs"]
            c, k = (statistics.median(x[key] for x in r) * 1e3 for key in ("compile_s", "solve_s"))
            s = statistics.median((x["total_s"] - x["compile_s"] - x["solve_s"]) for x in r) * 1e3
            t = statistics.median((x["wall_s"] - x["total_s"]) for x in r) * 1e3
            split.append([row["network"], f"{c:.1f}", f"{k:.1f}", f"{s:.1f}", f"{t:.1f}", f"{mo * 1e3:.1f}",
                          f"{k / (mo * 1e3):.0%}", str(o["max_iterations"])])
        hd, hw = row.get("heads_ours_epanet", {}), row.get("heads_ours_wntr", {})
        same = o.get("steps") == e.get("steps") and o.get("steps") is not None
        t0 = hd.get("t0")
        checks.append([
            row["network"], f"{o.get('steps', '-')}/{e.get('steps', '-')} {'ok' if same else 'MISMATCH'}",
            "yes" if o.get("converged") else "NO",
            "-" if t0 is None else f"{t0:.2e} {'ok' if t0 <= T0_TOL_M else 'CHECK'}",
            "-" if hd.get("all") is None else f"{hd['all']:.2e} (t={hd['worst_t']} s, {hd['times']} times)",
            "-" if hw.get("t0") is None else f"{hw['t0']:.2e}",
        ])
    out.append("Wall time per full simulation, ms, median [min-max] n=runs (WNTR in s):")
    out.append(table(["network", "ours", "EPANET", "EN-open", "WNTR (s)"], times))
    out.append("")
    out.append(f"Ratios (targets: ours/EN <= {TARGET_OURS_EN:g}, WNTR/ours >= {TARGET_WNTR_OURS:g}):")
    out.append(table(["network", "ours/EN", "ours/EN-open", "WNTR/ours"], ratios))
    out.append("")
    out.append("Ours, median per run, ms (compile = compile_s, kernel = solve_s, step = total_s - both, "
               "tables = wall - total_s):")
    out.append(table(["network", "compile", "kernel", "step", "tables", "wall", "kernel%", "max it"], split))
    out.append("")
    out.append(f"Checks (steps ours/EPANET; max |dH| in m vs EPANET at t=0 must be <= {T0_TOL_M:g}; "
               "over all reporting times informative):")
    out.append(table(["network", "steps", "converged", "|dH| t=0", "|dH| all times", "|dH| t=0 vs WNTR"], checks))
    out.append("")
    out.append("Import, s, median [min-max] in a fresh interpreter (import statement; whole process):")
    out.append(table(["module", "import", "process"],
                     [[m, fmt_time(stats(v.get("import")), 1.0, 3), fmt_time(stats(v.get("process")), 1.0, 3)]
                      if "error" not in v else [m, v["error"], "-"] for m, v in imports.items()]))
    errors = [f"{row['network']} {tool}: {row[tool]['error']}" for row in rows for tool in TOOLS
              if "error" in row.get(tool, {})]
    if errors:
        out.append("")
        out.append("Errors:")
        out.extend(f"  {e}" for e in errors)
    return "\n".join(out)




def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("networks", nargs="*", default=list(DEFAULT_NETWORKS),
                    help="Net1/Net2/Net3/Net6 or paths to .inp files (default: Net3 Net6)")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs for ours and EPANET, after a warm-up (7)")
    ap.add_argument("--wntr-repeat", type=int, default=3, help="timed WNTR runs on small networks, after a warm-up (3)")
    ap.add_argument("--no-wntr", action="store_true", help="skip WNTR altogether")
    ap.add_argument("--wntr-large", action="store_true",
                    help="also run WNTR on large networks (Net6: about two minutes a run)")
    ap.add_argument("--wntr-max-junctions", type=int, default=1000,
                    help="networks with more junctions count as large (1000)")
    ap.add_argument("--wntr-large-repeat", type=int, default=1, choices=(1, 2, 3),
                    help="timed WNTR runs on large networks, no warm-up (1)")
    ap.add_argument("--import-repeat", type=int, default=5, help="fresh interpreters per import timing; 0 skips (5)")
    ap.add_argument("--json", type=pathlib.Path, help="also write every measurement to this JSON file")
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--heads-out", help=argparse.SUPPRESS)
    ap.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_main(args)
        return
    if args.repeat < 1 or args.wntr_repeat < 1:
        ap.error("--repeat and --wntr-repeat must be >= 1")
    paths = [find_network(n) for n in args.networks]
    t_start = time.perf_counter()
    info = versions("numpy", "pandas", "owa-epanet", "wntr")
    print("  ".join(f"{k} {v}" for k, v in info.items()))
    imports = {}
    if args.import_repeat > 0:
        for module in ("twin.water", "epanet.toolkit", "wntr"):
            print(f"[import] {module} x{args.import_repeat} ...", file=sys.stderr, flush=True)
            imports[module] = import_times(module, args.import_repeat)
    with tempfile.TemporaryDirectory(prefix="bench-hydraulics-") as tmp:
        rows = [bench_network(p, args, pathlib.Path(tmp)) for p in paths]
    print(report(rows, imports))
    print(f"\n(benchmark wall time {time.perf_counter() - t_start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"versions": info, "imports": imports, "networks": rows}, indent=1))


if __name__ == "__main__":
    main()
