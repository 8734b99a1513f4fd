"""Static traffic assignment benchmark: twin.transport against AequilibraE (bi-conjugate Frank-Wolfe) and pytraf.

Run it from the repository root (needs ``aequilibrae`` and ``pytraf`` besides the project itself; a peer that is
missing or fails is reported and the others still run)::

    python bench/assignment.py                       # SiouxFalls, Anaheim, Barcelona to 1e-4, 1e-5, 1e-6 (~2 min)
    python bench/assignment.py Anaheim path/to/ChicagoSketch --repeat 5 --json assignment.json
    python bench/assignment.py --no-aequilibrae --gaps 1e-4 1e-6 --reach-gaps 1e-10

The default run takes about 105 s on a 2-CPU x86-64 machine, nearly all of it AequilibraE's Frank-Wolfe runs.

A network is ``SiouxFalls``, ``Anaheim``, ``Barcelona`` (folders in ``tests/data/tntp/``), a folder holding one
``*_net.tntp`` and one ``*_trips.tntp`` (e.g. ChicagoSketch from the Transportation Networks for Research
repository: no installed package ships a larger TNTP network; AequilibraE's ``reference_files`` hold AequilibraE
projects, not TNTP files, and only its Sioux Falls one has demand) or a ``*_net.tntp`` path with its
``*_trips.tntp`` beside it.  Every network is read once per worker with our ``read_tntp`` and every tool is given
the same links, BPR parameters (the file's ``b``/``power`` per link), centroids and demand.

Every tool runs in a fresh subprocess of its own (this script with ``--worker TOOL NET``) that reports JSON on
stdout and writes its final link flows to an ``.npz``, so imports cannot mix.  Each worker does, for every
target gap, one untimed warm-up run and then ``--repeat`` timed runs (``--aeq-repeat`` for AequilibraE;
``time.perf_counter``, ``gc.collect()`` before each); tables show medians and the min-max spread.  Reading files
and building a peer's model are never timed.  Threads: ours is single-threaded, so every peer runs on one thread
too (AequilibraE ``set_cores(1)``, pytraf ``threads=1``), and every worker has ``OMP_NUM_THREADS``,
``RAYON_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` = 1; AequilibraE's worker also has
``AEQ_SHOW_PROGRESS=FALSE`` and ``OMP_WAIT_POLICY=PASSIVE``.

What is timed:

``ours bfw`` / ``ours gp``
    ``assign_traffic(tn, method, rel_gap=gap, max_iter=--max-iter)`` on a network read once: compiling it, every
    iteration (each with one all-or-nothing that gives the gap, and for bfw the direction) and the result tables.
    ``bfw`` is the target method to 1e-4 and 1e-5, ``gp`` to 1e-6 and to ``--reach-gaps`` (1e-8); the other
    combinations are shown for completeness.
``AEQ``
    AequilibraE's ``TrafficAssignment.execute()`` with algorithm ``"bfw"``, BPR, ``rgap_target = gap``.  Untimed
    before each run: a new ``TrafficClass`` and ``TrafficAssignment`` on a ``Graph`` built once from a DataFrame
    of our links (``link_id`` 1..m, ``direction`` 1, ``free_flow_time``, ``capacity``, ``alpha``, ``beta``;
    ``prepare_graph(zone nodes)``, ``set_graph("free_flow_time")``) and an in-memory ``AequilibraeMatrix`` of the
    demand (intrazonal trips dropped, as every tool does).  Centroid flows are blocked
    (``set_blocked_centroid_flows(True)``) when the zone nodes lie below ``<FIRST THRU NODE>`` and allowed
    otherwise (SiouxFalls: every node is a through node).  AequilibraE rejects BPR powers below 1 and pytraf a
    power of 0: links with ``b = 0`` (Barcelona's connectors, ``power`` 0) get power 1 for both peers, which
    leaves their cost unchanged.  Links that no flow can use are left out of AequilibraE's graph
    (:func:`usable_links`; Barcelona: 2), because its graph compression turns them into a path that does not
    exist.  Its iterations are counted from the first all-or-nothing (iteration 1), ours after it.
``pytraf``
    ``pytraf.assign(net, demand, gap=gap, threads=1, max_iter=--max-iter)`` (path-based gradient projection in
    Rust) on a ``pytraf.Network`` built once from our link arrays (nodes 0..n-1, ``is_centroid`` = not a through
    node, ``allow_u_turns=True``: its shortest paths label links, and without U-turns it solves a different,
    more restricted problem than the node-based TNTP one) and a ``pytraf.Demand`` of the OD rows.  Its
    iterations are sweeps over all origins.

Gaps: every tool's final link flows are judged by one definition computed by OUR code path in the driver: the
standard relative gap ``(TSTT - SPTT) / TSTT`` with BPR costs at those flows, SPTT from one all-or-nothing on
those costs that respects ``<FIRST THRU NODE>`` (:func:`standard_gap`).  The tables show a tool's own reported gap
and this recomputed one; a run *reaches* a target only when the recomputed gap is <= the target, and a ratio
taken against a peer run that did not reach it is flagged ``(peer short)`` (the peer stopped early, so such a
ratio is unfavourable to ours).  The best-known flow file (``*_flow.tntp``) goes through the same function as a
check of it.

``AON``: one call of our compiled graph's ``all_or_nothing`` on free-flow costs (all origins, shortest paths and
loading of every OD pair) against one ``scipy.sparse.csgraph.dijkstra`` over all origin nodes (``indices`` =
origins) on a CSR matrix of free-flow times (parallel links collapsed to the cheapest).  SciPy only computes
distances (``dist``; ``+pred`` also returns predecessors, which a loading would need) and cannot respect
``<FIRST THRU NODE>``: its paths may run through centroids.  Median of ``--aon-repeat`` calls.

Targets: ours bfw / AEQ <= 0.5 to 1e-4 and 1e-5; ours gp / pytraf <= 1.0 to 1e-6; ours gp reaches 1e-8
(``--reach-gaps``); AON / SciPy dijkstra (``dist``) <= 1.5.

Where our time goes: for the target runs, ``setup`` is the result history's ``time_s`` at iteration 0 (compile,
the initial all-or-nothing, gp's first sweep, the first gap check; ``compile`` is ``_compile`` timed alone),
``ms/it`` the median time of one later iteration, and ``AON share`` = (all-or-nothing calls) x (the bare AON
time) / wall: the part a faster shortest-path kernel could win (gp's own path searches in its sweeps are not
counted in it).
"""

