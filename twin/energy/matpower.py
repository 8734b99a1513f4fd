"""MATPOWER case files (format version 2, ``.m``): reader and writer.

``read_matpower(path)`` builds a :class:`~twin.energy.grid.Grid`; the mapping is:

* ``mpc.bus`` → ``bus`` (id = bus number as a string; type 4 → ``in_service=False``),
  with PD/QD → one ``load`` per bus (id = bus id) and GS/BS → one ``shunt`` per bus;
* ``mpc.branch`` → ``line`` when TAP = 0 and SHIFT = 0, else ``transformer``
  (ids = 1-based row numbers, shared by both tables, so file order survives);
* ``mpc.gen`` → ``generator`` (ids = 1-based row numbers);
* ``mpc.gencost`` → ``generator_cost`` (reactive-cost rows get id ``"<gen>:q"``);
* ``mpc.bus_name``, ``mpc.gentype``, ``mpc.genfuel`` → ``name``, ``kind``, ``fuel``.

Optional result columns (OPF multipliers, stored branch flows) are kept.  Other
``mpc`` fields are ignored with a warning.  The unit conversions of MATPOWER's
distribution cases (impedances in ohms, loads in kW, converted by statements
after the matrices) are recognised and applied; any other statement that
indexes into ``mpc`` is refused with an error rather than silently ignored.  ``write_matpower`` writes every
number with 17 significant digits, so ``read(write(grid))`` equals ``grid`` for a
grid read from a MATPOWER file; what the format cannot carry (coordinates,
element names, free-form ids, per-load detail) is listed in a warning.
"""

from __future__ import annotations

import ast
import bisect
import math
import operator
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text
from ..textnum import shortest
from .grid import Grid

__all__ = ["read_matpower", "write_matpower", "MatpowerFormatError"]


class MatpowerFormatError(ValueError):
    """A MATPOWER case file is malformed; the message names file, matrix and line."""


# Columns of the MATPOWER matrices (0-based), with their twin names.
_BUS_COLS = ["bus_i", "type", "pd", "qd", "gs", "bs", "area", "vm", "va", "base_kv", "zone", "vmax", "vmin",
             "lam_p", "lam_q", "mu_vmax", "mu_vmin"]
_GEN_COLS = ["bus", "p_mw", "q_mvar", "q_max_mvar", "q_min_mvar", "vm_pu", "mbase_mva", "status",
             "p_max_mw", "p_min_mw", "pc1_mw", "pc2_mw", "qc1min_mvar", "qc1max_mvar", "qc2min_mvar",
             "qc2max_mvar", "ramp_agc_mw_min", "ramp_10_mw", "ramp_30_mw", "ramp_q_mvar_min", "apf",
             "mu_pmax", "mu_pmin", "mu_qmax", "mu_qmin"]
_BRANCH_COLS = ["bus0", "bus1", "r_pu", "x_pu", "b_pu", "rate_a_mva", "rate_b_mva", "rate_c_mva",
                "tap", "shift_deg", "status", "angmin_deg", "angmax_deg", "pf_mw", "qf_mvar", "pt_mw",
                "qt_mvar", "mu_sf", "mu_st", "mu_angmin", "mu_angmax"]
_MIN_COLS = {"bus": 13, "gen": 10, "branch": 11, "gencost": 4}
_STD_COLS = {"bus": 13, "gen": 21, "branch": 13}
_BUS_TYPES = {1: "pq", 2: "pv", 3: "ref"}
_KNOWN = {"version", "baseMVA", "bus", "gen", "branch", "gencost", "bus_name", "gentype", "genfuel"}


@dataclass
class _Matrix:
    values: np.ndarray  # 2-D float
    lines: list[int]  # 1-based source line of each row


class _Source:
    """Comment-free text of a case file with a map from offsets to line numbers."""

    def __init__(self, path: Path):
        self.path = path
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        cleaned = [_strip_comment(line) for line in lines]
        self.text = "\n".join(cleaned)
        self.starts = np.cumsum([0] + [len(c) + 1 for c in cleaned[:-1]]).tolist()

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def error(self, offset: int, what: str) -> MatpowerFormatError:
        return MatpowerFormatError(f"{self.path}:{self.line_of(offset)}: {what}")


