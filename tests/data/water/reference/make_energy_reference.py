#!/usr/bin/env python
"""Regenerate ``energy.json``: EPANET 2.3's pump energy report for the networks with pumps.

Usage (from the repository root, or from anywhere)::

    python tests/data/water/reference/make_energy_reference.py
    python tests/data/water/reference/make_energy_reference.py --print   # also show the report tables

For every network of ``NETWORKS`` (``../<name>.inp`` relative to this script)
the script runs an extended-period hydraulic simulation with the EPANET 2.3
toolkit of the ``owa-epanet`` package (``from epanet import toolkit as en``)
and stores three views of the pump energy accounting (see README.md):

``report``
    EPANET's own "Energy Usage" table, parsed from the text report written
    by ``en.report``.  The report prints every value with **2 decimals**
    (``report.c`` ``writeenergy``: ``%6.2f`` / ``%9.2f``), so each value is
    known to +-0.005 only.
``binary``
    The same quantities from the energy section of EPANET's binary output
    file (``output.c`` ``saveenergy``), written as 4-byte floats: the same
    numbers as the report, to a relative 6e-8 instead of 2 decimals.
``kwh_integrated``
    kWh per pump integrated by this script in double precision: at every
    hydraulic time ``t`` returned by ``runH`` the pump's power ``EN_ENERGY``
    (kW; ``getenergy`` on the current solution, the same value ``nexthyd``
    stores as ``CurrentPower``) times the step returned by ``nextH`` (h),
    for ``t < duration`` -- what EPANET's ``addenergy`` adds to ``KwHrs``.

How the toolkit is driven
-------------------------
1. ``en.open(ph, inp, <tmp>.rpt, <tmp>.out)`` in a temporary folder;
   ``en.setstatusreport(ph, en.NO_REPORT)``;
   ``en.setreport(ph, ...)`` with ``ENERGY YES``, ``SUMMARY NO``,
   ``STATUS NO``, ``NODES NONE``, ``LINKS NONE``, ``PAGE 0``, so that the
   report holds the energy table only (plus any warnings).
2. Constant-power pumps: the same work-around for the EPANET 2.3.5 unit
   bug as in ``make_hydraulics_reference.py`` (a no-op for these networks).
3. ``en.setoption(ph, en.ACCURACY, 1e-7)`` (read back).
4. ``en.openH``; ``en.initH(ph, en.SAVE)``; ``t = en.runH`` /
   ``tstep = en.nextH`` until ``tstep == 0``, reading ``EN_ENERGY`` of each
   pump after every ``runH`` -- this is ``en.solveH`` step by step;
   ``en.closeH``.
5. ``en.saveH`` (transfers the results to the binary output file; this is
   where ``saveenergy`` turns the accumulators into the reported averages)
   and ``en.report``; the report and output files are read after
   ``en.close``.

Definitions (EPANET 2.3 ``hydraul.c`` ``addenergy``, ``output.c``
``saveenergy``), with ``T`` the duration in hours and ``t_on`` a pump's
hours online: Usage Factor = 100 ``t_on / T``; Avg. Effic. = 100 sum(e dt)
/ ``t_on``; Kw-hr/Mgal or /m3 = sum(P/|q| dt) / ``t_on`` converted with
EPANET's ``GPMperCFS = 448.831`` resp. ``LPSperCFS = 28.317`` (the
*time average of P/q while online*, not kWh / pumped volume); Avg. Kw = kWh
/ ``t_on`` (average *while online*); Peak Kw = max P; Cost/day = sum(price
x pattern factor x P dt) x 24 / ``T``; Total Cost = sum of the Cost/day
column + Demand Charge.  Demand Charge: ``saveenergy`` replaces the peak over
time of the *sum* of all pumps' power, ``Emax``, by ``Emax x Dcost`` (the
value in the binary file) and ``writeenergy`` then prints ``Emax x Dcost``
again, so the report shows ``Dcost^2 x`` peak kW (an EPANET bug since 2.0;
the script checks report == ``demand_charge_rate`` x binary).

Requirements: owa-epanet (EPANET 2.3).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import struct
import sys
import tempfile
import warnings
from pathlib import Path

from epanet import toolkit as en

HERE = Path(__file__).resolve().parent
INP_DIR = HERE.parent
OUT = HERE / "energy.json"

#: the test networks that have pumps
NETWORKS = ["Net1", "Net3", "Anytown_multipointcurves", "pda_deficient", "net1_rules", "inp/features", "inp/dw_lps"]
ACCURACY = 1e-7
SI_UNITS = {en.LPS, en.LPM, en.MLD, en.CMH, en.CMD, en.CMS}
FLOW_UNIT_NAMES = {en.CFS: "CFS", en.GPM: "GPM", en.MGD: "MGD", en.IMGD: "IMGD", en.AFD: "AFD", en.LPS: "LPS",
                   en.LPM: "LPM", en.MLD: "MLD", en.CMH: "CMH", en.CMD: "CMD", en.CMS: "CMS"}
#: report columns, in order (report.c writeenergy)
COLUMNS = ["usage_factor_pct", "avg_efficiency_pct", "kwh_per_unit_volume", "avg_kw", "peak_kw", "cost_per_day"]
REPORT_SETTINGS = ["ENERGY YES", "SUMMARY NO", "STATUS NO", "NODES NONE", "LINKS NONE", "PAGE 0"]


def _version_string(v: int) -> str:
    return f"{v // 10000}.{(v // 100) % 100}.{v % 100}"


def _json(obj) -> str:
    """Indented JSON with lists of numbers kept on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text) + "\n"


