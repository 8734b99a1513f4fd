"""Scenarios as data (YAML files in this folder) and ``run_scenario``, the one path from a scenario to its
results for Python, the CLI (``twin run``), the nightly batch and the HTTP API."""

from pathlib import Path

from .apply import apply_scenario
from .loading import ScenarioError, check_against_twin, load_scenario, parse_scenario, scenario_hash
from .run import RunResult, run_scenario
from .schema import ANALYSES, KPI_NAMES, Scenario

LIBRARY = Path(__file__).parent

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_scenario", "check_against_twin", "scenario_hash",
           "apply_scenario", "run_scenario", "RunResult", "ANALYSES", "KPI_NAMES", "LIBRARY", "library"]


def library() -> dict[str, Path]:
    """The scenario files shipped in ``scenarios/`` (name → path)."""
    return {p.stem: p for p in sorted(LIBRARY.glob("*.yaml"))}
