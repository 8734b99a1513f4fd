"""Restoration scheduling: brute-force optima on tiny instances, schedule rules, skims, bad inputs."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from solvers.highs_route import HighsModel
from solvers.restoration import (
    RestorationError,
    RestorationOptions,
    RestorationProblem,
    build_restoration_model,
    evaluate_routes,
    prepare_restoration_data,
    solve_restoration,
    travel_times_from_skim,
)
from twin.transport import TransportNetwork, assign_traffic

COLUMNS = ["element", "crew", "order", "travel_start_h", "arrival_h", "start_h", "finish_h", "service_restored_h"]


def as_list(v) -> list:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    return [v] if isinstance(v, str) else list(v)


def topological(req: dict) -> list:
    order: list = []
    while len(order) < len(req):
        order += [e for e in req if e not in order and all(i in order for i in req[e])]
    return order


def brute_force(pb: RestorationProblem, opts: RestorationOptions | None = None) -> tuple[float, dict]:
    """Every split of every order of the failures among the crews, priced from the definitions."""
    opts = opts or RestorationOptions()
    f, cr, tr = pb.failures, pb.crews, pb.travel_h
    w = (opts.weight_people * f.get("people", 0.0) + opts.weight_mwh * f.get("unserved_mw", 0.0)
         + opts.weight_m3 * f.get("unserved_m3h", 0.0))
    req = {e: as_list(f["requires"][e]) if "requires" in f else [] for e in f.index}
    skill = {e: (as_list(f["skill"][e]) or [None])[0] if "skill" in f else None for e in f.index}
    skills = {c: set(as_list(cr["skills"][c])) if "skills" in cr else set() for c in cr.index}
    crews = list(cr.index)
    best, best_routes = math.inf, None
    for order in itertools.permutations(f.index):
        for cuts in itertools.combinations_with_replacement(range(len(order) + 1), len(crews) - 1):
            bounds = [0, *cuts, len(order)]
            routes = {c: list(order[bounds[k]:bounds[k + 1]]) for k, c in enumerate(crews)}
            if any(skill[e] is not None and skills[c] and skill[e] not in skills[c]
                   for c, r in routes.items() for e in r):
                continue
            finish = {}
            for c, r in routes.items():
                now, here = cr.at[c, "available_h"], cr.at[c, "depot"]
                for e in r:
                    now += tr.at[here, f.at[e, "location"]] + f.at[e, "repair_h"]
                    finish[e] = now
                    here = f.at[e, "location"]

            service = {}
            for e in topological(req):
                service[e] = max([finish[e], *(service[i] for i in req[e])])
            obj = sum(w[e] * service[e] for e in f.index)
            if obj < best - 1e-12:
                best, best_routes = obj, routes
    return best, best_routes


def random_problem(seed: int, n: int, k: int, *, requires: bool = True, skills: bool = True) -> RestorationProblem:
    """Locations L0..L4 with a random (not metric, not symmetric) travel matrix of 0.1-1.5 h."""
    rng = np.random.default_rng(seed)
    locs = [f"L{i}" for i in range(5)]
    tr = rng.uniform(0.1, 1.5, (5, 5))
    np.fill_diagonal(tr, 0.0)
    ids = [f"f{i}" for i in range(n)]
    layer = rng.choice(["energy", "water", "road"], n)
    fail = pd.DataFrame({
        "layer": layer, "location": rng.choice(locs, n), "repair_h": rng.integers(4, 33, n) / 4.0,
        "people": rng.integers(0, 5000, n).astype(float), "unserved_mw": rng.uniform(0, 5, n),
        "unserved_m3h": rng.uniform(0, 300, n)}, index=ids)
    if requires:
        fail["requires"] = [tuple(ids[j] for j in range(i) if rng.random() < 0.3) for i in range(n)]
    if skills:
        fail["skill"] = [{"energy": "electrical", "water": "hydraulic", "road": None}[x] for x in layer]
    crews = pd.DataFrame({"depot": rng.choice(locs, k), "available_h": rng.integers(0, 9, k) / 4.0},
                         index=[f"c{i}" for i in range(k)])
    if skills:
        crews["skills"] = [("electrical",), None, ("hydraulic", "electrical")][:k]
    return RestorationProblem(fail, crews, pd.DataFrame(tr, index=locs, columns=locs))


def check_schedule(pb: RestorationProblem, sol) -> None:
    """Times follow from the routes: travel from the depot or the previous site, no overlap, skills, requires."""
    f, cr, tr = pb.failures, pb.crews, pb.travel_h
    a = sol.assignment
    assert sorted(a.index) == sorted(f.index)
    for crew, route in sol.crew_routes.items():
        here, free = cr.at[crew, "depot"], cr.at[crew, "available_h"]
        for k, e in enumerate(route):
            row = a.loc[e]
            assert row["crew"] == crew and row["order"] == k + 1
            assert row["travel_start_h"] == pytest.approx(free)
            assert row["arrival_h"] == pytest.approx(free + tr.at[here, f.at[e, "location"]])
            assert row["start_h"] >= row["arrival_h"] - 1e-9
            assert row["finish_h"] == pytest.approx(row["start_h"] + f.at[e, "repair_h"])
            here, free = f.at[e, "location"], row["finish_h"]
            need = as_list(f["skill"].get(e)) if "skill" in f else []  # pandas 3 reads a missing skill as NaN
            have = as_list(cr["skills"].get(crew)) if "skills" in cr else []
            assert not need or not have or need[0] in have
    for e in f.index:
        assert a.at[e, "service_restored_h"] >= a.at[e, "finish_h"] - 1e-9
        for i in as_list(f["requires"][e]) if "requires" in f else []:
            assert a.at[e, "service_restored_h"] >= a.at[i, "service_restored_h"] - 1e-9


@pytest.mark.parametrize("seed,n,k", [(0, 4, 2), (1, 4, 2), (2, 5, 2), (3, 5, 3), (4, 4, 3)])
def test_optimum_equals_brute_force(seed, n, k):
    pb = random_problem(seed, n, k)
    opts = RestorationOptions(weight_mwh=100.0, weight_m3=2.0)
    best, routes = brute_force(pb, opts)
    sol = solve_restoration(pb, opts)
    assert sol.objective == pytest.approx(best, rel=1e-6)
    assert sol.status == "optimal" and sol.lower_bound <= sol.objective + 1e-6
    assert sol.heuristic_objective >= best - 1e-6
    assert evaluate_routes(pb, routes, opts) == pytest.approx(best, rel=1e-12)
    check_schedule(pb, sol)
    s = sol.assignment["service_restored_h"]
    f = pb.failures
    assert sol.people_hours == pytest.approx(float((f["people"] * s).sum()))
    assert sol.unserved_energy_mwh == pytest.approx(float((f["unserved_mw"] * s).sum()))
    assert sol.unserved_water_m3 == pytest.approx(float((f["unserved_m3h"] * s).sum()))
    assert sol.objective == pytest.approx(sol.people_hours + 100.0 * sol.unserved_energy_mwh
                                          + 2.0 * sol.unserved_water_m3)


@pytest.mark.parametrize("seed", [8, 10, 12])
def test_milp_finishes_what_a_cut_short_heuristic_leaves(seed):
    """No local search (heuristic time 0): insertion alone, then HiGHS from that start."""
    pb = random_problem(seed, 6, 2)
    best, _ = brute_force(pb)
    sol = solve_restoration(pb, RestorationOptions(heuristic_time_s=0.0))
    assert sol.objective == pytest.approx(best, rel=1e-6) and sol.status == "optimal"
    assert sol.heuristic_objective >= sol.objective - 1e-6
    check_schedule(pb, sol)


@pytest.mark.parametrize("seed,skills", [(5, True), (6, False), (7, True)])
def test_milp_alone_reaches_the_brute_force_optimum(seed, skills):
    """The formulation itself, without heuristic, bounds from an incumbent or cuts: HiGHS' optimum."""
    pb = random_problem(seed, 5, 2, skills=skills)
    best, _ = brute_force(pb)
    for upper in (None, best):  # with the incumbent bound at the optimum itself, the optimum stays feasible
        rm = build_restoration_model(pb, upper_bound=upper)
        h = HighsModel(rm.model)
        status = h.solve(mip_gap=1e-9, mip_duals=False)
        assert status.optimal
        assert status.objective * rm.scale == pytest.approx(best, rel=1e-6)


