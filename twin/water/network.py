"""The water network: component tables plus patterns, curves, controls and options."""

from __future__ import annotations

import copy as _copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..schema import SchemaError
from ..tables import TableSet
from .schema import LINK_TABLES, NODE_TABLES, TABLES

__all__ = ["WaterNetwork", "Options", "Times", "Energy", "Curve", "Control", "Rule", "Premise", "RuleAction"]

CURVE_KINDS = ("HEAD", "EFFICIENCY", "VOLUME", "HEADLOSS", "VALVE", "GENERIC")


@dataclass
class Options:
    """Hydraulic options ([OPTIONS]); SI values.

    ``flow_units`` and ``pressure_units`` only choose the units an ``.inp``
    file is written in; the model itself is SI.
    """

    flow_units: str = "LPS"
    pressure_units: str = ""  # '' = the default of the flow units' system
    headloss: str = "H-W"  # H-W, D-W or C-M
    specific_gravity: float = 1.0
    viscosity_m2s: float = 1.1e-5 * 0.3048**2  # EPANET's default kinematic viscosity
    trials: int = 200
    accuracy: float = 0.001
    unbalanced: str = "STOP"  # STOP or CONTINUE
    unbalanced_extra_trials: int = 0
    pattern: str = "1"  # default demand pattern id
    demand_multiplier: float = 1.0
    emitter_exponent: float = 0.5
    emitter_backflow: bool = True
    check_freq: int = 2
    max_check: int = 10
    damp_limit: float = 0.0
    head_error_m: float = 0.0  # HEADERROR limit (0 = not used)
    flow_change_m3s: float = 0.0  # FLOWCHANGE limit (0 = not used)
    demand_model: str = "DDA"  # DDA or PDA
    minimum_pressure_m: float = 0.0
    required_pressure_m: float = 0.1 * 0.7034  # EPANET's default (0.1 psi)
    pressure_exponent: float = 0.5
    quality: list[str] = field(default_factory=list)  # quality-related option lines, kept verbatim


@dataclass
class Times:
    """Simulation clock ([TIMES]); all in seconds."""

    duration_s: int = 0
    hydraulic_step_s: int = 3600
    quality_step_s: int = 0
    pattern_step_s: int = 3600
    pattern_start_s: int = 0
    report_step_s: int = 3600
    report_start_s: int = 0
    rule_step_s: int = 0
    start_clocktime_s: int = 0
    statistic: str = "NONE"


@dataclass
class Energy:
    """Global energy data ([ENERGY]): price per kWh, its pattern, pump efficiency (%), demand charge."""

    price: float = 0.0
    price_pattern: str = ""
    efficiency_pct: float = 75.0
    demand_charge: float = 0.0


@dataclass
class Curve:
    """An x–y curve in SI.

    ``kind``: HEAD (flow m³/s → head m), EFFICIENCY (flow m³/s → %),
    VOLUME (level m → m³), HEADLOSS (flow m³/s → m), VALVE (% open → % of
    full-open flow coefficient) or GENERIC (unused; kept in file units).
    """

    kind: str
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=float)
        self.y = np.asarray(self.y, dtype=float)
        if self.kind not in CURVE_KINDS:
            raise ValueError(f"curve kind {self.kind!r} is not one of {CURVE_KINDS}")
        if self.x.shape != self.y.shape or self.x.ndim != 1 or len(self.x) == 0:
            raise ValueError("a curve needs one or more (x, y) points")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Curve) and self.kind == other.kind
                and np.array_equal(self.x, other.x) and np.array_equal(self.y, other.y))


@dataclass
class Control:
    """A simple control ([CONTROLS]).

    ``action`` is OPEN, CLOSED or SETTING (``setting`` in SI: speed for pumps,
    m for PRV/PSV/PBV, m³/s for FCV …).  ``condition`` is TIME (``time_s``
    after the start), CLOCKTIME (``time_s`` after midnight), ABOVE or BELOW
    (``value``: tank level above its bottom or junction pressure, m).
    """

    link: str
    action: str
    condition: str
    setting: float = math.nan
    node: str = ""
    value: float = math.nan
    time_s: int = 0
    enabled: bool = True


@dataclass
class Premise:
    """One clause of a rule: ``logic`` (IF/AND/OR) object id attribute relation value.

    Numeric values are SI (m, m³/s, hours for FILLTIME/DRAINTIME, seconds for
    TIME/CLOCKTIME); status values are words (OPEN, CLOSED, ACTIVE).
    """

    logic: str
    object: str
    id: str
    attribute: str
    relation: str
    value: float | str


@dataclass
class RuleAction:
    """A rule action: set ``attribute`` (STATUS or SETTING) of link ``id`` to ``value``."""

    object: str
    id: str
    attribute: str
    value: float | str


@dataclass
class Rule:
    """A rule-based control ([RULES])."""

    name: str
    premises: list[Premise]
    then_actions: list[RuleAction]
    else_actions: list[RuleAction] = field(default_factory=list)
    priority: float = 0.0
    enabled: bool = True


