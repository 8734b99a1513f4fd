"""Compiled Cython kernels (built from ext/*.pyx by setup.py)."""

try:
    from . import assignment, hydraulics, paths, powerflow  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only on an unbuilt checkout
    raise ImportError(
        "Berkane Twin's compiled kernels (twin._ext) are not built. Install the package with "
        "`pip install -e .` (or `pip install .`) from the project root; it needs a C compiler, "
        f"Cython and numpy. Original error: {exc}"
    ) from exc
