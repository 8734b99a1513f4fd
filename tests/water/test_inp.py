"""EPANET ``.inp`` files: reading (EPANET's semantics and unit factors), the write → read round trip,
every flow unit, malformed files, and EPANET itself reading our files (same hydraulic results).

Data: tests/data/water/*.inp and tests/data/water/inp/ (origins in the READMEs there).
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.water.inp import InpError, read_inp, write_inp

WATER = Path(__file__).parents[1] / "data" / "water"
INP = WATER / "inp"
NETWORKS = {  # name -> path
    "Net1": WATER / "Net1.inp",
    "Net2": WATER / "Net2.inp",
    "Net3": WATER / "Net3.inp",
    "Net6": WATER / "Net6.inp",
    "Anytown_multipointcurves": WATER / "Anytown_multipointcurves.inp",
    "pda_deficient": WATER / "pda_deficient.inp",
    "features": INP / "features.inp",
    "dw_lps": INP / "dw_lps.inp",
    "cm_cfs": INP / "cm_cfs.inp",
    "latin1": INP / "latin1.inp",
    "latin1_encoded": INP / "latin1_encoded.inp",
    "net1_rules": WATER / "net1_rules.inp",
    "net1_valves": WATER / "net1_valves.inp",
    "net1_pbv": WATER / "net1_pbv.inp",
}
FLOW_UNITS = ("CFS", "GPM", "MGD", "IMGD", "AFD", "LPS", "LPM", "MLD", "CMH", "CMD")

# EPANET's factors, written out by hand (EPANET 2.2 units.c / types.h): units per cfs, ft, psi per ft
FT = 0.3048
CFS_M3S = FT**3
GPM_PER_CFS = 448.831
LPS_PER_CFS = 28.317
PSI_PER_FT = 0.4333


@pytest.fixture(scope="module")
def read_cached():
    cache: dict[str, object] = {}

    def _read(name: str):
        if name not in cache:
            cache[name] = read_inp(NETWORKS[name])
        return cache[name].copy()

    return _read


# -- reading ----------------------------------------------------------------------------------

#: element counts, as EPANET 2.3 counts them (junction, reservoir, tank, pipe, pump, valve, patterns,
#: curves, controls, rules)
COUNTS = {
    "Net1": (9, 1, 1, 12, 1, 0, 1, 1, 2, 0),
    "Net2": (35, 0, 1, 40, 0, 0, 3, 0, 0, 0),
    "Net3": (92, 2, 3, 117, 2, 0, 5, 2, 18, 0),
    "Net6": (3323, 1, 32, 3829, 61, 2, 3, 60, 124, 0),
    "Anytown_multipointcurves": (22, 1, 2, 43, 3, 0, 4, 3, 0, 0),
    "pda_deficient": (9, 1, 1, 12, 1, 0, 1, 1, 2, 0),
    "features": (19, 2, 2, 17, 2, 7, 6, 5, 13, 4),
    "dw_lps": (6, 1, 1, 6, 1, 1, 1, 1, 3, 0),
    "cm_cfs": (4, 1, 0, 5, 0, 0, 1, 0, 0, 0),
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_element_counts(name, read_cached):
    wn = read_cached(name)
    got = tuple(len(wn[t]) for t in ("junction", "reservoir", "tank", "pipe", "pump", "valve")) + (
        len(wn.patterns), len(wn.curves), len(wn.controls), len(wn.rules))
    assert got == COUNTS[name]


def test_net1_values_in_si(read_cached):
    wn = read_cached("Net1")
    assert wn.options.flow_units == "GPM" and wn.options.pressure_units == "PSI"
    assert wn.junction.at["10", "elevation_m"] == pytest.approx(216.408, rel=1e-15)  # 710 ft
    gpm = CFS_M3S / GPM_PER_CFS  # m³/s per gpm with EPANET's factor
    d11 = wn.demand[wn.demand["junction"] == "11"]
    assert list(d11["base_m3s"]) == [pytest.approx(150 * gpm, rel=1e-15)]
    assert 150 * gpm == pytest.approx(0.00946353, rel=1e-6)
    assert wn.tank.at["2", "diameter_m"] == pytest.approx(50.5 * FT, rel=1e-15)  # 15.3924 m
    assert wn.tank.at["2", "init_level_m"] == pytest.approx(120 * FT, rel=1e-15)
    assert wn.reservoir.at["9", "head_m"] == pytest.approx(243.84, rel=1e-15)  # 800 ft
    assert wn.pipe.at["10", "length_m"] == pytest.approx(3209.544, rel=1e-15)  # 10530 ft
    assert wn.pipe.at["10", "diameter_m"] == pytest.approx(0.4572, rel=1e-15)  # 18 in
    assert wn.pipe.at["10", "roughness"] == 100.0
    c = wn.curves["1"]  # the pump's single point: 1500 gpm at 250 ft
    assert c.kind == "HEAD"
    assert c.x[0] == pytest.approx(1500 * gpm, rel=1e-15) and c.y[0] == pytest.approx(76.2, rel=1e-15)
    assert wn.pump.at["9", "head_curve"] == "1"
    ctl = wn.controls[0]  # LINK 9 OPEN IF NODE 2 BELOW 110 (a tank level, ft)
    assert (ctl.link, ctl.action, ctl.condition, ctl.node) == ("9", "OPEN", "BELOW", "2")
    assert ctl.value == pytest.approx(33.528, rel=1e-15)
    assert wn.times.duration_s == 24 * 3600 and wn.times.pattern_step_s == 7200
    assert wn.options.unbalanced == "CONTINUE" and wn.options.unbalanced_extra_trials == 10
    assert list(wn.patterns["1"]) == [1.0, 1.2, 1.4, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.6, 0.8]


def test_si_and_other_networks_values(read_cached):
    wn = read_cached("pda_deficient")  # LPS: EPANET's 28.317 L/s per cfs, not exactly 1e-3 m³/s per L/s
    lps = CFS_M3S / LPS_PER_CFS
    assert lps == pytest.approx(0.00099999458, rel=1e-8)
    assert wn.options.flow_units == "LPS" and wn.options.demand_model == "PDA"
    assert wn.options.required_pressure_m == 20.0 and wn.options.minimum_pressure_m == 0.0
    d = wn.demand.set_index("junction")["base_m3s"]
    raw = {ln.split()[0]: float(ln.split()[2]) for ln in _section(NETWORKS["pda_deficient"], "JUNCTIONS")}
    for jid, v in raw.items():
        assert d[jid] == pytest.approx(v * lps, rel=1e-15)
    # Net3: two reservoirs, tanks, pump curves
    wn = read_cached("Net3")
    assert set(wn.reservoir.index) == {"River", "Lake"}
    assert wn.reservoir.at["Lake", "head_m"] == pytest.approx(167 * FT, rel=1e-15)
    # Anytown: a 9-point pump curve (gpm, ft), an efficiency curve (gpm, %) and a volume curve (ft, ft³)
    wn = read_cached("Anytown_multipointcurves")
    gpm = CFS_M3S / GPM_PER_CFS
    assert {k: (c.kind, len(c.x)) for k, c in wn.curves.items()} == {
        "2": ("HEAD", 9), "E1": ("EFFICIENCY", 5), "VCUR1": ("VOLUME", 26)}
    assert wn.curves["2"].x[1] == pytest.approx(1675.1 * gpm, rel=1e-15)
    assert wn.curves["2"].y[1] == pytest.approx(1299.6 * FT, rel=1e-15)
    assert wn.curves["E1"].y[2] == 65.0
    assert wn.curves["VCUR1"].y[1] == pytest.approx(226.19 * FT**3, rel=1e-15)
    # Net6: one value
    wn = read_cached("Net6")
    assert wn.options.flow_units == "GPM" and wn.junction.index[0] == "JUNCTION-0"


def test_darcy_weisbach_and_manning(read_cached, tmp_path):
    wn = read_cached("dw_lps")
    assert wn.options.headloss == "D-W" and wn.options.pressure_units == "KPA"
    assert wn.pipe.at["P1", "roughness"] == pytest.approx(0.26e-3, rel=1e-15)  # mm -> m
    assert wn.pipe.at["P1", "diameter_m"] == pytest.approx(0.3, rel=1e-15)  # mm -> m
    assert wn.options.specific_gravity == 0.998
    assert wn.options.viscosity_m2s == pytest.approx(1.2 * 1.1e-5 * FT**2, rel=1e-15)  # a multiplier
    kpa = FT / (PSI_PER_FT * 0.998) / 6.895  # m of water per kPa, with EPANET's factors and SpGr
    assert wn.valve.at["V1", "setting"] == pytest.approx(250 * kpa, rel=1e-15)
    assert wn.tank.at["T1", "min_volume_m3"] == 12.5
    # written in US units, D-W roughness is in millifeet
    write_inp(wn, tmp_path / "dw_gpm.inp", flow_units="GPM")
    line = next(ln for ln in _section(tmp_path / "dw_gpm.inp", "PIPES") if ln.split()[0] == "P1")
    assert float(line.split()[5]) == pytest.approx(0.26 / FT, rel=1e-12)
    wn = read_cached("cm_cfs")
    assert wn.options.headloss == "C-M" and wn.options.flow_units == "CFS"
    assert wn.pipe.at["3", "roughness"] == 0.013  # Manning's n has no unit conversion
    assert wn.demand.set_index("junction").at["B", "base_m3s"] == pytest.approx(0.8 * CFS_M3S, rel=1e-15)
    assert wn.pipe.at["5", "status"] == "CV" and wn.pipe.at["5", "minor_loss"] == 0.5
    # emitter: 0.05 cfs/psi^0.5 -> m³/s per m^0.5
    psi = FT / PSI_PER_FT
    assert wn.junction.at["C", "emitter_coefficient"] == pytest.approx(0.05 * CFS_M3S / psi**0.5, rel=1e-14)


# -- write -> read round trip ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(NETWORKS))
def test_round_trip_is_lossless(name, read_cached, tmp_path):
    wn = read_cached(name)
    write_inp(wn, tmp_path / "a.inp")
    wn2 = read_inp(tmp_path / "a.inp")
    assert wn.equals(wn2), _differences(wn, wn2)
    assert wn2.extra_sections == wn.extra_sections
    assert wn2.title == wn.title
    # and the written file is stable
    write_inp(wn2, tmp_path / "b.inp")
    assert (tmp_path / "b.inp").read_text() == (tmp_path / "a.inp").read_text()


@pytest.mark.parametrize("flow_units", FLOW_UNITS)
def test_every_flow_unit(flow_units, read_cached, tmp_path):
    wn = read_cached("Net1")
    write_inp(wn, tmp_path / "n.inp", flow_units=flow_units)
    text = (tmp_path / "n.inp").read_text()
    assert re.search(rf"^Units\s+{flow_units}$", text, re.M)
    wn2 = read_inp(tmp_path / "n.inp")
    assert wn2.options.flow_units == flow_units
    assert wn2.options.pressure_units == ("METERS" if flow_units in ("LPS", "LPM", "MLD", "CMH", "CMD") else "PSI")
    _assert_close(wn, wn2)
    # in the units it was written in, the network round-trips exactly
    write_inp(wn2, tmp_path / "again.inp")
    assert read_inp(tmp_path / "again.inp").equals(wn2)


@pytest.mark.parametrize("flow_units", ["LPS", "CMH", "CFS"])
@pytest.mark.parametrize("name", ["Net2", "Net3", "Net6", "Anytown_multipointcurves", "pda_deficient", "features",
                                  "dw_lps", "cm_cfs"])
def test_round_trip_in_other_units(name, flow_units, read_cached, tmp_path):
    wn = read_cached(name)
    write_inp(wn, tmp_path / "n.inp", flow_units=flow_units)
    wn2 = read_inp(tmp_path / "n.inp")
    _assert_close(wn, wn2)


def test_required_pressure_in_other_units(read_cached, tmp_path):
    """EPANET needs REQUIRED >= MINIMUM + 0.1 in the file's pressure units (error 208).

    Net1 has EPANET's default (minimum 0, required 0.1 psi = 0.0703 m): in metres that cannot be
    written, so the writer leaves REQUIRED out and EPANET (and the reader) use minimum + 0.1 m.
    """
    wn = read_cached("Net1")
    assert wn.options.required_pressure_m == pytest.approx(0.1 * FT / PSI_PER_FT, rel=1e-15)
    write_inp(wn, tmp_path / "lps.inp", flow_units="LPS")
    assert "Required Pressure" not in (tmp_path / "lps.inp").read_text()
    assert read_inp(tmp_path / "lps.inp").options.required_pressure_m == 0.1
    wn = read_cached("pda_deficient")  # 20 m; in psi: 20 m / (0.3048/0.4333 m per psi) = 28.43 psi
    write_inp(wn, tmp_path / "gpm.inp", flow_units="GPM")
    line = next(ln for ln in _section(tmp_path / "gpm.inp", "OPTIONS") if ln.startswith("Required"))
    assert float(line.split()[-1]) == pytest.approx(20 / FT * PSI_PER_FT, rel=1e-12)
    assert read_inp(tmp_path / "gpm.inp").options.required_pressure_m == pytest.approx(20.0, rel=1e-12)


def test_written_numbers_are_the_files_numbers(tmp_path):
    """14200 ft → m → ft is 14199.999999999998 in floating point; the writer writes 14200 again."""
    wn = read_inp(NETWORKS["Net3"])
    write_inp(wn, tmp_path / "n.inp")
    lengths = {ln.split()[0]: ln.split()[3] for ln in _section(tmp_path / "n.inp", "PIPES")}
    assert lengths["101"] == "14200" and lengths["179"] == "430"
    elevations = {ln.split()[0]: ln.split()[1] for ln in _section(tmp_path / "n.inp", "JUNCTIONS")}
    assert elevations["105"] == "28.5" and elevations["117"] == "13.6"


# -- file format: line endings, tabs, comments, encodings -----------------------------------


def test_line_endings_tabs_and_comments(tmp_path):
    raw = NETWORKS["Net1"].read_bytes()
    assert b"\r\n" in raw and b"\t" in raw  # Net1 as EPANET writes it: CRLF and tabs
    ref = read_inp(NETWORKS["Net1"])
    variants = {
        "lf": raw.replace(b"\r\n", b"\n"),
        "spaces": raw.replace(b"\t", b"    "),
        "mixed": b"\n".join(ln.replace(b"\t", b" \t ") + (b"   ; a comment" if i % 3 == 0 and
                                                             not ln.strip().startswith(b"[") else b"")
                            for i, ln in enumerate(raw.split(b"\r\n"))),
        "no_final_newline": raw.rstrip(),
    }
    for name, data in variants.items():
        path = tmp_path / f"{name}.inp"
        path.write_bytes(data)
        assert read_inp(path).equals(ref), name


def test_case_and_keyword_prefixes(tmp_path):
    """Keywords are matched like EPANET's match(): case-insensitive, by prefix."""
    path = tmp_path / "k.inp"
    path.write_text(_small(options="units lps\nheadloss d-w\npressure kpa\ndemand model pda\naccuracy 1e-9\n",
                           controls="link PU closed at clocktime 6:30 pm\nLink PU Open If Node T below 2\n",
                           extra="[times]\nduration 2 hours\nhydraulic timestep 30 min\n"))
    wn = read_inp(path)
    assert (wn.options.flow_units, wn.options.headloss, wn.options.pressure_units, wn.options.demand_model) == (
        "LPS", "D-W", "KPA", "PDA")
    assert wn.options.accuracy == 1e-5  # clamped to [1e-5, 1e-1] as EPANET does
    assert wn.times.duration_s == 7200 and wn.times.hydraulic_step_s == 1800
    assert [(c.condition, c.time_s, c.node) for c in wn.controls] == [("CLOCKTIME", 66600, ""), ("BELOW", 0, "T")]
    path.write_text(_small(options="Accuracy 0.5\n"))
    assert read_inp(path).options.accuracy == 0.1


