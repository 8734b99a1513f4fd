#!/usr/bin/env python
"""Regenerate the stored power flow reference results (PYPOWER).

Usage (from anywhere)::

    python tests/data/reference/make_powerflow_reference.py

For every MATPOWER case file in ``tests/data/matpower/`` this script

1. parses the ``.m`` file with a small standalone parser defined below
   (deliberately independent of the package code in ``twin/`` and ``ext/``
   and of pandapower / matpowercaseframes),
2. runs PYPOWER with fixed options, and
3. writes compact CSV tables plus a small JSON summary into
   ``tests/data/reference/powerflow/<tag>/``:

   * ``<case>/``: AC Newton ``runpf``, generator Q limits ignored;
   * ``<case>_dc/``: DC power flow, ``rundcpf``;
   * ``<case>_qlim/`` (cases in ``QLIM_CASES``): AC ``runpf`` with
     ENFORCE_Q_LIMS=1.  PYPOWER 5.1.21's Q-limit loop is broken (it crashes
     as soon as a limit is hit), so these runs use a copy of its ``runpf``
     with the small source fixes listed in ``RUNPF_QLIM_FIXES`` (see there
     and README.md).  Folders of failed runs are removed, the failure is
     printed.

Results are kept in PYPOWER's *external* numbering and in the row order
of the case file (runpf maps back via int2ext).  See README.md next to
this script for the file formats.

Requirements: numpy, PYPOWER.  Nothing else.
"""

import contextlib
import functools
import importlib.metadata
import inspect
import io
import json
import math
import os
import re
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CASE_DIR = os.path.normpath(os.path.join(HERE, "..", "matpower"))
OUT_DIR = os.path.join(HERE, "powerflow")

CASES = ["case9", "case14", "case30", "case57", "case118", "case300"]
QLIM_CASES = ["case14", "case30", "case57", "case118", "case300"]

PPOPT_BASE = dict(PF_ALG=1, PF_TOL=1e-10, PF_MAX_IT=30, VERBOSE=0, OUT_ALL=0,
                  ENFORCE_Q_LIMS=0)
PPOPT_DC = dict(VERBOSE=0, OUT_ALL=0)  # rundcpf adds PF_DC=1 itself

FLOAT_FMT = "%.12g"

# MATPOWER / PYPOWER column indices (0-based), see caseformat.m
BUS_I, BUS_TYPE, VM, VA = 0, 1, 7, 8
GEN_BUS, PG, QG, QMAX, QMIN, GEN_STATUS = 0, 1, 2, 3, 4, 7
F_BUS, T_BUS, BR_STATUS, PF, QF, PT, QT = 0, 1, 10, 13, 14, 15, 16


# ---------------------------------------------------------------------------
# Standalone MATPOWER case file (.m, format version 2) parser
# ---------------------------------------------------------------------------

def _strip_comment(line):
    """Remove a MATLAB '%' comment, ignoring '%' inside single-quoted strings.

    A quote opens a string only at the start of a token (after whitespace,
    '[', '{', ',', ';', '='); otherwise it is the transpose operator, which
    does not occur in case files but is handled for safety.
    """
    in_str = False
    prev = " "
    i = 0
    while i < len(line):
        c = line[i]
        if in_str:
            if c == "'":
                if i + 1 < len(line) and line[i + 1] == "'":
                    i += 1  # escaped quote ''
                else:
                    in_str = False
        else:
            if c == "%":
                return line[:i]
            if c == "'" and (prev.isspace() or prev in "[{,;=("):
                in_str = True
        prev = c
        i += 1
    return line


_ASSIGN_RE = re.compile(r"mpc\.(\w+)\s*=\s*", re.S)


def _parse_number(tok):
    t = tok.strip()
    low = t.lower()
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    return float(t)


def _parse_matrix(body, name):
    body = body.replace("...", " ")  # line continuations
    rows = []
    for raw in re.split(r"[;\n]", body):
        toks = [t for t in re.split(r"[\s,]+", raw.strip()) if t]
        if toks:
            rows.append([_parse_number(t) for t in toks])
    if not rows:
        return np.zeros((0, 0))
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError("matrix mpc.%s has rows of different lengths %s"
                         % (name, sorted(widths)))
    return np.array(rows, dtype=float)


