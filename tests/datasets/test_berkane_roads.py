"""The road layer of the Berkane dataset: network structure, demand model, equilibrium assignment and TNTP.

Validated with the project's own assignment (``assign_traffic``) and TNTP reader/writer.  The network is
built once per module (≈ 0.05 s); every assignment takes milliseconds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from twin.datasets.berkane.frame import N2_Y_KM, frame, to_lonlat
from twin.datasets.berkane.roads import (
    GATEWAYS,
    GIVE_WAY_DELAY_MIN,
    JUNCTION_DELAY_MIN,
    N2_ACCESS_KM,
    ROAD_CLASSES,
    build_roads,
    free_flow_skim,
    hourly_profiles,
    tntp_numbering,
    trip_ends,
)
from twin.transport import AssignmentWarning, assign_traffic, read_tntp, write_tntp

CORRIDORS = {"N2", "BYPASS", "MOHAMMED_V", "SAIDIA_ROAD", "OUJDA_ROAD", "street", "connector"}
DISTRICTS = [f"D{k:02d}" for k in range(1, 25)]


@pytest.fixture(scope="module")
def fr():
    return frame()


@pytest.fixture(scope="module")
def built(fr):
    return build_roads(fr)


@pytest.fixture(scope="module")
def summer(fr):
    return build_roads(fr, season="summer")


def assign(tn, method="bfw", gap=1e-5):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AssignmentWarning)  # no unserved demand, no stop short of the gap
        return assign_traffic(tn, method=method, rel_gap=gap, max_iter=2000)


@pytest.fixture(scope="module")
def equilibrium(built):
    return assign(built[0])


@pytest.fixture(scope="module")
def summer_equilibrium(summer):
    return assign(summer[0])


def with_meta(res, meta):
    return res.link.join(meta["links"][["corridor", "road_class", "lanes"]])


# -- structure -------------------------------------------------------------------------------------------


def test_counts_zones_and_coordinates(built, fr):
    tn, meta = built
    assert len(tn.link) >= 300 and len(tn.node) >= 100
    assert list(tn.zone.index) == DISTRICTS + list(GATEWAYS)
    assert (tn.zone["node"] == tn.zone.index).all()
    centroid = tn.node.index.isin(tn.zone["node"])
    assert not tn.node.loc[centroid, "through"].any() and tn.node.loc[~centroid, "through"].all()
    node = tn.node
    assert np.isfinite(node[["x", "y", "lon", "lat"]].to_numpy()).all()
    assert (node["x"] == node["lon"]).all() and (node["y"] == node["lat"]).all()
    lon, lat = to_lonlat(meta["nodes"]["x_km"], meta["nodes"]["y_km"])
    assert np.allclose(node["lon"], lon, rtol=0, atol=1e-12) and np.allclose(node["lat"], lat, rtol=0, atol=1e-12)
    # centroids at the frame's districts and gateways
    assert np.allclose(node.loc[DISTRICTS, "lon"], fr.districts["lon"], rtol=0, atol=1e-12)
    assert np.allclose(node.loc[list(GATEWAYS), "lat"], fr.external_zones.loc[list(GATEWAYS), "lat"], rtol=0,
                       atol=1e-12)
    assert tn.length_unit == "km"
    tn.validate()


def test_links_two_way_labelled_and_parametrised(built):
    tn, meta = built
    links = meta["links"]
    assert list(links.index) == list(tn.link.index)
    pairs = set(zip(tn.link["from_node"], tn.link["to_node"]))
    assert all((b, a) in pairs for a, b in pairs)  # every road in both directions
    assert set(links["corridor"]) == CORRIDORS
    assert set(links["road_class"]) <= set(ROAD_CLASSES)
    assert np.allclose(tn.link["capacity_veh_h"], links["lanes"] * links["cap_per_lane"])
    ff = 60.0 * links["length_km"] / links["speed_kmh"] + links["junction_delay_min"]
    assert np.allclose(tn.link["free_flow_time_min"], ff)
    assert (tn.link["length"] > 0).all()
    road = links["corridor"] != "connector"
    assert (tn.link.loc[road, ["alpha", "beta"]] == [0.15, 4.0]).all().all()
    # the corridors' classes and lanes (existence sourced, geometry synthetic)
    assert (links.loc[links["corridor"] == "BYPASS", ["road_class", "lanes"]] == ["express", 2]).all().all()
    bypass_km = links.loc[links["corridor"] == "BYPASS", "length_km"].sum() / 2
    assert bypass_km == pytest.approx(14.0, abs=0.5)  # the 14 km bypass (facts §6)
    n2_city = links[(links["corridor"] == "N2") & (links["road_class"] == "urban_boulevard")]
    assert len(n2_city) >= 20 and (n2_city["lanes"] == 2).all() and (n2_city["speed_kmh"] == 50).all()
    mv = links[links["corridor"] == "MOHAMMED_V"]
    assert set(mv["lanes"]) == {1, 2} and (mv["speed_kmh"] == 40).all()
    assert mv["cap_per_lane"].max() < n2_city["cap_per_lane"].min()
    # connectors: 1–3 per district, to road nodes only
    conn = links[(links["corridor"] == "connector") & links["from_node"].isin(DISTRICTS)]
    per = conn.groupby("from_node").size()
    assert set(per.index) == set(DISTRICTS) and per.between(1, 3).all()
    assert not conn["to_node"].isin(tn.zone["node"]).any()


def test_road_hierarchy(built, fr):
    """Urban classes ordered by speed and lane capacity; minor roads give way at priority junctions; the
    districts either side of the N2 are loaded onto it."""
    c = ROAD_CLASSES
    assert c["urban_boulevard"].speed_kmh > max(c["avenue"].speed_kmh, c["urban_arterial"].speed_kmh)
    assert min(c["avenue"].speed_kmh, c["urban_arterial"].speed_kmh) >= c["collector"].speed_kmh > c["local"].speed_kmh
    assert c["local"].cap_per_lane < c["collector"].cap_per_lane < c["urban_arterial"].cap_per_lane
    urban = ["urban_boulevard", "avenue", "urban_arterial", "collector", "local"]
    assert all(500 <= c[k].cap_per_lane <= 800 for k in urban)  # junction-limited urban lanes
    rank = {k: c[k].rank for k in urban}
    assert rank["urban_boulevard"] < rank["avenue"] == rank["urban_arterial"] < rank["collector"] < rank["local"]
    tn, meta = built
    links, nodes = meta["links"], meta["nodes"]
    road = links[links["corridor"] != "connector"]
    link_rank = road["road_class"].map({k: v.rank for k, v in c.items()})
    top = pd.concat([link_rank.groupby(road["to_node"]).min(), link_rank.groupby(road["from_node"]).min()])
    top = top.groupby(level=0).min()  # the highest class meeting at each node
    control = nodes.loc[road["to_node"], "control"].to_numpy()
    expect = np.array([JUNCTION_DELAY_MIN[k] for k in control]) + GIVE_WAY_DELAY_MIN * (
        (control == "priority") & (link_rank.to_numpy() > top.loc[road["to_node"]].to_numpy()))
    assert np.allclose(road["junction_delay_min"], expect)
    gives_way = road[(control == "priority") & (road["junction_delay_min"] > 0)]
    assert len(gives_way) >= 20 and set(gives_way["road_class"]) <= {"local", "collector", "urban_arterial"}
    # every district within N2_ACCESS_KM of the N2 has a connector to one of its urban junctions
    n2_nodes = set(links.loc[(links["corridor"] == "N2") & (links["road_class"] == "urban_boulevard"), "to_node"])
    conn = links[(links["corridor"] == "connector") & links["from_node"].isin(DISTRICTS)]
    on_n2 = conn[conn["to_node"].isin(n2_nodes)]["from_node"]
    near = fr.districts.index[(fr.districts["y_km"] - N2_Y_KM).abs() <= N2_ACCESS_KM]
    assert len(near) >= 10 and set(on_n2) == set(near)


def test_every_zone_pair_connected(built):
    tn, meta = built
    skim = meta["skim_free_flow"]
    assert np.isfinite(skim.to_numpy()).all()
    idx = pd.Index(tn.node.index)
    g = csr_matrix((np.ones(len(tn.link)), (idx.get_indexer(tn.link["from_node"]),
                                            idx.get_indexer(tn.link["to_node"]))), shape=(len(idx),) * 2)
    n, _ = connected_components(g, directed=True, connection="strong")
    assert n == 1


def test_free_flow_skim_matches_the_assignment_kernel(built):
    """Our centroid-splitting Dijkstra equals the project's path kernel (non-through centroids) at zero load."""
    tn, meta = built
    cf = pd.Series(1e9, index=tn.link.index)  # capacities ×1e9: BPR times equal the free-flow times
    res = assign_traffic(tn, capacity_factor=cf, rel_gap=1e-5)
    kernel = res.skim("time")
    ours = free_flow_skim(meta["links"], list(tn.zone.index))
    assert np.allclose(kernel.to_numpy(), ours.to_numpy(), rtol=1e-9, atol=1e-9)


