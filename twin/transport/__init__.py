"""The road layer: TNTP-compatible network model and static user-equilibrium traffic assignment."""

from .assignment import METHODS, AssignmentError, AssignmentResult, AssignmentWarning, assign_traffic
from .network import TransportNetwork

__all__ = ["TransportNetwork", "assign_traffic", "AssignmentResult", "AssignmentWarning", "AssignmentError",
           "METHODS"]
