"""N-1 contingency screening: every branch outage, post-contingency DC flows by LODF.

The screening uses the DC model (base flows of :func:`power_flow` with
``method="dc"`` and :class:`~twin.energy.sensitivity.DCSensitivity`), in chunks
so memory stays at O(n_branch × chunk).  Outages that split an island are
reported as islanding (with the number of buses cut off) instead of being
given flows.  With ``ac_check=True`` each outage flagged by the screening is
re-solved with the full AC power flow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .compile import compile_grid
from .grid import Grid
from .powerflow import PowerFlowWarning, power_flow
from .sensitivity import DCSensitivity

__all__ = ["contingency_analysis", "ContingencyResult"]


@dataclass
class ContingencyResult:
    """Result of N-1 screening.

    * ``outage``: index = outaged branch id; ``islanding`` (bool), ``buses_cut_off`` (buses split
      from their reference), ``max_loading_percent`` (DC, over rated branches), ``worst_branch``,
      ``n_overloads``; with ``ac_check`` also ``ac_converged``, ``ac_max_loading_percent``,
      ``ac_n_overloads``, ``ac_vm_min_pu``.
    * ``overload``: one row per (outage, overloaded branch): ``p_mw`` post-contingency DC flow,
      ``rating_mva``, ``loading_percent``, ``base_p_mw`` (and ``ac_loading_percent`` when checked).
    * ``base``: the base-case DC branch flows (MW) and loading.
    * ``flows``: branch × outage post-contingency DC flows (MW), only when ``return_flows=True``.
    """

    outage: pd.DataFrame
    overload: pd.DataFrame
    base: pd.DataFrame
    threshold_percent: float
    flows: pd.DataFrame | None = None
    messages: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-serialisable key figures."""
        o = self.outage
        return {
            "n_outages": int(len(o)),
            "n_islanding": int(o["islanding"].sum()),
            "n_outages_with_overloads": int((o["n_overloads"] > 0).sum()),
            "worst_outage": None if o["max_loading_percent"].isna().all()
            else str(o["max_loading_percent"].idxmax()),
            "worst_loading_percent": None if o["max_loading_percent"].isna().all()
            else float(o["max_loading_percent"].max()),
            "threshold_percent": self.threshold_percent,
        }


