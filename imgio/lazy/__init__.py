"""Larger than memory: lazy arrays and dask arrays over image files.

``imgio.lazy`` is this package *and* a function: ``imgio.lazy(path, ...)``
calls :func:`lazy` (the package's module object is of a
:class:`types.ModuleType` subclass with ``__call__``), so code written when
``imgio.lazy`` was a plain function keeps working.

Entry points:

* :func:`lazy` returns a :class:`LazyArray`: a picklable, NumPy-like view of
  one ndimage on disk.  Indexing it reads only the chunks the index touches,
  wherever the format's plugin can read regions (TIFF pages, strips and
  tiles; HDF5 chunks; ``.npy`` bytes; folders slice by slice); formats that
  can only be read whole (Pillow's formats, compressed ``.npz`` members) read the whole
  image for any index.  ``np.asarray(lazy_array)`` reads everything.  No dask
  needed.
* :func:`to_dask` (and ``imopen(uri, "r").to_dask()``, which calls
  :func:`plugin_to_dask`) returns a ``dask.array.Array`` whose chunks follow
  the plugin's ``chunks()``.
* :func:`write_dask` writes a dask array block row by block row into the
  plugin's ``append()``.

This layer knows no format: it uses only the plugin contract
(:func:`~imgio.core.imopen.imopen`, ``properties``, ``chunks`` and
``read_region``), never a backend, a plugin's name or its private attributes.
Every selection keyword goes to the plugin, which honours it or refuses it
with TypeError.  The graph of a dask array made here holds only uris,
plugin names and selections: it pickles, and each task reopens what it reads
through a small per-process cache of open plugins (see :mod:`.sources`), so
the same graph runs on the threaded scheduler and on a ``dask.distributed``
cluster whose workers see the same paths.

Notes
-----
The ``chunks=`` argument of :func:`to_dask`:

``"native"`` (default)
    The plugin's ``chunks()`` (TIFF strips or tiles of one page, HDF5 chunks,
    rows of an ``.npy`` file, one slice of a folder), merged innermost axis
    first into chunks of at most :data:`NATIVE_CHUNK_BYTES` (64 MiB; less if
    dask's ``array.chunk-size`` is smaller).  A format read only whole is one
    chunk.
``"auto"``
    dask's automatic chunking, aligned to the native blocks.
tuple or int
    As for ``dask.array.from_array`` (``-1`` and ``"auto"`` entries allowed).
dict
    By axis letter of ``improps(...).axes`` (``{"Z": 8}``) or axis number;
    axes left out keep their ``"native"`` chunks.  ``Z``, ``T`` or ``I`` also
    name the one axis of unknown meaning (tifffile's ``Q``) of a plain stack.
"""
from __future__ import annotations

import sys
import types

from .array import NATIVE_CHUNK_BYTES, LazyArray, from_plugin
from .dask import lazy, plugin_to_dask, to_dask, write_dask
from .sources import HANDLE_CACHE_SIZE, clear_handle_cache

__all__ = ["LazyArray", "lazy", "to_dask", "plugin_to_dask", "write_dask", "from_plugin",
           "clear_handle_cache", "NATIVE_CHUNK_BYTES", "HANDLE_CACHE_SIZE"]


class _CallablePackage(types.ModuleType):
    """The ``imgio.lazy`` package, callable as :func:`lazy`."""

    def __call__(self, uri, **kwargs) -> LazyArray:
        return lazy(uri, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