def test_signals(built):
    tn, meta = built
    sig = meta["signals"]
    assert 10 <= len(sig) <= 20
    assert sig.index.isin(tn.node.index).all()
    on_corridor = sig["corridors"].str.contains("MOHAMMED_V|N2")
    assert on_corridor.sum() >= 10
    for nid, r in sig.iterrows():
        approaches = r["approaches"].split(",")
        assert len(approaches) >= 3 and (tn.link.loc[approaches, "to_node"] == nid).all()
    assert np.isfinite(sig[["lon", "lat"]].to_numpy()).all()


# -- demand ---------------------------------------------------------------------------------------------


def test_gravity_reproduces_productions_and_attractions(built, fr):
    _, meta = built
    ends = trip_ends(fr.districts)
    pa = meta["pa_internal"].loc[ends.index, ends.index]
    assert np.allclose(pa.sum(axis=1), ends["production"], rtol=1e-6, atol=0)
    assert np.allclose(pa.sum(axis=0), ends["attraction"], rtol=1e-6, atol=0)
    assert ends["attraction"].sum() == pytest.approx(ends["production"].sum(), rel=1e-12)
    assert (pa.to_numpy() > 0).all()
    # the daily OD's internal block is the P/A matrix folded over the day (every home-based tour returns)
    od = meta["od_daily"].set_index(["origin", "destination"])["winter"].unstack().loc[DISTRICTS, DISTRICTS]
    assert np.allclose(od.to_numpy(), 0.5 * (pa.to_numpy() + pa.to_numpy().T), rtol=1e-12)


