"""Read and write EPANET 2.2 ``.inp`` files.

:func:`read_inp` converts the file's units (any EPANET flow units, US or SI)
to SI with EPANET's own factors (see :mod:`twin.water.units`); :func:`write_inp`
converts back to ``wn.options.flow_units``.  Sections that are not simulated
(quality, report, map data) are kept as raw lines and written back unchanged.

Errors name the file, the line and the problem; all errors of a file are
reported together (:class:`InpError`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text
from ..textnum import shortest
from . import units as U
from .compile import fit_pump_curve, illegal_valve_pairs
from .network import Control, Curve, Premise, Rule, RuleAction, WaterNetwork
from .schema import VALVE_TYPES

__all__ = ["read_inp", "write_inp", "InpError"]

SECTIONS = (
    "TITLE", "JUNCTIONS", "RESERVOIRS", "TANKS", "PIPES", "PUMPS", "VALVES", "DEMANDS", "STATUS",
    "PATTERNS", "CURVES", "CONTROLS", "RULES", "ENERGY", "EMITTERS", "OPTIONS", "TIMES", "REPORT",
    "COORDINATES", "VERTICES", "LABELS", "TAGS", "BACKDROP", "QUALITY", "SOURCES", "REACTIONS",
    "MIXING", "LEAKAGE", "ROUGHNESS", "END",
)  # EPANET reads and ignores [ROUGHNESS]
#: sections kept verbatim (not simulated)
RAW_SECTIONS = ("REPORT", "VERTICES", "LABELS", "BACKDROP", "SOURCES", "REACTIONS", "MIXING", "LEAKAGE")


class InpError(ValueError):
    """One or more problems in an ``.inp`` file; ``errors`` lists (line, message)."""

    def __init__(self, path: str, errors: list[tuple[int, str]]):
        self.path = path
        self.errors = errors
        lines = [f"{path}:{ln}: {msg}" if ln else f"{path}: {msg}" for ln, msg in errors]
        more = f" ({len(errors)} errors)" if len(errors) > 1 else ""
        super().__init__(f"invalid EPANET input file{more}:\n" + "\n".join(lines))


@dataclass
class _Line:
    no: int
    tokens: list[str]
    comment: str
    raw: str


#: EPANET's tokens: separated by space, tab, CR or LF; a token that starts with a quote runs to the next quote
_TOKEN = re.compile(r'"([^"\r\n]*)"?|([^ \t\r\n]+)')


def _split(text: str) -> tuple[list[str], str]:
    body, _, comment = text.partition(";")
    return [a if a else b for a, b in _TOKEN.findall(body)], comment.strip()


def _match(token: str, keyword: str) -> bool:
    """EPANET's keyword match: the token starts with the keyword (case-insensitive)."""
    return token.upper().startswith(keyword)


def _atol(text: str) -> int:
    """C's atol(): the leading integer of ``text`` (0 if none)."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def _id_range(first: str, last: str, ids) -> list[str]:
    """EPANET's id ranges ([STATUS], [QUALITY]): numeric when both ends are numbers, else lexicographic."""
    i1, i2 = _atol(first), _atol(last)
    if i1 > 0 and i2 > 0:
        return [i for i in ids if i1 <= _atol(i) <= i2]
    b1, b2 = first.encode("latin-1", "replace"), last.encode("latin-1", "replace")
    return [i for i in ids if b1 <= i.encode("latin-1", "replace") <= b2]


def _float(token: str) -> float:
    """A number as C's strtod() reads it whole (Python's float() would also take '1_000')."""
    if "_" in token:
        raise ValueError(token)
    return float(token)


def _pipe_status(token: str) -> str:
    return next((w for w in ("CV", "CLOSED", "OPEN") if _match(token, w)), "")


def _hours(value: str, unit: str = "") -> float | None:
    """EPANET's time parser: '5', '5 min', '13:50', '1:50 pm' → hours (None if invalid)."""
    parts = value.split(":")
    if len(parts) > 3:
        return None
    try:
        y = [_float(p) for p in parts]
    except ValueError:
        return None
    if len(y) == 1 and unit:
        u = unit.upper()
        for key, f in (("SEC", 1 / 3600), ("MIN", 1 / 60), ("HOU", 1.0), ("DAY", 24.0)):
            if u.startswith(key):
                return y[0] * f
    h = y[0] + (y[1] / 60 if len(y) > 1 else 0) + (y[2] / 3600 if len(y) > 2 else 0)
    if not unit:
        return h
    u = unit.upper()
    if u.startswith("AM") or u.startswith("PM"):
        if h >= 13:
            return None
        if u.startswith("AM"):
            return h - 12 if h >= 12 else h
        return h if h >= 12 else h + 12
    return None


def _seconds_token(tokens: list[str]) -> int | None:
    """Time value at the end of a [TIMES]/[CONTROLS] line, in seconds."""
    last = tokens[-1]
    try:
        h = _float(last)
    except ValueError:
        h = _hours(last)
        if h is None and len(tokens) >= 2:
            h = _hours(tokens[-2], last)
    if h is None or h < 0:
        return None
    return int(3600.0 * h + 0.5)


def _fmt_time(s: int) -> str:
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def _time_text(s: int) -> str:
    """A control or rule time that EPANET reads back as ``s`` seconds.

    EPANET converts '0:01:01' to hours (0 + 1/60 + 1/3600) and truncates 3600·h to whole seconds,
    which gives 60, not 61; fall back to decimal hours that survive the truncation.
    """
    h, m, sec = s // 3600, (s % 3600) // 60, s % 60
    texts = ([f"{h}:{m:02d}"] if sec == 0 else []) + [f"{h}:{m:02d}:{sec:02d}"]
    guess = s / 3600.0
    texts += [_g(float(f"{guess:.{d}g}")) for d in range(1, 18)]
    x = guess
    for _ in range(8):
        x = math.nextafter(x, math.inf)
        texts.append(_g(x))
    for text in texts:
        hours = _hours(text)
        if hours is not None and int(3600.0 * hours) == s:
            return text
    return _fmt_time(s)


