"""The ``twin`` command line."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

__all__ = ["main"]


def _load_grid(path: str):
    from .energy import read_matpower

    p = Path(path)
    if p.suffix.lower() != ".m":
        raise SystemExit(f"twin: {path}: expected a MATPOWER case file (.m)")
    return read_matpower(p)


def _cmd_powerflow(args: argparse.Namespace) -> int:
    from .atomic import atomic_write_text
    from .energy import PowerFlowWarning, power_flow

    grid = _load_grid(args.case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PowerFlowWarning)
        res = power_flow(grid, args.method, init=args.init, tol=args.tol, max_iter=args.max_iter,
                         enforce_q_limits=args.q_limits)
    s = res.summary()
    print(f"{grid.name}: {len(grid.bus)} buses, {len(grid.line)} lines, {len(grid.transformer)} transformers, "
          f"{len(grid.generator)} generators, base {grid.base_mva:g} MVA")
    state = "converged" if res.converged else "DID NOT CONVERGE"
    print(f"{args.method.upper()} power flow {state} in {res.iterations} iterations "
          f"(max mismatch {res.max_mismatch_mva:.2e} MVA, {res.wall_time_s * 1e3:.1f} ms)")
    print(f"  generation {s['generation_mw']:.2f} MW, load {s['load_mw']:.2f} MW, losses {s['losses_mw']:.3f} MW")
    on = res.bus[res.bus["energised"]]
    if len(on):
        vmin, vmax = on["vm_pu"].idxmin(), on["vm_pu"].idxmax()
        print(f"  voltage min {on.loc[vmin, 'vm_pu']:.4f} p.u. (bus {vmin}), "
              f"max {on.loc[vmax, 'vm_pu']:.4f} p.u. (bus {vmax})")
    lp = res.branch["loading_percent"].dropna().sort_values(ascending=False)
    if len(lp):
        top = ", ".join(f"{b} {v:.1f}%" for b, v in lp.head(args.top).items())
        print(f"  most loaded branches: {top}")
    for note in res.notes:
        print(f"  note: {note}")
    for w in caught:
        print(f"  warning: {w.message}")
    if args.json:
        atomic_write_text(args.json, res.to_json())
        print(f"  summary written to {args.json}")
    return 0 if res.converged else 2


def _cmd_contingency(args: argparse.Namespace) -> int:
    from .energy import contingency_analysis

    grid = _load_grid(args.case)
    res = contingency_analysis(grid, threshold_percent=args.threshold, ac_check=args.ac_check)
    s = res.summary()
    print(f"{grid.name}: N-1 screening of {s['n_outages']} branch outages (DC, LODF), "
          f"threshold {args.threshold:g}% of rate A")
    print(f"  islanding outages: {s['n_islanding']}; outages with overloads: {s['n_outages_with_overloads']}")
    if s["worst_outage"] is not None:
        print(f"  worst outage: branch {s['worst_outage']} -> {s['worst_loading_percent']:.1f}% loading")
    if len(res.overload):
        print(res.overload.sort_values("loading_percent", ascending=False).head(args.top).to_string(index=False))
    for m in res.messages:
        print(f"  {m}")
    return 0


def _cmd_hydraulics(args: argparse.Namespace) -> int:
    from .water import HydraulicWarning, read_inp, simulate_hydraulics

    p = Path(args.inp)
    if p.suffix.lower() != ".inp":
        raise SystemExit(f"twin: {args.inp}: expected an EPANET input file (.inp)")
    wn = read_inp(p)
    duration = None if args.hours is None else int(round(args.hours * 3600))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HydraulicWarning)
        res = simulate_hydraulics(wn, duration, args.demand_model, accuracy=args.accuracy)
    s = res.summary()
    print(f"{wn.name}: {len(wn.junction)} junctions, {len(wn.reservoir)} reservoirs, {len(wn.tank)} tanks, "
          f"{len(wn.pipe)} pipes, {len(wn.pump)} pumps, {len(wn.valve)} valves")
    bad = int((~res.steps["converged"]).sum())
    state = "converged" if res.converged else (f"NOT BALANCED at {bad} of {len(res.steps)} steps"
                                               + (f", halted at t = {res.halted_at_s} s" if res.halted_at_s is not None
                                                  else ""))
    print(f"{s['demand_model']} extended period: {s['hydraulic_steps']} hydraulic steps, {s['reporting_times']} "
          f"reporting times, {state} ({res.wall_time_s * 1e3:.1f} ms)")
    p_min = res.node_pressure[list(wn.junction.index)]
    if p_min.size:
        node = p_min.min().idxmin()
        print(f"  lowest junction pressure {p_min.min().min():.2f} m (junction {node})")
    if len(res.pump_energy):
        print(f"  pumps: {s['pump_kwh']:.1f} kWh, cost {s['pump_cost']:.2f}")
    for w in caught:
        print(f"  warning: {w.message}")
    for t, el, msg in res.messages[: args.top]:
        print(f"    t={t} s {el}: {msg}")
    if args.out:
        res.save(args.out)
        print(f"  tables written to {args.out}")
    return 0 if res.converged else 2


def _cmd_assign(args: argparse.Namespace) -> int:
    from .atomic import atomic_write_text
    from .transport import AssignmentWarning, assign_traffic, read_tntp, to_geojson

    tn = read_tntp(args.net, args.trips, args.nodes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AssignmentWarning)
        res = assign_traffic(tn, args.method, rel_gap=args.gap, max_iter=args.max_iter, closed_links=args.close,
                             toll_factor=args.toll_factor, distance_factor=args.distance_factor)
    print(f"{tn.name}: {len(tn.node)} nodes, {len(tn.link)} links, {len(tn.zone)} zones, "
          f"{tn.od['trips_veh_h'].sum():.1f} trips")
    state = "converged" if res.converged else "NOT converged"
    print(f"{res.method} {state}: relative gap {res.gap:.3e} after {res.iterations} iterations "
          f"({res.wall_time_s:.2f} s)")
    print(f"  TSTT {res.tstt:.10g}, Beckmann objective {res.beckmann:.15g}")
    top = res.link.sort_values("voc", ascending=False).head(args.top)
    print("  most congested links (flow / capacity): "
          + ", ".join(f"{k} {v:.2f}" for k, v in top["voc"].items()))
    for w in caught:
        print(f"  warning: {w.message}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "link.csv", res.link.to_csv())
        atomic_write_text(out / "history.csv", res.history.to_csv(index=False))
        atomic_write_text(out / "unserved.csv", res.unserved.to_csv(index=False))
        to_geojson(tn, out / "links.geojson", flows=res.link[["flow", "time_min", "voc"]])
        print(f"  results written to {args.out}")
    return 0 if res.converged else 2


def _cmd_schema(args: argparse.Namespace) -> int:
    import pandas as pd

    from .energy import Grid
    from .transport import TransportNetwork
    from .water import WaterNetwork

    layer = next((c for c in (WaterNetwork, TransportNetwork) if args.table in c.TABLES), Grid)
    with pd.option_context("display.max_colwidth", 70, "display.width", 160):
        print(layer.schema(args.table).to_string())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import importlib
    import time

    scenarios = importlib.import_module("scenarios")  # the upper layer, imported only for this command
    t0 = time.perf_counter()
    width = 30

    def progress(step: str, frac: float) -> None:
        done = int(frac * width)
        print(f"\r  [{'#' * done}{'.' * (width - done)}] {frac:4.0%} {step:<22} {time.perf_counter() - t0:6.1f} s",
              end="", flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hydraulic and power-flow warnings land in the run's messages
        res = scenarios.run_scenario(args.scenario, args.out, hours=args.hours, overwrite=args.overwrite,
                                     progress=None if args.quiet else progress)
    if not args.quiet:
        print()
    state = "reused (already computed)" if res.reused else f"done in {time.perf_counter() - t0:.1f} s"
    print(f"{res.scenario.name} [{res.hash}]: {state}")
    print(f"  run folder: {res.path}")
    for k, v in res.kpis.items():
        print(f"  {k:<28} {_fmt(v)}")
    if (res.path / "report.html").exists():
        print(f"  report: {res.path / 'report.html'}")
    return 0


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    docs = []
    for path in (args.run_a, args.run_b):
        f = Path(path) / "kpis.json"
        if not f.exists():
            raise FileNotFoundError(f"{path}: not a run folder (no kpis.json)")
        docs.append(json.loads(f.read_text()))
    a, b = docs
    print(f"{'KPI':<28} {a['scenario'][:18]:>18} {b['scenario'][:18]:>18} {'change':>14} {'%':>8}")
    for k in a["kpis"]:
        va, vb = a["kpis"].get(k), b["kpis"].get(k)
        if va is None or vb is None:
            print(f"{k:<28} {_fmt(va):>18} {_fmt(vb):>18}")
            continue
        d = vb - va
        pct = f"{100 * d / abs(va):+.1f}" if va else ""
        print(f"{k:<28} {_fmt(va):>18} {_fmt(vb):>18} {_fmt(d):>14} {pct:>8}")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module("scenarios.batch").run_batch_cli(args)


def _cmd_api(argv: list[str]) -> int:
    """``twin serve …`` and ``twin keys …``: the HTTP API's own command line (the upper layer, imported here)."""
    import importlib

    return importlib.import_module("scenarios.api.cli").main(argv, prog="twin")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twin", description="Berkane Twin: digital twin of Berkane's "
                                "electricity, water and road networks.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pf = sub.add_parser("powerflow", aliases=["pf"], help="run an AC or DC power flow on a MATPOWER case")
    pf.add_argument("case", help="MATPOWER case file (.m)")
    pf.add_argument("--method", choices=["ac", "dc"], default="ac")
    pf.add_argument("--init", choices=["dc", "flat", "case"], default="dc", help="Newton start point")
    pf.add_argument("--tol", type=float, default=1e-8, help="mismatch tolerance (p.u.)")
    pf.add_argument("--max-iter", type=int, default=20)
    pf.add_argument("--q-limits", action="store_true", help="enforce generator reactive limits (PV→PQ)")
    pf.add_argument("--top", type=int, default=5, help="how many loaded branches to show")
    pf.add_argument("--json", help="write the JSON summary to this file")
    pf.set_defaults(func=_cmd_powerflow)
    n1 = sub.add_parser("contingency", aliases=["n1"], help="N-1 branch outage screening (LODF)")
    n1.add_argument("case", help="MATPOWER case file (.m)")
    n1.add_argument("--threshold", type=float, default=100.0, help="overload threshold, %% of rate A")
    n1.add_argument("--ac-check", action="store_true", help="re-solve AC for outages with overloads")
    n1.add_argument("--top", type=int, default=10)
    n1.set_defaults(func=_cmd_contingency)
    hy = sub.add_parser("hydraulics", aliases=["hyd"], help="run an extended-period hydraulic simulation of an "
                        "EPANET .inp file")
    hy.add_argument("inp", help="EPANET input file (.inp)")
    hy.add_argument("--hours", type=float, help="duration (h); default: the file's")
    hy.add_argument("--demand-model", choices=["DDA", "PDA"], help="default: the file's DEMAND MODEL option")
    hy.add_argument("--accuracy", type=float, help="convergence accuracy (relative flow change); default: the file's")
    hy.add_argument("--out", help="write the result tables (CSV) and summary.json into this folder")
    hy.add_argument("--top", type=int, default=10, help="how many warning messages to show")
    hy.set_defaults(func=_cmd_hydraulics)
    ta = sub.add_parser("assign", help="static user-equilibrium traffic assignment of TNTP files")
    ta.add_argument("net", help="TNTP network file (*_net.tntp)")
    ta.add_argument("trips", help="TNTP demand file (*_trips.tntp)")
    ta.add_argument("--nodes", help="TNTP node coordinates file (*_node.tntp)")
    ta.add_argument("--method", choices=["fw", "cfw", "bfw", "gp"], default="bfw")
    ta.add_argument("--gap", type=float, default=1e-5, help="target relative gap")
    ta.add_argument("--max-iter", type=int, default=1000)
    ta.add_argument("--close", nargs="*", default=[], metavar="LINK", help="link ids closed for this run")
    ta.add_argument("--toll-factor", type=float, default=0.0)
    ta.add_argument("--distance-factor", type=float, default=0.0)
    ta.add_argument("--top", type=int, default=5)
    ta.add_argument("--out", help="write link.csv, history.csv, unserved.csv and links.geojson here")
    ta.set_defaults(func=_cmd_assign)
    rn = sub.add_parser("run", help="run a scenario end to end (optimise, simulate every layer, KPIs, report)")
    rn.add_argument("scenario", help="scenario file (YAML), e.g. scenarios/baseline_summer.yaml")
    rn.add_argument("--out", default="runs", help="folder of run folders (default: runs)")
    rn.add_argument("--hours", type=int, help="shorten the day to this many hours")
    rn.add_argument("--overwrite", action="store_true", help="recompute even if the run folder exists")
    rn.add_argument("--quiet", action="store_true", help="no progress display")
    rn.set_defaults(func=_cmd_run)
    cp = sub.add_parser("compare", help="print the KPI differences of two run folders")
    cp.add_argument("run_a")
    cp.add_argument("run_b")
    cp.set_defaults(func=_cmd_compare)
    bt = sub.add_parser("batch", help="run a batch of scenarios (grid, Monte Carlo, ensembles) on Dask")
    bt.add_argument("spec", help="batch file (YAML), e.g. scenarios/batches/example_sweep.yaml")
    bt.add_argument("--out", default="batches", help="folder of batch folders (default: batches)")
    bt.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a local cluster)")
    bt.add_argument("--workers", type=int, help="worker processes of the local cluster (default: the cores)")
    bt.add_argument("--no-report", action="store_true", help="skip the HTML comparison report")
    bt.add_argument("--quiet", action="store_true", help="no progress display")
    bt.set_defaults(func=_cmd_batch)
    # `serve` and `keys` are parsed by scenarios.api.cli (main() hands them over); listed here for --help
    sub.add_parser("serve", help="start the HTTP API (OGC API - Processes; `twin serve --help`)")
    sub.add_parser("keys", help="create, revoke or list the HTTP API's keys (`twin keys --help`)")
    sc = sub.add_parser("schema", help="show the declared schema of a component table")
    sc.add_argument("table", help="energy: bus, line, transformer, generator, generator_cost, load, shunt, storage; "
                    "water: junction, demand, reservoir, tank, pipe, pump, valve; "
                    "roads: node, link, zone, od, vehicle_class")
    sc.set_defaults(func=_cmd_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["serve"], ["keys"]):
        return _cmd_api(argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
