"""Reading a scenario: YAML → validated :class:`~scenarios.schema.Scenario`, errors with the YAML path and
line; checks of every referenced element against the base twin; the scenario's content hash."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from twin.coupled import CoupledTwin, nearest_ids

from .schema import Scenario

__all__ = ["ScenarioError", "load_scenario", "parse_scenario", "check_against_twin", "scenario_hash"]


class ScenarioError(ValueError):
    """An invalid scenario: every message names the file, the line and the YAML path."""


def _node_at(root: yaml.Node | None, loc: tuple) -> yaml.Node | None:
    """The YAML node at a pydantic location (skipping the discriminator tags pydantic inserts)."""
    node = root
    for key in loc:
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(key)), None)
            if found is None:
                tag = next((v.value for k, v in node.value if k.value == "type"), None)
                if tag == key:  # a tagged-union member name: stay on this node
                    continue
                return node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return node
            node = node.value[key]
        else:
            return node
    return node


def _path_text(loc: tuple, root: yaml.Node | None) -> str:
    out = ""
    node = root
    for key in loc:
        if isinstance(key, int):
            out += f"[{key}]"
        elif isinstance(node, yaml.MappingNode) and not any(k.value == key for k, _ in node.value) and \
                next((v.value for k, v in node.value if k.value == "type"), None) == key:
            continue
        else:
            out += ("." if out else "") + str(key)
        node = _node_at(node, (key,)) if node is not None else None
    return out or "(top level)"


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate YAML text; raise :class:`ScenarioError` listing every problem as ``file:line: path: message``."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{source}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1: a scenario is a mapping of keys (name, season, modifications …)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            node = _node_at(root, loc)
            line = node.start_mark.line + 1 if node is not None else 1
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            elif err["type"] == "literal_error":
                msg = f"{msg} (got {err.get('input')!r})"
            lines.append(f"{source}:{line}: {_path_text(loc, root)}: {msg}")
        raise ScenarioError("invalid scenario:\n  " + "\n  ".join(lines)) from None


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read and validate a scenario YAML file (schema only; :func:`check_against_twin` checks the ids)."""
    p = Path(path)
    if not p.exists():
        raise ScenarioError(f"{p}: no such scenario file")
    return parse_scenario(p.read_text(encoding="utf-8"), str(p))


def _line_of(text: str | None, loc: tuple) -> str:
    if not text:
        return ""
    node = _node_at(yaml.compose(text), loc)
    return f":{node.start_mark.line + 1}" if node is not None else ""


def check_against_twin(sc: Scenario, twin: CoupledTwin, source: str = "<scenario>", text: str | None = None) -> None:
    """Every element, bus, district and corridor the scenario names must exist in the base twin; the error
    names the YAML path (and line when ``text`` is given) and the nearest valid ids."""
    g, w, r = twin.grid, twin.water, twin.roads
    energy = set(g.line.index) | set(g.transformer.index) | set(g.bus.index) | set(g.generator.index) | set(
        twin.bus_info["feeder"].astype(str)) | set(twin.bus_info["substation"].astype(str))
    energy.discard("")
    water = set(w.link_ids()) | set(w.tank.index) | set(w.reservoir.index)
    roads = set(r.link.index) | set(r.node.index)
    corridors = set(twin.road_links["corridor"].astype(str)) if "corridor" in twin.road_links else set()
    districts = set(twin.districts.index)
    buses = set(g.bus.index)
    problems = []

    def bad(loc: tuple, what: str, value: str, valid: set) -> None:
        problems.append(f"{source}{_line_of(text, loc)}: {_path_text(loc, yaml.compose(text) if text else None)}: "
                        f"{what} {value!r} does not exist; nearest: {nearest_ids(value, sorted(valid))}")

    for i, m in enumerate(sc.modifications):
        loc = ("modifications", i)
        if m.type == "outage":
            valid = {"energy": energy, "water": water, "roads": roads}[m.layer]
            if m.element not in valid:
                bad(loc + ("outage", "element"), f"{m.layer} element", m.element, valid)
        if m.type in ("add_pv", "add_battery", "add_ev_hub") and m.bus not in buses:
            bad(loc + (m.type, "bus"), "bus", m.bus, buses)
        for j, d in enumerate(getattr(m, "districts", []) or []):
            if d not in districts:
                bad(loc + (m.type, "districts", j), "district", d, districts)
        if m.type == "road_closure":
            for j, link in enumerate(m.links):
                if link not in r.link.index:
                    bad(loc + ("road_closure", "links", j), "road link", link, set(r.link.index))
            if m.corridor and m.corridor not in corridors:
                bad(loc + ("road_closure", "corridor"), "corridor", m.corridor, corridors)
    if problems:
        raise ScenarioError("the scenario names elements the twin does not have:\n  " + "\n  ".join(problems))


def scenario_hash(sc: Scenario, dataset: dict[str, Any] | None = None) -> str:
    """A stable content hash (16 hex digits) of the scenario and of the base dataset's file hashes: the same
    scenario on the same data always maps to the same run folder."""
    payload = {"scenario": sc.model_dump(mode="json"), "dataset": dataset or {}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
