"""Berkane Twin: network model, simulators and I/O for the city's electricity, water and road grids.

This layer never imports pyomo, fastapi or dask (see DESIGN.md, "the one-way rule").
"""

from . import _ext  # noqa: F401  (fails loudly with build instructions when the kernels are missing)

__version__ = "0.1.0"


def __getattr__(name: str):
    """``from twin import load_berkane`` (imported on first use: ``import twin`` stays light)."""
    if name == "load_berkane":
        from .datasets.berkane import load_berkane

        return load_berkane
    raise AttributeError(f"module 'twin' has no attribute {name!r}")