def test_latin1(tmp_path, read_cached):
    wn = read_cached("latin1")  # WNTR's latin1.inp (its text is in fact UTF-8): a pipe named '12Ù'
    assert "12Ù" in wn.pipe.index
    raw = NETWORKS["latin1_encoded"].read_bytes()
    assert "Ù".encode("latin-1") in raw and b"\x85" in raw  # Latin-1 bytes, not UTF-8
    wn2 = read_cached("latin1_encoded")
    assert wn2.equals(wn)
    # line numbers still count lines: 0x85 (U+0085, a Windows "…") is not a line break
    text = raw.decode("latin-1").split("\n")
    k = next(i for i, ln in enumerate(text) if ln.startswith(" 12Ù"))
    text[k] = text[k].replace("5280", "52x0", 1)
    bad = tmp_path / "latin1_bad.inp"
    bad.write_bytes("\n".join(text).encode("latin-1"))
    with pytest.raises(InpError) as exc:
        read_inp(bad)
    assert exc.value.errors == [(k + 1, "length '52x0' is not a number")]
    write_inp(wn2, tmp_path / "out.inp")
    assert read_inp(tmp_path / "out.inp").equals(wn)


# -- sections: demands, status, controls, rules, quality/report/map ----------------------------


def test_demand_categories(read_cached):
    wn = read_cached("features")
    gpm = CFS_M3S / GPM_PER_CFS
    d = wn.demand
    d11 = d[d["junction"] == "11"]  # [DEMANDS] replaces the 150 gpm of [JUNCTIONS]
    assert list(d11["base_m3s"]) == [pytest.approx(100 * gpm, rel=1e-15), pytest.approx(50 * gpm, rel=1e-15)]
    assert list(d11["pattern"]) == ["pat_a", "pat_b"] and list(d11["category"]) == ["Residential", "Commercial"]
    d12 = d[d["junction"] == "12"]
    assert list(d12["base_m3s"]) == [pytest.approx(75 * gpm, rel=1e-15)]
    assert list(d12["pattern"]) == [""] and list(d12["category"]) == ["Hospital"]
    assert list(d[d["junction"] == "41"]["pattern"]) == ["pat_b"]  # from [JUNCTIONS]
    assert "2" not in set(d["junction"])  # a demand at a tank is ignored


