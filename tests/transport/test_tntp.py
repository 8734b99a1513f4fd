"""TNTP files: reading the three shipped networks (counts, hand-checked values, best-known flows), the
write → read round trip, format variants (CRLF, tabs, ``;``, ``~``, short link lines), malformed input
(every problem reported with file and line) and the GeoJSON export.

Data: tests/data/tntp/ (SiouxFalls, Anaheim, Barcelona; origin in the README there).  Synthetic files
are written to tmp_path.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.transport.geojson import XY_NOTE, to_geojson
from twin.transport.tntp import TntpError, TntpWarning, link_ids, read_tntp, read_tntp_flows, write_tntp

TNTP = Path(__file__).parents[1] / "data" / "tntp"
NAMES = ("SiouxFalls", "Anaheim", "Barcelona")
# nodes, links, zones, od rows (non-zero entries), total demand, first thru node
COUNTS = {
    "SiouxFalls": (24, 76, 24, 528, 360600.0, 1),
    "Anaheim": (416, 914, 38, 1406, 104694.40, 39),
    "Barcelona": (1020, 2522, 110, 7922, 184679.561, 111),
}


def files(name: str) -> dict[str, Path]:
    d = TNTP / name
    return {"net": d / f"{name}_net.tntp", "trips": d / f"{name}_trips.tntp", "flow": d / f"{name}_flow.tntp",
            "node": d / f"{name}_node.tntp"}


def read(name: str, **kw):
    f = files(name)
    node = f["node"] if f["node"].exists() else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shipped files agree with their metadata
        return read_tntp(f["net"], f["trips"], node, lonlat=node is not None, **kw)


@pytest.fixture(scope="module")
def nets():
    return {n: read(n) for n in NAMES}


@pytest.fixture(scope="module")
def flows():
    return {n: read_tntp_flows(files(n)["flow"]) for n in NAMES}


# -- the shipped networks -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_counts_and_totals(name, nets):
    tn = nets[name]
    n_nodes, n_links, n_zones, n_od, total, first_thru = COUNTS[name]
    assert tn.name == name
    assert (len(tn.node), len(tn.link), len(tn.zone), len(tn.od)) == (n_nodes, n_links, n_zones, n_od)
    assert list(tn.node.index) == [str(i) for i in range(1, n_nodes + 1)]
    assert list(tn.zone.index) == [str(i) for i in range(1, n_zones + 1)]
    assert (tn.zone["node"] == tn.zone.index).all()
    assert tn.od["trips_veh_h"].sum() == pytest.approx(total, abs=1e-6)
    assert list(tn.od.index) == [str(i) for i in range(1, n_od + 1)]
    assert (tn.od["hour"] == -1).all() and (tn.od["vehicle_class"] == "car").all()
    assert (tn.od["trips_veh_h"] > 0).all()  # sparse: zero entries dropped
    through = tn.node["through"].to_numpy()
    assert not through[: first_thru - 1].any() and through[first_thru - 1:].all()
    assert tn.link.index.is_unique
    assert list(tn.link.index) == [f"{a}-{b}" for a, b in zip(tn.link.from_node, tn.link.to_node)]  # no parallels
    tn.validate()


def test_siouxfalls_values(nets):
    tn = nets["SiouxFalls"]
    assert tn.length_unit == ""
    r = tn.link.loc["1-2"]
    assert (r.capacity_veh_h, r.length, r.free_flow_time_min, r.alpha, r.beta, r.speed, r.toll, r.link_type) == (
        25900.20064, 6.0, 6.0, 0.15, 4.0, 0.0, 0.0, 1)
    assert tn.link.loc["24-23", "capacity_veh_h"] == 5078.508436
    assert tn.link.index[0] == "1-2" and tn.link.index[-1] == "24-23"
    od = tn.od.set_index(["origin", "destination"])["trips_veh_h"]
    assert od[("1", "2")] == 100.0 and od[("1", "10")] == 1300.0 and od[("24", "22")] == 1100.0
    assert ("1", "1") not in od.index and ("2", "18") not in od.index  # zero entries (intrazonal ones too)
    assert tn.node.loc["1", ["x", "y"]].tolist() == [-96.77041974, 43.61282792]
    assert tn.node.loc["24", ["lon", "lat"]].tolist() == [-96.74920028, 43.50316422]
    plain = read_tntp(files("SiouxFalls")["net"], node_path=files("SiouxFalls")["node"])
    assert plain.node.loc["1", "x"] == -96.77041974 and math.isnan(plain.node.loc["1", "lon"])
    assert len(plain.od) == 0


def test_anaheim_values(nets):
    tn = nets["Anaheim"]
    assert tn.length_unit == "ft"  # from the <ORIGINAL HEADER>'s "Length (ft)"
    assert read_tntp(files("Anaheim")["net"], length_unit="").length_unit == ""
    r = tn.link.loc["1-117"]
    assert (r.capacity_veh_h, r.length, r.free_flow_time_min, r.speed, r.link_type) == (
        9000, 5280, 1.090458488, 4842, 1)
    r = tn.link.loc["416-407"]
    assert (r.capacity_veh_h, r.length, r.free_flow_time_min, r.alpha, r.beta, r.speed) == (
        5400, 5280, 2, .15, 4, 2640)
    assert not tn.node.loc[[str(i) for i in range(1, 39)], "through"].any()
    assert tn.node.loc["39", "through"] and tn.node["through"].sum() == 416 - 38
    assert tn.node["x"].isna().all()
    od = tn.od.set_index(["origin", "destination"])["trips_veh_h"]
    assert od[("1", "2")] == 1365.90 and od[("38", "37")] == 2.30


def test_barcelona_connectors_and_unused_nodes(nets):
    tn = nets["Barcelona"]
    link = tn.link
    r = link.loc["1-290"]  # zone connector: capacity 1, B 0, power 0 → constant cost
    assert (r.capacity_veh_h, r.length, r.free_flow_time_min, r.alpha, r.beta, r.link_type) == (
        1, 1.0833333333333, 1.0833333333333, 0, 0, 9)
    r = link.loc["305-313"]
    assert (r.alpha, r.beta, r.link_type) == (4.25242418059007e-17, 4.446, 1)
    assert (link["beta"] == 0).sum() == 565 and (link.loc[link["beta"] == 0, "link_type"] == 9).all()
    assert (link["capacity_veh_h"] == 1).all()  # the capacities are folded into B
    used = set(link["from_node"]) | set(link["to_node"])
    assert len(used) == 930 and {str(i) for i in range(111, 201)}.isdisjoint(used)  # node ids without links
    assert set(tn.od["origin"]) == {str(i) for i in range(1, 100)} - {"2", "4"}  # empty Origin blocks


@pytest.mark.parametrize("name", NAMES)
def test_flows_align_with_links(name, nets, flows):
    tn, fl = nets[name], flows[name]
    assert list(fl.columns) == ["from_node", "to_node", "flow", "cost"]
    assert fl.index.equals(tn.link.index)  # same ids, same (file) order
    assert (fl["from_node"] == tn.link["from_node"]).all() and (fl["to_node"] == tn.link["to_node"]).all()
    assert np.isfinite(fl[["flow", "cost"]].to_numpy()).all() and (fl["flow"] >= 0).all()


def test_flow_values(flows):
    assert flows["SiouxFalls"].loc["1-2", ["flow", "cost"]].tolist() == [4494.6576464564205, 6.0008162373543197]
    assert flows["Anaheim"].loc["9-395", "flow"] == 1050.4670563491454
    assert flows["Barcelona"].loc["1020-306", "cost"] == 1.0143577348780799
    # free-flow cost on the Barcelona connectors (power 0): cost = free-flow time
    tn = read_tntp(files("Barcelona")["net"])
    conn = tn.link["beta"] == 0
    assert np.allclose(flows["Barcelona"].loc[conn, "cost"], tn.link.loc[conn, "free_flow_time_min"], rtol=1e-12)


def test_barcelona_reads_fast():
    f = files("Barcelona")
    t = time.perf_counter()
    read_tntp(f["net"], f["trips"])
    assert time.perf_counter() - t < 1.0


# -- round trip -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(name, nets, tmp_path):
    tn = nets[name]
    node = tmp_path / f"{name}_node.tntp" if name == "SiouxFalls" else None
    write_tntp(tn, tmp_path / f"{name}_net.tntp", tmp_path / f"{name}_trips.tntp", node)
    back = read_tntp(tmp_path / f"{name}_net.tntp", tmp_path / f"{name}_trips.tntp", node, lonlat=node is not None)
    assert back.equals(tn) and back.name == name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(  # atomic: no temporary files left
        f"{name}_{k}.tntp" for k in (("net", "trips", "node") if node else ("net", "trips")))
    assert b"\r" not in (tmp_path / f"{name}_net.tntp").read_bytes()


def test_write_refuses_what_tntp_cannot_hold(nets, tmp_path):
    tn = nets["SiouxFalls"].copy()
    tn.od = tn.od.assign(hour=np.where(np.arange(len(tn.od)) == 3, 8, -1))
    with pytest.raises(ValueError, match="static car demand only.*od row '4' has hour 8"):
        write_tntp(tn, tmp_path / "n.tntp", tmp_path / "t.tntp")
    write_tntp(tn, tmp_path / "n.tntp")  # the network alone is fine
    tn = nets["SiouxFalls"].copy()
    tn.add("node", index="A")
    with pytest.raises(ValueError, match="node ids 1, 2, 3 …; 'A'"):
        write_tntp(tn, tmp_path / "n.tntp")
    tn = nets["Anaheim"].copy()
    tn.node = tn.node.assign(through=tn.node.index != "400")
    with pytest.raises(ValueError, match="node '1' is through"):
        write_tntp(tn, tmp_path / "n.tntp")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


# -- format variants (synthetic) ------------------------------------------------------------------------

NET = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 5
<FIRST THRU NODE> 3
<NUMBER OF LINKS> 6
<END OF METADATA>

~ init term cap len fft b power speed toll type ;
1 3 1000 1.5 0 0.15 4 50 0 1 ;
3 4 2000 2 2 0.15 4 50 0 1 ;
3 4 500 3 4 1 2 30 0.5 2 ;
4 2 1000 1 1 0 0 0 0 9 ;
4 3 2000 2 2 0.15 4 0 0 1 ;
2 4 1000 1 1 0 0 0 0 9 ;
"""
TRIPS = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 130.5
<END OF METADATA>

