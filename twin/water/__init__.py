"""The drinking-water layer: EPANET-compatible network model, ``.inp`` I/O and hydraulics."""

from .compile import NetworkError
from .hydraulics import HydraulicWarning, simulate_hydraulics
from .inp import InpError, read_inp, write_inp
from .network import Control, Curve, Energy, Options, Rule, Times, WaterNetwork
from .results import HydraulicResult

__all__ = [
    "WaterNetwork", "Options", "Times", "Energy", "Curve", "Control", "Rule",
    "read_inp", "write_inp", "InpError", "simulate_hydraulics", "HydraulicResult", "HydraulicWarning",
    "NetworkError",
]