def one_crew_problem(requires: bool) -> RestorationProblem:
    tr = pd.DataFrame([[0.0, 0.5, 1.0], [0.5, 0.0, 1.0], [1.0, 1.0, 0.0]], index=["X", "L0", "L1"],
                      columns=["X", "L0", "L1"])
    fail = pd.DataFrame({"layer": ["water", "energy"], "location": ["L0", "L1"], "repair_h": [1.0, 2.0],
                         "people": [1000.0, 10.0], "requires": [("F",) if requires else (), ()]}, index=["P", "F"])
    return RestorationProblem(fail, pd.DataFrame({"depot": ["X"], "available_h": [0.0]}, index=["crew"]), tr)


def test_requires_by_hand():
    # pump P (1000 people) needs feeder F (10 people).  P then F: C_P = 0.5 + 1 = 1.5, C_F = 1.5 + 1 + 2 = 4.5,
    # S_P = 4.5: 1000 × 4.5 + 10 × 4.5 = 4545.  F then P: C_F = 3, S_P = C_P = 3 + 1 + 1 = 5: 5030.
    sol = solve_restoration(one_crew_problem(requires=True))
    assert sol.objective == pytest.approx(4545.0)
    assert sol.crew_routes == {"crew": ["P", "F"]}
    assert sol.assignment.at["P", "finish_h"] == pytest.approx(1.5)
    assert sol.assignment.at["P", "service_restored_h"] == pytest.approx(4.5)
    assert sol.people_hours == pytest.approx(4545.0) and sol.unserved_energy_mwh == 0.0
    free = solve_restoration(one_crew_problem(requires=False))  # without the link: 1000 × 1.5 + 10 × 4.5
    assert free.objective == pytest.approx(1545.0)
    assert free.assignment.at["P", "service_restored_h"] == pytest.approx(1.5)