from __future__ import annotations

import argparse
import gc
import json
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
DATA = ROOT / "tests" / "data" / "tntp"
DEFAULT_NETWORKS = ("SiouxFalls", "Anaheim", "Barcelona")
DEFAULT_GAPS = (1e-4, 1e-5, 1e-6)
TOOLS = ("ours", "aequilibrae", "pytraf", "aon-ours", "aon-scipy")
PEERS = ("aequilibrae", "pytraf")
TARGET_OURS_AEQ = 0.5  # ours bfw / AEQ to 1e-4 and 1e-5
TARGET_AEQ_GAPS = (1e-4, 1e-5)
TARGET_OURS_PYTRAF = 1.0  # ours gp / pytraf to 1e-6
TARGET_PYTRAF_GAPS = (1e-6,)
TARGET_AON = 1.5  # ours AON / scipy dijkstra
REACH_GAP = 1e-8
THREADS = 1  # ours is single-threaded; every peer gets the same
THREAD_ENV = ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def target_method(gap: float) -> str:
    """Our method for a target gap: bfw to 1e-5, gp below."""
    return "bfw" if gap >= 1e-5 * (1 - 1e-9) else "gp"


# ---------------------------------------------------------------------------------------------------------- helpers


def find_network(name: str) -> tuple[str, pathlib.Path, pathlib.Path, pathlib.Path | None]:
    """(name, net file, trips file, best-known flow file or None) for a data-set name, a folder or a net file."""
    path = pathlib.Path(name)
    if not path.exists() and (DATA / name).is_dir():
        path = DATA / name
    if path.is_dir():
        nets = sorted(path.glob("*_net.tntp"))
        if len(nets) != 1:
            raise SystemExit(f"{name}: expected one *_net.tntp in the folder, found {len(nets)}")
        net = nets[0]
    elif path.is_file() and path.name.endswith("_net.tntp"):
        net = path
    else:
        known = sorted(p.name for p in DATA.iterdir() if p.is_dir())
        raise SystemExit(f"no network {name!r}: neither one of {known}, a folder nor a *_net.tntp file")
    stem = net.name.removesuffix("_net.tntp")
    trips = net.with_name(f"{stem}_trips.tntp")
    if not trips.is_file():
        raise SystemExit(f"{name}: no {trips.name} beside {net.name}")
    flow = net.with_name(f"{stem}_flow.tntp")
    return stem, net.resolve(), trips.resolve(), flow.resolve() if flow.is_file() else None


def read_network(net: str, trips: str) -> Any:
    from twin.transport import read_tntp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_tntp(net, trips)