def parse_report(text: str) -> dict:
    """The "Energy Usage" table of an EPANET report: per pump the six columns, demand charge, total cost."""
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.strip().startswith("Energy Usage"))
    unit = None
    pumps: dict[str, dict] = {}
    demand_charge = total_cost = None
    for s in lines[start + 1:]:
        w = s.split()
        if not w or set(s.strip()) == {"-"}:
            continue
        if w[0] == "Pump" and "Factor" in w:
            unit = "kWh/m3" if "/m3" in s else "kWh/Mgal" if "/Mgal" in s else None
        elif s.strip().startswith("Demand Charge:"):
            demand_charge = float(w[-1])
        elif s.strip().startswith("Total Cost:"):
            total_cost = float(w[-1])
            break
        elif len(w) == 7 and w[0] not in ("Usage", "Pump"):
            pumps[w[0]] = dict(zip(COLUMNS, map(float, w[1:])))
    if unit is None or demand_charge is None or total_cost is None or not pumps:
        raise ValueError("could not parse the Energy Usage table")
    return {"unit": unit, "pumps": pumps, "demand_charge": demand_charge, "total_cost": total_cost}


def parse_binary(data: bytes, pump_links: list[int]) -> dict:
    """Energy section of an EPANET binary output file (output.c saveenergy), located from the end of the file.

    Layout: prolog | energy: per pump INT4 link index + 6 REAL4, then REAL4 demand charge | results:
    Nperiods x (4 Nnodes + 8 Nlinks) REAL4 | epilog: 4 REAL4 reaction rates, INT4 Nperiods, Warnflag, magic.
    """
    magic, _, nnodes, _, nlinks, npumps = struct.unpack_from("<6i", data, 0)
    nperiods, _, magic2 = struct.unpack_from("<3i", data, len(data) - 12)
    if magic != magic2 or npumps != len(pump_links):
        raise ValueError("unexpected binary output file")
    pos = len(data) - 28 - nperiods * 4 * (4 * nnodes + 8 * nlinks) - (npumps * 28 + 4)
    out = []
    for _ in range(npumps):
        (index,) = struct.unpack_from("<i", data, pos)
        out.append((index, struct.unpack_from("<6f", data, pos + 4)))
        pos += 28
    if [k for k, _ in out] != pump_links:
        raise ValueError("pump link indices of the energy section do not match")
    (dcharge,) = struct.unpack_from("<f", data, pos)
    return {"pumps": [dict(zip(COLUMNS, map(float, x))) for _, x in out], "demand_charge": float(dcharge)}