def test_status_section(read_cached):
    wn = read_cached("features")
    assert wn.pipe.at["151", "status"] == "OPEN"  # Closed in [PIPES], opened in [STATUS]
    assert wn.pipe.at["132", "status"] == "CV" and wn.pipe.at["132", "minor_loss"] == 0.0
    assert wn.pump.at["P2", "initial_status"] == "CLOSED"
    assert wn.valve.at["PRV1", "setting"] == pytest.approx(55 * FT / PSI_PER_FT, rel=1e-15)
    assert wn.valve.at["PRV1", "initial_status"] == "ACTIVE"
    assert wn.valve.at["PBV1", "initial_status"] == "OPEN"
    assert wn.valve.at["GPV1", "curve"] == "GPVC" and wn.curves["GPVC"].kind == "HEADLOSS"
    assert wn.valve.at["PCV1", "curve"] == "PCVC" and wn.curves["PCVC"].kind == "VALVE"
    assert wn.tank.at["T3", "volume_curve"] == "VC" and wn.tank.at["T3", "overflow"]


def test_status_semantics(tmp_path):
    path = tmp_path / "s.inp"
    # a pump opened in [STATUS] runs at speed 1 (EPANET resets its setting); a numeric status is a speed
    path.write_text(_small(pumps="PU R J1 HEAD C SPEED 0.8\nPV R J2 HEAD C\n", status="PU OPEN\nPV 0.7\n"))
    wn = read_inp(path)
    assert wn.pump.at["PU", "speed"] == 1.0 and wn.pump.at["PU", "initial_status"] == "OPEN"
    assert wn.pump.at["PV", "speed"] == 0.7
    # a range of (numeric) link ids, as EPANET allows
    path.write_text(_small(status="1 2 CLOSED\n"))
    wn = read_inp(path)
    assert list(wn.pipe["status"]) == ["CLOSED", "CLOSED", "OPEN"]
    # [QUALITY] takes ranges too
    path.write_text(_small(extra="[QUALITY]\nJ1 J2 0.7\nT 1.5\n"))
    wn = read_inp(path)
    assert list(wn.junction["initial_quality"]) == [0.7, 0.7] and wn.tank.at["T", "initial_quality"] == 1.5


