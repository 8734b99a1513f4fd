# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Global Gradient Algorithm kernels (Todini & Pilati, as in EPANET 2.2/2.3).

Everything works on flat arrays in SI units (m, m³/s); EPANET's tolerances
come in converted (see ``twin.water.units``).  Node numbering: junctions
``0..nj-1`` then fixed-head nodes (tanks, reservoirs).  The sparse symmetric
positive-definite system is factorised as L·D·Lᵀ with a fill-reducing
ordering and a symbolic factorisation (elimination tree, column counts)
computed once per network by :class:`LDLPattern`; each iteration only refills
the values and repeats the numeric factorisation (up-looking, row by row).

Link types, statuses and pump types use EPANET's codes.
"""

from libc.math cimport fabs, sqrt, pow, log
import numpy as np
cimport numpy as cnp

cnp.import_array()

# link types
DEF CVPIPE = 0
DEF PIPE = 1
DEF PUMP = 2
DEF PRV = 3
DEF PSV = 4
DEF PBV = 5
DEF FCV = 6
DEF TCV = 7
DEF GPV = 8
DEF PCV = 9
# statuses
DEF XHEAD = 0
DEF TEMPCLOSED = 1
DEF CLOSED = 2
DEF OPEN = 3
DEF ACTIVE = 4
DEF XFLOW = 5
DEF XFCV = 6
DEF XPRESSURE = 7
# pump types
DEF CONST_HP = 0
DEF POWER_FUNC = 1
DEF CUSTOM = 2
DEF NOCURVE = 3
# headloss formulas
DEF HW = 0
DEF DW = 1
DEF CM = 2
# control types
DEF LOWLEVEL = 0
DEF HILEVEL = 1

DEF MISSING = -1e10

# Darcy-Weisbach friction-factor constants (EPANET's hydcoeffs.c)
DEF A1 = 3.14159265358979323850e+03   # 1000*PI
DEF A2 = 1.57079632679489661930e+03   # 500*PI
DEF A8 = 4.61841319859066668690e+00   # 5.74*(PI/4)^.9
DEF A9 = -8.68588963806503655300e-01  # -2/ln(10)
DEF AB = 3.28895476345399058690e-03   # 5.74/(4000^.9)
DEF AC = -5.14214965799093883760e-03  # AA*AB
DEF PI = 3.14159265358979323846


cdef inline double sgn(double x) nogil:
    return -1.0 if x < 0.0 else 1.0


# ---------------------------------------------------------------------------
# Sparse L·D·Lᵀ with a fixed pattern
# ---------------------------------------------------------------------------

cdef class LDLPattern:
    """Symbolic L·D·Lᵀ factorisation of a fixed symmetric pattern.

    ``Ap``/``Ai``: CSC of the permuted upper triangle (row < column) of the
    matrix, one column per junction; ``n``: order.  Values are given to
    :meth:`factor` as ``diag`` (length n) and ``Ax`` (aligned with ``Ai``).
    """

    cdef public int n
    cdef int[::1] Ap, Ai, parent, Lp, Li, flag, pattern, lnzw
    cdef double[::1] Lx, D, Y
    cdef public int nnz_l

    def __init__(self, int n, int[::1] Ap, int[::1] Ai):
        cdef int k, p, i
        self.n = n
        self.Ap = Ap
        self.Ai = Ai
        self.parent = np.full(n, -1, dtype=np.int32)
        self.flag = np.zeros(n, dtype=np.int32)
        self.pattern = np.zeros(max(n, 1), dtype=np.int32)
        lnz = np.zeros(n, dtype=np.int32)
        cdef int[::1] Lnz = lnz
        # elimination tree and column counts of L (row-subtree traversal)
        for k in range(n):
            self.parent[k] = -1
            self.flag[k] = k
            for p in range(Ap[k], Ap[k + 1]):
                i = Ai[p]
                if i < k:
                    while self.flag[i] != k:
                        if self.parent[i] == -1:
                            self.parent[i] = k
                        Lnz[i] += 1
                        self.flag[i] = k
                        i = self.parent[i]
        self.Lp = np.zeros(n + 1, dtype=np.int32)
        for k in range(n):
            self.Lp[k + 1] = self.Lp[k] + Lnz[k]
        self.nnz_l = self.Lp[n]
        self.Li = np.zeros(max(self.nnz_l, 1), dtype=np.int32)
        self.Lx = np.zeros(max(self.nnz_l, 1), dtype=np.float64)
        self.D = np.zeros(max(n, 1), dtype=np.float64)
        self.Y = np.zeros(max(n, 1), dtype=np.float64)
        self.lnzw = np.zeros(max(n, 1), dtype=np.int32)

    cdef int factor(self, double[::1] diag, double[::1] Ax) noexcept nogil:
        """Numeric factorisation; returns -1 on success or the first column whose pivot is not positive."""
        cdef int n = self.n, k, p, p2, i, length, top, ip
        cdef double yi, l_ki
        cdef int[::1] lnz = self.lnzw
        for k in range(n):
            lnz[k] = 0
        for k in range(n):
            self.Y[k] = 0.0
            top = n
            self.flag[k] = k
            self.Y[k] += diag[k]
            for p in range(self.Ap[k], self.Ap[k + 1]):
                i = self.Ai[p]
                self.Y[i] += Ax[p]
                length = 0
                while self.flag[i] != k:
                    self.pattern[length] = i
                    length += 1
                    self.flag[i] = k
                    i = self.parent[i]
                while length > 0:
                    top -= 1
                    length -= 1
                    self.pattern[top] = self.pattern[length]
            self.D[k] = self.Y[k]
            self.Y[k] = 0.0
            while top < n:
                i = self.pattern[top]
                top += 1
                yi = self.Y[i]
                self.Y[i] = 0.0
                p2 = self.Lp[i] + lnz[i]
                for ip in range(self.Lp[i], p2):
                    self.Y[self.Li[ip]] -= self.Lx[ip] * yi
                l_ki = yi / self.D[i]
                self.D[k] -= l_ki * yi
                self.Li[p2] = k
                self.Lx[p2] = l_ki
                lnz[i] += 1
            if self.D[k] <= 0.0:
                return k
        return -1

    cdef void solve(self, double[::1] x) noexcept nogil:
        """Solve L·D·Lᵀ x = b in place (b given in ``x``)."""
        cdef int n = self.n, j, p
        for j in range(n):
            for p in range(self.Lp[j], self.Lp[j + 1]):
                x[self.Li[p]] -= self.Lx[p] * x[j]
        for j in range(n):
            x[j] /= self.D[j]
        for j in range(n - 1, -1, -1):
            for p in range(self.Lp[j], self.Lp[j + 1]):
                x[j] -= self.Lx[p] * x[self.Li[p]]

    def factor_solve(self, double[::1] diag, double[::1] Ax, double[::1] b):
        """Factorise and solve (for tests); returns (pivot_failure_column or -1, x)."""
        x = np.array(b, dtype=np.float64, copy=True)
        cdef int r = self.factor(diag, Ax)
        if r < 0:
            self.solve(x)
        return r, x


# ---------------------------------------------------------------------------
# The hydraulic solver
# ---------------------------------------------------------------------------

cdef class GGASolver:
    """EPANET's hydsolve() on flat arrays.

    Constructed once per network with the static data; :meth:`solve` balances
    the network for the current demands, fixed heads, statuses and settings
    (all held in arrays shared with the Python driver, updated in place).
    """

    # sizes
    cdef public int nj, nn, nl
    # network (static)
    cdef int[::1] n1, n2, ltype, pump_of, valve_curve, pair, row
    cdef double[::1] R, Km, diam, rough, elev, ke
    # pumps
    cdef int[::1] ptype, pcurve
    cdef double[::1] pH0, pR, pN, pHmax, pQ0
    # curves (flat)
    cdef int[::1] cptr
    cdef double[::1] cx, cy
    # fixed-head nodes (index nn - nj): tank data
    cdef double[::1] tank_area, tank_hmin, tank_hmax
    cdef int[::1] tank_overflow
    # junction-pressure controls (pswitch)
    cdef int[::1] pc_link, pc_node, pc_type, pc_status
    cdef double[::1] pc_grade, pc_setting
    # options
    cdef public int formula, max_iter, extra_iter, check_freq, max_check, pda, emit_backflow
    cdef public double hexp, qexp, htol, qtol, rqtol, hacc, damp_limit, viscosity
    cdef public double pmin, preq, pexp, head_error_limit, flow_change_limit
    cdef public double cbig_r, cbig_g, csmall_r, tiny_q, tiny_r, barrier, minpdiff, pda_qtol, ft
    # state (shared with Python)
    cdef public object head_arr, flow_arr, status_arr, setting_arr, demand_arr, full_demand_arr, emitter_arr
    cdef public object node_outflow_arr
    cdef double[::1] H, Q, setting, dflow, full_demand, eflow, node_out
    cdef int[::1] status
    # work
    cdef double[::1] P, Yk, Aii, Aij, F, Xflow, Ax
    cdef int[::1] pairpos
    cdef LDLPattern ldl
    # results of the last solve
    cdef public int iterations, bad_node, deficient_nodes
    cdef public double relative_error, max_head_error, max_flow_change, demand_reduction
    cdef int[::1] perm
    cdef double relax

    def __init__(self, dict net, dict opts, LDLPattern ldl, int[::1] pairpos):
        self.nj = net["nj"]
        self.nn = net["nn"]
        self.nl = net["nl"]
        self.n1 = net["n1"]
        self.n2 = net["n2"]
        self.ltype = net["ltype"]
        self.pump_of = net["pump_of"]
        self.valve_curve = net["valve_curve"]
        self.pair = net["pair"]
        self.row = net["row"]
        self.R = net["R"]
        self.Km = net["Km"]
        self.diam = net["diam"]
        self.rough = net["rough"]
        self.elev = net["elev"]
        self.ke = net["ke"]
        self.ptype = net["ptype"]
        self.pcurve = net["pcurve"]
        self.pH0 = net["pH0"]
        self.pR = net["pR"]
        self.pN = net["pN"]
        self.pHmax = net["pHmax"]
        self.pQ0 = net["pQ0"]
        self.cptr = net["cptr"]
        self.cx = net["cx"]
        self.cy = net["cy"]
        self.tank_area = net["tank_area"]
        self.tank_hmin = net["tank_hmin"]
        self.tank_hmax = net["tank_hmax"]
        self.tank_overflow = net["tank_overflow"]
        self.pc_link = net["pc_link"]
        self.pc_node = net["pc_node"]
        self.pc_type = net["pc_type"]
        self.pc_status = net["pc_status"]
        self.pc_grade = net["pc_grade"]
        self.pc_setting = net["pc_setting"]
        for k, v in opts.items():
            setattr(self, k, v)
        self.ldl = ldl
        self.pairpos = pairpos
        self.P = np.zeros(self.nl, dtype=np.float64)
        self.Yk = np.zeros(self.nl, dtype=np.float64)
        self.Aii = np.zeros(max(self.nj, 1), dtype=np.float64)
        npairs = int(np.max(net["pair"]) + 1) if self.nl and np.max(net["pair"]) >= 0 else 0
        self.Aij = np.zeros(max(npairs, 1), dtype=np.float64)
        self.F = np.zeros(max(self.nj, 1), dtype=np.float64)
        self.Xflow = np.zeros(max(self.nn, 1), dtype=np.float64)
        self.Ax = np.zeros(max(len(pairpos), 1), dtype=np.float64)
        self.perm = net["perm"]
        self.relax = 1.0

    def bind(self, head, flow, status, setting, demand, full_demand, emitter, node_outflow):
        """Attach the state arrays (updated in place by :meth:`solve`)."""
        self.head_arr, self.flow_arr, self.status_arr, self.setting_arr = head, flow, status, setting
        self.demand_arr, self.full_demand_arr, self.emitter_arr = demand, full_demand, emitter
        self.node_outflow_arr = node_outflow
        self.H = head
        self.Q = flow
        self.status = status
        self.setting = setting
        self.dflow = demand
        self.full_demand = full_demand
        self.eflow = emitter
        self.node_out = node_outflow

    # -- curves ---------------------------------------------------------------
    cdef void curvecoeff(self, int c, double q, double* h0, double* r) noexcept nogil:
        cdef int start = self.cptr[c], npts = self.cptr[c + 1] - self.cptr[c]
        cdef int k1, k2 = 0
        while k2 < npts and self.cx[start + k2] < q:
            k2 += 1
        if k2 == 0:
            k2 += 1
        elif k2 == npts:
            k2 -= 1
        k1 = k2 - 1
        r[0] = (self.cy[start + k2] - self.cy[start + k1]) / (self.cx[start + k2] - self.cx[start + k1])
        h0[0] = self.cy[start + k1] - r[0] * self.cx[start + k1]

    # -- barriers (EPANET's, in ft/cfs terms) ------------------------------------
    cdef inline void lower_barrier(self, double dq, double* hloss, double* hgrad) noexcept nogil:
        cdef double a = self.barrier * dq
        cdef double b = sqrt(a * a + 1e-6)
        hloss[0] += self.ft * (a - b) / 2.0
        hgrad[0] += self.ft * (self.barrier / 2.0) * (1.0 - a / b)

    cdef inline void upper_barrier(self, double dq, double* hloss, double* hgrad) noexcept nogil:
        cdef double a = self.barrier * dq
        cdef double b = sqrt(a * a + 1e-6)
        hloss[0] += self.ft * (a + b) / 2.0
        hgrad[0] += self.ft * (self.barrier / 2.0) * (1.0 + a / b)

    # -- link coefficients ---------------------------------------------------------
    cdef void pipecoeff(self, int k) noexcept nogil:
        cdef double q, ml, r, hgrad, hloss, e, s, f, dfdq, r1, w, y1, y2, y3, fa, fb, x1, x2, x3, x4, rr
        if self.status[k] <= CLOSED:
            self.P[k] = 1.0 / self.cbig_r
            self.Yk[k] = self.Q[k]
            return
        q = fabs(self.Q[k])
        ml = self.Km[k]
        r = self.R[k]
        if self.formula == DW:
            e = self.rough[k] / self.diam[k]
            s = self.viscosity * self.diam[k]
            if q <= A2 * s:
                r = 16.0 * PI * s * r
                hloss = self.Q[k] * (r + ml * q)
                hgrad = r + 2.0 * ml * q
            else:
                w = q / s
                if w >= A1:
                    y1 = A8 / pow(w, 0.9)
                    y2 = e / 3.7 + y1
                    y3 = A9 * log(y2)
                    f = 1.0 / (y3 * y3)
                    dfdq = 1.8 * f * y1 * A9 / y2 / y3 / q
                else:
                    y2 = e / 3.7 + AB
                    y3 = A9 * log(y2)
                    fa = 1.0 / (y3 * y3)
                    fb = (2.0 + AC / (y2 * y3)) * fa
                    rr = w / A2
                    x1 = 7.0 * fa - fb
                    x2 = 0.128 - 17.0 * fa + 2.5 * fb
                    x3 = -0.128 + 13.0 * fa - (fb + fb)
                    x4 = 0.032 - 3.0 * fa + 0.5 * fb
                    f = x1 + rr * (x2 + rr * (x3 + rr * x4))
                    dfdq = (x2 + rr * (2.0 * x3 + rr * 3.0 * x4)) / s / A2
                r1 = f * r + ml
                hloss = r1 * q * self.Q[k]
                hgrad = (2.0 * r1 * q) + (dfdq * r * q * q)
            self.P[k] = 1.0 / hgrad
            self.Yk[k] = hloss / hgrad
            return
        hgrad = self.hexp * r * pow(q, self.hexp - 1.0)
        if hgrad < self.rqtol:
            hgrad = self.rqtol / self.hexp
            hloss = hgrad * q
        else:
            hloss = hgrad * q / self.hexp
        if ml > 0.0:
            hloss += ml * q * q
            hgrad += 2.0 * ml * q
        hloss *= sgn(self.Q[k])
        self.P[k] = 1.0 / hgrad
        self.Yk[k] = hloss / hgrad

    cdef void pumpcoeff(self, int k) noexcept nogil:
        cdef int p = self.pump_of[k]
        cdef double setting = self.setting[k], q, h0, r, n, hgrad, hloss
        if self.status[k] <= CLOSED or setting == 0.0:
            self.P[k] = 1.0 / self.cbig_r
            self.Yk[k] = self.Q[k]
            return
        q = fabs(self.Q[k])
        if self.ptype[p] == NOCURVE:
            self.P[k] = 1.0 / self.csmall_r
            self.Yk[k] = self.Q[k]
            return
        if self.ptype[p] == CUSTOM:
            self.curvecoeff(self.pcurve[p], q / setting, &h0, &r)
            hgrad = -r * setting
            hloss = -h0 * setting * setting + hgrad * self.Q[k]
        else:
            h0 = setting * setting * self.pH0[p]
            n = self.pN[p]
            if fabs(n - 1.0) < 1e-6:
                n = 1.0
            r = self.pR[p] * pow(setting, 2.0 - n)
            if self.ptype[p] == CONST_HP:
                hgrad = -r / q / q
                if hgrad > self.cbig_r:
                    self.P[k] = 1.0 / self.cbig_r
                    self.Yk[k] = self.Q[k]
                    return
                elif hgrad < self.csmall_r:
                    self.P[k] = 1.0 / self.csmall_r
                    self.Yk[k] = self.Q[k]
                    return
                else:
                    hloss = r / self.Q[k]
            elif n != 1.0:
                hgrad = n * r * pow(q, n - 1.0)
                if hgrad < self.rqtol:
                    hgrad = self.rqtol
                    hloss = h0 + hgrad * self.Q[k]
                else:
                    hloss = h0 + hgrad * self.Q[k] / n
            else:
                hgrad = r
                hloss = h0 + hgrad * self.Q[k]
        self.P[k] = 1.0 / hgrad
        self.Yk[k] = hloss / hgrad

    cdef void valvecoeff(self, int k, double km) noexcept nogil:
        cdef double flow = self.Q[k], q, hgrad, hloss
        if self.status[k] <= CLOSED:
            self.P[k] = 1.0 / self.cbig_r
            self.Yk[k] = flow
            return
        if km > 0.0:
            q = fabs(flow)
            hgrad = 2.0 * km * q
            if hgrad < self.rqtol:
                hgrad = self.rqtol / 2.0
                hloss = flow * hgrad
            else:
                hloss = flow * hgrad / 2.0
            self.P[k] = 1.0 / hgrad
            self.Yk[k] = hloss / hgrad
        else:
            self.P[k] = 1.0 / self.csmall_r
            self.Yk[k] = flow

    cdef double pcvloss(self, int k, double s) noexcept nogil:
        """Loss coefficient of a PCV opened ``s`` % (EPANET's pcvlosscoeff)."""
        cdef double kmo = self.Km[k], kvr, km
        cdef int c = self.valve_curve[k], start, npts, k1, k2
        if s >= 100.0:
            return kmo
        if s <= 0.0:
            return self.cbig_r
        if c < 0:
            kvr = s
        else:
            start = self.cptr[c]
            npts = self.cptr[c + 1] - start
            if s < self.cx[start]:
                kvr = s / self.cx[start] * self.cy[start]
            elif s > self.cx[start + npts - 1]:
                k2 = start + npts - 1
                kvr = (s - self.cx[k2]) / (1.0 - self.cx[k2]) * (1.0 - self.cy[k2]) + self.cy[k2]
            else:
                k2 = 0
                while k2 < npts and self.cx[start + k2] < s:
                    k2 += 1
                if k2 == 0:
                    k2 += 1
                elif k2 == npts:
                    k2 -= 1
                k1 = k2 - 1
                kvr = (self.cy[start + k2] - self.cy[start + k1]) / (self.cx[start + k2] - self.cx[start + k1])
                kvr = self.cy[start + k1] + kvr * (s - self.cx[start + k1])
        kvr /= 100.0
        if kvr > 1.0:
            kvr = 1.0
        if kvr < 1e-6:
            kvr = 1e-6
        km = kmo / (kvr * kvr)
        if km > self.cbig_r:
            km = self.cbig_r
        return km

    cdef void gpvcoeff(self, int k) noexcept nogil:
        cdef double h0, r, q
        if self.status[k] == CLOSED:
            self.valvecoeff(k, self.Km[k])
        else:
            q = fabs(self.Q[k])
            if q < self.tiny_q:
                q = self.tiny_q
            self.curvecoeff(self.valve_curve[k], q, &h0, &r)
            if r < self.tiny_r:
                r = self.tiny_r
            self.P[k] = 1.0 / r
            self.Yk[k] = (h0 / r + q) * sgn(self.Q[k])

    cdef void pbvcoeff(self, int k) noexcept nogil:
        cdef double s = self.setting[k]
        if s == MISSING or s == 0.0:
            self.valvecoeff(k, self.Km[k])
        elif self.Km[k] * self.Q[k] * self.Q[k] > s:
            self.valvecoeff(k, self.Km[k])
        else:
            self.P[k] = self.cbig_g
            self.Yk[k] = s * self.cbig_g

    cdef void headlosscoeffs(self) noexcept nogil:
        cdef int k, t
        cdef double km
        for k in range(self.nl):
            t = self.ltype[k]
            if t == PIPE or t == CVPIPE:
                self.pipecoeff(k)
            elif t == PUMP:
                self.pumpcoeff(k)
            elif t == PBV:
                self.pbvcoeff(k)
            elif t == TCV:
                km = self.Km[k]
                if self.setting[k] != MISSING:
                    km = self.R[k] * self.setting[k]   # R holds KM_K / d⁴ for TCVs
                self.valvecoeff(k, km)
            elif t == PCV:
                km = self.Km[k]
                if self.setting[k] != MISSING:
                    km = self.pcvloss(k, self.setting[k])
                self.valvecoeff(k, km)
            elif t == GPV:
                self.gpvcoeff(k)
            else:  # PRV, PSV, FCV
                if self.setting[k] == MISSING:
                    self.valvecoeff(k, self.Km[k])
                else:
                    self.P[k] = 0.0

    # -- matrix ------------------------------------------------------------------------
    cdef void matrixcoeffs(self) noexcept nogil:
        cdef int i, k, a, b, ra, rb, nj = self.nj
        cdef double hloss, hgrad, dp, n, ke, q
        for i in range(nj):
            self.Aii[i] = 0.0
            self.F[i] = 0.0
        for i in range(self.Aij.shape[0]):
            self.Aij[i] = 0.0
        for i in range(self.nn):
            self.Xflow[i] = 0.0
        # links
        for k in range(self.nl):
            if self.P[k] == 0.0:
                continue
            a = self.n1[k]
            b = self.n2[k]
            self.Xflow[a] -= self.Q[k]
            self.Xflow[b] += self.Q[k]
            if self.pair[k] >= 0:
                self.Aij[self.pair[k]] -= self.P[k]
            if a < nj:
                ra = self.row[a]
                self.Aii[ra] += self.P[k]
                self.F[ra] += self.Yk[k]
            elif b < nj:
                self.F[self.row[b]] += self.P[k] * self.H[a]
            if b < nj:
                rb = self.row[b]
                self.Aii[rb] += self.P[k]
                self.F[rb] -= self.Yk[k]
            elif a < nj:
                self.F[self.row[a]] += self.P[k] * self.H[b]
        # emitters
        for i in range(nj):
            if self.ke[i] == 0.0:
                continue
            self.emitterheadloss(i, &hloss, &hgrad)
            self.Aii[self.row[i]] += 1.0 / hgrad
            self.F[self.row[i]] += (hloss + self.elev[i]) / hgrad
            self.Xflow[i] -= self.eflow[i]
        # pressure-dependent demands
        if self.pda:
            dp = self.preq - self.pmin
            n = 1.0 / self.pexp
            for i in range(nj):
                if self.full_demand[i] <= 0.0:
                    continue
                self.demandheadloss(i, dp, n, &hloss, &hgrad)
                if hgrad > 0.0:
                    self.Aii[self.row[i]] += 1.0 / hgrad
                    self.F[self.row[i]] += (hloss + self.elev[i] + self.pmin) / hgrad
        # nodes
        for i in range(nj):
            self.Xflow[i] -= self.dflow[i]
            self.F[self.row[i]] += self.Xflow[i]
        # PRV / PSV / FCV with a setting
        for k in range(self.nl):
            if self.ltype[k] == PRV or self.ltype[k] == PSV or self.ltype[k] == FCV:
                if self.setting[k] != MISSING:
                    self.valve_matrix(k)

    cdef void valve_matrix(self, int k) noexcept nogil:
        cdef int a = self.n1[k], b = self.n2[k], t = self.ltype[k]
        cdef int i = self.row[a], j = self.row[b]
        cdef double hset, q
        if t == PRV:
            hset = self.elev[b] + self.setting[k]
            if self.status[k] == ACTIVE:
                self.P[k] = 0.0
                self.Yk[k] = self.Q[k] + self.Xflow[b]
                self.F[j] += hset * self.cbig_g
                self.Aii[j] += self.cbig_g
                if self.Xflow[b] < 0.0:
                    self.F[i] += self.Xflow[b]
                return
        elif t == PSV:
            hset = self.elev[a] + self.setting[k]
            if self.status[k] == ACTIVE:
                self.P[k] = 0.0
                self.Yk[k] = self.Q[k] - self.Xflow[a]
                self.F[i] += hset * self.cbig_g
                self.Aii[i] += self.cbig_g
                if self.Xflow[a] > 0.0:
                    self.F[j] += self.Xflow[a]
                self.Aij[self.pair[k]] -= self.psv_link()
                self.Aii[j] += self.psv_link()
                return
        else:  # FCV
            q = self.setting[k]
            if self.status[k] == ACTIVE:
                self.Xflow[a] -= q
                self.Xflow[b] += q
                self.Yk[k] = self.Q[k] - q
                self.F[i] -= q
                self.F[j] += q
                self.P[k] = 1.0 / self.cbig_r
                self.Aij[self.pair[k]] -= self.P[k]
                self.Aii[i] += self.P[k]
                self.Aii[j] += self.P[k]
                return
        self.valvecoeff(k, self.Km[k])
        self.Aij[self.pair[k]] -= self.P[k]
        self.Aii[i] += self.P[k]
        self.Aii[j] += self.P[k]
        self.F[i] += self.Yk[k] - self.Q[k]
        self.F[j] -= self.Yk[k] - self.Q[k]

    cdef inline double psv_link(self) noexcept nogil:
        # EPANET adds 1/CBIG (a conductance, cfs/ft) to keep an active PSV's nodes connected
        return 1.0 / self.cbig_r

    cdef void emitterheadloss(self, int i, double* hloss, double* hgrad) noexcept nogil:
        cdef double ke = self.ke[i]
        cdef double q = self.eflow[i]
        hgrad[0] = self.qexp * ke * pow(fabs(q), self.qexp - 1.0)
        if hgrad[0] < self.rqtol:
            hgrad[0] = self.rqtol / self.qexp
            hloss[0] = hgrad[0] * q
        else:
            hloss[0] = hgrad[0] * q / self.qexp
        if not self.emit_backflow:
            self.lower_barrier(q, hloss, hgrad)

    cdef void demandheadloss(self, int i, double dp, double n, double* hloss, double* hgrad) noexcept nogil:
        cdef double d = self.dflow[i], dfull = self.full_demand[i]
        cdef double r = fabs(d) / dfull
        hgrad[0] = n * dp * pow(r, n - 1.0) / dfull
        hloss[0] = hgrad[0] * d / n
        self.lower_barrier(d, hloss, hgrad)
        self.upper_barrier(d - dfull, hloss, hgrad)

    # -- flows ---------------------------------------------------------------------------
    cdef double newflows(self, double relax) noexcept nogil:
        cdef int k, i, a, b, nj = self.nj
        cdef double dh, dq, qsum = 0.0, dqsum = 0.0, hloss, hgrad, dp, n
        self.max_flow_change = 0.0
        for i in range(nj, self.nn):
            self.node_out[i] = 0.0
        for k in range(self.nl):
            a = self.n1[k]
            b = self.n2[k]
            dh = self.H[a] - self.H[b]
            dq = self.Yk[k] - self.P[k] * dh
            dq *= relax
            if self.ltype[k] == PUMP:
                if self.ptype[self.pump_of[k]] == CONST_HP and dq > self.Q[k]:
                    dq = self.Q[k] / 2.0
            self.Q[k] -= dq
            qsum += fabs(self.Q[k])
            dqsum += fabs(dq)
            if fabs(dq) > self.max_flow_change:
                self.max_flow_change = fabs(dq)
            if self.status[k] > CLOSED:
                if a >= nj:
                    self.node_out[a] -= self.Q[k]
                if b >= nj:
                    self.node_out[b] += self.Q[k]
        for i in range(nj):
            if self.ke[i] == 0.0:
                continue
            self.emitterheadloss(i, &hloss, &hgrad)
            dh = self.H[i] - self.elev[i]
            dq = (hloss - dh) / hgrad
            dq *= relax
            self.eflow[i] -= dq
            qsum += fabs(self.eflow[i])
            dqsum += fabs(dq)
            if fabs(dq) > self.max_flow_change:
                self.max_flow_change = fabs(dq)
        if self.pda:
            dp = self.preq - self.pmin
            if dp < self.minpdiff:
                dp = self.minpdiff
            n = 1.0 / self.pexp
            for i in range(nj):
                if self.full_demand[i] <= 0.0:
                    continue
                self.demandheadloss(i, dp, n, &hloss, &hgrad)
                dh = self.H[i] - self.elev[i] - self.pmin
                dq = (hloss - dh) / hgrad
                dq *= relax
                if fabs(dq) > 0.4 * self.full_demand[i]:
                    dq = 0.4 * sgn(dq) * self.full_demand[i]
                self.dflow[i] -= dq
                qsum += fabs(self.dflow[i])
                dqsum += fabs(dq)
                if fabs(dq) > self.max_flow_change:
                    self.max_flow_change = fabs(dq)
        if qsum > self.hacc:
            return dqsum / qsum
        return dqsum

    # -- status checks -----------------------------------------------------------------------
    cdef int prvstatus(self, int k, int s, double hset, double h1, double h2) noexcept nogil:
        cdef double hml = self.Km[k] * self.Q[k] * self.Q[k], htol = self.htol
        cdef int status = s
        if s == ACTIVE:
            if self.Q[k] < -self.qtol:
                status = CLOSED
            elif h1 - hml < hset - htol:
                status = OPEN
            else:
                status = ACTIVE
        elif s == OPEN:
            if self.Q[k] < -self.qtol:
                status = CLOSED
            elif h2 >= hset + htol:
                status = ACTIVE
            else:
                status = OPEN
        elif s == CLOSED:
            if h1 >= hset + htol and h2 < hset - htol:
                status = ACTIVE
            elif h1 < hset - htol and h1 > h2 + htol:
                status = OPEN
            else:
                status = CLOSED
        elif s == XPRESSURE:
            if self.Q[k] < -self.qtol:
                status = CLOSED
        return status

    cdef int psvstatus(self, int k, int s, double hset, double h1, double h2) noexcept nogil:
        cdef double hml = self.Km[k] * self.Q[k] * self.Q[k], htol = self.htol
        cdef int status = s
        if s == ACTIVE:
            if self.Q[k] < -self.qtol:
                status = CLOSED
            elif h2 + hml > hset + htol:
                status = OPEN
            else:
                status = ACTIVE
        elif s == OPEN:
            if self.Q[k] < -self.qtol:
                status = CLOSED
            elif h1 < hset - htol:
                status = ACTIVE
            else:
                status = OPEN
        elif s == CLOSED:
            if h2 > hset + htol and h1 > h2 + htol:
                status = OPEN
            elif h1 >= hset + htol and h1 > h2 + htol:
                status = ACTIVE
            else:
                status = CLOSED
        elif s == XPRESSURE:
            if self.Q[k] < -self.qtol:
                status = CLOSED
        return status

    cdef int valvestatus(self) noexcept nogil:
        cdef int change = 0, k, s, a, b
        for k in range(self.nl):
            if self.ltype[k] != PRV and self.ltype[k] != PSV:
                continue
            if self.setting[k] == MISSING:
                continue
            a = self.n1[k]
            b = self.n2[k]
            s = self.status[k]
            if self.ltype[k] == PRV:
                self.status[k] = self.prvstatus(k, s, self.elev[b] + self.setting[k], self.H[a], self.H[b])
            else:
                self.status[k] = self.psvstatus(k, s, self.elev[a] + self.setting[k], self.H[a], self.H[b])
            if s != self.status[k]:
                change = 1
        return change

    cdef int cvstatus(self, int s, double dh, double q) noexcept nogil:
        if fabs(dh) > self.htol:
            if dh < -self.htol:
                return CLOSED
            elif q < -self.qtol:
                return CLOSED
            return OPEN
        if q < -self.qtol:
            return CLOSED
        return s

    cdef int pumpstatus(self, int k, double dh) noexcept nogil:
        cdef int p = self.pump_of[k]
        cdef double hmax
        if self.ptype[p] == CONST_HP:
            hmax = 1e10
            if self.Q[k] < self.tiny_q:
                return TEMPCLOSED
        else:
            hmax = self.setting[k] * self.setting[k] * self.pHmax[p]
        if dh > hmax + self.htol:
            return XHEAD
        return OPEN

    cdef int fcvstatus(self, int k, int s, double h1, double h2) noexcept nogil:
        cdef int status = s
        if h1 - h2 < -self.htol:
            status = XFCV
        elif self.Q[k] < -self.qtol:
            status = XFCV
        elif s == XFCV and self.Q[k] >= self.setting[k]:
            status = ACTIVE
        elif status == ACTIVE:
            if (h1 - h2) / (self.Q[k] * self.Q[k]) < self.Km[k]:
                status = XFCV
        return status

    cdef void tankstatus(self, int k, int n, double q) noexcept nogil:
        cdef int i = n - self.nj
        if self.status[k] <= CLOSED:
            return
        if self.tank_area[i] == 0.0:
            return
        if self.H[n] >= self.tank_hmax[i] and not self.tank_overflow[i] and q < 0.0:
            self.status[k] = TEMPCLOSED
        elif self.H[n] <= self.tank_hmin[i] and q > 0.0:
            self.status[k] = TEMPCLOSED

    cdef int linkstatus(self) noexcept nogil:
        cdef int change = 0, k, a, b, s, t
        cdef double dh
        for k in range(self.nl):
            a = self.n1[k]
            b = self.n2[k]
            dh = self.H[a] - self.H[b]
            s = self.status[k]
            t = self.ltype[k]
            if s == XHEAD or s == TEMPCLOSED:
                self.status[k] = OPEN
            if t == CVPIPE:
                self.status[k] = self.cvstatus(self.status[k], dh, self.Q[k])
            if t == PUMP and self.status[k] >= OPEN and self.setting[k] > 0.0:
                self.status[k] = self.pumpstatus(k, -dh)
            if t == FCV and self.setting[k] != MISSING:
                self.status[k] = self.fcvstatus(k, s, self.H[a], self.H[b])
            if a >= self.nj:
                self.tankstatus(k, a, self.Q[k])
            if b >= self.nj:
                self.tankstatus(k, b, -self.Q[k])
            if s != self.status[k]:
                change = 1
        return change

    cdef int pswitch(self) noexcept nogil:
        cdef int i, k, n, reset, change, anychange = 0, s, t
        for i in range(self.pc_link.shape[0]):
            k = self.pc_link[i]
            n = self.pc_node[i]
            reset = 0
            if self.pc_type[i] == LOWLEVEL and self.H[n] <= self.pc_grade[i] + self.htol:
                reset = 1
            if self.pc_type[i] == HILEVEL and self.H[n] >= self.pc_grade[i] - self.htol:
                reset = 1
            if not reset:
                continue
            change = 0
            s = self.status[k]
            t = self.ltype[k]
            if t == PIPE:
                if s != self.pc_status[i]:
                    change = 1
            if t == PUMP:
                if self.setting[k] != self.pc_setting[i]:
                    change = 1
            if t >= PRV:
                if self.setting[k] != self.pc_setting[i]:
                    change = 1
                elif self.setting[k] == MISSING and s != self.pc_status[i]:
                    change = 1
            if change:
                self.status[k] = self.pc_status[i]
                if t > PIPE:
                    self.setting[k] = self.pc_setting[i]
                anychange = 1
        return anychange

    cdef int badvalve(self, int n) noexcept nogil:
        cdef int k, t
        for k in range(self.nl):
            t = self.ltype[k]
            if t < PRV:
                continue
            if n == self.n1[k] or n == self.n2[k]:
                if t == PRV or t == PSV or t == FCV:
                    if self.status[k] == ACTIVE:
                        if t == FCV:
                            self.status[k] = XFCV
                        else:
                            self.status[k] = XPRESSURE
                        return 1
                return 0
        return 0

    cdef double max_headerror(self) noexcept nogil:
        cdef int k
        cdef double err = 0.0, dh, headloss
        self.headlosscoeffs()
        for k in range(self.nl):
            if self.status[k] <= CLOSED or self.P[k] == 0.0:
                continue
            dh = self.H[self.n1[k]] - self.H[self.n2[k]]
            headloss = self.Yk[k] / self.P[k]
            if fabs(dh - headloss) > err:
                err = fabs(dh - headloss)
        return err

    cdef int pdaconverged(self) noexcept nogil:
        cdef int i, converged = 1
        cdef double total = 0.0, reduction = 0.0, dp = self.preq - self.pmin, p, q
        self.deficient_nodes = 0
        self.demand_reduction = 0.0
        for i in range(self.nj):
            if self.full_demand[i] <= 0.0:
                continue
            p = self.H[i] - self.elev[i]
            if p <= self.pmin:
                q = 0.0
            elif p >= self.preq:
                q = self.full_demand[i]
            else:
                q = self.full_demand[i] * pow((p - self.pmin) / dp, self.pexp)
            if fabs(q - self.dflow[i]) > self.pda_qtol:
                converged = 0
            if self.dflow[i] + self.pda_qtol < self.full_demand[i]:
                self.deficient_nodes += 1
                total += self.full_demand[i]
                reduction += self.full_demand[i] - self.dflow[i]
        if total > 0.0:
            self.demand_reduction = reduction / total * 100.0
        return converged

    cdef int hasconverged(self, double relerr) noexcept nogil:
        if relerr > self.hacc:
            return 0
        if self.head_error_limit > 0.0:
            self.max_head_error = self.max_headerror()
            if self.max_head_error > self.head_error_limit:
                return 0
        if self.flow_change_limit > 0.0 and self.max_flow_change > self.flow_change_limit:
            return 0
        if self.pda:
            return self.pdaconverged()
        return 1

    def solve(self):
        """Balance the network (EPANET's hydsolve).

        Returns 0 on success or 110 when the matrix is ill-conditioned (the
        offending junction is in ``bad_node``).  ``iterations`` and
        ``relative_error`` describe the last solve; the caller compares the
        error with the accuracy to tell an unbalanced solution.
        """
        cdef int it = 1, nextcheck = self.check_freq, maxtrials = self.max_iter, i, r, errcode = 0
        cdef int valve_change, stat_change, col
        cdef double relerr = 0.0
        self.bad_node = -1
        self.relax = 1.0
        self.max_head_error = 0.0
        self.max_flow_change = 0.0
        self.deficient_nodes = 0
        self.demand_reduction = 0.0
        if self.extra_iter > 0:
            maxtrials += self.extra_iter
        with nogil:
            while it <= maxtrials:
                self.headlosscoeffs()
                self.matrixcoeffs()
                # assemble the permuted matrix and solve
                for i in range(self.pairpos.shape[0]):
                    self.Ax[self.pairpos[i]] = self.Aij[i]
                col = self.ldl.factor(self.Aii, self.Ax)
                if col >= 0:
                    # column col of the permuted matrix: junction perm[col]
                    errcode = 110
                    self.bad_node = col
                    if self.badvalve(self.perm[col]):
                        errcode = 0
                        continue
                    self.bad_node = self.perm[col]
                    break
                self.ldl.solve(self.F)
                for i in range(self.nj):
                    self.H[i] = self.F[self.row[i]]
                relerr = self.newflows(self.relax)
                self.relax = 1.0
                valve_change = 0
                if self.damp_limit > 0.0:
                    if relerr <= self.damp_limit:
                        self.relax = 0.6
                        valve_change = self.valvestatus()
                else:
                    valve_change = self.valvestatus()
                if self.hasconverged(relerr):
                    if it > self.max_iter:
                        break
                    stat_change = valve_change
                    if self.linkstatus():
                        stat_change = 1
                    if self.pswitch():
                        stat_change = 1
                    if not stat_change:
                        break
                    nextcheck = it + self.check_freq
                elif it <= self.max_check and it == nextcheck:
                    self.linkstatus()
                    nextcheck += self.check_freq
                it += 1
        self.iterations = it
        self.relative_error = relerr
        return errcode


# ---------------------------------------------------------------------------
# Extended-period loop (EPANET's runH / nextH)
# ---------------------------------------------------------------------------

DEF TIMER = 2
DEF TIMEOFDAY = 3
DEF SEC_PER_DAY = 86400


cdef inline long lround_epanet(double x) noexcept nogil:
    """EPANET's ROUND(): half away from zero, truncated."""
    if x >= 0.0:
        return <long>(x + 0.5)
    return <long>(x - 0.5)


cdef double interp(double[::1] x, double[::1] y, int start, int n, double xx) noexcept nogil:
    """EPANET's interp(): linear, clamped at both ends."""
    cdef int k
    cdef double dx
    if n == 0:
        return 0.0
    if xx <= x[start]:
        return y[start]
    for k in range(1, n):
        if x[start + k] >= xx:
            dx = x[start + k] - x[start + k - 1]
            if fabs(dx) < 1e-6:
                return y[start + k]
            return y[start + k] - (x[start + k] - xx) * (y[start + k] - y[start + k - 1]) / dx
    return y[start + n - 1]


cdef class Period:
    """The extended-period loop of EPANET on flat arrays, driving a :class:`GGASolver`.

    ``data`` holds the compiled arrays (see ``twin.water.hydraulics``).  :meth:`run`
    steps from 0 to the duration, records the reporting times into preallocated
    buffers and calls back into Python only for rule-based controls and for
    composing warning messages.
    """

    cdef GGASolver g
    # the solver's arrays (same buffers), held here so that loops index them directly
    cdef double[::1] H, Q, setting, dflow, full_demand, eflow, node_out, elev, cx, cy
    cdef int[::1] status, ltype, n1, n2, pump_of, cptr
    cdef long hstep, pstep, pstart, rstep, rstart, tstart, dur, rule_step
    cdef int nj, nn, nl, nr, nt, npump, nc, npat, halt_on_unbalanced, dda
    cdef double hacc, qzero, tiny_q, power_k, htol
    # patterns
    cdef int[::1] pat_ptr
    cdef double[::1] pat_val, pf
    cdef long cur_period
    # demands and reservoirs
    cdef int[::1] d_junc, d_pat, res_pat
    cdef double[::1] d_base, res_head
    cdef double dmult
    cdef public double system_demand
    # tanks
    cdef int[::1] t_node, t_curve
    cdef double[::1] V, t_vmin, t_vmax, t_hmin, t_hmax, t_area, t_elev
    # pumps
    cdef int[::1] p_link, p_speed_pat, p_eff_curve, p_price_pat, p_type
    cdef double[::1] p_q0, p_qmax, p_price, cur_kw, cur_eff
    cdef public object energy  # dict of numpy accumulators
    cdef double[::1] e_online, e_eff, e_kwh, e_kwhq, e_peak, e_cost
    cdef public double e_max_total
    cdef double eff0, spgr, price0
    cdef int price0_pat
    # controls
    cdef int[::1] c_link, c_node, c_type, c_status, c_tank, c_enabled
    cdef long[::1] c_time
    cdef double[::1] c_grade, c_setting, c_v2
    # node demand (junction outflow; tank/reservoir net inflow)
    cdef double[::1] node_demand
    cdef public object node_demand_arr, V_arr
    # results
    cdef public object rec_t, rec_H, rec_D, rec_Q, rec_S, rec_set, rec_kw, rec_eff, steps
    cdef public long halted_at, t_now
    cdef public int n_rec
    cdef public double solve_s

    def __init__(self, GGASolver g, dict d):
        self.g = g
        self.H, self.Q, self.setting = g.head_arr, g.flow_arr, g.setting_arr
        self.dflow, self.full_demand, self.eflow = g.demand_arr, g.full_demand_arr, g.emitter_arr
        self.node_out, self.status = g.node_outflow_arr, g.status_arr
        self.elev, self.cx, self.cy, self.cptr = d["elev"], d["cx"], d["cy"], d["cptr"]
        self.ltype, self.n1, self.n2, self.pump_of = d["ltype"], d["n1"], d["n2"], d["pump_of"]
        self.nj, self.nn, self.nl = g.nj, g.nn, g.nl
        self.hstep, self.pstep, self.pstart = d["hstep"], d["pstep"], d["pstart"]
        self.rstep, self.rstart, self.tstart = d["rstep"], d["rstart"], d["tstart"]
        self.dur, self.rule_step = d["dur"], d["rule_step"]
        self.hacc = g.hacc
        self.htol = g.htol
        self.halt_on_unbalanced = int(d["halt_on_unbalanced"])
        self.dda = int(d["dda"])
        self.qzero = d["qzero"]
        self.tiny_q = d["tiny_q"]
        self.power_k = d["power_k"]
        self.pat_ptr = d["pat_ptr"]
        self.pat_val = d["pat_val"]
        self.npat = len(d["pat_ptr"]) - 1
        self.pf = np.ones(self.npat + 1)
        self.cur_period = -1
        self.d_junc = d["d_junc"]
        self.d_pat = d["d_pat"]
        self.d_base = d["d_base"]
        self.dmult = d["dmult"]
        self.nr = len(d["res_head"])
        self.res_head = d["res_head"]
        self.res_pat = d["res_pat"]
        self.nt = len(d["t_node"])
        self.t_node = d["t_node"]
        self.t_curve = d["t_curve"]
        self.V_arr = np.array(d["t_v0"], dtype=np.float64)
        self.V = self.V_arr
        self.t_vmin = d["t_vmin"]
        self.t_vmax = d["t_vmax"]
        self.t_hmin = d["t_hmin"]
        self.t_hmax = d["t_hmax"]
        self.t_area = d["t_area"]
        self.t_elev = d["t_elev"]
        self.npump = len(d["p_link"])
        self.p_link = d["p_link"]
        self.p_speed_pat = d["p_speed_pat"]
        self.p_eff_curve = d["p_eff_curve"]
        self.p_price_pat = d["p_price_pat"]
        self.p_type = d["p_type"]
        self.p_q0 = d["p_q0"]
        self.p_qmax = d["p_qmax"]
        self.p_price = d["p_price"]
        n = max(self.npump, 1)
        self.cur_kw = np.zeros(n)
        self.cur_eff = np.zeros(n)
        self.energy = {k: np.zeros(n) for k in ("online_h", "eff_h", "kwh", "kwh_per_flow", "peak_kw", "cost")}
        self.e_online = self.energy["online_h"]
        self.e_eff = self.energy["eff_h"]
        self.e_kwh = self.energy["kwh"]
        self.e_kwhq = self.energy["kwh_per_flow"]
        self.e_peak = self.energy["peak_kw"]
        self.e_cost = self.energy["cost"]
        self.e_max_total = 0.0
        self.eff0 = d["eff0"]
        self.spgr = d["spgr"]
        self.price0 = d["price0"]
        self.price0_pat = d["price0_pat"]
        self.nc = len(d["c_link"])
        self.c_link = d["c_link"]
        self.c_node = d["c_node"]
        self.c_type = d["c_type"]
        self.c_status = d["c_status"]
        self.c_tank = d["c_tank"]
        self.c_enabled = d["c_enabled"]
        self.c_time = d["c_time"]
        self.c_grade = d["c_grade"]
        self.c_setting = d["c_setting"]
        self.c_v2 = np.zeros(max(self.nc, 1))
        cdef int i
        for i in range(self.nc):
            self.c_v2[i] = self.tank_volume(self.c_tank[i], self.c_grade[i]) if self.c_tank[i] >= 0 else 0.0
        self.node_demand_arr = np.zeros(self.nn)
        self.node_demand = self.node_demand_arr
        nrep = (self.dur - self.rstart) // self.rstep + 1 if self.dur >= self.rstart else 1
        self.rec_t = np.zeros(nrep, dtype=np.int64)
        self.rec_H = np.zeros((nrep, self.nn))
        self.rec_D = np.zeros((nrep, self.nn))
        self.rec_Q = np.zeros((nrep, self.nl))
        self.rec_S = np.zeros((nrep, self.nl), dtype=np.int32)
        self.rec_set = np.zeros((nrep, self.nl))
        self.rec_kw = np.zeros((nrep, n))
        self.rec_eff = np.zeros((nrep, n))
        self.steps = []
        self.n_rec = 0
        self.halted_at = -1

    # -- tanks -----------------------------------------------------------------------
    cpdef double tank_volume(self, int i, double h):
        cdef int c = self.t_curve[i]
        if c < 0:
            return self.t_vmin[i] + (h - self.t_hmin[i]) * self.t_area[i]
        return interp(self.cx, self.cy, self.cptr[c], self.cptr[c + 1] - self.cptr[c],
                      h - self.t_elev[i])

    cdef double tank_grade(self, int i, double v):
        cdef int c = self.t_curve[i]
        if c < 0:
            return self.t_hmin[i] + (v - self.t_vmin[i]) / self.t_area[i]
        return self.t_elev[i] + interp(self.cy, self.cx, self.cptr[c], self.cptr[c + 1] - self.cptr[c], v)

    cpdef void tank_levels(self, long tstep):
        cdef int i, n
        cdef double q
        for i in range(self.nt):
            n = self.t_node[i]
            q = self.node_demand[n]
            if fabs(q) <= self.qzero:
                continue
            self.V[i] += q * tstep
            if self.V[i] + q >= self.t_vmax[i]:
                self.V[i] = self.t_vmax[i]
            elif self.V[i] - q <= self.t_vmin[i]:
                self.V[i] = self.t_vmin[i]
            self.H[n] = self.tank_grade(i, self.V[i])

    cdef long tank_timestep(self, long tstep):
        cdef int i, n
        cdef double h, q, v, xt
        cdef long t
        for i in range(self.nt):
            n = self.t_node[i]
            h = self.H[n]
            q = self.node_demand[n]
            if fabs(q) <= self.qzero:
                continue
            if q > 0.0 and h < self.t_hmax[i]:
                v = self.t_vmax[i] - self.V[i]
            elif q < 0.0 and h > self.t_hmin[i]:
                v = self.t_vmin[i] - self.V[i]
            else:
                continue
            xt = v / q
            if fabs(xt) > tstep + 1:
                continue
            t = lround_epanet(xt)
            if 0 < t < tstep:
                tstep = t
        return tstep

    # -- patterns, demands, controls ----------------------------------------------------
    cdef void pattern_factors(self, long period):
        cdef int i, length
        if period == self.cur_period:
            return
        self.cur_period = period
        for i in range(self.npat):
            length = self.pat_ptr[i + 1] - self.pat_ptr[i]
            self.pf[i] = self.pat_val[self.pat_ptr[i] + period % length]
        self.pf[self.npat] = 1.0

    cpdef void reset_pump_flow(self, int k):
        cdef int p = self.pump_of[k]
        if self.p_type[p] == CONST_HP:
            self.Q[k] = self.p_q0[p]

    cdef void demands(self, long t):
        cdef int i, k, p
        cdef double d, value
        self.pattern_factors((t + self.pstart) // self.pstep)
        for i in range(self.nj):
            self.full_demand[i] = 0.0
        self.system_demand = 0.0
        for i in range(self.d_base.shape[0]):
            d = self.d_base[i] * self.pf[self.d_pat[i]] * self.dmult
            if d > 0.0:
                self.system_demand += d
            self.full_demand[self.d_junc[i]] += d
        for i in range(self.nj):
            self.dflow[i] = self.full_demand[i]
        for i in range(self.nr):
            self.H[self.nj + i] = self.res_head[i] * self.pf[self.res_pat[i]]
        for p in range(self.npump):
            if self.p_speed_pat[p] == self.npat:
                continue
            k = self.p_link[p]
            value = self.pf[self.p_speed_pat[p]]
            self.setting[k] = value
            if value > 0.0 and self.status[k] <= CLOSED:
                self.reset_pump_flow(k)
                self.status[k] = OPEN
            if value == 0.0 and self.status[k] > CLOSED:
                self.status[k] = CLOSED

    cdef void controls(self, long t):
        cdef int i, k, n, s1, s2, reset
        cdef double v1, vplus, k1, k2
        for i in range(self.nc):
            if not self.c_enabled[i]:
                continue
            reset = 0
            k = self.c_link[i]
            n = self.c_node[i]
            if n >= self.nj:
                vplus = fabs(self.node_demand[n])
                v1 = self.tank_volume(self.c_tank[i], self.H[n]) if self.c_tank[i] >= 0 else 0.0
                if self.c_type[i] == LOWLEVEL and v1 <= self.c_v2[i] + vplus:
                    reset = 1
                if self.c_type[i] == HILEVEL and v1 >= self.c_v2[i] - vplus:
                    reset = 1
            if self.c_type[i] == TIMER and self.c_time[i] == t:
                reset = 1
            if self.c_type[i] == TIMEOFDAY and (t + self.tstart) % SEC_PER_DAY == self.c_time[i]:
                reset = 1
            if reset:
                s1 = CLOSED if self.status[k] <= CLOSED else OPEN
                s2 = self.c_status[i]
                k1 = self.setting[k]
                k2 = k1 if self.ltype[k] <= PIPE else self.c_setting[i]
                if self.ltype[k] == PUMP and s1 == CLOSED and s2 == OPEN:
                    self.reset_pump_flow(k)
                if s1 != s2 or k1 != k2:
                    self.status[k] = s2
                    self.setting[k] = k2

    cdef long control_timestep(self, long now, long tstep):
        cdef int i, k, n, typ, ti
        cdef double h, q, v
        cdef long t, t1, t2
        for i in range(self.nc):
            if not self.c_enabled[i]:
                continue
            t = 0
            n = self.c_node[i]
            typ = self.c_type[i]
            if n >= 0:
                if n < self.nj:
                    continue
                h = self.H[n]
                q = self.node_demand[n]
                if fabs(q) <= self.qzero:
                    continue
                if (h < self.c_grade[i] and typ == HILEVEL and q > 0.0) or \
                        (h > self.c_grade[i] and typ == LOWLEVEL and q < 0.0):
                    ti = self.c_tank[i]
                    v = self.c_v2[i] - (self.V[ti] if ti >= 0 else 0.0)
                    t = lround_epanet(v / q)
            if typ == TIMER and self.c_time[i] > now:
                t = self.c_time[i] - now
            if typ == TIMEOFDAY:
                t1 = (now + self.tstart) % SEC_PER_DAY
                t2 = self.c_time[i]
                t = t2 - t1 if t2 >= t1 else SEC_PER_DAY - t1 + t2
            if 0 < t < tstep:
                k = self.c_link[i]
                if (self.ltype[k] > PIPE and self.setting[k] != self.c_setting[i]) or \
                        self.status[k] != self.c_status[i]:
                    tstep = t
        return tstep

    # -- energy -------------------------------------------------------------------------
    cdef void pump_energy(self):
        cdef int p, k, c
        cdef double q, dh, e, speed
        for p in range(self.npump):
            k = self.p_link[p]
            if self.status[k] <= CLOSED:
                self.cur_kw[p] = 0.0
                self.cur_eff[p] = 0.0
                continue
            q = fabs(self.Q[k])
            dh = fabs(self.H[self.n1[k]] - self.H[self.n2[k]])
            e = self.eff0
            c = self.p_eff_curve[p]
            speed = self.setting[k]
            if c >= 0:
                e = interp(self.cx, self.cy, self.cptr[c], self.cptr[c + 1] - self.cptr[c], q / speed)
                e = 100.0 - (100.0 - e) * pow(1.0 / speed, 0.1)
            if e > 100.0:
                e = 100.0
            if e < 1.0:
                e = 1.0
            e /= 100.0
            self.cur_kw[p] = self.power_k * self.spgr * q * dh / e
            self.cur_eff[p] = e

    cdef void add_energy(self, long t, long hstep):
        cdef double dt, f0, c, psum = 0.0, q, pw
        cdef int p, k
        if self.dur == 0:
            dt = 1.0
        elif t < self.dur:
            dt = hstep / 3600.0
        else:
            return
        if dt == 0.0:
            return
        self.pattern_factors((t + self.pstart) // self.pstep)
        f0 = self.pf[self.price0_pat]
        for p in range(self.npump):
            if self.cur_eff[p] == 0.0:
                continue
            k = self.p_link[p]
            q = fabs(self.Q[k])
            if q < self.qzero:
                q = self.qzero
            c = self.p_price[p] if self.p_price[p] > 0.0 else self.price0
            if self.p_price_pat[p] != self.npat:
                c *= self.pf[self.p_price_pat[p]]
            else:
                c *= f0
            pw = self.cur_kw[p]
            psum += pw
            self.e_online[p] += dt
            self.e_eff[p] += self.cur_eff[p] * dt
            self.e_kwhq[p] += pw / q * dt
            self.e_kwh[p] += pw * dt
            if pw > self.e_peak[p]:
                self.e_peak[p] = pw
            self.e_cost[p] += c * pw * dt
        if psum > self.e_max_total:
            self.e_max_total = psum

    # -- warnings (flags only; Python composes the messages) --------------------------------
    cdef int abnormal(self, int iterations, double relerr):
        cdef int i, k, p, s
        if iterations > self.g.max_iter:
            return 1
        if self.dda:
            for i in range(self.nj):
                if self.H[i] < self.elev[i] and self.full_demand[i] > 0.0:
                    return 1
        for k in range(self.nl):
            if self.ltype[k] > PUMP and self.status[k] >= XFCV:
                return 1
        for p in range(self.npump):
            k = self.p_link[p]
            s = self.status[k]
            if s == XHEAD:
                return 1
            if s >= OPEN and (self.Q[k] > self.setting[k] * self.p_qmax[p] or self.Q[k] < 0.0):
                return 1
        return 0

    cdef void record(self, long t):
        cdef int r = self.n_rec, i, k, p
        cdef double[:, ::1] H = self.rec_H, D = self.rec_D, Q = self.rec_Q, S = self.rec_set
        cdef double[:, ::1] KW = self.rec_kw, EF = self.rec_eff
        cdef int[:, ::1] ST = self.rec_S
        cdef long[::1] T = self.rec_t
        if r >= T.shape[0]:
            return
        T[r] = t
        for i in range(self.nn):
            H[r, i] = self.H[i]
            D[r, i] = self.node_demand[i]
        for k in range(self.nl):
            Q[r, k] = 0.0 if self.status[k] <= CLOSED else self.Q[k]
            ST[r, k] = self.status[k]
            S[r, k] = self.setting[k]
        for p in range(self.npump):
            KW[r, p] = self.cur_kw[p]
            EF[r, p] = self.cur_eff[p]
        self.n_rec = r + 1

    def run(self, rules_timestep, on_warning):
        """Run the whole period.  ``rules_timestep(t, tstep) -> tstep`` is None without rules;
        ``on_warning(t, iterations, relerr)`` is called for steps with an abnormal condition.
        Returns 0, or 110 when a step's equations cannot be solved (``g.bad_node`` names the node)."""
        cdef long t = 0, rtime = self.rstep, hstep
        cdef int err, it, i, nj = self.nj
        cdef double relerr
        import time as _time
        clock = _time.perf_counter
        self.solve_s = 0.0
        while True:
            self.t_now = t
            self.demands(t)
            self.controls(t)
            t0 = clock()
            err = self.g.solve()
            self.solve_s += clock() - t0
            if err:
                return err
            it = self.g.iterations
            relerr = self.g.relative_error
            for i in range(self.nn):
                self.node_demand[i] = self.node_out[i] if i >= nj else self.dflow[i] + self.eflow[i]
            reported = t >= self.rstart and (t - self.rstart) % self.rstep == 0
            self.steps.append((t, it, relerr, relerr <= self.hacc, reported))
            self.pump_energy()
            if reported:
                self.record(t)
            if self.abnormal(it, relerr):
                on_warning(t, it, relerr)
            if relerr > self.hacc and self.halt_on_unbalanced:
                self.halted_at = t
                t = self.dur
            if t < self.dur:
                hstep = self.timestep(t, rtime, rules_timestep)
            else:
                hstep = 0
            self.add_energy(t, hstep)
            if t < self.dur:
                t += hstep
                if t >= rtime:
                    rtime += self.rstep
            else:
                break
        return 0

    cdef long timestep(self, long t, long rtime, object rules_timestep):
        cdef long tstep = self.hstep, n, dt
        n = (t + self.pstart) // self.pstep + 1
        dt = n * self.pstep - t
        if 0 < dt < tstep:
            tstep = dt
        dt = rtime - t
        if 0 < dt < tstep:
            tstep = dt
        tstep = self.tank_timestep(tstep)
        tstep = self.control_timestep(t, tstep)
        if rules_timestep is not None:
            return rules_timestep(t, tstep)
        self.tank_levels(tstep)
        return tstep