def parse_matpower_case(path):
    """Parse a MATPOWER version-2 case file into a PYPOWER-style ppc dict.

    Numeric matrices (``mpc.X = [ ... ];``) are returned as float arrays
    with all columns present in the file, scalars (baseMVA, version) as
    float / str.  Cell arrays (bus_name, gentype, ...) are skipped.
    """
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = "\n".join(_strip_comment(ln) for ln in text.splitlines())

    ppc = {}
    pos = 0
    while True:
        m = _ASSIGN_RE.search(text, pos)
        if not m:
            break
        name = m.group(1)
        start = m.end()
        opener = text[start:start + 1]
        if opener == "[":
            end = text.index("]", start)
            ppc[name] = _parse_matrix(text[start + 1:end], name)
        elif opener == "{":
            # cell array: skip to the matching '}' outside strings
            end = start + 1
            in_str = False
            while True:
                c = text[end]
                if in_str:
                    if c == "'":
                        if text[end + 1:end + 2] == "'":
                            end += 1
                        else:
                            in_str = False
                elif c == "'":
                    in_str = True
                elif c == "}":
                    break
                end += 1
        else:
            end = text.index(";", start)
            val = text[start:end].strip()
            if val.startswith("'") and val.endswith("'"):
                ppc[name] = val[1:-1]
            else:
                ppc[name] = _parse_number(val)
        pos = end + 1

    for key in ("baseMVA", "bus", "gen", "branch"):
        if key not in ppc:
            raise ValueError("%s: mpc.%s not found" % (path, key))
    if str(ppc.get("version", "2")) != "2":
        raise ValueError("%s: only MATPOWER case format version 2 supported"
                         % path)
    ppc["version"] = "2"
    out = {k: ppc[k] for k in ("version", "baseMVA", "bus", "gen", "branch")}
    if "gencost" in ppc:
        out["gencost"] = ppc["gencost"]
    return out


# ---------------------------------------------------------------------------
# Running PYPOWER
# ---------------------------------------------------------------------------

# PYPOWER 5.1.21's runpf Q-limit loop (ENFORCE_Q_LIMS) is a port of an old
# MATPOWER runpf and has these bugs; the Q-limit runs use a copy of runpf
# with exactly these source replacements (each must match exactly once,
# otherwise the script stops; with ENFORCE_Q_LIMS=0 none of the changed
# lines is executed).  (what, old text, new text):
RUNPF_QLIM_FIXES = [
    # 1. 'remaining' (gens at PV/REF buses, for the infeasibility test)
    #    indexes bus with the float GEN_BUS column (IndexError as soon as any
    #    limit is violated) and, by operator precedence, computes
    #    `x == (PV | x) == REF` instead of `(x == PV) | (x == REF)`.
    ("int index and parentheses in the PV/REF test of 'remaining'",
     "(bus[gen[:, GEN_BUS], BUS_TYPE] == PV |",
     "((bus[gen[:, GEN_BUS].astype(int), BUS_TYPE] == PV) |"),
    ("int index and parentheses in the PV/REF test of 'remaining'",
     "bus[gen[:, GEN_BUS], BUS_TYPE] == REF))",
     "(bus[gen[:, GEN_BUS].astype(int), BUS_TYPE] == REF)))"),
    # 2. infeasibility test: PYPOWER has `or` (declares the case infeasible
    #    whenever as many gens violate as there are gens at PV/REF buses, and
    #    with numpy 2 raises on arrays of different length); MATPOWER has
    #    `&&` and in addition requires all violations to be on the same side.
    ("infeasibility test as in MATPOWER",
     "if len(infeas) == len(remaining) or all(infeas == remaining):",
     "if len(infeas) == len(remaining) and all(infeas == remaining) "
     "and (len(mx) == 0 or len(mn) == 0):"),
    # 3. multiple-slack check: float index (only evaluated with >1 ref bus).
    ("int index in the multiple-slack check",
     "any(bus[gen[mx, GEN_BUS], BUS_TYPE] == REF)",
     "any(bus[gen[mx, GEN_BUS].astype(int), BUS_TYPE] == REF)"),
    # 4. after a new reference bus was picked, the remaining PV buses get
    #    their *indices* as bus type (MATPOWER: bus(pv, BUS_TYPE) = PV).
    ("PV buses get type PV (not their index) after a new ref bus is picked",
     "bus[pv, BUS_TYPE] = pv",
     "bus[pv, BUS_TYPE] = PV"),
    # 5. restoring the loads at the end: float index (IndexError).
    ("int index when the limited gens' injections are restored",
     "bi = gen[limited[i], GEN_BUS]  ",
     "bi = gen[limited[i], GEN_BUS].astype(int)  "),
]