def test_controls(read_cached):
    wn = read_cached("features")
    psi = FT / PSI_PER_FT
    got = [(c.link, c.action, c.condition, c.node, c.time_s, c.enabled) for c in wn.controls]
    assert got == [
        ("9", "OPEN", "BELOW", "2", 0, True),  # tank level
        ("9", "CLOSED", "ABOVE", "2", 0, True),
        ("P2", "OPEN", "CLOCKTIME", "", 6 * 3600, True),  # 6 AM
        ("P2", "CLOSED", "CLOCKTIME", "", 18 * 3600 + 1800, True),  # 6:30 PM
        ("P2", "SETTING", "TIME", "", 20 * 3600, True),  # a pump speed
        ("111", "CLOSED", "TIME", "", 10 * 3600, True),
        ("111", "OPEN", "TIME", "", 12 * 3600 + 1800, True),
        ("121", "OPEN", "TIME", "", 60, True),  # 0:01:01 is 60 s for EPANET, which truncates 3600·h
        ("113", "CLOSED", "TIME", "", 5400, True),  # a pipe setting 0 closes it; 90 MIN
        ("113", "OPEN", "TIME", "", 3 * 3600, True),  # 3 HOURS
        ("PRV1", "SETTING", "ABOVE", "13", 0, True),  # junction pressure, valve setting
        ("TCV1", "SETTING", "BELOW", "31", 0, True),
        ("112", "CLOSED", "TIME", "", 7200, False),  # DISABLED
    ]
    assert wn.controls[0].value == pytest.approx(110 * FT, rel=1e-15)
    assert wn.controls[10].value == pytest.approx(70 * psi, rel=1e-15)
    assert wn.controls[10].setting == pytest.approx(50 * psi, rel=1e-15)
    assert wn.controls[11].setting == 3.0 and wn.controls[4].setting == 0.9


