"""A pump schedule as a network: the scheduled pumps follow TIME controls (used by the pump scheduler, the
coupled simulation and the cascade engine)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .network import Control, WaterNetwork

__all__ = ["schedule_network", "set_link_status"]


def schedule_network(wn: WaterNetwork, status: pd.DataFrame, companions: Mapping[str, str] | None = None
                     ) -> tuple[WaterNetwork, list[str]]:
    """A copy of ``wn`` whose pumps in ``status`` (rows: step start times in s; values: relative speed, 0 =
    off) follow it through TIME controls; their own controls and rules are removed, companion links follow
    the inverse status.  Returns the network and notes on what was removed."""
    out = wn.copy()
    pumps = list(status.columns)
    comp = dict(companions or {})
    managed = set(pumps) | set(comp)
    notes = []
    dropped = [c for c in out.controls if c.link in managed]
    out.controls = [c for c in out.controls if c.link not in managed]
    if dropped:
        notes.append(f"{len(dropped)} control(s) of scheduled pumps and their companion links replaced by the "
                     "schedule")
    kept = []
    for r in out.rules:
        if any(a.id in managed for a in r.then_actions + r.else_actions):
            notes.append(f"rule {r.name!r} acts on a scheduled pump or its companion: removed")
        else:
            kept.append(r)
    out.rules = kept
    times = status.index.to_numpy(dtype=np.int64)
    vals = status.to_numpy(float)
    for j, p in enumerate(pumps):
        s0 = vals[0, j]
        out.pump.loc[p, "initial_status"] = "OPEN" if s0 > 0 else "CLOSED"
        out.pump.loc[p, "speed_pattern"] = ""
        if s0 > 0:
            out.pump.loc[p, "speed"] = float(s0)
        for i in range(1, len(times)):
            if vals[i, j] == vals[i - 1, j]:
                continue
            t = int(times[i])
            if vals[i, j] <= 0:
                out.controls.append(Control(link=p, action="CLOSED", condition="TIME", time_s=t))
            elif vals[i, j] == 1.0:  # OPEN also restores the nominal speed
                out.controls.append(Control(link=p, action="OPEN", condition="TIME", time_s=t))
            else:  # a speed setting opens a closed pump (EPANET)
                out.controls.append(Control(link=p, action="SETTING", condition="TIME", time_s=t,
                                            setting=float(vals[i, j])))
    for link, p in comp.items():
        j = pumps.index(p)
        on = vals[:, j] > 0
        set_link_status(out, link, "CLOSED" if on[0] else "OPEN")
        for i in range(1, len(times)):
            if on[i] != on[i - 1]:
                out.controls.append(Control(link=link, action="CLOSED" if on[i] else "OPEN", condition="TIME",
                                            time_s=int(times[i])))
    return out, notes


def set_link_status(wn: WaterNetwork, link: str, status: str) -> None:
    if link in wn.pipe.index:
        if wn.pipe.loc[link, "status"] != "CV":
            wn.pipe.loc[link, "status"] = status
    elif link in wn.valve.index:
        wn.valve.loc[link, "initial_status"] = status
    elif link in wn.pump.index:
        wn.pump.loc[link, "initial_status"] = status
