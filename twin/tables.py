"""A network as a set of schema-declared component tables.

:class:`TableSet` is what the energy :class:`~twin.energy.grid.Grid` and the
water :class:`~twin.water.network.WaterNetwork` share: tables reachable as
``net.<table>`` or ``net["table"]``, replaced through their schema, and a
vectorised :meth:`TableSet.add`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pandas as pd

from .schema import SchemaError, TableSchema, conform, empty_table

__all__ = ["TableSet"]


class TableSet:
    """Component tables (pandas DataFrames indexed by string id) declared by ``TABLES``.

    Subclasses set ``TABLES`` (name → :class:`~twin.schema.TableSchema`) and
    ``LAYER`` (a word for error messages) and override :meth:`validate` for
    their cross-table rules.
    """

    TABLES: ClassVar[Mapping[str, TableSchema]] = {}
    LAYER: ClassVar[str] = ""

    def _init_tables(self, tables: Mapping[str, pd.DataFrame] | None) -> None:
        object.__setattr__(self, "_tables", {n: empty_table(s) for n, s in self.TABLES.items()})
        if tables:
            for tname, df in tables.items():
                self._check_name(tname)
                self._tables[tname] = conform(df, self.TABLES[tname])
            self.validate()

    @classmethod
    def _check_name(cls, table: str) -> None:
        if table not in cls.TABLES:
            raise KeyError(f"unknown {cls.LAYER} table {table!r}; tables are {sorted(cls.TABLES)}")

    @classmethod
    def schema(cls, table: str) -> pd.DataFrame:
        """The declared schema of ``table`` (column, dtype, unit, default, …)."""
        cls._check_name(table)
        return cls.TABLES[table].describe()

    def __getitem__(self, table: str) -> pd.DataFrame:
        self._check_name(table)
        return self._tables[table]

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.TABLES:
            return self._tables[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.TABLES:  # net.table = df replaces the table, conformed and checked
            self.set_table(name, value)
        else:
            object.__setattr__(self, name, value)

    def tables(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Iterate over (name, table) pairs."""
        yield from self._tables.items()

    def set_table(self, table: str, df: pd.DataFrame) -> None:
        """Replace a whole table (conformed to its schema; references checked)."""
        self._check_name(table)
        old = self._tables[table]
        self._tables[table] = conform(df, self.TABLES[table])
        try:
            self.validate()
        except SchemaError:
            self._tables[table] = old
            raise

    def add(self, table: str, data: pd.DataFrame | None = None, *, index: Any = None, **columns: Any) -> pd.Index:
        """Append components to ``table`` and return their ids.

        ``data`` is a DataFrame indexed by id; or give columns as keyword
        arguments (scalars broadcast, sequences vectorised) with ``index`` the
        id or ids.  Missing optional columns take their declared defaults.
        """
        self._check_name(table)
        schema = self.TABLES[table]
        if data is None:
            if index is None:
                raise ValueError("add(): give a DataFrame or index= ids with column keywords")
            idx = pd.Index([index] if isinstance(index, (str, int)) else list(index))
            # a tuple for an object column (e.g. cost coefficients) is one value, not one per element
            columns = {k: ([v] * len(idx) if isinstance(v, tuple) and k in schema.names
                           and schema[k].dtype == "object" else v) for k, v in columns.items()}
            data = pd.DataFrame(columns, index=idx)
        new = conform(data, schema)
        clash = new.index.intersection(self._tables[table].index)
        if len(clash):
            raise SchemaError(f"table {table!r}: id {clash[0]!r} already exists")
        old = self._tables[table]
        merged = new if len(old) == 0 else pd.concat([old, new])
        self._tables[table] = conform(merged, schema)
        try:
            self.validate()
        except SchemaError:
            self._tables[table] = old
            raise
        return new.index

    def validate(self) -> None:  # pragma: no cover - overridden
        """Check foreign keys and cross-table rules."""

    def _copy_tables_to(self, other: TableSet) -> None:
        object.__setattr__(other, "_tables", {n: df.copy() for n, df in self._tables.items()})

    def _tables_equal(self, other: TableSet) -> bool:
        return all(frame_equal(df, other._tables[n]) for n, df in self._tables.items())

    def _counts(self) -> str:
        return ", ".join(f"{n}={len(df)}" for n, df in self._tables.items() if len(df))


def frame_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when two frames are exactly equal (values, dtypes, index, column order)."""
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True
