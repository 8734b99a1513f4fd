"""The energy network: a set of component tables and a system base."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from ..schema import SchemaError, check_references, conform, empty_table
from .schema import TABLES

__all__ = ["Grid"]


class Grid:
    """An electricity network as component tables (pandas DataFrames indexed by id).

    Tables: ``bus``, ``line``, ``transformer``, ``generator``, ``generator_cost``,
    ``load``, ``shunt``, ``storage``; their columns and units are declared in
    :mod:`twin.energy.schema` (``Grid.schema('bus')`` shows one).  ``base_mva`` is
    the system base for the p.u. impedances (MVA).

    The grid holds data only: simulations return result objects and never store
    anything on it.  Add components with :meth:`add` (vectorised).
    """

    def __init__(self, base_mva: float = 100.0, name: str = "", tables: Mapping[str, pd.DataFrame] | None = None):
        if not base_mva > 0:
            raise ValueError(f"base_mva must be positive, got {base_mva!r}")
        self.base_mva = float(base_mva)
        self.name = name
        self._tables: dict[str, pd.DataFrame] = {n: empty_table(s) for n, s in TABLES.items()}
        if tables:
            for tname, df in tables.items():
                self._check_name(tname)
                self._tables[tname] = conform(df, TABLES[tname])
            self.validate()

    # -- table access -------------------------------------------------------
    @staticmethod
    def _check_name(table: str) -> None:
        if table not in TABLES:
            raise KeyError(f"unknown energy table {table!r}; tables are {sorted(TABLES)}")

    @staticmethod
    def schema(table: str) -> pd.DataFrame:
        """The declared schema of ``table`` (column, dtype, unit, default, …)."""
        Grid._check_name(table)
        return TABLES[table].describe()

    def __getitem__(self, table: str) -> pd.DataFrame:
        self._check_name(table)
        return self._tables[table]

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in TABLES:
            return self._tables[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in TABLES:  # grid.load = df replaces the table, conformed and checked
            self.set_table(name, value)
        else:
            object.__setattr__(self, name, value)

    def tables(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Iterate over (name, table) pairs."""
        yield from self._tables.items()

    def set_table(self, table: str, df: pd.DataFrame) -> None:
        """Replace a whole table (conformed to its schema; references checked)."""
        self._check_name(table)
        self._tables[table] = conform(df, TABLES[table])
        self.validate()

    def add(self, table: str, data: pd.DataFrame | None = None, *, index: Any = None, **columns: Any) -> pd.Index:
        """Append components to ``table`` and return their ids.

        ``data`` is a DataFrame indexed by id; or give columns as keyword
        arguments (scalars broadcast, sequences vectorised) with ``index`` the
        id or ids.  Missing optional columns take their declared defaults.
        """
        self._check_name(table)
        if data is None:
            if index is None:
                raise ValueError("add(): give a DataFrame or index= ids with column keywords")
            idx = pd.Index([index] if isinstance(index, (str, int)) else list(index))
            schema = TABLES[table]
            # a tuple for an object column (e.g. cost coefficients) is one value, not one per element
            columns = {k: ([v] * len(idx) if isinstance(v, tuple) and k in schema.names
                           and schema[k].dtype == "object" else v) for k, v in columns.items()}
            data = pd.DataFrame(columns, index=idx)
        new = conform(data, TABLES[table])
        clash = new.index.intersection(self._tables[table].index)
        if len(clash):
            raise SchemaError(f"table {table!r}: id {clash[0]!r} already exists")
        old = self._tables[table]
        merged = new if len(old) == 0 else pd.concat([old, new])
        self._tables[table] = conform(merged, TABLES[table])
        try:
            self.validate()
        except SchemaError:
            self._tables[table] = old
            raise
        return new.index

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
        g._tables = {n: df.copy() for n, df in self._tables.items()}
        return g

    def equals(self, other: Grid) -> bool:
        """True when every table (values, dtypes, index, column order) and the base are equal."""
        return (
            self.base_mva == other.base_mva
            and all(_frame_equal(df, other._tables[n]) for n, df in self._tables.items())
        )

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={len(df)}" for n, df in self._tables.items() if len(df))
        return f"Grid({self.name!r}, base_mva={self.base_mva:g}, {counts})"


def _frame_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True
