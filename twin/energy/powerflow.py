"""AC (Newton-Raphson) and DC power flow over a :class:`Grid`, with MATPOWER's case semantics."""

from __future__ import annotations

import time
import warnings
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from .compile import CompiledGrid, compile_grid
from .grid import Grid
from .newton import newton_raphson
from .results import PowerFlowResult

__all__ = ["power_flow", "PowerFlowWarning"]


class PowerFlowWarning(UserWarning):
    """A power flow did not converge, or buses were left de-energised."""


def power_flow(
    grid: Grid,
    method: Literal["ac", "dc"] = "ac",
    *,
    init: Literal["dc", "flat", "case"] = "dc",
    tol: float = 1e-8,
    max_iter: int = 20,
    enforce_q_limits: bool = False,
    linear_solver: Literal["klu", "superlu"] = "klu",
) -> PowerFlowResult:
    """Solve the power flow of ``grid`` and return a :class:`PowerFlowResult`.

    ``method="ac"``: full Newton-Raphson in polar form.  ``init`` picks the start
    point: ``"flat"`` (1 p.u., reference angles), ``"dc"`` (DC angles) or ``"case"``
    (the bus table's ``vm_pu``/``va_deg``, MATPOWER's default); generator voltage
    set points always apply at PV and reference buses.  ``tol`` is the largest
    allowed P or Q mismatch in p.u. of ``grid.base_mva`` (1e-8 p.u. = 1e-6 MW at
    100 MVA); ``max_iter`` caps the Newton iterations.  With
    ``enforce_q_limits`` a generator outside [q_min_mvar, q_max_mvar] is fixed
    at its limit, its bus becomes PQ and the flow is solved again, all violators
    at once (MATPOWER's ``ENFORCE_Q_LIMS = 1``): when the reference generator
    hits a limit, the first remaining PV bus of its island becomes the reference
    and the angles are shifted back to the original reference angle.
    ``linear_solver``: ``"klu"`` (SuiteSparse KLU, ordering kept across
    iterations) or ``"superlu"`` (scipy, refactorised from scratch).

    ``method="dc"``: the linear DC approximation (MATPOWER's ``rundcpf``).

    Non-convergence returns ``converged=False`` with the worst bus and its
    mismatch and emits a :class:`PowerFlowWarning`.  Every energised island
    needs a reference bus (:class:`~twin.energy.compile.SlackError` otherwise);
    islands without any generator are left de-energised (NaN voltages).
    """
    if method not in ("ac", "dc"):
        raise ValueError(f"power_flow: method must be 'ac' or 'dc', got {method!r}")
    if init not in ("dc", "flat", "case"):
        raise ValueError(f"power_flow: init must be 'dc', 'flat' or 'case', got {init!r}")
    if not tol > 0 or max_iter < 1:
        raise ValueError("power_flow: tol must be positive and max_iter at least 1")
    t0 = time.perf_counter()
    cg = compile_grid(grid)
    messages = _deenergised_messages(cg)
    if method == "dc":
        res = _dc(cg, t0, messages)
    else:
        res = _ac(cg, t0, messages, init, tol, max_iter, enforce_q_limits, linear_solver)
    for msg in res.messages:
        warnings.warn(msg, PowerFlowWarning, stacklevel=2)
    return res


def _deenergised_messages(cg: CompiledGrid) -> list[str]:
    off = cg.bus_on & ~cg.energised
    if not off.any():
        return []
    ids = ", ".join(map(str, cg.bus_ids[off][:10])) + (" …" if off.sum() > 10 else "")
    return [f"{int(off.sum())} in-service buses lie in islands without generation and are de-energised: {ids}"]


# ------------------------------------------------------------------------------------ DC
def dc_matrices(cg: CompiledGrid) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray]:
    """MATPOWER's makeBdc: Bbus, Bf (p.u.), and phase-shift injections Pbusinj, Pfinj (p.u.)."""
    nb, nl = cg.nb, len(cg.f)
    zero_x = cg.branch_on & (cg.x == 0)
    if zero_x.any():
        raise ValueError(f"branch {cg.branch_ids[np.flatnonzero(zero_x)[0]]!r} has x_pu = 0: the DC model "
                         "needs a non-zero series reactance on every branch")
    ratio = np.abs(cg.tap)
    b = np.where(cg.branch_on, 1.0 / (cg.x * ratio), 0.0)
    shift = np.angle(cg.tap)
    br = np.arange(nl)
    bf = sp.csr_matrix((np.r_[b, -b], (np.r_[br, br], np.r_[cg.f, cg.t])), shape=(nl, nb))
    cft = sp.csr_matrix((np.r_[np.ones(nl), -np.ones(nl)], (np.r_[br, br], np.r_[cg.f, cg.t])), shape=(nl, nb))
    bbus = (cft.T @ bf).tocsr()
    pfinj = b * (-shift)
    pbusinj = cft.T @ pfinj
    return bbus, bf, pbusinj, pfinj