def test_gateway_daily_volumes_match_the_frame(built, fr):
    _, meta = built
    od = meta["od_daily"]
    g = fr.external_zones
    for season in ("winter", "summer"):
        factor = g["summer_factor"] if season == "summer" else 1.0
        expect = g["daily_veh"] * factor
        two_way = (od.groupby("origin")[season].sum() + od.groupby("destination")[season].sum()).loc[list(GATEWAYS)]
        assert np.allclose(two_way, expect.loc[list(GATEWAYS)], rtol=1e-6, atol=0)
    internal = od[od["origin"].isin(DISTRICTS) & od["destination"].isin(DISTRICTS)]
    assert np.allclose(internal["summer"], internal["winter"])  # only the external traffic is seasonal


def test_hourly_profiles_have_morning_and_evening_peaks():
    prof = hourly_profiles()
    assert list(prof.columns) == ["summer", "winter"] and list(prof.index) == list(range(24))
    assert np.allclose(prof.sum(), 1.0, rtol=0, atol=1e-12) and (prof > 0).all().all()
    for season in prof:
        p = prof[season]
        assert 7 <= p.loc[0:11].idxmax() <= 10 and 17 <= p.loc[12:23].idxmax() <= 20
        assert p.loc[12:23].max() > p.loc[[3, 14, 23]].max() * 1.2
    assert prof["summer"].loc[12:23].idxmax() > prof["winter"].loc[12:23].idxmax()  # later summer evenings


