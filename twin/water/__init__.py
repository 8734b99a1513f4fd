"""The drinking-water layer: EPANET-compatible network model, ``.inp`` I/O and hydraulics."""

from .compile import NetworkError
from .hydraulics import HydraulicWarning, simulate_hydraulics
from .inp import InpError, read_inp, write_inp
from .network import Control, Curve, Energy, Options, Rule, Times, WaterNetwork
from .results import HydraulicResult
from .schedule import schedule_network

__all__ = [
    "schedule_network",
    "WaterNetwork", "Options", "Times", "Energy", "Curve", "Control", "Rule",
    "read_inp", "write_inp", "InpError", "simulate_hydraulics", "HydraulicResult", "HydraulicWarning",
    "NetworkError",
]