def _dc_angles(cg: CompiledGrid, bbus: sp.csr_matrix, pbusinj: np.ndarray) -> np.ndarray:
    """DC bus angles (rad) with MATPOWER's rundcpf injections: P - Pbusinj - Gs (p.u.)."""
    pbus = cg.sbus().real - pbusinj - cg.ysh.real
    ref = cg.ref
    pvpq = np.flatnonzero((cg.bus_type == 1) | (cg.bus_type == 2))
    va = np.where(cg.energised, cg.va0, np.nan)
    if len(pvpq):
        a = bbus[pvpq][:, pvpq].tocsc()
        rhs = pbus[pvpq] - bbus[pvpq][:, ref] @ cg.va0[ref]
        try:
            va[pvpq] = splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True}).solve(rhs)
        except RuntimeError as exc:  # singular B: e.g. series reactances that cancel around a loop
            raise ValueError(f"the DC susceptance matrix is singular ({exc}); check for branch reactances "
                             "that cancel (negative x_pu) or zero-reactance loops") from None
    return va


def _dc(cg: CompiledGrid, t0: float, messages: list[str]) -> PowerFlowResult:
    bbus, bf, pbusinj, pfinj = dc_matrices(cg)
    sbus = cg.sbus()
    va = _dc_angles(cg, bbus, pbusinj)
    va0 = np.where(np.isnan(va), 0.0, va)
    pf = np.where(cg.branch_on, bf @ va0 + pfinj, 0.0)
    # slack generation: P balance at each reference bus
    pinj = bbus @ va0 + pbusinj + cg.ysh.real  # p.u. injection needed at each bus
    V = np.where(cg.energised, np.exp(1j * va0), np.nan)
    gen_p, gen_q = np.where(cg.gen_on, cg.gen_p, 0.0), np.full(len(cg.gen_p), np.nan)
    for r in cg.ref:  # the first generator at each reference bus closes the balance
        gens = np.flatnonzero(cg.gen_on & (cg.gen_bus == r))
        gen_p[gens[0]] += pinj[r] - sbus.real[r]
    s = pf * cg.base_mva
    flows = np.column_stack([s, np.full_like(s, np.nan), -s, np.full_like(s, np.nan)])
    return _tables(cg, "dc", V, flows, gen_p, gen_q, np.zeros(len(gen_p), bool), True, 0, 0.0, -1, t0,
                   messages, p_only=True)


# ------------------------------------------------------------------------------------ AC
#: a generator violates a Q limit when outside it by more than this (MVAr), as MATPOWER's opf.violation
Q_VIOLATION_MVAR = 5e-6


