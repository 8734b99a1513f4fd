"""Build script: compiles the Cython kernels in ext/ into twin._ext.*."""

from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = sorted(p.stem for p in Path(__file__).parent.joinpath("ext").glob("*.pyx"))

extensions = [
    Extension(
        f"twin._ext.{name}",
        [f"ext/{name}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
    for name in KERNELS
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}, include_path=["ext"], quiet=True),
)
