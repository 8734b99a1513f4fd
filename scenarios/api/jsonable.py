"""JSON for the API: tables as records with unit-suffixed column names, NaN and infinities as null."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["jsonable", "records"]


def jsonable(v: Any) -> Any:
    """``v`` with numpy scalars and arrays as Python values, non-finite floats as None, times as ISO text."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray, pd.Index)):
        return [jsonable(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, (pd.Timestamp, datetime, date)):
        return v.isoformat()
    if v is None or isinstance(v, str):
        return v
    if v is pd.NA or v is pd.NaT:
        return None
    return str(v)


def records(df: pd.DataFrame, index_name: str = "id", columns: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The table as a list of rows: the index as ``index_name`` then the columns (renamed by ``columns``, which
    also selects them when given)."""
    frame = df if columns is None else df[list(columns)].rename(columns=columns)
    out = []
    idx = [jsonable(i) for i in frame.index]
    cols = [str(c) for c in frame.columns]
    values = frame.to_numpy(dtype=object)
    for i, row in zip(idx, values, strict=True):
        rec = {index_name: i}
        rec.update({c: jsonable(x) for c, x in zip(cols, row, strict=True)})
        out.append(rec)
    return out
