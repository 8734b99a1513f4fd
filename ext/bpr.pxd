# BPR link performance, shared (inline) by the assignment kernels.
from libc.math cimport pow


cdef inline double bpr(double t0, double cap, double alpha, double beta, double g, double v) noexcept nogil:
    """c(v) = t0 (1 + alpha (v/cap)^beta) + g; beta = 0: constant t0 (1 + alpha) + g."""
    if beta == 0.0:
        return t0 * (1.0 + alpha) + g
    if v <= 0.0:
        return t0 + g
    return t0 * (1.0 + alpha * pow(v / cap, beta)) + g


cdef inline double bpr_prime(double t0, double cap, double alpha, double beta, double v) noexcept nogil:
    """dc/dv (0 for constant-cost links and at zero flow when beta > 1)."""
    if beta == 0.0 or v <= 0.0:
        if beta == 1.0:
            return t0 * alpha / cap
        return 0.0
    return t0 * alpha * beta * pow(v / cap, beta - 1.0) / cap