def _strip_comment(line: str) -> str:
    in_quote = False
    for i, ch in enumerate(line):
        if ch == "'":
            # a quote after an identifier/closing bracket is a transpose, not a string
            if not in_quote and i > 0 and (line[i - 1].isalnum() or line[i - 1] in ")]}_."):
                continue
            in_quote = not in_quote
        elif ch == "%" and not in_quote:
            return line[:i]
    return line


_NUM_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan, "+nan": math.nan,
            "-nan": math.nan}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def _number(token: str) -> float:
    if _NUM_RE.match(token):
        return float(token.replace("d", "e").replace("D", "e"))
    low = token.lower()
    if low in _SPECIAL:
        return _SPECIAL[low]
    # simple arithmetic such as 50/3 or -1e3*2 (seen in some MATPOWER cases)
    try:
        node = ast.parse(token.replace("^", "**"), mode="eval").body
    except SyntaxError:
        raise ValueError(token) from None
    return float(_eval(node, token))


def _eval(node: ast.AST, token: str) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name) and node.id.lower() in ("inf", "nan"):
        return _SPECIAL[node.id.lower()]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, token)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left, token), _eval(node.right, token))
    raise ValueError(token)


def _closing(src: _Source, start: int, open_ch: str, close_ch: str, field: str) -> int:
    end = src.text.find(close_ch, start + 1)
    nxt = src.text.find("mpc.", start + 1)
    if end < 0 or 0 <= nxt < end:
        raise src.error(start, f"mpc.{field}: '{open_ch}' is never closed with '{close_ch}'"
                        + (f" before line {src.line_of(nxt)}" if nxt >= 0 else ""))
    return end


def _parse_matrix(src: _Source, start: int, end: int, field: str) -> _Matrix:
    body = src.text[start + 1:end]
    rows: list[list[float]] = []
    lines: list[int] = []
    pos = start + 1
    # rows end at ';' or newline; '...' continues a row on the next line
    for m in re.finditer(r"[^;\n]*(;|\n|$)", body):
        chunk = m.group(0)
        if not chunk:
            continue
        row_text = chunk.rstrip(";\n")
        off = pos + m.start()
        if "..." in row_text:
            raise src.error(off, f"mpc.{field}: line continuation '...' inside a matrix is not supported")
        tokens = [t for t in re.split(r"[\s,]+", row_text.strip()) if t]
        if not tokens:
            continue
        try:
            rows.append([_number(t) for t in tokens])
        except ValueError as exc:
            raise src.error(off, f"mpc.{field}: non-numeric value {exc.args[0]!r}") from None
        lines.append(src.line_of(off + len(row_text) - len(row_text.lstrip())))
    width = len(rows[0]) if rows else 0
    for r, ln in zip(rows, lines):
        if len(r) != width:
            raise MatpowerFormatError(
                f"{src.path}:{ln}: mpc.{field}: row has {len(r)} columns, the first row has {width}"
            )
    return _Matrix(np.array(rows, dtype=float).reshape(len(rows), width), lines)


def _parse_cell(src: _Source, start: int, end: int, field: str) -> list[str]:
    body = src.text[start + 1:end]
    items = re.findall(r"'((?:[^']|'')*)'", body)
    rest = re.sub(r"'((?:[^']|'')*)'", "", body)
    if re.search(r"[^\s;,]", rest):
        raise src.error(start, f"mpc.{field}: cell array must hold quoted strings only")
    return [s.replace("''", "'") for s in items]