def test_rules(read_cached, tmp_path):
    wn = read_cached("features")
    assert [r.name for r in wn.rules] == ["R1", "R2", "R3", "R4"]
    r1, r2, r3, r4 = wn.rules
    assert [(p.logic, p.object, p.id, p.attribute, p.relation) for p in r1.premises] == [
        ("IF", "TANK", "T3", "LEVEL", ">"), ("OR", "JUNCTION", "32", "PRESSURE", "<")]
    assert r1.premises[0].value == pytest.approx(15 * FT, rel=1e-15)
    assert [(a.id, a.attribute, a.value) for a in r1.then_actions] == [("131", "STATUS", "CLOSED")]
    assert [(a.id, a.attribute, a.value) for a in r1.else_actions] == [("131", "STATUS", "OPEN")]
    assert (r1.priority, r2.priority, r3.priority, r4.priority) == (2.0, 1.0, 0.0, 3.0)
    # 8 AM and 7:00 PM (a clock time with a colon and AM/PM)
    assert [p.value for p in r2.premises] == [8 * 3600, 19 * 3600]
    assert len(r2.then_actions) == 2 and len(r2.else_actions) == 1
    assert r2.then_actions[0].value == pytest.approx(90 * CFS_M3S / GPM_PER_CFS, rel=1e-15)  # FCV: a flow
    assert r3.premises[0].value == 20 * 3600 and r3.premises[1].value == "OPEN"
    assert r4.premises[0].value == 5.0  # FILLTIME stays in hours
    write_inp(wn, tmp_path / "r.inp")
    text = (tmp_path / "r.inp").read_text()
    for kw in ("RULE R2", "IF SYSTEM CLOCKTIME >= 8:00", "AND SYSTEM CLOCKTIME < 19:00", "ELSE VALVE FCV1",
               "OR JUNCTION 32 PRESSURE < 30", "PRIORITY 3"):
        assert kw in text, kw


def test_control_times_survive_epanets_truncation(tmp_path):
    """EPANET reads '0:01:01' as int(3600 * (0 + 1/60 + 1/3600)) = 60 s; the writer picks a text that gives 61."""
    path = tmp_path / "c.inp"
    path.write_text(_small(controls="LINK PU CLOSED AT TIME 2\n"))
    wn = read_inp(path)
    times = [61, 63, 4833, 3 * 3600, 86399, 200001]
    wn.controls = [dataclasses.replace(wn.controls[0], time_s=s) for s in times]
    write_inp(wn, tmp_path / "w.inp")
    assert [c.time_s for c in read_inp(tmp_path / "w.inp").controls] == times
    en = pytest.importorskip("epanet.toolkit")
    p = en.createproject()
    try:
        en.open(p, str(tmp_path / "w.inp"), str(tmp_path / "w.rpt"), "")
        assert [en.getcontrol(p, i)[4] for i in range(1, len(times) + 1)] == times
        en.close(p)
    finally:
        en.deleteproject(p)


def test_quality_report_and_map_sections_are_kept(read_cached, tmp_path):
    wn = read_cached("features")
    assert wn.extra_sections["SOURCES"] == ["9\tCONCEN\t1.2\tpat_a"]
    assert wn.extra_sections["MIXING"] == ["2\t2COMP\t0.6"]
    assert len(wn.extra_sections["REACTIONS"]) == 6 and len(wn.extra_sections["VERTICES"]) == 2
    assert wn.extra_sections["LABELS"][1] == '43.850\t91.210\t"Tank"\t2'
    assert wn.extra_sections["BACKDROP"][0] == "DIMENSIONS\t7.000\t6.000\t73.000\t94.000"
    assert "Nodes\t10 11 2" in wn.extra_sections["REPORT"]
    assert wn.options.quality[:1] == ["Quality Chlorine mg/L"]
    assert wn.junction.at["10", "initial_quality"] == 0.5 and wn.reservoir.at["9", "initial_quality"] == 1.0
    assert wn.junction.at["11", "tag"] == "Main Street" and wn.pipe.at["10", "tag"] == "Trunk"
    assert (wn.junction.at["13", "x"], wn.junction.at["13", "y"]) == (70.0, 70.0)
    assert (wn.energy.price, wn.energy.price_pattern, wn.energy.demand_charge) == (0.05, "PR", 2.5)
    assert wn.pump.at["9", "efficiency_curve"] == "E1" and wn.pump.at["9", "energy_price"] == 0.1
    write_inp(wn, tmp_path / "q.inp")
    for name, lines in wn.extra_sections.items():
        assert _section(tmp_path / "q.inp", name) == lines, name
    wn2 = read_inp(tmp_path / "q.inp")
    assert wn2.extra_sections == wn.extra_sections and wn2.options.quality == wn.options.quality
    assert wn2.junction["tag"].equals(wn.junction["tag"])


def test_short_tank_line_is_a_reservoir_and_roughness_section(tmp_path):
    path = tmp_path / "t.inp"
    path.write_text(_small(tanks="T 100 2 0 5 10\nR2 130 P\n", extra="[ROUGHNESS]\nanything here\n",
                           pipes_extra="3 R2 J2 100 200 100\n"))
    wn = read_inp(path)
    assert list(wn.reservoir.index) == ["R", "R2"] and wn.reservoir.at["R2", "head_pattern"] == "P"
    assert list(wn.tank.index) == ["T"]


# -- malformed files ------------------------------------------------------------------------