def standard_gap(tn: Any, flow: Any) -> dict[str, float]:
    """Standard relative gap ``(TSTT - SPTT) / TSTT`` of a link-flow vector aligned with ``tn.link``.

    Costs are BPR at those flows (the network's own alpha/beta, no tolls or distance); SPTT comes from one
    all-or-nothing of our compiled graph on those costs, which respects ``<FIRST THRU NODE>``."""
    import numpy as np

    from twin._ext import assignment as _a
    from twin.transport.assignment import _compile

    cw = _compile(tn, 0.0, 0.0, (), None, None)
    m = len(cw.link_ids)
    v = np.ascontiguousarray(np.asarray(flow, dtype=float))
    if v.shape != (m,) or not np.isfinite(v).all():
        raise ValueError(f"need {m} finite link flows, got shape {v.shape}")
    c = np.empty(m)
    _a.costs(cw.t0, cw.cap, cw.alpha, cw.beta, cw.g, v, c)
    y = np.empty(m)
    reached = np.ones(len(cw.od_trips), dtype=np.int8)
    sptt = float(cw.graph.all_or_nothing(c, cw.origins, cw.od_ptr, cw.od_dest, cw.od_trips, y, reached))
    tstt = float(np.dot(v, c))
    return {"gap": (tstt - sptt) / tstt if tstt > 0 else 0.0, "tstt": tstt, "sptt": sptt,
            "beckmann": float(_a.beckmann(cw.t0, cw.cap, cw.alpha, cw.beta, cw.g, v)),
            "unreached_pairs": int((reached == 0).sum())}


def bpr_power(alpha: Any, beta: Any) -> Any:
    """Powers >= 1 for the peers, which reject smaller ones: where alpha = 0 the power does not matter."""
    import numpy as np

    return np.where(alpha == 0, np.maximum(beta, 1.0), beta)


def usable_links(tail: Any, head: Any, zones: Any) -> Any:
    """Mask of the links some flow could use: none ends in a non-zone node with no usable way out or starts at a
    non-zone node with no usable way in (repeated until nothing changes).

    AequilibraE's graph compression treats a node with two links as a pass-through node even when both links
    point into it: Barcelona's node 1008 (only 913->1008 and 929->1008) becomes a two-way link 913<->929, a
    path that does not exist, and its flows use it.  The links dropped here carry no flow in any feasible
    solution, so leaving them out changes nothing else."""
    import numpy as np

    tail, head = np.asarray(tail), np.asarray(head)
    zone = set(np.asarray(zones).tolist())
    keep = np.ones(len(tail), dtype=bool)
    while True:
        has_out, has_in = set(tail[keep].tolist()), set(head[keep].tolist())
        ok = np.array([(h in has_out or h in zone) and (t in has_in or t in zone) for t, h in zip(tail, head)])
        new = keep & ok
        if (new == keep).all():
            return keep
        keep = new


def timed(call: Any, repeat: int, warmup: bool = True, before: Any = None) -> tuple[list[float], list[Any]]:
    """Optional warm-up call, then ``repeat`` timed calls; returns wall times (s) and results of the timed calls."""
    walls, outs = [], []
    for i in range(repeat + (1 if warmup else 0)):
        arg = before() if before is not None else None
        gc.collect()
        t0 = time.perf_counter()
        out = call(arg) if before is not None else call()
        dt = time.perf_counter() - t0
        if i or not warmup:
            walls.append(dt)
            outs.append(out)
    return walls, outs


def case_key(method: str, gap: float) -> str:
    return f"{method}:{gap:g}"


# ---------------------------------------------------------------------------------------------------------- workers


