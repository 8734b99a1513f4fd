"""networkx view of the energy grid (for topology questions and plots, not the numerical core)."""

from __future__ import annotations

import networkx as nx

from .grid import Grid

__all__ = ["to_networkx"]


def to_networkx(grid: Grid, *, include_out_of_service: bool = False) -> nx.MultiGraph:
    """An undirected multigraph: one node per bus, one edge per line or transformer.

    Node attributes are the bus table's columns; edges are keyed by branch id and
    carry ``kind`` ('line'/'transformer') and the branch columns.  Out-of-service
    buses and branches are left out unless ``include_out_of_service``.
    """
    g = nx.MultiGraph(name=grid.name, base_mva=grid.base_mva)
    bus = grid.bus if include_out_of_service else grid.bus[grid.bus["in_service"]]
    g.add_nodes_from((i, row) for i, row in zip(bus.index, bus.to_dict("records")))
    for kind, table in (("line", grid.line), ("transformer", grid.transformer)):
        df = table if include_out_of_service else table[table["in_service"]]
        df = df[df["bus0"].isin(bus.index) & df["bus1"].isin(bus.index)]
        g.add_edges_from(
            (b0, b1, bid, {"kind": kind, **row})
            for bid, b0, b1, row in zip(df.index, df["bus0"], df["bus1"], df.to_dict("records"))
        )
    return g
