"""DC sensitivities: PTDF and LODF (MATPOWER's makePTDF / makeLODF semantics).

The DC model: branch flow ``f = Bf θ + Pfinj`` (p.u.), ``Bbus θ = P - Pbusinj - Gs``.
PTDF maps bus injections (MW) to branch flows (MW) with the reference bus(es)
of each island as slack (their columns are zero); out-of-service branches have
zero rows.  LODF[l, k] is the change of flow on branch l per MW that flowed on
branch k before k went out (diagonal -1); an outage that splits an island has
no LODF (NaN column, reported as islanding).

For large grids use :class:`DCSensitivity`, which keeps one sparse LU of the
reduced Bbus and returns only the rows or columns asked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse.linalg import splu

from .compile import CompiledGrid, compile_grid
from .grid import Grid
from .powerflow import dc_matrices

__all__ = ["DCSensitivity", "ptdf", "lodf", "DENSE_LIMIT"]

#: largest number of matrix entries ``ptdf``/``lodf`` return densely (≈ 400 MB of float64)
DENSE_LIMIT = 50_000_000
ISLANDING_TOL = 1e-8


class DCSensitivity:
    """Factorised DC sensitivities of a grid (one sparse LU of the reduced Bbus).

    ``branch_ids``/``bus_ids`` give the row/column order of every array returned.
    """

    def __init__(self, grid: Grid | CompiledGrid):
        cg = grid if isinstance(grid, CompiledGrid) else compile_grid(grid)
        self.compiled = cg
        bbus, bf, pbusinj, pfinj = dc_matrices(cg)
        self.bf = bf.tocsc()
        self.pbusinj, self.pfinj = pbusinj, pfinj
        self.bus_ids, self.branch_ids = cg.bus_ids, cg.branch_ids
        self.free = np.flatnonzero((cg.bus_type == 1) | (cg.bus_type == 2))  # non-slack energised buses
        self._pos = np.full(cg.nb, -1, np.int64)
        self._pos[self.free] = np.arange(len(self.free))
        self._lu = splu(bbus[self.free][:, self.free].tocsc()) if len(self.free) else None
        self._bf_free = self.bf[:, self.free].tocsr()
        self._bf_free_t = self._bf_free.T.tocsc()
        self.on = cg.branch_on

    # -- PTDF -----------------------------------------------------------------
    def ptdf_rows(self, branches: np.ndarray | None = None) -> np.ndarray:
        """PTDF rows (len(branches) × n_bus; MW/MW) for branch positions ``branches`` (all when None)."""
        nb = len(self.bus_ids)
        rows = np.arange(len(self.branch_ids)) if branches is None else np.asarray(branches, np.int64)
        out = np.zeros((len(rows), nb))
        if self._lu is None or len(rows) == 0:
            return out
        rhs = self._bf_free_t[:, rows].toarray()  # Bred^T x = Bf_row^T  (Bred symmetric)
        out[:, self.free] = self._lu.solve(rhs, trans="T").T
        return out

    def flows_mw(self, p_inj_mw: np.ndarray) -> np.ndarray:
        """DC branch flows (MW) for net bus injections ``p_inj_mw`` (MW, bus order), phase shifts included."""
        base = self.compiled.base_mva
        p = np.asarray(p_inj_mw, float) / base - self.pbusinj
        theta = np.zeros(len(self.bus_ids))
        if self._lu is not None:
            theta[self.free] = self._lu.solve(p[self.free])
        return np.where(self.on, self.bf @ theta + self.pfinj, 0.0) * base

    # -- LODF -----------------------------------------------------------------
    def outage_sensitivity(self, outages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For outaged branch positions ``outages``: PTDF·(e_from - e_to) columns (n_branch × k) and islanding flags.

        Column j is the flow change on every branch per unit transfer between
        the two ends of branch ``outages[j]``; the outage islands the grid when
        that transfer flows entirely over the branch itself.
        """
        cg = self.compiled
        k = np.asarray(outages, np.int64)
        nl = len(self.branch_ids)
        if self._lu is None or len(k) == 0:
            return np.zeros((nl, len(k))), np.ones(len(k), bool)
        rhs = np.zeros((len(self.free), len(k)))
        fpos, tpos = self._pos[cg.f[k]], self._pos[cg.t[k]]
        cols = np.arange(len(k))
        m = fpos >= 0
        rhs[fpos[m], cols[m]] += 1.0
        m = tpos >= 0
        rhs[tpos[m], cols[m]] -= 1.0
        theta = self._lu.solve(rhs)
        h = self._bf_free @ theta  # n_branch × k
        h[~self.on] = 0.0
        self_h = h[k, cols]
        islanding = np.abs(1.0 - self_h) < ISLANDING_TOL
        return h, islanding

    def lodf_columns(self, outages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LODF columns (n_branch × k, MW/MW) for outaged branch positions, and islanding flags (NaN columns)."""
        k = np.asarray(outages, np.int64)
        h, islanding = self.outage_sensitivity(k)
        denom = 1.0 - h[k, np.arange(len(k))]
        with np.errstate(divide="ignore", invalid="ignore"):
            lodf = h / denom
        lodf[:, islanding] = np.nan
        lodf[k, np.arange(len(k))] = -1.0
        lodf[:, islanding] = np.nan
        off = ~self.on[k]
        lodf[:, off] = 0.0  # already out: no change
        return lodf, islanding


def _dense_ok(n: int, m: int, what: str) -> None:
    if n * m > DENSE_LIMIT:
        raise MemoryError(f"{what} would have {n}×{m} entries (> {DENSE_LIMIT:,}); use DCSensitivity "
                          "(ptdf_rows / lodf_columns) for the rows or columns you need")


def ptdf(grid: Grid) -> pd.DataFrame:
    """Dense PTDF (branches × buses, MW of flow per MW injected, slack at each island's reference)."""
    s = DCSensitivity(grid)
    _dense_ok(len(s.branch_ids), len(s.bus_ids), "PTDF")
    return pd.DataFrame(s.ptdf_rows(), index=s.branch_ids, columns=s.bus_ids)


def lodf(grid: Grid) -> pd.DataFrame:
    """Dense LODF (monitored branch × outaged branch); islanding outages give NaN columns."""
    s = DCSensitivity(grid)
    nl = len(s.branch_ids)
    _dense_ok(nl, nl, "LODF")
    out, _ = s.lodf_columns(np.arange(nl))
    return pd.DataFrame(out, index=s.branch_ids, columns=s.branch_ids)


