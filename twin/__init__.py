"""Berkane Twin: network model, simulators and I/O for the city's electricity, water and road grids.

This layer never imports pyomo, fastapi or dask (see DESIGN.md, "the one-way rule").
"""

from . import _ext  # noqa: F401  (fails loudly with build instructions when the kernels are missing)

__version__ = "0.1.0"
