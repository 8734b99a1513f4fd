"""Import a PyPSA network (PyPSA is an optional dependency: it is imported by the caller, not here).

What is converted: buses, lines, transformers, generators (``p_nom``, ``p_min_pu``/``p_max_pu`` static or
per snapshot, ``marginal_cost`` static or per snapshot, ``marginal_cost_quadratic``, ``committable``,
ramp limits per unit of ``p_nom``), loads (``p_set`` static or per snapshot), storage units (power,
``max_hours``, efficiencies, standing loss, initial state of charge) and the snapshots.  Line impedances
in ohm and siemens become per-unit on ``base_mva`` with the ``v_nom`` of the line's first bus;
transformer impedances per unit of their ``s_nom`` are rescaled to ``base_mva``.  Each connected part of
the network gets a reference bus (the one with the most generation capacity), generator buses are PV.
Not converted (an error names them when present): links, stores, shunt impedances with non-zero values
at snapshot level, and snapshot weightings other than the spacing of the snapshots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .grid import Grid

__all__ = ["from_pypsa"]


def _static(df: pd.DataFrame, col: str, default: float) -> pd.Series:
    return df[col].astype(float) if col in df.columns else pd.Series(default, index=df.index, dtype=float)


def _varying(n: Any, component: str, attr: str) -> pd.DataFrame | None:
    t = getattr(n, f"{component}_t", None)
    if t is None:
        return None
    df = t.get(attr) if hasattr(t, "get") else getattr(t, attr, None)
    if df is None or not len(df.columns):
        return None
    return df


def from_pypsa(n: Any, base_mva: float = 100.0) -> Grid:
    """A :class:`Grid` (with snapshots and series) equivalent to PyPSA network ``n`` for a DC dispatch."""
    for comp in ("links", "stores"):
        df = getattr(n, comp, None)
        if df is not None and len(df):
            raise ValueError(f"from_pypsa: the network has {len(df)} {comp}, which are not converted")
    g = Grid(base_mva, name=getattr(n, "name", "") or "pypsa")
    buses = n.buses
    g.add("bus", pd.DataFrame({"vn_kv": buses["v_nom"].astype(float),
                               "lon": _static(buses, "x", np.nan), "lat": _static(buses, "y", np.nan)},
                              index=buses.index.astype(str)))
    vn = buses["v_nom"].astype(float)
    lines = n.lines
    if len(lines):
        v2 = vn.reindex(lines["bus0"]).to_numpy() ** 2
        g.add("line", pd.DataFrame({
            "bus0": lines["bus0"].astype(str).to_numpy(), "bus1": lines["bus1"].astype(str).to_numpy(),
            "r_pu": lines["r"].to_numpy(float) * base_mva / v2, "x_pu": lines["x"].to_numpy(float) * base_mva / v2,
            "b_pu": _static(lines, "b", 0.0).to_numpy() * v2 / base_mva,
            "rate_a_mva": (lines["s_nom"] * _static(lines, "s_max_pu", 1.0)).to_numpy(float),
        }, index=lines.index.astype(str)))
    tr = n.transformers
    if len(tr):
        s_nom = tr["s_nom"].to_numpy(float)
        g.add("transformer", pd.DataFrame({
            "bus0": tr["bus0"].astype(str).to_numpy(), "bus1": tr["bus1"].astype(str).to_numpy(),
            "r_pu": _static(tr, "r", 0.0).to_numpy() * base_mva / s_nom,
            "x_pu": tr["x"].to_numpy(float) * base_mva / s_nom,
            "rate_a_mva": s_nom * _static(tr, "s_max_pu", 1.0).to_numpy(),
            "tap_ratio": _static(tr, "tap_ratio", 1.0).to_numpy(),
            "shift_deg": _static(tr, "phase_shift", 0.0).to_numpy(),
        }, index=tr.index.astype(str)))
    gens = n.generators
    p_nom = gens["p_nom"].astype(float)
    g.add("generator", pd.DataFrame({
        "bus": gens["bus"].astype(str), "p_max_mw": p_nom, "p_min_mw": p_nom * _static(gens, "p_min_pu", 0.0),
        "committable": _static(gens, "committable", 0.0).astype(bool),
        "min_up_h": _static(gens, "min_up_time", 0.0), "min_down_h": _static(gens, "min_down_time", 0.0),
        "ramp_up_mw_h": (p_nom * _static(gens, "ramp_limit_up", np.nan)).fillna(np.inf),
        "ramp_down_mw_h": (p_nom * _static(gens, "ramp_limit_down", np.nan)).fillna(np.inf),
        "kind": gens["carrier"].astype(str) if "carrier" in gens.columns else "",
    }, index=gens.index.astype(str)))
    quad = _static(gens, "marginal_cost_quadratic", 0.0)
    g.add("generator_cost", pd.DataFrame({
        "model": 2, "startup": _static(gens, "start_up_cost", 0.0), "shutdown": _static(gens, "shut_down_cost", 0.0),
        "coefficients": [(float(q), float(c), 0.0) for q, c in zip(quad, _static(gens, "marginal_cost", 0.0))],
    }, index=gens.index.astype(str)))
    loads = n.loads
    g.add("load", pd.DataFrame({"bus": loads["bus"].astype(str), "p_mw": _static(loads, "p_set", 0.0)},
                               index=loads.index.astype(str)))
    su = n.storage_units
    if len(su):
        e = (su["p_nom"] * su["max_hours"]).astype(float)
        g.add("storage", pd.DataFrame({
            "bus": su["bus"].astype(str), "p_max_mw": su["p_nom"].astype(float), "e_max_mwh": e,
            "eta_charge": _static(su, "efficiency_store", 1.0),
            "eta_discharge": _static(su, "efficiency_dispatch", 1.0),
            "standing_loss": _static(su, "standing_loss", 0.0),
            "soc_init": (_static(su, "state_of_charge_initial", 0.0) / e.where(e > 0, 1.0)).clip(0, 1),
        }, index=su.index.astype(str)))
    _set_slack(g)
    # time series
    snaps = pd.Index(n.snapshots, name="snapshot")
    g.set_snapshots(snaps)
    weights = getattr(n, "snapshot_weightings", None)
    if weights is not None and len(snaps) > 1 and isinstance(snaps, pd.DatetimeIndex):
        step = np.diff(snaps).astype("timedelta64[ns]").astype(np.int64) / 3.6e12  # any datetime resolution
        spacing = np.append(step, step[-1])
        w = weights["objective"].to_numpy(float) if hasattr(weights, "columns") else np.asarray(weights, float)
        if not np.allclose(w, spacing):
            raise ValueError("from_pypsa: snapshot weightings differ from the snapshot spacing (not converted)")
    load_t = _varying(n, "loads", "p_set")
    if load_t is not None:
        full = pd.DataFrame(np.tile(g.load["p_mw"].to_numpy(), (len(snaps), 1)), index=snaps, columns=g.load.index)
        full.update(load_t.rename(columns=str))
        g.set_series("load.p_mw", full)
    for attr, name, static in (("p_max_pu", "generator.p_max_pu", _static(gens, "p_max_pu", 1.0)),
                               ("p_min_pu", "generator.p_min_pu", _static(gens, "p_min_pu", 0.0))):
        series = _varying(n, "generators", attr)
        if series is not None or (attr == "p_max_pu" and (static != 1.0).any()):
            full = pd.DataFrame(np.tile(static.to_numpy(), (len(snaps), 1)), index=snaps,
                                columns=gens.index.astype(str))
            if series is not None:
                full.update(series.rename(columns=str))
            g.set_series(name, full)
    cost_t = _varying(n, "generators", "marginal_cost")
    if cost_t is not None:
        g.set_series("generator.marginal_cost", cost_t.rename(columns=str).reindex(snaps))
    return g


def _set_slack(g: Grid) -> None:
    """One reference bus per connected part (most generation capacity), PV at the other generator buses."""
    ids = g.bus.index
    pos = {b: i for i, b in enumerate(ids)}
    f = [pos[b] for t in ("line", "transformer") for b in g[t]["bus0"]]
    t_ = [pos[b] for t in ("line", "transformer") for b in g[t]["bus1"]]
    adj = sp.coo_matrix((np.ones(len(f)), (f, t_)), shape=(len(ids), len(ids)))
    _, label = connected_components(adj, directed=False)
    cap = g.generator.groupby("bus")["p_max_mw"].sum().reindex(ids, fill_value=0.0).to_numpy()
    types = np.where(cap > 0, "pv", "pq").astype(object)
    for part in np.unique(label):
        members = np.flatnonzero(label == part)
        types[members[np.argmax(cap[members])]] = "ref"
    bus = g.bus.copy()
    bus["type"] = types
    g.bus = bus
