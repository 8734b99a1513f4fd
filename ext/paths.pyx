# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""Shortest-path trees, all-or-nothing loading and a path-based equilibrium on a forward-star graph.

Nodes ``0..n-1``, links ``0..m-1``; the out-links of node ``u`` are
``fs_link[fs_ptr[u]:fs_ptr[u+1]]``.  Dijkstra with a binary heap keyed on the
tentative distance (an indexed heap: each node at most once).  Nodes whose
``through`` flag is 0 (TNTP's zone nodes below FIRST THRU NODE) are reached but
never expanded, except the origin itself.  Links with an infinite cost are
closed.

:class:`PathBased` is the gradient-projection algorithm of Jayakrishnan et al. (1994): per origin
a shortest-path tree, each OD pair's new shortest path added to its path set, and flow moved from
every costlier path to the shortest by a Newton step (cost difference over the sum of link-cost
derivatives on the links the two paths do not share), the link costs updated at once.
"""

from libc.math cimport INFINITY
from libcpp.vector cimport vector
import numpy as np
cimport numpy as cnp

from bpr cimport bpr, bpr_prime

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


cdef class PathBased:
    """Path sets and flows of every OD pair; see the module docstring.

    The OD demand is given as for :meth:`Graph.all_or_nothing`.  ``v`` (link flows), ``cost`` (link
    costs, ``inf`` on closed links) are numpy arrays shared with the caller and kept current.
    """

    cdef Graph g
    cdef vector[vector[vector[int]]] paths
    cdef vector[vector[double]] pflow
    cdef const double[::1] t0, cap, alpha, beta, gc
    cdef const char[::1] closed
    cdef const int[::1] origins, od_ptr, od_dest
    cdef const double[::1] od_trips
    cdef double[::1] v, c, dc
    cdef int[::1] stamp, stamp2
    cdef int sid, sid2
    cdef public int inner
    cdef public object v_arr, cost_arr

    def __init__(self, Graph g, const double[::1] t0, const double[::1] cap, const double[::1] alpha,
                 const double[::1] beta, const double[::1] gc, const char[::1] closed, const int[::1] origins,
                 const int[::1] od_ptr, const int[::1] od_dest, const double[::1] od_trips):
        self.g = g
        self.t0, self.cap, self.alpha, self.beta, self.gc = t0, cap, alpha, beta, gc
        self.closed = closed
        self.origins, self.od_ptr, self.od_dest, self.od_trips = origins, od_ptr, od_dest, od_trips
        m = g.m
        self.v_arr = np.zeros(m)
        self.cost_arr = np.zeros(m)
        self.v = self.v_arr
        self.c = self.cost_arr
        self.dc = np.zeros(m)
        self.stamp = np.zeros(m, dtype=np.int32)
        self.stamp2 = np.zeros(m, dtype=np.int32)
        self.sid = 0
        self.sid2 = 0
        self.inner = 3  # extra equilibration passes over the known paths per shortest-path sweep
        self.paths.resize(od_trips.shape[0])
        self.pflow.resize(od_trips.shape[0])
        self.update_all_costs()

    cdef inline void update_cost(self, int k) noexcept nogil:
        if self.closed[k]:
            self.c[k] = INFINITY
            self.dc[k] = 0.0
        else:
            self.c[k] = bpr(self.t0[k], self.cap[k], self.alpha[k], self.beta[k], self.gc[k], self.v[k])
            self.dc[k] = bpr_prime(self.t0[k], self.cap[k], self.alpha[k], self.beta[k], self.v[k])

    cdef void update_all_costs(self) noexcept nogil:
        cdef int k
        for k in range(self.g.m):
            self.update_cost(k)

    cdef void shortest_path(self, int o, int d, vector[int]& sp) noexcept nogil:
        cdef int v = d, k
        sp.clear()
        while v != o:
            k = self.g.pred[v]
            sp.push_back(k)
            v = self.g.tail[k]

    def sweep(self, double target, char[::1] reached):
        """Measure, then improve: one gradient-projection iteration.

        First every origin's shortest-path tree at the current costs gives each OD pair's shortest path and
        SPTT, hence the relative gap of the current flows (``reached[j]`` is cleared for pairs without a
        path).  Unless that gap is at most ``target`` (or nothing is loaded yet: then all-or-nothing), flow is
        then moved, OD pair by OD pair, from costlier paths to that shortest path, costs updated as it goes,
        and ``inner`` more passes move flow to each pair's currently cheapest known path (no Dijkstra: path
        costs only; 3 passes cut the sweeps to 1e-8 by 3-5x on the TNTP test networks).
        Returns (TSTT, SPTT) of the flows as they were measured.
        """
        cdef int i, j, o, p, s, ntarget, k, n_paths, it, nod = self.od_trips.shape[0]
        cdef double tstt = 0.0, sptt = 0.0
        cdef vector[vector[int]] newsp
        marks = np.zeros(self.g.n, dtype=np.int8)
        cdef char[::1] mk = marks
        newsp.resize(nod)
        with nogil:
            for k in range(self.g.m):
                if self.v[k] != 0.0:
                    tstt += self.v[k] * self.c[k]
            for i in range(self.origins.shape[0]):
                o = self.origins[i]
                ntarget = 0
                for j in range(self.od_ptr[i], self.od_ptr[i + 1]):
                    if self.od_trips[j] > 0.0 and reached[j] and not mk[self.od_dest[j]]:
                        mk[self.od_dest[j]] = 1
                        ntarget += 1
                if ntarget == 0:
                    continue
                self.g.dijkstra(o, self.c, &mk[0], ntarget)
                for j in range(self.od_ptr[i], self.od_ptr[i + 1]):
                    mk[self.od_dest[j]] = 0
                    if self.od_trips[j] <= 0.0 or not reached[j]:
                        continue
                    if self.g.dist[self.od_dest[j]] == INFINITY:
                        reached[j] = 0
                        continue
                    sptt += self.od_trips[j] * self.g.dist[self.od_dest[j]]
                    self.shortest_path(o, self.od_dest[j], newsp[j])
        if tstt > 0.0 and (tstt - sptt) / tstt <= target:
            return tstt, sptt
        with nogil:
            for j in range(nod):
                if newsp[j].size() == 0:
                    continue
                s = -1
                n_paths = self.paths[j].size()
                for p in range(n_paths):
                    if self.paths[j][p] == newsp[j]:
                        s = p
                        break
                if s < 0:
                    self.paths[j].push_back(newsp[j])
                    self.pflow[j].push_back(0.0)
                    s = n_paths
                    n_paths += 1
                if n_paths == 1:  # first loading: all the demand on the one path
                    if self.pflow[j][0] == 0.0:
                        self.pflow[j][0] = self.od_trips[j]
                        for k in self.paths[j][0]:
                            self.v[k] += self.od_trips[j]
                            self.update_cost(k)
                    continue
                self.equilibrate(j, s)
            for it in range(self.inner):  # more shifts on the known paths, each to the currently cheapest
                for j in range(nod):
                    if self.paths[j].size() > 1:
                        self.equilibrate(j, self.cheapest(j))
            self.resync()
        return tstt, sptt

    cdef void equilibrate(self, int j, int s) noexcept nogil:
        """Move flow of OD ``j`` from every costlier path to path ``s`` (Newton steps); drop emptied paths."""
        cdef int p, k, n_paths = self.paths[j].size()
        cdef double cs, cp, den, dq
        self.sid += 1
        for k in self.paths[j][s]:
            self.stamp[k] = self.sid
        for p in range(n_paths):
            if p == s or self.pflow[j][p] <= 0.0:
                continue
            cs = 0.0
            for k in self.paths[j][s]:
                cs += self.c[k]
            cp = 0.0
            self.sid2 += 1
            den = 0.0
            for k in self.paths[j][p]:
                cp += self.c[k]
                self.stamp2[k] = self.sid2
                if self.stamp[k] != self.sid:
                    den += self.dc[k]
            if cp <= cs:
                continue
            for k in self.paths[j][s]:
                if self.stamp2[k] != self.sid2:
                    den += self.dc[k]
            dq = self.pflow[j][p]
            if den > 0.0 and (cp - cs) / den < dq:
                dq = (cp - cs) / den
            self.pflow[j][p] -= dq
            self.pflow[j][s] += dq
            for k in self.paths[j][p]:
                self.v[k] -= dq
                self.update_cost(k)
            for k in self.paths[j][s]:
                self.v[k] += dq
                self.update_cost(k)
        # drop the paths left without flow (never the shortest)
        p = 0
        while p < <int> self.paths[j].size():
            if p != s and self.pflow[j][p] <= 0.0:
                self.paths[j].erase(self.paths[j].begin() + p)
                self.pflow[j].erase(self.pflow[j].begin() + p)
                if p < s:
                    s -= 1
            else:
                p += 1

    cdef int cheapest(self, int j) noexcept nogil:
        cdef int p, k, best = 0
        cdef double c, cbest = INFINITY
        for p in range(<int> self.paths[j].size()):
            c = 0.0
            for k in self.paths[j][p]:
                c += self.c[k]
            if c < cbest:
                cbest = c
                best = p
        return best

    cdef void resync(self) noexcept nogil:
        """Recompute link flows exactly from the path flows (no drift from the incremental shifts)."""
        cdef int j, p, k
        cdef double f
        for k in range(self.g.m):
            self.v[k] = 0.0
        for j in range(<int> self.paths.size()):
            for p in range(<int> self.paths[j].size()):
                f = self.pflow[j][p]
                for k in self.paths[j][p]:
                    self.v[k] += f
        self.update_all_costs()

    def path_count(self):
        """Total number of paths with flow."""
        cdef long n = 0
        cdef int j
        for j in range(<int> self.paths.size()):
            n += self.paths[j].size()
        return n

    def od_paths(self, int j):
        """The paths of OD entry ``j``: list of (link index array, flow)."""
        return [(np.array(self.paths[j][p], dtype=np.int32), self.pflow[j][p]) for p in range(self.paths[j].size())]
