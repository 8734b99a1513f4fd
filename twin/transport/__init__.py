"""The road layer: TNTP-compatible network model and static user-equilibrium traffic assignment."""

from .assignment import METHODS, AssignmentError, AssignmentResult, AssignmentWarning, assign_traffic
from .geojson import to_geojson
from .network import TransportNetwork
from .tntp import TntpError, TntpWarning, read_tntp, read_tntp_flows, write_tntp

__all__ = ["TransportNetwork", "read_tntp", "read_tntp_flows", "write_tntp", "TntpError", "TntpWarning",
           "to_geojson", "assign_traffic", "AssignmentResult", "AssignmentWarning", "AssignmentError", "METHODS"]