def contingency_analysis(
    grid: Grid,
    outages: list[str] | None = None,
    *,
    threshold_percent: float = 100.0,
    ac_check: bool = False,
    return_flows: bool = False,
    chunk: int = 256,
) -> ContingencyResult:
    """Screen single-branch outages (N-1) of ``grid`` with LODFs.

    ``outages``: branch ids (lines or transformers) to take out one at a time;
    all in-service branches by default.  A branch is overloaded when its
    post-contingency |P| exceeds ``threshold_percent`` of ``rate_a_mva``
    (unrated branches are never overloaded).  ``ac_check`` re-solves the AC
    power flow for each outage with an overload and records the AC loading.
    """
    if not threshold_percent > 0:
        raise ValueError("threshold_percent must be positive")
    cg = compile_grid(grid)
    pos = pd.Series(np.arange(len(cg.branch_ids)), index=cg.branch_ids)
    if outages is None:
        k_all = np.flatnonzero(cg.branch_on)
    else:
        missing = [o for o in outages if o not in pos.index]
        if missing:
            raise KeyError(f"contingency_analysis: unknown branch id {missing[0]!r}")
        k_all = pos[list(outages)].to_numpy()
        off = ~cg.branch_on[k_all]
        if off.any():
            raise ValueError(f"contingency_analysis: branch {cg.branch_ids[k_all[off][0]]!r} is already out of service")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PowerFlowWarning)
        base_pf = power_flow(grid, "dc")
    f0 = base_pf.branch["p0_mw"].to_numpy()
    rate = cg.rate_a
    sens = DCSensitivity(cg)
    limit = rate * threshold_percent / 100.0

    rows, over_rows, flow_cols = [], [], []
    for start in range(0, len(k_all), chunk):
        k = k_all[start:start + chunk]
        lodf, islanding = sens.lodf_columns(k)
        post = f0[:, None] + lodf * f0[k][None, :]
        post[k, np.arange(len(k))] = 0.0
        with np.errstate(invalid="ignore"):
            loading = np.abs(post) / rate[:, None] * 100.0
            over = np.abs(post) > limit[:, None] * (1 + 1e-9)  # ignore round-off at exactly the limit
        for j, kk in enumerate(k):
            if islanding[j]:
                rows.append((cg.branch_ids[kk], True, _cut_off(cg, kk), np.nan, None, 0))
                continue
            col = loading[:, j]
            has = np.isfinite(col)
            worst = int(np.nanargmax(col)) if has.any() else -1
            o = np.flatnonzero(over[:, j])
            rows.append((cg.branch_ids[kk], False, 0, col[worst] if worst >= 0 else np.nan,
                         cg.branch_ids[worst] if worst >= 0 else None, len(o)))
            for b in o:
                over_rows.append((cg.branch_ids[kk], cg.branch_ids[b], post[b, j], rate[b], col[b], f0[b]))
        if return_flows:
            flow_cols.append(np.where(islanding[None, :], np.nan, post))
    outage = pd.DataFrame(rows, columns=["outage", "islanding", "buses_cut_off", "max_loading_percent",
                                         "worst_branch", "n_overloads"]).set_index("outage")
    overload = pd.DataFrame(over_rows, columns=["outage", "branch", "p_mw", "rating_mva", "loading_percent",
                                                "base_p_mw"])
    base = pd.DataFrame({"p_mw": f0, "rating_mva": rate, "loading_percent": np.abs(f0) / rate * 100},
                        index=cg.branch_ids)
    flows = None
    if return_flows:
        data = np.hstack(flow_cols) if flow_cols else np.zeros((len(cg.branch_ids), 0))
        flows = pd.DataFrame(data, index=cg.branch_ids, columns=cg.branch_ids[k_all])
    res = ContingencyResult(outage, overload, base, float(threshold_percent), flows)
    if ac_check:
        _ac_check(grid, res, threshold_percent)
    return res


def _cut_off(cg, k: int) -> int:
    """Number of energised buses that lose their reference bus when branch k goes out."""
    on = cg.branch_on.copy()
    on[k] = False
    n = cg.nb
    adj = sp.coo_matrix((np.ones(on.sum()), (cg.f[on], cg.t[on])), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    with_ref = np.unique(lab[cg.ref])
    return int((cg.energised & ~np.isin(lab, with_ref)).sum())


def _ac_check(grid: Grid, res: ContingencyResult, threshold: float) -> None:
    o = res.outage
    for col, val in (("ac_converged", None), ("ac_max_loading_percent", np.nan), ("ac_n_overloads", -1),
                     ("ac_vm_min_pu", np.nan)):
        o[col] = pd.Series([val] * len(o), index=o.index, dtype=object if val is None else float)
    res.overload["ac_loading_percent"] = np.nan
    flagged = o.index[(o["n_overloads"] > 0) & ~o["islanding"]]
    for bid in flagged:
        g = grid.copy()
        table = "line" if bid in g.line.index else "transformer"
        g[table].loc[bid, "in_service"] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PowerFlowWarning)
            pf = power_flow(g, "ac", init="dc")
        lp = pf.branch["loading_percent"]
        o.loc[bid, "ac_converged"] = pf.converged
        if pf.converged:
            o.loc[bid, "ac_max_loading_percent"] = lp.max()
            o.loc[bid, "ac_n_overloads"] = int((lp > threshold).sum())
            o.loc[bid, "ac_vm_min_pu"] = pf.bus["vm_pu"].min()
            m = res.overload["outage"] == bid
            res.overload.loc[m, "ac_loading_percent"] = lp.loc[res.overload.loc[m, "branch"]].to_numpy()
        else:
            res.messages.append(f"outage of {bid}: AC power flow did not converge "
                                f"(mismatch {pf.max_mismatch_mva:.3g} MVA at bus {pf.worst_bus})")
