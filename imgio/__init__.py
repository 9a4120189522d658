"""imgio: Cython-optimized scientific image I/O with imageio's user API.

``import imgio.v3 as iio`` gives the ndimage API (``imread``, ``imiter``,
``imwrite``, ``imopen``, ``improps``, ``immeta``); ``import imgio.v2 as
imageio`` gives the classic API.  The top-level namespace mirrors imageio's:
v2 functions, plus ``imopen`` and ``imiter`` from v3.

Importing imgio loads no backend (tifffile, h5py, Pillow, dask): each is
imported when a plugin that needs it is first tried.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: names served lazily from submodules (``name -> module``)
_LAZY = {
    "v2": "imgio.v2",
    "v3": "imgio.v3",
    "errors": "imgio.errors",
    "imopen": "imgio.v3",
    "imiter": "imgio.v3",
    "improps": "imgio.v3",
    "immeta": "imgio.v3",
    "ImageProperties": "imgio.v3",
}
for _name in ("imread mimread volread mvolread imwrite mimwrite volwrite mvolwrite "
              "imsave mimsave volsave mvolsave read save get_reader get_writer help "
              "show_formats RETURN_BYTES formats Array").split():
    _LAZY[_name] = "imgio.v2"
for _name in ("to_dask", "LazyArray"):
    _LAZY[_name] = "imgio.lazy"
_LAZY["lazy"] = "imgio.lazy"  # the package, callable as imgio.lazy(path, ...)
del _name

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imgio' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module == f"imgio.{name}" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
