"""The energy network: a set of component tables and a system base."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
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

    #: time-varying attributes a series may set ("table.column"); those marked * exist only as series
    SERIES = {
        "load.p_mw": "MW, the load's demand",
        "generator.p_max_pu": "* availability, fraction of p_max_mw (renewables)",
        "generator.p_min_pu": "* minimum output, fraction of p_max_mw",
        "generator.marginal_cost": "* cost per MWh (overrides generator_cost's linear term), e.g. an import price",
        "storage.inflow_mw": "* energy inflow into the store, MW",
    }

    def __init__(self, base_mva: float = 100.0, name: str = "", tables: Mapping[str, pd.DataFrame] | None = None):
        if not base_mva > 0:
            raise ValueError(f"base_mva must be positive, got {base_mva!r}")
        self.base_mva = float(base_mva)
        self.name = name
        self.snapshots = pd.Index([], name="snapshot")
        self.series: dict[str, pd.DataFrame] = {}
        self._init_tables(tables)

    def set_snapshots(self, snapshots: Iterable) -> None:
        """Set the time index of the grid's series (hourly or finer timestamps, or any ordered labels).

        Existing series must have the same index; use before :meth:`set_series`."""
        idx = pd.Index(snapshots, name="snapshot")
        if not idx.is_unique:
            raise SchemaError(f"snapshots: {idx[idx.duplicated()][0]!r} appears twice")
        for name, df in self.series.items():
            if not df.index.equals(idx):
                raise SchemaError(f"series {name!r} has another time index; drop it or set the same snapshots")
        self.snapshots = idx

    def set_series(self, name: str, df: pd.DataFrame) -> None:
        """Set a time series ``"table.column"`` (rows = snapshots, columns = element ids).

        Columns not given keep the static value; the index must equal ``self.snapshots`` (which a first
        series sets when empty); values must be finite.  Errors name the series, element and time."""
        if name not in self.SERIES:
            raise SchemaError(f"unknown series {name!r}; series are {sorted(self.SERIES)}")
        table = name.split(".")[0]
        df = pd.DataFrame(df).astype(float)
        if not len(self.snapshots):
            self.set_snapshots(df.index)
        if not df.index.equals(self.snapshots):
            raise SchemaError(f"series {name!r}: its index ({len(df.index)} rows, first {df.index[:1].tolist()}) "
                              f"is not the grid's snapshots ({len(self.snapshots)}, first "
                              f"{self.snapshots[:1].tolist()})")
        df.columns = [str(c) for c in df.columns]
        unknown = [c for c in df.columns if c not in self._tables[table].index]
        if unknown:
            raise SchemaError(f"series {name!r}: {unknown[0]!r} is not a {table} id")
        values = df.to_numpy()
        if not np.isfinite(values).all():
            r, c = np.argwhere(~np.isfinite(values))[0]
            raise SchemaError(f"series {name!r}: {table} {df.columns[c]!r} at {df.index[r]!r} is {values[r, c]!r}")
        self.series[name] = df

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
        g.snapshots = self.snapshots.copy()
        g.series = {k: v.copy() for k, v in self.series.items()}
        return g

    def equals(self, other: Grid) -> bool:
        """True when every table (values, dtypes, index, column order) and the base are equal."""
        return self.base_mva == other.base_mva and self._tables_equal(other)

    def __repr__(self) -> str:
        return f"Grid({self.name!r}, base_mva={self.base_mva:g}, {self._counts()})"