def test_peak_hour_od_table(built, summer):
    for tn, meta in (built, summer):
        season, hour, frac = meta["peak"].iloc[0][["season", "hour", "fraction_of_daily"]]
        assert frac == pytest.approx(hourly_profiles().at[hour, season])
        od = tn.od
        assert (od["hour"] == -1).all() and (od["vehicle_class"] == "car").all() and (od["trips_veh_h"] > 0).all()
        assert not od.duplicated(["origin", "destination"]).any()
        assert od["trips_veh_h"].sum() == pytest.approx(frac * meta["od_daily"][season].sum(), rel=1e-9)
    # evening peak: home-based trips mostly go home, i.e. towards the residential districts
    tn, meta = built
    q = tn.od.pivot_table(index="origin", columns="destination", values="trips_veh_h", aggfunc="sum").fillna(0)
    inflow = q.loc[DISTRICTS, DISTRICTS].sum(axis=0)
    outflow = q.loc[DISTRICTS, DISTRICTS].sum(axis=1)
    job_rich = meta["trip_ends"].eval("attraction / production").idxmax()
    assert outflow[job_rich] > inflow[job_rich]


def test_mean_trip_time_and_length_plausible(built):
    """A 6–8 km city: mean internal car trip 2.5–4.5 km, 5–10 min at free flow."""
    _, meta = built
    od = meta["od_daily"].set_index(["origin", "destination"])["winter"].unstack().loc[DISTRICTS, DISTRICTS]
    q = od.to_numpy().copy()
    np.fill_diagonal(q, 0.0)
    t = meta["skim_free_flow"].loc[DISTRICTS, DISTRICTS].to_numpy()
    d = meta["skim_distance"].loc[DISTRICTS, DISTRICTS].to_numpy()
    assert 5.0 <= (q * t).sum() / q.sum() <= 10.0
    assert 2.5 <= (q * d).sum() / q.sum() <= 4.5


# -- assignment -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bfw", "gp"])
def test_peak_hour_assignment_converges(built, method):
    tn, _ = built
    res = assign(tn, method)
    assert res.converged and res.gap <= 1e-5
    assert len(res.unserved) == 0
    assert res.intrazonal_trips > 0
    # conservation at every road node (flow in = flow out)
    f = res.link["flow"]
    road = tn.node.index[tn.node["through"]]
    net = f.groupby(res.link["to_node"]).sum().reindex(road, fill_value=0) - \
        f.groupby(res.link["from_node"]).sum().reindex(road, fill_value=0)
    assert np.abs(net.to_numpy()).max() < 1e-6


@pytest.mark.parametrize("season", ["winter", "summer"])
def test_plausible_congestion_on_the_n2_and_the_commercial_spine(season, built, equilibrium, summer,
                                                                 summer_equilibrium):
    """Evening peak: both sourced corridors near capacity (the N2 boulevard, which crosses the city, and
    Avenue Mohammed V), nothing far beyond it, the connectors and the bypass free-flowing."""
    tn, meta = built if season == "winter" else summer
    lk = with_meta(equilibrium if season == "winter" else summer_equilibrium, meta)
    top = lk.sort_values("voc", ascending=False)
    assert top["voc"].max() <= 1.3  # nothing absurd
    assert top["corridor"].iloc[0] in ("MOHAMMED_V", "N2")
    n2_city = lk[(lk["corridor"] == "N2") & (lk["road_class"] == "urban_boulevard")]
    assert 0.6 <= n2_city["voc"].max() <= 1.3  # the urban N2 is congested at the peak, not lightly loaded
    assert 0.6 <= lk.loc[lk["corridor"] == "MOHAMMED_V", "voc"].max() <= 1.3
    assert (top["corridor"].iloc[:5].isin(["MOHAMMED_V", "N2"])).sum() >= 3
    assert lk.loc[lk["corridor"] == "connector", "voc"].max() < 0.2
    assert lk.loc[lk["corridor"] == "BYPASS", "voc"].max() < 0.5  # a free-flowing express road


