"""imgio as a napari plugin (npe2): open and save images with their physical scale.

The manifest ``napari.yaml`` beside this file is registered through the
``napari.manifest`` entry point (``pip install imgio[napari]``).  Its commands
live in :mod:`imgio.napari._reader` and :mod:`imgio.napari._writer`; they use
only imgio's public API (``imgio.v3.improps``/``imread``/``imwrite``,
``imgio.to_dask``).  Importing this package imports neither napari nor npe2.

See ``docs/napari.md`` for what carries over into napari's layers.
"""
from __future__ import annotations

__all__ = ["LAZY_BYTES", "get_reader", "write_image", "pyramid_levels"]

from ._settings import LAZY_BYTES


def __getattr__(name):
    if name in ("get_reader", "pyramid_levels"):
        from . import _reader
        return getattr(_reader, name)
    if name == "write_image":
        from . import _writer
        return _writer.write_image
    raise AttributeError(f"module 'imgio.napari' has no attribute {name!r}")