class _Reader:
    def __init__(self, path: str):
        self.path = path
        self.errors: list[tuple[int, str]] = []
        self.wn = WaterNetwork(Path(path).stem)

    def err(self, line: _Line | int, msg: str) -> None:
        self.errors.append((line.no if isinstance(line, _Line) else line, msg))

    def num(self, line: _Line, i: int, what: str, *, minimum: float | None = None,
            positive: bool = False) -> float | None:
        try:
            tok = line.tokens[i]
        except IndexError:
            self.err(line, f"missing {what}")
            return None
        try:
            v = _float(tok)
        except ValueError:
            self.err(line, f"{what} {tok!r} is not a number")
            return None
        if not math.isfinite(v):
            self.err(line, f"{what} {tok!r} is not finite")
            return None
        if positive and v <= 0:
            self.err(line, f"{what} must be positive, got {tok}")
            return None
        if minimum is not None and v < minimum:
            self.err(line, f"{what} must be >= {minimum:g}, got {tok}")
            return None
        return v

    # -- pass 1: sections -------------------------------------------------------
    def split_sections(self, text: str) -> dict[str, list[_Line]]:
        sections: dict[str, list[_Line]] = {}
        current: str | None = None
        # lines end at LF only, as for EPANET's fgets() (str.splitlines() would also split at U+0085, a
        # Latin-1 character, and at a lone CR); a CR before the LF is whitespace
        for no, raw in enumerate(text.split("\n"), start=1):
            raw = raw.rstrip("\r")
            stripped = raw.strip(" \t\r")
            if stripped.startswith("["):
                name = stripped[1:stripped.find("]")].strip().upper() if "]" in stripped else ""
                if name not in SECTIONS:
                    self.err(no, f"unknown section {stripped.partition(';')[0].strip()!r}")
                    current = "?"  # its lines are skipped
                    continue
                current = name
                if name == "END":
                    break
                sections.setdefault(name, [])
                continue
            if current is None:
                if stripped and not stripped.startswith(";"):
                    self.err(no, "data outside of any [SECTION]")
                continue
            if current == "?":
                continue
            tokens, comment = _split(raw)
            if current in RAW_SECTIONS or current == "TITLE":
                if current == "TITLE":
                    if stripped:
                        sections[current].append(_Line(no, tokens, comment, raw.strip()))
                elif stripped and not stripped.startswith(";"):
                    sections[current].append(_Line(no, tokens, comment, raw.strip()))
                continue
            if tokens:
                sections[current].append(_Line(no, tokens, comment, raw))
        return sections

    # -- options and units --------------------------------------------------------
    def read_options(self, lines: list[_Line]) -> None:
        o = self.wn.options
        pmin, preq = 0.0, 0.1  # EPANET's defaults, in the file's pressure units (MINPDIFF = 0.1)
        viscosity = None
        for ln in lines:
            t = ln.tokens
            k0 = t[0].upper()
            n = len(t) - 1
            if _match(k0, "UNITS"):
                if n >= 1:
                    u = next((f for f in U.PER_CFS if _match(t[1], f)), "")
                    if not u:
                        self.err(ln, f"unknown flow units {t[1]!r} (expected one of {', '.join(U.PER_CFS)})")
                    else:
                        o.flow_units = u
                continue
            if _match(k0, "PRESSURE") and n >= 1 and not _match(t[1], "EXPO"):
                u = next((p for p in ("PSI", "KPA", "METERS", "BAR", "FEET") if _match(t[1], p)), "")
                if not u:
                    self.err(ln, f"unknown pressure units {t[1]!r} (PSI, KPA, METERS, BAR or FEET)")
                else:
                    o.pressure_units = u
                continue
            if _match(k0, "HEADLOSS"):
                if n >= 1:
                    u = next((h for h in ("H-W", "D-W", "C-M") if _match(t[1], h)), "")
                    if not u:
                        self.err(ln, f"unknown headloss formula {t[1]!r} (H-W, D-W or C-M)")
                    else:
                        o.headloss = u
                continue
            if _match(k0, "UNBALANCED"):
                if n >= 1 and _match(t[1], "STOP"):
                    o.unbalanced, o.unbalanced_extra_trials = "STOP", 0
                elif n >= 1 and _match(t[1], "CONTINUE"):
                    o.unbalanced = "CONTINUE"
                    o.unbalanced_extra_trials = _atol(t[2]) if n >= 2 else 0
                else:
                    self.err(ln, "UNBALANCED must be STOP or CONTINUE [n]")
                continue
            if _match(k0, "PATTERN"):
                if n >= 1:
                    o.pattern = t[1]
                continue
            if _match(k0, "DEMAND") and n >= 1 and _match(t[1], "MODEL"):
                if n >= 2 and (_match(t[2], "DDA") or _match(t[2], "PDA")):
                    o.demand_model = t[2].upper()[:3]
                else:
                    self.err(ln, "DEMAND MODEL must be DDA or PDA")
                continue
            if _match(k0, "BACKFLOW") and n >= 2:
                o.emitter_backflow = t[2].upper().startswith("Y")
                continue
            if any(_match(k0, k) for k in ("QUALITY", "DIFFUSIVITY", "TOLERANCE", "MAP", "HYDRAULIC",
                                           "VERIFY", "SEGMENTS")):
                o.quality.append(" ".join(t))
                continue
            nvalue = 2 if any(_match(k0, k) for k in ("SPEC", "EMIT", "DEMAND", "MINI", "REQ", "PRESSURE",
                                                     "PREC")) else 1
            if n < nvalue:
                continue
            y = self.num(ln, nvalue, f"option {k0}")
            if y is None:
                continue
            if _match(k0, "DAMPLIMIT"):
                o.damp_limit = y
            elif _match(k0, "FLOWCHANGE"):
                o.flow_change_m3s = y  # converted once flow units are known
            elif _match(k0, "HEADERROR"):
                o.head_error_m = y
            elif _match(k0, "MINI"):
                # EPANET: a default required pressure follows the minimum; one already given must exceed it
                if y < 0:
                    self.err(ln, f"MINIMUM PRESSURE must be >= 0, got {t[nvalue]}")
                elif preq == 0.1:
                    pmin, preq = y, y + 0.1
                elif preq - y < 0.1:
                    self.err(ln, "MINIMUM PRESSURE must be at least 0.1 below REQUIRED PRESSURE (EPANET error 208)")
                else:
                    pmin = y
            elif _match(k0, "REQ"):
                if y < 0:
                    self.err(ln, f"REQUIRED PRESSURE must be >= 0, got {t[nvalue]}")
                elif y - pmin < 0.1:
                    self.err(ln, "REQUIRED PRESSURE must exceed MINIMUM PRESSURE by at least 0.1 (EPANET error 208)")
                else:
                    preq = y
            elif _match(k0, "PRESSURE"):
                if y < 0:
                    self.err(ln, f"PRESSURE EXPONENT must be >= 0, got {t[nvalue]}")
                o.pressure_exponent = y
            elif y <= 0:
                self.err(ln, f"option {k0} must be positive, got {t[nvalue]}")
            elif _match(k0, "VISC"):
                viscosity = y
            elif _match(k0, "SPEC"):
                o.specific_gravity = y
            elif _match(k0, "TRIALS"):
                o.trials = int(y)
            elif _match(k0, "ACCURACY"):
                o.accuracy = min(max(y, 1e-5), 1e-1)  # EPANET clamps the file's value
            elif _match(k0, "CHECKFREQ"):
                o.check_freq = int(y)
            elif _match(k0, "MAXCHECK"):
                o.max_check = int(y)
            elif _match(k0, "EMIT"):
                o.emitter_exponent = y
            elif _match(k0, "DEMAND"):
                o.demand_multiplier = y
            elif any(_match(k0, k) for k in ("HTOL", "QTOL", "RQTOL")):
                self.err(ln, f"option {k0} (solver tolerance) is not supported; remove it")
            else:
                self.err(ln, f"unknown option {t[0]!r}")
        if not o.pressure_units:
            o.pressure_units = U.default_pressure_units(o.flow_units)
        # conversions that need the units
        self.q = U.flow_factor(o.flow_units)
        self.L = U.length_factor(o.flow_units)
        self.D = U.diameter_factor(o.flow_units)
        self.P = U.pressure_factor(o.pressure_units, o.specific_gravity)
        o.flow_change_m3s *= self.q
        o.head_error_m *= self.L
        # EPANET: viscosity > 1e-3 is a multiplier of the default, else an actual value
        if viscosity is not None:
            o.viscosity_m2s = viscosity * U.VISCOSITY if viscosity > 1e-3 else viscosity * self.L**2
        else:
            o.viscosity_m2s = U.VISCOSITY
        o.minimum_pressure_m = pmin * self.P
        o.required_pressure_m = preq * self.P

    def read_times(self, lines: list[_Line]) -> None:
        tm = self.wn.times
        for ln in lines:
            t = ln.tokens
            k0 = t[0].upper()
            if len(t) < 2:
                self.err(ln, f"missing value for {t[0]}")
                continue
            if _match(k0, "STATISTIC"):
                v = t[-1].upper()
                if not any(v.startswith(s) for s in ("NONE", "NO", "AVG", "AVERAGE", "MIN", "MAX", "RANGE")):
                    self.err(ln, f"unknown statistic {t[-1]!r}")
                tm.statistic = v
                continue
            s = _seconds_token(t)
            if s is None:
                self.err(ln, f"invalid time {' '.join(t[1:])!r}")
                continue
            if _match(k0, "DURATION"):
                tm.duration_s = s
            elif _match(k0, "HYDRAULIC"):
                tm.hydraulic_step_s = s
            elif _match(k0, "QUALITY"):
                tm.quality_step_s = s
            elif _match(k0, "RULE"):
                tm.rule_step_s = s
            elif _match(k0, "MINIMUM"):
                pass
            elif _match(k0, "PATTERN") and _match(t[1], "TIME"):
                tm.pattern_step_s = s
            elif _match(k0, "PATTERN") and _match(t[1], "START"):
                tm.pattern_start_s = s
            elif _match(k0, "REPORT") and _match(t[1], "TIME"):
                tm.report_step_s = s
            elif _match(k0, "REPORT") and _match(t[1], "START"):
                tm.report_start_s = s
            elif _match(k0, "START"):
                tm.start_clocktime_s = s % U.SEC_PER_DAY
            else:
                self.err(ln, f"unknown [TIMES] keyword {t[0]!r}")

    # -- components -----------------------------------------------------------------
    def read(self, text: str) -> WaterNetwork:
        sec = self.split_sections(text)
        wn = self.wn
        wn.title = [ln.raw for ln in sec.get("TITLE", [])]
        self.read_options(sec.get("OPTIONS", []))
        self.read_times(sec.get("TIMES", []))
        self.read_patterns(sec.get("PATTERNS", []))
        raw_curves = self.read_curves(sec.get("CURVES", []))
        nodes: dict[str, tuple[str, int]] = {}  # id -> (table, line)
        links: dict[str, tuple[str, int]] = {}

        def new_id(registry: dict, kind: str, table: str, ln: _Line) -> bool:
            ident = ln.tokens[0]
            if ident in registry:
                self.err(ln, f"duplicate {kind} id {ident!r} (first defined on line {registry[ident][1]})")
                return False
            if len(ident) > 31:
                self.err(ln, f"{kind} id {ident!r} is longer than EPANET's 31 characters")
            registry[ident] = (table, ln.no)
            return True

        def pattern_ref(ln: _Line, i: int) -> str:
            if len(ln.tokens) <= i or ln.tokens[i] in ("", "*"):
                return ""
            p = ln.tokens[i]
            if p not in wn.patterns:
                self.err(ln, f"pattern {p!r} is not defined in [PATTERNS]")
            return p

        curve_use: dict[str, tuple[str, int]] = {}

        def curve_ref(ln: _Line, i: int, kind: str) -> str:
            c = ln.tokens[i]
            if c not in raw_curves:
                self.err(ln, f"curve {c!r} is not defined in [CURVES]")
            elif c in curve_use and curve_use[c][0] != kind:
                self.err(ln, f"curve {c!r} is used as a {kind} curve here and as a {curve_use[c][0]} curve "
                             f"on line {curve_use[c][1]}")
            else:
                curve_use[c] = (kind, ln.no)
            return c

        # junctions and demands
        jrows, drows = {}, {}
        for ln in sec.get("JUNCTIONS", []):
            if not new_id(nodes, "node", "junction", ln):
                continue
            t = ln.tokens
            el = self.num(ln, 1, "elevation") if len(t) > 1 else 0.0
            d = self.num(ln, 2, "demand") if len(t) > 2 else 0.0
            jrows[t[0]] = {"elevation_m": (el or 0.0) * self.L}
            drows[t[0]] = [{"junction": t[0], "base_m3s": (d or 0.0) * self.q, "pattern": pattern_ref(ln, 3),
                            "category": ""}]
        rrows, trows = {}, {}
        for ln in sec.get("RESERVOIRS", []):
            if not new_id(nodes, "node", "reservoir", ln):
                continue
            h = self.num(ln, 1, "head")
            rrows[ln.tokens[0]] = {"head_m": (h or 0.0) * self.L, "head_pattern": pattern_ref(ln, 2)}
        for ln in sec.get("TANKS", []):
            t = ln.tokens
            if len(t) <= 3:  # EPANET reads a short tank line as a reservoir
                if new_id(nodes, "node", "reservoir", ln):
                    h = self.num(ln, 1, "head")
                    rrows[t[0]] = {"head_m": (h or 0.0) * self.L, "head_pattern": pattern_ref(ln, 2)}
                continue
            if not new_id(nodes, "node", "tank", ln):
                continue
            if len(t) < 6:
                self.err(ln, "a tank needs: id elevation init_level min_level max_level diameter")
                continue
            el = self.num(ln, 1, "elevation")
            vals = [self.num(ln, i, w, minimum=0.0) for i, w in
                    ((2, "initial level"), (3, "minimum level"), (4, "maximum level"), (5, "diameter"))]
            minvol = self.num(ln, 6, "minimum volume", minimum=0.0) if len(t) > 6 else 0.0
            vcurve = curve_ref(ln, 7, "VOLUME") if len(t) > 7 and t[7] != "*" else ""
            overflow = False
            if len(t) > 8:
                if t[8].upper().startswith("Y"):
                    overflow = True
                elif not t[8].upper().startswith("N"):
                    self.err(ln, f"overflow must be YES or NO, got {t[8]!r}")
            if el is None or any(v is None for v in vals):
                continue
            init, lo, hi, diam = vals
            if vcurve == "" and diam == 0:
                self.err(ln, "a tank without a volume curve needs a positive diameter")
            if not lo <= init <= hi:
                self.err(ln, f"tank levels must satisfy min <= initial <= max, got {lo:g}, {init:g}, {hi:g}")
            trows[t[0]] = {"elevation_m": el * self.L, "init_level_m": init * self.L,
                           "min_level_m": lo * self.L, "max_level_m": hi * self.L, "diameter_m": diam * self.L,
                           "min_volume_m3": (minvol or 0.0) * self.L**3, "volume_curve": vcurve,
                           "overflow": overflow}

        # demands and emitters, once every node is known
        replaced: set[str] = set()
        for ln in sec.get("DEMANDS", []):
            t = ln.tokens
            if len(t) < 2:
                self.err(ln, "a demand needs a junction and a base demand")
                continue
            if t[0] not in nodes:
                self.err(ln, f"node {t[0]!r} is not defined")
                continue
            if nodes[t[0]][0] != "junction":
                continue  # EPANET ignores demands at tanks/reservoirs
            d = self.num(ln, 1, "base demand")
            row = {"junction": t[0], "base_m3s": (d or 0.0) * self.q, "pattern": pattern_ref(ln, 2),
                   "category": ln.comment}
            if t[0] not in replaced:  # the first [DEMANDS] entry replaces the [JUNCTIONS] demand
                drows[t[0]] = [row]
                replaced.add(t[0])
            else:
                drows[t[0]].append(row)
        for ln in sec.get("EMITTERS", []):
            t = ln.tokens
            if t[0] not in nodes:
                self.err(ln, f"emitter at undefined node {t[0]!r}")
                continue
            if t[0] not in jrows:
                continue  # EPANET ignores emitters at tanks and reservoirs
            k = self.num(ln, 1, "emitter coefficient", minimum=0.0)
            if k is not None:
                # K in flow units per (pressure units)^gamma -> m³/s per m^gamma
                jrows[t[0]]["emitter_coefficient"] = k * self.q / self.P ** wn.options.emitter_exponent

        def link_nodes(ln: _Line) -> tuple[str, str] | None:
            t = ln.tokens
            if len(t) < 3:
                self.err(ln, "a link needs an id, a start node and an end node")
                return None
            ok = True
            for i in (1, 2):
                if t[i] not in nodes:
                    self.err(ln, f"link {t[0]!r}: node {t[i]!r} is not defined")
                    ok = False
            if ok and t[1] == t[2]:
                self.err(ln, f"link {t[0]!r} starts and ends at the same node")
                ok = False
            return (t[1], t[2]) if ok else None

        prows, purows, vrows = {}, {}, {}
        rough_f = {"H-W": 1.0, "D-W": 1e-3 * self.L, "C-M": 1.0}[wn.options.headloss]  # D-W: mm or millifeet
        for ln in sec.get("PIPES", []):
            t = ln.tokens
            if not new_id(links, "link", "pipe", ln):
                continue
            ends = link_nodes(ln)
            if len(t) < 6:
                self.err(ln, "a pipe needs: id node1 node2 length diameter roughness")
                continue
            length = self.num(ln, 3, "length", positive=True)
            diam = self.num(ln, 4, "diameter", positive=True)
            rough = self.num(ln, 5, "roughness", positive=True)
            # EPANET: a 7th token is a minor loss or a status; with an 8th, they are both
            status = "OPEN"
            status_tok = t[7] if len(t) > 7 else t[6] if len(t) == 7 and _pipe_status(t[6]) else ""
            has_ml = len(t) > 7 or (len(t) == 7 and not status_tok)
            ml = self.num(ln, 6, "minor loss", minimum=0.0) if has_ml else 0.0
            if status_tok:
                status = _pipe_status(status_tok)
                if not status:
                    self.err(ln, f"pipe status must be OPEN, CLOSED or CV, got {status_tok!r}")
            if ends and None not in (length, diam, rough, ml):
                prows[t[0]] = {"node1": ends[0], "node2": ends[1], "length_m": length * self.L,
                               "diameter_m": diam * self.D, "roughness": rough * rough_f, "minor_loss": ml,
                               "status": status}
        for ln in sec.get("PUMPS", []):
            t = ln.tokens
            if not new_id(links, "link", "pump", ln):
                continue
            ends = link_nodes(ln)
            row = {"head_curve": "", "power_kw": 0.0, "speed": 1.0, "speed_pattern": ""}
            ok = ends is not None
            m = 3
            while m < len(t):
                key = t[m].upper()
                if m + 1 >= len(t):
                    self.err(ln, f"pump {t[0]!r}: keyword {t[m]!r} has no value")
                    ok = False
                    break
                if _match(key, "POWER"):
                    v = self.num(ln, m + 1, "pump power", positive=True)
                    if v is not None:
                        row["power_kw"] = v * (1.0 if U.is_si(wn.options.flow_units) else U.KW_PER_HP)
                    ok &= v is not None
                elif _match(key, "HEAD"):
                    row["head_curve"] = curve_ref(ln, m + 1, "HEAD")
                elif _match(key, "PATTERN"):
                    row["speed_pattern"] = pattern_ref(ln, m + 1)
                elif _match(key, "SPEED"):
                    v = self.num(ln, m + 1, "pump speed", minimum=0.0)
                    if v is not None:
                        row["speed"] = v
                else:
                    self.err(ln, f"pump {t[0]!r}: unknown keyword {t[m]!r} (HEAD, POWER, SPEED or PATTERN)")
                    ok = False
                m += 2
            if ok and not row["head_curve"] and row["power_kw"] <= 0:
                self.err(ln, f"pump {t[0]!r} has neither a HEAD curve nor a POWER")
                ok = False
            if ok:
                purows[t[0]] = {"node1": ends[0], "node2": ends[1], **row}
        for ln in sec.get("VALVES", []):
            t = ln.tokens
            if not new_id(links, "link", "valve", ln):
                continue
            ends = link_nodes(ln)
            if len(t) < 5:
                self.err(ln, "a valve needs: id node1 node2 diameter type [setting] [minor loss]")
                continue
            vtype = next((v for v in VALVE_TYPES if _match(t[4], v)), "")
            if not vtype:
                self.err(ln, f"unknown valve type {t[4]!r} (one of {', '.join(VALVE_TYPES)})")
                continue
            diam = self.num(ln, 3, "diameter", positive=True)
            setting, curve = 0.0, ""
            if len(t) > 5:
                if vtype == "GPV":
                    curve = curve_ref(ln, 5, "HEADLOSS")
                else:
                    setting = self.num(ln, 5, "setting")
            ml = self.num(ln, 6, "minor loss", minimum=0.0) if len(t) > 6 else 0.0
            if vtype == "PCV" and len(t) > 7:
                curve = curve_ref(ln, 7, "VALVE")
            if ends and vtype in ("PRV", "PSV", "FCV"):
                kinds = [nodes[e][0] for e in ends]
                if "junction" not in kinds or kinds != ["junction", "junction"]:
                    self.err(ln, f"{vtype} {t[0]!r} must connect two junctions "
                                 f"(it connects a {kinds[0]} and a {kinds[1]})")
                    ends = None
            if ends is None or diam is None or setting is None or ml is None:
                continue
            vrows[t[0]] = {"node1": ends[0], "node2": ends[1], "valve_type": vtype, "diameter_m": diam * self.D,
                           "setting": self._valve_setting(vtype, setting), "curve": curve, "minor_loss": ml,
                           "initial_status": "OPEN" if vtype == "GPV" else "ACTIVE"}
        self.check_valve_pairs(vrows, sec.get("VALVES", []))

        # [STATUS]: link OPEN|CLOSED|setting, or a range: link1 link2 OPEN|CLOSED|setting
        for ln in sec.get("STATUS", []):
            t = ln.tokens
            if len(t) not in (2, 3):
                self.err(ln, "a status line is: link_id OPEN|CLOSED|setting (or: first_id last_id value)")
                continue
            word = t[-1]
            status = "OPEN" if _match(word, "OPEN") else "CLOSED" if _match(word, "CLOSED") else None
            value = None
            if status is None:
                value = self.num(ln, len(t) - 1, "status setting", minimum=0.0)
                if value is None:
                    continue
            if len(t) == 2:
                lid = t[0]
                if lid not in links:
                    self.err(ln, f"link {lid!r} is not defined")
                    continue
                if links[lid][0] == "pipe" and prows.get(lid, {}).get("status") == "CV":
                    self.err(ln, f"pipe {lid!r} is a check valve; its status cannot be set (EPANET error 207)")
                    continue
                if status is None and vrows.get(lid, {}).get("valve_type") == "GPV":
                    self.err(ln, f"GPV {lid!r}: a status line can only open or close it (EPANET error 207)")
                    continue
                targets = [lid]
            else:
                targets = _id_range(t[0], t[1], links)
            for lid in targets:
                self._change_status(links[lid][0], prows.get(lid), purows.get(lid), vrows.get(lid), status, value)

        # [ENERGY]
        en = wn.energy
        for ln in sec.get("ENERGY", []):
            t = ln.tokens
            k0 = t[0].upper()
            if _match(k0, "DEMAND") and len(t) >= 3:
                v = self.num(ln, 2, "demand charge")
                en.demand_charge = v if v is not None else en.demand_charge
            elif _match(k0, "GLOBAL") and len(t) >= 3:
                key = t[1].upper()
                if _match(key, "PATTERN"):
                    en.price_pattern = pattern_ref(ln, 2)
                else:
                    v = self.num(ln, 2, f"global {t[1].lower()}")
                    if v is None:
                        continue
                    if _match(key, "PRICE"):
                        en.price = v
                    elif _match(key, "EFFIC"):
                        if v <= 0:
                            self.err(ln, "global efficiency must be positive")
                        en.efficiency_pct = v
                    else:
                        self.err(ln, f"unknown [ENERGY] keyword {t[1]!r}")
            elif _match(k0, "PUMP") and len(t) >= 4:
                pid, key = t[1], t[2].upper()
                if pid not in purows:
                    self.err(ln, f"pump {pid!r} is not defined")
                    continue
                if _match(key, "PATTERN"):
                    purows[pid]["price_pattern"] = pattern_ref(ln, 3)
                elif _match(key, "EFFIC"):
                    purows[pid]["efficiency_curve"] = curve_ref(ln, 3, "EFFICIENCY")
                elif _match(key, "PRICE"):
                    v = self.num(ln, 3, "pump energy price", minimum=0.0)
                    if v is not None:
                        purows[pid]["energy_price"] = v
                else:
                    self.err(ln, f"unknown [ENERGY] keyword {t[2]!r}")
            else:
                self.err(ln, f"unrecognised [ENERGY] line {' '.join(t)!r}")

        # curves, now that their use (and so their units) is known
        for cid, (pts, no) in raw_curves.items():
            kind = curve_use.get(cid, ("GENERIC", 0))[0]
            x = np.array([p[0] for p in pts])
            y = np.array([p[1] for p in pts])
            fx, fy = {"HEAD": (self.q, self.L), "EFFICIENCY": (self.q, 1.0), "VOLUME": (self.L, self.L**3),
                      "HEADLOSS": (self.q, self.L), "VALVE": (1.0, 1.0), "GENERIC": (1.0, 1.0)}[kind]
            if kind != "GENERIC" and len(x) > 1 and np.any(np.diff(x) <= 0):
                self.err(no, f"curve {cid!r}: x values must increase")
            wn.curves[cid] = Curve(kind, x * fx, y * fy)
        self.check_pump_curves(purows, raw_curves)

        # coordinates, tags, quality
        extra: dict[str, dict[str, object]] = {}
        for ln in sec.get("COORDINATES", []):
            # EPANET ignores coordinates it cannot use (unknown node, missing or bad numbers)
            t = ln.tokens
            if len(t) < 3 or t[0] not in nodes:
                continue
            try:
                x, y = _float(t[1]), _float(t[2])
            except ValueError:
                continue
            extra.setdefault(t[0], {}).update(x=x, y=y)
        for ln in sec.get("QUALITY", []):  # node value, or a range: first_node last_node value
            t = ln.tokens
            if len(t) < 2:
                continue  # EPANET skips it
            if len(t) == 2 and t[0] not in nodes:
                self.err(ln, f"initial quality for undefined node {t[0]!r}")
                continue
            v = self.num(ln, 1 if len(t) == 2 else 2, "initial quality", minimum=0.0)
            if v is None:
                continue
            for nid in [t[0]] if len(t) == 2 else _id_range(t[0], t[1], nodes):
                extra.setdefault(nid, {})["initial_quality"] = v
        ltags: dict[str, str] = {}
        for ln in sec.get("TAGS", []):
            t = ln.tokens
            if len(t) < 3 or t[0].upper() not in ("NODE", "LINK"):
                self.err(ln, "a tag line is: NODE|LINK id tag")
                continue
            reg = nodes if t[0].upper() == "NODE" else links
            if t[1] not in reg:
                self.err(ln, f"tag for undefined {t[0].lower()} {t[1]!r}")
                continue
            if t[0].upper() == "NODE":
                extra.setdefault(t[1], {})["tag"] = t[2]
            else:
                ltags[t[1]] = t[2]

        self.read_controls(sec.get("CONTROLS", []), nodes, links, prows, vrows)
        self.read_rules(sec.get("RULES", []), nodes, links, prows, vrows)
        for name in RAW_SECTIONS:
            if name in sec and sec[name]:
                wn.extra_sections[name] = [ln.raw for ln in sec[name]]
        if not nodes:
            self.err(0, "the network has no nodes")
        elif not rrows and not trows:
            self.err(0, "the network has no reservoir or tank (no fixed-head node)")
        if self.errors:
            raise InpError(self.path, sorted(self.errors, key=lambda e: e[0]))

        def frame(rows: dict, extra_of: Callable[[str], dict] | None = None) -> pd.DataFrame:
            recs = {k: {**v, **(extra_of(k) if extra_of else {})} for k, v in rows.items()}
            return pd.DataFrame.from_dict(recs, orient="index") if recs else pd.DataFrame()

        def node_extra(k: str) -> dict:
            return {c: v for c, v in extra.get(k, {}).items() if v is not None}

        tables = {
            "junction": frame(jrows, node_extra), "reservoir": frame(rrows, node_extra),
            "tank": frame(trows, node_extra),
            "pipe": frame(prows, lambda k: {"tag": ltags[k]} if k in ltags else {}),
            "pump": frame(purows, lambda k: {"tag": ltags[k]} if k in ltags else {}),
            "valve": frame(vrows, lambda k: {"tag": ltags[k]} if k in ltags else {}),
        }
        dem = [dict(r, _id=f"{j}#{i}") for j, rows in drows.items() for i, r in enumerate(rows)]
        tables["demand"] = pd.DataFrame(dem).set_index("_id") if dem else pd.DataFrame()
        for name, df in tables.items():
            if len(df):
                wn._tables[name] = df  # conformed below, once, through the schema
        from ..schema import conform
        from .schema import TABLES
        for name in tables:
            if len(tables[name]):
                wn._tables[name] = conform(wn._tables[name], TABLES[name])
        wn.validate()
        return wn

    def _change_status(self, kind: str, pipe: dict | None, pump: dict | None, valve: dict | None,
                       status: str | None, value: float | None) -> None:
        """EPANET's changestatus(): a [STATUS] word (OPEN/CLOSED) or setting applied to one link."""
        if kind == "pipe":
            if pipe is not None and pipe["status"] != "CV" and status:
                pipe["status"] = status
        elif kind == "pump":
            if pump is None:
                return
            if status is None:
                pump["speed"] = value
                status = "CLOSED" if value == 0 else "OPEN"
            elif status == "OPEN":
                pump["speed"] = 1.0  # EPANET resets the setting of a pump opened here
            pump["initial_status"] = status
        elif valve is not None:
            if valve["valve_type"] == "GPV":
                if status:
                    valve["initial_status"] = status
            elif status is None:
                valve["setting"] = self._valve_setting(valve["valve_type"], value)
                valve["initial_status"] = "ACTIVE"
            else:
                valve["initial_status"] = status

    def _valve_setting(self, vtype: str, v: float) -> float:
        if vtype in ("PRV", "PSV", "PBV"):
            return v * self.P
        if vtype == "FCV":
            return v * self.q
        return v

    def check_valve_pairs(self, vrows: dict, lines: list[_Line]) -> None:
        """EPANET's rules for PRV/PSV/FCV valves sharing nodes (error 220)."""
        no = {ln.tokens[0]: ln.no for ln in lines}
        table = pd.DataFrame.from_dict(vrows, orient="index", columns=["valve_type", "node1", "node2"])
        for vid, oid in illegal_valve_pairs(table):
            self.err(no.get(vid, 0), f"{vrows[vid]['valve_type']} {vid!r} is connected to "
                                     f"{vrows[oid]['valve_type']} {oid!r} in a way EPANET forbids (PRVs sharing a "
                                     "downstream node or in series, PSVs sharing an upstream node or in series, a PSV "
                                     "downstream of a PRV or FCV, an FCV downstream of a PRV: error 220)")

    def check_pump_curves(self, purows: dict, raw_curves: dict) -> None:
        for pid, r in purows.items():
            c = r["head_curve"]
            if not c or c not in raw_curves:
                continue
            pts, no = raw_curves[c]
            try:
                fit_pump_curve([p[0] for p in pts], [p[1] for p in pts], U.TINY)
            except ValueError as exc:
                self.err(no, f"pump {pid!r}: head curve {c!r} {exc}")

    def read_patterns(self, lines: list[_Line]) -> None:
        pats: dict[str, list[float]] = {}
        for ln in lines:
            if len(ln.tokens) < 2:
                self.err(ln, f"pattern {ln.tokens[0]!r}: a pattern line needs at least one multiplier")
                continue
            vals = []
            for i in range(1, len(ln.tokens)):
                v = self.num(ln, i, f"pattern {ln.tokens[0]!r} multiplier")
                if v is not None:
                    vals.append(v)
            pats.setdefault(ln.tokens[0], []).extend(vals)
        self.wn.patterns = {k: np.array(v if v else [1.0]) for k, v in pats.items()}

    def read_curves(self, lines: list[_Line]) -> dict[str, tuple[list[tuple[float, float]], int]]:
        curves: dict[str, tuple[list[tuple[float, float]], int]] = {}
        for ln in lines:
            if len(ln.tokens) < 3:
                self.err(ln, "a curve line is: id x y")
                continue
            x, y = self.num(ln, 1, "curve x"), self.num(ln, 2, "curve y")
            if x is None or y is None:
                continue
            curves.setdefault(ln.tokens[0], ([], ln.no))[0].append((x, y))
        return curves

    def read_controls(self, lines: list[_Line], nodes: dict, links: dict, prows: dict, vrows: dict) -> None:
        """[CONTROLS], as EPANET's controldata() parses them (keywords matched by prefix)."""
        form = ("a control is: LINK id OPEN|CLOSED|setting AT TIME t | AT CLOCKTIME t [AM|PM] | "
                "IF NODE id ABOVE|BELOW value [DISABLED]")
        for ln in lines:
            t = list(ln.tokens)
            enabled = True
            if len(t) >= 6 and _match(t[-1], "DISABLED"):
                enabled = False
                t = t[:-1]
            if len(t) < 6:
                self.err(ln, form)
                continue
            lid = t[1]
            if lid not in links:
                self.err(ln, f"control on undefined link {lid!r}")
                continue
            kind = links[lid][0]
            if kind == "pipe" and prows.get(lid, {}).get("status") == "CV":
                self.err(ln, f"pipe {lid!r} is a check valve; a control cannot change it (EPANET error 207)")
                continue
            vtype = vrows[lid]["valve_type"] if lid in vrows else ""
            setting = math.nan
            if _match(t[2], "OPEN"):
                action = "OPEN"
            elif _match(t[2], "CLOSED"):
                action = "CLOSED"
            elif vtype == "GPV":
                self.err(ln, f"GPV {lid!r} can only be opened or closed by a control")
                continue
            else:
                v = self.num(ln, 2, "control setting (a number, OPEN or CLOSED)")
                if v is None:
                    continue
                if kind in ("pump", "pipe") and v < 0:
                    self.err(ln, f"a {kind} setting must not be negative, got {t[2]}")
                    continue
                if kind == "pipe":  # EPANET: a pipe setting opens (> 0) or closes (0) it
                    action = "CLOSED" if v == 0 else "OPEN"
                else:
                    action = "SETTING"
                    setting = v if kind == "pump" else self._valve_setting(vtype, v)
            c = Control(link=lid, action=action, condition="", setting=setting, enabled=enabled)
            if _match(t[4], "TIME") or _match(t[4], "CLOCKTIME"):
                h = _hours(t[5], t[6] if len(t) >= 7 else "")
                if h is None or h < 0:
                    self.err(ln, f"invalid control time {' '.join(t[5:7])!r}")
                    continue
                c.condition = "TIME" if _match(t[4], "TIME") else "CLOCKTIME"
                s = int(3600.0 * h)  # EPANET truncates
                c.time_s = s % U.SEC_PER_DAY if c.condition == "CLOCKTIME" else s
            else:
                if len(t) < 8:
                    self.err(ln, form)
                    continue
                nid = t[5]
                if nid not in nodes:
                    self.err(ln, f"control on undefined node {nid!r}")
                    continue
                if not (_match(t[6], "BELOW") or _match(t[6], "ABOVE")):
                    self.err(ln, f"control relation must be ABOVE or BELOW, got {t[6]!r}")
                    continue
                v = self.num(ln, 7, "control level")
                if v is None:
                    continue
                c.condition, c.node = ("BELOW" if _match(t[6], "BELOW") else "ABOVE"), nid
                c.value = v * (self.P if nodes[nid][0] == "junction" else self.L)
            self.wn.controls.append(c)

    def read_rules(self, lines: list[_Line], nodes: dict, links: dict, prows: dict, vrows: dict) -> None:
        """[RULES], as EPANET's rules.c parses them (keywords matched by prefix)."""
        rule: Rule | None = None
        state = ""
        rule_line: dict[int, int] = {}
        keywords = ("RULE", "IF", "AND", "OR", "THEN", "ELSE", "PRIO", "DISABLED")
        objects = {"JUNC": "JUNCTION", "RESER": "RESERVOIR", "TANK": "TANK", "PIPE": "PIPE", "PUMP": "PUMP",
                   "VALVE": "VALVE", "NODE": "NODE", "LINK": "LINK", "SYSTEM": "SYSTEM"}
        variables = ("DEMAND", "HEAD", "GRADE", "LEVEL", "PRESSURE", "FLOW", "STATUS", "SETTING", "POWER", "TIME",
                     "CLOCKTIME", "FILLTIME", "DRAINTIME")
        relations = ("=", "<>", "<=", ">=", "<", ">", "IS", "NOT", "BELOW", "ABOVE")
        statuses = ("OPEN", "CLOSED", "ACTIVE")

        def find(tok: str, words: tuple[str, ...]) -> str:
            return next((w for w in words if _match(tok, w)), "")

        def premise(ln: _Line, logic: str) -> Premise | None:
            t = ln.tokens
            if len(t) not in (5, 6):
                self.err(ln, "a premise is: IF|AND|OR object id attribute relation value, "
                             "or IF|AND|OR SYSTEM attribute relation value [AM|PM]")
                return None
            obj = objects.get(find(t[1], tuple(objects)), "")
            if not obj:
                self.err(ln, f"unknown rule object {t[1]!r} (JUNCTION, RESERVOIR, TANK, PIPE, PUMP, VALVE, NODE, "
                             "LINK or SYSTEM)")
                return None
            if obj == "SYSTEM":
                ident, attr, m = "", find(t[2], variables), 3
                if attr not in ("DEMAND", "TIME", "CLOCKTIME"):
                    self.err(ln, f"unknown SYSTEM attribute {t[2]!r} (DEMAND, TIME or CLOCKTIME)")
                    return None
            else:
                ident, attr, m = t[2], find(t[3], variables), 4
                is_link = obj in ("PIPE", "PUMP", "VALVE", "LINK")
                if ident not in (links if is_link else nodes):
                    self.err(ln, f"rule refers to undefined {'link' if is_link else 'node'} {ident!r}")
                    return None
                allowed = ("FLOW", "STATUS", "SETTING") if is_link else (
                    ("DEMAND", "HEAD", "GRADE", "LEVEL", "PRESSURE") +
                    (("FILLTIME", "DRAINTIME") if nodes[ident][0] != "junction" else ()))
                if attr not in allowed:
                    self.err(ln, f"attribute {t[3]!r} does not apply to {obj.lower()} {ident!r} "
                                 f"(one of {', '.join(allowed)})")
                    return None
                if len(t) != 6:
                    self.err(ln, "a premise is: IF|AND|OR object id attribute relation value")
                    return None
            rel = find(t[m], relations)
            if not rel:
                self.err(ln, f"unknown relation {t[m]!r} (one of {' '.join(relations)})")
                return None
            value: float | str | None
            if attr in ("TIME", "CLOCKTIME"):
                h = _hours(t[4], t[5] if len(t) == 6 else "")
                value = None if h is None or h < 0 else int(3600.0 * h)  # EPANET truncates
                if value is None:
                    self.err(ln, f"invalid time {' '.join(t[4:])!r}")
                return None if value is None else Premise(logic, obj, ident, attr, rel, value)
            tok = t[-1]
            value = find(tok, statuses)
            if not value:
                value = self.num(ln, len(t) - 1, "rule value (a number or OPEN, CLOSED, ACTIVE)")
                if value is None:
                    return None
                if attr in ("HEAD", "GRADE", "LEVEL"):
                    value *= self.L
                elif attr == "PRESSURE":
                    value *= self.P
                elif attr in ("DEMAND", "FLOW"):
                    value *= self.q
                elif attr == "SETTING" and ident in vrows:
                    value = self._valve_setting(vrows[ident]["valve_type"], value)
            return Premise(logic, obj, ident, attr, rel, value)

        def action(ln: _Line) -> RuleAction | None:
            t = ln.tokens
            if len(t) != 6:
                self.err(ln, "an action is: THEN|ELSE|AND LINK id STATUS|SETTING IS value")
                return None
            lid = t[2]
            if lid not in links:
                self.err(ln, f"rule action on undefined link {lid!r}")
                return None
            kind = links[lid][0]
            obj = objects.get(find(t[1], tuple(objects)), "")
            obj = obj if obj in ("PIPE", "PUMP", "VALVE", "LINK") else kind.upper()
            if kind == "pipe" and prows.get(lid, {}).get("status") == "CV":
                self.err(ln, f"pipe {lid!r} is a check valve; a rule cannot control it (EPANET error 207)")
                return None
            word = find(t[5], statuses)
            if word:
                return RuleAction(obj, lid, "STATUS", word)
            v = self.num(ln, 5, "action setting (a number or OPEN, CLOSED, ACTIVE)")
            if v is None:
                return None
            if v < 0:
                self.err(ln, f"action setting must not be negative, got {t[5]}")
                return None
            if kind == "pipe":  # EPANET: a pipe setting opens (> 0) or closes (0) it
                return RuleAction(obj, lid, "STATUS", "CLOSED" if v == 0 else "OPEN")
            if kind == "valve":
                if vrows.get(lid, {}).get("valve_type") == "GPV":
                    self.err(ln, f"GPV {lid!r} can only be opened or closed by a rule")
                    return None
                v = self._valve_setting(vrows[lid]["valve_type"], v) if lid in vrows else v
            return RuleAction(obj, lid, "SETTING", v)

        for ln in lines:
            t = ln.tokens
            k = find(t[0], keywords)
            if k == "RULE":
                if len(t) != 2:
                    self.err(ln, "a rule starts with: RULE name (one word)")
                    rule, state = None, "ERROR"
                    continue
                rule = Rule(name=t[1], premises=[], then_actions=[])
                self.wn.rules.append(rule)
                rule_line[id(rule)] = ln.no
                state = "RULE"
                continue
            if rule is None:
                if state != "ERROR":
                    self.err(ln, f"{t[0]!r} outside of a RULE")
                continue
            if not k:
                self.err(ln, f"unknown rule keyword {t[0]!r} (IF, AND, OR, THEN, ELSE or PRIORITY)")
            elif k == "IF" or (k in ("AND", "OR") and state == "IF"):
                if k == "IF" and state != "RULE":
                    self.err(ln, f"IF must directly follow RULE {rule.name}")
                    continue
                state = "IF"
                p = premise(ln, k)
                if p is not None:
                    rule.premises.append(p)
            elif k in ("THEN", "ELSE") or (k == "AND" and state in ("THEN", "ELSE")):
                if (k == "THEN" and state != "IF") or (k == "ELSE" and state != "THEN"):
                    self.err(ln, f"misplaced {k} in rule {rule.name!r} (RULE, IF, AND/OR, THEN, AND, ELSE, AND, "
                                 "PRIORITY)")
                    continue
                state = k if k != "AND" else state
                a = action(ln)
                if a is not None:
                    (rule.then_actions if state == "THEN" else rule.else_actions).append(a)
            elif k == "PRIO":
                if state not in ("THEN", "ELSE"):
                    self.err(ln, f"misplaced PRIORITY in rule {rule.name!r} (it follows the actions)")
                    continue
                state = "PRIORITY"
                v = self.num(ln, 1, "priority")
                rule.priority = v if v is not None else 0.0
            elif k == "DISABLED":  # EPANET 2.3: the rule is kept but not evaluated
                rule.enabled = False
            else:
                self.err(ln, f"misplaced {t[0]!r} in rule {rule.name!r}")
        starts = sorted(rule_line.values()) + [math.inf]
        for r in self.wn.rules:
            first = rule_line[id(r)]
            end = starts[starts.index(first) + 1]
            had_errors = any(first <= no < end for no, _ in self.errors)  # don't pile on a broken rule
            if (not r.premises or not r.then_actions) and not had_errors:
                self.err(first, f"rule {r.name!r} needs at least one IF premise and one THEN action")


