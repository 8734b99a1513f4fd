# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Newton-Raphson power-flow kernels on flat arrays.

All complex quantities are in p.u.; ``ybus`` is a CSR matrix given by
(indptr, indices, data) with sorted column indices and an explicit diagonal.
The Jacobian is held in CSC form with a fixed pattern computed once per
(network, bus-type) combination; ``jacobian_fill`` rewrites its values only.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport fabs, cos, sin

cnp.import_array()

ctypedef double complex cplx


def csr_matvec(const cnp.int64_t[::1] indptr, const cnp.int64_t[::1] indices,
               const cplx[::1] data, const cplx[::1] x, cplx[::1] out):
    """out = A @ x for a complex CSR matrix A."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, p
    cdef cplx acc
    with nogil:
        for i in range(n):
            acc = 0
            for p in range(indptr[i], indptr[i + 1]):
                acc = acc + data[p] * x[indices[p]]
            out[i] = acc


def power_mismatch(const cplx[::1] V, const cplx[::1] I, const cplx[::1] sbus,
                   const cnp.int64_t[::1] pvpq, const cnp.int64_t[::1] pq, double[::1] F):
    """Fill F = [Re(mis[pvpq]), Im(mis[pq])] with mis = V conj(I) - Sbus; return (max |F|, argmax)."""
    cdef Py_ssize_t npvpq = pvpq.shape[0], npq = pq.shape[0], k, b, worst = -1
    cdef cplx s
    cdef double m = 0.0, a
    with nogil:
        for k in range(npvpq):
            b = pvpq[k]
            s = V[b] * I[b].conjugate() - sbus[b]
            F[k] = s.real
            a = fabs(s.real)
            if a > m:
                m = a
                worst = k
        for k in range(npq):
            b = pq[k]
            s = V[b] * I[b].conjugate() - sbus[b]
            F[npvpq + k] = s.imag
            a = fabs(s.imag)
            if a > m:
                m = a
                worst = npvpq + k
    return m, worst


def jacobian_fill(const cplx[::1] ydata, const cplx[::1] V, const cplx[::1] I,
                  const cnp.int64_t[::1] ypos, const cnp.int64_t[::1] rowbus,
                  const cnp.int64_t[::1] colbus, const cnp.int8_t[::1] kind, double[::1] out):
    """Write the polar Jacobian's values into its fixed pattern.

    Entry e is d(S_i)/d(x_c) with i = rowbus[e], c = colbus[e], Y = ydata[ypos[e]]:
    kind 0 = Re dS/dVa, 1 = Re dS/dVm, 2 = Im dS/dVa, 3 = Im dS/dVm, where
    dS_i/dVa_c = j V_i (d_ic conj(I_i) - conj(Y V_c)) and
    dS_i/dVm_c = V_i conj(Y Vn_c) + d_ic conj(I_i) Vn_i, Vn = V/|V|.
    """
    cdef Py_ssize_t n = out.shape[0], e, i, c
    cdef cplx y, vi, vc, vn, val
    cdef double mag
    cdef cplx J = 1j
    with nogil:
        for e in range(n):
            i = rowbus[e]
            c = colbus[e]
            y = ydata[ypos[e]]
            vi = V[i]
            vc = V[c]
            if kind[e] == 0 or kind[e] == 2:
                val = -J * vi * (y * vc).conjugate()
                if i == c:
                    val = val + J * vi * I[i].conjugate()
                out[e] = val.real if kind[e] == 0 else val.imag
            else:
                mag = (vc.real * vc.real + vc.imag * vc.imag) ** 0.5
                vn = vc / mag
                val = vi * (y * vn).conjugate()
                if i == c:
                    val = val + I[i].conjugate() * vn
                out[e] = val.real if kind[e] == 1 else val.imag


def update_voltage(double[::1] va, double[::1] vm, const double[::1] dx,
                   const cnp.int64_t[::1] pvpq, const cnp.int64_t[::1] pq, cplx[::1] V):
    """Apply the Newton step (x -= dx) to angles (pvpq) and magnitudes (pq); rebuild V."""
    cdef Py_ssize_t npvpq = pvpq.shape[0], npq = pq.shape[0], k, n = V.shape[0]
    with nogil:
        for k in range(npvpq):
            va[pvpq[k]] -= dx[k]
        for k in range(npq):
            vm[pq[k]] -= dx[npvpq + k]
        for k in range(n):
            V[k] = vm[k] * cos(va[k]) + 1j * vm[k] * sin(va[k])