@pytest.mark.parametrize("case, edit, message", [
    ("unknown section", ("[TIMES]", "[TIMEZ]"), "unknown section '[TIMEZ]'"),
    ("bad number", ("J2 20 1.5", "J2 2O 1.5"), "elevation '2O' is not a number"),
    ("missing node", ("2 J1 J2 100", "2 J1 J9 100"), "link '2': node 'J9' is not defined"),
    ("duplicate id", ("J2 20 1.5", "J2 20 1.5\nJ1 20 1.5"), "duplicate node id 'J1' (first defined on line 6)"),
    ("missing curve", ("PU R J1 HEAD C", "PU R J1 HEAD C9"), "curve 'C9' is not defined in [CURVES]"),
    ("missing pattern", ("J2 20 1.5", "J2 20 1.5 P9"), "pattern 'P9' is not defined in [PATTERNS]"),
    ("bad option", ("Units LPS", "Units LITRES"), "unknown flow units 'LITRES'"),
    ("bad control", ("LINK 1 CLOSED AT TIME 2", "LINK 7 CLOSED AT TIME 2"), "control on undefined link '7'"),
    ("bad rule", ("THEN PUMP PU STATUS IS OPEN", "THEN PUMP PX STATUS IS OPEN"), "rule action on undefined link"),
    ("bad time", ("Duration 6", "Duration 6:x0"), "invalid time '6:x0'"),
    ("required pressure", ("Units LPS", "Units LPS\nMinimum Pressure 5\nRequired Pressure 5.05"),
     "REQUIRED PRESSURE must exceed MINIMUM PRESSURE by at least 0.1"),
])
def test_malformed_file_names_file_line_and_problem(case, edit, message, tmp_path):
    text = _small(controls="LINK 1 CLOSED AT TIME 2\n",
                  extra="[RULES]\nRULE A\nIF TANK T LEVEL < 1\nTHEN PUMP PU STATUS IS OPEN\n")
    assert edit[0] in text, case
    text = text.replace(edit[0], edit[1], 1)
    last = edit[1].split("\n")[-1]
    line = next(i for i, ln in enumerate(text.split("\n"), start=1) if ln.startswith(last))
    path = tmp_path / "bad_network.inp"
    path.write_text(text)
    with pytest.raises(InpError) as exc:
        read_inp(path)
    assert len(exc.value.errors) == 1, exc.value.errors
    (no, msg), = exc.value.errors
    assert no == line and message in msg, (no, msg)
    assert f"bad_network.inp:{line}: {msg}" in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_several_errors_are_reported_together(tmp_path):
    text = _small().replace("J2 20 1.5", "J2 twenty 1.5 P9").replace("2 J1 J2 100", "2 J1 J7 100")
    text = text.replace("[TIMES]", "[TIMEZ]").replace("PU R J1 HEAD C", "PU R J1 HEAD C9")
    text = text.replace("[END]", "[JUNCTIONS]\nJ1 5\n[END]")  # a second [JUNCTIONS] section re-defines J1
    path = tmp_path / "many.inp"
    path.write_text(text)
    with pytest.raises(InpError) as exc:
        read_inp(path)
    lines = text.split("\n")
    errors = exc.value.errors
    assert [m for _, m in errors] == [
        "elevation 'twenty' is not a number",
        "pattern 'P9' is not defined in [PATTERNS]",
        "link '2': node 'J7' is not defined",
        "curve 'C9' is not defined in [CURVES]",
        "unknown section '[TIMEZ]'",
        f"duplicate node id 'J1' (first defined on line {lines.index('J1 10') + 1})",
    ]
    assert [n for n, _ in errors] == sorted(n for n, _ in errors)
    assert errors[0][0] == lines.index("J2 twenty 1.5 P9") + 1
    assert errors[-1][0] == lines.index("J1 5") + 1
    assert str(exc.value).startswith("invalid EPANET input file (6 errors):")
    assert all(f"many.inp:{n}: {m}" in str(exc.value) for n, m in errors)


def test_other_malformed_lines(tmp_path):
    cases = {
        "pipe with a bad status": (("1 R J1 100 200 100", "1 R J1 100 200 100 0 SHUT"),
                                   "pipe status must be OPEN, CLOSED or CV, got 'SHUT'"),
        "status of a check valve": (("1 R J1 100 200 100", "1 R J1 100 200 100 CV"), None),
        "rule out of order": (("IF TANK T LEVEL < 1", "THEN PUMP PU STATUS IS OPEN"), "misplaced THEN"),
        "valve at a tank": (("[CURVES]", "[VALVES]\nV T J2 100 PRV 30\n[CURVES]"),
                            "PRV 'V' must connect two junctions"),
        "negative diameter": (("1 R J1 100 200 100", "1 R J1 100 -200 100"), "diameter must be positive"),
        "number with an underscore": (("J2 20 1.5", "J2 20 1_5"), "demand '1_5' is not a number"),
        "pattern line without values": (("P 1 1.2", "P 1 1.2\nP"), "a pattern line needs at least one multiplier"),
    }
    for case, (edit, message) in cases.items():
        text = _small(extra="[RULES]\nRULE A\nIF TANK T LEVEL < 1\nTHEN PUMP PU STATUS IS OPEN\n",
                      status="1 CLOSED\n" if case == "status of a check valve" else "")
        text = text.replace(edit[0], edit[1], 1)
        path = tmp_path / "x.inp"
        path.write_text(text)
        with pytest.raises(InpError) as exc:
            read_inp(path)
        if message:
            assert any(message in m for _, m in exc.value.errors), (case, exc.value.errors)
        else:
            assert "check valve" in str(exc.value), case


# -- EPANET reads our files as it reads the originals ---------------------------------------

EPANET_NETWORKS = ["Net1", "Net2", "Net3", "Anytown_multipointcurves", "pda_deficient", "Net6", "features", "dw_lps",
                   "cm_cfs", "net1_rules", "net1_valves", "net1_pbv"]


@pytest.mark.parametrize("name", EPANET_NETWORKS)
def test_epanet_gives_the_same_results_on_the_written_file(name, read_cached, tmp_path):
    en = pytest.importorskip("epanet.toolkit")
    path = tmp_path / f"{name}.inp"
    write_inp(read_cached(name), path)
    a = _epanet_run(en, NETWORKS[name], tmp_path / "a.rpt")
    b = _epanet_run(en, path, tmp_path / "b.rpt")
    assert a["nodes"] == b["nodes"] and a["links"] == b["links"]
    assert a["times"] == b["times"]  # the same hydraulic steps (controls, rules, tank events)
    for key in ("head", "flow"):
        scale = np.maximum(1.0, np.abs(a[key]))
        assert np.max(np.abs(a[key] - b[key]) / scale) <= 1e-9, key


