"""EPANET's units and constants, expressed in SI.

EPANET computes in US units (ft, cfs) and converts at its boundary with fixed,
rounded factors (e.g. 1 cfs = 28.317 L/s, 1 ft = 0.4333 psi).  A network read
from an ``.inp`` file is converted to SI with *the same factors*, so that a
model means exactly what EPANET computes with it and our heads agree with
EPANET's to far below a millimetre; the few empirical constants of its
formulas (Hazen-Williams 4.727, g = 32.2 ft/s², 0.02517 for minor losses,
8.814 for water power) are converted to SI exactly.
"""

from __future__ import annotations

FT = 0.3048  #: m per ft (exact)
CFS = FT**3  #: m³/s per ft³/s

#: EPANET's flow-unit factors (units per cfs), as in its source
PER_CFS = {
    "CFS": 1.0, "GPM": 448.831, "MGD": 0.64632, "IMGD": 0.5382, "AFD": 1.9837,
    "LPS": 28.317, "LPM": 1699.0, "MLD": 2.4466, "CMH": 101.94, "CMD": 2446.6, "CMS": 0.028317,
}
US_FLOW_UNITS = ("CFS", "GPM", "MGD", "IMGD", "AFD")
SI_FLOW_UNITS = ("LPS", "LPM", "MLD", "CMH", "CMD", "CMS")
PSI_PER_FT = 0.4333
KPA_PER_PSI = 6.895
BAR_PER_PSI = 0.068948
KW_PER_HP = 0.7457
SEC_PER_DAY = 86400


def flow_factor(flow_units: str) -> float:
    """m³/s per one unit of ``flow_units`` (EPANET's factor)."""
    return CFS / PER_CFS[flow_units]


def is_si(flow_units: str) -> bool:
    """True for EPANET's SI flow units (lengths in m, diameters in mm)."""
    return flow_units in SI_FLOW_UNITS


def length_factor(flow_units: str) -> float:
    """m per length unit of the file (ft for US flow units)."""
    return 1.0 if is_si(flow_units) else FT


def diameter_factor(flow_units: str) -> float:
    """m per diameter unit of the file (mm for SI, inch for US)."""
    return 1e-3 if is_si(flow_units) else FT / 12.0


def pressure_factor(pressure_units: str, specific_gravity: float) -> float:
    """m of water head per unit of pressure (EPANET's factors)."""
    u = pressure_units.upper()
    if u == "METERS":
        return 1.0
    if u == "FEET":
        return FT
    psi = FT / (PSI_PER_FT * specific_gravity)  # m per psi
    if u == "PSI":
        return psi
    if u == "KPA":
        return psi / KPA_PER_PSI
    if u == "BAR":
        return psi / BAR_PER_PSI
    raise ValueError(f"unknown pressure units {pressure_units!r}")


def default_pressure_units(flow_units: str) -> str:
    return "METERS" if is_si(flow_units) else "PSI"


# -- solver constants (EPANET's, converted from ft/cfs to m, m³/s) -------------
#: Hazen-Williams: h [m] = HW_K * L * q^1.852 / (C^1.852 * d^4.871), SI
HW_K = 4.727 * FT ** (4.871 - 3 * 1.852)
#: Darcy-Weisbach: EPANET's g (32.2 ft/s²) in m/s²
G_DW = 32.2 * FT
#: minor loss: h [m] = KM_K * K * q² / d⁴ (EPANET's 0.02517 in ft units)
KM_K = 0.02517 / FT
#: water power: kW = POWER_K * SpGr * q [m³/s] * h [m] (EPANET's 8.814 ft·cfs/hp)
POWER_K = KW_PER_HP / 8.814 / (FT * CFS)
#: EPANET's default kinematic viscosity (1.1e-5 ft²/s) in m²/s
VISCOSITY = 1.1e-5 * FT**2
#: default head tolerance (0.0005 ft), flow tolerance (0.0001 cfs), low-flow resistance tolerance
HTOL = 0.0005 * FT
QTOL = 0.0001 * CFS
RQTOL = 1e-7 * FT / CFS
QZERO = 1e-6 * CFS
#: EPANET's CBIG (1e8) and CSMALL (1e-6) as a resistance (ft/cfs) or a conductance (cfs/ft)
CBIG_R = 1e8 * FT / CFS
CBIG_G = 1e8 * CFS / FT
CSMALL_R = 1e-6 * FT / CFS
#: EPANET's TINY (1e-6) as a flow (cfs) and as a resistance (ft/cfs)
TINY_Q = 1e-6 * CFS
TINY_R = 1e-6 * FT / CFS
#: slope of EPANET's flow barrier functions (1e9 per cfs)
BARRIER = 1e9 / CFS
#: PDA: smallest pressure range (EPANET compares 0.1 with a range in ft) and convergence flow tolerance
MINPDIFF = 0.1 * FT
PDA_QTOL = 0.0001 * CFS
#: EPANET's BIG, TINY (dimensionless uses) and its MISSING-value marker
BIG = 1e10
TINY = 1e-6
MISSING = -1e10
