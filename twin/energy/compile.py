"""Compile a :class:`Grid` into flat arrays (p.u., integer bus positions).

The compiled object is frozen data: nothing is stored back on the grid.
Conventions follow MATPOWER: isolated buses (``in_service=False``) are
dropped, branches and generators that are out of service or touch an
isolated bus are ignored, a PV/ref bus without an in-service generator is
treated as PQ, generators at PQ buses are fixed P/Q injections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .grid import Grid

__all__ = ["CompiledGrid", "compile_grid", "SlackError"]


class SlackError(ValueError):
    """An energised island has no reference (slack) bus."""


@dataclass(frozen=True)
class CompiledGrid:
    """Flat-array view of a grid for the power-flow kernels (all powers in p.u.).

    Bus arrays have one entry per bus of ``grid.bus`` (table order); branch
    arrays one per line then transformer, gen arrays one per generator.
    """

    base_mva: float
    bus_ids: pd.Index
    branch_ids: pd.Index
    branch_kind: np.ndarray  # 'line' / 'transformer'
    gen_ids: pd.Index
    f: np.ndarray  # branch from-bus position
    t: np.ndarray
    branch_on: np.ndarray  # bool, in service and in an energised island
    ys: np.ndarray  # complex series admittance (0 when off)
    bc: np.ndarray  # total charging susceptance (0 when off)
    tap: np.ndarray  # complex tap (ratio * exp(j shift)), 1 for lines
    x: np.ndarray  # series reactance (for DC)
    rate_a: np.ndarray  # MVA, nan = unlimited
    bus_on: np.ndarray
    ysh: np.ndarray  # complex shunt admittance per bus
    load_s: np.ndarray  # complex load per bus (p.u.), served buses only
    unserved_s: np.ndarray  # complex load at in-service but de-energised buses (p.u.)
    fixed_s: np.ndarray  # complex fixed injection per bus from storage (p.u.)
    gen_bus: np.ndarray
    gen_on: np.ndarray
    gen_p: np.ndarray
    gen_q: np.ndarray
    gen_qmin: np.ndarray
    gen_qmax: np.ndarray
    bus_type: np.ndarray  # int: 1 pq, 2 pv, 3 ref (MATPOWER semantics applied)
    island: np.ndarray  # island label per bus, -1 for inactive
    energised: np.ndarray  # bool per bus
    vm0: np.ndarray
    va0: np.ndarray  # rad

    @property
    def nb(self) -> int:
        return len(self.bus_ids)

    @property
    def ref(self) -> np.ndarray:
        return np.flatnonzero(self.bus_type == 3)

    @property
    def pv(self) -> np.ndarray:
        return np.flatnonzero(self.bus_type == 2)

    @property
    def pq(self) -> np.ndarray:
        return np.flatnonzero(self.bus_type == 1)

    def sbus(self) -> np.ndarray:
        """Complex bus injections (p.u.): in-service generation - load + storage."""
        s = np.zeros(self.nb, dtype=complex)
        on = self.gen_on
        np.add.at(s, self.gen_bus[on], (self.gen_p[on] + 1j * self.gen_q[on]))
        return s - self.load_s + self.fixed_s

    def ybus(self) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
        """Bus admittance matrix (CSR, sorted, explicit diagonal) and branch Yf, Yt (MATPOWER makeYbus)."""
        nb, nl = self.nb, len(self.f)
        ytt = self.ys + 0.5j * self.bc
        yff = ytt / (self.tap * np.conj(self.tap))
        yft = -self.ys / np.conj(self.tap)
        ytf = -self.ys / self.tap
        rows = np.concatenate([self.f, self.f, self.t, self.t, np.arange(nb)])
        cols = np.concatenate([self.f, self.t, self.f, self.t, np.arange(nb)])
        vals = np.concatenate([yff, yft, ytf, ytt, self.ysh])
        y = sp.coo_matrix((vals, (rows, cols)), shape=(nb, nb)).tocsr()
        y.sum_duplicates()
        y.sort_indices()
        br = np.arange(nl)
        yf = sp.csr_matrix((np.concatenate([yff, yft]), (np.r_[br, br], np.r_[self.f, self.t])), shape=(nl, nb))
        yt = sp.csr_matrix((np.concatenate([ytf, ytt]), (np.r_[br, br], np.r_[self.f, self.t])), shape=(nl, nb))
        return y, yf, yt


def _check_finite(name: str, df: pd.DataFrame, cols: list[str], *, allow_inf: tuple[str, ...] = ()) -> None:
    """Raise ValueError naming the element and column of the first NaN (or disallowed ±Inf)."""
    for c in cols:
        v = df[c].to_numpy(float)
        bad = np.isnan(v) if c in allow_inf else ~np.isfinite(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name} {df.index[i]!r}: {c} = {v[i]:g} is not a finite number")


def _check_inputs(grid: Grid) -> None:
    """Checks that direct table edits could have broken (the kernels trust these)."""
    grid.validate()
    for name in ("bus", "line", "transformer", "generator", "load", "shunt", "storage"):
        df = grid[name]
        if df["in_service"].dtype != bool:
            raise ValueError(f"table {name!r}: in_service must be boolean (True/False), found {df['in_service'].dtype}")
    bad = ~grid.bus["type"].isin(["pq", "pv", "ref"])
    if bad.any():
        raise ValueError(f"bus {grid.bus.index[bad][0]!r}: type {grid.bus['type'][bad].iloc[0]!r} is not "
                         "'pq', 'pv' or 'ref'")
    _check_finite("bus", grid.bus, ["vm_pu", "va_deg"])
    for name in ("line", "transformer"):
        _check_finite(name, grid[name], ["r_pu", "x_pu", "b_pu"])
    _check_finite("transformer", grid.transformer, ["tap_ratio", "shift_deg"])
    _check_finite("generator", grid.generator, ["p_mw", "q_mvar", "vm_pu", "q_min_mvar", "q_max_mvar"],
                  allow_inf=("q_min_mvar", "q_max_mvar"))
    _check_finite("load", grid.load, ["p_mw", "q_mvar"])
    _check_finite("shunt", grid.shunt, ["g_mw", "b_mvar"])
    _check_finite("storage", grid.storage, ["p_mw", "q_mvar"])


def compile_grid(grid: Grid, *, check_slack: bool = True) -> CompiledGrid:
    """Compile ``grid`` (see module docstring); raise :class:`SlackError` for an island with no slack.

    Inputs are re-checked first (references, bus types, finite numbers), since
    tables can be edited in place; errors name the element and column.
    """
    _check_inputs(grid)
    bus = grid.bus
    base = grid.base_mva
    def pos(ids: pd.Series) -> np.ndarray:
        """Bus positions of the bus ids in ``ids`` (the schema guarantees they exist)."""
        return bus.index.get_indexer(ids)

    nb = len(bus)
    bus_on = bus["in_service"].to_numpy(bool)

    line, tr = grid.line, grid.transformer
    branch_ids = pd.Index(list(line.index) + list(tr.index), dtype=object)
    kind = np.array(["line"] * len(line) + ["transformer"] * len(tr), dtype=object)
    f = pos(pd.concat([line["bus0"], tr["bus0"]])).astype(np.int64)
    t = pos(pd.concat([line["bus1"], tr["bus1"]])).astype(np.int64)

    def col(name: str) -> np.ndarray:
        return np.concatenate([line[name].to_numpy(float), tr[name].to_numpy(float)])

    on = np.concatenate([line["in_service"].to_numpy(bool), tr["in_service"].to_numpy(bool)])
    on &= bus_on[f] & bus_on[t]
    r, x, b = col("r_pu"), col("x_pu"), col("b_pu")
    z = r + 1j * x
    if np.any(on & (z == 0)):
        bad = branch_ids[np.flatnonzero(on & (z == 0))[0]]
        raise ValueError(f"branch {bad!r} has zero impedance (r_pu = x_pu = 0); model it as one bus")
    ys = np.where(on, 1.0 / np.where(z == 0, 1.0, z), 0.0)
    bc = np.where(on, b, 0.0)
    tap = np.ones(len(branch_ids), dtype=complex)
    ntr = len(tr)
    if ntr:
        ratio = tr["tap_ratio"].to_numpy(float)
        if np.any(ratio <= 0):
            bad = tr.index[np.flatnonzero(ratio <= 0)[0]]
            raise ValueError(f"transformer {bad!r}: tap_ratio must be positive")
        tap[len(line):] = ratio * np.exp(1j * np.deg2rad(tr["shift_deg"].to_numpy(float)))
    rate = col("rate_a_mva")
    rate = np.where(rate > 0, rate, np.nan)

    ysh = np.zeros(nb, dtype=complex)
    sh = grid.shunt[grid.shunt["in_service"]]
    np.add.at(ysh, pos(sh["bus"]), (sh["g_mw"].to_numpy() + 1j * sh["b_mvar"].to_numpy()) / base)
    load_s = np.zeros(nb, dtype=complex)
    ld = grid.load[grid.load["in_service"]]
    np.add.at(load_s, pos(ld["bus"]), (ld["p_mw"].to_numpy() + 1j * ld["q_mvar"].to_numpy()) / base)
    fixed_s = np.zeros(nb, dtype=complex)
    st = grid.storage[grid.storage["in_service"]]
    np.add.at(fixed_s, pos(st["bus"]), (st["p_mw"].to_numpy() + 1j * st["q_mvar"].to_numpy()) / base)
    ysh[~bus_on] = 0
    load_s[~bus_on] = 0
    fixed_s[~bus_on] = 0

    gen = grid.generator
    gen_bus = pos(gen["bus"]).astype(np.int64)
    gen_on = gen["in_service"].to_numpy(bool) & bus_on[gen_bus]

    # bus types, MATPOWER's bustypes(): PV/ref without an in-service generator become PQ
    has_gen = np.zeros(nb, dtype=bool)
    has_gen[gen_bus[gen_on]] = True
    declared = bus["type"].map({"pq": 1, "pv": 2, "ref": 3}).to_numpy(np.int64)
    bus_type = np.where(has_gen, declared, 1)

    # islands over in-service branches among active buses
    adj = sp.coo_matrix((np.ones(on.sum()), (f[on], t[on])), shape=(nb, nb))
    _, labels = connected_components(adj, directed=False)
    labels = np.where(bus_on, labels, -1)
    energised = np.zeros(nb, dtype=bool)
    for isl in np.unique(labels[bus_on]):
        members = labels == isl
        if np.any(bus_type[members] == 3):
            energised |= members
        elif np.any(has_gen & members) and check_slack:
            ids = list(bus.index[members][:10])
            more = " …" if members.sum() > 10 else ""
            gens = list(gen.index[gen_on & members[gen_bus]][:5])
            raise SlackError(
                f"island of {int(members.sum())} buses ({', '.join(map(str, ids))}{more}) has in-service "
                f"generators ({', '.join(map(str, gens))}) but no reference bus with a generator; set one "
                "bus's type to 'ref'"
            )
    bus_type = np.where(energised, bus_type, 0)
    unserved_s = np.where(energised, 0.0, load_s)
    load_s = np.where(energised, load_s, 0.0)
    fixed_s = np.where(energised, fixed_s, 0.0)
    live = on & energised[f]  # both ends lie in the same energised island

    vm0 = bus["vm_pu"].to_numpy(float).copy()
    va0 = np.deg2rad(bus["va_deg"].to_numpy(float))
    vg = gen["vm_pu"].to_numpy(float)
    ctrl = gen_on & (bus_type[gen_bus] >= 2)
    vm0[gen_bus[ctrl]] = vg[ctrl]  # last generator at a bus wins, as in MATPOWER

    return CompiledGrid(
        base_mva=base, bus_ids=bus.index, branch_ids=branch_ids, branch_kind=kind, gen_ids=gen.index,
        f=f, t=t, branch_on=live, ys=ys, bc=bc, tap=tap, x=np.where(live, x, np.inf), rate_a=rate, bus_on=bus_on,
        ysh=ysh, load_s=load_s, unserved_s=unserved_s, fixed_s=fixed_s, gen_bus=gen_bus, gen_on=gen_on,
        gen_p=gen["p_mw"].to_numpy(float) / base, gen_q=gen["q_mvar"].to_numpy(float) / base,
        gen_qmin=gen["q_min_mvar"].to_numpy(float) / base, gen_qmax=gen["q_max_mvar"].to_numpy(float) / base,
        bus_type=bus_type, island=labels, energised=energised, vm0=vm0, va0=va0,
    )
