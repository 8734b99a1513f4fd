"""Declared schemas for component tables.

Every network layer (energy, water, transport) stores its components as pandas
DataFrames indexed by string ids.  Each table's columns are declared once, as
data, with :class:`Column`; validation, defaults, documentation and I/O read
that one declaration (see ``docs``/``twin schema``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Column", "TableSchema", "SchemaError", "empty_table", "conform"]


class SchemaError(ValueError):
    """A component table does not satisfy its declared schema."""


_DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "str": "object", "object": "object"}


@dataclass(frozen=True)
class Column:
    """One column of a component table.

    ``dtype`` is one of ``float``, ``int``, ``bool``, ``str``, ``object``;
    ``unit`` is a human-readable unit (``MW``, ``p.u.``, ``kV``, ``deg`` …) or
    ``""`` for dimensionless values; ``default`` fills missing values when the
    column is not ``required``; ``references`` names another table whose index
    the values must belong to (a foreign key); ``choices`` restricts the values.
    """

    name: str
    dtype: str
    unit: str = ""
    default: Any = None
    required: bool = False
    references: str | None = None
    choices: tuple | None = None
    doc: str = ""


@dataclass(frozen=True)
class TableSchema:
    """Schema of one component table (``bus``, ``line`` …)."""

    name: str
    columns: tuple[Column, ...]
    doc: str = ""
    index_doc: str = "string id"
    _by_name: Mapping[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    def __getitem__(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def describe(self) -> pd.DataFrame:
        """The schema as a table (column, dtype, unit, default, required, references, doc)."""
        return pd.DataFrame(
            [
                (c.name, c.dtype, c.unit, c.default, c.required, c.references, c.doc)
                for c in self.columns
            ],
            columns=["column", "dtype", "unit", "default", "required", "references", "doc"],
        ).set_index("column")


def empty_table(schema: TableSchema) -> pd.DataFrame:
    """An empty DataFrame with the schema's columns and dtypes."""
    df = pd.DataFrame({c.name: pd.Series(dtype=_DTYPES[c.dtype]) for c in schema.columns})
    df.index = pd.Index([], dtype="object", name="id")
    return df


def _coerce(series: pd.Series, col: Column, table: str) -> pd.Series:
    kind = col.dtype
    try:
        if kind == "float":
            return pd.to_numeric(series, errors="raise").astype("float64")
        if kind == "int":
            num = pd.to_numeric(series, errors="raise")
            if not np.all(np.isfinite(num.to_numpy(dtype=float))) or not np.all(
                num.to_numpy(dtype=float) == np.round(num.to_numpy(dtype=float))
            ):
                bad = series[~np.isfinite(num.to_numpy(dtype=float)) | (num != np.round(num))]
                raise ValueError(f"non-integer value {bad.iloc[0]!r} for id {bad.index[0]!r}")
            return num.astype("int64")
        if kind == "bool":
            if series.dtype == bool:
                return series
            vals = series.map(_to_bool)
            if vals.isna().any():
                bad = series[vals.isna()]
                raise ValueError(f"not a boolean: {bad.iloc[0]!r} for id {bad.index[0]!r}")
            return vals.astype(bool)
        if kind == "str":
            return series.map(lambda v: v if v is None or isinstance(v, str) else str(v)).astype(object)
        return series.astype(object)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"table {table!r}, column {col.name!r} ({kind}): {exc}") from None


def _to_bool(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return v.strip().lower() in ("true", "1", "yes")
    return None


def conform(df: pd.DataFrame, schema: TableSchema, *, allow_extra: bool = True) -> pd.DataFrame:
    """Return a copy of ``df`` with the schema's columns, dtypes and defaults.

    Missing required columns or missing values in them raise :class:`SchemaError`
    naming the table, column and element id.  Ids must be unique strings.  Extra
    columns are kept (after the declared ones) when ``allow_extra``.
    """
    out = pd.DataFrame(index=df.index.copy())
    if not out.index.is_unique:
        dup = out.index[out.index.duplicated()][0]
        raise SchemaError(f"table {schema.name!r}: duplicate id {dup!r}")
    out.index = pd.Index([str(i) for i in out.index], dtype="object", name="id")
    for col in schema.columns:
        if col.name in df.columns:
            s = pd.Series(df[col.name].to_numpy(), index=out.index)
            missing = s.isna()
            if missing.any():
                if col.required:
                    raise SchemaError(
                        f"table {schema.name!r}: required column {col.name!r} is missing "
                        f"a value for id {s.index[missing][0]!r}"
                    )
                if col.default is not None:
                    s = s.where(~missing, col.default)
        else:
            if col.required:
                raise SchemaError(f"table {schema.name!r}: required column {col.name!r} is missing")
            s = pd.Series([col.default] * len(out), index=out.index, dtype=object)
            if col.default is None and col.dtype == "float":
                s = s.astype("float64")
        if col.dtype in ("float",) and s.dtype == object:
            s = s.astype("float64") if len(s) == 0 else s
        out[col.name] = _coerce(s, col, schema.name)
        if col.choices is not None:
            bad = ~out[col.name].isin(col.choices)
            if bad.any():
                raise SchemaError(
                    f"table {schema.name!r}, column {col.name!r}: value {out[col.name][bad].iloc[0]!r} "
                    f"for id {out.index[bad][0]!r} is not one of {list(col.choices)}"
                )
    if allow_extra:
        for name in df.columns:
            if name not in schema._by_name:
                out[name] = df[name].to_numpy()
    else:
        extra = [c for c in df.columns if c not in schema._by_name]
        if extra:
            raise SchemaError(f"table {schema.name!r}: unknown columns {extra}")
    return out


def check_references(tables: Mapping[str, pd.DataFrame], schemas: Iterable[TableSchema]) -> None:
    """Raise :class:`SchemaError` for the first foreign key that points nowhere."""
    for schema in schemas:
        df = tables[schema.name]
        for col in schema.columns:
            if col.references is None or len(df) == 0:
                continue
            target = tables[col.references].index
            bad = ~df[col.name].isin(target)
            if bad.any():
                raise SchemaError(
                    f"table {schema.name!r}, id {df.index[bad][0]!r}: {col.name} = "
                    f"{df[col.name][bad].iloc[0]!r} is not a {col.references} id"
                )