def read_inp(path: str | os.PathLike) -> WaterNetwork:
    """Read an EPANET ``.inp`` file into a :class:`WaterNetwork` (SI units).

    Accepts UTF-8 or Latin-1 text, tabs, comments and Windows line endings.
    Raises :class:`InpError` listing every problem found (file, line, what).
    """
    path = os.fspath(path)
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return _Reader(path).read(text)


# -- writer -------------------------------------------------------------------------


_g = shortest


def _inv(v: float, f: float) -> str:
    """Text ``x`` with ``float(x) * f == v`` exactly (the reader multiplies file values by ``f``)."""
    if f == 1.0:
        return _g(v)
    return _exact(v, v / f, lambda x: x * f)


def _exact(v: float, guess: float, forward: Callable[[float], float]) -> str:
    """Shortest decimal near ``guess`` that ``forward`` (the reader's conversion) maps exactly to ``v``.

    ``v / f`` is not always the number the file had (``14200 * f / f`` may be 14199.999999999998):
    EPANET would then read a (slightly) different network.  The shortest decimal that converts back
    to ``v`` is the file's own number whenever ``v`` came from a file in these units.
    """
    if not math.isfinite(guess):
        return _g(guess)
    for digits in range(1, 18):
        x = float(f"{guess:.{digits}g}")
        if forward(x) == v:
            return _g(x)
    up = down = guess
    for _ in range(4):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        for w in (up, down):
            if forward(w) == v:
                return _g(w)
    return _g(guess)