def run(inp: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rpt, out = Path(tmp) / "energy.rpt", Path(tmp) / "energy.out"
        ph = en.createproject()
        en.open(ph, str(inp), str(rpt), str(out))
        try:
            r = _run_open(ph)
        finally:
            en.close(ph)
            en.deleteproject(ph)
        r["report"] = parse_report(rpt.read_text(errors="replace"))
        r["binary"] = parse_binary(out.read_bytes(), r["pump_links"])
    return r


def _run_open(ph) -> dict:
    en.setstatusreport(ph, en.NO_REPORT)
    for s in REPORT_SETTINGS:
        en.setreport(ph, s)
    nl = en.getcount(ph, en.LINKCOUNT)
    pumps = [k for k in range(1, nl + 1) if en.getlinktype(ph, k) == en.PUMP]
    flow_units = en.getflowunits(ph)
    # Work around EPANET 2.3.5's double kW->hp conversion of constant-power pumps (see
    # make_hydraulics_reference.py): re-enter their power in the project's power unit.
    kw_per_hp = 0.7457 if flow_units in SI_UNITS else 1.0
    for k in pumps:
        if en.getpumptype(ph, k) == en.CONST_HP:
            en.setlinkvalue(ph, k, en.PUMP_POWER, en.getlinkvalue(ph, k, en.PUMP_POWER) * kw_per_hp)
    en.setoption(ph, en.ACCURACY, ACCURACY)
    acc = en.getoption(ph, en.ACCURACY)
    if acc != ACCURACY:
        raise RuntimeError(f"EN_ACCURACY did not take: {acc!r}")
    dur = en.gettimeparam(ph, en.DURATION)

    kwh = [0.0] * len(pumps)
    n_steps = 0
    warn_times = []
    en.openH(ph)
    en.initH(ph, en.SAVE)
    while True:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            t = en.runH(ph)
        if w:
            warn_times.append(t)
        kw = [en.getlinkvalue(ph, k, en.ENERGY) for k in pumps]
        tstep = en.nextH(ph)
        n_steps += 1
        dt = 1.0 if dur == 0 else tstep / 3600.0 if t < dur else 0.0  # as addenergy()
        for j, p in enumerate(kw):
            kwh[j] += p * dt
        if tstep <= 0:
            break
    en.closeH(ph)
    en.saveH(ph)
    en.report(ph)
    return dict(pump_links=pumps, pump_ids=[en.getlinkid(ph, k) for k in pumps], flow_units=flow_units,
                duration_s=dur, accuracy=acc, n_steps=n_steps, warn_times=warn_times, kwh_integrated=kwh,
                demand_charge_rate=en.getoption(ph, en.DEMANDCHARGE))


def make(name: str) -> dict:
    r = run(INP_DIR / f"{name}.inp")
    rep, binr = r["report"], r["binary"]
    if list(rep["pumps"]) != r["pump_ids"]:
        raise RuntimeError(f"{name}: report pumps {list(rep['pumps'])} != {r['pump_ids']}")
    si = r["flow_units"] in SI_UNITS
    if rep["unit"] != ("kWh/m3" if si else "kWh/Mgal"):
        raise RuntimeError(f"{name}: unexpected unit {rep['unit']}")
    pumps = {}
    for j, pid in enumerate(r["pump_ids"]):
        b = binr["pumps"][j]
        # consistency: report == binary to the report's rounding; kWh == avg kW x hours online
        for c in COLUMNS:
            if abs(rep["pumps"][pid][c] - b[c]) > 0.005 + 1e-6 * abs(b[c]):
                raise RuntimeError(f"{name} {pid} {c}: report {rep['pumps'][pid][c]} vs binary {b[c]}")
        hours = b["usage_factor_pct"] / 100.0 * r["duration_s"] / 3600.0
        kwh = r["kwh_integrated"][j]
        if abs(b["avg_kw"] * hours - kwh) > 1e-5 * max(kwh, 1.0):
            raise RuntimeError(f"{name} {pid}: integrated kWh {kwh} vs binary {b['avg_kw'] * hours}")
        pumps[pid] = {**rep["pumps"][pid], "kwh_integrated": kwh, "binary": b}
    # EPANET prints demand charge x the binary file's demand charge (see README): check that
    rate = r["demand_charge_rate"]
    if abs(rep["demand_charge"] - rate * binr["demand_charge"]) > 0.005 + 1e-6 * rep["demand_charge"]:
        raise RuntimeError(f"{name}: report demand charge {rep['demand_charge']} vs binary {binr['demand_charge']}")
    return {
        "inp_file": f"../{name}.inp",
        "flow_units": FLOW_UNIT_NAMES[r["flow_units"]],
        "kwh_per_unit_volume_unit": rep["unit"],
        "duration_s": r["duration_s"],
        "n_hydraulic_steps": r["n_steps"],
        "warning_times_s": r["warn_times"],
        "demand_charge_rate": rate,
        "demand_charge": rep["demand_charge"],
        "total_cost": rep["total_cost"],
        "binary_demand_charge": binr["demand_charge"],
        "pumps": pumps,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--print", action="store_true", help="print the parsed tables")
    a = ap.parse_args(argv)
    version = en.getversion()
    doc = {
        "description": "EPANET 2.3 pump energy report (Energy Usage table) of the test networks with pumps; "
                       "see README.md and make_energy_reference.py",
        "epanet_version": _version_string(version),
        "epanet_version_code": version,
        "owa_epanet_package": importlib.metadata.version("owa-epanet"),
        "accuracy": ACCURACY,
        "report_precision": "report values are printed with 2 decimals (+-0.005); 'binary' holds the same "
                            "values as 4-byte floats from the binary output file; kwh_integrated is double",
        "columns": {
            "usage_factor_pct": "Usage Factor: 100 * hours online / duration",
            "avg_efficiency_pct": "Avg. Effic.: 100 * sum(efficiency * dt) / hours online",
            "kwh_per_unit_volume": "Kw-hr/Mgal (US flow units) or Kw-hr/m3 (SI): sum(kW / |flow| * dt) / hours online",
            "avg_kw": "Avg. Kw: kWh / hours online",
            "peak_kw": "Peak Kw: max kW over the steps with dt > 0",
            "cost_per_day": "Cost/day: sum(price * price pattern factor * kW * dt) * 24 / duration in hours",
            "kwh_integrated": "sum over hydraulic times t < duration of EN_ENERGY(t) * nextH step (h), double",
            "demand_charge": "Demand Charge as printed: demand_charge_rate**2 * max over time of the total kW of "
                             "all pumps (EPANET applies the rate twice, see README)",
            "binary_demand_charge": "demand_charge_rate * max over time of the total kW of all pumps (4-byte float)",
            "total_cost": "Total Cost as printed: sum of cost_per_day + demand_charge (as printed)",
        },
        "networks": {},
    }
    for name in NETWORKS:
        key = name.split("/")[-1]
        doc["networks"][key] = d = make(name)
        kwh = ", ".join(f"{p}: {v['kwh_integrated']:.6g}" for p, v in d["pumps"].items())
        print(f"{key}: {d['n_hydraulic_steps']} hydraulic steps, {d['kwh_per_unit_volume_unit']}, kWh {kwh}, "
              f"total cost {d['total_cost']}")
        if a.print:
            for p, v in d["pumps"].items():
                print("   ", p, {c: v[c] for c in COLUMNS}, "demand charge", d["demand_charge"])
    OUT.write_text(_json(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
