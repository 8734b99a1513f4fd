"""The road network: nodes, links, zones, OD demand and vehicle classes as tables."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..schema import SchemaError, check_references
from ..tables import TableSet
from .schema import TABLES

__all__ = ["TransportNetwork"]


class TransportNetwork(TableSet):
    """A road network as component tables (pandas DataFrames indexed by string id).

    Tables (declared in :mod:`twin.transport.schema`): ``node``, ``link``, ``zone``, ``od``,
    ``vehicle_class`` (a ``car`` class with PCE 1 always exists).  ``length_unit`` names the unit of
    ``link.length`` (TNTP files differ: ft, mi, km …; ``""`` when unknown).

    The network holds data only; :func:`~twin.transport.assign_traffic` takes closures and
    capacity changes as arguments and never edits it.
    """

    TABLES = TABLES
    LAYER = "transport"

    def __init__(self, name: str = "", tables: Mapping[str, pd.DataFrame] | None = None, length_unit: str = ""):
        self.name = name
        self.length_unit = length_unit
        tables = dict(tables or {})
        classes = tables.get("vehicle_class")
        if classes is None or "car" not in classes.index:  # the default class exists before the od table is checked
            car = pd.DataFrame({"pce": [1.0], "name": ["passenger car"]}, index=["car"])
            tables["vehicle_class"] = car if classes is None else pd.concat([classes, car])
        self._init_tables(tables)

    def validate(self) -> None:
        """Check foreign keys and value ranges; raise SchemaError naming the element."""
        check_references(self._tables, TABLES.values())
        link = self._tables["link"]
        if len(link):
            for col, ok, what in (("capacity_veh_h", link["capacity_veh_h"].to_numpy() > 0, "positive"),
                                  ("free_flow_time_min", link["free_flow_time_min"].to_numpy() >= 0, ">= 0"),
                                  ("alpha", link["alpha"].to_numpy() >= 0, ">= 0"),
                                  ("beta", link["beta"].to_numpy() >= 0, ">= 0")):
                if not ok.all():
                    k = int(np.flatnonzero(~ok)[0])
                    raise SchemaError(f"link {link.index[k]!r}: {col} = {link[col].iat[k]!r} must be {what}")
            loop = link["from_node"].to_numpy() == link["to_node"].to_numpy()
            if loop.any():
                k = int(np.flatnonzero(loop)[0])
                raise SchemaError(f"link {link.index[k]!r} starts and ends at node {link['from_node'].iat[k]!r}")
        od = self._tables["od"]
        if len(od) and not (od["trips_veh_h"].to_numpy() >= 0).all():
            k = int(np.flatnonzero(~(od["trips_veh_h"].to_numpy() >= 0))[0])
            raise SchemaError(f"od row {od.index[k]!r}: negative demand {od['trips_veh_h'].iat[k]!r}")

    def copy(self) -> TransportNetwork:
        """A deep copy."""
        tn = TransportNetwork(self.name, length_unit=self.length_unit)
        self._copy_tables_to(tn)
        return tn

    def equals(self, other: TransportNetwork) -> bool:
        """True when every table and the length unit are equal."""
        return self.length_unit == other.length_unit and self._tables_equal(other)

    def __repr__(self) -> str:
        return f"TransportNetwork({self.name!r}, {self._counts()})"
