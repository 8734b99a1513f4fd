# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Shortest-path trees and all-or-nothing loading on a forward-star (CSR) graph.

Nodes ``0..n-1``, links ``0..m-1``; the out-links of node ``u`` are
``fs_link[fs_ptr[u]:fs_ptr[u+1]]``.  Dijkstra with a binary heap keyed on the
tentative distance (an indexed heap: each node at most once).  Nodes whose
``through`` flag is 0 (TNTP's zone nodes below FIRST THRU NODE) are reached but
never expanded, except the origin itself.  Links with an infinite cost are
closed.
"""

from libc.math cimport INFINITY
import numpy as np
cimport numpy as cnp

cnp.import_array()


cdef class Graph:
    """A directed graph in forward-star form, with the work arrays of one Dijkstra."""

    cdef public int n, m
    cdef int[::1] fs_ptr, fs_link, head, tail
    cdef char[::1] through
    # work
    cdef double[::1] dist
    cdef int[::1] pred, heap, pos, order
    cdef int nsettled
    cdef double[::1] load

    def __init__(self, int n, int[::1] tail, int[::1] head, char[::1] through):
        cdef int k, u
        self.n = n
        self.m = tail.shape[0]
        self.tail = tail
        self.head = head
        self.through = through
        counts = np.bincount(np.asarray(tail), minlength=n).astype(np.int32)
        ptr = np.zeros(n + 1, dtype=np.int32)
        ptr[1:] = np.cumsum(counts)
        self.fs_ptr = ptr
        self.fs_link = np.argsort(np.asarray(tail), kind="stable").astype(np.int32)
        self.dist = np.empty(n)
        self.pred = np.empty(n, dtype=np.int32)
        self.heap = np.empty(max(n, 1), dtype=np.int32)
        self.pos = np.full(n, -1, dtype=np.int32)
        self.order = np.empty(max(n, 1), dtype=np.int32)
        self.load = np.zeros(n)

    # -- heap ------------------------------------------------------------------------
    cdef inline void sift_up(self, int i) noexcept nogil:
        cdef int v = self.heap[i], p
        cdef double d = self.dist[v]
        while i > 0:
            p = (i - 1) >> 1
            if self.dist[self.heap[p]] <= d:
                break
            self.heap[i] = self.heap[p]
            self.pos[self.heap[i]] = i
            i = p
        self.heap[i] = v
        self.pos[v] = i

    cdef inline void sift_down(self, int i, int size) noexcept nogil:
        cdef int v = self.heap[i], c
        cdef double d = self.dist[v]
        while True:
            c = 2 * i + 1
            if c >= size:
                break
            if c + 1 < size and self.dist[self.heap[c + 1]] < self.dist[self.heap[c]]:
                c += 1
            if self.dist[self.heap[c]] >= d:
                break
            self.heap[i] = self.heap[c]
            self.pos[self.heap[i]] = i
            i = c
        self.heap[i] = v
        self.pos[v] = i

    cdef void dijkstra(self, int s, const double[::1] cost, char* target, int ntarget) noexcept nogil:
        """Shortest-path tree from ``s``; stops once the ``ntarget`` nodes flagged in ``target`` are settled
        (``target`` NULL: the whole tree).  Fills dist, pred (link index, -1 at the root / unreached) and
        the settle order."""
        cdef int i, size = 0, u, v, k, p
        cdef double du, nd, c
        for i in range(self.n):
            self.dist[i] = INFINITY
            self.pred[i] = -1
            self.pos[i] = -1
        self.nsettled = 0
        self.dist[s] = 0.0
        self.heap[0] = s
        self.pos[s] = 0
        size = 1
        while size > 0:
            u = self.heap[0]
            size -= 1
            if size > 0:
                self.heap[0] = self.heap[size]
                self.pos[self.heap[0]] = 0
                self.sift_down(0, size)
            self.pos[u] = -2  # settled
            self.order[self.nsettled] = u
            self.nsettled += 1
            if target != NULL and target[u]:
                ntarget -= 1
                if ntarget == 0:
                    break
            if u != s and not self.through[u]:
                continue
            du = self.dist[u]
            for p in range(self.fs_ptr[u], self.fs_ptr[u + 1]):
                k = self.fs_link[p]
                c = cost[k]
                if c == INFINITY:
                    continue
                v = self.head[k]
                if self.pos[v] == -2:
                    continue
                nd = du + c
                if nd < self.dist[v]:
                    self.dist[v] = nd
                    self.pred[v] = k
                    if self.pos[v] == -1:
                        self.heap[size] = v
                        self.pos[v] = size
                        size += 1
                    self.sift_up(self.pos[v])

    def tree(self, int origin, const double[::1] cost):
        """(dist, pred) of the full shortest-path tree from node ``origin`` (copies)."""
        self.dijkstra(origin, cost, NULL, 0)
        return np.asarray(self.dist).copy(), np.asarray(self.pred).copy()

    def all_or_nothing(self, const double[::1] cost, const int[::1] origins, const int[::1] od_ptr,
                       const int[::1] od_dest, const double[::1] od_trips, double[::1] flow, char[::1] reached):
        """Load every origin's demand on its shortest paths (flow is overwritten).

        Demand of origin ``origins[i]`` is ``od_trips[od_ptr[i]:od_ptr[i+1]]`` to nodes ``od_dest[...]``.
        ``reached[j]`` is set to 0 for demand entries with no path.  Returns SPTT = Σ trips × path cost.
        """
        cdef int i, j, o, k, v, t, ntarget
        cdef double sptt = 0.0, q
        marks = np.zeros(self.n, dtype=np.int8)
        cdef char[::1] mk = marks
        for k in range(self.m):
            flow[k] = 0.0
        with nogil:
            for i in range(origins.shape[0]):
                o = origins[i]
                ntarget = 0
                for j in range(od_ptr[i], od_ptr[i + 1]):
                    if not mk[od_dest[j]]:
                        mk[od_dest[j]] = 1
                        ntarget += 1
                if ntarget == 0:
                    continue
                self.dijkstra(o, cost, &mk[0], ntarget)
                for j in range(od_ptr[i], od_ptr[i + 1]):
                    v = od_dest[j]
                    mk[v] = 0
                    q = od_trips[j]
                    if self.dist[v] == INFINITY:
                        reached[j] = 0
                        continue
                    reached[j] = 1
                    sptt += q * self.dist[v]
                    self.load[v] += q
                # push the loads down the tree, leaves first
                for t in range(self.nsettled - 1, 0, -1):
                    v = self.order[t]
                    q = self.load[v]
                    if q != 0.0:
                        self.load[v] = 0.0
                        k = self.pred[v]
                        flow[k] += q
                        self.load[self.tail[k]] += q
                self.load[o] = 0.0
        return sptt

    def skim(self, const double[::1] cost, const int[::1] origins, const int[::1] dests,
             const double[:, ::1] attrs):
        """Sums of link attributes (rows of ``attrs``) along the shortest paths by ``cost``.

        Returns an array (n_attr, n_origins, n_dests); NaN where no path exists."""
        cdef int na = attrs.shape[0], i, j, a, v, k, t
        out = np.full((na, origins.shape[0], dests.shape[0]), np.nan)
        cdef double[:, :, ::1] res = out
        acc = np.zeros((na, self.n))
        cdef double[:, ::1] acc_v = acc
        with nogil:
            for i in range(origins.shape[0]):
                self.dijkstra(origins[i], cost, NULL, 0)
                for a in range(na):
                    acc_v[a, origins[i]] = 0.0
                for t in range(1, self.nsettled):  # parents are settled before children
                    v = self.order[t]
                    k = self.pred[v]
                    for a in range(na):
                        acc_v[a, v] = acc_v[a, self.tail[k]] + attrs[a, k]
                for j in range(dests.shape[0]):
                    v = dests[j]
                    if self.dist[v] != INFINITY:
                        for a in range(na):
                            res[a, i, j] = acc_v[a, v]
        return out
