"""The Grid container: declared schema, vectorised add, validation errors, networkx view."""

from __future__ import annotations

import networkx as nx
import pytest

from tests.conftest import MATPOWER_DIR
from twin.energy import Grid, read_matpower, to_networkx
from twin.schema import SchemaError


def test_add_is_vectorised_and_fills_defaults():
    g = Grid()
    ids = g.add("bus", index=[f"b{i}" for i in range(100)], vn_kv=22.0)
    assert len(ids) == 100 and (g.bus["type"] == "pq").all() and g.bus["vm_pu"].eq(1.0).all()
    assert str(g.bus["vn_kv"].dtype) == "float64"


def test_foreign_keys_and_duplicates_are_checked():
    g = Grid()
    g.add("bus", index=["a", "b"])
    with pytest.raises(SchemaError, match="bus1 = 'zz' is not a bus id"):
        g.add("line", index="l1", bus0="a", bus1="zz", x_pu=0.1)
    assert len(g.line) == 0  # failed add leaves the table unchanged
    with pytest.raises(SchemaError, match="already exists"):
        g.add("bus", index="a")
    with pytest.raises(SchemaError, match="required column 'x_pu'"):
        g.add("line", index="l2", bus0="a", bus1="b")
    with pytest.raises(SchemaError, match="not one of"):
        g.add("bus", index="c", type="slack")
    with pytest.raises(KeyError, match="unknown energy table"):
        g.add("pipe", index="p")


def test_schema_is_documented_with_units():
    s = Grid.schema("generator")
    assert s.loc["p_mw", "unit"] == "MW" and s.loc["bus", "references"] == "bus"
    assert s.loc["bus", "required"]


def test_to_networkx_view():
    g = read_matpower(MATPOWER_DIR / "case30.m")
    G = to_networkx(g)
    assert G.number_of_nodes() == 30
    assert G.number_of_edges() == len(g.line) + len(g.transformer)
    assert nx.is_connected(G)
    kinds = {d["kind"] for _, _, d in G.edges(data=True)}
    assert kinds == {"line"} or kinds == {"line", "transformer"}
    g.line["in_service"] = False
    assert to_networkx(g).number_of_edges() == len(g.transformer)


def test_add_cost_with_tuple_coefficients():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.generator_cost = g.generator_cost.drop(index="1")
    g.add("generator_cost", index="1", model=2, coefficients=(0.1, 5.0, 150.0))
    assert g.generator_cost.loc["1", "coefficients"] == (0.1, 5.0, 150.0)