def worker_ours(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from twin.transport import AssignmentWarning, assign_traffic

    warnings.simplefilter("ignore", AssignmentWarning)
    tn = read_network(args.net, args.trips)
    cases: dict[str, Any] = {}
    flows = {}
    plan = [(m, g) for g in args.gaps for m in ("bfw", "gp")] + [("gp", g) for g in args.reach_gaps]
    for method, gap in plan:
        walls, results = timed(lambda m=method, g=gap: assign_traffic(tn, m, rel_gap=g, max_iter=args.max_iter),
                               args.repeat)
        res = results[-1]
        t = res.history["time_s"].to_numpy()
        cases[case_key(method, gap)] = {
            "walls": walls, "iterations": int(res.iterations), "gap": float(res.gap), "converged": bool(res.converged),
            "setup_s": float(t[0]), "per_iter_s": float(np.median(np.diff(t))) if len(t) > 1 else None,
            "history_gap": [float(x) for x in res.history["rel_gap"]],
            "history_time_s": [float(x) for x in t],
        }
        flows[case_key(method, gap)] = res.link["flow"].to_numpy(float)
    np.savez(args.flows_out, **flows)
    from twin.transport.assignment import _compile

    compile_walls, _ = timed(lambda: _compile(tn, 0.0, 0.0, (), None, None), args.repeat)
    return {"cases": cases, "links": len(tn.link), "nodes": len(tn.node), "zones": len(tn.zone),
            "through": int(tn.node["through"].sum()), "threads": THREADS, "compile_walls": compile_walls}


def worker_aequilibrae(args: argparse.Namespace) -> dict[str, Any]:
    import logging
    from importlib import metadata

    import numpy as np
    import pandas as pd

    warnings.simplefilter("ignore")
    t_import = time.perf_counter()
    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    t_import = time.perf_counter() - t_import
    logging.getLogger("aequilibrae").setLevel(logging.ERROR)
    tn = read_network(args.net, args.trips)
    link = tn.link
    t0 = time.perf_counter()
    alpha = link["alpha"].to_numpy(float)
    m = len(link)
    df = pd.DataFrame({
        "link_id": np.arange(1, m + 1, dtype=np.int64),
        "a_node": link["from_node"].astype(np.int64).to_numpy(), "b_node": link["to_node"].astype(np.int64).to_numpy(),
        "direction": np.ones(m, dtype=np.int8), "free_flow_time": link["free_flow_time_min"].to_numpy(float),
        "capacity": link["capacity_veh_h"].to_numpy(float), "alpha": alpha,
        "beta": bpr_power(alpha, link["beta"].to_numpy(float)),
    })
    zone_node = tn.zone["node"]
    centroids = np.sort(zone_node.astype(np.int64).to_numpy())
    through = tn.node["through"]
    zone_through = through.reindex(zone_node.to_numpy()).to_numpy(bool)
    block = bool((~zone_through).any())
    notes = []
    if block and zone_through.any():
        notes.append("some zone nodes are through nodes and some not: AequilibraE blocks all centroids")
    other = through.index[~through.to_numpy(bool)].difference(pd.Index(zone_node.to_numpy()))
    if len(other):
        notes.append(f"{len(other)} non-through nodes that are not zones cannot be blocked in AequilibraE")
    usable = usable_links(link["from_node"].to_numpy(), link["to_node"].to_numpy(), zone_node.to_numpy())
    if not usable.all():
        notes.append(f"{int((~usable).sum())} links that no flow can use (into a node with no way out or out of "
                     "a node with no way in) left out of its graph: its compression would merge them into a "
                     "path that does not exist")
    graph = Graph()
    graph.network = df[usable].reset_index(drop=True)
    graph.prepare_graph(centroids)
    graph.set_graph("free_flow_time")
    graph.set_skimming(["free_flow_time"])
    graph.set_blocked_centroid_flows(block)
    pos = pd.Series(np.arange(len(centroids)), index=centroids.astype(str))
    od = tn.od[tn.od["hour"] == -1]
    oi = pos.reindex(zone_node.reindex(od["origin"]).to_numpy()).to_numpy()
    di = pos.reindex(zone_node.reindex(od["destination"]).to_numpy()).to_numpy()
    dem = np.zeros((len(centroids), len(centroids)))
    np.add.at(dem, (oi, di), od["trips_veh_h"].to_numpy(float))
    np.fill_diagonal(dem, 0.0)
    mat = AequilibraeMatrix()
    mat.create_empty(zones=len(centroids), matrix_names=["demand"], memory_only=True)
    mat.index[:] = centroids
    mat.matrices[:, :, 0] = dem
    mat.computational_view(["demand"])
    build_s = time.perf_counter() - t0

    def setup(gap: float) -> Any:
        tc = TrafficClass("car", graph, mat)
        assig = TrafficAssignment()
        assig.set_classes([tc])
        assig.set_vdf("BPR")
        assig.set_vdf_parameters({"alpha": "alpha", "beta": "beta"})
        assig.set_capacity_field("capacity")
        assig.set_time_field("free_flow_time")
        assig.set_algorithm("bfw")
        assig.max_iter = int(args.max_iter)
        assig.rgap_target = float(gap)
        assig.set_cores(THREADS)
        return assig

    cases: dict[str, Any] = {}
    flows = {}
    cores = None
    for gap in args.gaps:
        walls, runs = timed(lambda a: (a.execute(log_specification=False), a)[1], args.repeat,
                            before=lambda g=gap: setup(g))
        a = runs[-1]
        cores = a.cores
        report = a.assignment.convergence_report
        res = a.results()
        flow = res["demand_tot"].reindex(np.arange(1, m + 1)).fillna(0.0).to_numpy(float)
        cases[case_key("bfw", gap)] = {
            "walls": walls, "iterations": int(report["iteration"][-1]), "gap": float(a.assignment.rgap),
            "converged": bool(a.assignment.rgap <= gap), "own_time_s": float(report["time"][-1]),
        }
        flows[case_key("bfw", gap)] = flow
    np.savez(args.flows_out, **flows)
    return {"cases": cases, "build_s": build_s, "import_s": t_import, "cores": cores, "blocked_centroids": block,
            "notes": notes, "version": metadata.version("aequilibrae"), "pandas": pd.__version__}


def worker_pytraf(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    warnings.simplefilter("ignore")
    t_import = time.perf_counter()
    import pytraf

    t_import = time.perf_counter() - t_import
    tn = read_network(args.net, args.trips)
    link = tn.link
    t0 = time.perf_counter()
    nidx = pd.Index(tn.node.index)
    alpha = link["alpha"].to_numpy(float)
    net = pytraf.Network(
        len(nidx), nidx.get_indexer(link["from_node"]).astype(np.int64),
        nidx.get_indexer(link["to_node"]).astype(np.int64), link["free_flow_time_min"].to_numpy(float),
        link["capacity_veh_h"].to_numpy(float), alpha, bpr_power(alpha, link["beta"].to_numpy(float)),
        ~tn.node["through"].to_numpy(bool), None, True,
    )
    od = tn.od[tn.od["hour"] == -1]
    zone_node = tn.zone["node"]
    demand = pytraf.Demand(
        len(nidx), nidx.get_indexer(zone_node.reindex(od["origin"]).to_numpy()).astype(np.int64),
        nidx.get_indexer(zone_node.reindex(od["destination"]).to_numpy()).astype(np.int64),
        od["trips_veh_h"].to_numpy(float),
    )
    build_s = time.perf_counter() - t0
    cases: dict[str, Any] = {}
    flows = {}
    for gap in list(args.gaps) + list(args.reach_gaps):
        walls, results = timed(lambda g=gap: pytraf.assign(net, demand, gap=g, max_iter=args.max_iter,
                                                          threads=THREADS), args.repeat)
        r = results[-1]
        cases[case_key("gp", gap)] = {
            "walls": walls, "iterations": int(r.iterations), "gap": float(r.relative_gap),
            "converged": bool(r.converged), "own_times": dict(r.diagnostics.times),
        }
        flows[case_key("gp", gap)] = np.asarray(r.links.flow, dtype=float)
    np.savez(args.flows_out, **flows)
    return {"cases": cases, "build_s": build_s, "import_s": t_import, "threads": THREADS,
            "turns": int(net.num_turns), "version": pytraf.__version__}


def worker_aon_ours(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from twin._ext import assignment as _a
    from twin.transport.assignment import _compile

    tn = read_network(args.net, args.trips)
    cw = _compile(tn, 0.0, 0.0, (), None, None)
    m = len(cw.link_ids)
    cost = np.empty(m)
    _a.costs(cw.t0, cw.cap, cw.alpha, cw.beta, cw.g, np.zeros(m), cost)
    y = np.empty(m)
    reached = np.ones(len(cw.od_trips), dtype=np.int8)
    walls, sptt = timed(lambda: cw.graph.all_or_nothing(cost, cw.origins, cw.od_ptr, cw.od_dest, cw.od_trips, y,
                                                        reached), args.repeat)
    return {"walls": walls, "origins": len(cw.origins), "sptt": float(sptt[-1])}


def worker_aon_scipy(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    import scipy
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    tn = read_network(args.net, args.trips)
    nidx = pd.Index(tn.node.index)
    tail = nidx.get_indexer(tn.link["from_node"])
    head = nidx.get_indexer(tn.link["to_node"])
    t0 = tn.link["free_flow_time_min"].to_numpy(float)
    # parallel links: keep the cheapest (a CSR matrix would add their costs up)
    frame = pd.DataFrame({"a": tail, "b": head, "c": t0}).groupby(["a", "b"], sort=True)["c"].min()
    n = len(nidx)
    graph = csr_matrix((frame.to_numpy(), (frame.index.get_level_values(0), frame.index.get_level_values(1))),
                       shape=(n, n))
    origins = np.unique(nidx.get_indexer(tn.zone["node"].reindex(tn.od["origin"].unique()).to_numpy()))
    origins = origins.astype(np.int32)
    walls, _ = timed(lambda: dijkstra(graph, directed=True, indices=origins), args.repeat)
    walls_pred, _ = timed(lambda: dijkstra(graph, directed=True, indices=origins, return_predecessors=True),
                          args.repeat)
    return {"walls": walls, "walls_pred": walls_pred, "origins": len(origins), "version": scipy.__version__}


WORKERS = {"ours": worker_ours, "aequilibrae": worker_aequilibrae, "pytraf": worker_pytraf,
           "aon-ours": worker_aon_ours, "aon-scipy": worker_aon_scipy}


def worker_main(args: argparse.Namespace) -> None:
    tool, net = args.worker
    if tool not in WORKERS:
        raise SystemExit(f"unknown worker {tool!r}; one of {', '.join(TOOLS)}")
    args.net = net
    out = WORKERS[tool](args)
    print(json.dumps(out))


# ----------------------------------------------------------------------------------------------------------- driver


def worker_env(tool: str) -> dict[str, str]:
    env = child_env()
    for k in THREAD_ENV:
        env[k] = str(THREADS)
    if tool == "aequilibrae":
        env["AEQ_SHOW_PROGRESS"] = "FALSE"
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def run_worker(tool: str, net: pathlib.Path, trips: pathlib.Path, args: argparse.Namespace,
               flows_out: pathlib.Path | None = None, repeat: int | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", tool, str(net), "--trips", str(trips),
           "--repeat", str(repeat or args.repeat), "--max-iter", str(args.max_iter),
           "--gaps", *[f"{g:g}" for g in args.gaps]]
    if args.reach_gaps:
        cmd += ["--reach-gaps", *[f"{g:g}" for g in args.reach_gaps]]
    if flows_out is not None:
        cmd += ["--flows-out", str(flows_out)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=worker_env(tool))
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {p.returncode}: {tail}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def bench_network(spec: tuple[str, pathlib.Path, pathlib.Path, pathlib.Path | None], args: argparse.Namespace,
                  tmp: pathlib.Path) -> dict[str, Any]:
    import numpy as np

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    name, net, trips, flow_file = spec
    row: dict[str, Any] = {"network": name, "net": str(net)}
    skip = {"aequilibrae": args.no_aequilibrae, "pytraf": args.no_pytraf}
    for tool in ("ours", *PEERS):
        if skip.get(tool):
            row[tool] = {"skipped": f"--no-{tool}"}
            continue
        if tool != "ours" and not installed(tool):
            row[tool] = {"skipped": f"{tool} is not installed (pip install {tool})"}
            continue
        n = args.aeq_repeat if tool == "aequilibrae" else args.repeat
        log(f"[{name}] {tool} x{n} per gap ...")
        row[tool] = run_worker(tool, net, trips, args, tmp / f"{name}-{tool}.npz", repeat=n)
        row[tool]["flows"] = str(tmp / f"{name}-{tool}.npz")
    log(f"[{name}] AON ours / scipy x{args.aon_repeat} ...")
    row["aon-ours"] = run_worker("aon-ours", net, trips, args, repeat=args.aon_repeat)
    row["aon-scipy"] = run_worker("aon-scipy", net, trips, args, repeat=args.aon_repeat)
    # every tool's final flows judged by one definition, our code path
    tn = read_network(str(net), str(trips))
    for tool in ("ours", *PEERS):
        res = row[tool]
        if "cases" not in res:
            continue
        with np.load(res.pop("flows")) as flows:
            for key, case in res["cases"].items():
                try:
                    case["std"] = standard_gap(tn, flows[key])
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    case["std"] = {"error": str(exc)}
    if flow_file is not None:
        from twin.transport import read_tntp_flows

        best = read_tntp_flows(flow_file).reindex(tn.link.index)["flow"]
        row["best_known"] = standard_gap(tn, best.to_numpy(float)) if best.notna().all() else {"error": "misaligned"}
    return row



def fmt_time(s: dict[str, float] | None, scale: float = 1e3, digits: int = 1) -> str:
    if s is None:
        return "-"
    return f"{s['median'] * scale:.{digits}f} [{s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f}]"




def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    def case(row: dict[str, Any], tool: str, method: str, gap: float) -> dict[str, Any] | None:
        return row.get(tool, {}).get("cases", {}).get(case_key(method, gap))

    def med(c: dict[str, Any] | None) -> float | None:
        return statistics.median(c["walls"]) if c and c.get("walls") else None

    def reached(c: dict[str, Any] | None, gap: float) -> bool:
        return bool(c) and "gap" in c.get("std", {}) and c["std"]["gap"] <= gap * (1 + 1e-9)

    def cell(c: dict[str, Any] | None, tool: str, row: dict[str, Any]) -> str:
        if c is None:
            res = row.get(tool, {})
            return "-" if "cases" in res or not res else "ERR" if "error" in res else "skipped"
        return fmt_time(stats(c["walls"]), 1e3, 1 if med(c) < 10 else 0)

    def conv(c: dict[str, Any] | None, gap: float) -> str:
        if c is None:
            return "-"
        std = c.get("std", {})
        g = std.get("gap")
        return (f"{c['iterations']} it, {c['gap']:.1e} / {g:.1e} {'ok' if reached(c, gap) else 'SHORT'}"
                if g is not None else f"{c['iterations']} it, {c['gap']:.1e} / ERR")

    def mark(r: float | None, target: float | None, short: bool) -> str:
        if r is None:
            return "-"
        s = f"{r:.2f}"
        if target is not None:
            s += " ok" if r <= target else " MISS"
        return s + (" (peer short)" if short else "")

    gaps = list(args.gaps)
    out = []
    times, convs, ratios, split, aon, checks, reach = [], [], [], [], [], [], []
    for row in rows:
        name = row["network"]
        for gap in gaps + list(args.reach_gaps):
            extra = gap not in gaps
            ob, og = case(row, "ours", "bfw", gap), case(row, "ours", "gp", gap)
            ae, pt = case(row, "aequilibrae", "bfw", gap), case(row, "pytraf", "gp", gap)
            times.append([name, f"{gap:g}", cell(ob, "ours", row) if not extra else "-", cell(og, "ours", row),
                          cell(ae, "aequilibrae", row) if not extra else "-", cell(pt, "pytraf", row)])
            convs.append([name, f"{gap:g}", conv(ob, gap), conv(og, gap), conv(ae, gap), conv(pt, gap)])
            if extra:
                if og is not None:
                    reach.append([name, f"{gap:g}", "yes" if reached(og, gap) else "NO", f"{med(og) * 1e3:.1f}",
                                  str(og["iterations"]), f"{og['std']['gap']:.2e}"])
                continue
            mb, mg, ma, mp = med(ob), med(og), med(ae), med(pt)
            ratio = lambda a, b: a / b if a is not None and b else None  # noqa: E731
            ta = TARGET_OURS_AEQ if gap in TARGET_AEQ_GAPS else None
            tp = TARGET_OURS_PYTRAF if gap in TARGET_PYTRAF_GAPS else None
            sa, sp = ae is not None and not reached(ae, gap), pt is not None and not reached(pt, gap)
            ratios.append([name, f"{gap:g}", mark(ratio(mb, ma), ta, sa), mark(ratio(mg, ma), None, sa),
                           mark(ratio(mb, mp), None, sp), mark(ratio(mg, mp), tp, sp)])
        for gap in gaps + list(args.reach_gaps):
            method = target_method(gap)
            c = case(row, "ours", method, gap)
            bare = med(row.get("aon-ours"))
            comp = statistics.median(row["ours"]["compile_walls"]) if row["ours"].get("compile_walls") else None
            if c is None:
                continue
            n_aon = c["iterations"] + 2  # the initial AON plus one per gap check (bfw: the direction too)
            split.append([name, f"{method} {gap:g}", f"{med(c) * 1e3:.1f}", f"{c['setup_s'] * 1e3:.1f}",
                          "-" if comp is None else f"{comp * 1e3:.1f}",
                          str(c["iterations"]), "-" if c["per_iter_s"] is None else f"{c['per_iter_s'] * 1e3:.2f}",
                          "-" if bare is None else f"{bare * 1e3:.2f}",
                          "-" if bare is None else f"{n_aon * bare / med(c):.0%}"])
        ao, sc = row.get("aon-ours", {}), row.get("aon-scipy", {})
        mo, ms, mpred = med(ao), med(sc), (statistics.median(sc["walls_pred"]) if sc.get("walls_pred") else None)
        aon.append([name, str(ao.get("origins", "-")), fmt_time(stats(ao.get("walls")), 1e3, 2),
                    fmt_time(stats(sc.get("walls")), 1e3, 2), fmt_time(stats(sc.get("walls_pred")), 1e3, 2),
                    mark(mo / ms if mo and ms else None, TARGET_AON, False),
                    mark(mo / mpred if mo and mpred else None, None, False)])
        bk = row.get("best_known", {})
        o = row.get("ours", {})
        a = row.get("aequilibrae", {})
        p = row.get("pytraf", {})
        checks.append([
            name, f"{o.get('nodes', '-')}/{o.get('links', '-')}/{o.get('zones', '-')}/{o.get('through', '-')}",
            f"{bk['gap']:.1e}" if "gap" in bk else "-",
            "-" if "cases" not in o else f"{max(abs(c['std']['gap'] - c['gap']) for c in o['cases'].values()):.0e}",
            "-" if "cases" not in a else f"{a['build_s'] * 1e3:.0f} ms, cores {a['cores']}, "
                                         f"blocked {'yes' if a['blocked_centroids'] else 'no'}, pandas {a['pandas']}",
            "-" if "cases" not in p else f"{p['build_s'] * 1e3:.0f} ms, threads {p['threads']}, {p['turns']} turns",
        ])
    out.append(f"Wall time per assignment, ms, median [min-max] ({args.repeat} runs; AEQ {args.aeq_repeat}), "
               f"all on {THREADS} thread:")
    out.append(table(["network", "gap", "ours bfw", "ours gp", "AEQ bfw", "pytraf gp"], times))
    out.append("")
    out.append("Convergence: iterations, own gap / standard gap recomputed by our code (ok = recomputed <= target):")
    out.append(table(["network", "gap", "ours bfw", "ours gp", "AEQ bfw", "pytraf gp"], convs))
    out.append("")
    out.append(f"Ratios of medians (targets: bfw/AEQ <= {TARGET_OURS_AEQ:g} to "
               f"{', '.join(f'{g:g}' for g in TARGET_AEQ_GAPS)}; gp/pytraf <= {TARGET_OURS_PYTRAF:g} to "
               f"{', '.join(f'{g:g}' for g in TARGET_PYTRAF_GAPS)}; the rest informative):")
    out.append(table(["network", "gap", "bfw/AEQ", "gp/AEQ", "bfw/pytraf", "gp/pytraf"], ratios))
    if reach:
        out.append("")
        out.append("Ours gp to the reach gap(s):")
        out.append(table(["network", "gap", "reached", "ms", "iterations", "standard gap"], reach))
    out.append("")
    out.append(f"Bare all-or-nothing on free-flow costs, ms, median [min-max] ({args.aon_repeat} calls; "
               f"target ours/dist <= {TARGET_AON:g}; SciPy ignores FIRST THRU NODE):")
    out.append(table(["network", "origins", "ours AON", "scipy dist", "scipy +pred", "ours/dist", "ours/+pred"], aon))
    out.append("")
    out.append("Ours, where the time goes (target method per gap; setup = history time_s at iteration 0, "
               "of which compile = _compile alone; "
               "AON share = (iterations + 2) x bare AON / wall):")
    out.append(table(["network", "case", "wall ms", "setup ms", "compile ms", "iterations", "ms/it", "AON ms",
                      "AON share"], split))
    out.append("")
    out.append("Checks (nodes/links/zones/through nodes; standard gap of the best-known flow file; "
               "max |own - recomputed| gap of ours; peers' model build time, threads):")
    out.append(table(["network", "n/m/z/thru", "best-known gap", "ours own-std", "AEQ model", "pytraf model"],
                     checks))
    notes = [f"{row['network']} AEQ: {n}" for row in rows for n in row.get("aequilibrae", {}).get("notes", [])]
    errors = [f"{row['network']} {tool}: {row[tool].get('error') or row[tool].get('skipped')}" for row in rows
              for tool in TOOLS if "error" in row.get(tool, {}) or "skipped" in row.get(tool, {})]
    errors += [f"{row['network']} {tool} {key}: {c['std']['error']}" for row in rows for tool in ("ours", *PEERS)
               for key, c in row.get(tool, {}).get("cases", {}).items() if "error" in c.get("std", {})]
    for title, lines in (("Notes", notes), ("Errors / skipped", sorted(set(errors)))):
        if lines:
            out.append("")
            out.append(f"{title}:")
            out.extend(f"  {e}" for e in lines)
    return "\n".join(out)




def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("networks", nargs="*", default=list(DEFAULT_NETWORKS),
                    help="SiouxFalls/Anaheim/Barcelona, TNTP folders or *_net.tntp paths (default: all three)")
    ap.add_argument("--gaps", type=float, nargs="+", default=list(DEFAULT_GAPS),
                    help="target relative gaps for every tool (1e-4 1e-5 1e-6)")
    ap.add_argument("--reach-gaps", type=float, nargs="*", default=[REACH_GAP],
                    help="extra gaps for the path-based solvers only: ours gp and pytraf (1e-8)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of ours and pytraf per gap, after a warm-up (5)")
    ap.add_argument("--aeq-repeat", type=int, default=3, help="timed AequilibraE runs per gap, after a warm-up (3)")
    ap.add_argument("--aon-repeat", type=int, default=21, help="timed bare all-or-nothing / dijkstra calls (21)")
    ap.add_argument("--max-iter", type=int, default=10000, help="iteration cap for every tool (10000)")
    ap.add_argument("--no-aequilibrae", action="store_true", help="skip AequilibraE")
    ap.add_argument("--no-pytraf", action="store_true", help="skip pytraf")
    ap.add_argument("--json", type=pathlib.Path, help="also write every measurement to this JSON file")
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "NET"), help=argparse.SUPPRESS)
    ap.add_argument("--trips", help=argparse.SUPPRESS)
    ap.add_argument("--flows-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.reach_gaps = [g for g in args.reach_gaps if g not in args.gaps]
    if args.worker:
        worker_main(args)
        return
    if min(args.repeat, args.aeq_repeat, args.aon_repeat) < 1:
        ap.error("--repeat, --aeq-repeat and --aon-repeat must be >= 1")
    specs = [find_network(n) for n in args.networks]
    t_start = time.perf_counter()
    info = versions("numpy", "scipy", "pandas", "aequilibrae", "pytraf")
    print("  ".join(f"{k} {v}" for k, v in info.items()))
    print(f"threads: ours {THREADS} (single-threaded kernel), AequilibraE set_cores({THREADS}), "
          f"pytraf threads={THREADS}; {', '.join(THREAD_ENV)} = {THREADS} in every worker")
    with tempfile.TemporaryDirectory(prefix="bench-assignment-") as tmp:
        rows = [bench_network(s, args, pathlib.Path(tmp)) for s in specs]
    print(report(rows, args))
    print(f"\n(benchmark wall time {time.perf_counter() - t_start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"versions": info, "gaps": args.gaps, "reach_gaps": args.reach_gaps,
                                         "networks": rows}, indent=1))


if __name__ == "__main__":
    main()