@pytest.mark.parametrize("name", EPANET_NETWORKS)
def test_epanet_reads_the_written_file_as_the_original(name, read_cached, tmp_path):
    """EPANET's own view of the input (values, statuses, patterns, curves, controls, rules) is unchanged."""
    en = pytest.importorskip("epanet.toolkit")
    path = tmp_path / f"{name}.inp"
    write_inp(read_cached(name), path)
    a = _epanet_inputs(en, NETWORKS[name], tmp_path / "a.rpt")
    b = _epanet_inputs(en, path, tmp_path / "b.rpt")
    diff = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert not diff, list(diff.items())[:10]


def _epanet_run(en, path: Path, report: Path) -> dict:
    p = en.createproject()
    try:
        en.open(p, str(path), str(report), "")
        nn, nl = en.getcount(p, en.NODECOUNT), en.getcount(p, en.LINKCOUNT)
        out = {"nodes": [en.getnodeid(p, i) for i in range(1, nn + 1)],
               "links": [en.getlinkid(p, i) for i in range(1, nl + 1)], "times": []}
        heads, flows = [], []
        en.openH(p)
        en.initH(p, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EPANET's hydraulic warnings (the same for both files)
            while True:
                out["times"].append(en.runH(p))
                heads.append([en.getnodevalue(p, i, en.HEAD) for i in range(1, nn + 1)])
                flows.append([en.getlinkvalue(p, i, en.FLOW) for i in range(1, nl + 1)])
                if en.nextH(p) <= 0:
                    break
        en.closeH(p)
        en.close(p)
    finally:
        en.deleteproject(p)
    out["head"], out["flow"] = np.array(heads), np.array(flows)
    return out


def _epanet_inputs(en, path: Path, report: Path) -> dict:
    node_props = ("ELEVATION", "BASEDEMAND", "PATTERN", "EMITTER", "INITQUAL", "TANKLEVEL", "MINLEVEL", "MAXLEVEL",
                  "TANKDIAM", "MINVOLUME", "VOLCURVE", "MAXVOLUME", "CANOVERFLOW")
    link_props = ("DIAMETER", "LENGTH", "ROUGHNESS", "MINORLOSS", "INITSTATUS", "INITSETTING", "PUMP_POWER",
                  "PUMP_HCURVE", "PUMP_ECURVE", "PUMP_ECOST", "PUMP_EPAT", "LINKPATTERN", "GPV_CURVE", "PCV_CURVE")
    options = ("TRIALS", "ACCURACY", "EMITEXPON", "DEMANDMULT", "HEADERROR", "FLOWCHANGE", "HEADLOSSFORM",
               "GLOBALEFFIC", "GLOBALPRICE", "GLOBALPATTERN", "DEMANDCHARGE", "SP_GRAVITY", "SP_VISCOS",
               "UNBALANCED", "CHECKFREQ", "MAXCHECK", "DAMPLIMIT", "DEMANDPATTERN", "EMITBACKFLOW", "PRESS_UNITS")
    times = ("DURATION", "HYDSTEP", "PATTERNSTEP", "PATTERNSTART", "REPORTSTEP", "REPORTSTART", "RULESTEP",
             "STARTTIME")
    p = en.createproject()
    d: dict = {}
    try:
        en.open(p, str(path), str(report), "")

        def get(key, fn, *args):
            try:
                d[key] = fn(p, *args)
            except Exception:  # a property that does not apply to this kind of node or link
                pass

        for i in range(1, en.getcount(p, en.NODECOUNT) + 1):
            nid = en.getnodeid(p, i)
            for k in node_props:
                get(("node", nid, k), en.getnodevalue, i, getattr(en, k))
            for j in range(1, en.getnumdemands(p, i) + 1):
                d[("demand", nid, j)] = (en.getbasedemand(p, i, j), en.getdemandpattern(p, i, j),
                                         en.getdemandname(p, i, j))
        for i in range(1, en.getcount(p, en.LINKCOUNT) + 1):
            lid = en.getlinkid(p, i)
            d[("link", lid)] = (en.getlinktype(p, i), en.getlinknodes(p, i))
            for k in link_props:
                get(("link", lid, k), en.getlinkvalue, i, getattr(en, k))
        for k in options:
            d[("option", k)] = en.getoption(p, getattr(en, k))
        for k in times:
            d[("time", k)] = en.gettimeparam(p, getattr(en, k))
        d["flow units"], d["demand model"] = en.getflowunits(p), en.getdemandmodel(p)
        for i in range(1, en.getcount(p, en.PATCOUNT) + 1):
            d[("pattern", en.getpatternid(p, i))] = [en.getpatternvalue(p, i, j)
                                                    for j in range(1, en.getpatternlen(p, i) + 1)]
        for i in range(1, en.getcount(p, en.CURVECOUNT) + 1):
            d[("curve", en.getcurveid(p, i))] = (en.getcurvetype(p, i), [en.getcurvevalue(p, i, j)
                                                                          for j in range(1, en.getcurvelen(p, i) + 1)])
        for i in range(1, en.getcount(p, en.CONTROLCOUNT) + 1):
            ctype, link, setting, node, level = en.getcontrol(p, i)
            if en.getlinktype(p, link) <= en.PIPE:  # EPANET ignores the setting of a control on a pipe
                setting = None
            d[("control", i)] = (ctype, link, setting, node, level)
        for i in range(1, en.getcount(p, en.RULECOUNT) + 1):
            n_if, n_then, n_else, priority = en.getrule(p, i)
            d[("rule", i)] = (n_if, n_then, n_else, priority)
            for j in range(1, n_if + 1):
                d[("premise", i, j)] = en.getpremise(p, i, j)
            for j in range(1, n_then + 1):
                d[("then", i, j)] = en.getthenaction(p, i, j)
            for j in range(1, n_else + 1):
                d[("else", i, j)] = en.getelseaction(p, i, j)
        en.close(p)
    finally:
        en.deleteproject(p)
    return d


# -- helpers ----------------------------------------------------------------------------------


def _small(*, options: str = "Units LPS\n", controls: str = "", status: str = "", pumps: str = "PU R J1 HEAD C\n",
           tanks: str = "T 100 2 0 5 10\n", pipes_extra: str = "", extra: str = "") -> str:
    """A small valid network (LPS), with pieces to replace."""
    return (
        "[TITLE]\nsmall test network\n\n"
        "[JUNCTIONS]\n;ID Elev Demand\nJ1 10\nJ2 20 1.5\n\n"
        "[RESERVOIRS]\nR 50\n\n"
        f"[TANKS]\n{tanks}\n"
        f"[PIPES]\n1 R J1 100 200 100\n2 J1 J2 100 150 100\n4 J2 T 50 150 100\n{pipes_extra}\n"
        f"[PUMPS]\n{pumps}\n"
        f"[STATUS]\n{status}\n"
        "[PATTERNS]\nP 1 1.2\n\n"
        "[CURVES]\nC 10 30\n\n"
        f"[CONTROLS]\n{controls}\n"
        "[TIMES]\nDuration 6\n\n"
        f"[OPTIONS]\n{options}\n"
        f"{extra}\n"
        "[END]\n"
    )


def _section(path: Path, name: str) -> list[str]:
    """The data lines (comments and blank lines left out) of a section of an .inp file."""
    out, inside = [], False
    for raw in path.read_bytes().decode("latin-1").split("\n"):
        line = raw.strip()
        if line.startswith("["):
            inside = line.upper().startswith(f"[{name}]")
            continue
        if inside and line and not line.startswith(";"):
            out.append(line)
    return out


def _differences(a, b) -> list[str]:
    out = [t for t in a.TABLES if not a[t].equals(b[t])]
    for attr in ("patterns", "curves", "controls", "rules", "options", "times", "energy"):
        x, y = getattr(a, attr), getattr(b, attr)
        same = (x.keys() == y.keys() and all(np.array_equal(v, y[k]) for k, v in x.items())) if attr == "patterns" \
            else x == y
        if not same:
            out.append(attr)
    return out


def _assert_close(a, b, rtol: float = 1e-12) -> None:
    """Same network up to floating-point rounding (the values went through two units' factors)."""
    for t in a.TABLES:
        pd.testing.assert_frame_equal(a[t], b[t], check_exact=False, rtol=rtol, atol=0, obj=t)
    assert a.patterns.keys() == b.patterns.keys()
    for k, v in a.patterns.items():
        np.testing.assert_array_equal(v, b.patterns[k])
    assert a.curves.keys() == b.curves.keys()
    for k, c in a.curves.items():
        assert c.kind == b.curves[k].kind
        np.testing.assert_allclose(b.curves[k].x, c.x, rtol=rtol, atol=0)
        np.testing.assert_allclose(b.curves[k].y, c.y, rtol=rtol, atol=0)
    assert len(a.controls) == len(b.controls) and len(a.rules) == len(b.rules)
    for x, y in zip(a.controls + a.rules, b.controls + b.rules):
        _assert_fields_close(dataclasses.asdict(x), dataclasses.asdict(y), rtol)
    oa, ob = dataclasses.asdict(a.options), dataclasses.asdict(b.options)
    for k in ("flow_units", "pressure_units", "required_pressure_m"):  # see test_required_pressure_in_other_units
        oa.pop(k), ob.pop(k)
    _assert_fields_close(oa, ob, rtol)
    assert a.times == b.times and a.energy == b.energy


def _assert_fields_close(x, y, rtol: float) -> None:
    if isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            _assert_fields_close(x[k], y[k], rtol)
    elif isinstance(x, list):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            _assert_fields_close(u, v, rtol)
    elif isinstance(x, float) and not isinstance(x, bool):
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=rtol, abs=0), (x, y)
    else:
        assert x == y


