"""The energy network: a set of component tables and a system base."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..schema import SchemaError, check_references
from ..tables import TableSet
from .schema import TABLES

__all__ = ["Grid"]


class Grid(TableSet):
    """An electricity network as component tables (pandas DataFrames indexed by id).

    Tables: ``bus``, ``line``, ``transformer``, ``generator``, ``generator_cost``,
    ``load``, ``shunt``, ``storage``; their columns and units are declared in
    :mod:`twin.energy.schema` (``Grid.schema('bus')`` shows one).  ``base_mva`` is
    the system base for the p.u. impedances (MVA).

    The grid holds data only: simulations return result objects and never store
    anything on it.  Add components with :meth:`add` (vectorised).
    """

    TABLES = TABLES
    LAYER = "energy"

    def __init__(self, base_mva: float = 100.0, name: str = "", tables: Mapping[str, pd.DataFrame] | None = None):
        if not base_mva > 0:
            raise ValueError(f"base_mva must be positive, got {base_mva!r}")
        self.base_mva = float(base_mva)
        self.name = name
        self._init_tables(tables)

    def validate(self) -> None:
        """Check foreign keys and cross-table rules; raise :class:`SchemaError` naming the element."""
        check_references(self._tables, TABLES.values())
        both = self._tables["line"].index.intersection(self._tables["transformer"].index)
        if len(both):
            raise SchemaError(f"branch id {both[0]!r} is used by both a line and a transformer; "
                              "branch ids must be unique across the two tables")
        cost = self._tables["generator_cost"]
        if len(cost):
            gen_ids = cost.index.str.removesuffix(":q")
            bad = ~gen_ids.isin(self._tables["generator"].index)
            if bad.any():
                raise SchemaError(f"table 'generator_cost': id {cost.index[bad][0]!r} is not a generator id")

    def copy(self) -> Grid:
        """A deep copy."""
        g = Grid(self.base_mva, self.name)
        self._copy_tables_to(g)
        return g

    def equals(self, other: Grid) -> bool:
        """True when every table (values, dtypes, index, column order) and the base are equal."""
        return self.base_mva == other.base_mva and self._tables_equal(other)

    def __repr__(self) -> str:
        return f"Grid({self.name!r}, base_mva={self.base_mva:g}, {self._counts()})"