def _ac(cg: CompiledGrid, t0: float, messages: list[str], init: str, tol: float, max_iter: int,
        enforce_q: bool, linear_solver: str) -> PowerFlowResult:
    ybus, yf, yt = cg.ybus()
    bus_type = cg.bus_type.copy()
    vm = np.where(cg.energised, cg.vm0, np.nan)
    va = np.where(cg.energised, cg.va0, np.nan)
    if init in ("flat", "dc"):
        ctrl = bus_type >= 2
        vm = np.where(ctrl, cg.vm0, 1.0)
        va = np.where(bus_type == 3, cg.va0, 0.0)
        if init == "dc":
            try:
                bbus, _, pbusinj, _ = dc_matrices(cg)
                va = _dc_angles(cg, bbus, pbusinj)
            except ValueError as exc:  # the AC problem may still be fine: start flat instead
                messages.append(f"DC start not possible ({exc}); started from a flat profile")
    V = np.where(cg.energised, vm * np.exp(1j * va), 0.0)
    ref0 = cg.ref
    gen_p_set = cg.gen_p.copy()  # P set points; a former slack generator keeps its last slack output
    gen_q = cg.gen_q.copy()  # Q of fixed generators (at PQ buses or at a limit)
    fixed = np.zeros(len(gen_q), bool)  # generators whose Q was fixed by the Q-limit loop
    at_limit = np.zeros(len(gen_q), bool)
    violation = Q_VIOLATION_MVAR / cg.base_mva
    notes: list[str] = []  # Q-limit switching (information, not warnings)
    converged = True
    total_it, timings = 0, {"jacobian": 0.0, "solve": 0.0}
    tc = time.perf_counter()
    while True:
        sbus = _injections(cg, gen_p_set, gen_q)
        pv, pq = np.flatnonzero(bus_type == 2), np.flatnonzero(bus_type == 1)
        nr = newton_raphson(ybus, sbus, V, pv, pq, tol=tol, max_iter=max_iter, linear_solver=linear_solver)
        total_it += nr.iterations
        timings["jacobian"] += nr.time_jacobian
        timings["solve"] += nr.time_solve
        V = nr.V
        converged = nr.converged
        gen_p, q = _gen_pq(cg, ybus, V, bus_type, gen_p_set, gen_q)
        if not converged or not enforce_q:
            break
        # MATPOWER's ENFORCE_Q_LIMS = 1: all violators at once, the reference bus included
        # generators at PQ buses count too: their Q set point is clamped to its limits
        ctrl = cg.gen_on & (bus_type[cg.gen_bus] >= 2)
        cand = cg.gen_on & ~(fixed & (bus_type[cg.gen_bus] == 1) & at_limit)
        over = cand & (q > cg.gen_qmax + violation)
        under = cand & (q < cg.gen_qmin - violation)
        if not (over.any() or under.any()):
            break
        if ctrl.any() and ((over[ctrl].all() and over[ctrl].any()) or (under[ctrl].all() and under[ctrl].any())):
            converged = False
            messages.append("reactive power limits are infeasible: every voltage-controlling generator "
                            f"is {'above' if over[ctrl].all() else 'below'} its limit")
            break
        vbus = np.unique(cg.gen_bus[over | under])
        at = np.isin(cg.gen_bus, vbus) & cg.gen_on
        gen_q = np.where(at, q, gen_q)
        gen_q = np.where(over, cg.gen_qmax, np.where(under, cg.gen_qmin, gen_q))
        gen_p_set = np.where(at, gen_p, gen_p_set)
        fixed |= at
        at_limit |= over | under
        lost_ref = vbus[bus_type[vbus] == 3]
        bus_type[vbus] = 1
        notes.append(f"{int(over.sum() + under.sum())} generators reached a Q limit; buses "
                        f"{', '.join(map(str, cg.bus_ids[vbus][:10]))} switched to PQ")
        for r in lost_ref:  # a new reference: the first remaining PV bus of the island
            cand = np.flatnonzero((bus_type == 2) & (cg.island == cg.island[r]))
            if len(cand) == 0:
                converged = False
                messages.append(f"reference bus {cg.bus_ids[r]} reached a Q limit and its island has no "
                                "PV bus left to take over")
                break
            bus_type[cand[0]] = 3
            notes.append(f"reference moved from bus {cg.bus_ids[r]} to bus {cg.bus_ids[cand[0]]}")
        if not converged:
            break
    timings["newton"] = time.perf_counter() - tc
    if not np.array_equal(np.flatnonzero(bus_type == 3), ref0):
        # keep the original reference angles (MATPOWER shifts the solution back)
        for r in ref0:
            members = cg.island == cg.island[r]
            V[members] *= np.exp(1j * (cg.va0[r] - np.angle(V[r])))
    if not nr.converged:
        worst = cg.bus_ids[nr.worst_bus] if nr.worst_bus >= 0 else None
        messages.append(
            f"AC power flow did not converge in {nr.iterations} iterations: largest mismatch "
            f"{nr.max_mismatch * cg.base_mva:.3g} MVA at bus {worst}")
    Vout = np.where(cg.energised, V, np.nan)
    sf = np.where(cg.branch_on, V[cg.f] * np.conj(yf @ V), 0) * cg.base_mva
    st = np.where(cg.branch_on, V[cg.t] * np.conj(yt @ V), 0) * cg.base_mva
    flows = np.column_stack([sf.real, sf.imag, st.real, st.imag])
    res = _tables(cg, "ac", Vout, flows, gen_p, q, at_limit, converged, total_it,
                  nr.max_mismatch, nr.worst_bus, t0, messages, p_only=False, bus_type=bus_type)
    res.timings = timings
    res.notes = notes
    return res


def _injections(cg: CompiledGrid, gen_p: np.ndarray, gen_q: np.ndarray) -> np.ndarray:
    """Bus injections (p.u.) from generator set points; Q only matters at PQ buses."""
    s = np.zeros(cg.nb, dtype=complex)
    on = cg.gen_on
    np.add.at(s, cg.gen_bus[on], gen_p[on] + 1j * gen_q[on])
    return s - cg.load_s + cg.fixed_s