def _q(ident: str) -> str:
    return f'"{ident}"' if (" " in ident or ";" in ident) else ident


def write_inp(wn: WaterNetwork, path: str | os.PathLike, *, flow_units: str | None = None) -> None:
    """Write ``wn`` as an EPANET 2.2 ``.inp`` file (atomically), in ``flow_units``.

    ``flow_units`` defaults to ``wn.options.flow_units``.  Values are written
    with full precision, so reading the file back gives the same network.
    Sections kept verbatim (quality, report, map data) are written as read;
    they are in the units of the file they came from.
    """
    o = wn.options
    fu = (flow_units or o.flow_units).upper()
    if fu not in U.PER_CFS:
        raise ValueError(f"unknown flow units {fu!r}")
    pu = o.pressure_units if (flow_units is None and o.pressure_units) else U.default_pressure_units(fu)
    q = U.flow_factor(fu)
    L = U.length_factor(fu)
    D = U.diameter_factor(fu)
    P = U.pressure_factor(pu, o.specific_gravity)
    out: list[str] = []

    def section(name: str, header: str | None = None) -> None:
        out.append("")
        out.append(f"[{name}]")
        if header:
            out.append(header)

    out.append("[TITLE]")
    out.extend(wn.title)
    j, d, r, t = wn.junction, wn.demand, wn.reservoir, wn.tank
    first_demand = {}
    for did, row in d.iterrows():
        first_demand.setdefault(row["junction"], (did, row))
    section("JUNCTIONS", ";ID\tElev\tDemand\tPattern")
    for jid, row in j.iterrows():
        fd = first_demand.get(jid)
        dem = _inv(fd[1]["base_m3s"], q) if fd is not None else "0"
        pat = fd[1]["pattern"] if fd is not None else ""
        out.append(f"{_q(jid)}\t{_inv(row['elevation_m'], L)}\t{dem}\t{_q(pat)}".rstrip())
    section("RESERVOIRS", ";ID\tHead\tPattern")
    for rid, row in r.iterrows():
        out.append(f"{_q(rid)}\t{_inv(row['head_m'], L)}\t{_q(row['head_pattern'])}".rstrip())
    section("TANKS", ";ID\tElevation\tInitLevel\tMinLevel\tMaxLevel\tDiameter\tMinVol\tVolCurve\tOverflow")
    for tid, row in t.iterrows():
        vals = [_inv(row[c], L) for c in ("elevation_m", "init_level_m", "min_level_m", "max_level_m", "diameter_m")]
        vals.append(_inv(row["min_volume_m3"], L**3))
        out.append("\t".join([_q(tid)] + vals + [_q(row["volume_curve"]) or "*",
                                                                   "YES" if row["overflow"] else "NO"]))
    rough_f = {"H-W": 1.0, "D-W": 1e-3 * L, "C-M": 1.0}[o.headloss]
    section("PIPES", ";ID\tNode1\tNode2\tLength\tDiameter\tRoughness\tMinorLoss\tStatus")
    for pid, row in wn.pipe.iterrows():
        out.append("\t".join([_q(pid), _q(row["node1"]), _q(row["node2"]), _inv(row["length_m"], L),
                              _inv(row["diameter_m"], D), _inv(row["roughness"], rough_f), _g(row["minor_loss"]),
                              row["status"]]))
    section("PUMPS", ";ID\tNode1\tNode2\tParameters")
    pw = 1.0 if U.is_si(fu) else U.KW_PER_HP
    for pid, row in wn.pump.iterrows():
        parts = [_q(pid), _q(row["node1"]), _q(row["node2"])]
        if row["head_curve"]:
            parts += ["HEAD", _q(row["head_curve"])]
        else:
            parts += ["POWER", _inv(row["power_kw"], pw)]
        if row["speed"] != 1.0:
            parts += ["SPEED", _g(row["speed"])]
        if row["speed_pattern"]:
            parts += ["PATTERN", _q(row["speed_pattern"])]
        out.append("\t".join(parts))
    section("VALVES", ";ID\tNode1\tNode2\tDiameter\tType\tSetting\tMinorLoss")

    def vset(vtype: str, s: float) -> str:
        return _inv(s, P if vtype in ("PRV", "PSV", "PBV") else q if vtype == "FCV" else 1.0)

    for vid, row in wn.valve.iterrows():
        vt = row["valve_type"]
        setting = _q(row["curve"]) if vt == "GPV" else vset(vt, row["setting"])
        parts = [_q(vid), _q(row["node1"]), _q(row["node2"]), _inv(row["diameter_m"], D), vt, setting,
                 _g(row["minor_loss"])]
        if vt == "PCV" and row["curve"]:
            parts.append(_q(row["curve"]))
        out.append("\t".join(parts))
    section("DEMANDS", ";Junction\tDemand\tPattern\tCategory")
    for _jid, rows in d.groupby("junction", sort=False):
        if len(rows) == 1 and not rows["category"].iloc[0]:
            continue
        for _did, row in rows.iterrows():
            line = f"{_q(row['junction'])}\t{_inv(row['base_m3s'], q)}\t{_q(row['pattern'])}"
            if row["category"]:
                line += f"\t;{row['category']}"
            out.append(line.rstrip("\t"))
    section("STATUS", ";ID\tStatus/Setting")
    for pid, row in wn.pump.iterrows():
        if row["initial_status"] == "CLOSED":
            out.append(f"{_q(pid)}\tCLOSED")
    for vid, row in wn.valve.iterrows():
        st = row["initial_status"]
        if (row["valve_type"] == "GPV" and st == "CLOSED") or (row["valve_type"] != "GPV" and st != "ACTIVE"):
            out.append(f"{_q(vid)}\t{st}")
    section("PATTERNS", ";ID\tMultipliers")
    for pid, vals in wn.patterns.items():
        for i in range(0, len(vals), 6):
            out.append("\t".join([_q(pid)] + [_g(v) for v in vals[i:i + 6]]))
    section("CURVES", ";ID\tX-Value\tY-Value")
    for cid, c in wn.curves.items():
        fx, fy = {"HEAD": (q, L), "EFFICIENCY": (q, 1.0), "VOLUME": (L, L**3), "HEADLOSS": (q, L),
                  "VALVE": (1.0, 1.0), "GENERIC": (1.0, 1.0)}[c.kind]
        label = {"HEAD": "PUMP", "EFFICIENCY": "EFFICIENCY", "VOLUME": "VOLUME", "HEADLOSS": "HEADLOSS",
                 "VALVE": "VALVE", "GENERIC": "GENERIC"}[c.kind]
        out.append(f";{label}: {cid}")
        for x, y in zip(c.x, c.y):
            out.append(f"{_q(cid)}\t{_inv(x, fx)}\t{_inv(y, fy)}")
    section("CONTROLS")
    link_kind = wn.link_type()
    vtypes = wn.valve["valve_type"]
    ntype = wn.node_type()
    for c in wn.controls:
        if c.action == "SETTING":
            act = _g(c.setting) if link_kind[c.link] != "valve" else vset(vtypes[c.link], c.setting)
        else:
            act = c.action
        if c.condition in ("TIME", "CLOCKTIME"):
            cond = f"AT {c.condition} {_time_text(c.time_s)}"
        else:
            f = P if ntype[c.node] == "junction" else L
            cond = f"IF NODE {_q(c.node)} {c.condition} {_inv(c.value, f)}"
        out.append(f"LINK {_q(c.link)} {act} {cond}" + ("" if c.enabled else " DISABLED"))
    section("RULES")
    for rule in wn.rules:
        out.append(f"RULE {rule.name}")
        for p in rule.premises:
            obj = f"{p.object} {_q(p.id)} " if p.object != "SYSTEM" else "SYSTEM "
            value = _rule_value(p.attribute, p.value, p.id, wn, q, L, P)
            out.append(f"{p.logic} {obj}{p.attribute} {p.relation} {value}")
        for word, acts in (("THEN", rule.then_actions), ("ELSE", rule.else_actions)):
            for i, a in enumerate(acts):
                out.append(f"{word if i == 0 else 'AND'} {a.object} {_q(a.id)} {a.attribute} = "
                           f"{_rule_value(a.attribute, a.value, a.id, wn, q, L, P)}")
        if rule.priority:
            out.append(f"PRIORITY {_g(rule.priority)}")
        if not rule.enabled:
            out.append("DISABLED")
        out.append("")
    section("ENERGY")
    e = wn.energy
    out.append(f"Global Efficiency\t{_g(e.efficiency_pct)}")
    out.append(f"Global Price\t{_g(e.price)}")
    if e.price_pattern:
        out.append(f"Global Pattern\t{_q(e.price_pattern)}")
    out.append(f"Demand Charge\t{_g(e.demand_charge)}")
    for pid, row in wn.pump.iterrows():
        if row["efficiency_curve"]:
            out.append(f"Pump\t{_q(pid)}\tEfficiency\t{_q(row['efficiency_curve'])}")
        if not math.isnan(row["energy_price"]):
            out.append(f"Pump\t{_q(pid)}\tPrice\t{_g(row['energy_price'])}")
        if row["price_pattern"]:
            out.append(f"Pump\t{_q(pid)}\tPattern\t{_q(row['price_pattern'])}")
    section("EMITTERS", ";Junction\tCoefficient")

    def emitter_k(x: float) -> float:  # the reader's conversion
        return x * q / P ** o.emitter_exponent

    for jid, k in j["emitter_coefficient"].items():
        if k > 0:
            out.append(f"{_q(jid)}\t{_exact(k, k * P ** o.emitter_exponent / q, emitter_k)}")
    section("QUALITY", ";Node\tInitQual")
    for tbl in (j, r, t):
        for nid, v in tbl["initial_quality"].items():
            if v:
                out.append(f"{_q(nid)}\t{_g(v)}")
    for name in ("SOURCES", "REACTIONS", "MIXING", "LEAKAGE"):
        if name in wn.extra_sections:
            section(name)
            out.extend(wn.extra_sections[name])
    tm = wn.times
    section("TIMES")
    out += [f"Duration\t{_fmt_time(tm.duration_s)}", f"Hydraulic Timestep\t{_fmt_time(tm.hydraulic_step_s)}",
            f"Quality Timestep\t{_fmt_time(tm.quality_step_s)}", f"Pattern Timestep\t{_fmt_time(tm.pattern_step_s)}",
            f"Pattern Start\t{_fmt_time(tm.pattern_start_s)}", f"Report Timestep\t{_fmt_time(tm.report_step_s)}",
            f"Report Start\t{_fmt_time(tm.report_start_s)}", f"Start ClockTime\t{_fmt_time(tm.start_clocktime_s)}",
            f"Statistic\t{tm.statistic}"]
    if tm.rule_step_s:
        out.append(f"Rule Timestep\t{_fmt_time(tm.rule_step_s)}")
    if "REPORT" in wn.extra_sections:
        section("REPORT")
        out.extend(wn.extra_sections["REPORT"])
    section("OPTIONS")
    # EPANET reads a viscosity above 1e-3 as a multiple of water's at 20 °C, else as ft²/s or m²/s
    visc = _inv(o.viscosity_m2s, U.VISCOSITY)
    if float(visc) <= 1e-3:
        visc = _inv(o.viscosity_m2s, L**2)
    out += [f"Units\t{fu}", f"Pressure\t{pu}", f"Headloss\t{o.headloss}",
            f"Specific Gravity\t{_g(o.specific_gravity)}",
            f"Viscosity\t{visc}", f"Trials\t{o.trials}",
            f"Accuracy\t{_g(o.accuracy)}", f"CHECKFREQ\t{o.check_freq}", f"MAXCHECK\t{o.max_check}",
            f"DAMPLIMIT\t{_g(o.damp_limit)}",
            f"Unbalanced\t{o.unbalanced}" + (f" {o.unbalanced_extra_trials}" if o.unbalanced == "CONTINUE" else ""),
            f"Pattern\t{_q(o.pattern)}", f"Demand Multiplier\t{_g(o.demand_multiplier)}",
            f"Emitter Exponent\t{_g(o.emitter_exponent)}", f"Demand Model\t{o.demand_model}",
            f"Minimum Pressure\t{_inv(o.minimum_pressure_m, P)}"]
    # EPANET rejects a required pressure less than 0.1 above the minimum (error 208) and, when none is
    # given, uses minimum + 0.1: leave it out then (a default read back exactly; else clamped to that).
    pmin_txt, preq_txt = _inv(o.minimum_pressure_m, P), _inv(o.required_pressure_m, P)
    if float(preq_txt) - float(pmin_txt) >= 0.1:
        out.append(f"Required Pressure\t{preq_txt}")
    out.append(f"Pressure Exponent\t{_g(o.pressure_exponent)}")
    if o.head_error_m:
        out.append(f"HEADERROR\t{_inv(o.head_error_m, L)}")
    if o.flow_change_m3s:
        out.append(f"FLOWCHANGE\t{_inv(o.flow_change_m3s, q)}")
    if not o.emitter_backflow:
        out.append("BACKFLOW ALLOWED\tNO")
    out.extend(o.quality)
    section("COORDINATES", ";Node\tX-Coord\tY-Coord")
    for tbl in (j, r, t):
        for nid, row in tbl.iterrows():
            if not (math.isnan(row["x"]) or math.isnan(row["y"])):
                out.append(f"{_q(nid)}\t{_g(row['x'])}\t{_g(row['y'])}")
    section("TAGS")
    for tbl, word in ((j, "NODE"), (r, "NODE"), (t, "NODE"), (wn.pipe, "LINK"), (wn.pump, "LINK"),
                      (wn.valve, "LINK")):
        for ident, tag in tbl["tag"].items():
            if tag:
                out.append(f"{word}\t{_q(ident)}\t{_q(tag)}")
    for name in ("VERTICES", "LABELS", "BACKDROP"):
        if name in wn.extra_sections:
            section(name)
            out.extend(wn.extra_sections[name])
    out += ["", "[END]", ""]
    atomic_write_text(path, "\n".join(out))


def _rule_value(attr: str, v: float | str, ident: str, wn: WaterNetwork, q: float, L: float, P: float) -> str:
    if isinstance(v, str):
        return v
    if attr in ("TIME", "CLOCKTIME"):
        return _time_text(int(v))
    if attr in ("HEAD", "GRADE", "LEVEL"):
        return _inv(v, L)
    if attr == "PRESSURE":
        return _inv(v, P)
    if attr in ("DEMAND", "FLOW"):
        return _inv(v, q)
    if attr == "SETTING" and ident in wn.valve.index:
        vt = wn.valve.at[ident, "valve_type"]
        return _inv(v, P if vt in ("PRV", "PSV", "PBV") else q if vt == "FCV" else 1.0)
    return _g(v)