def test_requires_chain_across_crews_is_honoured():
    pb = random_problem(11, 5, 2, skills=False)
    pb.failures["requires"] = [(), ("f0",), ("f1",), ("f0", "f2"), ()]
    sol = solve_restoration(pb)
    check_schedule(pb, sol)
    s = sol.assignment["service_restored_h"]
    assert s["f3"] >= s["f2"] >= s["f1"] >= s["f0"] - 1e-9
    assert s["f3"] == pytest.approx(sol.assignment.loc[["f0", "f1", "f2", "f3"], "finish_h"].max())
    assert sol.objective == pytest.approx(brute_force(pb)[0], rel=1e-6)


def test_crew_availability_and_travel():
    tr = pd.DataFrame([[0.0, 1.0], [1.0, 0.0]], index=["D", "S"], columns=["D", "S"])
    fail = pd.DataFrame({"layer": ["road", "road"], "location": ["S", "S"], "repair_h": [2.0, 1.0],
                         "people": [100.0, 100.0]}, index=["a", "b"])
    crews = pd.DataFrame({"depot": ["S", "D"], "available_h": [5.0, 0.0]}, index=["near_late", "far_early"])
    # near_late is on site but free at 5 h; far_early leaves D at 0 and arrives at 1 h.
    # far_early alone: b (1 h) then a: C_b = 2, C_a = 4 → 600; splitting: C = 2 and 7 → 900
    sol = solve_restoration(RestorationProblem(fail, crews, tr))
    assert sol.crew_routes["far_early"] == ["b", "a"] and sol.crew_routes["near_late"] == []
    assert sol.objective == pytest.approx(600.0)
    row = sol.assignment.loc["b"]
    assert (row["travel_start_h"], row["arrival_h"], row["start_h"], row["finish_h"]) == pytest.approx((0, 1, 1, 2))
    row = sol.assignment.loc["a"]
    assert (row["travel_start_h"], row["arrival_h"], row["finish_h"]) == pytest.approx((2, 2, 4))
    # the early crew made late: the on-site crew takes over
    crews.loc["far_early", "available_h"] = 9.0
    sol = solve_restoration(RestorationProblem(fail, crews, tr))
    assert sol.crew_routes["near_late"] == ["b", "a"]
    assert sol.assignment.loc["b", ["arrival_h", "start_h", "finish_h"]].tolist() == pytest.approx([5.0, 5.0, 6.0])


def test_skills_are_honoured():
    tr = pd.DataFrame([[0.0, 1.5], [1.5, 0.0]], index=["A", "B"], columns=["A", "B"])
    fail = pd.DataFrame({"layer": ["energy", "water", "energy"], "location": ["A", "A", "A"],
                         "repair_h": [1.0, 1.0, 1.0], "people": [500.0, 400.0, 300.0],
                         "skill": ["hv", "pipes", None]}, index=["e1", "w1", "e2"])
    crews = pd.DataFrame({"depot": ["A", "B"], "available_h": [0.0, 0.0], "skills": [("pipes",), ["hv"]]},
                         index=["plumbers", "electricians"])
    pb = RestorationProblem(fail, crews, tr)
    sol = solve_restoration(pb)
    assert sol.assignment.at["e1", "crew"] == "electricians"  # the only skilled crew, 1.5 h away
    assert sol.assignment.at["w1", "crew"] == "plumbers"
    check_schedule(pb, sol)
    assert sol.objective == pytest.approx(brute_force(pb)[0], rel=1e-9)
    with pytest.raises(RestorationError, match="lacks the skill"):
        evaluate_routes(pb, {"plumbers": ["e1", "w1", "e2"]})


