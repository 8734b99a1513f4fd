"""Behaviour of the hydraulic solver beyond the EPANET comparisons: errors, warnings, kernels."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from twin._ext import hydraulics as kernel
from twin.water import HydraulicWarning, NetworkError, read_inp, simulate_hydraulics
from twin.water.compile import compile_water, minimum_degree_order
from twin.water.network import RuleAction
from twin.water.units import PDA_QTOL

WATER = Path(__file__).parents[1] / "data" / "water"


def quiet(wn, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HydraulicWarning)
        return simulate_hydraulics(wn, **kw)


def test_ldl_factor_solves_like_scipy():
    wn = read_inp(WATER / "Net3.inp")
    cw = compile_water(wn)
    n = cw.nj
    rng = np.random.default_rng(7)
    ax = -rng.random(len(cw.ldl_ai))
    cols = np.repeat(np.arange(n), np.diff(cw.ldl_ap))
    diag = np.full(n, 0.5)
    np.add.at(diag, cw.ldl_ai, -ax)
    np.add.at(diag, cols, -ax)
    ldl = kernel.LDLPattern(n, cw.ldl_ap, cw.ldl_ai)
    b = rng.random(n)
    fail, x = ldl.factor_solve(diag, ax, b)
    assert fail == -1
    a = sp.coo_matrix((ax, (cw.ldl_ai, cols)), shape=(n, n))
    a = (a + a.T + sp.diags(diag)).tocsc()
    assert np.allclose(a @ x, b, atol=1e-12)
    # a matrix that is not positive definite is reported with the column where it fails
    diag[5] = -1.0
    fail, _ = ldl.factor_solve(diag, ax, b)
    assert fail >= 0


def test_minimum_degree_order_is_a_permutation_with_little_fill():
    wn = read_inp(WATER / "Net6.inp")
    cw = compile_water(wn)
    assert sorted(cw.perm.tolist()) == list(range(cw.nj))
    ldl = kernel.LDLPattern(cw.nj, cw.ldl_ap, cw.ldl_ai)
    assert ldl.nnz_l < 2.5 * len(cw.ldl_ai)  # water networks are nearly trees: little fill
    # a path graph: minimum degree eliminates from the ends, no fill at all
    order = minimum_degree_order(5, np.array([[0, 1], [1, 2], [2, 3], [3, 4]]))
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    assert order[0] in (0, 4)


def test_isolated_junction_with_demand_is_reported_as_disconnected():
    wn = read_inp(WATER / "Net1.inp")
    pipes = wn.pipe.copy()
    # junction 32 hangs on pipes 31 (31-32) and 122 (22-32): close both
    pipes.loc[["31", "122"], "status"] = "CLOSED"
    wn.pipe = pipes
    with pytest.warns(HydraulicWarning, match="hydraulic warning"):
        res = simulate_hydraulics(wn, duration_s=0)
    texts = [(t, el, msg) for t, el, msg in res.messages]
    assert any(el == "32" and "disconnected" in msg for _, el, msg in texts)
    assert any(el == "32" and "negative pressure" in msg for _, el, msg in texts)


def test_unlinked_junction_is_an_error_naming_it():
    wn = read_inp(WATER / "Net1.inp")
    wn.add("junction", index="J-lonely", elevation_m=10.0)
    with pytest.raises(NetworkError, match="J-lonely"):
        simulate_hydraulics(wn)


def test_unbalanced_step_halts_the_run_when_options_say_stop():
    wn = read_inp(WATER / "net1_pbv.inp")  # EPANET cannot balance it to 1e-7 either
    wn.options.unbalanced = "STOP"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HydraulicWarning)
        res = simulate_hydraulics(wn, accuracy=1e-7)
    texts = [str(w.message) for w in caught]
    assert any("halted at t = 0 s" in t for t in texts) and any("system unbalanced" in t for t in texts)
    assert res.halted_at_s == 0
    assert not res.converged
    assert len(res.node_head) == 1


def test_disabled_rule_is_not_evaluated_and_active_action_is_a_no_op():
    base = read_inp(WATER / "net1_rules.inp")
    without = base.copy()
    without.rules = [r for r in base.rules if r.name != "3"]
    disabled = base.copy()
    next(r for r in disabled.rules if r.name == "3").enabled = False
    a, b = quiet(without), quiet(disabled)
    assert np.array_equal(a.node_head.to_numpy(), b.node_head.to_numpy())
    assert not np.array_equal(a.node_head.to_numpy(), quiet(base).node_head.to_numpy())
    noop = without.copy()
    noop.rules[0].then_actions.append(RuleAction("PIPE", "10", "STATUS", "ACTIVE"))
    assert np.array_equal(quiet(noop).node_head.to_numpy(), a.node_head.to_numpy())


def test_pressure_driven_needs_a_pressure_range():
    wn = read_inp(WATER / "Net1.inp")
    wn.options.minimum_pressure_m = 20.0
    wn.options.required_pressure_m = 10.0
    with pytest.raises(NetworkError, match="required_pressure_m"):
        simulate_hydraulics(wn, demand_model="PDA")


def test_pda_never_delivers_more_than_required_nor_below_minimum_pressure():
    wn = read_inp(WATER / "pda_deficient.inp")
    res = quiet(wn, demand_model="PDA")
    dda = quiet(wn, demand_model="DDA")
    junctions = list(wn.junction.index)
    delivered, full = res.node_demand[junctions], dda.node_demand[junctions]
    tol = PDA_QTOL  # EPANET's PDA convergence tolerance (0.0001 cfs)
    assert (delivered <= full + tol).all().all()
    p = res.node_pressure[junctions]
    assert (delivered.where(p <= wn.options.minimum_pressure_m, 0.0).abs() <= tol).all().all()
    assert ((delivered - full).where(p >= wn.options.required_pressure_m, 0.0).abs() <= tol).all().all()
    assert ((full - delivered) > 10 * tol).any().any()  # and it is deficient somewhere


def test_summary_is_json_and_result_tables_are_consistent():
    res = quiet(read_inp(WATER / "Net3.inp"), duration_s=24 * 3600)
    summary = json.loads(json.dumps(res.summary()))
    assert summary["reporting_times"] == 25 and summary["converged"]
    assert list(res.node_head.index) == list(range(0, 24 * 3600 + 1, 3600))
    assert set(res.link_status.stack().unique()) <= {"OPEN", "CLOSED", "ACTIVE"}
    closed = res.link_status == "CLOSED"
    assert (res.link_flow[closed].fillna(0) == 0).all().all()
    assert res.pump_energy["kwh"].gt(0).all()


def test_cli_runs_a_file_and_saves_the_tables(tmp_path, capsys):
    from twin.cli import main

    rc = main(["hydraulics", str(WATER / "Net1.inp"), "--hours", "6", "--out", str(tmp_path / "out")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "converged" in out and "7 reporting times" in out
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["reporting_times"] == 7
    assert (tmp_path / "out" / "node_head.csv").read_text().startswith("time_s,")
    rc = main(["hydraulics", str(WATER / "net1_pbv.inp"), "--accuracy", "1e-7", "--hours", "1"])
    assert rc == 2 and "NOT BALANCED at 2 of 2 steps" in capsys.readouterr().out
