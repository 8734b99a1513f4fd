#!/usr/bin/env python
"""Regenerate the stored AC power flow reference results (PYPOWER).

Usage (from anywhere)::

    python tests/data/reference/make_powerflow_reference.py

For every MATPOWER case file in ``tests/data/matpower/`` this script

1. parses the ``.m`` file with a small standalone parser defined below
   (deliberately independent of the package code in ``twin/`` and ``ext/``
   and of pandapower / matpowercaseframes),
2. runs PYPOWER's Newton-Raphson ``runpf`` with fixed options, and
3. writes compact CSV tables plus a small JSON summary into
   ``tests/data/reference/powerflow/<case>/`` (generator Q limits ignored)
   and, for the cases listed in ``QLIM_CASES``,
   ``tests/data/reference/powerflow/<case>_qlim/`` (ENFORCE_Q_LIMS=1; only
   written if PYPOWER succeeds, otherwise the failure is printed).

Results are kept in PYPOWER's *external* numbering and in the row order
of the case file (runpf maps back via int2ext).  See README.md next to
this script for the file formats.

Requirements: numpy, PYPOWER.  Nothing else.
"""

import contextlib
import importlib.metadata
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
QLIM_CASES = ["case14", "case30", "case57", "case118"]

PPOPT_BASE = dict(PF_ALG=1, PF_TOL=1e-10, PF_MAX_IT=30, VERBOSE=0, OUT_ALL=0,
                  ENFORCE_Q_LIMS=0)

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

def run_pypower(ppc, **overrides):
    """Run PYPOWER runpf on a copy of ``ppc``.

    Returns (results, success, info) where info holds the Newton iteration
    counts (one entry per newtonpf call; several when Q limits are enforced),
    the solver time reported by runpf ('et') and the wall time of the call.
    Anything PYPOWER prints is captured and returned in info['stdout'].
    """
    import pypower.runpf as runpf_mod
    from pypower.ppoption import ppoption

    opts = dict(PPOPT_BASE)
    opts.update(overrides)
    ppopt = ppoption(**opts)

    iterations = []
    orig_newtonpf = runpf_mod.newtonpf

    def counting_newtonpf(*args, **kwargs):
        V, converged, it = orig_newtonpf(*args, **kwargs)
        iterations.append(int(it))
        return V, converged, it

    case = {k: (v.copy() if isinstance(v, np.ndarray) else v)
            for k, v in ppc.items()}
    buf = io.StringIO()
    runpf_mod.newtonpf = counting_newtonpf
    try:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            results, success = runpf_mod.runpf(case, ppopt)
        wall = time.perf_counter() - t0
    finally:
        runpf_mod.newtonpf = orig_newtonpf
    info = dict(iterations=iterations, et_s=float(results.get("et", math.nan)),
                wall_s=wall, stdout=buf.getvalue(), ppopt=opts)
    return results, bool(success), info


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


def write_results(out_dir, case_name, results, success, info):
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
        "tool": "PYPOWER runpf",
        "pypower_version": importlib.metadata.version("PYPOWER"),
        "numpy_version": np.__version__,
        "ppoption": info["ppopt"],
        "float_format": FLOAT_FMT,
        "numbering": "external (case file bus numbers), case file row order",
    }
    with open(os.path.join(out_dir, "info.json"), "w", newline="\n") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
        fh.write("\n")


def main():
    print("PYPOWER %s, numpy %s" % (importlib.metadata.version("PYPOWER"),
                                    np.__version__))
    for name in CASES:
        path = os.path.join(CASE_DIR, name + ".m")
        ppc = parse_matpower_case(path)
        jobs = [(name, {})]
        if name in QLIM_CASES:
            jobs.append((name + "_qlim", {"ENFORCE_Q_LIMS": 1}))
        for tag, overrides in jobs:
            out_dir = os.path.join(OUT_DIR, tag)
            if os.path.isdir(out_dir):
                shutil.rmtree(out_dir)  # never leave stale results behind
            try:
                res, ok, info = run_pypower(ppc, **overrides)
            except Exception as exc:  # PYPOWER bugs in the Q-limit loop
                print("%-14s FAILED (%s: %s) - not written"
                      % (tag, type(exc).__name__, exc))
                continue
            if not ok:
                print("%-14s did not converge - not written" % tag)
                continue
            write_results(out_dir, name, res, ok, info)
            print("%-14s converged, iterations %s, %.3f s"
                  % (tag, info["iterations"], info["wall_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