# The two post-processing idioms of MATPOWER's distribution cases (case33bw, case69, …): branch
# impedances given in ohms and loads in kW.  Recognised exactly; any other statement that indexes
# into mpc would change the case in MATLAB and is refused rather than silently ignored.
_IDIOMS = {
    "vbase": re.compile(r"Vbase\s*=\s*mpc\.bus\(\s*1\s*,\s*BASE_KV\s*\)\s*\*\s*1e3\s*;"),
    "sbase": re.compile(r"Sbase\s*=\s*mpc\.baseMVA\s*\*\s*1e6\s*;"),
    "ohm_to_pu": re.compile(
        r"mpc\.branch\(\s*:\s*,\s*\[\s*BR_R[\s,]+BR_X\s*\]\s*\)\s*=\s*mpc\.branch\(\s*:\s*,\s*\[\s*BR_R[\s,]+"
        r"BR_X\s*\]\s*\)\s*/\s*\(\s*Vbase\s*\^\s*2\s*/\s*Sbase\s*\)\s*;"),
    "kw_to_mw": re.compile(
        r"mpc\.bus\(\s*:\s*,\s*\[\s*PD[\s,]+QD\s*\]\s*\)\s*=\s*mpc\.bus\(\s*:\s*,\s*\[\s*PD[\s,]+QD\s*\]\s*\)"
        r"\s*/\s*1e3\s*;"),
}


def _take_idioms(src: _Source) -> set[str]:
    """Find and blank out the recognised unit-conversion statements (line numbers are kept)."""
    found = set()
    for name, rx in _IDIOMS.items():
        for m in list(rx.finditer(src.text)):
            found.add(name)
            blank = re.sub(r"[^\n]", " ", m.group(0))
            src.text = src.text[:m.start()] + blank + src.text[m.end():]
    if "ohm_to_pu" in found and not {"vbase", "sbase"} <= found:
        raise MatpowerFormatError(f"{src.path}: branch impedances are converted from ohms without the "
                                  "usual Vbase/Sbase definitions")
    return found


def _read_fields(src: _Source) -> dict[str, tuple[object, int]]:
    fields: dict[str, tuple[object, int]] = {}
    # statements that change a matrix after it is defined would be silently lost: refuse them
    indexed = re.search(r"\bmpc\.(\w+)\s*[({]", src.text)
    if indexed:
        raise src.error(indexed.start(), f"indexed assignment or call on mpc.{indexed.group(1)} is not "
                        "supported; apply the change to the matrix itself")
    for m in re.finditer(r"\bmpc\.(\w+)\.\w+", src.text):
        warnings.warn(f"{src.path}:{src.line_of(m.start())}: mpc.{m.group(1)} sub-fields are not used by "
                      "Berkane Twin and are ignored", stacklevel=3)
    for m in re.finditer(r"\bmpc\.(\w+)\s*=\s*", src.text):
        name, pos = m.group(1), m.end()
        if pos >= len(src.text):
            raise src.error(m.start(), f"mpc.{name}: missing value")
        ch = src.text[pos]
        if ch == "[":
            end = _closing(src, pos, "[", "]", name)
            if src.text[end + 1:end + 2] == "'":
                raise src.error(end, f"mpc.{name}: transposed matrices (]') are not supported")
            fields[name] = (_parse_matrix(src, pos, end, name), m.start())
        elif ch == "{":
            end = _closing(src, pos, "{", "}", name)
            fields[name] = (_parse_cell(src, pos, end, name), m.start())
        elif ch == "'":
            end = src.text.find("'", pos + 1)
            fields[name] = (src.text[pos + 1:end], m.start())
        else:
            stop = re.search(r"[;\n]", src.text[pos:])
            token = src.text[pos:pos + stop.start()] if stop else src.text[pos:]
            try:
                fields[name] = (_number(token.strip()), m.start())
            except ValueError:
                raise src.error(m.start(), f"mpc.{name}: cannot read value {token.strip()!r}") from None
    return fields


def _matrix(fields, name: str, src: _Source, required: bool = True) -> _Matrix | None:
    if name not in fields:
        if required:
            raise MatpowerFormatError(f"{src.path}: missing matrix mpc.{name}")
        return None
    value, off = fields[name]
    if not isinstance(value, _Matrix):
        raise src.error(off, f"mpc.{name} must be a matrix")
    if value.values.shape[0] and value.values.shape[1] < _MIN_COLS[name]:
        raise MatpowerFormatError(
            f"{src.path}:{value.lines[0]}: mpc.{name} has {value.values.shape[1]} columns, "
            f"at least {_MIN_COLS[name]} expected"
        )
    return value


