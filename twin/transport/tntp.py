"""Read and write TNTP files (the format of the *Transportation Networks for Research* repository).

A network comes in up to four files:

* ``*_net.tntp``: metadata tags (``<NUMBER OF ZONES>``, ``<NUMBER OF NODES>``, ``<FIRST THRU NODE>``,
  ``<NUMBER OF LINKS>``, ``<ORIGINAL HEADER>``, ``<END OF METADATA>``), then one link a line:
  ``init_node term_node capacity length free_flow_time b power [speed toll link_type] ;``;
* ``*_trips.tntp``: ``<NUMBER OF ZONES>``, ``<TOTAL OD FLOW>``, ``<END OF METADATA>``, then blocks
  ``Origin k`` followed by ``destination : flow;`` entries, several a line;
* ``*_node.tntp``: a header line, then ``node x y ;``;
* ``*_flow.tntp``: a header line (``From To Volume Cost``), then one link a line (a solution).

Everywhere: ``~`` starts a comment (to the end of the line), ``;`` ends a record, columns are separated
by tabs or spaces, lines may end in CRLF and blank lines are ignored.

Ids: nodes are ``"1"`` … ``"N"`` (N = ``<NUMBER OF NODES>``, which some files use as the highest node
id rather than a count: every id up to it is a node, used by a link or not); zones are ``"1"`` … ``"Z"``
with the node of the same id as centroid.  Links have no ids in the format; they get *stable* ids from
their end nodes, ``"from-to"``, and ``"from-to#k"`` for the k-th (k >= 2) parallel link between the
same nodes in file order (:func:`link_ids`).  A flow file's rows get the same ids
(:func:`read_tntp_flows`), so a solution aligns with ``tn.link`` by label.

Errors name the file, the line and the problem; all errors are reported together (:class:`TntpError`).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text
from ..textnum import shortest
from .network import TransportNetwork

__all__ = ["read_tntp", "read_tntp_flows", "write_tntp", "link_ids", "TntpError", "TntpWarning"]

#: errors listed in the message of a :class:`TntpError` (all are in ``errors``)
MAX_LISTED = 50
LINK_COLUMNS = ("init_node", "term_node", "capacity", "length", "free_flow_time", "b", "power", "speed",
                "toll", "link_type")
_INT = re.compile(r"\+?[0-9]+\Z")
_TAG = re.compile(r"<([^>]*)>(.*)\Z")
_LENGTH_UNIT = re.compile(r"\blength\s*\(([^)]*)\)", re.IGNORECASE)


class TntpError(ValueError):
    """One or more problems in TNTP files; ``errors`` lists (file, line, message); line 0 = the whole file."""

    def __init__(self, errors: Sequence[tuple[str, int, str]]):
        self.errors = list(errors)
        self.path = self.errors[0][0] if self.errors else ""
        lines = [f"{p}:{ln}: {msg}" if ln else f"{p}: {msg}" for p, ln, msg in self.errors[:MAX_LISTED]]
        if len(self.errors) > MAX_LISTED:
            lines.append(f"… and {len(self.errors) - MAX_LISTED} more")
        more = f" ({len(self.errors)} errors)" if len(self.errors) > 1 else ""
        super().__init__(f"invalid TNTP input{more}:\n" + "\n".join(lines))


class TntpWarning(UserWarning):
    """A TNTP file is readable but inconsistent (link count or OD total differs from its metadata)."""


def link_ids(from_node: Sequence[str], to_node: Sequence[str]) -> list[str]:
    """Stable link ids: ``"from-to"``; the k-th (k >= 2) link between the same nodes is ``"from-to#k"``."""
    keys = pd.Series([f"{a}-{b}" for a, b in zip(from_node, to_node)], dtype=object)
    occurrence = keys.groupby(keys, sort=False).cumcount().to_numpy() + 1
    return [k if n == 1 else f"{k}#{n}" for k, n in zip(keys.tolist(), occurrence.tolist())]


# -- reading --------------------------------------------------------------------------------------


class _File:
    """One input file: its lines and a shared error list."""

    def __init__(self, path: str | os.PathLike, errors: list[tuple[str, int, str]]):
        self.path = os.fspath(path)
        self.errors = errors
        data = Path(path).read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        self.lines = [ln.rstrip("\r") for ln in text.split("\n")]

    def err(self, line: int, msg: str) -> None:
        self.errors.append((self.path, line, msg))

    def records(self, start: int = 0):
        """(line number, tokens) of the non-blank lines from index ``start``; comments and ``;`` removed."""
        for i in range(start, len(self.lines)):
            body = self.lines[i].partition("~")[0]
            tokens = body.replace(";", " ").split()
            if tokens:
                yield i + 1, tokens

    def metadata(self, required: Sequence[str]) -> tuple[dict[str, tuple[int, str]], int, int]:
        """Tags before ``<END OF METADATA>`` → ({TAG: (line, text)}, index of the first data line, END's line)."""
        tags: dict[str, tuple[int, str]] = {}
        end_no = 0
        start = len(self.lines)
        for i, raw in enumerate(self.lines):
            s = raw.strip()
            if s.startswith("<"):
                m = _TAG.match(s)
                if not m:
                    self.err(i + 1, f"unterminated metadata tag {s[:40]!r}")
                    continue
                tag = " ".join(m.group(1).upper().split())
                if tag == "END OF METADATA":
                    end_no, start = i + 1, i + 1
                    break
                if tag in tags:
                    self.err(i + 1, f"<{tag}> given twice (first on line {tags[tag][0]})")
                    continue
                tags[tag] = (i + 1, m.group(2))
            elif raw.partition("~")[0].replace(";", " ").strip():
                self.err(i + 1, "data line before <END OF METADATA> (the metadata block must end with it)")
                start = i
                break
        else:
            self.err(0, "missing <END OF METADATA>")
        for tag in required:
            if tag not in tags:
                self.err(end_no, f"missing <{tag}> in the metadata")
        return tags, start, end_no

    def int_tag(self, tags: dict[str, tuple[int, str]], tag: str, minimum: int) -> int | None:
        if tag not in tags:
            return None
        no, text = tags[tag]
        tokens = text.partition("~")[0].replace(";", " ").split()
        if len(tokens) != 1 or not _INT.match(tokens[0]):
            self.err(no, f"<{tag}> must be an integer, got {text.strip()!r}")
            return None
        v = int(tokens[0])
        if v < minimum:
            self.err(no, f"<{tag}> must be >= {minimum}, got {v}")
            return None
        return v

    def node(self, no: int, token: str, what: str, n_max: int | None) -> int | None:
        """A node (or zone) id in 1..n_max (no upper check when n_max is None)."""
        if not _INT.match(token):
            self.err(no, f"{what} {token!r} is not a positive integer id")
            return None
        v = int(token)
        if v < 1 or (n_max is not None and v > n_max):
            limit = "<NUMBER OF NODES>" if what.endswith("node") else "<NUMBER OF ZONES>"
            self.err(no, f"{what} {v} is not defined (ids run from 1 to {limit} {n_max})")
            return None
        return v

    def num(self, no: int, token: str, what: str, *, minimum: float | None = None,
            positive: bool = False) -> float | None:
        try:
            if "_" in token:  # float() would take '1_000'
                raise ValueError(token)
            v = float(token)
        except ValueError:
            self.err(no, f"{what} {token!r} is not a number")
            return None
        if not math.isfinite(v):
            self.err(no, f"{what} {token!r} is not finite")
            return None
        if positive and v <= 0:
            self.err(no, f"{what} must be positive, got {token}")
            return None
        if minimum is not None and v < minimum:
            self.err(no, f"{what} must be >= {minimum:g}, got {token}")
            return None
        return v


def _strip_suffix(path: str | os.PathLike, suffix: str) -> str:
    name = Path(path).name
    for s in (f"_{suffix}.tntp", ".tntp"):
        if name.lower().endswith(s.lower()):
            return name[: -len(s)]
    return Path(path).stem


def _read_net(f: _File) -> dict:
    tags, start, _ = f.metadata(("NUMBER OF ZONES", "NUMBER OF NODES", "NUMBER OF LINKS"))
    n_nodes = f.int_tag(tags, "NUMBER OF NODES", 1)
    n_zones = f.int_tag(tags, "NUMBER OF ZONES", 0)
    n_links = f.int_tag(tags, "NUMBER OF LINKS", 0)
    first_thru = f.int_tag(tags, "FIRST THRU NODE", 1)
    if n_nodes is not None and n_zones is not None and n_zones > n_nodes:
        f.err(tags["NUMBER OF ZONES"][0], f"<NUMBER OF ZONES> {n_zones} exceeds <NUMBER OF NODES> {n_nodes} "
              "(zone k is node k)")
    if n_nodes is not None and first_thru is not None and first_thru > n_nodes + 1:
        f.err(tags["FIRST THRU NODE"][0], f"<FIRST THRU NODE> {first_thru} exceeds <NUMBER OF NODES> + 1")
    header = tags.get("ORIGINAL HEADER", (0, ""))[1]
    m = _LENGTH_UNIT.search(header)
    cols: list[list] = [[] for _ in LINK_COLUMNS]
    n_read = 0
    for no, t in f.records(start):
        if t[0].startswith("<"):
            f.err(no, f"metadata tag {t[0]!r} after <END OF METADATA>")
            continue
        n_read += 1
        if not 7 <= len(t) <= 10:
            f.err(no, f"a link line has 7 to 10 columns ({' '.join(LINK_COLUMNS)}), found {len(t)}")
            continue
        t = t + ["0", "0", "1"][len(t) - 7:]
        a = f.node(no, t[0], "init_node", n_nodes)
        b = f.node(no, t[1], "term_node", n_nodes)
        vals = [
            a, b,
            f.num(no, t[2], "capacity", positive=True),
            f.num(no, t[3], "length", minimum=0),
            f.num(no, t[4], "free_flow_time", minimum=0),
            f.num(no, t[5], "b", minimum=0),
            f.num(no, t[6], "power", minimum=0),
            f.num(no, t[7], "speed"),
            f.num(no, t[8], "toll"),
            f.num(no, t[9], "link_type"),
        ]
        if vals[9] is not None and vals[9] != int(vals[9]):
            f.err(no, f"link_type must be an integer, got {t[9]}")
            vals[9] = None
        if a is not None and a == b:
            f.err(no, f"link starts and ends at node {a}")
            continue
        if any(v is None for v in vals):
            continue
        for c, v in zip(cols, vals):
            c.append(v)
    if n_links is not None and n_read != n_links:
        warnings.warn(f"{f.path}: <NUMBER OF LINKS> is {n_links} but the file has {n_read} link lines",
                      TntpWarning, stacklevel=3)
    return {"n_nodes": n_nodes, "n_zones": n_zones, "first_thru": first_thru or 1, "cols": cols,
            "length_unit": m.group(1).strip() if m else ""}


def _read_nodes(f: _File, n_nodes: int | None, lonlat: bool) -> dict[int, tuple[float, float]]:
    coords: dict[int, tuple[float, float]] = {}
    lines: dict[int, int] = {}
    first = True
    for no, t in f.records():
        if first:
            first = False
            if not _INT.match(t[0]):  # the header line (Node X Y)
                continue
        if len(t) != 3:
            f.err(no, f"a node line has 3 columns (node x y), found {len(t)}")
            continue
        node = f.node(no, t[0], "node", n_nodes)
        x = f.num(no, t[1], "x")
        y = f.num(no, t[2], "y")
        if lonlat and x is not None and not -180 <= x <= 180:
            f.err(no, f"longitude {t[1]} is outside -180..180")
            x = None
        if lonlat and y is not None and not -90 <= y <= 90:
            f.err(no, f"latitude {t[2]} is outside -90..90")
            y = None
        if node is None or x is None or y is None:
            continue
        if node in coords:
            f.err(no, f"node {node} given twice (first on line {lines[node]})")
            continue
        coords[node] = (x, y)
        lines[node] = no
    return coords


def _read_trips(f: _File, n_zones_net: int | None) -> tuple[list[int], list[int], list[float]]:
    tags, start, _ = f.metadata(("NUMBER OF ZONES",))
    n_zones = f.int_tag(tags, "NUMBER OF ZONES", 0)
    if n_zones is not None and n_zones_net is not None and n_zones != n_zones_net:
        f.err(tags["NUMBER OF ZONES"][0], f"<NUMBER OF ZONES> {n_zones} differs from the network's {n_zones_net}")
    zmax = n_zones_net if n_zones_net is not None else n_zones
    total = None
    if "TOTAL OD FLOW" in tags:
        no, text = tags["TOTAL OD FLOW"]
        total_text = text.partition("~")[0].replace(";", " ").strip()
        total = f.num(no, total_text, "<TOTAL OD FLOW>", minimum=0)
    origins: list[int] = []
    dests: list[int] = []
    flows: list[float] = []
    origin: int | None = None
    block_seen: dict[int, int] = {}  # origin → line of its block
    dest_seen: dict[int, int] = {}  # destination → line, in the current block
    bad_block = False
    total_sum = 0.0
    for no, _ in f.records(start):
        tokens = f.lines[no - 1].partition("~")[0].replace(";", " ").replace(":", " : ").split()
        if tokens[0].startswith("<"):
            f.err(no, f"metadata tag {tokens[0]!r} after <END OF METADATA>")
            continue
        if tokens[0].lower() == "origin":
            dest_seen = {}
            origin, bad_block = None, True
            if len(tokens) < 2:
                f.err(no, "'Origin' without a zone id")
                continue
            o = f.node(no, tokens[1], "origin zone", zmax)
            tokens = tokens[2:]
            if o is not None:
                if o in block_seen:
                    f.err(no, f"second block for origin {o} (first on line {block_seen[o]})")
                else:
                    block_seen[o] = no
                    origin, bad_block = o, False
        elif origin is None and not bad_block:
            f.err(no, "demand entries before the first 'Origin' line")
            bad_block = True
            continue
        k = 0
        while k < len(tokens):
            entry = tokens[k:k + 3]
            if len(entry) < 3 or entry[1] != ":" or ":" in (entry[0], entry[2]):
                f.err(no, f"expected 'destination : flow', found {' '.join(entry)!r}")
                break
            k += 3
            d = f.node(no, entry[0], "destination zone", zmax)
            v = f.num(no, entry[2], f"demand to zone {entry[0]}", minimum=0)
            if origin is None or d is None or v is None:
                continue
            if d in dest_seen:
                f.err(no, f"demand from zone {origin} to zone {d} given twice (first on line {dest_seen[d]})")
                continue
            dest_seen[d] = no
            total_sum += v
            if v != 0:
                origins.append(origin)
                dests.append(d)
                flows.append(v)
    if total is not None and not f.errors:
        decimals = len(total_text.partition(".")[2]) if "e" not in total_text.lower() else 0
        tol = 0.5 * 10.0 ** -decimals + 1e-9 * abs(total)
        if abs(total_sum - total) > tol:
            warnings.warn(f"{f.path}: the demand sums to {total_sum!r}, <TOTAL OD FLOW> says {total_text}",
                          TntpWarning, stacklevel=3)
    return origins, dests, flows


def read_tntp(net_path: str | os.PathLike, trips_path: str | os.PathLike | None = None,
              node_path: str | os.PathLike | None = None, *, name: str | None = None,
              length_unit: str | None = None, lonlat: bool = False) -> TransportNetwork:
    """Read a TNTP network (``*_net.tntp``), its demand (``*_trips.tntp``) and node coordinates (``*_node.tntp``).

    * nodes ``"1"`` … ``"<NUMBER OF NODES>"``, all of them; ``through`` is False for ids below
      ``<FIRST THRU NODE>`` (all True when the tag is absent).  A link to a node outside 1..N is an error.
    * links in file order, with ids ``"from-to"`` (``"from-to#k"`` for the k-th parallel link,
      :func:`link_ids`); missing trailing columns take speed 0, toll 0, link_type 1.  Zero free-flow
      times and BPR power 0 are allowed; capacity must be positive.
    * zones ``"1"`` … ``"<NUMBER OF ZONES>"``, zone k's centroid is node k.
    * od: one row per non-zero entry (ids ``"1"``, ``"2"`` … in file order), intrazonal entries
      included; static car demand (hour -1, vehicle_class ``"car"``).
    * node file: ``x``, ``y``; with ``lonlat=True`` (the file's X, Y are WGS84 longitude, latitude,
      as SiouxFalls' are) also ``lon``, ``lat``.  Nodes the file omits keep NaN coordinates.

    ``name`` defaults to the file name without ``_net.tntp``.  ``length_unit`` defaults to the unit the
    ``<ORIGINAL HEADER>`` gives as ``Length (ft)``, else ``""`` (the format has no unit field).

    Raises :class:`TntpError` listing every problem (file, line, what); warns (:class:`TntpWarning`)
    when the link count or the demand total differs from the metadata.
    """
    errors: list[tuple[str, int, str]] = []
    net_file = _File(net_path, errors)
    net = _read_net(net_file)
    coords: dict[int, tuple[float, float]] = {}
    if node_path is not None:
        coords = _read_nodes(_File(node_path, errors), net["n_nodes"], lonlat)
    od: tuple[list[int], list[int], list[float]] = ([], [], [])
    if trips_path is not None:
        od = _read_trips(_File(trips_path, errors), net["n_zones"])
    if errors:
        raise TntpError(errors)

    n_nodes, n_zones = net["n_nodes"], net["n_zones"]
    node_ids = [str(i) for i in range(1, n_nodes + 1)]
    xy = np.full((n_nodes, 2), np.nan)
    if coords:
        keys = np.fromiter(coords, dtype=np.int64, count=len(coords))
        xy[keys - 1] = np.array(list(coords.values()), dtype=float)
    node = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=node_ids)
    if lonlat:
        node["lon"], node["lat"] = xy[:, 0], xy[:, 1]
    node["through"] = np.arange(1, n_nodes + 1) >= net["first_thru"]

    c = net["cols"]
    a = [str(v) for v in c[0]]
    b = [str(v) for v in c[1]]
    link = pd.DataFrame({
        "from_node": a, "to_node": b, "capacity_veh_h": c[2], "length": c[3], "free_flow_time_min": c[4],
        "alpha": c[5], "beta": c[6], "speed": c[7], "toll": c[8], "link_type": np.asarray(c[9], dtype=np.int64),
    }, index=link_ids(a, b))

    zone_ids = [str(i) for i in range(1, n_zones + 1)]
    zone = pd.DataFrame({"node": zone_ids}, index=zone_ids)
    origins, dests, trips = od
    odf = pd.DataFrame({"origin": [str(v) for v in origins], "destination": [str(v) for v in dests],
                        "trips_veh_h": np.asarray(trips, dtype=float), "hour": -1, "vehicle_class": "car"},
                       index=[str(i) for i in range(1, len(trips) + 1)])
    tn = TransportNetwork(
        _strip_suffix(net_path, "net") if name is None else name,
        {"node": node, "link": link, "zone": zone},
        length_unit=net["length_unit"] if length_unit is None else length_unit,
    )
    tn.od = odf  # after the constructor has added the "car" vehicle class the rows refer to
    return tn


