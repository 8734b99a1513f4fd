"""The comparison report of a batch: one self-contained HTML page (PNG plots embedded) from its catalogue.

Sections: counts and failures; KPI distributions (histograms of the KPIs that vary); Pareto fronts of the
energy cost (MAD) against the unserved energy (MWh) and the water shortfall (m³); a tornado of the grid
parameters' main effects (mean KPI at a parameter's highest value minus at its lowest); the table of runs.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from twin.atomic import atomic_write_text

from .schema import KPI_NAMES

__all__ = ["write_batch_report", "pareto_front", "main_effects", "varying_kpis"]

COST = "energy_cost_mad"
HARMS = ("unserved_energy_mwh", "water_shortfall_m3")


def _png(fig: Figure) -> str:
    """A figure as an ``<img>`` tag with the PNG inline (base64)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def varying_kpis(cat: pd.DataFrame, limit: int = 9) -> list[str]:
    """KPIs with finite values that differ between the successful runs (at most ``limit``, in KPI order)."""
    ok = cat[cat["status"] == "ok"]
    out = []
    for k in KPI_NAMES:
        if k in ok and ok[k].notna().sum() >= 2 and np.nanmax(ok[k]) - np.nanmin(ok[k]) > 1e-9 * (
                1.0 + np.nanmax(np.abs(ok[k]))):
            out.append(k)
    return out[:limit]


def pareto_front(x: pd.Series, y: pd.Series) -> pd.Index:
    """Index of the points not dominated when minimising both ``x`` and ``y`` (sorted by ``x``)."""
    pts = pd.DataFrame({"x": x, "y": y}).dropna().sort_values(["x", "y"])
    keep, best = [], np.inf
    for idx, row in pts.iterrows():
        if row["y"] < best:
            keep.append(idx)
            best = row["y"]
    return pd.Index(keep)


def main_effects(cat: pd.DataFrame, kpi: str) -> pd.Series:
    """For each numeric grid parameter: mean ``kpi`` at its highest value minus at its lowest (grid runs only),
    sorted by absolute effect, largest first."""
    grid = cat[(cat["kind"] == "grid") & (cat["status"] == "ok")]
    effects = {}
    for col in [c for c in grid.columns if c.startswith("param_")]:
        vals = pd.to_numeric(grid[col], errors="coerce")
        if vals.notna().sum() == 0 or vals.nunique() < 2:
            continue
        lo, hi = vals.min(), vals.max()
        effects[col.removeprefix("param_")] = float(grid.loc[vals == hi, kpi].mean() - grid.loc[vals == lo, kpi].mean())
    s = pd.Series(effects, dtype=float)
    return s.reindex(s.abs().sort_values(ascending=False).index)


def _distributions(cat: pd.DataFrame) -> str:
    kpis = varying_kpis(cat)
    if not kpis:
        return "<p>No KPI varies between the successful runs.</p>"
    ok = cat[cat["status"] == "ok"]
    cols = 3
    rows = (len(kpis) + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows))
    for i, k in enumerate(kpis):
        ax = fig.add_subplot(rows, cols, i + 1)
        for kind, part in ok.groupby("kind"):
            ax.hist(part[k].dropna(), bins=min(20, max(3, len(ok) // 2)), alpha=0.6, label=str(kind))
        ax.set_title(k, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _pareto(cat: pd.DataFrame) -> str:
    ok = cat[cat["status"] == "ok"]
    harms = [h for h in HARMS if h in ok and COST in ok and ok[[COST, h]].dropna().shape[0] >= 1]
    if not harms:
        return "<p>No run has both a cost and an unserved-energy or water-shortfall KPI.</p>"
    fig = Figure(figsize=(5.2 * len(harms), 3.8))
    parts = []
    for i, h in enumerate(harms):
        ax = fig.add_subplot(1, len(harms), i + 1)
        for kind, part in ok.groupby("kind"):
            ax.scatter(part[COST], part[h], s=18, alpha=0.7, label=str(kind))
        front = pareto_front(ok[COST], ok[h])
        ax.plot(ok.loc[front, COST], ok.loc[front, h], "k-o", ms=4, lw=1, label="Pareto front")
        ax.set_xlabel("energy cost (MAD)")
        ax.set_ylabel(h)
        ax.legend(fontsize=7)
        parts.append(f"<li>{html.escape(h)}: " + ", ".join(html.escape(n) for n in ok.loc[front, "scenario"]) + "</li>")
    fig.tight_layout()
    return _png(fig) + "<p>On the front (cost, then harm):</p><ul>" + "".join(parts) + "</ul>"


def _tornado(cat: pd.DataFrame) -> str:
    kpis = [k for k in (COST, *HARMS, "import_mwh", "pv_mwh", "ev_charged_mwh") if k in varying_kpis(cat, 99)]
    panels = [(k, main_effects(cat, k)) for k in kpis]
    panels = [(k, e) for k, e in panels if len(e) and e.abs().max() > 0]
    if not panels:
        return "<p>No grid sweep with a KPI that moves: no tornado.</p>"
    fig = Figure(figsize=(4.6 * len(panels), 0.5 * max(len(e) for _, e in panels) + 1.6))
    for i, (k, e) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        e = e.iloc[::-1]
        ax.barh(e.index, e.to_numpy(), color=["#c0392b" if v > 0 else "#2e86c1" for v in e])
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_title(f"{k}: high − low", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return _png(fig)


def _table(cat: pd.DataFrame) -> str:
    cols = ["scenario", "hash", "kind"] + [c for c in cat.columns if c.startswith("param_")] + [
        "status", "wall_s"] + [k for k in (COST, *HARMS) if k in cat] + ["error"]
    view = cat[[c for c in cols if c in cat.columns]]
    return view.to_html(index=False, float_format=lambda v: f"{v:,.4g}", na_rep="—", border=0, classes="runs")


def write_batch_report(cat: pd.DataFrame, path: str | os.PathLike, *, title: str = "batch",
                       description: str = "") -> Path:
    """Write the batch's comparison report (module docstring) atomically; return its path."""
    n_ok = int((cat["status"] == "ok").sum()) if len(cat) else 0
    failed = cat[cat["status"] != "ok"] if len(cat) else cat
    fail_html = "".join(f"<li><b>{html.escape(r.scenario)}</b> ({html.escape(r.status)}): {html.escape(r.error)}</li>"
                        for r in failed.itertuples()) if len(failed) else ""
    body = [f"<h1>Batch {html.escape(title)}</h1>", f"<p>{html.escape(description)}</p>",
            f"<p>{n_ok} of {len(cat)} scenarios succeeded; {len(failed)} failed.</p>"]
    if fail_html:
        body.append(f"<h2>Failures</h2><ul>{fail_html}</ul>")
    if n_ok:
        body += ["<h2>KPI distributions</h2>", _distributions(cat),
                 "<h2>Pareto front: cost against unserved energy and water</h2>", _pareto(cat),
                 "<h2>Parameter effects (tornado)</h2>", _tornado(cat)]
    body += ["<h2>Runs</h2>", _table(cat)] if len(cat) else []
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Batch " + html.escape(title) + "</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table.runs{border-collapse:collapse;"
            "font-size:12px}table.runs td,table.runs th{padding:2px 6px;border-bottom:1px solid #ddd}"
            "img{max-width:100%}</style></head><body>" + "\n".join(body) + "</body></html>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, page)
