# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Newton-Raphson power-flow kernels on flat arrays.

All complex quantities are in p.u.; ``ybus`` is a CSR matrix given by
(indptr, indices, data) with sorted column indices and an explicit diagonal.
The Jacobian is held in CSC form with a fixed pattern computed once per
(network, bus-type) combination; ``jacobian_fill`` rewrites its values only.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport INFINITY, cos, fabs, sin, sqrt

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
    """Fill F = [Re(mis[pvpq]), Im(mis[pq])] with mis = V conj(I) - Sbus; return (max |F|, argmax).

    A NaN mismatch counts as infinite, so it can never pass for convergence.
    """
    cdef Py_ssize_t npvpq = pvpq.shape[0], npq = pq.shape[0], k, b, worst = -1
    cdef cplx s
    cdef double m = 0.0, a
    with nogil:
        for k in range(npvpq):
            b = pvpq[k]
            s = V[b] * I[b].conjugate() - sbus[b]
            F[k] = s.real
            a = fabs(s.real)
            if a != a:
                a = INFINITY
            if a > m or worst < 0:
                m = a
                worst = k
        for k in range(npq):
            b = pq[k]
            s = V[b] * I[b].conjugate() - sbus[b]
            F[npvpq + k] = s.imag
            a = fabs(s.imag)
            if a != a:
                a = INFINITY
            if a > m or worst < 0:
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
    cdef Py_ssize_t n = out.shape[0], e, i, c, nb = V.shape[0]
    cdef cplx y, vi, vc, t, vic
    cdef double inv, re, im
    cdef cnp.int8_t k
    cdef double[::1] vinv = np.empty(nb)
    with nogil:
        for i in range(nb):
            vinv[i] = 1.0 / sqrt(V[i].real * V[i].real + V[i].imag * V[i].imag)
        for e in range(n):
            i = rowbus[e]
            c = colbus[e]
            y = ydata[ypos[e]]
            vi = V[i]
            vc = V[c]
            t = vi * (y * vc).conjugate()  # V_i conj(Y V_c)
            k = kind[e]
            if k == 0 or k == 2:
                # -j t  (+ j V_i conj(I_i) on the diagonal)
                re = t.imag
                im = -t.real
                if i == c:
                    vic = vi * I[i].conjugate()
                    re = re - vic.imag
                    im = im + vic.real
                out[e] = re if k == 0 else im
            else:
                inv = vinv[c]
                re = t.real * inv
                im = t.imag * inv
                if i == c:
                    vic = I[i].conjugate() * vi
                    re = re + vic.real * inv
                    im = im + vic.imag * inv
                out[e] = re if k == 1 else im


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


cdef inline void _put(cnp.int64_t[::1] cursor, Py_ssize_t col, Py_ssize_t row, Py_ssize_t p, Py_ssize_t i,
                      Py_ssize_t c, int k, cnp.int32_t[::1] jrow, cnp.int64_t[::1] ypos,
                      cnp.int64_t[::1] rowbus, cnp.int64_t[::1] colbus, cnp.int8_t[::1] kind) noexcept nogil:
    """Append Jacobian entry (row, col) of kind k, from Ybus entry p = (i, c), to its column."""
    cdef Py_ssize_t e = cursor[col]
    cursor[col] += 1
    jrow[e] = <cnp.int32_t>row
    ypos[e] = p
    rowbus[e] = i
    colbus[e] = c
    kind[e] = <cnp.int8_t>k


def jacobian_pattern(const cnp.int64_t[::1] indptr, const cnp.int64_t[::1] indices,
                     const cnp.int64_t[::1] pos_a, const cnp.int64_t[::1] pos_m, Py_ssize_t n):
    """CSC pattern of the polar Jacobian from the Ybus CSR pattern.

    ``pos_a[b]`` is the unknown/equation number of bus b's angle / P equation
    (-1 for slack and de-energised buses), ``pos_m[b]`` that of its magnitude / Q
    equation (-1 unless PQ).  Both must increase with b and every pos_a entry
    must be below every pos_m entry; then two sweeps over Ybus (P rows, then Q
    rows) leave each column's rows sorted.  Returns (indptr, indices, ypos,
    rowbus, colbus, kind) with kind 0..3 as in :func:`jacobian_fill`.
    """
    cdef Py_ssize_t nb = indptr.shape[0] - 1, i, p, c, col, sweep, row
    cdef cnp.int64_t[::1] count = np.zeros(n + 1, dtype=np.int64)
    with nogil:
        for i in range(nb):
            for p in range(indptr[i], indptr[i + 1]):
                c = indices[p]
                for sweep in range(2):
                    row = pos_a[i] if sweep == 0 else pos_m[i]
                    if row < 0:
                        continue
                    if pos_a[c] >= 0:
                        count[pos_a[c] + 1] += 1
                    if pos_m[c] >= 0:
                        count[pos_m[c] + 1] += 1
        for col in range(n):
            count[col + 1] += count[col]
    nnz = count[n]
    jp = np.asarray(count).copy()
    cdef cnp.int64_t[::1] cursor = np.asarray(count[:n]).copy()
    cdef cnp.int32_t[::1] jrow = np.empty(nnz, dtype=np.int32)
    cdef cnp.int64_t[::1] ypos = np.empty(nnz, dtype=np.int64)
    cdef cnp.int64_t[::1] rowbus = np.empty(nnz, dtype=np.int64)
    cdef cnp.int64_t[::1] colbus = np.empty(nnz, dtype=np.int64)
    cdef cnp.int8_t[::1] kind = np.empty(nnz, dtype=np.int8)
    with nogil:
        for sweep in range(2):
            for i in range(nb):
                row = pos_a[i] if sweep == 0 else pos_m[i]
                if row < 0:
                    continue
                for p in range(indptr[i], indptr[i + 1]):
                    c = indices[p]
                    if pos_a[c] >= 0:  # d/dVa_c: kind 0 (P row) or 2 (Q row)
                        _put(cursor, pos_a[c], row, p, i, c, 2 * sweep, jrow, ypos, rowbus, colbus, kind)
                    if pos_m[c] >= 0:  # d/dVm_c: kind 1 (P row) or 3 (Q row)
                        _put(cursor, pos_m[c], row, p, i, c, 2 * sweep + 1, jrow, ypos, rowbus, colbus, kind)
    return jp, np.asarray(jrow), np.asarray(ypos), np.asarray(rowbus), np.asarray(colbus), np.asarray(kind)
