#!/usr/bin/env python
"""Regenerate the stored EPANET 2.3 hydraulic reference results.

Usage (from the repository root, or from anywhere)::

    python tests/data/water/reference/make_hydraulics_reference.py            # all
    python tests/data/water/reference/make_hydraulics_reference.py Net1 Net3  # some
    python tests/data/water/reference/make_hydraulics_reference.py --list

For every network ``<name>`` (``../<name>.inp`` relative to this script) the
script runs an extended-period *hydraulic* simulation (no water quality)
with the EPANET 2.3 toolkit of the ``owa-epanet`` package
(``from epanet import toolkit as en``) and writes ``<name>/`` next to this
script (see README.md for the file formats).

How the toolkit is driven
-------------------------
1. ``en.createproject()``, ``en.open(ph, inp, os.devnull, "")`` (no report,
   scratch binary output), ``en.setstatusreport(ph, en.NO_REPORT)``.
2. ``en.setoption(ph, en.PRESS_UNITS, en.METERS)``: pressures come out in
   metres of water, whatever the file's units.  With the ``METERS``
   pressure unit EPANET reports ``(H - z) * 0.3048`` for its internal
   heads H and elevations z in feet, i.e. exactly the same factor as for
   heads, so ``pressure == head - elevation`` in metres.
3. ``en.setoption(ph, en.ACCURACY, 1e-7)`` and a read-back with
   ``en.getoption(ph, en.ACCURACY)`` (the script stops if it did not take).
4. ``en.openH``, ``en.initH(ph, 0)``, then ``t = en.runH(ph)`` /
   ``tstep = en.nextH(ph)`` until ``tstep == 0``.  Every time ``t`` returned
   by ``runH`` is kept in ``info.json`` (``hydraulic_times_s``); full
   results are recorded only at *reporting* times
   ``t >= REPORTSTART and (t - REPORTSTART) % REPORTSTEP == 0``.  Pump
   ``EN_STATUS`` is recorded at every hydraulic time to count switches.
5. Constant-power pumps (``POWER`` in ``[PUMPS]``): EPANET 2.3.5 divides
   the power read from the file by the power unit factor (1 for hp, 0.7457
   kW/hp for SI) when it reads the file (``convertunits``) and once more
   when the hydraulics are opened (``constpowerpump``).  Harmless for US
   units (factor 1), but with SI flow units -- in the file or after
   ``en.setflowunits`` to an SI unit -- such a pump gets 1/0.7457 = 1.34
   times the power written in the file.  ``en.setlinkvalue(ph, k,
   en.PUMP_POWER, P)`` stores ``P`` unconverted, so the script reads
   ``en.getlinkvalue(ph, k, en.PUMP_POWER)`` (hp) right after opening and
   writes it back in the project's current power unit (hp, or kW for SI
   flow units).  A no-op for the stored runs of the networks here (the
   only such pump, Net6's PUMP-3889, is in a GPM file); it makes the
   EN_CMS cross-check of Net6 agree.
6. Values are read in double precision with ``en.getnodevalues`` /
   ``en.getnodevalue`` / ``en.getlinkvalue`` (never from the binary
   output file).

SI conversion
-------------
The toolkit returns flows in the file's flow units and heads in feet (US
flow units) or metres (SI flow units).  The stored values are these
toolkit values multiplied by exact factors (``FLOW_UNITS`` below, e.g.
1 gpm = 3.785411784e-3/60 m³/s; 0.3048 m/ft), i.e. the SI values of the
network *as written in the file*.  Dividing by ``si_conversion`` in
``info.json`` gives back the toolkit's numbers.  (Internally EPANET works
in ft and cfs and converts the file's gpm with its rounded 448.831
gpm/cfs, which is 3.8e-7 off the exact value.)

``en.setflowunits(ph, en.CMS)`` exists in 2.3 but was not used for the
stored values: EPANET converts cfs to m³/s with its rounded ``LPSperCFS =
28.317`` (exact 28.316846592...), so for a gpm file its m³/s flows are
28.317e-3 / (448.831 * 3.785411784e-3/60) = 1 + 5.8e-6 times the exact
ones.  The script runs every network a second time with
``en.setflowunits(ph, en.CMS)`` as a cross-check and writes the comparison
to ``info.json`` (``cms_cross_check``): same hydraulic times and statuses,
heads within about 1e-5 m (convergence noise at ACCURACY 1e-7), flows in
that constant ratio.  ``--no-check`` skips this.

Requirements: numpy, pandas, owa-epanet (EPANET 2.3).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from epanet import toolkit as en

HERE = Path(__file__).resolve().parent
INP_DIR = HERE.parent

NETWORKS = ["Net1", "Net2", "Net3", "Anytown_multipointcurves", "pda_deficient", "Net6", "net1_rules", "net1_valves", "net1_pbv",
            "inp/features", "inp/dw_lps", "inp/cm_cfs"]

ACCURACY = 1e-7
FLOAT_FORMAT = "%.12g"
# If the full CSVs of a network exceed this, store a reduced set (see README).
MAX_BYTES = 3_000_000

FT = 0.3048  # m per ft, exact
US_GALLON = 3.785411784e-3  # m³, exact
IMP_GALLON = 4.54609e-3  # m³, exact
ACRE_FOOT = 43560.0 * FT**3  # m³, exact
DAY = 86400.0

# flow unit code -> (name, exact factor to m³/s, is SI)
FLOW_UNITS = {
    en.CFS: ("CFS", FT**3, False),
    en.GPM: ("GPM", US_GALLON / 60.0, False),
    en.MGD: ("MGD", 1e6 * US_GALLON / DAY, False),
    en.IMGD: ("IMGD", 1e6 * IMP_GALLON / DAY, False),
    en.AFD: ("AFD", ACRE_FOOT / DAY, False),
    en.LPS: ("LPS", 1e-3, True),
    en.LPM: ("LPM", 1e-3 / 60.0, True),
    en.MLD: ("MLD", 1e3 / DAY, True),
    en.CMH: ("CMH", 1.0 / 3600.0, True),
    en.CMD: ("CMD", 1.0 / DAY, True),
    en.CMS: ("CMS", 1.0, True),
}
PRESSURE_UNITS = {en.PSI: "PSI", en.KPA: "KPA", en.METERS: "METERS", en.BAR: "BAR", en.FEET: "FEET"}
HEADLOSS = {en.HW: "H-W", en.DW: "D-W", en.CM: "C-M"}
NODE_TYPES = {en.JUNCTION: "junction", en.RESERVOIR: "reservoir", en.TANK: "tank"}
LINK_TYPES = {
    en.CVPIPE: "cvpipe", en.PIPE: "pipe", en.PUMP: "pump", en.PRV: "prv", en.PSV: "psv",
    en.PBV: "pbv", en.FCV: "fcv", en.TCV: "tcv", en.GPV: "gpv", en.PCV: "pcv",
}
# Hydraulic options recorded in info.json (values as the toolkit reports them).
OPTIONS = {
    "trials": en.TRIALS, "accuracy": en.ACCURACY, "headerror": en.HEADERROR,
    "flowchange": en.FLOWCHANGE, "checkfreq": en.CHECKFREQ, "maxcheck": en.MAXCHECK,
    "damplimit": en.DAMPLIMIT, "unbalanced": en.UNBALANCED, "demandmult": en.DEMANDMULT,
    "sp_gravity": en.SP_GRAVITY, "sp_viscos": en.SP_VISCOS, "emitexpon": en.EMITEXPON,
}


def _version_string(v: int) -> str:
    return f"{v // 10000}.{(v // 100) % 100}.{v % 100}"


def simulate(inp: Path, cms: bool = False) -> dict:
    """Run the hydraulics of ``inp``; return SI results at reporting times.

    ``cms=True`` switches the project to EN_CMS flow units before running
    (cross-check only; the stored results use ``cms=False``).
    """
    ph = en.createproject()
    en.open(ph, str(inp), os.devnull, "")
    try:
        return _simulate_open(ph, cms)
    finally:
        en.close(ph)
        en.deleteproject(ph)


def _simulate_open(ph, cms: bool) -> dict:
    en.setstatusreport(ph, en.NO_REPORT)
    file_flow_units = en.getflowunits(ph)
    file_press_units = int(en.getoption(ph, en.PRESS_UNITS))
    nl = en.getcount(ph, en.LINKCOUNT)
    # Constant-power pumps: power as stored from the input file, in hp.
    hp = {k: en.getlinkvalue(ph, k, en.PUMP_POWER) for k in range(1, nl + 1)
          if en.getlinktype(ph, k) == en.PUMP and en.getpumptype(ph, k) == en.CONST_HP}
    if cms:
        en.setflowunits(ph, en.CMS)
    # Work around EPANET 2.3.5 (see module docstring): re-enter the power of
    # constant-power pumps in the project's current power unit.
    kw_per_hp = 0.7457 if FLOW_UNITS[en.getflowunits(ph)][2] else 1.0
    for k, v in hp.items():
        en.setlinkvalue(ph, k, en.PUMP_POWER, v * kw_per_hp)
    en.setoption(ph, en.PRESS_UNITS, en.METERS)
    en.setoption(ph, en.ACCURACY, ACCURACY)
    acc = en.getoption(ph, en.ACCURACY)
    if acc != ACCURACY:
        raise RuntimeError(f"EN_ACCURACY did not take: {acc!r}")
    if int(en.getoption(ph, en.PRESS_UNITS)) != en.METERS:
        raise RuntimeError("EN_PRESS_UNITS did not take")

    flow_units = en.getflowunits(ph)
    _, qf, si = FLOW_UNITS[flow_units]  # toolkit flow unit -> m³/s
    lf = 1.0 if si else FT  # toolkit head/length unit -> m

    nn = en.getcount(ph, en.NODECOUNT)
    node_ids = [en.getnodeid(ph, i) for i in range(1, nn + 1)]
    node_types = [NODE_TYPES[en.getnodetype(ph, i)] for i in range(1, nn + 1)]
    link_ids = [en.getlinkid(ph, i) for i in range(1, nl + 1)]
    link_types = [LINK_TYPES[en.getlinktype(ph, i)] for i in range(1, nl + 1)]
    pumps = [i for i in range(nl) if link_types[i] == "pump"]
    junctions = [i for i in range(nn) if node_types[i] == "junction"]
    tanks = [i for i in range(nn) if node_types[i] == "tank"]
    hlform = int(en.getoption(ph, en.HEADLOSSFORM))

    # EN_SETTING -> SI: pipes report roughness (H-W C / C-M n dimensionless,
    # D-W in mm (SI files) or millifeet (US files)), pumps the relative
    # speed, PRV/PSV/PBV a pressure (already metres, EN_PRESS_UNITS=METERS),
    # FCV a flow, TCV a loss coefficient, GPV/PCV curve-related numbers.
    setting_factor = np.ones(nl)
    for i, t in enumerate(link_types):
        if t in ("pipe", "cvpipe") and hlform == en.DW:
            setting_factor[i] = lf  # -> mm
        elif t == "fcv":
            setting_factor[i] = qf

    dm = en.getdemandmodel(ph)  # [type, pmin, preq, pexp]; pressures in m now
    pda = dm[0] == en.PDA
    times = {k: en.gettimeparam(ph, getattr(en, k)) for k in
             ("DURATION", "HYDSTEP", "PATTERNSTEP", "PATTERNSTART", "REPORTSTEP", "REPORTSTART", "STARTTIME")}
    rstart, rstep = times["REPORTSTART"], times["REPORTSTEP"]

    buf_n = en.doubleArray(nn)
    buf_l = en.doubleArray(nl)

    def nodevals(prop):
        en.getnodevalues(ph, prop, buf_n)
        return np.fromiter((buf_n[i] for i in range(nn)), float, nn)

    def linkvals(prop):
        en.getlinkvalues(ph, prop, buf_l)
        return np.fromiter((buf_l[i] for i in range(nl)), float, nl)

    rec = {k: [] for k in ("head", "pressure", "demand", "full_demand", "flow", "status",
                           "setting", "pump_state", "pump_energy")}
    rep_times, all_times, pump_status_all, warn_times, iters, relerr = [], [], [], [], [], []
    en.openH(ph)
    en.initH(ph, 0)
    while True:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            t = en.runH(ph)
        if w:
            warn_times.append(t)
        all_times.append(t)
        iters.append(int(en.getstatistic(ph, en.ITERATIONS)))
        relerr.append(en.getstatistic(ph, en.RELATIVEERROR))
        pump_status_all.append([int(en.getlinkvalue(ph, k + 1, en.STATUS)) for k in pumps])
        if t >= rstart and (t - rstart) % rstep == 0:
            rep_times.append(t)
            rec["head"].append(nodevals(en.HEAD) * lf)
            rec["pressure"].append(nodevals(en.PRESSURE))
            rec["demand"].append(nodevals(en.DEMAND) * qf)
            if pda:
                rec["full_demand"].append(nodevals(en.FULLDEMAND)[junctions] * qf)
            rec["flow"].append(linkvals(en.FLOW) * qf)
            rec["status"].append(linkvals(en.STATUS).astype(int))
            rec["setting"].append(linkvals(en.SETTING) * setting_factor)
            rec["pump_state"].append([int(en.getlinkvalue(ph, k + 1, en.PUMP_STATE)) for k in pumps])
            rec["pump_energy"].append([en.getlinkvalue(ph, k + 1, en.ENERGY) for k in pumps])
        if en.nextH(ph) <= 0:
            break
    en.closeH(ph)

    return dict(
        flow_units=flow_units, file_flow_units=file_flow_units, file_press_units=file_press_units,
        const_power_pumps_hp={en.getlinkid(ph, k): v for k, v in hp.items()},
        flow_factor=qf, length_factor=lf, accuracy=acc, headloss=hlform, demand_model=dm,
        options={k: en.getoption(ph, v) for k, v in OPTIONS.items()}, times=times,
        node_ids=node_ids, node_types=node_types, link_ids=link_ids, link_types=link_types,
        pumps=pumps, junctions=junctions, tanks=tanks,
        rep_times=rep_times, all_times=all_times,
        pump_status_all=np.array(pump_status_all, int).reshape(len(all_times), len(pumps)),
        warn_times=warn_times, iters=iters, relerr=relerr, rec=rec,
    )


def _frame(rows, index, columns) -> pd.DataFrame:
    df = pd.DataFrame(np.array(rows).reshape(len(index), len(columns)), index=index, columns=columns)
    df.index.name = "time_s"
    return df


def _write(df: pd.DataFrame, path: Path) -> int:
    df.to_csv(path, float_format=FLOAT_FORMAT, compression={"method": "gzip", "mtime": 0})
    return path.stat().st_size


def _switches(series: np.ndarray, times: list[int]) -> tuple[int, list[int]]:
    """Number of off<->on changes of a 0/1 series, and the times they happen."""
    ch = np.flatnonzero(np.diff(series) != 0) + 1
    return len(ch), [int(times[i]) for i in ch]


def _json(obj: dict) -> str:
    """JSON with one line per key (two levels), lists kept on one line."""
    lines = []
    for k, v in obj.items():
        if isinstance(v, dict) and v:
            sub = [f"  {json.dumps(a)}: {json.dumps(b)}" for a, b in v.items()]
            lines.append(f" {json.dumps(k)}: {{\n" + ",\n".join(sub) + "\n }")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def cross_check(r: dict, c: dict) -> dict:
    """Compare the stored (native units, exact factors) run with an EN_CMS run."""
    same_times = r["all_times"] == c["all_times"] and r["rep_times"] == c["rep_times"]
    out = {"same_hydraulic_times": same_times}
    if not same_times:
        return out
    rh, ch = np.array(r["rec"]["head"]), np.array(c["rec"]["head"])
    rp, cp = np.array(r["rec"]["pressure"]), np.array(c["rec"]["pressure"])
    rq, cq = np.array(r["rec"]["flow"]), np.array(c["rec"]["flow"])
    big = np.abs(rq) > 1e-3 * np.abs(rq).max()
    ratio = cq[big] / rq[big]
    med = float(np.median(ratio))
    out.update(
        same_link_status=bool((np.array(r["rec"]["status"]) == np.array(c["rec"]["status"])).all()),
        same_pump_status_all_steps=bool((r["pump_status_all"] == c["pump_status_all"]).all()),
        max_abs_head_diff_m=float(np.abs(rh - ch).max()),
        max_abs_pressure_diff_m=float(np.abs(rp - cp).max()),
        cms_over_exact_flow_ratio_median=med,
        cms_over_exact_flow_ratio_min=float(ratio.min()),
        cms_over_exact_flow_ratio_max=float(ratio.max()),
        max_abs_flow_diff_m3s_after_dividing_by_median_ratio=float(np.abs(cq / med - rq).max()),
    )
    return out


def make(name: str, check: bool = True) -> dict:
    inp = INP_DIR / f"{name}.inp"
    r = simulate(inp)
    out = HERE / Path(name).name  # "inp/features" -> reference/features
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()

    t = r["rep_times"]
    nid, lid = r["node_ids"], r["link_ids"]
    pid = [lid[k] for k in r["pumps"]]
    rec = r["rec"]
    full = {
        "node_head": _frame(rec["head"], t, nid),
        "node_pressure": _frame(rec["pressure"], t, nid),
        "node_demand": _frame(rec["demand"], t, nid),
        "link_flow": _frame(rec["flow"], t, lid),
        "link_status": _frame(rec["status"], t, lid),
        "link_setting": _frame(rec["setting"], t, lid),
    }
    if rec["full_demand"]:
        full["node_required_demand"] = _frame(rec["full_demand"], t, [nid[i] for i in r["junctions"]])
    if pid:
        full["pump_state"] = _frame(rec["pump_state"], t, pid)
        full["pump_energy"] = _frame(rec["pump_energy"], t, pid)
        full["pump_status_all_steps"] = _frame(r["pump_status_all"], r["all_times"], pid)

    sizes = {k: _write(df, out / f"{k}.csv.gz") for k, df in full.items()}
    full_bytes = sum(sizes.values())
    reduced = full_bytes > MAX_BYTES
    if reduced:
        for f in out.iterdir():
            f.unlink()
        small = {k: full[k].iloc[:1] for k in ("node_head", "node_pressure", "node_demand",
                                                "link_flow", "link_status", "link_setting")}
        small["tank_head"] = full["node_head"][[nid[i] for i in r["tanks"]]]
        small["pump_status"] = full["link_status"][pid]
        for k in ("pump_state", "pump_energy", "pump_status_all_steps"):
            if k in full:
                small[k] = full[k]
        sizes = {k: _write(df, out / f"{k}.csv.gz") for k, df in small.items()}

    all_times = r["all_times"]
    hstep = r["times"]["HYDSTEP"]
    pumps = {}
    for j, k in enumerate(r["pumps"]):
        n, when = _switches(r["pump_status_all"][:, j], all_times)
        n_rep, _ = _switches(np.array(rec["status"])[:, k], t)
        pumps[lid[k]] = {"switches": n, "switch_times_s": when, "switches_at_reporting_times": n_rep,
                         "initial_status": int(r["pump_status_all"][0, j])}
    fu_name, qf, _ = FLOW_UNITS[r["file_flow_units"]]
    dm = r["demand_model"]
    version = en.getversion()
    info = {
        "network": name,
        "inp_file": f"../{name}.inp",
        "epanet_version": _version_string(version),
        "epanet_version_code": version,
        "owa_epanet_package": importlib.metadata.version("owa-epanet"),
        "accuracy": r["accuracy"],
        "flow_units_of_file": fu_name,
        "pressure_units_of_file": PRESSURE_UNITS[r["file_press_units"]],
        "headloss_formula": HEADLOSS[r["headloss"]],
        "demand_model": "PDA" if dm[0] == en.PDA else "DDA",
        # PDA parameters (m); null for DDA runs
        "pda_min_pressure_m": dm[1] if dm[0] == en.PDA else None,
        "pda_required_pressure_m": dm[2] if dm[0] == en.PDA else None,
        "pda_pressure_exponent": dm[3] if dm[0] == en.PDA else None,
        "options": r["options"],
        "duration_s": r["times"]["DURATION"],
        "hydraulic_step_s": hstep,
        "pattern_step_s": r["times"]["PATTERNSTEP"],
        "pattern_start_s": r["times"]["PATTERNSTART"],
        "report_step_s": r["times"]["REPORTSTEP"],
        "report_start_s": r["times"]["REPORTSTART"],
        "start_clocktime_s": r["times"]["STARTTIME"],
        "si_conversion": {"flow_factor_to_m3s": qf, "length_factor_to_m": r["length_factor"],
                          "pressure": "EN_PRESS_UNITS set to EN_METERS"},
        "constant_power_pumps_hp": r["const_power_pumps_hp"],
        "n_nodes": len(nid), "n_links": len(lid),
        "junctions": [nid[i] for i in r["junctions"]],
        "reservoirs": [n for n, ty in zip(nid, r["node_types"]) if ty == "reservoir"],
        "tanks": [nid[i] for i in r["tanks"]],
        "link_types": {ty: [lid[i] for i, x in enumerate(r["link_types"]) if x == ty]
                       for ty in sorted(set(r["link_types"])) if ty != "pipe"},
        "n_reporting_times": len(t),
        "n_hydraulic_steps": len(all_times),
        "n_non_reporting_steps": len(all_times) - len(t),
        "n_off_grid_steps": sum(1 for x in all_times if x % hstep),
        "hydraulic_times_s": all_times,
        "warning_times_s": r["warn_times"],
        "trials_per_step": r["iters"],
        "max_relative_error": max(r["relerr"]),
        "pumps": pumps,
        "reduced": reduced,
        "full_csv_bytes": full_bytes,
        "files": {f"{k}.csv.gz": s for k, s in sizes.items()},
    }
    if check:
        info["cms_cross_check"] = cross_check(r, simulate(inp, cms=True))
    (out / "info.json").write_text(_json(info))
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("networks", nargs="*", help=f"networks to run (default: all of {', '.join(NETWORKS)})")
    ap.add_argument("--no-check", action="store_true", help="skip the EN_CMS cross-check run")
    ap.add_argument("--list", action="store_true", help="list the networks and exit")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(NETWORKS))
        return 0
    bad = [n for n in a.networks if not (INP_DIR / f"{n}.inp").is_file()]
    if bad:
        ap.error(f"no such network: {', '.join(bad)}")
    for name in a.networks or NETWORKS:
        info = make(name, check=not a.no_check)
        sw = {p: v["switches"] for p, v in info["pumps"].items()}
        print(f"{name}: {info['n_reporting_times']} reporting times, {info['n_hydraulic_steps']} hydraulic steps, "
              f"{sum(info['files'].values()) / 1e3:.0f} kB{' (reduced)' if info['reduced'] else ''}, "
              f"pump switches {sw}")
        if "cms_cross_check" in info:
            print("   EN_CMS cross-check:", info["cms_cross_check"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
