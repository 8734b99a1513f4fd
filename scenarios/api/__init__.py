"""The data-centre HTTP API: OGC API – Processes over the twin's computations (scenarios, power flow, hydraulics,
traffic, dispatch, batches), the network layers as OGC API – Features collections, and the twin's state fed by
sensor measurements; API keys with scopes; jobs persisted in SQLite or PostgreSQL.  See docs/api.md.

``create_app`` and ``ServiceConfig`` are imported on first use, so that the job worker processes (which import
:mod:`scenarios.api.compute`) do not import the web stack.
"""

__all__ = ["create_app", "ServiceConfig"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServiceConfig":
        from .config import ServiceConfig

        return ServiceConfig
    raise AttributeError(f"module 'scenarios.api' has no attribute {name!r}")