def _gen_pq(cg: CompiledGrid, ybus: sp.csr_matrix, V: np.ndarray, bus_type: np.ndarray, gen_p_set: np.ndarray,
            gen_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generator P and Q after the solve (MATPOWER's pfsoln), p.u.

    At PV and reference buses the bus's reactive injection (plus its load) is
    shared by its generators in proportion to their Q ranges (equally when the
    ranges are zero or infinite); at reference buses the first generator takes
    the active-power balance.  Generators at PQ buses keep their set points.
    """
    inj = V * np.conj(ybus @ V)
    other = cg.load_s - cg.fixed_s  # load minus storage at the bus
    gb = cg.gen_bus
    gen_p = np.where(cg.gen_on, gen_p_set, 0.0)
    q = np.where(cg.gen_on, gen_q, 0.0)
    ctrl = cg.gen_on & (bus_type[gb] >= 2)
    if ctrl.any():
        fixed_q = np.bincount(gb[cg.gen_on & ~ctrl], weights=q[cg.gen_on & ~ctrl], minlength=cg.nb)
        need = inj.imag + other.imag - fixed_q
        idx = np.flatnonzero(ctrl)
        b = gb[idx]
        n_at = np.bincount(b, minlength=cg.nb)
        qmin, qmax = cg.gen_qmin[idx], cg.gen_qmax[idx]
        sum_min = np.bincount(b, weights=qmin, minlength=cg.nb)[b]
        sum_max = np.bincount(b, weights=qmax, minlength=cg.nb)[b]
        span = sum_max - sum_min
        with np.errstate(invalid="ignore", divide="ignore"):
            prop = qmin + (need[b] - sum_min) / (span + np.finfo(float).eps) * (qmax - qmin)
        use_prop = (n_at[b] > 1) & np.isfinite(span) & (span != 0) & np.isfinite(prop)
        q[idx] = np.where(use_prop, prop, need[b] / n_at[b])
    for r in np.flatnonzero(bus_type == 3):
        gens = np.flatnonzero(cg.gen_on & (gb == r))
        gen_p[gens[0]] = inj.real[r] + other.real[r] - gen_p[gens[1:]].sum()
    return gen_p, q


# ------------------------------------------------------------------------------ tables
def _tables(cg: CompiledGrid, method: str, V: np.ndarray, flows: np.ndarray, gen_p: np.ndarray,
            gen_q: np.ndarray, at_limit: np.ndarray, converged: bool, iterations: int, mismatch: float,
            worst: int, t0: float, messages: list[str], *, p_only: bool,
            bus_type: np.ndarray | None = None) -> PowerFlowResult:
    base = cg.base_mva
    bt = cg.bus_type if bus_type is None else bus_type
    pg = np.zeros(cg.nb)
    qg = np.zeros(cg.nb)
    on = cg.gen_on
    np.add.at(pg, cg.gen_bus[on], gen_p[on] * base)
    np.add.at(qg, cg.gen_bus[on], gen_q[on] * base)
    pl, ql = cg.load_s.real * base, cg.load_s.imag * base
    stor = cg.fixed_s * base
    nan_q = np.full(cg.nb, np.nan) if p_only else None
    bus = pd.DataFrame(
        {
            "vm_pu": np.abs(V),
            "va_deg": np.rad2deg(np.angle(V)),
            "p_mw": pg - pl + stor.real,
            "q_mvar": nan_q if p_only else qg - ql + stor.imag,
            "p_load_mw": pl,
            "q_load_mvar": ql,
            "p_unserved_mw": cg.unserved_s.real * base,
            "p_gen_mw": pg,
            "q_gen_mvar": nan_q if p_only else qg,
            "type": pd.Categorical.from_codes(bt, ["", "pq", "pv", "ref"]),
            "island": cg.island,
            "energised": cg.energised,
        },
        index=cg.bus_ids,
    )
    if p_only:
        bus.loc[cg.energised, "vm_pu"] = 1.0
    bus.index.name = "id"
    bus.loc[~cg.energised, ["vm_pu", "va_deg"]] = np.nan
    p0, q0, p1, q1 = flows.T
    s_max = np.maximum(np.hypot(p0, np.nan_to_num(q0)), np.hypot(p1, np.nan_to_num(q1)))
    branch = pd.DataFrame(
        {
            "kind": cg.branch_kind,
            "bus0": cg.bus_ids[cg.f],
            "bus1": cg.bus_ids[cg.t],
            "p0_mw": p0, "q0_mvar": q0, "p1_mw": p1, "q1_mvar": q1,
            "pl_mw": p0 + p1,
            "ql_mvar": q0 + q1,
            "loading_percent": s_max / cg.rate_a * 100.0,
            "in_service": cg.branch_on,
        },
        index=cg.branch_ids,
    )
    branch.index.name = "id"
    gen = pd.DataFrame(
        {
            "bus": cg.bus_ids[cg.gen_bus],
            "p_mw": np.where(on, gen_p * base, 0.0),
            "q_mvar": np.where(on, gen_q * base, np.nan if p_only else 0.0),
            "in_service": on,
            "at_q_limit": at_limit,
        },
        index=cg.gen_ids,
    )
    gen.index.name = "id"
    worst_id = str(cg.bus_ids[worst]) if worst >= 0 else None
    return PowerFlowResult(method, bus, branch, gen, bool(converged), int(iterations), float(mismatch) * base,
                           worst_id, time.perf_counter() - t0, messages)
