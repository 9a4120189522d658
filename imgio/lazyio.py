"""The former home of imgio's lazy and dask support, kept as a re-export.

Everything now lives in :mod:`imgio.lazy` (a package built on the plugin
contract only); import from there.
"""
from __future__ import annotations

from .lazy import (HANDLE_CACHE_SIZE, NATIVE_CHUNK_BYTES, LazyArray, clear_handle_cache,
                   lazy, plugin_to_dask, to_dask, write_dask)
from .lazy.sources import _HANDLES

__all__ = ["LazyArray", "lazy", "to_dask", "plugin_to_dask", "write_dask",
           "clear_handle_cache", "NATIVE_CHUNK_BYTES", "HANDLE_CACHE_SIZE"]