@functools.cache
def runpf_qlim_fixed():
    """PYPOWER's runpf with RUNPF_QLIM_FIXES applied.

    The function is compiled from the source of ``pypower.runpf.runpf`` in
    that module's namespace, so it uses the same helpers (and sees the
    temporary wrappers run_pypower() installs there).
    """
    import pypower.runpf as runpf_mod

    lines, first = inspect.getsourcelines(runpf_mod.runpf)
    src = "".join(lines)
    for what, old, new in RUNPF_QLIM_FIXES:
        if src.count(old) != 1 or "\n" in new:
            raise RuntimeError("PYPOWER runpf source differs from 5.1.21, "
                               "cannot apply fix: %s" % what)
        src = src.replace(old, new)
    # pad so that line numbers in tracebacks are those of pypower/runpf.py
    src = "\n" * (first - 1) + src
    namespace = {}
    exec(compile(src, "pypower/runpf.py (copy with RUNPF_QLIM_FIXES)",
                 "exec"), runpf_mod.__dict__, namespace)
    return namespace["runpf"]


def _copy_case(ppc):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v)
            for k, v in ppc.items()}


def run_pypower(ppc, **overrides):
    """Run PYPOWER runpf on a copy of ``ppc``.

    With ENFORCE_Q_LIMS set, the fixed copy runpf_qlim_fixed() is used.
    Returns (results, success, info) where info holds the Newton iteration
    counts and convergence flags (one entry per newtonpf call; several when
    Q limits are enforced), the bus-type rounds of the Q-limit loop (one
    entry per bustypes call, internal indexing), the solver time reported
    by runpf ('et') and the wall time of the call.  success is True only if
    every Newton solve converged.  Anything PYPOWER prints is captured and
    returned in info['stdout'].
    """
    import pypower.runpf as runpf_mod
    from pypower.ppoption import ppoption

    opts = dict(PPOPT_BASE)
    opts.update(overrides)
    ppopt = ppoption(**opts)
    runpf = runpf_qlim_fixed() if opts["ENFORCE_Q_LIMS"] else runpf_mod.runpf

    iterations, converged, rounds = [], [], []
    orig_newtonpf = runpf_mod.newtonpf
    orig_bustypes = runpf_mod.bustypes

    def counting_newtonpf(*args, **kwargs):
        V, ok, it = orig_newtonpf(*args, **kwargs)
        iterations.append(int(it))
        converged.append(bool(ok))
        return V, ok, it

    def recording_bustypes(bus, gen):
        ref, pv, pq = orig_bustypes(bus, gen)
        rounds.append(dict(ref=[int(i) for i in ref],
                           pq=[int(i) for i in pq],
                           gen_off=[int(i) for i in
                                    np.nonzero(gen[:, GEN_STATUS] <= 0)[0]],
                           gen=gen.copy()))
        return ref, pv, pq

    case = _copy_case(ppc)
    buf = io.StringIO()
    runpf_mod.newtonpf = counting_newtonpf
    runpf_mod.bustypes = recording_bustypes
    try:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            results, success = runpf(case, ppopt)
        wall = time.perf_counter() - t0
    finally:
        runpf_mod.newtonpf = orig_newtonpf
        runpf_mod.bustypes = orig_bustypes
    info = dict(iterations=iterations, converged=converged, rounds=rounds,
                et_s=float(results.get("et", math.nan)), wall_s=wall,
                stdout=buf.getvalue(), ppopt=opts, tool="PYPOWER runpf")
    if opts["ENFORCE_Q_LIMS"]:
        info["tool"] = ("PYPOWER runpf with the Q-limit fixes "
                        "RUNPF_QLIM_FIXES of make_powerflow_reference.py")
        info["pypower_fixes"] = sorted({w for w, _, _ in RUNPF_QLIM_FIXES})
    return results, bool(success) and all(converged), info


