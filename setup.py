"""Build the Cython kernels in ``_ext/`` as ``imgio._ext.<name>``.

Every ``_ext/*.pyx`` becomes an extension module; the ``.pxd`` / ``.pxi`` files
it cimports and includes (``tiffinfo.pxd``, ``tiffdesc.pxi`` ... for
``tiffparse``) are its shared declarations and included sources, listed as
dependencies so editing them rebuilds it.  A failing compile fails the
install: there is deliberately no pure-Python fallback.
"""
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent

#: the included sources and declarations of each extension module (by stem)
DEPENDS = {
    "tiffparse": ["_ext/tiffinfo.pxd", "_ext/tiffdesc.pxi", "_ext/tiffpolicy.pxi",
                  "_ext/tiffpixels.pxi"],
}

extensions = [
    Extension(
        f"imgio._ext.{pyx.stem}",
        [f"_ext/{pyx.name}"],
        depends=DEPENDS.get(pyx.stem, []),
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
    for pyx in sorted((HERE / "_ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["_ext"],
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
