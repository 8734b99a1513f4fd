"""Result object of a power flow: pandas tables plus convergence facts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["PowerFlowResult"]


@dataclass
class PowerFlowResult:
    """Power-flow results.

    * ``bus``: index = bus id; ``vm_pu``, ``va_deg`` (deg), ``p_mw``/``q_mvar`` (net injection,
      generation positive), ``p_load_mw``, ``q_load_mvar`` (served load), ``p_unserved_mw`` (load
      at de-energised buses), ``p_gen_mw``, ``q_gen_mvar``,
      ``type`` (role in this solve: pq/pv/ref, '' when de-energised), ``island``, ``energised``.
      De-energised buses carry NaN voltages.
    * ``branch``: index = branch id; ``kind``, ``bus0``, ``bus1``, ``p0_mw``, ``q0_mvar`` (into the
      branch at bus0), ``p1_mw``, ``q1_mvar`` (at bus1), ``pl_mw``/``ql_mvar`` (losses),
      ``loading_percent`` (max end apparent power / ``rate_a_mva``; NaN when unrated), ``in_service``.
    * ``generator``: index = generator id; ``bus``, ``p_mw``, ``q_mvar``, ``in_service``, ``at_q_limit``.
    * ``converged``, ``iterations``, ``max_mismatch_mva`` (largest |ΔP| or |ΔQ| in MW/MVAr),
      ``worst_bus`` (id of that bus), ``method``, ``wall_time_s``, ``messages`` (each also
      emitted as a :class:`PowerFlowWarning`), ``notes`` (Q-limit switching), ``timings`` (s).
    """

    method: str
    bus: pd.DataFrame
    branch: pd.DataFrame
    generator: pd.DataFrame
    converged: bool
    iterations: int
    max_mismatch_mva: float
    worst_bus: str | None
    wall_time_s: float
    messages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable key figures (for batch catalogues and the HTTP API)."""
        b, br, g = self.bus, self.branch, self.generator
        on = b["energised"]
        loading = br["loading_percent"]

        def num(v: float) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        return {
            "method": self.method,
            "converged": bool(self.converged),
            "iterations": int(self.iterations),
            "max_mismatch_mva": num(self.max_mismatch_mva),
            "worst_bus": self.worst_bus,
            "n_bus": int(len(b)),
            "n_energised_bus": int(on.sum()),
            "n_branch": int(len(br)),
            "generation_mw": num(g.loc[g["in_service"], "p_mw"].sum()),
            "load_mw": num(b["p_load_mw"].sum()),
            "unserved_load_mw": num(b["p_unserved_mw"].sum()),
            "losses_mw": num(br["pl_mw"].sum()),
            "vm_min_pu": num(b.loc[on, "vm_pu"].min()) if on.any() else None,
            "vm_max_pu": num(b.loc[on, "vm_pu"].max()) if on.any() else None,
            "max_loading_percent": num(loading.max()) if loading.notna().any() else None,
            "n_overloaded": int((loading > 100).sum()),
            "wall_time_s": float(self.wall_time_s),
            "messages": list(self.messages),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.summary(), indent=1)

    def __repr__(self) -> str:
        s = self.summary()
        state = "converged" if s["converged"] else "NOT converged"
        return (f"PowerFlowResult({s['method']}, {state} in {s['iterations']} it, buses={s['n_bus']}, "
                f"losses={s['losses_mw']:.3f} MW)" if s["losses_mw"] is not None else f"PowerFlowResult({state})")
