"""The electricity network: tables, MATPOWER I/O, power flow and security analysis."""

from .compile import SlackError, compile_grid
from .contingency import ContingencyResult, contingency_analysis
from .graph import to_networkx
from .grid import Grid
from .matpower import MatpowerFormatError, read_matpower, write_matpower
from .powerflow import PowerFlowWarning, power_flow
from .pypsa_io import from_pypsa
from .results import PowerFlowResult
from .sensitivity import DCSensitivity, lodf, ptdf

__all__ = [
    "from_pypsa",
    "Grid", "read_matpower", "write_matpower", "MatpowerFormatError", "power_flow", "PowerFlowResult",
    "PowerFlowWarning", "SlackError", "compile_grid", "to_networkx", "ptdf", "lodf", "DCSensitivity",
    "contingency_analysis", "ContingencyResult",
]