def test_bypass_carries_the_through_traffic(built, equilibrium):
    """At equilibrium, X_NADOR ↔ X_AHFIR / X_OUJDA runs on the bypass, which carries at least that demand."""
    tn, meta = built
    lk = with_meta(equilibrium, meta)
    idx = pd.Index(tn.node.index)
    g = csr_matrix((lk["time_min"].to_numpy(), (idx.get_indexer(lk["from_node"]), idx.get_indexer(lk["to_node"]))),
                   shape=(len(idx),) * 2)
    bypass = set(lk.index[lk["corridor"] == "BYPASS"])
    link_of = {(a, b): k for k, a, b in zip(lk.index, lk["from_node"], lk["to_node"])}
    q = tn.od.set_index(["origin", "destination"])["trips_veh_h"]
    for a, b in (("X_NADOR", "X_AHFIR"), ("X_NADOR", "X_OUJDA"), ("X_AHFIR", "X_NADOR"), ("X_OUJDA", "X_NADOR")):
        _, pred = dijkstra(g, indices=idx.get_loc(a), return_predecessors=True)
        path, v = [], idx.get_loc(b)
        while pred[v] >= 0:
            path.append(link_of[(idx[pred[v]], idx[v])])
            v = pred[v]
        assert len(bypass.intersection(path)) == 4, (a, b, path)  # the whole bypass
        assert q[(a, b)] > 0
    east = ["BYP_W-BYP_NW", "BYP_NW-BYP_S", "BYP_S-BYP_NE", "BYP_NE-BYP_E"]
    through_east = q[("X_NADOR", "X_AHFIR")] + q[("X_NADOR", "X_OUJDA")]
    assert lk.loc[east, "flow"].min() >= through_east * (1 - 1e-6)
    # closing the bypass costs the through trips time
    closed = assign_traffic(tn, closed_links=sorted(bypass), rel_gap=1e-5)
    t_open = equilibrium.skim("time").at["X_NADOR", "X_OUJDA"]
    assert closed.skim("time").at["X_NADOR", "X_OUJDA"] > t_open + 3.0


def test_summer_loads_the_saidia_road(built, summer, equilibrium, summer_equilibrium):
    assert summer_equilibrium.converged
    w, s = with_meta(equilibrium, built[1]), with_meta(summer_equilibrium, summer[1])
    gate = ["SAI_1-X_SAIDIA", "X_SAIDIA-SAI_1"]
    assert s.loc[gate, "flow"].sum() > 1.5 * w.loc[gate, "flow"].sum()


# -- TNTP -----------------------------------------------------------------------------------------------


def test_tntp_round_trip(built, equilibrium, tmp_path):
    tn, _ = built
    num, maps = tntp_numbering(tn)
    paths = {k: tmp_path / f"berkane_{k}.tntp" for k in ("net", "trips", "node")}
    write_tntp(num, paths["net"], paths["trips"], paths["node"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_tntp(paths["net"], paths["trips"], paths["node"], lonlat=True)
    assert back.length_unit == "km"
    cols = ["from_node", "to_node", "capacity_veh_h", "length", "free_flow_time_min", "alpha", "beta", "speed",
            "toll", "link_type"]
    pd.testing.assert_frame_equal(back.link[cols], num.link[cols], check_names=False)
    assert list(back.link.index) == list(maps["link"].loc[tn.link.index])
    pd.testing.assert_frame_equal(back.node[["x", "y", "lon", "lat", "through"]],
                                  num.node[["x", "y", "lon", "lat", "through"]], check_names=False)
    assert list(back.zone.index) == list(num.zone.index) and (back.zone["node"] == back.zone.index).all()
    key = ["origin", "destination"]
    a = back.od[key + ["trips_veh_h"]].sort_values(key).reset_index(drop=True)
    b = num.od[key + ["trips_veh_h"]].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # the original ids map back: zone D01 is "1", the gateways follow the districts
    assert maps["zone"]["D01"] == "1" and maps["zone"]["X_NADOR"] == str(len(tn.zone))
    # the same equilibrium from the files
    res = assign(back)
    flows = res.link["flow"].to_numpy()
    assert np.allclose(flows, equilibrium.link["flow"].loc[maps["link"].index].to_numpy(), rtol=0, atol=1e-6)


def test_deterministic(fr, built):
    tn, meta = build_roads(fr)
    assert tn.equals(built[0])
    pd.testing.assert_frame_equal(meta["od_daily"], built[1]["od_daily"])