class WaterNetwork(TableSet):
    """A drinking-water network as component tables (pandas DataFrames indexed by id).

    Tables (declared in :mod:`twin.water.schema`, SI units): ``junction``,
    ``demand``, ``reservoir``, ``tank``, ``pipe``, ``pump``, ``valve``.  Node
    ids are unique across junctions, reservoirs and tanks; link ids across
    pipes, pumps and valves.  Besides the tables: ``patterns`` (id → array of
    multipliers), ``curves`` (id → :class:`Curve`), ``controls``
    (:class:`Control` list), ``rules`` (:class:`Rule` list), ``options``,
    ``times``, ``energy`` and ``extra_sections`` (sections we keep but do not
    simulate: quality, report, labels, backdrop, vertices … as raw lines).

    The network holds data only; :func:`~twin.water.simulate_hydraulics`
    returns results and never mutates it.
    """

    TABLES = TABLES
    LAYER = "water"

    def __init__(self, name: str = "", tables: Mapping[str, pd.DataFrame] | None = None):
        self.name = name
        self.title: list[str] = []
        self.patterns: dict[str, np.ndarray] = {}
        self.curves: dict[str, Curve] = {}
        self.controls: list[Control] = []
        self.rules: list[Rule] = []
        self.options = Options()
        self.times = Times()
        self.energy = Energy()
        self.extra_sections: dict[str, list[str]] = {}
        self._init_tables(tables)

    # -- node/link views ------------------------------------------------------
    def node_ids(self) -> pd.Index:
        """All node ids: junctions, then reservoirs, then tanks."""
        return pd.Index(np.concatenate([self._tables[t].index.to_numpy(dtype=object) for t in NODE_TABLES]),
                        dtype=object, name="id")

    def link_ids(self) -> pd.Index:
        """All link ids: pipes, then pumps, then valves."""
        return pd.Index(np.concatenate([self._tables[t].index.to_numpy(dtype=object) for t in LINK_TABLES]),
                        dtype=object, name="id")

    def node_type(self) -> pd.Series:
        """Node id → 'junction' / 'reservoir' / 'tank'."""
        return pd.Series(np.concatenate([[t] * len(self._tables[t]) for t in NODE_TABLES]).astype(object),
                         index=self.node_ids())

    def link_type(self) -> pd.Series:
        """Link id → 'pipe' / 'pump' / 'valve'."""
        return pd.Series(np.concatenate([[t] * len(self._tables[t]) for t in LINK_TABLES]).astype(object),
                         index=self.link_ids())

    def validate(self) -> None:
        """Check ids, foreign keys, pattern and curve references; raise SchemaError naming the element.

        Plain set look-ups (not pandas operations): this runs before every simulation.
        """
        ids: dict[str, set] = {}
        for group, names in (("node", NODE_TABLES), ("link", LINK_TABLES)):
            seen: set = set()
            for t in names:
                idx = self._tables[t].index
                new = set(idx)
                if len(new) != len(idx) or not seen.isdisjoint(new):
                    dup = next(i for i in idx if i in seen or list(idx).count(i) > 1)
                    owners = [n for n in names if dup in self._tables[n].index]
                    raise SchemaError(f"{group} id {dup!r} is used twice ({', '.join(owners)}); "
                                      f"{group} ids must be unique across {', '.join(names)}")
                seen |= new
            ids[group] = seen
        ids["junction"] = set(self._tables["junction"].index)
        for schema in TABLES.values():
            df = self._tables[schema.name]
            if not len(df):
                continue
            for col in schema.columns:
                if col.references is None:
                    continue
                vals = df[col.name].to_numpy()
                target = ids[col.references]
                if not target.issuperset(vals):
                    k = next(i for i, v in enumerate(vals) if v not in target)
                    raise SchemaError(f"table {schema.name!r}, id {df.index[k]!r}: {col.name} = {vals[k]!r} "
                                      f"is not a {col.references} id")
        for table, col in (("demand", "pattern"), ("reservoir", "head_pattern"), ("pump", "speed_pattern"),
                           ("pump", "price_pattern")):
            self._check_ids(table, col, self.patterns, "pattern")
        for table, col in (("tank", "volume_curve"), ("pump", "head_curve"), ("pump", "efficiency_curve"),
                           ("valve", "curve")):
            self._check_ids(table, col, self.curves, "curve")
        for t in LINK_TABLES:
            df = self._tables[t]
            if len(df):
                same = df["node1"].to_numpy() == df["node2"].to_numpy()
                if same.any():
                    k = int(np.flatnonzero(same)[0])
                    raise SchemaError(f"{t} {df.index[k]!r} starts and ends at the same node "
                                      f"{df['node1'].iat[k]!r}")

    def _check_ids(self, table: str, col: str, known: Mapping[str, object], what: str) -> None:
        df = self._tables[table]
        if not len(df):
            return
        vals = df[col].to_numpy()
        allowed = set(known) | {""}
        if not allowed.issuperset(vals):
            k = next(i for i, v in enumerate(vals) if v not in allowed)
            raise SchemaError(f"table {table!r}, id {df.index[k]!r}: {col} {vals[k]!r} is not a defined {what}")

    def copy(self) -> WaterNetwork:
        """A deep copy."""
        wn = WaterNetwork(self.name)
        for attr in ("title", "patterns", "curves", "controls", "rules", "options", "times", "energy",
                     "extra_sections"):
            setattr(wn, attr, _copy.deepcopy(getattr(self, attr)))
        self._copy_tables_to(wn)
        return wn

    def equals(self, other: WaterNetwork) -> bool:
        """True when tables, patterns, curves, controls, rules, options, times and energy are equal."""
        return (
            self._tables_equal(other)
            and self.patterns.keys() == other.patterns.keys()
            and all(np.array_equal(v, other.patterns[k]) for k, v in self.patterns.items())
            and self.curves == other.curves
            and self.controls == other.controls and self.rules == other.rules
            and self.options == other.options and self.times == other.times and self.energy == other.energy
        )

    def __repr__(self) -> str:
        return f"WaterNetwork({self.name!r}, {self._counts()})"