# Columns that may hold ±Inf (limits); everywhere else in the standard columns a value must be finite.
_INF_OK = {"bus": {11, 12}, "gen": {3, 4, 8, 9}, "branch": {5, 6, 7, 11, 12}, "gencost": set()}


def _check_values(m: _Matrix, name: str, path: Path) -> None:
    std = m.values[:, :_STD_COLS.get(name, m.values.shape[1])]
    bad = np.isnan(std)
    inf_ok = np.zeros(std.shape[1], bool)
    inf_ok[[c for c in _INF_OK[name] if c < std.shape[1]]] = True
    bad |= np.isinf(std) & ~inf_ok[None, :]
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise MatpowerFormatError(
            f"{path}:{m.lines[r]}: mpc.{name} row {r + 1}, column {c + 1}: {std[r, c]:g} is not allowed here")


def _frame(m: _Matrix, names: list[str], name: str) -> pd.DataFrame:
    width = m.values.shape[1] if len(m.values) else _STD_COLS[name]
    k = min(width, len(names))
    return pd.DataFrame(m.values[:, :k] if len(m.values) else np.zeros((0, k)), columns=names[:k])


def read_matpower(path: str | os.PathLike) -> Grid:
    """Read a MATPOWER case file (format version 2) into a :class:`Grid`.

    Raises :class:`MatpowerFormatError` naming the file, line and matrix when the
    file is malformed (missing matrix, wrong column count, non-numeric field, a
    branch or generator at a bus that does not exist, duplicate bus numbers).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MATPOWER case file not found: {path}")
    src = _Source(path)
    conversions = _take_idioms(src)
    fields = _read_fields(src)
    version = fields.get("version", (None, 0))[0]
    if version is None:
        raise MatpowerFormatError(
            f"{path}: no mpc.version = '2' found; only MATPOWER case format version 2 (the mpc struct) is "
            "supported — convert version 1 files with MATPOWER's loadcase/savecase")
    if str(version).strip() != "2":
        raise MatpowerFormatError(
            f"{path}: mpc.version = {version!r}; only MATPOWER case format version 2 is supported"
        )
    if "baseMVA" not in fields or not isinstance(fields["baseMVA"][0], float) or not fields["baseMVA"][0] > 0:
        raise MatpowerFormatError(f"{path}: missing or non-positive mpc.baseMVA")
    for name, (_, off) in fields.items():
        if name not in _KNOWN:
            warnings.warn(f"{path}:{src.line_of(off)}: mpc.{name} is not used by Berkane Twin and is ignored",
                          stacklevel=2)
    bus_m = _matrix(fields, "bus", src)
    gen_m = _matrix(fields, "gen", src)
    br_m = _matrix(fields, "branch", src)
    cost_m = _matrix(fields, "gencost", src, required=False)

    if "kw_to_mw" in conversions:
        bus_m.values[:, 2:4] /= 1e3
    if "ohm_to_pu" in conversions and len(bus_m.values):
        z_base = (bus_m.values[0, 9] * 1e3) ** 2 / (fields["baseMVA"][0] * 1e6)
        br_m.values[:, 2:4] /= z_base
    if len(bus_m.values) == 0:
        raise MatpowerFormatError(f"{path}: mpc.bus has no rows")
    for m_, n_ in ((bus_m, "bus"), (gen_m, "gen"), (br_m, "branch")):
        _check_values(m_, n_, path)
    if cost_m is not None:
        _check_values(cost_m, "gencost", path)
    bus = _frame(bus_m, _BUS_COLS, "bus")
    numbers = bus["bus_i"].to_numpy()
    for i, v in enumerate(numbers):
        if not (v > 0 and v == int(v)):
            raise MatpowerFormatError(f"{path}:{bus_m.lines[i]}: mpc.bus: bus number {v:g} is not a positive integer")
    seen: dict[int, int] = {}
    for i, v in enumerate(numbers.astype(np.int64)):
        if v in seen:
            raise MatpowerFormatError(
                f"{path}:{bus_m.lines[i]}: mpc.bus: duplicate bus number {v} (first on line {bus_m.lines[seen[v]]})")
        seen[v] = i
    for i, t in enumerate(bus["type"].to_numpy()):
        if t not in (1, 2, 3, 4):
            raise MatpowerFormatError(f"{path}:{bus_m.lines[i]}: mpc.bus: bus type {t:g} is not 1, 2, 3 or 4")
    ids = [str(int(v)) for v in numbers]

    def check_bus_refs(m: _Matrix, cols: list[int], name: str) -> None:
        if len(m.values) == 0:
            return
        for c in cols:
            vals = m.values[:, c]
            bad = ~np.isin(vals, numbers)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise MatpowerFormatError(
                    f"{path}:{m.lines[i]}: mpc.{name} row {i + 1}: bus {vals[i]:g} does not exist in mpc.bus")

    check_bus_refs(gen_m, [0], "gen")
    check_bus_refs(br_m, [0, 1], "branch")

    names = fields.get("bus_name", (None, 0))[0]
    if names is not None and not isinstance(names, list):
        raise src.error(fields["bus_name"][1], "mpc.bus_name must be a cell array of strings {'a'; 'b'; …}")
    if names is not None:
        names = [n if n != "" else None for n in names]
    if names is not None and len(names) != len(ids):
        raise src.error(fields["bus_name"][1], f"mpc.bus_name has {len(names)} entries for {len(ids)} buses")

    g = Grid(base_mva=fields["baseMVA"][0], name=path.stem)
    t = bus["type"].astype(int)
    bus_tab = pd.DataFrame(
        {
            "name": names if names is not None else [None] * len(ids),
            "vn_kv": bus["base_kv"].to_numpy(),
            "type": t.map(lambda v: _BUS_TYPES.get(v, "pq")).to_numpy(),
            "in_service": (t != 4).to_numpy(),
            "vm_pu": bus["vm"].to_numpy(),
            "va_deg": bus["va"].to_numpy(),
            "vmin_pu": bus["vmin"].to_numpy(),
            "vmax_pu": bus["vmax"].to_numpy(),
            "area": bus["area"].to_numpy(),
            "zone": bus["zone"].to_numpy(),
        },
        index=ids,
    )
    for c in ("lam_p", "lam_q", "mu_vmax", "mu_vmin"):
        if c in bus:
            bus_tab[c] = bus[c].to_numpy()
    _set(g, "bus", bus_tab, path)

    has_load = (bus["pd"] != 0) | (bus["qd"] != 0)
    load = pd.DataFrame({"bus": ids, "p_mw": bus["pd"].to_numpy(), "q_mvar": bus["qd"].to_numpy()}, index=ids)
    _set(g, "load", load[has_load.to_numpy()], path)
    has_sh = (bus["gs"] != 0) | (bus["bs"] != 0)
    shunt = pd.DataFrame({"bus": ids, "g_mw": bus["gs"].to_numpy(), "b_mvar": bus["bs"].to_numpy()}, index=ids)
    _set(g, "shunt", shunt[has_sh.to_numpy()], path)

    br = _frame(br_m, _BRANCH_COLS, "branch")
    br.index = [str(i + 1) for i in range(len(br))]
    for c in ("bus0", "bus1"):
        br[c] = br[c].astype(np.int64).astype(str)
    br["in_service"] = br.pop("status").to_numpy() > 0
    is_tr = (br["tap"] != 0) | (br["shift_deg"] != 0)
    tr = br[is_tr.to_numpy()].copy()
    tr["tap_ratio"] = tr["tap"].where(tr["tap"] != 0, 1.0)
    _set(g, "line", br[~is_tr.to_numpy()].drop(columns=["tap", "shift_deg"]), path)
    _set(g, "transformer", tr.drop(columns=["tap"]), path)

    gen = _frame(gen_m, _GEN_COLS, "gen")
    gen.index = [str(i + 1) for i in range(len(gen))]
    gen["bus"] = gen["bus"].astype(np.int64).astype(str)
    gen["in_service"] = gen.pop("status").to_numpy() > 0
    for field, col in (("gentype", "kind"), ("genfuel", "fuel")):
        if field in fields:
            vals, off = fields[field]
            if not isinstance(vals, list) or len(vals) != len(gen):
                raise src.error(off, f"mpc.{field} must be a cell array with one entry per generator")
            gen[col] = vals
    _set(g, "generator", gen, path)

    if cost_m is not None and len(cost_m.values):
        _set(g, "generator_cost", _read_gencost(cost_m, list(gen.index), path), path)
    return g


def _read_gencost(m: _Matrix, gen_ids: list[str], path: Path) -> pd.DataFrame:
    ng, nrow = len(gen_ids), m.values.shape[0]
    if nrow not in (ng, 2 * ng):
        raise MatpowerFormatError(
            f"{path}:{m.lines[0]}: mpc.gencost has {nrow} rows; expected {ng} (or {2 * ng} with reactive costs)")
    rows = []
    for i, (row, ln) in enumerate(zip(m.values, m.lines)):
        model, n = row[0], row[3]
        if model not in (1, 2) or n != int(n) or n < 0:
            raise MatpowerFormatError(f"{path}:{ln}: mpc.gencost: model {model:g} / n {n:g} invalid")
        k = int(n) * (2 if model == 1 else 1)
        if 4 + k > len(row):
            raise MatpowerFormatError(
                f"{path}:{ln}: mpc.gencost: n = {int(n)} needs {4 + k} columns, row has {len(row)}")
        gid = gen_ids[i % ng] + (":q" if i >= ng else "")
        rows.append((gid, int(model), row[1], row[2], tuple(float(v) for v in row[4:4 + k]), i >= ng))
    df = pd.DataFrame(rows, columns=["id", "model", "startup", "shutdown", "coefficients", "reactive"])
    return df.set_index("id")


def _set(g: Grid, table: str, df: pd.DataFrame, path: Path) -> None:
    from ..schema import SchemaError

    try:
        g._tables[table] = _conform(df, table)
    except SchemaError as exc:
        raise MatpowerFormatError(f"{path}: {exc}") from None


def _conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    from ..schema import conform
    from .schema import TABLES

    return conform(df, TABLES[table], allow_extra=False)


# ---------------------------------------------------------------------------- writer
def _fmt(v: float) -> str:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return shortest(v)


def _rows(a: np.ndarray) -> str:
    return "".join("\t" + "\t".join(_fmt(v) for v in row) + ";\n" for row in a)


def _opt(df: pd.DataFrame, cols: list[str]) -> list[str]:
    """Trailing optional columns are written only when some value is present."""
    present = [c for c in cols if c in df and df[c].notna().any()]
    return cols if present else []


def write_matpower(grid: Grid, path: str | os.PathLike, name: str | None = None) -> Path:
    """Write ``grid`` as a MATPOWER case file (format version 2), atomically.

    Bus ids that are positive integers are written as bus numbers; otherwise
    buses are numbered 1..n in table order and the ids go to ``mpc.bus_name``
    when the buses have no names.  Loads and shunts are summed per bus
    (out-of-service ones are left out, with a warning); storage has no place in
    the format and raises ``ValueError``.
    """
    path = Path(path)
    func = name or re.sub(r"\W", "_", path.stem) or "case"
    if func[0].isdigit():
        func = "case_" + func
    bus, base = grid.bus, grid.base_mva
    if len(grid.storage):
        raise ValueError("write_matpower: the MATPOWER case format has no storage; "
                         f"remove the {len(grid.storage)} storage units or model them as generators")
    _warn_lossy(grid)
    numeric = all(s.isdigit() and s[0] != "0" for s in bus.index)
    numbers = pd.Series(
        [int(s) for s in bus.index] if numeric else range(1, len(bus) + 1), index=bus.index, dtype=np.int64)
    names = bus["name"]
    if not numeric and names.isna().all():
        names = pd.Series(bus.index, index=bus.index)

    def per_bus(table: str, cols: list[str]) -> pd.DataFrame:
        df = grid[table]
        off = ~df["in_service"]
        if off.any():
            warnings.warn(f"write_matpower: {int(off.sum())} out-of-service {table}s are not written", stacklevel=3)
        return df[~off].groupby("bus")[cols].sum().reindex(bus.index, fill_value=0.0)

    ld = per_bus("load", ["p_mw", "q_mvar"])
    sh = per_bus("shunt", ["g_mw", "b_mvar"])
    types = bus["type"].map({"pq": 1, "pv": 2, "ref": 3}).where(bus["in_service"], 4)
    bm = np.column_stack([
        numbers, types, ld["p_mw"], ld["q_mvar"], sh["g_mw"], sh["b_mvar"], bus["area"], bus["vm_pu"],
        bus["va_deg"], bus["vn_kv"], bus["zone"], bus["vmax_pu"], bus["vmin_pu"],
    ] + [bus[c] for c in _opt(bus, ["lam_p", "lam_q", "mu_vmax", "mu_vmin"])]).astype(float)

    gen = grid.generator
    gcols = _GEN_COLS[:21]
    gm = np.column_stack(
        [numbers[gen["bus"]].to_numpy()]
        + [gen[c] if c != "status" else gen["in_service"].astype(float) for c in gcols[1:]]
        + [gen[c] for c in _opt(gen, _GEN_COLS[21:])]
    ).astype(float) if len(gen) else np.zeros((0, 21))

    br = _branches(grid)
    opt_cols = _opt(br, _BRANCH_COLS[13:])
    brm = np.column_stack(
        [numbers[br["bus0"]].to_numpy(), numbers[br["bus1"]].to_numpy()]
        + [br[c] for c in ("r_pu", "x_pu", "b_pu", "rate_a_mva", "rate_b_mva", "rate_c_mva", "tap",
                           "shift_deg")]
        + [br["in_service"].astype(float), br["angmin_deg"], br["angmax_deg"]]
        + [br[c] for c in opt_cols]
    ).astype(float) if len(br) else np.zeros((0, 13))

    out = [
        f"function mpc = {func}\n",
        f"%{func.upper()}  Power flow data written by Berkane Twin ({grid.name or 'grid'}).\n\n",
        "%% MATPOWER Case Format : Version 2\n",
        "mpc.version = '2';\n\n",
        "%%-----  Power Flow Data  -----%%\n",
        "%% system MVA base\n",
        f"mpc.baseMVA = {_fmt(base)};\n\n",
        "%% bus data\n%\tbus_i\ttype\tPd\tQd\tGs\tBs\tarea\tVm\tVa\tbaseKV\tzone\tVmax\tVmin\n",
        "mpc.bus = [\n", _rows(bm), "];\n\n",
        "%% generator data\n%\tbus\tPg\tQg\tQmax\tQmin\tVg\tmBase\tstatus\tPmax\tPmin\tPc1\tPc2\t"
        "Qc1min\tQc1max\tQc2min\tQc2max\tramp_agc\tramp_10\tramp_30\tramp_q\tapf\n",
        "mpc.gen = [\n", _rows(gm), "];\n\n",
        "%% branch data\n%\tfbus\ttbus\tr\tx\tb\trateA\trateB\trateC\tratio\tangle\tstatus\tangmin\tangmax\n",
        "mpc.branch = [\n", _rows(brm), "];\n",
    ]
    cost = grid.generator_cost
    if len(cost):
        pos = {gid: i for i, gid in enumerate(gen.index)}
        order = sorted(cost.index, key=lambda c: (c.endswith(":q"), pos.get(c.removesuffix(":q"), -1)))
        have = {c for c in cost.index}
        missing = [g for g in gen.index if g not in have]
        if missing:
            raise ValueError(f"write_matpower: generator {missing[0]!r} has no generator_cost row "
                             "(MATPOWER needs one cost row per generator or none)")
        q_rows = cost.index.str.endswith(":q")
        if q_rows.any() and q_rows.sum() != len(gen):
            raise ValueError("write_matpower: MATPOWER needs reactive costs for all generators or for none "
                             f"({int(q_rows.sum())} of {len(gen)} have one)")
        odd = (cost["model"] == 1) & (cost["coefficients"].map(len) % 2 == 1)
        if odd.any():
            raise ValueError(f"write_matpower: generator_cost {cost.index[odd][0]!r}: a piecewise-linear cost "
                             "needs (p, c) pairs, found an odd number of coefficients")
        width = max(len(c) for c in cost["coefficients"])
        rows = []
        for cid in order:
            r = cost.loc[cid]
            coeffs = list(r["coefficients"])
            n = len(coeffs) // 2 if r["model"] == 1 else len(coeffs)
            rows.append([r["model"], r["startup"], r["shutdown"], n] + coeffs + [0.0] * (width - len(coeffs)))
        out += ["\n%%-----  OPF Data  -----%%\n%% generator cost data\n",
                "%\t1\tstartup\tshutdown\tn\tx1\ty1\t...\txn\tyn\n%\t2\tstartup\tshutdown\tn\tc(n-1)\t...\tc0\n",
                "mpc.gencost = [\n", _rows(np.array(rows, dtype=float)), "];\n"]
    if names.notna().any():
        out += ["\n%% bus names\nmpc.bus_name = {\n",
                "".join(f"\t'{_quote(v)}';\n" for v in names.fillna("")), "};\n"]
    for col, field in (("kind", "gentype"), ("fuel", "genfuel")):
        if len(gen) and gen[col].notna().any():
            out += [f"\n%% generator {col}\nmpc.{field} = {{\n",
                    "".join(f"\t'{_quote(v)}';\n" for v in gen[col].fillna("")), "};\n"]
    return atomic_write_text(path, "".join(out))


def _warn_lossy(grid: Grid) -> None:
    """Warn about what the MATPOWER format cannot carry (read(write(grid)) will differ there)."""
    lost = []
    bus = grid.bus
    if (~bus["in_service"] & (bus["type"] != "pq")).any():
        lost.append("the type of out-of-service pv/ref buses (written as type 4)")
    if bus[["lon", "lat"]].notna().any().any():
        lost.append("bus coordinates (lon/lat)")
    for t in ("line", "transformer", "generator", "load", "shunt"):
        if grid[t]["name"].notna().any():
            lost.append(f"{t} names")
    gen = grid.generator
    if (gen["committable"] | (gen["min_up_h"] > 0) | (gen["min_down_h"] > 0) | np.isfinite(gen["ramp_up_mw_h"])
            | np.isfinite(gen["ramp_down_mw_h"]) | ~gen["initially_on"]).any():
        lost.append("unit-commitment and hourly ramp data (committable, min up/down, ramp_*_mw_h, initially_on)")
    if list(gen.index) != [str(i + 1) for i in range(len(gen))]:
        lost.append("generator ids (the format numbers them 1..n)")
    br_ids = list(grid.line.index) + list(grid.transformer.index)
    if sorted(br_ids, key=lambda x: (len(x), x)) != [str(i + 1) for i in range(len(br_ids))]:
        lost.append("branch ids (the format numbers them 1..n)")
    for t in ("load", "shunt"):
        df = grid[t]
        if (df.index != df["bus"]).any() or df["bus"].duplicated().any():
            lost.append(f"{t} ids and per-{t} detail (summed per bus)")
    zero_load = (grid.load[["p_mw", "q_mvar"]] == 0).all(axis=1).any()
    if zero_load or (grid.shunt[["g_mw", "b_mvar"]] == 0).all(axis=1).any():
        lost.append("zero-valued loads/shunts")
    if lost:
        warnings.warn("write_matpower: the MATPOWER format does not keep " + "; ".join(lost), stacklevel=3)


def _quote(s: str) -> str:
    return str(s).replace("'", "''")


def _branches(grid: Grid) -> pd.DataFrame:
    """Lines and transformers as one table with MATPOWER's TAP column, in file order."""
    line = grid.line.assign(tap=0.0, shift_deg=0.0)
    tr = grid.transformer.rename(columns={"tap_ratio": "tap"})
    br = pd.concat([line, tr]) if len(tr) else line
    if len(br) and all(s.isdigit() for s in br.index):
        br = br.iloc[np.argsort(br.index.astype(np.int64), kind="stable")]
    return br