def read_tntp_flows(path: str | os.PathLike) -> pd.DataFrame:
    """Read a TNTP link-flow solution (``*_flow.tntp``: ``From To Volume Cost``, a header line optional).

    Returns columns ``from_node``, ``to_node`` (str), ``flow``, ``cost`` in file order, indexed by the
    same stable ids as :func:`read_tntp`'s links (``"from-to"``; the k-th row with the same end nodes is
    ``"from-to#k"``): parallel links are matched in file order, so ``flows.reindex(tn.link.index)``
    aligns a solution with a network read by :func:`read_tntp`, whatever the row order.
    Raises :class:`TntpError` listing every malformed line.
    """
    errors: list[tuple[str, int, str]] = []
    f = _File(path, errors)
    a: list[str] = []
    b: list[str] = []
    flow: list[float] = []
    cost: list[float] = []
    first = True
    for no, t in f.records():
        if first:
            first = False
            if not _INT.match(t[0]):  # the header line (From To Volume Cost)
                continue
        if len(t) != 4:
            f.err(no, f"a flow line has 4 columns (from to volume cost), found {len(t)}")
            continue
        vals = (f.node(no, t[0], "from node", None), f.node(no, t[1], "to node", None),
                f.num(no, t[2], "volume"), f.num(no, t[3], "cost"))
        if any(v is None for v in vals):
            continue
        a.append(str(vals[0]))
        b.append(str(vals[1]))
        flow.append(vals[2])
        cost.append(vals[3])
    if errors:
        raise TntpError(errors)
    df = pd.DataFrame({"from_node": pd.Series(a, dtype=object), "to_node": pd.Series(b, dtype=object),
                       "flow": np.asarray(flow, dtype=float), "cost": np.asarray(cost, dtype=float)})
    df.index = pd.Index(link_ids(a, b), dtype=object, name="id")
    return df


