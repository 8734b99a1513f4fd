"""Schema of the energy network's component tables.

Units: power in MW / MVAr (or MVA), voltage magnitudes in p.u. of the bus
nominal voltage, nominal voltages in kV, angles in degrees, branch impedances
in p.u. on the grid's system base (``Grid.base_mva``) as in MATPOWER.  Sign
convention: generator, storage and load powers are positive in their natural
direction (generation/discharge injects, load consumes).
"""

from __future__ import annotations

import math

from ..schema import Column as C
from ..schema import TableSchema

INF = math.inf

BUS = TableSchema(
    "bus",
    (
        C("name", "str", doc="human-readable name (MATPOWER bus_name)"),
        C("vn_kv", "float", "kV", 0.0, doc="nominal (base) voltage; 0 where the case gives none"),
        C("type", "str", "", "pq", choices=("pq", "pv", "ref"),
          doc="power-flow role: pq, pv (voltage controlled) or ref (slack)"),
        C("in_service", "bool", "", True, doc="False for isolated buses (MATPOWER type 4)"),
        C("vm_pu", "float", "p.u.", 1.0, doc="voltage magnitude (start value / last solution)"),
        C("va_deg", "float", "deg", 0.0, doc="voltage angle (start value / last solution)"),
        C("vmin_pu", "float", "p.u.", 0.9, doc="minimum voltage magnitude"),
        C("vmax_pu", "float", "p.u.", 1.1, doc="maximum voltage magnitude"),
        C("area", "int", "", 1, doc="area number"),
        C("zone", "int", "", 1, doc="loss zone"),
        C("lon", "float", "deg", math.nan, doc="WGS84 longitude (optional)"),
        C("lat", "float", "deg", math.nan, doc="WGS84 latitude (optional)"),
        C("lam_p", "float", "$/MWh", math.nan, doc="OPF result: P Lagrange multiplier (optional)"),
        C("lam_q", "float", "$/MVArh", math.nan, doc="OPF result: Q Lagrange multiplier (optional)"),
        C("mu_vmax", "float", "$/p.u.", math.nan, doc="OPF result: Vmax multiplier (optional)"),
        C("mu_vmin", "float", "$/p.u.", math.nan, doc="OPF result: Vmin multiplier (optional)"),
    ),
    doc="Electrical nodes.",
)

_BRANCH_COMMON = (
    C("bus0", "str", required=True, references="bus", doc="from bus"),
    C("bus1", "str", required=True, references="bus", doc="to bus"),
    C("r_pu", "float", "p.u.", 0.0, doc="series resistance on the system base"),
    C("x_pu", "float", "p.u.", required=True, doc="series reactance on the system base"),
    C("b_pu", "float", "p.u.", 0.0, doc="total charging susceptance on the system base"),
    C("rate_a_mva", "float", "MVA", 0.0, doc="long-term rating (0 = unlimited)"),
    C("rate_b_mva", "float", "MVA", 0.0, doc="short-term rating (0 = unlimited)"),
    C("rate_c_mva", "float", "MVA", 0.0, doc="emergency rating (0 = unlimited)"),
    C("in_service", "bool", "", True),
    C("angmin_deg", "float", "deg", -360.0, doc="minimum angle difference"),
    C("angmax_deg", "float", "deg", 360.0, doc="maximum angle difference"),
    C("name", "str"),
    C("pf_mw", "float", "MW", math.nan, doc="stored result: P at from end (optional)"),
    C("qf_mvar", "float", "MVAr", math.nan, doc="stored result: Q at from end (optional)"),
    C("pt_mw", "float", "MW", math.nan, doc="stored result: P at to end (optional)"),
    C("qt_mvar", "float", "MVAr", math.nan, doc="stored result: Q at to end (optional)"),
    C("mu_sf", "float", "$/MVA", math.nan, doc="OPF result (optional)"),
    C("mu_st", "float", "$/MVA", math.nan, doc="OPF result (optional)"),
    C("mu_angmin", "float", "$/deg", math.nan, doc="OPF result (optional)"),
    C("mu_angmax", "float", "$/deg", math.nan, doc="OPF result (optional)"),
)

LINE = TableSchema("line", _BRANCH_COMMON, doc="Lines (pi model; MATPOWER branches with TAP=0, SHIFT=0).")

TRANSFORMER = TableSchema(
    "transformer",
    _BRANCH_COMMON[:3]
    + (
        C("tap_ratio", "float", "", 1.0, doc="off-nominal turns ratio on the bus0 (from) side"),
        C("shift_deg", "float", "deg", 0.0, doc="phase shift angle (positive: bus0 leads)"),
    )
    + _BRANCH_COMMON[3:],
    doc="Transformers (MATPOWER branches with a tap ratio or phase shift; tap at bus0).",
)