def test_travel_matrix_from_a_skim_of_a_small_network():
    nodes = pd.DataFrame({"x": [0, 1, 2, 0, 1, 2], "y": [0, 0, 0, 1, 1, 1]}, index=[f"n{i}" for i in range(6)])
    rows = {}
    for a, b, minutes in [("n0", "n1", 6.0), ("n1", "n2", 9.0), ("n3", "n4", 3.0), ("n4", "n5", 4.0),
                          ("n0", "n3", 2.0), ("n1", "n4", 5.0), ("n2", "n5", 2.5)]:
        for u, v in ((a, b), (b, a)):
            rows[f"{u}-{v}"] = {"from_node": u, "to_node": v, "capacity_veh_h": 1000.0, "free_flow_time_min": minutes,
                                "length": minutes}
    zone = pd.DataFrame({"node": ["n0", "n2", "n3", "n5"]}, index=["A", "B", "C", "D"])
    od = pd.DataFrame({"origin": ["A", "C"], "destination": ["B", "D"], "trips_veh_h": [300.0, 200.0]},
                      index=["0", "1"])
    tn = TransportNetwork("toy", {"node": nodes, "link": pd.DataFrame.from_dict(rows, orient="index"), "zone": zone,
                                  "od": od})
    res = assign_traffic(tn, "bfw", rel_gap=1e-8)
    skim = res.skim("time")
    tr = travel_times_from_skim(skim, ["B", "A", "D", "A", "C"])
    assert list(tr.index) == ["B", "A", "D", "C"] == list(tr.columns)
    # A -> B runs n0-n3-n4-n5-n2 at the congested link times
    path = ["n0-n3", "n3-n4", "n4-n5", "n5-n2"]
    assert tr.at["A", "B"] == pytest.approx(res.link.loc[path, "time_min"].sum() / 60.0)
    assert tr.at["A", "B"] > (2.0 + 3.0 + 4.0 + 2.5) / 60.0  # congestion on the loaded links
    assert np.allclose(tr.to_numpy() * 60.0, skim.loc[tr.index, tr.columns].to_numpy())
    fail = pd.DataFrame({"layer": ["energy", "water", "road"], "location": ["B", "D", "A"],
                         "repair_h": [2.0, 1.5, 1.0], "people": [3000.0, 2500.0, 800.0]}, index=["s1", "p1", "r1"])
    crews = pd.DataFrame({"depot": ["C", "A"], "available_h": [0.0, 0.5]}, index=["k1", "k2"])
    pb = RestorationProblem(fail, crews, tr)
    sol = solve_restoration(pb)
    check_schedule(pb, sol)
    assert sol.objective == pytest.approx(brute_force(pb)[0], rel=1e-9)
    with pytest.raises(RestorationError, match="'Z' is not a zone"):
        travel_times_from_skim(skim, ["A", "Z"])
    cut = assign_traffic(tn, "bfw", rel_gap=1e-6, closed_links=["n2-n1", "n2-n5"])  # nothing leaves B
    with pytest.raises(RestorationError, match="from 'B' to 'A'.*unreachable"):
        travel_times_from_skim(cut.skim("time"), ["A", "B"])