# -- writing --------------------------------------------------------------------------------------


_g = shortest


def _int_ids(ids, what: str) -> np.ndarray:
    bad = [i for i in ids if not (isinstance(i, str) and i.isascii() and i.isdigit() and i[0] != "0")]
    if bad:
        raise ValueError(f"TNTP needs {what} ids 1, 2, 3 …; {bad[0]!r} is not one")
    return np.array([int(i) for i in ids], dtype=np.int64)


def write_tntp(tn: TransportNetwork, net_path: str | os.PathLike, trips_path: str | os.PathLike | None = None,
               node_path: str | os.PathLike | None = None) -> None:
    """Write ``tn`` as TNTP files (each atomically): the network, and its demand and node x/y if paths are given.

    Numbers are written with the fewest digits that read back exactly, so :func:`read_tntp` gives an
    equal network (``equals``) for a network it read.  Link ids are not stored (the format has none):
    links are written in table order and read back with :func:`link_ids` ids.  ``length_unit`` goes into
    the ``<ORIGINAL HEADER>`` (``Length (ft)``), where :func:`read_tntp` finds it.

    The format constrains the network; ``ValueError`` otherwise: node ids ``"1"``, ``"2"`` … (gaps are
    read back as unconnected nodes), zones ``"1"`` … ``"Z"`` with zone k at node k, non-through nodes
    exactly those below some id (``<FIRST THRU NODE>``), and (for the trips file) only static car demand
    (hour -1, vehicle_class ``"car"``) with one row per (origin, destination).  Zero-demand rows are not
    written (the reader drops them).
    """
    node, link, zone, od = tn.node, tn.link, tn.zone, tn.od
    nid = _int_ids(node.index, "node")
    n_nodes = int(nid.max()) if len(nid) else 0
    z = len(zone)
    if list(zone.index) != [str(i) for i in range(1, z + 1)]:
        raise ValueError("TNTP needs zone ids 1 … number of zones, in order")
    if (zone["node"].to_numpy() != zone.index.to_numpy()).any():
        k = int(np.flatnonzero(zone["node"].to_numpy() != zone.index.to_numpy())[0])
        raise ValueError(f"TNTP puts zone k at node k; zone {zone.index[k]!r} is at node {zone['node'].iat[k]!r}")
    if z > n_nodes:
        raise ValueError(f"{z} zones but the highest node id is {n_nodes}")
    through = node["through"].to_numpy()
    first_thru = int(nid[~through].max()) + 1 if (~through).any() else 1
    if (through & (nid < first_thru)).any():
        raise ValueError("TNTP can only mark the nodes below <FIRST THRU NODE> as not through; "
                         f"node {node.index[through & (nid < first_thru)][0]!r} is through")

    unit = f"Length ({tn.length_unit})" if tn.length_unit else "Length"
    out = [
        f"<NUMBER OF ZONES> {z}",
        f"<NUMBER OF NODES> {n_nodes}",
        f"<FIRST THRU NODE> {first_thru}",
        f"<NUMBER OF LINKS> {len(link)}",
        f"<ORIGINAL HEADER>~\tTail\tHead\tCapacity (veh/h)\t{unit}\tFree Flow Time (min)\tB\tPower\tSpeed\tToll"
        "\tType\t;",
        "<END OF METADATA>",
        "",
        "",
        "~\t" + "\t".join(LINK_COLUMNS) + "\t;",
    ]
    cols = [link[c].tolist() for c in ("capacity_veh_h", "length", "free_flow_time_min", "alpha", "beta",
                                         "speed", "toll")]
    for a, b, *vals, lt in zip(link["from_node"].tolist(), link["to_node"].tolist(), *cols,
                                link["link_type"].tolist()):
        out.append(f"\t{a}\t{b}\t" + "\t".join(_g(v) for v in vals) + f"\t{lt}\t;")
    texts = [(net_path, "\n".join(out) + "\n")]

    if trips_path is not None:
        texts.append((trips_path, _trips_text(od, z)))
    if node_path is not None:
        ok = np.isfinite(node["x"].to_numpy()) & np.isfinite(node["y"].to_numpy())
        lines = ["Node\tX\tY\t;"] + [f"{i}\t{_g(x)}\t{_g(y)}\t;" for i, x, y in
                                       zip(node.index[ok], node["x"].to_numpy()[ok], node["y"].to_numpy()[ok])]
        texts.append((node_path, "\n".join(lines) + "\n"))
    for path, text in texts:
        atomic_write_text(path, text)