def run_pypower_dc(ppc):
    """Run PYPOWER rundcpf(ppc, ppoption(**PPOPT_DC)) on a copy of ``ppc``."""
    from pypower.ppoption import ppoption
    from pypower.rundcpf import rundcpf

    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        results, success = rundcpf(_copy_case(ppc), ppoption(**PPOPT_DC))
    wall = time.perf_counter() - t0
    info = dict(iterations=[], converged=[], rounds=[],
                et_s=float(results.get("et", math.nan)), wall_s=wall,
                stdout=buf.getvalue(), ppopt=dict(PPOPT_DC),
                tool="PYPOWER rundcpf")
    return results, bool(success), info


def qlim_summary(ppc, results, info):
    """What the Q-limit loop did, in external numbering / case-file rows.

    Built from the bustypes() calls recorded by run_pypower(): the first is
    the initial call, each further one follows one round of limiting (after
    Newton solve k, k = 1, 2, ...).  In PYPOWER's loop a limited generator
    is switched off (its P and fixed Q moved into the bus load) until the
    end, so the generators newly off in round k are those limited there.
    """
    order = results["order"]
    bus_i2e = np.asarray(order["bus"]["i2e"]).astype(int)
    gen_rows = np.asarray(order["gen"]["status"]["on"])[
        np.asarray(order["gen"]["e2i"]).astype(int)]  # internal -> case row
    gen0 = ppc["gen"]

    rounds, limited = [], []
    rec = info["rounds"]
    for k in range(1, len(rec)):
        new_off = sorted(set(rec[k]["gen_off"]) - set(rec[k - 1]["gen_off"]))
        gens = []
        for i in new_off:
            row = int(gen_rows[i])
            g = rec[k]["gen"][i]
            side = "QMAX" if g[QG] == g[QMAX] else "QMIN"
            gens.append(dict(row=row, gen_bus=int(gen0[row, GEN_BUS]),
                             limit=side, qg_mvar=float(g[QG])))
            limited.append(row)
        new_pq = sorted(set(rec[k]["pq"]) - set(rec[k - 1]["pq"]))
        rounds.append(dict(
            after_newton_solve=k,
            gens_limited=sorted(gens, key=lambda d: d["row"]),
            buses_to_pq=sorted(int(bus_i2e[i]) for i in new_pq),
            ref_bus=[int(bus_i2e[i]) for i in rec[k]["ref"]]))

    bus0, bus1 = ppc["bus"], results["bus"]
    ref0 = [int(b) for b in bus0[bus0[:, BUS_TYPE] == 3, BUS_I]]
    ref1 = [int(b) for b in bus1[bus1[:, BUS_TYPE] == 3, BUS_I]]
    to_pq = [int(b0[BUS_I]) for b0, b1 in zip(bus0, bus1, strict=True)
             if b0[BUS_TYPE] in (2, 3) and b1[BUS_TYPE] == 1]
    gen = results["gen"]
    at_limit = []
    for row in sorted(limited):
        g = gen[row]
        if g[QG] not in (g[QMAX], g[QMIN]):
            raise RuntimeError("gen row %d was limited but QG %r is not at a "
                               "limit" % (row, g[QG]))
        at_limit.append(dict(row=row, gen_bus=int(g[GEN_BUS]),
                             limit="QMAX" if g[QG] == g[QMAX] else "QMIN",
                             qg_mvar=float(g[QG]), pg_mw=float(g[PG]),
                             pg_mw_case_file=float(gen0[row, PG])))
    # PG differs from the case file for the reference-bus generator(s) and
    # for generators that were the reference in an intermediate round.
    pg_changed = [dict(row=int(i), gen_bus=int(gen[i, GEN_BUS]),
                       pg_mw=float(gen[i, PG]),
                       pg_mw_case_file=float(gen0[i, PG]))
                  for i in range(gen.shape[0])
                  if gen0[i, GEN_STATUS] > 0 and gen[i, PG] != gen0[i, PG]]
    return {
        "gens_at_q_limit": at_limit,
        "gens_pg_not_case_file": pg_changed,
        "buses_switched_to_pq": to_pq,
        "ref_bus_initial": ref0,
        "ref_bus_final": ref1,
        "ref_bus_changed": ref0 != ref1,
        "rounds": rounds,
    }


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _fmt(x):
    if x == 0:
        return "0"  # also turns -0.0 into 0
    return FLOAT_FMT % x


def _write_csv(path, header, rows):
    with open(path, "w", newline="\n") as fh:
        fh.write(",".join(header) + "\n")
        for r in rows:
            fh.write(",".join(r) + "\n")