def test_moderate_instance_gap_no_worse_than_the_heuristic():
    rng = np.random.default_rng(42)
    pts = rng.uniform(0, 10, (12, 2))
    locs = [f"z{i}" for i in range(12)]
    dist = np.abs(pts[:, None, :] - pts[None, :, :]).sum(axis=2)  # Manhattan km
    tr = pd.DataFrame(np.where(dist > 0, 0.1 + dist / 15.0, 0.0), index=locs, columns=locs)
    n = 20
    layer = rng.choice(["energy", "water", "road"], n)
    ids = [f"x{i:02d}" for i in range(n)]
    fail = pd.DataFrame({"layer": layer, "location": rng.choice(locs, n), "repair_h": rng.integers(4, 33, n) / 4.0,
                         "people": rng.integers(100, 20000, n).astype(float),
                         "unserved_mw": np.where(layer == "energy", rng.uniform(0.5, 10, n), 0.0),
                         "requires": [(ids[0],) if k in (3, 7) else () for k in range(n)]}, index=ids)
    crews = pd.DataFrame({"depot": ["z0", "z5", "z9"], "available_h": [0.0, 0.5, 1.0]}, index=["a", "b", "c"])
    pb = RestorationProblem(fail, crews, tr)
    sol = solve_restoration(pb, RestorationOptions(time_limit_s=4.0, weight_mwh=50.0))
    check_schedule(pb, sol)
    heur_gap = (sol.heuristic_objective - sol.lower_bound) / sol.heuristic_objective
    assert 0.0 < sol.lower_bound <= sol.objective <= sol.heuristic_objective
    assert sol.mip_gap <= heur_gap + 1e-12
    assert sol.mip_gap == pytest.approx((sol.objective - sol.lower_bound) / sol.objective)
    out = json.loads(json.dumps(sol.summary()))
    assert out["objective"] == pytest.approx(sol.objective) and set(out["crew_routes"]) == {"a", "b", "c"}
    assert sum(len(r) for r in out["crew_routes"].values()) == n
    frame = sol.to_frame()
    assert list(frame.reset_index().columns[:len(COLUMNS)]) == COLUMNS
    assert evaluate_routes(pb, sol.crew_routes, RestorationOptions(weight_mwh=50.0)) == pytest.approx(sol.objective)
    heuristic = solve_restoration(pb, RestorationOptions(milp=False, weight_mwh=50.0))
    assert heuristic.status == "heuristic" and heuristic.objective == pytest.approx(sol.heuristic_objective)


def test_trivial_cases():
    pb = one_crew_problem(requires=False)
    empty = solve_restoration(RestorationProblem(pb.failures.iloc[:0], pb.crews, pb.travel_h))
    assert empty.objective == 0.0 and len(empty.assignment) == 0 and empty.crew_routes == {"crew": []}
    pb.failures["people"] = 0.0  # nothing weighs: any schedule is optimal
    sol = solve_restoration(pb)
    assert sol.status == "optimal" and sol.objective == 0.0 and sol.mip_gap == 0.0
    with pytest.raises(RestorationError, match="weight 0"):
        build_restoration_model(pb)


def bad(**changes) -> RestorationProblem:
    pb = one_crew_problem(requires=True)
    fail, crews, tr = pb.failures.copy(), pb.crews.copy(), pb.travel_h.copy()
    for key, value in changes.items():
        table, col, row = key.split("__")
        target = {"f": fail, "c": crews}[table]
        target[col] = target[col].astype(object)
        target.at[row, col] = value
    return RestorationProblem(fail, crews, tr)


@pytest.mark.parametrize("changes,message", [
    ({"f__location__P": "nowhere"}, "failure 'P': location 'nowhere' is not a location of the travel times"),
    ({"c__depot__crew": "Y"}, "crew 'crew': depot 'Y'"),
    ({"f__repair_h__F": -1.0}, "failure 'F': repair_h = -1 "),
    ({"f__repair_h__F": 0.0}, r"failure 'F': repair_h = 0 \(must be finite and > 0\)"),
    ({"f__people__P": -5.0}, "failure 'P': people = -5 "),
    ({"f__layer__P": "gas"}, "failure 'P': layer = 'gas'"),
    ({"f__requires__P": ("zz",)}, "failure 'P': requires 'zz', which is not a failure id"),
    ({"f__requires__F": ("P",)}, "cycle: 'P' requires 'F' requires 'P'|cycle: 'F' requires 'P' requires 'F'"),
    ({"f__requires__F": ["F"]}, "failure 'F': requires itself"),
    ({"c__available_h__crew": -1.0}, "crew 'crew': available_h = -1 "),
])
def test_bad_inputs_are_named(changes, message):
    with pytest.raises(RestorationError, match=message):
        solve_restoration(bad(**changes))


def test_bad_skills_and_travel_are_named():
    pb = one_crew_problem(requires=False)
    pb.failures["skill"] = [None, "hv"]
    pb.crews["skills"] = [("pipes",)]
    with pytest.raises(RestorationError, match="failure 'F': no crew has its skill 'hv'"):
        prepare_restoration_data(pb)
    pb = one_crew_problem(requires=False)
    pb.travel_h.loc["L0", "L1"] = np.nan
    with pytest.raises(RestorationError, match="'L0' -> 'L1' is nan h"):
        solve_restoration(pb)
    pb = one_crew_problem(requires=False)
    pb.failures = pb.failures.drop(columns="repair_h")
    with pytest.raises(RestorationError, match="column 'repair_h' is missing"):
        solve_restoration(pb)
    with pytest.raises(RestorationError, match="weight_mwh"):
        solve_restoration(one_crew_problem(requires=False), RestorationOptions(weight_mwh=-1.0))