Origin 1
    1 : 10.0;    2 : 100.5;
Origin 2
    1 : 20; 2 : 0;
"""


def write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode())
    return p


def test_parallel_links_zero_time_power_zero_and_intrazonal(tmp_path):
    tn = read_tntp(write(tmp_path, "toy_net.tntp", NET), write(tmp_path, "toy_trips.tntp", TRIPS))
    assert tn.name == "toy"
    assert list(tn.link.index) == ["1-3", "3-4", "3-4#2", "4-2", "4-3", "2-4"]
    assert tn.link.loc["3-4#2", ["capacity_veh_h", "alpha", "beta", "toll", "link_type"]].tolist() == [500, 1, 2, .5, 2]
    assert tn.link.loc["1-3", "free_flow_time_min"] == 0.0
    assert tn.link.loc["4-2", ["alpha", "beta"]].tolist() == [0.0, 0.0]
    assert tn.node["through"].tolist() == [False, False, True, True, True]
    assert "5" in tn.node.index  # every id up to <NUMBER OF NODES>, linked or not
    od = tn.od
    assert od[["origin", "destination"]].values.tolist() == [["1", "1"], ["1", "2"], ["2", "1"]]  # 2→2 is 0
    assert od["trips_veh_h"].tolist() == [10.0, 100.5, 20.0]  # intrazonal 1→1 kept
    write_tntp(tn, tmp_path / "out_net.tntp", tmp_path / "out_trips.tntp")
    assert read_tntp(tmp_path / "out_net.tntp", tmp_path / "out_trips.tntp").equals(tn)


def test_variants_read_alike(tmp_path):
    ref = read_tntp(write(tmp_path, "a_net.tntp", NET), write(tmp_path, "a_trips.tntp", TRIPS))
    # CRLF, tabs, no ';', comments after '~' anywhere, blank lines, case of tags and 'origin', BOM
    net = ("\ufeff~ a comment before the metadata\n<number of  zones>\t2 ~ zones\n<NUMBER OF NODES> 5\n"
           "<FIRST THRU NODE> 3\n<NUMBER OF LINKS> 6\n<ORIGINAL HEADER>~ whatever ; text\n<END OF METADATA>\n\n"
           "\t1\t3\t1000\t1.5\t0\t0.15\t4\t50\n\n~ only a comment\n"
           "3 4 2000 2 2 0.15 4 50 0 1 ~ trailing comment\n3\t4 500 3 4 1 2 30 0.5 2;\n"
           "4 2 1000 1 1 0 0 0 0 9\n4 3 2000 2 2 0.15 4; ~\n  2 4 1000 1 1 0 0 0 0 9 ;   \n\n")
    trips = ("<NUMBER OF ZONES> 2\n<TOTAL OD FLOW> 130.50\n<END OF METADATA>\norigin\t1\n1:10.0;2 :100.5\n"
             "~ comment\nOrigin 2 ~ second\n\t1\t:\t20\t;\t2 : 0 ;\n")
    for nl in ("\n", "\r\n"):
        tn = read_tntp(write(tmp_path, "b_net.tntp", net, nl), write(tmp_path, "b_trips.tntp", trips, nl), name="a")
        assert tn.link.loc["4-3", ["speed", "toll", "link_type"]].tolist() == [0, 0, 1]  # short lines: defaults
        assert tn.link.loc["1-3", ["speed", "toll", "link_type"]].tolist() == [50, 0, 1]
        assert tn.equals(ref)


def test_missing_first_thru_node_means_all_through(tmp_path):
    tn = read_tntp(write(tmp_path, "n.tntp", NET.replace("<FIRST THRU NODE> 3\n", "")))
    assert tn.node["through"].all()


def test_flows_with_parallel_links_in_another_order(tmp_path):
    tn = read_tntp(write(tmp_path, "toy_net.tntp", NET))
    fl = read_tntp_flows(write(tmp_path, "toy_flow.tntp", "From To Volume Cost\r\n2\t4\t7\t1\r\n3 4 5 2;\r\n"
                                                         "1 3 1 0\r\n3 4 6 3\r\n4 3 0 2\r\n4 2 9 1\r\n"))
    assert list(fl.index) == ["2-4", "3-4", "1-3", "3-4#2", "4-3", "4-2"]
    aligned = fl.reindex(tn.link.index)
    assert aligned["flow"].tolist() == [1, 5, 6, 9, 0, 7]
    assert (aligned["from_node"] == tn.link["from_node"]).all()
    assert link_ids(["1", "1", "2", "1"], ["2", "2", "1", "2"]) == ["1-2", "1-2#2", "2-1", "1-2#3"]


def test_metadata_mismatches_warn(tmp_path):
    with pytest.warns(TntpWarning, match=r"n\.tntp: <NUMBER OF LINKS> is 7 but the file has 6 link lines"):
        read_tntp(write(tmp_path, "n.tntp", NET.replace("LINKS> 6", "LINKS> 7")))
    with pytest.warns(TntpWarning, match=r"t\.tntp: the demand sums to 130\.5, <TOTAL OD FLOW> says 132"):
        read_tntp(write(tmp_path, "n.tntp", NET), write(tmp_path, "t.tntp", TRIPS.replace("130.5", "132")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a total rounded to its last digit is no mismatch; nor is a missing one
        for total in ("<TOTAL OD FLOW> 131\n", "<TOTAL OD FLOW> 130.50\n", "<TOTAL OD FLOW> 1.305e2\n", ""):
            trips = TRIPS.replace("<TOTAL OD FLOW> 130.5\n", total)
            read_tntp(write(tmp_path, "n.tntp", NET), write(tmp_path, "t.tntp", trips))


# -- malformed input ------------------------------------------------------------------------------------

# (net text, trips text or None, line, message regex)
BAD = {
    "no zones tag": (NET.replace("<NUMBER OF ZONES> 2\n", ""), None, 4, r"missing <NUMBER OF ZONES>"),
    "no nodes tag": (NET.replace("<NUMBER OF NODES> 5\n", ""), None, 4, r"missing <NUMBER OF NODES>"),
    "no end tag": (NET.replace("<END OF METADATA>\n", ""), None, 7,
                   r"data line before <END OF METADATA>"),
    "no end tag, no data": ("<NUMBER OF ZONES> 2\n<NUMBER OF NODES> 5\n<NUMBER OF LINKS> 0\n", None, 0,
                            r"missing <END OF METADATA>"),
    "bad tag value": (NET.replace("NODES> 5", "NODES> five"), None, 2, r"<NUMBER OF NODES> must be an integer"),
    "zones beyond nodes": (NET.replace("ZONES> 2", "ZONES> 6"), None, 1, r"<NUMBER OF ZONES> 6 exceeds"),
    "tag twice": (NET.replace("<NUMBER OF LINKS> 6", "<NUMBER OF LINKS> 6\n<NUMBER OF NODES> 5"), None, 5,
                  r"<NUMBER OF NODES> given twice \(first on line 2\)"),
    "tag after the data": (NET + "<NUMBER OF LINKS> 6\n", None, 14, r"metadata tag '<NUMBER' after"),
    "too few columns": (NET.replace("3 4 2000 2 2 0.15 4 50 0 1", "3 4 2000 2 2 0.15"), None, 9,
                        r"7 to 10 columns .*found 6"),
    "too many columns": (NET.replace("4 3 2000 2 2 0.15 4 0 0 1", "4 3 2000 2 2 0.15 4 0 0 1 7"), None, 12,
                         r"found 11"),
    "not a number": (NET.replace("3 4 2000 2", "3 4 2000 two"), None, 9, r"length 'two' is not a number"),
    "nan": (NET.replace("3 4 2000 2", "3 4 nan 2"), None, 9, r"capacity 'nan' is not finite"),
    "node id not an integer": (NET.replace("\n3 4 2000", "\n3.0 4 2000"), None, 9,
                               r"init_node '3.0' is not a positive integer id"),
    "node beyond NUMBER OF NODES": (NET.replace("4 2 1000", "4 6 1000"), None, 11,
                                    r"term_node 6 is not defined \(ids run from 1 to <NUMBER OF NODES> 5\)"),
    "node 0": (NET.replace("\n1 3 1000", "\n0 3 1000"), None, 8, r"init_node 0 is not defined"),
    "zero capacity": (NET.replace("3 4 2000", "3 4 0"), None, 9, r"capacity must be positive, got 0"),
    "negative capacity": (NET.replace("3 4 2000", "3 4 -5"), None, 9, r"capacity must be positive, got -5"),
    "negative free-flow time": (NET.replace("1 3 1000 1.5 0", "1 3 1000 1.5 -1"), None, 8,
                                r"free_flow_time must be >= 0, got -1"),
    "negative power": (NET.replace("0.15 4 50 0 1 ;\n3 4 500", "0.15 -4 50 0 1 ;\n3 4 500"), None, 9,
                       r"power must be >= 0"),
    "fractional link type": (NET.replace("30 0.5 2", "30 0.5 2.5"), None, 10, r"link_type must be an integer"),
    "self loop": (NET.replace("4 3 2000", "4 4 2000"), None, 12, r"link starts and ends at node 4"),
    "destination beyond zones": (NET, TRIPS.replace("2 : 100.5", "3 : 100.5"), 6,
                                 r"destination zone 3 is not defined \(ids run from 1 to <NUMBER OF ZONES> 2\)"),
    "origin beyond zones": (NET, TRIPS.replace("Origin 2", "Origin 4"), 7, r"origin zone 4 is not defined"),
    "duplicate origin": (NET, TRIPS.replace("Origin 2", "Origin 1"), 7,
                         r"second block for origin 1 \(first on line 5\)"),
    "duplicate destination": (NET, TRIPS.replace("2 : 100.5", "1 : 100.5"), 6,
                              r"demand from zone 1 to zone 1 given twice"),
    "negative demand": (NET, TRIPS.replace("20", "-20"), 8, r"demand to zone 1 must be >= 0, got -20"),
    "demand not a number": (NET, TRIPS.replace("20", "x20"), 8, r"demand to zone 1 'x20' is not a number"),
    "entry without colon": (NET, TRIPS.replace("1 : 20", "1 20"), 8,
                            r"expected 'destination : flow', found '1 20 2'"),
    "entries before origin": (NET, TRIPS.replace("<END OF METADATA>\n", "<END OF METADATA>\n1 : 5;\n"), 4,
                              r"demand entries before the first 'Origin' line"),
    "trips zone count": (NET, TRIPS.replace("ZONES> 2", "ZONES> 3"), 1, r"<NUMBER OF ZONES> 3 differs"),
    "trips without end tag": (NET, TRIPS.replace("<END OF METADATA>\n", ""), 4, r"data line before <END"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed(case, tmp_path):
    net, trips, line, msg = BAD[case]
    net_path = write(tmp_path, "bad_net.tntp", net)
    trips_path = write(tmp_path, "bad_trips.tntp", trips) if trips is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TntpWarning)
        with pytest.raises(TntpError) as exc:
            read_tntp(net_path, trips_path)
    where = trips_path if trips is not None else net_path
    assert any(p == str(where) and ln == line and re.search(msg, m) for p, ln, m in exc.value.errors), \
        exc.value.errors
    prefix = f"{where}:{line}: " if line else f"{where}: "
    assert prefix in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_all_errors_reported_together(tmp_path):
    net = (NET.replace("3 4 2000", "3 4 0").replace("4 2 1000 1 1", "4 9 1000 1 -1")
           .replace("4 3 2000 2 2 0.15 4 0 0 1", "4 3 2000 2 2 0.15"))
    trips = TRIPS.replace("Origin 2", "Origin 1").replace("2 : 100.5", "7 : 100.5")
    with pytest.raises(TntpError) as exc:
        read_tntp(write(tmp_path, "x_net.tntp", net), write(tmp_path, "x_trips.tntp", trips))
    err = exc.value
    got = [(Path(p).name, ln) for p, ln, _ in err.errors]
    assert got == [("x_net.tntp", 9), ("x_net.tntp", 11), ("x_net.tntp", 11), ("x_net.tntp", 12),
                   ("x_trips.tntp", 6), ("x_trips.tntp", 7)]
    text = str(err)
    assert text.startswith("invalid TNTP input (6 errors):\n")
    assert "x_net.tntp:11: term_node 9 is not defined" in text and "x_net.tntp:11: free_flow_time must be >= 0" in text
    assert "x_trips.tntp:7: second block for origin 1" in text


def test_many_errors_are_capped_in_the_message(tmp_path):
    net = NET.replace("<NUMBER OF LINKS> 6", "<NUMBER OF LINKS> 86") + "1 2 x 1 1 0.15 4\n" * 80
    with pytest.raises(TntpError) as exc:
        read_tntp(write(tmp_path, "n.tntp", net))
    assert len(exc.value.errors) == 80 and str(exc.value).endswith("… and 30 more")


def test_malformed_node_and_flow_files(tmp_path):
    net = write(tmp_path, "n.tntp", NET)
    nodes = write(tmp_path, "nodes.tntp", "Node X Y ;\n1 0 0 ;\n2 1\n9 1 1 ;\n1 5 5 ;\n3 a 1 ;\n")
    with pytest.raises(TntpError) as exc:
        read_tntp(net, node_path=nodes)
    assert [(ln, m.split(" (")[0]) for _, ln, m in exc.value.errors] == [
        (3, "a node line has 3 columns"), (4, "node 9 is not defined"), (5, "node 1 given twice"),
        (6, "x 'a' is not a number")]
    with pytest.raises(TntpError, match=r"lon\.tntp:2: longitude 200 is outside"):
        read_tntp(net, node_path=write(tmp_path, "lon.tntp", "Node X Y ;\n1 200 0 ;\n"), lonlat=True)
    with pytest.raises(TntpError) as exc:
        read_tntp_flows(write(tmp_path, "f.tntp", "From To Volume Cost\n1 2 3\n1 2 x 1\n"))
    assert [ln for _, ln, _ in exc.value.errors] == [2, 3]


# -- GeoJSON --------------------------------------------------------------------------------------------


def test_geojson_siouxfalls(nets, flows, tmp_path):
    tn = nets["SiouxFalls"]
    out = tmp_path / "sf.geojson"
    fc = to_geojson(tn, out, flows=flows["SiouxFalls"])
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 76 + 24
    assert json.loads(out.read_text()) == fc
    json.dumps(fc, allow_nan=False)
    links = [f for f in fc["features"] if f["properties"]["kind"] == "link"]
    nodes = [f for f in fc["features"] if f["properties"]["kind"] == "node"]
    first = links[0]
    assert first["id"] == "link/1-2" and first["geometry"] == {
        "type": "LineString", "coordinates": [[-96.77041974, 43.61282792], [-96.71125063, 43.60581298]]}
    p = first["properties"]
    assert p["from_node"] == "1" and p["capacity_veh_h"] == 25900.20064 and p["link_type"] == 1
    assert p["flow"] == 4494.6576464564205 and p["cost"] == 6.0008162373543197 and p["coordinates"] is None
    assert nodes[23]["geometry"] == {"type": "Point", "coordinates": [-96.74920028, 43.50316422]}
    assert nodes[23]["properties"]["through"] is True and nodes[23]["properties"]["x"] == -96.74920028


def test_geojson_xy_fallback_nan_and_partial_flows(nets, flows):
    tn = read_tntp(files("SiouxFalls")["net"], node_path=files("SiouxFalls")["node"])  # x/y only
    fc = to_geojson(tn, flows=flows["SiouxFalls"][["flow"]].iloc[:3])
    link = fc["features"][0]
    assert link["geometry"]["coordinates"][0] == [-96.77041974, 43.61282792]
    assert link["properties"]["coordinates"] == XY_NOTE and link["properties"]["flow"] == 4494.6576464564205
    assert fc["features"][3]["properties"]["flow"] is None  # a link without a result
    assert fc["features"][-1]["properties"]["lon"] is None
    json.dumps(fc, allow_nan=False)
    fc = to_geojson(nets["Anaheim"])  # no coordinates at all
    assert all(f["geometry"] is None for f in fc["features"])
    assert fc["features"][-1]["properties"]["x"] is None
    json.dumps(fc, allow_nan=False)


def test_geojson_rejects_misaligned_flows(nets, flows):
    tn = nets["SiouxFalls"]
    with pytest.raises(ValueError, match="unknown link ids, e.g. '1-24'"):
        to_geojson(tn, flows=pd.DataFrame({"flow": [1.0]}, index=["1-24"]))
    bad = flows["SiouxFalls"].copy()
    bad.loc["1-2", "to_node"] = "3"
    with pytest.raises(ValueError, match=r"flows row '1-2': to_node = '3' but the link has '2'"):
        to_geojson(tn, flows=bad)