def write_results(out_dir, case_name, results, success, info, extra=None):
    os.makedirs(out_dir, exist_ok=True)
    bus, gen, branch = results["bus"], results["gen"], results["branch"]

    _write_csv(os.path.join(out_dir, "bus.csv"),
               ["bus_i", "type", "vm_pu", "va_deg"],
               [[str(int(b[BUS_I])), str(int(b[BUS_TYPE])), _fmt(b[VM]),
                 _fmt(b[VA])] for b in bus])
    _write_csv(os.path.join(out_dir, "gen.csv"),
               ["row", "gen_bus", "pg_mw", "qg_mvar", "status"],
               [[str(i), str(int(g[GEN_BUS])), _fmt(g[PG]), _fmt(g[QG]),
                 str(int(g[GEN_STATUS] > 0))] for i, g in enumerate(gen)])
    _write_csv(os.path.join(out_dir, "branch.csv"),
               ["row", "f_bus", "t_bus", "pf_mw", "qf_mvar", "pt_mw",
                "qt_mvar", "status"],
               [[str(i), str(int(br[F_BUS])), str(int(br[T_BUS])),
                 _fmt(br[PF]), _fmt(br[QF]), _fmt(br[PT]), _fmt(br[QT]),
                 str(int(br[BR_STATUS] != 0))]
                for i, br in enumerate(branch)])

    on = gen[:, GEN_STATUS] > 0
    outside_q = np.nonzero(on & ((gen[:, QG] > gen[:, QMAX] + 1e-6) |
                                 (gen[:, QG] < gen[:, QMIN] - 1e-6)))[0]
    meta = {
        "case": case_name,
        "gen_rows_outside_q_limits": [int(i) for i in outside_q],
        "case_file": "tests/data/matpower/%s.m" % case_name,
        "converged": success,
        "newton_iterations": info["iterations"],
        "baseMVA": float(results["baseMVA"]),
        "n_bus": int(bus.shape[0]),
        "n_gen": int(gen.shape[0]),
        "n_branch": int(branch.shape[0]),
        "tool": info["tool"],
        "pypower_version": importlib.metadata.version("PYPOWER"),
        "numpy_version": np.__version__,
        "ppoption": info["ppopt"],
        "float_format": FLOAT_FMT,
        "numbering": "external (case file bus numbers), case file row order",
    }
    meta.update(extra or {})
    with open(os.path.join(out_dir, "info.json"), "w", newline="\n") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
        fh.write("\n")


def main():
    print("PYPOWER %s, numpy %s" % (importlib.metadata.version("PYPOWER"),
                                    np.__version__))
    for name in CASES:
        path = os.path.join(CASE_DIR, name + ".m")
        ppc = parse_matpower_case(path)
        jobs = [(name, "ac"), (name + "_dc", "dc")]
        if name in QLIM_CASES:
            jobs.append((name + "_qlim", "qlim"))
        for tag, kind in jobs:
            out_dir = os.path.join(OUT_DIR, tag)
            if os.path.isdir(out_dir):
                shutil.rmtree(out_dir)  # never leave stale results behind
            try:
                if kind == "dc":
                    res, ok, info = run_pypower_dc(ppc)
                else:
                    overrides = {"ENFORCE_Q_LIMS": 1} if kind == "qlim" else {}
                    res, ok, info = run_pypower(ppc, **overrides)
            except Exception as exc:
                print("%-14s FAILED (%s: %s) - not written"
                      % (tag, type(exc).__name__, exc))
                continue
            if not ok:
                print("%-14s did not converge - not written" % tag)
                continue
            extra = None
            if kind == "qlim":
                extra = {"q_limits": qlim_summary(ppc, res, info),
                         "pypower_fixes": info["pypower_fixes"]}
            write_results(out_dir, name, res, ok, info, extra)
            line = "%-14s converged, iterations %s, %.3f s" % (
                tag, info["iterations"], info["wall_s"])
            if extra:
                q = extra["q_limits"]
                line += "; at Q limit: %s; ref %s -> %s" % (
                    ", ".join("row %d (bus %d, %s)" % (g["row"], g["gen_bus"],
                                                      g["limit"])
                              for g in q["gens_at_q_limit"]) or "none",
                    q["ref_bus_initial"], q["ref_bus_final"])
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