GENERATOR = TableSchema(
    "generator",
    (
        C("bus", "str", required=True, references="bus"),
        C("p_mw", "float", "MW", 0.0, doc="active power set point"),
        C("q_mvar", "float", "MVAr", 0.0, doc="reactive power (set point on PQ buses)"),
        C("q_max_mvar", "float", "MVAr", INF),
        C("q_min_mvar", "float", "MVAr", -INF),
        C("vm_pu", "float", "p.u.", 1.0, doc="voltage set point"),
        C("mbase_mva", "float", "MVA", 100.0, doc="machine base"),
        C("in_service", "bool", "", True),
        C("p_max_mw", "float", "MW", INF),
        C("p_min_mw", "float", "MW", 0.0),
        C("pc1_mw", "float", "MW", 0.0, doc="capability curve: lower P"),
        C("pc2_mw", "float", "MW", 0.0, doc="capability curve: upper P"),
        C("qc1min_mvar", "float", "MVAr", 0.0),
        C("qc1max_mvar", "float", "MVAr", 0.0),
        C("qc2min_mvar", "float", "MVAr", 0.0),
        C("qc2max_mvar", "float", "MVAr", 0.0),
        C("ramp_agc_mw_min", "float", "MW/min", 0.0),
        C("ramp_10_mw", "float", "MW", 0.0),
        C("ramp_30_mw", "float", "MW", 0.0),
        C("ramp_q_mvar_min", "float", "MVAr/min", 0.0),
        C("apf", "float", "", 0.0, doc="area participation factor"),
        C("committable", "bool", "", False, doc="dispatch: on/off decided by unit commitment (MILP)"),
        C("min_up_h", "float", "h", 0.0, doc="dispatch: minimum up time once started"),
        C("min_down_h", "float", "h", 0.0, doc="dispatch: minimum down time once stopped"),
        C("ramp_up_mw_h", "float", "MW/h", INF, doc="dispatch: largest increase of output per hour"),
        C("ramp_down_mw_h", "float", "MW/h", INF, doc="dispatch: largest decrease of output per hour"),
        C("initially_on", "bool", "", True, doc="dispatch: committed before the first snapshot"),
        C("mu_pmax", "float", "$/MW", math.nan, doc="OPF result (optional)"),
        C("mu_pmin", "float", "$/MW", math.nan, doc="OPF result (optional)"),
        C("mu_qmax", "float", "$/MVAr", math.nan, doc="OPF result (optional)"),
        C("mu_qmin", "float", "$/MVAr", math.nan, doc="OPF result (optional)"),
        C("kind", "str", doc="technology (MATPOWER gentype), e.g. 'pv', 'wind', 'ng'"),
        C("fuel", "str", doc="fuel (MATPOWER genfuel)"),
        C("name", "str"),
    ),
    doc="Generators.",
)

GENERATOR_COST = TableSchema(
    "generator_cost",
    (
        C("model", "int", "", 2, choices=(1, 2), doc="1 piecewise linear, 2 polynomial"),
        C("startup", "float", "$", 0.0),
        C("shutdown", "float", "$", 0.0),
        C("coefficients", "object", "", (),
          doc="model 1: (p1, c1, p2, c2, ...) in MW, $/h; model 2: (c_n, ..., c_1, c_0) in $/MW^k/h"),
        C("reactive", "bool", "", False, doc="True for a reactive power cost (MVAr)"),
    ),
    doc="Generator costs (MATPOWER gencost); index = generator id, with ':q' for reactive costs.",
    index_doc="generator id (reactive costs: generator id + ':q')",
)

LOAD = TableSchema(
    "load",
    (
        C("bus", "str", required=True, references="bus"),
        C("p_mw", "float", "MW", 0.0),
        C("q_mvar", "float", "MVAr", 0.0),
        C("in_service", "bool", "", True),
        C("name", "str"),
    ),
    doc="Constant-power loads.",
)

SHUNT = TableSchema(
    "shunt",
    (
        C("bus", "str", required=True, references="bus"),
        C("g_mw", "float", "MW", 0.0, doc="active power consumed at 1 p.u. voltage"),
        C("b_mvar", "float", "MVAr", 0.0, doc="reactive power injected at 1 p.u. voltage"),
        C("in_service", "bool", "", True),
        C("name", "str"),
    ),
    doc="Constant-admittance shunts.",
)

STORAGE = TableSchema(
    "storage",
    (
        C("bus", "str", required=True, references="bus"),
        C("p_mw", "float", "MW", 0.0, doc="output in the power flow (positive = discharging)"),
        C("q_mvar", "float", "MVAr", 0.0),
        C("p_max_mw", "float", "MW", 0.0, doc="power rating (charge and discharge)"),
        C("e_max_mwh", "float", "MWh", 0.0, doc="energy capacity"),
        C("soc_init", "float", "", 0.5, doc="initial state of charge (fraction of e_max_mwh)"),
        C("eta_charge", "float", "", 0.95, doc="charging efficiency"),
        C("eta_discharge", "float", "", 0.95, doc="discharging efficiency"),
        C("standing_loss", "float", "1/h", 0.0, doc="fraction of stored energy lost per hour"),
        C("in_service", "bool", "", True),
        C("name", "str"),
    ),
    doc="Storage units (fixed injections in the power flow).",
)

TABLES: dict[str, TableSchema] = {
    s.name: s for s in (BUS, LINE, TRANSFORMER, GENERATOR, GENERATOR_COST, LOAD, SHUNT, STORAGE)
}