def _trips_text(od: pd.DataFrame, z: int) -> str:
    static = (od["hour"].to_numpy() == -1) & (od["vehicle_class"].to_numpy() == "car")
    if not static.all():
        k = int(np.flatnonzero(~static)[0])
        raise ValueError(f"TNTP trips files hold static car demand only (hour -1, vehicle_class 'car'); od row "
                         f"{od.index[k]!r} has hour {od['hour'].iat[k]} and class {od['vehicle_class'].iat[k]!r}")
    od = od[od["trips_veh_h"].to_numpy() != 0]
    dup = od.duplicated(["origin", "destination"])
    if dup.any():
        raise ValueError(f"od row {od.index[dup.to_numpy()][0]!r} repeats an (origin, destination) pair; "
                         "TNTP holds one value per pair")
    by_origin: dict[str, list[tuple[str, float]]] = {str(i): [] for i in range(1, z + 1)}
    for o, d, v in zip(od["origin"].tolist(), od["destination"].tolist(), od["trips_veh_h"].tolist()):
        by_origin[o].append((d, v))
    total = float(od["trips_veh_h"].sum())
    out = [f"<NUMBER OF ZONES> {z}", f"<TOTAL OD FLOW> {_g(total)}", "<END OF METADATA>", "", ""]
    for o, entries in by_origin.items():
        out.append(f"Origin\t{o}")
        for k in range(0, len(entries), 5):
            out.append("".join(f"{d:>5} : {_g(v)};" for d, v in entries[k:k + 5]))
        out.append("")
    return "\n".join(out) + "\n"