@pytest.mark.parametrize(
    ("first", "second", "bad"),
    [
        ("V1 11 21 10 PRV 70", "V2 12 21 10 PRV 70", True),   # two PRVs sharing a downstream node
        ("V1 11 21 10 PRV 70", "V2 21 22 10 PRV 70", True),   # PRVs in series
        ("V1 11 21 10 PSV 70", "V2 11 12 10 PSV 70", True),   # two PSVs sharing an upstream node
        ("V1 11 21 10 PRV 70", "V2 21 31 10 PSV 70", True),   # a PSV downstream of a PRV
        ("V1 12 22 10 FCV 300", "V2 22 32 10 PSV 60", True),  # a PSV downstream of an FCV
        ("V1 11 21 10 PRV 70", "V2 21 31 10 FCV 300", True),  # an FCV downstream of a PRV
        ("V1 11 21 10 PSV 70", "V2 21 31 10 PRV 70", False),  # a PRV downstream of a PSV is allowed
        ("V1 12 22 10 FCV 300", "V2 22 32 10 FCV 300", False),
    ],
)
def test_illegal_valve_connections_are_refused_like_epanet(tmp_path, first, second, bad):
    """EPANET's error 220 (project.c valvecheck); the same rule guards Python-built networks in compile.

    EPANET 2.3.5 itself accepts all these two-valve files: valvedata() passes the current link count as
    the new valve's index, so valvecheck() skips the valve read just before (checked with owa-epanet).
    We apply the rule to every pair; net1_valves' first draft (FCV 12-22 then, three valves later, a PSV
    22-32) is refused by EPANET as well.
    """
    src = (WATER / "Net1.inp").read_text()
    src = src.replace("[VALVES]\n", f"[VALVES]\n{first}\n{second}\n", 1)
    path = tmp_path / "valves.inp"
    path.write_text(src)
    if bad:
        with pytest.raises(InpError, match="error 220") as exc:
            read_inp(path)
        assert f"{path}:" in str(exc.value)
    else:
        read_inp(path)
