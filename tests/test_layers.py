"""DESIGN.md's one-way rule: importing twin does not import pyomo, fastapi or dask."""

import subprocess
import sys


def test_twin_does_not_import_upper_layers():
    code = (
        "import sys, twin, twin.energy, twin.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pyomo', 'fastapi', 'dask', 'solvers', "
        "'scenarios'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_compiled_kernels_are_built():
    from twin._ext import powerflow

    assert powerflow.__file__.endswith((".so", ".pyd"))
