"""Dask arrays over image files, and writing dask arrays, through the plugin contract."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.imopen import imopen
from ..core.plugin import ARRAY_ADAPTERS, PluginV3
from ..errors import ShapeError
from .array import LazyArray, from_plugin, import_dask_array

__all__ = ["lazy", "to_dask", "plugin_to_dask", "write_dask"]


def lazy(uri, *, index: Any = None, plugin=None, extension=None, storage_options=None,
         **selection) -> LazyArray:
    """Open an ndimage lazily: a :class:`~imgio.lazy.LazyArray` that reads only what is indexed.

    Parameters
    ----------
    uri : str or pathlib.Path
        A file, folder or glob on disk (bytes and file objects cannot be reopened).
    index : int, ``...`` or None
        As for :func:`imgio.v3.imread`.
    plugin, extension
        Choose the plugin, as for :func:`imgio.v3.imopen`.
    storage_options : dict, optional
        For an fsspec URL (``s3://``, ``http(s)://``, ``memory://`` ...): passed to fsspec
        (credentials, ``endpoint_url``); each read fetches only the bytes it needs.
    **selection
        Selection keywords of the plugin (``series=``, ``level=``, ``page=`` for
        TIFF; ``dataset=``, ``level=``, ``setup=`` for HDF5); a keyword the
        plugin does not know raises TypeError.

    Returns
    -------
    LazyArray
        ``np.asarray(lazy(uri, **kw))`` equals ``imread(uri, **kw)``.
    """
    remote = {"storage_options": storage_options} if storage_options else {}
    with imopen(uri, "r", plugin=plugin, extension=extension, **remote) as f:
        return from_plugin(f, index, **selection)


def plugin_to_dask(plugin, *, index: Any = None, chunks: Any = "native", **selection):
    """The ndimage of an open plugin as a ``dask.array.Array`` (``PluginV3.to_dask``).

    Parameters
    ----------
    plugin : PluginV3
        An open plugin on a resource that can be reopened by uri.
    index : int, ``...`` or None
        As for :func:`imgio.v3.imread`.
    chunks : "native", "auto", tuple, int or dict
        See :mod:`imgio.lazy`.
    **selection
        Selection keywords of the plugin, as for :func:`lazy`.
    """
    import_dask_array()
    return from_plugin(plugin, index, **selection).to_dask(chunks)


def to_dask(uri, *, index: Any = None, chunks: Any = "native", plugin=None, extension=None,
            storage_options=None, **selection):
    """Open an ndimage as a lazy ``dask.array.Array``.

    Parameters
    ----------
    uri : str or pathlib.Path
        A file, folder or glob on disk, or an fsspec URL (``s3://``, ``http(s)://``,
        ``memory://`` ...); each dask task reopens it.
    index : int, ``...`` or None
        As for :func:`imgio.v3.imread`.
    chunks : "native", "auto", tuple, int or dict
        See :mod:`imgio.lazy`; ``{"Z": 8}`` chunks by axis letter.
    plugin, extension
        Choose the plugin, as for :func:`imgio.v3.imopen`.
    storage_options : dict, optional
        fsspec options for a URL (credentials, ``endpoint_url`` ...).
    **selection
        Selection keywords of the plugin, as for :func:`lazy`.

    Raises
    ------
    imgio.errors.BackendMissingError
        dask is not installed (``pip install imgio[dask]``).
    """
    import_dask_array()
    return lazy(uri, index=index, plugin=plugin, extension=extension,
                storage_options=storage_options, **selection).to_dask(chunks)


ARRAY_ADAPTERS["dask"] = plugin_to_dask


def write_dask(uri, darr, *, plugin=None, extension=None, format_hint=None, **kwargs):
    """Write a dask array without holding it in memory.

    The array is computed one block row (one block along the first axis) at a
    time, on whatever scheduler is active (a ``distributed.Client`` too); the
    frames of each row go to the plugin's ``append()``, which grows one TIFF
    series or one HDF5 dataset, while the next row is being computed.  Peak
    memory is about two block rows; rechunk along the first axis to lower it.
    Formats whose plugin cannot grow an ndimage on disk (no ``append()`` of
    its own: ``.npy``, ``.npz``, Pillow's formats) get the computed array.

    Parameters
    ----------
    uri : str, pathlib.Path or "<bytes>"
        Where to write; the plugin is chosen as for :func:`imgio.v3.imwrite`.
    darr : dask.array.Array
        The data.  Arrays of one or two axes, and arrays for plugins that
        cannot grow one ndimage on disk (no ``append()`` of their own), are
        computed and written at once.
    plugin, extension, format_hint
        Choose the plugin (see :func:`imgio.v3.imopen`).
    **kwargs
        Passed to the plugin's ``append()`` (e.g. ``compression=`` for TIFF).

    Returns
    -------
    bytes or None
        The encoded bytes when ``uri`` is ``"<bytes>"``.
    """
    da = import_dask_array()
    if not isinstance(darr, da.Array):
        darr = da.asarray(darr)
    if any(math.isnan(s) for s in darr.shape):
        raise ShapeError("Cannot write a dask array of unknown shape "
                         f"{darr.shape}; call `.compute_chunk_sizes()` on it first.")
    with imopen(uri, "w", plugin=plugin, extension=extension, format_hint=format_hint) as f:
        streams = type(f).append is not PluginV3.append  # grows one ndimage on disk
        if darr.ndim <= 2 or darr.shape[0] == 0 or not streams:
            # nothing to stream frame by frame into: the format takes the whole array
            f.write(darr.compute(), **kwargs)
        else:
            _stream_rows(f, darr, kwargs)
    return f.request.finish()


def _stream_rows(f, darr, kwargs) -> None:
    """Append the frames of ``darr``, computing block row ``i + 1`` while ``i`` is written."""
    from concurrent.futures import ThreadPoolExecutor
    bounds = np.cumsum((0,) + tuple(darr.chunks[0]))
    rows = [darr[int(a):int(b)] for a, b in zip(bounds[:-1], bounds[1:])]

    def compute(i):
        return np.asarray(rows[i].compute())

    with ThreadPoolExecutor(1, thread_name_prefix="imgio-write-dask") as pool:
        pending = pool.submit(compute, 0)
        try:
            for i in range(len(rows)):
                block = pending.result()
                pending = pool.submit(compute, i + 1) if i + 1 < len(rows) else None
                for frame in block:
                    f.append(frame, **kwargs)
                del block
        finally:
            if pending is not None:
                pending.cancel()
