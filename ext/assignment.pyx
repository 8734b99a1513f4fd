# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Link performance (BPR) and the exact line search of Frank-Wolfe methods, on flat arrays.

Link cost ``c(v) = t0 · (1 + alpha · (v / cap) ** beta) + g`` where ``g`` is a constant generalised
cost term (toll and distance weights).  ``beta = 0`` gives a constant cost ``t0 · (1 + alpha) + g``.
"""

from libc.math cimport pow

from bpr cimport bpr, bpr_prime


def costs(const double[::1] t0, const double[::1] cap, const double[::1] alpha, const double[::1] beta,
          const double[::1] g, const double[::1] v, double[::1] out):
    """out[k] = c_k(v_k)."""
    cdef int k
    with nogil:
        for k in range(v.shape[0]):
            out[k] = bpr(t0[k], cap[k], alpha[k], beta[k], g[k], v[k])


def derivatives(const double[::1] t0, const double[::1] cap, const double[::1] alpha, const double[::1] beta,
                const double[::1] v, double[::1] out):
    """out[k] = dc_k/dv at v_k (0 for constant-cost links)."""
    cdef int k
    with nogil:
        for k in range(v.shape[0]):
            out[k] = bpr_prime(t0[k], cap[k], alpha[k], beta[k], v[k])


def beckmann(const double[::1] t0, const double[::1] cap, const double[::1] alpha, const double[::1] beta,
             const double[::1] g, const double[::1] v):
    """Σ_k ∫_0^{v_k} c_k(x) dx (the user-equilibrium objective)."""
    cdef int k
    cdef double s = 0.0, x
    with nogil:
        for k in range(v.shape[0]):
            x = v[k]
            if beta[k] == 0.0:
                s += (t0[k] * (1.0 + alpha[k]) + g[k]) * x
            elif x > 0.0:
                s += t0[k] * x * (1.0 + alpha[k] / (beta[k] + 1.0) * pow(x / cap[k], beta[k])) + g[k] * x
    return s


cdef double slope(const double[::1] t0, const double[::1] cap, const double[::1] alpha, const double[::1] beta,
                  const double[::1] g, const double[::1] v, const double[::1] d, double lam,
                  double* curvature) noexcept nogil:
    """Σ c(v + λd)·d and its derivative Σ c'(v + λd)·d²."""
    cdef int k
    cdef double s = 0.0, h = 0.0, x
    for k in range(v.shape[0]):
        if d[k] == 0.0:
            continue
        x = v[k] + lam * d[k]
        s += bpr(t0[k], cap[k], alpha[k], beta[k], g[k], x) * d[k]
        h += bpr_prime(t0[k], cap[k], alpha[k], beta[k], x) * d[k] * d[k]
    curvature[0] = h
    return s


def line_search(const double[::1] t0, const double[::1] cap, const double[::1] alpha, const double[::1] beta,
                const double[::1] g, const double[::1] v, const double[::1] d, double tol=1e-15):
    """The step λ in [0, 1] minimising the Beckmann objective along ``v + λd`` (safeguarded Newton on its
    derivative, which is monotone); returns (λ, slope at λ)."""
    cdef double lo = 0.0, hi = 1.0, lam = 0.0, s = 0.0, h, s_lo, s_hi, step
    cdef int it
    with nogil:
        s_lo = slope(t0, cap, alpha, beta, g, v, d, 0.0, &h)
        s_hi = slope(t0, cap, alpha, beta, g, v, d, 1.0, &h) if s_lo < 0.0 else 0.0
        if s_lo >= 0.0:
            lam, s = 0.0, s_lo
        elif s_hi <= 0.0:
            lam, s = 1.0, s_hi
        else:
            lam = s_lo / (s_lo - s_hi)  # secant start
            for it in range(100):
                s = slope(t0, cap, alpha, beta, g, v, d, lam, &h)
                if s == 0.0:
                    break
                if s < 0.0:
                    lo = lam
                else:
                    hi = lam
                if hi - lo <= tol:
                    break
                if h > 0.0:
                    step = lam - s / h
                else:
                    step = -1.0
                if step <= lo or step >= hi:
                    step = 0.5 * (lo + hi)
                lam = step
    return lam, s
