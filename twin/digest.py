"""Content digests of tables, arrays and network objects (SHA-256).

Equal content gives an equal digest whatever the frames' memory layout or construction; any difference
in a value, an id, a column name or a dtype kind gives another digest (a few equal objects digest apart —
``-0.0`` and ``0.0``, a dict built in another order —, which only costs a recomputation wherever a digest
keys a cache).  Used to key what the scenario runner computes once per process and reuses
(:mod:`scenarios.reuse`) and the day-ahead model's structure (:func:`solvers.day_ahead_structure`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pickle
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["content_digest", "feed"]


def _array(h: Any, a: np.ndarray) -> None:
    if a.dtype.kind in "biuf":
        a = np.ascontiguousarray(a, dtype=np.float64 if a.dtype.kind == "f" else a.dtype)
        if a.dtype.kind == "f":
            a = np.where(np.isnan(a), np.nan, a)  # one NaN payload
        h.update(f"A{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
        return
    h.update(f"O{a.shape}".encode())
    for v in a.ravel().tolist():
        feed(h, v)


def feed(h: Any, obj: Any) -> None:
    """Feed ``obj`` into the hash object ``h``: frames, series, indexes, arrays, table sets (every table
    and attribute), dataclasses, mappings, sequences and scalars; anything else by its pickle."""
    from .tables import TableSet

    if obj is None or isinstance(obj, (bool, int, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, float):
        h.update(b"f:nan;" if math.isnan(obj) else f"f:{obj!r};".encode())
    elif isinstance(obj, np.generic):
        feed(h, obj.item())
    elif isinstance(obj, pd.DataFrame):
        h.update(b"DF")
        feed(h, [str(c) for c in obj.columns])
        feed(h, obj.index)
        for c in obj.columns:
            _array(h, obj[c].to_numpy())
    elif isinstance(obj, pd.Series):
        h.update(f"S{obj.name!r}".encode())
        feed(h, obj.index)
        _array(h, obj.to_numpy())
    elif isinstance(obj, pd.Index):
        h.update(b"I")
        _array(h, obj.to_numpy())
    elif isinstance(obj, np.ndarray):
        _array(h, obj)
    elif isinstance(obj, TableSet):
        h.update(f"T{type(obj).__name__}".encode())
        for name, df in obj.tables():
            feed(h, name)
            feed(h, df)
        feed(h, {k: v for k, v in vars(obj).items() if k != "_tables"})
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"D{type(obj).__name__}".encode())
        for f in dataclasses.fields(obj):
            feed(h, f.name)
            feed(h, getattr(obj, f.name))
    elif isinstance(obj, dict):
        h.update(f"M{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            feed(h, k)
            feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            feed(h, v)
    else:
        h.update(b"P")
        h.update(pickle.dumps(obj, protocol=4))


def content_digest(*objs: Any) -> str:
    """The SHA-256 hex digest of ``objs`` (see the module docstring)."""
    h = hashlib.sha256()
    for obj in objs:
        feed(h, obj)
    return h.hexdigest()
