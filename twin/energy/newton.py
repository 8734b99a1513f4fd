"""Newton-Raphson AC power flow in polar form (MATPOWER's ``newtonpf``).

Unknowns: voltage angles at PV and PQ buses, magnitudes at PQ buses.  The
Jacobian pattern is computed once (:class:`JacobianPattern`); each iteration
the Cython kernel ``jacobian_fill`` writes its values and a sparse LU solves
for the step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from kvxopt import klu
from kvxopt import matrix as kvx_matrix
from kvxopt import spmatrix as kvx_spmatrix
from scipy.sparse.linalg import splu

from .._ext import powerflow as _k

__all__ = ["JacobianPattern", "NewtonResult", "newton_raphson", "LINEAR_SOLVERS"]

LINEAR_SOLVERS = ("klu", "superlu")


class _KLUSolver:
    """SuiteSparse KLU (through kvxopt): ordering and symbolic analysis once, numeric LU per call."""

    def __init__(self, pat: JacobianPattern):
        cols = np.repeat(np.arange(pat.n, dtype=np.int64), np.diff(pat.indptr))
        self._a = kvx_spmatrix(kvx_matrix(np.ones(len(cols))), kvx_matrix(pat.indices.astype(np.int64)),
                               kvx_matrix(cols), (pat.n, pat.n))
        self._sym = klu.symbolic(self._a)

    def solve(self, data: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        self._a.V = kvx_matrix(data)
        num = klu.numeric(self._a, self._sym)  # ArithmeticError when singular
        b = kvx_matrix(rhs)
        klu.solve(self._a, self._sym, num, b)
        return np.asarray(b).ravel()


class _SuperLUSolver:
    """scipy's SuperLU: ordering, symbolic and numeric factorisation on every call."""

    def __init__(self, pat: JacobianPattern):
        self._pat = pat

    def solve(self, data: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        p = self._pat
        jac = sp.csc_matrix((data, p.indices, p.indptr), shape=(p.n, p.n))
        return splu(jac, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True}).solve(rhs)


@dataclass(frozen=True)
class JacobianPattern:
    """Fixed CSC pattern of the polar Jacobian for given ybus, pvpq and pq."""

    indptr: np.ndarray
    indices: np.ndarray
    ypos: np.ndarray
    rowbus: np.ndarray
    colbus: np.ndarray
    kind: np.ndarray
    n: int

    @classmethod
    def build(cls, ybus: sp.csr_matrix, pvpq: np.ndarray, pq: np.ndarray) -> JacobianPattern:
        """Pattern for unknowns [Va(pvpq); Vm(pq)]; ``pvpq`` and ``pq`` must be sorted bus positions."""
        nb = ybus.shape[0]
        npvpq, npq = len(pvpq), len(pq)
        pos_a = np.full(nb, -1, np.int64)
        pos_a[pvpq] = np.arange(npvpq)
        pos_m = np.full(nb, -1, np.int64)
        pos_m[pq] = npvpq + np.arange(npq)
        n = npvpq + npq
        indptr, indices, ypos, rowbus, colbus, kind = _k.jacobian_pattern(
            ybus.indptr.astype(np.int64), ybus.indices.astype(np.int64), pos_a, pos_m, n)
        return cls(indptr, indices, ypos, rowbus, colbus, kind, n)


@dataclass
class NewtonResult:
    """Outcome of one Newton-Raphson solve (V in p.u.; mismatch in p.u. of the system base)."""

    V: np.ndarray
    converged: bool
    iterations: int
    max_mismatch: float
    worst_bus: int  # bus position of the largest mismatch (-1 when none)
    history: list[float] = field(default_factory=list)
    time_jacobian: float = 0.0
    time_solve: float = 0.0


def newton_raphson(ybus: sp.csr_matrix, sbus: np.ndarray, V0: np.ndarray, pv: np.ndarray, pq: np.ndarray,
                   tol: float = 1e-8, max_iter: int = 20, linear_solver: str = "klu") -> NewtonResult:
    """Solve the AC power-flow equations by Newton-Raphson from ``V0``.

    ``pv``/``pq`` are bus positions; all other buses keep their voltage from
    ``V0`` (reference and de-energised buses).  Converged when the infinity
    norm of the mismatch is below ``tol`` (p.u.).
    """
    pvpq = np.sort(np.concatenate([pv, pq])).astype(np.int64)  # sorted: see JacobianPattern.build
    pq = np.sort(np.asarray(pq, np.int64))
    npvpq = len(pvpq)
    indptr = ybus.indptr.astype(np.int64)
    indices = ybus.indices.astype(np.int64)
    ydata = np.ascontiguousarray(ybus.data, dtype=complex)
    sbus = np.ascontiguousarray(sbus, dtype=complex)
    V = np.ascontiguousarray(V0, dtype=complex).copy()
    va, vm = np.angle(V), np.abs(V)
    current = np.empty_like(V)
    F = np.empty(npvpq + len(pq))

    def mismatch() -> tuple[float, int]:
        _k.csr_matvec(indptr, indices, ydata, V, current)
        m, w = _k.power_mismatch(V, current, sbus, pvpq, pq, F)
        bus = -1 if w < 0 else int(pvpq[w] if w < npvpq else pq[w - npvpq])
        return m, bus

    m, worst = mismatch()
    hist = [m]
    if len(F) == 0:
        return NewtonResult(V, True, 0, 0.0, -1, hist)
    if linear_solver not in LINEAR_SOLVERS:
        raise ValueError(f"linear_solver must be one of {LINEAR_SOLVERS}, got {linear_solver!r}")
    pat = JacobianPattern.build(ybus, pvpq, pq)
    try:
        lu = (_KLUSolver if linear_solver == "klu" else _SuperLUSolver)(pat)
    except (ArithmeticError, ValueError, RuntimeError):  # structurally singular Jacobian
        return NewtonResult(V, False, 0, m, worst, hist)
    jdata = np.empty(len(pat.ypos))
    it, tj, ts = 0, 0.0, 0.0
    while m >= tol and it < max_iter:
        it += 1
        t0 = time.perf_counter()
        _k.jacobian_fill(ydata, V, current, pat.ypos, pat.rowbus, pat.colbus, pat.kind, jdata)
        t1 = time.perf_counter()
        try:
            dx = lu.solve(jdata, F)
        except (ArithmeticError, RuntimeError):  # singular Jacobian: report non-convergence
            return NewtonResult(V, False, it, m, worst, hist, tj, ts)
        ts += time.perf_counter() - t1
        tj += t1 - t0
        if not np.all(np.isfinite(dx)):
            return NewtonResult(V, False, it, m, worst, hist, tj, ts)
        _k.update_voltage(va, vm, dx, pvpq, pq, V)
        m, worst = mismatch()
        hist.append(m)
        if not np.isfinite(m):
            break
    return NewtonResult(V, bool(m < tol), it, m, worst, hist, tj, ts)
